//! A batch of sink records lent to [`SinkTask::put_batch`](crate::SinkTask::put_batch), read
//! in place.
//!
//! At the boundary the worker lends its records as views for the duration of the `put`
//! call; a [`SinkBatch`] reads each one on demand as a [`SinkRecordRef`], borrowing the
//! topic and the flat key and value (raw bytes, text) from the worker's memory, so a sink
//! that writes values out allocates nothing per record. The same type wraps owned records
//! (the testing harness, a connector's own in-process code), so a sink has one code path.
//!
//! It is not an owned batch: nothing read from it outlives the `put_batch` call
//! ([`SinkBatch::to_owned`] copies what must be kept).

use std::cell::RefCell;

use tributary_plugin_abi::data::Data;
use tributary_plugin_abi::record::SinkRecord;
use tributary_plugin_abi::view::{self, ReadCache, SinkRecordRef, SinkRecordView};
use tributary_plugin_abi::wire::DecodeError;

use crate::error::{ConnectError, Result};

/// A batch of records delivered to a sink task, lent for one call.
#[derive(Debug)]
pub struct SinkBatch<'a> {
    records: Records<'a>,
    /// What was read of this batch's views (each shared schema is decoded once).
    cache: RefCell<ReadCache>,
}

#[derive(Debug, Clone, Copy)]
enum Records<'a> {
    /// Lent by the worker: read on demand.
    Views(&'a [SinkRecordView]),
    Owned(&'a [SinkRecord]),
}

impl<'a> SinkBatch<'a> {
    /// A batch of owned records: what a test, or a connector calling its own task
    /// in-process, hands to `put_batch`.
    pub fn of(records: &'a [SinkRecord]) -> SinkBatch<'a> {
        SinkBatch {
            records: Records::Owned(records),
            cache: RefCell::default(),
        }
    }

    /// A batch of lent views, read as they are asked for: what the SDK hands a task for
    /// the worker's `put`, and what in-process code that builds views the way the worker
    /// does (`tributary_plugin_abi::view::SinkBatchBuilder`) can hand one too.
    ///
    /// # Safety
    ///
    /// Everything the views point at must stay alive and unchanged for `'a` (the worker
    /// lends it for the `put` call).
    pub unsafe fn from_views(views: &'a [SinkRecordView]) -> SinkBatch<'a> {
        SinkBatch {
            records: Records::Views(views),
            cache: RefCell::default(),
        }
    }

    /// How many records the batch has.
    pub fn len(&self) -> usize {
        match self.records {
            Records::Views(v) => v.len(),
            Records::Owned(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record `i`, read in place. An error when there is no such record, or when the
    /// worker's view of it does not decode (a bug on one side of the boundary: the error
    /// names the record, and the task should fail with it). Each call reads the record
    /// again (structured data is decoded again): keep the reference rather than asking twice.
    pub fn get(&self, i: usize) -> Result<SinkRecordRef<'a>> {
        match self.records {
            Records::Owned(r) => r
                .get(i)
                .map(SinkRecordRef::of)
                .ok_or_else(|| self.no_record(i)),
            Records::Views(views) => {
                let v = views.get(i).ok_or_else(|| self.no_record(i))?;
                // SAFETY: the views and what they point at are alive for `'a`, as promised
                // by `from_views`'s caller; the cache is this batch's.
                unsafe { view::read_sink_record_ref(v, &mut self.cache.borrow_mut()) }
                    .map_err(|e| unreadable(i, v, e))
            }
        }
    }

    /// The records in order, each read as it is reached.
    pub fn iter(&self) -> SinkBatchIter<'_, 'a> {
        SinkBatchIter {
            batch: self,
            next: 0,
        }
    }

    /// The records as owned [`SinkRecord`]s (what `put` receives).
    pub fn to_owned(&self) -> Result<Vec<SinkRecord>> {
        match self.records {
            Records::Owned(r) => Ok(r.to_vec()),
            Records::Views(views) => {
                let mut out: Vec<SinkRecord> = Vec::with_capacity(views.len());
                let cache = &mut self.cache.borrow_mut();
                for (i, v) in views.iter().enumerate() {
                    // Each record is filled where it will stay (see
                    // `SinkRecordRef::move_into`).
                    out.push(SinkRecord::new(String::new(), 0, 0, Data::null()));
                    if let Some(rec) = out.last_mut() {
                        // SAFETY: as in `get`.
                        unsafe { view::read_sink_record_into(v, rec, cache) }
                            .map_err(|e| unreadable(i, v, e))?;
                    }
                }
                Ok(out)
            }
        }
    }

    fn no_record(&self, i: usize) -> ConnectError {
        ConnectError::new(format!(
            "no record {i} in a batch of {}; read records below its len()",
            self.len()
        ))
    }
}

/// A record the worker lent that does not decode: say which.
fn unreadable(i: usize, v: &SinkRecordView, e: DecodeError) -> ConnectError {
    ConnectError::new(format!(
        "the worker sent {e} in record {i} of the batch (partition {}, offset {})",
        v.partition, v.offset
    ))
}

/// The records of a [`SinkBatch`], read in order.
#[derive(Debug)]
pub struct SinkBatchIter<'b, 'a> {
    batch: &'b SinkBatch<'a>,
    next: usize,
}

impl<'a> Iterator for SinkBatchIter<'_, 'a> {
    type Item = Result<SinkRecordRef<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.batch.len() {
            return None;
        }
        let i = self.next;
        self.next += 1;
        Some(self.batch.get(i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.batch.len() - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for SinkBatchIter<'_, '_> {}

impl<'b, 'a> IntoIterator for &'b SinkBatch<'a> {
    type Item = Result<SinkRecordRef<'a>>;
    type IntoIter = SinkBatchIter<'b, 'a>;

    fn into_iter(self) -> SinkBatchIter<'b, 'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use tributary_plugin_abi::data::{Schema, StructBuilder, Value};
    use tributary_plugin_abi::ffi::Buf;
    use tributary_plugin_abi::record::TimestampType;
    use tributary_plugin_abi::view::{DataRef, DataView, SinkBatchBuilder};

    use super::*;

    fn records() -> Vec<SinkRecord> {
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
        vec![
            SinkRecord::new("a", 0, 10, Data::bytes(b"v0".to_vec())),
            SinkRecord::new("a", 0, 11, Data::string("v1"))
                .with_key(Data::string("k"))
                .with_timestamp(5, TimestampType::CreateTime)
                .with_header("h", Data::string("hv")),
            SinkRecord::new("b", 2, 7, row(1)),
            SinkRecord::new("b", 2, 8, row(2)).with_key(Data::bytes(vec![1])),
            SinkRecord::new("a", 1, 0, Data::null()),
        ]
    }

    #[test]
    fn lent_and_owned_batches_read_the_same_records() {
        let recs = records();
        let mut b = SinkBatchBuilder::default();
        for r in &recs {
            b.push_record(r);
        }
        let views = b.finish();
        // SAFETY: `recs` and `b` are alive and unchanged while the batch is read.
        let lent = unsafe { SinkBatch::from_views(views) };
        let owned = SinkBatch::of(&recs);
        for batch in [&lent, &owned] {
            assert_eq!(batch.len(), recs.len());
            assert!(!batch.is_empty());
            assert_eq!(batch.iter().len(), recs.len());
            for (i, (got, want)) in batch.iter().zip(&recs).enumerate() {
                let got = got.unwrap();
                assert_eq!(&got.to_owned().unwrap(), want, "record {i}");
                assert_eq!(batch.get(i).unwrap(), got);
                assert_eq!(
                    SinkRecordRef::of(want).to_owned().unwrap(),
                    got.to_owned().unwrap()
                );
            }
            assert_eq!(batch.to_owned().unwrap(), recs);
            let err = batch.get(recs.len()).unwrap_err();
            assert!(
                err.message().contains("no record 5 in a batch of 5"),
                "{err}"
            );
        }
        // Flat values are read in place, from the records the views describe.
        let DataRef::Bytes(v0, _) = lent.get(0).unwrap().value else {
            panic!("{:?}", lent.get(0))
        };
        let Value::Bytes(want) = &recs[0].value.value else {
            unreachable!()
        };
        assert_eq!(v0.as_ptr(), want.as_ptr());
        assert!(SinkBatch::of(&[]).is_empty());
    }

    #[test]
    fn a_record_that_does_not_decode_is_an_error_naming_it() {
        let recs = records();
        let mut b = SinkBatchBuilder::default();
        for r in &recs {
            b.push_record(r);
        }
        let mut views = b.finish().to_vec();
        let text = "\u{e9}";
        views[3].value = DataView {
            form: DataView::FORM_STRING,
            schema: DataView::SCHEMA_NONE,
            bytes: Buf::from_slice(&text.as_bytes()[..1]),
        };
        // SAFETY: `recs`, `b` and `text` are alive and unchanged while the batch is read.
        let batch = unsafe { SinkBatch::from_views(&views) };
        assert!(batch.get(2).is_ok(), "the records before it read");
        for err in [batch.get(3).unwrap_err(), batch.to_owned().unwrap_err()] {
            assert!(!err.is_retriable());
            assert_eq!(
                err.message(),
                "the worker sent malformed string data view (not UTF-8) at byte 0 in record 3 \
                 of the batch (partition 2, offset 8)"
            );
        }
        let errors = batch.iter().filter(|r| r.is_err()).count();
        assert_eq!(errors, 1, "the others still read");
    }
}
