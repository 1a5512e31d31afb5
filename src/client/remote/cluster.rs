//! The async core of the remote client: connections per broker, cluster metadata and
//! leader routing, retries within deadlines, and each Kafka api as an `async fn`.
//!
//! - **Connections.** Per broker address, one shared connection for short requests
//!   (metadata, produce, list offsets, heartbeats, commits) and a pool of exclusive ones
//!   leased for requests the broker may hold (Fetch with a max wait, JoinGroup,
//!   SyncGroup): a broker answers a connection's requests in order, so a long poll on the
//!   shared connection would stall everything behind it, and two group members on one
//!   connection would wait for each other's JoinGroup. Failed connects back off
//!   exponentially (`reconnect.backoff.ms` to `reconnect.backoff.max.ms`).
//! - **Metadata.** Brokers, controller, and per topic the leader of each partition;
//!   refreshed when missing and whenever an error says it may be stale
//!   (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, a lost connection, ...).
//! - **Retries.** Every operation has a deadline; retriable failures are retried with
//!   exponential backoff (`retry.backoff.ms` to `retry.backoff.max.ms`) until it passes.
//! - **Idempotence.** One producer id and epoch (InitProducerId) per client; per
//!   partition the next sequence number, advanced only when a batch is acknowledged, so a
//!   retried batch carries the same sequence and the broker drops a duplicate. A broker
//!   that lost the producer's state (OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID)
//!   gets a bumped epoch (KIP-360) and sequences from 0.
//!
//! Nothing here blocks a thread: the blocking facade is [`super::RemoteClient`].

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, DeleteGroupsRequest, DescribeConfigsRequest,
    DescribeGroupsRequest, FetchRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest,
    InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest, ListOffsetsRequest,
    MetadataRequest, OffsetCommitRequest, OffsetFetchRequest, ProduceRequest, ProducerId,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use super::RemoteConfig;
use super::conn::{Conn, ConnConfig};
use super::error::{RemoteError, code_name, retriable, stale, with_message};
use crate::broker::group;
use crate::client::{ClientError, ConsumerRecord, Fetched};
use crate::log::OffsetSpec;
use crate::log::batch;

/// Run `$body` (an attempt, which may use `?` and `return`) until it succeeds, fails
/// for good, or `$deadline` passes, backing off between attempts. A macro rather than a
/// function taking an async closure, so the futures stay `Send`.
macro_rules! retrying {
    ($cluster:expr, $what:expr, $deadline:expr, $body:block) => {{
        let cluster = $cluster;
        let deadline = $deadline;
        let mut delay = cluster.config.retry_backoff;
        loop {
            let result: Result<_, ClientError> = async { $body }.await;
            match cluster
                .retry_verdict(result, $what, deadline, &mut delay)
                .await
            {
                ControlFlow::Break(r) => break r,
                ControlFlow::Continue(()) => {}
            }
        }
    }};
}

/// Decompressed batches larger than this are refused (as the broker refuses them).
const MAX_UNCOMPRESSED: usize = 64 << 20;
/// Exclusive connections kept idle per broker.
const MAX_IDLE: usize = 8;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn topic_name(v: &str) -> TopicName {
    TopicName(s(v))
}

/// How a fetch waits and how much it reads.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// `fetch.max.wait.ms`: how long the broker may hold the request for `min_bytes`.
    pub max_wait: Duration,
    /// `fetch.min.bytes`.
    pub min_bytes: i32,
    /// `fetch.max.bytes`: across partitions (at least one batch is returned anyway).
    pub max_bytes: i32,
    /// `max.partition.fetch.bytes`.
    pub partition_max_bytes: i32,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 50 << 20,
            partition_max_bytes: 1 << 20,
        }
    }
}

/// One config of a topic as DescribeConfigs reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicConfig {
    pub name: String,
    pub value: Option<String>,
    /// Kafka's config source: 1 a topic override, 4/5 broker or default values.
    pub source: i8,
    pub read_only: bool,
    pub sensitive: bool,
}

#[derive(Debug)]
struct TopicMeta {
    error: i16,
    /// Leader node id per partition (-1: none).
    leaders: Vec<i32>,
    /// When the cluster said so: older than `metadata.max.age.ms` is asked again.
    at: Instant,
}

#[derive(Debug, Default)]
struct Meta {
    brokers: HashMap<i32, String>,
    controller: i32,
    /// The cluster's id, from the last Metadata answer that had one.
    cluster_id: Option<String>,
    topics: HashMap<String, TopicMeta>,
    /// Whether a Metadata answer was ever received.
    known: bool,
}

#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    next_attempt: Option<Instant>,
    last_error: String,
}

/// The connections to one broker address.
#[derive(Debug)]
struct Pool {
    shared: Mutex<Option<Arc<Conn>>>,
    idle: Mutex<Vec<Arc<Conn>>>,
    /// Serializes connecting, and holds the backoff between failed attempts.
    connecting: tokio::sync::Mutex<Backoff>,
}

/// An exclusive connection, returned to its pool by [`Lease::done`] once its request is
/// answered; dropped mid-request (a cancelled call), it is closed instead.
#[derive(Debug)]
struct Lease {
    conn: Arc<Conn>,
    pool: Arc<Pool>,
}

impl Lease {
    fn done(self) {
        if self.conn.is_open() {
            let mut idle = lock(&self.pool.idle);
            if idle.len() < MAX_IDLE {
                idle.push(self.conn);
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerIdentity {
    pub(crate) id: i64,
    pub(crate) epoch: i16,
}

#[derive(Debug, Default)]
struct SeqState {
    /// The epoch `next` counts in; another epoch starts from 0.
    epoch: i16,
    next: i32,
}

/// The async client. Shared by the blocking facade and by group members.
#[derive(Debug)]
pub struct Cluster {
    config: RemoteConfig,
    pools: Mutex<HashMap<String, Arc<Pool>>>,
    meta: Mutex<Meta>,
    coordinators: Mutex<HashMap<String, String>>,
    producer: tokio::sync::Mutex<Option<ProducerIdentity>>,
    sequences: Mutex<HashMap<(String, i32), Arc<tokio::sync::Mutex<SeqState>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn remote(e: RemoteError) -> ClientError {
    ClientError::Remote(e)
}

impl Cluster {
    pub fn new(config: RemoteConfig) -> Cluster {
        Cluster {
            config,
            pools: Mutex::new(HashMap::new()),
            meta: Mutex::new(Meta {
                controller: -1,
                ..Meta::default()
            }),
            coordinators: Mutex::new(HashMap::new()),
            producer: tokio::sync::Mutex::new(None),
            sequences: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &RemoteConfig {
        &self.config
    }

    /// A deadline `d` from now.
    pub fn deadline(&self, d: Duration) -> Instant {
        Instant::now() + d
    }

    fn request_timeout(&self, deadline: Instant) -> Duration {
        let left = deadline.saturating_duration_since(Instant::now());
        self.config
            .request_timeout
            .min(left)
            .max(Duration::from_millis(100))
    }

    // ---- connections -------------------------------------------------------------

    fn pool(&self, addr: &str) -> Arc<Pool> {
        lock(&self.pools)
            .entry(addr.to_owned())
            .or_insert_with(|| {
                Arc::new(Pool {
                    shared: Mutex::new(None),
                    idle: Mutex::new(Vec::new()),
                    connecting: tokio::sync::Mutex::new(Backoff::default()),
                })
            })
            .clone()
    }

    fn has_open(&self, addr: &str) -> bool {
        lock(&self.pools)
            .get(addr)
            .is_some_and(|p| lock(&p.shared).as_ref().is_some_and(|c| c.is_open()))
    }

    async fn connect(
        &self,
        addr: &str,
        backoff: &mut Backoff,
        deadline: Instant,
    ) -> Result<Arc<Conn>, ClientError> {
        if let Some(at) = backoff.next_attempt
            && at > Instant::now()
        {
            if at >= deadline {
                return Err(remote(RemoteError::Connect {
                    broker: addr.to_owned(),
                    reason: format!(
                        "{} attempts failed, the last with: {}",
                        backoff.failures, backoff.last_error
                    ),
                }));
            }
            tokio::time::sleep_until(at).await;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let config = ConnConfig {
            client_id: self.config.client_id.clone(),
            connect_timeout: self
                .config
                .connect_timeout
                .min(left)
                .max(Duration::from_millis(100)),
            max_response_bytes: self.config.max_response_bytes,
        };
        match Conn::open(addr, &config).await {
            Ok(c) => {
                if backoff.failures > 0 {
                    tracing::info!(broker = addr, "reconnected");
                }
                *backoff = Backoff::default();
                Ok(Arc::new(c))
            }
            Err(e) => {
                backoff.failures = backoff.failures.saturating_add(1);
                let factor = 1u32 << backoff.failures.saturating_sub(1).min(16);
                let delay = self
                    .config
                    .reconnect_backoff
                    .saturating_mul(factor)
                    .min(self.config.reconnect_backoff_max);
                backoff.next_attempt = Some(Instant::now() + delay);
                backoff.last_error = e.to_string();
                tracing::debug!(broker = addr, error = %e, ?delay, "connect failed");
                Err(remote(e))
            }
        }
    }

    async fn shared_conn(&self, addr: &str, deadline: Instant) -> Result<Arc<Conn>, ClientError> {
        let pool = self.pool(addr);
        if let Some(c) = lock(&pool.shared).clone().filter(|c| c.is_open()) {
            return Ok(c);
        }
        let mut backoff = pool.connecting.lock().await;
        if let Some(c) = lock(&pool.shared).clone().filter(|c| c.is_open()) {
            return Ok(c);
        }
        let c = self.connect(addr, &mut backoff, deadline).await?;
        *lock(&pool.shared) = Some(c.clone());
        Ok(c)
    }

    async fn lease(&self, addr: &str, deadline: Instant) -> Result<Lease, ClientError> {
        let pool = self.pool(addr);
        loop {
            let Some(c) = lock(&pool.idle).pop() else {
                break;
            };
            if c.is_open() {
                return Ok(Lease { conn: c, pool });
            }
        }
        let mut backoff = pool.connecting.lock().await;
        let conn = self.connect(addr, &mut backoff, deadline).await?;
        drop(backoff);
        Ok(Lease { conn, pool })
    }

    /// Forget leaders and coordinators: the next call asks again.
    fn invalidate(&self) {
        lock(&self.meta).topics.clear();
        lock(&self.coordinators).clear();
    }

    /// After one attempt of a [`retrying!`] loop: the result to return, or (after the
    /// backoff) go again.
    async fn retry_verdict<T>(
        &self,
        result: Result<T, ClientError>,
        what: &str,
        deadline: Instant,
        delay: &mut Duration,
    ) -> ControlFlow<Result<T, ClientError>> {
        match result {
            Ok(v) => ControlFlow::Break(Ok(v)),
            Err(e) if retriable(&e) => {
                if stale(&e) {
                    self.invalidate();
                }
                let now = Instant::now();
                if now >= deadline {
                    return ControlFlow::Break(Err(e));
                }
                tracing::debug!(call = what, error = %e, "retrying");
                tokio::time::sleep((*delay).min(deadline - now)).await;
                *delay = (*delay * 2).min(self.config.retry_backoff_max);
                ControlFlow::Continue(())
            }
            Err(e) => ControlFlow::Break(Err(e)),
        }
    }

    // ---- metadata ------------------------------------------------------------------

    fn metadata_candidates(&self) -> Vec<String> {
        let mut out: Vec<String> = {
            let meta = lock(&self.meta);
            let mut ids: Vec<&i32> = meta.brokers.keys().collect();
            ids.sort();
            ids.into_iter().map(|id| meta.brokers[id].clone()).collect()
        };
        for b in &self.config.bootstrap {
            if !out.contains(b) {
                out.push(b.clone());
            }
        }
        // Brokers with an open connection first.
        out.sort_by_key(|a| !self.has_open(a));
        out
    }

    /// One Metadata request to any broker that answers, applied to the cache.
    async fn refresh_once(
        &self,
        topics: Option<&[String]>,
        auto_create: bool,
        deadline: Instant,
    ) -> Result<(), ClientError> {
        let mut last = None;
        for addr in self.metadata_candidates() {
            let conn = match self.shared_conn(&addr, deadline).await {
                Ok(c) => c,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            match self.metadata_on(&conn, topics, auto_create, deadline).await {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            remote(RemoteError::BadBootstrap {
                entry: String::new(),
            })
        }))
    }

    async fn metadata_on(
        &self,
        conn: &Conn,
        topics: Option<&[String]>,
        auto_create: bool,
        deadline: Instant,
    ) -> Result<(), ClientError> {
        let v = conn.version(ApiKey::Metadata).map_err(remote)?;
        let mut req = MetadataRequest::default().with_topics(topics.map(|ts| {
            ts.iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
                .collect()
        }));
        if v >= 4 {
            req.allow_auto_topic_creation = auto_create;
        }
        let resp = conn
            .call(&req, v, self.request_timeout(deadline))
            .await
            .map_err(remote)?;
        let mut meta = lock(&self.meta);
        meta.known = true;
        meta.brokers = resp
            .brokers
            .iter()
            .map(|b| (b.node_id.0, host_port(b.host.as_str(), b.port)))
            .collect();
        meta.controller = resp.controller_id.0;
        if let Some(id) = &resp.cluster_id {
            meta.cluster_id = Some(id.to_string());
        }
        if topics.is_none() {
            meta.topics.clear();
        }
        for t in &resp.topics {
            let Some(name) = &t.name else { continue };
            let mut leaders = Vec::new();
            for p in &t.partitions {
                let Ok(i) = usize::try_from(p.partition_index) else {
                    continue;
                };
                // Indexes run 0..n: bounded by the partitions listed, whatever a broker claims.
                if i >= t.partitions.len() {
                    continue;
                }
                if leaders.len() <= i {
                    leaders.resize(i + 1, -1);
                }
                leaders[i] = if p.error_code == 0 || p.error_code == 9 {
                    p.leader_id.0
                } else {
                    -1
                };
            }
            meta.topics.insert(
                name.0.to_string(),
                TopicMeta {
                    error: t.error_code,
                    leaders,
                    at: Instant::now(),
                },
            );
        }
        Ok(())
    }

    /// Refresh metadata (for `topics`, or all), retrying until the deadline. Failing to
    /// reach any broker before metadata was ever received names `bootstrap.servers`.
    async fn refresh(
        &self,
        topics: Option<&[String]>,
        auto_create: bool,
        deadline: Instant,
    ) -> Result<(), ClientError> {
        let started = Instant::now();
        let result = retrying!(self, "Metadata", deadline, {
            self.refresh_once(topics, auto_create, deadline).await
        });
        match result {
            Err(e) if !lock(&self.meta).known && retriable(&e) => {
                Err(remote(RemoteError::Bootstrap {
                    servers: self.config.bootstrap.join(","),
                    timeout: deadline.saturating_duration_since(started),
                    last: e.to_string(),
                }))
            }
            other => other,
        }
    }

    /// Connect to the cluster: one Metadata round trip.
    pub async fn bootstrap(&self, deadline: Instant) -> Result<(), ClientError> {
        self.refresh(Some(&[]), false, deadline).await
    }

    /// The leader's address, from the cache or a refresh; errors say why there is none.
    async fn leader(
        &self,
        topic: &str,
        partition: i32,
        auto_create: bool,
        deadline: Instant,
    ) -> Result<String, ClientError> {
        if let Some(Ok(addr)) = self.cached_leader(topic, partition) {
            return Ok(addr);
        }
        self.refresh(Some(&[topic.to_owned()]), auto_create, deadline)
            .await?;
        self.cached_leader(topic, partition).unwrap_or_else(|| {
            Err(remote(RemoteError::NoLeader {
                topic: topic.to_owned(),
                partition,
            }))
        })
    }

    /// The cluster's id (Metadata's `cluster_id`), once known.
    pub fn cluster_id(&self) -> Option<String> {
        lock(&self.meta).cluster_id.clone()
    }

    fn cached_leader(&self, topic: &str, partition: i32) -> Option<Result<String, ClientError>> {
        let meta = lock(&self.meta);
        let t = meta.topics.get(topic)?;
        if t.at.elapsed() > self.config.metadata_max_age {
            return None;
        }
        Some(match t.error {
            0 => match usize::try_from(partition)
                .ok()
                .and_then(|p| t.leaders.get(p))
            {
                None => Err(ClientError::UnknownPartition {
                    topic: topic.to_owned(),
                    partition,
                }),
                Some(&leader) => match meta.brokers.get(&leader) {
                    Some(addr) => Ok(addr.clone()),
                    None => Err(remote(RemoteError::NoLeader {
                        topic: topic.to_owned(),
                        partition,
                    })),
                },
            },
            3 => Err(ClientError::UnknownTopic(topic.to_owned())),
            code => Err(remote(RemoteError::Request {
                api: "Metadata",
                broker: "(any)".into(),
                what: format!("topic {topic:?}"),
                code,
                name: code_name(code),
                message: String::new(),
            })),
        })
    }

    /// The partition count of `topic` (`None`: it does not exist), asked of the cluster.
    pub async fn partition_count(
        &self,
        topic: &str,
        auto_create: bool,
        deadline: Instant,
    ) -> Result<Option<i32>, ClientError> {
        retrying!(self, "Metadata", deadline, {
            self.refresh(Some(&[topic.to_owned()]), auto_create, deadline)
                .await?;
            let meta = lock(&self.meta);
            match meta.topics.get(topic) {
                None => Ok(None),
                Some(t) if t.error == 3 => Ok(None),
                Some(t) if t.error == 0 => Ok(Some(t.leaders.len() as i32)),
                Some(t) => Err(remote(RemoteError::Request {
                    api: "Metadata",
                    broker: "(any)".into(),
                    what: format!("topic {topic:?}"),
                    code: t.error,
                    name: code_name(t.error),
                    message: String::new(),
                })),
            }
        })
    }

    /// The partition count from the cache when known, else from the cluster.
    pub async fn cached_partition_count(
        &self,
        topic: &str,
        auto_create: bool,
        deadline: Instant,
    ) -> Result<Option<i32>, ClientError> {
        if let Some(t) = lock(&self.meta).topics.get(topic)
            && t.error == 0
            && t.at.elapsed() <= self.config.metadata_max_age
        {
            return Ok(Some(t.leaders.len() as i32));
        }
        self.partition_count(topic, auto_create, deadline).await
    }

    /// Every topic's name.
    pub async fn list_topics(&self, deadline: Instant) -> Result<Vec<String>, ClientError> {
        self.refresh(None, false, deadline).await?;
        let mut names: Vec<String> = lock(&self.meta)
            .topics
            .iter()
            .filter(|(_, t)| t.error == 0)
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The brokers the cluster reported: (node id, host:port), by node id.
    pub fn brokers(&self) -> Vec<(i32, String)> {
        let meta = lock(&self.meta);
        let mut out: Vec<(i32, String)> =
            meta.brokers.iter().map(|(k, v)| (*k, v.clone())).collect();
        out.sort();
        out
    }

    // ---- admin ---------------------------------------------------------------------

    async fn any_conn(&self, deadline: Instant) -> Result<Arc<Conn>, ClientError> {
        let mut last = None;
        for addr in self.metadata_candidates() {
            match self.shared_conn(&addr, deadline).await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            remote(RemoteError::BadBootstrap {
                entry: String::new(),
            })
        }))
    }

    async fn controller_conn(&self, deadline: Instant) -> Result<Arc<Conn>, ClientError> {
        if !lock(&self.meta).known {
            self.refresh(Some(&[]), false, deadline).await?;
        }
        let addr = {
            let meta = lock(&self.meta);
            meta.brokers.get(&meta.controller).cloned()
        };
        match addr {
            Some(a) => self.shared_conn(&a, deadline).await,
            None => self.any_conn(deadline).await,
        }
    }

    /// Create `topic`: `partitions`/`replication_factor` `None` use the broker's
    /// defaults. Answers the partition count and whether this call created it (false:
    /// it existed). Returns once the cluster's metadata shows the topic.
    pub async fn create_topic(
        &self,
        topic: &str,
        partitions: Option<i32>,
        replication_factor: Option<i16>,
        configs: &BTreeMap<String, String>,
        deadline: Instant,
    ) -> Result<(i32, bool), ClientError> {
        let created = retrying!(self, "CreateTopics", deadline, {
            let conn = self.controller_conn(deadline).await?;
            let v = conn.version(ApiKey::CreateTopics).map_err(remote)?;
            if v < 4 && (partitions.is_none() || replication_factor.is_none()) {
                return Err(remote(RemoteError::Config {
                    key: "topic creation".into(),
                    value: topic.to_owned(),
                    reason: format!(
                        "broker {} cannot apply its default partition count or replication \
                             factor (CreateTopics v{v}); give both explicitly",
                        conn.addr
                    ),
                }));
            }
            let req = CreateTopicsRequest::default()
                .with_timeout_ms(millis_i32(self.request_timeout(deadline)))
                .with_topics(vec![
                    CreatableTopic::default()
                        .with_name(topic_name(topic))
                        .with_num_partitions(partitions.unwrap_or(-1))
                        .with_replication_factor(replication_factor.unwrap_or(-1))
                        .with_configs(
                            configs
                                .iter()
                                .map(|(k, v)| {
                                    CreatableTopicConfig::default()
                                        .with_name(s(k))
                                        .with_value(Some(s(v)))
                                })
                                .collect(),
                        ),
                ]);
            let resp = conn
                .call(&req, v, self.request_timeout(deadline))
                .await
                .map_err(remote)?;
            let r = resp
                .topics
                .iter()
                .find(|t| t.name.0.as_str() == topic)
                .ok_or_else(|| {
                    remote(RemoteError::Malformed {
                        broker: conn.addr.clone(),
                        api: "CreateTopics",
                        version: v,
                        reason: format!("no result for topic {topic:?}"),
                    })
                })?;
            match r.error_code {
                0 => Ok(true),
                36 => Ok(false),
                code => Err(remote(RemoteError::Request {
                    api: "CreateTopics",
                    broker: conn.addr.clone(),
                    what: format!("topic {topic:?}"),
                    code,
                    name: code_name(code),
                    message: with_message(r.error_message.as_deref()),
                })),
            }
        })?;
        // Kafka propagates a new topic to every broker's metadata asynchronously.
        let n = retrying!(self, "Metadata", deadline, {
            match self.partition_count(topic, false, deadline).await? {
                Some(n) if n > 0 => Ok(n),
                _ => Err(remote(RemoteError::NoLeader {
                    topic: topic.to_owned(),
                    partition: 0,
                })),
            }
        })?;
        Ok((n, created))
    }

    /// A topic's configs (DescribeConfigs).
    pub async fn describe_topic_configs(
        &self,
        topic: &str,
        deadline: Instant,
    ) -> Result<Vec<TopicConfig>, ClientError> {
        retrying!(self, "DescribeConfigs", deadline, {
            let conn = self.any_conn(deadline).await?;
            let v = conn.version(ApiKey::DescribeConfigs).map_err(remote)?;
            let req = DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(topic))
                    .with_configuration_keys(None),
            ]);
            let resp = conn
                .call(&req, v, self.request_timeout(deadline))
                .await
                .map_err(remote)?;
            let Some(r) = resp.results.first() else {
                return Err(remote(RemoteError::Malformed {
                    broker: conn.addr.clone(),
                    api: "DescribeConfigs",
                    version: v,
                    reason: "no result for the topic".into(),
                }));
            };
            match r.error_code {
                0 => Ok(r
                    .configs
                    .iter()
                    .map(|c| TopicConfig {
                        name: c.name.to_string(),
                        value: c.value.as_ref().map(|v| v.to_string()),
                        source: c.config_source,
                        read_only: c.read_only,
                        sensitive: c.is_sensitive,
                    })
                    .collect()),
                3 => Err(ClientError::UnknownTopic(topic.to_owned())),
                code => Err(remote(RemoteError::Request {
                    api: "DescribeConfigs",
                    broker: conn.addr.clone(),
                    what: format!("topic {topic:?}"),
                    code,
                    name: code_name(code),
                    message: with_message(r.error_message.as_deref()),
                })),
            }
        })
    }

    // ---- produce -------------------------------------------------------------------

    pub(crate) async fn producer_id(
        &self,
        deadline: Instant,
    ) -> Result<ProducerIdentity, ClientError> {
        let mut state = self.producer.lock().await;
        if let Some(p) = *state {
            return Ok(p);
        }
        let p = self.init_producer_id(None, deadline).await?;
        *state = Some(p);
        Ok(p)
    }

    /// After the broker lost or refused our sequence state: a new epoch (KIP-360) or a
    /// new producer id. `seen` is the id the failed batch carried: if another partition
    /// already bumped past it, nothing more is needed.
    async fn bump_producer(
        &self,
        seen: ProducerIdentity,
        deadline: Instant,
    ) -> Result<(), ClientError> {
        let mut state = self.producer.lock().await;
        if let Some(p) = *state
            && (p.id != seen.id || p.epoch != seen.epoch)
        {
            return Ok(());
        }
        let p = self.init_producer_id(Some(seen), deadline).await?;
        tracing::info!(
            producer_id = p.id,
            epoch = p.epoch,
            "idempotent producer reset its sequences"
        );
        *state = Some(p);
        Ok(())
    }

    async fn init_producer_id(
        &self,
        current: Option<ProducerIdentity>,
        deadline: Instant,
    ) -> Result<ProducerIdentity, ClientError> {
        retrying!(self, "InitProducerId", deadline, {
            let conn = self.any_conn(deadline).await?;
            let v = conn.version(ApiKey::InitProducerId).map_err(remote)?;
            let mut req = InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(i32::MAX);
            if v >= 3
                && let Some(p) = current
            {
                req = req
                    .with_producer_id(ProducerId(p.id))
                    .with_producer_epoch(p.epoch);
            }
            let resp = conn
                .call(&req, v, self.request_timeout(deadline))
                .await
                .map_err(remote)?;
            if resp.error_code != 0 {
                return Err(remote(RemoteError::Request {
                    api: "InitProducerId",
                    broker: conn.addr.clone(),
                    what: "an idempotent producer id".into(),
                    code: resp.error_code,
                    name: code_name(resp.error_code),
                    message: " (set enable.idempotence=false if the cluster does not allow it)"
                        .into(),
                }));
            }
            Ok(ProducerIdentity {
                id: resp.producer_id.0,
                epoch: resp.producer_epoch,
            })
        })
    }

    fn sequence_state(&self, topic: &str, partition: i32) -> Arc<tokio::sync::Mutex<SeqState>> {
        lock(&self.sequences)
            .entry((topic.to_owned(), partition))
            .or_default()
            .clone()
    }

    /// Produce `batches` (RecordBatch v2, built without producer fields) to
    /// `topic`/`partition` in order, each acknowledged before the next is sent. Answers
    /// the base offset of the first batch (-1 with acks=0, which gets no answer).
    ///
    /// One partition's batches go one at a time under its lock, so sequence numbers
    /// reach the broker in order; a batch whose answer is lost is resent with the same
    /// sequence, and the broker acknowledges a duplicate without writing it again.
    pub async fn produce(
        &self,
        topic: &str,
        partition: i32,
        batches: Vec<Vec<u8>>,
        deadline: Instant,
    ) -> Result<i64, ClientError> {
        let idempotent = self.config.idempotence;
        let acks = self.config.acks;
        let seq_lock = self.sequence_state(topic, partition);
        let mut seq = seq_lock.lock().await;
        let mut first = None;
        for mut batch in batches {
            let count = batch_record_count(&batch);
            let mut stamped: Option<(ProducerIdentity, i32)> = None;
            let mut bytes = Bytes::new();
            let mut delay = self.config.retry_backoff;
            loop {
                if idempotent {
                    let p = self.producer_id(deadline).await?;
                    if seq.epoch != p.epoch {
                        *seq = SeqState {
                            epoch: p.epoch,
                            next: 0,
                        };
                    }
                    if stamped != Some((p, seq.next)) {
                        if !bytes.is_empty() {
                            batch = bytes.to_vec();
                        }
                        restamp(&mut batch, p.id, p.epoch, seq.next);
                        stamped = Some((p, seq.next));
                        bytes = Bytes::from(std::mem::take(&mut batch));
                    }
                } else if bytes.is_empty() {
                    bytes = Bytes::from(std::mem::take(&mut batch));
                }
                let outcome = self
                    .produce_once(topic, partition, bytes.clone(), acks, deadline)
                    .await;
                let err = match outcome {
                    Ok(base) => {
                        first.get_or_insert(base);
                        seq.next = next_sequence(seq.next, count);
                        break;
                    }
                    Err(e) => e,
                };
                let code = match &err {
                    ClientError::Remote(r) => r.code(),
                    _ => None,
                };
                match (idempotent, code, stamped) {
                    // The broker has no (or other) state for our producer: new epoch.
                    (true, Some(45 | 59), Some((p, _))) => {
                        tracing::warn!(%topic, partition, error = %err, "bumping the producer epoch");
                        self.bump_producer(p, deadline).await?;
                        continue;
                    }
                    // Another partition bumped the epoch: restamp with the new one.
                    (true, Some(47), Some((p, _))) => {
                        let now = self.producer_id(deadline).await?;
                        if now.epoch == p.epoch && now.id == p.id {
                            return Err(err);
                        }
                        continue;
                    }
                    _ => {}
                }
                if !retriable(&err) || Instant::now() >= deadline {
                    return Err(err);
                }
                if stale(&err) {
                    self.invalidate();
                }
                tracing::debug!(%topic, partition, error = %err, "retrying produce");
                tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now())))
                    .await;
                delay = (delay * 2).min(self.config.retry_backoff_max);
            }
        }
        Ok(first.unwrap_or(-1))
    }

    pub(crate) async fn produce_once(
        &self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: i16,
        deadline: Instant,
    ) -> Result<i64, ClientError> {
        let addr = self.leader(topic, partition, true, deadline).await?;
        let conn = self.shared_conn(&addr, deadline).await?;
        let v = conn.version(ApiKey::Produce).map_err(remote)?;
        let timeout = self.request_timeout(deadline);
        let req = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(millis_i32(timeout))
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(topic_name(topic))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(batch)),
                    ]),
            ]);
        if acks == 0 {
            conn.send_only(&req, v).await.map_err(remote)?;
            return Ok(-1);
        }
        let resp = conn.call(&req, v, timeout).await.map_err(remote)?;
        let p = resp
            .responses
            .iter()
            .filter(|t| t.name.0.as_str() == topic)
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == partition)
            .ok_or_else(|| {
                remote(RemoteError::Malformed {
                    broker: addr.clone(),
                    api: "Produce",
                    version: v,
                    reason: format!("no answer for {topic}-{partition}"),
                })
            })?;
        match p.error_code {
            // DUPLICATE_SEQUENCE_NUMBER: already written (Kafka may not say where).
            0 | 46 => Ok(p.base_offset),
            code => Err(remote(RemoteError::Partition {
                api: "Produce",
                broker: addr,
                topic: topic.to_owned(),
                partition,
                code,
                name: code_name(code),
                message: with_message(p.error_message.as_deref()),
            })),
        }
    }

    // ---- fetch and offsets -----------------------------------------------------------

    /// Read `topic`/`partition` from `offset`, letting the broker wait up to
    /// `options.max_wait` for `min_bytes`.
    pub async fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        options: &FetchOptions,
        deadline: Instant,
    ) -> Result<Fetched, ClientError> {
        let deadline = deadline.max(Instant::now() + options.max_wait);
        retrying!(self, "Fetch", deadline, {
            let addr = self.leader(topic, partition, false, deadline).await?;
            let waits = !options.max_wait.is_zero();
            let lease = if waits {
                Some(self.lease(&addr, deadline).await?)
            } else {
                None
            };
            let conn = match &lease {
                Some(l) => l.conn.clone(),
                None => self.shared_conn(&addr, deadline).await?,
            };
            let v = conn.version(ApiKey::Fetch).map_err(remote)?;
            let mut req = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(millis_i32(options.max_wait))
                .with_min_bytes(options.min_bytes)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic(topic_name(topic))
                        .with_partitions(vec![
                            FetchPartition::default()
                                .with_partition(partition)
                                .with_fetch_offset(offset)
                                .with_partition_max_bytes(options.partition_max_bytes),
                        ]),
                ]);
            req.max_bytes = options.max_bytes;
            let timeout = self.request_timeout(deadline) + options.max_wait;
            let resp = conn.call(&req, v, timeout).await.map_err(remote)?;
            if let Some(l) = lease {
                l.done();
            }
            if resp.error_code != 0 {
                return Err(remote(RemoteError::Partition {
                    api: "Fetch",
                    broker: addr.clone(),
                    topic: topic.to_owned(),
                    partition,
                    code: resp.error_code,
                    name: code_name(resp.error_code),
                    message: String::new(),
                }));
            }
            let pd = resp
                .responses
                .iter()
                .filter(|t| t.topic.0.as_str() == topic)
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition_index == partition)
                .ok_or_else(|| {
                    remote(RemoteError::Malformed {
                        broker: addr.clone(),
                        api: "Fetch",
                        version: v,
                        reason: format!("no answer for {topic}-{partition}"),
                    })
                })?;
            match pd.error_code {
                0 => decode_fetched(
                    topic,
                    partition,
                    offset,
                    pd.records.as_deref().unwrap_or_default(),
                    pd.high_watermark,
                ),
                1 => Err(ClientError::OffsetOutOfRange {
                    topic: topic.to_owned(),
                    partition,
                    offset,
                    log_start_offset: pd.log_start_offset,
                }),
                code => Err(remote(RemoteError::Partition {
                    api: "Fetch",
                    broker: addr.clone(),
                    topic: topic.to_owned(),
                    partition,
                    code,
                    name: code_name(code),
                    message: String::new(),
                })),
            }
        })
    }

    /// ListOffsets for partitions of one topic: the offset per `(partition, spec)`, in
    /// order. A timestamp after the last record answers the high watermark, as the
    /// in-process client does.
    pub async fn list_offsets(
        &self,
        topic: &str,
        wanted: &[(i32, OffsetSpec)],
        deadline: Instant,
    ) -> Result<Vec<i64>, ClientError> {
        let mut out = self.list_offsets_once(topic, wanted, deadline).await?;
        let missing: Vec<(usize, (i32, OffsetSpec))> = out
            .iter()
            .enumerate()
            .filter(|(i, o)| **o < 0 && matches!(wanted[*i].1, OffsetSpec::Timestamp(_)))
            .map(|(i, _)| (i, (wanted[i].0, OffsetSpec::Latest)))
            .collect();
        if !missing.is_empty() {
            let specs: Vec<(i32, OffsetSpec)> = missing.iter().map(|(_, w)| *w).collect();
            let latest = self.list_offsets_once(topic, &specs, deadline).await?;
            for ((i, _), o) in missing.into_iter().zip(latest) {
                out[i] = o;
            }
        }
        Ok(out)
    }

    async fn list_offsets_once(
        &self,
        topic: &str,
        wanted: &[(i32, OffsetSpec)],
        deadline: Instant,
    ) -> Result<Vec<i64>, ClientError> {
        retrying!(self, "ListOffsets", deadline, {
            let mut by_leader: BTreeMap<String, Vec<(usize, i32, i64)>> = BTreeMap::new();
            for (i, (p, spec)) in wanted.iter().enumerate() {
                let addr = self.leader(topic, *p, false, deadline).await?;
                let ts = match spec {
                    OffsetSpec::Earliest => -2,
                    OffsetSpec::Latest => -1,
                    OffsetSpec::Timestamp(t) => *t,
                };
                by_leader.entry(addr).or_default().push((i, *p, ts));
            }
            let mut out = vec![-1i64; wanted.len()];
            for (addr, parts) in by_leader {
                let conn = self.shared_conn(&addr, deadline).await?;
                let v = conn.version(ApiKey::ListOffsets).map_err(remote)?;
                let req = ListOffsetsRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(vec![
                        ListOffsetsTopic::default()
                            .with_name(topic_name(topic))
                            .with_partitions(
                                parts
                                    .iter()
                                    .map(|&(_, p, ts)| {
                                        ListOffsetsPartition::default()
                                            .with_partition_index(p)
                                            .with_timestamp(ts)
                                    })
                                    .collect(),
                            ),
                    ]);
                let resp = conn
                    .call(&req, v, self.request_timeout(deadline))
                    .await
                    .map_err(remote)?;
                for &(i, p, _) in &parts {
                    let r = resp
                        .topics
                        .iter()
                        .filter(|t| t.name.0.as_str() == topic)
                        .flat_map(|t| t.partitions.iter())
                        .find(|r| r.partition_index == p)
                        .ok_or_else(|| {
                            remote(RemoteError::Malformed {
                                broker: addr.clone(),
                                api: "ListOffsets",
                                version: v,
                                reason: format!("no answer for {topic}-{p}"),
                            })
                        })?;
                    if r.error_code != 0 {
                        return Err(remote(RemoteError::Partition {
                            api: "ListOffsets",
                            broker: addr.clone(),
                            topic: topic.to_owned(),
                            partition: p,
                            code: r.error_code,
                            name: code_name(r.error_code),
                            message: String::new(),
                        }));
                    }
                    out[i] = r.offset;
                }
            }
            Ok(out)
        })
    }

    // ---- groups --------------------------------------------------------------------

    async fn coordinator(&self, group_id: &str, deadline: Instant) -> Result<String, ClientError> {
        if let Some(a) = lock(&self.coordinators).get(group_id) {
            return Ok(a.clone());
        }
        let conn = self.any_conn(deadline).await?;
        let v = conn.version(ApiKey::FindCoordinator).map_err(remote)?;
        let req = FindCoordinatorRequest::default()
            .with_key(s(group_id))
            .with_key_type(0);
        let resp = conn
            .call(&req, v, self.request_timeout(deadline))
            .await
            .map_err(remote)?;
        if resp.error_code != 0 {
            return Err(remote(RemoteError::Request {
                api: "FindCoordinator",
                broker: conn.addr.clone(),
                what: format!("group {group_id:?}"),
                code: resp.error_code,
                name: code_name(resp.error_code),
                message: with_message(resp.error_message.as_deref()),
            }));
        }
        let addr = host_port(resp.host.as_str(), resp.port);
        lock(&self.coordinators).insert(group_id.to_owned(), addr.clone());
        Ok(addr)
    }

    /// An error code in a group answer that means "ask another coordinator".
    fn coordinator_error(
        &self,
        api: &'static str,
        group_id: &str,
        addr: &str,
        code: i16,
    ) -> Option<ClientError> {
        matches!(code, 14..=16).then(|| {
            lock(&self.coordinators).remove(group_id);
            remote(RemoteError::Request {
                api,
                broker: addr.to_owned(),
                what: format!("group {group_id:?}"),
                code,
                name: code_name(code),
                message: String::new(),
            })
        })
    }

    /// JoinGroup, any protocol type. A first join answered MEMBER_ID_REQUIRED (KIP-394)
    /// is repeated at once with the member id the coordinator gave. The request may wait
    /// for the whole rebalance: its timeout is the rebalance timeout plus
    /// `request.timeout.ms`, on a connection of its own.
    pub async fn join_group(
        &self,
        req: &group::JoinGroupRequest,
    ) -> Result<group::JoinGroupResponse, ClientError> {
        let wait = Duration::from_millis(
            req.rebalance_timeout_ms.max(req.session_timeout_ms).max(0) as u64,
        );
        let deadline = Instant::now() + wait + self.config.request_timeout * 2;
        let mut member_id = req.member_id.clone();
        retrying!(self, "JoinGroup", deadline, {
            loop {
                let addr = self.coordinator(&req.group_id, deadline).await?;
                let lease = self.lease(&addr, deadline).await?;
                let v = lease.conn.version(ApiKey::JoinGroup).map_err(remote)?;
                if req.group_instance_id.is_some() && v < 5 {
                    return Err(static_membership_error(&addr, "JoinGroup", v));
                }
                let mut wire = JoinGroupRequest::default()
                    .with_group_id(GroupId(s(&req.group_id)))
                    .with_session_timeout_ms(req.session_timeout_ms)
                    .with_member_id(s(&member_id))
                    .with_group_instance_id(req.group_instance_id.as_deref().map(s))
                    .with_protocol_type(s(&req.protocol_type))
                    .with_protocols(
                        req.protocols
                            .iter()
                            .map(|(name, meta)| {
                                JoinGroupRequestProtocol::default()
                                    .with_name(s(name))
                                    .with_metadata(meta.clone())
                            })
                            .collect(),
                    );
                if v >= 1 {
                    wire.rebalance_timeout_ms = req.rebalance_timeout_ms;
                }
                let timeout = wait + self.config.request_timeout;
                let resp = lease.conn.call(&wire, v, timeout).await.map_err(remote)?;
                lease.done();
                if let Some(e) =
                    self.coordinator_error("JoinGroup", &req.group_id, &addr, resp.error_code)
                {
                    return Err(e);
                }
                if resp.error_code == group::codes::MEMBER_ID_REQUIRED && member_id.is_empty() {
                    member_id = resp.member_id.to_string();
                    continue;
                }
                return Ok(group::JoinGroupResponse {
                    error_code: resp.error_code,
                    generation_id: resp.generation_id,
                    protocol_type: resp.protocol_type.map(|p| p.to_string()),
                    protocol_name: resp.protocol_name.map(|p| p.to_string()),
                    leader: resp.leader.to_string(),
                    member_id: resp.member_id.to_string(),
                    members: resp
                        .members
                        .into_iter()
                        .map(|m| {
                            (
                                m.member_id.to_string(),
                                m.group_instance_id.map(|i| i.to_string()),
                                m.metadata,
                            )
                        })
                        .collect(),
                    skip_assignment: resp.skip_assignment,
                });
            }
        })
    }

    /// SyncGroup: the leader sends the assignment, every member gets its own.
    pub async fn sync_group(
        &self,
        req: &group::SyncGroupRequest,
    ) -> Result<group::SyncGroupResponse, ClientError> {
        let deadline = Instant::now() + self.config.request_timeout * 2;
        retrying!(self, "SyncGroup", deadline, {
            let addr = self.coordinator(&req.group_id, deadline).await?;
            let lease = self.lease(&addr, deadline).await?;
            let v = lease.conn.version(ApiKey::SyncGroup).map_err(remote)?;
            if req.group_instance_id.is_some() && v < 3 {
                return Err(static_membership_error(&addr, "SyncGroup", v));
            }
            let mut wire = SyncGroupRequest::default()
                .with_group_id(GroupId(s(&req.group_id)))
                .with_generation_id(req.generation_id)
                .with_member_id(s(&req.member_id))
                .with_group_instance_id(req.group_instance_id.as_deref().map(s))
                .with_assignments(
                    req.assignments
                        .iter()
                        .map(|(m, a)| {
                            SyncGroupRequestAssignment::default()
                                .with_member_id(s(m))
                                .with_assignment(a.clone())
                        })
                        .collect(),
                );
            if v >= 5 {
                wire.protocol_type = req.protocol_type.as_deref().map(s);
                wire.protocol_name = req.protocol_name.as_deref().map(s);
            }
            let resp = lease
                .conn
                .call(&wire, v, self.request_timeout(deadline))
                .await
                .map_err(remote)?;
            lease.done();
            if let Some(e) =
                self.coordinator_error("SyncGroup", &req.group_id, &addr, resp.error_code)
            {
                return Err(e);
            }
            Ok(group::SyncGroupResponse {
                error_code: resp.error_code,
                protocol_type: resp.protocol_type.map(|p| p.to_string()),
                protocol_name: resp.protocol_name.map(|p| p.to_string()),
                assignment: resp.assignment,
            })
        })
    }

    /// Heartbeat: the error code (REBALANCE_IN_PROGRESS means rejoin).
    pub async fn heartbeat(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<i16, ClientError> {
        let deadline = Instant::now() + self.config.request_timeout;
        retrying!(self, "Heartbeat", deadline, {
            let addr = self.coordinator(group_id, deadline).await?;
            let conn = self.shared_conn(&addr, deadline).await?;
            let v = conn.version(ApiKey::Heartbeat).map_err(remote)?;
            if group_instance_id.is_some() && v < 3 {
                return Err(static_membership_error(&addr, "Heartbeat", v));
            }
            let req = HeartbeatRequest::default()
                .with_group_id(GroupId(s(group_id)))
                .with_generation_id(generation_id)
                .with_member_id(s(member_id))
                .with_group_instance_id(group_instance_id.map(s));
            let resp = conn
                .call(&req, v, self.request_timeout(deadline))
                .await
                .map_err(remote)?;
            if let Some(e) = self.coordinator_error("Heartbeat", group_id, &addr, resp.error_code) {
                return Err(e);
            }
            Ok(resp.error_code)
        })
    }

    /// LeaveGroup: (group error, per member (member id, instance id, error)).
    pub async fn leave_group(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<(i16, Vec<(String, Option<String>, i16)>), ClientError> {
        let deadline = Instant::now() + self.config.request_timeout;
        retrying!(self, "LeaveGroup", deadline, {
            let addr = self.coordinator(group_id, deadline).await?;
            let conn = self.shared_conn(&addr, deadline).await?;
            let v = conn.version(ApiKey::LeaveGroup).map_err(remote)?;
            if v >= 3 {
                let req = LeaveGroupRequest::default()
                    .with_group_id(GroupId(s(group_id)))
                    .with_members(
                        members
                            .iter()
                            .map(|(m, i)| {
                                MemberIdentity::default()
                                    .with_member_id(s(m))
                                    .with_group_instance_id(i.as_deref().map(s))
                            })
                            .collect(),
                    );
                let resp = conn
                    .call(&req, v, self.request_timeout(deadline))
                    .await
                    .map_err(remote)?;
                if let Some(e) =
                    self.coordinator_error("LeaveGroup", group_id, &addr, resp.error_code)
                {
                    return Err(e);
                }
                return Ok((
                    resp.error_code,
                    resp.members
                        .into_iter()
                        .map(|m| {
                            (
                                m.member_id.to_string(),
                                m.group_instance_id.map(|i| i.to_string()),
                                m.error_code,
                            )
                        })
                        .collect(),
                ));
            }
            let mut results = Vec::new();
            for (m, i) in members {
                if i.is_some() {
                    return Err(static_membership_error(&addr, "LeaveGroup", v));
                }
                let req = LeaveGroupRequest::default()
                    .with_group_id(GroupId(s(group_id)))
                    .with_member_id(s(m));
                let resp = conn
                    .call(&req, v, self.request_timeout(deadline))
                    .await
                    .map_err(remote)?;
                if let Some(e) =
                    self.coordinator_error("LeaveGroup", group_id, &addr, resp.error_code)
                {
                    return Err(e);
                }
                results.push((m.clone(), None, resp.error_code));
            }
            Ok((0, results))
        })
    }

    /// OffsetCommit: per topic, per partition, the error code.
    pub async fn commit_offsets(
        &self,
        req: &group::OffsetCommitRequest,
    ) -> Result<group::CommitResult, ClientError> {
        let deadline = Instant::now() + self.config.request_timeout * 2;
        retrying!(self, "OffsetCommit", deadline, {
            let addr = self.coordinator(&req.group_id, deadline).await?;
            let conn = self.shared_conn(&addr, deadline).await?;
            let v = conn.version(ApiKey::OffsetCommit).map_err(remote)?;
            if req.group_instance_id.is_some() && v < 7 {
                return Err(static_membership_error(&addr, "OffsetCommit", v));
            }
            let mut wire = OffsetCommitRequest::default()
                .with_group_id(GroupId(s(&req.group_id)))
                .with_generation_id_or_member_epoch(req.generation_id)
                .with_member_id(s(&req.member_id))
                .with_group_instance_id(req.group_instance_id.as_deref().map(s))
                .with_topics(
                    req.topics
                        .iter()
                        .map(|(t, parts)| {
                            OffsetCommitRequestTopic::default()
                                .with_name(topic_name(t))
                                .with_partitions(
                                    parts
                                        .iter()
                                        .map(|(p, o, epoch, meta)| {
                                            let mut rp = OffsetCommitRequestPartition::default()
                                                .with_partition_index(*p)
                                                .with_committed_offset(*o)
                                                .with_committed_metadata(meta.as_deref().map(s));
                                            if v >= 6 {
                                                rp.committed_leader_epoch = *epoch;
                                            }
                                            rp
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            if (2..=4).contains(&v) {
                wire.retention_time_ms = req.retention_time_ms;
            }
            let resp = conn
                .call(&wire, v, self.request_timeout(deadline))
                .await
                .map_err(remote)?;
            let result: group::CommitResult = resp
                .topics
                .into_iter()
                .map(|t| {
                    (
                        t.name.0.to_string(),
                        t.partitions
                            .into_iter()
                            .map(|p| (p.partition_index, p.error_code))
                            .collect::<Vec<_>>(),
                    )
                })
                .collect();
            if let Some(code) = result
                .iter()
                .flat_map(|(_, ps)| ps.iter().map(|(_, c)| *c))
                .find(|c| matches!(c, 14..=16))
                && let Some(e) = self.coordinator_error("OffsetCommit", &req.group_id, &addr, code)
            {
                return Err(e);
            }
            Ok(result)
        })
    }

    /// OffsetFetch: the committed offsets (`topics: None` for all), or the group's
    /// error code.
    pub async fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Result<group::FetchResult, i16>, ClientError> {
        let deadline = Instant::now() + self.config.request_timeout * 2;
        retrying!(self, "OffsetFetch", deadline, {
            let addr = self.coordinator(group_id, deadline).await?;
            let conn = self.shared_conn(&addr, deadline).await?;
            let v = conn.version(ApiKey::OffsetFetch).map_err(remote)?;
            if topics.is_none() && v < 2 {
                return Err(remote(RemoteError::UnsupportedVersion {
                    broker: addr.clone(),
                    api: "OffsetFetch (all topics)",
                    broker_versions: format!("up to {v}"),
                    client_min: 2,
                    client_max: 7,
                }));
            }
            let req = OffsetFetchRequest::default()
                .with_group_id(GroupId(s(group_id)))
                .with_topics(topics.map(|ts| {
                    ts.iter()
                        .map(|(t, ps)| {
                            OffsetFetchRequestTopic::default()
                                .with_name(topic_name(t))
                                .with_partition_indexes(ps.clone())
                        })
                        .collect()
                }));
            let resp = conn
                .call(&req, v, self.request_timeout(deadline))
                .await
                .map_err(remote)?;
            if let Some(e) = self.coordinator_error("OffsetFetch", group_id, &addr, resp.error_code)
            {
                return Err(e);
            }
            if resp.error_code != 0 {
                return Ok(Err(resp.error_code));
            }
            Ok(Ok(resp
                .topics
                .into_iter()
                .map(|t| {
                    (
                        t.name.0.to_string(),
                        t.partitions
                            .into_iter()
                            .map(|p| {
                                (
                                    p.partition_index,
                                    p.committed_offset,
                                    p.committed_leader_epoch,
                                    p.metadata.map(|m| m.to_string()).unwrap_or_default(),
                                    p.error_code,
                                )
                            })
                            .collect::<Vec<_>>(),
                    )
                })
                .collect()))
        })
    }
}

impl Cluster {
    /// DescribeGroups, in request order (each group asked of its coordinator).
    pub async fn describe_groups(
        &self,
        group_ids: &[String],
    ) -> Result<Vec<group::GroupDescription>, ClientError> {
        let mut out = Vec::with_capacity(group_ids.len());
        for group_id in group_ids {
            let deadline = Instant::now() + self.config.request_timeout * 2;
            let described = retrying!(self, "DescribeGroups", deadline, {
                let addr = self.coordinator(group_id, deadline).await?;
                let conn = self.shared_conn(&addr, deadline).await?;
                let v = conn.version(ApiKey::DescribeGroups).map_err(remote)?;
                let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group_id))]);
                let resp = conn
                    .call(&req, v, self.request_timeout(deadline))
                    .await
                    .map_err(remote)?;
                let g = resp.groups.into_iter().next().ok_or_else(|| {
                    remote(RemoteError::Malformed {
                        broker: addr.clone(),
                        api: "DescribeGroups",
                        version: v,
                        reason: format!("no answer for group {group_id:?}"),
                    })
                })?;
                if let Some(e) =
                    self.coordinator_error("DescribeGroups", group_id, &addr, g.error_code)
                {
                    return Err(e);
                }
                Ok(group::GroupDescription {
                    error_code: g.error_code,
                    group_id: g.group_id.0.to_string(),
                    state: g.group_state.to_string(),
                    protocol_type: g.protocol_type.to_string(),
                    protocol: g.protocol_data.to_string(),
                    members: g
                        .members
                        .into_iter()
                        .map(|m| group::MemberDescription {
                            member_id: m.member_id.to_string(),
                            group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                            client_id: m.client_id.to_string(),
                            client_host: m.client_host.to_string(),
                            metadata: m.member_metadata,
                            assignment: m.member_assignment,
                        })
                        .collect(),
                })
            })?;
            out.push(described);
        }
        Ok(out)
    }

    /// DeleteGroups: per group, its error code (NON_EMPTY_GROUP while it has members,
    /// GROUP_ID_NOT_FOUND for an unknown one).
    pub async fn delete_groups(
        &self,
        group_ids: &[String],
    ) -> Result<Vec<(String, i16)>, ClientError> {
        let mut out = Vec::with_capacity(group_ids.len());
        for group_id in group_ids {
            let deadline = Instant::now() + self.config.request_timeout * 2;
            let code = retrying!(self, "DeleteGroups", deadline, {
                let addr = self.coordinator(group_id, deadline).await?;
                let conn = self.shared_conn(&addr, deadline).await?;
                let v = conn.version(ApiKey::DeleteGroups).map_err(remote)?;
                let req =
                    DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(group_id))]);
                let resp = conn
                    .call(&req, v, self.request_timeout(deadline))
                    .await
                    .map_err(remote)?;
                let code = resp
                    .results
                    .iter()
                    .find(|r| r.group_id.0.as_str() == group_id.as_str())
                    .map(|r| r.error_code)
                    .ok_or_else(|| {
                        remote(RemoteError::Malformed {
                            broker: addr.clone(),
                            api: "DeleteGroups",
                            version: v,
                            reason: format!("no answer for group {group_id:?}"),
                        })
                    })?;
                if let Some(e) = self.coordinator_error("DeleteGroups", group_id, &addr, code) {
                    return Err(e);
                }
                Ok(code)
            })?;
            out.push((group_id.clone(), code));
        }
        Ok(out)
    }
}

fn static_membership_error(addr: &str, api: &'static str, v: i16) -> ClientError {
    remote(RemoteError::UnsupportedVersion {
        broker: addr.to_owned(),
        api,
        broker_versions: format!("up to {v} (no static membership, group.instance.id)"),
        client_min: 0,
        client_max: 0,
    })
}

/// `host:port`, with an IPv6 address in brackets so it parses back.
fn host_port(host: &str, port: i32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub(crate) fn millis_i32(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// The sequence after `count` records from `seq`, wrapping past `i32::MAX` to 0 as
/// Kafka's `DefaultRecordBatch.incrementSequence` does.
fn next_sequence(seq: i32, count: i32) -> i32 {
    let count = count.max(0);
    if seq > i32::MAX - count {
        count - (i32::MAX - seq) - 1
    } else {
        seq + count
    }
}

/// The records count field of a batch (bytes 57..61).
fn batch_record_count(batch: &[u8]) -> i32 {
    batch
        .get(57..61)
        .map_or(0, |b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Write the producer id, epoch and base sequence into a built batch and recompute its
/// CRC-32C (which covers the attributes onward, these fields included).
pub(crate) fn restamp(batch: &mut [u8], producer_id: i64, epoch: i16, base_sequence: i32) {
    if batch.len() < batch::BATCH_HEADER_LEN {
        return;
    }
    batch[43..51].copy_from_slice(&producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&epoch.to_be_bytes());
    batch[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// The records of a fetched partition: whole batches only (a batch cut off by the
/// fetch size ends the read), control batches skipped, records before `offset` dropped.
fn decode_fetched(
    topic: &str,
    partition: i32,
    offset: i64,
    records: &[u8],
    high_watermark: i64,
) -> Result<Fetched, ClientError> {
    let mut fetched = Fetched {
        records: Vec::new(),
        next_offset: offset,
        high_watermark,
    };
    let shared_topic: Arc<str> = Arc::from(topic);
    for item in batch::BatchIter::new(records) {
        let Ok((pos, header)) = item else { break };
        let Some(bytes) = records.get(pos..pos + header.size()) else {
            break;
        };
        let (header, decoded) =
            batch::decode_records(bytes, MAX_UNCOMPRESSED).map_err(|e| ClientError::BadRecord {
                topic: topic.to_owned(),
                partition,
                reason: format!("fetched batch at offset {}: {e}", header.base_offset),
            })?;
        fetched.next_offset = fetched.next_offset.max(header.last_offset() + 1);
        if header.is_control() {
            continue;
        }
        let log_append_time = header.timestamp_type() == batch::TimestampType::LogAppendTime;
        fetched
            .records
            .extend(
                decoded
                    .into_iter()
                    .filter(|r| r.offset >= offset)
                    .map(|r| ConsumerRecord {
                        topic: shared_topic.clone(),
                        partition,
                        offset: r.offset,
                        timestamp: r.timestamp,
                        log_append_time,
                        key: r.key,
                        value: r.value,
                        headers: r.headers,
                    }),
            );
    }
    Ok(fetched)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn broker_addresses_parse_back() {
        assert_eq!(host_port("::1", 9092), "[::1]:9092");
        assert_eq!(host_port("kafka-0", 9092), "kafka-0:9092");
    }

    #[test]
    fn sequences_wrap_as_kafkas_do() {
        assert_eq!(next_sequence(0, 5), 5);
        assert_eq!(next_sequence(i32::MAX - 4, 5), 0);
        assert_eq!(next_sequence(i32::MAX - 1, 5), 3);
        assert_eq!(next_sequence(i32::MAX, 1), 0);
    }

    #[test]
    fn restamp_keeps_the_batch_valid() {
        let mut b = batch::BatchBuilder::new(crate::log::compression::Compression::None);
        b.push(1, Some(b"k"), Some(b"v"), &[]);
        b.push(2, None, Some(b"w"), &[]);
        let mut bytes = b.build().expect("builds");
        restamp(&mut bytes, 42, 3, 7);
        batch::verify_crc(&bytes).expect("crc recomputed");
        let h = batch::BatchHeader::parse(&bytes).expect("parses");
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (42, 3, 7)
        );
        assert_eq!(batch_record_count(&bytes), 2);
    }

    #[test]
    fn fetched_bytes_that_are_not_batches_are_no_records() {
        // A truncated batch (the fetch size cut it) and garbage both read as nothing more.
        let mut b = batch::BatchBuilder::new(crate::log::compression::Compression::None);
        b.push(1, Some(b"k"), Some(b"v"), &[]);
        let bytes = b.build().expect("builds");
        let f = decode_fetched("t", 0, 0, &bytes[..bytes.len() - 3], 5).expect("no error");
        assert!(f.records.is_empty());
        assert_eq!(f.next_offset, 0);
        let f = decode_fetched("t", 0, 0, &[0xff; 7], 5).expect("no error");
        assert!(f.records.is_empty());
        let f = decode_fetched("t", 0, 0, &bytes, 1).expect("decodes");
        assert_eq!(f.records.len(), 1);
        assert_eq!(f.next_offset, 1);
    }
}
