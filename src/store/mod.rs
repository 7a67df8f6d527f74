//! Run-directory storage: atomic file replacement, append-only JSONL logs,
//! CSV tables. A leaf of the pipeline: it knows no domain type (no formula,
//! model, recipe or search), only files and folders.

pub mod files;
