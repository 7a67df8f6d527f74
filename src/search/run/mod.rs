//! A search's run directory: its file names and `config.json`
//! ([`dir`]), the checkpointed state ([`state`]), one evaluation's record
//! ([`record`]), the per-generation logbook ([`logbook`]), what a run
//! writes besides its logs ([`outputs`]) and its report page ([`page`]).

pub mod dir;
pub mod logbook;
pub mod outputs;
pub mod page;
pub mod record;
pub mod state;
