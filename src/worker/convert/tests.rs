//! The factory (names, aliases, configs) and the converters without a format of their own:
//! String, ByteArray, the fixed-width numbers, and every converter used for headers.

use std::collections::BTreeMap;

use tributary_plugin_abi::data::{Data, Schema, Value, logical};

use super::*;

fn cfg(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn value_converter(name: &str) -> Box<dyn Converter> {
    converter(name, &BTreeMap::new(), false).unwrap()
}

/// Write `data` with converter `name`, expect `bytes`, and read them back as `back`.
fn check(name: &str, data: &Data, bytes: Option<&[u8]>, back: &Data) {
    let c = value_converter(name);
    assert_eq!(
        c.from_connect("t", data).unwrap().as_deref(),
        bytes,
        "{name} writing"
    );
    assert_eq!(&c.to_connect("t", bytes).unwrap(), back, "{name} reading");
}

#[test]
fn names_resolve_like_kafka_plugin_aliases() {
    for name in [
        "org.apache.kafka.connect.json.JsonConverter",
        "JsonConverter",
        "Json",
        " Json ",
    ] {
        assert!(converter(name, &BTreeMap::new(), false).is_ok(), "{name}");
    }
    for class in converter_classes() {
        let simple = class.rsplit('.').next().unwrap();
        let pruned = simple.strip_suffix("Converter").unwrap();
        for name in [class, simple, pruned] {
            assert!(converter(name, &BTreeMap::new(), true).is_ok(), "{name}");
            assert!(header_converter(name, &BTreeMap::new()).is_ok(), "{name}");
        }
    }
    for name in [
        "org.apache.kafka.connect.storage.SimpleHeaderConverter",
        "SimpleHeaderConverter",
        "Simple",
    ] {
        assert!(header_converter(name, &BTreeMap::new()).is_ok(), "{name}");
    }
    assert_eq!(
        header_converter_classes().count(),
        converter_classes().count() + 1
    );

    let Err(err) = converter("json", &BTreeMap::new(), false) else {
        panic!("aliases are case-sensitive, as in Kafka")
    };
    let msg = err.to_string();
    assert!(
        msg.starts_with("unknown converter \"json\"; known converters: ")
            && msg.contains("org.apache.kafka.connect.json.JsonConverter (JsonConverter, Json)")
            && msg.contains("SimpleHeaderConverter, Simple)"),
        "{msg}"
    );
    let Err(err) = converter("SimpleHeaderConverter", &BTreeMap::new(), true) else {
        panic!("a header-only converter for keys")
    };
    assert!(
        err.to_string()
            .contains("cannot be a key converter; use it as header.converter"),
        "{err}"
    );
}

#[test]
fn configs_ignore_unknown_keys_and_refuse_bad_values() {
    let extra = cfg(&[("schema.registry.url", "http://x"), ("anything", "")]);
    for class in header_converter_classes() {
        assert!(header_converter(class, &extra).is_ok(), "{class}");
        let Err(err) = header_converter(class, &cfg(&[("converter.type", "both")])) else {
            panic!("{class} accepted converter.type=both")
        };
        assert!(
            err.to_string().contains("header.converter.converter.type"),
            "{err}"
        );
    }
    for ok in ["UTF-8", "utf8", " utf-8 "] {
        assert!(
            converter("String", &cfg(&[("converter.encoding", ok)]), false).is_ok(),
            "{ok}"
        );
    }
    let Err(err) = converter(
        "String",
        &cfg(&[("converter.encoding", "ISO-8859-1")]),
        false,
    ) else {
        panic!("ISO-8859-1 accepted")
    };
    assert!(
        err.to_string().starts_with(
            "StringConverter: invalid value.converter.converter.encoding=\"ISO-8859-1\": only \
             UTF-8 is supported"
        ),
        "{err}"
    );
}

#[test]
fn string_converter_writes_java_to_string() {
    let st = |v: Value, schema: Option<Schema>| {
        let c = value_converter("StringConverter");
        let bytes = c.from_connect("t", &Data { schema, value: v }).unwrap();
        String::from_utf8(bytes.unwrap()).unwrap()
    };
    assert_eq!(st("héllo".into(), Some(Schema::string())), "héllo");
    assert_eq!(st(Value::Int32(42), None), "42");
    assert_eq!(st(Value::Float64(1.0), None), "1.0");
    assert_eq!(st(Value::Float32(1e10), None), "1.0E10");
    assert_eq!(st(Value::Boolean(false), None), "false");
    assert_eq!(
        st(logical::decimal_value(-5), Some(logical::decimal_schema(3))),
        "-0.005"
    );
    assert_eq!(
        st(Value::Int64(0), Some(logical::timestamp_schema())),
        "Thu Jan 01 00:00:00 UTC 1970"
    );
    assert_eq!(
        st(Value::Int32(19_000), Some(logical::date_schema())),
        "Sat Jan 08 00:00:00 UTC 2022"
    );
    assert_eq!(
        st(
            Value::Array(vec![Value::Int64(1), "a".into(), Value::Null]),
            None
        ),
        "[1, a, null]"
    );
    assert_eq!(
        st(
            Value::Map(vec![("k".into(), "v".into()), ("n".into(), Value::Int8(1))]),
            None
        ),
        "{k=v, n=1}"
    );
    let s = Schema::structure()
        .field("a", Schema::int32())
        .field("b", Schema::string().optional())
        .field("c", Schema::string());
    assert_eq!(
        st(
            Value::Struct(vec![Value::Int32(1), Value::Null, "x".into()]),
            Some(s)
        ),
        "Struct{a=1,c=x}"
    );

    let c = value_converter("String");
    assert_eq!(c.from_connect("t", &Data::null()).unwrap(), None);
    let err = c.from_connect("t", &Data::bytes(vec![1])).unwrap_err();
    assert!(err.to_string().contains("ByteArrayConverter"), "{err}");
}

#[test]
fn string_converter_reads_utf8_only() {
    let optional = Some(Schema::string().optional());
    check(
        "String",
        &Data::string("héllo"),
        Some("héllo".as_bytes()),
        &Data {
            schema: optional.clone(),
            value: "héllo".into(),
        },
    );
    check(
        "String",
        &Data::null(),
        None,
        &Data {
            schema: optional,
            value: Value::Null,
        },
    );
    let err = value_converter("String")
        .to_connect("orders", Some(b"ok\xff"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "StringConverter could not read the value on topic orders: the bytes are not UTF-8 \
         (invalid at byte 2); for binary data use \
         org.apache.kafka.connect.converters.ByteArrayConverter"
    );
}

#[test]
fn byte_array_converter_passes_bytes_through() {
    let optional = Some(Schema::bytes().optional());
    check(
        "ByteArray",
        &Data::bytes(vec![0, 1, 255]),
        Some(&[0, 1, 255]),
        &Data {
            schema: optional.clone(),
            value: Value::Bytes(vec![0, 1, 255]),
        },
    );
    check(
        "ByteArray",
        &Data {
            schema: Some(logical::decimal_schema(2)),
            value: logical::decimal_value(1),
        },
        Some(&[1]),
        &Data {
            schema: optional.clone(),
            value: Value::Bytes(vec![1]),
        },
    );
    check(
        "ByteArray",
        &Data::null(),
        None,
        &Data {
            schema: optional,
            value: Value::Null,
        },
    );
    let c = value_converter("ByteArrayConverter");
    let err = c.from_connect("t", &Data::string("x")).unwrap_err();
    assert!(
        err.to_string().contains("bytes schema or none, not string"),
        "{err}"
    );
    let err = c
        .from_connect("t", &Data::schemaless(Value::Int8(1)))
        .unwrap_err();
    assert!(err.to_string().contains("not a int8 value"), "{err}");
}

#[test]
fn number_converters_are_big_endian() {
    let cases: [(&str, Value, &[u8], Schema); 6] = [
        ("Short", Value::Int16(0x0102), &[1, 2], Schema::int16()),
        (
            "Integer",
            Value::Int32(-2),
            &[0xff, 0xff, 0xff, 0xfe],
            Schema::int32(),
        ),
        (
            "Long",
            Value::Int64(1),
            &[0, 0, 0, 0, 0, 0, 0, 1],
            Schema::int64(),
        ),
        (
            "Float",
            Value::Float32(1.0),
            &[0x3f, 0x80, 0, 0],
            Schema::float32(),
        ),
        (
            "Double",
            Value::Float64(-2.5),
            &[0xc0, 0x04, 0, 0, 0, 0, 0, 0],
            Schema::float64(),
        ),
        ("Boolean", Value::Boolean(true), &[1], Schema::boolean()),
    ];
    for (name, value, bytes, schema) in cases {
        let optional = schema.clone().optional();
        check(
            name,
            &Data::schemaless(value.clone()),
            Some(bytes),
            &Data {
                schema: Some(optional.clone()),
                value,
            },
        );
        check(
            name,
            &Data::null(),
            None,
            &Data {
                schema: Some(optional),
                value: Value::Null,
            },
        );
        let c = value_converter(name);
        let err = c
            .to_connect("orders", Some(&[0; 3]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("on topic orders") && err.contains("found 3"),
            "{err}"
        );
        let err = c
            .from_connect("t", &Data::string("1"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not a string value") || err.contains("boolean schema"),
            "{err}"
        );
    }
    let err = value_converter("Boolean")
        .to_connect("t", Some(&[2]))
        .unwrap_err();
    assert!(err.to_string().contains("0 or 1, found 2"), "{err}");
}

#[test]
fn every_converter_converts_headers_too() {
    let data = Data::string("v");
    for class in converter_classes()
        .filter(|c| c.ends_with("StringConverter") || c.ends_with("JsonConverter"))
    {
        let as_value = converter(class, &BTreeMap::new(), false)
            .unwrap()
            .from_connect("t", &data)
            .unwrap();
        let h = header_converter(class, &BTreeMap::new()).unwrap();
        assert_eq!(
            h.from_connect_header("t", "k", &data).unwrap(),
            as_value,
            "{class}"
        );
        let err = h
            .to_connect_header("orders", "k", Some(b"\xff"))
            .unwrap_err();
        assert!(
            err.to_string().contains("header \"k\" on topic orders"),
            "{err}"
        );
    }
    let simple = header_converter("SimpleHeaderConverter", &BTreeMap::new()).unwrap();
    let bytes = simple
        .from_connect_header("t", "k", &Data::schemaless(Value::Int64(7)))
        .unwrap();
    assert_eq!(bytes.as_deref(), Some(&b"7"[..]));
    assert_eq!(
        simple
            .to_connect_header("t", "k", bytes.as_deref())
            .unwrap(),
        Data {
            schema: Some(Schema::int8()),
            value: Value::Int8(7)
        }
    );
}

#[test]
fn errors_carry_their_parts() {
    let err = value_converter("Json")
        .to_connect("orders", Some(b"{"))
        .unwrap_err();
    let ConvertError::ToConnect {
        converter,
        subject,
        topic,
        reason,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (converter, subject, topic.as_str()),
        ("JsonConverter", Subject::Value, "orders")
    );
    assert!(reason.contains("malformed JSON"), "{reason}");
}
