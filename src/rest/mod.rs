//! The REST API: Kafka Connect's, path for path and status for status (Kafka 3.7 and
//! later), over the [`Herder`], served with axum on the worker's `listeners`.
//!
//! - [`router`] builds the routes on a [`RestState`]; [`service`] wraps them so trailing
//!   slashes are trimmed before routing (some clients send `/connectors/NAME/`). Tests
//!   call either without a socket.
//! - [`RestListener::bind`] takes the port (before the herder starts, so the worker id
//!   in status records is the real address even with `listeners=http://127.0.0.1:0`);
//!   [`RestListener::serve`] starts answering; [`RunningRest::stop`] stops taking
//!   requests and lets those in flight finish, within a deadline.
//! - [`handlers`]: one function per endpoint ([`loggers`]: `/admin/loggers`); [`model`]: the JSON bodies (Kafka's
//!   entities; the wire contract, apart from the herder's types); [`error`]: errors as
//!   `{"error_code", "message"}`, the one mapping from [`WorkerError`](crate::worker::WorkerError)
//!   to HTTP statuses; [`extract`]: bodies, query strings and paths read with those
//!   errors.
//!
//! Every herder call runs on a blocking thread (the herder blocks on plugin calls and
//! durable writes) under Kafka's 90 s request timeout; nothing here holds a lock.
//!
//! Where Tributary answers differently from Kafka Connect, on purpose:
//! - a `connector.class` naming no installed plugin is a bad request (400), on create,
//!   update and validate; Kafka answers 500;
//! - a config refused on create or update lists its errors as
//!   `connector NAME: invalid config KEYS: ERRORS` (Kafka: `Connector configuration is
//!   invalid and contains the following N error(s): ...`); the status, 400, is the same;
//! - malformed JSON and a body that is not an object are 400 (Kafka's Jackson errors can
//!   surface as 500); a body over [`BODY_LIMIT`] is 413;
//! - a boolean query parameter other than `true`/`false` is 400 (Kafka takes it as
//!   false);
//! - statuses carry `restarts` and `next_restart_ms` when a task is being restarted
//!   automatically (absent otherwise, so Kafka's shape holds); a connector with no status
//!   written yet is `UNASSIGNED` rather than 404;
//! - `GET /` reports Tributary's version (and `commit` is `unknown` unless the build sets
//!   `TRIBUTARY_GIT_COMMIT`), not a Kafka version;
//! - `GET /connector-plugins/{plugin}/config` describes connector plugins,
//!   transformations and predicates (404 for a converter);
//! - a sink's `GET .../offsets` lists the group's committed offsets of the partitions it
//!   subscribes to now (Kafka: every partition the group committed);
//! - `PATCH`/`DELETE .../offsets` answer `The offsets for this connector have been
//!   altered/reset successfully` (plugins cannot take part in the change through the
//!   plugin ABI, so there is no `alterOffsets` to ask; the framework-managed offsets are
//!   all there is); a sink partition's topic must exist and have that partition (400);
//! - `GET .../topics` and `PUT .../topics/reset` answer 404 for an unknown connector
//!   (Kafka: an empty list, 202); deleting a connector also forgets its active topics;
//! - `/admin/loggers` names loggers by Rust module path (`tributary::worker`) and
//!   `root`; an unknown level is 400 (Kafka: 404); `?scope=cluster` is 400 (see
//!   [`loggers`]);
//! - `GET /openapi.json` serves the API's OpenAPI 3 document (Kafka Connect has none at
//!   run time), generated from the handlers' annotations by the same code that routes.
//!
//! What this module is not: it keeps no state of its own and knows nothing of topics,
//! plugins' internals or tasks beyond what the herder answers.

pub mod error;
pub mod extract;
pub mod forward;
pub mod handlers;
pub mod loggers;
pub mod model;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio_util::sync::CancellationToken;
use tower_http::normalize_path::NormalizePath;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::error::ApiError;
use self::model::ServerInfo;
use crate::worker::{Herder, WorkerError};

/// The largest request body accepted (connector configs are a few KiB).
pub const BODY_LIMIT: usize = 1 << 20;
/// How long a request may wait for the herder (Kafka's `DEFAULT_REST_REQUEST_TIMEOUT_MS`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);
/// How long [`RunningRest::stop`] lets requests in flight finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Tributary's version, reported by `GET /` and for the built-in converters.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What went wrong starting the REST server.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error(
        "cannot serve the REST API on http://{addr} (listeners): {source}; free the port or set listeners to another address"
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What the handlers share: the herder, the server's identity, and whether the worker
/// has finished starting. Cloning shares it.
#[derive(Clone, Debug)]
pub struct RestState {
    inner: Arc<StateInner>,
}

#[derive(Debug)]
struct StateInner {
    herder: Herder,
    kafka_cluster_id: String,
    ready: AtomicBool,
}

impl RestState {
    /// The state of a worker still starting (`GET /health` answers 503 until
    /// [`RestState::set_ready`]).
    pub fn new(herder: Herder, kafka_cluster_id: String) -> RestState {
        RestState {
            inner: Arc::new(StateInner {
                herder,
                kafka_cluster_id,
                ready: AtomicBool::new(false),
            }),
        }
    }

    /// The worker has started (its startup connectors are created).
    pub fn set_ready(&self) {
        self.inner.ready.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    pub fn herder(&self) -> &Herder {
        &self.inner.herder
    }

    pub fn server_info(&self) -> ServerInfo {
        ServerInfo {
            version: VERSION.to_owned(),
            // Kafka reports "unknown" when the build carries no commit id.
            commit: option_env!("TRIBUTARY_GIT_COMMIT")
                .unwrap_or("unknown")
                .to_owned(),
            kafka_cluster_id: self.inner.kafka_cluster_id.clone(),
        }
    }

    /// Run `f` with the herder on a blocking thread, within [`REQUEST_TIMEOUT`]. A
    /// timed-out call goes on in the background, as it does in Kafka Connect.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Herder) -> Result<T, WorkerError> + Send + 'static,
    {
        let herder = self.inner.herder.clone();
        let call = tokio::task::spawn_blocking(move || f(&herder));
        match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
            Ok(Ok(answer)) => answer.map_err(ApiError::from),
            Ok(Err(e)) => Err(ApiError::internal(format!(
                "the worker failed while handling this request: {e}; the worker log has details"
            ))),
            Err(_) => Err(ApiError::internal(format!(
                "Request timed out: the worker did not answer within {} s; a connector or task \
                 may be stuck in its plugin (GET /connectors?expand=status shows their states)",
                REQUEST_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// The OpenAPI document's frame; the paths and schemas come from the handlers'
/// `#[utoipa::path]` annotations as [`api_router`] adds them.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Tributary REST API",
        description = "Kafka Connect's REST API (3.7 and later), path for path and status for \
                       status; differences are listed in Tributary's README."
    ),
    components(schemas(model::ExpandedConnectors, model::ExpandedConnector)),
    tags(
        (name = "root", description = "The worker itself"),
        (name = "connectors", description = "Connectors, their tasks, offsets and topics"),
        (name = "plugins", description = "Installed connector plugins and config validation"),
        (name = "admin", description = "Log levels at run time"),
        (name = "openapi", description = "This document"),
    )
)]
struct ApiDoc;

/// Every route with its OpenAPI description: the router and the document are built
/// from the same annotations, so neither can have a route the other lacks.
fn api_router() -> OpenApiRouter<RestState> {
    use handlers as h;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(h::server_info))
        .routes(routes!(h::health))
        .routes(routes!(h::list_connectors, h::create_connector))
        .routes(routes!(h::get_connector, h::delete_connector))
        .routes(routes!(h::get_config, h::put_config, h::patch_config))
        .routes(routes!(h::status))
        .routes(routes!(h::restart_connector))
        .routes(routes!(h::pause))
        .routes(routes!(h::resume))
        .routes(routes!(h::stop))
        .routes(routes!(h::tasks, h::put_tasks))
        .routes(routes!(h::task_status))
        .routes(routes!(h::restart_task))
        .routes(routes!(h::offsets, h::alter_offsets, h::reset_offsets))
        .routes(routes!(h::topics))
        .routes(routes!(h::reset_topics))
        .routes(routes!(h::list_plugins))
        .routes(routes!(h::plugin_config))
        .routes(routes!(h::validate))
        .routes(routes!(loggers::list))
        .routes(routes!(loggers::get, loggers::put))
        .routes(routes!(openapi_json))
}

/// The OpenAPI 3 document of every route ([`api_router`]'s).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

/// `GET /openapi.json`: this API's OpenAPI 3 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "openapi",
    summary = "This API's OpenAPI 3 document",
    responses((status = 200, description = "The document", content_type = "application/json"))
)]
async fn openapi_json() -> axum::response::Response {
    use axum::response::IntoResponse;
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(|| {
        openapi().to_json().unwrap_or_else(|e| {
            format!("{{\"error\": \"the OpenAPI document did not serialize: {e}\"}}")
        })
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        doc.clone(),
    )
        .into_response()
}

/// Every route, with Kafka Connect's paths.
pub fn router(state: RestState) -> Router {
    let (routes, _) = api_router().split_for_parts();
    routes
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forward::forward,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// [`router`] with trailing slashes trimmed before routing.
pub fn service(state: RestState) -> NormalizePath<Router> {
    NormalizePath::trim_trailing_slash(router(state))
}

/// The REST port, taken but not yet answering.
#[derive(Debug)]
pub struct RestListener {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
}

impl RestListener {
    pub async fn bind(addr: SocketAddr) -> Result<RestListener, RestError> {
        let bind = |source| RestError::Bind { addr, source };
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        Ok(RestListener { listener, addr })
    }

    /// The bound address (the real port when `listeners` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Start answering requests on the current runtime.
    pub fn serve(self, state: RestState) -> RunningRest {
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone();
        let app = axum::ServiceExt::<axum::extract::Request>::into_make_service(service(state));
        let addr = self.addr;
        let task = tokio::spawn(async move {
            let served = axum::serve(self.listener, app)
                .with_graceful_shutdown(async move { signal.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(%addr, error = %e, "the REST server stopped");
            }
        });
        tracing::info!(rest = %format!("http://{addr}"), "REST API listening");
        RunningRest {
            addr,
            shutdown,
            task,
        }
    }
}

/// The REST server, answering.
#[derive(Debug)]
pub struct RunningRest {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RunningRest {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting requests; those in flight get [`SHUTDOWN_GRACE`] to finish, then
    /// their connections are dropped.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let abort = self.task.abort_handle();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.task)
            .await
            .is_err()
        {
            tracing::warn!(
                "REST requests still running {} s after shutdown began; their connections are dropped",
                SHUTDOWN_GRACE.as_secs()
            );
            abort.abort();
        }
    }
}

#[cfg(test)]
mod tests;
