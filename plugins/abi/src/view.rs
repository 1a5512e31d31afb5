//! Records lent across the boundary as views: `#[repr(C)]` descriptors of memory that the
//! side owning the records keeps alive while the other side reads them.
//!
//! A batch of 100-byte records costs little more to describe than to point at: a view
//! holds the topic, key, value and headers as pointer and length into the owner's own
//! records, and only what has no flat form (structured data with a schema, headers, source
//! positions) is encoded by [`crate::wire`] into one side buffer per batch. The reader
//! copies nothing it does not keep: the host converts a polled value straight from the
//! plugin's buffer into the log batch, and a sink task reads the host's fetched batch in
//! place ([`SinkRecordRef`]) or has the SDK build its records straight from it.
//!
//! - Source poll ([`SourceBatchView`]): the plugin lends its polled records until the next
//!   poll, stop or free of that task. Source positions cross per batch, not per record:
//!   for each source partition in the batch, the source offset of its last record
//!   ([`SourceBatchBuilder`] finds them), which is all the worker commits.
//! - Sink put ([`SinkRecordView`]): the host lends its records for the duration of the call.
//!
//! Building views ([`SourceBatchBuilder`], [`SinkBatchBuilder`]) is safe: a view is only
//! numbers and addresses. Reading one is `unsafe`: the caller vouches that the memory it
//! points at is alive, which the ABI's lending rules guarantee.

use crate::data::{self, Data, Schema, SchemaType, Value};
use crate::ffi::Buf;
use crate::record::{
    self, Header, OffsetMap, RecordMetadata, SinkRecord, SourceRecord, TimestampType,
};
use crate::wire::{self, DecodeError, Reader};

/// A key, value or header value: flat when it is raw bytes or text with no schema or the
/// plain bytes/string schema (what the byte-array and string converters make), encoded
/// otherwise.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct DataView {
    /// One of the `FORM_*` constants.
    pub form: u32,
    /// One of the `SCHEMA_*` constants (for the flat forms).
    pub schema: u32,
    pub bytes: Buf,
}

impl DataView {
    /// Null with no schema (no key; a schemaless tombstone).
    pub const FORM_NULL: u32 = 0;
    /// Raw bytes.
    pub const FORM_BYTES: u32 = 1;
    /// UTF-8 text.
    pub const FORM_STRING: u32 = 2;
    /// Anything else: `bytes` holds a [`Data`] encoded by [`data::encode_data`].
    pub const FORM_ENCODED: u32 = 3;
    /// A value with a schema shared by other views of the batch: `bytes` holds the value
    /// encoded by [`data::encode_value`], and the schema, encoded once per batch by
    /// [`data::encode_schema`], starts `schema` bytes before `bytes.ptr` in the same lent
    /// buffer (ABI 6). A batch of table rows encodes its row schema once, and the reader
    /// decodes it once ([`ReadCache`]) and shares it between the records.
    pub const FORM_VALUE: u32 = 4;

    /// No schema.
    pub const SCHEMA_NONE: u32 = 0;
    /// The plain schema of the form's type (`Schema::bytes()` / `Schema::string()`).
    pub const SCHEMA_REQUIRED: u32 = 1;
    /// The same, optional.
    pub const SCHEMA_OPTIONAL: u32 = 2;

    const EMPTY: DataView = DataView {
        form: DataView::FORM_NULL,
        schema: DataView::SCHEMA_NONE,
        bytes: Buf {
            ptr: std::ptr::null(),
            len: 0,
        },
    };
}

/// Which plain schema a flat value has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plain {
    None,
    Required,
    Optional,
}

impl Plain {
    fn of(schema: &Option<Schema>, kind: SchemaType) -> Option<Plain> {
        match schema {
            None => Some(Plain::None),
            Some(s) if is_plain(s, kind) => Some(if s.optional {
                Plain::Optional
            } else {
                Plain::Required
            }),
            Some(_) => None,
        }
    }

    fn code(self) -> u32 {
        match self {
            Plain::None => DataView::SCHEMA_NONE,
            Plain::Required => DataView::SCHEMA_REQUIRED,
            Plain::Optional => DataView::SCHEMA_OPTIONAL,
        }
    }

    fn from_code(code: u32) -> Result<Plain, DecodeError> {
        match code {
            DataView::SCHEMA_NONE => Ok(Plain::None),
            DataView::SCHEMA_REQUIRED => Ok(Plain::Required),
            DataView::SCHEMA_OPTIONAL => Ok(Plain::Optional),
            _ => Err(DecodeError {
                what: "data view schema",
                at: code as usize,
            }),
        }
    }

    /// The schema this stands for.
    pub fn schema(self, kind: SchemaType) -> Option<Schema> {
        match self {
            Plain::None => None,
            Plain::Required => Some(Schema::new(kind)),
            Plain::Optional => Some(Schema::new(kind).optional()),
        }
    }
}

/// Whether `s` is the bare schema of `kind`: no name, version, doc, parameters or default.
fn is_plain(s: &Schema, kind: SchemaType) -> bool {
    s.kind == kind
        && s.name.is_none()
        && s.version.is_none()
        && s.doc.is_none()
        && s.parameters.is_empty()
        && s.default.is_none()
}

/// A key, value or header value read from a view, borrowing what is flat.
#[derive(Debug, Clone, PartialEq)]
pub enum DataRef<'a> {
    /// Null with no schema.
    Null,
    Bytes(&'a [u8], Plain),
    Str(&'a str, Plain),
    /// Anything else, borrowed from an owned record.
    Data(&'a Data),
    /// Anything else, decoded from its encoding (boxed: a `Data` is large, and a
    /// reference is handed around by value).
    Owned(Box<Data>),
}

impl<'a> DataRef<'a> {
    /// Borrow an owned value, flat where it can be.
    pub fn of(d: &'a Data) -> DataRef<'a> {
        match &d.value {
            Value::Null if d.schema.is_none() => DataRef::Null,
            Value::Bytes(b) => match Plain::of(&d.schema, SchemaType::Bytes) {
                Some(p) => DataRef::Bytes(b, p),
                None => DataRef::Data(d),
            },
            Value::String(s) => match Plain::of(&d.schema, SchemaType::String) {
                Some(p) => DataRef::Str(s, p),
                None => DataRef::Data(d),
            },
            _ => DataRef::Data(d),
        }
    }

    /// The value as owned data.
    pub fn to_data(&self) -> Data {
        match self {
            DataRef::Null => Data::null(),
            DataRef::Bytes(b, p) => Data {
                schema: p.schema(SchemaType::Bytes),
                value: Value::Bytes(b.to_vec()),
            },
            DataRef::Str(s, p) => Data {
                schema: p.schema(SchemaType::String),
                value: Value::String((*s).to_owned()),
            },
            DataRef::Data(d) => (*d).clone(),
            DataRef::Owned(d) => d.as_ref().clone(),
        }
    }

    /// The structured value, if this is not a flat one.
    pub fn as_data(&self) -> Option<&Data> {
        match self {
            DataRef::Data(d) => Some(d),
            DataRef::Owned(d) => Some(d),
            _ => None,
        }
    }

    /// The value as owned data, moving what is already owned.
    pub fn into_data(self) -> Data {
        match self {
            DataRef::Owned(d) => *d,
            other => other.to_data(),
        }
    }

    /// Make `d` this value, moving what is already owned (in place: see
    /// [`SinkRecordRef::move_into`]).
    fn move_into(self, d: &mut Data) {
        match self {
            DataRef::Null => {
                d.schema = None;
                d.value = Value::Null;
            }
            DataRef::Bytes(b, p) => {
                d.schema = p.schema(SchemaType::Bytes);
                d.value = Value::Bytes(b.to_vec());
            }
            DataRef::Str(t, p) => {
                d.schema = p.schema(SchemaType::String);
                d.value = Value::String(t.to_owned());
            }
            DataRef::Data(x) => d.clone_from(x),
            DataRef::Owned(x) => *d = *x,
        }
    }

    /// The value's schema is absent (schemaless data).
    pub fn is_schemaless(&self) -> bool {
        match self {
            DataRef::Null => true,
            DataRef::Bytes(_, p) | DataRef::Str(_, p) => *p == Plain::None,
            DataRef::Data(d) => d.schema.is_none(),
            DataRef::Owned(d) => d.schema.is_none(),
        }
    }
}

/// The side buffer of a batch being described: encoded values and headers, and each
/// distinct schema once.
#[derive(Debug, Default)]
struct Side {
    bytes: Vec<u8>,
    /// The schemas encoded in `bytes` so far, with where each starts.
    schemas: Vec<(Schema, usize)>,
}

impl Side {
    /// At most this many shared schemas per batch; values of further schemas are encoded
    /// with their schema (a batch of that many distinct schemas is not a table's rows, and
    /// the search for a match stays short).
    const MAX_SCHEMAS: usize = 64;

    fn clear(&mut self) {
        self.bytes.clear();
        self.schemas.clear();
    }

    /// Where `s` is encoded in this batch, encoding it first if it is new: the same handle
    /// ([`Schema::same`]), else an equal schema, else a new entry.
    fn schema_at(&mut self, s: &Schema) -> Option<usize> {
        if let Some((_, at)) = self.schemas.iter().find(|(t, _)| t.same(s)) {
            return Some(*at);
        }
        if let Some((_, at)) = self.schemas.iter().find(|(t, _)| t == s) {
            return Some(*at);
        }
        if self.schemas.len() == Side::MAX_SCHEMAS {
            return None;
        }
        let at = self.bytes.len();
        data::encode_schema(s, &mut self.bytes);
        self.schemas.push((s.clone(), at));
        Some(at)
    }

    /// Encode structured data: the value alone against a shared schema, or the whole
    /// [`Data`].
    fn encode(&mut self, d: &Data) -> DataView {
        if let Some(schema_at) = d.schema.as_ref().and_then(|s| self.schema_at(s)) {
            let at = self.bytes.len();
            if let Ok(distance) = u32::try_from(at - schema_at) {
                data::encode_value(&d.value, &mut self.bytes);
                return DataView {
                    form: DataView::FORM_VALUE,
                    schema: distance,
                    bytes: Buf {
                        ptr: std::ptr::without_provenance(at),
                        len: self.bytes.len() - at,
                    },
                };
            }
        }
        let at = self.bytes.len();
        data::encode_data(d, &mut self.bytes);
        encoded_at(at, self.bytes.len() - at)
    }
}

/// Describe `d` in a view: flat (pointing into `d`) where it can be, otherwise encoded at
/// the end of `side`; an encoded view's `bytes.ptr` holds its offset in `side` until
/// [`fix_encoded`] turns it into an address.
fn view_of(d: &DataRef<'_>, side: &mut Side) -> DataView {
    let flat = |form, schema: Plain, bytes: &[u8]| DataView {
        form,
        schema: schema.code(),
        bytes: Buf::from_slice(bytes),
    };
    match d {
        DataRef::Null => DataView::EMPTY,
        DataRef::Bytes(b, p) => flat(DataView::FORM_BYTES, *p, b),
        DataRef::Str(s, p) => flat(DataView::FORM_STRING, *p, s.as_bytes()),
        DataRef::Data(d) => side.encode(d),
        DataRef::Owned(d) => side.encode(d),
    }
}

/// A view of the `len` bytes at offset `at` of the side buffer, to be fixed up.
fn encoded_at(at: usize, len: usize) -> DataView {
    DataView {
        form: DataView::FORM_ENCODED,
        schema: DataView::SCHEMA_NONE,
        bytes: Buf {
            ptr: std::ptr::without_provenance(at),
            len,
        },
    }
}

/// Turn an offset left by [`view_of`] into an address in `side` (no-op for flat views).
fn fix_encoded(v: &mut DataView, side: &[u8]) {
    if v.form == DataView::FORM_ENCODED || v.form == DataView::FORM_VALUE {
        v.bytes.ptr = side[v.bytes.ptr.addr()..].as_ptr();
    }
}

/// Encode headers at the end of `side`; an empty list is no bytes at all. Answers the
/// (offset, length) of the encoding.
fn headers_at(headers: &[Header], side: &mut Vec<u8>) -> Buf {
    if headers.is_empty() {
        return Buf::from_slice(&[]);
    }
    let at = side.len();
    record::encode_headers(headers, side);
    Buf {
        ptr: std::ptr::without_provenance(at),
        len: side.len() - at,
    }
}

fn fix_buf(b: &mut Buf, side: &[u8]) {
    if b.len > 0 {
        b.ptr = side[b.ptr.addr()..].as_ptr();
    }
}

/// What a reader has already read from the views of one batch: the schemas decoded from
/// [`DataView::FORM_VALUE`] views, by the address of their encoding, so that each is decoded
/// once and shared; and the last topic, whose bytes the records of a batch usually share,
/// so that it is checked for UTF-8 once. Clear it (or use a new one) for every batch:
/// addresses are only meaningful while a batch is lent, and lent memory does not change.
#[derive(Debug, Default)]
pub struct ReadCache {
    seen: Vec<(usize, Schema)>,
    /// Address and length of the last topic found to be UTF-8.
    topic: Option<(usize, usize)>,
}

impl ReadCache {
    /// As many as a batch builder shares; a batch with more decodes the rest each time.
    const MAX: usize = 64;

    pub fn clear(&mut self) {
        self.seen.clear();
        self.topic = None;
    }

    /// The schema whose encoding starts `distance` bytes before `value`.
    ///
    /// # Safety
    ///
    /// The `distance` bytes before `value` must be readable (the same lent buffer).
    unsafe fn get(&mut self, value: *const u8, distance: u32) -> Result<Schema, DecodeError> {
        let start = value.addr().wrapping_sub(distance as usize);
        if let Some((_, s)) = self.seen.iter().find(|(at, _)| *at == start) {
            return Ok(s.clone());
        }
        // SAFETY: guaranteed by the caller.
        let bytes =
            unsafe { std::slice::from_raw_parts(value.sub(distance as usize), distance as usize) };
        let schema = data::read_schema(&mut Reader::new(bytes))?;
        if self.seen.len() < ReadCache::MAX {
            self.seen.push((start, schema.clone()));
        }
        Ok(schema)
    }
}

/// Read a view.
///
/// # Safety
///
/// `v.bytes` must point to `v.bytes.len` readable bytes alive for `'a`, and for
/// [`DataView::FORM_VALUE`] the `v.schema` bytes before them must be readable too.
pub unsafe fn read_data<'a>(
    v: &DataView,
    cache: &mut ReadCache,
) -> Result<DataRef<'a>, DecodeError> {
    // SAFETY: guaranteed by the caller.
    let bytes = unsafe { v.bytes.as_slice() };
    Ok(match v.form {
        DataView::FORM_NULL => DataRef::Null,
        DataView::FORM_BYTES => DataRef::Bytes(bytes, Plain::from_code(v.schema)?),
        DataView::FORM_STRING => DataRef::Str(
            std::str::from_utf8(bytes).map_err(|e| DecodeError {
                what: "string data view (not UTF-8)",
                at: e.valid_up_to(),
            })?,
            Plain::from_code(v.schema)?,
        ),
        DataView::FORM_ENCODED => {
            let mut r = Reader::new(bytes);
            let d = data::read_data(&mut r)?;
            r.finish("encoded data view")?;
            DataRef::Owned(Box::new(d))
        }
        DataView::FORM_VALUE => {
            if v.bytes.ptr.is_null() {
                return Err(DecodeError {
                    what: "value data view without bytes",
                    at: 0,
                });
            }
            // SAFETY: guaranteed by the caller.
            let schema = unsafe { cache.get(v.bytes.ptr, v.schema) }?;
            let mut r = Reader::new(bytes);
            let value = data::read_value(&mut r)?;
            r.finish("value data view")?;
            DataRef::Owned(Box::new(Data {
                schema: Some(schema),
                value,
            }))
        }
        other => {
            return Err(DecodeError {
                what: "data view form",
                at: other as usize,
            });
        }
    })
}

/// Read headers encoded by a view builder (no bytes: none).
///
/// # Safety
///
/// `b` must point to `b.len` readable bytes.
pub unsafe fn read_headers(b: Buf) -> Result<Vec<Header>, DecodeError> {
    // SAFETY: guaranteed by the caller.
    let bytes = unsafe { b.as_slice() };
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut r = Reader::new(bytes);
    let headers = record::read_headers(&mut r)?;
    r.finish("headers")?;
    Ok(headers)
}

/// Read a topic name.
///
/// # Safety
///
/// `b` must point to `b.len` readable bytes alive for `'a`.
unsafe fn read_topic<'a>(b: Buf, cache: &mut ReadCache) -> Result<&'a str, DecodeError> {
    // SAFETY: guaranteed by the caller.
    let bytes = unsafe { b.as_slice() };
    let at = (b.ptr.addr(), b.len);
    if cache.topic == Some(at) {
        // SAFETY: these very bytes, lent and unchanged for the batch, were checked.
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    let topic = std::str::from_utf8(bytes).map_err(|e| DecodeError {
        what: "topic (not UTF-8)",
        at: e.valid_up_to(),
    })?;
    cache.topic = Some(at);
    Ok(topic)
}

// ---------------------------------------------------------------------------------------
// Source records.

/// One polled record. `flags`: [`SourceRecordView::HAS_PARTITION`],
/// [`SourceRecordView::HAS_TIMESTAMP`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SourceRecordView {
    pub topic: Buf,
    pub key: DataView,
    pub value: DataView,
    /// Encoded by [`record::encode_headers`]; no bytes when there are none.
    pub headers: Buf,
    pub timestamp: i64,
    pub partition: i32,
    pub flags: u32,
}

impl SourceRecordView {
    pub const HAS_PARTITION: u32 = 1;
    pub const HAS_TIMESTAMP: u32 = 2;
}

/// A polled batch: its records, and the last source offset of each source partition in it
/// (`list<(offset map, offset map)>` by [`record::encode_offset_maps`]'s item encoding).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SourceBatchView {
    pub records: *const SourceRecordView,
    pub len: usize,
    pub sources: Buf,
}

impl SourceBatchView {
    /// No records.
    pub const EMPTY: SourceBatchView = SourceBatchView {
        records: std::ptr::null(),
        len: 0,
        sources: Buf {
            ptr: std::ptr::null(),
            len: 0,
        },
    };
}

/// Builds a [`SourceBatchView`], record by record. A record is either a view of an owned
/// [`SourceRecord`] the builder's owner keeps alive (and unmoved in memory: moving the `Vec`
/// that holds it is fine) while the view is read ([`Self::push_owned`]), or written into the
/// builder's own buffer ([`Self::start`], then the `set_*` methods for the record just
/// started): a source that writes its records in place allocates nothing per record.
/// Reused across batches, so a steady poll loop allocates nothing here either.
#[derive(Debug, Default)]
pub struct SourceBatchBuilder {
    views: Vec<SourceRecordView>,
    /// Per view, which of its flat parts are offsets into the side buffer, to be made
    /// addresses by [`Self::finish`] (`REL_*`; encoded parts are found by their form).
    relative: Vec<u8>,
    side: Side,
    sources: Vec<u8>,
    /// Where in `side` the last topic written was copied, and its length.
    topic: Option<(usize, usize)>,
    /// Per distinct source partition of the batch, its last record ([`Self::build`]).
    latest: Vec<usize>,
    /// Set by [`Self::finish`]: the address of the side buffer the views' offsets were made
    /// addresses against. Adding to a finished batch first turns them back into offsets
    /// (the buffer may move as it grows), and so does finishing it again.
    finished: Option<usize>,
}

// SAFETY: the raw pointers in `views` are addresses only; the builder never reads through
// them, and readers of the views it hands out uphold the lending rules.
unsafe impl Send for SourceBatchBuilder {}

/// Apply `f` to each part of `v` that lies in the side buffer (per its relative marks `rel`
/// and its forms): the same parts, whether they hold offsets or addresses.
fn side_parts(v: &mut SourceRecordView, rel: u8, mut f: impl FnMut(&mut Buf)) {
    let encoded = |d: &DataView| d.form == DataView::FORM_ENCODED || d.form == DataView::FORM_VALUE;
    if rel & REL_TOPIC != 0 && v.topic.len > 0 {
        f(&mut v.topic);
    }
    if (rel & REL_KEY != 0 && v.key.bytes.len > 0) || encoded(&v.key) {
        f(&mut v.key.bytes);
    }
    if (rel & REL_VALUE != 0 && v.value.bytes.len > 0) || encoded(&v.value) {
        f(&mut v.value.bytes);
    }
    if v.headers.len > 0 {
        f(&mut v.headers);
    }
}

const REL_TOPIC: u8 = 1;
const REL_KEY: u8 = 2;
const REL_VALUE: u8 = 4;

impl SourceBatchBuilder {
    /// Turn the addresses [`Self::finish`] made back into offsets into the side buffer.
    fn unfinish(&mut self) {
        if let Some(base) = self.finished.take() {
            for (v, &rel) in self.views.iter_mut().zip(&self.relative) {
                side_parts(v, rel, |b| {
                    b.ptr = std::ptr::without_provenance(b.ptr.addr().wrapping_sub(base))
                });
            }
        }
    }

    /// The views so far: to be read only after [`Self::finish`] (until then, parts of them
    /// are offsets, not addresses).
    pub fn views(&self) -> &[SourceRecordView] {
        &self.views
    }

    /// Start a new batch.
    pub fn clear(&mut self) {
        self.finished = None;
        self.views.clear();
        self.relative.clear();
        self.side.clear();
        self.sources.clear();
        self.topic = None;
        self.latest.clear();
    }

    /// How many records the batch has so far.
    pub fn len(&self) -> usize {
        self.views.len()
    }

    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
    }

    /// Describe `records`, with the last source offset of each source partition among
    /// them. The view is valid while `records` (their heap memory) and this builder are
    /// alive and unchanged.
    pub fn build(&mut self, records: &[SourceRecord]) -> SourceBatchView {
        self.clear();
        for (i, r) in records.iter().enumerate() {
            self.push_owned(r);
            if !r.source_partition.is_empty() || !r.source_offset.is_empty() {
                let same = |j: &usize| records[*j].source_partition == r.source_partition;
                match self.latest.iter().position(same) {
                    Some(k) => self.latest[k] = i,
                    None => self.latest.push(i),
                }
            }
        }
        let latest = std::mem::take(&mut self.latest);
        let view = self.finish(
            latest
                .iter()
                .map(|&i| (&records[i].source_partition, &records[i].source_offset)),
        );
        self.latest = latest;
        view
    }

    /// Add a view of `r`, which must stay alive and unchanged while the view is read. Its
    /// source position is not taken: [`Self::finish`] is told the batch's positions.
    pub fn push_owned(&mut self, r: &SourceRecord) {
        self.unfinish();
        let mut flags = 0;
        if r.partition.is_some() {
            flags |= SourceRecordView::HAS_PARTITION;
        }
        if r.timestamp.is_some() {
            flags |= SourceRecordView::HAS_TIMESTAMP;
        }
        self.views.push(SourceRecordView {
            topic: Buf::from_slice(r.topic.as_bytes()),
            key: view_of(&DataRef::of(&r.key), &mut self.side),
            value: view_of(&DataRef::of(&r.value), &mut self.side),
            headers: headers_at(&r.headers, &mut self.side.bytes),
            timestamp: r.timestamp.unwrap_or(0),
            partition: r.partition.unwrap_or(-1),
            flags,
        });
        self.relative.push(0);
    }

    /// Start a record for `topic` written into the builder's buffer: null key and value,
    /// no partition, timestamp or headers until the `set_*` methods say otherwise. A run
    /// of records for one topic shares one copy of its name.
    pub fn start(&mut self, topic: &str) {
        self.unfinish();
        let at = match self.topic {
            Some((at, len)) if self.side.bytes[at..at + len] == *topic.as_bytes() => at,
            _ => {
                let at = self.side.bytes.len();
                self.side.bytes.extend_from_slice(topic.as_bytes());
                self.topic = Some((at, topic.len()));
                at
            }
        };
        self.views.push(SourceRecordView {
            topic: Buf {
                ptr: std::ptr::without_provenance(at),
                len: topic.len(),
            },
            key: DataView::EMPTY,
            value: DataView::EMPTY,
            headers: Buf::from_slice(&[]),
            timestamp: 0,
            partition: -1,
            flags: 0,
        });
        self.relative.push(REL_TOPIC);
    }

    /// The record last started: its view and its relative marks. Calling a `set_*`
    /// method with no record started is the caller's bug; it starts a record for the
    /// empty topic, which the worker refuses with an error naming it.
    fn last(&mut self) -> (&mut SourceRecordView, &mut u8) {
        self.unfinish();
        if self.views.is_empty() {
            self.start("");
        }
        let n = self.views.len() - 1;
        (&mut self.views[n], &mut self.relative[n])
    }

    /// Copy `d` into the buffer as the started record's key (`key`) or value.
    fn set_data(&mut self, key: bool, d: &DataRef<'_>) {
        self.unfinish();
        let flat = |form, schema: Plain, bytes: &[u8], side: &mut Side| {
            let at = side.bytes.len();
            side.bytes.extend_from_slice(bytes);
            DataView {
                form,
                schema: schema.code(),
                bytes: Buf {
                    ptr: std::ptr::without_provenance(at),
                    len: bytes.len(),
                },
            }
        };
        let (v, rel) = match d {
            DataRef::Null => (DataView::EMPTY, false),
            DataRef::Bytes(b, p) => (flat(DataView::FORM_BYTES, *p, b, &mut self.side), true),
            DataRef::Str(s, p) => (
                flat(DataView::FORM_STRING, *p, s.as_bytes(), &mut self.side),
                true,
            ),
            DataRef::Data(d) => (self.side.encode(d), false),
            DataRef::Owned(d) => (self.side.encode(d), false),
        };
        self.put(key, v, rel);
    }

    fn put(&mut self, key: bool, v: DataView, rel: bool) {
        let (view, marks) = self.last();
        let bit = if key { REL_KEY } else { REL_VALUE };
        if rel {
            *marks |= bit;
        } else {
            *marks &= !bit;
        }
        if key {
            view.key = v;
        } else {
            view.value = v;
        }
    }

    /// The started record's key (copied).
    pub fn set_key(&mut self, key: &DataRef<'_>) {
        self.set_data(true, key);
    }

    /// The started record's value (copied).
    pub fn set_value(&mut self, value: &DataRef<'_>) {
        self.set_data(false, value);
    }

    /// The started record's value, flat (`text`: [`DataView::FORM_STRING`], which the
    /// reader checks is UTF-8; else raw bytes) with `schema`, written in place by `write`,
    /// which appends it to the buffer it is given.
    pub fn set_value_with(&mut self, text: bool, schema: Plain, write: impl FnOnce(&mut Vec<u8>)) {
        self.unfinish();
        let at = self.side.bytes.len();
        write(&mut self.side.bytes);
        let form = if text {
            DataView::FORM_STRING
        } else {
            DataView::FORM_BYTES
        };
        let v = DataView {
            form,
            schema: schema.code(),
            bytes: Buf {
                ptr: std::ptr::without_provenance(at),
                len: self.side.bytes.len() - at,
            },
        };
        self.put(false, v, true);
    }

    /// The started record's Kafka partition.
    pub fn set_partition(&mut self, partition: i32) {
        let (view, _) = self.last();
        view.partition = partition;
        view.flags |= SourceRecordView::HAS_PARTITION;
    }

    /// The started record's timestamp.
    pub fn set_timestamp(&mut self, timestamp: i64) {
        let (view, _) = self.last();
        view.timestamp = timestamp;
        view.flags |= SourceRecordView::HAS_TIMESTAMP;
    }

    /// The started record's headers (encoded into the buffer).
    pub fn set_headers(&mut self, headers: &[Header]) {
        self.unfinish();
        let b = headers_at(headers, &mut self.side.bytes);
        self.last().0.headers = b;
    }

    /// The view of the batch, with `positions`: per source partition, the source offset
    /// after the batch (the last of each partition's offsets in the batch). Valid while
    /// the builder is unchanged and the owned records it was given are alive. A batch may be
    /// added to after it was finished, and finished again (a new view, the old one invalid).
    pub fn finish<'p>(
        &mut self,
        positions: impl ExactSizeIterator<Item = (&'p OffsetMap, &'p OffsetMap)>,
    ) -> SourceBatchView {
        self.unfinish();
        let side = &self.side.bytes;
        for (v, &rel) in self.views.iter_mut().zip(&self.relative) {
            side_parts(v, rel, |b| b.ptr = side[b.ptr.addr()..].as_ptr());
        }
        self.finished = Some(side.as_ptr().addr());
        self.sources.clear();
        if positions.len() > 0 {
            wire::put_len(&mut self.sources, positions.len());
            for (partition, offset) in positions {
                record::put_offset_map(partition, &mut self.sources);
                record::put_offset_map(offset, &mut self.sources);
            }
        }
        SourceBatchView {
            records: self.views.as_ptr(),
            len: self.views.len(),
            sources: Buf::from_slice(&self.sources),
        }
    }
}

/// A polled record read from its view, borrowing the plugin's memory.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecordRef<'a> {
    pub topic: &'a str,
    pub partition: Option<i32>,
    pub timestamp: Option<i64>,
    pub key: DataRef<'a>,
    pub value: DataRef<'a>,
    headers: HeadersRef<'a>,
}

/// A record's headers: still encoded (from a view) or borrowed from an owned record.
#[derive(Debug, Clone, Copy)]
enum HeadersRef<'a> {
    Encoded(Buf),
    Owned(&'a [Header]),
}

impl PartialEq for HeadersRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self.decode(), other.decode()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

impl HeadersRef<'_> {
    fn is_empty(&self) -> bool {
        match self {
            HeadersRef::Encoded(b) => b.len == 0,
            HeadersRef::Owned(h) => h.is_empty(),
        }
    }

    fn decode(&self) -> Result<Vec<Header>, DecodeError> {
        match self {
            // SAFETY: an encoded reference is only made by `read_source_record` and
            // `read_sink_record_ref`, whose callers vouch for the memory for the reference's
            // lifetime.
            HeadersRef::Encoded(b) => unsafe { read_headers(*b) },
            HeadersRef::Owned(h) => Ok(h.to_vec()),
        }
    }
}

// SAFETY: `HeadersRef::Encoded` is a borrow for `'a` like the other fields, held as a
// `Buf` only to decode it on demand; nothing is mutated through it.
unsafe impl Send for SourceRecordRef<'_> {}
// SAFETY: as above.
unsafe impl Sync for SourceRecordRef<'_> {}

impl<'a> SourceRecordRef<'a> {
    /// Borrow an owned record (one a transform made, for instance).
    pub fn of(r: &'a SourceRecord) -> SourceRecordRef<'a> {
        SourceRecordRef {
            topic: &r.topic,
            partition: r.partition,
            timestamp: r.timestamp,
            key: DataRef::of(&r.key),
            value: DataRef::of(&r.value),
            headers: HeadersRef::Owned(&r.headers),
        }
    }

    /// Whether the record has headers.
    pub fn has_headers(&self) -> bool {
        !self.headers.is_empty()
    }

    /// The record's headers (decoded on demand: most records have none).
    pub fn headers(&self) -> Result<Vec<Header>, DecodeError> {
        self.headers.decode()
    }

    /// The record as an owned [`SourceRecord`], moving out what this reference already
    /// owns (structured data decoded from its encoding) instead of copying it; what is
    /// moved is left null here. For a record that is about to be handed on (to
    /// transforms) and not read again.
    pub fn take_owned(&mut self) -> Result<SourceRecord, DecodeError> {
        let take = |d: &mut DataRef<'a>| std::mem::replace(d, DataRef::Null).into_data();
        // With room to grow: a transform that routes the record (TimestampRouter's
        // `topic-yyyyMMdd`) rewrites the name in place instead of allocating another.
        let mut topic = String::with_capacity(self.topic.len() + 16);
        topic.push_str(self.topic);
        Ok(SourceRecord {
            source_partition: OffsetMap::new(),
            source_offset: OffsetMap::new(),
            topic,
            partition: self.partition,
            key: take(&mut self.key),
            value: take(&mut self.value),
            timestamp: self.timestamp,
            headers: self.headers()?,
        })
    }

    /// The record as an owned [`SourceRecord`], without its source position (positions
    /// cross per batch: [`read_sources`]).
    pub fn to_owned(&self) -> Result<SourceRecord, DecodeError> {
        Ok(SourceRecord {
            source_partition: OffsetMap::new(),
            source_offset: OffsetMap::new(),
            topic: self.topic.to_owned(),
            partition: self.partition,
            key: self.key.to_data(),
            value: self.value.to_data(),
            timestamp: self.timestamp,
            headers: self.headers()?,
        })
    }
}

/// Read one polled record.
///
/// # Safety
///
/// Every pointer in `v` must be valid for `'a` (the plugin lends them until its next poll,
/// stop or free).
pub unsafe fn read_source_record<'a>(
    v: &SourceRecordView,
    cache: &mut ReadCache,
) -> Result<SourceRecordRef<'a>, DecodeError> {
    Ok(SourceRecordRef {
        // SAFETY: guaranteed by the caller, for all three.
        topic: unsafe { read_topic(v.topic, cache) }?,
        key: unsafe { read_data(&v.key, cache) }?,
        value: unsafe { read_data(&v.value, cache) }?,
        partition: (v.flags & SourceRecordView::HAS_PARTITION != 0).then_some(v.partition),
        timestamp: (v.flags & SourceRecordView::HAS_TIMESTAMP != 0).then_some(v.timestamp),
        headers: HeadersRef::Encoded(v.headers),
    })
}

/// The records of a polled batch view.
///
/// # Safety
///
/// `b` must come from a poll whose records are still lent.
pub unsafe fn source_records<'a>(b: &SourceBatchView) -> &'a [SourceRecordView] {
    if b.len == 0 || b.records.is_null() {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(b.records, b.len) }
    }
}

/// The source positions of a polled batch: per source partition, its last offset.
///
/// # Safety
///
/// As for [`source_records`].
pub unsafe fn read_sources(
    b: &SourceBatchView,
) -> Result<Vec<(OffsetMap, OffsetMap)>, DecodeError> {
    // SAFETY: guaranteed by the caller.
    let bytes = unsafe { b.sources.as_slice() };
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut r = Reader::new(bytes);
    let n = r.count(8, "source positions")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let p = record::read_offset_map(&mut r)?;
        let o = record::read_offset_map(&mut r)?;
        out.push((p, o));
    }
    r.finish("source positions")?;
    Ok(out)
}

/// Where the worker wrote one polled record (Kafka's `RecordMetadata`), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataRef<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
}

/// Encode where each record of the last polled batch was written, in order (`None`: it
/// never reached a topic), for `source_task_commit_records`: a `u32` count, then per
/// record a `u8` 0 (none), 1 (`str` topic follows) or 2 (the previous record's topic),
/// then `i32` partition, `i64` offset, `opt<i64>` timestamp.
pub fn encode_record_metadata<'a>(
    metadata: impl ExactSizeIterator<Item = Option<MetadataRef<'a>>>,
    out: &mut Vec<u8>,
) {
    wire::put_len(out, metadata.len());
    let mut last: Option<&str> = None;
    for m in metadata {
        match m {
            None => wire::put_u8(out, 0),
            Some(m) => {
                if last == Some(m.topic) {
                    wire::put_u8(out, 2);
                } else {
                    wire::put_u8(out, 1);
                    wire::put_str(out, m.topic);
                    last = Some(m.topic);
                }
                wire::put_i32(out, m.partition);
                wire::put_i64(out, m.offset);
                wire::put_opt_i64(out, m.timestamp);
            }
        }
    }
}

/// Walk what [`encode_record_metadata`] wrote, handing `f` each record's index and
/// metadata (one [`RecordMetadata`] reused throughout: nothing is allocated per record).
/// `expected` is the batch's length; another count is an error.
pub fn for_each_record_metadata<E: From<DecodeError>>(
    buf: &[u8],
    expected: usize,
    mut f: impl FnMut(usize, Option<&RecordMetadata>) -> Result<(), E>,
) -> Result<(), E> {
    let mut r = Reader::new(buf);
    let n = r.count(1, "record metadata")?;
    if n != expected {
        return Err(DecodeError {
            what: "record metadata (not one per record of the last poll)",
            at: 0,
        }
        .into());
    }
    let mut meta = RecordMetadata {
        topic: String::new(),
        partition: 0,
        offset: 0,
        timestamp: None,
    };
    let mut have_topic = false;
    for i in 0..n {
        let at = r.position();
        match r.u8("record metadata flag")? {
            0 => {
                f(i, None)?;
                continue;
            }
            1 => {
                meta.topic.clear();
                meta.topic.push_str(r.str("metadata topic")?);
                have_topic = true;
            }
            2 if have_topic => {}
            _ => {
                return Err(DecodeError {
                    what: "record metadata flag",
                    at,
                }
                .into());
            }
        }
        meta.partition = r.i32("metadata partition")?;
        meta.offset = r.i64("metadata offset")?;
        meta.timestamp = r.opt_i64("metadata timestamp")?;
        f(i, Some(&meta))?;
    }
    r.finish("record metadata")?;
    Ok(())
}

/// Decode what [`encode_record_metadata`] wrote, into owned values.
pub fn decode_record_metadata(buf: &[u8]) -> Result<Vec<Option<RecordMetadata>>, DecodeError> {
    let n = Reader::new(buf).count(1, "record metadata")?;
    let mut out = Vec::with_capacity(n);
    for_each_record_metadata(buf, n, |_, m| {
        out.push(m.cloned());
        Ok::<_, DecodeError>(())
    })?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Sink records.

/// One record delivered to a sink task. `timestamp_type`: 0 none, 1 create time, 2 log
/// append time (then `timestamp` is meaningful).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SinkRecordView {
    pub topic: Buf,
    pub key: DataView,
    pub value: DataView,
    /// Encoded by [`record::encode_headers`]; no bytes when there are none.
    pub headers: Buf,
    pub offset: i64,
    pub timestamp: i64,
    pub partition: i32,
    pub timestamp_type: u32,
}

fn timestamp_code(t: TimestampType) -> u32 {
    match t {
        TimestampType::NoTimestamp => 0,
        TimestampType::CreateTime => 1,
        TimestampType::LogAppendTime => 2,
    }
}

/// The parts of a sink record as the host has them, borrowed: what [`SinkBatchBuilder`]
/// describes without building a [`SinkRecord`] first.
#[derive(Debug, Clone)]
pub struct SinkParts<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub timestamp_type: TimestampType,
    pub key: DataRef<'a>,
    pub value: DataRef<'a>,
    pub headers: &'a [Header],
}

impl<'a> SinkParts<'a> {
    /// A record of `topic`/`partition` at `offset` with only a value: no key, timestamp or
    /// headers (what the plugin benchmark and its in-process reference both describe).
    pub fn value_only(topic: &'a str, partition: i32, offset: i64, value: DataRef<'a>) -> Self {
        SinkParts {
            topic,
            partition,
            offset,
            timestamp: None,
            timestamp_type: TimestampType::NoTimestamp,
            key: DataRef::Null,
            value,
            headers: &[],
        }
    }
}

/// Builds the views of a batch of sink records; reused across batches.
#[derive(Debug, Default)]
pub struct SinkBatchBuilder {
    views: Vec<SinkRecordView>,
    side: Side,
}

// SAFETY: as for `SourceBatchBuilder`.
unsafe impl Send for SinkBatchBuilder {}

impl SinkBatchBuilder {
    /// Start a batch.
    pub fn clear(&mut self) {
        self.views.clear();
        self.side.clear();
    }

    /// Describe one record; its borrowed parts must stay alive and unmoved until the batch
    /// has been read.
    pub fn push(&mut self, p: &SinkParts<'_>) {
        let side = &mut self.side;
        let key = view_of(&p.key, side);
        let value = view_of(&p.value, side);
        let headers = headers_at(p.headers, &mut side.bytes);
        self.views.push(SinkRecordView {
            topic: Buf::from_slice(p.topic.as_bytes()),
            key,
            value,
            headers,
            offset: p.offset,
            timestamp: p.timestamp.unwrap_or(0),
            partition: p.partition,
            timestamp_type: match p.timestamp {
                None => 0,
                Some(_) => timestamp_code(p.timestamp_type),
            },
        });
    }

    /// Describe an owned record.
    pub fn push_record(&mut self, r: &SinkRecord) {
        self.push(&SinkParts {
            topic: &r.topic,
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            timestamp_type: r.timestamp_type,
            key: DataRef::of(&r.key),
            value: DataRef::of(&r.value),
            headers: &r.headers,
        });
    }

    /// The views of the batch, valid while the records described and this builder are
    /// alive and unchanged.
    pub fn finish(&mut self) -> &[SinkRecordView] {
        if !self.side.bytes.is_empty() {
            let side = &self.side.bytes;
            for v in &mut self.views {
                fix_encoded(&mut v.key, side);
                fix_encoded(&mut v.value, side);
                fix_buf(&mut v.headers, side);
            }
        }
        &self.views
    }
}

/// A delivered record read from its view, borrowing the host's memory: the topic, and a key
/// and value that are raw bytes or text, are read in place; structured data is decoded (its
/// schema once per batch, through the batch's [`ReadCache`]); headers are decoded only when
/// asked for. What a sink task that writes values out needs, without building a
/// [`SinkRecord`] per record.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkRecordRef<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub timestamp_type: TimestampType,
    pub key: DataRef<'a>,
    pub value: DataRef<'a>,
    headers: HeadersRef<'a>,
}

// SAFETY: as for `SourceRecordRef`.
unsafe impl Send for SinkRecordRef<'_> {}
// SAFETY: as above.
unsafe impl Sync for SinkRecordRef<'_> {}

impl<'a> SinkRecordRef<'a> {
    /// Borrow an owned record.
    pub fn of(r: &'a SinkRecord) -> SinkRecordRef<'a> {
        SinkRecordRef {
            topic: &r.topic,
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            timestamp_type: r.timestamp_type,
            key: DataRef::of(&r.key),
            value: DataRef::of(&r.value),
            headers: HeadersRef::Owned(&r.headers),
        }
    }

    /// Whether the record has headers.
    pub fn has_headers(&self) -> bool {
        !self.headers.is_empty()
    }

    /// The record's headers (decoded on demand: most records have none).
    pub fn headers(&self) -> Result<Vec<Header>, DecodeError> {
        self.headers.decode()
    }

    /// The record as an owned [`SinkRecord`].
    pub fn to_owned(&self) -> Result<SinkRecord, DecodeError> {
        Ok(SinkRecord {
            topic: self.topic.to_owned(),
            partition: self.partition,
            offset: self.offset,
            key: self.key.to_data(),
            value: self.value.to_data(),
            timestamp: self.timestamp,
            timestamp_type: self.timestamp_type,
            headers: self.headers()?,
        })
    }

    /// The record as an owned [`SinkRecord`], moving what this reference already owns
    /// (structured data decoded from its encoding) instead of copying it.
    pub fn into_owned(self) -> Result<SinkRecord, DecodeError> {
        let mut rec = SinkRecord::new(String::new(), 0, 0, Data::null());
        self.move_into(&mut rec)?;
        Ok(rec)
    }

    /// Make `rec` this record, replacing every field and moving what this reference owns.
    /// Filled in place: a record is 400-odd bytes, and building one elsewhere to move it
    /// into a batch costs a copy of all of it; `rec`'s topic keeps its allocation.
    pub fn move_into(self, rec: &mut SinkRecord) -> Result<(), DecodeError> {
        rec.headers = self.headers()?;
        rec.topic.clear();
        rec.topic.push_str(self.topic);
        rec.partition = self.partition;
        rec.offset = self.offset;
        rec.timestamp = self.timestamp;
        rec.timestamp_type = self.timestamp_type;
        self.key.move_into(&mut rec.key);
        self.value.move_into(&mut rec.value);
        Ok(())
    }
}

/// Read one delivered record in place.
///
/// # Safety
///
/// Every pointer in `v` must be valid for `'a` (the host lends them for the `put` call).
/// `cache` must be used for this batch only (see [`ReadCache`]).
pub unsafe fn read_sink_record_ref<'a>(
    v: &SinkRecordView,
    cache: &mut ReadCache,
) -> Result<SinkRecordRef<'a>, DecodeError> {
    let (timestamp, timestamp_type) = read_timestamp(v)?;
    Ok(SinkRecordRef {
        // SAFETY: guaranteed by the caller, for all three.
        topic: unsafe { read_topic(v.topic, cache) }?,
        key: unsafe { read_data(&v.key, cache) }?,
        value: unsafe { read_data(&v.value, cache) }?,
        partition: v.partition,
        offset: v.offset,
        timestamp,
        timestamp_type,
        headers: HeadersRef::Encoded(v.headers),
    })
}

/// A sink view's timestamp and its type.
fn read_timestamp(v: &SinkRecordView) -> Result<(Option<i64>, TimestampType), DecodeError> {
    match v.timestamp_type {
        0 => Ok((None, TimestampType::NoTimestamp)),
        1 => Ok((Some(v.timestamp), TimestampType::CreateTime)),
        2 => Ok((Some(v.timestamp), TimestampType::LogAppendTime)),
        other => Err(DecodeError {
            what: "timestamp type",
            at: other as usize,
        }),
    }
}

/// Read one delivered record into an owned [`SinkRecord`].
///
/// # Safety
///
/// Every pointer in `v` must be valid for the call.
pub unsafe fn read_sink_record(
    v: &SinkRecordView,
    cache: &mut ReadCache,
) -> Result<SinkRecord, DecodeError> {
    // SAFETY: guaranteed by the caller.
    unsafe { read_sink_record_ref(v, cache) }?.into_owned()
}

/// Read one delivered record into `rec`, replacing every field (see
/// [`SinkRecordRef::move_into`]).
///
/// # Safety
///
/// Every pointer in `v` must be valid for the call.
pub unsafe fn read_sink_record_into(
    v: &SinkRecordView,
    rec: &mut SinkRecord,
    cache: &mut ReadCache,
) -> Result<(), DecodeError> {
    // SAFETY: guaranteed by the caller.
    unsafe { read_sink_record_ref(v, cache) }?.move_into(rec)
}

/// The views of a delivered batch.
///
/// # Safety
///
/// `ptr` must point to `len` views valid for `'a` (or `len` be 0).
pub unsafe fn sink_records<'a>(ptr: *const SinkRecordView, len: usize) -> &'a [SinkRecordView] {
    if len == 0 || ptr.is_null() {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::StructBuilder;

    fn records() -> Vec<SourceRecord> {
        let schema = Schema::structure()
            .field("id", Schema::int64())
            .field("name", Schema::string().optional());
        let row = StructBuilder::new(schema)
            .unwrap()
            .put("id", 7i64)
            .unwrap()
            .put("name", Value::String("x".into()))
            .unwrap()
            .build()
            .unwrap();
        let part = |t: i32| -> OffsetMap { [("task".to_owned(), Value::Int32(t))].into() };
        let off = |n: i64| -> OffsetMap { [("seq".to_owned(), Value::Int64(n))].into() };
        vec![
            SourceRecord::new("a", Data::bytes(b"v0".to_vec())).with_source(part(0), off(1)),
            SourceRecord::new("b", row)
                .with_key(Data::string("k"))
                .with_partition(3)
                .with_timestamp(99)
                .with_header("h", Data::string("hv"))
                .with_source(part(1), off(5)),
            SourceRecord::new("a", Data::schemaless(Value::String("s".into())))
                .with_key(Data {
                    schema: Some(Schema::bytes().optional()),
                    value: Value::Bytes(vec![1, 2]),
                })
                .with_source(part(0), off(2)),
            SourceRecord::new("a", Data::null()),
        ]
    }

    #[test]
    fn source_batches_read_back_as_built() {
        let recs = records();
        let mut b = SourceBatchBuilder::default();
        // Twice: a reused builder starts afresh.
        for _ in 0..2 {
            let view = b.build(&recs);
            // SAFETY: `recs` and `b` are alive and unchanged while the view is read.
            let views = unsafe { source_records(&view) };
            assert_eq!(views.len(), recs.len());
            for (v, r) in views.iter().zip(&recs) {
                // SAFETY: as above.
                let got = unsafe { read_source_record(v, &mut ReadCache::default()) }.unwrap();
                let mut want = r.clone();
                want.source_partition.clear();
                want.source_offset.clear();
                assert_eq!(got.to_owned().unwrap(), want);
                // Taking moves what the reference owns and gives the same record.
                let mut taken = got.clone();
                assert_eq!(taken.take_owned().unwrap(), want);
                assert_eq!(taken.value, DataRef::Null);
            }
            // SAFETY: as above.
            let sources = unsafe { read_sources(&view) }.unwrap();
            assert_eq!(sources.len(), 2, "one entry per source partition");
            assert_eq!(sources[0].0, recs[0].source_partition);
            assert_eq!(
                sources[0].1, recs[2].source_offset,
                "the last offset of task 0"
            );
            assert_eq!(sources[1].1, recs[1].source_offset);
        }
        // Flat forms are pointers into the records themselves.
        let view = b.build(&recs);
        // SAFETY: as above.
        let views = unsafe { source_records(&view) };
        assert_eq!(views[0].value.form, DataView::FORM_BYTES);
        assert_eq!(views[1].key.form, DataView::FORM_STRING);
        assert_eq!(views[1].key.schema, DataView::SCHEMA_REQUIRED);
        assert_eq!(views[1].value.form, DataView::FORM_VALUE);
        assert_eq!(views[2].key.schema, DataView::SCHEMA_OPTIONAL);
        assert_eq!(views[3].value.form, DataView::FORM_NULL);
        let Value::Bytes(v0) = &recs[0].value.value else {
            unreachable!()
        };
        assert_eq!(views[0].value.bytes.ptr, v0.as_ptr());
    }

    #[test]
    fn sink_batches_read_back_as_built() {
        let recs: Vec<SinkRecord> = records()
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let mut s = SinkRecord::new(r.topic, 2, 10 + i as i64, r.value).with_key(r.key);
                s.headers = r.headers;
                if i == 1 {
                    s = s.with_timestamp(5, TimestampType::LogAppendTime);
                }
                s
            })
            .collect();
        let mut b = SinkBatchBuilder::default();
        for _ in 0..2 {
            b.clear();
            for r in &recs {
                b.push_record(r);
            }
            let views = b.finish();
            let got: Vec<SinkRecord> = views
                .iter()
                // SAFETY: `recs` and `b` are alive and unchanged.
                .map(|v| unsafe { read_sink_record(v, &mut ReadCache::default()) }.unwrap())
                .collect();
            assert_eq!(got, recs);
        }
    }

    /// Every form a sink record's key and value take, read in place from views and
    /// borrowed from the owned record, agree with the record itself.
    #[test]
    fn sink_record_refs_read_every_form_back() {
        let schema = Schema::structure()
            .field("id", Schema::int64())
            .field("name", Schema::string().optional());
        let row = |i: i64| {
            StructBuilder::new(schema.clone())
                .unwrap()
                .put("id", i)
                .unwrap()
                .put("name", Value::String(format!("row {i}")))
                .unwrap()
                .build()
                .unwrap()
        };
        let with = |schema: Option<Schema>, value: Value| Data { schema, value };
        // (value, the form it crosses in)
        let cases: Vec<(Data, u32)> = vec![
            (Data::null(), DataView::FORM_NULL),
            (
                Data::schemaless(Value::Bytes(b"raw".to_vec())),
                DataView::FORM_BYTES,
            ),
            (Data::bytes(b"b".to_vec()), DataView::FORM_BYTES),
            (
                with(
                    Some(Schema::bytes().optional()),
                    Value::Bytes(vec![0xff, 0]),
                ),
                DataView::FORM_BYTES,
            ),
            (
                Data::schemaless(Value::String("s".into())),
                DataView::FORM_STRING,
            ),
            (Data::string("\u{e9}t\u{e9}"), DataView::FORM_STRING),
            (
                with(
                    Some(Schema::string().optional()),
                    Value::String(String::new()),
                ),
                DataView::FORM_STRING,
            ),
            (row(1), DataView::FORM_VALUE),
            (row(2), DataView::FORM_VALUE),
            // A tombstone with a schema keeps it.
            (
                with(Some(Schema::string().optional()), Value::Null),
                DataView::FORM_VALUE,
            ),
            (Data::schemaless(Value::Int32(5)), DataView::FORM_ENCODED),
            (
                with(
                    Some(Schema::string().doc("named")),
                    Value::String("x".into()),
                ),
                DataView::FORM_VALUE,
            ),
        ];
        let recs: Vec<SinkRecord> = cases
            .iter()
            .enumerate()
            .map(|(i, (value, _))| {
                let mut r = SinkRecord::new(
                    format!("topic-{}", i % 2),
                    i as i32 % 3,
                    40 + i as i64,
                    value.clone(),
                )
                .with_key(cases[cases.len() - 1 - i].0.clone());
                if i % 3 == 1 {
                    r = r.with_timestamp(1000 + i as i64, TimestampType::CreateTime);
                }
                if i % 4 == 2 {
                    r = r
                        .with_header("h", Data::string("hv"))
                        .with_header("n", Data::null());
                }
                r
            })
            .collect();
        let mut b = SinkBatchBuilder::default();
        for r in &recs {
            b.push_record(r);
        }
        let views = b.finish();
        let mut cache = ReadCache::default();
        let mut shared = None;
        for ((v, r), (_, form)) in views.iter().zip(&recs).zip(&cases) {
            assert_eq!(v.value.form, *form, "{:?}", r.value);
            // SAFETY: `recs` and `b` are alive and unchanged while the views are read.
            let got = unsafe { read_sink_record_ref(v, &mut cache) }.unwrap();
            let of = SinkRecordRef::of(r);
            assert_eq!(
                (got.topic, got.partition, got.offset, got.timestamp),
                (of.topic, of.partition, of.offset, of.timestamp)
            );
            assert_eq!(got.timestamp_type, of.timestamp_type);
            assert_eq!(got.key.to_data(), of.key.to_data());
            assert_eq!(got.value.to_data(), of.value.to_data());
            assert_eq!(got.headers, of.headers, "read in place as borrowed");
            assert_eq!(got.has_headers(), !r.headers.is_empty());
            assert_eq!(got.headers().unwrap(), r.headers);
            assert_eq!(&got.to_owned().unwrap(), r);
            assert_eq!(&got.clone().into_owned().unwrap(), r);
            let mut filled = recs[0].clone();
            got.clone().move_into(&mut filled).unwrap();
            assert_eq!(&filled, r, "filled in place over another record");
            assert_eq!(got.value.to_data(), r.value);
            match (&got.value, &r.value.value) {
                // Flat values are the record's own memory, not copies.
                (DataRef::Bytes(b, _), Value::Bytes(want)) => {
                    assert_eq!(b.as_ptr(), want.as_ptr())
                }
                (DataRef::Str(t, _), Value::String(want)) => {
                    assert_eq!(t.as_ptr(), want.as_ptr())
                }
                (DataRef::Null, Value::Null) => {}
                (DataRef::Owned(d), _) => {
                    // Rows of one schema share one decoded schema.
                    if matches!(d.value, Value::Struct(_)) {
                        let s = d.schema.clone().unwrap();
                        if let Some(first) = &shared {
                            assert!(s.same(first), "one schema for the batch's rows");
                        }
                        shared = Some(s);
                    }
                }
                other => panic!("unexpected form {other:?}"),
            }
            assert_eq!(
                got.topic.as_ptr(),
                r.topic.as_ptr(),
                "the topic is borrowed"
            );
        }
        assert!(shared.is_some());
        // A timestamp type that does not exist is an error.
        let mut bad = views[0];
        bad.timestamp_type = 3;
        // SAFETY: as above.
        assert!(unsafe { read_sink_record_ref(&bad, &mut cache) }.is_err());
    }

    /// Rows of one table: the schema crosses once per batch and is shared by the records
    /// read back, whether the rows shared one handle or carried equal copies.
    #[test]
    fn a_batch_encodes_each_schema_once_and_readers_share_it() {
        let schema = Schema::structure().field("id", Schema::int64()).field(
            "name",
            Schema::string()
                .optional()
                .doc("a long documentation string"),
        );
        let row = |i: i64, schema: Schema| {
            let d = StructBuilder::new(schema)
                .unwrap()
                .put("id", i)
                .unwrap()
                .put("name", Value::String(format!("row {i}")))
                .unwrap()
                .build()
                .unwrap();
            SourceRecord::new("t", d)
        };
        let shared: Vec<SourceRecord> = (0..100).map(|i| row(i, schema.clone())).collect();
        let rebuilt: Vec<SourceRecord> = (0..100)
            .map(|i| {
                row(
                    i,
                    Schema::structure().field("id", Schema::int64()).field(
                        "name",
                        Schema::string()
                            .optional()
                            .doc("a long documentation string"),
                    ),
                )
            })
            .collect();
        let mut one = Vec::new();
        data::encode_data(&shared[0].value, &mut one);
        for recs in [&shared, &rebuilt] {
            let mut b = SourceBatchBuilder::default();
            let view = b.build(recs);
            assert!(
                b.side.bytes.len() < 100 * one.len() / 2,
                "the schema is not encoded per record ({} bytes for 100 rows of {})",
                b.side.bytes.len(),
                one.len()
            );
            // SAFETY: `recs` and `b` are alive and unchanged while the view is read.
            let views = unsafe { source_records(&view) };
            let mut cache = ReadCache::default();
            let got: Vec<SourceRecordRef<'_>> = views
                .iter()
                // SAFETY: as above.
                .map(|v| unsafe { read_source_record(v, &mut cache) }.unwrap())
                .collect();
            for (g, r) in got.iter().zip(recs.iter()) {
                assert_eq!(g.value.as_data(), Some(&r.value));
            }
            let first = got[0].value.as_data().unwrap().schema.as_ref().unwrap();
            let last = got[99].value.as_data().unwrap().schema.as_ref().unwrap();
            assert!(first.same(last), "one decoded schema for the batch");
        }
        // More distinct schemas than a batch shares: the rest cross with their own.
        let many: Vec<SourceRecord> = (0..200)
            .map(|i| row(i, schema.clone().named(format!("s{i}"))))
            .collect();
        let mut b = SourceBatchBuilder::default();
        let view = b.build(&many);
        // SAFETY: as above.
        let views = unsafe { source_records(&view) };
        assert_eq!(views[0].value.form, DataView::FORM_VALUE);
        assert_eq!(views[199].value.form, DataView::FORM_ENCODED);
        let mut cache = ReadCache::default();
        for (v, r) in views.iter().zip(&many) {
            // SAFETY: as above.
            let got = unsafe { read_source_record(v, &mut cache) }.unwrap();
            assert_eq!(got.value.as_data(), Some(&r.value));
        }
    }

    #[test]
    fn bad_views_are_errors_not_panics() {
        let text = "\u{e9}";
        let mut v = DataView {
            form: DataView::FORM_STRING,
            schema: DataView::SCHEMA_NONE,
            bytes: Buf::from_slice(&text.as_bytes()[..1]),
        };
        // SAFETY: the bytes are alive.
        assert!(
            unsafe { read_data(&v, &mut ReadCache::default()) }.is_err(),
            "not UTF-8"
        );
        v.form = 9;
        // SAFETY: as above.
        assert!(
            unsafe { read_data(&v, &mut ReadCache::default()) }.is_err(),
            "unknown form"
        );
        v.form = DataView::FORM_BYTES;
        v.schema = 7;
        // SAFETY: as above.
        assert!(
            unsafe { read_data(&v, &mut ReadCache::default()) }.is_err(),
            "unknown schema code"
        );
        v.form = DataView::FORM_ENCODED;
        // SAFETY: as above.
        assert!(
            unsafe { read_data(&v, &mut ReadCache::default()) }.is_err(),
            "not an encoding"
        );
        // A shared schema that is not one: no bytes before the value, or bytes that are not a
        // schema.
        let side = [0xffu8, 0xff, 0xff, 0x01];
        v.form = DataView::FORM_VALUE;
        v.bytes = Buf::from_slice(&side[3..]);
        for distance in [0, 3] {
            v.schema = distance;
            // SAFETY: the `distance` bytes before `v.bytes` are `side`'s.
            let got = unsafe { read_data(&v, &mut ReadCache::default()) };
            assert!(
                got.is_err(),
                "a schema {distance} bytes back decoded: {got:?}"
            );
        }
        let at = |topic, offset| MetadataRef {
            topic,
            partition: 1,
            offset,
            timestamp: Some(3),
        };
        let meta = [None, Some(at("t", 2)), Some(at("t", 3)), Some(at("u", 4))];
        let mut buf = Vec::new();
        encode_record_metadata(meta.iter().copied(), &mut buf);
        let owned = |m: &Option<MetadataRef<'_>>| {
            m.map(|m| RecordMetadata {
                topic: m.topic.to_owned(),
                partition: m.partition,
                offset: m.offset,
                timestamp: m.timestamp,
            })
        };
        assert_eq!(
            decode_record_metadata(&buf).unwrap(),
            meta.iter().map(owned).collect::<Vec<_>>()
        );
        assert!(decode_record_metadata(&buf[..buf.len() - 1]).is_err());
        let wrong: Result<(), DecodeError> = for_each_record_metadata(&buf, 3, |_, _| Ok(()));
        assert!(wrong.is_err(), "a count other than the batch's");
        // "Same topic as before" with no topic before is an error, not a guess.
        let mut bad = Vec::new();
        wire::put_len(&mut bad, 1);
        wire::put_u8(&mut bad, 2);
        wire::put_i32(&mut bad, 0);
        wire::put_i64(&mut bad, 0);
        wire::put_opt_i64(&mut bad, None);
        assert!(decode_record_metadata(&bad).is_err());
    }
}
