//! Records from a schema: Confluent datagen's schema format (Avro record schemas whose
//! fields carry `arg.properties`), for `schema.string`, `schema.filename` and the built-in
//! quickstarts `users`, `orders` and `clickstream`.
//!
//! Field types: `int`, `long`, `float`, `double`, `string`, `boolean`, nested `record`s,
//! and unions with `null` (`["null", "string"]`: an optional field, always generated).
//! Value generators, in `arg.properties` on the field or on its type:
//!
//! - `{"iteration": {"start": S, "step": K}}`: a sequence, `S + K * seq` (numbers);
//! - `{"range": {"min": A, "max": B}}`: uniformly random in `[A, B)` (numbers);
//! - `{"options": [...]}`: one of the list, uniformly (any type);
//! - `"logicalType": "uuid"` on a string: a version 4 UUID;
//! - `"logicalType": "timestamp-millis"` on a long: a Kafka Connect Timestamp, by default
//!   `datagen.start.timestamp.ms + 1000 * seq` (or as `iteration` / `range` say).
//!
//! Without a generator: numbers random in `[0, 1000)` (`[0, 1)` for floats), strings of 8
//! random lowercase letters, booleans random. Every value is a function of the seed, the
//! record's sequence number and the field's position only: reproducible, and a restarted
//! task continues the same sequence. Not supported (an error naming the field): arrays,
//! maps, enums, bytes and Confluent's `regex` generator.

use serde_json::Value as Json;
use tributary_plugin_sdk::{ConnectError, Data, Result, Schema, Value, logical};

/// Confluent's `users` quickstart (registertime, userid, regionid, gender), keyed by userid.
pub const USERS: &str = r#"{"namespace": "ksql", "name": "users", "type": "record", "fields": [
  {"name": "registertime", "type": {"type": "long", "arg.properties": {"range": {"min": 1487715775521, "max": 1519273364600}}}},
  {"name": "userid", "type": {"type": "string", "arg.properties": {"options": ["User_1", "User_2", "User_3", "User_4", "User_5", "User_6", "User_7", "User_8", "User_9"]}}},
  {"name": "regionid", "type": {"type": "string", "arg.properties": {"options": ["Region_1", "Region_2", "Region_3", "Region_4", "Region_5", "Region_6", "Region_7", "Region_8", "Region_9"]}}},
  {"name": "gender", "type": {"type": "string", "arg.properties": {"options": ["MALE", "FEMALE", "OTHER"]}}}
]}"#;

/// Confluent's `orders` quickstart (with its nested address), keyed by orderid.
pub const ORDERS: &str = r#"{"namespace": "ksql", "name": "orders", "type": "record", "fields": [
  {"name": "ordertime", "type": {"type": "long", "arg.properties": {"range": {"min": 1487715775521, "max": 1519273364600}}}},
  {"name": "orderid", "type": {"type": "int", "arg.properties": {"iteration": {"start": 0}}}},
  {"name": "itemid", "type": {"type": "string", "arg.properties": {"options": ["Item_1", "Item_10", "Item_101", "Item_23", "Item_42", "Item_512", "Item_7", "Item_88", "Item_999"]}}},
  {"name": "orderunits", "type": {"type": "double", "arg.properties": {"range": {"min": 0.1, "max": 10.0}}}},
  {"name": "address", "type": {"type": "record", "name": "address", "fields": [
    {"name": "city", "type": {"type": "string", "arg.properties": {"options": ["City_1", "City_2", "City_3", "City_4", "City_5", "City_6", "City_7", "City_8", "City_9"]}}},
    {"name": "state", "type": {"type": "string", "arg.properties": {"options": ["State_1", "State_2", "State_3", "State_4", "State_5", "State_6", "State_7", "State_8", "State_9"]}}},
    {"name": "zipcode", "type": {"type": "long", "arg.properties": {"range": {"min": 10000, "max": 99999}}}}
  ]}}
]}"#;

/// Confluent's `clickstream` quickstart (web server log lines), keyed by ip.
pub const CLICKSTREAM: &str = r#"{"namespace": "ksql", "name": "clickstream", "type": "record", "fields": [
  {"name": "ip", "type": {"type": "string", "arg.properties": {"options": ["111.152.45.45", "111.203.236.146", "111.168.57.122", "111.249.79.93", "111.90.225.227", "111.173.165.103", "111.145.8.144", "111.245.174.248", "111.245.174.111", "222.152.45.45"]}}},
  {"name": "userid", "type": {"type": "int", "arg.properties": {"range": {"min": 1, "max": 40}}}},
  {"name": "remote_user", "type": {"type": "string", "arg.properties": {"options": ["-"]}}},
  {"name": "_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "request", "type": {"type": "string", "arg.properties": {"options": ["GET /index.html HTTP/1.1", "GET /site/user_status.html HTTP/1.1", "GET /site/login.html HTTP/1.1", "GET /images/track.png HTTP/1.1", "GET /images/logo-small.png HTTP/1.1"]}}},
  {"name": "status", "type": {"type": "string", "arg.properties": {"options": ["200", "302", "404", "405", "406", "407"]}}},
  {"name": "bytes", "type": {"type": "string", "arg.properties": {"options": ["278", "1289", "2048", "4096", "4006", "4196", "14096"]}}},
  {"name": "referrer", "type": {"type": "string", "arg.properties": {"options": ["-"]}}},
  {"name": "agent", "type": {"type": "string", "arg.properties": {"options": ["Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/59.0.3071.115 Safari/537.36"]}}}
]}"#;

/// The primitive a generator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Long,
    Float,
    Double,
    String,
    Boolean,
}

/// How one field's values are made.
#[derive(Debug, Clone)]
enum Make {
    Iteration {
        start: f64,
        step: f64,
    },
    Range {
        min: f64,
        max: f64,
    },
    Options(Vec<Value>),
    Uuid,
    /// `start + 1000 * seq`.
    Timestamp,
    Default,
    Record(Vec<FieldGen>),
}

#[derive(Debug, Clone)]
struct FieldGen {
    name: String,
    kind: Kind,
    make: Make,
}

/// Records of one schema.
#[derive(Debug, Clone)]
pub struct SchemaGen {
    schema: Schema,
    fields: Vec<FieldGen>,
    key_field: Option<usize>,
    seed: u64,
    start_ms: i64,
}

fn err(field: &str, what: impl std::fmt::Display) -> ConnectError {
    ConnectError::new(format!("datagen schema, field {field:?}: {what}"))
}

impl SchemaGen {
    /// Parse a schema's JSON text; `key_field` (`schema.keyfield`, empty for none) names
    /// the top-level field that is also the record key.
    pub fn parse(text: &str, key_field: &str, seed: u64, start_ms: i64) -> Result<SchemaGen> {
        let json: Json = serde_json::from_str(text)
            .map_err(|e| ConnectError::new(format!("the datagen schema is not JSON: {e}")))?;
        let (schema, make, _) = parse_type(&json, None, "(top level)")?;
        let Make::Record(fields) = make else {
            return Err(ConnectError::new(
                "the datagen schema must be a record: {\"type\": \"record\", \"name\": ..., \"fields\": [...]}",
            ));
        };
        let key_field =
            if key_field.is_empty() {
                None
            } else {
                Some(fields.iter().position(|f| f.name == key_field).ok_or_else(|| {
                ConnectError::new(format!(
                    "schema.keyfield {key_field:?} is not a top-level field of the schema"
                ))
            })?)
            };
        Ok(SchemaGen {
            schema,
            fields,
            key_field,
            seed,
            start_ms,
        })
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Record `seq`: its key (null without a key field) and value.
    pub fn record(&self, seq: i64) -> (Data, Data) {
        let values = self.values(&self.fields, seq, 0);
        let key = match self.key_field {
            Some(i) => Data {
                schema: Some(self.schema.fields[i].schema.clone()),
                value: values[i].clone(),
            },
            None => Data::null(),
        };
        let value = Data {
            schema: Some(self.schema.clone()),
            value: Value::Struct(values),
        };
        (key, value)
    }

    fn values(&self, fields: &[FieldGen], seq: i64, salt: u64) -> Vec<Value> {
        fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let salt = salt.wrapping_mul(31).wrapping_add(i as u64 + 1);
                let r = splitmix64(
                    self.seed
                        ^ (seq as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                        ^ salt.wrapping_mul(0xd1b5_4a32_d192_ed03),
                );
                self.value(f, seq, r, salt)
            })
            .collect()
    }

    fn value(&self, f: &FieldGen, seq: i64, r: u64, salt: u64) -> Value {
        let unit = (r >> 11) as f64 / (1u64 << 53) as f64;
        match &f.make {
            Make::Record(fields) => Value::Struct(self.values(fields, seq, salt)),
            Make::Options(options) => options[(r % options.len() as u64) as usize].clone(),
            Make::Iteration { start, step } => number(f.kind, start + step * seq as f64),
            Make::Range { min, max } => {
                if matches!(f.kind, Kind::Float | Kind::Double) {
                    number(f.kind, min + (max - min) * unit)
                } else {
                    let (lo, hi) = (*min as i64, *max as i64);
                    let span = (hi - lo).max(1) as u64;
                    number(f.kind, (lo + (r % span) as i64) as f64)
                }
            }
            Make::Uuid => Value::String(uuid(r, splitmix64(r))),
            Make::Timestamp => Value::Int64(self.start_ms + 1000 * seq),
            Make::Default => match f.kind {
                Kind::Boolean => Value::Boolean(r & 1 == 1),
                Kind::String => Value::String(
                    (0..8)
                        .map(|i| char::from(b'a' + ((r >> (i * 5)) % 26) as u8))
                        .collect(),
                ),
                Kind::Float | Kind::Double => number(f.kind, unit),
                _ => number(f.kind, (r % 1000) as f64),
            },
        }
    }
}

fn number(kind: Kind, x: f64) -> Value {
    match kind {
        Kind::Int => Value::Int32(x as i32),
        Kind::Long => Value::Int64(x as i64),
        Kind::Float => Value::Float32(x as f32),
        Kind::Double => Value::Float64(x),
        Kind::Boolean => Value::Boolean(x != 0.0),
        Kind::String => Value::String(format!("{}", x as i64)),
    }
}

/// A version 4 UUID from 128 random bits.
fn uuid(a: u64, b: u64) -> String {
    let a = (a & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One type: its Connect schema, its generator, and whether it is optional.
fn parse_type(json: &Json, outer_args: Option<&Json>, field: &str) -> Result<(Schema, Make, bool)> {
    match json {
        Json::String(name) => parse_object(&serde_json::json!({ "type": name }), outer_args, field),
        Json::Array(union) => {
            let non_null: Vec<&Json> = union
                .iter()
                .filter(|t| t.as_str() != Some("null"))
                .collect();
            if non_null.len() != 1 {
                return Err(err(field, "only unions of null and one type are supported"));
            }
            let (schema, make, _) = parse_type(non_null[0], outer_args, field)?;
            Ok((schema.optional(), make, true))
        }
        Json::Object(_) => parse_object(json, outer_args, field),
        other => Err(err(field, format!("{other} is not a type"))),
    }
}

fn parse_object(
    json: &Json,
    outer_args: Option<&Json>,
    field: &str,
) -> Result<(Schema, Make, bool)> {
    let ty = json.get("type").ok_or_else(|| err(field, "no \"type\""))?;
    if !ty.is_string() {
        // {"type": {"type": "long", ...}} or {"type": ["null", ...]}: the inner one decides.
        return parse_type(ty, json.get("arg.properties").or(outer_args), field);
    }
    let ty = ty.as_str().unwrap_or_default();
    let args = json.get("arg.properties").or(outer_args);
    let logical_type = json.get("logicalType").and_then(Json::as_str);
    if ty == "record" {
        let name = json.get("name").and_then(Json::as_str).unwrap_or("record");
        let full = match json.get("namespace").and_then(Json::as_str) {
            Some(ns) if !ns.is_empty() => format!("{ns}.{name}"),
            _ => name.to_owned(),
        };
        let fields = json
            .get("fields")
            .and_then(Json::as_array)
            .ok_or_else(|| err(field, "a record needs \"fields\": [...]"))?;
        let mut schema = Schema::structure().named(full);
        let mut gens = Vec::with_capacity(fields.len());
        for f in fields {
            let name = f
                .get("name")
                .and_then(Json::as_str)
                .ok_or_else(|| err(field, "a field without a \"name\""))?;
            let t = f.get("type").ok_or_else(|| err(name, "no \"type\""))?;
            let (s, make, _) = parse_type(t, f.get("arg.properties"), name)?;
            let kind = kind_of(&s);
            schema = schema.field(name, s);
            gens.push(FieldGen {
                name: name.to_owned(),
                kind,
                make,
            });
        }
        return Ok((schema, Make::Record(gens), false));
    }
    let (schema, kind) = match ty {
        "int" => (Schema::int32(), Kind::Int),
        "long" if logical_type == Some("timestamp-millis") => {
            (logical::timestamp_schema(), Kind::Long)
        }
        "long" => (Schema::int64(), Kind::Long),
        "float" => (Schema::float32(), Kind::Float),
        "double" => (Schema::float64(), Kind::Double),
        "string" => (Schema::string(), Kind::String),
        "boolean" => (Schema::boolean(), Kind::Boolean),
        other => {
            return Err(err(
                field,
                format!(
                    "type {other:?} is not supported (int, long, float, double, string, boolean, record)"
                ),
            ));
        }
    };
    let make = match args {
        Some(a) => parse_args(a, kind, field)?,
        None if logical_type == Some("uuid") && kind == Kind::String => Make::Uuid,
        None if logical_type == Some("timestamp-millis") => Make::Timestamp,
        None => Make::Default,
    };
    Ok((schema, make, false))
}

fn kind_of(s: &Schema) -> Kind {
    use tributary_plugin_sdk::SchemaType as T;
    match s.kind {
        T::Int32 | T::Int8 | T::Int16 => Kind::Int,
        T::Int64 => Kind::Long,
        T::Float32 => Kind::Float,
        T::Float64 => Kind::Double,
        T::Boolean => Kind::Boolean,
        _ => Kind::String,
    }
}

fn parse_args(a: &Json, kind: Kind, field: &str) -> Result<Make> {
    let num = |v: Option<&Json>, what: &str, default: Option<f64>| -> Result<f64> {
        match v {
            Some(n) => n
                .as_f64()
                .ok_or_else(|| err(field, format!("{what} must be a number"))),
            None => default.ok_or_else(|| err(field, format!("{what} is missing"))),
        }
    };
    let numeric = !matches!(kind, Kind::String | Kind::Boolean);
    if let Some(it) = a.get("iteration") {
        if !numeric {
            return Err(err(field, "iteration needs a number type"));
        }
        return Ok(Make::Iteration {
            start: num(it.get("start"), "iteration.start", Some(0.0))?,
            step: num(it.get("step"), "iteration.step", Some(1.0))?,
        });
    }
    if let Some(r) = a.get("range") {
        if !numeric {
            return Err(err(field, "range needs a number type"));
        }
        let (min, max) = (
            num(r.get("min"), "range.min", None)?,
            num(r.get("max"), "range.max", None)?,
        );
        if max <= min {
            return Err(err(
                field,
                format!("range.max {max} must be above range.min {min}"),
            ));
        }
        return Ok(Make::Range { min, max });
    }
    if let Some(o) = a.get("options") {
        let list = o
            .as_array()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| err(field, "options must be a non-empty list"))?;
        let values = list
            .iter()
            .map(|v| {
                option_value(v, kind)
                    .ok_or_else(|| err(field, format!("option {v} does not fit the field's type")))
            })
            .collect::<Result<_>>()?;
        return Ok(Make::Options(values));
    }
    if a.get("regex").is_some() {
        return Err(err(
            field,
            "the regex generator is not supported; use options",
        ));
    }
    Err(err(
        field,
        format!(
            "arg.properties {a} has no generator this datagen knows (iteration, range, options)"
        ),
    ))
}

fn option_value(v: &Json, kind: Kind) -> Option<Value> {
    Some(match kind {
        Kind::String => Value::String(match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        }),
        Kind::Boolean => Value::Boolean(v.as_bool()?),
        Kind::Int => Value::Int32(i32::try_from(v.as_i64()?).ok()?),
        Kind::Long => Value::Int64(v.as_i64()?),
        Kind::Float => Value::Float32(v.as_f64()? as f32),
        Kind::Double => Value::Float64(v.as_f64()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quickstarts_parse_and_validate() {
        for (text, key) in [(USERS, "userid"), (ORDERS, "orderid"), (CLICKSTREAM, "ip")] {
            let g = SchemaGen::parse(text, key, 42, 0).unwrap();
            for seq in 0..200 {
                let (k, v) = g.record(seq);
                v.validate().unwrap();
                k.validate().unwrap();
                assert_ne!(k, Data::null());
            }
        }
        let g = SchemaGen::parse(ORDERS, "orderid", 1, 0).unwrap();
        assert_eq!(g.schema().name.as_deref(), Some("ksql.orders"));
        let (k, v) = g.record(17);
        assert_eq!(k.value, Value::Int32(17), "orderid iterates from 0");
        let Some(Value::Struct(address)) = v.field("address") else {
            panic!("{v:?}")
        };
        assert_eq!(address.len(), 3);
        let Some(Value::Float64(units)) = v.field("orderunits") else {
            panic!("{v:?}")
        };
        assert!((0.1..10.0).contains(units));
    }

    #[test]
    fn each_generator() {
        let text = r#"{"type": "record", "name": "t", "fields": [
            {"name": "seq", "type": "long", "arg.properties": {"iteration": {"start": 100, "step": 5}}},
            {"name": "n", "type": "int", "arg.properties": {"range": {"min": 3, "max": 6}}},
            {"name": "x", "type": "double", "arg.properties": {"range": {"min": -1, "max": 1}}},
            {"name": "c", "type": ["null", "string"], "arg.properties": {"options": ["a", "b"]}},
            {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
            {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "free", "type": "string"}
        ]}"#;
        let g = SchemaGen::parse(text, "", 7, 1_000).unwrap();
        let mut ns = std::collections::BTreeSet::new();
        let mut cs = std::collections::BTreeSet::new();
        for seq in 0..300 {
            let (k, v) = g.record(seq);
            assert_eq!(k, Data::null());
            v.validate().unwrap();
            assert_eq!(v.field("seq"), Some(&Value::Int64(100 + 5 * seq)));
            let Some(Value::Int32(n)) = v.field("n") else {
                panic!()
            };
            ns.insert(*n);
            let Some(Value::Float64(x)) = v.field("x") else {
                panic!()
            };
            assert!((-1.0..1.0).contains(x));
            let Some(Value::String(c)) = v.field("c") else {
                panic!()
            };
            cs.insert(c.clone());
            let Some(Value::String(id)) = v.field("id") else {
                panic!()
            };
            assert_eq!(id.len(), 36);
            assert_eq!(&id[14..15], "4", "{id}");
            assert_eq!(v.field("ts"), Some(&Value::Int64(1_000 + 1000 * seq)));
            let Some(Value::String(free)) = v.field("free") else {
                panic!()
            };
            assert_eq!(free.len(), 8);
        }
        assert_eq!(ns.into_iter().collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(cs.len(), 2);
        assert_eq!(
            g.schema().fields[5].schema.name.as_deref(),
            Some(logical::TIMESTAMP)
        );
        // Same seed, same records; another seed, others.
        let again = SchemaGen::parse(text, "", 7, 1_000).unwrap();
        let other = SchemaGen::parse(text, "", 8, 1_000).unwrap();
        assert_eq!(g.record(5), again.record(5));
        assert_ne!(g.record(5), other.record(5));
    }

    #[test]
    fn bad_schemas_name_the_field() {
        let check = |text: &str, expected: &str| {
            let e = SchemaGen::parse(text, "", 1, 0).unwrap_err();
            assert!(e.message().contains(expected), "{e}");
        };
        check("{", "not JSON");
        check(r#"{"type": "string"}"#, "must be a record");
        check(
            r#"{"type": "record", "name": "t", "fields": [{"name": "a", "type": "bytes"}]}"#,
            "field \"a\": type \"bytes\" is not supported",
        );
        check(
            r#"{"type": "record", "name": "t", "fields": [{"name": "u", "type": "string", "arg.properties": {"regex": "x+"}}]}"#,
            "field \"u\": the regex generator",
        );
        check(
            r#"{"type": "record", "name": "t", "fields": [{"name": "r", "type": "int", "arg.properties": {"range": {"min": 5, "max": 1}}}]}"#,
            "must be above",
        );
        let e = SchemaGen::parse(USERS, "nope", 1, 0).unwrap_err();
        assert!(e.message().contains("schema.keyfield \"nope\""), "{e}");
    }
}
