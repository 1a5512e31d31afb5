//! Write Tributary connector plugins.
//!
//! A plugin is a crate built as a shared library (`crate-type = ["cdylib", "rlib"]`) that
//! implements Kafka Connect's connector and task API in Rust and exports it with
//! [`export_plugin!`]. The worker finds the library on its `plugin.path`, checks its ABI
//! version, and runs its connectors' tasks.
//!
//! - [`SourceConnector`] / [`SinkConnector`]: configuration ([`ConfigDef`]), validation, and
//!   splitting the work into at most `tasks.max` task configs.
//! - [`SourceTask`] (`poll` batches of [`SourceRecord`]s; `commit`, `commit_record`) and
//!   [`SinkTask`] (`put` batches of [`SinkRecord`]s, or read them in place from a
//!   [`SinkBatch`] in `put_batch`; `pre_commit`/`flush` answering the offsets safe to commit;
//!   `open`/`close` of partitions).
//! - Records carry data in the Kafka Connect model ([`Data`]: a [`Value`] with an optional
//!   [`Schema`], logical types in [`logical`]) or raw bytes.
//! - Contexts, handed to each instance's `initialize` before `start`, to ask things of the
//!   worker: [`SourceTaskContext`] (the committed source offsets to resume from),
//!   [`ConnectorContext`] (request a task reconfiguration, raise an error) and
//!   [`SinkTaskContext`] (pause and resume partitions, rewind or skip, request a commit, the
//!   assignment).
//! - [`Transformation`] and [`Predicate`]: single message transforms and predicates
//!   (Kafka's `Transformation<R>` and `Predicate<R>`) on a [`ConnectRecord`], the source or
//!   sink record, exported beside connectors and used in `transforms.NAME.type`.
//! - [`testing`]: run a connector's tasks in-process and inspect the records and what they
//!   asked of the worker.
//!
//! ```
//! use tributary_plugin_sdk::*;
//!
//! #[derive(Default)]
//! pub struct HelloSource;
//! #[derive(Default)]
//! pub struct HelloTask { topic: String }
//!
//! impl SourceConnector for HelloSource {
//!     const NAME: &'static str = "com.example.HelloSourceConnector";
//!     type Task = HelloTask;
//!     fn config_def() -> ConfigDef {
//!         ConfigDef::new().define(ConfigKey::string("topic").doc("where to write"))
//!     }
//!     fn start(&mut self, _config: Config) -> Result<()> { Ok(()) }
//!     fn task_configs(&mut self, _max_tasks: usize) -> Result<Vec<RawConfig>> {
//!         Ok(vec![RawConfig::new()])
//!     }
//!     fn stop(&mut self) -> Result<()> { Ok(()) }
//! }
//!
//! impl SourceTask for HelloTask {
//!     fn start(&mut self, config: RawConfig) -> Result<()> {
//!         self.topic = config.get("topic").cloned().unwrap_or_default();
//!         Ok(())
//!     }
//!     fn poll(&mut self) -> Result<Vec<SourceRecord>> {
//!         Ok(vec![SourceRecord::new(&self.topic, Data::string("hello"))])
//!     }
//!     fn stop(&mut self) -> Result<()> { Ok(()) }
//! }
//!
//! export_plugin! { sources: [HelloSource] }
//! ```
//!
//! # Asking the worker
//!
//! Kafka Connect's contexts, in the same shape: each trait has an `initialize` (by default
//! ignoring its context) that the worker calls once, before `start`. Keep the context; it is
//! cheap to clone, `Send` and `Sync`. A source task resumes where its committed offsets say:
//!
//! ```
//! use tributary_plugin_sdk::*;
//!
//! #[derive(Default)]
//! pub struct TailTask {
//!     context: Option<SourceTaskContext>,
//!     file: String,
//!     position: i64,
//! }
//!
//! impl TailTask {
//!     fn partition(&self) -> OffsetMap {
//!         OffsetMap::from([("filename".to_owned(), Value::from(self.file.as_str()))])
//!     }
//! }
//!
//! impl SourceTask for TailTask {
//!     fn initialize(&mut self, context: SourceTaskContext) {
//!         self.context = Some(context);
//!     }
//!     fn start(&mut self, config: RawConfig) -> Result<()> {
//!         self.file = config.get("file").cloned().unwrap_or_default();
//!         let context = self.context.as_ref().ok_or_else(|| ConnectError::new("no context"))?;
//!         if let Some(offset) = context.offset(&self.partition())? {
//!             match offset.get("position") {
//!                 Some(Value::Int64(p)) => self.position = *p,
//!                 other => return Err(ConnectError::new(format!(
//!                     "the stored position {other:?} of {} is not a number; reset the connector's offsets",
//!                     self.file
//!                 ))),
//!             }
//!         }
//!         Ok(())
//!     }
//!     fn poll(&mut self) -> Result<Vec<SourceRecord>> {
//!         self.position += 1;
//!         let offset = OffsetMap::from([("position".to_owned(), Value::Int64(self.position))]);
//!         Ok(vec![SourceRecord::new("lines", Data::string("a line"))
//!             .with_source(self.partition(), offset)])
//!     }
//!     fn stop(&mut self) -> Result<()> { Ok(()) }
//! }
//! ```
//!
//! Context calls cross to the worker and return its answer; they may fail like any call
//! (a [`ConnectError`], retriable when the worker says asking again may help; a panic on the
//! worker's side also arrives as an error). They may be made from any thread, including a
//! connector's own watcher thread and from inside `start` or `put`: the worker never waits
//! on the instance that calls it, so this cannot deadlock. A context outliving its instance
//! (kept by a thread not stopped in `stop`) answers errors; stop such threads in `stop`.
//!
//! # Sinks that read records in place
//!
//! The worker lends a sink task its batch for the duration of the call, as views of its
//! own records. [`SinkTask::put_batch`] gets them as a [`SinkBatch`]; its default builds
//! owned [`SinkRecord`]s (a topic `String`, the key and value copied, headers decoded) and
//! calls `put`. A sink that only reads its records overrides `put_batch` and reads each
//! as a [`SinkRecordRef`]: the topic, and a key or value that is raw bytes or text, are
//! borrowed from the worker ([`DataRef::Bytes`], [`DataRef::Str`]); structured data is
//! decoded (each schema once per batch) and headers only when asked for. Write the sink
//! once, in `put_batch`, and make `put` call it, so tests through either path test the same
//! code:
//!
//! ```
//! use tributary_plugin_sdk::*;
//!
//! #[derive(Default)]
//! pub struct LengthTask { bytes: usize }
//!
//! impl SinkTask for LengthTask {
//!     fn start(&mut self, _config: RawConfig) -> Result<()> { Ok(()) }
//!     fn put(&mut self, records: Vec<SinkRecord>) -> Result<()> {
//!         self.put_batch(&SinkBatch::of(&records))
//!     }
//!     fn put_batch(&mut self, batch: &SinkBatch<'_>) -> Result<()> {
//!         for record in batch {
//!             let record = record?;
//!             self.bytes += match &record.value {
//!                 DataRef::Bytes(b, _) => b.len(),
//!                 DataRef::Str(s, _) => s.len(),
//!                 _ => 0,
//!             };
//!         }
//!         Ok(())
//!     }
//!     fn stop(&mut self) -> Result<()> { Ok(()) }
//! }
//!
//! let records = vec![SinkRecord::new("t", 0, 7, Data::string("hello"))];
//! let mut task = LengthTask::default();
//! task.put(records).unwrap();
//! assert_eq!(task.bytes, 5);
//! ```
//!
//! Nothing read from a batch outlives the call; copy what must be kept
//! ([`SinkRecordRef::to_owned`], [`SinkBatch::to_owned`]). Report an errant record with
//! [`SinkTaskContext::report_ref`].
//!
//! # The boundary
//!
//! Only the C ABI of `tributary-plugin-abi` crosses between the worker and the plugin: a
//! function table, integers and byte buffers in a fixed encoding. So a plugin built with
//! another Rust toolchain than the worker's loads and runs (each side has its own copy of
//! the standard library and allocator, and memory is freed on the side that allocated it);
//! what must match is the ABI version, which the worker checks before calling anything
//! else. A plugin built against an SDK with another ABI version is refused at load with an
//! error naming both versions: rebuild it against the worker's SDK.
//!
//! A panic in a connector or task is caught at the boundary (the release profile must keep
//! `panic = "unwind"`): that task fails with the panic message, the worker and other tasks
//! go on. A plugin is never unloaded; a changed library file is loaded alongside as a new
//! version.
//!
//! # Memory
//!
//! With the default feature `mimalloc` the SDK makes mimalloc the plugin library's global
//! allocator (its own copy, private to the library; the worker has another): records are
//! allocated and freed by the thousand per batch, which glibc's malloc handles several times
//! slower. A plugin with its own `#[global_allocator]` turns the feature off
//! (`default-features = false`); two global allocators in one library do not compile.
//!
//! # Async code
//!
//! The worker's async runtime cannot be used from a plugin (each shared library has its own
//! copy of tokio). A plugin that needs async owns a small runtime, created once and shared
//! by its tasks, e.g. a `tokio::runtime::Builder::new_multi_thread().worker_threads(1)`
//! runtime in a `OnceLock`, and `block_on`s it from `poll`/`put`: the worker calls these on
//! a blocking thread, so blocking there is expected. Size it for a 2-core machine: ten
//! loaded plugins must not mean ten large thread pools.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod batch;
mod config;
mod connector;
mod context;
mod error;
#[doc(hidden)]
pub mod export;
mod source_batch;
pub mod testing;
mod transform;

pub use batch::{SinkBatch, SinkBatchIter};
pub use config::{
    Config, ConfigDef, ConfigKey, ConfigKeyInfo, ConfigType, ConfigValue, ConfigValueInfo, HIDDEN,
    Importance, Password, RawConfig, Validator, Width, parse_value,
};
pub use connector::{SinkConnector, SinkTask, SourceConnector, SourceTask};
pub use context::{ConnectorContext, SinkTaskContext, SourceTaskContext};
pub use error::{ConnectError, Result};
pub use source_batch::{LentBatch, NewRecord, SourceBatch};
pub use transform::{ConnectRecord, Predicate, Transformation};
pub use tributary_plugin_abi as abi;
pub use tributary_plugin_abi::data::{
    Data, DataError, Field, Schema, SchemaType, StructBuilder, Value, logical,
};
pub use tributary_plugin_abi::record::{
    Header, OffsetMap, Offsets, RecordMetadata, SinkRecord, SourceRecord, TimestampType,
    TopicPartition,
};
pub use tributary_plugin_abi::view::{DataRef, Plain, SinkRecordRef, SourceRecordRef};

/// This SDK's version, reported to the worker next to the ABI version.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Export a plugin's connectors, transformations and predicates: emits the library's two
/// C symbols (`tributary_plugin_abi_version`, `tributary_plugin_entry`) and checks at
/// compile time that every type implements its trait and that no two exports share a
/// `NAME`.
///
/// ```text
/// tributary_plugin_sdk::export_plugin! {
///     sources: [FileSource, OtherSource],
///     sinks: [FileSink],
///     transforms: [AddSuffix],
///     predicates: [IsLarge],
/// }
/// ```
///
/// Sections may come in any order; a trailing comma is fine. Use it once per library.
/// Exports without their own `VERSION` report the plugin crate's version.
///
/// ```
/// # use tributary_plugin_sdk::*;
/// # #[derive(Default)] pub struct Tag;
/// # impl Transformation for Tag {
/// #     const NAME: &'static str = "example.Tag";
/// #     fn config_def() -> ConfigDef { ConfigDef::new() }
/// #     fn configure(&mut self, _: Config) -> Result<()> { Ok(()) }
/// #     fn apply(&mut self, r: ConnectRecord) -> Result<Option<ConnectRecord>> { Ok(Some(r)) }
/// # }
/// # #[derive(Default)] pub struct Any;
/// # impl Predicate for Any {
/// #     const NAME: &'static str = "example.Any";
/// #     fn config_def() -> ConfigDef { ConfigDef::new() }
/// #     fn configure(&mut self, _: Config) -> Result<()> { Ok(()) }
/// #     fn test(&mut self, _: &ConnectRecord) -> bool { true }
/// # }
/// export_plugin! {
///     predicates: [Any],
///     transforms: [Tag,],
/// }
/// ```
///
/// A section name it does not know is a compile error naming the four it knows:
///
/// ```compile_fail
/// # use tributary_plugin_sdk::*;
/// # #[derive(Default)] pub struct Tag;
/// export_plugin! { transformations: [Tag] }
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($($section:ident : [$($t:ty),* $(,)?]),+ $(,)?) => {
        $crate::__export_plugin! { @sort [] [] [] []; $($section [$($t),*])+ }
    };
}

/// The sorting and emitting behind [`export_plugin!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin {
    (@sort [$($so:ty,)*] [$($si:ty,)*] [$($tr:ty,)*] [$($pr:ty,)*]; sources [$($t:ty),*] $($rest:tt)*) => {
        $crate::__export_plugin! { @sort [$($so,)* $($t,)*] [$($si,)*] [$($tr,)*] [$($pr,)*]; $($rest)* }
    };
    (@sort [$($so:ty,)*] [$($si:ty,)*] [$($tr:ty,)*] [$($pr:ty,)*]; sinks [$($t:ty),*] $($rest:tt)*) => {
        $crate::__export_plugin! { @sort [$($so,)*] [$($si,)* $($t,)*] [$($tr,)*] [$($pr,)*]; $($rest)* }
    };
    (@sort [$($so:ty,)*] [$($si:ty,)*] [$($tr:ty,)*] [$($pr:ty,)*]; transforms [$($t:ty),*] $($rest:tt)*) => {
        $crate::__export_plugin! { @sort [$($so,)*] [$($si,)*] [$($tr,)* $($t,)*] [$($pr,)*]; $($rest)* }
    };
    (@sort [$($so:ty,)*] [$($si:ty,)*] [$($tr:ty,)*] [$($pr:ty,)*]; predicates [$($t:ty),*] $($rest:tt)*) => {
        $crate::__export_plugin! { @sort [$($so,)*] [$($si,)*] [$($tr,)*] [$($pr,)* $($t,)*]; $($rest)* }
    };
    (@sort [$($so:ty,)*] [$($si:ty,)*] [$($tr:ty,)*] [$($pr:ty,)*]; $other:ident [$($t:ty),*] $($rest:tt)*) => {
        compile_error!(concat!(
            "export_plugin!: unknown section `", stringify!($other),
            "`; expected sources, sinks, transforms or predicates"
        ));
    };
    (@sort [$($source:ty,)*] [$($sink:ty,)*] [$($transform:ty,)*] [$($predicate:ty,)*];) => {
        const _: () = {
            const fn is_source<T: $crate::SourceConnector>() {}
            const fn is_sink<T: $crate::SinkConnector>() {}
            const fn is_transform<T: $crate::Transformation>() {}
            const fn is_predicate<T: $crate::Predicate>() {}
            $( is_source::<$source>(); )*
            $( is_sink::<$sink>(); )*
            $( is_transform::<$transform>(); )*
            $( is_predicate::<$predicate>(); )*
            const NAMES: &[&str] = &[
                $( <$source as $crate::SourceConnector>::NAME, )*
                $( <$sink as $crate::SinkConnector>::NAME, )*
                $( <$transform as $crate::Transformation>::NAME, )*
                $( <$predicate as $crate::Predicate>::NAME, )*
            ];
            assert!(
                !NAMES.is_empty(),
                "export_plugin! needs at least one connector, transformation or predicate"
            );
            assert!(
                $crate::export::names_unique(NAMES),
                "export_plugin!: two exports share a NAME"
            );
        };

        const _: () = {
            fn registry() -> $crate::export::Registry {
                let mut registry = $crate::export::Registry::new(env!("CARGO_PKG_VERSION"));
                $( registry.source::<$source>(); )*
                $( registry.sink::<$sink>(); )*
                $( registry.transform::<$transform>(); )*
                $( registry.predicate::<$predicate>(); )*
                registry
            }

            /// The ABI version this library speaks; the worker calls it before anything else.
            #[unsafe(no_mangle)]
            extern "C" fn tributary_plugin_abi_version() -> u32 {
                $crate::abi::ABI_VERSION
            }

            /// Hands the worker this library's function table.
            ///
            /// # Safety
            ///
            /// `out` must be writable and `err` a writer valid for the call.
            #[unsafe(no_mangle)]
            unsafe extern "C" fn tributary_plugin_entry(
                out: *mut *const $crate::abi::PluginApi,
                err: $crate::abi::Writer,
            ) -> $crate::abi::Status {
                // SAFETY: forwarded from the caller.
                unsafe { $crate::export::entry(registry, out, err) }
            }

            const _: $crate::abi::AbiVersionFn = tributary_plugin_abi_version;
            const _: $crate::abi::EntryFn = tributary_plugin_entry;
        };
    };
}
