//! JSON bytes to Connect data: a strict JSON reader (RFC 8259, plus leading zeros in
//! numbers as Kafka's Jackson configuration allows) that converts as it parses, guided by
//! the schema when there is one, without building a JSON tree. Numbers stay as their text
//! until the schema says what they are, so decimals keep every digit.
//!
//! Schemas (Kafka's JSON schema objects) are read by remembering where each member starts
//! and parsing the ones the `type` calls for afterwards, since JSON members come in any
//! order and Kafka ignores the members a type does not use.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use tributary_plugin_abi::data::{Field, MAX_DEPTH, Schema, SchemaType, Value, logical};

use super::write::decimal_scale;
use crate::worker::convert::{Fail, base64, decimal, java};

/// How deep JSON may nest in places that are skipped rather than converted (unknown struct
/// members, schema members): a schema's JSON nests about twice as deep as the schema.
const SKIP_DEPTH: usize = 2 * MAX_DEPTH + 8;

/// The bytes that end the fast scan of a string: the quote, the backslash, control
/// characters.
static STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = true;
        c += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// What the next JSON value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tok {
    Null,
    True,
    False,
    Number,
    String,
    Array,
    Object,
}

impl Tok {
    pub fn describe(self) -> &'static str {
        match self {
            Tok::Null => "null",
            Tok::True | Tok::False => "a boolean",
            Tok::Number => "a number",
            Tok::String => "a string",
            Tok::Array => "an array",
            Tok::Object => "an object",
        }
    }
}

/// A position in JSON input and the one setting that changes how values are read.
pub(super) struct Reader<'a> {
    b: &'a [u8],
    pub pos: usize,
    replace_null_with_default: bool,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8], replace_null_with_default: bool) -> Reader<'a> {
        Reader {
            b,
            pos: 0,
            replace_null_with_default,
        }
    }

    /// Another reader over the same input, at `pos`.
    pub fn at(&self, pos: usize) -> Reader<'a> {
        Reader {
            b: self.b,
            pos,
            replace_null_with_default: self.replace_null_with_default,
        }
    }

    fn syntax(&self, what: &str) -> Fail {
        Fail::new(format!("malformed JSON at byte {}: {what}", self.pos))
    }

    pub fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.pos) {
            self.pos += 1;
        }
    }

    /// Is there nothing but whitespace left?
    pub fn is_blank(&mut self) -> bool {
        self.ws();
        self.pos >= self.b.len()
    }

    /// Only whitespace may follow the value.
    pub fn at_end(&mut self) -> Result<(), Fail> {
        if self.is_blank() {
            Ok(())
        } else {
            Err(self.syntax("unexpected data after the JSON value"))
        }
    }

    pub fn peek(&mut self) -> Result<Tok, Fail> {
        self.ws();
        Ok(match self.b.get(self.pos) {
            None => return Err(self.syntax("unexpected end of input")),
            Some(b'n') => Tok::Null,
            Some(b't') => Tok::True,
            Some(b'f') => Tok::False,
            Some(b'-' | b'0'..=b'9') => Tok::Number,
            Some(b'"') => Tok::String,
            Some(b'[') => Tok::Array,
            Some(b'{') => Tok::Object,
            Some(&c) => {
                return Err(self.syntax(&format!(
                    "unexpected {}",
                    if c.is_ascii_graphic() {
                        format!("character {:?}", char::from(c))
                    } else {
                        format!("byte 0x{c:02x}")
                    }
                )));
            }
        })
    }

    fn literal(&mut self, lit: &'static [u8]) -> Result<(), Fail> {
        if self.b[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            Ok(())
        } else {
            Err(self.syntax("invalid literal (expected null, true or false)"))
        }
    }

    /// Consume the opening bracket of an array or object the caller peeked.
    pub fn open(&mut self) {
        self.pos += 1;
    }

    /// The next member's key of an object whose `{` was consumed (the `:` is consumed
    /// too), or `None` after its `}`.
    pub fn next_key(&mut self, first: &mut bool) -> Result<Option<Cow<'a, str>>, Fail> {
        self.ws();
        match self.b.get(self.pos) {
            Some(b'}') if *first => {
                self.pos += 1;
                return Ok(None);
            }
            _ if *first => {}
            Some(b',') => {
                self.pos += 1;
                self.ws();
            }
            Some(b'}') => {
                self.pos += 1;
                return Ok(None);
            }
            None => return Err(self.syntax("unexpected end of input")),
            _ => return Err(self.syntax("expected ',' or '}' in an object")),
        }
        *first = false;
        if self.b.get(self.pos) != Some(&b'"') {
            return Err(self.syntax("expected a string key in an object"));
        }
        let key = self.string()?;
        self.ws();
        if self.b.get(self.pos) != Some(&b':') {
            return Err(self.syntax("expected ':' after an object key"));
        }
        self.pos += 1;
        Ok(Some(key))
    }

    /// Is there another element in an array whose `[` was consumed? (Consumes the `,`, or
    /// the `]` at the end.)
    pub fn next_item(&mut self, first: &mut bool) -> Result<bool, Fail> {
        self.ws();
        match self.b.get(self.pos) {
            Some(b']') if *first => {
                self.pos += 1;
                return Ok(false);
            }
            _ if *first => {}
            Some(b',') => self.pos += 1,
            Some(b']') => {
                self.pos += 1;
                return Ok(false);
            }
            None => return Err(self.syntax("unexpected end of input")),
            _ => return Err(self.syntax("expected ',' or ']' in an array")),
        }
        *first = false;
        Ok(true)
    }

    /// A string at `"`: borrowed from the input unless it has escapes.
    pub fn string(&mut self) -> Result<Cow<'a, str>, Fail> {
        self.pos += 1;
        let start = self.pos;
        let b = self.b;
        let mut i = start;
        while i < b.len() && !STRING_STOP[usize::from(b[i])] {
            i += 1;
        }
        if i < b.len() {
            match b[i] {
                b'"' => {
                    self.pos = i + 1;
                    return std::str::from_utf8(&b[start..i])
                        .map(Cow::Borrowed)
                        .map_err(|e| self.invalid_utf8(start + e.valid_up_to()));
                }
                b'\\' => {}
                _ => {
                    self.pos = i;
                    return Err(self.syntax("unescaped control character in a string"));
                }
            }
        }
        // Escapes: build the string.
        let mut buf = b[start..i].to_vec();
        loop {
            let Some(&c) = b.get(i) else {
                self.pos = i;
                return Err(self.syntax("unterminated string"));
            };
            match c {
                b'"' => {
                    self.pos = i + 1;
                    return String::from_utf8(buf).map(Cow::Owned).map_err(|_| {
                        Fail::new(format!(
                            "malformed JSON: invalid UTF-8 in the string starting at byte {start}"
                        ))
                    });
                }
                b'\\' => {
                    let esc = b.get(i + 1).copied();
                    i += 2;
                    let short = match esc {
                        Some(b'"') => b'"',
                        Some(b'\\') => b'\\',
                        Some(b'/') => b'/',
                        Some(b'b') => 0x08,
                        Some(b'f') => 0x0c,
                        Some(b'n') => b'\n',
                        Some(b'r') => b'\r',
                        Some(b't') => b'\t',
                        Some(b'u') => {
                            let ch = self.unicode_escape(&mut i)?;
                            let mut tmp = [0u8; 4];
                            buf.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                            continue;
                        }
                        _ => {
                            self.pos = i - 1;
                            return Err(self.syntax("invalid escape in a string"));
                        }
                    };
                    buf.push(short);
                }
                c if c < 0x20 => {
                    self.pos = i;
                    return Err(self.syntax("unescaped control character in a string"));
                }
                _ => {
                    buf.push(c);
                    i += 1;
                }
            }
        }
    }

    /// The character of a `\uXXXX` escape whose four hex digits start at `*i` (a surrogate
    /// pair takes two escapes).
    fn unicode_escape(&mut self, i: &mut usize) -> Result<char, Fail> {
        let hex4 = |r: &mut Reader<'_>, at: usize| -> Result<u32, Fail> {
            let digits = r.b.get(at..at + 4).unwrap_or(&[]);
            let text = std::str::from_utf8(digits).unwrap_or("");
            if digits.len() == 4 && digits.iter().all(u8::is_ascii_hexdigit) {
                u32::from_str_radix(text, 16).map_err(|_| r.syntax("invalid \\u escape"))
            } else {
                r.pos = at;
                Err(r.syntax("invalid \\u escape"))
            }
        };
        let first = hex4(self, *i)?;
        *i += 4;
        let code = if (0xd800..0xdc00).contains(&first) {
            if self.b.get(*i..*i + 2) != Some(b"\\u") {
                self.pos = *i;
                return Err(self.syntax("a lone surrogate in a \\u escape"));
            }
            let second = hex4(self, *i + 2)?;
            if !(0xdc00..0xe000).contains(&second) {
                self.pos = *i;
                return Err(self.syntax("a lone surrogate in a \\u escape"));
            }
            *i += 6;
            0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
        } else {
            first
        };
        char::from_u32(code).ok_or_else(|| {
            self.pos = *i;
            self.syntax("a lone surrogate in a \\u escape")
        })
    }

    fn invalid_utf8(&self, at: usize) -> Fail {
        Fail::new(format!("malformed JSON: invalid UTF-8 at byte {at}"))
    }

    /// A number's text and whether it is written as an integer (no fraction, no exponent).
    pub fn number(&mut self) -> Result<(&'a str, bool), Fail> {
        let b = self.b;
        let start = self.pos;
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits = |i: &mut usize| {
            let s = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > s
        };
        if !digits(&mut i) {
            self.pos = i;
            return Err(self.syntax("a number needs digits"));
        }
        let mut integral = true;
        if b.get(i) == Some(&b'.') {
            i += 1;
            integral = false;
            if !digits(&mut i) {
                self.pos = i;
                return Err(self.syntax("a number needs digits after '.'"));
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            integral = false;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            if !digits(&mut i) {
                self.pos = i;
                return Err(self.syntax("a number needs digits in its exponent"));
            }
        }
        if i - start > decimal::MAX_DIGITS {
            return Err(self.syntax(&format!(
                "a number longer than {} characters",
                decimal::MAX_DIGITS
            )));
        }
        self.pos = i;
        // Only ASCII digits and signs were accepted.
        let text = std::str::from_utf8(&b[start..i]).unwrap_or("0");
        Ok((text, integral))
    }

    /// Skip one value, checking its syntax.
    pub fn skip(&mut self, depth: usize) -> Result<(), Fail> {
        if depth > SKIP_DEPTH {
            return Err(self.syntax(&format!("JSON nested deeper than {SKIP_DEPTH} levels")));
        }
        match self.peek()? {
            Tok::Null => self.literal(b"null"),
            Tok::True => self.literal(b"true"),
            Tok::False => self.literal(b"false"),
            Tok::Number => self.number().map(drop),
            Tok::String => self.string().map(drop),
            Tok::Array => {
                self.open();
                let mut first = true;
                while self.next_item(&mut first)? {
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            Tok::Object => {
                self.open();
                let mut first = true;
                while self.next_key(&mut first)?.is_some() {
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
        }
    }

    // ---- values without a schema ----

    /// A value without a schema, typed as Kafka infers it: integers are int64, other
    /// numbers float64, objects maps with string keys, arrays arrays.
    pub fn infer(&mut self, depth: usize) -> Result<Value, Fail> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        Ok(match self.peek()? {
            Tok::Null => {
                self.literal(b"null")?;
                Value::Null
            }
            Tok::True => {
                self.literal(b"true")?;
                Value::Boolean(true)
            }
            Tok::False => {
                self.literal(b"false")?;
                Value::Boolean(false)
            }
            Tok::Number => {
                let (text, integral) = self.number()?;
                if integral {
                    Value::Int64(text.parse().map_err(|_| {
                        Fail::new(format!(
                            "the integer {text} does not fit in int64 (Kafka would silently \
                             truncate it); write it as a string or a decimal number"
                        ))
                    })?)
                } else {
                    Value::Float64(parse_float(text)?)
                }
            }
            Tok::String => Value::String(self.string()?.into_owned()),
            Tok::Array => {
                self.open();
                let mut items = Vec::new();
                let mut first = true;
                while self.next_item(&mut first)? {
                    let i = items.len();
                    items.push(self.infer(depth + 1).map_err(|e| e.in_index(i))?);
                }
                Value::Array(items)
            }
            Tok::Object => {
                self.open();
                let mut entries = Vec::new();
                let mut first = true;
                while let Some(key) = self.next_key(&mut first)? {
                    let v = self.infer(depth + 1).map_err(|e| e.in_field(&key))?;
                    entries.push((Value::String(key.into_owned()), v));
                }
                dedupe_keys(&mut entries);
                Value::Map(entries)
            }
        })
    }

    // ---- values with a schema ----

    /// A value of schema `s`.
    pub fn value(&mut self, s: &Schema, depth: usize) -> Result<Value, Fail> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        let tok = self.peek()?;
        if tok == Tok::Null {
            self.literal(b"null")?;
            return self.null_for(s);
        }
        if let Some(name) = s.name.as_deref()
            && let Some(v) = self.logical(s, name, tok)?
        {
            return Ok(v);
        }
        Ok(match (s.kind, tok) {
            (SchemaType::Boolean, Tok::True) => {
                self.literal(b"true")?;
                Value::Boolean(true)
            }
            (SchemaType::Boolean, Tok::False) => {
                self.literal(b"false")?;
                Value::Boolean(false)
            }
            (
                SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32 | SchemaType::Int64,
                Tok::Number,
            ) => self.integer(s.kind)?,
            (SchemaType::Float64, Tok::Number) => Value::Float64(parse_float(self.number()?.0)?),
            (SchemaType::Float32, Tok::Number) => {
                let text = self.number()?.0;
                Value::Float32(
                    text.parse()
                        .map_err(|_| Fail::new(format!("{text} is not a float")))?,
                )
            }
            (SchemaType::Float32 | SchemaType::Float64, Tok::String) => {
                // Jackson writes the non-numbers as strings; read them back.
                let text = self.string()?;
                let f = match &*text {
                    "NaN" => f64::NAN,
                    "Infinity" => f64::INFINITY,
                    "-Infinity" => f64::NEG_INFINITY,
                    other => {
                        return Err(Fail::new(format!(
                            "expected a number for schema type {}, found the string {other:?}",
                            s.kind.json_name()
                        )));
                    }
                };
                if s.kind == SchemaType::Float32 {
                    Value::Float32(f as f32)
                } else {
                    Value::Float64(f)
                }
            }
            (SchemaType::String, Tok::String) => Value::String(self.string()?.into_owned()),
            (SchemaType::Bytes, Tok::String) => {
                let text = self.string()?;
                Value::Bytes(
                    base64::decode(text.as_bytes())
                        .map_err(|e| Fail::new(format!("bytes must be base64: {e}")))?,
                )
            }
            (SchemaType::Array, Tok::Array) => {
                let items_schema = s
                    .key_or_items
                    .as_deref()
                    .ok_or_else(|| Fail::new("an array schema without an items schema"))?;
                self.open();
                let mut items = Vec::new();
                let mut first = true;
                while self.next_item(&mut first)? {
                    let i = items.len();
                    items.push(
                        self.value(items_schema, depth + 1)
                            .map_err(|e| e.in_index(i))?,
                    );
                }
                Value::Array(items)
            }
            (SchemaType::Map, tok) => self.map(s, tok, depth)?,
            (SchemaType::Struct, Tok::Object) => self.structure(s, depth)?,
            (kind, tok) => {
                return Err(Fail::new(format!(
                    "expected {} for schema type {}, found {}",
                    expected(kind),
                    kind.json_name(),
                    tok.describe()
                )));
            }
        })
    }

    /// What a JSON null (or a missing struct field) becomes under schema `s`.
    fn null_for(&self, s: &Schema) -> Result<Value, Fail> {
        match s.default.as_deref() {
            Some(d) if self.replace_null_with_default && *d != Value::Null => Ok(d.clone()),
            _ if s.optional => Ok(Value::Null),
            Some(_) => Err(Fail::new(format!(
                "null or missing, but the {} schema is required (its default is not used \
                 because replace.null.with.default=false)",
                s.kind.json_name()
            ))),
            None => Err(Fail::new(format!(
                "null or missing, but the {} schema is required and has no default",
                s.kind.json_name()
            ))),
        }
    }

    /// The logical types; `None` if `name` is not one.
    fn logical(&mut self, s: &Schema, name: &str, tok: Tok) -> Result<Option<Value>, Fail> {
        let base = match name {
            logical::DECIMAL => SchemaType::Bytes,
            logical::DATE | logical::TIME => SchemaType::Int32,
            logical::TIMESTAMP => SchemaType::Int64,
            _ => return Ok(None),
        };
        let short = name.rsplit('.').next().unwrap_or(name);
        if s.kind != base {
            return Err(Fail::new(format!(
                "a {short} schema must have type {}, not {}",
                base.json_name(),
                s.kind.json_name()
            )));
        }
        match (name, tok) {
            (logical::DECIMAL, Tok::Number) => {
                let scale = decimal_scale(s)?;
                let text = self.number()?.0;
                let unscaled = decimal::parse(text)
                    .and_then(|p| p.unscaled_at(scale))
                    .map_err(|e| Fail::new(format!("the Decimal {text} does not fit: {e}")))?;
                Ok(Some(Value::Bytes(unscaled)))
            }
            (logical::DECIMAL, Tok::String) => {
                decimal_scale(s)?;
                let text = self.string()?;
                let bytes = base64::decode(text.as_bytes())
                    .map_err(|e| Fail::new(format!("a Decimal string must be base64: {e}")))?;
                if bytes.is_empty() {
                    return Err(Fail::new("an empty Decimal (no bytes)"));
                }
                Ok(Some(Value::Bytes(bytes)))
            }
            (logical::DECIMAL, tok) => Err(Fail::new(format!(
                "a Decimal must be a number or a base64 string, found {}",
                tok.describe()
            ))),
            (logical::TIME, Tok::Number) => match self.integer(SchemaType::Int32)? {
                Value::Int32(ms) if (0..java::MILLIS_PER_DAY as i32).contains(&ms) => {
                    Ok(Some(Value::Int32(ms)))
                }
                v => Err(Fail::new(format!(
                    "a Time must be milliseconds within a day (0 to 86399999), not {v}"
                ))),
            },
            (_, Tok::Number) => Ok(None),
            (_, tok) => Err(Fail::new(format!(
                "a {short} must be an integer, found {}",
                tok.describe()
            ))),
        }
    }

    fn integer(&mut self, kind: SchemaType) -> Result<Value, Fail> {
        let (text, integral) = self.number()?;
        let name = kind.json_name();
        if !integral {
            return Err(Fail::new(format!(
                "expected an integer for schema type {name}, found {text}"
            )));
        }
        let out_of_range = || Fail::new(format!("{text} is out of range for {name}"));
        let n: i64 = text.parse().map_err(|_| out_of_range())?;
        Ok(match kind {
            SchemaType::Int8 => Value::Int8(i8::try_from(n).map_err(|_| out_of_range())?),
            SchemaType::Int16 => Value::Int16(i16::try_from(n).map_err(|_| out_of_range())?),
            SchemaType::Int32 => Value::Int32(i32::try_from(n).map_err(|_| out_of_range())?),
            _ => Value::Int64(n),
        })
    }

    fn map(&mut self, s: &Schema, tok: Tok, depth: usize) -> Result<Value, Fail> {
        let (Some(ks), Some(vs)) = (s.key_or_items.as_deref(), s.map_values.as_deref()) else {
            return Err(Fail::new("a map schema without its key and value schemas"));
        };
        let mut entries = Vec::new();
        let mut first = true;
        if ks.kind == SchemaType::String {
            if tok != Tok::Object {
                return Err(Fail::new(format!(
                    "a map with string keys must be a JSON object, found {}",
                    tok.describe()
                )));
            }
            self.open();
            while let Some(key) = self.next_key(&mut first)? {
                let v = self.value(vs, depth + 1).map_err(|e| e.in_field(&key))?;
                entries.push((Value::String(key.into_owned()), v));
            }
            dedupe_keys(&mut entries);
        } else {
            if tok != Tok::Array {
                return Err(Fail::new(format!(
                    "a map with {} keys must be a JSON array of [key, value] pairs, found {}",
                    ks.kind.json_name(),
                    tok.describe()
                )));
            }
            self.open();
            while self.next_item(&mut first)? {
                let i = entries.len();
                entries.push(self.pair(ks, vs, depth).map_err(|e| e.in_index(i))?);
            }
        }
        Ok(Value::Map(entries))
    }

    /// One `[key, value]` entry of a map whose keys are not strings.
    fn pair(&mut self, ks: &Schema, vs: &Schema, depth: usize) -> Result<(Value, Value), Fail> {
        let not_pair = || Fail::new("a map entry must be a [key, value] array of two");
        if self.peek()? != Tok::Array {
            return Err(not_pair());
        }
        self.open();
        let mut first = true;
        if !self.next_item(&mut first)? {
            return Err(not_pair());
        }
        let k = self
            .value(ks, depth + 1)
            .map_err(|e| e.context("map key"))?;
        if !self.next_item(&mut first)? {
            return Err(not_pair());
        }
        let v = self.value(vs, depth + 1)?;
        if self.next_item(&mut first)? {
            return Err(not_pair());
        }
        Ok((k, v))
    }

    fn structure(&mut self, s: &Schema, depth: usize) -> Result<Value, Fail> {
        self.open();
        let n = s.fields.len();
        let mut values = vec![Value::Null; n];
        // Which fields were present: a bit mask, or a vector for very wide structs.
        let mut seen_mask = 0u64;
        let mut seen_wide = if n > 64 { vec![false; n] } else { Vec::new() };
        // Members usually come in schema order: try the next field before searching.
        let mut cursor = 0;
        let mut first = true;
        while let Some(key) = self.next_key(&mut first)? {
            let found = if cursor < n && s.fields[cursor].name == *key {
                Some(cursor)
            } else {
                s.fields.iter().position(|f| f.name == *key)
            };
            match found {
                Some(i) => {
                    values[i] = self
                        .value(&s.fields[i].schema, depth + 1)
                        .map_err(|e| e.in_field(&key))?;
                    if n > 64 {
                        seen_wide[i] = true;
                    } else {
                        seen_mask |= 1 << i;
                    }
                    cursor = i + 1;
                }
                // Kafka ignores members that are not fields.
                None => self.skip(depth + 1)?,
            }
        }
        for (i, (f, v)) in s.fields.iter().zip(values.iter_mut()).enumerate() {
            let seen = if n > 64 {
                seen_wide[i]
            } else {
                seen_mask & (1 << i) != 0
            };
            if !seen {
                *v = self.null_for(&f.schema).map_err(|e| e.in_field(&f.name))?;
            }
        }
        Ok(Value::Struct(values))
    }

    // ---- schemas ----

    /// A schema object (`None` for JSON null).
    pub fn schema(&mut self, depth: usize) -> Result<Option<Schema>, Fail> {
        self.schema_object(depth).map(|(s, _)| s)
    }

    /// A schema object and, for a struct field's schema, its `field` name.
    fn schema_object(&mut self, depth: usize) -> Result<(Option<Schema>, Option<String>), Fail> {
        if depth > MAX_DEPTH {
            return Err(Fail::new(format!(
                "a schema nested deeper than {MAX_DEPTH} levels"
            )));
        }
        match self.peek()? {
            Tok::Null => {
                self.literal(b"null")?;
                return Ok((None, None));
            }
            Tok::Object => self.open(),
            other => {
                return Err(Fail::new(format!(
                    "a schema must be a JSON object, found {}",
                    other.describe()
                )));
            }
        }
        let mut kind_name: Option<Cow<'a, str>> = None;
        let mut s = Schema::new(SchemaType::Boolean);
        let mut field = None;
        let (mut default_at, mut items_at, mut keys_at, mut values_at, mut fields_at) =
            (None, None, None, None, None);
        let mut first = true;
        while let Some(key) = self.next_key(&mut first)? {
            self.ws();
            let at = self.pos;
            match &*key {
                "type" => kind_name = self.text_or_skip()?,
                "optional" => {
                    s.optional = self.peek()? == Tok::True;
                    self.skip(0)?;
                }
                "name" => s.name = self.text_or_skip()?.map(Cow::into_owned),
                "version" => {
                    s.version = None;
                    if self.peek()? == Tok::Number {
                        let (text, integral) = self.number()?;
                        s.version = text.parse().ok().filter(|_| integral);
                    } else {
                        self.skip(0)?;
                    }
                }
                "doc" => s.doc = self.text_or_skip()?.map(Cow::into_owned),
                "parameters" => s.parameters = self.parameters()?,
                "default" => {
                    default_at = Some(at);
                    self.skip(0)?;
                }
                "items" => {
                    items_at = Some(at);
                    self.skip(0)?;
                }
                "keys" => {
                    keys_at = Some(at);
                    self.skip(0)?;
                }
                "values" => {
                    values_at = Some(at);
                    self.skip(0)?;
                }
                "fields" => {
                    fields_at = Some(at);
                    self.skip(0)?;
                }
                "field" => field = self.text_or_skip()?.map(Cow::into_owned),
                _ => self.skip(0)?,
            }
        }
        let Some(kind_name) = kind_name else {
            return Err(Fail::new("a schema must have a \"type\" string"));
        };
        s.kind = match &*kind_name {
            "boolean" => SchemaType::Boolean,
            "int8" => SchemaType::Int8,
            "int16" => SchemaType::Int16,
            "int32" => SchemaType::Int32,
            "int64" => SchemaType::Int64,
            "float" => SchemaType::Float32,
            "double" => SchemaType::Float64,
            "string" => SchemaType::String,
            "bytes" => SchemaType::Bytes,
            "array" => SchemaType::Array,
            "map" => SchemaType::Map,
            "struct" => SchemaType::Struct,
            other => {
                return Err(Fail::new(format!(
                    "unknown schema type {other:?} (expected boolean, int8, int16, int32, \
                     int64, float, double, string, bytes, array, map or struct)"
                )));
            }
        };
        let kind = s.kind;
        let child = |at: Option<usize>, what: &str| -> Result<Box<Schema>, Fail> {
            let missing = || Fail::new(format!("the {} schema has no {what}", kind.json_name()));
            let at = at.ok_or_else(missing)?;
            let schema = self.at(at).schema(depth + 1)?.ok_or_else(missing)?;
            Ok(Box::new(schema))
        };
        match s.kind {
            SchemaType::Array => s.key_or_items = Some(child(items_at, "\"items\"")?),
            SchemaType::Map => {
                s.key_or_items = Some(child(keys_at, "\"keys\"")?);
                s.map_values = Some(child(values_at, "\"values\"")?);
            }
            SchemaType::Struct => s.fields = self.fields(fields_at, depth)?,
            _ => {}
        }
        if let Some(at) = default_at {
            let v = self
                .at(at)
                .value(&s, depth + 1)
                .map_err(|e| e.context("the schema's default value"))?;
            if v != Value::Null {
                s.default = Some(Box::new(v));
            }
        }
        Ok((Some(s), field))
    }

    fn fields(&self, at: Option<usize>, depth: usize) -> Result<Vec<Field>, Fail> {
        let not_array = || Fail::new("a struct schema's \"fields\" must be an array");
        let mut r = self.at(at.ok_or_else(not_array)?);
        if r.peek()? != Tok::Array {
            return Err(not_array());
        }
        r.open();
        let mut fields: Vec<Field> = Vec::new();
        let mut names = HashSet::new();
        let mut first = true;
        while r.next_item(&mut first)? {
            let i = fields.len();
            let (schema, name) = r
                .schema_object(depth + 1)
                .map_err(|e| e.context(&format!("struct field #{i}")))?;
            let (Some(schema), Some(name)) = (schema, name) else {
                return Err(Fail::new(format!(
                    "struct field #{i} must be a schema object with a \"field\" name"
                )));
            };
            if !names.insert(name.clone()) {
                return Err(Fail::new(format!(
                    "a struct schema with two fields named {name:?}"
                )));
            }
            fields.push(Field { name, schema });
        }
        Ok(fields)
    }

    /// A string member's text; anything else is skipped (Kafka ignores non-text values).
    fn text_or_skip(&mut self) -> Result<Option<Cow<'a, str>>, Fail> {
        if self.peek()? == Tok::String {
            Ok(Some(self.string()?))
        } else {
            self.skip(0)?;
            Ok(None)
        }
    }

    fn parameters(&mut self) -> Result<BTreeMap<String, String>, Fail> {
        let mut params = BTreeMap::new();
        if self.peek()? != Tok::Object {
            self.skip(0)?;
            return Ok(params);
        }
        self.open();
        let mut first = true;
        while let Some(key) = self.next_key(&mut first)? {
            if self.peek()? != Tok::String {
                return Err(Fail::new(format!(
                    "schema parameter {key:?} must have a string value"
                )));
            }
            let v = self.string()?;
            params.insert(key.into_owned(), v.into_owned());
        }
        Ok(params)
    }
}

/// A JSON object read as a map keeps one entry per key, as Jackson's object does: the
/// last value, in the place of the first. Repeated keys are rare, so the common case only
/// checks (without allocating for small maps).
fn dedupe_keys(entries: &mut Vec<(Value, Value)>) {
    fn key(e: &(Value, Value)) -> &str {
        match &e.0 {
            Value::String(k) => k.as_str(),
            _ => "",
        }
    }
    let repeated = if entries.len() <= 16 {
        entries
            .iter()
            .enumerate()
            .any(|(i, a)| entries[..i].iter().any(|b| key(a) == key(b)))
    } else {
        let mut set = HashSet::with_capacity(entries.len());
        !entries.iter().all(|e| set.insert(key(e)))
    };
    if !repeated {
        return;
    }
    let mut place: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut out: Vec<(Value, Value)> = Vec::with_capacity(entries.len());
    for (k, v) in entries.drain(..) {
        let name = match &k {
            Value::String(s) => s.clone(),
            _ => String::new(),
        };
        match place.get(&name) {
            Some(&i) => out[i].1 = v,
            None => {
                place.insert(name, out.len());
                out.push((k, v));
            }
        }
    }
    *entries = out;
}

fn parse_float(text: &str) -> Result<f64, Fail> {
    text.parse()
        .map_err(|_| Fail::new(format!("{text} is not a number")))
}

fn expected(kind: SchemaType) -> &'static str {
    match kind {
        SchemaType::Boolean => "true or false",
        SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32 | SchemaType::Int64 => {
            "an integer"
        }
        SchemaType::Float32 | SchemaType::Float64 => "a number",
        SchemaType::String => "a string",
        SchemaType::Bytes => "a base64 string",
        SchemaType::Array => "an array",
        SchemaType::Map => "an object",
        SchemaType::Struct => "an object",
    }
}

fn too_deep() -> Fail {
    Fail::new(format!("data nested deeper than {MAX_DEPTH} levels"))
}
