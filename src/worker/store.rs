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

/// How a missing internal topic is created: `PREFIX.replication.factor` (-1 or unset:
/// the cluster's default) and the other `PREFIX.*` keys as topic configs, for `PREFIX`
/// `config.storage`, `offset.storage` or `status.storage`.
#[derive(Debug, Clone, Default)]
pub struct TopicSettings {
    pub replication: Option<i16>,
    pub configs: BTreeMap<String, String>,
}

impl TopicSettings {
    pub fn from_worker(
        raw: &BTreeMap<String, String>,
        prefix: &str,
    ) -> Result<TopicSettings, WorkerError> {
        let mut out = TopicSettings::default();
        for (k, v) in raw {
            let Some(key) = k.strip_prefix(prefix).and_then(|k| k.strip_prefix('.')) else {
                continue;
            };
            match key {
                // offset.storage.file.filename is standalone Kafka Connect's, not a topic config.
                "topic" | "partitions" | "file.filename" => {}
                "replication.factor" => {
                    let n: i16 = v.trim().parse().map_err(|_| WorkerError::Config {
                        key: k.clone(),
                        value: v.clone(),
                        reason:
                            "expected a replication factor >= 1, or -1 for the cluster's default"
                                .into(),
                    })?;
                    if n == 0 || n < -1 {
                        return Err(WorkerError::Config {
                            key: k.clone(),
                            value: v.clone(),
                            reason: "expected a replication factor >= 1, or -1 for the cluster's default".into(),
                        });
                    }
                    out.replication = (n > 0).then_some(n);
                }
                other => {
                    out.configs.insert(other.to_owned(), v.clone());
                }
            }
        }
        Ok(out)
    }
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
        TopicLog::open_with(
            client,
            topic,
            partitions,
            setting,
            single_partition,
            &TopicSettings::default(),
        )
    }

    /// [`TopicLog::open`] creating a missing topic with `settings` (Kafka Connect's
    /// `config.storage.replication.factor` and other `config.storage.*` keys).
    pub fn open_with(
        client: &Client,
        topic: &str,
        partitions: i32,
        setting: &str,
        single_partition: bool,
        settings: &TopicSettings,
    ) -> Result<TopicLog, WorkerError> {
        let mut configs = settings.configs.clone();
        // Always compacted, whatever the extra settings say (as Kafka Connect does).
        configs.insert("cleanup.policy".to_string(), "compact".to_string());
        let partitions = (partitions > 0).then_some(partitions);
        let (n, _) =
            client.ensure_topic_replicated(topic, partitions, settings.replication, configs)?;
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
        self.read_new(&mut Vec::new())
    }

    /// The records after `positions` (the next offset to read, per partition; a
    /// partition not in it yet is read from its start) up to the current end, advancing
    /// `positions`: how a store follows what other workers write.
    pub fn read_new(
        &self,
        positions: &mut Vec<i64>,
    ) -> Result<Vec<(Option<Bytes>, Option<Bytes>)>, WorkerError> {
        let mut out = Vec::new();
        let ends = self.client.end_offsets(&self.topic)?;
        for (p, end) in ends.into_iter().enumerate() {
            if positions.len() <= p {
                let start = self.client.list_offset(
                    &self.topic,
                    p as i32,
                    crate::log::OffsetSpec::Earliest,
                )?;
                positions.push(start);
            }
            let mut at = positions[p];
            let p32 = p as i32;
            while at < end {
                let fetched = self.client.fetch(&self.topic, p32, at, 1 << 20)?;
                for r in fetched.records {
                    if r.offset < end && r.offset >= at {
                        out.push((r.key, r.value));
                    }
                }
                if fetched.next_offset <= at {
                    break;
                }
                at = fetched.next_offset.min(end);
            }
            positions[p] = at.max(positions[p]);
        }
        Ok(out)
    }

    pub fn topic(&self) -> &str {
        &self.topic
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

/// A restart request read from the config topic (KIP-745's `restart-connector-NAME`,
/// `{"include-tasks":..,"only-failed":..}`): each worker restarts what it runs of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartRequest {
    pub connector: String,
    pub include_tasks: bool,
    pub only_failed: bool,
}

/// The config topic: connector configs, task configs and target states.
#[derive(Debug)]
pub struct ConfigStore {
    log: TopicLog,
    connectors: BTreeMap<String, ConnectorRecord>,
    /// Task configs read but not yet committed, per connector.
    deferred: BTreeMap<String, BTreeMap<usize, Props>>,
    /// Target states, also of connectors whose config comes later.
    targets: BTreeMap<String, TargetState>,
    /// How far the topic has been read (the next offset, per partition).
    positions: Vec<i64>,
    /// Restart requests read since the last [`ConfigStore::take_restarts`] (not those
    /// of the initial load: they were acted on when written).
    restarts: Vec<RestartRequest>,
}

impl ConfigStore {
    /// Read the whole topic, applying task configs only when their commit follows.
    pub fn load(log: TopicLog) -> Result<ConfigStore, WorkerError> {
        let mut store = ConfigStore {
            log,
            connectors: BTreeMap::new(),
            deferred: BTreeMap::new(),
            targets: BTreeMap::new(),
            positions: Vec::new(),
            restarts: Vec::new(),
        };
        store.catch_up()?;
        store.restarts.clear();
        Ok(store)
    }

    /// Read what was written since the last read (by any worker); answers whether
    /// anything was read.
    pub fn catch_up(&mut self) -> Result<bool, WorkerError> {
        let records = self.log.read_new(&mut self.positions)?;
        let any = !records.is_empty();
        for (key, value) in records {
            self.apply(&key, &value);
        }
        Ok(any)
    }

    /// The config offset, as Kafka Connect's group protocol carries it: the offset
    /// after the last record read.
    pub fn offset(&self) -> i64 {
        self.positions.first().copied().unwrap_or(0)
    }

    /// Restart requests read since the last call.
    pub fn take_restarts(&mut self) -> Vec<RestartRequest> {
        std::mem::take(&mut self.restarts)
    }

    fn apply(&mut self, key: &Option<Bytes>, value: &Option<Bytes>) {
        let Some(key) = text(key) else { return };
        let json = json_of(value);
        if let Some(name) = key.strip_prefix("connector-") {
            match json.as_ref().and_then(props_of) {
                Some(config) => {
                    let target = self.targets.get(name).copied().unwrap_or_default();
                    let entry =
                        self.connectors
                            .entry(name.to_owned())
                            .or_insert_with(|| ConnectorRecord {
                                target,
                                ..ConnectorRecord::default()
                            });
                    entry.config = config;
                }
                None => {
                    self.connectors.remove(name);
                    self.deferred.remove(name);
                }
            }
        } else if let Some(rest) = key.strip_prefix("task-") {
            let Some((name, n)) = rest.rsplit_once('-') else {
                return;
            };
            let (Ok(n), Some(config)) = (n.parse::<usize>(), json.as_ref().and_then(props_of))
            else {
                return;
            };
            self.deferred
                .entry(name.to_owned())
                .or_default()
                .insert(n, config);
        } else if let Some(name) = key.strip_prefix("commit-") {
            let count = json
                .as_ref()
                .and_then(|j| j.get("tasks"))
                .and_then(Json::as_u64)
                .unwrap_or(0) as usize;
            let buffered = self.deferred.remove(name).unwrap_or_default();
            if let Some(c) = self.connectors.get_mut(name) {
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
            match json {
                None => {
                    self.targets.remove(name);
                }
                Some(j) => {
                    let state = j
                        .get("state.v2")
                        .or_else(|| j.get("state"))
                        .and_then(Json::as_str)
                        .and_then(TargetState::parse)
                        .unwrap_or_default();
                    self.targets.insert(name.to_owned(), state);
                    if let Some(c) = self.connectors.get_mut(name) {
                        c.target = state;
                    }
                }
            }
        } else if let Some(name) = key.strip_prefix("restart-connector-")
            && let Some(j) = json
        {
            let flag = |k: &str| j.get(k).and_then(Json::as_bool).unwrap_or(false);
            self.restarts.push(RestartRequest {
                connector: name.to_owned(),
                include_tasks: flag("include-tasks"),
                only_failed: flag("only-failed"),
            });
        }
    }

    /// Ask every worker to restart what it runs of `name` (KIP-745's record).
    pub fn put_restart(&mut self, req: &RestartRequest) -> Result<(), WorkerError> {
        self.log.write(vec![(
            format!("restart-connector-{}", req.connector),
            Some(json!({ "include-tasks": req.include_tasks, "only-failed": req.only_failed })),
        )])
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
            self.targets.insert(name.to_owned(), t);
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
        self.targets.insert(name.to_owned(), target);
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
        self.targets.remove(name);
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
    /// How far the topic has been read, per partition.
    positions: Vec<i64>,
}

impl OffsetStore {
    pub fn load(log: TopicLog) -> Result<OffsetStore, WorkerError> {
        let mut store = OffsetStore {
            log,
            offsets: BTreeMap::new(),
            positions: Vec::new(),
        };
        store.catch_up()?;
        Ok(store)
    }

    /// Read what was written since the last read: offsets other workers' tasks stored
    /// (in a cluster, a source task that moves here resumes from them).
    pub fn catch_up(&mut self) -> Result<(), WorkerError> {
        for (key, value) in self.log.read_new(&mut self.positions)? {
            let Some(Json::Array(parts)) = json_of(&key) else {
                tracing::warn!(topic = %self.log.topic, "ignoring an offsets record whose key is not [connector, partition]");
                continue;
            };
            let [Json::String(name), partition] = parts.as_slice() else {
                continue;
            };
            let k = (name.clone(), partition.to_string());
            match json_of(&value) {
                Some(v) if !v.is_null() => {
                    self.offsets.insert(k, v);
                }
                _ => {
                    self.offsets.remove(&k);
                }
            }
        }
        Ok(())
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

    /// Status records written since `positions` (by any worker): (connector, task or
    /// `None` for the connector, the status or `None` for a tombstone). Active-topic
    /// records are not statuses and are skipped.
    pub fn read_new(
        &self,
        positions: &mut Vec<i64>,
    ) -> Result<Vec<(String, Option<usize>, Option<Status>)>, WorkerError> {
        let mut out = Vec::new();
        for (key, value) in self.log.read_new(positions)? {
            let Some(key) = text(&key) else { continue };
            let (name, task) = if let Some(name) = key.strip_prefix("status-connector-") {
                (name, None)
            } else if let Some(rest) = key.strip_prefix("status-task-")
                && let Some((name, n)) = rest.rsplit_once('-')
                && let Ok(n) = n.parse::<usize>()
            {
                (name, Some(n))
            } else {
                continue;
            };
            let status = json_of(&value).and_then(|v| {
                let state = match v.get("state")?.as_str()? {
                    "UNASSIGNED" => State::Unassigned,
                    "RUNNING" => State::Running,
                    "PAUSED" => State::Paused,
                    "STOPPED" => State::Stopped,
                    "FAILED" => State::Failed,
                    "RESTARTING" => State::Restarting,
                    _ => return None,
                };
                Some(Status {
                    state,
                    trace: v.get("trace").and_then(Json::as_str).map(str::to_owned),
                    worker_id: v.get("worker_id")?.as_str()?.to_owned(),
                    generation: v.get("generation").and_then(Json::as_i64).unwrap_or(0),
                })
            });
            out.push((name.to_owned(), task, status));
        }
        Ok(out)
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
    fn internal_topic_settings_come_from_the_prefixed_keys() {
        let raw: BTreeMap<String, String> = [
            ("config.storage.topic", "c"),
            ("config.storage.replication.factor", "3"),
            ("config.storage.min.insync.replicas", "2"),
            ("offset.storage.partitions", "25"),
            ("offset.storage.file.filename", "/tmp/x"),
            ("offset.storage.replication.factor", "-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let c = TopicSettings::from_worker(&raw, "config.storage").unwrap();
        assert_eq!(c.replication, Some(3));
        assert_eq!(
            c.configs.get("min.insync.replicas").map(String::as_str),
            Some("2")
        );
        assert_eq!(c.configs.len(), 1);
        let o = TopicSettings::from_worker(&raw, "offset.storage").unwrap();
        assert_eq!(o.replication, None);
        assert!(o.configs.is_empty());
        let mut bad = raw.clone();
        bad.insert("status.storage.replication.factor".into(), "0".into());
        let e = TopicSettings::from_worker(&bad, "status.storage").unwrap_err();
        assert!(
            e.to_string().contains("status.storage.replication.factor"),
            "{e}"
        );
    }

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
