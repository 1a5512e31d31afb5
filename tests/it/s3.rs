//! The S3 sink plugin (connectors/s3) in the real worker, against a real S3-compatible
//! endpoint (moto's server, started by scripts/services/s3.sh), over HTTP through
//! aws-sdk-s3: each format, each partitioner, rotation by size and by time, multipart
//! uploads, offsets committed only after their objects are uploaded, a clear failure
//! for a missing bucket, throttling retried and access denied failing the task (through a
//! fault-injecting proxy in front of the endpoint), and a SIGKILL of the standalone worker mid-run after which the
//! bucket holds every record exactly once.
//!
//! Objects are read back with the endpoint venv's boto3 and pyarrow (tests/s3/bucket.py),
//! so the main crate does not build aws-sdk-s3 for its tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value as Json, json};
use tributary::broker::server::{BrokerSettings, RunningBroker};
use tributary::client::{Client, ProducerRecord, ProducerSettings};
use tributary::plugin::{PluginLoader, SharedRegistry};
use tributary::worker::store::{Props, State, TargetState};
use tributary::worker::{Herder, WorkerConfig};

const WAIT: Duration = Duration::from_secs(60);

struct Endpoint {
    url: String,
    python: PathBuf,
}

/// The endpoint scripts/services/s3.sh started; without it the test fails, naming it.
fn endpoint() -> &'static Endpoint {
    static E: OnceLock<Endpoint> = OnceLock::new();
    E.get_or_init(|| {
        let (Ok(url), Ok(python)) = (
            std::env::var("TRIBUTARY_TEST_S3_URL"),
            std::env::var("TRIBUTARY_TEST_S3_PYTHON"),
        ) else {
            panic!(
                "TRIBUTARY_TEST_S3_URL / TRIBUTARY_TEST_S3_PYTHON are not set: run the tests with \
                 ./scripts/test, or first `. scripts/services/s3.sh` (with `quiet() {{ \"$@\"; }}`)"
            );
        };
        Endpoint {
            url,
            python: PathBuf::from(python),
        }
    })
}

/// Run tests/s3/bucket.py; its standard output.
fn bucket_py(args: &[&str]) -> String {
    let e = endpoint();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3/bucket.py");
    let out = Command::new(&e.python)
        .arg(script)
        .arg(&e.url)
        .args(args)
        .output()
        .expect("running the endpoint's python");
    assert!(
        out.status.success(),
        "bucket.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A fresh bucket with a name unique to this run.
fn new_bucket(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let bucket = format!("{name}-{}-{}", std::process::id(), nanos % 1_000_000_000);
    bucket_py(&["create", &bucket]);
    bucket
}

/// How many objects the bucket holds (up to 1000), by one unsigned path-style GET: cheap
/// enough to poll every few ms (moto does not check signatures).
fn count_objects(bucket: &str) -> usize {
    use std::io::{Read, Write};
    let host = endpoint()
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(host).expect("connecting to the S3 endpoint");
    write!(
        s,
        "GET /{bucket}?list-type=2 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "listing {bucket}: {out}");
    out.matches("<Key>").count()
}

fn list(bucket: &str) -> Vec<String> {
    serde_json::from_str(&bucket_py(&["list", bucket])).unwrap()
}

/// Every object: key → {etag, size, records}.
fn dump(bucket: &str) -> BTreeMap<String, Json> {
    serde_json::from_str(&bucket_py(&["dump", bucket])).unwrap()
}

fn records(objects: &BTreeMap<String, Json>, key: &str) -> Json {
    objects
        .get(key)
        .unwrap_or_else(|| panic!("no object {key}; have {:?}", objects.keys()))["records"]
        .clone()
}

/// The S3 plugin library: the one cargo built beside this test binary when it is newer
/// than the crate's sources (`cargo test --workspace` builds it), or else built once into
/// a target directory of its own (a nested cargo must not wait on the running build's
/// lock).
fn s3_plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("connectors/s3");
        let newest_source = std::fs::read_dir(crate_dir.join("src"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .chain([crate_dir.join("Cargo.toml")])
            .map(|p| std::fs::metadata(p).unwrap().modified().unwrap())
            .max()
            .unwrap();
        // Cargo leaves the library in deps/ when a test build compiles it for the
        // crate's example without copying it up.
        let debug = exe.ancestors().nth(2).unwrap();
        let built = [debug.join("deps"), debug.to_path_buf()]
            .map(|d| d.join("libtributary_connector_s3.so"))
            .into_iter()
            .filter_map(|p| Some((std::fs::metadata(&p).and_then(|m| m.modified()).ok()?, p)))
            .max();
        let lib = if let Some((_, lib)) = built.filter(|(t, _)| *t >= newest_source) {
            lib
        } else {
            let target = exe
                .ancestors()
                .nth(3)
                .unwrap()
                .join("plugin-tests")
                .join("target");
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
            let out = Command::new(env!("CARGO"))
                .args(["build", "--quiet", "-p", "tributary-connector-s3", "--lib"])
                .arg("--manifest-path")
                .arg(&manifest)
                .arg("--target-dir")
                .arg(&target)
                .output()
                .expect("running cargo");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            target.join("debug/libtributary_connector_s3.so")
        };
        assert!(lib.is_file(), "{}", lib.display());
        let dir = exe
            .ancestors()
            .nth(3)
            .unwrap()
            .join("plugin-tests/s3-plugin");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&lib, dir.join("libtributary_connector_s3.so")).unwrap();
        dir
    })
}

fn props(pairs: &[(&str, &str)]) -> Props {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The integrated broker and a herder with the S3 plugin, in-process.
struct World {
    broker: Option<RunningBroker>,
    runtime: tokio::runtime::Runtime,
    plugins: SharedRegistry,
    _tmp: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let loader = PluginLoader::new(tmp.path().join("plugin-cache"));
        let plugins = SharedRegistry::new(loader.scan(&[s3_plugin_dir().to_path_buf()]));
        let mut settings = BrokerSettings::new(tmp.path().join("data"));
        settings.serve = false;
        settings.groups.initial_rebalance_delay = Duration::from_millis(100);
        let broker = Some(runtime.block_on(RunningBroker::start(settings)).unwrap());
        World {
            broker,
            runtime,
            plugins,
            _tmp: tmp,
        }
    }

    fn client(&self) -> Client {
        Client::embedded(
            self.broker.as_ref().unwrap().broker.clone(),
            self.runtime.handle().clone(),
        )
    }

    fn herder(&self) -> Herder {
        let p = props(&[
            (
                "key.converter",
                "org.apache.kafka.connect.storage.StringConverter",
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("offset.flush.interval.ms", "200"),
            ("task.shutdown.graceful.timeout.ms", "5000"),
            ("task.restart.enable", "false"),
        ]);
        let (config, _) = WorkerConfig::from_props(&p).unwrap();
        Herder::start(config, self.client(), self.plugins.clone()).unwrap()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(b) = self.broker.take() {
            let _ = self.runtime.block_on(b.stop());
        }
    }
}

/// An event: a struct value with a schema (JsonConverter's envelope), `ts` also the
/// record's timestamp.
fn event(topic: &str, partition: i32, id: i64, user: &str, ts: i64) -> ProducerRecord {
    let value = json!({
        "schema": {"type": "struct", "name": "test.Event", "optional": false, "fields": [
            {"field": "id", "type": "int64", "optional": false},
            {"field": "user", "type": "string", "optional": false},
            {"field": "ts", "type": "int64", "optional": false},
        ]},
        "payload": {"id": id, "user": user, "ts": ts},
    });
    ProducerRecord {
        topic: topic.into(),
        partition: Some(partition),
        value: Some(Bytes::from(value.to_string())),
        timestamp: Some(ts),
        ..ProducerRecord::default()
    }
}

/// What the JSON format writes for an event.
fn event_json(id: i64, user: &str, ts: i64) -> Json {
    json!({"id": id, "user": user, "ts": ts})
}

fn send(client: &Client, records: &[ProducerRecord]) {
    client.send(records, &ProducerSettings::default()).unwrap();
}

/// A sink config on `bucket` for `topics`, with `extra` keys.
fn sink(bucket: &str, topics: &str, extra: &[(&str, &str)]) -> Props {
    let mut p = props(&[
        ("connector.class", "S3SinkConnector"),
        ("topics", topics),
        ("s3.bucket.name", bucket),
        ("s3.region", "us-east-1"),
        ("store.url", &endpoint().url),
        ("aws.access.key.id", "test"),
        ("aws.secret.access.key", "test"),
        (
            "format.class",
            "io.confluent.connect.s3.format.json.JsonFormat",
        ),
    ]);
    p.extend(props(extra));
    p
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Wait until the bucket's keys are exactly `want`.
fn wait_for_keys(h: &Herder, name: &str, bucket: &str, want: &[&str]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let have = list(bucket);
        if have == want {
            return;
        }
        let status = h.status(name).unwrap();
        if let Some((_, t)) = status.tasks.iter().find(|(_, t)| t.state == State::Failed) {
            panic!("the task failed: {:?}", t.trace);
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {want:?} in {bucket}; have {have:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The sink's committed offsets: partition → next offset.
fn committed(h: &Herder, name: &str) -> BTreeMap<i64, i64> {
    h.offsets(name)
        .unwrap()
        .into_iter()
        .map(|(p, o)| {
            (
                p["kafka_partition"].as_i64().unwrap(),
                o["kafka_offset"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn json_default_partitioner_commits_only_uploaded_objects() {
    let w = World::new();
    let client = w.client();
    client.ensure_topic("ev", Some(2), BTreeMap::new()).unwrap();
    let batch = |from: i64, to: i64| -> Vec<ProducerRecord> {
        (from..to)
            .flat_map(|i| [event("ev", 0, i, "a", i), event("ev", 1, 1000 + i, "b", i)])
            .collect()
    };
    send(&client, &batch(0, 25));
    let bucket = new_bucket("json");
    let h = w.herder();
    h.create_connector(
        "s3",
        sink(&bucket, "ev", &[("flush.size", "10")]),
        TargetState::Started,
    )
    .unwrap();
    let keys = |n: i64| -> Vec<String> {
        let mut k: Vec<String> = (0..n)
            .flat_map(|i| {
                [0, 1].map(|p| format!("topics/ev/partition={p}/ev+{p}+{:010}.json", i * 10))
            })
            .collect();
        k.sort();
        k
    };
    let want = keys(2);
    wait_for_keys(
        &h,
        "s3",
        &bucket,
        &want.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let objects = dump(&bucket);
    for (p, base) in [(0, 0), (1, 1000)] {
        for start in [0, 10] {
            let key = format!("topics/ev/partition={p}/ev+{p}+{start:010}.json");
            let want: Vec<Json> = (start..start + 10)
                .map(|i| event_json(base + i, if p == 0 { "a" } else { "b" }, i))
                .collect();
            assert_eq!(records(&objects, &key), Json::Array(want), "{key}");
        }
    }
    // Offsets: only what is uploaded (20), not the 5 records of the open objects.
    wait_until("offsets 20 committed", || {
        committed(&h, "s3") == BTreeMap::from([(0, 20), (1, 20)])
    });
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(committed(&h, "s3"), BTreeMap::from([(0, 20), (1, 20)]));

    // Five more each: the objects at 20 fill and are uploaded; then three more, and the
    // task restarts: the open objects are dropped, the task resumes at the committed 30,
    // and the next object starts there again with the same records.
    send(&client, &batch(25, 30));
    let want = keys(3);
    wait_for_keys(
        &h,
        "s3",
        &bucket,
        &want.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    wait_until("offsets 30 committed", || {
        committed(&h, "s3") == BTreeMap::from([(0, 30), (1, 30)])
    });
    send(&client, &batch(30, 33));
    std::thread::sleep(Duration::from_millis(500));
    h.restart_task("s3", 0).unwrap();
    send(&client, &batch(33, 40));
    let want = keys(4);
    wait_for_keys(
        &h,
        "s3",
        &bucket,
        &want.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let objects = dump(&bucket);
    let want: Vec<Json> = (30..40).map(|i| event_json(i, "a", i)).collect();
    assert_eq!(
        records(&objects, "topics/ev/partition=0/ev+0+0000000030.json"),
        Json::Array(want)
    );
    h.shutdown();
}

#[test]
fn bytes_gzip_parquet_and_json_gzip_formats() {
    let w = World::new();
    let client = w.client();
    client
        .ensure_topic("fmt", Some(1), BTreeMap::new())
        .unwrap();
    let events: Vec<ProducerRecord> = (0..6).map(|i| event("fmt", 0, i, "u", 100 + i)).collect();
    send(&client, &events);
    let h = w.herder();

    let bytes_bucket = new_bucket("bytes");
    h.create_connector(
        "bytes",
        sink(
            &bytes_bucket,
            "fmt",
            &[
                ("flush.size", "3"),
                (
                    "format.class",
                    "io.confluent.connect.s3.format.bytearray.ByteArrayFormat",
                ),
                (
                    "value.converter",
                    "org.apache.kafka.connect.converters.ByteArrayConverter",
                ),
                ("format.bytearray.separator", "|"),
                ("s3.compression.type", "gzip"),
                ("topics.dir", "raw"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    let parquet_bucket = new_bucket("parquet");
    h.create_connector(
        "parquet",
        sink(
            &parquet_bucket,
            "fmt",
            &[
                ("flush.size", "3"),
                (
                    "format.class",
                    "io.confluent.connect.s3.format.parquet.ParquetFormat",
                ),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    let gz_bucket = new_bucket("jsongz");
    h.create_connector(
        "jsongz",
        sink(
            &gz_bucket,
            "fmt",
            &[("flush.size", "3"), ("s3.compression.type", "gzip")],
        ),
        TargetState::Started,
    )
    .unwrap();

    wait_for_keys(
        &h,
        "bytes",
        &bytes_bucket,
        &[
            "raw/fmt/partition=0/fmt+0+0000000000.bin.gz",
            "raw/fmt/partition=0/fmt+0+0000000003.bin.gz",
        ],
    );
    let objects = dump(&bytes_bucket);
    let b64 = records(&objects, "raw/fmt/partition=0/fmt+0+0000000003.bin.gz");
    let mut want = Vec::new();
    for e in &events[3..] {
        want.extend_from_slice(e.value.as_ref().unwrap());
        want.push(b'|');
    }
    assert_eq!(base64_decode(b64.as_str().unwrap()), want);

    wait_for_keys(
        &h,
        "parquet",
        &parquet_bucket,
        &[
            "topics/fmt/partition=0/fmt+0+0000000000.snappy.parquet",
            "topics/fmt/partition=0/fmt+0+0000000003.snappy.parquet",
        ],
    );
    let objects = dump(&parquet_bucket);
    assert_eq!(
        records(
            &objects,
            "topics/fmt/partition=0/fmt+0+0000000000.snappy.parquet"
        ),
        json!([
            event_json(0, "u", 100),
            event_json(1, "u", 101),
            event_json(2, "u", 102)
        ])
    );

    wait_for_keys(
        &h,
        "jsongz",
        &gz_bucket,
        &[
            "topics/fmt/partition=0/fmt+0+0000000000.json.gz",
            "topics/fmt/partition=0/fmt+0+0000000003.json.gz",
        ],
    );
    let objects = dump(&gz_bucket);
    assert_eq!(
        records(&objects, "topics/fmt/partition=0/fmt+0+0000000003.json.gz"),
        json!([
            event_json(3, "u", 103),
            event_json(4, "u", 104),
            event_json(5, "u", 105)
        ])
    );
    h.shutdown();
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            _ => 63,
        }
    };
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let data: Vec<u8> = chunk.iter().copied().filter(|&c| c != b'=').collect();
        let mut n = 0u32;
        for (i, &c) in data.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..data.len().saturating_sub(1)]);
    }
    out
}

const HOUR: i64 = 3_600_000;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;

#[test]
fn field_and_time_based_partitioners() {
    let w = World::new();
    let client = w.client();
    client
        .ensure_topic("part", Some(1), BTreeMap::new())
        .unwrap();
    // Users a and b in turn; three records in hour 0, three in hour 1.
    let events: Vec<ProducerRecord> = (0..6)
        .map(|i| {
            let user = if i % 2 == 0 { "a" } else { "b" };
            event("part", 0, i, user, T0 + (i / 3) * HOUR + i * 1000)
        })
        .collect();
    send(&client, &events);
    let h = w.herder();

    let field_bucket = new_bucket("field");
    h.create_connector(
        "field",
        sink(
            &field_bucket,
            "part",
            &[
                ("flush.size", "6"),
                (
                    "partitioner.class",
                    "io.confluent.connect.storage.partitioner.FieldPartitioner",
                ),
                ("partition.field.name", "user"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    let time_bucket = new_bucket("time");
    h.create_connector(
        "time",
        sink(
            &time_bucket,
            "part",
            &[
                ("flush.size", "6"),
                (
                    "partitioner.class",
                    "io.confluent.connect.storage.partitioner.TimeBasedPartitioner",
                ),
                ("path.format", "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH"),
                ("partition.duration.ms", "3600000"),
                ("locale", "en-US"),
                ("timezone", "UTC"),
                ("timestamp.extractor", "RecordField"),
                ("timestamp.field", "ts"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    let record_bucket = new_bucket("hourly");
    h.create_connector(
        "hourly",
        sink(
            &record_bucket,
            "part",
            &[
                ("flush.size", "6"),
                ("partitioner.class", "HourlyPartitioner"),
                ("locale", "en-US"),
                ("timezone", "Asia/Tokyo"),
                ("timestamp.extractor", "Record"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();

    wait_for_keys(
        &h,
        "field",
        &field_bucket,
        &[
            "topics/part/user=a/part+0+0000000000.json",
            "topics/part/user=b/part+0+0000000001.json",
        ],
    );
    let objects = dump(&field_bucket);
    let ids = |key: &str| -> Vec<i64> {
        records(&objects, key)
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids("topics/part/user=a/part+0+0000000000.json"), [0, 2, 4]);
    assert_eq!(ids("topics/part/user=b/part+0+0000000001.json"), [1, 3, 5]);

    wait_for_keys(
        &h,
        "time",
        &time_bucket,
        &[
            "topics/part/year=2026/month=01/day=01/hour=00/part+0+0000000000.json",
            "topics/part/year=2026/month=01/day=01/hour=01/part+0+0000000003.json",
        ],
    );
    // Kafka timestamps, in Tokyo's time (UTC+9).
    wait_for_keys(
        &h,
        "hourly",
        &record_bucket,
        &[
            "topics/part/year=2026/month=01/day=01/hour=09/part+0+0000000000.json",
            "topics/part/year=2026/month=01/day=01/hour=10/part+0+0000000003.json",
        ],
    );
    h.shutdown();
}

#[test]
fn rotation_by_record_time_and_by_schedule() {
    let w = World::new();
    let client = w.client();
    client
        .ensure_topic("rot", Some(1), BTreeMap::new())
        .unwrap();
    let h = w.herder();

    // rotate.interval.ms on record time: a set spans less than a minute of it.
    let seconds = [0, 10, 70, 80, 130];
    let events: Vec<ProducerRecord> = seconds
        .iter()
        .enumerate()
        .map(|(i, s)| event("rot", 0, i as i64, "u", T0 + s * 1000))
        .collect();
    send(&client, &events);
    let interval_bucket = new_bucket("interval");
    h.create_connector(
        "interval",
        sink(
            &interval_bucket,
            "rot",
            &[
                ("flush.size", "1000"),
                ("rotate.interval.ms", "60000"),
                ("partitioner.class", "DailyPartitioner"),
                ("locale", "en-US"),
                ("timezone", "UTC"),
                ("timestamp.extractor", "Record"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    wait_for_keys(
        &h,
        "interval",
        &interval_bucket,
        &[
            "topics/rot/year=2026/month=01/day=01/rot+0+0000000000.json",
            "topics/rot/year=2026/month=01/day=01/rot+0+0000000002.json",
        ],
    );
    let objects = dump(&interval_bucket);
    assert_eq!(
        records(
            &objects,
            "topics/rot/year=2026/month=01/day=01/rot+0+0000000002.json"
        ),
        json!([
            event_json(2, "u", T0 + 70_000),
            event_json(3, "u", T0 + 80_000)
        ])
    );
    wait_until("offset 4 committed", || {
        committed(&h, "interval") == BTreeMap::from([(0, 4)])
    });

    // rotate.schedule.interval.ms: far from flush.size, the open objects still go up.
    let schedule_bucket = new_bucket("schedule");
    h.create_connector(
        "schedule",
        sink(
            &schedule_bucket,
            "rot",
            &[
                ("flush.size", "1000"),
                ("rotate.schedule.interval.ms", "1000"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    wait_for_keys(
        &h,
        "schedule",
        &schedule_bucket,
        &["topics/rot/partition=0/rot+0+0000000000.json"],
    );
    let objects = dump(&schedule_bucket);
    assert_eq!(
        records(&objects, "topics/rot/partition=0/rot+0+0000000000.json")
            .as_array()
            .unwrap()
            .len(),
        5
    );
    wait_until("offset 5 committed", || {
        committed(&h, "schedule") == BTreeMap::from([(0, 5)])
    });
    h.shutdown();
}

#[test]
fn large_objects_go_up_in_multipart_uploads() {
    let w = World::new();
    let client = w.client();
    client
        .ensure_topic("big", Some(1), BTreeMap::new())
        .unwrap();
    // 60 records of 200 KiB: a 12 MiB object in parts of 5 MiB.
    let records: Vec<ProducerRecord> = (0..60u8)
        .map(|i| ProducerRecord {
            topic: "big".into(),
            partition: Some(0),
            value: Some(Bytes::from(vec![b'a' + i % 26; 200 * 1024])),
            ..ProducerRecord::default()
        })
        .collect();
    for chunk in records.chunks(5) {
        send(&client, chunk);
    }
    let bucket = new_bucket("multipart");
    let h = w.herder();
    h.create_connector(
        "big",
        sink(
            &bucket,
            "big",
            &[
                ("flush.size", "60"),
                (
                    "format.class",
                    "io.confluent.connect.s3.format.bytearray.ByteArrayFormat",
                ),
                (
                    "value.converter",
                    "org.apache.kafka.connect.converters.ByteArrayConverter",
                ),
                ("format.bytearray.separator", ""),
                ("s3.part.size", "5242880"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    let key = "topics/big/partition=0/big+0+0000000000.bin";
    wait_for_keys(&h, "big", &bucket, &[key]);
    let objects = dump(&bucket);
    let o = &objects[key];
    assert_eq!(o["size"], json!(60 * 200 * 1024));
    // A multipart object's ETag ends in the number of its parts.
    assert!(o["etag"].as_str().unwrap().ends_with("-3"), "{}", o["etag"]);
    let body = base64_decode(o["records"].as_str().unwrap());
    let want: Vec<u8> = records
        .iter()
        .flat_map(|r| r.value.as_ref().unwrap().to_vec())
        .collect();
    assert!(body == want, "the object's bytes differ from the records'");
    h.shutdown();
}

#[test]
fn a_missing_bucket_fails_the_task_naming_it() {
    let w = World::new();
    let h = w.herder();
    h.create_connector(
        "nobucket",
        sink("no-such-bucket-here", "t", &[("flush.size", "1")]),
        TargetState::Started,
    )
    .unwrap();
    wait_until("the task failed", || {
        h.status("nobucket")
            .is_ok_and(|s| s.tasks.iter().any(|(_, t)| t.state == State::Failed))
    });
    let status = h.status("nobucket").unwrap();
    let trace = status.tasks[0].1.trace.clone().unwrap_or_default();
    assert!(
        trace.contains("no-such-bucket-here") && trace.contains("does not exist"),
        "{trace}"
    );
    h.shutdown();
}

/// The standalone binary with the S3 sink, killed with SIGKILL mid-run and restarted:
/// the bucket ends with every record exactly once (the objects tile each partition's
/// offsets with no gap and no overlap, and hold exactly the records produced).
#[test]
fn sigkill_mid_run_leaves_every_record_exactly_once() {
    const PER_PARTITION: i64 = 10_000;
    const FLUSH: i64 = 50;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The topic, written before the worker starts (so no source replays into it).
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut settings = BrokerSettings::new(dir.join("data"));
        settings.serve = false;
        let broker = runtime.block_on(RunningBroker::start(settings)).unwrap();
        let client = Client::embedded(broker.broker.clone(), runtime.handle().clone());
        client
            .ensure_topic("kill", Some(2), BTreeMap::new())
            .unwrap();
        for chunk in (0..PER_PARTITION).collect::<Vec<_>>().chunks(1000) {
            let batch: Vec<ProducerRecord> = chunk
                .iter()
                .flat_map(|&i| {
                    [0, 1].map(|p| event("kill", p, p as i64 * 1_000_000 + i, "k", T0 + i))
                })
                .collect();
            send(&client, &batch);
        }
        runtime.block_on(broker.stop()).unwrap();
    }
    let bucket = new_bucket("sigkill");
    std::fs::write(
        dir.join("worker.properties"),
        format!(
            "broker.data.dir={}\nbroker.listener=none\nplugin.path={}\n\
             key.converter=org.apache.kafka.connect.storage.StringConverter\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n\
             offset.flush.interval.ms=300\nlisteners=http://127.0.0.1:0\n",
            dir.join("data").display(),
            s3_plugin_dir().display()
        ),
    )
    .unwrap();
    let mut config = sink(&bucket, "kill", &[("flush.size", &FLUSH.to_string())]);
    config.insert("tasks.max".into(), "2".into());
    std::fs::write(
        dir.join("sink.json"),
        json!({"name": "s3", "config": config}).to_string(),
    )
    .unwrap();
    let start = || -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("worker.log"))
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("standalone")
            .arg(dir.join("worker.properties"))
            .arg(dir.join("sink.json"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn tributary standalone")
    };
    let log = || {
        let text = std::fs::read(dir.join("worker.log")).unwrap_or_default();
        let from = text.len().saturating_sub(6000);
        String::from_utf8_lossy(&text[from..]).into_owned()
    };
    let total = (2 * PER_PARTITION / FLUSH) as usize;
    let wait_objects = |child: &mut Child, n: usize| -> usize {
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            let have = count_objects(&bucket);
            if have >= n {
                return have;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the worker exited with {status}; its log:\n{}", log());
            }
            assert!(
                Instant::now() < deadline,
                "only {have} of {n} objects; log:\n{}",
                log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };

    let mut child = start();
    let seen = wait_objects(&mut child, total / 20);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        seen < total,
        "the run finished before the kill ({seen} objects)"
    );
    let mut child = start();
    wait_objects(&mut child, total);
    // Give a late duplicate the chance to show before checking there is none.
    std::thread::sleep(Duration::from_millis(1500));
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: our own unreaped child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "exit {status} after SIGTERM; log:\n{}",
        log()
    );

    let mut want: Vec<String> = (0..PER_PARTITION / FLUSH)
        .flat_map(|i| {
            [0, 1].map(|p| format!("topics/kill/partition={p}/kill+{p}+{:010}.json", i * FLUSH))
        })
        .collect();
    want.sort();
    let objects = dump(&bucket);
    assert_eq!(objects.keys().cloned().collect::<Vec<_>>(), want);
    let mut seen_ids = std::collections::BTreeSet::new();
    for (key, o) in &objects {
        let (p, start) = key
            .rsplit('/')
            .next()
            .and_then(|f| f.strip_suffix(".json"))
            .and_then(|f| {
                let mut parts = f.split('+').skip(1);
                Some((
                    parts.next()?.parse::<i64>().ok()?,
                    parts.next()?.parse::<i64>().ok()?,
                ))
            })
            .unwrap();
        let want: Vec<Json> = (start..start + FLUSH)
            .map(|i| event_json(p * 1_000_000 + i, "k", T0 + i))
            .collect();
        assert_eq!(o["records"], Json::Array(want), "{key}");
        for i in start..start + FLUSH {
            assert!(seen_ids.insert((p, i)), "record {p}/{i} twice");
        }
    }
    assert_eq!(seen_ids.len() as i64, 2 * PER_PARTITION);
}

/// An HTTP proxy in front of the endpoint that answers some requests itself, as S3 does
/// under load or without permission: the first `throttle` object uploads get `503
/// SlowDown`, or with `deny` every request gets `403 AccessDenied`; everything else is
/// forwarded unchanged (headers and body) and the endpoint's answer returned.
struct FaultProxy {
    url: String,
    injected: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl FaultProxy {
    fn start(throttle: usize, deny: bool) -> FaultProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let upstream = endpoint()
            .url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let injected = Arc::new(AtomicUsize::new(0));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = injected.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let count = count.clone();
            let upstream = upstream.clone();
            async move { proxy(req, &upstream, &count, throttle, deny).await }
        });
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FaultProxy {
            url,
            injected,
            _runtime: runtime,
        }
    }

    fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }
}

fn s3_error(status: u16, code: &str, message: &str) -> axum::response::Response {
    axum::response::Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(axum::body::Body::from(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
        )))
        .unwrap()
}

async fn proxy(
    req: axum::extract::Request,
    upstream: &str,
    injected: &AtomicUsize,
    throttle: usize,
    deny: bool,
) -> axum::response::Response {
    use http_body_util::BodyExt;
    if deny {
        injected.fetch_add(1, Ordering::SeqCst);
        return s3_error(403, "AccessDenied", "Access Denied");
    }
    let query = req.uri().query().unwrap_or("");
    // PUT /bucket/key, not a part of a multipart upload.
    let upload = req.method() == axum::http::Method::PUT
        && req.uri().path().trim_matches('/').contains('/')
        && !query.contains("partNumber");
    if upload
        && injected
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < throttle).then_some(n + 1)
            })
            .is_ok()
    {
        return s3_error(503, "SlowDown", "Please reduce your request rate.");
    }
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let stream = tokio::net::TcpStream::connect(upstream).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut forwarded = axum::http::Request::builder()
        .method(parts.method)
        .uri(parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    for (name, value) in &parts.headers {
        forwarded = forwarded.header(name, value);
    }
    let answer = sender
        .send_request(forwarded.body(http_body_util::Full::new(body)).unwrap())
        .await
        .unwrap();
    let (parts, body) = answer.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    axum::response::Response::from_parts(parts, axum::body::Body::from(body))
}

/// S3 throttling (503 SlowDown) is retried with backoff until the objects land; access
/// denied fails the task with a trace that says what to check.
#[test]
fn throttling_is_retried_and_access_denied_fails_the_task() {
    let w = World::new();
    let client = w.client();
    client
        .ensure_topic("thr", Some(1), BTreeMap::new())
        .unwrap();
    send(
        &client,
        &(0..3)
            .map(|i| event("thr", 0, i, "a", T0 + i))
            .collect::<Vec<_>>(),
    );
    let h = w.herder();
    let throttling = FaultProxy::start(3, false);
    let bucket = new_bucket("throttled");
    let mut config = sink(
        &bucket,
        "thr",
        &[("flush.size", "1"), ("s3.retry.backoff.ms", "20")],
    );
    config.insert("store.url".into(), throttling.url.clone());
    h.create_connector("throttled", config, TargetState::Started)
        .unwrap();
    let want: Vec<String> = (0..3)
        .map(|i| format!("topics/thr/partition=0/thr+0+{i:010}.json"))
        .collect();
    wait_for_keys(
        &h,
        "throttled",
        &bucket,
        &want.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(
        throttling.injected(),
        3,
        "every throttled upload was retried"
    );
    let status = h.status("throttled").unwrap();
    assert!(
        status.tasks.iter().all(|(_, t)| t.state == State::Running),
        "{status:?}"
    );

    let denying = FaultProxy::start(0, true);
    let mut config = sink(&bucket, "thr", &[("flush.size", "1")]);
    config.insert("store.url".into(), denying.url.clone());
    h.create_connector("denied", config, TargetState::Started)
        .unwrap();
    wait_until("the denied task failed", || {
        h.status("denied")
            .is_ok_and(|s| s.tasks.iter().any(|(_, t)| t.state == State::Failed))
    });
    let trace = h.status("denied").unwrap().tasks[0]
        .1
        .trace
        .clone()
        .unwrap_or_default();
    assert!(
        trace.contains(&bucket) && trace.contains("denied") && trace.contains("aws.access.key.id"),
        "{trace}"
    );
    assert!(denying.injected() > 0);
    h.shutdown();
}
