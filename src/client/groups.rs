//! The group calls a consumer-group member and the worker make, on whichever broker the
//! client talks to: the integrated broker's coordinator in-process, or a cluster's group
//! coordinator over the network. Both take and answer the coordinator's own request and
//! answer types, so a member is written once.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::remote::cluster::Cluster;
use super::{ClientError, group_error};
use crate::broker::group::{
    CommitPartition, FetchResult, GroupCoordinator, GroupDescription, JoinGroupRequest,
    JoinGroupResponse, OffsetCommitRequest, SyncGroupRequest, SyncGroupResponse,
};

/// Where group calls go. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Groups {
    Embedded(GroupCoordinator),
    Remote(Arc<Cluster>),
}

impl Groups {
    /// JoinGroup; waits for the rebalance.
    pub async fn join(&self, req: JoinGroupRequest) -> Result<JoinGroupResponse, ClientError> {
        match self {
            Groups::Embedded(g) => Ok(g.join(req).await),
            Groups::Remote(c) => c.join_group(&req).await,
        }
    }

    /// SyncGroup.
    pub async fn sync(&self, req: SyncGroupRequest) -> Result<SyncGroupResponse, ClientError> {
        match self {
            Groups::Embedded(g) => Ok(g.sync(req).await),
            Groups::Remote(c) => c.sync_group(&req).await,
        }
    }

    /// Heartbeat: the coordinator's error code.
    pub async fn heartbeat(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
    ) -> Result<i16, ClientError> {
        match self {
            Groups::Embedded(g) => Ok(g.heartbeat(group_id, generation_id, member_id, None).await),
            Groups::Remote(c) => c.heartbeat(group_id, generation_id, member_id, None).await,
        }
    }

    /// LeaveGroup for `members`.
    pub async fn leave(
        &self,
        group_id: &str,
        members: Vec<(String, Option<String>)>,
    ) -> Result<(i16, Vec<(String, Option<String>, i16)>), ClientError> {
        match self {
            Groups::Embedded(g) => Ok(g.leave(group_id, members).await),
            Groups::Remote(c) => c.leave_group(group_id, &members).await,
        }
    }

    /// OffsetFetch: `Err(code)` inside for a group-level error.
    pub async fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<Result<FetchResult, i16>, ClientError> {
        match self {
            Groups::Embedded(g) => Ok(g.fetch_offsets(group_id, topics).await),
            Groups::Remote(c) => c.fetch_offsets(group_id, topics.as_deref()).await,
        }
    }

    /// DescribeGroups.
    pub async fn describe_groups(
        &self,
        group_ids: &[String],
    ) -> Result<Vec<GroupDescription>, ClientError> {
        match self {
            Groups::Embedded(g) => Ok(g.describe_groups(group_ids).await),
            Groups::Remote(c) => c.describe_groups(group_ids).await,
        }
    }

    /// DeleteGroups: each group's error code.
    pub async fn delete_groups(
        &self,
        group_ids: Vec<String>,
    ) -> Result<Vec<(String, i16)>, ClientError> {
        match self {
            Groups::Embedded(g) => Ok(g.delete_groups(group_ids).await),
            Groups::Remote(c) => c.delete_groups(&group_ids).await,
        }
    }

    /// Commit `offsets` (next offset to consume, per topic and partition) for
    /// `group_id` as member `member_id` of `generation` (-1 and "" outside group
    /// management); a partition the coordinator refuses is the error.
    pub async fn commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        offsets: &BTreeMap<(String, i32), i64>,
    ) -> Result<(), ClientError> {
        let mut topics: BTreeMap<String, Vec<CommitPartition>> = BTreeMap::new();
        for ((t, p), o) in offsets {
            topics
                .entry(t.clone())
                .or_default()
                .push((*p, *o, -1, None));
        }
        let req = OffsetCommitRequest {
            group_id: group_id.to_owned(),
            generation_id: generation,
            member_id: member_id.to_owned(),
            group_instance_id: None,
            retention_time_ms: -1,
            topics: topics.into_iter().collect(),
        };
        let result = match self {
            Groups::Embedded(g) => g.commit_offsets(req).await,
            Groups::Remote(c) => c.commit_offsets(&req).await?,
        };
        for (_, parts) in result {
            for (_, code) in parts {
                if code != 0 {
                    return Err(group_error(group_id, "OffsetCommit", code));
                }
            }
        }
        Ok(())
    }

    /// The committed offsets of `group_id` for these partitions (those without one are
    /// left out).
    pub async fn committed(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<BTreeMap<(String, i32), i64>, ClientError> {
        let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            topics.entry(t.clone()).or_default().push(*p);
        }
        let result = self
            .fetch_offsets(group_id, Some(topics.into_iter().collect()))
            .await?
            .map_err(|code| group_error(group_id, "OffsetFetch", code))?;
        let mut out = BTreeMap::new();
        for (topic, parts) in result {
            for (p, offset, _, _, code) in parts {
                if code == 0 && offset >= 0 {
                    out.insert((topic.clone(), p), offset);
                }
            }
        }
        Ok(out)
    }
}
