//! The sparse indexes of one segment, in Kafka's file formats.
//!
//! - Offset index (`.index`): 8-byte entries `(relative offset: u32, position: u32)`,
//!   big-endian, one per `index.interval.bytes` of batches: the base offset of a batch
//!   relative to the segment's base offset, and the batch's byte position in the `.log`.
//! - Time index (`.timeindex`): 12-byte entries `(timestamp: i64, relative offset: u32)`:
//!   the largest timestamp seen so far in the segment and the base offset of the batch
//!   where it was reached. Timestamps in entries only grow.
//!
//! Indexes are derived data. They are kept in memory, written out when a segment is
//! closed, and validated when read back; anything inconsistent is rebuilt from the
//! `.log` by the caller. This module does no I/O on `.log` files.

/// The offset index of one segment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetIndex {
    entries: Vec<(u32, u32)>,
}

/// The time index of one segment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeIndex {
    entries: Vec<(i64, u32)>,
}

impl OffsetIndex {
    pub const ENTRY_SIZE: usize = 8;

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[(u32, u32)] {
        &self.entries
    }

    /// Add an entry; ignored unless both offset and position move forward.
    pub fn push(&mut self, relative_offset: u32, position: u32) {
        if let Some(&(o, p)) = self.entries.last()
            && (relative_offset <= o || position <= p)
        {
            return;
        }
        self.entries.push((relative_offset, position));
    }

    /// The position of the last indexed batch whose base offset is at or below
    /// `relative_offset`; 0 (the segment start) when there is none.
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let idx = self.entries.partition_point(|&(o, _)| o <= relative_offset);
        if idx == 0 { 0 } else { self.entries[idx - 1].1 }
    }

    /// Drop entries at or past `position` (the log was truncated there).
    pub fn truncate_to_position(&mut self, position: u32) {
        let idx = self.entries.partition_point(|&(_, p)| p < position);
        self.entries.truncate(idx);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * Self::ENTRY_SIZE);
        for &(o, p) in &self.entries {
            out.extend_from_slice(&o.to_be_bytes());
            out.extend_from_slice(&p.to_be_bytes());
        }
        out
    }

    /// Decode an index file. `None` when it cannot be right for a log of `log_size`
    /// bytes: a partial entry, entries that do not grow, a position past the end.
    pub fn decode(bytes: &[u8], log_size: u64) -> Option<Self> {
        if !bytes.len().is_multiple_of(Self::ENTRY_SIZE) {
            return None;
        }
        let mut index = OffsetIndex {
            entries: Vec::with_capacity(bytes.len() / Self::ENTRY_SIZE),
        };
        for chunk in bytes.chunks_exact(Self::ENTRY_SIZE) {
            let o = u32::from_be_bytes(chunk[0..4].try_into().ok()?);
            let p = u32::from_be_bytes(chunk[4..8].try_into().ok()?);
            if u64::from(p) >= log_size {
                return None;
            }
            if let Some(&(lo, lp)) = index.entries.last()
                && (o <= lo || p <= lp)
            {
                return None;
            }
            index.entries.push((o, p));
        }
        Some(index)
    }
}

impl TimeIndex {
    pub const ENTRY_SIZE: usize = 12;

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[(i64, u32)] {
        &self.entries
    }

    /// The largest timestamp recorded, if any.
    pub fn max_timestamp(&self) -> Option<i64> {
        self.entries.last().map(|&(t, _)| t)
    }

    /// Add an entry; ignored unless the timestamp grows and the offset moves forward.
    pub fn push(&mut self, timestamp: i64, relative_offset: u32) {
        if let Some(&(t, o)) = self.entries.last()
            && (timestamp <= t || relative_offset <= o)
        {
            return;
        }
        self.entries.push((timestamp, relative_offset));
    }

    /// Where a search for the first record with timestamp >= `target` may start: the
    /// relative offset of the last entry whose timestamp is below `target` (every batch
    /// before it has only smaller timestamps), or 0.
    pub fn lookup(&self, target: i64) -> u32 {
        let idx = self.entries.partition_point(|&(t, _)| t < target);
        if idx == 0 { 0 } else { self.entries[idx - 1].1 }
    }

    /// Drop entries at or past `relative_offset`.
    pub fn truncate_to_offset(&mut self, relative_offset: u32) {
        let idx = self.entries.partition_point(|&(_, o)| o < relative_offset);
        self.entries.truncate(idx);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * Self::ENTRY_SIZE);
        for &(t, o) in &self.entries {
            out.extend_from_slice(&t.to_be_bytes());
            out.extend_from_slice(&o.to_be_bytes());
        }
        out
    }

    /// Decode a time index file; `None` when it is malformed or its offsets reach
    /// `next_relative_offset` (past the end of the segment it claims to index).
    pub fn decode(bytes: &[u8], next_relative_offset: u32) -> Option<Self> {
        if !bytes.len().is_multiple_of(Self::ENTRY_SIZE) {
            return None;
        }
        let mut index = TimeIndex {
            entries: Vec::with_capacity(bytes.len() / Self::ENTRY_SIZE),
        };
        for chunk in bytes.chunks_exact(Self::ENTRY_SIZE) {
            let t = i64::from_be_bytes(chunk[0..8].try_into().ok()?);
            let o = u32::from_be_bytes(chunk[8..12].try_into().ok()?);
            if o >= next_relative_offset {
                return None;
            }
            if let Some(&(lt, lo)) = index.entries.last()
                && (t <= lt || o <= lo)
            {
                return None;
            }
            index.entries.push((t, o));
        }
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_lookup_finds_the_last_entry_at_or_below() {
        let mut idx = OffsetIndex::default();
        idx.push(0, 0);
        idx.push(10, 4096);
        idx.push(20, 8200);
        idx.push(15, 9000); // offset went backwards: ignored
        assert_eq!(idx.len(), 3);
        assert_eq!(idx.lookup(0), 0);
        assert_eq!(idx.lookup(9), 0);
        assert_eq!(idx.lookup(10), 4096);
        assert_eq!(idx.lookup(19), 4096);
        assert_eq!(idx.lookup(1000), 8200);
        idx.truncate_to_position(8200);
        assert_eq!(idx.lookup(1000), 4096);
    }

    #[test]
    fn offset_index_round_trips_and_rejects_nonsense() {
        let mut idx = OffsetIndex::default();
        idx.push(0, 0);
        idx.push(7, 100);
        let bytes = idx.encode();
        assert_eq!(OffsetIndex::decode(&bytes, 200), Some(idx.clone()));
        assert_eq!(
            OffsetIndex::decode(&bytes, 100),
            None,
            "position past the log end"
        );
        assert_eq!(OffsetIndex::decode(&bytes[..5], 200), None, "partial entry");
        let mut backwards = bytes.clone();
        backwards.extend_from_slice(&3u32.to_be_bytes());
        backwards.extend_from_slice(&150u32.to_be_bytes());
        assert_eq!(OffsetIndex::decode(&backwards, 200), None);
    }

    #[test]
    fn time_lookup_starts_before_the_first_candidate() {
        let mut idx = TimeIndex::default();
        idx.push(1000, 0);
        idx.push(2000, 10);
        idx.push(1500, 20); // timestamp did not grow: ignored
        idx.push(3000, 30);
        assert_eq!(idx.max_timestamp(), Some(3000));
        assert_eq!(idx.lookup(500), 0);
        assert_eq!(idx.lookup(1000), 0);
        assert_eq!(idx.lookup(1001), 0);
        assert_eq!(idx.lookup(2500), 10);
        assert_eq!(idx.lookup(9999), 30);
        let bytes = idx.encode();
        assert_eq!(TimeIndex::decode(&bytes, 31), Some(idx.clone()));
        assert_eq!(TimeIndex::decode(&bytes, 30), None);
        idx.truncate_to_offset(10);
        assert_eq!(idx.max_timestamp(), Some(1000));
    }
}
