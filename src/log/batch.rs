//! Kafka RecordBatch v2 (magic 2): the unit producers send, the log stores byte for byte
//! and consumers fetch.
//!
//! What it is: parsing and validating the fixed 61-byte header, CRC-32C checks, walking
//! the records inside a batch (decompressing when needed), building new batches, and the
//! few in-place rewrites the broker does (base offset, leader epoch, LogAppendTime).
//!
//! What it isn't: it does not support the legacy message formats (magic 0 and 1), does
//! not track producer state or assign offsets, and does not decide policy such as
//! timestamp bounds or which topics require keys; callers pass those decisions in.
//!
//! Layout (big-endian), offsets from the start of the batch:
//! `baseOffset i64 @0, batchLength i32 @8, partitionLeaderEpoch i32 @12, magic i8 @16,
//! crc u32 @17, attributes i16 @21, lastOffsetDelta i32 @23, baseTimestamp i64 @27,
//! maxTimestamp i64 @35, producerId i64 @43, producerEpoch i16 @51, baseSequence i32 @53,
//! recordsCount i32 @57, records @61`. The CRC covers attributes to the end, so the
//! fields before it (offset, length, leader epoch) can be rewritten without recomputing it.

use std::fmt;
use std::iter::FusedIterator;

use bytes::Bytes;

use super::compression::{self, Compression, CompressionError};

pub const MAGIC_V2: i8 = 2;
pub const BATCH_HEADER_LEN: usize = 61;
/// baseOffset + batchLength: the bytes before `batchLength` counts from
pub const LOG_OVERHEAD: usize = 12;
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;
pub const NO_SEQUENCE: i32 = -1;
pub const NO_TIMESTAMP: i64 = -1;
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;

/// Attribute bits 0-2: compression codec.
pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 3: timestamp type (set = LogAppendTime).
pub const ATTR_LOG_APPEND_TIME: i16 = 0x08;
/// Attribute bit 4: part of a transaction.
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Attribute bit 5: control batch (transaction markers).
pub const ATTR_CONTROL: i16 = 0x20;
/// Attribute bit 6: baseTimestamp holds the delete horizon set by compaction (KIP-534).
pub const ATTR_DELETE_HORIZON: i16 = 0x40;

const OFF_BASE_OFFSET: usize = 0;
const OFF_BATCH_LENGTH: usize = 8;
const OFF_LEADER_EPOCH: usize = 12;
const OFF_MAGIC: usize = 16;
const OFF_CRC: usize = 17;
const OFF_ATTRIBUTES: usize = 21;
const OFF_LAST_OFFSET_DELTA: usize = 23;
const OFF_BASE_TIMESTAMP: usize = 27;
const OFF_MAX_TIMESTAMP: usize = 35;
const OFF_PRODUCER_ID: usize = 43;
const OFF_PRODUCER_EPOCH: usize = 51;
const OFF_BASE_SEQUENCE: usize = 53;
const OFF_RECORDS_COUNT: usize = 57;

/// Smallest legal batchLength: a header with no records.
const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;
/// Smallest record body: attributes, timestamp delta, offset delta, key length,
/// value length and header count, one byte each.
const MIN_RECORD_BODY: usize = 6;
/// Smallest record including its length prefix; bounds preallocation by input size.
const MIN_RECORD_SIZE: usize = MIN_RECORD_BODY + 1;

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("batch is truncated: needed {needed} bytes, only {available} available")]
    Truncated { needed: usize, available: usize },
    #[error("unsupported record batch magic {0}, only magic 2 is supported")]
    BadMagic(i8),
    #[error("invalid batch length {0}")]
    BadLength(i32),
    #[error("batch header says {expected} bytes but the buffer holds {actual}")]
    SizeMismatch { expected: usize, actual: usize },
    #[error("batch crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("invalid record count {count} for last offset delta {last_offset_delta}")]
    BadRecordCount { count: i32, last_offset_delta: i32 },
    #[error("record at offset delta {offset_delta} has a null key, which compacted topics reject")]
    MissingKey { offset_delta: i32 },
    #[error(transparent)]
    Compression(#[from] CompressionError),
    #[error("corrupt batch: {0}")]
    Corrupt(String),
    #[error("cannot build batch: {0}")]
    Build(String),
}

#[cold]
fn corrupt(msg: impl fmt::Display) -> BatchError {
    BatchError::Corrupt(msg.to_string())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// The fixed 61-byte header of a v2 batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

/// Copy `N` bytes at `at`; zeroes if out of range. Callers check lengths first, this
/// just keeps the field readers free of panicking slice indexing.
#[inline(always)]
fn field<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    if let Some(s) = buf.get(at..at + N) {
        a.copy_from_slice(s);
    }
    a
}

/// Overwrite `N` bytes at `at`; a no-op if out of range.
#[inline(always)]
fn put<const N: usize>(buf: &mut [u8], at: usize, bytes: [u8; N]) {
    if let Some(d) = buf.get_mut(at..at + N) {
        d.copy_from_slice(&bytes);
    }
}

impl BatchHeader {
    /// Parse the fixed header from the start of `buf`; checks magic == 2 and that
    /// batch_length >= 49 (BATCH_HEADER_LEN - LOG_OVERHEAD); does NOT need the whole
    /// batch, does NOT check the CRC.
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        if buf.len() < BATCH_HEADER_LEN {
            return Err(BatchError::Truncated {
                needed: BATCH_HEADER_LEN,
                available: buf.len(),
            });
        }
        let batch_length = i32::from_be_bytes(field(buf, OFF_BATCH_LENGTH));
        if batch_length < MIN_BATCH_LENGTH {
            return Err(BatchError::BadLength(batch_length));
        }
        let magic = i8::from_be_bytes(field(buf, OFF_MAGIC));
        if magic != MAGIC_V2 {
            return Err(BatchError::BadMagic(magic));
        }
        Ok(Self {
            base_offset: i64::from_be_bytes(field(buf, OFF_BASE_OFFSET)),
            batch_length,
            partition_leader_epoch: i32::from_be_bytes(field(buf, OFF_LEADER_EPOCH)),
            magic,
            crc: u32::from_be_bytes(field(buf, OFF_CRC)),
            attributes: i16::from_be_bytes(field(buf, OFF_ATTRIBUTES)),
            last_offset_delta: i32::from_be_bytes(field(buf, OFF_LAST_OFFSET_DELTA)),
            base_timestamp: i64::from_be_bytes(field(buf, OFF_BASE_TIMESTAMP)),
            max_timestamp: i64::from_be_bytes(field(buf, OFF_MAX_TIMESTAMP)),
            producer_id: i64::from_be_bytes(field(buf, OFF_PRODUCER_ID)),
            producer_epoch: i16::from_be_bytes(field(buf, OFF_PRODUCER_EPOCH)),
            base_sequence: i32::from_be_bytes(field(buf, OFF_BASE_SEQUENCE)),
            records_count: i32::from_be_bytes(field(buf, OFF_RECORDS_COUNT)),
        })
    }

    /// Write all header fields (including `crc` as stored) into the first 61 bytes of
    /// `buf`; a no-op on a shorter buffer.
    fn write_to(&self, buf: &mut [u8]) {
        if buf.len() < BATCH_HEADER_LEN {
            return;
        }
        put(buf, OFF_BASE_OFFSET, self.base_offset.to_be_bytes());
        put(buf, OFF_BATCH_LENGTH, self.batch_length.to_be_bytes());
        put(
            buf,
            OFF_LEADER_EPOCH,
            self.partition_leader_epoch.to_be_bytes(),
        );
        put(buf, OFF_MAGIC, self.magic.to_be_bytes());
        put(buf, OFF_CRC, self.crc.to_be_bytes());
        put(buf, OFF_ATTRIBUTES, self.attributes.to_be_bytes());
        put(
            buf,
            OFF_LAST_OFFSET_DELTA,
            self.last_offset_delta.to_be_bytes(),
        );
        put(buf, OFF_BASE_TIMESTAMP, self.base_timestamp.to_be_bytes());
        put(buf, OFF_MAX_TIMESTAMP, self.max_timestamp.to_be_bytes());
        put(buf, OFF_PRODUCER_ID, self.producer_id.to_be_bytes());
        put(buf, OFF_PRODUCER_EPOCH, self.producer_epoch.to_be_bytes());
        put(buf, OFF_BASE_SEQUENCE, self.base_sequence.to_be_bytes());
        put(buf, OFF_RECORDS_COUNT, self.records_count.to_be_bytes());
    }

    /// Total bytes of the batch: batch_length + LOG_OVERHEAD. A negative batch_length
    /// (only possible in a hand-built header; `parse` rejects it) counts as zero.
    pub fn size(&self) -> usize {
        usize::try_from(self.batch_length).unwrap_or(0) + LOG_OVERHEAD
    }

    /// Offset of the batch's last record: base_offset + last_offset_delta.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    pub fn compression(&self) -> Result<Compression, BatchError> {
        Ok(Compression::from_attributes(self.attributes)?)
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & ATTR_LOG_APPEND_TIME != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// The delete horizon compaction stored in baseTimestamp, if bit 6 is set.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes & ATTR_DELETE_HORIZON != 0).then_some(self.base_timestamp)
    }
}

/// Parse the header and check that `batch` is exactly one whole batch.
fn parse_exact(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    let size = header.size();
    if batch.len() < size {
        return Err(BatchError::Truncated {
            needed: size,
            available: batch.len(),
        });
    }
    if batch.len() > size {
        return Err(BatchError::SizeMismatch {
            expected: size,
            actual: batch.len(),
        });
    }
    Ok(header)
}

fn check_crc(batch: &[u8], header: &BatchHeader) -> Result<(), BatchError> {
    let computed = crc32c::crc32c(batch.get(OFF_ATTRIBUTES..).unwrap_or_default());
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    Ok(())
}

/// Verify the CRC-32C of one complete batch (buf.len() must equal the header's size()).
pub fn verify_crc(batch: &[u8]) -> Result<(), BatchError> {
    let header = parse_exact(batch)?;
    check_crc(batch, &header)
}

/// Parse, size-check and CRC-check one batch, and return its header and the (possibly
/// compressed) record bytes.
fn open(batch: &[u8]) -> Result<(BatchHeader, &[u8]), BatchError> {
    let header = parse_exact(batch)?;
    check_crc(batch, &header)?;
    Ok((header, batch.get(BATCH_HEADER_LEN..).unwrap_or_default()))
}

/// Full validation of one complete client batch as a broker would before appending it:
/// header parses, size matches `batch`, CRC is correct, records_count >= 1 and
/// last_offset_delta == records_count - 1, every record parses with offset deltas exactly
/// 0..n in order, record lengths are consistent and no bytes are left over. Compressed
/// batches are decompressed (at most `max_uncompressed` bytes) and checked the same way.
/// If `require_keys` is true, a record with a null key is an error (compacted topics).
/// Uncompressed batches are walked without allocating.
pub fn validate(
    batch: &[u8],
    require_keys: bool,
    max_uncompressed: usize,
) -> Result<BatchHeader, BatchError> {
    let (header, payload) = open(batch)?;
    let count = header.records_count;
    if count < 1 || header.last_offset_delta != count - 1 {
        return Err(BatchError::BadRecordCount {
            count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    let check = |r: &RawRecord| {
        if r.offset_delta != r.index {
            return Err(corrupt(format_args!(
                "record {} has offset delta {}, expected {}",
                r.index, r.offset_delta, r.index
            )));
        }
        if require_keys && r.key.is_none() {
            return Err(BatchError::MissingKey {
                offset_delta: r.offset_delta,
            });
        }
        Ok(())
    };
    match header.compression()? {
        Compression::None => walk_records(payload, count, check)?,
        codec => {
            let mut plain = Vec::new();
            compression::decompress(codec, payload, max_uncompressed, &mut plain)?;
            walk_records(&plain, count, check)?;
        }
    }
    Ok(header)
}

/// Iterate complete batches laid end to end in `buf` (as in a segment file or a Produce
/// request's records field), yielding `(position, header)`. It checks each header and
/// that the whole batch is present, but not the CRC or the records (use [`verify_crc`]
/// or [`validate`] on the yielded slice when that matters). On a torn, short or garbage
/// batch it yields one error and then ends, so the caller can truncate at
/// [`BatchIter::position`].
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> BatchIter<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            failed: false,
        }
    }

    /// Byte position of the next batch; after an error, where the bad batch starts.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl fmt::Debug for BatchIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchIter")
            .field("len", &self.buf.len())
            .field("pos", &self.pos)
            .field("failed", &self.failed)
            .finish()
    }
}

impl Iterator for BatchIter<'_> {
    type Item = Result<(usize, BatchHeader), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        if rest.is_empty() {
            return None;
        }
        let header = match BatchHeader::parse(rest) {
            Ok(h) => h,
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        let size = header.size();
        if size > rest.len() {
            self.failed = true;
            return Some(Err(BatchError::Truncated {
                needed: size,
                available: rest.len(),
            }));
        }
        let at = self.pos;
        self.pos += size;
        Some(Ok((at, header)))
    }
}

impl FusedIterator for BatchIter<'_> {}

/// Bytes at the start of a batch that the log rewrites on append and that the CRC does
/// not cover: base offset, batch length (unchanged) and partition leader epoch.
pub const PATCHED_PREFIX_LEN: usize = OFF_MAGIC;

/// The first [`PATCHED_PREFIX_LEN`] bytes of `batch` with the base offset and the
/// partition leader epoch replaced, so that an append can write them followed by the
/// rest of the batch as received, without copying it. `batch` must hold a header.
pub fn patched_prefix(batch: &[u8], base_offset: i64, epoch: i32) -> [u8; PATCHED_PREFIX_LEN] {
    let mut prefix = [0u8; PATCHED_PREFIX_LEN];
    prefix.copy_from_slice(&batch[..PATCHED_PREFIX_LEN]);
    put(&mut prefix, OFF_BASE_OFFSET, base_offset.to_be_bytes());
    put(&mut prefix, OFF_LEADER_EPOCH, epoch.to_be_bytes());
    prefix
}

/// Rewrite the base offset in place (not covered by the CRC). A no-op on a buffer too
/// short to hold a header.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    if batch.len() >= BATCH_HEADER_LEN {
        put(batch, OFF_BASE_OFFSET, base_offset.to_be_bytes());
    }
}

/// Rewrite the partition leader epoch in place (not covered by the CRC). A no-op on a
/// buffer too short to hold a header.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    if batch.len() >= BATCH_HEADER_LEN {
        put(batch, OFF_LEADER_EPOCH, epoch.to_be_bytes());
    }
}

/// Turn the batch into LogAppendTime: set the timestamp-type bit, maxTimestamp = ts, and
/// recompute the CRC (both fields are covered by it). Record timestamp deltas are left
/// alone; readers take every record's timestamp from maxTimestamp. A no-op on a buffer
/// too short to hold a header.
pub fn set_log_append_time(batch: &mut [u8], ts: i64) {
    if batch.len() < BATCH_HEADER_LEN {
        return;
    }
    let attributes = i16::from_be_bytes(field(batch, OFF_ATTRIBUTES)) | ATTR_LOG_APPEND_TIME;
    put(batch, OFF_ATTRIBUTES, attributes.to_be_bytes());
    put(batch, OFF_MAX_TIMESTAMP, ts.to_be_bytes());
    let crc = crc32c::crc32c(batch.get(OFF_ATTRIBUTES..).unwrap_or_default());
    put(batch, OFF_CRC, crc.to_be_bytes());
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Bytes>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset: base_offset + offset delta.
    pub offset: i64,
    /// Absolute timestamp; for LogAppendTime batches, the batch's max_timestamp.
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

/// Decode every record of one complete batch, decompressing if needed (at most
/// `max_uncompressed` bytes). Verifies the size and CRC first. Unlike [`validate`] it
/// accepts what compaction leaves behind: gaps in offset deltas and empty batches.
/// Keys, values and header values share one buffer per batch rather than being copied
/// out individually.
pub fn decode_records(
    batch: &[u8],
    max_uncompressed: usize,
) -> Result<(BatchHeader, Vec<Record>), BatchError> {
    decode_records_with(batch, max_uncompressed, Bytes::copy_from_slice)
}

/// [`decode_records`] of a batch already in a shared buffer (a log read): the records of
/// an uncompressed batch are slices of it, nothing is copied.
pub fn decode_shared_records(
    batch: &Bytes,
    max_uncompressed: usize,
) -> Result<(BatchHeader, Vec<Record>), BatchError> {
    decode_records_with(batch, max_uncompressed, |payload| batch.slice_ref(payload))
}

fn decode_records_with(
    batch: &[u8],
    max_uncompressed: usize,
    share: impl FnOnce(&[u8]) -> Bytes,
) -> Result<(BatchHeader, Vec<Record>), BatchError> {
    let (header, payload) = open(batch)?;
    let count = header.records_count;
    if count < 0 {
        return Err(BatchError::BadRecordCount {
            count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    let data = match header.compression()? {
        Compression::None => share(payload),
        codec => {
            let mut plain = Vec::new();
            compression::decompress(codec, payload, max_uncompressed, &mut plain)?;
            Bytes::from(plain)
        }
    };
    let log_append = header.timestamp_type() == TimestampType::LogAppendTime;
    // Bounded by the bytes present, not the (untrusted) count.
    let mut records = Vec::with_capacity((count as usize).min(data.len() / MIN_RECORD_SIZE));
    walk_records(&data, count, |r| {
        let mut headers = Vec::with_capacity(r.header_count);
        let mut pos = r.headers.0;
        let hbuf = data.get(..r.headers.1).unwrap_or_default();
        for _ in 0..r.header_count {
            let key = read_header_key(hbuf, &mut pos)?;
            let value = read_bytes_field(hbuf, &mut pos)?;
            headers.push(Header {
                key: key.to_owned(),
                value: value.map(|(s, e)| data.slice(s..e)),
            });
        }
        records.push(Record {
            offset: header.base_offset.wrapping_add(i64::from(r.offset_delta)),
            timestamp: if log_append {
                header.max_timestamp
            } else {
                header.base_timestamp.wrapping_add(r.timestamp_delta)
            },
            key: r.key.map(|(s, e)| data.slice(s..e)),
            value: r.value.map(|(s, e)| data.slice(s..e)),
            headers,
        });
        Ok(())
    })?;
    Ok((header, records))
}

/// One record's fields as positions into the records buffer, so the walker can serve
/// both the allocation-free validator and the decoder.
struct RawRecord {
    index: i32,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<(usize, usize)>,
    value: Option<(usize, usize)>,
    /// Byte range of the (already validated) headers section.
    headers: (usize, usize),
    header_count: usize,
}

/// Walk exactly `count` records laid end to end in `data`, checking every length and
/// that nothing is left over, and hand each to `visit`. Each record consumes at least
/// one byte, so a hostile `count` ends in an error rather than a long loop.
#[inline(always)]
fn walk_records(
    data: &[u8],
    count: i32,
    mut visit: impl FnMut(&RawRecord) -> Result<(), BatchError>,
) -> Result<(), BatchError> {
    let mut pos = 0usize;
    for index in 0..count.max(0) {
        let len = read_varint(data, &mut pos)?;
        let end = match usize::try_from(len) {
            Ok(n) if n >= MIN_RECORD_BODY && n <= data.len() - pos => pos + n,
            _ => {
                return Err(corrupt(format_args!(
                    "record {index} has length {len} with {} bytes left in the batch",
                    data.len() - pos
                )));
            }
        };
        // Every field read below is bounded by this record's end, not the batch's.
        let body = data.get(..end).unwrap_or_default();
        pos += 1; // attributes: unused by Kafka so far, any value is accepted
        let timestamp_delta = read_varlong(body, &mut pos)?;
        let offset_delta = read_varint(body, &mut pos)?;
        let key = read_bytes_field(body, &mut pos)?;
        let value = read_bytes_field(body, &mut pos)?;
        let header_count = read_varint(body, &mut pos)?;
        let Ok(header_count) = usize::try_from(header_count) else {
            return Err(corrupt(format_args!(
                "record {index} has header count {header_count}"
            )));
        };
        let headers_start = pos;
        for _ in 0..header_count {
            read_header_key(body, &mut pos)?;
            read_bytes_field(body, &mut pos)?;
        }
        if pos != end {
            return Err(corrupt(format_args!(
                "record {index} has {} bytes past its last field",
                end - pos
            )));
        }
        visit(&RawRecord {
            index,
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers: (headers_start, end),
            header_count,
        })?;
    }
    if pos != data.len() {
        return Err(corrupt(format_args!(
            "{} bytes follow the last record",
            data.len() - pos
        )));
    }
    Ok(())
}

/// A varint length (-1 = null) followed by that many bytes; returns the byte range.
#[inline(always)]
fn read_bytes_field(buf: &[u8], pos: &mut usize) -> Result<Option<(usize, usize)>, BatchError> {
    let len = read_varint(buf, pos)?;
    if len == -1 {
        return Ok(None);
    }
    match usize::try_from(len) {
        Ok(n) if n <= buf.len() - *pos => {
            let start = *pos;
            *pos += n;
            Ok(Some((start, *pos)))
        }
        _ => Err(corrupt(format_args!(
            "field length {len} with {} bytes left in the record",
            buf.len() - *pos
        ))),
    }
}

/// A header key: non-null, UTF-8.
#[inline]
fn read_header_key<'b>(buf: &'b [u8], pos: &mut usize) -> Result<&'b str, BatchError> {
    let Some((s, e)) = read_bytes_field(buf, pos)? else {
        return Err(corrupt("record header has a null key"));
    };
    std::str::from_utf8(buf.get(s..e).unwrap_or_default())
        .map_err(|_| corrupt("record header key is not valid utf-8"))
}

// Varints: Kafka's zigzag-encoded base-128 varints (as in protobuf's sint32/sint64).

#[cold]
fn varint_error(what: &str) -> BatchError {
    corrupt(format_args!(
        "{what} runs past the end of its record or is malformed"
    ))
}

#[inline(always)]
fn read_unsigned_varint(buf: &[u8], pos: &mut usize) -> Result<u32, BatchError> {
    let mut result = 0u32;
    let mut shift = 0u32;
    loop {
        let Some(&b) = buf.get(*pos) else {
            return Err(varint_error("varint"));
        };
        *pos += 1;
        if shift == 28 {
            // Fifth byte: only 4 payload bits fit and no continuation is allowed.
            if b > 0x0f {
                return Err(varint_error("varint"));
            }
            return Ok(result | (u32::from(b) << 28));
        }
        result |= u32::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(result);
        }
        shift += 7;
    }
}

#[inline(always)]
fn read_unsigned_varlong(buf: &[u8], pos: &mut usize) -> Result<u64, BatchError> {
    let mut result = 0u64;
    let mut shift = 0u32;
    loop {
        let Some(&b) = buf.get(*pos) else {
            return Err(varint_error("varlong"));
        };
        *pos += 1;
        if shift == 63 {
            // Tenth byte: a single payload bit fits.
            if b > 0x01 {
                return Err(varint_error("varlong"));
            }
            return Ok(result | (u64::from(b) << 63));
        }
        result |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(result);
        }
        shift += 7;
    }
}

/// Read a zigzag varint (Kafka `varint`) at `*pos`, advancing it.
#[inline(always)]
pub(crate) fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32, BatchError> {
    // Fast path: lengths and deltas of small records fit in one byte.
    if let Some(&b) = buf.get(*pos)
        && b < 0x80
    {
        *pos += 1;
        return Ok(i32::from(b >> 1) ^ -i32::from(b & 1));
    }
    let n = read_unsigned_varint(buf, pos)?;
    Ok((n >> 1) as i32 ^ -((n & 1) as i32))
}

/// Read a zigzag varlong (Kafka `varlong`) at `*pos`, advancing it.
#[inline(always)]
pub(crate) fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, BatchError> {
    let n = read_unsigned_varlong(buf, pos)?;
    Ok((n >> 1) as i64 ^ -((n & 1) as i64))
}

#[inline(always)]
fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

#[inline(always)]
fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline(always)]
fn write_unsigned(out: &mut Vec<u8>, mut v: u64) {
    // Assemble on the stack and append once: one capacity check instead of one per byte.
    let mut tmp = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 && n < 9 {
        tmp[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    tmp[n] = v as u8;
    out.extend_from_slice(&tmp[..=n]);
}

/// Append `v` as a zigzag varint (Kafka `varint`).
#[inline(always)]
pub(crate) fn write_varint(out: &mut Vec<u8>, v: i32) {
    write_unsigned(out, u64::from(zigzag32(v)));
}

/// Append `v` as a zigzag varlong (Kafka `varlong`).
#[inline(always)]
pub(crate) fn write_varlong(out: &mut Vec<u8>, v: i64) {
    write_unsigned(out, zigzag64(v));
}

/// Encoded size of `v` as a zigzag varint.
#[inline(always)]
pub(crate) fn varint_len(v: i32) -> usize {
    let bits = 32 - (zigzag32(v) | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Encoded size of `v` as a zigzag varlong.
#[inline(always)]
pub(crate) fn varlong_len(v: i64) -> usize {
    let bits = 64 - (zigzag64(v) | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Length prefix for a nullable byte field, or `None` if it cannot be represented.
#[inline(always)]
fn nullable_len(field: Option<&[u8]>) -> Option<i32> {
    match field {
        None => Some(-1),
        Some(b) => i32::try_from(b.len()).ok(),
    }
}

/// Builds one batch. Records are pushed with absolute timestamps; offsets are assigned
/// 0..n (base offset 0; the log rewrites it). baseTimestamp is the first record's
/// timestamp (as the Java producer does), deltas are relative to it and may be
/// negative, and maxTimestamp is the largest record timestamp.
///
/// Misuse that `push` cannot report (out-of-order deltas, oversized fields) is kept
/// and returned by [`BatchBuilder::build`]; later pushes are then ignored.
pub struct BatchBuilder {
    compression: Compression,
    base_offset: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    attributes: i16,
    /// Header placeholder followed by the uncompressed records, encoded in place.
    buf: Vec<u8>,
    count: usize,
    last_delta: Option<i32>,
    forced_last_delta: Option<i32>,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    error: Option<String>,
}

impl fmt::Debug for BatchBuilder {
    // Manual so a 64 KiB record buffer is not dumped into logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchBuilder")
            .field("compression", &self.compression)
            .field("base_offset", &self.base_offset)
            .field("producer_id", &self.producer_id)
            .field("producer_epoch", &self.producer_epoch)
            .field("base_sequence", &self.base_sequence)
            .field("attributes", &self.attributes)
            .field("records", &self.count)
            .field("bytes", &self.buf.len())
            .field("last_delta", &self.last_delta)
            .field("forced_last_delta", &self.forced_last_delta)
            .field("base_timestamp", &self.base_timestamp)
            .field("max_timestamp", &self.max_timestamp)
            .field("error", &self.error)
            .finish()
    }
}

impl BatchBuilder {
    pub fn new(compression: Compression) -> Self {
        Self::with_capacity(compression, 1024)
    }

    /// A builder whose buffer holds about `records_bytes` of records before it grows: a
    /// caller that knows the size of what it will push saves the copies of doubling.
    pub fn with_capacity(compression: Compression, records_bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(BATCH_HEADER_LEN + records_bytes);
        buf.resize(BATCH_HEADER_LEN, 0);
        Self {
            compression,
            base_offset: 0,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            attributes: 0,
            buf,
            count: 0,
            last_delta: None,
            forced_last_delta: None,
            base_timestamp: None,
            max_timestamp: NO_TIMESTAMP,
            error: None,
        }
    }

    pub fn with_producer(
        mut self,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn transactional(mut self, yes: bool) -> Self {
        self.set_flag(ATTR_TRANSACTIONAL, yes);
        self
    }

    pub fn control(mut self, yes: bool) -> Self {
        self.set_flag(ATTR_CONTROL, yes);
        self
    }

    fn set_flag(&mut self, bit: i16, yes: bool) {
        if yes {
            self.attributes |= bit;
        } else {
            self.attributes &= !bit;
        }
    }

    /// Base offset written into the header (default 0). Offset deltas still start at 0
    /// for `push`; compaction, which keeps original offsets, pairs this with
    /// [`push_with_delta`](Self::push_with_delta).
    pub fn base_offset(mut self, base_offset: i64) -> Self {
        self.base_offset = base_offset;
        self
    }

    /// Mark the batch as carrying a compaction delete horizon (attribute bit 6): it is
    /// stored as baseTimestamp and record timestamps become deltas from it. Must be
    /// called before the first push; calling it later makes `build` fail.
    pub fn delete_horizon(mut self, delete_horizon_ms: i64) -> Self {
        if self.count > 0 {
            self.fail("delete horizon set after records were pushed".to_owned());
        }
        self.set_flag(ATTR_DELETE_HORIZON, true);
        self.base_timestamp = Some(delete_horizon_ms);
        self
    }

    /// Force last_offset_delta (compaction keeps the original batch's value even if its
    /// last record was removed). Consumes and returns the builder; may be called before
    /// or after pushing. `build` fails if it is below the last pushed delta.
    pub fn last_offset_delta(mut self, delta: i32) -> Self {
        self.forced_last_delta = Some(delta);
        self
    }

    /// Append a record with the next offset delta (0 for the first record, else one
    /// past the previous record's delta).
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        let delta = match self.last_delta {
            None => Some(0),
            Some(d) => d.checked_add(1),
        };
        match delta {
            Some(d) => self.push_with_delta(d, timestamp, key, value, headers),
            None => self.fail("offset delta overflows i32".to_owned()),
        }
    }

    /// push with an explicit offset delta (must be >= 0 and strictly increasing); lets
    /// compaction keep the original offsets.
    pub fn push_with_delta(
        &mut self,
        offset_delta: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        if self.error.is_some() {
            return;
        }
        if offset_delta < 0 || self.last_delta.is_some_and(|last| offset_delta <= last) {
            self.fail(format!(
                "offset delta {offset_delta} does not follow {:?}",
                self.last_delta
            ));
            return;
        }
        let (Some(key_len), Some(value_len), Ok(header_count)) = (
            nullable_len(key),
            nullable_len(value),
            i32::try_from(headers.len()),
        ) else {
            self.fail("record key, value or header count is too large".to_owned());
            return;
        };
        let base_timestamp = *self.base_timestamp.get_or_insert(timestamp);
        let timestamp_delta = timestamp.wrapping_sub(base_timestamp);

        // The length prefix comes first, so size the body before writing it.
        let mut body = 1
            + varlong_len(timestamp_delta)
            + varint_len(offset_delta)
            + varint_len(key_len)
            + key.map_or(0, <[u8]>::len)
            + varint_len(value_len)
            + value.map_or(0, <[u8]>::len)
            + varint_len(header_count);
        for h in headers {
            let value = h.value.as_deref();
            let (Ok(hk_len), Some(hv_len)) = (i32::try_from(h.key.len()), nullable_len(value))
            else {
                self.fail("record header is too large".to_owned());
                return;
            };
            body += varint_len(hk_len)
                + h.key.len()
                + varint_len(hv_len)
                + value.map_or(0, <[u8]>::len);
        }
        let Ok(body_len) = i32::try_from(body) else {
            self.fail(format!("record of {body} bytes is too large"));
            return;
        };

        let buf = &mut self.buf;
        buf.reserve(varint_len(body_len) + body);
        write_varint(buf, body_len);
        buf.push(0); // record attributes: unused
        write_varlong(buf, timestamp_delta);
        write_varint(buf, offset_delta);
        write_varint(buf, key_len);
        buf.extend_from_slice(key.unwrap_or_default());
        write_varint(buf, value_len);
        buf.extend_from_slice(value.unwrap_or_default());
        write_varint(buf, header_count);
        for h in headers {
            let value = h.value.as_deref();
            write_varint(buf, h.key.len() as i32);
            buf.extend_from_slice(h.key.as_bytes());
            write_varint(buf, nullable_len(value).unwrap_or(-1));
            buf.extend_from_slice(value.unwrap_or_default());
        }

        self.count += 1;
        self.last_delta = Some(offset_delta);
        if self.count == 1 || timestamp > self.max_timestamp {
            self.max_timestamp = timestamp;
        }
    }

    #[cold]
    fn fail(&mut self, msg: String) {
        self.error.get_or_insert(msg);
    }

    /// Number of records pushed.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Approximate encoded size so far: header plus uncompressed records, so callers
    /// can cut batches at ~64 KiB.
    pub fn size_estimate(&self) -> usize {
        self.buf.len()
    }

    /// Finish: header with CRC, records (compressed if asked). An empty batch is only
    /// built when `last_offset_delta` was set (compaction keeping a batch's place).
    pub fn build(self) -> Result<Vec<u8>, BatchError> {
        if let Some(e) = self.error {
            return Err(BatchError::Build(e));
        }
        let last_offset_delta = match (self.forced_last_delta, self.last_delta) {
            (Some(forced), Some(last)) if forced < last => {
                return Err(BatchError::Build(format!(
                    "last offset delta {forced} is below the last record's delta {last}"
                )));
            }
            (Some(forced), _) if forced < 0 => {
                return Err(BatchError::Build(format!(
                    "last offset delta {forced} is negative"
                )));
            }
            (Some(forced), _) => forced,
            (None, Some(last)) => last,
            (None, None) => return Err(BatchError::Build("batch has no records".to_owned())),
        };
        let Ok(records_count) = i32::try_from(self.count) else {
            return Err(BatchError::Build(format!(
                "{} records do not fit one batch",
                self.count
            )));
        };
        let mut out = match self.compression {
            Compression::None => self.buf,
            codec => {
                let records = self.buf.get(BATCH_HEADER_LEN..).unwrap_or_default();
                let mut out = Vec::with_capacity(BATCH_HEADER_LEN + records.len() / 2 + 64);
                out.resize(BATCH_HEADER_LEN, 0);
                compression::compress(codec, records, &mut out)?;
                out
            }
        };
        let Ok(batch_length) = i32::try_from(out.len() - LOG_OVERHEAD) else {
            return Err(BatchError::Build(format!(
                "batch of {} bytes is too large",
                out.len()
            )));
        };
        let header = BatchHeader {
            base_offset: self.base_offset,
            batch_length,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            magic: MAGIC_V2,
            crc: 0,
            attributes: self.attributes | self.compression.id(),
            last_offset_delta,
            base_timestamp: self.base_timestamp.unwrap_or(NO_TIMESTAMP),
            max_timestamp: self.max_timestamp,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            records_count,
        };
        header.write_to(&mut out);
        let crc = crc32c::crc32c(out.get(OFF_ATTRIBUTES..).unwrap_or_default());
        put(&mut out, OFF_CRC, crc.to_be_bytes());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    const CAP: usize = 1 << 20;
    const T: i64 = 1_700_000_000_000;

    /// Recompute batchLength and the CRC after a test edits a batch, so the edit reaches
    /// the code behind those checks.
    fn reseal(batch: &mut [u8]) {
        let len = (batch.len() - LOG_OVERHEAD) as i32;
        batch[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
    }

    fn header(key: &str, value: Option<&[u8]>) -> Header {
        Header {
            key: key.to_owned(),
            value: value.map(Bytes::copy_from_slice),
        }
    }

    /// Two records assembled byte by byte from the protocol spec.
    fn golden() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&0i64.to_be_bytes()); // baseOffset
        b.extend_from_slice(&73i32.to_be_bytes()); // batchLength: 49 + 24 record bytes
        b.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
        b.push(2); // magic
        b.extend_from_slice(&[0; 4]); // crc, filled below
        b.extend_from_slice(&0i16.to_be_bytes()); // attributes
        b.extend_from_slice(&1i32.to_be_bytes()); // lastOffsetDelta
        b.extend_from_slice(&T.to_be_bytes()); // baseTimestamp
        b.extend_from_slice(&T.to_be_bytes()); // maxTimestamp
        b.extend_from_slice(&(-1i64).to_be_bytes()); // producerId
        b.extend_from_slice(&(-1i16).to_be_bytes()); // producerEpoch
        b.extend_from_slice(&(-1i32).to_be_bytes()); // baseSequence
        b.extend_from_slice(&2i32.to_be_bytes()); // recordsCount
        assert_eq!(b.len(), BATCH_HEADER_LEN);
        // Record 0: length 16, attrs, tsDelta 0, offsetDelta 0, key "k", value "hello",
        // one header "h" = "v". Zigzag doubles non-negative values.
        b.extend_from_slice(&[0x20, 0x00, 0x00, 0x00, 0x02, b'k', 0x0a]);
        b.extend_from_slice(b"hello");
        b.extend_from_slice(&[0x02, 0x02, b'h', 0x02, b'v']);
        // Record 1: length 6, attrs, tsDelta -1, offsetDelta 1, null key, empty value, no headers.
        b.extend_from_slice(&[0x0c, 0x00, 0x01, 0x02, 0x01, 0x00, 0x00]);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn golden_fixture_parses_decodes_and_matches_builder() {
        let g = golden();
        let h = BatchHeader::parse(&g).unwrap();
        assert_eq!(h.size(), g.len());
        assert_eq!(h.last_offset(), 1);
        assert_eq!(h.records_count, 2);
        assert_eq!(h.compression().unwrap(), Compression::None);
        assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
        assert!(!h.is_transactional() && !h.is_control());
        assert_eq!(h.delete_horizon_ms(), None);
        verify_crc(&g).unwrap();
        assert_eq!(validate(&g, false, CAP).unwrap(), h);
        assert!(matches!(
            validate(&g, true, CAP),
            Err(BatchError::MissingKey { offset_delta: 1 })
        ));

        let (dh, recs) = decode_records(&g, CAP).unwrap();
        assert_eq!(dh, h);
        assert_eq!(
            recs,
            vec![
                Record {
                    offset: 0,
                    timestamp: T,
                    key: Some(Bytes::from_static(b"k")),
                    value: Some(Bytes::from_static(b"hello")),
                    headers: vec![header("h", Some(b"v"))],
                },
                Record {
                    offset: 1,
                    timestamp: T - 1,
                    key: None,
                    value: Some(Bytes::new()),
                    headers: vec![]
                },
            ]
        );

        let mut bb = BatchBuilder::new(Compression::None);
        bb.push(T, Some(b"k"), Some(b"hello"), &[header("h", Some(b"v"))]);
        bb.push(T - 1, None, Some(b""), &[]);
        assert_eq!(bb.len(), 2);
        assert_eq!(bb.size_estimate(), g.len());
        assert_eq!(bb.build().unwrap(), g);
    }

    #[test]
    fn crc_mismatch_is_detected_and_uncovered_fields_are_not_checked() {
        let g = golden();
        for i in OFF_ATTRIBUTES..g.len() {
            let mut b = g.clone();
            b[i] ^= 0x01;
            assert!(
                matches!(verify_crc(&b), Err(BatchError::CrcMismatch { .. })),
                "byte {i}"
            );
            assert!(validate(&b, false, CAP).is_err());
            assert!(decode_records(&b, CAP).is_err());
        }
        let mut b = g.clone();
        b[17] ^= 0x80; // the stored crc itself
        assert!(matches!(
            verify_crc(&b),
            Err(BatchError::CrcMismatch { .. })
        ));

        let mut b = g.clone();
        set_base_offset(&mut b, 1234);
        set_partition_leader_epoch(&mut b, 7);
        validate(&b, false, CAP).unwrap();
        let (h, recs) = decode_records(&b, CAP).unwrap();
        assert_eq!(
            (h.base_offset, h.partition_leader_epoch, h.last_offset()),
            (1234, 7, 1235)
        );
        assert_eq!(recs[1].offset, 1235);
    }

    #[test]
    fn log_append_time_rewrites_timestamps() {
        let mut b = golden();
        set_log_append_time(&mut b, 42);
        let (h, recs) = decode_records(&b, CAP).unwrap();
        assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(h.max_timestamp, 42);
        assert!(recs.iter().all(|r| r.timestamp == 42));
        validate(&b, false, CAP).unwrap();
    }

    #[test]
    fn truncation_at_every_length_is_an_error() {
        let mut bb = BatchBuilder::new(Compression::Lz4);
        for i in 0..20u8 {
            bb.push(T, Some(&[i]), Some(&[i; 30]), &[]);
        }
        for g in [golden(), bb.build().unwrap()] {
            for n in 0..g.len() {
                let cut = &g[..n];
                assert!(
                    matches!(verify_crc(cut), Err(BatchError::Truncated { .. })),
                    "len {n}"
                );
                assert!(validate(cut, false, CAP).is_err());
                assert!(decode_records(cut, CAP).is_err());
                let items: Vec<_> = BatchIter::new(cut).collect();
                assert!(
                    n == 0 && items.is_empty()
                        || matches!(items[..], [Err(BatchError::Truncated { .. })])
                );
            }
        }
    }

    #[test]
    fn bad_magic_and_hostile_batch_lengths() {
        let mut b = golden();
        b[16] = 1;
        assert!(matches!(
            BatchHeader::parse(&b),
            Err(BatchError::BadMagic(1))
        ));
        for len in [i32::MIN, -1, 0, 48] {
            let mut b = golden();
            b[8..12].copy_from_slice(&len.to_be_bytes());
            assert!(matches!(BatchHeader::parse(&b), Err(BatchError::BadLength(l)) if l == len));
            assert!(validate(&b, false, CAP).is_err());
            assert!(matches!(
                BatchIter::new(&b).next(),
                Some(Err(BatchError::BadLength(_)))
            ));
        }
        let mut b = golden();
        b[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!(h.size(), i32::MAX as usize + LOG_OVERHEAD);
        assert!(matches!(
            validate(&b, false, CAP),
            Err(BatchError::Truncated { .. })
        ));
        assert!(matches!(
            decode_records(&b, CAP),
            Err(BatchError::Truncated { .. })
        ));
        assert!(matches!(
            BatchIter::new(&b).next(),
            Some(Err(BatchError::Truncated { .. }))
        ));
        // Longer buffer than the header claims.
        let mut b = golden();
        b.push(0);
        assert!(matches!(
            verify_crc(&b),
            Err(BatchError::SizeMismatch { .. })
        ));
        // Unknown codec 5.
        let mut b = golden();
        b[22] |= 5;
        reseal(&mut b);
        assert!(matches!(
            validate(&b, false, CAP),
            Err(BatchError::Compression(CompressionError::UnknownCodec(5)))
        ));
    }

    #[test]
    fn hostile_record_fields_are_errors() {
        let g = golden();
        let edits: Vec<(usize, Vec<u8>)> = vec![
            // record length i32::MAX, negative, and too small
            (61, vec![0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (61, vec![0x01]),
            (61, vec![0x08]),
            // key length i32::MAX and -2
            (65, vec![0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (65, vec![0x03]),
            // overlong varint (6 bytes)
            (61, vec![0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
        ];
        for (at, bytes) in edits {
            let mut b = g.clone();
            b.splice(at..at + 1, bytes.iter().copied());
            reseal(&mut b);
            assert!(
                matches!(validate(&b, false, CAP), Err(BatchError::Corrupt(_))),
                "{bytes:?}"
            );
            assert!(
                matches!(decode_records(&b, CAP), Err(BatchError::Corrupt(_))),
                "{bytes:?}"
            );
        }
        for count in [i32::MAX, i32::MIN, -1, 0, 1, 3] {
            let mut b = g.clone();
            b[57..61].copy_from_slice(&count.to_be_bytes());
            reseal(&mut b);
            assert!(validate(&b, false, CAP).is_err(), "count {count}");
            assert!(decode_records(&b, CAP).is_err(), "count {count}");
        }
        // Trailing bytes after the last record.
        let mut b = g.clone();
        b.push(0);
        reseal(&mut b);
        assert!(matches!(
            validate(&b, false, CAP),
            Err(BatchError::Corrupt(_))
        ));
        // Header key that is not UTF-8.
        let mut b = g.clone();
        b[75] = 0xff;
        reseal(&mut b);
        assert!(matches!(
            validate(&b, false, CAP),
            Err(BatchError::Corrupt(_))
        ));
        assert!(matches!(
            decode_records(&b, CAP),
            Err(BatchError::Corrupt(_))
        ));
        // lastOffsetDelta that disagrees with the count.
        let mut b = g.clone();
        b[23..27].copy_from_slice(&5i32.to_be_bytes());
        reseal(&mut b);
        assert!(matches!(
            validate(&b, false, CAP),
            Err(BatchError::BadRecordCount { .. })
        ));
    }

    #[test]
    fn validate_requires_contiguous_deltas_but_decode_accepts_compacted() {
        let mut bb = BatchBuilder::new(Compression::Gzip)
            .base_offset(100)
            .last_offset_delta(9);
        bb.push_with_delta(2, T, Some(b"a"), Some(b"1"), &[]);
        bb.push_with_delta(5, T + 3, Some(b"b"), None, &[]);
        let b = bb.build().unwrap();
        assert!(validate(&b, false, CAP).is_err());
        let (h, recs) = decode_records(&b, CAP).unwrap();
        assert_eq!(
            (h.base_offset, h.last_offset_delta, h.last_offset()),
            (100, 9, 109)
        );
        assert_eq!(
            recs.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![102, 105]
        );
        assert_eq!(h.max_timestamp, T + 3);

        // Compaction can empty a batch while keeping its offsets and horizon.
        let b = BatchBuilder::new(Compression::None)
            .base_offset(7)
            .last_offset_delta(3)
            .delete_horizon(99)
            .build()
            .unwrap();
        let (h, recs) = decode_records(&b, CAP).unwrap();
        assert!(recs.is_empty());
        assert_eq!((h.last_offset(), h.delete_horizon_ms()), (10, Some(99)));
        assert!(validate(&b, false, CAP).is_err());
    }

    #[test]
    fn builder_misuse_fails_at_build() {
        assert!(matches!(
            BatchBuilder::new(Compression::None).build(),
            Err(BatchError::Build(_))
        ));
        let mut bb = BatchBuilder::new(Compression::None);
        bb.push_with_delta(3, T, None, None, &[]);
        bb.push_with_delta(3, T, None, None, &[]);
        assert!(matches!(bb.build(), Err(BatchError::Build(_))));
        let mut bb = BatchBuilder::new(Compression::None);
        bb.push_with_delta(-1, T, None, None, &[]);
        assert!(matches!(bb.build(), Err(BatchError::Build(_))));
        let mut bb = BatchBuilder::new(Compression::None).last_offset_delta(0);
        bb.push(T, None, None, &[]);
        bb.push(T, None, None, &[]);
        assert!(matches!(bb.build(), Err(BatchError::Build(_))));
        let mut bb = BatchBuilder::new(Compression::None);
        bb.push(T, None, None, &[]);
        assert!(matches!(
            bb.delete_horizon(1).build(),
            Err(BatchError::Build(_))
        ));
    }

    #[test]
    fn producer_fields_and_flags_round_trip() {
        let mut bb = BatchBuilder::new(Compression::Zstd)
            .with_producer(77, 3, 1000)
            .transactional(true)
            .control(true);
        bb.push(T, Some(&[0, 0, 0, 0]), Some(&[0, 0, 0, 0, 0, 0]), &[]);
        let b = bb.build().unwrap();
        let h = validate(&b, true, CAP).unwrap();
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (77, 3, 1000)
        );
        assert!(h.is_transactional() && h.is_control());
        assert_eq!(h.compression().unwrap(), Compression::Zstd);
        assert_eq!(h.partition_leader_epoch, NO_PARTITION_LEADER_EPOCH);
    }

    #[test]
    fn compressed_batch_over_cap_is_an_error() {
        for codec in &ALL[1..] {
            let mut bb = BatchBuilder::new(*codec);
            for _ in 0..100 {
                bb.push(T, None, Some(&[b'x'; 1000]), &[]);
            }
            let b = bb.build().unwrap();
            assert!(b.len() < 20_000, "{codec} did not compress");
            validate(&b, false, 200_000).unwrap();
            assert!(matches!(
                validate(&b, false, 50_000),
                Err(BatchError::Compression(
                    CompressionError::OutputTooLarge { .. }
                ))
            ));
            assert!(matches!(
                decode_records(&b, 50_000),
                Err(BatchError::Compression(
                    CompressionError::OutputTooLarge { .. }
                ))
            ));
        }
    }

    #[test]
    fn iterator_walks_batches_and_stops_at_garbage() {
        let g = golden();
        let mut bb = BatchBuilder::new(Compression::Snappy);
        bb.push(T, Some(b"x"), Some(b"y"), &[]);
        let s = bb.build().unwrap();
        let mut log = [g.clone(), s.clone(), g.clone()].concat();
        let n = log.len();
        log.extend_from_slice(&[0; 20]); // preallocated zeroes after a crash
        let mut it = BatchIter::new(&log);
        let ok: Vec<_> = it.by_ref().take(3).map(|r| r.unwrap().0).collect();
        assert_eq!(ok, vec![0, g.len(), g.len() + s.len()]);
        assert!(matches!(it.next(), Some(Err(BatchError::Truncated { .. }))));
        assert_eq!(it.position(), n);
        assert!(it.next().is_none());
        assert!(it.next().is_none());
        for (pos, h) in BatchIter::new(&log[..n]).map(Result::unwrap) {
            verify_crc(&log[pos..pos + h.size()]).unwrap();
        }
    }

    #[test]
    fn varints_round_trip_and_have_the_right_length() {
        let ints = [0, 1, -1, 63, -64, 64, -65, 8191, 8192, i32::MAX, i32::MIN];
        for v in ints {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            let mut pos = 0;
            assert_eq!(read_varint(&out, &mut pos).unwrap(), v);
            assert_eq!(pos, out.len());
        }
        let longs = [0, 1, -1, i64::from(i32::MAX) + 1, i64::MAX, i64::MIN, T, -T];
        for v in longs {
            let mut out = Vec::new();
            write_varlong(&mut out, v);
            assert_eq!(out.len(), varlong_len(v), "{v}");
            let mut pos = 0;
            assert_eq!(read_varlong(&out, &mut pos).unwrap(), v);
            assert_eq!(pos, out.len());
        }
        assert_eq!(varint_len(i32::MIN), 5);
        assert_eq!(varlong_len(i64::MIN), 10);
        // Known encodings: zigzag(-1) = 1, zigzag(150) = 300 = 0xac 0x02.
        let mut out = Vec::new();
        write_varint(&mut out, -1);
        write_varint(&mut out, 150);
        assert_eq!(out, [0x01, 0xac, 0x02]);
        for bad in [&[0x80][..], &[0xff, 0xff, 0xff, 0xff, 0x10], &[0xff; 6]] {
            assert!(read_varint(bad, &mut 0).is_err(), "{bad:?}");
        }
        assert!(read_varlong(&[0xff; 10], &mut 0).is_err());
        assert!(read_varlong(&[0xff; 11], &mut 0).is_err());
        assert!(read_varlong(&[], &mut 0).is_err());
    }

    type TestRecord = (
        i64,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Vec<(String, Option<Vec<u8>>)>,
    );

    fn arb_record() -> impl Strategy<Value = TestRecord> {
        let bytes = || proptest::option::of(proptest::collection::vec(any::<u8>(), 0..48));
        (
            prop_oneof![any::<i64>(), (T - 1000)..(T + 1000)],
            bytes(),
            bytes(),
            proptest::collection::vec((".{0,6}", bytes()), 0..3),
        )
    }

    fn build_from(codec: Compression, recs: &[TestRecord]) -> Vec<u8> {
        let mut bb = BatchBuilder::new(codec);
        for (ts, k, v, hs) in recs {
            let hs: Vec<Header> = hs
                .iter()
                .map(|(k, v)| Header {
                    key: k.clone(),
                    value: v.clone().map(Bytes::from),
                })
                .collect();
            bb.push(*ts, k.as_deref(), v.as_deref(), &hs);
        }
        bb.build().unwrap()
    }

    proptest! {
        #[test]
        fn builder_and_decoder_round_trip(recs in proptest::collection::vec(arb_record(), 1..20), codec in 0usize..5) {
            let codec = ALL[codec];
            let b = build_from(codec, &recs);
            let h = validate(&b, false, CAP).unwrap();
            prop_assert_eq!(h.records_count as usize, recs.len());
            prop_assert_eq!(h.max_timestamp, recs.iter().map(|r| r.0).max().unwrap());
            prop_assert_eq!(h.base_timestamp, recs[0].0);
            let all_keyed = recs.iter().all(|r| r.1.is_some());
            prop_assert_eq!(validate(&b, true, CAP).is_ok(), all_keyed);
            let (_, out) = decode_records(&b, CAP).unwrap();
            prop_assert_eq!(out.len(), recs.len());
            for (i, (r, (ts, k, v, hs))) in out.iter().zip(&recs).enumerate() {
                prop_assert_eq!(r.offset, i as i64);
                prop_assert_eq!(r.timestamp, *ts);
                prop_assert_eq!(r.key.as_deref(), k.as_deref());
                prop_assert_eq!(r.value.as_deref(), v.as_deref());
                prop_assert_eq!(r.headers.len(), hs.len());
                for (h, (hk, hv)) in r.headers.iter().zip(hs) {
                    prop_assert_eq!(&h.key, hk);
                    prop_assert_eq!(h.value.as_deref(), hv.as_deref());
                }
            }
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = BatchHeader::parse(&data);
            let _ = verify_crc(&data);
            let _ = validate(&data, true, 4096);
            let _ = decode_records(&data, 4096);
            let _ = BatchIter::new(&data).count();
        }

        #[test]
        fn mutated_batches_never_panic(
            recs in proptest::collection::vec(arb_record(), 1..6),
            codec in 0usize..5,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in proptest::option::of(any::<usize>()),
            seal in any::<bool>(),
        ) {
            let mut b = build_from(ALL[codec], &recs);
            for (at, x) in flips {
                let i = at % b.len();
                b[i] ^= x;
            }
            if let Some(c) = cut {
                b.truncate(c % (b.len() + 1));
            }
            // Resealing lets the mutation get past the length and CRC checks into the records.
            if seal && b.len() >= BATCH_HEADER_LEN {
                reseal(&mut b);
            }
            let _ = BatchHeader::parse(&b);
            let _ = verify_crc(&b);
            let _ = validate(&b, false, 4096);
            let _ = decode_records(&b, 4096);
            let _ = BatchIter::new(&b).count();
            let doubled = [b.clone(), b].concat();
            let _ = BatchIter::new(&doubled).count();
        }
    }
}
