//! The remote client against the real broker over TCP: an in-process `RunningBroker`
//! with its listener on 127.0.0.1:0 (the `tributary broker` binary is exercised in
//! tests/it/remote_client.rs), and hand-written servers for malformed answers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::broker::group::codes::{NONE, REBALANCE_IN_PROGRESS};
use crate::broker::server::{BrokerSettings, RunningBroker};
use crate::client::consumer::{decode_assignment, encode_assignment, encode_subscription};
use crate::client::{ProducerRecord, partitioner};
use crate::log::compression::Compression;

/// A broker on `listen` serving `dir`, on a runtime of its own (so the client's
/// blocking calls on the test thread never block the broker).
struct TestBroker {
    rt: tokio::runtime::Runtime,
    running: Option<RunningBroker>,
    addr: SocketAddr,
}

impl TestBroker {
    fn start(dir: &Path, listen: SocketAddr) -> TestBroker {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut settings = BrokerSettings::new(dir);
        settings.listen = listen;
        settings.groups.initial_rebalance_delay = Duration::from_millis(50);
        let running = rt.block_on(RunningBroker::start(settings)).unwrap();
        let addr = running.addr;
        TestBroker {
            rt,
            running: Some(running),
            addr,
        }
    }

    fn stop(mut self) {
        let running = self.running.take().unwrap();
        self.rt.block_on(running.stop()).unwrap();
    }
}

fn config(addr: SocketAddr) -> RemoteConfig {
    let mut c = RemoteConfig::new(&addr.to_string()).unwrap();
    c.client_id = "remote-test".into();
    c.operation_timeout = Duration::from_secs(20);
    c
}

fn record(topic: &str, key: Option<&str>, value: &str) -> ProducerRecord {
    ProducerRecord {
        topic: topic.into(),
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        ..ProducerRecord::default()
    }
}

fn values(f: &Fetched) -> Vec<String> {
    f.records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

/// Everything in a partition, read in pieces of `max_bytes`.
fn read_all(client: &RemoteClient, topic: &str, partition: i32, max_bytes: usize) -> Vec<String> {
    let end = client
        .list_offset(topic, partition, OffsetSpec::Latest)
        .unwrap();
    let mut out = Vec::new();
    let mut next = 0;
    while next < end {
        let f = client.fetch(topic, partition, next, max_bytes).unwrap();
        assert!(f.next_offset > next, "fetch at {next} made no progress");
        assert_eq!(f.records.first().map(|r| r.offset), Some(next));
        out.extend(values(&f));
        next = f.next_offset;
    }
    out
}

#[test]
fn metadata_topics_produce_fetch_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path(), "127.0.0.1:0".parse().unwrap());
    let client = RemoteClient::connect(config(broker.addr)).unwrap();
    assert_eq!(client.brokers(), vec![(0, broker.addr.to_string())]);

    let configs: BTreeMap<String, String> =
        [("cleanup.policy", "compact"), ("retention.ms", "123456")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    assert_eq!(
        client
            .create_topic("t", Some(3), Some(1), &configs)
            .unwrap(),
        (3, true)
    );
    assert_eq!(
        client.ensure_topic("t", Some(5), BTreeMap::new()).unwrap(),
        (3, false)
    );
    assert_eq!(client.topic_overrides("t").unwrap(), configs);
    let all = client.describe_topic_configs("t").unwrap();
    assert!(
        all.iter()
            .any(|c| c.name == "segment.bytes" && c.source != 1)
    );
    assert_eq!(client.partition_count("t"), Some(3));
    assert_eq!(client.try_partition_count("missing").unwrap(), None);
    assert!(matches!(
        client.topic_overrides("missing"),
        Err(ClientError::UnknownTopic(t)) if t == "missing"
    ));
    assert!(client.list_topics().contains(&"t".to_owned()));
    // A replication factor the single broker cannot give is refused, naming the topic.
    let err = client
        .create_topic("rf3", Some(1), Some(3), &BTreeMap::new())
        .unwrap_err();
    assert!(err.to_string().contains("\"rf3\""), "{err}");
    assert!(!err.is_retriable());

    // acks=all with idempotence (the default), gzip, small batches.
    let records: Vec<ProducerRecord> = (0..60)
        .map(|i| record("t", Some(&format!("k{}", i % 7)), &format!("v{i}")))
        .collect();
    let settings = ProducerSettings {
        compression: Compression::Gzip,
        batch_size: 200,
    };
    let before = crate::client::now_ms();
    let pos = client.send(&records, &settings).unwrap();
    let mut expected: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for (r, p) in records.iter().zip(&pos) {
        let key = r.key.as_ref().unwrap();
        assert_eq!(p.partition, partitioner::partition_for_key(key, 3));
        let list = expected.entry(p.partition).or_default();
        assert_eq!(p.offset, list.len() as i64, "offsets follow each other");
        list.push(String::from_utf8_lossy(r.value.as_ref().unwrap()).into_owned());
    }
    for p in 0..3 {
        let want = expected.remove(&p).unwrap_or_default();
        assert_eq!(read_all(&client, "t", p, 1), want, "partition {p}");
        assert_eq!(read_all(&client, "t", p, 1 << 20), want, "partition {p}");
        assert_eq!(client.list_offset("t", p, OffsetSpec::Earliest).unwrap(), 0);
        // From the middle of a batch: nothing before the asked offset.
        if want.len() > 2 {
            let f = client.fetch("t", p, 2, 1 << 20).unwrap();
            assert_eq!(f.records[0].offset, 2);
            assert_eq!(values(&f), want[2..].to_vec());
            assert_eq!(f.high_watermark, want.len() as i64);
        }
        // Every record is at or after `before`: a timestamp query finds the first.
        assert_eq!(
            client
                .list_offset("t", p, OffsetSpec::Timestamp(before))
                .unwrap(),
            0
        );
        // A timestamp past the end answers the high watermark, as in-process.
        assert_eq!(
            client
                .list_offset("t", p, OffsetSpec::Timestamp(before + 3_600_000))
                .unwrap(),
            want.len() as i64
        );
    }
    let ends = client.end_offsets("t").unwrap();
    assert_eq!(ends.iter().sum::<i64>(), 60);

    // send_to_partition and the records' parts.
    // A compacted topic: every record needs a key.
    let mut r = record("t", Some("hk"), "with-headers");
    r.headers = vec![crate::client::Header {
        key: "h".into(),
        value: Some(Bytes::from_static(b"hv")),
    }];
    r.timestamp = Some(1_700_000_000_000);
    let base = client
        .send_to_partition("t", 1, &[&r], &ProducerSettings::default())
        .unwrap();
    assert_eq!(base, ends[1]);
    let f = client.fetch("t", 1, base, 1 << 20).unwrap();
    assert_eq!(f.records.len(), 1);
    assert_eq!(f.records[0].headers, r.headers);
    assert_eq!(f.records[0].timestamp, 1_700_000_000_000);
    assert_eq!(f.records[0].key.as_deref(), Some(&b"hk"[..]));

    // Errors name what is wrong.
    let err = client.fetch("t", 7, 0, 100).unwrap_err();
    assert!(
        matches!(&err, ClientError::UnknownPartition { topic, partition: 7 } if topic == "t"),
        "{err}"
    );
    let err = client.fetch("t", 0, 1_000_000, 100).unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::OffsetOutOfRange {
                offset: 1_000_000,
                ..
            }
        ),
        "{err}"
    );
    assert!(client.flush("t", 2).is_ok());
    assert!(matches!(
        client.flush("t", 3),
        Err(ClientError::UnknownPartition { .. })
    ));

    // A long poll returns when a record arrives, before its max wait.
    let poller = client.clone();
    let end = client.list_offset("t", 0, OffsetSpec::Latest).unwrap();
    let waiting = std::thread::spawn(move || {
        let options = FetchOptions {
            max_wait: Duration::from_secs(10),
            ..FetchOptions::default()
        };
        let started = Instant::now();
        let f = poller.fetch_wait("t", 0, end, &options).unwrap();
        (f, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    client
        .send_to_partition(
            "t",
            0,
            &[&record("t", Some("lk"), "late")],
            &ProducerSettings::default(),
        )
        .unwrap();
    let (f, took) = waiting.join().unwrap();
    assert_eq!(values(&f), vec!["late".to_owned()]);
    assert!(took < Duration::from_secs(8), "{took:?}");
    drop(client);
    broker.stop();
}

#[test]
fn a_resent_batch_is_acknowledged_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path(), "127.0.0.1:0".parse().unwrap());
    let client = RemoteClient::connect(config(broker.addr)).unwrap();
    client
        .create_topic("idem", Some(1), None, &BTreeMap::new())
        .unwrap();
    let records: Vec<ProducerRecord> = (0..5)
        .map(|i| record("idem", None, &format!("r{i}")))
        .collect();
    let refs: Vec<&ProducerRecord> = records.iter().collect();
    let settings = ProducerSettings::default();
    assert_eq!(
        client
            .send_to_partition("idem", 0, &refs, &settings)
            .unwrap(),
        0
    );
    assert_eq!(
        client
            .send_to_partition("idem", 0, &refs, &settings)
            .unwrap(),
        5
    );

    // The second batch again, as a retry after a lost answer sends it: same producer,
    // epoch and sequence. The broker answers with its first offset and writes nothing.
    let cluster = client.cluster().clone();
    let d = cluster.deadline(Duration::from_secs(10));
    let again = client.block_on(async {
        let p = cluster.producer_id(d).await.unwrap();
        let mut batch = build_batches("idem", 0, &refs, &settings, 1)
            .unwrap()
            .remove(0);
        cluster::restamp(&mut batch, p.id, p.epoch, 5);
        cluster
            .produce_once("idem", 0, Bytes::from(batch), -1, d)
            .await
    });
    assert_eq!(again.unwrap(), 5);
    assert_eq!(
        client.list_offset("idem", 0, OffsetSpec::Latest).unwrap(),
        10
    );
    // A gap in the sequence is refused, and the client's own sequence is unharmed.
    let gap = client.block_on(async {
        let p = cluster.producer_id(d).await.unwrap();
        let mut batch = build_batches("idem", 0, &refs, &settings, 1)
            .unwrap()
            .remove(0);
        cluster::restamp(&mut batch, p.id, p.epoch, 50);
        cluster
            .produce_once("idem", 0, Bytes::from(batch), -1, d)
            .await
    });
    let err = gap.unwrap_err();
    assert!(err.to_string().contains("idem-0"), "{err}");
    assert_eq!(
        client
            .send_to_partition("idem", 0, &refs, &settings)
            .unwrap(),
        10
    );
    assert_eq!(read_all(&client, "idem", 0, 1 << 20).len(), 15);

    // acks=1 without idempotence, and acks=0 (no answer: offsets unknown).
    for acks in ["1", "0"] {
        let props: BTreeMap<String, String> = [
            ("bootstrap.servers", broker.addr.to_string()),
            ("acks", acks.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let c = RemoteConfig::from_props(&props).unwrap();
        assert!(!c.idempotence);
        let other = RemoteClient::connect(c).unwrap();
        let pos = other.send(&records, &settings).unwrap();
        assert_eq!(pos[0].offset < 0, acks == "0");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.list_offset("idem", 0, OffsetSpec::Latest).unwrap() < 25 {
        assert!(
            Instant::now() < deadline,
            "the acks=0 records never arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let bad: BTreeMap<String, String> = [
        ("bootstrap.servers", "127.0.0.1:9092"),
        ("acks", "1"),
        ("enable.idempotence", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let err = RemoteConfig::from_props(&bad).unwrap_err();
    assert!(err.to_string().starts_with("enable.idempotence="), "{err}");
    drop(client);
    broker.stop();
}

#[test]
fn produce_carries_on_across_a_broker_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path(), "127.0.0.1:0".parse().unwrap());
    let addr = broker.addr;
    let client = RemoteClient::connect(config(addr)).unwrap();
    client
        .create_topic("r", Some(1), None, &BTreeMap::new())
        .unwrap();
    let settings = ProducerSettings::default();
    let first: Vec<ProducerRecord> = (0..10)
        .map(|i| record("r", None, &format!("a{i}")))
        .collect();
    client.send(&first, &settings).unwrap();
    broker.stop();

    // The broker is down: the send retries (reconnecting with backoff) until it is back.
    let sender = client.clone();
    let sending = std::thread::spawn(move || {
        let second: Vec<ProducerRecord> = (0..10)
            .map(|i| record("r", None, &format!("b{i}")))
            .collect();
        sender.send(&second, &ProducerSettings::default())
    });
    std::thread::sleep(Duration::from_millis(700));
    let broker = TestBroker::start(dir.path(), addr);
    let pos = sending.join().unwrap().unwrap();
    assert_eq!(pos[0].offset, 10);
    let want: Vec<String> = (0..10)
        .map(|i| format!("a{i}"))
        .chain((0..10).map(|i| format!("b{i}")))
        .collect();
    assert_eq!(read_all(&client, "r", 0, 1 << 20), want);
    drop(client);
    broker.stop();
}

#[test]
fn a_group_of_two_joins_syncs_heartbeats_commits_and_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path(), "127.0.0.1:0".parse().unwrap());
    // One client shared by both members: each JoinGroup holds a connection of its own.
    let client = RemoteClient::connect(config(broker.addr)).unwrap();
    client
        .create_topic("g", Some(4), None, &BTreeMap::new())
        .unwrap();
    let join = |c: RemoteClient| {
        std::thread::spawn(move || {
            c.join_group(&group::JoinGroupRequest {
                group_id: "grp".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 10_000,
                member_id: String::new(),
                group_instance_id: None,
                protocol_type: "consumer".into(),
                protocols: vec![("range".into(), encode_subscription(&["g".to_owned()]))],
                api_version: 0,
                client_id: String::new(),
                client_host: String::new(),
            })
            .unwrap()
        })
    };
    let a = join(client.clone());
    let b = join(client.clone());
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    assert_eq!((a.error_code, b.error_code), (NONE, NONE));
    assert_eq!(a.generation_id, b.generation_id);
    assert_eq!(a.leader, b.leader);
    assert_ne!(a.member_id, b.member_id);
    assert_eq!(a.protocol_name.as_deref(), Some("range"));
    let (leader, follower) = if a.leader == a.member_id {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(leader.members.len(), 2);
    assert!(follower.members.is_empty());
    let mut ids: Vec<String> = leader.members.iter().map(|m| m.0.clone()).collect();
    ids.sort();
    let plan: Vec<(String, Bytes)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let parts = vec![
                ("g".to_owned(), 2 * i as i32),
                ("g".to_owned(), 2 * i as i32 + 1),
            ];
            (id.clone(), encode_assignment(&parts))
        })
        .collect();
    let sync =
        |c: RemoteClient, j: &group::JoinGroupResponse, assignments: Vec<(String, Bytes)>| {
            let req = group::SyncGroupRequest {
                group_id: "grp".into(),
                generation_id: j.generation_id,
                member_id: j.member_id.clone(),
                group_instance_id: None,
                protocol_type: Some("consumer".into()),
                protocol_name: j.protocol_name.clone(),
                assignments,
            };
            std::thread::spawn(move || c.sync_group(&req).unwrap())
        };
    // The follower first: its SyncGroup waits for the leader's.
    let fs = sync(client.clone(), &follower, Vec::new());
    let ls = sync(client.clone(), &leader, plan.clone());
    let (fs, ls) = (fs.join().unwrap(), ls.join().unwrap());
    assert_eq!((fs.error_code, ls.error_code), (NONE, NONE));
    let mine = |id: &str| decode_assignment(&plan.iter().find(|(m, _)| m == id).unwrap().1);
    assert_eq!(decode_assignment(&fs.assignment), mine(&follower.member_id));
    assert_eq!(decode_assignment(&ls.assignment), mine(&leader.member_id));
    let generation = leader.generation_id;
    assert_eq!(
        client
            .heartbeat("grp", generation, &leader.member_id)
            .unwrap(),
        NONE
    );
    assert_eq!(
        client
            .heartbeat("grp", generation, &follower.member_id)
            .unwrap(),
        NONE
    );

    let offsets: BTreeMap<(String, i32), i64> =
        [(("g".to_owned(), 0), 11), (("g".to_owned(), 1), 12)]
            .into_iter()
            .collect();
    client
        .commit_offsets("grp", generation, &leader.member_id, &offsets)
        .unwrap();
    let wanted: Vec<(String, i32)> = (0..4).map(|p| ("g".to_owned(), p)).collect();
    assert_eq!(client.committed_offsets("grp", &wanted).unwrap(), offsets);
    // A commit with a stale generation is refused with the group's error.
    let err = client
        .commit_offsets("grp", generation + 5, &leader.member_id, &offsets)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::Group {
                call: "OffsetCommit",
                code: 22,
                ..
            }
        ),
        "{err}"
    );

    // The group as an admin sees it.
    let cluster = client.cluster().clone();
    let described = client
        .block_on(cluster.describe_groups(&["grp".to_owned(), "nobody".to_owned()]))
        .unwrap();
    assert_eq!(described[0].state, "Stable");
    assert_eq!(described[0].protocol_type, "consumer");
    assert_eq!(described[0].protocol, "range");
    assert_eq!(described[0].members.len(), 2);
    assert_eq!(described[1].state, "Dead");
    // A group with members cannot be deleted.
    assert_eq!(
        client
            .block_on(cluster.delete_groups(&["grp".to_owned()]))
            .unwrap(),
        vec![(
            "grp".to_owned(),
            crate::broker::group::codes::NON_EMPTY_GROUP
        )]
    );

    assert_eq!(
        client.leave_group("grp", &follower.member_id).unwrap(),
        NONE
    );
    assert_eq!(
        client
            .heartbeat("grp", generation, &leader.member_id)
            .unwrap(),
        REBALANCE_IN_PROGRESS
    );
    assert_eq!(client.leave_group("grp", &leader.member_id).unwrap(), NONE);
    // Offsets outlive the members, until the empty group is deleted.
    assert_eq!(client.committed_offsets("grp", &wanted).unwrap(), offsets);
    assert_eq!(
        client
            .block_on(cluster.delete_groups(&["grp".to_owned()]))
            .unwrap(),
        vec![("grp".to_owned(), NONE)]
    );
    assert!(client.committed_offsets("grp", &wanted).unwrap().is_empty());
    drop(client);
    broker.stop();
}

/// A group member heartbeats from a task on the runtime: the group calls' futures
/// must be `Send` (a compile-time check).
#[allow(dead_code)]
fn group_calls_can_be_spawned(cluster: std::sync::Arc<Cluster>) {
    fn spawnable<F: std::future::Future + Send + 'static>(_: F) {}
    let c = cluster.clone();
    spawnable(async move { c.heartbeat("g", 1, "m", None).await });
    let c = cluster.clone();
    spawnable(async move {
        let req = group::SyncGroupRequest {
            group_id: "g".into(),
            generation_id: 1,
            member_id: "m".into(),
            group_instance_id: None,
            protocol_type: None,
            protocol_name: None,
            assignments: Vec::new(),
        };
        c.sync_group(&req).await
    });
    spawnable(async move { cluster.fetch_offsets("g", None).await });
}

#[test]
fn a_bad_bootstrap_address_fails_in_time_naming_it() {
    // Nothing listens on port 1.
    let mut c = RemoteConfig::new("127.0.0.1:1").unwrap();
    c.operation_timeout = Duration::from_secs(2);
    c.connect_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = RemoteClient::connect(c).unwrap_err();
    let took = started.elapsed();
    let text = err.to_string();
    assert!(text.contains("bootstrap.servers=127.0.0.1:1"), "{text}");
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(err.is_retriable());

    for bad in ["", "localhost", "host:port", "a:1,:9092"] {
        let err = RemoteConfig::new(bad).unwrap_err();
        assert!(
            err.to_string().starts_with("bootstrap.servers entry"),
            "{bad}: {err}"
        );
    }
    assert_eq!(
        RemoteConfig::new("PLAINTEXT://h1:9092, h2:9093")
            .unwrap()
            .bootstrap,
        vec!["h1:9092".to_owned(), "h2:9093".to_owned()]
    );
}

/// A server that reads one request, answers with `reply` and closes the connection
/// (an empty `reply`: never answers, keeps the connection open).
fn fake_broker(reply: Vec<u8>) -> (SocketAddr, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut len = [0u8; 4];
                if sock.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut req = vec![0u8; i32::from_be_bytes(len).clamp(0, 1 << 16) as usize];
                if sock.read_exact(&mut req).await.is_err() {
                    return;
                }
                // Answer with the request's correlation id where the reply has zeros.
                let mut reply = reply;
                if reply.len() >= 8 && reply[4..8] == [0, 0, 0, 0] {
                    reply[4..8].copy_from_slice(&req[4..8]);
                }
                if reply.is_empty() {
                    // Never answer: the client's request timeout must end the wait.
                    let mut rest = Vec::new();
                    let _ = sock.read_to_end(&mut rest).await;
                    return;
                }
                let _ = sock.write_all(&reply).await;
                // Then hang up: a client must not wait for the rest of a cut answer.
            });
        }
    });
    (addr, rt)
}

#[test]
fn malformed_answers_are_errors_naming_the_broker() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        // A length prefix of 2 GB: refused before anything is buffered.
        (
            "huge length",
            vec![0x7f, 0xff, 0xff, 0xff],
            "exceeds the limit",
        ),
        (
            "negative length",
            vec![0xff, 0xff, 0xff, 0xfe],
            "is negative",
        ),
        // The right correlation id, then an array claiming i32::MAX api keys.
        (
            "hostile array",
            vec![0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff],
            "malformed ApiVersions",
        ),
        // An answer to a request never sent.
        (
            "unknown correlation id",
            vec![0, 0, 0, 6, 0, 0, 0x12, 0x34, 0, 0],
            "correlation id",
        ),
        (
            "closed mid-answer",
            vec![0, 0, 0, 50, 0, 0, 0, 0],
            "mid-response",
        ),
        ("no answer", Vec::new(), "got no answer within"),
    ];
    for (name, reply, expect) in cases {
        let (addr, rt) = fake_broker(reply);
        let mut c = config(addr);
        c.operation_timeout = Duration::from_millis(600);
        c.connect_timeout = Duration::from_millis(300);
        let started = Instant::now();
        let err = RemoteClient::connect(c).unwrap_err().to_string();
        assert!(err.contains(&addr.to_string()), "{name}: {err}");
        assert!(err.contains(expect), "{name}: {err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{name}");
        rt.shutdown_background();
    }
}

#[test]
fn version_choice_is_the_highest_both_speak() {
    // Tributary's broker table against the client's: every api the client needs is
    // served, at the highest common version.
    for &(api, lo, hi) in CLIENT_VERSIONS {
        let (blo, bhi) = crate::protocol::supported_versions(api)
            .unwrap_or_else(|| panic!("{api:?} not served by the broker"));
        assert!(lo.max(blo) <= hi.min(bhi), "{api:?}");
        let known = api.valid_versions();
        assert!(known.min <= lo && hi <= known.max, "{api:?}");
    }
}

/// A broker that serves ApiVersions only up to v2 (answering v3 the KIP-511 way: a v0
/// body with UNSUPPORTED_VERSION) and Metadata with itself as the only broker, recording
/// every (api key, version) it is sent.
fn old_broker() -> (
    SocketAddr,
    tokio::runtime::Runtime,
    std::sync::Arc<std::sync::Mutex<Vec<(i16, i16)>>>,
) {
    use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
    use kafka_protocol::messages::{
        ApiKey, ApiVersionsResponse, BrokerId, MetadataResponse, RequestKind, ResponseKind,
    };
    use kafka_protocol::protocol::StrBytes;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let table: Vec<(ApiKey, i16, i16)> = crate::protocol::SUPPORTED
        .iter()
        .map(|&(k, lo, hi)| {
            if k == ApiKey::ApiVersions {
                (k, 0, 2)
            } else {
                (k, lo, hi)
            }
        })
        .collect();
    let log = seen.clone();
    rt.spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let table = table.clone();
            let log = log.clone();
            tokio::spawn(async move {
                loop {
                    let mut len = [0u8; 4];
                    if sock.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut req = vec![0u8; i32::from_be_bytes(len).clamp(0, 1 << 16) as usize];
                    if sock.read_exact(&mut req).await.is_err() {
                        return;
                    }
                    let served =
                        |k: ApiKey| table.iter().find(|e| e.0 == k).map(|&(_, lo, hi)| (lo, hi));
                    let reply = match crate::protocol::decode_request(Bytes::from(req), &served) {
                        Err(crate::protocol::ProtocolError::UnsupportedVersion {
                            api_key: ApiKey::ApiVersions,
                            version,
                            correlation_id,
                        }) => {
                            log.lock().unwrap().push((18, version));
                            crate::protocol::api_versions_unsupported_response(
                                correlation_id,
                                &table,
                            )
                            .unwrap()
                        }
                        Err(_) => return,
                        Ok(r) => {
                            log.lock().unwrap().push((r.api_key, r.api_version));
                            let body = match r.body {
                                RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(
                                    ApiVersionsResponse::default().with_api_keys(
                                        crate::protocol::advertised_versions(&table),
                                    ),
                                ),
                                RequestKind::Metadata(_) => ResponseKind::Metadata(
                                    MetadataResponse::default().with_brokers(vec![
                                        MetadataResponseBroker::default()
                                            .with_node_id(BrokerId(7))
                                            .with_host(StrBytes::from_string(addr.ip().to_string()))
                                            .with_port(i32::from(addr.port())),
                                    ]),
                                ),
                                _ => return,
                            };
                            let key = ApiKey::try_from(r.api_key).unwrap();
                            crate::protocol::encode_response(
                                r.correlation_id,
                                key,
                                r.api_version,
                                &body,
                            )
                            .unwrap()
                        }
                    };
                    if sock.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, rt, seen)
}

#[test]
fn an_older_api_versions_is_negotiated_down_kip_511() {
    let (addr, rt, seen) = old_broker();
    let client = RemoteClient::connect(config(addr)).unwrap();
    assert_eq!(client.brokers(), vec![(7, addr.to_string())]);
    // ApiVersions v3 refused, v2 answered, then Metadata at the highest common version.
    assert_eq!(*seen.lock().unwrap(), vec![(18, 3), (18, 2), (3, 12)]);
    drop(client);
    rt.shutdown_background();
}
