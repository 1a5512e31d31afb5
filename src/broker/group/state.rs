//! The classic group state machine: members, generations, rebalances, and the timers
//! that drive them. Synchronous and clock-free: every call gets the time in a [`Ctx`],
//! and a request that must wait for a rebalance gets a `oneshot` receiver that a later
//! call (another member's join, a timer) completes.
//!
//! States, as Kafka's `GroupMetadata` names them:
//! ```text
//!   Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance
//!     ▲                 ▲   │                                       │ leader's sync
//!     └──no members─────┘   └───────────no members──────────▶ Empty  ▼
//!                        ◀──join, leave, expiry, sync timeout── Stable
//!   Empty ──delete──▶ Dead (until its tombstones are written, then forgotten)
//! ```
//!
//! What it is not: storage. Offsets are kept here, but only the caller appends them to
//! the log and only after a successful append are they put here.

use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::{Duration, Instant};

use super::codes::{
    COORDINATOR_NOT_AVAILABLE, FENCED_INSTANCE_ID, GROUP_ID_NOT_FOUND, GROUP_MAX_SIZE_REACHED,
    ILLEGAL_GENERATION, INCONSISTENT_GROUP_PROTOCOL, INVALID_GROUP_ID, INVALID_SESSION_TIMEOUT,
    MEMBER_ID_REQUIRED, NON_EMPTY_GROUP, NONE, NOT_COORDINATOR, OFFSET_METADATA_TOO_LARGE,
    REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID, UNKNOWN_TOPIC_OR_PARTITION,
};
use super::config::GroupConfig;
use super::offsets::{self, Committed, Offsets};
use super::types::{
    CommitResult, FetchResult, GroupDescription, JoinGroupRequest, JoinGroupResponse, JoinedMember,
    MemberDescription, OffsetCommitRequest, Protocol, SyncGroupRequest, SyncGroupResponse,
    no_offset,
};

/// ((topic, partition), committed offset) pairs.
pub(super) type OffsetEntries = Vec<((String, i32), Committed)>;

/// A member added by a join has this long for the rebalance to complete before it is
/// dropped (Kafka's `NewMemberJoinTimeoutMs`): clients that gave up on a join must not
/// hold a rebalance for a whole rebalance timeout again.
pub(super) const NEW_MEMBER_JOIN_TIMEOUT: Duration = Duration::from_secs(300);

/// The smallest timer we arm, so a zero timeout cannot make a timer fire in a loop.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka's DescribeGroups and ListGroups use.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

use GroupState::{CompletingRebalance, Dead, Empty, PreparingRebalance, Stable};

/// The time of one call: a monotonic instant for timers and wall-clock milliseconds
/// for what is stored (commit timestamps, when a group became empty).
#[derive(Debug)]
pub(super) struct Ctx<'a> {
    pub config: &'a GroupConfig,
    pub now: Instant,
    pub now_ms: i64,
}

/// An answer available now, or one to wait for.
#[derive(Debug)]
pub(super) enum Reply<T> {
    Now(T),
    Wait(oneshot::Receiver<T>),
}

/// A validated join: the request and its timeouts.
struct Joining {
    req: JoinGroupRequest,
    session: Duration,
    rebalance: Duration,
}

#[derive(Debug)]
struct Member {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<Protocol>,
    assignment: Bytes,
    join_waiter: Option<oneshot::Sender<JoinGroupResponse>>,
    sync_waiter: Option<oneshot::Sender<SyncGroupResponse>>,
    /// Added by a join of the current rebalance; expires on NEW_MEMBER_JOIN_TIMEOUT.
    is_new: bool,
    /// When the session expires unless the member is heard from (or protected).
    deadline: Instant,
}

impl Member {
    /// Members waiting in a join or a sync are alive by definition (Kafka's
    /// `hasSatisfiedHeartbeat`); their timer restarts when the wait ends. New members
    /// are the exception: their deadline is the new-member join timeout.
    fn protected(&self) -> bool {
        self.sync_waiter.is_some() || (self.join_waiter.is_some() && !self.is_new)
    }

    fn touch(&mut self, now: Instant) {
        self.deadline = now + self.session_timeout;
    }

    fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(n, _)| n == protocol)
    }

    fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn reply_join(&mut self, answer: JoinGroupResponse) {
        if let Some(tx) = self.join_waiter.take() {
            // The requester may have gone away; nothing to do then.
            let _ = tx.send(answer);
        }
    }

    fn reply_sync(&mut self, answer: SyncGroupResponse) {
        if let Some(tx) = self.sync_waiter.take() {
            let _ = tx.send(answer);
        }
    }
}

/// The first rebalance of an empty group waits `group.initial.rebalance.delay.ms`,
/// again each time a member joined meanwhile, until the rebalance timeout is used up.
#[derive(Debug)]
struct InitialDelay {
    remaining: Duration,
    new_member_added: bool,
}

#[derive(Debug)]
pub(super) struct Group {
    id: String,
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader: Option<String>,
    /// Ordered by member id so answers and leader elections are deterministic.
    members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with their expiry (KIP-394).
    pending: HashMap<String, Instant>,
    /// group.instance.id -> member id (KIP-345).
    static_members: HashMap<String, String>,
    /// Members of the new generation that have not sent SyncGroup yet.
    pending_sync: HashSet<String>,
    sync_deadline: Option<Instant>,
    join_deadline: Option<Instant>,
    initial_delay: Option<InitialDelay>,
    offsets: Offsets,
    /// Wall-clock ms when the group last became empty (or was created or loaded):
    /// offsets of an empty group expire relative to it.
    empty_since_ms: i64,
    /// The earliest timer queued for this group in [`State::timers`].
    scheduled: Option<Instant>,
}

impl Group {
    fn new(id: &str, now_ms: i64) -> Group {
        Group {
            id: id.to_owned(),
            state: Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            static_members: HashMap::new(),
            pending_sync: HashSet::new(),
            sync_deadline: None,
            join_deadline: None,
            initial_delay: None,
            offsets: Offsets::new(),
            empty_since_ms: now_ms,
            scheduled: None,
        }
    }

    /// An empty group with nothing committed can be forgotten.
    fn is_disposable(&self) -> bool {
        self.state == Empty
            && self.members.is_empty()
            && self.pending.is_empty()
            && self.offsets.is_empty()
    }

    fn max_rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
            .max(MIN_TIMEOUT)
    }

    // ---- joining -------------------------------------------------------------------

    fn join(&mut self, j: Joining, ctx: &Ctx) -> Reply<JoinGroupResponse> {
        let reply = self.join_inner(j, ctx);
        // As Kafka's handleJoinGroup ends: this join may have been the last one awaited.
        self.try_complete_join(ctx);
        reply
    }

    fn join_inner(&mut self, j: Joining, ctx: &Ctx) -> Reply<JoinGroupResponse> {
        let id = j.req.member_id.clone();
        let fail = |code| Reply::Now(JoinGroupResponse::error(id.clone(), code));
        if self.state == Dead {
            // Being deleted: the client retries and then finds no group.
            return fail(COORDINATOR_NOT_AVAILABLE);
        }
        if !self.accepts_joining(&j.req, ctx.config) {
            if self.members.contains_key(&id) {
                self.remove_member_and_update(&id, ctx);
            }
            return Reply::Now(JoinGroupResponse::error("", GROUP_MAX_SIZE_REACHED));
        }
        let me = (!id.is_empty()).then_some(id.as_str());
        if !self.supports_protocols(me, &j.req.protocol_type, &j.req.protocols) {
            return fail(INCONSISTENT_GROUP_PROTOCOL);
        }
        if id.is_empty() {
            self.join_new_member(j, ctx)
        } else {
            self.join_known_member(j, ctx)
        }
    }

    /// `group.max.size`, counted as Kafka does: while preparing a rebalance only the
    /// members that rejoined count (others may be about to go).
    fn accepts_joining(&self, req: &JoinGroupRequest, config: &GroupConfig) -> bool {
        let id = req.member_id.as_str();
        let known_static = req
            .group_instance_id
            .as_ref()
            .is_some_and(|i| self.static_members.contains_key(i));
        match self.state {
            Empty | Dead => true,
            PreparingRebalance => {
                known_static
                    || self
                        .members
                        .get(id)
                        .is_some_and(|m| m.join_waiter.is_some())
                    || self
                        .members
                        .values()
                        .filter(|m| m.join_waiter.is_some())
                        .count()
                        < config.max_size
            }
            CompletingRebalance | Stable => {
                known_static
                    || self.members.contains_key(id)
                    || self.members.len() < config.max_size
            }
        }
    }

    /// A joining member must name the group's protocol type and at least one protocol
    /// every other member supports. The first member only needs a non-empty type and
    /// protocol list.
    fn supports_protocols(
        &self,
        me: Option<&str>,
        protocol_type: &str,
        protocols: &[Protocol],
    ) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        let mut others = self
            .members
            .values()
            .filter(|m| Some(m.id.as_str()) != me)
            .peekable();
        if others.peek().is_none() {
            return true;
        }
        let others: Vec<&Member> = others.collect();
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| others.iter().all(|m| m.supports(name)))
    }

    fn join_new_member(&mut self, j: Joining, ctx: &Ctx) -> Reply<JoinGroupResponse> {
        let prefix = j
            .req
            .group_instance_id
            .as_deref()
            .unwrap_or(&j.req.client_id);
        let new_id = new_member_id(prefix);
        match j.req.group_instance_id.clone() {
            Some(instance) => match self.static_members.get(&instance).cloned() {
                Some(old) => self.replace_static_member(&old, new_id, j, ctx),
                None => self.add_member_and_rebalance(new_id, j, ctx),
            },
            None if j.req.api_version >= 4 => {
                // KIP-394: hand out the id and let the member come back with it, so
                // a client that never receives this answer leaves no member behind.
                self.pending.insert(new_id.clone(), ctx.now + j.session);
                Reply::Now(JoinGroupResponse::error(new_id, MEMBER_ID_REQUIRED))
            }
            None => self.add_member_and_rebalance(new_id, j, ctx),
        }
    }

    fn join_known_member(&mut self, j: Joining, ctx: &Ctx) -> Reply<JoinGroupResponse> {
        let id = j.req.member_id.clone();
        if self.pending.contains_key(&id) {
            return self.add_member_and_rebalance(id, j, ctx);
        }
        if let Some(code) = self.validate_member(&id, j.req.group_instance_id.as_deref()) {
            return Reply::Now(JoinGroupResponse::error(id, code));
        }
        let unchanged = self
            .members
            .get(&id)
            .is_some_and(|m| m.protocols == j.req.protocols);
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        match self.state {
            // A repeated join (the answer was lost): answer the current generation.
            CompletingRebalance if unchanged => {
                self.touch(&id, ctx.now);
                Reply::Now(self.join_answer(&id, is_leader))
            }
            // A follower rejoining with the same metadata changes nothing. The leader
            // rejoining is how a client asks for a rebalance (e.g. its topics changed).
            Stable if unchanged && !is_leader => {
                self.touch(&id, ctx.now);
                Reply::Now(self.join_answer(&id, false))
            }
            PreparingRebalance | CompletingRebalance | Stable => {
                self.update_member_and_rebalance(&id, j, ctx)
            }
            Empty | Dead => Reply::Now(JoinGroupResponse::error(id, UNKNOWN_MEMBER_ID)),
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        id: String,
        j: Joining,
        ctx: &Ctx,
    ) -> Reply<JoinGroupResponse> {
        let (tx, rx) = oneshot::channel();
        if self.members.is_empty() {
            self.protocol_type = Some(j.req.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        if let Some(instance) = &j.req.group_instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        self.pending.remove(&id);
        let member = Member {
            id: id.clone(),
            instance_id: j.req.group_instance_id,
            client_id: j.req.client_id,
            client_host: j.req.client_host,
            session_timeout: j.session,
            rebalance_timeout: j.rebalance,
            protocols: j.req.protocols,
            assignment: Bytes::new(),
            join_waiter: Some(tx),
            sync_waiter: None,
            is_new: true,
            deadline: ctx.now + NEW_MEMBER_JOIN_TIMEOUT,
        };
        tracing::info!(group = %self.id, member = %id, state = self.state.as_str(), "member joins");
        self.members.insert(id, member);
        if self.state == PreparingRebalance
            && let Some(delay) = &mut self.initial_delay
        {
            delay.new_member_added = true;
        }
        self.maybe_prepare_rebalance(ctx);
        Reply::Wait(rx)
    }

    fn update_member_and_rebalance(
        &mut self,
        id: &str,
        j: Joining,
        ctx: &Ctx,
    ) -> Reply<JoinGroupResponse> {
        let alone = self.members.len() == 1;
        let Some(m) = self.members.get_mut(id) else {
            return Reply::Now(JoinGroupResponse::error(id, UNKNOWN_MEMBER_ID));
        };
        let (tx, rx) = oneshot::channel();
        m.protocols = j.req.protocols;
        m.session_timeout = j.session;
        m.rebalance_timeout = j.rebalance;
        if let Some(old) = m.join_waiter.replace(tx) {
            // A second join while the first waits: the first is superseded.
            let _ = old.send(JoinGroupResponse::error(id, REBALANCE_IN_PROGRESS));
        }
        if alone {
            self.protocol_type = Some(j.req.protocol_type);
        }
        self.maybe_prepare_rebalance(ctx);
        Reply::Wait(rx)
    }

    /// KIP-345: a static member rejoining without its member id gets a new one and
    /// takes over its old slot; anything waiting under the old id is fenced. A stable
    /// group whose member comes back with the same protocols does not rebalance.
    fn replace_static_member(
        &mut self,
        old: &str,
        new_id: String,
        j: Joining,
        ctx: &Ctx,
    ) -> Reply<JoinGroupResponse> {
        let Some(mut m) = self.members.remove(old) else {
            return Reply::Now(JoinGroupResponse::error("", UNKNOWN_MEMBER_ID));
        };
        let old_leader = self.leader.clone();
        m.reply_join(JoinGroupResponse::error(old, FENCED_INSTANCE_ID));
        m.reply_sync(SyncGroupResponse::error(FENCED_INSTANCE_ID));
        let unchanged = m.protocols == j.req.protocols;
        m.id = new_id.clone();
        m.client_id = j.req.client_id;
        m.client_host = j.req.client_host;
        m.session_timeout = j.session;
        m.rebalance_timeout = j.rebalance;
        m.touch(ctx.now);
        if self.leader.as_deref() == Some(old) {
            self.leader = Some(new_id.clone());
        }
        if self.pending_sync.remove(old) {
            self.pending_sync.insert(new_id.clone());
        }
        if let Some(instance) = &m.instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        tracing::info!(group = %self.id, old_member = %old, member = %new_id, instance = ?m.instance_id, "static member replaced");
        match self.state {
            Stable if unchanged => {
                self.members.insert(new_id.clone(), m);
                // As Kafka does without KIP-814's skip_assignment: name the previous
                // leader id, so a rejoining leader acts as a follower instead of running
                // an assignment the stable group would ignore.
                Reply::Now(JoinGroupResponse {
                    leader: old_leader.unwrap_or_default(),
                    ..self.join_answer(&new_id, false)
                })
            }
            CompletingRebalance if unchanged => {
                self.members.insert(new_id.clone(), m);
                let is_leader = self.leader.as_deref() == Some(new_id.as_str());
                Reply::Now(self.join_answer(&new_id, is_leader))
            }
            _ => {
                let (tx, rx) = oneshot::channel();
                m.protocols = j.req.protocols;
                m.join_waiter = Some(tx);
                self.members.insert(new_id, m);
                self.maybe_prepare_rebalance(ctx);
                Reply::Wait(rx)
            }
        }
    }

    /// The static-membership and membership checks every member request starts with.
    fn validate_member(&self, member_id: &str, instance_id: Option<&str>) -> Option<i16> {
        match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                Some(current) if current != member_id => Some(FENCED_INSTANCE_ID),
                Some(_) => None,
                None => Some(UNKNOWN_MEMBER_ID),
            },
            None if !self.members.contains_key(member_id) => Some(UNKNOWN_MEMBER_ID),
            None => None,
        }
    }

    fn touch(&mut self, member_id: &str, now: Instant) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.touch(now);
        }
    }

    fn member_list(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata(protocol)))
            .collect()
    }

    fn join_answer(&self, member_id: &str, with_members: bool) -> JoinGroupResponse {
        JoinGroupResponse {
            error_code: NONE,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_owned(),
            members: if with_members {
                self.member_list()
            } else {
                Vec::new()
            },
            skip_assignment: false,
        }
    }

    // ---- rebalancing ---------------------------------------------------------------

    fn maybe_prepare_rebalance(&mut self, ctx: &Ctx) {
        if matches!(self.state, Stable | CompletingRebalance | Empty) {
            self.prepare_rebalance(ctx);
        }
    }

    fn prepare_rebalance(&mut self, ctx: &Ctx) {
        if self.state == CompletingRebalance {
            // Followers waiting for the leader's assignment must rejoin instead.
            self.reset_and_propagate_assignment_error(REBALANCE_IN_PROGRESS, ctx.now);
        }
        self.pending_sync.clear();
        self.sync_deadline = None;
        let rebalance = self.max_rebalance_timeout();
        let delay = ctx.config.initial_rebalance_delay;
        if self.state == Empty && !delay.is_zero() {
            self.initial_delay = Some(InitialDelay {
                remaining: rebalance.saturating_sub(delay),
                new_member_added: false,
            });
            self.join_deadline = Some(ctx.now + delay);
        } else {
            self.initial_delay = None;
            self.join_deadline = Some(ctx.now + rebalance);
        }
        tracing::info!(group = %self.id, generation = self.generation, from = self.state.as_str(), "preparing to rebalance");
        self.state = PreparingRebalance;
        self.try_complete_join(ctx);
    }

    /// Complete the join phase early once every member has rejoined and no handed-out
    /// member id is outstanding. Never during the initial delay, whose point is to wait.
    fn try_complete_join(&mut self, ctx: &Ctx) {
        if self.state == PreparingRebalance
            && self.initial_delay.is_none()
            && self.pending.is_empty()
            && self.members.values().all(|m| m.join_waiter.is_some())
        {
            self.complete_join(ctx);
        }
    }

    fn on_join_deadline(&mut self, ctx: &Ctx) {
        if let Some(delay) = &mut self.initial_delay {
            if delay.new_member_added && !delay.remaining.is_zero() {
                let next = ctx.config.initial_rebalance_delay.min(delay.remaining);
                delay.remaining -= next;
                delay.new_member_added = false;
                self.join_deadline = Some(ctx.now + next.max(MIN_TIMEOUT));
                return;
            }
            self.initial_delay = None;
        }
        self.complete_join(ctx);
    }

    /// End the join phase: drop dynamic members that did not rejoin, elect a leader
    /// among those that did, start the next generation and answer every waiting join.
    fn complete_join(&mut self, ctx: &Ctx) {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            tracing::info!(group = %self.id, member = %id, "removing a member that did not rejoin within the rebalance timeout");
            self.remove_member(id);
        }
        let leader_rejoined = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .is_some_and(|m| m.join_waiter.is_some());
        if !leader_rejoined {
            self.leader = self
                .members
                .values()
                .find(|m| m.join_waiter.is_some())
                .map(|m| m.id.clone());
        }
        if self.leader.is_none() && !self.members.is_empty() {
            // Only static members that have not rejoined are left. They keep their
            // slots (KIP-345); wait another rebalance timeout, or until their sessions
            // expire.
            self.join_deadline = Some(ctx.now + self.max_rebalance_timeout());
            return;
        }
        self.generation = self.generation.wrapping_add(1);
        self.join_deadline = None;
        self.initial_delay = None;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.state = Empty;
            self.empty_since_ms = ctx.now_ms;
            tracing::info!(group = %self.id, generation = self.generation, "group is empty");
            return;
        }
        self.protocol_name = Some(self.select_protocol());
        self.state = CompletingRebalance;
        let everyone = self.member_list();
        let leader = self.leader.clone().unwrap_or_default();
        let (generation, protocol_type, protocol_name) = (
            self.generation,
            self.protocol_type.clone(),
            self.protocol_name.clone(),
        );
        for m in self.members.values_mut() {
            m.reply_join(JoinGroupResponse {
                error_code: NONE,
                generation_id: generation,
                protocol_type: protocol_type.clone(),
                protocol_name: protocol_name.clone(),
                leader: leader.clone(),
                member_id: m.id.clone(),
                members: if m.id == leader {
                    everyone.clone()
                } else {
                    Vec::new()
                },
                skip_assignment: false,
            });
            m.touch(ctx.now);
            m.is_new = false;
        }
        self.pending_sync = self.members.keys().cloned().collect();
        self.sync_deadline = Some(ctx.now + self.max_rebalance_timeout());
        tracing::info!(
            group = %self.id,
            generation,
            members = self.members.len(),
            protocol = ?self.protocol_name,
            %leader,
            "rebalance: join phase complete"
        );
    }

    /// Kafka's vote: among the protocols every member supports, each member votes for
    /// the first in its own preference order; most votes wins, ties go to the
    /// leader's preference.
    fn select_protocol(&self) -> String {
        let Some(first) = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .or_else(|| self.members.values().next())
        else {
            return String::new();
        };
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| self.members.values().all(|m| m.supports(n)))
            .collect();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some((name, _)) = m
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(&n.as_str()))
            {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for c in &candidates {
            let n = votes.get(c).copied().unwrap_or(0);
            if best.is_none_or(|(_, b)| n > b) {
                best = Some((c, n));
            }
        }
        best.map(|(c, _)| c.to_owned())
            .or_else(|| first.protocols.first().map(|(n, _)| n.clone()))
            .unwrap_or_default()
    }

    /// Remove a member, answering anything it waits for with UNKNOWN_MEMBER_ID.
    fn remove_member(&mut self, id: &str) -> bool {
        let Some(mut m) = self.members.remove(id) else {
            return false;
        };
        if let Some(instance) = &m.instance_id
            && self.static_members.get(instance).map(String::as_str) == Some(id)
        {
            self.static_members.remove(instance);
        }
        self.pending_sync.remove(id);
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.keys().next().cloned();
        }
        m.reply_join(JoinGroupResponse::error(id, UNKNOWN_MEMBER_ID));
        m.reply_sync(SyncGroupResponse::error(UNKNOWN_MEMBER_ID));
        true
    }

    /// Remove a member and let the group react: a rebalance, or the end of the
    /// current join phase if it was the last one awaited.
    fn remove_member_and_update(&mut self, id: &str, ctx: &Ctx) {
        if !self.remove_member(id) {
            return;
        }
        match self.state {
            Stable | CompletingRebalance => self.prepare_rebalance(ctx),
            PreparingRebalance => self.try_complete_join(ctx),
            Empty | Dead => {}
        }
    }

    fn reset_and_propagate_assignment_error(&mut self, code: i16, now: Instant) {
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
            if m.sync_waiter.is_some() {
                m.reply_sync(SyncGroupResponse::error(code));
                m.touch(now);
            }
        }
    }

    fn propagate_assignment(&mut self, now: Instant) {
        let (protocol_type, protocol_name) =
            (self.protocol_type.clone(), self.protocol_name.clone());
        for m in self.members.values_mut() {
            if m.sync_waiter.is_some() {
                let answer = SyncGroupResponse {
                    error_code: NONE,
                    protocol_type: protocol_type.clone(),
                    protocol_name: protocol_name.clone(),
                    assignment: m.assignment.clone(),
                };
                m.reply_sync(answer);
                m.touch(now);
            }
        }
    }

    fn synced(&mut self, member_id: &str) {
        self.pending_sync.remove(member_id);
        if self.pending_sync.is_empty() {
            self.sync_deadline = None;
        }
    }

    // ---- member requests after joining ---------------------------------------------

    fn sync(&mut self, req: SyncGroupRequest, ctx: &Ctx) -> Reply<SyncGroupResponse> {
        let fail = |code| Reply::Now(SyncGroupResponse::error(code));
        if self.state == Dead {
            return fail(COORDINATOR_NOT_AVAILABLE);
        }
        let id = req.member_id;
        if let Some(code) = self.validate_member(&id, req.group_instance_id.as_deref()) {
            return fail(code);
        }
        if req.generation_id != self.generation {
            return fail(ILLEGAL_GENERATION);
        }
        let type_differs = req
            .protocol_type
            .as_ref()
            .is_some_and(|t| self.protocol_type.as_ref() != Some(t));
        let name_differs = req
            .protocol_name
            .as_ref()
            .is_some_and(|n| self.protocol_name.as_ref() != Some(n));
        if type_differs || name_differs {
            return fail(INCONSISTENT_GROUP_PROTOCOL);
        }
        match self.state {
            Empty | Dead => fail(UNKNOWN_MEMBER_ID),
            PreparingRebalance => fail(REBALANCE_IN_PROGRESS),
            CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                self.synced(&id);
                if let Some(m) = self.members.get_mut(&id)
                    && let Some(old) = m.sync_waiter.replace(tx)
                {
                    let _ = old.send(SyncGroupResponse::error(REBALANCE_IN_PROGRESS));
                }
                if self.leader.as_deref() == Some(id.as_str()) {
                    let mut given: HashMap<String, Bytes> = req.assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = given.remove(&m.id).unwrap_or_default();
                    }
                    self.state = Stable;
                    self.propagate_assignment(ctx.now);
                    tracing::info!(group = %self.id, generation = self.generation, "rebalance: assignment received, group is stable");
                }
                Reply::Wait(rx)
            }
            Stable => {
                self.synced(&id);
                self.touch(&id, ctx.now);
                let assignment = self
                    .members
                    .get(&id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                Reply::Now(SyncGroupResponse {
                    error_code: NONE,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    assignment,
                })
            }
        }
    }

    fn heartbeat(
        &mut self,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        ctx: &Ctx,
    ) -> i16 {
        if self.state == Dead {
            return COORDINATOR_NOT_AVAILABLE;
        }
        if let Some(code) = self.validate_member(member_id, instance_id) {
            return code;
        }
        match self.state {
            Empty | Dead => UNKNOWN_MEMBER_ID,
            PreparingRebalance => {
                self.touch(member_id, ctx.now);
                REBALANCE_IN_PROGRESS
            }
            CompletingRebalance | Stable if generation != self.generation => ILLEGAL_GENERATION,
            CompletingRebalance | Stable => {
                self.touch(member_id, ctx.now);
                NONE
            }
        }
    }

    fn leave(
        &mut self,
        members: Vec<(String, Option<String>)>,
        ctx: &Ctx,
    ) -> Result<Vec<(String, Option<String>, i16)>, i16> {
        if self.state == Dead {
            return Err(COORDINATOR_NOT_AVAILABLE);
        }
        let mut out = Vec::with_capacity(members.len());
        for (member_id, instance_id) in members {
            let code = if member_id.is_empty() {
                // KIP-345: an admin removes a static member by its instance id alone.
                match instance_id
                    .as_ref()
                    .and_then(|i| self.static_members.get(i))
                    .cloned()
                {
                    Some(current) => {
                        tracing::info!(group = %self.id, member = %current, "static member removed by LeaveGroup");
                        self.remove_member_and_update(&current, ctx);
                        NONE
                    }
                    None => UNKNOWN_MEMBER_ID,
                }
            } else if self.pending.remove(&member_id).is_some() {
                self.try_complete_join(ctx);
                NONE
            } else if let Some(code) = self.validate_member(&member_id, instance_id.as_deref()) {
                code
            } else {
                tracing::info!(group = %self.id, member = %member_id, "member leaves");
                self.remove_member_and_update(&member_id, ctx);
                NONE
            };
            out.push((member_id, instance_id, code));
        }
        Ok(out)
    }

    /// Kafka's `validateOffsetCommit` and state rules for a commit by this group.
    fn validate_commit(&mut self, req: &OffsetCommitRequest, ctx: &Ctx) -> Result<(), i16> {
        if self.state == Dead {
            return Err(COORDINATOR_NOT_AVAILABLE);
        }
        let instance = req.group_instance_id.as_deref();
        if req.generation_id >= 0 || !req.member_id.is_empty() || instance.is_some() {
            if let Some(code) = self.validate_member(&req.member_id, instance) {
                return Err(code);
            }
            if req.generation_id != self.generation {
                return Err(ILLEGAL_GENERATION);
            }
        } else if self.state != Empty {
            // Only members commit for a group that has them.
            return Err(UNKNOWN_MEMBER_ID);
        }
        match self.state {
            Empty => Ok(()),
            // Still allowed while preparing: the heartbeat tells the member to rejoin.
            Stable | PreparingRebalance => {
                self.touch(&req.member_id, ctx.now);
                Ok(())
            }
            // The member has the new generation but not its assignment yet.
            CompletingRebalance | Dead => Err(REBALANCE_IN_PROGRESS),
        }
    }

    fn describe(&self) -> GroupDescription {
        let stable = self.state == Stable;
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupDescription {
            error_code: NONE,
            group_id: self.id.clone(),
            state: self.state.as_str().to_owned(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: self
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }
    }

    // ---- timers --------------------------------------------------------------------

    /// The earliest instant at which [`Group::run_due`] has something to do.
    fn next_deadline(&self) -> Option<Instant> {
        let pending = self.pending.values().copied();
        let members = self
            .members
            .values()
            .filter(|m| !m.protected())
            .map(|m| m.deadline);
        let join = self
            .join_deadline
            .filter(|_| self.state == PreparingRebalance);
        pending
            .chain(members)
            .chain(join)
            .chain(self.sync_deadline)
            .min()
    }

    /// Fire every timer due at `ctx.now`. Afterwards nothing is due any more.
    fn run_due(&mut self, ctx: &Ctx) {
        let now = ctx.now;
        let before = self.pending.len();
        self.pending.retain(|_, deadline| *deadline > now);
        if self.pending.len() != before {
            tracing::info!(group = %self.id, expired = before - self.pending.len(), "pending member ids expired");
            self.try_complete_join(ctx);
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.protected() && m.deadline <= now)
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member_and_update(&id, ctx);
        }
        if self.state == PreparingRebalance && self.join_deadline.is_some_and(|d| d <= now) {
            self.on_join_deadline(ctx);
        }
        if self.sync_deadline.is_some_and(|d| d <= now) {
            self.sync_deadline = None;
            if matches!(self.state, CompletingRebalance | Stable) && !self.pending_sync.is_empty() {
                let late: Vec<String> = self.pending_sync.drain().collect();
                for id in &late {
                    tracing::info!(group = %self.id, member = %id, "member did not sync within the rebalance timeout");
                    self.remove_member(id);
                }
                self.prepare_rebalance(ctx);
            }
            self.pending_sync.clear();
        }
    }

    /// Offsets due to expire: only in an empty group, `offsets.retention.minutes`
    /// after the later of the commit and the moment the group became empty (Kafka's
    /// KIP-211 rule), or at an explicit expire timestamp.
    fn expired_offsets(&self, now_ms: i64, retention_ms: i64) -> OffsetEntries {
        if self.state != Empty {
            return Vec::new();
        }
        self.offsets
            .iter()
            .filter(|(_, c)| match c.expire_timestamp {
                Some(at) => now_ms >= at,
                None => {
                    now_ms.saturating_sub(c.commit_timestamp.max(self.empty_since_ms))
                        >= retention_ms
                }
            })
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect()
    }

    fn close(&mut self) {
        for m in self.members.values_mut() {
            m.reply_join(JoinGroupResponse::error(m.id.clone(), NOT_COORDINATOR));
            m.reply_sync(SyncGroupResponse::error(NOT_COORDINATOR));
        }
    }
}

/// A member id as Kafka makes it: the client id (or the group instance id of a static
/// member), a dash, and a random UUID-shaped suffix. Unique, not secret.
fn new_member_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // RandomState is seeded randomly per process; hashing a counter and the time
    // through it gives unpredictable, distinct suffixes without a rand dependency.
    let seed = RandomState::new();
    let word = |salt: u64| {
        let mut h = seed.build_hasher();
        h.write_u64(n);
        h.write_u128(nanos);
        h.write_u64(salt);
        h.finish()
    };
    let (a, b) = (word(1), word(2));
    format!(
        "{prefix}-{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// Everything the coordinator holds in memory. Guarded by one mutex: every operation
/// is short and never waits while holding it.
#[derive(Debug, Default)]
pub(super) struct State {
    groups: HashMap<String, Group>,
    /// (when, group) min-heap. Entries are lazy: one is live only while it equals its
    /// group's `scheduled`; others are skipped when they come up.
    timers: BinaryHeap<Reverse<(Instant, String)>>,
    closed: bool,
    /// A timer earlier than any queued before was added: the timer task must re-arm.
    wake: bool,
}

/// What an offset commit will append, worked out under the lock.
#[derive(Debug)]
pub(super) struct CommitPlan {
    pub group_id: String,
    /// Per topic and partition: NONE for the ones being appended, else the error.
    pub results: CommitResult,
    /// Positions in `results` of the appended partitions.
    pub appended: Vec<(usize, usize)>,
    /// (key, value) of each record, in `appended` order.
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
    pub updates: OffsetEntries,
    pub timestamp: i64,
}

impl State {
    pub fn from_loaded(loaded: HashMap<String, Offsets>, now_ms: i64) -> State {
        let groups = loaded
            .into_iter()
            .map(|(id, offsets)| {
                let mut g = Group::new(&id, now_ms);
                g.offsets = offsets;
                (id, g)
            })
            .collect();
        State {
            groups,
            ..State::default()
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether the timer task must re-arm; clears the flag.
    pub fn take_wake(&mut self) -> bool {
        std::mem::take(&mut self.wake)
    }

    /// Run `f` on a group after firing its due timers, then queue its next timer.
    fn with_group<R>(
        &mut self,
        id: &str,
        create: bool,
        ctx: &Ctx,
        f: impl FnOnce(&mut Group) -> R,
    ) -> Option<R> {
        if create && !self.groups.contains_key(id) {
            self.groups
                .insert(id.to_owned(), Group::new(id, ctx.now_ms));
        }
        let group = self.groups.get_mut(id)?;
        group.run_due(ctx);
        let out = f(group);
        self.reschedule(id);
        Some(out)
    }

    fn reschedule(&mut self, id: &str) {
        let Some(group) = self.groups.get_mut(id) else {
            return;
        };
        let Some(next) = group.next_deadline() else {
            return;
        };
        if group.scheduled.is_some_and(|s| s <= next) {
            return;
        }
        group.scheduled = Some(next);
        let earliest = self.timers.peek().map(|Reverse((t, _))| *t);
        if earliest.is_none_or(|e| next < e) {
            self.wake = true;
        }
        self.timers.push(Reverse((next, id.to_owned())));
    }

    /// Fire every due timer; returns when the next one is due.
    pub fn fire_due(&mut self, ctx: &Ctx) -> Option<Instant> {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > ctx.now {
                break;
            }
            let Some(Reverse((at, id))) = self.timers.pop() else {
                break;
            };
            let Some(group) = self.groups.get_mut(&id) else {
                continue;
            };
            if group.scheduled != Some(at) {
                continue;
            }
            group.scheduled = None;
            group.run_due(ctx);
            self.reschedule(&id);
        }
        self.wake = false;
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// Stop: every waiting join and sync is answered NOT_COORDINATOR (as Kafka does
    /// when a coordinator unloads a group) and so is every later request.
    pub fn close(&mut self) {
        self.closed = true;
        for g in self.groups.values_mut() {
            g.close();
        }
        self.timers.clear();
    }

    pub fn join(&mut self, req: JoinGroupRequest, ctx: &Ctx) -> Reply<JoinGroupResponse> {
        let fail = |code| Reply::Now(JoinGroupResponse::error(req.member_id.clone(), code));
        if self.closed {
            return fail(NOT_COORDINATOR);
        }
        if req.group_id.is_empty() {
            return fail(INVALID_GROUP_ID);
        }
        let session = Duration::from_millis(u64::try_from(req.session_timeout_ms).unwrap_or(0));
        if req.session_timeout_ms < 0
            || session < ctx.config.min_session_timeout
            || session > ctx.config.max_session_timeout
        {
            return fail(INVALID_SESSION_TIMEOUT);
        }
        let rebalance = match u64::try_from(req.rebalance_timeout_ms) {
            Ok(ms) if req.api_version > 0 => Duration::from_millis(ms),
            _ => session,
        };
        let (group_id, member_id) = (req.group_id.clone(), req.member_id.clone());
        let joining = Joining {
            req,
            session,
            rebalance,
        };
        self.with_group(&group_id, member_id.is_empty(), ctx, |g| {
            g.join(joining, ctx)
        })
        .unwrap_or_else(|| Reply::Now(JoinGroupResponse::error(member_id, UNKNOWN_MEMBER_ID)))
    }

    pub fn sync(&mut self, req: SyncGroupRequest, ctx: &Ctx) -> Reply<SyncGroupResponse> {
        let fail = |code| Reply::Now(SyncGroupResponse::error(code));
        if self.closed {
            return fail(NOT_COORDINATOR);
        }
        if req.group_id.is_empty() {
            return fail(INVALID_GROUP_ID);
        }
        let group_id = req.group_id.clone();
        self.with_group(&group_id, false, ctx, |g| g.sync(req, ctx))
            .unwrap_or_else(|| fail(UNKNOWN_MEMBER_ID))
    }

    pub fn heartbeat(
        &mut self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        ctx: &Ctx,
    ) -> i16 {
        if self.closed {
            return NOT_COORDINATOR;
        }
        if group_id.is_empty() {
            return INVALID_GROUP_ID;
        }
        self.with_group(group_id, false, ctx, |g| {
            g.heartbeat(generation, member_id, instance_id, ctx)
        })
        .unwrap_or(UNKNOWN_MEMBER_ID)
    }

    pub fn leave(
        &mut self,
        group_id: &str,
        members: Vec<(String, Option<String>)>,
        ctx: &Ctx,
    ) -> (i16, Vec<(String, Option<String>, i16)>) {
        if self.closed {
            return (NOT_COORDINATOR, Vec::new());
        }
        if group_id.is_empty() {
            return (INVALID_GROUP_ID, Vec::new());
        }
        if !self.groups.contains_key(group_id) {
            let out = members
                .into_iter()
                .map(|(m, i)| (m, i, UNKNOWN_MEMBER_ID))
                .collect();
            return (NONE, out);
        }
        match self.with_group(group_id, false, ctx, |g| g.leave(members, ctx)) {
            Some(Ok(out)) => (NONE, out),
            Some(Err(code)) => (code, Vec::new()),
            None => (NONE, Vec::new()),
        }
    }

    /// Validate a commit and work out its records. `known[t][p]` says whether the
    /// request's t-th topic's p-th partition exists. An `Err` refuses every partition.
    pub fn plan_commit(
        &mut self,
        req: &OffsetCommitRequest,
        known: &[Vec<bool>],
        ctx: &Ctx,
    ) -> Result<CommitPlan, i16> {
        if self.closed {
            return Err(NOT_COORDINATOR);
        }
        if req.group_id.len() > i16::MAX as usize {
            return Err(INVALID_GROUP_ID);
        }
        // A commit outside group management creates the group, as for standalone
        // consumers; one naming a generation of a group we do not know is stale.
        let standalone = req.generation_id < 0;
        self.with_group(&req.group_id, standalone, ctx, |g| {
            g.validate_commit(req, ctx)
        })
        .unwrap_or(Err(ILLEGAL_GENERATION))?;
        let timestamp = ctx.now_ms;
        let expire =
            (req.retention_time_ms >= 0).then(|| timestamp.saturating_add(req.retention_time_ms));
        let mut plan = CommitPlan {
            group_id: req.group_id.clone(),
            results: Vec::with_capacity(req.topics.len()),
            appended: Vec::new(),
            records: Vec::new(),
            updates: Vec::new(),
            timestamp,
        };
        for (ti, (topic, partitions)) in req.topics.iter().enumerate() {
            let mut codes = Vec::with_capacity(partitions.len());
            for (pi, (partition, offset, leader_epoch, metadata)) in partitions.iter().enumerate() {
                let exists = known
                    .get(ti)
                    .and_then(|k| k.get(pi))
                    .copied()
                    .unwrap_or(false);
                let metadata = metadata.clone().unwrap_or_default();
                let committed = Committed {
                    offset: *offset,
                    leader_epoch: *leader_epoch,
                    metadata,
                    commit_timestamp: timestamp,
                    expire_timestamp: expire,
                };
                let code = if !exists {
                    UNKNOWN_TOPIC_OR_PARTITION
                } else if committed.metadata.encode_utf16().count()
                    > ctx.config.offset_metadata_max_bytes
                {
                    OFFSET_METADATA_TOO_LARGE
                } else {
                    match (
                        offsets::encode_key(&req.group_id, topic, *partition),
                        offsets::encode_value(&committed),
                    ) {
                        (Some(k), Some(v)) => {
                            plan.records.push((k, v));
                            plan.updates.push(((topic.clone(), *partition), committed));
                            plan.appended.push((ti, pi));
                            NONE
                        }
                        _ => OFFSET_METADATA_TOO_LARGE,
                    }
                };
                codes.push((*partition, code));
            }
            plan.results.push((topic.clone(), codes));
        }
        Ok(plan)
    }

    /// After a successful append: the committed offsets become visible.
    pub fn apply_offsets(&mut self, group_id: &str, updates: OffsetEntries, now_ms: i64) {
        let group = self
            .groups
            .entry(group_id.to_owned())
            .or_insert_with(|| Group::new(group_id, now_ms));
        group.offsets.extend(updates);
    }

    pub fn fetch_offsets(
        &mut self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<FetchResult, i16> {
        if self.closed {
            return Err(NOT_COORDINATOR);
        }
        let offsets = self
            .groups
            .get(group_id)
            .filter(|g| g.state != Dead)
            .map(|g| &g.offsets);
        let found = |topic: &str, p: i32| match offsets.and_then(|o| o.get(&(topic.to_owned(), p)))
        {
            Some(c) => (p, c.offset, c.leader_epoch, c.metadata.clone(), NONE),
            None => no_offset(p),
        };
        Ok(match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(t, ps)| {
                    let parts = ps.into_iter().map(|p| found(&t, p)).collect();
                    (t, parts)
                })
                .collect(),
            None => {
                let mut out: FetchResult = Vec::new();
                for ((topic, p), _) in offsets.into_iter().flatten() {
                    if out.last().is_none_or(|(t, _)| t != topic) {
                        out.push((topic.clone(), Vec::new()));
                    }
                    if let Some((_, parts)) = out.last_mut() {
                        parts.push(found(topic, *p));
                    }
                }
                out
            }
        })
    }

    pub fn describe(&mut self, ids: &[String], ctx: &Ctx) -> Vec<GroupDescription> {
        ids.iter()
            .map(|id| {
                if self.closed {
                    return GroupDescription::dead(id, NOT_COORDINATOR);
                }
                self.with_group(id, false, ctx, |g| g.describe())
                    .unwrap_or_else(|| GroupDescription::dead(id, NONE))
            })
            .collect()
    }

    pub fn list(&self) -> Vec<(String, String, String)> {
        if self.closed {
            return Vec::new();
        }
        let mut out: Vec<_> = self
            .groups
            .values()
            .filter(|g| g.state != Dead)
            .map(|g| {
                (
                    g.id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state.as_str().to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// First step of DeleteGroups: each group that is Empty becomes Dead (refusing
    /// joins and commits) until its tombstones are written. `Ok` means marked.
    pub fn begin_delete(&mut self, id: &str, ctx: &Ctx) -> Result<(), i16> {
        if self.closed {
            return Err(NOT_COORDINATOR);
        }
        self.with_group(id, false, ctx, |g| match g.state {
            Dead => Err(GROUP_ID_NOT_FOUND),
            Empty => {
                g.state = Dead;
                g.pending.clear();
                Ok(())
            }
            PreparingRebalance | CompletingRebalance | Stable => Err(NON_EMPTY_GROUP),
        })
        .unwrap_or(Err(GROUP_ID_NOT_FOUND))
    }

    /// The offsets a Dead group still has (read under the partition's write lock, so
    /// no commit can slip in between).
    pub fn dead_group_offsets(&self, id: &str) -> Vec<(String, i32)> {
        self.groups
            .get(id)
            .filter(|g| g.state == Dead)
            .map(|g| g.offsets.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Last step of DeleteGroups: forget the group, or, if its tombstones could not
    /// be written, bring it back as Empty with its offsets.
    pub fn finish_delete(&mut self, id: &str, written: bool) {
        match self.groups.get_mut(id) {
            Some(g) if g.state == Dead && written => {
                self.groups.remove(id);
            }
            Some(g) if g.state == Dead => g.state = Empty,
            _ => {}
        }
    }

    /// Offsets that have expired, per group, and forget groups with nothing left.
    pub fn collect_expired(&mut self, ctx: &Ctx) -> Vec<(String, OffsetEntries)> {
        let retention_ms =
            i64::try_from(ctx.config.offsets_retention.as_millis()).unwrap_or(i64::MAX);
        self.groups.retain(|id, g| {
            let keep = !g.is_disposable();
            if !keep {
                tracing::debug!(group = %id, "forgetting an empty group with no offsets");
            }
            keep
        });
        self.groups
            .values()
            .map(|g| (g.id.clone(), g.expired_offsets(ctx.now_ms, retention_ms)))
            .filter(|(_, e)| !e.is_empty())
            .collect()
    }

    /// Of `candidates`, the ones still committed exactly as they were.
    pub fn still_committed(&self, group_id: &str, candidates: OffsetEntries) -> OffsetEntries {
        let Some(g) = self.groups.get(group_id).filter(|g| g.state == Empty) else {
            return Vec::new();
        };
        candidates
            .into_iter()
            .filter(|(k, c)| g.offsets.get(k) == Some(c))
            .collect()
    }

    /// After tombstones were written for them: drop the offsets, and the group if
    /// nothing is left of it.
    pub fn remove_offsets(&mut self, group_id: &str, keys: &[(String, i32)]) {
        if let Some(g) = self.groups.get_mut(group_id) {
            for k in keys {
                g.offsets.remove(k);
            }
            if g.is_disposable() {
                self.groups.remove(group_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_look_like_kafkas() {
        let a = new_member_id("client");
        let b = new_member_id("client");
        assert_ne!(a, b);
        let suffix = a.strip_prefix("client-").unwrap();
        let parts: Vec<&str> = suffix.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12],
            "{a}"
        );
        assert!(suffix.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn protocol_vote_follows_member_preference() {
        let config = GroupConfig::default();
        let ctx = Ctx {
            config: &config,
            now: Instant::now(),
            now_ms: 0,
        };
        let mut g = Group::new("g", 0);
        for (id, protos) in [
            ("a", vec!["range", "roundrobin", "sticky"]),
            ("b", vec!["roundrobin", "range", "sticky"]),
            ("c", vec!["sticky", "roundrobin", "range"]),
            ("d", vec!["roundrobin", "sticky"]),
        ] {
            g.members.insert(
                id.to_owned(),
                Member {
                    id: id.to_owned(),
                    instance_id: None,
                    client_id: String::new(),
                    client_host: String::new(),
                    session_timeout: Duration::from_secs(10),
                    rebalance_timeout: Duration::from_secs(10),
                    protocols: protos
                        .iter()
                        .map(|p| (p.to_string(), Bytes::new()))
                        .collect(),
                    assignment: Bytes::new(),
                    join_waiter: None,
                    sync_waiter: None,
                    is_new: false,
                    deadline: ctx.now,
                },
            );
        }
        g.leader = Some("a".into());
        // Common: roundrobin, sticky. Votes: a rr, b rr, c sticky, d rr.
        assert_eq!(g.select_protocol(), "roundrobin");
        g.members.remove("d");
        g.members.remove("b");
        // a votes range, c votes sticky: a tie goes to the leader's preference.
        assert_eq!(g.select_protocol(), "range");
        g.protocol_type = Some("consumer".into());
        let protos = |names: &[&str]| -> Vec<Protocol> {
            names
                .iter()
                .map(|n| (n.to_string(), Bytes::new()))
                .collect()
        };
        assert!(g.supports_protocols(None, "consumer", &protos(&["x", "range"])));
        assert!(!g.supports_protocols(None, "consumer", &protos(&["cooperative-sticky"])));
        assert!(!g.supports_protocols(None, "connect", &protos(&["range"])));
        // A member changing its own protocols is checked against the others only.
        assert!(g.supports_protocols(Some("a"), "consumer", &protos(&["sticky"])));
        assert!(!g.supports_protocols(None, "", &protos(&["range"])));
        assert!(!g.supports_protocols(None, "consumer", &[]));
    }
}
