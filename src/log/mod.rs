//! The commit log: one partition is an append-only sequence of Kafka RecordBatch v2
//! batches stored in segment files, exactly as Kafka stores them.
//!
//! What it owns: the on-disk format ([`batch`]), compression codecs ([`compression`]),
//! segment files and their sparse offset and time indexes ([`segment`], [`index`]),
//! the per-partition log with its durability policy, group commit and crash recovery
//! ([`partition`]), retention and compaction ([`cleaner`]) and the topic-level
//! configuration keys that tune them ([`config`]).
//!
//! What it must not know: topics as a set, the Kafka wire protocol, consumer groups,
//! producers' idempotence state, connectors, HTTP. It is synchronous on purpose: callers
//! on an async runtime go through `spawn_blocking` or a dedicated thread, because appends
//! may wait for `fdatasync`.

pub mod batch;
pub mod cleaner;
pub mod compression;
pub mod config;
mod error;
pub mod index;
pub mod partition;
pub mod segment;

pub use config::{CleanupPolicy, FlushPolicy, LogConfig};
pub use error::LogError;
pub use partition::{AppendInfo, LogStats, OffsetSpec, PartitionLog, ReadResult};
