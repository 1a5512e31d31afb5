//! What a connector or task can ask of the worker: Kafka Connect's `ConnectorContext`,
//! `SourceTaskContext` and `SinkTaskContext`.
//!
//! The worker hands each instance its context once, through `initialize`, before `start`.
//! A context is cheap to clone, `Send` and `Sync`: keep it in the instance, or give a clone
//! to a thread of the plugin's own (a connector watching the outside world for changes).
//! Each call crosses the boundary to the worker and returns once the worker has answered.
//!
//! What a context is not: a way to reach another instance, nor valid forever. After the
//! worker freed the instance a context belongs to, calls on a clone that outlived it fail
//! with an error (they never reach freed memory); stop such threads in `stop`.
//!
//! Calls may be made from any thread, including from inside a call the worker is making into
//! the same instance (`start` reading offsets is the usual case). The worker answers without
//! waiting on the calling instance, so this cannot deadlock.

use std::ffi::c_void;
use std::fmt;
use std::sync::Arc;

use tributary_plugin_abi::ffi::{
    Buf, ConnectorHostApi, ConnectorHostRef, SinkTaskHostApi, SinkTaskHostRef, SourceTaskHostApi,
    SourceTaskHostRef, Status, Writer,
};
use tributary_plugin_abi::record::{self, OffsetMap, Offsets, SinkRecord, TopicPartition};
use tributary_plugin_abi::view::SinkRecordRef;

use crate::error::{ConnectError, Result};

/// One reference to a host context, given back (released) when dropped.
struct HostRef<A: 'static> {
    ctx: *mut c_void,
    /// Valid while the reference is held, which is as long as this value lives (the host's
    /// tables are statics in practice).
    api: &'static A,
    release: unsafe extern "C" fn(*mut c_void),
}

// SAFETY: the ABI allows host callbacks from any thread, concurrently; `ctx` is only passed
// back to the host's functions, never dereferenced here.
unsafe impl<A> Send for HostRef<A> {}
// SAFETY: as above.
unsafe impl<A> Sync for HostRef<A> {}

impl<A> Drop for HostRef<A> {
    fn drop(&mut self) {
        // SAFETY: this is the one reference handed over at initialize; released once.
        unsafe { (self.release)(self.ctx) }
    }
}

/// The outcome of one host callback, as an SDK result. `what` completes "the worker could
/// not ...".
fn outcome(what: &str, status: Status, err: &[u8]) -> Result<()> {
    let message = String::from_utf8_lossy(err);
    match status {
        Status::OK => Ok(()),
        Status::RETRIABLE => Err(ConnectError::retriable(format!(
            "the worker could not {what} (it may succeed later): {message}"
        ))),
        Status::FAILED => Err(ConnectError::new(format!(
            "the worker could not {what}: {message}"
        ))),
        Status::PANICKED => Err(ConnectError::new(format!(
            "the worker could not {what}: the worker's callback panicked: {message}"
        ))),
        Status::INVALID_INPUT => Err(ConnectError::new(format!(
            "the worker could not {what}: it refused the plugin's request: {message}"
        ))),
        Status(other) => Err(ConnectError::new(format!(
            "the worker could not {what}: it answered the unknown status {other}: {message}"
        ))),
    }
}

/// A malformed answer from the worker.
fn bad_answer(what: &str, e: impl fmt::Display) -> ConnectError {
    ConnectError::new(format!(
        "the worker could not {what}: its answer does not decode ({e}); the worker and the SDK disagree about the ABI"
    ))
}

/// Run one callback: `f` gets the error writer and answers a status.
fn call(what: &str, f: impl FnOnce(Writer) -> Status) -> Result<()> {
    let mut err = Vec::new();
    let status = f(Writer::for_vec(&mut err));
    outcome(what, status, &err)
}

/// A connector's line to the worker (Kafka Connect's `ConnectorContext`).
#[derive(Clone)]
pub struct ConnectorContext {
    host: Arc<HostRef<ConnectorHostApi>>,
}

impl fmt::Debug for ConnectorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConnectorContext")
    }
}

impl ConnectorContext {
    /// Take ownership of the reference the host handed over.
    ///
    /// # Safety
    ///
    /// `host` must come from the host's `connector_initialize` call and not be owned by
    /// anything else (it is released when the last clone is dropped).
    pub(crate) unsafe fn from_raw(host: ConnectorHostRef) -> Option<ConnectorContext> {
        // SAFETY: a non-null table from the host is static while the reference is held.
        let api = unsafe { host.api.as_ref() }?;
        Some(ConnectorContext {
            host: Arc::new(HostRef {
                ctx: host.ctx,
                api,
                release: api.release,
            }),
        })
    }

    /// The connector's view of the world changed (a table was added, a file appeared): the
    /// worker will call `task_configs` again and restart the tasks if their configs changed.
    pub fn request_task_reconfiguration(&self) -> Result<()> {
        let h = &self.host;
        call("request a task reconfiguration", |err| {
            // SAFETY: a live reference; the writer is ours for the call.
            unsafe { (h.api.request_task_reconfiguration)(h.ctx, err) }
        })
    }

    /// The connector cannot go on: the worker fails it with `message` (for errors found on
    /// a thread of the connector's own, where no call can return them).
    pub fn raise_error(&self, message: &str) -> Result<()> {
        let h = &self.host;
        call("record the connector's error", |err| {
            // SAFETY: a live reference; the message is borrowed for the call.
            unsafe { (h.api.raise_error)(h.ctx, Buf::from_slice(message.as_bytes()), err) }
        })
    }
}

/// A source task's line to the worker (Kafka Connect's `SourceTaskContext`): the offsets it
/// committed before, to resume from.
#[derive(Clone)]
pub struct SourceTaskContext {
    host: Arc<HostRef<SourceTaskHostApi>>,
}

impl fmt::Debug for SourceTaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SourceTaskContext")
    }
}

impl SourceTaskContext {
    /// Take ownership of the reference the host handed over.
    ///
    /// # Safety
    ///
    /// As for [`ConnectorContext::from_raw`], from `source_task_initialize`.
    pub(crate) unsafe fn from_raw(host: SourceTaskHostRef) -> Option<SourceTaskContext> {
        // SAFETY: a non-null table from the host is static while the reference is held.
        let api = unsafe { host.api.as_ref() }?;
        Some(SourceTaskContext {
            host: Arc::new(HostRef {
                ctx: host.ctx,
                api,
                release: api.release,
            }),
        })
    }

    /// The last committed source offset of one source partition (`None`: nothing committed
    /// yet, start from the beginning). E.g. a file source asks for `{"filename": F}` and
    /// resumes at the stored `{"position": P}`.
    pub fn offset(&self, partition: &OffsetMap) -> Result<Option<OffsetMap>> {
        let mut answer = self.offsets(std::slice::from_ref(partition))?;
        Ok(answer.pop().and_then(|(_, offset)| offset))
    }

    /// The last committed source offsets of several source partitions, in one round trip:
    /// each partition with its offset, in the order asked.
    pub fn offsets(&self, partitions: &[OffsetMap]) -> Result<Vec<(OffsetMap, Option<OffsetMap>)>> {
        const WHAT: &str = "read the committed source offsets";
        let mut input = Vec::new();
        record::encode_offset_maps(partitions, &mut input);
        let mut out = Vec::new();
        let h = &self.host;
        call(WHAT, |err| {
            // SAFETY: a live reference; buffers and writers are ours for the call.
            unsafe {
                (h.api.offsets)(
                    h.ctx,
                    Buf::from_slice(&input),
                    Writer::for_vec(&mut out),
                    err,
                )
            }
        })?;
        let offsets = record::decode_opt_offset_maps(&out).map_err(|e| bad_answer(WHAT, e))?;
        if offsets.len() != partitions.len() {
            return Err(bad_answer(
                WHAT,
                format!(
                    "{} offsets for {} partitions",
                    offsets.len(),
                    partitions.len()
                ),
            ));
        }
        Ok(partitions.iter().cloned().zip(offsets).collect())
    }
}

/// A sink task's line to the worker (Kafka Connect's `SinkTaskContext`): flow control over
/// its partitions, where to consume from, and when to commit.
#[derive(Clone)]
pub struct SinkTaskContext {
    host: Arc<HostRef<SinkTaskHostApi>>,
}

impl fmt::Debug for SinkTaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SinkTaskContext")
    }
}

impl SinkTaskContext {
    /// Take ownership of the reference the host handed over.
    ///
    /// # Safety
    ///
    /// As for [`ConnectorContext::from_raw`], from `sink_task_initialize`.
    pub(crate) unsafe fn from_raw(host: SinkTaskHostRef) -> Option<SinkTaskContext> {
        // SAFETY: a non-null table from the host is static while the reference is held.
        let api = unsafe { host.api.as_ref() }?;
        Some(SinkTaskContext {
            host: Arc::new(HostRef {
                ctx: host.ctx,
                api,
                release: api.release,
            }),
        })
    }

    fn partitions_call(
        &self,
        what: &str,
        partitions: &[TopicPartition],
        f: unsafe extern "C" fn(*mut c_void, Buf, Writer) -> Status,
    ) -> Result<()> {
        let mut input = Vec::new();
        record::encode_partitions(partitions, &mut input);
        let ctx = self.host.ctx;
        call(what, |err| {
            // SAFETY: a live reference; the buffer and writer are ours for the call.
            unsafe { f(ctx, Buf::from_slice(&input), err) }
        })
    }

    /// Stop receiving records from these partitions (they must be assigned to this task)
    /// until [`Self::resume`]: back-pressure when the destination is slow.
    pub fn pause(&self, partitions: &[TopicPartition]) -> Result<()> {
        self.partitions_call("pause partitions", partitions, self.host.api.pause)
    }

    /// Receive records from these paused partitions again.
    pub fn resume(&self, partitions: &[TopicPartition]) -> Result<()> {
        self.partitions_call("resume partitions", partitions, self.host.api.resume)
    }

    /// Consume `partition` from `offset` next: rewind to redeliver, or skip ahead (e.g. to
    /// the position the destination system stored itself, for exactly-once delivery).
    pub fn offset(&self, partition: TopicPartition, offset: i64) -> Result<()> {
        self.offsets(&Offsets::from([(partition, offset)]))
    }

    /// [`Self::offset`] for several partitions at once.
    pub fn offsets(&self, offsets: &Offsets) -> Result<()> {
        let mut input = Vec::new();
        record::encode_offsets(offsets, &mut input);
        let h = &self.host;
        call("move the consumer position", |err| {
            // SAFETY: a live reference; the buffer and writer are ours for the call.
            unsafe { (h.api.offset)(h.ctx, Buf::from_slice(&input), err) }
        })
    }

    /// Commit offsets as soon as possible (a `pre_commit` comes soon) rather than at the
    /// next `offset.flush.interval.ms`.
    pub fn request_commit(&self) -> Result<()> {
        let h = &self.host;
        call("schedule an offset commit", |err| {
            // SAFETY: a live reference; the writer is ours for the call.
            unsafe { (h.api.request_commit)(h.ctx, err) }
        })
    }

    /// Kafka Connect's `ErrantRecordReporter.report`: `record` (one of those given to
    /// `put`) could not be written, because of `error`. The worker applies
    /// `errors.tolerance` to it once `put` returns: with `all` the record is skipped, logged
    /// if `errors.log.enable`, and written to the dead letter queue if one is set (the
    /// consumed record, with `error` in its `__connect.errors.*` headers); with `none` the
    /// task fails with `error`. Either way `put` goes on with the other records: report a
    /// record, do not also fail the batch for it.
    pub fn report(&self, record: &SinkRecord, error: impl fmt::Display) -> Result<()> {
        self.report_at(&record.topic, record.partition, record.offset, error)
    }

    /// [`Self::report`] for a record read in place from a
    /// [`SinkBatch`](crate::SinkBatch) in `put_batch`.
    pub fn report_ref(&self, record: &SinkRecordRef<'_>, error: impl fmt::Display) -> Result<()> {
        self.report_at(record.topic, record.partition, record.offset, error)
    }

    /// The worker finds the record by where it was consumed: topic, partition, offset.
    fn report_at(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        error: impl fmt::Display,
    ) -> Result<()> {
        let mut input = Vec::new();
        record::encode_offsets(
            &Offsets::from([(TopicPartition::new(topic, partition), offset)]),
            &mut input,
        );
        let message = error.to_string();
        let h = &self.host;
        call("take the errant record's report", |err| {
            // SAFETY: a live reference; the buffers and writer are ours for the call.
            unsafe {
                (h.api.report)(
                    h.ctx,
                    Buf::from_slice(&input),
                    Buf::from_slice(message.as_bytes()),
                    err,
                )
            }
        })
    }

    /// The partitions currently assigned to this task.
    pub fn assignment(&self) -> Result<Vec<TopicPartition>> {
        const WHAT: &str = "tell the task's assignment";
        let mut out = Vec::new();
        let h = &self.host;
        call(WHAT, |err| {
            // SAFETY: a live reference; the writers are ours for the call.
            unsafe { (h.api.assignment)(h.ctx, Writer::for_vec(&mut out), err) }
        })?;
        record::decode_partitions(&out).map_err(|e| bad_answer(WHAT, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_become_errors_that_say_what_failed() {
        assert!(outcome("pause partitions", Status::OK, b"").is_ok());
        let cases = [
            (
                Status::FAILED,
                false,
                "the worker could not pause partitions: no",
            ),
            (
                Status::RETRIABLE,
                true,
                "the worker could not pause partitions (it may succeed later): no",
            ),
            (
                Status::PANICKED,
                false,
                "the worker could not pause partitions: the worker's callback panicked: no",
            ),
            (
                Status::INVALID_INPUT,
                false,
                "the worker could not pause partitions: it refused the plugin's request: no",
            ),
            (
                Status(77),
                false,
                "the worker could not pause partitions: it answered the unknown status 77: no",
            ),
        ];
        for (status, retriable, message) in cases {
            let e = outcome("pause partitions", status, b"no").unwrap_err();
            assert_eq!((e.is_retriable(), e.message()), (retriable, message));
        }
    }
}
