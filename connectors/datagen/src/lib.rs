//! `DataGen` (also `io.confluent.kafka.connect.datagen.DatagenConnector`): synthetic
//! records for demos, tests and benchmarks.
//!
//! This first increment has one generator, `bytes`: string values of exactly
//! `datagen.record.bytes` printable bytes, a zero-padded sequence number followed by
//! filler drawn from a seeded generator (`random.seed`), so the output is reproducible
//! and can be checked by count and hash. `iterations` bounds the records per task
//! (-1: unbounded); `max.interval` is the most milliseconds between polls (0: as fast as
//! the worker takes them); `datagen.records.per.poll` sizes each batch. Each task has its
//! own sequence (`task` is its source partition, `seq` its offset), so a restart resumes
//! after the last committed record.

use tributary_plugin_sdk::{
    Config, ConfigDef, ConfigKey, ConnectError, Data, Importance, OffsetMap, RawConfig, Result,
    Schema, SourceConnector, SourceRecord, SourceTask, SourceTaskContext, Validator, Value,
};

const TOPIC: &str = "kafka.topic";
const ITERATIONS: &str = "iterations";
const MAX_INTERVAL: &str = "max.interval";
const RECORD_BYTES: &str = "datagen.record.bytes";
const PER_POLL: &str = "datagen.records.per.poll";
const SEED: &str = "random.seed";
const TASK_ID: &str = "datagen.task.id";

fn config_def() -> ConfigDef {
    ConfigDef::new()
        .define(
            ConfigKey::string(TOPIC)
                .importance(Importance::High)
                .validator(Validator::non_empty())
                .doc("Topic to write to"),
        )
        .define(
            ConfigKey::long(ITERATIONS)
                .default("-1")
                .doc("Records to generate per task; -1 for no end"),
        )
        .define(
            ConfigKey::long(MAX_INTERVAL)
                .default("500")
                .validator(Validator::at_least(0))
                .doc("Most milliseconds between polls (0: no wait)"),
        )
        .define(
            ConfigKey::int(RECORD_BYTES)
                .default("100")
                .validator(Validator::between(16, 1 << 20))
                .doc("Bytes in each value (the `bytes` generator)"),
        )
        .define(
            ConfigKey::int(PER_POLL)
                .default("1000")
                .validator(Validator::at_least(1))
                .doc("Records per poll"),
        )
        .define(
            ConfigKey::long(SEED)
                .default("42")
                .doc("Seed of the filler, for reproducible output"),
        )
        .define(
            ConfigKey::int(TASK_ID)
                .default("0")
                .doc("Set by the connector"),
        )
}

/// The connector: `tasks.max` tasks, each with its own sequence.
#[derive(Debug, Default)]
pub struct DataGen {
    originals: RawConfig,
}

impl SourceConnector for DataGen {
    const NAME: &'static str = "io.tributary.connect.datagen.DataGenConnector";
    const ALIASES: &'static [&'static str] = &[
        "io.confluent.kafka.connect.datagen.DatagenConnector",
        "DataGen",
        "datagen",
    ];
    type Task = DataGenTask;

    fn config_def() -> ConfigDef {
        config_def()
    }

    fn start(&mut self, config: Config) -> Result<()> {
        self.originals = config.originals().clone();
        Ok(())
    }

    fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<RawConfig>> {
        Ok((0..max_tasks)
            .map(|i| {
                let mut c = self.originals.clone();
                c.insert(TASK_ID.to_owned(), i.to_string());
                c
            })
            .collect())
    }

    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

/// One sequence of generated records.
#[derive(Debug, Default)]
pub struct DataGenTask {
    context: Option<SourceTaskContext>,
    topic: String,
    iterations: i64,
    interval: std::time::Duration,
    record_bytes: usize,
    per_poll: usize,
    seed: u64,
    next: i64,
    partition: OffsetMap,
    last_poll: Option<std::time::Instant>,
}

/// The value of record `seq`: exactly `len` printable bytes.
pub fn value_of(seed: u64, seq: i64, len: usize) -> String {
    let mut s = format!("{seq:012} ");
    let mut x = seed ^ (seq as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d;
    while s.len() < len {
        // xorshift64*: cheap and reproducible.
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        for b in r.to_le_bytes() {
            if s.len() == len {
                break;
            }
            s.push(char::from(b'a' + b % 26));
        }
    }
    s.truncate(len);
    s
}

impl SourceTask for DataGenTask {
    fn initialize(&mut self, context: SourceTaskContext) {
        self.context = Some(context);
    }

    fn start(&mut self, raw: RawConfig) -> Result<()> {
        let c = config_def().parse(&raw)?;
        self.topic = c.string(TOPIC).unwrap_or_default().to_owned();
        self.iterations = c.long(ITERATIONS).unwrap_or(-1);
        self.interval =
            std::time::Duration::from_millis(c.long(MAX_INTERVAL).unwrap_or(500).max(0) as u64);
        self.record_bytes = c.int(RECORD_BYTES).unwrap_or(100) as usize;
        self.per_poll = c.int(PER_POLL).unwrap_or(1000) as usize;
        self.seed = c.long(SEED).unwrap_or(42) as u64;
        let task = c.int(TASK_ID).unwrap_or(0);
        self.partition = [("task".to_owned(), Value::Int32(task))].into();
        if let Some(ctx) = &self.context
            && let Some(offset) = ctx.offset(&self.partition)?
        {
            self.next = match offset.get("seq") {
                Some(Value::Int64(n)) => *n + 1,
                Some(Value::Int32(n)) => i64::from(*n) + 1,
                other => {
                    return Err(ConnectError::new(format!(
                        "stored offset {other:?} is not a sequence number; reset the connector's offsets"
                    )));
                }
            };
        }
        Ok(())
    }

    fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        if let Some(last) = self.last_poll {
            let since = last.elapsed();
            if since < self.interval {
                std::thread::sleep(self.interval - since);
            }
        }
        self.last_poll = Some(std::time::Instant::now());
        let mut n = self.per_poll as i64;
        if self.iterations >= 0 {
            n = n.min(self.iterations - self.next);
        }
        if n <= 0 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(n as usize);
        for seq in self.next..self.next + n {
            let mut r = SourceRecord::new(
                self.topic.clone(),
                Data {
                    schema: Some(Schema::string()),
                    value: Value::String(value_of(self.seed, seq, self.record_bytes)),
                },
            );
            r.source_partition = self.partition.clone();
            r.source_offset = [("seq".to_owned(), Value::Int64(seq))].into();
            out.push(r);
        }
        self.next += n;
        Ok(out)
    }

    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

tributary_plugin_sdk::export_plugin! {
    sources: [DataGen]
}

#[cfg(test)]
mod tests {
    use tributary_plugin_sdk::testing::{SourceHarness, config};

    use super::*;

    #[test]
    fn deterministic_bounded_and_resumable() {
        let cfg = config(&[
            ("kafka.topic", "t"),
            ("iterations", "25"),
            ("max.interval", "0"),
            ("datagen.records.per.poll", "10"),
            ("datagen.record.bytes", "40"),
        ]);
        let mut h = SourceHarness::<DataGen>::start(cfg.clone(), 2).unwrap();
        assert_eq!(h.task_count(), 2);
        let first = h.poll(0).unwrap();
        assert_eq!(first.len(), 10);
        let v = |r: &SourceRecord| match &r.value.value {
            Value::String(s) => s.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(v(&first[3]).len(), 40);
        assert!(v(&first[3]).starts_with("000000000003 "));
        assert_eq!(v(&first[3]), value_of(42, 3, 40));
        assert_ne!(value_of(42, 3, 40), value_of(7, 3, 40));
        h.commit(0).unwrap();
        let partition: OffsetMap = [("task".to_owned(), Value::Int32(0))].into();
        let committed = h.committed_offset(&partition).unwrap();
        h.stop().unwrap();
        let mut h =
            SourceHarness::<DataGen>::start_with_offsets(cfg, 1, [(partition, committed)]).unwrap();
        let rest = h.poll_records(0, 15, 5).unwrap();
        assert_eq!(rest.len(), 15);
        assert!(v(&rest[0]).starts_with("000000000010 "));
        assert!(
            h.poll(0).unwrap().is_empty(),
            "iterations bound the sequence"
        );
        h.stop().unwrap();
    }
}
