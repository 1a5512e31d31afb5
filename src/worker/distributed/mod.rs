//! Distributed mode, `tributary distributed WORKER_CONFIG`: workers with the same
//! `group.id` share connectors and tasks through a Kafka cluster, as Kafka Connect's do.
//! No consensus of our own: membership is the Kafka group protocol (protocol type
//! `connect`), the state is the three internal topics.
//!
//! - [`protocol`]: Kafka Connect's member metadata and assignment payloads.
//! - [`assignor`]: the leader's incremental cooperative assignment (sticky, balanced,
//!   revoking only what moves, waiting `scheduled.rebalance.max.delay.ms` for a departed
//!   worker).
//! - [`member`]: the membership loop (join, sync, apply, heartbeat, follow the config
//!   topic, rejoin when the set of connectors or their task counts change).
//! - [`ClusterView`]: what this worker knows of the cluster (its assignment, the leader's
//!   URL, whether a rebalance is under way), read by the herder (what to run here) and
//!   the REST API (where to forward writes, when to answer 409).
//! - [`run`]: the command: REST, plugins, the remote client, the herder, the member.
//!
//! What this module must not know: how tasks run (the herder starts and stops what the
//! view says is ours) or how the protocol frames requests (the client's group calls).

pub mod assignor;
pub mod member;
pub mod protocol;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use self::assignor::Item;
use super::config::{Cluster, WorkerConfig};
use crate::rest::{RestListener, RestState};

/// Kafka Connect's `connect.protocol`: which assignment protocols JoinGroup offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectProtocol {
    /// `eager`: everything stops at each rebalance.
    Eager,
    /// `compatible`: incremental cooperative.
    Compatible,
    /// `sessioned`: incremental cooperative (Kafka also signs internal requests then).
    Sessioned,
}

impl ConnectProtocol {
    pub fn parse(s: &str) -> Option<ConnectProtocol> {
        match s.trim() {
            "eager" => Some(ConnectProtocol::Eager),
            "compatible" => Some(ConnectProtocol::Compatible),
            "sessioned" => Some(ConnectProtocol::Sessioned),
            _ => None,
        }
    }
}

/// The settings of distributed mode (Kafka Connect's `DistributedConfig` keys).
#[derive(Clone, Debug)]
pub struct DistributedSettings {
    pub group_id: String,
    pub protocol: ConnectProtocol,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub rebalance_timeout: Duration,
    pub max_delay: Duration,
    /// This worker's REST URL as other workers reach it (`http://host:port`).
    pub url: String,
}

impl DistributedSettings {
    pub fn from_config(config: &WorkerConfig) -> Result<DistributedSettings, super::WorkerError> {
        let bad = |key: &str, value: &str, reason: &str| super::WorkerError::Config {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let raw = &config.raw;
        let get = |k: &str| raw.get(k).map(|v| v.trim().to_owned());
        let ms = |key: &str, default: u64| super::config::millis(raw, key, default);
        let group_id = match config.group_id.as_deref().map(str::trim) {
            Some(g) if !g.is_empty() => g.to_owned(),
            _ => {
                return Err(bad(
                    "group.id",
                    "",
                    "required in distributed mode: the name of the Connect cluster this worker joins (e.g. connect-cluster)",
                ));
            }
        };
        let protocol = match get("connect.protocol") {
            None => ConnectProtocol::Sessioned,
            Some(v) => ConnectProtocol::parse(&v).ok_or_else(|| {
                bad(
                    "connect.protocol",
                    &v,
                    "expected eager, compatible or sessioned",
                )
            })?,
        };
        let session_timeout = ms("session.timeout.ms", 10_000)?;
        let heartbeat_interval = ms("heartbeat.interval.ms", 3_000)?;
        if heartbeat_interval >= session_timeout {
            return Err(bad(
                "heartbeat.interval.ms",
                &heartbeat_interval.as_millis().to_string(),
                "must be less than session.timeout.ms (a third of it is usual)",
            ));
        }
        Ok(DistributedSettings {
            group_id,
            protocol,
            session_timeout,
            heartbeat_interval,
            rebalance_timeout: ms("rebalance.timeout.ms", 60_000)?,
            max_delay: ms("scheduled.rebalance.max.delay.ms", 300_000)?,
            url: format!("http://{}", config.worker_id()),
        })
    }
}

/// What this worker knows of the cluster. Shared by the member loop (writer), the
/// herder and the REST API (readers).
#[derive(Debug)]
pub struct ClusterView {
    /// This worker's REST URL.
    pub url: String,
    state: Mutex<ViewState>,
    rejoin: AtomicBool,
}

#[derive(Debug, Default, Clone)]
struct ViewState {
    assigned: BTreeSet<Item>,
    leader_url: Option<String>,
    leader: bool,
    rebalancing: bool,
    generation: i32,
}

impl ClusterView {
    pub fn new(url: String) -> ClusterView {
        ClusterView {
            url,
            state: Mutex::new(ViewState {
                rebalancing: true,
                ..ViewState::default()
            }),
            rejoin: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ViewState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this worker runs `connector`'s instance (`task: None`) or that task.
    pub fn owns(&self, connector: &str, task: Option<usize>) -> bool {
        let t = task.map_or(protocol::CONNECTOR_TASK, |t| t as i32);
        self.lock().assigned.contains(&(connector.to_owned(), t))
    }

    /// What this worker runs now (its allocation, for the next JoinGroup).
    pub fn assigned(&self) -> BTreeSet<Item> {
        self.lock().assigned.clone()
    }

    /// The leader's REST URL, if known.
    pub fn leader_url(&self) -> Option<String> {
        self.lock().leader_url.clone()
    }

    pub fn is_leader(&self) -> bool {
        let s = self.lock();
        s.leader && !s.rebalancing
    }

    pub fn is_rebalancing(&self) -> bool {
        self.lock().rebalancing
    }

    pub fn generation(&self) -> i32 {
        self.lock().generation
    }

    /// Ask the member loop to rejoin the group (the work to share changed).
    pub fn request_rejoin(&self) {
        self.rejoin.store(true, Ordering::Release);
    }

    fn take_rejoin(&self) -> bool {
        self.rejoin.swap(false, Ordering::AcqRel)
    }

    fn set_rebalancing(&self) {
        self.lock().rebalancing = true;
    }

    /// A completed rebalance: what to run, who leads.
    fn set_assignment(
        &self,
        assigned: BTreeSet<Item>,
        leader_url: String,
        leader: bool,
        generation: i32,
    ) {
        let mut s = self.lock();
        s.assigned = assigned;
        s.leader_url = Some(leader_url);
        s.leader = leader;
        s.generation = generation;
        s.rebalancing = false;
    }

    /// Drop everything (eager rebalance, leaving the group).
    fn clear(&self) {
        let mut s = self.lock();
        s.assigned.clear();
        s.rebalancing = true;
    }
}

/// The `distributed` command.
pub fn run(worker_config: &Path) -> anyhow::Result<()> {
    let began = Instant::now();
    let (config, unknown) = WorkerConfig::load(worker_config)?;
    for key in unknown {
        tracing::warn!(%key, "unknown worker config key ignored");
    }
    crate::process::runtime()?.block_on(async {
        let worker = Distributed::start(config).await?;
        println!(
            "tributary distributed worker started in {} ms (group {}, bootstrap.servers={}, rest {})",
            began.elapsed().as_millis(),
            worker.settings.group_id,
            worker.bootstrap,
            worker.settings.url,
        );
        crate::process::terminated().await?;
        tracing::info!("shutting down: stopping tasks, committing offsets, leaving the group");
        worker.stop().await?;
        tracing::info!("clean shutdown");
        Ok(())
    })
}

/// A distributed worker running in this process.
#[derive(Debug)]
pub struct Distributed {
    pub herder: super::Herder,
    pub settings: DistributedSettings,
    bootstrap: String,
    member: member::MemberHandle,
    ticker: tokio::task::JoinHandle<()>,
    watcher: Option<crate::plugin::watch::PluginWatcher>,
    rest: Option<crate::rest::RunningRest>,
}

impl Distributed {
    pub async fn start(mut config: WorkerConfig) -> anyhow::Result<Distributed> {
        let Cluster::Remote { bootstrap_servers } = config.cluster.clone() else {
            anyhow::bail!(
                "distributed mode needs bootstrap.servers: the Kafka cluster (or `tributary broker`) that holds the internal topics and the group; set it in the worker config"
            );
        };
        if config.connectors_dir.is_some() {
            anyhow::bail!(
                "connectors.dir is a standalone feature: in distributed mode create connectors through the REST API (any worker) instead"
            );
        }
        let rest = RestListener::bind(config.listeners).await?;
        config.listeners = rest.local_addr();
        // What other workers use to reach this one, and its id in status records.
        if let Some(host) = config
            .raw
            .get("rest.advertised.host.name")
            .map(|h| h.trim())
            && !host.is_empty()
        {
            let port = config
                .raw
                .get("rest.advertised.port")
                .and_then(|p| p.trim().parse::<u16>().ok())
                .unwrap_or(config.listeners.port());
            config.advertised = Some(format!("{host}:{port}"));
        }
        let settings = DistributedSettings::from_config(&config)?;
        let (client, cluster_id) =
            super::standalone::connect_remote(&config, &bootstrap_servers).await?;
        let cache = std::env::temp_dir().join("tributary");
        let watcher = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || super::standalone::watch_plugins(&config, &cache))
                .await??
        };
        let plugins = watcher.registry().clone();
        let view = std::sync::Arc::new(ClusterView::new(settings.url.clone()));
        let herder = {
            let config = config.clone();
            let view = view.clone();
            tokio::task::spawn_blocking(move || {
                super::Herder::start_distributed(config, client, plugins, view)
            })
            .await??
        };
        let state = RestState::new(herder.clone(), cluster_id);
        let rest = rest.serve(state.clone());
        let member = member::spawn(herder.clone(), view, settings.clone());
        state.set_ready();
        let ticker = super::standalone::spawn_ticker(herder.clone());
        Ok(Distributed {
            herder,
            settings,
            bootstrap: bootstrap_servers,
            member,
            ticker,
            watcher: Some(watcher),
            rest: Some(rest),
        })
    }

    /// Stop taking REST requests, stop every task (committing), leave the group.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(rest) = self.rest.take() {
            rest.stop().await;
        }
        self.ticker.abort();
        if let Some(w) = self.watcher.take() {
            tokio::task::spawn_blocking(move || w.stop()).await?;
        }
        let h = self.herder.clone();
        tokio::task::spawn_blocking(move || h.shutdown()).await?;
        self.member.stop().await;
        Ok(())
    }
}
