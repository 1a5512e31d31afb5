//! `tributary bench plugin`: records crossing the plugin boundary, printed beside the same
//! connector code running in-process without it, and checked against the bars of the
//! issue that asked for it.
//!
//! It loads the no-op connector plugin (`connectors/noop`) as the worker does and moves
//! records through it in batches, three ways:
//! - source: `SourceTask::poll_batch` of the loaded source task, which writes its records
//!   into its batch; the host reads each record where the plugin lent it, as the worker's
//!   source loop does, and reads each record's value length;
//! - sink: the host fills one buffer of values per batch and describes it with views (as
//!   the worker describes a fetched batch) and lends them to the loaded sink task, whose
//!   `SinkTask::put_batch` reads each record in place and counts them;
//! - pipeline: both, each polled value described to the sink where the source wrote it.
//!
//! The reference is the same task code called directly through the SDK's traits, with the
//! same loops and the same views around it and nothing crossing: the noop library exports
//! it as `tributary_noop_bench` (see `connectors/noop/src/bench.rs`), which runs a whole
//! measurement per call, because the worker never links a connector crate. The difference
//! between the two is what the boundary costs: the calls through the C ABI and the guard
//! around each, and the host's reading of views compiled in the worker rather than in the
//! plugin.
//!
//! Each run measures every (value size, flow) pair with the reference and the plugin
//! back to back, alternating which goes first from run to run so that a drift of the
//! machine's speed does not favour either; ratios are taken per run, then the median.
//!
//! What it is not: a benchmark of the worker's loops (no converters, no producing to a
//! topic, no offset bookkeeping). Single-threaded: plugin calls run on the calling thread.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use serde::Serialize;
#[cfg(test)]
use tributary_plugin_abi::data::Data;
#[cfg(test)]
use tributary_plugin_abi::record::SinkRecord;
use tributary_plugin_abi::record::TopicPartition;
use tributary_plugin_abi::view::{DataRef, Plain, SinkParts};
use tributary_plugin_abi::wire::StringMap;

use super::disk::{self, Machine};
use super::{Out, ScratchDir, count};
use crate::plugin::{
    ConnectorPlugin, NoopHost, PluginLibrary, PluginLoader, PluginRegistry, default_plugin_path,
};

/// The noop connectors' names.
const SOURCE_CONNECTOR: &str = "io.tributary.connect.noop.NoopSourceConnector";
const SINK_CONNECTOR: &str = "io.tributary.connect.noop.NoopSinkConnector";
/// The noop library's in-process reference (`connectors/noop/src/bench.rs`).
const REFERENCE_SYMBOL: &[u8] = b"tributary_noop_bench\0";
/// The topic of every record; the reference uses the same.
const TOPIC: &str = "noop-bench";

/// The bars, stated for 100-byte records: the boundary adds under 10 % to the
/// in-process connector and carries at least 5 million records/s.
const BAR_OVERHEAD: f64 = 0.10;
const BAR_RECORDS_PER_S: f64 = 5e6;
const SMALL_VALUE: usize = 100;

/// Arguments of `tributary bench plugin`.
#[derive(Debug, clap::Args)]
pub struct PluginBenchArgs {
    /// The directory holding the noop plugin (libtributary_connector_noop.so). Default: the
    /// directory of this executable, where `cargo build --release` puts it.
    #[arg(long = "plugin-path", value_name = "DIR")]
    plugin_path: Option<PathBuf>,
    /// Value sizes in bytes, one line each.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    value_sizes: Vec<usize>,
    /// Records per poll and per put (the noop source's `noop.records.per.poll`).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Records per measurement for 100-byte values; other sizes move as many value bytes
    /// (at least one batch).
    #[arg(long, default_value_t = 5_000_000)]
    records: u64,
    /// Repetitions; each is printed and the medians are reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Which flows to measure (all by default; one at a time is handy under a profiler).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "source,sink,pipeline"
    )]
    flows: Vec<Flow>,
    /// Where the library is copied before loading (default: a temporary directory removed
    /// at the end); keep it to resolve the plugin's symbols in a profile.
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Print one JSON document instead of the tables.
    #[arg(long)]
    json: bool,
}

/// Run the benchmark and print its report (tables, or JSON with `--json`).
pub fn run(args: &PluginBenchArgs) -> anyhow::Result<()> {
    let out = Out { quiet: args.json };
    let report = measure(args, &out)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report);
    }
    Ok(())
}

/// Which way records move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
enum Flow {
    /// Out of a source task, each record read where the plugin lent it, as the worker's
    /// source loop reads them.
    Source,
    /// Into a sink task.
    Sink,
    /// Out of a source task and into a sink task.
    Pipeline,
}

impl Flow {
    const ALL: [Flow; 3] = [Flow::Source, Flow::Sink, Flow::Pipeline];

    /// The reference's mode number (`connectors/noop/src/bench.rs`, `mode`).
    fn mode(self) -> u32 {
        match self {
            Flow::Source => 0,
            Flow::Sink => 1,
            Flow::Pipeline => 2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Flow::Source => "source poll",
            Flow::Sink => "sink put",
            Flow::Pipeline => "source -> sink",
        }
    }

    /// Whether the bars apply (all flows today).
    fn has_bars(self) -> bool {
        true
    }
}

/// Everything one invocation measured.
#[derive(Debug, Serialize)]
struct Report {
    library: PathBuf,
    machine_at_start: Machine,
    machine_at_end: Machine,
    batch: usize,
    runs: usize,
    pairs: Vec<Pair>,
    bars: Vec<Bar>,
}

/// One flow at one value size in one run: the reference and the plugin, back to back.
#[derive(Clone, Debug, Serialize)]
struct Pair {
    run: usize,
    value_size: usize,
    flow: Flow,
    records: u64,
    in_process_secs: f64,
    plugin_secs: f64,
}

impl Pair {
    fn in_process_per_s(&self) -> f64 {
        self.records as f64 / self.in_process_secs
    }

    fn plugin_per_s(&self) -> f64 {
        self.records as f64 / self.plugin_secs
    }

    /// What the boundary adds to the in-process time, as a fraction of it.
    fn overhead(&self) -> f64 {
        self.plugin_secs / self.in_process_secs - 1.0
    }
}

/// What one loop did: records, value bytes (checked between the two sides) and time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Moved {
    records: u64,
    value_bytes: u64,
    nanos: u64,
}

impl Moved {
    fn secs(&self) -> f64 {
        self.nanos as f64 / 1e9
    }
}

fn check_args(args: &PluginBenchArgs) -> anyhow::Result<()> {
    ensure!(args.runs >= 1, "--runs must be at least 1");
    ensure!(
        (1..=1_000_000).contains(&args.batch),
        "--batch must be between 1 and 1000000 (the noop source's noop.records.per.poll)"
    );
    ensure!(
        !args.value_sizes.is_empty() && args.value_sizes.iter().all(|v| (8..=1 << 20).contains(v)),
        "--value-sizes must list sizes between 8 and 1048576 bytes (the noop source's \
         noop.record.bytes)"
    );
    ensure!(args.records >= 1, "--records must be at least 1");
    ensure!(
        !args.flows.is_empty(),
        "--flows must name at least one flow"
    );
    Ok(())
}

/// Records per measurement for a value size: as many value bytes as `--records` 100-byte
/// records, at least one batch.
fn records_for(args: &PluginBenchArgs, value_size: usize) -> u64 {
    (args.records * SMALL_VALUE as u64 / value_size as u64).max(args.batch as u64)
}

fn measure(args: &PluginBenchArgs, out: &Out) -> anyhow::Result<Report> {
    check_args(args)?;
    let machine_at_start = Machine::now();
    let dir = match &args.plugin_path {
        Some(dir) => dir.clone(),
        None => default_plugin_path().context(
            "cannot find the directory of the running tributary executable; pass --plugin-path",
        )?,
    };
    let file = dir.join(format!(
        "{}tributary_connector_noop{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    if !file.is_file() {
        bail!(
            "the noop plugin {} does not exist: build it with `cargo build --release` (cargo \
             puts it next to the tributary executable), or pass --plugin-path with the \
             directory holding it",
            file.display()
        );
    }
    let scratch;
    let cache = match &args.cache_dir {
        Some(dir) => dir.as_path(),
        None => {
            scratch = ScratchDir::create(&std::env::temp_dir(), "tributary-bench-plugin-cache")?;
            scratch.path()
        }
    };
    let library = PluginLoader::new(cache)
        .load(&file)
        .with_context(|| format!("loading the noop plugin {}", file.display()))?;
    let registry = PluginRegistry::assemble(vec![(file.clone(), library.clone())], Vec::new());
    let plugins = Plugins {
        source: registry.lookup(SOURCE_CONNECTOR)?.clone(),
        sink: registry.lookup(SINK_CONNECTOR)?.clone(),
        reference: reference_of(&library)?,
    };

    out.line(format_args!("tributary bench plugin"));
    out.line(format_args!("  plugin     {}", file.display()));
    out.line(format_args!("  machine    {}", machine_at_start.describe()));
    out.line(format_args!(
        "  batches of {} records per poll and put; {} runs; per measurement {}",
        args.batch,
        args.runs,
        args.value_sizes
            .iter()
            .map(|&s| format!("{} records of {s} B", count(records_for(args, s) as f64)))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    // Warm up both sides (allocator arenas, page faults, branch predictors) untimed.
    for &size in &args.value_sizes {
        let n = (records_for(args, size) / 10).max(args.batch as u64);
        for &flow in &args.flows {
            plugins.in_process(flow, size, args.batch, n)?;
            plugins.across(flow, size, args.batch, n)?;
        }
    }

    let mut pairs = Vec::new();
    for run in 1..=args.runs {
        for &size in &args.value_sizes {
            let n = records_for(args, size);
            for &flow in &args.flows {
                let (reference, plugin) = if run % 2 == 1 {
                    let r = plugins.in_process(flow, size, args.batch, n)?;
                    (r, plugins.across(flow, size, args.batch, n)?)
                } else {
                    let p = plugins.across(flow, size, args.batch, n)?;
                    (plugins.in_process(flow, size, args.batch, n)?, p)
                };
                ensure!(
                    (reference.records, reference.value_bytes)
                        == (plugin.records, plugin.value_bytes),
                    "{} of {size} B values: the reference moved {} records ({} value bytes), \
                     the plugin {} ({}); the two loops must do the same work",
                    flow.name(),
                    reference.records,
                    reference.value_bytes,
                    plugin.records,
                    plugin.value_bytes
                );
                let pair = Pair {
                    run,
                    value_size: size,
                    flow,
                    records: plugin.records,
                    in_process_secs: reference.secs(),
                    plugin_secs: plugin.secs(),
                };
                out.line(format_args!(
                    "  run {run}  {size:>5} B  {:<15} in-process {:>9}/s  plugin {:>9}/s  \
                     overhead {:>+6.1} %",
                    flow.name(),
                    count(pair.in_process_per_s()),
                    count(pair.plugin_per_s()),
                    pair.overhead() * 100.0
                ));
                pairs.push(pair);
            }
        }
    }

    let mut report = Report {
        library: file,
        machine_at_start,
        machine_at_end: Machine::now(),
        batch: args.batch,
        runs: args.runs,
        pairs,
        bars: Vec::new(),
    };
    report.bars = bars(&report);
    Ok(report)
}

/// The reference's entry point and what it fills in (`connectors/noop/src/bench.rs`).
type ReferenceFn = unsafe extern "C" fn(
    mode: u32,
    record_bytes: u32,
    batch: u32,
    records: u64,
    out: *mut ReferenceOutcome,
);

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct ReferenceOutcome {
    records: u64,
    value_bytes: u64,
    nanos: u64,
    failed: u32,
}

/// Find the in-process reference in the loaded library.
fn reference_of(library: &PluginLibrary) -> anyhow::Result<ReferenceFn> {
    // The same file the loader mapped, so `dlopen` answers the same library.
    // SAFETY: loading runs no new initialisers: the library is already loaded.
    let lib = unsafe { libloading::Library::new(library.loaded_from()) }
        .with_context(|| format!("opening {} again", library.loaded_from().display()))?;
    // SAFETY: the symbol is defined with this signature by the noop crate.
    let f = match unsafe { lib.get::<ReferenceFn>(REFERENCE_SYMBOL) } {
        Ok(symbol) => *symbol,
        Err(e) => bail!(
            "{} has no in-process reference ({e}); rebuild it from this source tree with \
             `cargo build --release`",
            library.file().display()
        ),
    };
    // Libraries are never unloaded (see `crate::plugin`): keep this handle's reference.
    std::mem::forget(lib);
    Ok(f)
}

/// The loaded connectors and the reference.
struct Plugins {
    source: Arc<ConnectorPlugin>,
    sink: Arc<ConnectorPlugin>,
    reference: ReferenceFn,
}

impl Plugins {
    /// One measurement of the reference: the noop tasks called directly, in the library.
    fn in_process(
        &self,
        flow: Flow,
        value_size: usize,
        batch: usize,
        records: u64,
    ) -> anyhow::Result<Moved> {
        let mut outcome = ReferenceOutcome::default();
        // SAFETY: the symbol's signature; `outcome` is writable for the call.
        unsafe {
            (self.reference)(
                flow.mode(),
                value_size as u32,
                batch as u32,
                records,
                &mut outcome,
            )
        };
        ensure!(
            outcome.failed == 0,
            "the in-process reference failed ({} of {value_size} B values)",
            flow.name()
        );
        Ok(Moved {
            records: outcome.records,
            value_bytes: outcome.value_bytes,
            nanos: outcome.nanos,
        })
    }

    /// One measurement through the loaded plugin: the same loop, every batch crossing.
    fn across(
        &self,
        flow: Flow,
        value_size: usize,
        batch: usize,
        records: u64,
    ) -> anyhow::Result<Moved> {
        let source_config: StringMap = [
            ("noop.topic", TOPIC.to_owned()),
            ("noop.records.per.poll", batch.to_string()),
            ("noop.record.bytes", value_size.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let tp = TopicPartition::new(TOPIC, 0);
        let mut source = match flow {
            Flow::Sink => None,
            _ => {
                let mut t = self.source.new_source_task()?;
                t.start(&source_config, Arc::new(NoopHost))?;
                Some(t)
            }
        };
        let mut sink = match flow {
            Flow::Source => None,
            _ => {
                let mut t = self.sink.new_sink_task()?;
                t.start(&StringMap::new(), Arc::new(NoopHost))?;
                t.open(std::slice::from_ref(&tp))?;
                Some(t)
            }
        };
        let (mut done, mut value_bytes) = (0u64, 0u64);
        let start = Instant::now();
        match (flow, &mut source, &mut sink) {
            (Flow::Source, Some(source), _) => {
                while done < records {
                    let polled = source.poll_batch()?;
                    for i in 0..polled.len() {
                        value_bytes += ref_len(&polled.record(i)?.value);
                    }
                    done += polled.len() as u64;
                }
            }
            (Flow::Sink, _, Some(sink)) => {
                // The worker hands a sink the values where the fetch left them: one
                // buffer per batch, filled here as the reference fills its records.
                let mut values = Vec::new();
                while done < records {
                    fill_values(&mut values, done as i64, batch, value_size);
                    let parts = values
                        .chunks(value_size.max(1))
                        .enumerate()
                        .map(|(i, v)| sink_parts(v, done as i64 + i as i64));
                    sink.put_parts(parts)?;
                    done += batch as u64;
                    value_bytes += (batch * value_size) as u64;
                }
            }
            (Flow::Pipeline, Some(source), Some(sink)) => {
                while done < records {
                    let polled = source.poll_batch()?;
                    let mut refs = Vec::with_capacity(polled.len());
                    for i in 0..polled.len() {
                        refs.push(polled.record(i)?);
                    }
                    value_bytes += refs.iter().map(|r| ref_len(&r.value)).sum::<u64>();
                    let parts = refs.iter().enumerate().map(|(i, r)| {
                        SinkParts::value_only(r.topic, 0, done as i64 + i as i64, r.value.clone())
                    });
                    sink.put_parts(parts)?;
                    done += refs.len() as u64;
                }
            }
            _ => bail!("{}: the tasks it needs were not made", flow.name()),
        }
        let nanos = start.elapsed().as_nanos() as u64;
        if let Some(mut source) = source {
            source.stop()?;
        }
        if let Some(mut sink) = sink {
            // Every record reached the sink: it answers the offset after the last one.
            let committable = sink.pre_commit(&[(tp.clone(), done as i64)].into())?;
            ensure!(
                committable.get(&tp) == Some(&(done as i64)),
                "the noop sink counted up to {committable:?}, not the {done} records put"
            );
            sink.stop()?;
        }
        Ok(Moved {
            records: done,
            value_bytes,
            nanos,
        })
    }
}

/// As the worker's source loop reads a lent value: its length, 0 for anything that is
/// not bytes.
fn ref_len(value: &DataRef<'_>) -> u64 {
    match value {
        DataRef::Bytes(b, _) => b.len() as u64,
        _ => 0,
    }
}

/// Fill `out` with `n` values of `value_size` bytes, as the in-process reference fills its
/// own (`fill_values` in `connectors/noop/src/bench.rs`, which the worker cannot link; tests on
/// both sides pin the same layout: the offset's bytes, then the offset's low byte).
fn fill_values(out: &mut Vec<u8>, offset: i64, n: usize, value_size: usize) {
    out.clear();
    for i in 0..n {
        let o = offset + i as i64;
        let at = out.len();
        out.resize(at + value_size, o as u8);
        let head = value_size.min(8);
        out[at..at + head].copy_from_slice(&o.to_le_bytes()[..head]);
    }
}

/// A value at `offset` of partition 0, as the worker describes a fetched record to a sink.
fn sink_parts(value: &[u8], offset: i64) -> SinkParts<'_> {
    SinkParts::value_only(TOPIC, 0, offset, DataRef::Bytes(value, Plain::None))
}

/// A batch of sink records as the reference builds it: `n` records of `value_size`-byte
/// values for partition 0, offsets from `offset`, each value starting with its offset.
#[cfg(test)]
fn sink_batch(offset: i64, n: usize, value_size: usize) -> Vec<SinkRecord> {
    (0..n)
        .map(|i| {
            let o = offset + i as i64;
            let mut value = vec![o as u8; value_size];
            let head = value_size.min(8);
            value[..head].copy_from_slice(&o.to_le_bytes()[..head]);
            SinkRecord::new(TOPIC, 0, o, Data::bytes(value))
        })
        .collect()
}

/// One bar of the issue, checked against the medians.
#[derive(Clone, Debug, Serialize)]
struct Bar {
    what: String,
    measured: f64,
    /// At least this, or at most with `at_most`.
    required: f64,
    at_most: bool,
    pass: bool,
}

impl Bar {
    fn at_least(what: String, measured: f64, required: f64) -> Bar {
        Bar {
            what,
            measured,
            required,
            at_most: false,
            pass: measured >= required,
        }
    }

    fn below(what: String, measured: f64, required: f64) -> Bar {
        Bar {
            what,
            measured,
            required,
            at_most: true,
            pass: measured < required,
        }
    }
}

fn median_of(report: &Report, size: usize, flow: Flow, value: fn(&Pair) -> f64) -> Option<f64> {
    let values: Vec<f64> = report
        .pairs
        .iter()
        .filter(|p| p.value_size == size && p.flow == flow)
        .map(value)
        .collect();
    (!values.is_empty()).then(|| disk::median(&values))
}

fn bars(report: &Report) -> Vec<Bar> {
    let mut bars = Vec::new();
    for flow in Flow::ALL.into_iter().filter(|f| f.has_bars()) {
        if let Some(overhead) = median_of(report, SMALL_VALUE, flow, Pair::overhead) {
            bars.push(Bar::below(
                format!(
                    "{}, {SMALL_VALUE} B: time the boundary adds to in-process",
                    flow.name()
                ),
                overhead,
                BAR_OVERHEAD,
            ));
        }
        if let Some(rate) = median_of(report, SMALL_VALUE, flow, Pair::plugin_per_s) {
            bars.push(Bar::at_least(
                format!(
                    "{}, {SMALL_VALUE} B: records/s through the plugin",
                    flow.name()
                ),
                rate,
                BAR_RECORDS_PER_S,
            ));
        }
    }
    bars
}

fn print_summary(report: &Report) {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nMedians of {} runs, batches of {} records (MB = 10^6 B of values; overhead: \
         median of per-run ratios, plugin time / in-process time - 1)",
        report.runs, report.batch
    );
    let _ = writeln!(
        s,
        "  {:>6}  {:<15}  {:>16}  {:>13}  {:>9}  {:>9}",
        "value", "flow", "in-process rec/s", "plugin rec/s", "MB/s", "overhead"
    );
    let mut sizes: Vec<usize> = report.pairs.iter().map(|p| p.value_size).collect();
    sizes.dedup();
    sizes.sort_unstable();
    sizes.dedup();
    for size in sizes {
        for flow in Flow::ALL {
            if median_of(report, size, flow, Pair::overhead).is_none() {
                continue;
            }
            let m = |f: fn(&Pair) -> f64| median_of(report, size, flow, f).unwrap_or(0.0);
            let _ = writeln!(
                s,
                "  {:>4} B  {:<15}  {:>16}  {:>13}  {:>9.0}  {:>+8.1} %",
                size,
                flow.name(),
                count(m(Pair::in_process_per_s)),
                count(m(Pair::plugin_per_s)),
                m(Pair::plugin_per_s) * size as f64 / 1e6,
                m(Pair::overhead) * 100.0,
            );
        }
    }
    if !report.bars.is_empty() {
        let _ = writeln!(s, "\nBars");
        for bar in &report.bars {
            let (measured, required) = if bar.at_most {
                (
                    format!("{:+.1} %", bar.measured * 100.0),
                    format!("< {:.0} %", bar.required * 100.0),
                )
            } else {
                (count(bar.measured), format!(">= {}", count(bar.required)))
            };
            let _ = writeln!(
                s,
                "  {}  {}: {measured} (bar {required})",
                if bar.pass { "PASS" } else { "FAIL" },
                bar.what,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(run: usize, in_process_secs: f64, plugin_secs: f64) -> Pair {
        Pair {
            run,
            value_size: SMALL_VALUE,
            flow: Flow::Source,
            records: 10_000_000,
            in_process_secs,
            plugin_secs,
        }
    }

    #[test]
    fn bars_use_the_median_of_per_run_ratios() {
        let report = Report {
            library: PathBuf::new(),
            machine_at_start: Machine::now(),
            machine_at_end: Machine::now(),
            batch: 1000,
            runs: 3,
            pairs: vec![pair(1, 1.0, 1.05), pair(2, 2.0, 2.5), pair(3, 1.0, 1.08)],
            bars: Vec::new(),
        };
        let bars = bars(&report);
        assert_eq!(bars.len(), 2, "only the measured flow: {bars:?}");
        assert!((bars[0].measured - 0.08).abs() < 1e-9, "{bars:?}");
        assert!(bars[0].pass);
        // 10 M records in 1.08 s (the median rate) is above 5 M/s.
        assert!((bars[1].measured - 10e6 / 1.08).abs() < 1.0, "{bars:?}");
        assert!(bars[1].pass);
    }

    #[test]
    fn the_host_fills_what_the_reference_builds() {
        let reference = sink_batch(40, 3, 10);
        let mut values = Vec::new();
        fill_values(&mut values, 40, 3, 10);
        for (r, v) in reference.iter().zip(values.chunks(10)) {
            let p = sink_parts(v, r.offset);
            assert_eq!(p.value.to_data(), r.value);
            assert_eq!((p.topic, p.offset), (r.topic.as_str(), r.offset));
        }
        assert_eq!(ref_len(&DataRef::Bytes(&values, Plain::None)), 30);
        assert_eq!(ref_len(&DataRef::Null), 0);
    }

    #[test]
    fn sizes_other_than_100_bytes_move_as_many_bytes() {
        let args = PluginBenchArgs {
            plugin_path: None,
            value_sizes: vec![100, 1000],
            batch: 1000,
            records: 5_000_000,
            runs: 1,
            flows: Flow::ALL.to_vec(),
            cache_dir: None,
            json: false,
        };
        assert_eq!(records_for(&args, 100), 5_000_000);
        assert_eq!(records_for(&args, 1000), 500_000);
        assert_eq!(records_for(&args, 1 << 20), 1000, "at least one batch");
    }
}
