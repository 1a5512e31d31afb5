//! The worker: connectors and tasks, converters, offsets and status, on top of a client
//! of the broker.
//!
//! - [`config`]: the worker config (Kafka Connect's keys, `broker.*` for the integrated
//!   broker).
//! - [`connector_config`]: a connector's JSON config and the keys the worker reads from
//!   it (`connector.class`, `tasks.max`, `topics`, converters, `errors.*`).
//! - [`store`]: the three internal compacted topics, the only store of state.
//! - [`convert`]: converters between the Kafka Connect data model and bytes.
//! - [`task`]: the source and sink task loops, each on its own thread, supervised with
//!   automatic restarts.
//! - [`herder`]: [`Herder`], which turns connector configs into running connectors and
//!   tasks and answers for their state (create, reconfigure, pause, resume, stop,
//!   restart, delete).
//! - [`hosts`]: the worker's side of the plugin contexts (offset reader, reconfiguration
//!   requests, sink pause/resume/rewind).
//! - [`providers`]: `${provider:path:key}` placeholders resolved at start.
//! - [`transform`]: Kafka Connect's single message transforms and predicates, built once
//!   per task from `transforms.*` / `predicates.*` and applied to every record.
//! - [`deploy`]: deploy by folder, `connectors.dir`: connector files created, changed
//!   and removed become connectors created, updated and deleted.
//! - [`topics`]: KIP-558's active topics, recorded once per topic per task.
//! - [`distributed`]: `tributary distributed`, workers sharing connectors and tasks
//!   through a Kafka cluster's group protocol and internal topics.
//! - [`standalone`]: `tributary standalone`, one process with the integrated broker (or
//!   none, on a cluster named by `bootstrap.servers`).
//!
//! What this module must not know: how the log stores bytes or how the Kafka protocol
//! frames them; it reaches topics only through [`crate::client`].

pub mod config;
pub mod connector_config;
pub mod convert;
pub mod deploy;
pub mod distributed;
pub mod herder;
pub mod hosts;
pub(crate) mod local;
pub mod providers;
pub mod standalone;
pub mod store;
pub mod task;
pub mod topics;
pub mod transform;

pub use config::{Cluster, WorkerConfig};
pub use herder::Herder;

/// What went wrong in the worker.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("invalid worker config {key}={value:?}: {reason}")]
    Config {
        key: String,
        value: String,
        reason: String,
    },
    #[error("connector {connector}: invalid config {key}: {reason}")]
    ConnectorConfig {
        connector: String,
        key: String,
        reason: String,
    },
    #[error("connector {0} not found; `GET /connectors` lists the connectors")]
    UnknownConnector(String),
    #[error("connector {0} already exists; update its config with PUT /connectors/{0}/config")]
    ConnectorExists(String),
    #[error("task {1} of connector {0} not found")]
    UnknownTask(String, usize),
    /// A request the worker refuses as it stands (HTTP 400), e.g. altering the offsets
    /// of a connector that is not stopped; the message says what to do.
    #[error("{0}")]
    Refused(String),
    /// A request a worker setting forbids (HTTP 403), e.g. `topic.tracking.enable=false`.
    #[error("{0}")]
    Forbidden(String),
    #[error("internal topic {topic}: {reason}")]
    InternalTopic { topic: String, reason: String },
    // The cause is part of the message rather than a `#[source]`, so that printing the
    // error chain does not repeat it.
    #[error("{what}: {error}")]
    Io { what: String, error: std::io::Error },
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    #[error(transparent)]
    Plugin(#[from] crate::plugin::PluginError),
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
}
