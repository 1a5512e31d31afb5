//! The harness shared by the integration tests: log configs, reading a whole log back
//! batch by batch, a small seeded generator, and the `tributary debug crash-writer`
//! child process.
//!
//! It holds no assertions about the log's behaviour; the tests do.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Instant;

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
