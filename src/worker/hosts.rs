//! The worker's side of the plugin contexts: what a connector or task asks the worker
//! while it runs (Kafka Connect's `ConnectorContext`, `SourceTaskContext`'s offset
//! reader, `SinkTaskContext`). Callbacks only record or read; the herder and the task
//! loops act on what was recorded, so a callback never blocks on the task that made it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tributary_plugin_abi::record::{OffsetMap, Offsets, TopicPartition};

use super::store::OffsetStore;
use super::task::{offset_json, offset_map};
use crate::plugin::{ConnectorHost, HostError, SinkTaskHost, SourceTaskHost};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connector's requests, collected for the herder.
#[derive(Debug, Default)]
pub struct ConnectorRequests {
    reconfigure: AtomicBool,
    error: Mutex<Option<String>>,
}

impl ConnectorRequests {
    /// Whether a task reconfiguration was requested since the last call.
    pub fn take_reconfigure(&self) -> bool {
        self.reconfigure.swap(false, Ordering::AcqRel)
    }

    /// The error the connector raised, if any, since the last call.
    pub fn take_error(&self) -> Option<String> {
        lock(&self.error).take()
    }
}

impl ConnectorHost for ConnectorRequests {
    fn request_task_reconfiguration(&self) -> Result<(), HostError> {
        self.reconfigure.store(true, Ordering::Release);
        Ok(())
    }

    fn raise_error(&self, message: &str) -> Result<(), HostError> {
        *lock(&self.error) = Some(message.to_owned());
        Ok(())
    }
}

/// The offset reader of one source connector's tasks.
#[derive(Debug)]
pub struct SourceOffsets {
    pub connector: String,
    pub store: Arc<Mutex<OffsetStore>>,
}

impl SourceTaskHost for SourceOffsets {
    fn offsets(&self, partitions: &[OffsetMap]) -> Result<Vec<Option<OffsetMap>>, HostError> {
        let store = lock(&self.store);
        Ok(partitions
            .iter()
            .map(|p| {
                store
                    .get(&self.connector, &offset_json(p))
                    .and_then(offset_map)
            })
            .collect())
    }
}

/// A sink task's requests, drained by its loop after every call into the task.
#[derive(Debug, Default)]
pub struct SinkRequests {
    state: Mutex<SinkRequestState>,
    /// Errant records reported: partition, offset, message.
    reported: Mutex<Vec<(TopicPartition, i64, String)>>,
    assignment: Mutex<Vec<TopicPartition>>,
}

/// What a sink task asked for since the last drain.
#[derive(Debug, Default)]
pub struct SinkRequestState {
    pub pause: Vec<TopicPartition>,
    pub resume: Vec<TopicPartition>,
    pub offsets: BTreeMap<TopicPartition, i64>,
    pub commit: bool,
}

impl SinkRequests {
    pub fn drain(&self) -> SinkRequestState {
        std::mem::take(&mut *lock(&self.state))
    }

    /// The errant records reported since the last call.
    pub fn take_reported(&self) -> Vec<(TopicPartition, i64, String)> {
        std::mem::take(&mut *lock(&self.reported))
    }

    pub fn set_assignment(&self, partitions: Vec<TopicPartition>) {
        *lock(&self.assignment) = partitions;
    }
}

impl SinkTaskHost for SinkRequests {
    fn pause(&self, partitions: &[TopicPartition]) -> Result<(), HostError> {
        lock(&self.state).pause.extend_from_slice(partitions);
        Ok(())
    }

    fn resume(&self, partitions: &[TopicPartition]) -> Result<(), HostError> {
        lock(&self.state).resume.extend_from_slice(partitions);
        Ok(())
    }

    fn offset(&self, offsets: &Offsets) -> Result<(), HostError> {
        lock(&self.state)
            .offsets
            .extend(offsets.iter().map(|(tp, o)| (tp.clone(), *o)));
        Ok(())
    }

    fn request_commit(&self) -> Result<(), HostError> {
        lock(&self.state).commit = true;
        Ok(())
    }

    fn assignment(&self) -> Result<Vec<TopicPartition>, HostError> {
        Ok(lock(&self.assignment).clone())
    }

    fn report(
        &self,
        partition: &TopicPartition,
        offset: i64,
        message: &str,
    ) -> Result<(), HostError> {
        lock(&self.reported).push((partition.clone(), offset, message.to_owned()));
        Ok(())
    }
}
