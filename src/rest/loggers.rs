//! Log levels changed at run time (Kafka Connect's `/admin/loggers`, KIP-495 and
//! KIP-976's `last_modified`), on tracing-subscriber's reload layer.
//!
//! [`init`] installs the process's subscriber: an [`EnvFilter`] from `RUST_LOG` (default
//! `info`) behind a reload handle, and the fmt layer on stderr. [`Loggers`] keeps the
//! levels as directives, one per logger: `root` (the default level) and Rust module
//! paths (`tributary::worker`), which are what tracing's targets are. A change rebuilds
//! the filter from those directives and swaps it in.
//!
//! As in Kafka, `PUT /admin/loggers/NAME` sets the level of NAME and of every logger
//! below it that has a level (`tributary` also sets `tributary::worker`; `root` sets
//! them all) and answers the loggers it set; `GET /admin/loggers` lists `root` and the
//! loggers with a level of their own.
//!
//! Differences from Kafka Connect: an unknown level is 400 (Kafka answers 404); logger
//! names are module paths (letters, digits, `_`, separated by `::`), anything else is
//! 400 (so a name can never smuggle another filter directive in); `?scope=cluster` is
//! not supported (one worker) and is 400 rather than silently applied to this worker.
//! `FATAL` is accepted and works as `ERROR` (tracing has no fatal level).
//!
//! What this is not: it does not format or write logs; the fmt layer does.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value as JsonValue;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;

use super::error::ApiError;
use super::extract::{JsonBody, PathParams, Query, json_kind};
#[allow(unused_imports)] // named only in #[utoipa::path] annotations
use super::model::{ErrorMessage, LoggerLevelRequest};

/// Kafka's (log4j's) level names, as accepted, and what tracing calls them.
const LEVELS: &[(&str, &str)] = &[
    ("TRACE", "trace"),
    ("DEBUG", "debug"),
    ("INFO", "info"),
    ("WARN", "warn"),
    ("ERROR", "error"),
    ("FATAL", "error"),
    ("OFF", "off"),
];

/// The name of the default level.
pub const ROOT: &str = "root";

type Handle = reload::Handle<EnvFilter, tracing_subscriber::Registry>;

/// One logger's level (Kafka's `LoggerLevel`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LoggerLevel {
    pub level: String,
    /// When it was last set through the API, ms since the epoch; `null` if it comes
    /// from `RUST_LOG`.
    pub last_modified: Option<i64>,
}

/// The levels and how to apply them.
#[derive(Debug)]
pub struct Loggers {
    handle: Option<Handle>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Logger → level; `root` always present.
    levels: BTreeMap<String, LoggerLevel>,
    /// Directives of `RUST_LOG` this API does not manage (span or field filters),
    /// kept as given.
    other: Vec<String>,
}

static LOGGERS: OnceLock<Loggers> = OnceLock::new();

/// Install the process's tracing subscriber (once; later calls do nothing): the filter
/// from `RUST_LOG`, default `info`, reloadable through [`loggers`].
pub fn init() {
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    let state = State::parse(&base);
    let filter = EnvFilter::try_new(state.directives()).unwrap_or_else(|_| EnvFilter::new("info"));
    let (layer, handle) = reload::Layer::new(filter);
    let installed = tracing_subscriber::registry()
        .with(layer)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .try_init()
        .is_ok();
    let _ = LOGGERS.set(Loggers {
        handle: installed.then_some(handle),
        state: Mutex::new(state),
    });
}

/// The process's loggers ([`init`]'s; without it, levels can be read but not set).
pub fn loggers() -> &'static Loggers {
    LOGGERS.get_or_init(|| Loggers {
        handle: None,
        state: Mutex::new(State::parse(
            &std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
        )),
    })
}

impl State {
    /// The loggers of a `RUST_LOG` value: `LEVEL` is root's, `TARGET=LEVEL` a logger's.
    fn parse(spec: &str) -> State {
        let mut levels = BTreeMap::new();
        let mut other = Vec::new();
        let mut root: Option<String> = None;
        for d in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let (target, level) = match d.split_once('=') {
                Some((t, l)) => (Some(t), l),
                None => (None, d),
            };
            let Some(level) = kafka_level(level) else {
                // A bare target (`tributary::worker`) means every level.
                match target {
                    None if valid_name(d) => {
                        levels.insert(d.to_owned(), from_env("TRACE"));
                    }
                    _ => other.push(d.to_owned()),
                }
                continue;
            };
            match target {
                None => root = Some(level.to_owned()),
                Some(t) if valid_name(t) => {
                    levels.insert(t.to_owned(), from_env(level));
                }
                Some(_) => other.push(d.to_owned()),
            }
        }
        // With no bare level, EnvFilter lets nothing else through: root is OFF.
        let root = root.unwrap_or_else(|| {
            if levels.is_empty() && other.is_empty() {
                "INFO"
            } else {
                "OFF"
            }
            .to_owned()
        });
        levels.insert(ROOT.to_owned(), from_env(&root));
        State { levels, other }
    }

    /// The filter these levels make.
    fn directives(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        for (name, l) in &self.levels {
            let level = tracing_level(&l.level).unwrap_or("info");
            if name == ROOT {
                out.insert(0, level.to_owned());
            } else {
                out.push(format!("{name}={level}"));
            }
        }
        out.extend(self.other.iter().cloned());
        out.join(",")
    }
}

fn from_env(level: &str) -> LoggerLevel {
    LoggerLevel {
        level: level.to_owned(),
        last_modified: None,
    }
}

/// Kafka's name of a level given in any case (`debug` → `DEBUG`), if it is one.
fn kafka_level(level: &str) -> Option<&'static str> {
    LEVELS
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(level.trim()))
        .map(|(k, _)| *k)
}

fn tracing_level(kafka: &str) -> Option<&'static str> {
    LEVELS.iter().find(|(k, _)| *k == kafka).map(|(_, t)| *t)
}

/// `root` or a Rust module path.
fn valid_name(name: &str) -> bool {
    name == ROOT
        || (!name.is_empty()
            && name.split("::").all(|part| {
                !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            }))
}

/// Whether `name` is `ancestor` or below it.
fn is_under(name: &str, ancestor: &str) -> bool {
    ancestor == ROOT
        || name == ancestor
        || name
            .strip_prefix(ancestor)
            .is_some_and(|rest| rest.starts_with("::"))
}

impl Loggers {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `root` and every logger with a level of its own.
    pub fn all(&self) -> BTreeMap<String, LoggerLevel> {
        self.lock().levels.clone()
    }

    pub fn get(&self, name: &str) -> Option<LoggerLevel> {
        self.lock().levels.get(name).cloned()
    }

    /// Set `name` and the loggers below it to `level` (Kafka's name); answers the
    /// loggers set, sorted.
    pub fn set(&self, name: &str, level: &str, now_ms: i64) -> Result<Vec<String>, ApiError> {
        let Some(handle) = &self.handle else {
            return Err(ApiError::internal(
                "log levels cannot be changed in this process: it did not install Tributary's \
                 logging (tributary::rest::loggers::init)",
            ));
        };
        let mut st = self.lock();
        let mut next = st.levels.clone();
        next.entry(name.to_owned())
            .or_insert_with(|| from_env(level));
        let mut affected = Vec::new();
        for (logger, l) in next.iter_mut() {
            if is_under(logger, name) {
                *l = LoggerLevel {
                    level: level.to_owned(),
                    last_modified: Some(now_ms),
                };
                affected.push(logger.clone());
            }
        }
        let candidate = State {
            levels: next,
            other: st.other.clone(),
        };
        let filter = EnvFilter::try_new(candidate.directives()).map_err(|e| {
            ApiError::internal(format!(
                "the log filter for {name}={level} was refused: {e}; the levels are unchanged"
            ))
        })?;
        handle.reload(filter).map_err(|e| {
            ApiError::internal(format!(
                "could not apply log level {level} to {name}: {e}; the levels are unchanged"
            ))
        })?;
        *st = candidate;
        tracing::info!(logger = name, level, "log level changed");
        Ok(affected)
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid logger name {name:?}: use root or a Rust module path such as \
             tributary::worker (letters, digits and _ separated by ::)"
        )))
    }
}

/// `GET /admin/loggers`: `{"root": {"level", "last_modified"}, ...}`.
#[utoipa::path(
    get,
    path = "/admin/loggers",
    operation_id = "list_loggers",
    tag = "admin",
    summary = "Every logger with a level of its own, and root",
    responses(
        (status = 200, description = "logger → level", body = BTreeMap<String, LoggerLevel>),
    )
)]
pub async fn list() -> Response {
    Json(loggers().all()).into_response()
}

/// `GET /admin/loggers/{logger}`: its level; 404 if it has none of its own.
#[utoipa::path(
    get,
    path = "/admin/loggers/{logger}",
    tag = "admin",
    summary = "One logger's level",
    operation_id = "get_logger",
    params(
        ("logger" = String, Path, description = "root or a Rust module path, e.g. tributary::worker"),
    ),
    responses(
        (status = 200, body = LoggerLevel),
        (status = 400, description = "Not a logger name", body = ErrorMessage),
        (status = 404, description = "The logger has no level of its own", body = ErrorMessage),
    )
)]
pub async fn get(PathParams(name): PathParams<String>) -> Result<Response, ApiError> {
    check_name(&name)?;
    match loggers().get(&name) {
        Some(l) => Ok(Json(l).into_response()),
        None => Err(ApiError::not_found(format!(
            "Logger {name} not found. It has no level of its own (GET /admin/loggers lists those); \
             PUT /admin/loggers/{name} with {{\"level\": \"DEBUG\"}} sets one"
        ))),
    }
}

/// `PUT /admin/loggers/{logger}` with `{"level": "DEBUG"}`: 200 with the loggers set.
#[utoipa::path(
    put,
    path = "/admin/loggers/{logger}",
    tag = "admin",
    summary = "Set a logger's level, and its children's",
    operation_id = "set_logger_level",
    params(
        ("logger" = String, Path, description = "root or a Rust module path, e.g. tributary::worker"),
        ("scope" = Option<String>, Query, description = "worker (the default; cluster is refused)"),
    ),
    request_body(content = LoggerLevelRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The loggers set", body = Vec<String>),
        (status = 400, description = "A bad level, logger name or scope", body = ErrorMessage),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorMessage),
    )
)]
pub async fn put(
    PathParams(name): PathParams<String>,
    q: Query,
    body: JsonBody,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    match q.all("scope").next() {
        None => {}
        Some(s) if s.eq_ignore_ascii_case("worker") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "scope {other:?} is not supported: Tributary runs one worker, so levels are set \
                 with scope=worker (the default); drop the scope parameter"
            )));
        }
    }
    let request = body.object(r#"{"level": "DEBUG"}"#)?;
    let level = match request.get("level") {
        None | Some(JsonValue::Null) => {
            return Err(ApiError::bad_request(
                "Desired 'level' parameter was not specified in request.",
            ));
        }
        Some(JsonValue::String(l)) => l.clone(),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "\"level\" must be a string such as \"DEBUG\", not {}",
                json_kind(other)
            )));
        }
    };
    let Some(level) = kafka_level(&level) else {
        return Err(ApiError::bad_request(format!(
            "invalid log level '{level}': use one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF"
        )));
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let affected = loggers().set(&name, level, now_ms)?;
    Ok(Json(affected).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_becomes_loggers() {
        let st = State::parse("warn,tributary::worker=debug,h2[conn]=trace");
        assert_eq!(st.levels[ROOT].level, "WARN");
        assert_eq!(st.levels["tributary::worker"].level, "DEBUG");
        assert_eq!(st.other, vec!["h2[conn]=trace".to_owned()]);
        assert_eq!(
            st.directives(),
            "warn,tributary::worker=debug,h2[conn]=trace"
        );
        assert_eq!(State::parse("info").levels[ROOT].level, "INFO");
        assert_eq!(State::parse("tributary=debug").levels[ROOT].level, "OFF");
    }

    #[test]
    fn names_and_levels() {
        for ok in ["root", "tributary", "tributary::worker::task", "a_1"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "a,b=trace",
            "a::",
            "::a",
            "a b",
            "a=b",
            "tributary.worker",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert_eq!(kafka_level("debug"), Some("DEBUG"));
        assert_eq!(kafka_level("Fatal"), Some("FATAL"));
        assert_eq!(tracing_level("FATAL"), Some("error"));
        assert_eq!(kafka_level("verbose"), None);
        assert!(is_under("tributary::worker", "tributary"));
        assert!(!is_under("tributary_x", "tributary"));
        assert!(is_under("anything", ROOT));
    }
}
