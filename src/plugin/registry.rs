//! Scanning `plugin.path` into a registry of connectors by name.
//!
//! Each directory on the path is read in order; in it, every `*.so` file and every `*.so`
//! file one directory down (a plugin may bring its own folder, as in Kafka Connect) is a
//! candidate, in file-name order. Hidden files (`.name`) are skipped: that is where copies in
//! progress live. Other files are ignored. A directory cargo builds into (it holds
//! `.cargo-lock`, e.g. `target/debug`, the default plugin.path of a `tributary` run from the
//! source tree) is read without its subdirectories: cargo's finished libraries are at its top,
//! while `deps/` holds copies of them and proc-macro libraries, which are not plugins.
//!
//! An ELF file whose headers point past its end is refused before `dlopen` (mapping a
//! truncated library can crash the process when the missing pages are touched): that is a
//! copy still in progress, or a damaged file.
//!
//! [`SharedRegistry`] holds the current registry for readers (the worker, the REST layer)
//! while the watcher (`super::watch`) replaces it: a snapshot swapped whole, with a
//! generation counter to subscribe to. [`default_plugin_path`] is where plugins are looked
//! for when `plugin.path` is not set.
//!
//! Names, as in Kafka Connect: each connector is registered by its full name, by its simple
//! name (after the last `.`) and by its simple name without a `Connector` suffix, plus any
//! alias the plugin declares.
//!
//! Conflicts are settled deterministically and reported as a [`ScanIssue`]:
//!
//! - two libraries with the same full name: the higher version wins; on equal versions, the
//!   one found first (earlier directory on `plugin.path`, then file name) wins;
//! - an alias claimed by several connectors belongs to none of them (naming it is an error
//!   listing the candidates); a full name always wins over an alias.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use super::library::{
    ConnectorInfo, ConnectorType, PluginLibrary, TransformInfo, TransformType, content_hash,
};
use super::{Connector, PluginError, SinkTask, SourceTask, TransformInstance};

/// A connector available to the worker: what the plugin said about it, and where it came
/// from.
#[derive(Debug)]
pub struct ConnectorPlugin {
    info: ConnectorInfo,
    /// The file on `plugin.path` it was found in.
    file: PathBuf,
    library: Arc<PluginLibrary>,
    aliases: Vec<String>,
}

impl ConnectorPlugin {
    pub fn name(&self) -> &str {
        &self.info.name
    }

    pub fn kind(&self) -> ConnectorType {
        self.info.kind
    }

    pub fn version(&self) -> &str {
        &self.info.version
    }

    pub fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    /// The aliases it is registered under (ambiguous ones excluded).
    pub fn aliases(&self) -> &[String] {
        &self.aliases
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn library(&self) -> &Arc<PluginLibrary> {
        &self.library
    }

    /// A new connector instance (not started).
    pub fn new_connector(self: &Arc<Self>) -> Result<Connector, PluginError> {
        Connector::new(self.clone())
    }

    /// A new source task instance (not started).
    pub fn new_source_task(self: &Arc<Self>) -> Result<SourceTask, PluginError> {
        self.expect(ConnectorType::Source)?;
        SourceTask::new(self.clone())
    }

    /// A new sink task instance (not started).
    pub fn new_sink_task(self: &Arc<Self>) -> Result<SinkTask, PluginError> {
        self.expect(ConnectorType::Sink)?;
        SinkTask::new(self.clone())
    }

    fn expect(&self, expected: ConnectorType) -> Result<(), PluginError> {
        if self.info.kind == expected {
            Ok(())
        } else {
            Err(PluginError::WrongType {
                connector: self.info.name.clone(),
                actual: self.info.kind,
                expected,
            })
        }
    }
}

/// A transformation or predicate available to the worker (for `transforms.NAME.type` and
/// `predicates.NAME.type`).
#[derive(Debug)]
pub struct PluginTransform {
    info: TransformInfo,
    file: PathBuf,
    library: Arc<PluginLibrary>,
    aliases: Vec<String>,
}

impl PluginTransform {
    pub fn name(&self) -> &str {
        &self.info.name
    }

    pub fn kind(&self) -> TransformType {
        self.info.kind
    }

    pub fn version(&self) -> &str {
        &self.info.version
    }

    pub fn info(&self) -> &TransformInfo {
        &self.info
    }

    /// The aliases it is registered under (ambiguous ones excluded).
    pub fn aliases(&self) -> &[String] {
        &self.aliases
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn library(&self) -> &Arc<PluginLibrary> {
        &self.library
    }

    /// A new instance (not configured).
    pub fn new_instance(self: &Arc<Self>) -> Result<TransformInstance, PluginError> {
        TransformInstance::new(self.clone())
    }
}

/// Something a scan skipped or had to decide; logged as a warning when found.
#[derive(Debug)]
pub enum ScanIssue {
    /// A directory or file that could not be read or loaded as a plugin.
    Load(PluginError),
    /// Two files export a connector with the same full name.
    DuplicateConnector {
        name: String,
        kept: PathBuf,
        kept_version: String,
        ignored: PathBuf,
        ignored_version: String,
    },
    /// An alias several connectors could claim; it is not registered.
    AmbiguousAlias {
        alias: String,
        candidates: Vec<String>,
    },
}

impl fmt::Display for ScanIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanIssue::Load(e) => write!(f, "{e}"),
            ScanIssue::DuplicateConnector {
                name,
                kept,
                kept_version,
                ignored,
                ignored_version,
            } => write!(
                f,
                "connector {name} is in two plugins: using version {kept_version} from {}, \
                 ignoring version {ignored_version} from {}; remove one of them",
                kept.display(),
                ignored.display()
            ),
            ScanIssue::AmbiguousAlias { alias, candidates } => write!(
                f,
                "alias {alias} could mean any of {}; it is not registered, use the full name",
                candidates.join(", ")
            ),
        }
    }
}

impl ScanIssue {
    /// A copy: the watcher rebuilds registries from the same issues (an I/O error keeps its
    /// kind and message).
    pub(crate) fn duplicate(&self) -> ScanIssue {
        match self {
            ScanIssue::Load(e) => ScanIssue::Load(copy_error(e)),
            ScanIssue::DuplicateConnector {
                name,
                kept,
                kept_version,
                ignored,
                ignored_version,
            } => ScanIssue::DuplicateConnector {
                name: name.clone(),
                kept: kept.clone(),
                kept_version: kept_version.clone(),
                ignored: ignored.clone(),
                ignored_version: ignored_version.clone(),
            },
            ScanIssue::AmbiguousAlias { alias, candidates } => ScanIssue::AmbiguousAlias {
                alias: alias.clone(),
                candidates: candidates.clone(),
            },
        }
    }
}

/// A copy of a load error (the only kind a scan or the watcher keeps).
fn copy_error(e: &PluginError) -> PluginError {
    let io = |s: &std::io::Error| std::io::Error::new(s.kind(), s.to_string());
    match e {
        PluginError::ReadDir { dir, source } => PluginError::ReadDir {
            dir: dir.clone(),
            source: io(source),
        },
        PluginError::Cache {
            file,
            cache,
            source,
        } => PluginError::Cache {
            file: file.clone(),
            cache: cache.clone(),
            source: io(source),
        },
        PluginError::NotLoadable { file, reason } => PluginError::NotLoadable {
            file: file.clone(),
            reason: reason.clone(),
        },
        PluginError::NotAPlugin { file, symbol } => PluginError::NotAPlugin {
            file: file.clone(),
            symbol,
        },
        PluginError::AbiMismatch {
            file,
            found,
            expected,
        } => PluginError::AbiMismatch {
            file: file.clone(),
            found: *found,
            expected: *expected,
        },
        PluginError::Entry { file, message } => PluginError::Entry {
            file: file.clone(),
            message: message.clone(),
        },
        PluginError::BadDescriptor { file, reason } => PluginError::BadDescriptor {
            file: file.clone(),
            reason: reason.clone(),
        },
        // Errors of calls into instances never reach a scan; keep the text.
        other => PluginError::BadDescriptor {
            file: PathBuf::new(),
            reason: other.to_string(),
        },
    }
}

/// Loads plugin libraries, once per content: a scan that meets a library it already loaded
/// reuses it, and a changed file is loaded again as a new library beside the old one.
#[derive(Debug)]
pub struct PluginLoader {
    cache_dir: PathBuf,
    loaded: Mutex<HashMap<u128, Arc<PluginLibrary>>>,
}

impl PluginLoader {
    /// A loader copying libraries into `cache_dir` before loading them.
    pub fn new(cache_dir: impl Into<PathBuf>) -> PluginLoader {
        PluginLoader {
            cache_dir: cache_dir.into(),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Load one library file (or answer the already loaded library with its content).
    pub fn load(&self, file: &Path) -> Result<Arc<PluginLibrary>, PluginError> {
        let bytes = std::fs::read(file).map_err(|e| PluginError::NotLoadable {
            file: file.to_path_buf(),
            reason: format!("cannot read it: {e}"),
        })?;
        if let Some(reason) = elf_truncation(&bytes) {
            return Err(PluginError::NotLoadable {
                file: file.to_path_buf(),
                reason: format!(
                    "{reason}: the file is incomplete (a copy still in progress, or damaged)"
                ),
            });
        }
        let hash = content_hash(&bytes);
        drop(bytes);
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(lib) = loaded.get(&hash) {
            return Ok(lib.clone());
        }
        let lib = Arc::new(PluginLibrary::load(file, &self.cache_dir)?);
        // The file may have changed between the two reads: key by what was loaded.
        loaded.insert(lib.content_hash(), lib.clone());
        Ok(lib)
    }

    /// Scan every directory of `plugin_path`, in order, into a registry.
    pub fn scan(&self, plugin_path: &[PathBuf]) -> PluginRegistry {
        let mut issues = Vec::new();
        let mut found: Vec<(PathBuf, Arc<PluginLibrary>)> = Vec::new();
        for dir in plugin_path {
            for file in candidates(dir, &mut issues) {
                match self.load(&file) {
                    Ok(lib) => found.push((file, lib)),
                    Err(e) => issues.push(ScanIssue::Load(e)),
                }
            }
        }
        PluginRegistry::build(found, issues)
    }
}

/// Whether a file name starts with a dot (copies in progress, editors' files).
pub(crate) fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// Whether a path names a plugin library by its name (`*.so`, not hidden).
pub(crate) fn is_library(path: &Path) -> bool {
    !is_hidden(path) && path.extension().is_some_and(|e| e == "so")
}

/// Whether cargo builds into `dir` (see the module docs): only its top level is scanned.
pub(crate) fn is_cargo_output_dir(dir: &Path) -> bool {
    dir.join(".cargo-lock").is_file()
}

/// Why an ELF file is incomplete, if it is: its header, program header table, a loadable
/// segment or its section header table extends past the end of the file (a linker writes
/// the section headers last, at the end, so any prefix of a library fails this). `None` for
/// a complete file and for anything that is not ELF (left to the loader to refuse).
pub(crate) fn elf_truncation(bytes: &[u8]) -> Option<String> {
    if !bytes.starts_with(b"\x7fELF") {
        return None;
    }
    let len = bytes.len() as u64;
    let short = || Some(format!("it is shorter than an ELF header ({len} bytes)"));
    let (Some(&class), Some(&data)) = (bytes.get(4), bytes.get(5)) else {
        return short();
    };
    let little = match data {
        1 => true,
        2 => false,
        _ => return None,
    };
    let read = |at: u64, size: usize| -> Option<u64> {
        let at = usize::try_from(at).ok()?;
        let raw = bytes.get(at..at.checked_add(size)?)?;
        let mut v = 0u64;
        for i in 0..size {
            let b = if little { raw[size - 1 - i] } else { raw[i] };
            v = (v << 8) | u64::from(b);
        }
        Some(v)
    };
    // Field offsets and widths of the 32- and 64-bit layouts.
    struct Layout {
        header: u64,
        word: usize,
        phoff: u64,
        shoff: u64,
        phentsize: u64,
        ph_offset: u64,
        ph_filesz: u64,
    }
    let l = match class {
        1 => Layout {
            header: 52,
            word: 4,
            phoff: 0x1c,
            shoff: 0x20,
            phentsize: 0x2a,
            ph_offset: 4,
            ph_filesz: 16,
        },
        2 => Layout {
            header: 64,
            word: 8,
            phoff: 0x20,
            shoff: 0x28,
            phentsize: 0x36,
            ph_offset: 8,
            ph_filesz: 32,
        },
        _ => return None,
    };
    if len < l.header {
        return short();
    }
    let past_end = |what: &str, start: u64, size: u64| -> Option<String> {
        match start.checked_add(size) {
            Some(end) if end <= len => None,
            _ => Some(format!(
                "its {what} ends at byte {} but the file has {len} bytes",
                start.saturating_add(size)
            )),
        }
    };
    let field = |at: u64, size: usize| read(at, size).unwrap_or(0);
    let phoff = field(l.phoff, l.word);
    let shoff = field(l.shoff, l.word);
    let phentsize = field(l.phentsize, 2);
    let phnum = field(l.phentsize + 2, 2);
    let shentsize = field(l.phentsize + 4, 2);
    let shnum = field(l.phentsize + 6, 2);
    // 0xffff: the real count is elsewhere (extended numbering); not checked.
    if phoff != 0 && phnum != 0xffff {
        if let Some(problem) = past_end(
            "program header table",
            phoff,
            phnum.saturating_mul(phentsize),
        ) {
            return Some(problem);
        }
        for i in 0..phnum {
            let at = phoff + i * phentsize;
            const PT_LOAD: u64 = 1;
            if field(at, 4) == PT_LOAD
                && let Some(problem) = past_end(
                    &format!("loadable segment {i}"),
                    field(at + l.ph_offset, l.word),
                    field(at + l.ph_filesz, l.word),
                )
            {
                return Some(problem);
            }
        }
    }
    if shoff != 0 {
        // A count of 0 with a table: the count is in the first entry; check that one.
        let count = shnum.max(1);
        if let Some(problem) = past_end(
            "section header table",
            shoff,
            count.saturating_mul(shentsize),
        ) {
            return Some(problem);
        }
    }
    None
}

/// Sorted directory entries, or an issue.
fn sorted_entries(dir: &Path, issues: &mut Vec<ScanIssue>) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            v.sort();
            v
        }
        Err(source) => {
            issues.push(ScanIssue::Load(PluginError::ReadDir {
                dir: dir.to_path_buf(),
                source,
            }));
            Vec::new()
        }
    }
}

/// The library files of one `plugin.path` directory, in a deterministic order.
pub(crate) fn candidates(dir: &Path, issues: &mut Vec<ScanIssue>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let nested = !is_cargo_output_dir(dir);
    for entry in sorted_entries(dir, issues) {
        if entry.is_dir() {
            if nested && !is_hidden(&entry) {
                out.extend(
                    sorted_entries(&entry, issues)
                        .into_iter()
                        .filter(|p| p.is_file() && is_library(p)),
                );
            }
        } else if entry.is_file() && is_library(&entry) {
            out.push(entry);
        }
    }
    out
}

type TransformNames = (
    BTreeMap<String, Arc<PluginTransform>>,
    BTreeMap<String, String>,
    BTreeMap<String, Vec<String>>,
);

/// Settle the names of the transformations and predicates found, as for connectors: a
/// duplicate full name keeps the higher version (then the one found first); an alias (the
/// simple name after the last `.`, then declared ones) claimed by several belongs to none.
fn assemble_transforms(
    found: &[(PathBuf, Arc<PluginLibrary>)],
    issues: &mut Vec<ScanIssue>,
) -> TransformNames {
    let mut chosen: BTreeMap<String, (TransformInfo, PathBuf, Arc<PluginLibrary>)> =
        BTreeMap::new();
    for (file, lib) in found {
        for info in lib.transforms() {
            let replace = match chosen.get(&info.name) {
                None => true,
                Some((old, old_file, _)) => {
                    let newer = compare_versions(&info.version, &old.version)
                        == std::cmp::Ordering::Greater;
                    let (kept, kept_version, ignored, ignored_version) = if newer {
                        (file, &info.version, old_file, &old.version)
                    } else {
                        (old_file, &old.version, file, &info.version)
                    };
                    issues.push(ScanIssue::DuplicateConnector {
                        name: info.name.clone(),
                        kept: kept.clone(),
                        kept_version: kept_version.clone(),
                        ignored: ignored.clone(),
                        ignored_version: ignored_version.clone(),
                    });
                    newer
                }
            };
            if replace {
                chosen.insert(info.name.clone(), (info.clone(), file.clone(), lib.clone()));
            }
        }
    }
    let mut claims: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, (info, _, _)) in &chosen {
        let simple = name.rsplit('.').next().unwrap_or(name);
        let mut names = Vec::new();
        if simple != name {
            names.push(simple.to_string());
        }
        names.extend(info.declared_aliases.iter().cloned());
        for alias in names {
            if !chosen.contains_key(&alias) {
                claims.entry(alias).or_default().insert(name.clone());
            }
        }
    }
    let mut aliases = BTreeMap::new();
    let mut ambiguous = BTreeMap::new();
    for (alias, names) in claims {
        let candidates: Vec<String> = names.into_iter().collect();
        if let [one] = candidates.as_slice() {
            aliases.insert(alias, one.clone());
        } else {
            issues.push(ScanIssue::AmbiguousAlias {
                alias: alias.clone(),
                candidates: candidates.clone(),
            });
            ambiguous.insert(alias, candidates);
        }
    }
    let transforms = chosen
        .into_iter()
        .map(|(name, (info, file, library))| {
            let own = aliases
                .iter()
                .filter(|(_, n)| **n == name)
                .map(|(a, _)| a.clone())
                .collect();
            let t = PluginTransform {
                info,
                file,
                library,
                aliases: own,
            };
            (name, Arc::new(t))
        })
        .collect();
    (transforms, aliases, ambiguous)
}

/// The names a connector answers to besides its full name: the simple name and the simple
/// name without a `Connector` suffix (Kafka Connect's `PluginUtils`), then declared ones.
pub fn derived_aliases(full_name: &str, declared: &[String]) -> Vec<String> {
    let simple = full_name.rsplit('.').next().unwrap_or(full_name);
    let mut out = Vec::new();
    if simple != full_name {
        out.push(simple.to_string());
    }
    if let Some(pruned) = simple.strip_suffix("Connector")
        && !pruned.is_empty()
    {
        out.push(pruned.to_string());
    }
    for a in declared {
        if a != full_name && !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

/// Compare versions: dotted numbers numerically (`1.10.0` > `1.9.0`), a release above its
/// pre-releases (`1.0.0` > `1.0.0-rc1`), anything else as text.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let split = |v: &str| -> (Vec<String>, Option<String>) {
        let v = v.split('+').next().unwrap_or(v);
        let (core, pre) = match v.split_once('-') {
            Some((c, p)) => (c, Some(p.to_string())),
            None => (v, None),
        };
        (core.split('.').map(str::to_string).collect(), pre)
    };
    let (ca, pa) = split(a);
    let (cb, pb) = split(b);
    for i in 0..ca.len().max(cb.len()) {
        let x = ca.get(i).map(String::as_str).unwrap_or("0");
        let y = cb.get(i).map(String::as_str).unwrap_or("0");
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    match (pa, pb) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.cmp(&y),
    }
}

/// The connectors found on `plugin.path`, by full name and alias.
#[derive(Debug, Default)]
pub struct PluginRegistry {
    connectors: BTreeMap<String, Arc<ConnectorPlugin>>,
    aliases: BTreeMap<String, String>,
    ambiguous: BTreeMap<String, Vec<String>>,
    transforms: BTreeMap<String, Arc<PluginTransform>>,
    transform_aliases: BTreeMap<String, String>,
    transform_ambiguous: BTreeMap<String, Vec<String>>,
    issues: Vec<ScanIssue>,
}

impl PluginRegistry {
    /// Settle names over the libraries found, in scan order, and log every issue.
    fn build(found: Vec<(PathBuf, Arc<PluginLibrary>)>, issues: Vec<ScanIssue>) -> Self {
        let registry = PluginRegistry::assemble(found, issues);
        for issue in &registry.issues {
            tracing::warn!(issue = %issue, "plugin scan");
        }
        registry
    }

    /// Settle names over the libraries found, in scan order (`(file, library)` pairs), adding
    /// the issues of names to `issues`. Logs nothing: the watcher logs only what is new.
    pub(crate) fn assemble(
        found: Vec<(PathBuf, Arc<PluginLibrary>)>,
        mut issues: Vec<ScanIssue>,
    ) -> Self {
        let (transforms, transform_aliases, transform_ambiguous) =
            assemble_transforms(&found, &mut issues);
        let mut chosen: BTreeMap<String, (ConnectorInfo, PathBuf, Arc<PluginLibrary>)> =
            BTreeMap::new();
        for (file, lib) in found {
            for info in lib.connectors() {
                match chosen.get(&info.name) {
                    None => {
                        chosen.insert(info.name.clone(), (info.clone(), file.clone(), lib.clone()));
                    }
                    Some((old, old_file, _)) => {
                        let newer = compare_versions(&info.version, &old.version)
                            == std::cmp::Ordering::Greater;
                        let issue = if newer {
                            ScanIssue::DuplicateConnector {
                                name: info.name.clone(),
                                kept: file.clone(),
                                kept_version: info.version.clone(),
                                ignored: old_file.clone(),
                                ignored_version: old.version.clone(),
                            }
                        } else {
                            ScanIssue::DuplicateConnector {
                                name: info.name.clone(),
                                kept: old_file.clone(),
                                kept_version: old.version.clone(),
                                ignored: file.clone(),
                                ignored_version: info.version.clone(),
                            }
                        };
                        issues.push(issue);
                        if newer {
                            chosen.insert(
                                info.name.clone(),
                                (info.clone(), file.clone(), lib.clone()),
                            );
                        }
                    }
                }
            }
        }

        // Aliases: who claims what.
        let mut claims: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (name, (info, _, _)) in &chosen {
            for alias in derived_aliases(name, &info.declared_aliases) {
                if !chosen.contains_key(&alias) {
                    claims.entry(alias).or_default().insert(name.clone());
                }
            }
        }
        let mut aliases = BTreeMap::new();
        let mut ambiguous = BTreeMap::new();
        for (alias, names) in claims {
            if names.len() == 1 {
                let name = names.into_iter().next().expect("one claimant");
                aliases.insert(alias, name);
            } else {
                let candidates: Vec<String> = names.into_iter().collect();
                issues.push(ScanIssue::AmbiguousAlias {
                    alias: alias.clone(),
                    candidates: candidates.clone(),
                });
                ambiguous.insert(alias, candidates);
            }
        }

        let connectors = chosen
            .into_iter()
            .map(|(name, (info, file, library))| {
                let own: Vec<String> = aliases
                    .iter()
                    .filter(|(_, n)| **n == name)
                    .map(|(a, _)| a.clone())
                    .collect();
                let plugin = ConnectorPlugin {
                    info,
                    file,
                    library,
                    aliases: own,
                };
                (name, Arc::new(plugin))
            })
            .collect();

        PluginRegistry {
            connectors,
            aliases,
            ambiguous,
            transforms,
            transform_aliases,
            transform_ambiguous,
            issues,
        }
    }

    /// The transformation or predicate a `transforms.NAME.type` or `predicates.NAME.type`
    /// value names: a full name or an alias. `Ok(None)` when no plugin exports it.
    pub fn lookup_transform(
        &self,
        name: &str,
    ) -> Result<Option<&Arc<PluginTransform>>, PluginError> {
        if let Some(t) = self.transforms.get(name) {
            return Ok(Some(t));
        }
        if let Some(full) = self.transform_aliases.get(name) {
            return Ok(Some(&self.transforms[full]));
        }
        if let Some(candidates) = self.transform_ambiguous.get(name) {
            return Err(PluginError::AmbiguousConnector {
                name: name.to_string(),
                candidates: candidates.clone(),
            });
        }
        Ok(None)
    }

    /// Every transformation and predicate from plugins, by full name.
    pub fn transforms(&self) -> impl Iterator<Item = &Arc<PluginTransform>> {
        self.transforms.values()
    }

    /// The connector a `connector.class` value names: a full name or an alias.
    pub fn lookup(&self, class: &str) -> Result<&Arc<ConnectorPlugin>, PluginError> {
        if let Some(c) = self.connectors.get(class) {
            return Ok(c);
        }
        if let Some(name) = self.aliases.get(class) {
            return Ok(&self.connectors[name]);
        }
        if let Some(candidates) = self.ambiguous.get(class) {
            return Err(PluginError::AmbiguousConnector {
                name: class.to_string(),
                candidates: candidates.clone(),
            });
        }
        Err(PluginError::UnknownConnector {
            name: class.to_string(),
        })
    }

    /// Every connector, by full name.
    pub fn connectors(&self) -> impl Iterator<Item = &Arc<ConnectorPlugin>> {
        self.connectors.values()
    }

    /// What the scan skipped or decided, in the order found.
    pub fn issues(&self) -> &[ScanIssue] {
        &self.issues
    }

    /// A table for people: one line per connector, then the issues.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut rows = vec![[
            "CONNECTOR".to_string(),
            "TYPE".into(),
            "VERSION".into(),
            "ALIASES".into(),
            "FILE".into(),
        ]];
        for c in self.connectors() {
            rows.push([
                c.name().to_string(),
                c.kind().to_string(),
                c.version().to_string(),
                if c.aliases().is_empty() {
                    "-".into()
                } else {
                    c.aliases().join(", ")
                },
                c.file().display().to_string(),
            ]);
        }
        let mut widths = [0usize; 5];
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        if self.connectors.is_empty() {
            out.push_str("no connector plugins found\n");
        } else {
            for r in &rows {
                let line: Vec<String> = r
                    .iter()
                    .zip(widths)
                    .map(|(cell, w)| format!("{cell:<w$}"))
                    .collect();
                let _ = writeln!(out, "{}", line.join("  ").trim_end());
            }
        }
        if !self.transforms.is_empty() {
            let mut rows = vec![[
                "TRANSFORM".to_string(),
                "TYPE".into(),
                "VERSION".into(),
                "ALIASES".into(),
                "FILE".into(),
            ]];
            for t in self.transforms() {
                rows.push([
                    t.name().to_string(),
                    t.kind().to_string(),
                    t.version().to_string(),
                    if t.aliases().is_empty() {
                        "-".into()
                    } else {
                        t.aliases().join(", ")
                    },
                    t.file().display().to_string(),
                ]);
            }
            let mut widths = [0usize; 5];
            for r in &rows {
                for (w, cell) in widths.iter_mut().zip(r) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            out.push('\n');
            for r in &rows {
                let line: Vec<String> = r
                    .iter()
                    .zip(widths)
                    .map(|(cell, w)| format!("{cell:<w$}"))
                    .collect();
                let _ = writeln!(out, "{}", line.join("  ").trim_end());
            }
        }
        if !self.issues.is_empty() {
            let _ = writeln!(out, "\nproblems:");
            for i in &self.issues {
                let _ = writeln!(out, "  {i}");
            }
        }
        out
    }
}

/// The registry shared by its readers (the worker creating connectors, the REST layer
/// listing them) and its writer (the watcher, or whoever rescans): a snapshot replaced
/// whole, so a reader never sees half an update and never waits for a library to load.
///
/// Cloning shares it. A lookup answers an `Arc<ConnectorPlugin>`: an instance created from
/// it keeps its library whatever is published later.
#[derive(Debug, Clone)]
pub struct SharedRegistry {
    inner: Arc<SharedInner>,
}

#[derive(Debug)]
struct SharedInner {
    /// Held only to clone or swap the `Arc`, never across a load or an `.await`.
    current: RwLock<Arc<PluginRegistry>>,
    /// Bumped by every publication after the first registry (generation 0).
    generation: tokio::sync::watch::Sender<u64>,
}

/// The shared registries alive in this process, oldest first (see [`current_registry`]).
static LIVE: Mutex<Vec<std::sync::Weak<SharedInner>>> = Mutex::new(Vec::new());

/// The worker's shared registry: the newest one alive in this process. Transform chains
/// parsed from connector configs (`worker::transform::parse`) resolve a
/// `transforms.NAME.type` no built-in has against it, without every config parser having
/// to carry the registry. A process runs one worker, so the newest is that worker's.
pub fn current_registry() -> Option<SharedRegistry> {
    live_registries().pop()
}

/// Every shared registry alive in this process, oldest first. A name is resolved against
/// the newest that knows it, so that tests running several workers in one process each
/// find their plugins.
pub fn live_registries() -> Vec<SharedRegistry> {
    let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
    live.retain(|w| w.strong_count() > 0);
    live.iter()
        .filter_map(|w| w.upgrade())
        .map(|inner| SharedRegistry { inner })
        .collect()
}

impl SharedRegistry {
    /// Share `registry` as generation 0; it becomes the [`current_registry`].
    pub fn new(registry: PluginRegistry) -> SharedRegistry {
        let shared = SharedRegistry {
            inner: Arc::new(SharedInner {
                current: RwLock::new(Arc::new(registry)),
                generation: tokio::sync::watch::Sender::new(0),
            }),
        };
        let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&shared.inner));
        drop(live);
        shared
    }

    /// The current registry. Cheap (an `Arc` clone); hold it as long as needed.
    pub fn snapshot(&self) -> Arc<PluginRegistry> {
        self.inner
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// [`PluginRegistry::lookup`] on the current registry.
    pub fn lookup(&self, class: &str) -> Result<Arc<ConnectorPlugin>, PluginError> {
        self.snapshot().lookup(class).cloned()
    }

    /// How many registries were published after the first.
    pub fn generation(&self) -> u64 {
        *self.inner.generation.borrow()
    }

    /// A receiver that sees the generation change with every publication (e.g. to refresh a
    /// REST listing of connector plugins); read the registry itself with
    /// [`SharedRegistry::snapshot`].
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }

    /// Replace the registry; answers the new generation.
    pub fn publish(&self, registry: PluginRegistry) -> u64 {
        let registry = Arc::new(registry);
        let old = {
            let mut current = self
                .inner
                .current
                .write()
                .unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *current, registry)
        };
        // The old registry may be the last reference to nothing but `Arc`s: dropped outside
        // the lock all the same.
        drop(old);
        let mut generation = 0;
        self.inner.generation.send_modify(|g| {
            *g += 1;
            generation = *g;
        });
        generation
    }
}

/// The plugin.path used when none is configured: the directory of the running `tributary`
/// executable (symbolic links resolved). Cargo puts the workspace's connector libraries
/// (`libtributary_connector_*.so`) next to the binary it builds, so a `tributary` run from a
/// source tree finds the bundled connectors there.
pub fn default_plugin_path() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    exe.parent().map(Path::to_path_buf).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("the executable {} has no parent directory", exe.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn aliases_follow_kafka_connect() {
        assert_eq!(
            derived_aliases(
                "org.apache.kafka.connect.file.FileStreamSourceConnector",
                &[]
            ),
            ["FileStreamSourceConnector", "FileStreamSource"]
        );
        assert_eq!(derived_aliases("Connector", &[]), Vec::<String>::new());
        assert_eq!(
            derived_aliases("a.Thing", &["t".to_string(), "Thing".to_string()]),
            ["Thing", "t"]
        );
    }

    #[test]
    fn versions_compare_by_number_then_release() {
        let check = |a, b, o| assert_eq!(compare_versions(a, b), o, "{a} vs {b}");
        check("1.10.0", "1.9.0", Ordering::Greater);
        check("1.0", "1.0.0", Ordering::Equal);
        check("1.0.0", "1.0.0-rc1", Ordering::Greater);
        check("1.0.0-rc2", "1.0.0-rc1", Ordering::Greater);
        check("2.0.0+build5", "2.0.0", Ordering::Equal);
        check("0.1.0", "0.2.0", Ordering::Less);
    }

    #[test]
    fn a_truncated_elf_file_is_recognised() {
        // The test binary is a complete ELF file.
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(elf_truncation(&exe), None);
        let mut longer = exe.clone();
        longer.extend_from_slice(b"appended");
        assert_eq!(elf_truncation(&longer), None);
        for cut in [exe.len() - 1, exe.len() / 2, 4096, 63, 20, 5] {
            let why = elf_truncation(&exe[..cut]);
            assert!(why.is_some(), "a prefix of {cut} bytes passed");
        }
        // Not ELF at all: left to the loader.
        assert_eq!(elf_truncation(b"garbage"), None);
        assert_eq!(elf_truncation(b""), None);
        // Headers pointing anywhere never panic.
        let mut hostile = exe[..64].to_vec();
        hostile[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        hostile[0x28..0x30].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
        assert!(elf_truncation(&hostile).is_some());
    }

    #[test]
    fn a_truncated_elf_file_is_refused_before_loading() {
        let dir = tempfile::tempdir().unwrap();
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let half = dir.path().join("libhalf.so");
        std::fs::write(&half, &exe[..exe.len() / 2]).unwrap();
        let err = PluginLoader::new(dir.path().join("cache"))
            .load(&half)
            .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, PluginError::NotLoadable { file, .. } if *file == half),
            "{text}"
        );
        assert!(text.contains("incomplete"), "{text}");
        assert!(!dir.path().join("cache").exists(), "nothing was copied");
    }

    #[test]
    fn a_cargo_output_directory_is_scanned_without_its_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("debug");
        std::fs::create_dir_all(root.join("deps")).unwrap();
        std::fs::write(root.join("deps/libserde_derive-0123.so"), b"proc macro").unwrap();
        std::fs::write(root.join("libbroken.so"), b"not a library").unwrap();
        let loader = PluginLoader::new(dir.path().join("cache"));
        let files = |reg: &PluginRegistry| -> Vec<PathBuf> {
            reg.issues()
                .iter()
                .map(|i| match i {
                    ScanIssue::Load(PluginError::NotLoadable { file, .. }) => file.clone(),
                    other => panic!("unexpected issue: {other}"),
                })
                .collect()
        };
        let plain = loader.scan(std::slice::from_ref(&root));
        assert_eq!(
            files(&plain),
            [
                root.join("deps/libserde_derive-0123.so"),
                root.join("libbroken.so")
            ]
        );
        std::fs::write(root.join(".cargo-lock"), b"").unwrap();
        let cargo = loader.scan(std::slice::from_ref(&root));
        assert_eq!(files(&cargo), [root.join("libbroken.so")]);
    }

    #[test]
    fn a_shared_registry_publishes_generations() {
        let shared = SharedRegistry::new(PluginRegistry::default());
        let mut rx = shared.subscribe();
        assert_eq!(shared.generation(), 0);
        let before = shared.snapshot();
        assert!(matches!(
            shared.lookup("x"),
            Err(PluginError::UnknownConnector { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("x.so");
        std::fs::write(&garbage, b"x").unwrap();
        let issues = vec![ScanIssue::Load(PluginError::NotLoadable {
            file: garbage,
            reason: "not an ELF file".into(),
        })];
        assert_eq!(
            shared.publish(PluginRegistry::assemble(Vec::new(), issues)),
            1
        );
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 1);
        assert_eq!(shared.snapshot().issues().len(), 1);
        assert!(before.issues().is_empty(), "a snapshot does not change");
        let copy = shared.snapshot().issues()[0].duplicate();
        assert_eq!(copy.to_string(), shared.snapshot().issues()[0].to_string());
    }

    #[test]
    fn the_default_plugin_path_is_the_executables_directory() {
        let dir = default_plugin_path().unwrap();
        let exe = std::fs::canonicalize(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(exe.parent(), Some(dir.as_path()));
    }

    /// `default-members` must list every member, or a plain `cargo build` leaves a connector
    /// out of the default plugin.path.
    #[test]
    fn every_workspace_member_is_a_default_member() {
        let manifest =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
                .unwrap();
        let list = |key: &str| -> BTreeSet<String> {
            let line = manifest
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{key} =")))
                .unwrap_or_else(|| panic!("no single-line `{key} = [...]` in Cargo.toml"));
            let (_, items) = line.split_once('[').expect("a list");
            let (items, _) = items.split_once(']').expect("a one-line list");
            items
                .split(',')
                .map(|i| i.trim().trim_matches('"').to_string())
                .filter(|i| !i.is_empty())
                .collect()
        };
        let members = list("members");
        assert!(members.contains("connectors/noop"), "{members:?}");
        assert_eq!(list("default-members"), members);
    }
}
