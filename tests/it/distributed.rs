//! Distributed mode with real processes: one `tributary broker` and three
//! `tributary distributed` workers on loopback ports, sharing three datagen → topic →
//! file sink pipelines (six connectors, six tasks), counted end to end.
//!
//! In one run: the connectors spread over the three workers; REST calls made to any
//! worker have the same effect; a worker killed with SIGKILL has its work running
//! elsewhere within the session timeout plus `scheduled.rebalance.max.delay.ms`; started
//! again it takes work back without the other workers restarting the tasks they keep; a
//! rolling restart of all three; the broker restarted under the running workers; and at
//! the end every generated record is in its output file (at least once: a killed worker's
//! uncommitted records are delivered again).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::support::BrokerProcess;

/// Records per pipeline.
const RECORDS: usize = 12_000;
const PIPELINES: usize = 3;
const SESSION_MS: u64 = 6000;
const DELAY_MS: u64 = 2000;

/// The file and datagen plugins, built once into a directory of their own.
fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        crate::support::plugin_dir(
            "distributed-plugins",
            &["tributary-connector-file", "tributary-connector-datagen"],
        )
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Worker {
    child: Option<Child>,
    log: PathBuf,
    rest: String,
}

impl Worker {
    fn start(dir: &Path, n: usize, port: u16, bootstrap: &str) -> Worker {
        Worker::start_with(dir, n, port, bootstrap, "")
    }

    /// A worker with `extra` lines appended to its config.
    fn start_with(dir: &Path, n: usize, port: u16, bootstrap: &str, extra: &str) -> Worker {
        let config = dir.join(format!("worker-{n}.properties"));
        std::fs::write(
            &config,
            format!(
                "bootstrap.servers={bootstrap}\ngroup.id=it-connect-cluster\n\
                 plugin.path={}\n\
                 key.converter=org.apache.kafka.connect.storage.StringConverter\n\
                 value.converter=org.apache.kafka.connect.storage.StringConverter\n\
                 listeners=http://127.0.0.1:{port}\n\
                 offset.flush.interval.ms=300\n\
                 heartbeat.interval.ms=500\nsession.timeout.ms={SESSION_MS}\n\
                 scheduled.rebalance.max.delay.ms={DELAY_MS}\n\
                 offset.storage.partitions=5\nstatus.storage.partitions=3\n{extra}\n",
                plugin_dir().display()
            ),
        )
        .unwrap();
        let log = dir.join(format!("worker-{n}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("distributed")
            .arg(&config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn tributary distributed");
        let w = Worker {
            child: Some(child),
            log,
            rest: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while w.try_call("GET", "/", None).is_none() {
            assert!(
                Instant::now() < deadline,
                "worker {n} did not answer; log:\n{}",
                w.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        w
    }

    fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    fn log_tail(&self) -> String {
        let t = self.log_text();
        t[t.len().saturating_sub(6000)..].to_owned()
    }

    /// How many tasks this worker process (and its earlier runs) started.
    fn task_starts(&self) -> usize {
        self.log_text().matches("task starting").count()
    }

    fn try_call(&self, method: &str, path: &str, body: Option<&Json>) -> Option<(u16, Json)> {
        let mut stream = TcpStream::connect(&self.rest).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(100)))
            .unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.rest,
            body.len()
        );
        stream.write_all(req.as_bytes()).ok()?;
        let mut resp = Vec::new();
        stream.read_to_end(&mut resp).ok()?;
        let text = String::from_utf8_lossy(&resp);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
        let json = if body.trim().is_empty() {
            Json::Null
        } else {
            serde_json::from_str(body).unwrap_or(Json::String(body.to_owned()))
        };
        Some((status, json))
    }

    fn call(&self, method: &str, path: &str, body: Option<&Json>) -> (u16, Json) {
        self.try_call(method, path, body).unwrap_or_else(|| {
            panic!(
                "{method} {path} on {}: no answer; log:\n{}",
                self.rest,
                self.log_tail()
            )
        })
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        // SAFETY: our own unreaped child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "exit {status}; log:\n{}", self.log_tail());
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Where each connector and task of the pipelines runs.
fn placements(w: &Worker) -> BTreeMap<(String, Option<u64>), (String, String)> {
    let names: Vec<String> = (0..PIPELINES)
        .flat_map(|i| [format!("gen-{i}"), format!("sink-{i}")])
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    placements_of(w, &names)
}

/// Where each connector and task runs: (connector, task or None) → (state, worker id).
fn placements_of(w: &Worker, names: &[&str]) -> BTreeMap<(String, Option<u64>), (String, String)> {
    let mut out = BTreeMap::new();
    for name in names.iter().map(|n| n.to_string()) {
        let (code, status) = w.call("GET", &format!("/connectors/{name}/status"), None);
        if code != 200 {
            continue;
        }
        let get = |v: &Json| {
            (
                v["state"].as_str().unwrap_or_default().to_owned(),
                v["worker_id"].as_str().unwrap_or_default().to_owned(),
            )
        };
        out.insert((name.clone(), None), get(&status["connector"]));
        for t in status["tasks"].as_array().cloned().unwrap_or_default() {
            out.insert((name.clone(), t["id"].as_u64()), get(&t));
        }
    }
    out
}

/// Wait until every connector and one task each run on the workers in `alive`.
fn wait_all_running(
    observer: &Worker,
    alive: &[&str],
    limit: Duration,
    what: &str,
) -> (BTreeMap<(String, Option<u64>), (String, String)>, Duration) {
    let start = Instant::now();
    loop {
        let p = placements(observer);
        let complete = p.len() == PIPELINES * 4
            && p.values()
                .all(|(state, worker)| state == "RUNNING" && alive.contains(&worker.as_str()));
        if complete {
            return (p, start.elapsed());
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not everything RUNNING on {alive:?} within {limit:?}: {p:#?}\nobserver log:\n{}",
            observer.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The distinct sequence numbers in a datagen → file sink output.
fn sequences(path: &Path) -> BTreeSet<u64> {
    let text = std::fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| l.get(..12)?.parse().ok())
        .collect()
}

#[test]
fn three_workers_share_fail_over_rebalance_and_survive_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let broker_dir = dir.join("cluster");
    // The first rebalance of an empty group waits a moment for the other workers.
    let overrides = ["group.initial.rebalance.delay.ms=1000"];
    let mut broker = BrokerProcess::start(&broker_dir, &overrides);
    let bootstrap = broker.bootstrap.clone();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let ids: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut workers: Vec<Worker> = (0..3)
        .map(|n| Worker::start(dir, n, ports[n], &bootstrap))
        .collect();

    // Each connector is created through a different worker; each worker forwards to
    // the leader.
    for i in 0..PIPELINES {
        let out = dir.join(format!("out-{i}.txt"));
        let gen_config = json!({
            "name": format!("gen-{i}"),
            "config": {
                "connector.class": "DataGen",
                "kafka.topic": format!("dist-{i}"),
                "tasks.max": "1",
                "iterations": RECORDS.to_string(),
                "max.interval": "50",
                "datagen.records.per.poll": "20",
                "datagen.record.bytes": "40",
            }
        });
        let sink_config = json!({
            "name": format!("sink-{i}"),
            "config": {
                "connector.class": "FileStreamSink",
                "topics": format!("dist-{i}"),
                "file": out.display().to_string(),
                "tasks.max": "1",
            }
        });
        for (k, body) in [gen_config, sink_config].iter().enumerate() {
            let w = &workers[(i * 2 + k) % 3];
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let (code, answer) = w.call("POST", "/connectors", Some(body));
                if code == 201 {
                    break;
                }
                // 409 while the first rebalance is under way, as Kafka Connect answers.
                assert_eq!(code, 409, "create through {}: {answer}", w.rest);
                assert!(Instant::now() < deadline, "still 409 after 30 s: {answer}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    // Every worker sees every connector (once it has read the config topic).
    for w in &workers {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (code, list) = w.call("GET", "/connectors", None);
            assert_eq!(code, 200);
            if list.as_array().map(Vec::len) == Some(PIPELINES * 2) {
                break;
            }
            assert!(Instant::now() < deadline, "{} lists {list}", w.rest);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let all: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (placed, _) = wait_all_running(&workers[0], &all, Duration::from_secs(60), "start");
    let used: BTreeSet<&String> = placed.values().map(|(_, w)| w).collect();
    assert_eq!(
        used.len(),
        3,
        "work spread over all three workers: {placed:#?}"
    );
    // Status is the same from every worker.
    let from_others = wait_all_running(&workers[2], &all, Duration::from_secs(10), "status").0;
    assert_eq!(placed, from_others);

    // SIGKILL worker 2: its work moves within the session timeout plus the delay.
    std::thread::sleep(Duration::from_secs(2));
    workers[2].kill();
    let alive: Vec<&str> = ids[..2].iter().map(String::as_str).collect();
    let limit = Duration::from_millis(SESSION_MS + DELAY_MS) + Duration::from_secs(15);
    let (after_kill, _took) = wait_all_running(&workers[0], &alive, limit, "failover");

    // Worker 2 back: it takes work again; what stays on workers 0 and 1 is not restarted.
    let starts_before: Vec<usize> = workers[..2].iter().map(Worker::task_starts).collect();
    workers[2] = Worker::start(dir, 2, ports[2], &bootstrap);
    let deadline = Instant::now() + Duration::from_secs(30);
    let back = loop {
        let (p, _) = wait_all_running(&workers[1], &all, Duration::from_secs(30), "rejoin");
        if p.values().any(|(_, w)| *w == ids[2]) {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "worker 2 got no work back: {p:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let starts_after: Vec<usize> = workers[..2].iter().map(Worker::task_starts).collect();
    assert_eq!(
        starts_before, starts_after,
        "workers 0 and 1 restarted tasks when worker 2 came back"
    );
    for (item, (_, w)) in &back {
        if *w != ids[2] {
            assert_eq!(
                after_kill.get(item).map(|(_, w)| w),
                Some(w),
                "{item:?} moved between the workers that stayed"
            );
        }
    }

    // A rolling restart of all three.
    for n in 0..3 {
        workers[n].terminate();
        workers[n] = Worker::start(dir, n, ports[n], &bootstrap);
        wait_all_running(
            &workers[(n + 1) % 3],
            &all,
            Duration::from_secs(60),
            "rolling",
        );
    }

    // Pause and resume through one worker act on whichever worker runs the connector.
    let (code, _) = workers[1].call("PUT", "/connectors/gen-0/pause", None);
    assert_eq!(code, 202);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, s) = workers[2].call("GET", "/connectors/gen-0/status", None);
        if s["tasks"][0]["state"] == "PAUSED" {
            break;
        }
        assert!(Instant::now() < deadline, "gen-0 not paused: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, _) = workers[0].call("PUT", "/connectors/gen-0/resume", None);
    assert_eq!(code, 202);

    // A task restart sent to a worker that does not run the task reaches the one that
    // does (forwarded by its status's worker_id).
    let (_, owner) = placements(&workers[0])[&("gen-1".to_owned(), Some(0))].clone();
    let runner = workers.iter().position(|w| w.rest == owner).unwrap();
    let other = (runner + 1) % 3;
    let before = workers[runner].task_starts();
    let (code, body) = workers[other].call("POST", "/connectors/gen-1/tasks/0/restart", None);
    assert_eq!(code, 204, "{body}");
    assert_eq!(
        workers[runner].task_starts(),
        before + 1,
        "the task restarted on {owner}"
    );
    // A connector restart with its tasks, sent to any worker, is done by those running it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) =
            workers[other].call("POST", "/connectors/sink-2/restart?includeTasks=true", None);
        if code == 202 {
            break;
        }
        // 409 while a rebalance is under way.
        assert_eq!(code, 409, "{body}");
        assert!(Instant::now() < deadline, "still 409 after 30 s: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_all_running(&workers[0], &all, Duration::from_secs(30), "restarts");

    // The broker restarted under the running workers.
    let addr = broker.bootstrap.clone();
    broker.terminate();
    broker = BrokerProcess::try_start_on(&broker_dir, &addr, &overrides).unwrap();
    wait_all_running(&workers[0], &all, Duration::from_secs(90), "broker restart");

    // Every record of every pipeline arrived.
    let deadline = Instant::now() + Duration::from_secs(180);
    for i in 0..PIPELINES {
        let out = dir.join(format!("out-{i}.txt"));
        loop {
            let seen = sequences(&out);
            if seen.len() == RECORDS {
                assert_eq!(seen.first(), Some(&0));
                assert_eq!(seen.last(), Some(&(RECORDS as u64 - 1)));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "pipeline {i}: {} of {RECORDS} records; placements {:#?}\nworker 0 log:\n{}",
                seen.len(),
                placements(&workers[0]),
                workers[0].log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // A connector deleted through one worker is gone from all.
    let (code, _) = workers[2].call("DELETE", "/connectors/sink-1", None);
    assert_eq!(code, 204);
    for w in &workers {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (code, _) = w.call("GET", "/connectors/sink-1", None);
            if code == 404 {
                break;
            }
            assert!(Instant::now() < deadline, "sink-1 still on {}", w.rest);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for w in &mut workers {
        w.terminate();
    }
    broker.terminate();
}

/// A worker offering only `eager` (Kafka's `default` protocol) makes the whole group eager:
/// every worker stops its work at each rebalance and gets a fresh assignment, and a
/// killed worker's work moves at once (eager has no scheduled delay).
#[test]
fn an_eager_worker_makes_the_group_eager_and_work_still_moves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let broker = BrokerProcess::start(
        &dir.join("cluster"),
        &["group.initial.rebalance.delay.ms=500"],
    );
    let ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let ids: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut workers = [
        Worker::start_with(
            dir,
            0,
            ports[0],
            &broker.bootstrap,
            "connect.protocol=sessioned",
        ),
        Worker::start_with(
            dir,
            1,
            ports[1],
            &broker.bootstrap,
            "connect.protocol=eager",
        ),
    ];
    let out = dir.join("out.txt");
    for body in [
        json!({"name": "gen-0", "config": {
            "connector.class": "DataGen", "kafka.topic": "eager", "tasks.max": "1",
            "iterations": "3000", "max.interval": "50", "datagen.records.per.poll": "20",
            "datagen.record.bytes": "40"}}),
        json!({"name": "sink-0", "config": {
            "connector.class": "FileStreamSink", "topics": "eager",
            "file": out.display().to_string(), "tasks.max": "1"}}),
    ] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (code, answer) = workers[1].call("POST", "/connectors", Some(&body));
            if code == 201 {
                break;
            }
            assert_eq!(code, 409, "{answer}");
            assert!(Instant::now() < deadline, "still 409 after 30 s: {answer}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let both: Vec<&str> = ids.iter().map(String::as_str).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = placements_of(&workers[0], &["gen-0", "sink-0"]);
        let used: BTreeSet<&String> = p.values().map(|(_, w)| w).collect();
        if p.len() == 4
            && p.values()
                .all(|(s, w)| s == "RUNNING" && both.contains(&w.as_str()))
            && used.len() == 2
        {
            break;
        }
        assert!(Instant::now() < deadline, "not spread: {p:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        workers[0].log_text().contains("protocol=default"),
        "the group did not fall back to the eager protocol:\n{}",
        workers[0].log_tail()
    );
    workers[1].kill();
    let deadline = Instant::now() + Duration::from_millis(SESSION_MS) + Duration::from_secs(20);
    loop {
        let p = placements_of(&workers[0], &["gen-0", "sink-0"]);
        if p.len() == 4 && p.values().all(|(s, w)| s == "RUNNING" && *w == ids[0]) {
            break;
        }
        assert!(Instant::now() < deadline, "no failover: {p:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while sequences(&out).len() < 3000 {
        assert!(
            Instant::now() < deadline,
            "{} of 3000 records",
            sequences(&out).len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    workers[0].terminate();
}
