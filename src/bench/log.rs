//! `tributary bench log`: the commit log's throughput and durable-append rate on one
//! partition, each printed beside the disk's own limit measured in the same run
//! ([`super::disk`]) and checked against the bars of the issue that asked for it.
//!
//! Two modes:
//! - throughput: append ~64 KiB batches of incompressible records until `--total-mb`
//!   is written, timed up to the final `fdatasync` (`PartitionLog::flush`), then read
//!   everything back while it is hot in the page cache, every batch CRC-verified by
//!   `PartitionLog::read`. Reference: one large write + `fdatasync` of the same size.
//! - fsync: `flush.messages=1`, so every append waits for an `fdatasync`; 1, 2, 4...
//!   threads append to the same log and group commit shares the syncs. Reference: a
//!   raw `write` + `fdatasync` loop of the same size. Uses the largest value size.
//!
//! On a virtual machine both page-cache speed and `fdatasync` latency drift with the
//! host's state, so each reference is measured next to the log it is compared with: in
//! throughput mode just before and just after it (the mean of the two cancels a steady
//! drift without favouring either side, where the faster of the two would hold the log
//! to the luckier sample); in fsync mode, where latency flips between modes that differ
//! tenfold, interleaved with it in 100 ms slices.
//!
//! What it is not: a benchmark of the broker or of the wire protocol. Batches are built
//! before timing starts, as a producer would build them, so only the log's work is
//! timed; building speed is printed on a side line.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use serde::Serialize;

use super::disk::{self, Filesystem, LoopRate, MB, Machine, SyncedWrite};
use super::{Out, ScratchDir, count};
use crate::log::LogConfig;
use crate::log::PartitionLog;
use crate::log::batch::{BATCH_HEADER_LEN, BatchBuilder, BatchIter};
use crate::log::compression::Compression;

/// Key length of every record: a big-endian sequence number.
const KEY_LEN: usize = 8;
/// Most bytes a record adds around its key and value when built by `BatchBuilder` with
/// no headers: length, attributes, timestamp and offset deltas, key and value lengths,
/// header count.
const RECORD_OVERHEAD_MAX: usize = 5 + 1 + 10 + 5 + 5 + 5 + 5;
/// How much distinct data is built up front per value size; longer runs cycle through
/// it (the log copies each batch before rewriting its offsets, so reuse is allowed).
const BUILT_SET_BYTES: u64 = 64 << 20;
/// Distinct batches built for the fsync mode.
const FSYNC_SET_BATCHES: usize = 64;
/// How long the log and the raw loop each run before handing over to the other in
/// fsync mode: long enough for dozens of fdatasyncs even at 4 ms each, short next to
/// the seconds a host stays in one fdatasync mode.
const FSYNC_SLICE: Duration = Duration::from_millis(100);
/// `max_bytes` of each read in the hot-read pass, as a consumer's fetch would ask.
const READ_CHUNK: usize = 1 << 20;

/// The issue's bars.
const BAR_APPEND_BANDWIDTH: f64 = 0.85;
const BAR_APPEND_SMALL_RECORDS_PER_S: f64 = 3e6;
const BAR_READ_SMALL_RECORDS_PER_S: f64 = 10e6;
const BAR_FSYNC_VS_RAW: f64 = 0.9;
const BAR_GROUP_COMMIT_GAIN: f64 = 3.0;
/// The value sizes and appender count the bars are stated for.
const SMALL_VALUE: usize = 100;
const LARGE_VALUE: usize = 1000;
const GROUP_APPENDERS: usize = 4;

/// Arguments of `tributary bench log`.
#[derive(Debug, clap::Args)]
pub struct LogBenchArgs {
    /// Parent of the temporary log directory (a uniquely named subdirectory is created
    /// there and removed at the end). The default, the current directory, puts the log
    /// on the project's own disk; do not point it at a tmpfs.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Value sizes in bytes, one throughput measurement each; keys are 8 bytes.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    value_sizes: Vec<usize>,
    /// MiB (2^20 bytes) of batches appended per value size and run in throughput mode.
    /// The default (1 GiB) takes a few seconds at 300-800 MB/s; since the time runs to
    /// the final fdatasync, every byte has reached the disk, not only the page cache.
    #[arg(long, default_value_t = 1024)]
    total_mb: u64,
    /// Target size of each batch in bytes (batches are cut before exceeding it).
    #[arg(long, default_value_t = 65536)]
    batch_bytes: usize,
    /// Repetitions; each is printed and the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Mode::All)]
    mode: Mode,
    /// Concurrent appenders to measure in fsync mode.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    appenders: Vec<usize>,
    /// Most batches each appender writes in fsync mode (and operations of the raw
    /// loop)...
    #[arg(long, default_value_t = 2000)]
    fsync_batches: u64,
    /// ...or stop after this many seconds of the log and as many of the raw loop, per
    /// appender count and run, whichever comes first.
    #[arg(long, default_value_t = 2.0)]
    fsync_secs: f64,
    /// Print one JSON document instead of the tables.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    /// Append and hot-read throughput.
    Throughput,
    /// Durable appends: fdatasync per batch, with group commit.
    Fsync,
    /// Both.
    All,
}

impl Mode {
    fn throughput(self) -> bool {
        matches!(self, Mode::Throughput | Mode::All)
    }

    fn fsync(self) -> bool {
        matches!(self, Mode::Fsync | Mode::All)
    }
}

/// Run the benchmark and print its report (tables, or JSON with `--json`).
pub fn run(args: &LogBenchArgs) -> anyhow::Result<()> {
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
    mode: Mode,
    batch_bytes: usize,
    total_bytes_per_size: u64,
    runs: usize,
    builds: Vec<BuildSpeed>,
    throughput: Vec<ThroughputRun>,
    fsync_value_size: usize,
    fsync: Vec<FsyncRun>,
    bars: Vec<Bar>,
}

fn check_args(args: &LogBenchArgs) -> anyhow::Result<()> {
    ensure!(args.runs >= 1, "--runs must be at least 1");
    ensure!(
        !args.value_sizes.is_empty() && args.value_sizes.iter().all(|&v| v > 0),
        "--value-sizes must list sizes of at least 1 byte"
    );
    let max_batch = LogConfig::default().max_message_bytes;
    ensure!(
        (1024..=max_batch).contains(&args.batch_bytes),
        "--batch-bytes must be between 1024 and {max_batch} (the log's max.message.bytes)"
    );
    ensure!(
        args.value_sizes
            .iter()
            .all(|&v| v + KEY_LEN + RECORD_OVERHEAD_MAX + BATCH_HEADER_LEN <= args.batch_bytes),
        "every value size must fit in a batch of --batch-bytes"
    );
    ensure!(args.total_mb >= 1, "--total-mb must be at least 1");
    ensure!(
        !args.appenders.is_empty() && args.appenders.iter().all(|&n| (1..=256).contains(&n)),
        "--appenders must list counts between 1 and 256"
    );
    ensure!(
        args.fsync_batches >= 1 && args.fsync_secs > 0.0,
        "--fsync-batches and --fsync-secs must be positive"
    );
    Ok(())
}

fn measure(args: &LogBenchArgs, out: &Out) -> anyhow::Result<Report> {
    check_args(args)?;
    let root = ScratchDir::create(&args.dir, "tributary-bench-log").with_context(|| {
        format!(
            "cannot create a directory under {} (pass an existing, writable --dir)",
            args.dir.display()
        )
    })?;
    let machine_at_start = Machine::now();
    let filesystem = disk::filesystem_of(root.path());
    out.line(format_args!("tributary bench log"));
    out.line(format_args!("  dir        {}", root.path().display()));
    if let Some(fs) = &filesystem {
        out.line(format_args!(
            "  filesystem {} on {} (mounted at {}, {})",
            fs.fs_type, fs.device, fs.mount_point, fs.options
        ));
    }
    out.line(format_args!("  machine    {}", machine_at_start.describe()));
    let total_bytes = args.total_mb << 20;

    let mut builds = Vec::new();
    let mut throughput = Vec::new();
    if args.mode.throughput() {
        out.line(format_args!(
            "\nThroughput: {} MiB per value size and run, batches of ~{} B, 8-byte keys, \
             incompressible values; append timed to the final fdatasync",
            args.total_mb, args.batch_bytes
        ));
        let target = total_bytes.min(BUILT_SET_BYTES);
        let mut sets = Vec::new();
        for (i, &value_size) in args.value_sizes.iter().enumerate() {
            let set = BatchSet::build(
                value_size,
                args.batch_bytes,
                SetSize::Bytes(target),
                i as u64 + 1,
            )?;
            out.line(format_args!(
                "  building {value_size} B batches (not timed below): {} records/s, {:.0} MB/s",
                count(set.build.records_per_s),
                set.build.mb_per_s
            ));
            builds.push(set.build.clone());
            sets.push(set);
        }
        for run in 1..=args.runs {
            for set in &sets {
                let r = throughput_run(root.path(), set, total_bytes, run)?;
                out.line(format_args!("  run {run}  {}", r.describe()));
                throughput.push(r);
            }
        }
    }

    let fsync_value_size = args
        .value_sizes
        .iter()
        .copied()
        .max()
        .unwrap_or(LARGE_VALUE);
    let mut fsync = Vec::new();
    if args.mode.fsync() {
        let set = BatchSet::build(
            fsync_value_size,
            args.batch_bytes,
            SetSize::Batches(FSYNC_SET_BATCHES),
            99,
        )?;
        out.line(format_args!(
            "\nDurable appends: flush.messages=1 (each append waits for an fdatasync, shared \
             by group commit), batches of {} B ({fsync_value_size} B values), up to {} batches \
             per appender or {}s, in 100 ms slices alternating with the raw loop",
            set.batch_len(),
            args.fsync_batches,
            args.fsync_secs
        ));
        let limit = Limit {
            batches: args.fsync_batches,
            time: Duration::from_secs_f64(args.fsync_secs),
        };
        for run in 1..=args.runs {
            for &appenders in &args.appenders {
                let r = fsync_run(root.path(), &set, appenders, limit, run)?;
                out.line(format_args!("  run {run}  {}", r.describe()));
                fsync.push(r);
            }
        }
    }

    let mut report = Report {
        dir: root.path().to_path_buf(),
        filesystem,
        machine_at_start,
        machine_at_end: Machine::now(),
        mode: args.mode,
        batch_bytes: args.batch_bytes,
        total_bytes_per_size: total_bytes,
        runs: args.runs,
        builds,
        throughput,
        fsync_value_size,
        fsync,
        bars: Vec::new(),
    };
    report.bars = bars(&report);
    Ok(report)
}

/// Pre-built batches, cycled through by the timed appends.
#[derive(Debug)]
struct BatchSet {
    value_size: usize,
    batches: Vec<Vec<u8>>,
    build: BuildSpeed,
}

/// How fast `BatchBuilder` encoded the set (a producer's work, not the log's).
#[derive(Clone, Debug, Serialize)]
struct BuildSpeed {
    value_size: usize,
    records_per_s: f64,
    mb_per_s: f64,
}

/// How much a [`BatchSet`] holds.
#[derive(Clone, Copy, Debug)]
enum SetSize {
    /// Whole batches until at least this many bytes.
    Bytes(u64),
    Batches(usize),
}

impl BatchSet {
    fn build(
        value_size: usize,
        batch_bytes: usize,
        size: SetSize,
        seed: u64,
    ) -> anyhow::Result<BatchSet> {
        let record_max = value_size + KEY_LEN + RECORD_OVERHEAD_MAX;
        // Values are consecutive slices of one random pool, generated before timing and
        // large enough that no value repeats within the set.
        let values_per_batch = (batch_bytes / (value_size + KEY_LEN)).max(1) * value_size;
        let pool_len = match size {
            SetSize::Bytes(target) => target as usize + batch_bytes,
            SetSize::Batches(n) => n * values_per_batch,
        };
        let pool = disk::random_bytes(pool_len + value_size, seed);
        let done = |bytes: u64, batches: usize| match size {
            SetSize::Bytes(target) => bytes >= target,
            SetSize::Batches(n) => batches >= n,
        };
        let timestamp = now_ms();
        let (mut batches, mut bytes, mut records) = (Vec::new(), 0u64, 0u64);
        let mut at = 0usize;
        let start = Instant::now();
        while !done(bytes, batches.len()) {
            let mut b = BatchBuilder::new(Compression::None);
            loop {
                if at + value_size > pool.len() {
                    at = 0;
                }
                b.push(
                    timestamp,
                    Some(&records.to_be_bytes()),
                    Some(&pool[at..at + value_size]),
                    &[],
                );
                at += value_size;
                records += 1;
                if b.size_estimate() + record_max > batch_bytes {
                    break;
                }
            }
            let batch = b.build().context("building a benchmark batch")?;
            bytes += batch.len() as u64;
            batches.push(batch);
        }
        let secs = start.elapsed().as_secs_f64();
        Ok(BatchSet {
            value_size,
            batches,
            build: BuildSpeed {
                value_size,
                records_per_s: records as f64 / secs,
                mb_per_s: bytes as f64 / MB / secs,
            },
        })
    }

    /// Size of the first batch (all are the same size: same record sizes and counts).
    fn batch_len(&self) -> usize {
        self.batches.first().map_or(0, Vec::len)
    }
}

/// One throughput repetition for one value size.
#[derive(Clone, Debug, Serialize)]
struct ThroughputRun {
    run: usize,
    value_size: usize,
    log: LogPass,
    /// The same-run reference, measured just before and just after the log: a plain
    /// file of the same size written in writes of the batch size and synced.
    disk_before: SyncedWrite,
    disk_after: SyncedWrite,
}

/// What the log did in one throughput repetition.
#[derive(Clone, Debug, Serialize)]
struct LogPass {
    batches: u64,
    records: u64,
    bytes: u64,
    /// The appends (into the page cache, mostly).
    append_write_secs: f64,
    /// The final `PartitionLog::flush`.
    append_sync_secs: f64,
    read_secs: f64,
}

impl ThroughputRun {
    fn append_secs(&self) -> f64 {
        self.log.append_write_secs + self.log.append_sync_secs
    }

    fn append_records_per_s(&self) -> f64 {
        self.log.records as f64 / self.append_secs()
    }

    fn append_mb_per_s(&self) -> f64 {
        self.log.bytes as f64 / MB / self.append_secs()
    }

    fn read_records_per_s(&self) -> f64 {
        self.log.records as f64 / self.log.read_secs
    }

    fn read_mb_per_s(&self) -> f64 {
        self.log.bytes as f64 / MB / self.log.read_secs
    }

    /// The reference: the mean of the measurements before and after the log.
    fn disk_mb_per_s(&self) -> f64 {
        (self.disk_before.mb_per_s() + self.disk_after.mb_per_s()) / 2.0
    }

    fn ratio(&self) -> f64 {
        self.append_mb_per_s() / self.disk_mb_per_s()
    }

    fn describe(&self) -> String {
        format!(
            "{:>5} B  append {} rec/s {:>5.0} MB/s (write {:.2}s + sync {:.2}s) | hot read {} rec/s \
             {:>5.0} MB/s | disk {:>4.0} MB/s (before: write {:.2}s + sync {:.2}s, after: \
             {:.2}s + {:.2}s) | append/disk {:.2}",
            self.value_size,
            count(self.append_records_per_s()),
            self.append_mb_per_s(),
            self.log.append_write_secs,
            self.log.append_sync_secs,
            count(self.read_records_per_s()),
            self.read_mb_per_s(),
            self.disk_mb_per_s(),
            self.disk_before.write_secs,
            self.disk_before.sync_secs,
            self.disk_after.write_secs,
            self.disk_after.sync_secs,
            self.ratio()
        )
    }
}

/// Append `total` bytes of `set`'s batches (whole batches, at least one), flush, read it
/// all back, between two measurements of the disk reference.
fn throughput_run(
    parent: &Path,
    set: &BatchSet,
    total: u64,
    run: usize,
) -> anyhow::Result<ThroughputRun> {
    let batch_len = set.batch_len().max(1);
    let n = (total / batch_len as u64).max(1);
    let bytes = set
        .batches
        .iter()
        .cycle()
        .take(n as usize)
        .map(|b| b.len() as u64)
        .sum();
    let reference = || {
        disk::fdatasync_bandwidth(parent, bytes, batch_len)
            .context("measuring the disk's fdatasync bandwidth")
    };
    let disk_before = reference()?;
    let log = append_and_read(parent, set, n)?;
    let disk_after = reference()?;
    Ok(ThroughputRun {
        run,
        value_size: set.value_size,
        log,
        disk_before,
        disk_after,
    })
}

fn append_and_read(parent: &Path, set: &BatchSet, n: u64) -> anyhow::Result<LogPass> {
    let dir = ScratchDir::create(parent, "throughput")?;
    // The defaults, stated: 1 GiB segments, no sync until the final flush.
    let config = log_config(&[("segment.bytes", "1073741824")])?;
    let log = PartitionLog::open(dir.path(), config)?;
    let (mut records, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    for batch in set.batches.iter().cycle().take(n as usize) {
        let info = log.append(batch)?;
        records += info.records;
        bytes += batch.len() as u64;
    }
    let wrote = Instant::now();
    log.flush()?;
    let synced = Instant::now();
    let end = log.high_watermark();
    ensure!(
        end == records as i64,
        "log end {end} after appending {records} records"
    );

    let read_start = Instant::now();
    let (read_records, read_bytes) = read_all(&log, end)?;
    let read_secs = read_start.elapsed().as_secs_f64();
    ensure!(
        (read_records, read_bytes) == (records, bytes),
        "read back {read_records} records in {read_bytes} B, appended {records} in {bytes} B"
    );
    log.close()?;
    Ok(LogPass {
        batches: n,
        records,
        bytes,
        append_write_secs: (wrote - start).as_secs_f64(),
        append_sync_secs: (synced - wrote).as_secs_f64(),
        read_secs,
    })
}

/// Read the log from its start to `end` as a consumer would, in fetches of
/// [`READ_CHUNK`], counting records from the batch headers. `PartitionLog::read`
/// verifies every batch's CRC before returning it.
fn read_all(log: &PartitionLog, end: i64) -> anyhow::Result<(u64, u64)> {
    let mut next = log.log_start_offset();
    let (mut records, mut bytes) = (0u64, 0u64);
    while next < end {
        let read = log.read(next, READ_CHUNK, true)?;
        if read.records.is_empty() {
            bail!("read at offset {next} returned nothing below the high watermark {end}");
        }
        for item in BatchIter::new(&read.records) {
            let (_, header) = item.with_context(|| format!("reading at offset {next}"))?;
            records += header.records_count as u64;
            bytes += header.size() as u64;
            next = header.last_offset() + 1;
        }
    }
    Ok((records, bytes))
}

/// When an fsync-mode measurement stops.
#[derive(Clone, Copy, Debug)]
struct Limit {
    /// Batches per appender (and operations of the raw loop).
    batches: u64,
    /// Time for each side, the log and the raw loop.
    time: Duration,
}

/// One fsync-mode repetition for one appender count.
#[derive(Clone, Debug, Serialize)]
struct FsyncRun {
    run: usize,
    appenders: usize,
    batch_bytes: usize,
    log: Durable,
    /// The same-run reference, interleaved with the log in [`FSYNC_SLICE`]s: write +
    /// fdatasync of `appenders` batches at a time, the most group commit could reach
    /// (with one appender, the plain per-batch rate).
    raw: LoopRate,
    /// How many slices each side ran.
    slices: usize,
}

/// What the log did in one fsync-mode repetition.
#[derive(Clone, Debug, Serialize)]
struct Durable {
    batches: u64,
    secs: f64,
    /// Latency of one durable append, in microseconds.
    p50_us: f64,
    p99_us: f64,
}

impl FsyncRun {
    fn batches_per_s(&self) -> f64 {
        self.log.batches as f64 / self.log.secs
    }

    /// Batches per second of the raw loop: each of its syncs covers `appenders` batches.
    fn raw_batches_per_s(&self) -> f64 {
        self.raw.ops_per_s() * self.appenders as f64
    }

    fn describe(&self) -> String {
        format!(
            "{} appender{:1}  log {:>6.0} batches/s (p50 {:.0} µs, p99 {:.0} µs) | raw write+fdatasync \
             of {} B: {:>6.0}/s (p50 {:.0} µs) = {:>6.0} batches/s | log/raw {:.2}",
            self.appenders,
            if self.appenders == 1 { "" } else { "s" },
            self.batches_per_s(),
            self.log.p50_us,
            self.log.p99_us,
            self.raw.write_size,
            self.raw.ops_per_s(),
            self.raw.p50_us,
            self.raw_batches_per_s(),
            self.batches_per_s() / self.raw_batches_per_s()
        )
    }
}

/// The log and its raw reference take turns in slices of [`FSYNC_SLICE`] until each
/// has had `limit`, so both see the same fdatasync mode of the host.
fn fsync_run(
    parent: &Path,
    set: &BatchSet,
    appenders: usize,
    limit: Limit,
    run: usize,
) -> anyhow::Result<FsyncRun> {
    let dir = ScratchDir::create(parent, "fsync")?;
    let log = PartitionLog::open(dir.path(), log_config(&[("flush.messages", "1")])?)?;
    let mut raw = disk::FsyncLoop::create(parent, set.batch_len() * appenders)
        .context("creating the raw write+fdatasync file")?;
    let max_log = limit.batches.saturating_mul(appenders as u64);
    let budget = limit.time.as_secs_f64();
    let mut durable = DurableTotals::default();
    let mut slices = 0;
    loop {
        let raw_left = raw.ops() < limit.batches && raw.secs() < budget;
        let log_left = durable.batches < max_log && durable.secs < budget;
        if !raw_left && !log_left {
            break;
        }
        slices += 1;
        // Who goes first alternates, so neither side always follows the other's
        // writeback.
        for log_turn in [slices % 2 == 0, slices % 2 == 1] {
            if log_turn && log_left {
                durable_slice(
                    &log,
                    set,
                    appenders,
                    max_log - durable.batches,
                    &mut durable,
                )?;
            } else if !log_turn && raw_left {
                raw.run(limit.batches - raw.ops(), FSYNC_SLICE)
                    .context("measuring the raw write+fdatasync rate")?;
            }
        }
    }
    ensure!(
        log.high_watermark() == durable.records as i64,
        "high watermark {} after {} acknowledged records",
        log.high_watermark(),
        durable.records
    );
    log.close()?;
    Ok(FsyncRun {
        run,
        appenders,
        batch_bytes: set.batch_len(),
        log: Durable {
            batches: durable.batches,
            secs: durable.secs,
            p50_us: disk::percentile(&mut durable.latencies_us, 0.50),
            p99_us: disk::percentile(&mut durable.latencies_us, 0.99),
        },
        raw: raw.rate(),
        slices,
    })
}

/// The log's side of an fsync-mode measurement, summed over its slices.
#[derive(Debug, Default)]
struct DurableTotals {
    batches: u64,
    records: u64,
    secs: f64,
    latencies_us: Vec<f64>,
}

/// `appenders` threads append to `log` for one [`FSYNC_SLICE`] (each finishes the
/// append it is in), at most `max_batches` in all.
fn durable_slice(
    log: &PartitionLog,
    set: &BatchSet,
    appenders: usize,
    max_batches: u64,
    totals: &mut DurableTotals,
) -> anyhow::Result<()> {
    let taken = AtomicU64::new(0);
    let start = Instant::now();
    let per_thread = std::thread::scope(|s| {
        let handles: Vec<_> = (0..appenders)
            .map(|t| {
                let taken = &taken;
                // Appenders start at different batches, and each slice further on.
                let first = totals.batches as usize + t * set.batches.len() / appenders;
                s.spawn(move || -> anyhow::Result<(u64, Vec<f64>)> {
                    let (mut records, mut latencies) = (0u64, Vec::new());
                    let mut i = first;
                    while start.elapsed() < FSYNC_SLICE
                        && taken.fetch_add(1, Ordering::Relaxed) < max_batches
                    {
                        let t0 = Instant::now();
                        records += log.append(&set.batches[i % set.batches.len()])?.records;
                        latencies.push(t0.elapsed().as_secs_f64() * 1e6);
                        i += 1;
                    }
                    Ok((records, latencies))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("an appender thread panicked")))
            })
            .collect::<Vec<_>>()
    });
    totals.secs += start.elapsed().as_secs_f64();
    for r in per_thread {
        let (records, latencies) = r?;
        totals.records += records;
        totals.batches += latencies.len() as u64;
        totals.latencies_us.extend(latencies);
    }
    Ok(())
}

/// One bar of the issue, checked against the medians.
#[derive(Clone, Debug, Serialize)]
struct Bar {
    what: String,
    measured: f64,
    required: f64,
    pass: bool,
    /// What the same-run reference allows, where that helps to read a failure.
    context: Option<String>,
}

impl Bar {
    fn new(what: String, measured: f64, required: f64) -> Bar {
        Bar {
            what,
            measured,
            required,
            pass: measured >= required,
            context: None,
        }
    }
}

fn median_of<T>(runs: &[T], keep: impl Fn(&T) -> bool, value: impl Fn(&T) -> f64) -> Option<f64> {
    let values: Vec<f64> = runs.iter().filter(|r| keep(r)).map(value).collect();
    (!values.is_empty()).then(|| disk::median(&values))
}

fn bars(report: &Report) -> Vec<Bar> {
    let mut bars = Vec::new();
    let t = &report.throughput;
    if let Some(ratio) = median_of(t, |r| r.value_size == LARGE_VALUE, ThroughputRun::ratio) {
        bars.push(Bar::new(
            format!("append of {LARGE_VALUE} B records / same-run fdatasync bandwidth"),
            ratio,
            BAR_APPEND_BANDWIDTH,
        ));
    }
    if let Some(rate) = median_of(
        t,
        |r| r.value_size == SMALL_VALUE,
        ThroughputRun::append_records_per_s,
    ) {
        bars.push(Bar::new(
            format!("append of {SMALL_VALUE} B records, records/s"),
            rate,
            BAR_APPEND_SMALL_RECORDS_PER_S,
        ));
    }
    if let Some(rate) = median_of(
        t,
        |r| r.value_size == SMALL_VALUE,
        ThroughputRun::read_records_per_s,
    ) {
        bars.push(Bar::new(
            format!("hot read of {SMALL_VALUE} B records, records/s"),
            rate,
            BAR_READ_SMALL_RECORDS_PER_S,
        ));
    }
    let f = &report.fsync;
    if let Some(ratio) = median_of(
        f,
        |r| r.appenders == 1,
        |r| r.batches_per_s() / r.raw_batches_per_s(),
    ) {
        bars.push(Bar::new(
            "fsync per batch, 1 appender / same-run raw write+fdatasync".to_owned(),
            ratio,
            BAR_FSYNC_VS_RAW,
        ));
    }
    // Gains are paired within each run (same disk state), then the median is taken.
    let gain = |rate: fn(&FsyncRun) -> f64| {
        let gains: Vec<f64> = (1..=report.runs)
            .filter_map(|run| {
                let at = |n: usize| {
                    f.iter()
                        .find(|r| r.run == run && r.appenders == n)
                        .map(rate)
                };
                Some(at(GROUP_APPENDERS)? / at(1)?)
            })
            .collect();
        (!gains.is_empty()).then(|| disk::median(&gains))
    };
    if let (Some(log), Some(raw)) = (
        gain(FsyncRun::batches_per_s),
        gain(FsyncRun::raw_batches_per_s),
    ) {
        let mut bar = Bar::new(
            format!("group commit, {GROUP_APPENDERS} appenders / 1 appender"),
            log,
            BAR_GROUP_COMMIT_GAIN,
        );
        bar.context = Some(format!(
            "the raw loop gains {raw:.2} from writing {GROUP_APPENDERS} batches per fdatasync"
        ));
        bars.push(bar);
    }
    bars
}

fn print_summary(report: &Report) {
    let mut s = String::new();
    let t = &report.throughput;
    if !t.is_empty() {
        let _ = writeln!(
            s,
            "\nThroughput, median of {} runs (MB = 10^6 B; ratios are medians of per-run ratios)",
            report.runs
        );
        let _ = writeln!(
            s,
            "  {:>6}  {:>9}  {:>12} {:>9}  {:>12} {:>9}  {:>10}  {:>11}",
            "value",
            "records",
            "append rec/s",
            "MB/s",
            "hot read/s",
            "MB/s",
            "disk MB/s",
            "append/disk"
        );
        for size in report.builds.iter().map(|b| b.value_size) {
            let m = |f: fn(&ThroughputRun) -> f64| {
                median_of(t, |r| r.value_size == size, f).unwrap_or(0.0)
            };
            let records = t
                .iter()
                .find(|r| r.value_size == size)
                .map_or(0, |r| r.log.records);
            let _ = writeln!(
                s,
                "  {:>4} B  {:>9}  {:>12} {:>9.0}  {:>12} {:>9.0}  {:>10.0}  {:>11.2}",
                size,
                count(records as f64),
                count(m(ThroughputRun::append_records_per_s)),
                m(ThroughputRun::append_mb_per_s),
                count(m(ThroughputRun::read_records_per_s)),
                m(ThroughputRun::read_mb_per_s),
                m(ThroughputRun::disk_mb_per_s),
                m(ThroughputRun::ratio),
            );
        }
    }
    let f = &report.fsync;
    if !f.is_empty() {
        let batch = f.first().map_or(0, |r| r.batch_bytes);
        let _ = writeln!(
            s,
            "\nDurable appends (fsync per batch, {batch} B batches), median of {} runs",
            report.runs
        );
        let _ = writeln!(
            s,
            "  {:>9}  {:>13}  {:>8}  {:>8}  {:>13}  {:>10}  {:>7}",
            "appenders",
            "log batches/s",
            "p50 µs",
            "p99 µs",
            "raw batches/s",
            "raw p50 µs",
            "log/raw"
        );
        let mut counts: Vec<usize> = f.iter().map(|r| r.appenders).collect();
        counts.sort_unstable();
        counts.dedup();
        for n in counts {
            let m =
                |v: &dyn Fn(&FsyncRun) -> f64| median_of(f, |r| r.appenders == n, v).unwrap_or(0.0);
            let _ = writeln!(
                s,
                "  {:>9}  {:>13.0}  {:>8.0}  {:>8.0}  {:>13.0}  {:>10.0}  {:>7.2}",
                n,
                m(&FsyncRun::batches_per_s),
                m(&|r| r.log.p50_us),
                m(&|r| r.log.p99_us),
                m(&FsyncRun::raw_batches_per_s),
                m(&|r| r.raw.p50_us),
                m(&|r| r.batches_per_s() / r.raw_batches_per_s()),
            );
        }
        let _ = writeln!(
            s,
            "  (raw: a write+fdatasync loop writing n batches at once, the most n appenders \
             sharing each fdatasync could reach)"
        );
    }
    if !report.bars.is_empty() {
        let _ = writeln!(s, "\nBars");
        for bar in &report.bars {
            let (measured, required) = if bar.required >= 1e3 {
                (count(bar.measured), count(bar.required))
            } else {
                (
                    format!("{:.2}", bar.measured),
                    format!("{:.2}", bar.required),
                )
            };
            let _ = writeln!(
                s,
                "  {}  {}: {measured} (bar >= {required}, {:.2} of it){}",
                if bar.pass { "PASS" } else { "FAIL" },
                bar.what,
                bar.measured / bar.required,
                bar.context
                    .as_ref()
                    .map_or(String::new(), |c| format!("; {c}"))
            );
        }
    }
    let _ = writeln!(
        s,
        "\nload at start {}, at end {}",
        disk::describe_load(report.machine_at_start.load),
        disk::describe_load(report.machine_at_end.load)
    );
    print!("{s}");
}

fn log_config(pairs: &[(&str, &str)]) -> anyhow::Result<Arc<LogConfig>> {
    let map = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Ok(Arc::new(LogConfig::default().with_overrides(&map)?))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: LogBenchArgs,
    }

    fn args(extra: &[&str]) -> LogBenchArgs {
        let mut argv = vec!["bench"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn defaults_are_the_issues() {
        let a = args(&[]);
        assert_eq!(a.value_sizes, vec![100, 1000]);
        assert_eq!(a.appenders, vec![1, 2, 4]);
        assert_eq!((a.batch_bytes, a.runs, a.mode), (65536, 3, Mode::All));
        assert!(check_args(&a).is_ok());
        assert!(check_args(&args(&["--runs", "0"])).is_err());
        assert!(check_args(&args(&["--value-sizes", "70000"])).is_err());
    }

    #[test]
    fn built_batches_are_valid_and_near_the_target_size() {
        let set = BatchSet::build(100, 65536, SetSize::Bytes(1 << 20), 1).unwrap();
        assert!(set.batches.iter().map(Vec::len).sum::<usize>() >= 1 << 20);
        for b in &set.batches {
            assert!(b.len() <= 65536 && b.len() > 60_000, "{}", b.len());
            assert_eq!(b.len(), set.batch_len());
            crate::log::batch::validate(b, true, 1 << 20).unwrap();
        }
        let three = BatchSet::build(1000, 65536, SetSize::Batches(3), 2).unwrap();
        assert_eq!(three.batches.len(), 3);
    }

    #[test]
    fn a_small_run_measures_both_modes_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        let a = args(&[
            "--dir",
            path,
            "--total-mb",
            "2",
            "--runs",
            "2",
            "--value-sizes",
            "100,1000",
            "--appenders",
            "1,4",
            "--fsync-batches",
            "5",
            "--json",
        ]);
        let report = measure(&a, &Out { quiet: true }).unwrap();
        assert_eq!(report.throughput.len(), 4);
        assert!(
            report
                .throughput
                .iter()
                .all(|r| r.log.records > 0 && r.ratio() > 0.0)
        );
        assert_eq!(report.fsync.len(), 4);
        assert!(
            report
                .fsync
                .iter()
                .all(|r| r.log.batches == 5 * r.appenders as u64)
        );
        assert_eq!(report.bars.len(), 5);
        assert!(serde_json::to_string(&report).is_ok());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
