//! Tributary: a Kafka Connect-style data integration runtime with an integrated,
//! Kafka-compatible broker.
//!
//! The crate is layered along the path of a record; each layer only knows the ones
//! below it:
//!
//! - [`log`]: the partitioned, segmented, crash-safe commit log (RecordBatch v2 on disk).
//! - [`protocol`]: the Kafka wire codec.
//! - [`broker`]: topics on a data directory, the Kafka protocol listener, groups and
//!   producer state.
//! - [`plugin`]: connector plugins loaded from shared libraries.
//! - [`client`]: topics and groups for the worker, in-process or over the network.
//! - [`worker`]: connectors and tasks, standalone and distributed.
//! - [`rest`] and [`cli`]: Kafka Connect's REST API, and the command line.
//! - [`bench`]: the `tributary bench ...` measurements; [`process`]: a command's runtime
//!   and stop signal.
//!
//! `ARCHITECTURE.md` at the repository root is the map.

pub mod bench;
pub mod broker;
pub mod cli;
pub mod client;
pub mod debug;
pub mod log;
pub mod plugin;
pub mod process;
pub mod properties;
pub mod protocol;
pub mod rest;
pub mod worker;
