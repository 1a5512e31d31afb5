//! Committed offsets in the internal topic `__consumer_offsets`, in Kafka's format, and
//! their loading at startup.
//!
//! ## Record format (big-endian; strings are an int16 byte length then UTF-8)
//! ```text
//! key   v0/v1: int16 version, string group, string topic, int32 partition   (an offset)
//! key   v2:    int16 version, string group                                (group metadata)
//! value v0:    int16 version, int64 offset, string metadata, int64 timestamp
//! value v1:    int16 version, int64 offset, string metadata, int64 commit_ts, int64 expire_ts
//! value v2:    int16 version, int64 offset, string metadata, int64 commit_ts
//! value v3:    int16 version, int64 offset, int32 leader_epoch, string metadata, int64 commit_ts
//! null value:  a tombstone: the offset (or group) is deleted
//! ```
//! We write key v1 and value v3, or value v1 when the commit carried an explicit
//! retention (OffsetCommit v2-v4), exactly as Kafka does, so Kafka's tools can read the
//! topic. Group metadata records (key v2) are not written: after a restart members
//! rejoin and the group gets a new generation (see the module docs); when read they are
//! skipped, as are keys and values of versions this broker does not know.
//!
//! A group's offsets live in partition `abs(java_hash(group)) % partitions`, Kafka's
//! `Utils.abs(groupId.hashCode) % offsets.topic.num.partitions`.

use std::collections::{BTreeMap, HashMap};

use crate::broker::TopicStore;
use crate::log::batch::{self, BatchIter};
use crate::log::segment::MAX_BATCH_BYTES;

use super::GroupError;

/// The internal topic's name.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

const KEY_OFFSET_V0: i16 = 0;
const KEY_OFFSET_V1: i16 = 1;
const VALUE_V1: i16 = 1;
const VALUE_V3: i16 = 3;
/// How much one read of the offsets log asks for while loading.
const LOAD_READ_BYTES: usize = 1 << 20;

/// A committed offset as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Committed {
    pub offset: i64,
    /// -1 when the client gave none.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// Set only by OffsetCommit v2-v4 with an explicit retention time.
    pub expire_timestamp: Option<i64>,
}

/// (topic, partition) -> committed offset.
pub(super) type Offsets = BTreeMap<(String, i32), Committed>;

/// Java's `String.hashCode`: over UTF-16 code units, `h = 31 * h + c`, wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition that holds `group_id`'s offsets (Kafka's
/// `Utils.abs`, which maps `i32::MIN` to 0, then modulo).
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let h = java_string_hash(group_id);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

fn put_string(out: &mut Vec<u8>, s: &str) -> Option<()> {
    let len = i16::try_from(s.len()).ok()?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Some(())
}

/// The key of an offset record; `None` if a string does not fit an int16 length.
pub(super) fn encode_key(group: &str, topic: &str, partition: i32) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(10 + group.len() + topic.len());
    out.extend_from_slice(&KEY_OFFSET_V1.to_be_bytes());
    put_string(&mut out, group)?;
    put_string(&mut out, topic)?;
    out.extend_from_slice(&partition.to_be_bytes());
    Some(out)
}

/// The value of an offset record: v3, or v1 when it carries an expire timestamp.
pub(super) fn encode_value(c: &Committed) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(32 + c.metadata.len());
    match c.expire_timestamp {
        None => {
            out.extend_from_slice(&VALUE_V3.to_be_bytes());
            out.extend_from_slice(&c.offset.to_be_bytes());
            out.extend_from_slice(&c.leader_epoch.to_be_bytes());
            put_string(&mut out, &c.metadata)?;
            out.extend_from_slice(&c.commit_timestamp.to_be_bytes());
        }
        Some(expire) => {
            out.extend_from_slice(&VALUE_V1.to_be_bytes());
            out.extend_from_slice(&c.offset.to_be_bytes());
            put_string(&mut out, &c.metadata)?;
            out.extend_from_slice(&c.commit_timestamp.to_be_bytes());
            out.extend_from_slice(&expire.to_be_bytes());
        }
    }
    Some(out)
}

/// A cursor over a record key or value.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(format!(
                "needs {n} bytes at byte {} of {}",
                self.pos,
                self.buf.len()
            ));
        };
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn i16(&mut self) -> Result<i16, String> {
        self.array().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, String> {
        self.array().map(i32::from_be_bytes)
    }

    fn i64(&mut self) -> Result<i64, String> {
        self.array().map(i64::from_be_bytes)
    }

    fn string(&mut self) -> Result<String, String> {
        let len = self.i16()?;
        let len = usize::try_from(len).map_err(|_| format!("negative string length {len}"))?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "string is not UTF-8".to_owned())
    }
}

/// What a record key names.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Key {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    /// Group metadata (v2) or a version this broker does not know.
    Other(i16),
}

pub(super) fn decode_key(key: &[u8]) -> Result<Key, String> {
    let mut r = Reader { buf: key, pos: 0 };
    let version = r.i16()?;
    match version {
        KEY_OFFSET_V0 | KEY_OFFSET_V1 => Ok(Key::Offset {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
        }),
        other => Ok(Key::Other(other)),
    }
}

/// A value; `Ok(None)` for a version this broker does not know.
pub(super) fn decode_value(value: &[u8]) -> Result<Option<Committed>, String> {
    let mut r = Reader { buf: value, pos: 0 };
    let version = r.i16()?;
    let c = match version {
        0 | 2 => Committed {
            offset: r.i64()?,
            leader_epoch: -1,
            metadata: r.string()?,
            commit_timestamp: r.i64()?,
            expire_timestamp: None,
        },
        1 => Committed {
            offset: r.i64()?,
            leader_epoch: -1,
            metadata: r.string()?,
            commit_timestamp: r.i64()?,
            expire_timestamp: Some(r.i64()?).filter(|&t| t >= 0),
        },
        3 => Committed {
            offset: r.i64()?,
            leader_epoch: r.i32()?,
            metadata: r.string()?,
            commit_timestamp: r.i64()?,
            expire_timestamp: None,
        },
        _ => return Ok(None),
    };
    Ok(Some(c))
}

/// Read every partition of the offsets topic up to its high watermark and return each
/// group's offsets: the latest record per key wins and a tombstone deletes. Blocking.
pub(super) fn load(
    store: &TopicStore,
    partitions: i32,
) -> Result<HashMap<String, Offsets>, GroupError> {
    let mut groups: HashMap<String, Offsets> = HashMap::new();
    let mut records = 0u64;
    for p in 0..partitions {
        let log = store
            .partition(OFFSETS_TOPIC, p)
            .ok_or(GroupError::MissingPartition { partition: p })?;
        let hw = log.high_watermark();
        let mut next = log.log_start_offset();
        while next < hw {
            let read =
                log.read(next, LOAD_READ_BYTES, true)
                    .map_err(|source| GroupError::Read {
                        partition: p,
                        offset: next,
                        source,
                    })?;
            let start = next;
            for item in BatchIter::new(&read.records) {
                let Ok((pos, header)) = item else {
                    // A short last batch: read again from where we are.
                    break;
                };
                if header.last_offset() < next {
                    continue;
                }
                let bytes = &read.records[pos..pos + header.size()];
                if !header.is_control() {
                    let (_, recs) =
                        batch::decode_records(bytes, MAX_BATCH_BYTES).map_err(|source| {
                            GroupError::Batch {
                                partition: p,
                                offset: header.base_offset,
                                source,
                            }
                        })?;
                    for rec in recs.iter().filter(|r| r.offset >= next && r.offset < hw) {
                        let bad = |reason: String| GroupError::Record {
                            partition: p,
                            offset: rec.offset,
                            reason,
                        };
                        let Some(key) = rec.key.as_deref() else {
                            return Err(bad("the record has no key".into()));
                        };
                        let Key::Offset {
                            group,
                            topic,
                            partition,
                        } = decode_key(key).map_err(|e| bad(format!("key: {e}")))?
                        else {
                            continue;
                        };
                        records += 1;
                        match rec.value.as_deref() {
                            None => {
                                if let Some(offsets) = groups.get_mut(&group) {
                                    offsets.remove(&(topic, partition));
                                    if offsets.is_empty() {
                                        groups.remove(&group);
                                    }
                                }
                            }
                            Some(v) => {
                                match decode_value(v).map_err(|e| bad(format!("value: {e}")))? {
                                    Some(c) => {
                                        groups
                                            .entry(group)
                                            .or_default()
                                            .insert((topic, partition), c);
                                    }
                                    None => tracing::warn!(
                                        partition = p,
                                        offset = rec.offset,
                                        "skipping an offset value of a newer format"
                                    ),
                                }
                            }
                        }
                    }
                }
                next = header.last_offset() + 1;
            }
            if next == start {
                return Err(GroupError::Stalled {
                    partition: p,
                    offset: next,
                    high_watermark: hw,
                });
            }
        }
    }
    tracing::info!(
        groups = groups.len(),
        records,
        partitions,
        "loaded committed offsets"
    );
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_and_partition_match_kafka() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        // A non-BMP character counts as two UTF-16 units, as in Java.
        assert_eq!(java_string_hash("\u{1F600}"), 0xD83D * 31 + 0xDE00);
        // The well-known string whose Java hash is Integer.MIN_VALUE: Utils.abs gives 0.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // Negative hashes use the absolute value, not the two's complement bits.
        let h = java_string_hash("my-group-7");
        assert_eq!(partition_for("my-group-7", 50), h.abs() % 50);
        assert_eq!(partition_for("anything", 1), 0);
    }

    #[test]
    fn records_match_kafkas_bytes() {
        let key = encode_key("g", "t", 7).unwrap();
        assert_eq!(key, [0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 7]);
        let c = Committed {
            offset: 42,
            leader_epoch: 5,
            metadata: "m".into(),
            commit_timestamp: 1000,
            expire_timestamp: None,
        };
        let value = encode_value(&c).unwrap();
        let mut expected = vec![0, 3];
        expected.extend_from_slice(&42i64.to_be_bytes());
        expected.extend_from_slice(&5i32.to_be_bytes());
        expected.extend_from_slice(&[0, 1, b'm']);
        expected.extend_from_slice(&1000i64.to_be_bytes());
        assert_eq!(value, expected);
        assert_eq!(decode_value(&value).unwrap(), Some(c.clone()));
        assert_eq!(
            decode_key(&key).unwrap(),
            Key::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 7
            }
        );

        let expiring = Committed {
            expire_timestamp: Some(5000),
            leader_epoch: -1,
            ..c
        };
        let v1 = encode_value(&expiring).unwrap();
        assert_eq!(&v1[..2], &[0, 1]);
        assert_eq!(v1.len(), 2 + 8 + 3 + 8 + 8);
        assert_eq!(decode_value(&v1).unwrap(), Some(expiring));

        // v0 and v2 carry no leader epoch.
        let mut v2 = vec![0, 2];
        v2.extend_from_slice(&9i64.to_be_bytes());
        v2.extend_from_slice(&[0, 0]);
        v2.extend_from_slice(&77i64.to_be_bytes());
        let d = decode_value(&v2).unwrap().unwrap();
        assert_eq!((d.offset, d.leader_epoch, d.commit_timestamp), (9, -1, 77));

        assert_eq!(decode_key(&[0, 2, 0, 1, b'g']).unwrap(), Key::Other(2));
        assert_eq!(decode_value(&[0, 9, 1, 2]).unwrap(), None);
        for bad in [&[0u8][..], &[0, 1, 0, 5, b'g'], &[0, 1, 0xff, 0xff]] {
            assert!(decode_key(bad).is_err(), "{bad:?}");
        }
        assert!(decode_value(&[0, 3, 0, 0]).is_err());
        assert!(encode_key(&"x".repeat(40_000), "t", 0).is_none());
    }
}
