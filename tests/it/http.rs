//! The HTTP connectors and DataGen loaded as plugins in the real worker, against an HTTP
//! server this test runs on a loopback port (axum, in this process):
//!
//! - DataGen → topic → `HttpSink` in batches; the server fails a request with 503 (retried)
//!   and refuses the batch holding one record with 400: that batch's records go to the dead
//!   letter queue (read back by a file sink), every other record reaches the server once;
//! - a paged API (cursor pagination) → `HttpSource` → topic → file sink; the worker is
//!   stopped in the middle (the server answering 503 past a page) and started again: every
//!   item arrives once, and no page is fetched twice.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::transforms::Worker;

const DEADLINE: Duration = Duration::from_secs(120);

/// A plugin directory with the file, DataGen and HTTP connectors.
pub(crate) fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        crate::support::plugin_dir(
            "file-datagen-http-plugins",
            &[
                "tributary-connector-file",
                "tributary-connector-datagen",
                "tributary-connector-http",
            ],
        )
    })
}

/// One request the server answered: path and query, body, status.
#[derive(Debug, Clone)]
struct Exchange {
    uri: String,
    body: Vec<u8>,
    status: u16,
}

type Handler = dyn Fn(&str, &[u8], usize) -> (u16, String) + Send + Sync;

/// An HTTP server on 127.0.0.1 answering `handler(uri, body, index)`.
struct Server {
    url: String,
    log: Arc<Mutex<Vec<Exchange>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    fn start(
        handler: impl Fn(&str, &[u8], usize) -> (u16, String) + Send + Sync + 'static,
    ) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let log: Arc<Mutex<Vec<Exchange>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let count = Arc::new(AtomicUsize::new(0));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let l = log.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let (handler, log, count) = (handler.clone(), l.clone(), count.clone());
            async move {
                let uri = req.uri().to_string();
                let body = axum::body::to_bytes(req.into_body(), usize::MAX)
                    .await
                    .unwrap_or_default()
                    .to_vec();
                let index = count.fetch_add(1, Ordering::SeqCst);
                let (status, text) = handler(&uri, &body, index);
                log.lock().unwrap().push(Exchange { uri, body, status });
                (axum::http::StatusCode::from_u16(status).unwrap(), text)
            }
        });
        runtime.spawn(async move { axum::serve(listener, app).await });
        Server {
            url,
            log,
            _runtime: runtime,
        }
    }

    fn log(&self) -> Vec<Exchange> {
        self.log.lock().unwrap().clone()
    }
}

/// Start `tributary standalone` with these connector configs; waits for its startup line.
fn start_worker(dir: &Path, connectors: &[(&str, String)]) -> Worker {
    std::fs::write(
        dir.join("worker.properties"),
        format!(
            "broker.data.dir={}\nbroker.listener=none\nplugin.path={}\n\
             key.converter=org.apache.kafka.connect.json.JsonConverter\n\
             key.converter.schemas.enable=false\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter.schemas.enable=false\n\
             offset.flush.interval.ms=200\nlisteners=http://127.0.0.1:0\n",
            dir.join("data").display(),
            plugin_dir().display()
        ),
    )
    .unwrap();
    let mut args = vec![dir.join("worker.properties")];
    for (name, text) in connectors {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, text).unwrap();
        args.push(path);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("worker.log"))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("standalone")
        .args(&args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn tributary standalone");
    let out = child.stdout.take().unwrap();
    let worker = Worker {
        dir: dir.to_path_buf(),
        child,
    };
    let line = std::io::BufReader::new(out)
        .lines()
        .next()
        .and_then(Result::ok);
    assert!(
        line.is_some_and(|l| l.contains("started")),
        "no startup line; log:\n{}",
        worker.log()
    );
    worker
}

/// SIGTERM, and a clean exit within 30 s.
fn terminate(mut worker: Worker) {
    let pid = libc::pid_t::try_from(worker.child.id()).unwrap();
    // SAFETY: our own unreaped child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = worker.child.try_wait().unwrap() {
            assert!(status.success(), "exit {status}; log:\n{}", worker.log());
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no exit within 30 s of SIGTERM; log:\n{}",
            worker.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The sequence number a DataGen `bytes` value starts with (`"000000000042 ..."`).
fn seq_of(value: &str) -> usize {
    value.trim_matches('"')[..12].parse().unwrap()
}

#[test]
fn datagen_into_the_http_sink_with_retries_and_a_dlq() {
    const RECORDS: usize = 300;
    const BAD: usize = 42;
    // The first request fails with 503 (retried); a batch holding record BAD is refused.
    let server = Server::start(|_, body, i| {
        let values: Vec<String> = serde_json::from_slice(body).unwrap_or_default();
        if i == 0 {
            (503, "warming up".to_owned())
        } else if values.iter().any(|v| seq_of(v) == BAD) {
            (400, format!("record {BAD} is not welcome"))
        } else {
            (200, "{}".to_owned())
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let dlq_file = dir.join("dlq.txt");
    let datagen = format!(
        r#"{{"name": "gen", "config": {{
            "connector.class": "io.confluent.kafka.connect.datagen.DatagenConnector",
            "kafka.topic": "events", "iterations": "{RECORDS}", "max.interval": "0",
            "datagen.records.per.poll": "50", "datagen.record.bytes": "30"
        }}}}"#
    );
    let sink = format!(
        r#"{{"name": "http", "config": {{
            "connector.class": "HttpSink", "topics": "events",
            "http.api.url": "{}/ingest",
            "auth.type": "BEARER", "bearer.token": "t0k",
            "batch.max.size": "10", "retry.backoff.ms": "50",
            "errors.tolerance": "all", "errors.log.enable": "true",
            "errors.deadletterqueue.topic.name": "events-dlq",
            "errors.deadletterqueue.context.headers.enable": "true"
        }}}}"#,
        server.url
    );
    let dlq = format!(
        r#"{{"name": "dlq", "config": {{
            "connector.class": "FileStreamSink", "topics": "events-dlq", "file": "{}",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter"
        }}}}"#,
        dlq_file.display()
    );
    let mut worker = start_worker(dir, &[("gen", datagen), ("http", sink), ("dlq", dlq)]);

    // Every record either accepted by the server or in the DLQ.
    let deadline = Instant::now() + DEADLINE;
    let (accepted, refused) = loop {
        let log = server.log();
        let accepted: Vec<usize> = log
            .iter()
            .filter(|e| e.status == 200)
            .flat_map(|e| serde_json::from_slice::<Vec<String>>(&e.body).unwrap())
            .map(|v| seq_of(&v))
            .collect();
        let refused: Vec<usize> = log
            .iter()
            .filter(|e| e.status == 400)
            .flat_map(|e| serde_json::from_slice::<Vec<String>>(&e.body).unwrap())
            .map(|v| seq_of(&v))
            .collect();
        if accepted.len() + refused.len() >= RECORDS {
            break (accepted, refused);
        }
        if let Ok(Some(status)) = worker.child.try_wait() {
            panic!("the worker exited with {status}; log:\n{}", worker.log());
        }
        assert!(
            Instant::now() < deadline,
            "{} accepted, {} refused of {RECORDS}; log:\n{}",
            accepted.len(),
            refused.len(),
            worker.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = server.log();
    assert_eq!(log[0].status, 503);
    assert_eq!(log[0].uri, "/ingest");
    assert!(refused.contains(&BAD));
    assert!(refused.len() <= 10, "one batch refused: {refused:?}");
    let mut all: Vec<usize> = accepted.iter().chain(&refused).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..RECORDS).collect::<Vec<_>>(), "each record once");

    // The refused batch's records are in the DLQ, as consumed.
    let lines = worker.wait_for_lines(&dlq_file, refused.len());
    let mut in_dlq: Vec<usize> = lines.iter().map(|l| seq_of(l)).collect();
    in_dlq.sort_unstable();
    let mut refused = refused;
    refused.sort_unstable();
    assert_eq!(in_dlq, refused);
    let text = worker.log();
    assert!(
        text.contains("HTTP 400") && text.contains("record 42 is not welcome"),
        "the error with the status and body is not logged:\n{text}"
    );
    terminate(worker);
}

#[test]
fn http_source_pages_resume_after_a_restart_without_repeats() {
    const ITEMS: usize = 40;
    const PAGE: usize = 4;
    // Pages by cursor `item-K`; pages from item 20 on answer 503 until `open` is set.
    let open = Arc::new(AtomicUsize::new(0));
    let gate = open.clone();
    let server = Server::start(move |uri, _, _| {
        let from: usize = uri
            .split_once("cursor=item-")
            .map_or(0, |(_, k)| k.parse().unwrap());
        if from >= 20 && gate.load(Ordering::SeqCst) == 0 {
            return (503, "come back later".to_owned());
        }
        let to = (from + PAGE).min(ITEMS);
        let items: Vec<_> = (from..to)
            .map(|n| serde_json::json!({"id": format!("item-{n}"), "n": n}))
            .collect();
        let next = (to < ITEMS).then(|| format!("item-{to}"));
        let body = serde_json::json!({"data": items, "next": next});
        (200, body.to_string())
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = dir.join("out.txt");
    let source = format!(
        r#"{{"name": "api", "config": {{
            "connector.class": "HttpSource", "kafka.topic": "items",
            "http.api.url": "{}/items", "records.pointer": "/data",
            "cursor.pointer": "/next", "record.key.pointer": "/id",
            "poll.interval.ms": "200", "retry.backoff.ms": "100", "retry.backoff.max.ms": "300",
            "max.retries": "1000"
        }}}}"#,
        server.url
    );
    let sink = format!(
        r#"{{"name": "out", "config": {{
            "connector.class": "FileStreamSink", "topics": "items", "file": "{}",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter"
        }}}}"#,
        out.display()
    );
    let connectors = [("api", source), ("out", sink)];
    let mut worker = start_worker(dir, &connectors);
    let first = worker.wait_for_lines(&out, 20);
    assert_eq!(first.len(), 20);
    // The source is now backing off on the 503s; stop in the middle.
    terminate(worker);

    open.store(1, Ordering::SeqCst);
    let mut worker = start_worker(dir, &connectors);
    let lines = worker.wait_for_lines(&out, ITEMS);
    let ns: Vec<u64> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["n"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(
        ns,
        (0..ITEMS as u64).collect::<Vec<_>>(),
        "every item once, in order"
    );
    // Every page answered once, but the last, which is polled for new items.
    let answered: Vec<String> = server
        .log()
        .iter()
        .filter(|e| e.status == 200)
        .map(|e| e.uri.clone())
        .collect();
    let last = format!("/items?cursor=item-{}", ITEMS - PAGE);
    let mut pages: Vec<&String> = answered.iter().filter(|u| **u != last).collect();
    let n = pages.len();
    pages.sort();
    pages.dedup();
    assert_eq!(pages.len(), n, "a page fetched twice: {answered:?}");
    assert_eq!(n, ITEMS / PAGE - 1, "{answered:?}");
    terminate(worker);
}
