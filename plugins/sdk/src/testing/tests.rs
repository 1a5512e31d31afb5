//! The contexts through the harness: a small file-like source that resumes from its
//! committed positions, a connector that talks to the worker from its own thread, and a sink
//! task that uses every sink context call.

use std::thread;

use super::*;
use crate::{
    Config, ConfigDef, ConfigKey, ConnectError, ConnectorContext, Data, DataRef, Result, SinkBatch,
    SinkConnector, SinkTask, SinkTaskContext, SourceConnector, SourceTask, SourceTaskContext,
    Value,
};

fn file(name: &str) -> OffsetMap {
    OffsetMap::from([("filename".to_owned(), Value::from(name))])
}

fn position(p: i64) -> OffsetMap {
    OffsetMap::from([("position".to_owned(), Value::Int64(p))])
}

/// Reads "lines" of the files named in `files`: each poll emits the next position of each.
#[derive(Default)]
struct Lines {
    context: Option<ConnectorContext>,
    config: RawConfig,
}

impl SourceConnector for Lines {
    const NAME: &'static str = "test.LinesSourceConnector";
    type Task = LinesTask;

    fn config_def() -> ConfigDef {
        ConfigDef::new()
            .define(ConfigKey::string("files").doc("comma-separated file names"))
            .define(
                ConfigKey::string("raise")
                    .default("")
                    .doc("an error to raise"),
            )
    }

    fn initialize(&mut self, context: ConnectorContext) {
        self.context = Some(context);
    }

    fn start(&mut self, config: Config) -> Result<()> {
        self.config = config.originals().clone();
        let context = self
            .context
            .clone()
            .ok_or_else(|| ConnectError::new("started without a context"))?;
        let raise = config.string("raise").unwrap_or("").to_owned();
        // From a thread of the connector's own, as a directory watcher would.
        thread::spawn(move || -> Result<()> {
            context.request_task_reconfiguration()?;
            if !raise.is_empty() {
                context.raise_error(&raise)?;
            }
            Ok(())
        })
        .join()
        .map_err(|_| ConnectError::new("the watcher thread panicked"))?
    }

    fn task_configs(&mut self, _max_tasks: usize) -> Result<Vec<RawConfig>> {
        Ok(vec![self.config.clone()])
    }

    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

#[derive(Default)]
struct LinesTask {
    context: Option<SourceTaskContext>,
    /// Each file with the position of its last line read.
    files: Vec<(String, i64)>,
}

impl SourceTask for LinesTask {
    fn initialize(&mut self, context: SourceTaskContext) {
        self.context = Some(context);
    }

    fn start(&mut self, config: RawConfig) -> Result<()> {
        let context = self
            .context
            .as_ref()
            .ok_or_else(|| ConnectError::new("started without a context"))?;
        let names: Vec<&str> = config["files"].split(',').collect();
        let partitions: Vec<OffsetMap> = names.iter().map(|n| file(n)).collect();
        for (partition, offset) in context.offsets(&partitions)? {
            let at = match offset.as_ref().and_then(|o| o.get("position")) {
                None => 0,
                Some(Value::Int64(p)) => *p,
                Some(other) => {
                    return Err(ConnectError::new(format!(
                        "stored position {other:?} for {partition:?} is not an int64"
                    )));
                }
            };
            let Some(Value::String(name)) = partition.get("filename") else {
                return Err(ConnectError::new("the worker changed the partition"));
            };
            self.files.push((name.clone(), at));
        }
        // The single lookup agrees with the batch.
        let first = context.offset(&partitions[0])?;
        let expected = self.files[0].1;
        if first.is_some() != (expected > 0) {
            return Err(ConnectError::new("offset and offsets disagree"));
        }
        Ok(())
    }

    fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        Ok(self
            .files
            .iter_mut()
            .map(|(name, at)| {
                *at += 1;
                SourceRecord::new("lines", Data::string(format!("{name}:{at}")))
                    .with_source(file(name), position(*at))
            })
            .collect())
    }

    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

#[test]
fn a_source_task_resumes_from_committed_offsets() {
    let mut h = SourceHarness::<Lines>::start_with_offsets(
        config(&[("files", "a,b")]),
        1,
        [(file("a"), position(5))],
    )
    .unwrap();
    let values = |records: Vec<SourceRecord>| -> Vec<String> {
        records
            .into_iter()
            .map(|r| match r.value.value {
                Value::String(s) => s,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(values(h.poll(0).unwrap()), ["a:6", "b:1"]);
    assert_eq!(values(h.poll(0).unwrap()), ["a:7", "b:2"]);
    // Nothing is stored before a commit.
    assert_eq!(h.committed_offset(&file("b")), None);
    h.commit(0).unwrap();
    assert_eq!(h.committed_offset(&file("a")), Some(position(7)));
    assert_eq!(h.committed_offset(&file("b")), Some(position(2)));

    // Polled but not committed: delivered again after a restart.
    assert_eq!(values(h.poll(0).unwrap()), ["a:8", "b:3"]);
    h.restart_task(0).unwrap();
    assert_eq!(values(h.poll(0).unwrap()), ["a:8", "b:3"]);
    h.stop().unwrap();
}

#[test]
fn connector_requests_are_recorded_and_reconfigure_restarts_tasks() {
    let mut h = SourceHarness::<Lines>::start(
        config(&[("files", "a"), ("raise", "the directory vanished")]),
        1,
    )
    .unwrap();
    assert_eq!(h.reconfiguration_requests(), 1);
    assert_eq!(h.raised_errors(), ["the directory vanished"]);
    h.poll(0).unwrap();
    h.commit(0).unwrap();
    h.reconfigure().unwrap();
    assert_eq!(h.task_count(), 1);
    let r = h.poll(0).unwrap();
    assert_eq!(r[0].source_offset, position(2), "the new task resumed");
    h.stop().unwrap();
}

#[test]
fn a_failing_or_panicking_worker_is_an_error_for_the_plugin() {
    let mut h = SourceHarness::<Lines>::start(config(&[("files", "a")]), 1).unwrap();

    h.set_host_fault(Some(HostFault::Retriable(
        "offsets topic unavailable".into(),
    )));
    let err = h.restart_task(0).unwrap_err();
    let HarnessError::Failed { retriable, message } = &err else {
        panic!("{err:?}")
    };
    assert!(*retriable, "{err}");
    assert!(
        message.contains("read the committed source offsets")
            && message.contains("offsets topic unavailable"),
        "{message}"
    );

    h.set_host_fault(Some(HostFault::Panic("worker bug".into())));
    let err = h.restart_task(0).unwrap_err();
    let HarnessError::Failed { retriable, message } = &err else {
        panic!("a panic on the worker's side must not be the plugin's panic: {err:?}")
    };
    assert!(!retriable, "{err}");
    assert!(
        message.contains("callback panicked") && message.contains("worker bug"),
        "{message}"
    );

    h.set_host_fault(Some(HostFault::Fail("not today".into())));
    let err = h.restart_task(0).unwrap_err();
    assert!(
        matches!(&err, HarnessError::Failed { retriable: false, message } if message.ends_with("not today")),
        "{err:?}"
    );
    h.set_host_fault(None);
    h.restart_task(0).unwrap();
    assert_eq!(h.poll(0).unwrap().len(), 1);
}

/// Buffers records; pauses its partitions when the buffer is full and asks for a commit;
/// the commit (pre_commit) empties it and resumes them. Rewinds to `start.offset` on open.
#[derive(Default)]
struct Buffered;

impl SinkConnector for Buffered {
    const NAME: &'static str = "test.BufferedSinkConnector";
    type Task = BufferedTask;

    fn config_def() -> ConfigDef {
        ConfigDef::new()
    }

    fn start(&mut self, _config: Config) -> Result<()> {
        Ok(())
    }

    fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<RawConfig>> {
        Ok(vec![RawConfig::new(); max_tasks])
    }

    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

#[derive(Default)]
struct BufferedTask {
    context: Option<SinkTaskContext>,
    buffered: usize,
}

impl BufferedTask {
    fn context(&self) -> Result<&SinkTaskContext> {
        self.context
            .as_ref()
            .ok_or_else(|| ConnectError::new("no context"))
    }
}

impl SinkTask for BufferedTask {
    fn initialize(&mut self, context: SinkTaskContext) {
        self.context = Some(context);
    }

    fn start(&mut self, _config: RawConfig) -> Result<()> {
        Ok(())
    }

    fn open(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        for tp in partitions {
            self.context()?.offset(tp.clone(), 100)?;
        }
        Ok(())
    }

    fn put(&mut self, records: Vec<SinkRecord>) -> Result<()> {
        self.buffered += records.len();
        if self.buffered >= 2 {
            let c = self.context()?;
            c.pause(&c.assignment()?)?;
            c.request_commit()?;
        }
        Ok(())
    }

    fn pre_commit(&mut self, offsets: Offsets) -> Result<Offsets> {
        self.buffered = 0;
        let c = self.context()?;
        c.resume(&c.assignment()?)?;
        Ok(offsets)
    }

    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

#[test]
fn a_sink_task_pauses_rewinds_and_asks_for_commits() {
    let mut h = SinkHarness::<Buffered>::start(config(&[]), 2).unwrap();
    let (t0, t1) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
    h.open(0, &[t0.clone(), t1.clone()]).unwrap();
    let r = h.requests(0);
    assert_eq!(r.assignment, [t0.clone(), t1.clone()].into());
    assert_eq!(
        r.offsets,
        Offsets::from([(t0.clone(), 100), (t1.clone(), 100)])
    );
    assert_eq!(
        h.requests(1),
        SinkTaskRequests::default(),
        "tasks are apart"
    );

    let record = |o| SinkRecord::new("t", 0, o, Data::bytes(vec![1]));
    h.put(0, vec![record(100)]).unwrap();
    assert!(h.requests(0).paused.is_empty());
    h.put(0, vec![record(101)]).unwrap();
    let r = h.requests(0);
    assert_eq!(r.paused, [t0.clone(), t1.clone()].into());
    assert_eq!(r.commit_requests, 1);

    h.pre_commit(0, Offsets::from([(t0.clone(), 102)])).unwrap();
    assert!(h.requests(0).paused.is_empty());

    // Revoked partitions leave the assignment; pausing one is then an error, as in Kafka.
    h.close(0, std::slice::from_ref(&t1)).unwrap();
    h.put(0, vec![record(102), record(103)]).unwrap();
    assert_eq!(h.requests(0).paused, [t0.clone()].into());
    let err = h
        .open(1, &[])
        .and_then(|()| h.put(1, vec![record(0), record(1)]));
    assert!(err.is_ok(), "an empty assignment pauses nothing: {err:?}");
    h.stop().unwrap();
}

#[test]
fn pausing_an_unassigned_partition_is_refused() {
    #[derive(Default)]
    struct Rogue;
    impl SinkConnector for Rogue {
        const NAME: &'static str = "test.RogueSinkConnector";
        type Task = RogueTask;
        fn config_def() -> ConfigDef {
            ConfigDef::new()
        }
        fn start(&mut self, _config: Config) -> Result<()> {
            Ok(())
        }
        fn task_configs(&mut self, _max_tasks: usize) -> Result<Vec<RawConfig>> {
            Ok(vec![RawConfig::new()])
        }
        fn stop(&mut self) -> Result<()> {
            Ok(())
        }
    }
    #[derive(Default)]
    struct RogueTask(Option<SinkTaskContext>);
    impl SinkTask for RogueTask {
        fn initialize(&mut self, context: SinkTaskContext) {
            self.0 = Some(context);
        }
        fn start(&mut self, _config: RawConfig) -> Result<()> {
            Ok(())
        }
        fn put(&mut self, _records: Vec<SinkRecord>) -> Result<()> {
            let c = self
                .0
                .as_ref()
                .ok_or_else(|| ConnectError::new("no context"))?;
            c.pause(&[TopicPartition::new("elsewhere", 3)])
        }
        fn stop(&mut self) -> Result<()> {
            Ok(())
        }
    }

    let mut h = SinkHarness::<Rogue>::start(config(&[]), 1).unwrap();
    let err = h.put(0, Vec::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot pause elsewhere-3: it is not assigned to this task"),
        "{err}"
    );
}

#[test]
fn contexts_outlive_nothing_they_should_not() {
    // A context clone kept by a plugin thread keeps working while the harness lives, and
    // the reference is given back when the last clone goes.
    let host = TestHost::default();
    let context = host.sink_task_context(0);
    let clone = context.clone();
    host.state()
        .sink(0)
        .assignment
        .insert(TopicPartition::new("t", 0));
    let assigned = thread::spawn(move || clone.assignment())
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(assigned, [TopicPartition::new("t", 0)]);
    // The host's state is shared by the harness and one live context.
    assert_eq!(std::sync::Arc::strong_count(&host.0), 2);
    drop(context);
    assert_eq!(std::sync::Arc::strong_count(&host.0), 1, "released");
}

/// A sink that reads its batches in place and reports the records it cannot write (values
/// that are not text), by where they were consumed; `put` takes the same path.
#[test]
fn a_sink_reading_in_place_reports_errant_records() {
    #[derive(Default)]
    struct Picky;
    impl SinkConnector for Picky {
        const NAME: &'static str = "test.PickySinkConnector";
        type Task = PickyTask;
        fn config_def() -> ConfigDef {
            ConfigDef::new()
        }
        fn start(&mut self, _config: Config) -> Result<()> {
            Ok(())
        }
        fn task_configs(&mut self, _max_tasks: usize) -> Result<Vec<RawConfig>> {
            Ok(vec![RawConfig::new()])
        }
        fn stop(&mut self) -> Result<()> {
            Ok(())
        }
    }
    #[derive(Default)]
    struct PickyTask {
        context: Option<SinkTaskContext>,
        written: Vec<String>,
    }
    impl SinkTask for PickyTask {
        fn initialize(&mut self, context: SinkTaskContext) {
            self.context = Some(context);
        }
        fn start(&mut self, _config: RawConfig) -> Result<()> {
            Ok(())
        }
        fn put(&mut self, records: Vec<SinkRecord>) -> Result<()> {
            self.put_batch(&SinkBatch::of(&records))
        }
        fn put_batch(&mut self, batch: &SinkBatch<'_>) -> Result<()> {
            let context = self
                .context
                .as_ref()
                .ok_or_else(|| ConnectError::new("no context"))?;
            for r in batch {
                let r = r?;
                match &r.value {
                    DataRef::Str(s, _) => self.written.push((*s).to_owned()),
                    other => context.report_ref(&r, format!("not text: {other:?}"))?,
                }
            }
            if self.written.len() > 2 {
                return Err(ConnectError::new(format!("wrote {:?}", self.written)));
            }
            Ok(())
        }
        fn stop(&mut self) -> Result<()> {
            Ok(())
        }
    }

    let mut h = SinkHarness::<Picky>::start(config(&[]), 1).unwrap();
    h.open(0, &[TopicPartition::new("t", 4)]).unwrap();
    h.put(
        0,
        vec![
            SinkRecord::new("t", 4, 20, Data::string("one")),
            SinkRecord::new("t", 4, 21, Data::bytes(vec![1])),
            SinkRecord::new("t", 4, 22, Data::string("two")),
            SinkRecord::new("t", 4, 23, Data::null()),
        ],
    )
    .unwrap();
    assert_eq!(
        h.requests(0).reported,
        [
            (
                TopicPartition::new("t", 4),
                21,
                "not text: Bytes([1], None)".to_owned()
            ),
            (TopicPartition::new("t", 4), 23, "not text: Null".to_owned()),
        ]
    );
    // The task's own state shows what it wrote; the error carries it out.
    let err = h
        .put(0, vec![SinkRecord::new("t", 4, 24, Data::string("three"))])
        .unwrap_err();
    assert_eq!(
        err,
        HarnessError::Failed {
            retriable: false,
            message: r#"wrote ["one", "two", "three"]"#.to_owned()
        }
    );
    h.stop().unwrap();
}
