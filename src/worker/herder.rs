//! The herder (Kafka Connect's name): turns the connector configs of the config topic
//! into running connectors and tasks on this worker, and answers for them.
//!
//! Every method blocks (plugin calls, durable writes to the internal topics): call them
//! from a blocking thread. One lock orders all changes; it is never held across an
//! `.await` (there are none here) and plugin calls made under it are the connector's
//! own lifecycle calls (start, task_configs, stop), which Kafka Connect also serializes.
//! Validating a config (the plugin's `validate`, config providers) happens before the
//! lock is taken.
//!
//! Besides running connectors it answers what the REST API asks: [`Herder::validate`]
//! (Kafka's `ConfigInfos`: the worker's own connector keys, [`connector_keys`], then the
//! plugin's), a config patch, a restart plan, stored offsets in KIP-875's shape and
//! their alteration and reset on stopped connectors (a source's in the offsets topic, a
//! sink's in its consumer group), and KIP-558's active topics (kept by
//! [`super::topics::TopicTracker`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde_json::{Value as Json, json};
use tributary_plugin_abi::config::{ConfigKeyInfo, ConfigType, ConfigValueInfo, Importance, Width};

use super::WorkerError;
use super::config::WorkerConfig;
use super::connector_config::{CommonConfig, check_name, with_prefix};
use super::convert;
use super::distributed::ClusterView;
use super::hosts::ConnectorRequests;
use super::providers::ConfigProviders;
use super::store::{
    ConfigStore, ConnectorRecord, OffsetStore, Props, State, StatusStore, TargetState, TopicLog,
    TopicSettings,
};
use super::task::{Converters, RestartPolicy, StatusBoard, StatusView, TaskHandle, TaskSpec};
use super::topics::{TopicTracker, TrackingSettings};
use crate::client::{Client, ConsumerSettings, ProducerSettings};
use crate::plugin::{ConnectorType, SharedRegistry};

mod cluster;

/// A connector as the REST API describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorInfo {
    pub name: String,
    pub config: Props,
    pub tasks: usize,
    pub kind: Option<ConnectorType>,
}

/// A connector's status and its tasks'.
#[derive(Clone, Debug)]
pub struct ConnectorStatus {
    pub name: String,
    pub connector: StatusView,
    pub tasks: Vec<(usize, StatusView)>,
    pub kind: Option<ConnectorType>,
}

/// A connector config checked against the worker's connector keys and the plugin's
/// (Kafka Connect's `ConfigInfos`): every key with its definition, value and errors.
#[derive(Clone, Debug)]
pub struct Validation {
    /// `connector.class` as given.
    pub class: String,
    pub kind: ConnectorType,
    /// The groups of the keys' definitions, the worker's first.
    pub groups: Vec<String>,
    pub keys: Vec<ValidatedKey>,
}

/// One key of a [`Validation`]. `definition` is `None` for a key nobody defines that an
/// error was found for.
#[derive(Clone, Debug)]
pub struct ValidatedKey {
    pub definition: Option<ConfigKeyInfo>,
    pub value: ConfigValueInfo,
}

impl Validation {
    /// How many errors, over every key (Kafka's `error_count`).
    pub fn error_count(&self) -> usize {
        self.keys.iter().map(|k| k.value.errors.len()).sum()
    }

    /// The refusal of a config with errors: every error, keys named.
    fn refusal(&self, connector: &str) -> WorkerError {
        let bad: Vec<&ValidatedKey> = self
            .keys
            .iter()
            .filter(|k| !k.value.errors.is_empty())
            .collect();
        WorkerError::ConnectorConfig {
            connector: connector.to_owned(),
            key: bad
                .iter()
                .map(|k| k.value.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            reason: bad
                .iter()
                .flat_map(|k| k.value.errors.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    fn key_mut(&mut self, name: &str) -> Option<&mut ValidatedKey> {
        self.keys.iter_mut().find(|k| k.value.name == name)
    }

    /// Record `message` against `key` (once), adding the key if nothing defines it.
    fn add_error(&mut self, config: &Props, key: &str, message: String) {
        match self.key_mut(key) {
            Some(k) => {
                if !k.value.errors.contains(&message) {
                    k.value.errors.push(message);
                }
            }
            None => self.keys.push(ValidatedKey {
                definition: None,
                value: ConfigValueInfo {
                    name: key.to_owned(),
                    value: config.get(key).cloned(),
                    errors: vec![message],
                },
            }),
        }
    }
}

/// Runs this worker's connectors.
#[derive(Debug, Clone)]
pub struct Herder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: WorkerConfig,
    client: Client,
    plugins: SharedRegistry,
    providers: ConfigProviders,
    statuses: Arc<StatusBoard>,
    offsets: Arc<Mutex<OffsetStore>>,
    topics: Arc<TopicTracker>,
    state: Mutex<State_>,
    /// Distributed mode: what this worker's share of the cluster is (`None`:
    /// standalone, everything runs here).
    cluster: Option<Arc<ClusterView>>,
    /// How far the status topic has been read (distributed mode follows it).
    status_positions: Mutex<Vec<i64>>,
}

#[derive(Debug)]
struct State_ {
    configs: ConfigStore,
    running: BTreeMap<String, Running>,
}

/// A connector instance and its tasks on this worker.
#[derive(Debug)]
struct Running {
    connector: Option<crate::plugin::Connector>,
    kind: ConnectorType,
    /// The tasks running here, by task number (in a cluster, some of them).
    tasks: BTreeMap<usize, TaskHandle>,
    /// What the connector asked of the worker (see [`Herder::tick`]).
    requests: Arc<ConnectorRequests>,
    /// Distributed mode: the config this worker's part of the connector was started
    /// from, to tell what changed when the config topic moves.
    applied: ConnectorRecord,
}

impl Herder {
    /// Open (creating if needed) the internal topics, read them, and start every
    /// connector in its target state.
    pub fn start(
        config: WorkerConfig,
        client: Client,
        plugins: SharedRegistry,
    ) -> Result<Herder, WorkerError> {
        let herder = Herder::open(config, client, plugins, None)?;
        let names: Vec<String> = herder.lock().configs.connectors().keys().cloned().collect();
        for name in names {
            let mut st = herder.lock();
            herder.start_connector(&mut st, &name);
        }
        Ok(herder)
    }

    /// Open the internal topics and read them; start nothing yet.
    fn open(
        config: WorkerConfig,
        client: Client,
        plugins: SharedRegistry,
        cluster: Option<Arc<ClusterView>>,
    ) -> Result<Herder, WorkerError> {
        let settings = |prefix| TopicSettings::from_worker(&config.raw, prefix);
        let configs = TopicLog::open_with(
            &client,
            &config.config_topic,
            1,
            "config.storage.topic",
            true,
            &settings("config.storage")?,
        )?;
        let offsets = TopicLog::open_with(
            &client,
            &config.offset_topic,
            config.offset_partitions,
            "offset.storage.topic",
            false,
            &settings("offset.storage")?,
        )?;
        let status = TopicLog::open_with(
            &client,
            &config.status_topic,
            config.status_partitions,
            "status.storage.topic",
            false,
            &settings("status.storage")?,
        )?;
        let configs = ConfigStore::load(configs)?;
        let offsets = OffsetStore::load(offsets)?;
        let status = StatusStore::new(status, &config.worker_id());
        let tracking = TrackingSettings::from_props(&config.raw)?;
        let topics = Arc::new(TopicTracker::load(status.clone(), tracking)?);
        let statuses = Arc::new(StatusBoard::new(status, config.worker_id()));
        let providers = ConfigProviders::from_worker(&config.config_providers)?;
        let herder = Herder {
            inner: Arc::new(Inner {
                config,
                client,
                plugins,
                providers,
                statuses,
                offsets: Arc::new(Mutex::new(offsets)),
                topics,
                state: Mutex::new(State_ {
                    configs,
                    running: BTreeMap::new(),
                }),
                cluster,
                status_positions: Mutex::new(Vec::new()),
            }),
        };
        Ok(herder)
    }

    fn lock(&self) -> MutexGuard<'_, State_> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    pub fn plugins(&self) -> &SharedRegistry {
        &self.inner.plugins
    }

    pub fn worker_config(&self) -> &WorkerConfig {
        &self.inner.config
    }

    /// Every connector's name.
    pub fn connectors(&self) -> Vec<String> {
        self.lock().configs.connectors().keys().cloned().collect()
    }

    /// Create a connector; refused if one of that name exists.
    pub fn create_connector(
        &self,
        name: &str,
        config: Props,
        initial: TargetState,
    ) -> Result<ConnectorInfo, WorkerError> {
        // Validated first, as Kafka Connect does: an invalid config is refused as such
        // even if the name is taken.
        self.check_valid(name, &config)?;
        let mut st = self.lock();
        if st.configs.get(name).is_some() {
            return Err(WorkerError::ConnectorExists(name.to_owned()));
        }
        self.check_config(name, &config)?;
        st.configs.put_connector(name, &config, Some(initial))?;
        // In a cluster the worker it is assigned to starts it, after the rebalance.
        if self.inner.cluster.is_none() {
            self.start_connector(&mut st, name);
        }
        Ok(self.info_locked(&st, name).expect("just created"))
    }

    /// Create or replace a connector's config; answers (info, created). A changed
    /// config restarts the connector and its tasks; an identical one changes nothing.
    pub fn put_connector_config(
        &self,
        name: &str,
        config: Props,
    ) -> Result<(ConnectorInfo, bool), WorkerError> {
        self.check_valid(name, &config)?;
        let mut st = self.lock();
        self.put_locked(&mut st, name, config)
    }

    /// Change some keys of a connector's config (Kafka Connect's PATCH, KIP-477): a value
    /// replaces the key's, `None` removes the key. The patched config is validated whole,
    /// outside the lock, against the config it patches; if that changed meanwhile, the
    /// patch is applied again to the new one.
    pub fn patch_connector_config(
        &self,
        name: &str,
        patch: &BTreeMap<String, Option<String>>,
    ) -> Result<ConnectorInfo, WorkerError> {
        const ATTEMPTS: usize = 3;
        for _ in 0..ATTEMPTS {
            let current = self.connector_info(name)?.config;
            let patched = patch_config(&current, patch);
            self.check_valid(name, &patched)?;
            let mut st = self.lock();
            match st.configs.get(name) {
                None => return Err(WorkerError::UnknownConnector(name.to_owned())),
                Some(r) if r.config != current => continue,
                Some(_) => return Ok(self.put_locked(&mut st, name, patched)?.0),
            }
        }
        // Changed under us every time: validate under the lock instead.
        let mut st = self.lock();
        let current = st
            .configs
            .get(name)
            .ok_or_else(|| WorkerError::UnknownConnector(name.to_owned()))?
            .config
            .clone();
        let patched = patch_config(&current, patch);
        self.check_valid(name, &patched)?;
        Ok(self.put_locked(&mut st, name, patched)?.0)
    }

    /// Store `config` for `name` (created or replaced) and (re)start the connector.
    fn put_locked(
        &self,
        st: &mut State_,
        name: &str,
        config: Props,
    ) -> Result<(ConnectorInfo, bool), WorkerError> {
        self.check_config(name, &config)?;
        let created = match st.configs.get(name) {
            None => {
                st.configs
                    .put_connector(name, &config, Some(TargetState::Started))?;
                true
            }
            Some(existing) if existing.config == config => {
                return Ok((self.info_locked(st, name).expect("exists"), false));
            }
            Some(_) => {
                st.configs.put_connector(name, &config, None)?;
                if self.inner.cluster.is_none() {
                    self.stop_connector(st, name);
                }
                false
            }
        };
        if self.inner.cluster.is_some() {
            // The workers running it restart it when they read the new config.
            self.reconcile(st);
        } else {
            self.start_connector(st, name);
        }
        Ok((self.info_locked(st, name).expect("exists"), created))
    }

    /// Refuse `config` for connector `name` unless it validates without errors.
    fn check_valid(&self, name: &str, config: &Props) -> Result<(), WorkerError> {
        check_name(name)?;
        let mut named = config.clone();
        named.insert("name".into(), name.to_owned());
        let validation = self.validate(&named)?;
        if validation.error_count() > 0 {
            return Err(validation.refusal(name));
        }
        Ok(())
    }

    /// Validate a connector config without storing it (the REST `validate` call): the
    /// worker's connector keys ([`connector_keys`]), the converters, what the worker
    /// parses itself (a sink's subscription), then the plugin's own keys and checks on
    /// the config with its `${provider:...}` placeholders resolved. Values are shown as
    /// given (placeholders, not secrets); passwords masked.
    ///
    /// `Err` only when there is nothing to validate against: `connector.class` missing
    /// or naming no installed plugin, or the plugin failing in `validate`.
    pub fn validate(&self, config: &Props) -> Result<Validation, WorkerError> {
        let label = config
            .get("name")
            .filter(|n| !n.trim().is_empty())
            .map_or("(unnamed)", String::as_str);
        let bad_class = |reason: String| WorkerError::ConnectorConfig {
            connector: label.to_owned(),
            key: "connector.class".into(),
            reason,
        };
        let class = config
            .get("connector.class")
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                bad_class("missing; name the connector plugin (e.g. FileStreamSource)".into())
            })?;
        let plugin = self
            .inner
            .plugins
            .lookup(class)
            .map_err(|e| bad_class(e.to_string()))?;
        let kind = plugin.kind();
        let mut v = Validation {
            class: class.to_owned(),
            kind,
            groups: Vec::new(),
            keys: Vec::new(),
        };
        for key in connector_keys(kind) {
            let given = config.get(&key.info.name).filter(|s| !s.trim().is_empty());
            let errors = match given {
                Some(value) => key.check(value).err().into_iter().collect(),
                None if key.info.required() => vec![format!(
                    "Missing required configuration \"{}\" which has no default value.",
                    key.info.name
                )],
                None => Vec::new(),
            };
            if let Some(g) = &key.info.group
                && !v.groups.contains(g)
            {
                v.groups.push(g.clone());
            }
            v.keys.push(ValidatedKey {
                value: ConfigValueInfo {
                    name: key.info.name.clone(),
                    value: given.cloned().or_else(|| key.info.default.clone()),
                    errors,
                },
                definition: Some(key.info),
            });
        }
        for (key, e) in self.converter_errors(config) {
            v.add_error(config, key, e);
        }
        // Transforms and predicates: every key of every alias, with all its errors.
        for (definition, value) in super::transform::validate(config) {
            if let Some(g) = definition.as_ref().and_then(|d| d.group.clone())
                && !v.groups.contains(&g)
            {
                v.groups.push(g);
            }
            v.keys.push(ValidatedKey { definition, value });
        }
        // What the worker parses itself (it stops at the first error): the keys found
        // wrong so far are left out, and so is each key it refuses, until it has nothing
        // more to say. The transform keys were answered for above.
        let mut rest = config.clone();
        for k in v.keys.iter().filter(|k| !k.value.errors.is_empty()) {
            rest.remove(&k.value.name);
        }
        rest.retain(|k, _| !super::transform::is_transform_key(k));
        for _ in 0..=config.len() {
            let parsed = CommonConfig::parse(label, &rest).and_then(|common| {
                if kind == ConnectorType::Sink {
                    common.subscription()?;
                }
                Ok(())
            });
            match parsed {
                Err(WorkerError::ConnectorConfig { key, reason, .. })
                    if rest.contains_key(&key) =>
                {
                    v.add_error(config, &key, reason);
                    rest.remove(&key);
                }
                Err(WorkerError::ConnectorConfig { key, reason, .. }) => {
                    v.add_error(config, &key, reason);
                    break;
                }
                _ => break,
            }
        }
        // The plugin sees the config as its connector will (placeholders resolved).
        let resolved = match self.inner.providers.resolve(config) {
            Ok(r) => r,
            Err(WorkerError::Config { key, value, reason }) => {
                v.add_error(config, &key, format!("cannot resolve {value}: {reason}"));
                config.clone()
            }
            Err(e) => return Err(e),
        };
        let answers = plugin.new_connector()?.validate(&resolved)?;
        // A resolved value (a secret, often) must not come back in a message: it is
        // shown as its placeholder.
        let substituted: Vec<(&String, &String)> = config
            .iter()
            .filter_map(|(k, raw)| Some((resolved.get(k)?, raw)))
            .filter(|(value, raw)| value != raw && !value.is_empty())
            .collect();
        let scrub = |message: String| {
            substituted
                .iter()
                .fold(message, |m, (value, raw)| m.replace(value.as_str(), raw))
        };
        let defs = &plugin.info().config_def;
        for mut answer in answers {
            answer.errors = answer.errors.into_iter().map(scrub).collect();
            let definition = defs.iter().find(|d| d.name == answer.name).cloned();
            if let Some(g) = definition.as_ref().and_then(|d| d.group.clone())
                && !v.groups.contains(&g)
            {
                v.groups.push(g);
            }
            let secret = definition
                .as_ref()
                .is_some_and(|d| d.kind == ConfigType::Password);
            let shown = match config.get(&answer.name) {
                Some(raw) if !secret => Some(raw.clone()),
                _ => answer.value,
            };
            match v.key_mut(&answer.name) {
                Some(k) => {
                    for e in answer.errors {
                        if !k.value.errors.contains(&e) {
                            k.value.errors.push(e);
                        }
                    }
                }
                None => v.keys.push(ValidatedKey {
                    definition,
                    value: ConfigValueInfo {
                        name: answer.name,
                        value: shown,
                        errors: answer.errors,
                    },
                }),
            }
        }
        Ok(v)
    }

    /// The config keys of a connector plugin (named by class or alias): the plugin's own,
    /// then the worker's connector keys it does not define (Kafka's
    /// `GET /connector-plugins/{plugin}/config`).
    pub fn plugin_config_keys(&self, plugin: &str) -> Result<Vec<ConfigKeyInfo>, WorkerError> {
        let plugin = self.inner.plugins.lookup(plugin)?;
        let mut keys = plugin.info().config_def.clone();
        for k in connector_keys(plugin.kind()) {
            if !keys.iter().any(|d| d.name == k.info.name) {
                keys.push(k.info);
            }
        }
        for k in super::transform::connector_keys() {
            if !keys.iter().any(|d| d.name == k.name) {
                keys.push(k);
            }
        }
        Ok(keys)
    }

    fn check_config(&self, name: &str, config: &Props) -> Result<(), WorkerError> {
        let common = CommonConfig::parse(name, config)?;
        let plugin =
            self.inner
                .plugins
                .lookup(&common.class)
                .map_err(|e| WorkerError::ConnectorConfig {
                    connector: name.to_owned(),
                    key: "connector.class".into(),
                    reason: e.to_string(),
                })?;
        if plugin.kind() == ConnectorType::Sink {
            common.subscription()?;
        }
        self.converters(name, config)?;
        Ok(())
    }

    pub fn connector_info(&self, name: &str) -> Result<ConnectorInfo, WorkerError> {
        let st = self.lock();
        self.info_locked(&st, name)
            .ok_or_else(|| WorkerError::UnknownConnector(name.to_owned()))
    }

    fn info_locked(&self, st: &State_, name: &str) -> Option<ConnectorInfo> {
        let rec = st.configs.get(name)?;
        let kind = rec
            .config
            .get("connector.class")
            .and_then(|c| self.inner.plugins.lookup(c).ok())
            .map(|p| p.kind());
        Some(ConnectorInfo {
            name: name.to_owned(),
            config: rec.config.clone(),
            tasks: rec.tasks.len(),
            kind,
        })
    }

    /// The committed task configs of a connector.
    pub fn task_configs(&self, name: &str) -> Result<Vec<Props>, WorkerError> {
        let st = self.lock();
        st.configs
            .get(name)
            .map(|r| r.tasks.clone())
            .ok_or_else(|| WorkerError::UnknownConnector(name.to_owned()))
    }

    pub fn status(&self, name: &str) -> Result<ConnectorStatus, WorkerError> {
        let info = self.connector_info(name)?;
        let connector = self.inner.statuses.get(name, None).unwrap_or(StatusView {
            state: State::Unassigned,
            trace: None,
            worker_id: self.inner.config.worker_id(),
            restarts: 0,
            next_restart_ms: None,
        });
        let mut tasks = self.inner.statuses.tasks(name);
        tasks.retain(|(t, _)| *t < info.tasks);
        Ok(ConnectorStatus {
            name: name.to_owned(),
            connector,
            tasks,
            kind: info.kind,
        })
    }

    /// Show (or, with `None`, clear) a note in a connector's status trace, its state
    /// unchanged: how `worker::deploy` tells that the connector's file in `connectors.dir`
    /// was not applied. Only a trace starting with `prefix` (a note) or none is replaced,
    /// never a failed connector's own; answers whether a status was written.
    pub fn set_status_note(
        &self,
        name: &str,
        prefix: &str,
        note: Option<String>,
    ) -> Result<bool, WorkerError> {
        // Under the lock: connector statuses change under it, so this one is not lost
        // between a read and a write.
        let st = self.lock();
        if st.configs.get(name).is_none() {
            return Err(WorkerError::UnknownConnector(name.to_owned()));
        }
        let Some(current) = self.inner.statuses.get(name, None) else {
            return Ok(false);
        };
        let ours = current
            .trace
            .as_deref()
            .is_none_or(|t| t.starts_with(prefix));
        if current.state == State::Failed || !ours || current.trace == note {
            return Ok(false);
        }
        self.inner.statuses.set_with(
            name,
            None,
            current.state,
            note,
            current.restarts,
            current.next_restart_ms,
        );
        Ok(true)
    }

    pub fn target_state(&self, name: &str) -> Result<TargetState, WorkerError> {
        self.lock()
            .configs
            .get(name)
            .map(|r| r.target)
            .ok_or_else(|| WorkerError::UnknownConnector(name.to_owned()))
    }

    pub fn pause(&self, name: &str) -> Result<(), WorkerError> {
        self.set_target(name, TargetState::Paused)
    }

    pub fn resume(&self, name: &str) -> Result<(), WorkerError> {
        self.set_target(name, TargetState::Started)
    }

    /// Stop the connector and its tasks (KIP-875's STOPPED), keeping its config.
    pub fn stop(&self, name: &str) -> Result<(), WorkerError> {
        self.set_target(name, TargetState::Stopped)
    }

    fn set_target(&self, name: &str, target: TargetState) -> Result<(), WorkerError> {
        let mut st = self.lock();
        let prev = st
            .configs
            .get(name)
            .map(|r| r.target)
            .ok_or_else(|| WorkerError::UnknownConnector(name.to_owned()))?;
        if prev == target {
            return Ok(());
        }
        st.configs.put_target(name, target)?;
        if self.inner.cluster.is_some() {
            // Every worker moves what it runs of the connector when it reads this.
            if target == TargetState::Stopped {
                st.configs.put_tasks(name, &[])?;
            }
            self.reconcile(&mut st);
            return Ok(());
        }
        match (prev, target) {
            (TargetState::Stopped, _) => self.start_connector(&mut st, name),
            (_, TargetState::Stopped) => {
                self.stop_connector(&mut st, name);
                st.configs.put_tasks(name, &[])?;
                self.inner.statuses.set(name, None, State::Stopped, None);
            }
            (_, TargetState::Paused) => {
                if let Some(r) = st.running.get(name) {
                    r.tasks.values().for_each(|t| t.set_paused(true));
                }
                self.inner.statuses.set(name, None, State::Paused, None);
            }
            (_, TargetState::Started) => {
                if let Some(r) = st.running.get(name) {
                    r.tasks.values().for_each(|t| t.set_paused(false));
                }
                self.inner.statuses.set(name, None, State::Running, None);
            }
        }
        Ok(())
    }

    /// Restart a connector; with `include_tasks` its tasks too (`only_failed`: only
    /// those that failed). Answers the plan as KIP-745 reports it: the status before the
    /// restart, with what is restarted shown `RESTARTING`.
    pub fn restart_connector(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<ConnectorStatus, WorkerError> {
        let mut plan = self.status(name)?;
        let restarted = |s: &StatusView| !only_failed || s.state == State::Failed;
        // What restarts starts afresh: no trace, no automatic restart pending.
        let restarting = |s: &mut StatusView| {
            s.state = State::Restarting;
            s.trace = None;
            s.restarts = 0;
            s.next_restart_ms = None;
        };
        if restarted(&plan.connector) {
            restarting(&mut plan.connector);
        }
        for (_, t) in &mut plan.tasks {
            if include_tasks && restarted(t) {
                restarting(t);
            }
        }
        self.restart(name, include_tasks, only_failed)?;
        Ok(plan)
    }

    fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<(), WorkerError> {
        let mut st = self.lock();
        if st.configs.get(name).is_none() {
            return Err(WorkerError::UnknownConnector(name.to_owned()));
        }
        if self.inner.cluster.is_some() {
            // KIP-745's request record: each worker restarts what it runs.
            let req = super::store::RestartRequest {
                connector: name.to_owned(),
                include_tasks,
                only_failed,
            };
            st.configs.put_restart(&req)?;
            return Ok(());
        }
        let connector_failed = self
            .inner
            .statuses
            .get(name, None)
            .is_some_and(|s| s.state == State::Failed);
        // KIP-745: everything, or only what failed.
        if include_tasks && !only_failed {
            self.stop_connector(&mut st, name);
            self.start_connector(&mut st, name);
            return Ok(());
        }
        if include_tasks {
            let failed: Vec<usize> = self
                .inner
                .statuses
                .tasks(name)
                .into_iter()
                .filter(|(_, s)| s.state == State::Failed)
                .map(|(t, _)| t)
                .collect();
            for t in failed {
                self.restart_task_locked(&mut st, name, t)?;
            }
        }
        if !only_failed || connector_failed {
            // The connector alone: stop and start its instance, tasks untouched.
            let kind = st.running.get(name).map(|r| r.kind);
            if let Some(r) = st.running.get_mut(name)
                && let Some(mut c) = r.connector.take()
            {
                let _ = c.stop();
            }
            if kind.is_some() {
                self.start_connector_instance(&mut st, name);
            } else {
                self.start_connector(&mut st, name);
            }
        }
        Ok(())
    }

    pub fn restart_task(&self, name: &str, task: usize) -> Result<(), WorkerError> {
        let mut st = self.lock();
        self.restart_task_locked(&mut st, name, task)
    }

    fn restart_task_locked(
        &self,
        st: &mut State_,
        name: &str,
        task: usize,
    ) -> Result<(), WorkerError> {
        let rec = st
            .configs
            .get(name)
            .ok_or_else(|| WorkerError::UnknownConnector(name.to_owned()))?
            .clone();
        let Some(task_config) = rec.tasks.get(task).cloned() else {
            return Err(WorkerError::UnknownTask(name.to_owned(), task));
        };
        let Some(running) = st.running.get_mut(name) else {
            return Err(WorkerError::UnknownTask(name.to_owned(), task));
        };
        if let Some(handle) = running.tasks.get_mut(&task) {
            handle.signal_stop();
            handle.join_until(Instant::now() + self.inner.config.task_shutdown_timeout);
        }
        let kind = running.kind;
        let handle = self.spawn_task(name, &rec.config, task, task_config, kind, rec.target)?;
        if let Some(r) = st.running.get_mut(name) {
            r.tasks.insert(task, handle);
        }
        Ok(())
    }

    /// Delete a connector: stop it, tombstone its config and statuses.
    pub fn delete_connector(&self, name: &str) -> Result<ConnectorInfo, WorkerError> {
        let mut st = self.lock();
        let info = self
            .info_locked(&st, name)
            .ok_or_else(|| WorkerError::UnknownConnector(name.to_owned()))?;
        if self.inner.cluster.is_none() {
            self.stop_connector(&mut st, name);
        }
        st.configs.delete(name)?;
        if self.inner.cluster.is_some() {
            self.reconcile(&mut st);
        }
        self.inner.statuses.remove(name, info.tasks);
        // A connector created later under this name starts with no active topics.
        if let Err(e) = self.inner.topics.forget(name) {
            tracing::warn!(connector = name, error = %e, "could not reset the deleted connector's active topics");
        }
        Ok(info)
    }

    /// One task's status.
    pub fn task_status(&self, name: &str, task: usize) -> Result<StatusView, WorkerError> {
        self.status(name)?
            .tasks
            .into_iter()
            .find(|(t, _)| *t == task)
            .map(|(_, s)| s)
            .ok_or_else(|| WorkerError::UnknownTask(name.to_owned(), task))
    }

    /// A connector's offsets as KIP-875 shows them, (partition, offset) pairs: a
    /// source's as its tasks stored them; a sink's are its consumer group's
    /// (`connect-NAME`) committed offsets of the partitions it subscribes to now,
    /// `{"kafka_topic", "kafka_partition"}` → `{"kafka_offset"}`.
    pub fn offsets(&self, name: &str) -> Result<Vec<(Json, Json)>, WorkerError> {
        let info = self.connector_info(name)?;
        match info.kind {
            Some(ConnectorType::Source) => Ok(self.source_offsets(name)),
            Some(ConnectorType::Sink) => {
                let common = CommonConfig::parse(name, &info.config)?;
                let client = &self.inner.client;
                let topics: Vec<String> = match common.subscription()? {
                    crate::client::Subscription::Topics(t) => t,
                    // As the consumer resolves it: whole names, internal topics excluded.
                    crate::client::Subscription::Pattern(re) => client
                        .list_topics()
                        .into_iter()
                        .filter(|t| {
                            !t.starts_with("__")
                                && re
                                    .find(t)
                                    .is_some_and(|m| m.start() == 0 && m.end() == t.len())
                        })
                        .collect(),
                };
                let partitions: Vec<(String, i32)> = topics
                    .iter()
                    .flat_map(|t| {
                        let n = client.partition_count(t).unwrap_or(0);
                        (0..n).map(move |p| (t.clone(), p))
                    })
                    .collect();
                let committed =
                    client.committed_offsets(&format!("connect-{name}"), &partitions)?;
                Ok(committed
                    .into_iter()
                    .map(|((topic, partition), offset)| {
                        (
                            json!({"kafka_topic": topic, "kafka_partition": partition}),
                            json!({"kafka_offset": offset}),
                        )
                    })
                    .collect())
            }
            // The plugin is gone: whatever source offsets were stored.
            None => Ok(self.source_offsets(name)),
        }
    }

    /// The stored source offsets of a connector: (partition, offset) JSON pairs.
    pub fn source_offsets(&self, name: &str) -> Vec<(serde_json::Value, serde_json::Value)> {
        self.inner
            .offsets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .of_connector(name)
    }

    /// The topics `name`'s tasks have used (KIP-558), sorted. 404 for an unknown
    /// connector (Kafka answers an empty list), 403 with tracking off.
    pub fn active_topics(&self, name: &str) -> Result<Vec<String>, WorkerError> {
        self.inner.topics.topics(name).and_then(|topics| {
            self.connector_info(name)?;
            Ok(topics)
        })
    }

    /// Forget `name`'s active topics (tombstones in the status topic).
    pub fn reset_active_topics(&self, name: &str) -> Result<(), WorkerError> {
        // The settings first, as Kafka checks them before the connector.
        self.inner.topics.topics(name)?;
        let st = self.lock();
        if st.configs.get(name).is_none() {
            return Err(WorkerError::UnknownConnector(name.to_owned()));
        }
        self.inner.topics.reset(name)
    }

    /// Alter a stopped connector's offsets (KIP-875's `PATCH .../offsets`): `entries`
    /// are (partition, offset) pairs, a `None` offset removes the partition's. A source's
    /// are written to the offsets topic; a sink's are its consumer group's
    /// (`connect-NAME`) committed offsets, `{"kafka_topic", "kafka_partition"}` →
    /// `{"kafka_offset"}`.
    pub fn alter_offsets(
        &self,
        name: &str,
        entries: Vec<(Json, Option<Json>)>,
    ) -> Result<(), WorkerError> {
        if entries.is_empty() {
            return Err(WorkerError::Refused(
                "Partitions / offsets need to be provided for an alter offsets request".to_owned(),
            ));
        }
        // Under the lock, so the connector cannot be resumed while its offsets change.
        let st = self.lock();
        let kind = self.stopped_kind(&st, name)?;
        match kind {
            ConnectorType::Source => {
                for (partition, offset) in &entries {
                    check_source_offset(name, partition, offset.as_ref())?;
                }
                lock_offsets(&self.inner.offsets).put(name, entries)
            }
            ConnectorType::Sink => {
                let mut alter = BTreeMap::new();
                let mut remove = Vec::new();
                for (partition, offset) in &entries {
                    let tp = self.sink_partition(name, partition)?;
                    match sink_offset(name, offset.as_ref())? {
                        Some(o) => {
                            alter.insert(tp, o);
                        }
                        None => remove.push(tp),
                    }
                }
                self.alter_group_offsets(name, alter, &remove)
            }
        }
    }

    /// Reset a stopped connector's offsets (KIP-875's `DELETE .../offsets`): a source's
    /// stored offsets are tombstoned; a sink's consumer group `connect-NAME` loses every
    /// committed offset (the next start consumes from `auto.offset.reset`, earliest).
    pub fn reset_offsets(&self, name: &str) -> Result<(), WorkerError> {
        let st = self.lock();
        let kind = self.stopped_kind(&st, name)?;
        match kind {
            ConnectorType::Source => {
                let mut offsets = lock_offsets(&self.inner.offsets);
                let entries = offsets
                    .of_connector(name)
                    .into_iter()
                    .map(|(p, _)| (p, None))
                    .collect();
                offsets.put(name, entries)
            }
            ConnectorType::Sink => self.delete_group(name).map(|_| ()),
        }
    }

    /// The kind of a connector that is STOPPED (target state and no task configs), or
    /// Kafka's refusal.
    fn stopped_kind(&self, st: &State_, name: &str) -> Result<ConnectorType, WorkerError> {
        let rec = st
            .configs
            .get(name)
            .ok_or_else(|| WorkerError::UnknownConnector(name.to_owned()))?;
        if rec.target != TargetState::Stopped
            || !rec.tasks.is_empty()
            || st.running.contains_key(name)
        {
            return Err(WorkerError::Refused(format!(
                "Connectors must be in the STOPPED state before their offsets can be modified. \
                 This can be done for the specified connector by issuing a 'PUT' request to the \
                 '/connectors/{name}/stop' endpoint"
            )));
        }
        let class = rec
            .config
            .get("connector.class")
            .cloned()
            .unwrap_or_default();
        self.inner
            .plugins
            .lookup(&class)
            .map(|p| p.kind())
            .map_err(|e| {
                WorkerError::Refused(format!(
                    "connector {name}: its offsets cannot be modified while its plugin is missing ({e}); \
                     install the plugin on plugin.path first"
                ))
            })
    }

    /// A sink offset's partition, `{"kafka_topic": "t", "kafka_partition": 0}` (numbers
    /// may be strings, as Kafka accepts), checked against the topic's partitions.
    fn sink_partition(&self, name: &str, partition: &Json) -> Result<(String, i32), WorkerError> {
        let refuse = |m: String| WorkerError::Refused(format!("connector {name}: {m}"));
        let (Some(topic), Some(p)) = (
            partition.get("kafka_topic"),
            partition.get("kafka_partition"),
        ) else {
            return Err(refuse(format!(
                "The partition for a sink connector offset must contain the keys 'kafka_topic' \
                 and 'kafka_partition', not {partition}"
            )));
        };
        let Some(topic) = topic.as_str() else {
            return Err(refuse(format!(
                "'kafka_topic' must be a topic name (a string), not {topic}"
            )));
        };
        let Some(p) = json_integer(p).and_then(|p| i32::try_from(p).ok()) else {
            return Err(refuse(format!(
                "Failed to parse the following Kafka partition value in the provided offsets: \
                 '{p}'; 'kafka_partition' must be a valid integer"
            )));
        };
        let count = self.inner.client.partition_count(topic).ok_or_else(|| {
            refuse(format!(
                "topic {topic} does not exist; offsets can only be set for existing topics"
            ))
        })?;
        if p < 0 || p >= count {
            return Err(refuse(format!(
                "topic {topic} has no partition {p} (it has {count})"
            )));
        }
        Ok((topic.to_owned(), p))
    }

    /// Commit `alter` and remove `remove` from the group `connect-NAME`'s offsets. The
    /// broker can only drop a whole group's offsets, so removing some keeps the others
    /// by committing them again after the group is deleted.
    fn alter_group_offsets(
        &self,
        name: &str,
        mut alter: BTreeMap<(String, i32), i64>,
        remove: &[(String, i32)],
    ) -> Result<(), WorkerError> {
        let group = format!("connect-{name}");
        let client = &self.inner.client;
        self.check_group_empty(name)?;
        if !remove.is_empty() {
            let groups = client.groups();
            let committed = client
                .runtime()
                .block_on(async { groups.fetch_offsets(&group, None).await })?
                .map_err(|code| crate::client::group_error(&group, "OffsetFetch", code))?;
            let mut kept = BTreeMap::new();
            for (topic, parts) in committed {
                for (p, offset, _, _, code) in parts {
                    let tp = (topic.clone(), p);
                    if code == 0 && offset >= 0 && !remove.contains(&tp) {
                        kept.insert(tp, offset);
                    }
                }
            }
            self.delete_group(name)?;
            kept.extend(std::mem::take(&mut alter));
            alter = kept;
        }
        if alter.is_empty() {
            return Ok(());
        }
        client.commit_offsets(&group, -1, "", &alter)?;
        Ok(())
    }

    /// Refuse while group `connect-NAME` has members (tasks not yet gone).
    fn check_group_empty(&self, name: &str) -> Result<(), WorkerError> {
        let group = format!("connect-{name}");
        let groups = self.inner.client.groups();
        let described = self
            .inner
            .client
            .runtime()
            .block_on(async { groups.describe_groups(std::slice::from_ref(&group)).await })?;
        if described.iter().any(|g| !g.members.is_empty()) {
            return Err(WorkerError::Refused(format!(
                "Failed to modify the offsets of connector {name}: its consumer group {group} \
                 still has active members (its tasks have not stopped completely yet); retry \
                 once GET /connectors/{name}/status shows no tasks"
            )));
        }
        Ok(())
    }

    /// Delete group `connect-NAME` with its offsets; answers whether it existed.
    fn delete_group(&self, name: &str) -> Result<bool, WorkerError> {
        use crate::broker::group::codes::{GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, NONE};
        let group = format!("connect-{name}");
        self.check_group_empty(name)?;
        let groups = self.inner.client.groups();
        let results = self
            .inner
            .client
            .runtime()
            .block_on(async { groups.delete_groups(vec![group.clone()]).await })?;
        match results.first().map(|(_, code)| *code).unwrap_or(NONE) {
            NONE => Ok(true),
            GROUP_ID_NOT_FOUND => Ok(false),
            NON_EMPTY_GROUP => Err(WorkerError::Refused(format!(
                "Failed to reset the offsets of connector {name}: its consumer group {group} \
                 still has active members; retry once its tasks have stopped"
            ))),
            code => Err(crate::client::group_error(&group, "DeleteGroups", code).into()),
        }
    }

    /// Stop every connector and task within `task.shutdown.graceful.timeout.ms` (in
    /// total, as Kafka Connect counts it): tasks commit what they have first.
    pub fn shutdown(&self) {
        let mut st = self.lock();
        let deadline = Instant::now() + self.inner.config.task_shutdown_timeout;
        for r in st.running.values() {
            r.tasks.values().for_each(TaskHandle::signal_stop);
        }
        let names: Vec<String> = st.running.keys().cloned().collect();
        for name in names {
            if let Some(mut r) = st.running.remove(&name) {
                for (i, t) in r.tasks.iter_mut() {
                    if !t.join_until(deadline) {
                        tracing::warn!(connector = %name, task = i, "task did not stop within task.shutdown.graceful.timeout.ms; abandoned");
                    }
                }
                if let Some(mut c) = r.connector.take()
                    && let Err(e) = c.stop()
                {
                    tracing::warn!(connector = %name, error = %e, "connector stop failed");
                }
            }
        }
    }

    /// Act on what connectors asked since the last tick: a raised error fails the
    /// connector; a reconfiguration request regenerates the task configs and, if they
    /// changed, restarts the tasks. Called about once a second.
    pub fn tick(&self) {
        let mut st = self.lock();
        let names: Vec<String> = st.running.keys().cloned().collect();
        for name in names {
            let Some(r) = st.running.get(&name) else {
                continue;
            };
            if let Some(message) = r.requests.take_error() {
                self.inner
                    .statuses
                    .set(&name, None, State::Failed, Some(message));
                self.stop_connector(&mut st, &name);
                continue;
            }
            if !r.requests.take_reconfigure() {
                continue;
            }
            let before = st
                .configs
                .get(&name)
                .map(|c| c.tasks.clone())
                .unwrap_or_default();
            let Some(after) = self.generate_tasks(&mut st, &name) else {
                continue;
            };
            if after != before && self.inner.cluster.is_none() {
                tracing::info!(connector = %name, tasks = after.len(), "task configs changed; restarting the tasks");
                let Some(rec) = st.configs.get(&name).cloned() else {
                    continue;
                };
                let Some(r) = st.running.get_mut(&name) else {
                    continue;
                };
                let deadline = Instant::now() + self.inner.config.task_shutdown_timeout;
                r.tasks.values().for_each(TaskHandle::signal_stop);
                for t in r.tasks.values_mut() {
                    t.join_until(deadline);
                }
                r.tasks.clear();
                let kind = r.kind;
                let mut handles = BTreeMap::new();
                for (i, t) in after.into_iter().enumerate() {
                    match self.spawn_task(&name, &rec.config, i, t, kind, rec.target) {
                        Ok(h) => {
                            handles.insert(i, h);
                        }
                        Err(e) => self.inner.statuses.set(
                            &name,
                            Some(i),
                            State::Failed,
                            Some(e.to_string()),
                        ),
                    }
                }
                if let Some(r) = st.running.get_mut(&name) {
                    r.tasks = handles;
                }
            }
        }
    }

    /// Stop a connector's tasks (committing first) and its instance.
    fn stop_connector(&self, st: &mut State_, name: &str) {
        let Some(mut r) = st.running.remove(name) else {
            return;
        };
        let deadline = Instant::now() + self.inner.config.task_shutdown_timeout;
        r.tasks.values().for_each(TaskHandle::signal_stop);
        for (i, t) in r.tasks.iter_mut() {
            if !t.join_until(deadline) {
                tracing::warn!(connector = %name, task = i, "task still blocked in its plugin after task.shutdown.graceful.timeout.ms; abandoned");
            }
        }
        if let Some(mut c) = r.connector.take()
            && let Err(e) = c.stop()
        {
            tracing::warn!(connector = %name, error = %e, "connector stop failed");
        }
    }

    /// Start a connector per its target state: instance, task configs, tasks. Failures
    /// become the connector's FAILED status, never an error of the caller.
    fn start_connector(&self, st: &mut State_, name: &str) {
        let Some(rec) = st.configs.get(name).cloned() else {
            return;
        };
        if rec.target == TargetState::Stopped {
            self.inner.statuses.set(name, None, State::Stopped, None);
            return;
        }
        if !self.start_connector_instance(st, name) {
            return;
        }
        let Some(running) = st.running.get(name) else {
            return;
        };
        let kind = running.kind;
        let Some(tasks) = self.generate_tasks(st, name) else {
            return;
        };
        let mut handles = BTreeMap::new();
        for (i, t) in tasks.into_iter().enumerate() {
            match self.spawn_task(name, &rec.config, i, t, kind, rec.target) {
                Ok(h) => {
                    handles.insert(i, h);
                }
                Err(e) => {
                    self.inner
                        .statuses
                        .set(name, Some(i), State::Failed, Some(e.to_string()));
                }
            }
        }
        if let Some(r) = st.running.get_mut(name) {
            r.tasks = handles;
        }
    }

    /// Create and start the connector instance; answers whether it runs.
    fn start_connector_instance(&self, st: &mut State_, name: &str) -> bool {
        let Some(rec) = st.configs.get(name).cloned() else {
            return false;
        };
        let fail = |trace: String| {
            tracing::error!(connector = name, "connector failed: {trace}");
            self.inner
                .statuses
                .set(name, None, State::Failed, Some(trace));
            false
        };
        let common = match CommonConfig::parse(name, &rec.config) {
            Ok(c) => c,
            Err(e) => return fail(e.to_string()),
        };
        let plugin = match self.inner.plugins.lookup(&common.class) {
            Ok(p) => p,
            Err(e) => return fail(e.to_string()),
        };
        let resolved = match self.inner.providers.resolve(&rec.config) {
            Ok(c) => c,
            Err(e) => return fail(e.to_string()),
        };
        let mut connector = match plugin.new_connector() {
            Ok(c) => c,
            Err(e) => return fail(e.to_string()),
        };
        let requests = Arc::new(ConnectorRequests::default());
        if let Err(e) = connector.start(&resolved, requests.clone()) {
            return fail(e.to_string());
        }
        let kind = plugin.kind();
        let entry = st.running.entry(name.to_owned()).or_insert(Running {
            connector: None,
            kind,
            tasks: BTreeMap::new(),
            requests: requests.clone(),
            applied: ConnectorRecord::default(),
        });
        entry.connector = Some(connector);
        entry.requests = requests;
        let state = if rec.target == TargetState::Paused {
            State::Paused
        } else {
            State::Running
        };
        self.inner.statuses.set(name, None, state, None);
        true
    }

    /// Ask the connector for task configs and store them if they changed.
    fn generate_tasks(&self, st: &mut State_, name: &str) -> Option<Vec<Props>> {
        let rec = st.configs.get(name)?.clone();
        let common = CommonConfig::parse(name, &rec.config).ok()?;
        let running = st.running.get_mut(name)?;
        let connector = running.connector.as_mut()?;
        let tasks = match connector.task_configs(common.tasks_max as u32) {
            Ok(t) => t,
            Err(e) => {
                self.inner
                    .statuses
                    .set(name, None, State::Failed, Some(e.to_string()));
                return None;
            }
        };
        if tasks.len() > common.tasks_max {
            self.inner.statuses.set(
                name,
                None,
                State::Failed,
                Some(format!(
                    "the connector generated {} task configs, more than tasks.max={}",
                    tasks.len(),
                    common.tasks_max
                )),
            );
            return None;
        }
        let tasks: Vec<Props> = tasks.into_iter().collect();
        if tasks != rec.tasks {
            if let Err(e) = self.write_tasks(st, name, &tasks) {
                if self.inner.cluster.is_some() {
                    // The leader may be changing: try again at the next tick.
                    tracing::warn!(connector = name, error = %e, "task configs not stored yet; retrying");
                    if let Some(r) = st.running.get(name) {
                        use crate::plugin::ConnectorHost as _;
                        let _ = r.requests.request_task_reconfiguration();
                    }
                    return None;
                }
                self.inner
                    .statuses
                    .set(name, None, State::Failed, Some(e.to_string()));
                return None;
            }
            for t in tasks.len()..rec.tasks.len() {
                self.inner.statuses.remove_task(name, t);
            }
        }
        Some(tasks)
    }

    /// The class and sub-config of converter `key` (`key.converter` ...): the
    /// connector's if it sets one, else the worker's, else `default`.
    fn converter_choice(
        &self,
        config: &Props,
        key: &str,
        default: Option<&str>,
    ) -> (String, BTreeMap<String, String>) {
        let worker = &self.inner.config.converters;
        if let Some(class) = config.get(key).filter(|c| !c.trim().is_empty()) {
            return (
                class.trim().to_owned(),
                with_prefix(config, &format!("{key}.")),
            );
        }
        match worker.get(key) {
            Some(class) => (
                class.trim().to_owned(),
                with_prefix(worker, &format!("{key}.")),
            ),
            None => (default.unwrap_or_default().to_owned(), BTreeMap::new()),
        }
    }

    /// What is wrong with each of the three converters `config` would get, by key.
    fn converter_errors(&self, config: &Props) -> Vec<(&'static str, String)> {
        let mut errors = Vec::new();
        for (key, is_key) in [("key.converter", true), ("value.converter", false)] {
            let (class, sub) = self.converter_choice(config, key, None);
            if let Err(e) = convert::converter(&class, &sub, is_key) {
                errors.push((key, e.to_string()));
            }
        }
        let (class, sub) =
            self.converter_choice(config, "header.converter", Some(HEADER_CONVERTER));
        if let Err(e) = convert::header_converter(&class, &sub) {
            errors.push(("header.converter", e.to_string()));
        }
        errors
    }

    fn converters(&self, name: &str, config: &Props) -> Result<Converters, WorkerError> {
        let pick = |key: &str,
                    default: Option<&str>|
         -> Result<(String, BTreeMap<String, String>), WorkerError> {
            Ok(self.converter_choice(config, key, default))
        };
        let bad = |key: &str, e: convert::ConvertError| WorkerError::ConnectorConfig {
            connector: name.to_owned(),
            key: key.to_owned(),
            reason: e.to_string(),
        };
        let (k, kc) = pick("key.converter", None)?;
        let (v, vc) = pick("value.converter", None)?;
        let (h, hc) = pick("header.converter", Some(HEADER_CONVERTER))?;
        Ok(Converters {
            classes: [k.clone(), v.clone(), h.clone()],
            key: convert::converter(&k, &kc, true).map_err(|e| bad("key.converter", e))?,
            value: convert::converter(&v, &vc, false).map_err(|e| bad("value.converter", e))?,
            header: convert::header_converter(&h, &hc).map_err(|e| bad("header.converter", e))?,
        })
    }

    fn spawn_task(
        &self,
        name: &str,
        connector_config: &Props,
        task: usize,
        task_config: Props,
        kind: ConnectorType,
        target: TargetState,
    ) -> Result<TaskHandle, WorkerError> {
        // The worker's own keys (transforms, errors.*, converters, overrides) get their
        // `${provider:...}` placeholders resolved now, at start, as the task's config does.
        let connector_config = &self.inner.providers.resolve(connector_config)?;
        let common = CommonConfig::parse(name, connector_config)?;
        let plugin = self.inner.plugins.lookup(&common.class)?;
        let converters = Arc::new(self.converters(name, connector_config)?);
        let config = self.inner.providers.resolve(&task_config)?;
        let mut producer_props = self.inner.config.producer.clone();
        producer_props.extend(with_prefix(connector_config, "producer.override."));
        let mut consumer_props = self.inner.config.consumer.clone();
        consumer_props.extend(with_prefix(connector_config, "consumer.override."));
        let bad = |key: &str, reason: String| WorkerError::ConnectorConfig {
            connector: name.to_owned(),
            key: key.to_owned(),
            reason,
        };
        let producer = ProducerSettings::from_props(&producer_props)
            .map_err(|r| bad("producer.override", r))?;
        let consumer = ConsumerSettings::from_props(&consumer_props)
            .map_err(|r| bad("consumer.override", r))?;
        let spec = TaskSpec {
            connector: name.to_owned(),
            task,
            plugin,
            config,
            common,
            converters,
            client: self.inner.client.clone(),
            offsets: self.inner.offsets.clone(),
            statuses: self.inner.statuses.clone(),
            topics: self.inner.topics.clone(),
            flush_interval: self.inner.config.offset_flush_interval,
            producer,
            consumer,
            restart: RestartPolicy {
                enabled: self.inner.config.restart_enabled,
                initial: self.inner.config.restart_backoff_initial,
                max: self.inner.config.restart_backoff_max,
            },
        };
        self.inner
            .statuses
            .set(name, Some(task), State::Unassigned, None);
        tracing::info!(connector = name, task, "task starting");
        let handle = TaskHandle::spawn(spec, kind == ConnectorType::Source).map_err(|e| {
            WorkerError::Io {
                what: format!("starting a thread for task {task} of {name}"),
                error: e,
            }
        })?;
        if target == TargetState::Paused {
            handle.set_paused(true);
        }
        Ok(handle)
    }
}

fn lock_offsets(offsets: &Mutex<OffsetStore>) -> MutexGuard<'_, OffsetStore> {
    offsets.lock().unwrap_or_else(|p| p.into_inner())
}

/// A JSON integer, or a string holding one (Kafka accepts both in sink offsets).
fn json_integer(v: &Json) -> Option<i64> {
    match v {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A sink offset, `{"kafka_offset": N}` (N ≥ 0, a number or a string), or `None` to
/// remove the partition's.
fn sink_offset(name: &str, offset: Option<&Json>) -> Result<Option<i64>, WorkerError> {
    let Some(offset) = offset else {
        return Ok(None);
    };
    let refuse = |m: String| WorkerError::Refused(format!("connector {name}: {m}"));
    let Some(value) = offset.get("kafka_offset") else {
        return Err(refuse(format!(
            "The offset for a sink connector should either be null or contain the key \
             'kafka_offset', not {offset}"
        )));
    };
    match json_integer(value) {
        Some(o) if o >= 0 => Ok(Some(o)),
        _ => Err(refuse(format!(
            "Failed to parse the following Kafka offset value in the provided offsets: \
             '{value}'; 'kafka_offset' must be a non-negative integer"
        ))),
    }
}

/// A source partition and offset as Kafka accepts them (`OffsetUtils.validateFormat`):
/// JSON objects whose values are primitives; the offset may be null (remove it).
fn check_source_offset(
    name: &str,
    partition: &Json,
    offset: Option<&Json>,
) -> Result<(), WorkerError> {
    let refuse = |m: String| WorkerError::Refused(format!("connector {name}: {m}"));
    let primitive = |v: &Json| !matches!(v, Json::Array(_) | Json::Object(_));
    match partition {
        Json::Object(m) if m.values().all(primitive) => {}
        Json::Object(_) => {
            return Err(refuse(format!(
                "Partitions may only contain primitive types as values, not {partition}"
            )));
        }
        _ => {
            return Err(refuse(format!(
                "a source partition must be a JSON object (the connector's own keys, e.g. \
                 {{\"filename\": \"in.txt\"}}), not {partition}"
            )));
        }
    }
    match offset {
        None => Ok(()),
        Some(Json::Object(m)) if m.values().all(primitive) => Ok(()),
        Some(Json::Object(_)) => Err(refuse(format!(
            "Offsets may only contain primitive types as values, not {}",
            offset.map(Json::to_string).unwrap_or_default()
        ))),
        Some(other) => Err(refuse(format!(
            "a source offset must be a JSON object (e.g. {{\"position\": 30}}) or null, not {other}"
        ))),
    }
}

/// The header converter when neither the connector nor the worker names one.
const HEADER_CONVERTER: &str = "org.apache.kafka.connect.storage.SimpleHeaderConverter";

/// `current` with `patch` applied: a value sets the key, `None` removes it.
pub fn patch_config(current: &Props, patch: &BTreeMap<String, Option<String>>) -> Props {
    let mut out = current.clone();
    for (k, v) in patch {
        match v {
            Some(v) => out.insert(k.clone(), v.clone()),
            None => out.remove(k),
        };
    }
    out
}

/// A connector key the worker reads itself (Kafka Connect's `ConnectorConfig`,
/// `SinkConnectorConfig`), with the check its value must pass.
#[derive(Clone, Debug)]
pub struct ConnectorKey {
    pub info: ConfigKeyInfo,
    rule: Rule,
}

#[derive(Clone, Copy, Debug)]
enum Rule {
    Any,
    AtLeast(i64),
    OneOf(&'static [&'static str]),
    /// Kafka's `nonEmptyStringWithoutControlChars`, and no `/` (a name is a REST path
    /// segment here).
    Name,
}

impl ConnectorKey {
    /// Check a value that is set (not blank): its type, then its rule. The message is
    /// Kafka's: `Invalid value V for configuration K: why`.
    pub fn check(&self, value: &str) -> Result<(), String> {
        let invalid = |why: String| {
            format!(
                "Invalid value {value} for configuration {}: {why}",
                self.info.name
            )
        };
        let v = value.trim();
        let number = match self.info.kind {
            ConfigType::Int => Some(
                v.parse::<i32>()
                    .map(i64::from)
                    .map_err(|_| invalid("Not a number of type INT".into()))?,
            ),
            ConfigType::Long => Some(
                v.parse::<i64>()
                    .map_err(|_| invalid("Not a number of type LONG".into()))?,
            ),
            ConfigType::Boolean if v != "true" && v != "false" => {
                return Err(invalid("Expected value to be either true or false".into()));
            }
            _ => None,
        };
        match self.rule {
            Rule::Any => Ok(()),
            Rule::AtLeast(min) => match number {
                Some(n) if n < min => Err(invalid(format!("Value must be at least {min}"))),
                _ => Ok(()),
            },
            Rule::OneOf(allowed) if !allowed.contains(&v) => Err(invalid(format!(
                "String must be one of: {}",
                allowed.join(", ")
            ))),
            Rule::OneOf(_) => Ok(()),
            Rule::Name => {
                if value.chars().any(char::is_control) {
                    Err(invalid("String may not contain control characters".into()))
                } else if value.contains('/') {
                    Err(invalid(
                        "may not contain '/' (a connector name is a REST path segment)".into(),
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// The keys the worker reads from every connector's config (and, for sinks, the
/// subscription and dead letter queue keys), declared once with type, default and doc:
/// validation, `GET /connector-plugins/{plugin}/config` and the docs come from here.
/// Kafka Connect keys Tributary does not act on (`config.action.reload`,
/// `tasks.max.enforce`, the DLQ replication factor) are left out.
#[rustfmt::skip]
pub fn connector_keys(kind: ConnectorType) -> Vec<ConnectorKey> {
    use ConfigType::{Boolean, Class, Int, List, Long, String as Str};
    use Importance::{High, Low, Medium};
    /// One key; `default: None` is required, except for CLASS keys (no default: the
    /// worker's applies).
    struct Def {
        name: &'static str,
        kind: ConfigType,
        default: Option<&'static str>,
        importance: Importance,
        width: Width,
        display: &'static str,
        doc: &'static str,
        rule: Rule,
    }
    let def = |name, kind, default, importance, width, display, doc, rule| Def {
        name,
        kind,
        default,
        importance,
        width,
        display,
        doc,
        rule,
    };
    let sink = kind == ConnectorType::Sink;
    let mut common = vec![
        def("name", Str, None, High, Width::Medium, "Connector name",
            "Globally unique name to use for this connector.", Rule::Name),
        def("connector.class", Str, None, High, Width::Long, "Connector class",
            "Name or alias of the connector plugin, e.g. FileStreamSource or \
             org.apache.kafka.connect.file.FileStreamSourceConnector (GET /connector-plugins \
             lists them).", Rule::Any),
        def("tasks.max", Int, Some("1"), High, Width::Short, "Tasks max",
            "Maximum number of tasks to use for this connector.", Rule::AtLeast(1)),
        def("key.converter", Class, None, Low, Width::Short, "Key converter class",
            "Converter between the Connect data of record keys and the bytes in the topic; \
             the worker's key.converter when unset.", Rule::Any),
        def("value.converter", Class, None, Low, Width::Short, "Value converter class",
            "Converter between the Connect data of record values and the bytes in the topic; \
             the worker's value.converter when unset.", Rule::Any),
        def("header.converter", Class, None, Low, Width::Short, "Header converter class",
            "Converter between the Connect data of header values and the bytes in the topic; \
             the worker's header.converter when unset, else SimpleHeaderConverter.", Rule::Any),
    ];
    if sink {
        common.extend([
            def("topics", List, Some(""), High, Width::Long, "Topics",
                "List of topics to consume, separated by commas.", Rule::Any),
            def("topics.regex", Str, Some(""), High, Width::Long, "Topics regex",
                "Regular expression giving the topics to consume (the whole name must match). \
                 Only one of topics or topics.regex should be specified.", Rule::Any),
        ]);
    }
    let mut errors = vec![
        def("errors.retry.timeout", Long, Some("0"), Medium, Width::Medium,
            "Retry Timeout for Errors",
            "The maximum duration in milliseconds that a failed operation will be \
             reattempted. 0 means no retries; -1 means infinite retries.", Rule::AtLeast(-1)),
        def("errors.retry.delay.max.ms", Long, Some("60000"), Medium, Width::Medium,
            "Maximum Delay Between Retries for Errors",
            "The maximum duration in milliseconds between consecutive retry attempts.",
            Rule::AtLeast(0)),
        def("errors.tolerance", Str, Some("none"), Medium, Width::Short, "Error Tolerance",
            "Behavior for tolerating errors during connector operation: 'none' fails the \
             task on the first error, 'all' skips problematic records.",
            Rule::OneOf(&["none", "all"])),
        def("errors.log.enable", Boolean, Some("false"), Medium, Width::Short, "Log Errors",
            "If true, write each error and the details of the failed operation to the log.",
            Rule::Any),
        def("errors.log.include.messages", Boolean, Some("false"), Medium, Width::Short,
            "Log Error Details",
            "Whether to include the failed record in the log (its topic, partition, offset \
             and timestamp; keys, values and headers too for a sink).", Rule::Any),
    ];
    if sink {
        errors.extend([
            def("errors.deadletterqueue.topic.name", Str, Some(""), Medium, Width::Medium,
                "Dead Letter Queue Topic Name",
                "The name of the topic to be used as the dead letter queue (DLQ) for records \
                 that fail to be processed; empty: none.", Rule::Any),
            def("errors.deadletterqueue.context.headers.enable", Boolean, Some("false"), Medium,
                Width::Medium, "Enable Error Context Headers",
                "If true, add headers containing error context to the messages written to \
                 the dead letter queue.", Rule::Any),
        ]);
    }
    [("Common", common), ("Error Handling", errors)]
        .into_iter()
        .flat_map(|(group, defs)| {
            defs.into_iter().zip(1..).map(move |(d, order)| ConnectorKey {
                info: ConfigKeyInfo {
                    name: d.name.to_owned(),
                    kind: d.kind,
                    default: d.default.map(str::to_owned),
                    optional: d.default.is_none() && d.kind == Class,
                    importance: d.importance,
                    documentation: d.doc.to_owned(),
                    group: Some(group.to_owned()),
                    order_in_group: order,
                    width: d.width,
                    display_name: d.display.to_owned(),
                    valid_values: None,
                },
                rule: d.rule,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: ConnectorType, name: &str) -> ConnectorKey {
        connector_keys(kind)
            .into_iter()
            .find(|k| k.info.name == name)
            .unwrap_or_else(|| panic!("no key {name}"))
    }

    #[test]
    fn patch_sets_and_removes() {
        let current: Props = [("a", "1"), ("b", "2")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let patch: BTreeMap<String, Option<String>> = [
            ("a".to_string(), Some("10".to_string())),
            ("b".to_string(), None),
            ("c".to_string(), Some("3".to_string())),
            ("gone".to_string(), None),
        ]
        .into();
        let out = patch_config(&current, &patch);
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            [("a".into(), "10".into()), ("c".into(), "3".into())]
        );
    }

    #[test]
    fn connector_key_checks_speak_kafka() {
        use ConnectorType::{Sink, Source};
        let check = |kind, name: &str, value: &str| key(kind, name).check(value);
        assert_eq!(check(Source, "tasks.max", "4"), Ok(()));
        assert_eq!(
            check(Source, "tasks.max", "0").unwrap_err(),
            "Invalid value 0 for configuration tasks.max: Value must be at least 1"
        );
        assert_eq!(
            check(Source, "tasks.max", "many").unwrap_err(),
            "Invalid value many for configuration tasks.max: Not a number of type INT"
        );
        assert!(check(Source, "errors.retry.timeout", "-1").is_ok());
        assert!(check(Source, "errors.retry.timeout", "-2").is_err());
        assert!(
            check(Sink, "errors.log.enable", "yes")
                .unwrap_err()
                .contains("either true or false")
        );
        assert!(
            check(Sink, "errors.tolerance", "some")
                .unwrap_err()
                .ends_with("String must be one of: none, all")
        );
        assert!(check(Source, "name", "a/b").unwrap_err().contains("'/'"));
        assert!(
            check(Source, "name", "a\nb")
                .unwrap_err()
                .contains("control")
        );
        assert!(check(Source, "name", "fine name").is_ok());
    }

    #[test]
    fn connector_keys_by_type() {
        let names = |kind| -> Vec<String> {
            connector_keys(kind)
                .into_iter()
                .map(|k| k.info.name)
                .collect()
        };
        let source = names(ConnectorType::Source);
        let sink = names(ConnectorType::Sink);
        assert!(!source.contains(&"topics".to_string()));
        assert!(sink.contains(&"topics".to_string()));
        assert!(sink.contains(&"errors.deadletterqueue.topic.name".to_string()));
        assert_eq!(&source[..3], ["name", "connector.class", "tasks.max"]);
        // Only the name and the class are required; the converters have no default.
        let required: Vec<String> = connector_keys(ConnectorType::Sink)
            .into_iter()
            .filter(|k| k.info.required())
            .map(|k| k.info.name)
            .collect();
        assert_eq!(required, ["name", "connector.class"]);
        // Orders count from 1 within each group.
        let keys = connector_keys(ConnectorType::Sink);
        let first_errors = keys
            .iter()
            .find(|k| k.info.group.as_deref() == Some("Error Handling"))
            .unwrap();
        assert_eq!(first_errors.info.order_in_group, 1);
    }
}
