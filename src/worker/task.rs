//! Source and sink task loops. Each task runs on its own thread (plugin calls block),
//! owned by a [`TaskHandle`]: stop it, pause it, wait for it. A task that fails is
//! restarted with exponential backoff unless that is turned off, and its status (in the
//! status topic and in memory) says why, how many attempts, and when the next is due.
//!
//! Source: poll → convert → produce (the client's partitioner) → remember each source
//! partition's latest offset; every `offset.flush.interval.ms`, and at stop, flush the
//! partitions written to disk and only then store the offsets and call `commit`.
//!
//! Sink: a member of group `connect-NAME`; poll → convert → put; every
//! `offset.flush.interval.ms`, at a rebalance and at stop, ask `pre_commit` which offsets
//! are safe and commit those.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;
use tributary_plugin_abi::data::Value;
use tributary_plugin_abi::record::{
    Header as PluginHeader, OffsetMap, SinkRecord, TimestampType, TopicPartition,
};
use tributary_plugin_abi::view::{
    DataRef, MetadataRef, SinkParts, SourceRecordRef, encode_record_metadata,
};

use super::connector_config::{CommonConfig, Tolerance};
use super::convert::{Converter, HeaderConverter};
use super::hosts::{SinkRequests, SourceOffsets};
use super::store::{OffsetStore, Props, State, StatusStore};
use crate::client::{
    Client, ConsumerRecord, ConsumerSettings, GroupConsumer, Header, Produce, ProducerRecord,
    ProducerRecordRef, ProducerSettings,
};
use crate::plugin::ConnectorPlugin;

/// A connector's converters, with the class names they were built from.
pub struct Converters {
    /// (key, value, header) converter class names, for error reports.
    pub classes: [String; 3],
    pub key: Box<dyn Converter>,
    pub value: Box<dyn Converter>,
    pub header: Box<dyn HeaderConverter>,
}

impl std::fmt::Debug for Converters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Converters")
    }
}

/// What status the REST API shows for a connector or task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusView {
    pub state: State,
    pub trace: Option<String>,
    pub worker_id: String,
    /// Automatic restarts so far since the task last ran cleanly.
    pub restarts: u32,
    /// When the next automatic restart is due (ms since the epoch).
    pub next_restart_ms: Option<i64>,
}

/// Connector and task statuses: written to the status topic and kept in memory.
#[derive(Debug)]
pub struct StatusBoard {
    store: StatusStore,
    worker_id: String,
    /// (connector, None for the connector or Some(task)) → status.
    map: Mutex<BTreeMap<(String, Option<usize>), StatusView>>,
    /// The last status this worker wrote for each, kept apart from what other workers
    /// write (in a cluster both can name the same task across a rebalance).
    own: Mutex<BTreeMap<(String, Option<usize>), StatusView>>,
}

impl StatusBoard {
    pub fn new(store: StatusStore, worker_id: String) -> StatusBoard {
        StatusBoard {
            store,
            worker_id,
            map: Mutex::new(BTreeMap::new()),
            own: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn set(&self, connector: &str, task: Option<usize>, state: State, trace: Option<String>) {
        self.set_with(connector, task, state, trace, 0, None);
    }

    pub fn set_with(
        &self,
        connector: &str,
        task: Option<usize>,
        state: State,
        trace: Option<String>,
        restarts: u32,
        next_restart_ms: Option<i64>,
    ) {
        let written = match task {
            None => self.store.put_connector(connector, state, trace.as_deref()),
            Some(t) => self.store.put_task(connector, t, state, trace.as_deref()),
        };
        if let Err(e) = written {
            tracing::warn!(connector, ?task, error = %e, "could not write a status record");
        }
        let view = StatusView {
            state,
            trace,
            worker_id: self.worker_id.clone(),
            restarts,
            next_restart_ms,
        };
        lock(&self.own).insert((connector.to_owned(), task), view.clone());
        lock(&self.map).insert((connector.to_owned(), task), view);
    }

    /// Write this worker's status of something it runs again if the board shows
    /// another worker's (a worker that ran it before a rebalance wrote later).
    pub fn republish(&self, connector: &str, task: Option<usize>) {
        let key = (connector.to_owned(), task);
        let Some(own) = lock(&self.own).get(&key).cloned() else {
            return;
        };
        let shown = lock(&self.map).get(&key).map(|s| s.worker_id.clone());
        if shown.is_some_and(|w| w != self.worker_id) {
            self.set_with(
                connector,
                task,
                own.state,
                own.trace,
                own.restarts,
                own.next_restart_ms,
            );
        }
    }

    pub fn get(&self, connector: &str, task: Option<usize>) -> Option<StatusView> {
        lock(&self.map).get(&(connector.to_owned(), task)).cloned()
    }

    /// Every task status of `connector`, by task number.
    pub fn tasks(&self, connector: &str) -> Vec<(usize, StatusView)> {
        lock(&self.map)
            .iter()
            .filter_map(|((c, t), s)| (c == connector).then_some((*t, s)))
            .filter_map(|(t, s)| Some((t?, s.clone())))
            .collect()
    }

    /// Forget (and tombstone) a connector's statuses; `tasks` is how many it had.
    pub fn remove(&self, connector: &str, tasks: usize) {
        if let Err(e) = self.store.delete(connector, tasks) {
            tracing::warn!(connector, error = %e, "could not write status tombstones");
        }
        lock(&self.map).retain(|(c, _), _| c != connector);
        lock(&self.own).retain(|(c, _), _| c != connector);
    }

    /// Take in the statuses other workers wrote since the last call (a cluster's view:
    /// every connector's and task's status, with the worker running it). This worker's
    /// own records are already in the map, with more detail, and are skipped.
    pub fn catch_up(&self, positions: &mut Vec<i64>) -> Result<(), super::WorkerError> {
        let records = self.store.read_new(positions)?;
        let mut map = lock(&self.map);
        for (connector, task, status) in records {
            let key = (connector, task);
            match status {
                None => {
                    map.remove(&key);
                }
                Some(s) if s.worker_id == self.worker_id => {}
                Some(s) => {
                    map.insert(
                        key,
                        StatusView {
                            state: s.state,
                            trace: s.trace,
                            worker_id: s.worker_id,
                            restarts: 0,
                            next_restart_ms: None,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Forget one task's status (the connector now has fewer tasks).
    pub fn remove_task(&self, connector: &str, task: usize) {
        lock(&self.map).remove(&(connector.to_owned(), Some(task)));
        lock(&self.own).remove(&(connector.to_owned(), Some(task)));
    }
}

/// How a task is told what to do while it runs.
#[derive(Debug, Default)]
pub struct TaskControl {
    pub stop: CancellationToken,
    pub paused: AtomicBool,
}

/// Everything a task thread needs.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub connector: String,
    pub task: usize,
    pub plugin: Arc<ConnectorPlugin>,
    /// The task config, placeholders resolved.
    pub config: Props,
    pub common: CommonConfig,
    pub converters: Arc<Converters>,
    pub client: Client,
    pub offsets: Arc<Mutex<OffsetStore>>,
    pub statuses: Arc<StatusBoard>,
    /// KIP-558's active topics, reported once per batch.
    pub topics: Arc<super::topics::TopicTracker>,
    pub flush_interval: Duration,
    pub producer: ProducerSettings,
    pub consumer: ConsumerSettings,
    pub restart: RestartPolicy,
}

impl TaskSpec {
    fn converter_class(&self, stage: Stage) -> String {
        let i = match stage {
            Stage::KeyConverter => 0,
            Stage::ValueConverter => 1,
            Stage::HeaderConverter => 2,
            Stage::Transformation => return String::new(),
            Stage::TaskPut => return self.plugin.name().to_owned(),
        };
        self.converters.classes[i].clone()
    }
}

/// Automatic restarts of a failed task.
#[derive(Clone, Copy, Debug)]
pub struct RestartPolicy {
    pub enabled: bool,
    pub initial: Duration,
    pub max: Duration,
}

/// A running task's thread.
#[derive(Debug)]
pub struct TaskHandle {
    pub control: Arc<TaskControl>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TaskHandle {
    /// Start `spec` on a thread of its own.
    pub fn spawn(spec: TaskSpec, source: bool) -> std::io::Result<TaskHandle> {
        let control = Arc::new(TaskControl::default());
        let c = control.clone();
        let thread = std::thread::Builder::new()
            .name(format!("task-{}-{}", spec.connector, spec.task))
            .spawn(move || supervise(spec, c, source))?;
        Ok(TaskHandle {
            control,
            thread: Some(thread),
        })
    }

    pub fn set_paused(&self, paused: bool) {
        self.control.paused.store(paused, Ordering::Release);
    }

    /// Tell the task to stop (it commits what it has and stops its plugin instance).
    pub fn signal_stop(&self) {
        self.control.stop.cancel();
    }

    /// Wait until `deadline` for the thread to finish; a task still blocked in its
    /// plugin after that is abandoned (its thread exits when the call returns, without
    /// producing or committing anything more). Answers whether it finished.
    pub fn join_until(&mut self, deadline: Instant) -> bool {
        let Some(thread) = self.thread.take() else {
            return true;
        };
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
            true
        } else {
            false
        }
    }
}

/// Run a task, restarting it with exponential backoff after failures, until stopped.
fn supervise(spec: TaskSpec, control: Arc<TaskControl>, source: bool) {
    let mut attempts = 0u32;
    loop {
        let started = Instant::now();
        let outcome = if source {
            run_source(&spec, &control)
        } else {
            run_sink(&spec, &control)
        };
        let trace = match outcome {
            Ok(()) => return,
            Err(trace) => trace,
        };
        tracing::error!(connector = %spec.connector, task = spec.task, "task failed: {trace}");
        if control.stop.is_cancelled() {
            spec.statuses
                .set(&spec.connector, Some(spec.task), State::Failed, Some(trace));
            return;
        }
        if !spec.restart.enabled {
            spec.statuses
                .set(&spec.connector, Some(spec.task), State::Failed, Some(trace));
            return;
        }
        // A task that ran a good while before failing starts its backoff afresh.
        if started.elapsed() > spec.restart.max * 2 {
            attempts = 0;
        }
        let delay = backoff(spec.restart, attempts);
        attempts += 1;
        let next = crate::client::now_ms() + delay.as_millis() as i64;
        spec.statuses.set_with(
            &spec.connector,
            Some(spec.task),
            State::Failed,
            Some(format!(
                "{trace}\n(automatic restart {attempts} in {} ms; set task.restart.enable=false to turn this off)",
                delay.as_millis()
            )),
            attempts,
            Some(next),
        );
        let stopped = spec.client.runtime().block_on(async {
            tokio::select! {
                _ = control.stop.cancelled() => true,
                _ = tokio::time::sleep(delay) => false,
            }
        });
        if stopped {
            return;
        }
        spec.statuses.set_with(
            &spec.connector,
            Some(spec.task),
            State::Restarting,
            None,
            attempts,
            None,
        );
    }
}

fn backoff(policy: RestartPolicy, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.min(20));
    policy.initial.saturating_mul(factor).min(policy.max)
}

fn trace_of(e: &dyn std::fmt::Display) -> String {
    e.to_string()
}

/// One run of a source task: Ok when stopped, Err(trace) when it failed.
fn run_source(spec: &TaskSpec, control: &TaskControl) -> Result<(), String> {
    let mut task = spec.plugin.new_source_task().map_err(|e| trace_of(&e))?;
    let host = Arc::new(SourceOffsets {
        connector: spec.connector.clone(),
        store: spec.offsets.clone(),
    });
    task.start(&spec.config, host).map_err(|e| trace_of(&e))?;
    spec.statuses
        .set(&spec.connector, Some(spec.task), State::Running, None);
    let mut pending: BTreeMap<String, (Json, Json)> = BTreeMap::new();
    let mut written: Vec<(String, i32)> = Vec::new();
    let mut known_topics: Vec<String> = Vec::new();
    let mut active_topics = spec.topics.task(&spec.connector, spec.task);
    let mut last_commit = Instant::now();
    let mut was_paused = false;
    let mut committer = Committer::spawn(spec).map_err(|e| trace_of(&e))?;
    let result = (|| -> Result<(), String> {
        while !control.stop.is_cancelled() {
            if committer.finished()? {
                task.commit().map_err(|e| trace_of(&e))?;
            }
            if control.paused.load(Ordering::Acquire) {
                if !was_paused {
                    committer.wait_then_commit(spec, &mut task, &mut pending, &mut written)?;
                    spec.statuses
                        .set(&spec.connector, Some(spec.task), State::Paused, None);
                    was_paused = true;
                }
                wait_or_stop(spec, control, Duration::from_millis(100));
                continue;
            }
            if was_paused {
                spec.statuses
                    .set(&spec.connector, Some(spec.task), State::Running, None);
                was_paused = false;
            }
            let batch = task.poll_batch().map_err(|e| trace_of(&e))?;
            if control.stop.is_cancelled() {
                // Stopped while polling: the batch is dropped, its offsets not stored.
                break;
            }
            if !batch.is_empty() {
                // The records are read where the plugin lent them: converted values that
                // pass through (bytes, text) are copied once, into the log batch.
                let mut refs = Vec::with_capacity(batch.len());
                for i in 0..batch.len() {
                    refs.push(batch.record(i).map_err(|e| trace_of(&e))?);
                }
                // Transforms (issue 7) between poll and conversion.
                let transformed = transform_source(spec, &batch, &mut refs)?;
                let (out, kept) = convert_source(spec, &refs, &transformed)?;
                create_topics(spec, &out, &mut known_topics)?;
                let positions = spec
                    .client
                    .send(&out, &spec.producer)
                    .map_err(|e| trace_of(&e))?;
                active_topics.record(out.iter().map(|r| r.topic));
                // Per batch, not per record: the partitions written to are found by
                // comparing with the few seen so far, and the source positions cross
                // per batch (the last offset of each source partition).
                let mut at = positions.iter().zip(out.iter());
                let metadata = kept.iter().map(|k| match k {
                    true => at.next().map(|(p, o)| MetadataRef {
                        topic: o.topic,
                        partition: p.partition,
                        offset: p.offset,
                        timestamp: Some(p.timestamp),
                    }),
                    false => None,
                });
                // Encoded while the records are still lent (the topics point into them).
                let mut encoded = Vec::new();
                encode_record_metadata(metadata, &mut encoded);
                let mut last: Option<(&str, i32)> = None;
                for (p, o) in positions.iter().zip(out.iter()) {
                    let here = (o.topic, p.partition);
                    if last != Some(here)
                        && !written
                            .iter()
                            .any(|(t, q)| *q == p.partition && t.as_str() == o.topic)
                    {
                        written.push((o.topic.to_owned(), p.partition));
                    }
                    last = Some(here);
                }
                for (partition, offset) in batch.sources().map_err(|e| trace_of(&e))? {
                    let p = offset_json(&partition);
                    pending.insert(p.to_string(), (p, offset_json(&offset)));
                }
                let polled = batch.len();
                drop(out);
                drop(transformed);
                drop(refs);
                task.commit_records_encoded(&encoded, polled)
                    .map_err(|e| trace_of(&e))?;
            }
            // In the background, as Kafka Connect's offset committer does: the log's
            // fdatasync and the offset write do not hold up the next poll.
            if last_commit.elapsed() >= spec.flush_interval && committer.idle() {
                committer.start(&mut pending, &mut written)?;
                last_commit = Instant::now();
            }
        }
        committer.wait_then_commit(spec, &mut task, &mut pending, &mut written)
    })();
    drop(committer);
    let stopped = task.stop();
    result?;
    stopped.map_err(|e| trace_of(&e))?;
    Ok(())
}

/// Create the topics of a batch that do not exist yet as `topic.creation.*` says (a
/// connector without it leaves that to the broker's auto-creation).
fn create_topics(
    spec: &TaskSpec,
    out: &[impl Produce],
    known: &mut Vec<String>,
) -> Result<(), String> {
    let Some(tc) = &spec.common.topic_creation else {
        return Ok(());
    };
    for r in out {
        let topic = r.topic();
        if known.iter().any(|k| k == topic) {
            continue;
        }
        let group = tc.group_for(topic);
        let (partitions, created) = spec
            .client
            .ensure_topic(topic, group.partitions, group.configs.clone())
            .map_err(|e| {
                format!(
                    "creating topic {topic} (topic.creation.{}.*): {e}",
                    group.name
                )
            })?;
        if created {
            tracing::info!(connector = %spec.connector, topic = %topic, partitions, group = %group.name, "created topic (topic.creation)");
        }
        known.push(topic.to_owned());
    }
    Ok(())
}

/// A source task's offset commits, each on a thread of its own while the task polls on:
/// flush the partitions written since the last commit, then store the offsets that cover
/// them. At most one commit is in flight; the task thread calls `SourceTask::commit` when
/// it sees one finished (plugin calls stay on the task's thread).
struct Committer {
    jobs: Option<std::sync::mpsc::SyncSender<CommitJob>>,
    /// Per finished commit: whether it stored offsets, or why it failed.
    done: std::sync::mpsc::Receiver<Result<bool, String>>,
    in_flight: bool,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct CommitJob {
    written: Vec<(String, i32)>,
    pending: BTreeMap<String, (Json, Json)>,
}

impl Committer {
    fn spawn(spec: &TaskSpec) -> std::io::Result<Committer> {
        let (jobs, rx) = std::sync::mpsc::sync_channel::<CommitJob>(1);
        let (tx, done) = std::sync::mpsc::sync_channel(1);
        let spec = spec.clone();
        let thread = std::thread::Builder::new()
            .name(format!("commit-{}-{}", spec.connector, spec.task))
            .spawn(move || {
                // Ends when the task drops its sender.
                while let Ok(mut job) = rx.recv() {
                    let r = store_offsets(&spec, &mut job.pending, &mut job.written);
                    if tx.send(r).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Committer {
            jobs: Some(jobs),
            done,
            in_flight: false,
            thread: Some(thread),
        })
    }

    fn idle(&self) -> bool {
        !self.in_flight
    }

    /// Hand what is pending to the committer thread.
    fn start(
        &mut self,
        pending: &mut BTreeMap<String, (Json, Json)>,
        written: &mut Vec<(String, i32)>,
    ) -> Result<(), String> {
        if written.is_empty() && pending.is_empty() {
            return Ok(());
        }
        let job = CommitJob {
            written: std::mem::take(written),
            pending: std::mem::take(pending),
        };
        let jobs = self.jobs.as_ref().ok_or("the offset committer is gone")?;
        jobs.send(job)
            .map_err(|_| "the offset committer thread ended".to_owned())?;
        self.in_flight = true;
        Ok(())
    }

    /// Whether a commit that stored offsets finished since the last call (its error, if
    /// it failed).
    fn finished(&mut self) -> Result<bool, String> {
        if !self.in_flight {
            return Ok(false);
        }
        match self.done.try_recv() {
            Ok(r) => {
                self.in_flight = false;
                r
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => Ok(false),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                Err("the offset committer thread ended".to_owned())
            }
        }
    }

    /// Wait for the commit in flight, then commit what is left on this thread and tell
    /// the task (at pause and at stop).
    fn wait_then_commit(
        &mut self,
        spec: &TaskSpec,
        task: &mut crate::plugin::SourceTask,
        pending: &mut BTreeMap<String, (Json, Json)>,
        written: &mut Vec<(String, i32)>,
    ) -> Result<(), String> {
        if self.in_flight {
            let r = self
                .done
                .recv()
                .map_err(|_| "the offset committer thread ended".to_owned())?;
            self.in_flight = false;
            if r? && pending.is_empty() {
                // What the background commit stored is all there is: tell the task.
                task.commit().map_err(|e| trace_of(&e))?;
            }
        }
        commit_source(spec, task, pending, written)
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Flush what was produced, then store the offsets that cover it, then tell the task.
fn commit_source(
    spec: &TaskSpec,
    task: &mut crate::plugin::SourceTask,
    pending: &mut BTreeMap<String, (Json, Json)>,
    written: &mut Vec<(String, i32)>,
) -> Result<(), String> {
    if store_offsets(spec, pending, written)? {
        task.commit().map_err(|e| trace_of(&e))?;
    }
    Ok(())
}

/// Flush the partitions written to, then store the offsets that cover them. Answers
/// whether there were offsets to store (the task is told of a commit only then).
fn store_offsets(
    spec: &TaskSpec,
    pending: &mut BTreeMap<String, (Json, Json)>,
    written: &mut Vec<(String, i32)>,
) -> Result<bool, String> {
    for (topic, partition) in std::mem::take(written) {
        spec.client
            .flush(&topic, partition)
            .map_err(|e| trace_of(&e))?;
    }
    if pending.is_empty() {
        return Ok(false);
    }
    let entries = std::mem::take(pending)
        .into_values()
        .map(|(p, o)| (p, Some(o)))
        .collect();
    lock(&spec.offsets)
        .put(&spec.connector, entries)
        .map_err(|e| trace_of(&e))?;
    Ok(true)
}

/// Convert a polled batch; answers the records to produce and, per polled record,
/// whether it is among them (a record dropped under errors.tolerance=all is not).
fn convert_source<'a>(
    spec: &TaskSpec,
    records: &[SourceRecordRef<'a>],
    transformed: &'a Transformed,
) -> Result<(Vec<ProducerRecordRef<'a>>, Vec<bool>), String> {
    let mut out = Vec::with_capacity(records.len());
    let mut kept = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        // With transforms, their output (`transform_source`); without, nothing to look at.
        let copy;
        let r = match transformed.get(i) {
            None => r,
            Some(None) => {
                kept.push(false);
                continue;
            }
            Some(Some(t)) => {
                copy = SourceRecordRef::of(t);
                &copy
            }
        };
        match convert_one_source(spec, r) {
            Ok(p) => {
                out.push(p);
                kept.push(true);
            }
            Err(failure) => {
                let context = format!("a record for topic {}", r.topic);
                report_failure(spec, &failure, &context, || {
                    dlq_record_from_source(spec, r, &failure)
                })?;
                kept.push(false);
            }
        }
    }
    Ok((out, kept))
}

/// A source record for the DLQ (beyond Kafka Connect, which has no source DLQ): key and
/// value as schemaless JSON of the Connect data the configured converter could not
/// convert, the original topic in `__connect.errors.topic`, the error headers if enabled.
fn dlq_record_from_source(
    spec: &TaskSpec,
    r: &SourceRecordRef<'_>,
    failure: &Failure,
) -> Option<ProducerRecord> {
    let config = [("schemas.enable".to_owned(), "false".to_owned())].into();
    let json = super::convert::converter(
        "org.apache.kafka.connect.json.JsonConverter",
        &config,
        false,
    )
    .ok()?;
    let key = json.from_connect(r.topic, &r.key.to_data()).ok().flatten();
    let value = json
        .from_connect(r.topic, &r.value.to_data())
        .ok()
        .flatten();
    let mut headers = Vec::new();
    if spec.common.dlq_context_headers {
        headers.push(Header {
            key: "__connect.errors.topic".to_owned(),
            value: Some(Bytes::from(r.topic.to_owned())),
        });
        headers.extend(error_headers(spec, failure, None));
    }
    Some(ProducerRecord {
        topic: String::new(),
        partition: None,
        key: key.map(Bytes::from),
        value: value.map(Bytes::from),
        headers,
        timestamp: r.timestamp,
    })
}

fn convert_one_source<'a>(
    spec: &TaskSpec,
    r: &SourceRecordRef<'a>,
) -> Result<ProducerRecordRef<'a>, Failure> {
    let c = &spec.converters;
    let key = c
        .key
        .from_connect_ref(r.topic, &r.key)
        .map_err(|e| Failure::new(Stage::KeyConverter, &e))?;
    let value = c
        .value
        .from_connect_ref(r.topic, &r.value)
        .map_err(|e| Failure::new(Stage::ValueConverter, &e))?;
    let mut headers = Vec::new();
    if r.has_headers() {
        let polled = r
            .headers()
            .map_err(|e| Failure::new(Stage::HeaderConverter, &e))?;
        headers.reserve(polled.len());
        for h in polled {
            let v = c
                .header
                .from_connect_header(r.topic, &h.key, &h.value)
                .map_err(|e| Failure::new(Stage::HeaderConverter, &e))?;
            headers.push(Header {
                key: h.key,
                value: v.map(Bytes::from),
            });
        }
    }
    Ok(ProducerRecordRef {
        topic: r.topic,
        partition: r.partition,
        key,
        value,
        headers,
        timestamp: r.timestamp,
    })
}

/// A source partition or offset map as JSON (primitive values only, as Kafka requires).
pub fn offset_json(map: &OffsetMap) -> Json {
    Json::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect(),
    )
}

fn value_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Int8(n) => (*n).into(),
        Value::Int16(n) => (*n).into(),
        Value::Int32(n) => (*n).into(),
        Value::Int64(n) => (*n).into(),
        Value::Float32(f) => {
            serde_json::Number::from_f64(f64::from(*f)).map_or(Json::Null, Json::Number)
        }
        Value::Float64(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.clone()),
        other => Json::String(format!("{other:?}")),
    }
}

/// A stored offset map back in the data model (integers as int64, as Kafka reads them).
pub fn offset_map(json: &Json) -> Option<OffsetMap> {
    let obj = json.as_object()?;
    Some(
        obj.iter()
            .map(|(k, v)| {
                let v = match v {
                    Json::Null => Value::Null,
                    Json::Bool(b) => Value::Boolean(*b),
                    Json::Number(n) => match n.as_i64() {
                        Some(i) => Value::Int64(i),
                        None => Value::Float64(n.as_f64().unwrap_or(0.0)),
                    },
                    Json::String(s) => Value::String(s.clone()),
                    other => Value::String(other.to_string()),
                };
                (k.clone(), v)
            })
            .collect(),
    )
}

fn wait_or_stop(spec: &TaskSpec, control: &TaskControl, d: Duration) {
    spec.client.runtime().block_on(async {
        tokio::select! {
            _ = control.stop.cancelled() => {}
            _ = tokio::time::sleep(d) => {}
        }
    });
}

/// One run of a sink task: Ok when stopped, Err(trace) when it failed.
/// The longest a sink task waits in one poll for records (it wakes sooner when records
/// arrive, a commit is due or the task is stopped).
const SINK_POLL_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a sink task's poll may wait for records: at most until the next offset commit
/// is due (as Kafka's WorkerSinkTask does), so a commit is not held back by an idle topic;
/// never zero (a due commit is made right after a poll that returns at once).
fn sink_poll_timeout(flush_interval: Duration, since_commit: Duration) -> Duration {
    flush_interval
        .saturating_sub(since_commit)
        .clamp(Duration::from_millis(1), SINK_POLL_TIMEOUT)
}

fn run_sink(spec: &TaskSpec, control: &TaskControl) -> Result<(), String> {
    let subscription = spec.common.subscription().map_err(|e| trace_of(&e))?;
    let mut consumer = GroupConsumer::new(
        spec.client.clone(),
        format!("connect-{}", spec.connector),
        format!("connector-consumer-{}-{}", spec.connector, spec.task),
        subscription,
        spec.consumer.clone(),
    );
    // Stopping the task wakes a consumer blocked in a join or a poll.
    let stopper = consumer.stopper();
    let stop = control.stop.clone();
    spec.client.runtime().spawn(async move {
        stop.cancelled().await;
        stopper.cancel();
    });
    let mut task = spec.plugin.new_sink_task().map_err(|e| trace_of(&e))?;
    let requests = Arc::new(SinkRequests::default());
    task.start(&spec.config, requests.clone())
        .map_err(|e| trace_of(&e))?;
    spec.statuses
        .set(&spec.connector, Some(spec.task), State::Running, None);
    // Next offset to consume per partition, as delivered to put.
    let mut consumed: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut active_topics = spec.topics.task(&spec.connector, spec.task);
    let mut last_commit = Instant::now();
    let mut was_paused = false;
    let result = (|| -> Result<(), String> {
        while !control.stop.is_cancelled() {
            let paused = control.paused.load(Ordering::Acquire);
            if paused != was_paused {
                let all = consumer.assignment().to_vec();
                if paused {
                    consumer.pause(&all);
                    spec.statuses
                        .set(&spec.connector, Some(spec.task), State::Paused, None);
                } else {
                    consumer.resume(&all);
                    spec.statuses
                        .set(&spec.connector, Some(spec.task), State::Running, None);
                }
                was_paused = paused;
            }
            let polled = consumer
                .poll(sink_poll_timeout(
                    spec.flush_interval,
                    last_commit.elapsed(),
                ))
                .map_err(|e| trace_of(&e))?;
            if !polled.revoked.is_empty() {
                commit_sink(spec, &mut task, &consumer, &polled.revoked, &mut consumed)?;
                let revoked: Vec<TopicPartition> = polled
                    .revoked
                    .iter()
                    .map(|(t, p)| TopicPartition::new(t.clone(), *p))
                    .collect();
                task.close(&revoked).map_err(|e| trace_of(&e))?;
                consumed.retain(|tp, _| !polled.revoked.contains(tp));
            }
            if !polled.assigned.is_empty() {
                if paused {
                    consumer.pause(&polled.assigned);
                }
                let assigned: Vec<TopicPartition> = polled
                    .assigned
                    .iter()
                    .map(|(t, p)| TopicPartition::new(t.clone(), *p))
                    .collect();
                requests.set_assignment(assigned.clone());
                task.open(&assigned).map_err(|e| trace_of(&e))?;
            }
            if !polled.records.is_empty() {
                // The converted values still point into the fetched batch (text and
                // bytes pass through): the plugin builds its records straight from them.
                let batch = convert_sink(spec, &polled.records)?;
                // Per run of records of one partition, not per record: the position
                // after its last one.
                let mut last: Option<&ConsumerRecord> = None;
                for r in &polled.records {
                    if let Some(l) = last
                        && (l.partition != r.partition || l.topic != r.topic)
                    {
                        consumed.insert((l.topic.to_string(), l.partition), l.offset + 1);
                    }
                    last = Some(r);
                }
                if let Some(l) = last {
                    consumed.insert((l.topic.to_string(), l.partition), l.offset + 1);
                }
                if !spec.common.transforms.is_empty() {
                    // Transforms (issue 7) between conversion and put.
                    let transformed = transform_sink(spec, &batch)?;
                    if !transformed.is_empty() {
                        put_with_retry(spec, control, &mut task, || {
                            transformed.iter().map(sink_parts)
                        })?;
                    }
                } else if !batch.is_empty() {
                    put_with_retry(spec, control, &mut task, || {
                        batch.iter().map(Converted::parts)
                    })?;
                }
                report_errant(spec, &requests, &polled.records)?;
                active_topics.record(polled.records.iter().map(|r| &*r.topic));
            }
            let asked = requests.drain();
            let tps = |v: &[TopicPartition]| -> Vec<(String, i32)> {
                v.iter()
                    .map(|tp| (tp.topic.clone(), tp.partition))
                    .collect()
            };
            consumer.pause(&tps(&asked.pause));
            consumer.resume(&tps(&asked.resume));
            for (tp, offset) in asked.offsets {
                consumer.seek((tp.topic.clone(), tp.partition), offset);
                consumed.insert((tp.topic, tp.partition), offset);
            }
            if asked.commit || last_commit.elapsed() >= spec.flush_interval {
                {
                    let owned = consumer.assignment().to_vec();
                    commit_sink(spec, &mut task, &consumer, &owned, &mut consumed)?;
                }
                last_commit = Instant::now();
            }
        }
        {
            let owned = consumer.assignment().to_vec();
            commit_sink(spec, &mut task, &consumer, &owned, &mut consumed)?;
        }
        let all: Vec<TopicPartition> = consumer
            .assignment()
            .iter()
            .map(|(t, p)| TopicPartition::new(t.clone(), *p))
            .collect();
        task.close(&all).map_err(|e| trace_of(&e))
    })();
    let stopped = task.stop();
    consumer.close();
    result?;
    stopped.map_err(|e| trace_of(&e))?;
    Ok(())
}

/// put, retrying retriable failures with backoff.
fn put_with_retry<'p, I: Iterator<Item = SinkParts<'p>>>(
    spec: &TaskSpec,
    control: &TaskControl,
    task: &mut crate::plugin::SinkTask,
    batch: impl Fn() -> I,
) -> Result<(), String> {
    let mut delay = Duration::from_millis(100);
    loop {
        match task.put_parts(batch()) {
            Ok(()) => return Ok(()),
            // As Kafka Connect does, a retriable failure of put redelivers the same
            // batch until it succeeds or the task is stopped.
            Err(e) if e.is_retriable() && !control.stop.is_cancelled() => {
                tracing::warn!(connector = %spec.connector, task = spec.task, "put failed, retrying in {} ms: {e}", delay.as_millis());
                wait_or_stop(spec, control, delay);
                delay = (delay * 2).min(spec.common.retry_delay_max.max(Duration::from_millis(1)));
            }
            Err(e) => return Err(trace_of(&e)),
        }
    }
}

/// The records the task reported during `put` (Kafka Connect's `ErrantRecordReporter`),
/// handled as `errors.tolerance` says, the DLQ getting the consumed record. A transform
/// may have renamed the record's topic: then the consumed record at the same partition and
/// offset is the one, if only one is.
fn report_errant(
    spec: &TaskSpec,
    requests: &SinkRequests,
    records: &[ConsumerRecord],
) -> Result<(), String> {
    for (tp, offset, message) in requests.take_reported() {
        let original = records
            .iter()
            .find(|r| r.partition == tp.partition && r.offset == offset && *r.topic == tp.topic)
            .or_else(|| {
                let mut same = records
                    .iter()
                    .filter(|r| r.partition == tp.partition && r.offset == offset);
                match (same.next(), same.next()) {
                    (Some(r), None) => Some(r),
                    _ => None,
                }
            });
        let failure = Failure {
            stage: Stage::TaskPut,
            message,
            class: None,
        };
        let context = format!(
            "the record at {}-{} offset {offset}",
            tp.topic, tp.partition
        );
        report_failure(spec, &failure, &context, || {
            original.map(|r| dlq_record_from_sink(spec, r, &failure))
        })?;
    }
    Ok(())
}

/// Ask the task which offsets are safe, then commit those.
fn commit_sink(
    spec: &TaskSpec,
    task: &mut crate::plugin::SinkTask,
    consumer: &GroupConsumer,
    owned: &[(String, i32)],
    consumed: &mut BTreeMap<(String, i32), i64>,
) -> Result<(), String> {
    if consumed.is_empty() {
        return Ok(());
    }
    let offsets = consumed
        .iter()
        .map(|((t, p), o)| (TopicPartition::new(t.clone(), *p), *o))
        .collect();
    let safe = task.pre_commit(&offsets).map_err(|e| trace_of(&e))?;
    let commit: BTreeMap<(String, i32), i64> = safe
        .into_iter()
        .filter(|(tp, _)| {
            owned
                .iter()
                .any(|(t, p)| *p == tp.partition && *t == tp.topic)
        })
        .map(|(tp, o)| ((tp.topic, tp.partition), o))
        .collect();
    if let Err(e) = consumer.commit(&commit) {
        // A commit lost to a rebalance is retried by the next owner from its last
        // committed offset: duplicates, never loss.
        tracing::warn!(connector = %spec.connector, task = spec.task, "offset commit failed: {e}");
    }
    Ok(())
}

/// A consumed record converted for a sink task: borrowed from the fetched record where
/// the converters pass data through.
struct Converted<'a> {
    record: &'a ConsumerRecord,
    key: DataRef<'a>,
    value: DataRef<'a>,
    headers: Vec<PluginHeader>,
}

impl<'a> Converted<'a> {
    fn parts(&self) -> SinkParts<'_> {
        let r = self.record;
        SinkParts {
            topic: &r.topic,
            partition: r.partition,
            offset: r.offset,
            timestamp: Some(r.timestamp),
            timestamp_type: if r.log_append_time {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            key: self.key.clone(),
            value: self.value.clone(),
            headers: &self.headers,
        }
    }

    /// As an owned record (what transforms work on).
    fn to_record(&self) -> SinkRecord {
        let p = self.parts();
        SinkRecord {
            topic: p.topic.to_owned(),
            partition: p.partition,
            offset: p.offset,
            key: p.key.to_data(),
            value: p.value.to_data(),
            timestamp: p.timestamp,
            timestamp_type: p.timestamp_type,
            headers: self.headers.clone(),
        }
    }
}

fn convert_sink<'a>(
    spec: &TaskSpec,
    records: &'a [ConsumerRecord],
) -> Result<Vec<Converted<'a>>, String> {
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        match convert_one_sink(spec, r) {
            Ok(s) => out.push(s),
            Err(failure) => {
                let context = format!(
                    "the record at {}-{} offset {}",
                    r.topic, r.partition, r.offset
                );
                report_failure(spec, &failure, &context, || {
                    Some(dlq_record_from_sink(spec, r, &failure))
                })?;
            }
        }
    }
    Ok(out)
}

/// Where in the pipeline a record failed (Kafka Connect's `Stage` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    KeyConverter,
    ValueConverter,
    HeaderConverter,
    Transformation,
    /// The sink task reported the record it could not write (`ErrantRecordReporter`).
    TaskPut,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::KeyConverter => "KEY_CONVERTER",
            Stage::ValueConverter => "VALUE_CONVERTER",
            Stage::HeaderConverter => "HEADER_CONVERTER",
            Stage::Transformation => "TRANSFORMATION",
            Stage::TaskPut => "TASK_PUT",
        }
    }
}

/// A record's failure in one stage.
#[derive(Debug)]
pub struct Failure {
    stage: Stage,
    message: String,
    /// The failing transform's class (converters' come from the spec).
    class: Option<&'static str>,
}

impl Failure {
    fn new(stage: Stage, e: &dyn std::fmt::Display) -> Failure {
        Failure {
            stage,
            message: e.to_string(),
            class: None,
        }
    }

    fn transform(e: &super::transform::ChainError) -> Failure {
        Failure {
            stage: Stage::Transformation,
            message: e.to_string(),
            class: Some(e.class),
        }
    }
}

/// Apply `errors.tolerance`, `errors.log.*` and the dead letter queue to a failed
/// record: with tolerance `none` the task fails (the error says how to tolerate it);
/// with `all` the record is skipped, logged if asked, and sent to the DLQ if one is set.
fn report_failure(
    spec: &TaskSpec,
    failure: &Failure,
    context: &str,
    dlq_record: impl FnOnce() -> Option<ProducerRecord>,
) -> Result<(), String> {
    if spec.common.tolerance == Tolerance::None {
        return Err(format!(
            "{} failed on {context}: {}; set errors.tolerance=all to skip such records \
             (and errors.deadletterqueue.topic.name to keep them)",
            failure.stage.as_str(),
            failure.message
        ));
    }
    if spec.common.log_errors {
        tracing::warn!(
            connector = %spec.connector, task = spec.task, stage = failure.stage.as_str(),
            "skipping {context}: {}", failure.message
        );
    }
    if let Some(topic) = &spec.common.dlq_topic
        && let Some(mut record) = dlq_record()
    {
        record.topic = topic.clone();
        record.partition = None;
        spec.client
            .send(std::slice::from_ref(&record), &spec.producer)
            .map_err(|e| format!("writing to the dead letter queue {topic}: {e}"))?;
    }
    Ok(())
}

/// The `__connect.errors.*` headers Kafka Connect's DLQ reporter adds (values as
/// UTF-8 strings, as Kafka writes them).
fn error_headers(
    spec: &TaskSpec,
    failure: &Failure,
    origin: Option<(&str, i32, i64)>,
) -> Vec<Header> {
    let text = |k: &str, v: String| Header {
        key: k.to_owned(),
        value: Some(Bytes::from(v)),
    };
    let mut h = Vec::new();
    if let Some((topic, partition, offset)) = origin {
        h.push(text("__connect.errors.topic", topic.to_owned()));
        h.push(text("__connect.errors.partition", partition.to_string()));
        h.push(text("__connect.errors.offset", offset.to_string()));
    }
    h.push(text(
        "__connect.errors.connector.name",
        spec.connector.clone(),
    ));
    h.push(text("__connect.errors.task.id", spec.task.to_string()));
    h.push(text(
        "__connect.errors.stage",
        failure.stage.as_str().to_owned(),
    ));
    h.push(text(
        "__connect.errors.class.name",
        failure
            .class
            .map_or_else(|| spec.converter_class(failure.stage), str::to_owned),
    ));
    h.push(text(
        "__connect.errors.exception.class.name",
        "org.apache.kafka.connect.errors.DataException".to_owned(),
    ));
    h.push(text(
        "__connect.errors.exception.message",
        failure.message.clone(),
    ));
    h.push(text(
        "__connect.errors.exception.stacktrace",
        failure.message.clone(),
    ));
    h
}

/// A sink record for the DLQ: the original bytes, with the error headers if enabled.
fn dlq_record_from_sink(spec: &TaskSpec, r: &ConsumerRecord, failure: &Failure) -> ProducerRecord {
    let mut headers = r.headers.clone();
    if spec.common.dlq_context_headers {
        headers.extend(error_headers(
            spec,
            failure,
            Some((&r.topic, r.partition, r.offset)),
        ));
    }
    ProducerRecord {
        topic: String::new(),
        partition: None,
        key: r.key.clone(),
        value: r.value.clone(),
        headers,
        timestamp: Some(r.timestamp),
    }
}

fn convert_one_sink<'a>(spec: &TaskSpec, r: &'a ConsumerRecord) -> Result<Converted<'a>, Failure> {
    let c = &spec.converters;
    let key = c
        .key
        .to_connect_ref(&r.topic, r.key.as_deref())
        .map_err(|e| Failure::new(Stage::KeyConverter, &e))?;
    let value = c
        .value
        .to_connect_ref(&r.topic, r.value.as_deref())
        .map_err(|e| Failure::new(Stage::ValueConverter, &e))?;
    let mut headers = Vec::with_capacity(r.headers.len());
    for h in &r.headers {
        headers.push(PluginHeader {
            key: h.key.clone(),
            value: c
                .header
                .to_connect_header(&r.topic, &h.key, h.value.as_deref())
                .map_err(|e| Failure::new(Stage::HeaderConverter, &e))?,
        });
    }
    Ok(Converted {
        record: r,
        key,
        value,
        headers,
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---- transforms (issue 7) -------------------------------------------------------------

/// Apply the connector's transforms to a polled batch, on owned copies (the polled records
/// stay as the plugin lent them, for `commit_records`). Empty, copying nothing, when no
/// transforms are configured; otherwise one entry per record: `None` for one a transform
/// dropped, or failed on under `errors.tolerance=all`.
fn transform_source(
    spec: &TaskSpec,
    batch: &crate::plugin::PolledBatch<'_>,
    records: &mut [SourceRecordRef<'_>],
) -> Result<Transformed, String> {
    let chain = &spec.common.transforms;
    if chain.is_empty() {
        return Ok(Transformed::default());
    }
    // Moved, not copied: what reading the batch decoded goes to the transforms as it is
    // (with transforms, conversion reads only their output), and edited where it lies.
    let mut owned = Vec::with_capacity(records.len());
    for r in records.iter_mut() {
        owned.push(r.take_owned().map_err(|e| trace_of(&e))?);
    }
    let results = chain.apply_source_in_place(&mut owned);
    let mut kept = Vec::with_capacity(records.len());
    for (i, (r, result)) in records.iter().zip(results).enumerate() {
        match result {
            Ok(keep) => kept.push(keep),
            Err(e) => {
                let failure = Failure::transform(&e);
                let context = format!("a record for topic {}", r.topic);
                // The DLQ gets the record as polled, read again from the lent batch.
                let original = batch.record(i).map_err(|e| trace_of(&e))?;
                report_failure(spec, &failure, &context, || {
                    dlq_record_from_source(spec, &original, &failure)
                })?;
                kept.push(false);
            }
        }
    }
    Ok(Transformed {
        records: owned,
        kept,
    })
}

/// What the transforms made of a polled batch: every record, edited in place, and whether
/// each is kept. Empty without transforms (conversion then reads the lent records).
#[derive(Default)]
struct Transformed {
    records: Vec<tributary_plugin_abi::record::SourceRecord>,
    kept: Vec<bool>,
}

impl Transformed {
    /// `None` without transforms; `Some(None)` for a record they dropped.
    fn get(&self, i: usize) -> Option<Option<&tributary_plugin_abi::record::SourceRecord>> {
        let keep = *self.kept.get(i)?;
        Some(keep.then(|| &self.records[i]))
    }
}

/// Apply the connector's transforms to converted sink records: the records to put. A
/// failure is handled as `errors.tolerance` says, the DLQ getting the consumed record.
fn transform_sink(spec: &TaskSpec, batch: &[Converted<'_>]) -> Result<Vec<SinkRecord>, String> {
    let mut out = Vec::with_capacity(batch.len());
    let records = batch.iter().map(|c| c.to_record()).collect();
    let results = spec.common.transforms.apply_sink_batch(records);
    for (c, result) in batch.iter().zip(results) {
        match result {
            Ok(Some(r)) => out.push(r),
            Ok(None) => {}
            Err(e) => {
                let failure = Failure::transform(&e);
                let o = c.record;
                let context = format!(
                    "the record at {}-{} offset {}",
                    o.topic, o.partition, o.offset
                );
                report_failure(spec, &failure, &context, || {
                    Some(dlq_record_from_sink(spec, o, &failure))
                })?;
            }
        }
    }
    Ok(out)
}

/// A transformed sink record as the parts `put` takes.
fn sink_parts(r: &SinkRecord) -> SinkParts<'_> {
    SinkParts {
        topic: &r.topic,
        partition: r.partition,
        offset: r.offset,
        timestamp: r.timestamp,
        timestamp_type: r.timestamp_type,
        key: DataRef::of(&r.key),
        value: DataRef::of(&r.value),
        headers: &r.headers,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{SINK_POLL_TIMEOUT, sink_poll_timeout};

    #[test]
    fn a_sink_poll_ends_when_the_next_commit_is_due() {
        let ms = Duration::from_millis;
        assert_eq!(sink_poll_timeout(ms(100), ms(30)), ms(70));
        assert_eq!(sink_poll_timeout(ms(100), ms(100)), ms(1), "due now");
        assert_eq!(sink_poll_timeout(ms(100), ms(900)), ms(1), "overdue");
        assert_eq!(
            sink_poll_timeout(Duration::from_secs(60), ms(0)),
            SINK_POLL_TIMEOUT,
            "a long interval still polls in bounded steps"
        );
    }
}
