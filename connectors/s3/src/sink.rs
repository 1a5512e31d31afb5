//! `S3Sink` and its task: records of each assigned topic partition go into a set of open
//! objects (one per directory the partitioner names); the set is *rotated* (every object
//! in it uploaded) after `flush.size` records, when record time moves `rotate.interval.ms`
//! past the set's first record, when a Parquet schema changes, or on the wall-clock
//! schedule `rotate.schedule.interval.ms`.
//!
//! Exactly once: an object's key is `topic+partition+startoffset`, its first record's
//! offset, and `pre_commit` answers for each partition only the offset after the last
//! record of an uploaded set. After a crash or a rebalance the consumer resumes there,
//! at the start of a set, and deterministic rotation rebuilds the same sets: a re-upload
//! overwrites the same keys with the same records. Nothing is read back from the bucket.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use tributary_plugin_sdk::{
    Config, ConfigDef, ConfigValueInfo, ConnectError, Offsets, RawConfig, Result, SinkConnector,
    SinkRecord, SinkTask, SinkTaskContext, TopicPartition, Value,
};

use crate::config::{NullValues, S3SinkConfig, config_def};
use crate::format::{FileEncoder, extension};
use crate::storage::{Store, Upload, tracing_warn};

/// The connector: every task gets the same config; the consumer group spreads the
/// partitions.
#[derive(Debug, Default)]
pub struct S3Sink {
    originals: RawConfig,
}

impl SinkConnector for S3Sink {
    const NAME: &'static str = "io.confluent.connect.s3.S3SinkConnector";
    const ALIASES: &'static [&'static str] = &["io.tributary.connect.s3.S3SinkConnector"];
    type Task = S3SinkTask;

    fn config_def() -> ConfigDef {
        config_def()
    }

    /// Each key alone, then the checks across keys (a partitioner's own keys), reported
    /// on the partitioner's key.
    fn validate(&mut self, config: &RawConfig) -> Vec<ConfigValueInfo> {
        let mut infos = config_def().validate(config);
        if infos.iter().all(|i| i.errors.is_empty())
            && let Err(e) = S3SinkConfig::from_raw(config)
            && let Some(info) = infos
                .iter_mut()
                .find(|i| i.name == crate::config::PARTITIONER)
        {
            info.errors.push(e.message().to_owned());
        }
        infos
    }

    fn start(&mut self, config: Config) -> Result<()> {
        S3SinkConfig::from_config(&config)?;
        self.originals = config.originals().clone();
        Ok(())
    }

    fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<RawConfig>> {
        Ok(vec![self.originals.clone(); max_tasks])
    }

    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One object of the open set.
#[derive(Debug)]
struct OpenFile {
    /// `None` once finished (its bytes are all in `upload`).
    encoder: Option<FileEncoder>,
    upload: Upload,
}

/// The state of one assigned topic partition.
#[derive(Debug)]
struct PartitionWriter {
    /// The open set: directory → object.
    files: BTreeMap<String, OpenFile>,
    /// Records in the open set.
    count: u64,
    /// The rotation clock's time of the open set's first record.
    base_time: Option<i64>,
    /// When the open set is due on the wall-clock schedule.
    scheduled: Option<i64>,
    /// The offset after the last record taken: a redelivered batch (after a retriable
    /// failure) skips what is already in the open set.
    next: Option<i64>,
    /// The set is being uploaded (it takes no more records): the offset after it.
    sealed: Option<i64>,
    /// Everything before this offset is in uploaded objects.
    safe: Option<i64>,
}

impl PartitionWriter {
    fn new() -> PartitionWriter {
        PartitionWriter {
            files: BTreeMap::new(),
            count: 0,
            base_time: None,
            scheduled: None,
            next: None,
            sealed: None,
            safe: None,
        }
    }

    fn idle(&self) -> bool {
        self.files.is_empty() && self.sealed.is_none()
    }

    /// Stop taking records into the open set; it is uploaded next.
    fn seal(&mut self) {
        if self.sealed.is_none() && !self.files.is_empty() {
            self.sealed = self.next;
        }
    }

    /// Upload every object of the sealed set. A failure leaves the rest (and what of
    /// each object was sent) for the next try.
    fn upload_sealed(&mut self, store: &Store, part_size: usize) -> Result<()> {
        let Some(end) = self.sealed else {
            return Ok(());
        };
        while let Some(mut entry) = self.files.first_entry() {
            let file = entry.get_mut();
            if let Some(encoder) = file.encoder.take() {
                let rest = encoder.finish().map_err(ConnectError::new)?;
                file.upload.extend(rest);
            }
            file.upload.complete(store, part_size)?;
            entry.remove();
        }
        self.safe = Some(end);
        self.sealed = None;
        self.count = 0;
        self.base_time = None;
        self.scheduled = None;
        Ok(())
    }

    fn abort(&mut self, store: &Store) {
        for f in self.files.values_mut() {
            f.upload.abort(store);
        }
        self.files.clear();
        self.sealed = None;
    }
}

/// The task: a [`PartitionWriter`] per assigned partition.
#[derive(Debug, Default)]
pub struct S3SinkTask {
    context: Option<SinkTaskContext>,
    config: Option<S3SinkConfig>,
    store: Option<Store>,
    extension: String,
    writers: BTreeMap<TopicPartition, PartitionWriter>,
}

impl S3SinkTask {
    fn parts(
        &mut self,
    ) -> Result<(
        &S3SinkConfig,
        &Store,
        &mut BTreeMap<TopicPartition, PartitionWriter>,
    )> {
        match (&self.config, &self.store) {
            (Some(c), Some(s)) => Ok((c, s, &mut self.writers)),
            _ => Err(ConnectError::new("the S3 sink task was used before start")),
        }
    }

    /// Upload the sets that are due on the wall-clock schedule.
    fn rotate_scheduled(&mut self, now: i64) -> Result<()> {
        let (config, store, writers) = self.parts()?;
        if config.rotate_schedule_ms.is_none() {
            return Ok(());
        }
        for w in writers.values_mut() {
            if w.scheduled.is_some_and(|due| now >= due) {
                w.seal();
            }
            w.upload_sealed(store, config.part_size)?;
        }
        Ok(())
    }

    fn take(&mut self, r: &SinkRecord, now: i64) -> Result<bool> {
        let ext = self.extension.clone();
        let (config, store, writers) = self.parts()?;
        let tp = r.topic_partition();
        let w = writers
            .entry(tp.clone())
            .or_insert_with(PartitionWriter::new);
        // A set that failed to upload goes first.
        w.upload_sealed(store, config.part_size)?;
        if w.next.is_some_and(|n| r.offset < n) {
            return Ok(false);
        }
        if matches!(r.value.value, Value::Null) {
            match config.null_values {
                NullValues::Ignore => {
                    w.next = Some(r.offset + 1);
                    return Ok(false);
                }
                NullValues::Fail => {
                    return Err(ConnectError::new(format!(
                        "record {}-{}@{} has a null value (a tombstone), which the S3 sink cannot write; set behavior.on.null.values=ignore to skip such records",
                        r.topic, r.partition, r.offset
                    )));
                }
            }
        }
        let time = match config.rotate_interval_ms {
            Some(_) => Some(
                config
                    .rotation_clock
                    .extract(r, now)
                    .map_err(ConnectError::new)?,
            ),
            None => None,
        };
        if let (Some(interval), Some(t), Some(base)) =
            (config.rotate_interval_ms, time, w.base_time)
            && t - base >= interval
        {
            w.seal();
            w.upload_sealed(store, config.part_size)?;
        }
        let dir = config
            .partitioner
            .encode(r, now)
            .map_err(ConnectError::new)?;
        if w.files
            .get(&dir)
            .is_some_and(|f| f.encoder.as_ref().is_some_and(|e| !e.accepts(r)))
        {
            // A new Parquet schema: the set ends here.
            w.seal();
            w.upload_sealed(store, config.part_size)?;
        }
        let file = match w.files.get_mut(&dir) {
            Some(f) => f,
            None => {
                let mut key = String::new();
                if !config.topics_dir.is_empty() {
                    key.push_str(&config.topics_dir);
                    key.push('/');
                }
                key.push_str(&format!(
                    "{topic}/{dir}/{topic}+{partition}+{offset:0width$}{ext}",
                    topic = r.topic,
                    partition = r.partition,
                    offset = r.offset,
                    width = config.zero_pad,
                ));
                let encoder = FileEncoder::new(&config.format, config.compression, r)
                    .map_err(ConnectError::new)?;
                w.files.entry(dir).or_insert(OpenFile {
                    encoder: Some(encoder),
                    upload: Upload::new(key),
                })
            }
        };
        let Some(encoder) = file.encoder.as_mut() else {
            return Err(ConnectError::new(
                "an object was written to after it was finished",
            ));
        };
        encoder.append(r).map_err(ConnectError::new)?;
        w.next = Some(r.offset + 1);
        w.count += 1;
        if w.base_time.is_none() {
            w.base_time = time;
        }
        if w.scheduled.is_none()
            && let Some(every) = config.rotate_schedule_ms
        {
            w.scheduled = Some(now - now.rem_euclid(every) + every);
        }
        if encoder.ready_len() >= config.part_size {
            file.upload.extend(encoder.take_ready());
        }
        if file.upload.buffered() >= config.part_size {
            file.upload.flush_parts(store, config.part_size)?;
        }
        if w.count >= config.flush_size {
            w.seal();
            w.upload_sealed(store, config.part_size)?;
        }
        Ok(true)
    }
}

impl SinkTask for S3SinkTask {
    fn initialize(&mut self, context: SinkTaskContext) {
        self.context = Some(context);
    }

    fn start(&mut self, raw: RawConfig) -> Result<()> {
        let config = S3SinkConfig::from_raw(&raw)?;
        let store = Store::new(&config.store);
        // A missing bucket or bad credentials fail the task now, with what to do.
        store
            .check_bucket()
            .map_err(|e| ConnectError::new(e.message))?;
        self.extension = extension(&config.format, config.compression);
        self.config = Some(config);
        self.store = Some(store);
        Ok(())
    }

    fn open(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        for tp in partitions {
            // The consumer resumes at the committed offset: start clean there.
            self.writers.insert(tp.clone(), PartitionWriter::new());
        }
        Ok(())
    }

    fn put(&mut self, records: Vec<SinkRecord>) -> Result<()> {
        let now = now_ms();
        self.rotate_scheduled(now)?;
        let mut rotated = false;
        for r in &records {
            let before = self.writers.get(&r.topic_partition()).and_then(|w| w.safe);
            self.take(r, now)?;
            rotated |= self.writers.get(&r.topic_partition()).and_then(|w| w.safe) != before;
        }
        if rotated && let Some(c) = &self.context {
            // Commit soon: fewer records to replay after a crash.
            let _ = c.request_commit();
        }
        Ok(())
    }

    fn pre_commit(&mut self, offsets: Offsets) -> Result<Offsets> {
        if let Err(e) = self.rotate_scheduled(now_ms()) {
            if !e.is_retriable() {
                return Err(e);
            }
            tracing_warn(&format!("scheduled rotation failed, retried later: {e}"));
        }
        let mut safe = Offsets::new();
        for (tp, offset) in offsets {
            match self.writers.get(&tp) {
                // Everything delivered is uploaded (or was skipped).
                None => {
                    safe.insert(tp, offset);
                }
                Some(w) if w.idle() => {
                    safe.insert(tp, offset);
                }
                Some(w) => {
                    if let Some(s) = w.safe {
                        safe.insert(tp, s);
                    }
                }
            }
        }
        Ok(safe)
    }

    fn close(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        for tp in partitions {
            if let Some(mut w) = self.writers.remove(tp)
                && let Some(store) = &self.store
            {
                // The next owner replays from the committed offset.
                w.abort(store);
            }
        }
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        if let Some(store) = &self.store {
            for w in self.writers.values_mut() {
                w.abort(store);
            }
        }
        self.writers.clear();
        Ok(())
    }
}
