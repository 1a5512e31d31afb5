//! InsertField, ReplaceField, MaskField, ValueToKey, ExtractField, HoistField and
//! SetSchemaMetadata, with and without schemas, against Kafka's documented behaviour.

use tributary_plugin_abi::data::{Data, Schema, SchemaType, Value, logical};

use super::super::tests::{chain, config_errors, map, rec, s, sink_value};
use super::parse_path_v2;

fn one(ty: &str, pairs: &[(&str, &str)]) -> super::super::Chain {
    let mut all = vec![
        ("transforms".to_string(), "x".to_string()),
        ("transforms.x.type".into(), ty.into()),
    ];
    all.extend(
        pairs
            .iter()
            .map(|(k, v)| (format!("transforms.x.{k}"), v.to_string())),
    );
    let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    chain(&refs)
}

fn errors(ty: &str, pairs: &[(&str, &str)]) -> Vec<super::super::ConfigError> {
    let mut all = vec![
        ("transforms".to_string(), "x".to_string()),
        ("transforms.x.type".into(), ty.into()),
    ];
    all.extend(
        pairs
            .iter()
            .map(|(k, v)| (format!("transforms.x.{k}"), v.to_string())),
    );
    let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    config_errors(&refs)
}

fn order() -> Schema {
    Schema::structure()
        .named("Order")
        .with_version(2)
        .field("id", Schema::int64())
        .field(
            "qty",
            Schema::int32().optional().default_value(Value::Int32(1)),
        )
        .field("note", Schema::string().optional())
}

fn order_value(qty: Value) -> Data {
    Data::with_schema(order(), Value::Struct(vec![Value::Int64(7), qty, s("n")])).unwrap()
}

#[test]
fn insert_field_schemaless() {
    let c = one(
        "org.apache.kafka.connect.transforms.InsertField$Value",
        &[
            ("topic.field", "topic"),
            ("partition.field", "partition"),
            ("offset.field", "offset!"),
            ("timestamp.field", "ts?"),
            ("static.field", "origin"),
            ("static.value", "db"),
        ],
    );
    let out = sink_value(
        &c,
        Data::schemaless(map(vec![("a", Value::Int8(1)), ("topic", s("old"))])),
    );
    assert_eq!(
        out.value,
        map(vec![
            ("a", Value::Int8(1)),
            ("topic", s("t")),
            ("partition", Value::Int32(1)),
            ("offset", Value::Int64(42)),
            ("ts", Value::Int64(1000)),
            ("origin", s("db")),
        ])
    );
    // Tombstones pass as they are; other shapes fail.
    assert_eq!(sink_value(&c, Data::null()), Data::null());
    let mut r = rec(Data::string("x"));
    let err = c.apply_sink(&mut r).unwrap_err();
    assert!(
        err.message.contains("needs a struct, found string"),
        "{err}"
    );
    let mut r = rec(Data::schemaless(Value::Int32(1)));
    assert!(
        c.apply_sink(&mut r)
            .unwrap_err()
            .message
            .contains("needs a map")
    );
}

#[test]
fn insert_field_with_schema() {
    let c = one(
        "InsertField$Value",
        &[
            ("topic.field", "topic!"),
            ("timestamp.field", "ts"),
            ("static.field", "origin"),
            ("static.value", "db"),
        ],
    );
    let out = sink_value(&c, order_value(Value::Null));
    let schema = out.schema.clone().unwrap();
    assert_eq!(schema.name.as_deref(), Some("Order"));
    assert_eq!(schema.version, Some(2));
    let f: Vec<(&str, SchemaType, bool)> = schema
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.schema.kind, f.schema.optional))
        .collect();
    assert_eq!(
        f,
        [
            ("id", SchemaType::Int64, false),
            ("qty", SchemaType::Int32, true),
            ("note", SchemaType::String, true),
            ("topic", SchemaType::String, false),
            ("ts", SchemaType::Int64, true),
            ("origin", SchemaType::String, true),
        ]
    );
    assert_eq!(
        schema.fields[4].schema.name.as_deref(),
        Some(logical::TIMESTAMP)
    );
    // qty was null: replace.null.with.default gave it its default.
    assert_eq!(
        out.value,
        Value::Struct(vec![
            Value::Int64(7),
            Value::Int32(1),
            s("n"),
            s("t"),
            Value::Int64(1000),
            s("db")
        ])
    );
    out.validate().unwrap();
    // Without replace.null.with.default the null stays.
    let c = one(
        "InsertField$Value",
        &[
            ("topic.field", "topic"),
            ("replace.null.with.default", "false"),
        ],
    );
    assert_eq!(
        sink_value(&c, order_value(Value::Null)).value,
        Value::Struct(vec![Value::Int64(7), Value::Null, s("n"), s("t")])
    );
    // A name that is already a field, and a required field without a value.
    let c = one("InsertField$Value", &[("topic.field", "id")]);
    let mut r = rec(order_value(Value::Int32(2)));
    assert!(
        c.apply_sink(&mut r)
            .unwrap_err()
            .message
            .contains("duplication: id")
    );
    let c = one("InsertField$Value", &[("timestamp.field", "ts!")]);
    let mut r = rec(order_value(Value::Int32(2)));
    r.timestamp = None;
    assert!(
        c.apply_sink(&mut r)
            .unwrap_err()
            .message
            .contains("required field ts")
    );
}

#[test]
fn insert_field_key_and_config_errors() {
    let c = one(
        "InsertField$Key",
        &[("static.field", "k"), ("static.value", "v")],
    );
    let mut r = rec(Data::string("untouched"));
    r.key = Data::schemaless(map(vec![]));
    c.apply_sink(&mut r).unwrap();
    assert_eq!(r.key.value, map(vec![("k", s("v"))]));
    assert_eq!(r.value, Data::string("untouched"));
    let e = errors("InsertField$Value", &[]);
    assert!(
        e[0].message.contains("no field insertion configured"),
        "{}",
        e[0]
    );
    let e = errors("InsertField$Value", &[("static.field", "f")]);
    assert_eq!(e[0].key, "transforms.x.static.value");
    let e = errors(
        "InsertField$Value",
        &[("topic.field", "t"), ("replace.null.with.default", "yes")],
    );
    assert_eq!(e[0].key, "transforms.x.replace.null.with.default");
}

#[test]
fn replace_field() {
    let v = || {
        Data::schemaless(map(vec![
            ("id", Value::Int64(7)),
            ("qty", Value::Null),
            ("note", s("n")),
        ]))
    };
    for (pairs, expected) in [
        (
            vec![("exclude", "note")],
            map(vec![("id", Value::Int64(7)), ("qty", Value::Null)]),
        ),
        (
            vec![("include", "note,id")],
            map(vec![("id", Value::Int64(7)), ("note", s("n"))]),
        ),
        (
            vec![("include", "id,note"), ("exclude", "id")],
            map(vec![("note", s("n"))]),
        ),
        (
            vec![("renames", "id:key,note:comment")],
            map(vec![
                ("key", Value::Int64(7)),
                ("qty", Value::Null),
                ("comment", s("n")),
            ]),
        ),
        // The names Kafka 3.x still accepted.
        (
            vec![("blacklist", "qty,note")],
            map(vec![("id", Value::Int64(7))]),
        ),
        (vec![("whitelist", "qty")], map(vec![("qty", Value::Null)])),
        (
            vec![("whitelist", "qty"), ("include", "id")],
            map(vec![("id", Value::Int64(7))]),
        ),
    ] {
        let c = one(
            "org.apache.kafka.connect.transforms.ReplaceField$Value",
            &pairs,
        );
        assert_eq!(sink_value(&c, v()).value, expected, "{pairs:?}");
    }
    let c = one(
        "ReplaceField$Value",
        &[("exclude", "note"), ("renames", "qty:amount")],
    );
    let out = sink_value(&c, order_value(Value::Null));
    let schema = out.schema.clone().unwrap();
    assert_eq!(schema.name.as_deref(), Some("Order"));
    assert_eq!(
        schema
            .fields
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>(),
        ["id", "amount"]
    );
    assert_eq!(
        out.value,
        Value::Struct(vec![Value::Int64(7), Value::Int32(1)])
    );
    out.validate().unwrap();
    assert_eq!(sink_value(&c, Data::null()), Data::null());
    // Renaming onto a kept field.
    let c = one("ReplaceField$Value", &[("renames", "id:note")]);
    let mut r = rec(order_value(Value::Null));
    assert!(
        c.apply_sink(&mut r)
            .unwrap_err()
            .message
            .contains("duplication")
    );
    let e = errors("ReplaceField$Key", &[("renames", "a:b,c")]);
    assert_eq!(e[0].key, "transforms.x.renames");
    assert!(
        e[0].message.contains("invalid rename mapping \"c\""),
        "{}",
        e[0]
    );
}

#[test]
fn mask_field() {
    let c = one(
        "org.apache.kafka.connect.transforms.MaskField$Value",
        &[("fields", "i,f,b,t,l,m,absent")],
    );
    let out = sink_value(
        &c,
        Data::schemaless(map(vec![
            ("i", Value::Int32(5)),
            ("f", Value::Float64(1.5)),
            ("b", Value::Boolean(true)),
            ("t", s("secret")),
            ("l", Value::Array(vec![s("x")])),
            ("m", map(vec![("k", s("v"))])),
            ("keep", s("k")),
        ])),
    );
    assert_eq!(
        out.value,
        map(vec![
            ("i", Value::Int32(0)),
            ("f", Value::Float64(0.0)),
            ("b", Value::Boolean(false)),
            ("t", s("")),
            ("l", Value::Array(vec![])),
            ("m", Value::Map(vec![])),
            ("keep", s("k")),
            ("absent", Value::Null),
        ])
    );
    let c = one(
        "MaskField$Value",
        &[("fields", "qty,note,id"), ("replacement", "99")],
    );
    let out = sink_value(&c, order_value(Value::Int32(3)));
    assert_eq!(
        out.value,
        Value::Struct(vec![Value::Int64(99), Value::Int32(99), s("99")])
    );
    out.validate().unwrap();
    let dated = Schema::structure()
        .field("d", logical::timestamp_schema())
        .field("dec", logical::decimal_schema(2));
    let c = one("MaskField$Value", &[("fields", "d,dec")]);
    let out = sink_value(
        &c,
        Data::with_schema(
            dated.clone(),
            Value::Struct(vec![Value::Int64(5), logical::decimal_value(123)]),
        )
        .unwrap(),
    );
    assert_eq!(
        out.value,
        Value::Struct(vec![Value::Int64(0), logical::decimal_value(0)])
    );
    let c = one(
        "MaskField$Value",
        &[("fields", "dec"), ("replacement", "1.5")],
    );
    let out = sink_value(
        &c,
        Data::with_schema(
            dated,
            Value::Struct(vec![Value::Int64(5), logical::decimal_value(123)]),
        )
        .unwrap(),
    );
    assert_eq!(
        out.value,
        Value::Struct(vec![Value::Int64(5), logical::decimal_value(150)])
    );
    // Failures: a number replacement that does not parse, a type that cannot be masked.
    let c = one(
        "MaskField$Value",
        &[("fields", "id"), ("replacement", "abc")],
    );
    let mut r = rec(order_value(Value::Null));
    assert!(
        c.apply_sink(&mut r)
            .unwrap_err()
            .message
            .contains("unable to convert replacement \"abc\" to int64")
    );
    let c = one("MaskField$Value", &[("fields", "b")]);
    let mut r = rec(Data::schemaless(map(vec![("b", Value::Bytes(vec![1]))])));
    assert!(
        c.apply_sink(&mut r)
            .unwrap_err()
            .message
            .contains("cannot mask a value of type bytes")
    );
    // Kafka does not pass tombstones through MaskField.
    let mut r = rec(Data::null());
    assert!(c.apply_sink(&mut r).is_err());
    assert_eq!(
        errors("MaskField$Value", &[("fields", "a"), ("replacement", "")])[0].key,
        "transforms.x.replacement"
    );
}

#[test]
fn value_to_key() {
    let c = one(
        "org.apache.kafka.connect.transforms.ValueToKey",
        &[("fields", "id,qty")],
    );
    let mut r = rec(order_value(Value::Null));
    c.apply_sink(&mut r).unwrap();
    let key_schema = r.key.schema.clone().unwrap();
    assert_eq!(
        key_schema
            .fields
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>(),
        ["id", "qty"]
    );
    assert_eq!(
        r.key.value,
        Value::Struct(vec![Value::Int64(7), Value::Int32(1)])
    );
    r.key.validate().unwrap();
    assert_eq!(r.value, order_value(Value::Null));
    let mut r = rec(Data::schemaless(map(vec![
        ("id", Value::Int8(1)),
        ("x", s("y")),
    ])));
    c.apply_sink(&mut r).unwrap();
    assert_eq!(
        r.key,
        Data::schemaless(map(vec![("id", Value::Int8(1)), ("qty", Value::Null)]))
    );
    let c = one("ValueToKey", &[("fields", "nope")]);
    let mut r = rec(order_value(Value::Null));
    assert!(
        c.apply_sink(&mut r)
            .unwrap_err()
            .message
            .contains("field does not exist: nope")
    );
    assert_eq!(errors("ValueToKey", &[])[0].key, "transforms.x.fields");
}

#[test]
fn extract_field() {
    let c = one(
        "org.apache.kafka.connect.transforms.ExtractField$Value",
        &[("field", "id")],
    );
    let out = sink_value(&c, order_value(Value::Null));
    assert_eq!(
        out,
        Data::with_schema(Schema::int64(), Value::Int64(7)).unwrap()
    );
    let out = sink_value(&c, Data::schemaless(map(vec![("id", s("a"))])));
    assert_eq!(out, Data::schemaless(s("a")));
    // A missing map key is null; a missing struct field is an error.
    assert_eq!(sink_value(&c, Data::schemaless(map(vec![]))), Data::null());
    let c2 = one("ExtractField$Value", &[("field", "nope")]);
    let mut r = rec(order_value(Value::Null));
    assert!(
        c2.apply_sink(&mut r)
            .unwrap_err()
            .message
            .contains("unknown field: nope")
    );
    // Null passes (with the field's schema when there is one).
    assert_eq!(sink_value(&c, Data::null()), Data::null());
    let out = sink_value(
        &c,
        Data {
            schema: Some(order().optional()),
            value: Value::Null,
        },
    );
    assert_eq!(
        out,
        Data {
            schema: Some(Schema::int64()),
            value: Value::Null
        }
    );
    // replace.null.with.default.
    let c = one("ExtractField$Value", &[("field", "qty")]);
    assert_eq!(
        sink_value(&c, order_value(Value::Null)).value,
        Value::Int32(1)
    );
    // V2 nested paths.
    let nested = Schema::structure().field("a.b", Schema::structure().field("c", Schema::string()));
    let v = Data::with_schema(nested, Value::Struct(vec![Value::Struct(vec![s("deep")])])).unwrap();
    let c = one(
        "ExtractField$Value",
        &[("field", "`a.b`.c"), ("field.syntax.version", "V2")],
    );
    assert_eq!(sink_value(&c, v.clone()), Data::string("deep"));
    let c = one(
        "ExtractField$Value",
        &[("field", "a.b.c"), ("field.syntax.version", "v2")],
    );
    let mut r = rec(v);
    assert!(c.apply_sink(&mut r).is_err());
    let c = one(
        "ExtractField$Value",
        &[("field", "a.b"), ("field.syntax.version", "V2")],
    );
    let out = sink_value(
        &c,
        Data::schemaless(map(vec![("a", map(vec![("b", Value::Int8(3))]))])),
    );
    assert_eq!(out.value, Value::Int8(3));
    let out = sink_value(&c, Data::schemaless(map(vec![("a", s("not a map"))])));
    assert_eq!(out.value, Value::Null);
    assert_eq!(
        errors(
            "ExtractField$Value",
            &[("field", "a"), ("field.syntax.version", "V3")]
        )[0]
        .key,
        "transforms.x.field.syntax.version"
    );
    assert_eq!(errors("ExtractField$Key", &[])[0].key, "transforms.x.field");
}

#[test]
fn field_paths_v2() {
    let p = |s: &str| parse_path_v2(s).unwrap();
    assert_eq!(p("a.b.c"), ["a", "b", "c"]);
    assert_eq!(p("`a.b`.c"), ["a.b", "c"]);
    assert_eq!(p("a.`b.c`"), ["a", "b.c"]);
    assert_eq!(p("`a\\`.b`.c"), ["a`.b", "c"]);
    assert_eq!(p("a."), ["a", ""]);
    assert_eq!(p("`a`b`.c"), ["a`b", "c"]);
    assert!(
        parse_path_v2("`a.b")
            .unwrap_err()
            .contains("incomplete backtick pair")
    );
}

#[test]
fn hoist_field() {
    let c = one(
        "org.apache.kafka.connect.transforms.HoistField$Value",
        &[("field", "line")],
    );
    assert_eq!(
        sink_value(&c, Data::schemaless(s("x"))).value,
        map(vec![("line", s("x"))])
    );
    assert_eq!(
        sink_value(&c, Data::null()).value,
        map(vec![("line", Value::Null)])
    );
    let out = sink_value(&c, Data::string("x"));
    assert_eq!(
        out,
        Data::with_schema(
            Schema::structure().field("line", Schema::string()),
            Value::Struct(vec![s("x")])
        )
        .unwrap()
    );
    let c = one("HoistField$Key", &[("field", "k")]);
    let mut r = rec(Data::null());
    r.key = Data::with_schema(Schema::int32(), Value::Int32(1)).unwrap();
    c.apply_sink(&mut r).unwrap();
    assert_eq!(r.key.value, Value::Struct(vec![Value::Int32(1)]));
    let mut r = rec(Data::null());
    r.key = Data {
        schema: Some(Schema::int32()),
        value: Value::Null,
    };
    assert!(
        c.apply_sink(&mut r)
            .unwrap_err()
            .message
            .contains("required field k")
    );
}

#[test]
fn set_schema_metadata() {
    let c = one(
        "org.apache.kafka.connect.transforms.SetSchemaMetadata$Value",
        &[("schema.name", "com.acme.Order2"), ("schema.version", "3")],
    );
    let out = sink_value(&c, order_value(Value::Null));
    let schema = out.schema.clone().unwrap();
    assert_eq!(
        (schema.name.as_deref(), schema.version),
        (Some("com.acme.Order2"), Some(3))
    );
    assert_eq!(
        out.value,
        Value::Struct(vec![Value::Int64(7), Value::Int32(1), s("n")])
    );
    let c = one("SetSchemaMetadata$Value", &[("schema.version", "4")]);
    let out = sink_value(&c, Data::string("x"));
    assert_eq!(
        (
            out.schema.as_ref().unwrap().name.as_deref(),
            out.schema.as_ref().unwrap().version
        ),
        (None, Some(4))
    );
    assert_eq!(sink_value(&c, Data::null()), Data::null());
    let mut r = rec(Data::schemaless(s("x")));
    assert!(
        c.apply_sink(&mut r)
            .unwrap_err()
            .message
            .contains("schema required")
    );
    assert!(
        errors("SetSchemaMetadata$Key", &[])[0]
            .message
            .contains("neither schema name nor version")
    );
    assert_eq!(
        errors("SetSchemaMetadata$Key", &[("schema.version", "x")])[0].key,
        "transforms.x.schema.version"
    );
}

/// InsertField and ReplaceField derive their output schema once per run of records with one
/// input schema: such records leave sharing one output schema, and a record of another
/// schema in between gets its own (each output as a fresh transform would make it).
#[test]
fn derived_schemas_follow_the_input_schema() {
    let c = one(
        "ReplaceField$Value",
        &[("exclude", "note"), ("renames", "qty:amount")],
    );
    let other = Schema::structure()
        .field("id", Schema::int64())
        .field("note", Schema::string());
    let other_value =
        || Data::with_schema(other.clone(), Value::Struct(vec![Value::Int64(1), s("x")])).unwrap();
    let shared = order_value(Value::Int32(3));
    let a = sink_value(&c, shared.clone());
    let b = sink_value(&c, other_value());
    let a2 = sink_value(&c, shared.clone());
    let a3 = sink_value(&c, order_value(Value::Int32(4)));
    let fresh = |d: Data| {
        sink_value(
            &one(
                "ReplaceField$Value",
                &[("exclude", "note"), ("renames", "qty:amount")],
            ),
            d,
        )
    };
    assert_eq!(a, fresh(shared.clone()));
    assert_eq!(b, fresh(other_value()));
    assert_eq!(a3, fresh(order_value(Value::Int32(4))));
    let names = |d: &Data| -> Vec<String> {
        d.schema
            .as_ref()
            .unwrap()
            .fields
            .iter()
            .map(|f| f.name.clone())
            .collect()
    };
    assert_eq!(names(&a), ["id", "amount"]);
    assert_eq!(names(&b), ["id"]);
    let (sa, sa2, sa3) = (a.schema.unwrap(), a2.schema.unwrap(), a3.schema.unwrap());
    assert_eq!(sa, sa2);
    assert!(
        sa2.same(&sa3),
        "records in a row with one input schema (one handle or equal ones) share the output"
    );

    let c = one(
        "InsertField$Value",
        &[("static.field", "src"), ("static.value", "t")],
    );
    let x = sink_value(&c, shared.clone());
    let x2 = sink_value(&c, shared);
    let y = sink_value(&c, other_value());
    assert_eq!(names(&x), ["id", "qty", "note", "src"]);
    assert_eq!(names(&y), ["id", "note", "src"]);
    assert!(x.schema.as_ref().unwrap().same(x2.schema.as_ref().unwrap()));
    x.validate().unwrap();
    y.validate().unwrap();
    // A schema the transform cannot derive from fails each of its records.
    let clash = Schema::structure().field("src", Schema::string());
    let clash_value = || Data::with_schema(clash.clone(), Value::Struct(vec![s("a")])).unwrap();
    for _ in 0..2 {
        let mut r = rec(clash_value());
        assert!(
            c.apply_sink(&mut r)
                .unwrap_err()
                .message
                .contains("duplication")
        );
    }
}
