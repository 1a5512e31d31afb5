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
        std::fs::write(
            dir.join("worker.properties"),
            format!(
                "broker.data.dir={}\nbroker.listener=none\nplugin.path={}\n\
                 key.converter=org.apache.kafka.connect.storage.StringConverter\n\
                 value.converter=org.apache.kafka.connect.storage.StringConverter\n\
                 offset.flush.interval.ms=200\nlisteners=http://127.0.0.1:0\n\
                 task.restart.backoff.initial.ms=60000\ntask.restart.backoff.max.ms=60000\n\
                 config.providers=env\n\
                 config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider\n",
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
    w.get("/connectors/src/topics").error(403);
    w.raw("DELETE", "/connectors/src/offsets", None).error(501);
    w.send("PATCH", "/connectors/src/offsets", &json!({"offsets": []}))
        .error(501);
    assert_eq!(w.ok("/connectors?expand=info"), before);
}
