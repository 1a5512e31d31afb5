//! Drive a connector and its tasks in-process, without a worker, and inspect the records.
//!
//! The harness goes through the same glue as the exported library: configs are parsed by
//! the connector's `ConfigDef` before `start`, every batch is encoded and decoded as it
//! would be at the boundary (so a record that cannot cross fails here too), keys and values
//! are checked against their schemas, and a panic becomes [`HarnessError::Panicked`] as it
//! would become a failed task in the worker.
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

use std::fmt;
use std::marker::PhantomData;

use tributary_plugin_abi::ffi::Status;
use tributary_plugin_abi::record::{
    self, Offsets, RecordMetadata, SinkRecord, SourceRecord, TopicPartition,
};

use crate::config::{ConfigValueInfo, RawConfig};
use crate::connector::{SinkConnector, SourceConnector};
use crate::export::{
    CallError, ErasedConnector, ErasedSinkTask, ErasedSourceTask, catch, install_panic_hook,
    new_sink_connector, new_sink_task, new_source_connector, new_source_task,
};

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
    raw: &RawConfig,
    max_tasks: usize,
) -> HResult<(Box<dyn ErasedConnector>, Vec<RawConfig>)> {
    call(|| c.start(raw))?;
    let configs = call(|| c.task_configs(max_tasks))?;
    // What the worker receives went through the encoding.
    let mut buf = Vec::new();
    tributary_plugin_abi::wire::encode_string_maps(&configs, &mut buf);
    let configs = tributary_plugin_abi::wire::decode_string_maps(&buf)
        .map_err(|e| HarnessError::Invalid(e.to_string()))?;
    Ok((c, configs))
}

/// A source connector started with its tasks.
pub struct SourceHarness<C: SourceConnector> {
    connector: Box<dyn ErasedConnector>,
    task_configs: Vec<RawConfig>,
    tasks: Vec<Box<dyn ErasedSourceTask>>,
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
    pub fn start(config: RawConfig, max_tasks: usize) -> HResult<Self> {
        let (connector, task_configs) =
            start_connector(new_source_connector::<C>(), &config, max_tasks)?;
        let mut tasks = Vec::with_capacity(task_configs.len());
        for tc in &task_configs {
            let mut t = new_source_task::<C>();
            call(|| t.start(tc.clone()))?;
            tasks.push(t);
        }
        Ok(SourceHarness {
            connector,
            task_configs,
            tasks,
            _connector: PhantomData,
        })
    }

    pub fn task_configs(&self) -> &[RawConfig] {
        &self.task_configs
    }

    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// One poll of task `task`, as the worker would receive it.
    pub fn poll(&mut self, task: usize) -> HResult<Vec<SourceRecord>> {
        let t = &mut self.tasks[task];
        let records = call(|| t.poll())?;
        let mut buf = Vec::new();
        record::encode_source_batch(&records, &mut buf);
        let records =
            record::decode_source_batch(&buf).map_err(|e| HarnessError::Invalid(e.to_string()))?;
        for (i, r) in records.iter().enumerate() {
            for (what, d) in [("key", &r.key), ("value", &r.value)] {
                d.validate().map_err(|e| {
                    HarnessError::Invalid(format!("record {i} of the batch: {what}: {e}"))
                })?;
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

    /// Tell task `task` its offsets were stored.
    pub fn commit(&mut self, task: usize) -> HResult<()> {
        let t = &mut self.tasks[task];
        call(|| t.commit())
    }

    /// Tell task `task` where its records were written.
    pub fn commit_records(
        &mut self,
        task: usize,
        records: &[(SourceRecord, Option<RecordMetadata>)],
    ) -> HResult<()> {
        let t = &mut self.tasks[task];
        call(|| t.commit_records(records))
    }

    /// Stop every task, then the connector (the worker's order). The first error wins, but
    /// everything is stopped.
    pub fn stop(mut self) -> HResult<()> {
        let mut first = Ok(());
        for t in &mut self.tasks {
            let r = call(|| t.stop());
            if first.is_ok() {
                first = r;
            }
        }
        let c = &mut self.connector;
        let r = call(|| c.stop());
        first.and(r)
    }
}

/// A sink connector started with its tasks.
pub struct SinkHarness<C: SinkConnector> {
    connector: Box<dyn ErasedConnector>,
    task_configs: Vec<RawConfig>,
    tasks: Vec<Box<dyn ErasedSinkTask>>,
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
    pub fn validate(config: &RawConfig) -> HResult<Vec<ConfigValueInfo>> {
        validate_on(new_sink_connector::<C>(), config)
    }

    /// Start the connector, ask for at most `max_tasks` task configs, start a task for each.
    pub fn start(config: RawConfig, max_tasks: usize) -> HResult<Self> {
        let (connector, task_configs) =
            start_connector(new_sink_connector::<C>(), &config, max_tasks)?;
        let mut tasks = Vec::with_capacity(task_configs.len());
        for tc in &task_configs {
            let mut t = new_sink_task::<C>();
            call(|| t.start(tc.clone()))?;
            tasks.push(t);
        }
        Ok(SinkHarness {
            connector,
            task_configs,
            tasks,
            _connector: PhantomData,
        })
    }

    pub fn task_configs(&self) -> &[RawConfig] {
        &self.task_configs
    }

    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    pub fn open(&mut self, task: usize, partitions: &[TopicPartition]) -> HResult<()> {
        let t = &mut self.tasks[task];
        call(|| t.open(partitions))
    }

    /// Deliver a batch to task `task`, encoded and decoded as at the boundary.
    pub fn put(&mut self, task: usize, records: Vec<SinkRecord>) -> HResult<()> {
        let mut buf = Vec::new();
        record::encode_sink_batch(&records, &mut buf);
        let records =
            record::decode_sink_batch(&buf).map_err(|e| HarnessError::Invalid(e.to_string()))?;
        let t = &mut self.tasks[task];
        call(move || t.put(records))
    }

    /// Ask task `task` which of `offsets` may be committed.
    pub fn pre_commit(&mut self, task: usize, offsets: Offsets) -> HResult<Offsets> {
        let t = &mut self.tasks[task];
        call(move || t.pre_commit(offsets))
    }

    pub fn close(&mut self, task: usize, partitions: &[TopicPartition]) -> HResult<()> {
        let t = &mut self.tasks[task];
        call(|| t.close(partitions))
    }

    /// Stop every task, then the connector.
    pub fn stop(mut self) -> HResult<()> {
        let mut first = Ok(());
        for t in &mut self.tasks {
            let r = call(|| t.stop());
            if first.is_ok() {
                first = r;
            }
        }
        let c = &mut self.connector;
        let r = call(|| c.stop());
        first.and(r)
    }
}
