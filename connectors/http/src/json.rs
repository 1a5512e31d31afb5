//! Records as JSON and JSON as records: what crosses HTTP.
//!
//! Out (the sink): a record's value in the Kafka Connect data model written as JSON text,
//! as Kafka's `JsonConverter` writes a payload: structs and string-keyed maps as objects,
//! other maps as arrays of `[key, value]` pairs, bytes as base64, Decimals as numbers,
//! Date/Time/Timestamp as their integers, NaN and infinities as `null`.
//!
//! In (the source): a JSON element as a schemaless value (objects as string-keyed maps,
//! integers as int64, other numbers as float64), which `JsonConverter` with
//! `schemas.enable=false` writes back as the same JSON.

use tributary_plugin_sdk::{Data, Schema, SchemaType, Value, logical};

/// Append `data`'s value as JSON.
pub fn write_data(out: &mut Vec<u8>, data: &Data) {
    write_value(out, &data.value, data.schema.as_ref());
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // serde_json's escaping; writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

pub fn write_value(out: &mut Vec<u8>, value: &Value, schema: Option<&Schema>) {
    let itoa = |out: &mut Vec<u8>, n: i64| out.extend_from_slice(n.to_string().as_bytes());
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int8(n) => itoa(out, i64::from(*n)),
        Value::Int16(n) => itoa(out, i64::from(*n)),
        Value::Int32(n) => itoa(out, i64::from(*n)),
        Value::Int64(n) => itoa(out, *n),
        Value::Float32(f) => write_float(out, f64::from(*f)),
        Value::Float64(f) => write_float(out, *f),
        Value::String(s) => write_str(out, s),
        Value::Bytes(b) => {
            if let Some(s) = schema
                && s.name.as_deref() == Some(logical::DECIMAL)
                && let (Some(scale), Some(unscaled)) =
                    (logical::decimal_scale(s), logical::decimal_unscaled(b))
            {
                out.extend_from_slice(logical::decimal_to_string(unscaled, scale).as_bytes());
            } else {
                out.push(b'"');
                base64(out, b);
                out.push(b'"');
            }
        }
        Value::Array(items) => {
            let item_schema = schema.and_then(|s| s.key_or_items.as_deref());
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, v, item_schema);
            }
            out.push(b']');
        }
        Value::Map(entries) => {
            let (ks, vs) = match schema {
                Some(s) if s.kind == SchemaType::Map => {
                    (s.key_or_items.as_deref(), s.map_values.as_deref())
                }
                _ => (None, None),
            };
            if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) {
                out.push(b'{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_value(out, k, ks);
                    out.push(b':');
                    write_value(out, v, vs);
                }
                out.push(b'}');
            } else {
                out.push(b'[');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.push(b'[');
                    write_value(out, k, ks);
                    out.push(b',');
                    write_value(out, v, vs);
                    out.push(b']');
                }
                out.push(b']');
            }
        }
        Value::Struct(values) => {
            out.push(b'{');
            let fields = schema.map(|s| s.fields.as_slice()).unwrap_or_default();
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match fields.get(i) {
                    Some(f) => {
                        write_str(out, &f.name);
                        out.push(b':');
                        write_value(out, v, Some(&f.schema));
                    }
                    None => {
                        write_str(out, &format!("field{i}"));
                        out.push(b':');
                        write_value(out, v, None);
                    }
                }
            }
            out.push(b'}');
        }
    }
}

fn write_float(out: &mut Vec<u8>, f: f64) {
    if f.is_finite() {
        let _ = serde_json::to_writer(&mut *out, &f);
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Standard base64 with padding (what `JsonConverter` writes for bytes).
pub fn base64(out: &mut Vec<u8>, bytes: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(ALPHABET[(n >> 18) as usize & 63]);
        out.push(ALPHABET[(n >> 12) as usize & 63]);
        out.push(if chunk.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if chunk.len() > 2 {
            ALPHABET[n as usize & 63]
        } else {
            b'='
        });
    }
}

/// A JSON element as a schemaless value.
pub fn to_value(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int64(i),
            None => Value::Float64(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(to_value).collect()),
        serde_json::Value::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (Value::String(k.clone()), to_value(v)))
                .collect(),
        ),
    }
}

/// A JSON element as a record key: strings as they are, anything else as its JSON text.
pub fn to_key(json: &serde_json::Value) -> Data {
    match json {
        serde_json::Value::Null => Data::null(),
        serde_json::Value::String(s) => Data::string(s.clone()),
        other => Data::string(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(data: Data, expected: &str) {
        let mut out = Vec::new();
        write_data(&mut out, &data);
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn values_as_json() {
        check(Data::string("a\"b"), r#""a\"b""#);
        check(Data::null(), "null");
        check(Data::bytes(b"hi!".to_vec()), r#""aGkh""#);
        check(Data::bytes(b"h".to_vec()), r#""aA==""#);
        let schema = Schema::structure()
            .field("id", Schema::int32())
            .field("price", logical::decimal_schema(2))
            .field("tags", Schema::array(Schema::string()))
            .field("ratio", Schema::float64());
        let data = Data::with_schema(
            schema,
            Value::Struct(vec![
                Value::Int32(7),
                logical::decimal_value(12345),
                Value::Array(vec![Value::String("x".into())]),
                Value::Float64(f64::NAN),
            ]),
        )
        .unwrap();
        check(data, r#"{"id":7,"price":123.45,"tags":["x"],"ratio":null}"#);
        check(
            Data::schemaless(Value::Map(vec![
                (Value::String("a".into()), Value::Int64(1)),
                (Value::String("b".into()), Value::Boolean(true)),
            ])),
            r#"{"a":1,"b":true}"#,
        );
        check(
            Data::schemaless(Value::Map(vec![(Value::Int32(1), Value::Float32(0.5))])),
            "[[1,0.5]]",
        );
    }

    #[test]
    fn json_round_trips_through_values() {
        let text = r#"{"a":[1,2.5,"x",null,true],"b":{"c":-3}}"#;
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut out = Vec::new();
        write_value(&mut out, &to_value(&json), None);
        assert_eq!(String::from_utf8(out).unwrap(), text);
        assert_eq!(to_key(&serde_json::json!("k")), Data::string("k"));
        assert_eq!(to_key(&serde_json::json!(12)), Data::string("12"));
    }
}
