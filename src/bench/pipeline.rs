//! `tributary bench pipeline`: the worker end to end, as in production. The data
//! generator source (`DataGen` plugin, fixed-size printable values) → converters →
//! the integrated log → a sink task in consumer group `connect-sink` → converters →
//! the file sink plugin, with offsets committed as the worker commits them. Timed from
//! creating the connectors until the sink has committed the offset after the last
//! record. Then the output is checked: every line, in order (each starts with its
//! sequence number), and its hash equal to the hash of the values in the log.
//!
//! Two variants per value size: `disk` (log and output file on the disk of `--dir`,
//! beside that disk's fdatasync bandwidth measured in the same run) and `cpu` (log on
//! tmpfs, the sink writing to /dev/null: what the worker costs in CPU).
//!
//! Also measured: the idle worker (a `tributary standalone` child with no connectors):
//! its resident memory and its time from exec to serving (the startup line).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde::Serialize;

use super::disk::{self, Machine};
use super::{Out, ScratchDir, count};
use crate::broker::server::{BrokerSettings, RunningBroker};
use crate::client::Client;
use crate::plugin::{PluginLoader, SharedRegistry};
use crate::worker::store::{Props, TargetState};
use crate::worker::{Herder, WorkerConfig};

#[derive(Debug, clap::Args)]
pub struct PipelineBenchArgs {
    /// Parent of the temporary directories of the disk variant (log and output file).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// A tmpfs for the CPU-only variant's log.
    #[arg(long, default_value = "/dev/shm")]
    tmpfs: PathBuf,
    /// Records of 100 bytes per run.
    #[arg(long, default_value_t = 3_000_000)]
    records_100: u64,
    /// Records of 1000 bytes per run.
    #[arg(long, default_value_t = 500_000)]
    records_1000: u64,
    /// Repetitions; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where the DataGen and FileStreamSink plugins are (default: this executable's
    /// directory, where `cargo build --release` puts them).
    #[arg(long)]
    plugin_path: Option<PathBuf>,
    /// `offset.flush.interval.ms` of the worker.
    #[arg(long, default_value_t = 1000)]
    flush_interval_ms: u64,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize, Clone)]
struct Run {
    value_bytes: usize,
    variant: &'static str,
    records: u64,
    secs: f64,
    cpu_secs: f64,
    peak_rss_mb: f64,
    /// The disk's fdatasync bandwidth measured just before (disk variant).
    disk_mb_per_s: Option<f64>,
}

impl Run {
    fn records_per_s(&self) -> f64 {
        self.records as f64 / self.secs
    }
    fn mb_per_s(&self) -> f64 {
        self.records as f64 * self.value_bytes as f64 / 1e6 / self.secs
    }
    fn cpu_per_million(&self) -> f64 {
        self.cpu_secs / (self.records as f64 / 1e6)
    }
}

#[derive(Debug, Serialize)]
struct Idle {
    start_ms: f64,
    rss_mb: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    runs: Vec<Run>,
    idle: Vec<Idle>,
}

pub fn run(args: &PipelineBenchArgs) -> anyhow::Result<()> {
    let out = Out { quiet: args.json };
    let machine = Machine::now();
    out.line(format_args!("Machine: {}", machine.describe()));
    let plugin_path = match &args.plugin_path {
        Some(p) => p.clone(),
        None => crate::plugin::registry::default_plugin_path()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut runs = Vec::new();
    for (value_bytes, records) in [(100usize, args.records_100), (1000, args.records_1000)] {
        if records == 0 {
            continue;
        }
        for variant in ["disk", "cpu"] {
            for i in 0..args.runs {
                let r = one_run(args, &runtime, &plugin_path, value_bytes, records, variant)
                    .with_context(|| format!("{value_bytes} B, {variant}, run {}", i + 1))?;
                out.line(format_args!(
                    "  {value_bytes:>4} B {variant:<4} run {}: {} records/s, {:.0} MB/s, {:.2} CPU s per M records, peak RSS {:.0} MB{}",
                    i + 1,
                    count(r.records_per_s()),
                    r.mb_per_s(),
                    r.cpu_per_million(),
                    r.peak_rss_mb,
                    r.disk_mb_per_s
                        .map(|d| format!(", disk fdatasync {d:.0} MB/s"))
                        .unwrap_or_default()
                ));
                runs.push(r);
            }
        }
    }
    let mut idle = Vec::new();
    for _ in 0..args.runs {
        idle.push(idle_worker(&plugin_path)?);
    }
    let report = Report {
        machine,
        runs,
        idle,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report);
    }
    Ok(())
}

fn median_of(runs: &[&Run], f: impl Fn(&Run) -> f64) -> f64 {
    let v: Vec<f64> = runs.iter().map(|r| f(r)).collect();
    disk::median(&v)
}

fn print_summary(report: &Report) {
    println!("\nPipeline (median of runs)");
    println!(
        "  value  variant   records/s      MB/s   CPU s/M rec   peak RSS MB   disk MB/s   MB/s / disk"
    );
    let mut bars = Vec::new();
    for value in [100usize, 1000] {
        for variant in ["disk", "cpu"] {
            let rs: Vec<&Run> = report
                .runs
                .iter()
                .filter(|r| r.value_bytes == value && r.variant == variant)
                .collect();
            if rs.is_empty() {
                continue;
            }
            let rate = median_of(&rs, Run::records_per_s);
            let mbs = median_of(&rs, Run::mb_per_s);
            let disk_mbs = rs
                .iter()
                .filter_map(|r| r.disk_mb_per_s)
                .collect::<Vec<_>>();
            let disk_mbs = (!disk_mbs.is_empty()).then(|| disk::median(&disk_mbs));
            // Every byte is written twice on disk: the log and the sink file.
            let ratio = disk_mbs.map(|d| 2.0 * mbs / d);
            println!(
                "  {value:>5}  {variant:<7} {:>11} {mbs:>9.0} {:>13.2} {:>13.0} {:>11} {:>13}",
                count(rate),
                median_of(&rs, Run::cpu_per_million),
                median_of(&rs, |r| r.peak_rss_mb),
                disk_mbs.map(|d| format!("{d:.0}")).unwrap_or("-".into()),
                ratio.map(|r| format!("{r:.2}")).unwrap_or("-".into()),
            );
            match (value, variant) {
                (100, "disk") => bars.push(("100 B on disk >= 1,000,000 records/s", rate / 1e6)),
                (100, "cpu") => bars.push(("100 B CPU-only >= 2,000,000 records/s", rate / 2e6)),
                (1000, "disk") => {
                    if let Some(r) = ratio {
                        bars.push((
                            "1000 B on disk >= 0.6 of the disk (2 x MB/s / fdatasync MB/s)",
                            r / 0.6,
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    let idle_rss = disk::median(&report.idle.iter().map(|i| i.rss_mb).collect::<Vec<_>>());
    let idle_start = disk::median(&report.idle.iter().map(|i| i.start_ms).collect::<Vec<_>>());
    println!("\nIdle worker: {idle_rss:.1} MB resident, {idle_start:.0} ms from exec to serving");
    bars.push(("idle worker memory < 30 MB", 30.0 / idle_rss));
    bars.push(("start to serving < 300 ms", 300.0 / idle_start));
    println!("\nBars");
    for (name, of_bar) in bars {
        let verdict = if of_bar >= 1.0 { "PASS" } else { "FAIL" };
        println!("  {verdict}  {name} ({of_bar:.2} of the bar)");
    }
}

fn rusage_cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn status_kb(pid: &str, key: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn one_run(
    args: &PipelineBenchArgs,
    runtime: &tokio::runtime::Runtime,
    plugin_path: &Path,
    value_bytes: usize,
    records: u64,
    variant: &'static str,
) -> anyhow::Result<Run> {
    let parent = if variant == "disk" {
        &args.dir
    } else {
        &args.tmpfs
    };
    let scratch = ScratchDir::create(parent, "pipeline")?;
    let dir = scratch.path();
    let disk_mb_per_s = if variant == "disk" {
        let bytes = (records * value_bytes as u64).min(1 << 30);
        Some(disk::fdatasync_bandwidth(dir, bytes, 1 << 20)?.mb_per_s())
    } else {
        None
    };
    let output = if variant == "disk" {
        dir.join("out.txt")
    } else {
        PathBuf::from("/dev/null")
    };
    let mut settings = BrokerSettings::new(dir.join("data"));
    settings.serve = false;
    settings.groups.initial_rebalance_delay = Duration::from_millis(0);
    let broker = runtime.block_on(RunningBroker::start(settings))?;
    let client = Client::embedded(broker.broker.clone(), runtime.handle().clone());
    let loader = PluginLoader::new(dir.join("plugin-cache"));
    let registry = loader.scan(&[plugin_path.to_path_buf()]);
    for class in ["DataGen", "FileStreamSink"] {
        if registry.lookup(class).is_err() {
            bail!(
                "no {class} plugin in {}; run `cargo build --release` first (it builds the connector plugins next to the binary) or pass --plugin-path",
                plugin_path.display()
            );
        }
    }
    let plugins = SharedRegistry::new(registry);
    let props = |pairs: &[(&str, String)]| -> Props {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    };
    let worker: BTreeMap<String, String> = props(&[
        (
            "key.converter",
            "org.apache.kafka.connect.storage.StringConverter".into(),
        ),
        (
            "value.converter",
            "org.apache.kafka.connect.storage.StringConverter".into(),
        ),
        (
            "offset.flush.interval.ms",
            args.flush_interval_ms.to_string(),
        ),
    ]);
    let (config, _) = WorkerConfig::from_props(&worker)?;
    client.ensure_topic("bench", Some(1), BTreeMap::new())?;
    let herder = Herder::start(config, client.clone(), plugins)?;
    let result = (|| -> anyhow::Result<Run> {
        let cpu0 = rusage_cpu_secs();
        let start = Instant::now();
        herder.create_connector(
            "sink",
            props(&[
                ("connector.class", "FileStreamSink".into()),
                ("topics", "bench".into()),
                ("file", output.display().to_string()),
            ]),
            TargetState::Started,
        )?;
        herder.create_connector(
            "source",
            props(&[
                ("connector.class", "DataGen".into()),
                ("kafka.topic", "bench".into()),
                ("iterations", records.to_string()),
                ("max.interval", "0".into()),
                ("datagen.record.bytes", value_bytes.to_string()),
                ("datagen.records.per.poll", "2000".into()),
            ]),
            TargetState::Started,
        )?;
        let tp = vec![("bench".to_owned(), 0)];
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let committed = client.committed_offsets("connect-sink", &tp)?;
            if committed.get(&tp[0]).copied().unwrap_or(0) >= records as i64 {
                break;
            }
            if let Ok(s) = herder.status("sink")
                && let Some((_, t)) = s.tasks.first()
                && t.state == crate::worker::store::State::Failed
            {
                bail!(
                    "the sink task failed: {}",
                    t.trace.clone().unwrap_or_default()
                );
            }
            ensure!(
                Instant::now() < deadline,
                "the pipeline did not finish within 10 minutes"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let secs = start.elapsed().as_secs_f64();
        let cpu_secs = rusage_cpu_secs() - cpu0;
        Ok(Run {
            value_bytes,
            variant,
            records,
            secs,
            cpu_secs,
            peak_rss_mb: status_kb("self", "VmHWM:").unwrap_or(0.0) / 1024.0,
            disk_mb_per_s,
        })
    })();
    herder.shutdown();
    let checked = match (&result, variant) {
        (Ok(_), "disk") => check_output(&client, &output, records, value_bytes),
        _ => Ok(()),
    };
    runtime.block_on(broker.stop())?;
    let run = result?;
    checked?;
    Ok(run)
}

/// The output has `records` lines of `value_bytes` bytes, line i starting with i, and
/// hashes like the values in the log.
fn check_output(
    client: &Client,
    output: &Path,
    records: u64,
    value_bytes: usize,
) -> anyhow::Result<()> {
    let mut file_hash = Digest::default();
    let mut reader = BufReader::with_capacity(1 << 20, std::fs::File::open(output)?);
    let mut line = Vec::new();
    let mut n = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        ensure!(
            line.len() == value_bytes + 1,
            "output line {n} has {} bytes",
            line.len()
        );
        let seq: u64 = std::str::from_utf8(&line[..12])?.parse()?;
        ensure!(seq == n, "output line {n} holds record {seq}");
        file_hash.write(&line);
        n += 1;
    }
    ensure!(n == records, "{n} lines in the output, {records} expected");
    let mut log_hash = Digest::default();
    let mut at = 0i64;
    while at < records as i64 {
        let f = client.fetch("bench", 0, at, 4 << 20)?;
        for r in &f.records {
            line.clear();
            line.extend_from_slice(r.value.as_deref().unwrap_or_default());
            line.push(b'\n');
            log_hash.write(&line);
        }
        ensure!(f.next_offset > at, "the log ends at {at}");
        at = f.next_offset;
    }
    ensure!(
        file_hash == log_hash,
        "the output's hash differs from the log's"
    );
    Ok(())
}

/// An order-sensitive digest of a sequence of byte strings (xxh3 of each, chained).
#[derive(Debug, Default, PartialEq, Eq)]
struct Digest(u128);

impl Digest {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = self.0.rotate_left(7) ^ twox_hash::XxHash3_128::oneshot(bytes);
    }
}

/// Start `tributary standalone` with no connectors; time exec → startup line; RSS after
/// a second idle.
fn idle_worker(plugin_path: &Path) -> anyhow::Result<Idle> {
    let scratch = ScratchDir::create(Path::new("."), "idle-worker")?;
    let config = scratch.path().join("worker.properties");
    std::fs::write(
        &config,
        format!(
            "broker.data.dir={}\nbroker.listener=127.0.0.1:0\nlisteners=http://127.0.0.1:0\nplugin.path={}\n\
             key.converter=org.apache.kafka.connect.json.JsonConverter\nvalue.converter=org.apache.kafka.connect.json.JsonConverter\n",
            scratch.path().join("data").display(),
            plugin_path.display()
        ),
    )?;
    let exe = std::env::current_exe()?;
    let start = Instant::now();
    let mut child = std::process::Command::new(exe)
        .arg("standalone")
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let mut stdout = child.stdout.take().context("child stdout")?;
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first)?;
    let start_ms = start.elapsed().as_secs_f64() * 1e3;
    std::thread::sleep(Duration::from_secs(1));
    let pid = child.id().to_string();
    let rss_mb = status_kb(&pid, "VmRSS:").unwrap_or(0.0) / 1024.0;
    // SAFETY: our own unreaped child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let _ = child.wait();
    Ok(Idle { start_ms, rss_mb })
}
