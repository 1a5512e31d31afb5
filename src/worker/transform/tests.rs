//! Helpers for the transform tests, and the tests of the chain itself: aliases, types,
//! predicates, validation and the catalog.

use tributary_plugin_abi::config::ConfigType;
use tributary_plugin_abi::data::{Data, Value};
use tributary_plugin_abi::record::{SinkRecord, SourceRecord, TimestampType};

use super::{Chain, ConfigError, PluginKind, catalog, lookup, parse, validate};
use crate::worker::store::Props;

pub fn props(pairs: &[(&str, &str)]) -> Props {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The chain of a config that must be valid.
pub fn chain(pairs: &[(&str, &str)]) -> Chain {
    match parse(&props(pairs)) {
        Ok(c) => c,
        Err(e) => panic!("config refused: {e:?}"),
    }
}

/// The errors of a config that must be refused.
pub fn config_errors(pairs: &[(&str, &str)]) -> Vec<ConfigError> {
    match parse(&props(pairs)) {
        Ok(_) => panic!("config accepted: {pairs:?}"),
        Err(e) => e,
    }
}

/// A sink record of topic `t`, partition 1, offset 42, timestamp 1000, with this value.
pub fn rec(value: Data) -> SinkRecord {
    SinkRecord::new("t", 1, 42, value).with_timestamp(1000, TimestampType::CreateTime)
}

pub trait WithTopic {
    fn with_topic(self, topic: &str) -> Self;
}

impl WithTopic for SinkRecord {
    fn with_topic(mut self, topic: &str) -> Self {
        self.topic = topic.to_owned();
        self
    }
}

/// The value after `c` is applied to a sink record holding `value` (which it must keep).
pub fn sink_value(c: &Chain, value: Data) -> Data {
    let mut r = rec(value);
    match c.apply_sink(&mut r) {
        Ok(true) => r.value,
        Ok(false) => panic!("record dropped"),
        Err(e) => panic!("{e}"),
    }
}

pub fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

/// A schemaless map with string keys, in order.
pub fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (s(k), v)).collect())
}

#[test]
fn no_transforms_is_an_empty_chain() {
    assert!(chain(&[]).is_empty());
    assert!(chain(&[("transforms", " ")]).is_empty());
    // Keys of aliases that are not listed are ignored, as Kafka does.
    assert!(chain(&[("transforms.x.type", "Nope")]).is_empty());
}

#[test]
fn type_errors_name_the_alias_and_key() {
    let e = config_errors(&[("transforms", "mask"), ("transforms.mask.type", "Foo")]);
    assert_eq!(e[0].key, "transforms.mask.type");
    assert!(
        e[0].message
            .starts_with("transforms.mask: unknown type 'Foo'; known: "),
        "{}",
        e[0]
    );
    assert!(e[0].message.contains("InsertField$Value"), "{}", e[0]);
    let e = config_errors(&[("transforms", "route")]);
    assert_eq!(e[0].key, "transforms.route.type");
    assert!(e[0].message.contains("missing required key"), "{}", e[0]);
    let e = config_errors(&[
        ("transforms", "p"),
        ("transforms.p.type", "TopicNameMatches"),
    ]);
    assert!(
        e[0].message
            .contains("is a predicate, not a transformation"),
        "{}",
        e[0]
    );
    let e = config_errors(&[
        ("transforms", "a,b,a"),
        ("transforms.a.type", "Filter"),
        ("transforms.b.type", "Filter"),
    ]);
    assert_eq!(e[0].key, "transforms");
    assert!(e[0].message.contains("duplicate alias \"a\""), "{}", e[0]);
    // The display names the key too.
    assert!(e[0].to_string().starts_with("transforms: "));
}

#[test]
fn predicate_binding_errors() {
    let e = config_errors(&[
        ("transforms", "f"),
        ("transforms.f.type", "Filter"),
        ("transforms.f.predicate", "nope"),
    ]);
    assert_eq!(e[0].key, "transforms.f.predicate");
    assert!(
        e[0].message.contains("predicate 'nope' is not defined"),
        "{}",
        e[0]
    );
    let e = config_errors(&[
        ("transforms", "f"),
        ("transforms.f.type", "Filter"),
        ("transforms.f.negate", "true"),
    ]);
    assert_eq!(e[0].key, "transforms.f.negate");
    assert!(
        e[0].message.contains("no transforms.f.predicate"),
        "{}",
        e[0]
    );
    let e = config_errors(&[
        ("transforms", "f"),
        ("transforms.f.type", "Filter"),
        ("transforms.f.predicate", "p"),
        ("transforms.f.negate", "maybe"),
        ("predicates", "p"),
        ("predicates.p.type", "RecordIsTombstone"),
    ]);
    assert_eq!(e[0].key, "transforms.f.negate");
    let e = config_errors(&[("predicates", "p"), ("predicates.p.type", "Filter")]);
    assert!(
        e[0].message
            .contains("is a transformation, not a predicate"),
        "{}",
        e[0]
    );
    // Every error is reported, not only the first.
    let e = config_errors(&[
        ("transforms", "a,b"),
        ("transforms.a.type", "RegexRouter"),
        ("transforms.b.type", "MaskField$Value"),
    ]);
    let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "transforms.a.regex",
            "transforms.a.replacement",
            "transforms.b.fields"
        ]
    );
}

#[test]
fn class_and_short_names() {
    for name in [
        "org.apache.kafka.connect.transforms.InsertField$Value",
        "InsertField$Value",
    ] {
        let c = chain(&[
            ("transforms", "i"),
            ("transforms.i.type", name),
            ("transforms.i.static.field", "s"),
            ("transforms.i.static.value", "v"),
        ]);
        assert_eq!(c.len(), 1);
    }
}

#[test]
fn chain_applies_in_order_and_stops_at_a_drop() {
    // Route, then insert the routed topic: the insert sees the new topic.
    let c = chain(&[
        ("transforms", "route,insert,drop,never"),
        ("transforms.route.type", "RegexRouter"),
        ("transforms.route.regex", "t"),
        ("transforms.route.replacement", "routed"),
        ("transforms.insert.type", "InsertField$Value"),
        ("transforms.insert.topic.field", "topic"),
        ("transforms.drop.type", "Filter"),
        ("transforms.drop.predicate", "tomb"),
        ("transforms.never.type", "Cast$Value"),
        ("transforms.never.spec", "int8"),
        ("predicates", "tomb"),
        ("predicates.tomb.type", "RecordIsTombstone"),
    ]);
    let mut r = rec(Data::schemaless(map(vec![])));
    // Cast of a map fails: the chain reports the alias and class.
    let err = c.apply_sink(&mut r).unwrap_err();
    assert_eq!(err.alias, "never");
    assert_eq!(err.class, "org.apache.kafka.connect.transforms.Cast$Value");
    assert_eq!(r.topic, "routed");
    assert_eq!(r.value.value, map(vec![("topic", s("routed"))]));
    // A tombstone is dropped before the cast.
    let mut r = rec(Data::null());
    assert!(!c.apply_sink(&mut r).unwrap());
}

#[test]
fn source_records_have_no_offset() {
    let c = chain(&[
        ("transforms", "i"),
        ("transforms.i.type", "InsertField$Value"),
        ("transforms.i.offset.field", "off"),
        ("transforms.i.partition.field", "p"),
    ]);
    let mut r = SourceRecord::new("t", Data::schemaless(map(vec![])));
    let err = c.apply_source(&mut r).unwrap_err();
    assert!(
        err.message.contains("only applies to sink records"),
        "{err}"
    );
    let mut r = rec(Data::schemaless(map(vec![])));
    c.apply_sink(&mut r).unwrap();
    assert_eq!(
        r.value.value,
        map(vec![("p", Value::Int32(1)), ("off", Value::Int64(42))])
    );
}

#[test]
fn validate_lists_keys_by_alias_with_errors() {
    let p = props(&[
        ("transforms", "route,mask"),
        (
            "transforms.route.type",
            "org.apache.kafka.connect.transforms.RegexRouter",
        ),
        ("transforms.route.replacement", "x"),
        ("transforms.mask.type", "Foo"),
        ("predicates", "p"),
        ("predicates.p.type", "HasHeaderKey"),
        ("predicates.p.name", "h"),
    ]);
    let v = validate(&p);
    let names: Vec<&str> = v.iter().map(|(_, v)| v.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "transforms",
            "predicates",
            "transforms.route.type",
            "transforms.route.predicate",
            "transforms.route.negate",
            "transforms.route.regex",
            "transforms.route.replacement",
            "transforms.mask.type",
            "transforms.mask.predicate",
            "transforms.mask.negate",
            "predicates.p.type",
            "predicates.p.name",
        ]
    );
    let errors = |name: &str| -> Vec<String> {
        v.iter()
            .find(|(_, v)| v.name == name)
            .map(|(_, v)| v.errors.clone())
            .unwrap_or_default()
    };
    assert_eq!(errors("transforms.route.regex").len(), 1);
    assert!(errors("transforms.mask.type")[0].contains("unknown type 'Foo'"));
    assert!(errors("transforms.route.replacement").is_empty());
    let (def, value) = &v[5];
    let def = def.as_ref().unwrap();
    assert_eq!(def.group.as_deref(), Some("Transforms: route"));
    assert!(def.required());
    assert_eq!(value.value, None);
    let (def, value) = &v[4];
    assert_eq!(def.as_ref().unwrap().kind, ConfigType::Boolean);
    assert_eq!(value.value.as_deref(), Some("false"));
    // A clean config: no errors anywhere.
    let v = validate(&props(&[
        ("transforms", "f"),
        ("transforms.f.type", "Filter"),
    ]));
    assert!(v.iter().all(|(_, v)| v.errors.is_empty()));
}

#[test]
fn catalog_lists_kafkas_set() {
    // The built-ins (no version): other tests of this process may have loaded plugins whose
    // transforms and predicates the catalog lists after them.
    let all: Vec<super::TransformPlugin> = catalog()
        .into_iter()
        .filter(|p| p.version.is_none())
        .collect();
    let classes: Vec<&str> = all.iter().map(|p| p.class).collect();
    for base in [
        "InsertField",
        "ReplaceField",
        "MaskField",
        "ExtractField",
        "HoistField",
        "Cast",
        "Flatten",
        "TimestampConverter",
        "SetSchemaMetadata",
        "HeaderFrom",
    ] {
        for side in ["$Key", "$Value"] {
            let class = format!("org.apache.kafka.connect.transforms.{base}{side}");
            assert!(classes.contains(&class.as_str()), "{class}");
        }
    }
    for single in [
        "ValueToKey",
        "TimestampRouter",
        "RegexRouter",
        "InsertHeader",
        "DropHeaders",
        "Filter",
    ] {
        let class = format!("org.apache.kafka.connect.transforms.{single}");
        assert!(classes.contains(&class.as_str()), "{class}");
    }
    let predicates: Vec<&str> = all
        .iter()
        .filter(|p| p.kind == PluginKind::Predicate)
        .map(|p| p.aliases[0])
        .collect();
    assert_eq!(
        predicates,
        ["TopicNameMatches", "HasHeaderKey", "RecordIsTombstone"]
    );
    assert_eq!(all.len(), 29);
    // No two plugins share a name.
    let mut names: Vec<&str> = all
        .iter()
        .flat_map(|p| p.aliases.iter().copied().chain([p.class]))
        .collect();
    names.sort_unstable();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n);
    let router = lookup("RegexRouter").unwrap();
    assert_eq!(router.kind.as_str(), "transformation");
    let keys: Vec<&str> = router.config.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(keys, ["regex", "replacement"]);
    assert!(
        router
            .config
            .iter()
            .all(|k| k.required() && !k.documentation.is_empty())
    );
    assert!(lookup("org.apache.kafka.connect.transforms.predicates.RecordIsTombstone").is_some());
    assert!(lookup("Nope").is_none());
}

/// Transforms that must not panic on any shape of data: every transform, applied to a
/// spread of keys and values with and without schemas, answers (kept, dropped or an error).
#[test]
fn no_panic_on_any_record() {
    use tributary_plugin_abi::data::{Schema, logical};
    let configs: Vec<Vec<(&str, &str)>> = vec![
        vec![
            ("type", "InsertField$Value"),
            ("topic.field", "t!"),
            ("timestamp.field", "ts"),
        ],
        vec![("type", "ReplaceField$Key"), ("renames", "a:b")],
        vec![
            ("type", "MaskField$Value"),
            ("fields", "a,b"),
            ("replacement", "9"),
        ],
        vec![("type", "ValueToKey"), ("fields", "a")],
        vec![
            ("type", "ExtractField$Value"),
            ("field", "a.b"),
            ("field.syntax.version", "v2"),
        ],
        vec![("type", "HoistField$Key"), ("field", "h")],
        vec![("type", "Cast$Value"), ("spec", "a:string,b:int8")],
        vec![("type", "Flatten$Value")],
        vec![
            ("type", "TimestampConverter$Value"),
            ("target.type", "Date"),
            ("field", "a"),
        ],
        vec![("type", "SetSchemaMetadata$Value"), ("schema.name", "n")],
        vec![
            ("type", "HeaderFrom$Value"),
            ("fields", "a"),
            ("headers", "h"),
            ("operation", "move"),
        ],
    ];
    let struct_schema = Schema::structure()
        .field("a", Schema::int64().optional())
        .field("b", logical::timestamp_schema());
    let datas = vec![
        Data::null(),
        Data::string("x"),
        Data::schemaless(Value::Int64(5)),
        Data::schemaless(map(vec![("a", map(vec![("b", Value::Null)]))])),
        Data::schemaless(Value::Map(vec![(Value::Int8(1), Value::Null)])),
        Data::with_schema(
            struct_schema.clone(),
            Value::Struct(vec![Value::Null, Value::Int64(1)]),
        )
        .unwrap(),
        // A struct whose values do not fit its schema.
        Data {
            schema: Some(struct_schema),
            value: Value::Struct(vec![]),
        },
        Data {
            schema: Some(Schema::int32()),
            value: Value::Struct(vec![Value::Null]),
        },
        Data::schemaless(Value::Array(vec![Value::Null])),
    ];
    for config in &configs {
        let mut pairs = vec![("transforms", "x")];
        let keys: Vec<(String, &str)> = config
            .iter()
            .map(|(k, v)| (format!("transforms.x.{k}"), *v))
            .collect();
        pairs.extend(keys.iter().map(|(k, v)| (k.as_str(), *v)));
        let c = chain(&pairs);
        for d in &datas {
            let mut r = rec(d.clone());
            r.key = d.clone();
            let _ = c.apply_sink(&mut r);
            let mut src = SourceRecord::new("t", d.clone()).with_key(d.clone());
            let _ = c.apply_source(&mut src);
        }
    }
}

#[test]
fn per_thread_state_is_per_instance_and_bounded() {
    let a = super::Local::<Vec<u32>>::default();
    let b = super::Local::<Vec<u32>>::default();
    a.with(|s| s.push(1)).unwrap();
    b.with(|s| s.push(2)).unwrap();
    assert_eq!(a.with(|s| s.clone()), Some(vec![1]));
    assert_eq!(b.with(|s| s.clone()), Some(vec![2]));
    // Another thread starts afresh.
    std::thread::scope(|t| {
        t.spawn(|| assert_eq!(a.with(|s| s.clone()), Some(vec![])));
    });
    // Many more instances on this thread push the oldest out; it starts afresh.
    let many: Vec<_> = (0..40).map(|_| super::Local::<u8>::default()).collect();
    for l in &many {
        l.with(|s| *s = 7).unwrap();
    }
    assert_eq!(a.with(|s| s.clone()), Some(vec![]));
    assert_eq!(many[39].with(|s| *s), Some(7));
}
