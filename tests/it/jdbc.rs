//! The JDBC connectors in the herder, loaded as a plugin, on the integrated broker, against
//! real PostgreSQL and MariaDB servers (scripts/services/postgres.sh, mariadb.sh) and
//! SQLite files: every source mode, every insert and pk mode of the sink, schema
//! evolution, deletes, a restart in the middle of a table, a round trip PostgreSQL → topic
//! → MariaDB compared row by row, and errors that name what failed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tributary::broker::server::{BrokerSettings, RunningBroker};
use tributary::client::{Client, ProducerRecord, ProducerSettings};
use tributary::plugin::{PluginLoader, SharedRegistry};
use tributary::worker::store::{Props, State, TargetState};
use tributary::worker::{Herder, WorkerConfig};
use tributary_connector_jdbc::db::Db;
use tributary_connector_jdbc::dialect::parse_url;
use tributary_plugin_abi::data::Value;

const WAIT: Duration = Duration::from_secs(60);

/// The JDBC plugin, built once into the plugin tests' own target directory.
fn jdbc_plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| crate::support::plugin_dir("jdbc-plugin", &["tributary-connector-jdbc"]))
}

fn postgres_url() -> String {
    std::env::var("TRIBUTARY_TEST_POSTGRES_URL").expect(
        "TRIBUTARY_TEST_POSTGRES_URL is unset: run `. scripts/services/postgres.sh` (scripts/test does)",
    )
}

fn mysql_url() -> String {
    std::env::var("TRIBUTARY_TEST_MYSQL_URL").expect(
        "TRIBUTARY_TEST_MYSQL_URL is unset: run `. scripts/services/mariadb.sh` (scripts/test does)",
    )
}

fn connect(url: &str) -> Db {
    Db::connect(&parse_url(url, None, None).unwrap()).unwrap()
}

fn exec(db: &Db, sql: &str) {
    db.execute(sql, sql.to_owned())
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn rows(db: &Db, sql: &str) -> Vec<Vec<Value>> {
    db.rows(sql, &|_| Some(2))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Rows in a table, 0 while it does not exist.
fn count(db: &Db, table: &str) -> i64 {
    if db
        .describe_table(table)
        .map(|c| c.is_empty())
        .unwrap_or(true)
    {
        return 0;
    }
    match rows(
        db,
        &format!("SELECT COUNT(*) FROM {}", db.dialect.quote(table)),
    )[0][0]
    {
        Value::Int64(n) => n,
        Value::Int32(n) => i64::from(n),
        ref other => panic!("{other:?}"),
    }
}

/// A name no earlier run used (tables outlive a test run on the shared servers).
fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 100_000_000;
    format!(
        "{prefix}_{now}_{}_{}",
        std::process::id() % 10_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

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
        let plugins = SharedRegistry::new(loader.scan(&[jdbc_plugin_dir().to_path_buf()]));
        let mut settings = BrokerSettings::new(dir.join("data"));
        settings.serve = false;
        settings.groups.initial_rebalance_delay = Duration::from_millis(100);
        let broker = runtime.block_on(RunningBroker::start(settings)).unwrap();
        World {
            dir: dir.to_path_buf(),
            broker: Some(broker),
            runtime,
            plugins,
        }
    }

    fn client(&self) -> Client {
        Client::embedded(
            self.broker.as_ref().unwrap().broker.clone(),
            self.runtime.handle().clone(),
        )
    }

    fn herder(&self) -> Herder {
        let p: BTreeMap<String, String> = props(&[
            (
                "key.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("offset.flush.interval.ms", "200"),
            ("task.shutdown.graceful.timeout.ms", "5000"),
        ]);
        let (config, _) = WorkerConfig::from_props(&p).unwrap();
        Herder::start(config, self.client(), self.plugins.clone()).unwrap()
    }

    fn sqlite_url(&self, name: &str) -> String {
        format!("jdbc:sqlite:{}", self.dir.join(name).display())
    }

    /// Records in a topic (0 while it does not exist).
    fn topic_len(&self, topic: &str) -> i64 {
        self.client()
            .end_offsets(topic)
            .map(|v| v.iter().sum())
            .unwrap_or(0)
    }

    /// The JSON payloads of a topic's values.
    fn payloads(&self, topic: &str) -> Vec<serde_json::Value> {
        let client = self.client();
        let mut out = Vec::new();
        for p in 0..client.partition_count(topic).unwrap_or(0) {
            let mut offset = 0;
            loop {
                let f = client.fetch(topic, p, offset, 1 << 20).unwrap();
                if f.records.is_empty() {
                    break;
                }
                for r in &f.records {
                    let v: serde_json::Value =
                        serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
                    out.push(v["payload"].clone());
                }
                offset = f.next_offset;
            }
        }
        out
    }

    fn send(&self, topic: &str, records: &[(Option<String>, Option<String>)]) {
        let client = self.client();
        client
            .ensure_topic(topic, Some(1), BTreeMap::new())
            .unwrap();
        let records: Vec<ProducerRecord> = records
            .iter()
            .map(|(k, v)| ProducerRecord {
                topic: topic.into(),
                key: k.as_ref().map(|k| Bytes::copy_from_slice(k.as_bytes())),
                value: v.as_ref().map(|v| Bytes::copy_from_slice(v.as_bytes())),
                ..ProducerRecord::default()
            })
            .collect();
        client.send(&records, &ProducerSettings::default()).unwrap();
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(b) = self.broker.take() {
            let _ = self.runtime.block_on(b.stop());
        }
    }
}

fn wait_until(what: &str, h: &Herder, name: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        if let Ok(s) = h.status(name)
            && let Some((_, t)) = s.tasks.iter().find(|(_, t)| t.state == State::Failed)
        {
            panic!("{name} failed while waiting for {what}: {:?}", t.trace);
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_failed(h: &Herder, name: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = h.status(name).unwrap();
        if s.connector.state == State::Failed {
            return s.connector.trace.unwrap_or_default();
        }
        if let Some((_, t)) = s.tasks.iter().find(|(_, t)| t.state == State::Failed) {
            return t.trace.clone().unwrap_or_default();
        }
        assert!(Instant::now() < deadline, "{name} did not fail");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn source(url: &str, extra: &[(&str, &str)]) -> Props {
    let mut p = props(&[
        (
            "connector.class",
            "io.confluent.connect.jdbc.JdbcSourceConnector",
        ),
        ("connection.url", url),
        ("poll.interval.ms", "100"),
        ("batch.max.rows", "50"),
    ]);
    p.extend(props(extra));
    p
}

fn sink(url: &str, topic: &str, extra: &[(&str, &str)]) -> Props {
    let mut p = props(&[
        ("connector.class", "JdbcSink"),
        ("connection.url", url),
        ("topics", topic),
    ]);
    p.extend(props(extra));
    p
}

fn ids(payloads: &[serde_json::Value]) -> Vec<i64> {
    payloads.iter().map(|p| p["id"].as_i64().unwrap()).collect()
}

#[test]
fn source_modes_on_postgres() {
    let tmp = tempfile::tempdir().unwrap();
    let w = World::new(tmp.path());
    let h = w.herder();
    let pg = connect(&postgres_url());
    let (bulk, inc, ts, tsinc) = (unique("bulk"), unique("inc"), unique("ts"), unique("tsinc"));
    for t in [&bulk, &inc, &ts, &tsinc] {
        exec(
            &pg,
            &format!(
                "CREATE TABLE \"{t}\" (id SERIAL PRIMARY KEY, name TEXT, modified TIMESTAMP(3) NOT NULL DEFAULT now())"
            ),
        );
        exec(
            &pg,
            &format!(
                "INSERT INTO \"{t}\" (name, modified) SELECT 'row ' || g, TIMESTAMP '2020-01-01' + g * INTERVAL '1 second' FROM generate_series(1, 120) g"
            ),
        );
    }
    let url = postgres_url();
    let start = |name: &str, table: &str, extra: &[(&str, &str)]| {
        let mut p = source(&url, &[("table.whitelist", table), ("topic.prefix", "pg-")]);
        p.extend(props(extra));
        h.create_connector(name, p, TargetState::Started).unwrap();
    };
    start(
        "bulk",
        &bulk,
        &[("mode", "bulk"), ("poll.interval.ms", "600000")],
    );
    start(
        "inc",
        &inc,
        &[("mode", "incrementing"), ("incrementing.column.name", "id")],
    );
    start(
        "ts",
        &ts,
        &[("mode", "timestamp"), ("timestamp.column.name", "modified")],
    );
    start(
        "tsinc",
        &tsinc,
        &[
            ("mode", "timestamp+incrementing"),
            ("timestamp.column.name", "modified"),
            ("incrementing.column.name", "id"),
        ],
    );
    for (name, t) in [
        ("bulk", &bulk),
        ("inc", &inc),
        ("ts", &ts),
        ("tsinc", &tsinc),
    ] {
        let topic = format!("pg-{t}");
        wait_until(&format!("120 rows of {t}"), &h, name, || {
            w.topic_len(&topic) >= 120
        });
        let p = w.payloads(&topic);
        assert_eq!(ids(&p), (1..=120).collect::<Vec<_>>(), "{name}");
        assert_eq!(p[0]["name"], "row 1");
        // 2020-01-01T00:00:01Z in milliseconds.
        assert_eq!(p[0]["modified"], 1_577_836_801_000i64);
    }
    // New rows: the incremental modes pick them up; an updated timestamp re-sends a row.
    for t in [&inc, &ts, &tsinc] {
        exec(
            &pg,
            &format!("INSERT INTO \"{t}\" (name, modified) VALUES ('new', TIMESTAMP '2021-01-01')"),
        );
    }
    exec(
        &pg,
        &format!(
            "UPDATE \"{ts}\" SET modified = TIMESTAMP '2022-01-01', name = 'changed' WHERE id = 5"
        ),
    );
    wait_until("the new row of inc", &h, "inc", || {
        w.topic_len(&format!("pg-{inc}")) == 121
    });
    wait_until("the new and changed rows of ts", &h, "ts", || {
        w.topic_len(&format!("pg-{ts}")) == 122
    });
    wait_until("the new row of tsinc", &h, "tsinc", || {
        w.topic_len(&format!("pg-{tsinc}")) == 121
    });
    let p = w.payloads(&format!("pg-{ts}"));
    assert_eq!(p[121]["name"], "changed");
    assert_eq!(
        w.topic_len(&format!("pg-{bulk}")),
        120,
        "bulk waits for its poll interval"
    );
    h.shutdown();
}

#[test]
fn source_restart_in_the_middle_of_a_table_neither_skips_nor_repeats() {
    let tmp = tempfile::tempdir().unwrap();
    let w = World::new(tmp.path());
    let pg = connect(&postgres_url());
    let t = unique("restart");
    exec(
        &pg,
        &format!("CREATE TABLE \"{t}\" (id BIGINT PRIMARY KEY, v TEXT)"),
    );
    exec(
        &pg,
        &format!("INSERT INTO \"{t}\" SELECT g, 'v' || g FROM generate_series(1, 20000) g"),
    );
    for (name, mode) in [("inc", "incrementing"), ("tsinc", "timestamp+incrementing")] {
        if mode == "timestamp+incrementing" {
            exec(
                &pg,
                &format!(
                    "ALTER TABLE \"{t}\" ADD ts TIMESTAMP NOT NULL DEFAULT TIMESTAMP '2020-01-01'"
                ),
            );
        }
        let topic = format!("r-{name}-{t}");
        let cfg = source(
            &postgres_url(),
            &[
                ("mode", mode),
                ("table.whitelist", &t),
                ("incrementing.column.name", "id"),
                ("timestamp.column.name", "ts"),
                ("topic.prefix", &format!("r-{name}-")),
                ("batch.max.rows", "200"),
            ],
        );
        let h = w.herder();
        h.create_connector(name, cfg, TargetState::Started).unwrap();
        wait_until("part of the table", &h, name, || {
            w.topic_len(&topic) >= 3000
        });
        h.shutdown();
        drop(h);
        let before = w.topic_len(&topic);
        assert!(before < 20000, "stopped in the middle ({before})");
        let h = w.herder();
        wait_until("the whole table", &h, name, || w.topic_len(&topic) >= 20000);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            ids(&w.payloads(&topic)),
            (1..=20000).collect::<Vec<_>>(),
            "{mode}"
        );
        h.delete_connector(name).unwrap();
        h.shutdown();
    }
}

/// One sink scenario on one database: records in, then the table's rows.
fn sink_scenarios(w: &World, h: &Herder, url: &str, db: &Db, tag: &str) {
    let schema = r#"{"type":"struct","name":"row","fields":[{"field":"id","type":"int64","optional":false},{"field":"name","type":"string","optional":true},{"field":"price","type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}},{"field":"at","type":"int64","optional":true,"name":"org.apache.kafka.connect.data.Timestamp","version":1},{"field":"ok","type":"boolean","optional":true}]}"#;
    // price 12.34 is unscaled 1234 = 0x04D2, "BNI=" in base64.
    let value = |id: i64, name: &str| {
        Some(format!(
            r#"{{"schema":{schema},"payload":{{"id":{id},"name":"{name}","price":"BNI=","at":1600000000123,"ok":true}}}}"#
        ))
    };
    let key = |id: i64| {
        Some(format!(
            r#"{{"schema":{{"type":"int64","optional":false}},"payload":{id}}}"#
        ))
    };
    let names = |table: &str| -> Vec<(i64, String)> {
        if count(db, table) == 0 {
            return Vec::new();
        }
        rows(
            db,
            &format!(
                "SELECT id, name FROM {} ORDER BY id",
                db.dialect.quote(table)
            ),
        )
        .into_iter()
        .map(|r| {
            let id = match r[0] {
                Value::Int64(n) => n,
                Value::Int32(n) => i64::from(n),
                ref o => panic!("{o:?}"),
            };
            let name = match &r[1] {
                Value::String(s) => s.clone(),
                o => panic!("{o:?}"),
            };
            (id, name)
        })
        .collect()
    };

    // insert, pk.mode=none, auto.create.
    let t = unique(&format!("{tag}_insert"));
    w.send(&t, &[(None, value(1, "a")), (None, value(2, "b"))]);
    h.create_connector(
        &t,
        sink(url, &t, &[("auto.create", "true")]),
        TargetState::Started,
    )
    .unwrap();
    wait_until("inserted rows", h, &t, || count(db, &t) == 2);
    assert_eq!(names(&t), [(1, "a".into()), (2, "b".into())]);
    let r = rows(
        db,
        &format!("SELECT price, at, ok FROM {}", db.dialect.quote(&t)),
    );
    assert_eq!(
        r[0][1],
        Value::Int64(1_600_000_000_123),
        "{tag}: timestamp with milliseconds"
    );
    assert!(
        matches!(
            r[0][2],
            Value::Boolean(true) | Value::Int8(1) | Value::Int64(1)
        ),
        "{:?}",
        r[0][2]
    );
    h.delete_connector(&t).unwrap();

    // upsert, pk.mode=record_value: redelivery and updates are idempotent; a key repeated
    // inside one batch keeps its last record.
    let t = unique(&format!("{tag}_upsert"));
    w.send(
        &t,
        &[
            (None, value(1, "a")),
            (None, value(2, "b")),
            (None, value(1, "a2")),
            (None, value(2, "b")),
        ],
    );
    h.create_connector(
        &t,
        sink(
            url,
            &t,
            &[
                ("auto.create", "true"),
                ("insert.mode", "upsert"),
                ("pk.mode", "record_value"),
                ("pk.fields", "id"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    wait_until("upserted rows", h, &t, || {
        names(&t) == [(1, "a2".into()), (2, "b".into())]
    });
    h.delete_connector(&t).unwrap();

    // upsert by record_key with deletes, and auto.evolve adding an optional column.
    let t = unique(&format!("{tag}_keyed"));
    w.send(
        &t,
        &[
            (key(1), value(1, "a")),
            (key(2), value(2, "b")),
            (key(3), value(3, "c")),
            (key(2), None),
        ],
    );
    h.create_connector(
        &t,
        sink(
            url,
            &t,
            &[
                ("auto.create", "true"),
                ("auto.evolve", "true"),
                ("insert.mode", "upsert"),
                ("pk.mode", "record_key"),
                ("pk.fields", "id"),
                ("delete.enabled", "true"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    wait_until("rows 1 and 3 after the delete of 2", h, &t, || {
        names(&t) == [(1, "a".into()), (3, "c".into())]
    });
    let evolved = r#"{"type":"struct","fields":[{"field":"id","type":"int64","optional":false},{"field":"name","type":"string","optional":true},{"field":"extra","type":"int32","optional":true}]}"#;
    w.send(
        &t,
        &[(
            key(4),
            Some(format!(
                r#"{{"schema":{evolved},"payload":{{"id":4,"name":"d","extra":7}}}}"#
            )),
        )],
    );
    wait_until("the evolved row", h, &t, || count(db, &t) == 3);
    let extra = rows(
        db,
        &format!("SELECT extra FROM {} ORDER BY id", db.dialect.quote(&t)),
    );
    assert!(
        matches!(extra[2][0], Value::Int32(7) | Value::Int64(7)),
        "{:?}",
        extra[2][0]
    );
    assert_eq!(extra[0][0], Value::Null);
    h.delete_connector(&t).unwrap();

    // update mode on an existing table; pk.mode=kafka inserts with topic/partition/offset.
    let t = unique(&format!("{tag}_update"));
    exec(
        db,
        &format!(
            "CREATE TABLE {} (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(20), price DECIMAL(10,2), at TIMESTAMP NULL, ok BOOLEAN)",
            db.dialect.quote(&t)
        ),
    );
    exec(
        db,
        &format!(
            "INSERT INTO {} (id, name) VALUES (1, 'old'), (2, 'old')",
            db.dialect.quote(&t)
        ),
    );
    w.send(&t, &[(None, value(2, "new"))]);
    h.create_connector(
        &t,
        sink(
            url,
            &t,
            &[
                ("insert.mode", "update"),
                ("pk.mode", "record_value"),
                ("pk.fields", "id"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    wait_until("the updated row", h, &t, || {
        names(&t) == [(1, "old".into()), (2, "new".into())]
    });
    h.delete_connector(&t).unwrap();

    let t = unique(&format!("{tag}_kafka"));
    w.send(&t, &[(None, value(1, "a")), (None, value(1, "a"))]);
    h.create_connector(
        &t,
        sink(
            url,
            &t,
            &[
                ("auto.create", "true"),
                ("pk.mode", "kafka"),
                ("insert.mode", "upsert"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    wait_until("two rows keyed by offset", h, &t, || count(db, &t) == 2);
    let k = rows(
        db,
        &format!(
            "SELECT __connect_topic, __connect_offset FROM {} ORDER BY __connect_offset",
            db.dialect.quote(&t)
        ),
    );
    assert_eq!(k[1], vec![Value::String(t.clone()), Value::Int64(1)]);
    h.delete_connector(&t).unwrap();
}

#[test]
fn sink_modes_on_postgres_mariadb_and_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let w = World::new(tmp.path());
    let h = w.herder();
    let lite_url = w.sqlite_url("sink.db");
    for (tag, url) in [
        ("pg", postgres_url()),
        ("my", mysql_url()),
        ("lite", lite_url),
    ] {
        let db = connect(&url);
        sink_scenarios(&w, &h, &url, &db, tag);
    }
    h.shutdown();
}

#[test]
fn round_trip_postgres_to_topic_to_mariadb() {
    let tmp = tempfile::tempdir().unwrap();
    let w = World::new(tmp.path());
    let h = w.herder();
    let pg = connect(&postgres_url());
    let my = connect(&mysql_url());
    let t = unique("trip");
    exec(
        &pg,
        &format!(
            "CREATE TABLE \"{t}\" (id INTEGER PRIMARY KEY, big BIGINT, small SMALLINT, name TEXT, \
         price NUMERIC(12,2), ratio DOUBLE PRECISION, ok BOOLEAN, day DATE, at TIMESTAMP(3), blob BYTEA)"
        ),
    );
    exec(
        &pg,
        &format!(
            "INSERT INTO \"{t}\" SELECT g, g * 1000000000::bigint, (g % 100)::smallint, 'name ''' || g || '\"', \
         (g * 1.25)::numeric(12,2), g / 3.0, g % 2 = 0, DATE '2024-02-29' + g, \
         TIMESTAMP '2024-01-01 12:00:00.123' + g * INTERVAL '1 minute', decode(lpad(to_hex(g), 8, '0'), 'hex') \
         FROM generate_series(1, 2000) g"
        ),
    );
    exec(&pg, &format!("INSERT INTO \"{t}\" (id) VALUES (2001)"));
    h.create_connector(
        "pg-source",
        source(
            &postgres_url(),
            &[
                ("mode", "incrementing"),
                ("incrementing.column.name", "id"),
                ("table.whitelist", &t),
                ("topic.prefix", "trip-"),
                ("batch.max.rows", "500"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    h.create_connector(
        "my-sink",
        sink(
            &mysql_url(),
            &format!("trip-{t}"),
            &[
                ("auto.create", "true"),
                ("insert.mode", "upsert"),
                ("pk.mode", "record_value"),
                ("pk.fields", "id"),
                ("table.name.format", &t),
                ("batch.size", "300"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    wait_until("every row in MariaDB", &h, "my-sink", || {
        my.describe_table(&t)
            .map(|c| !c.is_empty())
            .unwrap_or(false)
            && count(&my, &t) == 2001
    });
    // `blob` is a reserved word in MariaDB: the sink quoted it, and so must we.
    let cols = |db: &Db| {
        [
            "id", "big", "small", "name", "price", "ratio", "ok", "day", "at", "blob",
        ]
        .map(|c| db.dialect.quote_column(c))
        .join(", ")
    };
    let a = rows(
        &pg,
        &format!("SELECT {} FROM \"{t}\" ORDER BY id", cols(&pg)),
    );
    let b = rows(&my, &format!("SELECT {} FROM `{t}` ORDER BY id", cols(&my)));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        // MariaDB's auto-created BOOLEAN is TINYINT(1), read back as a boolean.
        assert_eq!(x, y, "row {:?}", x[0]);
    }
    h.shutdown();
}

#[test]
fn errors_name_the_setting_table_or_column_and_the_worker_runs_on() {
    let tmp = tempfile::tempdir().unwrap();
    let w = World::new(tmp.path());
    let h = w.herder();
    let pg = connect(&postgres_url());
    let url = postgres_url();

    // Wrong password: the connector fails and says which settings to check.
    let mut bad = source(&url, &[("mode", "bulk"), ("topic.prefix", "x-")]);
    bad.insert("connection.password".into(), "wrong".into());
    h.create_connector("badpw", bad, TargetState::Started)
        .unwrap();
    let trace = wait_failed(&h, "badpw");
    assert!(trace.contains("connection.password"), "{trace}");
    assert!(
        !trace.contains("wrong"),
        "the password is not shown: {trace}"
    );

    // Unreachable server.
    h.create_connector(
        "down",
        source(
            "postgres://u:p@127.0.0.1:9/db",
            &[("mode", "bulk"), ("topic.prefix", "x-")],
        ),
        TargetState::Started,
    )
    .unwrap();
    let trace = wait_failed(&h, "down");
    assert!(
        trace.contains("127.0.0.1:9") && trace.contains("running"),
        "{trace}"
    );

    // A whitelisted table that does not exist.
    let missing = unique("missing");
    h.create_connector(
        "missing",
        source(
            &url,
            &[
                ("mode", "bulk"),
                ("topic.prefix", "x-"),
                ("table.whitelist", &missing),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    let trace = wait_failed(&h, "missing");
    assert!(
        trace.contains(&missing) && trace.contains("table.whitelist"),
        "{trace}"
    );

    // The sink into a missing table without auto.create, and a type mismatch.
    let schema = r#"{"type":"struct","fields":[{"field":"id","type":"string","optional":false}]}"#;
    let t = unique("mismatch");
    exec(&pg, &format!("CREATE TABLE \"{t}\" (id INTEGER)"));
    w.send(
        &t,
        &[(
            None,
            Some(format!(
                r#"{{"schema":{schema},"payload":{{"id":"not a number"}}}}"#
            )),
        )],
    );
    h.create_connector("mismatch", sink(&url, &t, &[]), TargetState::Started)
        .unwrap();
    let trace = wait_failed(&h, "mismatch");
    assert!(trace.contains(&t) && trace.contains("id"), "{trace}");
    let nt = unique("notable");
    w.send(
        &nt,
        &[(
            None,
            Some(format!(r#"{{"schema":{schema},"payload":{{"id":"x"}}}}"#)),
        )],
    );
    h.create_connector("notable", sink(&url, &nt, &[]), TargetState::Started)
        .unwrap();
    let trace = wait_failed(&h, "notable");
    assert!(
        trace.contains(&nt) && trace.contains("auto.create"),
        "{trace}"
    );

    // With errors.tolerance=all a row the database refuses (here a CHECK constraint)
    // goes to the dead letter queue with the database's message; the others are written.
    let schema_v = r#"{"type":"struct","fields":[{"field":"id","type":"int32","optional":false},{"field":"v","type":"int32","optional":false}]}"#;
    let checked = unique("checked");
    exec(
        &pg,
        &format!("CREATE TABLE \"{checked}\" (id INTEGER PRIMARY KEY, v INTEGER CHECK (v >= 0))"),
    );
    let row = |id: i32, v: i32| {
        (
            None,
            Some(format!(
                r#"{{"schema":{schema_v},"payload":{{"id":{id},"v":{v}}}}}"#
            )),
        )
    };
    w.send(&checked, &[row(1, 10), row(2, -1), row(3, 30)]);
    let dlq = format!("dlq-{checked}");
    h.create_connector(
        "checked",
        sink(
            &url,
            &checked,
            &[
                ("errors.tolerance", "all"),
                ("errors.deadletterqueue.topic.name", &dlq),
                ("errors.deadletterqueue.context.headers.enable", "true"),
                ("errors.deadletterqueue.topic.replication.factor", "1"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    wait_until("the two good rows", &h, "checked", || {
        count(&pg, &checked) == 2 && w.topic_len(&dlq) == 1
    });
    assert_eq!(
        rows(&pg, &format!("SELECT id FROM \"{checked}\" ORDER BY id")),
        vec![vec![Value::Int32(1)], vec![Value::Int32(3)]]
    );
    assert_eq!(
        h.status("checked").unwrap().tasks[0].1.state,
        State::Running,
        "the task runs on"
    );

    // A bad config is refused up front, naming the keys.
    let v = h
        .validate(&sink(&url, "t", &[("insert.mode", "sideways")]))
        .unwrap();
    assert!(format!("{v:?}").contains("insert.mode"));

    // The worker runs on: a good connector still works.
    let ok = unique("ok");
    exec(
        &pg,
        &format!("CREATE TABLE \"{ok}\" (id INTEGER PRIMARY KEY)"),
    );
    exec(&pg, &format!("INSERT INTO \"{ok}\" VALUES (1), (2)"));
    h.create_connector(
        "ok",
        source(
            &url,
            &[
                ("mode", "incrementing"),
                ("incrementing.column.name", "id"),
                ("table.whitelist", &ok),
                ("topic.prefix", "ok-"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    wait_until("the good source", &h, "ok", || {
        w.topic_len(&format!("ok-{ok}")) == 2
    });
    h.shutdown();
}

#[test]
fn sqlite_tables_spread_over_tasks_and_new_tables_are_picked_up() {
    let tmp = tempfile::tempdir().unwrap();
    let w = World::new(tmp.path());
    let h = w.herder();
    let url = w.sqlite_url("source.db");
    let db = connect(&url);
    let make = |t: &str| {
        exec(
            &db,
            &format!("CREATE TABLE \"{t}\" (id INTEGER PRIMARY KEY, note TEXT, at DATETIME)"),
        );
        exec(
            &db,
            &format!(
                "INSERT INTO \"{t}\" (id, note, at) VALUES (1, 'one', '2024-05-01 10:00:00'), (2, NULL, NULL)"
            ),
        );
    };
    for t in ["a", "b", "c"] {
        make(t);
    }
    make("skipped");
    h.create_connector(
        "lite",
        source(
            &url,
            &[
                ("mode", "incrementing"),
                ("incrementing.column.name", "id"),
                ("topic.prefix", "lite-"),
                ("table.blacklist", "skipped"),
                ("tasks.max", "2"),
                ("table.poll.interval.ms", "200"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    for t in ["a", "b", "c"] {
        wait_until(&format!("table {t}"), &h, "lite", || {
            w.topic_len(&format!("lite-{t}")) == 2
        });
    }
    assert_eq!(
        h.task_configs("lite").unwrap().len(),
        2,
        "three tables over two tasks"
    );
    let p = w.payloads("lite-a");
    assert_eq!(p[0]["note"], "one");
    assert_eq!(p[0]["at"], 1_714_557_600_000i64);
    assert!(p[1]["note"].is_null());
    // A table created later is found by the table monitor, which asks for new task
    // configs (acted on at the herder's tick, as the standalone worker's loop does).
    make("d");
    wait_until("the new table d", &h, "lite", || {
        h.tick();
        w.topic_len("lite-d") == 2
    });
    assert_eq!(w.topic_len("lite-skipped"), 0);
    h.shutdown();
}

/// A TCP forwarder to a server that can drop every connection and refuse new ones for a
/// while: a network failure in the middle of a stream, without touching the shared server.
struct Flaky {
    port: u16,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Flaky {
    fn start(target: std::net::SocketAddr) -> Flaky {
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::atomic::AtomicBool;
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (d, c) = (down.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                c.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Flaky { port, down, conns }
    }

    fn cut(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            for s in self.conns.lock().unwrap().drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

#[test]
fn connection_loss_mid_stream_is_retried_without_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let w = World::new(tmp.path());
    let h = w.herder();
    let pg_url = postgres_url();
    let pg = connect(&pg_url);
    let target: std::net::SocketAddr = pg_url
        .split('@')
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    let flaky = Flaky::start(target);
    let via = pg_url.replace(&target.to_string(), &format!("127.0.0.1:{}", flaky.port));
    let (src, dst) = (unique("lossy_src"), unique("lossy_dst"));
    exec(
        &pg,
        &format!("CREATE TABLE \"{src}\" (id BIGINT PRIMARY KEY, v TEXT)"),
    );
    exec(
        &pg,
        &format!("INSERT INTO \"{src}\" SELECT g, 'v' || g FROM generate_series(1, 30000) g"),
    );
    h.create_connector(
        "lossy-src",
        source(
            &via,
            &[
                ("mode", "incrementing"),
                ("incrementing.column.name", "id"),
                ("table.whitelist", &src),
                ("topic.prefix", "lossy-"),
                ("batch.max.rows", "100"),
                ("connection.attempts", "1000"),
                ("connection.backoff.ms", "100"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    h.create_connector(
        "lossy-sink",
        sink(
            &via,
            &format!("lossy-{src}"),
            &[
                ("auto.create", "true"),
                ("insert.mode", "upsert"),
                ("pk.mode", "record_value"),
                ("pk.fields", "id"),
                ("table.name.format", &dst),
                ("batch.size", "100"),
            ],
        ),
        TargetState::Started,
    )
    .unwrap();
    let topic = format!("lossy-{src}");
    wait_until("part of the stream", &h, "lossy-src", || {
        w.topic_len(&topic) >= 2000
    });
    for _ in 0..3 {
        flaky.cut(true);
        std::thread::sleep(Duration::from_millis(700));
        flaky.cut(false);
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_until("every row in the topic", &h, "lossy-src", || {
        w.topic_len(&topic) >= 30000
    });
    wait_until("every row in the sink's table", &h, "lossy-sink", || {
        count(&pg, &dst) == 30000
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ids(&w.payloads(&topic)), (1..=30000).collect::<Vec<_>>());
    for name in ["lossy-src", "lossy-sink"] {
        let s = h.status(name).unwrap();
        assert!(
            s.tasks.iter().all(|(_, t)| t.state == State::Running),
            "{name}: {s:?}"
        );
    }
    h.shutdown();
}
