//! The command line against a real `tributary standalone` worker: every `tributary
//! connectors` and `tributary plugins` subcommand, its table, its `--json` and its error
//! answers (exit code and message), an unreachable worker; and deploy by folder
//! (`--connectors-dir`): files dropped, edited, half-written, invalid, clashing and
//! removed, and the REST API and the folder agreeing, across a restart too.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use super::standalone::file_plugin_dir;
use super::support::{CommandOutput, run_bounded};

/// How long anything asynchronous may take (a debug build on a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(60);
/// The folder watcher's quiet period (`DeployOptions::default`).
const QUIET: Duration = Duration::from_millis(500);

/// A `tributary standalone` child process with its REST address; killed on drop.
struct Worker {
    child: Option<Child>,
    dir: PathBuf,
    url: String,
}

impl Worker {
    /// Start a worker on `dir` (data, plugin path, logs there), with `extra` arguments.
    fn start(dir: &Path, extra: &[&str]) -> Worker {
        write_worker_properties(dir);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("worker.log"))
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("standalone")
            .arg(dir.join("worker.properties"))
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn tributary standalone");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        let mut worker = Worker {
            child: Some(child),
            dir: dir.to_path_buf(),
            url: String::new(),
        };
        let line = lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("no startup line ({e}); log:\n{}", worker.log()));
        let rest = line
            .split_once(", rest ")
            .and_then(|(_, r)| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("no REST address in {line:?}"));
        worker.url = rest.to_owned();
        worker
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("worker.log")).unwrap_or_default()
    }

    /// `tributary ARGS --url URL`.
    fn cli(&self, args: &[&str]) -> CommandOutput {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--url", &self.url]);
        tributary(&all, &[])
    }

    /// `tributary ARGS`, expecting success; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            out.stderr
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `tributary ARGS --json`, expecting success; its JSON.
    fn json(&self, args: &[&str]) -> Json {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
    }

    /// `tributary ARGS`, expecting exit code 1 with `needle` in the error message; the
    /// message.
    fn fails(&self, args: &[&str], needle: &str) -> String {
        let out = self.cli(args);
        fails_with(args, &out, needle)
    }

    /// The names of the connectors, through `connectors list --json`.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .json(&["connectors", "list"])
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    fn config(&self, name: &str) -> Json {
        self.json(&["connectors", "get", name])["config"].clone()
    }

    /// A connector's config, or `None` if there is no such connector (for polling while
    /// the folder creates and deletes).
    fn try_config(&self, name: &str) -> Option<Json> {
        let out = self.cli(&["connectors", "get", name, "--json"]);
        if !out.status.success() {
            assert!(out.stderr.contains("(HTTP 404)"), "{}", out.stderr);
            return None;
        }
        let body: Json = serde_json::from_slice(&out.stdout).unwrap();
        Some(body["config"].clone())
    }

    fn status(&self, name: &str) -> Json {
        self.json(&["connectors", "status", name])
    }

    /// Poll until `f` holds.
    fn until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !f() {
            assert!(
                Instant::now() < deadline,
                "{what}: not within {WAIT:?}; log:\n{}",
                super::support::tail(&self.log(), 8000)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// How many log lines contain every one of `needles`.
    fn log_lines(&self, needles: &[&str]) -> usize {
        self.log()
            .lines()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .count()
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

/// `DIR/worker.properties`: data in `DIR/data`, the file plugins, REST on a free port.
fn write_worker_properties(dir: &Path) -> PathBuf {
    let path = dir.join("worker.properties");
    std::fs::write(
        &path,
        format!(
            "broker.data.dir={}\nbroker.listener=none\nplugin.path={}\n\
             key.converter=org.apache.kafka.connect.storage.StringConverter\n\
             value.converter=org.apache.kafka.connect.storage.StringConverter\n\
             offset.flush.interval.ms=200\nlisteners=http://127.0.0.1:0\n",
            dir.join("data").display(),
            file_plugin_dir().display()
        ),
    )
    .unwrap();
    path
}

/// Run the binary with `args` and `env`.
fn tributary(args: &[&str], env: &[(&str, &str)]) -> CommandOutput {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tributary"));
    cmd.args(args)
        .env_remove("TRIBUTARY_URL")
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_bounded(&mut cmd, None, Duration::from_secs(120))
}

/// Exit code 1 and `needle` in the `error: ...` line; the message.
fn fails_with(args: &[&str], out: &CommandOutput, needle: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} should fail: stdout {}\nstderr {}",
        String::from_utf8_lossy(&out.stdout),
        out.stderr
    );
    let message = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or_else(|| panic!("{args:?}: no error line in {:?}", out.stderr))
        .to_owned();
    assert!(
        message.contains(needle),
        "{args:?}: {needle:?} not in {message:?}"
    );
    message
}

fn write_json(path: &Path, doc: &Json) {
    std::fs::write(path, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
}

fn state(status: &Json) -> &str {
    status["connector"]["state"].as_str().unwrap_or_default()
}

fn running(status: &Json) -> bool {
    state(status) == "RUNNING"
        && status["tasks"]
            .as_array()
            .is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["state"] == "RUNNING"))
}

// ---- the connectors and plugins commands ---------------------------------------------

#[test]
fn every_connectors_command_and_its_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = dir.join("in.txt");
    std::fs::write(&input, "one\ntwo\nthree\n").unwrap();

    // No worker there: every command says where it looked and what to do.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let url = format!("http://{closed}");
    for args in [
        &["connectors", "list", "--url", &url][..],
        &["plugins", "list", "--url", &url],
        &["connectors", "status", "x", "--url", &url],
    ] {
        let message = fails_with(args, &tributary(args, &[]), "cannot reach");
        assert!(message.contains(&url), "{message}");
        assert!(message.contains("--url"), "{message}");
        assert!(message.contains("tributary standalone"), "{message}");
    }
    // The environment variable is the default URL; a bad one is named.
    let message = fails_with(
        &["connectors", "list"],
        &tributary(&["connectors", "list"], &[("TRIBUTARY_URL", &url)]),
        "cannot reach",
    );
    assert!(message.contains(&url), "{message}");
    fails_with(
        &["connectors", "list"],
        &tributary(&["connectors", "list"], &[("TRIBUTARY_URL", "https://x:1")]),
        "TRIBUTARY_URL",
    );
    fails_with(
        &["connectors", "list", "--url", "http://h:port"],
        &tributary(&["connectors", "list", "--url", "http://h:port"], &[]),
        "--url",
    );

    // Something that is not an HTTP server: said so, naming the listeners key.
    let garbage = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage_url = format!("http://{}", garbage.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = garbage.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = conn.read(&mut buf);
        let _ = conn.write_all(b"not http at all\r\n\r\n");
    });
    let args = ["connectors", "list", "--url", &garbage_url];
    let message = fails_with(&args, &tributary(&args, &[]), "no HTTP answer");
    assert!(message.contains("listeners"), "{message}");
    server.join().unwrap();

    let w = Worker::start(dir, &[]);

    // The same worker through TRIBUTARY_URL.
    let out = tributary(&["connectors", "list"], &[("TRIBUTARY_URL", &w.url)]);
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "NAME  TYPE  STATE  TASKS  CLASS\n"
    );

    // plugins list: a table, the server's JSON, converters with --all.
    w.until("the file plugins", || {
        w.ok(&["plugins", "list"])
            .contains("FileStreamSinkConnector")
    });
    let table = w.ok(&["plugins", "list"]);
    assert!(table.starts_with("CLASS"), "{table}");
    assert!(
        table.lines().any(|l| l
            .contains("org.apache.kafka.connect.file.FileStreamSourceConnector")
            && l.contains("source")),
        "{table}"
    );
    let plugins = w.json(&["plugins", "list"]);
    assert!(
        plugins
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["type"] == "source" || p["type"] == "sink"),
        "{plugins}"
    );
    assert!(
        w.ok(&["plugins", "list", "--all"])
            .contains("JsonConverter")
    );

    // create: from a wrapped file, and from a flat one named by its stem.
    let source = dir.join("src.json");
    write_json(
        &source,
        &json!({"name": "src", "config": {
            "connector.class": "FileStreamSource",
            "file": input.display().to_string(),
            "topic": "lines",
        }}),
    );
    assert_eq!(
        w.ok(&["connectors", "create", source.to_str().unwrap()]),
        "created connector src (source)\n"
    );
    let sink_out = dir.join("out.txt");
    let sink = dir.join("sink.json");
    write_json(
        &sink,
        &json!({
            "connector.class": "FileStreamSink",
            "file": sink_out.display().to_string(),
            "topics": "lines",
        }),
    );
    let created = w.json(&["connectors", "create", sink.to_str().unwrap()]);
    assert_eq!(created["name"], "sink");
    assert_eq!(created["type"], "sink");
    assert_eq!(created["config"]["name"], "sink");
    // From stdin (a flat map must name itself there).
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tributary"));
    cmd.args(["connectors", "create", "-", "--url", &w.url]);
    let stdin = json!({"name": "piped", "connector.class": "FileStreamSink", "topics": "lines",
                       "file": dir.join("piped.txt").display().to_string()});
    let out = run_bounded(
        &mut cmd,
        Some(stdin.to_string().into_bytes()),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "created connector piped (sink)\n"
    );
    // The wrapped form's initial_state is passed on.
    let paused = dir.join("paused.json");
    write_json(
        &paused,
        &json!({"name": "paused", "initial_state": "PAUSED", "config": {
            "connector.class": "FileStreamSink", "topics": "lines",
            "file": dir.join("paused.txt").display().to_string()}}),
    );
    w.ok(&["connectors", "create", paused.to_str().unwrap()]);
    w.until("created paused", || state(&w.status("paused")) == "PAUSED");
    w.ok(&["connectors", "delete", "paused"]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tributary"));
    cmd.args(["connectors", "create", "-", "--url", &w.url]);
    let out = run_bounded(&mut cmd, Some(b"{\"topics\": \"x\"}".to_vec()), WAIT);
    fails_with(&["create", "-"], &out, "no connector name");
    w.ok(&["connectors", "delete", "piped"]);
    // Errors: the server's message (409), a file that is not JSON, a missing file.
    w.fails(
        &["connectors", "create", source.to_str().unwrap()],
        "connector src already exists",
    );
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "{\"name\": ").unwrap();
    w.fails(
        &["connectors", "create", garbage.to_str().unwrap()],
        "garbage.json is not valid JSON",
    );
    w.fails(
        &[
            "connectors",
            "create",
            dir.join("nope.json").to_str().unwrap(),
        ],
        "nope.json",
    );
    let bad_class = dir.join("bad-class.json");
    write_json(&bad_class, &json!({"connector.class": "NoSuchConnector"}));
    w.fails(
        &["connectors", "create", bad_class.to_str().unwrap()],
        "NoSuchConnector",
    );

    // list: both, with type, state and tasks.
    w.until("both running", || {
        running(&w.status("src")) && running(&w.status("sink"))
    });
    let table = w.ok(&["connectors", "list"]);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(rows[0].starts_with("NAME"), "{table}");
    for (row, name, kind, class) in [
        (rows[1], "sink", "sink", "FileStreamSink"),
        (rows[2], "src", "source", "FileStreamSource"),
    ] {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells, [name, kind, "RUNNING", "1/1", class], "{table}");
    }
    assert_eq!(w.names(), ["sink", "src"]);

    // get
    let text = w.ok(&["connectors", "get", "src"]);
    assert!(
        text.contains("name:  src\ntype:  source\ntasks: 1\n"),
        "{text}"
    );
    assert!(text.contains("  topic = lines\n"), "{text}");
    assert_eq!(w.config("src")["topic"], "lines");
    w.fails(&["connectors", "get", "ghost"], "connector ghost not found");
    // With --json, the server's error body too, for scripts.
    let out = w.cli(&["connectors", "get", "ghost", "--json"]);
    fails_with(&["get", "--json"], &out, "(HTTP 404)");
    let body: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["error_code"], 404, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("ghost"),
        "{body}"
    );

    // status
    let text = w.ok(&["connectors", "status", "src"]);
    assert!(
        text.starts_with("connector src (source): RUNNING on "),
        "{text}"
    );
    assert!(text.contains("TASK  STATE"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("0 ") && l.contains("RUNNING")),
        "{text}"
    );
    w.fails(&["connectors", "status", "ghost"], "ghost");

    // The records went through: the sink wrote the source's lines.
    w.until("the sink's file", || {
        std::fs::read_to_string(&sink_out).is_ok_and(|t| t == "one\ntwo\nthree\n")
    });

    // update: a changed config; a refused one; a name that disagrees with the URL.
    let updated = dir.join("update.json");
    write_json(
        &updated,
        &json!({
            "connector.class": "FileStreamSource",
            "file": input.display().to_string(),
            "topic": "lines",
            "batch.size": "7",
        }),
    );
    assert_eq!(
        w.ok(&["connectors", "update", "src", updated.to_str().unwrap()]),
        "updated connector src\n"
    );
    assert_eq!(w.config("src")["batch.size"], "7");
    assert_eq!(
        w.ok(&["connectors", "update", "src2", updated.to_str().unwrap()]),
        "created connector src2\n"
    );
    w.ok(&["connectors", "delete", "src2"]);
    let refused = dir.join("refused.json");
    write_json(
        &refused,
        &json!({"connector.class": "FileStreamSource", "topic": "lines", "tasks.max": "many"}),
    );
    w.fails(
        &["connectors", "update", "src", refused.to_str().unwrap()],
        "tasks.max",
    );
    assert_eq!(
        w.config("src")["batch.size"],
        "7",
        "a refused update changes nothing"
    );
    w.fails(
        &["connectors", "update", "other", source.to_str().unwrap()],
        "doesn't match connector name",
    );

    // pause, resume, stop
    assert!(
        w.ok(&["connectors", "pause", "src"])
            .contains("pausing connector src")
    );
    w.until("paused", || state(&w.status("src")) == "PAUSED");
    assert_eq!(
        w.ok(&["connectors", "resume", "src"]),
        "resuming connector src\n"
    );
    w.until("resumed", || running(&w.status("src")));
    assert_eq!(
        w.ok(&["connectors", "stop", "src"]),
        "stopped connector src\n"
    );
    w.until("stopped", || state(&w.status("src")) == "STOPPED");
    for verb in ["pause", "resume", "stop"] {
        w.fails(&["connectors", verb, "ghost"], "ghost");
    }
    w.ok(&["connectors", "resume", "src"]);
    w.until("running again", || running(&w.status("src")));

    // restart: the connector alone (204), with its tasks (202 and the plan).
    assert_eq!(
        w.ok(&["connectors", "restart", "src"]),
        "restarted connector src\n"
    );
    let text = w.ok(&["connectors", "restart", "src", "--include-tasks"]);
    assert!(text.starts_with("restarting connector src:\n"), "{text}");
    assert!(text.contains("RESTARTING"), "{text}");
    let plan = w.json(&[
        "connectors",
        "restart",
        "src",
        "--include-tasks",
        "--only-failed",
    ]);
    assert_eq!(plan["name"], "src");
    assert_eq!(
        plan["connector"]["state"], "RUNNING",
        "nothing failed, nothing restarts: {plan}"
    );
    w.fails(&["connectors", "restart", "ghost"], "ghost");
    w.until("running after restarts", || running(&w.status("src")));

    // validate: a good config, one with errors (exit 1, the keys listed), no class.
    let out = w.ok(&["connectors", "validate", source.to_str().unwrap()]);
    assert!(out.contains("the config is valid"), "{out}");
    let out = w.cli(&["connectors", "validate", refused.to_str().unwrap()]);
    let message = fails_with(&["validate"], &out, "error(s) in the config");
    assert!(message.contains("refused.json"), "{message}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("tasks.max") && l.contains("many")),
        "{table}"
    );
    let out = w.cli(&[
        "connectors",
        "validate",
        refused.to_str().unwrap(),
        "--json",
    ]);
    let body: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert!(body["error_count"].as_u64().unwrap() >= 1, "{body}");
    assert_eq!(out.status.code(), Some(1));
    let classless = dir.join("classless.json");
    write_json(&classless, &json!({"name": "x", "topic": "t"}));
    w.fails(
        &["connectors", "validate", classless.to_str().unwrap()],
        "has no connector.class",
    );
    w.fails(
        &["connectors", "validate", bad_class.to_str().unwrap()],
        "NoSuchConnector",
    );

    // offsets: the source's position in its file.
    w.until("the source's offset", || {
        w.json(&["connectors", "offsets", "src"])["offsets"]
            .as_array()
            .is_some_and(|o| !o.is_empty())
    });
    let table = w.ok(&["connectors", "offsets", "src"]);
    assert!(table.starts_with("PARTITION"), "{table}");
    assert!(table.contains("in.txt"), "{table}");
    w.fails(&["connectors", "offsets", "ghost"], "ghost");

    // delete
    assert_eq!(
        w.ok(&["connectors", "delete", "src"]),
        "deleted connector src\n"
    );
    w.fails(&["connectors", "delete", "src"], "connector src not found");
    assert_eq!(w.names(), ["sink"]);

    // Usage errors are clap's (exit 2), not requests.
    let out = w.cli(&["connectors", "get"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    w.terminate();
}

// ---- deploy by folder ------------------------------------------------------------------

fn source_config(input: &Path, topic: &str) -> Json {
    json!({
        "connector.class": "FileStreamSource",
        "file": input.display().to_string(),
        "topic": topic,
    })
}

/// Write `doc` as a finished file appears when written safely: under a hidden name,
/// then renamed into place.
fn drop_file(dir: &Path, name: &str, doc: &Json) {
    let tmp = dir.join(format!(".{name}.tmp"));
    write_json(&tmp, doc);
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[test]
fn a_folder_of_connector_files_deploys_connectors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let folder = dir.join("connectors");
    std::fs::create_dir(&folder).unwrap();
    let input = dir.join("in.txt");
    std::fs::write(&input, "a\nb\n").unwrap();

    // A missing folder fails the start at once, naming it.
    let properties = write_worker_properties(dir);
    let missing = dir.join("missing");
    let args = [
        "standalone",
        properties.to_str().unwrap(),
        "--connectors-dir",
        missing.to_str().unwrap(),
    ];
    let message = fails_with(&args, &tributary(&args, &[]), "connectors.dir");
    assert!(message.contains("missing"), "{message}");
    assert!(message.contains("create the folder"), "{message}");

    // At start: a flat file named by its stem, a wrapped one, and a file that is not a
    // connector file at all.
    write_json(
        &folder.join("alpha.json"),
        &source_config(&input, "t-alpha"),
    );
    write_json(
        &folder.join("wrapped.json"),
        &json!({"name": "beta", "config": source_config(&input, "t-beta")}),
    );
    std::fs::write(folder.join("notes.txt"), "not a connector").unwrap();
    std::fs::write(folder.join(".hidden.json"), "{ half").unwrap();
    let w = Worker::start(dir, &["--connectors-dir", folder.to_str().unwrap()]);
    // Applied before the worker says it started.
    assert_eq!(w.names(), ["alpha", "beta"]);
    let alpha = folder.join("alpha.json");
    assert_eq!(
        w.config("alpha")["tributary.connectors.dir.file"],
        alpha.canonicalize().unwrap().display().to_string()
    );
    w.until("alpha and beta running", || {
        running(&w.status("alpha")) && running(&w.status("beta"))
    });

    // A new file creates its connector.
    drop_file(&folder, "gamma.json", &source_config(&input, "t-gamma"));
    w.until("gamma created", || w.names().contains(&"gamma".to_owned()));
    w.until("gamma running", || running(&w.status("gamma")));

    // An edited file updates the config; the same content again changes nothing.
    let mut edited = source_config(&input, "t-alpha");
    edited["batch.size"] = json!("5");
    write_json(&alpha, &edited);
    w.until("alpha updated", || w.config("alpha")["batch.size"] == "5");
    let updates = |w: &Worker| w.log_lines(&["connector config updated from its file", "alpha"]);
    assert_eq!(updates(&w), 1);
    write_json(&alpha, &edited);
    // Files are decided in the order they settle, on one thread: once a file written
    // after it has been applied, alpha's rewrite has been decided.
    drop_file(&folder, "marker.json", &source_config(&input, "t-marker"));
    w.until("marker created", || {
        w.names().contains(&"marker".to_owned())
    });
    assert_eq!(updates(&w), 1, "an unchanged config is not applied again");

    // A half-written file: written in pieces with pauses shorter than the quiet period,
    // then a pause longer than it with the document still cut short, then finished.
    let half = folder.join("half.json");
    let text = serde_json::to_string_pretty(&source_config(&input, "t-half")).unwrap();
    let (first, rest) = text.split_at(text.len() / 3);
    let (second, third) = rest.split_at(rest.len() / 2);
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&half).unwrap();
        f.write_all(first.as_bytes()).unwrap();
        f.flush().unwrap();
        std::thread::sleep(QUIET / 3);
        f.write_all(second.as_bytes()).unwrap();
        f.flush().unwrap();
        std::thread::sleep(QUIET + QUIET / 5);
        f.write_all(third.as_bytes()).unwrap();
    }
    w.until("half created", || w.names().contains(&"half".to_owned()));
    assert_eq!(w.config("half")["topic"], "t-half");
    assert_eq!(
        w.log_lines(&["half.json", "not applied"]),
        0,
        "a file still being written is not reported"
    );
    assert_eq!(w.log_lines(&["connector created from its file", "half"]), 1);

    // An invalid edit: reported (log and the status trace), the connector untouched.
    std::fs::write(&alpha, "{\"connector.class\": \"FileStreamSource\", ").unwrap();
    w.until("bad JSON reported", || {
        w.log_lines(&["alpha.json", "not applied", "not valid JSON"]) == 1
    });
    w.until("the note in alpha's status", || {
        w.status("alpha")["connector"]["trace"]
            .as_str()
            .is_some_and(|t| t.starts_with("connectors.dir: ") && t.contains("alpha.json"))
    });
    let status = w.status("alpha");
    assert!(running(&status), "{status}");
    assert_eq!(w.config("alpha")["batch.size"], "5");
    let text = w.ok(&["connectors", "status", "alpha"]);
    assert!(text.contains("  connectors.dir: "), "{text}");
    // A config the connector refuses: the same, with the key named.
    let mut refused = source_config(&input, "t-alpha");
    refused["tasks.max"] = json!("zero");
    write_json(&alpha, &refused);
    w.until("the refusal in alpha's status", || {
        w.status("alpha")["connector"]["trace"]
            .as_str()
            .is_some_and(|t| t.contains("tasks.max"))
    });
    assert!(w.log_lines(&["alpha.json", "not applied", "tasks.max"]) >= 1);
    assert!(running(&w.status("alpha")));
    assert_eq!(w.config("alpha")["batch.size"], "5");
    // Fixed: applied, the note gone.
    let mut fixed = source_config(&input, "t-alpha");
    fixed["batch.size"] = json!("6");
    write_json(&alpha, &fixed);
    w.until("alpha fixed", || w.config("alpha")["batch.size"] == "6");
    w.until("the note cleared", || {
        w.status("alpha")["connector"].get("trace").is_none()
    });

    // A name clash between files: the second is refused; beta's owner keeps it.
    drop_file(
        &folder,
        "clash.json",
        &json!({"name": "beta", "config": source_config(&input, "t-clash")}),
    );
    w.until("the clash reported", || {
        w.log_lines(&["clash.json", "not applied", "already deployed from"]) == 1
    });
    assert_eq!(w.config("beta")["topic"], "t-beta");
    w.until("the clash in beta's status", || {
        w.status("beta")["connector"]["trace"]
            .as_str()
            .is_some_and(|t| t.contains("clash.json also names this connector"))
    });

    // The REST API and the folder: a connector created through the API is left alone by
    // a file that names it.
    let made = dir.join("made.json");
    write_json(
        &made,
        &json!({"name": "rest-made", "config": source_config(&input, "t-rest")}),
    );
    w.ok(&["connectors", "create", made.to_str().unwrap()]);
    drop_file(
        &folder,
        "rest-made.json",
        &source_config(&input, "t-from-file"),
    );
    w.until("the REST clash reported", || {
        w.log_lines(&[
            "rest-made.json",
            "not applied",
            "managed through the REST API",
        ]) == 1
    });
    assert_eq!(w.config("rest-made")["topic"], "t-rest");
    assert!(
        w.config("rest-made")
            .get("tributary.connectors.dir.file")
            .is_none()
    );
    // Deleted through the API, the name is free: the file deploys it.
    w.ok(&["connectors", "delete", "rest-made"]);
    w.until("rest-made from its file", || {
        w.try_config("rest-made")
            .is_some_and(|c| c["topic"] == "t-from-file")
    });

    // A removed file deletes its connector; a file that wanted the name takes over.
    std::fs::remove_file(folder.join("wrapped.json")).unwrap();
    w.until("beta from clash.json", || {
        w.try_config("beta")
            .is_some_and(|c| c["topic"] == "t-clash")
    });
    assert_eq!(w.log_lines(&["connector deleted", "beta"]), 1);
    std::fs::remove_file(folder.join("gamma.json")).unwrap();
    w.until("gamma deleted", || !w.names().contains(&"gamma".to_owned()));
    // A REST delete of a folder connector takes effect until its file changes.
    w.ok(&["connectors", "delete", "marker"]);
    assert!(!w.names().contains(&"marker".to_owned()));
    drop_file(&folder, "marker.json", &source_config(&input, "t-marker2"));
    w.until("marker back", || w.names().contains(&"marker".to_owned()));
    assert_eq!(w.config("marker")["topic"], "t-marker2");
    assert!(w.names().contains(&"rest-made".to_owned()));

    // A REST update that keeps the marker holds until the file changes or the worker
    // restarts; one without it hands the connector over to the REST API.
    let mut via_rest = source_config(&input, "t-via-rest");
    via_rest["tributary.connectors.dir.file"] = json!(
        folder
            .join("clash.json")
            .canonicalize()
            .unwrap()
            .display()
            .to_string()
    );
    let via_rest_file = dir.join("via-rest.json");
    write_json(&via_rest_file, &via_rest);
    w.ok(&[
        "connectors",
        "update",
        "beta",
        via_rest_file.to_str().unwrap(),
    ]);
    assert_eq!(w.config("beta")["topic"], "t-via-rest");
    let handed = dir.join("handed.json");
    write_json(&handed, &source_config(&input, "t-handed"));
    w.ok(&["connectors", "update", "half", handed.to_str().unwrap()]);
    assert!(
        w.config("half")
            .get("tributary.connectors.dir.file")
            .is_none()
    );
    std::fs::remove_file(&half).unwrap();
    // Files settle in the order they change: once omega exists, half's removal was seen.
    drop_file(&folder, "omega.json", &source_config(&input, "t-omega"));
    w.until("omega created", || w.names().contains(&"omega".to_owned()));
    assert_eq!(
        w.config("half")["topic"],
        "t-handed",
        "handed over: not deleted"
    );
    assert_eq!(w.log_lines(&["connector deleted", "half"]), 0);

    // The folder moved away deletes nothing; once back, it is watched again.
    let before = w.names();
    let away = dir.join("connectors-away");
    std::fs::rename(&folder, &away).unwrap();
    w.until("the folder's absence noticed", || {
        w.log_lines(&["connectors.dir was removed or moved away"]) == 1
    });
    std::fs::rename(&away, &folder).unwrap();
    w.until("the folder back", || {
        w.log_lines(&["connectors.dir is back"]) == 1
    });
    assert_eq!(w.names(), before);
    drop_file(&folder, "late.json", &source_config(&input, "t-late"));
    w.until("late created", || w.names().contains(&"late".to_owned()));
    std::fs::remove_file(folder.join("late.json")).unwrap();
    w.until("late deleted", || !w.names().contains(&"late".to_owned()));
    w.terminate();

    // Across a restart: a file removed while the worker was down deletes its connector;
    // the REST ones stay; a file changed meanwhile is applied; beta's REST update gives
    // way to its file.
    std::fs::remove_file(folder.join("marker.json")).unwrap();
    write_json(&alpha, &{
        let mut c = source_config(&input, "t-alpha");
        c["batch.size"] = json!("8");
        c
    });
    let w = Worker::start(dir, &["--connectors-dir", folder.to_str().unwrap()]);
    assert_eq!(w.names(), ["alpha", "beta", "half", "omega", "rest-made"]);
    assert_eq!(w.config("beta")["topic"], "t-clash");
    assert_eq!(w.config("half")["topic"], "t-handed");
    w.until("alpha changed", || {
        w.try_config("alpha")
            .is_some_and(|c| c["batch.size"] == "8")
    });
    w.terminate();
}
