//! The herder in-process, with the real file connector plugin and the integrated broker:
//! each state transition, error tolerance with a dead letter queue and its context
//! headers, and a worker restart that finds every connector in its target state and
//! resumes the source from its committed offset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tributary::broker::server::{BrokerSettings, RunningBroker};
use tributary::client::{Client, ProducerRecord, ProducerSettings};
use tributary::plugin::{PluginLoader, SharedRegistry};
use tributary::worker::store::{Props, State, TargetState};
use tributary::worker::{Herder, WorkerConfig};

use super::standalone::file_plugin_dir;

const WAIT: Duration = Duration::from_secs(30);

fn props(pairs: &[(&str, &str)]) -> Props {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

struct World {
    dir: PathBuf,
    broker: Option<RunningBroker>,
    runtime: tokio::runtime::Runtime,
    plugins: SharedRegistry,
}

impl World {
    fn new(dir: &Path) -> World {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let loader = PluginLoader::new(dir.join("plugin-cache"));
        let plugins = SharedRegistry::new(loader.scan(&[file_plugin_dir().to_path_buf()]));
        let mut w = World {
            dir: dir.to_path_buf(),
            broker: None,
            runtime,
            plugins,
        };
        w.start_broker();
        w
    }

    fn start_broker(&mut self) {
        let mut settings = BrokerSettings::new(self.dir.join("data"));
        settings.serve = false;
        settings.groups.initial_rebalance_delay = Duration::from_millis(100);
        self.broker = Some(
            self.runtime
                .block_on(RunningBroker::start(settings))
                .unwrap(),
        );
    }

    fn client(&self) -> Client {
        Client::embedded(
            self.broker.as_ref().unwrap().broker.clone(),
            self.runtime.handle().clone(),
        )
    }

    fn herder(&self, extra: &[(&str, &str)]) -> Herder {
        let mut p: BTreeMap<String, String> = props(&[
            (
                "key.converter",
                "org.apache.kafka.connect.storage.StringConverter",
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.storage.StringConverter",
            ),
            ("offset.flush.interval.ms", "200"),
            ("task.shutdown.graceful.timeout.ms", "5000"),
        ]);
        p.extend(props(extra));
        let (config, _) = WorkerConfig::from_props(&p).unwrap();
        Herder::start(config, self.client(), self.plugins.clone()).unwrap()
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(b) = self.broker.take() {
            let _ = self.runtime.block_on(b.stop());
        }
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn append(path: &str, text: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

fn states(h: &Herder, name: &str) -> (State, Vec<State>) {
    let s = h.status(name).unwrap();
    (
        s.connector.state,
        s.tasks.iter().map(|(_, t)| t.state).collect(),
    )
}

#[test]
fn lifecycle_and_restart_of_the_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let w = World::new(tmp.path());
    let (input, output) = (w.path("in.txt"), w.path("out.txt"));
    append(&input, "a\nb\n");
    let h = w.herder(&[]);
    let source = props(&[
        ("connector.class", "FileStreamSource"),
        ("file", &input),
        ("topic", "t"),
    ]);
    let sink = props(&[
        ("connector.class", "FileStreamSinkConnector"),
        ("file", &output),
        ("topics", "t"),
    ]);
    h.create_connector("src", source.clone(), TargetState::Started)
        .unwrap();
    h.create_connector("sink", sink, TargetState::Started)
        .unwrap();
    assert!(matches!(
        h.create_connector("src", source.clone(), TargetState::Started),
        Err(tributary::worker::WorkerError::ConnectorExists(_))
    ));
    wait_until("a and b in the sink", || lines(&output) == ["a", "b"]);
    assert_eq!(states(&h, "src"), (State::Running, vec![State::Running]));
    assert_eq!(states(&h, "sink"), (State::Running, vec![State::Running]));

    // Pause: nothing moves; resume: it does.
    h.pause("src").unwrap();
    wait_until("the source paused", || {
        states(&h, "src") == (State::Paused, vec![State::Paused])
    });
    append(&input, "c\n");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lines(&output), ["a", "b"]);
    h.resume("src").unwrap();
    wait_until("c after resume", || lines(&output) == ["a", "b", "c"]);

    // Stop: the tasks go away and the status says STOPPED; resume brings them back.
    h.stop("src").unwrap();
    assert_eq!(states(&h, "src"), (State::Stopped, vec![]));
    assert_eq!(h.task_configs("src").unwrap().len(), 0);
    append(&input, "d\n");
    h.resume("src").unwrap();
    wait_until("d after a stop and resume", || {
        lines(&output) == ["a", "b", "c", "d"]
    });

    // Restarts: the connector alone, with its tasks, one task.
    h.restart_connector("src", false, false).unwrap();
    h.restart_connector("src", true, false).unwrap();
    h.restart_task("src", 0).unwrap();
    assert!(h.restart_task("src", 7).is_err());
    append(&input, "e\n");
    wait_until("e after restarts", || {
        lines(&output) == ["a", "b", "c", "d", "e"]
    });

    // Reconfigure: a changed config restarts the connector; the same config changes
    // nothing.
    let (_, created) = h.put_connector_config("src", source.clone()).unwrap();
    assert!(!created);

    // Worker restart: the paused sink stays paused; the source resumes from its
    // committed offset (nothing repeated after a clean stop).
    h.pause("sink").unwrap();
    h.shutdown();
    drop(h);
    append(&input, "f\n");
    let h = w.herder(&[]);
    assert_eq!(h.target_state("sink").unwrap(), TargetState::Paused);
    wait_until("the sink paused after the restart", || {
        states(&h, "sink") == (State::Paused, vec![State::Paused])
    });
    h.resume("sink").unwrap();
    wait_until("f after the worker restart", || {
        lines(&output) == ["a", "b", "c", "d", "e", "f"]
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lines(&output), ["a", "b", "c", "d", "e", "f"]);
    assert_eq!(h.source_offsets("src").len(), 1);

    // Delete: the connector and its status are gone.
    h.delete_connector("src").unwrap();
    assert!(h.status("src").is_err());
    assert!(h.connector_info("src").is_err());
    assert_eq!(h.connectors(), vec!["sink".to_string()]);
    h.shutdown();
}

#[test]
fn error_tolerance_and_dead_letter_queue() {
    let tmp = tempfile::tempdir().unwrap();
    let w = World::new(tmp.path());
    let h = w.herder(&[("task.restart.enable", "false")]);
    let client = w.client();
    client
        .ensure_topic("json", Some(1), BTreeMap::new())
        .unwrap();
    let record = |v: &str| ProducerRecord {
        topic: "json".into(),
        value: Some(Bytes::copy_from_slice(v.as_bytes())),
        ..ProducerRecord::default()
    };
    let records = [
        record(r#""good 1""#),
        record("{not json"),
        record(r#""good 2""#),
    ];
    client.send(&records, &ProducerSettings::default()).unwrap();
    let json_sink = |file: &str, extra: &[(&str, &str)]| {
        let mut p = props(&[
            ("connector.class", "FileStreamSink"),
            ("file", file),
            ("topics", "json"),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("value.converter.schemas.enable", "false"),
        ]);
        p.extend(props(extra));
        p
    };

    // errors.tolerance=none: the task fails, and the trace says what to do.
    let strict = w.path("strict.txt");
    h.create_connector("strict", json_sink(&strict, &[]), TargetState::Started)
        .unwrap();
    wait_until("the strict sink failed", || {
        states(&h, "strict").1 == [State::Failed]
    });
    let trace = h.status("strict").unwrap().tasks[0]
        .1
        .trace
        .clone()
        .unwrap();
    assert!(
        trace.contains("VALUE_CONVERTER") && trace.contains("errors.tolerance=all"),
        "{trace}"
    );
    assert_eq!(
        states(&h, "strict").0,
        State::Running,
        "the connector itself runs on"
    );

    // errors.tolerance=all with a DLQ: good records delivered, the bad one in the DLQ
    // with its bytes and the context headers.
    let tolerant = w.path("tolerant.txt");
    h.create_connector(
        "tolerant",
        json_sink(
            &tolerant,
            &[
                ("errors.tolerance", "all"),
                ("errors.log.enable", "true"),
                ("errors.deadletterqueue.topic.name", "dlq"),
                ("errors.deadletterqueue.context.headers.enable", "true"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    wait_until("the good records", || {
        lines(&tolerant) == ["good 1", "good 2"]
    });
    let dlq = client.fetch("dlq", 0, 0, 1 << 20).unwrap();
    assert_eq!(dlq.records.len(), 1);
    let bad = &dlq.records[0];
    assert_eq!(bad.value.as_deref(), Some(&b"{not json"[..]));
    let header = |k: &str| {
        bad.headers
            .iter()
            .find(|h| h.key == k)
            .and_then(|h| h.value.clone())
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
            .unwrap_or_else(|| panic!("no header {k}"))
    };
    assert_eq!(header("__connect.errors.topic"), "json");
    assert_eq!(header("__connect.errors.partition"), "0");
    assert_eq!(header("__connect.errors.offset"), "1");
    assert_eq!(header("__connect.errors.connector.name"), "tolerant");
    assert_eq!(header("__connect.errors.task.id"), "0");
    assert_eq!(header("__connect.errors.stage"), "VALUE_CONVERTER");
    assert_eq!(
        header("__connect.errors.class.name"),
        "org.apache.kafka.connect.json.JsonConverter"
    );
    assert!(!header("__connect.errors.exception.message").is_empty());

    // A bad config is refused naming the key, and nothing is created.
    let err = h
        .create_connector(
            "bad",
            props(&[
                ("connector.class", "FileStreamSink"),
                ("topics", "a"),
                ("topics.regex", "b"),
            ]),
            TargetState::Started,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("mutually exclusive"), "{err}");
    let err = h
        .create_connector(
            "bad",
            props(&[("connector.class", "NoSuchConnector")]),
            TargetState::Started,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("NoSuchConnector"), "{err}");
    assert!(h.connector_info("bad").is_err());
    h.shutdown();
}

#[test]
fn source_topics_are_created_as_topic_creation_says() {
    let tmp = tempfile::tempdir().unwrap();
    let w = World::new(tmp.path());
    let h = w.herder(&[]);
    let input = w.path("in.txt");
    append(&input, "x\ny\n");
    h.create_connector(
        "src",
        props(&[
            ("connector.class", "FileStreamSource"),
            ("file", &input),
            ("topic", "state-users"),
            ("topic.creation.groups", "compacted"),
            ("topic.creation.default.partitions", "5"),
            ("topic.creation.default.replication.factor", "-1"),
            ("topic.creation.compacted.include", "state-.*"),
            ("topic.creation.compacted.partitions", "2"),
            ("topic.creation.compacted.retention.ms", "3600000"),
        ]),
        TargetState::Started,
    )
    .unwrap();
    let client = w.client();
    wait_until("the topic", || {
        if let Some((_, t)) = h.status("src").unwrap().tasks.first() {
            assert_ne!(t.state, State::Failed, "{:?}", t.trace);
        }
        client
            .end_offsets("state-users")
            .is_ok_and(|e| e.iter().sum::<i64>() == 2)
    });
    assert_eq!(client.partition_count("state-users"), Some(2));
    assert_eq!(
        client
            .topic_overrides("state-users")
            .unwrap()
            .get("retention.ms")
            .map(String::as_str),
        Some("3600000")
    );
    h.shutdown();
}

/// `${provider:...}` placeholders in the worker's own keys (here a transform's) are
/// resolved when the task starts; the stored config keeps the placeholder.
#[test]
fn placeholders_in_transform_keys_resolve_at_task_start() {
    // SAFETY: set once, before any thread of this test reads the environment; no other
    // test reads this variable.
    unsafe { std::env::set_var("TRIBUTARY_IT_TRANSFORM_VALUE", "from-the-environment") };
    let tmp = tempfile::tempdir().unwrap();
    let w = World::new(tmp.path());
    let h = w.herder(&[
        ("config.providers", "env"),
        (
            "config.providers.env.class",
            "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
        ),
    ]);
    let input = w.path("in.txt");
    append(&input, "a\n");
    h.create_connector(
        "resolved",
        props(&[
            ("connector.class", "FileStreamSource"),
            ("file", &input),
            ("topic", "resolved-out"),
            ("transforms", "hoist,add"),
            (
                "transforms.hoist.type",
                "org.apache.kafka.connect.transforms.HoistField$Value",
            ),
            ("transforms.hoist.field", "line"),
            (
                "transforms.add.type",
                "org.apache.kafka.connect.transforms.InsertField$Value",
            ),
            ("transforms.add.static.field", "origin"),
            (
                "transforms.add.static.value",
                "${env:TRIBUTARY_IT_TRANSFORM_VALUE}",
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("value.converter.schemas.enable", "false"),
        ]),
        TargetState::Started,
    )
    .unwrap();
    let client = w.client();
    wait_until("the record", || {
        if let Some((_, t)) = h.status("resolved").unwrap().tasks.first() {
            assert_ne!(t.state, State::Failed, "{:?}", t.trace);
        }
        client
            .end_offsets("resolved-out")
            .is_ok_and(|e| e.iter().sum::<i64>() == 1)
    });
    let fetched = client.fetch("resolved-out", 0, 0, 1 << 20).unwrap();
    let value = fetched.records[0].value.clone().unwrap();
    assert_eq!(
        std::str::from_utf8(&value).unwrap(),
        r#"{"line":"a","origin":"from-the-environment"}"#
    );
    let stored = h.connector_info("resolved").unwrap();
    assert_eq!(
        stored.config["transforms.add.static.value"],
        "${env:TRIBUTARY_IT_TRANSFORM_VALUE}"
    );
    h.shutdown();
}

/// A sink that starts before its topic exists joins with nothing, rejoins when the topic
/// appears, and commits what it consumed before every rejoin: nothing is delivered twice.
#[test]
fn a_sink_started_before_its_topic_delivers_each_record_once() {
    let tmp = tempfile::tempdir().unwrap();
    let w = World::new(tmp.path());
    let h = w.herder(&[]);
    let (input, output) = (w.path("in.txt"), w.path("out.txt"));
    let want: Vec<String> = (0..3000).map(|i| format!("r{i}")).collect();
    append(&input, &(want.join("\n") + "\n"));
    h.create_connector(
        "sink",
        props(&[
            ("connector.class", "FileStreamSink"),
            ("file", &output),
            ("topics", "late"),
        ]),
        TargetState::Started,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    h.create_connector(
        "src",
        props(&[
            ("connector.class", "FileStreamSource"),
            ("file", &input),
            ("topic", "late"),
            ("batch.size", "100"),
        ]),
        TargetState::Started,
    )
    .unwrap();
    wait_until("every record", || lines(&output).len() >= want.len());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(lines(&output), want);
    h.shutdown();
}
