//! `NoopSink`: counts records and answers how far it got.

use tributary_plugin_sdk::{
    Config, ConfigDef, Offsets, RawConfig, Result, SinkConnector, SinkRecord, SinkTask, Value,
};

use crate::config::{self, Faults, NoopSinkConfig};

/// Counts the records it is given; writes nothing.
#[derive(Debug, Default)]
pub struct NoopSink {
    originals: RawConfig,
    faults: Faults,
}

impl SinkConnector for NoopSink {
    const NAME: &'static str = "io.tributary.connect.noop.NoopSinkConnector";
    type Task = NoopSinkTask;

    fn config_def() -> ConfigDef {
        config::sink_config_def()
    }

    fn start(&mut self, config: Config) -> Result<()> {
        self.originals = config.originals().clone();
        self.faults = NoopSinkConfig::parse(&self.originals)?.faults;
        self.faults.at("connector.start")
    }

    fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<RawConfig>> {
        Ok(config::task_configs(&self.originals, max_tasks))
    }

    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

/// One sink task: counters and the position per partition.
#[derive(Debug, Default)]
pub struct NoopSinkTask {
    faults: Faults,
    /// Records and value bytes counted.
    pub records: u64,
    pub bytes: u64,
    /// The offset after the last record counted, per partition.
    seen: Offsets,
}

impl SinkTask for NoopSinkTask {
    fn start(&mut self, raw: RawConfig) -> Result<()> {
        self.faults = NoopSinkConfig::parse(&raw)?.faults;
        self.faults.at("start")
    }

    fn put(&mut self, records: Vec<SinkRecord>) -> Result<()> {
        self.faults.at("put")?;
        for r in &records {
            self.records += 1;
            if let Value::Bytes(b) = &r.value.value {
                self.bytes += b.len() as u64;
            }
            let next = self.seen.entry(r.topic_partition()).or_insert(0);
            *next = (*next).max(r.offset + 1);
        }
        Ok(())
    }

    /// The offsets after what was counted, capped by what the worker offers.
    fn pre_commit(&mut self, offsets: Offsets) -> Result<Offsets> {
        self.faults.at("pre_commit")?;
        Ok(offsets
            .into_iter()
            .filter_map(|(tp, offered)| self.seen.get(&tp).map(|seen| (tp, offered.min(*seen))))
            .collect())
    }

    fn stop(&mut self) -> Result<()> {
        self.faults.at("stop")
    }
}
