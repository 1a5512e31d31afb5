//! `Flatten$Key` / `Flatten$Value`: nested structs (with a schema) or maps (without) become
//! one level, field names joined with `delimiter` (default `.`); arrays are kept as they
//! are. With a schema, a field under an optional struct becomes optional, and takes its
//! default from the parent's default when it has none of its own (Kafka's rules).

use tributary_plugin_abi::config::{ConfigType, Importance};
use tributary_plugin_abi::data::{Field, Schema, SchemaType, Value};

use super::config::{Conf, Dflt, KeySpec, Valid, key};
use super::fields::both_sides;
use super::{Build, ConfigError, Def, Outcome, RecordMut, Side, Transform, require_map, type_name};

pub(super) const DEFS: &[Def] = &both_sides!(
    "Flatten",
    "Flatten a nested data structure, generating names for each field by concatenating the \
     field names at each level with a configurable delimiter character. Applies to Struct when \
     schema present, or a Map in the case of schemaless data. Array fields and their contents \
     are not modified. The default delimiter is '.'.",
    KEYS,
    Flatten::build
);

const KEYS: &[KeySpec] = &[key(
    "delimiter",
    ConfigType::String,
    Dflt::Val("."),
    Importance::Medium,
    Valid::Any,
    "Delimiter to insert between field names from the input record when generating field names \
     for the output record",
)];

#[derive(Debug)]
pub(super) struct Flatten {
    side: Side,
    delimiter: String,
}

impl Flatten {
    fn build(c: &Conf<'_>, side: Side) -> Result<Box<dyn Transform>, ConfigError> {
        Ok(Box::new(Flatten {
            side,
            // Kafka trims config strings; an all-blank delimiter is then "", as there.
            delimiter: c.string("delimiter").unwrap_or_default(),
        }))
    }

    fn name(&self, prefix: &str, field: &str) -> String {
        if prefix.is_empty() {
            field.to_owned()
        } else {
            format!("{prefix}{}{field}", self.delimiter)
        }
    }

    fn schemaless(
        &self,
        entries: Vec<(Value, Value)>,
        prefix: &str,
        out: &mut Vec<(Value, Value)>,
        depth: usize,
    ) -> Result<(), String> {
        if depth > tributary_plugin_abi::data::MAX_DEPTH {
            return Err("map nested too deeply to flatten".into());
        }
        for (k, v) in entries {
            let Value::String(k) = k else {
                return Err(format!(
                    "flattening without a schema needs string map keys, found a {} key",
                    type_name(&k)
                ));
            };
            let name = self.name(prefix, &k);
            match v {
                Value::Map(inner) => self.schemaless(inner, &name, out, depth + 1)?,
                Value::Struct(_) => {
                    return Err(format!(
                        "flatten does not support a struct without a schema (for field {name})"
                    ));
                }
                other => super::map_put(out, &name, other),
            }
        }
        Ok(())
    }

    /// The flat fields of `schema` under `prefix`.
    fn schema(
        &self,
        schema: &Schema,
        prefix: &str,
        optional: bool,
        parent_default: Option<&Value>,
        out: &mut Schema,
        depth: usize,
    ) -> Result<(), String> {
        if depth > tributary_plugin_abi::data::MAX_DEPTH {
            return Err("struct nested too deeply to flatten".into());
        }
        for (i, f) in schema.fields.iter().enumerate() {
            let name = self.name(prefix, &f.name);
            let field_optional = optional || f.schema.optional;
            let default = match (&f.schema.default, parent_default) {
                (Some(d), _) => Some((**d).clone()),
                (None, Some(Value::Struct(values))) => values.get(i).cloned(),
                _ => None,
            };
            match f.schema.kind {
                SchemaType::Struct => self.schema(
                    &f.schema,
                    &name,
                    field_optional,
                    default.as_ref(),
                    out,
                    depth + 1,
                )?,
                SchemaType::Map => {
                    return Err(format!(
                        "flatten does not support map for record with schemas (for field {name})"
                    ));
                }
                _ => {
                    let mut s = f.schema.clone();
                    s.optional = field_optional;
                    if let Some(d) = default.filter(|d| *d != Value::Null) {
                        s.default = Some(Box::new(d));
                    }
                    super::push_field(out, &name, s)?;
                }
            }
        }
        Ok(())
    }

    fn values(&self, fields: &[Field], values: Vec<Value>, out: &mut Vec<Value>) {
        for (f, v) in fields.iter().zip(values) {
            if f.schema.kind == SchemaType::Struct {
                match v {
                    Value::Struct(inner) => self.values(&f.schema.fields, inner, out),
                    // A null struct: its fields are null (or their defaults).
                    _ => self.nulls(&f.schema, out),
                }
            } else {
                out.push(super::field_value(f, &v, true));
            }
        }
    }

    fn nulls(&self, schema: &Schema, out: &mut Vec<Value>) {
        for f in &schema.fields {
            if f.schema.kind == SchemaType::Struct {
                self.nulls(&f.schema, out);
            } else {
                out.push(Value::Null);
            }
        }
    }
}

impl Transform for Flatten {
    fn apply(&self, r: &mut RecordMut<'_>) -> Outcome {
        const PURPOSE: &str = "flattening";
        let data = self.side.pick(&mut *r.key, &mut *r.value);
        if data.value == Value::Null {
            return Ok(true);
        }
        let Some(schema) = &data.schema else {
            let entries = std::mem::take(require_map(&mut data.value, PURPOSE)?);
            let mut out = Vec::with_capacity(entries.len());
            self.schemaless(entries, "", &mut out, 0)?;
            data.value = Value::Map(out);
            return Ok(true);
        };
        if schema.kind != SchemaType::Struct || !matches!(data.value, Value::Struct(_)) {
            return Err(super::require_struct(data, PURPOSE)
                .err()
                .unwrap_or_default());
        }
        let mut flat = Schema::structure();
        flat.name = schema.name.clone();
        flat.version = schema.version;
        flat.doc = schema.doc.clone();
        flat.parameters = schema.parameters.clone();
        flat.optional = schema.optional;
        self.schema(
            schema,
            "",
            schema.optional,
            schema.default.as_deref(),
            &mut flat,
            0,
        )?;
        let Value::Struct(values) = std::mem::replace(&mut data.value, Value::Null) else {
            return Ok(true);
        };
        let mut out = Vec::with_capacity(flat.fields.len());
        self.values(&schema.fields, values, &mut out);
        // Defaults of the flat schema (from parents) apply to the nulls left.
        for (f, v) in flat.fields.iter().zip(out.iter_mut()) {
            if *v == Value::Null
                && let Some(d) = &f.schema.default
            {
                *v = (**d).clone();
            }
        }
        data.schema = Some(flat);
        data.value = Value::Struct(out);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use tributary_plugin_abi::data::{Data, Schema, Value};

    use super::super::tests::{chain, map, rec, s, sink_value};

    #[test]
    fn schemaless_nested_maps_join_names_and_keep_arrays() {
        let c = chain(&[("transforms", "f"), ("transforms.f.type", "Flatten$Value")]);
        let v = map(vec![
            (
                "a",
                map(vec![
                    ("b", Value::Int32(1)),
                    ("c", map(vec![("d", s("x"))])),
                ]),
            ),
            ("arr", Value::Array(vec![map(vec![("z", Value::Int8(1))])])),
            ("n", Value::Null),
        ]);
        let out = sink_value(&c, Data::schemaless(v));
        assert_eq!(
            out.value,
            map(vec![
                ("a.b", Value::Int32(1)),
                ("a.c.d", s("x")),
                ("arr", Value::Array(vec![map(vec![("z", Value::Int8(1))])])),
                ("n", Value::Null),
            ])
        );
    }

    #[test]
    fn delimiter_and_key_variant() {
        let c = chain(&[
            ("transforms", "f"),
            (
                "transforms.f.type",
                "org.apache.kafka.connect.transforms.Flatten$Key",
            ),
            ("transforms.f.delimiter", "_"),
        ]);
        let mut r = rec(Data::null());
        r.key = Data::schemaless(map(vec![("a", map(vec![("b", Value::Int32(1))]))]));
        assert!(c.apply_sink(&mut r).unwrap());
        assert_eq!(r.key.value, map(vec![("a_b", Value::Int32(1))]));
    }

    #[test]
    fn schema_nested_structs_optional_and_defaults() {
        let inner = Schema::structure()
            .field("x", Schema::int32())
            .field("y", Schema::string().optional())
            .optional();
        let schema = Schema::structure()
            .named("Outer")
            .field("id", Schema::int64())
            .field("in", inner.clone())
            .field("tags", Schema::array(Schema::string()));
        let c = chain(&[("transforms", "f"), ("transforms.f.type", "Flatten$Value")]);
        let value = Value::Struct(vec![
            Value::Int64(7),
            Value::Struct(vec![Value::Int32(3), s("why")]),
            Value::Array(vec![s("t")]),
        ]);
        let out = sink_value(&c, Data::with_schema(schema.clone(), value).unwrap());
        let flat = out.schema.clone().unwrap();
        assert_eq!(flat.name.as_deref(), Some("Outer"));
        let names: Vec<&str> = flat.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["id", "in.x", "in.y", "tags"]);
        // x was required, but its parent struct is optional.
        assert!(flat.fields[1].schema.optional);
        assert!(!flat.fields[0].schema.optional);
        assert_eq!(
            out.value,
            Value::Struct(vec![
                Value::Int64(7),
                Value::Int32(3),
                s("why"),
                Value::Array(vec![s("t")])
            ])
        );
        out.validate().unwrap();
        // A null inner struct: its fields are null.
        let out = sink_value(
            &c,
            Data::with_schema(
                schema,
                Value::Struct(vec![Value::Int64(1), Value::Null, Value::Array(vec![])]),
            )
            .unwrap(),
        );
        assert_eq!(
            out.value,
            Value::Struct(vec![
                Value::Int64(1),
                Value::Null,
                Value::Null,
                Value::Array(vec![])
            ])
        );
        out.validate().unwrap();
    }

    #[test]
    fn errors_and_tombstones() {
        let c = chain(&[("transforms", "f"), ("transforms.f.type", "Flatten$Value")]);
        // A tombstone passes as it is.
        assert_eq!(sink_value(&c, Data::null()), Data::null());
        let mut r = rec(Data::string("text"));
        let err = c.apply_sink(&mut r).unwrap_err();
        assert!(err.message.contains("needs a struct"), "{err}");
        let with_map =
            Schema::structure().field("m", Schema::map(Schema::string(), Schema::int32()));
        let mut r =
            rec(Data::with_schema(with_map, Value::Struct(vec![Value::Map(vec![])])).unwrap());
        let err = c.apply_sink(&mut r).unwrap_err();
        assert!(err.message.contains("does not support map"), "{err}");
        let mut r = rec(Data::schemaless(Value::Map(vec![(
            Value::Int32(1),
            Value::Null,
        )])));
        assert!(
            c.apply_sink(&mut r)
                .unwrap_err()
                .message
                .contains("string map keys")
        );
    }
}
