//! The log layer's one error type.

use std::path::PathBuf;

use super::batch::BatchError;

/// Everything that can go wrong in the commit log. Each variant names the file,
/// partition directory or offset involved, so a message in a log line is enough to
/// find the problem.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A batch handed to `append` is not a valid RecordBatch v2; nothing was written.
    #[error("invalid record batch at byte {position} of the request: {source}")]
    InvalidBatch {
        position: usize,
        #[source]
        source: BatchError,
    },

    #[error(
        "record batch of {size} bytes exceeds max.message.bytes ({max}) of {dir}; raise max.message.bytes on the topic or send smaller batches"
    )]
    RecordTooLarge {
        dir: PathBuf,
        size: usize,
        max: usize,
    },

    /// Stored data failed verification: bitrot or an external edit of a closed segment.
    /// Never silently skipped.
    #[error(
        "corrupt record batch in {path} at byte {position} (near offset {offset}): {reason}; the segment needs repair or restore from a replica or backup"
    )]
    Corrupt {
        path: PathBuf,
        position: u64,
        offset: i64,
        reason: String,
    },

    #[error(
        "offset {offset} is out of range for {dir}: the log holds offsets {log_start_offset} to {high_watermark} (exclusive)"
    )]
    OffsetOutOfRange {
        dir: PathBuf,
        offset: i64,
        log_start_offset: i64,
        high_watermark: i64,
    },

    /// An earlier fdatasync failed: the kernel may have dropped dirty pages, so the log
    /// no longer knows what is on disk and refuses every write until it is reopened
    /// (which re-verifies the tail).
    #[error(
        "{dir} refuses writes since an fsync failed ({reason}); restart the broker to recover the partition from disk"
    )]
    Failed { dir: PathBuf, reason: String },

    #[error("{dir} is closed")]
    Closed { dir: PathBuf },

    #[error("invalid value {value:?} for config {key}: {reason}")]
    InvalidConfig {
        key: String,
        value: String,
        reason: String,
    },
}

impl LogError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LogError::Io {
            path: path.into(),
            source,
        }
    }
}
