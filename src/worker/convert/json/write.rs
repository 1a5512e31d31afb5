//! Connect data to JSON bytes, written straight into the output buffer (no intermediate
//! JSON tree), in the exact form Kafka's `JsonConverter` (Jackson, compact) produces:
//! schema objects with their keys in Kafka's order, strings escaped as Jackson escapes
//! them, floats as Java prints them, bytes and (by default) decimals as base64.

use tributary_plugin_abi::data::{MAX_DEPTH, Schema, SchemaType, Value, logical};

use super::DecimalFormat;
use crate::worker::convert::{Fail, base64, decimal, java};

/// Writes schemas and values into one buffer.
pub(super) struct Writer<'a> {
    pub out: &'a mut Vec<u8>,
    pub decimal_format: DecimalFormat,
    pub replace_null_with_default: bool,
}

impl Writer<'_> {
    /// A schema as Kafka's `JsonConverter.asJsonSchema` lays it out: `type`, then `items` /
    /// `keys`, `values` / `fields`, then `optional`, `name`, `version`, `doc`,
    /// `parameters`, `default`, and for a struct field its `field` name last.
    pub fn schema(&mut self, s: &Schema, field: Option<&str>, depth: usize) -> Result<(), Fail> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        self.out.extend_from_slice(b"{\"type\":\"");
        self.out.extend_from_slice(s.kind.json_name().as_bytes());
        self.out.push(b'"');
        match s.kind {
            SchemaType::Array => {
                let items = s
                    .key_or_items
                    .as_deref()
                    .ok_or_else(|| Fail::new("an array schema without an items schema"))?;
                self.out.extend_from_slice(b",\"items\":");
                self.schema(items, None, depth + 1)?;
            }
            SchemaType::Map => {
                let (keys, values) = map_schemas(s)?;
                self.out.extend_from_slice(b",\"keys\":");
                self.schema(keys, None, depth + 1)?;
                self.out.extend_from_slice(b",\"values\":");
                self.schema(values, None, depth + 1)?;
            }
            SchemaType::Struct => {
                self.out.extend_from_slice(b",\"fields\":[");
                for (i, f) in s.fields.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.schema(&f.schema, Some(&f.name), depth + 1)
                        .map_err(|e| e.in_field(&f.name))?;
                }
                self.out.push(b']');
            }
            _ => {}
        }
        self.out.extend_from_slice(if s.optional {
            b",\"optional\":true"
        } else {
            b",\"optional\":false"
        });
        if let Some(name) = &s.name {
            self.out.extend_from_slice(b",\"name\":");
            self.string(name);
        }
        if let Some(v) = s.version {
            self.out.extend_from_slice(b",\"version\":");
            java::push_i64(i64::from(v), self.out);
        }
        if let Some(doc) = &s.doc {
            self.out.extend_from_slice(b",\"doc\":");
            self.string(doc);
        }
        if !s.parameters.is_empty() {
            self.out.extend_from_slice(b",\"parameters\":{");
            for (i, (k, v)) in s.parameters.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                self.string(k);
                self.out.push(b':');
                self.string(v);
            }
            self.out.push(b'}');
        }
        if let Some(d) = s.default.as_deref().filter(|d| **d != Value::Null) {
            self.out.extend_from_slice(b",\"default\":");
            self.value(Some(s), d, depth + 1)
                .map_err(|e| e.context("the schema's default value"))?;
        }
        if let Some(name) = field {
            self.out.extend_from_slice(b",\"field\":");
            self.string(name);
        }
        self.out.push(b'}');
        Ok(())
    }

    /// A value, with its schema or (`None`) inferring the JSON form from the value alone.
    pub fn value(&mut self, schema: Option<&Schema>, v: &Value, depth: usize) -> Result<(), Fail> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        let Some(s) = schema else {
            return self.schemaless(v, depth);
        };
        if *v == Value::Null {
            return match s.default.as_deref() {
                Some(d) if self.replace_null_with_default && *d != Value::Null => {
                    self.value(Some(s), d, depth + 1)
                }
                _ if s.optional => {
                    self.out.extend_from_slice(b"null");
                    Ok(())
                }
                _ => Err(Fail::new(format!(
                    "null for a required {} schema without a default value",
                    s.kind.json_name()
                ))),
            };
        }
        if let Some(name) = s.name.as_deref()
            && self.logical(s, name, v)?
        {
            return Ok(());
        }
        match (s.kind, v) {
            (SchemaType::Boolean, Value::Boolean(b)) => {
                self.out
                    .extend_from_slice(if *b { b"true" } else { b"false" });
            }
            (SchemaType::Int8, Value::Int8(n)) => java::push_i64(i64::from(*n), self.out),
            (SchemaType::Int16, Value::Int16(n)) => java::push_i64(i64::from(*n), self.out),
            (SchemaType::Int32, Value::Int32(n)) => java::push_i64(i64::from(*n), self.out),
            (SchemaType::Int64, Value::Int64(n)) => java::push_i64(*n, self.out),
            (SchemaType::Float32, Value::Float32(f)) => self.f32(*f),
            (SchemaType::Float64, Value::Float64(f)) => self.f64(*f),
            (SchemaType::String, Value::String(t)) => self.string(t),
            (SchemaType::Bytes, Value::Bytes(b)) => self.bytes(b),
            (SchemaType::Array, Value::Array(items)) => {
                let item_schema = s
                    .key_or_items
                    .as_deref()
                    .ok_or_else(|| Fail::new("an array schema without an items schema"))?;
                self.out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.value(Some(item_schema), item, depth + 1)
                        .map_err(|e| e.in_index(i))?;
                }
                self.out.push(b']');
            }
            (SchemaType::Map, Value::Map(entries)) => {
                let (ks, vs) = map_schemas(s)?;
                if ks.kind == SchemaType::String {
                    self.out.push(b'{');
                    for (i, (k, v)) in entries.iter().enumerate() {
                        if i > 0 {
                            self.out.push(b',');
                        }
                        self.string_key(ks, k)?;
                        self.out.push(b':');
                        self.value(Some(vs), v, depth + 1)
                            .map_err(|e| e.in_key(k))?;
                    }
                    self.out.push(b'}');
                } else {
                    // Kafka's form for maps whose keys are not strings: [[key, value], ...].
                    self.out.push(b'[');
                    for (i, (k, v)) in entries.iter().enumerate() {
                        if i > 0 {
                            self.out.push(b',');
                        }
                        self.out.push(b'[');
                        self.value(Some(ks), k, depth + 1)
                            .map_err(|e| e.context("a map key"))?;
                        self.out.push(b',');
                        self.value(Some(vs), v, depth + 1)
                            .map_err(|e| e.in_key(k))?;
                        self.out.push(b']');
                    }
                    self.out.push(b']');
                }
            }
            (SchemaType::Struct, Value::Struct(values)) => {
                if values.len() != s.fields.len() {
                    return Err(Fail::new(format!(
                        "the struct has {} values for the {} fields of its schema",
                        values.len(),
                        s.fields.len()
                    )));
                }
                self.out.push(b'{');
                for (i, (f, v)) in s.fields.iter().zip(values).enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.string(&f.name);
                    self.out.push(b':');
                    self.value(Some(&f.schema), v, depth + 1)
                        .map_err(|e| e.in_field(&f.name))?;
                }
                self.out.push(b'}');
            }
            _ => {
                return Err(Fail::new(format!(
                    "a {} value does not fit schema type {}",
                    v.type_name(),
                    s.kind.json_name()
                )));
            }
        }
        Ok(())
    }

    /// The logical types; `Ok(false)` if `name` is not one (then the schema type decides).
    fn logical(&mut self, s: &Schema, name: &str, v: &Value) -> Result<bool, Fail> {
        match (name, s.kind, v) {
            (logical::DECIMAL, SchemaType::Bytes, Value::Bytes(b)) => {
                if b.is_empty() {
                    return Err(Fail::new("a Decimal value without bytes"));
                }
                match self.decimal_format {
                    // Kafka re-encodes the BigDecimal, so the bytes are always minimal.
                    DecimalFormat::Base64 => self.bytes(decimal::minimal(b)),
                    DecimalFormat::Numeric => {
                        let scale = decimal_scale(s)?;
                        decimal::push_java_string(b, scale, self.out)?;
                    }
                }
                Ok(true)
            }
            (logical::DECIMAL, ..) => Err(Fail::new(format!(
                "a Decimal must be bytes in a bytes schema, not a {} value in a {} schema",
                v.type_name(),
                s.kind.json_name()
            ))),
            (logical::TIME, SchemaType::Int32, Value::Int32(ms))
                if !(0..java::MILLIS_PER_DAY as i32).contains(ms) =>
            {
                Err(Fail::new(format!(
                    "a Time must be milliseconds within a day (0 to 86399999), not {ms}"
                )))
            }
            _ => Ok(false),
        }
    }

    fn schemaless(&mut self, v: &Value, depth: usize) -> Result<(), Fail> {
        match v {
            Value::Null => self.out.extend_from_slice(b"null"),
            Value::Boolean(b) => self
                .out
                .extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Int8(n) => java::push_i64(i64::from(*n), self.out),
            Value::Int16(n) => java::push_i64(i64::from(*n), self.out),
            Value::Int32(n) => java::push_i64(i64::from(*n), self.out),
            Value::Int64(n) => java::push_i64(*n, self.out),
            Value::Float32(f) => self.f32(*f),
            Value::Float64(f) => self.f64(*f),
            Value::String(t) => self.string(t),
            Value::Bytes(b) => self.bytes(b),
            Value::Array(items) => {
                self.out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.value(None, item, depth + 1)
                        .map_err(|e| e.in_index(i))?;
                }
                self.out.push(b']');
            }
            Value::Map(entries) => {
                let object = entries.iter().all(|(k, _)| matches!(k, Value::String(_)));
                self.out.push(if object { b'{' } else { b'[' });
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    if object {
                        self.value(None, k, depth + 1)?;
                        self.out.push(b':');
                        self.value(None, v, depth + 1).map_err(|e| e.in_key(k))?;
                    } else {
                        self.out.push(b'[');
                        self.value(None, k, depth + 1)
                            .map_err(|e| e.context("a map key"))?;
                        self.out.push(b',');
                        self.value(None, v, depth + 1).map_err(|e| e.in_key(k))?;
                        self.out.push(b']');
                    }
                }
                self.out.push(if object { b'}' } else { b']' });
            }
            Value::Struct(_) => {
                return Err(Fail::new(
                    "a struct value without a schema (a struct needs its schema to be written)",
                ));
            }
        }
        Ok(())
    }

    /// A map key in object form: the key's text (Jackson's `asText()` of the converted key).
    fn string_key(&mut self, ks: &Schema, k: &Value) -> Result<(), Fail> {
        match k {
            Value::String(t) => self.string(t),
            Value::Null => match ks.default.as_deref() {
                Some(Value::String(d)) if self.replace_null_with_default => self.string(d),
                _ if ks.optional => self.string("null"),
                _ => return Err(Fail::new("a null map key for a required string key schema")),
            },
            other => {
                return Err(Fail::new(format!(
                    "a {} map key does not fit key schema type string",
                    other.type_name()
                )));
            }
        }
        Ok(())
    }

    fn f64(&mut self, f: f64) {
        if f.is_finite() {
            java::push_f64(f, self.out);
        } else {
            // Jackson quotes the non-numbers (QUOTE_NON_NUMERIC_NUMBERS).
            self.out.push(b'"');
            java::push_f64(f, self.out);
            self.out.push(b'"');
        }
    }

    fn f32(&mut self, f: f32) {
        if f.is_finite() {
            java::push_f32(f, self.out);
        } else {
            self.out.push(b'"');
            java::push_f32(f, self.out);
            self.out.push(b'"');
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        self.out.push(b'"');
        base64::encode_into(b, self.out);
        self.out.push(b'"');
    }

    /// A JSON string as Jackson writes it: `"` and `\` escaped, control characters as
    /// `\b \t \n \f \r` or `\u00XX` (upper-case hex), everything else (including non-ASCII
    /// and `/`) as is.
    pub fn string(&mut self, s: &str) {
        push_json_string(s, self.out);
    }
}

/// How Jackson escapes each byte in a string: 0 not at all, `u` as `\u00XX`, otherwise
/// the character after the backslash.
static ESCAPES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = b'u';
        c += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// See [`Writer::string`].
pub(crate) fn push_json_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPES[usize::from(b)];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        if esc == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', esc]);
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn map_schemas(s: &Schema) -> Result<(&Schema, &Schema), Fail> {
    match (s.key_or_items.as_deref(), s.map_values.as_deref()) {
        (Some(k), Some(v)) => Ok((k, v)),
        _ => Err(Fail::new("a map schema without its key and value schemas")),
    }
}

pub(super) fn decimal_scale(s: &Schema) -> Result<i32, Fail> {
    logical::decimal_scale(s).ok_or_else(|| {
        Fail::new(format!(
            "a Decimal schema needs an integer `{}` parameter",
            logical::SCALE
        ))
    })
}

fn too_deep() -> Fail {
    Fail::new(format!("data nested deeper than {MAX_DEPTH} levels"))
}
