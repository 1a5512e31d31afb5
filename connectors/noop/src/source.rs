//! `NoopSource`: synthetic records, as cheap to make as possible.

use tributary_plugin_sdk::{
    Config, ConfigDef, ConnectError, ConnectorContext, OffsetMap, Plain, RawConfig, Result,
    SourceBatch, SourceConnector, SourceTask, SourceTaskContext, Value,
};

use crate::config::{self, ConnectorCalls, Faults, NoopSourceConfig};
use crate::context::Watcher;

/// Emits `noop.records.per.poll` records of `noop.record.bytes` bytes per poll.
#[derive(Debug, Default)]
pub struct NoopSource {
    originals: RawConfig,
    faults: Faults,
    context: Option<ConnectorContext>,
    watcher: Watcher,
}

impl SourceConnector for NoopSource {
    const NAME: &'static str = "io.tributary.connect.noop.NoopSourceConnector";
    type Task = NoopSourceTask;

    fn config_def() -> ConfigDef {
        config::source_config_def()
    }

    fn initialize(&mut self, context: ConnectorContext) {
        self.context = Some(context);
    }

    fn start(&mut self, config: Config) -> Result<()> {
        self.originals = config.originals().clone();
        self.faults = NoopSourceConfig::parse(&self.originals)?.faults;
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

/// One source task: a sequence number is its whole state, resumed from the committed
/// source offset of its partition (`{"task": N}` → `{"seq": next}`).
#[derive(Debug, Default)]
pub struct NoopSourceTask {
    context: Option<SourceTaskContext>,
    config: Option<NoopSourceConfig>,
    /// The next record's sequence number (the source offset).
    next: u64,
    /// The source partition of every record (this task's number).
    partition: OffsetMap,
}

impl NoopSourceTask {
    fn config(&self) -> Result<&NoopSourceConfig> {
        self.config
            .as_ref()
            .ok_or_else(|| tributary_plugin_sdk::ConnectError::new("poll before start"))
    }
}

impl SourceTask for NoopSourceTask {
    fn initialize(&mut self, context: SourceTaskContext) {
        self.context = Some(context);
    }

    fn start(&mut self, raw: RawConfig) -> Result<()> {
        let c = NoopSourceConfig::parse(&raw)?;
        c.faults.at("start")?;
        self.partition = [("task".to_owned(), Value::Int32(c.task_id))].into();
        if let Some(context) = &self.context
            && let Some(offset) = context.offset(&self.partition)?
        {
            self.next = match offset.get("seq") {
                Some(Value::Int64(next)) if *next >= 0 => *next as u64,
                _ => {
                    return Err(ConnectError::new(format!(
                        "noop: the committed offset {offset:?} of source partition task={} has no \
                         non-negative int64 \"seq\"; delete the connector's offsets to start over",
                        c.task_id
                    )));
                }
            };
        }
        self.config = Some(c);
        Ok(())
    }

    fn poll_batch(&mut self, batch: &mut SourceBatch) -> Result<()> {
        let c = self.config()?;
        c.faults.at("poll")?;
        let mut n = c.records_per_poll as u64;
        if let Some(max) = c.max_records {
            n = n.min(max.saturating_sub(self.next));
        }
        if n == 0 {
            return Ok(());
        }
        let bytes = c.record_bytes;
        // Written into the batch: nothing is allocated per record.
        for seq in self.next..self.next + n {
            // The value: the sequence number, then filler.
            batch.add(&c.topic).value_with(false, Plain::None, |out| {
                let at = out.len();
                out.resize(at + bytes, seq as u8);
                let head = bytes.min(8);
                out[at..at + head].copy_from_slice(&seq.to_le_bytes()[..head]);
            });
        }
        self.next += n;
        let mut offset = OffsetMap::new();
        offset.insert("seq".to_owned(), Value::Int64(self.next as i64));
        batch.set_offset(&self.partition, offset);
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        match &self.config {
            Some(c) => c.faults.at("stop"),
            None => Ok(()),
        }
    }
}
