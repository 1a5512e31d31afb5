//! The in-process reference of `tributary bench plugin`: the same task code the plugin
//! runs, called directly through the SDK traits, with no boundary in between.
//!
//! The benchmark measures records crossing the plugin boundary (the worker polls the
//! source task and puts into the sink task through the C ABI, every batch encoded and
//! decoded) against what the same connectors cost without it. The worker cannot link a
//! connector (it depends only on the ABI crate), so the reference lives here and the
//! benchmark reaches it through one extra exported symbol, [`tributary_noop_bench`],
//! called once per measurement: the loop it runs never crosses the boundary.
//!
//! The loops do what the benchmark's host side does around its plugin calls, record for
//! record, with the same views: the source loop has the task fill a reused [`SourceBatch`]
//! (`poll_batch`) and reads each record's value from the batch's views (as the worker's
//! converter would); the sink loop fills one buffer of values per batch, describes it with
//! a `SinkBatchBuilder` (as the worker describes a fetched batch) and hands the views to
//! `put_batch` as a [`SinkBatch`]; the pipeline loop does both, each polled value described
//! to the sink where the source wrote it. The task code is the plugin's and the work around
//! it is the host's: the difference measured is the boundary's (the calls through the C
//! ABI, the guard around each), not two ways of reading records.
//!
//! This is a private contract between this crate and `src/bench/plugin.rs` of the
//! worker, not part of the plugin ABI: a library without the symbol simply has no
//! reference to offer.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use tributary_plugin_sdk::abi::view::{SinkBatchBuilder, SinkParts};
use tributary_plugin_sdk::{
    DataRef, Plain, RawConfig, SinkBatch, SinkTask, SourceBatch, SourceTask, TopicPartition,
};

use crate::config::{RECORD_BYTES, RECORDS_PER_POLL, TOPIC};
use crate::{NoopSinkTask, NoopSourceTask};

/// The exported symbol's name (NUL-terminated, for `dlsym`).
pub const SYMBOL: &[u8] = b"tributary_noop_bench\0";

/// Which loop [`tributary_noop_bench`] runs.
pub mod mode {
    /// `SourceTask::poll` until `records` records were polled.
    pub const SOURCE: u32 = 0;
    /// `SinkTask::put_batch` of freshly built batches until `records` records were put.
    pub const SINK: u32 = 1;
    /// Poll the source, turn each batch into sink records, put them into the sink.
    pub const PIPELINE: u32 = 2;
}

/// What one measurement did. `#[repr(C)]`: it is written across the library boundary.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BenchOutcome {
    /// Records polled or put.
    pub records: u64,
    /// Value bytes seen (a checksum of sorts: the caller checks it against its own loop).
    pub value_bytes: u64,
    /// Nanoseconds the loop took (task start and stop excluded).
    pub nanos: u64,
    /// 0: done; 1: the task failed or panicked (nothing else is filled in).
    pub failed: u32,
}

/// The topic every record is for.
pub const BENCH_TOPIC: &str = "noop-bench";

/// Fill `out` with `n` values of `value_size` bytes for the offsets from `offset`, each
/// starting with its offset.
pub fn fill_values(out: &mut Vec<u8>, offset: i64, n: usize, value_size: usize) {
    out.clear();
    for i in 0..n {
        let o = offset + i as i64;
        let at = out.len();
        out.resize(at + value_size, o as u8);
        let head = value_size.min(8);
        out[at..at + head].copy_from_slice(&o.to_le_bytes()[..head]);
    }
}

/// A value at `offset` of partition 0 of [`BENCH_TOPIC`], as the worker describes a fetched
/// record to a sink.
pub fn sink_parts(value: &[u8], offset: i64) -> SinkParts<'_> {
    SinkParts::value_only(BENCH_TOPIC, 0, offset, DataRef::Bytes(value, Plain::None))
}

/// As the worker's source loop reads a lent value: its length, 0 for anything that is
/// not bytes.
pub fn ref_len(value: &DataRef<'_>) -> u64 {
    match value {
        DataRef::Bytes(b, _) => b.len() as u64,
        _ => 0,
    }
}

/// The source task config of the benchmark.
pub fn source_config(record_bytes: usize, batch: usize) -> RawConfig {
    [
        (TOPIC, BENCH_TOPIC.to_owned()),
        (RECORDS_PER_POLL, batch.to_string()),
        (RECORD_BYTES, record_bytes.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Run one reference loop: `mode` (see [`mode`]), values of `record_bytes` bytes, batches
/// of `batch` records, until at least `records` records; the outcome is written to `out`.
///
/// # Safety
///
/// `out` must be null (nothing is written) or point to a writable [`BenchOutcome`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tributary_noop_bench(
    mode: u32,
    record_bytes: u32,
    batch: u32,
    records: u64,
    out: *mut BenchOutcome,
) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        run(mode, record_bytes as usize, batch as usize, records)
    }))
    .ok()
    .flatten()
    .unwrap_or(BenchOutcome {
        failed: 1,
        ..BenchOutcome::default()
    });
    if !out.is_null() {
        // SAFETY: non-null, writable per the caller.
        unsafe { out.write(outcome) };
    }
}

/// The loops; `None` if a task failed or the arguments make no sense.
pub fn run(mode: u32, record_bytes: usize, batch: usize, records: u64) -> Option<BenchOutcome> {
    if batch == 0 || record_bytes < 8 {
        return None;
    }
    let mut source = NoopSourceTask::default();
    let mut sink = NoopSinkTask::default();
    if mode != mode::SINK {
        SourceTask::start(&mut source, source_config(record_bytes, batch)).ok()?;
    }
    if mode != mode::SOURCE {
        SinkTask::start(&mut sink, RawConfig::new()).ok()?;
        SinkTask::open(&mut sink, &[TopicPartition::new(BENCH_TOPIC, 0)]).ok()?;
    }
    let (mut done, mut value_bytes) = (0u64, 0u64);
    let start = Instant::now();
    match mode {
        mode::SOURCE => {
            let mut polled = SourceBatch::new();
            while done < records {
                polled.clear();
                SourceTask::poll_batch(&mut source, &mut polled).ok()?;
                let mut lent = polled.read();
                for i in 0..lent.len() {
                    value_bytes += ref_len(&lent.get(i).ok()?.value);
                }
                done += lent.len() as u64;
            }
        }
        mode::SINK => {
            // As the worker hands a sink the values where its fetch left them: one buffer
            // per batch, described by views (what the benchmark's host does too).
            let mut values = Vec::new();
            let mut views = SinkBatchBuilder::default();
            while done < records {
                fill_values(&mut values, done as i64, batch, record_bytes);
                views.clear();
                for (i, v) in values.chunks(record_bytes).enumerate() {
                    views.push(&sink_parts(v, done as i64 + i as i64));
                }
                // SAFETY: the views point into `values`, alive and unchanged for the call.
                let b = unsafe { SinkBatch::from_views(views.finish()) };
                SinkTask::put_batch(&mut sink, &b).ok()?;
                done += batch as u64;
                value_bytes += (batch * record_bytes) as u64;
            }
        }
        mode::PIPELINE => {
            let mut polled = SourceBatch::new();
            let mut views = SinkBatchBuilder::default();
            while done < records {
                polled.clear();
                SourceTask::poll_batch(&mut source, &mut polled).ok()?;
                let mut lent = polled.read();
                let mut refs = Vec::with_capacity(lent.len());
                for i in 0..lent.len() {
                    refs.push(lent.get(i).ok()?);
                }
                value_bytes += refs.iter().map(|r| ref_len(&r.value)).sum::<u64>();
                views.clear();
                for (i, r) in refs.iter().enumerate() {
                    views.push(&SinkParts::value_only(
                        r.topic,
                        0,
                        done as i64 + i as i64,
                        r.value.clone(),
                    ));
                }
                // SAFETY: the views point into `polled` and `refs`, alive and unchanged
                // for the call.
                let batch = unsafe { SinkBatch::from_views(views.finish()) };
                SinkTask::put_batch(&mut sink, &batch).ok()?;
                done += refs.len() as u64;
            }
        }
        _ => return None,
    }
    let nanos = start.elapsed().as_nanos() as u64;
    if mode != mode::SINK {
        SourceTask::stop(&mut source).ok()?;
    }
    if mode != mode::SOURCE {
        if sink.records != done || sink.bytes != value_bytes {
            return None;
        }
        SinkTask::stop(&mut sink).ok()?;
    }
    Some(BenchOutcome {
        records: done,
        value_bytes,
        nanos,
        failed: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_loop_counts_what_it_moved() {
        for m in [mode::SOURCE, mode::SINK, mode::PIPELINE] {
            let mut out = BenchOutcome::default();
            // SAFETY: `out` is writable.
            unsafe { tributary_noop_bench(m, 100, 7, 20, &mut out) };
            assert_eq!(out.failed, 0, "mode {m}");
            assert_eq!((out.records, out.value_bytes), (21, 2100), "mode {m}");
        }
        let mut out = BenchOutcome::default();
        // SAFETY: as above.
        unsafe { tributary_noop_bench(9, 100, 7, 20, &mut out) };
        assert_eq!(out.failed, 1, "an unknown mode is a failure, not a panic");
        // SAFETY: null is allowed.
        unsafe { tributary_noop_bench(mode::SOURCE, 100, 7, 20, std::ptr::null_mut()) };
    }

    #[test]
    fn filled_values_number_their_records() {
        let mut values = Vec::new();
        fill_values(&mut values, 40, 3, 10);
        assert_eq!(values.len(), 30);
        let v = &values[20..];
        assert_eq!(v[..8], 42i64.to_le_bytes());
        assert_eq!(v[8..], [42, 42]);
        assert_eq!(sink_parts(v, 42).offset, 42);
    }
}
