//! Group requests: translation between the wire messages and the protocol-agnostic
//! [`GroupCoordinator`](crate::broker::group::GroupCoordinator).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    DeleteGroupsResponse, DescribeGroupsResponse, GroupId, HeartbeatResponse, JoinGroupResponse,
    LeaveGroupResponse, ListGroupsResponse, OffsetCommitResponse, OffsetFetchResponse, RequestKind,
    ResponseKind, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use super::handlers::str_bytes;
use crate::broker::group::{self, FetchResult};
use crate::protocol::ProtocolError;

fn opt(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(|v| v.to_string())
}

fn opt_str(s: Option<String>) -> Option<StrBytes> {
    s.map(StrBytes::from_string)
}

/// Answer a group request. Every api the codec admits but no handler serves ends here.
pub(super) async fn handle(
    broker: &Broker,
    body: RequestKind,
    version: i16,
    client_id: Option<&str>,
    client_host: &str,
) -> Result<ResponseKind, ProtocolError> {
    let groups = &broker.groups;
    Ok(match body {
        RequestKind::JoinGroup(r) => {
            let answer = groups
                .join(group::JoinGroupRequest {
                    group_id: r.group_id.0.to_string(),
                    session_timeout_ms: r.session_timeout_ms,
                    // v0 has no rebalance timeout: Kafka uses the session timeout.
                    rebalance_timeout_ms: if version == 0 {
                        r.session_timeout_ms
                    } else {
                        r.rebalance_timeout_ms
                    },
                    member_id: r.member_id.to_string(),
                    group_instance_id: opt(&r.group_instance_id),
                    protocol_type: r.protocol_type.to_string(),
                    protocols: r
                        .protocols
                        .iter()
                        .map(|p| (p.name.to_string(), p.metadata.clone()))
                        .collect(),
                    api_version: version,
                    client_id: client_id.unwrap_or_default().to_string(),
                    client_host: client_host.to_string(),
                })
                .await;
            let mut resp = JoinGroupResponse::default();
            resp.error_code = answer.error_code;
            resp.generation_id = answer.generation_id;
            resp.protocol_type = opt_str(answer.protocol_type);
            // Before v7 the protocol name is not nullable.
            resp.protocol_name = Some(str_bytes(
                answer.protocol_name.as_deref().unwrap_or_default(),
            ));
            resp.leader = str_bytes(&answer.leader);
            resp.member_id = str_bytes(&answer.member_id);
            resp.skip_assignment = answer.skip_assignment;
            resp.members = answer
                .members
                .into_iter()
                .map(|(id, instance, metadata)| {
                    let mut m = JoinGroupResponseMember::default();
                    m.member_id = str_bytes(&id);
                    m.group_instance_id = opt_str(instance);
                    m.metadata = metadata;
                    m
                })
                .collect();
            ResponseKind::JoinGroup(resp)
        }
        RequestKind::SyncGroup(r) => {
            let answer = groups
                .sync(group::SyncGroupRequest {
                    group_id: r.group_id.0.to_string(),
                    generation_id: r.generation_id,
                    member_id: r.member_id.to_string(),
                    group_instance_id: opt(&r.group_instance_id),
                    protocol_type: opt(&r.protocol_type),
                    protocol_name: opt(&r.protocol_name),
                    assignments: r
                        .assignments
                        .iter()
                        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
                        .collect(),
                })
                .await;
            let mut resp = SyncGroupResponse::default();
            resp.error_code = answer.error_code;
            resp.protocol_type = opt_str(answer.protocol_type);
            resp.protocol_name = opt_str(answer.protocol_name);
            resp.assignment = answer.assignment;
            ResponseKind::SyncGroup(resp)
        }
        RequestKind::Heartbeat(r) => {
            let mut resp = HeartbeatResponse::default();
            resp.error_code = groups
                .heartbeat(
                    r.group_id.0.as_str(),
                    r.generation_id,
                    r.member_id.as_str(),
                    r.group_instance_id.as_ref().map(|s| s.as_str()),
                )
                .await;
            ResponseKind::Heartbeat(resp)
        }
        RequestKind::LeaveGroup(r) => {
            let members: Vec<(String, Option<String>)> = if version < 3 {
                vec![(r.member_id.to_string(), None)]
            } else {
                r.members
                    .iter()
                    .map(|m| (m.member_id.to_string(), opt(&m.group_instance_id)))
                    .collect()
            };
            let (error, results) = groups.leave(r.group_id.0.as_str(), members).await;
            let mut resp = LeaveGroupResponse::default();
            resp.error_code = error;
            if version < 3 {
                if let Some((_, _, c)) = results.first()
                    && error == 0
                {
                    resp.error_code = *c;
                }
            } else {
                resp.members = results
                    .into_iter()
                    .map(|(id, instance, c)| {
                        let mut m = MemberResponse::default();
                        m.member_id = str_bytes(&id);
                        m.group_instance_id = opt_str(instance);
                        m.error_code = c;
                        m
                    })
                    .collect();
            }
            ResponseKind::LeaveGroup(resp)
        }
        RequestKind::OffsetCommit(r) => {
            let result = groups
                .commit_offsets(group::OffsetCommitRequest {
                    group_id: r.group_id.0.to_string(),
                    generation_id: r.generation_id_or_member_epoch,
                    member_id: r.member_id.to_string(),
                    group_instance_id: opt(&r.group_instance_id),
                    retention_time_ms: if (2..=4).contains(&version) {
                        r.retention_time_ms
                    } else {
                        -1
                    },
                    topics: r
                        .topics
                        .iter()
                        .map(|t| {
                            (
                                t.name.0.to_string(),
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        (
                                            p.partition_index,
                                            p.committed_offset,
                                            p.committed_leader_epoch,
                                            opt(&p.committed_metadata),
                                        )
                                    })
                                    .collect(),
                            )
                        })
                        .collect(),
                })
                .await;
            let mut resp = OffsetCommitResponse::default();
            resp.topics = result
                .into_iter()
                .map(|(topic, parts)| {
                    let mut t = OffsetCommitResponseTopic::default();
                    t.name = TopicName(str_bytes(&topic));
                    t.partitions = parts
                        .into_iter()
                        .map(|(p, c)| {
                            let mut rp = OffsetCommitResponsePartition::default();
                            rp.partition_index = p;
                            rp.error_code = c;
                            rp
                        })
                        .collect();
                    t
                })
                .collect();
            ResponseKind::OffsetCommit(resp)
        }
        RequestKind::OffsetFetch(r) => {
            let mut resp = OffsetFetchResponse::default();
            if version >= 8 {
                for g in r.groups {
                    let topics = g.topics.map(|ts| {
                        ts.iter()
                            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                            .collect()
                    });
                    let mut out = OffsetFetchResponseGroup::default();
                    out.group_id = g.group_id.clone();
                    match groups.fetch_offsets(g.group_id.0.as_str(), topics).await {
                        Ok(result) => out.topics = fetched_v8(result),
                        Err(c) => out.error_code = c,
                    }
                    resp.groups.push(out);
                }
            } else {
                let topics = r.topics.map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                        .collect()
                });
                match groups.fetch_offsets(r.group_id.0.as_str(), topics).await {
                    Ok(result) => resp.topics = fetched(result),
                    // v1 has no top-level error code: an unknown group reads as no offsets.
                    Err(c) if version >= 2 => resp.error_code = c,
                    Err(_) => {}
                }
            }
            ResponseKind::OffsetFetch(resp)
        }
        RequestKind::DescribeGroups(r) => {
            let ids: Vec<String> = r.groups.iter().map(|g| g.0.to_string()).collect();
            let mut resp = DescribeGroupsResponse::default();
            resp.groups = groups
                .describe_groups(&ids)
                .await
                .into_iter()
                .map(|d| {
                    let mut g = DescribedGroup::default();
                    g.error_code = d.error_code;
                    g.group_id = GroupId(str_bytes(&d.group_id));
                    g.group_state = str_bytes(&d.state);
                    g.protocol_type = str_bytes(&d.protocol_type);
                    g.protocol_data = str_bytes(&d.protocol);
                    g.members = d
                        .members
                        .into_iter()
                        .map(|m| {
                            let mut dm = DescribedGroupMember::default();
                            dm.member_id = str_bytes(&m.member_id);
                            dm.group_instance_id = opt_str(m.group_instance_id);
                            dm.client_id = str_bytes(&m.client_id);
                            dm.client_host = str_bytes(&m.client_host);
                            dm.member_metadata = m.metadata;
                            dm.member_assignment = m.assignment;
                            dm
                        })
                        .collect();
                    g
                })
                .collect();
            ResponseKind::DescribeGroups(resp)
        }
        RequestKind::ListGroups(r) => {
            let mut resp = ListGroupsResponse::default();
            resp.groups = groups
                .list_groups()
                .await
                .into_iter()
                .filter(|(_, _, state)| {
                    r.states_filter.is_empty()
                        || r.states_filter
                            .iter()
                            .any(|s| s.as_str().eq_ignore_ascii_case(state))
                })
                .map(|(id, protocol_type, state)| {
                    let mut g = ListedGroup::default();
                    g.group_id = GroupId(str_bytes(&id));
                    g.protocol_type = str_bytes(&protocol_type);
                    g.group_state = str_bytes(&state);
                    g.group_type = str_bytes("classic");
                    g
                })
                .collect();
            ResponseKind::ListGroups(resp)
        }
        RequestKind::DeleteGroups(r) => {
            let ids: Vec<String> = r.groups_names.iter().map(|g| g.0.to_string()).collect();
            let mut resp = DeleteGroupsResponse::default();
            resp.results = groups
                .delete_groups(ids)
                .await
                .into_iter()
                .map(|(id, c)| {
                    let mut g = DeletableGroupResult::default();
                    g.group_id = GroupId(str_bytes(&id));
                    g.error_code = c;
                    g
                })
                .collect();
            ResponseKind::DeleteGroups(resp)
        }
        other => {
            // The codec only admits advertised apis, and each has a handler; reaching
            // here is a bug worth a clear trace rather than a hung client.
            tracing::error!(request = ?std::mem::discriminant(&other), "no handler for an advertised api");
            return Err(ProtocolError::Malformed {
                api_key: kafka_protocol::messages::ApiKey::ApiVersions,
                version,
                correlation_id: None,
                reason: format!("no handler ({})", ResponseError::UnsupportedVersion),
            });
        }
    })
}

fn fetched(result: FetchResult) -> Vec<OffsetFetchResponseTopic> {
    result
        .into_iter()
        .map(|(topic, parts)| {
            let mut t = OffsetFetchResponseTopic::default();
            t.name = TopicName(str_bytes(&topic));
            t.partitions = parts
                .into_iter()
                .map(|(p, offset, epoch, metadata, c)| {
                    let mut rp = OffsetFetchResponsePartition::default();
                    rp.partition_index = p;
                    rp.committed_offset = offset;
                    rp.committed_leader_epoch = epoch;
                    rp.metadata = Some(str_bytes(&metadata));
                    rp.error_code = c;
                    rp
                })
                .collect();
            t
        })
        .collect()
}

fn fetched_v8(result: FetchResult) -> Vec<OffsetFetchResponseTopics> {
    result
        .into_iter()
        .map(|(topic, parts)| {
            let mut t = OffsetFetchResponseTopics::default();
            t.name = TopicName(str_bytes(&topic));
            t.partitions = parts
                .into_iter()
                .map(|(p, offset, epoch, metadata, c)| {
                    let mut rp = OffsetFetchResponsePartitions::default();
                    rp.partition_index = p;
                    rp.committed_offset = offset;
                    rp.committed_leader_epoch = epoch;
                    rp.metadata = Some(str_bytes(&metadata));
                    rp.error_code = c;
                    rp
                })
                .collect();
            t
        })
        .collect()
}
