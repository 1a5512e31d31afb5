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
//! (sinks) and decides what a failure means (`errors.tolerance`).
//!
//! Transforms and predicates from plugins ([`plugin`]): a type no built-in has is looked up
//! in the worker's plugin registry; such a stage gets the records it applies to as a batch
//! ([`Chain::apply_source_batch`]), crossing the plugin boundary once per stage and batch,
//! and consecutive plugin transforms of one library without predicates share one crossing
//! (falling back to one stage at a time when that fails, to find the records that fail).

mod cast;
mod config;
mod datefmt;
mod fields;
mod flatten;
mod headers;
mod plugin;
mod predicates;
mod route;
mod timestamp;

use std::fmt;
use std::sync::Arc;

pub(crate) use super::local::Local;

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

/// What a stage does to the records it applies to.
#[derive(Debug)]
enum Apply {
    Builtin(Box<dyn Transform>),
    /// A transformation from a plugin: a batch crosses at once.
    Plugin(plugin::PluginStage),
}

/// A predicate as a stage refers to it (shared by every transform that names it).
#[derive(Debug, Clone)]
enum Pred {
    Builtin(Arc<dyn Predicate>),
    Plugin(Arc<plugin::PluginStage>),
}

#[derive(Debug)]
struct Stage {
    alias: String,
    class: &'static str,
    apply: Apply,
    /// The predicate, its alias and `negate`: the transform applies when `test != negate`.
    predicate: Option<(Pred, &'static str, bool)>,
}

/// A record the chain transforms: a source or a sink record.
trait Rec: Sized {
    fn record_mut(&mut self) -> RecordMut<'_>;
    fn placeholder() -> Self;
    fn plugin_apply(
        stage: &plugin::PluginStage,
        records: &[Self],
    ) -> Result<Vec<(usize, Self)>, String>;
    fn plugin_test(stage: &plugin::PluginStage, records: &[Self]) -> Result<Vec<bool>, String>;
    /// Consecutive plugin transforms of one library, in one crossing.
    fn plugin_run(
        stages: &[&plugin::PluginStage],
        records: &[Self],
    ) -> Result<Vec<(usize, Self)>, (usize, String)>;
}

impl Rec for SourceRecord {
    fn record_mut(&mut self) -> RecordMut<'_> {
        RecordMut::source(self)
    }
    fn placeholder() -> Self {
        SourceRecord::new(String::new(), Data::null())
    }
    fn plugin_apply(
        stage: &plugin::PluginStage,
        records: &[Self],
    ) -> Result<Vec<(usize, Self)>, String> {
        stage.apply_source(records)
    }
    fn plugin_test(stage: &plugin::PluginStage, records: &[Self]) -> Result<Vec<bool>, String> {
        stage.test_source(records)
    }
    fn plugin_run(
        stages: &[&plugin::PluginStage],
        records: &[Self],
    ) -> Result<Vec<(usize, Self)>, (usize, String)> {
        plugin::PluginStage::with_run(stages, |i| {
            crate::plugin::TransformInstance::apply_chain_source(i, records)
        })
    }
}

impl Rec for SinkRecord {
    fn record_mut(&mut self) -> RecordMut<'_> {
        RecordMut::sink(self)
    }
    fn placeholder() -> Self {
        SinkRecord::new(String::new(), 0, 0, Data::null())
    }
    fn plugin_apply(
        stage: &plugin::PluginStage,
        records: &[Self],
    ) -> Result<Vec<(usize, Self)>, String> {
        stage.apply_sink(records)
    }
    fn plugin_test(stage: &plugin::PluginStage, records: &[Self]) -> Result<Vec<bool>, String> {
        stage.test_sink(records)
    }
    fn plugin_run(
        stages: &[&plugin::PluginStage],
        records: &[Self],
    ) -> Result<Vec<(usize, Self)>, (usize, String)> {
        plugin::PluginStage::with_run(stages, |i| {
            crate::plugin::TransformInstance::apply_chain_sink(i, records)
        })
    }
}

/// One record's state while a batch goes through the chain.
type Slot<R> = Result<Option<R>, ChainError>;

/// The transforms of a connector, in order.
#[derive(Debug, Default)]
pub struct Chain {
    stages: Vec<Stage>,
    /// Whether a stage or predicate comes from a plugin (then records go through the batch
    /// path, which can hand a plugin a whole batch).
    has_plugin: bool,
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

    /// Apply every built-in transform whose predicate (if any) says so; `Ok(false)` when
    /// one drops the record (the rest are not applied). Only for chains without plugins.
    fn apply_builtin(&self, r: &mut RecordMut<'_>) -> Result<bool, ChainError> {
        for s in &self.stages {
            if let Some((Pred::Builtin(p), _, negate)) = &s.predicate
                && p.test(r) == *negate
            {
                continue;
            }
            let Apply::Builtin(t) = &s.apply else {
                continue;
            };
            match t.apply(r) {
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

    /// Apply the chain to one record in place: `Ok(false)` when a transform drops it.
    fn apply_one<R: Rec>(&self, r: &mut R) -> Result<bool, ChainError> {
        if !self.has_plugin {
            return self.apply_builtin(&mut r.record_mut());
        }
        let owned = std::mem::replace(r, R::placeholder());
        match self.apply_batch(vec![owned]).pop() {
            Some(Ok(Some(out))) => {
                *r = out;
                Ok(true)
            }
            Some(Ok(None)) | None => Ok(false),
            Some(Err(e)) => Err(e),
        }
    }

    pub fn apply_source(&self, r: &mut SourceRecord) -> Result<bool, ChainError> {
        self.apply_one(r)
    }

    pub fn apply_sink(&self, r: &mut SinkRecord) -> Result<bool, ChainError> {
        self.apply_one(r)
    }

    /// Apply the chain to a batch of source records: per record, the transformed record,
    /// `None` when a transform dropped it, or the failure. The same as applying it to each
    /// record in turn, but a plugin's transform or predicate gets the records it applies to
    /// in one call.
    pub fn apply_source_batch(&self, records: Vec<SourceRecord>) -> Vec<Slot<SourceRecord>> {
        self.apply_batch(records)
    }

    /// [`Chain::apply_source_batch`] editing the records where they are: per record, kept
    /// (`true`), dropped, or failed. A chain of built-ins moves no record; one with plugin
    /// transforms takes them out and puts back what they answer.
    pub fn apply_source_in_place(
        &self,
        records: &mut [SourceRecord],
    ) -> Vec<Result<bool, ChainError>> {
        if !self.has_plugin {
            return records
                .iter_mut()
                .map(|r| self.apply_builtin(&mut r.record_mut()))
                .collect();
        }
        let taken = records
            .iter_mut()
            .map(|r| std::mem::replace(r, SourceRecord::new(String::new(), Data::null())))
            .collect();
        self.apply_batch(taken)
            .into_iter()
            .zip(records.iter_mut())
            .map(|(slot, r)| {
                slot.map(|kept| match kept {
                    Some(out) => {
                        *r = out;
                        true
                    }
                    None => false,
                })
            })
            .collect()
    }

    /// [`Chain::apply_source_batch`] for sink records.
    pub fn apply_sink_batch(&self, records: Vec<SinkRecord>) -> Vec<Slot<SinkRecord>> {
        self.apply_batch(records)
    }

    fn apply_batch<R: Rec>(&self, records: Vec<R>) -> Vec<Slot<R>> {
        if !self.has_plugin {
            // Built-ins only: record by record, no bookkeeping.
            return records
                .into_iter()
                .map(|mut r| {
                    self.apply_builtin(&mut r.record_mut())
                        .map(|keep| keep.then_some(r))
                })
                .collect();
        }
        let mut slots: Vec<Slot<R>> = records.into_iter().map(|r| Ok(Some(r))).collect();
        let mut k = 0;
        while k < self.stages.len() {
            let run = self.plugin_run(k);
            if run.len() > 1 && self.apply_run(&run, &mut slots) {
                k += run.len();
            } else {
                self.apply_stage(&self.stages[k], &mut slots);
                k += 1;
            }
        }
        slots
    }

    /// The plugin transforms from stage `k` on that can share one crossing: consecutive,
    /// of one library, without predicates.
    fn plugin_run(&self, k: usize) -> Vec<&plugin::PluginStage> {
        let mut run: Vec<&plugin::PluginStage> = Vec::new();
        for s in &self.stages[k..] {
            match (&s.apply, &s.predicate) {
                (Apply::Plugin(p), None) if run.first().is_none_or(|f| f.same_library(p)) => {
                    run.push(p)
                }
                _ => break,
            }
        }
        run
    }

    /// Apply a run of plugin transforms (from [`Chain::plugin_run`]) to the live records in
    /// one crossing. `false` when it failed: nothing was changed, and the caller applies
    /// the stages one by one (which finds the records that fail).
    fn apply_run<R: Rec>(&self, run: &[&plugin::PluginStage], slots: &mut [Slot<R>]) -> bool {
        let live: Vec<usize> = (0..slots.len())
            .filter(|&i| matches!(slots[i], Ok(Some(_))))
            .collect();
        if live.is_empty() {
            return true;
        }
        let batch = take(slots, &live);
        match R::plugin_run(run, &batch) {
            Ok(out) => {
                for &i in &live {
                    slots[i] = Ok(None);
                }
                for (j, r) in out {
                    slots[live[j]] = Ok(Some(r));
                }
                true
            }
            Err(_) => {
                put_back(slots, &live, batch);
                false
            }
        }
    }

    /// Apply one stage to the live records of a batch.
    fn apply_stage<R: Rec>(&self, s: &Stage, slots: &mut [Slot<R>]) {
        let live: Vec<usize> = (0..slots.len())
            .filter(|&i| matches!(slots[i], Ok(Some(_))))
            .collect();
        if live.is_empty() {
            return;
        }
        let fail = |alias: &str, class: &'static str, message: String| ChainError {
            alias: alias.to_owned(),
            class,
            message,
        };
        // The records the stage applies to.
        let selected: Vec<usize> = match &s.predicate {
            None => live,
            Some((Pred::Builtin(p), _, negate)) => live
                .into_iter()
                .filter(|&i| match &mut slots[i] {
                    Ok(Some(r)) => p.test(&r.record_mut()) != *negate,
                    _ => false,
                })
                .collect(),
            Some((Pred::Plugin(p), pred_alias, negate)) => {
                let batch = take(slots, &live);
                let answers = R::plugin_test(p, &batch);
                put_back(slots, &live, batch);
                match answers {
                    Ok(answers) => live
                        .into_iter()
                        .zip(answers)
                        .filter(|(_, t)| *t != *negate)
                        .map(|(i, _)| i)
                        .collect(),
                    Err(message) => {
                        for &i in &live {
                            slots[i] = Err(fail(
                                &s.alias,
                                s.class,
                                format!("its predicate {pred_alias} failed: {message}"),
                            ));
                        }
                        return;
                    }
                }
            }
        };
        match &s.apply {
            Apply::Builtin(t) => {
                for i in selected {
                    let outcome = match &mut slots[i] {
                        Ok(Some(r)) => t.apply(&mut r.record_mut()),
                        _ => continue,
                    };
                    match outcome {
                        Ok(true) => {}
                        Ok(false) => slots[i] = Ok(None),
                        Err(message) => slots[i] = Err(fail(&s.alias, s.class, message)),
                    }
                }
            }
            Apply::Plugin(p) => {
                if selected.is_empty() {
                    return;
                }
                let batch = take(slots, &selected);
                match R::plugin_apply(p, &batch) {
                    Ok(out) => {
                        for &i in &selected {
                            slots[i] = Ok(None);
                        }
                        for (j, r) in out {
                            slots[selected[j]] = Ok(Some(r));
                        }
                    }
                    Err(message) if batch.len() == 1 => {
                        slots[selected[0]] = Err(fail(&s.alias, s.class, message));
                    }
                    Err(_) => {
                        // One record failed the batch: apply one at a time so that
                        // only the records that fail are failed.
                        for (&i, r) in selected.iter().zip(batch) {
                            slots[i] = match R::plugin_apply(p, std::slice::from_ref(&r)) {
                                Ok(mut out) => Ok(out.pop().map(|(_, r)| r)),
                                Err(message) => Err(fail(&s.alias, s.class, message)),
                            };
                        }
                    }
                }
            }
        }
    }
}

/// Move the records at `at` (all live) out of `slots`.
fn take<R: Rec>(slots: &mut [Slot<R>], at: &[usize]) -> Vec<R> {
    at.iter()
        .filter_map(|&i| match &mut slots[i] {
            Ok(Some(r)) => Some(std::mem::replace(r, R::placeholder())),
            _ => None,
        })
        .collect()
}

/// Put records taken by [`take`] back.
fn put_back<R: Rec>(slots: &mut [Slot<R>], at: &[usize], records: Vec<R>) {
    for (&i, r) in at.iter().zip(records) {
        slots[i] = Ok(Some(r));
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
    /// A plugin's version of it; `None` for a built-in (the worker's version).
    pub version: Option<String>,
}

fn plugin_of(d: &Def) -> TransformPlugin {
    TransformPlugin {
        class: d.class,
        aliases: vec![d.short()],
        kind: d.kind(),
        doc: d.doc,
        version: None,
        config: d
            .keys
            .iter()
            .zip(1..)
            .map(|(k, order)| k.info("", None, order))
            .collect(),
    }
}

fn from_plugin(t: &crate::plugin::PluginTransform) -> TransformPlugin {
    TransformPlugin {
        class: plugin::intern(t.name()),
        aliases: t.aliases().iter().map(|a| plugin::intern(a)).collect(),
        kind: plugin::kind_of(t),
        doc: "",
        config: t.info().config_def.clone(),
        version: Some(t.version().to_owned()),
    }
}

/// Every transform and predicate: the built-ins, then those of the worker's plugins
/// (a plugin's that a built-in's name hides is left out: the built-in is what that name
/// means).
pub fn catalog() -> Vec<TransformPlugin> {
    let mut out: Vec<TransformPlugin> = defs().map(plugin_of).collect();
    out.extend(
        plugin::all()
            .iter()
            .filter(|t| find_def(t.name()).is_none())
            .map(|t| from_plugin(t)),
    );
    out
}

/// The transform or predicate `name` stands for (class name or short name): a built-in,
/// else a plugin's.
pub fn lookup(name: &str) -> Option<TransformPlugin> {
    find_def(name)
        .map(plugin_of)
        .or_else(|| plugin::find(name).ok().flatten().map(|t| from_plugin(&t)))
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

/// What a `PREFIX.type` names: a built-in or a plugin's transform or predicate.
enum Resolved {
    Builtin(&'static Def),
    Plugin(Arc<crate::plugin::PluginTransform>),
}

impl Resolved {
    fn kind(&self) -> PluginKind {
        match self {
            Resolved::Builtin(d) => d.kind(),
            Resolved::Plugin(t) => plugin::kind_of(t),
        }
    }
}

/// The definition named by `PREFIX.type`, or the error that says why there is none.
fn type_of(props: &Props, prefix: &str, kind: PluginKind) -> Result<Resolved, ConfigError> {
    let key = format!("{prefix}type");
    let word = kind.as_str();
    let known = || {
        let mut names: Vec<String> = defs()
            .filter(|d| d.kind() == kind)
            .map(|d| d.short().to_owned())
            .collect();
        names.extend(plugin::names(kind));
        names.join(", ")
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
    let found = match find_def(name) {
        Some(d) => Some(Resolved::Builtin(d)),
        None => match plugin::find(name) {
            Ok(found) => found.map(Resolved::Plugin),
            Err(message) => {
                return Err(ConfigError {
                    key,
                    message: format!("{alias}: {message}"),
                });
            }
        },
    };
    match found {
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
                 org.apache.kafka.connect.transforms.RegexRouter, or by the name after the package; \
                 a transform from a plugin needs its library on plugin.path: \
                 `tributary plugin list` shows what is installed)",
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
    let mut predicates: Vec<(String, Option<Pred>)> = Vec::new();
    let mut has_plugin = false;
    for alias in predicate_aliases {
        let prefix = format!("predicates.{alias}.");
        let built = match type_of(props, &prefix, PluginKind::Predicate) {
            Err(e) => {
                errors.push(e);
                None
            }
            Ok(Resolved::Plugin(t)) => match plugin::PluginStage::build(t, &prefix, props) {
                Ok(stage) => {
                    has_plugin = true;
                    Some(Pred::Plugin(Arc::new(stage)))
                }
                Err(e) => {
                    errors.extend(e);
                    None
                }
            },
            Ok(Resolved::Builtin(def)) => {
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
                    build(&conf)
                        .map_err(|e| errors.push(e))
                        .ok()
                        .map(Pred::Builtin)
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
                Some((a, built)) => {
                    // A predicate that failed to build has its own error already.
                    ok &= built.is_some();
                    built.clone().map(|b| (b, plugin::intern(a)))
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
            Ok(Resolved::Builtin(d)) => d,
            Ok(Resolved::Plugin(t)) => {
                let class = plugin::intern(t.name());
                match plugin::PluginStage::build(t, &prefix, props) {
                    Ok(stage) if ok => {
                        has_plugin = true;
                        stages.push(Stage {
                            alias,
                            class,
                            apply: Apply::Plugin(stage),
                            predicate: predicate.map(|(p, a)| (p, a, negate)),
                        });
                    }
                    Ok(_) => {}
                    Err(e) => errors.extend(e),
                }
                continue;
            }
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
                apply: Apply::Builtin(transform),
                predicate: predicate.map(|(p, a)| (p, a, negate)),
            }),
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        has_plugin |= stages.iter().any(|s| {
            matches!(s.apply, Apply::Plugin(_))
                || matches!(s.predicate, Some((Pred::Plugin(_), _, _)))
        });
        Ok(Chain { stages, has_plugin })
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
            let resolved = type_of(props, &prefix, kind).ok();
            if let Some(Resolved::Builtin(def)) = &resolved {
                keys.extend(def.keys.iter().copied());
            }
            for (k, order) in keys.iter().zip(0..) {
                push(k.info(&prefix, Some(&group), order));
            }
            if let Some(Resolved::Plugin(t)) = &resolved {
                for (k, order) in plugin::key_infos(t, &prefix, &group).into_iter().zip(3..) {
                    push(ConfigKeyInfo {
                        order_in_group: order,
                        ..k
                    });
                }
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

/// What a transform derived from the last input schema it saw (the output schema, and
/// whatever else depends on the schema alone), as Kafka's InsertField and ReplaceField cache
/// their updated schema per input schema: the records of a source share their schema, so
/// the derivation runs once per schema instead of once per record, and the records leave
/// sharing one output schema. Kept per thread ([`Local`]: no lock per record). A derivation
/// that fails is not kept (each record reports it).
#[derive(Debug)]
pub(crate) struct Derived<T> {
    last: Local<Option<(Schema, T)>>,
}

impl<T> Default for Derived<T> {
    fn default() -> Self {
        Derived {
            last: Local::default(),
        }
    }
}

impl<T: Clone + 'static> Derived<T> {
    /// The derivation for `input`: the kept one when `input` is the same schema (one handle
    /// or an equal one), else `make(input)`, kept.
    pub(crate) fn get(
        &self,
        input: &Schema,
        make: impl FnOnce(&Schema) -> Result<T, String>,
    ) -> Result<T, String> {
        let kept = self.last.with(|last| match last {
            Some((seen, derived)) if seen.same(input) || seen == input => {
                if !seen.same(input) {
                    *seen = input.clone();
                }
                Some(derived.clone())
            }
            _ => None,
        });
        if let Some(Some(derived)) = kept {
            return Ok(derived);
        }
        let derived = make(input)?;
        self.last
            .with(|last| *last = Some((input.clone(), derived.clone())));
        Ok(derived)
    }
}

#[cfg(test)]
pub(crate) mod tests;
