//! Fitness: the one training recipe (optimizer, schedule, common random
//! numbers, checkpoints), evaluation, and the weighted score. NaN/Inf is a
//! scored failure, never an error. Knows nothing of populations.

pub mod optim;
