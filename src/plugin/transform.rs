//! The host's handle on a plugin's transformation or predicate.
//!
//! A batch crosses once per call: the host lends its records as views (the sink record
//! views of `tributary_plugin_abi::view`, a source record's missing partition as -1), the
//! plugin answers the transformed batch as views lent until the next call on the handle,
//! each with the index of the record it came from. The host copies what it keeps and
//! carries over what never crosses (a source record's source position) by that index.
//!
//! After a panic the instance is poisoned: later calls fail without entering the plugin,
//! dropping it still frees it inside the plugin. All calls may block: see `plugin`.

use std::sync::Arc;

use tributary_plugin_abi::config::{ConfigValueInfo, decode_config_values};
use tributary_plugin_abi::ffi::{Handle, PluginApi, RecordKind, Status, TransformedBatch, Writer};
use tributary_plugin_abi::record::{SinkRecord, SourceRecord, TimestampType};
use tributary_plugin_abi::view::{self, SinkBatchBuilder};
use tributary_plugin_abi::wire::{self, StringMap};

use super::PluginError;
use super::registry::PluginTransform;

#[cfg(test)]
thread_local! {
    /// Calls into plugins that apply transforms, made by this thread (for tests that check
    /// how often a batch crosses).
    pub(crate) static CROSSINGS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn count_crossing() {
    #[cfg(test)]
    CROSSINGS.with(|c| c.set(c.get() + 1));
}

/// A record of a transformed batch and the index of the input record it was made from.
pub type TransformedRecord<R> = (usize, R);

/// One instance of a plugin's transformation or predicate.
#[derive(Debug)]
pub struct TransformInstance {
    plugin: Arc<PluginTransform>,
    handle: Handle,
    poisoned: bool,
    views: SinkBatchBuilder,
}

// SAFETY: the SDK requires transforms to be `Send`, and the ABI allows a handle to be used
// from any thread, one call at a time; `&mut self` on every call enforces that.
unsafe impl Send for TransformInstance {}

impl Drop for TransformInstance {
    fn drop(&mut self) {
        if !self.handle.is_null() {
            // SAFETY: made by `transform_new`, freed exactly once.
            unsafe { (self.api().transform_free)(self.handle) }
        }
    }
}

/// A sink record as a transform batch lends it.
fn from_source(r: &SourceRecord) -> SinkRecord {
    SinkRecord {
        topic: r.topic.clone(),
        partition: r.partition.unwrap_or(-1),
        offset: -1,
        key: r.key.clone(),
        value: r.value.clone(),
        timestamp: r.timestamp,
        timestamp_type: match r.timestamp {
            Some(_) => TimestampType::CreateTime,
            None => TimestampType::NoTimestamp,
        },
        headers: r.headers.clone(),
    }
}

/// A transformed record read back as a source record, with the source position of the
/// record it came from.
fn to_source(origin: &SourceRecord, r: SinkRecord) -> SourceRecord {
    SourceRecord {
        source_partition: origin.source_partition.clone(),
        source_offset: origin.source_offset.clone(),
        topic: r.topic,
        partition: (r.partition >= 0).then_some(r.partition),
        key: r.key,
        value: r.value,
        timestamp: r.timestamp,
        headers: r.headers,
    }
}

impl TransformInstance {
    pub(crate) fn new(plugin: Arc<PluginTransform>) -> Result<TransformInstance, PluginError> {
        let api = plugin.library().api();
        let mut handle: Handle = std::ptr::null_mut();
        let mut err = Vec::new();
        // SAFETY: the index comes from this library's descriptors; `handle` is writable.
        let status = unsafe {
            (api.transform_new)(plugin.info().index, &mut handle, Writer::for_vec(&mut err))
        };
        let mut instance = TransformInstance {
            plugin,
            handle,
            poisoned: false,
            views: SinkBatchBuilder::default(),
        };
        instance.outcome("new", status, &err)?;
        if instance.handle.is_null() {
            return Err(instance.error("new", "the plugin returned no instance".into(), false));
        }
        Ok(instance)
    }

    /// The transformation or predicate this is an instance of.
    pub fn plugin(&self) -> &Arc<PluginTransform> {
        &self.plugin
    }

    fn api(&self) -> &'static PluginApi {
        self.plugin.library().api()
    }

    fn error(&self, call: &'static str, message: String, panicked: bool) -> PluginError {
        PluginError::Transform {
            file: self.plugin.file().to_path_buf(),
            name: self.plugin.name().to_owned(),
            kind: self.plugin.kind(),
            call,
            message,
            panicked,
        }
    }

    fn outcome(
        &mut self,
        call: &'static str,
        status: Status,
        err: &[u8],
    ) -> Result<(), PluginError> {
        if status == Status::OK {
            return Ok(());
        }
        let message = String::from_utf8_lossy(err).into_owned();
        let known = [Status::FAILED, Status::RETRIABLE, Status::INVALID_INPUT];
        if !known.contains(&status) {
            self.poisoned = true;
        }
        Err(match status {
            Status::PANICKED => self.error(call, message, true),
            Status(s) if !known.contains(&status) => {
                self.error(call, format!("unknown status {s}: {message}"), true)
            }
            _ => self.error(call, message, false),
        })
    }

    fn enter(&self, call: &'static str) -> Result<(), PluginError> {
        if self.poisoned {
            Err(self.error(
                call,
                "it panicked earlier and is not called again; restart the task".into(),
                true,
            ))
        } else {
            Ok(())
        }
    }

    /// Configure with the keys after `transforms.ALIAS.` (or `predicates.ALIAS.`): every
    /// key's validation; the configuration took effect only if none has errors.
    pub fn configure(&mut self, config: &StringMap) -> Result<Vec<ConfigValueInfo>, PluginError> {
        self.enter("configure")?;
        let mut buf = Vec::new();
        wire::encode_string_map(config, &mut buf);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        // SAFETY: a live handle; the buffers are valid for the call.
        let status = unsafe {
            (self.api().transform_configure)(
                self.handle,
                tributary_plugin_abi::ffi::Buf::from_slice(&buf),
                Writer::for_vec(&mut out),
                Writer::for_vec(&mut err),
            )
        };
        if !out.is_empty() {
            let values = decode_config_values(&out).map_err(|e| {
                self.error(
                    "configure",
                    format!("its validation cannot be read: {e}"),
                    false,
                )
            })?;
            if values.iter().any(|v| !v.errors.is_empty()) {
                return Ok(values);
            }
            self.outcome("configure", status, &err)?;
            return Ok(values);
        }
        self.outcome("configure", status, &err)?;
        Ok(Vec::new())
    }

    /// Lend `records` and call `apply`; read the transformed batch back.
    fn apply_views(
        &mut self,
        kind: RecordKind,
        records: &[SinkRecord],
        input_len: usize,
    ) -> Result<Vec<TransformedRecord<SinkRecord>>, PluginError> {
        self.enter("apply")?;
        self.views.clear();
        for r in records {
            self.views.push_record(r);
        }
        let lent = self.views.finish();
        let (ptr, len) = (lent.as_ptr(), lent.len());
        let mut out = TransformedBatch::EMPTY;
        let mut err = Vec::new();
        count_crossing();
        // SAFETY: a live handle; the views and the records they describe are alive and
        // unchanged for the call.
        let status = unsafe {
            (self.api().transform_apply)(
                self.handle,
                kind,
                ptr,
                len,
                &mut out,
                Writer::for_vec(&mut err),
            )
        };
        self.outcome("apply", status, &err)?;
        // SAFETY: lent by the plugin until the next call on this handle.
        unsafe { self.read_answer(out, input_len) }
    }

    /// Read a transformed batch.
    ///
    /// # Safety
    ///
    /// `out` must be an answer of this instance's library, still lent.
    unsafe fn read_answer(
        &self,
        out: TransformedBatch,
        input_len: usize,
    ) -> Result<Vec<TransformedRecord<SinkRecord>>, PluginError> {
        if out.len > 0 && (out.records.is_null() || out.origins.is_null()) {
            return Err(self.error("apply", "the plugin answered null records".into(), false));
        }
        // SAFETY: guaranteed by the caller.
        let views = unsafe { view::sink_records(out.records, out.len) };
        let origins = if out.len == 0 {
            &[][..]
        } else {
            // SAFETY: as above, `len` origins.
            unsafe { std::slice::from_raw_parts(out.origins, out.len) }
        };
        let mut result = Vec::with_capacity(views.len());
        let mut last: Option<usize> = None;
        let mut cache = view::ReadCache::default();
        for (v, &origin) in views.iter().zip(origins) {
            let origin = origin as usize;
            if origin >= input_len || last.is_some_and(|l| origin <= l) {
                return Err(self.error(
                    "apply",
                    format!("the plugin answered a record of input {origin} out of order or range"),
                    false,
                ));
            }
            last = Some(origin);
            // SAFETY: as above.
            let r = unsafe { view::read_sink_record(v, &mut cache) }.map_err(|e| {
                self.error(
                    "apply",
                    format!("the plugin answered a record the worker cannot read: {e}"),
                    false,
                )
            })?;
            result.push((origin, r));
        }
        Ok(result)
    }

    /// Apply several transformations of one library to a batch in one crossing, as
    /// applying each in turn would. On failure, the position of the one that failed and its
    /// error (a panic poisons that instance only).
    fn chain_views(
        instances: &mut [&mut TransformInstance],
        kind: RecordKind,
        records: &[SinkRecord],
        input_len: usize,
    ) -> Result<Vec<TransformedRecord<SinkRecord>>, (usize, PluginError)> {
        let Some((first, rest)) = instances.split_first_mut() else {
            return Ok(records.iter().cloned().enumerate().collect());
        };
        first.enter("apply").map_err(|e| (0, e))?;
        for (i, t) in rest.iter().enumerate() {
            t.enter("apply").map_err(|e| (i + 1, e))?;
            if !Arc::ptr_eq(t.plugin.library(), first.plugin.library()) {
                return Err((
                    i + 1,
                    t.error(
                        "apply",
                        "a chain call needs transforms of one library".into(),
                        false,
                    ),
                ));
            }
        }
        let handles: Vec<Handle> = std::iter::once(first.handle)
            .chain(rest.iter().map(|t| t.handle))
            .collect();
        first.views.clear();
        for r in records {
            first.views.push_record(r);
        }
        let lent = first.views.finish();
        let (ptr, len) = (lent.as_ptr(), lent.len());
        let api = first.api();
        let mut out = TransformedBatch::EMPTY;
        let mut failed = 0usize;
        let mut err = Vec::new();
        count_crossing();
        // SAFETY: live, distinct handles of one library; the views and the records they
        // describe are alive and unchanged for the call.
        let status = unsafe {
            (api.transform_apply_chain)(
                handles.as_ptr(),
                handles.len(),
                kind,
                ptr,
                len,
                &mut out,
                &mut failed,
                Writer::for_vec(&mut err),
            )
        };
        if status != Status::OK {
            let at = failed.min(instances.len() - 1);
            let e = match instances[at].outcome("apply", status, &err) {
                Err(e) => e,
                Ok(()) => instances[at].error("apply", "failed".into(), false),
            };
            return Err((at, e));
        }
        let last = instances.len() - 1;
        // SAFETY: lent by the plugin until the next call on the last handle.
        unsafe { instances[last].read_answer(out, input_len) }.map_err(|e| (last, e))
    }

    /// [`TransformInstance::apply_sink`] through several transformations of one library,
    /// crossing once.
    pub fn apply_chain_sink(
        instances: &mut [&mut TransformInstance],
        records: &[SinkRecord],
    ) -> Result<Vec<TransformedRecord<SinkRecord>>, (usize, PluginError)> {
        Self::chain_views(instances, RecordKind::SINK, records, records.len())
    }

    /// [`TransformInstance::apply_source`] through several transformations of one library,
    /// crossing once; source positions are carried over from the input.
    pub fn apply_chain_source(
        instances: &mut [&mut TransformInstance],
        records: &[SourceRecord],
    ) -> Result<Vec<TransformedRecord<SourceRecord>>, (usize, PluginError)> {
        let lent: Vec<SinkRecord> = records.iter().map(from_source).collect();
        let out = Self::chain_views(instances, RecordKind::SOURCE, &lent, records.len())?;
        Ok(out
            .into_iter()
            .map(|(i, r)| (i, to_source(&records[i], r)))
            .collect())
    }

    /// Transform a batch of sink records: the records kept, each with the index of the
    /// record it came from.
    pub fn apply_sink(
        &mut self,
        records: &[SinkRecord],
    ) -> Result<Vec<TransformedRecord<SinkRecord>>, PluginError> {
        self.apply_views(RecordKind::SINK, records, records.len())
    }

    /// Transform a batch of source records; each kept record keeps the source position of
    /// the record it came from.
    pub fn apply_source(
        &mut self,
        records: &[SourceRecord],
    ) -> Result<Vec<TransformedRecord<SourceRecord>>, PluginError> {
        let lent: Vec<SinkRecord> = records.iter().map(from_source).collect();
        let out = self.apply_views(RecordKind::SOURCE, &lent, records.len())?;
        Ok(out
            .into_iter()
            .map(|(i, r)| (i, to_source(&records[i], r)))
            .collect())
    }

    fn test_views(
        &mut self,
        kind: RecordKind,
        records: &[SinkRecord],
    ) -> Result<Vec<bool>, PluginError> {
        self.enter("test")?;
        self.views.clear();
        for r in records {
            self.views.push_record(r);
        }
        let lent = self.views.finish();
        let (ptr, len) = (lent.as_ptr(), lent.len());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        // SAFETY: a live handle; the views are valid for the call.
        let status = unsafe {
            (self.api().predicate_test)(
                self.handle,
                kind,
                ptr,
                len,
                Writer::for_vec(&mut out),
                Writer::for_vec(&mut err),
            )
        };
        self.outcome("test", status, &err)?;
        if out.len() != records.len() {
            return Err(self.error(
                "test",
                format!(
                    "the plugin answered {} results for {} records",
                    out.len(),
                    records.len()
                ),
                false,
            ));
        }
        Ok(out.into_iter().map(|b| b != 0).collect())
    }

    /// Test each sink record (a predicate).
    pub fn test_sink(&mut self, records: &[SinkRecord]) -> Result<Vec<bool>, PluginError> {
        self.test_views(RecordKind::SINK, records)
    }

    /// Test each source record (a predicate).
    pub fn test_source(&mut self, records: &[SourceRecord]) -> Result<Vec<bool>, PluginError> {
        let lent: Vec<SinkRecord> = records.iter().map(from_source).collect();
        self.test_views(RecordKind::SOURCE, &lent)
    }

    /// Kafka's `close()`.
    pub fn close(&mut self) -> Result<(), PluginError> {
        self.enter("close")?;
        let mut err = Vec::new();
        // SAFETY: a live handle.
        let status =
            unsafe { (self.api().transform_close)(self.handle, Writer::for_vec(&mut err)) };
        self.outcome("close", status, &err)
    }
}
