//! The host's handles on a plugin's connector and task instances.
//!
//! Each call encodes its input into a buffer the plugin borrows for the call (records: lent
//! as views, `tributary_plugin_abi::view`), collects the plugin's answer and error message
//! through host-side [`Writer`]s (so every allocation is freed by the side that made it), and turns the status into a [`PluginError`] naming the
//! file, the connector and the call. After a panic the instance is poisoned: further calls
//! answer [`PluginError::Poisoned`] without entering the plugin; dropping it still frees it
//! inside the plugin.
//!
//! All calls may block: see the module docs of `plugin`.
//!
//! The other direction, plugin → host (Kafka Connect's contexts): the traits the worker
//! implements ([`ConnectorHost`], [`SourceTaskHost`], [`SinkTaskHost`]), handed to the
//! first `start` of each instance, and the C callbacks that reach them. Each instance gets
//! one host slot; the plugin holds a counted reference to it (the ABI's `release`), the
//! handle holds another and empties the slot when the instance is freed, so a plugin thread
//! that kept a context too long gets an error, never freed memory. Callbacks never unwind:
//! a panic in the worker's implementation becomes an error status for the plugin.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ffi::c_void;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};

use tributary_plugin_abi::config::{ConfigValueInfo, decode_config_values};
use tributary_plugin_abi::ffi::{
    Buf, ConnectorHostApi, ConnectorHostRef, Handle, PluginApi, SinkTaskHostApi, SinkTaskHostRef,
    SourceTaskHostApi, SourceTaskHostRef, Status, Writer,
};
use tributary_plugin_abi::record::{
    self, OffsetMap, Offsets, SinkRecord, SourceRecord, TopicPartition,
};
use tributary_plugin_abi::view::{
    self, DataRef, MetadataRef, ReadCache, SinkBatchBuilder, SinkParts, SourceBatchView,
    SourceRecordRef, SourceRecordView,
};
use tributary_plugin_abi::wire::{self, StringMap};

use super::PluginError;
use super::registry::ConnectorPlugin;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Connector,
    SourceTask,
    SinkTask,
}

/// One live instance inside a plugin.
#[derive(Debug)]
struct Instance {
    plugin: Arc<ConnectorPlugin>,
    handle: Handle,
    role: Role,
    poisoned: bool,
    /// The instance's host slot once initialized: emptied right after the instance is freed.
    host: Option<Arc<dyn Detach>>,
}

// SAFETY: the SDK requires connectors and tasks to be `Send`, and the ABI allows a handle to
// be used from any thread, one call at a time; `&mut self` on every call enforces that.
unsafe impl Send for Instance {}

impl Instance {
    fn api(&self) -> &'static PluginApi {
        self.plugin.library().api()
    }

    fn new(plugin: Arc<ConnectorPlugin>, role: Role) -> Result<Instance, PluginError> {
        let api = plugin.library().api();
        let new = match role {
            Role::Connector => api.connector_new,
            Role::SourceTask => api.source_task_new,
            Role::SinkTask => api.sink_task_new,
        };
        let mut handle: Handle = std::ptr::null_mut();
        let mut err = Vec::new();
        // SAFETY: `index` comes from this library's descriptors; `handle` is writable; the
        // writer appends to `err` for this call.
        let status = unsafe { new(plugin.info().index, &mut handle, Writer::for_vec(&mut err)) };
        let mut instance = Instance {
            plugin,
            handle,
            role,
            poisoned: false,
            host: None,
        };
        instance.outcome("new", status, &err)?;
        if instance.handle.is_null() {
            return Err(instance.protocol("new", "no instance was returned".into()));
        }
        Ok(instance)
    }

    fn protocol(&self, call: &'static str, reason: String) -> PluginError {
        PluginError::Protocol {
            file: self.plugin.file().to_path_buf(),
            connector: self.plugin.name().to_string(),
            call,
            reason,
        }
    }

    /// Map a call's status and message to a result; a panic poisons the instance.
    fn outcome(
        &mut self,
        call: &'static str,
        status: Status,
        err: &[u8],
    ) -> Result<(), PluginError> {
        if status == Status::OK {
            return Ok(());
        }
        let known = [
            Status::FAILED,
            Status::RETRIABLE,
            Status::PANICKED,
            Status::INVALID_INPUT,
        ];
        if status == Status::PANICKED || !known.contains(&status) {
            // After a panic, or an answer we cannot interpret, the instance's state is unknown.
            self.poisoned = true;
        }
        let message = String::from_utf8_lossy(err).into_owned();
        let file = self.plugin.file().to_path_buf();
        let connector = self.plugin.name().to_string();
        Err(match status {
            Status::FAILED | Status::RETRIABLE => PluginError::Failed {
                file,
                connector,
                call,
                message,
                retriable: status == Status::RETRIABLE,
            },
            Status::PANICKED => PluginError::Panicked {
                file,
                connector,
                call,
                message,
            },
            Status::INVALID_INPUT => PluginError::Rejected {
                file,
                connector,
                call,
                message,
            },
            Status(other) => self.protocol(call, format!("unknown status {other}: {message}")),
        })
    }

    /// Make one call: `f` gets the table, the handle and the error writer.
    fn call(
        &mut self,
        call: &'static str,
        f: impl FnOnce(&'static PluginApi, Handle, Writer) -> Status,
    ) -> Result<(), PluginError> {
        if self.poisoned {
            return Err(PluginError::Poisoned {
                file: self.plugin.file().to_path_buf(),
                connector: self.plugin.name().to_string(),
                call,
            });
        }
        let mut err = Vec::new();
        let status = f(self.api(), self.handle, Writer::for_vec(&mut err));
        self.outcome(call, status, &err)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let api = self.api();
        let free = match self.role {
            Role::Connector => api.connector_free,
            Role::SourceTask => api.source_task_free,
            Role::SinkTask => api.sink_task_free,
        };
        if !self.handle.is_null() {
            // SAFETY: the handle was made by the matching `*_new` and is freed exactly once.
            unsafe { free(self.handle) }
        }
        // From now on a context the plugin kept answers an error instead of reaching the
        // worker's implementation, which is released here.
        if let Some(host) = self.host.take() {
            host.detach();
        }
    }
}

/// Give `slot` the host for the coming start: on the first start, hand the plugin its
/// context (`*_initialize` with a counted reference to a new slot); later (a connector
/// started again after a pause), point the same context at `host`.
fn attach<H: ?Sized + Send + Sync + 'static>(
    instance: &mut Instance,
    slot: &mut Option<Arc<HostSlot<H>>>,
    host: Arc<H>,
    initialize: impl FnOnce(&'static PluginApi, Handle, *mut c_void, Writer) -> Status,
) -> Result<(), PluginError> {
    if let Some(slot) = slot {
        slot.set(Some(host));
        return Ok(());
    }
    let new = Arc::new(HostSlot {
        host: Mutex::new(Some(host)),
    });
    *slot = Some(new.clone());
    instance.host = Some(new.clone());
    instance.call("initialize", |api, h, err| {
        // The plugin's reference, made only if the call is made (not on a poisoned instance).
        let ctx = Arc::into_raw(new).cast_mut().cast::<c_void>();
        initialize(api, h, ctx, err)
    })
}

fn encode_map(map: &StringMap) -> Vec<u8> {
    let mut buf = Vec::new();
    wire::encode_string_map(map, &mut buf);
    buf
}

/// A connector instance.
#[derive(Debug)]
pub struct Connector {
    inner: Instance,
    host: Option<Arc<HostSlot<dyn ConnectorHost>>>,
}

impl Connector {
    pub(crate) fn new(plugin: Arc<ConnectorPlugin>) -> Result<Connector, PluginError> {
        Ok(Connector {
            inner: Instance::new(plugin, Role::Connector)?,
            host: None,
        })
    }

    /// The connector plugin this instance belongs to.
    pub fn plugin(&self) -> &Arc<ConnectorPlugin> {
        &self.inner.plugin
    }

    /// Validate a config without starting: one entry per key the connector defines.
    pub fn validate(&mut self, config: &StringMap) -> Result<Vec<ConfigValueInfo>, PluginError> {
        let input = encode_map(config);
        let mut out = Vec::new();
        self.inner.call("validate", |api, h, err| {
            // SAFETY: a connector handle; buffers and writers valid for the call.
            unsafe {
                (api.connector_validate)(h, Buf::from_slice(&input), Writer::for_vec(&mut out), err)
            }
        })?;
        decode_config_values(&out).map_err(|e| self.inner.protocol("validate", e.to_string()))
    }

    /// Start with a config. `host` answers the connector's context calls from now until the
    /// instance is dropped (or the next `start`, after a `stop`, replaces it); the first
    /// start hands the connector its context (`initialize`) before starting it.
    pub fn start(
        &mut self,
        config: &StringMap,
        host: Arc<dyn ConnectorHost>,
    ) -> Result<(), PluginError> {
        attach(&mut self.inner, &mut self.host, host, |api, h, ctx, err| {
            let host = ConnectorHostRef {
                ctx,
                api: &CONNECTOR_HOST_API,
            };
            // SAFETY: a connector handle; the reference is the plugin's from this call on.
            unsafe { (api.connector_initialize)(h, host, err) }
        })?;
        let input = encode_map(config);
        self.inner.call("start", |api, h, err| {
            // SAFETY: as in `validate`.
            unsafe { (api.connector_start)(h, Buf::from_slice(&input), err) }
        })
    }

    /// At most `max_tasks` task configs.
    pub fn task_configs(&mut self, max_tasks: u32) -> Result<Vec<StringMap>, PluginError> {
        let mut out = Vec::new();
        self.inner.call("task_configs", |api, h, err| {
            // SAFETY: as in `validate`.
            unsafe { (api.connector_task_configs)(h, max_tasks, Writer::for_vec(&mut out), err) }
        })?;
        let configs = wire::decode_string_maps(&out)
            .map_err(|e| self.inner.protocol("task_configs", e.to_string()))?;
        if configs.len() > max_tasks as usize {
            return Err(self.inner.protocol(
                "task_configs",
                format!("{} task configs for tasks.max={max_tasks}", configs.len()),
            ));
        }
        Ok(configs)
    }

    /// Stop; the instance may be started again.
    pub fn stop(&mut self) -> Result<(), PluginError> {
        self.inner.call("stop", |api, h, err| {
            // SAFETY: as in `validate`.
            unsafe { (api.connector_stop)(h, err) }
        })
    }
}

/// A source task instance.
#[derive(Debug)]
pub struct SourceTask {
    inner: Instance,
    host: Option<Arc<HostSlot<dyn SourceTaskHost>>>,
    /// How many records the last poll lent (what `commit_records` must describe).
    polled: usize,
}

/// A polled batch, lent by the plugin until the task's next poll or stop (the borrow of
/// the task enforces it). Records are read in place: see [`SourceRecordRef`].
#[derive(Debug)]
pub struct PolledBatch<'t> {
    views: &'t [SourceRecordView],
    raw: SourceBatchView,
    task: &'t Instance,
    /// What was read of the batch (its shared schemas, decoded on first use).
    cache: RefCell<ReadCache>,
}

impl<'t> PolledBatch<'t> {
    pub fn len(&self) -> usize {
        self.views.len()
    }

    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
    }

    /// Record `i`, borrowing the plugin's memory. A record that does not read (bytes
    /// that are not UTF-8 where text was promised, a malformed encoding) is the plugin's
    /// protocol error.
    pub fn record(&self, i: usize) -> Result<SourceRecordRef<'t>, PluginError> {
        let v = self.views.get(i).ok_or_else(|| {
            self.task
                .protocol("poll", format!("no record {i} in the batch"))
        })?;
        // SAFETY: lent by the plugin until the next poll or stop, which the borrow of the
        // task rules out for `'t`.
        unsafe { view::read_source_record(v, &mut self.cache.borrow_mut()) }.map_err(|e| {
            self.task
                .protocol("poll", format!("record {i} of the batch: {e}"))
        })
    }

    /// The batch's source positions: per source partition, the source offset of its last
    /// record (what committing the whole batch stores).
    pub fn sources(&self) -> Result<Vec<(OffsetMap, OffsetMap)>, PluginError> {
        // SAFETY: as in `record`.
        unsafe { view::read_sources(&self.raw) }
            .map_err(|e| self.task.protocol("poll", format!("source positions: {e}")))
    }

    /// Every record as an owned [`SourceRecord`] (without source positions:
    /// [`Self::sources`]).
    pub fn to_owned(&self) -> Result<Vec<SourceRecord>, PluginError> {
        (0..self.len())
            .map(|i| {
                self.record(i)?.to_owned().map_err(|e| {
                    self.task
                        .protocol("poll", format!("record {i} of the batch: {e}"))
                })
            })
            .collect()
    }
}

impl SourceTask {
    pub(crate) fn new(plugin: Arc<ConnectorPlugin>) -> Result<SourceTask, PluginError> {
        Ok(SourceTask {
            inner: Instance::new(plugin, Role::SourceTask)?,
            host: None,
            polled: 0,
        })
    }

    /// The connector plugin this task belongs to.
    pub fn plugin(&self) -> &Arc<ConnectorPlugin> {
        &self.inner.plugin
    }

    /// Hand the task its context (`initialize`), then start it with one of the connector's
    /// task configs. `host` answers the task's offset lookups (usually from inside this
    /// call) until the instance is dropped.
    pub fn start(
        &mut self,
        config: &StringMap,
        host: Arc<dyn SourceTaskHost>,
    ) -> Result<(), PluginError> {
        attach(&mut self.inner, &mut self.host, host, |api, h, ctx, err| {
            let host = SourceTaskHostRef {
                ctx,
                api: &SOURCE_TASK_HOST_API,
            };
            // SAFETY: a source task handle; the reference is the plugin's from this call on.
            unsafe { (api.source_task_initialize)(h, host, err) }
        })?;
        let input = encode_map(config);
        self.inner.call("start", |api, h, err| {
            // SAFETY: a source task handle; buffers and writers valid for the call.
            unsafe { (api.source_task_start)(h, Buf::from_slice(&input), err) }
        })
    }

    /// Poll one batch (possibly empty), lent by the plugin until the next poll or stop.
    pub fn poll_batch(&mut self) -> Result<PolledBatch<'_>, PluginError> {
        let mut raw = SourceBatchView::EMPTY;
        self.polled = 0;
        self.inner.call("poll", |api, h, err| {
            // SAFETY: as in `start`; `raw` is writable for the call.
            unsafe { (api.source_task_poll)(h, &mut raw, err) }
        })?;
        // SAFETY: lent until the next poll or stop, each of which needs `&mut self`.
        let views = unsafe { view::source_records(&raw) };
        self.polled = views.len();
        Ok(PolledBatch {
            views,
            raw,
            task: &self.inner,
            cache: RefCell::default(),
        })
    }

    /// Poll one batch as owned records (without source positions; see
    /// [`PolledBatch::sources`]).
    pub fn poll(&mut self) -> Result<Vec<SourceRecord>, PluginError> {
        self.poll_batch()?.to_owned()
    }

    /// The offsets of everything polled so far were committed.
    pub fn commit(&mut self) -> Result<(), PluginError> {
        self.inner.call("commit", |api, h, err| {
            // SAFETY: as in `start`.
            unsafe { (api.source_task_commit)(h, err) }
        })
    }

    /// Report where each record of the last polled batch was written, in order (`None`:
    /// dropped before reaching a topic): the task's `commit_record` sees each with the
    /// record it polled.
    pub fn commit_records(
        &mut self,
        metadata: &[Option<MetadataRef<'_>>],
    ) -> Result<(), PluginError> {
        let mut input = Vec::new();
        view::encode_record_metadata(metadata.iter().copied(), &mut input);
        self.commit_records_encoded(&input, metadata.len())
    }

    /// [`Self::commit_records`] of metadata already encoded by
    /// `tributary_plugin_abi::view::encode_record_metadata` for `count` records (the worker
    /// encodes it while the polled records it names are still lent).
    pub fn commit_records_encoded(
        &mut self,
        encoded: &[u8],
        count: usize,
    ) -> Result<(), PluginError> {
        if count != self.polled {
            return Err(self.inner.protocol(
                "commit_record",
                format!(
                    "the worker described {count} records but the last poll lent {}",
                    self.polled
                ),
            ));
        }
        self.inner.call("commit_record", |api, h, err| {
            // SAFETY: as in `start`.
            unsafe { (api.source_task_commit_records)(h, Buf::from_slice(encoded), err) }
        })
    }

    /// Stop the task (it is dropped afterwards).
    pub fn stop(&mut self) -> Result<(), PluginError> {
        self.polled = 0;
        self.inner.call("stop", |api, h, err| {
            // SAFETY: as in `start`.
            unsafe { (api.source_task_stop)(h, err) }
        })
    }
}

/// A sink task instance.
#[derive(Debug)]
pub struct SinkTask {
    inner: Instance,
    /// The views of the batch being delivered; reused across puts.
    views: SinkBatchBuilder,
    host: Option<Arc<HostSlot<dyn SinkTaskHost>>>,
}

impl SinkTask {
    pub(crate) fn new(plugin: Arc<ConnectorPlugin>) -> Result<SinkTask, PluginError> {
        Ok(SinkTask {
            inner: Instance::new(plugin, Role::SinkTask)?,
            views: SinkBatchBuilder::default(),
            host: None,
        })
    }

    /// The connector plugin this task belongs to.
    pub fn plugin(&self) -> &Arc<ConnectorPlugin> {
        &self.inner.plugin
    }

    /// Hand the task its context (`initialize`), then start it with one of the connector's
    /// task configs. `host` answers the task's pause, resume, offset, commit and assignment
    /// calls until the instance is dropped.
    pub fn start(
        &mut self,
        config: &StringMap,
        host: Arc<dyn SinkTaskHost>,
    ) -> Result<(), PluginError> {
        attach(&mut self.inner, &mut self.host, host, |api, h, ctx, err| {
            let host = SinkTaskHostRef {
                ctx,
                api: &SINK_TASK_HOST_API,
            };
            // SAFETY: a sink task handle; the reference is the plugin's from this call on.
            unsafe { (api.sink_task_initialize)(h, host, err) }
        })?;
        let input = encode_map(config);
        self.inner.call("start", |api, h, err| {
            // SAFETY: a sink task handle; buffers and writers valid for the call.
            unsafe { (api.sink_task_start)(h, Buf::from_slice(&input), err) }
        })
    }

    /// These partitions were assigned to the task.
    pub fn open(&mut self, partitions: &[TopicPartition]) -> Result<(), PluginError> {
        let mut input = Vec::new();
        record::encode_partitions(partitions, &mut input);
        self.inner.call("open", |api, h, err| {
            // SAFETY: as in `start`.
            unsafe { (api.sink_task_open)(h, Buf::from_slice(&input), err) }
        })
    }

    /// Deliver a batch of owned records.
    pub fn put(&mut self, records: &[SinkRecord]) -> Result<(), PluginError> {
        self.put_parts(records.iter().map(|r| SinkParts {
            topic: &r.topic,
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            timestamp_type: r.timestamp_type,
            key: DataRef::of(&r.key),
            value: DataRef::of(&r.value),
            headers: &r.headers,
        }))
    }

    /// Deliver a batch described by borrowed parts (the worker's converted values, still
    /// pointing into the fetched log batch): nothing is copied on this side; the plugin
    /// builds its records straight from them.
    pub fn put_parts<'a>(
        &mut self,
        records: impl IntoIterator<Item = SinkParts<'a>>,
    ) -> Result<(), PluginError> {
        self.views.clear();
        for r in records {
            self.views.push(&r);
        }
        let views = self.views.finish();
        self.inner.call("put", |api, h, err| {
            // SAFETY: as in `start`; the views and what they point at are alive for the call.
            unsafe { (api.sink_task_put)(h, views.as_ptr(), views.len(), err) }
        })
    }

    /// Flush, and answer which of `offsets` (next offset to consume per partition) may be
    /// committed.
    pub fn pre_commit(&mut self, offsets: &Offsets) -> Result<Offsets, PluginError> {
        let mut input = Vec::new();
        record::encode_offsets(offsets, &mut input);
        let mut out = Vec::new();
        self.inner.call("pre_commit", |api, h, err| {
            // SAFETY: as in `start`.
            unsafe {
                (api.sink_task_pre_commit)(
                    h,
                    Buf::from_slice(&input),
                    Writer::for_vec(&mut out),
                    err,
                )
            }
        })?;
        record::decode_offsets(&out).map_err(|e| self.inner.protocol("pre_commit", e.to_string()))
    }

    /// These partitions were revoked from the task.
    pub fn close(&mut self, partitions: &[TopicPartition]) -> Result<(), PluginError> {
        let mut input = Vec::new();
        record::encode_partitions(partitions, &mut input);
        self.inner.call("close", |api, h, err| {
            // SAFETY: as in `start`.
            unsafe { (api.sink_task_close)(h, Buf::from_slice(&input), err) }
        })
    }

    /// Stop the task (it is dropped afterwards).
    pub fn stop(&mut self) -> Result<(), PluginError> {
        self.inner.call("stop", |api, h, err| {
            // SAFETY: as in `start`.
            unsafe { (api.sink_task_stop)(h, err) }
        })
    }
}

// ---------------------------------------------------------------------------------------
// Host callbacks: what a plugin's contexts ask of the worker.

/// Why the worker could not do what a context asked: the plugin receives the message (say
/// what failed and what to do) as a `ConnectError`, retriable if [`HostError::is_retriable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError {
    message: String,
    retriable: bool,
}

impl HostError {
    /// An error that asking again will not fix.
    pub fn new(message: impl Into<String>) -> HostError {
        HostError {
            message: message.into(),
            retriable: false,
        }
    }

    /// An error that asking again may fix (the offsets store is briefly unavailable).
    pub fn retriable(message: impl Into<String>) -> HostError {
        HostError {
            message: message.into(),
            retriable: true,
        }
    }

    /// The message the plugin receives.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the plugin may ask again.
    pub fn is_retriable(&self) -> bool {
        self.retriable
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HostError {}

/// The worker's side of a connector's context (Kafka Connect's `ConnectorContext`).
///
/// **Threads.** Called from any plugin thread, concurrently, and possibly from inside a call
/// the worker is making into the same connector (its `start`, say), on the calling thread.
/// An implementation must therefore answer without waiting for that connector: it must not
/// take a lock the worker holds while calling the connector, nor wait for the connector's
/// own thread. Record the request (a flag, a counter, a non-blocking send) and act on it
/// elsewhere. A panic is caught and reported to the plugin as an error.
pub trait ConnectorHost: Send + Sync {
    /// The connector's view of the world changed: ask it for task configs again soon and
    /// restart the tasks if they changed.
    fn request_task_reconfiguration(&self) -> Result<(), HostError>;

    /// The connector cannot go on: fail it, with `message` as its trace.
    fn raise_error(&self, message: &str) -> Result<(), HostError>;
}

/// The worker's side of a source task's context (Kafka Connect's `SourceTaskContext` and
/// its `OffsetStorageReader`). Threads: as for [`ConnectorHost`]; `start` reading its
/// offsets is the usual caller.
pub trait SourceTaskHost: Send + Sync {
    /// The last committed source offset of each of `partitions`, in the same order (`None`:
    /// nothing committed for it). Exactly one answer per partition.
    fn offsets(&self, partitions: &[OffsetMap]) -> Result<Vec<Option<OffsetMap>>, HostError>;
}

/// The worker's side of a sink task's context (Kafka Connect's `SinkTaskContext`).
/// Threads: as for [`ConnectorHost`]; `put` and `open` are the usual callers.
pub trait SinkTaskHost: Send + Sync {
    /// Stop fetching from these partitions (assigned to the task) until resumed.
    fn pause(&self, partitions: &[TopicPartition]) -> Result<(), HostError>;

    /// Fetch from these paused partitions again.
    fn resume(&self, partitions: &[TopicPartition]) -> Result<(), HostError>;

    /// Consume each partition from the given offset next (a rewind or a skip).
    fn offset(&self, offsets: &Offsets) -> Result<(), HostError>;

    /// Commit offsets soon (call `pre_commit`) instead of at the next interval.
    fn request_commit(&self) -> Result<(), HostError>;

    /// The partitions currently assigned to the task.
    fn assignment(&self) -> Result<Vec<TopicPartition>, HostError>;

    /// The task could not write the record at `partition` and `offset` (Kafka Connect's
    /// `ErrantRecordReporter.report`), for the reason `message`.
    fn report(
        &self,
        partition: &TopicPartition,
        offset: i64,
        message: &str,
    ) -> Result<(), HostError>;
}

/// A host for code that does not care: every call succeeds and changes nothing; no source
/// offset is stored, the assignment is empty, requests and raised errors are dropped.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopHost;

impl ConnectorHost for NoopHost {
    fn request_task_reconfiguration(&self) -> Result<(), HostError> {
        Ok(())
    }

    fn raise_error(&self, _message: &str) -> Result<(), HostError> {
        Ok(())
    }
}

impl SourceTaskHost for NoopHost {
    fn offsets(&self, partitions: &[OffsetMap]) -> Result<Vec<Option<OffsetMap>>, HostError> {
        Ok(vec![None; partitions.len()])
    }
}

impl SinkTaskHost for NoopHost {
    fn pause(&self, _partitions: &[TopicPartition]) -> Result<(), HostError> {
        Ok(())
    }

    fn resume(&self, _partitions: &[TopicPartition]) -> Result<(), HostError> {
        Ok(())
    }

    fn offset(&self, _offsets: &Offsets) -> Result<(), HostError> {
        Ok(())
    }

    fn request_commit(&self) -> Result<(), HostError> {
        Ok(())
    }

    fn assignment(&self) -> Result<Vec<TopicPartition>, HostError> {
        Ok(Vec::new())
    }

    fn report(&self, _: &TopicPartition, _: i64, _: &str) -> Result<(), HostError> {
        Ok(())
    }
}

/// What a [`MemoryHost`] answers from and what it recorded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryHostState {
    /// Committed source offsets by source partition (a list: offset maps are not `Ord`).
    pub source_offsets: Vec<(OffsetMap, OffsetMap)>,
    /// How many offset lookups source tasks made.
    pub offset_lookups: usize,
    /// How many task reconfigurations connectors requested.
    pub reconfiguration_requests: usize,
    /// The errors connectors raised, in order.
    pub raised_errors: Vec<String>,
    /// The sink task's assignment; pausing or resuming anything else is refused.
    pub assignment: BTreeSet<TopicPartition>,
    /// Partitions paused and not resumed since.
    pub paused: BTreeSet<TopicPartition>,
    /// Positions sink tasks asked to consume from next, the latest per partition.
    pub requested_offsets: Offsets,
    /// How many commits sink tasks requested.
    pub commit_requests: usize,
    /// The records sink tasks reported as errant: partition, offset, message.
    pub reported: Vec<(TopicPartition, i64, String)>,
}

impl MemoryHostState {
    /// The committed offset of `partition`, if any.
    pub fn source_offset(&self, partition: &OffsetMap) -> Option<&OffsetMap> {
        self.source_offsets
            .iter()
            .find(|(p, _)| p == partition)
            .map(|(_, o)| o)
    }

    /// Store `offset` as the committed offset of `partition`.
    pub fn set_source_offset(&mut self, partition: OffsetMap, offset: OffsetMap) {
        match self
            .source_offsets
            .iter_mut()
            .find(|(p, _)| *p == partition)
        {
            Some((_, o)) => *o = offset,
            None => self.source_offsets.push((partition, offset)),
        }
    }

    fn check_assigned(&self, partitions: &[TopicPartition], verb: &str) -> Result<(), HostError> {
        match partitions.iter().find(|tp| !self.assignment.contains(tp)) {
            None => Ok(()),
            Some(tp) => Err(HostError::new(format!(
                "cannot {verb} {tp}: it is not assigned to this task; use assignment() to see which are"
            ))),
        }
    }
}

/// An in-memory host for every context: answers source offsets and the assignment from a
/// [`MemoryHostState`] and records every request in it. For tests, and for code that wants
/// to see what a plugin asked without acting on it. One `MemoryHost` may serve a connector
/// and its tasks at once (its state is shared).
#[derive(Debug, Default)]
pub struct MemoryHost {
    state: Mutex<MemoryHostState>,
}

impl MemoryHost {
    /// An empty host: nothing committed, nothing assigned.
    pub fn new() -> MemoryHost {
        MemoryHost::default()
    }

    /// With `offset` committed for source `partition`.
    pub fn with_source_offset(self, partition: OffsetMap, offset: OffsetMap) -> MemoryHost {
        self.update(|s| s.set_source_offset(partition, offset));
        self
    }

    /// With `partitions` assigned (to the sink task it serves).
    pub fn with_assignment(
        self,
        partitions: impl IntoIterator<Item = TopicPartition>,
    ) -> MemoryHost {
        self.update(|s| s.assignment.extend(partitions));
        self
    }

    /// Read or change the state.
    pub fn update<R>(&self, f: impl FnOnce(&mut MemoryHostState) -> R) -> R {
        // A panic elsewhere while the lock was held leaves plain data behind: keep using it.
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A copy of the state.
    pub fn snapshot(&self) -> MemoryHostState {
        self.update(|s| s.clone())
    }
}

impl ConnectorHost for MemoryHost {
    fn request_task_reconfiguration(&self) -> Result<(), HostError> {
        self.update(|s| s.reconfiguration_requests += 1);
        Ok(())
    }

    fn raise_error(&self, message: &str) -> Result<(), HostError> {
        self.update(|s| s.raised_errors.push(message.to_owned()));
        Ok(())
    }
}

impl SourceTaskHost for MemoryHost {
    fn offsets(&self, partitions: &[OffsetMap]) -> Result<Vec<Option<OffsetMap>>, HostError> {
        Ok(self.update(|s| {
            s.offset_lookups += 1;
            partitions
                .iter()
                .map(|p| s.source_offset(p).cloned())
                .collect()
        }))
    }
}

impl SinkTaskHost for MemoryHost {
    fn pause(&self, partitions: &[TopicPartition]) -> Result<(), HostError> {
        self.update(|s| {
            s.check_assigned(partitions, "pause")?;
            s.paused.extend(partitions.iter().cloned());
            Ok(())
        })
    }

    fn resume(&self, partitions: &[TopicPartition]) -> Result<(), HostError> {
        self.update(|s| {
            s.check_assigned(partitions, "resume")?;
            for tp in partitions {
                s.paused.remove(tp);
            }
            Ok(())
        })
    }

    fn offset(&self, offsets: &Offsets) -> Result<(), HostError> {
        self.update(|s| {
            s.requested_offsets
                .extend(offsets.iter().map(|(tp, o)| (tp.clone(), *o)))
        });
        Ok(())
    }

    fn request_commit(&self) -> Result<(), HostError> {
        self.update(|s| s.commit_requests += 1);
        Ok(())
    }

    fn assignment(&self) -> Result<Vec<TopicPartition>, HostError> {
        Ok(self.update(|s| s.assignment.iter().cloned().collect()))
    }

    fn report(
        &self,
        partition: &TopicPartition,
        offset: i64,
        message: &str,
    ) -> Result<(), HostError> {
        self.update(|s| {
            s.reported
                .push((partition.clone(), offset, message.to_owned()))
        });
        Ok(())
    }
}

/// One instance's host as its callbacks reach it. The plugin's context holds one counted
/// reference (the ABI's `ctx`, given back through `release`), the instance's handle
/// another; the handle empties the slot once the instance is freed.
struct HostSlot<H: ?Sized> {
    host: Mutex<Option<Arc<H>>>,
}

impl<H: ?Sized> HostSlot<H> {
    fn get(&self) -> Option<Arc<H>> {
        self.host
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, host: Option<Arc<H>>) {
        let old = std::mem::replace(
            &mut *self.host.lock().unwrap_or_else(PoisonError::into_inner),
            host,
        );
        // Dropped outside the lock: the worker's Drop may take its own locks.
        drop(old);
    }
}

impl<H: ?Sized> fmt::Debug for HostSlot<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let attached = self.host.lock().map(|h| h.is_some()).unwrap_or_default();
        f.debug_struct("HostSlot")
            .field("attached", &attached)
            .finish()
    }
}

/// Emptying a slot whatever its host type (for [`Instance`]'s `Drop`).
trait Detach: Send + Sync + fmt::Debug {
    fn detach(&self);
}

impl<H: ?Sized + Send + Sync> Detach for HostSlot<H> {
    fn detach(&self) {
        self.set(None);
    }
}

/// `release` of every table: give back the plugin's reference to a slot.
///
/// # Safety
///
/// `ctx` must be a reference made by [`attach`] for a `HostSlot<H>`, given back once.
unsafe extern "C" fn release<H: ?Sized>(ctx: *mut c_void) {
    if ctx.is_null() {
        return;
    }
    // Dropping the last reference drops at most an empty slot (the handle detached it) or
    // one holding the worker's Arc; neither may unwind into the plugin.
    let _ = catch_unwind(|| {
        // SAFETY: guaranteed by the caller.
        drop(unsafe { Arc::from_raw(ctx.cast_const().cast::<HostSlot<H>>()) });
    });
}

/// A failed callback: the status and message the plugin receives.
struct Refusal(Status, String);

impl From<HostError> for Refusal {
    fn from(e: HostError) -> Refusal {
        let status = if e.retriable {
            Status::RETRIABLE
        } else {
            Status::FAILED
        };
        Refusal(status, e.message)
    }
}

/// Bytes from the plugin that do not decode.
fn undecodable(what: &str, e: impl fmt::Display) -> Refusal {
    Refusal(
        Status::INVALID_INPUT,
        format!("the worker cannot {what}: the plugin sent {e}"),
    )
}

/// The text of a caught panic.
fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    };
    // A payload whose Drop panics again must not escape either: leak it instead.
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
    text
}

/// The body of every host callback: find the slot's host, run `f`, report a failure or a
/// panic through the plugin's `err` writer. `what` completes "cannot ...". Never unwinds.
///
/// # Safety
///
/// `ctx` must be null or a live reference to a `HostSlot<H>` (the plugin's, from
/// [`attach`]); `err` the plugin's writer for this call.
unsafe fn callback<H: ?Sized>(
    ctx: *mut c_void,
    what: &'static str,
    err: Writer,
    f: impl FnOnce(&H) -> Result<(), Refusal>,
) -> Status {
    let result = catch_unwind(AssertUnwindSafe(|| {
        if ctx.is_null() {
            return Err(Refusal(
                Status::INVALID_INPUT,
                format!("the worker cannot {what}: the plugin passed a null context"),
            ));
        }
        // SAFETY: guaranteed by the caller; the plugin's reference keeps the slot alive.
        let slot = unsafe { &*ctx.cast_const().cast::<HostSlot<H>>() };
        let Some(host) = slot.get() else {
            return Err(Refusal(
                Status::FAILED,
                format!(
                    "the worker cannot {what}: the connector or task this context belongs to \
                     was stopped and freed; a plugin must stop its threads in stop() and not \
                     use the context afterwards"
                ),
            ));
        };
        f(&host)
    }));
    let Refusal(status, message) = match result {
        Ok(Ok(())) => return Status::OK,
        Ok(Err(refusal)) => refusal,
        Err(payload) => {
            let text = panic_text(payload);
            tracing::error!(callback = what, panic = %text, "the worker panicked answering a plugin's context call; the plugin gets an error");
            Refusal(
                Status::PANICKED,
                format!("the worker panicked trying to {what}: {text}"),
            )
        }
    };
    // SAFETY: the plugin's writer for this call (an `extern "C"` function: it cannot
    // unwind into us either).
    unsafe { err.write(message.as_bytes()) };
    status
}

static CONNECTOR_HOST_API: ConnectorHostApi = ConnectorHostApi {
    release: release::<dyn ConnectorHost>,
    request_task_reconfiguration: connector_request_task_reconfiguration,
    raise_error: connector_raise_error,
};

static SOURCE_TASK_HOST_API: SourceTaskHostApi = SourceTaskHostApi {
    release: release::<dyn SourceTaskHost>,
    offsets: source_task_offsets,
};

static SINK_TASK_HOST_API: SinkTaskHostApi = SinkTaskHostApi {
    release: release::<dyn SinkTaskHost>,
    pause: sink_task_pause,
    resume: sink_task_resume,
    offset: sink_task_offset,
    request_commit: sink_task_request_commit,
    assignment: sink_task_assignment,
    report: sink_task_report,
};

// SAFETY (all callbacks below): the plugin calls them per the ABI's host callback contract:
// `ctx` is its live reference from the matching `*_initialize`, buffers and writers are valid
// for the call. Each body runs in `callback`.

unsafe extern "C" fn connector_request_task_reconfiguration(
    ctx: *mut c_void,
    err: Writer,
) -> Status {
    // SAFETY: see above.
    unsafe {
        callback::<dyn ConnectorHost>(ctx, "request a task reconfiguration", err, |h| {
            Ok(h.request_task_reconfiguration()?)
        })
    }
}

unsafe extern "C" fn connector_raise_error(ctx: *mut c_void, message: Buf, err: Writer) -> Status {
    // SAFETY: see above.
    unsafe {
        callback::<dyn ConnectorHost>(ctx, "record the connector's error", err, |h| {
            let message = String::from_utf8_lossy(message.as_slice());
            Ok(h.raise_error(&message)?)
        })
    }
}

unsafe extern "C" fn source_task_offsets(
    ctx: *mut c_void,
    partitions: Buf,
    out: Writer,
    err: Writer,
) -> Status {
    const WHAT: &str = "read the committed source offsets";
    // SAFETY: see above.
    unsafe {
        callback::<dyn SourceTaskHost>(ctx, WHAT, err, |h| {
            let partitions = record::decode_offset_maps(partitions.as_slice())
                .map_err(|e| undecodable(WHAT, e))?;
            let offsets = h.offsets(&partitions)?;
            if offsets.len() != partitions.len() {
                return Err(Refusal(
                    Status::FAILED,
                    format!(
                        "the worker cannot {WHAT}: it found {} offsets for {} source partitions \
                         (a bug in the worker; report it)",
                        offsets.len(),
                        partitions.len()
                    ),
                ));
            }
            let mut buf = Vec::new();
            record::encode_opt_offset_maps(&offsets, &mut buf);
            out.write(&buf);
            Ok(())
        })
    }
}

/// A sink callback taking partitions.
///
/// # Safety
///
/// As for [`callback`], with a sink task's slot; `partitions` valid for the call.
unsafe fn sink_partitions_callback(
    ctx: *mut c_void,
    what: &'static str,
    partitions: Buf,
    err: Writer,
    f: impl FnOnce(&dyn SinkTaskHost, &[TopicPartition]) -> Result<(), HostError>,
) -> Status {
    // SAFETY: guaranteed by the caller.
    unsafe {
        callback::<dyn SinkTaskHost>(ctx, what, err, |h| {
            let partitions = record::decode_partitions(partitions.as_slice())
                .map_err(|e| undecodable(what, e))?;
            Ok(f(h, &partitions)?)
        })
    }
}

unsafe extern "C" fn sink_task_pause(ctx: *mut c_void, partitions: Buf, err: Writer) -> Status {
    // SAFETY: see above.
    unsafe { sink_partitions_callback(ctx, "pause partitions", partitions, err, |h, p| h.pause(p)) }
}

unsafe extern "C" fn sink_task_resume(ctx: *mut c_void, partitions: Buf, err: Writer) -> Status {
    // SAFETY: see above.
    unsafe {
        sink_partitions_callback(ctx, "resume partitions", partitions, err, |h, p| {
            h.resume(p)
        })
    }
}

unsafe extern "C" fn sink_task_offset(ctx: *mut c_void, offsets: Buf, err: Writer) -> Status {
    const WHAT: &str = "move the consumer position";
    // SAFETY: see above.
    unsafe {
        callback::<dyn SinkTaskHost>(ctx, WHAT, err, |h| {
            let offsets =
                record::decode_offsets(offsets.as_slice()).map_err(|e| undecodable(WHAT, e))?;
            Ok(h.offset(&offsets)?)
        })
    }
}

unsafe extern "C" fn sink_task_request_commit(ctx: *mut c_void, err: Writer) -> Status {
    // SAFETY: see above.
    unsafe {
        callback::<dyn SinkTaskHost>(ctx, "schedule an offset commit", err, |h| {
            Ok(h.request_commit()?)
        })
    }
}

unsafe extern "C" fn sink_task_report(
    ctx: *mut c_void,
    record: Buf,
    message: Buf,
    err: Writer,
) -> Status {
    const WHAT: &str = "take the errant record's report";
    // SAFETY: see above.
    unsafe {
        callback::<dyn SinkTaskHost>(ctx, WHAT, err, |h| {
            let offsets =
                record::decode_offsets(record.as_slice()).map_err(|e| undecodable(WHAT, e))?;
            let message = String::from_utf8_lossy(message.as_slice());
            for (tp, offset) in &offsets {
                h.report(tp, *offset, &message)?;
            }
            Ok(())
        })
    }
}

unsafe extern "C" fn sink_task_assignment(ctx: *mut c_void, out: Writer, err: Writer) -> Status {
    // SAFETY: see above.
    unsafe {
        callback::<dyn SinkTaskHost>(ctx, "tell the task's assignment", err, |h| {
            let partitions = h.assignment()?;
            let mut buf = Vec::new();
            record::encode_partitions(&partitions, &mut buf);
            out.write(&buf);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_plugin_abi::data::Value;

    /// A plugin's reference to a new slot holding `host`, as `attach` makes it.
    fn plugin_ref<H: ?Sized>(host: Arc<H>) -> (Arc<HostSlot<H>>, *mut c_void) {
        let slot = Arc::new(HostSlot {
            host: Mutex::new(Some(host)),
        });
        let ctx = Arc::into_raw(slot.clone()).cast_mut().cast::<c_void>();
        (slot, ctx)
    }

    /// Call a callback as a plugin does: answer and error message through its writers.
    fn call(f: impl FnOnce(Writer, Writer) -> Status) -> (Status, Vec<u8>, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = f(Writer::for_vec(&mut out), Writer::for_vec(&mut err));
        (status, out, String::from_utf8(err).unwrap())
    }

    fn partitions_buf(partitions: &[OffsetMap]) -> Vec<u8> {
        let mut buf = Vec::new();
        record::encode_offset_maps(partitions, &mut buf);
        buf
    }

    #[test]
    fn offsets_cross_and_a_detached_context_answers_an_error() {
        let file: OffsetMap = [("filename".to_string(), Value::from("/in.txt"))].into();
        let position: OffsetMap = [("position".to_string(), Value::Int64(30))].into();
        let host = Arc::new(MemoryHost::new().with_source_offset(file.clone(), position.clone()));
        let (slot, ctx) = plugin_ref::<dyn SourceTaskHost>(host.clone());
        let api = &SOURCE_TASK_HOST_API;
        let input = partitions_buf(&[file.clone(), OffsetMap::new()]);

        // SAFETY (every call below): a live plugin reference; buffers valid for the call.
        let (status, out, err) =
            call(|o, e| unsafe { (api.offsets)(ctx, Buf::from_slice(&input), o, e) });
        assert_eq!((status, err.as_str()), (Status::OK, ""));
        assert_eq!(
            record::decode_opt_offset_maps(&out).unwrap(),
            [Some(position), None]
        );

        // Bytes that do not decode are refused, not trusted.
        let (status, _, err) =
            call(|o, e| unsafe { (api.offsets)(ctx, Buf::from_slice(&[7, 0, 0, 0]), o, e) });
        assert_eq!(status, Status::INVALID_INPUT, "{err}");
        assert!(err.contains("the plugin sent malformed"), "{err}");

        // Once the instance is freed, a context kept by a plugin thread reaches nothing.
        slot.detach();
        assert_eq!(Arc::strong_count(&host), 1, "the host is let go at once");
        let (status, _, err) =
            call(|o, e| unsafe { (api.offsets)(ctx, Buf::from_slice(&input), o, e) });
        assert_eq!(status, Status::FAILED);
        assert!(err.contains("was stopped and freed"), "{err}");

        // The plugin gives its reference back; the slot goes with the last one.
        assert_eq!(Arc::strong_count(&slot), 2);
        // SAFETY: the plugin's one reference, given back once.
        unsafe { (api.release)(ctx) };
        assert_eq!(Arc::strong_count(&slot), 1);
    }

    /// A host answering the wrong number of offsets, or panicking.
    struct Wrong {
        panic: bool,
    }

    impl SourceTaskHost for Wrong {
        fn offsets(&self, _: &[OffsetMap]) -> Result<Vec<Option<OffsetMap>>, HostError> {
            if self.panic {
                panic!("no offsets today");
            }
            Ok(Vec::new())
        }
    }

    #[test]
    fn a_bad_or_panicking_host_answer_is_a_status_with_a_message() {
        let input = partitions_buf(&[OffsetMap::new()]);
        let api = &SOURCE_TASK_HOST_API;
        for (panic, expected, text) in [
            (
                false,
                Status::FAILED,
                "it found 0 offsets for 1 source partitions",
            ),
            (
                true,
                Status::PANICKED,
                "the worker panicked trying to read the committed source offsets: no offsets today",
            ),
        ] {
            let (_slot, ctx) = plugin_ref::<dyn SourceTaskHost>(Arc::new(Wrong { panic }));
            // SAFETY: a live plugin reference; buffers valid for the call.
            let (status, out, err) =
                call(|o, e| unsafe { (api.offsets)(ctx, Buf::from_slice(&input), o, e) });
            assert_eq!(status, expected, "{err}");
            assert!(err.contains(text), "{err}");
            assert!(out.is_empty(), "no answer with an error");
            // SAFETY: the plugin's one reference, given back once.
            unsafe { (api.release)(ctx) };
        }

        // A null context (a plugin bug) is refused too.
        // SAFETY: the callback checks for null before anything else.
        let (status, _, err) = call(|o, e| unsafe {
            (api.offsets)(std::ptr::null_mut(), Buf::from_slice(&input), o, e)
        });
        assert_eq!(status, Status::INVALID_INPUT, "{err}");
    }

    #[test]
    fn connector_and_sink_callbacks_reach_their_host() {
        let host = Arc::new(MemoryHost::new().with_assignment([TopicPartition::new("t", 0)]));
        let (_c, cctx) = plugin_ref::<dyn ConnectorHost>(host.clone());
        let (_s, sctx) = plugin_ref::<dyn SinkTaskHost>(host.clone());
        let (c, s) = (&CONNECTOR_HOST_API, &SINK_TASK_HOST_API);
        let tp = TopicPartition::new("t", 0);
        let mut parts = Vec::new();
        record::encode_partitions(std::slice::from_ref(&tp), &mut parts);
        let mut offsets = Vec::new();
        record::encode_offsets(&Offsets::from([(tp.clone(), 9)]), &mut offsets);

        // SAFETY (every call below): live plugin references; buffers valid for the call.
        unsafe {
            assert_eq!(
                call(|_, e| (c.request_task_reconfiguration)(cctx, e)).0,
                Status::OK
            );
            let msg = "disk on fire";
            assert_eq!(
                call(|_, e| (c.raise_error)(cctx, Buf::from_slice(msg.as_bytes()), e)).0,
                Status::OK
            );
            assert_eq!(
                call(|_, e| (s.pause)(sctx, Buf::from_slice(&parts), e)).0,
                Status::OK
            );
            assert_eq!(
                call(|_, e| (s.offset)(sctx, Buf::from_slice(&offsets), e)).0,
                Status::OK
            );
            assert_eq!(call(|_, e| (s.request_commit)(sctx, e)).0, Status::OK);
            let why = "HTTP 400";
            assert_eq!(
                call(|_, e| (s.report)(
                    sctx,
                    Buf::from_slice(&offsets),
                    Buf::from_slice(why.as_bytes()),
                    e
                ))
                .0,
                Status::OK
            );
            let (status, out, _) = call(|o, e| (s.assignment)(sctx, o, e));
            assert_eq!(status, Status::OK);
            assert_eq!(
                record::decode_partitions(&out).unwrap(),
                std::slice::from_ref(&tp)
            );
            let state = host.snapshot();
            assert_eq!(state.reconfiguration_requests, 1);
            assert_eq!(state.raised_errors, ["disk on fire"]);
            assert_eq!(state.paused, [tp.clone()].into());
            assert_eq!(state.requested_offsets, Offsets::from([(tp.clone(), 9)]));
            assert_eq!(state.commit_requests, 1);
            assert_eq!(state.reported, [(tp.clone(), 9, "HTTP 400".to_owned())]);
            assert_eq!(
                call(|_, e| (s.resume)(sctx, Buf::from_slice(&parts), e)).0,
                Status::OK
            );
            assert!(host.snapshot().paused.is_empty());

            // The host's refusal keeps its retriability; its message reaches the plugin.
            let mut other = Vec::new();
            record::encode_partitions(&[TopicPartition::new("u", 1)], &mut other);
            let (status, _, err) = call(|_, e| (s.pause)(sctx, Buf::from_slice(&other), e));
            assert_eq!(status, Status::FAILED);
            assert!(
                err.contains("cannot pause u-1: it is not assigned"),
                "{err}"
            );

            (c.release)(cctx);
            (s.release)(sctx);
        }
        assert_eq!(Arc::strong_count(&host), 3, "the slots still hold it");
    }

    #[test]
    fn host_errors_map_to_statuses() {
        let Refusal(status, message) = HostError::retriable("later").into();
        assert_eq!((status, message.as_str()), (Status::RETRIABLE, "later"));
        let Refusal(status, _) = HostError::new("never").into();
        assert_eq!(status, Status::FAILED);
        let noop = NoopHost;
        assert_eq!(
            noop.offsets(&[OffsetMap::new(), OffsetMap::new()]).unwrap(),
            [None, None]
        );
        assert!(SinkTaskHost::assignment(&noop).unwrap().is_empty());
    }
}
