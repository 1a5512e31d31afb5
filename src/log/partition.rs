//! One partition's log: an ordered set of segments, of which the last is active.
//!
//! Owns offset assignment, rolling, the durability policy with group commit, the high
//! watermark, crash recovery, reads by offset and by timestamp, truncation and the
//! deletion of old segments. Compaction's record-level work lives in
//! [`super::cleaner`]; this file swaps its results in.
//!
//! ## Write path (numbered as ARCHITECTURE.md numbers it)
//! 1. Validate every batch outside the lock (framing, CRC, record walk, size limit).
//! 2. Under the lock: assign offsets by rewriting each batch's base offset (bytes 0..8,
//!    outside the CRC), roll the active segment if needed, `pwrite` the batches in one
//!    call, index them, advance the log end offset.
//! 3. If the flush policy asks for it, wait for an `fdatasync` covering the append;
//!    concurrent appenders share one (group commit: the first becomes the leader, the
//!    others wait for its result and the next leader takes all that arrived meanwhile).
//! 4. Advance the high watermark: only now can readers see the batches, and only now
//!    does `append` return (the acknowledgement).
//!
//! Locks: `inner` is held only for in-memory bookkeeping and the `pwrite`; never across
//! an `fdatasync`, never across a read of a closed segment. `sync` orders sync leaders.
//! `maintenance` serializes retention, compaction and truncation against each other.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::IoSlice;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::LogError;
use super::batch::{self, BatchHeader, BatchIter, TimestampType};
use super::cleaner;
use super::config::LogConfig;
use super::segment::{self, CLEANED_SUFFIX, LOG_SUFFIX, MAX_BATCH_BYTES, ScanEnd, Segment};

/// The file in a partition directory holding the recovery point: every segment below
/// the one containing it is known to be synced and complete.
pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub base_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// Number of batches and records written.
    pub batches: usize,
    pub records: u64,
    /// The broker timestamp stamped on the batches for `LogAppendTime` topics, else -1.
    pub log_append_time: i64,
    pub log_start_offset: i64,
}

/// The answer to a read.
#[derive(Clone, Debug)]
pub struct ReadResult {
    /// Whole stored batches, byte for byte as appended (after offset assignment). May
    /// start before the requested offset: the batch containing it is returned whole.
    pub records: Bytes,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// What a ListOffsets request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetSpec {
    /// Kafka's -2: the log start offset.
    Earliest,
    /// Kafka's -1: the high watermark (the next offset to be written and acknowledged).
    Latest,
    /// The first record whose timestamp is at or after this one.
    Timestamp(i64),
}

impl OffsetSpec {
    /// From the protocol's encoding (-2 earliest, -1 latest, else a timestamp).
    pub fn from_protocol(timestamp: i64) -> OffsetSpec {
        match timestamp {
            -2 => OffsetSpec::Earliest,
            -1 => OffsetSpec::Latest,
            ts => OffsetSpec::Timestamp(ts),
        }
    }
}

/// A point-in-time description of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogStats {
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub size_bytes: u64,
    pub segments: usize,
}

/// One partition's commit log. Shared by reference between threads.
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    config: RwLock<Arc<LogConfig>>,
    inner: Mutex<Inner>,
    sync: Mutex<SyncState>,
    synced: Condvar,
    /// Appends between their start and the end of their write: a sync leader lets
    /// these finish (briefly) so that its fdatasync covers them too.
    writing: AtomicUsize,
    /// Appends written since the last sync leader took its snapshot.
    written: AtomicUsize,
    /// How many appends the last sync covered: with that many concurrent appenders,
    /// the next leader waits (briefly) for as many before it syncs.
    last_group: AtomicUsize,
    maintenance: Mutex<()>,
}

#[derive(Debug)]
struct Inner {
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
    /// Where readable data ends: (segment base offset, byte position).
    hw_position: (i64, u64),
    /// Appends written but not yet visible: (end offset, segment, end position).
    pending: VecDeque<(i64, i64, u64)>,
    /// Closed segments written since the last sync.
    unsynced_files: Vec<Arc<File>>,
    unsynced_records: u64,
    unsynced_since: Option<Instant>,
    /// Everything below this offset is synced.
    recovery_point: i64,
    /// The segment base recorded in the checkpoint file.
    checkpointed_segment: i64,
    failed: Option<String>,
    closed: bool,
}

/// The longest a sync leader waits for appends in the middle of their write.
const GATHER_MAX: Duration = Duration::from_micros(500);

/// Counts an append in [`PartitionLog::writing`] until dropped (on every path).
struct Writing<'a>(&'a AtomicUsize);

impl<'a> Writing<'a> {
    fn start(count: &'a AtomicUsize) -> Writing<'a> {
        count.fetch_add(1, Ordering::AcqRel);
        Writing(count)
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug, Default)]
struct SyncState {
    /// Every offset below this is synced.
    durable: i64,
    leader_active: bool,
    /// Callers waiting on `synced` (a notification without waiters is a wasted
    /// syscall on every durable append).
    waiters: usize,
    failed: Option<String>,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks is a bug elsewhere; the state under
    // them is kept consistent step by step, so carry on rather than cascade.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PartitionLog {
    /// Open (or create) the log in `dir`, recovering from an unclean shutdown: every
    /// segment at or after the recovery point is verified batch by batch, a torn or
    /// corrupt tail is truncated (with a warning naming the file and position), and
    /// indexes are rebuilt where missing or stale.
    pub fn open(dir: impl Into<PathBuf>, config: Arc<LogConfig>) -> Result<PartitionLog, LogError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| LogError::io(&dir, e))?;
        let interval = config.index_interval_bytes;
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| LogError::io(&dir, e))? {
            let entry = entry.map_err(|e| LogError::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(base) = segment::parse_log_file_name(&name) {
                bases.push(base);
            } else if name.ends_with(CLEANED_SUFFIX) || name.ends_with(".tmp") {
                // Left by a crash in the middle of compaction or a checkpoint write.
                let path = entry.path();
                std::fs::remove_file(&path).map_err(|e| LogError::io(&path, e))?;
            }
        }
        bases.sort_unstable();
        let checkpoint = read_recovery_point(&dir)?;
        let recovery_point = checkpoint.unwrap_or(0);

        let mut segments = BTreeMap::new();
        let mut truncated_at: Option<usize> = None;
        // Verified segments may hold data that was never synced before the crash.
        let mut verified = Vec::new();
        for (i, &base) in bases.iter().enumerate() {
            let trusted = checkpoint.is_some()
                && bases.get(i + 1).is_some_and(|&next| next <= recovery_point);
            let seg = if trusted {
                Segment::open_trusted(&dir, base, interval)?
            } else {
                let (seg, end) = Segment::open_and_verify(&dir, base, interval)?;
                if let ScanEnd::Invalid { position, reason } = end {
                    let file_len = seg
                        .file
                        .metadata()
                        .map_err(|e| LogError::io(&seg.path, e))?
                        .len();
                    tracing::warn!(
                        segment = %seg.path.display(),
                        position,
                        dropped_bytes = file_len - position,
                        next_offset = seg.next_offset,
                        %reason,
                        "truncating an unsynced tail left by an unclean shutdown"
                    );
                    seg.file
                        .set_len(position)
                        .map_err(|e| LogError::io(&seg.path, e))?;
                    seg.file
                        .sync_all()
                        .map_err(|e| LogError::io(&seg.path, e))?;
                    truncated_at = Some(i);
                }
                verified.push(seg.file.clone());
                seg
            };
            if let Some((_, prev)) = segments.last_key_value() {
                let prev: &Segment = prev;
                if prev.next_offset > seg.base_offset {
                    return Err(LogError::Corrupt {
                        path: seg.path.clone(),
                        position: 0,
                        offset: seg.base_offset,
                        reason: format!(
                            "segment overlaps {} which ends at offset {}",
                            prev.path.display(),
                            prev.next_offset
                        ),
                    });
                }
            }
            segments.insert(base, seg);
            if truncated_at.is_some() {
                break;
            }
        }
        if let Some(i) = truncated_at {
            // Segments after a torn one were never acknowledged as durable either.
            for &base in &bases[i + 1..] {
                tracing::warn!(segment = base, dir = %dir.display(), "removing segment after a truncated tail");
                for suffix in [
                    LOG_SUFFIX,
                    segment::INDEX_SUFFIX,
                    segment::TIME_INDEX_SUFFIX,
                ] {
                    let p = segment::file_path(&dir, base, suffix);
                    if p.exists() {
                        std::fs::remove_file(&p).map_err(|e| LogError::io(&p, e))?;
                    }
                }
            }
        }
        if segments.is_empty() {
            let seg = Segment::create(&dir, recovery_point)?;
            segments.insert(recovery_point, seg);
        }
        // Drop a trailing empty segment in the middle? No: only the last may be empty,
        // and an empty closed segment is harmless for reads.
        let log_start_offset = *segments.keys().next().unwrap_or(&0);
        let (active_base, active) =
            segments
                .last_key_value()
                .map(|(b, s)| (*b, s))
                .ok_or_else(|| {
                    LogError::io(&dir, std::io::Error::other("no segments after recovery"))
                })?;
        let log_end_offset = active.next_offset;
        let hw_position = (active_base, active.size);
        let checkpointed_segment = segment_base_for(&segments, recovery_point.min(log_end_offset));
        let inner = Inner {
            segments,
            log_start_offset,
            log_end_offset,
            high_watermark: log_end_offset,
            hw_position,
            pending: VecDeque::new(),
            unsynced_files: verified,
            unsynced_records: 0,
            unsynced_since: (recovery_point < log_end_offset).then(Instant::now),
            recovery_point: recovery_point.min(log_end_offset),
            checkpointed_segment,
            failed: None,
            closed: false,
        };
        Ok(PartitionLog {
            dir,
            config: RwLock::new(config),
            sync: Mutex::new(SyncState {
                durable: inner.recovery_point,
                ..SyncState::default()
            }),
            inner: Mutex::new(inner),
            synced: Condvar::new(),
            writing: AtomicUsize::new(0),
            written: AtomicUsize::new(0),
            last_group: AtomicUsize::new(0),
            maintenance: Mutex::new(()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> Arc<LogConfig> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replace the config; takes effect from the next append or maintenance pass.
    pub fn set_config(&self, config: Arc<LogConfig>) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
    }

    pub fn stats(&self) -> LogStats {
        let inner = lock(&self.inner);
        LogStats {
            log_start_offset: inner.log_start_offset,
            log_end_offset: inner.log_end_offset,
            high_watermark: inner.high_watermark,
            size_bytes: inner.segments.values().map(|s| s.size).sum(),
            segments: inner.segments.len(),
        }
    }

    pub fn log_start_offset(&self) -> i64 {
        lock(&self.inner).log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        lock(&self.inner).log_end_offset
    }

    pub fn high_watermark(&self) -> i64 {
        lock(&self.inner).high_watermark
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_bases(&self) -> Vec<i64> {
        lock(&self.inner).segments.keys().copied().collect()
    }

    /// Append one or more client record batches laid end to end (a Produce request's
    /// records). All are validated before anything is written; either all are
    /// appended or none. Returns once the batches are written, and synced if the
    /// flush policy requires it: that is the acknowledgement.
    pub fn append(&self, batches: &[u8]) -> Result<AppendInfo, LogError> {
        let config = self.config();
        let require_keys = config.cleanup_policy.compacts();
        let max_batch = config.max_message_bytes.min(MAX_BATCH_BYTES);
        let mut found: Vec<(usize, BatchHeader)> = Vec::new();
        let mut records = 0u64;
        for item in BatchIter::new(batches) {
            let (position, header) = item.map_err(|source| LogError::InvalidBatch {
                position: found.last().map_or(0, |(p, h)| p + h.size()),
                source,
            })?;
            if header.size() > max_batch {
                return Err(LogError::RecordTooLarge {
                    dir: self.dir.clone(),
                    size: header.size(),
                    max: max_batch,
                });
            }
            let bytes = &batches[position..position + header.size()];
            let header = batch::validate(bytes, require_keys, MAX_BATCH_BYTES)
                .map_err(|source| LogError::InvalidBatch { position, source })?;
            records += header.records_count as u64;
            found.push((position, header));
        }
        if found.is_empty() {
            return Err(LogError::InvalidBatch {
                position: 0,
                source: batch::BatchError::Truncated {
                    needed: batch::BATCH_HEADER_LEN,
                    available: batches.len(),
                },
            });
        }
        // The batches are written as received, but for the offsets and leader epoch in
        // their first bytes, which are outside the CRC and patched on the way to the
        // file; only LogAppendTime, which changes CRC-covered fields, needs a copy.
        let copy;
        let (data, log_append_time) = if config.timestamp_type == TimestampType::LogAppendTime {
            let now = now_ms();
            let mut buf = batches.to_vec();
            for (pos, header) in &mut found {
                batch::set_log_append_time(&mut buf[*pos..*pos + header.size()], now);
                header.max_timestamp = now;
            }
            copy = buf;
            (&copy[..], now)
        } else {
            (batches, -1)
        };
        let parts: Vec<&[u8]> = found
            .iter()
            .map(|(pos, header)| &data[*pos..*pos + header.size()])
            .collect();
        self.append_validated(&config, &parts, &mut found, records, log_append_time)
    }

    /// Append batches this process built with [`batch::BatchBuilder`] (the in-process
    /// client), one buffer per batch, written with one `pwritev`: their CRCs and records
    /// are right by construction, so only their headers are read, unless the log is
    /// compacted (every record must have a key, which is checked as for any append).
    pub fn append_built(&self, batches: &[Vec<u8>]) -> Result<AppendInfo, LogError> {
        let config = self.config();
        if config.cleanup_policy.compacts() || config.timestamp_type == TimestampType::LogAppendTime
        {
            // The checks and the rewrite of the general path, one batch at a time.
            let mut first: Option<AppendInfo> = None;
            for b in batches {
                let info = self.append(b)?;
                match &mut first {
                    None => first = Some(info),
                    Some(f) => {
                        f.last_offset = info.last_offset;
                        f.batches += info.batches;
                        f.records += info.records;
                        f.log_start_offset = info.log_start_offset;
                    }
                }
            }
            return first.ok_or(LogError::InvalidBatch {
                position: 0,
                source: batch::BatchError::Truncated {
                    needed: batch::BATCH_HEADER_LEN,
                    available: 0,
                },
            });
        }
        let max_batch = config.max_message_bytes.min(MAX_BATCH_BYTES);
        let mut found = Vec::with_capacity(batches.len());
        let mut records = 0u64;
        let mut at = 0;
        for b in batches {
            let header = match BatchIter::new(b).next() {
                Some(Ok((0, header))) if header.size() == b.len() => header,
                Some(Err(source)) => {
                    return Err(LogError::InvalidBatch {
                        position: at,
                        source,
                    });
                }
                _ => {
                    return Err(LogError::InvalidBatch {
                        position: at,
                        source: batch::BatchError::Truncated {
                            needed: batch::BATCH_HEADER_LEN,
                            available: b.len(),
                        },
                    });
                }
            };
            if header.size() > max_batch {
                return Err(LogError::RecordTooLarge {
                    dir: self.dir.clone(),
                    size: header.size(),
                    max: max_batch,
                });
            }
            records += header.records_count as u64;
            found.push((at, header));
            at += b.len();
        }
        if found.is_empty() {
            return Err(LogError::InvalidBatch {
                position: 0,
                source: batch::BatchError::Truncated {
                    needed: batch::BATCH_HEADER_LEN,
                    available: 0,
                },
            });
        }
        let parts: Vec<&[u8]> = batches.iter().map(|b| &b[..]).collect();
        self.append_validated(&config, &parts, &mut found, records, -1)
    }

    /// Write `parts` (one batch each, described by `found`: its position in what is
    /// written, its header) at the log end.
    fn append_validated(
        &self,
        config: &LogConfig,
        parts: &[&[u8]],
        found: &mut [(usize, BatchHeader)],
        records: u64,
        log_append_time: i64,
    ) -> Result<AppendInfo, LogError> {
        let writing = Writing::start(&self.writing);
        let (info, needs_sync) = {
            let mut inner = lock(&self.inner);
            if inner.closed {
                return Err(LogError::Closed {
                    dir: self.dir.clone(),
                });
            }
            if let Some(reason) = &inner.failed {
                return Err(LogError::Failed {
                    dir: self.dir.clone(),
                    reason: reason.clone(),
                });
            }
            let base_offset = inner.log_end_offset;
            let mut next = base_offset;
            let mut prefixes = Vec::with_capacity(found.len());
            let mut len = 0u64;
            for ((_, header), part) in found.iter_mut().zip(parts) {
                prefixes.push(batch::patched_prefix(part, next, 0));
                header.base_offset = next;
                header.partition_leader_epoch = 0;
                next = header.last_offset() + 1;
                len += header.size() as u64;
            }
            let mut slices = Vec::with_capacity(found.len() * 2);
            for (part, prefix) in parts.iter().zip(&prefixes) {
                slices.push(IoSlice::new(prefix));
                slices.push(IoSlice::new(&part[batch::PATCHED_PREFIX_LEN..]));
            }
            let last_offset = next - 1;
            self.maybe_roll(&mut inner, config, len, found, last_offset)?;
            let inner = &mut *inner;
            let (active_base, active) =
                inner
                    .segments
                    .last_key_value_mut_compat()
                    .ok_or_else(|| LogError::Closed {
                        dir: self.dir.clone(),
                    })?;
            active.append(&mut slices, len, found, config.index_interval_bytes)?;
            let end_position = active.size;
            inner.log_end_offset = next;
            inner.pending.push_back((next, active_base, end_position));
            inner.unsynced_records += records;
            inner.unsynced_since.get_or_insert_with(Instant::now);
            let needs_sync = inner.unsynced_records >= config.flush.every_messages;
            if !needs_sync {
                inner.advance_high_watermark(next);
            }
            let info = AppendInfo {
                base_offset,
                last_offset,
                batches: found.len(),
                records,
                log_append_time,
                log_start_offset: inner.log_start_offset,
            };
            self.written.fetch_add(1, Ordering::AcqRel);
            (info, needs_sync)
        };
        drop(writing);
        if needs_sync {
            self.sync_to(info.last_offset + 1)?;
        }
        Ok(info)
    }

    fn maybe_roll(
        &self,
        inner: &mut Inner,
        config: &LogConfig,
        incoming: u64,
        found: &[(usize, BatchHeader)],
        last_offset: i64,
    ) -> Result<(), LogError> {
        let Some((_, active)) = inner.segments.last_key_value() else {
            return Ok(());
        };
        if active.size == 0 {
            return Ok(());
        }
        let max_ts = found
            .iter()
            .map(|(_, h)| h.max_timestamp)
            .max()
            .unwrap_or(-1);
        let by_size = active.size + incoming > config.segment_bytes;
        let by_time = active.opened_at.elapsed().as_millis() as u64 >= config.segment_ms
            || active
                .first_batch_timestamp
                .is_some_and(|first| first >= 0 && max_ts - first >= config.segment_ms as i64);
        let by_offset = last_offset - active.base_offset > i64::from(i32::MAX);
        if by_size || by_time || by_offset {
            self.roll_locked(inner)?;
        }
        Ok(())
    }

    /// Close the active segment and start a new one at the log end offset, even if
    /// the active segment is small (for tests and for `segment.ms`).
    pub fn roll(&self) -> Result<(), LogError> {
        let mut inner = lock(&self.inner);
        let empty = inner
            .segments
            .last_key_value()
            .is_none_or(|(_, s)| s.size == 0);
        if empty {
            return Ok(());
        }
        self.roll_locked(&mut inner)
    }

    fn roll_locked(&self, inner: &mut Inner) -> Result<(), LogError> {
        let base = inner.log_end_offset;
        if let Some((_, active)) = inner.segments.last_key_value_mut_compat() {
            let index_files = active.write_indexes(&self.dir)?;
            let file = active.file.clone();
            inner.unsynced_files.push(file);
            inner.unsynced_files.extend(index_files);
        }
        let seg = Segment::create(&self.dir, base)?;
        inner.segments.insert(base, seg);
        Ok(())
    }

    /// Make every offset below `offset` durable, sharing one `fdatasync` among all
    /// callers that arrive while another sync runs (group commit).
    pub fn sync_to(&self, offset: i64) -> Result<(), LogError> {
        let mut state = lock(&self.sync);
        loop {
            if let Some(reason) = &state.failed {
                return Err(LogError::Failed {
                    dir: self.dir.clone(),
                    reason: reason.clone(),
                });
            }
            if state.durable >= offset {
                return Ok(());
            }
            if !state.leader_active {
                state.leader_active = true;
                break;
            }
            state.waiters += 1;
            state = self.synced.wait(state).unwrap_or_else(|p| p.into_inner());
            state.waiters -= 1;
        }
        drop(state);

        // Leader. Appends on their way to the file (a write is a few µs of page-cache
        // copy, a sync hundreds), and as many appends as the last sync covered, are
        // waited for (briefly) so that this sync covers them too; otherwise the
        // appenders woken by the last sync would each wait for this sync and then
        // another, and concurrent appenders would share each sync by halves. A lone
        // appender's last group is itself, so it never waits.
        let want = self.last_group.load(Ordering::Acquire);
        let deadline = Instant::now() + GATHER_MAX;
        while (self.writing.load(Ordering::Acquire) > 0
            || self.written.load(Ordering::Acquire) < want)
            && Instant::now() < deadline
        {
            std::thread::yield_now();
        }
        // Take everything written so far.
        let (files, upto) = {
            let mut inner = lock(&self.inner);
            let mut files = std::mem::take(&mut inner.unsynced_files);
            if let Some((_, active)) = inner.segments.last_key_value() {
                files.push(active.file.clone());
            }
            inner.unsynced_records = 0;
            inner.unsynced_since = None;
            // Under the lock, so no append is counted here but left out of the sync.
            let group = self.written.swap(0, Ordering::AcqRel);
            self.last_group.store(group, Ordering::Release);
            (files, inner.log_end_offset)
        };
        let result = files.iter().try_for_each(|f| f.sync_data());
        let mut failure = None;
        match result {
            Ok(()) => {
                let checkpoint = {
                    let mut inner = lock(&self.inner);
                    inner.advance_high_watermark(upto);
                    inner.recovery_point = inner.recovery_point.max(upto);
                    let seg = segment_base_for(&inner.segments, inner.recovery_point);
                    (seg > inner.checkpointed_segment).then(|| {
                        inner.checkpointed_segment = seg;
                        seg
                    })
                };
                if let Some(seg) = checkpoint
                    && let Err(e) = write_recovery_point(&self.dir, seg)
                {
                    // Only a hint for the next recovery; a stale one costs a longer scan.
                    tracing::warn!(dir = %self.dir.display(), error = %e, "could not write the recovery point");
                }
            }
            Err(e) => {
                let reason = format!("fdatasync failed: {e}");
                tracing::error!(dir = %self.dir.display(), %reason, "partition refuses writes from now on");
                lock(&self.inner).failed = Some(reason.clone());
                failure = Some(reason);
            }
        }
        let mut state = lock(&self.sync);
        state.leader_active = false;
        if let Some(reason) = failure {
            state.failed = Some(reason.clone());
            if state.waiters > 0 {
                self.synced.notify_all();
            }
            return Err(LogError::Failed {
                dir: self.dir.clone(),
                reason,
            });
        }
        state.durable = state.durable.max(upto);
        if state.waiters > 0 {
            self.synced.notify_all();
        }
        drop(state);
        if upto < offset {
            // Only if the caller asked beyond what was written: sync what there is.
            return self.sync_to(upto.max(offset.min(self.log_end_offset())));
        }
        Ok(())
    }

    /// Sync everything written so far.
    pub fn flush(&self) -> Result<(), LogError> {
        let end = self.log_end_offset();
        self.sync_to(end)
    }

    /// Sync if unsynced data is older than `flush.ms` (the background flusher's
    /// check). Returns whether it synced.
    pub fn flush_if_due(&self) -> Result<bool, LogError> {
        let interval = self.config().flush.interval;
        let due = lock(&self.inner)
            .unsynced_since
            .is_some_and(|t| t.elapsed() >= interval);
        if due {
            self.flush()?;
        }
        Ok(due)
    }

    /// Read whole batches starting with the one that contains `offset`, up to
    /// `max_bytes` (but at least one whole batch when `min_one`, as Kafka does for the
    /// first partition of a fetch). Reads stop at the high watermark and at the end of
    /// a segment. Every returned batch has had its CRC verified.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<ReadResult, LogError> {
        let (candidates, hw, start, end) = {
            let inner = lock(&self.inner);
            if offset < inner.log_start_offset || offset > inner.high_watermark {
                return Err(LogError::OffsetOutOfRange {
                    dir: self.dir.clone(),
                    offset,
                    log_start_offset: inner.log_start_offset,
                    high_watermark: inner.high_watermark,
                });
            }
            let mut candidates = Vec::new();
            if offset < inner.high_watermark {
                let first = inner
                    .segments
                    .range(..=offset)
                    .next_back()
                    .map_or(offset, |(b, _)| *b);
                // The floor segment holds the offset unless compaction removed its tail;
                // then the next one does. A few candidates are enough.
                for (base, seg) in inner.segments.range(first..).take(4) {
                    let limit = inner.readable_limit(*base, seg.size);
                    if limit == 0 && *base > inner.hw_position.0 {
                        break;
                    }
                    candidates.push((
                        seg.file.clone(),
                        seg.path.clone(),
                        seg.position_hint(offset),
                        limit,
                    ));
                }
            }
            (
                candidates,
                inner.high_watermark,
                inner.log_start_offset,
                inner.log_end_offset,
            )
        };
        let mut records = Bytes::new();
        for (file, path, hint, limit) in candidates {
            let Some(first) = segment::find_batch(&file, &path, hint, limit, offset)? else {
                continue;
            };
            records = read_batches(&file, &path, first, limit, max_bytes, min_one)?;
            break;
        }
        Ok(ReadResult {
            records,
            high_watermark: hw,
            log_start_offset: start,
            log_end_offset: end,
        })
    }

    /// ListOffsets: the log start offset, the high watermark, or the first offset at
    /// or after a timestamp (with that record's timestamp; `None` if every record is
    /// older). The two special answers carry timestamp -1, as Kafka's do.
    pub fn list_offset(&self, spec: OffsetSpec) -> Result<Option<(i64, i64)>, LogError> {
        match spec {
            OffsetSpec::Earliest => Ok(Some((self.log_start_offset(), -1))),
            OffsetSpec::Latest => Ok(Some((self.high_watermark(), -1))),
            OffsetSpec::Timestamp(ts) => self.offset_for_timestamp(ts),
        }
    }

    /// ListOffsets by time: the first offset whose record timestamp is at or after
    /// `timestamp`, with that record's timestamp; `None` if every record is older.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        let candidates: Vec<_> = {
            let inner = lock(&self.inner);
            inner
                .segments
                .iter()
                .filter(|(_, s)| s.max_timestamp >= timestamp)
                .take(4)
                .map(|(base, s)| {
                    (
                        s.file.clone(),
                        s.path.clone(),
                        s.time_position_hint(timestamp),
                        inner.readable_limit(*base, s.size),
                    )
                })
                .collect()
        };
        for (file, path, hint, limit) in candidates {
            let mut pos = hint;
            while let Some(header) = segment::read_header(&file, &path, pos, limit)? {
                if header.size() as u64 + pos > limit {
                    break;
                }
                if header.max_timestamp >= timestamp {
                    let mut bytes = vec![0u8; header.size()];
                    std::os::unix::fs::FileExt::read_exact_at(&*file, &mut bytes, pos)
                        .map_err(|e| LogError::io(&path, e))?;
                    let (_, recs) =
                        batch::decode_records(&bytes, MAX_BATCH_BYTES).map_err(|e| {
                            LogError::Corrupt {
                                path: path.clone(),
                                position: pos,
                                offset: header.base_offset,
                                reason: e.to_string(),
                            }
                        })?;
                    if let Some(r) = recs.iter().find(|r| r.timestamp >= timestamp) {
                        return Ok(Some((r.offset, r.timestamp)));
                    }
                }
                pos += header.size() as u64;
            }
        }
        Ok(None)
    }

    /// Remove every batch whose last offset is at or past `offset` (a batch straddling
    /// it goes whole). Returns the new log end offset. Data is synced first, and the
    /// cut is synced, so the result survives a crash.
    pub fn truncate_to(&self, offset: i64) -> Result<i64, LogError> {
        let _m = lock(&self.maintenance);
        self.flush()?;
        let interval = self.config().index_interval_bytes;
        let mut inner = lock(&self.inner);
        let offset = offset.max(inner.log_start_offset);
        let doomed: Vec<i64> = inner.segments.range(offset..).map(|(b, _)| *b).collect();
        // Newest first, keeping at least one segment to truncate and append to.
        for base in doomed.iter().rev() {
            if inner.segments.len() == 1 {
                break;
            }
            if let Some(seg) = inner.segments.remove(base) {
                seg.delete_files(&self.dir)?;
            }
        }
        let dir = self.dir.clone();
        let (_, active) = inner
            .segments
            .last_key_value_mut_compat()
            .ok_or_else(|| LogError::Closed { dir: dir.clone() })?;
        active.truncate_to(offset, interval)?;
        active
            .file
            .sync_all()
            .map_err(|e| LogError::io(&active.path, e))?;
        let leo = active.next_offset;
        let pos = (active.base_offset, active.size);
        inner.log_end_offset = leo;
        inner.high_watermark = leo;
        inner.hw_position = pos;
        inner.pending.clear();
        inner.unsynced_files.clear();
        inner.recovery_point = inner.recovery_point.min(leo);
        inner.log_start_offset = *inner.segments.keys().next().unwrap_or(&leo);
        let seg = segment_base_for(&inner.segments, inner.recovery_point);
        inner.checkpointed_segment = seg;
        drop(inner);
        write_recovery_point(&self.dir, seg)?;
        let mut state = lock(&self.sync);
        state.durable = state.durable.min(leo);
        Ok(leo)
    }

    /// Delete closed segments past `retention.ms` (by their newest record's
    /// timestamp) or beyond `retention.bytes`, oldest first, never the active segment.
    /// Returns how many were deleted.
    pub fn delete_old_segments(&self, now_ms: i64) -> Result<usize, LogError> {
        let config = self.config();
        if !config.cleanup_policy.deletes() {
            return Ok(0);
        }
        let _m = lock(&self.maintenance);
        let removed: Vec<Segment> = {
            let mut inner = lock(&self.inner);
            let mut total: u64 = inner.segments.values().map(|s| s.size).sum();
            let mut doomed = Vec::new();
            let active = inner.segments.keys().next_back().copied();
            for (base, seg) in inner.segments.iter() {
                if !inner.is_settled(*base, seg, active) {
                    break;
                }
                let expired = config
                    .retention_ms
                    .is_some_and(|ms| seg.size == 0 || seg.max_timestamp < now_ms - ms as i64);
                let oversize = config
                    .retention_bytes
                    .is_some_and(|limit| total - seg.size >= limit);
                if !(expired || oversize) {
                    break;
                }
                total -= seg.size;
                doomed.push(*base);
            }
            let removed: Vec<Segment> = doomed
                .iter()
                .filter_map(|b| inner.segments.remove(b))
                .collect();
            if let Some(first) = inner.segments.keys().next() {
                inner.log_start_offset = inner.log_start_offset.max(*first);
            }
            removed
        };
        for seg in &removed {
            tracing::info!(segment = %seg.path.display(), "deleting segment past retention");
            seg.delete_files(&self.dir)?;
        }
        Ok(removed.len())
    }

    /// Compact closed segments (for `cleanup.policy` with `compact`): keep the latest
    /// record per key, drop tombstones older than `delete.retention.ms`, preserve
    /// offsets. Appends and reads go on meanwhile. Returns the bytes reclaimed.
    pub fn compact(&self, now_ms: i64) -> Result<u64, LogError> {
        let config = self.config();
        if !config.cleanup_policy.compacts() {
            return Ok(0);
        }
        let _m = lock(&self.maintenance);
        let snapshot: Vec<cleaner::SegmentRef> = {
            let inner = lock(&self.inner);
            let active = inner.segments.keys().next_back().copied();
            inner
                .segments
                .iter()
                .take_while(|(base, s)| inner.is_settled(**base, s, active))
                .map(|(base, s)| cleaner::SegmentRef {
                    base_offset: *base,
                    path: s.path.clone(),
                    file: s.file.clone(),
                    size: s.size,
                    max_timestamp: s.max_timestamp,
                })
                .collect()
        };
        if snapshot.is_empty() {
            return Ok(0);
        }
        let map = cleaner::build_offset_map(&snapshot)?;
        let mut reclaimed = 0;
        for seg in &snapshot {
            let Some(cleaned) = cleaner::clean_segment(&self.dir, seg, &map, &config, now_ms)?
            else {
                continue;
            };
            reclaimed += seg.size - cleaned.size;
            self.swap_in_cleaned(seg, cleaned, config.index_interval_bytes)?;
        }
        Ok(reclaimed)
    }

    fn swap_in_cleaned(
        &self,
        old: &cleaner::SegmentRef,
        cleaned: cleaner::Cleaned,
        interval: u64,
    ) -> Result<(), LogError> {
        let mut inner = lock(&self.inner);
        let still_there = inner
            .segments
            .get(&old.base_offset)
            .is_some_and(|s| Arc::ptr_eq(&s.file, &old.file));
        if !still_there {
            let _ = std::fs::remove_file(&cleaned.path);
            return Ok(());
        }
        // Old indexes go first: a crash after the rename finds none and rebuilds them.
        for suffix in [segment::INDEX_SUFFIX, segment::TIME_INDEX_SUFFIX] {
            let p = segment::file_path(&self.dir, old.base_offset, suffix);
            if let Err(e) = std::fs::remove_file(&p)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(LogError::io(&p, e));
            }
        }
        std::fs::rename(&cleaned.path, &old.path).map_err(|e| LogError::io(&old.path, e))?;
        sync_dir(&self.dir)?;
        if cleaned.size == 0 && inner.segments.len() > 1 {
            if let Some(seg) = inner.segments.remove(&old.base_offset) {
                seg.delete_files(&self.dir)?;
            }
            return Ok(());
        }
        let mut seg = Segment::open_trusted(&self.dir, old.base_offset, interval)?;
        for f in seg.write_indexes(&self.dir)? {
            f.sync_data().map_err(|e| LogError::io(&self.dir, e))?;
        }
        inner.segments.insert(old.base_offset, seg);
        Ok(())
    }

    /// Sync everything, write the indexes of the active segment and a recovery point
    /// at the end of the log, so the next open trusts every segment. Appends fail
    /// afterwards.
    pub fn close(&self) -> Result<(), LogError> {
        self.flush()?;
        let mut inner = lock(&self.inner);
        if inner.closed {
            return Ok(());
        }
        inner.closed = true;
        let leo = inner.log_end_offset;
        let index_files = match inner.segments.last_key_value_mut_compat() {
            Some((_, active)) => active.write_indexes(&self.dir)?,
            None => Vec::new(),
        };
        drop(inner);
        // The recovery point below will trust these indexes: make them durable first.
        for f in index_files {
            f.sync_data().map_err(|e| LogError::io(&self.dir, e))?;
        }
        write_recovery_point(&self.dir, leo)
    }
}

impl Inner {
    fn advance_high_watermark(&mut self, offset: i64) {
        while let Some(&(end, seg, pos)) = self.pending.front() {
            if end > offset {
                break;
            }
            self.hw_position = (seg, pos);
            self.pending.pop_front();
        }
        self.high_watermark = self.high_watermark.max(offset);
    }

    /// A closed segment whose every record is below the high watermark: retention
    /// and compaction may act on it.
    fn is_settled(&self, base: i64, seg: &Segment, active: Option<i64>) -> bool {
        Some(base) != active && seg.next_offset <= self.high_watermark
    }

    /// How many bytes of the segment at `base` readers may see.
    fn readable_limit(&self, base: i64, size: u64) -> u64 {
        use std::cmp::Ordering;
        match base.cmp(&self.hw_position.0) {
            Ordering::Less => size,
            Ordering::Equal => self.hw_position.1.min(size),
            Ordering::Greater => 0,
        }
    }
}

/// `BTreeMap::last_key_value` with a mutable value.
trait LastMut {
    fn last_key_value_mut_compat(&mut self) -> Option<(i64, &mut Segment)>;
}

impl LastMut for BTreeMap<i64, Segment> {
    fn last_key_value_mut_compat(&mut self) -> Option<(i64, &mut Segment)> {
        self.iter_mut().next_back().map(|(k, v)| (*k, v))
    }
}

/// The base offset of the segment that holds `offset`.
fn segment_base_for(segments: &BTreeMap<i64, Segment>, offset: i64) -> i64 {
    segments
        .range(..=offset)
        .next_back()
        .map_or(offset, |(b, _)| *b)
}

/// Read batches from `first` on, whole, up to `max_bytes` (or one whole batch when
/// `min_one`), verifying each CRC.
fn read_batches(
    file: &File,
    path: &Path,
    first: segment::ScannedBatch,
    limit: u64,
    max_bytes: usize,
    min_one: bool,
) -> Result<Bytes, LogError> {
    let available = (limit - first.position) as usize;
    let first_size = first.header.size();
    let mut want = max_bytes.min(available);
    if want < first_size {
        if !min_one {
            return Ok(Bytes::new());
        }
        want = first_size.min(available);
    }
    let mut buf = segment::read_exact_at_uninit(file, want, first.position)
        .map_err(|e| LogError::io(path, e))?;
    let mut end = 0;
    for item in BatchIter::new(&buf) {
        let Ok((pos, header)) = item else { break };
        let bytes = &buf[pos..pos + header.size()];
        if let Err(e) = batch::verify_crc(bytes) {
            if end > 0 {
                // Serve the good batches; the next read reports the bad one.
                break;
            }
            return Err(LogError::Corrupt {
                path: path.to_path_buf(),
                position: first.position + pos as u64,
                offset: header.base_offset,
                reason: e.to_string(),
            });
        }
        end = pos + header.size();
    }
    if end == 0 && want >= first_size {
        return Err(LogError::Corrupt {
            path: path.to_path_buf(),
            position: first.position,
            offset: first.header.base_offset,
            reason: "batch does not parse".into(),
        });
    }
    buf.truncate(end);
    Ok(Bytes::from(buf))
}

fn read_recovery_point(dir: &Path) -> Result<Option<i64>, LogError> {
    let path = dir.join(RECOVERY_POINT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io(&path, e)),
    };
    // Kafka's checkpoint layout: version, entry count, entries.
    let mut lines = text.lines();
    let parsed = match (lines.next(), lines.next()) {
        (Some("0"), Some(v)) => v.trim().parse::<i64>().ok(),
        _ => None,
    };
    if parsed.is_none() {
        tracing::warn!(file = %path.display(), "unreadable recovery point; verifying every segment");
    }
    Ok(parsed)
}

/// Write the recovery point atomically: temp file, fsync, rename, fsync the directory.
fn write_recovery_point(dir: &Path, offset: i64) -> Result<(), LogError> {
    let path = dir.join(RECOVERY_POINT_FILE);
    let tmp = dir.join(format!("{RECOVERY_POINT_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        std::io::Write::write_all(&mut f, format!("0\n{offset}\n").as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    };
    write().map_err(|e| LogError::io(&path, e))?;
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{BatchBuilder, decode_records};
    use crate::log::compression::Compression;

    fn batch(n: usize, tag: &str, ts: i64) -> Vec<u8> {
        let mut b = BatchBuilder::new(Compression::None);
        for i in 0..n {
            b.push(
                ts,
                Some(format!("k{i}").as_bytes()),
                Some(format!("{tag}-{i}").as_bytes()),
                &[],
            );
        }
        b.build().unwrap()
    }

    fn values(log: &PartitionLog, from: i64) -> Vec<(i64, String)> {
        let mut out = Vec::new();
        let mut next = from;
        loop {
            let r = log.read(next, 1 << 20, true).unwrap();
            if r.records.is_empty() {
                return out;
            }
            for item in BatchIter::new(&r.records) {
                let (pos, h) = item.unwrap();
                let (_, recs) = decode_records(&r.records[pos..pos + h.size()], 1 << 24).unwrap();
                for rec in recs {
                    if rec.offset >= next {
                        out.push((
                            rec.offset,
                            String::from_utf8(rec.value.unwrap().to_vec()).unwrap(),
                        ));
                    }
                }
                next = h.last_offset() + 1;
            }
        }
    }

    fn config(pairs: &[(&str, &str)]) -> Arc<LogConfig> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Arc::new(LogConfig::default().with_overrides(&map).unwrap())
    }

    #[test]
    fn append_assigns_dense_offsets_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), config(&[])).unwrap();
        let a = log.append(&batch(3, "a", 1000)).unwrap();
        let mut two = batch(2, "b", 1001);
        two.extend(batch(1, "c", 1002));
        let b = log.append(&two).unwrap();
        assert_eq!((a.base_offset, a.last_offset), (0, 2));
        assert_eq!((b.base_offset, b.last_offset, b.batches), (3, 5, 2));
        assert_eq!(log.high_watermark(), 6);
        let v = values(&log, 0);
        assert_eq!(v.len(), 6);
        assert_eq!(v[3], (3, "b-0".to_string()));
        assert_eq!(values(&log, 4).first().map(|x| x.0), Some(4));
        assert!(matches!(
            log.read(7, 100, true),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert!(log.read(6, 100, true).unwrap().records.is_empty());
    }

    #[test]
    fn built_batches_are_appended_together_and_still_checked_where_it_matters() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path().join("p"), config(&[])).unwrap();
        log.append(&batch(1, "a", 1000)).unwrap();
        let info = log
            .append_built(&[batch(2, "b", 1001), batch(3, "c", 1002)])
            .unwrap();
        assert_eq!(
            (
                info.base_offset,
                info.last_offset,
                info.batches,
                info.records
            ),
            (1, 5, 2, 5)
        );
        let v = values(&log, 0);
        assert_eq!(v.len(), 6);
        assert_eq!(v[3], (3, "c-0".to_string()));
        // A buffer that is not exactly one batch is refused, and nothing is written.
        let mut two = batch(1, "d", 1003);
        two.extend(batch(1, "e", 1004));
        assert!(matches!(
            log.append_built(&[two]),
            Err(LogError::InvalidBatch { .. })
        ));
        assert!(log.append_built(&[]).is_err());
        assert_eq!(log.log_end_offset(), 6);
        // A compacted log still finds a record without a key.
        let compacted = PartitionLog::open(
            dir.path().join("c"),
            config(&[("cleanup.policy", "compact")]),
        )
        .unwrap();
        let mut keyless = BatchBuilder::new(Compression::None);
        keyless.push(1000, None, Some(b"v"), &[]);
        assert!(
            compacted
                .append_built(&[batch(1, "k", 1000), keyless.build().unwrap()])
                .is_err()
        );
        let info = compacted.append_built(&[batch(2, "k", 1000)]).unwrap();
        assert_eq!((info.base_offset, info.records), (1, 2));
    }

    #[test]
    fn rolls_by_size_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(&[("segment.bytes", "1024"), ("index.interval.bytes", "100")]);
        {
            let log = PartitionLog::open(dir.path(), cfg.clone()).unwrap();
            for i in 0..40 {
                log.append(&batch(3, &format!("x{i}"), 1000 + i)).unwrap();
            }
            assert!(log.segment_bases().len() > 3, "{:?}", log.segment_bases());
            log.close().unwrap();
        }
        let log = PartitionLog::open(dir.path(), cfg.clone()).unwrap();
        assert_eq!(log.log_end_offset(), 120);
        let v = values(&log, 0);
        assert_eq!(v.len(), 120);
        assert!(v.iter().enumerate().all(|(i, (o, _))| *o == i as i64));
        assert_eq!(log.offset_for_timestamp(1010).unwrap(), Some((30, 1010)));
        assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 1000)));
        assert_eq!(log.offset_for_timestamp(5000).unwrap(), None);
        assert_eq!(
            log.list_offset(OffsetSpec::from_protocol(-2)).unwrap(),
            Some((0, -1))
        );
        assert_eq!(
            log.list_offset(OffsetSpec::from_protocol(-1)).unwrap(),
            Some((120, -1))
        );
        assert_eq!(
            log.list_offset(OffsetSpec::from_protocol(1039)).unwrap(),
            Some((117, 1039))
        );
        // Unclean reopen (no close): everything is re-verified and still there.
        drop(log);
        std::fs::remove_file(dir.path().join(RECOVERY_POINT_FILE)).unwrap();
        let log = PartitionLog::open(dir.path(), cfg).unwrap();
        assert_eq!(values(&log, 0).len(), 120);
    }

    #[test]
    fn torn_tail_is_truncated_and_corrupt_closed_segment_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(&[("segment.bytes", "1024")]);
        let log = PartitionLog::open(dir.path(), cfg.clone()).unwrap();
        for i in 0..20 {
            log.append(&batch(2, &format!("t{i}"), 1000)).unwrap();
        }
        let bases = log.segment_bases();
        let leo = log.log_end_offset();
        drop(log);
        // Tear the last batch of the active segment in half.
        let active = segment::file_path(dir.path(), *bases.last().unwrap(), LOG_SUFFIX);
        let len = std::fs::metadata(&active).unwrap().len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&active)
            .unwrap();
        f.set_len(len - 10).unwrap();
        let log = PartitionLog::open(dir.path(), cfg.clone()).unwrap();
        assert_eq!(log.log_end_offset(), leo - 2);
        assert_eq!(values(&log, 0).len() as i64, leo - 2);
        log.close().unwrap();
        drop(log);
        // Flip a byte in the middle of the first (closed, trusted) segment.
        let first = segment::file_path(dir.path(), bases[0], LOG_SUFFIX);
        let mut bytes = std::fs::read(&first).unwrap();
        let n = bytes.len();
        bytes[n / 2] ^= 0xff;
        std::fs::write(&first, bytes).unwrap();
        let log = PartitionLog::open(dir.path(), cfg).unwrap();
        let err = (0..leo)
            .find_map(|o| log.read(o, 1 << 20, true).err())
            .unwrap();
        let msg = err.to_string();
        assert!(
            msg.contains("corrupt") && msg.contains("00000000000000000000.log"),
            "{msg}"
        );
    }

    #[test]
    fn group_commit_and_flush_policy() {
        let dir = tempfile::tempdir().unwrap();
        let log =
            Arc::new(PartitionLog::open(dir.path(), config(&[("flush.messages", "1")])).unwrap());
        std::thread::scope(|s| {
            for t in 0..4 {
                let log = log.clone();
                s.spawn(move || {
                    for i in 0..50 {
                        log.append(&batch(2, &format!("{t}-{i}"), 1)).unwrap();
                    }
                });
            }
        });
        assert_eq!(log.log_end_offset(), 400);
        assert_eq!(lock(&log.sync).durable, 400);
        assert_eq!(values(&log, 0).len(), 400);
    }

    #[test]
    fn truncate_retention_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(
            dir.path(),
            config(&[("segment.bytes", "512"), ("retention.bytes", "1500")]),
        )
        .unwrap();
        for i in 0..30 {
            log.append(&batch(2, &format!("r{i}"), 1000 + i)).unwrap();
        }
        let before = log.segment_bases().len();
        assert!(log.delete_old_segments(now_ms()).unwrap() > 0);
        assert!(log.segment_bases().len() < before);
        assert!(log.stats().size_bytes <= 1500 + 512);
        assert!(log.log_start_offset() > 0);
        let start = log.log_start_offset();
        assert!(matches!(
            log.read(0, 100, true),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert_eq!(values(&log, start).first().map(|x| x.0), Some(start));
        let cut = start + 4;
        assert_eq!(log.truncate_to(cut).unwrap(), cut);
        assert_eq!(values(&log, start).last().map(|x| x.0), Some(cut - 1));
        assert_eq!(log.append(&batch(1, "z", 1)).unwrap().base_offset, cut);

        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(
            dir.path(),
            config(&[
                ("segment.bytes", "300"),
                ("cleanup.policy", "compact"),
                ("delete.retention.ms", "0"),
            ]),
        )
        .unwrap();
        for round in 0..10 {
            log.append(&batch(3, &format!("v{round}"), 1000)).unwrap();
        }
        // a tombstone for k0
        let mut b = BatchBuilder::new(Compression::None);
        b.push(1000, Some(b"k0"), None, &[]);
        log.append(&b.build().unwrap()).unwrap();
        log.roll().unwrap();
        let reclaimed = log.compact(now_ms()).unwrap();
        assert!(reclaimed > 0);
        let v = values(&log, 0);
        // k1 and k2 keep only round 9's value at their original offsets; k0 is gone.
        assert_eq!(v, vec![(28, "v9-1".to_string()), (29, "v9-2".to_string())]);
        assert_eq!(log.log_end_offset(), 31);
        assert_eq!(log.append(&batch(1, "n", 1)).unwrap().base_offset, 31);
    }
}
