//! Compaction's record-level work: which records of a closed segment survive, and
//! the rewritten segment file.
//!
//! The rules are Kafka's: a record survives if it is the latest for its key among the
//! closed segments; a tombstone (null value) that is the latest for its key survives
//! until its segment's newest record is older than `delete.retention.ms`; offsets never
//! change (a rewritten batch keeps its base offset, record offset deltas and last offset
//! delta); a batch left with no records is dropped; control batches are kept as they
//! are; segments with records newer than `min.compaction.lag.ms` are left alone.
//! Records without a key (possible if a topic was switched to compaction) are kept.
//!
//! Scheduling, locking and swapping the result in belong to [`super::partition`]. The
//! offset map holds whole keys, not hashes, so a collision can never drop a record; it
//! costs memory proportional to the distinct keys in the closed segments.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::LogError;
use super::batch::{self, BatchBuilder, BatchHeader, TimestampType};
use super::config::LogConfig;
use super::segment::{self, CLEANED_SUFFIX, MAX_BATCH_BYTES, ScanEnd};

/// A closed segment as the cleaner sees it: a snapshot taken under the partition lock.
#[derive(Debug, Clone)]
pub struct SegmentRef {
    pub base_offset: i64,
    pub path: PathBuf,
    pub file: Arc<File>,
    pub size: u64,
    pub max_timestamp: i64,
}

/// A rewritten segment, synced, waiting to be renamed over the original.
#[derive(Debug)]
pub struct Cleaned {
    pub path: PathBuf,
    pub size: u64,
}

fn corrupt(seg: &SegmentRef, position: u64, offset: i64, reason: String) -> LogError {
    LogError::Corrupt {
        path: seg.path.clone(),
        position,
        offset,
        reason,
    }
}

/// Visit every batch of a segment with its bytes, CRC verified. A segment that does
/// not verify to its end is corrupt: compaction stops rather than rewrite bad data.
fn for_each_batch(
    seg: &SegmentRef,
    mut f: impl FnMut(u64, &BatchHeader, &[u8]) -> Result<(), LogError>,
) -> Result<(), LogError> {
    let end = segment::scan(
        &seg.file,
        &seg.path,
        seg.base_offset,
        0,
        seg.size,
        true,
        |b, bytes| f(b.position, &b.header, bytes.unwrap_or_default()),
    )?;
    match end {
        ScanEnd::Clean => Ok(()),
        ScanEnd::Invalid { position, reason } => {
            Err(corrupt(seg, position, seg.base_offset, reason))
        }
    }
}

/// The latest offset of every key in `segments`.
pub fn build_offset_map(segments: &[SegmentRef]) -> Result<HashMap<Bytes, i64>, LogError> {
    let mut map = HashMap::new();
    for seg in segments {
        for_each_batch(seg, |pos, header, bytes| {
            if header.is_control() {
                return Ok(());
            }
            let (_, records) = batch::decode_records(bytes, MAX_BATCH_BYTES)
                .map_err(|e| corrupt(seg, pos, header.base_offset, e.to_string()))?;
            for r in records {
                if let Some(key) = r.key {
                    map.insert(key, r.offset);
                }
            }
            Ok(())
        })?;
    }
    Ok(map)
}

/// Rewrite one segment keeping only surviving records. `None` when nothing would be
/// removed (the segment is left as it is).
pub fn clean_segment(
    dir: &Path,
    seg: &SegmentRef,
    map: &HashMap<Bytes, i64>,
    config: &LogConfig,
    now_ms: i64,
) -> Result<Option<Cleaned>, LogError> {
    if seg.max_timestamp > now_ms - config.min_compaction_lag_ms as i64 {
        return Ok(None);
    }
    let tombstones_expire = seg.max_timestamp < now_ms - config.delete_retention_ms as i64;
    let mut out: Vec<u8> = Vec::with_capacity(seg.size as usize / 2);
    let mut changed = false;
    for_each_batch(seg, |pos, header, bytes| {
        if header.is_control() {
            out.extend_from_slice(bytes);
            return Ok(());
        }
        let (_, records) = batch::decode_records(bytes, MAX_BATCH_BYTES)
            .map_err(|e| corrupt(seg, pos, header.base_offset, e.to_string()))?;
        let keep: Vec<bool> = records
            .iter()
            .map(|r| match &r.key {
                None => true,
                Some(k) => {
                    map.get(k) == Some(&r.offset) && !(r.value.is_none() && tombstones_expire)
                }
            })
            .collect();
        if keep.iter().all(|k| *k) {
            out.extend_from_slice(bytes);
            return Ok(());
        }
        changed = true;
        if !keep.iter().any(|k| *k) {
            return Ok(());
        }
        let compression = header
            .compression()
            .map_err(|e| corrupt(seg, pos, header.base_offset, e.to_string()))?;
        let mut builder = BatchBuilder::new(compression)
            .base_offset(header.base_offset)
            .with_producer(
                header.producer_id,
                header.producer_epoch,
                header.base_sequence,
            )
            .transactional(header.is_transactional())
            .last_offset_delta(header.last_offset_delta);
        for (r, _) in records.iter().zip(&keep).filter(|(_, k)| **k) {
            let delta = i32::try_from(r.offset - header.base_offset).map_err(|_| {
                corrupt(seg, pos, r.offset, "record offset outside its batch".into())
            })?;
            builder.push_with_delta(
                delta,
                r.timestamp,
                r.key.as_deref(),
                r.value.as_deref(),
                &r.headers,
            );
        }
        let mut rebuilt = builder
            .build()
            .map_err(|e| corrupt(seg, pos, header.base_offset, e.to_string()))?;
        batch::set_partition_leader_epoch(&mut rebuilt, header.partition_leader_epoch);
        if header.timestamp_type() == TimestampType::LogAppendTime {
            batch::set_log_append_time(&mut rebuilt, header.max_timestamp);
        }
        out.extend_from_slice(&rebuilt);
        Ok(())
    })?;
    if !changed {
        return Ok(None);
    }
    let path = segment::file_path(dir, seg.base_offset, &format!("log.{CLEANED_SUFFIX}"));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&path)?;
        f.write_all(&out)?;
        f.sync_all()
    };
    write().map_err(|e| LogError::io(&path, e))?;
    Ok(Some(Cleaned {
        path,
        size: out.len() as u64,
    }))
}
