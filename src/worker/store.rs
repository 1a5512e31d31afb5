//! The worker's state in its three internal compacted topics, with Kafka Connect's keys
//! and values, so that the topics are the only store of state:
//!
//! - configs (`connect-configs`, one partition): `connector-NAME` →
//!   `{"properties":{...}}`, `task-NAME-N` → `{"properties":{...}}`, `commit-NAME` →
//!   `{"tasks":N}` (applies the task configs written before it), `target-state-NAME` →
//!   `{"state":"STARTED|PAUSED","state.v2":"STARTED|PAUSED|STOPPED"}`; deleting a
//!   connector writes tombstones for `connector-NAME` and `target-state-NAME`.
//! - offsets (`connect-offsets`): key `["NAME",{source partition}]`, value the source
//!   offset map, both compact JSON (Kafka's internal converter is JsonConverter without
//!   schemas); null deletes.
//! - status (`connect-status`): `status-connector-NAME` / `status-task-NAME-N` →
//!   `{"state":...,"trace":...,"worker_id":...,"generation":...}`.
//!   KIP-558's active topics: `status-topic-TOPIC:connector-NAME` →
//!   `{"topic":{"name":...,"connector":...,"task":N,"discoverTimestamp":MS}}`, a tombstone
//!   when the connector's active topics are reset.
//!
//! Every write is appended and flushed to disk before the call returns; at startup each
//! store reads its topic from the beginning to the end.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value as Json, json};

use super::WorkerError;
use crate::client::{Client, ProducerRecord, ProducerSettings};

/// A connector's desired state (the config topic's target state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TargetState {
    #[default]
    Started,
    Paused,
    Stopped,
}

impl TargetState {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Started => "STARTED",
            TargetState::Paused => "PAUSED",
            TargetState::Stopped => "STOPPED",
        }
    }

    fn parse(s: &str) -> Option<TargetState> {
        match s {
            "STARTED" => Some(TargetState::Started),
            "PAUSED" => Some(TargetState::Paused),
            "STOPPED" => Some(TargetState::Stopped),
            _ => None,
        }
    }
}

/// A string-to-string config, as connectors and tasks take them.
pub type Props = BTreeMap<String, String>;

/// What the config topic says about one connector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectorRecord {
    pub config: Props,
    pub target: TargetState,
    /// The committed task configs (the last `commit-NAME`).
    pub tasks: Vec<Props>,
}

/// One compacted topic read from the start and written with flushes.
#[derive(Debug, Clone)]
pub struct TopicLog {
    client: Client,
    topic: String,
}

impl TopicLog {
    /// Create the topic (compacted) if it is missing; refuse an existing one that is not
    /// compacted, or a config topic with more than one partition, as Kafka Connect does.
    pub fn open(
        client: &Client,
        topic: &str,
        partitions: i32,
        setting: &str,
        single_partition: bool,
    ) -> Result<TopicLog, WorkerError> {
        let mut configs = BTreeMap::new();
        configs.insert("cleanup.policy".to_string(), "compact".to_string());
        let partitions = (partitions > 0).then_some(partitions);
        let (n, _) = client.ensure_topic(topic, partitions, configs)?;
        let overrides = client.topic_overrides(topic)?;
        let policy = overrides
            .get("cleanup.policy")
            .map(String::as_str)
            .unwrap_or("delete");
        if policy.trim() != "compact" {
            return Err(WorkerError::InternalTopic {
                topic: topic.to_owned(),
                reason: format!(
                    "supplied via the '{setting}' property, it is required to have \
                     'cleanup.policy=compact' to keep the worker's state, but found \
                     'cleanup.policy={policy}'; change the topic's config or use another topic"
                ),
            });
        }
        if single_partition && n != 1 {
            return Err(WorkerError::InternalTopic {
                topic: topic.to_owned(),
                reason: format!(
                    "supplied via the '{setting}' property, it is required to have a single \
                     partition to keep connector configs in order, but found {n} partitions"
                ),
            });
        }
        Ok(TopicLog {
            client: client.clone(),
            topic: topic.to_owned(),
        })
    }

    /// Every record from the beginning to the current end, partition by partition.
    pub fn read_all(&self) -> Result<Vec<(Option<Bytes>, Option<Bytes>)>, WorkerError> {
        let mut out = Vec::new();
        let ends = self.client.end_offsets(&self.topic)?;
        for (p, end) in ends.into_iter().enumerate() {
            let p = p as i32;
            let mut at =
                self.client
                    .list_offset(&self.topic, p, crate::log::OffsetSpec::Earliest)?;
            while at < end {
                let fetched = self.client.fetch(&self.topic, p, at, 1 << 20)?;
                for r in fetched.records {
                    if r.offset < end {
                        out.push((r.key, r.value));
                    }
                }
                if fetched.next_offset <= at {
                    break;
                }
                at = fetched.next_offset;
            }
        }
        Ok(out)
    }

    /// Append records and make them durable before returning.
    pub fn write(&self, records: Vec<(String, Option<Json>)>) -> Result<(), WorkerError> {
        self.write_raw(
            records
                .into_iter()
                .map(|(k, v)| (Bytes::from(k), v.map(|v| Bytes::from(v.to_string()))))
                .collect(),
        )
    }

    /// Append raw key/value records (offsets keys are JSON, not strings) durably.
    pub fn write_raw(&self, records: Vec<(Bytes, Option<Bytes>)>) -> Result<(), WorkerError> {
        let records: Vec<ProducerRecord> = records
            .into_iter()
            .map(|(k, v)| ProducerRecord {
                topic: self.topic.clone(),
                key: Some(k),
                value: v,
                ..ProducerRecord::default()
            })
            .collect();
        let positions = self.client.send(&records, &ProducerSettings::default())?;
        let mut partitions: Vec<i32> = positions.iter().map(|p| p.partition).collect();
        partitions.sort_unstable();
        partitions.dedup();
        for p in partitions {
            self.client.flush(&self.topic, p)?;
        }
        Ok(())
    }
}

fn text(b: &Option<Bytes>) -> Option<&str> {
    b.as_deref().and_then(|b| std::str::from_utf8(b).ok())
}

fn json_of(b: &Option<Bytes>) -> Option<Json> {
    b.as_deref().and_then(|b| serde_json::from_slice(b).ok())
}

fn props_of(v: &Json) -> Option<Props> {
    v.get("properties")?.as_object().map(|m| {
        m.iter()
            .map(|(k, v)| {
                let v = match v {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect()
    })
}

/// The config topic: connector configs, task configs and target states.
#[derive(Debug)]
pub struct ConfigStore {
    log: TopicLog,
    connectors: BTreeMap<String, ConnectorRecord>,
}

impl ConfigStore {
    /// Read the whole topic, applying task configs only when their commit follows.
    pub fn load(log: TopicLog) -> Result<ConfigStore, WorkerError> {
        let mut connectors: BTreeMap<String, ConnectorRecord> = BTreeMap::new();
        let mut deferred: BTreeMap<String, BTreeMap<usize, Props>> = BTreeMap::new();
        let mut target_states: BTreeMap<String, TargetState> = BTreeMap::new();
        for (key, value) in log.read_all()? {
            let Some(key) = text(&key) else { continue };
            let json = json_of(&value);
            if let Some(name) = key.strip_prefix("connector-") {
                match json.as_ref().and_then(props_of) {
                    Some(config) => {
                        connectors.entry(name.to_owned()).or_default().config = config;
                    }
                    None => {
                        connectors.remove(name);
                        deferred.remove(name);
                    }
                }
            } else if let Some(rest) = key.strip_prefix("task-") {
                let Some((name, n)) = rest.rsplit_once('-') else {
                    continue;
                };
                let (Ok(n), Some(config)) = (n.parse::<usize>(), json.as_ref().and_then(props_of))
                else {
                    continue;
                };
                deferred
                    .entry(name.to_owned())
                    .or_default()
                    .insert(n, config);
            } else if let Some(name) = key.strip_prefix("commit-") {
                let count = json
                    .as_ref()
                    .and_then(|j| j.get("tasks"))
                    .and_then(Json::as_u64)
                    .unwrap_or(0) as usize;
                let buffered = deferred.remove(name).unwrap_or_default();
                if let Some(c) = connectors.get_mut(name) {
                    let tasks: Vec<Props> = (0..count)
                        .filter_map(|i| buffered.get(&i).cloned())
                        .collect();
                    if tasks.len() == count {
                        c.tasks = tasks;
                    } else {
                        tracing::warn!(
                            connector = name,
                            "task configs incomplete in the config topic; they will be regenerated"
                        );
                        c.tasks.clear();
                    }
                }
            } else if let Some(name) = key.strip_prefix("target-state-") {
                let state = json
                    .as_ref()
                    .and_then(|j| j.get("state.v2").or_else(|| j.get("state")))
                    .and_then(Json::as_str)
                    .and_then(TargetState::parse)
                    .unwrap_or_default();
                target_states.insert(name.to_owned(), state);
            }
        }
        for (name, state) in target_states {
            if let Some(c) = connectors.get_mut(&name) {
                c.target = state;
            }
        }
        Ok(ConfigStore { log, connectors })
    }

    pub fn connectors(&self) -> &BTreeMap<String, ConnectorRecord> {
        &self.connectors
    }

    pub fn get(&self, name: &str) -> Option<&ConnectorRecord> {
        self.connectors.get(name)
    }

    /// Store a connector's config (creating it in `target` state if new).
    pub fn put_connector(
        &mut self,
        name: &str,
        config: &Props,
        target: Option<TargetState>,
    ) -> Result<(), WorkerError> {
        let mut records = vec![(
            format!("connector-{name}"),
            Some(json!({ "properties": config })),
        )];
        if let Some(t) = target {
            records.push((format!("target-state-{name}"), Some(target_json(t))));
        }
        self.log.write(records)?;
        let entry = self.connectors.entry(name.to_owned()).or_default();
        entry.config = config.clone();
        if let Some(t) = target {
            entry.target = t;
        }
        Ok(())
    }

    /// Store task configs and the commit that applies them.
    pub fn put_tasks(&mut self, name: &str, tasks: &[Props]) -> Result<(), WorkerError> {
        let mut records: Vec<(String, Option<Json>)> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("task-{name}-{i}"), Some(json!({ "properties": t }))))
            .collect();
        records.push((
            format!("commit-{name}"),
            Some(json!({ "tasks": tasks.len() })),
        ));
        self.log.write(records)?;
        if let Some(c) = self.connectors.get_mut(name) {
            c.tasks = tasks.to_vec();
        }
        Ok(())
    }

    pub fn put_target(&mut self, name: &str, target: TargetState) -> Result<(), WorkerError> {
        self.log.write(vec![(
            format!("target-state-{name}"),
            Some(target_json(target)),
        )])?;
        if let Some(c) = self.connectors.get_mut(name) {
            c.target = target;
        }
        Ok(())
    }

    pub fn delete(&mut self, name: &str) -> Result<(), WorkerError> {
        self.log.write(vec![
            (format!("connector-{name}"), None),
            (format!("target-state-{name}"), None),
        ])?;
        self.connectors.remove(name);
        Ok(())
    }
}

fn target_json(t: TargetState) -> Json {
    // `state` is what workers before STOPPED existed understand.
    let legacy = if t == TargetState::Started {
        "STARTED"
    } else {
        "PAUSED"
    };
    json!({ "state": legacy, "state.v2": t.as_str() })
}

/// The offsets topic: source offsets per connector and source partition.
#[derive(Debug)]
pub struct OffsetStore {
    log: TopicLog,
    /// (connector, source partition as canonical JSON) → offset.
    offsets: BTreeMap<(String, String), Json>,
}

impl OffsetStore {
    pub fn load(log: TopicLog) -> Result<OffsetStore, WorkerError> {
        let mut offsets = BTreeMap::new();
        for (key, value) in log.read_all()? {
            let Some(Json::Array(parts)) = json_of(&key) else {
                tracing::warn!(topic = %log.topic, "ignoring an offsets record whose key is not [connector, partition]");
                continue;
            };
            let [Json::String(name), partition] = parts.as_slice() else {
                continue;
            };
            let k = (name.clone(), partition.to_string());
            match json_of(&value) {
                Some(v) if !v.is_null() => {
                    offsets.insert(k, v);
                }
                _ => {
                    offsets.remove(&k);
                }
            }
        }
        Ok(OffsetStore { log, offsets })
    }

    /// The stored offset of `connector`'s source `partition` (a JSON object).
    pub fn get(&self, connector: &str, partition: &Json) -> Option<&Json> {
        self.offsets
            .get(&(connector.to_owned(), partition.to_string()))
    }

    /// Every stored (partition, offset) of `connector`.
    pub fn of_connector(&self, connector: &str) -> Vec<(Json, Json)> {
        self.offsets
            .iter()
            .filter(|((c, _), _)| c == connector)
            .filter_map(|((_, p), o)| Some((serde_json::from_str(p).ok()?, o.clone())))
            .collect()
    }

    /// Store offsets (`None` deletes) durably.
    pub fn put(
        &mut self,
        connector: &str,
        entries: Vec<(Json, Option<Json>)>,
    ) -> Result<(), WorkerError> {
        if entries.is_empty() {
            return Ok(());
        }
        let records = entries
            .iter()
            .map(|(p, o)| {
                let key = json!([connector, p]).to_string();
                (
                    Bytes::from(key),
                    o.as_ref().map(|o| Bytes::from(o.to_string())),
                )
            })
            .collect();
        self.log.write_raw(records)?;
        for (p, o) in entries {
            let k = (connector.to_owned(), p.to_string());
            match o {
                Some(o) => {
                    self.offsets.insert(k, o);
                }
                None => {
                    self.offsets.remove(&k);
                }
            }
        }
        Ok(())
    }
}

/// A connector's or task's runtime state (Kafka Connect's `AbstractStatus.State`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Unassigned,
    Running,
    Paused,
    Stopped,
    Failed,
    Restarting,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unassigned => "UNASSIGNED",
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Stopped => "STOPPED",
            State::Failed => "FAILED",
            State::Restarting => "RESTARTING",
        }
    }
}

/// One status record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub trace: Option<String>,
    pub worker_id: String,
    pub generation: i64,
}

/// The status topic, written as states change; also kept in memory for the REST API.
#[derive(Debug, Clone)]
pub struct StatusStore {
    log: TopicLog,
    worker_id: Arc<str>,
}

impl StatusStore {
    pub fn new(log: TopicLog, worker_id: &str) -> StatusStore {
        StatusStore {
            log,
            worker_id: worker_id.into(),
        }
    }

    fn record(&self, state: State, trace: Option<&str>) -> Json {
        json!({ "state": state.as_str(), "trace": trace, "worker_id": &*self.worker_id, "generation": 0 })
    }

    pub fn put_connector(
        &self,
        name: &str,
        state: State,
        trace: Option<&str>,
    ) -> Result<(), WorkerError> {
        self.log.write(vec![(
            format!("status-connector-{name}"),
            Some(self.record(state, trace)),
        )])
    }

    pub fn put_task(
        &self,
        name: &str,
        task: usize,
        state: State,
        trace: Option<&str>,
    ) -> Result<(), WorkerError> {
        self.log.write(vec![(
            format!("status-task-{name}-{task}"),
            Some(self.record(state, trace)),
        )])
    }

    /// Tombstones for a deleted connector and its tasks.
    pub fn delete(&self, name: &str, tasks: usize) -> Result<(), WorkerError> {
        let mut records = vec![(format!("status-connector-{name}"), None)];
        records.extend((0..tasks).map(|t| (format!("status-task-{name}-{t}"), None)));
        self.log.write(records)
    }

    /// Record that `task` of `connector` used `topic` (KIP-558), discovered at `at_ms`.
    pub fn put_topic(
        &self,
        connector: &str,
        topic: &str,
        task: usize,
        at_ms: i64,
    ) -> Result<(), WorkerError> {
        let value = json!({ "topic": {
            "name": topic,
            "connector": connector,
            "task": task,
            "discoverTimestamp": at_ms,
        }});
        self.log
            .write(vec![(topic_status_key(topic, connector), Some(value))])
    }

    /// Tombstones for `connector`'s active `topics`.
    pub fn delete_topics(&self, connector: &str, topics: &[String]) -> Result<(), WorkerError> {
        if topics.is_empty() {
            return Ok(());
        }
        self.log.write(
            topics
                .iter()
                .map(|t| (topic_status_key(t, connector), None))
                .collect(),
        )
    }

    /// Every connector's active topics as the status topic holds them (later records
    /// win; tombstones remove): connector → topic → the task that found it.
    pub fn load_topics(&self) -> Result<BTreeMap<String, BTreeMap<String, usize>>, WorkerError> {
        let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for (key, value) in self.log.read_all()? {
            let Some((topic, connector)) = text(&key).and_then(parse_topic_status_key) else {
                continue;
            };
            let task = json_of(&value).and_then(|v| {
                let t = v.get("topic")?;
                // A record of another connector under this key would be corrupt.
                (t.get("name")?.as_str()? == topic).then_some(())?;
                t.get("task")?.as_u64()
            });
            match task {
                Some(task) => {
                    out.entry(connector.to_owned())
                        .or_default()
                        .insert(topic.to_owned(), task as usize);
                }
                None => {
                    if let Some(topics) = out.get_mut(connector) {
                        topics.remove(topic);
                    }
                }
            }
        }
        out.retain(|_, topics| !topics.is_empty());
        Ok(out)
    }
}

/// Kafka's key of an active-topic record: `status-topic-TOPIC:connector-NAME`.
pub fn topic_status_key(topic: &str, connector: &str) -> String {
    format!("status-topic-{topic}:connector-{connector}")
}

/// (topic, connector) of an active-topic record's key. Topic names cannot contain `:`,
/// so the first `:connector-` separates them, whatever the connector's name holds.
pub fn parse_topic_status_key(key: &str) -> Option<(&str, &str)> {
    key.strip_prefix("status-topic-")?.split_once(":connector-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_status_keys_are_kafkas() {
        let key = topic_status_key("orders", "my:connector-x");
        assert_eq!(key, "status-topic-orders:connector-my:connector-x");
        assert_eq!(
            parse_topic_status_key(&key),
            Some(("orders", "my:connector-x"))
        );
        assert_eq!(parse_topic_status_key("status-task-c-0"), None);
        assert_eq!(parse_topic_status_key("status-topic-orders"), None);
    }
}
