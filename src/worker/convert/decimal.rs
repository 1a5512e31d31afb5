//! Decimals as Kafka Connect carries them (the unscaled value as minimal big-endian two's
//! complement bytes, Java's `BigInteger.toByteArray`, plus the schema's scale) to and from
//! decimal text: Java's `BigDecimal.toString` form for writing, and JSON / Java number
//! literals for reading.
//!
//! Values of any size are handled (a small magnitude arithmetic on `u32` limbs, with an
//! `i128` fast path), but a number's digits are capped at [`MAX_DIGITS`], Jackson's default
//! limit on number length, so hostile input cannot make the quadratic conversions slow.

use tributary_plugin_abi::data::logical;

use super::Fail;

/// The most digits a decimal may have, in text or once rescaled (Jackson's default
/// `maxNumberLength`).
pub(crate) const MAX_DIGITS: usize = 1000;

/// `bytes` without the leading bytes that only repeat the sign (at least one byte stays).
pub(crate) fn minimal(bytes: &[u8]) -> &[u8] {
    let mut start = 0;
    while start + 1 < bytes.len() {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    &bytes[start..]
}

/// A decimal's sign and the decimal digits of its magnitude (no leading zeros, `"0"` for zero).
pub(crate) fn unscaled_digits(bytes: &[u8]) -> (bool, String) {
    if let Some(v) = logical::decimal_unscaled(bytes) {
        return (v < 0, v.unsigned_abs().to_string());
    }
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let magnitude = if negative {
        negate(bytes)
    } else {
        bytes.to_vec()
    };
    let mut limbs = limbs_from_be(&magnitude);
    // Repeated division by 10^9 gives the digits nine at a time, least significant first.
    let mut chunks = Vec::new();
    while !limbs.is_empty() {
        chunks.push(div_small(&mut limbs, 1_000_000_000));
    }
    let mut digits = match chunks.pop() {
        Some(top) => top.to_string(),
        None => "0".to_owned(),
    };
    for c in chunks.iter().rev() {
        digits.push_str(&format!("{c:09}"));
    }
    (negative, digits)
}

/// The minimal two's complement bytes of a signed magnitude given as decimal digits.
pub(crate) fn twos_from_digits(negative: bool, digits: &str) -> Vec<u8> {
    if digits.len() <= 38 {
        // Fits in i128 (10^38 < 2^127).
        let m: i128 = digits.parse().unwrap_or(0);
        let v = if negative { -m } else { m };
        return match logical::decimal_value(v) {
            tributary_plugin_abi::data::Value::Bytes(b) => b,
            _ => vec![0],
        };
    }
    let mut limbs: Vec<u32> = Vec::new();
    for chunk in digits.as_bytes().chunks(9) {
        let mut n = 0u32;
        for d in chunk {
            n = n * 10 + u32::from(d - b'0');
        }
        mul_add_small(&mut limbs, 10u32.pow(chunk.len() as u32), n);
    }
    let magnitude = be_from_limbs(&limbs);
    if magnitude.is_empty() {
        return vec![0];
    }
    let mut wide = Vec::with_capacity(magnitude.len() + 1);
    wide.push(0);
    wide.extend_from_slice(&magnitude);
    let out = if negative { negate(&wide) } else { wide };
    minimal(&out).to_vec()
}

/// The most bytes a Decimal may have to be printed (about 9,900 digits): printing is
/// quadratic in the size, and no reader takes numbers anywhere near that long.
pub(crate) const MAX_PRINTABLE_BYTES: usize = 4096;

/// Java's `BigDecimal.toString()` of `unscaled` (two's complement bytes) at `scale`:
/// plain notation unless the scale is negative or the number is smaller than 1e-6, then
/// scientific (`1.5E+3`, `1E-10`).
pub(crate) fn push_java_string(bytes: &[u8], scale: i32, out: &mut Vec<u8>) -> Result<(), Fail> {
    if bytes.len() > MAX_PRINTABLE_BYTES {
        return Err(Fail::new(format!(
            "a Decimal of {} bytes is too large to write as a number (at most \
             {MAX_PRINTABLE_BYTES} bytes)",
            bytes.len()
        )));
    }
    let (negative, digits) = unscaled_digits(bytes);
    if negative {
        out.push(b'-');
    }
    let len = digits.len() as i64;
    let scale = i64::from(scale);
    let adjusted = -scale + (len - 1);
    if scale == 0 {
        out.extend_from_slice(digits.as_bytes());
    } else if scale > 0 && adjusted >= -6 {
        if len > scale {
            let (int, frac) = digits.split_at((len - scale) as usize);
            out.extend_from_slice(int.as_bytes());
            out.push(b'.');
            out.extend_from_slice(frac.as_bytes());
        } else {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (scale - len) as usize, b'0');
            out.extend_from_slice(digits.as_bytes());
        }
    } else {
        let (first, rest) = digits.split_at(1);
        out.extend_from_slice(first.as_bytes());
        if !rest.is_empty() {
            out.push(b'.');
            out.extend_from_slice(rest.as_bytes());
        }
        out.push(b'E');
        if adjusted >= 0 {
            out.push(b'+');
        }
        out.extend_from_slice(adjusted.to_string().as_bytes());
    }
    Ok(())
}

/// A decimal literal split up: `value = ±digits × 10^-scale`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub negative: bool,
    /// No leading zeros; `"0"` for zero.
    pub digits: String,
    pub scale: i64,
}

impl Parsed {
    /// Is the value a whole number?
    pub(crate) fn is_integral(&self) -> bool {
        self.scale <= 0
            || self.digits == "0"
            || self
                .digits
                .bytes()
                .rev()
                .take(self.scale as usize)
                .all(|d| d == b'0')
                && self.digits.len() as i64 > self.scale
    }

    /// The unscaled two's complement bytes at `scale`, if no digit is lost.
    pub(crate) fn unscaled_at(&self, scale: i32) -> Result<Vec<u8>, String> {
        if self.digits == "0" {
            return Ok(vec![0]);
        }
        let shift = i64::from(scale) - self.scale;
        let digits = if shift >= 0 {
            if self.digits.len() as i64 + shift > MAX_DIGITS as i64 {
                return Err(format!(
                    "the number needs more than {MAX_DIGITS} digits at scale {scale}"
                ));
            }
            let mut d = self.digits.clone();
            d.extend(std::iter::repeat_n('0', shift as usize));
            d
        } else {
            let cut = (-shift) as usize;
            let keep = self.digits.len().saturating_sub(cut);
            if self.digits.len() <= cut || self.digits.as_bytes()[keep..].iter().any(|&d| d != b'0')
            {
                return Err(format!(
                    "it has more decimal places than the schema's scale {scale}"
                ));
            }
            self.digits[..keep].to_owned()
        };
        Ok(twos_from_digits(self.negative, &digits))
    }
}

/// Parse a decimal literal in Java's `BigDecimal(String)` grammar: an optional sign, digits
/// with an optional point (`1.`, `.5`), an optional exponent. JSON numbers are a subset.
pub(crate) fn parse(text: &str) -> Result<Parsed, String> {
    let bad = || format!("{text:?} is not a number");
    let b = text.as_bytes();
    if b.len() > MAX_DIGITS + 16 {
        return Err(format!("a number longer than {MAX_DIGITS} characters"));
    }
    let mut i = 0;
    let negative = match b.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = &text[int_start..i];
    let mut frac_digits = "";
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = &text[start..i];
    }
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(bad());
    }
    let mut exponent: i64 = 0;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let start = i;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let digits_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == digits_start {
            return Err(bad());
        }
        // Java refuses an exponent outside int; so do we (and it bounds the scale).
        exponent = text[start..i]
            .parse::<i32>()
            .map_err(|_| format!("{text:?} has an exponent out of range"))?
            .into();
    }
    if i != b.len() {
        return Err(bad());
    }
    let mut digits = String::with_capacity(int_digits.len() + frac_digits.len());
    digits.push_str(int_digits);
    digits.push_str(frac_digits);
    let trimmed = digits.trim_start_matches('0');
    let digits = if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    };
    let scale = frac_digits.len() as i64 - exponent;
    if scale < i64::from(i32::MIN) || scale > i64::from(i32::MAX) {
        return Err(format!("{text:?} has a scale out of range"));
    }
    Ok(Parsed {
        negative: negative && digits != "0",
        digits,
        scale,
    })
}

/// The two's complement negation of big-endian bytes (same width; the caller leaves room
/// for the sign).
fn negate(bytes: &[u8]) -> Vec<u8> {
    let mut m: Vec<u8> = bytes.iter().map(|b| !b).collect();
    for b in m.iter_mut().rev() {
        let (s, carry) = b.overflowing_add(1);
        *b = s;
        if !carry {
            break;
        }
    }
    m
}

/// Little-endian `u32` limbs of an unsigned big-endian magnitude, without high zero limbs.
fn limbs_from_be(bytes: &[u8]) -> Vec<u32> {
    let mut limbs: Vec<u32> = bytes
        .rchunks(4)
        .map(|c| c.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
        .collect();
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
    limbs
}

/// Unsigned big-endian bytes of little-endian limbs, without leading zeros (empty for 0).
fn be_from_limbs(limbs: &[u32]) -> Vec<u8> {
    let mut out: Vec<u8> = limbs.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
    let first = out.iter().position(|&b| b != 0).unwrap_or(out.len());
    out.drain(..first);
    out
}

/// Divide in place by `d`, returning the remainder; high zero limbs are dropped.
fn div_small(limbs: &mut Vec<u32>, d: u32) -> u32 {
    let mut rem = 0u64;
    for l in limbs.iter_mut().rev() {
        let cur = (rem << 32) | u64::from(*l);
        *l = (cur / u64::from(d)) as u32;
        rem = cur % u64::from(d);
    }
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
    rem as u32
}

/// `limbs = limbs * m + a`.
fn mul_add_small(limbs: &mut Vec<u32>, m: u32, a: u32) {
    let mut carry = u64::from(a);
    for l in limbs.iter_mut() {
        let cur = u64::from(*l) * u64::from(m) + carry;
        *l = cur as u32;
        carry = cur >> 32;
    }
    if carry != 0 {
        limbs.push(carry as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn java(bytes: &[u8], scale: i32) -> String {
        let mut out = Vec::new();
        push_java_string(bytes, scale, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn twos(v: i128) -> Vec<u8> {
        twos_from_digits(v < 0, &v.unsigned_abs().to_string())
    }

    #[test]
    fn big_decimal_to_string_matches_java() {
        // Expected strings are what `new BigDecimal(new BigInteger(u), s).toString()` gives.
        let check = |u: i128, s: i32, expected: &str| assert_eq!(java(&twos(u), s), expected);
        check(12345, 2, "123.45");
        check(-12345, 2, "-123.45");
        check(5, 3, "0.005");
        check(0, 2, "0.00");
        check(0, 0, "0");
        check(0, -2, "0E+2");
        check(5, -2, "5E+2");
        check(123, -1, "1.23E+3");
        check(1, 6, "0.000001");
        check(1, 7, "1E-7");
        check(-15, 8, "-1.5E-7");
        check(42, 0, "42");
        check(i128::MIN, 0, &i128::MIN.to_string());
    }

    #[test]
    fn huge_values_are_refused_not_slow() {
        let mut out = Vec::new();
        let huge = vec![0x7f; MAX_PRINTABLE_BYTES + 1];
        let err = push_java_string(&huge, 0, &mut out).unwrap_err();
        assert!(err.render().contains("too large"));
        assert!(push_java_string(&huge[1..], 0, &mut out).is_ok());
        assert!(out.len() > 9000);
    }

    #[test]
    fn big_values_beyond_128_bits() {
        let digits = "123456789012345678901234567890123456789012345678901234567890";
        let pos = twos_from_digits(false, digits);
        let neg = twos_from_digits(true, digits);
        assert!(pos.len() > 16);
        assert_eq!(unscaled_digits(&pos), (false, digits.to_owned()));
        assert_eq!(unscaled_digits(&neg), (true, digits.to_owned()));
        // -2^135 has a minimal encoding starting with 0x80.
        let p = "43556142965880123323311949751266331066368";
        let b = twos_from_digits(true, p);
        assert_eq!(b[0], 0x80);
        assert!(b[1..].iter().all(|&x| x == 0));
        assert_eq!(unscaled_digits(&b), (true, p.to_owned()));
    }

    #[test]
    fn literals_parse_like_big_decimal() {
        let p = parse("-123.4500e1").unwrap();
        assert_eq!(
            (p.negative, p.digits.as_str(), p.scale),
            (true, "1234500", 3)
        );
        assert_eq!(p.unscaled_at(2).unwrap(), twos(-123450));
        assert!(p.unscaled_at(1).is_ok(), "trailing zeros may be dropped");
        assert!(
            parse("1.234")
                .unwrap()
                .unscaled_at(2)
                .unwrap_err()
                .contains("scale 2")
        );
        assert_eq!(parse("1.").unwrap().scale, 0);
        assert_eq!(parse(".5").unwrap().scale, 1);
        assert!(!parse("-0.0").unwrap().negative);
        assert!(parse("1e5").unwrap().is_integral());
        assert!(parse("1.50e1").unwrap().is_integral());
        assert!(!parse("1.5").unwrap().is_integral());
        assert!(!parse("0.05").unwrap().is_integral());
        assert!(parse("100").unwrap().is_integral());
        for bad in [
            "",
            "-",
            ".",
            "e5",
            "1e",
            "1e+",
            "1.2.3",
            "0x10",
            "1 ",
            "1e99999999999",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(
            parse("1e900")
                .unwrap()
                .unscaled_at(200)
                .unwrap_err()
                .contains("digits"),
            "hostile exponents are capped"
        );
    }

    proptest! {
        #[test]
        fn digits_and_bytes_round_trip(v in any::<i128>(), extra in proptest::collection::vec(any::<u8>(), 0..24)) {
            prop_assert_eq!(unscaled_digits(&twos(v)), (v < 0, v.unsigned_abs().to_string()));
            // Arbitrary-width values: minimal bytes survive digits and back.
            if !extra.is_empty() {
                let m = minimal(&extra).to_vec();
                let (neg, digits) = unscaled_digits(&m);
                prop_assert_eq!(twos_from_digits(neg, &digits), m);
            }
        }
    }
}
