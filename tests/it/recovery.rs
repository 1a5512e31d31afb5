//! Recovery from damaged index files.
//!
//! Segments below the recovery point are opened as trusted, with their `.index` and
//! `.timeindex` loaded from disk and only spot-checked. Index files are derived data:
//! one may come back missing, empty or cut short while its `.log` is intact (a power
//! loss before it was synced, a build that never synced it, a careless copy). The log
//! must then either use what is left correctly or rebuild it: reads and timestamp
//! lookups give the same answers as before the damage.

use std::path::Path;

use tributary::log::PartitionLog;
use tributary::log::batch::BatchBuilder;
use tributary::log::compression::Compression;
use tributary::log::segment::{self, INDEX_SUFFIX, TIME_INDEX_SUFFIX};

use crate::support::{log_config, read_all};

/// What happens to one index file of the first (trusted) segment.
#[derive(Clone, Copy, Debug)]
enum Damage {
    Delete,
    /// Keep only this many whole entries.
    KeepEntries(usize),
}

/// Record timestamps of the first segment, one batch each. The time index gets
/// `(200, 1)` and `(5000, 2)`; the later batches are older, so only a complete time
/// index (or a full scan) knows the segment reaches 5000.
const FIRST_SEGMENT: [i64; 10] = [100, 200, 5_000, 103, 104, 105, 106, 107, 108, 109];
/// The second segment's only batch.
const SECOND_SEGMENT: i64 = 200;

/// Build two segments, close the log cleanly (so the first is trusted on reopen),
/// damage the first segment's index files, reopen and compare every answer.
fn check(index: Option<Damage>, time_index: Option<Damage>) {
    let ctx = format!(".index {index:?}, .timeindex {time_index:?}");
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    // An index entry for every batch but the first.
    let config = log_config(&[("index.interval.bytes", "0".to_string())]);
    let log = PartitionLog::open(dir, config.clone()).expect("open");
    for ts in FIRST_SEGMENT {
        log.append(&one_record(ts)).expect("append");
    }
    log.roll().expect("roll");
    log.append(&one_record(SECOND_SEGMENT)).expect("append");
    let before = answers(&log);
    assert_eq!(log.segment_bases(), vec![0, 10], "{ctx}");
    log.close().expect("close");
    drop(log);

    for (damage, suffix, entry) in [
        (index, INDEX_SUFFIX, 8),
        (time_index, TIME_INDEX_SUFFIX, 12),
    ] {
        if let Some(damage) = damage {
            apply(&segment::file_path(dir, 0, suffix), damage, entry);
        }
    }
    let log = PartitionLog::open(dir, config).unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
    assert_eq!(answers(&log), before, "{ctx}");
}

fn apply(path: &Path, damage: Damage, entry_size: usize) {
    match damage {
        Damage::Delete => std::fs::remove_file(path).expect("delete an index file"),
        Damage::KeepEntries(n) => {
            let len = std::fs::metadata(path).expect("index file").len();
            let keep = (n * entry_size) as u64;
            assert!(keep <= len, "{} has fewer than {n} entries", path.display());
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(keep))
                .expect("cut an index file");
        }
    }
}

fn one_record(ts: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None);
    b.push(ts, Some(b"k"), Some(&ts.to_be_bytes()), &[]);
    b.build().expect("batch")
}

/// Every batch's offsets, and what every interesting timestamp lookup returns.
fn answers(log: &PartitionLog) -> (Vec<(i64, i64)>, Vec<Option<(i64, i64)>>) {
    let batches = read_all(log)
        .expect("read the log back")
        .iter()
        .map(|b| (b.header.base_offset, b.header.last_offset()))
        .collect();
    let lookups = [
        0, 100, 101, 105, 109, 110, 150, 200, 201, 4_999, 5_000, 5_001,
    ]
    .iter()
    .map(|&ts| log.offset_for_timestamp(ts).expect("offset_for_timestamp"))
    .collect();
    (batches, lookups)
}

#[test]
fn missing_or_short_offset_index_is_rebuilt_or_used_correctly() {
    check(Some(Damage::Delete), None);
    check(Some(Damage::KeepEntries(0)), None);
    check(Some(Damage::KeepEntries(4)), None);
    check(None, Some(Damage::Delete));
    check(Some(Damage::Delete), Some(Damage::Delete));
    check(Some(Damage::KeepEntries(0)), Some(Damage::KeepEntries(0)));
}

/// An empty `.timeindex` beside a non-empty `.index` must not be taken at its word:
/// the segment's max timestamp would come from the batches after the last
/// offset-index entry only (109 here, not 5000), and `offset_for_timestamp` would
/// skip the segment.
#[test]
fn empty_time_index_of_a_trusted_segment_is_not_trusted() {
    check(None, Some(Damage::KeepEntries(0)));
}

/// The same with a `.timeindex` cut after its first entry, `(200, 1)`: that entry is
/// genuine (the batch at offset 1 does have max timestamp 200), so a check of the
/// last entry alone passes, yet the segment's max timestamp comes out as 200.
#[test]
fn time_index_cut_to_a_prefix_is_not_trusted() {
    check(None, Some(Damage::KeepEntries(1)));
}
