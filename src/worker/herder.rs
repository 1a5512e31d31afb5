//! The herder (Kafka Connect's name): turns the connector configs of the config topic
//! into running connectors and tasks on this worker, and answers for them.
//!
//! Every method blocks (plugin calls, durable writes to the internal topics): call them
//! from a blocking thread. One lock orders all changes; it is never held across an
//! `.await` (there are none here) and plugin calls made under it are the connector's
//! own lifecycle calls (start, task_configs, stop), which Kafka Connect also serializes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::WorkerError;
use super::config::WorkerConfig;
use super::connector_config::{CommonConfig, with_prefix};
use super::convert;
use super::hosts::ConnectorRequests;
use super::providers::ConfigProviders;
use super::store::{ConfigStore, OffsetStore, Props, State, StatusStore, TargetState, TopicLog};
use super::task::{Converters, RestartPolicy, StatusBoard, StatusView, TaskHandle, TaskSpec};
use crate::client::{Client, ConsumerSettings, ProducerSettings};
use crate::plugin::{ConnectorType, SharedRegistry};

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
    state: Mutex<State_>,
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
    tasks: Vec<TaskHandle>,
    /// What the connector asked of the worker (see [`Herder::tick`]).
    requests: Arc<ConnectorRequests>,
}

impl Herder {
    /// Open (creating if needed) the internal topics, read them, and start every
    /// connector in its target state.
    pub fn start(
        config: WorkerConfig,
        client: Client,
        plugins: SharedRegistry,
    ) -> Result<Herder, WorkerError> {
        let configs = TopicLog::open(
            &client,
            &config.config_topic,
            1,
            "config.storage.topic",
            true,
        )?;
        let offsets = TopicLog::open(
            &client,
            &config.offset_topic,
            config.offset_partitions,
            "offset.storage.topic",
            false,
        )?;
        let status = TopicLog::open(
            &client,
            &config.status_topic,
            config.status_partitions,
            "status.storage.topic",
            false,
        )?;
        let configs = ConfigStore::load(configs)?;
        let offsets = OffsetStore::load(offsets)?;
        let statuses = Arc::new(StatusBoard::new(
            StatusStore::new(status, &config.worker_id()),
            config.worker_id(),
        ));
        let providers = ConfigProviders::from_worker(&config.config_providers)?;
        let herder = Herder {
            inner: Arc::new(Inner {
                config,
                client,
                plugins,
                providers,
                statuses,
                offsets: Arc::new(Mutex::new(offsets)),
                state: Mutex::new(State_ {
                    configs,
                    running: BTreeMap::new(),
                }),
            }),
        };
        let names: Vec<String> = herder.lock().configs.connectors().keys().cloned().collect();
        for name in names {
            let mut st = herder.lock();
            herder.start_connector(&mut st, &name, false);
        }
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
        let mut st = self.lock();
        if st.configs.get(name).is_some() {
            return Err(WorkerError::ConnectorExists(name.to_owned()));
        }
        self.check_config(name, &config)?;
        st.configs.put_connector(name, &config, Some(initial))?;
        self.start_connector(&mut st, name, false);
        Ok(self.info_locked(&st, name).expect("just created"))
    }

    /// Create or replace a connector's config; answers (info, created). A changed
    /// config restarts the connector and its tasks; an identical one changes nothing.
    pub fn put_connector_config(
        &self,
        name: &str,
        config: Props,
    ) -> Result<(ConnectorInfo, bool), WorkerError> {
        let mut st = self.lock();
        self.check_config(name, &config)?;
        let created = match st.configs.get(name) {
            None => {
                st.configs
                    .put_connector(name, &config, Some(TargetState::Started))?;
                true
            }
            Some(existing) if existing.config == config => {
                return Ok((self.info_locked(&st, name).expect("exists"), false));
            }
            Some(_) => {
                st.configs.put_connector(name, &config, None)?;
                self.stop_connector(&mut st, name);
                false
            }
        };
        self.start_connector(&mut st, name, true);
        Ok((self.info_locked(&st, name).expect("exists"), created))
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
        match (prev, target) {
            (TargetState::Stopped, _) => self.start_connector(&mut st, name, false),
            (_, TargetState::Stopped) => {
                self.stop_connector(&mut st, name);
                st.configs.put_tasks(name, &[])?;
                self.inner.statuses.set(name, None, State::Stopped, None);
            }
            (_, TargetState::Paused) => {
                if let Some(r) = st.running.get(name) {
                    r.tasks.iter().for_each(|t| t.set_paused(true));
                }
                self.inner.statuses.set(name, None, State::Paused, None);
            }
            (_, TargetState::Started) => {
                if let Some(r) = st.running.get(name) {
                    r.tasks.iter().for_each(|t| t.set_paused(false));
                }
                self.inner.statuses.set(name, None, State::Running, None);
            }
        }
        Ok(())
    }

    /// Restart a connector; with `include_tasks` its tasks too (`only_failed`: only
    /// those that failed).
    pub fn restart_connector(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<(), WorkerError> {
        let mut st = self.lock();
        if st.configs.get(name).is_none() {
            return Err(WorkerError::UnknownConnector(name.to_owned()));
        }
        let connector_failed = self
            .inner
            .statuses
            .get(name, None)
            .is_some_and(|s| s.state == State::Failed);
        // KIP-745: everything, or only what failed.
        if include_tasks && !only_failed {
            self.stop_connector(&mut st, name);
            self.start_connector(&mut st, name, false);
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
                self.start_connector(&mut st, name, false);
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
        if let Some(handle) = running.tasks.get_mut(task) {
            handle.signal_stop();
            handle.join_until(Instant::now() + self.inner.config.task_shutdown_timeout);
        }
        let kind = running.kind;
        let handle = self.spawn_task(name, &rec.config, task, task_config, kind, rec.target)?;
        if let Some(r) = st.running.get_mut(name) {
            if task < r.tasks.len() {
                r.tasks[task] = handle;
            } else {
                r.tasks.push(handle);
            }
        }
        Ok(())
    }

    /// Delete a connector: stop it, tombstone its config and statuses.
    pub fn delete_connector(&self, name: &str) -> Result<ConnectorInfo, WorkerError> {
        let mut st = self.lock();
        let info = self
            .info_locked(&st, name)
            .ok_or_else(|| WorkerError::UnknownConnector(name.to_owned()))?;
        self.stop_connector(&mut st, name);
        st.configs.delete(name)?;
        self.inner.statuses.remove(name, info.tasks);
        Ok(info)
    }

    /// The stored source offsets of a connector: (partition, offset) JSON pairs.
    pub fn source_offsets(&self, name: &str) -> Vec<(serde_json::Value, serde_json::Value)> {
        self.inner
            .offsets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .of_connector(name)
    }

    /// Stop every connector and task within `task.shutdown.graceful.timeout.ms` (in
    /// total, as Kafka Connect counts it): tasks commit what they have first.
    pub fn shutdown(&self) {
        let mut st = self.lock();
        let deadline = Instant::now() + self.inner.config.task_shutdown_timeout;
        for r in st.running.values() {
            r.tasks.iter().for_each(TaskHandle::signal_stop);
        }
        let names: Vec<String> = st.running.keys().cloned().collect();
        for name in names {
            if let Some(mut r) = st.running.remove(&name) {
                for (i, t) in r.tasks.iter_mut().enumerate() {
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
            if after != before {
                tracing::info!(connector = %name, tasks = after.len(), "task configs changed; restarting the tasks");
                let Some(rec) = st.configs.get(&name).cloned() else {
                    continue;
                };
                let Some(r) = st.running.get_mut(&name) else {
                    continue;
                };
                let deadline = Instant::now() + self.inner.config.task_shutdown_timeout;
                r.tasks.iter().for_each(TaskHandle::signal_stop);
                for t in &mut r.tasks {
                    t.join_until(deadline);
                }
                r.tasks.clear();
                let kind = r.kind;
                let mut handles = Vec::new();
                for (i, t) in after.into_iter().enumerate() {
                    match self.spawn_task(&name, &rec.config, i, t, kind, rec.target) {
                        Ok(h) => handles.push(h),
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
        r.tasks.iter().for_each(TaskHandle::signal_stop);
        for (i, t) in r.tasks.iter_mut().enumerate() {
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
    fn start_connector(&self, st: &mut State_, name: &str, regenerate: bool) {
        let Some(rec) = st.configs.get(name).cloned() else {
            return;
        };
        if rec.target == TargetState::Stopped {
            self.inner.statuses.set(name, None, State::Stopped, None);
            return;
        }
        let _ = regenerate;
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
        let mut handles = Vec::with_capacity(tasks.len());
        for (i, t) in tasks.into_iter().enumerate() {
            match self.spawn_task(name, &rec.config, i, t, kind, rec.target) {
                Ok(h) => handles.push(h),
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
            tasks: Vec::new(),
            requests: requests.clone(),
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
            if let Err(e) = st.configs.put_tasks(name, &tasks) {
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

    fn converters(&self, name: &str, config: &Props) -> Result<Converters, WorkerError> {
        let worker = &self.inner.config.converters;
        let pick = |key: &str,
                    default: Option<&str>|
         -> Result<(String, BTreeMap<String, String>), WorkerError> {
            if let Some(class) = config.get(key).filter(|c| !c.trim().is_empty()) {
                return Ok((
                    class.trim().to_owned(),
                    with_prefix(config, &format!("{key}.")),
                ));
            }
            match worker.get(key) {
                Some(class) => Ok((
                    class.trim().to_owned(),
                    with_prefix(worker, &format!("{key}.")),
                )),
                None => Ok((default.unwrap_or_default().to_owned(), BTreeMap::new())),
            }
        };
        let bad = |key: &str, e: convert::ConvertError| WorkerError::ConnectorConfig {
            connector: name.to_owned(),
            key: key.to_owned(),
            reason: e.to_string(),
        };
        let (k, kc) = pick("key.converter", None)?;
        let (v, vc) = pick("value.converter", None)?;
        let (h, hc) = pick(
            "header.converter",
            Some("org.apache.kafka.connect.storage.SimpleHeaderConverter"),
        )?;
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
        let handle = TaskHandle::spawn(spec, kind == ConnectorType::Source).map_err(|e| {
            WorkerError::Io {
                what: format!("starting a thread for task {task} of {name}"),
                source: e,
            }
        })?;
        if target == TargetState::Paused {
            handle.set_paused(true);
        }
        Ok(handle)
    }
}
