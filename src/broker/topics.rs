//! Topics on a data directory: their metadata, their partition logs, and the
//! background maintenance of those logs.
//!
//! ## On disk
//! ```text
//! DATA_DIR/
//!   .lock                       flock'ed by the process that owns the directory
//!   topics.json                 {"version":1,"topics":[{name,id,partitions,configs}]}
//!   orders-0/                   one directory per partition, Kafka's <topic>-<n>
//!     partition.metadata        "version: 0\ntopic_id: <id>" (which topic owns it)
//!     recovery-point-offset-checkpoint
//!     00000000000000000000.log  .index  .timeindex
//! ```
//! `topics.json` is the source of truth and is replaced atomically (temp file, fsync,
//! rename, fsync of the directory). Creating a topic makes its partition directories
//! first and records it last; deleting records it first and removes directories
//! after; so a crash in between leaves directories whose topic id is not in
//! `topics.json`, and the next start removes exactly those. A recreated topic gets a
//! new id, so it can never pick up a deleted topic's data.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{BrokerConfig, BrokerError};
use crate::log::config::KEYS;
use crate::log::partition::{LogStats, now_ms};
use crate::log::{LogConfig, PartitionLog};

const METADATA_FILE: &str = "topics.json";
const PARTITION_METADATA_FILE: &str = "partition.metadata";
const LOCK_FILE: &str = ".lock";
const DELETE_SUFFIX: &str = "-delete";
/// Kafka's limit on topic name length.
pub const MAX_TOPIC_NAME_LEN: usize = 249;
/// A sanity cap on partitions per topic on one node.
pub const MAX_PARTITIONS: i32 = 10_000;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct TopicMeta {
    name: String,
    id: String,
    partitions: i32,
    #[serde(default)]
    configs: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct MetadataFile {
    version: u32,
    topics: Vec<TopicMeta>,
}

#[derive(Debug)]
struct Topic {
    meta: TopicMeta,
    partitions: Vec<Arc<PartitionLog>>,
}

/// One partition as `describe` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionDescription {
    pub partition: i32,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub size_bytes: u64,
    pub segments: usize,
}

/// A topic as `describe` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopicDescription {
    pub name: String,
    pub id: String,
    pub partitions: Vec<PartitionDescription>,
    /// Explicit per-topic overrides.
    pub overrides: BTreeMap<String, String>,
}

/// The topics of one data directory. Thread-safe; share it in an `Arc`.
#[derive(Debug)]
pub struct TopicStore {
    config: BrokerConfig,
    _lock: File,
    topics: RwLock<BTreeMap<String, Topic>>,
    /// Serializes metadata changes (create, delete, add partitions, alter).
    changes: Mutex<()>,
}

/// Check a topic name as Kafka does: 1 to 249 characters from `[a-zA-Z0-9._-]`, and
/// neither `.` nor `..`.
pub fn validate_topic_name(name: &str) -> Result<(), BrokerError> {
    let bad = |reason: String| {
        Err(BrokerError::InvalidTopicName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("the name is empty".into());
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not allowed".into());
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return bad(format!(
            "{} characters is longer than the limit of {MAX_TOPIC_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return bad(format!(
            "{c:?} is not allowed; use only ASCII letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl TopicStore {
    /// Open the data directory, taking its lock, recovering every partition.
    pub fn open(config: BrokerConfig) -> Result<TopicStore, BrokerError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| BrokerError::io(&dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| BrokerError::io(&lock_path, e))?;
        if lock_file.try_lock().is_err() {
            return Err(BrokerError::DataDirLocked { dir });
        }
        let metas = read_metadata(&dir)?;
        let known: HashMap<String, String> = metas
            .iter()
            .map(|m| (m.name.clone(), m.id.clone()))
            .collect();
        remove_stale_partition_dirs(&dir, &metas, &known)?;
        let mut topics = BTreeMap::new();
        for meta in metas {
            let log_config = Arc::new(config.log_defaults.with_overrides(&meta.configs)?);
            let mut partitions = Vec::with_capacity(meta.partitions as usize);
            for p in 0..meta.partitions {
                partitions.push(Arc::new(open_partition(
                    &dir,
                    &meta,
                    p,
                    log_config.clone(),
                )?));
            }
            topics.insert(meta.name.clone(), Topic { meta, partitions });
        }
        tracing::info!(dir = %dir.display(), topics = topics.len(), "opened data directory");
        Ok(TopicStore {
            config,
            _lock: lock_file,
            topics: RwLock::new(topics),
            changes: Mutex::new(()),
        })
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Topic>> {
        self.topics.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Topic>> {
        self.topics.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Create a topic with `partitions` partitions (the broker's `num.partitions` when
    /// `None`) and per-topic config overrides, validated before anything is written.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: Option<i32>,
        configs: BTreeMap<String, String>,
    ) -> Result<TopicDescription, BrokerError> {
        validate_topic_name(name)?;
        let partitions = partitions.unwrap_or(self.config.num_partitions);
        check_partition_count(name, partitions, 0)?;
        let log_config = Arc::new(self.config.log_defaults.with_overrides(&configs)?);
        let _g = lock(&self.changes);
        {
            let topics = self.read();
            if topics.contains_key(name) {
                return Err(BrokerError::TopicExists(name.to_string()));
            }
            // Kafka refuses names that differ only by '.' vs '_' (they collide in metrics).
            let norm = name.replace('.', "_");
            if let Some(other) = topics.keys().find(|t| t.replace('.', "_") == norm) {
                return Err(BrokerError::InvalidTopicName {
                    name: name.to_string(),
                    reason: format!(
                        "collides with existing topic {other:?} ('.' and '_' are interchangeable in metric names)"
                    ),
                });
            }
        }
        let meta = TopicMeta {
            name: name.to_string(),
            id: new_topic_id(),
            partitions,
            configs: log_config.overrides.clone(),
        };
        let dir = &self.config.data_dir;
        let mut logs = Vec::with_capacity(partitions as usize);
        for p in 0..partitions {
            logs.push(Arc::new(open_partition(dir, &meta, p, log_config.clone())?));
        }
        let mut topics = self.write();
        let mut all: Vec<TopicMeta> = topics.values().map(|t| t.meta.clone()).collect();
        all.push(meta.clone());
        write_metadata(dir, all)?;
        topics.insert(
            name.to_string(),
            Topic {
                meta,
                partitions: logs,
            },
        );
        tracing::info!(topic = name, partitions, "created topic");
        Ok(describe(topics.get(name).expect("just inserted")))
    }

    /// Delete a topic and its data.
    pub fn delete_topic(&self, name: &str) -> Result<(), BrokerError> {
        let _g = lock(&self.changes);
        let removed = {
            let mut topics = self.write();
            if !topics.contains_key(name) {
                return Err(BrokerError::UnknownTopic(name.to_string()));
            }
            let rest: Vec<TopicMeta> = topics
                .values()
                .filter(|t| t.meta.name != name)
                .map(|t| t.meta.clone())
                .collect();
            write_metadata(&self.config.data_dir, rest)?;
            topics.remove(name)
        };
        if let Some(topic) = removed {
            for (p, log) in topic.partitions.iter().enumerate() {
                // Readers holding the log keep their file handles; nothing more is written.
                if let Err(e) = log.close() {
                    tracing::warn!(topic = name, partition = p, error = %e, "closing a deleted partition");
                }
                remove_partition_dir(log.dir())?;
            }
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    /// Grow a topic to `total` partitions (Kafka's CreatePartitions).
    pub fn add_partitions(&self, name: &str, total: i32) -> Result<TopicDescription, BrokerError> {
        let _g = lock(&self.changes);
        let (meta, config) = {
            let topics = self.read();
            let topic = topics
                .get(name)
                .ok_or_else(|| BrokerError::UnknownTopic(name.to_string()))?;
            (
                topic.meta.clone(),
                topic.partitions.first().map(|p| p.config()),
            )
        };
        check_partition_count(name, total, meta.partitions)?;
        let config = match config {
            Some(c) => c,
            None => Arc::new(self.config.log_defaults.with_overrides(&meta.configs)?),
        };
        let mut new_logs = Vec::new();
        for p in meta.partitions..total {
            new_logs.push(Arc::new(open_partition(
                &self.config.data_dir,
                &meta,
                p,
                config.clone(),
            )?));
        }
        let mut topics = self.write();
        let mut all: Vec<TopicMeta> = topics.values().map(|t| t.meta.clone()).collect();
        for m in &mut all {
            if m.name == name {
                m.partitions = total;
            }
        }
        write_metadata(&self.config.data_dir, all)?;
        let topic = topics
            .get_mut(name)
            .ok_or_else(|| BrokerError::UnknownTopic(name.to_string()))?;
        topic.meta.partitions = total;
        topic.partitions.extend(new_logs);
        Ok(describe(topic))
    }

    /// Replace a topic's config overrides (Kafka's AlterConfigs semantics: keys not
    /// given return to the broker default). Takes effect on every partition at once.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), BrokerError> {
        let log_config = Arc::new(self.config.log_defaults.with_overrides(&configs)?);
        let _g = lock(&self.changes);
        let mut topics = self.write();
        if !topics.contains_key(name) {
            return Err(BrokerError::UnknownTopic(name.to_string()));
        }
        let mut all: Vec<TopicMeta> = topics.values().map(|t| t.meta.clone()).collect();
        for m in &mut all {
            if m.name == name {
                m.configs = log_config.overrides.clone();
            }
        }
        write_metadata(&self.config.data_dir, all)?;
        if let Some(topic) = topics.get_mut(name) {
            topic.meta.configs = log_config.overrides.clone();
            for p in &topic.partitions {
                p.set_config(log_config.clone());
            }
        }
        Ok(())
    }

    /// Effective configs of a topic: every key with its value and whether it is the
    /// default, in the order of the key table.
    pub fn topic_configs(
        &self,
        name: &str,
    ) -> Result<Vec<(&'static str, String, bool)>, BrokerError> {
        let topics = self.read();
        let topic = topics
            .get(name)
            .ok_or_else(|| BrokerError::UnknownTopic(name.to_string()))?;
        let cfg: LogConfig = self
            .config
            .log_defaults
            .with_overrides(&topic.meta.configs)?;
        Ok(KEYS
            .iter()
            .map(|k| {
                let value = cfg.value_of(k.name).unwrap_or_default();
                (k.name, value, !topic.meta.configs.contains_key(k.name))
            })
            .collect())
    }

    pub fn list_topics(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription, BrokerError> {
        self.read()
            .get(name)
            .map(describe)
            .ok_or_else(|| BrokerError::UnknownTopic(name.to_string()))
    }

    /// A partition's log, shared.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>> {
        let topics = self.read();
        let t = topics.get(topic)?;
        usize::try_from(partition)
            .ok()
            .and_then(|p| t.partitions.get(p))
            .cloned()
    }

    fn all_partitions(&self) -> Vec<(String, usize, Arc<PartitionLog>)> {
        self.read()
            .values()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (t.meta.name.clone(), i, p.clone()))
            })
            .collect()
    }

    /// Flush partitions whose unsynced data is older than their `flush.ms`.
    pub fn flush_due(&self) {
        for (topic, p, log) in self.all_partitions() {
            if let Err(e) = log.flush_if_due() {
                tracing::error!(%topic, partition = p, error = %e, "background flush failed");
            }
        }
    }

    /// One retention pass over every partition. Returns segments deleted.
    pub fn run_retention(&self) -> usize {
        let now = now_ms();
        let mut deleted = 0;
        for (topic, p, log) in self.all_partitions() {
            match log.delete_old_segments(now) {
                Ok(n) => deleted += n,
                Err(e) => tracing::error!(%topic, partition = p, error = %e, "retention failed"),
            }
        }
        deleted
    }

    /// One compaction pass over every compacted partition. Returns bytes reclaimed.
    pub fn run_compaction(&self) -> u64 {
        let now = now_ms();
        let mut reclaimed = 0;
        for (topic, p, log) in self.all_partitions() {
            match log.compact(now) {
                Ok(n) => reclaimed += n,
                Err(e) => tracing::error!(%topic, partition = p, error = %e, "compaction failed"),
            }
        }
        reclaimed
    }

    /// Start the background thread that flushes (`flush.ms`), deletes
    /// (`log.retention.check.interval.ms`) and compacts (`log.cleaner.backoff.ms`).
    /// It stops when the returned handle is stopped or dropped.
    pub fn start_maintenance(self: &Arc<Self>) -> Maintenance {
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let store = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name("log-maintenance".into())
            .spawn(move || {
                let tick = Duration::from_millis(50);
                let mut last_retention = Instant::now();
                let mut last_clean = Instant::now();
                while let Err(mpsc::RecvTimeoutError::Timeout) = stop_rx.recv_timeout(tick) {
                    store.flush_due();
                    if last_retention.elapsed() >= store.config.retention_check_interval {
                        last_retention = Instant::now();
                        store.run_retention();
                    }
                    if last_clean.elapsed() >= store.config.cleaner_backoff {
                        last_clean = Instant::now();
                        store.run_compaction();
                    }
                }
            })
            .map(Some)
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "could not start the log maintenance thread");
                None
            });
        Maintenance {
            stop: Some(stop_tx),
            thread,
        }
    }

    /// Flush and close every partition, writing recovery points so the next start
    /// trusts every segment.
    pub fn close(&self) -> Result<(), BrokerError> {
        let mut first_error = None;
        for (topic, p, log) in self.all_partitions() {
            if let Err(e) = log.close() {
                tracing::error!(%topic, partition = p, error = %e, "closing partition");
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

/// The background maintenance thread; stopping it waits for the current pass.
#[derive(Debug)]
pub struct Maintenance {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Maintenance {
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Maintenance {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn describe(topic: &Topic) -> TopicDescription {
    TopicDescription {
        name: topic.meta.name.clone(),
        id: topic.meta.id.clone(),
        partitions: topic
            .partitions
            .iter()
            .enumerate()
            .map(|(i, log)| {
                let LogStats {
                    log_start_offset,
                    log_end_offset,
                    high_watermark,
                    size_bytes,
                    segments,
                } = log.stats();
                PartitionDescription {
                    partition: i as i32,
                    log_start_offset,
                    log_end_offset,
                    high_watermark,
                    size_bytes,
                    segments,
                }
            })
            .collect(),
        overrides: topic.meta.configs.clone(),
    }
}

fn check_partition_count(topic: &str, requested: i32, current: i32) -> Result<(), BrokerError> {
    let reason = if requested < 1 {
        Some("a topic needs at least one partition".to_string())
    } else if requested > MAX_PARTITIONS {
        Some(format!("at most {MAX_PARTITIONS} partitions per topic"))
    } else if current > 0 && requested <= current {
        Some(format!(
            "the topic already has {current} partitions; partitions can only be added"
        ))
    } else {
        None
    };
    match reason {
        Some(reason) => Err(BrokerError::InvalidPartitions {
            topic: topic.to_string(),
            requested,
            reason,
        }),
        None => Ok(()),
    }
}

fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

/// Open a partition's log, making its directory and ownership file if new. A
/// directory owned by another topic id (a deleted topic of the same name) is removed
/// first.
fn open_partition(
    data_dir: &Path,
    meta: &TopicMeta,
    p: i32,
    config: Arc<LogConfig>,
) -> Result<PartitionLog, BrokerError> {
    let dir = partition_dir(data_dir, &meta.name, p);
    if dir.exists() {
        match read_partition_owner(&dir) {
            Some(id) if id == meta.id => {}
            other => {
                tracing::warn!(dir = %dir.display(), owner = ?other, "removing a partition directory left by a deleted topic");
                remove_partition_dir(&dir)?;
            }
        }
    }
    if !dir.exists() {
        std::fs::create_dir_all(&dir).map_err(|e| BrokerError::io(&dir, e))?;
        let path = dir.join(PARTITION_METADATA_FILE);
        std::fs::write(&path, format!("version: 0\ntopic_id: {}\n", meta.id))
            .map_err(|e| BrokerError::io(&path, e))?;
        crate::log::partition::sync_dir(&dir)?;
        crate::log::partition::sync_dir(data_dir)?;
    }
    Ok(PartitionLog::open(dir, config)?)
}

fn read_partition_owner(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA_FILE)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("topic_id:"))
        .map(|s| s.trim().to_string())
}

/// Rename then remove, so a crash midway leaves a `-delete` directory that the next
/// start finishes off rather than a half-deleted partition.
fn remove_partition_dir(dir: &Path) -> Result<(), BrokerError> {
    let mut doomed = dir.as_os_str().to_owned();
    doomed.push(format!(".{}{DELETE_SUFFIX}", new_topic_id()));
    let doomed = PathBuf::from(doomed);
    std::fs::rename(dir, &doomed).map_err(|e| BrokerError::io(dir, e))?;
    std::fs::remove_dir_all(&doomed).map_err(|e| BrokerError::io(&doomed, e))
}

/// Remove `-delete` leftovers and partition directories owned by topics that no longer
/// exist (a crash between the metadata write and the directory removal, or during a
/// create). Directories without our ownership file are left alone with a warning.
fn remove_stale_partition_dirs(
    dir: &Path,
    metas: &[TopicMeta],
    known: &HashMap<String, String>,
) -> Result<(), BrokerError> {
    let ids: std::collections::HashSet<&str> = metas.iter().map(|m| m.id.as_str()).collect();
    for entry in std::fs::read_dir(dir).map_err(|e| BrokerError::io(dir, e))? {
        let entry = entry.map_err(|e| BrokerError::io(dir, e))?;
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        // Hidden directories belong to others (the worker's `.plugin-cache`).
        if name.starts_with('.') {
            continue;
        }
        if name.ends_with(DELETE_SUFFIX) {
            std::fs::remove_dir_all(&path).map_err(|e| BrokerError::io(&path, e))?;
            continue;
        }
        match read_partition_owner(&path) {
            Some(id) if ids.contains(id.as_str()) => {}
            Some(id) => {
                tracing::info!(dir = %path.display(), topic_id = %id, "removing partition of a deleted topic");
                remove_partition_dir(&path)?;
            }
            None => {
                let topic = name.rsplit_once('-').map(|(t, _)| t).unwrap_or(&name);
                if !known.contains_key(topic) {
                    tracing::warn!(dir = %path.display(), "directory in the data dir is not a partition of this broker; leaving it alone");
                }
            }
        }
    }
    Ok(())
}

fn read_metadata(dir: &Path) -> Result<Vec<TopicMeta>, BrokerError> {
    let path = dir.join(METADATA_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BrokerError::io(&path, e)),
    };
    let file: MetadataFile = serde_json::from_str(&text).map_err(|e| BrokerError::Metadata {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if file.version != 1 {
        return Err(BrokerError::Metadata {
            path,
            reason: format!(
                "version {} is newer than this broker understands (1)",
                file.version
            ),
        });
    }
    Ok(file.topics)
}

fn write_metadata(dir: &Path, mut topics: Vec<TopicMeta>) -> Result<(), BrokerError> {
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let path = dir.join(METADATA_FILE);
    let tmp = dir.join(format!("{METADATA_FILE}.tmp"));
    let text = serde_json::to_string_pretty(&MetadataFile { version: 1, topics })
        .map_err(|e| BrokerError::io(&path, std::io::Error::other(e)))?;
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| BrokerError::io(&path, e))?;
    crate::log::partition::sync_dir(dir)?;
    Ok(())
}

/// A random topic id in Kafka's text form: 16 random bytes, URL-safe base64, no
/// padding.
pub(crate) fn new_topic_id() -> String {
    let mut bytes = [0u8; 16];
    let filled = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if filled.is_err() {
        // No urandom: fall back to time and address entropy; uniqueness is what matters.
        let t =
            now_ms() as u128 ^ (std::process::id() as u128) << 64 ^ (&bytes as *const _ as u128);
        bytes = t.to_le_bytes();
    }
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::BatchBuilder;
    use crate::log::compression::Compression;

    fn store(dir: &Path) -> TopicStore {
        TopicStore::open(BrokerConfig::new(dir)).unwrap()
    }

    fn one_record(value: &[u8]) -> Vec<u8> {
        let mut b = BatchBuilder::new(Compression::None);
        b.push(now_ms(), Some(b"k"), Some(value), &[]);
        b.build().unwrap()
    }

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn topic_names_are_checked_like_kafka() {
        for ok in ["orders", "a.b-c_D9", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            (".", "'.'"),
            ("..", "'.'"),
            ("has space", "' '"),
            ("slash/y", "'/'"),
            ("ünï", "'ü'"),
        ] {
            let err = validate_topic_name(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let long = "x".repeat(250);
        assert!(
            validate_topic_name(&long)
                .unwrap_err()
                .to_string()
                .contains("249")
        );
    }

    #[test]
    fn topics_persist_across_restarts_with_their_data() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = store(dir.path());
            let d = s
                .create_topic("orders", Some(3), configs(&[("retention.ms", "1000")]))
                .unwrap();
            assert_eq!(d.partitions.len(), 3);
            s.partition("orders", 2)
                .unwrap()
                .append(&one_record(b"v"))
                .unwrap();
            assert!(matches!(
                s.create_topic("orders", Some(1), BTreeMap::new()),
                Err(BrokerError::TopicExists(_))
            ));
            assert!(matches!(
                s.create_topic("orders_x", Some(0), BTreeMap::new()),
                Err(BrokerError::InvalidPartitions { .. })
            ));
            let err = s
                .create_topic("bad", Some(1), configs(&[("segment.bytes", "huge")]))
                .unwrap_err()
                .to_string();
            assert!(err.contains("segment.bytes"), "{err}");
            assert!(
                s.list_topics() == vec!["orders".to_string()],
                "failed creates leave nothing"
            );
            s.close().unwrap();
        }
        let s = store(dir.path());
        assert_eq!(s.list_topics(), vec!["orders".to_string()]);
        let d = s.describe_topic("orders").unwrap();
        assert_eq!(d.partitions[2].log_end_offset, 1);
        assert_eq!(
            d.overrides.get("retention.ms").map(String::as_str),
            Some("1000")
        );
        let cfgs = s.topic_configs("orders").unwrap();
        assert!(cfgs.contains(&("retention.ms", "1000".to_string(), false)));
        assert!(cfgs.contains(&("cleanup.policy", "delete".to_string(), true)));
    }

    #[test]
    fn the_data_dir_is_locked_while_open() {
        let dir = tempfile::tempdir().unwrap();
        let _s = store(dir.path());
        let err = TopicStore::open(BrokerConfig::new(dir.path())).unwrap_err();
        assert!(matches!(err, BrokerError::DataDirLocked { .. }), "{err}");
    }

    #[test]
    fn delete_add_partitions_and_alter_configs() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.create_topic("t", Some(1), BTreeMap::new()).unwrap();
        s.partition("t", 0)
            .unwrap()
            .append(&one_record(b"old"))
            .unwrap();
        assert!(s.create_topic("t.x", Some(1), BTreeMap::new()).is_ok());
        let err = s
            .create_topic("t_x", Some(1), BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("collides"), "{err}");

        assert_eq!(s.add_partitions("t", 4).unwrap().partitions.len(), 4);
        assert!(matches!(
            s.add_partitions("t", 2),
            Err(BrokerError::InvalidPartitions { .. })
        ));
        assert!(s.partition("t", 3).is_some());

        s.set_topic_configs("t", configs(&[("cleanup.policy", "compact")]))
            .unwrap();
        assert!(
            s.partition("t", 1)
                .unwrap()
                .config()
                .cleanup_policy
                .compacts()
        );

        s.delete_topic("t").unwrap();
        assert!(matches!(
            s.delete_topic("t"),
            Err(BrokerError::UnknownTopic(_))
        ));
        assert!(!dir.path().join("t-0").exists());
        // A new topic of the same name starts empty.
        s.create_topic("t", Some(1), BTreeMap::new()).unwrap();
        assert_eq!(s.partition("t", 0).unwrap().log_end_offset(), 0);
    }

    #[test]
    fn leftovers_of_an_interrupted_delete_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = store(dir.path());
            s.create_topic("gone", Some(2), BTreeMap::new()).unwrap();
            s.create_topic("kept", Some(1), BTreeMap::new()).unwrap();
            s.close().unwrap();
        }
        // Simulate a crash after topics.json dropped "gone" but before its directories went.
        let text = std::fs::read_to_string(dir.path().join(METADATA_FILE)).unwrap();
        let mut file: MetadataFile = serde_json::from_str(&text).unwrap();
        file.topics.retain(|t| t.name != "gone");
        write_metadata(dir.path(), file.topics).unwrap();
        std::fs::create_dir_all(dir.path().join("x-1-delete")).unwrap();
        std::fs::create_dir_all(dir.path().join("not-ours")).unwrap();
        let s = store(dir.path());
        assert_eq!(s.list_topics(), vec!["kept".to_string()]);
        assert!(!dir.path().join("gone-0").exists());
        assert!(!dir.path().join("gone-1").exists());
        assert!(!dir.path().join("x-1-delete").exists());
        assert!(
            dir.path().join("not-ours").exists(),
            "foreign directories are left alone"
        );
        assert!(dir.path().join("kept-0").exists());
    }

    #[test]
    fn retention_and_compaction_run_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(store(dir.path()));
        s.create_topic(
            "logs",
            Some(1),
            configs(&[("segment.bytes", "200"), ("retention.ms", "1000")]),
        )
        .unwrap();
        s.create_topic(
            "state",
            Some(1),
            configs(&[("segment.bytes", "200"), ("cleanup.policy", "compact")]),
        )
        .unwrap();
        let old = {
            let mut b = BatchBuilder::new(Compression::None);
            b.push(now_ms() - 10_000, Some(b"k"), Some(&[7u8; 150]), &[]);
            b.build().unwrap()
        };
        for _ in 0..5 {
            s.partition("logs", 0).unwrap().append(&old).unwrap();
            s.partition("state", 0)
                .unwrap()
                .append(&one_record(&[1u8; 150]))
                .unwrap();
        }
        assert!(s.run_retention() >= 4);
        assert_eq!(s.partition("logs", 0).unwrap().stats().segments, 1);
        assert!(s.run_compaction() > 0);
        let state = s.partition("state", 0).unwrap().stats();
        assert_eq!(state.log_end_offset, 5);
        // Only the latest record of the closed segments and the active segment remain.
        assert_eq!(state.segments, 2, "{state:?}");
        assert!(state.size_bytes < 500, "{state:?}");
        let id = new_topic_id();
        assert_eq!(id.len(), 22);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
}
