//! The byte encoding of what crosses the boundary: primitives and string maps here, records
//! in [`crate::record`], data in [`crate::data`], config descriptions in [`crate::config`].
//!
//! The layout, fixed for an [`crate::ABI_VERSION`]:
//!
//! - integers and floats: little-endian, fixed width (`u8`, `u32`, `i32`, `i64`, `f32`, `f64`);
//!   a boolean is a `u8` 0 or 1;
//! - `bytes` and `str`: a `u32` length, then the bytes (UTF-8 for `str`);
//! - `opt<T>`: a `u8` 0 (absent) or 1 followed by `T`;
//! - `list<T>`: a `u32` count, then the items;
//! - `map`: `list<(str, str)>`.
//!
//! Fixed widths rather than varints: decoding is a bounds check and a load, and a batch of
//! 100-byte records is dominated by the payload anyway.
//!
//! Decoding never panics and never trusts a count: every read is bounds-checked and a count
//! is checked against the bytes left before anything is allocated for it.

use std::collections::BTreeMap;
use std::fmt;

/// Bytes that do not decode as what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// What was being read.
    pub what: &'static str,
    /// The offset in the buffer where it went wrong.
    pub at: usize,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed {} at byte {}", self.what, self.at)
    }
}

impl std::error::Error for DecodeError {}

/// A string-to-string map: connector and task configs.
pub type StringMap = BTreeMap<String, String>;

/// Appends encodings to a buffer.
#[inline]
pub fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

#[inline]
pub fn put_bool(out: &mut Vec<u8>, v: bool) {
    out.push(u8::from(v));
}

#[inline]
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[inline]
pub fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[inline]
pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[inline]
pub fn put_f32(out: &mut Vec<u8>, v: f32) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[inline]
pub fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A length or count as `u32`. Anything larger cannot cross (4 GiB in one field).
#[inline]
pub fn put_len(out: &mut Vec<u8>, len: usize) {
    let len =
        u32::try_from(len).expect("a field of 4 GiB or more cannot cross the plugin boundary");
    put_u32(out, len);
}

#[inline]
pub fn put_bytes(out: &mut Vec<u8>, v: &[u8]) {
    put_len(out, v.len());
    out.extend_from_slice(v);
}

#[inline]
pub fn put_str(out: &mut Vec<u8>, v: &str) {
    put_bytes(out, v.as_bytes());
}

#[inline]
pub fn put_opt_str(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        None => put_u8(out, 0),
        Some(s) => {
            put_u8(out, 1);
            put_str(out, s);
        }
    }
}

#[inline]
pub fn put_opt_i64(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        None => put_u8(out, 0),
        Some(x) => {
            put_u8(out, 1);
            put_i64(out, x);
        }
    }
}

/// Reads encodings from a buffer, front to back.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    #[inline]
    pub fn error(&self, what: &'static str) -> DecodeError {
        DecodeError { what, at: self.pos }
    }

    /// Fail unless everything was read.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    #[inline]
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(self.error(what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    #[inline]
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    #[inline]
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError {
                what,
                at: self.pos - 1,
            }),
        }
    }

    #[inline]
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    #[inline]
    pub fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    #[inline]
    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    #[inline]
    pub fn f32(&mut self, what: &'static str) -> Result<f32, DecodeError> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }

    #[inline]
    pub fn f64(&mut self, what: &'static str) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }

    /// A count of items each at least `min_item_bytes` long, checked against what is left
    /// so that a hostile count cannot make the reader allocate.
    #[inline]
    pub fn count(
        &mut self,
        min_item_bytes: usize,
        what: &'static str,
    ) -> Result<usize, DecodeError> {
        let at = self.pos;
        let n = self.u32(what)? as usize;
        if n.saturating_mul(min_item_bytes.max(1)) > self.remaining() {
            return Err(DecodeError { what, at });
        }
        Ok(n)
    }

    #[inline]
    pub fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }

    #[inline]
    pub fn str(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        let b = self.bytes(what)?;
        std::str::from_utf8(b).map_err(|_| DecodeError { what, at })
    }

    #[inline]
    pub fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        self.str(what).map(str::to_owned)
    }

    /// [`Reader::string`] into `out`, replacing what it held (decoders fill records in place:
    /// handing a `String` back through a `Result` costs a copy through memory).
    #[inline]
    pub fn string_into(&mut self, what: &'static str, out: &mut String) -> Result<(), DecodeError> {
        *out = self.str(what)?.to_owned();
        Ok(())
    }

    #[inline]
    pub fn opt_string(&mut self, what: &'static str) -> Result<Option<String>, DecodeError> {
        if self.bool(what)? {
            self.string(what).map(Some)
        } else {
            Ok(None)
        }
    }

    #[inline]
    pub fn opt_i64(&mut self, what: &'static str) -> Result<Option<i64>, DecodeError> {
        if self.bool(what)? {
            self.i64(what).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Encode a string map (`map`).
pub fn encode_string_map(map: &StringMap, out: &mut Vec<u8>) {
    put_len(out, map.len());
    for (k, v) in map {
        put_str(out, k);
        put_str(out, v);
    }
}

/// Read one string map.
pub fn read_string_map(r: &mut Reader<'_>) -> Result<StringMap, DecodeError> {
    let n = r.count(8, "string map")?;
    let mut map = StringMap::new();
    for _ in 0..n {
        let k = r.string("string map key")?;
        let v = r.string("string map value")?;
        map.insert(k, v);
    }
    Ok(map)
}

/// Decode a buffer holding exactly one string map.
pub fn decode_string_map(buf: &[u8]) -> Result<StringMap, DecodeError> {
    let mut r = Reader::new(buf);
    let map = read_string_map(&mut r)?;
    r.finish("string map")?;
    Ok(map)
}

/// Encode a list of string maps (task configs).
pub fn encode_string_maps(maps: &[StringMap], out: &mut Vec<u8>) {
    put_len(out, maps.len());
    for m in maps {
        encode_string_map(m, out);
    }
}

/// Decode a buffer holding exactly one list of string maps.
pub fn decode_string_maps(buf: &[u8]) -> Result<Vec<StringMap>, DecodeError> {
    let mut r = Reader::new(buf);
    let n = r.count(4, "list of string maps")?;
    let mut maps = Vec::with_capacity(n);
    for _ in 0..n {
        maps.push(read_string_map(&mut r)?);
    }
    r.finish("list of string maps")?;
    Ok(maps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_maps_round_trip() {
        let a: StringMap = [("k".to_string(), "v".to_string()), ("é".into(), "".into())].into();
        let maps = vec![a.clone(), StringMap::new(), a];
        let mut buf = Vec::new();
        encode_string_maps(&maps, &mut buf);
        assert_eq!(decode_string_maps(&buf).unwrap(), maps);
        for cut in 0..buf.len() {
            assert!(
                decode_string_maps(&buf[..cut]).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
    }

    #[test]
    fn hostile_count_is_refused_before_allocating() {
        let mut buf = Vec::new();
        put_u32(&mut buf, u32::MAX);
        let err = decode_string_maps(&buf).unwrap_err();
        assert_eq!(err.at, 0);
    }

    #[test]
    fn invalid_utf8_and_bools_are_errors() {
        let mut buf = Vec::new();
        put_bytes(&mut buf, &[0xff, 0xfe]);
        assert!(Reader::new(&buf).str("s").is_err());
        assert!(Reader::new(&[2]).bool("b").is_err());
    }
}
