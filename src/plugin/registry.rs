//! Scanning `plugin.path` into a registry of connectors by name.
//!
//! Each directory on the path is read in order; in it, every `*.so` file and every `*.so`
//! file one directory down (a plugin may bring its own folder, as in Kafka Connect) is a
//! candidate, in file-name order. Hidden files (`.name`) are skipped: that is where copies in
//! progress live. Other files are ignored.
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
use std::sync::{Arc, Mutex};

use super::library::{ConnectorInfo, ConnectorType, PluginLibrary, content_hash};
use super::{Connector, PluginError, SinkTask, SourceTask};

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

fn is_library(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
    !hidden && path.extension().is_some_and(|e| e == "so")
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
fn candidates(dir: &Path, issues: &mut Vec<ScanIssue>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in sorted_entries(dir, issues) {
        if entry.is_dir() {
            let hidden = entry
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !hidden {
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
    issues: Vec<ScanIssue>,
}

impl PluginRegistry {
    /// Settle names over the libraries found, in scan order.
    fn build(found: Vec<(PathBuf, Arc<PluginLibrary>)>, mut issues: Vec<ScanIssue>) -> Self {
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

        for issue in &issues {
            tracing::warn!(issue = %issue, "plugin scan");
        }
        PluginRegistry {
            connectors,
            aliases,
            ambiguous,
            issues,
        }
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
        if !self.issues.is_empty() {
            let _ = writeln!(out, "\nproblems:");
            for i in &self.issues {
                let _ = writeln!(out, "  {i}");
            }
        }
        out
    }
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
}
