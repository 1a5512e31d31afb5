//! The Kafka wire protocol listener of the integrated broker.
//!
//! Owns: the TCP listener, one task per connection reading frames and answering them in
//! order (Kafka's model: a connection has one request in flight at the broker), and the
//! [`Broker`] state the handlers share: the topic store, the group coordinator, producer
//! ids and sequence states, and the append notifications that wake long-polling fetches.
//!
//! Blocking work (appends that may `fdatasync`, segment reads, topic creation) runs on
//! `spawn_blocking`, never on an async worker. Decoding is [`crate::protocol`]'s job;
//! what the requests mean lives in `handlers`.

mod groups;
mod handlers;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::group::GroupCoordinator;
use super::producer::{ProducerIds, ProducerStates};
use super::{BrokerError, TopicStore};
use crate::protocol::ProtocolError;
use crate::protocol::codec::{self, Limits};

/// Listener settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The host and port clients are told to connect to (Kafka's `advertised.listeners`).
    pub advertised_host: String,
    pub advertised_port: u16,
    /// `auto.create.topics.enable`
    pub auto_create_topics: bool,
    /// `socket.request.max.bytes`
    pub max_request_bytes: usize,
    /// The cluster id reported in Metadata.
    pub cluster_id: String,
}

/// The broker node id: a single node is always 0.
pub const NODE_ID: i32 = 0;

/// Everything the request handlers share.
#[derive(Debug)]
pub struct Broker {
    pub store: Arc<TopicStore>,
    pub groups: GroupCoordinator,
    pub config: ServerConfig,
    producer_ids: ProducerIds,
    producer_states: Mutex<HashMap<(String, i32), Arc<Mutex<ProducerStates>>>>,
    /// Bumped after every append; long-polling fetches wait for a change.
    appended: watch::Sender<u64>,
}

impl Broker {
    pub fn new(
        store: Arc<TopicStore>,
        groups: GroupCoordinator,
        config: ServerConfig,
    ) -> Result<Broker, BrokerError> {
        let producer_ids = ProducerIds::open(&store.config().data_dir)?;
        Ok(Broker {
            store,
            groups,
            config,
            producer_ids,
            producer_states: Mutex::new(HashMap::new()),
            appended: watch::channel(0).0,
        })
    }

    fn producer_states(&self, topic: &str, partition: i32) -> Arc<Mutex<ProducerStates>> {
        let mut map = self
            .producer_states
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry((topic.to_string(), partition))
            .or_default()
            .clone()
    }

    /// Wake long-polling fetches (remote and in-process) after an append.
    pub fn notify_appended(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes after every append, for in-process long polls.
    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }
}

/// Accept connections until `shutdown` is cancelled, then stop accepting, cancel the
/// connections and wait for them.
pub async fn run(broker: Arc<Broker>, listener: TcpListener, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((socket, peer)) => {
                let _ = socket.set_nodelay(true);
                let broker = broker.clone();
                let token = shutdown.child_token();
                tracker.spawn(async move {
                    tokio::select! {
                        _ = token.cancelled() => {}
                        r = serve_connection(broker, socket, peer) => {
                            if let Err(e) = r {
                                tracing::debug!(%peer, error = %e, "connection closed");
                            }
                        }
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    tracker.close();
    tracker.wait().await;
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
}

async fn serve_connection(
    broker: Arc<Broker>,
    mut socket: TcpStream,
    peer: SocketAddr,
) -> Result<(), ConnectionError> {
    let limits = Limits {
        max_frame_bytes: broker.config.max_request_bytes,
    };
    let host = peer.ip().to_string();
    let (mut reader, mut writer) = socket.split();
    loop {
        let mut prefix = [0u8; 4];
        match reader.read_exact(&mut prefix).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let len = match codec::frame_length(prefix, &limits) {
            Ok(len) => len,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection: bad frame length (socket.request.max.bytes)");
                return Err(e.into());
            }
        };
        // Read into spare capacity: no zero-fill of up to socket.request.max.bytes per request.
        let mut frame = BytesMut::with_capacity(len);
        let mut limited = (&mut reader).take(len as u64);
        while frame.len() < len {
            if limited.read_buf(&mut frame).await? == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
        }
        let request = match codec::decode_request(frame.freeze(), &codec::supported_versions) {
            Ok(r) => r,
            Err(e) => match handlers::error_response(&e) {
                Some(bytes) => {
                    tracing::info!(%peer, error = %e, "refusing request");
                    writer.write_all(&bytes).await?;
                    continue;
                }
                None => {
                    tracing::warn!(%peer, error = %e, "closing connection: undecodable request");
                    return Err(e.into());
                }
            },
        };
        if let Some(bytes) = handlers::handle(&broker, request, &host).await? {
            writer.write_all(&bytes).await?;
        }
    }
}

/// Every setting of a broker process: storage, groups, and the listener.
#[derive(Clone, Debug)]
pub struct BrokerSettings {
    pub storage: super::BrokerConfig,
    pub groups: super::group::GroupConfig,
    /// `listeners`: where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// False for a broker used only in-process (a standalone worker with
    /// `broker.listener=none`): nothing is bound, `RunningBroker::addr` is `listen`.
    pub serve: bool,
    /// `advertised.listeners`: what clients are told; defaults to the bound address.
    pub advertised: Option<(String, u16)>,
    pub auto_create_topics: bool,
    pub max_request_bytes: usize,
}

impl BrokerSettings {
    pub fn new(data_dir: impl Into<std::path::PathBuf>) -> Self {
        BrokerSettings {
            storage: super::BrokerConfig::new(data_dir),
            groups: super::group::GroupConfig::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            serve: true,
            advertised: None,
            auto_create_topics: true,
            max_request_bytes: Limits::DEFAULT_MAX_FRAME_BYTES,
        }
    }

    /// Apply Kafka broker keys; returns the keys no layer knows.
    pub fn apply(
        &mut self,
        props: &std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<String>, BrokerError> {
        let rest = self.storage.apply(props)?;
        let rest: std::collections::BTreeMap<String, String> = rest
            .into_iter()
            .filter_map(|k| props.get(&k).map(|v| (k, v.clone())))
            .collect();
        let rest = self
            .groups
            .apply(&rest)
            .map_err(|e| BrokerError::InvalidConfig {
                key: "group".into(),
                value: String::new(),
                reason: e.to_string(),
            })?;
        let mut unknown = Vec::new();
        for key in rest {
            let value = props.get(&key).cloned().unwrap_or_default();
            let bad = |reason: &str| BrokerError::InvalidConfig {
                key: key.clone(),
                value: value.clone(),
                reason: reason.to_string(),
            };
            match key.as_str() {
                "listeners" => self.listen = parse_listener(&value).map_err(|r| bad(&r))?,
                "advertised.listeners" => {
                    let addr = value.split(',').next().unwrap_or_default().trim();
                    let addr = addr.split_once("://").map_or(addr, |(_, a)| a);
                    let (host, port) = addr
                        .rsplit_once(':')
                        .ok_or_else(|| bad("expected PLAINTEXT://host:port"))?;
                    let port = port.parse().map_err(|_| bad("expected a port number"))?;
                    self.advertised = Some((host.to_string(), port));
                }
                "auto.create.topics.enable" => {
                    self.auto_create_topics = value
                        .trim()
                        .parse()
                        .map_err(|_| bad("expected true or false"))?
                }
                "socket.request.max.bytes" => {
                    self.max_request_bytes = value
                        .trim()
                        .parse()
                        .map_err(|_| bad("expected a number of bytes"))?
                }
                _ => unknown.push(key),
            }
        }
        Ok(unknown)
    }
}

/// `PLAINTEXT://127.0.0.1:9092`, `127.0.0.1:9092` or `localhost:9092`.
pub fn parse_listener(value: &str) -> Result<SocketAddr, String> {
    let first = value.split(',').next().unwrap_or_default().trim();
    let addr = first.split_once("://").map_or(first, |(_, a)| a);
    let addr = addr.replace("localhost", "127.0.0.1");
    let addr = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr
    };
    addr.parse()
        .map_err(|_| format!("expected host:port (an IP address, localhost, or PLAINTEXT://host:port), found {value:?}"))
}

/// A broker running in this process.
#[derive(Debug)]
pub struct RunningBroker {
    pub addr: SocketAddr,
    pub broker: Arc<Broker>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<()>,
    maintenance: Option<super::topics::Maintenance>,
}

impl RunningBroker {
    /// Open the data directory, recover it, start the group coordinator and
    /// maintenance, bind the listener and start serving.
    pub async fn start(settings: BrokerSettings) -> Result<RunningBroker, BrokerError> {
        let storage = settings.storage.clone();
        let store = Arc::new(
            tokio::task::spawn_blocking(move || TopicStore::open(storage))
                .await
                .map_err(|e| BrokerError::io("data directory", std::io::Error::other(e)))??,
        );
        let maintenance = store.start_maintenance();
        let groups = GroupCoordinator::new(store.clone(), settings.groups.clone())
            .await
            .map_err(|e| BrokerError::InvalidConfig {
                key: "group coordinator".into(),
                value: String::new(),
                reason: e.to_string(),
            })?;
        let listener = if settings.serve {
            Some(
                TcpListener::bind(settings.listen)
                    .await
                    .map_err(|e| BrokerError::io(format!("listener {}", settings.listen), e))?,
            )
        } else {
            None
        };
        let addr = match &listener {
            Some(l) => l.local_addr().map_err(|e| BrokerError::io("listener", e))?,
            None => settings.listen,
        };
        let (advertised_host, advertised_port) = settings.advertised.clone().unwrap_or_else(|| {
            let host = if addr.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                addr.ip().to_string()
            };
            (host, addr.port())
        });
        let config = ServerConfig {
            advertised_host,
            advertised_port,
            auto_create_topics: settings.auto_create_topics,
            max_request_bytes: settings.max_request_bytes,
            cluster_id: cluster_id(&store),
        };
        let broker = Arc::new(Broker::new(store, groups, config)?);
        let shutdown = CancellationToken::new();
        let server = match listener {
            Some(listener) => {
                tracing::info!(%addr, "broker listening");
                tokio::spawn(run(broker.clone(), listener, shutdown.clone()))
            }
            None => {
                tracing::info!("broker serving in-process clients only (no listener)");
                tokio::spawn(async {})
            }
        };
        Ok(RunningBroker {
            addr,
            broker,
            shutdown,
            server,
            maintenance: Some(maintenance),
        })
    }

    /// Stop accepting, close connections, stop the coordinator and maintenance, then
    /// flush and close every partition.
    pub async fn stop(mut self) -> Result<(), BrokerError> {
        self.shutdown.cancel();
        let _ = (&mut self.server).await;
        self.broker.groups.shutdown().await;
        let maintenance = self.maintenance.take();
        let store = self.broker.store.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(m) = maintenance {
                m.stop();
            }
            store.close()
        })
        .await
        .map_err(|e| BrokerError::io("shutdown", std::io::Error::other(e)))?
    }
}

/// A stable cluster id for this data directory: derived from the directory's lock-file
/// path is not stable across moves, so use a fixed, recognizable value per data dir.
fn cluster_id(store: &TopicStore) -> String {
    let path = store.config().data_dir.join("meta.properties");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(props) = crate::properties::parse_properties(&text)
        && let Some(id) = props.get("cluster.id")
    {
        return id.clone();
    }
    let id = super::topics::new_topic_id();
    let _ = std::fs::write(&path, format!("version=1\ncluster.id={id}\nnode.id=0\n"));
    id
}
