//! Records as connectors see them (Kafka Connect's `SourceRecord` and `SinkRecord`), and
//! the encodings of their parts that cross the boundary: headers (`list<(str, Data)>`),
//! source partitions and offsets (`list<(str, value)>`), and the partitions, offsets and
//! source offset lookups that plugin calls and host callbacks exchange. Batches of records
//! cross as views ([`crate::view`]), not encoded.

use std::collections::BTreeMap;

use crate::data::{self, Data, Value};
use crate::wire::{self, DecodeError, Reader};

/// A source partition or source offset: where a source task's data came from and how far
/// it has read (Kafka Connect stores them as JSON in the offsets topic).
pub type OffsetMap = BTreeMap<String, Value>;

/// One record header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub key: String,
    pub value: Data,
}

/// A record produced by a source task.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    pub source_partition: OffsetMap,
    pub source_offset: OffsetMap,
    pub topic: String,
    /// The Kafka partition; `None` lets the worker's partitioner choose.
    pub partition: Option<i32>,
    pub key: Data,
    pub value: Data,
    /// Milliseconds since the epoch; `None` lets the worker stamp it.
    pub timestamp: Option<i64>,
    pub headers: Vec<Header>,
}

impl SourceRecord {
    /// A record for `topic` with no key, no source position, no headers.
    pub fn new(topic: impl Into<String>, value: Data) -> SourceRecord {
        SourceRecord {
            source_partition: OffsetMap::new(),
            source_offset: OffsetMap::new(),
            topic: topic.into(),
            partition: None,
            key: Data::null(),
            value,
            timestamp: None,
            headers: Vec::new(),
        }
    }

    pub fn with_key(mut self, key: Data) -> Self {
        self.key = key;
        self
    }

    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    pub fn with_timestamp(mut self, millis: i64) -> Self {
        self.timestamp = Some(millis);
        self
    }

    pub fn with_header(mut self, key: impl Into<String>, value: Data) -> Self {
        self.headers.push(Header {
            key: key.into(),
            value,
        });
        self
    }

    /// Where this record came from and the offset to resume after it.
    pub fn with_source(mut self, partition: OffsetMap, offset: OffsetMap) -> Self {
        self.source_partition = partition;
        self.source_offset = offset;
        self
    }
}

/// How a sink record's timestamp was set (Kafka's `TimestampType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    #[default]
    NoTimestamp,
    CreateTime,
    LogAppendTime,
}

/// A record delivered to a sink task.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Data,
    pub value: Data,
    pub timestamp: Option<i64>,
    pub timestamp_type: TimestampType,
    pub headers: Vec<Header>,
}

impl SinkRecord {
    /// A record at `topic`/`partition`/`offset` with no key, timestamp or headers.
    pub fn new(topic: impl Into<String>, partition: i32, offset: i64, value: Data) -> SinkRecord {
        SinkRecord {
            topic: topic.into(),
            partition,
            offset,
            key: Data::null(),
            value,
            timestamp: None,
            timestamp_type: TimestampType::NoTimestamp,
            headers: Vec::new(),
        }
    }

    pub fn with_key(mut self, key: Data) -> Self {
        self.key = key;
        self
    }

    pub fn with_timestamp(mut self, millis: i64, kind: TimestampType) -> Self {
        self.timestamp = Some(millis);
        self.timestamp_type = kind;
        self
    }

    pub fn with_header(mut self, key: impl Into<String>, value: Data) -> Self {
        self.headers.push(Header {
            key: key.into(),
            value,
        });
        self
    }

    /// The partition this record came from.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.topic.clone(), self.partition)
    }
}

/// A Kafka topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Offsets per partition: for a sink, the next offset to consume (Kafka's committed offset).
pub type Offsets = BTreeMap<TopicPartition, i64>;

/// Where the worker wrote a source record (Kafka's `RecordMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
}

/// Append headers (`list<(str, Data)>`).
pub fn encode_headers(headers: &[Header], out: &mut Vec<u8>) {
    wire::put_len(out, headers.len());
    for h in headers {
        wire::put_str(out, &h.key);
        data::encode_data(&h.value, out);
    }
}

/// Read what [`encode_headers`] wrote.
pub fn read_headers(r: &mut Reader<'_>) -> Result<Vec<Header>, DecodeError> {
    let n = r.count(6, "headers")?;
    let mut headers = Vec::with_capacity(n);
    for _ in 0..n {
        let key = r.string("header key")?;
        headers.push(Header {
            key,
            value: data::read_data(r)?,
        });
    }
    Ok(headers)
}

/// Append a source partition or offset map (`list<(str, value)>`).
#[inline]
pub fn put_offset_map(m: &OffsetMap, out: &mut Vec<u8>) {
    wire::put_len(out, m.len());
    for (k, v) in m {
        wire::put_str(out, k);
        data::encode_value(v, out);
    }
}

/// Read what [`put_offset_map`] wrote; a repeated key keeps the last value.
pub fn read_offset_map(r: &mut Reader<'_>) -> Result<OffsetMap, DecodeError> {
    let n = r.count(5, "offset map")?;
    let mut m = OffsetMap::new();
    for _ in 0..n {
        let k = r.string("offset map key")?;
        let v = data::read_value(r)?;
        m.insert(k, v);
    }
    Ok(m)
}

/// Encode a list of partitions (`list<(str, i32)>`).
pub fn encode_partitions(partitions: &[TopicPartition], out: &mut Vec<u8>) {
    wire::put_len(out, partitions.len());
    for tp in partitions {
        wire::put_str(out, &tp.topic);
        wire::put_i32(out, tp.partition);
    }
}

/// Decode what [`encode_partitions`] wrote.
pub fn decode_partitions(buf: &[u8]) -> Result<Vec<TopicPartition>, DecodeError> {
    let mut r = Reader::new(buf);
    let n = r.count(8, "partitions")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let topic = r.string("topic")?;
        let partition = r.i32("partition")?;
        out.push(TopicPartition { topic, partition });
    }
    r.finish("partitions")?;
    Ok(out)
}

/// Encode offsets per partition (`list<(str, i32, i64)>`).
pub fn encode_offsets(offsets: &Offsets, out: &mut Vec<u8>) {
    wire::put_len(out, offsets.len());
    for (tp, off) in offsets {
        wire::put_str(out, &tp.topic);
        wire::put_i32(out, tp.partition);
        wire::put_i64(out, *off);
    }
}

/// Decode what [`encode_offsets`] wrote.
pub fn decode_offsets(buf: &[u8]) -> Result<Offsets, DecodeError> {
    let mut r = Reader::new(buf);
    let n = r.count(16, "offsets")?;
    let mut out = Offsets::new();
    for _ in 0..n {
        let topic = r.string("topic")?;
        let partition = r.i32("partition")?;
        let offset = r.i64("offset")?;
        out.insert(TopicPartition { topic, partition }, offset);
    }
    r.finish("offsets")?;
    Ok(out)
}

/// Encode source partitions (`list<offset map>`), for a source task's offset lookup.
pub fn encode_offset_maps(maps: &[OffsetMap], out: &mut Vec<u8>) {
    wire::put_len(out, maps.len());
    for m in maps {
        put_offset_map(m, out);
    }
}

/// Decode what [`encode_offset_maps`] wrote.
pub fn decode_offset_maps(buf: &[u8]) -> Result<Vec<OffsetMap>, DecodeError> {
    let mut r = Reader::new(buf);
    let n = r.count(4, "offset maps")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(read_offset_map(&mut r)?);
    }
    r.finish("offset maps")?;
    Ok(out)
}

/// Encode the answer to an offset lookup: one `opt<offset map>` per partition asked about.
pub fn encode_opt_offset_maps(maps: &[Option<OffsetMap>], out: &mut Vec<u8>) {
    wire::put_len(out, maps.len());
    for m in maps {
        match m {
            None => wire::put_u8(out, 0),
            Some(m) => {
                wire::put_u8(out, 1);
                put_offset_map(m, out);
            }
        }
    }
}

/// Decode what [`encode_opt_offset_maps`] wrote.
pub fn decode_opt_offset_maps(buf: &[u8]) -> Result<Vec<Option<OffsetMap>>, DecodeError> {
    let mut r = Reader::new(buf);
    let n = r.count(1, "optional offset maps")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(if r.bool("offset map flag")? {
            Some(read_offset_map(&mut r)?)
        } else {
            None
        });
    }
    r.finish("optional offset maps")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::logical;

    fn source_record(i: i64) -> SourceRecord {
        SourceRecord::new("orders", Data::bytes(vec![i as u8; 100]))
            .with_key(Data::string(format!("k{i}")))
            .with_partition(3)
            .with_timestamp(1_700_000_000_000 + i)
            .with_header(
                "amount",
                Data::with_schema(
                    logical::decimal_schema(2),
                    logical::decimal_value(i as i128),
                )
                .unwrap(),
            )
            .with_source(
                [("file".to_string(), Value::from("/tmp/in.txt"))].into(),
                [("position".to_string(), Value::Int64(i))].into(),
            )
    }

    fn assert_prefixes_fail<T: std::fmt::Debug>(
        buf: &[u8],
        decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
    ) {
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut]).is_err(), "a {cut}-byte prefix decoded");
        }
        let mut longer = buf.to_vec();
        longer.push(0);
        assert!(decode(&longer).is_err(), "trailing bytes were accepted");
    }

    #[test]
    fn headers_partitions_and_offsets_round_trip() {
        let rec = source_record(1);
        let mut buf = Vec::new();
        encode_headers(&rec.headers, &mut buf);
        let read = |b: &[u8]| {
            let mut r = Reader::new(b);
            let h = read_headers(&mut r)?;
            r.finish("headers").map(|_| h)
        };
        assert_eq!(read(&buf).unwrap(), rec.headers);
        assert_prefixes_fail(&buf, read);

        let parts = vec![TopicPartition::new("a", 0), TopicPartition::new("b", 7)];
        buf.clear();
        encode_partitions(&parts, &mut buf);
        assert_eq!(decode_partitions(&buf).unwrap(), parts);
        assert_prefixes_fail(&buf, decode_partitions);

        let offsets: Offsets = parts.into_iter().zip([10, 20]).collect();
        buf.clear();
        encode_offsets(&offsets, &mut buf);
        assert_eq!(decode_offsets(&buf).unwrap(), offsets);
        assert_prefixes_fail(&buf, decode_offsets);
    }

    #[test]
    fn offset_lookups_round_trip() {
        let file = |name: &str| OffsetMap::from([("filename".to_string(), Value::from(name))]);
        let position = |p: i64| OffsetMap::from([("position".to_string(), Value::Int64(p))]);
        let partitions = vec![file("/a"), OffsetMap::new(), file("/b")];
        let mut buf = Vec::new();
        encode_offset_maps(&partitions, &mut buf);
        assert_eq!(decode_offset_maps(&buf).unwrap(), partitions);
        assert_prefixes_fail(&buf, decode_offset_maps);

        let answer = vec![Some(position(30)), None, Some(OffsetMap::new())];
        buf.clear();
        encode_opt_offset_maps(&answer, &mut buf);
        assert_eq!(decode_opt_offset_maps(&buf).unwrap(), answer);
        assert_prefixes_fail(&buf, decode_opt_offset_maps);

        // A flag other than 0 or 1 is an error, not a guess.
        buf.clear();
        wire::put_u32(&mut buf, 1);
        wire::put_u8(&mut buf, 2);
        assert!(decode_opt_offset_maps(&buf).is_err());
    }
}
