//! Drive a connector and its tasks in-process, without a worker, and inspect the records.
//!
//! The harness goes through the same glue as the exported library: configs are parsed by
//! the connector's `ConfigDef` before `start`, every batch is encoded and decoded as it
//! would be at the boundary (so a record that cannot cross fails here too), keys and values
//! are checked against their schemas, and a panic becomes [`HarnessError::Panicked`] as it
//! would become a failed task in the worker.
//!
//! The harness also plays the worker's side of the contexts, through the same C callbacks:
//! every connector and task is `initialize`d before `start`; a source task reads the offsets
//! the harness was given ([`SourceHarness::start_with_offsets`]) or that it committed
//! ([`SourceHarness::commit`] stores the offsets of what was polled, as the worker does);
//! connector requests ([`SourceHarness::reconfiguration_requests`],
//! [`SourceHarness::raised_errors`]) and sink task requests ([`SinkHarness::requests`]) are
//! recorded; and [`HostFault`] makes the worker's side fail or panic.
//!
//! ```
//! # use tributary_plugin_sdk::*;
//! # #[derive(Default)] struct Gen; #[derive(Default)] struct GenTask(i64);
//! # impl SourceConnector for Gen {
//! #     const NAME: &'static str = "example.Gen";
//! #     type Task = GenTask;
//! #     fn config_def() -> ConfigDef { ConfigDef::new() }
//! #     fn start(&mut self, _: Config) -> Result<()> { Ok(()) }
//! #     fn task_configs(&mut self, max: usize) -> Result<Vec<RawConfig>> { Ok(vec![RawConfig::new(); max]) }
//! #     fn stop(&mut self) -> Result<()> { Ok(()) }
//! # }
//! # impl SourceTask for GenTask {
//! #     fn start(&mut self, _: RawConfig) -> Result<()> { Ok(()) }
//! #     fn poll(&mut self) -> Result<Vec<SourceRecord>> { self.0 += 1; Ok(vec![SourceRecord::new("t", Data::bytes(vec![1]))]) }
//! #     fn stop(&mut self) -> Result<()> { Ok(()) }
//! # }
//! use tributary_plugin_sdk::testing::{SourceHarness, config};
//!
//! let mut h = SourceHarness::<Gen>::start(config(&[]), 2).unwrap();
//! assert_eq!(h.task_count(), 2);
//! let records = h.poll(0).unwrap();
//! assert_eq!(records[0].topic, "t");
//! h.stop().unwrap();
//! ```

mod host;
mod transform;

use std::fmt;
use std::marker::PhantomData;

use tributary_plugin_abi::ffi::Status;
use tributary_plugin_abi::record::{
    OffsetMap, Offsets, RecordMetadata, SinkRecord, SourceRecord, TopicPartition,
};
use tributary_plugin_abi::view::{self, SinkBatchBuilder};

use host::TestHost;
pub use host::{HostFault, SinkTaskRequests};
pub use transform::{PredicateHarness, TransformHarness};

#[cfg(test)]
mod tests;

use crate::batch::SinkBatch;
use crate::config::{ConfigValueInfo, RawConfig};
use crate::connector::{SinkConnector, SourceConnector};
use crate::error::ConnectError;
use crate::export::{
    CallError, ErasedConnector, ErasedSinkTask, ErasedSourceTask, catch, install_panic_hook,
    new_sink_connector, new_sink_task, new_source_connector, new_source_task,
};
use crate::source_batch::SourceBatch;

/// Build a raw config from pairs.
pub fn config(pairs: &[(&str, &str)]) -> RawConfig {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Why a harness call failed, in the categories the worker distinguishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HarnessError {
    /// The connector returned an error.
    Failed { retriable: bool, message: String },
    /// The connector panicked.
    Panicked(String),
    /// The records or offsets it produced cannot cross the boundary or break their schema.
    Invalid(String),
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::Failed {
                retriable: true,
                message,
            } => write!(f, "failed (retriable): {message}"),
            HarnessError::Failed { message, .. } => write!(f, "failed: {message}"),
            HarnessError::Panicked(m) => f.write_str(m),
            HarnessError::Invalid(m) => write!(f, "invalid: {m}"),
        }
    }
}

impl std::error::Error for HarnessError {}

impl From<CallError> for HarnessError {
    fn from(e: CallError) -> HarnessError {
        match e.status {
            Status::PANICKED => HarnessError::Panicked(e.message),
            Status::INVALID_INPUT => HarnessError::Invalid(e.message),
            s => HarnessError::Failed {
                retriable: s == Status::RETRIABLE,
                message: e.message,
            },
        }
    }
}

type HResult<T> = Result<T, HarnessError>;

fn call<T>(f: impl FnOnce() -> Result<T, CallError>) -> HResult<T> {
    install_panic_hook();
    catch(f).map_err(HarnessError::from)
}

fn validate_on(mut c: Box<dyn ErasedConnector>, raw: &RawConfig) -> HResult<Vec<ConfigValueInfo>> {
    call(|| Ok(c.validate(raw)))
}

fn start_connector(
    mut c: Box<dyn ErasedConnector>,
    host: &TestHost,
    raw: &RawConfig,
    max_tasks: usize,
) -> HResult<(Box<dyn ErasedConnector>, Vec<RawConfig>)> {
    let context = host.connector_context();
    call(|| {
        c.initialize(context);
        c.start(raw)
    })?;
    let configs = task_configs(&mut c, max_tasks)?;
    Ok((c, configs))
}

/// Ask for task configs, as the worker receives them.
fn task_configs(c: &mut Box<dyn ErasedConnector>, max_tasks: usize) -> HResult<Vec<RawConfig>> {
    let configs = call(|| c.task_configs(max_tasks))?;
    // What the worker receives went through the encoding.
    let mut buf = Vec::new();
    tributary_plugin_abi::wire::encode_string_maps(&configs, &mut buf);
    tributary_plugin_abi::wire::decode_string_maps(&buf)
        .map_err(|e| HarnessError::Invalid(e.to_string()))
}

/// Stop every task, then the connector (the worker's order). The first error wins, but
/// everything is stopped.
fn stop_all<T: ?Sized>(
    tasks: &mut [Box<T>],
    stop: impl Fn(&mut T) -> Result<(), CallError>,
    connector: &mut Box<dyn ErasedConnector>,
) -> HResult<()> {
    let mut first = Ok(());
    for t in tasks {
        let r = call(|| stop(t));
        if first.is_ok() {
            first = r;
        }
    }
    let r = call(|| connector.stop());
    first.and(r)
}

/// Create, initialize and start source task `index`.
fn start_source_task<C: SourceConnector>(
    host: &TestHost,
    index: usize,
    config: &RawConfig,
) -> HResult<Box<dyn ErasedSourceTask>> {
    let mut t = new_source_task::<C>();
    let context = host.source_task_context(index);
    call(|| {
        t.initialize(context);
        t.start(config.clone())
    })?;
    Ok(t)
}

/// Create, initialize and start sink task `index`.
fn start_sink_task<C: SinkConnector>(
    host: &TestHost,
    index: usize,
    config: &RawConfig,
) -> HResult<Box<dyn ErasedSinkTask>> {
    let mut t = new_sink_task::<C>();
    let context = host.sink_task_context(index);
    call(|| {
        t.initialize(context);
        t.start(config.clone())
    })?;
    Ok(t)
}

/// A source connector started with its tasks.
pub struct SourceHarness<C: SourceConnector> {
    connector: Box<dyn ErasedConnector>,
    max_tasks: usize,
    task_configs: Vec<RawConfig>,
    tasks: Vec<Box<dyn ErasedSourceTask>>,
    /// Per task: the offset of the last record polled from each source partition, not yet
    /// committed.
    polled: Vec<Vec<(OffsetMap, OffsetMap)>>,
    host: TestHost,
    _connector: PhantomData<fn() -> C>,
}

impl<C: SourceConnector> fmt::Debug for SourceHarness<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceHarness")
            .field("connector", &C::NAME)
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

impl<C: SourceConnector> SourceHarness<C> {
    /// Validate a config on a fresh connector instance, as the REST `validate` call does.
    pub fn validate(config: &RawConfig) -> HResult<Vec<ConfigValueInfo>> {
        validate_on(new_source_connector::<C>(), config)
    }

    /// Start the connector, ask for at most `max_tasks` task configs, start a task for each.
    /// No offsets are committed yet: tasks start from the beginning.
    pub fn start(config: RawConfig, max_tasks: usize) -> HResult<Self> {
        Self::start_with_offsets(config, max_tasks, [])
    }

    /// [`Self::start`], with `offsets` (source partition, source offset) already committed,
    /// as after an earlier run: tasks read them through their [`crate::SourceTaskContext`].
    pub fn start_with_offsets(
        config: RawConfig,
        max_tasks: usize,
        offsets: impl IntoIterator<Item = (OffsetMap, OffsetMap)>,
    ) -> HResult<Self> {
        let host = TestHost::default();
        {
            let mut state = host.state();
            for (partition, offset) in offsets {
                state.commit_offset(partition, offset);
            }
        }
        let (connector, task_configs) =
            start_connector(new_source_connector::<C>(), &host, &config, max_tasks)?;
        let mut h = SourceHarness {
            connector,
            max_tasks,
            task_configs: Vec::new(),
            tasks: Vec::new(),
            polled: Vec::new(),
            host,
            _connector: PhantomData,
        };
        h.start_tasks(task_configs)?;
        Ok(h)
    }

    fn start_tasks(&mut self, task_configs: Vec<RawConfig>) -> HResult<()> {
        self.tasks.clear();
        self.polled.clear();
        for (i, tc) in task_configs.iter().enumerate() {
            self.tasks.push(start_source_task::<C>(&self.host, i, tc)?);
            self.polled.push(Vec::new());
        }
        self.task_configs = task_configs;
        Ok(())
    }

    /// The task configs the connector answered, as the worker received them.
    pub fn task_configs(&self) -> &[RawConfig] {
        &self.task_configs
    }

    /// How many tasks run.
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// One poll of task `task`, as the worker would receive it. The harness remembers the
    /// batch's source positions for [`Self::commit`]. Records the task wrote into its
    /// [`SourceBatch`] come back without a source position (positions are per batch).
    pub fn poll(&mut self, task: usize) -> HResult<Vec<SourceRecord>> {
        let t = &mut self.tasks[task];
        let mut batch = SourceBatch::new();
        call(|| t.poll_batch(&mut batch))?;
        let positions = batch.positions();
        let owned: Vec<Option<SourceRecord>> =
            (0..batch.len()).map(|i| batch.owned(i).cloned()).collect();
        // Across the boundary and back, as the worker reads the batch: every record must
        // read back as it was.
        let mut lent = batch.read();
        let mut records = Vec::with_capacity(lent.len());
        for (i, pushed) in owned.into_iter().enumerate() {
            let read = lent
                .get(i)
                .and_then(|r| {
                    r.to_owned()
                        .map_err(|e| ConnectError::new(format!("record {i} of the batch: {e}")))
                })
                .map_err(|e| HarnessError::Invalid(e.to_string()))?;
            let r = match pushed {
                None => read,
                Some(r) => {
                    if read.topic != r.topic
                        || read.key != r.key
                        || read.value != r.value
                        || read.headers != r.headers
                        || read.partition != r.partition
                        || read.timestamp != r.timestamp
                    {
                        return Err(HarnessError::Invalid(format!(
                            "record {i} of the batch does not cross the boundary unchanged"
                        )));
                    }
                    r
                }
            };
            for (what, d) in [("key", &r.key), ("value", &r.value)] {
                d.validate().map_err(|e| {
                    HarnessError::Invalid(format!("record {i} of the batch: {what}: {e}"))
                })?;
            }
            records.push(r);
        }
        let polled = &mut self.polled[task];
        for (partition, offset) in positions {
            match polled.iter_mut().find(|(p, _)| *p == partition) {
                Some((_, o)) => *o = offset,
                None => polled.push((partition, offset)),
            }
        }
        Ok(records)
    }

    /// Poll task `task` until at least `n` records arrived or `max_polls` polls were made.
    pub fn poll_records(
        &mut self,
        task: usize,
        n: usize,
        max_polls: usize,
    ) -> HResult<Vec<SourceRecord>> {
        let mut out = Vec::new();
        for _ in 0..max_polls {
            if out.len() >= n {
                break;
            }
            out.extend(self.poll(task)?);
        }
        Ok(out)
    }

    /// Store the source offsets of everything task `task` polled (as if every record was
    /// written), then tell the task, as the worker's offset commit does.
    pub fn commit(&mut self, task: usize) -> HResult<()> {
        {
            let mut state = self.host.state();
            for (partition, offset) in self.polled[task].drain(..) {
                state.commit_offset(partition, offset);
            }
        }
        let t = &mut self.tasks[task];
        call(|| t.commit())
    }

    /// The source offset committed for `partition`, if any.
    pub fn committed_offset(&self, partition: &OffsetMap) -> Option<OffsetMap> {
        self.host.state().committed_offset(partition)
    }

    /// Stop task `task` and start a new instance with the same config, as the worker's
    /// restart does: the new task reads the committed offsets (what was polled but not
    /// committed is delivered again). A failed stop is reported after the new task started;
    /// if the new task fails to start, its error is returned and the stopped one stays.
    pub fn restart_task(&mut self, task: usize) -> HResult<()> {
        let old = &mut self.tasks[task];
        let stopped = call(|| old.stop());
        self.polled[task].clear();
        self.tasks[task] = start_source_task::<C>(&self.host, task, &self.task_configs[task])?;
        stopped
    }

    /// What the worker does after a reconfiguration request: stop every task, ask the
    /// connector for task configs again and start a task for each.
    pub fn reconfigure(&mut self) -> HResult<()> {
        let mut first = Ok(());
        for t in &mut self.tasks {
            let r = call(|| t.stop());
            if first.is_ok() {
                first = r;
            }
        }
        let configs = task_configs(&mut self.connector, self.max_tasks)?;
        self.start_tasks(configs)?;
        first
    }

    /// How many times the connector asked for a task reconfiguration.
    pub fn reconfiguration_requests(&self) -> usize {
        self.host.state().reconfiguration_requests
    }

    /// The errors the connector raised through its context, in order.
    pub fn raised_errors(&self) -> Vec<String> {
        self.host.state().raised_errors.clone()
    }

    /// Make every context call fail or panic until cleared with `None`.
    pub fn set_host_fault(&self, fault: Option<HostFault>) {
        self.host.state().fault = fault;
    }

    /// Tell task `task` where its records were written.
    pub fn commit_records(
        &mut self,
        task: usize,
        records: &[(SourceRecord, Option<RecordMetadata>)],
    ) -> HResult<()> {
        let t = &mut self.tasks[task];
        call(|| {
            for (record, meta) in records {
                t.commit_record(record, meta.as_ref())?;
            }
            Ok(())
        })
    }

    /// Stop every task, then the connector (the worker's order). The first error wins, but
    /// everything is stopped.
    pub fn stop(mut self) -> HResult<()> {
        stop_all(&mut self.tasks, |t| t.stop(), &mut self.connector)
    }
}

/// A sink connector started with its tasks.
pub struct SinkHarness<C: SinkConnector> {
    connector: Box<dyn ErasedConnector>,
    task_configs: Vec<RawConfig>,
    tasks: Vec<Box<dyn ErasedSinkTask>>,
    host: TestHost,
    _connector: PhantomData<fn() -> C>,
}

impl<C: SinkConnector> fmt::Debug for SinkHarness<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkHarness")
            .field("connector", &C::NAME)
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

impl<C: SinkConnector> SinkHarness<C> {
    /// Validate a config on a fresh connector instance, as the REST `validate` call does.
    pub fn validate(config: &RawConfig) -> HResult<Vec<ConfigValueInfo>> {
        validate_on(new_sink_connector::<C>(), config)
    }

    /// Start the connector, ask for at most `max_tasks` task configs, start a task for each.
    pub fn start(config: RawConfig, max_tasks: usize) -> HResult<Self> {
        let host = TestHost::default();
        let (connector, task_configs) =
            start_connector(new_sink_connector::<C>(), &host, &config, max_tasks)?;
        let mut tasks = Vec::with_capacity(task_configs.len());
        for (i, tc) in task_configs.iter().enumerate() {
            host.state().sink(i);
            tasks.push(start_sink_task::<C>(&host, i, tc)?);
        }
        Ok(SinkHarness {
            connector,
            task_configs,
            tasks,
            host,
            _connector: PhantomData,
        })
    }

    /// The task configs the connector answered, as the worker received them.
    pub fn task_configs(&self) -> &[RawConfig] {
        &self.task_configs
    }

    /// How many tasks run.
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// Assign `partitions` to task `task` and tell it (`open`), as a rebalance does.
    pub fn open(&mut self, task: usize, partitions: &[TopicPartition]) -> HResult<()> {
        self.host
            .state()
            .sink(task)
            .assignment
            .extend(partitions.iter().cloned());
        let t = &mut self.tasks[task];
        call(|| t.open(partitions))
    }

    /// Deliver a batch to task `task`, lent as views and read as at the boundary: the
    /// task's `put_batch` reads the views in place (and by default hands `put` the records
    /// read back).
    pub fn put(&mut self, task: usize, records: Vec<SinkRecord>) -> HResult<()> {
        let mut views = SinkBatchBuilder::default();
        for r in &records {
            views.push_record(r);
        }
        let views = views.finish();
        // A record the worker could not lend is the harness's input error, not the task's.
        let mut cache = view::ReadCache::default();
        for v in views {
            // SAFETY: `records` and `views` are alive and unchanged while read.
            unsafe { view::read_sink_record_ref(v, &mut cache) }
                .map_err(|e| HarnessError::Invalid(e.to_string()))?;
        }
        // SAFETY: as above, for the whole call.
        let batch = unsafe { SinkBatch::from_views(views) };
        let t = &mut self.tasks[task];
        call(move || t.deliver(&batch))
    }

    /// Ask task `task` which of `offsets` may be committed.
    pub fn pre_commit(&mut self, task: usize, offsets: Offsets) -> HResult<Offsets> {
        let t = &mut self.tasks[task];
        call(move || t.pre_commit(offsets))
    }

    /// Tell task `task` that `partitions` are revoked (`close`), then take them from its
    /// assignment (and from its paused partitions).
    pub fn close(&mut self, task: usize, partitions: &[TopicPartition]) -> HResult<()> {
        let t = &mut self.tasks[task];
        let result = call(|| t.close(partitions));
        let mut state = self.host.state();
        let requests = state.sink(task);
        for tp in partitions {
            requests.assignment.remove(tp);
            requests.paused.remove(tp);
        }
        result
    }

    /// What task `task` asked of the worker through its context so far.
    pub fn requests(&self, task: usize) -> SinkTaskRequests {
        self.host.state().sink(task).clone()
    }

    /// How many times the connector asked for a task reconfiguration.
    pub fn reconfiguration_requests(&self) -> usize {
        self.host.state().reconfiguration_requests
    }

    /// The errors the connector raised through its context, in order.
    pub fn raised_errors(&self) -> Vec<String> {
        self.host.state().raised_errors.clone()
    }

    /// Make every context call fail or panic until cleared with `None`.
    pub fn set_host_fault(&self, fault: Option<HostFault>) {
        self.host.state().fault = fault;
    }

    /// Stop every task, then the connector (the worker's order). The first error wins, but
    /// everything is stopped.
    pub fn stop(mut self) -> HResult<()> {
        stop_all(&mut self.tasks, |t| t.stop(), &mut self.connector)
    }
}
