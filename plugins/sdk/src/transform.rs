//! Single message transforms and predicates from a plugin, in the shape of Kafka Connect's
//! `Transformation<R>` and `Predicate<R>`.
//!
//! The worker applies a connector's transforms to source records (after `poll`, before
//! conversion) and to sink records (after conversion, before `put`). One trait serves
//! both: a transform gets a [`ConnectRecord`], the source or sink record, and may change
//! its topic, key, value, headers and timestamp, or drop it.
//!
//! Lifecycle, as the worker drives it: created (`Default`), `configure`d once with the keys
//! after `transforms.ALIAS.` (a config that does not parse never reaches `configure`: the
//! worker shows the errors of [`Transformation::config_def`] naming the alias and key),
//! `apply`d to records (batches of them cross the boundary at once, applied in order), then
//! `close`d and dropped. One instance is called by one thread at a time. A panic in `apply`
//! is a failed record for the worker (`errors.tolerance` decides), and the instance is not
//! called again.

use crate::config::{Config, ConfigDef};
use crate::error::Result;
use tributary_plugin_abi::data::Data;
use tributary_plugin_abi::record::{Header, SinkRecord, SourceRecord};

/// A record a transform or predicate sees: Kafka's `ConnectRecord`, either a source task's
/// record (before conversion) or a sink task's (after conversion).
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectRecord {
    Source(SourceRecord),
    Sink(SinkRecord),
}

impl ConnectRecord {
    pub fn topic(&self) -> &str {
        match self {
            ConnectRecord::Source(r) => &r.topic,
            ConnectRecord::Sink(r) => &r.topic,
        }
    }

    /// Route the record to another topic (Kafka's `newRecord(topic, ...)`).
    pub fn set_topic(&mut self, topic: impl Into<String>) {
        match self {
            ConnectRecord::Source(r) => r.topic = topic.into(),
            ConnectRecord::Sink(r) => r.topic = topic.into(),
        }
    }

    /// The Kafka partition: a sink record's, or the one a source record asks for.
    pub fn kafka_partition(&self) -> Option<i32> {
        match self {
            ConnectRecord::Source(r) => r.partition,
            ConnectRecord::Sink(r) => Some(r.partition),
        }
    }

    pub fn key(&self) -> &Data {
        match self {
            ConnectRecord::Source(r) => &r.key,
            ConnectRecord::Sink(r) => &r.key,
        }
    }

    pub fn key_mut(&mut self) -> &mut Data {
        match self {
            ConnectRecord::Source(r) => &mut r.key,
            ConnectRecord::Sink(r) => &mut r.key,
        }
    }

    pub fn value(&self) -> &Data {
        match self {
            ConnectRecord::Source(r) => &r.value,
            ConnectRecord::Sink(r) => &r.value,
        }
    }

    pub fn value_mut(&mut self) -> &mut Data {
        match self {
            ConnectRecord::Source(r) => &mut r.value,
            ConnectRecord::Sink(r) => &mut r.value,
        }
    }

    /// Milliseconds since the epoch, if the record has a timestamp.
    pub fn timestamp(&self) -> Option<i64> {
        match self {
            ConnectRecord::Source(r) => r.timestamp,
            ConnectRecord::Sink(r) => r.timestamp,
        }
    }

    /// Set or clear the timestamp (a sink record's then counts as create time).
    pub fn set_timestamp(&mut self, timestamp: Option<i64>) {
        match self {
            ConnectRecord::Source(r) => r.timestamp = timestamp,
            ConnectRecord::Sink(r) => {
                r.timestamp = timestamp;
                r.timestamp_type = match timestamp {
                    None => tributary_plugin_abi::record::TimestampType::NoTimestamp,
                    Some(_)
                        if r.timestamp_type
                            == tributary_plugin_abi::record::TimestampType::NoTimestamp =>
                    {
                        tributary_plugin_abi::record::TimestampType::CreateTime
                    }
                    Some(_) => r.timestamp_type,
                };
            }
        }
    }

    pub fn headers(&self) -> &[Header] {
        match self {
            ConnectRecord::Source(r) => &r.headers,
            ConnectRecord::Sink(r) => &r.headers,
        }
    }

    pub fn headers_mut(&mut self) -> &mut Vec<Header> {
        match self {
            ConnectRecord::Source(r) => &mut r.headers,
            ConnectRecord::Sink(r) => &mut r.headers,
        }
    }
}

/// A single message transform (Kafka's `Transformation`).
///
/// ```
/// use tributary_plugin_sdk::*;
///
/// /// Appends a suffix to every record's topic.
/// #[derive(Default)]
/// pub struct AddSuffix { suffix: String }
///
/// impl Transformation for AddSuffix {
///     const NAME: &'static str = "com.example.AddSuffix";
///     fn config_def() -> ConfigDef {
///         ConfigDef::new().define(ConfigKey::string("suffix").doc("appended to the topic"))
///     }
///     fn configure(&mut self, config: Config) -> Result<()> {
///         self.suffix = config.string("suffix").unwrap_or_default().to_owned();
///         Ok(())
///     }
///     fn apply(&mut self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
///         let topic = format!("{}{}", record.topic(), self.suffix);
///         record.set_topic(topic);
///         Ok(Some(record))
///     }
/// }
///
/// export_plugin! { transforms: [AddSuffix] }
/// ```
pub trait Transformation: Default + Send + 'static {
    /// The full name users put in `transforms.NAME.type`; the worker also accepts the
    /// simple name (after the last `.`).
    const NAME: &'static str;
    /// More names it may be called by.
    const ALIASES: &'static [&'static str] = &[];
    /// Its version; `None` means the plugin crate's version.
    const VERSION: Option<&'static str> = None;

    /// The config keys it understands (the keys after `transforms.ALIAS.`).
    fn config_def() -> ConfigDef;

    /// Receive the parsed config, once, before the first record.
    fn configure(&mut self, config: Config) -> Result<()>;

    /// Transform one record: `Ok(Some(record))` to keep it (changed or not), `Ok(None)` to
    /// drop it, an error when it cannot be transformed (`errors.tolerance` decides).
    fn apply(&mut self, record: ConnectRecord) -> Result<Option<ConnectRecord>>;

    /// Release what the instance holds; called once, when the task stops.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A condition on records (Kafka's `Predicate`), for `transforms.ALIAS.predicate`.
pub trait Predicate: Default + Send + 'static {
    /// The full name users put in `predicates.NAME.type`; the simple name works too.
    const NAME: &'static str;
    const ALIASES: &'static [&'static str] = &[];
    const VERSION: Option<&'static str> = None;

    fn config_def() -> ConfigDef;

    fn configure(&mut self, config: Config) -> Result<()>;

    /// Whether the record matches.
    fn test(&mut self, record: &ConnectRecord) -> bool;

    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}
