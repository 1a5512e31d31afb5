//! Property test of `PartitionLog` against a model: random sequences of appends (any
//! codec, null or random keys and values, headers, out-of-order timestamps), reads by
//! offset and by timestamp, rolls, clean and unclean restarts, truncations and flushes,
//! on small segments and a dense index so rolls and index lookups happen all the time.
//!
//! The model is the list of batches the log must hold, each with the exact bytes it
//! must store (the appended bytes with the assigned base offset and leader epoch 0)
//! and its records. After every operation the whole log is read back and compared
//! with it, and the log's counters and files are checked against it.

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::Index;
use tributary::log::batch::{self, BatchBuilder, Header};
use tributary::log::compression::Compression;
use tributary::log::{LogConfig, LogError, PartitionLog};

use crate::support::{log_config, read_all, segment_files};

/// Largest record timestamp generated; reads by timestamp probe a little beyond.
const MAX_TS: i64 = 2_000;

#[derive(Clone, Debug)]
struct RecordSpec {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

#[derive(Clone, Debug)]
struct BatchSpec {
    codec: Compression,
    records: Vec<RecordSpec>,
}

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<BatchSpec>),
    /// An append whose batch `which` has a flipped bit under its CRC: refused whole.
    AppendCorrupt {
        batches: Vec<BatchSpec>,
        which: Index,
        at: Index,
        bit: u8,
    },
    /// Read at an offset in `0..=log end + 1`.
    Read {
        at: Index,
        max_bytes: usize,
        min_one: bool,
    },
    /// Look up a timestamp: `ts`, or with `near` the timestamp of a record already
    /// in the log plus `ts` (in -1..=1), so that exact hits are common.
    ReadByTimestamp {
        near: Option<Index>,
        ts: i64,
    },
    Roll,
    /// `close()` then reopen when clean; drop without closing then reopen otherwise.
    /// With `settings`, the log reopens with a different config.
    Restart {
        clean: bool,
        settings: Option<Settings>,
    },
    /// Truncate at an offset in `0..=log end + 1`.
    Truncate(Index),
    Flush,
}

/// Per-case log settings.
#[derive(Clone, Debug)]
struct Settings {
    segment_bytes: u64,
    index_interval_bytes: u64,
    flush_messages: u64,
    segment_ms: u64,
}

impl Settings {
    fn config(&self) -> Arc<LogConfig> {
        log_config(&[
            ("segment.bytes", self.segment_bytes.to_string()),
            (
                "index.interval.bytes",
                self.index_interval_bytes.to_string(),
            ),
            ("flush.messages", self.flush_messages.to_string()),
            ("segment.ms", self.segment_ms.to_string()),
        ])
    }
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..24),
        1 => proptest::collection::vec(any::<u8>(), 0..max),
    ]
}

fn record() -> impl Strategy<Value = RecordSpec> {
    (
        prop_oneof![12 => 0..=MAX_TS, 1 => Just(-1i64)],
        proptest::option::weighted(0.8, bytes(64)),
        proptest::option::weighted(0.9, bytes(600)),
        proptest::collection::vec(
            ("[a-z]{0,4}", proptest::option::weighted(0.8, bytes(16))),
            0..3,
        ),
    )
        .prop_map(|(timestamp, key, value, headers)| RecordSpec {
            timestamp,
            key,
            value,
            headers,
        })
}

fn batch_spec() -> impl Strategy<Value = BatchSpec> {
    (
        proptest::sample::select(vec![
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ]),
        proptest::collection::vec(record(), 1..8),
    )
        .prop_map(|(codec, records)| BatchSpec { codec, records })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(batch_spec(), 1..4).prop_map(Op::Append),
        4 => (any::<Index>(), prop_oneof![0..200usize, 0..5_000usize], any::<bool>())
            .prop_map(|(at, max_bytes, min_one)| Op::Read { at, max_bytes, min_one }),
        2 => (proptest::option::of(any::<Index>()), -1..=MAX_TS + 2).prop_map(|(near, ts)| {
            Op::ReadByTimestamp { near, ts: if near.is_some() { ts % 3 - 1 } else { ts } }
        }),
        1 => Just(Op::Roll),
        1 => (
            proptest::collection::vec(batch_spec(), 1..4),
            any::<Index>(),
            any::<Index>(),
            0..8u8,
        )
            .prop_map(|(batches, which, at, bit)| Op::AppendCorrupt { batches, which, at, bit }),
        1 => (any::<bool>(), proptest::option::weighted(0.3, settings()))
            .prop_map(|(clean, settings)| Op::Restart { clean, settings }),
        1 => any::<Index>().prop_map(Op::Truncate),
        1 => Just(Op::Flush),
    ]
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        200..4_000u64,
        prop_oneof![Just(0u64), 1..300u64],
        proptest::sample::select(vec![1u64, 3, i64::MAX as u64]),
        proptest::sample::select(vec![500u64, 604_800_000]),
    )
        .prop_map(
            |(segment_bytes, index_interval_bytes, flush_messages, segment_ms)| Settings {
                segment_bytes,
                index_interval_bytes,
                flush_messages,
                segment_ms,
            },
        )
}

/// One record the log must hold.
#[derive(Clone, Debug, PartialEq)]
struct ModelRecord {
    offset: i64,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

/// One batch the log must hold, byte for byte.
#[derive(Clone, Debug)]
struct ModelBatch {
    base: i64,
    last: i64,
    bytes: Vec<u8>,
    records: Vec<ModelRecord>,
}

#[derive(Debug, Default)]
struct Model {
    batches: Vec<ModelBatch>,
}

impl Model {
    fn log_end(&self) -> i64 {
        self.batches.last().map_or(0, |b| b.last + 1)
    }

    fn size_bytes(&self) -> u64 {
        self.batches.iter().map(|b| b.bytes.len() as u64).sum()
    }

    /// `truncate_to`: every batch whose last offset is at or past `offset` goes, whole.
    fn truncate(&mut self, offset: i64) -> i64 {
        self.batches.retain(|b| b.last < offset);
        self.log_end()
    }

    fn first_at_or_after(&self, timestamp: i64) -> Option<(i64, i64)> {
        self.batches
            .iter()
            .flat_map(|b| &b.records)
            .find(|r| r.timestamp >= timestamp)
            .map(|r| (r.offset, r.timestamp))
    }
}

/// Encode the request an `Append` sends and the batches the model expects from it.
fn encode(specs: &[BatchSpec], base: i64) -> (Vec<u8>, Vec<ModelBatch>) {
    let mut request = Vec::new();
    let mut expected = Vec::new();
    let mut next = base;
    for spec in specs {
        let mut builder = BatchBuilder::new(spec.codec);
        let mut records = Vec::new();
        for r in &spec.records {
            let headers: Vec<Header> = r
                .headers
                .iter()
                .map(|(k, v)| Header {
                    key: k.clone(),
                    value: v.clone().map(Into::into),
                })
                .collect();
            builder.push(r.timestamp, r.key.as_deref(), r.value.as_deref(), &headers);
            records.push(ModelRecord {
                offset: next + records.len() as i64,
                timestamp: r.timestamp,
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r.headers.clone(),
            });
        }
        let built = builder.build().expect("builder accepts generated records");
        request.extend_from_slice(&built);
        let mut stored = built;
        batch::set_base_offset(&mut stored, next);
        batch::set_partition_leader_epoch(&mut stored, 0);
        let last = next + records.len() as i64 - 1;
        expected.push(ModelBatch {
            base: next,
            last,
            bytes: stored,
            records,
        });
        next = last + 1;
    }
    (request, expected)
}

fn decoded(bytes: &[u8]) -> Vec<ModelRecord> {
    let (_, records) = batch::decode_records(bytes, 16 << 20).expect("stored batch decodes");
    records
        .into_iter()
        .map(|r| ModelRecord {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key.map(|b| b.to_vec()),
            value: r.value.map(|b| b.to_vec()),
            headers: r
                .headers
                .into_iter()
                .map(|h| (h.key, h.value.map(|b| b.to_vec())))
                .collect(),
        })
        .collect()
}

proptest! {
    // PROPTEST_CASES raises the count for a soak run; 64 keeps `cargo test` quick.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn partition_log_matches_model(
        settings in settings(),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        run(&settings, &ops)?;
    }
}

fn run(settings: &Settings, ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = settings.config();
    let mut log = PartitionLog::open(dir.path(), config.clone()).expect("open a new log");
    let mut model = Model::default();
    for (step, op) in ops.iter().enumerate() {
        let leo = model.log_end();
        match op {
            Op::Append(specs) => {
                let (request, expected) = encode(specs, leo);
                let info = log
                    .append(&request)
                    .map_err(|e| fail(step, op, format!("append: {e}")))?;
                let records: usize = specs.iter().map(|s| s.records.len()).sum();
                prop_assert_eq!(
                    (
                        info.base_offset,
                        info.last_offset,
                        info.batches,
                        info.records
                    ),
                    (leo, leo + records as i64 - 1, specs.len(), records as u64),
                    "step {}: {:?}",
                    step,
                    op
                );
                prop_assert_eq!((info.log_append_time, info.log_start_offset), (-1, 0));
                model.batches.extend(expected);
            }
            Op::Read {
                at,
                max_bytes,
                min_one,
            } => {
                let offset = at.index(leo as usize + 2) as i64;
                check_read(&log, &model, offset, *max_bytes, *min_one)
                    .map_err(|e| fail(step, op, e))?;
            }
            Op::ReadByTimestamp { near, ts } => {
                let records: Vec<&ModelRecord> =
                    model.batches.iter().flat_map(|b| &b.records).collect();
                let ts = match near {
                    Some(i) if !records.is_empty() => {
                        records[i.index(records.len())].timestamp + ts
                    }
                    _ => *ts,
                };
                let found = log
                    .offset_for_timestamp(ts)
                    .map_err(|e| fail(step, op, format!("offset_for_timestamp({ts}): {e}")))?;
                prop_assert_eq!(
                    found,
                    model.first_at_or_after(ts),
                    "step {}: {:?}: timestamp {}",
                    step,
                    op,
                    ts
                );
            }
            Op::Roll => {
                log.roll()
                    .map_err(|e| fail(step, op, format!("roll: {e}")))?;
                prop_assert_eq!(
                    log.segment_bases().last().copied(),
                    Some(leo),
                    "step {}: after a roll the active segment starts at the log end",
                    step
                );
            }
            Op::AppendCorrupt {
                batches,
                which,
                at,
                bit,
            } => {
                let (mut request, expected) = encode(batches, leo);
                let mut start = 0;
                let victim = which.index(expected.len());
                for b in &expected[..victim] {
                    start += b.bytes.len();
                }
                // Attributes onwards is what the CRC covers.
                let len = expected[victim].bytes.len();
                request[start + 21 + at.index(len - 21)] ^= 1 << bit;
                let refused = log.append(&request);
                prop_assert!(
                    matches!(refused, Err(LogError::InvalidBatch { .. })),
                    "step {}: {:?} gave {:?}",
                    step,
                    op,
                    refused
                );
            }
            Op::Restart { clean, settings } => {
                if *clean {
                    log.close()
                        .map_err(|e| fail(step, op, format!("close: {e}")))?;
                    let refused = log.append(&encode(&[one_record()], leo).0);
                    prop_assert!(
                        matches!(refused, Err(LogError::Closed { .. })),
                        "step {}: append after close gave {:?}",
                        step,
                        refused
                    );
                }
                drop(log);
                if let Some(settings) = settings {
                    config = settings.config();
                }
                log = PartitionLog::open(dir.path(), config.clone())
                    .map_err(|e| fail(step, op, format!("reopen: {e}")))?;
            }
            Op::Truncate(at) => {
                let offset = at.index(leo as usize + 2) as i64;
                let new_end = log
                    .truncate_to(offset)
                    .map_err(|e| fail(step, op, format!("truncate_to({offset}): {e}")))?;
                prop_assert_eq!(
                    new_end,
                    model.truncate(offset),
                    "step {}: truncate_to({})",
                    step,
                    offset
                );
            }
            Op::Flush => log
                .flush()
                .map_err(|e| fail(step, op, format!("flush: {e}")))?,
        }
        check_log(&log, &model, dir.path()).map_err(|e| fail(step, op, e))?;
    }
    Ok(())
}

fn one_record() -> BatchSpec {
    BatchSpec {
        codec: Compression::None,
        records: vec![RecordSpec {
            timestamp: 0,
            key: None,
            value: None,
            headers: Vec::new(),
        }],
    }
}

fn fail(step: usize, op: &Op, why: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(format!("step {step}: {op:?}: {why}"))
}

/// A read at `offset` returns exactly the batches the model says: whole, starting with
/// the one containing `offset`, as many as fit in `max_bytes` without leaving the
/// segment (at least one when `min_one`), byte for byte.
fn check_read(
    log: &PartitionLog,
    model: &Model,
    offset: i64,
    max_bytes: usize,
    min_one: bool,
) -> Result<(), String> {
    let leo = model.log_end();
    let result = log.read(offset, max_bytes, min_one);
    if offset > leo {
        return match result {
            Err(LogError::OffsetOutOfRange { .. }) => Ok(()),
            other => Err(format!("read past the end gave {other:?}")),
        };
    }
    let read = result.map_err(|e| format!("read: {e}"))?;
    let marks = (
        read.log_start_offset,
        read.high_watermark,
        read.log_end_offset,
    );
    if marks != (0, leo, leo) {
        return Err(format!(
            "read reports start, hw, end {marks:?}, model end {leo}"
        ));
    }
    let mut expected: Vec<&ModelBatch> = Vec::new();
    if let Some(first) = model.batches.iter().position(|b| b.last >= offset) {
        let bases = log.segment_bases();
        let base = model.batches[first].base;
        let segment_end = bases
            .iter()
            .copied()
            .find(|&b| b > base)
            .unwrap_or(i64::MAX);
        let mut size = 0;
        for b in model.batches[first..]
            .iter()
            .take_while(|b| b.base < segment_end)
        {
            if size + b.bytes.len() > max_bytes {
                break;
            }
            size += b.bytes.len();
            expected.push(b);
        }
        if expected.is_empty() && min_one {
            expected.push(&model.batches[first]);
        }
    }
    let want: Vec<u8> = expected
        .iter()
        .flat_map(|b| b.bytes.iter().copied())
        .collect();
    if read.records[..] != want[..] {
        return Err(format!(
            "read({offset}, {max_bytes}, {min_one}) returned {} bytes, expected batches {:?} ({} bytes)",
            read.records.len(),
            expected
                .iter()
                .map(|b| (b.base, b.last))
                .collect::<Vec<_>>(),
            want.len()
        ));
    }
    let mut at = 0;
    for b in expected {
        let got = decoded(&read.records[at..at + b.bytes.len()]);
        if got != b.records {
            return Err(format!(
                "batch {}..={} decodes to {got:?}, expected {:?}",
                b.base, b.last, b.records
            ));
        }
        at += b.bytes.len();
    }
    Ok(())
}

/// The log's counters, segments and files agree with the model, and reading the
/// whole log back gives exactly the model's batches.
fn check_log(log: &PartitionLog, model: &Model, dir: &Path) -> Result<(), String> {
    let leo = model.log_end();
    let stats = log.stats();
    let want = (0, leo, leo, model.size_bytes());
    let got = (
        stats.log_start_offset,
        stats.log_end_offset,
        stats.high_watermark,
        stats.size_bytes,
    );
    if got != want {
        return Err(format!(
            "(start, end, hw, bytes) = {got:?}, model says {want:?}"
        ));
    }
    let bases = log.segment_bases();
    if bases.first() != Some(&0)
        || bases.windows(2).any(|w| w[0] >= w[1])
        || bases.len() != stats.segments
    {
        return Err(format!(
            "segment bases {bases:?}, {} segments",
            stats.segments
        ));
    }
    // Segments split the log between batches, never inside one.
    if let Some(b) = bases
        .iter()
        .find(|&&b| b != leo && !model.batches.iter().any(|m| m.base == b))
    {
        return Err(format!(
            "segment base {b} is not a batch boundary: {bases:?}"
        ));
    }
    let on_disk: u64 = segment_files(dir)
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    if on_disk != model.size_bytes() || segment_files(dir).len() != bases.len() {
        return Err(format!(
            "segment files hold {on_disk} bytes in {} files, model {} bytes in {} segments",
            segment_files(dir).len(),
            model.size_bytes(),
            bases.len()
        ));
    }
    let stored = read_all(log)?;
    if stored.len() != model.batches.len() {
        return Err(format!(
            "read back batches {:?}, model {:?}",
            stored
                .iter()
                .map(|b| (b.header.base_offset, b.header.last_offset()))
                .collect::<Vec<_>>(),
            model
                .batches
                .iter()
                .map(|b| (b.base, b.last))
                .collect::<Vec<_>>()
        ));
    }
    for (s, m) in stored.iter().zip(&model.batches) {
        if s.bytes != m.bytes {
            return Err(format!(
                "batch {}..={} differs from what was appended",
                m.base, m.last
            ));
        }
    }
    Ok(())
}
