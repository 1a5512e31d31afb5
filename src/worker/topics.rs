//! KIP-558's active topics: the topics each connector's tasks actually produced to or
//! consumed from, kept in the status topic (`status-topic-TOPIC:connector-NAME`, see
//! [`super::store`]) so that `GET /connectors/NAME/topics` answers them after a restart.
//!
//! [`TopicTracker`] is the worker's record (memory plus the status topic); each task
//! thread holds a [`TaskTopics`], a set of the topics it already reported. A task calls
//! [`TaskTopics::record`] once per batch: records run in long stretches of one topic, so
//! the batch costs one string comparison per record and one hash lookup per stretch;
//! only a topic new to the connector takes the tracker's lock and a durable write.
//!
//! Worker keys: `topic.tracking.enable` (default true; false turns recording off and the
//! endpoints answer 403) and `topic.tracking.allow.reset` (default true; false makes
//! `PUT .../topics/reset` answer 403), as in Kafka Connect.
//!
//! What this is not: it does not know what a record is or how tasks run; tasks hand it
//! topic names.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::WorkerError;
use super::store::StatusStore;

/// `topic.tracking.enable` and `topic.tracking.allow.reset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackingSettings {
    pub enabled: bool,
    pub allow_reset: bool,
}

impl TrackingSettings {
    /// Read both keys from the worker's properties (Kafka's defaults: both true).
    pub fn from_props(props: &BTreeMap<String, String>) -> Result<TrackingSettings, WorkerError> {
        let flag = |key: &str| -> Result<bool, WorkerError> {
            match props.get(key).map(|v| v.trim().to_ascii_lowercase()) {
                None => Ok(true),
                Some(v) if v == "true" => Ok(true),
                Some(v) if v == "false" => Ok(false),
                Some(v) => Err(WorkerError::Config {
                    key: key.to_owned(),
                    value: v,
                    reason: "expected true or false".to_owned(),
                }),
            }
        };
        Ok(TrackingSettings {
            enabled: flag("topic.tracking.enable")?,
            allow_reset: flag("topic.tracking.allow.reset")?,
        })
    }
}

/// Every connector's active topics.
#[derive(Debug)]
pub struct TopicTracker {
    settings: TrackingSettings,
    store: StatusStore,
    /// connector → topics. Changed only together with the status topic, under this lock,
    /// so a record and a reset reach the topic in the order they happen here.
    active: Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// Bumped by every reset, so that tasks forget what they reported before it.
    resets: AtomicU64,
}

impl TopicTracker {
    /// Read the active topics from the status topic (nothing when tracking is off).
    pub fn load(
        store: StatusStore,
        settings: TrackingSettings,
    ) -> Result<TopicTracker, WorkerError> {
        let active = if settings.enabled {
            store
                .load_topics()?
                .into_iter()
                .map(|(connector, topics)| (connector, topics.into_keys().collect()))
                .collect()
        } else {
            BTreeMap::new()
        };
        Ok(TopicTracker {
            settings,
            store,
            active: Mutex::new(active),
            resets: AtomicU64::new(0),
        })
    }

    pub fn settings(&self) -> TrackingSettings {
        self.settings
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, BTreeSet<String>>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What one task reports through (a no-op when tracking is off).
    pub fn task(self: &Arc<Self>, connector: &str, task: usize) -> TaskTopics {
        TaskTopics {
            tracker: self.settings.enabled.then(|| self.clone()),
            connector: connector.to_owned(),
            task,
            seen: HashSet::new(),
            resets: self.resets.load(Ordering::Acquire),
        }
    }

    fn check_enabled(&self) -> Result<(), WorkerError> {
        if self.settings.enabled {
            Ok(())
        } else {
            // Kafka's message, word for word.
            Err(WorkerError::Forbidden(
                "Topic tracking is disabled.".to_owned(),
            ))
        }
    }

    /// `connector`'s active topics, sorted.
    pub fn topics(&self, connector: &str) -> Result<Vec<String>, WorkerError> {
        self.check_enabled()?;
        Ok(self
            .lock()
            .get(connector)
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default())
    }

    /// Forget `connector`'s active topics (tombstones in the status topic); its running
    /// tasks report again the topics they use from now on.
    pub fn reset(&self, connector: &str) -> Result<(), WorkerError> {
        self.check_enabled()?;
        if !self.settings.allow_reset {
            return Err(WorkerError::Forbidden(
                "Topic tracking reset is disabled.".to_owned(),
            ));
        }
        self.clear(connector)
    }

    /// Forget a deleted connector's active topics (whatever `allow.reset` says).
    pub fn forget(&self, connector: &str) -> Result<(), WorkerError> {
        if !self.settings.enabled {
            return Ok(());
        }
        self.clear(connector)
    }

    fn clear(&self, connector: &str) -> Result<(), WorkerError> {
        let mut active = self.lock();
        let topics: Vec<String> = active
            .get(connector)
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        self.store.delete_topics(connector, &topics)?;
        active.remove(connector);
        self.resets.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Record `topic` for `connector` if it is new; answers whether it is now recorded.
    fn record(&self, connector: &str, topic: &str, task: usize) -> bool {
        let mut active = self.lock();
        if active.get(connector).is_some_and(|t| t.contains(topic)) {
            return true;
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        match self.store.put_topic(connector, topic, task, now_ms) {
            Ok(()) => {
                active
                    .entry(connector.to_owned())
                    .or_default()
                    .insert(topic.to_owned());
                tracing::debug!(connector, task, topic, "new active topic");
                true
            }
            Err(e) => {
                // Tried again with the task's next batch of that topic.
                tracing::warn!(connector, task, topic, error = %e, "could not record an active topic");
                false
            }
        }
    }
}

/// One task's view of the tracker: the topics it has already reported.
#[derive(Debug)]
pub struct TaskTopics {
    tracker: Option<Arc<TopicTracker>>,
    connector: String,
    task: usize,
    seen: HashSet<String>,
    /// The tracker's reset count when `seen` was last valid.
    resets: u64,
}

impl TaskTopics {
    /// Report the topics of one batch of records, in record order.
    pub fn record<'a>(&mut self, topics: impl IntoIterator<Item = &'a str>) {
        let Some(tracker) = &self.tracker else {
            return;
        };
        let resets = tracker.resets.load(Ordering::Acquire);
        if resets != self.resets {
            self.seen.clear();
            self.resets = resets;
        }
        let mut last: Option<&str> = None;
        for topic in topics {
            if last == Some(topic) {
                continue;
            }
            last = Some(topic);
            if self.seen.contains(topic) {
                continue;
            }
            if tracker.record(&self.connector, topic, self.task) {
                self.seen.insert(topic.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::server::{BrokerSettings, RunningBroker};
    use crate::client::Client;
    use crate::worker::store::TopicLog;

    const ON: TrackingSettings = TrackingSettings {
        enabled: true,
        allow_reset: true,
    };

    /// How many records the status topic holds (each write is one record).
    fn records(log: &TopicLog) -> usize {
        log.read_all().unwrap().len()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recorded_once_reset_by_tombstones_and_reloaded() {
        let tmp = tempfile::tempdir().unwrap();
        let mut settings = BrokerSettings::new(tmp.path().join("data"));
        settings.serve = false;
        let broker = RunningBroker::start(settings).await.unwrap();
        let client = Client::embedded(broker.broker.clone(), tokio::runtime::Handle::current());
        tokio::task::spawn_blocking(move || {
            let log = TopicLog::open(&client, "connect-status", 1, "status.storage.topic", false)
                .unwrap();
            let store = StatusStore::new(log.clone(), "w:1");
            let tracker = Arc::new(TopicTracker::load(store.clone(), ON).unwrap());
            let mut t0 = tracker.task("c", 0);
            let mut t1 = tracker.task("c", 1);
            t0.record(["a", "a", "b", "a"]);
            t1.record(["b", "b"]);
            t0.record(["a", "b"]);
            assert_eq!(tracker.topics("c").unwrap(), ["a", "b"]);
            assert_eq!(records(&log), 2, "one record per topic of the connector");

            tracker.reset("c").unwrap();
            assert!(tracker.topics("c").unwrap().is_empty());
            assert_eq!(records(&log), 4, "two tombstones");
            // Tasks report again what they use after a reset.
            t1.record(["b"]);
            assert_eq!(tracker.topics("c").unwrap(), ["b"]);
            let raw = log.read_all().unwrap();
            let (key, value) = raw.last().unwrap();
            assert_eq!(key.as_deref(), Some(&b"status-topic-b:connector-c"[..]));
            let value: serde_json::Value =
                serde_json::from_slice(value.as_deref().unwrap()).unwrap();
            assert_eq!(value["topic"]["name"], "b");
            assert_eq!(value["topic"]["connector"], "c");
            assert_eq!(value["topic"]["task"], 1);
            assert!(value["topic"]["discoverTimestamp"].as_i64().unwrap() > 0);

            // A restarted worker reads the same.
            let reloaded = TopicTracker::load(store.clone(), ON).unwrap();
            assert_eq!(reloaded.topics("c").unwrap(), ["b"]);

            let no_reset = TopicTracker::load(
                store.clone(),
                TrackingSettings {
                    allow_reset: false,
                    ..ON
                },
            )
            .unwrap();
            assert!(matches!(
                no_reset.reset("c"),
                Err(WorkerError::Forbidden(_))
            ));
            let off = Arc::new(
                TopicTracker::load(
                    store,
                    TrackingSettings {
                        enabled: false,
                        allow_reset: true,
                    },
                )
                .unwrap(),
            );
            assert!(matches!(off.topics("c"), Err(WorkerError::Forbidden(_))));
            off.task("c", 0).record(["z"]);
            assert_eq!(records(&log), 5, "nothing recorded with tracking off");
        })
        .await
        .unwrap();
        broker.stop().await.unwrap();
    }

    #[test]
    fn settings_from_worker_props() {
        let props = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(TrackingSettings::from_props(&props(&[])).unwrap(), ON);
        let off = TrackingSettings::from_props(&props(&[
            ("topic.tracking.enable", "FALSE"),
            ("topic.tracking.allow.reset", "false"),
        ]))
        .unwrap();
        assert!(!off.enabled && !off.allow_reset);
        let err =
            TrackingSettings::from_props(&props(&[("topic.tracking.enable", "yes")])).unwrap_err();
        assert!(err.to_string().contains("topic.tracking.enable"), "{err}");
    }
}
