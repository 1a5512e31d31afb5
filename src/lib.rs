//! Tributary: a Kafka Connect-style data integration runtime with an integrated,
//! Kafka-compatible broker.
//!
//! The crate is layered along the path of a record; each layer only knows the ones
//! below it:
//!
//! - [`log`]: the partitioned, segmented, crash-safe commit log (RecordBatch v2 on disk).
//! - [`broker`]: topics and their partitions on a data directory (later: the Kafka
//!   protocol listener, groups and producer state).
//! - [`bench`]: the `tributary bench ...` measurements.
//!
//! `ARCHITECTURE.md` at the repository root is the map.

pub mod bench;
pub mod broker;
pub mod cli;
pub mod client;
pub mod debug;
pub mod log;
pub mod plugin;
pub mod properties;
pub mod protocol;
pub mod rest;
pub mod worker;
