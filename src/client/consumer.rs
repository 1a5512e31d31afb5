//! A consumer in a consumer group, as a sink task uses one: Kafka's classic group
//! protocol with protocol type `consumer` and the `range` assignor, so that Kafka's tools
//! (`kafka-consumer-groups --describe`) read its members and assignments.
//!
//! Membership is eager: on every rebalance the whole assignment is revoked, then the new
//! one assigned ([`PollResult::revoked`], [`PollResult::assigned`]), as Kafka Connect's
//! sink tasks see it with the eager protocol. Heartbeats run on the client's runtime in
//! the background, so a slow `put` does not cost the membership; a heartbeat answered
//! REBALANCE_IN_PROGRESS makes the next [`GroupConsumer::poll`] rejoin.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::sync::CancellationToken;

use super::{Client, ClientError, ConsumerRecord, group_error};
use crate::broker::group::codes::{
    FENCED_INSTANCE_ID, ILLEGAL_GENERATION, MEMBER_ID_REQUIRED, NONE, REBALANCE_IN_PROGRESS,
    UNKNOWN_MEMBER_ID,
};
use crate::broker::group::{JoinGroupRequest, SyncGroupRequest};
use crate::log::OffsetSpec;

/// How often a member compares the subscribed topics with those it joined with (Kafka's
/// consumer refreshes metadata for the same purpose).
const LAYOUT_CHECK_EVERY: Duration = Duration::from_secs(1);

/// A topic and partition.
pub type TopicPartition = (String, i32);

/// What a consumer subscribes to.
#[derive(Clone, Debug)]
pub enum Subscription {
    /// `topics`: these topics.
    Topics(Vec<String>),
    /// `topics.regex`: every topic whose whole name matches (internal topics excluded).
    Pattern(regex::Regex),
}

impl Subscription {
    /// The topics this subscription covers among those that exist.
    fn resolve(&self, client: &Client) -> Vec<String> {
        match self {
            Subscription::Topics(t) => t.clone(),
            Subscription::Pattern(re) => client
                .list_topics()
                .into_iter()
                .filter(|t| !t.starts_with("__") && full_match(re, t))
                .collect(),
        }
    }
}

fn full_match(re: &regex::Regex, s: &str) -> bool {
    re.find(s)
        .is_some_and(|m| m.start() == 0 && m.end() == s.len())
}

/// The consumer settings that matter in-process (Kafka's consumer key names).
#[derive(Clone, Debug)]
pub struct ConsumerSettings {
    /// `session.timeout.ms`.
    pub session_timeout: Duration,
    /// `max.poll.interval.ms`: the rebalance timeout.
    pub rebalance_timeout: Duration,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `max.poll.records`.
    pub max_poll_records: usize,
    /// `max.partition.fetch.bytes`.
    pub max_partition_fetch_bytes: usize,
    /// `fetch.max.bytes`: most bytes one poll reads across partitions.
    pub fetch_max_bytes: usize,
    /// `auto.offset.reset`: true for `earliest`, false for `latest`.
    pub reset_earliest: bool,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings {
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_records: 500,
            max_partition_fetch_bytes: 1 << 20,
            fetch_max_bytes: 50 << 20,
            reset_earliest: true,
        }
    }
}

impl ConsumerSettings {
    /// From Kafka consumer keys; keys that do not matter in-process are ignored, bad
    /// values refused naming the key.
    pub fn from_props(props: &BTreeMap<String, String>) -> Result<ConsumerSettings, String> {
        let mut s = ConsumerSettings::default();
        let num = |key: &str| -> Result<Option<u64>, String> {
            props
                .get(key)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| format!("{key}={v:?}: expected a non-negative number"))
                })
                .transpose()
        };
        if let Some(v) = num("session.timeout.ms")? {
            s.session_timeout = Duration::from_millis(v);
        }
        if let Some(v) = num("max.poll.interval.ms")? {
            s.rebalance_timeout = Duration::from_millis(v);
        }
        if let Some(v) = num("heartbeat.interval.ms")? {
            s.heartbeat_interval = Duration::from_millis(v.max(1));
        }
        if let Some(v) = num("max.poll.records")? {
            s.max_poll_records = (v as usize).max(1);
        }
        if let Some(v) = num("max.partition.fetch.bytes")? {
            s.max_partition_fetch_bytes = (v as usize).max(1);
        }
        if let Some(v) = num("fetch.max.bytes")? {
            s.fetch_max_bytes = (v as usize).max(1);
        }
        if let Some(v) = props.get("auto.offset.reset") {
            s.reset_earliest = match v.trim() {
                "earliest" => true,
                "latest" => false,
                other => {
                    return Err(format!(
                        "auto.offset.reset={other:?}: expected earliest or latest"
                    ));
                }
            };
        }
        Ok(s)
    }
}

/// What one [`GroupConsumer::poll`] brought.
#[derive(Debug, Default)]
pub struct PollResult {
    pub records: Vec<ConsumerRecord>,
    /// Partitions taken away by a rebalance (before `assigned`).
    pub revoked: Vec<TopicPartition>,
    /// Partitions given by a rebalance.
    pub assigned: Vec<TopicPartition>,
}

#[derive(Debug, Default)]
struct Membership {
    member_id: String,
    generation: i32,
}

/// The rest of one partition's fetch.
#[derive(Debug)]
struct Buffered {
    records: std::vec::IntoIter<ConsumerRecord>,
    /// Where to fetch from once they are all returned.
    next_fetch: i64,
}

/// A member of a consumer group. Use from one blocking thread.
#[derive(Debug)]
pub struct GroupConsumer {
    client: Client,
    group_id: String,
    client_id: String,
    subscription: Subscription,
    settings: ConsumerSettings,
    member: Arc<Mutex<Membership>>,
    rejoin: Arc<AtomicBool>,
    joined: bool,
    assignment: Vec<TopicPartition>,
    positions: BTreeMap<TopicPartition, i64>,
    /// Records fetched but not yet returned (a fetch of up to
    /// `max.partition.fetch.bytes` holds more than `max.poll.records`), as Kafka's
    /// consumer keeps its completed fetches: the next polls return them without reading
    /// and decoding the same batches again. Each starts at its partition's position;
    /// anything that moves a position drops that partition's entry.
    buffered: BTreeMap<TopicPartition, Buffered>,
    paused: BTreeSet<TopicPartition>,
    /// The integrated broker's append notifications (`None` on a remote cluster).
    appends: Option<tokio::sync::watch::Receiver<u64>>,
    /// The subscribed topics and their partition counts when the group last formed; a
    /// change (a topic created, partitions added, a new regex match) means rejoin.
    layout: BTreeMap<String, i32>,
    layout_checked: std::time::Instant,
    stop: CancellationToken,
    heartbeat: Option<CancellationToken>,
}

impl GroupConsumer {
    pub fn new(
        client: Client,
        group_id: impl Into<String>,
        client_id: impl Into<String>,
        subscription: Subscription,
        settings: ConsumerSettings,
    ) -> GroupConsumer {
        let appends = client.subscribe_appends();
        GroupConsumer {
            client,
            group_id: group_id.into(),
            client_id: client_id.into(),
            subscription,
            settings,
            member: Arc::default(),
            rejoin: Arc::new(AtomicBool::new(true)),
            joined: false,
            assignment: Vec::new(),
            positions: BTreeMap::new(),
            buffered: BTreeMap::new(),
            paused: BTreeSet::new(),
            appends,
            layout: BTreeMap::new(),
            layout_checked: std::time::Instant::now(),
            stop: CancellationToken::new(),
            heartbeat: None,
        }
    }

    /// Cancelling this token makes a blocked `poll` return promptly (with nothing).
    pub fn stopper(&self) -> CancellationToken {
        self.stop.clone()
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// The partitions currently assigned.
    pub fn assignment(&self) -> &[TopicPartition] {
        &self.assignment
    }

    /// The next offset to read of each assigned partition.
    pub fn positions(&self) -> &BTreeMap<TopicPartition, i64> {
        &self.positions
    }

    /// Stop fetching from these partitions until resumed.
    pub fn pause(&mut self, partitions: &[TopicPartition]) {
        self.paused.extend(partitions.iter().cloned());
    }

    pub fn resume(&mut self, partitions: &[TopicPartition]) {
        for p in partitions {
            self.paused.remove(p);
        }
    }

    /// Read `partition` from `offset` next.
    pub fn seek(&mut self, partition: TopicPartition, offset: i64) {
        if self.assignment.contains(&partition) {
            self.buffered.remove(&partition);
            self.positions.insert(partition, offset);
        }
    }

    /// Rejoin if needed, then read up to `max.poll.records` records from the assigned
    /// partitions, waiting up to `timeout` for some to arrive.
    pub fn poll(&mut self, timeout: Duration) -> Result<PollResult, ClientError> {
        let mut result = PollResult::default();
        if self.stop.is_cancelled() {
            return Ok(result);
        }
        if self.joined && self.layout_checked.elapsed() >= LAYOUT_CHECK_EVERY {
            self.layout_checked = std::time::Instant::now();
            if self.current_layout() != self.layout {
                tracing::debug!(group = %self.group_id, "subscribed topics changed; rejoining");
                self.rejoin.store(true, Ordering::Release);
            }
        }
        if !self.joined || self.rejoin.load(Ordering::Acquire) {
            if !self.assignment.is_empty() {
                // Eager rebalance, as Kafka's consumer does it: first hand back the
                // revoked partitions, so the caller commits what it consumed while this
                // member's generation is still valid; the next poll rejoins and reads
                // the new assignment from those commits.
                result.revoked = std::mem::take(&mut self.assignment);
                self.positions.clear();
                self.buffered.clear();
                self.joined = false;
                return Ok(result);
            }
            self.join()?;
            result.assigned = self.assignment.clone();
            if self.stop.is_cancelled() {
                return Ok(result);
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(a) = &mut self.appends {
                a.borrow_and_update();
            }
            self.fetch_into(&mut result.records)?;
            if !result.records.is_empty()
                || self.rejoin.load(Ordering::Acquire)
                || self.stop.is_cancelled()
                || tokio::time::Instant::now() >= deadline
            {
                return Ok(result);
            }
            let stop = self.stop.clone();
            // Wake at least every 100 ms to notice a rejoin request from the heartbeat; on
            // a remote cluster, whose appends are not seen, fetch again every 25 ms.
            let (appends, every) = match &mut self.appends {
                Some(a) => (Some(a), Duration::from_millis(100)),
                None => (None, Duration::from_millis(25)),
            };
            let wake = deadline.min(tokio::time::Instant::now() + every);
            self.client.runtime().block_on(async {
                let appended = async {
                    match appends {
                        Some(a) => {
                            let _ = a.changed().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    _ = appended => {}
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep_until(wake) => {}
                }
            });
        }
    }

    fn fetch_into(&mut self, out: &mut Vec<ConsumerRecord>) -> Result<(), ClientError> {
        let mut bytes_left = self.settings.fetch_max_bytes;
        for tp in self.assignment.clone() {
            if out.len() >= self.settings.max_poll_records || bytes_left == 0 {
                break;
            }
            if self.paused.contains(&tp) {
                continue;
            }
            let Some(&pos) = self.positions.get(&tp) else {
                continue;
            };
            let mut buffered = match self.buffered.remove(&tp) {
                Some(b) => b,
                None => {
                    let max = self.settings.max_partition_fetch_bytes.min(bytes_left);
                    match self.client.fetch(&tp.0, tp.1, pos, max) {
                        Ok(f) => Buffered {
                            records: f.records.into_iter(),
                            next_fetch: f.next_offset,
                        },
                        Err(ClientError::OffsetOutOfRange { .. }) => {
                            let reset = self.reset_offset(&tp)?;
                            tracing::warn!(
                                group = %self.group_id, topic = %tp.0, partition = tp.1, offset = pos, reset,
                                "offset out of range; reset by auto.offset.reset"
                            );
                            self.positions.insert(tp, reset);
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            let room = self.settings.max_poll_records - out.len();
            let take = room.min(buffered.records.len());
            out.reserve(take);
            for r in buffered.records.by_ref().take(take) {
                bytes_left =
                    bytes_left.saturating_sub(r.value.as_ref().map_or(0, |v| v.len()) + 20);
                out.push(r);
            }
            match buffered.records.as_slice().first() {
                Some(r) => {
                    self.positions.insert(tp.clone(), r.offset);
                    self.buffered.insert(tp, buffered);
                }
                None => {
                    self.positions.insert(tp, buffered.next_fetch);
                }
            }
        }
        Ok(())
    }

    /// The subscribed topics that exist, with their partition counts.
    fn current_layout(&self) -> BTreeMap<String, i32> {
        self.subscription
            .resolve(&self.client)
            .into_iter()
            .filter_map(|t| self.client.partition_count(&t).map(|n| (t, n)))
            .collect()
    }

    fn reset_offset(&self, tp: &TopicPartition) -> Result<i64, ClientError> {
        let spec = if self.settings.reset_earliest {
            OffsetSpec::Earliest
        } else {
            OffsetSpec::Latest
        };
        self.client.list_offset(&tp.0, tp.1, spec)
    }

    /// Join (or rejoin) the group, take part in the assignment, and position the new
    /// partitions at their committed offsets (or by `auto.offset.reset`).
    fn join(&mut self) -> Result<(), ClientError> {
        if let Some(hb) = self.heartbeat.take() {
            hb.cancel();
        }
        let groups = self.client.groups();
        loop {
            let topics = self.subscription.resolve(&self.client);
            let member_id = lock(&self.member).member_id.clone();
            let req = JoinGroupRequest {
                group_id: self.group_id.clone(),
                session_timeout_ms: millis_i32(self.settings.session_timeout),
                rebalance_timeout_ms: millis_i32(self.settings.rebalance_timeout),
                member_id,
                group_instance_id: None,
                protocol_type: "consumer".into(),
                protocols: vec![("range".into(), encode_subscription(&topics))],
                api_version: 5,
                client_id: self.client_id.clone(),
                client_host: "/127.0.0.1".into(),
            };
            let stop = self.stop.clone();
            let g = groups.clone();
            let Some(joined) = self.client.runtime().block_on(async move {
                tokio::select! {
                    r = g.join(req) => Some(r),
                    _ = stop.cancelled() => None,
                }
            }) else {
                return Ok(());
            };
            let joined = joined?;
            match joined.error_code {
                NONE => {}
                MEMBER_ID_REQUIRED => {
                    lock(&self.member).member_id = joined.member_id;
                    continue;
                }
                UNKNOWN_MEMBER_ID | FENCED_INSTANCE_ID => {
                    lock(&self.member).member_id.clear();
                    continue;
                }
                REBALANCE_IN_PROGRESS => continue,
                code => return Err(group_error(&self.group_id, "JoinGroup", code)),
            }
            {
                let mut m = lock(&self.member);
                m.member_id = joined.member_id.clone();
                m.generation = joined.generation_id;
            }
            let assignments = if joined.leader == joined.member_id {
                self.assign(&joined.members)
            } else {
                Vec::new()
            };
            let req = SyncGroupRequest {
                group_id: self.group_id.clone(),
                generation_id: joined.generation_id,
                member_id: joined.member_id.clone(),
                group_instance_id: None,
                protocol_type: Some("consumer".into()),
                protocol_name: joined.protocol_name.clone(),
                assignments,
            };
            let stop = self.stop.clone();
            let g = groups.clone();
            let Some(synced) = self.client.runtime().block_on(async move {
                tokio::select! {
                    r = g.sync(req) => Some(r),
                    _ = stop.cancelled() => None,
                }
            }) else {
                return Ok(());
            };
            let synced = synced?;
            match synced.error_code {
                NONE => {}
                REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => continue,
                UNKNOWN_MEMBER_ID => {
                    lock(&self.member).member_id.clear();
                    continue;
                }
                code => return Err(group_error(&self.group_id, "SyncGroup", code)),
            }
            self.assignment = decode_assignment(&synced.assignment).unwrap_or_default();
            self.buffered.clear();
            // What the leader assigned from: later changes to it mean rejoin.
            self.layout = self.current_layout();
            self.layout_checked = std::time::Instant::now();
            self.joined = true;
            self.rejoin.store(false, Ordering::Release);
            self.start_heartbeat();
            self.position_assigned()?;
            tracing::debug!(
                group = %self.group_id, member = %joined.member_id, generation = joined.generation_id,
                partitions = self.assignment.len(), "joined group"
            );
            return Ok(());
        }
    }

    /// The leader's range assignment: per topic, partitions split in order among the
    /// members subscribed to it (sorted by member id), the first ones taking one more.
    fn assign(&self, members: &[(String, Option<String>, Bytes)]) -> Vec<(String, Bytes)> {
        let mut subscribers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut plan: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
        for (id, _, meta) in members {
            plan.entry(id.clone()).or_default();
            for t in decode_subscription(meta).unwrap_or_default() {
                subscribers.entry(t).or_default().push(id.clone());
            }
        }
        for (topic, mut ids) in subscribers {
            let Some(n) = self.client.partition_count(&topic) else {
                continue;
            };
            ids.sort();
            ids.dedup();
            let per = n as usize / ids.len();
            let extra = n as usize % ids.len();
            let mut next = 0i32;
            for (i, id) in ids.iter().enumerate() {
                let count = per + usize::from(i < extra);
                let parts = plan.entry(id.clone()).or_default();
                for _ in 0..count {
                    parts.push((topic.clone(), next));
                    next += 1;
                }
            }
        }
        plan.into_iter()
            .map(|(id, parts)| (id, encode_assignment(&parts)))
            .collect()
    }

    fn position_assigned(&mut self) -> Result<(), ClientError> {
        let committed = self
            .client
            .committed_offsets(&self.group_id, &self.assignment)?;
        for tp in self.assignment.clone() {
            let pos = match committed.get(&tp) {
                Some(&o) => o,
                None => self.reset_offset(&tp)?,
            };
            self.buffered.remove(&tp);
            self.positions.insert(tp, pos);
        }
        Ok(())
    }

    fn start_heartbeat(&mut self) {
        let token = CancellationToken::new();
        let groups = self.client.groups();
        let member = self.member.clone();
        let rejoin = self.rejoin.clone();
        let group_id = self.group_id.clone();
        let every = self.settings.heartbeat_interval;
        let cancel = token.clone();
        self.client.runtime().spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let (member_id, generation) = {
                    let m = lock(&member);
                    (m.member_id.clone(), m.generation)
                };
                let code = match groups.heartbeat(&group_id, generation, &member_id).await {
                    Ok(code) => code,
                    // The coordinator out of reach (a remote cluster): try again at the
                    // next beat; the session timeout decides whether the member is gone.
                    Err(e) => {
                        tracing::debug!(group = %group_id, error = %e, "heartbeat failed; retrying");
                        continue;
                    }
                };
                if code != NONE {
                    rejoin.store(true, Ordering::Release);
                    if code != REBALANCE_IN_PROGRESS {
                        tracing::debug!(group = %group_id, code, "heartbeat refused; rejoining");
                    }
                    return;
                }
            }
        });
        self.heartbeat = Some(token);
    }

    /// Commit offsets (the next offset to read, per partition) as this member.
    pub fn commit(&self, offsets: &BTreeMap<TopicPartition, i64>) -> Result<(), ClientError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let (member_id, generation) = {
            let m = lock(&self.member);
            (m.member_id.clone(), m.generation)
        };
        let result = self
            .client
            .commit_offsets(&self.group_id, generation, &member_id, offsets);
        if let Err(ClientError::Group { code, .. }) = &result
            && matches!(
                *code,
                REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID
            )
        {
            self.rejoin.store(true, Ordering::Release);
        }
        result
    }

    /// Leave the group (so the others rebalance at once rather than after the session
    /// timeout) and stop heartbeating.
    pub fn close(&mut self) {
        if let Some(hb) = self.heartbeat.take() {
            hb.cancel();
        }
        let member_id = lock(&self.member).member_id.clone();
        if member_id.is_empty() {
            return;
        }
        let groups = self.client.groups();
        let group_id = self.group_id.clone();
        let left = self
            .client
            .runtime()
            .block_on(async move { groups.leave(&group_id, vec![(member_id, None)]).await });
        if let Err(e) = left {
            // The coordinator drops the member at its session timeout anyway.
            tracing::debug!(group = %self.group_id, error = %e, "LeaveGroup failed");
        }
        self.joined = false;
        self.assignment.clear();
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        if let Some(hb) = self.heartbeat.take() {
            hb.cancel();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn millis_i32(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

fn put_str(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn get_str(buf: &mut Bytes) -> Option<String> {
    if buf.remaining() < 2 {
        return None;
    }
    let len = buf.get_i16();
    let len = usize::try_from(len).ok()?;
    if buf.remaining() < len {
        return None;
    }
    String::from_utf8(buf.split_to(len).to_vec()).ok()
}

/// ConsumerProtocolSubscription v0: version, topics, user data (null).
pub fn encode_subscription(topics: &[String]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    buf.put_i32(topics.len() as i32);
    for t in topics {
        put_str(&mut buf, t);
    }
    buf.put_i32(-1);
    buf.freeze()
}

/// The topics of a ConsumerProtocolSubscription (any version: later versions only add
/// fields after these).
pub fn decode_subscription(meta: &Bytes) -> Option<Vec<String>> {
    let mut buf = meta.clone();
    if buf.remaining() < 6 {
        return None;
    }
    let _version = buf.get_i16();
    let n = buf.get_i32();
    let mut topics = Vec::new();
    for _ in 0..n.max(0) {
        topics.push(get_str(&mut buf)?);
    }
    Some(topics)
}

/// ConsumerProtocolAssignment v0: version, (topic, partitions) list, user data (null).
pub fn encode_assignment(parts: &[TopicPartition]) -> Bytes {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in parts {
        by_topic.entry(t).or_default().push(*p);
    }
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    buf.put_i32(by_topic.len() as i32);
    for (t, ps) in by_topic {
        put_str(&mut buf, t);
        buf.put_i32(ps.len() as i32);
        for p in ps {
            buf.put_i32(p);
        }
    }
    buf.put_i32(-1);
    buf.freeze()
}

pub fn decode_assignment(bytes: &Bytes) -> Option<Vec<TopicPartition>> {
    let mut buf = bytes.clone();
    if buf.remaining() < 6 {
        return Some(Vec::new());
    }
    let _version = buf.get_i16();
    let n = buf.get_i32();
    let mut out = Vec::new();
    for _ in 0..n.max(0) {
        let topic = get_str(&mut buf)?;
        if buf.remaining() < 4 {
            return None;
        }
        let count = buf.get_i32();
        for _ in 0..count.max(0) {
            if buf.remaining() < 4 {
                return None;
            }
            out.push((topic.clone(), buf.get_i32()));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_round_trips() {
        let topics = vec!["a".to_string(), "bb".to_string()];
        assert_eq!(
            decode_subscription(&encode_subscription(&topics)).unwrap(),
            topics
        );
        let parts = vec![
            ("a".to_string(), 0),
            ("a".to_string(), 2),
            ("b".to_string(), 1),
        ];
        assert_eq!(
            decode_assignment(&encode_assignment(&parts)).unwrap(),
            parts
        );
        assert_eq!(decode_assignment(&Bytes::new()).unwrap(), vec![]);
        assert!(decode_subscription(&Bytes::from_static(&[0, 0, 0, 0, 0, 9, 0])).is_none());
    }
}
