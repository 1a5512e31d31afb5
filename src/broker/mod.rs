//! The integrated broker: a single node that holds topics and their partition logs on
//! one data directory.
//!
//! Owns: topic metadata (names, ids, partition counts, per-topic config overrides) and
//! its persistence, the partition logs' lifecycle, and the background maintenance that
//! flushes, deletes and compacts. Later: the Kafka protocol listener, consumer groups
//! and producer state.
//!
//! Must not know: connectors, converters, HTTP. It depends only on [`crate::log`].

mod config;
mod error;
pub mod group;
pub mod producer;
pub mod server;
pub mod topics;

pub use config::BrokerConfig;
pub use error::BrokerError;
pub use topics::{PartitionDescription, TopicDescription, TopicStore, validate_topic_name};
