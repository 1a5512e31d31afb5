//! Java's textual forms that converters' bytes depend on: `Double.toString` and
//! `Float.toString` (what Jackson writes for floats, and what `StringConverter` and
//! `SimpleHeaderConverter` write), integers without allocation, and the calendar
//! arithmetic behind the date forms (`java.util.Date.toString` and the ISO-8601 patterns of
//! Kafka's `Values`).
//!
//! Floats follow the JDK 19+ specification (the shortest decimal that rounds back, at least
//! two digits if that is closer for subnormals). Older JDKs sometimes printed a longer
//! digit string; those bytes differ, though they parse back to the same number.
//! Dates assume the JVM runs in UTC, as Kafka Connect workers normally do.

use std::fmt::Write as _;

/// A small stack buffer for `core::fmt` output (float formatting without allocating).
struct StackBuf {
    buf: [u8; 48],
    len: usize,
}

impl StackBuf {
    fn new() -> StackBuf {
        StackBuf {
            buf: [0; 48],
            len: 0,
        }
    }
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Append a signed integer in decimal.
pub(crate) fn push_i64(v: i64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

/// Shortest digits and decimal exponent of a finite, non-zero, positive float as Rust's
/// `{:e}` gives them: `value = d.ddd × 10^exp`.
fn sci_parts(text: &str) -> (StackDigits, i32) {
    let (mantissa, exp) = text.split_once('e').unwrap_or((text, "0"));
    let mut digits = StackDigits::new();
    for b in mantissa.bytes().filter(u8::is_ascii_digit) {
        digits.push(b);
    }
    (digits, exp.parse().unwrap_or(0))
}

struct StackDigits {
    d: [u8; 32],
    n: usize,
}

impl StackDigits {
    fn new() -> StackDigits {
        StackDigits { d: [0; 32], n: 0 }
    }

    fn push(&mut self, b: u8) {
        if self.n < self.d.len() {
            self.d[self.n] = b;
            self.n += 1;
        }
    }
    fn as_slice(&self) -> &[u8] {
        &self.d[..self.n]
    }
}

/// Append `Double.toString(v)`: `1.0`, `0.001`, `1.0E7`, `1.0E-4`, `NaN`, `-Infinity`.
pub(crate) fn push_f64(v: f64, out: &mut Vec<u8>) {
    if let Some(special) = special(v.is_nan(), v.is_infinite(), v == 0.0, v.is_sign_negative()) {
        out.extend_from_slice(special.as_bytes());
        return;
    }
    let a = v.abs();
    let mut buf = StackBuf::new();
    let _ = write!(buf, "{a:e}");
    let (mut digits, mut exp) = sci_parts(buf.as_str());
    if digits.n == 1 && a < f64::MIN_POSITIVE {
        // Java picks among decimals of one *or two* digits the one closest to the value.
        let mut two = StackBuf::new();
        let _ = write!(two, "{a:.1e}");
        if two.as_str().parse::<f64>().ok() == Some(a) {
            (digits, exp) = sci_parts(two.as_str());
        }
    }
    push_java_decimal(
        v < 0.0,
        digits.as_slice(),
        exp,
        (1e-3..1e7).contains(&a),
        out,
    );
}

/// Append `Float.toString(v)`.
pub(crate) fn push_f32(v: f32, out: &mut Vec<u8>) {
    if let Some(special) = special(v.is_nan(), v.is_infinite(), v == 0.0, v.is_sign_negative()) {
        out.extend_from_slice(special.as_bytes());
        return;
    }
    let a = v.abs();
    let mut buf = StackBuf::new();
    let _ = write!(buf, "{a:e}");
    let (mut digits, mut exp) = sci_parts(buf.as_str());
    if digits.n == 1 && a < f32::MIN_POSITIVE {
        let mut two = StackBuf::new();
        let _ = write!(two, "{a:.1e}");
        if two.as_str().parse::<f32>().ok() == Some(a) {
            (digits, exp) = sci_parts(two.as_str());
        }
    }
    push_java_decimal(
        v < 0.0,
        digits.as_slice(),
        exp,
        (1e-3..1e7).contains(&a),
        out,
    );
}

fn special(nan: bool, infinite: bool, zero: bool, negative: bool) -> Option<&'static str> {
    match (nan, infinite, zero, negative) {
        (true, ..) => Some("NaN"),
        (_, true, _, false) => Some("Infinity"),
        (_, true, _, true) => Some("-Infinity"),
        (_, _, true, false) => Some("0.0"),
        (_, _, true, true) => Some("-0.0"),
        _ => None,
    }
}

/// Lay out shortest digits the way `Double.toString` does: plain with at least one
/// fractional digit inside [1e-3, 1e7), otherwise `d.dddE±n`.
fn push_java_decimal(negative: bool, digits: &[u8], exp: i32, plain: bool, out: &mut Vec<u8>) {
    // Trailing zeros can appear in the two-digit form (`1.0e-323`); Java drops them except
    // the one that keeps a fractional digit.
    let digits = match digits.iter().rposition(|&d| d != b'0') {
        Some(last) => &digits[..=last],
        None => &digits[..1],
    };
    if negative {
        out.push(b'-');
    }
    if plain {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.extend_from_slice(digits);
                out.resize(out.len() + int_len - digits.len(), b'0');
                out.extend_from_slice(b".0");
            } else {
                out.extend_from_slice(&digits[..int_len]);
                out.push(b'.');
                out.extend_from_slice(&digits[int_len..]);
            }
        } else {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (-exp - 1) as usize, b'0');
            out.extend_from_slice(digits);
        }
    } else {
        out.push(digits[0]);
        out.push(b'.');
        if digits.len() > 1 {
            out.extend_from_slice(&digits[1..]);
        } else {
            out.push(b'0');
        }
        out.push(b'E');
        push_i64(i64::from(exp), out);
    }
}

pub(crate) const MILLIS_PER_DAY: i64 = 86_400_000;

/// (year, month 1..=12, day 1..=31) of a count of days since 1970-01-01 (proleptic
/// Gregorian; the classic era-based civil-from-days computation).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of [`civil_from_days`]).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// A year as Java's date formats print it: the year of the era, so 0 is 1 (BC).
fn year_of_era(year: i64) -> i64 {
    if year <= 0 { 1 - year } else { year }
}

/// `java.util.Date.toString()` in UTC: `Thu Jan 01 00:00:00 UTC 1970`.
pub(crate) fn push_date_to_string(millis: i64, out: &mut Vec<u8>) {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = millis.div_euclid(MILLIS_PER_DAY);
    let ms = millis.rem_euclid(MILLIS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let secs = ms / 1000;
    let _ = write!(
        Utf8Out(out),
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[month as usize - 1],
        day,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        year_of_era(year)
    );
}

/// The ISO-8601 forms Kafka's `Values` writes for `java.util.Date` values, chosen by the
/// instant as `Values.dateFormatFor` does: before one day past the epoch (including every
/// negative instant) `HH:mm:ss.SSS'Z'`, on a midnight `yyyy-MM-dd`, otherwise
/// `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`.
pub(crate) fn push_values_date(millis: i64, out: &mut Vec<u8>) {
    let days = millis.div_euclid(MILLIS_PER_DAY);
    let ms = millis.rem_euclid(MILLIS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let mut w = Utf8Out(out);
    let time = |w: &mut Utf8Out<'_>| {
        let _ = write!(
            w,
            "{:02}:{:02}:{:02}.{:03}Z",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        );
    };
    if millis < MILLIS_PER_DAY {
        time(&mut w);
    } else if millis % MILLIS_PER_DAY == 0 {
        let _ = write!(w, "{:04}-{:02}-{:02}", year_of_era(year), month, day);
    } else {
        let _ = write!(w, "{:04}-{:02}-{:02}T", year_of_era(year), month, day);
        time(&mut w);
    }
}

/// `fmt::Write` into a byte vector.
struct Utf8Out<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Utf8Out<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(v: f64) -> String {
        let mut out = Vec::new();
        push_f64(v, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn f(v: f32) -> String {
        let mut out = Vec::new();
        push_f32(v, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn doubles_print_like_java() {
        // Each expected string is Double.toString's output (JDK 19+).
        for (v, s) in [
            (1.0, "1.0"),
            (-1.0, "-1.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (100.0, "100.0"),
            (123.456, "123.456"),
            (0.001, "0.001"),
            (0.000_999, "9.99E-4"),
            (1e-4, "1.0E-4"),
            (9_999_999.0, "9999999.0"),
            (1e7, "1.0E7"),
            (12_345_678.9, "1.23456789E7"),
            (1e21, "1.0E21"),
            (1e23, "1.0E23"),
            (2e-3, "0.002"),
            (f64::MAX, "1.7976931348623157E308"),
            (f64::MIN_POSITIVE, "2.2250738585072014E-308"),
            (5e-324, "4.9E-324"),
            (1e-323, "9.9E-324"),
            (1.5e-323, "1.5E-323"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (std::f64::consts::PI, "3.141592653589793"),
        ] {
            assert_eq!(d(v), s, "{v:e}");
        }
    }

    #[test]
    fn floats_print_like_java() {
        for (v, s) in [
            (1.0f32, "1.0"),
            (0.1, "0.1"),
            (3.4028235e38, "3.4028235E38"),
            (1.4e-45, "1.4E-45"),
            // JDK 19+ (shortest digits); older JDKs printed 1.17549435E-38.
            (f32::MIN_POSITIVE, "1.1754944E-38"),
            (1234567.0, "1234567.0"),
            (1.0e7, "1.0E7"),
            (-2.5e-4, "-2.5E-4"),
        ] {
            assert_eq!(f(v), s, "{v:e}");
        }
    }

    #[test]
    fn integers() {
        for v in [0, 7, -7, 42, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            push_i64(v, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), v.to_string());
        }
    }

    #[test]
    fn dates() {
        let s = |ms: i64, f: fn(i64, &mut Vec<u8>)| {
            let mut out = Vec::new();
            f(ms, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(s(0, push_date_to_string), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(
            s(1_700_000_000_000, push_date_to_string),
            "Tue Nov 14 22:13:20 UTC 2023"
        );
        assert_eq!(s(-1, push_date_to_string), "Wed Dec 31 23:59:59 UTC 1969");
        assert_eq!(s(45_296_789, push_values_date), "12:34:56.789Z");
        assert_eq!(s(19_000 * MILLIS_PER_DAY, push_values_date), "2022-01-08");
        assert_eq!(
            s(1_700_000_000_123, push_values_date),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(s(-MILLIS_PER_DAY, push_values_date), "00:00:00.000Z");
        assert_eq!(days_from_civil(2022, 1, 8), 19_000);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28);
    }

    proptest! {
        #[test]
        fn doubles_parse_back(bits in any::<u64>()) {
            let v = f64::from_bits(bits);
            prop_assume!(v.is_finite());
            let s = d(v);
            prop_assert_eq!(s.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{}", s);
            prop_assert!(s.contains('.'));
        }

        #[test]
        fn floats_parse_back(bits in any::<u32>()) {
            let v = f32::from_bits(bits);
            prop_assume!(v.is_finite());
            let s = f(v);
            prop_assert_eq!(s.parse::<f32>().unwrap().to_bits(), v.to_bits(), "{}", s);
        }

        #[test]
        fn civil_days_round_trip(days in -1_000_000i64..1_000_000) {
            let (y, m, dd) = civil_from_days(days);
            prop_assert!((1..=days_in_month(y, m)).contains(&dd));
            prop_assert_eq!(days_from_civil(y, m, dd), days);
        }
    }
}
