//! What each request means: Kafka's semantics on top of the topic store.
//!
//! Every handler takes a decoded request and returns the response body; `handle`
//! encodes it. Partition-level failures are error codes in the response, as Kafka
//! answers them; only a request that cannot be answered at all closes the connection.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, BrokerId, CreatePartitionsRequest,
    CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse, FetchRequest,
    FetchResponse, FindCoordinatorRequest, FindCoordinatorResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, InitProducerIdRequest, InitProducerIdResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, ProducerId, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{Broker, NODE_ID, groups};
use crate::broker::BrokerError;
use crate::broker::producer::SequenceCheck;
use crate::log::batch::{BatchHeader, BatchIter, NO_PRODUCER_ID};
use crate::log::config::{ConfigType, KEYS};
use crate::log::{LogError, OffsetSpec};
use crate::protocol::ProtocolError;
use crate::protocol::codec::{self, DecodedRequest};

pub(super) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// The answer to a request that could not be decoded, when there is one: an
/// `UNSUPPORTED_VERSION` ApiVersions answer (KIP-511). Anything else closes the
/// connection, since the response body of an undecodable request cannot be built.
pub(super) fn error_response(err: &ProtocolError) -> Option<Bytes> {
    match err {
        ProtocolError::UnsupportedVersion {
            api_key: ApiKey::ApiVersions,
            correlation_id,
            ..
        } => codec::api_versions_unsupported_response(*correlation_id, codec::SUPPORTED).ok(),
        _ => None,
    }
}

/// Run blocking work off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Answer one request; `None` when the protocol wants no response (Produce with acks=0).
pub(super) async fn handle(
    broker: &Arc<Broker>,
    req: DecodedRequest,
    client_host: &str,
) -> Result<Option<Bytes>, ProtocolError> {
    let version = req.api_version;
    let api_key =
        ApiKey::try_from(req.api_key).map_err(|()| ProtocolError::UnknownApiKey(req.api_key))?;
    let response = match req.body {
        RequestKind::ApiVersions(_) => Some(ResponseKind::ApiVersions(api_versions())),
        RequestKind::Metadata(r) => {
            Some(ResponseKind::Metadata(metadata(broker, r, version).await))
        }
        RequestKind::Produce(r) => {
            let acks = r.acks;
            let resp = produce(broker, r).await;
            (acks != 0).then_some(ResponseKind::Produce(resp))
        }
        RequestKind::Fetch(r) => Some(ResponseKind::Fetch(fetch(broker, r).await)),
        RequestKind::ListOffsets(r) => Some(ResponseKind::ListOffsets(
            list_offsets(broker, r, version).await,
        )),
        RequestKind::CreateTopics(r) => {
            Some(ResponseKind::CreateTopics(create_topics(broker, r).await))
        }
        RequestKind::DeleteTopics(r) => {
            Some(ResponseKind::DeleteTopics(delete_topics(broker, r).await))
        }
        RequestKind::CreatePartitions(r) => Some(ResponseKind::CreatePartitions(
            create_partitions(broker, r).await,
        )),
        RequestKind::DescribeConfigs(r) => {
            Some(ResponseKind::DescribeConfigs(describe_configs(broker, r)))
        }
        RequestKind::AlterConfigs(r) => {
            Some(ResponseKind::AlterConfigs(alter_configs(broker, r).await))
        }
        RequestKind::IncrementalAlterConfigs(r) => Some(ResponseKind::IncrementalAlterConfigs(
            incremental_alter_configs(broker, r).await,
        )),
        RequestKind::InitProducerId(r) => Some(ResponseKind::InitProducerId(
            init_producer_id(broker, r).await,
        )),
        RequestKind::FindCoordinator(r) => Some(ResponseKind::FindCoordinator(find_coordinator(
            broker, r, version,
        ))),
        other => Some(
            groups::handle(
                broker,
                other,
                version,
                req.client_id.as_deref(),
                client_host,
            )
            .await?,
        ),
    };
    match response {
        Some(body) => codec::encode_response(req.correlation_id, api_key, version, &body).map(Some),
        None => Ok(None),
    }
}

fn api_versions() -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.api_keys = codec::advertised_versions(codec::SUPPORTED);
    r
}

fn broker_entry(broker: &Broker) -> MetadataResponseBroker {
    let mut b = MetadataResponseBroker::default();
    b.node_id = BrokerId(NODE_ID);
    b.host = str_bytes(&broker.config.advertised_host);
    b.port = i32::from(broker.config.advertised_port);
    b
}

fn metadata_topic(broker: &Broker, name: &str, error: i16) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = Some(topic_name(name));
    t.error_code = error;
    t.is_internal = name.starts_with("__");
    if error == 0
        && let Ok(d) = broker.store.describe_topic(name)
    {
        t.partitions = d
            .partitions
            .iter()
            .map(|p| {
                let mut mp = MetadataResponsePartition::default();
                mp.partition_index = p.partition;
                mp.leader_id = BrokerId(NODE_ID);
                mp.replica_nodes = vec![BrokerId(NODE_ID)];
                mp.isr_nodes = vec![BrokerId(NODE_ID)];
                mp
            })
            .collect();
    }
    t
}

async fn metadata(broker: &Arc<Broker>, r: MetadataRequest, version: i16) -> MetadataResponse {
    let mut resp = MetadataResponse::default();
    resp.brokers = vec![broker_entry(broker)];
    resp.cluster_id = Some(str_bytes(&broker.config.cluster_id));
    resp.controller_id = BrokerId(NODE_ID);
    // v0: an empty list means every topic; v1+: null means every topic.
    let requested: Option<Vec<String>> = match r.topics {
        None => None,
        Some(ts) if ts.is_empty() && version == 0 => None,
        Some(ts) => Some(
            ts.iter()
                .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                .collect(),
        ),
    };
    let auto_create =
        broker.config.auto_create_topics && (version < 4 || r.allow_auto_topic_creation);
    resp.topics = match requested {
        None => broker
            .store
            .list_topics()
            .iter()
            .map(|n| metadata_topic(broker, n, 0))
            .collect(),
        Some(names) => {
            let mut out = Vec::with_capacity(names.len());
            for name in names {
                let error = ensure_topic(broker, &name, auto_create).await;
                out.push(metadata_topic(broker, &name, error));
            }
            out
        }
    };
    resp
}

/// Error code for a topic that may need auto-creation: 0 when it exists (or was created).
async fn ensure_topic(broker: &Arc<Broker>, name: &str, auto_create: bool) -> i16 {
    if broker.store.describe_topic(name).is_ok() {
        return 0;
    }
    if crate::broker::validate_topic_name(name).is_err() {
        return code(ResponseError::InvalidTopicException);
    }
    if !auto_create {
        return code(ResponseError::UnknownTopicOrPartition);
    }
    let store = broker.store.clone();
    let n = name.to_string();
    match blocking(move || store.create_topic(&n, None, BTreeMap::new())).await {
        Ok(_) | Err(BrokerError::TopicExists(_)) => {
            tracing::info!(topic = name, "auto-created topic");
            // LEADER_NOT_AVAILABLE tells clients to retry Metadata; the topic is ready now,
            // so answer as Kafka does once the leader is elected.
            0
        }
        Err(e) => {
            tracing::warn!(topic = name, error = %e, "auto-creating topic failed");
            broker_error_code(&e)
        }
    }
}

fn log_error_code(e: &LogError) -> i16 {
    match e {
        LogError::InvalidBatch { source, .. } => match source {
            crate::log::batch::BatchError::CrcMismatch { .. } => {
                code(ResponseError::CorruptMessage)
            }
            _ => code(ResponseError::InvalidRecord),
        },
        LogError::RecordTooLarge { .. } => code(ResponseError::MessageTooLarge),
        LogError::OffsetOutOfRange { .. } => code(ResponseError::OffsetOutOfRange),
        LogError::InvalidConfig { .. } => code(ResponseError::InvalidConfig),
        LogError::Closed { .. } => code(ResponseError::NotLeaderOrFollower),
        LogError::Io { .. } | LogError::Failed { .. } | LogError::Corrupt { .. } => {
            code(ResponseError::KafkaStorageError)
        }
    }
}

pub(super) fn broker_error_code(e: &BrokerError) -> i16 {
    match e {
        BrokerError::InvalidTopicName { .. } => code(ResponseError::InvalidTopicException),
        BrokerError::TopicExists(_) => code(ResponseError::TopicAlreadyExists),
        BrokerError::UnknownTopic(_) => code(ResponseError::UnknownTopicOrPartition),
        BrokerError::InvalidPartitions { .. } => code(ResponseError::InvalidPartitions),
        BrokerError::InvalidConfig { .. } => code(ResponseError::InvalidConfig),
        BrokerError::Log(l) => log_error_code(l),
        _ => code(ResponseError::UnknownServerError),
    }
}

/// Produce requests up to this size to never-syncing partitions are appended inline: one
/// full librdkafka batch (`batch.size` 1 MB), whose CRC check and page-cache `pwrite`
/// take about 250 µs here, inside the 500 µs a task may hold an async worker.
const INLINE_APPEND_BYTES: usize = 1024 * 1024 + 64 * 1024;

/// One partition's share of a Produce request, and its answer.
struct ProducePart {
    topic: String,
    partition: i32,
    records: Option<Bytes>,
    result: PartitionProduceResponse,
}

async fn produce(broker: &Arc<Broker>, r: ProduceRequest) -> ProduceResponse {
    let mut parts = Vec::new();
    for t in r.topic_data {
        let topic = t.name.0.to_string();
        for p in t.partition_data {
            let mut result = PartitionProduceResponse::default();
            result.index = p.index;
            result.base_offset = -1;
            result.log_append_time_ms = -1;
            result.log_start_offset = -1;
            parts.push(ProducePart {
                topic: topic.clone(),
                partition: p.index,
                records: p.records,
                result,
            });
        }
    }
    if r.transactional_id.is_some() {
        for part in &mut parts {
            part.result.error_code = code(ResponseError::TransactionalIdAuthorizationFailed);
            part.result.error_message =
                Some(str_bytes("transactions are not supported by this broker"));
        }
        return produce_response(parts);
    }
    // A request of up to one client batch to partitions that never fdatasync on append
    // costs a CRC check and one pwrite into the page cache (at most a few hundred
    // microseconds): cheaper inline than a `spawn_blocking` handoff, whose futex wake-ups
    // and context switches (five futex calls per request) cost more CPU than the append
    // itself for small requests and a quarter of the broker's CPU for 1 MB ones. Anything
    // larger, or anything that may wait for an fdatasync, goes to the blocking pool.
    let bytes: usize = parts
        .iter()
        .map(|p| p.records.as_ref().map_or(0, Bytes::len))
        .sum();
    let never_syncs = |p: &ProducePart| {
        broker
            .store
            .partition(&p.topic, p.partition)
            .is_none_or(|log| log.config().flush.every_messages >= i64::MAX as u64)
    };
    let parts = if bytes <= INLINE_APPEND_BYTES && parts.iter().all(never_syncs) {
        for part in &mut parts {
            append_part(broker, part);
        }
        parts
    } else {
        let b = broker.clone();
        blocking(move || {
            for part in &mut parts {
                append_part(&b, part);
            }
            parts
        })
        .await
    };
    broker.notify_appended();
    produce_response(parts)
}

fn produce_response(parts: Vec<ProducePart>) -> ProduceResponse {
    let mut by_topic: BTreeMap<String, Vec<PartitionProduceResponse>> = BTreeMap::new();
    for part in parts {
        by_topic.entry(part.topic).or_default().push(part.result);
    }
    let mut resp = ProduceResponse::default();
    resp.responses = by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            let mut t = TopicProduceResponse::default();
            t.name = topic_name(&topic);
            t.partition_responses = partitions;
            t
        })
        .collect();
    resp
}

/// Append one partition's batches (blocking), applying idempotent-producer checks.
fn append_part(broker: &Broker, part: &mut ProducePart) {
    let fail = |part: &mut ProducePart, code: i16, msg: String| {
        part.result.error_code = code;
        part.result.error_message = Some(str_bytes(&msg));
    };
    let Some(log) = broker.store.partition(&part.topic, part.partition) else {
        return fail(
            part,
            code(ResponseError::UnknownTopicOrPartition),
            format!("unknown topic-partition {}-{}", part.topic, part.partition),
        );
    };
    let records = part.records.take().unwrap_or_default();
    let mut headers = BatchIter::new(&records);
    let first: Option<BatchHeader> = match headers.next() {
        Some(Ok((_, h))) => Some(h),
        _ => None,
    };
    let Some(first) = first else {
        return fail(
            part,
            code(ResponseError::CorruptMessage),
            "no valid record batch in the request".into(),
        );
    };
    let idempotent = first.producer_id != NO_PRODUCER_ID;
    if idempotent && headers.next().is_some() {
        return fail(
            part,
            code(ResponseError::InvalidRecord),
            "an idempotent producer must send one batch per partition".into(),
        );
    }
    let states = idempotent.then(|| broker.producer_states(&part.topic, part.partition));
    let mut guard = states
        .as_ref()
        .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()));
    let last_seq = first.base_sequence.wrapping_add(first.records_count - 1);
    if let Some(states) = guard.as_deref() {
        match states.check(
            first.producer_id,
            first.producer_epoch,
            first.base_sequence,
            last_seq,
        ) {
            SequenceCheck::Append => {}
            SequenceCheck::Duplicate { base_offset, .. } => {
                part.result.base_offset = base_offset;
                part.result.log_start_offset = log.log_start_offset();
                return;
            }
            SequenceCheck::Reject(c) => {
                return fail(
                    part,
                    c,
                    format!(
                        "sequence {}..{} of producer {} epoch {} does not follow what {}-{} has",
                        first.base_sequence,
                        last_seq,
                        first.producer_id,
                        first.producer_epoch,
                        part.topic,
                        part.partition
                    ),
                );
            }
        }
    }
    match log.append(&records) {
        Ok(info) => {
            if let Some(states) = guard.as_deref_mut() {
                states.record(
                    first.producer_id,
                    first.producer_epoch,
                    first.base_sequence,
                    last_seq,
                    info.base_offset,
                    info.last_offset,
                );
            }
            part.result.base_offset = info.base_offset;
            part.result.log_append_time_ms = info.log_append_time;
            part.result.log_start_offset = info.log_start_offset;
        }
        Err(e) => {
            tracing::info!(topic = %part.topic, partition = part.partition, error = %e, "produce refused");
            fail(part, log_error_code(&e), e.to_string());
        }
    }
}

async fn fetch(broker: &Arc<Broker>, r: FetchRequest) -> FetchResponse {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(r.max_wait_ms.max(0) as u64);
    let min_bytes = r.min_bytes.max(0) as usize;
    let mut changes = broker.appended.subscribe();
    let wanted: Vec<(String, Vec<(i32, i64, i32)>)> = r
        .topics
        .iter()
        .map(|t| {
            (
                t.topic.0.to_string(),
                t.partitions
                    .iter()
                    .map(|p| (p.partition, p.fetch_offset, p.partition_max_bytes))
                    .collect(),
            )
        })
        .collect();
    let wanted = Arc::new(wanted);
    let max_bytes = if r.max_bytes <= 0 {
        i32::MAX
    } else {
        r.max_bytes
    } as usize;
    loop {
        changes.borrow_and_update();
        let b = broker.clone();
        let w = wanted.clone();
        let (responses, total) = blocking(move || read_fetch(&b, &w, max_bytes)).await;
        let now = tokio::time::Instant::now();
        if total >= min_bytes.max(1) || now >= deadline {
            let mut resp = FetchResponse::default();
            resp.responses = responses;
            return resp;
        }
        // Long poll: wait for an append anywhere, or the deadline.
        if tokio::time::timeout_at(deadline, changes.changed())
            .await
            .is_err()
        {
            let b = broker.clone();
            let w = wanted.clone();
            let (responses, _) = blocking(move || read_fetch(&b, &w, max_bytes)).await;
            let mut resp = FetchResponse::default();
            resp.responses = responses;
            return resp;
        }
    }
}

/// Read every requested partition (blocking). Returns the responses and bytes read.
fn read_fetch(
    broker: &Broker,
    wanted: &[(String, Vec<(i32, i64, i32)>)],
    max_bytes: usize,
) -> (Vec<FetchableTopicResponse>, usize) {
    let mut total = 0usize;
    let mut out = Vec::with_capacity(wanted.len());
    for (topic, partitions) in wanted {
        let mut t = FetchableTopicResponse::default();
        t.topic = topic_name(topic);
        for &(partition, offset, partition_max) in partitions {
            let mut pd = PartitionData::default();
            pd.partition_index = partition;
            pd.high_watermark = -1;
            pd.last_stable_offset = -1;
            pd.log_start_offset = -1;
            pd.preferred_read_replica = BrokerId(-1);
            pd.aborted_transactions = None;
            match broker.store.partition(topic, partition) {
                None => pd.error_code = code(ResponseError::UnknownTopicOrPartition),
                Some(log) => {
                    let budget =
                        (partition_max.max(0) as usize).min(max_bytes.saturating_sub(total));
                    // KIP-74: the first partition with data returns at least one batch.
                    match log.read(offset, budget, total == 0) {
                        Ok(read) => {
                            total += read.records.len();
                            pd.high_watermark = read.high_watermark;
                            pd.last_stable_offset = read.high_watermark;
                            pd.log_start_offset = read.log_start_offset;
                            pd.records = Some(read.records);
                            pd.aborted_transactions = Some(Vec::new());
                        }
                        Err(e) => {
                            let stats = log.stats();
                            pd.high_watermark = stats.high_watermark;
                            pd.last_stable_offset = stats.high_watermark;
                            pd.log_start_offset = stats.log_start_offset;
                            pd.error_code = log_error_code(&e);
                            if !matches!(e, LogError::OffsetOutOfRange { .. }) {
                                tracing::warn!(%topic, partition, error = %e, "fetch failed");
                            }
                        }
                    }
                }
            }
            t.partitions.push(pd);
        }
        out.push(t);
    }
    (out, total)
}

async fn list_offsets(
    broker: &Arc<Broker>,
    r: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let b = broker.clone();
    blocking(move || {
        let mut resp = ListOffsetsResponse::default();
        for t in r.topics {
            let topic = t.name.0.to_string();
            let mut tr = ListOffsetsTopicResponse::default();
            tr.name = t.name.clone();
            for p in t.partitions {
                let mut pr = ListOffsetsPartitionResponse::default();
                pr.partition_index = p.partition_index;
                pr.timestamp = -1;
                pr.offset = -1;
                // The field exists from v4; setting it earlier fails the encode.
                if version >= 4 {
                    pr.leader_epoch = 0;
                }
                match b.store.partition(&topic, p.partition_index) {
                    None => pr.error_code = code(ResponseError::UnknownTopicOrPartition),
                    Some(log) => match log.list_offset(OffsetSpec::from_protocol(p.timestamp)) {
                        Ok(Some((offset, ts))) => {
                            pr.offset = offset;
                            pr.timestamp = ts;
                        }
                        Ok(None) => {}
                        Err(e) => pr.error_code = log_error_code(&e),
                    },
                }
                tr.partitions.push(pr);
            }
            resp.topics.push(tr);
        }
        resp
    })
    .await
}

async fn create_topics(broker: &Arc<Broker>, r: CreateTopicsRequest) -> CreateTopicsResponse {
    let b = broker.clone();
    blocking(move || {
        let mut resp = CreateTopicsResponse::default();
        for t in r.topics {
            let name = t.name.0.to_string();
            let mut res = CreatableTopicResult::default();
            res.name = t.name.clone();
            let configs: BTreeMap<String, String> = t
                .configs
                .iter()
                .filter_map(|c| {
                    c.value
                        .as_ref()
                        .map(|v| (c.name.to_string(), v.to_string()))
                })
                .collect();
            let partitions = if t.num_partitions == -1 && !t.assignments.is_empty() {
                t.assignments.len() as i32
            } else if t.num_partitions == -1 {
                b.store.config().num_partitions
            } else {
                t.num_partitions
            };
            let outcome = if t.replication_factor > 1 {
                Err((
                    code(ResponseError::InvalidReplicationFactor),
                    format!(
                        "replication factor {} is larger than the 1 broker available",
                        t.replication_factor
                    ),
                ))
            } else if r.validate_only {
                crate::broker::validate_topic_name(&name)
                    .and_then(|_| {
                        b.store
                            .config()
                            .log_defaults
                            .with_overrides(&configs)
                            .map_err(BrokerError::from)
                    })
                    .and_then(|_| match b.store.describe_topic(&name) {
                        Ok(_) => Err(BrokerError::TopicExists(name.clone())),
                        Err(_) => Ok(()),
                    })
                    .map_err(|e| (broker_error_code(&e), e.to_string()))
            } else {
                b.store
                    .create_topic(&name, Some(partitions), configs)
                    .map(|_| ())
                    .map_err(|e| (broker_error_code(&e), e.to_string()))
            };
            match outcome {
                Ok(()) => {
                    res.num_partitions = partitions;
                    res.replication_factor = 1;
                    res.configs = b.store.topic_configs(&name).ok().map(|cfgs| {
                        cfgs.into_iter()
                            .map(|(k, v, default)| {
                                let mut c = CreatableTopicConfigs::default();
                                c.name = str_bytes(k);
                                c.value = Some(str_bytes(&v));
                                c.config_source = if default { 5 } else { 1 };
                                c
                            })
                            .collect()
                    });
                }
                Err((c, msg)) => {
                    res.error_code = c;
                    res.error_message = Some(str_bytes(&msg));
                    res.num_partitions = -1;
                    res.replication_factor = -1;
                }
            }
            resp.topics.push(res);
        }
        resp
    })
    .await
}

async fn delete_topics(broker: &Arc<Broker>, r: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let mut names: Vec<String> = r.topic_names.iter().map(|n| n.0.to_string()).collect();
    names.extend(
        r.topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())),
    );
    let b = broker.clone();
    blocking(move || {
        let mut resp = DeleteTopicsResponse::default();
        for name in names {
            let mut res = DeletableTopicResult::default();
            res.name = Some(topic_name(&name));
            if let Err(e) = b.store.delete_topic(&name) {
                res.error_code = broker_error_code(&e);
                res.error_message = Some(str_bytes(&e.to_string()));
            }
            resp.responses.push(res);
        }
        resp
    })
    .await
}

async fn create_partitions(
    broker: &Arc<Broker>,
    r: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let b = broker.clone();
    blocking(move || {
        let mut resp = CreatePartitionsResponse::default();
        for t in r.topics {
            let name = t.name.0.to_string();
            let mut res = CreatePartitionsTopicResult::default();
            res.name = t.name.clone();
            let outcome = if r.validate_only {
                match b.store.describe_topic(&name) {
                    Ok(d) if (d.partitions.len() as i32) < t.count => Ok(()),
                    Ok(d) => Err(BrokerError::InvalidPartitions {
                        topic: name.clone(),
                        requested: t.count,
                        reason: format!("the topic already has {} partitions", d.partitions.len()),
                    }),
                    Err(e) => Err(e),
                }
            } else {
                b.store.add_partitions(&name, t.count).map(|_| ())
            };
            if let Err(e) = outcome {
                res.error_code = broker_error_code(&e);
                res.error_message = Some(str_bytes(&e.to_string()));
            }
            resp.results.push(res);
        }
        resp
    })
    .await
}

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

fn config_type_code(t: ConfigType) -> i8 {
    // DescribeConfigs v3 config types.
    match t {
        ConfigType::Boolean => 1,
        ConfigType::String => 2,
        ConfigType::Int => 3,
        ConfigType::Long => 5,
        ConfigType::Double => 6,
        ConfigType::List => 7,
    }
}

fn describe_configs(broker: &Arc<Broker>, r: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let mut resp = DescribeConfigsResponse::default();
    for res in r.resources {
        let mut out = DescribeConfigsResult::default();
        out.resource_type = res.resource_type;
        out.resource_name = res.resource_name.clone();
        let wanted = |k: &str| {
            res.configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|w| w.as_str() == k))
        };
        let entry = |name: &str, value: String, source: i8, t: ConfigType| {
            let mut c = DescribeConfigsResourceResult::default();
            c.name = str_bytes(name);
            c.value = Some(str_bytes(&value));
            c.config_source = source;
            c.config_type = config_type_code(t);
            c
        };
        match res.resource_type {
            RESOURCE_TOPIC => match broker.store.topic_configs(res.resource_name.as_str()) {
                Ok(cfgs) => {
                    for (k, v, default) in cfgs {
                        if wanted(k) {
                            let kind = KEYS
                                .iter()
                                .find(|d| d.name == k)
                                .map_or(ConfigType::String, |d| d.kind);
                            // 1 DYNAMIC_TOPIC_CONFIG, 5 DEFAULT_CONFIG
                            out.configs
                                .push(entry(k, v, if default { 5 } else { 1 }, kind));
                        }
                    }
                }
                Err(e) => {
                    out.error_code = broker_error_code(&e);
                    out.error_message = Some(str_bytes(&e.to_string()));
                }
            },
            RESOURCE_BROKER => {
                let defaults = &broker.store.config().log_defaults;
                for k in KEYS {
                    if wanted(k.broker_name) {
                        let v = defaults.value_of(k.name).unwrap_or_default();
                        // 4 STATIC_BROKER_CONFIG
                        out.configs.push(entry(k.broker_name, v, 4, k.kind));
                    }
                }
            }
            other => {
                out.error_code = code(ResponseError::InvalidRequest);
                out.error_message = Some(str_bytes(&format!(
                    "resource type {other} is not supported; use 2 (topic) or 4 (broker)"
                )));
            }
        }
        resp.results.push(out);
    }
    resp
}

/// Apply new override maps to topics (blocking), answering per resource.
fn apply_topic_configs(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    make: impl FnOnce(BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String>,
) -> (i16, Option<String>) {
    if resource_type != RESOURCE_TOPIC {
        return (
            code(ResponseError::InvalidRequest),
            Some("only topic configs (resource type 2) can be altered on this broker".into()),
        );
    }
    let current = match broker.store.describe_topic(name) {
        Ok(d) => d.overrides,
        Err(e) => return (broker_error_code(&e), Some(e.to_string())),
    };
    let new = match make(current) {
        Ok(n) => n,
        Err(msg) => return (code(ResponseError::InvalidConfig), Some(msg)),
    };
    let result = if validate_only {
        broker
            .store
            .config()
            .log_defaults
            .with_overrides(&new)
            .map(|_| ())
            .map_err(BrokerError::from)
    } else {
        broker.store.set_topic_configs(name, new)
    };
    match result {
        Ok(()) => (0, None),
        Err(e) => (broker_error_code(&e), Some(e.to_string())),
    }
}

async fn alter_configs(broker: &Arc<Broker>, r: AlterConfigsRequest) -> AlterConfigsResponse {
    let b = broker.clone();
    blocking(move || {
        let mut resp = AlterConfigsResponse::default();
        for res in r.resources {
            let name = res.resource_name.to_string();
            let configs: BTreeMap<String, String> = res
                .configs
                .iter()
                .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
                .collect();
            let (error, message) = apply_topic_configs(&b, res.resource_type, &name, r.validate_only, |_| Ok(configs));
            let mut out = kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse::default();
            out.resource_type = res.resource_type;
            out.resource_name = res.resource_name.clone();
            out.error_code = error;
            out.error_message = message.map(|m| str_bytes(&m));
            resp.responses.push(out);
        }
        resp
    })
    .await
}

async fn incremental_alter_configs(
    broker: &Arc<Broker>,
    r: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let b = broker.clone();
    blocking(move || {
        let mut resp = IncrementalAlterConfigsResponse::default();
        for res in r.resources {
            let name = res.resource_name.to_string();
            let ops: Vec<(String, i8, Option<String>)> = res
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.config_operation, c.value.as_ref().map(|v| v.to_string())))
                .collect();
            let (error, message) = apply_topic_configs(&b, res.resource_type, &name, r.validate_only, |mut cur| {
                for (key, op, value) in ops {
                    let list = |cur: &BTreeMap<String, String>| -> Vec<String> {
                        cur.get(&key)
                            .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
                            .unwrap_or_default()
                    };
                    match (op, value) {
                        (0, Some(v)) => {
                            cur.insert(key, v);
                        }
                        (1, _) => {
                            cur.remove(&key);
                        }
                        (2, Some(v)) => {
                            let mut items = list(&cur);
                            for x in v.split(',').map(str::trim).filter(|x| !x.is_empty()) {
                                if !items.iter().any(|i| i == x) {
                                    items.push(x.to_string());
                                }
                            }
                            cur.insert(key, items.join(","));
                        }
                        (3, Some(v)) => {
                            let drop: Vec<&str> = v.split(',').map(str::trim).collect();
                            let items: Vec<String> = list(&cur).into_iter().filter(|i| !drop.contains(&i.as_str())).collect();
                            cur.insert(key, items.join(","));
                        }
                        (op, _) => return Err(format!("config {key}: operation {op} needs a value or is unknown")),
                    }
                }
                Ok(cur)
            });
            let mut out =
                kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse::default();
            out.resource_type = res.resource_type;
            out.resource_name = res.resource_name.clone();
            out.error_code = error;
            out.error_message = message.map(|m| str_bytes(&m));
            resp.responses.push(out);
        }
        resp
    })
    .await
}

async fn init_producer_id(
    broker: &Arc<Broker>,
    r: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    if r.transactional_id.is_some() {
        // Transactions are out of scope; a clear refusal beats a coordinator that never appears.
        resp.error_code = code(ResponseError::TransactionalIdAuthorizationFailed);
        return resp;
    }
    if r.producer_id.0 >= 0 && r.producer_epoch >= 0 {
        // KIP-360: an idempotent producer bumps its epoch to reset its sequences.
        resp.producer_id = r.producer_id;
        resp.producer_epoch = r.producer_epoch.checked_add(1).unwrap_or(0);
        return resp;
    }
    let b = broker.clone();
    match blocking(move || b.producer_ids.allocate()).await {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(e) => {
            tracing::error!(error = %e, "allocating a producer id");
            resp.error_code = code(ResponseError::KafkaStorageError);
        }
    }
    resp
}

fn find_coordinator(
    broker: &Arc<Broker>,
    r: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let mut resp = FindCoordinatorResponse::default();
    let answer = |key: &StrBytes| {
        let mut c = Coordinator::default();
        c.key = key.clone();
        // Groups (0) and transactions (1) both answer with this node: a transactional
        // producer then learns at InitProducerId, at once and fatally, that transactions
        // are unsupported, instead of retrying a missing coordinator forever.
        if r.key_type != 0 && r.key_type != 1 {
            c.error_code = code(ResponseError::CoordinatorNotAvailable);
            c.error_message = Some(str_bytes(
                "only group coordinators exist on this broker (no transactions)",
            ));
            c.node_id = BrokerId(-1);
            c.port = -1;
        } else {
            c.node_id = BrokerId(NODE_ID);
            c.host = str_bytes(&broker.config.advertised_host);
            c.port = i32::from(broker.config.advertised_port);
        }
        c
    };
    if version >= 4 {
        resp.coordinators = r.coordinator_keys.iter().map(answer).collect();
    } else {
        let c = answer(&r.key);
        resp.error_code = c.error_code;
        resp.error_message = c.error_message;
        resp.node_id = c.node_id;
        resp.host = c.host;
        resp.port = c.port;
    }
    resp
}
