//! The host's handles on a plugin's connector and task instances.
//!
//! Each call encodes its input into a buffer the plugin borrows for the call, collects the
//! plugin's answer and error message through host-side [`Writer`]s (so every allocation is
//! freed by the side that made it), and turns the status into a [`PluginError`] naming the
//! file, the connector and the call. After a panic the instance is poisoned: further calls
//! answer [`PluginError::Poisoned`] without entering the plugin; dropping it still frees it
//! inside the plugin.
//!
//! All calls may block: see the module docs of `plugin`.

use std::sync::Arc;

use tributary_plugin_abi::config::{ConfigValueInfo, decode_config_values};
use tributary_plugin_abi::ffi::{Buf, Handle, PluginApi, Status, Writer};
use tributary_plugin_abi::record::{
    self, Offsets, RecordMetadata, SinkRecord, SourceRecord, TopicPartition,
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
    }
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
}

impl Connector {
    pub(crate) fn new(plugin: Arc<ConnectorPlugin>) -> Result<Connector, PluginError> {
        Ok(Connector {
            inner: Instance::new(plugin, Role::Connector)?,
        })
    }

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

    pub fn start(&mut self, config: &StringMap) -> Result<(), PluginError> {
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
    /// The last polled batch, encoded; reused across polls.
    batch: Vec<u8>,
}

impl SourceTask {
    pub(crate) fn new(plugin: Arc<ConnectorPlugin>) -> Result<SourceTask, PluginError> {
        Ok(SourceTask {
            inner: Instance::new(plugin, Role::SourceTask)?,
            batch: Vec::new(),
        })
    }

    pub fn plugin(&self) -> &Arc<ConnectorPlugin> {
        &self.inner.plugin
    }

    pub fn start(&mut self, config: &StringMap) -> Result<(), PluginError> {
        let input = encode_map(config);
        self.inner.call("start", |api, h, err| {
            // SAFETY: a source task handle; buffers and writers valid for the call.
            unsafe { (api.source_task_start)(h, Buf::from_slice(&input), err) }
        })
    }

    /// Poll one batch and answer it still encoded (see `tributary_plugin_abi::record`),
    /// borrowed until the next poll: for callers that slice records without decoding them.
    pub fn poll_encoded(&mut self) -> Result<&[u8], PluginError> {
        self.batch.clear();
        let out = &mut self.batch;
        self.inner.call("poll", |api, h, err| {
            // SAFETY: as in `start`.
            unsafe { (api.source_task_poll)(h, Writer::for_vec(out), err) }
        })?;
        Ok(&self.batch)
    }

    /// Poll one batch of records (possibly empty).
    pub fn poll(&mut self) -> Result<Vec<SourceRecord>, PluginError> {
        self.poll_encoded()?;
        record::decode_source_batch(&self.batch)
            .map_err(|e| self.inner.protocol("poll", e.to_string()))
    }

    pub fn commit(&mut self) -> Result<(), PluginError> {
        self.inner.call("commit", |api, h, err| {
            // SAFETY: as in `start`.
            unsafe { (api.source_task_commit)(h, err) }
        })
    }

    /// Report where records were written (`None`: dropped before reaching a topic).
    pub fn commit_records(
        &mut self,
        records: &[(SourceRecord, Option<RecordMetadata>)],
    ) -> Result<(), PluginError> {
        let mut input = Vec::new();
        record::encode_committed_records(records, &mut input);
        self.inner.call("commit_record", |api, h, err| {
            // SAFETY: as in `start`.
            unsafe { (api.source_task_commit_records)(h, Buf::from_slice(&input), err) }
        })
    }

    pub fn stop(&mut self) -> Result<(), PluginError> {
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
    /// The batch being delivered, encoded; reused across puts.
    batch: Vec<u8>,
}

impl SinkTask {
    pub(crate) fn new(plugin: Arc<ConnectorPlugin>) -> Result<SinkTask, PluginError> {
        Ok(SinkTask {
            inner: Instance::new(plugin, Role::SinkTask)?,
            batch: Vec::new(),
        })
    }

    pub fn plugin(&self) -> &Arc<ConnectorPlugin> {
        &self.inner.plugin
    }

    pub fn start(&mut self, config: &StringMap) -> Result<(), PluginError> {
        let input = encode_map(config);
        self.inner.call("start", |api, h, err| {
            // SAFETY: a sink task handle; buffers and writers valid for the call.
            unsafe { (api.sink_task_start)(h, Buf::from_slice(&input), err) }
        })
    }

    pub fn open(&mut self, partitions: &[TopicPartition]) -> Result<(), PluginError> {
        let mut input = Vec::new();
        record::encode_partitions(partitions, &mut input);
        self.inner.call("open", |api, h, err| {
            // SAFETY: as in `start`.
            unsafe { (api.sink_task_open)(h, Buf::from_slice(&input), err) }
        })
    }

    /// Deliver a batch.
    pub fn put(&mut self, records: &[SinkRecord]) -> Result<(), PluginError> {
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        record::encode_sink_batch(records, &mut batch);
        let result = self.put_encoded(&batch);
        self.batch = batch;
        result
    }

    /// Deliver a batch already encoded by `tributary_plugin_abi::record::encode_sink_batch`.
    pub fn put_encoded(&mut self, batch: &[u8]) -> Result<(), PluginError> {
        self.inner.call("put", |api, h, err| {
            // SAFETY: as in `start`.
            unsafe { (api.sink_task_put)(h, Buf::from_slice(batch), err) }
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

    pub fn close(&mut self, partitions: &[TopicPartition]) -> Result<(), PluginError> {
        let mut input = Vec::new();
        record::encode_partitions(partitions, &mut input);
        self.inner.call("close", |api, h, err| {
            // SAFETY: as in `start`.
            unsafe { (api.sink_task_close)(h, Buf::from_slice(&input), err) }
        })
    }

    pub fn stop(&mut self) -> Result<(), PluginError> {
        self.inner.call("stop", |api, h, err| {
            // SAFETY: as in `start`.
            unsafe { (api.sink_task_stop)(h, err) }
        })
    }
}
