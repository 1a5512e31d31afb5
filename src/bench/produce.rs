//! `tributary bench produce`: the broker over the Kafka protocol, driven by kcat over
//! loopback, beside the same kcat command against librdkafka's in-memory mock broker
//! (`-X test.mock.num.brokers=1`) in the same run; then produce-to-acknowledge latency
//! from a small Rust client ([`super::latency`]) at half of the broker's peak rate.
//!
//! Per value size (100 B and 1000 B) and run:
//! 1. `kcat -P` of the whole input file into the mock broker (the reference);
//! 2. the identical `kcat -P` into the broker, a fresh topic per size and run;
//! 3. the mock again: the reference is the mean of the two, which cancels a steady drift
//!    of the machine's speed without favouring either side;
//! 4. `kcat -C` of that topic from the beginning to its end (`-e`), output to /dev/null;
//!    in the first run the topic is read once more, untimed, and every line counted.
//!
//! Each phase is timed from starting kcat to its exit, so the connection, metadata and
//! topic auto-creation are inside, identically for both brokers. The broker runs as its
//! own process (this executable's `broker` command, default settings, data on the disk
//! under `--dir`), so its CPU time can be read from `/proc/PID/stat` around each phase.
//! kcat's CPU time comes from this process's reaped-children counters.
//!
//! What it is not: a benchmark of kcat or of the log alone (`tributary bench log`).
//! The mock broker lives inside the kcat process and keeps records in memory, so with
//! both on two cores the reference is roughly "kcat's own limit".

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde::Serialize;

use super::disk::{self, Filesystem, MB, Machine};
use super::latency::{self, Paced, Peak, Target};
use super::{Out, ScratchDir, count};

/// The issue's bars.
const BAR_PRODUCE_VS_MOCK: f64 = 0.9;
const BAR_CONSUME_VS_PRODUCE: f64 = 1.0;
const BAR_P99_US: f64 = 2000.0;
/// The value sizes the bars are stated for.
const SMALL_VALUE: usize = 100;
const LARGE_VALUE: usize = 1000;
/// Producer settings, the same for both brokers: acknowledged by the leader's log
/// (`acks=all`, what kcat defaults to), batches of up to 10,000 records (librdkafka's
/// `batch.size` of 1 MB caps them first) filled for up to 5 ms.
const PRODUCER_SETTINGS: &[&str] = &[
    "-X",
    "acks=all",
    "-X",
    "linger.ms=5",
    "-X",
    "batch.num.messages=10000",
];
/// Consumer settings. kcat `-e` learns that it reached the end of the partition only
/// from an empty fetch, which a broker (any Kafka broker) holds for up to
/// `fetch.wait.max.ms` waiting for new records: 500 ms by default, half of the whole
/// consume at these sizes. 10 ms keeps that wait out of the throughput; fetches that
/// find records are answered at once either way. The topic is new, so the consumer
/// starts at `-o 0` rather than `-o beginning`: that makes librdkafka 2.0.2 look the
/// offset up first and, when the lookup races with learning the partition's leader,
/// retry only after a fixed 500 ms (seen in about one start in twenty, with any broker).
const CONSUMER_SETTINGS: &[&str] = &["-X", "fetch.wait.max.ms=10"];
/// How kcat reaches the mock broker: the bootstrap address is ignored and replaced by
/// the mock's own listener.
const MOCK_BOOTSTRAP: &[&str] = &["-b", "127.0.0.1:9", "-X", "test.mock.num.brokers=1"];
/// Printed by librdkafka when it starts the mock cluster: proof the reference really
/// ran against it.
const MOCK_BANNER: &str = "Mock cluster enabled";
/// Alphabet of the values: 64 printable characters, 6 bits of entropy per byte, so a
/// compressor gains little, and no newline (kcat `-l` reads one record per line).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Arguments of `tributary bench produce`.
#[derive(Debug, clap::Args)]
pub struct ProduceBenchArgs {
    /// Parent of the temporary directory holding the input files and the broker's data
    /// (created uniquely there and removed at the end). The default, the current
    /// directory, keeps the data on the project's own disk; do not point it at a tmpfs.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Repetitions; each is printed and the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Records of 100 bytes per run.
    #[arg(long, default_value_t = 1_000_000)]
    small_records: u64,
    /// Records of 1000 bytes per run.
    #[arg(long, default_value_t = 500_000)]
    large_records: u64,
    /// The kcat executable.
    #[arg(long, default_value = "kcat")]
    kcat: PathBuf,
    /// Seconds of the open-loop latency measurement at half of the peak rate (0 skips
    /// the latency part).
    #[arg(long, default_value_t = 10.0)]
    latency_secs: f64,
    /// Seconds of the closed-loop peak measurement that sets the paced rate.
    #[arg(long, default_value_t = 3.0)]
    peak_secs: f64,
    /// Connections of the latency client (the paced requests go round-robin).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Requests in flight per connection while measuring the peak.
    #[arg(long, default_value_t = 8)]
    window: usize,
    /// Requests per second of the paced run instead of half of the measured peak (the
    /// bar is stated for half of the peak).
    #[arg(long)]
    paced_rate: Option<f64>,
    /// A broker setting for this run (repeatable), passed on as the broker's
    /// `--override KEY=VALUE`; the bars are stated for the defaults.
    #[arg(long = "broker-override", value_name = "KEY=VALUE")]
    broker_overrides: Vec<String>,
    /// The tributary executable to run the broker with (default: this one).
    #[arg(long, hide = true)]
    broker_exe: Option<PathBuf>,
    /// Print one JSON document instead of the tables.
    #[arg(long)]
    json: bool,
}

/// Run the benchmark and print its report (tables, or JSON with `--json`).
pub fn run(args: &ProduceBenchArgs) -> anyhow::Result<()> {
    let out = Out { quiet: args.json };
    let report = measure(args, &out)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report);
    }
    Ok(())
}

/// Everything one invocation measured.
#[derive(Debug, Serialize)]
struct Report {
    dir: PathBuf,
    filesystem: Option<Filesystem>,
    machine_at_start: Machine,
    machine_at_end: Machine,
    kcat_version: String,
    producer_settings: String,
    broker_overrides: Vec<String>,
    runs: usize,
    throughput: Vec<SizeRun>,
    latency: Option<Latency>,
    bars: Vec<Bar>,
}

#[derive(Debug, Serialize)]
struct Latency {
    value_size: usize,
    peak: Peak,
    /// The same schedule against a loopback server that does no work, just before and
    /// just after the broker: the machine's floor.
    echo_before: Paced,
    paced: Paced,
    echo_after: Paced,
    /// Broker CPU seconds per second of the paced run.
    broker_cpu_share: f64,
    /// This process's (the client's) CPU seconds per second of the paced run.
    client_cpu_share: f64,
}

fn check_args(args: &ProduceBenchArgs) -> anyhow::Result<()> {
    ensure!(args.runs >= 1, "--runs must be at least 1");
    ensure!(
        args.small_records >= 1 && args.large_records >= 1,
        "--small-records and --large-records must be at least 1"
    );
    ensure!(
        args.latency_secs >= 0.0 && args.peak_secs > 0.0 && args.paced_rate.is_none_or(|r| r > 0.0),
        "--latency-secs must not be negative; --peak-secs and --paced-rate must be positive"
    );
    ensure!(
        (1..=64).contains(&args.connections) && (1..=1024).contains(&args.window),
        "--connections must be 1 to 64 and --window 1 to 1024"
    );
    Ok(())
}

fn measure(args: &ProduceBenchArgs, out: &Out) -> anyhow::Result<Report> {
    check_args(args)?;
    let kcat_version = kcat_version(&args.kcat)?;
    let root = ScratchDir::create(&args.dir, "tributary-bench-produce").with_context(|| {
        format!(
            "cannot create a directory under {} (pass an existing, writable --dir)",
            args.dir.display()
        )
    })?;
    let machine_at_start = Machine::now();
    let filesystem = disk::filesystem_of(root.path());
    let producer_settings = PRODUCER_SETTINGS.join(" ");
    out.line(format_args!("tributary bench produce"));
    out.line(format_args!("  dir        {}", root.path().display()));
    if let Some(fs) = &filesystem {
        out.line(format_args!(
            "  filesystem {} on {} (mounted at {}, {})",
            fs.fs_type, fs.device, fs.mount_point, fs.options
        ));
    }
    out.line(format_args!("  machine    {}", machine_at_start.describe()));
    out.line(format_args!("  kcat       {kcat_version}"));
    out.line(format_args!(
        "  producer   -p 0 {producer_settings} (the same for both brokers)"
    ));

    let sizes = [
        (SMALL_VALUE, args.small_records),
        (LARGE_VALUE, args.large_records),
    ];
    let mut inputs = Vec::new();
    for (value_size, records) in sizes {
        let path = root.path().join(format!("values-{value_size}.txt"));
        write_input(&path, value_size, records, value_size as u64)?;
        inputs.push(Input {
            path,
            value_size,
            records,
        });
    }
    let clk_tck = clock_ticks_per_s();

    let exe = match &args.broker_exe {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("finding this executable to run the broker")?,
    };
    let broker = BrokerProcess::start(
        &args.broker_overrides,
        &exe,
        &root.path().join("data"),
        &root.path().join("broker.log"),
    )?;
    out.line(format_args!(
        "  broker     pid {} on {} ({})",
        broker.pid,
        broker.addr,
        if args.broker_overrides.is_empty() {
            "default settings".to_owned()
        } else {
            format!("overrides: {}", args.broker_overrides.join(" "))
        }
    ));
    let bootstrap = broker.addr.to_string();

    out.line(format_args!(
        "\nThroughput: mock, broker, mock (produce), then broker (consume); MB = 10^6 B of values"
    ));
    let mut throughput = Vec::new();
    for run in 1..=args.runs {
        for input in &inputs {
            let topic = format!("bench-{}-{run}", input.value_size);
            let kcat = &args.kcat;
            let mock_before = kcat_produce(kcat, MOCK_BOOTSTRAP, &topic, input, clk_tck)?;
            let produce = broker.phase(clk_tck, || {
                kcat_produce(kcat, &["-b", &bootstrap], &topic, input, clk_tck)
            })?;
            let mock_after = kcat_produce(kcat, MOCK_BOOTSTRAP, &topic, input, clk_tck)?;
            let consume = broker.phase(clk_tck, || {
                kcat_consume(kcat, &bootstrap, &topic, input, clk_tck)
            })?;
            if run == 1 {
                verify_consumed(kcat, &bootstrap, &topic, input)?;
            }
            // The mock's log lives in kcat's heap and goes back to the kernel when kcat
            // exits; the broker's goes to the page cache and would stay there. Without this,
            // each run's broker writes into pages the guest has not touched for a while,
            // which on this VM cost a host fault each (BENCHMARKS.md).
            latency::delete_topic(broker.addr, &topic)
                .with_context(|| format!("deleting the benchmark topic {topic}"))?;
            let r = SizeRun {
                run,
                value_size: input.value_size,
                records: input.records,
                mock_before,
                produce,
                mock_after,
                consume,
            };
            out.line(format_args!("  run {run}  {}", r.describe()));
            throughput.push(r);
        }
    }

    let latency = if args.latency_secs > 0.0 {
        let l = measure_latency(args, &broker, clk_tck, out)?;
        Some(l)
    } else {
        None
    };
    broker.stop()?;

    let mut report = Report {
        dir: root.path().to_path_buf(),
        filesystem,
        machine_at_start,
        machine_at_end: Machine::now(),
        kcat_version,
        producer_settings,
        broker_overrides: args.broker_overrides.clone(),
        runs: args.runs,
        throughput,
        latency,
        bars: Vec::new(),
    };
    report.bars = bars(&report);
    Ok(report)
}

fn measure_latency(
    args: &ProduceBenchArgs,
    broker: &BrokerProcess,
    clk_tck: f64,
    out: &Out,
) -> anyhow::Result<Latency> {
    let target = Target {
        addr: broker.addr,
        topic: "bench-latency".into(),
        value_size: SMALL_VALUE,
    };
    out.line(format_args!(
        "\nLatency: Produce v7, acks=-1, one {SMALL_VALUE} B record per request, {} connections",
        args.connections
    ));
    latency::prepare(&target)?;
    let peak = latency::peak(
        &target,
        args.connections,
        args.window,
        Duration::from_secs_f64(args.peak_secs),
    )?;
    out.line(format_args!(
        "  peak   {} requests/s ({} in flight per connection, closed loop, {:.0}s)",
        count(peak.requests_per_s()),
        args.window,
        args.peak_secs
    ));
    let rate = args
        .paced_rate
        .unwrap_or_else(|| peak.requests_per_s() / 2.0);
    out.line(format_args!(
        "  then at {:.2} of it, open loop, each request timed from its due time; echo: the \
         same schedule against a loopback server that does no work",
        rate / peak.requests_per_s()
    ));
    let duration = Duration::from_secs_f64(args.latency_secs);
    let echo = || {
        latency::echo_reference(&target, args.connections, rate, duration)
            .context("measuring the loopback echo reference")
    };
    let echo_before = echo()?;
    out.line(format_args!("  echo   {}", describe_paced(&echo_before)));
    let (broker_before, client_before) = (broker.cpu_ticks()?, own_cpu_ticks()?);
    let paced = latency::paced(&target, args.connections, rate, duration)?;
    let broker_cpu = (broker.cpu_ticks()? - broker_before) as f64 / clk_tck;
    let client_cpu = (own_cpu_ticks()? - client_before) as f64 / clk_tck;
    out.line(format_args!(
        "  broker {}; CPU: broker {:.0}%, client {:.0}% of a core",
        describe_paced(&paced),
        broker_cpu / paced.secs * 100.0,
        client_cpu / paced.secs * 100.0
    ));
    let echo_after = echo()?;
    out.line(format_args!("  echo   {}", describe_paced(&echo_after)));
    Ok(Latency {
        value_size: SMALL_VALUE,
        broker_cpu_share: broker_cpu / paced.secs,
        client_cpu_share: client_cpu / paced.secs,
        peak,
        echo_before,
        paced,
        echo_after,
    })
}

/// `18.0 k requests/s for 10s: p50 290 µs, p99 ... (client sent late p99 ...)`
fn describe_paced(p: &Paced) -> String {
    format!(
        "{} requests/s for {:.0}s: p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs \
         (client sent late: p99 {:.0} µs, max {:.0} µs)",
        count(p.requests_per_s()),
        p.secs,
        p.p50_us,
        p.p99_us,
        p.p999_us,
        p.max_us,
        p.send_late_p99_us,
        p.send_late_max_us
    )
}

/// One input file: `records` lines of exactly `value_size` printable bytes.
#[derive(Debug)]
struct Input {
    path: PathBuf,
    value_size: usize,
    records: u64,
}

/// Write `records` lines of `value_size` random characters from [`ALPHABET`].
fn write_input(path: &Path, value_size: usize, records: u64, seed: u64) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut rng = disk::Rng::new(seed);
    let mut line = vec![0u8; value_size + 1];
    for _ in 0..records {
        rng.fill(&mut line[..value_size]);
        for b in &mut line[..value_size] {
            *b = ALPHABET[usize::from(*b & 63)];
        }
        line[value_size] = b'\n';
        w.write_all(&line)?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// One kcat invocation, as seen from outside.
#[derive(Clone, Copy, Debug, Serialize)]
struct KcatPhase {
    secs: f64,
    kcat_cpu_secs: f64,
}

/// A kcat invocation against the broker, with the broker's CPU time during it.
#[derive(Clone, Copy, Debug, Serialize)]
struct BrokerPhase {
    secs: f64,
    kcat_cpu_secs: f64,
    broker_cpu_secs: f64,
}

/// `kcat -P` of the whole input file into partition 0 of `topic`.
fn kcat_produce(
    kcat: &Path,
    bootstrap: &[&str],
    topic: &str,
    input: &Input,
    clk_tck: f64,
) -> anyhow::Result<KcatPhase> {
    let mock = bootstrap == MOCK_BOOTSTRAP;
    let mut cmd = Command::new(kcat);
    cmd.arg("-P")
        .args(bootstrap)
        .args(["-t", topic, "-p", "0", "-l"])
        .arg(&input.path)
        .args(PRODUCER_SETTINGS)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let children_before = children_cpu_ticks()?;
    let start = Instant::now();
    let output = cmd
        .output()
        .with_context(|| format!("running {}", kcat.display()))?;
    let secs = start.elapsed().as_secs_f64();
    let kcat_cpu_secs = (children_cpu_ticks()? - children_before) as f64 / clk_tck;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let against = if mock {
        "the mock broker"
    } else {
        "the broker"
    };
    ensure!(
        output.status.success(),
        "kcat -P into {against} failed ({}): {}",
        output.status,
        stderr.trim()
    );
    if mock {
        ensure!(
            stderr.contains(MOCK_BANNER),
            "kcat did not report starting the mock cluster (librdkafka built without it?): {}",
            stderr.trim()
        );
    }
    Ok(KcatPhase {
        secs,
        kcat_cpu_secs,
    })
}

/// `kcat -C` of partition 0 of `topic` from offset 0 to its end, output to /dev/null
/// (a pipe to this process would be the bottleneck: kcat writes it 4 KiB at a time),
/// checking from kcat's own report that it read up to the input's record count.
fn kcat_consume(
    kcat: &Path,
    bootstrap: &str,
    topic: &str,
    input: &Input,
    clk_tck: f64,
) -> anyhow::Result<KcatPhase> {
    let children_before = children_cpu_ticks()?;
    let start = Instant::now();
    let output = consumer(kcat, bootstrap, topic)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {}", kcat.display()))?;
    let secs = start.elapsed().as_secs_f64();
    let kcat_cpu_secs = (children_cpu_ticks()? - children_before) as f64 / clk_tck;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.success(),
        "kcat -C from the broker failed ({}): {}",
        output.status,
        stderr.trim()
    );
    let end = format!(
        "Reached end of topic {topic} [0] at offset {}",
        input.records
    );
    ensure!(
        stderr.contains(&end),
        "kcat -C did not report {end:?}: {}",
        stderr.trim()
    );
    Ok(KcatPhase {
        secs,
        kcat_cpu_secs,
    })
}

/// Consume `topic` once more, untimed, through a pipe, and check that exactly the
/// input's lines came back: the timed consume only proves it reached the end offset.
fn verify_consumed(kcat: &Path, bootstrap: &str, topic: &str, input: &Input) -> anyhow::Result<()> {
    let mut child = consumer(kcat, bootstrap, topic)
        .arg("-q")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", kcat.display()))?;
    let mut stderr = child.stderr.take().context("kcat's stderr")?;
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut stdout = child.stdout.take().context("kcat's stdout")?;
    let (mut lines, mut bytes) = (0u64, 0u64);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match stdout.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading kcat's output"),
        };
        bytes += n as u64;
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    let status = child.wait()?;
    let errors = errors.join().unwrap_or_default();
    ensure!(
        status.success(),
        "kcat -C from the broker failed ({status}): {}",
        errors.trim()
    );
    let expected = input.records * (input.value_size as u64 + 1);
    ensure!(
        lines == input.records && bytes == expected,
        "kcat -C returned {lines} lines in {bytes} B from {topic}, expected {} lines in {expected} B",
        input.records
    );
    Ok(())
}

/// `kcat -C` of partition 0 of `topic` from offset 0 until the end.
fn consumer(kcat: &Path, bootstrap: &str, topic: &str) -> Command {
    let mut cmd = Command::new(kcat);
    cmd.args([
        "-C", "-b", bootstrap, "-t", topic, "-p", "0", "-o", "0", "-e",
    ])
    .args(CONSUMER_SETTINGS)
    .stdin(Stdio::null());
    cmd
}

/// One value size in one run.
#[derive(Clone, Debug, Serialize)]
struct SizeRun {
    run: usize,
    value_size: usize,
    records: u64,
    mock_before: KcatPhase,
    produce: BrokerPhase,
    mock_after: KcatPhase,
    consume: BrokerPhase,
}

impl SizeRun {
    fn rate(&self, secs: f64) -> f64 {
        self.records as f64 / secs
    }

    fn mb_per_s(&self, secs: f64) -> f64 {
        (self.records * self.value_size as u64) as f64 / MB / secs
    }

    fn produce_per_s(&self) -> f64 {
        self.rate(self.produce.secs)
    }

    fn consume_per_s(&self) -> f64 {
        self.rate(self.consume.secs)
    }

    /// The reference: the mean rate of the mock runs before and after the broker's.
    fn mock_per_s(&self) -> f64 {
        (self.rate(self.mock_before.secs) + self.rate(self.mock_after.secs)) / 2.0
    }

    fn produce_vs_mock(&self) -> f64 {
        self.produce_per_s() / self.mock_per_s()
    }

    fn consume_vs_produce(&self) -> f64 {
        self.consume_per_s() / self.produce_per_s()
    }

    /// Broker CPU seconds per million records.
    fn produce_cpu_per_m(&self) -> f64 {
        self.produce.broker_cpu_secs * 1e6 / self.records as f64
    }

    fn consume_cpu_per_m(&self) -> f64 {
        self.consume.broker_cpu_secs * 1e6 / self.records as f64
    }

    fn describe(&self) -> String {
        format!(
            "{:>4} B  mock {} rec/s ({:.2}s, {:.2}s; kcat CPU {:.2}s, {:.2}s) | produce {} rec/s {:>4.0} MB/s ({:.2}s, broker \
             CPU {:.2}s, kcat {:.2}s) | consume {} rec/s {:>4.0} MB/s ({:.2}s, broker CPU {:.2}s, \
             kcat {:.2}s) | produce/mock {:.2}, consume/produce {:.2}",
            self.value_size,
            count(self.mock_per_s()),
            self.mock_before.secs,
            self.mock_after.secs,
            self.mock_before.kcat_cpu_secs,
            self.mock_after.kcat_cpu_secs,
            count(self.produce_per_s()),
            self.mb_per_s(self.produce.secs),
            self.produce.secs,
            self.produce.broker_cpu_secs,
            self.produce.kcat_cpu_secs,
            count(self.consume_per_s()),
            self.mb_per_s(self.consume.secs),
            self.consume.secs,
            self.consume.broker_cpu_secs,
            self.consume.kcat_cpu_secs,
            self.produce_vs_mock(),
            self.consume_vs_produce()
        )
    }
}

/// A bar of the issue and whether it was met.
#[derive(Debug, Serialize)]
struct Bar {
    what: String,
    measured: f64,
    limit: f64,
    /// `true`: the measurement must be at least the limit; `false`: below it.
    at_least: bool,
    pass: bool,
    /// What the same-run reference shows, where that helps to read the result.
    context: Option<String>,
}

impl Bar {
    fn at_least(what: String, measured: f64, limit: f64) -> Bar {
        Bar {
            what,
            measured,
            limit,
            at_least: true,
            pass: measured >= limit,
            context: None,
        }
    }

    fn below(what: String, measured: f64, limit: f64) -> Bar {
        Bar {
            what,
            measured,
            limit,
            at_least: false,
            pass: measured < limit,
            context: None,
        }
    }
}

fn median_of(runs: &[SizeRun], size: usize, value: impl Fn(&SizeRun) -> f64) -> Option<f64> {
    let values: Vec<f64> = runs
        .iter()
        .filter(|r| r.value_size == size)
        .map(value)
        .collect();
    (!values.is_empty()).then(|| disk::median(&values))
}

fn bars(report: &Report) -> Vec<Bar> {
    let t = &report.throughput;
    let mut bars = Vec::new();
    for size in [SMALL_VALUE, LARGE_VALUE] {
        if let Some(ratio) = median_of(t, size, SizeRun::produce_vs_mock) {
            bars.push(Bar::at_least(
                format!("produce of {size} B records / same-run mock broker"),
                ratio,
                BAR_PRODUCE_VS_MOCK,
            ));
        }
    }
    for size in [SMALL_VALUE, LARGE_VALUE] {
        if let Some(ratio) = median_of(t, size, SizeRun::consume_vs_produce) {
            bars.push(Bar::at_least(
                format!("consume / produce of {size} B records"),
                ratio,
                BAR_CONSUME_VS_PRODUCE,
            ));
        }
    }
    if let Some(l) = &report.latency {
        let mut bar = Bar::below(
            format!(
                "produce-to-acknowledge p99 at {:.2} of peak ({} requests/s), µs",
                l.paced.target_per_s / l.peak.requests_per_s(),
                count(l.paced.target_per_s)
            ),
            l.paced.p99_us,
            BAR_P99_US,
        );
        bar.context = Some(format!(
            "the loopback echo reference on the same schedule: p99 {:.0} µs before, {:.0} µs after",
            l.echo_before.p99_us, l.echo_after.p99_us
        ));
        bars.push(bar);
    }
    bars
}

fn print_summary(report: &Report) {
    let mut s = String::new();
    let t = &report.throughput;
    let _ = writeln!(
        s,
        "\nThroughput, median of {} runs (MB = 10^6 B of values; ratios are medians of per-run \
         ratios; CPU in seconds per million records)",
        report.runs
    );
    let _ = writeln!(
        s,
        "  {:>6}  {:>9}  {:>11}  {:>13} {:>6}  {:>12}  {:>13} {:>6}  {:>15}  {:>11} {:>11}  {:>11} {:>11}",
        "value",
        "records",
        "mock rec/s",
        "produce rec/s",
        "MB/s",
        "produce/mock",
        "consume rec/s",
        "MB/s",
        "consume/produce",
        "broker CPU P",
        "broker CPU C",
        "kcat CPU P",
        "kcat CPU C"
    );
    for size in [SMALL_VALUE, LARGE_VALUE] {
        let m = |f: &dyn Fn(&SizeRun) -> f64| median_of(t, size, f).unwrap_or(0.0);
        let records = t
            .iter()
            .find(|r| r.value_size == size)
            .map_or(0, |r| r.records);
        let _ = writeln!(
            s,
            "  {:>4} B  {:>9}  {:>11}  {:>13} {:>6.0}  {:>12.2}  {:>13} {:>6.0}  {:>15.2}  {:>11.2} {:>11.2}  {:>11.2} {:>11.2}",
            size,
            count(records as f64),
            count(m(&SizeRun::mock_per_s)),
            count(m(&SizeRun::produce_per_s)),
            m(&|r| r.mb_per_s(r.produce.secs)),
            m(&SizeRun::produce_vs_mock),
            count(m(&SizeRun::consume_per_s)),
            m(&|r| r.mb_per_s(r.consume.secs)),
            m(&SizeRun::consume_vs_produce),
            m(&SizeRun::produce_cpu_per_m),
            m(&SizeRun::consume_cpu_per_m),
            m(&|r| r.produce.kcat_cpu_secs * 1e6 / r.records as f64),
            m(&|r| r.consume.kcat_cpu_secs * 1e6 / r.records as f64),
        );
    }
    let _ = writeln!(
        s,
        "  (P = produce, C = consume; the mock broker runs inside kcat, so its CPU is kcat's)"
    );
    if let Some(l) = &report.latency {
        let _ = writeln!(
            s,
            "\nLatency, one {} B record per request, {} connections: peak {} requests/s ({} in \
             flight each, closed loop); at {:.2} of it, open loop (µs from each request's due \
             time):",
            l.value_size,
            l.paced.connections,
            count(l.peak.requests_per_s()),
            l.peak.window,
            l.paced.target_per_s / l.peak.requests_per_s(),
        );
        let _ = writeln!(
            s,
            "  {:>12}  {:>10}  {:>7}  {:>7}  {:>7}  {:>7}  {:>14}",
            "", "requests/s", "p50", "p99", "p99.9", "max", "client late p99"
        );
        for (name, p) in [
            ("echo before", &l.echo_before),
            ("broker", &l.paced),
            ("echo after", &l.echo_after),
        ] {
            let _ = writeln!(
                s,
                "  {:>12}  {:>10}  {:>7.0}  {:>7.0}  {:>7.0}  {:>7.0}  {:>14.0}",
                name,
                count(p.requests_per_s()),
                p.p50_us,
                p.p99_us,
                p.p999_us,
                p.max_us,
                p.send_late_p99_us
            );
        }
        let _ = writeln!(
            s,
            "  (broker CPU {:.0}% and client CPU {:.0}% of a core during the broker's run)",
            l.broker_cpu_share * 100.0,
            l.client_cpu_share * 100.0
        );
    }
    let _ = writeln!(s, "\nBars");
    for bar in &report.bars {
        let _ = writeln!(
            s,
            "  {}  {}: {:.2} (bar {} {:.2}, {:.2} of it){}",
            if bar.pass { "PASS" } else { "FAIL" },
            bar.what,
            bar.measured,
            if bar.at_least { ">=" } else { "<" },
            bar.limit,
            bar.measured / bar.limit,
            bar.context
                .as_ref()
                .map_or(String::new(), |c| format!("; {c}"))
        );
    }
    let _ = writeln!(
        s,
        "\nload at start {}, at end {}",
        disk::describe_load(report.machine_at_start.load),
        disk::describe_load(report.machine_at_end.load)
    );
    print!("{s}");
}

/// The broker as a child process, stopped with SIGTERM (also when the bench fails).
#[derive(Debug)]
struct BrokerProcess {
    child: Option<Child>,
    pid: u32,
    addr: SocketAddr,
    log: PathBuf,
}

/// How long the broker may take to start, and to flush and stop.
const BROKER_START_TIMEOUT: Duration = Duration::from_secs(60);
const BROKER_STOP_TIMEOUT: Duration = Duration::from_secs(60);

impl BrokerProcess {
    fn start(
        overrides: &[String],
        exe: &Path,
        data_dir: &Path,
        log: &Path,
    ) -> anyhow::Result<BrokerProcess> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(exe)
            .arg("broker")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(overrides.iter().flat_map(|o| ["--override", o.as_str()]))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {} broker", exe.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().context("the broker's stdout")?;
        let mut broker = BrokerProcess {
            child: Some(child),
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log: log.to_path_buf(),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = tx.send(reader.read_line(&mut line).map(|_| line));
            // Keep reading so a later line never blocks the broker on a full pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = match rx.recv_timeout(BROKER_START_TIMEOUT) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => bail!("reading the broker's stdout: {e}"),
            Err(_) => bail!(
                "the broker did not report listening within {BROKER_START_TIMEOUT:?}; its log:\n{}",
                broker.log_tail()
            ),
        };
        let Some(addr) = line.trim().strip_prefix("tributary broker listening on ") else {
            bail!(
                "the broker did not start (stdout: {:?}); its log:\n{}",
                line.trim(),
                broker.log_tail()
            );
        };
        broker.addr = addr
            .parse()
            .with_context(|| format!("parsing the broker's address {addr:?}"))?;
        Ok(broker)
    }

    /// The broker's user + system CPU time so far, in clock ticks (all its threads).
    fn cpu_ticks(&self) -> anyhow::Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .context("reading the broker's /proc/PID/stat")?;
        let (utime, stime) = stat_times(&stat, 11)?;
        Ok(utime + stime)
    }

    /// Run `f` and add the broker's CPU time during it.
    fn phase(
        &self,
        clk_tck: f64,
        f: impl FnOnce() -> anyhow::Result<KcatPhase>,
    ) -> anyhow::Result<BrokerPhase> {
        let before = self.cpu_ticks()?;
        let k = f()?;
        let after = self.cpu_ticks()?;
        Ok(BrokerPhase {
            secs: k.secs,
            kcat_cpu_secs: k.kcat_cpu_secs,
            broker_cpu_secs: (after - before) as f64 / clk_tck,
        })
    }

    /// SIGTERM, then wait for the clean shutdown (which flushes every partition).
    fn stop(mut self) -> anyhow::Result<()> {
        let Some(child) = self.child.take() else {
            return Ok(());
        };
        let status = terminate(child, self.pid, BROKER_STOP_TIMEOUT)?;
        ensure!(
            status.success(),
            "the broker exited with {status}; its log:\n{}",
            self.log_tail()
        );
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let _ = terminate(child, self.pid, Duration::from_secs(10));
        }
    }
}

/// Send SIGTERM (through `kill(1)`: no unsafe code for `libc::kill`) and wait up to
/// `timeout`; then SIGKILL.
fn terminate(
    mut child: Child,
    pid: u32,
    timeout: Duration,
) -> anyhow::Result<std::process::ExitStatus> {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let status = child.wait()?;
            bail!(
                "the broker did not stop within {timeout:?} of SIGTERM and was killed ({status})"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two consecutive counters of a `/proc/PID/stat` line: `first` counts fields after the
/// command name (whose parentheses may hide spaces), 0 being the state (field 3). utime
/// and stime are at 11 and 12, cutime and cstime (reaped children) at 13 and 14.
fn stat_times(stat: &str, first: usize) -> anyhow::Result<(u64, u64)> {
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("no command name in /proc/PID/stat")?;
    let mut fields = rest.split_whitespace().skip(first);
    let mut next = || -> anyhow::Result<u64> {
        fields
            .next()
            .context("/proc/PID/stat is shorter than expected")?
            .parse()
            .context("a /proc/PID/stat counter is not a number")
    };
    Ok((next()?, next()?))
}

/// This process's own CPU time (all threads), in clock ticks.
fn own_cpu_ticks() -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    let (utime, stime) = stat_times(&stat, 11)?;
    Ok(utime + stime)
}

/// CPU time of this process's children that have been waited for, in clock ticks.
fn children_cpu_ticks() -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    let (cutime, cstime) = stat_times(&stat, 13)?;
    Ok(cutime + cstime)
}

/// `sysconf(_SC_CLK_TCK)` through `getconf` (calling libc's would need unsafe code);
/// 100, Linux's value on every common architecture, if that fails.
fn clock_ticks_per_s() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|&t| t > 0.0)
        .unwrap_or(100.0)
}

/// `kcat -V`'s first line with the librdkafka version, e.g. `kcat - Apache Kafka
/// producer and consumer tool ... (librdkafka 2.0.2 ...)`, shortened to the versions.
fn kcat_version(kcat: &Path) -> anyhow::Result<String> {
    let output = Command::new(kcat).arg("-V").output().with_context(|| {
        format!(
            "running {} (install kcat, or pass its path with --kcat)",
            kcat.display()
        )
    })?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text.lines().find(|l| l.contains("Version")).map_or_else(
        || text.lines().next().unwrap_or("unknown").to_owned(),
        |l| l.trim().to_owned(),
    );
    Ok(version)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: ProduceBenchArgs,
    }

    fn args(extra: &[&str]) -> ProduceBenchArgs {
        let mut argv = vec!["bench"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn defaults_are_the_issues() {
        let a = args(&[]);
        assert_eq!((a.small_records, a.large_records), (1_000_000, 500_000));
        assert_eq!(a.runs, 3);
        assert_eq!(a.latency_secs, 10.0);
        assert!(check_args(&a).is_ok());
        assert!(check_args(&args(&["--runs", "0"])).is_err());
        assert!(check_args(&args(&["--connections", "0"])).is_err());
    }

    #[test]
    fn input_lines_are_exact_printable_and_distinct() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        write_input(&path, 100, 50, 1).unwrap();
        let text = std::fs::read(&path).unwrap();
        assert_eq!(text.len(), 50 * 101);
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), 51);
        assert!(lines[50].is_empty());
        for l in &lines[..50] {
            assert_eq!(l.len(), 100);
            assert!(l.iter().all(|b| ALPHABET.contains(b)));
        }
        assert_ne!(lines[0], lines[1]);
        // Near 6 bits of entropy per byte: zstd saves no more than about a quarter.
        let packed = zstd::bulk::compress(&text, 3).unwrap();
        assert!(packed.len() * 10 > text.len() * 7, "{}", packed.len());
    }

    #[test]
    fn stat_fields_are_read_after_the_command_name() {
        // A command name with spaces and a parenthesis, as /proc allows.
        let stat = "1234 (a b) c) S 1 2 3 4 5 6 7 8 9 10 111 222 333 444 20 0 1 0";
        assert_eq!(stat_times(stat, 11).unwrap(), (111, 222));
        assert_eq!(stat_times(stat, 13).unwrap(), (333, 444));
        assert!(stat_times("1 (x) S 1", 11).is_err());
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(stat_times(&own, 11).is_ok());
        assert!(clock_ticks_per_s() > 0.0);
    }

    #[test]
    fn bars_compare_in_the_right_direction() {
        let phase = |secs| KcatPhase {
            secs,
            kcat_cpu_secs: 0.0,
        };
        let broker = |secs| BrokerPhase {
            secs,
            kcat_cpu_secs: 0.0,
            broker_cpu_secs: 0.5,
        };
        let run = |value_size, produce, consume| SizeRun {
            run: 1,
            value_size,
            records: 1_000_000,
            mock_before: phase(0.9),
            produce: broker(produce),
            mock_after: phase(1.1),
            consume: broker(consume),
        };
        let small = run(SMALL_VALUE, 1.0, 0.5);
        assert!((small.produce_vs_mock() - 1.0).abs() < 0.02);
        assert_eq!(small.consume_vs_produce(), 2.0);
        assert_eq!(small.produce_cpu_per_m(), 0.5);
        let report = Report {
            dir: PathBuf::new(),
            filesystem: None,
            machine_at_start: Machine::now(),
            machine_at_end: Machine::now(),
            kcat_version: String::new(),
            producer_settings: String::new(),
            broker_overrides: Vec::new(),
            runs: 1,
            throughput: vec![small, run(LARGE_VALUE, 2.0, 3.0)],
            latency: None,
            bars: Vec::new(),
        };
        let pass: Vec<bool> = bars(&report).iter().map(|b| b.pass).collect();
        assert_eq!(pass, vec![true, false, true, false]);
        assert!(Bar::below("p99".into(), 1500.0, BAR_P99_US).pass);
        assert!(!Bar::below("p99".into(), 2500.0, BAR_P99_US).pass);
    }
}
