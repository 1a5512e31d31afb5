//! Broker-level settings: where data lives, the defaults every topic inherits (Kafka's
//! broker key names: `log.segment.bytes`, `log.retention.hours`, ...), and how often
//! background maintenance runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::BrokerError;
use crate::log::LogConfig;
use crate::log::config::KEYS;

/// The settings of one broker.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    pub data_dir: PathBuf,
    /// Defaults for every topic, from the broker-level `log.*` keys.
    pub log_defaults: Arc<LogConfig>,
    /// `log.retention.check.interval.ms`
    pub retention_check_interval: Duration,
    /// `log.cleaner.backoff.ms`
    pub cleaner_backoff: Duration,
    /// `num.partitions`: partitions of topics created without a count.
    pub num_partitions: i32,
}

impl BrokerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        BrokerConfig {
            data_dir: data_dir.into(),
            log_defaults: Arc::new(LogConfig::default()),
            retention_check_interval: Duration::from_millis(300_000),
            cleaner_backoff: Duration::from_millis(15_000),
            num_partitions: 1,
        }
    }

    /// Apply broker-level keys (from a `.properties` file or `--override`). Unknown
    /// keys are returned so the caller can warn about them.
    pub fn apply(&mut self, props: &BTreeMap<String, String>) -> Result<Vec<String>, BrokerError> {
        let mut log = (*self.log_defaults).clone();
        let mut unknown = Vec::new();
        let bad = |key: &str, value: &str, reason: &str| BrokerError::InvalidConfig {
            key: key.into(),
            value: value.into(),
            reason: reason.into(),
        };
        let millis = |key: &str, value: &str, unit: u64| -> Result<String, BrokerError> {
            let n: i64 = value
                .trim()
                .parse()
                .map_err(|_| bad(key, value, "expected a whole number"))?;
            Ok(if n < 0 {
                "-1".into()
            } else {
                (n as u64 * unit).to_string()
            })
        };
        for (key, value) in props {
            let topic_key = match key.as_str() {
                "log.dirs" | "log.dir" => {
                    self.data_dir = PathBuf::from(value.split(',').next().unwrap_or(value).trim());
                    continue;
                }
                "log.retention.check.interval.ms" => {
                    let ms: u64 = value
                        .trim()
                        .parse()
                        .map_err(|_| bad(key, value, "expected milliseconds"))?;
                    self.retention_check_interval = Duration::from_millis(ms.max(1));
                    continue;
                }
                "log.cleaner.backoff.ms" => {
                    let ms: u64 = value
                        .trim()
                        .parse()
                        .map_err(|_| bad(key, value, "expected milliseconds"))?;
                    self.cleaner_backoff = Duration::from_millis(ms.max(1));
                    continue;
                }
                "num.partitions" => {
                    let n: i32 = value
                        .trim()
                        .parse()
                        .map_err(|_| bad(key, value, "expected a whole number"))?;
                    if n < 1 {
                        return Err(bad(key, value, "must be at least 1"));
                    }
                    self.num_partitions = n;
                    continue;
                }
                "log.retention.hours" => {
                    log.set("retention.ms", &millis(key, value, 3_600_000)?)?;
                    continue;
                }
                "log.retention.minutes" => {
                    log.set("retention.ms", &millis(key, value, 60_000)?)?;
                    continue;
                }
                "log.roll.hours" => {
                    log.set("segment.ms", &millis(key, value, 3_600_000)?)?;
                    continue;
                }
                other => KEYS.iter().find(|k| k.broker_name == other).map(|k| k.name),
            };
            match topic_key {
                Some(k) => log
                    .set(k, value)
                    .map_err(|e| bad(key, value, &e.to_string()))?,
                None => unknown.push(key.clone()),
            }
        }
        // Broker defaults are not topic overrides.
        log.overrides.clear();
        self.log_defaults = Arc::new(log);
        Ok(unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::properties::parse_properties;

    #[test]
    fn broker_keys_set_topic_defaults() {
        let mut cfg = BrokerConfig::new("/tmp/x");
        let props = parse_properties(
            "log.segment.bytes=1048576\nlog.retention.hours=1\nlog.flush.interval.messages=1\nnum.partitions=4\nfoo.bar=1\n",
        )
        .unwrap();
        let unknown = cfg.apply(&props).unwrap();
        assert_eq!(unknown, vec!["foo.bar".to_string()]);
        assert_eq!(cfg.log_defaults.segment_bytes, 1 << 20);
        assert_eq!(cfg.log_defaults.retention_ms, Some(3_600_000));
        assert_eq!(cfg.log_defaults.flush.every_messages, 1);
        assert_eq!(cfg.num_partitions, 4);
        assert!(cfg.log_defaults.overrides.is_empty());
        let err = cfg
            .apply(&parse_properties("log.segment.bytes=big").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("log.segment.bytes"), "{err}");
    }

    #[test]
    fn example_config_loads_and_matches_the_defaults() {
        let text = include_str!("../../configs/broker.properties");
        let mut cfg = BrokerConfig::new("/elsewhere");
        let unknown = cfg.apply(&parse_properties(text).unwrap()).unwrap();
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(cfg.data_dir, std::path::PathBuf::from("./data"));
        assert_eq!(*cfg.log_defaults, LogConfig::default());
        assert_eq!(cfg.retention_check_interval, Duration::from_millis(300_000));
    }
}
