//! `NoopSink`: counts records and answers how far it got.

use tributary_plugin_sdk::{
    Config, ConfigDef, ConnectError, ConnectorContext, DataRef, Offsets, RawConfig, Result,
    SinkBatch, SinkConnector, SinkRecord, SinkTask, SinkTaskContext, TopicPartition, Value,
};

use crate::config::{self, ConnectorCalls, Faults, NoopSinkConfig};
use crate::context::Watcher;

/// Counts the records it is given; writes nothing.
#[derive(Debug, Default)]
pub struct NoopSink {
    originals: RawConfig,
    faults: Faults,
    context: Option<ConnectorContext>,
    watcher: Watcher,
}

impl SinkConnector for NoopSink {
    const NAME: &'static str = "io.tributary.connect.noop.NoopSinkConnector";
    type Task = NoopSinkTask;

    fn config_def() -> ConfigDef {
        config::sink_config_def()
    }

    fn initialize(&mut self, context: ConnectorContext) {
        self.context = Some(context);
    }

    fn start(&mut self, config: Config) -> Result<()> {
        self.originals = config.originals().clone();
        self.faults = NoopSinkConfig::parse(&self.originals)?.faults;
        self.faults.at("connector.start")?;
        self.watcher = Watcher::start(self.context.as_ref(), &ConnectorCalls::parse(&config))?;
        Ok(())
    }

    fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<RawConfig>> {
        Ok(config::task_configs(&self.originals, max_tasks))
    }

    fn stop(&mut self) -> Result<()> {
        self.watcher.stop()
    }
}

/// The length of a bytes value (whatever its schema), 0 for anything else.
fn bytes_len(value: &DataRef<'_>) -> u64 {
    match value {
        DataRef::Bytes(b, _) => b.len() as u64,
        other => match other.as_data().map(|d| &d.value) {
            Some(Value::Bytes(b)) => b.len() as u64,
            _ => 0,
        },
    }
}

/// One sink task: counters and the position per partition. With
/// `noop.pause.after.records` it pauses its partitions when that many records arrived since
/// the last pre-commit (back-pressure, as a buffering sink does) and requests a commit; with
/// `noop.start.offset` it rewinds (or skips) each partition it is given.
#[derive(Debug, Default)]
pub struct NoopSinkTask {
    context: Option<SinkTaskContext>,
    config: NoopSinkConfig,
    /// Records and value bytes counted.
    pub records: u64,
    pub bytes: u64,
    /// Records counted since the last pre-commit.
    since_commit: u64,
    /// The partitions this task paused and will resume at the next pre-commit.
    paused: Vec<TopicPartition>,
    /// The offset after the last record counted, per partition.
    seen: Offsets,
}

impl NoopSinkTask {
    /// Records of `topic`/`partition` up to `next` (exclusive) were counted.
    fn note_position(&mut self, topic: &str, partition: i32, next: i64) {
        let seen = self
            .seen
            .entry(TopicPartition::new(topic, partition))
            .or_insert(0);
        *seen = (*seen).max(next);
    }

    fn context(&self) -> Result<&SinkTaskContext> {
        self.context.as_ref().ok_or_else(|| {
            ConnectError::new(
                "noop: the worker gave the task no context (initialize was not called)",
            )
        })
    }
}

impl SinkTask for NoopSinkTask {
    fn initialize(&mut self, context: SinkTaskContext) {
        self.context = Some(context);
    }

    fn start(&mut self, raw: RawConfig) -> Result<()> {
        self.config = NoopSinkConfig::parse(&raw)?;
        self.config.faults.at("start")
    }

    fn open(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        if let Some(offset) = self.config.start_offset {
            let offsets: Offsets = partitions.iter().map(|tp| (tp.clone(), offset)).collect();
            self.context()?.offsets(&offsets)?;
        }
        Ok(())
    }

    fn put(&mut self, records: Vec<SinkRecord>) -> Result<()> {
        self.put_batch(&SinkBatch::of(&records))
    }

    /// Reads each record in place: counting needs no owned copy.
    fn put_batch(&mut self, batch: &SinkBatch<'_>) -> Result<()> {
        self.config.faults.at("put")?;
        // The position per partition, noted once per run of records of one partition (a
        // batch usually is one or a few such runs), not once per record.
        let mut run: Option<(&str, i32, i64)> = None;
        for r in batch {
            let r = r?;
            self.records += 1;
            self.bytes += bytes_len(&r.value);
            match &mut run {
                Some((topic, partition, next))
                    if *topic == r.topic && *partition == r.partition =>
                {
                    *next = (*next).max(r.offset + 1);
                }
                _ => {
                    if let Some((topic, partition, next)) = run {
                        self.note_position(topic, partition, next);
                    }
                    run = Some((r.topic, r.partition, r.offset + 1));
                }
            }
        }
        if let Some((topic, partition, next)) = run {
            self.note_position(topic, partition, next);
        }
        self.since_commit += batch.len() as u64;
        if let Some(limit) = self.config.pause_after_records
            && self.paused.is_empty()
            && self.since_commit >= limit
        {
            let context = self.context()?;
            let assigned = context.assignment()?;
            context.pause(&assigned)?;
            context.request_commit()?;
            self.paused = assigned;
        }
        Ok(())
    }

    /// The offsets after what was counted, capped by what the worker offers; resumes what
    /// was paused.
    fn pre_commit(&mut self, offsets: Offsets) -> Result<Offsets> {
        self.config.faults.at("pre_commit")?;
        if !self.paused.is_empty() {
            self.context()?.resume(&self.paused)?;
            self.paused.clear();
        }
        self.since_commit = 0;
        Ok(offsets
            .into_iter()
            .filter_map(|(tp, offered)| self.seen.get(&tp).map(|seen| (tp, offered.min(*seen))))
            .collect())
    }

    /// Forget revoked partitions (they can no longer be resumed).
    fn close(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.paused.retain(|tp| !partitions.contains(tp));
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        self.config.faults.at("stop")
    }
}
