//! The coordinator through its public API, on a real TopicStore in a temporary
//! directory. Time is tokio's paused clock wherever timers matter: no real sleeps.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant, advance};

use super::codes::*;
use super::*;
use crate::broker::{BrokerConfig, TopicStore};
use crate::log::batch::{BatchIter, decode_records};

const G: &str = "group";
const SESSION: Duration = Duration::from_secs(10);
const REBALANCE: Duration = Duration::from_secs(30);

/// Config without the initial rebalance delay, so a lone join completes at once.
fn quick() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay: Duration::ZERO,
        ..GroupConfig::default()
    }
}

async fn start(dir: &Path, config: GroupConfig) -> (Arc<TopicStore>, GroupCoordinator) {
    let store = Arc::new(TopicStore::open(BrokerConfig::new(dir)).unwrap());
    if store.describe_topic("orders").is_err() {
        store
            .create_topic("orders", Some(3), BTreeMap::new())
            .unwrap();
    }
    let coordinator = GroupCoordinator::new(store.clone(), config).await.unwrap();
    (store, coordinator)
}

/// Shut down, check nothing still holds the store (no leaked task), close the store.
async fn stop(store: Arc<TopicStore>, coordinator: GroupCoordinator) {
    coordinator.shutdown().await;
    drop(coordinator);
    assert_eq!(Arc::strong_count(&store), 1, "a task still holds the store");
    store.close().unwrap();
}

fn protocols(list: &[(&str, &str)]) -> Vec<Protocol> {
    list.iter()
        .map(|(n, m)| (n.to_string(), Bytes::from(m.to_string())))
        .collect()
}

fn join_req(member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: G.into(),
        session_timeout_ms: SESSION.as_millis() as i32,
        rebalance_timeout_ms: REBALANCE.as_millis() as i32,
        member_id: member_id.into(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: protocols(&[("range", "meta")]),
        api_version: 9,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
    }
}

fn sync_req(
    member_id: &str,
    generation_id: i32,
    assignments: Vec<(String, Bytes)>,
) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: G.into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: None,
        assignments,
    }
}

fn spawn_join(c: &GroupCoordinator, req: JoinGroupRequest) -> JoinHandle<JoinGroupResponse> {
    let c = c.clone();
    tokio::spawn(async move { c.join(req).await })
}

fn spawn_sync(c: &GroupCoordinator, req: SyncGroupRequest) -> JoinHandle<SyncGroupResponse> {
    let c = c.clone();
    tokio::spawn(async move { c.sync(req).await })
}

/// A member id through KIP-394's first round trip.
async fn member_id(c: &GroupCoordinator, client: &str) -> String {
    let r = c
        .join(JoinGroupRequest {
            client_id: client.into(),
            ..join_req("")
        })
        .await;
    assert_eq!(r.error_code, MEMBER_ID_REQUIRED);
    assert_eq!(r.generation_id, -1);
    assert!(
        r.member_id.starts_with(&format!("{client}-")),
        "{}",
        r.member_id
    );
    r.member_id
}

/// Wait (without timers firing through requests) until the background task or a
/// spawned request has brought `group` to `state`.
async fn wait_state(c: &GroupCoordinator, group: &str, state: &str) {
    for _ in 0..1000 {
        if c.list_groups()
            .await
            .iter()
            .any(|(g, _, s)| g == group && s == state)
        {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("{group} never reached {state}: {:?}", c.list_groups().await);
}

/// Wait until spawned joins have made `group` `n` members strong.
async fn wait_members(c: &GroupCoordinator, group: &str, n: usize) {
    for _ in 0..1000 {
        if c.describe_groups(&[group.into()]).await[0].members.len() == n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!(
        "{group} never had {n} members: {:?}",
        c.describe_groups(&[group.into()]).await
    );
}

fn assignment_for(id: &str) -> Bytes {
    Bytes::from(format!("assignment of {id}"))
}

/// Join the given members (all must be new or current members) and return their
/// answers in the same order.
async fn join_all(c: &GroupCoordinator, reqs: Vec<JoinGroupRequest>) -> Vec<JoinGroupResponse> {
    let handles: Vec<_> = reqs.into_iter().map(|r| spawn_join(c, r)).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Check a completed join round and sync everyone; the leader assigns
/// `assignment_for(member)`. Returns (generation, leader).
async fn sync_round(c: &GroupCoordinator, answers: &[JoinGroupResponse]) -> (i32, String) {
    let generation = answers[0].generation_id;
    let leader = answers[0].leader.clone();
    for a in answers {
        assert_eq!(a.error_code, NONE, "{a:?}");
        assert_eq!(
            (a.generation_id, a.leader.as_str()),
            (generation, leader.as_str())
        );
        let expected = if a.member_id == leader {
            answers.len()
        } else {
            0
        };
        assert_eq!(a.members.len(), expected, "{a:?}");
    }
    let followers: Vec<_> = answers
        .iter()
        .filter(|a| a.member_id != leader)
        .map(|a| {
            (
                a.member_id.clone(),
                spawn_sync(c, sync_req(&a.member_id, generation, vec![])),
            )
        })
        .collect();
    let plan = answers
        .iter()
        .map(|a| (a.member_id.clone(), assignment_for(&a.member_id)))
        .collect();
    let mine = c.sync(sync_req(&leader, generation, plan)).await;
    assert_eq!(mine.error_code, NONE);
    assert_eq!(mine.assignment, assignment_for(&leader));
    assert_eq!(
        mine.protocol_name.as_deref(),
        answers[0].protocol_name.as_deref()
    );
    for (id, f) in followers {
        let r = f.await.unwrap();
        assert_eq!((r.error_code, r.assignment), (NONE, assignment_for(&id)));
    }
    (generation, leader)
}

/// `n` new dynamic members, joined and synced. Returns (generation, ids, leader).
async fn stable_group(c: &GroupCoordinator, n: usize) -> (i32, Vec<String>, String) {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(member_id(c, &format!("c{i}")).await);
    }
    let answers = join_all(c, ids.iter().map(|id| join_req(id)).collect()).await;
    let (generation, leader) = sync_round(c, &answers).await;
    (generation, ids, leader)
}

fn commit_req(
    generation_id: i32,
    member_id: &str,
    parts: Vec<CommitPartition>,
) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: G.into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: vec![("orders".into(), parts)],
    }
}

fn codes_of(result: &CommitResult) -> Vec<i16> {
    result
        .iter()
        .flat_map(|(_, ps)| ps.iter().map(|p| p.1))
        .collect()
}

async fn fetch(c: &GroupCoordinator, group: &str, partitions: Vec<i32>) -> Vec<FetchedPartition> {
    let mut r = c
        .fetch_offsets(group, Some(vec![("orders".into(), partitions)]))
        .await
        .unwrap();
    r.pop().unwrap().1
}

#[tokio::test(start_paused = true)]
async fn one_member_joins_and_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let (store, c) = start(dir.path(), quick()).await;
    // Before v4 no member id round trip is needed.
    let r = c
        .join(JoinGroupRequest {
            api_version: 3,
            ..join_req("")
        })
        .await;
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.leader, r.member_id);
    assert_eq!(r.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(
        r.members,
        vec![(r.member_id.clone(), None, Bytes::from("meta"))]
    );
    assert!(!r.skip_assignment);
    let me = r.member_id.clone();
    assert_eq!(sync_round(&c, &[r]).await, (1, me.clone()));
    assert_eq!(c.heartbeat(G, 1, &me, None).await, NONE);

    let d = c.describe_groups(&[G.to_string(), "nope".into()]).await;
    assert_eq!(
        (d[0].state.as_str(), d[0].protocol.as_str()),
        ("Stable", "range")
    );
    assert_eq!(d[0].members.len(), 1);
    let m = &d[0].members[0];
    assert_eq!(
        (
            m.member_id.as_str(),
            m.client_id.as_str(),
            m.client_host.as_str()
        ),
        (me.as_str(), "client", "/127.0.0.1")
    );
    assert_eq!(
        (m.metadata.clone(), m.assignment.clone()),
        (Bytes::from("meta"), assignment_for(&me))
    );
    assert_eq!((d[1].error_code, d[1].state.as_str()), (NONE, "Dead"));
    assert_eq!(
        c.list_groups().await,
        vec![(G.to_string(), "consumer".to_string(), "Stable".to_string())]
    );
    stop(store, c).await;
}

#[tokio::test(start_paused = true)]
async fn member_id_required_flow() {
    let dir = tempfile::tempdir().unwrap();
    let (store, c) = start(dir.path(), quick()).await;
    let id = member_id(&c, "app").await;
    // A handed-out id is not a member yet.
    assert_eq!(c.heartbeat(G, 0, &id, None).await, UNKNOWN_MEMBER_ID);
    let r = c.join(join_req(&id)).await;
    assert_eq!(
        (r.error_code, r.generation_id, r.member_id.as_str()),
        (NONE, 1, id.as_str())
    );
    // An id the coordinator never handed out.
    let r = c.join(join_req("app-made-up")).await;
    assert_eq!(
        (r.error_code, r.member_id.as_str()),
        (UNKNOWN_MEMBER_ID, "app-made-up")
    );
    let r = c
        .join(JoinGroupRequest {
            group_id: "other".into(),
            ..join_req(&id)
        })
        .await;
    assert_eq!(r.error_code, UNKNOWN_MEMBER_ID);

    // A handed-out id expires after the session timeout if nobody comes back with it.
    let late = c
        .join(JoinGroupRequest {
            group_id: "g2".into(),
            ..join_req("")
        })
        .await
        .member_id;
    advance(SESSION + Duration::from_millis(1)).await;
    let r = c
        .join(JoinGroupRequest {
            group_id: "g2".into(),
            ..join_req(&late)
        })
        .await;
    assert_eq!(r.error_code, UNKNOWN_MEMBER_ID);
    stop(store, c).await;
}

#[tokio::test(start_paused = true)]
async fn three_members_within_the_initial_delay_share_one_generation() {
    let dir = tempfile::tempdir().unwrap();
    let (store, c) = start(dir.path(), GroupConfig::default()).await;
    let t0 = Instant::now();
    let reqs = (0..3)
        .map(|i| JoinGroupRequest {
            api_version: 3,
            client_id: format!("c{i}"),
            protocols: protocols(&[("range", &format!("m{i}"))]),
            ..join_req("")
        })
        .collect();
    let answers = join_all(&c, reqs).await;
    // Members kept arriving during the first 3 s delay, so it ran once more: 6 s.
    assert_eq!(t0.elapsed(), Duration::from_secs(6));
    let leader = answers.iter().find(|a| a.member_id == a.leader).unwrap();
    let mut metas: Vec<Bytes> = leader.members.iter().map(|m| m.2.clone()).collect();
    metas.sort();
    assert_eq!(metas, ["m0", "m1", "m2"].map(Bytes::from));

    // Followers' syncs wait for the leader's.
    let generation = answers[0].generation_id;
    let waiting: Vec<_> = answers
        .iter()
        .filter(|a| a.member_id != a.leader)
        .map(|a| {
            (
                a.member_id.clone(),
                spawn_sync(&c, sync_req(&a.member_id, generation, vec![])),
            )
        })
        .collect();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(waiting.iter().all(|(_, h)| !h.is_finished()));
    assert_eq!(
        c.describe_groups(&[G.into()]).await[0].state,
        "CompletingRebalance"
    );
    let plan = answers
        .iter()
        .map(|a| (a.member_id.clone(), assignment_for(&a.member_id)))
        .collect();
    let r = c.sync(sync_req(&leader.leader, generation, plan)).await;
    assert_eq!(r.assignment, assignment_for(&leader.leader));
    for (id, h) in waiting {
        assert_eq!(h.await.unwrap().assignment, assignment_for(&id));
    }
    stop(store, c).await;
}

#[tokio::test(start_paused = true)]
async fn initial_rebalance_delay_is_honoured_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    let (store, c) = start(dir.path(), GroupConfig::default()).await;
    let t0 = Instant::now();
    let r = c
        .join(JoinGroupRequest {
            api_version: 3,
            ..join_req("")
        })
        .await;
    assert_eq!((r.error_code, t0.elapsed()), (NONE, Duration::from_secs(3)));

    // A second group: a member joins at 2 s, extending the delay once (3 + 3 s).
    let second = |g: &str| JoinGroupRequest {
        group_id: g.into(),
        api_version: 3,
        ..join_req("")
    };
    let t0 = Instant::now();
    let a = spawn_join(&c, second("g2"));
    wait_state(&c, "g2", "PreparingRebalance").await;
    advance(Duration::from_secs(2)).await;
    let b = spawn_join(&c, second("g2"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(t0.elapsed(), Duration::from_secs(6));
    assert_eq!((a.generation_id, b.generation_id), (1, 1));

    // Extensions stop at the rebalance timeout (5 s here) however many keep coming:
    // members arrive every 1.5 s, the phase ends at 5 s with the four that came.
    let t0 = Instant::now();
    let mut handles: Vec<_> = (0..5u64)
        .map(|i| {
            let c = c.clone();
            let req = JoinGroupRequest {
                rebalance_timeout_ms: 5000,
                ..second("g3")
            };
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1500 * i)).await;
                c.join(req).await
            })
        })
        .collect();
    let first = handles.remove(0).await.unwrap();
    assert_eq!(
        (first.error_code, t0.elapsed()),
        (NONE, Duration::from_secs(5))
    );
    assert_eq!(
        (first.leader == first.member_id, first.members.len()),
        (true, 4)
    );
    // The fifth, too late, starts the next rebalance; the four never rejoin and are
    // dropped when its timeout ends.
    let last = handles.pop().unwrap().await.unwrap();
    for h in handles {
        assert_eq!(h.await.unwrap().generation_id, 1);
    }
    assert_eq!((last.generation_id, last.members.len()), (2, 1));
    assert_eq!(t0.elapsed(), Duration::from_secs(6 + 5));
    stop(store, c).await;
}

#[tokio::test(start_paused = true)]
async fn a_new_member_makes_the_others_rejoin() {
    let dir = tempfile::tempdir().unwrap();
    let (store, c) = start(dir.path(), quick()).await;
    let (generation, ids, _) = stable_group(&c, 2).await;
    assert_eq!(generation, 1);
    // Being handed an id does not disturb the group; joining with it does.
    let newcomer = member_id(&c, "late").await;
    assert_eq!(c.heartbeat(G, 1, &ids[0], None).await, NONE);
    let joining = spawn_join(&c, join_req(&newcomer));
    wait_state(&c, G, "PreparingRebalance").await;
    for id in &ids {
        assert_eq!(c.heartbeat(G, 1, id, None).await, REBALANCE_IN_PROGRESS);
    }
    assert_eq!(
        c.sync(sync_req(&ids[0], 1, vec![])).await.error_code,
        REBALANCE_IN_PROGRESS
    );
    let mut answers = join_all(&c, ids.iter().map(|id| join_req(id)).collect()).await;
    answers.push(joining.await.unwrap());
    assert!(answers.iter().all(|a| a.generation_id == 2));
    // The old generation is over.
    assert_eq!(c.heartbeat(G, 1, &ids[0], None).await, ILLEGAL_GENERATION);
    assert_eq!(sync_round(&c, &answers).await.0, 2);
    assert_eq!(c.heartbeat(G, 2, &newcomer, None).await, NONE);
    stop(store, c).await;
}

#[tokio::test(start_paused = true)]
async fn a_silent_member_expires_and_the_others_get_a_new_generation() {
    let dir = tempfile::tempdir().unwrap();
    let (store, c) = start(dir.path(), quick()).await;
    let (_, ids, _) = stable_group(&c, 3).await;
    let (alive, silent) = (&ids[..2], &ids[2]);
    for _ in 0..3 {
        advance(Duration::from_secs(3)).await;
        for id in alive {
            assert_eq!(c.heartbeat(G, 1, id, None).await, NONE);
        }
    }
    // At 11 s the silent member's 10 s session is over; the timer task notices
    // without any request arriving.
    advance(Duration::from_secs(2)).await;
    wait_state(&c, G, "PreparingRebalance").await;
    for id in alive {
        assert_eq!(c.heartbeat(G, 1, id, None).await, REBALANCE_IN_PROGRESS);
    }
    let answers = join_all(&c, alive.iter().map(|id| join_req(id)).collect()).await;
    assert_eq!(sync_round(&c, &answers).await.0, 2);
    assert_eq!(c.heartbeat(G, 2, silent, None).await, UNKNOWN_MEMBER_ID);
    assert_eq!(c.join(join_req(silent)).await.error_code, UNKNOWN_MEMBER_ID);
    stop(store, c).await;
}

#[tokio::test(start_paused = true)]
async fn members_that_do_not_rejoin_in_time_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (store, c) = start(dir.path(), quick()).await;
    let (_, ids, _) = stable_group(&c, 2).await;
    let (rejoiner, laggard) = (&ids[0], &ids[1]);
    let newcomer = spawn_join(
        &c,
        JoinGroupRequest {
            api_version: 3,
            ..join_req("")
        },
    );
    wait_state(&c, G, "PreparingRebalance").await;
    let t0 = Instant::now();
    let rejoined = spawn_join(&c, join_req(rejoiner));
    // The laggard keeps its session alive but never rejoins.
    while !rejoined.is_finished() {
        advance(Duration::from_secs(3)).await;
        let code = c.heartbeat(G, 1, laggard, None).await;
        assert!(
            code == REBALANCE_IN_PROGRESS || code == UNKNOWN_MEMBER_ID,
            "{code}"
        );
        tokio::task::yield_now().await;
    }
    assert!(t0.elapsed() >= REBALANCE && t0.elapsed() < REBALANCE + Duration::from_secs(3));
    let answers = vec![rejoined.await.unwrap(), newcomer.await.unwrap()];
    assert_eq!(sync_round(&c, &answers).await.0, 2);
    assert_eq!(c.heartbeat(G, 2, laggard, None).await, UNKNOWN_MEMBER_ID);
    stop(store, c).await;
}

#[tokio::test(start_paused = true)]
async fn leaving_triggers_a_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let (store, c) = start(dir.path(), quick()).await;
    let (_, ids, _) = stable_group(&c, 2).await;
    let (stay, go) = (&ids[0], &ids[1]);
    assert_eq!(
        c.leave(
            G,
            vec![
                (go.clone(), None),
                ("nobody".into(), None),
                (String::new(), Some("no-instance".into()))
            ]
        )
        .await,
        (
            NONE,
            vec![
                (go.clone(), None, NONE),
                ("nobody".into(), None, UNKNOWN_MEMBER_ID),
                (String::new(), Some("no-instance".into()), UNKNOWN_MEMBER_ID),
            ]
        )
    );
    assert_eq!(c.heartbeat(G, 1, stay, None).await, REBALANCE_IN_PROGRESS);
    let r = c.join(join_req(stay)).await;
    assert_eq!(
        (r.generation_id, r.leader.as_str(), r.members.len()),
        (2, stay.as_str(), 1)
    );
    assert_eq!(
        c.leave("unknown-group", vec![(stay.clone(), None)]).await,
        (NONE, vec![(stay.clone(), None, UNKNOWN_MEMBER_ID)])
    );
    // The last member leaving empties the group at once.
    assert_eq!(c.leave(G, vec![(stay.clone(), None)]).await.1[0].2, NONE);
    let d = &c.describe_groups(&[G.into()]).await[0];
    assert_eq!(
        (d.state.as_str(), d.members.len(), d.protocol_type.as_str()),
        ("Empty", 0, "consumer")
    );
    stop(store, c).await;
}

#[tokio::test(start_paused = true)]
async fn stale_generations_unknown_members_and_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (store, c) = start(dir.path(), quick()).await;
    let (generation, ids, leader) = stable_group(&c, 1).await;
    let me = &ids[0];
    assert_eq!(leader, *me);
    assert_eq!(
        c.heartbeat(G, generation - 1, me, None).await,
        ILLEGAL_GENERATION
    );
    assert_eq!(
        c.heartbeat(G, generation, "ghost", None).await,
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        c.heartbeat("no-such-group", 1, me, None).await,
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(c.heartbeat("", 1, me, None).await, INVALID_GROUP_ID);
    assert_eq!(
        c.sync(sync_req(me, generation + 1, vec![]))
            .await
            .error_code,
        ILLEGAL_GENERATION
    );
    assert_eq!(
        c.sync(sync_req("ghost", generation, vec![]))
            .await
            .error_code,
        UNKNOWN_MEMBER_ID
    );
    let wrong_protocol = SyncGroupRequest {
        protocol_name: Some("roundrobin".into()),
        ..sync_req(me, generation, vec![])
    };
    assert_eq!(
        c.sync(wrong_protocol).await.error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );

    let part = || vec![(0, 5, -1, None)];
    assert_eq!(
        codes_of(
            &c.commit_offsets(commit_req(generation + 4, me, part()))
                .await
        ),
        [ILLEGAL_GENERATION]
    );
    assert_eq!(
        codes_of(
            &c.commit_offsets(commit_req(generation, "ghost", part()))
                .await
        ),
        [UNKNOWN_MEMBER_ID]
    );
    // Outside group management only an empty group may be committed for.
    assert_eq!(
        codes_of(&c.commit_offsets(commit_req(-1, "", part())).await),
        [UNKNOWN_MEMBER_ID]
    );
    let stale = OffsetCommitRequest {
        group_id: "never-seen".into(),
        ..commit_req(3, "someone", part())
    };
    assert_eq!(
        codes_of(&c.commit_offsets(stale).await),
        [ILLEGAL_GENERATION]
    );

    let bad = [
        JoinGroupRequest {
            group_id: String::new(),
            ..join_req("")
        },
        JoinGroupRequest {
            session_timeout_ms: 1000,
            ..join_req("")
        },
        JoinGroupRequest {
            session_timeout_ms: 1_800_001,
            ..join_req("")
        },
    ];
    let expected = [
        INVALID_GROUP_ID,
        INVALID_SESSION_TIMEOUT,
        INVALID_SESSION_TIMEOUT,
    ];
    for (req, code) in bad.into_iter().zip(expected) {
        let r = c.join(req).await;
        assert_eq!(
            (r.error_code, r.generation_id, r.leader.as_str()),
            (code, -1, "")
        );
    }
    stop(store, c).await;
}

#[tokio::test(start_paused = true)]
async fn protocols_must_be_consistent_and_the_vote_picks_one() {
    let dir = tempfile::tempdir().unwrap();
    let (store, c) = start(dir.path(), quick()).await;
    let v3 = |protos: &[(&str, &str)]| JoinGroupRequest {
        api_version: 3,
        protocols: protocols(protos),
        ..join_req("")
    };
    let first = c.join(v3(&[("range", "a"), ("roundrobin", "a")])).await;
    assert_eq!(
        (first.error_code, first.protocol_name.as_deref()),
        (NONE, Some("range"))
    );
    let a = first.member_id.clone();
    sync_round(&c, &[first]).await;

    let r = c.join(v3(&[("sticky", "b")])).await;
    assert_eq!(
        (r.error_code, r.member_id.as_str()),
        (INCONSISTENT_GROUP_PROTOCOL, "")
    );
    let r = c
        .join(JoinGroupRequest {
            protocol_type: "connect".into(),
            ..v3(&[("range", "b")])
        })
        .await;
    assert_eq!(r.error_code, INCONSISTENT_GROUP_PROTOCOL);
    let r = c
        .join(JoinGroupRequest {
            group_id: "fresh".into(),
            ..v3(&[])
        })
        .await;
    assert_eq!(r.error_code, INCONSISTENT_GROUP_PROTOCOL);
    assert_eq!(
        c.heartbeat(G, 1, &a, None).await,
        NONE,
        "refused joins change nothing"
    );

    // a prefers range, b and c roundrobin: roundrobin wins 2 to 1.
    let b = spawn_join(&c, v3(&[("roundrobin", "b"), ("range", "b")]));
    let cc = spawn_join(&c, v3(&[("roundrobin", "c"), ("range", "c")]));
    wait_members(&c, G, 3).await;
    let rejoin = JoinGroupRequest {
        protocols: protocols(&[("range", "a"), ("roundrobin", "a")]),
        ..join_req(&a)
    };
    let answers = vec![c.join(rejoin).await, b.await.unwrap(), cc.await.unwrap()];
    assert!(
        answers
            .iter()
            .all(|r| r.protocol_name.as_deref() == Some("roundrobin")),
        "{answers:?}"
    );
    let leader = answers.iter().find(|r| r.member_id == r.leader).unwrap();
    let mut metas: Vec<Bytes> = leader.members.iter().map(|m| m.2.clone()).collect();
    metas.sort();
    assert_eq!(metas, ["a", "b", "c"].map(Bytes::from));
    stop(store, c).await;
}

#[tokio::test(start_paused = true)]
async fn group_max_size_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let config = GroupConfig {
        max_size: 2,
        ..quick()
    };
    let (store, c) = start(dir.path(), config).await;
    let (generation, ids, _) = stable_group(&c, 2).await;
    // A full group turns a newcomer away before handing out a member id.
    let r = c.join(join_req("")).await;
    assert_eq!(
        (r.error_code, r.member_id.as_str()),
        (GROUP_MAX_SIZE_REACHED, "")
    );
    // Members already in are not affected.
    assert_eq!(c.join(join_req(&ids[1])).await.generation_id, generation);
    assert_eq!(c.describe_groups(&[G.into()]).await[0].state, "Stable");
    stop(store, c).await;
}

#[tokio::test(start_paused = true)]
async fn a_static_member_rejoining_fences_its_old_id() {
    let dir = tempfile::tempdir().unwrap();
    let (store, c) = start(dir.path(), quick()).await;
    let static_req = |member: &str, meta: &str| JoinGroupRequest {
        group_instance_id: Some("instance-a".into()),
        protocols: protocols(&[("range", meta)]),
        ..join_req(member)
    };
    // Static members need no member id round trip.
    let b_id = member_id(&c, "b").await;
    let answers = join_all(&c, vec![static_req("", "a"), join_req(&b_id)]).await;
    assert_eq!(answers[0].error_code, NONE);
    let old = answers[0].member_id.clone();
    assert!(old.starts_with("instance-a-"), "{old}");
    let (generation, leader) = sync_round(&c, &answers).await;

    // Restart with the same metadata: a new id, the same generation, no rebalance.
    let r = c.join(static_req("", "a")).await;
    let new = r.member_id.clone();
    assert_ne!(new, old);
    assert_eq!(
        (r.error_code, r.generation_id, r.members.len()),
        (NONE, generation, 0)
    );
    // Had the old id led, the answer names it so the new one does not run an assignment.
    assert_eq!(r.leader, leader);
    assert_eq!(c.describe_groups(&[G.into()]).await[0].state, "Stable");
    assert_eq!(
        c.heartbeat(G, generation, &old, Some("instance-a")).await,
        FENCED_INSTANCE_ID
    );
    assert_eq!(
        c.heartbeat(G, generation, &old, None).await,
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(c.heartbeat(G, generation, &b_id, None).await, NONE);
    let s = c
        .sync(SyncGroupRequest {
            group_instance_id: Some("instance-a".into()),
            ..sync_req(&new, generation, vec![])
        })
        .await;
    assert_eq!((s.error_code, s.assignment), (NONE, assignment_for(&old)));
    let commit = OffsetCommitRequest {
        group_instance_id: Some("instance-a".into()),
        ..commit_req(generation, &old, vec![(0, 1, -1, None)])
    };
    assert_eq!(
        codes_of(&c.commit_offsets(commit).await),
        [FENCED_INSTANCE_ID]
    );

    // Restart with new metadata: that does rebalance. A second restart while the
    // first waits in its join fences the waiting one.
    let waiting = spawn_join(&c, static_req("", "a2"));
    wait_state(&c, G, "PreparingRebalance").await;
    assert_eq!(
        c.heartbeat(G, generation, &b_id, None).await,
        REBALANCE_IN_PROGRESS
    );
    let again = spawn_join(&c, static_req("", "a2"));
    let fenced = waiting.await.unwrap();
    assert_eq!(fenced.error_code, FENCED_INSTANCE_ID);
    let b = c.join(join_req(&b_id)).await;
    let answers = vec![again.await.unwrap(), b];
    assert_eq!(sync_round(&c, &answers).await.0, generation + 1);

    // An admin removes the static member by instance id alone.
    let (code, members) = c
        .leave(G, vec![(String::new(), Some("instance-a".into()))])
        .await;
    assert_eq!((code, members[0].2), (NONE, NONE));
    assert_eq!(
        c.heartbeat(G, generation + 1, &b_id, None).await,
        REBALANCE_IN_PROGRESS
    );
    stop(store, c).await;
}

#[tokio::test(start_paused = true)]
async fn offsets_commit_then_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let (store, c) = start(dir.path(), quick()).await;
    // A standalone consumer's commit creates the group.
    let r = c
        .commit_offsets(OffsetCommitRequest {
            topics: vec![
                (
                    "orders".into(),
                    vec![
                        (0, 10, 2, Some("m".into())),
                        (1, 20, -1, None),
                        (7, 1, -1, None),
                    ],
                ),
                ("nope".into(), vec![(0, 1, -1, None)]),
                ("orders".into(), vec![(2, 30, -1, Some("x".repeat(4097)))]),
            ],
            ..commit_req(-1, "", vec![])
        })
        .await;
    assert_eq!(
        r,
        vec![
            (
                "orders".into(),
                vec![(0, NONE), (1, NONE), (7, UNKNOWN_TOPIC_OR_PARTITION)]
            ),
            ("nope".into(), vec![(0, UNKNOWN_TOPIC_OR_PARTITION)]),
            ("orders".into(), vec![(2, OFFSET_METADATA_TOO_LARGE)]),
        ]
    );
    assert_eq!(
        fetch(&c, G, vec![0, 1, 2]).await,
        vec![
            (0, 10, 2, "m".into(), NONE),
            (1, 20, -1, String::new(), NONE),
            (2, -1, -1, String::new(), NONE)
        ]
    );
    let all = c.fetch_offsets(G, None).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].1.iter().map(|p| p.0).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(
        fetch(&c, "unknown", vec![0]).await,
        vec![(0, -1, -1, String::new(), NONE)]
    );
    assert_eq!(c.fetch_offsets("unknown", None).await.unwrap(), vec![]);
    assert!(
        c.list_groups()
            .await
            .contains(&(G.into(), String::new(), "Empty".into()))
    );

    // One request is one batch in the group's partition, in Kafka's record format.
    let log = store.partition(OFFSETS_TOPIC, c.partition_for(G)).unwrap();
    let read = log.read(0, 1 << 20, true).unwrap();
    let batches: Vec<_> = BatchIter::new(&read.records).map(Result::unwrap).collect();
    assert_eq!(batches.len(), 1);
    let (_, records) = decode_records(&read.records, 1 << 20).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(
        records[0].key.as_deref(),
        Some(&offsets::encode_key(G, "orders", 0).unwrap()[..])
    );
    let value = records[0].value.as_deref().unwrap();
    assert_eq!(&value[..2], &[0, 3]);
    assert_eq!(&value[2..10], &10i64.to_be_bytes());
    assert_eq!(&value[10..14], &2i32.to_be_bytes());
    assert_eq!(&value[14..17], &[0, 1, b'm']);

    // Members commit in their generation; not while the assignment is pending.
    let id = member_id(&c, "m").await;
    let joined = c.join(join_req(&id)).await;
    assert_eq!(joined.generation_id, 1);
    assert_eq!(
        codes_of(
            &c.commit_offsets(commit_req(1, &id, vec![(0, 11, -1, None)]))
                .await
        ),
        [REBALANCE_IN_PROGRESS]
    );
    sync_round(&c, &[joined]).await;
    assert_eq!(
        codes_of(
            &c.commit_offsets(commit_req(1, &id, vec![(0, 11, 3, None)]))
                .await
        ),
        [NONE]
    );
    assert_eq!(
        fetch(&c, G, vec![0]).await,
        vec![(0, 11, 3, String::new(), NONE)]
    );
    stop(store, c).await;
}

#[tokio::test]
async fn offsets_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = GroupConfig {
        offsets_topic_num_partitions: 4,
        ..quick()
    };
    let groups: Vec<String> = (0..6).map(|i| format!("group-{i}")).collect();
    let (store, c) = start(dir.path(), config.clone()).await;
    for (i, g) in groups.iter().enumerate() {
        for round in 0..2 {
            let req = OffsetCommitRequest {
                group_id: g.clone(),
                ..commit_req(
                    -1,
                    "",
                    vec![
                        (0, (i * 100 + round) as i64, 1, Some(format!("r{round}"))),
                        (2, 7, -1, None),
                    ],
                )
            };
            assert_eq!(codes_of(&c.commit_offsets(req).await), [NONE, NONE]);
        }
    }
    stop(store, c).await;

    // A different configured count does not move anything: the topic's count rules.
    let (store, c) = start(
        dir.path(),
        GroupConfig {
            offsets_topic_num_partitions: 1,
            ..config
        },
    )
    .await;
    assert_eq!(
        store
            .describe_topic(OFFSETS_TOPIC)
            .unwrap()
            .partitions
            .len(),
        4
    );
    for (i, g) in groups.iter().enumerate() {
        assert_eq!(
            fetch(&c, g, vec![0, 1, 2]).await,
            vec![
                (0, (i * 100 + 1) as i64, 1, "r1".into(), NONE),
                (1, -1, -1, String::new(), NONE),
                (2, 7, -1, String::new(), NONE)
            ]
        );
        let p = c.partition_for(g);
        assert_eq!(p, partition_for(g, 4));
        assert!(store.partition(OFFSETS_TOPIC, p).unwrap().high_watermark() >= 4);
    }
    stop(store, c).await;
}

#[tokio::test]
async fn deleted_groups_lose_their_offsets_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let (store, c) = start(dir.path(), quick()).await;
    let (generation, ids, _) = stable_group(&c, 1).await;
    let keep = OffsetCommitRequest {
        group_id: "keep".into(),
        ..commit_req(-1, "", vec![(1, 5, -1, None)])
    };
    assert_eq!(codes_of(&c.commit_offsets(keep).await), [NONE]);
    assert_eq!(
        codes_of(
            &c.commit_offsets(commit_req(
                generation,
                &ids[0],
                vec![(0, 9, -1, None), (1, 8, -1, None)]
            ))
            .await
        ),
        [NONE, NONE]
    );

    assert_eq!(
        c.delete_groups(vec![G.into(), "missing".into()]).await,
        vec![
            (G.into(), NON_EMPTY_GROUP),
            ("missing".into(), GROUP_ID_NOT_FOUND)
        ]
    );
    c.leave(G, vec![(ids[0].clone(), None)]).await;
    assert_eq!(
        c.delete_groups(vec![G.into()]).await,
        vec![(G.into(), NONE)]
    );
    assert_eq!(
        fetch(&c, G, vec![0, 1])
            .await
            .iter()
            .map(|p| p.1)
            .collect::<Vec<_>>(),
        [-1, -1]
    );
    assert_eq!(c.describe_groups(&[G.into()]).await[0].state, "Dead");
    assert_eq!(
        c.delete_groups(vec![G.into()]).await,
        vec![(G.into(), GROUP_ID_NOT_FOUND)]
    );
    assert!(c.list_groups().await.iter().all(|(g, _, _)| g != G));
    stop(store, c).await;

    let (store, c) = start(dir.path(), quick()).await;
    assert_eq!(
        fetch(&c, G, vec![0, 1])
            .await
            .iter()
            .map(|p| p.1)
            .collect::<Vec<_>>(),
        [-1, -1]
    );
    assert_eq!(fetch(&c, "keep", vec![1]).await[0].1, 5);
    assert_eq!(
        c.list_groups().await,
        vec![("keep".into(), String::new(), "Empty".into())]
    );
    stop(store, c).await;
}

#[tokio::test(start_paused = true)]
async fn a_follower_waiting_for_the_leader_is_told_when_the_leader_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (store, c) = start(dir.path(), quick()).await;
    let ids = [member_id(&c, "a").await, member_id(&c, "b").await];
    let answers = join_all(&c, ids.iter().map(|id| join_req(id)).collect()).await;
    let leader = answers[0].leader.clone();
    let follower = ids.iter().find(|id| **id != leader).unwrap().clone();

    // The leader goes silent: its session ends and the follower's sync is answered.
    let waiting = spawn_sync(&c, sync_req(&follower, 1, vec![]));
    let t0 = Instant::now();
    let r = waiting.await.unwrap();
    assert_eq!(r.error_code, REBALANCE_IN_PROGRESS);
    assert_eq!(t0.elapsed(), SESSION);

    // A leader that heartbeats but never syncs is removed after the rebalance timeout.
    let answer = c.join(join_req(&follower)).await;
    assert_eq!(
        (answer.generation_id, answer.leader.as_str()),
        (2, follower.as_str())
    );
    let other = member_id(&c, "c").await;
    let joining = spawn_join(&c, join_req(&other));
    wait_state(&c, G, "PreparingRebalance").await;
    let answers = join_all(&c, vec![join_req(&follower)]).await;
    let newcomer = joining.await.unwrap();
    let gen3 = answers[0].generation_id;
    let (lead, follow) = if answers[0].leader == follower {
        (&follower, &other)
    } else {
        (&other, &follower)
    };
    assert_eq!(newcomer.generation_id, gen3);
    let waiting = spawn_sync(&c, sync_req(follow, gen3, vec![]));
    let t0 = Instant::now();
    while !waiting.is_finished() {
        advance(Duration::from_secs(3)).await;
        let code = c.heartbeat(G, gen3, lead, None).await;
        assert!(code == NONE || code == UNKNOWN_MEMBER_ID, "{code}");
        tokio::task::yield_now().await;
    }
    assert_eq!(waiting.await.unwrap().error_code, REBALANCE_IN_PROGRESS);
    assert!(t0.elapsed() >= REBALANCE && t0.elapsed() <= REBALANCE + Duration::from_secs(3));
    assert_eq!(c.heartbeat(G, gen3, lead, None).await, UNKNOWN_MEMBER_ID);
    stop(store, c).await;
}

#[tokio::test(start_paused = true)]
async fn expired_offsets_are_tombstoned() {
    let dir = tempfile::tempdir().unwrap();
    let config = GroupConfig {
        offsets_retention: Duration::from_secs(60),
        offsets_retention_check_interval: Duration::from_secs(10),
        ..quick()
    };
    let (store, c) = start(dir.path(), config.clone()).await;
    let standalone = OffsetCommitRequest {
        group_id: "standalone".into(),
        ..commit_req(-1, "", vec![(0, 1, -1, None)])
    };
    assert_eq!(codes_of(&c.commit_offsets(standalone).await), [NONE]);
    // A group with members keeps its offsets however old they are.
    let (generation, ids, _) = stable_group(&c, 1).await;
    assert_eq!(
        codes_of(
            &c.commit_offsets(commit_req(generation, &ids[0], vec![(0, 2, -1, None)]))
                .await
        ),
        [NONE]
    );
    for _ in 0..30 {
        advance(Duration::from_secs(3)).await;
        // A barrier: while an expiry pass runs on the blocking pool, paused time does
        // not auto-advance, so this sleep ends only after the pass is done.
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(c.heartbeat(G, generation, &ids[0], None).await, NONE);
    }
    assert_eq!(fetch(&c, "standalone", vec![0]).await[0].1, -1);
    assert_eq!(fetch(&c, G, vec![0]).await[0].1, 2);
    assert!(
        c.list_groups()
            .await
            .iter()
            .all(|(g, _, _)| g != "standalone")
    );
    stop(store, c).await;

    let (store, c) = start(dir.path(), config).await;
    assert_eq!(fetch(&c, "standalone", vec![0]).await[0].1, -1);
    assert_eq!(fetch(&c, G, vec![0]).await[0].1, 2);
    stop(store, c).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_answers_waiters_and_stops_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let (store, c) = start(dir.path(), GroupConfig::default()).await;
    let waiting = spawn_join(
        &c,
        JoinGroupRequest {
            api_version: 3,
            ..join_req("")
        },
    );
    wait_state(&c, G, "PreparingRebalance").await;
    c.shutdown().await;
    assert_eq!(waiting.await.unwrap().error_code, NOT_COORDINATOR);
    assert_eq!(c.heartbeat(G, 0, "x", None).await, NOT_COORDINATOR);
    assert_eq!(
        codes_of(
            &c.commit_offsets(commit_req(-1, "", vec![(0, 1, -1, None)]))
                .await
        ),
        [NOT_COORDINATOR]
    );
    assert_eq!(c.fetch_offsets(G, None).await, Err(NOT_COORDINATOR));
    stop(store, c).await;

    // Dropping without shutdown also lets go of everything.
    let (store, c) = start(dir.path(), quick()).await;
    drop(c);
    tokio::task::yield_now().await;
    assert_eq!(Arc::strong_count(&store), 1);
}
