//! Hidden tools for tests (`tributary debug ...`).
//!
//! What it is: `crash-writer`, the writing half of the SIGKILL crash tests
//! (`tests/it/crash.rs`). It appends batches of deterministic content to one
//! [`PartitionLog`] forever and prints every acknowledgement, so a test can kill it at
//! any moment and then check the log against what was acknowledged.
//!
//! What it isn't: a benchmark or a producer. It talks to the log directly, with no
//! broker, protocol or topic in between, and it is not part of any user-facing command.
//!
//! ## The content contract (the checker relies on it)
//! The record at offset `o` has:
//! - timestamp `CRASH_BASE_TIMESTAMP + o`;
//! - key `o` in decimal ASCII, except when `o % 4 == 3`, where the key is null;
//! - value: `o` as 8 big-endian bytes, then `n >= 0` bytes where byte `i` is
//!   `(o + i) % 251`. `n` is the writer's choice (from a few bytes to hundreds of KiB),
//!   so batch sizes vary while every byte stays checkable from the offset alone;
//! - no headers.
//!
//! Each acknowledged append prints `ack <base_offset> <last_offset>` on its own line,
//! flushed before the next append starts. The writer exits with an error once stdout
//! is gone (the test dropped the pipe).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use crate::log::batch::BatchBuilder;
use crate::log::compression::Compression;
use crate::log::{LogConfig, PartitionLog};

/// Timestamp of the record at offset 0; the record at offset `o` has this plus `o`.
pub const CRASH_BASE_TIMESTAMP: i64 = 1_600_000_000_000;

/// The period of the value filler: byte `i` of the filler of offset `o` is
/// `(o + i) % CRASH_VALUE_PERIOD`. A prime, so neighbouring offsets differ in phase.
pub const CRASH_VALUE_PERIOD: usize = 251;

/// The largest filler the writer puts in one value.
const MAX_FILLER: usize = 300 << 10;

/// Arguments of `tributary debug crash-writer`.
#[derive(Debug, clap::Args)]
pub struct CrashWriterArgs {
    /// The partition directory to append to (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// The log's `flush.messages`: 1 makes every acknowledged append durable.
    #[arg(long)]
    pub flush_messages: Option<u64>,
    /// The log's `segment.bytes`.
    #[arg(long)]
    pub segment_bytes: Option<u64>,
    /// Seeds the choice of batch shapes and codecs; the content depends only on offsets.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Append deterministic batches to the log in `--dir` until killed (or until stdout
/// closes), printing `ack <base> <last>` after each append returns.
pub fn crash_writer(args: &CrashWriterArgs) -> anyhow::Result<()> {
    let mut overrides = BTreeMap::new();
    if let Some(n) = args.flush_messages {
        overrides.insert("flush.messages".to_string(), n.to_string());
    }
    if let Some(n) = args.segment_bytes {
        overrides.insert("segment.bytes".to_string(), n.to_string());
    }
    let config = LogConfig::default()
        .with_overrides(&overrides)
        .context("building the log config")?;
    let log = PartitionLog::open(&args.dir, Arc::new(config))
        .with_context(|| format!("opening the log in {}", args.dir.display()))?;
    // One filler table serves every value: a value's filler is a slice of it.
    let filler: Vec<u8> = (0..MAX_FILLER + CRASH_VALUE_PERIOD)
        .map(|j| (j % CRASH_VALUE_PERIOD) as u8)
        .collect();
    let mut rng = SplitMix64(args.seed);
    let mut next = log.log_end_offset();
    let mut request = Vec::new();
    let mut out = std::io::stdout().lock();
    loop {
        request.clear();
        let batches = if rng.below(8) == 0 {
            2 + rng.below(2)
        } else {
            1
        };
        let mut offset = next;
        for _ in 0..batches {
            offset = push_batch(&mut request, &mut rng, &filler, offset)?;
        }
        let info = log.append(&request).context("appending")?;
        anyhow::ensure!(
            info.base_offset == next && info.last_offset == offset - 1,
            "the log assigned offsets {}..={} to a request built for {next}..={}: is another writer on this directory?",
            info.base_offset,
            info.last_offset,
            offset - 1
        );
        writeln!(out, "ack {} {}", info.base_offset, info.last_offset)
            .and_then(|()| out.flush())
            .context("printing an acknowledgement")?;
        next = offset;
    }
}

/// Build one batch whose first record will get offset `first` and append it to
/// `request`. Returns the offset after the batch's last record.
fn push_batch(
    request: &mut Vec<u8>,
    rng: &mut SplitMix64,
    filler: &[u8],
    first: i64,
) -> anyhow::Result<i64> {
    // Mostly small batches; now and then one of several hundred KiB, so that a kill
    // sometimes lands in the middle of its write. Those stay uncompressed so their
    // bytes on disk are as large as their content.
    let huge = rng.below(40) == 0;
    let (count, max_filler, codec) = if huge {
        (1 + rng.below(3), MAX_FILLER, Compression::None)
    } else {
        let codec = match rng.below(10) {
            0 => Compression::Gzip,
            1 => Compression::Snappy,
            2 => Compression::Lz4,
            3 => Compression::Zstd,
            _ => Compression::None,
        };
        (1 + rng.below(40), 300, codec)
    };
    let mut builder = BatchBuilder::new(codec);
    let mut value = Vec::with_capacity(8 + max_filler);
    for offset in first..first + count as i64 {
        let len = if huge {
            (64 << 10) + rng.below(max_filler - (64 << 10))
        } else {
            rng.below(max_filler)
        };
        let phase = offset as usize % CRASH_VALUE_PERIOD;
        value.clear();
        value.extend_from_slice(&offset.to_be_bytes());
        value.extend_from_slice(&filler[phase..phase + len]);
        let key = (offset % 4 != 3).then(|| offset.to_string());
        builder.push(
            CRASH_BASE_TIMESTAMP + offset,
            key.as_deref().map(str::as_bytes),
            Some(&value),
            &[],
        );
    }
    request.extend_from_slice(&builder.build().context("building a batch")?);
    Ok(first + count as i64)
}

/// A tiny deterministic generator: batch shapes only need to vary, not be strong.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..n`; `n` must be positive.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
