//! The broker layer's one error type.

use std::path::PathBuf;

use crate::log::LogError;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopicName { name: String, reason: String },

    #[error("topic {0:?} already exists")]
    TopicExists(String),

    #[error("unknown topic {0:?}; list topics with `tributary topics list`")]
    UnknownTopic(String),

    #[error("invalid partition count {requested} for topic {topic:?}: {reason}")]
    InvalidPartitions {
        topic: String,
        requested: i32,
        reason: String,
    },

    #[error(
        "data directory {dir} is in use by another process (lock file {dir}/.lock); stop the other broker or choose another --data-dir"
    )]
    DataDirLocked { dir: PathBuf },

    #[error(
        "topic metadata file {path} is unreadable: {reason}; restore it from backup or move the data directory aside"
    )]
    Metadata { path: PathBuf, reason: String },

    #[error("invalid broker config {key}={value:?}: {reason}")]
    InvalidConfig {
        key: String,
        value: String,
        reason: String,
    },

    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Log(#[from] LogError),
}

impl BrokerError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BrokerError::Io {
            path: path.into(),
            source,
        }
    }
}
