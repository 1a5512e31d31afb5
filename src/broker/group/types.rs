//! The coordinator's requests and answers: plain structs carrying the fields the Kafka
//! messages carry (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
//! OffsetFetch, DescribeGroups, ListGroups, DeleteGroups), so the wire layer translates
//! them field by field and this module never sees the codec.
//!
//! Tuples follow the order of the wire message's fields; the aliases name them.

use bytes::Bytes;

use super::codes;

/// A protocol a member supports: (name, metadata), in the member's order of preference.
pub type Protocol = (String, Bytes);

/// A member as the leader sees it in its JoinGroup answer:
/// (member_id, group_instance_id, metadata for the selected protocol).
pub type JoinedMember = (String, Option<String>, Bytes);

/// One partition of an OffsetCommit: (partition, offset, leader_epoch, metadata).
/// `leader_epoch` -1 means none; `None` metadata is stored as "" (Kafka's NO_METADATA).
pub type CommitPartition = (i32, i64, i32, Option<String>);

/// OffsetCommit's answer: per topic, (partition, error code), in request order.
pub type CommitResult = Vec<(String, Vec<(i32, i16)>)>;

/// One partition of an OffsetFetch answer: (partition, offset, leader_epoch, metadata,
/// error code). A partition with no committed offset has offset -1, epoch -1, "".
pub type FetchedPartition = (i32, i64, i32, String, i16);

/// OffsetFetch's answer: per topic, its partitions.
pub type FetchResult = Vec<(String, Vec<FetchedPartition>)>;

/// JoinGroup (all versions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinGroupRequest {
    pub group_id: String,
    pub session_timeout_ms: i32,
    /// -1 (the v0 default) means "the session timeout", as Kafka does for v0.
    pub rebalance_timeout_ms: i32,
    /// "" for a member joining for the first time.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    pub protocols: Vec<Protocol>,
    /// From v4 a member without an id is first answered MEMBER_ID_REQUIRED (KIP-394).
    pub api_version: i16,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinGroupResponse {
    pub error_code: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Every member with its metadata, for the leader only; empty for the others.
    pub members: Vec<JoinedMember>,
    /// Always false: KIP-814's skip-assignment path is not used (see the module docs).
    pub skip_assignment: bool,
}

impl JoinGroupResponse {
    /// An error answer as Kafka shapes it: generation -1, no protocol, no leader.
    pub fn error(member_id: impl Into<String>, error_code: i16) -> Self {
        JoinGroupResponse {
            error_code,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.into(),
            members: Vec::new(),
            skip_assignment: false,
        }
    }
}

/// SyncGroup (all versions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncGroupRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v5+: checked against the group's when present.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The leader's assignment: (member_id, assignment). Followers send none.
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncGroupResponse {
    pub error_code: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncGroupResponse {
    pub fn error(error_code: i16) -> Self {
        SyncGroupResponse {
            error_code,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// OffsetCommit (v2+ semantics; v0/v1's ZooKeeper storage and per-partition
/// timestamps are not supported).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommitRequest {
    pub group_id: String,
    /// -1 for a commit outside group management (a standalone consumer or an admin
    /// tool), allowed only while the group has no members.
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v2-v4's retention_time_ms; -1 (the default, and all that v5+ can send) means
    /// the broker's `offsets.retention.minutes`.
    pub retention_time_ms: i64,
    pub topics: Vec<(String, Vec<CommitPartition>)>,
}

/// One member in a DescribeGroups answer. Metadata and assignment are only filled in
/// while the group is Stable, as Kafka does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// One group in a DescribeGroups answer. An unknown group is described as "Dead" with
/// no error, as Kafka's classic coordinator does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription {
    pub error_code: i16,
    pub group_id: String,
    /// "Empty", "PreparingRebalance", "CompletingRebalance", "Stable" or "Dead".
    pub state: String,
    pub protocol_type: String,
    /// The selected protocol while Stable, else "".
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

impl GroupDescription {
    pub(super) fn dead(group_id: &str, error_code: i16) -> Self {
        GroupDescription {
            error_code,
            group_id: group_id.to_owned(),
            state: "Dead".to_owned(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        }
    }
}

/// The answer for a request refused as a whole with `code`, per partition.
pub(super) fn commit_error(topics: &[(String, Vec<CommitPartition>)], code: i16) -> CommitResult {
    topics
        .iter()
        .map(|(t, ps)| (t.clone(), ps.iter().map(|p| (p.0, code)).collect()))
        .collect()
}

/// A partition with nothing committed, as OffsetFetch reports it.
pub(super) fn no_offset(partition: i32) -> FetchedPartition {
    (partition, -1, -1, String::new(), codes::NONE)
}
