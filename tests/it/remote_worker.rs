//! The standalone worker pointed at a Kafka cluster (`bootstrap.servers`) instead of its
//! integrated broker: here the cluster is the real `tributary broker` binary in its own
//! process, so every produce, fetch, group and internal-topic call crosses TCP. The file
//! quickstart moves a file; the worker is stopped and started again and resumes from the
//! offsets and configs it keeps in the cluster's internal topics; kcat (librdkafka) reads
//! the topic the worker wrote.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::standalone::file_plugin_dir;
use crate::support::{BrokerProcess, run_bounded};

const LINES: usize = 20_000;

struct Worker {
    dir: PathBuf,
    child: Option<Child>,
}

impl Worker {
    fn start(dir: &Path, with_connectors: bool) -> Worker {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("worker.log"))
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tributary"));
        cmd.arg("standalone").arg(dir.join("worker.properties"));
        if with_connectors {
            cmd.arg(dir.join("source.json")).arg(dir.join("sink.json"));
        }
        let child = cmd
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn tributary standalone");
        Worker {
            dir: dir.to_path_buf(),
            child: Some(child),
        }
    }

    fn log(&self) -> String {
        let text = std::fs::read(self.dir.join("worker.log")).unwrap_or_default();
        let start = text.len().saturating_sub(8000);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    /// Wait until `out` has `n` lines (or fail with the worker's log).
    fn wait_for_lines(&mut self, out: &Path, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let have = std::fs::read(out)
                .map(|b| b.iter().filter(|&&c| c == b'\n').count())
                .unwrap_or(0);
            if have >= n {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("the worker exited with {status}; its log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{have} of {n} lines after 120 s; worker log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, and a clean exit within 30 s.
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
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn write_lines(path: &Path, from: usize, to: usize) {
    let mut w = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap(),
    );
    for i in from..to {
        writeln!(w, "line {i:06} through a remote cluster").unwrap();
    }
    w.flush().unwrap();
}

#[test]
fn the_quickstart_runs_on_a_cluster_named_by_bootstrap_servers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let broker = BrokerProcess::start(
        &dir.join("cluster"),
        &["group.initial.rebalance.delay.ms=0"],
    );
    let input = dir.join("in.txt");
    let output = dir.join("out.txt");
    write_lines(&input, 0, LINES);
    std::fs::write(
        dir.join("worker.properties"),
        format!(
            "bootstrap.servers={}\nplugin.path={}\n\
             key.converter=org.apache.kafka.connect.storage.StringConverter\n\
             value.converter=org.apache.kafka.connect.storage.StringConverter\n\
             offset.flush.interval.ms=500\nlisteners=http://127.0.0.1:0\n",
            broker.bootstrap,
            file_plugin_dir().display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("source.json"),
        format!(
            r#"{{"name":"src","config":{{"connector.class":"FileStreamSource","file":"{}","topic":"remote-lines"}}}}"#,
            input.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("sink.json"),
        format!(
            r#"{{"name":"sink","config":{{"connector.class":"FileStreamSink","file":"{}","topics":"remote-lines"}}}}"#,
            output.display()
        ),
    )
    .unwrap();

    let mut worker = Worker::start(dir, true);
    worker.wait_for_lines(&output, LINES);
    assert!(
        !dir.join("data").exists(),
        "no integrated broker runs with bootstrap.servers"
    );
    worker.terminate();

    // Restarted without the connector files: the connectors come back from the
    // cluster's config topic and resume from its offsets topic.
    write_lines(&input, LINES, LINES + 1000);
    let mut worker = Worker::start(dir, false);
    worker.wait_for_lines(&output, LINES + 1000);
    std::thread::sleep(Duration::from_millis(500));
    let mut want = Vec::new();
    write_lines(&dir.join("want.txt"), 0, LINES + 1000);
    want.extend(std::fs::read(dir.join("want.txt")).unwrap());
    let got = std::fs::read(&output).unwrap();
    assert!(
        got == want,
        "the output is not every input line once, in order ({} vs {} bytes); log:\n{}",
        got.len(),
        want.len(),
        worker.log()
    );
    worker.terminate();

    // A Kafka client reads what the worker wrote to the cluster.
    let out = run_bounded(
        Command::new("kcat").args([
            "-b",
            &broker.bootstrap,
            "-C",
            "-t",
            "remote-lines",
            "-e",
            "-q",
            "-f",
            "%s\n",
        ]),
        None,
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "kcat: {}", out.stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        LINES + 1000
    );
    broker.terminate();
}
