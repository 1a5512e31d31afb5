//! `tributary bench ...`: measurements of the real code paths, each printed beside
//! the machine's own limit measured in the same run.

pub mod disk;
mod latency;
pub mod log;
pub mod produce;
