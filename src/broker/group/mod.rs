//! The consumer group coordinator, classic protocol (JoinGroup / SyncGroup / Heartbeat
//! / LeaveGroup), with committed offsets stored in `__consumer_offsets`.
//!
//! What it is: Kafka's group membership and rebalance protocol for any protocol type
//! (consumers, Connect workers, ...), including KIP-62 (separate rebalance and session
//! timeouts), KIP-394 (a member id must be obtained before joining, JoinGroup v4+),
//! KIP-345 (static membership) and KIP-211 (offsets expire after the group is empty),
//! plus OffsetCommit / OffsetFetch / DescribeGroups / ListGroups / DeleteGroups.
//!
//! What it is not: the wire codec. Requests and answers are plain structs
//! ([`JoinGroupRequest`], ...) and error codes are `i16`s ([`codes`]); the protocol
//! layer translates. It never parses member metadata or assignments (opaque bytes, as
//! in Kafka's coordinator). No KIP-848 (the new consumer protocol), no transactional
//! offset commits.
//!
//! ## Shape
//! All state sits behind one mutex (`state::State`) that is never held across an
//! `.await`. A request that has to wait (a join until the rebalance completes, a
//! follower's sync until the leader's) gets a `oneshot` receiver that a later request
//! or a timer completes. One background task per coordinator fires timers (session
//! expiry, rebalance and initial-delay timeouts, pending member ids, the sync timeout)
//! on tokio time, so tests drive it with `tokio::time::pause`; any request also fires
//! its own group's due timers first. The offset expiry pass runs every
//! `offsets.retention.check.interval.ms`.
//!
//! ## Offsets and durability
//! A commit validates under the lock, then appends ONE batch (one record per
//! partition) to the group's `__consumer_offsets` partition on the blocking pool, and
//! only after the append returns (the log's acknowledgement) updates memory and answers
//! NONE. Appends to one offsets partition, and the memory updates that follow them, are
//! serialized by a per-partition lock, so memory always reflects the log's order; the
//! blocking task finishes even if the requester goes away. At start, every partition is
//! read to its high watermark: the latest record per key wins, a tombstone deletes.
//! Group membership itself is not persisted (Kafka writes group metadata records): after
//! a restart members get UNKNOWN_MEMBER_ID and rejoin, keeping their offsets.
//!
//! ## Departures from Kafka, on purpose
//! - `offsets.topic.num.partitions` defaults to 1 (Kafka: 50, for spreading
//!   coordinators over brokers; a single node gains nothing). An existing topic keeps
//!   its partition count, as in Kafka, and that count decides placement.
//! - Groups loaded at start have no known protocol type, so their offsets expire
//!   relative to the later of the commit and the load (never earlier than Kafka would).
//! - A static member that rejoins a Stable group keeps its slot without a rebalance
//!   only if its protocols and metadata are unchanged (Kafka only checks that the
//!   selected protocol would stay the same, which can hide a subscription change).
//! - Offsets of a Stable consumer group for topics it no longer subscribes to do not
//!   expire (that needs parsing consumer metadata); they do once the group is empty.
//! - The rebalance timeout is not bounded by the session timeout limits (neither is it
//!   in Kafka); JoinGroup v0 or a negative value uses the session timeout.
//! - The initial rebalance delay is extended by late joiners for every empty group,
//!   not only at generation 0.
//! - An empty group with no offsets is forgotten at the next expiry pass, as Kafka's
//!   cleanup does; DescribeGroups then reports it "Dead" with no error (classic
//!   behaviour; DescribeGroups v6's GROUP_ID_NOT_FOUND is the wire layer's choice).

pub mod codes;
mod config;
mod error;
mod offsets;
mod state;
mod types;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::{BrokerError, TopicStore};
use crate::log::LogError;
use crate::log::batch::BatchBuilder;
use crate::log::compression::Compression;

pub use config::{GroupConfig, GroupConfigKey, KEYS};
pub use error::GroupError;
pub use offsets::{OFFSETS_TOPIC, java_string_hash, partition_for};
pub use state::GroupState;
pub use types::{
    CommitPartition, CommitResult, FetchResult, FetchedPartition, GroupDescription,
    JoinGroupRequest, JoinGroupResponse, JoinedMember, MemberDescription, OffsetCommitRequest,
    Protocol, SyncGroupRequest, SyncGroupResponse,
};

use codes::{NONE, NOT_COORDINATOR, UNKNOWN_SERVER_ERROR};
use offsets::Committed;
use state::{CommitPlan, Ctx, Reply, State};

/// The group coordinator of this node. Cheap to clone; all clones share one state.
/// Call [`GroupCoordinator::shutdown`] to stop it; dropping the last clone also stops
/// its background task.
#[derive(Clone)]
pub struct GroupCoordinator {
    inner: Arc<Inner>,
}

impl fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCoordinator")
            .field("offsets_partitions", &self.inner.partitions)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    store: Arc<TopicStore>,
    config: GroupConfig,
    /// Partitions of `__consumer_offsets` as found or created at start.
    partitions: i32,
    clock: Clock,
    state: Mutex<State>,
    /// One per offsets partition: held across an append and the memory update after
    /// it, so the two happen in the same order for every writer.
    partition_locks: Vec<Mutex<()>>,
    /// Wakes the timer task when a timer earlier than the one it sleeps for is added.
    notify: Arc<Notify>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    expiring: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Wall-clock milliseconds that advance with tokio's clock: the wall time at start plus
/// the tokio time elapsed since. Stored timestamps stay real, and tests that pause
/// tokio time move commit ages and retention along with every other timer.
#[derive(Debug)]
struct Clock {
    start: Instant,
    start_ms: i64,
}

impl Clock {
    fn new() -> Clock {
        let start_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Clock {
            start: Instant::now(),
            start_ms,
        }
    }

    fn now_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.start_ms.saturating_add(elapsed)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every step under these locks leaves the state consistent; a panic elsewhere
    // must not take the coordinator down with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Kafka's mapping of a failed offsets-topic append to what the client is told.
fn log_error_code(e: &LogError) -> i16 {
    match e {
        LogError::RecordTooLarge { .. } => codes::INVALID_COMMIT_OFFSET_SIZE,
        LogError::Closed { .. } | LogError::Failed { .. } | LogError::Io { .. } => NOT_COORDINATOR,
        _ => UNKNOWN_SERVER_ERROR,
    }
}

/// Find or create `__consumer_offsets` (compacted); returns its partition count.
fn ensure_offsets_topic(store: &TopicStore, config: &GroupConfig) -> Result<i32, GroupError> {
    let existing = match store.describe_topic(OFFSETS_TOPIC) {
        Ok(d) => d,
        Err(BrokerError::UnknownTopic(_)) => {
            let configs = BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                (
                    "segment.bytes".to_string(),
                    config.offsets_topic_segment_bytes.to_string(),
                ),
            ]);
            match store.create_topic(
                OFFSETS_TOPIC,
                Some(config.offsets_topic_num_partitions),
                configs,
            ) {
                Ok(d) => d,
                Err(BrokerError::TopicExists(_)) => store
                    .describe_topic(OFFSETS_TOPIC)
                    .map_err(GroupError::OffsetsTopic)?,
                Err(e) => return Err(GroupError::OffsetsTopic(e)),
            }
        }
        Err(e) => return Err(GroupError::OffsetsTopic(e)),
    };
    let partitions = i32::try_from(existing.partitions.len()).unwrap_or(i32::MAX);
    if partitions != config.offsets_topic_num_partitions {
        tracing::warn!(
            partitions,
            configured = config.offsets_topic_num_partitions,
            "__consumer_offsets already exists with a different partition count; using the existing one"
        );
    }
    let compacted = store
        .topic_configs(OFFSETS_TOPIC)
        .map_err(GroupError::OffsetsTopic)?
        .into_iter()
        .any(|(k, v, _)| k == "cleanup.policy" && v.contains("compact"));
    if !compacted {
        tracing::warn!(
            "__consumer_offsets is not compacted; set cleanup.policy=compact on it or old offsets may be lost to retention"
        );
    }
    Ok(partitions.max(1))
}

impl GroupCoordinator {
    /// Create `__consumer_offsets` if it is missing, load the committed offsets from
    /// it, and start the timer task. Must be called within a tokio runtime.
    pub async fn new(
        store: Arc<TopicStore>,
        config: GroupConfig,
    ) -> Result<GroupCoordinator, GroupError> {
        config.validate()?;
        let (partitions, loaded) = {
            let store = store.clone();
            let config = config.clone();
            tokio::task::spawn_blocking(move || -> Result<_, GroupError> {
                let partitions = ensure_offsets_topic(&store, &config)?;
                let loaded = offsets::load(&store, partitions)?;
                Ok((partitions, loaded))
            })
            .await??
        };
        let clock = Clock::new();
        let state = State::from_loaded(loaded, clock.now_ms());
        let check_every = config.offsets_retention_check_interval;
        let inner = Arc::new(Inner {
            store,
            config,
            partitions,
            clock,
            state: Mutex::new(state),
            partition_locks: (0..partitions).map(|_| Mutex::new(())).collect(),
            notify: Arc::new(Notify::new()),
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
            expiring: AtomicBool::new(false),
        });
        inner.tracker.spawn(run_timers(
            Arc::downgrade(&inner),
            inner.notify.clone(),
            inner.cancel.clone(),
            check_every,
        ));
        Ok(GroupCoordinator { inner })
    }

    /// The `__consumer_offsets` partition holding `group_id`'s offsets.
    pub fn partition_for(&self, group_id: &str) -> i32 {
        partition_for(group_id, self.inner.partitions)
    }

    /// JoinGroup. Completes when the rebalance does (or at once for errors,
    /// MEMBER_ID_REQUIRED, and rejoins that change nothing).
    pub async fn join(&self, req: JoinGroupRequest) -> JoinGroupResponse {
        let member_id = req.member_id.clone();
        match self.inner.with_state(|st, ctx| st.join(req, ctx)) {
            Reply::Now(answer) => answer,
            Reply::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| JoinGroupResponse::error(member_id, NOT_COORDINATOR)),
        }
    }

    /// SyncGroup. The leader's call stores the assignment and completes every
    /// member's; a follower's waits for it.
    pub async fn sync(&self, req: SyncGroupRequest) -> SyncGroupResponse {
        match self.inner.with_state(|st, ctx| st.sync(req, ctx)) {
            Reply::Now(answer) => answer,
            Reply::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| SyncGroupResponse::error(NOT_COORDINATOR)),
        }
    }

    /// Heartbeat: restarts the member's session timer; REBALANCE_IN_PROGRESS tells it
    /// to rejoin.
    pub async fn heartbeat(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> i16 {
        self.inner.with_state(|st, ctx| {
            st.heartbeat(group_id, generation_id, member_id, group_instance_id, ctx)
        })
    }

    /// LeaveGroup (v3+ batch form): (group error, per member (member_id,
    /// group_instance_id, error)). For v0-v2 the wire layer sends one member and uses
    /// its error as the top-level one. A member id of "" with an instance id removes
    /// that static member.
    pub async fn leave(
        &self,
        group_id: &str,
        members: Vec<(String, Option<String>)>,
    ) -> (i16, Vec<(String, Option<String>, i16)>) {
        self.inner
            .with_state(|st, ctx| st.leave(group_id, members, ctx))
    }

    /// OffsetCommit: per topic, per partition, an error code. Partitions that pass
    /// validation are appended in one batch; they succeed or fail together.
    pub async fn commit_offsets(&self, req: OffsetCommitRequest) -> CommitResult {
        let store = &self.inner.store;
        let known: Vec<Vec<bool>> = req
            .topics
            .iter()
            .map(|(t, ps)| {
                ps.iter()
                    .map(|p| store.partition(t, p.0).is_some())
                    .collect()
            })
            .collect();
        let planned = self.inner.with_state(|st, ctx| {
            let plan = st.plan_commit(&req, &known, ctx)?;
            if plan.records.is_empty() {
                return Ok((plan.results, None));
            }
            let CommitPlan {
                group_id,
                results,
                appended,
                records,
                updates,
                timestamp,
            } = plan;
            // Spawned under the state lock so that shutdown, which closes the state
            // first, waits for every append it did not refuse.
            let inner = self.inner.clone();
            let task = self.inner.tracker.spawn_blocking(move || {
                inner.append_commit(&group_id, &records, updates, timestamp)
            });
            Ok((results, Some((appended, task))))
        });
        match planned {
            Err(code) => types::commit_error(&req.topics, code),
            Ok((results, None)) => results,
            Ok((mut results, Some((appended, task)))) => {
                let code = match task.await {
                    Ok(Ok(())) => NONE,
                    Ok(Err(code)) => code,
                    Err(e) => {
                        tracing::error!(group = %req.group_id, error = %e, "offset commit task failed");
                        UNKNOWN_SERVER_ERROR
                    }
                };
                if code != NONE {
                    for (t, p) in appended {
                        results[t].1[p].1 = code;
                    }
                }
                results
            }
        }
    }

    /// OffsetFetch. `None` asks for every partition the group has committed; a
    /// partition without a commit answers offset -1. An unknown group has no offsets.
    pub async fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<FetchResult, i16> {
        self.inner
            .with_state(|st, _| st.fetch_offsets(group_id, topics))
    }

    /// DescribeGroups, in request order.
    pub async fn describe_groups(&self, group_ids: &[String]) -> Vec<GroupDescription> {
        self.inner.with_state(|st, ctx| st.describe(group_ids, ctx))
    }

    /// ListGroups: (group_id, protocol_type, state), sorted by id.
    pub async fn list_groups(&self) -> Vec<(String, String, String)> {
        self.inner.with_state(|st, _| st.list())
    }

    /// DeleteGroups: only groups without members (NON_EMPTY_GROUP otherwise;
    /// GROUP_ID_NOT_FOUND for unknown ones). Tombstones for the group's offsets are
    /// written before it is forgotten.
    pub async fn delete_groups(&self, group_ids: Vec<String>) -> Vec<(String, i16)> {
        let (mut results, task) = self.inner.with_state(|st, ctx| {
            let results: Vec<(String, i16)> = group_ids
                .into_iter()
                .map(|id| {
                    let code = st.begin_delete(&id, ctx).err().unwrap_or(NONE);
                    (id, code)
                })
                .collect();
            let doomed: Vec<String> = results
                .iter()
                .filter(|(_, c)| *c == NONE)
                .map(|(id, _)| id.clone())
                .collect();
            let task = (!doomed.is_empty()).then(|| {
                let inner = self.inner.clone();
                let ids = doomed.clone();
                (
                    doomed,
                    self.inner
                        .tracker
                        .spawn_blocking(move || inner.delete_blocking(ids)),
                )
            });
            (results, task)
        });
        if let Some((doomed, task)) = task {
            let outcome: HashMap<String, i16> = match task.await {
                Ok(outcome) => outcome.into_iter().collect(),
                Err(e) => {
                    tracing::error!(error = %e, "group deletion task failed");
                    let mut st = lock(&self.inner.state);
                    for id in &doomed {
                        st.finish_delete(id, false);
                    }
                    doomed
                        .into_iter()
                        .map(|id| (id, UNKNOWN_SERVER_ERROR))
                        .collect()
                }
            };
            for (id, code) in &mut results {
                if *code == NONE
                    && let Some(c) = outcome.get(id.as_str())
                {
                    *code = *c;
                }
            }
        }
        results
    }

    /// Stop: waiting joins and syncs answer NOT_COORDINATOR, so does every later
    /// request; waits for the timer task and for appends already under way.
    pub async fn shutdown(&self) {
        self.inner.with_state(|st, _| st.close());
        self.inner.cancel.cancel();
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
    }
}

impl Inner {
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            config: &self.config,
            now: Instant::now(),
            now_ms: self.clock.now_ms(),
        }
    }

    fn with_state<R>(&self, f: impl FnOnce(&mut State, &Ctx) -> R) -> R {
        let mut st = lock(&self.state);
        let ctx = self.ctx();
        let out = f(&mut st, &ctx);
        let wake = st.take_wake();
        drop(st);
        if wake {
            self.notify.notify_one();
        }
        out
    }

    fn partition_lock(&self, partition: i32) -> MutexGuard<'_, ()> {
        let i = usize::try_from(partition).unwrap_or(0);
        lock(&self.partition_locks[i.min(self.partition_locks.len() - 1)])
    }

    /// Append records to an offsets partition. Blocking.
    fn append(&self, partition: i32, records: &[(&[u8], Option<&[u8]>)], timestamp: i64) -> i16 {
        if records.is_empty() {
            return NONE;
        }
        let Some(log) = self.store.partition(OFFSETS_TOPIC, partition) else {
            tracing::error!(partition, "__consumer_offsets partition is gone");
            return codes::COORDINATOR_NOT_AVAILABLE;
        };
        let mut builder = BatchBuilder::new(Compression::None);
        for (key, value) in records {
            builder.push(timestamp, Some(key), *value, &[]);
        }
        let batch = match builder.build() {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(partition, error = %e, "building an offsets batch failed");
                return UNKNOWN_SERVER_ERROR;
            }
        };
        match log.append(&batch) {
            Ok(_) => NONE,
            Err(e) => {
                tracing::warn!(partition, error = %e, "appending to __consumer_offsets failed");
                log_error_code(&e)
            }
        }
    }

    /// The blocking half of a commit: append, then make the offsets visible.
    fn append_commit(
        &self,
        group_id: &str,
        records: &[(Vec<u8>, Vec<u8>)],
        updates: Vec<((String, i32), Committed)>,
        timestamp: i64,
    ) -> Result<(), i16> {
        let partition = partition_for(group_id, self.partitions);
        let _write = self.partition_lock(partition);
        let records: Vec<(&[u8], Option<&[u8]>)> = records
            .iter()
            .map(|(k, v)| (k.as_slice(), Some(v.as_slice())))
            .collect();
        match self.append(partition, &records, timestamp) {
            NONE => {
                lock(&self.state).apply_offsets(group_id, updates, self.clock.now_ms());
                Ok(())
            }
            code => Err(code),
        }
    }

    /// Tombstones for every offset of each group (all Dead), then forget the groups.
    fn delete_blocking(&self, groups: Vec<String>) -> Vec<(String, i16)> {
        let mut by_partition: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        for g in groups {
            by_partition
                .entry(partition_for(&g, self.partitions))
                .or_default()
                .push(g);
        }
        let mut out = Vec::new();
        for (partition, groups) in by_partition {
            let _write = self.partition_lock(partition);
            let keys: Vec<Vec<u8>> = {
                let st = lock(&self.state);
                groups
                    .iter()
                    .flat_map(|g| {
                        st.dead_group_offsets(g)
                            .into_iter()
                            .filter_map(|(t, p)| offsets::encode_key(g, &t, p))
                            .collect::<Vec<_>>()
                    })
                    .collect()
            };
            let records: Vec<(&[u8], Option<&[u8]>)> =
                keys.iter().map(|k| (k.as_slice(), None)).collect();
            let code = self.append(partition, &records, self.clock.now_ms());
            let mut st = lock(&self.state);
            for g in &groups {
                st.finish_delete(g, code == NONE);
            }
            drop(st);
            tracing::info!(partition, groups = ?groups, tombstones = keys.len(), code, "deleted groups");
            out.extend(groups.into_iter().map(|g| (g, code)));
        }
        out
    }

    /// One offset expiry pass (KIP-211), then forget groups with nothing left.
    fn expire_offsets(&self) {
        let expired = {
            let mut st = lock(&self.state);
            st.collect_expired(&self.ctx())
        };
        let mut by_partition: BTreeMap<i32, Vec<_>> = BTreeMap::new();
        for (group, list) in expired {
            by_partition
                .entry(partition_for(&group, self.partitions))
                .or_default()
                .push((group, list));
        }
        for (partition, groups) in by_partition {
            let _write = self.partition_lock(partition);
            let confirmed: Vec<(String, Vec<(String, i32)>)> = {
                let st = lock(&self.state);
                groups
                    .into_iter()
                    .map(|(g, list)| {
                        let keys = st
                            .still_committed(&g, list)
                            .into_iter()
                            .map(|(k, _)| k)
                            .collect::<Vec<_>>();
                        (g, keys)
                    })
                    .filter(|(_, keys)| !keys.is_empty())
                    .collect()
            };
            let keys: Vec<Vec<u8>> = confirmed
                .iter()
                .flat_map(|(g, ks)| ks.iter().filter_map(|(t, p)| offsets::encode_key(g, t, *p)))
                .collect();
            let records: Vec<(&[u8], Option<&[u8]>)> =
                keys.iter().map(|k| (k.as_slice(), None)).collect();
            let code = self.append(partition, &records, self.clock.now_ms());
            if code != NONE {
                tracing::warn!(
                    partition,
                    code,
                    "could not write tombstones for expired offsets; will retry"
                );
                continue;
            }
            let mut st = lock(&self.state);
            for (g, ks) in &confirmed {
                st.remove_offsets(g, ks);
            }
            drop(st);
            if !keys.is_empty() {
                tracing::info!(partition, offsets = keys.len(), "expired committed offsets");
            }
        }
    }

    /// Start an expiry pass on the blocking pool unless one is running.
    fn start_expiration(self: &Arc<Self>) {
        if self.expiring.swap(true, Ordering::AcqRel) {
            return;
        }
        let st = lock(&self.state);
        if st.is_closed() {
            self.expiring.store(false, Ordering::Release);
            return;
        }
        let inner = Arc::clone(self);
        self.tracker.spawn_blocking(move || {
            // Cleared on the way out even if the pass panics, so later passes run.
            struct Done<'a>(&'a AtomicBool);
            impl Drop for Done<'_> {
                fn drop(&mut self) {
                    self.0.store(false, Ordering::Release);
                }
            }
            let _done = Done(&inner.expiring);
            inner.expire_offsets();
        });
        drop(st);
    }

    fn fire_timers(&self) -> Option<Instant> {
        let mut st = lock(&self.state);
        let ctx = self.ctx();
        st.fire_due(&ctx)
    }
}

/// The coordinator's one background task. Holds only a weak reference between wake-ups
/// so that dropping the coordinator ends it.
async fn run_timers(
    inner: Weak<Inner>,
    notify: Arc<Notify>,
    cancel: CancellationToken,
    check_every: Duration,
) {
    let mut next_check = Instant::now() + check_every;
    loop {
        let wake_at = {
            let Some(inner) = inner.upgrade() else {
                return;
            };
            let now = Instant::now();
            if now >= next_check {
                inner.start_expiration();
                next_check = now + check_every;
            }
            inner
                .fire_timers()
                .map_or(next_check, |t| t.min(next_check))
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = notify.notified() => {}
            () = tokio::time::sleep_until(wake_at) => {}
        }
    }
}
