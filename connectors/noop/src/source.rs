//! `NoopSource`: synthetic records, as cheap to make as possible.

use tributary_plugin_sdk::{
    Config, ConfigDef, Data, OffsetMap, RawConfig, Result, SourceConnector, SourceRecord,
    SourceTask, Value,
};

use crate::config::{self, Faults, NoopSourceConfig};

/// Emits `noop.records.per.poll` records of `noop.record.bytes` bytes per poll.
#[derive(Debug, Default)]
pub struct NoopSource {
    originals: RawConfig,
    faults: Faults,
}

impl SourceConnector for NoopSource {
    const NAME: &'static str = "io.tributary.connect.noop.NoopSourceConnector";
    type Task = NoopSourceTask;

    fn config_def() -> ConfigDef {
        config::source_config_def()
    }

    fn start(&mut self, config: Config) -> Result<()> {
        self.originals = config.originals().clone();
        self.faults = NoopSourceConfig::parse(&self.originals)?.faults;
        self.faults.at("connector.start")
    }

    fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<RawConfig>> {
        Ok(config::task_configs(&self.originals, max_tasks))
    }

    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

/// One source task: a sequence number is its whole state.
#[derive(Debug, Default)]
pub struct NoopSourceTask {
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
    fn start(&mut self, raw: RawConfig) -> Result<()> {
        let c = NoopSourceConfig::parse(&raw)?;
        c.faults.at("start")?;
        self.partition = [("task".to_owned(), Value::Int32(c.task_id))].into();
        self.config = Some(c);
        Ok(())
    }

    fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        let c = self.config()?;
        c.faults.at("poll")?;
        let mut n = c.records_per_poll as u64;
        if let Some(max) = c.max_records {
            n = n.min(max.saturating_sub(self.next));
        }
        let (topic, bytes) = (c.topic.clone(), c.record_bytes);
        let mut out = Vec::with_capacity(n as usize);
        for seq in self.next..self.next + n {
            // The value: the sequence number, then filler.
            let mut value = vec![seq as u8; bytes];
            value[..8].copy_from_slice(&seq.to_le_bytes());
            out.push(
                SourceRecord::new(topic.clone(), Data::bytes(value)).with_source(
                    self.partition.clone(),
                    [("seq".to_owned(), Value::Int64(seq as i64 + 1))].into(),
                ),
            );
        }
        self.next += n;
        Ok(out)
    }

    fn stop(&mut self) -> Result<()> {
        match &self.config {
            Some(c) => c.faults.at("stop"),
            None => Ok(()),
        }
    }
}
