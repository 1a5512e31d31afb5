//! Idempotent producers: producer id allocation (InitProducerId) and, per partition,
//! the sequence state that lets the broker drop retried duplicates and refuse gaps.
//!
//! Kafka's rules, per (partition, producer id): a batch carries the producer epoch and
//! the sequence numbers of its first and last record. The broker keeps the last five
//! batches it appended for each producer; a batch equal to one of them is a retry and is
//! acknowledged with the offsets it got the first time, without being written again; a
//! batch that continues the last one (`first == last + 1`, wrapping at `i32::MAX`) is
//! appended; anything else is `OUT_OF_ORDER_SEQUENCE_NUMBER`. A newer epoch must start at
//! sequence 0; an older epoch is fenced.
//!
//! Not persisted: after a broker restart a producer id is unknown, and its next batch is
//! accepted at whatever sequence it carries (Kafka's lenient handling of a lost producer
//! state, KIP-360). Duplicates of batches that were in flight across the restart are
//! therefore not detected. Producer ids themselves never repeat: they are allocated in
//! blocks recorded in the data directory before use.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::BrokerError;

/// Kafka error codes this module returns.
pub mod codes {
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
}

/// How many recent batches per producer are remembered for duplicate detection
/// (`max.in.flight.requests.per.connection` may be at most 5 with idempotence).
const CACHED_BATCHES: usize = 5;
/// Producer ids reserved per write of the block file.
const ID_BLOCK: i64 = 1000;
const ID_BLOCK_FILE: &str = "producer-id-block";

/// The verdict on one batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceCheck {
    /// New data in order: append it, then `record` it.
    Append,
    /// A retry of a batch already appended at these offsets.
    Duplicate { base_offset: i64, last_offset: i64 },
    /// Refuse with this Kafka error code.
    Reject(i16),
}

#[derive(Clone, Copy, Debug)]
struct BatchEntry {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
    last_offset: i64,
}

#[derive(Debug)]
struct Producer {
    epoch: i16,
    batches: VecDeque<BatchEntry>,
}

/// Sequence state of every idempotent producer writing to one partition. The caller
/// holds it locked across check, append and record, so the three are atomic.
#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, Producer>,
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX { 0 } else { seq + 1 }
}

impl ProducerStates {
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    ) -> SequenceCheck {
        let Some(p) = self.producers.get(&producer_id) else {
            return SequenceCheck::Append;
        };
        if epoch < p.epoch {
            return SequenceCheck::Reject(codes::INVALID_PRODUCER_EPOCH);
        }
        if epoch > p.epoch {
            return if first_seq == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::Reject(codes::OUT_OF_ORDER_SEQUENCE_NUMBER)
            };
        }
        if let Some(b) = p
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
        {
            return SequenceCheck::Duplicate {
                base_offset: b.base_offset,
                last_offset: b.last_offset,
            };
        }
        match p.batches.back() {
            Some(last) if first_seq == next_seq(last.last_seq) => SequenceCheck::Append,
            None => SequenceCheck::Append,
            Some(_) => SequenceCheck::Reject(codes::OUT_OF_ORDER_SEQUENCE_NUMBER),
        }
    }

    /// Remember an appended batch.
    pub fn record(
        &mut self,
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
        base_offset: i64,
        last_offset: i64,
    ) {
        let p = self.producers.entry(producer_id).or_insert(Producer {
            epoch,
            batches: VecDeque::new(),
        });
        if epoch != p.epoch {
            p.epoch = epoch;
            p.batches.clear();
        }
        if p.batches.len() == CACHED_BATCHES {
            p.batches.pop_front();
        }
        p.batches.push_back(BatchEntry {
            first_seq,
            last_seq,
            base_offset,
            last_offset,
        });
    }
}

/// Allocates producer ids that are unique across restarts of the broker.
#[derive(Debug)]
pub struct ProducerIds {
    path: PathBuf,
    state: Mutex<(i64, i64)>, // (next id, end of the reserved block)
}

impl ProducerIds {
    pub fn open(data_dir: &Path) -> Result<ProducerIds, BrokerError> {
        let path = data_dir.join(ID_BLOCK_FILE);
        let next = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse::<i64>()
                .map_err(|_| BrokerError::Metadata {
                    path: path.clone(),
                    reason: format!("expected a producer id, found {:?}", text.trim()),
                })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(BrokerError::io(&path, e)),
        };
        Ok(ProducerIds {
            path,
            state: Mutex::new((next, next)),
        })
    }

    /// A fresh producer id. Blocks briefly (a small synced file write) once per
    /// thousand ids.
    pub fn allocate(&self) -> Result<i64, BrokerError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.0 >= state.1 {
            let end = state.1 + ID_BLOCK;
            write_synced(&self.path, &end.to_string())?;
            state.1 = end;
        }
        let id = state.0;
        state.0 += 1;
        Ok(id)
    }
}

fn write_synced(path: &Path, text: &str) -> Result<(), BrokerError> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| BrokerError::io(path, e))?;
    if let Some(dir) = path.parent() {
        crate::log::partition::sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_duplicates_gaps_and_epochs() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(7, 0, 0, 9), SequenceCheck::Append);
        s.record(7, 0, 0, 9, 100, 109);
        assert_eq!(s.check(7, 0, 10, 19), SequenceCheck::Append);
        s.record(7, 0, 10, 19, 110, 119);
        // A retry of either cached batch is a duplicate with its first offsets.
        assert_eq!(
            s.check(7, 0, 0, 9),
            SequenceCheck::Duplicate {
                base_offset: 100,
                last_offset: 109
            }
        );
        // A gap or a rewind is out of order.
        assert_eq!(
            s.check(7, 0, 25, 30),
            SequenceCheck::Reject(codes::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        assert_eq!(
            s.check(7, 0, 5, 12),
            SequenceCheck::Reject(codes::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        // An old epoch is fenced; a new one must start at 0.
        assert_eq!(
            s.check(7, -1, 20, 20),
            SequenceCheck::Reject(codes::INVALID_PRODUCER_EPOCH)
        );
        assert_eq!(
            s.check(7, 1, 20, 20),
            SequenceCheck::Reject(codes::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        assert_eq!(s.check(7, 1, 0, 0), SequenceCheck::Append);
        s.record(7, 1, 0, 0, 120, 120);
        assert_eq!(
            s.check(7, 0, 20, 20),
            SequenceCheck::Reject(codes::INVALID_PRODUCER_EPOCH)
        );
        // Only the last five batches are remembered; sequences wrap.
        let mut s = ProducerStates::default();
        let mut seq = i32::MAX - 3;
        s.record(1, 0, seq - 1, seq - 1, 0, 0);
        for i in 0..8 {
            assert_eq!(s.check(1, 0, seq, seq), SequenceCheck::Append, "{i}");
            s.record(1, 0, seq, seq, i + 1, i + 1);
            seq = next_seq(seq);
        }
        assert_eq!(seq, 4);
        assert!(matches!(
            s.check(1, 0, 3, 3),
            SequenceCheck::Duplicate { .. }
        ));
        assert_eq!(
            s.check(1, 0, i32::MAX - 3, i32::MAX - 3),
            SequenceCheck::Reject(codes::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
    }

    #[test]
    fn producer_ids_never_repeat_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let a = ProducerIds::open(dir.path()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| a.allocate().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        drop(a);
        let b = ProducerIds::open(dir.path()).unwrap();
        let next = b.allocate().unwrap();
        assert!(next > 2, "{next}");
        std::fs::write(dir.path().join(ID_BLOCK_FILE), "garbage").unwrap();
        let err = ProducerIds::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("producer-id-block"), "{err}");
    }
}
