//! Watching `plugin.path`: a plugin library copied in while the worker runs becomes
//! available without a restart.
//!
//! [`PluginWatcher`] owns one thread. It watches every `plugin.path` directory and each of
//! their subdirectories (a plugin's own folder, one level down, as the scan reads them) with
//! `notify` (inotify on Linux), and publishes each new [`PluginRegistry`] through a
//! [`SharedRegistry`]: readers take snapshots and never wait for a load, subscribers see a
//! generation counter move.
//!
//! When a file counts as written: no event for it during [`WatchOptions::quiet`] (500 ms by
//! default) and the same size, inode and change time before and after that quiet period.
//! Editors and `cp` emit bursts of events; a copy written in slow pieces keeps being
//! pushed back. A file that still fails to load is tried again after another quiet period
//! (it may only have paused), and only a file that stays unloadable is reported: one
//! warning naming it and saying what to do, and a [`ScanIssue`] in the registry until the
//! file changes or goes. The loader also refuses any ELF file whose headers point past its
//! end before `dlopen` (see `registry`), so a truncated copy is never mapped.
//!
//! Versions: the registry keys libraries by content, so a file replaced in place (or
//! renamed over) loads as a new library beside the old one; connectors created afterwards
//! get the new one, instances already created keep the library they came from. A file
//! removed from `plugin.path` takes its connectors out of the registry (running instances
//! are not affected). The safest way to install is to copy under a hidden name (`.x.so`)
//! and rename into place: hidden files are ignored, and a rename is one event.
//!
//! What this module is not: it does not decide what the worker does with a new version
//! (running connectors are never restarted by it), and it does not scan more than one level
//! below a `plugin.path` directory. A directory on `plugin.path` that does not exist yet is
//! reported and tried again every [`ROOT_RETRY`].
//!
//! Threads: the watcher thread does the loading (which may block); `notify`'s own thread
//! only hands events over through a bounded channel (when it is full, the next wake-up
//! rescans everything instead). Nothing here runs on an async worker thread.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};

use super::registry::{
    PluginLoader, PluginRegistry, ScanIssue, SharedRegistry, is_cargo_output_dir, is_hidden,
    is_library,
};
use super::{PluginError, PluginLibrary};

/// How often a `plugin.path` directory that cannot be watched (missing, unreadable) is
/// tried again.
pub const ROOT_RETRY: Duration = Duration::from_secs(2);

/// Events waiting for the watcher thread; beyond this, a full rescan replaces them.
const CHANNEL_CAPACITY: usize = 1024;

/// The longest the thread sleeps with nothing to do (it is woken for events and to stop).
const IDLE_WAKE: Duration = Duration::from_secs(5);

/// How the watcher decides a file is complete.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// How long a file must stay untouched (no event; same size, inode and change time)
    /// before it is loaded.
    pub quiet: Duration,
    /// Loads tried on a file that stays unchanged before it is reported as unloadable
    /// (at least 1). Each try waits another `quiet` period.
    pub attempts: u32,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            quiet: Duration::from_millis(500),
            attempts: 2,
        }
    }
}

/// Why the watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(
        "cannot watch plugin.path for new plugins: {source}; if the inotify limits are \
         reached, raise fs.inotify.max_user_instances and fs.inotify.max_user_watches"
    )]
    Init {
        #[source]
        source: notify::Error,
    },
    #[error("cannot start the plugin.path watcher thread: {source}")]
    Thread {
        #[source]
        source: std::io::Error,
    },
}

/// Watches `plugin.path` and keeps a [`SharedRegistry`] up to date; see the module docs.
///
/// Stopped by [`PluginWatcher::stop`] or on drop; either waits for a library load in
/// progress to finish (call it from a blocking context, not an async worker thread).
#[derive(Debug)]
pub struct PluginWatcher {
    registry: SharedRegistry,
    plugin_path: Vec<PathBuf>,
    stop: Arc<AtomicBool>,
    wake: SyncSender<Msg>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
enum Msg {
    Event(notify::Result<notify::Event>),
    Wake,
}

impl PluginWatcher {
    /// Watch `plugin_path` with the default [`WatchOptions`].
    pub fn start(
        loader: Arc<PluginLoader>,
        plugin_path: &[PathBuf],
    ) -> Result<PluginWatcher, WatchError> {
        PluginWatcher::start_with(loader, plugin_path, WatchOptions::default())
    }

    /// Start watching, load what is already complete on `plugin_path` (as a scan would, but
    /// leaving files changed within the last `quiet` period to the watcher), publish that
    /// as generation 0, and hand the rest to the watcher thread.
    ///
    /// The first loads happen in the caller's thread: from async code, call this inside
    /// `spawn_blocking`. A directory that cannot be watched is not an error here: it is an
    /// issue in the registry, tried again every [`ROOT_RETRY`].
    pub fn start_with(
        loader: Arc<PluginLoader>,
        plugin_path: &[PathBuf],
        options: WatchOptions,
    ) -> Result<PluginWatcher, WatchError> {
        let (tx, rx) = mpsc::sync_channel(CHANNEL_CAPACITY);
        let overflow = Arc::new(AtomicBool::new(false));
        let events = tx.clone();
        let full = overflow.clone();
        // Watches come first, so that nothing written during the initial load is missed.
        let mut watcher = notify::recommended_watcher(move |event| {
            if let Err(TrySendError::Full(_)) = events.try_send(Msg::Event(event)) {
                full.store(true, Ordering::Release);
            }
        })
        .map_err(|source| WatchError::Init { source })?;

        let mut state = State::new(loader, plugin_path, options);
        let now = Instant::now();
        for i in 0..state.roots.len() {
            state.sync_root(&mut watcher, i, now);
        }
        state.settle(now, true);
        let first = state.registry();
        state.changed = false;
        let mut reported = BTreeSet::new();
        report_new_issues(&first, &mut reported);
        let registry = SharedRegistry::new(first);

        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let registry = registry.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("tributary-plugin-watcher".into())
                .spawn(move || {
                    run(state, watcher, rx, registry, stop, overflow, reported);
                })
                .map_err(|source| WatchError::Thread { source })?
        };
        Ok(PluginWatcher {
            registry,
            plugin_path: plugin_path.to_vec(),
            stop,
            wake: tx,
            thread: Some(thread),
        })
    }

    /// The registry it keeps current; clone it to share.
    pub fn registry(&self) -> &SharedRegistry {
        &self.registry
    }

    /// The directories it watches, as given.
    pub fn plugin_path(&self) -> &[PathBuf] {
        &self.plugin_path
    }

    /// Stop watching and wait for the thread (at most the end of a load in progress). The
    /// registry stays as last published.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        // A full channel wakes the thread anyway.
        let _ = self.wake.try_send(Msg::Wake);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the plugin.path watcher thread panicked");
        }
    }
}

impl Drop for PluginWatcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The watcher thread.
fn run(
    mut state: State,
    mut watcher: notify::RecommendedWatcher,
    rx: Receiver<Msg>,
    registry: SharedRegistry,
    stop: Arc<AtomicBool>,
    overflow: Arc<AtomicBool>,
    mut reported: BTreeSet<String>,
) {
    while !stop.load(Ordering::Acquire) {
        let timeout = state.next_wake(Instant::now());
        let first = match rx.recv_timeout(timeout) {
            Ok(msg) => Some(msg),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // What is queued now, and no more: a steady stream must not starve the settling.
        let queued = first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()).take(CHANNEL_CAPACITY));
        let mut rescan = overflow.swap(false, Ordering::AcqRel);
        for msg in queued {
            match msg {
                Msg::Event(Ok(event)) => {
                    rescan |= state.on_event(&mut watcher, event, Instant::now());
                }
                Msg::Event(Err(error)) => {
                    tracing::warn!(%error, "plugin.path watch error; rescanning plugin.path");
                    rescan = true;
                }
                Msg::Wake => {}
            }
        }
        if stop.load(Ordering::Acquire) {
            break;
        }
        let now = Instant::now();
        if rescan {
            for i in 0..state.roots.len() {
                state.sync_root(&mut watcher, i, now);
            }
        }
        state.retry_roots(&mut watcher, now);
        state.settle(now, false);
        if std::mem::take(&mut state.changed) {
            let next = state.registry();
            report_new_issues(&next, &mut reported);
            let generation = registry.publish(next);
            tracing::info!(generation, "plugin registry updated");
        }
    }
}

/// Log each issue not logged before (by its text), once; forget the ones that went away so
/// that they are reported again if they come back.
fn report_new_issues(registry: &PluginRegistry, reported: &mut BTreeSet<String>) {
    let now: BTreeSet<String> = registry.issues().iter().map(|i| i.to_string()).collect();
    for issue in registry.issues() {
        if !reported.contains(&issue.to_string()) {
            tracing::warn!(issue = %issue, "{}", advice(issue));
        }
    }
    *reported = now;
}

/// What to do about an issue the watcher found.
fn advice(issue: &ScanIssue) -> &'static str {
    match issue {
        ScanIssue::Load(PluginError::ReadDir { .. }) => {
            "plugin.path directory skipped: create it or fix its permissions (it is tried \
             again every few seconds), or remove it from plugin.path"
        }
        ScanIssue::Load(_) => {
            "plugin file skipped until it changes: replace it with a complete plugin library \
             built against this worker's SDK, or remove it from plugin.path"
        }
        ScanIssue::DuplicateConnector { .. } | ScanIssue::AmbiguousAlias { .. } => {
            "plugin.path: remove one of the plugins, or use the full connector name"
        }
    }
}

/// What identifies a version of a file without reading it (also what `worker::deploy`
/// debounces connector files by).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) len: u64,
    /// The change time where there is one (it moves on every write and cannot be set back,
    /// unlike the modification time `cp -p` preserves), else the modification time.
    pub(crate) changed: Option<SystemTime>,
    /// Device and inode: a file renamed over another is a new file.
    pub(crate) id: (u64, u64),
}

/// The stat of a regular file (following symbolic links), or `None` if there is none.
pub(crate) fn stat(path: &Path) -> Option<Stat> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    #[cfg(unix)]
    let (changed, id) = {
        use std::os::unix::fs::MetadataExt;
        let changed = u64::try_from(meta.ctime()).ok().and_then(|secs| {
            let nanos = u32::try_from(meta.ctime_nsec()).unwrap_or(0);
            SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
        });
        (changed, (meta.dev(), meta.ino()))
    };
    #[cfg(not(unix))]
    let (changed, id) = (meta.modified().ok(), (0, 0));
    Some(Stat {
        len: meta.len(),
        changed,
        id,
    })
}

/// A file the watcher has decided about.
#[derive(Debug)]
enum Known {
    Loaded {
        stat: Stat,
        library: Arc<PluginLibrary>,
    },
    /// Stayed unloadable; kept (and reported) until the file changes.
    Failed { stat: Stat, issue: ScanIssue },
}

impl Known {
    fn stat(&self) -> Stat {
        match self {
            Known::Loaded { stat, .. } | Known::Failed { stat, .. } => *stat,
        }
    }
}

/// A file with recent events, waiting to be quiet.
#[derive(Debug)]
struct Pending {
    /// The last event, or the last time its stat was seen to change.
    last_change: Instant,
    /// Its stat at that time.
    seen: Option<Stat>,
    /// Loads that failed while the file stayed as `seen`.
    failures: u32,
}

/// One directory of `plugin.path`.
#[derive(Debug)]
struct Root {
    /// Absolute (the paths `notify` reports are).
    dir: PathBuf,
    watched: bool,
    /// Why it cannot be read or watched, reported in the registry.
    error: Option<std::io::Error>,
}

#[derive(Debug)]
struct State {
    loader: Arc<PluginLoader>,
    options: WatchOptions,
    roots: Vec<Root>,
    /// Watched subdirectories of the roots.
    subdirs: BTreeSet<PathBuf>,
    known: BTreeMap<PathBuf, Known>,
    pending: BTreeMap<PathBuf, Pending>,
    last_root_retry: Instant,
    /// The registry must be rebuilt and published.
    changed: bool,
}

impl State {
    fn new(loader: Arc<PluginLoader>, plugin_path: &[PathBuf], options: WatchOptions) -> State {
        let roots = plugin_path
            .iter()
            .map(|dir| Root {
                dir: std::path::absolute(dir).unwrap_or_else(|_| dir.clone()),
                watched: false,
                error: None,
            })
            .collect();
        State {
            loader,
            options: WatchOptions {
                attempts: options.attempts.max(1),
                ..options
            },
            roots,
            subdirs: BTreeSet::new(),
            known: BTreeMap::new(),
            pending: BTreeMap::new(),
            last_root_retry: Instant::now(),
            changed: false,
        }
    }

    /// Note an event for a file: it is pending again, its quiet period starts over.
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

    /// Every known file under `dir` is pending again (to notice removals).
    fn dirty_known_in(&mut self, dir: &Path, now: Instant) {
        let inside: Vec<PathBuf> = self
            .known
            .keys()
            .filter(|p| p.starts_with(dir))
            .cloned()
            .collect();
        for path in inside {
            self.dirty(&path, now);
        }
    }

    /// Handle one event; answers whether everything must be rescanned.
    fn on_event(&mut self, watcher: &mut impl Watcher, event: notify::Event, now: Instant) -> bool {
        if event.need_rescan() {
            return true;
        }
        // Reads (ours included) change nothing; a writer closing its file does.
        if let EventKind::Access(kind) = event.kind
            && kind != AccessKind::Close(AccessMode::Write)
        {
            return false;
        }
        // Gone from where it was (deleted, or renamed away): a watch on it is gone too.
        let gone = matches!(
            event.kind,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
        );
        for path in &event.paths {
            self.touch(watcher, path, gone, now);
        }
        false
    }

    /// Something happened at `path`; `gone` if it was removed or renamed (it may be back).
    fn touch(&mut self, watcher: &mut impl Watcher, path: &Path, gone: bool, now: Instant) {
        if let Some(i) = self.roots.iter().position(|r| r.dir == path) {
            // A root itself: deleted, moved away, or (after that) recreated.
            if gone || !self.roots[i].watched {
                self.roots[i].watched = false;
                self.sync_root(watcher, i, now);
            }
            return;
        }
        let Some(parent) = path.parent() else {
            return;
        };
        if let Some(root) = self.roots.iter().find(|r| r.dir == parent) {
            let nested = !is_cargo_output_dir(&root.dir);
            if gone && self.subdirs.remove(path) {
                let _ = watcher.unwatch(path);
                self.dirty_known_in(path, now);
            }
            if nested && !is_hidden(path) && path.is_dir() {
                self.sync_subdir(watcher, path, now);
            }
            if is_library(path) {
                self.dirty(path, now);
            }
        } else if self.subdirs.contains(parent) && is_library(path) {
            self.dirty(path, now);
        }
    }

    /// Watch a root (if not yet) and mark everything in it pending.
    fn sync_root(&mut self, watcher: &mut impl Watcher, i: usize, now: Instant) {
        let dir = self.roots[i].dir.clone();
        let before = self.roots[i].error.as_ref().map(|e| e.to_string());
        if !self.roots[i].watched {
            // A watch left from a deleted directory would answer for the old one.
            let _ = watcher.unwatch(&dir);
            match watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.roots[i].watched = true;
                    self.roots[i].error = None;
                }
                Err(e) => {
                    self.roots[i].error = Some(match e.kind {
                        notify::ErrorKind::Io(io) => io,
                        notify::ErrorKind::PathNotFound => {
                            std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory")
                        }
                        _ => std::io::Error::other(e.to_string()),
                    });
                }
            }
        }
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                let nested = !is_cargo_output_dir(&dir);
                let mut entries: Vec<PathBuf> =
                    entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                entries.sort();
                for entry in entries {
                    if entry.is_dir() {
                        if nested && !is_hidden(&entry) {
                            self.sync_subdir(watcher, &entry, now);
                        }
                    } else if is_library(&entry) {
                        self.dirty(&entry, now);
                    }
                }
            }
            Err(e) => {
                self.roots[i].watched = false;
                self.roots[i].error = Some(e);
            }
        }
        self.dirty_known_in(&dir, now);
        if self.roots[i].error.as_ref().map(|e| e.to_string()) != before {
            self.changed = true;
        }
    }

    /// Watch a new subdirectory and mark its libraries pending; forget a removed one.
    fn sync_subdir(&mut self, watcher: &mut impl Watcher, dir: &Path, now: Instant) {
        if dir.is_dir() {
            if !self.subdirs.contains(dir) {
                match watcher.watch(dir, RecursiveMode::NonRecursive) {
                    Ok(()) => {
                        self.subdirs.insert(dir.to_path_buf());
                    }
                    Err(error) => tracing::warn!(
                        dir = %dir.display(),
                        %error,
                        "cannot watch this plugin folder; restart the worker to pick up \
                         changes in it"
                    ),
                }
            }
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.filter_map(|e| e.ok().map(|e| e.path())) {
                    if is_library(&entry) {
                        self.dirty(&entry, now);
                    }
                }
            }
        } else if self.subdirs.remove(dir) {
            let _ = watcher.unwatch(dir);
        }
        self.dirty_known_in(dir, now);
    }

    /// Try again the roots that could not be watched.
    fn retry_roots(&mut self, watcher: &mut impl Watcher, now: Instant) {
        if now.duration_since(self.last_root_retry) < ROOT_RETRY {
            return;
        }
        self.last_root_retry = now;
        for i in 0..self.roots.len() {
            if !self.roots[i].watched {
                self.sync_root(watcher, i, now);
            }
        }
    }

    /// How long the thread may sleep.
    fn next_wake(&self, now: Instant) -> Duration {
        let mut wake = IDLE_WAKE;
        if self.roots.iter().any(|r| !r.watched) {
            wake = wake.min((self.last_root_retry + ROOT_RETRY).saturating_duration_since(now));
        }
        for p in self.pending.values() {
            wake = wake.min((p.last_change + self.options.quiet).saturating_duration_since(now));
        }
        wake
    }

    /// Decide about every pending file whose quiet period is over (all of them at start:
    /// `initial`, where only the file's change time can tell it is still being written).
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
                if self.known.remove(&path).is_some() {
                    tracing::info!(file = %path.display(), "plugin library removed from plugin.path");
                    self.changed = true;
                }
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
            if self.known.get(&path).is_some_and(|k| k.stat() == current) {
                continue;
            }
            let result = self.loader.load(&path);
            let after = stat(&path);
            match result {
                Ok(library) => {
                    let names: Vec<&str> = library
                        .connectors()
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect();
                    tracing::info!(
                        file = %path.display(),
                        connectors = %names.join(", "),
                        "plugin library loaded"
                    );
                    self.known.insert(
                        path.clone(),
                        Known::Loaded {
                            stat: current,
                            library,
                        },
                    );
                    self.changed = true;
                    if after != Some(current) {
                        // Changed again while loading: load what it became, too.
                        p.seen = after;
                        p.last_change = now;
                        p.failures = 0;
                        self.pending.insert(path, p);
                    }
                }
                Err(error) if after != Some(current) => {
                    tracing::debug!(file = %path.display(), %error, "plugin file changed while loading; waiting");
                    p.seen = after;
                    p.last_change = now;
                    p.failures = 0;
                    self.pending.insert(path, p);
                }
                Err(error) => {
                    p.failures += 1;
                    if p.failures < self.options.attempts {
                        tracing::debug!(file = %path.display(), %error, "plugin file not loadable yet; trying again");
                        p.last_change = now;
                        self.pending.insert(path, p);
                    } else {
                        self.known.insert(
                            path,
                            Known::Failed {
                                stat: current,
                                issue: ScanIssue::Load(error),
                            },
                        );
                        self.changed = true;
                    }
                }
            }
        }
    }

    /// The index of the root a file belongs to (scan order), or past the end.
    fn root_of(&self, path: &Path) -> usize {
        self.roots
            .iter()
            .position(|r| path.starts_with(&r.dir))
            .unwrap_or(self.roots.len())
    }

    /// The registry of what is known, in scan order: roots in `plugin.path` order, files by
    /// path within each.
    fn registry(&self) -> PluginRegistry {
        let mut found = Vec::new();
        let mut failed = Vec::new();
        for (path, known) in &self.known {
            let root = self.root_of(path);
            match known {
                Known::Loaded { library, .. } => found.push((root, path.clone(), library.clone())),
                Known::Failed { issue, .. } => failed.push((root, path, issue)),
            }
        }
        found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        failed.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let mut issues = Vec::new();
        for (i, root) in self.roots.iter().enumerate() {
            if let Some(e) = &root.error {
                issues.push(ScanIssue::Load(PluginError::ReadDir {
                    dir: root.dir.clone(),
                    source: std::io::Error::new(e.kind(), e.to_string()),
                }));
            }
            issues.extend(
                failed
                    .iter()
                    .filter(|(r, _, _)| *r == i)
                    .map(|(_, _, issue)| issue.duplicate()),
            );
        }
        let found = found
            .into_iter()
            .map(|(_, path, library)| (path, library))
            .collect();
        PluginRegistry::assemble(found, issues)
    }
}

#[cfg(test)]
mod tests {
    //! Real plugin libraries (the no-op plugin) and real files, written the ways people
    //! install plugins: plainly, in slow pieces, in place, renamed over.

    use std::collections::BTreeMap;
    use std::io::Write;
    use std::process::Command;
    use std::sync::OnceLock;

    use super::*;

    const SOURCE: &str = "io.tributary.connect.noop.NoopSourceConnector";

    /// Generous: the machine may be busy building; a load normally takes milliseconds
    /// after the quiet period.
    const DEADLINE: Duration = Duration::from_secs(30);

    /// The no-op plugin's bytes, built once per test run into `<target>/plugin-tests/target`
    /// (where the loader's tests build it too: cargo's lock serialises the two builds, and
    /// the nested cargo never waits on the lock of the build running these tests).
    fn noop_bytes() -> &'static [u8] {
        static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
        BYTES.get_or_init(|| {
            let exe = std::env::current_exe().expect("the test binary's path");
            let target = exe
                .ancestors()
                .nth(3)
                .expect("the test binary lives in <target>/<profile>/deps")
                .join("plugin-tests/target");
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
            let out = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "tributary-connector-noop",
                    "--lib",
                ])
                .arg("--manifest-path")
                .arg(&manifest)
                .arg("--target-dir")
                .arg(&target)
                .output()
                .expect("running cargo");
            assert!(
                out.status.success(),
                "building the no-op plugin failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::read(target.join("debug/libtributary_connector_noop.so"))
                .expect("the no-op plugin library")
        })
    }

    /// The no-op library with bytes appended: loads the same, hashes differently.
    fn noop_variant(tag: &str) -> Vec<u8> {
        let mut b = noop_bytes().to_vec();
        b.extend_from_slice(tag.as_bytes());
        b
    }

    fn quick() -> WatchOptions {
        WatchOptions {
            quiet: Duration::from_millis(200),
            attempts: 2,
        }
    }

    fn host() -> Arc<crate::plugin::NoopHost> {
        Arc::new(crate::plugin::NoopHost)
    }

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    /// Poll `condition` until it holds; fail naming `what` after [`DEADLINE`].
    fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
        let start = Instant::now();
        while !condition() {
            assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A plugin directory and a cache directory in a temporary directory.
    struct Fixture {
        root: tempfile::TempDir,
        plugins: PathBuf,
    }

    impl Fixture {
        fn new() -> Fixture {
            // Built before the clock of any test starts.
            noop_bytes();
            let root = tempfile::tempdir().unwrap();
            let plugins = root.path().join("plugins");
            std::fs::create_dir(&plugins).unwrap();
            Fixture { root, plugins }
        }

        fn cache(&self) -> PathBuf {
            self.root.path().join("cache")
        }

        fn start(&self, dirs: &[PathBuf], options: WatchOptions) -> PluginWatcher {
            let loader = Arc::new(PluginLoader::new(self.cache()));
            PluginWatcher::start_with(loader, dirs, options).expect("the watcher starts")
        }

        fn cached_copies(&self) -> usize {
            std::fs::read_dir(self.cache()).map_or(0, |d| d.count())
        }
    }

    fn load_issue_for<'a>(registry: &'a PluginRegistry, file: &Path) -> Option<&'a ScanIssue> {
        registry.issues().iter().find(
            |i| matches!(i, ScanIssue::Load(PluginError::NotLoadable { file: f, .. }) if f == file),
        )
    }

    #[test]
    fn a_library_copied_in_becomes_available() {
        let fx = Fixture::new();
        // A copy in progress under a hidden name is never looked at.
        std::fs::write(fx.plugins.join(".partial.so"), b"half").unwrap();
        let watcher = fx.start(std::slice::from_ref(&fx.plugins), quick());
        let registry = watcher.registry().clone();
        assert_eq!(registry.snapshot().connectors().count(), 0);
        assert!(registry.snapshot().issues().is_empty());
        let mut changes = registry.subscribe();

        // A plugin in its own folder, made after the watcher started.
        let copied = Instant::now();
        let folder = fx.plugins.join("noop");
        std::fs::create_dir(&folder).unwrap();
        let file = folder.join("libtributary_connector_noop.so");
        std::fs::write(&file, noop_bytes()).unwrap();

        // Wait the way a REST layer would: on the generation counter.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let plugin = runtime
            .block_on(async {
                tokio::time::timeout(DEADLINE, async {
                    loop {
                        if let Ok(plugin) = registry.lookup("NoopSource") {
                            return plugin;
                        }
                        changes.changed().await.expect("the watcher is running");
                    }
                })
                .await
            })
            .expect("the copied plugin is loaded within the deadline");
        let took = copied.elapsed();
        assert!(
            took >= quick().quiet,
            "loaded after {took:?}, before the quiet period"
        );
        assert_eq!(plugin.name(), SOURCE);
        assert_eq!(plugin.file(), std::path::absolute(&file).unwrap());
        assert!(registry.generation() >= 1);
        assert!(registry.snapshot().issues().is_empty());

        let mut task = plugin.new_source_task().unwrap();
        task.start(&config(&[("noop.records.per.poll", "3")]), host())
            .unwrap();
        assert_eq!(task.poll().unwrap().len(), 3);

        let stopping = Instant::now();
        watcher.stop();
        assert!(stopping.elapsed() < Duration::from_secs(5));
        // The registry outlives the watcher, as last published.
        assert!(registry.lookup(SOURCE).is_ok());
        assert_eq!(task.poll().unwrap().len(), 3);
    }

    #[test]
    fn a_file_written_in_slow_pieces_is_loaded_only_when_complete() {
        let fx = Fixture::new();
        let options = WatchOptions {
            quiet: Duration::from_millis(300),
            attempts: 2,
        };
        let watcher = fx.start(std::slice::from_ref(&fx.plugins), options.clone());
        let registry = watcher.registry();
        let file = fx.plugins.join("libslow.so");
        let bytes = noop_bytes();
        let half = bytes.len() / 2;
        let mut out = std::fs::File::create(&file).unwrap();

        // Pieces well inside the quiet period.
        for piece in bytes[..half].chunks(half / 6 + 1) {
            assert!(registry.lookup(SOURCE).is_err(), "loaded before complete");
            out.write_all(piece).unwrap();
            std::thread::sleep(options.quiet / 4);
        }
        // A pause longer than the quiet period: the half-written file is tried, refused
        // before it is mapped, tried again, then reported.
        wait_until("the half-written file is reported", || {
            load_issue_for(&registry.snapshot(), &file).is_some()
        });
        let text = load_issue_for(&registry.snapshot(), &file)
            .unwrap()
            .to_string();
        assert!(text.contains("incomplete"), "{text}");
        assert_eq!(fx.cached_copies(), 0, "nothing half-written was copied");

        // The rest, in pieces.
        for piece in bytes[half..].chunks(half / 6 + 1) {
            assert!(registry.lookup(SOURCE).is_err(), "loaded before complete");
            out.write_all(piece).unwrap();
            std::thread::sleep(options.quiet / 4);
        }
        drop(out);
        wait_until("the completed file is loaded", || {
            registry.lookup(SOURCE).is_ok()
        });
        assert!(
            registry.snapshot().issues().is_empty(),
            "{}",
            registry.snapshot().render()
        );
        assert_eq!(fx.cached_copies(), 1);
        let mut task = registry
            .lookup("NoopSource")
            .unwrap()
            .new_source_task()
            .unwrap();
        task.start(&config(&[("noop.records.per.poll", "2")]), host())
            .unwrap();
        assert_eq!(task.poll().unwrap().len(), 2);
    }

    #[test]
    fn a_garbage_file_is_reported_once_and_the_watcher_goes_on() {
        let fx = Fixture::new();
        let options = quick();
        let watcher = fx.start(std::slice::from_ref(&fx.plugins), options.clone());
        let registry = watcher.registry();
        // Deterministic garbage.
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let garbage: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let bad = fx.plugins.join("x.so");
        std::fs::write(&bad, &garbage).unwrap();
        wait_until("the garbage file is reported", || {
            load_issue_for(&registry.snapshot(), &bad).is_some()
        });
        let snapshot = registry.snapshot();
        let issue = load_issue_for(&snapshot, &bad).unwrap();
        assert!(issue.to_string().contains("x.so"), "{issue}");
        assert!(advice(issue).contains("remove it from plugin.path"));
        assert_eq!(fx.cached_copies(), 0, "garbage never reaches the cache");

        // An unchanged file is not tried again: nothing more is published.
        let generation = registry.generation();
        std::thread::sleep(options.quiet * 4);
        assert_eq!(registry.generation(), generation);

        // Other plugins still load beside it.
        std::fs::write(fx.plugins.join("libnoop.so"), noop_bytes()).unwrap();
        wait_until("the good plugin is loaded", || {
            registry.lookup(SOURCE).is_ok()
        });
        assert!(load_issue_for(&registry.snapshot(), &bad).is_some());

        // Removing the bad file clears its issue.
        std::fs::remove_file(&bad).unwrap();
        wait_until("the issue is gone", || {
            registry.snapshot().issues().is_empty()
        });
        assert!(registry.lookup(SOURCE).is_ok());
    }

    #[test]
    fn a_replaced_library_loads_as_a_new_version_and_instances_keep_theirs() {
        let fx = Fixture::new();
        let file = fx.plugins.join("libnoop.so");
        std::fs::write(&file, noop_bytes()).unwrap();
        let watcher = fx.start(std::slice::from_ref(&fx.plugins), quick());
        let registry = watcher.registry();
        wait_until("the plugin is loaded", || registry.lookup(SOURCE).is_ok());
        let first = registry.lookup(SOURCE).unwrap();
        let mut first_task = first.new_source_task().unwrap();
        first_task
            .start(&config(&[("noop.records.per.poll", "1")]), host())
            .unwrap();

        // Rewritten in place (truncated, then written).
        std::fs::write(&file, noop_variant("v2")).unwrap();
        wait_until("the rewritten library is loaded", || {
            registry
                .lookup(SOURCE)
                .is_ok_and(|p| !Arc::ptr_eq(p.library(), first.library()))
        });
        let second = registry.lookup(SOURCE).unwrap();
        assert_ne!(
            second.library().loaded_from(),
            first.library().loaded_from()
        );
        assert_eq!(second.file(), first.file());

        // Written under a hidden name and renamed over.
        let staging = fx.plugins.join(".libnoop.so.tmp");
        std::fs::write(&staging, noop_variant("v3")).unwrap();
        std::fs::rename(&staging, &file).unwrap();
        wait_until("the renamed library is loaded", || {
            registry
                .lookup(SOURCE)
                .is_ok_and(|p| !Arc::ptr_eq(p.library(), second.library()))
        });
        let third = registry.lookup(SOURCE).unwrap();
        assert_eq!(fx.cached_copies(), 3);
        assert!(registry.snapshot().issues().is_empty());

        // New instances come from the new library; the old one keeps running its own.
        let mut third_task = third.new_source_task().unwrap();
        third_task
            .start(&config(&[("noop.records.per.poll", "2")]), host())
            .unwrap();
        assert_eq!(third_task.poll().unwrap().len(), 2);
        assert_eq!(first_task.poll().unwrap().len(), 1);

        // Removed: its connectors go, running instances stay.
        std::fs::remove_file(&file).unwrap();
        wait_until("the removed library is gone", || {
            matches!(
                registry.lookup(SOURCE),
                Err(PluginError::UnknownConnector { .. })
            )
        });
        assert_eq!(first_task.poll().unwrap().len(), 1);
        assert_eq!(third_task.poll().unwrap().len(), 2);
    }

    #[test]
    fn a_plugin_path_directory_made_later_is_watched_once_it_exists() {
        let fx = Fixture::new();
        let later = fx.root.path().join("later");
        let watcher = fx.start(std::slice::from_ref(&later), quick());
        let registry = watcher.registry();
        let snapshot = registry.snapshot();
        assert!(
            matches!(
                snapshot.issues(),
                [ScanIssue::Load(PluginError::ReadDir { dir, .. })] if *dir == later
            ),
            "{}",
            snapshot.render()
        );
        std::fs::create_dir(&later).unwrap();
        std::fs::write(later.join("libnoop.so"), noop_bytes()).unwrap();
        wait_until("the plugin in the new directory is loaded", || {
            registry.lookup(SOURCE).is_ok()
        });
        assert!(registry.snapshot().issues().is_empty());
    }
}
