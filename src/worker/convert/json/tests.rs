//! JsonConverter against Kafka's exact bytes (fixtures in tests/fixtures/json-converter/),
//! its error messages on bad input, and round trips of generated schemas and values.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tributary_plugin_abi::data::{Data, Schema, SchemaType, Value, logical};

use super::*;
use crate::worker::convert::{Converter, converter};

macro_rules! fixture {
    ($name:literal) => {
        trim_newline(include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/json-converter/",
            $name
        )))
    };
}

fn trim_newline(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\n").unwrap_or(b)
}

fn json(settings: &[(&str, &str)]) -> Box<dyn Converter> {
    let config: BTreeMap<String, String> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    converter("JsonConverter", &config, false).unwrap()
}

/// The one place that checks a fixture both ways: `data` writes as exactly `bytes`, and
/// `bytes` read back as `data`.
fn check(c: &dyn Converter, data: &Data, bytes: &[u8]) {
    let written = c.from_connect("t", data).unwrap().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&written),
        String::from_utf8_lossy(bytes),
        "writing"
    );
    assert_eq!(&c.to_connect("t", Some(bytes)).unwrap(), data, "reading");
}

fn read_err(c: &dyn Converter, bytes: &[u8]) -> String {
    c.to_connect("orders", Some(bytes)).unwrap_err().to_string()
}

fn order_schema() -> Schema {
    Schema::structure()
        .named("com.acme.Order")
        .with_version(1)
        .field("id", Schema::int64())
        .field("note", Schema::string().optional())
        .field("amount", logical::decimal_schema(2))
        .field("day", logical::date_schema().optional())
        .field("at", logical::time_schema())
        .field("ts", logical::timestamp_schema())
        .field("tags", Schema::array(Schema::string()))
        .field("m", Schema::map(Schema::string(), Schema::int32()))
        .field("qty", Schema::int16().default_value(Value::Int16(1)))
        .field("blob", Schema::bytes())
        .field("flag", Schema::boolean())
        .field("ratio", Schema::float32())
        .field("score", Schema::float64())
        .field(
            "inner",
            Schema::structure()
                .field("x", Schema::int8())
                .optional()
                .named("com.acme.Inner")
                .doc("an inner struct"),
        )
        .field(
            "labelled",
            Schema::string().parameter("k2", "v2").parameter("k1", "v1"),
        )
}

fn order() -> Data {
    Data::with_schema(
        order_schema(),
        Value::Struct(vec![
            Value::Int64(42),
            Value::Null,
            logical::decimal_value(12345),
            Value::Int32(19_000),
            Value::Int32(45_296_789),
            Value::Int64(1_700_000_000_000),
            Value::Array(vec!["a".into(), "b".into()]),
            Value::Map(vec![("k".into(), Value::Int32(1))]),
            Value::Int16(1),
            Value::Bytes(vec![1, 2, 3]),
            Value::Boolean(true),
            Value::Float32(0.5),
            Value::Float64(12345.678),
            Value::Struct(vec![Value::Int8(-1)]),
            "café \"q\" \\ /\n\t\u{1}".into(),
        ]),
    )
    .unwrap()
}

#[test]
fn a_struct_of_every_type_is_byte_identical_to_kafka() {
    check(&*json(&[]), &order(), fixture!("order-base64.json"));
    check(
        &*json(&[("decimal.format", "NUMERIC")]),
        &order(),
        fixture!("order-numeric.json"),
    );
    // Either decimal form reads with either setting.
    assert_eq!(
        json(&[])
            .to_connect("t", Some(fixture!("order-numeric.json")))
            .unwrap(),
        order()
    );
}

#[test]
fn decimals_in_numeric_form() {
    let c = json(&[("decimal.format", "numeric")]);
    let items = logical::decimal_schema(3).optional();
    let data = Data::with_schema(
        Schema::array(items),
        Value::Array(vec![
            logical::decimal_value(-5),
            logical::decimal_value(12_000_000),
            Value::Null,
            logical::decimal_value(0),
        ]),
    )
    .unwrap();
    check(&*c, &data, fixture!("decimals-numeric.json"));
    let negative = Data::with_schema(
        Schema::array(logical::decimal_schema(-2)),
        Value::Array(vec![
            logical::decimal_value(5),
            logical::decimal_value(0),
            logical::decimal_value(-123),
        ]),
    )
    .unwrap();
    check(&*c, &negative, fixture!("decimals-negative-scale.json"));
    // Other spellings of the same numbers read to the schema's scale.
    let text = br#"{"schema":{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"3"}},"payload":1.2E+4}"#;
    assert_eq!(
        c.to_connect("t", Some(text)).unwrap().value,
        logical::decimal_value(12_000_000)
    );
    // Values beyond 128 bits survive both forms.
    let digits = "1234567890123456789012345678901234567890123";
    let big = Value::Bytes(crate::worker::convert::decimal::twos_from_digits(
        true, digits,
    ));
    let big = Data::with_schema(logical::decimal_schema(40), big).unwrap();
    for c in [json(&[]), json(&[("decimal.format", "NUMERIC")])] {
        let bytes = c.from_connect("t", &big).unwrap().unwrap();
        assert_eq!(c.to_connect("t", Some(&bytes)).unwrap(), big);
    }
    let bytes = c.from_connect("t", &big).unwrap().unwrap();
    assert!(
        String::from_utf8(bytes)
            .unwrap()
            .ends_with(r#""payload":-123.4567890123456789012345678901234567890123}"#)
    );
}

#[test]
fn maps_with_other_keys_are_arrays_of_pairs() {
    let data = Data::with_schema(
        Schema::map(Schema::int32(), Schema::string().optional()),
        Value::Map(vec![
            (Value::Int32(1), "one".into()),
            (Value::Int32(2), Value::Null),
        ]),
    )
    .unwrap();
    check(&*json(&[]), &data, fixture!("map-int-keys.json"));
    // Schemaless maps whose keys are not all strings too.
    let schemaless = Data::schemaless(Value::Map(vec![(Value::Int64(1), Value::Boolean(true))]));
    let c = json(&[("schemas.enable", "false")]);
    assert_eq!(
        c.from_connect("t", &schemaless).unwrap().unwrap(),
        b"[[1,true]]"
    );
}

#[test]
fn nulls_tombstones_and_optional_values() {
    let c = json(&[]);
    // A tombstone stays a tombstone, both ways.
    assert_eq!(c.from_connect("t", &Data::null()).unwrap(), None);
    assert_eq!(c.to_connect("t", None).unwrap(), Data::null());
    // A null with an optional schema is JSON, as in Kafka.
    let optional = Data {
        schema: Some(Schema::string().optional()),
        value: Value::Null,
    };
    check(&*c, &optional, fixture!("null-optional.json"));
    // Without the envelope it is the JSON null, which reads back as a null without schema.
    let plain = json(&[("schemas.enable", "false")]);
    assert_eq!(
        plain.from_connect("t", &optional).unwrap().unwrap(),
        b"null"
    );
    assert_eq!(plain.to_connect("t", Some(b"null")).unwrap(), Data::null());
    assert_eq!(plain.to_connect("t", Some(b" ")).unwrap(), Data::null());
    assert_eq!(plain.from_connect("t", &Data::null()).unwrap(), None);
    // A required schema has no null unless it has a default.
    let required = Data {
        schema: Some(Schema::int32()),
        value: Value::Null,
    };
    let err = c.from_connect("orders", &required).unwrap_err().to_string();
    assert!(
        err.contains("topic orders") && err.contains("required"),
        "{err}"
    );
    let with_default = Data {
        schema: Some(Schema::int32().default_value(Value::Int32(7))),
        value: Value::Null,
    };
    let bytes = c.from_connect("t", &with_default).unwrap().unwrap();
    assert_eq!(
        bytes,
        br#"{"schema":{"type":"int32","optional":false,"default":7},"payload":7}"#
    );
}

#[test]
fn schema_null_reads_the_payload_without_schema() {
    let data = Data::schemaless(Value::Map(vec![
        ("a".into(), Value::Int64(1)),
        (
            "b".into(),
            Value::Array(vec![Value::Boolean(true), "x".into()]),
        ),
    ]));
    check(&*json(&[]), &data, fixture!("schemaless-envelope.json"));
}

#[test]
fn defaults_replace_nulls_unless_told_not_to() {
    let schema = Schema::structure()
        .field("qty", Schema::int16().default_value(Value::Int16(1)))
        .field(
            "name",
            Schema::string().optional().default_value("anon".into()),
        );
    let c = json(&[]);
    let read = c
        .to_connect("t", Some(fixture!("defaults-missing.json")))
        .unwrap();
    let filled = Data::with_schema(
        schema.clone(),
        Value::Struct(vec![Value::Int16(1), "anon".into()]),
    )
    .unwrap();
    assert_eq!(read, filled);
    check(&*c, &filled, fixture!("defaults-filled.json"));
    // Writing nulls gives the defaults too.
    let nulls = Data::with_schema(
        schema.clone(),
        Value::Struct(vec![Value::Null, Value::Null]),
    )
    .unwrap();
    assert_eq!(
        c.from_connect("t", &nulls).unwrap().unwrap(),
        fixture!("defaults-filled.json")
    );

    let keep = json(&[("replace.null.with.default", "false")]);
    let kept =
        Data::with_schema(schema, Value::Struct(vec![Value::Int16(5), Value::Null])).unwrap();
    check(&*keep, &kept, fixture!("defaults-kept-null.json"));
    let err = read_err(&*keep, fixture!("defaults-missing.json"));
    assert!(
        err.contains("at qty") && err.contains("replace.null.with.default=false"),
        "{err}"
    );
}

#[test]
fn floats_are_written_as_java_prints_them() {
    let schema = Schema::structure()
        .field("big", Schema::float64())
        .field("small", Schema::float64())
        .field("nan", Schema::float64())
        .field("inf", Schema::float32())
        .field("negzero", Schema::float64())
        .field("fmax", Schema::float32())
        .field("one", Schema::float64());
    let data = Data::with_schema(
        schema,
        Value::Struct(vec![
            Value::Float64(1e7),
            Value::Float64(1e-4),
            Value::Float64(f64::NAN),
            Value::Float32(f32::NEG_INFINITY),
            Value::Float64(-0.0),
            Value::Float32(f32::MAX),
            Value::Float64(1.0),
        ]),
    )
    .unwrap();
    let c = json(&[]);
    let written = c.from_connect("t", &data).unwrap().unwrap();
    assert_eq!(written, fixture!("floats.json"));
    let read = c.to_connect("t", Some(&written)).unwrap();
    let Value::Struct(values) = read.value else {
        panic!("not a struct: {read:?}")
    };
    assert!(matches!(values[2], Value::Float64(f) if f.is_nan()));
    assert_eq!(values[3], Value::Float32(f32::NEG_INFINITY));
    assert!(matches!(values[4], Value::Float64(f) if f == 0.0 && f.is_sign_negative()));
    assert_eq!(values[5], Value::Float32(f32::MAX));
}

#[test]
fn logical_type_at_the_root() {
    let data =
        Data::with_schema(logical::date_schema().doc("a \"day\""), Value::Int32(-1)).unwrap();
    check(&*json(&[]), &data, fixture!("date-root.json"));
    let time = Data::with_schema(logical::time_schema(), Value::Int32(86_400_000));
    assert!(time.is_err(), "the data model refuses it already");
    let bad_time = Data {
        schema: Some(logical::time_schema()),
        value: Value::Int32(-1),
    };
    let err = json(&[])
        .from_connect("t", &bad_time)
        .unwrap_err()
        .to_string();
    assert!(err.contains("within a day"), "{err}");
}

#[test]
fn plain_json_is_inferred_as_kafka_does() {
    let c = json(&[("schemas.enable", "false")]);
    let data = Data::schemaless(Value::Map(vec![
        ("id".into(), Value::Int64(42)),
        ("price".into(), Value::Float64(2.5)),
        (
            "tags".into(),
            Value::Array(vec![
                "a".into(),
                Value::Int64(1),
                Value::Null,
                Value::Boolean(true),
            ]),
        ),
        (
            "nested".into(),
            Value::Map(vec![
                ("big".into(), Value::Int64(i64::MIN)),
                ("tiny".into(), Value::Float64(1e-5)),
            ]),
        ),
    ]));
    check(&*c, &data, fixture!("schemaless.json"));
    // The offsets topic key of a source connector.
    let key = Data::schemaless(Value::Array(vec![
        "file-source".into(),
        Value::Map(vec![("filename".into(), "/tmp/test.txt".into())]),
    ]));
    check(&*c, &key, fixture!("offsets-key.json"));
    // Numbers: integers are int64, anything with a fraction or exponent float64.
    for (text, v) in [
        ("0", Value::Int64(0)),
        ("-0", Value::Int64(0)),
        ("007", Value::Int64(7)),
        ("1.0", Value::Float64(1.0)),
        ("1e2", Value::Float64(100.0)),
        ("-1.5E-3", Value::Float64(-0.0015)),
        ("\"\\ud83d\\ude00\"", Value::String("😀".into())),
        ("\"\\u00e9\\/\"", Value::String("é/".into())),
        ("[]", Value::Array(vec![])),
        ("{}", Value::Map(vec![])),
    ] {
        assert_eq!(
            c.to_connect("t", Some(text.as_bytes())).unwrap(),
            Data::schemaless(v),
            "{text}"
        );
    }
    // Schemaless bytes are base64; structs need their schema.
    assert_eq!(
        c.from_connect("t", &Data::bytes(vec![0xfb, 0xff]))
            .unwrap()
            .unwrap(),
        b"\"+/8=\""
    );
    let err = c
        .from_connect("t", &Data::schemaless(Value::Struct(vec![])))
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs its schema"), "{err}");
}

#[test]
fn payload_before_schema_and_whitespace_are_read() {
    let text = br#" { "payload" : { "a" : [1, 2] } ,
        "schema" : { "fields" : [ { "field" : "a", "type" : "array", "items" : { "type" : "int8" } } ], "type" : "struct" } } "#;
    let data = json(&[]).to_connect("t", Some(text)).unwrap();
    let schema = Schema::structure().field("a", Schema::array(Schema::int8()));
    assert_eq!(
        data,
        Data::with_schema(
            schema,
            Value::Struct(vec![Value::Array(vec![Value::Int8(1), Value::Int8(2)])])
        )
        .unwrap()
    );
}

#[test]
fn schema_members_kafka_ignores_are_ignored() {
    // Unknown members, `items` on a non-array, a non-boolean `optional`, a non-integer
    // `version`: as in Kafka, none of them matters.
    let text = br#"{"schema":{"type":"string","items":{"type":"nonsense"},"optional":"yes","version":1.5,"x-extra":[1,{"a":null}]},"payload":"v"}"#;
    assert_eq!(
        json(&[]).to_connect("t", Some(text)).unwrap(),
        Data::string("v")
    );
    // Unknown struct members in the payload are skipped; members in any order are found.
    let text = br#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"a"},{"type":"int32","optional":false,"field":"b"}],"optional":false},"payload":{"z":{"deep":[1,2,3]},"b":2,"a":1,"a":3}}"#;
    let read = json(&[]).to_connect("t", Some(text)).unwrap();
    assert_eq!(
        read.value,
        Value::Struct(vec![Value::Int32(3), Value::Int32(2)])
    );
}

#[test]
fn repeated_keys_keep_the_last_value_in_the_first_place() {
    let expected = Value::Map(vec![
        ("a".into(), Value::Int64(3)),
        ("b".into(), Value::Int64(2)),
    ]);
    let plain = json(&[("schemas.enable", "false")]);
    assert_eq!(
        plain
            .to_connect("t", Some(br#"{"a":1,"b":2,"a":3}"#))
            .unwrap()
            .value,
        expected
    );
    // Past the small-map fast path too.
    let many: Vec<String> = (0..40).map(|i| format!("\"k{}\":{i}", i % 30)).collect();
    let text = format!("{{{}}}", many.join(","));
    let Value::Map(entries) = plain.to_connect("t", Some(text.as_bytes())).unwrap().value else {
        panic!("not a map")
    };
    assert_eq!(entries.len(), 30);
    assert_eq!(entries[0], ("k0".into(), Value::Int64(30)));
    assert_eq!(entries[29], ("k29".into(), Value::Int64(29)));
    let typed = br#"{"schema":{"type":"map","keys":{"type":"string"},"values":{"type":"int64"}},"payload":{"a":1,"b":2,"a":3}}"#;
    assert_eq!(
        json(&[]).to_connect("t", Some(typed)).unwrap().value,
        expected
    );
}

#[test]
fn wide_structs_fill_missing_fields() {
    let mut schema = Schema::structure();
    for i in 0..70 {
        let f = if i % 2 == 0 {
            Schema::int32().optional()
        } else {
            Schema::int32().default_value(Value::Int32(-i))
        };
        schema = schema.field(format!("f{i}"), f);
    }
    let text = format!(
        r#"{{"schema":{},"payload":{{"f69":69,"f0":0,"f68":68}}}}"#,
        String::from_utf8(
            json(&[])
                .from_connect(
                    "t",
                    &Data::with_schema(schema.clone(), Value::Struct(vec![Value::Null; 70]))
                        .unwrap()
                )
                .unwrap()
                .unwrap()
        )
        .unwrap()
        .strip_prefix(r#"{"schema":"#)
        .unwrap()
        .split_once(r#","payload":"#)
        .unwrap()
        .0
    );
    let read = json(&[]).to_connect("t", Some(text.as_bytes())).unwrap();
    let Value::Struct(values) = &read.value else {
        panic!("not a struct")
    };
    assert_eq!(read.schema.as_ref(), Some(&schema));
    for (i, v) in values.iter().enumerate() {
        let expected = match i {
            0 | 68 | 69 => Value::Int32(i as i32),
            _ if i % 2 == 0 => Value::Null,
            _ => Value::Int32(-(i as i32)),
        };
        assert_eq!(*v, expected, "f{i}");
    }
}

#[test]
fn envelope_errors_say_what_to_change() {
    let c = json(&[]);
    for (text, detail) in [
        (&br#"{"id":1}"#[..], "has a field \"id\""),
        (br#"{"schema":null}"#, "no \"payload\""),
        (br#"{"payload":1}"#, "no \"schema\""),
        (br#"[1,2]"#, "is an array"),
        (br#"42"#, "is a number"),
        (b"", "empty"),
        (
            br#"{"schema":null,"payload":1,"schema":null}"#,
            "two \"schema\"",
        ),
    ] {
        let err = read_err(&*c, text);
        assert!(
            err.starts_with("JsonConverter could not read the value on topic orders:")
                && err.contains(detail)
                && err.contains("set value.converter.schemas.enable=false"),
            "{err}"
        );
    }
    let key = converter("Json", &BTreeMap::new(), true).unwrap();
    let err = key
        .to_connect("orders", Some(b"{}"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the key") && err.contains("key.converter.schemas.enable=false"),
        "{err}"
    );
}

#[test]
fn malformed_json_is_an_error_not_a_panic() {
    let plain = json(&[("schemas.enable", "false")]);
    for (text, detail) in [
        (&b"{\"a\":1"[..], "unexpected end"),
        (b"{\"a\":1,}", "string key"),
        (b"[1,]", "unexpected character ']'"),
        (b"[1 2]", "expected ',' or ']'"),
        (b"{\"a\" 1}", "expected ':'"),
        (b"\"abc", "unterminated"),
        (b"\"a\\qb\"", "invalid escape"),
        (b"\"a\x01b\"", "control character"),
        (b"\"\xff\"", "invalid UTF-8"),
        (b"\"\\ud800\"", "lone surrogate"),
        (b"\"\\u12\"", "\\u escape"),
        (b"01.", "digits after '.'"),
        (b"-", "needs digits"),
        (b"1e", "exponent"),
        (b"tru", "invalid literal"),
        (b"nul", "invalid literal"),
        (b"NaN", "unexpected character 'N'"),
        (b"{} x", "after the JSON value"),
        (b"1 2", "after the JSON value"),
        (b"\x00", "byte 0x00"),
        (b"99999999999999999999", "does not fit in int64"),
    ] {
        let err = read_err(&*plain, text);
        assert!(
            err.starts_with("JsonConverter could not read the value on topic orders: ")
                && err.contains(detail),
            "{:?}: {err}",
            String::from_utf8_lossy(text)
        );
    }
    // Hostile nesting stops at the data model's depth, with or without a schema.
    let deep = "[".repeat(100_000);
    assert!(read_err(&*plain, deep.as_bytes()).contains("nested deeper than 64"));
    let deep_payload = format!("{{\"schema\":null,\"payload\":{deep}");
    assert!(read_err(&*json(&[]), deep_payload.as_bytes()).contains("nested deeper"));
    let deep_schema = format!("{{\"schema\":{},\"payload\":1}}", "{\"x\":".repeat(100_000));
    assert!(read_err(&*json(&[]), deep_schema.as_bytes()).contains("nested deeper"));
    let long_number = "1".repeat(5000);
    assert!(read_err(&*plain, long_number.as_bytes()).contains("longer than 1000"));
}

#[test]
fn values_that_do_not_fit_their_schema_are_refused() {
    let c = json(&[]);
    let struct_of = |field: &str, payload: &str| {
        format!(
            r#"{{"schema":{{"type":"struct","fields":[{field}],"optional":false}},"payload":{payload}}}"#
        )
    };
    for (field, payload, detail) in [
        (
            r#"{"type":"int32","optional":false,"field":"a"}"#,
            r#"{"a":"x"}"#,
            "at a: expected an integer for schema type int32, found a string",
        ),
        (
            r#"{"type":"int32","optional":false,"field":"a"}"#,
            r#"{"a":1.5}"#,
            "found 1.5",
        ),
        (
            r#"{"type":"int8","optional":false,"field":"a"}"#,
            r#"{"a":300}"#,
            "300 is out of range for int8",
        ),
        (
            r#"{"type":"int64","optional":false,"field":"a"}"#,
            r#"{}"#,
            "at a: null or missing",
        ),
        (
            r#"{"type":"array","items":{"type":"boolean","optional":false},"optional":false,"field":"a"}"#,
            r#"{"a":[true,1]}"#,
            "at a[1]: expected true or false",
        ),
        (
            r#"{"type":"map","keys":{"type":"string","optional":false},"values":{"type":"int32","optional":false},"optional":false,"field":"m"}"#,
            r#"{"m":{"k":"v"}}"#,
            "at m.k: expected an integer",
        ),
        (
            r#"{"type":"map","keys":{"type":"string","optional":false},"values":{"type":"int32","optional":false},"optional":false,"field":"m"}"#,
            r#"{"m":[["k",1]]}"#,
            "must be a JSON object",
        ),
        (
            r#"{"type":"map","keys":{"type":"int8","optional":false},"values":{"type":"int32","optional":false},"optional":false,"field":"m"}"#,
            r#"{"m":[[1,2,3]]}"#,
            "at m[0]: a map entry must be a [key, value] array of two",
        ),
        (
            r#"{"type":"bytes","optional":false,"field":"b"}"#,
            r#"{"b":"not base64!"}"#,
            "bytes must be base64",
        ),
        (
            r#"{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"},"field":"d"}"#,
            r#"{"d":1.234}"#,
            "more decimal places than the schema's scale 2",
        ),
        (
            r#"{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","field":"d"}"#,
            r#"{"d":1}"#,
            "integer `scale` parameter",
        ),
        (
            r#"{"type":"int32","optional":false,"name":"org.apache.kafka.connect.data.Time","field":"t"}"#,
            r#"{"t":86400000}"#,
            "within a day",
        ),
        (
            r#"{"type":"string","optional":false,"name":"org.apache.kafka.connect.data.Date","field":"t"}"#,
            r#"{"t":"2024-01-01"}"#,
            "a Date schema must have type int32",
        ),
    ] {
        let err = read_err(&*c, struct_of(field, payload).as_bytes());
        assert!(err.contains(detail), "{payload}: {err}");
    }
    // Schemas Kafka itself refuses.
    for (schema, detail) in [
        (r#"{"optional":true}"#, "\"type\" string"),
        (r#"{"type":"decimal"}"#, "unknown schema type \"decimal\""),
        (r#"{"type":"array"}"#, "array schema has no \"items\""),
        (r#"{"type":"array","items":null}"#, "has no \"items\""),
        (
            r#"{"type":"map","keys":{"type":"string"}}"#,
            "has no \"values\"",
        ),
        (r#"{"type":"struct"}"#, "\"fields\" must be an array"),
        (
            r#"{"type":"struct","fields":[{"type":"int8"}]}"#,
            "\"field\" name",
        ),
        (
            r#"{"type":"struct","fields":[{"type":"int8","field":"a"},{"type":"int8","field":"a"}]}"#,
            "two fields named \"a\"",
        ),
        (r#"{"type":"string","parameters":{"a":1}}"#, "string value"),
        (r#"{"type":"int8","default":"x"}"#, "default value"),
        (r#"{"type":"int8","default":null}"#, "default value"),
        (r#""string""#, "must be a JSON object"),
    ] {
        let text = format!(r#"{{"schema":{schema},"payload":null}}"#);
        let err = read_err(&*c, text.as_bytes());
        assert!(err.contains(detail), "{schema}: {err}");
    }
}

#[test]
fn writing_data_that_does_not_fit_its_schema_is_refused() {
    let c = json(&[]);
    let bad = |schema: Schema, value: Value| {
        c.from_connect(
            "orders",
            &Data {
                schema: Some(schema),
                value,
            },
        )
        .unwrap_err()
        .to_string()
    };
    let err = bad(
        Schema::structure().field("id", Schema::int64()),
        Value::Struct(vec!["x".into()]),
    );
    assert_eq!(
        err,
        "JsonConverter could not convert the value for topic orders to bytes: at id: a string \
         value does not fit schema type int64"
    );
    assert!(
        bad(
            Schema::structure().field("id", Schema::int64()),
            Value::Struct(vec![])
        )
        .contains("0 values for the 1 fields")
    );
    assert!(bad(Schema::new(SchemaType::Array), Value::Array(vec![])).contains("items schema"));
    assert!(
        bad(logical::decimal_schema(2), Value::Bytes(vec![])).contains("without bytes"),
        "empty decimal"
    );
    assert!(
        bad(
            Schema::map(Schema::string(), Schema::int8()),
            Value::Map(vec![(Value::Int8(1), Value::Int8(1))])
        )
        .contains("map key does not fit")
    );
    assert!(
        bad(
            Schema::array(Schema::int8()),
            Value::Array(vec![Value::Int8(1), Value::Int16(2)])
        )
        .contains("at [1]: a int16 value")
    );
    let deep = (0..100).fold(Value::Null, |v, _| Value::Array(vec![v]));
    let err = c.from_connect("t", &Data::schemaless(deep)).unwrap_err();
    assert!(err.to_string().contains("nested deeper"), "{err}");
}

#[test]
fn as_a_header_converter() {
    let config = BTreeMap::from([("schemas.enable".to_owned(), "false".to_owned())]);
    let c = crate::worker::convert::header_converter("Json", &config).unwrap();
    let bytes = c
        .from_connect_header("t", "trace", &Data::string("abc"))
        .unwrap()
        .unwrap();
    assert_eq!(bytes, b"\"abc\"");
    assert_eq!(
        c.to_connect_header("t", "trace", Some(&bytes)).unwrap(),
        Data::schemaless("abc".into())
    );
    let err = c
        .to_connect_header("orders", "trace", Some(b"{"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("JsonConverter could not read header \"trace\" on topic orders"),
        "{err}"
    );
}

#[test]
fn the_schema_cache_gives_the_same_answers() {
    let bytes = fixture!("order-base64.json");
    for size in ["0", "1", "1000"] {
        let c = JsonConverter::configure(
            &BTreeMap::from([("schemas.cache.size".to_owned(), size.to_owned())]),
            Role::Value,
        )
        .unwrap();
        for _ in 0..3 {
            assert_eq!(c.read(Some(bytes)).unwrap(), order());
            assert_eq!(
                c.read(Some(fixture!("map-int-keys.json")))
                    .unwrap()
                    .schema
                    .unwrap()
                    .kind,
                SchemaType::Map
            );
        }
        assert!(c.lock_cache().entries.len() <= size.parse().unwrap());
    }
}

#[test]
fn config_is_checked() {
    let bad = |k: &str, v: &str| {
        JsonConverter::configure(&BTreeMap::from([(k.to_owned(), v.to_owned())]), Role::Key)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        bad("schemas.enable", "yes"),
        "JsonConverter: invalid key.converter.schemas.enable=\"yes\": expected true or false"
    );
    assert!(bad("decimal.format", "HEX").contains("key.converter.decimal.format"));
    assert!(bad("schemas.cache.size", "-1").contains("at least 0"));
    assert!(bad("schemas.cache.size", "many").contains("integer"));
    assert!(bad("replace.null.with.default", "").contains("replace.null.with.default"));
    assert!(bad("converter.type", "sideways").contains("key, value, header"));
    let ok = JsonConverterConfig::parse(
        &BTreeMap::from([
            ("schemas.enable".to_owned(), " FALSE ".to_owned()),
            ("decimal.format".to_owned(), "numeric".to_owned()),
            ("unknown.key".to_owned(), "whatever".to_owned()),
            ("converter.type".to_owned(), "value".to_owned()),
        ]),
        Role::Value,
    )
    .unwrap();
    assert!(!ok.schemas_enable);
    assert_eq!(ok.decimal_format, DecimalFormat::Numeric);
    assert_eq!(ok.schemas_cache_size, 1000);
    assert!(ok.replace_null_with_default);
}

// ---- generated round trips ----

/// A schema and a value of it. Nulls only where the schema is optional, defaults only on
/// primitives (so reading back gives exactly what was written).
fn arb_data() -> impl Strategy<Value = (Schema, Value)> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(|b| (Schema::boolean(), Value::Boolean(b))),
        any::<i8>().prop_map(|n| (Schema::int8(), Value::Int8(n))),
        any::<i16>().prop_map(|n| (Schema::int16(), Value::Int16(n))),
        any::<i32>().prop_map(|n| (Schema::int32(), Value::Int32(n))),
        any::<i64>().prop_map(|n| (Schema::int64(), Value::Int64(n))),
        any::<f32>()
            .prop_filter("NaN != NaN", |f| !f.is_nan())
            .prop_map(|f| (Schema::float32(), Value::Float32(f))),
        any::<f64>()
            .prop_filter("NaN != NaN", |f| !f.is_nan())
            .prop_map(|f| (Schema::float64(), Value::Float64(f))),
        any::<String>().prop_map(|s| (Schema::string(), Value::String(s))),
        proptest::collection::vec(any::<u8>(), 0..20)
            .prop_map(|b| (Schema::bytes(), Value::Bytes(b))),
        (any::<i64>(), -4i32..12)
            .prop_map(|(u, s)| (logical::decimal_schema(s), logical::decimal_value(u.into()))),
        any::<i32>().prop_map(|d| (logical::date_schema(), Value::Int32(d))),
        (0..86_400_000i32).prop_map(|t| (logical::time_schema(), Value::Int32(t))),
        any::<i64>().prop_map(|t| (logical::timestamp_schema(), Value::Int64(t))),
    ];
    let leaf = (
        leaf,
        any::<bool>(),
        any::<bool>(),
        "[a-z.]{0,6}",
        any::<Option<i32>>(),
    )
        .prop_map(|((mut s, v), optional, with_default, doc, version)| {
            if optional {
                s = s.optional();
            }
            if with_default {
                s = s.default_value(v.clone());
            }
            if !doc.is_empty() {
                s = s.doc(doc.clone()).parameter(doc, "p\"");
            }
            if s.name.is_none() {
                s.version = version;
            }
            (s, v)
        });
    leaf.prop_recursive(3, 32, 4, |inner| {
        prop_oneof![
            // Arrays: one schema, values of it (a fixed leaf keeps the schemas equal).
            (inner.clone(), 0usize..4)
                .prop_map(|((s, v), n)| { (Schema::array(s), Value::Array(vec![v; n])) }),
            // Maps with string keys, and with int keys (written as pairs).
            (
                inner.clone(),
                proptest::collection::btree_set("[a-z]{0,4}", 0..4)
            )
                .prop_map(|((s, v), keys)| {
                    let entries = keys
                        .into_iter()
                        .map(|k| (Value::String(k), v.clone()))
                        .collect();
                    (Schema::map(Schema::string(), s), Value::Map(entries))
                }),
            (
                inner.clone(),
                proptest::collection::btree_set(any::<i32>(), 0..4)
            )
                .prop_map(|((s, v), keys)| {
                    let entries = keys
                        .into_iter()
                        .map(|k| (Value::Int32(k), v.clone()))
                        .collect();
                    (Schema::map(Schema::int32(), s), Value::Map(entries))
                }),
            // Structs, some optional and null.
            (
                proptest::collection::vec(inner, 0..5),
                any::<bool>(),
                any::<bool>()
            )
                .prop_map(|(fields, optional, null)| {
                    let mut s = Schema::structure().named("gen.Struct");
                    let mut values = Vec::new();
                    for (i, (fs, fv)) in fields.into_iter().enumerate() {
                        s = s.field(format!("f{i}"), fs);
                        values.push(fv);
                    }
                    if optional {
                        s = s.optional();
                    }
                    let v = if optional && null {
                        Value::Null
                    } else {
                        Value::Struct(values)
                    };
                    (s, v)
                }),
        ]
    })
}

/// Values of the shapes plain JSON infers, which must survive without a schema.
fn arb_plain() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Boolean),
        any::<i64>().prop_map(Value::Int64),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::Float64),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z\"\\\\]{0,4}", inner, 0..4).prop_map(|m| {
                Value::Map(m.into_iter().map(|(k, v)| (Value::String(k), v)).collect())
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn generated_data_round_trips((schema, value) in arb_data(), numeric in any::<bool>()) {
        let data = Data::with_schema(schema, value).unwrap();
        let format = if numeric { "NUMERIC" } else { "BASE64" };
        let c = json(&[("decimal.format", format)]);
        let bytes = c.from_connect("t", &data).unwrap().unwrap();
        prop_assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
            "not JSON: {}", String::from_utf8_lossy(&bytes));
        let back = c.to_connect("t", Some(&bytes)).unwrap();
        prop_assert_eq!(&back, &data, "{}", String::from_utf8_lossy(&bytes));
        // And the bytes are stable: writing what was read gives the same bytes.
        prop_assert_eq!(c.from_connect("t", &back).unwrap().unwrap(), bytes);
    }

    #[test]
    fn plain_json_round_trips(value in arb_plain()) {
        let c = json(&[("schemas.enable", "false")]);
        let data = Data::schemaless(value);
        let bytes = c.from_connect("t", &data).unwrap();
        let back = c.to_connect("t", bytes.as_deref()).unwrap();
        prop_assert_eq!(back, data);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        for c in [json(&[]), json(&[("schemas.enable", "false")])] {
            let _ = c.to_connect("t", Some(&bytes));
        }
    }

    #[test]
    fn damaged_fixtures_never_panic(cut in 0usize..2000, flip in any::<u8>(), at in 0usize..2000) {
        let mut bytes = fixture!("order-base64.json").to_vec();
        if at < bytes.len() {
            bytes[at] ^= flip;
        }
        bytes.truncate(cut.min(bytes.len()));
        let _ = json(&[]).to_connect("t", Some(&bytes));
    }
}

/// The envelope's schema JSON is reused for records that share their schema (one handle or
/// equal copies) and rewritten when it changes: every output is what a fresh converter
/// writes for that record alone.
#[test]
fn envelopes_reuse_the_last_schema_only_while_it_is_the_same() {
    let c = json(&[]);
    let a = Schema::structure().field("id", Schema::int64());
    let b = Schema::structure().field("id", Schema::int64().optional());
    let equal_to_a = Schema::structure().field("id", Schema::int64());
    let mut renamed = a.clone();
    renamed.name = Some("renamed".into());
    let records = [
        (a.clone(), 1),
        (a.clone(), 2),
        (equal_to_a, 3),
        (b, 4),
        (renamed, 5),
        (a, 6),
    ];
    for (schema, id) in records {
        let d = Data::with_schema(schema, Value::Struct(vec![Value::Int64(id)])).unwrap();
        let got = c.from_connect("t", &d).unwrap().unwrap();
        let fresh = json(&[]).from_connect("t", &d).unwrap().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&fresh),
            "record {id}"
        );
    }
}
