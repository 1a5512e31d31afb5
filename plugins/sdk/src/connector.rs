//! The traits a plugin implements, in the shape of Kafka Connect's `SourceConnector`,
//! `SinkConnector`, `SourceTask` and `SinkTask`.
//!
//! Lifecycle, as the worker drives it:
//!
//! - connector: created (`Default`), maybe [`SourceConnector::validate`]d, `initialize`d
//!   with its [`ConnectorContext`] (once, before the first start), `start`ed with its parsed
//!   config, asked for `task_configs(max_tasks)` (again after a reconfiguration), `stop`ped
//!   (a paused connector is stopped and later started again), dropped;
//! - source task: created, `initialize`d with its [`SourceTaskContext`], `start`ed with one
//!   of those task configs (reading its committed offsets through the context), polled in a
//!   loop (`poll_batch`, by default `poll` of owned records), told `commit` / `commit_record` as its records are written and their offsets
//!   stored, `stop`ped, dropped;
//! - sink task: created, `initialize`d with its [`SinkTaskContext`], `start`ed, `open`ed
//!   with its assigned partitions, given batches (`put_batch`, by default `put` of owned
//!   records), asked to `pre_commit` (flush) before offsets are committed, `close`d for
//!   revoked partitions, `stop`ped, dropped.
//!
//! Every call may block (the worker makes them on a blocking thread), but `poll` and `put`
//! should return within about a second so that the task can be stopped promptly. One
//! instance is called by one thread at a time. A panic fails that task only.

use crate::batch::SinkBatch;
use crate::config::{Config, ConfigDef, ConfigValueInfo, RawConfig};
use crate::context::{ConnectorContext, SinkTaskContext, SourceTaskContext};
use crate::error::{ConnectError, Result};
use crate::source_batch::SourceBatch;
use tributary_plugin_abi::record::{
    Offsets, RecordMetadata, SinkRecord, SourceRecord, TopicPartition,
};

/// A source connector: decides how the work is split into tasks.
pub trait SourceConnector: Default + Send + 'static {
    /// The full name users put in `connector.class`, e.g.
    /// `io.tributary.connect.file.FileStreamSourceConnector`. The worker also accepts the
    /// simple name (`FileStreamSourceConnector`) and the simple name without its
    /// `Connector` suffix (`FileStreamSource`).
    const NAME: &'static str;
    /// More names it may be called by.
    const ALIASES: &'static [&'static str] = &[];
    /// The connector's version; `None` means the plugin crate's version.
    const VERSION: Option<&'static str> = None;

    /// The task that does the work.
    type Task: SourceTask;

    /// The config keys this connector understands.
    fn config_def() -> ConfigDef;

    /// Validate a config without starting (the REST `validate` call). The default checks
    /// every key of [`Self::config_def`]; override to add checks across keys.
    fn validate(&mut self, config: &RawConfig) -> Vec<ConfigValueInfo> {
        Self::config_def().validate(config)
    }

    /// Receive the connector's context, once, before the first [`Self::start`]. Keep it
    /// (it is cheap to clone) to request a task reconfiguration or raise an error later,
    /// from any thread. The default ignores it.
    fn initialize(&mut self, context: ConnectorContext) {
        let _ = context;
    }

    /// Start with a config already parsed by [`Self::config_def`] (a config that does not
    /// parse never reaches here).
    fn start(&mut self, config: Config) -> Result<()>;

    /// At most `max_tasks` configs, one per task to run.
    fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<RawConfig>>;

    fn stop(&mut self) -> Result<()>;
}

/// A sink connector: decides how the work is split into tasks.
pub trait SinkConnector: Default + Send + 'static {
    /// See [`SourceConnector::NAME`].
    const NAME: &'static str;
    const ALIASES: &'static [&'static str] = &[];
    const VERSION: Option<&'static str> = None;

    type Task: SinkTask;

    fn config_def() -> ConfigDef;

    fn validate(&mut self, config: &RawConfig) -> Vec<ConfigValueInfo> {
        Self::config_def().validate(config)
    }

    /// See [`SourceConnector::initialize`].
    fn initialize(&mut self, context: ConnectorContext) {
        let _ = context;
    }

    fn start(&mut self, config: Config) -> Result<()>;

    fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<RawConfig>>;

    fn stop(&mut self) -> Result<()>;
}

/// A source task: reads from the outside world and hands records to the worker.
pub trait SourceTask: Default + Send + 'static {
    /// Receive the task's context, once, before [`Self::start`]. Keep it to read the
    /// committed source offsets in `start` (and later). The default ignores it.
    fn initialize(&mut self, context: SourceTaskContext) {
        let _ = context;
    }

    /// Start with one of the connector's task configs.
    fn start(&mut self, config: RawConfig) -> Result<()>;

    /// The next batch; empty when nothing is available (after waiting briefly, not
    /// spinning). Implement this or [`Self::poll_batch`].
    fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        Err(ConnectError::new(
            "this source task implements neither poll nor poll_batch (a bug in the plugin: \
             implement one of them)",
        ))
    }

    /// Fill `batch` (empty, and lent to the worker until the next poll) with the next
    /// records; leave it empty when nothing is available (after waiting briefly, not
    /// spinning). The default pushes what [`Self::poll`] returns. A source of many small
    /// records implements this instead of `poll` and writes them into the batch
    /// ([`SourceBatch::add`], [`SourceBatch::set_offset`]): no allocation per record.
    fn poll_batch(&mut self, batch: &mut SourceBatch) -> Result<()> {
        for r in self.poll()? {
            batch.push(r);
        }
        Ok(())
    }

    /// The offsets of every record polled so far are stored.
    fn commit(&mut self) -> Result<()> {
        Ok(())
    }

    /// `record` was written at `metadata` (or, with `None`, dropped by a transform). A
    /// record written into a [`SourceBatch`] comes without a source position (positions
    /// are per batch). A task that does not implement this is not called at all (the
    /// default tells the SDK so on its first call).
    fn commit_record(
        &mut self,
        record: &SourceRecord,
        metadata: Option<&RecordMetadata>,
    ) -> Result<()> {
        let _ = (record, metadata);
        crate::export::default_commit_record_called();
        Ok(())
    }

    fn stop(&mut self) -> Result<()>;
}

/// A sink task: writes records from topics to the outside world.
pub trait SinkTask: Default + Send + 'static {
    /// Receive the task's context, once, before [`Self::start`]. Keep it to pause and
    /// resume partitions, move the consumer position, request commits or read the
    /// assignment. The default ignores it.
    fn initialize(&mut self, context: SinkTaskContext) {
        let _ = context;
    }

    fn start(&mut self, config: RawConfig) -> Result<()>;

    /// These partitions were assigned to this task.
    fn open(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let _ = partitions;
        Ok(())
    }

    /// Write (or buffer) a batch. A retriable error means "call again with the same batch".
    fn put(&mut self, records: Vec<SinkRecord>) -> Result<()>;

    /// Write (or buffer) a batch read in place: what the worker calls. The default builds
    /// the owned records and calls [`Self::put`]; a sink that only reads its records (to
    /// write their values out, say) overrides it to read each one as a
    /// [`SinkRecordRef`](crate::SinkRecordRef), which borrows the topic and a raw or text
    /// key and value from the worker instead of copying them per record. Then make `put`
    /// call `put_batch(&SinkBatch::of(&records))`, so that both take one path.
    ///
    /// Nothing read from the batch outlives the call. A record that does not decode is an
    /// error naming it; fail the batch with it.
    fn put_batch(&mut self, batch: &SinkBatch<'_>) -> Result<()> {
        self.put(batch.to_owned()?)
    }

    /// Make everything `put` so far durable.
    fn flush(&mut self, offsets: &Offsets) -> Result<()> {
        let _ = offsets;
        Ok(())
    }

    /// Before the worker commits `offsets` (the next offset to consume per partition):
    /// answer the offsets that are safe to commit. The default flushes and answers them all;
    /// an empty answer commits nothing.
    fn pre_commit(&mut self, offsets: Offsets) -> Result<Offsets> {
        self.flush(&offsets)?;
        Ok(offsets)
    }

    /// These partitions were revoked; release what is held for them.
    fn close(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let _ = partitions;
        Ok(())
    }

    fn stop(&mut self) -> Result<()>;
}
