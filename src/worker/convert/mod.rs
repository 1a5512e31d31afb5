//! Converters: records' keys, values and headers between the Kafka Connect data model
//! ([`Data`]) and bytes, byte-compatible with Kafka Connect's own converters so topics
//! written by either can be read by the other.
//!
//! - [`JsonConverter`] (`org.apache.kafka.connect.json.JsonConverter`): JSON with or
//!   without the `{"schema": ..., "payload": ...}` envelope.
//! - [`StringConverter`], [`ByteArrayConverter`], [`NumberConverter`] (Kafka's `Short`,
//!   `Integer`, `Long`, `Float`, `Double` and `Boolean` converters: fixed-width big-endian).
//! - [`SimpleHeaderConverter`], Kafka's default `header.converter`: values as their string
//!   form, parsed back with the type inferred as Kafka's `Values.parseString` does. Every
//!   converter above also converts headers.
//! - [`converter`] and [`header_converter`] build one from a class name, resolved the way
//!   Kafka's plugin aliases are (full class name, simple name, simple name without the
//!   `Converter` suffix), and its config with the `key.converter.` / `value.converter.` /
//!   `header.converter.` prefix already stripped.
//!
//! A converter is built once per task and called for every record, from the task's own
//! thread; it keeps no per-record state (the JSON schema cache is behind a mutex that only
//! that thread takes). Every error is a [`ConvertError`] that names the converter, the
//! topic, whether the key, the value or which header failed, and what to change; a
//! conversion error is a fact about the data or the config, so retrying never helps.
//!
//! What this module is not: it knows nothing of records, topics beyond their names, or the
//! plugin ABI's encoding; the task loop decides what a failed conversion means
//! (`errors.tolerance`).

mod base64;
mod decimal;
mod header;
mod java;
mod json;
mod simple;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use tributary_plugin_abi::data::{Data, Value};
use tributary_plugin_abi::view::{DataRef, Plain};

pub use header::SimpleHeaderConverter;
pub use json::{DecimalFormat, JsonConverter, JsonConverterConfig};
pub use simple::{ByteArrayConverter, NumberConverter, NumberKind, StringConverter};

/// Converts a record's key or value (Kafka Connect's `Converter`). The method names
/// follow Kafka's `fromConnectData` / `toConnectData`.
#[allow(clippy::wrong_self_convention)]
pub trait Converter: Send + Sync {
    /// Connect data to bytes; `None` is a null (for a value: a tombstone).
    fn from_connect(&self, topic: &str, data: &Data) -> Result<Option<Vec<u8>>, ConvertError>;

    /// Bytes (`None` for a null key or a tombstone) to Connect data.
    fn to_connect(&self, topic: &str, bytes: Option<&[u8]>) -> Result<Data, ConvertError>;

    /// [`Converter::from_connect`] of borrowed data, answering borrowed bytes where the
    /// converter passes them through (the byte-array converter's bytes, the string
    /// converter's text): the worker's source path copies them once, into the log batch.
    fn from_connect_ref<'a>(
        &self,
        topic: &str,
        data: &DataRef<'a>,
    ) -> Result<Option<Cow<'a, [u8]>>, ConvertError> {
        let out = match data {
            DataRef::Data(d) => self.from_connect(topic, d),
            DataRef::Owned(d) => self.from_connect(topic, d),
            flat => self.from_connect(topic, &flat.to_data()),
        };
        out.map(|b| b.map(Cow::Owned))
    }

    /// [`Converter::to_connect`] answering data that borrows `bytes` where it can: the
    /// worker's sink path hands it to the plugin without building a record first.
    fn to_connect_ref<'a>(
        &self,
        topic: &str,
        bytes: Option<&'a [u8]>,
    ) -> Result<DataRef<'a>, ConvertError> {
        self.to_connect(topic, bytes)
            .map(|d| DataRef::Owned(Box::new(d)))
    }
}

/// Converts a record header's value (Kafka Connect's `HeaderConverter`).
#[allow(clippy::wrong_self_convention)]
pub trait HeaderConverter: Send + Sync {
    fn from_connect_header(
        &self,
        topic: &str,
        key: &str,
        data: &Data,
    ) -> Result<Option<Vec<u8>>, ConvertError>;

    fn to_connect_header(
        &self,
        topic: &str,
        key: &str,
        bytes: Option<&[u8]>,
    ) -> Result<Data, ConvertError>;
}

/// What a converter is configured for (Kafka's `converter.type`): it decides which config
/// prefix error messages point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Key,
    Value,
    Header,
}

impl Role {
    /// The worker and connector config prefix of this role's converter settings.
    pub fn prefix(self) -> &'static str {
        match self {
            Role::Key => "key.converter.",
            Role::Value => "value.converter.",
            Role::Header => "header.converter.",
        }
    }

    fn subject(self) -> Subject {
        match self {
            Role::Key => Subject::Key,
            Role::Value | Role::Header => Subject::Value,
        }
    }
}

/// What was being converted when something failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Key,
    Value,
    Header(String),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Key => f.write_str("the key"),
            Subject::Value => f.write_str("the value"),
            Subject::Header(k) => write!(f, "header {k:?}"),
        }
    }
}

/// Why a converter could not be built or could not convert. None of these is retriable:
/// the same data and config fail the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("unknown converter {name:?}; known converters: {known}")]
    UnknownConverter { name: String, known: String },
    #[error(
        "{class} only converts header values and cannot be a {role} converter; use it as \
         header.converter, and e.g. org.apache.kafka.connect.storage.StringConverter as \
         {role}.converter"
    )]
    HeaderOnly { class: String, role: &'static str },
    #[error("{converter}: invalid {key}={value:?}: {reason}")]
    Config {
        converter: &'static str,
        key: String,
        value: String,
        reason: String,
    },
    #[error("{converter} could not convert {subject} for topic {topic} to bytes: {reason}")]
    FromConnect {
        converter: &'static str,
        subject: Subject,
        topic: String,
        reason: String,
    },
    #[error("{converter} could not read {subject} on topic {topic}: {reason}")]
    ToConnect {
        converter: &'static str,
        subject: Subject,
        topic: String,
        reason: String,
    },
}

/// A conversion failure before it is given its converter, topic and subject: a reason and
/// the path (struct fields, array indexes, map keys) of the offending part, innermost first.
#[derive(Debug, Clone)]
pub(crate) struct Fail {
    reason: String,
    path: Vec<String>,
}

impl Fail {
    pub(crate) fn new(reason: impl Into<String>) -> Fail {
        Fail {
            reason: reason.into(),
            path: Vec::new(),
        }
    }

    pub(crate) fn in_field(mut self, name: &str) -> Fail {
        self.path.push(format!(".{name}"));
        self
    }

    pub(crate) fn in_index(mut self, i: usize) -> Fail {
        self.path.push(format!("[{i}]"));
        self
    }

    pub(crate) fn in_key(mut self, key: &Value) -> Fail {
        self.path.push(format!("[{key}]"));
        self
    }

    /// Say what was being read or written at this level (`map key`, `struct field #2`).
    pub(crate) fn context(mut self, what: &str) -> Fail {
        let path = self.render_path();
        self.reason = if path.is_empty() {
            format!("{what}: {}", self.reason)
        } else {
            format!("{what}, at {path}: {}", self.reason)
        };
        self.path.clear();
        self
    }

    fn render_path(&self) -> String {
        let joined: String = self.path.iter().rev().map(String::as_str).collect();
        joined.strip_prefix('.').unwrap_or(&joined).to_owned()
    }

    fn render(self) -> String {
        let path = self.render_path();
        if path.is_empty() {
            self.reason
        } else {
            format!("at {path}: {}", self.reason)
        }
    }

    /// The error of a failed `from_connect`.
    pub(crate) fn writing(
        self,
        converter: &'static str,
        subject: Subject,
        topic: &str,
    ) -> ConvertError {
        ConvertError::FromConnect {
            converter,
            subject,
            topic: topic.to_owned(),
            reason: self.render(),
        }
    }

    /// The error of a failed `to_connect`.
    pub(crate) fn reading(
        self,
        converter: &'static str,
        subject: Subject,
        topic: &str,
    ) -> ConvertError {
        ConvertError::ToConnect {
            converter,
            subject,
            topic: topic.to_owned(),
            reason: self.render(),
        }
    }
}

/// Typed access to a converter's string config, Kafka's `ConfigDef` parsing rules: values
/// trimmed, booleans `true`/`false` in any case. Keys a converter does not know are ignored,
/// as Kafka passes the whole prefixed config through.
pub(crate) struct Settings<'a> {
    converter: &'static str,
    role: Role,
    map: &'a BTreeMap<String, String>,
}

impl<'a> Settings<'a> {
    pub(crate) fn new(
        converter: &'static str,
        role: Role,
        map: &'a BTreeMap<String, String>,
    ) -> Result<Settings<'a>, ConvertError> {
        let s = Settings {
            converter,
            role,
            map,
        };
        // Kafka sets converter.type itself from how the converter is used; a value that is
        // not one of its three names is still a mistake worth reporting.
        s.choice("converter.type", "value", &["key", "value", "header"])?;
        Ok(s)
    }

    fn bad(&self, key: &str, value: &str, reason: impl Into<String>) -> ConvertError {
        ConvertError::Config {
            converter: self.converter,
            key: format!("{}{key}", self.role.prefix()),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn bool(&self, key: &str, default: bool) -> Result<bool, ConvertError> {
        let Some(raw) = self.map.get(key) else {
            return Ok(default);
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.bad(key, raw, "expected true or false")),
        }
    }

    pub(crate) fn int(&self, key: &str, default: i32, min: i32) -> Result<i32, ConvertError> {
        let Some(raw) = self.map.get(key) else {
            return Ok(default);
        };
        match raw.trim().parse::<i32>() {
            Ok(v) if v >= min => Ok(v),
            Ok(_) => Err(self.bad(key, raw, format!("must be at least {min}"))),
            Err(_) => Err(self.bad(key, raw, "expected an integer")),
        }
    }

    /// One of `options`, compared without case; returns the option as written there.
    pub(crate) fn choice(
        &self,
        key: &str,
        default: &'static str,
        options: &[&'static str],
    ) -> Result<&'static str, ConvertError> {
        let Some(raw) = self.map.get(key) else {
            return Ok(default);
        };
        options
            .iter()
            .find(|o| o.eq_ignore_ascii_case(raw.trim()))
            .copied()
            .ok_or_else(|| self.bad(key, raw, format!("expected one of {}", options.join(", "))))
    }

    pub(crate) fn string(&self, key: &str) -> Option<&'a str> {
        self.map.get(key).map(|v| v.trim())
    }

    pub(crate) fn refuse(&self, key: &str, value: &str, reason: impl Into<String>) -> ConvertError {
        self.bad(key, value, reason)
    }
}

/// The built-in converters, by class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    String,
    ByteArray,
    Number(NumberKind),
    SimpleHeader,
}

const CLASSES: [(&str, Kind); 10] = [
    ("org.apache.kafka.connect.json.JsonConverter", Kind::Json),
    (
        "org.apache.kafka.connect.storage.StringConverter",
        Kind::String,
    ),
    (
        "org.apache.kafka.connect.converters.ByteArrayConverter",
        Kind::ByteArray,
    ),
    (
        "org.apache.kafka.connect.converters.BooleanConverter",
        Kind::Number(NumberKind::Boolean),
    ),
    (
        "org.apache.kafka.connect.converters.ShortConverter",
        Kind::Number(NumberKind::Short),
    ),
    (
        "org.apache.kafka.connect.converters.IntegerConverter",
        Kind::Number(NumberKind::Integer),
    ),
    (
        "org.apache.kafka.connect.converters.LongConverter",
        Kind::Number(NumberKind::Long),
    ),
    (
        "org.apache.kafka.connect.converters.FloatConverter",
        Kind::Number(NumberKind::Float),
    ),
    (
        "org.apache.kafka.connect.converters.DoubleConverter",
        Kind::Number(NumberKind::Double),
    ),
    (
        "org.apache.kafka.connect.storage.SimpleHeaderConverter",
        Kind::SimpleHeader,
    ),
];

/// The class names of the converters [`converter`] builds (for listing plugins).
pub fn converter_classes() -> impl Iterator<Item = &'static str> {
    CLASSES
        .iter()
        .filter(|(_, k)| *k != Kind::SimpleHeader)
        .map(|(c, _)| *c)
}

/// The class names of the header converters [`header_converter`] builds.
pub fn header_converter_classes() -> impl Iterator<Item = &'static str> {
    CLASSES.iter().map(|(c, _)| *c)
}

/// The aliases Kafka's plugin loader gives a class: its simple name, and the simple name
/// without the plugin type's suffix (`Converter`, or `HeaderConverter` for a class that
/// is only a header converter: `SimpleHeaderConverter` is `Simple`).
fn aliases(class: &'static str, kind: Kind) -> [&'static str; 2] {
    let simple = class.rsplit('.').next().unwrap_or(class);
    let suffix = if kind == Kind::SimpleHeader {
        "HeaderConverter"
    } else {
        "Converter"
    };
    let pruned = match simple.rfind(suffix) {
        Some(pos) if pos > 0 => &simple[..pos],
        _ => simple,
    };
    [simple, pruned]
}

fn resolve(name: &str) -> Result<(&'static str, Kind), ConvertError> {
    let name = name.trim();
    CLASSES
        .iter()
        .find(|(class, kind)| *class == name || aliases(class, *kind).contains(&name))
        .copied()
        .ok_or_else(|| ConvertError::UnknownConverter {
            name: name.to_owned(),
            known: CLASSES
                .iter()
                .map(|(class, kind)| {
                    let [simple, pruned] = aliases(class, *kind);
                    format!("{class} ({simple}, {pruned})")
                })
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Build a key (`is_key`) or value converter from its class name (or alias) and its
/// config, prefix stripped. Unknown config keys are ignored; bad values are refused.
pub fn converter(
    name: &str,
    config: &BTreeMap<String, String>,
    is_key: bool,
) -> Result<Box<dyn Converter>, ConvertError> {
    let role = if is_key { Role::Key } else { Role::Value };
    let (class, kind) = resolve(name)?;
    Ok(match kind {
        Kind::Json => Box::new(JsonConverter::configure(config, role)?),
        Kind::String => Box::new(StringConverter::configure(config, role)?),
        Kind::ByteArray => Box::new(ByteArrayConverter::configure(config, role)?),
        Kind::Number(n) => Box::new(NumberConverter::configure(n, config, role)?),
        Kind::SimpleHeader => {
            return Err(ConvertError::HeaderOnly {
                class: class.to_owned(),
                role: if is_key { "key" } else { "value" },
            });
        }
    })
}

/// Build a header converter from its class name (or alias) and its config, prefix stripped.
pub fn header_converter(
    name: &str,
    config: &BTreeMap<String, String>,
) -> Result<Box<dyn HeaderConverter>, ConvertError> {
    let role = Role::Header;
    let (_, kind) = resolve(name)?;
    Ok(match kind {
        Kind::Json => Box::new(JsonConverter::configure(config, role)?),
        Kind::String => Box::new(StringConverter::configure(config, role)?),
        Kind::ByteArray => Box::new(ByteArrayConverter::configure(config, role)?),
        Kind::Number(n) => Box::new(NumberConverter::configure(n, config, role)?),
        Kind::SimpleHeader => Box::new(SimpleHeaderConverter::configure(config)?),
    })
}

/// Every converter is also a header converter that converts a header's value the way it
/// converts a record value (as Kafka's converters do).
macro_rules! header_via_converter {
    ($($t:ty),*) => {$(
        impl HeaderConverter for $t {
            fn from_connect_header(
                &self,
                topic: &str,
                key: &str,
                data: &Data,
            ) -> Result<Option<Vec<u8>>, ConvertError> {
                self.write(data)
                    .map_err(|f| f.writing(self.name(), Subject::Header(key.to_owned()), topic))
            }

            fn to_connect_header(
                &self,
                topic: &str,
                key: &str,
                bytes: Option<&[u8]>,
            ) -> Result<Data, ConvertError> {
                self.read(bytes)
                    .map_err(|f| f.reading(self.name(), Subject::Header(key.to_owned()), topic))
            }
        }

        impl Converter for $t {
            fn from_connect(&self, topic: &str, data: &Data) -> Result<Option<Vec<u8>>, ConvertError> {
                self.write(data)
                    .map_err(|f| f.writing(self.name(), self.role().subject(), topic))
            }

            fn to_connect(&self, topic: &str, bytes: Option<&[u8]>) -> Result<Data, ConvertError> {
                self.read(bytes)
                    .map_err(|f| f.reading(self.name(), self.role().subject(), topic))
            }

            fn from_connect_ref<'a>(
                &self,
                topic: &str,
                data: &DataRef<'a>,
            ) -> Result<Option<Cow<'a, [u8]>>, ConvertError> {
                if let Some(flat) = self.flat_from(data) {
                    return Ok(flat);
                }
                let out = match data {
                    DataRef::Data(d) => self.from_connect(topic, d),
                    DataRef::Owned(d) => self.from_connect(topic, d),
                    flat => self.from_connect(topic, &flat.to_data()),
                };
                out.map(|b| b.map(Cow::Owned))
            }

            fn to_connect_ref<'a>(
                &self,
                topic: &str,
                bytes: Option<&'a [u8]>,
            ) -> Result<DataRef<'a>, ConvertError> {
                if let Some(flat) = self.flat_to(bytes) {
                    return Ok(flat);
                }
                self.to_connect(topic, bytes)
                    .map(|d| DataRef::Owned(Box::new(d)))
            }
        }
    )*};
}

/// The pass-through cases of [`Converter::from_connect_ref`] and
/// [`Converter::to_connect_ref`]; `None` sends the data down the general path (which also
/// reports every error).
trait Flat {
    fn flat_from<'a>(&self, _data: &DataRef<'a>) -> Option<Option<Cow<'a, [u8]>>> {
        None
    }

    fn flat_to<'a>(&self, _bytes: Option<&'a [u8]>) -> Option<DataRef<'a>> {
        None
    }
}

impl Flat for JsonConverter {}

impl Flat for NumberConverter {}

impl Flat for StringConverter {
    /// Text is written as it is (Java's `String.toString()`), whatever its plain schema.
    fn flat_from<'a>(&self, data: &DataRef<'a>) -> Option<Option<Cow<'a, [u8]>>> {
        match data {
            DataRef::Null => Some(None),
            DataRef::Str(s, _) => Some(Some(Cow::Borrowed(s.as_bytes()))),
            _ => None,
        }
    }

    /// UTF-8 bytes read as text with the optional string schema (as `read` does).
    fn flat_to<'a>(&self, bytes: Option<&'a [u8]>) -> Option<DataRef<'a>> {
        let s = std::str::from_utf8(bytes?).ok()?;
        Some(DataRef::Str(s, Plain::Optional))
    }
}

impl Flat for ByteArrayConverter {
    /// Bytes with no schema or the bytes schema pass through.
    fn flat_from<'a>(&self, data: &DataRef<'a>) -> Option<Option<Cow<'a, [u8]>>> {
        match data {
            DataRef::Null => Some(None),
            DataRef::Bytes(b, _) => Some(Some(Cow::Borrowed(b))),
            _ => None,
        }
    }

    /// Bytes read with the optional bytes schema (as `read` does).
    fn flat_to<'a>(&self, bytes: Option<&'a [u8]>) -> Option<DataRef<'a>> {
        Some(DataRef::Bytes(bytes?, Plain::Optional))
    }
}

header_via_converter!(
    JsonConverter,
    StringConverter,
    ByteArrayConverter,
    NumberConverter
);

#[cfg(test)]
mod tests;
