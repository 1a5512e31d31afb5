//! Java's `SimpleDateFormat` patterns (what TimestampConverter's `format` and
//! TimestampRouter's `timestamp.format` hold), formatting and parsing in UTC with English
//! names, as a Kafka Connect worker in UTC does.
//!
//! Letters: `G y Y M L w W D d F E u a H k K h m s S z Z X`; text in single quotes is
//! literal (`''` is a quote). Parsing is as lenient as Java's default: numbers take as many
//! digits as they have unless the next field is a number too (then the pattern's width),
//! out-of-range values roll over (month 13 is January of the next year), text after the
//! pattern is ignored. Week fields (`w W F E u Y`) format; when parsing they are read and
//! not used, except that `Y` stands for the year.

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(super) struct DateFormat {
    pattern: String,
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Literal(String),
    Field(char, usize),
}

const MILLIS_PER_DAY: i64 = 86_400_000;
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
/// Sunday first, as `Calendar.DAY_OF_WEEK` counts.
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn is_numeric(letter: char, width: usize) -> bool {
    match letter {
        'M' | 'L' => width < 3,
        'G' | 'E' | 'a' | 'z' | 'Z' | 'X' => false,
        _ => true,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1-12).
pub(super) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month 1-12, day) of days since 1970-01-01.
pub(super) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn pad(out: &mut String, n: i64, width: usize) {
    let digits = n.unsigned_abs().to_string();
    if n < 0 {
        out.push('-');
    }
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(&digits);
}

/// US week numbering (weeks start on Sunday; week 1 holds January 1st): (week-based year,
/// week of year).
fn week_of_year(days: i64, year: i64) -> (i64, i64) {
    let dow = |d: i64| (d + 4).rem_euclid(7); // 0 = Sunday
    let week_start = days - dow(days);
    let next_jan1 = days_from_civil(year + 1, 1, 1);
    if week_start + 6 >= next_jan1 {
        return (year + 1, 1);
    }
    let jan1 = days_from_civil(year, 1, 1);
    ((year), (days - jan1 + dow(jan1)) / 7 + 1)
}

impl DateFormat {
    /// Compile a pattern; an unknown letter or an unclosed quote is an error, as in Java.
    pub fn new(pattern: &str) -> Result<DateFormat, String> {
        let mut items = Vec::new();
        let chars: Vec<char> = pattern.chars().collect();
        let mut i = 0;
        let mut literal = String::new();
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                if chars.get(i + 1) == Some(&'\'') {
                    literal.push('\'');
                    i += 2;
                    continue;
                }
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("unterminated quote in pattern {pattern:?}")),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            literal.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            literal.push(*ch);
                            i += 1;
                        }
                    }
                }
                continue;
            }
            if c.is_ascii_alphabetic() {
                if !"GyYMLwWDdFEuaHkKhmsSzZX".contains(c) {
                    return Err(format!("illegal pattern character '{c}' in {pattern:?}"));
                }
                let mut width = 1;
                while chars.get(i + width) == Some(&c) {
                    width += 1;
                }
                if c == 'X' && width > 3 {
                    return Err(format!(
                        "invalid ISO 8601 format in {pattern:?}: length={width}"
                    ));
                }
                if !literal.is_empty() {
                    items.push(Item::Literal(std::mem::take(&mut literal)));
                }
                items.push(Item::Field(c, width));
                i += width;
                continue;
            }
            literal.push(c);
            i += 1;
        }
        if !literal.is_empty() {
            items.push(Item::Literal(literal));
        }
        Ok(DateFormat {
            pattern: pattern.to_owned(),
            items,
        })
    }

    /// Format milliseconds since the epoch.
    pub fn format(&self, millis: i64) -> String {
        let mut out = String::with_capacity(self.pattern.len() + 8);
        self.format_into(millis, &mut out);
        out
    }

    pub fn format_into(&self, millis: i64, out: &mut String) {
        let days = millis.div_euclid(MILLIS_PER_DAY);
        let ms = millis.rem_euclid(MILLIS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let dow = (days + 4).rem_euclid(7) as usize; // 0 = Sunday
        let hour = ms / 3_600_000;
        let era_year = |y: i64| if y <= 0 { 1 - y } else { y };
        for item in &self.items {
            let (c, w) = match item {
                Item::Literal(s) => {
                    out.push_str(s);
                    continue;
                }
                Item::Field(c, w) => (*c, *w),
            };
            match c {
                'G' => out.push_str(if year <= 0 { "BC" } else { "AD" }),
                'y' | 'Y' => {
                    let y = if c == 'Y' {
                        week_of_year(days, year).0
                    } else {
                        year
                    };
                    let y = era_year(y);
                    if w == 2 {
                        pad(out, y % 100, 2);
                    } else {
                        pad(out, y, w);
                    }
                }
                'M' | 'L' => match w {
                    1 | 2 => pad(out, i64::from(month), w),
                    3 => out.push_str(&MONTHS[month as usize - 1][..3]),
                    _ => out.push_str(MONTHS[month as usize - 1]),
                },
                'w' => pad(out, week_of_year(days, year).1, w),
                'W' => {
                    let first = days_from_civil(year, month, 1);
                    let first_dow = (first + 4).rem_euclid(7);
                    pad(out, (i64::from(day) - 1 + first_dow) / 7 + 1, w);
                }
                'D' => pad(out, days - days_from_civil(year, 1, 1) + 1, w),
                'd' => pad(out, i64::from(day), w),
                'F' => pad(out, (i64::from(day) - 1) / 7 + 1, w),
                'E' => {
                    if w >= 4 {
                        out.push_str(DAYS[dow]);
                    } else {
                        out.push_str(&DAYS[dow][..3]);
                    }
                }
                'u' => pad(out, if dow == 0 { 7 } else { dow as i64 }, w),
                'a' => out.push_str(if hour < 12 { "AM" } else { "PM" }),
                'H' => pad(out, hour, w),
                'k' => pad(out, if hour == 0 { 24 } else { hour }, w),
                'K' => pad(out, hour % 12, w),
                'h' => pad(out, if hour % 12 == 0 { 12 } else { hour % 12 }, w),
                'm' => pad(out, ms / 60_000 % 60, w),
                's' => pad(out, ms / 1000 % 60, w),
                'S' => pad(out, ms % 1000, w),
                'z' => out.push_str(if w >= 4 {
                    "Coordinated Universal Time"
                } else {
                    "UTC"
                }),
                'Z' => out.push_str("+0000"),
                _ => out.push('Z'), // 'X': the UTC offset is zero
            }
        }
    }

    /// How long what this formats stays the same: the unit of its finest field (a day for
    /// dates, down to a millisecond for `S`). Every such period starts at a multiple of it
    /// since the epoch (in UTC, a day is a whole number of each), so two times in the same
    /// period format alike.
    pub fn granularity_ms(&self) -> i64 {
        self.items
            .iter()
            .filter_map(|item| match item {
                Item::Literal(_) => None,
                Item::Field(c, _) => Some(match c {
                    'S' => 1,
                    's' => 1000,
                    'm' => 60_000,
                    'H' | 'k' | 'K' | 'h' => 3_600_000,
                    'a' => MILLIS_PER_DAY / 2,
                    _ => MILLIS_PER_DAY,
                }),
            })
            .min()
            .unwrap_or(MILLIS_PER_DAY)
    }

    /// Parse text into milliseconds since the epoch.
    pub fn parse(&self, text: &str) -> Result<i64, String> {
        let fail = || {
            format!(
                "could not parse timestamp: value ({text}) does not match pattern ({})",
                self.pattern
            )
        };
        let b = text.as_bytes();
        let mut pos = 0;
        let (mut year, mut month, mut day) = (1970i64, 1i64, 1i64);
        let mut day_of_year: Option<i64> = None;
        let (mut hour, mut minute, mut second, mut milli) = (0i64, 0i64, 0i64, 0i64);
        let mut pm: Option<bool> = None;
        let mut hour12 = false;
        let mut bc = false;
        let mut offset_ms = 0i64;
        for (idx, item) in self.items.iter().enumerate() {
            let (c, w) = match item {
                Item::Literal(s) => {
                    if !text[pos..].starts_with(s.as_str()) {
                        return Err(fail());
                    }
                    pos += s.len();
                    continue;
                }
                Item::Field(c, w) => (*c, *w),
            };
            if is_numeric(c, w) {
                let abutting = matches!(self.items.get(idx + 1), Some(Item::Field(n, nw)) if is_numeric(*n, *nw));
                let start = pos;
                let negative = matches!(c, 'y' | 'Y') && b.get(pos) == Some(&b'-');
                if negative {
                    pos += 1;
                }
                let digits_start = pos;
                while pos < b.len()
                    && b[pos].is_ascii_digit()
                    && (!abutting || pos - digits_start < w)
                {
                    pos += 1;
                }
                if pos == digits_start {
                    return Err(fail());
                }
                let n: i64 = text[digits_start..pos].parse().map_err(|_| fail())?;
                let n = if negative { -n } else { n };
                match c {
                    'y' | 'Y' => {
                        year = if w <= 2 && pos - start == 2 && !negative {
                            two_digit_year(n)
                        } else {
                            n
                        }
                    }
                    'M' | 'L' => month = n,
                    'd' => day = n,
                    'D' => day_of_year = Some(n),
                    'H' | 'k' => hour = if c == 'k' && n == 24 { 0 } else { n },
                    'K' | 'h' => {
                        hour = if c == 'h' && n == 12 { 0 } else { n };
                        hour12 = true;
                    }
                    'm' => minute = n,
                    's' => second = n,
                    'S' => milli = n,
                    _ => {} // week fields: read, not used
                }
                continue;
            }
            let rest = &text[pos..];
            let take = |names: &[&str]| -> Option<(usize, usize)> {
                names
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| {
                        rest.len() >= n.len()
                            && rest.is_char_boundary(n.len())
                            && rest[..n.len()].eq_ignore_ascii_case(n)
                    })
                    .max_by_key(|(_, n)| n.len())
                    .map(|(i, n)| (i, n.len()))
            };
            match c {
                'M' | 'L' => {
                    let shorts: Vec<&str> = MONTHS.iter().map(|m| &m[..3]).collect();
                    let (i, len) = take(&MONTHS).or_else(|| take(&shorts)).ok_or_else(fail)?;
                    month = i as i64 + 1;
                    pos += len;
                }
                'E' => {
                    let shorts: Vec<&str> = DAYS.iter().map(|d| &d[..3]).collect();
                    let (_, len) = take(&DAYS).or_else(|| take(&shorts)).ok_or_else(fail)?;
                    pos += len;
                }
                'a' => {
                    let (i, len) = take(&["AM", "PM"]).ok_or_else(fail)?;
                    pm = Some(i == 1);
                    pos += len;
                }
                'G' => {
                    let (i, len) = take(&["AD", "BC"]).ok_or_else(fail)?;
                    bc = i == 1;
                    pos += len;
                }
                _ => {
                    // z, Z, X: a zone
                    let (off, len) = parse_zone(rest).ok_or_else(fail)?;
                    offset_ms = off;
                    pos += len;
                }
            }
        }
        if bc {
            year = 1 - year;
        }
        if hour12 && pm == Some(true) {
            hour += 12;
        }
        let days = match day_of_year {
            Some(doy) => days_from_civil(year, 1, 1) + doy - 1,
            None => {
                let m0 = month - 1;
                let y = year + m0.div_euclid(12);
                let m = m0.rem_euclid(12) as u32 + 1;
                days_from_civil(y, m, 1) + day - 1
            }
        };
        let millis = days
            .checked_mul(MILLIS_PER_DAY)
            .and_then(|d| d.checked_add(hour.checked_mul(3_600_000)?))
            .and_then(|d| d.checked_add(minute.checked_mul(60_000)?))
            .and_then(|d| d.checked_add(second.checked_mul(1000)?))
            .and_then(|d| d.checked_add(milli))
            .and_then(|d| d.checked_sub(offset_ms))
            .ok_or_else(fail)?;
        Ok(millis)
    }
}

/// Java's reading of a two-digit year: within 80 years before and 20 after now.
fn two_digit_year(n: i64) -> i64 {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let this_year = civil_from_days(now_ms.div_euclid(MILLIS_PER_DAY)).0;
    let start = this_year - 80;
    let century = start - start.rem_euclid(100);
    let y = century + n;
    if y < start { y + 100 } else { y }
}

/// A zone at the start of `s`: `Z`, `UTC`, `GMT`, `+hh`, `+hhmm`, `+hh:mm`, `GMT+hh:mm`;
/// (offset in ms, bytes read).
fn parse_zone(s: &str) -> Option<(i64, usize)> {
    if s.starts_with('Z') {
        return Some((0, 1));
    }
    let (prefix, rest) = if let Some(r) = s.strip_prefix("UTC") {
        (3, r)
    } else if let Some(r) = s.strip_prefix("GMT") {
        (3, r)
    } else {
        (0, s)
    };
    let sign = match rest.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ if prefix > 0 => return Some((0, prefix)),
        _ => return None,
    };
    let b = rest.as_bytes();
    let digit = |i: usize| {
        b.get(i)
            .filter(|c| c.is_ascii_digit())
            .map(|c| i64::from(c - b'0'))
    };
    let hh = digit(1)? * 10 + digit(2)?;
    let (mm, len) = if b.get(3) == Some(&b':') {
        (digit(4)? * 10 + digit(5)?, 6)
    } else if let (Some(a), Some(c)) = (digit(3), digit(4)) {
        (a * 10 + c, 5)
    } else {
        (0, 3)
    };
    Some((sign * (hh * 3_600_000 + mm * 60_000), prefix + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(p: &str, millis: i64) -> String {
        DateFormat::new(p).unwrap().format(millis)
    }

    /// 2023-11-14T22:13:20.123Z, a Tuesday.
    const T: i64 = 1_700_000_000_123;

    #[test]
    fn formats_like_simple_date_format() {
        for (pattern, expected) in [
            ("yyyyMMdd", "20231114"),
            ("yyyy-MM-dd'T'HH:mm:ss.SSSZ", "2023-11-14T22:13:20.123+0000"),
            ("yyyy-MM-dd'T'HH:mm:ss.SSSX", "2023-11-14T22:13:20.123Z"),
            ("yy/M/d", "23/11/14"),
            ("EEE, d MMM yyyy hh:mm a z", "Tue, 14 Nov 2023 10:13 PM UTC"),
            ("EEEE MMMM", "Tuesday November"),
            ("D 'day' '''quoted'''", "318 day 'quoted'"),
            ("G y", "AD 2023"),
            ("k K h H", "22 10 10 22"),
            ("u F", "2 2"),
            ("w W", "46 3"),
        ] {
            assert_eq!(fmt(pattern, T), expected, "{pattern}");
        }
        assert_eq!(fmt("yyyy-MM-dd HH:mm:ss", 0), "1970-01-01 00:00:00");
        assert_eq!(fmt("yyyy-MM-dd HH:mm", -60_000), "1969-12-31 23:59");
        assert_eq!(fmt("k h a", 0), "24 12 AM");
        // The last days of 2023 are in week 1 of 2024 (US weeks).
        let dec31 = days_from_civil(2023, 12, 31) * MILLIS_PER_DAY;
        assert_eq!(fmt("YYYY w", dec31), "2024 1");
        assert_eq!(fmt("yyyy w", dec31), "2023 1");
    }

    #[test]
    fn times_in_one_period_of_the_granularity_format_alike() {
        for (pattern, period) in [
            ("yyyyMMdd", MILLIS_PER_DAY),
            ("yyyy-MM", MILLIS_PER_DAY),
            ("EEE hh a", 3_600_000),
            ("a", MILLIS_PER_DAY / 2),
            ("HH:mm", 60_000),
            ("ss", 1000),
            ("'x' SSS", 1),
            ("'only text'", MILLIS_PER_DAY),
        ] {
            let f = DateFormat::new(pattern).unwrap();
            assert_eq!(f.granularity_ms(), period, "{pattern}");
            for t in [T, 0, -1, -MILLIS_PER_DAY - 7, 1_703_980_799_999] {
                let start = t.div_euclid(period) * period;
                assert_eq!(
                    f.format(start),
                    f.format(start + period - 1),
                    "{pattern} {t}"
                );
                if period > 1 {
                    assert_eq!(f.format(t), f.format(start), "{pattern} {t}");
                }
            }
        }
    }

    #[test]
    fn parses_back() {
        for pattern in [
            "yyyy-MM-dd'T'HH:mm:ss.SSSZ",
            "yyyyMMddHHmmssSSS",
            "dd MMM yyyy hh:mm:ss.SSS a",
            "EEEE, MMMM d, yyyy HH:mm:ss.SSS X",
        ] {
            let f = DateFormat::new(pattern).unwrap();
            assert_eq!(f.parse(&f.format(T)).unwrap(), T, "{pattern}");
        }
        let f = DateFormat::new("yyyy-MM-dd HH:mm:ss Z").unwrap();
        assert_eq!(
            f.parse("2023-11-14 23:13:20 +0100").unwrap(),
            1_700_000_000_000
        );
        // Lenient: month 13 rolls into the next year; trailing text is ignored.
        let f = DateFormat::new("yyyy-MM-dd").unwrap();
        assert_eq!(
            f.parse("2023-13-01").unwrap(),
            days_from_civil(2024, 1, 1) * MILLIS_PER_DAY
        );
        assert_eq!(
            f.parse("2023-11-14T10:00").unwrap(),
            days_from_civil(2023, 11, 14) * MILLIS_PER_DAY
        );
        // Numbers take all their digits unless the next field abuts.
        assert_eq!(
            f.parse("2023-1-5").unwrap(),
            days_from_civil(2023, 1, 5) * MILLIS_PER_DAY
        );
        for bad in ["2023/11/14", "", "abcd-11-14"] {
            let err = f.parse(bad).unwrap_err();
            assert!(err.contains("does not match pattern (yyyy-MM-dd)"), "{err}");
        }
    }

    #[test]
    fn bad_patterns() {
        assert!(
            DateFormat::new("yyyy-MM-dd'T")
                .unwrap_err()
                .contains("unterminated quote")
        );
        assert!(DateFormat::new("yyyy-bb").unwrap_err().contains("'b'"));
        assert!(DateFormat::new("XXXX").is_err());
    }

    #[test]
    fn civil_round_trip() {
        for days in [-1_000_000i64, -719_468, -1, 0, 1, 19_675, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_675), (2023, 11, 14));
    }
}
