//! The batch a source task fills in [`SourceTask::poll_batch`](crate::SourceTask::poll_batch).
//!
//! A record goes in whole ([`SourceBatch::push`], an owned [`SourceRecord`]: what `poll`
//! returns) or is written into the batch's own buffer ([`SourceBatch::add`]): its topic,
//! key and value are copied there (or written there in place, [`NewRecord::value_with`]),
//! so a source that produces many small records allocates nothing per record, and the
//! worker reads them where they lie. Source positions of written records are per batch,
//! not per record ([`SourceBatch::set_offset`]): the worker commits, for each source
//! partition, the offset after the last record it polled from it, which is all a per-record
//! offset would have told it.
//!
//! The batch is reused from poll to poll; it is lent to the worker until the next poll.

use tributary_plugin_abi::record::{Header, OffsetMap, SourceRecord};
use tributary_plugin_abi::view::{
    self, DataRef, Plain, ReadCache, SourceBatchBuilder, SourceBatchView, SourceRecordRef,
    SourceRecordView,
};

use crate::error::{ConnectError, Result};

/// The records of one poll. See the module documentation.
#[derive(Debug, Default)]
pub struct SourceBatch {
    /// The records pushed whole, in order.
    owned: Vec<SourceRecord>,
    /// Per record of the batch, its index in `owned`, or [`WRITTEN`].
    kinds: Vec<u32>,
    views: SourceBatchBuilder,
    /// Offsets set with `set_offset`.
    set: Vec<(OffsetMap, OffsetMap)>,
    /// Per source partition of the batch, where its last offset is.
    latest: Vec<Latest>,
}

/// A record written in place (not in `owned`).
const WRITTEN: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
enum Latest {
    /// The source position of owned record `i`.
    Record(usize),
    /// Entry `i` of `set`.
    Set(usize),
}

impl SourceBatch {
    pub fn new() -> SourceBatch {
        SourceBatch::default()
    }

    /// How many records the batch has.
    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Empty the batch (the SDK does it before each poll), keeping its memory.
    pub fn clear(&mut self) {
        self.owned.clear();
        self.kinds.clear();
        self.views.clear();
        self.set.clear();
        self.latest.clear();
    }

    fn partition_of(&self, l: Latest) -> &OffsetMap {
        match l {
            Latest::Record(i) => &self.owned[i].source_partition,
            Latest::Set(i) => &self.set[i].0,
        }
    }

    fn note(&mut self, partition: &OffsetMap, l: Latest) {
        match self
            .latest
            .iter()
            .position(|&k| self.partition_of(k) == partition)
        {
            Some(k) => self.latest[k] = l,
            None => self.latest.push(l),
        }
    }

    /// Add a whole record, with its source position.
    pub fn push(&mut self, record: SourceRecord) {
        let i = self.owned.len();
        self.views.push_owned(&record);
        self.kinds.push(i as u32);
        let positioned = !record.source_partition.is_empty() || !record.source_offset.is_empty();
        self.owned.push(record);
        if positioned {
            let partition = self.owned[i].source_partition.clone();
            self.note(&partition, Latest::Record(i));
        }
    }

    /// Add a record for `topic`, written into the batch: null key and value, no
    /// partition, timestamp or headers until the returned [`NewRecord`] sets them.
    pub fn add(&mut self, topic: &str) -> NewRecord<'_> {
        self.views.start(topic);
        self.kinds.push(WRITTEN);
        NewRecord { batch: self }
    }

    /// Source partition `partition` is at `offset` after the records added so far (the
    /// offset the worker commits for it once they are written, unless a later record or
    /// call of this batch moves it on).
    pub fn set_offset(&mut self, partition: &OffsetMap, offset: OffsetMap) {
        let i = self.set.len();
        self.set.push((partition.clone(), offset));
        self.note(partition, Latest::Set(i));
    }

    /// The source positions of the batch: per source partition, its last offset.
    pub fn positions(&self) -> Vec<(OffsetMap, OffsetMap)> {
        self.latest
            .iter()
            .map(|&l| match l {
                Latest::Record(i) => (
                    self.owned[i].source_partition.clone(),
                    self.owned[i].source_offset.clone(),
                ),
                Latest::Set(i) => self.set[i].clone(),
            })
            .collect()
    }

    /// Record `i` if it was pushed whole.
    pub fn owned(&self, i: usize) -> Option<&SourceRecord> {
        match self.kinds.get(i) {
            Some(&k) if k != WRITTEN => self.owned.get(k as usize),
            _ => None,
        }
    }

    /// The view of the batch to lend to the worker. Once per batch.
    pub(crate) fn finish(&mut self) -> SourceBatchView {
        let SourceBatch {
            owned,
            views,
            set,
            latest,
            ..
        } = self;
        views.finish(latest.iter().map(|&l| match l {
            Latest::Record(i) => (&owned[i].source_partition, &owned[i].source_offset),
            Latest::Set(i) => (&set[i].0, &set[i].1),
        }))
    }

    /// The views of the finished batch (what was lent to the worker), until it changes.
    pub(crate) fn lent(&self) -> &[SourceRecordView] {
        self.views.views()
    }

    /// Finish the batch and read it back as the worker will: what a test, or a
    /// connector's own in-process code, does with a filled batch. Once per batch.
    pub fn read(&mut self) -> LentBatch<'_> {
        let view = self.finish();
        // SAFETY: the batch is borrowed for the result's lifetime, so nothing it points at
        // changes or goes away while it is read.
        let records = unsafe { view::source_records(&view) };
        LentBatch {
            records,
            cache: ReadCache::default(),
        }
    }
}

/// A finished [`SourceBatch`], read as the worker reads it.
#[derive(Debug)]
pub struct LentBatch<'a> {
    records: &'a [SourceRecordView],
    cache: ReadCache,
}

impl<'a> LentBatch<'a> {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Record `i`, borrowing the batch.
    pub fn get(&mut self, i: usize) -> Result<SourceRecordRef<'a>> {
        let v = self
            .records
            .get(i)
            .ok_or_else(|| ConnectError::new(format!("no record {i} in the batch")))?;
        // SAFETY: `records` and what they point at are borrowed from the batch for 'a.
        unsafe { view::read_source_record(v, &mut self.cache) }
            .map_err(|e| ConnectError::new(format!("record {i} of the batch: {e}")))
    }
}

/// A record being written into a [`SourceBatch`]: it is in the batch already; each call
/// sets one of its parts (copied into the batch).
#[derive(Debug)]
pub struct NewRecord<'b> {
    batch: &'b mut SourceBatch,
}

impl NewRecord<'_> {
    /// The key: [`DataRef::of`] an owned [`Data`](crate::Data), or a flat
    /// `DataRef::Str` / `DataRef::Bytes`.
    pub fn key(self, key: DataRef<'_>) -> Self {
        self.batch.views.set_key(&key);
        self
    }

    /// The value, as for [`Self::key`].
    pub fn value(self, value: DataRef<'_>) -> Self {
        self.batch.views.set_value(&value);
        self
    }

    /// The value, text (`text`; the worker checks that it is UTF-8 and fails the task if
    /// it is not) or raw bytes with `schema`, written in place: `write` appends it to the
    /// buffer it is given (and must not touch what is already there).
    pub fn value_with(self, text: bool, schema: Plain, write: impl FnOnce(&mut Vec<u8>)) -> Self {
        self.batch.views.set_value_with(text, schema, write);
        self
    }

    /// The Kafka partition (default: the worker's partitioner picks it).
    pub fn partition(self, partition: i32) -> Self {
        self.batch.views.set_partition(partition);
        self
    }

    /// The timestamp (default: when the worker writes it).
    pub fn timestamp(self, timestamp: i64) -> Self {
        self.batch.views.set_timestamp(timestamp);
        self
    }

    /// The headers.
    pub fn headers(self, headers: &[Header]) -> Self {
        self.batch.views.set_headers(headers);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Data, Schema, Value};

    fn part(t: i32) -> OffsetMap {
        [("task".to_owned(), Value::Int32(t))].into()
    }

    fn off(n: i64) -> OffsetMap {
        [("seq".to_owned(), Value::Int64(n))].into()
    }

    fn hv() -> Header {
        Header {
            key: "h".into(),
            value: Data::string("hv"),
        }
    }

    #[test]
    fn written_and_pushed_records_read_back_in_order_with_positions() {
        let mut b = SourceBatch::new();
        // Twice: a reused batch starts afresh.
        for round in 0..2 {
            b.clear();
            b.add("t")
                .key(DataRef::Str("k", Plain::Required))
                .value(DataRef::Bytes(b"v1", Plain::None))
                .partition(2)
                .timestamp(7);
            b.push(
                SourceRecord::new("u", Data::string("owned"))
                    .with_source(part(1), off(round * 10 + 1)),
            );
            let row = Data {
                schema: Some(Schema::structure().field("id", Schema::int64())),
                value: Value::Struct(vec![Value::Int64(5)]),
            };
            b.add("t").value(DataRef::of(&row)).headers(&[hv()]);
            b.add("t").value_with(true, Plain::Optional, |out| {
                out.extend_from_slice(b"in place")
            });
            b.set_offset(&part(0), off(3));
            b.set_offset(&part(0), off(4));
            assert_eq!(b.len(), 4);
            assert!(b.owned(1).is_some() && b.owned(0).is_none());
            assert_eq!(
                b.positions(),
                vec![(part(1), off(round * 10 + 1)), (part(0), off(4))]
            );
            let mut lent = b.read();
            let r0 = lent.get(0).unwrap();
            assert_eq!(
                (r0.topic, r0.partition, r0.timestamp),
                ("t", Some(2), Some(7))
            );
            assert_eq!(r0.key, DataRef::Str("k", Plain::Required));
            assert_eq!(r0.value, DataRef::Bytes(b"v1", Plain::None));
            let r1 = lent.get(1).unwrap();
            assert_eq!(r1.topic, "u");
            assert_eq!(r1.value.to_data(), Data::string("owned"));
            let r2 = lent.get(2).unwrap();
            assert_eq!(r2.value.to_data(), row);
            assert_eq!(r2.headers().unwrap(), vec![hv()]);
            let r3 = lent.get(3).unwrap();
            assert_eq!(r3.value, DataRef::Str("in place", Plain::Optional));
            assert!(lent.get(4).is_err());
        }
    }

    #[test]
    fn a_batch_read_and_then_added_to_reads_back_whole() {
        let mut b = SourceBatch::new();
        b.add("t").value(DataRef::Str("first", Plain::None));
        let row = Data {
            schema: Some(Schema::structure().field("id", Schema::int64())),
            value: Value::Struct(vec![Value::Int64(1)]),
        };
        b.add("t").value(DataRef::of(&row)).headers(&[hv()]);
        assert_eq!(b.read().len(), 2);
        // Enough more that the batch's buffer moves as it grows.
        let long = "x".repeat(100_000);
        for _ in 0..20 {
            b.add("u").value(DataRef::Str(&long, Plain::Required));
        }
        b.push(SourceRecord::new("v", Data::string("owned")));
        let mut lent = b.read();
        assert_eq!(lent.len(), 23);
        let r0 = lent.get(0).unwrap();
        assert_eq!(
            (r0.topic, r0.value),
            ("t", DataRef::Str("first", Plain::None))
        );
        let r1 = lent.get(1).unwrap();
        assert_eq!(r1.value.to_data(), row);
        assert_eq!(r1.headers().unwrap(), vec![hv()]);
        assert_eq!(
            lent.get(21).unwrap().value,
            DataRef::Str(&long, Plain::Required)
        );
        assert_eq!(lent.get(22).unwrap().value.to_data(), Data::string("owned"));
    }

    #[test]
    fn text_that_is_not_utf8_is_refused_by_the_reader() {
        let mut b = SourceBatch::new();
        b.add("t").value_with(true, Plain::None, |out| {
            out.extend_from_slice(&[0xff, 0xfe])
        });
        let err = b.read().get(0).unwrap_err().to_string();
        assert!(err.contains("not UTF-8"), "{err}");
    }
}
