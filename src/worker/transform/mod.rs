//! Single message transforms and predicates: Kafka Connect's built-in set, configured with
//! Kafka's keys (`transforms`, `transforms.NAME.type`, `transforms.NAME.*`,
//! `transforms.NAME.predicate`, `transforms.NAME.negate`, `predicates`,
//! `predicates.NAME.type`, `predicates.NAME.*`) and Kafka's class names, so connector
//! configs written for Kafka Connect load as they are.
//!
//! - [`parse`] builds a [`Chain`] from a connector config once (regexes compiled, field
//!   lists and date patterns parsed); [`Chain::apply_source`] and [`Chain::apply_sink`]
//!   then change each record in place, or answer that it is dropped (`Filter`, or a
//!   predicate choosing `Filter`). No config is read per record.
//! - [`validate`] answers what the validate endpoint shows for the transform keys (every
//!   key with its definition, value and errors); [`catalog`] lists the transforms and
//!   predicates with their config keys for `GET /connector-plugins?connectorsOnly=false`.
//! - The families: [`fields`] (InsertField, ReplaceField, MaskField, ValueToKey,
//!   ExtractField, HoistField, SetSchemaMetadata), [`flatten`], [`cast`], [`timestamp`]
//!   (TimestampConverter, TimestampRouter, with Java's `SimpleDateFormat` patterns in
//!   [`datefmt`]), [`route`] (RegexRouter), [`headers`] (InsertHeader, DropHeaders,
//!   HeaderFrom), [`predicates`] (TopicNameMatches, HasHeaderKey, RecordIsTombstone, and
//!   Filter).
//!
//! What this module is not: it knows nothing of converters, topics or tasks; the task loop
//! calls the chain between poll and conversion (sources) or between conversion and put
//! (sinks) and decides what a failure means (`errors.tolerance`). Transforms from plugins
//! are not here.

mod cast;
mod config;
mod datefmt;
mod fields;
mod flatten;
mod headers;
mod predicates;
mod route;
mod timestamp;

use std::fmt;
use std::sync::Arc;

use tributary_plugin_abi::config::{ConfigKeyInfo, ConfigType, ConfigValueInfo, Importance, Width};
use tributary_plugin_abi::data::{Data, Field, Schema, SchemaType, Value};
use tributary_plugin_abi::record::{Header, SinkRecord, SourceRecord};

use crate::worker::store::Props;
use config::{Conf, KeySpec, split_list};

/// A record as a transform sees it: what it may change (topic, key, value, headers) and
/// what it may read (partition, offset, timestamp).
#[derive(Debug)]
pub struct RecordMut<'a> {
    pub topic: &'a mut String,
    pub partition: Option<i32>,
    /// A sink record's offset; `None` for a source record.
    pub offset: Option<i64>,
    pub timestamp: Option<i64>,
    pub key: &'a mut Data,
    pub value: &'a mut Data,
    pub headers: &'a mut Vec<Header>,
}

impl<'a> RecordMut<'a> {
    pub fn source(r: &'a mut SourceRecord) -> RecordMut<'a> {
        RecordMut {
            topic: &mut r.topic,
            partition: r.partition,
            offset: None,
            timestamp: r.timestamp,
            key: &mut r.key,
            value: &mut r.value,
            headers: &mut r.headers,
        }
    }

    pub fn sink(r: &'a mut SinkRecord) -> RecordMut<'a> {
        RecordMut {
            topic: &mut r.topic,
            partition: Some(r.partition),
            offset: Some(r.offset),
            timestamp: r.timestamp,
            key: &mut r.key,
            value: &mut r.value,
            headers: &mut r.headers,
        }
    }
}

/// Which part of a record a `$Key` or `$Value` transform works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Key,
    Value,
}

impl Side {
    fn pick<'b>(self, key: &'b mut Data, value: &'b mut Data) -> &'b mut Data {
        match self {
            Side::Key => key,
            Side::Value => value,
        }
    }
}

/// What a transform answers for one record: `Ok(true)` keep it, `Ok(false)` drop it, or
/// why it cannot be transformed.
pub(crate) type Outcome = Result<bool, String>;

/// One configured transformation (Kafka's `Transformation`).
pub(crate) trait Transform: Send + Sync + fmt::Debug {
    fn apply(&self, r: &mut RecordMut<'_>) -> Outcome;
}

/// One configured predicate (Kafka's `Predicate`).
pub(crate) trait Predicate: Send + Sync + fmt::Debug {
    fn test(&self, r: &RecordMut<'_>) -> bool;
}

/// A config error: the full key (`transforms.route.regex`) and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

/// A record a transform could not transform.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("transform {alias} ({class}): {message}")]
pub struct ChainError {
    /// The alias in `transforms`.
    pub alias: String,
    /// Kafka's class name of the transform.
    pub class: &'static str,
    pub message: String,
}

#[derive(Debug)]
struct Stage {
    alias: String,
    class: &'static str,
    transform: Box<dyn Transform>,
    /// The predicate and `negate`: the transform applies when `test != negate`.
    predicate: Option<(Arc<dyn Predicate>, bool)>,
}

/// The transforms of a connector, in order.
#[derive(Debug, Default)]
pub struct Chain {
    stages: Vec<Stage>,
}

impl Chain {
    /// No transforms configured: the task loop skips the chain altogether.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// How many transforms.
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Apply every transform whose predicate (if any) says so; `Ok(false)` when one drops
    /// the record (the rest are not applied).
    pub fn apply(&self, r: &mut RecordMut<'_>) -> Result<bool, ChainError> {
        for s in &self.stages {
            if let Some((p, negate)) = &s.predicate
                && p.test(r) == *negate
            {
                continue;
            }
            match s.transform.apply(r) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(message) => {
                    return Err(ChainError {
                        alias: s.alias.clone(),
                        class: s.class,
                        message,
                    });
                }
            }
        }
        Ok(true)
    }

    pub fn apply_source(&self, r: &mut SourceRecord) -> Result<bool, ChainError> {
        self.apply(&mut RecordMut::source(r))
    }

    pub fn apply_sink(&self, r: &mut SinkRecord) -> Result<bool, ChainError> {
        self.apply(&mut RecordMut::sink(r))
    }
}

type BuildTransform = fn(&Conf<'_>) -> Result<Box<dyn Transform>, ConfigError>;
type BuildPredicate = fn(&Conf<'_>) -> Result<Arc<dyn Predicate>, ConfigError>;

#[derive(Clone, Copy)]
pub(crate) enum Build {
    Transform(BuildTransform),
    Predicate(BuildPredicate),
}

/// A built-in transform or predicate: its Kafka class name, doc, keys and constructor.
#[derive(Clone, Copy)]
pub(crate) struct Def {
    pub class: &'static str,
    pub doc: &'static str,
    pub keys: &'static [KeySpec],
    pub build: Build,
}

impl fmt::Debug for Def {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.class)
    }
}

impl Def {
    fn kind(&self) -> PluginKind {
        match self.build {
            Build::Transform(_) => PluginKind::Transformation,
            Build::Predicate(_) => PluginKind::Predicate,
        }
    }

    /// The class name without its package: `InsertField$Value`, `TopicNameMatches`.
    fn short(&self) -> &'static str {
        self.class.rsplit('.').next().unwrap_or(self.class)
    }
}

fn defs() -> impl Iterator<Item = &'static Def> {
    fields::DEFS
        .iter()
        .chain(flatten::DEFS)
        .chain(cast::DEFS)
        .chain(timestamp::DEFS)
        .chain(route::DEFS)
        .chain(headers::DEFS)
        .chain(predicates::DEFS)
}

/// The definition `name` (Kafka's class name, or the name without the package) stands for.
fn find_def(name: &str) -> Option<&'static Def> {
    defs().find(|d| d.class == name || d.short() == name)
}

/// Whether a transform or predicate is a Kafka Connect `transformation` or `predicate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginKind {
    Transformation,
    Predicate,
}

impl PluginKind {
    /// As `GET /connector-plugins` spells the type.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Transformation => "transformation",
            PluginKind::Predicate => "predicate",
        }
    }
}

/// A built-in transform or predicate as the REST layer lists it.
#[derive(Clone, Debug)]
pub struct TransformPlugin {
    /// Kafka's class name (`org.apache.kafka.connect.transforms.InsertField$Value`).
    pub class: &'static str,
    /// Other names it is found by (the class name without its package).
    pub aliases: Vec<&'static str>,
    pub kind: PluginKind,
    pub doc: &'static str,
    /// Its own config keys, unprefixed (Kafka's `GET /connector-plugins/{p}/config`).
    pub config: Vec<ConfigKeyInfo>,
}

fn plugin_of(d: &Def) -> TransformPlugin {
    TransformPlugin {
        class: d.class,
        aliases: vec![d.short()],
        kind: d.kind(),
        doc: d.doc,
        config: d
            .keys
            .iter()
            .zip(1..)
            .map(|(k, order)| k.info("", None, order))
            .collect(),
    }
}

/// Every built-in transform and predicate.
pub fn catalog() -> Vec<TransformPlugin> {
    defs().map(plugin_of).collect()
}

/// The built-in transform or predicate `name` stands for (class name or short name).
pub fn lookup(name: &str) -> Option<TransformPlugin> {
    find_def(name).map(plugin_of)
}

/// Whether `key` is one of the transform and predicate keys ([`validate`] answers for them).
pub fn is_transform_key(key: &str) -> bool {
    key == "transforms"
        || key == "predicates"
        || key.starts_with("transforms.")
        || key.starts_with("predicates.")
}

/// The connector-level keys `transforms` and `predicates` (Kafka's `ConnectorConfig`).
pub fn connector_keys() -> Vec<ConfigKeyInfo> {
    let def = |name: &str, group: &str, display: &str, doc: &str| ConfigKeyInfo {
        name: name.to_owned(),
        kind: ConfigType::List,
        default: Some(String::new()),
        optional: false,
        importance: Importance::Low,
        documentation: doc.to_owned(),
        group: Some(group.to_owned()),
        order_in_group: 1,
        width: Width::Long,
        display_name: display.to_owned(),
        valid_values: Some(format!("unique {} aliases", display.to_lowercase())),
    };
    vec![
        def(
            "transforms",
            "Transforms",
            "Transforms",
            "Aliases for the transformations to be applied to records, in order.",
        ),
        def(
            "predicates",
            "Predicates",
            "Predicates",
            "Aliases for the predicates used by transformations.",
        ),
    ]
}

/// The aliases of `transforms` or `predicates`, blanks dropped; a duplicate is an error.
fn aliases(props: &Props, key: &str, errors: &mut Vec<ConfigError>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in props.get(key).map(|v| split_list(v)).unwrap_or_default() {
        if a.is_empty() {
            continue;
        }
        if out.contains(&a) {
            errors.push(ConfigError {
                key: key.to_owned(),
                message: format!("duplicate alias {a:?}; each alias may be listed once"),
            });
            continue;
        }
        out.push(a);
    }
    out
}

/// The definition named by `PREFIX.type`, or the error that says why there is none.
fn type_of(props: &Props, prefix: &str, kind: PluginKind) -> Result<&'static Def, ConfigError> {
    let key = format!("{prefix}type");
    let word = kind.as_str();
    let known = || {
        defs()
            .filter(|d| d.kind() == kind)
            .map(Def::short)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let alias = prefix.trim_end_matches('.');
    let Some(name) = props.get(&key).map(|v| v.trim()).filter(|v| !v.is_empty()) else {
        return Err(ConfigError {
            key,
            message: format!(
                "missing required key: {alias} needs the class of its {word}, one of: {}",
                known()
            ),
        });
    };
    match find_def(name) {
        Some(d) if d.kind() == kind => Ok(d),
        Some(d) => Err(ConfigError {
            key,
            message: format!(
                "{alias}: '{name}' is a {}, not a {word}; list it under {}",
                d.kind().as_str(),
                match d.kind() {
                    PluginKind::Transformation => "transforms",
                    PluginKind::Predicate => "predicates",
                }
            ),
        }),
        None => Err(ConfigError {
            key,
            message: format!(
                "{alias}: unknown type '{name}'; known: {} (by class name, e.g. \
                 org.apache.kafka.connect.transforms.RegexRouter, or by the name after the package)",
                known()
            ),
        }),
    }
}

/// Build the transform chain of a connector config; every error found, each naming its
/// key.
pub fn parse(props: &Props) -> Result<Chain, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let transform_aliases = aliases(props, "transforms", &mut errors);
    let predicate_aliases = aliases(props, "predicates", &mut errors);
    let mut predicates: Vec<(String, Option<Arc<dyn Predicate>>)> = Vec::new();
    for alias in predicate_aliases {
        let prefix = format!("predicates.{alias}.");
        let built = match type_of(props, &prefix, PluginKind::Predicate) {
            Err(e) => {
                errors.push(e);
                None
            }
            Ok(def) => {
                let conf = Conf {
                    prefix,
                    props,
                    keys: def.keys,
                };
                let checked = conf.check();
                if !checked.is_empty() {
                    errors.extend(checked);
                    None
                } else if let Build::Predicate(build) = def.build {
                    build(&conf).map_err(|e| errors.push(e)).ok()
                } else {
                    None
                }
            }
        };
        predicates.push((alias, built));
    }
    let mut stages = Vec::new();
    for alias in transform_aliases {
        let prefix = format!("transforms.{alias}.");
        let get = |k: &str| {
            props
                .get(&format!("{prefix}{k}"))
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        };
        let mut ok = true;
        // The implicit keys every transform has.
        let predicate = match get("predicate") {
            None => None,
            Some(p) => match predicates.iter().find(|(a, _)| a == p) {
                Some((_, built)) => {
                    // A predicate that failed to build has its own error already.
                    ok &= built.is_some();
                    built.clone()
                }
                None => {
                    errors.push(ConfigError {
                        key: format!("{prefix}predicate"),
                        message: format!(
                            "predicate '{p}' is not defined; add it to predicates and set \
                             predicates.{p}.type"
                        ),
                    });
                    ok = false;
                    None
                }
            },
        };
        let negate = match get("negate") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                errors.push(ConfigError {
                    key: format!("{prefix}negate"),
                    message: format!("invalid value {v:?}: expected true or false"),
                });
                ok = false;
                false
            }
        };
        if props.contains_key(&format!("{prefix}negate")) && get("predicate").is_none() {
            errors.push(ConfigError {
                key: format!("{prefix}negate"),
                message: format!(
                    "{prefix}negate is set but there is no {prefix}predicate naming a predicate \
                     to negate; set the predicate or remove negate"
                ),
            });
            ok = false;
        }
        let def = match type_of(props, &prefix, PluginKind::Transformation) {
            Ok(d) => d,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let conf = Conf {
            prefix,
            props,
            keys: def.keys,
        };
        let checked = conf.check();
        if !checked.is_empty() {
            errors.extend(checked);
            continue;
        }
        let Build::Transform(build) = def.build else {
            continue;
        };
        match build(&conf) {
            Ok(transform) if ok => stages.push(Stage {
                alias,
                class: def.class,
                transform,
                predicate: predicate.map(|p| (p, negate)),
            }),
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(Chain { stages })
    } else {
        Err(errors)
    }
}

/// The transform and predicate keys of a config as the validate endpoint shows them
/// (Kafka's `ConnectorConfig.enrich`): `transforms` and `predicates`, then per alias its
/// `type`, (for a transform) `predicate` and `negate`, and the keys of its class, in the
/// group `Transforms: ALIAS` or `Predicates: ALIAS`; each with its value and errors. An
/// error for a key nobody defines comes with no definition.
pub fn validate(props: &Props) -> Vec<(Option<ConfigKeyInfo>, ConfigValueInfo)> {
    let errors = parse(props).err().unwrap_or_default();
    let mut out: Vec<(Option<ConfigKeyInfo>, ConfigValueInfo)> = Vec::new();
    let mut push = |info: ConfigKeyInfo| {
        let value = props
            .get(&info.name)
            .cloned()
            .or_else(|| info.default.clone());
        let name = info.name.clone();
        out.push((
            Some(info),
            ConfigValueInfo {
                name,
                value,
                errors: Vec::new(),
            },
        ));
    };
    for k in connector_keys() {
        push(k);
    }
    let mut ignored = Vec::new();
    for (list, group, kind) in [
        ("transforms", "Transforms", PluginKind::Transformation),
        ("predicates", "Predicates", PluginKind::Predicate),
    ] {
        for alias in aliases(props, list, &mut ignored) {
            let prefix = format!("{list}.{alias}.");
            let group = format!("{group}: {alias}");
            let mut keys = vec![config::key(
                "type",
                ConfigType::Class,
                config::Dflt::Required,
                Importance::High,
                config::Valid::Any,
                if kind == PluginKind::Transformation {
                    "Class for the transformation."
                } else {
                    "Class for the predicate."
                },
            )];
            if kind == PluginKind::Transformation {
                keys.push(config::key(
                    "predicate",
                    ConfigType::String,
                    config::Dflt::Null,
                    Importance::Medium,
                    config::Valid::Any,
                    "The alias of a predicate used to determine whether to apply this \
                     transformation.",
                ));
                keys.push(config::key(
                    "negate",
                    ConfigType::Boolean,
                    config::Dflt::Val("false"),
                    Importance::Medium,
                    config::Valid::Any,
                    "Whether the configured predicate should be negated.",
                ));
            }
            if let Ok(def) = type_of(props, &prefix, kind) {
                keys.extend(def.keys.iter().copied());
            }
            for (k, order) in keys.iter().zip(0..) {
                push(k.info(&prefix, Some(&group), order));
            }
        }
    }
    for e in errors {
        match out.iter_mut().find(|(_, v)| v.name == e.key) {
            Some((_, v)) => {
                if !v.errors.contains(&e.message) {
                    v.errors.push(e.message);
                }
            }
            None => out.push((
                None,
                ConfigValueInfo {
                    value: props.get(&e.key).cloned(),
                    name: e.key,
                    errors: vec![e.message],
                },
            )),
        }
    }
    out
}

// ---- helpers the families share -------------------------------------------------------

/// A value's type for messages (`null` for a missing value).
pub(crate) fn type_name(v: &Value) -> &'static str {
    v.type_name()
}

/// A schemaless map's value at a string key.
pub(crate) fn map_get<'v>(entries: &'v [(Value, Value)], key: &str) -> Option<&'v Value> {
    entries
        .iter()
        .find(|(k, _)| matches!(k, Value::String(s) if s == key))
        .map(|(_, v)| v)
}

/// Set a string key of a schemaless map (replacing the entry if there is one, as a Java
/// `HashMap.put`).
pub(crate) fn map_put(entries: &mut Vec<(Value, Value)>, key: &str, v: Value) {
    match entries
        .iter_mut()
        .find(|(k, _)| matches!(k, Value::String(s) if s == key))
    {
        Some(e) => e.1 = v,
        None => entries.push((Value::String(key.to_owned()), v)),
    }
}

/// Remove a string key of a schemaless map.
pub(crate) fn map_remove(entries: &mut Vec<(Value, Value)>, key: &str) -> Option<Value> {
    let i = entries
        .iter()
        .position(|(k, _)| matches!(k, Value::String(s) if s == key))?;
    Some(entries.remove(i).1)
}

/// A struct field's value as Kafka's `Struct.get` gives it: a null replaced by the field's
/// default when `replace_null` (`replace.null.with.default`).
pub(crate) fn field_value(field: &Field, v: &Value, replace_null: bool) -> Value {
    match (v, &field.schema.default) {
        (Value::Null, Some(d)) if replace_null => (**d).clone(),
        _ => v.clone(),
    }
}

/// The same, in place.
pub(crate) fn default_nulls(fields: &[Field], values: &mut [Value], replace_null: bool) {
    if !replace_null {
        return;
    }
    for (f, v) in fields.iter().zip(values.iter_mut()) {
        if *v == Value::Null
            && let Some(d) = &f.schema.default
        {
            *v = (**d).clone();
        }
    }
}

/// The map of schemaless data, or why not (Kafka's `requireMap`).
pub(crate) fn require_map<'d>(
    value: &'d mut Value,
    purpose: &str,
) -> Result<&'d mut Vec<(Value, Value)>, String> {
    match value {
        Value::Map(m) => Ok(m),
        other => Err(format!(
            "{purpose} without a schema needs a map, found {}",
            type_name(other)
        )),
    }
}

/// The schema and values of a struct (Kafka's `requireStruct`), or why not.
pub(crate) fn require_struct<'d>(
    data: &'d mut Data,
    purpose: &str,
) -> Result<(&'d mut Schema, &'d mut Vec<Value>), String> {
    let refusal = match (&data.schema, &data.value) {
        (Some(s), Value::Struct(values))
            if s.kind == SchemaType::Struct && values.len() == s.fields.len() =>
        {
            None
        }
        (Some(s), v) => Some(format!(
            "{purpose} needs a struct, found {} with a {} schema",
            type_name(v),
            s.kind.json_name()
        )),
        (None, v) => Some(format!(
            "{purpose} needs a struct, found {} without a schema",
            type_name(v)
        )),
    };
    match (&mut data.schema, &mut data.value, refusal) {
        (Some(s), Value::Struct(values), None) => Ok((s, values)),
        (_, _, refusal) => Err(refusal.unwrap_or_default()),
    }
}

/// Kafka's `SchemaBuilder.field` refusal of a duplicate name.
pub(crate) fn push_field(schema: &mut Schema, name: &str, field: Schema) -> Result<(), String> {
    if schema.field_index(name).is_some() {
        return Err(format!(
            "cannot create field because of field name duplication: {name}"
        ));
    }
    schema.fields.push(Field {
        name: name.to_owned(),
        schema: field,
    });
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
