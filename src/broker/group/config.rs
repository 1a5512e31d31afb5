//! The group coordinator's settings, under Kafka's broker key names.
//!
//! Each key is declared once in [`KEYS`] with its default and doc; [`GroupConfig::apply`]
//! parses a properties map into the typed config and checks it. Pure: no I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use super::GroupError;

/// One configuration key: its Kafka name, default and meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupConfigKey {
    pub name: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
}

/// Every key the coordinator reads.
pub const KEYS: &[GroupConfigKey] = &[
    GroupConfigKey {
        name: "group.initial.rebalance.delay.ms",
        default: "3000",
        doc: "how long the first rebalance of an empty group waits for more members, extended by this much each time one joins, up to the rebalance timeout",
    },
    GroupConfigKey {
        name: "group.min.session.timeout.ms",
        default: "6000",
        doc: "smallest session timeout a member may ask for",
    },
    GroupConfigKey {
        name: "group.max.session.timeout.ms",
        default: "1800000",
        doc: "largest session timeout a member may ask for",
    },
    GroupConfigKey {
        name: "group.max.size",
        default: "2147483647",
        doc: "most members one group may have",
    },
    GroupConfigKey {
        name: "offsets.topic.num.partitions",
        default: "1",
        doc: "partitions of __consumer_offsets when it is created (Kafka's default is 50, sized for spreading coordinators over a cluster; one node gains nothing from more). An existing topic keeps its count",
    },
    GroupConfigKey {
        name: "offsets.topic.segment.bytes",
        default: "104857600",
        doc: "segment size of __consumer_offsets when it is created; smaller segments are compacted sooner",
    },
    GroupConfigKey {
        name: "offsets.retention.minutes",
        default: "10080",
        doc: "committed offsets of a group are deleted this long after the group became empty (or, for standalone consumers, after the commit)",
    },
    GroupConfigKey {
        name: "offsets.retention.check.interval.ms",
        default: "600000",
        doc: "how often expired offsets are looked for",
    },
    GroupConfigKey {
        name: "offset.metadata.max.bytes",
        default: "4096",
        doc: "longest metadata string an offset commit may carry (counted in UTF-16 units, as Kafka does)",
    },
];

/// Validated coordinator settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms`
    pub min_session_timeout: Duration,
    /// `group.max.session.timeout.ms`
    pub max_session_timeout: Duration,
    /// `group.max.size`
    pub max_size: usize,
    /// `offsets.topic.num.partitions`
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.segment.bytes`
    pub offsets_topic_segment_bytes: u64,
    /// `offsets.retention.minutes`
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms`
    pub offsets_retention_check_interval: Duration,
    /// `offset.metadata.max.bytes`
    pub offset_metadata_max_bytes: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay: Duration::from_millis(3000),
            min_session_timeout: Duration::from_millis(6000),
            max_session_timeout: Duration::from_millis(1_800_000),
            max_size: i32::MAX as usize,
            offsets_topic_num_partitions: 1,
            offsets_topic_segment_bytes: 104_857_600,
            offsets_retention: Duration::from_secs(10080 * 60),
            offsets_retention_check_interval: Duration::from_millis(600_000),
            offset_metadata_max_bytes: 4096,
        }
    }
}

impl GroupConfig {
    /// Apply the keys of [`KEYS`] found in `props` and check the result. Keys this
    /// layer does not know are returned so the caller can warn about the ones no layer
    /// knows.
    pub fn apply(&mut self, props: &BTreeMap<String, String>) -> Result<Vec<String>, GroupError> {
        let mut next = self.clone();
        let mut unknown = Vec::new();
        for (key, value) in props {
            let bad = |reason: &str| GroupError::InvalidConfig {
                key: key.clone(),
                value: value.clone(),
                reason: reason.to_owned(),
            };
            let int = |min: i64| -> Result<i64, GroupError> {
                let n: i64 = value
                    .trim()
                    .parse()
                    .map_err(|_| bad("expected a whole number"))?;
                if n < min {
                    return Err(bad(&format!("must be at least {min}")));
                }
                Ok(n)
            };
            let ms = |min: i64| int(min).map(|n| Duration::from_millis(n as u64));
            match key.as_str() {
                "group.initial.rebalance.delay.ms" => next.initial_rebalance_delay = ms(0)?,
                "group.min.session.timeout.ms" => next.min_session_timeout = ms(0)?,
                "group.max.session.timeout.ms" => next.max_session_timeout = ms(0)?,
                "group.max.size" => {
                    next.max_size = usize::try_from(int(1)?.min(i64::from(i32::MAX)))
                        .map_err(|_| bad("out of range"))?;
                }
                "offsets.topic.num.partitions" => {
                    next.offsets_topic_num_partitions =
                        i32::try_from(int(1)?).map_err(|_| bad("must be at most 2147483647"))?;
                }
                "offsets.topic.segment.bytes" => next.offsets_topic_segment_bytes = int(1)? as u64,
                "offsets.retention.minutes" => {
                    next.offsets_retention = Duration::from_secs(int(1)? as u64 * 60);
                }
                "offsets.retention.check.interval.ms" => {
                    next.offsets_retention_check_interval = ms(1)?;
                }
                "offset.metadata.max.bytes" => {
                    next.offset_metadata_max_bytes =
                        usize::try_from(int(0)?).map_err(|_| bad("out of range"))?;
                }
                _ => unknown.push(key.clone()),
            }
        }
        next.validate()?;
        *self = next;
        Ok(unknown)
    }

    /// Cross-key checks.
    pub fn validate(&self) -> Result<(), GroupError> {
        if self.min_session_timeout > self.max_session_timeout {
            return Err(GroupError::InvalidConfig {
                key: "group.min.session.timeout.ms".into(),
                value: self.min_session_timeout.as_millis().to_string(),
                reason: format!(
                    "must not exceed group.max.session.timeout.ms ({})",
                    self.max_session_timeout.as_millis()
                ),
            });
        }
        if self.offsets_topic_num_partitions < 1 {
            return Err(GroupError::InvalidConfig {
                key: "offsets.topic.num.partitions".into(),
                value: self.offsets_topic_num_partitions.to_string(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_key_table() {
        let props = KEYS
            .iter()
            .map(|k| (k.name.to_string(), k.default.to_string()))
            .collect();
        let mut cfg = GroupConfig::default();
        assert!(cfg.apply(&props).unwrap().is_empty());
        assert_eq!(cfg, GroupConfig::default());
    }

    #[test]
    fn apply_parses_checks_and_reports_unknown_keys() {
        let mut cfg = GroupConfig::default();
        let props = [
            ("group.initial.rebalance.delay.ms", "0"),
            ("offsets.retention.minutes", "1"),
            ("offsets.topic.num.partitions", "4"),
            ("log.segment.bytes", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(cfg.apply(&props).unwrap(), vec!["log.segment.bytes"]);
        assert_eq!(cfg.initial_rebalance_delay, Duration::ZERO);
        assert_eq!(cfg.offsets_retention, Duration::from_secs(60));
        assert_eq!(cfg.offsets_topic_num_partitions, 4);

        for (k, v) in [
            ("offsets.topic.num.partitions", "0"),
            ("group.max.size", "x"),
            ("group.min.session.timeout.ms", "2000000"),
        ] {
            let before = cfg.clone();
            let err = cfg
                .apply(&[(k.to_string(), v.to_string())].into_iter().collect())
                .unwrap_err()
                .to_string();
            assert!(err.contains("group.") || err.contains(k), "{err}");
            assert_eq!(cfg, before, "a failed apply leaves the config alone");
        }
    }
}
