//! Where a generation's candidates are evaluated: the batch interface
//! ([`executor`]: [`Job`], [`JobResult`], [`Evaluate`], [`Executor`], the
//! in-process pool), worker processes ([`process`]), Ray ([`ray`]), the
//! choice between them ([`launch`]), the line formats that carry jobs and
//! results across a process boundary ([`batch`]) and the worker side of
//! that boundary ([`candidates`], what `actforge eval-candidates` runs).
//!
//! Text crosses this room's process boundaries only: a job in this process
//! carries its built candidate; a worker process or a Ray task gets the
//! formula as text and parses it once.

pub mod batch;
pub mod candidates;
pub mod executor;
pub mod launch;
pub mod process;
pub mod ray;

pub use executor::{Evaluate, Executor, InProcess, Job, JobResult};
