//! SIGKILL crash tests: the real binary (`tributary debug crash-writer`) appends to a
//! partition log until it is killed at a random moment; the test then opens the log
//! itself and checks that everything acknowledged survived, intact and in order, and
//! that recovery cut any torn tail exactly where the valid data ends.
//!
//! Each test kills the same directory over and over, so later runs also recover from
//! what earlier recoveries left. With `flush.messages=1` every acknowledgement is
//! durable, so the tests also simulate what a power loss can leave at the end of the
//! active segment (garbage, a half-written batch, a batch with a bad CRC, zeroes) and
//! require the same guarantees.

use std::path::Path;
use std::time::{Duration, Instant};

use tributary::debug::{CRASH_BASE_TIMESTAMP, CRASH_VALUE_PERIOD};
use tributary::log::PartitionLog;
use tributary::log::batch::{self, BatchBuilder, BatchIter, Record};
use tributary::log::compression::Compression;

use crate::support::{CrashWriter, Killed, Rng, log_config, read_all, segment_files, test_seed};

/// How long to wait for the acknowledgements a run is meant to see before killing it
/// anyway; only reached on a very slow machine.
const ACK_DEADLINE: Duration = Duration::from_secs(5);

/// Longest value filler the checker can verify (the writer uses at most 300 KiB).
const MAX_FILLER: usize = 1 << 20;

/// What to do to the active segment after a kill, before recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tamper {
    /// Nothing: only what the kill itself left.
    Nothing,
    /// Random bytes after the last batch.
    Garbage,
    /// The first part of a batch that would have come next.
    PartialBatch,
    /// A whole next batch whose bytes do not match its CRC (a torn sector).
    BadCrc,
    /// Zeroes, as a file system may leave after extending a file it never wrote.
    Zeros,
}

#[test]
fn sigkill_keeps_every_acknowledged_append() {
    run_kills("default flush", None, 30, &[Tamper::Nothing]);
}

#[test]
fn sigkill_and_torn_tails_keep_every_durable_append() {
    run_kills(
        "flush.messages=1",
        Some(1),
        30,
        &[
            Tamper::Nothing,
            Tamper::Garbage,
            Tamper::PartialBatch,
            Tamper::BadCrc,
        ],
    );
}

#[test]
fn zero_filled_tail_is_treated_as_torn() {
    run_kills(
        "flush.messages=1, zero-filled tails",
        Some(1),
        10,
        &[Tamper::Zeros],
    );
}

/// Kill a writer on one directory `iterations` times, applying a random one of
/// `tampers` after each kill, and check the log after each.
fn run_kills(name: &str, flush_messages: Option<u64>, iterations: usize, tampers: &[Tamper]) {
    let seed = test_seed();
    println!("{name}: TRIBUTARY_TEST_SEED={seed}");
    let mut rng = Rng::new(seed);
    let filler: Vec<u8> = (0..MAX_FILLER + CRASH_VALUE_PERIOD)
        .map(|j| (j % CRASH_VALUE_PERIOD) as u8)
        .collect();
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("partition-0");
    // The highest offset acknowledged so far, and the log end offset the last check saw.
    let mut acked: i64 = -1;
    let mut leo: i64 = 0;
    let mut total_acks = 0;
    let mut damaged = 0;
    for run in 0..iterations {
        let ctx = format!("{name}, seed {seed}, run {run}");
        let segment_bytes = [64 << 10, 256 << 10, 1 << 20][rng.below(3) as usize];
        let want = if rng.below(8) == 0 {
            0
        } else {
            rng.between(1, 40) as usize
        };
        let mut writer = CrashWriter::spawn(&dir, flush_messages, segment_bytes, rng.next_u64());
        writer.wait_for_acks(want, Instant::now() + ACK_DEADLINE);
        let killed = writer.kill();
        check_killed(&killed, &ctx);
        for (i, &(base, last)) in killed.acks.iter().enumerate() {
            let expected_base = if i == 0 {
                leo
            } else {
                killed.acks[i - 1].1 + 1
            };
            assert_eq!(
                base, expected_base,
                "{ctx}: acknowledgements {:?} do not continue the log end offset {leo}",
                killed.acks
            );
            assert!(last >= base, "{ctx}: ack {base} {last}");
        }
        if let Some(&(_, last)) = killed.acks.last() {
            acked = last;
        }
        total_acks += killed.acks.len();

        let tamper = tampers[rng.below(tampers.len() as u64) as usize];
        let active = segment_files(&dir).pop();
        // Recovery must cut the active segment exactly where its valid batches end.
        let valid_end = active.as_deref().map(|path| {
            let end = valid_prefix(&std::fs::read(path).expect("read the active segment"));
            if tamper != Tamper::Nothing {
                damage(path, tamper, &mut rng);
                damaged += 1;
            }
            (path.to_path_buf(), end)
        });

        let log = open_and_check(
            &dir,
            acked,
            &filler,
            &mut rng,
            &format!("{ctx}, {tamper:?}"),
        );
        if let Some((path, end)) = valid_end {
            let len = std::fs::metadata(&path).expect("active segment").len();
            assert_eq!(
                len,
                end,
                "{ctx}, {tamper:?}: recovery left {} with {len} bytes, but its valid batches end at {end}",
                path.display()
            );
        }
        leo = log.log_end_offset();
        // Let the next writer find a cleanly closed log most of the time, and an
        // unclean one (no recovery point at the end) otherwise.
        if rng.below(4) != 0 {
            log.close().unwrap_or_else(|e| panic!("{ctx}: close: {e}"));
        }
        drop(log);
    }
    assert!(
        total_acks > 0,
        "{name}, seed {seed}: no run acknowledged anything"
    );
    let tampered = tampers.iter().any(|&t| t != Tamper::Nothing);
    assert!(
        damaged > 0 || !tampered,
        "{name}, seed {seed}: no run damaged the log"
    );
    assert!(
        acked >= 0 && leo > acked,
        "{name}, seed {seed}: acked {acked}, log end {leo}"
    );
}

fn check_killed(killed: &Killed, ctx: &str) {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        killed.status.signal(),
        Some(libc::SIGKILL),
        "{ctx}: the writer was not running when killed ({}); stderr:\n{}",
        killed.status,
        killed.stderr
    );
}

/// Open the log as recovery leaves it and check it against the content contract of
/// `tributary::debug`: offsets dense from 0, every acknowledged offset present, every
/// record's key, value and timestamp as the writer made them, nothing unreadable.
fn open_and_check(dir: &Path, acked: i64, filler: &[u8], rng: &mut Rng, ctx: &str) -> PartitionLog {
    let log = PartitionLog::open(dir, log_config(&[]))
        .unwrap_or_else(|e| panic!("{ctx}: recovery failed: {e}"));
    let stats = log.stats();
    assert_eq!(stats.log_start_offset, 0, "{ctx}: {stats:?}");
    assert_eq!(
        stats.high_watermark, stats.log_end_offset,
        "{ctx}: {stats:?}"
    );
    assert!(
        stats.log_end_offset > acked,
        "{ctx}: offset {acked} was acknowledged but the log ends at {}",
        stats.log_end_offset
    );
    let batches = read_all(&log).unwrap_or_else(|e| panic!("{ctx}: reading the log back: {e}"));
    let mut next = 0;
    for b in &batches {
        for (i, rec) in b.records.iter().enumerate() {
            assert_eq!(
                rec.offset,
                b.header.base_offset + i as i64,
                "{ctx}: batch {}..={} has a gap",
                b.header.base_offset,
                b.header.last_offset()
            );
            if let Err(why) = check_record(rec, filler) {
                panic!("{ctx}: offset {}: {why}", rec.offset);
            }
        }
        next = b.header.last_offset() + 1;
    }
    assert_eq!(next, stats.log_end_offset, "{ctx}: read back up to {next}");
    if next > 0 {
        // The time index survives recovery too: each record's timestamp finds it.
        let o = rng.below(next as u64) as i64;
        let ts = CRASH_BASE_TIMESTAMP + o;
        assert_eq!(
            log.offset_for_timestamp(ts)
                .unwrap_or_else(|e| panic!("{ctx}: offset_for_timestamp({ts}): {e}")),
            Some((o, ts)),
            "{ctx}"
        );
    }
    log
}

/// The record at offset `o` as `tributary debug crash-writer` documents it.
fn check_record(rec: &Record, filler: &[u8]) -> Result<(), String> {
    let o = rec.offset;
    if rec.timestamp != CRASH_BASE_TIMESTAMP + o {
        return Err(format!("timestamp {}", rec.timestamp));
    }
    let key = (o % 4 != 3).then(|| o.to_string());
    if rec.key.as_deref() != key.as_deref().map(str::as_bytes) {
        return Err(format!("key {:?}, expected {key:?}", rec.key));
    }
    if !rec.headers.is_empty() {
        return Err(format!("headers {:?}", rec.headers));
    }
    let value = rec.value.as_deref().ok_or("null value")?;
    let (prefix, rest) = value
        .split_at_checked(8)
        .ok_or_else(|| format!("value of {} bytes", value.len()))?;
    if prefix != o.to_be_bytes() {
        return Err(format!("value starts with {prefix:?}"));
    }
    let phase = o as usize % CRASH_VALUE_PERIOD;
    if rest.len() > MAX_FILLER || rest != &filler[phase..phase + rest.len()] {
        return Err(format!("value filler of {} bytes differs", rest.len()));
    }
    Ok(())
}

/// Where the run of whole, CRC-valid batches at the start of a segment file ends.
fn valid_prefix(bytes: &[u8]) -> u64 {
    let mut end = 0;
    for item in BatchIter::new(bytes) {
        let Ok((pos, header)) = item else { break };
        if batch::verify_crc(&bytes[pos..pos + header.size()]).is_err() {
            break;
        }
        end = pos + header.size();
    }
    end as u64
}

/// The offset after the last valid batch of a segment file (its base when empty).
fn next_offset(path: &Path, bytes: &[u8]) -> i64 {
    let base = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(tributary::log::segment::parse_log_file_name)
        .expect("a segment file name");
    let end = valid_prefix(bytes) as usize;
    BatchIter::new(&bytes[..end])
        .filter_map(Result::ok)
        .last()
        .map_or(base, |(_, h)| h.last_offset() + 1)
}

/// Append what a torn write might leave to the end of the segment file at `path`.
fn damage(path: &Path, tamper: Tamper, rng: &mut Rng) {
    let bytes = std::fs::read(path).expect("read the active segment");
    let tail: Vec<u8> = match tamper {
        Tamper::Nothing => Vec::new(),
        Tamper::Garbage => {
            let n = rng.between(1, 4096) as usize;
            rng.bytes(n)
        }
        Tamper::Zeros => {
            // Shorter than a header, exactly one, and many.
            let n = [
                rng.between(1, 60),
                61,
                rng.between(62, 4096),
                rng.between(4096, 256 << 10),
            ][rng.below(4) as usize] as usize;
            vec![0; n]
        }
        Tamper::PartialBatch | Tamper::BadCrc => {
            let mut next = next_batch(next_offset(path, &bytes), rng);
            if tamper == Tamper::PartialBatch {
                let keep = rng.between(1, next.len() as u64 - 1) as usize;
                next.truncate(keep);
            } else {
                // Attributes onwards is what the CRC covers.
                let at = rng.between(21, next.len() as u64 - 1) as usize;
                next[at] ^= 1 << rng.below(8);
            }
            next
        }
    };
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open the active segment");
    std::io::Write::write_all(&mut file, &tail).expect("damage the active segment");
}

/// A batch as the writer would have appended it next, at offset `base`.
fn next_batch(base: i64, rng: &mut Rng) -> Vec<u8> {
    let mut builder = BatchBuilder::new(Compression::None);
    for o in base..base + rng.between(1, 5) as i64 {
        let mut value = o.to_be_bytes().to_vec();
        let n = rng.below(200) as usize;
        value.extend(rng.bytes(n));
        builder.push(CRASH_BASE_TIMESTAMP + o, None, Some(&value), &[]);
    }
    let mut bytes = builder.build().expect("build a batch");
    batch::set_base_offset(&mut bytes, base);
    bytes
}
