//! The herder in distributed mode: what runs here follows the config topic (read by every
//! worker) and this worker's assignment (from the group's leader), instead of following
//! the REST calls made to this worker.
//!
//! [`Herder::reconcile`] is the one place that starts and stops work in a cluster: it
//! compares what runs here with the config snapshot and the assignment and fixes the
//! difference (stop what is no longer ours, deleted, stopped or reconfigured; start what
//! is ours and not running). REST writes only write to the config topic; the workers
//! concerned act when they read it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use super::{Herder, Running, State_};
use crate::client::Client;
use crate::plugin::SharedRegistry;
use crate::worker::WorkerError;
use crate::worker::config::WorkerConfig;
use crate::worker::distributed::ClusterView;
use crate::worker::distributed::assignor::{self, Item};
use crate::worker::store::{ConnectorRecord, Props, State, TargetState};

/// How long the worker running a connector waits for the leader to store its task
/// configs (the herder's lock is held meanwhile; a failure is retried at the next tick).
const TASKS_TO_LEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Herder {
    /// Open the internal topics and read them; start nothing until the group assigns
    /// work to this worker.
    pub fn start_distributed(
        config: WorkerConfig,
        client: Client,
        plugins: SharedRegistry,
        view: Arc<ClusterView>,
    ) -> Result<Herder, WorkerError> {
        let herder = Herder::open(config, client, plugins, Some(view))?;
        {
            let mut positions = herder
                .inner
                .status_positions
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            herder.inner.statuses.catch_up(&mut positions)?;
        }
        Ok(herder)
    }

    /// This worker's view of its cluster (`None` in standalone mode).
    pub fn cluster(&self) -> Option<&Arc<ClusterView>> {
        self.inner.cluster.as_ref()
    }

    /// Read what other workers wrote to the config and status topics; act on config
    /// changes to what runs here. Answers the config offset now and whether the work to
    /// share changed (connectors created or deleted, task counts): then the group must
    /// rebalance.
    pub fn follow_cluster(&self) -> Result<(i64, bool), WorkerError> {
        {
            let mut positions = self
                .inner
                .status_positions
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            self.inner.statuses.catch_up(&mut positions)?;
        }
        let mut st = self.lock();
        let before = shape(&st);
        if !st.configs.catch_up()? {
            self.republish(&st);
            return Ok((st.configs.offset(), false));
        }
        let changed = shape(&st) != before;
        self.reconcile(&mut st);
        self.republish(&st);
        Ok((st.configs.offset(), changed))
    }

    /// Statuses of what runs here, written again where another worker's show.
    fn republish(&self, st: &State_) {
        for (name, r) in &st.running {
            if r.connector.is_some() {
                self.inner.statuses.republish(name, None);
            }
            for &t in r.tasks.keys() {
                self.inner.statuses.republish(name, Some(t));
            }
        }
    }

    /// Every unit of work the config defines: each connector's instance and tasks.
    pub fn configured_items(&self) -> BTreeSet<Item> {
        let st = self.lock();
        assignor::configured_items(
            st.configs
                .connectors()
                .iter()
                .map(|(name, rec)| (name.as_str(), rec.tasks.len())),
        )
    }

    /// Make what runs here match the assignment just received.
    pub fn reconcile_cluster(&self) {
        let mut st = self.lock();
        self.reconcile(&mut st);
    }

    fn owns(&self, name: &str, task: Option<usize>) -> bool {
        self.inner
            .cluster
            .as_ref()
            .is_none_or(|c| c.owns(name, task))
    }

    /// Stop what is no longer this worker's (or no longer configured, stopped, or
    /// reconfigured), act on restart requests, start what is ours and not running.
    pub(super) fn reconcile(&self, st: &mut State_) {
        if self.inner.cluster.is_none() {
            return;
        }
        let deadline = Instant::now() + self.inner.config.task_shutdown_timeout;
        let restarts = st.configs.take_restarts();
        let names: Vec<String> = st.running.keys().cloned().collect();
        for name in names {
            let Some(rec) = st.configs.get(&name).cloned() else {
                self.stop_connector(st, &name);
                continue;
            };
            let owns_instance = self.owns(&name, None);
            let owned_tasks: Vec<bool> = (0..rec.tasks.len())
                .map(|i| self.owns(&name, Some(i)))
                .collect();
            let Some(r) = st.running.get_mut(&name) else {
                continue;
            };
            let stopped = rec.target == TargetState::Stopped;
            let config_changed = r.applied.config != rec.config;
            let restart = restarts.iter().find(|q| q.connector == name);
            let failed = |task: Option<usize>| {
                self.inner
                    .statuses
                    .get(&name, task)
                    .is_some_and(|s| s.state == State::Failed)
            };
            let restart_instance = restart.is_some_and(|q| !q.only_failed || failed(None));
            if r.connector.is_some()
                && (!owns_instance || stopped || config_changed || restart_instance)
            {
                if let Some(mut c) = r.connector.take()
                    && let Err(e) = c.stop()
                {
                    tracing::warn!(connector = %name, error = %e, "connector stop failed");
                }
                if !owns_instance {
                    tracing::info!(connector = %name, "connector moved to another worker");
                }
            }
            let mut gone = Vec::new();
            for (&i, _) in r.tasks.iter() {
                let ours = owned_tasks.get(i).copied().unwrap_or(false);
                let reconfigured = config_changed || r.applied.tasks.get(i) != rec.tasks.get(i);
                let restart_task =
                    restart.is_some_and(|q| q.include_tasks && (!q.only_failed || failed(Some(i))));
                if !ours || stopped || reconfigured || restart_task {
                    gone.push(i);
                }
            }
            for i in &gone {
                if let Some(t) = r.tasks.get(i) {
                    t.signal_stop();
                }
            }
            for i in gone {
                if let Some(mut t) = r.tasks.remove(&i)
                    && !t.join_until(deadline)
                {
                    tracing::warn!(connector = %name, task = i, "task still blocked in its plugin after task.shutdown.graceful.timeout.ms; abandoned");
                }
            }
            let paused = rec.target == TargetState::Paused;
            if r.applied.target != rec.target && !stopped {
                r.tasks.values().for_each(|t| t.set_paused(paused));
                if r.connector.is_some() {
                    let state = if paused {
                        State::Paused
                    } else {
                        State::Running
                    };
                    self.inner.statuses.set(&name, None, state, None);
                }
            }
            r.applied.target = rec.target;
            if r.connector.is_none() && r.tasks.is_empty() {
                st.running.remove(&name);
            }
        }
        let configs: Vec<(String, ConnectorRecord)> = st
            .configs
            .connectors()
            .iter()
            .map(|(n, r)| (n.clone(), r.clone()))
            .collect();
        let mut offsets_read = false;
        for (name, rec) in configs {
            let owns_instance = self.owns(&name, None);
            if rec.target == TargetState::Stopped {
                if owns_instance
                    && self
                        .inner
                        .statuses
                        .get(&name, None)
                        .is_none_or(|s| s.state != State::Stopped)
                {
                    self.inner.statuses.set(&name, None, State::Stopped, None);
                }
                continue;
            }
            let running_instance = st.running.get(&name).is_some_and(|r| r.connector.is_some());
            if owns_instance && !running_instance {
                if self.start_connector_instance(st, &name) {
                    // Task configs go to the leader; the commit brings them back.
                    self.generate_tasks(st, &name);
                }
                if let Some(r) = st.running.get_mut(&name) {
                    r.applied.config = rec.config.clone();
                    r.applied.target = rec.target;
                }
            }
            for (i, task_config) in rec.tasks.iter().enumerate() {
                if !self.owns(&name, Some(i))
                    || st
                        .running
                        .get(&name)
                        .is_some_and(|r| r.tasks.contains_key(&i))
                {
                    continue;
                }
                let kind = match st.running.get(&name) {
                    Some(r) => r.kind,
                    None => {
                        let class = rec
                            .config
                            .get("connector.class")
                            .cloned()
                            .unwrap_or_default();
                        match self.inner.plugins.lookup(&class) {
                            Ok(p) => p.kind(),
                            Err(e) => {
                                self.inner.statuses.set(
                                    &name,
                                    Some(i),
                                    State::Failed,
                                    Some(e.to_string()),
                                );
                                continue;
                            }
                        }
                    }
                };
                if !offsets_read {
                    // A source task that moved here resumes from what its last worker
                    // committed.
                    offsets_read = true;
                    if let Err(e) = super::lock_offsets(&self.inner.offsets).catch_up() {
                        tracing::warn!(error = %e, "could not read the offsets topic");
                    }
                }
                let handle = match self.spawn_task(
                    &name,
                    &rec.config,
                    i,
                    task_config.clone(),
                    kind,
                    rec.target,
                ) {
                    Ok(h) => h,
                    Err(e) => {
                        self.inner
                            .statuses
                            .set(&name, Some(i), State::Failed, Some(e.to_string()));
                        continue;
                    }
                };
                let r = st.running.entry(name.clone()).or_insert_with(|| Running {
                    connector: None,
                    kind,
                    tasks: Default::default(),
                    requests: Default::default(),
                    applied: ConnectorRecord::default(),
                });
                r.tasks.insert(i, handle);
            }
            if let Some(r) = st.running.get_mut(&name) {
                // What runs here now was started from this config.
                r.applied.config = rec.config.clone();
                r.applied.tasks = rec.tasks.clone();
                r.applied.target = rec.target;
            }
        }
    }

    /// Store a connector's new task configs: directly where this worker leads (or in
    /// standalone mode), else through the leader's `POST /connectors/NAME/tasks`.
    pub(super) fn write_tasks(
        &self,
        st: &mut State_,
        name: &str,
        tasks: &[Props],
    ) -> Result<(), WorkerError> {
        let Some(view) = self.inner.cluster.as_ref() else {
            return st.configs.put_tasks(name, tasks);
        };
        let leader = view.leader_url();
        // Never a request to ourselves: its handler would wait for the lock held here.
        if view.is_leader() || leader.as_deref() == Some(view.url.as_str()) {
            return st.configs.put_tasks(name, tasks);
        }
        let Some(leader) = leader.filter(|_| !view.is_rebalancing()) else {
            return Err(WorkerError::Refused(
                "no known leader to write task configs to (a rebalance is under way); they are written when it ends".into(),
            ));
        };
        let body = serde_json::to_vec(tasks).map_err(|e| WorkerError::Refused(e.to_string()))?;
        let path = format!(
            "/connectors/{}/tasks?forward=false",
            crate::rest::forward::encode_segment(name)
        );
        let handle = self.inner.client.runtime().clone();
        // Under the herder lock: a leader that does not answer soon is retried later.
        let reply = handle.block_on(async {
            let call = crate::rest::forward::request(
                &leader,
                "POST",
                &path,
                Some(bytes::Bytes::from(body)),
            );
            tokio::time::timeout(TASKS_TO_LEADER_TIMEOUT, call)
                .await
                .unwrap_or_else(|_| Err("no answer within 10 s".into()))
        });
        match reply {
            Ok((status, _)) if status < 300 => Ok(()),
            Ok((status, body)) => Err(WorkerError::Refused(format!(
                "the leader at {leader} refused the task configs of {name} (HTTP {status}): {}",
                String::from_utf8_lossy(&body)
            ))),
            Err(e) => Err(WorkerError::Refused(format!(
                "could not send the task configs of {name} to the leader at {leader}: {e}"
            ))),
        }
    }

    /// The leader's side of `POST /connectors/NAME/tasks`: store the task configs the
    /// worker running the connector generated.
    pub fn put_task_configs(&self, name: &str, tasks: Vec<Props>) -> Result<(), WorkerError> {
        let mut st = self.lock();
        let Some(rec) = st.configs.get(name) else {
            return Err(WorkerError::UnknownConnector(name.to_owned()));
        };
        if rec.tasks == tasks {
            return Ok(());
        }
        st.configs.put_tasks(name, &tasks)
    }
}

/// The shape of the work to share: each connector and its task count.
fn shape(st: &State_) -> Vec<(String, usize)> {
    st.configs
        .connectors()
        .iter()
        .map(|(n, r)| (n.clone(), r.tasks.len()))
        .collect()
}
