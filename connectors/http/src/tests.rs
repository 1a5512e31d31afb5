//! The connectors against a real HTTP server on a loopback port (axum, in this process),
//! driven through the SDK's harness: the same boundary crossings as in the worker.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Response, StatusCode};
use tributary_plugin_sdk::testing::{HarnessError, SinkHarness, SourceHarness, config};
use tributary_plugin_sdk::{Data, OffsetMap, SinkRecord, TopicPartition, Value};

use crate::{HttpSink, HttpSource};

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub at: Instant,
}

/// What the server answers: status, extra headers, body.
pub type Answer = (u16, Vec<(&'static str, String)>, String);
type Handler = dyn Fn(&Seen, usize) -> Answer + Send + Sync;

#[derive(Clone)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    handler: Arc<Handler>,
    /// Delay each answer this long (for timeouts), per request index.
    delay: Arc<dyn Fn(usize) -> Duration + Send + Sync>,
}

/// A server on 127.0.0.1, answering with `handler(request, index)`.
pub struct Server {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    _runtime: tokio::runtime::Runtime,
}

async fn handle(State(s): State<Shared>, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts.headers,
        body,
        at: Instant::now(),
    };
    let index = {
        let mut all = s.seen.lock().unwrap();
        all.push(seen.clone());
        all.len() - 1
    };
    let delay = (s.delay)(index);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (status, headers, body) = (s.handler)(&seen, index);
    let mut r = Response::builder().status(StatusCode::from_u16(status).unwrap());
    for (k, v) in headers {
        r = r.header(k, v);
    }
    r.body(Body::from(body)).unwrap()
}

impl Server {
    pub fn start(handler: impl Fn(&Seen, usize) -> Answer + Send + Sync + 'static) -> Server {
        Server::start_with_delay(handler, |_| Duration::ZERO)
    }

    pub fn start_with_delay(
        handler: impl Fn(&Seen, usize) -> Answer + Send + Sync + 'static,
        delay: impl Fn(usize) -> Duration + Send + Sync + 'static,
    ) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            seen: seen.clone(),
            handler: Arc::new(handler),
            delay: Arc::new(delay),
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(handle).with_state(shared);
        runtime.spawn(async move { axum::serve(listener, app).await });
        Server {
            url: format!("http://{addr}"),
            seen,
            _runtime: runtime,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn ok() -> Answer {
    (200, Vec::new(), "{}".to_owned())
}

/// Records whose values are `{"id": i}` maps, on partition 0 of `t`.
fn records(range: std::ops::Range<i64>) -> Vec<SinkRecord> {
    range
        .map(|i| {
            SinkRecord::new(
                "t",
                0,
                i,
                Data::schemaless(Value::Map(vec![(
                    Value::String("id".into()),
                    Value::Int64(i),
                )])),
            )
        })
        .collect()
}

fn sink(url: &str, extra: &[(&str, &str)]) -> SinkHarness<HttpSink> {
    let mut pairs = vec![
        ("http.api.url", url),
        ("topics", "t"),
        ("retry.backoff.ms", "20"),
        ("retry.backoff.max.ms", "200"),
    ];
    pairs.extend_from_slice(extra);
    let mut h = SinkHarness::<HttpSink>::start(config(&pairs), 1).unwrap();
    h.open(0, &[TopicPartition::new("t", 0)]).unwrap();
    h
}

fn ids(body: &[u8]) -> Vec<i64> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn sink_batches_in_each_request_format() {
    let server = Server::start(|_, _| ok());
    let url = format!("{}/events", server.url);
    let mut h = sink(
        &url,
        &[("batch.max.size", "3"), ("max.in.flight.requests", "1")],
    );
    h.put(0, records(0..7)).unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    let batches: Vec<Vec<i64>> = seen.iter().map(|s| ids(&s.body)).collect();
    assert_eq!(batches, [vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
    for s in &seen {
        assert_eq!((s.method.as_str(), s.uri.as_str()), ("POST", "/events"));
        assert_eq!(s.headers["content-type"], "application/json");
    }
    h.stop().unwrap();

    let server = Server::start(|_, _| ok());
    let mut h = sink(
        &server.url,
        &[
            ("batch.max.size", "2"),
            ("request.format", "ndjson"),
            ("request.method", "PUT"),
        ],
    );
    h.put(0, records(0..3)).unwrap();
    let mut bodies: Vec<String> = server
        .seen()
        .iter()
        .map(|s| {
            assert_eq!(s.method, "PUT");
            assert_eq!(s.headers["content-type"], "application/x-ndjson");
            String::from_utf8(s.body.clone()).unwrap()
        })
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["{\"id\":0}\n{\"id\":1}\n", "{\"id\":2}\n"]);
    h.stop().unwrap();

    let server = Server::start(|_, _| ok());
    let mut h = sink(
        &server.url,
        &[("batch.max.size", "50"), ("request.format", "single")],
    );
    h.put(0, records(0..3)).unwrap();
    let mut bodies: Vec<String> = server
        .seen()
        .iter()
        .map(|s| String::from_utf8(s.body.clone()).unwrap())
        .collect();
    bodies.sort();
    assert_eq!(bodies, [r#"{"id":0}"#, r#"{"id":1}"#, r#"{"id":2}"#]);
    h.stop().unwrap();
}

#[test]
fn sink_concurrency_is_bounded_per_task() {
    // Every answer waits 100 ms; 8 batches with 2 in flight take 4 rounds.
    let in_flight = Arc::new(Mutex::new((0usize, 0usize)));
    let counter = in_flight.clone();
    let server = Server::start_with_delay(
        move |_, _| {
            counter.lock().unwrap().0 -= 1;
            ok()
        },
        {
            let c = in_flight.clone();
            move |_| {
                let mut c = c.lock().unwrap();
                c.0 += 1;
                c.1 = c.1.max(c.0);
                Duration::from_millis(100)
            }
        },
    );
    let mut h = sink(
        &server.url,
        &[("batch.max.size", "1"), ("max.in.flight.requests", "2")],
    );
    h.put(0, records(0..8)).unwrap();
    assert_eq!(server.seen().len(), 8);
    assert_eq!(in_flight.lock().unwrap().1, 2, "most requests at once");
    h.stop().unwrap();
}

#[test]
fn sink_retries_5xx_408_429_and_honours_retry_after() {
    // Each status fails the first request once, then the retry is accepted.
    for status in [500u16, 502, 503, 408, 429] {
        let server = Server::start(move |_, i| {
            if i == 0 {
                let headers = if status == 429 {
                    vec![("retry-after", "1".to_owned())]
                } else {
                    Vec::new()
                };
                (status, headers, "try later".to_owned())
            } else {
                ok()
            }
        });
        let mut h = sink(&server.url, &[("batch.max.size", "10")]);
        h.put(0, records(0..4)).unwrap();
        let seen = server.seen();
        assert_eq!(seen.len(), 2, "status {status}: one retry");
        assert_eq!(ids(&seen[1].body), [0, 1, 2, 3], "the same batch again");
        let gap = seen[1].at - seen[0].at;
        if status == 429 {
            assert!(
                gap >= Duration::from_millis(950),
                "Retry-After: 1 waited {gap:?}"
            );
        } else {
            assert!(
                gap < Duration::from_millis(900),
                "{status}: backoff {gap:?}"
            );
        }
        assert!(h.requests(0).reported.is_empty());
        // Committing after put: every offset (the server accepted every batch).
        let offsets = [(TopicPartition::new("t", 0), 4)].into();
        assert_eq!(h.pre_commit(0, offsets).unwrap().len(), 1);
        h.stop().unwrap();
    }
}

#[test]
fn sink_retries_connection_errors_and_timeouts_then_gives_up() {
    // Nothing listens at first: connection refused, retried until the server is up.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/late");
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let hits = Arc::new(Mutex::new(0usize));
        let h2 = hits.clone();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap();
            let app = axum::Router::new().fallback(move || {
                let h2 = h2.clone();
                async move {
                    *h2.lock().unwrap() += 1;
                    "ok"
                }
            });
            let serve = axum::serve(listener, app);
            let _ = tokio::time::timeout(Duration::from_secs(5), serve).await;
        });
        *hits.lock().unwrap()
    });
    let mut h = sink(
        &url,
        &[
            ("retry.backoff.ms", "50"),
            ("retry.backoff.max.ms", "100"),
            ("max.retries", "60"),
        ],
    );
    h.put(0, records(0..2)).unwrap();
    assert_eq!(
        starter.join().unwrap(),
        2,
        "each of the two batches accepted once, after the refusals"
    );
    h.stop().unwrap();

    // The first answer takes longer than the request timeout: retried.
    let server = Server::start_with_delay(
        |_, _| ok(),
        |i| {
            if i == 0 {
                Duration::from_millis(1500)
            } else {
                Duration::ZERO
            }
        },
    );
    let mut h = sink(&server.url, &[("http.request.timeout.ms", "300")]);
    h.put(0, records(0..1)).unwrap();
    assert_eq!(server.seen().len(), 2);
    h.stop().unwrap();

    // Always 503: gives up after max.retries, failing the task (not reporting records).
    let server = Server::start(|_, _| (503, Vec::new(), "down".to_owned()));
    let mut h = sink(&server.url, &[("max.retries", "2")]);
    let e = h.put(0, records(0..1)).unwrap_err();
    let HarnessError::Failed { retriable, message } = e else {
        panic!("{e:?}")
    };
    assert!(!retriable);
    assert!(message.contains("HTTP 503: down"), "{message}");
    assert!(message.contains("gave up after 2 retries"), "{message}");
    assert_eq!(server.seen().len(), 3);
    assert!(h.requests(0).reported.is_empty());
}

#[test]
fn sink_reports_records_the_server_refuses_with_4xx() {
    // Batches holding id 3 are refused with 400 and a body naming the problem.
    let server = Server::start(|s, _| {
        if ids(&s.body).contains(&3) {
            (400, Vec::new(), r#"{"error":"id 3 is invalid"}"#.to_owned())
        } else {
            ok()
        }
    });
    let mut h = sink(&server.url, &[("batch.max.size", "2")]);
    h.put(0, records(0..6)).unwrap();
    assert_eq!(server.seen().len(), 3, "no retry of a 400");
    let reported = h.requests(0).reported;
    let at: Vec<i64> = reported.iter().map(|(_, o, _)| *o).collect();
    assert_eq!(at, [2, 3], "the records of the refused batch");
    for (tp, _, message) in &reported {
        assert_eq!(tp, &TopicPartition::new("t", 0));
        assert!(message.contains("HTTP 400"), "{message}");
        assert!(
            message.contains(r#"{"error":"id 3 is invalid"}"#),
            "{message}"
        );
    }
    h.stop().unwrap();
}

#[test]
fn sink_sends_auth_and_configured_headers() {
    let server = Server::start(|_, _| ok());
    let mut h = sink(
        &server.url,
        &[
            ("auth.type", "BASIC"),
            ("connection.user", "alice"),
            ("connection.password", "s3cret"),
            ("headers", "X-Team: data|X-Env:test"),
        ],
    );
    h.put(0, records(0..1)).unwrap();
    let s = &server.seen()[0];
    // base64("alice:s3cret")
    assert_eq!(s.headers["authorization"], "Basic YWxpY2U6czNjcmV0");
    assert_eq!(s.headers["x-team"], "data");
    assert_eq!(s.headers["x-env"], "test");
    h.stop().unwrap();

    let server = Server::start(|_, _| ok());
    let mut h = sink(
        &server.url,
        &[("auth.type", "BEARER"), ("bearer.token", "tok-123")],
    );
    h.put(0, records(0..1)).unwrap();
    assert_eq!(server.seen()[0].headers["authorization"], "Bearer tok-123");
    h.stop().unwrap();

    // BEARER without a token: refused at start, naming the key.
    let e = SinkHarness::<HttpSink>::start(
        config(&[
            ("http.api.url", "http://127.0.0.1:1/"),
            ("topics", "t"),
            ("auth.type", "BEARER"),
        ]),
        1,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("bearer.token"), "{e}");
}

/// A paged API of `n` items, `size` per page, by cursor: `?cursor=K` starts at item K;
/// the last page has no cursor.
fn paged(n: usize, size: usize) -> impl Fn(&Seen, usize) -> Answer + Send + Sync {
    move |s, _| {
        let from: usize = s
            .uri
            .split_once("cursor=")
            .map_or(0, |(_, c)| c.trim_start_matches("item-").parse().unwrap());
        let to = (from + size).min(n);
        let items: Vec<_> = (from..to)
            .map(|i| serde_json::json!({"id": format!("item-{i}"), "n": i}))
            .collect();
        let next = (to < n).then(|| format!("item-{to}"));
        let body = serde_json::json!({"data": items, "next_cursor": next});
        (200, Vec::new(), body.to_string())
    }
}

fn source(url: &str, extra: &[(&str, &str)]) -> tributary_plugin_sdk::RawConfig {
    let mut pairs = vec![
        ("http.api.url", url),
        ("kafka.topic", "items"),
        ("records.pointer", "/data"),
        ("record.key.pointer", "/id"),
        ("poll.interval.ms", "50"),
        ("retry.backoff.ms", "20"),
    ];
    pairs.extend_from_slice(extra);
    config(&pairs)
}

fn numbers(records: &[tributary_plugin_sdk::SourceRecord]) -> Vec<i64> {
    records
        .iter()
        .map(|r| match &r.value.value {
            Value::Map(m) => m
                .iter()
                .find_map(|(k, v)| match (k, v) {
                    (Value::String(k), Value::Int64(n)) if k == "n" => Some(*n),
                    _ => None,
                })
                .unwrap(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn source_follows_cursors_and_resumes_after_a_restart_mid_page() {
    let server = Server::start(paged(23, 5));
    let url = format!("{}/items", server.url);
    let cfg = source(&url, &[("cursor.pointer", "/next_cursor")]);
    let mut h = SourceHarness::<HttpSource>::start(cfg.clone(), 1).unwrap();
    // Two pages, then a stop with the offsets of the first 7 records committed: in the
    // middle of the second page.
    let mut first = h.poll_records(0, 10, 10).unwrap();
    assert_eq!(numbers(&first), (0..10).collect::<Vec<_>>());
    assert_eq!(first[0].key, Data::string("item-0"));
    first.truncate(7);
    let partition: OffsetMap = [("url".to_owned(), Value::String(url.clone()))].into();
    let committed = first[6].source_offset.clone();
    h.stop().unwrap();
    let before = server.seen().len();

    let mut h =
        SourceHarness::<HttpSource>::start_with_offsets(cfg, 1, [(partition.clone(), committed)])
            .unwrap();
    let rest = h.poll_records(0, 16, 20).unwrap();
    assert_eq!(
        numbers(&rest),
        (7..23).collect::<Vec<_>>(),
        "every item once, none skipped"
    );
    // The page of the restart was asked again (its last 3 records), each other once.
    let uris: Vec<String> = server.seen()[before..]
        .iter()
        .map(|s| s.uri.clone())
        .collect();
    assert_eq!(
        uris[..4],
        [
            "/items?cursor=item-5",
            "/items?cursor=item-10",
            "/items?cursor=item-15",
            "/items?cursor=item-20"
        ]
    );
    // At the end: the last page is asked again after poll.interval.ms, nothing new.
    assert!(h.poll_records(0, 1, 3).unwrap().is_empty());
    h.commit(0).unwrap();
    assert_eq!(
        h.committed_offset(&partition),
        Some(
            [
                ("cursor".to_owned(), Value::String("item-20".into())),
                ("skip".to_owned(), Value::Int64(3))
            ]
            .into()
        )
    );
    h.stop().unwrap();
}

#[test]
fn source_pages_by_next_link_and_by_offset() {
    // Next links: /feed?page=K, 3 pages of 2.
    let server = Server::start(|s, _| {
        let page: usize = s
            .uri
            .split_once("page=")
            .map_or(0, |(_, p)| p.parse().unwrap());
        let items: Vec<_> = (page * 2..page * 2 + 2)
            .map(|n| serde_json::json!({"n": n}))
            .collect();
        let next = (page < 2).then(|| format!("/feed?page={}", page + 1));
        let body = serde_json::json!({"data": items, "links": {"next": next}});
        (200, Vec::new(), body.to_string())
    });
    let cfg = source(
        &format!("{}/feed", server.url),
        &[("next.pointer", "/links/next")],
    );
    let mut h = SourceHarness::<HttpSource>::start(cfg, 1).unwrap();
    let got = h.poll_records(0, 6, 10).unwrap();
    assert_eq!(numbers(&got), [0, 1, 2, 3, 4, 5]);
    h.stop().unwrap();

    // Offsets: ?from=K answers items K.. (at most 4), 10 in all.
    let server = Server::start(|s, _| {
        let from: i64 = s
            .uri
            .split_once("from=")
            .map_or(0, |(_, p)| p.parse().unwrap());
        let items: Vec<_> = (from..(from + 4).min(10))
            .map(|n| serde_json::json!({"n": n}))
            .collect();
        (
            200,
            Vec::new(),
            serde_json::json!({"data": items}).to_string(),
        )
    });
    let cfg = source(&server.url, &[("offset.param", "from")]);
    let mut h = SourceHarness::<HttpSource>::start(cfg.clone(), 1).unwrap();
    let got = h.poll_records(0, 6, 10).unwrap();
    assert_eq!(numbers(&got)[..6], [0, 1, 2, 3, 4, 5]);
    let committed = got[5].source_offset.clone();
    h.stop().unwrap();
    let partition: OffsetMap = [("url".to_owned(), Value::String(server.url.clone()))].into();
    let mut h =
        SourceHarness::<HttpSource>::start_with_offsets(cfg, 1, [(partition, committed)]).unwrap();
    let rest = h.poll_records(0, 4, 10).unwrap();
    assert_eq!(numbers(&rest), [6, 7, 8, 9]);
    h.stop().unwrap();
}

#[test]
fn source_backs_off_on_errors_and_fails_on_4xx() {
    // 503 with Retry-After: 1, then the page.
    let server = Server::start(|s, i| {
        if i == 0 {
            (
                503,
                vec![("retry-after", "1".to_owned())],
                "busy".to_owned(),
            )
        } else {
            paged(2, 5)(s, i)
        }
    });
    let mut h = SourceHarness::<HttpSource>::start(source(&server.url, &[]), 1).unwrap();
    let got = h.poll_records(0, 2, 20).unwrap();
    assert_eq!(numbers(&got), [0, 1]);
    let seen = server.seen();
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(950));
    h.stop().unwrap();

    // A rate limit spaces the requests of consecutive pages.
    let server = Server::start(paged(6, 1));
    let mut h = SourceHarness::<HttpSource>::start(
        source(
            &server.url,
            &[
                ("cursor.pointer", "/next_cursor"),
                ("max.requests.per.second", "10"),
            ],
        ),
        1,
    )
    .unwrap();
    assert_eq!(h.poll_records(0, 6, 40).unwrap().len(), 6);
    let seen = server.seen();
    for w in seen.windows(2) {
        assert!(
            w[1].at - w[0].at >= Duration::from_millis(70),
            "{:?}",
            w[1].at - w[0].at
        );
    }
    h.stop().unwrap();

    // 401: the task fails, with the status and body.
    let server = Server::start(|_, _| (401, Vec::new(), "who are you".to_owned()));
    let mut h = SourceHarness::<HttpSource>::start(source(&server.url, &[]), 1).unwrap();
    let e = h.poll(0).unwrap_err().to_string();
    assert!(e.contains("HTTP 401: who are you"), "{e}");
    h.stop().unwrap();
}

#[test]
fn connector_names() {
    let names: BTreeSet<&str> = [
        <HttpSink as tributary_plugin_sdk::SinkConnector>::NAME,
        <HttpSource as tributary_plugin_sdk::SourceConnector>::NAME,
    ]
    .into();
    assert!(names.contains("io.tributary.connect.http.HttpSinkConnector"));
    assert!(names.contains("io.tributary.connect.http.HttpSourceConnector"));
}
