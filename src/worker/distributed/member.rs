//! The worker's membership in its Connect cluster: one async task that joins the group
//! (protocol type `connect`), computes the assignment when it leads, applies what it is
//! given, heartbeats, follows the config topic, and rejoins when the work to share
//! changes (a connector created or deleted, a new task count), when the coordinator
//! starts a rebalance, when it had work revoked, or when the leader's scheduled delay
//! for a departed worker runs out.
//!
//! Herder calls block (plugin calls, topic reads); they run on blocking threads. A lost
//! coordinator (the broker restarting) keeps the tasks running; the member retries with
//! backoff and, its membership forgotten, joins again reporting what it runs, so the
//! leader gives it the same work back.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::assignor::{self, AssignorState, MemberWork};
use super::protocol::{
    Assignment, COMPATIBLE, CONFIG_MISMATCH, EAGER, Metadata, NO_ERROR, SESSIONED,
};
use super::{ClusterView, ConnectProtocol, DistributedSettings};
use crate::broker::group::codes::{
    FENCED_INSTANCE_ID, ILLEGAL_GENERATION, MEMBER_ID_REQUIRED, NONE, REBALANCE_IN_PROGRESS,
    UNKNOWN_MEMBER_ID,
};
use crate::broker::group::{JoinGroupRequest, SyncGroupRequest};
use crate::client::groups::Groups;
use crate::worker::{Herder, WorkerError};

/// How often the config and status topics are read for changes.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);
/// Kafka's INVALID_SESSION_TIMEOUT.
const INVALID_SESSION_TIMEOUT: i16 = 26;
/// How long a member waits to read the config topic up to an assignment's offset.
const SYNC_TIMEOUT: Duration = Duration::from_secs(3);

/// The running member loop.
#[derive(Debug)]
pub struct MemberHandle {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl MemberHandle {
    /// Leave the group (the tasks are already stopped) and end the loop.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// Start the member loop on the current runtime.
pub fn spawn(
    herder: Herder,
    view: Arc<ClusterView>,
    settings: DistributedSettings,
) -> MemberHandle {
    let stop = CancellationToken::new();
    let member = Member {
        groups: herder.client().groups(),
        herder,
        view,
        settings,
        member_id: String::new(),
        generation: -1,
        state: AssignorState::default(),
        stop: stop.clone(),
    };
    MemberHandle {
        stop,
        task: tokio::spawn(member.run()),
    }
}

struct Member {
    herder: Herder,
    groups: Groups,
    view: Arc<ClusterView>,
    settings: DistributedSettings,
    member_id: String,
    generation: i32,
    /// The leader's memory between rounds (used only while leading).
    state: AssignorState,
    stop: CancellationToken,
}

/// Why a session ended.
enum Next {
    Rejoin,
    Stopped,
}

#[derive(Debug, thiserror::Error)]
enum MemberError {
    #[error(transparent)]
    Worker(#[from] WorkerError),
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    #[error("group {group}: {call} answered error code {code}")]
    Group {
        group: String,
        call: &'static str,
        code: i16,
    },
    #[error(
        "the broker refused session.timeout.ms={0} (INVALID_SESSION_TIMEOUT): set it within the broker's group.min.session.timeout.ms and group.max.session.timeout.ms (6000 and 1800000 by default)"
    )]
    SessionTimeout(u128),
    #[error("the herder's thread failed: {0}")]
    Join(String),
}

impl Member {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if self.stop.is_cancelled() {
                break;
            }
            match self.session().await {
                Ok(Next::Stopped) => break,
                Ok(Next::Rejoin) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(group = %self.settings.group_id, error = %e, "group membership failed; retrying");
                    self.view.set_rebalancing();
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = self.stop.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        if !self.member_id.is_empty() {
            let leave = self.groups.leave(
                &self.settings.group_id,
                vec![(self.member_id.clone(), None)],
            );
            if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(5), leave).await {
                tracing::warn!(error = %e, "could not leave the group");
            }
        }
    }

    /// Run a herder call on a blocking thread.
    async fn herder<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Herder) -> Result<T, WorkerError> + Send + 'static,
    ) -> Result<T, MemberError> {
        let h = self.herder.clone();
        match tokio::task::spawn_blocking(move || f(&h)).await {
            Ok(r) => Ok(r?),
            Err(e) => Err(MemberError::Join(e.to_string())),
        }
    }

    fn metadata(&self, version: i16, config_offset: i64) -> Metadata {
        let allocation = (version >= 1).then(|| Assignment {
            version,
            leader_url: self.view.leader_url().unwrap_or_default(),
            config_offset,
            assigned: assignor::to_work(&self.view.assigned()),
            ..Assignment::default()
        });
        Metadata {
            version,
            url: self.view.url.clone(),
            config_offset,
            allocation,
        }
    }

    /// Join, sync, apply; then heartbeat and follow the config topic until a rejoin.
    async fn session(&mut self) -> Result<Next, MemberError> {
        let (offset, _) = self.herder(|h| h.follow_cluster()).await?;
        if self.settings.protocol == ConnectProtocol::Eager {
            // Eager: everything stops before every rebalance.
            self.view.clear();
            self.herder(|h| {
                h.reconcile_cluster();
                Ok(())
            })
            .await?;
        }
        self.view.set_rebalancing();
        let offered: &[(&str, i16)] = match self.settings.protocol {
            ConnectProtocol::Sessioned => &[(SESSIONED, 2), (COMPATIBLE, 1), (EAGER, 0)],
            ConnectProtocol::Compatible => &[(COMPATIBLE, 1), (EAGER, 0)],
            ConnectProtocol::Eager => &[(EAGER, 0)],
        };
        let protocols = offered
            .iter()
            .map(|(name, v)| (name.to_string(), self.metadata(*v, offset).encode()))
            .collect();
        let req = JoinGroupRequest {
            group_id: self.settings.group_id.clone(),
            session_timeout_ms: millis(self.settings.session_timeout),
            rebalance_timeout_ms: millis(self.settings.rebalance_timeout),
            member_id: self.member_id.clone(),
            group_instance_id: None,
            protocol_type: "connect".into(),
            protocols,
            api_version: 5,
            client_id: format!("connect-{}", self.view.url),
            client_host: "/127.0.0.1".into(),
        };
        let joined = tokio::select! {
            r = self.groups.join(req) => r?,
            _ = self.stop.cancelled() => return Ok(Next::Stopped),
        };
        match joined.error_code {
            NONE => {}
            MEMBER_ID_REQUIRED => {
                self.member_id = joined.member_id;
                return Ok(Next::Rejoin);
            }
            UNKNOWN_MEMBER_ID | FENCED_INSTANCE_ID => {
                self.member_id.clear();
                return Ok(Next::Rejoin);
            }
            REBALANCE_IN_PROGRESS => return Ok(Next::Rejoin),
            INVALID_SESSION_TIMEOUT => {
                return Err(MemberError::SessionTimeout(
                    self.settings.session_timeout.as_millis(),
                ));
            }
            code => {
                return Err(MemberError::Group {
                    group: self.settings.group_id.clone(),
                    call: "JoinGroup",
                    code,
                });
            }
        }
        self.member_id = joined.member_id.clone();
        self.generation = joined.generation_id;
        let protocol = joined.protocol_name.clone().unwrap_or_default();
        let version = offered
            .iter()
            .find(|(n, _)| *n == protocol)
            .map_or(0, |(_, v)| *v);
        let leader = joined.leader == joined.member_id;
        let assignments = if leader {
            self.lead(&joined.members, version).await?
        } else {
            Vec::new()
        };
        let req = SyncGroupRequest {
            group_id: self.settings.group_id.clone(),
            generation_id: joined.generation_id,
            member_id: joined.member_id.clone(),
            group_instance_id: None,
            protocol_type: Some("connect".into()),
            protocol_name: joined.protocol_name.clone(),
            assignments,
        };
        let synced = tokio::select! {
            r = self.groups.sync(req) => r?,
            _ = self.stop.cancelled() => return Ok(Next::Stopped),
        };
        match synced.error_code {
            NONE => {}
            REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => return Ok(Next::Rejoin),
            UNKNOWN_MEMBER_ID => {
                self.member_id.clear();
                return Ok(Next::Rejoin);
            }
            code => {
                return Err(MemberError::Group {
                    group: self.settings.group_id.clone(),
                    call: "SyncGroup",
                    code,
                });
            }
        }
        let assignment = match Assignment::decode(&synced.assignment) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "the leader's assignment does not parse; rejoining");
                return Ok(Next::Rejoin);
            }
        };
        if assignment.error == CONFIG_MISMATCH {
            tracing::info!(
                "the leader saw a newer config than this worker has read; catching up and rejoining"
            );
            self.herder(|h| h.follow_cluster()).await?;
            return Ok(Next::Rejoin);
        }
        // Act only on the config the assignment was made from (or newer).
        let deadline = Instant::now() + SYNC_TIMEOUT;
        loop {
            let (offset, _) = self.herder(|h| h.follow_cluster()).await?;
            if offset >= assignment.config_offset {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    offset,
                    wanted = assignment.config_offset,
                    "could not read the config topic up to the assignment's offset; rejoining"
                );
                return Ok(Next::Rejoin);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let revoked = assignor::from_work(&assignment.revoked);
        let assigned: BTreeSet<_> = assignor::from_work(&assignment.assigned)
            .difference(&revoked)
            .cloned()
            .collect();
        tracing::info!(
            generation = joined.generation_id,
            leader,
            protocol = %protocol,
            assigned = assigned.len(),
            revoked = revoked.len(),
            delay_ms = assignment.delay_ms,
            "joined the Connect cluster"
        );
        self.view.set_assignment(
            assigned,
            assignment.leader_url.clone(),
            leader,
            joined.generation_id,
        );
        self.herder(|h| {
            h.reconcile_cluster();
            Ok(())
        })
        .await?;
        if !revoked.is_empty() {
            // The revoked work is placed elsewhere in a follow-up round.
            return Ok(Next::Rejoin);
        }
        let rejoin_at = (assignment.delay_ms > 0)
            .then(|| Instant::now() + Duration::from_millis(assignment.delay_ms as u64));
        let mut heartbeat = tokio::time::interval(self.settings.heartbeat_interval);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut follow = tokio::time::interval(FOLLOW_EVERY);
        follow.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return Ok(Next::Stopped),
                _ = heartbeat.tick() => {
                    let code = self
                        .groups
                        .heartbeat(&self.settings.group_id, self.generation, &self.member_id)
                        .await?;
                    match code {
                        NONE => {}
                        REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => return Ok(Next::Rejoin),
                        UNKNOWN_MEMBER_ID | FENCED_INSTANCE_ID => {
                            self.member_id.clear();
                            return Ok(Next::Rejoin);
                        }
                        code => {
                            return Err(MemberError::Group {
                                group: self.settings.group_id.clone(),
                                call: "Heartbeat",
                                code,
                            });
                        }
                    }
                }
                _ = follow.tick() => {
                    let (_, changed) = self.herder(|h| h.follow_cluster()).await?;
                    if changed || self.view.take_rejoin() {
                        return Ok(Next::Rejoin);
                    }
                    if rejoin_at.is_some_and(|t| Instant::now() >= t) {
                        return Ok(Next::Rejoin);
                    }
                }
            }
        }
    }

    /// The leader's part: everyone's metadata in, one assignment per member out.
    async fn lead(
        &mut self,
        members: &[(String, Option<String>, bytes::Bytes)],
        version: i16,
    ) -> Result<Vec<(String, bytes::Bytes)>, MemberError> {
        let mut works = Vec::with_capacity(members.len());
        let mut max_offset = 0;
        for (id, _, meta) in members {
            let meta = match Metadata::decode(meta) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(member = %id, error = %e, "a member's metadata does not parse; it gets no work this round");
                    Metadata {
                        version: 0,
                        url: String::new(),
                        config_offset: 0,
                        allocation: None,
                    }
                }
            };
            max_offset = max_offset.max(meta.config_offset);
            works.push(MemberWork {
                member_id: id.clone(),
                allocation: meta
                    .allocation
                    .map(|a| assignor::from_work(&a.assigned))
                    .unwrap_or_default(),
            });
        }
        let deadline = Instant::now() + SYNC_TIMEOUT;
        let mut offset = self.herder(|h| h.follow_cluster()).await?.0;
        while offset < max_offset && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            offset = self.herder(|h| h.follow_cluster()).await?.0;
        }
        let leader_url = self.view.url.clone();
        if offset < max_offset {
            tracing::warn!(
                offset,
                max_offset,
                "leading with an older config than a member has; asking everyone to catch up"
            );
            let a = Assignment {
                version,
                error: CONFIG_MISMATCH,
                leader: self.member_id.clone(),
                leader_url,
                config_offset: max_offset,
                ..Assignment::default()
            };
            return Ok(members
                .iter()
                .map(|(id, _, _)| (id.clone(), a.encode()))
                .collect());
        }
        let configured = self.herder(|h| Ok(h.configured_items())).await?;
        // Eager rounds have no allocations to keep and no delay to announce.
        let delay = if version >= 1 {
            self.settings.max_delay
        } else {
            Duration::ZERO
        };
        if version == 0 {
            self.state = AssignorState::default();
        }
        let round = assignor::assign(&mut self.state, &works, &configured, delay, Instant::now());
        let delay_ms = i32::try_from(round.delay.as_millis()).unwrap_or(i32::MAX);
        Ok(round
            .plans
            .iter()
            .map(|(id, plan)| {
                let a = Assignment {
                    version,
                    error: NO_ERROR,
                    leader: self.member_id.clone(),
                    leader_url: leader_url.clone(),
                    config_offset: offset,
                    assigned: assignor::to_work(&plan.assigned),
                    revoked: assignor::to_work(&plan.revoked),
                    delay_ms,
                };
                (id.clone(), a.encode())
            })
            .collect())
    }
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
