//! Partitioners: which directory under `topics.dir/TOPIC/` a record goes to (Confluent's
//! "encoded partition"), as Confluent's storage partitioners name them:
//!
//! - default: `partition=N`, the Kafka partition;
//! - field: `f1=v1/f2=v2`, values of fields of the record's value;
//! - time-based: the record's time, floored to `partition.duration.ms` in `timezone`,
//!   written with the Joda-Time pattern `path.format` (hourly and daily are presets).
//!
//! Pure functions of the record (and, for `Wallclock`, of the clock): no I/O.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use tributary_plugin_sdk::{SinkRecord, Value};

/// Where a record's time comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimestampExtractor {
    /// The Kafka record's timestamp.
    Record,
    /// A field of the value: ms since the epoch, a Timestamp, or an ISO-8601 string.
    RecordField(String),
    /// The time the record is written.
    Wallclock,
}

impl TimestampExtractor {
    /// The record's time in ms since the epoch; `now` is the wall clock.
    pub fn extract(&self, r: &SinkRecord, now: i64) -> Result<i64, String> {
        match self {
            TimestampExtractor::Wallclock => Ok(now),
            TimestampExtractor::Record => r.timestamp.ok_or_else(|| {
                format!(
                    "record {}-{}@{} has no timestamp; use timestamp.extractor=RecordField or Wallclock",
                    r.topic, r.partition, r.offset
                )
            }),
            TimestampExtractor::RecordField(field) => {
                let v = field_value(r, field).ok_or_else(|| {
                    format!(
                        "record {}-{}@{} has no value field {field:?} (timestamp.field)",
                        r.topic, r.partition, r.offset
                    )
                })?;
                match v {
                    Value::Int64(ms) => Ok(*ms),
                    Value::Int32(ms) => Ok(i64::from(*ms)),
                    Value::String(s) => s
                        .parse::<Timestamp>()
                        .map(|t| t.as_millisecond())
                        .map_err(|e| {
                            format!(
                                "field {field} of record {}-{}@{}: {s:?} is not an ISO-8601 timestamp: {e}",
                                r.topic, r.partition, r.offset
                            )
                        }),
                    other => Err(format!(
                        "field {field} of record {}-{}@{} is a {}, not a timestamp",
                        r.topic,
                        r.partition,
                        r.offset,
                        other.type_name()
                    )),
                }
            }
        }
    }
}

/// The time-based partitioner's settings.
#[derive(Debug, Clone)]
pub struct TimeSettings {
    pub path_format: Vec<Token>,
    pub duration_ms: i64,
    pub timezone: TimeZone,
    pub extractor: TimestampExtractor,
    pub locale_missing: bool,
}

impl TimeSettings {
    pub fn new(
        path_format: &str,
        duration_ms: i64,
        timezone: &str,
        extractor: &str,
        field: &str,
    ) -> Result<TimeSettings, String> {
        if path_format.is_empty() {
            return Err("Missing configuration path.format: the time-based partitioner needs a Joda-Time pattern, e.g. 'year'=YYYY/'month'=MM/'day'=dd".to_owned());
        }
        if duration_ms <= 0 {
            return Err("Invalid value for configuration partition.duration.ms: the time-based partitioner needs the ms each directory covers, e.g. 3600000".to_owned());
        }
        if timezone.is_empty() {
            return Err(
                "Missing configuration timezone: the time-based partitioner needs one, e.g. UTC"
                    .to_owned(),
            );
        }
        let timezone = TimeZone::get(timezone).map_err(|e| {
            format!("Invalid value {timezone} for configuration timezone: {e}; use an IANA name such as UTC or Europe/Paris")
        })?;
        let extractor = match extractor {
            "Record" => TimestampExtractor::Record,
            "RecordField" => TimestampExtractor::RecordField(field.to_owned()),
            _ => TimestampExtractor::Wallclock,
        };
        Ok(TimeSettings {
            path_format: parse_pattern(path_format)?,
            duration_ms,
            timezone,
            extractor,
            locale_missing: false,
        })
    }

    /// The directory of a time: floored to the duration in local time, then formatted.
    pub fn encode(&self, ms: i64) -> Result<String, String> {
        let ts = Timestamp::from_millisecond(ms).map_err(|e| format!("timestamp {ms}: {e}"))?;
        let offset_ms = i64::from(self.timezone.to_offset(ts).seconds()) * 1000;
        let local = ms + offset_ms;
        let floored = local - local.rem_euclid(self.duration_ms) - offset_ms;
        let ts =
            Timestamp::from_millisecond(floored).map_err(|e| format!("timestamp {ms}: {e}"))?;
        let zoned = ts.to_zoned(self.timezone.clone());
        let mut out = String::new();
        for t in &self.path_format {
            format_token(t, &zoned, &mut out);
        }
        Ok(out)
    }
}

/// One piece of a Joda-Time pattern: literal text or a field of a letter repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Literal(String),
    Field(char, usize),
}

/// Parse a Joda-Time pattern: letters are fields, `'...'` is literal text (`''` a quote),
/// anything else is literal.
pub fn parse_pattern(p: &str) -> Result<Vec<Token>, String> {
    const FIELDS: &str = "GCYyxwedDEMaKhHkmsSzZ";
    let chars: Vec<char> = p.chars().collect();
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                lit.push('\'');
                i += 2;
                continue;
            }
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(format!(
                            "Invalid value {p} for configuration path.format: unterminated quote"
                        ));
                    }
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        lit.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        lit.push(c);
                        i += 1;
                    }
                }
            }
        } else if c.is_ascii_alphabetic() {
            if !FIELDS.contains(c) {
                return Err(format!(
                    "Invalid value {p} for configuration path.format: unknown pattern letter {c:?} (quote literal text: 'year'=YYYY)"
                ));
            }
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            if !lit.is_empty() {
                out.push(Token::Literal(std::mem::take(&mut lit)));
            }
            out.push(Token::Field(c, n));
            i += n;
        } else {
            lit.push(c);
            i += 1;
        }
    }
    if !lit.is_empty() {
        out.push(Token::Literal(lit));
    }
    Ok(out)
}

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
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn pad(out: &mut String, v: i64, width: usize) {
    use std::fmt::Write;
    let _ = write!(out, "{v:0width$}");
}

fn format_token(t: &Token, z: &jiff::Zoned, out: &mut String) {
    let (c, n) = match t {
        Token::Literal(s) => {
            out.push_str(s);
            return;
        }
        Token::Field(c, n) => (*c, *n),
    };
    match c {
        'G' => out.push_str(if z.year() > 0 { "AD" } else { "BC" }),
        'C' => pad(out, i64::from(z.year()) / 100, n),
        // Joda: a two-letter year is the year of the century.
        'Y' | 'y' | 'x' => {
            let year = if c == 'x' {
                i64::from(z.date().iso_week_date().year())
            } else {
                i64::from(z.year())
            };
            if n == 2 {
                pad(out, year.rem_euclid(100), 2)
            } else {
                pad(out, year, n)
            }
        }
        'w' => pad(out, i64::from(z.date().iso_week_date().week()), n),
        'e' => pad(out, i64::from(z.weekday().to_monday_one_offset()), n),
        'E' => {
            let name = DAYS[usize::from(z.weekday().to_monday_zero_offset() as u8)];
            out.push_str(if n >= 4 { name } else { &name[..3] });
        }
        'D' => pad(out, i64::from(z.day_of_year()), n),
        'M' => {
            let m = i64::from(z.month());
            match n {
                1 | 2 => pad(out, m, n),
                3 => out.push_str(&MONTHS[(m - 1) as usize][..3]),
                _ => out.push_str(MONTHS[(m - 1) as usize]),
            }
        }
        'd' => pad(out, i64::from(z.day()), n),
        'a' => out.push_str(if z.hour() < 12 { "AM" } else { "PM" }),
        'K' => pad(out, i64::from(z.hour() % 12), n),
        'h' => pad(out, i64::from((z.hour() + 11) % 12 + 1), n),
        'H' => pad(out, i64::from(z.hour()), n),
        'k' => pad(out, i64::from(if z.hour() == 0 { 24 } else { z.hour() }), n),
        'm' => pad(out, i64::from(z.minute()), n),
        's' => pad(out, i64::from(z.second()), n),
        'S' => {
            let ms = format!("{:03}", z.millisecond());
            out.push_str(&format!("{ms:0<n$}")[..n]);
        }
        'z' => out.push_str(z.time_zone().iana_name().unwrap_or("UTC")),
        'Z' => {
            let secs = z.offset().seconds();
            let sign = if secs < 0 { '-' } else { '+' };
            let secs = secs.abs();
            let sep = if n >= 2 { ":" } else { "" };
            out.push_str(&format!(
                "{sign}{:02}{sep}{:02}",
                secs / 3600,
                secs / 60 % 60
            ));
        }
        _ => {}
    }
}

/// A value field of a record, by a dotted path through nested structs and maps.
pub fn field_value<'a>(r: &'a SinkRecord, path: &str) -> Option<&'a Value> {
    let mut value = &r.value.value;
    let mut schema = r.value.schema.as_ref();
    for name in path.split('.') {
        match value {
            Value::Struct(values) => {
                let s = schema?;
                let i = s.field_index(name)?;
                value = values.get(i)?;
                schema = Some(&s.fields[i].schema);
            }
            Value::Map(entries) => {
                value = entries
                    .iter()
                    .find(|(k, _)| matches!(k, Value::String(s) if s == name))
                    .map(|(_, v)| v)?;
                schema = schema.and_then(|s| s.map_values.as_deref());
            }
            _ => return None,
        }
    }
    Some(value)
}

/// Which partitioner, with its settings.
#[derive(Debug, Clone)]
pub enum PartitionerKind {
    Default,
    Field(Vec<String>),
    Time(Box<TimeSettings>),
}

impl PartitionerKind {
    /// The directory of a record under `topics.dir/TOPIC/`.
    pub fn encode(&self, r: &SinkRecord, now: i64) -> Result<String, String> {
        match self {
            PartitionerKind::Default => Ok(format!("partition={}", r.partition)),
            PartitionerKind::Field(fields) => {
                let mut out = String::new();
                for f in fields {
                    let v = field_value(r, f).ok_or_else(|| {
                        format!(
                            "record {}-{}@{} has no value field {f:?} (partition.field.name); FieldPartitioner needs a struct or map value",
                            r.topic, r.partition, r.offset
                        )
                    })?;
                    if !out.is_empty() {
                        out.push('/');
                    }
                    out.push_str(f);
                    out.push('=');
                    match v {
                        Value::String(s) => out.push_str(s),
                        Value::Int8(_)
                        | Value::Int16(_)
                        | Value::Int32(_)
                        | Value::Int64(_)
                        | Value::Boolean(_) => out.push_str(&v.to_string()),
                        other => {
                            return Err(format!(
                                "field {f} of record {}-{}@{} is a {}; FieldPartitioner takes strings, integers and booleans",
                                r.topic,
                                r.partition,
                                r.offset,
                                other.type_name()
                            ));
                        }
                    }
                }
                Ok(out)
            }
            PartitionerKind::Time(t) => t.encode(t.extractor.extract(r, now)?),
        }
    }

    /// Whether the directories depend only on the records (so a replay after a crash
    /// writes the same objects).
    pub fn deterministic(&self) -> bool {
        !matches!(self, PartitionerKind::Time(t) if t.extractor == TimestampExtractor::Wallclock)
    }
}

#[cfg(test)]
mod tests {
    use tributary_plugin_sdk::{Data, Schema, StructBuilder};

    use super::*;

    fn check(pattern: &str, duration: i64, tz: &str, ms: i64, want: &str) {
        let t = TimeSettings::new(pattern, duration, tz, "Record", "").unwrap();
        assert_eq!(t.encode(ms).unwrap(), want, "{pattern} in {tz} at {ms}");
    }

    #[test]
    fn time_paths() {
        // 2026-03-04T05:06:07.089Z, a Wednesday.
        let ms = 1_772_600_767_089;
        check(
            "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH",
            3_600_000,
            "UTC",
            ms,
            "year=2026/month=03/day=04/hour=05",
        );
        check("YYYY-MM-dd/HH:mm:ss", 1, "UTC", ms, "2026-03-04/05:06:07");
        check(
            "YYYY-MM-dd/HH:mm",
            15 * 60_000,
            "UTC",
            ms,
            "2026-03-04/05:00",
        );
        check(
            "yy/MMM/MMMM/EEE/EEEE/D",
            1,
            "UTC",
            ms,
            "26/Mar/March/Wed/Wednesday/63",
        );
        check("'it''s' HH", 3_600_000, "Asia/Kolkata", ms, "it's 10");
        // Daily in a zone east of UTC: the local day, not UTC's.
        check(
            "YYYY-MM-dd",
            86_400_000,
            "Asia/Tokyo",
            1_772_640_000_000,
            "2026-03-05",
        );
        check(
            "YYYY-MM-dd",
            86_400_000,
            "America/New_York",
            ms,
            "2026-03-04",
        );
        assert!(parse_pattern("YYYY/'open").is_err());
        assert!(parse_pattern("year=YYYY").is_err());
    }

    #[test]
    fn default_and_field() {
        let schema = Schema::structure()
            .field("region", Schema::string())
            .field("n", Schema::int32())
            .field("ts", Schema::int64());
        let v = StructBuilder::new(schema)
            .unwrap()
            .put("region", "eu")
            .unwrap()
            .put("n", 7)
            .unwrap()
            .put("ts", 1_772_600_767_089i64)
            .unwrap()
            .build()
            .unwrap();
        let r = SinkRecord::new("t", 3, 10, v);
        assert_eq!(
            PartitionerKind::Default.encode(&r, 0).unwrap(),
            "partition=3"
        );
        let f = PartitionerKind::Field(vec!["region".into(), "n".into()]);
        assert_eq!(f.encode(&r, 0).unwrap(), "region=eu/n=7");
        let missing = PartitionerKind::Field(vec!["nope".into()]);
        assert!(missing.encode(&r, 0).unwrap_err().contains("nope"));
        let t = TimeSettings::new("YYYY/MM/dd", 86_400_000, "UTC", "RecordField", "ts").unwrap();
        assert_eq!(
            PartitionerKind::Time(Box::new(t)).encode(&r, 0).unwrap(),
            "2026/03/04"
        );
        let s = SinkRecord::new("t", 0, 0, Data::string("x"));
        assert!(TimestampExtractor::Record.extract(&s, 5).is_err());
        assert_eq!(TimestampExtractor::Wallclock.extract(&s, 5), Ok(5));
    }
}
