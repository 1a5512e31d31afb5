//! `S3Sink` (`io.confluent.connect.s3.S3SinkConnector`): records of topics into objects
//! in S3 or any S3-compatible store, laid out the way Confluent's S3 sink lays them out,
//! so the data lakes that read those buckets read these:
//!
//! `topics.dir/TOPIC/DIRECTORY/TOPIC+PARTITION+STARTOFFSET.EXT`
//!
//! - [`config`]: the keys (Confluent's names) and their validation;
//! - [`format`]: JSON lines, raw bytes, Parquet; gzip;
//! - [`partitioner`]: the directory of a record (default, field, time-based);
//! - [`storage`]: aws-sdk-s3 on the plugin's own small runtime; puts, multipart uploads,
//!   retries and what failures mean;
//! - [`sink`]: the connector and task: rotation, and exactly-once delivery through
//!   `pre_commit` (offsets are committed only once their objects are uploaded).
//!
//! Not here: Avro, schema compatibility modes other than "rotate on change" for
//! Parquet, server-side encryption settings, nested Parquet columns.

pub mod config;
pub mod format;
pub mod partitioner;
pub mod sink;
pub mod storage;

pub use config::S3SinkConfig;
pub use sink::{S3Sink, S3SinkTask};

tributary_plugin_sdk::export_plugin! {
    sinks: [S3Sink],
}
