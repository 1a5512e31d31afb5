//! `org.apache.kafka.connect.json.JsonConverter`: Connect data as JSON, byte for byte as
//! Kafka writes it, and JSON as Kafka reads it.
//!
//! With `schemas.enable=true` (the default) every key or value is an envelope
//! `{"schema":<schema>,"payload":<value>}`; with `false` it is the bare value, and reading
//! infers a schemaless value (integers int64, other numbers float64, objects maps with
//! string keys). A null without a schema is a null record (a tombstone) both ways; a null
//! *with* a schema is written as Kafka does, as JSON (`{"schema":{...},"payload":null}`, or
//! `null` without the envelope), not as a tombstone.
//!
//! Keys: `schemas.enable`, `schemas.cache.size` (parsed schemas kept by their JSON text),
//! `decimal.format` (`BASE64` or `NUMERIC`, how Decimals are written; both are read),
//! `replace.null.with.default` (nulls become the schema's default, writing and reading).
//!
//! Deliberate differences from Kafka, all on input Kafka would turn into wrong data
//! silently: a value that does not fit its schema (a string for an int32, 1.5 for an
//! int32, 300 for an int8, an integer beyond int64 without a schema) is an error rather
//! than a truncated or zeroed value; text after the JSON value is an error rather than
//! ignored; the strings `"NaN"`, `"Infinity"`, `"-Infinity"` (how Jackson writes those
//! floats) read back as those floats rather than 0. A numeric Decimal with more decimal
//! places than its schema's scale is refused, as it has no exact representation at that
//! scale (Kafka fails too, later, when the value is written again). An envelope with two
//! `schema` or two `payload` members is refused (Jackson would keep the last).
//!
//! Floats are written in the JDK 19+ `Double.toString` form (shortest digits); Kafka on an
//! older JDK writes some rare values with more digits than needed (the same number). Schema
//! parameters are written sorted by name (the data model keeps them in a sorted map; Kafka
//! keeps insertion order), which only matters for schemas with several parameters.

mod read;
mod write;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::worker::local::Local;

use tributary_plugin_abi::data::{Data, Schema, Value};

use super::{ConvertError, Fail, Role, Settings};
use read::{Reader, Tok};
use write::Writer;

/// How Decimals are written (`decimal.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalFormat {
    /// The unscaled value's two's complement bytes in base64 (Kafka's default).
    Base64,
    /// A JSON number in Java's `BigDecimal.toString` form.
    Numeric,
}

/// A `JsonConverter`'s settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonConverterConfig {
    pub schemas_enable: bool,
    pub schemas_cache_size: usize,
    pub decimal_format: DecimalFormat,
    pub replace_null_with_default: bool,
}

impl Default for JsonConverterConfig {
    fn default() -> JsonConverterConfig {
        JsonConverterConfig {
            schemas_enable: true,
            schemas_cache_size: 1000,
            decimal_format: DecimalFormat::Base64,
            replace_null_with_default: true,
        }
    }
}

impl JsonConverterConfig {
    /// Parse the converter's config (prefix stripped) for `role`.
    pub fn parse(
        config: &std::collections::BTreeMap<String, String>,
        role: Role,
    ) -> Result<JsonConverterConfig, ConvertError> {
        let s = Settings::new(NAME, role, config)?;
        Ok(JsonConverterConfig {
            schemas_enable: s.bool("schemas.enable", true)?,
            schemas_cache_size: s.int("schemas.cache.size", 1000, 0)? as usize,
            decimal_format: match s.choice("decimal.format", "BASE64", &["BASE64", "NUMERIC"])? {
                "NUMERIC" => DecimalFormat::Numeric,
                _ => DecimalFormat::Base64,
            },
            replace_null_with_default: s.bool("replace.null.with.default", true)?,
        })
    }
}

const NAME: &str = "JsonConverter";

/// Kafka's `JsonConverter`; see the module docs.
#[derive(Debug)]
pub struct JsonConverter {
    config: JsonConverterConfig,
    role: Role,
    cache: Mutex<SchemaCache>,
    /// The last schema written into an envelope and its JSON: records of one source share
    /// their schema, and writing it once per batch instead of once per record is most of
    /// the cost of small structured records. Per thread: the tasks of a connector share
    /// their converter, and a lock per record would cost about as much as it saves.
    written: Local<Option<(Schema, Vec<u8>)>>,
    /// The size of the last output, to allocate the next one once.
    size_hint: AtomicUsize,
}

impl JsonConverter {
    pub fn new(config: JsonConverterConfig, role: Role) -> JsonConverter {
        JsonConverter {
            cache: Mutex::new(SchemaCache::new(config.schemas_cache_size)),
            written: Local::default(),
            config,
            role,
            size_hint: AtomicUsize::new(64),
        }
    }

    /// Build from a converter config (prefix stripped).
    pub fn configure(
        config: &std::collections::BTreeMap<String, String>,
        role: Role,
    ) -> Result<JsonConverter, ConvertError> {
        Ok(JsonConverter::new(
            JsonConverterConfig::parse(config, role)?,
            role,
        ))
    }

    pub fn config(&self) -> &JsonConverterConfig {
        &self.config
    }

    pub(crate) fn name(&self) -> &'static str {
        NAME
    }

    pub(crate) fn role(&self) -> Role {
        self.role
    }

    pub(crate) fn write(&self, data: &Data) -> Result<Option<Vec<u8>>, Fail> {
        if data.schema.is_none() && data.value == Value::Null {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(self.size_hint.load(Ordering::Relaxed));
        let mut w = Writer {
            out: &mut out,
            decimal_format: self.config.decimal_format,
            replace_null_with_default: self.config.replace_null_with_default,
        };
        let schema = data.schema.as_ref();
        if self.config.schemas_enable {
            w.out.extend_from_slice(b"{\"schema\":");
            match schema {
                Some(s) => self.write_schema(s, &mut w)?,
                None => w.out.extend_from_slice(b"null"),
            }
            w.out.extend_from_slice(b",\"payload\":");
            w.value(schema, &data.value, 0)?;
            w.out.push(b'}');
        } else {
            w.value(schema, &data.value, 0)?;
        }
        self.size_hint.store(out.len(), Ordering::Relaxed);
        Ok(Some(out))
    }

    /// Write an envelope's schema, copying the JSON of the last one when `s` is the same
    /// handle or an equal schema.
    fn write_schema(&self, s: &Schema, w: &mut Writer<'_>) -> Result<(), Fail> {
        let out = &mut *w.out;
        let copied = self.written.with(|written| match written {
            Some((last, json)) if last.same(s) || last == s => {
                if !last.same(s) {
                    // The next record most likely shares this handle.
                    *last = s.clone();
                }
                out.extend_from_slice(json);
                true
            }
            _ => false,
        });
        if copied == Some(true) {
            return Ok(());
        }
        let at = w.out.len();
        w.schema(s, None, 0).map_err(|e| e.context("the schema"))?;
        let json = w.out[at..].to_vec();
        self.written
            .with(|written| *written = Some((s.clone(), json)));
        Ok(())
    }

    pub(crate) fn read(&self, bytes: Option<&[u8]>) -> Result<Data, Fail> {
        let Some(bytes) = bytes else {
            return Ok(Data::null());
        };
        let mut r = Reader::new(bytes, self.config.replace_null_with_default);
        if !self.config.schemas_enable {
            if r.is_blank() {
                return Ok(Data::null());
            }
            let value = r.infer(0)?;
            r.at_end()?;
            return Ok(Data::schemaless(value));
        }
        match r.peek() {
            Ok(Tok::Object) => r.open(),
            Ok(tok) => {
                return Err(self.not_an_envelope(&format!("the JSON is {}", tok.describe())));
            }
            Err(_) if r.is_blank() => return Err(self.not_an_envelope("the input is empty")),
            Err(e) => return Err(e),
        }
        let mut schema: Option<Option<Schema>> = None;
        let mut payload: Option<Value> = None;
        let mut payload_at = None;
        let mut first = true;
        while let Some(key) = r.next_key(&mut first)? {
            r.ws();
            match &*key {
                "schema" if schema.is_none() => {
                    let start = r.pos;
                    r.skip(0)?;
                    schema = Some(
                        self.schema_of(&bytes[start..r.pos])
                            .map_err(|e| e.context("the envelope's schema"))?,
                    );
                }
                "payload" if payload.is_none() && payload_at.is_none() => match &schema {
                    // The usual order (Kafka writes the schema first): convert in one pass.
                    Some(s) => payload = Some(payload_value(&mut r, s.as_ref())?),
                    None => {
                        payload_at = Some(r.pos);
                        r.skip(0)?;
                    }
                },
                "schema" | "payload" => {
                    return Err(self.not_an_envelope(&format!("it has two {key:?} fields")));
                }
                other => {
                    return Err(self.not_an_envelope(&format!(
                        "it has a field {other:?} besides \"schema\" and \"payload\""
                    )));
                }
            }
        }
        r.at_end()?;
        let Some(schema) = schema else {
            return Err(self.not_an_envelope("it has no \"schema\" field"));
        };
        let value = match (payload, payload_at) {
            (Some(v), _) => v,
            (None, Some(at)) => payload_value(&mut r.at(at), schema.as_ref())?,
            (None, None) => return Err(self.not_an_envelope("it has no \"payload\" field")),
        };
        Ok(Data { schema, value })
    }

    fn not_an_envelope(&self, what: &str) -> Fail {
        Fail::new(format!(
            "with schemas.enable=true the JSON must be an envelope \
             {{\"schema\": ..., \"payload\": ...}}, but {what}; set {}schemas.enable=false \
             to read plain JSON",
            self.role.prefix()
        ))
    }

    /// The schema of an envelope's raw `schema` JSON, from the cache when it was seen.
    fn schema_of(&self, raw: &[u8]) -> Result<Option<Schema>, Fail> {
        if raw == b"null" {
            return Ok(None);
        }
        if let Some(hit) = self.lock_cache().get(raw) {
            return Ok(Some(hit));
        }
        let schema = Reader::new(raw, self.config.replace_null_with_default).schema(0)?;
        if let Some(s) = &schema {
            self.lock_cache().put(raw, s.clone());
        }
        Ok(schema)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, SchemaCache> {
        // The cache holds only finished entries, so a panic elsewhere cannot leave it torn.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn payload_value(r: &mut Reader<'_>, schema: Option<&Schema>) -> Result<Value, Fail> {
    match schema {
        Some(s) => r.value(s, 0),
        None => r.infer(0),
    }
}

/// Parsed envelope schemas by their exact JSON text (Kafka's `schemas.cache.size`),
/// least recently used out first.
#[derive(Debug)]
struct SchemaCache {
    capacity: usize,
    tick: u64,
    entries: HashMap<Box<[u8]>, (Schema, u64)>,
}

impl SchemaCache {
    fn new(capacity: usize) -> SchemaCache {
        SchemaCache {
            capacity,
            tick: 0,
            entries: HashMap::new(),
        }
    }

    fn get(&mut self, raw: &[u8]) -> Option<Schema> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(raw).map(|(s, used)| {
            *used = tick;
            s.clone()
        })
    }

    fn put(&mut self, raw: &[u8], schema: Schema) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity {
            // Evicting scans the entries; it only happens on a miss, which parsed a schema.
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        self.tick += 1;
        self.entries.insert(raw.into(), (schema, self.tick));
    }
}
