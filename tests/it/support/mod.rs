//! The harness shared by the integration tests: log configs, reading a whole log back
//! batch by batch, a small seeded generator, the `tributary debug crash-writer` child
//! process, `tributary broker` child processes ([`BrokerProcess`]: start on a free or a
//! given port, SIGKILL, SIGTERM, restart on the same data directory), and other child
//! processes run with a time limit ([`run_bounded`], [`LineChild`]).
//!
//! It holds no assertions about the log's behaviour; the tests do.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tributary::log::batch::{self, BatchHeader, BatchIter, Record};
use tributary::log::{LogConfig, PartitionLog};

/// A log config with `pairs` applied over the defaults.
pub fn log_config(pairs: &[(&str, String)]) -> Arc<LogConfig> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Arc::new(
        LogConfig::default()
            .with_overrides(&map)
            .expect("test config is valid"),
    )
}

/// One batch as stored, with its decoded records.
#[derive(Debug)]
pub struct StoredBatch {
    pub header: BatchHeader,
    pub bytes: Vec<u8>,
    pub records: Vec<Record>,
}

/// Read every batch from the log start offset to the high watermark, in order,
/// checking that reads return whole batches that follow each other without gaps or
/// overlaps. Any error (I/O, a corrupt batch, a malformed read) is returned as text.
pub fn read_all(log: &PartitionLog) -> Result<Vec<StoredBatch>, String> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    let hw = log.high_watermark();
    while next < hw {
        let read = log
            .read(next, 1 << 20, true)
            .map_err(|e| format!("read at offset {next}: {e}"))?;
        if read.records.is_empty() {
            return Err(format!(
                "read at offset {next} below the high watermark {hw} returned nothing"
            ));
        }
        let mut consumed = 0;
        for item in BatchIter::new(&read.records) {
            let (pos, header) = item.map_err(|e| format!("read at offset {next}: {e}"))?;
            let bytes = &read.records[pos..pos + header.size()];
            if header.base_offset != next {
                return Err(format!(
                    "expected a batch starting at offset {next}, got {}..={}",
                    header.base_offset,
                    header.last_offset()
                ));
            }
            let (_, records) = batch::decode_records(bytes, 64 << 20)
                .map_err(|e| format!("batch at offset {next}: {e}"))?;
            next = header.last_offset() + 1;
            consumed = pos + header.size();
            out.push(StoredBatch {
                header,
                bytes: bytes.to_vec(),
                records,
            });
        }
        if consumed != read.records.len() {
            return Err(format!(
                "read ending at offset {next} returned {} bytes after its last whole batch",
                read.records.len() - consumed
            ));
        }
    }
    if next != hw {
        return Err(format!(
            "the last batch ends at offset {next}, past the high watermark {hw}"
        ));
    }
    Ok(out)
}

/// The `*.log` segment files in `dir`, oldest (lowest base offset) first; none if
/// `dir` does not exist (yet).
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("list {}: {e}", dir.display()),
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(tributary::log::segment::parse_log_file_name)
                .is_some()
        })
        .collect();
    files.sort();
    files
}

/// SplitMix64: deterministic, seedable, good enough to pick test inputs.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In `0..n`; `n` must be positive.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// In `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// The seed for a randomized test: `TRIBUTARY_TEST_SEED` if set (to replay a failure),
/// else the clock. Tests print it so a failure can be replayed.
pub fn test_seed() -> u64 {
    match std::env::var("TRIBUTARY_TEST_SEED") {
        Ok(s) => s.parse().expect("TRIBUTARY_TEST_SEED is a u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    }
}

/// A running `tributary debug crash-writer`, with its acknowledgements collected by a
/// reader thread as it prints them.
#[derive(Debug)]
pub struct CrashWriter {
    child: Child,
    acks: Receiver<(i64, i64)>,
    seen: Vec<(i64, i64)>,
    stdout: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

/// What a killed writer left behind.
#[derive(Debug)]
pub struct Killed {
    /// Every acknowledgement it printed, in order.
    pub acks: Vec<(i64, i64)>,
    pub status: ExitStatus,
    pub stderr: String,
}

impl CrashWriter {
    pub fn spawn(
        dir: &Path,
        flush_messages: Option<u64>,
        segment_bytes: u64,
        seed: u64,
    ) -> CrashWriter {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tributary"));
        cmd.args(["debug", "crash-writer", "--dir"])
            .arg(dir)
            .args(["--segment-bytes", &segment_bytes.to_string()])
            .args(["--seed", &seed.to_string()])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(n) = flush_messages {
            cmd.args(["--flush-messages", &n.to_string()]);
        }
        let mut child = cmd.spawn().expect("spawn tributary debug crash-writer");
        let out = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");
        let (tx, acks) = mpsc::channel();
        let stdout = std::thread::spawn(move || forward_acks(out, tx));
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        CrashWriter {
            child,
            acks,
            seen: Vec::new(),
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// Wait until `n` acknowledgements have arrived in all, the writer's stdout ends,
    /// or `deadline` passes. Returns how many have arrived.
    pub fn wait_for_acks(&mut self, n: usize, deadline: Instant) -> usize {
        while self.seen.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.acks.recv_timeout(left) {
                Ok(ack) => self.seen.push(ack),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        self.seen.len()
    }

    /// SIGKILL the writer, reap it, and collect everything it printed.
    pub fn kill(mut self) -> Killed {
        self.child.kill().expect("send SIGKILL to the crash writer");
        let status = self.child.wait().expect("reap the crash writer");
        // Its pipes are closed now: the reader threads finish.
        if let Some(t) = self.stdout.take() {
            t.join().expect("stdout reader thread");
        }
        let stderr = self
            .stderr
            .take()
            .map(|t| t.join().expect("stderr reader thread"))
            .unwrap_or_default();
        self.seen.extend(self.acks.try_iter());
        Killed {
            acks: std::mem::take(&mut self.seen),
            status,
            stderr,
        }
    }
}

impl Drop for CrashWriter {
    fn drop(&mut self) {
        // Only reached with a live child when a test panics: leave no writer behind.
        if self.stdout.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Parse `ack <base> <last>` lines and send them on; a line cut short by the kill (no
/// newline) is not an acknowledgement the test can rely on, so it is dropped.
fn forward_acks(out: ChildStdout, tx: mpsc::Sender<(i64, i64)>) {
    let mut reader = BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if !line.ends_with('\n') => return,
            Ok(_) => {}
        }
        let mut parts = line.split_whitespace();
        let ack = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("ack"), Some(base), Some(last), None) => base.parse().ok().zip(last.parse().ok()),
            _ => None,
        };
        let ack = ack.unwrap_or_else(|| panic!("crash writer printed {line:?}"));
        if tx.send(ack).is_err() {
            return;
        }
    }
}

/// How long a broker may take to print its listening line (recovery included).
const BROKER_START_DEADLINE: Duration = Duration::from_secs(60);

/// How long a broker may take to exit after SIGTERM.
const BROKER_STOP_DEADLINE: Duration = Duration::from_secs(30);

/// A `tributary broker` child process listening on a free port of 127.0.0.1, with its
/// stderr appended to `<data dir>.log` (kept across restarts, shown when a test fails).
///
/// Dropping it SIGKILLs the process, so a failing test leaves no broker behind.
#[derive(Debug)]
pub struct BrokerProcess {
    child: Option<Child>,
    /// Where clients connect: `127.0.0.1:PORT`.
    pub bootstrap: String,
    log: PathBuf,
    stdout: Option<JoinHandle<()>>,
}

impl BrokerProcess {
    /// Start a broker on `data_dir` with `--override` for each `key=value` in
    /// `overrides`, listening on a free port, and wait for its listening line.
    pub fn start(data_dir: &Path, overrides: &[&str]) -> BrokerProcess {
        BrokerProcess::try_start_on(data_dir, "127.0.0.1:0", overrides)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Start a broker listening on `listen` (e.g. the address of one that was just
    /// killed, so its clients reconnect) and wait for its `tributary broker listening
    /// on ADDR` line. `Err` if it prints no such line: it exited (say, the port is
    /// taken) or it took longer than a minute; the message includes its log.
    pub fn try_start_on(
        data_dir: &Path,
        listen: &str,
        overrides: &[&str],
    ) -> Result<BrokerProcess, String> {
        let log = broker_log_path(data_dir);
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("open {}: {e}", log.display()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tributary"));
        cmd.arg("broker")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", listen])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        for o in overrides {
            cmd.args(["--override", o]);
        }
        let mut child = cmd.spawn().expect("spawn tributary broker");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        // Reads every line, so the broker never blocks on a full pipe; the first one
        // is the listening line.
        let stdout = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        let mut broker = BrokerProcess {
            child: Some(child),
            bootstrap: String::new(),
            log,
            stdout: Some(stdout),
        };
        let line = match lines.recv_timeout(BROKER_START_DEADLINE) {
            Ok(line) => line,
            Err(e) => {
                // Dropping `broker` kills and reaps it; its log says why it failed.
                return Err(format!(
                    "the broker on {} printed no listening line ({e}); its log:\n{}",
                    data_dir.display(),
                    broker.log_tail()
                ));
            }
        };
        match line.strip_prefix("tributary broker listening on ") {
            Some(addr) => broker.bootstrap = addr.trim().to_string(),
            None => {
                return Err(format!(
                    "the broker's first stdout line is {line:?}; its log:\n{}",
                    broker.log_tail()
                ));
            }
        }
        Ok(broker)
    }

    /// The last 8 KiB of the broker's stderr, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(8 << 10);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    /// SIGKILL the broker and reap it: nothing gets flushed or closed.
    pub fn kill(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("a running broker");
        child.kill().expect("send SIGKILL to the broker");
        let status = child.wait().expect("reap the broker");
        self.join_stdout();
        status
    }

    /// SIGTERM the broker and wait (bounded) for it to exit; it must exit cleanly.
    pub fn terminate(mut self) {
        let child = self.child.take().expect("a running broker");
        let pid = child.id();
        signal(pid, libc::SIGTERM);
        match wait_bounded(child, BROKER_STOP_DEADLINE) {
            Ok(status) => assert!(
                status.success(),
                "the broker exited with {status} after SIGTERM; its log:\n{}",
                self.log_tail()
            ),
            Err(()) => panic!(
                "the broker did not exit within {BROKER_STOP_DEADLINE:?} of SIGTERM (now killed); its log:\n{}",
                self.log_tail()
            ),
        }
        self.join_stdout();
    }

    fn join_stdout(&mut self) {
        if let Some(t) = self.stdout.take() {
            t.join().expect("broker stdout reader thread");
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        // Only reached with a live child when a test panics: leave no broker behind.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where [`BrokerProcess`] appends the stderr of brokers on `data_dir`.
pub fn broker_log_path(data_dir: &Path) -> PathBuf {
    let mut name = data_dir.as_os_str().to_owned();
    name.push(".log");
    PathBuf::from(name)
}

fn signal(pid: u32, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("a pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own unreaped
    // child, so it cannot have been reused by another process.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

/// Wait for `child` to exit within `limit`; past it, SIGKILL it, reap it, and return
/// `Err`. A thread waits with `WNOWAIT`, which leaves the exited child unreaped, so its
/// pid stays ours until `child.wait()` here: no polling, and no signal to a reused pid.
fn wait_bounded(mut child: Child, limit: Duration) -> Result<ExitStatus, ()> {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let id = libc::id_t::from(pid);
        loop {
            // SAFETY: `info` is a valid, writable siginfo_t for the call's duration.
            let rc = unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOWAIT)
            };
            if rc == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
            {
                break;
            }
        }
        let _ = tx.send(());
    });
    let in_time = rx.recv_timeout(limit).is_ok();
    if !in_time {
        signal(pid, libc::SIGKILL);
    }
    waiter.join().expect("waiter thread");
    let status = child.wait().expect("reap a child process");
    if in_time { Ok(status) } else { Err(()) }
}

/// What a bounded command printed and how it ended.
#[derive(Debug)]
pub struct CommandOutput {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Run `cmd` with `stdin` as its standard input, capturing its output, and SIGKILL it
/// if it has not finished within `limit` (then panic with what it printed so far).
pub fn run_bounded(cmd: &mut Command, stdin: Option<Vec<u8>>, limit: Duration) -> CommandOutput {
    let what = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let writer = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("piped stdin");
        std::thread::spawn(move || {
            use std::io::Write;
            // A child that exits early closes the pipe: its exit status tells why.
            let _ = pipe.write_all(&bytes);
        })
    });
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    });
    let status = wait_bounded(child, limit);
    if let Some(w) = writer {
        w.join().expect("stdin writer thread");
    }
    let stdout = out.join().expect("stdout reader thread");
    let stderr = err.join().expect("stderr reader thread");
    match status {
        Ok(status) => CommandOutput {
            status,
            stdout,
            stderr,
        },
        Err(()) => panic!(
            "{what} did not finish within {limit:?} and was killed\n--- stdout (tail):\n{}\n--- stderr:\n{stderr}",
            tail(&String::from_utf8_lossy(&stdout), 4096)
        ),
    }
}

/// The last `max` bytes of `text` (at a char boundary).
pub fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// A child process whose stdout lines arrive as it prints them, for tests that act on
/// what a client says (e.g. kill the broker when a script prints `KILL NOW`); its
/// stderr is collected. Dropping it SIGKILLs a child still running.
#[derive(Debug)]
pub struct LineChild {
    child: Option<Child>,
    what: String,
    lines: Receiver<String>,
    seen: Vec<String>,
    stdout: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

impl LineChild {
    pub fn spawn(cmd: &mut Command) -> LineChild {
        let what = format!("{cmd:?}");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let out = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        let stdout = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = err.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        });
        LineChild {
            child: Some(child),
            what,
            lines,
            seen: Vec::new(),
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// Wait until the child prints the line `line`; false if its stdout ends or
    /// `limit` passes first.
    pub fn wait_for_line(&mut self, line: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let found = l == line;
                    self.seen.push(l);
                    if found {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Wait (at most `limit`, then SIGKILL) for the child to exit; everything it
    /// printed. Panics if it had to be killed.
    pub fn finish(mut self, limit: Duration) -> CommandOutput {
        let child = self.child.take().expect("a running child");
        let status = wait_bounded(child, limit);
        if let Some(t) = self.stdout.take() {
            t.join().expect("stdout reader thread");
        }
        let stderr = self
            .stderr
            .take()
            .map(|t| t.join().expect("stderr reader thread"))
            .unwrap_or_default();
        self.seen.extend(self.lines.try_iter());
        let mut stdout = self.seen.join("\n").into_bytes();
        stdout.push(b'\n');
        match status {
            Ok(status) => CommandOutput {
                status,
                stdout,
                stderr,
            },
            Err(()) => panic!(
                "{} did not finish within {limit:?} and was killed\n--- stdout (tail):\n{}\n--- stderr:\n{stderr}",
                self.what,
                tail(&String::from_utf8_lossy(&stdout), 4096)
            ),
        }
    }
}

impl Drop for LineChild {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A directory holding only the plugin libraries of `crates` (workspace crate names),
/// built once per test run with `cargo build --lib` into the plugin tests' own target
/// directory (beside this test binary's), so that a test's `plugin.path` loads exactly
/// those plugins. `name` names the directory; the same name gives the same directory.
pub fn plugin_dir(name: &str, crates: &[&str]) -> PathBuf {
    static BUILT: std::sync::Mutex<BTreeMap<String, PathBuf>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(dir) = built.get(name) {
        return dir.clone();
    }
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .ancestors()
        .nth(3)
        .unwrap()
        .join("plugin-tests")
        .join("target");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "--lib"]);
    for c in crates {
        cmd.args(["-p", c]);
    }
    let out = cmd
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .output()
        .expect("running cargo");
    assert!(
        out.status.success(),
        "building {crates:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = target.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for c in crates {
        let lib = format!("lib{}.so", c.replace('-', "_"));
        std::fs::copy(target.join("debug").join(&lib), dir.join(&lib))
            .unwrap_or_else(|e| panic!("copying {lib}: {e}"));
    }
    built.insert(name.to_owned(), dir.clone());
    dir
}
