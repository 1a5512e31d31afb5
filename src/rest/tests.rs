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

    let alter = json!({"offsets": [{"partition": {"filename": "f"}, "offset": null}]});
    let (status, message) = w
        .json_error("PATCH", "/connectors/nope/offsets", alter)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{message}");
    let (status, message) = w
        .json_error("PATCH", "/connectors/nope/offsets", json!({"offsets": []}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message.starts_with("Partitions / offsets need to be provided"),
        "{message}"
    );
    let (status, _) = w.error("DELETE", "/connectors/nope/offsets", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w.error("GET", "/connectors/nope/topics", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w.error("PUT", "/connectors/nope/topics/reset", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
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
    assert!(has(
        "org.apache.kafka.connect.transforms.TimestampRouter",
        "transformation"
    ));
    assert!(has(
        "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
        "predicate"
    ));
    let (status, _, keys) = w
        .call(
            "GET",
            "/connector-plugins/org.apache.kafka.connect.transforms.TimestampRouter/config",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .any(|k| k["name"] == "topic.format"),
        "{keys}"
    );

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

/// Every route of the router is in the OpenAPI document and answers from its handler
/// (not the fallbacks), and `GET /openapi.json` serves the same document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_matches_the_router() {
    let w = World::new().await;
    let (status, headers, served) = w.call("GET", "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    let doc: Json = serde_json::from_str(&openapi().to_json().unwrap()).unwrap();
    assert_eq!(served, doc);
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{}", paths.len());
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let uri = path
                .replace("{name}", "nope")
                .replace("{task}", "0")
                .replace("{plugin}", "Nope")
                .replace("{logger}", "root");
            let (status, _, body) = w.call(&method.to_uppercase(), &uri, None).await;
            let fallback = status == StatusCode::METHOD_NOT_ALLOWED
                || body["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("HTTP 404 Not Found: no endpoint"));
            assert!(!fallback, "{method} {path}: {status} {body}");
        }
    }
    w.stop().await;
}
