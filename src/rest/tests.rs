//! The router in-process, without a socket: a real herder on an integrated broker in a
//! temporary directory, with no connector plugins installed — everything that needs no
//! plugin (bad requests, unknown names, fallbacks, health). `tests/it/rest.rs` drives
//! the real binary with the file connectors.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{Value as Json, json};
use tower::ServiceExt;

use super::*;
use crate::broker::server::{BrokerSettings, RunningBroker};
use crate::client::Client;
use crate::plugin::{PluginLoader, SharedRegistry};
use crate::worker::WorkerConfig;

struct World {
    _tmp: tempfile::TempDir,
    broker: RunningBroker,
    state: RestState,
}

impl World {
    async fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let mut settings = BrokerSettings::new(tmp.path().join("data"));
        settings.serve = false;
        let broker = RunningBroker::start(settings).await.unwrap();
        let client = Client::embedded(broker.broker.clone(), tokio::runtime::Handle::current());
        let plugins = SharedRegistry::new(PluginLoader::new(tmp.path().join("cache")).scan(&[]));
        let props = [
            ("key.converter", "StringConverter"),
            ("value.converter", "StringConverter"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (config, _) = WorkerConfig::from_props(&props).unwrap();
        let herder = tokio::task::spawn_blocking(move || Herder::start(config, client, plugins))
            .await
            .unwrap()
            .unwrap();
        let state = RestState::new(herder, "test-cluster".into());
        World {
            _tmp: tmp,
            broker,
            state,
        }
    }

    /// One request; answers the status, the headers and the body as JSON (null when
    /// empty).
    async fn call(
        &self,
        method: &str,
        uri: &str,
        body: Option<(&str, String)>,
    ) -> (StatusCode, HeaderMap, Json) {
        let mut req = Request::builder().method(method).uri(uri);
        let body = match body {
            Some((content_type, text)) => {
                req = req.header("content-type", content_type);
                Body::from(text)
            }
            None => Body::empty(),
        };
        let resp = service(self.state.clone())
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let json = if bytes.is_empty() {
            Json::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{method} {uri}: not JSON ({e}): {bytes:?}"))
        };
        (status, headers, json)
    }

    async fn json(&self, method: &str, uri: &str, body: Json) -> (StatusCode, Json) {
        let (status, _, json) = self
            .call(method, uri, Some(("application/json", body.to_string())))
            .await;
        (status, json)
    }

    /// An error answer: the status, and Kafka's body with the same code.
    async fn error(
        &self,
        method: &str,
        uri: &str,
        body: Option<(&str, String)>,
    ) -> (StatusCode, String) {
        let (status, _, json) = self.call(method, uri, body).await;
        assert!(!status.is_success(), "{method} {uri}: {status} {json}");
        assert_eq!(
            json["error_code"].as_u64(),
            Some(u64::from(status.as_u16())),
            "{method} {uri}: {json}"
        );
        let fields: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(fields, ["error_code", "message"], "{method} {uri}");
        (status, json["message"].as_str().unwrap().to_owned())
    }

    async fn stop(self) {
        let h = self.state.herder().clone();
        tokio::task::spawn_blocking(move || h.shutdown())
            .await
            .unwrap();
        self.broker.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_health_and_fallbacks() {
    let w = World::new().await;
    let (status, _, info) = w.call("GET", "/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        info,
        json!({"version": VERSION, "commit": info["commit"], "kafka_cluster_id": "test-cluster"})
    );

    let (status, _, health) = w.call("GET", "/health", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health["status"], "starting");
    w.state.set_ready();
    let (status, _, health) = w.call("GET", "/health/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "healthy");

    let (status, message) = w.error("GET", "/nothing/here", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(message.contains("/nothing/here"), "{message}");
    let (status, message) = w.error("DELETE", "/connectors", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(message.contains("DELETE"), "{message}");
    let (status, _) = w.error("POST", "/connectors/x/status", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_connectors_and_tasks() {
    let w = World::new().await;
    let (status, _, list) = w.call("GET", "/connectors", None).await;
    assert_eq!((status, list), (StatusCode::OK, json!([])));
    let (status, _, list) = w
        .call("GET", "/connectors/?expand=status&expand=info", None)
        .await;
    assert_eq!((status, list), (StatusCode::OK, json!({})));
    for (method, uri) in [
        ("GET", "/connectors/nope"),
        ("GET", "/connectors/nope/"),
        ("DELETE", "/connectors/nope"),
        ("GET", "/connectors/nope/config"),
        ("GET", "/connectors/nope/status"),
        ("GET", "/connectors/nope/tasks"),
        ("GET", "/connectors/nope/tasks/0/status"),
        ("GET", "/connectors/nope/tasks/zero/status"),
        ("POST", "/connectors/nope/tasks/0/restart"),
        ("POST", "/connectors/nope/restart"),
        ("POST", "/connectors/nope/restart?includeTasks=true"),
        ("PUT", "/connectors/nope/pause"),
        ("PUT", "/connectors/nope/resume"),
        ("PUT", "/connectors/nope/stop"),
        ("GET", "/connectors/nope/offsets"),
    ] {
        let (status, message) = w.error(method, uri, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}: {message}");
        assert!(message.contains("nope"), "{method} {uri}: {message}");
    }
    let (status, _, _) = w
        .call(
            "PATCH",
            "/connectors/nope/config",
            Some(("application/json", "{}".into())),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, message) = w
        .error("POST", "/connectors/nope/restart?onlyFailed=sure", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("onlyFailed"), "{message}");

    let (status, _) = w.error("PATCH", "/connectors/nope/offsets", None).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    let (status, _) = w.error("DELETE", "/connectors/nope/offsets", None).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    let (status, _) = w.error("GET", "/connectors/nope/topics", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_change_nothing() {
    let w = World::new().await;
    let json_body = |text: &str| Some(("application/json", text.to_owned()));
    let cases: Vec<(Option<(&str, String)>, StatusCode, &str)> = vec![
        (None, StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type"),
        (
            Some(("application/x-www-form-urlencoded", "name=x".into())),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/x-www-form-urlencoded",
        ),
        (
            json_body("{\"name\":"),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (json_body("[1]"), StatusCode::BAD_REQUEST, "not an array"),
        (json_body("{}"), StatusCode::BAD_REQUEST, "name is required"),
        (
            json_body(r#"{"name": 5, "config": {}}"#),
            StatusCode::BAD_REQUEST,
            "must be a string",
        ),
        (
            json_body(r#"{"name": "a"}"#),
            StatusCode::BAD_REQUEST,
            "\"config\"",
        ),
        (
            json_body(r#"{"name": "a", "config": []}"#),
            StatusCode::BAD_REQUEST,
            "\"config\"",
        ),
        (
            json_body(
                r#"{"name": "a", "config": {"connector.class": "Nope"}, "initial_state": "ASLEEP"}"#,
            ),
            StatusCode::BAD_REQUEST,
            "initial_state",
        ),
        (
            json_body(r#"{"name": "a", "config": {"connector.class": "Nope", "name": "b"}}"#),
            StatusCode::BAD_REQUEST,
            "doesn't match",
        ),
        (
            json_body(r#"{"name": "a", "config": {"tasks.max": "1"}}"#),
            StatusCode::BAD_REQUEST,
            "connector.class",
        ),
        (
            json_body(r#"{"name": "a", "config": {"connector.class": "NoSuchConnector"}}"#),
            StatusCode::BAD_REQUEST,
            "NoSuchConnector",
        ),
        (
            json_body(r#"{"name": "a", "config": {"connector.class": "X", "k": [1]}}"#),
            StatusCode::BAD_REQUEST,
            "k",
        ),
        (
            Some((
                "application/json",
                format!("{{\"name\": \"{}\"}}", "x".repeat(BODY_LIMIT)),
            )),
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit",
        ),
    ];
    for (body, expected, needle) in cases {
        let shown = body
            .as_ref()
            .map(|(t, b)| format!("{t} {}", &b[..b.len().min(80)]));
        let (status, message) = w.error("POST", "/connectors", body).await;
        assert_eq!(status, expected, "{shown:?}: {message}");
        assert!(
            message.contains(needle),
            "{shown:?}: {message:?} lacks {needle:?}"
        );
    }
    // PUT and PATCH read bodies the same way.
    let (status, _) = w.json("PUT", "/connectors/a/config", json!("text")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = w
        .json(
            "PUT",
            "/connectors/a/config",
            json!({"connector.class": "Nope"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = w
        .json("PATCH", "/connectors/a/config", json!({"x": {"y": 1}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Nothing was created.
    let (_, _, list) = w.call("GET", "/connectors", None).await;
    assert_eq!(list, json!([]));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_without_any_installed() {
    let w = World::new().await;
    let (status, _, list) = w.call("GET", "/connector-plugins", None).await;
    assert_eq!((status, list), (StatusCode::OK, json!([])));
    let (status, _, list) = w
        .call("GET", "/connector-plugins?connectorsOnly=false", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let has = |class: &str, kind: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p["class"] == class && p["type"] == kind && p["version"] == VERSION)
    };
    assert!(has(
        "org.apache.kafka.connect.json.JsonConverter",
        "converter"
    ));
    assert!(has(
        "org.apache.kafka.connect.json.JsonConverter",
        "header_converter"
    ));
    assert!(has(
        "org.apache.kafka.connect.storage.SimpleHeaderConverter",
        "header_converter"
    ));
    assert!(!has(
        "org.apache.kafka.connect.storage.SimpleHeaderConverter",
        "converter"
    ));

    let (status, message) = w.error("GET", "/connector-plugins/Nope/config", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(message.contains("Nope"), "{message}");
    let (status, message) = w
        .error("GET", "/connector-plugins?connectorsOnly=perhaps", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("connectorsOnly"), "{message}");

    let validate = "/connector-plugins/FileStreamSource/config/validate";
    let (status, message) = w.json_error("PUT", validate, json!({"topic": "t"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("contains no connector type"), "{message}");
    let (status, message) = w
        .json_error(
            "PUT",
            validate,
            json!({"connector.class": "FileStreamSink"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("does not match request type"), "{message}");
    let (status, message) = w
        .json_error(
            "PUT",
            validate,
            json!({"connector.class": "FileStreamSource"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "not installed here: {message}"
    );
    w.stop().await;
}

impl World {
    async fn json_error(&self, method: &str, uri: &str, body: Json) -> (StatusCode, String) {
        self.error(method, uri, Some(("application/json", body.to_string())))
            .await
    }
}
