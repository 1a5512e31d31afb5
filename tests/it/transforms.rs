//! Single message transforms end to end, through the real binary, with connector configs
//! written exactly as for Kafka Connect (Kafka's class names): file sources → transforms
//! (RegexRouter, HoistField, InsertField) → topics → a sink whose Filter drops one topic
//! by a TopicNameMatches predicate → a file; and a sink whose Cast fails on some records
//! under `errors.tolerance=all`, those records going to a dead letter queue that another
//! file sink reads back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::standalone::file_plugin_dir;

const DEADLINE: Duration = Duration::from_secs(120);

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// A `tributary standalone` child writing its log to `DIR/worker.log` (also used by
/// `plugin_transforms`).
pub(crate) struct Worker {
    pub(crate) dir: PathBuf,
    pub(crate) child: Child,
}

impl Worker {
    pub(crate) fn log(&self) -> String {
        let text = std::fs::read(self.dir.join("worker.log")).unwrap_or_default();
        let start = text.len().saturating_sub(20_000);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    /// The complete lines of `file` once it has at least `n` (polling, with a deadline).
    pub(crate) fn wait_for_lines(&mut self, file: &Path, n: usize) -> Vec<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
            let lines: Vec<String> = complete.lines().map(str::to_owned).collect();
            if lines.len() >= n {
                return lines;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the worker exited with {status}; its log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{} has {} of {n} lines after {DEADLINE:?}: {lines:?}; log:\n{}",
                file.display(),
                lines.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn transforms_predicates_and_a_failing_transform_with_a_dlq() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let p = |name: &str| dir.join(name).display().to_string();
    write(&dir.join("in.txt"), "alpha\nbeta\ngamma\n");
    write(&dir.join("noise.txt"), "noise 1\nnoise 2\n");
    write(&dir.join("nums.txt"), "1\n2\nnot a number\n4\n");
    write(
        &dir.join("worker.properties"),
        &format!(
            "broker.data.dir={}\nbroker.listener=none\nplugin.path={}\n\
             key.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n\
             offset.flush.interval.ms=200\nlisteners=http://127.0.0.1:0\n",
            p("data"),
            file_plugin_dir().display()
        ),
    );
    // Lines of in.txt go to raw-lines, routed to clean-lines, each wrapped in a struct
    // with a static field added.
    let source = format!(
        r#"{{"name": "lines", "config": {{
            "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
            "file": "{}", "topic": "raw-lines",
            "transforms": "route,hoist,insert",
            "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
            "transforms.route.regex": "raw-(.*)",
            "transforms.route.replacement": "clean-$1",
            "transforms.hoist.type": "org.apache.kafka.connect.transforms.HoistField$Value",
            "transforms.hoist.field": "line",
            "transforms.insert.type": "org.apache.kafka.connect.transforms.InsertField$Value",
            "transforms.insert.static.field": "origin",
            "transforms.insert.static.value": "file-source"
        }}}}"#,
        p("in.txt")
    );
    let noise = format!(
        r#"{{"name": "noise", "config": {{
            "connector.class": "FileStreamSource", "file": "{}", "topic": "noise"
        }}}}"#,
        p("noise.txt")
    );
    // One sink for both topics; the noise is filtered out by a predicate.
    let sink = format!(
        r#"{{"name": "out", "config": {{
            "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
            "file": "{}", "topics": "clean-lines,noise",
            "transforms": "dropNoise",
            "transforms.dropNoise.type": "org.apache.kafka.connect.transforms.Filter",
            "transforms.dropNoise.predicate": "isNoise",
            "predicates": "isNoise",
            "predicates.isNoise.type": "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
            "predicates.isNoise.pattern": "noise"
        }}}}"#,
        p("out.txt")
    );
    let nums = format!(
        r#"{{"name": "nums", "config": {{
            "connector.class": "FileStreamSource", "file": "{}", "topic": "nums"
        }}}}"#,
        p("nums.txt")
    );
    // A cast that fails on one record: skipped, and kept in the DLQ with its context.
    let cast = format!(
        r#"{{"name": "cast", "config": {{
            "connector.class": "FileStreamSink", "file": "{}", "topics": "nums",
            "transforms": "toInt",
            "transforms.toInt.type": "org.apache.kafka.connect.transforms.Cast$Value",
            "transforms.toInt.spec": "int32",
            "errors.tolerance": "all",
            "errors.log.enable": "true",
            "errors.deadletterqueue.topic.name": "nums-dlq",
            "errors.deadletterqueue.context.headers.enable": "true"
        }}}}"#,
        p("cast.txt")
    );
    let dlq = format!(
        r#"{{"name": "dlq", "config": {{
            "connector.class": "FileStreamSink", "file": "{}", "topics": "nums-dlq"
        }}}}"#,
        p("dlq.txt")
    );
    let mut args = vec![dir.join("worker.properties")];
    for (name, text) in [
        ("lines", &source),
        ("noise", &noise),
        ("out", &sink),
        ("nums", &nums),
        ("cast", &cast),
        ("dlq", &dlq),
    ] {
        let path = dir.join(format!("{name}.json"));
        write(&path, text);
        args.push(path);
    }
    let log = std::fs::File::create(dir.join("worker.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("standalone")
        .args(&args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn tributary standalone");
    let mut worker = Worker {
        dir: dir.to_path_buf(),
        child,
    };

    let dlq_lines = worker.wait_for_lines(&dir.join("dlq.txt"), 1);
    assert_eq!(dlq_lines, ["not a number"]);
    let cast_lines = worker.wait_for_lines(&dir.join("cast.txt"), 3);
    assert_eq!(cast_lines, ["1", "2", "4"]);
    let out = worker.wait_for_lines(&dir.join("out.txt"), 3);
    assert_eq!(
        out,
        [
            "[alpha, file-source]",
            "[beta, file-source]",
            "[gamma, file-source]"
        ]
    );
    // The noise lines, had they passed the filter, would be among these lines.
    let log = worker.log();
    assert!(
        log.contains("TRANSFORMATION"),
        "the skipped record was not logged:\n{log}"
    );
}

/// One HTTP/1.1 request (`Connection: close`); answers the status and the JSON body.
fn http(
    rest: &str,
    method: &str,
    path: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(rest).expect("connect to the REST port");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let body = body.to_string();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {rest}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    let _ = stream.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{text:?}"));
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{head:?}"));
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn validate_and_create_name_the_transform_keys() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        &dir.join("worker.properties"),
        &format!(
            "broker.data.dir={}\nbroker.listener=none\nplugin.path={}\n\
             key.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n\
             listeners=http://127.0.0.1:0\n",
            dir.join("data").display(),
            file_plugin_dir().display()
        ),
    );
    let log = std::fs::File::create(dir.join("worker.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("standalone")
        .arg(dir.join("worker.properties"))
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
    // tributary standalone worker started in N ms (broker ADDR, rest http://IP:PORT)
    let line = std::io::BufReader::new(out)
        .lines()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("no startup line; log:\n{}", worker.log()));
    let rest = line
        .split_once(", rest http://")
        .and_then(|(_, r)| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no REST address in {line:?}"))
        .to_owned();

    let config = serde_json::json!({
        "name": "bad",
        "connector.class": "FileStreamSource",
        "file": dir.join("in.txt").display().to_string(),
        "topic": "t",
        "transforms": "route,mask",
        "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
        "transforms.route.replacement": "x",
        "transforms.mask.type": "Foo",
    });
    // The plugin directory is scanned after the REST listener is up: ask until it is.
    let deadline = Instant::now() + DEADLINE;
    let (status, v) = loop {
        let (status, v) = http(
            &rest,
            "PUT",
            "/connector-plugins/FileStreamSource/config/validate",
            &config,
        );
        let loading = status == 400
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("no connector plugin is named"));
        if !loading || Instant::now() > deadline {
            break (status, v);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["error_count"], 2, "{v}");
    let groups: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g.as_str())
        .collect();
    assert!(groups.contains(&"Transforms: route"), "{groups:?}");
    let errors = |name: &str| -> Vec<String> {
        let c = v["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["value"]["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {v}"));
        c["value"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(errors("transforms.route.regex")[0].starts_with("missing required key"));
    assert!(errors("transforms.mask.type")[0].contains("unknown type 'Foo'"));
    assert!(errors("transforms.route.replacement").is_empty());

    // Creating it is refused with the same keys named.
    let (status, v) = http(
        &rest,
        "POST",
        "/connectors",
        &serde_json::json!({
            "name": "bad", "config": config
        }),
    );
    assert_eq!(status, 400, "{v}");
    let message = v["message"].as_str().unwrap_or_default();
    assert!(message.contains("transforms.route.regex"), "{message}");
    assert!(message.contains("transforms.mask.type"), "{message}");
}
