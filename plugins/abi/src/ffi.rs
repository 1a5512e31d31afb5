//! The C ABI proper: symbols, the function table, status codes and the two ways bytes cross.
//!
//! # Loading protocol
//!
//! 1. The host resolves [`SYMBOL_ABI_VERSION`] and calls it. It calls nothing else in a
//!    library whose answer is not [`ABI_VERSION`]: the rest of this file may have changed.
//! 2. The host resolves [`SYMBOL_ENTRY`] and calls it once; the plugin answers a pointer to
//!    its [`PluginApi`], which stays valid (and unchanged) as long as the library is loaded.
//!    Libraries are never unloaded.
//!
//! # Memory
//!
//! Memory is freed on the side that allocated it:
//!
//! - Host → plugin: a [`Buf`] borrows host memory for the duration of one call.
//! - Plugin → host: the plugin calls the host's [`Writer`] with a borrowed buffer; the host
//!   copies what it needs before returning. Error messages come back the same way.
//! - Records cross as views ([`crate::view`]): a sink batch is lent by the host for the
//!   `sink_task_put` call; a polled source batch is lent by the plugin until the next
//!   `source_task_poll`, `source_task_stop` or `source_task_free` of that task.
//! - A transform batch is lent by the host as sink record views for the `transform_apply` or
//!   `predicate_test` call; the transformed batch ([`TransformedBatch`]) is lent by the
//!   plugin until the next call on that transform handle or its free.
//! - Instances (connectors, tasks, transforms and predicates) are opaque [`Handle`]s owned
//!   by the plugin; the host hands each back to the matching `*_free` function exactly once.
//!
//! # Transformations and predicates (ABI 4)
//!
//! Besides connectors, a plugin describes its transformations and predicates
//! ([`TransformDescriptor`]s); the host makes instances (`transform_new`), configures them
//! with a string map (`transform_configure`, answering the validation of every key), and
//! hands them whole batches: `transform_apply` answers the records kept, each with the index
//! of the record it came from, so that what does not cross (a source record's source
//! position) stays with the host; `predicate_test` answers one byte per record.
//!
//! # Calls
//!
//! Every function returns a [`Status`]. A plugin never lets a panic unwind out of one of
//! these functions: it catches it and returns [`Status::PANICKED`] with the panic message.
//! One handle is used by one thread at a time; different handles may be used concurrently.
//! Calls may block (a poll waiting for data, a flush waiting for a remote system): the host
//! makes them from a blocking thread, never from an async worker.
//!
//! # Errant records (ABI 5)
//!
//! A sink task may report a record it could not write (the host's `report` callback,
//! Kafka Connect's `ErrantRecordReporter`) instead of failing the whole batch; the host
//! applies `errors.tolerance` and the dead letter queue to it as to a record a converter
//! or transform failed on.
//!
//! # Host callbacks
//!
//! The other direction: Kafka Connect's contexts (`ConnectorContext`, `SourceTaskContext`,
//! `SinkTaskContext`). Before the first `*_start` of an instance the host calls its
//! `*_initialize` once with a host reference ([`ConnectorHostRef`], [`SourceTaskHostRef`],
//! [`SinkTaskHostRef`]): an opaque `ctx` pointer and a table of host functions.
//!
//! - Ownership: the `*_initialize` call hands the plugin one reference to `ctx`, whatever the
//!   call's outcome. The plugin calls the table's `release(ctx)` exactly once when it no
//!   longer needs it; until then `ctx` and the table stay valid. Once the instance is freed
//!   the host detaches the reference from the instance: later callbacks fail with a message
//!   instead of reaching a connector or task that no longer exists.
//! - Memory, as above but mirrored: the plugin lends its inputs as [`Buf`]s for the callback
//!   and passes its own [`Writer`]s for the answer and the error message; the host copies
//!   into them and frees nothing of the plugin's.
//! - Threads: callbacks may be made from any plugin thread, concurrently, and from inside a
//!   host→plugin call on the same thread (a task's `start` reading its offsets). The host's
//!   implementation therefore never waits for the instance that calls it (it holds no lock
//!   around its calls into that instance that a callback would need).
//! - Failures: every callback answers a [`Status`] with the same meanings as plugin calls
//!   ([`Status::INVALID_INPUT`] when the plugin's bytes do not decode). The host catches
//!   panics in its implementation and answers [`Status::PANICKED`]; nothing unwinds into the
//!   plugin.

use std::ffi::c_void;

/// The version of this ABI: the symbols, [`PluginApi`]'s layout and the [`crate::wire`]
/// encodings. Any change to them bumps it; the host refuses libraries that report another.
pub const ABI_VERSION: u32 = 6;

/// `extern "C" fn() -> u32`, answering the plugin's [`ABI_VERSION`]. The first and, on a
/// mismatch, the only call the host makes into a library.
pub const SYMBOL_ABI_VERSION: &str = "tributary_plugin_abi_version";

/// [`EntryFn`]: hands over the plugin's [`PluginApi`].
pub const SYMBOL_ENTRY: &str = "tributary_plugin_entry";

/// The type of [`SYMBOL_ABI_VERSION`].
pub type AbiVersionFn = unsafe extern "C" fn() -> u32;

/// The type of [`SYMBOL_ENTRY`]: on success writes a pointer to the plugin's function table
/// to `out` (valid while the library is loaded, which is forever).
pub type EntryFn = unsafe extern "C" fn(out: *mut *const PluginApi, err: Writer) -> Status;

/// An instance owned by the plugin (a connector or a task), opaque to the host.
pub type Handle = *mut c_void;

/// The outcome of a call. A plain integer, not a Rust enum: a value the host does not know
/// (from a newer plugin) must not be undefined behaviour.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub i32);

impl Status {
    /// The call succeeded; outputs were written.
    pub const OK: Status = Status(0);
    /// The connector reported an error that retrying will not fix; a message was written.
    pub const FAILED: Status = Status(1);
    /// The connector reported an error that retrying may fix (Kafka Connect's
    /// `RetriableException`); a message was written.
    pub const RETRIABLE: Status = Status(2);
    /// The connector panicked; the panic message was written. The instance must not be used
    /// again except to free it.
    pub const PANICKED: Status = Status(3);
    /// The host passed something the plugin cannot use (a null handle, an index out of
    /// range, bytes that do not decode); a message was written.
    pub const INVALID_INPUT: Status = Status(4);
}

/// Bytes borrowed from the caller for the duration of one call. `ptr` may be null when
/// `len` is 0.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Buf {
    pub ptr: *const u8,
    pub len: usize,
}

impl Buf {
    /// Borrow a slice for a call.
    pub fn from_slice(bytes: &[u8]) -> Buf {
        Buf {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    /// The borrowed bytes.
    ///
    /// # Safety
    ///
    /// `ptr` must point to `len` readable bytes that stay valid and unmodified for `'a`
    /// (or `len` must be 0).
    pub unsafe fn as_slice<'a>(self) -> &'a [u8] {
        if self.len == 0 || self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: guaranteed by the caller.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

/// UTF-8 text owned by the plugin and valid while the library is loaded (descriptor fields).
pub type Str = Buf;

/// A callback that receives bytes, provided by the side that will own them: the host's for
/// the answers of plugin calls, the plugin's for the answers of host callbacks. The other
/// side calls `write` with a buffer borrowed for that call only; the owner copies what it
/// needs. `write` must not unwind (implementations are `extern "C"`, so a panic in one
/// aborts rather than unwinding across). Calling it more than once appends.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Writer {
    pub ctx: *mut c_void,
    pub write: unsafe extern "C" fn(ctx: *mut c_void, ptr: *const u8, len: usize),
}

impl Writer {
    /// Hand `bytes` to the writer's owner.
    ///
    /// # Safety
    ///
    /// The writer must come from the other side for the current call.
    pub unsafe fn write(&self, bytes: &[u8]) {
        // SAFETY: the owner's callback and context are valid for the current call.
        unsafe { (self.write)(self.ctx, bytes.as_ptr(), bytes.len()) }
    }

    /// A writer that appends to `vec`: what the owning side of every [`Writer`] passes.
    pub fn for_vec(vec: &mut Vec<u8>) -> Writer {
        Writer {
            ctx: (vec as *mut Vec<u8>).cast(),
            write: append_to_vec,
        }
    }
}

/// The callback behind [`Writer::for_vec`].
///
/// # Safety
///
/// `ctx` must be a `*mut Vec<u8>` not otherwise borrowed during the call, and
/// `ptr`/`len` a readable buffer.
unsafe extern "C" fn append_to_vec(ctx: *mut c_void, ptr: *const u8, len: usize) {
    // SAFETY: guaranteed by the caller (the other side passes back the writer it was given).
    let vec = unsafe { &mut *ctx.cast::<Vec<u8>>() };
    // SAFETY: as above.
    vec.extend_from_slice(unsafe { Buf { ptr, len }.as_slice() });
}

/// The host's functions for a connector's context (Kafka Connect's `ConnectorContext`).
/// `ctx` is the one of the [`ConnectorHostRef`] this table came with. Static in the host:
/// valid while any reference is held.
#[repr(C)]
#[derive(Debug)]
pub struct ConnectorHostApi {
    /// Give back the reference handed over by `connector_initialize`; called exactly once.
    pub release: unsafe extern "C" fn(ctx: *mut c_void),
    /// The connector's view of the world changed: the host will ask for task configs again.
    pub request_task_reconfiguration: unsafe extern "C" fn(ctx: *mut c_void, err: Writer) -> Status,
    /// The connector failed (`message` is UTF-8 text): the host fails it.
    pub raise_error: unsafe extern "C" fn(ctx: *mut c_void, message: Buf, err: Writer) -> Status,
}

/// A reference to a connector's context, handed to `connector_initialize`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ConnectorHostRef {
    /// Opaque to the plugin; passed back to every function of `api`.
    pub ctx: *mut c_void,
    /// The host's functions, valid while the reference is held.
    pub api: *const ConnectorHostApi,
}

/// The host's functions for a source task's context (Kafka Connect's `SourceTaskContext`).
#[repr(C)]
#[derive(Debug)]
pub struct SourceTaskHostApi {
    /// Give back the reference handed over by `source_task_initialize`; called exactly once.
    pub release: unsafe extern "C" fn(ctx: *mut c_void),
    /// The last committed source offsets (Kafka Connect's `OffsetStorageReader`):
    /// `partitions` is encoded by [`crate::record::encode_offset_maps`]; `out` gets one
    /// optional offset per partition, in order, encoded by
    /// [`crate::record::encode_opt_offset_maps`].
    pub offsets:
        unsafe extern "C" fn(ctx: *mut c_void, partitions: Buf, out: Writer, err: Writer) -> Status,
}

/// A reference to a source task's context, handed to `source_task_initialize`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SourceTaskHostRef {
    /// Opaque to the plugin; passed back to every function of `api`.
    pub ctx: *mut c_void,
    /// The host's functions, valid while the reference is held.
    pub api: *const SourceTaskHostApi,
}

/// The host's functions for a sink task's context (Kafka Connect's `SinkTaskContext`).
/// Partitions are encoded by [`crate::record::encode_partitions`], offsets by
/// [`crate::record::encode_offsets`].
#[repr(C)]
#[derive(Debug)]
pub struct SinkTaskHostApi {
    /// Give back the reference handed over by `sink_task_initialize`; called exactly once.
    pub release: unsafe extern "C" fn(ctx: *mut c_void),
    /// Stop fetching from these assigned partitions until resumed.
    pub pause: unsafe extern "C" fn(ctx: *mut c_void, partitions: Buf, err: Writer) -> Status,
    /// Fetch again from these paused partitions.
    pub resume: unsafe extern "C" fn(ctx: *mut c_void, partitions: Buf, err: Writer) -> Status,
    /// Consume each partition from the given offset next (rewind or skip).
    pub offset: unsafe extern "C" fn(ctx: *mut c_void, offsets: Buf, err: Writer) -> Status,
    /// Commit offsets as soon as possible instead of waiting for the next interval.
    pub request_commit: unsafe extern "C" fn(ctx: *mut c_void, err: Writer) -> Status,
    /// The partitions currently assigned to the task; `out` gets them encoded.
    pub assignment: unsafe extern "C" fn(ctx: *mut c_void, out: Writer, err: Writer) -> Status,
    /// (ABI 5) Kafka Connect's `ErrantRecordReporter`: a record the task could not write
    /// (`record`: its topic, partition and offset, encoded as one entry of
    /// [`crate::record::encode_offsets`]; `message`: why, UTF-8). The host handles it as
    /// `errors.tolerance` says (skip, dead letter queue, or fail the task) once the current
    /// call into the task returns.
    pub report:
        unsafe extern "C" fn(ctx: *mut c_void, record: Buf, message: Buf, err: Writer) -> Status,
}

/// A reference to a sink task's context, handed to `sink_task_initialize`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SinkTaskHostRef {
    /// Opaque to the plugin; passed back to every function of `api`.
    pub ctx: *mut c_void,
    /// The host's functions, valid while the reference is held.
    pub api: *const SinkTaskHostApi,
}

/// What kind of connector a descriptor describes.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectorKind(pub u32);

impl ConnectorKind {
    pub const SOURCE: ConnectorKind = ConnectorKind(1);
    pub const SINK: ConnectorKind = ConnectorKind(2);
}

/// One connector a plugin exports. Every pointer is owned by the plugin and valid while the
/// library is loaded.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ConnectorDescriptor {
    /// The full name (Kafka Connect's class name), e.g. `io.tributary.connect.noop.NoopSourceConnector`.
    pub name: Str,
    pub kind: ConnectorKind,
    /// The connector's version, e.g. `0.1.0`.
    pub version: Str,
    /// Extra names besides the ones the host derives from `name` (simple and pruned names).
    pub aliases: *const Str,
    pub aliases_len: usize,
    /// The config definition, encoded by [`crate::config::encode_config_keys`].
    pub config_def: Buf,
}

/// Whether a transform descriptor is a transformation or a predicate.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransformKind(pub u32);

impl TransformKind {
    /// Kafka Connect's `Transformation`: a batch in, the transformed batch out.
    pub const TRANSFORMATION: TransformKind = TransformKind(1);
    /// Kafka Connect's `Predicate`: a yes or no per record.
    pub const PREDICATE: TransformKind = TransformKind(2);
}

/// Which records a transform batch holds: the records of a source task (before
/// conversion; a view's `partition` of -1 means none chosen, `offset` is -1) or of a sink
/// task (after conversion).
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordKind(pub u32);

impl RecordKind {
    pub const SOURCE: RecordKind = RecordKind(1);
    pub const SINK: RecordKind = RecordKind(2);
}

/// One transformation or predicate a plugin exports (as [`ConnectorDescriptor`]).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TransformDescriptor {
    /// The full name users put in `transforms.NAME.type` or `predicates.NAME.type`.
    pub name: Str,
    pub kind: TransformKind,
    pub version: Str,
    /// Extra names besides the simple name the host derives from `name`.
    pub aliases: *const Str,
    pub aliases_len: usize,
    /// The config definition, encoded by [`crate::config::encode_config_keys`].
    pub config_def: Buf,
}

/// A transformed batch, lent by the plugin until the next call on the same transform
/// handle (or its free): `len` records, and for each the index in the input batch of the
/// record it was made from (ascending; a missing index is a dropped record).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TransformedBatch {
    pub records: *const crate::view::SinkRecordView,
    pub origins: *const u32,
    pub len: usize,
}

impl TransformedBatch {
    /// No records.
    pub const EMPTY: TransformedBatch = TransformedBatch {
        records: std::ptr::null(),
        origins: std::ptr::null(),
        len: 0,
    };
}

/// The plugin's function table. Its layout is fixed for an [`ABI_VERSION`].
///
/// Function arguments: `index` selects a connector in `connectors`; `h` is a handle created
/// by the matching `*_new`; `out` receives a call's result bytes; `err` receives the message
/// of any status other than [`Status::OK`]. Encodings are those of [`crate::wire`] and
/// [`crate::record`].
#[repr(C)]
#[derive(Debug)]
pub struct PluginApi {
    /// [`ABI_VERSION`] again, checked after the entry call as a second guard.
    pub abi_version: u32,
    /// The version of `tributary-plugin-sdk` the plugin was built with.
    pub sdk_version: Str,
    pub connectors: *const ConnectorDescriptor,
    pub connectors_len: usize,

    /// Create an instance of connector `index` (not started); writes its handle to `out`.
    pub connector_new: unsafe extern "C" fn(index: u32, out: *mut Handle, err: Writer) -> Status,
    /// Hand the connector its context, once, before the first start (see "Host callbacks"
    /// in the module docs: the plugin owns one reference to `host` from this call on).
    pub connector_initialize:
        unsafe extern "C" fn(h: Handle, host: ConnectorHostRef, err: Writer) -> Status,
    /// Validate a config (a string map) without starting; `out` gets the encoded
    /// [`crate::config::ConfigValueInfo`] list.
    pub connector_validate:
        unsafe extern "C" fn(h: Handle, config: Buf, out: Writer, err: Writer) -> Status,
    /// Start with a config (a string map).
    pub connector_start: unsafe extern "C" fn(h: Handle, config: Buf, err: Writer) -> Status,
    /// Split the work into at most `max_tasks` task configs; `out` gets a list of string maps.
    pub connector_task_configs:
        unsafe extern "C" fn(h: Handle, max_tasks: u32, out: Writer, err: Writer) -> Status,
    pub connector_stop: unsafe extern "C" fn(h: Handle, err: Writer) -> Status,
    /// Drop the instance. Never fails from the host's point of view (a panic in `Drop` is
    /// caught and the instance leaked).
    pub connector_free: unsafe extern "C" fn(h: Handle),

    /// Create a task of source connector `index`.
    pub source_task_new: unsafe extern "C" fn(index: u32, out: *mut Handle, err: Writer) -> Status,
    /// Hand the task its context, once, before start (as `connector_initialize`).
    pub source_task_initialize:
        unsafe extern "C" fn(h: Handle, host: SourceTaskHostRef, err: Writer) -> Status,
    pub source_task_start: unsafe extern "C" fn(h: Handle, config: Buf, err: Writer) -> Status,
    /// Poll one batch (possibly empty) and lend it: `out` gets its view, valid until the
    /// next poll, stop or free of this task (see [`crate::view`]).
    pub source_task_poll: unsafe extern "C" fn(
        h: Handle,
        out: *mut crate::view::SourceBatchView,
        err: Writer,
    ) -> Status,
    /// Offsets of everything polled so far were committed.
    pub source_task_commit: unsafe extern "C" fn(h: Handle, err: Writer) -> Status,
    /// The records of the last polled batch were written (or dropped): `metadata` holds
    /// where each went, in order, encoded by [`crate::view::encode_record_metadata`]; its
    /// length must be the batch's.
    pub source_task_commit_records:
        unsafe extern "C" fn(h: Handle, metadata: Buf, err: Writer) -> Status,
    pub source_task_stop: unsafe extern "C" fn(h: Handle, err: Writer) -> Status,
    pub source_task_free: unsafe extern "C" fn(h: Handle),

    /// Create a task of sink connector `index`.
    pub sink_task_new: unsafe extern "C" fn(index: u32, out: *mut Handle, err: Writer) -> Status,
    /// Hand the task its context, once, before start (as `connector_initialize`).
    pub sink_task_initialize:
        unsafe extern "C" fn(h: Handle, host: SinkTaskHostRef, err: Writer) -> Status,
    pub sink_task_start: unsafe extern "C" fn(h: Handle, config: Buf, err: Writer) -> Status,
    /// Partitions were assigned (encoded by [`crate::record::encode_partitions`]).
    pub sink_task_open: unsafe extern "C" fn(h: Handle, partitions: Buf, err: Writer) -> Status,
    /// Deliver one batch: `len` record views at `records`, lent for the call (see
    /// [`crate::view`]).
    pub sink_task_put: unsafe extern "C" fn(
        h: Handle,
        records: *const crate::view::SinkRecordView,
        len: usize,
        err: Writer,
    ) -> Status,
    /// Flush and answer the offsets safe to commit: `offsets` (the consumed position per
    /// partition) in, the committable subset out, both encoded by
    /// [`crate::record::encode_offsets`].
    pub sink_task_pre_commit:
        unsafe extern "C" fn(h: Handle, offsets: Buf, out: Writer, err: Writer) -> Status,
    /// Partitions were revoked.
    pub sink_task_close: unsafe extern "C" fn(h: Handle, partitions: Buf, err: Writer) -> Status,
    pub sink_task_stop: unsafe extern "C" fn(h: Handle, err: Writer) -> Status,
    pub sink_task_free: unsafe extern "C" fn(h: Handle),

    /// The transformations and predicates the plugin exports (ABI 4).
    pub transforms: *const TransformDescriptor,
    pub transforms_len: usize,
    /// Create an instance of transform or predicate `index` (not configured).
    pub transform_new: unsafe extern "C" fn(index: u32, out: *mut Handle, err: Writer) -> Status,
    /// Configure with a string map (the keys after `transforms.ALIAS.`). `out` gets the
    /// encoded [`crate::config::ConfigValueInfo`] list; when any has errors the
    /// configuration was refused and the status is [`Status::FAILED`].
    pub transform_configure:
        unsafe extern "C" fn(h: Handle, config: Buf, out: Writer, err: Writer) -> Status,
    /// Transform a batch of `len` records lent as views for the call (a transformation
    /// only); `out` gets the transformed batch, lent until the next call on `h`.
    pub transform_apply: unsafe extern "C" fn(
        h: Handle,
        kind: RecordKind,
        records: *const crate::view::SinkRecordView,
        len: usize,
        out: *mut TransformedBatch,
        err: Writer,
    ) -> Status,
    /// Apply `n` transformations of this library (distinct handles, `hs[0]` first) to a
    /// batch in one call, as `n` calls of `transform_apply` would: each gets what the one
    /// before answered. `out` gets the last answer, each record with the index of the input
    /// record it came from, lent until the next call on any of the handles. When one fails,
    /// `failed` gets its position in `hs` and the status and message are its own.
    pub transform_apply_chain: unsafe extern "C" fn(
        hs: *const Handle,
        n: usize,
        kind: RecordKind,
        records: *const crate::view::SinkRecordView,
        len: usize,
        out: *mut TransformedBatch,
        failed: *mut usize,
        err: Writer,
    ) -> Status,
    /// Test each of `len` records (a predicate only): `out` gets `len` bytes, 1 for a
    /// record that matches, 0 for one that does not.
    pub predicate_test: unsafe extern "C" fn(
        h: Handle,
        kind: RecordKind,
        records: *const crate::view::SinkRecordView,
        len: usize,
        out: Writer,
        err: Writer,
    ) -> Status,
    /// Kafka's `close()`: release what the instance holds.
    pub transform_close: unsafe extern "C" fn(h: Handle, err: Writer) -> Status,
    pub transform_free: unsafe extern "C" fn(h: Handle),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_carry_the_prefix() {
        for s in [SYMBOL_ABI_VERSION, SYMBOL_ENTRY] {
            assert!(s.starts_with("tributary_plugin_"), "{s}");
        }
    }

    #[test]
    fn vec_writer_appends() {
        let mut v = b"ab".to_vec();
        let w = Writer::for_vec(&mut v);
        // SAFETY: the writer was made for this call and `v` is not otherwise borrowed.
        unsafe {
            w.write(b"cd");
            w.write(b"");
        }
        assert_eq!(v, b"abcd");
    }

    #[test]
    fn empty_buf_is_an_empty_slice() {
        let b = Buf {
            ptr: std::ptr::null(),
            len: 0,
        };
        // SAFETY: len is 0.
        assert!(unsafe { b.as_slice() }.is_empty());
    }
}
