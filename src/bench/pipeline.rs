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
//! The transforms comparison: the same pipeline on structured records (DataGen's
//! `pageviews`, about 100 bytes as JSON) through `JsonConverter` with
//! `schemas.enable=false`, without transforms and with a chain of three configured with
//! Kafka's class names on the source connector (`InsertField$Value` a static field,
//! `ReplaceField$Value` a rename, `TimestampRouter` to `${topic}-yyyyMMdd`), the two
//! alternating; log and output file on tmpfs, so it measures CPU. The sink subscribes with
//! `topics.regex` to the original and the routed topic (both created first in both
//! variants, so the subscriptions are the same); the output is checked line by line
//! (count, order by `viewtime`, the fields the chain makes) and by hash against the
//! destination topic, and the other topic must be empty.
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

/// The transforms comparison's variants: without transforms, and with the chain.
const JSON: &str = "json";
const JSON_CHAIN: &str = "json+smt";

/// `datagen.start.timestamp.ms` of the JSON runs: 2026-01-01T00:00:00Z. Record i has
/// timestamp (and `viewtime`) START_MS + 10 i plus 0-9 ms.
const START_MS: i64 = 1_767_225_600_000;
/// At 10 ms apart, the most records whose timestamps stay within the day of START_MS.
const MAX_JSON_RECORDS: u64 = 86_400_000 / 10;
/// The topic DataGen writes to; TimestampRouter's `${topic}-${timestamp}` with
/// `yyyyMMdd` makes `bench-20260101` of it.
const TOPIC: &str = "bench";
/// The sink's subscription in the JSON runs: the original and the routed topics.
const TOPICS_REGEX: &str = "bench(-[0-9]{8})?";

/// The chain, as Kafka Connect users write it in a connector config.
const CHAIN: &[(&str, &str)] = &[
    ("transforms", "insertSource,renameUser,routeByDay"),
    (
        "transforms.insertSource.type",
        "org.apache.kafka.connect.transforms.InsertField$Value",
    ),
    ("transforms.insertSource.static.field", "source"),
    ("transforms.insertSource.static.value", "tributary-bench"),
    (
        "transforms.renameUser.type",
        "org.apache.kafka.connect.transforms.ReplaceField$Value",
    ),
    ("transforms.renameUser.renames", "userid:user_id"),
    (
        "transforms.routeByDay.type",
        "org.apache.kafka.connect.transforms.TimestampRouter",
    ),
    (
        "transforms.routeByDay.topic.format",
        "${topic}-${timestamp}",
    ),
    ("transforms.routeByDay.timestamp.format", "yyyyMMdd"),
];

/// The fields of a JSON value in the output, sorted: as DataGen makes them, and after the
/// chain.
const FIELDS: [&str; 3] = ["pageid", "userid", "viewtime"];
const FIELDS_CHAINED: [&str; 4] = ["pageid", "source", "user_id", "viewtime"];

/// `TOPIC-yyyyMMdd` of the UTC day of `ms` (what the chain's TimestampRouter makes).
fn routed_topic(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{TOPIC}-{y:04}{m:02}{d:02}")
}

/// The proleptic Gregorian date of a day number since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

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
    /// 100-byte JSON records (DataGen's `pageviews`) per run of the transforms
    /// comparison: without transforms and with InsertField, ReplaceField and
    /// TimestampRouter, alternating (0: skip it).
    #[arg(long, default_value_t = 2_000_000)]
    records_transforms: u64,
    /// Repetitions; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where the DataGen and FileStreamSink plugins are (default: this executable's
    /// directory, where `cargo build --release` puts them).
    #[arg(long)]
    plugin_path: Option<PathBuf>,
    /// `offset.flush.interval.ms` of the worker: runs are timed to the sink's commit after
    /// the last record, so the interval is how late the end may be seen (each commit also
    /// fdatasyncs the log and the output file: a shorter interval is more work, not less).
    #[arg(long, default_value_t = 100)]
    flush_interval_ms: u64,
    /// `offset.flush.interval.ms` of the worker in the transforms comparison: its runs
    /// are timed to the sink's commit after the last record, so the interval is how
    /// late the end may be seen (100 ms of runs of a few seconds).
    #[arg(long, default_value_t = 100)]
    transforms_flush_interval_ms: u64,
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
    /// The mean size of the values in the log, measured (JSON variants; with the chain,
    /// after it).
    log_value_bytes: Option<f64>,
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
    if args.records_transforms > 0 {
        ensure!(
            args.records_transforms <= MAX_JSON_RECORDS,
            "--records-transforms at most {MAX_JSON_RECORDS}: the records' timestamps must \
             stay within one day, so that TimestampRouter routes them all to one topic"
        );
        for i in 0..args.runs {
            // Alternating which goes first: neither always runs on the warmer (or the
            // busier) machine.
            let order = if i % 2 == 0 {
                [JSON, JSON_CHAIN]
            } else {
                [JSON_CHAIN, JSON]
            };
            for variant in order {
                let records = args.records_transforms;
                let r = one_run(args, &runtime, &plugin_path, 100, records, variant)
                    .with_context(|| format!("JSON records, {variant}, run {}", i + 1))?;
                out.line(format_args!(
                    "  JSON {variant:<8} run {}: {} records/s, {:.2} CPU s per M records, {:.1} B per value in the log, peak RSS {:.0} MB",
                    i + 1,
                    count(r.records_per_s()),
                    r.cpu_per_million(),
                    r.log_value_bytes.unwrap_or(0.0),
                    r.peak_rss_mb,
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
    let of = |variant: &str| -> Vec<&Run> {
        report
            .runs
            .iter()
            .filter(|r| r.variant == variant)
            .collect()
    };
    let (plain, chained) = (of(JSON), of(JSON_CHAIN));
    if !plain.is_empty() && plain.len() == chained.len() {
        println!(
            "\nTransforms (DataGen pageviews, JSON without schemas; log and output on tmpfs; median of runs)"
        );
        println!(
            "  transforms                      records/s   CPU s/M rec   B per value in the log"
        );
        for (name, rs) in [
            ("none", &plain),
            ("InsertField, ReplaceField, TimestampRouter", &chained),
        ] {
            println!(
                "  {name:<42} {:>11} {:>13.2} {:>24.1}",
                count(median_of(rs, Run::records_per_s)),
                median_of(rs, Run::cpu_per_million),
                median_of(rs, |r| r.log_value_bytes.unwrap_or(0.0)),
            );
        }
        // Run i of each ran back to back (alternating which first): compare within pairs.
        let pairs: Vec<f64> = plain
            .iter()
            .zip(&chained)
            .map(|(p, c)| c.records_per_s() / p.records_per_s())
            .collect();
        let ratio = disk::median(&pairs);
        let of_medians =
            median_of(&chained, Run::records_per_s) / median_of(&plain, Run::records_per_s);
        println!(
            "  the chain's cost: {:.1}% of the throughput (median of the runs' 1 - with/without: {}; from the medians: {:.1}%), {:+.2} CPU s per M records",
            100.0 * (1.0 - ratio),
            pairs
                .iter()
                .map(|r| format!("{:.1}%", 100.0 * (1.0 - r)))
                .collect::<Vec<_>>()
                .join(", "),
            100.0 * (1.0 - of_medians),
            median_of(&chained, Run::cpu_per_million) - median_of(&plain, Run::cpu_per_million),
        );
        bars.push((
            "3 transforms cost < 30% of the throughput on 100 B JSON records (with / without >= 0.70)",
            ratio / 0.7,
        ));
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
    let json = variant == JSON || variant == JSON_CHAIN;
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
    let output = if variant == "cpu" {
        PathBuf::from("/dev/null")
    } else {
        dir.join("out.txt")
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
            if json {
                args.transforms_flush_interval_ms
            } else {
                args.flush_interval_ms
            }
            .to_string(),
        ),
    ]);
    let (config, _) = WorkerConfig::from_props(&worker)?;
    client.ensure_topic(TOPIC, Some(1), BTreeMap::new())?;
    let routed = routed_topic(START_MS);
    if json {
        // Both topics in both variants: the sink's subscription is the same.
        client.ensure_topic(&routed, Some(1), BTreeMap::new())?;
    }
    // Where the records end up.
    let destination = if variant == JSON_CHAIN {
        routed.clone()
    } else {
        TOPIC.to_owned()
    };
    let mut sink = vec![
        ("connector.class", "FileStreamSink".to_owned()),
        ("file", output.display().to_string()),
    ];
    if json {
        sink.push(("topics.regex", TOPICS_REGEX.to_owned()));
    } else {
        sink.push(("topics", TOPIC.to_owned()));
    }
    let mut source = vec![
        ("connector.class", "DataGen".to_owned()),
        ("kafka.topic", TOPIC.to_owned()),
        ("iterations", records.to_string()),
        ("max.interval", "0".into()),
        ("datagen.records.per.poll", "2000".into()),
    ];
    if json {
        source.extend([
            ("quickstart", "pageviews".to_owned()),
            ("datagen.start.timestamp.ms", START_MS.to_string()),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter".to_owned(),
            ),
            ("value.converter.schemas.enable", "false".to_owned()),
        ]);
    } else {
        source.push(("datagen.record.bytes", value_bytes.to_string()));
    }
    if variant == JSON_CHAIN {
        source.extend(CHAIN.iter().map(|(k, v)| (*k, (*v).to_owned())));
    }
    let herder = Herder::start(config, client.clone(), plugins)?;
    let result = (|| -> anyhow::Result<Run> {
        let cpu0 = rusage_cpu_secs();
        let start = Instant::now();
        herder.create_connector("sink", props(&sink), TargetState::Started)?;
        herder.create_connector("source", props(&source), TargetState::Started)?;
        let tp = vec![(destination.clone(), 0)];
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let committed = client.committed_offsets("connect-sink", &tp)?;
            if committed.get(&tp[0]).copied().unwrap_or(0) >= records as i64 {
                break;
            }
            for connector in ["sink", "source"] {
                if let Ok(s) = herder.status(connector)
                    && let Some((_, t)) = s.tasks.first()
                    && t.state == crate::worker::store::State::Failed
                {
                    bail!(
                        "the {connector} task failed: {}",
                        t.trace.clone().unwrap_or_default()
                    );
                }
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
            log_value_bytes: None,
        })
    })();
    herder.shutdown();
    let checked = match &result {
        Ok(_) if variant == "disk" => {
            check_output(&client, &output, records, value_bytes).map(|()| None)
        }
        Ok(_) if json => {
            let other = if variant == JSON_CHAIN {
                TOPIC
            } else {
                &routed
            };
            check_json_output(&client, &output, records, &destination, other, variant).map(Some)
        }
        _ => Ok(None),
    };
    runtime.block_on(broker.stop())?;
    let mut run = result?;
    run.log_value_bytes = checked?;
    Ok(run)
}

/// Every value of `topic` (all its records, from offset 0, in order), until the end of the
/// log; also checks that there are exactly `records` of them.
fn for_each_value(
    client: &Client,
    topic: &str,
    records: u64,
    mut f: impl FnMut(&[u8]),
) -> anyhow::Result<()> {
    let mut at = 0i64;
    while at < records as i64 {
        let batch = client.fetch(topic, 0, at, 4 << 20)?;
        for r in &batch.records {
            f(r.value.as_deref().unwrap_or_default());
        }
        ensure!(batch.next_offset > at, "the log of {topic} ends at {at}");
        at = batch.next_offset;
    }
    let end = client.end_offsets(topic)?;
    ensure!(
        end == [records as i64],
        "{topic} ends at {end:?}, {records} records expected"
    );
    Ok(())
}

/// The JSON variants' output: `records` lines, line i the JSON object of record i (by its
/// `viewtime`) with the fields DataGen makes, or those the chain makes of them; hashing
/// like the values in `topic`, which holds exactly `records`; nothing in `other`. Answers
/// the mean size of the values in the log.
fn check_json_output(
    client: &Client,
    output: &Path,
    records: u64,
    topic: &str,
    other: &str,
    variant: &str,
) -> anyhow::Result<f64> {
    let chained = variant == JSON_CHAIN;
    let expected: &[&str] = if chained { &FIELDS_CHAINED } else { &FIELDS };
    let mut file_hash = Digest::default();
    let mut reader = BufReader::with_capacity(1 << 20, std::fs::File::open(output)?);
    let mut line = Vec::new();
    let mut n = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(text)
            .with_context(|| format!("output line {n} is not a JSON object"))?;
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        ensure!(keys == expected, "output line {n} has the fields {keys:?}");
        let viewtime = object["viewtime"].as_i64().context("viewtime")?;
        ensure!(
            (viewtime - START_MS).div_euclid(10) == n as i64,
            "output line {n} holds the record of viewtime {viewtime}"
        );
        let user = if chained { "user_id" } else { "userid" };
        ensure!(
            object[user]
                .as_str()
                .is_some_and(|u| u.starts_with("User_")),
            "output line {n}: {user} {}",
            object[user]
        );
        if chained {
            ensure!(
                object["source"] == "tributary-bench",
                "output line {n}: source {}",
                object["source"]
            );
        }
        file_hash.write(&line);
        n += 1;
    }
    ensure!(n == records, "{n} lines in the output, {records} expected");
    let mut log_hash = Digest::default();
    let mut bytes = 0u64;
    for_each_value(client, topic, records, |v| {
        bytes += v.len() as u64;
        line.clear();
        line.extend_from_slice(v);
        line.push(b'\n');
        log_hash.write(&line);
    })?;
    ensure!(
        file_hash == log_hash,
        "the output's hash differs from the log's"
    );
    let stray = client.end_offsets(other)?;
    ensure!(stray == [0], "records in {other}: {stray:?}");
    Ok(bytes as f64 / records as f64)
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
    for_each_value(client, TOPIC, records, |v| {
        line.clear();
        line.extend_from_slice(v);
        line.push(b'\n');
        log_hash.write(&line);
    })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routed_topic_is_the_utc_day() {
        let check = |ms: i64, expected: &str| assert_eq!(routed_topic(ms), expected, "{ms}");
        check(0, "bench-19700101");
        check(START_MS, "bench-20260101");
        check(START_MS - 1, "bench-20251231");
        // The last record of the longest run still falls on the first day.
        check(
            START_MS + 10 * MAX_JSON_RECORDS as i64 - 1,
            "bench-20260101",
        );
        check(951_782_400_000, "bench-20000229");
        check(4_107_542_400_000, "bench-21000301");
        check(-86_400_000, "bench-19691231");
    }

    #[test]
    fn the_chain_is_a_valid_connector_config() {
        let props: Props = CHAIN
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let chain = crate::worker::transform::parse(&props).unwrap();
        assert_eq!(chain.len(), 3);
        // On a record shaped like DataGen's pageviews: the fields the output check expects,
        // and the routed topic.
        use tributary_plugin_abi::data::{Data, Schema, Value};
        let schema = Schema::structure()
            .field("viewtime", Schema::int64())
            .field("userid", Schema::string())
            .field("pageid", Schema::string());
        let value = Value::Struct(vec![
            Value::Int64(START_MS + 7),
            Value::String("User_1".into()),
            Value::String("/products/baby/item-000001.html".into()),
        ]);
        let mut r = tributary_plugin_abi::record::SourceRecord::new(
            TOPIC,
            Data::with_schema(schema, value).unwrap(),
        );
        r.timestamp = Some(START_MS + 7);
        assert_eq!(chain.apply_source(&mut r), Ok(true));
        assert_eq!(r.topic, routed_topic(START_MS));
        let mut fields: Vec<&str> = r
            .value
            .schema
            .as_ref()
            .unwrap()
            .fields
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        fields.sort_unstable();
        assert_eq!(fields, FIELDS_CHAINED);
        assert_eq!(
            r.value.field("source"),
            Some(&Value::String("tributary-bench".into()))
        );
        assert!(TOPICS_REGEX.contains(TOPIC));
        let re = regex::Regex::new(&format!("^(?:{TOPICS_REGEX})$")).unwrap();
        assert!(re.is_match(TOPIC) && re.is_match(&routed_topic(START_MS)));
    }
}
