//! The plugin side of the C ABI: what [`crate::export_plugin!`] wires up.
//!
//! The macro emits only the two exported symbols; everything else is here, compiled into
//! each plugin library (the SDK is linked statically into every `cdylib`, so each plugin has
//! its own copy of [`STATE`] and of the panic hook).
//!
//! Every `extern "C"` function body runs inside [`guard`]: a `catch_unwind` that turns a panic
//! into [`Status::PANICKED`] and its message. Nothing unwinds across the boundary.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Once, OnceLock};

use tributary_plugin_abi::config::{ConfigValueInfo, encode_config_keys, encode_config_values};
use tributary_plugin_abi::ffi::{
    Buf, ConnectorDescriptor, ConnectorHostRef, ConnectorKind, Handle, PluginApi, RecordKind,
    SinkTaskHostRef, SourceTaskHostRef, Status, Str, TransformDescriptor, TransformKind,
    TransformedBatch, Writer,
};
use tributary_plugin_abi::record::{
    self, Offsets, RecordMetadata, SinkRecord, SourceRecord, TopicPartition,
};
use tributary_plugin_abi::view::{self, SinkBatchBuilder, SinkRecordView, SourceBatchView};
use tributary_plugin_abi::wire::{self, DecodeError, StringMap};

use crate::batch::SinkBatch;
use crate::config::RawConfig;
use crate::connector::{SinkConnector, SinkTask, SourceConnector, SourceTask};
use crate::context::{ConnectorContext, SinkTaskContext, SourceTaskContext};
use crate::error::ConnectError;
use crate::source_batch::SourceBatch;
use crate::transform::{ConnectRecord, Predicate, Transformation};

/// A failed call as the boundary reports it: a status and a message.
#[derive(Debug)]
pub(crate) struct CallError {
    pub status: Status,
    pub message: String,
}

impl CallError {
    pub fn invalid(message: impl Into<String>) -> CallError {
        CallError {
            status: Status::INVALID_INPUT,
            message: message.into(),
        }
    }
}

impl From<ConnectError> for CallError {
    fn from(e: ConnectError) -> CallError {
        CallError {
            status: if e.is_retriable() {
                Status::RETRIABLE
            } else {
                Status::FAILED
            },
            message: e.message().to_owned(),
        }
    }
}

impl From<DecodeError> for CallError {
    fn from(e: DecodeError) -> CallError {
        CallError::invalid(format!("the worker sent {e}"))
    }
}

type CallResult<T = ()> = Result<T, CallError>;

// ---------------------------------------------------------------------------------------
// Type erasure: one set of extern functions serves every connector type.

pub(crate) trait ErasedConnector: Send {
    fn validate(&mut self, raw: &RawConfig) -> Vec<ConfigValueInfo>;
    fn initialize(&mut self, context: ConnectorContext);
    fn start(&mut self, raw: &RawConfig) -> CallResult;
    fn task_configs(&mut self, max_tasks: usize) -> CallResult<Vec<RawConfig>>;
    fn stop(&mut self) -> CallResult;
}

struct Source<C>(C);
struct Sink<C>(C);

impl<C: SourceConnector> ErasedConnector for Source<C> {
    fn validate(&mut self, raw: &RawConfig) -> Vec<ConfigValueInfo> {
        self.0.validate(raw)
    }
    fn initialize(&mut self, context: ConnectorContext) {
        self.0.initialize(context)
    }
    fn start(&mut self, raw: &RawConfig) -> CallResult {
        let config = C::config_def().parse(raw)?;
        Ok(self.0.start(config)?)
    }
    fn task_configs(&mut self, max_tasks: usize) -> CallResult<Vec<RawConfig>> {
        let configs = self.0.task_configs(max_tasks)?;
        check_task_count(configs.len(), max_tasks)?;
        Ok(configs)
    }
    fn stop(&mut self) -> CallResult {
        Ok(self.0.stop()?)
    }
}

impl<C: SinkConnector> ErasedConnector for Sink<C> {
    fn validate(&mut self, raw: &RawConfig) -> Vec<ConfigValueInfo> {
        self.0.validate(raw)
    }
    fn initialize(&mut self, context: ConnectorContext) {
        self.0.initialize(context)
    }
    fn start(&mut self, raw: &RawConfig) -> CallResult {
        let config = C::config_def().parse(raw)?;
        Ok(self.0.start(config)?)
    }
    fn task_configs(&mut self, max_tasks: usize) -> CallResult<Vec<RawConfig>> {
        let configs = self.0.task_configs(max_tasks)?;
        check_task_count(configs.len(), max_tasks)?;
        Ok(configs)
    }
    fn stop(&mut self) -> CallResult {
        Ok(self.0.stop()?)
    }
}

fn check_task_count(n: usize, max_tasks: usize) -> CallResult {
    if n > max_tasks {
        Err(CallError {
            status: Status::FAILED,
            message: format!("the connector returned {n} task configs for tasks.max={max_tasks}"),
        })
    } else {
        Ok(())
    }
}

pub(crate) trait ErasedSourceTask: Send {
    fn initialize(&mut self, context: SourceTaskContext);
    fn start(&mut self, raw: RawConfig) -> CallResult;
    fn poll_batch(&mut self, batch: &mut SourceBatch) -> CallResult;
    fn commit(&mut self) -> CallResult;
    fn commit_record(&mut self, record: &SourceRecord, meta: Option<&RecordMetadata>)
    -> CallResult;
    fn stop(&mut self) -> CallResult;
}

impl<T: SourceTask> ErasedSourceTask for T {
    fn initialize(&mut self, context: SourceTaskContext) {
        SourceTask::initialize(self, context)
    }
    fn start(&mut self, raw: RawConfig) -> CallResult {
        Ok(SourceTask::start(self, raw)?)
    }
    fn poll_batch(&mut self, batch: &mut SourceBatch) -> CallResult {
        Ok(SourceTask::poll_batch(self, batch)?)
    }
    fn commit(&mut self) -> CallResult {
        Ok(SourceTask::commit(self)?)
    }
    fn commit_record(
        &mut self,
        record: &SourceRecord,
        meta: Option<&RecordMetadata>,
    ) -> CallResult {
        Ok(SourceTask::commit_record(self, record, meta)?)
    }
    fn stop(&mut self) -> CallResult {
        Ok(SourceTask::stop(self)?)
    }
}

pub(crate) trait ErasedSinkTask: Send {
    fn initialize(&mut self, context: SinkTaskContext);
    fn start(&mut self, raw: RawConfig) -> CallResult;
    fn open(&mut self, partitions: &[TopicPartition]) -> CallResult;
    fn deliver(&mut self, batch: &SinkBatch<'_>) -> CallResult;
    fn pre_commit(&mut self, offsets: Offsets) -> CallResult<Offsets>;
    fn close(&mut self, partitions: &[TopicPartition]) -> CallResult;
    fn stop(&mut self) -> CallResult;
}

impl<T: SinkTask> ErasedSinkTask for T {
    fn initialize(&mut self, context: SinkTaskContext) {
        SinkTask::initialize(self, context)
    }
    fn start(&mut self, raw: RawConfig) -> CallResult {
        Ok(SinkTask::start(self, raw)?)
    }
    fn open(&mut self, partitions: &[TopicPartition]) -> CallResult {
        Ok(SinkTask::open(self, partitions)?)
    }
    fn deliver(&mut self, batch: &SinkBatch<'_>) -> CallResult {
        Ok(SinkTask::put_batch(self, batch)?)
    }
    fn pre_commit(&mut self, offsets: Offsets) -> CallResult<Offsets> {
        Ok(SinkTask::pre_commit(self, offsets)?)
    }
    fn close(&mut self, partitions: &[TopicPartition]) -> CallResult {
        Ok(SinkTask::close(self, partitions)?)
    }
    fn stop(&mut self) -> CallResult {
        Ok(SinkTask::stop(self)?)
    }
}

pub(crate) fn new_source_connector<C: SourceConnector>() -> Box<dyn ErasedConnector> {
    Box::new(Source(C::default()))
}

pub(crate) fn new_sink_connector<C: SinkConnector>() -> Box<dyn ErasedConnector> {
    Box::new(Sink(C::default()))
}

pub(crate) fn new_source_task<C: SourceConnector>() -> Box<dyn ErasedSourceTask> {
    Box::new(C::Task::default())
}

pub(crate) fn new_sink_task<C: SinkConnector>() -> Box<dyn ErasedSinkTask> {
    Box::new(C::Task::default())
}

/// A transformation or a predicate behind one handle type.
pub(crate) trait ErasedTransform: Send {
    /// Validate and, when valid, configure: the validation result either way.
    fn configure(&mut self, raw: &RawConfig) -> CallResult<Vec<ConfigValueInfo>>;
    fn apply(&mut self, records: Vec<ConnectRecord>) -> CallResult<Vec<(u32, ConnectRecord)>>;
    fn test(&mut self, records: &[ConnectRecord]) -> CallResult<Vec<bool>>;
    fn close(&mut self) -> CallResult;
}

struct AsTransform<T>(T);
struct AsPredicate<T>(T);

fn configure_with(
    def: crate::config::ConfigDef,
    raw: &RawConfig,
    configure: impl FnOnce(crate::config::Config) -> crate::Result<()>,
) -> CallResult<Vec<ConfigValueInfo>> {
    let values = def.validate(raw);
    if values.iter().any(|v| !v.errors.is_empty()) {
        return Ok(values);
    }
    configure(def.parse(raw)?)?;
    Ok(values)
}

impl<T: Transformation> ErasedTransform for AsTransform<T> {
    fn configure(&mut self, raw: &RawConfig) -> CallResult<Vec<ConfigValueInfo>> {
        configure_with(T::config_def(), raw, |c| self.0.configure(c))
    }
    fn apply(&mut self, records: Vec<ConnectRecord>) -> CallResult<Vec<(u32, ConnectRecord)>> {
        let mut out = Vec::with_capacity(records.len());
        for (i, r) in records.into_iter().enumerate() {
            if let Some(r) = self.0.apply(r)? {
                out.push((i as u32, r));
            }
        }
        Ok(out)
    }
    fn test(&mut self, _records: &[ConnectRecord]) -> CallResult<Vec<bool>> {
        Err(CallError::invalid(format!(
            "{} is a transformation, not a predicate",
            T::NAME
        )))
    }
    fn close(&mut self) -> CallResult {
        Ok(self.0.close()?)
    }
}

impl<T: Predicate> ErasedTransform for AsPredicate<T> {
    fn configure(&mut self, raw: &RawConfig) -> CallResult<Vec<ConfigValueInfo>> {
        configure_with(T::config_def(), raw, |c| self.0.configure(c))
    }
    fn apply(&mut self, _records: Vec<ConnectRecord>) -> CallResult<Vec<(u32, ConnectRecord)>> {
        Err(CallError::invalid(format!(
            "{} is a predicate, not a transformation",
            T::NAME
        )))
    }
    fn test(&mut self, records: &[ConnectRecord]) -> CallResult<Vec<bool>> {
        Ok(records.iter().map(|r| self.0.test(r)).collect())
    }
    fn close(&mut self) -> CallResult {
        Ok(self.0.close()?)
    }
}

pub(crate) fn new_transform<T: Transformation>() -> Box<dyn ErasedTransform> {
    Box::new(AsTransform(T::default()))
}

pub(crate) fn new_predicate<T: Predicate>() -> Box<dyn ErasedTransform> {
    Box::new(AsPredicate(T::default()))
}

// ---------------------------------------------------------------------------------------
// Panics.

thread_local! {
    /// Whether this thread is inside a boundary call ([`catch`]): a panic there becomes the
    /// call's error, so the hook records it instead of printing it.
    static IN_CALL: Cell<bool> = const { Cell::new(false) };
    /// Where the last panic inside a boundary call happened, and its backtrace when
    /// `RUST_BACKTRACE` asks for one.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Chain a hook that, inside boundary calls, records each panic's location (and backtrace)
/// for the error message instead of printing it; elsewhere (a plugin's own threads) the
/// previous hook prints as usual.
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_CALL.try_with(Cell::get).unwrap_or(false) {
                return previous(info);
            }
            let mut at = match info.location() {
                Some(loc) => format!("{}:{}:{}", loc.file(), loc.line(), loc.column()),
                None => "an unknown location".to_owned(),
            };
            let bt = std::backtrace::Backtrace::capture();
            if bt.status() == std::backtrace::BacktraceStatus::Captured {
                at = format!("{at}\nstack backtrace:\n{bt}");
            }
            let _ = LAST_PANIC.try_with(|l| *l.borrow_mut() = Some(at));
        }));
    });
}

/// The message of a caught panic: `panicked at FILE:LINE:COL: MESSAGE`, then the backtrace
/// if one was captured.
pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    };
    // A payload whose Drop panics again must not escape either: leak it instead.
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
    match LAST_PANIC
        .try_with(|l| l.borrow_mut().take())
        .ok()
        .flatten()
    {
        Some(at) => match at.split_once('\n') {
            Some((loc, trace)) => format!("panicked at {loc}: {text}\n{trace}"),
            None => format!("panicked at {at}: {text}"),
        },
        None => format!("panicked: {text}"),
    }
}

/// Run `f` with panics caught: the result as a call's outcome.
pub(crate) fn catch<T>(f: impl FnOnce() -> CallResult<T>) -> CallResult<T> {
    let outer = IN_CALL.with(|c| c.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    IN_CALL.with(|c| c.set(outer));
    match result {
        Ok(r) => r,
        Err(payload) => Err(CallError {
            status: Status::PANICKED,
            message: panic_message(payload),
        }),
    }
}

/// The body of every exported function: run `f`, report its error or panic through `err`.
fn guard(err: Writer, f: impl FnOnce() -> CallResult) -> Status {
    match catch(f) {
        Ok(()) => Status::OK,
        Err(e) => {
            // SAFETY: `err` is the writer the host passed for this call.
            unsafe { err.write(e.message.as_bytes()) };
            e.status
        }
    }
}

// ---------------------------------------------------------------------------------------
// The registry of connectors and the function table.

/// One exported connector.
#[derive(Debug)]
pub(crate) struct Entry {
    pub name: String,
    pub kind: ConnectorKind,
    pub version: String,
    pub aliases: Vec<String>,
    pub config_def: Vec<u8>,
    pub new_connector: fn() -> Box<dyn ErasedConnector>,
    pub new_source_task: Option<fn() -> Box<dyn ErasedSourceTask>>,
    pub new_sink_task: Option<fn() -> Box<dyn ErasedSinkTask>>,
}

/// One exported transformation or predicate.
#[derive(Debug)]
pub(crate) struct TransformEntry {
    pub name: String,
    pub kind: TransformKind,
    pub version: String,
    pub aliases: Vec<String>,
    pub config_def: Vec<u8>,
    pub new: fn() -> Box<dyn ErasedTransform>,
}

/// The connectors, transformations and predicates a plugin exports; built by the code
/// [`crate::export_plugin!`] emits.
#[derive(Debug)]
pub struct Registry {
    plugin_version: &'static str,
    entries: Vec<Entry>,
    transforms: Vec<TransformEntry>,
}

fn config_def_bytes(name: &str, def: &crate::config::ConfigDef) -> Vec<u8> {
    if let Err(e) = def.check_defaults() {
        panic!("connector {name}: {e}");
    }
    let mut buf = Vec::new();
    encode_config_keys(&def.key_infos(), &mut buf);
    buf
}

impl Registry {
    /// An empty registry; `plugin_version` is the plugin crate's version (the default
    /// version of its connectors).
    pub fn new(plugin_version: &'static str) -> Registry {
        Registry {
            plugin_version,
            entries: Vec::new(),
            transforms: Vec::new(),
        }
    }

    pub fn transform<T: Transformation>(&mut self) {
        self.transforms.push(TransformEntry {
            name: T::NAME.to_owned(),
            kind: TransformKind::TRANSFORMATION,
            version: T::VERSION.unwrap_or(self.plugin_version).to_owned(),
            aliases: T::ALIASES.iter().map(|a| (*a).to_owned()).collect(),
            config_def: config_def_bytes(T::NAME, &T::config_def()),
            new: new_transform::<T>,
        });
    }

    pub fn predicate<T: Predicate>(&mut self) {
        self.transforms.push(TransformEntry {
            name: T::NAME.to_owned(),
            kind: TransformKind::PREDICATE,
            version: T::VERSION.unwrap_or(self.plugin_version).to_owned(),
            aliases: T::ALIASES.iter().map(|a| (*a).to_owned()).collect(),
            config_def: config_def_bytes(T::NAME, &T::config_def()),
            new: new_predicate::<T>,
        });
    }

    pub fn source<C: SourceConnector>(&mut self) {
        self.entries.push(Entry {
            name: C::NAME.to_owned(),
            kind: ConnectorKind::SOURCE,
            version: C::VERSION.unwrap_or(self.plugin_version).to_owned(),
            aliases: C::ALIASES.iter().map(|a| (*a).to_owned()).collect(),
            config_def: config_def_bytes(C::NAME, &C::config_def()),
            new_connector: new_source_connector::<C>,
            new_source_task: Some(new_source_task::<C>),
            new_sink_task: None,
        });
    }

    pub fn sink<C: SinkConnector>(&mut self) {
        self.entries.push(Entry {
            name: C::NAME.to_owned(),
            kind: ConnectorKind::SINK,
            version: C::VERSION.unwrap_or(self.plugin_version).to_owned(),
            aliases: C::ALIASES.iter().map(|a| (*a).to_owned()).collect(),
            config_def: config_def_bytes(C::NAME, &C::config_def()),
            new_connector: new_sink_connector::<C>,
            new_source_task: None,
            new_sink_task: Some(new_sink_task::<C>),
        });
    }
}

/// The plugin's state once the host called the entry point. Everything the descriptors
/// point to is owned here, in heap allocations that never move or change after
/// construction.
struct PluginState {
    entries: Vec<Entry>,
    transforms: Vec<TransformEntry>,
    _aliases: Vec<Vec<Str>>,
    _descriptors: Vec<ConnectorDescriptor>,
    _transform_aliases: Vec<Vec<Str>>,
    _transform_descriptors: Vec<TransformDescriptor>,
    api: PluginApi,
}

// SAFETY: the raw pointers in `api` and the descriptors point into `entries` and
// `_aliases`/`_descriptors`, which are never mutated after construction; reading them from
// any thread is sound.
unsafe impl Send for PluginState {}
// SAFETY: as above: immutable after construction.
unsafe impl Sync for PluginState {}

static STATE: OnceLock<PluginState> = OnceLock::new();

fn str_of(s: &str) -> Str {
    Buf::from_slice(s.as_bytes())
}

impl PluginState {
    fn new(registry: Registry) -> PluginState {
        let entries = registry.entries;
        let transforms = registry.transforms;
        let transform_aliases: Vec<Vec<Str>> = transforms
            .iter()
            .map(|e| e.aliases.iter().map(|a| str_of(a)).collect())
            .collect();
        let transform_descriptors: Vec<TransformDescriptor> = transforms
            .iter()
            .zip(&transform_aliases)
            .map(|(e, a)| TransformDescriptor {
                name: str_of(&e.name),
                kind: e.kind,
                version: str_of(&e.version),
                aliases: a.as_ptr(),
                aliases_len: a.len(),
                config_def: Buf::from_slice(&e.config_def),
            })
            .collect();
        let aliases: Vec<Vec<Str>> = entries
            .iter()
            .map(|e| e.aliases.iter().map(|a| str_of(a)).collect())
            .collect();
        let descriptors: Vec<ConnectorDescriptor> = entries
            .iter()
            .zip(&aliases)
            .map(|(e, a)| ConnectorDescriptor {
                name: str_of(&e.name),
                kind: e.kind,
                version: str_of(&e.version),
                aliases: a.as_ptr(),
                aliases_len: a.len(),
                config_def: Buf::from_slice(&e.config_def),
            })
            .collect();
        let api = PluginApi {
            abi_version: tributary_plugin_abi::ABI_VERSION,
            sdk_version: str_of(crate::SDK_VERSION),
            connectors: descriptors.as_ptr(),
            connectors_len: descriptors.len(),
            connector_new,
            connector_initialize,
            connector_validate,
            connector_start,
            connector_task_configs,
            connector_stop,
            connector_free,
            source_task_new,
            source_task_initialize,
            source_task_start,
            source_task_poll,
            source_task_commit,
            source_task_commit_records,
            source_task_stop,
            source_task_free,
            sink_task_new,
            sink_task_initialize,
            sink_task_start,
            sink_task_open,
            sink_task_put,
            sink_task_pre_commit,
            sink_task_close,
            sink_task_stop,
            sink_task_free,
            transforms: transform_descriptors.as_ptr(),
            transforms_len: transform_descriptors.len(),
            transform_new,
            transform_configure,
            transform_apply,
            transform_apply_chain,
            predicate_test,
            transform_close,
            transform_free,
        };
        PluginState {
            entries,
            transforms,
            _aliases: aliases,
            _descriptors: descriptors,
            _transform_aliases: transform_aliases,
            _transform_descriptors: transform_descriptors,
            api,
        }
    }
}

/// What `tributary_plugin_entry` does: build the registry once, hand out the table.
///
/// # Safety
///
/// `out` must be writable; `err` must be the host's writer for this call.
pub unsafe fn entry(build: fn() -> Registry, out: *mut *const PluginApi, err: Writer) -> Status {
    guard(err, || {
        install_panic_hook();
        if out.is_null() {
            return Err(CallError::invalid("null output pointer"));
        }
        let state = STATE.get_or_init(|| PluginState::new(build()));
        // SAFETY: checked non-null; the host guarantees it is writable.
        unsafe { *out = &state.api };
        Ok(())
    })
}

fn entry_at(index: u32) -> CallResult<&'static Entry> {
    let state = STATE
        .get()
        .ok_or_else(|| CallError::invalid("the plugin entry point was not called"))?;
    state
        .entries
        .get(index as usize)
        .ok_or_else(|| CallError::invalid(format!("no connector at index {index}")))
}

/// Box a trait object behind a thin pointer the host can hold.
fn into_handle<T: ?Sized>(b: Box<T>) -> Handle {
    Box::into_raw(Box::new(b)).cast::<c_void>()
}

/// # Safety
///
/// `h` must be null or a handle made by [`into_handle`] with the same `T`, not freed, and
/// not in use by another call.
unsafe fn handle_mut<'a, T: ?Sized>(h: Handle) -> CallResult<&'a mut Box<T>> {
    if h.is_null() {
        return Err(CallError::invalid("null handle"));
    }
    // SAFETY: guaranteed by the caller.
    Ok(unsafe { &mut *h.cast::<Box<T>>() })
}

/// # Safety
///
/// As for [`handle_mut`]; afterwards the handle is gone.
unsafe fn free_handle<T: ?Sized>(h: Handle) {
    if h.is_null() {
        return;
    }
    // SAFETY: guaranteed by the caller.
    let b = unsafe { Box::from_raw(h.cast::<Box<T>>()) };
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(b))) {
        // A panic in Drop: the instance is leaked; report nothing (the host is tearing
        // down), but do not unwind.
        let _ = panic_message(payload);
    }
}

/// # Safety
///
/// `out` must be writable or null.
unsafe fn write_handle(out: *mut Handle, h: Handle) -> CallResult {
    if out.is_null() {
        return Err(CallError::invalid("null output pointer"));
    }
    // SAFETY: checked non-null; writable per the caller.
    unsafe { *out = h };
    Ok(())
}

/// # Safety
///
/// `buf` must be valid for the call.
unsafe fn decode_config(buf: Buf) -> CallResult<StringMap> {
    // SAFETY: guaranteed by the caller.
    Ok(wire::decode_string_map(unsafe { buf.as_slice() })?)
}

/// A source task and its last polled batch, lent to the host until the next poll (and
/// handed to `commit_record` with where the host wrote each record; reused across polls).
pub(crate) struct SourceSlot {
    pub task: Box<dyn ErasedSourceTask>,
    pub batch: SourceBatch,
    /// The task does not implement `commit_record` (its default said so): the host's
    /// reports are not handed on.
    pub no_commit_record: bool,
}

thread_local! {
    /// Set by the default `SourceTask::commit_record`.
    static DEFAULT_COMMIT_RECORD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Called by the default `SourceTask::commit_record`: the task does not implement it.
pub(crate) fn default_commit_record_called() {
    DEFAULT_COMMIT_RECORD.with(|c| c.set(true));
}

// SAFETY (all functions below): they are the `PluginApi` table; the host upholds the
// contract documented on `PluginApi` (valid handles of the right kind, buffers valid for the
// call, writers from the host). Each body runs in `guard`.

unsafe extern "C" fn connector_new(index: u32, out: *mut Handle, err: Writer) -> Status {
    guard(err, || {
        let e = entry_at(index)?;
        let c = (e.new_connector)();
        // SAFETY: per the table's contract.
        unsafe { write_handle(out, into_handle(c)) }
    })
}

/// A context whose reference cannot be given back (no function table). Each `*_initialize`
/// below wraps the host's reference before anything else, so that every other path (a null
/// handle, a panic in `initialize`) releases it.
fn no_table() -> CallError {
    CallError::invalid("the worker passed a context without a function table")
}

unsafe extern "C" fn connector_initialize(
    h: Handle,
    host: ConnectorHostRef,
    err: Writer,
) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract, the reference is ours from this call on.
        let context = unsafe { ConnectorContext::from_raw(host) }.ok_or_else(no_table)?;
        // SAFETY: per the table's contract.
        let c = unsafe { handle_mut::<dyn ErasedConnector>(h) }?;
        c.initialize(context);
        Ok(())
    })
}

unsafe extern "C" fn connector_validate(
    h: Handle,
    config: Buf,
    out: Writer,
    err: Writer,
) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract.
        let c = unsafe { handle_mut::<dyn ErasedConnector>(h) }?;
        // SAFETY: per the table's contract.
        let raw = unsafe { decode_config(config) }?;
        let values = c.validate(&raw);
        let mut buf = Vec::new();
        encode_config_values(&values, &mut buf);
        // SAFETY: the host's writer for this call.
        unsafe { out.write(&buf) };
        Ok(())
    })
}

unsafe extern "C" fn connector_start(h: Handle, config: Buf, err: Writer) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract.
        let c = unsafe { handle_mut::<dyn ErasedConnector>(h) }?;
        // SAFETY: per the table's contract.
        let raw = unsafe { decode_config(config) }?;
        c.start(&raw)
    })
}

unsafe extern "C" fn connector_task_configs(
    h: Handle,
    max_tasks: u32,
    out: Writer,
    err: Writer,
) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract.
        let c = unsafe { handle_mut::<dyn ErasedConnector>(h) }?;
        let configs = c.task_configs(max_tasks as usize)?;
        let mut buf = Vec::new();
        wire::encode_string_maps(&configs, &mut buf);
        // SAFETY: the host's writer for this call.
        unsafe { out.write(&buf) };
        Ok(())
    })
}

unsafe extern "C" fn connector_stop(h: Handle, err: Writer) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract.
        unsafe { handle_mut::<dyn ErasedConnector>(h) }?.stop()
    })
}

unsafe extern "C" fn connector_free(h: Handle) {
    // SAFETY: per the table's contract.
    unsafe { free_handle::<dyn ErasedConnector>(h) }
}

unsafe extern "C" fn source_task_new(index: u32, out: *mut Handle, err: Writer) -> Status {
    guard(err, || {
        let e = entry_at(index)?;
        let new = e
            .new_source_task
            .ok_or_else(|| CallError::invalid(format!("{} is not a source connector", e.name)))?;
        let slot = Box::new(SourceSlot {
            task: new(),
            batch: SourceBatch::new(),
            no_commit_record: false,
        });
        // SAFETY: per the table's contract.
        unsafe { write_handle(out, Box::into_raw(slot).cast()) }
    })
}

/// # Safety
///
/// As for [`handle_mut`], with a source task handle.
unsafe fn source_slot<'a>(h: Handle) -> CallResult<&'a mut SourceSlot> {
    if h.is_null() {
        return Err(CallError::invalid("null handle"));
    }
    // SAFETY: guaranteed by the caller.
    Ok(unsafe { &mut *h.cast::<SourceSlot>() })
}

unsafe extern "C" fn source_task_initialize(
    h: Handle,
    host: SourceTaskHostRef,
    err: Writer,
) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract, the reference is ours from this call on.
        let context = unsafe { SourceTaskContext::from_raw(host) }.ok_or_else(no_table)?;
        // SAFETY: per the table's contract.
        let slot = unsafe { source_slot(h) }?;
        slot.task.initialize(context);
        Ok(())
    })
}

unsafe extern "C" fn source_task_start(h: Handle, config: Buf, err: Writer) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract.
        let slot = unsafe { source_slot(h) }?;
        // SAFETY: per the table's contract.
        let raw = unsafe { decode_config(config) }?;
        slot.task.start(raw)
    })
}

unsafe extern "C" fn source_task_poll(h: Handle, out: *mut SourceBatchView, err: Writer) -> Status {
    guard(err, || {
        if out.is_null() {
            return Err(CallError::invalid("null batch view pointer"));
        }
        // SAFETY: per the table's contract.
        let slot = unsafe { source_slot(h) }?;
        // The previous batch is no longer lent once the host polls again.
        slot.batch.clear();
        slot.task.poll_batch(&mut slot.batch)?;
        let view = slot.batch.finish();
        // SAFETY: non-null, and writable per the table's contract.
        unsafe { out.write(view) };
        Ok(())
    })
}

unsafe extern "C" fn source_task_commit(h: Handle, err: Writer) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract.
        unsafe { source_slot(h) }?.task.commit()
    })
}

unsafe extern "C" fn source_task_commit_records(h: Handle, metadata: Buf, err: Writer) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract.
        let slot = unsafe { source_slot(h) }?;
        if slot.no_commit_record {
            return Ok(());
        }
        let SourceSlot {
            task,
            batch,
            no_commit_record,
        } = slot;
        // SAFETY: per the table's contract.
        let metadata = unsafe { metadata.as_slice() };
        // The records written into the batch are read back from the views lent to the host.
        let lent = batch.lent();
        let mut cache = view::ReadCache::default();
        view::for_each_record_metadata(metadata, batch.len(), |i, meta| {
            if *no_commit_record {
                return Ok(());
            }
            DEFAULT_COMMIT_RECORD.with(|c| c.set(false));
            let result = match (batch.owned(i), lent.get(i)) {
                (Some(record), _) => task.commit_record(record, meta),
                (None, Some(v)) => {
                    // SAFETY: the batch's own views, finished and unchanged until the next poll.
                    let record = unsafe { view::read_source_record(v, &mut cache) }
                        .and_then(|r| r.to_owned())?;
                    task.commit_record(&record, meta)
                }
                (None, None) => Err(CallError::invalid("commit_records: no such record")),
            };
            if DEFAULT_COMMIT_RECORD.with(|c| c.replace(false)) {
                *no_commit_record = true;
            }
            result
        })
    })
}

unsafe extern "C" fn source_task_stop(h: Handle, err: Writer) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract.
        let slot = unsafe { source_slot(h) }?;
        slot.batch.clear();
        slot.task.stop()
    })
}

unsafe extern "C" fn source_task_free(h: Handle) {
    if h.is_null() {
        return;
    }
    // SAFETY: per the table's contract; the handle is a `Box<SourceSlot>`.
    let slot = unsafe { Box::from_raw(h.cast::<SourceSlot>()) };
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(slot))) {
        let _ = panic_message(payload);
    }
}

unsafe extern "C" fn sink_task_new(index: u32, out: *mut Handle, err: Writer) -> Status {
    guard(err, || {
        let e = entry_at(index)?;
        let new = e
            .new_sink_task
            .ok_or_else(|| CallError::invalid(format!("{} is not a sink connector", e.name)))?;
        // SAFETY: per the table's contract.
        unsafe { write_handle(out, into_handle(new())) }
    })
}

unsafe extern "C" fn sink_task_initialize(h: Handle, host: SinkTaskHostRef, err: Writer) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract, the reference is ours from this call on.
        let context = unsafe { SinkTaskContext::from_raw(host) }.ok_or_else(no_table)?;
        // SAFETY: per the table's contract.
        let t = unsafe { handle_mut::<dyn ErasedSinkTask>(h) }?;
        t.initialize(context);
        Ok(())
    })
}

unsafe extern "C" fn sink_task_start(h: Handle, config: Buf, err: Writer) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract.
        let t = unsafe { handle_mut::<dyn ErasedSinkTask>(h) }?;
        // SAFETY: per the table's contract.
        let raw = unsafe { decode_config(config) }?;
        t.start(raw)
    })
}

unsafe extern "C" fn sink_task_open(h: Handle, partitions: Buf, err: Writer) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract.
        let t = unsafe { handle_mut::<dyn ErasedSinkTask>(h) }?;
        // SAFETY: per the table's contract.
        let parts = record::decode_partitions(unsafe { partitions.as_slice() })?;
        t.open(&parts)
    })
}

unsafe extern "C" fn sink_task_put(
    h: Handle,
    records: *const SinkRecordView,
    len: usize,
    err: Writer,
) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract.
        let t = unsafe { handle_mut::<dyn ErasedSinkTask>(h) }?;
        // SAFETY: per the table's contract, the views and what they point at are lent
        // for this call.
        let views = unsafe { view::sink_records(records, len) };
        // SAFETY: as above; the batch does not outlive the call.
        let batch = unsafe { SinkBatch::from_views(views) };
        t.deliver(&batch)
    })
}

unsafe extern "C" fn sink_task_pre_commit(
    h: Handle,
    offsets: Buf,
    out: Writer,
    err: Writer,
) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract.
        let t = unsafe { handle_mut::<dyn ErasedSinkTask>(h) }?;
        // SAFETY: per the table's contract.
        let offsets = record::decode_offsets(unsafe { offsets.as_slice() })?;
        let committable = t.pre_commit(offsets)?;
        let mut buf = Vec::new();
        record::encode_offsets(&committable, &mut buf);
        // SAFETY: the host's writer for this call.
        unsafe { out.write(&buf) };
        Ok(())
    })
}

unsafe extern "C" fn sink_task_close(h: Handle, partitions: Buf, err: Writer) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract.
        let t = unsafe { handle_mut::<dyn ErasedSinkTask>(h) }?;
        // SAFETY: per the table's contract.
        let parts = record::decode_partitions(unsafe { partitions.as_slice() })?;
        t.close(&parts)
    })
}

unsafe extern "C" fn sink_task_stop(h: Handle, err: Writer) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract.
        unsafe { handle_mut::<dyn ErasedSinkTask>(h) }?.stop()
    })
}

unsafe extern "C" fn sink_task_free(h: Handle) {
    // SAFETY: per the table's contract.
    unsafe { free_handle::<dyn ErasedSinkTask>(h) }
}

// ---- transformations and predicates ----------------------------------------------------

/// A transform or predicate and its last transformed batch, lent to the host until the
/// next call on the handle, with the views that describe it (reused across calls).
pub(crate) struct TransformSlot {
    pub transform: Box<dyn ErasedTransform>,
    pub out: Vec<SinkRecord>,
    pub origins: Vec<u32>,
    pub views: SinkBatchBuilder,
}

/// # Safety
///
/// As for [`handle_mut`], with a transform handle.
unsafe fn transform_slot<'a>(h: Handle) -> CallResult<&'a mut TransformSlot> {
    if h.is_null() {
        return Err(CallError::invalid("null handle"));
    }
    // SAFETY: guaranteed by the caller.
    Ok(unsafe { &mut *h.cast::<TransformSlot>() })
}

/// Read a lent batch into records of `kind`.
///
/// # Safety
///
/// `records` must point to `len` views valid for the call.
pub(crate) unsafe fn read_batch(
    kind: RecordKind,
    records: *const SinkRecordView,
    len: usize,
) -> CallResult<Vec<ConnectRecord>> {
    let source = match kind {
        RecordKind::SOURCE => true,
        RecordKind::SINK => false,
        other => {
            return Err(CallError::invalid(format!(
                "unknown record kind {}",
                other.0
            )));
        }
    };
    // SAFETY: guaranteed by the caller.
    let views = unsafe { view::sink_records(records, len) };
    let mut out = Vec::with_capacity(views.len());
    let mut cache = view::ReadCache::default();
    for v in views {
        // SAFETY: as above.
        let r = unsafe { view::read_sink_record(v, &mut cache) }?;
        out.push(if source {
            ConnectRecord::Source(SourceRecord {
                source_partition: record::OffsetMap::new(),
                source_offset: record::OffsetMap::new(),
                topic: r.topic,
                partition: (r.partition >= 0).then_some(r.partition),
                key: r.key,
                value: r.value,
                timestamp: r.timestamp,
                headers: r.headers,
            })
        } else {
            ConnectRecord::Sink(r)
        });
    }
    Ok(out)
}

/// A record as the view of a transformed batch describes it (a source record with no
/// partition as -1, its timestamp as create time; source positions stay with the host).
pub(crate) fn as_sink_record(r: ConnectRecord) -> SinkRecord {
    match r {
        ConnectRecord::Sink(r) => r,
        ConnectRecord::Source(r) => SinkRecord {
            topic: r.topic,
            partition: r.partition.unwrap_or(-1),
            offset: -1,
            key: r.key,
            value: r.value,
            timestamp_type: match r.timestamp {
                Some(_) => record::TimestampType::CreateTime,
                None => record::TimestampType::NoTimestamp,
            },
            timestamp: r.timestamp,
            headers: r.headers,
        },
    }
}

fn transform_entry_at(index: u32) -> CallResult<&'static TransformEntry> {
    let state = STATE
        .get()
        .ok_or_else(|| CallError::invalid("the plugin entry point was not called"))?;
    state
        .transforms
        .get(index as usize)
        .ok_or_else(|| CallError::invalid(format!("no transform at index {index}")))
}

unsafe extern "C" fn transform_new(index: u32, out: *mut Handle, err: Writer) -> Status {
    guard(err, || {
        let e = transform_entry_at(index)?;
        let slot = Box::new(TransformSlot {
            transform: (e.new)(),
            out: Vec::new(),
            origins: Vec::new(),
            views: SinkBatchBuilder::default(),
        });
        // SAFETY: per the table's contract.
        unsafe { write_handle(out, Box::into_raw(slot).cast()) }
    })
}

unsafe extern "C" fn transform_configure(
    h: Handle,
    config: Buf,
    out: Writer,
    err: Writer,
) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract.
        let slot = unsafe { transform_slot(h) }?;
        // SAFETY: per the table's contract.
        let raw = unsafe { decode_config(config) }?;
        let values = slot.transform.configure(&raw)?;
        let mut buf = Vec::new();
        encode_config_values(&values, &mut buf);
        // SAFETY: the host's writer for this call.
        unsafe { out.write(&buf) };
        if values.iter().any(|v| !v.errors.is_empty()) {
            return Err(CallError {
                status: Status::FAILED,
                message: "the config is not valid; see the errors of each key".into(),
            });
        }
        Ok(())
    })
}

unsafe extern "C" fn transform_apply(
    h: Handle,
    kind: RecordKind,
    records: *const SinkRecordView,
    len: usize,
    out: *mut TransformedBatch,
    err: Writer,
) -> Status {
    guard(err, || {
        if out.is_null() {
            return Err(CallError::invalid("null batch pointer"));
        }
        // SAFETY: per the table's contract.
        let slot = unsafe { transform_slot(h) }?;
        // The previous answer is no longer lent once the host calls again.
        slot.out.clear();
        slot.origins.clear();
        // SAFETY: per the table's contract, the views are lent for this call.
        let batch = unsafe { read_batch(kind, records, len) }?;
        for (i, r) in slot.transform.apply(batch)? {
            slot.origins.push(i);
            slot.out.push(as_sink_record(r));
        }
        slot.views.clear();
        for r in &slot.out {
            slot.views.push_record(r);
        }
        let views = slot.views.finish();
        // SAFETY: non-null, and writable per the table's contract.
        unsafe {
            out.write(TransformedBatch {
                records: views.as_ptr(),
                origins: slot.origins.as_ptr(),
                len: views.len(),
            })
        };
        Ok(())
    })
}

/// Lend `slot`'s answer (`records` with their input indexes) through `out`.
///
/// # Safety
///
/// `out` must be non-null and writable.
unsafe fn lend_answer(
    slot: &mut TransformSlot,
    answer: Vec<(u32, ConnectRecord)>,
    out: *mut TransformedBatch,
) {
    slot.out.clear();
    slot.origins.clear();
    for (i, r) in answer {
        slot.origins.push(i);
        slot.out.push(as_sink_record(r));
    }
    slot.views.clear();
    for r in &slot.out {
        slot.views.push_record(r);
    }
    let views = slot.views.finish();
    // SAFETY: guaranteed by the caller.
    unsafe {
        out.write(TransformedBatch {
            records: views.as_ptr(),
            origins: slot.origins.as_ptr(),
            len: views.len(),
        })
    };
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn transform_apply_chain(
    hs: *const Handle,
    n: usize,
    kind: RecordKind,
    records: *const SinkRecordView,
    len: usize,
    out: *mut TransformedBatch,
    failed: *mut usize,
    err: Writer,
) -> Status {
    guard(err, || {
        if out.is_null() || failed.is_null() || (hs.is_null() && n > 0) {
            return Err(CallError::invalid("null pointer"));
        }
        let handles = if n == 0 {
            &[][..]
        } else {
            // SAFETY: per the table's contract, `n` handles.
            unsafe { std::slice::from_raw_parts(hs, n) }
        };
        for (i, h) in handles.iter().enumerate() {
            if handles[..i].contains(h) {
                return Err(CallError::invalid("the same transform twice in one chain"));
            }
        }
        // SAFETY: per the table's contract, the views are lent for this call.
        let mut batch = unsafe { read_batch(kind, records, len) }?;
        // Where each record of `batch` came from in the input.
        let mut origins: Vec<u32> = (0..batch.len() as u32).collect();
        for (i, &h) in handles.iter().enumerate() {
            // SAFETY: `failed` is non-null and writable per the table's contract.
            unsafe { failed.write(i) };
            // SAFETY: per the table's contract; distinct handles, so no aliasing.
            let slot = unsafe { transform_slot(h) }?;
            slot.out.clear();
            slot.origins.clear();
            let answer = slot.transform.apply(batch)?;
            let mut next = Vec::with_capacity(answer.len());
            let mut next_origins = Vec::with_capacity(answer.len());
            for (j, r) in answer {
                let origin = origins.get(j as usize).copied().ok_or_else(|| {
                    CallError::invalid("a transform answered a record it was not given")
                })?;
                next_origins.push(origin);
                next.push(r);
            }
            batch = next;
            origins = next_origins;
        }
        let Some(&last) = handles.last() else {
            // SAFETY: checked non-null.
            unsafe { out.write(TransformedBatch::EMPTY) };
            return Ok(());
        };
        // SAFETY: as above.
        let slot = unsafe { transform_slot(last) }?;
        // SAFETY: checked non-null; writable per the table's contract.
        unsafe { lend_answer(slot, origins.into_iter().zip(batch).collect(), out) };
        Ok(())
    })
}

unsafe extern "C" fn predicate_test(
    h: Handle,
    kind: RecordKind,
    records: *const SinkRecordView,
    len: usize,
    out: Writer,
    err: Writer,
) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract.
        let slot = unsafe { transform_slot(h) }?;
        // SAFETY: per the table's contract, the views are lent for this call.
        let batch = unsafe { read_batch(kind, records, len) }?;
        let answers: Vec<u8> = slot
            .transform
            .test(&batch)?
            .into_iter()
            .map(u8::from)
            .collect();
        // SAFETY: the host's writer for this call.
        unsafe { out.write(&answers) };
        Ok(())
    })
}

unsafe extern "C" fn transform_close(h: Handle, err: Writer) -> Status {
    guard(err, || {
        // SAFETY: per the table's contract.
        let slot = unsafe { transform_slot(h) }?;
        slot.out = Vec::new();
        slot.origins = Vec::new();
        slot.transform.close()
    })
}

unsafe extern "C" fn transform_free(h: Handle) {
    if h.is_null() {
        return;
    }
    // SAFETY: per the table's contract; the handle is a `Box<TransformSlot>`.
    let slot = unsafe { Box::from_raw(h.cast::<TransformSlot>()) };
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(slot))) {
        let _ = panic_message(payload);
    }
}

/// Whether all names differ; evaluated at compile time by [`crate::export_plugin!`].
pub const fn names_unique(names: &[&str]) -> bool {
    let mut i = 0;
    while i < names.len() {
        let mut j = i + 1;
        while j < names.len() {
            if str_eq(names[i], names[j]) {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unique_compares_whole_names() {
        assert!(names_unique(&["a.B", "a.C", "a.BC"]));
        assert!(!names_unique(&["x", "y", "x"]));
        assert!(names_unique(&[]));
    }

    #[test]
    fn a_panic_becomes_a_status_and_message() {
        install_panic_hook();
        let mut msg = Vec::new();
        let status = guard(Writer::for_vec(&mut msg), || panic!("boom {}", 42));
        assert_eq!(status, Status::PANICKED);
        let msg = String::from_utf8(msg).unwrap();
        // The first line is the panic; a backtrace follows if RUST_BACKTRACE asks for one.
        let first = msg.lines().next().unwrap();
        assert!(first.starts_with("panicked at "), "{msg}");
        assert!(first.ends_with(": boom 42"), "{msg}");
        assert!(first.contains("export.rs"), "{msg}");
    }

    use std::sync::atomic::{AtomicUsize, Ordering};

    static RELEASED: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn count_release(_ctx: *mut c_void) {
        RELEASED.fetch_add(1, Ordering::SeqCst);
    }

    unsafe extern "C" fn no_reconfiguration(_ctx: *mut c_void, _err: Writer) -> Status {
        Status::OK
    }

    unsafe extern "C" fn no_raise(_ctx: *mut c_void, _message: Buf, _err: Writer) -> Status {
        Status::OK
    }

    static COUNTING: tributary_plugin_abi::ffi::ConnectorHostApi =
        tributary_plugin_abi::ffi::ConnectorHostApi {
            release: count_release,
            request_task_reconfiguration: no_reconfiguration,
            raise_error: no_raise,
        };

    #[test]
    fn initialize_gives_the_reference_back_on_every_path() {
        install_panic_hook();
        let host = ConnectorHostRef {
            ctx: std::ptr::null_mut(),
            api: &COUNTING,
        };
        let before = RELEASED.load(Ordering::SeqCst);
        let mut msg = Vec::new();
        // A null handle: refused, and the reference is released all the same.
        // SAFETY: a null handle is checked; the writer is ours.
        let status =
            unsafe { connector_initialize(std::ptr::null_mut(), host, Writer::for_vec(&mut msg)) };
        assert_eq!(status, Status::INVALID_INPUT);
        assert_eq!(msg, b"null handle");
        assert_eq!(RELEASED.load(Ordering::SeqCst), before + 1);

        // A real instance keeps it until it is freed.
        let mut h: Handle = std::ptr::null_mut();
        let c: Box<dyn ErasedConnector> = Box::new(Source(Probe::default()));
        // SAFETY: `h` is writable.
        unsafe { write_handle(&mut h, into_handle(c)) }.unwrap();
        // SAFETY: a live connector handle.
        let status = unsafe { connector_initialize(h, host, Writer::for_vec(&mut msg)) };
        assert_eq!(status, Status::OK);
        assert_eq!(RELEASED.load(Ordering::SeqCst), before + 1);
        // SAFETY: freed once.
        unsafe { connector_free(h) };
        assert_eq!(RELEASED.load(Ordering::SeqCst), before + 2);

        // A context without a table cannot be released: refused with a message.
        let no_table = ConnectorHostRef {
            ctx: std::ptr::null_mut(),
            api: std::ptr::null(),
        };
        msg.clear();
        // SAFETY: as above.
        let status = unsafe {
            connector_initialize(std::ptr::null_mut(), no_table, Writer::for_vec(&mut msg))
        };
        assert_eq!(status, Status::INVALID_INPUT);
        assert!(String::from_utf8_lossy(&msg).contains("without a function table"));
    }

    /// A connector that keeps its context.
    #[derive(Default)]
    struct Probe(Option<ConnectorContext>);

    impl SourceConnector for Probe {
        const NAME: &'static str = "test.Probe";
        type Task = ProbeTask;
        fn config_def() -> crate::ConfigDef {
            crate::ConfigDef::new()
        }
        fn initialize(&mut self, context: ConnectorContext) {
            self.0 = Some(context);
        }
        fn start(&mut self, _config: crate::Config) -> crate::Result<()> {
            Ok(())
        }
        fn task_configs(&mut self, _max_tasks: usize) -> crate::Result<Vec<RawConfig>> {
            Ok(Vec::new())
        }
        fn stop(&mut self) -> crate::Result<()> {
            Ok(())
        }
    }

    #[derive(Default)]
    struct ProbeTask;

    impl SourceTask for ProbeTask {
        fn start(&mut self, _config: RawConfig) -> crate::Result<()> {
            Ok(())
        }
        fn poll(&mut self) -> crate::Result<Vec<SourceRecord>> {
            Ok(Vec::new())
        }
        fn stop(&mut self) -> crate::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn errors_keep_their_retriability() {
        let mut msg = Vec::new();
        let status = guard(Writer::for_vec(&mut msg), || {
            Err(ConnectError::retriable("try later").into())
        });
        assert_eq!(status, Status::RETRIABLE);
        assert_eq!(msg, b"try later");
    }
}
