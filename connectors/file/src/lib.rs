//! Kafka's file connectors, built with the plugin SDK.
//!
//! - `FileStreamSource` (`org.apache.kafka.connect.file.FileStreamSourceConnector`):
//!   tails `file` (standard input if unset), one record per line (a string value) into
//!   `topic`, at most `batch.size` lines per poll. The source partition is
//!   `{"filename": FILE}` and the offset `{"position": BYTES}`, the byte position after
//!   the line, so a restart resumes after the last committed line: no line is lost, and
//!   none is repeated but those read after the last offset commit.
//! - `FileStreamSink` (`org.apache.kafka.connect.file.FileStreamSinkConnector`): appends
//!   each record's value as a line to `file` (standard output if unset), and flushes it
//!   to disk before the worker commits the offsets.
//!
//! Both answer to Kafka's full class names, the simple names, and the simple names
//! without `Connector`.

mod sink;
mod source;

pub use sink::{FileStreamSink, FileStreamSinkTask};
pub use source::{FileStreamSource, FileStreamSourceTask};

tributary_plugin_sdk::export_plugin! {
    sources: [FileStreamSource],
    sinks: [FileStreamSink],
}
