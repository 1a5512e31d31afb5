//! The HTTP sink's benchmark (run by `scripts/bench/http.sh`): records per second from a
//! topic of the real worker into an HTTP server that accepts and discards, in batches of
//! 500, beside the machine's own reference measured in the same run: a plain client
//! posting the same bodies to the same server, as concurrently. Also DataGen's raw
//! records per second (its task polled in this process, no worker).
//!
//! Per run: `tributary standalone` starts with DataGen writing N 100-byte values into
//! topic `bench`; once its offsets say all N are in, `HttpSink` is created over REST and
//! timed until the server has received all N records. Then the reference posts N records
//! in the same bodies. Medians of the runs are printed.
//!
//! ```text
//! bench --tributary target/release/tributary --plugins DIR [--records N] [--runs R]
//! ```

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tributary_plugin_sdk::testing::config;

const BATCH: usize = 500;
const IN_FLIGHT: usize = 4;
const VALUE_BYTES: usize = 100;

/// The discard server: counts the records it receives (values are JSON strings without
/// quotes inside: two quotes per record) and answers 200.
struct Discard {
    url: String,
    records: Arc<AtomicU64>,
    /// When the first request since the last reset arrived.
    first: Arc<std::sync::Mutex<Option<Instant>>>,
    _runtime: tokio::runtime::Runtime,
}

fn discard_server() -> Discard {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let records = Arc::new(AtomicU64::new(0));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/ingest", listener.local_addr().unwrap());
    let count = records.clone();
    let first: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let first_seen = first.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let count = count.clone();
        let first_seen = first_seen.clone();
        async move {
            first_seen.lock().unwrap().get_or_insert_with(Instant::now);
            let quotes = body.iter().filter(|&&b| b == b'"').count() as u64;
            count.fetch_add(quotes / 2, Ordering::Relaxed);
            "{}"
        }
    });
    runtime.spawn(async move { axum::serve(listener, app).await });
    Discard {
        url,
        records,
        first,
        _runtime: runtime,
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One HTTP call to the worker's REST API.
fn rest(
    client: &reqwest::Client,
    runtime: &tokio::runtime::Runtime,
    method: reqwest::Method,
    url: &str,
    body: Option<String>,
) -> (u16, String) {
    runtime.block_on(async {
        let mut r = client.request(method, url);
        if let Some(b) = body {
            r = r
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b);
        }
        let resp = r.send().await.expect("REST call");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    })
}

/// One run of the worker: records/s of the sink from its creation (task start and group
/// join included), and from the first request to the last record.
fn sink_run(tributary: &Path, plugins: &Path, n: u64, server: &Discard) -> (f64, f64) {
    let tmp = std::env::temp_dir().join(format!("tributary-http-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(
        tmp.join("worker.properties"),
        format!(
            "broker.data.dir={}\nbroker.listener=none\nplugin.path={}\n\
             key.converter=org.apache.kafka.connect.json.JsonConverter\n\
             key.converter.schemas.enable=false\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter.schemas.enable=false\n\
             offset.flush.interval.ms=1000\nlisteners=http://127.0.0.1:0\n",
            tmp.join("data").display(),
            plugins.display()
        ),
    )
    .unwrap();
    std::fs::write(
        tmp.join("gen.json"),
        format!(
            r#"{{"name": "gen", "config": {{"connector.class": "DataGen", "kafka.topic": "bench",
                "iterations": "{n}", "max.interval": "0", "datagen.records.per.poll": "5000",
                "datagen.record.bytes": "{VALUE_BYTES}"}}}}"#
        ),
    )
    .unwrap();
    let mut child = Command::new(tributary)
        .arg("standalone")
        .arg(tmp.join("worker.properties"))
        .arg(tmp.join("gen.json"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(tmp.join("worker.log")).unwrap())
        .spawn()
        .expect("spawn tributary");
    let line = std::io::BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .and_then(Result::ok)
        .expect("startup line");
    let api = line
        .split_once("rest ")
        .and_then(|(_, r)| r.strip_suffix(')'))
        .expect("REST address")
        .to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    // Wait for DataGen's last offset: all N records are in the topic.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (_, body) = rest(
            &client,
            &runtime,
            reqwest::Method::GET,
            &format!("{api}/connectors/gen/offsets"),
            None,
        );
        if body.contains(&format!("\"seq\":{}", n - 1)) {
            break;
        }
        assert!(Instant::now() < deadline, "datagen did not finish: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = server.records.load(Ordering::SeqCst);
    *server.first.lock().unwrap() = None;
    let started = Instant::now();
    let (status, body) = rest(
        &client,
        &runtime,
        reqwest::Method::POST,
        &format!("{api}/connectors"),
        Some(format!(
            r#"{{"name": "http", "config": {{"connector.class": "HttpSink", "topics": "bench",
                "http.api.url": "{}", "batch.max.size": "{BATCH}",
                "max.in.flight.requests": "{IN_FLIGHT}"}}}}"#,
            server.url
        )),
    );
    assert_eq!(status, 201, "{body}");
    while server.records.load(Ordering::SeqCst) - before < n {
        assert!(
            Instant::now() < deadline,
            "the sink delivered {} of {n}",
            server.records.load(Ordering::SeqCst) - before
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let secs = started.elapsed().as_secs_f64();
    let first = server.first.lock().unwrap().expect("a request arrived");
    let steady = first.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&tmp);
    (n as f64 / secs, n as f64 / steady)
}

/// The reference: the same bodies posted by a plain client, as concurrently.
fn reference_run(n: u64, server: &Discard) -> f64 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let value = format!("\"{}\"", "x".repeat(VALUE_BYTES));
    let body = bytes::Bytes::from(format!("[{}]", vec![value; BATCH].join(",")));
    let requests = n.div_ceil(BATCH as u64);
    let before = server.records.load(Ordering::SeqCst);
    let started = Instant::now();
    runtime.block_on(async {
        let next = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..IN_FLIGHT {
            let (client, body, next, url) = (
                client.clone(),
                body.clone(),
                next.clone(),
                server.url.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    let r = client
                        .post(&url)
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("post");
                    assert!(r.status().is_success());
                    let _ = r.bytes().await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let got = server.records.load(Ordering::SeqCst) - before;
    assert!(got >= n);
    got as f64 / secs
}

/// DataGen's task polled in this process (its `poll` called directly, no boundary
/// crossing): records/s of one generator.
fn datagen_run(quickstart: &str, n: u64) -> f64 {
    use tributary_plugin_sdk::SourceTask;
    let cfg = config(&[
        ("kafka.topic", "t"),
        ("quickstart", quickstart),
        ("max.interval", "0"),
        ("datagen.records.per.poll", "5000"),
        ("datagen.record.bytes", "100"),
    ]);
    let mut task = tributary_connector_datagen::DataGenTask::default();
    task.start(cfg).unwrap();
    let started = Instant::now();
    let mut got = 0u64;
    while got < n {
        got += task.poll().unwrap().len() as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    task.stop().unwrap();
    got as f64 / secs
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tributary = PathBuf::from(arg(&args, "--tributary").expect("--tributary PATH"));
    let plugins = PathBuf::from(arg(&args, "--plugins").expect("--plugins DIR"));
    let n: u64 = arg(&args, "--records").map_or(1_000_000, |v| v.parse().unwrap());
    let runs: usize = arg(&args, "--runs").map_or(3, |v| v.parse().unwrap());
    let server = discard_server();
    let (mut whole, mut sink, mut reference, mut ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        let (w, s) = sink_run(&tributary, &plugins, n, &server);
        let r = reference_run(n, &server);
        println!(
            "run {run}: HttpSink {s:.0} records/s ({w:.0} with its start), reference client {r:.0} records/s, ratio {:.3}",
            s / r
        );
        whole.push(w);
        sink.push(s);
        reference.push(r);
        ratios.push(s / r);
    }
    println!(
        "\nHttpSink, {n} records of {VALUE_BYTES} B, batch {BATCH}, {IN_FLIGHT} in flight (median of {runs}):"
    );
    println!(
        "| HttpSink records/s (first request to last record) | with task start and group join | reference client records/s | ratio |\n|---|---|---|---|\n| {:.0} | {:.0} | {:.0} | {:.3} |",
        median(sink),
        median(whole),
        median(reference),
        median(ratios)
    );
    println!("\nDataGen raw (one task polled in-process, median of {runs}):");
    println!("| generator | records/s |\n|---|---|");
    for q in ["bytes", "pageviews", "users", "orders", "clickstream"] {
        let r: Vec<f64> = (0..runs).map(|_| datagen_run(q, 1_000_000)).collect();
        println!("| {q} | {:.0} |", median(r));
    }
}
