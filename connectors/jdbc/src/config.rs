//! The config keys of the source and the sink, under Confluent's names, and their typed
//! forms. Parsing is pure (no connection); connecting is the tasks' first step.

use std::time::Duration;

use tributary_plugin_sdk::{
    Config, ConfigDef, ConfigKey, ConnectError, Importance, Result, Validator,
};

use crate::dialect::{Target, parse_url};

pub const CONNECTION_URL: &str = "connection.url";
pub const CONNECTION_USER: &str = "connection.user";
pub const CONNECTION_PASSWORD: &str = "connection.password";
pub const CONNECTION_ATTEMPTS: &str = "connection.attempts";
pub const CONNECTION_BACKOFF_MS: &str = "connection.backoff.ms";

pub const TABLE_WHITELIST: &str = "table.whitelist";
pub const TABLE_BLACKLIST: &str = "table.blacklist";
pub const QUERY: &str = "query";
pub const TOPIC_PREFIX: &str = "topic.prefix";
pub const MODE: &str = "mode";
pub const INCREMENTING_COLUMN: &str = "incrementing.column.name";
pub const TIMESTAMP_COLUMN: &str = "timestamp.column.name";
pub const TIMESTAMP_DELAY_MS: &str = "timestamp.delay.interval.ms";
pub const POLL_INTERVAL_MS: &str = "poll.interval.ms";
pub const BATCH_MAX_ROWS: &str = "batch.max.rows";
pub const TABLE_POLL_INTERVAL_MS: &str = "table.poll.interval.ms";
/// The tables one task reads (set by the connector in each task's config).
pub const TASK_TABLES: &str = "tables";

pub const INSERT_MODE: &str = "insert.mode";
pub const PK_MODE: &str = "pk.mode";
pub const PK_FIELDS: &str = "pk.fields";
pub const TABLE_NAME_FORMAT: &str = "table.name.format";
pub const AUTO_CREATE: &str = "auto.create";
pub const AUTO_EVOLVE: &str = "auto.evolve";
pub const DELETE_ENABLED: &str = "delete.enabled";
pub const BATCH_SIZE: &str = "batch.size";

fn connection_keys(def: ConfigDef) -> ConfigDef {
    def.define(
        ConfigKey::string(CONNECTION_URL)
            .importance(Importance::High)
            .validator(Validator::non_empty())
            .group("Database")
            .doc("JDBC connection URL (jdbc:postgresql://host:5432/db, jdbc:mysql://host:3306/db, \
                  jdbc:mariadb://..., jdbc:sqlite:path) or sqlx URL (postgres://, mysql://, sqlite://)"),
    )
    .define(
        ConfigKey::string(CONNECTION_USER)
            .optional()
            .importance(Importance::High)
            .group("Database")
            .doc("JDBC connection user"),
    )
    .define(
        ConfigKey::password(CONNECTION_PASSWORD)
            .optional()
            .importance(Importance::High)
            .group("Database")
            .doc("JDBC connection password"),
    )
    .define(
        ConfigKey::int(CONNECTION_ATTEMPTS)
            .default("3")
            .validator(Validator::at_least(1))
            .importance(Importance::Low)
            .group("Database")
            .doc("Maximum number of attempts to retrieve a valid JDBC connection (the source \
                  retries a lost connection this many times in a row before failing)"),
    )
    .define(
        ConfigKey::long(CONNECTION_BACKOFF_MS)
            .default("10000")
            .validator(Validator::at_least(0))
            .importance(Importance::Low)
            .group("Database")
            .doc("Backoff time in milliseconds between connection attempts"),
    )
}

pub fn source_def() -> ConfigDef {
    connection_keys(ConfigDef::new())
        .define(
            ConfigKey::list(TABLE_WHITELIST)
                .default("")
                .importance(Importance::Medium)
                .group("Database")
                .doc("List of tables to include in copying; if set, table.blacklist must not be"),
        )
        .define(
            ConfigKey::list(TABLE_BLACKLIST)
                .default("")
                .importance(Importance::Medium)
                .group("Database")
                .doc("List of tables to exclude from copying"),
        )
        .define(
            ConfigKey::string(QUERY)
                .default("")
                .importance(Importance::Medium)
                .group("Mode")
                .doc(
                    "If specified, the query to perform to select new or updated rows, instead of \
                      copying whole tables; the mode's WHERE clause is appended to it",
                ),
        )
        .define(
            ConfigKey::string(MODE)
                .importance(Importance::High)
                .validator(Validator::one_of(&[
                    "bulk",
                    "incrementing",
                    "timestamp",
                    "timestamp+incrementing",
                ]))
                .group("Mode")
                .doc(
                    "The mode for updating a table each time it is polled: bulk, incrementing, \
                      timestamp or timestamp+incrementing",
                ),
        )
        .define(
            ConfigKey::string(INCREMENTING_COLUMN)
                .default("")
                .importance(Importance::Medium)
                .group("Mode")
                .doc("The name of the strictly incrementing column to use to detect new rows"),
        )
        .define(
            ConfigKey::list(TIMESTAMP_COLUMN)
                .default("")
                .importance(Importance::Medium)
                .group("Mode")
                .doc(
                    "Comma separated list of one or more timestamp columns to detect new or \
                      modified rows using the COALESCE SQL function",
                ),
        )
        .define(
            ConfigKey::long(TIMESTAMP_DELAY_MS)
                .default("0")
                .validator(Validator::at_least(0))
                .importance(Importance::High)
                .group("Mode")
                .doc(
                    "How long to wait after a row with a certain timestamp appears before we \
                      include it in the result",
                ),
        )
        .define(
            ConfigKey::string(TOPIC_PREFIX)
                .importance(Importance::High)
                .group("Connector")
                .doc(
                    "Prefix to prepend to table names to generate the name of the topic to \
                      publish data to, or in the case of a custom query, the full topic name",
                ),
        )
        .define(
            ConfigKey::int(POLL_INTERVAL_MS)
                .default("5000")
                .validator(Validator::at_least(1))
                .importance(Importance::High)
                .group("Connector")
                .doc("Frequency in ms to poll for new data in each table"),
        )
        .define(
            ConfigKey::int(BATCH_MAX_ROWS)
                .default("100")
                .validator(Validator::at_least(1))
                .importance(Importance::Low)
                .group("Connector")
                .doc(
                    "Maximum number of rows to include in a single batch when polling for new data",
                ),
        )
        .define(
            ConfigKey::long(TABLE_POLL_INTERVAL_MS)
                .default("60000")
                .validator(Validator::at_least(1))
                .importance(Importance::Low)
                .group("Connector")
                .doc(
                    "Frequency in ms to poll for new or removed tables, which may result in \
                      updated task configurations to start polling for data in added tables",
                ),
        )
        .define(
            ConfigKey::list(TASK_TABLES)
                .default("")
                .importance(Importance::Low)
                .doc("The tables this task reads (set by the connector)"),
        )
}

pub fn sink_def() -> ConfigDef {
    connection_keys(ConfigDef::new())
        .define(
            ConfigKey::string(INSERT_MODE)
                .default("insert")
                .validator(Validator::one_of(&["insert", "upsert", "update"]))
                .importance(Importance::High)
                .group("Writes")
                .doc("The insertion mode to use: insert, upsert (INSERT ... ON CONFLICT / ON \
                      DUPLICATE KEY UPDATE) or update"),
        )
        .define(
            ConfigKey::int(BATCH_SIZE)
                .default("3000")
                .validator(Validator::at_least(1))
                .importance(Importance::Medium)
                .group("Writes")
                .doc("Specifies how many records to attempt to batch together for insertion into \
                      the destination table, when possible"),
        )
        .define(
            ConfigKey::boolean(DELETE_ENABLED)
                .default("false")
                .importance(Importance::Medium)
                .group("Writes")
                .doc("Whether to treat null record values as deletes; requires pk.mode=record_key"),
        )
        .define(
            ConfigKey::string(TABLE_NAME_FORMAT)
                .default("${topic}")
                .importance(Importance::Medium)
                .group("Data Mapping")
                .doc("A format string for the destination table name, which may contain \
                      '${topic}' as a placeholder for the originating topic name"),
        )
        .define(
            ConfigKey::string(PK_MODE)
                .default("none")
                .validator(Validator::one_of(&["none", "kafka", "record_key", "record_value"]))
                .importance(Importance::High)
                .group("Data Mapping")
                .doc("The primary key mode: none, kafka, record_key or record_value"),
        )
        .define(
            ConfigKey::list(PK_FIELDS)
                .default("")
                .importance(Importance::Medium)
                .group("Data Mapping")
                .doc("List of comma-separated primary key field names; its meaning depends on pk.mode"),
        )
        .define(
            ConfigKey::boolean(AUTO_CREATE)
                .default("false")
                .importance(Importance::Medium)
                .group("DDL Support")
                .doc("Whether to automatically create the destination table based on record \
                      schema if it is found to be missing by issuing CREATE"),
        )
        .define(
            ConfigKey::boolean(AUTO_EVOLVE)
                .default("false")
                .importance(Importance::Medium)
                .group("DDL Support")
                .doc("Whether to automatically add columns in the table schema when found to be \
                      missing relative to the record schema by issuing ALTER"),
        )
}

/// The connection settings, validated.
#[derive(Debug, Clone)]
pub struct Connection {
    pub target: Target,
    pub attempts: u32,
    pub backoff: Duration,
}

impl Connection {
    pub fn from_config(c: &Config) -> Result<Connection> {
        let target = parse_url(
            c.string(CONNECTION_URL).unwrap_or_default(),
            c.string(CONNECTION_USER).filter(|s| !s.is_empty()),
            c.password(CONNECTION_PASSWORD)
                .map(|p| p.expose())
                .filter(|s| !s.is_empty()),
        )
        .map_err(ConnectError::new)?;
        Ok(Connection {
            target,
            attempts: c.int(CONNECTION_ATTEMPTS).unwrap_or(3).max(1) as u32,
            backoff: Duration::from_millis(
                c.long(CONNECTION_BACKOFF_MS).unwrap_or(10_000).max(0) as u64
            ),
        })
    }
}

/// A list key's entries, trimmed, empty ones dropped.
pub fn list(c: &Config, key: &str) -> Vec<String> {
    c.list(key)
        .unwrap_or_default()
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}
