//! No-op connectors, built with the plugin SDK like every connector Tributary ships:
//!
//! - `NoopSource` (`io.tributary.connect.noop.NoopSourceConnector`): each task emits
//!   synthetic records of a fixed size (100 bytes by default) in batches, tracking a source
//!   offset per task;
//! - `NoopSink` (`io.tributary.connect.noop.NoopSinkConnector`): counts what it is given
//!   and answers, at pre-commit, the offsets after the last record it counted.
//!
//! They exist to test the plugin boundary and to measure it: with nothing else to do, the
//! cost of a record is the cost of crossing. `noop.panic.on` and `noop.fail.on` make a
//! chosen call panic or fail (retriably), to test how the worker isolates a faulty plugin.

pub mod config;
pub mod sink;
pub mod source;

pub use sink::{NoopSink, NoopSinkTask};
pub use source::{NoopSource, NoopSourceTask};

tributary_plugin_sdk::export_plugin! {
    sources: [NoopSource],
    sinks: [NoopSink],
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_plugin_sdk::testing::{HarnessError, SinkHarness, SourceHarness, config};
    use tributary_plugin_sdk::{Data, Offsets, SinkRecord, TopicPartition, Value};

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
            assert_eq!(r.source_partition["task"], Value::Int32(1));
            assert_eq!(r.source_offset["seq"], Value::Int64(seq as i64 + 1));
        }
        assert_eq!(h.poll(0).unwrap().len(), 3, "tasks are independent");
        h.commit(0).unwrap();
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
}
