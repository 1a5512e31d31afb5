//! Confluent's JDBC connectors on sqlx, for PostgreSQL, MySQL/MariaDB and SQLite.
//!
//! - `JdbcSource` (`io.confluent.connect.jdbc.JdbcSourceConnector`): rows of tables (or of
//!   one `query`) into topics, in `bulk`, `incrementing`, `timestamp` and
//!   `timestamp+incrementing` modes, resuming from its source offsets;
//! - `JdbcSink` (`io.confluent.connect.jdbc.JdbcSinkConnector`): struct records into
//!   tables by insert, upsert or update, tombstones as deletes, tables created and evolved
//!   from record schemas, one transaction per batch.
//!
//! The config keys are Confluent's, so existing configs move unchanged; `connection.url`
//! takes JDBC URLs and sqlx URLs. Layout: `dialect` (URLs, quoting, SQL text: pure),
//! `db` (pools, the plugin's runtime, decoding and binding), `config`, `source`, `sink`.
//! Nothing a config or a record names is spliced into SQL unquoted; values are always
//! bound parameters.

mod config;
pub mod db;
pub mod dialect;
mod sink;
mod source;

pub use sink::{JdbcSink, JdbcSinkConfig, JdbcSinkTask};
pub use source::{JdbcSource, JdbcSourceTask};

tributary_plugin_sdk::export_plugin! {
    sources: [JdbcSource],
    sinks: [JdbcSink],
}
