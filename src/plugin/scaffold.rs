//! `tributary plugin new`: a new plugin crate (a source or sink connector, or a single
//! message transform with `--transform`) that builds, tests and loads as it is, to be
//! changed into a real one.
//!
//! The crate follows the layout of the connectors in this repository
//! (`{Cargo.toml, README.md, src/{lib.rs, config.rs, source.rs|sink.rs}}`), is its own cargo
//! workspace (so it builds wherever it is put), and depends on `tributary-plugin-sdk` by
//! path: the SDK of the source tree this `tributary` was built from, or the one `--sdk`
//! names. A plugin must be built against the SDK of the worker's ABI version, which is why
//! the default is the worker's own source tree rather than a published version.
//!
//! What this module is not: it never overwrites anything (an existing directory is refused),
//! and it runs no cargo command; building is the user's next step.

use std::path::{Path, PathBuf};

use super::ConnectorType;

/// What kind of plugin to scaffold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaffoldKind {
    Source,
    Sink,
    /// A single message transform (`Transformation`).
    Transform,
}

impl From<ConnectorType> for ScaffoldKind {
    fn from(kind: ConnectorType) -> ScaffoldKind {
        match kind {
            ConnectorType::Source => ScaffoldKind::Source,
            ConnectorType::Sink => ScaffoldKind::Sink,
        }
    }
}

impl std::fmt::Display for ScaffoldKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ScaffoldKind::Source => "source connector",
            ScaffoldKind::Sink => "sink connector",
            ScaffoldKind::Transform => "transform",
        })
    }
}

/// The SDK of the source tree this binary was built from (it may be gone at run time).
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/plugins/sdk");

/// What to scaffold.
#[derive(Debug, Clone)]
pub struct ScaffoldOptions {
    /// The crate (package) name, e.g. `my-source`.
    pub name: String,
    pub kind: ScaffoldKind,
    /// The directory the crate's directory is created in.
    pub parent: PathBuf,
    /// The `tributary-plugin-sdk` crate directory, or a tributary checkout holding it in
    /// `plugins/sdk`; `None` for the source tree this binary was built from.
    pub sdk: Option<PathBuf>,
}

/// A scaffolded crate.
#[derive(Debug, Clone)]
pub struct Scaffolded {
    /// The crate's directory.
    pub dir: PathBuf,
    pub crate_name: String,
    /// The Rust library name (`-` replaced by `_`).
    pub lib_name: String,
    /// The connector's full name (`connector.class`), or the transform's
    /// (`transforms.NAME.type`).
    pub connector_class: String,
    pub kind: ScaffoldKind,
    /// The SDK it depends on.
    pub sdk: PathBuf,
    /// The files written, relative to `dir`.
    pub files: Vec<PathBuf>,
}

impl Scaffolded {
    /// The file name of the plugin library cargo builds (`lib<name>.so` on Linux).
    pub fn library_file_name(&self) -> String {
        format!(
            "{}{}{}",
            std::env::consts::DLL_PREFIX,
            self.lib_name,
            std::env::consts::DLL_SUFFIX
        )
    }
}

/// Why a crate could not be scaffolded.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "{name:?} is not a valid plugin crate name: {reason}; use lowercase ASCII letters, \
         digits, - and _, starting with a letter"
    )]
    InvalidName { name: String, reason: String },
    #[error("{} already exists; choose another name or --dir, or remove it first", dir.display())]
    Exists { dir: PathBuf },
    #[error(
        "cannot find tributary-plugin-sdk: this tributary was built from a source tree whose \
         plugins/sdk ({}) is not there any more; pass --sdk with the plugins/sdk directory of a \
         tributary checkout of the same version as the worker",
        looked.display()
    )]
    NoSdk { looked: PathBuf },
    #[error(
        "{} is not the tributary-plugin-sdk crate ({reason}); pass --sdk the plugins/sdk \
         directory of a tributary checkout",
        path.display()
    )]
    BadSdk { path: PathBuf, reason: String },
    #[error("cannot create {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Names cargo or rustc refuse for a crate, or that would shadow a crate every plugin uses.
const RESERVED: &[&str] = &[
    // Rust keywords, strict and reserved.
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "gen",
    "macro",
    "override",
    "priv",
    "try",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    // The standard library's crates.
    "std",
    "core",
    "alloc",
    "proc_macro",
    "test",
    // The crates a plugin depends on.
    "tributary_plugin_sdk",
    "tributary_plugin_abi",
    // Names Windows cannot create as files.
    "con",
    "prn",
    "aux",
    "nul",
    "com1",
    "com2",
    "com3",
    "com4",
    "com5",
    "com6",
    "com7",
    "com8",
    "com9",
    "lpt1",
    "lpt2",
    "lpt3",
    "lpt4",
    "lpt5",
    "lpt6",
    "lpt7",
    "lpt8",
    "lpt9",
];

/// Check a plugin crate name: a cargo package name whose library name is a Rust identifier.
pub fn validate_crate_name(name: &str) -> Result<(), ScaffoldError> {
    let invalid = |reason: &str| ScaffoldError::InvalidName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let Some(first) = name.chars().next() else {
        return Err(invalid("it is empty"));
    };
    if name.len() > 64 {
        return Err(invalid("it is longer than 64 characters"));
    }
    if !first.is_ascii_lowercase() {
        return Err(invalid("it must start with a lowercase letter"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Err(invalid(&format!("it contains {c:?}")));
    }
    let lib = name.replace('-', "_");
    if RESERVED.contains(&lib.as_str()) {
        return Err(invalid("it is a reserved name in Rust or cargo"));
    }
    Ok(())
}

/// `my-source_2` → `MySource2`.
fn camel_case(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// A TOML basic string holding `s`.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The SDK to depend on, as an absolute path: `given` (the SDK crate, or a tributary
/// checkout holding it in `plugins/sdk`), or the built-in source tree's.
pub fn resolve_sdk(given: Option<&Path>) -> Result<PathBuf, ScaffoldError> {
    let Some(given) = given else {
        let built = PathBuf::from(BUILT_SDK);
        if !built.join("Cargo.toml").is_file() {
            return Err(ScaffoldError::NoSdk { looked: built });
        }
        return check_sdk(&built);
    };
    match check_sdk(given) {
        Err(e) => {
            // A tributary checkout: its SDK is in plugins/sdk.
            let nested = given.join("plugins/sdk");
            if nested.join("Cargo.toml").is_file() {
                check_sdk(&nested)
            } else {
                Err(e)
            }
        }
        found => found,
    }
}

fn check_sdk(dir: &Path) -> Result<PathBuf, ScaffoldError> {
    let bad = |reason: String| ScaffoldError::BadSdk {
        path: dir.to_path_buf(),
        reason,
    };
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| bad(format!("cannot read {}: {e}", manifest.display())))?;
    let named = text.lines().any(|l| {
        l.split_once('=').is_some_and(|(k, v)| {
            k.trim() == "name" && v.trim().trim_matches('"') == "tributary-plugin-sdk"
        })
    });
    if !named {
        return Err(bad(format!(
            "{} does not name the package tributary-plugin-sdk",
            manifest.display()
        )));
    }
    std::fs::canonicalize(dir).map_err(|e| bad(format!("cannot resolve the path: {e}")))
}

/// The names derived from a crate name.
struct Names {
    /// The library name: `my_source`.
    lib: String,
    /// The connector type: `HttpSource` for `http` or `http-source`.
    ty: String,
    /// `connector.class`: `com.example.http_source.HttpSourceConnector`.
    class: String,
}

impl Names {
    fn new(name: &str, kind: ScaffoldKind) -> Names {
        let lib = name.replace('-', "_");
        let suffix = match kind {
            ScaffoldKind::Source => "Source",
            ScaffoldKind::Sink => "Sink",
            ScaffoldKind::Transform => "Transform",
        };
        // `http-source-connector` is an HttpSource, not an HttpSourceConnectorSource.
        let mut base = camel_case(name);
        for redundant in ["Connector", suffix] {
            if let Some(rest) = base.strip_suffix(redundant)
                && !rest.is_empty()
            {
                base = rest.to_owned();
            }
        }
        let ty = format!("{base}{suffix}");
        let class = match kind {
            ScaffoldKind::Transform => format!("com.example.{lib}.{ty}"),
            _ => format!("com.example.{lib}.{ty}Connector"),
        };
        Names { lib, ty, class }
    }
}

/// The files of a new crate (paths relative to its directory), without writing anything.
pub fn render(name: &str, kind: ScaffoldKind, sdk: &Path) -> Vec<(PathBuf, String)> {
    let Names { lib, ty, class } = Names::new(name, kind);
    let templates = match kind {
        ScaffoldKind::Source => SOURCE_FILES,
        ScaffoldKind::Sink => SINK_FILES,
        ScaffoldKind::Transform => TRANSFORM_FILES,
    };
    // A transform has its own README.
    let common = COMMON_FILES
        .iter()
        .filter(|(path, _)| kind != ScaffoldKind::Transform || *path != "README.md");
    let fill = |template: &str| {
        template
            .replace("__CRATE__", name)
            .replace("__LIB__", &lib)
            .replace("__TYPE__", &ty)
            .replace("__CLASS__", &class)
            .replace("__KIND__", &kind.to_string())
            .replace("__SDK__", &toml_string(&sdk.to_string_lossy()))
    };
    common
        .chain(templates)
        .map(|(path, template)| (PathBuf::from(path), fill(template)))
        .collect()
}

/// Create the crate `options.name` in `options.parent`.
pub fn scaffold(options: &ScaffoldOptions) -> Result<Scaffolded, ScaffoldError> {
    validate_crate_name(&options.name)?;
    let sdk = resolve_sdk(options.sdk.as_deref())?;
    let dir = options.parent.join(&options.name);
    if dir.symlink_metadata().is_ok() {
        return Err(ScaffoldError::Exists { dir });
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ScaffoldError::Io { path, source }
    };
    std::fs::create_dir_all(&options.parent).map_err(io(&options.parent))?;
    // `create_dir`, not `create_dir_all`: if it appeared meanwhile, it is not ours.
    std::fs::create_dir(&dir).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            ScaffoldError::Exists { dir: dir.clone() }
        } else {
            ScaffoldError::Io {
                path: dir.clone(),
                source,
            }
        }
    })?;
    let files = render(&options.name, options.kind, &sdk);
    let write = || -> Result<Vec<PathBuf>, ScaffoldError> {
        let mut written = Vec::new();
        for (rel, text) in &files {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::write(&path, text).map_err(io(&path))?;
            written.push(rel.clone());
        }
        Ok(written)
    };
    let written = match write() {
        Ok(w) => w,
        Err(e) => {
            // The directory is ours (created above): leave nothing half-made.
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    let names = Names::new(&options.name, options.kind);
    Ok(Scaffolded {
        dir,
        crate_name: options.name.clone(),
        connector_class: names.class,
        lib_name: names.lib,
        kind: options.kind,
        sdk,
        files: written,
    })
}

// The templates. Placeholders: __CRATE__ (package name), __LIB__ (library name), __TYPE__
// (connector type name), __CLASS__ (connector.class), __KIND__ (source or sink), __SDK__
// (the SDK path as a TOML string).

const COMMON_FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        r#"[package]
name = "__CRATE__"
version = "0.1.0"
edition = "2024"
description = "A Tributary __KIND__ plugin"
publish = false

[lib]
# cdylib: the shared library the worker loads from plugin.path; rlib: the same code as an
# ordinary Rust library, for the tests.
crate-type = ["cdylib", "rlib"]

[dependencies]
# The worker refuses a plugin built for another ABI version than its own: build against the
# SDK of the tributary you run (`tributary plugin new --sdk PATH` chooses another).
tributary-plugin-sdk = { path = __SDK__ }

# Its own workspace, so that it builds wherever it is. To make it a member of another
# workspace instead, remove this table and list it in that workspace's members.
[workspace]

[profile.release]
# A panic in a connector must unwind to the SDK's boundary, which turns it into a failed
# task; with "abort" it would take the whole worker down. "unwind" is cargo's default: keep
# it. In a workspace, set it in the workspace's Cargo.toml (a member's profiles are ignored).
panic = "unwind"
"#,
    ),
    (".gitignore", "/target\n"),
    (
        "README.md",
        r#"# __CRATE__

A Tributary __KIND__ plugin: `__CLASS__` (also `__TYPE__Connector`, `__TYPE__`).
Made by `tributary plugin new`; see `docs/writing-a-plugin.md` in the Tributary repository.

```sh
cargo test                 # the connector through the SDK's test harness
cargo build --release      # the plugin: target/release/lib__LIB__.so
cp target/release/lib__LIB__.so /path/on/plugin.path/
tributary plugin list --plugin-path /path/on/plugin.path
```

A running worker picks the file up without a restart. Its keys are in `src/config.rs`.
"#,
    ),
];

const SOURCE_FILES: &[(&str, &str)] = &[
    (
        "src/lib.rs",
        r#"//! __TYPE__ (`__CLASS__`): a source connector whose tasks each count up from 0.
//! Every poll returns `batch.size` records whose values are the next numbers (`int64`, with
//! their schema), keyed by the task, with the count as the source offset, one batch every
//! `poll.interval.ms`. Replace the counting with reading your system.
//!
//! Build with `cargo build --release` and copy `target/release/lib__LIB__.so` into a
//! directory on the worker's `plugin.path`.

pub mod config;
pub mod source;

pub use source::__TYPE__;
pub use source::__TYPE__Task;

// The library's exported symbols: its ABI version and the entry point the worker calls.
tributary_plugin_sdk::export_plugin! {
    sources: [__TYPE__]
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_plugin_sdk::Value;
    use tributary_plugin_sdk::testing::{SourceHarness, config};

    type Harness = SourceHarness<__TYPE__>;

    #[test]
    fn each_task_counts_from_zero() {
        let mut h = Harness::start(
            config(&[
                ("topic", "numbers"),
                ("batch.size", "3"),
                ("poll.interval.ms", "0"),
            ]),
            2,
        )
        .unwrap();
        assert_eq!(h.task_count(), 2);
        let mut records = h.poll(1).unwrap();
        records.extend(h.poll(1).unwrap());
        let values: Vec<Value> = records.iter().map(|r| r.value.value.clone()).collect();
        assert_eq!(values, (0..6).map(Value::Int64).collect::<Vec<_>>());
        assert_eq!(records[0].topic, "numbers");
        assert_eq!(records[0].source_partition["task"], Value::Int32(1));
        assert_eq!(records[5].source_offset["position"], Value::Int64(6));
        assert_eq!(h.poll(0).unwrap()[0].value.value, Value::Int64(0));
        h.stop().unwrap();
    }

    #[test]
    fn a_config_without_a_topic_is_refused() {
        let answers = Harness::validate(&config(&[("batch.size", "0")])).unwrap();
        let bad: Vec<&str> = answers
            .iter()
            .filter(|a| !a.errors.is_empty())
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(bad, ["topic", "batch.size"]);
        assert!(Harness::start(config(&[]), 1).is_err());
    }
}
"#,
    ),
    (
        "src/config.rs",
        r#"//! The connector's config keys, declared once: the worker validates configs with this
//! definition, its REST API describes the keys from it, and the tasks parse it into a typed
//! config.

use std::time::Duration;

use tributary_plugin_sdk::{
    ConfigDef, ConfigKey, ConnectError, Importance, RawConfig, Result, Validator,
};

pub const TOPIC: &str = "topic";
pub const BATCH_SIZE: &str = "batch.size";
pub const POLL_INTERVAL_MS: &str = "poll.interval.ms";
/// Not for users: the connector sets it in each task's config.
pub const TASK_ID: &str = "task.id";

pub fn config_def() -> ConfigDef {
    ConfigDef::new()
        .define(
            ConfigKey::string(TOPIC)
                .validator(Validator::non_empty())
                .importance(Importance::High)
                .doc("The topic the records are written to."),
        )
        .define(
            ConfigKey::int(BATCH_SIZE)
                .default("10")
                .validator(Validator::between(1, 10_000))
                .importance(Importance::Medium)
                .doc("Records returned by each poll."),
        )
        .define(
            ConfigKey::long(POLL_INTERVAL_MS)
                .default("1000")
                .validator(Validator::between(0, 86_400_000))
                .importance(Importance::Low)
                .doc("Milliseconds between two batches."),
        )
}

/// A task's config, typed.
#[derive(Debug, Clone)]
pub struct __TYPE__Config {
    pub topic: String,
    pub batch_size: usize,
    pub poll_interval: Duration,
    pub task_id: i32,
}

impl __TYPE__Config {
    /// Parse a task's config; every error names its key.
    pub fn parse(raw: &RawConfig) -> Result<__TYPE__Config> {
        let c = config_def().parse(raw)?;
        let task_id = match raw.get(TASK_ID) {
            Some(v) => v
                .parse()
                .map_err(|_| ConnectError::new(format!("{TASK_ID}={v:?} is not a task number")))?,
            None => 0,
        };
        Ok(__TYPE__Config {
            topic: c.string(TOPIC).unwrap_or_default().to_owned(),
            batch_size: c.int(BATCH_SIZE).map_or(10, |n| n as usize),
            poll_interval: Duration::from_millis(
                c.long(POLL_INTERVAL_MS).map_or(1000, |n| n as u64),
            ),
            task_id,
        })
    }
}
"#,
    ),
    (
        "src/source.rs",
        r#"//! `__TYPE__`: the connector (splits the work into tasks) and its task (makes the
//! records).

use std::time::{Duration, Instant};

use tributary_plugin_sdk::{
    Config, ConfigDef, ConnectError, Data, OffsetMap, RawConfig, Result, Schema, SourceConnector,
    SourceRecord, SourceTask, Value,
};

use crate::config::{self, __TYPE__Config};

/// The connector: the worker creates it, starts it with the user's config (already checked
/// against `config_def`), and asks how to split the work into at most `tasks.max` tasks.
#[derive(Debug, Default)]
pub struct __TYPE__ {
    originals: RawConfig,
}

impl SourceConnector for __TYPE__ {
    /// What users write in `connector.class` (`__TYPE__Connector` and `__TYPE__` work too).
    /// Change `com.example` to a namespace of your own.
    const NAME: &'static str = "__CLASS__";
    type Task = __TYPE__Task;

    fn config_def() -> ConfigDef {
        config::config_def()
    }

    fn start(&mut self, config: Config) -> Result<()> {
        // Connect to the outside system here if splitting the work needs it.
        self.originals = config.originals().clone();
        Ok(())
    }

    fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<RawConfig>> {
        // Every task counts on its own, under its own source partition.
        Ok((0..max_tasks)
            .map(|task| {
                let mut c = self.originals.clone();
                c.insert(config::TASK_ID.to_owned(), task.to_string());
                c
            })
            .collect())
    }

    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

/// One task: counts up from 0, a batch every `poll.interval.ms`.
#[derive(Debug, Default)]
pub struct __TYPE__Task {
    config: Option<__TYPE__Config>,
    /// The source partition of every record: which task counted it.
    partition: OffsetMap,
    /// The next number.
    next: i64,
    last_batch: Option<Instant>,
}

impl SourceTask for __TYPE__Task {
    fn start(&mut self, raw: RawConfig) -> Result<()> {
        let config = __TYPE__Config::parse(&raw)?;
        self.partition = [("task".to_owned(), Value::Int32(config.task_id))].into();
        // A source that must not repeat itself after a restart reads the committed offset
        // of `self.partition` here, through the task context the worker hands to
        // `initialize`, and resumes after it. This one starts from 0 again.
        self.next = 0;
        self.config = Some(config);
        Ok(())
    }

    fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        let config = self
            .config
            .as_ref()
            .ok_or_else(|| ConnectError::new("poll was called before start"))?;
        // Not due yet: wait, at most a second (so that the worker can stop the task
        // promptly), then answer an empty batch if it is still not time.
        if let Some(last) = self.last_batch {
            let due = last + config.poll_interval;
            let now = Instant::now();
            if now < due {
                std::thread::sleep((due - now).min(Duration::from_secs(1)));
                if Instant::now() < due {
                    return Ok(Vec::new());
                }
            }
        }
        self.last_batch = Some(Instant::now());
        let mut records = Vec::with_capacity(config.batch_size);
        for _ in 0..config.batch_size {
            let value = Data::with_schema(Schema::int64(), Value::Int64(self.next))?;
            self.next += 1;
            // Where to resume after this record.
            let offset: OffsetMap = [("position".to_owned(), Value::Int64(self.next))].into();
            records.push(
                SourceRecord::new(config.topic.clone(), value)
                    .with_key(Data::string(format!("task-{}", config.task_id)))
                    .with_source(self.partition.clone(), offset),
            );
        }
        Ok(records)
    }

    fn stop(&mut self) -> Result<()> {
        // Release connections and files here.
        Ok(())
    }
}
"#,
    ),
];

const TRANSFORM_FILES: &[(&str, &str)] = &[
    (
        "README.md",
        r#"# __CRATE__

A Tributary single message transform plugin: `__CLASS__` (also `__TYPE__`).
Made by `tributary plugin new --transform`; see `docs/writing-a-plugin.md` in the Tributary
repository.

```sh
cargo test                 # the transform through the SDK's test harness
cargo build --release      # the plugin: target/release/lib__LIB__.so
cp target/release/lib__LIB__.so /path/on/plugin.path/
tributary plugin list --plugin-path /path/on/plugin.path
```

Use it in any connector's config:

```json
"transforms": "tag",
"transforms.tag.type": "__CLASS__",
"transforms.tag.header": "origin",
"transforms.tag.value": "__CRATE__"
```
"#,
    ),
    (
        "src/lib.rs",
        r#"//! __TYPE__ (`__CLASS__`): a single message transform that adds a header to every
//! record (`header` = `value`) and, when `topic.prefix` is set, prefixes its topic.
//! Replace `apply` with your own transformation.
//!
//! Build with `cargo build --release` and copy `target/release/lib__LIB__.so` into a
//! directory on the worker's `plugin.path`; then set `transforms.NAME.type` to
//! `__CLASS__` (or `__TYPE__`) in a connector's config.

pub mod transform;

pub use transform::__TYPE__;

// The library's exported symbols: its ABI version and the entry point the worker calls.
tributary_plugin_sdk::export_plugin! {
    transforms: [__TYPE__],
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_plugin_sdk::testing::{TransformHarness, config};
    use tributary_plugin_sdk::{ConnectRecord, Data, SinkRecord, SourceRecord};

    #[test]
    fn adds_a_header_and_prefixes_the_topic() {
        let mut h = TransformHarness::<__TYPE__>::configure(config(&[
            ("header", "origin"),
            ("value", "test"),
            ("topic.prefix", "tagged-"),
        ]))
        .unwrap();
        let out = h
            .apply(vec![
                ConnectRecord::Source(SourceRecord::new("a", Data::string("x"))),
                ConnectRecord::Source(SourceRecord::new("b", Data::string("y"))),
            ])
            .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].topic(), "tagged-b");
        let header = &out[0].headers()[0];
        assert_eq!(header.key, "origin");
        assert_eq!(header.value, Data::string("test"));

        let sink = ConnectRecord::Sink(SinkRecord::new("s", 0, 7, Data::string("z")));
        assert_eq!(h.apply(vec![sink]).unwrap()[0].topic(), "tagged-s");
        h.close().unwrap();
    }

    #[test]
    fn a_config_without_a_header_is_refused() {
        assert!(TransformHarness::<__TYPE__>::configure(config(&[])).is_err());
    }
}
"#,
    ),
    (
        "src/transform.rs",
        r#"//! `__TYPE__`: the transformation and its config keys.

use tributary_plugin_sdk::{
    Config, ConfigDef, ConfigKey, ConnectRecord, Data, Header, Importance, Result, Transformation,
    Validator,
};

pub const HEADER: &str = "header";
pub const VALUE: &str = "value";
pub const TOPIC_PREFIX: &str = "topic.prefix";

#[derive(Debug, Default)]
pub struct __TYPE__ {
    header: String,
    value: String,
    topic_prefix: String,
}

impl Transformation for __TYPE__ {
    const NAME: &'static str = "__CLASS__";

    fn config_def() -> ConfigDef {
        ConfigDef::new()
            .define(
                ConfigKey::string(HEADER)
                    .validator(Validator::non_empty())
                    .importance(Importance::High)
                    .doc("The header added to every record."),
            )
            .define(
                ConfigKey::string(VALUE)
                    .default("")
                    .importance(Importance::Medium)
                    .doc("The header's value (a string)."),
            )
            .define(
                ConfigKey::string(TOPIC_PREFIX)
                    .default("")
                    .importance(Importance::Low)
                    .doc("Prepended to every record's topic; empty: topics are kept."),
            )
    }

    fn configure(&mut self, config: Config) -> Result<()> {
        self.header = config.string(HEADER).unwrap_or_default().to_owned();
        self.value = config.string(VALUE).unwrap_or_default().to_owned();
        self.topic_prefix = config.string(TOPIC_PREFIX).unwrap_or_default().to_owned();
        Ok(())
    }

    fn apply(&mut self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        record.headers_mut().push(Header {
            key: self.header.clone(),
            value: Data::string(self.value.clone()),
        });
        if !self.topic_prefix.is_empty() {
            let topic = format!("{}{}", self.topic_prefix, record.topic());
            record.set_topic(topic);
        }
        Ok(Some(record))
    }
}
"#,
    ),
];

const SINK_FILES: &[(&str, &str)] = &[
    (
        "src/lib.rs",
        r#"//! __TYPE__ (`__CLASS__`): a sink connector whose tasks count the records they are
//! given (and print them with `print.records=true`), and let the worker commit exactly
//! what they counted. Replace the counting with writing to your system.
//!
//! Build with `cargo build --release` and copy `target/release/lib__LIB__.so` into a
//! directory on the worker's `plugin.path`.

pub mod config;
pub mod sink;

pub use sink::__TYPE__;
pub use sink::__TYPE__Task;

// The library's exported symbols: its ABI version and the entry point the worker calls.
tributary_plugin_sdk::export_plugin! {
    sinks: [__TYPE__]
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_plugin_sdk::testing::{SinkHarness, config};
    use tributary_plugin_sdk::{Data, Offsets, SinkRecord, TopicPartition};

    type Harness = SinkHarness<__TYPE__>;

    #[test]
    fn a_task_commits_what_it_wrote() {
        let mut h = Harness::start(config(&[]), 1).unwrap();
        let tp = TopicPartition::new("numbers", 0);
        h.open(0, std::slice::from_ref(&tp)).unwrap();
        let batch = (10..15)
            .map(|offset| SinkRecord::new("numbers", 0, offset, Data::string("hello")))
            .collect();
        h.put(0, batch).unwrap();
        let offered: Offsets = [(tp.clone(), 20), (TopicPartition::new("numbers", 1), 3)].into();
        assert_eq!(
            h.pre_commit(0, offered).unwrap(),
            Offsets::from([(tp.clone(), 15)])
        );
        h.close(0, &[tp]).unwrap();
        h.stop().unwrap();
    }

    #[test]
    fn a_bad_value_is_refused_with_its_key() {
        let answers = Harness::validate(&config(&[("print.records", "sometimes")])).unwrap();
        let bad: Vec<&str> = answers
            .iter()
            .filter(|a| !a.errors.is_empty())
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(bad, ["print.records"]);
    }
}
"#,
    ),
    (
        "src/config.rs",
        r#"//! The connector's config keys, declared once: the worker validates configs with this
//! definition, its REST API describes the keys from it, and the tasks parse it into a typed
//! config. (`topics` and `topics.regex` are the worker's keys, not the connector's.)

use tributary_plugin_sdk::{ConfigDef, ConfigKey, Importance, RawConfig, Result};

pub const PRINT_RECORDS: &str = "print.records";

pub fn config_def() -> ConfigDef {
    ConfigDef::new().define(
        ConfigKey::boolean(PRINT_RECORDS)
            .default("false")
            .importance(Importance::Low)
            .doc("Print every record to the worker's standard error (to try the plugin out)."),
    )
}

/// A task's config, typed.
#[derive(Debug, Clone)]
pub struct __TYPE__Config {
    pub print_records: bool,
}

impl __TYPE__Config {
    /// Parse a task's config; every error names its key.
    pub fn parse(raw: &RawConfig) -> Result<__TYPE__Config> {
        let c = config_def().parse(raw)?;
        Ok(__TYPE__Config {
            print_records: c.boolean(PRINT_RECORDS).unwrap_or(false),
        })
    }
}
"#,
    ),
    (
        "src/sink.rs",
        r#"//! `__TYPE__`: the connector (splits the work into tasks) and its task (writes the
//! records).

use tributary_plugin_sdk::{
    Config, ConfigDef, Offsets, RawConfig, Result, SinkConnector, SinkRecord, SinkTask,
    TopicPartition,
};

use crate::config::{self, __TYPE__Config};

/// The connector: the worker creates it, starts it with the user's config (already checked
/// against `config_def`), and asks for at most `tasks.max` task configs; the worker then
/// shares the topics' partitions among the tasks.
#[derive(Debug, Default)]
pub struct __TYPE__ {
    originals: RawConfig,
}

impl SinkConnector for __TYPE__ {
    /// What users write in `connector.class` (`__TYPE__Connector` and `__TYPE__` work too).
    /// Change `com.example` to a namespace of your own.
    const NAME: &'static str = "__CLASS__";
    type Task = __TYPE__Task;

    fn config_def() -> ConfigDef {
        config::config_def()
    }

    fn start(&mut self, config: Config) -> Result<()> {
        self.originals = config.originals().clone();
        Ok(())
    }

    fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<RawConfig>> {
        Ok(vec![self.originals.clone(); max_tasks])
    }

    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

/// One task: counts (and maybe prints) what it is given.
#[derive(Debug, Default)]
pub struct __TYPE__Task {
    config: Option<__TYPE__Config>,
    /// Records written so far.
    pub records: u64,
    /// Per partition, the offset after the last record written: what may be committed.
    written: Offsets,
}

impl SinkTask for __TYPE__Task {
    fn start(&mut self, raw: RawConfig) -> Result<()> {
        // Open connections here; a failure that may pass is `ConnectError::retriable`.
        self.config = Some(__TYPE__Config::parse(&raw)?);
        Ok(())
    }

    fn put(&mut self, records: Vec<SinkRecord>) -> Result<()> {
        let print = self.config.as_ref().is_some_and(|c| c.print_records);
        for record in &records {
            // Write the record to your system here. If that fails in a way that may pass
            // (a timeout), return `ConnectError::retriable`: the worker calls `put` again
            // with the same batch.
            if print {
                eprintln!(
                    "{}-{} offset {}: key {:?} value {:?}",
                    record.topic,
                    record.partition,
                    record.offset,
                    record.key.value,
                    record.value.value
                );
            }
            self.records += 1;
            let next = self.written.entry(record.topic_partition()).or_insert(0);
            *next = (*next).max(record.offset + 1);
        }
        Ok(())
    }

    fn pre_commit(&mut self, offsets: Offsets) -> Result<Offsets> {
        // The worker offers the offsets it has delivered; answer those that are durable in
        // your system (flush what is buffered first). Here `put` wrote everything.
        Ok(offsets
            .into_iter()
            .filter_map(|(tp, offered)| self.written.get(&tp).map(|w| (tp, offered.min(*w))))
            .collect())
    }

    fn close(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        for tp in partitions {
            self.written.remove(tp);
        }
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}
"#,
    ),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::process::Command;
    use std::sync::Arc;

    use tributary_plugin_abi::data::{Data, Value};
    use tributary_plugin_abi::record::{Offsets, SinkRecord, TopicPartition};

    use super::*;
    use crate::plugin::{NoopHost, PluginLoader};

    #[test]
    fn crate_names_are_checked() {
        let check = |name: &str, ok: bool| {
            let result = validate_crate_name(name);
            assert_eq!(result.is_ok(), ok, "{name:?}: {result:?}");
            if let Err(e) = result {
                let text = e.to_string();
                assert!(text.contains(&format!("{name:?}")), "{text}");
                assert!(text.contains("lowercase ASCII letters"), "{text}");
            }
        };
        for good in ["http", "my-source", "my_sink2", "a", "x-1_y"] {
            check(good, true);
        }
        for bad in [
            "",
            "2fast",
            "-x",
            "_x",
            "My-Source",
            "my source",
            "my.source",
            "über",
            "../escape",
            "self",
            "std",
            "proc-macro",
            "tributary-plugin-sdk",
            "con",
            &"x".repeat(65),
        ] {
            check(bad, false);
        }
    }

    #[test]
    fn names_follow_the_crate_name() {
        let check = |name: &str, kind: ScaffoldKind, ty: &str, class: &str| {
            let n = Names::new(name, kind);
            assert_eq!((n.ty.as_str(), n.class.as_str()), (ty, class), "{name}");
        };
        use ScaffoldKind::{Sink, Source, Transform};
        check(
            "redact",
            Transform,
            "RedactTransform",
            "com.example.redact.RedactTransform",
        );
        check(
            "http",
            Source,
            "HttpSource",
            "com.example.http.HttpSourceConnector",
        );
        check(
            "http-source",
            Source,
            "HttpSource",
            "com.example.http_source.HttpSourceConnector",
        );
        check(
            "s3-sink-connector",
            Sink,
            "S3Sink",
            "com.example.s3_sink_connector.S3SinkConnector",
        );
        check(
            "source",
            Source,
            "SourceSource",
            "com.example.source.SourceSourceConnector",
        );
        check(
            "a_b-c2",
            Sink,
            "ABC2Sink",
            "com.example.a_b_c2.ABC2SinkConnector",
        );
    }

    #[test]
    fn paths_are_written_as_toml_strings() {
        assert_eq!(toml_string("/a/b"), r#""/a/b""#);
        assert_eq!(toml_string(r#"C:\x "y""#), r#""C:\\x \"y\"""#);
        assert_eq!(toml_string("a\nb\u{1}"), r#""a\nb\u0001""#);
    }

    #[test]
    fn the_sdk_is_found_or_refused_clearly() {
        let built = resolve_sdk(None).unwrap();
        assert!(built.ends_with("plugins/sdk"), "{}", built.display());
        // A checkout's root is accepted for its plugins/sdk.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert_eq!(resolve_sdk(Some(root)).unwrap(), built);

        let dir = tempfile::tempdir().unwrap();
        let err = resolve_sdk(Some(dir.path())).unwrap_err();
        assert!(matches!(err, ScaffoldError::BadSdk { .. }), "{err}");
        assert!(err.to_string().contains("pass --sdk"), "{err}");
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"other\"\n",
        )
        .unwrap();
        let err = resolve_sdk(Some(dir.path())).unwrap_err();
        assert!(
            err.to_string().contains("does not name the package"),
            "{err}"
        );
        let text = ScaffoldError::NoSdk {
            looked: PathBuf::from("/gone/plugins/sdk"),
        }
        .to_string();
        assert!(
            text.contains("/gone/plugins/sdk") && text.contains("--sdk"),
            "{text}"
        );
    }

    #[test]
    fn an_existing_directory_is_never_touched() {
        let parent = tempfile::tempdir().unwrap();
        let existing = parent.path().join("taken");
        std::fs::create_dir(&existing).unwrap();
        std::fs::write(existing.join("keep.txt"), "mine").unwrap();
        let options = ScaffoldOptions {
            name: "taken".into(),
            kind: ScaffoldKind::Source,
            parent: parent.path().to_path_buf(),
            sdk: None,
        };
        let err = scaffold(&options).unwrap_err();
        assert!(
            matches!(&err, ScaffoldError::Exists { dir } if *dir == existing),
            "{err}"
        );
        assert_eq!(
            std::fs::read_dir(&existing).unwrap().count(),
            1,
            "nothing was added"
        );
        // A bad name is refused before anything is created.
        let err = scaffold(&ScaffoldOptions {
            name: "Bad Name".into(),
            ..options
        })
        .unwrap_err();
        assert!(matches!(err, ScaffoldError::InvalidName { .. }), "{err}");
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 1);
    }

    fn cargo(args: &[&str], manifest: &Path, target_dir: &Path) {
        let out = Command::new(env!("CARGO"))
            .args(args)
            .arg("--quiet")
            .arg("--manifest-path")
            .arg(manifest)
            .arg("--target-dir")
            .arg(target_dir)
            .output()
            .expect("running cargo");
        assert!(
            out.status.success(),
            "cargo {args:?} on {} failed:\n{}{}",
            manifest.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    /// What `tributary plugin new` makes passes its own tests, builds, loads, and runs
    /// through the worker's side of the boundary, as a source and as a sink.
    #[test]
    fn scaffolded_plugins_build_load_and_run() {
        // A target directory of their own beside the one running these tests (a nested cargo
        // must not wait on the lock of the build running them); shared by both crates and
        // kept across runs, so the SDK is built once.
        let exe = std::env::current_exe().expect("the test binary's path");
        let target = exe
            .ancestors()
            .nth(3)
            .expect("the test binary lives in <target>/<profile>/deps")
            .join("plugin-scaffold-tests");
        let work = tempfile::tempdir().unwrap();
        let plugins = work.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();

        let mut made = Vec::new();
        for (name, kind) in [
            ("scaffold-check-source", ScaffoldKind::Source),
            ("scaffold-check-sink", ScaffoldKind::Sink),
            ("scaffold-check-transform", ScaffoldKind::Transform),
        ] {
            let crate_ = scaffold(&ScaffoldOptions {
                name: name.into(),
                kind,
                parent: work.path().to_path_buf(),
                sdk: None,
            })
            .unwrap();
            assert_eq!(crate_.dir, work.path().join(name));
            let manifest = crate_.dir.join("Cargo.toml");
            let text = std::fs::read_to_string(&manifest).unwrap();
            assert!(
                text.contains("crate-type = [\"cdylib\", \"rlib\"]"),
                "{text}"
            );
            assert!(text.contains("\n[workspace]\n"), "{text}");
            assert!(text.contains("panic = \"unwind\""), "{text}");
            // Formatted as rustfmt would (where rustfmt is installed).
            let rustfmt = Command::new(env!("CARGO"))
                .args(["fmt", "--version"])
                .output();
            if rustfmt.is_ok_and(|o| o.status.success()) {
                let out = Command::new(env!("CARGO"))
                    .args(["fmt", "--check", "--manifest-path"])
                    .arg(&manifest)
                    .output()
                    .expect("running cargo fmt");
                assert!(
                    out.status.success(),
                    "{name} is not formatted:\n{}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
            cargo(&["test"], &manifest, &target);
            cargo(&["build", "--lib"], &manifest, &target);
            let lib = target.join("debug").join(crate_.library_file_name());
            std::fs::copy(&lib, plugins.join(crate_.library_file_name())).unwrap();
            made.push(crate_);
        }

        let registry = PluginLoader::new(work.path().join("cache")).scan(&[plugins]);
        assert!(registry.issues().is_empty(), "{}", registry.render());

        // The source: its connector splits, its task counts.
        let source = registry.lookup("ScaffoldCheckSource").unwrap().clone();
        assert_eq!(source.name(), made[0].connector_class);
        assert_eq!(source.kind(), ConnectorType::Source);
        let mut connector = source.new_connector().unwrap();
        connector
            .start(
                &config(&[
                    ("topic", "numbers"),
                    ("batch.size", "4"),
                    ("poll.interval.ms", "0"),
                ]),
                Arc::new(NoopHost),
            )
            .unwrap();
        let task_configs = connector.task_configs(2).unwrap();
        assert_eq!(task_configs.len(), 2);
        let mut task = source.new_source_task().unwrap();
        task.start(&task_configs[1], Arc::new(NoopHost)).unwrap();
        let batch = task.poll_batch().unwrap();
        // Source positions cross per batch: task 1's partition, after its 4th record.
        let sources = batch.sources().unwrap();
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].0["task"], Value::Int32(1));
        assert_eq!(sources[0].1["position"], Value::Int64(4));
        let records = batch.to_owned().unwrap();
        let values: Vec<&Value> = records.iter().map(|r| &r.value.value).collect();
        assert_eq!(
            values,
            [0, 1, 2, 3].map(Value::Int64).iter().collect::<Vec<_>>()
        );
        assert_eq!(records[0].topic, "numbers");
        task.stop().unwrap();
        connector.stop().unwrap();

        // The sink: takes those records, commits what it wrote.
        let sink = registry.lookup("ScaffoldCheckSink").unwrap().clone();
        assert_eq!(sink.name(), made[1].connector_class);
        let mut sink_task = sink.new_sink_task().unwrap();
        sink_task
            .start(&config(&[("print.records", "false")]), Arc::new(NoopHost))
            .unwrap();
        let tp = TopicPartition::new("numbers", 0);
        sink_task.open(std::slice::from_ref(&tp)).unwrap();
        let delivered: Vec<SinkRecord> = records
            .iter()
            .enumerate()
            .map(|(i, r)| SinkRecord::new("numbers", 0, 100 + i as i64, r.value.clone()))
            .collect();
        sink_task.put(&delivered).unwrap();
        sink_task
            .put(&[SinkRecord::new("numbers", 0, 104, Data::string("last"))])
            .unwrap();
        let offered: Offsets = [(tp.clone(), 200), (TopicPartition::new("numbers", 1), 7)].into();
        assert_eq!(
            sink_task.pre_commit(&offered).unwrap(),
            Offsets::from([(tp.clone(), 105)])
        );
        sink_task.close(&[tp]).unwrap();
        sink_task.stop().unwrap();

        // The transform: found by its simple name, configured, applied to a batch.
        let transform = registry
            .lookup_transform("ScaffoldCheckTransform")
            .unwrap()
            .unwrap()
            .clone();
        assert_eq!(transform.name(), made[2].connector_class);
        let mut t = transform.new_instance().unwrap();
        let refused = t.configure(&config(&[])).unwrap();
        assert!(
            refused
                .iter()
                .any(|v| v.name == "header" && !v.errors.is_empty()),
            "{refused:?}"
        );
        t.configure(&config(&[("header", "h"), ("topic.prefix", "p-")]))
            .unwrap();
        let out = t.apply_sink(&delivered).unwrap();
        assert_eq!(out.len(), delivered.len());
        assert_eq!(out[0].1.topic, "p-numbers");
        assert_eq!(out[0].1.headers[0].key, "h");
        t.close().unwrap();
    }
}
