//! The coordinator's one error type: what stops it from starting. Requests never fail
//! with it; they answer with Kafka error codes ([`super::codes`]).

use crate::broker::BrokerError;
use crate::log::LogError;
use crate::log::batch::BatchError;

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("invalid group coordinator config {key}={value:?}: {reason}")]
    InvalidConfig {
        key: String,
        value: String,
        reason: String,
    },

    #[error("could not create or open the offsets topic __consumer_offsets: {0}")]
    OffsetsTopic(#[source] BrokerError),

    #[error(
        "__consumer_offsets partition {partition} is missing although the topic lists it; check the data directory"
    )]
    MissingPartition { partition: i32 },

    #[error("reading __consumer_offsets-{partition} at offset {offset}: {source}")]
    Read {
        partition: i32,
        offset: i64,
        #[source]
        source: LogError,
    },

    #[error(
        "corrupt batch in __consumer_offsets-{partition} near offset {offset}: {source}; the segment needs repair or restore from backup"
    )]
    Batch {
        partition: i32,
        offset: i64,
        #[source]
        source: BatchError,
    },

    #[error(
        "malformed record in __consumer_offsets-{partition} at offset {offset}: {reason}; the topic was written by something other than a group coordinator"
    )]
    Record {
        partition: i32,
        offset: i64,
        reason: String,
    },

    #[error(
        "__consumer_offsets-{partition} returned no data at offset {offset} below its high watermark {high_watermark}; the log is inconsistent"
    )]
    Stalled {
        partition: i32,
        offset: i64,
        high_watermark: i64,
    },

    #[error("the offsets loading task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
