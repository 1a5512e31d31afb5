//! `TimestampConverter$Key` / `$Value` (timestamps between Unix numbers, strings in a
//! `SimpleDateFormat` pattern and Connect's Date, Time and Timestamp types) and
//! `TimestampRouter` (the topic from the topic and the record's timestamp). Both work in
//! UTC, as Kafka's do.

use tributary_plugin_abi::config::{ConfigType, Importance};
use tributary_plugin_abi::data::{Schema, SchemaType, Value, logical};

use super::config::{Conf, Dflt, KeySpec, REPLACE_NULL, Valid, key};
use super::datefmt::DateFormat;
use super::fields::both_sides;
use super::{
    Build, ConfigError, Def, Local, Outcome, RecordMut, Side, Transform, field_value, map_get,
    map_put, require_map, type_name,
};

const MILLIS_PER_DAY: i64 = 86_400_000;

pub(super) const DEFS: &[Def] = &{
    let conv = both_sides!(
        "TimestampConverter",
        "Convert timestamps between different formats such as Unix epoch, strings, and Connect \
         Date/Timestamp types. Applies to individual fields or to the entire value.",
        CONVERTER_KEYS,
        TimestampConverter::build
    );
    [
        conv[0],
        conv[1],
        Def {
            class: "org.apache.kafka.connect.transforms.TimestampRouter",
            doc: "Update the record's topic field as a function of the original topic value and \
                  the record timestamp. This is mainly useful for sink connectors, since the \
                  topic field is often used to determine the equivalent entity name in the \
                  destination system (e.g. database table or search index name).",
            keys: ROUTER_KEYS,
            build: Build::Transform(TimestampRouter::build),
        },
    ]
};

const CONVERTER_KEYS: &[KeySpec] = &[
    key(
        "field",
        ConfigType::String,
        Dflt::Val(""),
        Importance::High,
        Valid::Any,
        "The field containing the timestamp, or empty if the entire value is a timestamp",
    ),
    key(
        "target.type",
        ConfigType::String,
        Dflt::Required,
        Importance::High,
        Valid::OneOf(&["string", "unix", "Date", "Time", "Timestamp"]),
        "The desired timestamp representation: string, unix, Date, Time, or Timestamp",
    ),
    key(
        "format",
        ConfigType::String,
        Dflt::Val(""),
        Importance::Medium,
        Valid::Any,
        "A SimpleDateFormat-compatible format for the timestamp. Used to generate the output \
         when type=string or used to parse the input if the input is a string.",
    ),
    key(
        "unix.precision",
        ConfigType::String,
        Dflt::Val("milliseconds"),
        Importance::Low,
        Valid::OneOf(&["nanoseconds", "microseconds", "milliseconds", "seconds"]),
        "The desired Unix precision for the timestamp: seconds, milliseconds, microseconds, or \
         nanoseconds. Used to generate the output when type=unix or used to parse the input if \
         the input is a Long. Note: This SMT will cause precision loss during conversions from, \
         and to, values with sub-millisecond components.",
    ),
    REPLACE_NULL,
];

/// A timestamp representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    String,
    Unix,
    Date,
    Time,
    Timestamp,
}

impl Kind {
    fn schema(self, optional: bool) -> Schema {
        let s = match self {
            Kind::String => Schema::string(),
            Kind::Unix => Schema::int64(),
            Kind::Date => logical::date_schema(),
            Kind::Time => logical::time_schema(),
            Kind::Timestamp => logical::timestamp_schema(),
        };
        if optional { s.optional() } else { s }
    }

    /// How a value with this schema holds a timestamp.
    fn of_schema(s: &Schema) -> Result<Kind, String> {
        Ok(match (s.name.as_deref(), s.kind) {
            (Some(logical::TIMESTAMP), _) => Kind::Timestamp,
            (Some(logical::DATE), _) => Kind::Date,
            (Some(logical::TIME), _) => Kind::Time,
            (_, SchemaType::String) => Kind::String,
            (_, SchemaType::Int64) => Kind::Unix,
            (_, k) => {
                return Err(format!(
                    "a {} schema does not correspond to a known timestamp type format (int64, \
                     string, Date, Time or Timestamp)",
                    k.json_name()
                ));
            }
        })
    }

    /// How a schemaless value holds a timestamp.
    fn of_value(v: &Value) -> Result<Kind, String> {
        match v {
            Value::Int64(_) => Ok(Kind::Unix),
            Value::String(_) => Ok(Kind::String),
            other => Err(format!(
                "TimestampConverter does not support {} objects as timestamps (int64 or string \
                 without a schema)",
                type_name(other)
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Precision {
    Seconds,
    Millis,
    Micros,
    Nanos,
}

#[derive(Debug)]
pub(super) struct TimestampConverter {
    side: Side,
    field: String,
    target: Kind,
    format: Option<DateFormat>,
    precision: Precision,
    replace_null: bool,
}

impl TimestampConverter {
    fn build(c: &Conf<'_>, side: Side) -> Result<Box<dyn Transform>, ConfigError> {
        let target = match c.required("target.type")?.as_str() {
            "string" => Kind::String,
            "unix" => Kind::Unix,
            "Date" => Kind::Date,
            "Time" => Kind::Time,
            _ => Kind::Timestamp,
        };
        let pattern = c.string("format").unwrap_or_default();
        if target == Kind::String && pattern.is_empty() {
            return Err(c.err(
                "format",
                "TimestampConverter requires format option to be specified when using string \
                 timestamps (a SimpleDateFormat pattern, e.g. yyyy-MM-dd'T'HH:mm:ss.SSSX)",
            ));
        }
        let format = if pattern.is_empty() {
            None
        } else {
            Some(DateFormat::new(&pattern).map_err(|e| {
                c.err(
                    "format",
                    format!("not a SimpleDateFormat-compatible pattern: {e}"),
                )
            })?)
        };
        Ok(Box::new(TimestampConverter {
            side,
            field: c.string("field").unwrap_or_default(),
            target,
            format,
            precision: match c.string("unix.precision").as_deref() {
                Some("seconds") => Precision::Seconds,
                Some("microseconds") => Precision::Micros,
                Some("nanoseconds") => Precision::Nanos,
                _ => Precision::Millis,
            },
            replace_null: c.boolean("replace.null.with.default"),
        }))
    }

    /// Milliseconds since the epoch of a timestamp held as `kind`.
    fn to_raw(&self, kind: Kind, v: &Value) -> Result<i64, String> {
        let expected = |what: &str| format!("expected a {what} timestamp, found {}", type_name(v));
        match (kind, v) {
            (Kind::String, Value::String(s)) => match &self.format {
                Some(f) => f.parse(s),
                None => Err(
                    "a string timestamp needs format (a SimpleDateFormat pattern) to be \
                             parsed; set format"
                        .into(),
                ),
            },
            (Kind::Unix, Value::Int64(n)) => Ok(match self.precision {
                Precision::Seconds => n.saturating_mul(1000),
                Precision::Millis => *n,
                Precision::Micros => n / 1000,
                Precision::Nanos => n / 1_000_000,
            }),
            (Kind::Date, Value::Int32(days)) => Ok(i64::from(*days) * MILLIS_PER_DAY),
            (Kind::Time, Value::Int32(ms)) => Ok(i64::from(*ms)),
            (Kind::Timestamp, Value::Int64(ms)) => Ok(*ms),
            (Kind::String, _) => Err(expected("string")),
            (Kind::Unix | Kind::Timestamp, _) => Err(expected("int64")),
            (Kind::Date | Kind::Time, _) => Err(expected("int32")),
        }
    }

    fn to_type(&self, millis: i64) -> Result<Value, String> {
        Ok(match self.target {
            Kind::String => Value::String(
                self.format
                    .as_ref()
                    .map_or_else(String::new, |f| f.format(millis)),
            ),
            Kind::Unix => Value::Int64(match self.precision {
                Precision::Seconds => millis / 1000,
                Precision::Millis => millis,
                Precision::Micros => millis.saturating_mul(1000),
                Precision::Nanos => millis.saturating_mul(1_000_000),
            }),
            Kind::Date => Value::Int32(
                i32::try_from(millis.div_euclid(MILLIS_PER_DAY))
                    .map_err(|_| format!("{millis} ms is out of the range of a Connect Date"))?,
            ),
            Kind::Time => Value::Int32(millis.rem_euclid(MILLIS_PER_DAY) as i32),
            Kind::Timestamp => Value::Int64(millis),
        })
    }

    fn convert(&self, kind: Option<Kind>, v: &Value) -> Result<Value, String> {
        if *v == Value::Null {
            return Ok(Value::Null);
        }
        let kind = match kind {
            Some(k) => k,
            None => Kind::of_value(v)?,
        };
        self.to_type(self.to_raw(kind, v)?)
    }
}

impl Transform for TimestampConverter {
    fn apply(&self, r: &mut RecordMut<'_>) -> Outcome {
        const PURPOSE: &str = "converting timestamp formats";
        let data = self.side.pick(&mut *r.key, &mut *r.value);
        match &mut data.schema {
            None if self.field.is_empty() || data.value == Value::Null => {
                data.value = self.convert(None, &data.value)?;
            }
            None => {
                let m = require_map(&mut data.value, PURPOSE)?;
                let converted = match map_get(m, &self.field) {
                    Some(v) => self.convert(None, v)?,
                    None => Value::Null,
                };
                map_put(m, &self.field, converted);
            }
            Some(schema) if self.field.is_empty() => {
                let kind = Kind::of_schema(schema)?;
                data.value = self.convert(Some(kind), &data.value)?;
                *schema = self.target.schema(schema.optional);
            }
            Some(schema) => {
                if schema.kind != SchemaType::Struct {
                    return Err(format!(
                        "{PURPOSE} of field {} needs a struct, found a {} schema",
                        self.field,
                        schema.kind.json_name()
                    ));
                }
                let values = match &mut data.value {
                    Value::Null => None,
                    Value::Struct(v) if v.len() == schema.fields.len() => Some(v),
                    other => {
                        return Err(format!(
                            "{PURPOSE} needs a struct, found {}",
                            type_name(other)
                        ));
                    }
                };
                let Some(i) = schema.field_index(&self.field) else {
                    return Ok(true);
                };
                let kind = Kind::of_schema(&schema.fields[i].schema)?;
                if let Some(values) = values {
                    for (j, (f, v)) in schema.fields.iter().zip(values.iter_mut()).enumerate() {
                        let current = field_value(f, v, self.replace_null);
                        *v = if j == i {
                            self.convert(Some(kind), &current)?
                        } else {
                            current
                        };
                    }
                }
                let f = &mut schema.fields[i].schema;
                *f = self.target.schema(f.optional);
            }
        }
        Ok(true)
    }
}

const ROUTER_KEYS: &[KeySpec] = &[
    key(
        "topic.format",
        ConfigType::String,
        Dflt::Val("${topic}-${timestamp}"),
        Importance::High,
        Valid::Any,
        "Format string which can contain ${topic} and ${timestamp} as placeholders for the topic \
         and timestamp, respectively.",
    ),
    key(
        "timestamp.format",
        ConfigType::String,
        Dflt::Val("yyyyMMdd"),
        Importance::High,
        Valid::Any,
        "Format string for the timestamp that is compatible with java.text.SimpleDateFormat.",
    ),
];

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Topic,
    Timestamp,
}

/// `TimestampRouter`.
#[derive(Debug)]
pub(super) struct TimestampRouter {
    pieces: Vec<Piece>,
    format: DateFormat,
    /// `format`'s granularity: records in one such period get one topic.
    period: i64,
    /// The last topic made, per thread: (input topic, period, output topic). A source's
    /// records are mostly in order of time, so one period's topic serves many records.
    last: Local<Option<(String, i64, String)>>,
}

impl TimestampRouter {
    fn build(c: &Conf<'_>) -> Result<Box<dyn Transform>, ConfigError> {
        let topic_format = c.string("topic.format").unwrap_or_default();
        let pattern = c.string("timestamp.format").unwrap_or_default();
        let format = DateFormat::new(&pattern).map_err(|e| {
            c.err(
                "timestamp.format",
                format!("not a SimpleDateFormat-compatible pattern: {e}"),
            )
        })?;
        let mut pieces = Vec::new();
        let mut rest = topic_format.as_str();
        while !rest.is_empty() {
            let next = [
                ("${topic}", Piece::Topic),
                ("${timestamp}", Piece::Timestamp),
            ]
            .into_iter()
            .filter_map(|(p, piece)| rest.find(p).map(|at| (at, p.len(), piece)))
            .min_by_key(|(at, _, _)| *at);
            match next {
                Some((at, len, piece)) => {
                    if at > 0 {
                        pieces.push(Piece::Text(rest[..at].to_owned()));
                    }
                    pieces.push(piece);
                    rest = &rest[at + len..];
                }
                None => {
                    pieces.push(Piece::Text(rest.to_owned()));
                    rest = "";
                }
            }
        }
        let period = format.granularity_ms();
        Ok(Box::new(TimestampRouter {
            pieces,
            format,
            period,
            last: Local::default(),
        }))
    }
}

impl Transform for TimestampRouter {
    fn apply(&self, r: &mut RecordMut<'_>) -> Outcome {
        let Some(ts) = r.timestamp else {
            return Err(format!(
                "timestamp missing on a record of topic {}; TimestampRouter needs records with \
                 timestamps",
                r.topic
            ));
        };
        let period = ts.div_euclid(self.period);
        let topic = &mut *r.topic;
        let kept = self.last.with(|last| match last {
            Some((input, p, output)) if *p == period && input == topic => {
                // In place: the record's topic string usually has the room.
                topic.clear();
                topic.push_str(output);
                true
            }
            _ => false,
        });
        if kept == Some(true) {
            return Ok(true);
        }
        let mut topic = String::with_capacity(r.topic.len() + 16);
        for p in &self.pieces {
            match p {
                Piece::Text(t) => topic.push_str(t),
                Piece::Topic => topic.push_str(r.topic),
                Piece::Timestamp => self.format.format_into(ts, &mut topic),
            }
        }
        self.last
            .with(|last| *last = Some((r.topic.clone(), period, topic.clone())));
        *r.topic = topic;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use tributary_plugin_abi::data::{Data, Schema, Value, logical};

    use super::super::tests::{chain, config_errors, map, rec, s, sink_value};

    /// 2023-11-14T22:13:20.123Z.
    const T: i64 = 1_700_000_000_123;
    const DAY: i32 = 19_675;
    const TIME: i32 = 80_000_123;

    fn conv(pairs: &[(&str, &str)]) -> super::super::Chain {
        let mut all = vec![
            ("transforms", "ts"),
            (
                "transforms.ts.type",
                "org.apache.kafka.connect.transforms.TimestampConverter$Value",
            ),
        ];
        all.extend_from_slice(pairs);
        chain(&all)
    }

    #[test]
    fn whole_value_between_every_representation() {
        let fmt = "yyyy-MM-dd'T'HH:mm:ss.SSSX";
        let ts = || Data::with_schema(logical::timestamp_schema(), Value::Int64(T)).unwrap();
        let cases: Vec<(&str, Data, Value, Option<&str>)> = vec![
            ("string", ts(), s("2023-11-14T22:13:20.123Z"), None),
            ("unix", ts(), Value::Int64(T), None),
            ("Date", ts(), Value::Int32(DAY), Some(logical::DATE)),
            ("Time", ts(), Value::Int32(TIME), Some(logical::TIME)),
            (
                "Timestamp",
                Data::schemaless(s("2023-11-14T22:13:20.123Z")),
                Value::Int64(T),
                Some(logical::TIMESTAMP),
            ),
            (
                "Timestamp",
                Data::schemaless(Value::Int64(T)),
                Value::Int64(T),
                Some(logical::TIMESTAMP),
            ),
            (
                "string",
                Data::with_schema(logical::date_schema(), Value::Int32(DAY)).unwrap(),
                s("2023-11-14T00:00:00.000Z"),
                None,
            ),
            (
                "unix",
                Data::with_schema(Schema::string(), s("2023-11-14T22:13:20.123Z")).unwrap(),
                Value::Int64(T),
                None,
            ),
        ];
        for (target, input, expected, logical_name) in cases {
            let c = conv(&[
                ("transforms.ts.target.type", target),
                ("transforms.ts.format", fmt),
            ]);
            let had_schema = input.schema.is_some();
            let out = sink_value(&c, input.clone());
            assert_eq!(out.value, expected, "{input:?} -> {target}");
            if had_schema {
                assert_eq!(
                    out.schema.as_ref().unwrap().name.as_deref(),
                    logical_name,
                    "{target}"
                );
                out.validate().unwrap();
            } else {
                assert_eq!(out.schema, None);
            }
        }
    }

    #[test]
    fn unix_precision() {
        for (precision, n) in [
            ("seconds", 1_700_000_000i64),
            ("milliseconds", T),
            ("microseconds", T * 1000),
            ("nanoseconds", T * 1_000_000),
        ] {
            let c = conv(&[
                ("transforms.ts.target.type", "unix"),
                ("transforms.ts.unix.precision", precision),
            ]);
            let out = sink_value(
                &c,
                Data::with_schema(logical::timestamp_schema(), Value::Int64(T)).unwrap(),
            );
            assert_eq!(out.value, Value::Int64(n), "{precision}");
            let back = conv(&[
                ("transforms.ts.target.type", "Timestamp"),
                ("transforms.ts.unix.precision", precision),
            ]);
            let out = sink_value(&back, Data::schemaless(Value::Int64(n)));
            let expected = if precision == "seconds" {
                1_700_000_000_000
            } else {
                T
            };
            assert_eq!(out.value, Value::Int64(expected), "{precision}");
        }
    }

    #[test]
    fn a_field_of_a_struct_or_map() {
        let c = conv(&[
            ("transforms.ts.field", "at"),
            ("transforms.ts.target.type", "string"),
            ("transforms.ts.format", "yyyy-MM-dd"),
        ]);
        let schema = Schema::structure()
            .field("id", Schema::int32())
            .field("at", logical::timestamp_schema().optional());
        let out = sink_value(
            &c,
            Data::with_schema(
                schema.clone(),
                Value::Struct(vec![Value::Int32(1), Value::Int64(T)]),
            )
            .unwrap(),
        );
        assert_eq!(
            out.value,
            Value::Struct(vec![Value::Int32(1), s("2023-11-14")])
        );
        let at = &out.schema.as_ref().unwrap().fields[1].schema;
        assert_eq!(
            (at.kind, at.optional, at.name.clone()),
            (tributary_plugin_abi::data::SchemaType::String, true, None)
        );
        out.validate().unwrap();
        // A null field stays null; a null struct stays null with the new schema.
        let out = sink_value(
            &c,
            Data::with_schema(
                schema.clone(),
                Value::Struct(vec![Value::Int32(1), Value::Null]),
            )
            .unwrap(),
        );
        assert_eq!(out.value, Value::Struct(vec![Value::Int32(1), Value::Null]));
        let out = sink_value(
            &c,
            Data {
                schema: Some(schema.optional()),
                value: Value::Null,
            },
        );
        assert_eq!(out.value, Value::Null);
        // Schemaless.
        let out = sink_value(
            &c,
            Data::schemaless(map(vec![("at", Value::Int64(T)), ("x", s("y"))])),
        );
        assert_eq!(out.value, map(vec![("at", s("2023-11-14")), ("x", s("y"))]));
    }

    #[test]
    fn failures() {
        let c = conv(&[
            ("transforms.ts.target.type", "unix"),
            ("transforms.ts.format", "yyyy-MM-dd"),
        ]);
        let mut r = rec(Data::schemaless(s("14/11/2023")));
        let err = c.apply_sink(&mut r).unwrap_err();
        assert!(
            err.message.contains("does not match pattern (yyyy-MM-dd)"),
            "{err}"
        );
        let mut r = rec(Data::schemaless(Value::Int32(1)));
        assert!(
            c.apply_sink(&mut r)
                .unwrap_err()
                .message
                .contains("does not support int32")
        );
        let mut r = rec(Data::with_schema(Schema::boolean(), Value::Boolean(true)).unwrap());
        assert!(
            c.apply_sink(&mut r)
                .unwrap_err()
                .message
                .contains("known timestamp type")
        );
        // A string input without a format.
        let c = conv(&[("transforms.ts.target.type", "unix")]);
        let mut r = rec(Data::schemaless(s("2023")));
        assert!(
            c.apply_sink(&mut r)
                .unwrap_err()
                .message
                .contains("set format")
        );
        // Tombstones pass.
        assert_eq!(sink_value(&c, Data::null()), Data::null());
        let errs = |pairs: &[(&str, &str)]| {
            let mut all = vec![
                ("transforms", "ts"),
                ("transforms.ts.type", "TimestampConverter$Key"),
            ];
            all.extend_from_slice(pairs);
            config_errors(&all)
        };
        let e = errs(&[]);
        assert_eq!(e[0].key, "transforms.ts.target.type");
        assert!(
            e[0].message.contains("missing required key"),
            "{}",
            e[0].message
        );
        let e = errs(&[("transforms.ts.target.type", "date")]);
        assert!(
            e[0].message
                .contains("expected one of string, unix, Date, Time, Timestamp"),
            "{}",
            e[0].message
        );
        let e = errs(&[("transforms.ts.target.type", "string")]);
        assert_eq!(e[0].key, "transforms.ts.format");
        let e = errs(&[
            ("transforms.ts.target.type", "string"),
            ("transforms.ts.format", "yyyy-bb"),
        ]);
        assert!(
            e[0].message.contains("illegal pattern character 'b'"),
            "{}",
            e[0].message
        );
        let e = errs(&[
            ("transforms.ts.target.type", "unix"),
            ("transforms.ts.unix.precision", "hours"),
        ]);
        assert_eq!(e[0].key, "transforms.ts.unix.precision");
    }

    #[test]
    fn router() {
        let c = chain(&[
            ("transforms", "r"),
            (
                "transforms.r.type",
                "org.apache.kafka.connect.transforms.TimestampRouter",
            ),
        ]);
        let mut r = rec(Data::null());
        r.timestamp = Some(T);
        assert!(c.apply_sink(&mut r).unwrap());
        assert_eq!(r.topic, "t-20231114");
        let c = chain(&[
            ("transforms", "r"),
            ("transforms.r.type", "TimestampRouter"),
            (
                "transforms.r.topic.format",
                "${timestamp}.${topic}.${topic}",
            ),
            ("transforms.r.timestamp.format", "yyyy-MM"),
        ]);
        let mut r = rec(Data::null());
        r.timestamp = Some(T);
        c.apply_sink(&mut r).unwrap();
        assert_eq!(r.topic, "2023-11.t.t");
        r.timestamp = None;
        let err = c.apply_sink(&mut r).unwrap_err();
        assert!(err.message.contains("timestamp missing"), "{err}");
        let e = config_errors(&[
            ("transforms", "r"),
            ("transforms.r.type", "TimestampRouter"),
            ("transforms.r.timestamp.format", "'open"),
        ]);
        assert_eq!(e[0].key, "transforms.r.timestamp.format");
    }

    #[test]
    fn router_topics_change_with_the_day_and_the_topic() {
        let c = chain(&[
            ("transforms", "r"),
            ("transforms.r.type", "TimestampRouter"),
        ]);
        // 2023-11-14T23:59:59.999Z, then the next millisecond.
        let last = 1_700_006_399_999;
        for (topic, ts, want) in [
            ("t", last, "t-20231114"),
            ("t", last - 5_000, "t-20231114"),
            ("t", last + 1, "t-20231115"),
            ("u", last + 1, "u-20231115"),
            ("t", last, "t-20231114"),
            ("t", 0, "t-19700101"),
        ] {
            let mut r = rec(Data::null());
            r.topic = topic.to_owned();
            r.timestamp = Some(ts);
            assert!(c.apply_sink(&mut r).unwrap());
            assert_eq!(r.topic, want, "{topic} {ts}");
        }
    }
}
