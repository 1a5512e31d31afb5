//! `org.apache.kafka.connect.storage.SimpleHeaderConverter`, Kafka Connect's default
//! `header.converter`: a header value is written as its string form (Kafka's
//! `Values.convertToString`) and read back with its type inferred (`Values.parseString`).
//!
//! The string form: numbers as Java prints them, strings as they are, bytes in base64,
//! Decimals as `BigDecimal.toString`, Date/Time/Timestamp in ISO-8601 (`2024-01-31`,
//! `12:34:56.789Z`, `2024-01-31T12:34:56.789Z`), arrays `[1,2]`, maps `{"k":1}` and structs
//! `{"field":value}`, with strings inside them quoted (`"` and `\` escaped).
//!
//! Reading: `null` is a null; `true`/`false` booleans; whole numbers the smallest of
//! int8/int16/int32/int64 that holds them; other numbers float32 if finite there, else
//! float64, else a Decimal; the three ISO-8601 forms Date, Time, Timestamp; `[...]` and
//! `{...}` arrays and maps whose elements share a type (numbers widen; a mix is returned
//! without a schema); anything else, or anything that fails to parse, the string itself.
//!
//! Differences from Kafka, chosen because Kafka loses data there: text left over after a
//! value (`10:30`, `[1,2] x`) makes the whole header a string where Kafka returns the
//! leading value (`10`) and drops the rest; quoted strings inside arrays and maps are
//! unescaped (`\"` is `"`), so what this converter writes reads back the same; values that
//! are not UTF-8 come back as raw bytes (Kafka's fallback for unparsable values) rather
//! than with replacement characters; an invalid date such as `2024-13-01` is a string,
//! not a lenient roll-over into the next year.

use std::collections::{BTreeMap, HashMap};

use tributary_plugin_abi::data::{Data, MAX_DEPTH, Schema, SchemaType, Value, logical};

use super::{ConvertError, Fail, HeaderConverter, Role, Settings, Subject, base64, decimal, java};

/// Kafka's `SimpleHeaderConverter`; see the module docs.
#[derive(Debug, Default)]
pub struct SimpleHeaderConverter;

impl SimpleHeaderConverter {
    pub fn new() -> SimpleHeaderConverter {
        SimpleHeaderConverter
    }

    /// Build from a header converter config (it has no settings of its own).
    pub fn configure(
        config: &BTreeMap<String, String>,
    ) -> Result<SimpleHeaderConverter, ConvertError> {
        Settings::new(NAME, Role::Header, config)?;
        Ok(SimpleHeaderConverter)
    }

    /// A header value's string form (Kafka's `Values.convertToString`).
    pub fn to_string_form(data: &Data) -> Result<Option<String>, String> {
        if data.value == Value::Null {
            return Ok(None);
        }
        let mut out = Vec::new();
        push_values_string(data.schema.as_ref(), &data.value, false, &mut out, 0)
            .map_err(|f| f.render())?;
        // Only UTF-8 text was written.
        Ok(Some(String::from_utf8(out).unwrap_or_default()))
    }

    /// A string parsed as Kafka's `Values.parseString` does (with the differences in the
    /// module docs).
    pub fn parse_string(text: &str) -> Data {
        parse_string(text)
    }
}

const NAME: &str = "SimpleHeaderConverter";

impl HeaderConverter for SimpleHeaderConverter {
    fn from_connect_header(
        &self,
        topic: &str,
        key: &str,
        data: &Data,
    ) -> Result<Option<Vec<u8>>, ConvertError> {
        if data.value == Value::Null {
            return Ok(None);
        }
        let mut out = Vec::new();
        push_values_string(data.schema.as_ref(), &data.value, false, &mut out, 0)
            .map_err(|f| f.writing(NAME, Subject::Header(key.to_owned()), topic))?;
        Ok(Some(out))
    }

    fn to_connect_header(
        &self,
        _topic: &str,
        _key: &str,
        bytes: Option<&[u8]>,
    ) -> Result<Data, ConvertError> {
        let Some(bytes) = bytes else {
            return Ok(Data::null());
        };
        Ok(match std::str::from_utf8(bytes) {
            Ok(text) => parse_string(text),
            Err(_) => Data {
                schema: Some(Schema::bytes()),
                value: Value::Bytes(bytes.to_vec()),
            },
        })
    }
}

// ---- writing: Values.convertToString ----

fn push_values_string(
    schema: Option<&Schema>,
    v: &Value,
    embedded: bool,
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
            java::push_values_date(i64::from(*days) * java::MILLIS_PER_DAY, out);
            return Ok(());
        }
        (Some(logical::TIME), Value::Int32(ms)) => {
            java::push_values_date(i64::from(*ms), out);
            return Ok(());
        }
        (Some(logical::TIMESTAMP), Value::Int64(ms)) => {
            java::push_values_date(*ms, out);
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
        Value::String(s) => push_text(s, embedded, out),
        Value::Bytes(b) => {
            if embedded {
                out.push(b'"');
            }
            base64::encode_into(b, out);
            if embedded {
                out.push(b'"');
            }
        }
        Value::Array(items) => {
            let items_schema = schema.and_then(|s| s.key_or_items.as_deref());
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_values_string(items_schema, item, true, out, depth + 1)
                    .map_err(|e| e.in_index(i))?;
            }
            out.push(b']');
        }
        Value::Map(entries) => {
            let ks = schema.and_then(|s| s.key_or_items.as_deref());
            let vs = schema.and_then(|s| s.map_values.as_deref());
            out.push(b'{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_values_string(ks, k, true, out, depth + 1)?;
                out.push(b':');
                push_values_string(vs, v, true, out, depth + 1).map_err(|e| e.in_key(k))?;
            }
            out.push(b'}');
        }
        Value::Struct(values) => {
            let Some(s) = schema.filter(|s| s.kind == SchemaType::Struct) else {
                return Err(Fail::new("a struct value without its struct schema"));
            };
            out.push(b'{');
            for (i, (f, v)) in s.fields.iter().zip(values).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_text(&f.name, true, out);
                out.push(b':');
                // Kafka's Struct.get: a null field shows its default.
                let v = match (v, f.schema.default.as_deref()) {
                    (Value::Null, Some(d)) => d,
                    _ => v,
                };
                push_values_string(Some(&f.schema), v, true, out, depth + 1)
                    .map_err(|e| e.in_field(&f.name))?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// A string, quoted with `\` and `"` escaped when inside an array, map or struct.
fn push_text(s: &str, embedded: bool, out: &mut Vec<u8>) {
    if !embedded {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    out.push(b'"');
    for &b in s.as_bytes() {
        if b == b'\\' || b == b'"' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

// ---- reading: Values.parseString ----

/// Kafka's tokens: the delimiters `: , { } [ ] "` each alone (unless escaped with `\`),
/// and the runs of text between them.
fn tokenize(s: &str) -> Vec<(usize, usize)> {
    let b = s.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let mut escaped = false;
        loop {
            if i >= b.len() {
                spans.push((start, i));
                break;
            }
            match b[i] {
                b'\\' => escaped = !escaped,
                b':' | b',' | b'{' | b'}' | b'[' | b']' | b'"' if !escaped => {
                    if start < i {
                        spans.push((start, i));
                    } else {
                        spans.push((i, i + 1));
                        i += 1;
                    }
                    break;
                }
                _ => escaped = false,
            }
            i += 1;
        }
    }
    spans
}

/// Java's `String.trim`: strips characters up to U+0020.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

fn is_blank(s: &str) -> bool {
    java_trim(s).is_empty()
}

/// A parsed value: its schema (`None` for a value without one) and the value. A parse
/// that yields Java's `null` is `None` one level up.
type Sv = (Option<Schema>, Value);

/// Parsing failed somewhere inside; the caller falls back to a string.
struct NoParse;

/// Kafka's `Values.Parser` over pre-split tokens: `next` is a token taken from the stream
/// but not yet consumed (a peek), `idx` the first token not yet taken.
struct Parser<'s> {
    s: &'s str,
    toks: Vec<(usize, usize)>,
    idx: usize,
    next: Option<usize>,
    depth: usize,
}

impl<'s> Parser<'s> {
    fn tok(&self, t: usize) -> &'s str {
        let (a, b) = self.toks[t];
        &self.s[a..b]
    }

    fn mark(&self) -> usize {
        self.next.unwrap_or(self.idx)
    }

    fn rewind(&mut self, to: usize) {
        self.idx = to;
        self.next = None;
    }

    fn has_next(&self) -> bool {
        self.next.is_some() || self.idx < self.toks.len()
    }

    /// The next token, raw (Java returns "" past the end).
    fn take(&mut self) -> &'s str {
        if let Some(t) = self.next.take() {
            return self.tok(t);
        }
        if self.idx < self.toks.len() {
            self.idx += 1;
            self.tok(self.idx - 1)
        } else {
            ""
        }
    }

    /// The text of the next `n` tokens, or `None` (and nothing taken) if there are fewer.
    fn take_n(&mut self, n: usize) -> Option<&'s str> {
        let start = self.mark();
        for _ in 0..n {
            if !self.has_next() {
                self.rewind(start);
                return None;
            }
            self.take();
        }
        let from = self.toks.get(start).map_or(self.s.len(), |t| t.0);
        let to = self.toks[self.idx - 1].1;
        Some(&self.s[from..to])
    }

    /// Is the next non-blank token `expected` (ignoring surrounding blanks)? Peeks.
    fn is_next(&mut self, expected: &str) -> bool {
        if self.next.is_none() {
            if !self.has_next() {
                return false;
            }
            self.next = Some(self.idx);
            self.idx += 1;
        }
        while let Some(t) = self.next {
            if is_blank(self.tok(t)) && self.idx < self.toks.len() {
                self.next = Some(self.idx);
                self.idx += 1;
            } else {
                break;
            }
        }
        self.next
            .is_some_and(|t| java_trim(self.tok(t)) == expected)
    }

    fn can_consume(&mut self, expected: &str) -> bool {
        if self.is_next(expected) {
            self.next = None;
            true
        } else {
            false
        }
    }

    /// `true`, `false` or `null` alone (or, embedded, followed by anything).
    fn literal(&mut self, embedded: bool, lit: &str) -> bool {
        let start = self.mark();
        if self.can_consume(lit) && (embedded || !self.has_next()) {
            return true;
        }
        self.rewind(start);
        false
    }

    fn parse(&mut self, embedded: bool) -> Result<Option<Sv>, NoParse> {
        if !self.has_next() {
            return Ok(None);
        }
        if self.depth > MAX_DEPTH {
            return Err(NoParse);
        }
        if embedded && self.can_consume("\"") {
            return Ok(Some(self.quoted()));
        }
        if self.literal(embedded, "null") {
            return Ok(None);
        }
        for (lit, b) in [("true", true), ("false", false)] {
            if self.literal(embedded, lit) {
                return Ok(Some((Some(Schema::boolean()), Value::Boolean(b))));
            }
        }
        let start = self.mark();
        self.depth += 1;
        let nested = if self.can_consume("[") {
            Some(self.array())
        } else if self.can_consume("{") {
            Some(self.map())
        } else {
            None
        };
        self.depth -= 1;
        match nested {
            Some(Ok(sv)) => return Ok(Some(sv)),
            Some(Err(NoParse)) => self.rewind(start),
            None => {}
        }
        let token = self.take();
        if is_blank(token) {
            return Ok(Some((
                Some(Schema::string()),
                Value::String(token.to_owned()),
            )));
        }
        self.token(embedded, java_trim(token))
    }

    fn token(&mut self, embedded: bool, token: &str) -> Result<Option<Sv>, NoParse> {
        let first = token.as_bytes()[0];
        if first.is_ascii_digit() {
            // A time or timestamp is split into five tokens at its colons.
            let at = self.mark();
            if let Some(rest) = self.take_n(4)
                && let Some(t) = temporal(&format!("{token}{rest}"))
            {
                return Ok(Some(t));
            }
            self.rewind(at);
            if let Some(t) = temporal(token) {
                return Ok(Some(t));
            }
        }
        if (first.is_ascii_digit() || first == b'+' || first == b'-')
            && let Some(n) = number(token)
        {
            return Ok(Some(n));
        }
        if embedded {
            return Err(NoParse);
        }
        Ok(Some((
            Some(Schema::string()),
            Value::String(self.s.to_owned()),
        )))
    }

    /// The rest of a quoted string, after its opening quote.
    fn quoted(&mut self) -> Sv {
        let mut content = String::new();
        while self.has_next() {
            if self.can_consume("\"") {
                break;
            }
            content.push_str(self.take());
        }
        let content = unescape(&content);
        temporal(&content).unwrap_or((Some(Schema::string()), Value::String(content)))
    }

    fn array(&mut self) -> Result<Sv, NoParse> {
        let mut items = Vec::new();
        let mut merger = Merger::default();
        while self.has_next() {
            if self.can_consume("]") {
                return Ok(match merger.common() {
                    Some(s) => {
                        let items = items
                            .into_iter()
                            .map(|v| widen(&s, v))
                            .collect::<Result<Vec<_>, _>>()?;
                        (Some(Schema::array(s)), Value::Array(items))
                    }
                    None => (None, Value::Array(items)),
                });
            }
            if self.can_consume(",") {
                return Err(NoParse);
            }
            let item = self.parse(true)?;
            merger.merge(item.as_ref());
            items.push(item.map_or(Value::Null, |(_, v)| v));
            let at = self.mark();
            if self.can_consume("]") {
                self.rewind(at);
            } else if !self.can_consume(",") {
                return Err(NoParse);
            }
        }
        Err(NoParse)
    }

    fn map(&mut self) -> Result<Sv, NoParse> {
        let mut entries: Vec<(Value, Value)> = Vec::new();
        // Kafka's LinkedHashMap: a repeated key keeps its place and takes the new value.
        let mut index: HashMap<String, usize> = HashMap::new();
        let (mut keys, mut values) = (Merger::default(), Merger::default());
        while self.has_next() {
            if self.can_consume("}") {
                return Ok(match (keys.common(), values.common()) {
                    (Some(ks), Some(vs)) => {
                        let entries = entries
                            .into_iter()
                            .map(|(k, v)| Ok((widen(&ks, k)?, widen(&vs, v)?)))
                            .collect::<Result<Vec<_>, NoParse>>()?;
                        (Some(Schema::map(ks, vs)), Value::Map(entries))
                    }
                    _ => (None, Value::Map(entries)),
                });
            }
            if self.can_consume(",") {
                return Err(NoParse);
            }
            let key = match self.parse(true)? {
                Some(sv) if sv.1 != Value::Null => sv,
                _ => return Err(NoParse),
            };
            if !self.can_consume(":") {
                return Err(NoParse);
            }
            let value = self.parse(true)?;
            keys.merge(Some(&key));
            values.merge(value.as_ref());
            let v = value.map_or(Value::Null, |(_, v)| v);
            match index.entry(format!("{:?}", key.1)) {
                std::collections::hash_map::Entry::Occupied(e) => entries[*e.get()].1 = v,
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(entries.len());
                    entries.push((key.1, v));
                }
            }
            self.can_consume(",");
        }
        Err(NoParse)
    }
}

fn parse_string(text: &str) -> Data {
    if text.is_empty() {
        return Data::string("");
    }
    let mut p = Parser {
        s: text,
        toks: tokenize(text),
        idx: 0,
        next: None,
        depth: 0,
    };
    let parsed = p.parse(false);
    // Anything but blanks left over: the header is the whole string (Kafka would drop it).
    let rest_blank = p
        .next
        .into_iter()
        .chain(p.idx..p.toks.len())
        .all(|t| is_blank(p.tok(t)));
    match parsed {
        Ok(Some((schema, value))) if rest_blank => Data { schema, value },
        Ok(None) if rest_blank => Data::null(),
        _ => Data::string(text),
    }
}

/// Remove the `\` escapes of a quoted string.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The common schema of an array's elements or a map's keys or values: Kafka's
/// `SchemaMerger`, with numbers widening along int8 < int16 < int32 < int64 < float32 <
/// float64. Nulls do not count; anything else that differs leaves no common schema.
#[derive(Default)]
struct Merger {
    common: Option<Schema>,
    incompatible: bool,
}

impl Merger {
    fn merge(&mut self, sv: Option<&Sv>) {
        let Some((schema, value)) = sv else { return };
        if self.incompatible {
            return;
        }
        let Some(s) = schema else {
            // A nested array or map without a common type of its own.
            if *value != Value::Null {
                self.incompatible = true;
                self.common = None;
            }
            return;
        };
        self.common = match self.common.take() {
            None => Some(s.clone()),
            Some(prev) => {
                let merged = merge_schemas(prev, s);
                self.incompatible = merged.is_none();
                merged
            }
        };
    }

    fn common(&self) -> Option<Schema> {
        self.common.clone()
    }
}

fn numeric_rank(s: &Schema) -> Option<u8> {
    if s.name.is_some() {
        return None;
    }
    Some(match s.kind {
        SchemaType::Int8 => 0,
        SchemaType::Int16 => 1,
        SchemaType::Int32 => 2,
        SchemaType::Int64 => 3,
        SchemaType::Float32 => 4,
        SchemaType::Float64 => 5,
        _ => return None,
    })
}

fn merge_schemas(prev: Schema, new: &Schema) -> Option<Schema> {
    if prev == *new {
        return Some(prev);
    }
    match (numeric_rank(&prev), numeric_rank(new)) {
        (Some(a), Some(b)) if b > a => Some(new.clone()),
        (Some(_), Some(_)) => Some(prev),
        _ => None,
    }
}

/// A parsed value converted to the common (wider) schema; a null has no place in the
/// required schemas Kafka infers, so it fails the parse (as in Kafka).
fn widen(s: &Schema, v: Value) -> Result<Value, NoParse> {
    Ok(match (s.kind, v) {
        (_, Value::Null) => return Err(NoParse),
        (SchemaType::Int16, Value::Int8(n)) => Value::Int16(n.into()),
        (SchemaType::Int32, Value::Int8(n)) => Value::Int32(n.into()),
        (SchemaType::Int32, Value::Int16(n)) => Value::Int32(n.into()),
        (SchemaType::Int64, Value::Int8(n)) => Value::Int64(n.into()),
        (SchemaType::Int64, Value::Int16(n)) => Value::Int64(n.into()),
        (SchemaType::Int64, Value::Int32(n)) => Value::Int64(n.into()),
        (SchemaType::Float32, Value::Int8(n)) => Value::Float32(n.into()),
        (SchemaType::Float32, Value::Int16(n)) => Value::Float32(n.into()),
        (SchemaType::Float32, Value::Int32(n)) => Value::Float32(f64::from(n) as f32),
        (SchemaType::Float32, Value::Int64(n)) => Value::Float32(n as f64 as f32),
        (SchemaType::Float64, Value::Int8(n)) => Value::Float64(n.into()),
        (SchemaType::Float64, Value::Int16(n)) => Value::Float64(n.into()),
        (SchemaType::Float64, Value::Int32(n)) => Value::Float64(n.into()),
        (SchemaType::Float64, Value::Int64(n)) => Value::Float64(n as f64),
        (SchemaType::Float64, Value::Float32(f)) => Value::Float64(f.into()),
        (_, v) => v,
    })
}

/// A token as a number, typed as Kafka's `Values` does (see the module docs).
fn number(token: &str) -> Option<Sv> {
    let p = decimal::parse(token).ok()?;
    if p.is_integral()
        && let Some(n) = whole(&p)
    {
        return Some(if let Ok(n) = i8::try_from(n) {
            (Some(Schema::int8()), Value::Int8(n))
        } else if let Ok(n) = i16::try_from(n) {
            (Some(Schema::int16()), Value::Int16(n))
        } else if let Ok(n) = i32::try_from(n) {
            (Some(Schema::int32()), Value::Int32(n))
        } else {
            (Some(Schema::int64()), Value::Int64(n))
        });
    }
    if p.scale != 0 {
        if let Ok(f) = token.parse::<f32>()
            && f.is_finite()
        {
            return Some((Some(Schema::float32()), Value::Float32(f)));
        }
        if let Ok(f) = token.parse::<f64>()
            && f.is_finite()
        {
            return Some((Some(Schema::float64()), Value::Float64(f)));
        }
    }
    let scale = i32::try_from(p.scale).ok()?;
    Some((
        Some(logical::decimal_schema(scale)),
        Value::Bytes(decimal::twos_from_digits(p.negative, &p.digits)),
    ))
}

/// The value of an integral decimal, if it fits in an `i64`.
fn whole(p: &decimal::Parsed) -> Option<i64> {
    if p.digits == "0" {
        return Some(0);
    }
    let digits: String = if p.scale <= 0 {
        let zeros = usize::try_from(-p.scale).ok()?;
        if p.digits.len() + zeros > 19 {
            return None;
        }
        let mut d = p.digits.clone();
        d.extend(std::iter::repeat_n('0', zeros));
        d
    } else {
        p.digits[..p.digits.len() - p.scale as usize].to_owned()
    };
    let magnitude: i128 = digits.parse().ok()?;
    i64::try_from(if p.negative { -magnitude } else { magnitude }).ok()
}

/// The ISO-8601 forms of `Values`, told apart by length: `HH:mm:ss.SSS'Z'` (Time),
/// `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'` (Timestamp), `yyyy-MM-dd` (Date), all in UTC.
fn temporal(token: &str) -> Option<Sv> {
    let token = token.replace("\\:", ":");
    let b = token.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    let time = |at: usize| -> Option<i64> {
        if b.get(at + 2) != Some(&b':')
            || b.get(at + 5) != Some(&b':')
            || b.get(at + 8) != Some(&b'.')
            || b.get(at + 12) != Some(&b'Z')
        {
            return None;
        }
        let (h, m, s, ms) = (
            digits(at..at + 2)?,
            digits(at + 3..at + 5)?,
            digits(at + 6..at + 8)?,
            digits(at + 9..at + 12)?,
        );
        (h < 24 && m < 60 && s < 60).then(|| i64::from(((h * 60 + m) * 60 + s) * 1000 + ms))
    };
    let date = || -> Option<i64> {
        if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
            return None;
        }
        let (y, m, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let y = i64::from(y);
        ((1..=12).contains(&m) && (1..=java::days_in_month(y, m)).contains(&d))
            .then(|| java::days_from_civil(y, m, d))
    };
    match b.len() {
        13 => {
            let ms = time(0)?;
            Some((Some(logical::time_schema()), Value::Int32(ms as i32)))
        }
        24 => {
            if b.get(10) != Some(&b'T') {
                return None;
            }
            let ms = date()? * java::MILLIS_PER_DAY + time(11)?;
            Some((Some(logical::timestamp_schema()), Value::Int64(ms)))
        }
        10 => {
            let days = i32::try_from(date()?).ok()?;
            Some((Some(logical::date_schema()), Value::Int32(days)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(schema: Option<Schema>, value: Value) -> String {
        let d = Data { schema, value };
        SimpleHeaderConverter::to_string_form(&d).unwrap().unwrap()
    }

    fn check(text: &str, schema: Option<Schema>, value: Value) {
        assert_eq!(
            parse_string(text),
            Data { schema, value },
            "parsing {text:?}"
        );
    }

    #[test]
    fn scalars_parse_to_the_smallest_type() {
        check("true", Some(Schema::boolean()), Value::Boolean(true));
        check(" false ", Some(Schema::boolean()), Value::Boolean(false));
        check("42", Some(Schema::int8()), Value::Int8(42));
        check("-129", Some(Schema::int16()), Value::Int16(-129));
        check("70000", Some(Schema::int32()), Value::Int32(70_000));
        check(
            "1700000000000",
            Some(Schema::int64()),
            Value::Int64(1_700_000_000_000),
        );
        check("1.0", Some(Schema::int8()), Value::Int8(1));
        check("1e3", Some(Schema::int16()), Value::Int16(1000));
        check("1.5", Some(Schema::float32()), Value::Float32(1.5));
        check("-0.25", Some(Schema::float32()), Value::Float32(-0.25));
        check("1e300", Some(Schema::float64()), Value::Float64(1e300));
        check(
            "12345678901234567890",
            Some(logical::decimal_schema(0)),
            Value::Bytes(decimal::twos_from_digits(false, "12345678901234567890")),
        );
        check(
            "hello",
            Some(Schema::string()),
            Value::String("hello".into()),
        );
        check("", Some(Schema::string()), Value::String(String::new()));
        check("   ", Some(Schema::string()), Value::String("   ".into()));
        check(
            "42 apples",
            Some(Schema::string()),
            Value::String("42 apples".into()),
        );
        check(
            "true}",
            Some(Schema::string()),
            Value::String("true}".into()),
        );
        check(
            "\"quoted\"",
            Some(Schema::string()),
            Value::String("\"quoted\"".into()),
        );
        assert_eq!(parse_string("null"), Data::null());
    }

    #[test]
    fn temporals() {
        check(
            "2022-01-08",
            Some(logical::date_schema()),
            Value::Int32(19_000),
        );
        check(
            "12:34:56.789Z",
            Some(logical::time_schema()),
            Value::Int32(45_296_789),
        );
        check(
            "2023-11-14T22:13:20.123Z",
            Some(logical::timestamp_schema()),
            Value::Int64(1_700_000_000_123),
        );
        check(
            "12\\:34\\:56.789Z",
            Some(logical::time_schema()),
            Value::Int32(45_296_789),
        );
        check(
            "2024-13-01",
            Some(Schema::string()),
            Value::String("2024-13-01".into()),
        );
        check(
            "10:30",
            Some(Schema::string()),
            Value::String("10:30".into()),
        );
    }

    #[test]
    fn arrays_and_maps() {
        check(
            "[1,2,300]",
            Some(Schema::array(Schema::int16())),
            Value::Array(vec![Value::Int16(1), Value::Int16(2), Value::Int16(300)]),
        );
        check(
            "[1, 2.5]",
            Some(Schema::array(Schema::float32())),
            Value::Array(vec![Value::Float32(1.0), Value::Float32(2.5)]),
        );
        check(
            "[\"a\",\"b\\\"c\"]",
            Some(Schema::array(Schema::string())),
            Value::Array(vec!["a".into(), "b\"c".into()]),
        );
        check(
            "[1,\"a\"]",
            None,
            Value::Array(vec![Value::Int8(1), "a".into()]),
        );
        check(
            "[1,null]",
            Some(Schema::string()),
            Value::String("[1,null]".into()),
        );
        check("[]", None, Value::Array(vec![]));
        check(
            "{\"a\":1,\"b\":2,\"a\":3}",
            Some(Schema::map(Schema::string(), Schema::int8())),
            Value::Map(vec![
                ("a".into(), Value::Int8(3)),
                ("b".into(), Value::Int8(2)),
            ]),
        );
        check(
            "{1:true}",
            Some(Schema::map(Schema::int8(), Schema::boolean())),
            Value::Map(vec![(Value::Int8(1), Value::Boolean(true))]),
        );
        check(
            "{a:1}",
            Some(Schema::string()),
            Value::String("{a:1}".into()),
        );
        check("[1,2", Some(Schema::string()), Value::String("[1,2".into()));
        check(
            "[[1],[2]]",
            Some(Schema::array(Schema::array(Schema::int8()))),
            Value::Array(vec![
                Value::Array(vec![Value::Int8(1)]),
                Value::Array(vec![Value::Int8(2)]),
            ]),
        );
    }

    #[test]
    fn written_forms_match_kafka() {
        assert_eq!(write(None, Value::Int32(42)), "42");
        assert_eq!(write(Some(Schema::float64()), Value::Float64(1.0)), "1.0");
        assert_eq!(write(None, Value::String("a \"b\"".into())), "a \"b\"");
        assert_eq!(write(None, Value::Bytes(vec![0x30, 0x39])), "MDk=");
        assert_eq!(
            write(
                Some(logical::decimal_schema(2)),
                logical::decimal_value(12345)
            ),
            "123.45"
        );
        assert_eq!(
            write(Some(logical::date_schema()), Value::Int32(19_000)),
            "2022-01-08"
        );
        assert_eq!(
            write(
                Some(logical::timestamp_schema()),
                Value::Int64(1_700_000_000_123)
            ),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            write(
                None,
                Value::Array(vec!["x".into(), Value::Null, Value::Int8(1)])
            ),
            "[\"x\",null,1]"
        );
        assert_eq!(
            write(None, Value::Map(vec![("k".into(), "v\\".into())])),
            "{\"k\":\"v\\\\\"}"
        );
        let s = Schema::structure()
            .field("id", Schema::int32())
            .field("n", Schema::int16().default_value(Value::Int16(7)));
        assert_eq!(
            write(Some(s), Value::Struct(vec![Value::Int32(1), Value::Null])),
            "{\"id\":1,\"n\":7}"
        );
        assert!(
            SimpleHeaderConverter::to_string_form(&Data::null())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn written_values_read_back() {
        for (schema, value) in [
            (Schema::boolean(), Value::Boolean(true)),
            (Schema::int8(), Value::Int8(-5)),
            (Schema::int64(), Value::Int64(i64::MIN)),
            (Schema::float32(), Value::Float32(0.1)),
            (
                Schema::string(),
                Value::String("plain text, with: delimiters".into()),
            ),
            (logical::time_schema(), Value::Int32(86_399_999)),
            (
                Schema::array(Schema::string()),
                Value::Array(vec!["a\\b".into(), "c\"d".into(), "e:f".into()]),
            ),
            (
                Schema::map(Schema::string(), Schema::int32()),
                Value::Map(vec![("x".into(), Value::Int32(100_000))]),
            ),
        ] {
            let text = write(Some(schema.clone()), value.clone());
            check(&text, Some(schema), value);
        }
    }

    #[test]
    fn the_converter_handles_nulls_and_binary() {
        let c = SimpleHeaderConverter::new();
        assert_eq!(c.to_connect_header("t", "h", None).unwrap(), Data::null());
        assert_eq!(
            c.from_connect_header("t", "h", &Data::null()).unwrap(),
            None
        );
        let raw = c.to_connect_header("t", "h", Some(&[0xff, 0x00])).unwrap();
        assert_eq!(raw.value, Value::Bytes(vec![0xff, 0x00]));
        let err = c
            .from_connect_header("t", "h", &Data::schemaless(Value::Struct(vec![])))
            .unwrap_err();
        assert!(err.to_string().contains("header \"h\""), "{err}");
        let deep = (0..200).fold("1".to_owned(), |acc, _| format!("[{acc}]"));
        assert_eq!(parse_string(&deep).value, Value::String(deep.clone()));
    }
}
