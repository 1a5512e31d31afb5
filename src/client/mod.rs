//! The client layer: what the worker uses to reach topics, whichever broker holds them.
//!
//! - [`Client`]: create and describe topics, produce batches of records to partitions
//!   (Kafka's default partitioner decides where a record without a partition goes),
//!   fetch records, read offsets, and the group calls a consumer makes.
//! - [`consumer`]: [`GroupConsumer`], a consumer in a consumer group (Kafka's classic
//!   protocol, `consumer` protocol type, range assignment), as a sink task uses one.
//! - [`partitioner`]: Kafka's murmur2 partitioner, so a key lands in the same partition
//!   whichever client wrote it.
//!
//! Today the client talks to the integrated broker in-process (no network hop): appends
//! go straight to the partition's log and wake the broker's long-polling fetches;
//! group calls go straight to its coordinator.
//!
//! **Blocking.** Every method blocks (an append may wait for an fdatasync, a join for a
//! rebalance): call them from a blocking thread (`spawn_blocking` or a task's own
//! thread), never from an async worker. Group calls run on the runtime whose handle
//! the client was built with.
//!
//! What this module must not know: connectors, converters, or the worker's state.

pub mod consumer;
pub mod groups;
pub mod partitioner;
pub mod remote;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::runtime::Handle;

use crate::broker::BrokerError;
use crate::broker::server::Broker;
use crate::log::batch::{self, BatchBuilder};
use crate::log::compression::Compression;
use crate::log::{LogError, OffsetSpec};

pub use crate::log::batch::Header;
pub use consumer::{ConsumerSettings, GroupConsumer, PollResult, Subscription};

/// What went wrong talking to the broker.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("topic {0:?} does not exist; create it or enable topic auto-creation")]
    UnknownTopic(String),
    #[error("topic {topic:?} has no partition {partition}")]
    UnknownPartition { topic: String, partition: i32 },
    #[error(
        "offset {offset} is out of range for {topic}-{partition} (log start {log_start_offset}); \
         reset the consumer's offset"
    )]
    OffsetOutOfRange {
        topic: String,
        partition: i32,
        offset: i64,
        log_start_offset: i64,
    },
    #[error("record batch for {topic}-{partition} cannot be built: {reason}")]
    BadRecord {
        topic: String,
        partition: i32,
        reason: String,
    },
    #[error("group {group}: {call} failed with Kafka error code {code} ({name})")]
    Group {
        group: String,
        call: &'static str,
        code: i16,
        name: &'static str,
    },
    #[error("the broker is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// Talking to a remote cluster over the network ([`remote`]).
    #[error(transparent)]
    Remote(#[from] remote::RemoteError),
}

impl ClientError {
    /// Whether the same call may succeed later (Kafka's retriable errors).
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Group { code, .. } => retriable_code(*code),
            ClientError::Remote(e) => e.is_retriable(),
            _ => false,
        }
    }
}

/// COORDINATOR_LOAD_IN_PROGRESS (14), the coordinator moving, a rebalance under way.
fn retriable_code(code: i16) -> bool {
    use crate::broker::group::codes::*;
    matches!(
        code,
        14 | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR | REBALANCE_IN_PROGRESS
    )
}

impl From<LogError> for ClientError {
    fn from(e: LogError) -> Self {
        ClientError::Broker(BrokerError::Log(e))
    }
}

/// A record to produce. `partition: None` lets the partitioner choose.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
    /// Milliseconds since the epoch; `None` means now.
    pub timestamp: Option<i64>,
}

/// What a producer needs of a record: [`ProducerRecord`] owns its parts,
/// [`ProducerRecordRef`] borrows them (a converted source record whose value still points
/// into the plugin's polled batch), and the client copies each exactly once, into the log
/// batch.
pub trait Produce {
    fn topic(&self) -> &str;
    /// `None` lets the partitioner choose.
    fn partition(&self) -> Option<i32>;
    fn key(&self) -> Option<&[u8]>;
    fn value(&self) -> Option<&[u8]>;
    fn headers(&self) -> &[Header];
    /// Milliseconds since the epoch; `None` means now.
    fn timestamp(&self) -> Option<i64>;
}

impl Produce for ProducerRecord {
    fn topic(&self) -> &str {
        &self.topic
    }
    fn partition(&self) -> Option<i32> {
        self.partition
    }
    fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }
    fn value(&self) -> Option<&[u8]> {
        self.value.as_deref()
    }
    fn headers(&self) -> &[Header] {
        &self.headers
    }
    fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }
}

/// A record to produce whose parts are borrowed where they can be.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerRecordRef<'a> {
    pub topic: &'a str,
    pub partition: Option<i32>,
    pub key: Option<std::borrow::Cow<'a, [u8]>>,
    pub value: Option<std::borrow::Cow<'a, [u8]>>,
    pub headers: Vec<Header>,
    pub timestamp: Option<i64>,
}

impl Produce for ProducerRecordRef<'_> {
    fn topic(&self) -> &str {
        self.topic
    }
    fn partition(&self) -> Option<i32> {
        self.partition
    }
    fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }
    fn value(&self) -> Option<&[u8]> {
        self.value.as_deref()
    }
    fn headers(&self) -> &[Header] {
        &self.headers
    }
    fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }
}

/// Where a produced record was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordPosition {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
}

/// A record read from a partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Shared by the records of one fetch (one allocation per fetch, not per record).
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    /// True when the broker stamped the time (LogAppendTime).
    pub log_append_time: bool,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

/// What one fetch from one partition found.
#[derive(Debug, Default)]
pub struct Fetched {
    pub records: Vec<ConsumerRecord>,
    /// The offset to fetch next.
    pub next_offset: i64,
    pub high_watermark: i64,
}

/// How a producer builds its batches (the `producer.*` settings that matter in-process).
#[derive(Clone, Debug)]
pub struct ProducerSettings {
    /// `compression.type`.
    pub compression: Compression,
    /// `batch.size`: a batch is cut before it grows past this many bytes.
    pub batch_size: usize,
}

impl Default for ProducerSettings {
    fn default() -> Self {
        ProducerSettings {
            compression: Compression::None,
            batch_size: 16384,
        }
    }
}

impl ProducerSettings {
    /// From Kafka producer keys (`compression.type`, `batch.size`); other keys are
    /// accepted and ignored here (acks, linger.ms: an in-process append is acknowledged
    /// when it is in the log under the topic's flush policy).
    pub fn from_props(props: &BTreeMap<String, String>) -> Result<ProducerSettings, String> {
        let mut s = ProducerSettings::default();
        if let Some(v) = props.get("compression.type") {
            s.compression = match v.trim() {
                "none" => Compression::None,
                other => Compression::from_name(other).ok_or_else(|| {
                    format!("compression.type={other:?}: expected none, gzip, snappy, lz4 or zstd")
                })?,
            };
        }
        if let Some(v) = props.get("batch.size") {
            s.batch_size = v
                .trim()
                .parse::<usize>()
                .map_err(|_| format!("batch.size={v:?}: expected a number of bytes"))?
                .max(1);
        }
        Ok(s)
    }
}

/// A handle on the integrated broker for in-process clients. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    runtime: Handle,
    /// Sticky partition per topic for keyless records, moved on after each batch.
    sticky: AtomicUsize,
}

/// Which broker a [`Client`] talks to.
#[derive(Debug)]
enum Backend {
    /// The integrated broker, in-process.
    Embedded(Arc<Broker>),
    /// A Kafka cluster over the network (`bootstrap.servers`).
    Remote(remote::RemoteClient),
}

impl Client {
    /// A client of `broker`, making group calls on `runtime`.
    pub fn embedded(broker: Arc<Broker>, runtime: Handle) -> Client {
        Client {
            inner: Arc::new(Inner {
                backend: Backend::Embedded(broker),
                runtime,
                sticky: AtomicUsize::new(0),
            }),
        }
    }

    /// A client of a Kafka cluster, through `remote` (its runtime makes the calls).
    pub fn remote(remote: remote::RemoteClient) -> Client {
        let runtime = remote.runtime().clone();
        Client {
            inner: Arc::new(Inner {
                backend: Backend::Remote(remote),
                runtime,
                sticky: AtomicUsize::new(0),
            }),
        }
    }

    /// The integrated broker, or the remote client to hand the call to.
    fn local(&self) -> Result<&Arc<Broker>, &remote::RemoteClient> {
        match &self.inner.backend {
            Backend::Embedded(b) => Ok(b),
            Backend::Remote(r) => Err(r),
        }
    }

    /// Whether this client talks to a cluster over the network.
    pub fn is_remote(&self) -> bool {
        self.local().is_err()
    }

    /// The group calls of this client's broker or cluster.
    pub fn groups(&self) -> groups::Groups {
        match &self.inner.backend {
            Backend::Embedded(b) => groups::Groups::Embedded(b.groups.clone()),
            Backend::Remote(r) => groups::Groups::Remote(r.cluster().clone()),
        }
    }

    /// The runtime group calls are made on.
    pub fn runtime(&self) -> &Handle {
        &self.inner.runtime
    }

    /// The number of partitions of `topic`, or `None` if it does not exist.
    pub fn partition_count(&self, topic: &str) -> Option<i32> {
        let broker = match self.local() {
            Ok(b) => b,
            Err(r) => return r.partition_count(topic),
        };
        broker
            .store
            .describe_topic(topic)
            .ok()
            .map(|d| d.partitions.len() as i32)
    }

    /// Every topic's name.
    pub fn list_topics(&self) -> Vec<String> {
        let broker = match self.local() {
            Ok(b) => b,
            Err(r) => return r.list_topics(),
        };
        broker.store.list_topics()
    }

    /// A topic's explicit config overrides.
    pub fn topic_overrides(&self, topic: &str) -> Result<BTreeMap<String, String>, ClientError> {
        let broker = match self.local() {
            Ok(b) => b,
            Err(r) => return r.topic_overrides(topic),
        };
        match broker.store.describe_topic(topic) {
            Ok(d) => Ok(d.overrides),
            Err(BrokerError::UnknownTopic(t)) => Err(ClientError::UnknownTopic(t)),
            Err(e) => Err(e.into()),
        }
    }

    /// Create `topic` unless it exists; answers its partition count and whether this
    /// call created it. `partitions: None` uses the broker's `num.partitions`.
    pub fn ensure_topic(
        &self,
        topic: &str,
        partitions: Option<i32>,
        configs: BTreeMap<String, String>,
    ) -> Result<(i32, bool), ClientError> {
        self.ensure_topic_replicated(topic, partitions, None, configs)
    }

    /// [`Client::ensure_topic`] with a replication factor for a cluster (`None`: the
    /// cluster's default; the integrated broker has one replica whatever is asked).
    pub fn ensure_topic_replicated(
        &self,
        topic: &str,
        partitions: Option<i32>,
        replication_factor: Option<i16>,
        configs: BTreeMap<String, String>,
    ) -> Result<(i32, bool), ClientError> {
        let broker = match self.local() {
            Ok(b) => b,
            Err(r) => {
                if let Some(n) = r.try_partition_count(topic)? {
                    return Ok((n, false));
                }
                return r.create_topic(topic, partitions, replication_factor, &configs);
            }
        };
        if let Some(n) = self.partition_count(topic) {
            return Ok((n, false));
        }
        match broker.store.create_topic(topic, partitions, configs) {
            Ok(d) => Ok((d.partitions.len() as i32, true)),
            Err(BrokerError::TopicExists(_)) => Ok((
                self.partition_count(topic)
                    .ok_or_else(|| ClientError::UnknownTopic(topic.to_owned()))?,
                false,
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Append `records` (all for `topic`/`partition`) as batches of at most
    /// `settings.batch_size` bytes. Answers the offset of the first record. Returns
    /// once the batches are in the log under the topic's flush policy.
    pub fn send_to_partition<R: Produce>(
        &self,
        topic: &str,
        partition: i32,
        records: &[&R],
        settings: &ProducerSettings,
    ) -> Result<i64, ClientError> {
        let broker = match self.local() {
            Ok(b) => b,
            Err(r) => return r.send_to_partition(topic, partition, records, settings),
        };
        let log = broker.store.partition(topic, partition).ok_or_else(|| {
            match self.partition_count(topic) {
                None => ClientError::UnknownTopic(topic.to_owned()),
                Some(_) => ClientError::UnknownPartition {
                    topic: topic.to_owned(),
                    partition,
                },
            }
        })?;
        let now = now_ms();
        // Batches of at most batch.size bytes, as a producer sends them, appended together
        // (one write, headers read but not re-validated: they were built right here).
        let mut built = Vec::new();
        let mut rest = records;
        while !rest.is_empty() {
            // Sized for what goes in (up to batch.size), so the buffer never grows by copying.
            let mut want = 0;
            for r in rest {
                want += record_size(*r);
                if want >= settings.batch_size {
                    break;
                }
            }
            let mut builder = BatchBuilder::with_capacity(settings.compression, want);
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
            built.push(builder.build().map_err(|e| ClientError::BadRecord {
                topic: topic.to_owned(),
                partition,
                reason: e.to_string(),
            })?);
            rest = &rest[taken..];
        }
        if built.is_empty() {
            return Ok(log.log_end_offset());
        }
        let info = log.append_built(&built)?;
        broker.notify_appended();
        Ok(info.base_offset)
    }

    /// Produce records to their topics: each goes to its own partition, or where
    /// Kafka's default partitioner puts it (murmur2 of the key; keyless records stick
    /// to one partition per call). A missing topic is created with the broker's
    /// defaults if the broker has `auto.create.topics.enable`. Answers each record's
    /// position, in order.
    pub fn send<R: Produce>(
        &self,
        records: &[R],
        settings: &ProducerSettings,
    ) -> Result<Vec<RecordPosition>, ClientError> {
        let broker = match self.local() {
            Ok(b) => b,
            Err(r) => return r.send(records, settings),
        };
        let sticky = self.inner.sticky.fetch_add(1, Ordering::Relaxed);
        // Per batch, not per record: the topics and partitions of a batch are few, so
        // they are found by comparing with the ones seen so far (usually one).
        let mut counts: Vec<(&str, i32)> = Vec::new();
        let mut groups: Vec<((&str, i32), Vec<usize>)> = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let topic = r.topic();
            let n = match counts.iter().find(|(t, _)| *t == topic) {
                Some((_, n)) => *n,
                None => {
                    let n = match self.partition_count(topic) {
                        Some(n) => n,
                        // As a Kafka broker with auto.create.topics.enable does on a
                        // produce to a missing topic: create it with the defaults.
                        None if broker.config.auto_create_topics => {
                            self.ensure_topic(topic, None, BTreeMap::new())?.0
                        }
                        None => return Err(ClientError::UnknownTopic(topic.to_owned())),
                    };
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
        // In a fixed order (as before: by topic, then partition), whatever the records'.
        groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut out = vec![
            RecordPosition {
                partition: -1,
                offset: -1,
                timestamp: -1,
            };
            records.len()
        ];
        let now = now_ms();
        for ((topic, partition), idx) in groups {
            let batch: Vec<&R> = idx.iter().map(|&i| &records[i]).collect();
            let base = self.send_to_partition(topic, partition, &batch, settings)?;
            for (k, &i) in idx.iter().enumerate() {
                out[i] = RecordPosition {
                    partition,
                    offset: base + k as i64,
                    timestamp: records[i].timestamp().unwrap_or(now),
                };
            }
        }
        Ok(out)
    }

    /// Read records of `topic`/`partition` from `offset` (whole batches of at most
    /// about `max_bytes`, at least one), skipping records before `offset` and control
    /// records. Never reads past the high watermark.
    pub fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Fetched, ClientError> {
        let broker = match self.local() {
            Ok(b) => b,
            Err(r) => return r.fetch(topic, partition, offset, max_bytes),
        };
        let log = broker.store.partition(topic, partition).ok_or_else(|| {
            ClientError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
            }
        })?;
        let read = match log.read(offset, max_bytes, true) {
            Ok(r) => r,
            Err(LogError::OffsetOutOfRange {
                log_start_offset, ..
            }) => {
                return Err(ClientError::OffsetOutOfRange {
                    topic: topic.to_owned(),
                    partition,
                    offset,
                    log_start_offset,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let mut fetched = Fetched {
            records: Vec::new(),
            next_offset: offset,
            high_watermark: read.high_watermark,
        };
        let shared_topic: Arc<str> = Arc::from(topic);
        for item in batch::BatchIter::new(&read.records) {
            let Ok((pos, header)) = item else { break };
            let bytes = read.records.slice(pos..pos + header.size());
            let (header, records) = batch::decode_shared_records(&bytes, MAX_UNCOMPRESSED)
                .map_err(|e| ClientError::BadRecord {
                    topic: topic.to_owned(),
                    partition,
                    reason: format!("stored batch at offset {}: {e}", header.base_offset),
                })?;
            fetched.next_offset = fetched.next_offset.max(header.last_offset() + 1);
            if header.is_control() {
                continue;
            }
            let log_append_time = header.timestamp_type() == batch::TimestampType::LogAppendTime;
            fetched.records.reserve(records.len());
            fetched
                .records
                .extend(records.into_iter().filter(|r| r.offset >= offset).map(|r| {
                    ConsumerRecord {
                        topic: shared_topic.clone(),
                        partition,
                        offset: r.offset,
                        timestamp: r.timestamp,
                        log_append_time,
                        key: r.key,
                        value: r.value,
                        headers: r.headers,
                    }
                }));
        }
        Ok(fetched)
    }

    /// Make everything appended to `topic`/`partition` so far durable (fdatasync),
    /// whatever the topic's flush policy.
    pub fn flush(&self, topic: &str, partition: i32) -> Result<(), ClientError> {
        let broker = match self.local() {
            Ok(b) => b,
            Err(r) => return r.flush(topic, partition),
        };
        let log = broker.store.partition(topic, partition).ok_or_else(|| {
            ClientError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
            }
        })?;
        log.flush()?;
        Ok(())
    }

    /// The earliest or latest offset of a partition (`OffsetSpec::Earliest` /
    /// `Latest`), or the first offset at or after a timestamp.
    pub fn list_offset(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<i64, ClientError> {
        let broker = match self.local() {
            Ok(b) => b,
            Err(r) => return r.list_offset(topic, partition, spec),
        };
        let log = broker.store.partition(topic, partition).ok_or_else(|| {
            ClientError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
            }
        })?;
        Ok(match log.list_offset(spec)? {
            Some((offset, _)) => offset,
            None => log.high_watermark(),
        })
    }

    /// The high watermark of every partition of `topic`, in partition order.
    pub fn end_offsets(&self, topic: &str) -> Result<Vec<i64>, ClientError> {
        if let Err(r) = self.local() {
            return r.end_offsets(topic);
        }
        let n = self
            .partition_count(topic)
            .ok_or_else(|| ClientError::UnknownTopic(topic.to_owned()))?;
        (0..n)
            .map(|p| self.list_offset(topic, p, OffsetSpec::Latest))
            .collect()
    }

    /// Wait until something is appended anywhere, or `timeout` passes.
    pub fn wait_for_appends(
        &self,
        since: &mut tokio::sync::watch::Receiver<u64>,
        timeout: Duration,
    ) {
        let deadline = Instant::now() + timeout;
        let _ = self
            .inner
            .runtime
            .block_on(async { tokio::time::timeout_at(deadline.into(), since.changed()).await });
    }

    /// A receiver that changes after every append (see [`Client::wait_for_appends`]);
    /// `None` for a remote cluster, whose appends are not seen (long-poll fetches
    /// instead).
    pub fn subscribe_appends(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.local().ok().map(|b| b.subscribe_appends())
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
        let groups = self.groups();
        self.inner
            .runtime
            .block_on(groups.commit(group_id, generation, member_id, offsets))
    }

    /// The committed offsets of `group_id` for these partitions (those without one
    /// are left out).
    pub fn committed_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<BTreeMap<(String, i32), i64>, ClientError> {
        let groups = self.groups();
        self.inner
            .runtime
            .block_on(groups.committed(group_id, partitions))
    }
}

/// Decompressed batches larger than this are refused (as the broker refuses them).
const MAX_UNCOMPRESSED: usize = 64 << 20;

fn record_size<R: Produce>(r: &R) -> usize {
    21 + r.key().map_or(0, |k| k.len())
        + r.value().map_or(0, |v| v.len())
        + r.headers()
            .iter()
            .map(|h| 10 + h.key.len() + h.value.as_ref().map_or(0, |v| v.len()))
            .sum::<usize>()
}

pub(crate) fn group_error(group: &str, call: &'static str, code: i16) -> ClientError {
    ClientError::Group {
        group: group.to_owned(),
        call,
        code,
        name: code_name(code),
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The Kafka name of a group error code, for messages.
fn code_name(code: i16) -> &'static str {
    use crate::broker::group::codes::*;
    match code {
        UNKNOWN_SERVER_ERROR => "UNKNOWN_SERVER_ERROR",
        UNKNOWN_TOPIC_OR_PARTITION => "UNKNOWN_TOPIC_OR_PARTITION",
        OFFSET_METADATA_TOO_LARGE => "OFFSET_METADATA_TOO_LARGE",
        COORDINATOR_NOT_AVAILABLE => "COORDINATOR_NOT_AVAILABLE",
        NOT_COORDINATOR => "NOT_COORDINATOR",
        ILLEGAL_GENERATION => "ILLEGAL_GENERATION",
        INCONSISTENT_GROUP_PROTOCOL => "INCONSISTENT_GROUP_PROTOCOL",
        INVALID_GROUP_ID => "INVALID_GROUP_ID",
        UNKNOWN_MEMBER_ID => "UNKNOWN_MEMBER_ID",
        INVALID_SESSION_TIMEOUT => "INVALID_SESSION_TIMEOUT",
        REBALANCE_IN_PROGRESS => "REBALANCE_IN_PROGRESS",
        INVALID_COMMIT_OFFSET_SIZE => "INVALID_COMMIT_OFFSET_SIZE",
        INVALID_REQUEST => "INVALID_REQUEST",
        NON_EMPTY_GROUP => "NON_EMPTY_GROUP",
        GROUP_ID_NOT_FOUND => "GROUP_ID_NOT_FOUND",
        MEMBER_ID_REQUIRED => "MEMBER_ID_REQUIRED",
        GROUP_MAX_SIZE_REACHED => "GROUP_MAX_SIZE_REACHED",
        FENCED_INSTANCE_ID => "FENCED_INSTANCE_ID",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests;
