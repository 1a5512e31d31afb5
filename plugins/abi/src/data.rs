//! The Kafka Connect data model: a [`Value`] with an optional [`Schema`] ([`Data`], Kafka's
//! `SchemaAndValue`), and the logical types Decimal, Date, Time and Timestamp ([`logical`]).
//!
//! Raw bytes are `Data { schema: None, value: Value::Bytes(..) }` (or with a `bytes` schema).
//! A struct's value is positional: [`Value::Struct`] holds one value per field of its schema,
//! in the schema's order; build one with [`StructBuilder`], read it with [`Data::field`].
//!
//! Encoding ([`encode_data`]): `opt<schema>` then the value. A value is a tag byte and its
//! payload (tags in [`tag`]); arrays, maps and structs carry a `u32` count. A schema is its
//! type byte, `optional`, `opt<str>` name, `opt<i32>` version, `opt<str>` doc, parameters as
//! a map, `opt<value>` default, then items (array), key and value schemas (map) or a list of
//! (name, schema) fields (struct). Nesting deeper than [`MAX_DEPTH`] does not decode.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::wire::{self, DecodeError, Reader};

/// How deep schemas and values may nest when decoded (a guard against stack exhaustion).
pub const MAX_DEPTH: usize = 64;

/// A schema's type (Kafka Connect's `Schema.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchemaType {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    String,
    Bytes,
    Array,
    Map,
    Struct,
}

impl SchemaType {
    const ALL: [SchemaType; 12] = [
        SchemaType::Boolean,
        SchemaType::Int8,
        SchemaType::Int16,
        SchemaType::Int32,
        SchemaType::Int64,
        SchemaType::Float32,
        SchemaType::Float64,
        SchemaType::String,
        SchemaType::Bytes,
        SchemaType::Array,
        SchemaType::Map,
        SchemaType::Struct,
    ];

    /// The name Kafka Connect's JSON schemas use (`float` and `double` for the floats).
    pub fn json_name(self) -> &'static str {
        match self {
            SchemaType::Boolean => "boolean",
            SchemaType::Int8 => "int8",
            SchemaType::Int16 => "int16",
            SchemaType::Int32 => "int32",
            SchemaType::Int64 => "int64",
            SchemaType::Float32 => "float",
            SchemaType::Float64 => "double",
            SchemaType::String => "string",
            SchemaType::Bytes => "bytes",
            SchemaType::Array => "array",
            SchemaType::Map => "map",
            SchemaType::Struct => "struct",
        }
    }

    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(c: u8) -> Option<SchemaType> {
        Self::ALL.get(usize::from(c)).copied()
    }
}

/// A Kafka Connect schema. Build with the constructors and the chaining setters:
/// `Schema::int64().optional().doc("row id")`.
///
/// A schema is a shared handle: cloning one (every record of a table carries its row
/// schema) is a reference count, not a copy of its names, parameters and fields. Read its
/// parts through [`SchemaDef`] (`schema.kind`, `schema.fields`); assigning to one
/// (`schema.optional = true`) copies the definition first if another handle shares it
/// ([`Arc::make_mut`]), so a schema behaves as a value. Two schemas are equal when their
/// definitions are; [`Schema::same`] asks whether they are one handle.
#[derive(Clone)]
pub struct Schema(Arc<SchemaDef>);

/// What a [`Schema`] holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaDef {
    pub kind: SchemaType,
    pub optional: bool,
    pub name: Option<String>,
    pub version: Option<i32>,
    pub doc: Option<String>,
    pub parameters: BTreeMap<String, String>,
    pub default: Option<Box<Value>>,
    /// Array: the items' schema. Map: the keys' schema.
    pub key_or_items: Option<Box<Schema>>,
    /// Map: the values' schema.
    pub map_values: Option<Box<Schema>>,
    /// Struct: the fields, in order.
    pub fields: Vec<Field>,
}

impl Deref for Schema {
    type Target = SchemaDef;
    #[inline]
    fn deref(&self) -> &SchemaDef {
        &self.0
    }
}

impl DerefMut for Schema {
    /// Copy-on-write: the definition is copied first when another handle shares it.
    #[inline]
    fn deref_mut(&mut self) -> &mut SchemaDef {
        Arc::make_mut(&mut self.0)
    }
}

impl PartialEq for Schema {
    fn eq(&self, other: &Schema) -> bool {
        self.same(other) || *self.0 == *other.0
    }
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One field of a struct schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub schema: Schema,
}

impl Schema {
    /// A schema of a primitive type (for arrays, maps and structs use [`Schema::array`],
    /// [`Schema::map`] and [`Schema::structure`]).
    pub fn new(kind: SchemaType) -> Schema {
        Schema::plain(kind, false)
    }

    /// The bare schema of `kind` (no name, doc, parameters, default or children), required or
    /// optional: a handle on one definition per thread, so the plain `string` or `bytes`
    /// schema of every record of a batch costs a reference count, not an allocation.
    fn plain(kind: SchemaType, optional: bool) -> Schema {
        thread_local! {
            static PLAIN: [[Schema; 2]; 12] = std::array::from_fn(|k| {
                [false, true].map(|optional| {
                    Schema(Arc::new(SchemaDef {
                        kind: SchemaType::ALL[k],
                        optional,
                        name: None,
                        version: None,
                        doc: None,
                        parameters: BTreeMap::new(),
                        default: None,
                        key_or_items: None,
                        map_values: None,
                        fields: Vec::new(),
                    }))
                })
            });
        }
        PLAIN.with(|p| p[kind as usize][usize::from(optional)].clone())
    }

    /// Whether `self` and `other` are one shared definition (a pointer comparison; equal
    /// schemas built separately are not the same).
    #[inline]
    pub fn same(&self, other: &Schema) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    pub fn boolean() -> Schema {
        Schema::new(SchemaType::Boolean)
    }
    pub fn int8() -> Schema {
        Schema::new(SchemaType::Int8)
    }
    pub fn int16() -> Schema {
        Schema::new(SchemaType::Int16)
    }
    pub fn int32() -> Schema {
        Schema::new(SchemaType::Int32)
    }
    pub fn int64() -> Schema {
        Schema::new(SchemaType::Int64)
    }
    pub fn float32() -> Schema {
        Schema::new(SchemaType::Float32)
    }
    pub fn float64() -> Schema {
        Schema::new(SchemaType::Float64)
    }
    pub fn string() -> Schema {
        Schema::new(SchemaType::String)
    }
    pub fn bytes() -> Schema {
        Schema::new(SchemaType::Bytes)
    }

    pub fn array(items: Schema) -> Schema {
        let mut s = Schema::new(SchemaType::Array);
        s.key_or_items = Some(Box::new(items));
        s
    }

    pub fn map(keys: Schema, values: Schema) -> Schema {
        let mut s = Schema::new(SchemaType::Map);
        s.key_or_items = Some(Box::new(keys));
        s.map_values = Some(Box::new(values));
        s
    }

    /// An empty struct schema; add fields with [`Schema::field`].
    pub fn structure() -> Schema {
        Schema::new(SchemaType::Struct)
    }

    /// Add a field to a struct schema.
    pub fn field(mut self, name: impl Into<String>, schema: Schema) -> Schema {
        self.fields.push(Field {
            name: name.into(),
            schema,
        });
        self
    }

    pub fn optional(mut self) -> Schema {
        if self.optional {
            return self;
        }
        if self.is_plain() {
            return Schema::plain(self.kind, true);
        }
        self.optional = true;
        self
    }

    /// No name, version, doc, parameters, default, children or fields.
    fn is_plain(&self) -> bool {
        self.name.is_none()
            && self.version.is_none()
            && self.doc.is_none()
            && self.parameters.is_empty()
            && self.default.is_none()
            && self.key_or_items.is_none()
            && self.map_values.is_none()
            && self.fields.is_empty()
    }

    pub fn named(mut self, name: impl Into<String>) -> Schema {
        self.name = Some(name.into());
        self
    }

    pub fn with_version(mut self, version: i32) -> Schema {
        self.version = Some(version);
        self
    }

    pub fn doc(mut self, doc: impl Into<String>) -> Schema {
        self.doc = Some(doc.into());
        self
    }

    pub fn parameter(mut self, key: impl Into<String>, value: impl Into<String>) -> Schema {
        self.parameters.insert(key.into(), value.into());
        self
    }

    pub fn default_value(mut self, value: Value) -> Schema {
        self.default = Some(Box::new(value));
        self
    }

    /// The position of a struct field.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// Check that `value` fits this schema (types, nullability, struct arity, logical
    /// types' ranges). Errors name the path of the offending value.
    pub fn validate(&self, value: &Value) -> Result<(), DataError> {
        self.validate_at(value, "value")
    }

    fn validate_at(&self, value: &Value, path: &str) -> Result<(), DataError> {
        let mismatch = || {
            DataError(format!(
                "{path}: {} does not fit schema type {}",
                value.type_name(),
                self.kind.json_name()
            ))
        };
        match (self.kind, value) {
            (_, Value::Null) if self.optional || self.default.is_some() => Ok(()),
            (_, Value::Null) => Err(DataError(format!("{path}: null in a required field"))),
            (SchemaType::Boolean, Value::Boolean(_))
            | (SchemaType::Int8, Value::Int8(_))
            | (SchemaType::Int16, Value::Int16(_))
            | (SchemaType::Int64, Value::Int64(_))
            | (SchemaType::Float32, Value::Float32(_))
            | (SchemaType::Float64, Value::Float64(_))
            | (SchemaType::String, Value::String(_)) => Ok(()),
            (SchemaType::Int32, Value::Int32(v)) => {
                if self.name.as_deref() == Some(logical::TIME) && !(0..86_400_000).contains(v) {
                    return Err(DataError(format!(
                        "{path}: Time must be milliseconds within a day, not {v}"
                    )));
                }
                Ok(())
            }
            (SchemaType::Bytes, Value::Bytes(b)) => {
                if self.name.as_deref() == Some(logical::DECIMAL) {
                    if b.is_empty() {
                        return Err(DataError(format!("{path}: Decimal without bytes")));
                    }
                    if logical::decimal_scale(self).is_none() {
                        return Err(DataError(format!(
                            "{path}: Decimal schema without an integer `scale` parameter"
                        )));
                    }
                }
                Ok(())
            }
            (SchemaType::Array, Value::Array(items)) => {
                let item_schema = self.key_or_items.as_deref().ok_or_else(mismatch)?;
                for (i, item) in items.iter().enumerate() {
                    item_schema.validate_at(item, &format!("{path}[{i}]"))?;
                }
                Ok(())
            }
            (SchemaType::Map, Value::Map(entries)) => {
                let ks = self.key_or_items.as_deref().ok_or_else(mismatch)?;
                let vs = self.map_values.as_deref().ok_or_else(mismatch)?;
                for (k, v) in entries {
                    ks.validate_at(k, &format!("{path} key"))?;
                    vs.validate_at(v, &format!("{path}[{k}]"))?;
                }
                Ok(())
            }
            (SchemaType::Struct, Value::Struct(values)) => {
                if values.len() != self.fields.len() {
                    return Err(DataError(format!(
                        "{path}: struct has {} values for {} fields",
                        values.len(),
                        self.fields.len()
                    )));
                }
                for (f, v) in self.fields.iter().zip(values) {
                    f.schema.validate_at(v, &format!("{path}.{}", f.name))?;
                }
                Ok(())
            }
            _ => Err(mismatch()),
        }
    }
}

/// A value of the data model. Without a schema any shape is allowed (Kafka Connect's
/// schemaless data); with one, see [`Schema::validate`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Boolean(bool),
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    String(String),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    /// Entries in order; keys need not be strings.
    Map(Vec<(Value, Value)>),
    /// One value per field of the struct's schema, in the schema's order.
    Struct(Vec<Value>),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Boolean(_) => "boolean",
            Value::Int8(_) => "int8",
            Value::Int16(_) => "int16",
            Value::Int32(_) => "int32",
            Value::Int64(_) => "int64",
            Value::Float32(_) => "float",
            Value::Float64(_) => "double",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Struct(_) => "struct",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Boolean(v) => write!(f, "{v}"),
            Value::Int8(v) => write!(f, "{v}"),
            Value::Int16(v) => write!(f, "{v}"),
            Value::Int32(v) => write!(f, "{v}"),
            Value::Int64(v) => write!(f, "{v}"),
            Value::Float32(v) => write!(f, "{v}"),
            Value::Float64(v) => write!(f, "{v}"),
            Value::String(v) => write!(f, "{v:?}"),
            Value::Bytes(v) => write!(f, "<{} bytes>", v.len()),
            Value::Array(_) => f.write_str("[..]"),
            Value::Map(_) | Value::Struct(_) => f.write_str("{..}"),
        }
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::String(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::String(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Bytes(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Boolean(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Int32(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int64(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float64(v)
    }
}

/// Data that does not fit its schema, or a struct built wrongly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError(pub String);

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DataError {}

/// A value with its optional schema (Kafka Connect's `SchemaAndValue`): a record's key, its
/// value, or a header's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Data {
    pub schema: Option<Schema>,
    pub value: Value,
}

impl Data {
    /// No schema, null value (a missing key, or a tombstone value).
    pub fn null() -> Data {
        Data {
            schema: None,
            value: Value::Null,
        }
    }

    /// Raw bytes, no schema.
    pub fn bytes(b: impl Into<Vec<u8>>) -> Data {
        Data {
            schema: None,
            value: Value::Bytes(b.into()),
        }
    }

    /// A string with the `string` schema.
    pub fn string(s: impl Into<String>) -> Data {
        Data {
            schema: Some(Schema::string()),
            value: Value::String(s.into()),
        }
    }

    /// A value with a schema, checked.
    pub fn with_schema(schema: Schema, value: Value) -> Result<Data, DataError> {
        schema.validate(&value)?;
        Ok(Data {
            schema: Some(schema),
            value,
        })
    }

    /// A value without a schema.
    pub fn schemaless(value: Value) -> Data {
        Data {
            schema: None,
            value,
        }
    }

    /// A struct field's value by name (`None` if this is not a struct or has no such field).
    pub fn field(&self, name: &str) -> Option<&Value> {
        let i = self.schema.as_ref()?.field_index(name)?;
        match &self.value {
            Value::Struct(values) => values.get(i),
            _ => None,
        }
    }

    /// Check the value against the schema, if there is one.
    pub fn validate(&self) -> Result<(), DataError> {
        match &self.schema {
            Some(s) => s.validate(&self.value),
            None => Ok(()),
        }
    }
}

/// Builds a struct value field by field against its schema.
#[derive(Debug, Clone)]
pub struct StructBuilder {
    schema: Schema,
    values: Vec<Option<Value>>,
}

impl StructBuilder {
    /// Start a struct of a struct schema.
    pub fn new(schema: Schema) -> Result<StructBuilder, DataError> {
        if schema.kind != SchemaType::Struct {
            return Err(DataError(format!(
                "a struct needs a struct schema, not {}",
                schema.kind.json_name()
            )));
        }
        let values = vec![None; schema.fields.len()];
        Ok(StructBuilder { schema, values })
    }

    /// Set a field, checking the value against the field's schema.
    pub fn put(mut self, name: &str, value: impl Into<Value>) -> Result<StructBuilder, DataError> {
        let i = self
            .schema
            .field_index(name)
            .ok_or_else(|| DataError(format!("{name} is not a field of this struct")))?;
        let value = value.into();
        self.schema.fields[i]
            .schema
            .validate_at(&value, &format!("field {name}"))?;
        self.values[i] = Some(value);
        Ok(self)
    }

    /// The struct: unset fields take their default, or null if optional.
    pub fn build(self) -> Result<Data, DataError> {
        let mut out = Vec::with_capacity(self.values.len());
        for (field, v) in self.schema.fields.iter().zip(self.values) {
            let v = match v {
                Some(v) => v,
                None => match &field.schema.default {
                    Some(d) => (**d).clone(),
                    None if field.schema.optional => Value::Null,
                    None => {
                        return Err(DataError(format!(
                            "required field {} was not set",
                            field.name
                        )));
                    }
                },
            };
            out.push(v);
        }
        Ok(Data {
            schema: Some(self.schema),
            value: Value::Struct(out),
        })
    }
}

/// Kafka Connect's logical types: a named schema over a primitive.
pub mod logical {
    use super::{Schema, Value};

    /// Bytes: the unscaled value as big-endian two's complement; parameter `scale`.
    pub const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
    /// Int32: days since 1970-01-01.
    pub const DATE: &str = "org.apache.kafka.connect.data.Date";
    /// Int32: milliseconds since midnight.
    pub const TIME: &str = "org.apache.kafka.connect.data.Time";
    /// Int64: milliseconds since 1970-01-01T00:00:00Z.
    pub const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";
    /// The Decimal schema parameter holding the scale.
    pub const SCALE: &str = "scale";

    pub fn decimal_schema(scale: i32) -> Schema {
        Schema::bytes()
            .named(DECIMAL)
            .with_version(1)
            .parameter(SCALE, scale.to_string())
    }

    /// The scale of a Decimal schema.
    pub fn decimal_scale(schema: &Schema) -> Option<i32> {
        schema.parameters.get(SCALE)?.parse().ok()
    }

    /// A Decimal's value from its unscaled integer (123.45 at scale 2 is 12345): the minimal
    /// big-endian two's complement bytes, as Java's `BigInteger.toByteArray`.
    pub fn decimal_value(unscaled: i128) -> Value {
        let bytes = unscaled.to_be_bytes();
        let mut start = 0;
        // Drop leading bytes that only repeat the sign.
        while start < bytes.len() - 1 {
            let (b, next) = (bytes[start], bytes[start + 1]);
            if (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
                start += 1;
            } else {
                break;
            }
        }
        Value::Bytes(bytes[start..].to_vec())
    }

    /// A Decimal's unscaled integer, if it fits in 128 bits.
    pub fn decimal_unscaled(bytes: &[u8]) -> Option<i128> {
        if bytes.is_empty() || bytes.len() > 16 {
            return None;
        }
        let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0x00 };
        let mut buf = [fill; 16];
        buf[16 - bytes.len()..].copy_from_slice(bytes);
        Some(i128::from_be_bytes(buf))
    }

    /// Format an unscaled integer at a scale: (12345, 2) is `123.45`, (5, -2) is `500`.
    pub fn decimal_to_string(unscaled: i128, scale: i32) -> String {
        if scale <= 0 {
            let zeros = "0".repeat(scale.unsigned_abs() as usize);
            return if unscaled == 0 {
                "0".into()
            } else {
                format!("{unscaled}{zeros}")
            };
        }
        let digits = unscaled.unsigned_abs().to_string();
        let scale = scale as usize;
        let padded = if digits.len() <= scale {
            format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
        } else {
            digits
        };
        let (int, frac) = padded.split_at(padded.len() - scale);
        let sign = if unscaled < 0 { "-" } else { "" };
        format!("{sign}{int}.{frac}")
    }

    pub fn date_schema() -> Schema {
        Schema::int32().named(DATE).with_version(1)
    }

    pub fn time_schema() -> Schema {
        Schema::int32().named(TIME).with_version(1)
    }

    pub fn timestamp_schema() -> Schema {
        Schema::int64().named(TIMESTAMP).with_version(1)
    }
}

/// Value tags of the encoding.
pub mod tag {
    pub const NULL: u8 = 0;
    pub const BOOLEAN: u8 = 1;
    pub const INT8: u8 = 2;
    pub const INT16: u8 = 3;
    pub const INT32: u8 = 4;
    pub const INT64: u8 = 5;
    pub const FLOAT32: u8 = 6;
    pub const FLOAT64: u8 = 7;
    pub const STRING: u8 = 8;
    pub const BYTES: u8 = 9;
    pub const ARRAY: u8 = 10;
    pub const MAP: u8 = 11;
    pub const STRUCT: u8 = 12;
}

/// Append a value's encoding.
pub fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => wire::put_u8(out, tag::NULL),
        Value::Boolean(b) => {
            wire::put_u8(out, tag::BOOLEAN);
            wire::put_bool(out, *b);
        }
        Value::Int8(x) => {
            wire::put_u8(out, tag::INT8);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::Int16(x) => {
            wire::put_u8(out, tag::INT16);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::Int32(x) => {
            wire::put_u8(out, tag::INT32);
            wire::put_i32(out, *x);
        }
        Value::Int64(x) => {
            wire::put_u8(out, tag::INT64);
            wire::put_i64(out, *x);
        }
        Value::Float32(x) => {
            wire::put_u8(out, tag::FLOAT32);
            wire::put_f32(out, *x);
        }
        Value::Float64(x) => {
            wire::put_u8(out, tag::FLOAT64);
            wire::put_f64(out, *x);
        }
        Value::String(s) => {
            wire::put_u8(out, tag::STRING);
            wire::put_str(out, s);
        }
        Value::Bytes(b) => {
            wire::put_u8(out, tag::BYTES);
            wire::put_bytes(out, b);
        }
        Value::Array(items) => {
            wire::put_u8(out, tag::ARRAY);
            wire::put_len(out, items.len());
            for i in items {
                encode_value(i, out);
            }
        }
        Value::Map(entries) => {
            wire::put_u8(out, tag::MAP);
            wire::put_len(out, entries.len());
            for (k, v) in entries {
                encode_value(k, out);
                encode_value(v, out);
            }
        }
        Value::Struct(values) => {
            wire::put_u8(out, tag::STRUCT);
            wire::put_len(out, values.len());
            for v in values {
                encode_value(v, out);
            }
        }
    }
}

/// Read one value.
pub fn read_value(r: &mut Reader<'_>) -> Result<Value, DecodeError> {
    read_value_at(r, 0)
}

fn read_value_at(r: &mut Reader<'_>, depth: usize) -> Result<Value, DecodeError> {
    let mut v = Value::Null;
    read_value_into(r, &mut v, depth)?;
    Ok(v)
}

/// Read one value into `v`, replacing what it held. Records decode their keys and values
/// this way: a `Result<Value, _>` handed back through memory costs more than the
/// decoding of a small value itself.
#[inline]
pub fn read_value_in_place(r: &mut Reader<'_>, v: &mut Value) -> Result<(), DecodeError> {
    read_value_into(r, v, 0)
}

fn read_value_into(r: &mut Reader<'_>, v: &mut Value, depth: usize) -> Result<(), DecodeError> {
    if depth > MAX_DEPTH {
        return Err(r.error("value nested too deeply"));
    }
    let at = r.position();
    *v = match r.u8("value tag")? {
        tag::NULL => Value::Null,
        tag::BOOLEAN => Value::Boolean(r.bool("boolean")?),
        tag::INT8 => Value::Int8(r.u8("int8")? as i8),
        tag::INT16 => {
            let lo = r.u8("int16")?;
            let hi = r.u8("int16")?;
            Value::Int16(i16::from_le_bytes([lo, hi]))
        }
        tag::INT32 => Value::Int32(r.i32("int32")?),
        tag::INT64 => Value::Int64(r.i64("int64")?),
        tag::FLOAT32 => Value::Float32(r.f32("float")?),
        tag::FLOAT64 => Value::Float64(r.f64("double")?),
        tag::STRING => Value::String(r.string("string")?),
        tag::BYTES => Value::Bytes(r.bytes("bytes")?.to_vec()),
        tag::ARRAY => {
            let n = r.count(1, "array")?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(read_value_at(r, depth + 1)?);
            }
            Value::Array(items)
        }
        tag::MAP => {
            let n = r.count(2, "map")?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let k = read_value_at(r, depth + 1)?;
                let v = read_value_at(r, depth + 1)?;
                entries.push((k, v));
            }
            Value::Map(entries)
        }
        tag::STRUCT => {
            let n = r.count(1, "struct")?;
            let mut values = Vec::with_capacity(n);
            for _ in 0..n {
                values.push(read_value_at(r, depth + 1)?);
            }
            Value::Struct(values)
        }
        _ => {
            return Err(DecodeError {
                what: "value tag",
                at,
            });
        }
    };
    Ok(())
}

/// Append a schema's encoding.
pub fn encode_schema(s: &Schema, out: &mut Vec<u8>) {
    wire::put_u8(out, s.kind.code());
    wire::put_bool(out, s.optional);
    wire::put_opt_str(out, s.name.as_deref());
    match s.version {
        None => wire::put_u8(out, 0),
        Some(v) => {
            wire::put_u8(out, 1);
            wire::put_i32(out, v);
        }
    }
    wire::put_opt_str(out, s.doc.as_deref());
    wire::put_len(out, s.parameters.len());
    for (k, v) in &s.parameters {
        wire::put_str(out, k);
        wire::put_str(out, v);
    }
    match &s.default {
        None => wire::put_u8(out, 0),
        Some(d) => {
            wire::put_u8(out, 1);
            encode_value(d, out);
        }
    }
    match s.kind {
        SchemaType::Array => encode_child(s.key_or_items.as_deref(), out),
        SchemaType::Map => {
            encode_child(s.key_or_items.as_deref(), out);
            encode_child(s.map_values.as_deref(), out);
        }
        SchemaType::Struct => {
            wire::put_len(out, s.fields.len());
            for f in &s.fields {
                wire::put_str(out, &f.name);
                encode_schema(&f.schema, out);
            }
        }
        _ => {}
    }
}

/// Arrays and maps always carry their child schemas; a hand-built schema that lacks one
/// crosses as an optional `bytes` child rather than failing the whole batch (and then fails
/// validation on the other side, with a message).
fn encode_child(child: Option<&Schema>, out: &mut Vec<u8>) {
    match child {
        Some(c) => encode_schema(c, out),
        None => encode_schema(&Schema::bytes().optional(), out),
    }
}

/// Read one schema.
pub fn read_schema(r: &mut Reader<'_>) -> Result<Schema, DecodeError> {
    read_schema_at(r, 0)
}

fn read_schema_at(r: &mut Reader<'_>, depth: usize) -> Result<Schema, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(r.error("schema nested too deeply"));
    }
    let at = r.position();
    let kind = SchemaType::from_code(r.u8("schema type")?).ok_or(DecodeError {
        what: "schema type",
        at,
    })?;
    let mut s = Schema::new(kind);
    s.optional = r.bool("schema optional flag")?;
    s.name = r.opt_string("schema name")?;
    s.version = if r.bool("schema version")? {
        Some(r.i32("schema version")?)
    } else {
        None
    };
    s.doc = r.opt_string("schema doc")?;
    let n = r.count(8, "schema parameters")?;
    for _ in 0..n {
        let k = r.string("schema parameter")?;
        let v = r.string("schema parameter")?;
        s.parameters.insert(k, v);
    }
    if r.bool("schema default")? {
        s.default = Some(Box::new(read_value_at(r, depth + 1)?));
    }
    match kind {
        SchemaType::Array => s.key_or_items = Some(Box::new(read_schema_at(r, depth + 1)?)),
        SchemaType::Map => {
            s.key_or_items = Some(Box::new(read_schema_at(r, depth + 1)?));
            s.map_values = Some(Box::new(read_schema_at(r, depth + 1)?));
        }
        SchemaType::Struct => {
            let n = r.count(5, "struct fields")?;
            for _ in 0..n {
                let name = r.string("field name")?;
                let schema = read_schema_at(r, depth + 1)?;
                s.fields.push(Field { name, schema });
            }
        }
        _ => {}
    }
    Ok(s)
}

/// Append a [`Data`]'s encoding: `opt<schema>`, value.
#[inline]
pub fn encode_data(d: &Data, out: &mut Vec<u8>) {
    match &d.schema {
        None => wire::put_u8(out, 0),
        Some(s) => {
            wire::put_u8(out, 1);
            encode_schema(s, out);
        }
    }
    encode_value(&d.value, out);
}

/// Read one [`Data`].
pub fn read_data(r: &mut Reader<'_>) -> Result<Data, DecodeError> {
    let mut d = Data::null();
    read_data_into(r, &mut d)?;
    Ok(d)
}

/// Read one [`Data`] into `d`, replacing what it held. Record decoding fills each record
/// where it will stay: a `Data` is 168 bytes (the schema is inline), and returning it by
/// value costs a copy of all of it at every level, schema or not.
#[inline]
pub fn read_data_into(r: &mut Reader<'_>, d: &mut Data) -> Result<(), DecodeError> {
    d.schema = if r.bool("data schema flag")? {
        Some(read_schema(r)?)
    } else {
        None
    };
    read_value_in_place(r, &mut d.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(d: &Data) -> Data {
        let mut buf = Vec::new();
        encode_data(d, &mut buf);
        let mut r = Reader::new(&buf);
        let back = read_data(&mut r).unwrap();
        r.finish("data").unwrap();
        for cut in 0..buf.len() {
            let mut r = Reader::new(&buf[..cut]);
            assert!(read_data(&mut r).is_err(), "a {cut}-byte prefix decoded");
        }
        back
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
    }

    #[test]
    fn a_struct_with_every_kind_round_trips() {
        let d = StructBuilder::new(order_schema())
            .unwrap()
            .put("id", 42i64)
            .unwrap()
            .put("amount", logical::decimal_value(-12345))
            .unwrap()
            .put("day", 19000)
            .unwrap()
            .put("at", 3_600_000)
            .unwrap()
            .put("ts", 1_700_000_000_000i64)
            .unwrap()
            .put("tags", Value::Array(vec!["a".into()]))
            .unwrap()
            .put("m", Value::Map(vec![("k".into(), 1.into())]))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(d.field("note"), Some(&Value::Null));
        assert_eq!(d.field("qty"), Some(&Value::Int16(1)));
        d.validate().unwrap();
        assert_eq!(round_trip(&d), d);
    }

    /// Plain schemas are shared handles; editing one copies it first, so the shared
    /// definition never changes.
    #[test]
    fn plain_schemas_are_shared_and_copied_on_write() {
        assert!(Schema::string().same(&Schema::string()));
        assert!(
            Schema::string()
                .optional()
                .same(&Schema::string().optional())
        );
        assert!(!Schema::string().same(&Schema::string().optional()));
        assert!(Schema::bytes().optional().optional().optional);
        let mut edited = Schema::string();
        edited.name = Some("x".into());
        assert_eq!(Schema::string().name, None);
        assert_eq!(edited.name.as_deref(), Some("x"));
        let named = Schema::int32().named("n").optional();
        assert!(named.optional && named.name.as_deref() == Some("n"));
        assert!(!Schema::int32().optional);
        let s = Schema::structure().field("a", Schema::int8());
        assert!(Schema::structure().fields.is_empty());
        assert_eq!(s.fields.len(), 1);
        // Every kind's plain schema has that kind.
        for k in SchemaType::ALL {
            assert_eq!(Schema::new(k).kind, k);
            assert_eq!(Schema::new(k).optional().kind, k);
        }
    }

    #[test]
    fn struct_builder_refuses_wrong_types_and_missing_fields() {
        let b = StructBuilder::new(order_schema()).unwrap();
        let err = b.clone().put("id", "x").unwrap_err();
        assert!(err.0.contains("field id"), "{err}");
        assert!(b.clone().put("nope", 1).is_err());
        let err = b.put("id", 1i64).unwrap().build().unwrap_err();
        assert!(err.0.contains("amount"), "{err}");
        let err = StructBuilder::new(logical::time_schema()).unwrap_err();
        assert!(err.0.contains("struct schema"), "{err}");
    }

    #[test]
    fn logical_types_check_their_ranges() {
        assert!(
            logical::time_schema()
                .validate(&Value::Int32(86_400_000))
                .is_err()
        );
        assert!(logical::time_schema().validate(&Value::Int32(0)).is_ok());
        assert!(
            Schema::bytes()
                .named(logical::DECIMAL)
                .validate(&Value::Bytes(vec![1]))
                .is_err(),
            "a Decimal needs its scale"
        );
    }

    #[test]
    fn decimals_match_java_big_integer_bytes() {
        let check = |v: i128, bytes: &[u8]| {
            assert_eq!(
                logical::decimal_value(v),
                Value::Bytes(bytes.to_vec()),
                "{v}"
            );
            assert_eq!(logical::decimal_unscaled(bytes), Some(v));
        };
        check(0, &[0]);
        check(1, &[1]);
        check(-1, &[0xff]);
        check(127, &[0x7f]);
        check(128, &[0x00, 0x80]);
        check(-128, &[0x80]);
        check(-129, &[0xff, 0x7f]);
        check(12345, &[0x30, 0x39]);
        assert_eq!(logical::decimal_to_string(12345, 2), "123.45");
        assert_eq!(logical::decimal_to_string(-5, 3), "-0.005");
        assert_eq!(logical::decimal_to_string(5, -2), "500");
        assert_eq!(logical::decimal_to_string(0, 0), "0");
    }

    #[test]
    fn hostile_nesting_does_not_overflow_the_stack() {
        let buf: Vec<u8> = std::iter::repeat_n([tag::ARRAY, 1, 0, 0, 0], 10_000)
            .flatten()
            .collect();
        let err = read_value(&mut Reader::new(&buf)).unwrap_err();
        assert!(err.what.contains("deeply"), "{err}");
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Boolean),
            any::<i8>().prop_map(Value::Int8),
            any::<i16>().prop_map(Value::Int16),
            any::<i32>().prop_map(Value::Int32),
            any::<i64>().prop_map(Value::Int64),
            any::<f64>()
                .prop_filter("NaN != NaN", |f| !f.is_nan())
                .prop_map(Value::Float64),
            ".{0,8}".prop_map(Value::String),
            proptest::collection::vec(any::<u8>(), 0..16).prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec((inner.clone(), inner.clone()), 0..4)
                    .prop_map(Value::Map),
                proptest::collection::vec(inner, 0..4).prop_map(Value::Struct),
            ]
        })
    }

    proptest! {
        #[test]
        fn schemaless_values_round_trip(v in arb_value()) {
            let d = Data::schemaless(v);
            prop_assert_eq!(round_trip(&d), d);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&bytes);
            let decoded = read_data(&mut r);
            prop_assert!(decoded.is_err() || r.position() <= bytes.len());
        }
    }
}
