//! HTTP connectors: `HttpSink` (records of topics to an HTTP endpoint, in batches, with
//! retries and the dead letter queue for what the server refuses) and `HttpSource` (an HTTP
//! API polled page by page into a topic, resuming at its cursor).
//!
//! - [`config`]: the keys both share (endpoint, headers, auth, timeouts, retries) and the
//!   one request-with-retries loop;
//! - [`sink`]: [`HttpSink`], batching and request formats;
//! - [`source`]: [`HttpSource`], records by JSON pointer and pagination;
//! - [`json`]: records as JSON and back.
//!
//! What it is not: an HTTPS client by default (the `rustls` feature adds https://), nor a
//! server (nothing listens).
//!
//! The SDK's task calls are synchronous: each call that talks HTTP `block_on`s one small
//! runtime shared by the library's tasks (one worker thread: the work is waiting on
//! sockets; JSON encoding happens on the calling thread).

pub mod config;
pub mod json;
pub mod sink;
pub mod source;
#[cfg(test)]
mod tests;

use std::sync::OnceLock;

pub use sink::{HttpSink, HttpSinkTask};
pub use source::{HttpSource, HttpSourceTask};
use tributary_plugin_sdk::{ConnectError, Result};

/// The library's runtime, made on first use.
pub(crate) fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
        OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("http-connector")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ConnectError::new(format!("cannot start the HTTP connector's runtime: {e}")))
}

tributary_plugin_sdk::export_plugin! {
    sources: [HttpSource],
    sinks: [HttpSink],
}
