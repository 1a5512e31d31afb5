//! Records as connectors see them (Kafka Connect's `SourceRecord` and `SinkRecord`), and
//! their batch encoding: batches cross the boundary, not single records.
//!
//! A batch is one contiguous buffer: a `u32` record count, then each record as a `u32`
//! length followed by its body (so a reader can skip or slice records without decoding
//! them). Bodies, in [`crate::wire`] notation:
//!
//! - source: `str` topic, `opt<i32>` partition, `opt<i64>` timestamp, key [`Data`], value
//!   [`Data`], `list<(str, Data)>` headers, source partition and source offset as
//!   `list<(str, value)>`;
//! - sink: `str` topic, `i32` partition, `i64` offset, `opt<i64>` timestamp, `u8` timestamp
//!   type, key, value, headers.
//!
//! Also here: the smaller encodings of partitions, offsets and source offset lookups that
//! plugin calls and host callbacks exchange.

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

#[inline]
fn put_headers(headers: &[Header], out: &mut Vec<u8>) {
    wire::put_len(out, headers.len());
    for h in headers {
        wire::put_str(out, &h.key);
        data::encode_data(&h.value, out);
    }
}

/// Read headers into `headers`, replacing what it held.
#[inline]
fn read_headers_into(r: &mut Reader<'_>, headers: &mut Vec<Header>) -> Result<(), DecodeError> {
    let n = r.count(6, "headers")?;
    *headers = Vec::with_capacity(n);
    for _ in 0..n {
        headers.push(Header {
            key: r.string("header key")?,
            value: Data::null(),
        });
        if let Some(h) = headers.last_mut() {
            data::read_data_into(r, &mut h.value)?;
        }
    }
    Ok(())
}

#[inline]
fn put_offset_map(m: &OffsetMap, out: &mut Vec<u8>) {
    wire::put_len(out, m.len());
    for (k, v) in m {
        wire::put_str(out, k);
        data::encode_value(v, out);
    }
}

fn read_offset_map(r: &mut Reader<'_>) -> Result<OffsetMap, DecodeError> {
    let mut m = OffsetMap::new();
    read_offset_map_into(r, &mut m)?;
    Ok(m)
}

/// Read an offset map into `m`, replacing what it held.
#[inline]
fn read_offset_map_into(r: &mut Reader<'_>, m: &mut OffsetMap) -> Result<(), DecodeError> {
    let n = r.count(5, "offset map")?;
    m.clear();
    for _ in 0..n {
        let k = r.string("offset map key")?;
        // In place, as `insert` would: a repeated key keeps the last value.
        data::read_value_in_place(r, m.entry(k).or_insert(Value::Null))?;
    }
    Ok(())
}

/// Append a body with its `u32` length in front.
fn put_framed(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    wire::put_u32(out, 0);
    body(out);
    let len = out.len() - at - 4;
    let len =
        u32::try_from(len).expect("a record of 4 GiB or more cannot cross the plugin boundary");
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// Read a `u32`-length-framed body with `f`, which must consume it exactly.
fn read_framed<T>(
    r: &mut Reader<'_>,
    what: &'static str,
    f: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let start = r.position();
    let body = r.bytes(what)?;
    let mut inner = Reader::new(body);
    let v = f(&mut inner).map_err(|e| DecodeError {
        what: e.what,
        at: start + 4 + e.at,
    })?;
    inner.finish(what).map_err(|e| DecodeError {
        what,
        at: start + 4 + e.at,
    })?;
    Ok(v)
}

/// Read a `u32`-length-framed record body into a new last element of `out`, which `read`
/// fills in place (a record is 400-odd bytes: built elsewhere and moved in, it would be
/// copied several times over). `read` must consume the body exactly. On an error the
/// partly filled record stays in `out`, which the caller then drops.
fn push_framed<T>(
    r: &mut Reader<'_>,
    what: &'static str,
    out: &mut Vec<T>,
    blank: fn() -> T,
    read: fn(&mut Reader<'_>, &mut T) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let start = r.position();
    let body = r.bytes(what)?;
    let mut inner = Reader::new(body);
    out.push(blank());
    let Some(rec) = out.last_mut() else {
        return Err(r.error(what));
    };
    read(&mut inner, rec).map_err(|e| DecodeError {
        what: e.what,
        at: start + 4 + e.at,
    })?;
    inner.finish(what).map_err(|e| DecodeError {
        what,
        at: start + 4 + e.at,
    })
}

/// Append one source record's body.
pub fn encode_source_record(rec: &SourceRecord, out: &mut Vec<u8>) {
    wire::put_str(out, &rec.topic);
    match rec.partition {
        None => wire::put_u8(out, 0),
        Some(p) => {
            wire::put_u8(out, 1);
            wire::put_i32(out, p);
        }
    }
    wire::put_opt_i64(out, rec.timestamp);
    data::encode_data(&rec.key, out);
    data::encode_data(&rec.value, out);
    put_headers(&rec.headers, out);
    put_offset_map(&rec.source_partition, out);
    put_offset_map(&rec.source_offset, out);
}

/// A source record with every field empty (no allocation): what decoding fills in.
fn blank_source_record() -> SourceRecord {
    SourceRecord::new(String::new(), Data::null())
}

/// Read one source record's body.
pub fn read_source_record(r: &mut Reader<'_>) -> Result<SourceRecord, DecodeError> {
    let mut rec = blank_source_record();
    read_source_record_into(r, &mut rec)?;
    Ok(rec)
}

/// Read one source record's body into `rec`, replacing every field.
fn read_source_record_into(r: &mut Reader<'_>, rec: &mut SourceRecord) -> Result<(), DecodeError> {
    r.string_into("topic", &mut rec.topic)?;
    rec.partition = if r.bool("partition flag")? {
        Some(r.i32("partition")?)
    } else {
        None
    };
    rec.timestamp = r.opt_i64("timestamp")?;
    data::read_data_into(r, &mut rec.key)?;
    data::read_data_into(r, &mut rec.value)?;
    read_headers_into(r, &mut rec.headers)?;
    read_offset_map_into(r, &mut rec.source_partition)?;
    read_offset_map_into(r, &mut rec.source_offset)
}

/// Encode a batch of source records (replacing `out`'s contents is the caller's choice:
/// this appends).
pub fn encode_source_batch(records: &[SourceRecord], out: &mut Vec<u8>) {
    wire::put_len(out, records.len());
    for rec in records {
        put_framed(out, |out| encode_source_record(rec, out));
    }
}

/// Decode a buffer holding exactly one batch of source records.
pub fn decode_source_batch(buf: &[u8]) -> Result<Vec<SourceRecord>, DecodeError> {
    let mut r = Reader::new(buf);
    let n = r.count(4, "source batch")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        push_framed(
            &mut r,
            "source record",
            &mut out,
            blank_source_record,
            read_source_record_into,
        )?;
    }
    r.finish("source batch")?;
    Ok(out)
}

/// Append one sink record's body.
pub fn encode_sink_record(rec: &SinkRecord, out: &mut Vec<u8>) {
    wire::put_str(out, &rec.topic);
    wire::put_i32(out, rec.partition);
    wire::put_i64(out, rec.offset);
    wire::put_opt_i64(out, rec.timestamp);
    wire::put_u8(
        out,
        match rec.timestamp_type {
            TimestampType::NoTimestamp => 0,
            TimestampType::CreateTime => 1,
            TimestampType::LogAppendTime => 2,
        },
    );
    data::encode_data(&rec.key, out);
    data::encode_data(&rec.value, out);
    put_headers(&rec.headers, out);
}

/// A sink record with every field empty (no allocation): what decoding fills in.
fn blank_sink_record() -> SinkRecord {
    SinkRecord::new(String::new(), 0, 0, Data::null())
}

/// Read one sink record's body.
pub fn read_sink_record(r: &mut Reader<'_>) -> Result<SinkRecord, DecodeError> {
    let mut rec = blank_sink_record();
    read_sink_record_into(r, &mut rec)?;
    Ok(rec)
}

/// Read one sink record's body into `rec`, replacing every field.
fn read_sink_record_into(r: &mut Reader<'_>, rec: &mut SinkRecord) -> Result<(), DecodeError> {
    r.string_into("topic", &mut rec.topic)?;
    rec.partition = r.i32("partition")?;
    rec.offset = r.i64("offset")?;
    rec.timestamp = r.opt_i64("timestamp")?;
    let at = r.position();
    rec.timestamp_type = match r.u8("timestamp type")? {
        0 => TimestampType::NoTimestamp,
        1 => TimestampType::CreateTime,
        2 => TimestampType::LogAppendTime,
        _ => {
            return Err(DecodeError {
                what: "timestamp type",
                at,
            });
        }
    };
    data::read_data_into(r, &mut rec.key)?;
    data::read_data_into(r, &mut rec.value)?;
    read_headers_into(r, &mut rec.headers)
}

/// Encode a batch of sink records (appends to `out`).
pub fn encode_sink_batch(records: &[SinkRecord], out: &mut Vec<u8>) {
    wire::put_len(out, records.len());
    for rec in records {
        put_framed(out, |out| encode_sink_record(rec, out));
    }
}

/// Decode a buffer holding exactly one batch of sink records.
pub fn decode_sink_batch(buf: &[u8]) -> Result<Vec<SinkRecord>, DecodeError> {
    let mut r = Reader::new(buf);
    let n = r.count(4, "sink batch")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        push_framed(
            &mut r,
            "sink record",
            &mut out,
            blank_sink_record,
            read_sink_record_into,
        )?;
    }
    r.finish("sink batch")?;
    Ok(out)
}

/// Encode source records the worker is done with, each with where it was written (`None`
/// if it was filtered out before reaching a topic), for `SourceTask::commit_record`.
pub fn encode_committed_records(
    records: &[(SourceRecord, Option<RecordMetadata>)],
    out: &mut Vec<u8>,
) {
    wire::put_len(out, records.len());
    for (rec, meta) in records {
        put_framed(out, |out| encode_source_record(rec, out));
        match meta {
            None => wire::put_u8(out, 0),
            Some(m) => {
                wire::put_u8(out, 1);
                wire::put_str(out, &m.topic);
                wire::put_i32(out, m.partition);
                wire::put_i64(out, m.offset);
                wire::put_opt_i64(out, m.timestamp);
            }
        }
    }
}

/// Decode what [`encode_committed_records`] wrote.
pub fn decode_committed_records(
    buf: &[u8],
) -> Result<Vec<(SourceRecord, Option<RecordMetadata>)>, DecodeError> {
    let mut r = Reader::new(buf);
    let n = r.count(5, "committed records")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let rec = read_framed(&mut r, "source record", read_source_record)?;
        let meta = if r.bool("record metadata flag")? {
            Some(RecordMetadata {
                topic: r.string("metadata topic")?,
                partition: r.i32("metadata partition")?,
                offset: r.i64("metadata offset")?,
                timestamp: r.opt_i64("metadata timestamp")?,
            })
        } else {
            None
        };
        out.push((rec, meta));
    }
    r.finish("committed records")?;
    Ok(out)
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
    use crate::data::{Schema, logical};

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
    fn source_batches_round_trip() {
        let batch: Vec<_> = (0..3).map(source_record).collect();
        let mut buf = Vec::new();
        encode_source_batch(&batch, &mut buf);
        assert_eq!(decode_source_batch(&buf).unwrap(), batch);
        assert_prefixes_fail(&buf, decode_source_batch);

        let empty: Vec<SourceRecord> = Vec::new();
        buf.clear();
        encode_source_batch(&empty, &mut buf);
        assert_eq!(decode_source_batch(&buf).unwrap(), empty);
    }

    #[test]
    fn sink_batches_round_trip() {
        let batch: Vec<_> = (0..3)
            .map(|i| {
                SinkRecord::new("orders", 1, 40 + i, Data::bytes(vec![7; 10]))
                    .with_key(Data::with_schema(Schema::int64(), Value::Int64(i)).unwrap())
                    .with_timestamp(5, TimestampType::LogAppendTime)
                    .with_header("h", Data::null())
            })
            .collect();
        let mut buf = Vec::new();
        encode_sink_batch(&batch, &mut buf);
        assert_eq!(decode_sink_batch(&buf).unwrap(), batch);
        assert_prefixes_fail(&buf, decode_sink_batch);
    }

    #[test]
    fn committed_records_partitions_and_offsets_round_trip() {
        let committed = vec![
            (
                source_record(1),
                Some(RecordMetadata {
                    topic: "orders".into(),
                    partition: 3,
                    offset: 99,
                    timestamp: None,
                }),
            ),
            (source_record(2), None),
        ];
        let mut buf = Vec::new();
        encode_committed_records(&committed, &mut buf);
        assert_eq!(decode_committed_records(&buf).unwrap(), committed);
        assert_prefixes_fail(&buf, decode_committed_records);

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

    #[test]
    fn a_100_byte_record_costs_little_framing() {
        let rec = SourceRecord::new("noop", Data::bytes(vec![0; 100]));
        let mut buf = Vec::new();
        encode_source_batch(std::slice::from_ref(&rec), &mut buf);
        // count + length + topic + partition/timestamp flags + null key + bytes value +
        // empty headers and source maps.
        assert!(buf.len() < 100 + 40, "{} bytes", buf.len());
    }
}
