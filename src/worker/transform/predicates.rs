//! The predicates (`TopicNameMatches`, `HasHeaderKey`, `RecordIsTombstone`) and `Filter`,
//! the transform that drops every record it is applied to (so it is used with a
//! predicate).

use std::sync::Arc;

use regex::Regex;
use tributary_plugin_abi::config::{ConfigType, Importance};
use tributary_plugin_abi::data::Value;

use super::config::{Conf, Dflt, KeySpec, Valid, key};
use super::{Build, ConfigError, Def, Outcome, Predicate, RecordMut, Transform};

pub(super) const DEFS: &[Def] = &[
    Def {
        class: "org.apache.kafka.connect.transforms.Filter",
        doc: "Drops all records, filtering them from subsequent transformations in the chain. \
              This is intended to be used conditionally to filter out records matching (or not \
              matching) a particular Predicate.",
        keys: &[],
        build: Build::Transform(|_| Ok(Box::new(Filter))),
    },
    Def {
        class: "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
        doc: "A predicate which is true for records with a topic name that matches the \
              configured regular expression.",
        keys: TOPIC_KEYS,
        build: Build::Predicate(TopicNameMatches::build),
    },
    Def {
        class: "org.apache.kafka.connect.transforms.predicates.HasHeaderKey",
        doc: "A predicate which is true for records with at least one header with the \
              configured name.",
        keys: HEADER_KEYS,
        build: Build::Predicate(HasHeaderKey::build),
    },
    Def {
        class: "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
        doc: "A predicate which is true for records which are tombstones (i.e. have null value).",
        keys: &[],
        build: Build::Predicate(|_| Ok(Arc::new(RecordIsTombstone))),
    },
];

/// `Filter`.
#[derive(Debug)]
pub(super) struct Filter;

impl Transform for Filter {
    fn apply(&self, _: &mut RecordMut<'_>) -> Outcome {
        Ok(false)
    }
}

const TOPIC_KEYS: &[KeySpec] = &[key(
    "pattern",
    ConfigType::String,
    Dflt::Required,
    Importance::Medium,
    Valid::NonEmptyString,
    "A Java regular expression for matching against the name of a record's topic.",
)];

/// `TopicNameMatches`: the whole topic name matches `pattern`.
#[derive(Debug)]
pub(super) struct TopicNameMatches {
    whole: Regex,
}

impl TopicNameMatches {
    fn build(c: &Conf<'_>) -> Result<Arc<dyn Predicate>, ConfigError> {
        let (whole, _) = super::route::compile(c, "pattern")?;
        Ok(Arc::new(TopicNameMatches { whole }))
    }
}

impl Predicate for TopicNameMatches {
    fn test(&self, r: &RecordMut<'_>) -> bool {
        self.whole.is_match(r.topic)
    }
}

const HEADER_KEYS: &[KeySpec] = &[key(
    "name",
    ConfigType::String,
    Dflt::Required,
    Importance::Medium,
    Valid::NonEmptyString,
    "The header name.",
)];

/// `HasHeaderKey`.
#[derive(Debug)]
pub(super) struct HasHeaderKey {
    name: String,
}

impl HasHeaderKey {
    fn build(c: &Conf<'_>) -> Result<Arc<dyn Predicate>, ConfigError> {
        Ok(Arc::new(HasHeaderKey {
            name: c.required("name")?,
        }))
    }
}

impl Predicate for HasHeaderKey {
    fn test(&self, r: &RecordMut<'_>) -> bool {
        r.headers.iter().any(|h| h.key == self.name)
    }
}

/// `RecordIsTombstone`: the value is null.
#[derive(Debug)]
pub(super) struct RecordIsTombstone;

impl Predicate for RecordIsTombstone {
    fn test(&self, r: &RecordMut<'_>) -> bool {
        r.value.value == Value::Null
    }
}

#[cfg(test)]
mod tests {
    use tributary_plugin_abi::data::Data;

    use super::super::tests::{WithTopic, chain, config_errors, rec};

    /// Records for topics a, b and c, the second with a header, the third a tombstone; the
    /// topics of those a chain keeps.
    fn kept(pairs: &[(&str, &str)]) -> Vec<String> {
        let c = chain(pairs);
        let records = [
            rec(Data::string("1")).with_topic("a"),
            rec(Data::string("2"))
                .with_topic("b")
                .with_header("trace", Data::string("x")),
            rec(Data::null()).with_topic("c"),
        ];
        records
            .into_iter()
            .filter_map(|mut r| c.apply_sink(&mut r).unwrap().then_some(r.topic))
            .collect()
    }

    fn filter_with(predicate: &[(&str, &str)], negate: &str) -> Vec<String> {
        let mut pairs = vec![
            ("transforms", "drop"),
            (
                "transforms.drop.type",
                "org.apache.kafka.connect.transforms.Filter",
            ),
            ("transforms.drop.predicate", "p"),
            ("transforms.drop.negate", negate),
            ("predicates", "p"),
        ];
        pairs.extend_from_slice(predicate);
        kept(&pairs)
    }

    #[test]
    fn filter_alone_drops_everything() {
        assert!(kept(&[("transforms", "f"), ("transforms.f.type", "Filter")]).is_empty());
    }

    #[test]
    fn each_predicate_and_its_negation() {
        let topic = [
            (
                "predicates.p.type",
                "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
            ),
            ("predicates.p.pattern", "a|c"),
        ];
        assert_eq!(filter_with(&topic, "false"), ["b"]);
        assert_eq!(filter_with(&topic, "true"), ["a", "c"]);
        // The whole name must match.
        let partial = [
            ("predicates.p.type", "TopicNameMatches"),
            ("predicates.p.pattern", ""),
        ];
        assert_eq!(
            config_errors(&[
                ("transforms", "f"),
                ("transforms.f.type", "Filter"),
                ("transforms.f.predicate", "p"),
                ("predicates", "p"),
                partial[0],
                partial[1],
            ])[0]
                .key,
            "predicates.p.pattern"
        );
        let prefix = [
            ("predicates.p.type", "TopicNameMatches"),
            ("predicates.p.pattern", "[ab]"),
        ];
        assert_eq!(filter_with(&prefix, "false"), ["c"]);
        let header = [
            ("predicates.p.type", "HasHeaderKey"),
            ("predicates.p.name", "trace"),
        ];
        assert_eq!(filter_with(&header, "false"), ["a", "c"]);
        assert_eq!(filter_with(&header, "TRUE"), ["b"]);
        let tombstone = [(
            "predicates.p.type",
            "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
        )];
        assert_eq!(filter_with(&tombstone, "false"), ["a", "b"]);
        assert_eq!(filter_with(&tombstone, "true"), ["c"]);
    }

    #[test]
    fn a_predicate_guards_any_transform() {
        // Route only topic a.
        let out = kept(&[
            ("transforms", "route"),
            ("transforms.route.type", "RegexRouter"),
            ("transforms.route.regex", ".*"),
            ("transforms.route.replacement", "$0-routed"),
            ("transforms.route.predicate", "isA"),
            ("predicates", "isA"),
            ("predicates.isA.type", "TopicNameMatches"),
            ("predicates.isA.pattern", "a"),
        ]);
        assert_eq!(out, ["a-routed", "b", "c"]);
    }

    #[test]
    fn predicate_config_errors() {
        let e = config_errors(&[
            ("transforms", "f"),
            ("transforms.f.type", "Filter"),
            ("transforms.f.predicate", "p"),
            ("predicates", "p"),
            ("predicates.p.type", "TopicNameMatches"),
            ("predicates.p.pattern", "(unclosed"),
        ]);
        assert_eq!(e[0].key, "predicates.p.pattern");
        let e = config_errors(&[("predicates", "p"), ("predicates.p.type", "HasHeaderKey")]);
        assert_eq!(e[0].key, "predicates.p.name");
        assert!(e[0].message.contains("missing required key"));
    }
}
