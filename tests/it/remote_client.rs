//! The remote Kafka client (`tributary::client::remote`) against the real
//! `tributary broker` binary over TCP, cross-checked with kcat (librdkafka): what the
//! client produces kcat reads, what kcat produces the client reads, and the client
//! carries on when the broker is SIGKILLed and started again on the same address.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use tributary::client::remote::{RemoteClient, RemoteConfig};
use tributary::client::{ProducerRecord, ProducerSettings};
use tributary::log::OffsetSpec;
use tributary::log::compression::Compression;

use crate::support::{BrokerProcess, run_bounded};

const FAST_GROUPS: &str = "group.initial.rebalance.delay.ms=0";

fn client(bootstrap: &str) -> RemoteClient {
    let mut config = RemoteConfig::new(bootstrap).expect("a valid bootstrap address");
    config.operation_timeout = Duration::from_secs(30);
    RemoteClient::connect(config).expect("connect to the broker")
}

fn record(topic: &str, key: &str, value: &str) -> ProducerRecord {
    ProducerRecord {
        topic: topic.into(),
        key: Some(Bytes::copy_from_slice(key.as_bytes())),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        ..ProducerRecord::default()
    }
}

/// (partition, offset, key, value) of every record of `topic`, read with `client`.
fn read_topic(client: &RemoteClient, topic: &str) -> BTreeSet<(i32, i64, String, String)> {
    let mut out = BTreeSet::new();
    let n = client
        .try_partition_count(topic)
        .expect("metadata")
        .expect("the topic exists");
    for p in 0..n {
        let end = client
            .list_offset(topic, p, OffsetSpec::Latest)
            .expect("end offset");
        let mut next = client
            .list_offset(topic, p, OffsetSpec::Earliest)
            .expect("start offset");
        while next < end {
            let f = client.fetch(topic, p, next, 64 << 10).expect("fetch");
            assert!(f.next_offset > next, "no progress at {topic}-{p}@{next}");
            for r in f.records {
                let text =
                    |b: Option<Bytes>| String::from_utf8_lossy(&b.unwrap_or_default()).into_owned();
                out.insert((p, r.offset, text(r.key), text(r.value)));
            }
            next = f.next_offset;
        }
    }
    out
}

fn kcat_consume(bootstrap: &str, topic: &str) -> BTreeSet<(i32, i64, String, String)> {
    let out = run_bounded(
        Command::new("kcat").args([
            "-b",
            bootstrap,
            "-C",
            "-t",
            topic,
            "-e",
            "-q",
            "-f",
            "%p|%o|%k|%s\n",
        ]),
        None,
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "kcat -C failed: {}", out.stderr);
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, '|').collect();
            assert_eq!(f.len(), 4, "kcat printed {l:?}");
            (
                f[0].parse().expect("partition"),
                f[1].parse().expect("offset"),
                f[2].to_owned(),
                f[3].to_owned(),
            )
        })
        .collect()
}

#[test]
fn remote_client_and_kcat_read_each_others_records_across_a_broker_kill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let broker = BrokerProcess::start(&data, &[FAST_GROUPS]);
    let bootstrap = broker.bootstrap.clone();
    let client = client(&bootstrap);

    let configs: BTreeMap<String, String> = [("retention.ms".to_owned(), "86400000".to_owned())]
        .into_iter()
        .collect();
    assert_eq!(
        client
            .create_topic("remote", Some(2), Some(1), &configs)
            .expect("create"),
        (2, true)
    );
    assert_eq!(client.topic_overrides("remote").expect("describe"), configs);

    // Three rounds, one per codec the log supports besides gzip (the unit tests use it).
    let mut produced = BTreeSet::new();
    for (round, codec) in [Compression::Lz4, Compression::Zstd, Compression::Snappy]
        .into_iter()
        .enumerate()
    {
        let records: Vec<ProducerRecord> = (0..100)
            .map(|i| record("remote", &format!("k{}", i % 9), &format!("v{round}-{i}")))
            .collect();
        let settings = ProducerSettings {
            compression: codec,
            batch_size: 1024,
        };
        let pos = client.send(&records, &settings).expect("send");
        for (r, p) in records.iter().zip(pos) {
            produced.insert((
                p.partition,
                p.offset,
                String::from_utf8_lossy(r.key.as_ref().unwrap()).into_owned(),
                String::from_utf8_lossy(r.value.as_ref().unwrap()).into_owned(),
            ));
        }
    }
    assert_eq!(produced.len(), 300);
    assert_eq!(read_topic(&client, "remote"), produced);
    assert_eq!(
        kcat_consume(&bootstrap, "remote"),
        produced,
        "kcat reads what the client wrote"
    );

    // kcat writes, the client reads.
    let lines: String = (0..50).map(|i| format!("kk{i}:from-kcat-{i}\n")).collect();
    let out = run_bounded(
        Command::new("kcat").args(["-b", &bootstrap, "-P", "-t", "from-kcat", "-K:", "-p", "0"]),
        Some(lines.into_bytes()),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "kcat -P failed: {}", out.stderr);
    let read: Vec<(String, String)> = read_topic(&client, "from-kcat")
        .into_iter()
        .map(|(_, _, k, v)| (k, v))
        .collect();
    let mut want: Vec<(String, String)> = (0..50)
        .map(|i| (format!("kk{i}"), format!("from-kcat-{i}")))
        .collect();
    want.sort();
    let mut got = read.clone();
    got.sort();
    assert_eq!(got, want);

    // SIGKILL the broker; a send started while it is down completes once it is back on
    // the same address, and nothing is lost or written twice.
    broker.kill();
    let sender = client.clone();
    let sending = std::thread::spawn(move || {
        let records: Vec<ProducerRecord> = (0..40)
            .map(|i| record("remote", &format!("k{}", i % 9), &format!("after-{i}")))
            .collect();
        sender.send(&records, &ProducerSettings::default())
    });
    std::thread::sleep(Duration::from_millis(500));
    let broker = BrokerProcess::try_start_on(&data, &bootstrap, &[FAST_GROUPS])
        .unwrap_or_else(|e| panic!("restart on {bootstrap}: {e}"));
    let pos = sending.join().expect("sender thread").unwrap_or_else(|e| {
        panic!(
            "send across the restart: {e}\n--- broker log:\n{}",
            broker.log_tail()
        )
    });
    assert_eq!(pos.len(), 40);
    let all = read_topic(&client, "remote");
    assert_eq!(all.len(), 340, "every record once");
    let values: BTreeSet<&String> = all.iter().map(|r| &r.3).collect();
    assert_eq!(values.len(), 340, "no value twice");
    assert!(produced.is_subset(&all));
    assert_eq!(kcat_consume(&bootstrap, "remote"), all);
    broker.terminate();
}
