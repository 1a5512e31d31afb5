//! What the no-op connectors do with their context once started: from a thread of their
//! own, as a connector watching the outside world would, request a task reconfiguration and
//! raise an error, as `noop.request.reconfiguration` and `noop.raise.error` say.

use std::thread::JoinHandle;

use tributary_plugin_sdk::{ConnectError, ConnectorContext, Result};

use crate::config::ConnectorCalls;

/// The connector's own thread; `stop` waits for it and reports its failure.
#[derive(Debug, Default)]
pub struct Watcher {
    thread: Option<JoinHandle<Result<()>>>,
}

impl Watcher {
    /// Make the configured calls from a new thread (nothing if none is configured).
    pub fn start(context: Option<&ConnectorContext>, calls: &ConnectorCalls) -> Result<Watcher> {
        if !calls.request_reconfiguration && calls.raise_error.is_empty() {
            return Ok(Watcher::default());
        }
        let context = context.cloned().ok_or_else(|| {
            ConnectError::new(
                "noop: the worker gave the connector no context (initialize was not called)",
            )
        })?;
        let calls = calls.clone();
        let thread = std::thread::Builder::new()
            .name("noop-watcher".into())
            .spawn(move || {
                if calls.request_reconfiguration {
                    context.request_task_reconfiguration()?;
                }
                if !calls.raise_error.is_empty() {
                    context.raise_error(&calls.raise_error)?;
                }
                Ok(())
            })
            .map_err(|e| ConnectError::new(format!("noop: cannot start a thread: {e}")))?;
        Ok(Watcher {
            thread: Some(thread),
        })
    }

    /// Wait for the thread; its context calls' failure, if any, is the error.
    pub fn stop(&mut self) -> Result<()> {
        match self.thread.take() {
            None => Ok(()),
            Some(t) => match t.join() {
                Ok(result) => result.map_err(|e| {
                    ConnectError::new(format!(
                        "noop: the connector's context call failed: {}",
                        e.message()
                    ))
                }),
                Err(_) => Err(ConnectError::new(
                    "noop: the connector's own thread panicked",
                )),
            },
        }
    }
}
