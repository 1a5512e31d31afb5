//! The S3 sink's config: every key declared once (name, type, default, doc) in
//! [`config_def`], and [`S3SinkConfig::from_raw`], the one pure step from the raw map to
//! typed settings. Nothing here touches the network: the bucket is checked when a task
//! starts ([`crate::storage`]).
//!
//! Key names are Confluent's S3 sink's where it has them, so a Confluent config loads as
//! it is.

use std::time::Duration;

use tributary_plugin_sdk::{
    Config, ConfigDef, ConfigKey, ConnectError, Importance, RawConfig, Result, Validator,
};

use crate::format::{Compression, FormatKind, ParquetCodec};
use crate::partitioner::{PartitionerKind, TimeSettings, TimestampExtractor};

pub const BUCKET: &str = "s3.bucket.name";
pub const REGION: &str = "s3.region";
pub const STORE_URL: &str = "store.url";
pub const PATH_STYLE: &str = "s3.path.style.access.enabled";
pub const ACCESS_KEY: &str = "aws.access.key.id";
pub const SECRET_KEY: &str = "aws.secret.access.key";
pub const TOPICS_DIR: &str = "topics.dir";
pub const FORMAT: &str = "format.class";
pub const FLUSH_SIZE: &str = "flush.size";
pub const ROTATE_INTERVAL: &str = "rotate.interval.ms";
pub const ROTATE_SCHEDULE: &str = "rotate.schedule.interval.ms";
pub const PART_SIZE: &str = "s3.part.size";
pub const COMPRESSION: &str = "s3.compression.type";
pub const COMPRESSION_LEVEL: &str = "s3.compression.level";
pub const PARQUET_CODEC: &str = "parquet.codec";
pub const SEPARATOR: &str = "format.bytearray.separator";
pub const BYTES_EXTENSION: &str = "format.bytearray.extension";
pub const PARTITIONER: &str = "partitioner.class";
pub const PARTITION_FIELDS: &str = "partition.field.name";
pub const PATH_FORMAT: &str = "path.format";
pub const PARTITION_DURATION: &str = "partition.duration.ms";
pub const LOCALE: &str = "locale";
pub const TIMEZONE: &str = "timezone";
pub const TIMESTAMP_EXTRACTOR: &str = "timestamp.extractor";
pub const TIMESTAMP_FIELD: &str = "timestamp.field";
pub const RETRY_BACKOFF: &str = "s3.retry.backoff.ms";
pub const PART_RETRIES: &str = "s3.part.retries";
pub const ZERO_PAD: &str = "filename.offset.zero.pad.width";
pub const NULL_VALUES: &str = "behavior.on.null.values";

/// S3's smallest part but the last one.
pub const MIN_PART_SIZE: i64 = 5 * 1024 * 1024;

/// Every key the sink reads.
pub fn config_def() -> ConfigDef {
    ConfigDef::new()
        .define(
            ConfigKey::string(BUCKET)
                .validator(Validator::non_empty())
                .importance(Importance::High)
                .group("S3")
                .doc("The bucket the objects are written to; it must exist"),
        )
        .define(
            ConfigKey::string(REGION)
                .default("us-west-2")
                .importance(Importance::Medium)
                .group("S3")
                .doc("The bucket's AWS region"),
        )
        .define(
            ConfigKey::string(STORE_URL)
                .optional()
                .importance(Importance::High)
                .group("S3")
                .doc("The endpoint of an S3-compatible store (e.g. http://127.0.0.1:9000), instead of AWS's"),
        )
        .define(
            ConfigKey::boolean(PATH_STYLE)
                .default("true")
                .group("S3")
                .doc("With store.url: address buckets by path (http://host/bucket/key) rather than by host name"),
        )
        .define(
            ConfigKey::string(ACCESS_KEY)
                .optional()
                .importance(Importance::High)
                .group("S3")
                .doc("The access key id; unset: the standard AWS credential chain (environment, profile, instance role)"),
        )
        .define(
            ConfigKey::password(SECRET_KEY)
                .optional()
                .importance(Importance::High)
                .group("S3")
                .doc("The secret access key that goes with aws.access.key.id"),
        )
        .define(
            ConfigKey::string(TOPICS_DIR)
                .default("topics")
                .group("Storage")
                .doc("The top-level prefix of every object key"),
        )
        .define(
            ConfigKey::class(FORMAT)
                .importance(Importance::High)
                .group("Storage")
                .doc("io.confluent.connect.s3.format.json.JsonFormat (JSON lines), io.confluent.connect.s3.format.bytearray.ByteArrayFormat (raw bytes) or io.confluent.connect.s3.format.parquet.ParquetFormat"),
        )
        .define(
            ConfigKey::int(FLUSH_SIZE)
                .validator(Validator::at_least(1))
                .importance(Importance::High)
                .group("Connector")
                .doc("Records per topic partition after which the open objects are uploaded and a new set begins"),
        )
        .define(
            ConfigKey::long(ROTATE_INTERVAL)
                .default("-1")
                .group("Connector")
                .doc("Upload once the record timestamps in the open objects span this many ms (record time: deterministic, so exactly-once holds); -1: off"),
        )
        .define(
            ConfigKey::long(ROTATE_SCHEDULE)
                .default("-1")
                .group("Connector")
                .doc("Upload the open objects every this many ms of wall-clock time; -1: off. Wall-clock rotation is not deterministic: around a crash a record may land in two objects"),
        )
        .define(
            ConfigKey::int(PART_SIZE)
                .default("26214400")
                .validator(Validator::between(MIN_PART_SIZE, i64::from(i32::MAX)))
                .group("S3")
                .doc("The part size of multipart uploads; an object larger than this is uploaded in parts"),
        )
        .define(
            ConfigKey::string(COMPRESSION)
                .default("none")
                .validator(Validator::one_of(&["none", "gzip"]))
                .group("Storage")
                .doc("Compression of JSON and ByteArray objects"),
        )
        .define(
            ConfigKey::int(COMPRESSION_LEVEL)
                .default("-1")
                .validator(Validator::between(-1, 9))
                .group("Storage")
                .doc("The gzip level, 0-9; -1: the default (6)"),
        )
        .define(
            ConfigKey::string(PARQUET_CODEC)
                .default("snappy")
                .validator(Validator::one_of(&["none", "snappy", "gzip"]))
                .group("Storage")
                .doc("The compression codec of Parquet objects"),
        )
        .define(
            ConfigKey::string(SEPARATOR)
                .default("\n")
                .group("Storage")
                .doc("ByteArrayFormat: written after each record"),
        )
        .define(
            ConfigKey::string(BYTES_EXTENSION)
                .default(".bin")
                .group("Storage")
                .doc("ByteArrayFormat: the objects' extension"),
        )
        .define(
            ConfigKey::class(PARTITIONER)
                .default("io.confluent.connect.storage.partitioner.DefaultPartitioner")
                .group("Partitioner")
                .doc("DefaultPartitioner (partition=N), FieldPartitioner (partition.field.name), TimeBasedPartitioner (path.format, partition.duration.ms), HourlyPartitioner or DailyPartitioner, by Confluent's class names or simple names"),
        )
        .define(
            ConfigKey::list(PARTITION_FIELDS)
                .default("")
                .group("Partitioner")
                .doc("FieldPartitioner: the value fields whose values name the directory, in order"),
        )
        .define(
            ConfigKey::string(PATH_FORMAT)
                .default("")
                .group("Partitioner")
                .doc("TimeBasedPartitioner: a Joda-Time pattern of the directories, e.g. 'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH"),
        )
        .define(
            ConfigKey::long(PARTITION_DURATION)
                .default("-1")
                .group("Partitioner")
                .doc("TimeBasedPartitioner: the ms each directory covers"),
        )
        .define(
            ConfigKey::string(LOCALE)
                .default("")
                .group("Partitioner")
                .doc("TimeBasedPartitioner: the locale of month and day names (English names are written for every locale)"),
        )
        .define(
            ConfigKey::string(TIMEZONE)
                .default("")
                .group("Partitioner")
                .doc("TimeBasedPartitioner: the IANA time zone of the directories, e.g. UTC or Europe/Paris"),
        )
        .define(
            ConfigKey::string(TIMESTAMP_EXTRACTOR)
                .default("Wallclock")
                .validator(Validator::one_of(&["Record", "RecordField", "Wallclock"]))
                .group("Partitioner")
                .doc("TimeBasedPartitioner: the time of a record: its Kafka timestamp (Record), a field of its value (RecordField) or the time it is written (Wallclock)"),
        )
        .define(
            ConfigKey::string(TIMESTAMP_FIELD)
                .default("timestamp")
                .group("Partitioner")
                .doc("RecordField: the value field (ms since the epoch, a Timestamp, or an ISO-8601 string)"),
        )
        .define(
            ConfigKey::long(RETRY_BACKOFF)
                .default("200")
                .validator(Validator::at_least(1))
                .group("S3")
                .doc("The first backoff of a request retried after throttling or a 5xx answer; it doubles each attempt"),
        )
        .define(
            ConfigKey::int(PART_RETRIES)
                .default("3")
                .validator(Validator::at_least(0))
                .group("S3")
                .doc("How many times a request is retried before the put fails (retriably: the worker redelivers)"),
        )
        .define(
            ConfigKey::int(ZERO_PAD)
                .default("10")
                .validator(Validator::between(0, 19))
                .group("Storage")
                .doc("The width the start offset in object names is zero-padded to"),
        )
        .define(
            ConfigKey::string(NULL_VALUES)
                .default("fail")
                .validator(Validator::one_of(&["fail", "ignore"]))
                .group("Connector")
                .doc("What a record with a null value (a tombstone) does: fail the task, or be skipped"),
        )
}

/// Where and how to reach the store.
#[derive(Clone)]
pub struct StoreSettings {
    pub bucket: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub path_style: bool,
    pub credentials: Option<(String, String)>,
    pub retry_backoff: Duration,
    pub retries: u32,
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials.as_ref().map(|(id, _)| id))
            .finish()
    }
}

/// What a record with a null value does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullValues {
    Fail,
    Ignore,
}

/// The validated config of a task.
#[derive(Debug, Clone)]
pub struct S3SinkConfig {
    pub store: StoreSettings,
    pub topics_dir: String,
    pub format: FormatKind,
    pub compression: Compression,
    pub flush_size: u64,
    pub rotate_interval_ms: Option<i64>,
    pub rotate_schedule_ms: Option<i64>,
    pub part_size: usize,
    pub partitioner: PartitionerKind,
    pub zero_pad: usize,
    pub null_values: NullValues,
    /// The extractor `rotate.interval.ms` measures record time with.
    pub rotation_clock: TimestampExtractor,
}

impl S3SinkConfig {
    /// Parse and check a raw config; the error lists every problem, each naming its key.
    pub fn from_raw(raw: &RawConfig) -> Result<S3SinkConfig> {
        let c = config_def().parse(raw)?;
        Self::from_config(&c)
    }

    pub fn from_config(c: &Config) -> Result<S3SinkConfig> {
        let mut errors = Vec::new();
        let s = |k: &str| c.string(k).unwrap_or_default().to_owned();
        let l = |k: &str| c.long(k).unwrap_or(-1);
        let format = match FormatKind::from_class(&s(FORMAT)) {
            Some(f) => f,
            None => {
                errors.push(format!(
                    "Invalid value {} for configuration {FORMAT}: use io.confluent.connect.s3.format.json.JsonFormat, io.confluent.connect.s3.format.bytearray.ByteArrayFormat or io.confluent.connect.s3.format.parquet.ParquetFormat",
                    s(FORMAT)
                ));
                FormatKind::Json
            }
        };
        let level = c.int(COMPRESSION_LEVEL).unwrap_or(-1);
        let gzip_level = if level < 0 { 6 } else { level as u32 };
        let compression = match (&format, s(COMPRESSION).as_str()) {
            (FormatKind::Parquet, _) => Compression::Parquet(match s(PARQUET_CODEC).as_str() {
                "none" => ParquetCodec::None,
                "gzip" => ParquetCodec::Gzip,
                _ => ParquetCodec::Snappy,
            }),
            (_, "gzip") => Compression::Gzip(gzip_level),
            _ => Compression::None,
        };
        let format = match format {
            FormatKind::Bytes { .. } => FormatKind::Bytes {
                separator: unescape(&s(SEPARATOR)).into_bytes(),
                extension: s(BYTES_EXTENSION),
            },
            other => other,
        };
        let time = || -> std::result::Result<TimeSettings, String> {
            TimeSettings::new(
                &s(PATH_FORMAT),
                l(PARTITION_DURATION),
                &s(TIMEZONE),
                &s(TIMESTAMP_EXTRACTOR),
                &s(TIMESTAMP_FIELD),
            )
        };
        let class = s(PARTITIONER);
        let simple = class.rsplit('.').next().unwrap_or_default();
        let partitioner = match simple {
            "DefaultPartitioner" | "Default" => PartitionerKind::Default,
            "FieldPartitioner" | "Field" => {
                let fields: Vec<String> = c
                    .list(PARTITION_FIELDS)
                    .unwrap_or_default()
                    .iter()
                    .filter(|f| !f.is_empty())
                    .cloned()
                    .collect();
                if fields.is_empty() {
                    errors.push(format!(
                        "Missing configuration {PARTITION_FIELDS}: FieldPartitioner needs the value fields to partition by"
                    ));
                }
                PartitionerKind::Field(fields)
            }
            "TimeBasedPartitioner"
            | "TimeBased"
            | "HourlyPartitioner"
            | "Hourly"
            | "DailyPartitioner"
            | "Daily" => {
                let mut time = match simple {
                    "HourlyPartitioner" | "Hourly" => TimeSettings::new(
                        "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH",
                        3_600_000,
                        &s(TIMEZONE),
                        &s(TIMESTAMP_EXTRACTOR),
                        &s(TIMESTAMP_FIELD),
                    ),
                    "DailyPartitioner" | "Daily" => TimeSettings::new(
                        "'year'=YYYY/'month'=MM/'day'=dd",
                        86_400_000,
                        &s(TIMEZONE),
                        &s(TIMESTAMP_EXTRACTOR),
                        &s(TIMESTAMP_FIELD),
                    ),
                    _ => time(),
                };
                if let Ok(t) = &mut time
                    && s(LOCALE).is_empty()
                {
                    // Confluent requires a locale; its only use is month and day names.
                    t.locale_missing = true;
                }
                match time {
                    Ok(t) if t.locale_missing => {
                        errors.push(format!(
                            "Missing configuration {LOCALE}: the time-based partitioners need a locale, e.g. en-US"
                        ));
                        PartitionerKind::Default
                    }
                    Ok(t) => PartitionerKind::Time(Box::new(t)),
                    Err(e) => {
                        errors.push(e);
                        PartitionerKind::Default
                    }
                }
            }
            _ => {
                errors.push(format!(
                    "Invalid value {class} for configuration {PARTITIONER}: use DefaultPartitioner, FieldPartitioner, TimeBasedPartitioner, HourlyPartitioner or DailyPartitioner (io.confluent.connect.storage.partitioner.*)"
                ));
                PartitionerKind::Default
            }
        };
        let rotation_clock = match &partitioner {
            PartitionerKind::Time(t) => t.extractor.clone(),
            _ => TimestampExtractor::Record,
        };
        let credentials = match (c.string(ACCESS_KEY), c.password(SECRET_KEY)) {
            (Some(id), Some(secret)) if !id.is_empty() => {
                Some((id.to_owned(), secret.expose().to_owned()))
            }
            (Some(id), None) if !id.is_empty() => {
                errors.push(format!(
                    "Missing configuration {SECRET_KEY}: {ACCESS_KEY} is set, so its secret key is needed too"
                ));
                None
            }
            _ => None,
        };
        let positive = |k: &str| Some(l(k)).filter(|v| *v > 0);
        if !errors.is_empty() {
            return Err(ConnectError::new(errors.join("; ")));
        }
        Ok(S3SinkConfig {
            store: StoreSettings {
                bucket: s(BUCKET),
                region: s(REGION),
                endpoint: c
                    .string(STORE_URL)
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned),
                path_style: c.boolean(PATH_STYLE).unwrap_or(true),
                credentials,
                retry_backoff: Duration::from_millis(l(RETRY_BACKOFF).max(1) as u64),
                retries: c.int(PART_RETRIES).unwrap_or(3).max(0) as u32,
            },
            topics_dir: s(TOPICS_DIR).trim_matches('/').to_owned(),
            format,
            compression,
            flush_size: c.int(FLUSH_SIZE).unwrap_or(1).max(1) as u64,
            rotate_interval_ms: positive(ROTATE_INTERVAL),
            rotate_schedule_ms: positive(ROTATE_SCHEDULE),
            part_size: c.int(PART_SIZE).unwrap_or(26_214_400) as usize,
            partitioner,
            zero_pad: c.int(ZERO_PAD).unwrap_or(10).max(0) as usize,
            null_values: if s(NULL_VALUES) == "ignore" {
                NullValues::Ignore
            } else {
                NullValues::Fail
            },
            rotation_clock,
        })
    }
}

/// `\n`, `\r`, `\t` and `\\` written out in a config value, as a properties file would
/// give them (a JSON config gives the characters themselves).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawConfig {
        let mut r: RawConfig = [
            (BUCKET, "b"),
            (FORMAT, "io.confluent.connect.s3.format.json.JsonFormat"),
            (FLUSH_SIZE, "3"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        r.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        r
    }

    #[test]
    fn defaults_and_confluent_names() {
        let c = S3SinkConfig::from_raw(&raw(&[])).unwrap();
        assert_eq!(c.topics_dir, "topics");
        assert_eq!(c.flush_size, 3);
        assert_eq!(c.part_size, 26_214_400);
        assert!(matches!(c.partitioner, PartitionerKind::Default));
        assert!(matches!(c.compression, Compression::None));
        assert_eq!(c.store.region, "us-west-2");
        let c = S3SinkConfig::from_raw(&raw(&[
            (
                FORMAT,
                "io.confluent.connect.s3.format.parquet.ParquetFormat",
            ),
            (
                PARTITIONER,
                "io.confluent.connect.storage.partitioner.FieldPartitioner",
            ),
            (PARTITION_FIELDS, "a,b"),
        ]))
        .unwrap();
        assert!(matches!(c.format, FormatKind::Parquet));
        assert!(matches!(
            c.compression,
            Compression::Parquet(ParquetCodec::Snappy)
        ));
        assert!(matches!(&c.partitioner, PartitionerKind::Field(f) if f == &["a", "b"]));
    }

    #[test]
    fn bad_configs_name_their_keys() {
        let check = |pairs: &[(&str, &str)], want: &str| {
            let e = S3SinkConfig::from_raw(&raw(pairs)).unwrap_err();
            assert!(e.message().contains(want), "{e}");
        };
        check(&[(FORMAT, "com.example.AvroFormat")], FORMAT);
        check(&[(FLUSH_SIZE, "0")], FLUSH_SIZE);
        check(&[(PART_SIZE, "1000")], PART_SIZE);
        check(&[(PARTITIONER, "FieldPartitioner")], PARTITION_FIELDS);
        check(&[(PARTITIONER, "Nope")], PARTITIONER);
        check(&[(ACCESS_KEY, "AKIA")], SECRET_KEY);
        check(
            &[(PARTITIONER, "TimeBasedPartitioner"), (LOCALE, "en-US")],
            PATH_FORMAT,
        );
        check(
            &[
                (PARTITIONER, "TimeBasedPartitioner"),
                (PATH_FORMAT, "YYYY"),
                (PARTITION_DURATION, "3600000"),
                (TIMEZONE, "UTC"),
            ],
            LOCALE,
        );
        check(
            &[
                (PARTITIONER, "TimeBasedPartitioner"),
                (PATH_FORMAT, "YYYY"),
                (PARTITION_DURATION, "3600000"),
                (LOCALE, "en"),
                (TIMEZONE, "Mars/Olympus"),
            ],
            TIMEZONE,
        );
    }

    #[test]
    fn separators_unescape() {
        let c = S3SinkConfig::from_raw(&raw(&[
            (
                FORMAT,
                "io.confluent.connect.s3.format.bytearray.ByteArrayFormat",
            ),
            (SEPARATOR, "\\r\\n"),
        ]))
        .unwrap();
        assert!(matches!(&c.format, FormatKind::Bytes { separator, .. } if separator == b"\r\n"));
    }
}
