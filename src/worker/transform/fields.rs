//! The transforms that add, drop, rename, mask, move or wrap fields of a key or value:
//! InsertField, ReplaceField, MaskField, ValueToKey, ExtractField, HoistField and
//! SetSchemaMetadata. Each works on a struct with its schema, or on a map without one, as
//! Kafka's does. InsertField and ReplaceField derive their output schema once per input
//! schema ([`Derived`]), so the records of one source share one output schema; the others
//! change the record's schema in place (copied first if it is shared).

use std::sync::Arc;

use tributary_plugin_abi::config::{ConfigType, Importance};
use tributary_plugin_abi::data::{Data, Field, Schema, SchemaType, Value, logical};

use super::config::{Conf, Dflt, KeySpec, REPLACE_NULL, Valid, key};
use super::{
    Build, ConfigError, Def, Derived, Outcome, RecordMut, Side, Transform, default_nulls,
    field_value, map_get, map_put, push_field, require_map, require_struct, type_name,
};

macro_rules! both_sides {
    ($name:literal, $doc:expr, $keys:expr, $build:path) => {
        [
            Def {
                class: concat!("org.apache.kafka.connect.transforms.", $name, "$Key"),
                doc: $doc,
                keys: $keys,
                build: Build::Transform(|c| $build(c, Side::Key)),
            },
            Def {
                class: concat!("org.apache.kafka.connect.transforms.", $name, "$Value"),
                doc: $doc,
                keys: $keys,
                build: Build::Transform(|c| $build(c, Side::Value)),
            },
        ]
    };
}
pub(super) use both_sides;

pub(super) const DEFS: &[Def] = &{
    let insert = both_sides!(
        "InsertField",
        "Insert field(s) using attributes from the record metadata or a configured static value.",
        INSERT_KEYS,
        InsertField::build
    );
    let replace = both_sides!(
        "ReplaceField",
        "Filter or rename fields.",
        REPLACE_KEYS,
        ReplaceField::build
    );
    let mask = both_sides!(
        "MaskField",
        "Mask specified fields with a valid null value for the field type (i.e. 0, false, empty \
         string, and so on); for numeric and string fields, an optional replacement value can \
         be specified that is converted to the correct type.",
        MASK_KEYS,
        MaskField::build
    );
    let extract = both_sides!(
        "ExtractField",
        "Extract the specified field from a Struct when schema present, or a Map in the case of \
         schemaless data. Any null values are passed through unmodified.",
        EXTRACT_KEYS,
        ExtractField::build
    );
    let hoist = both_sides!(
        "HoistField",
        "Wrap data using the specified field name in a Struct when schema present, or a Map in \
         the case of schemaless data.",
        HOIST_KEYS,
        HoistField::build
    );
    let meta = both_sides!(
        "SetSchemaMetadata",
        "Set the schema name, version or both on the record's key or value schema.",
        META_KEYS,
        SetSchemaMetadata::build
    );
    [
        insert[0],
        insert[1],
        replace[0],
        replace[1],
        mask[0],
        mask[1],
        Def {
            class: "org.apache.kafka.connect.transforms.ValueToKey",
            doc: "Replace the record key with a new key formed from a subset of fields in the \
                  record value.",
            keys: VALUE_TO_KEY_KEYS,
            build: Build::Transform(ValueToKey::build),
        },
        extract[0],
        extract[1],
        hoist[0],
        hoist[1],
        meta[0],
        meta[1],
    ]
};

const INSERT_KEYS: &[KeySpec] = &[
    key(
        "topic.field",
        ConfigType::String,
        Dflt::Null,
        Importance::Medium,
        Valid::Any,
        "Field name for Kafka topic. Suffix with ! to make this a required field, or ? to keep \
         it optional (the default).",
    ),
    key(
        "partition.field",
        ConfigType::String,
        Dflt::Null,
        Importance::Medium,
        Valid::Any,
        "Field name for Kafka partition. Suffix with ! to make this a required field, or ? to \
         keep it optional (the default).",
    ),
    key(
        "offset.field",
        ConfigType::String,
        Dflt::Null,
        Importance::Medium,
        Valid::Any,
        "Field name for Kafka offset - only applicable to sink connectors. Suffix with ! to \
         make this a required field, or ? to keep it optional (the default).",
    ),
    key(
        "timestamp.field",
        ConfigType::String,
        Dflt::Null,
        Importance::Medium,
        Valid::Any,
        "Field name for record timestamp. Suffix with ! to make this a required field, or ? to \
         keep it optional (the default).",
    ),
    key(
        "static.field",
        ConfigType::String,
        Dflt::Null,
        Importance::Medium,
        Valid::Any,
        "Field name for static data field. Suffix with ! to make this a required field, or ? to \
         keep it optional (the default).",
    ),
    key(
        "static.value",
        ConfigType::String,
        Dflt::Null,
        Importance::Medium,
        Valid::Any,
        "Static field value, if field name configured.",
    ),
    REPLACE_NULL,
];

/// A field to insert: `name`, `name?` (optional, the default) or `name!` (required).
#[derive(Debug, Clone)]
struct Spec {
    name: String,
    optional: bool,
}

impl Spec {
    fn parse(s: Option<String>) -> Option<Spec> {
        let s = s?;
        Some(if let Some(n) = s.strip_suffix('?') {
            Spec {
                name: n.into(),
                optional: true,
            }
        } else if let Some(n) = s.strip_suffix('!') {
            Spec {
                name: n.into(),
                optional: false,
            }
        } else {
            Spec {
                name: s,
                optional: true,
            }
        })
    }

    fn schema(&self, s: Schema) -> Schema {
        if self.optional { s.optional() } else { s }
    }
}

/// `InsertField$Key` / `InsertField$Value`.
#[derive(Debug)]
pub(super) struct InsertField {
    side: Side,
    topic: Option<Spec>,
    partition: Option<Spec>,
    offset: Option<Spec>,
    timestamp: Option<Spec>,
    static_field: Option<(Spec, String)>,
    replace_null: bool,
    /// The output schema per input schema.
    schemas: Derived<Schema>,
}

impl InsertField {
    /// The fields this inserts, in order, with their schemas.
    fn inserted(&self) -> impl Iterator<Item = (&Spec, Schema)> {
        [
            self.topic.as_ref().map(|f| (f, Schema::string())),
            self.partition.as_ref().map(|f| (f, Schema::int32())),
            self.offset.as_ref().map(|f| (f, Schema::int64())),
            self.timestamp
                .as_ref()
                .map(|f| (f, logical::timestamp_schema())),
            self.static_field
                .as_ref()
                .map(|(f, _)| (f, Schema::string())),
        ]
        .into_iter()
        .flatten()
        .map(|(f, s)| (f, f.schema(s)))
    }

    fn build(c: &Conf<'_>, side: Side) -> Result<Box<dyn Transform>, ConfigError> {
        let spec = |k| Spec::parse(c.string(k).filter(|s| !s.is_empty()));
        let static_field = match (spec("static.field"), c.string("static.value")) {
            (Some(f), Some(v)) => Some((f, v)),
            (Some(f), None) => {
                return Err(c.err(
                    "static.value",
                    format!(
                        "no value specified for static field {}; set static.value",
                        f.name
                    ),
                ));
            }
            (None, _) => None,
        };
        let t = InsertField {
            side,
            topic: spec("topic.field"),
            partition: spec("partition.field"),
            offset: spec("offset.field"),
            timestamp: spec("timestamp.field"),
            static_field,
            replace_null: c.boolean("replace.null.with.default"),
            schemas: Derived::default(),
        };
        if t.topic.is_none()
            && t.partition.is_none()
            && t.offset.is_none()
            && t.timestamp.is_none()
            && t.static_field.is_none()
        {
            return Err(c.err(
                "topic.field",
                "no field insertion configured; set at least one of topic.field, \
                 partition.field, offset.field, timestamp.field, static.field",
            ));
        }
        Ok(Box::new(t))
    }
}

const INSERTION: &str = "field insertion";

impl Transform for InsertField {
    fn apply(&self, r: &mut RecordMut<'_>) -> Outcome {
        let data = self.side.pick(&mut *r.key, &mut *r.value);
        if matches!(data.value, Value::Null) {
            return Ok(true);
        }
        let offset = match &self.offset {
            Some(_) => Some(r.offset.ok_or(
                "offset.field only applies to sink records (a source record has no Kafka offset \
                 yet); remove it from a source connector's transform",
            )?),
            None => None,
        };
        if data.schema.is_none() {
            let m = require_map(&mut data.value, INSERTION)?;
            if let Some(f) = &self.topic {
                map_put(m, &f.name, Value::String(r.topic.clone()));
            }
            if let (Some(f), Some(p)) = (&self.partition, r.partition) {
                map_put(m, &f.name, Value::Int32(p));
            }
            if let (Some(f), Some(o)) = (&self.offset, offset) {
                map_put(m, &f.name, Value::Int64(o));
            }
            if let (Some(f), Some(t)) = (&self.timestamp, r.timestamp) {
                map_put(m, &f.name, Value::Int64(t));
            }
            if let Some((f, v)) = &self.static_field {
                map_put(m, &f.name, Value::String(v.clone()));
            }
            return Ok(true);
        }
        let (schema, values) = require_struct(data, INSERTION)?;
        default_nulls(&schema.fields, values, self.replace_null);
        let out = self.schemas.get(schema, |input| {
            let mut out = input.clone();
            for (f, s) in self.inserted() {
                push_field(&mut out, &f.name, s)?;
            }
            Ok(out)
        })?;
        values.reserve_exact(out.fields.len().saturating_sub(values.len()));
        let mut add = |spec: &Spec, v: Option<Value>| -> Result<(), String> {
            if !spec.optional && v.is_none() {
                return Err(format!(
                    "the record has no value for the required field {} (drop the ! to make it \
                     optional)",
                    spec.name
                ));
            }
            values.push(v.unwrap_or(Value::Null));
            Ok(())
        };
        if let Some(f) = &self.topic {
            add(f, Some(Value::String(r.topic.clone())))?;
        }
        if let Some(f) = &self.partition {
            add(f, r.partition.map(Value::Int32))?;
        }
        if let Some(f) = &self.offset {
            add(f, offset.map(Value::Int64))?;
        }
        if let Some(f) = &self.timestamp {
            add(f, r.timestamp.map(Value::Int64))?;
        }
        if let Some((f, v)) = &self.static_field {
            add(f, Some(Value::String(v.clone())))?;
        }
        *schema = out;
        Ok(true)
    }
}

const REPLACE_KEYS: &[KeySpec] = &[
    key(
        "exclude",
        ConfigType::List,
        Dflt::Val(""),
        Importance::Medium,
        Valid::Any,
        "Fields to exclude. This takes precedence over the fields to include.",
    ),
    key(
        "include",
        ConfigType::List,
        Dflt::Val(""),
        Importance::Medium,
        Valid::Any,
        "Fields to include. If specified, only these fields will be used.",
    ),
    key(
        "renames",
        ConfigType::List,
        Dflt::Val(""),
        Importance::Medium,
        Valid::Any,
        "Field rename mappings: a list of colon-delimited pairs, e.g. foo:bar,abc:xyz.",
    ),
    REPLACE_NULL,
    key(
        "blacklist",
        ConfigType::List,
        Dflt::Null,
        Importance::Low,
        Valid::Any,
        "Deprecated name of exclude (Kafka 3.x and before); exclude wins when both are set.",
    ),
    key(
        "whitelist",
        ConfigType::List,
        Dflt::Null,
        Importance::Low,
        Valid::Any,
        "Deprecated name of include (Kafka 3.x and before); include wins when both are set.",
    ),
];

/// `ReplaceField$Key` / `ReplaceField$Value`.
#[derive(Debug)]
pub(super) struct ReplaceField {
    side: Side,
    exclude: Vec<String>,
    include: Vec<String>,
    renames: Vec<(String, String)>,
    replace_null: bool,
    /// Per input schema: the output schema, and the input position of each output field.
    schemas: Derived<(Schema, Arc<[usize]>)>,
}

impl ReplaceField {
    fn build(c: &Conf<'_>, side: Side) -> Result<Box<dyn Transform>, ConfigError> {
        // The deprecated names apply only when the new ones are not set (as Kafka's
        // `translateDeprecatedConfigs`).
        let either = |new: &str, old: &str| {
            if c.raw(new).is_some() {
                c.list(new)
            } else {
                c.list(old)
            }
        };
        let mut renames = Vec::new();
        for m in c.list("renames") {
            match m.split(':').collect::<Vec<_>>()[..] {
                [from, to] => renames.push((from.to_owned(), to.to_owned())),
                _ => {
                    return Err(c.err(
                        "renames",
                        format!("invalid rename mapping {m:?}; write old:new pairs, e.g. foo:bar,abc:xyz"),
                    ));
                }
            }
        }
        Ok(Box::new(ReplaceField {
            side,
            exclude: either("exclude", "blacklist"),
            include: either("include", "whitelist"),
            renames,
            replace_null: c.boolean("replace.null.with.default"),
            schemas: Derived::default(),
        }))
    }

    fn keep(&self, name: &str) -> bool {
        !self.exclude.iter().any(|e| e == name)
            && (self.include.is_empty() || self.include.iter().any(|i| i == name))
    }

    fn renamed<'n>(&'n self, name: &'n str) -> &'n str {
        self.renames
            .iter()
            .find(|(from, _)| from == name)
            .map_or(name, |(_, to)| to.as_str())
    }
}

impl Transform for ReplaceField {
    fn apply(&self, r: &mut RecordMut<'_>) -> Outcome {
        const PURPOSE: &str = "field replacement";
        let data = self.side.pick(&mut *r.key, &mut *r.value);
        if matches!(data.value, Value::Null) {
            return Ok(true);
        }
        if data.schema.is_none() {
            let m = require_map(&mut data.value, PURPOSE)?;
            let mut out = Vec::with_capacity(m.len());
            for (k, v) in std::mem::take(m) {
                match k {
                    Value::String(name) => {
                        if self.keep(&name) {
                            map_put(&mut out, self.renamed(&name), v);
                        }
                    }
                    // Not a field name: only an include list can leave it out.
                    other => {
                        if self.include.is_empty() {
                            out.push((other, v));
                        }
                    }
                }
            }
            *m = out;
            return Ok(true);
        }
        let (schema, values) = require_struct(data, PURPOSE)?;
        let (out, kept) = self.schemas.get(schema, |input| {
            let mut out = input.clone();
            out.fields.clear();
            let mut kept = Vec::with_capacity(input.fields.len());
            for (i, f) in input.fields.iter().enumerate() {
                if !self.keep(&f.name) {
                    continue;
                }
                let name = self.renamed(&f.name);
                if out.field_index(name).is_some() {
                    return Err(format!(
                        "cannot create field because of field name duplication: {name}"
                    ));
                }
                out.fields.push(Field {
                    name: name.to_owned(),
                    schema: f.schema.clone(),
                });
                kept.push(i);
            }
            Ok((out, kept.into()))
        })?;
        let replace = |i: usize, v: &mut Value| {
            if self.replace_null
                && matches!(v, Value::Null)
                && let Some(d) = &schema.fields[i].schema.default
            {
                *v = (**d).clone();
            }
        };
        if kept.len() == values.len() && values.len() == schema.fields.len() {
            // Every field kept (renames only): the values stay where they are (`kept`
            // ascends over the schema's fields, so it is 0..n).
            for (i, v) in values.iter_mut().enumerate() {
                replace(i, v);
            }
        } else {
            // The kept values are moved, not copied (`kept` ascends).
            let mut next = kept.iter().peekable();
            let old = std::mem::replace(values, Vec::with_capacity(kept.len()));
            for (i, mut v) in old.into_iter().enumerate() {
                if next.next_if(|&&k| k == i).is_none() {
                    continue;
                }
                replace(i, &mut v);
                values.push(v);
            }
        }
        *schema = out;
        Ok(true)
    }
}

const MASK_KEYS: &[KeySpec] = &[
    key(
        "fields",
        ConfigType::List,
        Dflt::Required,
        Importance::High,
        Valid::NonEmptyList,
        "Names of fields to mask.",
    ),
    key(
        "replacement",
        ConfigType::String,
        Dflt::Null,
        Importance::Low,
        Valid::NonEmptyString,
        "Custom value replacement, that will be applied to all 'fields' values (numeric or \
         non-empty string values only).",
    ),
    REPLACE_NULL,
];

/// `MaskField$Key` / `MaskField$Value`.
#[derive(Debug)]
pub(super) struct MaskField {
    side: Side,
    fields: Vec<String>,
    replacement: Option<String>,
    replace_null: bool,
}

impl MaskField {
    fn build(c: &Conf<'_>, side: Side) -> Result<Box<dyn Transform>, ConfigError> {
        Ok(Box::new(MaskField {
            side,
            fields: c.list("fields"),
            replacement: c.string("replacement"),
            replace_null: c.boolean("replace.null.with.default"),
        }))
    }

    /// A value masked as Kafka masks it: the type's "zero", or the replacement converted
    /// to the value's type.
    fn masked(&self, v: &Value, schema: Option<&Schema>) -> Result<Value, String> {
        let name = schema.and_then(|s| s.name.as_deref());
        let decimal_scale = match name {
            Some(logical::DECIMAL) => schema.and_then(logical::decimal_scale),
            _ => None,
        };
        let is_date = matches!(
            name,
            Some(logical::DATE | logical::TIME | logical::TIMESTAMP)
        );
        if let Some(rep) = &self.replacement {
            let bad = |what: &str| format!("unable to convert replacement {rep:?} to {what}");
            return Ok(match v {
                Value::Null => Value::Null,
                _ if is_date => {
                    return Err(format!(
                        "cannot mask a {} value with a custom replacement (only numbers and \
                         strings); remove replacement to mask with the epoch",
                        name.unwrap_or_default()
                    ));
                }
                Value::Int8(_) => Value::Int8(rep.parse().map_err(|_| bad("int8"))?),
                Value::Int16(_) => Value::Int16(rep.parse().map_err(|_| bad("int16"))?),
                Value::Int32(_) => Value::Int32(rep.parse().map_err(|_| bad("int32"))?),
                Value::Int64(_) => Value::Int64(rep.parse().map_err(|_| bad("int64"))?),
                Value::Float32(_) => Value::Float32(rep.parse().map_err(|_| bad("float"))?),
                Value::Float64(_) => Value::Float64(rep.parse().map_err(|_| bad("double"))?),
                Value::String(_) => Value::String(rep.clone()),
                Value::Bytes(_) if decimal_scale.is_some() => {
                    let scale = decimal_scale.unwrap_or(0);
                    let unscaled = super::cast::decimal_from_text(rep, scale)
                        .ok_or_else(|| bad(&format!("a decimal of scale {scale}")))?;
                    logical::decimal_value(unscaled)
                }
                other => {
                    return Err(format!(
                        "cannot mask a {} value with a custom replacement (only numbers and \
                         strings)",
                        type_name(other)
                    ));
                }
            });
        }
        Ok(match v {
            Value::Null => Value::Null,
            Value::Boolean(_) => Value::Boolean(false),
            Value::Int8(_) => Value::Int8(0),
            Value::Int16(_) => Value::Int16(0),
            Value::Int32(_) => Value::Int32(0),
            Value::Int64(_) => Value::Int64(0),
            Value::Float32(_) => Value::Float32(0.0),
            Value::Float64(_) => Value::Float64(0.0),
            Value::String(_) => Value::String(String::new()),
            Value::Bytes(_) if decimal_scale.is_some() => logical::decimal_value(0),
            Value::Array(_) => Value::Array(Vec::new()),
            Value::Map(_) => Value::Map(Vec::new()),
            other => {
                return Err(format!(
                    "cannot mask a value of type {} (only primitives other than bytes, \
                     decimals, dates, arrays and maps)",
                    type_name(other)
                ));
            }
        })
    }
}

impl Transform for MaskField {
    fn apply(&self, r: &mut RecordMut<'_>) -> Outcome {
        const PURPOSE: &str = "mask fields";
        let data = self.side.pick(&mut *r.key, &mut *r.value);
        if data.schema.is_none() {
            let m = require_map(&mut data.value, PURPOSE)?;
            for f in &self.fields {
                let masked = match map_get(m, f) {
                    Some(v) => self.masked(v, None)?,
                    None => Value::Null,
                };
                map_put(m, f, masked);
            }
            return Ok(true);
        }
        let (schema, values) = require_struct(data, PURPOSE)?;
        for (f, v) in schema.fields.iter().zip(values.iter_mut()) {
            let current = field_value(f, v, self.replace_null);
            *v = if self.fields.contains(&f.name) {
                self.masked(&current, Some(&f.schema))?
            } else {
                current
            };
        }
        Ok(true)
    }
}

const VALUE_TO_KEY_KEYS: &[KeySpec] = &[
    key(
        "fields",
        ConfigType::List,
        Dflt::Required,
        Importance::High,
        Valid::NonEmptyList,
        "Field names on the record value to extract as the record key.",
    ),
    REPLACE_NULL,
];

/// `ValueToKey`.
#[derive(Debug)]
pub(super) struct ValueToKey {
    fields: Vec<String>,
    replace_null: bool,
}

impl ValueToKey {
    fn build(c: &Conf<'_>) -> Result<Box<dyn Transform>, ConfigError> {
        Ok(Box::new(ValueToKey {
            fields: c.list("fields"),
            replace_null: c.boolean("replace.null.with.default"),
        }))
    }
}

impl Transform for ValueToKey {
    fn apply(&self, r: &mut RecordMut<'_>) -> Outcome {
        const PURPOSE: &str = "copying fields from value to key";
        if r.value.schema.is_none() {
            let m = require_map(&mut r.value.value, PURPOSE)?;
            let key = self
                .fields
                .iter()
                .map(|f| {
                    let v = map_get(m, f).cloned().unwrap_or(Value::Null);
                    (Value::String(f.clone()), v)
                })
                .collect();
            *r.key = Data::schemaless(Value::Map(key));
            return Ok(true);
        }
        let (schema, values) = require_struct(r.value, PURPOSE)?;
        let mut key_schema = Schema::structure();
        let mut key_values = Vec::with_capacity(self.fields.len());
        for name in &self.fields {
            let i = schema.field_index(name).ok_or_else(|| {
                format!("field does not exist: {name} (fields names fields of the record value)")
            })?;
            let f = &schema.fields[i];
            push_field(&mut key_schema, name, f.schema.clone())?;
            key_values.push(field_value(f, &values[i], self.replace_null));
        }
        *r.key = Data {
            schema: Some(key_schema),
            value: Value::Struct(key_values),
        };
        Ok(true)
    }
}

const EXTRACT_KEYS: &[KeySpec] = &[
    key(
        "field",
        ConfigType::String,
        Dflt::Required,
        Importance::Medium,
        Valid::Any,
        "Field name to extract.",
    ),
    REPLACE_NULL,
    FIELD_SYNTAX,
];

/// `field.syntax.version` (KIP-821).
pub(super) const FIELD_SYNTAX: KeySpec = key(
    "field.syntax.version",
    ConfigType::String,
    Dflt::Val("V1"),
    Importance::High,
    Valid::OneOfIgnoreCase(&["V1", "V2"]),
    "Defines the version of the syntax to access fields. If set to `V1`, then the field paths \
     are limited to access the elements at the root level of the struct or map. If set to \
     `V2`, the syntax will support accessing nested elements. To access nested elements, \
     dotted notation is used. If dots are already included in the field name, then backtick \
     pairs can be used to wrap field names containing dots. E.g. to access the subfield `baz` \
     from a field named \"foo.bar\" in a struct/map the following format can be used to access \
     its elements: \"`foo.bar`.baz\".",
);

/// A field path in `V2` syntax: steps separated by dots; a step in backticks may contain
/// dots, and `\`` inside it is a backtick (Kafka's `SingleFieldPath`).
pub(super) fn parse_path_v2(path: &str) -> Result<Vec<String>, String> {
    let b = path.as_bytes();
    let mut steps = Vec::new();
    let mut i = 0;
    let incomplete = |at: usize| {
        format!(
            "incomplete backtick pair in path [{path}]; add a backslash before the backtick at \
             position {at} to escape it"
        )
    };
    while i < b.len() {
        if b[i] != b'`' {
            match path[i..].find('.') {
                Some(d) => {
                    steps.push(path[i..i + d].to_owned());
                    i += d + 1;
                }
                None => {
                    steps.push(path[i..].to_owned());
                    i = b.len();
                }
            }
            continue;
        }
        let open = i;
        i += 1;
        let mut field = String::new();
        let mut start = i;
        loop {
            let Some(rel) = path[i..].find('`') else {
                return Err(incomplete(open));
            };
            let at = i + rel;
            let escaped = at > 0 && b[at - 1] == b'\\';
            if at >= b.len() - 1 {
                if escaped {
                    return Err(incomplete(open));
                }
                field.push_str(&path[start..at]);
                steps.push(std::mem::take(&mut field));
                i = at + 1;
                break;
            }
            if b[at + 1] != b'.' {
                i = at + 1;
                continue;
            }
            if escaped {
                field.push_str(&path[start..at - 1]);
                field.push('`');
                i = at + 1;
                start = i;
                continue;
            }
            field.push_str(&path[start..at]);
            steps.push(std::mem::take(&mut field));
            i = at + 2;
            break;
        }
    }
    if path.ends_with('.') {
        steps.push(String::new());
    }
    Ok(steps)
}

/// The field path of `field` under `field.syntax.version`.
pub(super) fn field_path(c: &Conf<'_>, name: &str) -> Result<Vec<String>, ConfigError> {
    let path = c.required(name)?;
    let v2 = c
        .string("field.syntax.version")
        .is_some_and(|v| v.eq_ignore_ascii_case("V2"));
    if v2 {
        parse_path_v2(&path).map_err(|e| c.err(name, e))
    } else {
        Ok(vec![path])
    }
}

/// `ExtractField$Key` / `ExtractField$Value`.
#[derive(Debug)]
pub(super) struct ExtractField {
    side: Side,
    path: Vec<String>,
    original: String,
    replace_null: bool,
}

impl ExtractField {
    fn build(c: &Conf<'_>, side: Side) -> Result<Box<dyn Transform>, ConfigError> {
        Ok(Box::new(ExtractField {
            side,
            path: field_path(c, "field")?,
            original: c.required("field")?,
            replace_null: c.boolean("replace.null.with.default"),
        }))
    }
}

/// Move the value at a string key out of a map (Null if absent).
fn take_entry(m: &mut [(Value, Value)], key: &str) -> Value {
    m.iter_mut()
        .find(|(k, _)| matches!(k, Value::String(s) if s == key))
        .map_or(Value::Null, |(_, v)| std::mem::replace(v, Value::Null))
}

impl Transform for ExtractField {
    fn apply(&self, r: &mut RecordMut<'_>) -> Outcome {
        const PURPOSE: &str = "field extraction";
        let data = self.side.pick(&mut *r.key, &mut *r.value);
        let Some(schema) = data.schema.take() else {
            if matches!(data.value, Value::Null) {
                return Ok(true);
            }
            let mut current = std::mem::replace(&mut data.value, Value::Null);
            require_map(&mut current, PURPOSE)?;
            let (last, steps) = self.path.split_last().ok_or("an empty field path")?;
            for step in steps {
                current = match current {
                    Value::Map(mut m) => take_entry(&mut m, step),
                    _ => Value::Null,
                };
            }
            data.value = match current {
                Value::Map(mut m) => take_entry(&mut m, last),
                _ => Value::Null,
            };
            return Ok(true);
        };
        let unknown = || format!("unknown field: {}", self.original);
        let mut schema = schema;
        let mut value = std::mem::replace(&mut data.value, Value::Null);
        if value != Value::Null && !matches!(value, Value::Struct(_)) {
            data.schema = Some(schema);
            data.value = value;
            return Err(require_struct(data, PURPOSE).err().unwrap_or_default());
        }
        for step in &self.path {
            if schema.kind != SchemaType::Struct {
                return Err(unknown());
            }
            let i = schema.field_index(step).ok_or_else(unknown)?;
            let field = schema.fields.swap_remove(i);
            value = match value {
                Value::Struct(mut values) if i < values.len() => {
                    let v = values.swap_remove(i);
                    if self.replace_null {
                        field_value(&field, &v, true)
                    } else {
                        v
                    }
                }
                _ => Value::Null,
            };
            schema = field.schema;
        }
        data.schema = Some(schema);
        data.value = value;
        Ok(true)
    }
}

const HOIST_KEYS: &[KeySpec] = &[key(
    "field",
    ConfigType::String,
    Dflt::Required,
    Importance::Medium,
    Valid::Any,
    "Field name for the single field that will be created in the resulting Struct or Map.",
)];

/// `HoistField$Key` / `HoistField$Value`.
#[derive(Debug)]
pub(super) struct HoistField {
    side: Side,
    field: String,
}

impl HoistField {
    fn build(c: &Conf<'_>, side: Side) -> Result<Box<dyn Transform>, ConfigError> {
        Ok(Box::new(HoistField {
            side,
            field: c.required("field")?,
        }))
    }
}

impl Transform for HoistField {
    fn apply(&self, r: &mut RecordMut<'_>) -> Outcome {
        let data = self.side.pick(&mut *r.key, &mut *r.value);
        let value = std::mem::replace(&mut data.value, Value::Null);
        match data.schema.take() {
            None => {
                data.value = Value::Map(vec![(Value::String(self.field.clone()), value)]);
            }
            Some(schema) => {
                if value == Value::Null && !schema.optional && schema.default.is_none() {
                    data.schema = Some(schema);
                    return Err(format!(
                        "cannot hoist a null into the required field {}; the schema is not optional",
                        self.field
                    ));
                }
                data.schema = Some(Schema::structure().field(self.field.clone(), schema));
                data.value = Value::Struct(vec![value]);
            }
        }
        Ok(true)
    }
}

const META_KEYS: &[KeySpec] = &[
    key(
        "schema.name",
        ConfigType::String,
        Dflt::Null,
        Importance::High,
        Valid::Any,
        "Schema name to set.",
    ),
    key(
        "schema.version",
        ConfigType::Int,
        Dflt::Null,
        Importance::High,
        Valid::Any,
        "Schema version to set.",
    ),
    REPLACE_NULL,
];

/// `SetSchemaMetadata$Key` / `SetSchemaMetadata$Value`.
#[derive(Debug)]
pub(super) struct SetSchemaMetadata {
    side: Side,
    name: Option<String>,
    version: Option<i32>,
    replace_null: bool,
}

impl SetSchemaMetadata {
    fn build(c: &Conf<'_>, side: Side) -> Result<Box<dyn Transform>, ConfigError> {
        let t = SetSchemaMetadata {
            side,
            name: c.string("schema.name"),
            version: c.int("schema.version"),
            replace_null: c.boolean("replace.null.with.default"),
        };
        if t.name.is_none() && t.version.is_none() {
            return Err(c.err(
                "schema.name",
                "neither schema name nor version configured; set schema.name, schema.version \
                 or both",
            ));
        }
        Ok(Box::new(t))
    }
}

impl Transform for SetSchemaMetadata {
    fn apply(&self, r: &mut RecordMut<'_>) -> Outcome {
        let data = self.side.pick(&mut *r.key, &mut *r.value);
        let Some(schema) = &mut data.schema else {
            if matches!(data.value, Value::Null) {
                return Ok(true);
            }
            return Err(format!(
                "schema required for updating schema metadata, found a {} without one; use a \
                 converter with schemas",
                type_name(&data.value)
            ));
        };
        if let Some(n) = &self.name {
            schema.name = Some(n.clone());
        }
        if let Some(v) = self.version {
            schema.version = Some(v);
        }
        if let Value::Struct(values) = &mut data.value {
            default_nulls(&schema.fields, values, self.replace_null);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
