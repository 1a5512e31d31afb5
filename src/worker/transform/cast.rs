//! `Cast$Key` / `Cast$Value`: fields of a struct or map, or the whole key or value, cast to
//! another primitive type with Java's conversions (numbers narrowed as Java's
//! `Number.intValue()` etc. do, strings parsed as `Integer.parseInt`, `Double.parseDouble`
//! and `Boolean.parseBoolean` do, anything to string as its Java `toString`, bytes to
//! string as base64, Connect dates in the ISO forms of Kafka's `Values`).

use tributary_plugin_abi::config::{ConfigType, Importance};
use tributary_plugin_abi::data::{Data, Schema, SchemaType, Value, logical};

use super::config::{Conf, Dflt, KeySpec, REPLACE_NULL, Valid, key};
use super::fields::both_sides;
use super::{
    Build, ConfigError, Def, Outcome, RecordMut, Side, Transform, field_value, map_get, map_put,
    require_map, require_struct, type_name,
};
use crate::worker::convert::SimpleHeaderConverter;

pub(super) const DEFS: &[Def] = &both_sides!(
    "Cast",
    "Cast fields or the entire key or value to a specific type, e.g. to force an integer field \
     to a smaller width. Cast from integers, floats, boolean and string to any other type, and \
     cast binary to string (base64 encoded).",
    KEYS,
    Cast::build
);

const KEYS: &[KeySpec] = &[
    key(
        "spec",
        ConfigType::List,
        Dflt::Required,
        Importance::High,
        Valid::NonEmptyList,
        "List of fields and the type to cast them to of the form field1:type,field2:type to cast \
         fields of Maps or Structs. A single type to cast the entire value. Valid types are int8, \
         int16, int32, int64, float32, float64, boolean, and string. Note that binary fields can \
         only be cast to string.",
    ),
    REPLACE_NULL,
];

/// A type to cast to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
}

const OUTPUTS: &str = "int8, int16, int32, int64, float32, float64, boolean, string";
const INPUTS: &str = "int8, int16, int32, int64, float32, float64, boolean, string, bytes";

impl Target {
    fn parse(s: &str) -> Result<Target, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "int8" => Target::Int8,
            "int16" => Target::Int16,
            "int32" => Target::Int32,
            "int64" => Target::Int64,
            "float32" => Target::Float32,
            "float64" => Target::Float64,
            "boolean" => Target::Boolean,
            "string" => Target::String,
            t @ ("bytes" | "array" | "map" | "struct") => {
                return Err(format!(
                    "cast does not support casting to {t}; supported types are {OUTPUTS}"
                ));
            }
            other => {
                return Err(format!(
                    "invalid type found in casting spec: {other:?}; valid types are {OUTPUTS}"
                ));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Target::Int8 => "int8",
            Target::Int16 => "int16",
            Target::Int32 => "int32",
            Target::Int64 => "int64",
            Target::Float32 => "float32",
            Target::Float64 => "float64",
            Target::Boolean => "boolean",
            Target::String => "string",
        }
    }

    fn schema(self) -> Schema {
        Schema::new(match self {
            Target::Int8 => SchemaType::Int8,
            Target::Int16 => SchemaType::Int16,
            Target::Int32 => SchemaType::Int32,
            Target::Int64 => SchemaType::Int64,
            Target::Float32 => SchemaType::Float32,
            Target::Float64 => SchemaType::Float64,
            Target::Boolean => SchemaType::Boolean,
            Target::String => SchemaType::String,
        })
    }
}

#[derive(Debug)]
pub(super) struct Cast {
    side: Side,
    whole: Option<Target>,
    fields: Vec<(String, Target)>,
    replace_null: bool,
}

impl Cast {
    fn build(c: &Conf<'_>, side: Side) -> Result<Box<dyn Transform>, ConfigError> {
        let spec = c.list("spec");
        let mut whole = None;
        let mut fields = Vec::new();
        for m in &spec {
            let parts: Vec<&str> = m.split(':').collect();
            match parts[..] {
                [t] => whole = Some(Target::parse(t).map_err(|e| c.err("spec", e))?),
                [f, t] => fields.push((
                    f.trim().to_owned(),
                    Target::parse(t).map_err(|e| c.err("spec", e))?,
                )),
                _ => {
                    return Err(c.err(
                        "spec",
                        format!("invalid cast mapping {m:?}; write field:type or a single type"),
                    ));
                }
            }
        }
        if whole.is_some() && spec.len() > 1 {
            return Err(c.err(
                "spec",
                "a cast of the entire value to one type may be the only entry of spec; cast \
                 either the whole value or fields",
            ));
        }
        Ok(Box::new(Cast {
            side,
            whole,
            fields,
            replace_null: c.boolean("replace.null.with.default"),
        }))
    }

    fn target(&self, field: &str) -> Option<Target> {
        self.fields
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, t)| *t)
    }
}

/// The schema of a cast value: the target type, optional and with its default cast as the
/// original; a whole-value cast keeps the doc and parameters (not a logical type's name,
/// which would no longer fit the value).
fn cast_schema(original: &Schema, t: Target, whole: bool) -> Result<Schema, String> {
    let mut s = t.schema();
    s.optional = original.optional;
    if whole {
        let logical = matches!(
            original.name.as_deref(),
            Some(logical::DECIMAL | logical::DATE | logical::TIME | logical::TIMESTAMP)
        );
        if !logical {
            s.name = original.name.clone();
            s.version = original.version;
            s.parameters = original.parameters.clone();
        }
        s.doc = original.doc.clone();
    }
    if let Some(d) = &original.default {
        s.default = Some(Box::new(cast_value(Some(original), d, t)?));
    }
    Ok(s)
}

impl Transform for Cast {
    fn apply(&self, r: &mut RecordMut<'_>) -> Outcome {
        const PURPOSE: &str = "cast types";
        let data = self.side.pick(&mut *r.key, &mut *r.value);
        if data.value == Value::Null {
            return Ok(true);
        }
        if let Some(t) = self.whole {
            data.value = cast_value(data.schema.as_ref(), &data.value, t)?;
            if let Some(s) = &data.schema {
                data.schema = Some(cast_schema(s, t, true)?);
            }
            return Ok(true);
        }
        if data.schema.is_none() {
            let m = require_map(&mut data.value, PURPOSE)?;
            for (f, t) in &self.fields {
                let cast = match map_get(m, f) {
                    Some(v) => cast_value(None, v, *t)?,
                    None => Value::Null,
                };
                map_put(m, f, cast);
            }
            return Ok(true);
        }
        let (schema, values) = require_struct(data, PURPOSE)?;
        for (f, v) in schema.fields.iter_mut().zip(values.iter_mut()) {
            let current = field_value(f, v, self.replace_null);
            match self.target(&f.name) {
                Some(t) => {
                    *v = cast_value(Some(&f.schema), &current, t)?;
                    f.schema = cast_schema(&f.schema, t, false)?;
                }
                None => *v = current,
            }
        }
        Ok(true)
    }
}

/// Java's narrowing of a double to an integer type: to `long` (saturating, NaN 0), then
/// the low bits.
fn from_f64(f: f64, t: Target) -> Value {
    match t {
        Target::Int8 => Value::Int8(f as i32 as i8),
        Target::Int16 => Value::Int16(f as i32 as i16),
        Target::Int32 => Value::Int32(f as i32),
        Target::Int64 => Value::Int64(f as i64),
        Target::Float32 => Value::Float32(f as f32),
        Target::Float64 => Value::Float64(f),
        Target::Boolean => Value::Boolean(f as i64 != 0),
        Target::String => Value::Null,
    }
}

/// An integer's conversions (Java's `Number.byteValue()` etc. keep the low bits).
fn from_i128(n: i128, t: Target) -> Value {
    match t {
        Target::Int8 => Value::Int8(n as i8),
        Target::Int16 => Value::Int16(n as i16),
        Target::Int32 => Value::Int32(n as i32),
        Target::Int64 => Value::Int64(n as i64),
        Target::Float32 => Value::Float32(n as f32),
        Target::Float64 => Value::Float64(n as f64),
        Target::Boolean => Value::Boolean(n as i64 != 0),
        Target::String => Value::Null,
    }
}

/// Java's `Float.parseFloat` / `Double.parseDouble`: surrounding whitespace, an `f` or `d`
/// suffix and `Infinity` accepted.
fn parse_java_float(s: &str) -> Option<f64> {
    let t = s.trim();
    let t = t
        .strip_suffix(['f', 'F', 'd', 'D'])
        .filter(|r| !r.is_empty() && !r.ends_with(['e', 'E']))
        .unwrap_or(t);
    match t {
        "Infinity" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ if t
            .chars()
            .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E') =>
        {
            None
        }
        _ => t.parse().ok(),
    }
}

/// A decimal string as an unscaled integer at `scale`, if it is exactly representable.
pub(super) fn decimal_from_text(text: &str, scale: i32) -> Option<i128> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut digits: String = format!("{int}{frac}");
    let exp = scale - frac.len() as i32;
    if exp >= 0 {
        digits.extend(std::iter::repeat_n('0', exp as usize));
    } else {
        let cut = digits.len().checked_sub(exp.unsigned_abs() as usize)?;
        if digits[cut..].bytes().any(|b| b != b'0') {
            return None;
        }
        digits.truncate(cut);
    }
    let n: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    Some(if neg { -n } else { n })
}

/// Cast one value (its schema, if any, says how to read it).
fn cast_value(schema: Option<&Schema>, v: &Value, t: Target) -> Result<Value, String> {
    if *v == Value::Null {
        return Ok(Value::Null);
    }
    let kind = schema.map(|s| s.kind);
    if matches!(v, Value::Array(_) | Value::Map(_) | Value::Struct(_))
        || matches!(
            kind,
            Some(SchemaType::Array | SchemaType::Map | SchemaType::Struct)
        )
    {
        return Err(format!(
            "cast does not support casting from {}; supported types are {INPUTS}",
            kind.map_or(type_name(v), SchemaType::json_name)
        ));
    }
    let name = schema.and_then(|s| s.name.as_deref());
    if t == Target::String {
        let data = Data {
            schema: schema.cloned(),
            value: v.clone(),
        };
        return match v {
            Value::String(s) => Ok(Value::String(s.clone())),
            _ => SimpleHeaderConverter::to_string_form(&data)
                .map(|s| Value::String(s.unwrap_or_default())),
        };
    }
    let out_of_range = |s: &str| {
        format!(
            "value ({s}) was out of range for requested data type {} or is not a number",
            t.name()
        )
    };
    Ok(match v {
        Value::Boolean(b) => from_i128(i128::from(*b), t),
        Value::Int8(n) => from_i128(i128::from(*n), t),
        Value::Int16(n) => from_i128(i128::from(*n), t),
        Value::Int32(n) => from_i128(i128::from(*n), t),
        Value::Int64(n) => from_i128(i128::from(*n), t),
        Value::Float32(f) => match t {
            Target::Float32 => Value::Float32(*f),
            _ => from_f64(f64::from(*f), t),
        },
        Value::Float64(f) => from_f64(*f, t),
        Value::Bytes(b) if name == Some(logical::DECIMAL) => {
            let scale = schema.and_then(logical::decimal_scale).unwrap_or(0);
            let unscaled = logical::decimal_unscaled(b)
                .ok_or("a decimal wider than 128 bits cannot be cast to a number")?;
            match t {
                Target::Float32 | Target::Float64 => {
                    let f = unscaled as f64 / 10f64.powi(scale);
                    from_f64(f, t)
                }
                _ => {
                    // BigDecimal.longValue(): the integer part, low bits kept.
                    let int = if scale >= 0 {
                        unscaled / 10i128.checked_pow(scale as u32).unwrap_or(i128::MAX)
                    } else {
                        unscaled.wrapping_mul(10i128.wrapping_pow(scale.unsigned_abs()))
                    };
                    from_i128(int, t)
                }
            }
        }
        Value::Bytes(_) => {
            return Err(format!(
                "unexpected type in cast: bytes can only be cast to string (base64), not {}",
                t.name()
            ));
        }
        Value::String(s) => match t {
            Target::Int8 => Value::Int8(s.parse().map_err(|_| out_of_range(s))?),
            Target::Int16 => Value::Int16(s.parse().map_err(|_| out_of_range(s))?),
            Target::Int32 => Value::Int32(s.parse().map_err(|_| out_of_range(s))?),
            Target::Int64 => Value::Int64(s.parse().map_err(|_| out_of_range(s))?),
            Target::Float32 => {
                Value::Float32(parse_java_float(s).ok_or_else(|| out_of_range(s))? as f32)
            }
            Target::Float64 => Value::Float64(parse_java_float(s).ok_or_else(|| out_of_range(s))?),
            Target::Boolean => Value::Boolean(s.eq_ignore_ascii_case("true")),
            Target::String => Value::String(s.clone()),
        },
        Value::Null | Value::Array(_) | Value::Map(_) | Value::Struct(_) => Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use tributary_plugin_abi::data::{Data, Schema, SchemaType, Value, logical};

    use super::super::tests::{chain, config_errors, map, rec, s, sink_value};
    use super::decimal_from_text;

    fn cast(spec: &str) -> super::super::Chain {
        chain(&[
            ("transforms", "c"),
            (
                "transforms.c.type",
                "org.apache.kafka.connect.transforms.Cast$Value",
            ),
            ("transforms.c.spec", spec),
        ])
    }

    /// (input, target, expected) for a schemaless whole-value cast.
    #[test]
    fn whole_value_casts_follow_java() {
        let cases: &[(Value, &str, Value)] = &[
            (Value::Int32(300), "int8", Value::Int8(44)),
            (Value::Int64(-1), "int16", Value::Int16(-1)),
            (Value::Float64(1.9), "int32", Value::Int32(1)),
            (Value::Float64(-1.9), "int64", Value::Int64(-1)),
            (Value::Float64(1e20), "int32", Value::Int32(i32::MAX)),
            (Value::Float64(f64::NAN), "int64", Value::Int64(0)),
            (Value::Boolean(true), "int32", Value::Int32(1)),
            (Value::Int32(0), "boolean", Value::Boolean(false)),
            (Value::Int32(2), "boolean", Value::Boolean(true)),
            (s("42"), "int8", Value::Int8(42)),
            (s("-7"), "int64", Value::Int64(-7)),
            (s("1.5"), "float64", Value::Float64(1.5)),
            (s(" 2.5f "), "float32", Value::Float32(2.5)),
            (s("TRUE"), "boolean", Value::Boolean(true)),
            (s("yes"), "boolean", Value::Boolean(false)),
            (Value::Int32(42), "string", s("42")),
            (Value::Float64(1.0), "string", s("1.0")),
            (Value::Float64(1e10), "string", s("1.0E10")),
            (Value::Boolean(false), "string", s("false")),
            (Value::Bytes(b"hi".to_vec()), "string", s("aGk=")),
            (Value::Int64(5), "float32", Value::Float32(5.0)),
        ];
        for (input, target, expected) in cases {
            let out = sink_value(&cast(target), Data::schemaless(input.clone()));
            assert_eq!(&out.value, expected, "{input:?} -> {target}");
            assert_eq!(out.schema, None);
        }
    }

    #[test]
    fn whole_value_with_schema_changes_the_schema() {
        let out = sink_value(
            &cast("int32"),
            Data::with_schema(Schema::int64().optional().doc("d"), Value::Int64(9)).unwrap(),
        );
        let schema = out.schema.unwrap();
        assert_eq!(schema.kind, SchemaType::Int32);
        assert!(schema.optional);
        assert_eq!(schema.doc.as_deref(), Some("d"));
        assert_eq!(out.value, Value::Int32(9));
        // A Timestamp to string: Kafka's Values ISO form, and no logical name left.
        let out = sink_value(
            &cast("string"),
            Data::with_schema(logical::timestamp_schema(), Value::Int64(1_700_000_000_123))
                .unwrap(),
        );
        assert_eq!(out.value, s("2023-11-14T22:13:20.123Z"));
        assert_eq!(out.schema.unwrap().name, None);
        // A Decimal to numbers.
        let dec = || {
            Data::with_schema(logical::decimal_schema(2), logical::decimal_value(-12345)).unwrap()
        };
        assert_eq!(
            sink_value(&cast("float64"), dec()).value,
            Value::Float64(-123.45)
        );
        assert_eq!(sink_value(&cast("int32"), dec()).value, Value::Int32(-123));
        assert_eq!(sink_value(&cast("string"), dec()).value, s("-123.45"));
    }

    #[test]
    fn fields_of_structs_and_maps() {
        let c = cast("a:int16, b:string,missing:int8");
        let out = sink_value(
            &c,
            Data::schemaless(map(vec![
                ("a", Value::Int64(70000)),
                ("b", Value::Float32(0.5)),
                ("c", s("x")),
            ])),
        );
        assert_eq!(
            out.value,
            map(vec![
                ("a", Value::Int16(70000i64 as i16)),
                ("b", s("0.5")),
                ("c", s("x")),
                ("missing", Value::Null),
            ])
        );
        let schema = Schema::structure()
            .field("a", Schema::int64().optional())
            .field("b", Schema::float32().default_value(Value::Float32(2.0)))
            .field("c", Schema::string());
        let value = Value::Struct(vec![Value::Null, Value::Null, s("keep")]);
        let out = sink_value(
            &c,
            Data {
                schema: Some(schema),
                value,
            },
        );
        let schema = out.schema.clone().unwrap();
        assert_eq!(schema.fields[0].schema.kind, SchemaType::Int16);
        assert!(schema.fields[0].schema.optional);
        assert_eq!(schema.fields[1].schema.kind, SchemaType::String);
        assert_eq!(schema.fields[1].schema.default.as_deref(), Some(&s("2.0")));
        // The null b took its default (replace.null.with.default), then was cast.
        assert_eq!(
            out.value,
            Value::Struct(vec![Value::Null, s("2.0"), s("keep")])
        );
        out.validate().unwrap();
    }

    #[test]
    fn failures_and_bad_specs() {
        let mut r = rec(Data::schemaless(s("abc")));
        let err = cast("int32").apply_sink(&mut r).unwrap_err();
        assert!(err.message.contains("out of range"), "{err}");
        assert_eq!(err.alias, "c");
        let mut r = rec(Data::schemaless(s("300")));
        assert!(cast("int8").apply_sink(&mut r).is_err());
        let mut r = rec(Data::schemaless(Value::Bytes(vec![1])));
        assert!(
            cast("int32")
                .apply_sink(&mut r)
                .unwrap_err()
                .message
                .contains("bytes")
        );
        let mut r = rec(Data::schemaless(Value::Array(vec![])));
        assert!(
            cast("string")
                .apply_sink(&mut r)
                .unwrap_err()
                .message
                .contains("array")
        );
        // A tombstone passes.
        assert_eq!(sink_value(&cast("int8"), Data::null()), Data::null());
        let spec = |v: &str| {
            config_errors(&[
                ("transforms", "c"),
                ("transforms.c.type", "Cast$Key"),
                ("transforms.c.spec", v),
            ])
        };
        for (bad, says) in [
            ("bytes", "casting to bytes"),
            ("a:nope", "invalid type"),
            ("int8,a:int16", "only entry"),
            ("a:b:c", "invalid cast mapping"),
            ("", "non-empty"),
        ] {
            let errs = spec(bad);
            assert_eq!(errs[0].key, "transforms.c.spec", "{bad}");
            assert!(errs[0].message.contains(says), "{bad}: {}", errs[0].message);
        }
    }

    #[test]
    fn decimal_text() {
        assert_eq!(decimal_from_text("1.5", 2), Some(150));
        assert_eq!(decimal_from_text("-0.25", 2), Some(-25));
        assert_eq!(decimal_from_text("3", 0), Some(3));
        assert_eq!(decimal_from_text("1.50", 1), Some(15));
        assert_eq!(decimal_from_text("1.55", 1), None);
        assert_eq!(decimal_from_text("x", 1), None);
    }
}
