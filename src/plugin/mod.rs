//! Connector plugins: finding shared libraries on `plugin.path`, loading them, and calling
//! their connectors and tasks across the C ABI of `tributary-plugin-abi`.
//!
//! - [`library`]: one loaded library ([`PluginLibrary`]): the content-addressed copy it is
//!   loaded from, the ABI version check that comes before any other call, its descriptors.
//! - [`registry`]: [`PluginLoader`] scans `plugin.path` into a [`PluginRegistry`] of
//!   connectors by full name and alias, with a [`ScanIssue`] for every file it skipped,
//!   every duplicate and every ambiguous alias.
//! - [`watch`]: [`PluginWatcher`] keeps a [`SharedRegistry`] current while the worker runs:
//!   a library copied onto `plugin.path` is loaded once complete, a replaced one as a new
//!   version beside the old.
//! - [`scaffold`]: `tributary plugin new`, a plugin crate that builds and runs as it is.
//! - [`transform`]: [`TransformInstance`], the host's handle on a plugin's transformation or
//!   predicate: configure, apply or test a batch (lent as views, one crossing per batch),
//!   close.
//! - [`instance`]: [`Connector`], [`SourceTask`] and [`SinkTask`], the host's handles on a
//!   plugin's instances; every failure becomes a [`PluginError`] naming the file and the
//!   connector. Also the other direction, Kafka Connect's contexts: what a plugin may ask of
//!   the worker goes to the [`ConnectorHost`], [`SourceTaskHost`] or [`SinkTaskHost`] given to
//!   the handle's `start` ([`NoopHost`] and [`MemoryHost`] for code and tests that do not
//!   need a real worker).
//!
//! What this module is not: it knows nothing of connector configs beyond string maps, of
//! topics, converters or the worker's scheduling. It never depends on a connector crate.
//!
//! **Blocking.** Every plugin call may block (a poll waiting for data, a flush waiting for a
//! remote system). The handles are `Send` and called through `&mut self`: move them into
//! `tokio::task::spawn_blocking` or onto a dedicated thread; never call them on an async
//! worker thread.
//!
//! **Host callbacks.** A plugin calls its host from any of its threads, including from inside
//! a call the worker is making into it (a source task reads its offsets during `start`), on
//! the worker's calling thread. So an implementation of the host traits must answer without
//! waiting for the instance that calls it: no lock the worker holds around its calls into
//! that instance, no waiting for the task's own thread; record the request and act on it
//! elsewhere. It may fail ([`HostError`], retriable or not) or even panic: the plugin gets an
//! error, never an unwinding. The handle keeps the host until the instance is freed; a
//! plugin thread calling a context after that gets an error, never freed memory.
//!
//! **Unloading.** Libraries are never unloaded (`dlclose` with thread-local destructors or
//! plugin threads still alive crashes). A library file that changes is copied and loaded
//! again under its new content hash, side by side with the old one; instances keep the
//! library they were created from.

pub mod instance;
pub mod library;
pub mod registry;
pub mod scaffold;
pub mod transform;
pub mod watch;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use instance::{
    Connector, ConnectorHost, HostError, MemoryHost, MemoryHostState, NoopHost, PolledBatch,
    SinkTask, SinkTaskHost, SourceTask, SourceTaskHost,
};
pub use library::{ConnectorInfo, ConnectorType, PluginLibrary, TransformInfo, TransformType};
pub use registry::{
    ConnectorPlugin, PluginLoader, PluginRegistry, PluginTransform, ScanIssue, SharedRegistry,
    current_registry, default_plugin_path, live_registries,
};
pub use transform::{TransformInstance, TransformedRecord};
pub use watch::{PluginWatcher, WatchError, WatchOptions};

/// What went wrong loading a plugin or calling into one.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot read plugin directory {dir}: {source}")]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot copy plugin {file} into the plugin cache {cache}: {source}")]
    Cache {
        file: PathBuf,
        cache: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file} is not a loadable shared library ({reason}); remove it from plugin.path")]
    NotLoadable { file: PathBuf, reason: String },
    #[error("{file} is not a tributary plugin: it does not export {symbol}")]
    NotAPlugin { file: PathBuf, symbol: &'static str },
    #[error(
        "{file} was built for plugin ABI version {found}, but this worker speaks ABI version \
         {expected}; rebuild the plugin against a tributary-plugin-sdk for ABI version {expected}"
    )]
    AbiMismatch {
        file: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("{file}: the plugin's entry point failed: {message}")]
    Entry { file: PathBuf, message: String },
    #[error("{file}: the plugin describes itself wrongly: {reason}")]
    BadDescriptor { file: PathBuf, reason: String },
    #[error("connector {connector} ({file}) failed in {call}: {message}")]
    Failed {
        file: PathBuf,
        connector: String,
        call: &'static str,
        message: String,
        /// Whether calling again may succeed (Kafka Connect's `RetriableException`).
        retriable: bool,
    },
    #[error("connector {connector} ({file}) panicked in {call}: {message}")]
    Panicked {
        file: PathBuf,
        connector: String,
        call: &'static str,
        message: String,
    },
    #[error(
        "connector {connector} ({file}) cannot be called ({call}) after it panicked; restart the task"
    )]
    Poisoned {
        file: PathBuf,
        connector: String,
        call: &'static str,
    },
    #[error("connector {connector} ({file}) refused the worker's input to {call}: {message}")]
    Rejected {
        file: PathBuf,
        connector: String,
        call: &'static str,
        message: String,
    },
    #[error(
        "connector {connector} ({file}) answered {call} with data the worker cannot read: {reason}"
    )]
    Protocol {
        file: PathBuf,
        connector: String,
        call: &'static str,
        reason: String,
    },
    #[error(
        "no connector plugin is named {name}; `tributary plugin list` shows the installed ones"
    )]
    UnknownConnector { name: String },
    #[error("{name} could mean any of {}; use the full name", candidates.join(", "))]
    AmbiguousConnector {
        name: String,
        candidates: Vec<String>,
    },
    #[error("{kind} {name} ({file}) {} {call}: {message}", if *panicked { "panicked in" } else { "failed in" })]
    Transform {
        file: PathBuf,
        name: String,
        kind: TransformType,
        call: &'static str,
        message: String,
        /// A panic (now or earlier): the instance is not called again.
        panicked: bool,
    },
    #[error("{connector} is a {actual} connector, not a {expected} connector")]
    WrongType {
        connector: String,
        actual: ConnectorType,
        expected: ConnectorType,
    },
}

impl PluginError {
    /// Whether retrying the same call may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            PluginError::Failed {
                retriable: true,
                ..
            }
        )
    }

    /// Whether the instance panicked (now or earlier): the task is FAILED and must be
    /// recreated, the panic message is its trace.
    pub fn is_panic(&self) -> bool {
        matches!(
            self,
            PluginError::Panicked { .. }
                | PluginError::Poisoned { .. }
                | PluginError::Transform { panicked: true, .. }
        )
    }
}
