//! The worker's config: Kafka Connect's worker keys (`connect-standalone.properties`),
//! plus `broker.*` for the integrated broker. Unknown keys are warned about; bad values
//! are refused naming the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::WorkerError;

/// Where the worker's topics live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cluster {
    /// The integrated broker in this process: its data directory and its Kafka listener
    /// for outside clients (`None`: in-process only, `broker.listener=none`).
    Embedded {
        data_dir: PathBuf,
        listener: Option<SocketAddr>,
    },
    /// A Kafka cluster (`bootstrap.servers`).
    Remote { bootstrap_servers: String },
}

/// A parsed worker config.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub cluster: Cluster,
    /// Every other `broker.*` key, passed to the integrated broker without the prefix
    /// (e.g. `broker.log.flush.interval.ms`).
    pub broker_props: BTreeMap<String, String>,
    pub plugin_path: Option<Vec<PathBuf>>,
    pub listeners: SocketAddr,
    pub offset_flush_interval: Duration,
    pub offset_flush_timeout: Duration,
    pub task_shutdown_timeout: Duration,
    pub config_topic: String,
    pub offset_topic: String,
    pub status_topic: String,
    pub offset_partitions: i32,
    pub status_partitions: i32,
    pub group_id: Option<String>,
    /// `key.converter`, `value.converter`, `header.converter` with their sub-configs
    /// (`key.converter.schemas.enable` ...), prefixes kept.
    pub converters: BTreeMap<String, String>,
    /// `producer.*` and `consumer.*`, prefixes stripped.
    pub producer: BTreeMap<String, String>,
    pub consumer: BTreeMap<String, String>,
    /// `config.providers` and their `config.providers.NAME.*` settings.
    pub config_providers: BTreeMap<String, String>,
    /// Automatic restart of failed tasks: first delay, cap, and whether it is on.
    pub restart_backoff_initial: Duration,
    pub restart_backoff_max: Duration,
    pub restart_enabled: bool,
    /// `connectors.dir`: a folder of connector configs (`*.json`, one connector each)
    /// that the worker creates, updates and deletes connectors from as files come, change
    /// and go (see `worker::deploy`). Not set: no folder is watched. Relative paths are
    /// relative to the worker's working directory; the folder must exist at start.
    pub connectors_dir: Option<PathBuf>,
    /// Every key as given, for anything that wants the raw view.
    pub raw: BTreeMap<String, String>,
    /// `rest.advertised.host.name:rest.advertised.port`, when distributed mode set it:
    /// the worker id and the URL other workers use.
    pub advertised: Option<String>,
}

/// Keys the worker reads itself.
const KNOWN: &[&str] = &[
    "bootstrap.servers",
    "broker.data.dir",
    "broker.listener",
    "plugin.path",
    "listeners",
    "offset.flush.interval.ms",
    "offset.flush.timeout.ms",
    "task.shutdown.graceful.timeout.ms",
    "config.storage.topic",
    "offset.storage.topic",
    "status.storage.topic",
    "offset.storage.partitions",
    "status.storage.partitions",
    "config.storage.replication.factor",
    "offset.storage.replication.factor",
    "status.storage.replication.factor",
    "group.id",
    "key.converter",
    "value.converter",
    "header.converter",
    "config.providers",
    "task.restart.backoff.initial.ms",
    "task.restart.backoff.max.ms",
    "task.restart.enable",
    // Read by worker::topics (KIP-558).
    "topic.tracking.enable",
    "topic.tracking.allow.reset",
    "connectors.dir",
    // Distributed mode (worker::distributed).
    "rest.advertised.host.name",
    "rest.advertised.port",
    "connect.protocol",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "rebalance.timeout.ms",
    "scheduled.rebalance.max.delay.ms",
    // Accepted for compatibility; they have no effect here.
    "offset.storage.file.filename",
    "plugin.discovery",
    "topic.creation.enable",
    "connector.client.config.override.policy",
];

/// Prefixes whose keys belong to someone else.
const KNOWN_PREFIXES: &[&str] = &[
    "broker.",
    "producer.",
    "consumer.",
    "admin.",
    "key.converter.",
    "value.converter.",
    "header.converter.",
    "config.providers.",
    "config.storage.",
    "offset.storage.",
    "status.storage.",
];

impl WorkerConfig {
    /// Parse `props`; answers the config and the keys nobody knows (to warn about).
    pub fn from_props(
        props: &BTreeMap<String, String>,
    ) -> Result<(WorkerConfig, Vec<String>), WorkerError> {
        let bad = |key: &str, value: &str, reason: &str| WorkerError::Config {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let get = |key: &str| props.get(key).map(|v| v.trim().to_owned());
        let ms = |key: &str, default: u64| millis(props, key, default);
        let int = |key: &str, default: i32| -> Result<i32, WorkerError> {
            match get(key) {
                None => Ok(default),
                Some(v) => match v.parse::<i32>() {
                    Ok(n) if n == -1 || n >= 1 => Ok(n),
                    _ => Err(bad(key, &v, "expected a partition count >= 1 (or -1)")),
                },
            }
        };
        let cluster = match get("bootstrap.servers") {
            Some(servers) if !servers.is_empty() => Cluster::Remote {
                bootstrap_servers: servers,
            },
            _ => {
                let data_dir =
                    PathBuf::from(get("broker.data.dir").unwrap_or_else(|| "./data".into()));
                let listener = match get("broker.listener").as_deref() {
                    None => Some(SocketAddr::from(([127, 0, 0, 1], 9092))),
                    Some("none") | Some("") => None,
                    Some(v) => Some(crate::broker::server::parse_listener(v).map_err(|r| {
                        bad(
                            "broker.listener",
                            v,
                            &format!("{r}; or none to serve in-process clients only"),
                        )
                    })?),
                };
                Cluster::Embedded { data_dir, listener }
            }
        };
        let listeners = match get("listeners") {
            None => SocketAddr::from(([127, 0, 0, 1], 8083)),
            Some(v) => parse_http_listener(&v).map_err(|r| bad("listeners", &v, &r))?,
        };
        let plugin_path = get("plugin.path").map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect()
        });
        let restart_enabled = match get("task.restart.enable").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(v) => return Err(bad("task.restart.enable", v, "expected true or false")),
        };
        let connectors_dir = match get("connectors.dir") {
            None => None,
            Some(v) if v.is_empty() => {
                return Err(bad(
                    "connectors.dir",
                    &v,
                    "expected the path of a folder of connector configs (*.json); remove the key to watch no folder",
                ));
            }
            Some(v) => Some(PathBuf::from(v)),
        };
        let with_prefix = |prefix: &str, strip: bool| -> BTreeMap<String, String> {
            props
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| {
                    let k = if strip {
                        &k[prefix.len()..]
                    } else {
                        k.as_str()
                    };
                    (k.to_owned(), v.clone())
                })
                .collect()
        };
        let mut converters = BTreeMap::new();
        for p in ["key.converter", "value.converter", "header.converter"] {
            converters.extend(
                props
                    .iter()
                    .filter(|(k, _)| *k == p || k.starts_with(&format!("{p}.")))
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
        }
        let mut broker_props = with_prefix("broker.", true);
        broker_props.remove("data.dir");
        broker_props.remove("listener");
        let config = WorkerConfig {
            cluster,
            broker_props,
            plugin_path,
            listeners,
            offset_flush_interval: ms("offset.flush.interval.ms", 60_000)?,
            offset_flush_timeout: ms("offset.flush.timeout.ms", 5_000)?,
            task_shutdown_timeout: ms("task.shutdown.graceful.timeout.ms", 5_000)?,
            config_topic: get("config.storage.topic").unwrap_or_else(|| "connect-configs".into()),
            offset_topic: get("offset.storage.topic").unwrap_or_else(|| "connect-offsets".into()),
            status_topic: get("status.storage.topic").unwrap_or_else(|| "connect-status".into()),
            offset_partitions: int("offset.storage.partitions", 25)?,
            status_partitions: int("status.storage.partitions", 5)?,
            group_id: get("group.id"),
            converters,
            producer: with_prefix("producer.", true),
            consumer: with_prefix("consumer.", true),
            config_providers: with_prefix("config.providers", false),
            restart_backoff_initial: ms("task.restart.backoff.initial.ms", 1_000)?,
            restart_backoff_max: ms("task.restart.backoff.max.ms", 60_000)?,
            restart_enabled,
            connectors_dir,
            raw: props.clone(),
            advertised: None,
        };
        for key in ["key.converter", "value.converter"] {
            if !config.converters.contains_key(key) {
                return Err(bad(
                    key,
                    "",
                    "required (as in Kafka Connect), e.g. org.apache.kafka.connect.json.JsonConverter",
                ));
            }
        }
        let unknown = props
            .keys()
            .filter(|k| {
                !KNOWN.contains(&k.as_str()) && !KNOWN_PREFIXES.iter().any(|p| k.starts_with(p))
            })
            .cloned()
            .collect();
        Ok((config, unknown))
    }

    /// Read a `.properties` file.
    pub fn load(path: &std::path::Path) -> Result<(WorkerConfig, Vec<String>), WorkerError> {
        let text = std::fs::read_to_string(path).map_err(|e| WorkerError::Io {
            what: format!("worker config {}", path.display()),
            error: e,
        })?;
        let props =
            crate::properties::parse_properties(&text).map_err(|reason| WorkerError::Config {
                key: path.display().to_string(),
                value: String::new(),
                reason,
            })?;
        WorkerConfig::from_props(&props)
    }

    /// The worker's id in status records: its REST host:port, as Kafka Connect uses.
    pub fn worker_id(&self) -> String {
        if let Some(a) = &self.advertised {
            return a.clone();
        }
        self.listeners.to_string()
    }
}

/// A milliseconds key of a worker config, `default` when absent.
pub(crate) fn millis(
    props: &BTreeMap<String, String>,
    key: &str,
    default: u64,
) -> Result<Duration, WorkerError> {
    match props.get(key).map(|v| v.trim()) {
        None => Ok(Duration::from_millis(default)),
        Some(v) => v
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| WorkerError::Config {
                key: key.to_owned(),
                value: v.to_owned(),
                reason: "expected a number of milliseconds".to_owned(),
            }),
    }
}

/// `http://host:port` (the first of a list); `http://:8083` means all interfaces.
fn parse_http_listener(value: &str) -> Result<SocketAddr, String> {
    let first = value.split(',').next().unwrap_or_default().trim();
    let Some(addr) = first.strip_prefix("http://") else {
        return Err(format!(
            "expected http://host:port (https is not supported), found {first:?}"
        ));
    };
    let addr = addr.trim_end_matches('/');
    let addr = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.replace("localhost", "127.0.0.1")
    };
    addr.parse().map_err(|_| {
        format!("expected http://host:port with an IP address or localhost, found {first:?}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_unknown_keys() {
        let (c, unknown) = WorkerConfig::from_props(&props(&[
            (
                "key.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("value.converter", "StringConverter"),
            ("value.converter.schemas.enable", "false"),
            ("offset.flush.interval.ms", "10000"),
            ("broker.log.flush.interval.ms", "5"),
            ("producer.compression.type", "lz4"),
            ("bogus.key", "1"),
        ]))
        .unwrap();
        assert_eq!(unknown, vec!["bogus.key".to_string()]);
        assert_eq!(
            c.cluster,
            Cluster::Embedded {
                data_dir: "./data".into(),
                listener: Some("127.0.0.1:9092".parse().unwrap())
            }
        );
        assert_eq!(c.listeners, "127.0.0.1:8083".parse().unwrap());
        assert_eq!(c.offset_flush_interval, Duration::from_secs(10));
        assert_eq!(c.broker_props["log.flush.interval.ms"], "5");
        assert_eq!(c.producer["compression.type"], "lz4");
        assert_eq!(c.converters.len(), 3);
        assert_eq!(c.config_topic, "connect-configs");
    }

    #[test]
    fn bad_values_name_the_key() {
        let base = [("key.converter", "Json"), ("value.converter", "Json")];
        let with = |k: &str, v: &str| {
            let mut p = props(&base);
            p.insert(k.into(), v.into());
            WorkerConfig::from_props(&p).unwrap_err().to_string()
        };
        assert!(with("offset.flush.interval.ms", "soon").contains("offset.flush.interval.ms"));
        assert!(with("listeners", "https://x:1").contains("listeners"));
        assert!(with("broker.listener", "nowhere").contains("broker.listener"));
        assert!(with("connectors.dir", " ").contains("connectors.dir"));
        let (c, unknown) = WorkerConfig::from_props(&{
            let mut p = props(&base);
            p.insert("connectors.dir".into(), "deploy/connectors".into());
            p
        })
        .unwrap();
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(c.connectors_dir, Some(PathBuf::from("deploy/connectors")));
        let err = WorkerConfig::from_props(&props(&[("key.converter", "Json")])).unwrap_err();
        assert!(err.to_string().contains("value.converter"), "{err}");
        let (c, _) = WorkerConfig::from_props(&{
            let mut p = props(&base);
            p.insert("broker.listener".into(), "none".into());
            p
        })
        .unwrap();
        assert!(matches!(
            c.cluster,
            Cluster::Embedded { listener: None, .. }
        ));
    }
}

#[cfg(test)]
mod example_configs {
    use std::path::Path;

    /// The quickstart configs in configs/ load as they are.
    #[test]
    fn quickstart_configs_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let (config, unknown) =
            super::WorkerConfig::load(&dir.join("connect-standalone.properties")).unwrap();
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(config.offset_flush_interval.as_millis(), 10_000);
        for (file, class) in [
            ("connect-file-source.json", "FileStreamSource"),
            ("connect-file-sink.json", "FileStreamSink"),
        ] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let (_, props) = crate::worker::connector_config::parse_connector_json(&text).unwrap();
            assert_eq!(props["connector.class"], class);
        }
    }
}
