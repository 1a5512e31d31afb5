//! No-op connectors, built with the plugin SDK like every connector Tributary ships:
//!
//! - `NoopSource` (`io.tributary.connect.noop.NoopSourceConnector`): each task emits
//!   synthetic records of a fixed size (100 bytes by default) in batches, tracking a source
//!   offset per task;
//! - `NoopSink` (`io.tributary.connect.noop.NoopSinkConnector`): counts what it is given
//!   and answers, at pre-commit, the offsets after the last record it counted.
//!
//! They exist to test the plugin boundary and to measure it: with nothing else to do, a
//! record costs what making it in the SDK's data model costs, and crossing adds what the
//! boundary costs ([`bench`] is the in-process side of `tributary bench plugin`).
//! `noop.panic.on` and `noop.fail.on` make a chosen call panic or fail (retriably), to test
//! how the worker isolates a faulty plugin.
//!
//! `NoopTransform` and `ValueContains` ([`transform`]) are a transformation and a predicate
//! from a plugin, for the worker's tests of plugin transforms.
//!
//! They also exercise the worker's side of the contexts: a source task resumes from the
//! committed offset of its partition; `noop.request.reconfiguration` and `noop.raise.error`
//! make a connector call its context from a thread of its own; `noop.pause.after.records`
//! and `noop.start.offset` make a sink task pause, resume, request commits and move its
//! consumer position.

pub mod bench;
pub mod config;
pub mod context;
pub mod sink;
pub mod source;
pub mod transform;

pub use sink::{NoopSink, NoopSinkTask};
pub use source::{NoopSource, NoopSourceTask};
pub use transform::{NoopTransform, ValueContains};

tributary_plugin_sdk::export_plugin! {
    sources: [NoopSource],
    sinks: [NoopSink],
    transforms: [NoopTransform],
    predicates: [ValueContains],
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};
    use tributary_plugin_sdk::testing::{
        HarnessError, HostFault, SinkHarness, SourceHarness, config,
    };
    use tributary_plugin_sdk::{Data, OffsetMap, Offsets, SinkRecord, TopicPartition, Value};

    fn task_partition(task: i32) -> OffsetMap {
        [("task".to_owned(), Value::Int32(task))].into()
    }

    fn seq(next: i64) -> OffsetMap {
        [("seq".to_owned(), Value::Int64(next))].into()
    }

    fn first_seq(records: &[tributary_plugin_sdk::SourceRecord]) -> u64 {
        let Value::Bytes(b) = &records[0].value.value else {
            panic!("{records:?}")
        };
        u64::from_le_bytes(b[..8].try_into().unwrap())
    }

    #[test]
    fn source_tasks_emit_numbered_records_with_offsets() {
        let mut h = SourceHarness::<NoopSource>::start(
            config(&[
                ("noop.topic", "t"),
                ("noop.records.per.poll", "3"),
                ("noop.max.records", "5"),
            ]),
            2,
        )
        .unwrap();
        assert_eq!(h.task_count(), 2);
        assert_eq!(h.task_configs()[1]["noop.task.id"], "1");
        let first = h.poll(1).unwrap();
        let second = h.poll(1).unwrap();
        assert_eq!((first.len(), second.len()), (3, 2));
        assert!(h.poll(1).unwrap().is_empty(), "max.records reached");
        for (seq, r) in first.iter().chain(&second).enumerate() {
            assert_eq!(r.topic, "t");
            let Value::Bytes(b) = &r.value.value else {
                panic!("{r:?}")
            };
            assert_eq!(b.len(), 100);
            assert_eq!(b[..8], (seq as u64).to_le_bytes());
        }
        // Positions cross per batch: the offset after the last record of task 1.
        h.commit(1).unwrap();
        assert_eq!(h.committed_offset(&task_partition(1)), Some(seq(5)));
        assert_eq!(h.poll(0).unwrap().len(), 3, "tasks are independent");
        h.commit(0).unwrap();
        assert_eq!(h.committed_offset(&task_partition(0)), Some(seq(3)));
        h.stop().unwrap();
    }

    #[test]
    fn invalid_configs_are_refused_with_their_keys() {
        let v = SourceHarness::<NoopSource>::validate(&config(&[
            ("noop.records.per.poll", "0"),
            ("noop.panic.on", "sometimes"),
        ]))
        .unwrap();
        let bad: Vec<_> = v
            .iter()
            .filter(|v| !v.errors.is_empty())
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(bad, ["noop.records.per.poll", "noop.panic.on"]);
        let err = SourceHarness::<NoopSource>::start(config(&[("noop.record.bytes", "x")]), 1)
            .unwrap_err();
        assert!(err.to_string().contains("noop.record.bytes"), "{err}");
    }

    #[test]
    fn sink_counts_and_answers_its_position() {
        let mut h = SinkHarness::<NoopSink>::start(config(&[]), 1).unwrap();
        let tp = TopicPartition::new("t", 0);
        h.open(0, std::slice::from_ref(&tp)).unwrap();
        let batch = (10..15)
            .map(|o| SinkRecord::new("t", 0, o, Data::bytes(vec![0; 100])))
            .collect();
        h.put(0, batch).unwrap();
        let offered: Offsets = [(tp.clone(), 20), (TopicPartition::new("t", 1), 3)].into();
        let answer = h.pre_commit(0, offered).unwrap();
        assert_eq!(answer, Offsets::from([(tp.clone(), 15)]));
        h.close(0, &[tp]).unwrap();
        h.stop().unwrap();
    }

    #[test]
    fn sink_positions_follow_each_partition_in_a_mixed_batch() {
        let mut h = SinkHarness::<NoopSink>::start(config(&[]), 1).unwrap();
        let (a, b) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
        h.open(0, &[a.clone(), b.clone()]).unwrap();
        let batch = [(&a, 10), (&a, 11), (&b, 5), (&a, 12), (&a, 3), (&b, 4)]
            .into_iter()
            .map(|(tp, o)| SinkRecord::new(tp.topic.clone(), tp.partition, o, Data::null()))
            .collect();
        h.put(0, batch).unwrap();
        let offered: Offsets = [(a.clone(), 100), (b.clone(), 100)].into();
        let answer = h.pre_commit(0, offered).unwrap();
        assert_eq!(
            answer,
            Offsets::from([(a, 13), (b, 6)]),
            "the highest per partition"
        );
        h.stop().unwrap();
    }

    #[test]
    fn faults_are_injected_where_asked() {
        let mut h =
            SourceHarness::<NoopSource>::start(config(&[("noop.panic.on", "poll")]), 1).unwrap();
        match h.poll(0) {
            Err(HarnessError::Panicked(m)) => {
                assert!(m.contains("noop: panic requested in poll"), "{m}")
            }
            other => panic!("expected a panic, got {other:?}"),
        }
        let mut h = SinkHarness::<NoopSink>::start(config(&[("noop.fail.on", "put")]), 1).unwrap();
        let err = h.put(0, Vec::new()).unwrap_err();
        assert_eq!(
            err,
            HarnessError::Failed {
                retriable: true,
                message: "noop: failure requested in put (noop.fail.on=put)".into()
            }
        );
    }

    #[test]
    fn source_tasks_resume_from_their_committed_offsets() {
        let mut h = SourceHarness::<NoopSource>::start_with_offsets(
            config(&[("noop.records.per.poll", "2")]),
            2,
            [(task_partition(1), seq(40))],
        )
        .unwrap();
        assert_eq!(
            first_seq(&h.poll(0).unwrap()),
            0,
            "nothing committed for task 0"
        );
        let records = h.poll(1).unwrap();
        assert_eq!(first_seq(&records), 40);
        h.commit(1).unwrap();
        assert_eq!(h.committed_offset(&task_partition(1)), Some(seq(42)));
        h.restart_task(1).unwrap();
        assert_eq!(first_seq(&h.poll(1).unwrap()), 42);

        let bad = [("seq".to_owned(), Value::from("forty"))].into();
        let err = SourceHarness::<NoopSource>::start_with_offsets(
            config(&[]),
            1,
            [(task_partition(0), bad)],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("delete the connector's offsets"),
            "{err}"
        );
    }

    #[test]
    fn connectors_call_their_context_from_their_own_thread() {
        let h = SourceHarness::<NoopSource>::start(
            config(&[
                ("noop.request.reconfiguration", "true"),
                ("noop.raise.error", "the source vanished"),
            ]),
            1,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while h.raised_errors().is_empty() {
            assert!(
                Instant::now() < deadline,
                "the connector's thread never called"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(h.reconfiguration_requests(), 1);
        assert_eq!(h.raised_errors(), ["the source vanished"]);
        h.stop().unwrap();
    }

    #[test]
    fn sink_tasks_rewind_pause_and_resume_through_their_context() {
        let mut h = SinkHarness::<NoopSink>::start(
            config(&[
                ("noop.pause.after.records", "3"),
                ("noop.start.offset", "5"),
            ]),
            1,
        )
        .unwrap();
        let (t0, t1) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
        h.open(0, &[t0.clone(), t1.clone()]).unwrap();
        assert_eq!(
            h.requests(0).offsets,
            Offsets::from([(t0.clone(), 5), (t1.clone(), 5)])
        );
        let batch = |from: i64, n: i64| {
            (from..from + n)
                .map(|o| SinkRecord::new("t", 0, o, Data::bytes(vec![0; 10])))
                .collect::<Vec<_>>()
        };
        h.put(0, batch(5, 2)).unwrap();
        assert!(h.requests(0).paused.is_empty());
        h.put(0, batch(7, 1)).unwrap();
        let r = h.requests(0);
        assert_eq!(r.paused, [t0.clone(), t1.clone()].into());
        assert_eq!(r.commit_requests, 1);
        let committable = h.pre_commit(0, Offsets::from([(t0.clone(), 8)])).unwrap();
        assert_eq!(committable, Offsets::from([(t0.clone(), 8)]));
        assert!(h.requests(0).paused.is_empty(), "resumed at the commit");

        // A worker that refuses is the task's error, not a crash.
        h.set_host_fault(Some(HostFault::Retriable("rebalancing".into())));
        let err = h.put(0, batch(8, 3)).unwrap_err();
        assert!(
            matches!(&err, HarnessError::Failed { retriable: true, message } if message.contains("rebalancing")),
            "{err:?}"
        );
        h.set_host_fault(None);
        h.stop().unwrap();
    }
}
