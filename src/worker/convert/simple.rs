//! The converters that need no format of their own: `StringConverter` (a value's Java
//! `toString()`, UTF-8), `ByteArrayConverter` (bytes as they are), and the fixed-width
//! ones in `org.apache.kafka.connect.converters` (`ShortConverter`, `IntegerConverter`,
//! `LongConverter`, `FloatConverter`, `DoubleConverter` big-endian as Kafka's serializers
//! write them, `BooleanConverter` one byte 0 or 1).
//!
//! Reading always gives the converter's optional schema (`string`, `bytes`, `int32`, ...),
//! with a null value for null bytes, as Kafka does.

use std::collections::BTreeMap;

use tributary_plugin_abi::data::{Data, MAX_DEPTH, Schema, SchemaType, Value, logical};

use super::{ConvertError, Fail, Role, Settings, decimal, java};

/// `org.apache.kafka.connect.storage.StringConverter`.
#[derive(Debug)]
pub struct StringConverter {
    role: Role,
}

impl StringConverter {
    pub fn new(role: Role) -> StringConverter {
        StringConverter { role }
    }

    /// Build from a converter config: `converter.encoding` must be UTF-8 (the default).
    pub fn configure(
        config: &BTreeMap<String, String>,
        role: Role,
    ) -> Result<StringConverter, ConvertError> {
        let s = Settings::new("StringConverter", role, config)?;
        if let Some(enc) = s.string("converter.encoding") {
            let e = enc.to_ascii_uppercase();
            if e != "UTF-8" && e != "UTF8" {
                return Err(s.refuse(
                    "converter.encoding",
                    enc,
                    "only UTF-8 is supported; remove the setting, or use \
                     org.apache.kafka.connect.converters.ByteArrayConverter and decode in the \
                     connector",
                ));
            }
        }
        Ok(StringConverter::new(role))
    }

    pub(crate) fn name(&self) -> &'static str {
        "StringConverter"
    }

    pub(crate) fn role(&self) -> Role {
        self.role
    }

    pub(crate) fn write(&self, data: &Data) -> Result<Option<Vec<u8>>, Fail> {
        if data.value == Value::Null {
            return Ok(None);
        }
        let mut out = Vec::new();
        push_to_string(data.schema.as_ref(), &data.value, &mut out, 0)?;
        Ok(Some(out))
    }

    pub(crate) fn read(&self, bytes: Option<&[u8]>) -> Result<Data, Fail> {
        let value = match bytes {
            None => Value::Null,
            Some(b) => Value::String(
                std::str::from_utf8(b)
                    .map_err(|e| {
                        Fail::new(format!(
                            "the bytes are not UTF-8 (invalid at byte {}); for binary data use \
                             org.apache.kafka.connect.converters.ByteArrayConverter",
                            e.valid_up_to()
                        ))
                    })?
                    .to_owned(),
            ),
        };
        Ok(Data {
            schema: Some(Schema::string().optional()),
            value,
        })
    }
}

/// A value's Java `toString()`, as `StringConverter` writes it: numbers as Java prints
/// them, Decimals as `BigDecimal`, Date/Time/Timestamp as `java.util.Date` (in UTC),
/// arrays `[a, b]`, maps `{k=v, k2=v2}`, structs `Struct{a=1,b=x}` (null fields left out).
/// Bytes have no useful Java form (`[B@1b6d3586`), so they are refused.
fn push_to_string(
    schema: Option<&Schema>,
    v: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), Fail> {
    if depth > MAX_DEPTH {
        return Err(Fail::new(format!(
            "data nested deeper than {MAX_DEPTH} levels"
        )));
    }
    let name = schema.and_then(|s| s.name.as_deref());
    match (name, v) {
        (Some(logical::DECIMAL), Value::Bytes(b)) if !b.is_empty() => {
            let scale = schema
                .and_then(logical::decimal_scale)
                .ok_or_else(|| Fail::new("a Decimal schema needs an integer `scale` parameter"))?;
            decimal::push_java_string(b, scale, out)?;
            return Ok(());
        }
        (Some(logical::DATE), Value::Int32(days)) => {
            java::push_date_to_string(i64::from(*days) * java::MILLIS_PER_DAY, out);
            return Ok(());
        }
        (Some(logical::TIME), Value::Int32(ms)) => {
            java::push_date_to_string(i64::from(*ms), out);
            return Ok(());
        }
        (Some(logical::TIMESTAMP), Value::Int64(ms)) => {
            java::push_date_to_string(*ms, out);
            return Ok(());
        }
        _ => {}
    }
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int8(n) => java::push_i64(i64::from(*n), out),
        Value::Int16(n) => java::push_i64(i64::from(*n), out),
        Value::Int32(n) => java::push_i64(i64::from(*n), out),
        Value::Int64(n) => java::push_i64(*n, out),
        Value::Float32(f) => java::push_f32(*f, out),
        Value::Float64(f) => java::push_f64(*f, out),
        Value::String(s) => out.extend_from_slice(s.as_bytes()),
        Value::Bytes(_) => {
            return Err(Fail::new(
                "StringConverter cannot write bytes (Java would write an object id such as \
                 [B@1b6d3586); use org.apache.kafka.connect.converters.ByteArrayConverter",
            ));
        }
        Value::Array(items) => {
            let items_schema = schema.and_then(|s| s.key_or_items.as_deref());
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                push_to_string(items_schema, item, out, depth + 1).map_err(|e| e.in_index(i))?;
            }
            out.push(b']');
        }
        Value::Map(entries) => {
            let ks = schema.and_then(|s| s.key_or_items.as_deref());
            let vs = schema.and_then(|s| s.map_values.as_deref());
            out.push(b'{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                push_to_string(ks, k, out, depth + 1)?;
                out.push(b'=');
                push_to_string(vs, v, out, depth + 1).map_err(|e| e.in_key(k))?;
            }
            out.push(b'}');
        }
        Value::Struct(values) => {
            let Some(s) = schema.filter(|s| s.kind == SchemaType::Struct) else {
                return Err(Fail::new("a struct value without its struct schema"));
            };
            out.extend_from_slice(b"Struct{");
            let mut first = true;
            for (f, v) in s.fields.iter().zip(values) {
                if *v == Value::Null {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(f.name.as_bytes());
                out.push(b'=');
                push_to_string(Some(&f.schema), v, out, depth + 1)
                    .map_err(|e| e.in_field(&f.name))?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// `org.apache.kafka.connect.converters.ByteArrayConverter`.
#[derive(Debug)]
pub struct ByteArrayConverter {
    role: Role,
}

impl ByteArrayConverter {
    pub fn new(role: Role) -> ByteArrayConverter {
        ByteArrayConverter { role }
    }

    pub fn configure(
        config: &BTreeMap<String, String>,
        role: Role,
    ) -> Result<ByteArrayConverter, ConvertError> {
        Settings::new("ByteArrayConverter", role, config)?;
        Ok(ByteArrayConverter::new(role))
    }

    pub(crate) fn name(&self) -> &'static str {
        "ByteArrayConverter"
    }

    pub(crate) fn role(&self) -> Role {
        self.role
    }

    pub(crate) fn write(&self, data: &Data) -> Result<Option<Vec<u8>>, Fail> {
        if let Some(s) = &data.schema
            && s.kind != SchemaType::Bytes
        {
            return Err(Fail::new(format!(
                "ByteArrayConverter needs a bytes schema or none, not {}",
                s.kind.json_name()
            )));
        }
        match &data.value {
            Value::Null => Ok(None),
            Value::Bytes(b) => Ok(Some(b.clone())),
            other => Err(Fail::new(format!(
                "ByteArrayConverter writes bytes only, not a {} value",
                other.type_name()
            ))),
        }
    }

    pub(crate) fn read(&self, bytes: Option<&[u8]>) -> Result<Data, Fail> {
        Ok(Data {
            schema: Some(Schema::bytes().optional()),
            value: bytes.map_or(Value::Null, |b| Value::Bytes(b.to_vec())),
        })
    }
}

/// Which fixed-width converter a [`NumberConverter`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberKind {
    Boolean,
    Short,
    Integer,
    Long,
    Float,
    Double,
}

impl NumberKind {
    fn name(self) -> &'static str {
        match self {
            NumberKind::Boolean => "BooleanConverter",
            NumberKind::Short => "ShortConverter",
            NumberKind::Integer => "IntegerConverter",
            NumberKind::Long => "LongConverter",
            NumberKind::Float => "FloatConverter",
            NumberKind::Double => "DoubleConverter",
        }
    }

    fn schema_type(self) -> SchemaType {
        match self {
            NumberKind::Boolean => SchemaType::Boolean,
            NumberKind::Short => SchemaType::Int16,
            NumberKind::Integer => SchemaType::Int32,
            NumberKind::Long => SchemaType::Int64,
            NumberKind::Float => SchemaType::Float32,
            NumberKind::Double => SchemaType::Float64,
        }
    }

    fn width(self) -> usize {
        match self {
            NumberKind::Boolean => 1,
            NumberKind::Short => 2,
            NumberKind::Integer | NumberKind::Float => 4,
            NumberKind::Long | NumberKind::Double => 8,
        }
    }
}

/// Kafka's `ShortConverter`, `IntegerConverter`, `LongConverter`, `FloatConverter`,
/// `DoubleConverter` (Kafka's serializers: big-endian two's complement / IEEE 754 bits)
/// and `BooleanConverter` (one byte, 1 or 0).
#[derive(Debug)]
pub struct NumberConverter {
    kind: NumberKind,
    role: Role,
}

impl NumberConverter {
    pub fn new(kind: NumberKind, role: Role) -> NumberConverter {
        NumberConverter { kind, role }
    }

    pub fn configure(
        kind: NumberKind,
        config: &BTreeMap<String, String>,
        role: Role,
    ) -> Result<NumberConverter, ConvertError> {
        Settings::new(kind.name(), role, config)?;
        Ok(NumberConverter::new(kind, role))
    }

    pub(crate) fn name(&self) -> &'static str {
        self.kind.name()
    }

    pub(crate) fn role(&self) -> Role {
        self.role
    }

    pub(crate) fn write(&self, data: &Data) -> Result<Option<Vec<u8>>, Fail> {
        // Like Kafka, only BooleanConverter looks at the schema; the others the value.
        if let (NumberKind::Boolean, Some(s)) = (self.kind, &data.schema)
            && s.kind != SchemaType::Boolean
        {
            return Err(Fail::new(format!(
                "BooleanConverter needs a boolean schema or none, not {}",
                s.kind.json_name()
            )));
        }
        Ok(Some(match (self.kind, &data.value) {
            (_, Value::Null) => return Ok(None),
            (NumberKind::Boolean, Value::Boolean(b)) => vec![u8::from(*b)],
            (NumberKind::Short, Value::Int16(n)) => n.to_be_bytes().to_vec(),
            (NumberKind::Integer, Value::Int32(n)) => n.to_be_bytes().to_vec(),
            (NumberKind::Long, Value::Int64(n)) => n.to_be_bytes().to_vec(),
            (NumberKind::Float, Value::Float32(f)) => f.to_bits().to_be_bytes().to_vec(),
            (NumberKind::Double, Value::Float64(f)) => f.to_bits().to_be_bytes().to_vec(),
            (kind, other) => {
                return Err(Fail::new(format!(
                    "{} writes {} values only, not a {} value",
                    kind.name(),
                    kind.schema_type().json_name(),
                    other.type_name()
                )));
            }
        }))
    }

    pub(crate) fn read(&self, bytes: Option<&[u8]>) -> Result<Data, Fail> {
        let schema = Some(Schema::new(self.kind.schema_type()).optional());
        let Some(b) = bytes else {
            return Ok(Data {
                schema,
                value: Value::Null,
            });
        };
        let width = self.kind.width();
        if b.len() != width {
            return Err(Fail::new(format!(
                "{} reads exactly {width} byte{}, found {}",
                self.kind.name(),
                if width == 1 { "" } else { "s" },
                b.len()
            )));
        }
        let mut buf = [0u8; 8];
        buf[..width].copy_from_slice(b);
        let value = match self.kind {
            NumberKind::Boolean => match b[0] {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                other => {
                    return Err(Fail::new(format!(
                        "BooleanConverter reads the byte 0 or 1, found {other}"
                    )));
                }
            },
            NumberKind::Short => Value::Int16(i16::from_be_bytes([buf[0], buf[1]])),
            NumberKind::Integer => {
                Value::Int32(i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]))
            }
            NumberKind::Long => Value::Int64(i64::from_be_bytes(buf)),
            NumberKind::Float => Value::Float32(f32::from_bits(u32::from_be_bytes([
                buf[0], buf[1], buf[2], buf[3],
            ]))),
            NumberKind::Double => Value::Float64(f64::from_bits(u64::from_be_bytes(buf))),
        };
        Ok(Data { schema, value })
    }
}
