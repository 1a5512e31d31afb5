//! The REST API of a real `tributary standalone` worker, through HTTP: every endpoint,
//! its success and error answers, each body compared with the shape Kafka Connect
//! documents (field names and types, status codes), with the file connectors moving
//! lines from a file through a topic into another file meanwhile.
//!
//! The client is a few lines of HTTP/1.1 over `TcpStream` (one request per connection,
//! `Connection: close`), so what is tested is exactly what goes over the wire.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use super::standalone::file_plugin_dir;

/// How long anything asynchronous may take (a debug build on a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(60);
const LINES: usize = 200;

/// An HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    /// The body as JSON; `Null` when empty.
    body: Json,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Kafka's error body, with `error_code` equal to the status; answers the message.
    fn error(&self, status: u16) -> &str {
        assert_eq!(self.status, status, "{self:?}");
        let fields: Vec<&String> = self
            .body
            .as_object()
            .expect("an error body")
            .keys()
            .collect();
        assert_eq!(fields, ["error_code", "message"], "{self:?}");
        assert_eq!(self.body["error_code"], status, "{self:?}");
        self.body["message"].as_str().expect("a message")
    }
}

/// A `tributary standalone` child process and its REST address.
struct Worker {
    child: Option<Child>,
    dir: PathBuf,
    rest: String,
}

impl Worker {
    fn start(dir: &Path) -> Worker {
        Worker::start_with(dir, "")
    }

    /// A worker with `extra` lines added to its properties.
    fn start_with(dir: &Path, extra: &str) -> Worker {
        std::fs::write(
            dir.join("worker.properties"),
            format!(
                "broker.data.dir={}\nbroker.listener=none\nplugin.path={}\n\
                 key.converter=org.apache.kafka.connect.storage.StringConverter\n\
                 value.converter=org.apache.kafka.connect.storage.StringConverter\n\
                 offset.flush.interval.ms=200\nlisteners=http://127.0.0.1:0\n\
                 task.restart.backoff.initial.ms=60000\ntask.restart.backoff.max.ms=60000\n\
                 config.providers=env\n\
                 config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider\n\
                 {extra}\n",
                dir.join("data").display(),
                file_plugin_dir().display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("worker.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("standalone")
            .arg(dir.join("worker.properties"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env("TRIBUTARY_REST_TEST_SECRET", "s3cr3t-not-a-number")
            .env("TRIBUTARY_REST_TEST_BATCH", "9")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn tributary standalone");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        let mut worker = Worker {
            child: Some(child),
            dir: dir.to_path_buf(),
            rest: String::new(),
        };
        let line = lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("no startup line ({e}); log:\n{}", worker.log()));
        // tributary standalone worker started in N ms (broker ADDR, rest http://IP:PORT)
        assert!(
            line.starts_with("tributary standalone worker started in "),
            "{line}"
        );
        let rest = line
            .split_once(", rest http://")
            .and_then(|(_, r)| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("no REST address in {line:?}"));
        assert!(!rest.ends_with(":0"), "the bound port, not 0: {line}");
        worker.rest = rest.to_owned();
        worker
    }

    fn log(&self) -> String {
        let text = std::fs::read(self.dir.join("worker.log")).unwrap_or_default();
        let start = text.len().saturating_sub(6000);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    /// One request; `body` is sent with `Content-Type: content_type`.
    fn raw(&self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> Answer {
        let mut stream = TcpStream::connect(&self.rest).expect("connect to the REST port");
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n",
            self.rest
        )
        .into_bytes();
        match body {
            Some((content_type, bytes)) => {
                req.extend(
                    format!(
                        "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                        bytes.len()
                    )
                    .bytes(),
                );
                req.extend_from_slice(bytes);
            }
            None => req.extend(b"Content-Length: 0\r\n\r\n"),
        }
        // A refused body may be answered before it is all sent: write what goes.
        let _ = stream.write_all(&req);
        let mut resp = Vec::new();
        let _ = stream.read_to_end(&mut resp);
        parse_response(&resp).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: {e}: {:?}; log:\n{}",
                String::from_utf8_lossy(&resp),
                self.log()
            )
        })
    }

    fn get(&self, path: &str) -> Answer {
        self.raw("GET", path, None)
    }

    fn send(&self, method: &str, path: &str, body: &Json) -> Answer {
        self.raw(
            method,
            path,
            Some(("application/json", body.to_string().as_bytes())),
        )
    }

    /// `GET path`, expecting 200.
    fn ok(&self, path: &str) -> Json {
        let a = self.get(path);
        assert_eq!(a.status, 200, "GET {path}: {a:?}");
        a.body
    }

    /// Poll `GET path` until `f` holds for its body.
    fn until(&self, what: &str, path: &str, f: impl Fn(&Json) -> bool) -> Json {
        let deadline = Instant::now() + WAIT;
        loop {
            let a = self.get(path);
            if a.status == 200 && f(&a.body) {
                return a.body;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: GET {path} is still {a:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn terminate(mut self) {
        let mut child = self.child.take().unwrap();
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        // SAFETY: our own unreaped child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "exit {status}; log:\n{}", self.log());
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("no exit within 30 s of SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn parse_response(bytes: &[u8]) -> Result<Answer, String> {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&bytes[..split]).map_err(|e| e.to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("no status line")?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = bytes[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("bad chunk")?;
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..end]).unwrap_or("x"), 16)
                .map_err(|_| "bad chunk size")?;
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[end + 2..end + 2 + size]);
            rest = &rest[end + 2 + size + 2..];
        }
        body = out;
    }
    let body = if body.is_empty() {
        Json::Null
    } else {
        let ct = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str());
        if ct != Some("application/json") {
            return Err(format!("a body of type {ct:?}, not application/json"));
        }
        serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))?
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// The keys of a JSON object, sorted.
fn keys(v: &Json) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// A status's connector and task states.
fn states(status: &Json) -> (String, Vec<String>) {
    let s = |v: &Json| v["state"].as_str().unwrap_or_default().to_owned();
    (
        s(&status["connector"]),
        status["tasks"]
            .as_array()
            .map(|t| t.iter().map(s).collect())
            .unwrap_or_default(),
    )
}

fn running(status: &Json) -> bool {
    states(status) == ("RUNNING".into(), vec!["RUNNING".into()])
}

#[test]
fn every_endpoint_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = dir.join("in.txt");
    let output = dir.join("out.txt");
    let text: String = (0..LINES).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&input, &text).unwrap();
    let w = Worker::start(dir);
    let worker_id = w.rest.clone();

    root_health_and_plugins(&w);
    let source = json!({
        "connector.class": "FileStreamSource",
        "file": input.display().to_string(),
        "topic": "lines",
    });
    create_and_read(&w, &source, &output, &worker_id);
    offsets(&w, &input, text.len());
    update(&w);
    lifecycle(&w, &input, &output);
    automatic_restarts(&w, dir);
    refusals(&w);

    // Delete: 204, then gone.
    let a = w.raw("DELETE", "/connectors/src", None);
    assert_eq!((a.status, &a.body), (204, &Json::Null), "{a:?}");
    w.get("/connectors/src").error(404);
    w.raw("DELETE", "/connectors/src", None).error(404);
    assert_eq!(w.ok("/connectors"), json!(["paused", "sink"]));
    w.terminate();
}

fn root_health_and_plugins(w: &Worker) {
    let root = w.ok("/");
    assert_eq!(keys(&root), ["commit", "kafka_cluster_id", "version"]);
    assert!(
        root.as_object().unwrap().values().all(Json::is_string),
        "{root}"
    );
    assert!(!root["kafka_cluster_id"].as_str().unwrap().is_empty());
    let health = w.ok("/health");
    assert_eq!(health["status"], "healthy", "{health}");
    assert_eq!(keys(&health), ["message", "status"]);

    // Connector plugins: class, type, version; converters only on request. (The
    // library was copied onto plugin.path just now: the watcher loads it once settled.)
    let plugins = w.until("the file connectors", "/connector-plugins", |p| {
        p.as_array().is_some_and(|a| a.len() >= 2)
    });
    let listed = |plugins: &Json, class: &str, kind: &str| {
        plugins
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["class"] == class && p["type"] == kind)
    };
    assert!(listed(
        &plugins,
        "org.apache.kafka.connect.file.FileStreamSourceConnector",
        "source"
    ));
    assert!(listed(
        &plugins,
        "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "sink"
    ));
    for p in plugins.as_array().unwrap() {
        assert!(
            ["class", "type", "version"].starts_with(&keys(p)[..2]),
            "{p}"
        );
        assert!(p["type"] == "source" || p["type"] == "sink", "{p}");
    }
    let all = w.ok("/connector-plugins?connectorsOnly=false");
    assert!(listed(
        &all,
        "org.apache.kafka.connect.json.JsonConverter",
        "converter"
    ));
    assert!(listed(
        &all,
        "org.apache.kafka.connect.storage.SimpleHeaderConverter",
        "header_converter"
    ));
    // The built-in transformations and predicates, as Kafka lists its own.
    assert!(listed(
        &all,
        "org.apache.kafka.connect.transforms.InsertField$Value",
        "transformation"
    ));
    assert!(listed(
        &all,
        "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
        "predicate"
    ));
    assert!(
        !listed(
            &plugins,
            "org.apache.kafka.connect.transforms.InsertField$Value",
            "transformation"
        ),
        "connectors only by default"
    );
    // A transformation describes its keys.
    let flatten =
        w.ok("/connector-plugins/org.apache.kafka.connect.transforms.Flatten$Value/config");
    assert!(
        flatten
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["name"] == "delimiter"),
        "{flatten}"
    );

    // A plugin's config: its keys first, then the worker's; Kafka's ConfigKeyInfo.
    let config = w.ok("/connector-plugins/FileStreamSource/config");
    let names: Vec<&str> = config
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(&names[..3], ["file", "topic", "batch.size"], "{names:?}");
    assert!(names.contains(&"connector.class") && names.contains(&"tasks.max"));
    assert!(!names.contains(&"topics"), "a source has no topics key");
    for k in config.as_array().unwrap() {
        assert_eq!(
            keys(k),
            [
                "default_value",
                "dependents",
                "display_name",
                "documentation",
                "group",
                "importance",
                "name",
                "order",
                "required",
                "type",
                "width"
            ]
        );
    }
    let topic = &config[1];
    assert_eq!(
        (topic["type"].as_str(), topic["required"].as_bool()),
        (Some("STRING"), Some(true))
    );
    assert_eq!(config[2]["default_value"], "2000");
    let sink =
        w.ok("/connector-plugins/org.apache.kafka.connect.file.FileStreamSinkConnector/config/");
    assert!(
        sink.as_array()
            .unwrap()
            .iter()
            .any(|k| k["name"] == "topics")
    );
    w.get("/connector-plugins/NoSuchPlugin/config").error(404);

    // Validation: errors in a 200 body, Kafka's ConfigInfos.
    let validate = "/connector-plugins/FileStreamSource/config/validate";
    let a = w.send(
        "PUT",
        validate,
        &json!({"connector.class": "FileStreamSource", "name": "v", "tasks.max": "0", "batch.size": 5}),
    );
    assert_eq!(a.status, 200, "{a:?}");
    let v = &a.body;
    assert_eq!(keys(v), ["configs", "error_count", "groups", "name"]);
    assert_eq!(v["name"], "FileStreamSource");
    assert_eq!(v["error_count"], 2, "tasks.max and topic: {v}");
    assert!(
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "Common")
    );
    let entry = |name: &str| {
        v["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["value"]["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {v}"))
            .clone()
    };
    for c in v["configs"].as_array().unwrap() {
        assert_eq!(keys(c), ["definition", "value"]);
        assert_eq!(
            keys(&c["value"]),
            ["errors", "name", "recommended_values", "value", "visible"]
        );
    }
    let tasks_max = entry("tasks.max");
    assert!(
        tasks_max["value"]["errors"][0]
            .as_str()
            .unwrap()
            .contains("at least 1")
    );
    assert_eq!(tasks_max["value"]["value"], "0");
    assert_eq!(tasks_max["definition"]["name"], "tasks.max");
    assert!(
        entry("topic")["value"]["errors"][0]
            .as_str()
            .unwrap()
            .contains("topic")
    );
    assert_eq!(entry("batch.size")["value"]["value"], "5");
    assert_eq!(entry("batch.size")["value"]["errors"], json!([]));
    let a = w.send(
        "PUT",
        validate,
        &json!({"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector", "name": "v", "topic": "t"}),
    );
    assert_eq!(
        (a.status, &a.body["error_count"]),
        (200, &json!(0)),
        "{a:?}"
    );
    // Placeholders are resolved for the plugin's checks, but never shown resolved.
    let a = w.send(
        "PUT",
        validate,
        &json!({"connector.class": "FileStreamSource", "name": "v", "topic": "${env:TRIBUTARY_REST_TEST_BATCH}",
                "batch.size": "${env:TRIBUTARY_REST_TEST_SECRET}"}),
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["error_count"], 1, "{a:?}");
    let text = a.body.to_string();
    assert!(!text.contains("s3cr3t"), "a resolved value shown: {text}");
    let batch = a.body["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["value"]["name"] == "batch.size")
        .unwrap()
        .clone();
    assert_eq!(batch["value"]["value"], "${env:TRIBUTARY_REST_TEST_SECRET}");
    assert!(
        batch["value"]["errors"][0]
            .as_str()
            .unwrap()
            .contains("${env:TRIBUTARY_REST_TEST_SECRET}"),
        "{batch}"
    );
    let m = w
        .send("PUT", validate, &json!({"topic": "t"}))
        .error(400)
        .to_owned();
    assert!(m.contains("contains no connector type"), "{m}");
    let m = w
        .send(
            "PUT",
            validate,
            &json!({"connector.class": "FileStreamSink"}),
        )
        .error(400)
        .to_owned();
    assert!(m.contains("does not match request type"), "{m}");
    let m = w
        .send(
            "PUT",
            "/connector-plugins/Nope/config/validate",
            &json!({"connector.class": "Nope"}),
        )
        .error(400)
        .to_owned();
    assert!(m.contains("Nope"), "{m}");
    w.raw("PUT", validate, Some(("text/plain", b"connector.class=x")))
        .error(415);
}

fn create_and_read(w: &Worker, source: &Json, output: &Path, worker_id: &str) {
    // POST: 201 with Location and Kafka's ConnectorInfo.
    let a = w.send(
        "POST",
        "/connectors",
        &json!({"name": "src", "config": source}),
    );
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.header("location"), Some("/connectors/src"));
    let mut expected_config = source.clone();
    expected_config["name"] = json!("src");
    assert_eq!(
        a.body,
        json!({"name": "src", "config": expected_config, "tasks": [{"connector": "src", "task": 0}], "type": "source"})
    );
    let m = w
        .send(
            "POST",
            "/connectors",
            &json!({"name": "src", "config": source}),
        )
        .error(409)
        .to_owned();
    assert!(m.contains("src"), "{m}");

    // Invalid configs: 400 naming what is wrong, nothing created.
    let mut no_topic = source.clone();
    no_topic.as_object_mut().unwrap().remove("topic");
    let m = w
        .send(
            "POST",
            "/connectors",
            &json!({"name": "bad", "config": no_topic}),
        )
        .error(400)
        .to_owned();
    assert!(m.contains("topic"), "{m}");
    w.get("/connectors/bad").error(404);
    let m = w
        .send(
            "POST",
            "/connectors",
            &json!({"name": "a/b", "config": source}),
        )
        .error(400)
        .to_owned();
    assert!(m.contains('/'), "{m}");
    let mut unknown = source.clone();
    unknown["connector.class"] = json!("com.example.MissingConnector");
    let m = w
        .send(
            "POST",
            "/connectors",
            &json!({"name": "bad", "config": unknown}),
        )
        .error(400)
        .to_owned();
    assert!(m.contains("com.example.MissingConnector"), "{m}");

    // initial_state (KIP-980).
    let mut other = source.clone();
    other["file"] = json!(format!("{}.other", source["file"].as_str().unwrap()));
    let a = w.send(
        "POST",
        "/connectors",
        &json!({"name": "paused", "config": other, "initial_state": "paused"}),
    );
    assert_eq!(a.status, 201, "{a:?}");
    w.until("the paused connector", "/connectors/paused/status", |s| {
        s["connector"]["state"] == "PAUSED"
    });

    // PUT config: 201 when it creates, 200 when it updates.
    let sink = json!({
        "connector.class": "FileStreamSink",
        "file": output.display().to_string(),
        "topics": "lines",
    });
    let a = w.send("PUT", "/connectors/sink/config", &sink);
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.header("location"), Some("/connectors/sink"));
    assert_eq!(a.body["type"], "sink");
    let a = w.send("PUT", "/connectors/sink/config", &sink);
    assert_eq!(a.status, 200, "{a:?}");
    let deadline = Instant::now() + WAIT;
    while lines(output) < LINES {
        assert!(
            Instant::now() < deadline,
            "{} lines; log:\n{}",
            lines(output),
            w.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Reading them back.
    assert_eq!(w.ok("/connectors"), json!(["paused", "sink", "src"]));
    let info = w.ok("/connectors/src");
    assert_eq!(keys(&info), ["config", "name", "tasks", "type"]);
    assert_eq!(w.ok("/connectors/src/"), info, "trailing slash");
    assert_eq!(w.ok("/connectors/src/config"), expected_config);
    let status = w.until("src running", "/connectors/src/status", running);
    assert_eq!(
        status,
        json!({
            "name": "src",
            "connector": {"state": "RUNNING", "worker_id": worker_id},
            "tasks": [{"id": 0, "state": "RUNNING", "worker_id": worker_id}],
            "type": "source"
        })
    );
    let both = w.ok("/connectors?expand=status&expand=info");
    assert_eq!(keys(&both), ["paused", "sink", "src"]);
    assert_eq!(keys(&both["src"]), ["info", "status"]);
    assert_eq!(both["src"]["info"], info);
    assert_eq!(both["src"]["status"]["name"], "src");
    let only = w.ok("/connectors?expand=status&expand=bogus");
    assert_eq!(keys(&only["sink"]), ["status"]);
    assert_eq!(keys(&w.ok("/connectors?expand=info")["paused"]), ["info"]);

    let tasks = w.ok("/connectors/src/tasks");
    assert_eq!(tasks.as_array().unwrap().len(), 1);
    assert_eq!(tasks[0]["id"], json!({"connector": "src", "task": 0}));
    assert_eq!(tasks[0]["config"]["file"], source["file"]);
    assert_eq!(
        w.ok("/connectors/src/tasks/0/status"),
        json!({"id": 0, "state": "RUNNING", "worker_id": worker_id})
    );
    w.get("/connectors/src/tasks/1/status").error(404);
    w.get("/connectors/src/tasks/first/status").error(404);
}

/// KIP-875's offsets: the source's file position, the sink's consumer group offsets.
fn offsets(w: &Worker, input: &Path, size: usize) {
    let file = input.display().to_string();
    let source = w.until("the source's offset", "/connectors/src/offsets", |o| {
        o["offsets"][0]["offset"]["position"] == size
    });
    assert_eq!(
        source,
        json!({"offsets": [{"partition": {"filename": file}, "offset": {"position": size}}]})
    );
    let sink = w.until("the sink's offsets", "/connectors/sink/offsets", |o| {
        let total: u64 = o["offsets"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["offset"]["kafka_offset"].as_u64())
                    .sum()
            })
            .unwrap_or(0);
        total == LINES as u64
    });
    for e in sink["offsets"].as_array().unwrap() {
        assert_eq!(e["partition"]["kafka_topic"], "lines", "{e}");
        assert!(e["partition"]["kafka_partition"].is_u64(), "{e}");
        assert_eq!(keys(&e["partition"]), ["kafka_partition", "kafka_topic"]);
        assert_eq!(keys(&e["offset"]), ["kafka_offset"]);
    }
}

/// PATCH and PUT of an existing connector; refused changes leave it as it was.
fn update(w: &Worker) {
    let a = w.send(
        "PATCH",
        "/connectors/src/config",
        &json!({"batch.size": 7, "not.there": null}),
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body["config"]["batch.size"], "7");
    let before = w.ok("/connectors/src/config");
    let m = w
        .send(
            "PATCH",
            "/connectors/src/config",
            &json!({"tasks.max": "0"}),
        )
        .error(400)
        .to_owned();
    assert!(m.contains("tasks.max"), "{m}");
    let m = w
        .send(
            "PATCH",
            "/connectors/src/config",
            &json!({"batch.size": null, "topic": null}),
        )
        .error(400)
        .to_owned();
    assert!(m.contains("topic"), "{m}");
    w.send("PATCH", "/connectors/src/config", &json!({"name": "other"}))
        .error(400);
    let mut renamed = before.clone();
    renamed["name"] = json!("other");
    let m = w
        .send("PUT", "/connectors/src/config", &renamed)
        .error(400)
        .to_owned();
    assert!(m.contains("doesn't match"), "{m}");
    let mut bad = before.clone();
    bad["batch.size"] = json!("0");
    let m = w
        .send("PUT", "/connectors/src/config", &bad)
        .error(400)
        .to_owned();
    assert!(m.contains("batch.size"), "{m}");
    assert_eq!(w.ok("/connectors/src/config"), before);
    w.send("PATCH", "/connectors/none/config", &json!({"a": "b"}))
        .error(404);
    // A patch that changes nothing but removes a key put back: still 200.
    let a = w.send(
        "PATCH",
        "/connectors/src/config",
        &json!({"batch.size": null}),
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body["config"].get("batch.size").is_none());
}

fn lifecycle(w: &Worker, input: &Path, output: &Path) {
    w.until(
        "src running after the update",
        "/connectors/src/status",
        running,
    );
    let empty = |a: &Answer, status: u16| {
        assert_eq!((a.status, &a.body), (status, &Json::Null), "{a:?}");
    };
    empty(&w.raw("PUT", "/connectors/src/pause", None), 202);
    w.until("paused", "/connectors/src/status", |s| {
        states(s) == ("PAUSED".into(), vec!["PAUSED".into()])
    });
    empty(&w.raw("PUT", "/connectors/src/pause", None), 202);
    empty(&w.raw("PUT", "/connectors/src/resume", None), 202);
    w.until("resumed", "/connectors/src/status", running);
    empty(&w.raw("PUT", "/connectors/src/stop", None), 204);
    let stopped = w.until("stopped", "/connectors/src/status", |s| {
        states(s) == ("STOPPED".into(), vec![])
    });
    assert_eq!(stopped["tasks"], json!([]));
    assert_eq!(w.ok("/connectors/src")["tasks"], json!([]));
    empty(&w.raw("PUT", "/connectors/src/resume", None), 202);
    w.until("running after stop", "/connectors/src/status", running);
    append(input, "after the lifecycle\n");
    let deadline = Instant::now() + WAIT;
    while lines(output) < LINES + 1 {
        assert!(
            Instant::now() < deadline,
            "{} lines; log:\n{}",
            lines(output),
            w.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Restarts: the connector alone is 204; KIP-745's are 202 with the plan.
    empty(&w.raw("POST", "/connectors/src/restart", None), 204);
    empty(
        &w.raw(
            "POST",
            "/connectors/src/restart?includeTasks=false&onlyFailed=false",
            None,
        ),
        204,
    );
    w.until("running after a restart", "/connectors/src/status", running);
    let a = w.raw("POST", "/connectors/src/restart?includeTasks=true", None);
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(a.body["name"], "src");
    assert_eq!(
        states(&a.body),
        ("RESTARTING".into(), vec!["RESTARTING".into()])
    );
    w.until(
        "running after restarting all",
        "/connectors/src/status",
        running,
    );
    let a = w.raw(
        "POST",
        "/connectors/src/restart?includeTasks=true&onlyFailed=true",
        None,
    );
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(
        states(&a.body),
        ("RUNNING".into(), vec!["RUNNING".into()]),
        "nothing failed"
    );
    let m = w
        .raw("POST", "/connectors/src/restart?includeTasks=yes", None)
        .error(400)
        .to_owned();
    assert!(m.contains("includeTasks"), "{m}");
    w.raw("POST", "/connectors/none/restart", None).error(404);
    empty(&w.raw("POST", "/connectors/src/tasks/0/restart", None), 204);
    w.raw("POST", "/connectors/src/tasks/5/restart", None)
        .error(404);
    w.until(
        "running after a task restart",
        "/connectors/src/status",
        running,
    );
}

/// A task that fails is restarted automatically; its status says when, in fields
/// beyond Kafka's, and an `onlyFailed` restart plans exactly it.
fn automatic_restarts(w: &Worker, dir: &Path) {
    let broken = json!({
        "connector.class": "FileStreamSink",
        "file": dir.join("no/such/dir/out.txt").display().to_string(),
        "topics": "lines",
    });
    assert_eq!(
        w.send("PUT", "/connectors/broken/config", &broken).status,
        201
    );
    let status = w.until("the broken task failed", "/connectors/broken/status", |s| {
        s["tasks"][0]["state"] == "FAILED"
    });
    let task = &status["tasks"][0];
    assert!(
        task["trace"].as_str().unwrap().contains("no/such/dir"),
        "{task}"
    );
    assert_eq!(task["restarts"], 1, "{task}");
    assert!(task["next_restart_ms"].as_i64().unwrap() > 0, "{task}");
    assert!(status["connector"].get("restarts").is_none(), "{status}");
    let task_status = w.ok("/connectors/broken/tasks/0/status");
    assert_eq!(task_status["state"], "FAILED");
    assert_eq!(task_status["restarts"], 1);
    let a = w.raw(
        "POST",
        "/connectors/broken/restart?includeTasks=true&onlyFailed=true",
        None,
    );
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(
        states(&a.body),
        ("RUNNING".into(), vec!["RESTARTING".into()])
    );
    let task = &a.body["tasks"][0];
    assert!(
        task.get("restarts").is_none() && task.get("trace").is_none(),
        "{task}"
    );
    assert_eq!(w.raw("DELETE", "/connectors/broken", None).status, 204);
}

/// Bad requests of every kind: the right status, Kafka's error body, nothing changed.
fn refusals(w: &Worker) {
    let before = w.ok("/connectors?expand=info");
    let post =
        |content_type: &str, body: &[u8]| w.raw("POST", "/connectors", Some((content_type, body)));
    post("application/json", b"{\"name\": \"x\", ").error(400);
    post("application/json", b"[\"x\"]").error(400);
    post("application/json", b"{\"config\": {}}").error(400);
    post("application/json", b"{\"name\": \"x\", \"config\": \"no\"}").error(400);
    post(
        "application/json",
        b"{\"name\": \"x\", \"config\": {\"tasks.max\": \"1\"}}",
    )
    .error(400);
    post("application/x-www-form-urlencoded", b"name=x").error(415);
    w.raw("POST", "/connectors", None).error(415);
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(2 << 20));
    post("application/json", huge.as_bytes()).error(413);
    let m = w
        .raw("DELETE", "/connectors/src/status", None)
        .error(405)
        .to_owned();
    assert!(m.contains("DELETE"), "{m}");
    w.raw("GET", "/connectors/src/restart", None).error(405);
    w.get("/no/such/path").error(404);
    w.get("/connectors/none/topics").error(404);
    w.raw("PUT", "/connectors/none/topics/reset", None)
        .error(404);
    let m = w
        .raw("DELETE", "/connectors/src/offsets", None)
        .error(400)
        .to_owned();
    assert!(
        m.contains("STOPPED") && m.contains("/connectors/src/stop"),
        "{m}"
    );
    w.send("PATCH", "/connectors/src/offsets", &json!({"offsets": []}))
        .error(400);
    w.raw("DELETE", "/connectors/none/offsets", None).error(404);
    assert_eq!(w.ok("/connectors?expand=info"), before);
}

/// Wait until `path` has at least `n` lines.
fn until_lines(w: &Worker, path: &Path, n: usize) {
    let deadline = Instant::now() + WAIT;
    while lines(path) < n {
        assert!(
            Instant::now() < deadline,
            "{} has {} lines, waiting for {n}; log:\n{}",
            path.display(),
            lines(path),
            w.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop_and_wait(w: &Worker, name: &str) {
    assert_eq!(
        w.raw("PUT", &format!("/connectors/{name}/stop"), None)
            .status,
        204
    );
    w.until("stopped", &format!("/connectors/{name}/status"), |s| {
        states(s) == ("STOPPED".into(), vec![])
    });
}

/// A worker whose file connectors are loaded (the plugin library was copied onto
/// plugin.path just now: the watcher loads it once settled).
fn worker_with_plugins(dir: &Path, extra: &str) -> Worker {
    let w = Worker::start_with(dir, extra);
    w.until("the file connectors", "/connector-plugins", |p| {
        p.as_array().is_some_and(|a| a.len() >= 2)
    });
    w
}

/// `PUT /connectors/NAME/config` creating the connector.
fn create(w: &Worker, name: &str, config: &Json) {
    let a = w.send("PUT", &format!("/connectors/{name}/config"), config);
    assert_eq!(a.status, 201, "{a:?}");
}

fn topics(w: &Worker, name: &str) -> Json {
    w.ok(&format!("/connectors/{name}/topics"))
}

fn patch(w: &Worker, name: &str, body: &Json) -> Answer {
    w.send("PATCH", &format!("/connectors/{name}/offsets"), body)
}

/// KIP-558's active topics and KIP-875's offset alteration, end to end: the topics the
/// file connectors really used, kept across a worker restart, reset by tombstones and
/// found again; offsets altered and reset on stopped connectors, after which the
/// connectors resume from exactly there.
#[test]
fn active_topics_and_altered_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = dir.join("in.txt");
    let output = dir.join("out.txt");
    let text: String = (0..LINES).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&input, &text).unwrap();
    let mut w = worker_with_plugins(dir, "");

    // Log levels change at run time: the tracker's debug line appears only once its
    // logger is at DEBUG (the worker starts at RUST_LOG=info).
    let a = w.send(
        "PUT",
        "/admin/loggers/tributary::worker::topics",
        &json!({"level": "debug"}),
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body, json!(["tributary::worker::topics"]));

    let source = json!({"connector.class": "FileStreamSource", "file": input.display().to_string(), "topic": "lines"});
    let sink = json!({"connector.class": "FileStreamSink", "file": output.display().to_string(), "topics": "lines"});
    create(&w, "src", &source);
    create(&w, "sink", &sink);
    until_lines(&w, &output, LINES);

    // Active topics: what each connector's tasks really used.
    assert_eq!(topics(&w, "src"), json!({"src": {"topics": ["lines"]}}));
    assert_eq!(topics(&w, "sink"), json!({"sink": {"topics": ["lines"]}}));
    let log = std::fs::read_to_string(dir.join("worker.log")).unwrap();
    assert!(log.contains("new active topic"), "{log}");

    // Reset: 202, empty, and found again once the task uses the topic again.
    let a = w.raw("PUT", "/connectors/src/topics/reset", None);
    assert_eq!((a.status, &a.body), (202, &Json::Null), "{a:?}");
    assert_eq!(topics(&w, "src"), json!({"src": {"topics": []}}));
    append(&input, "after the reset\n");
    until_lines(&w, &output, LINES + 1);
    w.until("src's topic found again", "/connectors/src/topics", |t| {
        t == &json!({"src": {"topics": ["lines"]}})
    });

    // Offsets can only change on stopped connectors.
    let file = input.display().to_string();
    let somewhere = json!({"offsets": [{"partition": {"filename": file}, "offset": {"position": text.len() / 2}}]});
    let m = patch(&w, "src", &somewhere).error(400).to_owned();
    assert!(
        m.starts_with("Connectors must be in the STOPPED state"),
        "{m}"
    );
    w.raw("DELETE", "/connectors/sink/offsets", None).error(400);
    patch(&w, "none", &somewhere).error(404);

    // A source: stopped, moved back to line 100, resumed — it reads from there again.
    stop_and_wait(&w, "src");
    let line_100 = text.find("line 100\n").unwrap();
    let back =
        json!({"offsets": [{"partition": {"filename": file}, "offset": {"position": line_100}}]});
    for bad in [
        json!({}),
        json!({"offsets": []}),
        json!({"offsets": "all"}),
        json!({"offsets": [{"offset": {"position": 1}}]}),
        json!({"offsets": [{"partition": "in.txt", "offset": {"position": 1}}]}),
        json!({"offsets": [{"partition": {"filename": file}, "offset": 5}]}),
        json!({"offsets": [{"partition": {"filename": file}, "offset": {"position": [1]}}]}),
    ] {
        let m = patch(&w, "src", &bad).error(400).to_owned();
        assert!(!m.is_empty(), "{bad}");
    }
    assert_eq!(
        w.ok("/connectors/src/offsets")["offsets"][0]["offset"]["position"],
        text.len() + "after the reset\n".len(),
        "refused requests change nothing"
    );
    let a = patch(&w, "src", &back);
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.body,
        json!({"message": "The offsets for this connector have been altered successfully"})
    );
    assert_eq!(
        w.ok("/connectors/src/offsets"),
        json!({"offsets": [{"partition": {"filename": file}, "offset": {"position": line_100}}]})
    );
    let before = lines(&output);
    assert_eq!(w.raw("PUT", "/connectors/src/resume", None).status, 202);
    // Lines 100..199 and the appended one, again.
    until_lines(&w, &output, before + 101);
    let out = std::fs::read_to_string(&output).unwrap();
    let replayed: Vec<&str> = out.lines().skip(before).collect();
    assert_eq!(replayed.first(), Some(&"line 100"), "{replayed:?}");
    assert_eq!(replayed.len(), 101, "{replayed:?}");

    // A sink: stopped, each partition moved back by up to 5 records, resumed — exactly
    // those are written again.
    until_lines(&w, &output, before + 101);
    let total_records = (LINES + 1 + 101) as u64;
    w.until(
        "the sink committed everything",
        "/connectors/sink/offsets",
        |o| {
            o["offsets"].as_array().map(|a| {
                a.iter()
                    .filter_map(|e| e["offset"]["kafka_offset"].as_u64())
                    .sum::<u64>()
            }) == Some(total_records)
        },
    );
    stop_and_wait(&w, "sink");
    let committed = w.ok("/connectors/sink/offsets");
    let mut moved = Vec::new();
    let mut expected = 0;
    for e in committed["offsets"].as_array().unwrap() {
        let o = e["offset"]["kafka_offset"].as_u64().unwrap();
        expected += o.min(5);
        // Numbers as strings are accepted, as Kafka accepts them.
        moved.push(json!({
            "partition": {"kafka_topic": "lines", "kafka_partition": e["partition"]["kafka_partition"].to_string()},
            "offset": {"kafka_offset": o.saturating_sub(5)},
        }));
    }
    for bad in [
        json!({"offsets": [{"partition": {"kafka_topic": "lines"}, "offset": {"kafka_offset": 1}}]}),
        json!({"offsets": [{"partition": {"kafka_topic": "lines", "kafka_partition": 99}, "offset": {"kafka_offset": 1}}]}),
        json!({"offsets": [{"partition": {"kafka_topic": "nope", "kafka_partition": 0}, "offset": {"kafka_offset": 1}}]}),
        json!({"offsets": [{"partition": {"kafka_topic": "lines", "kafka_partition": "x"}, "offset": {"kafka_offset": 1}}]}),
        json!({"offsets": [{"partition": {"kafka_topic": "lines", "kafka_partition": 0}, "offset": {"kafka_offset": -1}}]}),
        json!({"offsets": [{"partition": {"kafka_topic": "lines", "kafka_partition": 0}, "offset": {"position": 1}}]}),
    ] {
        let m = patch(&w, "sink", &bad).error(400).to_owned();
        assert!(m.contains("sink"), "{m}");
    }
    assert_eq!(
        w.ok("/connectors/sink/offsets"),
        committed,
        "refusals change nothing"
    );
    let a = patch(&w, "sink", &json!({"offsets": moved}));
    assert_eq!(a.status, 200, "{a:?}");
    let before = lines(&output);
    assert_eq!(w.raw("PUT", "/connectors/sink/resume", None).status, 202);
    until_lines(&w, &output, before + expected as usize);
    w.until(
        "the sink committed everything again",
        "/connectors/sink/offsets",
        |o| o == &committed,
    );
    assert_eq!(
        lines(&output),
        before + expected as usize,
        "exactly the moved-back records"
    );

    // Reset: the sink's group forgets its offsets and the sink starts from the
    // beginning; the source's offsets are tombstoned and it reads the file again.
    stop_and_wait(&w, "sink");
    stop_and_wait(&w, "src");
    let a = w.raw("DELETE", "/connectors/sink/offsets", None);
    assert_eq!(
        (a.status, &a.body),
        (
            200,
            &json!({"message": "The offsets for this connector have been reset successfully"})
        )
    );
    assert_eq!(w.ok("/connectors/sink/offsets"), json!({"offsets": []}));
    let a = w.raw("DELETE", "/connectors/src/offsets", None);
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(w.ok("/connectors/src/offsets"), json!({"offsets": []}));
    // A partition's offset removed with null.
    let a = patch(
        &w,
        "src",
        &json!({"offsets": [{"partition": {"filename": file}, "offset": null}]}),
    );
    assert_eq!(a.status, 200, "{a:?}");

    // Active topics, offsets and states survive a restart of the worker.
    w.terminate();
    w = worker_with_plugins(dir, "");
    assert_eq!(topics(&w, "src"), json!({"src": {"topics": ["lines"]}}));
    assert_eq!(topics(&w, "sink"), json!({"sink": {"topics": ["lines"]}}));
    assert_eq!(w.ok("/connectors/src/offsets"), json!({"offsets": []}));
    let before = lines(&output);
    assert_eq!(w.raw("PUT", "/connectors/sink/resume", None).status, 202);
    until_lines(&w, &output, before + total_records as usize);
    assert_eq!(w.raw("PUT", "/connectors/src/resume", None).status, 202);
    until_lines(&w, &output, before + total_records as usize + LINES + 1);

    // Deleting a connector forgets its active topics.
    assert_eq!(w.raw("DELETE", "/connectors/src", None).status, 204);
    assert_eq!(w.send("PUT", "/connectors/src/config", &json!({"connector.class": "FileStreamSource", "file": dir.join("none.txt").display().to_string(), "topic": "other"})).status, 201);
    assert_eq!(topics(&w, "src"), json!({"src": {"topics": []}}));
    w.terminate();
}

/// `topic.tracking.enable=false` and `topic.tracking.allow.reset=false`: Kafka's 403s.
#[test]
fn topic_tracking_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let connector = |w: &Worker| {
        let c = json!({"connector.class": "FileStreamSource", "file": tmp.path().join("none.txt").display().to_string(), "topic": "t"});
        create(w, "c", &c);
    };
    let off = tmp.path().join("off");
    std::fs::create_dir(&off).unwrap();
    let w = worker_with_plugins(&off, "topic.tracking.enable=false");
    connector(&w);
    assert_eq!(
        w.get("/connectors/c/topics").error(403),
        "Topic tracking is disabled."
    );
    assert_eq!(
        w.raw("PUT", "/connectors/c/topics/reset", None).error(403),
        "Topic tracking is disabled."
    );
    w.terminate();
    let no_reset = tmp.path().join("no-reset");
    std::fs::create_dir(&no_reset).unwrap();
    let w = worker_with_plugins(&no_reset, "topic.tracking.allow.reset=false");
    connector(&w);
    assert_eq!(w.ok("/connectors/c/topics"), json!({"c": {"topics": []}}));
    assert_eq!(
        w.raw("PUT", "/connectors/c/topics/reset", None).error(403),
        "Topic tracking reset is disabled."
    );
    w.terminate();
}

/// `/admin/loggers`: Kafka's shapes; levels in any case; refusals name what to fix.
#[test]
fn loggers_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let w = Worker::start(tmp.path());
    assert_eq!(
        w.ok("/admin/loggers"),
        json!({"root": {"level": "INFO", "last_modified": null}})
    );
    assert_eq!(
        w.ok("/admin/loggers/root"),
        json!({"level": "INFO", "last_modified": null})
    );
    let m = w.get("/admin/loggers/tributary").error(404).to_owned();
    assert!(m.starts_with("Logger tributary not found."), "{m}");

    let put = |name: &str, body: &Json| w.send("PUT", &format!("/admin/loggers/{name}"), body);
    let a = put("tributary::worker", &json!({"level": "debug"}));
    assert_eq!(
        (a.status, &a.body),
        (200, &json!(["tributary::worker"])),
        "{a:?}"
    );
    let worker = w.ok("/admin/loggers/tributary::worker");
    assert_eq!(worker["level"], "DEBUG");
    let set_at = worker["last_modified"].as_i64().expect("a time");
    assert!(set_at > 1_600_000_000_000, "{worker}");
    // A parent sets its children that have levels.
    let a = put("tributary", &json!({"level": "Warn"}));
    assert_eq!(a.body, json!(["tributary", "tributary::worker"]), "{a:?}");
    assert_eq!(w.ok("/admin/loggers/tributary::worker")["level"], "WARN");
    // root sets them all.
    let a = put("root", &json!({"level": "FATAL"}));
    assert_eq!(
        a.body,
        json!(["root", "tributary", "tributary::worker"]),
        "{a:?}"
    );
    for level in ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF"] {
        assert_eq!(put("root", &json!({"level": level})).status, 200, "{level}");
    }
    assert_eq!(put("root", &json!({"level": "INFO"})).status, 200);
    let before = w.ok("/admin/loggers");
    let m = put("root", &json!({"level": "LOUD"})).error(400).to_owned();
    assert!(m.contains("'LOUD'") && m.contains("DEBUG"), "{m}");
    let m = put("root", &json!({})).error(400).to_owned();
    assert_eq!(m, "Desired 'level' parameter was not specified in request.");
    put("root", &json!({"level": 3})).error(400);
    put("root", &json!(["DEBUG"])).error(400);
    let m = put("a,b=trace", &json!({"level": "DEBUG"}))
        .error(400)
        .to_owned();
    assert!(m.contains("module path"), "{m}");
    w.get("/admin/loggers/a%20b").error(400);
    let m = w
        .send(
            "PUT",
            "/admin/loggers/root?scope=cluster",
            &json!({"level": "DEBUG"}),
        )
        .error(400)
        .to_owned();
    assert!(m.contains("scope"), "{m}");
    w.raw("PUT", "/admin/loggers/root", Some(("text/plain", b"DEBUG")))
        .error(415);
    w.raw("DELETE", "/admin/loggers/root", None).error(405);
    assert_eq!(w.ok("/admin/loggers"), before, "refusals change nothing");
    let a = w.send(
        "PUT",
        "/admin/loggers/root?scope=worker",
        &json!({"level": "info"}),
    );
    assert_eq!(a.status, 200, "{a:?}");
    w.terminate();
}

/// Kafka Connect's endpoints (the reference's catalogue, internal ones aside), as
/// (method, path) with axum's `{param}` syntax.
const KAFKA_ENDPOINTS: &[(&str, &str)] = &[
    ("get", "/"),
    ("get", "/health"),
    ("get", "/connectors"),
    ("post", "/connectors"),
    ("get", "/connectors/{name}"),
    ("delete", "/connectors/{name}"),
    ("get", "/connectors/{name}/config"),
    ("put", "/connectors/{name}/config"),
    ("patch", "/connectors/{name}/config"),
    ("get", "/connectors/{name}/status"),
    ("post", "/connectors/{name}/restart"),
    ("put", "/connectors/{name}/pause"),
    ("put", "/connectors/{name}/resume"),
    ("put", "/connectors/{name}/stop"),
    ("get", "/connectors/{name}/tasks"),
    ("get", "/connectors/{name}/tasks/{task}/status"),
    ("post", "/connectors/{name}/tasks/{task}/restart"),
    ("get", "/connectors/{name}/topics"),
    ("put", "/connectors/{name}/topics/reset"),
    ("get", "/connectors/{name}/offsets"),
    ("patch", "/connectors/{name}/offsets"),
    ("delete", "/connectors/{name}/offsets"),
    ("get", "/connector-plugins"),
    ("get", "/connector-plugins/{plugin}/config"),
    ("put", "/connector-plugins/{plugin}/config/validate"),
    ("get", "/admin/loggers"),
    ("get", "/admin/loggers/{logger}"),
    ("put", "/admin/loggers/{logger}"),
];

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// The (method, path) pairs of an OpenAPI document.
fn operations(doc: &Json) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if METHODS.contains(&method.as_str()) {
                out.push((method.clone(), path.clone()));
            }
        }
    }
    out.sort();
    out
}

/// A path template with its parameters filled with names nothing has.
fn concrete(path: &str) -> String {
    path.replace("{name}", "no-such-connector")
        .replace("{task}", "0")
        .replace("{plugin}", "NoSuchPlugin")
        .replace("{logger}", "root")
}

/// `GET /openapi.json` from the running worker: OpenAPI 3, every Kafka endpoint in it,
/// and the router serves exactly what it documents — every documented operation is
/// routed (never the 404/405 fallbacks) and every other method on a documented path is
/// 405, so no route can hide from the document.
#[test]
fn openapi_document_covers_every_route() {
    let tmp = tempfile::tempdir().unwrap();
    let w = Worker::start(tmp.path());
    let doc = w.ok("/openapi.json");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{doc}"
    );
    assert_eq!(doc["info"]["title"], "Tributary REST API");
    let ops = operations(&doc);
    for (method, path) in KAFKA_ENDPOINTS {
        assert!(
            ops.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is not in the document: {ops:?}"
        );
    }
    assert!(ops.contains(&("get".into(), "/openapi.json".into())));
    // Every response of every operation is described; bodies reference real schemas.
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "ConnectorInfo",
        "ConnectorStateInfo",
        "ErrorMessage",
        "ConnectorOffsets",
        "LoggerLevel",
        "AlterOffsetsRequest",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &r[..r.find('"').unwrap()];
        assert!(
            schemas.contains_key(name),
            "a reference to a missing schema {name}"
        );
    }
    let fallback = |a: &Answer| {
        let m = a.body["message"].as_str().unwrap_or_default();
        a.status == 405 || (a.status == 404 && m.starts_with("HTTP 404 Not Found: no endpoint"))
    };
    let paths: std::collections::BTreeSet<&String> = ops.iter().map(|(_, p)| p).collect();
    for path in paths {
        for method in METHODS {
            let documented = ops.contains(&(method.to_string(), path.clone()));
            let a = w.raw(&method.to_uppercase(), &concrete(path), None);
            assert!(a.status < 500, "{method} {path}: {a:?}");
            assert_eq!(
                !fallback(&a),
                documented,
                "{method} {path}: documented {documented}, answered {a:?}"
            );
        }
    }
    w.terminate();
}

/// One random request: method, path (from the document's routes, with hostile
/// parameters), query and body.
fn random_request(
    rng: &mut crate::support::Rng,
    templates: &[(String, String)],
) -> (String, String, Option<(String, Vec<u8>)>) {
    let pick = |rng: &mut crate::support::Rng, n: usize| rng.below(n as u64) as usize;
    let (documented, template) = &templates[pick(rng, templates.len())];
    // Mostly the documented method, so requests reach the handlers.
    let method = if rng.below(4) == 0 {
        [
            "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "FOO",
        ][pick(rng, 9)]
        .to_owned()
    } else {
        documented.to_uppercase()
    };
    let names = [
        "src".to_owned(),
        "sink".to_owned(),
        "none".to_owned(),
        "a%2Fb".to_owned(),
        "a/b".to_owned(),
        "%00".to_owned(),
        "%0A%0D".to_owned(),
        "%7F%1B[31m".to_owned(),
        "..".to_owned(),
        "%2E%2E%2F%2E%2E".to_owned(),
        "%FF%FE".to_owned(),
        "%E2%98%83".to_owned(),
        "x".repeat(10_000),
        "-1".to_owned(),
        "99999999999999999999".to_owned(),
        "tributary::worker".to_owned(),
        "root".to_owned(),
        "FileStreamSource".to_owned(),
        "%".to_owned(),
        "a%2Cb%3Dtrace".to_owned(),
        String::new(),
    ];
    let mut path = template.clone();
    for param in ["{name}", "{task}", "{plugin}", "{logger}"] {
        while path.contains(param) {
            let v = names[pick(rng, names.len())].clone();
            path = path.replacen(param, &v, 1);
        }
    }
    if rng.below(4) == 0 {
        let queries = [
            "expand=status",
            "expand=info&expand=status&expand=nope",
            "includeTasks=true&onlyFailed=maybe",
            "includeTasks=True",
            "connectorsOnly=false",
            "connectorsOnly=",
            "scope=cluster",
            "forward=true",
            "%ZZ=%",
            "a=b&&&=",
        ];
        path.push('?');
        path.push_str(queries[pick(rng, queries.len())]);
    }
    if rng.below(10) == 0 {
        path.push('/');
    }
    let body = match rng.below(12) {
        0 | 1 => None,
        2 => {
            let n = pick(rng, 300);
            Some(rng.bytes(n))
        }
        3 => Some(b"{\"name\": \"x\", ".to_vec()),
        4 => Some(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes()),
        5 => Some(vec![b'x'; 2 << 20]),
        6 => Some(br#"{"offsets": [{"partition": {"kafka_topic": "lines", "kafka_partition": "0x1"}, "offset": {"kafka_offset": 1e400}}]}"#.to_vec()),
        7 => Some(br#"{"level": "LOUD"}"#.to_vec()),
        8 => Some(br#"{"name": "src", "config": {"connector.class": "Nope", "tasks.max": -1}, "initial_state": "ASLEEP"}"#.to_vec()),
        9 => Some(br#"{"connector.class": "FileStreamSink", "topics": "lines", "file": "/proc/self/mem", "tasks.max": "abc"}"#.to_vec()),
        10 => Some(br#"{"offsets": [{"partition": {"filename": {"nested": [1]}}, "offset": {"position": "x"}}]}"#.to_vec()),
        _ => Some("\u{0}\u{1}\"\\\u{7f}\u{fffd}".as_bytes().to_vec()),
    };
    let content_type = [
        "application/json",
        "application/json",
        "text/plain",
        "application/json; charset=utf-8",
        "",
    ][pick(rng, 5)]
    .to_owned();
    (method, path, body.map(|b| (content_type, b)))
}

/// What a refused request must leave as it was.
fn snapshot(w: &Worker) -> Vec<(u16, Json)> {
    [
        "/connectors?expand=info",
        "/admin/loggers",
        "/connectors/src/offsets",
        "/connectors/src/topics",
    ]
    .iter()
    .map(|path| {
        let a = w.get(path);
        (a.status, a.body)
    })
    .collect()
}

/// A snapshot once two taken 300 ms apart agree (the worker commits offsets every 200 ms), or
/// the last one after 5 s.
fn settled_snapshot(w: &Worker) -> Vec<(u16, Json)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = snapshot(w);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = snapshot(w);
        if now == last || Instant::now() >= deadline {
            return now;
        }
        last = now;
    }
}

/// Random requests, with the routes taken from the worker's own OpenAPI document and
/// hostile names, queries and bodies (malformed, deeply nested, 2 MiB, control
/// characters, names with `/`): never a 5xx, never a crash, and a refused request
/// changes nothing. The seed is printed (TRIBUTARY_TEST_SEED repeats a run).
#[test]
fn random_requests_never_fail_the_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = dir.join("in.txt");
    std::fs::write(&input, "one\ntwo\n").unwrap();
    let w = worker_with_plugins(dir, "");
    create(
        &w,
        "src",
        &json!({"connector.class": "FileStreamSource", "file": input.display().to_string(), "topic": "lines"}),
    );
    create(
        &w,
        "sink",
        &json!({"connector.class": "FileStreamSink", "file": dir.join("out.txt").display().to_string(), "topics": "lines"}),
    );
    until_lines(&w, &dir.join("out.txt"), 2);
    // The source records its active topic after its send, which can be after the sink
    // has written the lines: the baseline state includes it.
    let settled = Instant::now() + Duration::from_secs(30);
    while w.get("/connectors/src/topics").body["src"]["topics"] != json!(["lines"]) {
        assert!(
            Instant::now() < settled,
            "the source never reported topic lines"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let templates: Vec<(String, String)> = operations(&w.ok("/openapi.json"))
        .into_iter()
        .chain([
            ("get".to_owned(), "/no/such/path".to_owned()),
            ("put".to_owned(), "/connectors/{name}/nope".to_owned()),
        ])
        .collect();
    let seed = crate::support::test_seed();
    let mut rng = crate::support::Rng::new(seed);
    let mut before = snapshot(&w);
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut sent = 0;
    let mut statuses: std::collections::BTreeMap<u16, usize> = std::collections::BTreeMap::new();
    while Instant::now() < deadline && sent < 5000 {
        let (method, path, body) = random_request(&mut rng, &templates);
        let a = w.raw(
            &method,
            &path,
            body.as_ref().map(|(ct, b)| (ct.as_str(), b.as_slice())),
        );
        sent += 1;
        *statuses.entry(a.status).or_default() += 1;
        let shown: String = format!("{method} {path}").chars().take(300).collect();
        assert!(
            a.status < 500,
            "seed {seed}: {shown} answered {a:?}; log:\n{}",
            w.log()
        );
        if a.status >= 400 {
            let after = snapshot(&w);
            // Running tasks add to their active topics at any time (a task restarted by an
            // accepted request re-sends what it had not committed, after a topics reset
            // too): a refused request must not change the rest, nor take a topic away.
            let (topics_after, topics_before) = (&after[3].1, &before[3].1);
            let listed = |t: &Json| -> Vec<Json> {
                t["src"]["topics"].as_array().cloned().unwrap_or_default()
            };
            assert!(
                listed(topics_before)
                    .iter()
                    .all(|t| listed(topics_after).contains(t)),
                "seed {seed}: the refused {shown} ({}) took an active topic away: {topics_before} -> {topics_after}",
                a.status
            );
            assert_eq!(
                after[..3],
                before[..3],
                "seed {seed}: the refused {shown} ({}) changed the worker",
                a.status
            );
            before = after;
        } else if method.eq_ignore_ascii_case("get") {
            before = snapshot(&w);
        } else {
            // An accepted request (a pause, a stop, a level...) may change things, some of
            // them a little later (a resumed task re-sends and commits its offsets).
            before = settled_snapshot(&w);
        }
    }
    assert!(sent >= 200, "only {sent} requests in the time given");
    assert!(
        statuses.keys().any(|s| *s < 300),
        "nothing succeeded: {statuses:?}"
    );
    assert!(statuses.len() >= 6, "too little variety: {statuses:?}");
    assert_eq!(w.ok("/health")["status"], "healthy");
    println!("seed {seed}: {sent} requests, statuses {statuses:?}");
    w.terminate();
}

/// The venv interpreter with the Python clients (as tests/it/clients.rs finds it).
fn python() -> PathBuf {
    let path = std::env::var_os("TRIBUTARY_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyclients/bin/python"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "no Python with the test clients at {} (TRIBUTARY_PYTHON): run ./scripts/test, which installs them",
        path.display()
    );
    path
}

/// kafka-connect-py, a Kafka Connect REST client from PyPI, drives a connector's whole
/// lifecycle against the real worker (tests/clients/kc_rest_client.py checks each
/// answer).
#[test]
fn third_party_python_client() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.txt");
    std::fs::write(&input, "a\nb\nc\n").unwrap();
    let w = Worker::start(tmp.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/kc_rest_client.py");
    let out = crate::support::run_bounded(
        Command::new(python())
            .arg(&script)
            .arg(format!("http://{}", w.rest))
            .arg(&input)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        None,
        Duration::from_secs(180),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("OK kafka-connect-py"),
        "{}\n--- stdout:\n{stdout}\n--- stderr:\n{}\n--- worker log:\n{}",
        out.status,
        out.stderr,
        w.log()
    );
    w.terminate();
}
