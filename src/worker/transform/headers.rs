//! The header transforms: `InsertHeader` (a literal value, typed as Kafka's
//! `Values.parseString` types it), `DropHeaders` and `HeaderFrom$Key` / `$Value` (fields
//! copied or moved into headers).

use tributary_plugin_abi::config::{ConfigType, Importance};
use tributary_plugin_abi::data::{Data, Value};
use tributary_plugin_abi::record::Header;

use super::config::{Conf, Dflt, KeySpec, REPLACE_NULL, Valid, key};
use super::fields::both_sides;
use super::{
    Build, ConfigError, Def, Outcome, RecordMut, Side, Transform, field_value, map_get, map_remove,
    require_map, require_struct,
};
use crate::worker::convert::SimpleHeaderConverter;

pub(super) const DEFS: &[Def] = &{
    let from = both_sides!(
        "HeaderFrom",
        "Moves or copies fields in the key/value of a record into that record's headers. \
         Corresponding elements of fields and headers together identify a field and the header \
         it should be moved or copied to.",
        FROM_KEYS,
        HeaderFrom::build
    );
    [
        Def {
            class: "org.apache.kafka.connect.transforms.InsertHeader",
            doc: "Add a header to each record.",
            keys: INSERT_KEYS,
            build: Build::Transform(InsertHeader::build),
        },
        Def {
            class: "org.apache.kafka.connect.transforms.DropHeaders",
            doc: "Removes one or more headers from each record.",
            keys: DROP_KEYS,
            build: Build::Transform(DropHeaders::build),
        },
        from[0],
        from[1],
    ]
};

const INSERT_KEYS: &[KeySpec] = &[
    key(
        "header",
        ConfigType::String,
        Dflt::Required,
        Importance::High,
        Valid::Any,
        "The name of the header.",
    ),
    key(
        "value.literal",
        ConfigType::String,
        Dflt::Required,
        Importance::High,
        Valid::Any,
        "The literal value that is to be set as the header value on all records.",
    ),
];

/// `InsertHeader`.
#[derive(Debug)]
pub(super) struct InsertHeader {
    header: String,
    value: Data,
}

impl InsertHeader {
    fn build(c: &Conf<'_>) -> Result<Box<dyn Transform>, ConfigError> {
        Ok(Box::new(InsertHeader {
            header: c.required("header")?,
            value: SimpleHeaderConverter::parse_string(&c.required("value.literal")?),
        }))
    }
}

impl Transform for InsertHeader {
    fn apply(&self, r: &mut RecordMut<'_>) -> Outcome {
        r.headers.push(Header {
            key: self.header.clone(),
            value: self.value.clone(),
        });
        Ok(true)
    }
}

const DROP_KEYS: &[KeySpec] = &[key(
    "headers",
    ConfigType::List,
    Dflt::Required,
    Importance::High,
    Valid::NonEmptyList,
    "The name of the headers to be removed.",
)];

/// `DropHeaders`.
#[derive(Debug)]
pub(super) struct DropHeaders {
    headers: Vec<String>,
}

impl DropHeaders {
    fn build(c: &Conf<'_>) -> Result<Box<dyn Transform>, ConfigError> {
        Ok(Box::new(DropHeaders {
            headers: c.list("headers"),
        }))
    }
}

impl Transform for DropHeaders {
    fn apply(&self, r: &mut RecordMut<'_>) -> Outcome {
        r.headers.retain(|h| !self.headers.contains(&h.key));
        Ok(true)
    }
}

const FROM_KEYS: &[KeySpec] = &[
    key(
        "fields",
        ConfigType::List,
        Dflt::Required,
        Importance::High,
        Valid::NonEmptyList,
        "Field names in the record whose values are to be copied or moved to headers.",
    ),
    key(
        "headers",
        ConfigType::List,
        Dflt::Required,
        Importance::High,
        Valid::NonEmptyList,
        "Header names, in the same order as the field names listed in the fields configuration \
         property.",
    ),
    key(
        "operation",
        ConfigType::String,
        Dflt::Required,
        Importance::High,
        Valid::OneOf(&["move", "copy"]),
        "Either move if the fields are to be moved to the headers (removed from the key/value), \
         or copy if the fields are to be copied to the headers (retained in the key/value).",
    ),
    REPLACE_NULL,
];

/// `HeaderFrom$Key` / `HeaderFrom$Value`.
#[derive(Debug)]
pub(super) struct HeaderFrom {
    side: Side,
    /// (field, header) pairs.
    pairs: Vec<(String, String)>,
    moving: bool,
    replace_null: bool,
}

impl HeaderFrom {
    fn build(c: &Conf<'_>, side: Side) -> Result<Box<dyn Transform>, ConfigError> {
        let fields = c.list("fields");
        let headers = c.list("headers");
        if fields.len() != headers.len() {
            return Err(c.err(
                "headers",
                format!(
                    "'fields' config must have the same number of elements as 'headers' config \
                     ({} fields, {} headers)",
                    fields.len(),
                    headers.len()
                ),
            ));
        }
        Ok(Box::new(HeaderFrom {
            side,
            pairs: fields.into_iter().zip(headers).collect(),
            moving: c.string("operation").as_deref() == Some("move"),
            replace_null: c.boolean("replace.null.with.default"),
        }))
    }
}

impl Transform for HeaderFrom {
    fn apply(&self, r: &mut RecordMut<'_>) -> Outcome {
        let purpose = if self.moving {
            "header move"
        } else {
            "header copy"
        };
        let data = self.side.pick(&mut *r.key, &mut *r.value);
        if data.schema.is_none() {
            let m = require_map(&mut data.value, purpose)?;
            for (field, header) in &self.pairs {
                let v = if self.moving {
                    map_remove(m, field)
                } else {
                    map_get(m, field).cloned()
                };
                r.headers.push(Header {
                    key: header.clone(),
                    value: Data::schemaless(v.unwrap_or(Value::Null)),
                });
            }
            return Ok(true);
        }
        let (schema, values) = require_struct(data, purpose)?;
        for (field, header) in &self.pairs {
            let i = schema.field_index(field).ok_or_else(|| {
                format!("field {field} is not in the schema of the record; {purpose} needs it")
            })?;
            let f = &schema.fields[i];
            r.headers.push(Header {
                key: header.clone(),
                value: Data {
                    schema: Some(f.schema.clone()),
                    value: field_value(f, &values[i], self.replace_null),
                },
            });
        }
        if self.moving {
            let moved = |name: &str| self.pairs.iter().any(|(f, _)| f == name);
            let mut keep = schema.fields.iter().map(|f| !moved(&f.name));
            values.retain(|_| keep.next().unwrap_or(true));
            schema.fields.retain(|f| !moved(&f.name));
            for (f, v) in schema.fields.iter().zip(values.iter_mut()) {
                *v = field_value(f, v, self.replace_null);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use tributary_plugin_abi::data::{Data, Schema, Value};
    use tributary_plugin_abi::record::Header;

    use super::super::tests::{chain, config_errors, map, rec, s};

    #[test]
    fn insert_header_types_the_literal() {
        for (literal, expected) in [
            ("hello", Data::string("hello")),
            (
                "42",
                Data::with_schema(Schema::int8(), Value::Int8(42)).unwrap(),
            ),
            (
                "true",
                Data::with_schema(Schema::boolean(), Value::Boolean(true)).unwrap(),
            ),
        ] {
            let c = chain(&[
                ("transforms", "h"),
                (
                    "transforms.h.type",
                    "org.apache.kafka.connect.transforms.InsertHeader",
                ),
                ("transforms.h.header", "source"),
                ("transforms.h.value.literal", literal),
            ]);
            let mut r = rec(Data::null());
            c.apply_sink(&mut r).unwrap();
            assert_eq!(
                r.headers,
                vec![Header {
                    key: "source".into(),
                    value: expected
                }],
                "{literal}"
            );
        }
        let e = config_errors(&[("transforms", "h"), ("transforms.h.type", "InsertHeader")]);
        let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["transforms.h.header", "transforms.h.value.literal"]);
    }

    #[test]
    fn drop_headers_removes_every_one_named() {
        let c = chain(&[
            ("transforms", "d"),
            ("transforms.d.type", "DropHeaders"),
            ("transforms.d.headers", "a, b"),
        ]);
        let mut r = rec(Data::null())
            .with_header("a", Data::string("1"))
            .with_header("c", Data::string("2"))
            .with_header("a", Data::string("3"))
            .with_header("b", Data::null());
        c.apply_sink(&mut r).unwrap();
        assert_eq!(
            r.headers.iter().map(|h| h.key.as_str()).collect::<Vec<_>>(),
            ["c"]
        );
        let e = config_errors(&[
            ("transforms", "d"),
            ("transforms.d.type", "DropHeaders"),
            ("transforms.d.headers", " "),
        ]);
        assert!(e[0].message.contains("non-empty"), "{}", e[0].message);
    }

    fn header_from(op: &str, side: &str) -> super::super::Chain {
        chain(&[
            ("transforms", "hf"),
            (
                "transforms.hf.type",
                &format!("org.apache.kafka.connect.transforms.HeaderFrom${side}"),
            ),
            ("transforms.hf.fields", "id,missing"),
            ("transforms.hf.headers", "h-id,h-missing"),
            ("transforms.hf.operation", op),
        ])
    }

    #[test]
    fn header_from_schemaless() {
        let v = || Data::schemaless(map(vec![("id", Value::Int32(7)), ("x", s("y"))]));
        let mut r = rec(v());
        header_from("copy", "Value").apply_sink(&mut r).unwrap();
        assert_eq!(r.value, v());
        assert_eq!(
            r.headers[0],
            Header {
                key: "h-id".into(),
                value: Data::schemaless(Value::Int32(7))
            }
        );
        assert_eq!(
            r.headers[1],
            Header {
                key: "h-missing".into(),
                value: Data::null()
            }
        );
        let mut r = rec(Data::null());
        r.key = v();
        header_from("move", "Key").apply_sink(&mut r).unwrap();
        assert_eq!(r.key.value, map(vec![("x", s("y"))]));
        assert_eq!(r.headers.len(), 2);
    }

    #[test]
    fn header_from_with_schema() {
        let schema = Schema::structure()
            .field("id", Schema::int32())
            .field("missing", Schema::string().optional())
            .field("x", Schema::string());
        let v = || {
            Data::with_schema(
                schema.clone(),
                Value::Struct(vec![Value::Int32(7), Value::Null, s("y")]),
            )
            .unwrap()
        };
        let mut r = rec(v());
        header_from("move", "Value").apply_sink(&mut r).unwrap();
        assert_eq!(r.value.value, Value::Struct(vec![s("y")]));
        assert_eq!(r.value.schema.as_ref().unwrap().fields.len(), 1);
        r.value.validate().unwrap();
        assert_eq!(
            r.headers[0].value,
            Data::with_schema(Schema::int32(), Value::Int32(7)).unwrap()
        );
        assert_eq!(r.headers[1].value.value, Value::Null);
        let mut r = rec(v());
        header_from("copy", "Value").apply_sink(&mut r).unwrap();
        assert_eq!(r.value, v());
        // A field the schema lacks.
        let mut r = rec(Data::with_schema(
            Schema::structure().field("id", Schema::int32()),
            Value::Struct(vec![Value::Int32(1)]),
        )
        .unwrap());
        let err = header_from("copy", "Value").apply_sink(&mut r).unwrap_err();
        assert!(err.message.contains("missing"), "{err}");
        let e = config_errors(&[
            ("transforms", "hf"),
            ("transforms.hf.type", "HeaderFrom$Value"),
            ("transforms.hf.fields", "a,b"),
            ("transforms.hf.headers", "a"),
            ("transforms.hf.operation", "copy"),
        ]);
        assert!(
            e[0].message.contains("same number of elements"),
            "{}",
            e[0].message
        );
        let e = config_errors(&[
            ("transforms", "hf"),
            ("transforms.hf.type", "HeaderFrom$Value"),
            ("transforms.hf.fields", "a"),
            ("transforms.hf.headers", "a"),
            ("transforms.hf.operation", "swap"),
        ]);
        assert_eq!(e[0].key, "transforms.hf.operation");
    }
}
