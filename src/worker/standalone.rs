//! `tributary standalone WORKER_CONFIG [CONNECTOR_CONFIG ...]`: in one process, the
//! integrated broker (unless `bootstrap.servers` names a cluster), the plugin registry,
//! the herder, and the REST API on `listeners`; then the given connectors are created
//! (or, if they exist with the same config, left as they are), and the worker runs until
//! SIGTERM or Ctrl-C, when the REST API stops taking requests, every task commits and
//! stops, and the broker flushes.
//!
//! The REST port is bound first, before anything starts (a taken port fails the start at
//! once, and the worker id in status records is the bound address, even for port 0), and
//! answers once the herder runs; `GET /health` says `starting` until the connectors given
//! here are created and the folder of `connectors.dir` (`--connectors-dir`) is applied.
//!
//! With `connectors.dir`, the folder's connector files are applied at start and watched
//! from then on (`worker::deploy`); the watcher stops first on shutdown, before the tasks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use super::Herder;
use super::config::{Cluster, WorkerConfig};
use super::connector_config::parse_connector_json;
use super::deploy::{ConnectorsDir, DeployOptions};
use crate::broker::server::{BrokerSettings, RunningBroker};
use crate::client::Client;
use crate::client::remote::{RemoteClient, RemoteConfig};
use crate::plugin::PluginLoader;
use crate::plugin::watch::PluginWatcher;
use crate::rest::{RestListener, RestState, RunningRest};

/// How long the start waits for the plugins its connector files name to load.
const PLUGIN_SETTLE: std::time::Duration = std::time::Duration::from_secs(3);

/// A standalone worker running in this process.
#[derive(Debug)]
pub struct Standalone {
    pub herder: Herder,
    /// The integrated broker (none when `bootstrap.servers` names a cluster).
    broker: Option<RunningBroker>,
    /// What the startup line names: the broker's listener, or the cluster.
    cluster: String,
    /// Acts on connectors' requests about once a second ([`Herder::tick`]).
    ticker: tokio::task::JoinHandle<()>,
    watcher: Option<PluginWatcher>,
    /// The `connectors.dir` watcher, if the worker has one.
    deploy: Option<ConnectorsDir>,
    rest: Option<RunningRest>,
    rest_addr: std::net::SocketAddr,
}

impl Standalone {
    /// Start the broker, the herder and the REST API; create the connectors of
    /// `connector_files`.
    pub async fn start(
        mut config: WorkerConfig,
        connector_files: &[PathBuf],
    ) -> anyhow::Result<Standalone> {
        let embedded = match &config.cluster {
            Cluster::Embedded { data_dir, listener } => Some((data_dir.clone(), *listener)),
            Cluster::Remote { .. } => None,
        };
        if let Some(dir) = &config.connectors_dir
            && !dir.is_dir()
        {
            anyhow::bail!(
                "connectors.dir {}: not a directory; create the folder, or fix connectors.dir / --connectors-dir",
                dir.display()
            );
        }
        let connectors = connector_files
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading connector config {}", f.display()))?;
                parse_connector_json(&text)
                    .with_context(|| format!("connector config {}", f.display()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let rest = RestListener::bind(config.listeners).await?;
        config.listeners = rest.local_addr();
        let (broker, client, cluster_id, cluster, cache_dir) = match embedded {
            Some((data_dir, listener)) => {
                let mut settings = BrokerSettings::new(&data_dir);
                for key in settings.apply(&config.broker_props)? {
                    tracing::warn!(key = %format!("broker.{key}"), "unknown broker config key ignored");
                }
                match listener {
                    Some(addr) => settings.listen = addr,
                    None => settings.serve = false,
                }
                let broker = RunningBroker::start(settings).await?;
                let client =
                    Client::embedded(broker.broker.clone(), tokio::runtime::Handle::current());
                let id = broker.broker.config.cluster_id.clone();
                let named = broker.addr.to_string();
                (Some(broker), client, id, named, data_dir)
            }
            None => {
                let Cluster::Remote { bootstrap_servers } = config.cluster.clone() else {
                    anyhow::bail!("the worker config names neither a data dir nor a cluster");
                };
                let (client, id) = connect_remote(&config, &bootstrap_servers).await?;
                // Plugin copies are cached on local disk even when the data is remote.
                let cache = std::env::temp_dir().join("tributary");
                (
                    None,
                    client,
                    id,
                    format!("bootstrap.servers={bootstrap_servers}"),
                    cache,
                )
            }
        };
        let watcher = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || watch_plugins(&config, &cache_dir)).await??
        };
        let plugins = watcher.registry().clone();
        // A library that was copied onto plugin.path just before the start is loaded once
        // it has settled (the watcher's debounce): give the classes named here a moment.
        let settle = tokio::time::Instant::now() + PLUGIN_SETTLE;
        let mut classes: Vec<String> = connectors
            .iter()
            .map(|(_, props)| props.get("connector.class").cloned().unwrap_or_default())
            .collect();
        if let Some(dir) = config.connectors_dir.clone() {
            classes.extend(
                tokio::task::spawn_blocking(move || super::deploy::classes_in(&dir)).await?,
            );
        }
        for class in classes {
            while plugins.lookup(&class).is_err() && tokio::time::Instant::now() < settle {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        let herder = {
            let config = config.clone();
            let plugins = plugins.clone();
            tokio::task::spawn_blocking(move || Herder::start(config, client, plugins)).await??
        };
        let state = RestState::new(herder.clone(), cluster_id);
        let rest = rest.serve(state.clone());
        for (name, props) in connectors {
            let h = herder.clone();
            tokio::task::spawn_blocking(move || h.put_connector_config(&name, props)).await??;
        }
        let deploy = match config.connectors_dir.clone() {
            Some(dir) => {
                let h = herder.clone();
                Some(
                    tokio::task::spawn_blocking(move || {
                        ConnectorsDir::start(h, &dir, DeployOptions::default())
                    })
                    .await??,
                )
            }
            None => None,
        };
        state.set_ready();
        let ticker = spawn_ticker(herder.clone());
        Ok(Standalone {
            herder,
            broker,
            cluster,
            ticker,
            watcher: Some(watcher),
            deploy,
            rest_addr: rest.local_addr(),
            rest: Some(rest),
        })
    }

    /// The REST API's address.
    pub fn rest_addr(&self) -> std::net::SocketAddr {
        self.rest_addr
    }

    /// The integrated broker's Kafka listener (none for a remote cluster).
    pub fn broker_addr(&self) -> Option<std::net::SocketAddr> {
        self.broker.as_ref().map(|b| b.addr)
    }

    /// The broker's listener or the cluster's `bootstrap.servers`, for messages.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The `connectors.dir` watcher, if the worker has one.
    pub fn connectors_dir(&self) -> Option<&ConnectorsDir> {
        self.deploy.as_ref()
    }

    /// Stop taking REST requests, then stop every task (committing) and the broker
    /// (flushing).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(rest) = self.rest.take() {
            rest.stop().await;
        }
        self.ticker.abort();
        // No connector is created or deleted from the folder once tasks are stopping.
        if let Some(d) = self.deploy.take() {
            tokio::task::spawn_blocking(move || d.stop()).await?;
        }
        if let Some(w) = self.watcher.take() {
            tokio::task::spawn_blocking(move || w.stop()).await?;
        }
        let h = self.herder.clone();
        tokio::task::spawn_blocking(move || h.shutdown()).await?;
        if let Some(broker) = self.broker.take() {
            broker.stop().await?;
        }
        Ok(())
    }
}

/// Connect the worker's client to the cluster of `bootstrap.servers`; the worker's
/// `producer.*` keys (acks, enable.idempotence, timeouts) set the one client every task
/// shares. Answers the client and the cluster's id.
pub(super) async fn connect_remote(
    config: &WorkerConfig,
    bootstrap_servers: &str,
) -> anyhow::Result<(Client, String)> {
    let handle = tokio::runtime::Handle::current();
    let mut props = config.producer.clone();
    props.insert("bootstrap.servers".into(), bootstrap_servers.to_owned());
    let remote = tokio::task::spawn_blocking(move || {
        let settings = RemoteConfig::from_props(&props)?;
        RemoteClient::connect_on(settings, handle).map_err(anyhow::Error::from)
    })
    .await?
    .with_context(|| format!("connecting to bootstrap.servers={bootstrap_servers}"))?;
    let id = remote.cluster_id().unwrap_or_default();
    Ok((Client::remote(remote), id))
}

/// Call [`Herder::tick`] about once a second, on a blocking thread.
pub(super) fn spawn_ticker(herder: Herder) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            every.tick().await;
            let h = herder.clone();
            if tokio::task::spawn_blocking(move || h.tick()).await.is_err() {
                return;
            }
        }
    })
}

/// Load what is on `plugin.path` (or the default: the directory of this executable) and
/// keep watching it: a library copied in while the worker runs becomes available.
pub(super) fn watch_plugins(
    config: &WorkerConfig,
    data_dir: &Path,
) -> anyhow::Result<PluginWatcher> {
    let path = match &config.plugin_path {
        Some(p) => p.clone(),
        None => vec![
            crate::plugin::registry::default_plugin_path()
                .context("finding the default plugin.path")?,
        ],
    };
    let loader = Arc::new(PluginLoader::new(data_dir.join(".plugin-cache")));
    let watcher = PluginWatcher::start(loader, &path).context("watching plugin.path")?;
    let registry = watcher.registry().snapshot();
    for issue in registry.issues() {
        tracing::warn!("plugin.path: {issue}");
    }
    let names: Vec<String> = registry.connectors().map(|c| c.name().to_owned()).collect();
    tracing::info!(plugin_path = ?path, connectors = ?names, "connector plugins");
    Ok(watcher)
}

/// The `standalone` command; `connectors_dir` (`--connectors-dir`) overrides the worker
/// config's `connectors.dir`.
pub fn run(
    worker_config: &Path,
    connector_files: &[PathBuf],
    connectors_dir: Option<&Path>,
) -> anyhow::Result<()> {
    let began = Instant::now();
    let (mut config, unknown) = WorkerConfig::load(worker_config)?;
    if let Some(dir) = connectors_dir {
        config.connectors_dir = Some(dir.to_path_buf());
    }
    for key in unknown {
        tracing::warn!(%key, "unknown worker config key ignored");
    }
    crate::process::runtime()?.block_on(async {
        let worker = Standalone::start(config, connector_files).await?;
        println!(
            "tributary standalone worker started in {} ms (broker {}, rest http://{})",
            began.elapsed().as_millis(),
            worker.cluster(),
            worker.rest_addr()
        );
        crate::process::terminated().await?;
        tracing::info!("shutting down: stopping tasks, committing offsets, flushing the log");
        worker.stop().await?;
        tracing::info!("clean shutdown");
        Ok(())
    })
}
