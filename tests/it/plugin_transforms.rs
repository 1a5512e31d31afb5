//! Transformations and predicates from a plugin library, end to end through the real
//! binary: the no-op plugin's `NoopTransform` and `ValueContains` beside the file
//! connectors on `plugin.path`; a file source whose plugin transform panics on one line
//! under `errors.tolerance=all` (that line goes to the dead letter queue, the others on),
//! a file sink whose plugin transform applies only where the plugin predicate matches; and
//! the REST listing and config of the plugin's transform.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::transforms::Worker;

const DEADLINE: Duration = Duration::from_secs(120);

/// A plugin directory with the file connectors and the no-op plugin (its transforms).
fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        crate::support::plugin_dir(
            "file-and-noop-plugins",
            &["tributary-connector-file", "tributary-connector-noop"],
        )
    })
}

/// One HTTP/1.1 GET (`Connection: close`); answers the status and the JSON body.
fn get(rest: &str, path: &str) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(rest).expect("connect to the REST port");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {rest}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    let _ = stream.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{text:?}"));
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
fn plugin_transforms_and_predicates_run_in_connectors_and_are_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let p = |name: &str| dir.join(name).display().to_string();
    std::fs::write(dir.join("in.txt"), "alpha\nboom\ngamma\n").unwrap();
    std::fs::write(
        dir.join("worker.properties"),
        format!(
            "broker.data.dir={}\nbroker.listener=none\nplugin.path={}\n\
             key.converter=org.apache.kafka.connect.storage.StringConverter\n\
             value.converter=org.apache.kafka.connect.storage.StringConverter\n\
             offset.flush.interval.ms=200\nlisteners=http://127.0.0.1:0\n",
            p("data"),
            plugin_dir().display()
        ),
    )
    .unwrap();
    // The source's plugin transform appends "!" and panics on "boom": that record is
    // skipped and sent to the DLQ, the others go on.
    let source = format!(
        r#"{{"name": "lines", "config": {{
            "connector.class": "FileStreamSource", "file": "{}", "topic": "lines",
            "transforms": "bang",
            "transforms.bang.type": "io.tributary.connect.noop.NoopTransform",
            "transforms.bang.noop.suffix": "!",
            "transforms.bang.noop.panic.on": "boom",
            "errors.tolerance": "all",
            "errors.log.enable": "true",
            "errors.deadletterqueue.topic.name": "lines-dlq"
        }}}}"#,
        p("in.txt")
    );
    // The sink's plugin transform (by its simple name) applies where the plugin predicate
    // matches, after a built-in.
    let sink = format!(
        r#"{{"name": "out", "config": {{
            "connector.class": "FileStreamSink", "file": "{}", "topics": "lines",
            "transforms": "route,mark",
            "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
            "transforms.route.regex": "(.*)",
            "transforms.route.replacement": "$1-routed",
            "transforms.mark.type": "NoopTransform",
            "transforms.mark.noop.suffix": "?",
            "transforms.mark.predicate": "isAlpha",
            "predicates": "isAlpha",
            "predicates.isAlpha.type": "ValueContains",
            "predicates.isAlpha.noop.pattern": "alp"
        }}}}"#,
        p("out.txt")
    );
    let dlq = format!(
        r#"{{"name": "dlq", "config": {{
            "connector.class": "FileStreamSink", "file": "{}", "topics": "lines-dlq"
        }}}}"#,
        p("dlq.txt")
    );
    let mut args = vec![dir.join("worker.properties")];
    for (name, text) in [("lines", &source), ("out", &sink), ("dlq", &dlq)] {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, text).unwrap();
        args.push(path);
    }
    let log = std::fs::File::create(dir.join("worker.log")).unwrap();
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
    let mut worker = Worker {
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

    // The source DLQ holds the record as polled (its value as JSON text).
    let dlq_lines = worker.wait_for_lines(&dir.join("dlq.txt"), 1);
    assert_eq!(dlq_lines, ["\"boom\""]);
    let out = worker.wait_for_lines(&dir.join("out.txt"), 2);
    assert_eq!(out, ["alpha!?", "gamma!"]);
    let log = worker.log();
    assert!(
        log.contains("asked to panic"),
        "the panic was not logged:\n{log}"
    );

    // Listed with the built-ins, with the plugin's version and type.
    let (status, list) = get(&rest, "/connector-plugins?connectorsOnly=false");
    assert_eq!(status, 200, "{list}");
    let find = |class: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|p| p["class"] == class)
            .cloned()
            .unwrap_or_else(|| panic!("no {class} in {list}"))
    };
    let t = find("io.tributary.connect.noop.NoopTransform");
    assert_eq!(
        (t["type"].as_str(), t["version"].as_str()),
        (Some("transformation"), Some("0.1.0"))
    );
    let pr = find("io.tributary.connect.noop.ValueContains");
    assert_eq!(pr["type"], "predicate");
    find("org.apache.kafka.connect.transforms.RegexRouter");
    // Its config definition, by alias.
    let (status, keys) = get(&rest, "/connector-plugins/NoopTransform/config");
    assert_eq!(status, 200, "{keys}");
    let names: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert!(names.contains(&"noop.suffix"), "{names:?}");
}

#[test]
fn plugin_list_and_plugin_new_know_transforms() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["plugin", "list", "--plugin-path"])
        .arg(plugin_dir())
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .output()
        .expect("run tributary plugin list");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let row = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
            .to_owned()
    };
    assert!(row("TRANSFORM").contains("TYPE"), "{text}");
    let t = row("io.tributary.connect.noop.NoopTransform ");
    assert!(t.contains("transformation") && t.contains("0.1.0"), "{t}");
    assert!(
        row("io.tributary.connect.noop.ValueContains").contains("predicate"),
        "{text}"
    );
    assert!(row("io.tributary.connect.noop.NoopSourceConnector").contains("source"));

    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["plugin", "new", "tag-headers", "--transform", "--dir"])
        .arg(tmp.path())
        .output()
        .expect("run tributary plugin new");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("the transform com.example.tag_headers.TagHeadersTransform"),
        "{text}"
    );
    let lib = std::fs::read_to_string(tmp.path().join("tag-headers/src/lib.rs")).unwrap();
    assert!(lib.contains("transforms: [TagHeadersTransform]"), "{lib}");
    // --transform and --sink exclude each other.
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["plugin", "new", "both", "--transform", "--sink", "--dir"])
        .arg(tmp.path())
        .output()
        .expect("run tributary plugin new");
    assert!(!out.status.success());
    assert!(!tmp.path().join("both").exists());
}
