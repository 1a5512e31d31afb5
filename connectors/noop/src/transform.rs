//! `NoopTransform` and `ValueContains`: a transformation and a predicate exported beside the
//! no-op connectors, to test transforms from plugins end to end.
//!
//! - `NoopTransform` (`io.tributary.connect.noop.NoopTransform`) appends `noop.suffix` to
//!   text values and `noop.topic.suffix` to topics; it drops records whose text value is
//!   `noop.drop.on`, fails (an error) on `noop.fail.on` and panics on `noop.panic.on`, so
//!   the worker's handling of a faulty transform can be tested.
//! - `ValueContains` (`io.tributary.connect.noop.ValueContains`) matches records whose text
//!   value contains `noop.pattern`.

use tributary_plugin_sdk::{
    Config, ConfigDef, ConfigKey, ConnectError, ConnectRecord, Predicate, Result, Transformation,
    Validator, Value,
};

/// A text value's content (a string, or UTF-8 bytes), if the record has one.
fn text(r: &ConnectRecord) -> Option<&str> {
    match &r.value().value {
        Value::String(s) => Some(s),
        Value::Bytes(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

#[derive(Debug, Default)]
pub struct NoopTransform {
    suffix: String,
    topic_suffix: String,
    drop_on: Option<String>,
    fail_on: Option<String>,
    panic_on: Option<String>,
}

impl Transformation for NoopTransform {
    const NAME: &'static str = "io.tributary.connect.noop.NoopTransform";

    fn config_def() -> ConfigDef {
        ConfigDef::new()
            .define(
                ConfigKey::string("noop.suffix")
                    .default("")
                    .doc("Appended to every text value."),
            )
            .define(
                ConfigKey::string("noop.topic.suffix")
                    .default("")
                    .doc("Appended to every topic."),
            )
            .define(
                ConfigKey::string("noop.drop.on")
                    .optional()
                    .doc("Drop records whose text value is this."),
            )
            .define(
                ConfigKey::string("noop.fail.on")
                    .optional()
                    .doc("Fail on records whose text value is this."),
            )
            .define(
                ConfigKey::string("noop.panic.on")
                    .optional()
                    .doc("Panic on records whose text value is this (to test isolation)."),
            )
    }

    fn configure(&mut self, config: Config) -> Result<()> {
        let opt = |k: &str| config.string(k).map(str::to_owned);
        self.suffix = opt("noop.suffix").unwrap_or_default();
        self.topic_suffix = opt("noop.topic.suffix").unwrap_or_default();
        self.drop_on = opt("noop.drop.on");
        self.fail_on = opt("noop.fail.on");
        self.panic_on = opt("noop.panic.on");
        Ok(())
    }

    fn apply(&mut self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        if let Some(t) = text(&record) {
            if self.panic_on.as_deref() == Some(t) {
                panic!("noop transform asked to panic on {t:?}");
            }
            if self.fail_on.as_deref() == Some(t) {
                return Err(ConnectError::new(format!(
                    "noop transform asked to fail on {t:?}"
                )));
            }
            if self.drop_on.as_deref() == Some(t) {
                return Ok(None);
            }
            let changed = format!("{t}{}", self.suffix);
            record.value_mut().value = match &record.value().value {
                Value::Bytes(_) => Value::Bytes(changed.into_bytes()),
                _ => Value::String(changed),
            };
        }
        if !self.topic_suffix.is_empty() {
            let topic = format!("{}{}", record.topic(), self.topic_suffix);
            record.set_topic(topic);
        }
        Ok(Some(record))
    }
}

#[derive(Debug, Default)]
pub struct ValueContains {
    pattern: String,
}

impl Predicate for ValueContains {
    const NAME: &'static str = "io.tributary.connect.noop.ValueContains";

    fn config_def() -> ConfigDef {
        ConfigDef::new().define(
            ConfigKey::string("noop.pattern")
                .validator(Validator::non_empty())
                .doc("Matches records whose text value contains this."),
        )
    }

    fn configure(&mut self, config: Config) -> Result<()> {
        self.pattern = config.string("noop.pattern").unwrap_or_default().to_owned();
        Ok(())
    }

    fn test(&mut self, record: &ConnectRecord) -> bool {
        text(record).is_some_and(|t| t.contains(&self.pattern))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_plugin_sdk::testing::{HarnessError, PredicateHarness, TransformHarness, config};
    use tributary_plugin_sdk::{Data, SinkRecord, SourceRecord};

    fn source(topic: &str, v: &str) -> ConnectRecord {
        ConnectRecord::Source(SourceRecord::new(topic, Data::string(v)))
    }

    #[test]
    fn transform_changes_drops_and_keeps_order() {
        let mut h = TransformHarness::<NoopTransform>::configure(config(&[
            ("noop.suffix", "!"),
            ("noop.topic.suffix", "-x"),
            ("noop.drop.on", "b"),
        ]))
        .unwrap();
        let out = h
            .apply(vec![source("t", "a"), source("t", "b"), source("t", "c")])
            .unwrap();
        let got: Vec<(&str, Option<&str>)> = out.iter().map(|r| (r.topic(), text(r))).collect();
        assert_eq!(got, [("t-x", Some("a!")), ("t-x", Some("c!"))]);
        let sink = ConnectRecord::Sink(SinkRecord::new("s", 2, 7, Data::string("z")));
        let out = h.apply(vec![sink]).unwrap();
        let ConnectRecord::Sink(r) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!((r.topic.as_str(), r.partition, r.offset), ("s-x", 2, 7));
        h.close().unwrap();
    }

    #[test]
    fn transform_failures_and_panics_are_reported() {
        let mut h = TransformHarness::<NoopTransform>::configure(config(&[
            ("noop.fail.on", "f"),
            ("noop.panic.on", "p"),
        ]))
        .unwrap();
        let e = h.apply(vec![source("t", "f")]).unwrap_err();
        assert!(
            matches!(&e, HarnessError::Failed { message, .. } if message.contains("fail on")),
            "{e}"
        );
        let e = h.apply(vec![source("t", "p")]).unwrap_err();
        assert!(
            matches!(&e, HarnessError::Panicked(m) if m.contains("asked to panic")),
            "{e}"
        );
    }

    #[test]
    fn predicate_tests_each_record_and_refuses_a_bad_config() {
        let mut h =
            PredicateHarness::<ValueContains>::configure(config(&[("noop.pattern", "ell")]))
                .unwrap();
        let got = h
            .test(vec![source("t", "hello"), source("t", "bye")])
            .unwrap();
        assert_eq!(got, [true, false]);
        let e = PredicateHarness::<ValueContains>::configure(config(&[])).unwrap_err();
        assert!(
            matches!(&e, HarnessError::Invalid(m) if m.contains("noop.pattern")),
            "{e}"
        );
    }
}
