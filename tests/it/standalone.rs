//! The standalone worker end to end, through the real binary: the quickstart (a file
//! source into a topic of the integrated broker, a file sink out of it) moves a file to
//! another file; stopped with SIGTERM in the middle and restarted, the output has every
//! line once, in order; killed with SIGKILL in the middle and restarted, it has every
//! line, in order, with duplicates only of lines read after the last offset commit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Lines in the input file.
const LINES: usize = 1_000_000;
/// How long a whole transfer may take (a debug build on a loaded 2-core machine).
const TRANSFER_DEADLINE: Duration = Duration::from_secs(240);

/// The file connector plugin, built once into a target directory of its own (a nested
/// cargo must not wait on the lock of the build running these tests).
pub(crate) fn file_plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| crate::support::plugin_dir("file-plugin", &["tributary-connector-file"]))
}

struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    input: PathBuf,
    output: PathBuf,
}

impl Setup {
    fn new(flush_ms: u64) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let input = dir.join("in.txt");
        let output = dir.join("out.txt");
        let mut w = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        for i in 0..LINES {
            writeln!(w, "line {i:07} of the quickstart input").unwrap();
        }
        w.flush().unwrap();
        std::fs::write(
            dir.join("worker.properties"),
            format!(
                "broker.data.dir={}\nbroker.listener=none\nplugin.path={}\n\
                 key.converter=org.apache.kafka.connect.json.JsonConverter\n\
                 value.converter=org.apache.kafka.connect.json.JsonConverter\n\
                 offset.flush.interval.ms={flush_ms}\nlisteners=http://127.0.0.1:0\n",
                dir.join("data").display(),
                file_plugin_dir().display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("source.json"),
            format!(
                r#"{{"name":"src","config":{{"connector.class":"FileStreamSource","file":"{}","topic":"lines","batch.size":"5000"}}}}"#,
                input.display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("sink.json"),
            format!(
                r#"{{"name":"sink","config":{{"connector.class":"org.apache.kafka.connect.file.FileStreamSinkConnector","file":"{}","topics":"lines"}}}}"#,
                output.display()
            ),
        )
        .unwrap();
        Setup {
            _tmp: tmp,
            dir,
            input,
            output,
        }
    }

    fn start(&self) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("worker.log"))
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("standalone")
            .arg(self.dir.join("worker.properties"))
            .arg(self.dir.join("source.json"))
            .arg(self.dir.join("sink.json"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn tributary standalone")
    }

    fn log(&self) -> String {
        let text = std::fs::read(self.dir.join("worker.log")).unwrap_or_default();
        let start = text.len().saturating_sub(6000);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    fn output_lines(&self) -> usize {
        std::fs::read(&self.output)
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0)
    }

    /// Wait until the output has at least `n` lines.
    fn wait_for(&self, n: usize, child: &mut Child) {
        let deadline = Instant::now() + TRANSFER_DEADLINE;
        while self.output_lines() < n {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the worker exited with {status}; its log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} lines after {TRANSFER_DEADLINE:?}; log:\n{}",
                self.output_lines(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn terminate(&self, mut child: Child) {
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        // SAFETY: our own unreaped child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "exit {status} after SIGTERM; log:\n{}",
                    self.log()
                );
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("no exit within 30 s of SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The output checked against the input so far: every line it has is an input
    /// line, in order, each new one the next of the input; answers (input lines
    /// delivered, lines repeated — a repeat restarts at an earlier line).
    fn progress(&self) -> (usize, usize) {
        let mut output = std::fs::read_to_string(&self.output).unwrap_or_default();
        // A reader of a file being appended to may see the last line before its end.
        output.truncate(output.rfind('\n').map_or(0, |i| i + 1));
        let mut next = 0usize;
        let mut repeats = 0usize;
        for (n, line) in output.lines().enumerate() {
            let index: usize = line
                .get(5..12)
                .and_then(|d| d.parse().ok())
                .unwrap_or_else(|| panic!("output line {n}: {line:?}"));
            assert_eq!(
                line,
                format!("line {index:07} of the quickstart input"),
                "output line {n}"
            );
            if index == next {
                next += 1;
            } else if index < next {
                repeats += 1;
            } else {
                panic!("output line {n} is input line {index}, but line {next} is missing");
            }
        }
        (next, repeats)
    }

    /// Wait until every input line has been delivered; answers the repeats.
    fn wait_for_all(&self, child: &mut Child) -> usize {
        let deadline = Instant::now() + TRANSFER_DEADLINE;
        loop {
            let (next, repeats) = self.progress();
            if next == LINES {
                return repeats;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the worker exited with {status}; its log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "only {next} of {LINES} lines after {TRANSFER_DEADLINE:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn quickstart_survives_sigterm_and_sigkill() {
    // SIGTERM in the middle: no line lost, none repeated.
    let s = Setup::new(1000);
    let mut child = s.start();
    s.wait_for(LINES / 4, &mut child);
    s.terminate(child);
    let mut child = s.start();
    let repeats = s.wait_for_all(&mut child);
    s.terminate(child);
    assert_eq!(repeats, 0, "duplicates after a clean stop");
    assert_eq!(s.output_lines(), LINES);
    assert!(s.input.is_file());

    // SIGKILL in the middle: every line, in order; duplicates only of what came after the
    // last commit: at most what the worker moves in one offset.flush.interval.ms plus the
    // batches in flight, here far fewer than the file.
    let s = Setup::new(500);
    let mut child = s.start();
    s.wait_for(LINES / 3, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    let mut child = s.start();
    let repeats = s.wait_for_all(&mut child);
    s.terminate(child);
    assert_eq!(
        s.progress(),
        (LINES, repeats),
        "lines arrived after the last one"
    );
    assert_eq!(s.output_lines(), LINES + repeats);
    assert!(
        repeats < LINES / 2,
        "{repeats} lines repeated after SIGKILL"
    );
}
