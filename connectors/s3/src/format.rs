//! Object formats: how the records of one object become its bytes.
//!
//! - JSON lines (Confluent's `JsonFormat`): each value as JSON, the way Kafka's
//!   `JsonConverter` writes it with `schemas.enable=false`, one per line; `.json`.
//! - raw bytes (`ByteArrayFormat`): each value's bytes followed by
//!   `format.bytearray.separator`; `format.bytearray.extension` (`.bin`).
//! - Parquet (`ParquetFormat`): one row per record from the value's struct schema (flat
//!   structs of primitives and logical types), in one row group, compressed with
//!   `parquet.codec`; `.snappy.parquet`, `.gz.parquet` or `.parquet`.
//!
//! JSON and bytes may be gzipped whole (`s3.compression.type=gzip`, `.gz` appended). Lines
//! formats hand out their bytes as they are produced ([`FileEncoder::take_ready`]) so a
//! large object streams into multipart parts; Parquet's bytes exist only at the end.

use std::io::Write;
use std::sync::Arc;

use flate2::write::GzEncoder;
use parquet::basic::{LogicalType, Repetition, TimeUnit, Type as PhysicalType};
use parquet::data_type::ByteArray;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use tributary_plugin_sdk::{Schema, SchemaType, SinkRecord, Value, logical};

/// Which format (`format.class`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatKind {
    Json,
    Bytes {
        separator: Vec<u8>,
        extension: String,
    },
    Parquet,
}

impl FormatKind {
    /// Confluent's class names, their simple names, and those without `Format`.
    pub fn from_class(class: &str) -> Option<FormatKind> {
        match class.rsplit('.').next().unwrap_or_default() {
            "JsonFormat" | "Json" => Some(FormatKind::Json),
            "ByteArrayFormat" | "ByteArray" => Some(FormatKind::Bytes {
                separator: b"\n".to_vec(),
                extension: ".bin".to_owned(),
            }),
            "ParquetFormat" | "Parquet" => Some(FormatKind::Parquet),
            _ => None,
        }
    }
}

/// The compression of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    /// Gzip of the whole object at this level (JSON and bytes).
    Gzip(u32),
    /// Parquet's own, per page.
    Parquet(ParquetCodec),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParquetCodec {
    None,
    Snappy,
    Gzip,
}

/// The extension of an object's name (with its dot).
pub fn extension(format: &FormatKind, compression: Compression) -> String {
    let gz = if matches!(compression, Compression::Gzip(_)) {
        ".gz"
    } else {
        ""
    };
    match format {
        FormatKind::Json => format!(".json{gz}"),
        FormatKind::Bytes { extension, .. } => format!("{extension}{gz}"),
        FormatKind::Parquet => match compression {
            Compression::Parquet(ParquetCodec::Snappy) => ".snappy.parquet".to_owned(),
            Compression::Parquet(ParquetCodec::Gzip) => ".gz.parquet".to_owned(),
            _ => ".parquet".to_owned(),
        },
    }
}

/// The bytes of one object being written.
#[derive(Debug)]
pub enum FileEncoder {
    Lines {
        out: LineOut,
        /// `None`: JSON; `Some(separator)`: raw bytes.
        separator: Option<Vec<u8>>,
    },
    Parquet(Box<ParquetFile>),
}

pub enum LineOut {
    Plain(Vec<u8>),
    Gzip(GzEncoder<Vec<u8>>),
}

impl std::fmt::Debug for LineOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LineOut::Plain(_) => "Plain",
            LineOut::Gzip(_) => "Gzip",
        })
    }
}

impl LineOut {
    fn buf(&mut self) -> &mut Vec<u8> {
        match self {
            LineOut::Plain(v) => v,
            LineOut::Gzip(g) => g.get_mut(),
        }
    }
}

impl FileEncoder {
    /// A new object's encoder; `first` is its first record (Parquet takes its schema).
    pub fn new(
        format: &FormatKind,
        compression: Compression,
        first: &SinkRecord,
    ) -> Result<FileEncoder, String> {
        let out = || match compression {
            Compression::Gzip(level) => {
                LineOut::Gzip(GzEncoder::new(Vec::new(), flate2::Compression::new(level)))
            }
            _ => LineOut::Plain(Vec::new()),
        };
        Ok(match format {
            FormatKind::Json => FileEncoder::Lines {
                out: out(),
                separator: None,
            },
            FormatKind::Bytes { separator, .. } => FileEncoder::Lines {
                out: out(),
                separator: Some(separator.clone()),
            },
            FormatKind::Parquet => {
                let codec = match compression {
                    Compression::Parquet(c) => c,
                    _ => ParquetCodec::Snappy,
                };
                FileEncoder::Parquet(Box::new(ParquetFile::new(first, codec)?))
            }
        })
    }

    /// Whether `r` can go into this object (Parquet: the same value schema).
    pub fn accepts(&self, r: &SinkRecord) -> bool {
        match self {
            FileEncoder::Parquet(p) => r.value.schema.as_ref() == Some(&p.schema),
            FileEncoder::Lines { .. } => true,
        }
    }

    pub fn append(&mut self, r: &SinkRecord) -> Result<(), String> {
        match self {
            FileEncoder::Lines { out, separator } => {
                let mut line = Vec::new();
                let line = match separator {
                    None => {
                        write_json(&r.value.value, r.value.schema.as_ref(), &mut line);
                        line.push(b'\n');
                        &line[..]
                    }
                    Some(sep) => {
                        match &r.value.value {
                            Value::Bytes(b) => line.extend_from_slice(b),
                            Value::String(s) => line.extend_from_slice(s.as_bytes()),
                            other => {
                                return Err(format!(
                                    "record {}-{}@{}: ByteArrayFormat writes bytes or strings, not a {} (use value.converter=org.apache.kafka.connect.converters.ByteArrayConverter)",
                                    r.topic,
                                    r.partition,
                                    r.offset,
                                    other.type_name()
                                ));
                            }
                        }
                        line.extend_from_slice(sep);
                        &line[..]
                    }
                };
                match out {
                    LineOut::Plain(v) => v.extend_from_slice(line),
                    LineOut::Gzip(g) => {
                        g.write_all(line).map_err(|e| format!("compressing: {e}"))?
                    }
                }
                Ok(())
            }
            FileEncoder::Parquet(p) => p.append(r),
        }
    }

    /// Bytes ready to upload so far.
    pub fn ready_len(&mut self) -> usize {
        match self {
            FileEncoder::Lines { out, .. } => out.buf().len(),
            FileEncoder::Parquet(_) => 0,
        }
    }

    /// Take the bytes ready so far (the object continues after them).
    pub fn take_ready(&mut self) -> Vec<u8> {
        match self {
            FileEncoder::Lines { out, .. } => std::mem::take(out.buf()),
            FileEncoder::Parquet(_) => Vec::new(),
        }
    }

    /// The object's remaining bytes.
    pub fn finish(self) -> Result<Vec<u8>, String> {
        match self {
            FileEncoder::Lines {
                out: LineOut::Plain(v),
                ..
            } => Ok(v),
            FileEncoder::Lines {
                out: LineOut::Gzip(g),
                ..
            } => g.finish().map_err(|e| format!("compressing: {e}")),
            FileEncoder::Parquet(p) => p.finish(),
        }
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8], out: &mut Vec<u8>) {
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
}

fn json_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn json_float(f: f64, out: &mut Vec<u8>) {
    if f.is_finite() {
        let s = f.to_string();
        out.extend_from_slice(s.as_bytes());
        // JSON readers keep a double a double: 1.0, not 1.
        if !s.contains(['.', 'e', 'E']) {
            out.extend_from_slice(b".0");
        }
    } else {
        // Jackson writes these as strings.
        json_string(&f.to_string(), out);
    }
}

/// A value as `JsonConverter` (schemas disabled) writes it: structs as objects, maps
/// with string keys as objects and others as `[key, value]` pairs, bytes and decimals
/// as base64.
pub fn write_json(v: &Value, schema: Option<&Schema>, out: &mut Vec<u8>) {
    let is_decimal = schema.is_some_and(|s| s.name.as_deref() == Some(logical::DECIMAL));
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int8(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Int16(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Int32(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Int64(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Float32(n) => json_float(f64::from(*n), out),
        Value::Float64(n) => json_float(*n, out),
        Value::String(s) => json_string(s, out),
        Value::Bytes(b) => {
            let _ = is_decimal;
            out.push(b'"');
            base64(b, out);
            out.push(b'"');
        }
        Value::Array(items) => {
            let item_schema = schema.and_then(|s| s.key_or_items.as_deref());
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(item, item_schema, out);
            }
            out.push(b']');
        }
        Value::Map(entries) => {
            let key_schema = schema.and_then(|s| s.key_or_items.as_deref());
            let value_schema = schema.and_then(|s| s.map_values.as_deref());
            let string_keys = entries.iter().all(|(k, _)| matches!(k, Value::String(_)));
            out.push(if string_keys { b'{' } else { b'[' });
            for (i, (k, val)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if string_keys {
                    write_json(k, key_schema, out);
                    out.push(b':');
                    write_json(val, value_schema, out);
                } else {
                    out.push(b'[');
                    write_json(k, key_schema, out);
                    out.push(b',');
                    write_json(val, value_schema, out);
                    out.push(b']');
                }
            }
            out.push(if string_keys { b'}' } else { b']' });
        }
        Value::Struct(values) => {
            out.push(b'{');
            let fields = schema.map(|s| &s.fields[..]).unwrap_or_default();
            for (i, (f, val)) in fields.iter().zip(values).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_string(&f.name, out);
                out.push(b':');
                write_json(val, Some(&f.schema), out);
            }
            out.push(b'}');
        }
    }
}

/// The column values of one Parquet leaf.
#[derive(Debug)]
enum Column {
    Bool(Vec<bool>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bytes(Vec<ByteArray>),
}

/// The rows of one Parquet object, column by column, until it is finished.
#[derive(Debug)]
pub struct ParquetFile {
    schema: Schema,
    parquet: Arc<Type>,
    codec: ParquetCodec,
    columns: Vec<Column>,
    /// Definition levels per column (all written: 1 present, 0 null; required columns
    /// have no nulls and ignore them).
    defs: Vec<Vec<i16>>,
}

fn parquet_field(name: &str, s: &Schema) -> Result<(Type, Column), String> {
    let (physical, logical_type, column) = match (s.kind, s.name.as_deref()) {
        (SchemaType::Int64, Some(logical::TIMESTAMP)) => (
            PhysicalType::INT64,
            Some(LogicalType::Timestamp {
                is_adjusted_to_u_t_c: true,
                unit: TimeUnit::MILLIS,
            }),
            Column::I64(Vec::new()),
        ),
        (SchemaType::Int32, Some(logical::DATE)) => (
            PhysicalType::INT32,
            Some(LogicalType::Date),
            Column::I32(Vec::new()),
        ),
        (SchemaType::Int32, Some(logical::TIME)) => (
            PhysicalType::INT32,
            Some(LogicalType::Time {
                is_adjusted_to_u_t_c: true,
                unit: TimeUnit::MILLIS,
            }),
            Column::I32(Vec::new()),
        ),
        (SchemaType::Bytes, Some(logical::DECIMAL)) => {
            let scale = logical::decimal_scale(s).unwrap_or(0);
            let precision = s
                .parameters
                .get("connect.decimal.precision")
                .and_then(|p| p.parse().ok())
                .unwrap_or(38);
            (
                PhysicalType::BYTE_ARRAY,
                Some(LogicalType::Decimal { scale, precision }),
                Column::Bytes(Vec::new()),
            )
        }
        (SchemaType::Boolean, _) => (PhysicalType::BOOLEAN, None, Column::Bool(Vec::new())),
        (SchemaType::Int8, _) => (
            PhysicalType::INT32,
            Some(LogicalType::Integer {
                bit_width: 8,
                is_signed: true,
            }),
            Column::I32(Vec::new()),
        ),
        (SchemaType::Int16, _) => (
            PhysicalType::INT32,
            Some(LogicalType::Integer {
                bit_width: 16,
                is_signed: true,
            }),
            Column::I32(Vec::new()),
        ),
        (SchemaType::Int32, _) => (PhysicalType::INT32, None, Column::I32(Vec::new())),
        (SchemaType::Int64, _) => (PhysicalType::INT64, None, Column::I64(Vec::new())),
        (SchemaType::Float32, _) => (PhysicalType::FLOAT, None, Column::F32(Vec::new())),
        (SchemaType::Float64, _) => (PhysicalType::DOUBLE, None, Column::F64(Vec::new())),
        (SchemaType::String, _) => (
            PhysicalType::BYTE_ARRAY,
            Some(LogicalType::String),
            Column::Bytes(Vec::new()),
        ),
        (SchemaType::Bytes, _) => (PhysicalType::BYTE_ARRAY, None, Column::Bytes(Vec::new())),
        (kind, _) => {
            return Err(format!(
                "ParquetFormat writes flat structs; field {name} is a {} (flatten it first, e.g. with the Flatten transform)",
                kind.json_name()
            ));
        }
    };
    let t = Type::primitive_type_builder(name, physical)
        .with_repetition(if s.optional {
            Repetition::OPTIONAL
        } else {
            Repetition::REQUIRED
        })
        .with_logical_type(logical_type)
        .build()
        .map_err(|e| format!("parquet schema of field {name}: {e}"))?;
    Ok((t, column))
}

impl ParquetFile {
    fn new(first: &SinkRecord, codec: ParquetCodec) -> Result<ParquetFile, String> {
        let schema = match &first.value.schema {
            Some(s) if s.kind == SchemaType::Struct => s.clone(),
            _ => {
                return Err(format!(
                    "record {}-{}@{}: ParquetFormat needs struct values with a schema (e.g. value.converter=org.apache.kafka.connect.json.JsonConverter with schemas.enable=true)",
                    first.topic, first.partition, first.offset
                ));
            }
        };
        let mut fields = Vec::new();
        let mut columns = Vec::new();
        for f in &schema.fields {
            let (t, c) = parquet_field(&f.name, &f.schema)?;
            fields.push(Arc::new(t));
            columns.push(c);
        }
        let name = schema
            .name
            .as_deref()
            .and_then(|n| n.rsplit('.').next())
            .unwrap_or("ConnectDefault")
            .to_owned();
        let parquet = Type::group_type_builder(&name)
            .with_fields(fields)
            .build()
            .map_err(|e| format!("parquet schema: {e}"))?;
        let defs = vec![Vec::new(); columns.len()];
        Ok(ParquetFile {
            schema,
            parquet: Arc::new(parquet),
            codec,
            columns,
            defs,
        })
    }

    fn append(&mut self, r: &SinkRecord) -> Result<(), String> {
        let Value::Struct(values) = &r.value.value else {
            return Err(format!(
                "record {}-{}@{}: ParquetFormat needs a struct value, not a {}",
                r.topic,
                r.partition,
                r.offset,
                r.value.value.type_name()
            ));
        };
        for (i, v) in values.iter().enumerate() {
            let (Some(col), Some(defs)) = (self.columns.get_mut(i), self.defs.get_mut(i)) else {
                break;
            };
            if matches!(v, Value::Null) {
                defs.push(0);
                continue;
            }
            defs.push(1);
            let ok = match (col, v) {
                (Column::Bool(c), Value::Boolean(b)) => {
                    c.push(*b);
                    true
                }
                (Column::I32(c), Value::Int8(n)) => {
                    c.push(i32::from(*n));
                    true
                }
                (Column::I32(c), Value::Int16(n)) => {
                    c.push(i32::from(*n));
                    true
                }
                (Column::I32(c), Value::Int32(n)) => {
                    c.push(*n);
                    true
                }
                (Column::I64(c), Value::Int64(n)) => {
                    c.push(*n);
                    true
                }
                (Column::F32(c), Value::Float32(n)) => {
                    c.push(*n);
                    true
                }
                (Column::F64(c), Value::Float64(n)) => {
                    c.push(*n);
                    true
                }
                (Column::Bytes(c), Value::String(s)) => {
                    c.push(ByteArray::from(s.as_bytes().to_vec()));
                    true
                }
                (Column::Bytes(c), Value::Bytes(b)) => {
                    c.push(ByteArray::from(b.clone()));
                    true
                }
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "record {}-{}@{}: field {} does not fit its schema",
                    r.topic, r.partition, r.offset, self.schema.fields[i].name
                ));
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<u8>, String> {
        use parquet::column::writer::ColumnWriter;
        let compression = match self.codec {
            ParquetCodec::None => parquet::basic::Compression::UNCOMPRESSED,
            ParquetCodec::Snappy => parquet::basic::Compression::SNAPPY,
            ParquetCodec::Gzip => parquet::basic::Compression::GZIP(Default::default()),
        };
        let props = Arc::new(
            WriterProperties::builder()
                .set_compression(compression)
                .set_created_by(format!("tributary S3Sink {}", env!("CARGO_PKG_VERSION")))
                .build(),
        );
        let err = |e: parquet::errors::ParquetError| format!("writing parquet: {e}");
        let mut writer =
            SerializedFileWriter::new(Vec::new(), self.parquet.clone(), props).map_err(err)?;
        let mut rg = writer.next_row_group().map_err(err)?;
        let mut i = 0;
        while let Some(mut col) = rg.next_column().map_err(err)? {
            let optional = self.schema.fields[i].schema.optional;
            let defs = if optional {
                Some(&self.defs[i][..])
            } else {
                None
            };
            let written = match (col.untyped(), &self.columns[i]) {
                (ColumnWriter::BoolColumnWriter(w), Column::Bool(v)) => {
                    w.write_batch(v, defs, None)
                }
                (ColumnWriter::Int32ColumnWriter(w), Column::I32(v)) => {
                    w.write_batch(v, defs, None)
                }
                (ColumnWriter::Int64ColumnWriter(w), Column::I64(v)) => {
                    w.write_batch(v, defs, None)
                }
                (ColumnWriter::FloatColumnWriter(w), Column::F32(v)) => {
                    w.write_batch(v, defs, None)
                }
                (ColumnWriter::DoubleColumnWriter(w), Column::F64(v)) => {
                    w.write_batch(v, defs, None)
                }
                (ColumnWriter::ByteArrayColumnWriter(w), Column::Bytes(v)) => {
                    w.write_batch(v, defs, None)
                }
                _ => return Err(format!("parquet column {i} has an unexpected type")),
            };
            written.map_err(err)?;
            col.close().map_err(err)?;
            i += 1;
        }
        rg.close().map_err(err)?;
        writer.into_inner().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use tributary_plugin_sdk::{Data, StructBuilder};

    use super::*;

    fn json(d: &Data) -> String {
        let mut out = Vec::new();
        write_json(&d.value, d.schema.as_ref(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_like_json_converter() {
        let schema = Schema::structure()
            .field("s", Schema::string())
            .field("n", Schema::int64())
            .field("f", Schema::float64())
            .field("b", Schema::bytes())
            .field("o", Schema::int32().optional());
        let d = StructBuilder::new(schema)
            .unwrap()
            .put("s", "a\"b\n")
            .unwrap()
            .put("n", 5i64)
            .unwrap()
            .put("f", 1.0)
            .unwrap()
            .put("b", b"hi!?".to_vec())
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            json(&d),
            r#"{"s":"a\"b\n","n":5,"f":1.0,"b":"aGkhPw==","o":null}"#
        );
        let m = Data::schemaless(Value::Map(vec![(Value::from("k"), Value::Int32(1))]));
        assert_eq!(json(&m), r#"{"k":1}"#);
        let m = Data::schemaless(Value::Map(vec![(Value::Int32(2), Value::Int32(1))]));
        assert_eq!(json(&m), "[[2,1]]");
    }

    #[test]
    fn extensions() {
        assert_eq!(extension(&FormatKind::Json, Compression::None), ".json");
        assert_eq!(
            extension(&FormatKind::Json, Compression::Gzip(6)),
            ".json.gz"
        );
        assert_eq!(
            extension(
                &FormatKind::Parquet,
                Compression::Parquet(ParquetCodec::Snappy)
            ),
            ".snappy.parquet"
        );
    }

    #[test]
    fn parquet_round_trip() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let schema = Schema::structure()
            .field("id", Schema::int64())
            .field("name", Schema::string().optional());
        let rec = |i: i64, name: Option<&str>| {
            let mut b = StructBuilder::new(schema.clone())
                .unwrap()
                .put("id", i)
                .unwrap();
            if let Some(n) = name {
                b = b.put("name", n).unwrap();
            }
            SinkRecord::new("t", 0, i, b.build().unwrap())
        };
        let first = rec(0, Some("a"));
        let mut f = FileEncoder::new(
            &FormatKind::Parquet,
            Compression::Parquet(ParquetCodec::Snappy),
            &first,
        )
        .unwrap();
        f.append(&first).unwrap();
        f.append(&rec(1, None)).unwrap();
        let bytes = f.finish().unwrap();
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 2);
        let rows: Vec<String> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| r.unwrap().to_string())
            .collect();
        assert_eq!(rows, [r#"{id: 0, name: "a"}"#, "{id: 1, name: null}"]);
    }
}
