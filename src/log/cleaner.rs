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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::log::batch::{BatchIter, decode_records};
    use crate::log::compression::Compression;
    use crate::log::partition::now_ms;
    use crate::log::{OffsetSpec, PartitionLog};

    fn log(dir: &Path, pairs: &[(&str, &str)]) -> PartitionLog {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PartitionLog::open(
            dir,
            Arc::new(LogConfig::default().with_overrides(&map).unwrap()),
        )
        .unwrap()
    }

    /// Every surviving record as (offset, key, value).
    fn contents(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
        let r = log.read(log.log_start_offset(), 1 << 24, true).unwrap();
        let mut out = Vec::new();
        let mut next = log.log_start_offset();
        let mut bytes = r.records;
        loop {
            if bytes.is_empty() {
                return out;
            }
            for item in BatchIter::new(&bytes) {
                let (pos, h) = item.unwrap();
                let (_, recs) = decode_records(&bytes[pos..pos + h.size()], 1 << 24).unwrap();
                for r in recs {
                    let s = |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
                    out.push((r.offset, s(r.key).unwrap(), s(r.value)));
                }
                next = h.last_offset() + 1;
            }
            if next >= log.high_watermark() {
                return out;
            }
            bytes = log.read(next, 1 << 24, true).unwrap().records;
        }
    }

    fn batch(codec: Compression, ts: i64, recs: &[(&str, Option<&str>)]) -> Vec<u8> {
        let mut b = BatchBuilder::new(codec);
        for (k, v) in recs {
            b.push(ts, Some(k.as_bytes()), v.map(str::as_bytes), &[]);
        }
        b.build().unwrap()
    }

    #[test]
    fn compressed_batches_are_rewritten_keeping_offsets_and_codec() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let log = log(dir.path(), &[("cleanup.policy", "compact")]);
            let t = now_ms() - 1000;
            log.append(&batch(
                codec,
                t,
                &[("a", Some("1")), ("b", Some("1")), ("c", Some("1"))],
            ))
            .unwrap();
            log.append(&batch(codec, t, &[("b", Some("2")), ("d", Some("1"))]))
                .unwrap();
            log.roll().unwrap();
            assert!(log.compact(now_ms()).unwrap() > 0, "{codec:?}");
            assert_eq!(
                contents(&log),
                vec![
                    (0, "a".into(), Some("1".into())),
                    (2, "c".into(), Some("1".into())),
                    (3, "b".into(), Some("2".into())),
                    (4, "d".into(), Some("1".into())),
                ],
                "{codec:?}"
            );
            // The rewritten batch keeps the codec and its last offset.
            let r = log.read(0, 1 << 20, true).unwrap();
            let (_, h) = BatchIter::new(&r.records).next().unwrap().unwrap();
            assert_eq!(h.compression().unwrap(), codec);
            assert_eq!(h.last_offset(), 2);
            // Reopen: the swapped segment and rebuilt indexes are consistent.
            drop(log);
            let log = super::tests::log(dir.path(), &[("cleanup.policy", "compact")]);
            assert_eq!(contents(&log).len(), 4);
            assert_eq!(
                log.list_offset(OffsetSpec::Earliest).unwrap(),
                Some((0, -1))
            );
        }
    }

    #[test]
    fn tombstones_live_for_delete_retention_then_go() {
        let dir = tempfile::tempdir().unwrap();
        let log = log(
            dir.path(),
            &[
                ("cleanup.policy", "compact,delete"),
                ("delete.retention.ms", "60000"),
                ("retention.ms", "-1"),
            ],
        );
        let recent = now_ms() - 1000;
        log.append(&batch(
            Compression::None,
            recent,
            &[("a", Some("1")), ("b", Some("1"))],
        ))
        .unwrap();
        log.append(&batch(Compression::None, recent, &[("a", None)]))
            .unwrap();
        log.roll().unwrap();
        log.compact(now_ms()).unwrap();
        // The tombstone is younger than delete.retention.ms: it stays, a's value goes.
        assert_eq!(
            contents(&log),
            vec![(1, "b".into(), Some("1".into())), (2, "a".into(), None)]
        );
        // An hour later it is gone too.
        log.compact(now_ms() + 3_600_000).unwrap();
        assert_eq!(contents(&log), vec![(1, "b".into(), Some("1".into()))]);
        assert_eq!(log.log_end_offset(), 3);
    }

    #[test]
    fn min_compaction_lag_protects_recent_segments() {
        let dir = tempfile::tempdir().unwrap();
        let log = log(
            dir.path(),
            &[
                ("cleanup.policy", "compact"),
                ("min.compaction.lag.ms", "3600000"),
            ],
        );
        log.append(&batch(
            Compression::None,
            now_ms(),
            &[("a", Some("1")), ("a", Some("2"))],
        ))
        .unwrap();
        log.roll().unwrap();
        assert_eq!(log.compact(now_ms()).unwrap(), 0);
        assert_eq!(contents(&log).len(), 2);
    }
}
