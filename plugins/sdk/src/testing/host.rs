//! The harness's stand-in for the worker's side of the contexts: an in-memory host reached
//! through the same C callback tables as the real one, so a context call in a test crosses
//! the same encoding, status and panic paths as in the worker.

use std::collections::BTreeSet;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tributary_plugin_abi::ffi::{
    Buf, ConnectorHostApi, ConnectorHostRef, SinkTaskHostApi, SinkTaskHostRef, SourceTaskHostApi,
    SourceTaskHostRef, Status, Writer,
};
use tributary_plugin_abi::record::{self, OffsetMap, Offsets, TopicPartition};

use crate::context::{ConnectorContext, SinkTaskContext, SourceTaskContext};
use crate::export::panic_message;

/// Make the harness's worker misbehave, to test how a connector copes: every context call
/// answers this until the fault is cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostFault {
    /// The call fails with this message.
    Fail(String),
    /// The call fails with this message, retriably.
    Retriable(String),
    /// The worker's side panics with this message (caught, as the worker catches it: the
    /// connector sees an error).
    Panic(String),
}

/// What a sink task asked of the harness's worker through its [`SinkTaskContext`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkTaskRequests {
    /// The partitions assigned to the task (through the harness's `open` and `close`).
    pub assignment: BTreeSet<TopicPartition>,
    /// The partitions paused and not resumed since.
    pub paused: BTreeSet<TopicPartition>,
    /// Where the task asked to consume from next, the latest request per partition.
    pub offsets: Offsets,
    /// How many times it asked for a commit.
    pub commit_requests: usize,
    /// The records it reported as errant: partition, offset and the error's message.
    pub reported: Vec<(TopicPartition, i64, String)>,
}

#[derive(Debug, Default)]
pub(crate) struct HostState {
    /// Committed source offsets by source partition (a list: offset maps are not `Ord`).
    pub committed: Vec<(OffsetMap, OffsetMap)>,
    pub reconfiguration_requests: usize,
    pub raised_errors: Vec<String>,
    /// One entry per sink task.
    pub sinks: Vec<SinkTaskRequests>,
    pub fault: Option<HostFault>,
}

impl HostState {
    /// Store `offset` as the committed offset of `partition`.
    pub fn commit_offset(&mut self, partition: OffsetMap, offset: OffsetMap) {
        match self.committed.iter_mut().find(|(p, _)| *p == partition) {
            Some((_, o)) => *o = offset,
            None => self.committed.push((partition, offset)),
        }
    }

    pub fn committed_offset(&self, partition: &OffsetMap) -> Option<OffsetMap> {
        self.committed
            .iter()
            .find(|(p, _)| p == partition)
            .map(|(_, o)| o.clone())
    }

    /// The requests of sink task `task`, created on first use.
    pub fn sink(&mut self, task: usize) -> &mut SinkTaskRequests {
        if self.sinks.len() <= task {
            self.sinks.resize_with(task + 1, SinkTaskRequests::default);
        }
        &mut self.sinks[task]
    }
}

/// The shared state behind every context a harness hands out.
#[derive(Debug, Clone, Default)]
pub(crate) struct TestHost(pub(crate) Arc<Mutex<HostState>>);

impl TestHost {
    pub fn state(&self) -> MutexGuard<'_, HostState> {
        // A panic while the lock was held (a fault injected by the test) leaves the state as
        // consistent as it was: keep using it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn context_ref(&self, task: usize) -> *mut c_void {
        Arc::into_raw(Arc::new(Local {
            host: self.clone(),
            task,
        }))
        .cast_mut()
        .cast()
    }

    pub fn connector_context(&self) -> ConnectorContext {
        let host = ConnectorHostRef {
            ctx: self.context_ref(0),
            api: &CONNECTOR_API,
        };
        // SAFETY: a fresh reference with a static table, owned by nothing else.
        unsafe { ConnectorContext::from_raw(host) }.expect("the table is a static")
    }

    pub fn source_task_context(&self, task: usize) -> SourceTaskContext {
        let host = SourceTaskHostRef {
            ctx: self.context_ref(task),
            api: &SOURCE_TASK_API,
        };
        // SAFETY: as in `connector_context`.
        unsafe { SourceTaskContext::from_raw(host) }.expect("the table is a static")
    }

    pub fn sink_task_context(&self, task: usize) -> SinkTaskContext {
        let host = SinkTaskHostRef {
            ctx: self.context_ref(task),
            api: &SINK_TASK_API,
        };
        // SAFETY: as in `connector_context`.
        unsafe { SinkTaskContext::from_raw(host) }.expect("the table is a static")
    }
}

/// What one context's `ctx` points to: the shared host and the task it belongs to.
struct Local {
    host: TestHost,
    task: usize,
}

type Answer = Result<(), (Status, String)>;

/// Run one callback with the host's fault applied and panics caught; report through `err`.
///
/// # Safety
///
/// `ctx` must be a live reference made by [`TestHost::context_ref`].
unsafe fn answer(ctx: *mut c_void, err: Writer, f: impl FnOnce(&Local) -> Answer) -> Status {
    // SAFETY: guaranteed by the caller.
    let local = unsafe { &*ctx.cast_const().cast::<Local>() };
    let result = catch_unwind(AssertUnwindSafe(|| {
        let fault = local.host.state().fault.clone();
        match fault {
            None => f(local),
            Some(HostFault::Fail(m)) => Err((Status::FAILED, m)),
            Some(HostFault::Retriable(m)) => Err((Status::RETRIABLE, m)),
            Some(HostFault::Panic(m)) => panic!("{m}"),
        }
    }));
    let (status, message) = match result {
        Ok(Ok(())) => return Status::OK,
        Ok(Err(e)) => e,
        Err(payload) => (Status::PANICKED, panic_message(payload)),
    };
    // SAFETY: the plugin's writer for this call.
    unsafe { err.write(message.as_bytes()) };
    status
}

fn invalid(e: impl std::fmt::Display) -> (Status, String) {
    (Status::INVALID_INPUT, e.to_string())
}

unsafe extern "C" fn release(ctx: *mut c_void) {
    // SAFETY: the one reference made by `context_ref`, given back once.
    drop(unsafe { Arc::from_raw(ctx.cast_const().cast::<Local>()) });
}

static CONNECTOR_API: ConnectorHostApi = ConnectorHostApi {
    release,
    request_task_reconfiguration,
    raise_error,
};

static SOURCE_TASK_API: SourceTaskHostApi = SourceTaskHostApi { release, offsets };

static SINK_TASK_API: SinkTaskHostApi = SinkTaskHostApi {
    release,
    pause,
    resume,
    offset,
    request_commit,
    assignment,
    report,
};

// SAFETY (all callbacks below): the SDK's contexts call them with their live reference and
// with buffers and writers valid for the call.

unsafe extern "C" fn request_task_reconfiguration(ctx: *mut c_void, err: Writer) -> Status {
    // SAFETY: see above.
    unsafe {
        answer(ctx, err, |l| {
            l.host.state().reconfiguration_requests += 1;
            Ok(())
        })
    }
}

unsafe extern "C" fn raise_error(ctx: *mut c_void, message: Buf, err: Writer) -> Status {
    // SAFETY: see above.
    unsafe {
        answer(ctx, err, |l| {
            let message = String::from_utf8_lossy(message.as_slice()).into_owned();
            l.host.state().raised_errors.push(message);
            Ok(())
        })
    }
}

unsafe extern "C" fn offsets(
    ctx: *mut c_void,
    partitions: Buf,
    out: Writer,
    err: Writer,
) -> Status {
    // SAFETY: see above.
    unsafe {
        answer(ctx, err, |l| {
            let partitions = record::decode_offset_maps(partitions.as_slice()).map_err(invalid)?;
            let answer: Vec<_> = {
                let state = l.host.state();
                partitions
                    .iter()
                    .map(|p| state.committed_offset(p))
                    .collect()
            };
            let mut buf = Vec::new();
            record::encode_opt_offset_maps(&answer, &mut buf);
            out.write(&buf);
            Ok(())
        })
    }
}

/// Check that every partition is assigned to the task, as the worker's consumer does.
fn assigned(
    requests: &SinkTaskRequests,
    partitions: &[TopicPartition],
    verb: &str,
) -> Result<(), (Status, String)> {
    match partitions
        .iter()
        .find(|tp| !requests.assignment.contains(tp))
    {
        None => Ok(()),
        Some(tp) => Err((
            Status::FAILED,
            format!("cannot {verb} {tp}: it is not assigned to this task; open it first"),
        )),
    }
}

unsafe extern "C" fn pause(ctx: *mut c_void, partitions: Buf, err: Writer) -> Status {
    // SAFETY: see above.
    unsafe {
        answer(ctx, err, |l| {
            let partitions = record::decode_partitions(partitions.as_slice()).map_err(invalid)?;
            let mut state = l.host.state();
            let requests = state.sink(l.task);
            assigned(requests, &partitions, "pause")?;
            requests.paused.extend(partitions);
            Ok(())
        })
    }
}

unsafe extern "C" fn resume(ctx: *mut c_void, partitions: Buf, err: Writer) -> Status {
    // SAFETY: see above.
    unsafe {
        answer(ctx, err, |l| {
            let partitions = record::decode_partitions(partitions.as_slice()).map_err(invalid)?;
            let mut state = l.host.state();
            let requests = state.sink(l.task);
            assigned(requests, &partitions, "resume")?;
            for tp in &partitions {
                requests.paused.remove(tp);
            }
            Ok(())
        })
    }
}

unsafe extern "C" fn offset(ctx: *mut c_void, offsets: Buf, err: Writer) -> Status {
    // SAFETY: see above.
    unsafe {
        answer(ctx, err, |l| {
            let offsets = record::decode_offsets(offsets.as_slice()).map_err(invalid)?;
            l.host.state().sink(l.task).offsets.extend(offsets);
            Ok(())
        })
    }
}

unsafe extern "C" fn request_commit(ctx: *mut c_void, err: Writer) -> Status {
    // SAFETY: see above.
    unsafe {
        answer(ctx, err, |l| {
            l.host.state().sink(l.task).commit_requests += 1;
            Ok(())
        })
    }
}

unsafe extern "C" fn report(ctx: *mut c_void, rec: Buf, message: Buf, err: Writer) -> Status {
    // SAFETY: see above.
    unsafe {
        answer(ctx, err, |l| {
            let offsets = record::decode_offsets(rec.as_slice()).map_err(invalid)?;
            let message = String::from_utf8_lossy(message.as_slice()).into_owned();
            let mut state = l.host.state();
            let reported = &mut state.sink(l.task).reported;
            for (tp, offset) in offsets {
                reported.push((tp, offset, message.clone()));
            }
            Ok(())
        })
    }
}

unsafe extern "C" fn assignment(ctx: *mut c_void, out: Writer, err: Writer) -> Status {
    // SAFETY: see above.
    unsafe {
        answer(ctx, err, |l| {
            let assigned: Vec<_> = l
                .host
                .state()
                .sink(l.task)
                .assignment
                .iter()
                .cloned()
                .collect();
            let mut buf = Vec::new();
            record::encode_partitions(&assigned, &mut buf);
            out.write(&buf);
            Ok(())
        })
    }
}
