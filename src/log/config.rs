//! Topic-level configuration of a partition log, with Kafka's key names.
//!
//! Each key is declared once in [`KEYS`] with its type, default, broker-level name and
//! documentation; parsing, validation, `describe` output and the docs all come from that
//! table. Values arrive as strings (from topic metadata, CreateTopics, AlterConfigs) and
//! are validated here into a typed [`LogConfig`]: every error names the key.
//!
//! This module knows nothing about where configs are stored.

use std::collections::BTreeMap;
use std::time::Duration;

use super::LogError;
use super::batch::TimestampType;

/// What happens to old closed segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CleanupPolicy {
    /// Delete whole segments past `retention.ms` / `retention.bytes`.
    Delete,
    /// Keep the latest record per key (`cleanup.policy=compact`).
    Compact,
    /// Both (`cleanup.policy=compact,delete`).
    CompactDelete,
}

impl CleanupPolicy {
    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }
    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }
}

/// When appended data is forced to disk with `fdatasync`.
///
/// An append is acknowledged once its bytes are written to the segment file (so a
/// crash of the process loses nothing); the policy decides when those bytes are also
/// made durable against power loss, and an append that crosses `every_messages` waits
/// for that sync before it is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushPolicy {
    /// `flush.messages`: sync before acknowledging once this many records are unsynced.
    /// `1` means every append is durable when acknowledged.
    pub every_messages: u64,
    /// `flush.ms`: a background flusher syncs data older than this.
    pub interval: Duration,
}

impl FlushPolicy {
    /// Sync every append before it is acknowledged.
    pub const EVERY_APPEND: FlushPolicy = FlushPolicy {
        every_messages: 1,
        interval: Duration::from_millis(1000),
    };
}

/// The typed configuration of one partition log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    pub cleanup_policy: CleanupPolicy,
    pub segment_bytes: u64,
    pub segment_ms: u64,
    pub index_interval_bytes: u64,
    pub flush: FlushPolicy,
    /// `retention.ms`; `None` is unlimited (-1).
    pub retention_ms: Option<u64>,
    /// `retention.bytes`; `None` is unlimited (-1).
    pub retention_bytes: Option<u64>,
    pub delete_retention_ms: u64,
    pub min_compaction_lag_ms: u64,
    pub max_message_bytes: usize,
    pub timestamp_type: TimestampType,
    /// The string form of every key that was set explicitly, as given.
    pub overrides: BTreeMap<String, String>,
}

/// The type of a config value, for validation and describe output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Long,
    Int,
    String,
    List,
    Boolean,
    Double,
}

impl ConfigType {
    /// Kafka's DescribeConfigs type name.
    pub fn name(self) -> &'static str {
        match self {
            ConfigType::Long => "LONG",
            ConfigType::Int => "INT",
            ConfigType::String => "STRING",
            ConfigType::List => "LIST",
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::Double => "DOUBLE",
        }
    }
}

/// One topic config key.
#[derive(Debug)]
pub struct ConfigKey {
    pub name: &'static str,
    /// The broker-level key that sets the default for every topic.
    pub broker_name: &'static str,
    pub kind: ConfigType,
    pub default: &'static str,
    /// False for keys accepted for compatibility with Kafka tooling that have no
    /// effect on a single-node broker (replication, down-conversion, ...).
    pub applied: bool,
    pub doc: &'static str,
}

const fn key(
    name: &'static str,
    broker_name: &'static str,
    kind: ConfigType,
    default: &'static str,
    doc: &'static str,
) -> ConfigKey {
    ConfigKey {
        name,
        broker_name,
        kind,
        default,
        applied: true,
        doc,
    }
}

const fn inert(
    name: &'static str,
    broker_name: &'static str,
    kind: ConfigType,
    default: &'static str,
) -> ConfigKey {
    ConfigKey {
        name,
        broker_name,
        kind,
        default,
        applied: false,
        doc: "accepted for compatibility with Kafka tooling; has no effect on a single-node broker",
    }
}

/// Every topic-level key this log understands, with Kafka's names and defaults.
pub const KEYS: &[ConfigKey] = &[
    key(
        "cleanup.policy",
        "log.cleanup.policy",
        ConfigType::List,
        "delete",
        "delete, compact, or compact,delete: whether old segments are deleted by retention, compacted to the latest record per key, or both",
    ),
    key(
        "segment.bytes",
        "log.segment.bytes",
        ConfigType::Int,
        "1073741824",
        "size at which the active segment file is closed and a new one started",
    ),
    key(
        "segment.ms",
        "log.roll.ms",
        ConfigType::Long,
        "604800000",
        "time after which the active segment is rolled even if not full, so retention and compaction can act on it",
    ),
    key(
        "index.interval.bytes",
        "log.index.interval.bytes",
        ConfigType::Int,
        "4096",
        "bytes of batches between two entries of the sparse offset and time indexes",
    ),
    key(
        "flush.messages",
        "log.flush.interval.messages",
        ConfigType::Long,
        "9223372036854775807",
        "fdatasync before acknowledging an append once this many records are unsynced; 1 makes every acknowledged append durable against power loss",
    ),
    key(
        "flush.ms",
        "log.flush.interval.ms",
        ConfigType::Long,
        "1000",
        "a background flusher fdatasyncs data older than this; bounds what a power loss can take (Kafka's default is unbounded, relying on replication)",
    ),
    key(
        "retention.ms",
        "log.retention.ms",
        ConfigType::Long,
        "604800000",
        "closed segments whose newest record is older than this are deleted; -1 keeps everything",
    ),
    key(
        "retention.bytes",
        "log.retention.bytes",
        ConfigType::Long,
        "-1",
        "oldest closed segments are deleted while the partition is larger than this; -1 is unlimited",
    ),
    key(
        "delete.retention.ms",
        "log.cleaner.delete.retention.ms",
        ConfigType::Long,
        "86400000",
        "how long tombstones are kept in a compacted topic after their segment's newest record",
    ),
    key(
        "min.compaction.lag.ms",
        "log.cleaner.min.compaction.lag.ms",
        ConfigType::Long,
        "0",
        "records newer than this are never compacted away",
    ),
    key(
        "max.message.bytes",
        "message.max.bytes",
        ConfigType::Int,
        "1048588",
        "largest record batch the log accepts",
    ),
    key(
        "message.timestamp.type",
        "log.message.timestamp.type",
        ConfigType::String,
        "CreateTime",
        "CreateTime keeps the producer's timestamps; LogAppendTime stamps each batch with the broker's clock",
    ),
    inert(
        "compression.type",
        "compression.type",
        ConfigType::String,
        "producer",
    ),
    inert(
        "min.insync.replicas",
        "min.insync.replicas",
        ConfigType::Int,
        "1",
    ),
    inert(
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
        ConfigType::Boolean,
        "false",
    ),
    inert(
        "preallocate",
        "log.preallocate",
        ConfigType::Boolean,
        "false",
    ),
    inert(
        "segment.jitter.ms",
        "log.roll.jitter.ms",
        ConfigType::Long,
        "0",
    ),
    inert(
        "segment.index.bytes",
        "log.index.size.max.bytes",
        ConfigType::Int,
        "10485760",
    ),
    inert(
        "max.compaction.lag.ms",
        "log.cleaner.max.compaction.lag.ms",
        ConfigType::Long,
        "9223372036854775807",
    ),
    inert(
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
        ConfigType::Double,
        "0.5",
    ),
    inert(
        "file.delete.delay.ms",
        "log.segment.delete.delay.ms",
        ConfigType::Long,
        "60000",
    ),
    inert(
        "message.downconversion.enable",
        "log.message.downconversion.enable",
        ConfigType::Boolean,
        "true",
    ),
    inert(
        "message.timestamp.difference.max.ms",
        "log.message.timestamp.difference.max.ms",
        ConfigType::Long,
        "9223372036854775807",
    ),
    inert(
        "message.timestamp.before.max.ms",
        "log.message.timestamp.before.max.ms",
        ConfigType::Long,
        "9223372036854775807",
    ),
    inert(
        "message.timestamp.after.max.ms",
        "log.message.timestamp.after.max.ms",
        ConfigType::Long,
        "9223372036854775807",
    ),
    inert(
        "leader.replication.throttled.replicas",
        "leader.replication.throttled.replicas",
        ConfigType::List,
        "",
    ),
    inert(
        "follower.replication.throttled.replicas",
        "follower.replication.throttled.replicas",
        ConfigType::List,
        "",
    ),
];

/// Look a topic-level key up by name.
pub fn key_named(name: &str) -> Option<&'static ConfigKey> {
    KEYS.iter().find(|k| k.name == name)
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            cleanup_policy: CleanupPolicy::Delete,
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            flush: FlushPolicy {
                every_messages: i64::MAX as u64,
                interval: Duration::from_millis(1000),
            },
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            delete_retention_ms: 24 * 3600 * 1000,
            min_compaction_lag_ms: 0,
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            overrides: BTreeMap::new(),
        }
    }
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> LogError {
    LogError::InvalidConfig {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn parse_i64(key: &str, value: &str, min: i64) -> Result<i64, LogError> {
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, "expected a whole number"))?;
    if n < min {
        return Err(invalid(key, value, format!("must be at least {min}")));
    }
    Ok(n)
}

/// -1 means unlimited; anything else must be non-negative.
fn parse_limit(key: &str, value: &str) -> Result<Option<u64>, LogError> {
    let n = parse_i64(key, value, -1)?;
    Ok(u64::try_from(n).ok())
}

fn as_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl LogConfig {
    /// This config with `overrides` applied on top, each validated. Unknown keys are
    /// refused with their name; so are bad values.
    pub fn with_overrides(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, LogError> {
        let mut cfg = self.clone();
        for (k, v) in overrides {
            cfg.set(k, v)?;
        }
        Ok(cfg)
    }

    /// Set one key from its string form.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), LogError> {
        let Some(def) = key_named(key) else {
            return Err(invalid(
                key,
                value,
                "unknown topic config key; `tributary topics configs` lists the supported keys",
            ));
        };
        match key {
            "cleanup.policy" => {
                let mut compact = false;
                let mut delete = false;
                for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    match part {
                        "compact" => compact = true,
                        "delete" => delete = true,
                        _ => {
                            return Err(invalid(
                                key,
                                value,
                                "expected delete, compact or compact,delete",
                            ));
                        }
                    }
                }
                self.cleanup_policy = match (compact, delete) {
                    (true, true) => CleanupPolicy::CompactDelete,
                    (true, false) => CleanupPolicy::Compact,
                    (false, true) => CleanupPolicy::Delete,
                    (false, false) => {
                        return Err(invalid(
                            key,
                            value,
                            "expected delete, compact or compact,delete",
                        ));
                    }
                };
            }
            "segment.bytes" => {
                self.segment_bytes = as_u64(parse_i64(key, value, 64)?.min(i32::MAX as i64))
            }
            "segment.ms" => self.segment_ms = as_u64(parse_i64(key, value, 1)?),
            "index.interval.bytes" => self.index_interval_bytes = as_u64(parse_i64(key, value, 0)?),
            "flush.messages" => self.flush.every_messages = as_u64(parse_i64(key, value, 1)?),
            "flush.ms" => {
                self.flush.interval = Duration::from_millis(as_u64(parse_i64(key, value, 0)?))
            }
            "retention.ms" => self.retention_ms = parse_limit(key, value)?,
            "retention.bytes" => self.retention_bytes = parse_limit(key, value)?,
            "delete.retention.ms" => self.delete_retention_ms = as_u64(parse_i64(key, value, 0)?),
            "min.compaction.lag.ms" => {
                self.min_compaction_lag_ms = as_u64(parse_i64(key, value, 0)?)
            }
            "max.message.bytes" => {
                self.max_message_bytes =
                    as_u64(parse_i64(key, value, 0)?.min(i32::MAX as i64)) as usize
            }
            "message.timestamp.type" => {
                self.timestamp_type = match value.trim() {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => return Err(invalid(key, value, "expected CreateTime or LogAppendTime")),
                }
            }
            _ => validate_inert(def, value)?,
        }
        self.overrides.insert(key.to_string(), value.to_string());
        Ok(())
    }

    /// The effective string value of a key (override or default), for describe output.
    pub fn value_of(&self, key: &str) -> Option<String> {
        let def = key_named(key)?;
        Some(
            self.overrides
                .get(key)
                .cloned()
                .unwrap_or_else(|| self.default_string(def)),
        )
    }

    fn default_string(&self, def: &ConfigKey) -> String {
        match def.name {
            "cleanup.policy" => match self.cleanup_policy {
                CleanupPolicy::Delete => "delete".into(),
                CleanupPolicy::Compact => "compact".into(),
                CleanupPolicy::CompactDelete => "compact,delete".into(),
            },
            "segment.bytes" => self.segment_bytes.to_string(),
            "segment.ms" => self.segment_ms.to_string(),
            "index.interval.bytes" => self.index_interval_bytes.to_string(),
            "flush.messages" => self.flush.every_messages.min(i64::MAX as u64).to_string(),
            "flush.ms" => self.flush.interval.as_millis().to_string(),
            "retention.ms" => self.retention_ms.map_or("-1".into(), |v| v.to_string()),
            "retention.bytes" => self.retention_bytes.map_or("-1".into(), |v| v.to_string()),
            "delete.retention.ms" => self.delete_retention_ms.to_string(),
            "min.compaction.lag.ms" => self.min_compaction_lag_ms.to_string(),
            "max.message.bytes" => self.max_message_bytes.to_string(),
            "message.timestamp.type" => match self.timestamp_type {
                TimestampType::CreateTime => "CreateTime".into(),
                TimestampType::LogAppendTime => "LogAppendTime".into(),
            },
            _ => def.default.to_string(),
        }
    }
}

fn validate_inert(def: &ConfigKey, value: &str) -> Result<(), LogError> {
    let ok = match def.kind {
        ConfigType::Long | ConfigType::Int => value.trim().parse::<i64>().is_ok(),
        ConfigType::Double => value.trim().parse::<f64>().is_ok(),
        ConfigType::Boolean => matches!(value.trim(), "true" | "false"),
        ConfigType::String | ConfigType::List => true,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(
            def.name,
            value,
            format!("expected a value of type {}", def.kind.name()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<LogConfig, LogError> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LogConfig::default().with_overrides(&map)
    }

    #[test]
    fn defaults_match_the_key_table() {
        let cfg = LogConfig::default();
        for def in KEYS {
            assert_eq!(
                cfg.value_of(def.name).as_deref(),
                Some(def.default),
                "{}",
                def.name
            );
        }
    }

    #[test]
    fn overrides_are_typed_and_echoed() {
        let cfg = with(&[
            ("cleanup.policy", "compact,delete"),
            ("segment.bytes", "4096"),
            ("retention.ms", "-1"),
            ("flush.messages", "1"),
            ("message.timestamp.type", "LogAppendTime"),
        ])
        .unwrap();
        assert_eq!(cfg.cleanup_policy, CleanupPolicy::CompactDelete);
        assert_eq!(cfg.segment_bytes, 4096);
        assert_eq!(cfg.retention_ms, None);
        assert_eq!(cfg.flush.every_messages, 1);
        assert_eq!(cfg.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(cfg.value_of("segment.bytes").as_deref(), Some("4096"));
    }

    #[test]
    fn bad_values_and_unknown_keys_name_the_key() {
        for (k, v) in [
            ("segment.bytes", "lots"),
            ("segment.bytes", "1"),
            ("cleanup.policy", "shred"),
            ("retention.ms", "-5"),
            ("no.such.key", "1"),
            ("min.insync.replicas", "two"),
        ] {
            let err = with(&[(k, v)]).unwrap_err().to_string();
            assert!(err.contains(k), "{err}");
        }
    }
}
