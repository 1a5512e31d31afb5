//! A Kafka protocol client over TCP: what the worker uses when `bootstrap.servers`
//! points at a cluster (Apache Kafka, or `tributary broker`) instead of the integrated
//! broker.
//!
//! - [`RemoteClient`]: the blocking facade, with the in-process [`Client`]'s methods
//!   and signatures (`ensure_topic`, `send`, `send_to_partition`, `fetch`, `list_offset`,
//!   `end_offsets`, `commit_offsets`, `committed_offsets`, `partition_count`,
//!   `list_topics`, `topic_overrides`, ...), plus what only a network client has (acks,
//!   replication factors, long-polling fetches, the group calls a member makes;
//!   DescribeGroups and DeleteGroups are on [`Cluster`]).
//! - [`Cluster`] (`cluster.rs`): the async core — connections, metadata and leader
//!   routing, retries within deadlines, idempotent produce, each api as an `async fn`.
//! - `conn.rs`: one connection: framing with a response size cap, pipelined requests
//!   matched by correlation id, timeouts, the ApiVersions handshake (KIP-511 fallback).
//! - `error.rs`: [`RemoteError`], carried as [`ClientError::Remote`].
//!
//! Records are encoded as RecordBatch v2 by the log's own `BatchBuilder` (so the
//! compression codecs are the log's), and fetched batches are decoded by the log's
//! decoder, with the same caps.
//!
//! **Blocking.** Every [`RemoteClient`] method blocks its thread until the cluster
//! answers (or the deadline passes): call it from a blocking thread, never from an async
//! worker. Inside, everything runs on a small runtime the client owns (one worker thread)
//! or on the runtime whose handle it was given; batches are built and compressed on the
//! calling thread.
//!
//! **Deviations from the in-process client.** `flush` cannot make a remote broker
//! fdatasync: durability is what `acks` and the cluster's replication give, so it only
//! checks the partition exists. There are no append notifications: consumers long-poll
//! with [`RemoteClient::fetch_wait`].
//!
//! What this module must not know: connectors, converters, the worker's state, or the
//! integrated broker's internals (it shares only the group coordinator's plain request
//! and answer structs, so a group member can be written once for both).

pub mod cluster;
mod conn;
mod error;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::runtime::Handle;

pub use cluster::{Cluster, FetchOptions, TopicConfig};
pub use conn::CLIENT_VERSIONS;
pub use error::{RemoteError, code_is_retriable, code_name};

use super::groups::Groups;
use super::{
    ClientError, Fetched, Produce, ProducerSettings, RecordPosition, now_ms, partitioner,
    record_size,
};
use crate::broker::group;
use crate::log::OffsetSpec;
use crate::log::batch::BatchBuilder;

/// How the client reaches and talks to the cluster (Kafka's client key names).
#[derive(Clone, Debug)]
pub struct RemoteConfig {
    /// `bootstrap.servers`: `host:port` entries.
    pub bootstrap: Vec<String>,
    /// `client.id`.
    pub client_id: String,
    /// `request.timeout.ms`: how long one request waits for its answer.
    pub request_timeout: Duration,
    /// `socket.connection.setup.timeout.ms`: TCP connect plus the ApiVersions handshake.
    pub connect_timeout: Duration,
    /// `delivery.timeout.ms` / `default.api.timeout.ms`: how long one call keeps
    /// retrying before it fails.
    pub operation_timeout: Duration,
    /// `retry.backoff.ms`, doubling up to `retry.backoff.max.ms`.
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
    /// `reconnect.backoff.ms`, doubling up to `reconnect.backoff.max.ms`.
    pub reconnect_backoff: Duration,
    pub reconnect_backoff_max: Duration,
    /// `acks`: 0, 1 or -1 (`all`).
    pub acks: i16,
    /// `enable.idempotence`: on by default with acks=all, as in Kafka 3.0+.
    pub idempotence: bool,
    /// `receive.message.max.bytes`: the largest response frame accepted.
    pub max_response_bytes: usize,
    /// `metadata.max.age.ms`: cached leaders and partition counts older than this are
    /// asked for again (errors that suggest they are stale refresh them at once).
    pub metadata_max_age: Duration,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        RemoteConfig {
            bootstrap: Vec::new(),
            client_id: "tributary".into(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(60),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
            acks: -1,
            idempotence: true,
            max_response_bytes: 100 << 20,
            metadata_max_age: Duration::from_secs(300),
        }
    }
}

impl RemoteConfig {
    /// A config for `bootstrap.servers` (comma-separated `host:port`) with the defaults.
    pub fn new(bootstrap_servers: &str) -> Result<RemoteConfig, RemoteError> {
        Ok(RemoteConfig {
            bootstrap: parse_bootstrap(bootstrap_servers)?,
            ..RemoteConfig::default()
        })
    }

    /// From Kafka client keys; other keys are ignored, bad values refused naming the key.
    pub fn from_props(props: &BTreeMap<String, String>) -> Result<RemoteConfig, RemoteError> {
        let servers = props
            .get("bootstrap.servers")
            .map(String::as_str)
            .unwrap_or("");
        let mut c = RemoteConfig::new(servers)?;
        let bad = |key: &str, value: &str, reason: &str| RemoteError::Config {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let ms = |key: &str| -> Result<Option<Duration>, RemoteError> {
            props
                .get(key)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map(Duration::from_millis)
                        .map_err(|_| bad(key, v, "expected milliseconds"))
                })
                .transpose()
        };
        if let Some(v) = props.get("client.id") {
            c.client_id = v.trim().to_owned();
        }
        if let Some(d) = ms("request.timeout.ms")? {
            c.request_timeout = d;
        }
        if let Some(d) = ms("socket.connection.setup.timeout.ms")? {
            c.connect_timeout = d;
        }
        if let Some(d) = ms("delivery.timeout.ms")? {
            c.operation_timeout = d;
        }
        if let Some(d) = ms("retry.backoff.ms")? {
            c.retry_backoff = d.max(Duration::from_millis(1));
        }
        if let Some(d) = ms("retry.backoff.max.ms")? {
            c.retry_backoff_max = d;
        }
        if let Some(d) = ms("reconnect.backoff.ms")? {
            c.reconnect_backoff = d.max(Duration::from_millis(1));
        }
        if let Some(d) = ms("reconnect.backoff.max.ms")? {
            c.reconnect_backoff_max = d;
        }
        if let Some(d) = ms("metadata.max.age.ms")? {
            c.metadata_max_age = d;
        }
        if let Some(v) = props.get("receive.message.max.bytes") {
            c.max_response_bytes = v
                .trim()
                .parse()
                .map_err(|_| bad("receive.message.max.bytes", v, "expected a number of bytes"))?;
        }
        if let Some(v) = props.get("acks") {
            c.acks = match v.trim() {
                "all" | "-1" => -1,
                "1" => 1,
                "0" => 0,
                _ => return Err(bad("acks", v, "expected 0, 1 or all")),
            };
        }
        let idempotence = props
            .get("enable.idempotence")
            .map(|v| match v.trim() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(bad("enable.idempotence", v, "expected true or false")),
            })
            .transpose()?;
        c.idempotence = match idempotence {
            Some(true) if c.acks != -1 => {
                return Err(bad(
                    "enable.idempotence",
                    "true",
                    "idempotence needs acks=all; set acks=all or enable.idempotence=false",
                ));
            }
            Some(v) => v,
            // Kafka turns the default off when acks is not all.
            None => c.acks == -1,
        };
        Ok(c)
    }
}

/// `host1:9092,host2:9092` (an optional `PLAINTEXT://` prefix is accepted).
fn parse_bootstrap(servers: &str) -> Result<Vec<String>, RemoteError> {
    let mut out = Vec::new();
    for entry in servers.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let addr = entry.split_once("://").map_or(entry, |(_, a)| a);
        let ok = addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            return Err(RemoteError::BadBootstrap {
                entry: entry.to_owned(),
            });
        }
        out.push(addr.to_owned());
    }
    if out.is_empty() {
        return Err(RemoteError::BadBootstrap {
            entry: servers.to_owned(),
        });
    }
    Ok(out)
}

/// The runtime the client's async work runs on: its own, or the caller's (nothing to
/// shut down).
#[derive(Debug)]
enum Runtime {
    Owned(Option<tokio::runtime::Runtime>),
    Shared,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Dropping a runtime may happen on an async thread (the last clone of the
        // client dropped in a task): shut down without blocking.
        if let Runtime::Owned(rt) = self
            && let Some(rt) = rt.take()
        {
            rt.shutdown_background();
        }
    }
}

#[derive(Debug)]
struct Inner {
    cluster: Arc<Cluster>,
    handle: Handle,
    /// Keeps an owned runtime alive (declared last: dropped after the cluster's tasks).
    _runtime: Runtime,
    /// Sticky partition for keyless records, moved on after each call.
    sticky: AtomicUsize,
}

/// A blocking client of a remote Kafka cluster. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RemoteClient {
    inner: Arc<Inner>,
}

impl RemoteClient {
    /// Connect with a runtime of its own (one worker thread), and fetch the cluster's
    /// metadata once: an unreachable `bootstrap.servers` fails here, naming it.
    pub fn connect(config: RemoteConfig) -> Result<RemoteClient, ClientError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tributary-remote")
            .enable_all()
            .build()
            .map_err(|e| ClientError::Remote(RemoteError::Runtime(e.to_string())))?;
        let handle = rt.handle().clone();
        RemoteClient::start(config, handle, Runtime::Owned(Some(rt)))
    }

    /// Connect, running the async work on `runtime` (which must have IO and time enabled).
    pub fn connect_on(config: RemoteConfig, runtime: Handle) -> Result<RemoteClient, ClientError> {
        RemoteClient::start(config, runtime, Runtime::Shared)
    }

    fn start(
        config: RemoteConfig,
        handle: Handle,
        runtime: Runtime,
    ) -> Result<RemoteClient, ClientError> {
        let timeout = config.operation_timeout;
        let cluster = Arc::new(Cluster::new(config));
        let client = RemoteClient {
            inner: Arc::new(Inner {
                cluster,
                handle,
                _runtime: runtime,
                sticky: AtomicUsize::new(0),
            }),
        };
        let c = client.cluster().clone();
        client.block_on(async move { c.bootstrap(c.deadline(timeout)).await })?;
        Ok(client)
    }

    /// The async core, for callers that run on the runtime (a group member's
    /// heartbeats).
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.inner.cluster
    }

    /// The runtime the client's async work runs on.
    pub fn runtime(&self) -> &Handle {
        &self.inner.handle
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.inner.handle.block_on(f)
    }

    fn op_deadline(&self) -> tokio::time::Instant {
        self.cluster()
            .deadline(self.cluster().config().operation_timeout)
    }

    /// The brokers the cluster reported at the last metadata refresh.
    pub fn brokers(&self) -> Vec<(i32, String)> {
        self.cluster().brokers()
    }

    /// The cluster's id (as Kafka Connect's `GET /` reports it), once metadata is known.
    pub fn cluster_id(&self) -> Option<String> {
        self.cluster().cluster_id()
    }

    /// The number of partitions of `topic`, or `None` if it does not exist (or the
    /// cluster cannot be reached: logged; see [`RemoteClient::try_partition_count`]).
    pub fn partition_count(&self, topic: &str) -> Option<i32> {
        match self.try_partition_count(topic) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(%topic, error = %e, "cannot read the partition count");
                None
            }
        }
    }

    /// The number of partitions of `topic` (`None`: it does not exist).
    pub fn try_partition_count(&self, topic: &str) -> Result<Option<i32>, ClientError> {
        let d = self.op_deadline();
        self.block_on(self.cluster().partition_count(topic, false, d))
    }

    /// Every topic's name (empty if the cluster cannot be reached: logged; see
    /// [`RemoteClient::try_list_topics`]).
    pub fn list_topics(&self) -> Vec<String> {
        self.try_list_topics().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list topics");
            Vec::new()
        })
    }

    pub fn try_list_topics(&self) -> Result<Vec<String>, ClientError> {
        let d = self.op_deadline();
        self.block_on(self.cluster().list_topics(d))
    }

    /// Every config of a topic, as DescribeConfigs reports them.
    pub fn describe_topic_configs(&self, topic: &str) -> Result<Vec<TopicConfig>, ClientError> {
        let d = self.op_deadline();
        self.block_on(self.cluster().describe_topic_configs(topic, d))
    }

    /// A topic's explicit config overrides (Kafka's DYNAMIC_TOPIC_CONFIG source).
    pub fn topic_overrides(&self, topic: &str) -> Result<BTreeMap<String, String>, ClientError> {
        Ok(self
            .describe_topic_configs(topic)?
            .into_iter()
            .filter(|c| c.source == 1)
            .filter_map(|c| c.value.map(|v| (c.name, v)))
            .collect())
    }

    /// Create `topic` unless it exists; answers its partition count and whether this
    /// call created it. `partitions: None` uses the cluster's `num.partitions`, and the
    /// replication factor is the cluster's default.
    pub fn ensure_topic(
        &self,
        topic: &str,
        partitions: Option<i32>,
        configs: BTreeMap<String, String>,
    ) -> Result<(i32, bool), ClientError> {
        if let Some(n) = self.try_partition_count(topic)? {
            return Ok((n, false));
        }
        self.create_topic(topic, partitions, None, &configs)
    }

    /// Create `topic` with these settings (`None`: the cluster's defaults); an existing
    /// topic answers `(its partition count, false)`.
    pub fn create_topic(
        &self,
        topic: &str,
        partitions: Option<i32>,
        replication_factor: Option<i16>,
        configs: &BTreeMap<String, String>,
    ) -> Result<(i32, bool), ClientError> {
        let d = self.op_deadline();
        self.block_on(self.cluster().create_topic(
            topic,
            partitions,
            replication_factor,
            configs,
            d,
        ))
    }

    /// Produce `records` (all for `topic`/`partition`) as batches of at most
    /// `settings.batch_size` bytes, acknowledged per the client's `acks`. Answers the
    /// offset of the first record (-1 with acks=0).
    pub fn send_to_partition<R: Produce>(
        &self,
        topic: &str,
        partition: i32,
        records: &[&R],
        settings: &ProducerSettings,
    ) -> Result<i64, ClientError> {
        let batches = build_batches(topic, partition, records, settings, now_ms())?;
        let d = self.op_deadline();
        self.block_on(self.cluster().produce(topic, partition, batches, d))
    }

    /// Produce records to their topics: each goes to its own partition, or where
    /// Kafka's default partitioner puts it (murmur2 of the key; keyless records stick
    /// to one partition per call). A missing topic is auto-created if the cluster allows
    /// it. Partitions are produced to concurrently. Answers each record's position, in
    /// order (offsets -1 with acks=0).
    pub fn send<R: Produce>(
        &self,
        records: &[R],
        settings: &ProducerSettings,
    ) -> Result<Vec<RecordPosition>, ClientError> {
        let sticky = self.inner.sticky.fetch_add(1, Ordering::Relaxed);
        let d = self.op_deadline();
        let cluster = self.cluster().clone();
        let mut counts: Vec<(&str, i32)> = Vec::new();
        let mut groups: Vec<((&str, i32), Vec<usize>)> = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let topic = r.topic();
            let n = match counts.iter().find(|(t, _)| *t == topic) {
                Some((_, n)) => *n,
                None => {
                    let n = self
                        .block_on(cluster.cached_partition_count(topic, true, d))?
                        .ok_or_else(|| ClientError::UnknownTopic(topic.to_owned()))?;
                    counts.push((topic, n));
                    n
                }
            };
            let p = match (r.partition(), r.key()) {
                (Some(p), _) => p,
                (None, Some(key)) => partitioner::partition_for_key(key, n),
                (None, None) => (sticky % n.max(1) as usize) as i32,
            };
            match groups.iter_mut().find(|(k, _)| *k == (topic, p)) {
                Some((_, idx)) => idx.push(i),
                None => groups.push(((topic, p), vec![i])),
            }
        }
        groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let now = now_ms();
        let mut tasks = tokio::task::JoinSet::new();
        for (g, ((topic, partition), idx)) in groups.iter().enumerate() {
            let batch: Vec<&R> = idx.iter().map(|&i| &records[i]).collect();
            let batches = build_batches(topic, *partition, &batch, settings, now)?;
            let c = cluster.clone();
            let (t, p) = (topic.to_string(), *partition);
            tasks.spawn_on(
                async move { (g, c.produce(&t, p, batches, d).await) },
                self.runtime(),
            );
        }
        let mut bases: Vec<Result<i64, ClientError>> = (0..groups.len()).map(|_| Ok(-1)).collect();
        self.block_on(async {
            while let Some(done) = tasks.join_next().await {
                match done {
                    Ok((g, r)) => bases[g] = r,
                    Err(e) => {
                        return Err(ClientError::Remote(RemoteError::Runtime(format!(
                            "a produce task failed: {e}"
                        ))));
                    }
                }
            }
            Ok(())
        })?;
        let mut out = vec![
            RecordPosition {
                partition: -1,
                offset: -1,
                timestamp: -1,
            };
            records.len()
        ];
        for (((_, partition), idx), base) in groups.iter().zip(bases) {
            let base = base?;
            for (k, &i) in idx.iter().enumerate() {
                out[i] = RecordPosition {
                    partition: *partition,
                    offset: if base < 0 { -1 } else { base + k as i64 },
                    timestamp: records[i].timestamp().unwrap_or(now),
                };
            }
        }
        Ok(out)
    }

    /// Read records of `topic`/`partition` from `offset` (whole batches of at most
    /// about `max_bytes`, at least one), without waiting for new ones.
    pub fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Fetched, ClientError> {
        let bytes = i32::try_from(max_bytes).unwrap_or(i32::MAX);
        let options = FetchOptions {
            max_wait: Duration::ZERO,
            min_bytes: 0,
            max_bytes: bytes,
            partition_max_bytes: bytes,
        };
        self.fetch_wait(topic, partition, offset, &options)
    }

    /// Read records, letting the broker wait up to `options.max_wait` for
    /// `options.min_bytes` (a long poll).
    pub fn fetch_wait(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        options: &FetchOptions,
    ) -> Result<Fetched, ClientError> {
        let d = self.op_deadline();
        self.block_on(self.cluster().fetch(topic, partition, offset, options, d))
    }

    /// Durability on a remote cluster is what `acks` and replication give; there is no
    /// remote fdatasync. Checks that the partition exists.
    pub fn flush(&self, topic: &str, partition: i32) -> Result<(), ClientError> {
        match self.try_partition_count(topic)? {
            None => Err(ClientError::UnknownTopic(topic.to_owned())),
            Some(n) if partition < 0 || partition >= n => Err(ClientError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
            }),
            Some(_) => Ok(()),
        }
    }

    /// The earliest or latest offset of a partition, or the first offset at or after a
    /// timestamp (the high watermark if none).
    pub fn list_offset(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<i64, ClientError> {
        let d = self.op_deadline();
        let v = self.block_on(self.cluster().list_offsets(topic, &[(partition, spec)], d))?;
        Ok(v.first().copied().unwrap_or(-1))
    }

    /// The high watermark of every partition of `topic`, in partition order.
    pub fn end_offsets(&self, topic: &str) -> Result<Vec<i64>, ClientError> {
        let n = self
            .try_partition_count(topic)?
            .ok_or_else(|| ClientError::UnknownTopic(topic.to_owned()))?;
        let wanted: Vec<(i32, OffsetSpec)> = (0..n).map(|p| (p, OffsetSpec::Latest)).collect();
        let d = self.op_deadline();
        self.block_on(self.cluster().list_offsets(topic, &wanted, d))
    }

    /// Commit `offsets` (next offset to consume, per topic and partition) for
    /// `group_id` as member `member_id` of `generation` (-1 and "" outside group
    /// management).
    pub fn commit_offsets(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        offsets: &BTreeMap<(String, i32), i64>,
    ) -> Result<(), ClientError> {
        let groups = Groups::Remote(self.cluster().clone());
        self.block_on(groups.commit(group_id, generation, member_id, offsets))
    }

    /// The committed offsets of `group_id` for these partitions (those without one
    /// are left out).
    pub fn committed_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<BTreeMap<(String, i32), i64>, ClientError> {
        let groups = Groups::Remote(self.cluster().clone());
        self.block_on(groups.committed(group_id, partitions))
    }

    /// JoinGroup (any protocol type; MEMBER_ID_REQUIRED is handled inside). Blocks for
    /// the rebalance.
    pub fn join_group(
        &self,
        req: &group::JoinGroupRequest,
    ) -> Result<group::JoinGroupResponse, ClientError> {
        self.block_on(self.cluster().join_group(req))
    }

    /// SyncGroup: the leader sends every member's assignment; each gets its own.
    pub fn sync_group(
        &self,
        req: &group::SyncGroupRequest,
    ) -> Result<group::SyncGroupResponse, ClientError> {
        self.block_on(self.cluster().sync_group(req))
    }

    /// Heartbeat: the coordinator's error code (0, or REBALANCE_IN_PROGRESS to rejoin).
    pub fn heartbeat(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
    ) -> Result<i16, ClientError> {
        self.block_on(
            self.cluster()
                .heartbeat(group_id, generation_id, member_id, None),
        )
    }

    /// LeaveGroup for one member: its error code.
    pub fn leave_group(&self, group_id: &str, member_id: &str) -> Result<i16, ClientError> {
        let (code, members) = self.block_on(
            self.cluster()
                .leave_group(group_id, &[(member_id.to_owned(), None)]),
        )?;
        Ok(if code != 0 {
            code
        } else {
            members.first().map_or(0, |m| m.2)
        })
    }
}

/// The batches for one partition's records, cut at `settings.batch_size`, built and
/// compressed on the calling thread (without producer fields: the cluster stamps them).
fn build_batches<R: Produce>(
    topic: &str,
    partition: i32,
    records: &[&R],
    settings: &ProducerSettings,
    now: i64,
) -> Result<Vec<Vec<u8>>, ClientError> {
    let mut out = Vec::new();
    let mut rest = records;
    while !rest.is_empty() {
        let mut builder = BatchBuilder::new(settings.compression);
        let mut taken = 0;
        for r in rest {
            if taken > 0 && builder.size_estimate() + record_size(*r) > settings.batch_size {
                break;
            }
            builder.push(
                r.timestamp().unwrap_or(now),
                r.key(),
                r.value(),
                r.headers(),
            );
            taken += 1;
        }
        out.push(builder.build().map_err(|e| ClientError::BadRecord {
            topic: topic.to_owned(),
            partition,
            reason: e.to_string(),
        })?);
        rest = &rest[taken..];
    }
    Ok(out)
}
