//! Deploy by folder: `connectors.dir` (or `tributary standalone --connectors-dir DIR`) is a
//! folder of connector configs that the worker keeps its connectors in step with.
//!
//! Each `*.json` file directly in the folder is one connector, in either form Kafka
//! Connect accepts: `{"name": ..., "config": {...}}` (with an optional `initial_state`,
//! used when the connector is created) or a flat config map. When no `name` is given
//! anywhere, the file's stem is the name (`orders.json` deploys `orders`). Hidden files
//! (`.orders.json`) and other extensions are ignored, so the safe way to deploy is to
//! write under a hidden or temporary name and rename into place.
//!
//! - A new file creates its connector; a changed file updates the config, only if the
//!   config changed (a `touch` or a rewrite with the same content does nothing); a removed
//!   file deletes its connector. At start the folder is applied before the worker reports
//!   healthy, and connectors whose file was removed while the worker was down are deleted.
//! - A file counts as written when it has had no event for [`DeployOptions::quiet`] (500
//!   ms) and its size, inode and change time held still over that time (the plugin
//!   watcher's rule, `plugin::watch`); a file that is not (yet) valid JSON is read again
//!   after another quiet period before it is reported, so editors' temp files, renames and
//!   slow writers cause neither errors nor churn.
//! - A file that cannot be applied (bad JSON, a config the connector refuses, a name that
//!   another file or the REST API already uses) is reported and changes nothing: a
//!   warning in the log naming the file and the reason (once per version of the file),
//!   [`ConnectorsDir::issues`], and, when the file deploys a connector that runs, a note in
//!   that connector's status trace (`GET /connectors/NAME/status`, `tributary connectors
//!   status NAME`), starting with [`NOTE_PREFIX`]; the state stays what it is, so Kafka's
//!   status shape holds. Fixing the file clears the note. A refused file is tried again
//!   when the plugins on `plugin.path` change (its connector class may have arrived).
//!
//! Who owns a connector: one created from a file carries the key [`MARKER`]
//! (`tributary.connectors.dir.file`) with the file's absolute path in its config; that is
//! how the worker knows, also across restarts, which connectors the folder manages. A
//! connector without it (created through the REST API) is never changed or deleted
//! here: a file naming it is refused, and applied once that connector is deleted. The
//! rules for the REST API on a folder-managed connector:
//! - pause, resume, stop and restart act as usual (the file holds no state);
//! - an update (PUT or PATCH) that keeps the marker takes effect until the file changes
//!   or the worker restarts, when the file's config is applied again (the file is the
//!   source of truth); an update without the marker hands the connector over to the REST
//!   API, and the folder leaves it alone from then on;
//! - a delete takes effect; the file creates the connector again when it changes or at
//!   the next start. Remove the file to delete the connector for good.
//!
//! If the folder itself disappears, its connectors keep running (an unmounted or
//! mistakenly removed folder deletes nothing); it is watched again once it is back.
//!
//! What this module is not: it neither validates nor stores configs itself (the herder
//! does both, exactly as for the REST API), and it does not look below the folder.
//!
//! Threads: [`ConnectorsDir`] owns one thread, which makes every herder call (they
//! block); `notify`'s thread only hands events over through a bounded channel.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};
use serde_json::Value as Json;

use super::connector_config::parse_connector_json;
use super::store::{Props, TargetState};
use super::{Herder, WorkerError};
use crate::plugin::watch::{Stat, stat};

/// The config key that marks a connector as deployed from a file of `connectors.dir`:
/// the file's absolute path.
pub const MARKER: &str = "tributary.connectors.dir.file";

/// How a note about a file that was not applied starts in its connector's status trace.
pub const NOTE_PREFIX: &str = "connectors.dir: ";

/// The largest connector file read (the REST API's body limit).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Events waiting for the thread; beyond this, a full rescan replaces them.
const CHANNEL_CAPACITY: usize = 1024;

/// The longest the thread sleeps with nothing to do. Notes lost to a status change
/// (a pause clears the trace) are shown again at this pace.
const IDLE_WAKE: Duration = Duration::from_secs(2);

/// How the folder is watched.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// How long a file must stay untouched (no event; same size, inode and change time)
    /// before it is read.
    pub quiet: Duration,
    /// Reads of a file that is not valid JSON before it is reported (at least 1); each
    /// waits another `quiet` period, in case the file was still being written.
    pub attempts: u32,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            quiet: Duration::from_millis(500),
            attempts: 2,
        }
    }
}

/// Why the folder cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(
        "connectors.dir {dir}: {reason}; create the folder, or fix connectors.dir / --connectors-dir"
    )]
    Dir { dir: PathBuf, reason: String },
    #[error(
        "cannot watch connectors.dir {dir}: {source}; if the inotify limits are reached, raise \
         fs.inotify.max_user_instances and fs.inotify.max_user_watches"
    )]
    Watch {
        dir: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error("cannot start the connectors.dir watcher thread: {source}")]
    Thread {
        #[source]
        source: std::io::Error,
    },
}

/// Keeps the worker's connectors in step with a folder of connector files; see the
/// module docs. Stopped by [`ConnectorsDir::stop`] or on drop; either waits for a herder
/// call in progress (call it from a blocking context).
#[derive(Debug)]
pub struct ConnectorsDir {
    dir: PathBuf,
    issues: Arc<Mutex<BTreeMap<PathBuf, String>>>,
    stop: Arc<AtomicBool>,
    wake: SyncSender<Msg>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
enum Msg {
    Event(notify::Result<notify::Event>),
    Wake,
}

impl ConnectorsDir {
    /// Watch `dir`, apply the files in it that are complete (in the caller's thread:
    /// from async code, call this in `spawn_blocking`), delete the connectors whose file
    /// is gone, and hand the rest to the watcher thread.
    pub fn start(
        herder: Herder,
        dir: &Path,
        options: DeployOptions,
    ) -> Result<ConnectorsDir, DeployError> {
        // Canonical, so that the markers name each file one way however the folder is
        // given (relative, through a symbolic link).
        let dir = match std::fs::canonicalize(dir) {
            Ok(d) if d.is_dir() => d,
            Ok(d) => {
                return Err(DeployError::Dir {
                    dir: d,
                    reason: "not a directory".into(),
                });
            }
            Err(e) => {
                return Err(DeployError::Dir {
                    dir: dir.to_path_buf(),
                    reason: e.to_string(),
                });
            }
        };
        let (tx, rx) = mpsc::sync_channel(CHANNEL_CAPACITY);
        let overflow = Arc::new(AtomicBool::new(false));
        let events = tx.clone();
        let full = overflow.clone();
        // The watch comes first, so that nothing written during the first pass is missed.
        let mut watcher = notify::recommended_watcher(move |event| {
            if let Err(TrySendError::Full(_)) = events.try_send(Msg::Event(event)) {
                full.store(true, Ordering::Release);
            }
        })
        .map_err(|source| DeployError::Watch {
            dir: dir.clone(),
            source,
        })?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|source| DeployError::Watch {
                dir: dir.clone(),
                source,
            })?;
        let issues = Arc::new(Mutex::new(BTreeMap::new()));
        let mut state = State::new(herder, dir.clone(), options, issues.clone());
        let now = Instant::now();
        state.rescan(now);
        state.settle(now, true);
        state.sweep_orphans();
        state.sync_notes();
        tracing::info!(
            dir = %dir.display(),
            connectors = %state.owned_names().join(", "),
            "connectors.dir applied"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("tributary-connectors-dir".into())
                .spawn(move || run(state, watcher, rx, stop, overflow))
                .map_err(|source| DeployError::Thread { source })?
        };
        Ok(ConnectorsDir {
            dir,
            issues,
            stop,
            wake: tx,
            thread: Some(thread),
        })
    }

    /// The folder, canonical.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The files that could not be applied, with why.
    pub fn issues(&self) -> BTreeMap<PathBuf, String> {
        self.issues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stop watching and wait for the thread (at most the end of a herder call).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.wake.try_send(Msg::Wake);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the connectors.dir watcher thread panicked");
        }
    }
}

impl Drop for ConnectorsDir {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The `connector.class` of every connector file in `dir` that parses, for the start to
/// wait for their plugins (unreadable files are left to [`ConnectorsDir::start`]).
pub fn classes_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut classes: Vec<String> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_connector_file(p))
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            let (_, props, _) = parse_file(&p, &text).ok()?;
            props.get("connector.class").cloned()
        })
        .collect();
    classes.sort();
    classes.dedup();
    classes
}

/// A connector file: `*.json`, not hidden.
fn is_connector_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    !name.starts_with('.') && name.len() > ".json".len() && name.ends_with(".json")
}

/// Why a file was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// Not (yet) a JSON document: it may still be being written.
    Incomplete(String),
    Invalid(String),
    /// The connector's name is taken (by another file, or through the REST API).
    Taken(String),
}

impl Refusal {
    fn reason(&self) -> &str {
        match self {
            Refusal::Incomplete(r) | Refusal::Invalid(r) | Refusal::Taken(r) => r,
        }
    }
}

/// Parse a connector file into (name, config with the [`MARKER`], initial state).
fn parse_file(path: &Path, text: &str) -> Result<(String, Props, TargetState), Refusal> {
    let doc: Json = serde_json::from_str(text).map_err(|e| {
        if text.trim().is_empty() {
            Refusal::Incomplete("the file is empty; write a connector config in it".into())
        } else {
            Refusal::Incomplete(format!("not valid JSON: {e}"))
        }
    })?;
    let Json::Object(mut top) = doc else {
        return Err(Refusal::Invalid(
            "expected a JSON object: {\"name\": ..., \"config\": {...}} or a flat config map"
                .into(),
        ));
    };
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_owned();
    let mut initial = TargetState::Started;
    if let Some(config) = top.get("config") {
        let named = top.get("name").is_some_and(|n| !n.is_null())
            || config.get("name").is_some_and(|n| !n.is_null());
        match top.remove("initial_state") {
            None | Some(Json::Null) => {}
            Some(Json::String(s)) if s.eq_ignore_ascii_case("RUNNING") => {}
            Some(Json::String(s)) if s.eq_ignore_ascii_case("PAUSED") => {
                initial = TargetState::Paused;
            }
            Some(Json::String(s)) if s.eq_ignore_ascii_case("STOPPED") => {
                initial = TargetState::Stopped;
            }
            Some(other) => {
                return Err(Refusal::Invalid(format!(
                    "initial_state must be RUNNING, PAUSED or STOPPED, not {other}"
                )));
            }
        }
        if !named {
            top.insert("name".into(), Json::String(stem));
        }
    } else if top.get("name").is_none_or(Json::is_null) {
        top.insert("name".into(), Json::String(stem));
    }
    let (name, mut config) = parse_connector_json(&Json::Object(top).to_string())
        .map_err(|e| Refusal::Invalid(e.to_string()))?;
    config.insert(MARKER.into(), path.display().to_string());
    Ok((name, config, initial))
}

/// The watcher thread.
fn run(
    mut state: State,
    mut watcher: notify::RecommendedWatcher,
    rx: Receiver<Msg>,
    stop: Arc<AtomicBool>,
    overflow: Arc<AtomicBool>,
) {
    let mut plugins = state.herder.plugins().generation();
    while !stop.load(Ordering::Acquire) {
        let timeout = state.next_wake(Instant::now());
        let first = match rx.recv_timeout(timeout) {
            Ok(msg) => Some(msg),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let queued = first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()).take(CHANNEL_CAPACITY));
        let mut rescan = overflow.swap(false, Ordering::AcqRel);
        let now = Instant::now();
        for msg in queued {
            match msg {
                Msg::Event(Ok(event)) => rescan |= state.on_event(event, now),
                Msg::Event(Err(error)) => {
                    tracing::warn!(%error, "connectors.dir watch error; rescanning the folder");
                    rescan = true;
                }
                Msg::Wake => {}
            }
        }
        if stop.load(Ordering::Acquire) {
            break;
        }
        let now = Instant::now();
        if !state.watched {
            state.retry_watch(&mut watcher, now);
        }
        if rescan && state.watched {
            state.rescan(now);
        }
        state.retry_freed(now);
        // New plugins: a file refused for its connector class may apply now.
        let generation = state.herder.plugins().generation();
        if generation != plugins {
            plugins = generation;
            state.retry_refused(now);
        }
        state.settle(now, false);
        state.sync_notes();
    }
}

/// A file waiting to be quiet.
#[derive(Debug)]
struct Pending {
    last_change: Instant,
    seen: Option<Stat>,
    /// Reads that found no valid JSON while the file stayed as `seen`.
    failures: u32,
}

/// A file that was read.
#[derive(Debug)]
struct Tracked {
    stat: Stat,
    /// The connector deployed from this file (created or updated from it), if any.
    owns: Option<String>,
    /// Why its current version was not applied, and the connector it names (if it got
    /// that far).
    issue: Option<(Refusal, Option<String>)>,
}

#[derive(Debug)]
struct State {
    herder: Herder,
    dir: PathBuf,
    options: DeployOptions,
    watched: bool,
    last_watch_retry: Instant,
    tracked: BTreeMap<PathBuf, Tracked>,
    pending: BTreeMap<PathBuf, Pending>,
    issues: Arc<Mutex<BTreeMap<PathBuf, String>>>,
}

impl State {
    fn new(
        herder: Herder,
        dir: PathBuf,
        options: DeployOptions,
        issues: Arc<Mutex<BTreeMap<PathBuf, String>>>,
    ) -> State {
        State {
            herder,
            dir,
            options: DeployOptions {
                attempts: options.attempts.max(1),
                ..options
            },
            watched: true,
            last_watch_retry: Instant::now(),
            tracked: BTreeMap::new(),
            pending: BTreeMap::new(),
            issues,
        }
    }

    /// Note an event for a file: its quiet period starts over.
    fn dirty(&mut self, path: &Path, now: Instant) {
        let seen = stat(path);
        let p = self.pending.entry(path.to_path_buf()).or_insert(Pending {
            last_change: now,
            seen,
            failures: 0,
        });
        if p.seen != seen {
            p.failures = 0;
        }
        p.seen = seen;
        p.last_change = now;
    }

    /// Every file in the folder and every file read before is pending again.
    fn rescan(&mut self, now: Instant) {
        match std::fs::read_dir(&self.dir) {
            Ok(entries) => {
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| is_connector_file(p))
                    .collect();
                files.sort();
                for f in files {
                    self.dirty(&f, now);
                }
                let known: Vec<PathBuf> = self.tracked.keys().cloned().collect();
                for f in known {
                    self.dirty(&f, now);
                }
            }
            Err(error) => {
                if self.watched {
                    tracing::warn!(dir = %self.dir.display(), %error, "cannot read connectors.dir; its connectors keep running; it is read again every few seconds");
                }
                self.watched = false;
            }
        }
    }

    /// Handle one event; answers whether the folder must be read again.
    fn on_event(&mut self, event: notify::Event, now: Instant) -> bool {
        if event.need_rescan() {
            return true;
        }
        if let EventKind::Access(kind) = event.kind
            && kind != AccessKind::Close(AccessMode::Write)
        {
            return false;
        }
        let gone = matches!(
            event.kind,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
        );
        for path in &event.paths {
            if path == &self.dir {
                if gone && self.watched {
                    self.watched = false;
                    tracing::warn!(dir = %self.dir.display(), "connectors.dir was removed or moved away; its connectors keep running; recreate the folder to manage them again");
                }
                continue;
            }
            if path.parent() == Some(self.dir.as_path()) && is_connector_file(path) {
                self.dirty(path, now);
            }
        }
        false
    }

    /// Watch the folder again once it is back; then read it whole.
    fn retry_watch(&mut self, watcher: &mut impl Watcher, now: Instant) {
        if now.duration_since(self.last_watch_retry) < IDLE_WAKE {
            return;
        }
        self.last_watch_retry = now;
        let _ = watcher.unwatch(&self.dir);
        if std::fs::read_dir(&self.dir).is_ok()
            && watcher
                .watch(&self.dir, RecursiveMode::NonRecursive)
                .is_ok()
        {
            tracing::info!(dir = %self.dir.display(), "connectors.dir is back; applying it");
            self.watched = true;
            self.rescan(now);
        }
    }

    /// Read again, after a quiet period, every file that was refused.
    fn retry_refused(&mut self, now: Instant) {
        let refused: Vec<PathBuf> = self
            .tracked
            .iter()
            .filter(|(_, t)| t.issue.is_some())
            .map(|(p, _)| p.clone())
            .collect();
        for path in refused {
            if let Some(t) = self.tracked.get_mut(&path) {
                // Forget the stat, so that the same version is applied again.
                t.stat.len = u64::MAX;
            }
            self.dirty(&path, now);
        }
    }

    /// Read again the files refused because their connector's name was taken, once no
    /// connector and no other file has it (deleted through the REST API, say).
    fn retry_freed(&mut self, now: Instant) {
        let freed: Vec<PathBuf> = self
            .tracked
            .iter()
            .filter_map(|(p, t)| match &t.issue {
                Some((Refusal::Taken(_), Some(name))) => Some((p, name)),
                _ => None,
            })
            .filter(|(p, name)| {
                !self.pending.contains_key(*p)
                    && !self
                        .tracked
                        .values()
                        .any(|t| t.owns.as_deref() == Some(name.as_str()))
                    && matches!(
                        self.herder.connector_info(name),
                        Err(WorkerError::UnknownConnector(_))
                    )
            })
            .map(|(p, _)| p.clone())
            .collect();
        for path in freed {
            if let Some(t) = self.tracked.get_mut(&path) {
                t.stat.len = u64::MAX;
            }
            self.dirty(&path, now);
        }
    }

    fn next_wake(&self, now: Instant) -> Duration {
        let mut wake = IDLE_WAKE;
        for p in self.pending.values() {
            wake = wake.min((p.last_change + self.options.quiet).saturating_duration_since(now));
        }
        wake
    }

    /// Decide about every pending file whose quiet period is over (every one at start,
    /// `initial`, where only a recent change time says a file is still being written).
    fn settle(&mut self, now: Instant, initial: bool) {
        let quiet = self.options.quiet;
        let due: Vec<PathBuf> = self
            .pending
            .iter()
            .filter(|(_, p)| initial || now.saturating_duration_since(p.last_change) >= quiet)
            .map(|(path, _)| path.clone())
            .collect();
        for path in due {
            let Some(mut p) = self.pending.remove(&path) else {
                continue;
            };
            let Some(current) = stat(&path) else {
                if !self.dir.is_dir() {
                    // The folder is gone, not the file: nothing is deleted.
                    continue;
                }
                self.removed(&path, now);
                continue;
            };
            let young = current.changed.is_some_and(|c| {
                SystemTime::now()
                    .duration_since(c)
                    .is_ok_and(|age| age < quiet)
            });
            if p.seen != Some(current) || young {
                p.seen = Some(current);
                p.last_change = now;
                p.failures = 0;
                self.pending.insert(path, p);
                continue;
            }
            if self.tracked.get(&path).is_some_and(|t| t.stat == current) {
                continue;
            }
            let text = read_file(&path);
            if stat(&path) != Some(current) {
                // Changed while it was read: wait for it to settle again.
                p.seen = stat(&path);
                p.last_change = now;
                p.failures = 0;
                self.pending.insert(path, p);
                continue;
            }
            let parsed = text.and_then(|t| parse_file(&path, &t));
            if let Err(Refusal::Incomplete(reason)) = &parsed {
                p.failures += 1;
                if p.failures < self.options.attempts {
                    tracing::debug!(file = %path.display(), %reason, "connector file not complete yet; reading it again after a quiet period");
                    p.last_change = now;
                    self.pending.insert(path, p);
                    continue;
                }
            }
            self.apply(&path, current, parsed);
        }
    }

    /// A file's new version, parsed: create or update its connector, or report why not.
    fn apply(
        &mut self,
        path: &Path,
        stat: Stat,
        parsed: Result<(String, Props, TargetState), Refusal>,
    ) {
        let owns = match self.tracked.get(path) {
            Some(t) => t.owns.clone(),
            // First seen (at start): the connector a previous run deployed from it.
            None => self.marked_with(path).into_iter().next(),
        };
        let outcome = match parsed {
            Err(refusal) => Err((refusal, None)),
            Ok((name, config, initial)) => self
                .deploy(path, &name, config, initial)
                .map(|()| name.clone())
                .map_err(|r| (r, Some(name))),
        };
        match outcome {
            Ok(name) => {
                // Renamed in the file: the connector it deployed before goes.
                for old in self.marked_with(path) {
                    if old != name {
                        let why = format!("its file now names the connector {name}");
                        self.delete(path, &old, &why);
                    }
                }
                self.tracked.insert(
                    path.to_path_buf(),
                    Tracked {
                        stat,
                        owns: Some(name),
                        issue: None,
                    },
                );
                self.issues
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(path);
            }
            Err((refusal, names)) => {
                // Handed over to the REST API (updated without the marker): not ours.
                let owns = owns.filter(|n| self.still_ours(path, n));
                let before = self.tracked.get(path).and_then(|t| t.issue.clone());
                if before.as_ref().map(|(r, _)| r) != Some(&refusal) {
                    let keeps = match &owns {
                        Some(c) => format!(
                            "the connector {c} keeps running with its last applied config; fix the file"
                        ),
                        None => "no connector was created; fix the file".to_owned(),
                    };
                    tracing::warn!(
                        file = %path.display(),
                        connector = names.as_deref().unwrap_or("?"),
                        error = %refusal.reason(),
                        "connector file not applied: {keeps}"
                    );
                }
                self.issues
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(path.to_path_buf(), refusal.reason().to_owned());
                self.tracked.insert(
                    path.to_path_buf(),
                    Tracked {
                        stat,
                        owns,
                        issue: Some((refusal, names)),
                    },
                );
            }
        }
    }

    /// Create or update connector `name` from the file at `path`.
    fn deploy(
        &self,
        path: &Path,
        name: &str,
        config: Props,
        initial: TargetState,
    ) -> Result<(), Refusal> {
        if let Some((other, _)) = self
            .tracked
            .iter()
            .find(|(p, t)| p.as_path() != path && t.owns.as_deref() == Some(name))
        {
            return Err(Refusal::Taken(format!(
                "the connector {name} is already deployed from {}; give the connector in one of the two files another name",
                other.display()
            )));
        }
        match self.herder.connector_info(name) {
            Ok(info) => {
                let marker = info.config.get(MARKER).map(PathBuf::from);
                let ours = marker.as_deref() == Some(path)
                    // The file that deployed it is gone: this one takes over.
                    || marker.as_deref().is_some_and(|m| {
                        m.parent() == Some(self.dir.as_path()) && stat(m).is_none()
                    });
                if !ours {
                    return Err(Refusal::Taken(match marker {
                        None => format!(
                            "the connector {name} exists and is managed through the REST API (its config has no {MARKER}); \
                             delete it first (tributary connectors delete {name}) or give this file's connector another name"
                        ),
                        Some(m) => format!(
                            "the connector {name} is deployed from {}; give this file's connector another name",
                            m.display()
                        ),
                    }));
                }
                if info.config == config {
                    return Ok(());
                }
                self.herder
                    .put_connector_config(name, config)
                    .map_err(|e| Refusal::Invalid(e.to_string()))?;
                tracing::info!(file = %path.display(), connector = %name, "connector config updated from its file");
                Ok(())
            }
            Err(WorkerError::UnknownConnector(_)) => {
                self.herder
                    .create_connector(name, config, initial)
                    .map_err(|e| Refusal::Invalid(e.to_string()))?;
                tracing::info!(file = %path.display(), connector = %name, "connector created from its file");
                Ok(())
            }
            Err(e) => Err(Refusal::Invalid(e.to_string())),
        }
    }

    /// A file is gone: its connector goes, and files that wanted its name are read again.
    fn removed(&mut self, path: &Path, now: Instant) {
        self.issues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(path);
        let Some(t) = self.tracked.remove(path) else {
            return;
        };
        if let Some(name) = t.owns {
            self.delete(path, &name, "its file was removed");
            let waiting: Vec<PathBuf> = self
                .tracked
                .iter()
                .filter(|(_, t)| {
                    t.issue
                        .as_ref()
                        .is_some_and(|(_, n)| n.as_deref() == Some(&name))
                })
                .map(|(p, _)| p.clone())
                .collect();
            for p in waiting {
                if let Some(t) = self.tracked.get_mut(&p) {
                    t.stat.len = u64::MAX;
                }
                self.dirty(&p, now);
            }
        }
    }

    /// Delete connector `name` if it is still deployed from `path` (not handed over to
    /// the REST API meanwhile).
    fn delete(&self, path: &Path, name: &str, why: &str) {
        let Ok(info) = self.herder.connector_info(name) else {
            return;
        };
        if info.config.get(MARKER).map(Path::new) != Some(path) {
            return;
        }
        match self.herder.delete_connector(name) {
            Ok(_) => {
                tracing::info!(file = %path.display(), connector = %name, "connector deleted: {why}");
            }
            Err(error) => {
                tracing::warn!(file = %path.display(), connector = %name, %error, "could not delete the connector of a removed file; delete it with tributary connectors delete");
            }
        }
    }

    /// Whether connector `name` is still deployed from `path` (or gone: a REST delete
    /// does not hand it over).
    fn still_ours(&self, path: &Path, name: &str) -> bool {
        match self.herder.connector_info(name) {
            Ok(info) => info.config.get(MARKER).map(Path::new) == Some(path),
            Err(_) => true,
        }
    }

    /// The connectors whose marker names `path`.
    fn marked_with(&self, path: &Path) -> Vec<String> {
        self.herder
            .connectors()
            .into_iter()
            .filter(|name| {
                self.herder
                    .connector_info(name)
                    .is_ok_and(|i| i.config.get(MARKER).map(Path::new) == Some(path))
            })
            .collect()
    }

    /// At start: connectors deployed from files of this folder that are gone go too.
    fn sweep_orphans(&mut self) {
        for name in self.herder.connectors() {
            let Ok(info) = self.herder.connector_info(&name) else {
                continue;
            };
            let Some(marker) = info.config.get(MARKER).map(PathBuf::from) else {
                continue;
            };
            if marker.parent() != Some(self.dir.as_path())
                || self.pending.contains_key(&marker)
                || self.tracked.contains_key(&marker)
            {
                continue;
            }
            self.delete(
                &marker,
                &name,
                "its file was removed while the worker was down",
            );
        }
    }

    /// The connectors deployed from files, sorted.
    fn owned_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .tracked
            .values()
            .filter_map(|t| t.owns.clone())
            .collect();
        names.sort();
        names
    }

    /// Show in each deployed connector's status trace why its file (or another file
    /// naming it) was not applied; clear the note once nothing is wrong.
    fn sync_notes(&self) {
        let mut notes: BTreeMap<String, Vec<String>> = self
            .tracked
            .iter()
            .filter_map(|(path, t)| t.owns.clone().filter(|n| self.still_ours(path, n)))
            .map(|n| (n, Vec::new()))
            .collect();
        for (path, t) in &self.tracked {
            let Some((refusal, names)) = &t.issue else {
                continue;
            };
            let file = path.display();
            let reason = refusal.reason();
            if let Some(owned) = &t.owns
                && let Some(n) = notes.get_mut(owned)
            {
                n.push(format!(
                    "{NOTE_PREFIX}{file} was not applied: {reason}; the connector runs with its last applied config"
                ));
            }
            if let Some(named) = names
                && t.owns.as_deref() != Some(named.as_str())
                && let Some(n) = notes.get_mut(named)
            {
                n.push(format!(
                    "{NOTE_PREFIX}{file} also names this connector and is ignored: {reason}"
                ));
            }
        }
        for (name, lines) in notes {
            let note = (!lines.is_empty()).then(|| lines.join("\n"));
            match self.herder.set_status_note(&name, NOTE_PREFIX, note) {
                Ok(_) | Err(WorkerError::UnknownConnector(_)) => {}
                Err(error) => {
                    tracing::debug!(connector = %name, %error, "could not update the status note");
                }
            }
        }
    }
}

/// A connector file's text, refused if it is too large or not UTF-8.
fn read_file(path: &Path) -> Result<String, Refusal> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| Refusal::Incomplete(format!("cannot read it: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Refusal::Incomplete(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Refusal::Invalid(format!(
            "larger than {} KiB; a connector config is a few KiB",
            MAX_FILE_BYTES >> 10
        )));
    }
    String::from_utf8(bytes).map_err(|_| Refusal::Invalid("not UTF-8 text".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(file: &str, text: &str) -> Result<(String, Props, TargetState), Refusal> {
        parse_file(Path::new(file), text)
    }

    #[test]
    fn names_come_from_the_document_or_the_file_stem() {
        let (name, config, initial) = parse(
            "/d/orders.json",
            r#"{"connector.class": "FileStreamSource", "tasks.max": 1}"#,
        )
        .unwrap();
        assert_eq!(name, "orders");
        assert_eq!(config["name"], "orders");
        assert_eq!(config["tasks.max"], "1");
        assert_eq!(config[MARKER], "/d/orders.json");
        assert_eq!(initial, TargetState::Started);

        let (name, config, _) = parse(
            "/d/x.json",
            r#"{"name": "flat", "connector.class": "FileStreamSource"}"#,
        )
        .unwrap();
        assert_eq!((name.as_str(), config["name"].as_str()), ("flat", "flat"));

        let (name, _, initial) = parse(
            "/d/x.json",
            r#"{"name": "wrapped", "config": {"connector.class": "A"}, "initial_state": "paused"}"#,
        )
        .unwrap();
        assert_eq!(name, "wrapped");
        assert_eq!(initial, TargetState::Paused);

        let (name, _, _) =
            parse("/d/stem.json", r#"{"config": {"connector.class": "A"}}"#).unwrap();
        assert_eq!(name, "stem");
        let (name, _, _) = parse(
            "/d/stem.json",
            r#"{"config": {"connector.class": "A", "name": "inner"}}"#,
        )
        .unwrap();
        assert_eq!(name, "inner");
    }

    #[test]
    fn bad_documents_are_refused_with_a_reason() {
        let check = |text: &str, incomplete: bool, needle: &str| {
            let err = parse("/d/a.json", text).unwrap_err();
            assert_eq!(
                matches!(err, Refusal::Incomplete(_)),
                incomplete,
                "{text}: {err:?}"
            );
            assert!(err.reason().contains(needle), "{text}: {err:?}");
        };
        check("", true, "empty");
        check(r#"{"connector.class": "A", "#, true, "not valid JSON");
        check("[1, 2]", false, "expected a JSON object");
        check(r#"{"config": 3}"#, false, "config");
        check(r#"{"name": "a", "config": {"name": "b"}}"#, false, "name");
        check(r#"{"connector.class": {"x": 1}}"#, false, "values must be");
        check(
            r#"{"config": {"connector.class": "A"}, "initial_state": "GONE"}"#,
            false,
            "initial_state",
        );
        check(r#"{"name": "a/b", "connector.class": "A"}"#, false, "name");
    }

    #[test]
    fn only_visible_json_files_are_connector_files() {
        for (file, yes) in [
            ("/d/a.json", true),
            ("/d/.a.json", false),
            ("/d/a.json~", false),
            ("/d/a.json.tmp", false),
            ("/d/.json", false),
            ("/d/a.yaml", false),
        ] {
            assert_eq!(is_connector_file(Path::new(file)), yes, "{file}");
        }
    }
}
