//! Harnesses for transformations and predicates: the same glue as the exported library
//! (the config validated by the `ConfigDef` and refused with every key's errors, each batch
//! lent as views and read back as the worker would, panics caught).

use std::marker::PhantomData;

use tributary_plugin_abi::ffi::RecordKind;
use tributary_plugin_abi::view::SinkBatchBuilder;

use super::{HResult, HarnessError, call};
use crate::config::RawConfig;
use crate::export::{ErasedTransform, as_sink_record, new_predicate, new_transform, read_batch};
use crate::transform::{ConnectRecord, Predicate, Transformation};

fn configure(t: &mut dyn ErasedTransform, config: &RawConfig) -> HResult<()> {
    let values = call(|| t.configure(config))?;
    let errors: Vec<String> = values
        .iter()
        .flat_map(|v| v.errors.iter().map(move |e| format!("{}: {e}", v.name)))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(HarnessError::Invalid(errors.join("; ")))
    }
}

/// Lend `records` as the worker does (views of one kind) and read them back as the plugin
/// does.
fn cross(records: &[ConnectRecord]) -> HResult<Vec<ConnectRecord>> {
    let kind = match records.first() {
        Some(ConnectRecord::Source(_)) | None => RecordKind::SOURCE,
        Some(ConnectRecord::Sink(_)) => RecordKind::SINK,
    };
    if records
        .iter()
        .any(|r| matches!(r, ConnectRecord::Sink(_)) != (kind == RecordKind::SINK))
    {
        return Err(HarnessError::Invalid(
            "a batch mixes source and sink records; the worker never does".into(),
        ));
    }
    let mut views = SinkBatchBuilder::default();
    let owned: Vec<_> = records.iter().cloned().map(as_sink_record).collect();
    for r in &owned {
        views.push_record(r);
    }
    let lent = views.finish();
    // SAFETY: the views describe `owned` and `views`, alive and unchanged for the call.
    call(|| unsafe { read_batch(kind, lent.as_ptr(), lent.len()) })
}

/// One configured transformation, applied to batches as the worker applies it.
///
/// ```
/// # use tributary_plugin_sdk::*;
/// # #[derive(Default)] struct Upper;
/// # impl Transformation for Upper {
/// #     const NAME: &'static str = "example.Upper";
/// #     fn config_def() -> ConfigDef { ConfigDef::new() }
/// #     fn configure(&mut self, _: Config) -> Result<()> { Ok(()) }
/// #     fn apply(&mut self, mut r: ConnectRecord) -> Result<Option<ConnectRecord>> {
/// #         let topic = r.topic().to_uppercase(); r.set_topic(topic); Ok(Some(r))
/// #     }
/// # }
/// use tributary_plugin_sdk::testing::{TransformHarness, config};
///
/// let mut h = TransformHarness::<Upper>::configure(config(&[])).unwrap();
/// let out = h.apply(vec![ConnectRecord::Source(SourceRecord::new("t", Data::string("x")))]).unwrap();
/// assert_eq!(out[0].topic(), "T");
/// h.close().unwrap();
/// ```
pub struct TransformHarness<T: Transformation> {
    inner: Box<dyn ErasedTransform>,
    _t: PhantomData<T>,
}

impl<T: Transformation> TransformHarness<T> {
    /// Create and configure; a config with errors is refused with each key's errors.
    pub fn configure(config: RawConfig) -> HResult<Self> {
        let mut inner = new_transform::<T>();
        configure(inner.as_mut(), &config)?;
        Ok(TransformHarness {
            inner,
            _t: PhantomData,
        })
    }

    /// Transform a batch (all source or all sink records): the records kept, in order, as
    /// they come back across the boundary. A source record keeps its source position.
    pub fn apply(&mut self, records: Vec<ConnectRecord>) -> HResult<Vec<ConnectRecord>> {
        let input = cross(&records)?;
        let inner = &mut self.inner;
        let out = call(|| inner.apply(input))?;
        let (origins, kept): (Vec<u32>, Vec<ConnectRecord>) = out.into_iter().unzip();
        let mut back = cross(&kept)?;
        for (r, i) in back.iter_mut().zip(origins) {
            if let (ConnectRecord::Source(r), Some(ConnectRecord::Source(o))) =
                (r, records.get(i as usize))
            {
                r.source_partition = o.source_partition.clone();
                r.source_offset = o.source_offset.clone();
            }
        }
        Ok(back)
    }

    /// Kafka's `close()`.
    pub fn close(mut self) -> HResult<()> {
        let inner = &mut self.inner;
        call(|| inner.close())
    }
}

/// One configured predicate, tested on batches as the worker tests it.
pub struct PredicateHarness<P: Predicate> {
    inner: Box<dyn ErasedTransform>,
    _p: PhantomData<P>,
}

impl<P: Predicate> PredicateHarness<P> {
    /// Create and configure; a config with errors is refused with each key's errors.
    pub fn configure(config: RawConfig) -> HResult<Self> {
        let mut inner = new_predicate::<P>();
        configure(inner.as_mut(), &config)?;
        Ok(PredicateHarness {
            inner,
            _p: PhantomData,
        })
    }

    /// Whether each record matches.
    pub fn test(&mut self, records: Vec<ConnectRecord>) -> HResult<Vec<bool>> {
        let input = cross(&records)?;
        let inner = &mut self.inner;
        call(|| inner.test(&input))
    }

    pub fn close(mut self) -> HResult<()> {
        let inner = &mut self.inner;
        call(|| inner.close())
    }
}

impl<T: Transformation> std::fmt::Debug for TransformHarness<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformHarness")
            .field("transform", &T::NAME)
            .finish()
    }
}

impl<P: Predicate> std::fmt::Debug for PredicateHarness<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PredicateHarness")
            .field("predicate", &P::NAME)
            .finish()
    }
}
