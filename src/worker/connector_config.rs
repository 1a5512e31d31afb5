//! A connector's config: the JSON users deploy (`{"name": ..., "config": {...}}` or a
//! flat map, as Kafka Connect accepts them) and the keys the worker itself reads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;

use super::WorkerError;
use super::store::Props;
use super::transform::{self, Chain};

/// Parse a connector JSON document into (name, config). In the flat form `name` is a
/// key of the map; in the wrapped form a `name` inside `config` must agree. Non-string
/// values (numbers, booleans) are taken as their JSON text.
pub fn parse_connector_json(text: &str) -> Result<(String, Props), WorkerError> {
    let bad = |reason: String| WorkerError::ConnectorConfig {
        connector: "?".into(),
        key: "(document)".into(),
        reason,
    };
    let doc: Json = serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let Json::Object(top) = doc else {
        return Err(bad("expected a JSON object".into()));
    };
    let (name, map) = match top.get("config") {
        Some(Json::Object(config)) => {
            let name = top.get("name").and_then(Json::as_str).map(str::to_owned);
            (name, config.clone())
        }
        Some(_) => return Err(bad("\"config\" must be an object of string values".into())),
        None => (None, top.clone()),
    };
    let config = props_from_json(&map)?;
    let name = match (name, config.get("name")) {
        (Some(a), Some(b)) if &a != b => {
            return Err(WorkerError::ConnectorConfig {
                connector: a.clone(),
                key: "name".into(),
                reason: format!("the document names it {a:?} but its config says {b:?}"),
            });
        }
        (Some(a), _) => a,
        (None, Some(b)) => b.clone(),
        (None, None) => return Err(bad("missing \"name\"".into())),
    };
    let mut config = config;
    config.insert("name".into(), name.clone());
    check_name(&name)?;
    Ok((name, config))
}

/// A JSON object's values as strings.
pub fn props_from_json(map: &serde_json::Map<String, Json>) -> Result<Props, WorkerError> {
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                Json::String(s) => s.clone(),
                Json::Null => String::new(),
                Json::Number(_) | Json::Bool(_) => v.to_string(),
                _ => {
                    return Err(WorkerError::ConnectorConfig {
                        connector: map.get("name").and_then(Json::as_str).unwrap_or("?").into(),
                        key: k.clone(),
                        reason: "values must be strings, numbers or booleans".into(),
                    });
                }
            };
            Ok((k.clone(), v))
        })
        .collect()
}

/// Kafka Connect's rule: non-empty, no ISO control characters; we also refuse `/` so the
/// name can be a REST path segment.
pub fn check_name(name: &str) -> Result<(), WorkerError> {
    if name.trim().is_empty() || name.chars().any(char::is_control) || name.contains('/') {
        return Err(WorkerError::ConnectorConfig {
            connector: name.to_owned(),
            key: "name".into(),
            reason: "must be non-empty, without control characters or '/'".into(),
        });
    }
    Ok(())
}

/// `errors.tolerance`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tolerance {
    None,
    All,
}

/// The keys every connector has, parsed.
#[derive(Clone, Debug)]
pub struct CommonConfig {
    pub name: String,
    pub class: String,
    pub tasks_max: usize,
    pub tolerance: Tolerance,
    pub retry_timeout: Option<Duration>,
    pub retry_delay_max: Duration,
    pub log_errors: bool,
    pub log_include_messages: bool,
    pub dlq_topic: Option<String>,
    pub dlq_context_headers: bool,
    /// Sinks: `topics` (a list) or `topics.regex`.
    pub topics: Vec<String>,
    pub topics_regex: Option<String>,
    /// Sources: `topic.creation.*` (KIP-158), when the connector sets the default
    /// group's `partitions` and `replication.factor`.
    pub topic_creation: Option<TopicCreation>,
    /// `transforms` and `predicates`, built (empty when none are configured).
    pub transforms: Arc<Chain>,
}

/// How a source connector's topics are created (KIP-158).
#[derive(Clone, Debug)]
pub struct TopicCreation {
    /// The groups of `topic.creation.groups`, in order, then `default`.
    pub groups: Vec<TopicGroup>,
}

/// One `topic.creation.GROUP.*` group.
#[derive(Clone, Debug)]
pub struct TopicGroup {
    pub name: String,
    pub include: Vec<regex::Regex>,
    pub exclude: Vec<regex::Regex>,
    /// `partitions`; -1 or unset: the broker's default.
    pub partitions: Option<i32>,
    /// Every other `topic.creation.GROUP.KEY`: topic configs (cleanup.policy, ...).
    pub configs: BTreeMap<String, String>,
}

impl TopicCreation {
    /// The group whose include matches `topic` and whose exclude does not (the
    /// default group matches every topic).
    pub fn group_for(&self, topic: &str) -> &TopicGroup {
        let full = |re: &regex::Regex| {
            re.find(topic)
                .is_some_and(|m| m.start() == 0 && m.end() == topic.len())
        };
        self.groups
            .iter()
            .find(|g| {
                (g.name == "default" || g.include.iter().any(full)) && !g.exclude.iter().any(full)
            })
            .unwrap_or_else(|| &self.groups[self.groups.len() - 1])
    }

    fn parse(name: &str, config: &Props) -> Result<Option<TopicCreation>, WorkerError> {
        let bad = |key: String, reason: String| WorkerError::ConnectorConfig {
            connector: name.to_owned(),
            key,
            reason,
        };
        let get = |k: &str| config.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let default_set = get("topic.creation.default.partitions").is_some()
            || get("topic.creation.default.replication.factor").is_some();
        if !default_set {
            return Ok(None);
        }
        let mut names: Vec<String> = get("topic.creation.groups")
            .map(|v| {
                v.split(',')
                    .map(|g| g.trim().to_owned())
                    .filter(|g| !g.is_empty() && g != "default")
                    .collect()
            })
            .unwrap_or_default();
        names.push("default".into());
        let mut groups = Vec::new();
        for g in names {
            let prefix = format!("topic.creation.{g}.");
            let regexes = |key: &str| -> Result<Vec<regex::Regex>, WorkerError> {
                let k = format!("{prefix}{key}");
                get(&k)
                    .map(|v| {
                        v.split(',')
                            .map(str::trim)
                            .filter(|r| !r.is_empty())
                            .map(|r| {
                                regex::Regex::new(r).map_err(|e| {
                                    bad(
                                        k.clone(),
                                        format!("{r:?} is not a valid regular expression: {e}"),
                                    )
                                })
                            })
                            .collect()
                    })
                    .unwrap_or(Ok(Vec::new()))
            };
            let include = regexes("include")?;
            if g != "default" && include.is_empty() {
                return Err(bad(
                    format!("{prefix}include"),
                    format!("group {g} is listed in topic.creation.groups but includes no topics"),
                ));
            }
            let exclude = regexes("exclude")?;
            let partitions = match get(&format!("{prefix}partitions")) {
                None => None,
                Some(v) => match v.parse::<i32>() {
                    Ok(-1) => None,
                    Ok(n) if n >= 1 => Some(n),
                    _ => {
                        return Err(bad(
                            format!("{prefix}partitions"),
                            format!("{v:?}: expected a partition count >= 1 or -1"),
                        ));
                    }
                },
            };
            if let Some(v) = get(&format!("{prefix}replication.factor"))
                && !matches!(v.parse::<i32>(), Ok(-1) | Ok(1..))
            {
                return Err(bad(
                    format!("{prefix}replication.factor"),
                    format!("{v:?}: expected a replication factor >= 1 or -1"),
                ));
            }
            let configs = with_prefix(config, &prefix)
                .into_iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "include" | "exclude" | "partitions" | "replication.factor"
                    )
                })
                .collect();
            groups.push(TopicGroup {
                name: g,
                include,
                exclude,
                partitions,
                configs,
            });
        }
        Ok(Some(TopicCreation { groups }))
    }
}

impl CommonConfig {
    pub fn parse(name: &str, config: &Props) -> Result<CommonConfig, WorkerError> {
        let bad = |key: &str, reason: &str| WorkerError::ConnectorConfig {
            connector: name.to_owned(),
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        let get = |k: &str| config.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let class = get("connector.class")
            .ok_or_else(|| {
                bad(
                    "connector.class",
                    "missing; name the connector plugin (e.g. FileStreamSource)",
                )
            })?
            .to_owned();
        let tasks_max = match get("tasks.max") {
            None => 1,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| bad("tasks.max", &format!("{v:?} is not an integer >= 1")))?,
        };
        let boolean = |k: &str| -> Result<bool, WorkerError> {
            match get(k) {
                None | Some("false") => Ok(false),
                Some("true") => Ok(true),
                Some(v) => Err(bad(k, &format!("{v:?}: expected true or false"))),
            }
        };
        let tolerance = match get("errors.tolerance") {
            None | Some("none") => Tolerance::None,
            Some("all") => Tolerance::All,
            Some(v) => {
                return Err(bad(
                    "errors.tolerance",
                    &format!("{v:?}: expected none or all"),
                ));
            }
        };
        let ms = |k: &str, default: i64| -> Result<i64, WorkerError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= -1)
                    .ok_or_else(|| bad(k, &format!("{v:?}: expected milliseconds (or -1)"))),
            }
        };
        let retry = ms("errors.retry.timeout", 0)?;
        let topics: Vec<String> = get("topics")
            .map(|v| {
                v.split(',')
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let topics_regex = get("topics.regex").map(str::to_owned);
        // Every transform error is found; the first is the refusal (the validate endpoint
        // lists them all, see transform::validate).
        let transforms = transform::parse(config).map_err(|errors| {
            let first = errors.into_iter().next();
            WorkerError::ConnectorConfig {
                connector: name.to_owned(),
                key: first
                    .as_ref()
                    .map_or_else(|| "transforms".into(), |e| e.key.clone()),
                reason: first.map_or_else(String::new, |e| e.message),
            }
        })?;
        Ok(CommonConfig {
            name: name.to_owned(),
            class,
            tasks_max,
            tolerance,
            retry_timeout: match retry {
                -1 => None,
                n => Some(Duration::from_millis(n as u64)),
            },
            retry_delay_max: Duration::from_millis(
                ms("errors.retry.delay.max.ms", 60_000)?.max(0) as u64
            ),
            log_errors: boolean("errors.log.enable")?,
            log_include_messages: boolean("errors.log.include.messages")?,
            dlq_topic: get("errors.deadletterqueue.topic.name").map(str::to_owned),
            dlq_context_headers: boolean("errors.deadletterqueue.context.headers.enable")?,
            topics,
            topics_regex,
            topic_creation: TopicCreation::parse(name, config)?,
            transforms: Arc::new(transforms),
        })
    }

    /// A sink's subscription, checked as Kafka Connect checks it.
    pub fn subscription(&self) -> Result<crate::client::Subscription, WorkerError> {
        let bad = |key: &str, reason: &str| WorkerError::ConnectorConfig {
            connector: self.name.clone(),
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        match (&self.topics_regex, self.topics.is_empty()) {
            (Some(_), false) => Err(bad(
                "topics",
                "topics and topics.regex are mutually exclusive options, but both are set",
            )),
            (None, true) => Err(bad(
                "topics",
                "Must configure one of topics or topics.regex",
            )),
            (Some(re), true) => regex::Regex::new(re)
                .map(crate::client::Subscription::Pattern)
                .map_err(|e| {
                    bad(
                        "topics.regex",
                        &format!("not a valid regular expression: {e}"),
                    )
                }),
            (None, false) => {
                if let Some(dlq) = &self.dlq_topic
                    && self.topics.contains(dlq)
                {
                    return Err(bad(
                        "errors.deadletterqueue.topic.name",
                        "the dead letter queue cannot be one of the topics the connector consumes",
                    ));
                }
                Ok(crate::client::Subscription::Topics(self.topics.clone()))
            }
        }
    }
}

/// Keys with `prefix`, prefix stripped.
pub fn with_prefix(config: &Props, prefix: &str) -> BTreeMap<String, String> {
    config
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_owned(), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_document_forms() {
        let (name, c) = parse_connector_json(
            r#"{"name":"s","config":{"connector.class":"FileStreamSource","tasks.max":2,"file":"/tmp/x"}}"#,
        )
        .unwrap();
        assert_eq!(name, "s");
        assert_eq!(c["tasks.max"], "2");
        assert_eq!(c["name"], "s");
        let (name, _) = parse_connector_json(r#"{"name":"flat","connector.class":"X"}"#).unwrap();
        assert_eq!(name, "flat");
        for bad in [
            "{",
            "[]",
            r#"{"connector.class":"X"}"#,
            r#"{"name":"a","config":{"name":"b"}}"#,
            r#"{"name":"a","config":{"x":[1]}}"#,
            r#"{"name":"a/b","config":{}}"#,
        ] {
            assert!(parse_connector_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn common_keys() {
        let props = |pairs: &[(&str, &str)]| -> Props {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let c = CommonConfig::parse("n", &props(&[("connector.class", "X"), ("topics", "a, b")]))
            .unwrap();
        assert_eq!(c.tasks_max, 1);
        assert_eq!(c.topics, vec!["a", "b"]);
        assert!(c.subscription().is_ok());
        let err = CommonConfig::parse("n", &props(&[("connector.class", "X"), ("tasks.max", "0")]))
            .unwrap_err();
        assert!(err.to_string().contains("tasks.max"));
        let c = CommonConfig::parse("n", &props(&[("connector.class", "X")])).unwrap();
        assert!(
            c.subscription()
                .unwrap_err()
                .to_string()
                .contains("topics or topics.regex")
        );
        let c = CommonConfig::parse(
            "n",
            &props(&[
                ("connector.class", "X"),
                ("topics", "a"),
                ("topics.regex", "a.*"),
            ]),
        )
        .unwrap();
        assert!(
            c.subscription()
                .unwrap_err()
                .to_string()
                .contains("mutually exclusive")
        );
        assert!(CommonConfig::parse("n", &props(&[])).is_err());
        // Transforms: built with the config; the first error names the alias's key.
        let err = CommonConfig::parse(
            "n",
            &props(&[("connector.class", "X"), ("transforms", "r")]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("invalid config transforms.r.type: missing required key"),
            "{err}"
        );
        let c = CommonConfig::parse(
            "n",
            &props(&[
                ("connector.class", "X"),
                ("transforms", "r"),
                ("transforms.r.type", "RegexRouter"),
                ("transforms.r.regex", "a"),
                ("transforms.r.replacement", "b"),
            ]),
        )
        .unwrap();
        assert_eq!(c.transforms.len(), 1);
        assert!(
            CommonConfig::parse("n", &props(&[("connector.class", "X")]))
                .unwrap()
                .transforms
                .is_empty()
        );

        // topic.creation: groups in order, default last; other keys are topic configs.
        let c = CommonConfig::parse(
            "n",
            &props(&[
                ("connector.class", "X"),
                ("topic.creation.groups", "compacted"),
                ("topic.creation.default.partitions", "3"),
                ("topic.creation.default.replication.factor", "-1"),
                ("topic.creation.compacted.include", "state-.*, users"),
                ("topic.creation.compacted.exclude", "state-tmp"),
                ("topic.creation.compacted.partitions", "1"),
                ("topic.creation.compacted.cleanup.policy", "compact"),
            ]),
        )
        .unwrap();
        let tc = c.topic_creation.unwrap();
        assert_eq!(tc.group_for("state-x").name, "compacted");
        assert_eq!(tc.group_for("state-x").configs["cleanup.policy"], "compact");
        assert_eq!(tc.group_for("state-tmp").name, "default");
        assert_eq!(tc.group_for("users").partitions, Some(1));
        assert_eq!(tc.group_for("other").partitions, Some(3));
        let none = CommonConfig::parse("n", &props(&[("connector.class", "X")])).unwrap();
        assert!(none.topic_creation.is_none());
        let err = CommonConfig::parse(
            "n",
            &props(&[
                ("connector.class", "X"),
                ("topic.creation.groups", "g"),
                ("topic.creation.default.partitions", "1"),
            ]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("topic.creation.g.include"),
            "{err}"
        );
    }

    /// Every connector config in configs/ loads, its transforms included.
    #[test]
    fn example_connector_configs_load() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let (name, props) =
                parse_connector_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let common = CommonConfig::parse(&name, &props)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if props.contains_key("transforms") {
                assert!(!common.transforms.is_empty(), "{}", path.display());
            }
            checked += 1;
        }
        assert!(checked >= 3, "only {checked} connector configs in configs/");
    }
}
