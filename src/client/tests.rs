use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::broker::server::{BrokerSettings, RunningBroker};

async fn broker(dir: &std::path::Path) -> RunningBroker {
    let mut settings = BrokerSettings::new(dir);
    settings.serve = false;
    settings.groups.initial_rebalance_delay = Duration::from_millis(50);
    RunningBroker::start(settings).await.unwrap()
}

fn record(topic: &str, key: Option<&str>, value: &str) -> ProducerRecord {
    ProducerRecord {
        topic: topic.into(),
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        ..ProducerRecord::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_partition_fetch_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let running = broker(dir.path()).await;
    let client = Client::embedded(running.broker.clone(), tokio::runtime::Handle::current());
    tokio::task::spawn_blocking(move || {
        assert_eq!(
            client.ensure_topic("t", Some(3), BTreeMap::new()).unwrap(),
            (3, true)
        );
        assert_eq!(
            client.ensure_topic("t", Some(5), BTreeMap::new()).unwrap(),
            (3, false)
        );
        let records: Vec<_> = (0..30)
            .map(|i| record("t", Some(&format!("k{}", i % 5)), &format!("v{i}")))
            .collect();
        let settings = ProducerSettings {
            batch_size: 64,
            ..ProducerSettings::default()
        };
        let pos = client.send(&records, &settings).unwrap();
        // Same key, same partition, and the partition Kafka's partitioner picks.
        for (r, p) in records.iter().zip(&pos) {
            let key = r.key.as_ref().unwrap();
            assert_eq!(p.partition, partitioner::partition_for_key(key, 3));
        }
        let mut total = 0;
        for p in 0..3 {
            let f = client.fetch("t", p, 0, 1 << 20).unwrap();
            let offsets: Vec<i64> = f.records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, (0..offsets.len() as i64).collect::<Vec<_>>());
            assert_eq!(f.next_offset, offsets.len() as i64);
            total += offsets.len();
            // From the middle: nothing before the asked offset.
            if offsets.len() > 2 {
                let f = client.fetch("t", p, 2, 1 << 20).unwrap();
                assert_eq!(f.records[0].offset, 2);
            }
        }
        assert_eq!(total, 30);
        // A missing topic is created as the broker's auto.create.topics.enable says.
        client
            .send(&[record("auto", None, "x")], &settings)
            .unwrap();
        assert_eq!(client.partition_count("auto"), Some(1));
        assert!(matches!(
            client.send_to_partition("nope", 0, &[&record("nope", None, "x")], &settings),
            Err(ClientError::UnknownTopic(_))
        ));

        // Two members of one group split the partitions; offsets commit and survive.
        let sub = Subscription::Topics(vec!["t".into()]);
        let mut a = GroupConsumer::new(
            client.clone(),
            "g",
            "a",
            sub.clone(),
            ConsumerSettings::default(),
        );
        let first = a.poll(Duration::from_millis(500)).unwrap();
        assert_eq!(first.assigned.len(), 3);
        let mut seen = first.records.len();
        let client_b = client.clone();
        let b_thread = std::thread::spawn(move || {
            let mut b = GroupConsumer::new(
                client_b,
                "g",
                "b",
                sub,
                ConsumerSettings {
                    heartbeat_interval: Duration::from_millis(50),
                    ..ConsumerSettings::default()
                },
            );
            let mut got = b.poll(Duration::from_millis(200)).unwrap();
            while got.assigned.is_empty() {
                got = b.poll(Duration::from_millis(200)).unwrap();
            }
            let assigned = got.assigned.clone();
            b.close();
            assigned
        });
        // a keeps polling so that it rejoins when b joins.
        // First the revocation alone (so a.commits while its generation is valid),
        // then, on a later poll, the new assignment.
        let mut rejoined = None;
        let mut revoked = false;
        for _ in 0..200 {
            let r = a.poll(Duration::from_millis(50)).unwrap();
            seen += r.records.len();
            if !r.revoked.is_empty() {
                assert!(r.assigned.is_empty() && r.records.is_empty());
                revoked = true;
            } else if revoked && !r.assigned.is_empty() {
                rejoined = Some(r.assigned);
                break;
            }
        }
        let b_assigned = b_thread.join().unwrap();
        let a_assigned = rejoined.expect("a rejoined");
        assert_eq!(
            a_assigned.len() + b_assigned.len(),
            3,
            "{a_assigned:?} {b_assigned:?}"
        );
        // Nothing was committed, so after the rebalance a reads its partitions again.
        assert!(seen >= 30, "{seen}");
        let commit: BTreeMap<_, _> = a_assigned.iter().map(|tp| (tp.clone(), 1)).collect();
        a.commit(&commit).unwrap();
        assert_eq!(client.committed_offsets("g", &a_assigned).unwrap(), commit);
        a.close();
    })
    .await
    .unwrap();
    running.stop().await.unwrap();
}

/// A fetch holds more than `max.poll.records`: the rest is returned by the next polls,
/// in order, without reading it again; a seek drops what was buffered for its partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_return_a_fetch_in_max_poll_records_slices() {
    let dir = tempfile::tempdir().unwrap();
    let running = broker(dir.path()).await;
    let client = Client::embedded(running.broker.clone(), tokio::runtime::Handle::current());
    tokio::task::spawn_blocking(move || {
        client.ensure_topic("s", Some(1), BTreeMap::new()).unwrap();
        let records: Vec<_> = (0..100)
            .map(|i| record("s", None, &format!("v{i}")))
            .collect();
        client.send(&records, &ProducerSettings::default()).unwrap();
        let mut c = GroupConsumer::new(
            client.clone(),
            "slices",
            "c",
            Subscription::Topics(vec!["s".into()]),
            ConsumerSettings {
                max_poll_records: 20,
                ..ConsumerSettings::default()
            },
        );
        let tp: consumer::TopicPartition = ("s".into(), 0);
        let mut offsets = Vec::new();
        for _ in 0..50 {
            let got = c.poll(Duration::from_millis(100)).unwrap();
            assert!(got.records.len() <= 20, "{}", got.records.len());
            offsets.extend(got.records.iter().map(|r| r.offset));
            if offsets.len() == 40 {
                // Mid-buffer: the position is the next record to return, and a seek
                // goes where it says, not to the rest of the buffer.
                assert_eq!(c.positions()[&tp], 40);
                c.seek(tp.clone(), 90);
            }
            if offsets.len() >= 50 {
                break;
            }
        }
        let expected: Vec<i64> = (0..40).chain(90..100).collect();
        assert_eq!(offsets, expected);
        assert_eq!(c.positions()[&tp], 100);
        c.close();
    })
    .await
    .unwrap();
    running.stop().await.unwrap();
}
