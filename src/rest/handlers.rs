//! One function per endpoint, in the order of Kafka Connect's resources (`RootResource`,
//! `ConnectorsResource`, `ConnectorPluginsResource`). Each reads its request, makes its
//! herder calls on a blocking thread ([`RestState::blocking`]) and answers Kafka's
//! status and body.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as JsonValue};

use super::RestState;
use super::error::ApiError;
use super::extract::{JsonBody, PathParams, Query, json_kind, percent_encode_segment};
use super::model::{
    ActiveTopics, ConfigInfos, ConfigKeyInfo, ConnectorInfo, ConnectorOffset, ConnectorOffsets,
    ConnectorStateInfo, ExpandedConnector, Message, PluginInfo, TaskId, TaskInfo, TaskState,
    WorkerStatus,
};
#[allow(unused_imports)] // named only in #[utoipa::path] annotations
use super::model::{
    ActiveTopicsInfo, AlterOffsetsRequest, ConfigPatch, ConnectorConfig, CreateConnectorRequest,
    ErrorMessage, ServerInfo,
};
use crate::worker::WorkerError;
use crate::worker::connector_config::props_from_json;
use crate::worker::convert;
use crate::worker::store::{Props, TargetState};
use crate::worker::transform;

type Reply = Result<Response, ApiError>;

/// How long `GET /health` waits for the herder (Kafka's health check timeout).
const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);

// ---- root ----------------------------------------------------------------------------

/// `GET /`
#[utoipa::path(
    get,
    path = "/",
    tag = "root",
    summary = "The worker's version and Kafka cluster id",
    responses(
        (status = 200, body = ServerInfo),
    )
)]
pub async fn server_info(State(s): State<RestState>) -> Response {
    Json(s.server_info()).into_response()
}

/// `GET /health` (KIP-1017): 200 once the worker has started, 503 while it starts, 500
/// if the herder does not answer within ten seconds.
#[utoipa::path(
    get,
    path = "/health",
    tag = "root",
    summary = "Whether the worker has started (KIP-1017)",
    responses(
        (status = 200, body = WorkerStatus),
        (status = 503, description = "Still starting", body = WorkerStatus),
        (status = 500, description = "The worker does not answer", body = WorkerStatus),
    )
)]
pub async fn health(State(s): State<RestState>) -> Response {
    let answer = |code: StatusCode, status: &'static str, message: &str| {
        (
            code,
            Json(WorkerStatus {
                status,
                message: message.to_owned(),
            }),
        )
            .into_response()
    };
    if !s.is_ready() {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "Worker is still starting up: creating the connectors given on the command line.",
        );
    }
    let herder = s.herder().clone();
    let probe = tokio::task::spawn_blocking(move || herder.connectors());
    match tokio::time::timeout(HEALTH_TIMEOUT, probe).await {
        Ok(Ok(_)) => answer(
            StatusCode::OK,
            "healthy",
            "Worker has completed startup and is ready to handle requests.",
        ),
        _ => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unhealthy",
            "Worker was unable to handle this request and may be unable to handle other requests: \
             the herder did not answer within 10 s (a connector or task may be stuck in its plugin).",
        ),
    }
}

// ---- connectors ----------------------------------------------------------------------

/// `GET /connectors`, with `?expand=status` and/or `?expand=info` (other values
/// ignored, as Kafka does).
#[utoipa::path(
    get,
    path = "/connectors",
    tag = "connectors",
    summary = "The connectors' names; with `expand=status` and/or `expand=info`, a map name → {status, info}",
    params(
        ("expand" = Option<Vec<String>>, Query, description = "status and/or info (repeatable)"),
    ),
    responses(
        (status = 200, description = "Names, or with expand a map of ExpandedConnector", body = Vec<String>),
    )
)]
pub async fn list_connectors(State(s): State<RestState>, q: Query) -> Reply {
    let status = q.all("expand").any(|e| e == "status");
    let info = q.all("expand").any(|e| e == "info");
    if !status && !info {
        let names = s.blocking(|h| Ok(h.connectors())).await?;
        return Ok(Json(names).into_response());
    }
    let expanded = s
        .blocking(move |h| {
            let mut out = BTreeMap::new();
            for name in h.connectors() {
                // A connector deleted meanwhile is left out, as Kafka does.
                let gone = |e: &WorkerError| matches!(e, WorkerError::UnknownConnector(_));
                let mut entry = ExpandedConnector::default();
                if info {
                    match h.connector_info(&name) {
                        Ok(i) => entry.info = Some(ConnectorInfo::from(&i)),
                        Err(e) if gone(&e) => continue,
                        Err(e) => return Err(e),
                    }
                }
                if status {
                    match h.status(&name) {
                        Ok(st) => entry.status = Some(ConnectorStateInfo::from(&st)),
                        Err(e) if gone(&e) => continue,
                        Err(e) => return Err(e),
                    }
                }
                out.insert(name, entry);
            }
            Ok(out)
        })
        .await?;
    Ok(Json(expanded).into_response())
}

/// `POST /connectors` with `{"name", "config", "initial_state"}`: 201 with the
/// connector and its `Location`; 409 if the name is taken; 400 for a bad request or
/// config.
#[utoipa::path(
    post,
    path = "/connectors",
    tag = "connectors",
    summary = "Create a connector",
    request_body(content = CreateConnectorRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; Location names it", body = ConnectorInfo),
        (status = 400, description = "A bad request; the message says what to fix", body = ErrorMessage),
        (status = 409, description = "A connector of that name exists", body = ErrorMessage),
        (status = 413, description = "The body is over 1 MiB", body = ErrorMessage),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorMessage),
    )
)]
pub async fn create_connector(State(s): State<RestState>, body: JsonBody) -> Reply {
    let request = body.object(r#"{"name": "...", "config": {...}}"#)?;
    let name = match request.get("name") {
        Some(JsonValue::String(n)) => n.trim().to_owned(),
        None | Some(JsonValue::Null) => String::new(),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "\"name\" must be a string, not {}",
                json_kind(other)
            )));
        }
    };
    if name.is_empty() {
        return Err(ApiError::bad_request(
            "Connector name is required: send {\"name\": \"...\", \"config\": {...}}",
        ));
    }
    let config = match request.get("config") {
        Some(JsonValue::Object(map)) => config_from_json(map)?,
        None | Some(JsonValue::Null) => {
            return Err(ApiError::bad_request(format!(
                "connector {name}: the request has no \"config\" object with the connector's keys"
            )));
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "connector {name}: \"config\" must be a JSON object, not {}",
                json_kind(other)
            )));
        }
    };
    let initial = match request.get("initial_state") {
        None | Some(JsonValue::Null) => TargetState::Started,
        Some(JsonValue::String(s)) if s.eq_ignore_ascii_case("RUNNING") => TargetState::Started,
        Some(JsonValue::String(s)) if s.eq_ignore_ascii_case("PAUSED") => TargetState::Paused,
        Some(JsonValue::String(s)) if s.eq_ignore_ascii_case("STOPPED") => TargetState::Stopped,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "initial_state must be RUNNING, PAUSED or STOPPED, not {other}"
            )));
        }
    };
    let config = with_name(&name, config)?;
    let info = s
        .blocking(move |h| h.create_connector(&name, config, initial))
        .await?;
    Ok(created(&info))
}

/// 201 with the connector and `Location: /connectors/NAME`.
fn created(info: &crate::worker::herder::ConnectorInfo) -> Response {
    let location = format!("/connectors/{}", percent_encode_segment(&info.name));
    (
        StatusCode::CREATED,
        [(LOCATION, location)],
        Json(ConnectorInfo::from(info)),
    )
        .into_response()
}

/// A config's `name` must be the connector's; if absent it is added (Kafka's
/// `checkAndPutConnectorConfigName`).
fn with_name(name: &str, mut config: Props) -> Result<Props, ApiError> {
    match config.get("name") {
        Some(given) if given != name => Err(ApiError::bad_request(format!(
            "Connector name configuration ({given}) doesn't match connector name in the URL ({name})"
        ))),
        Some(_) => Ok(config),
        None => {
            config.insert("name".into(), name.to_owned());
            Ok(config)
        }
    }
}

/// A JSON object of config values as strings (numbers and booleans as their JSON text).
fn config_from_json(map: &Map<String, JsonValue>) -> Result<Props, ApiError> {
    props_from_json(map).map_err(ApiError::from)
}

/// `GET /connectors/{name}`
#[utoipa::path(
    get,
    path = "/connectors/{name}",
    tag = "connectors",
    summary = "A connector's config, tasks and type",
    params(
        ("name" = String, Path, description = "The connector's name"),
    ),
    responses(
        (status = 200, body = ConnectorInfo),
        (status = 404, description = "No such connector", body = ErrorMessage),
    )
)]
pub async fn get_connector(
    State(s): State<RestState>,
    PathParams(name): PathParams<String>,
) -> Reply {
    let info = s.blocking(move |h| h.connector_info(&name)).await?;
    Ok(Json(ConnectorInfo::from(&info)).into_response())
}

/// `DELETE /connectors/{name}`: 204.
#[utoipa::path(
    delete,
    path = "/connectors/{name}",
    tag = "connectors",
    summary = "Delete a connector",
    params(
        ("name" = String, Path, description = "The connector's name"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such connector", body = ErrorMessage),
    )
)]
pub async fn delete_connector(
    State(s): State<RestState>,
    PathParams(name): PathParams<String>,
) -> Reply {
    s.blocking(move |h| h.delete_connector(&name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /connectors/{name}/config`: the config as stored (placeholders unresolved).
#[utoipa::path(
    get,
    path = "/connectors/{name}/config",
    tag = "connectors",
    summary = "A connector's config as stored (placeholders unresolved)",
    params(
        ("name" = String, Path, description = "The connector's name"),
    ),
    responses(
        (status = 200, body = ConnectorConfig),
        (status = 404, description = "No such connector", body = ErrorMessage),
    )
)]
pub async fn get_config(State(s): State<RestState>, PathParams(name): PathParams<String>) -> Reply {
    let info = s.blocking(move |h| h.connector_info(&name)).await?;
    Ok(Json(info.config).into_response())
}

/// `PUT /connectors/{name}/config` with the whole config: 201 if it created the
/// connector, 200 if it replaced a config.
#[utoipa::path(
    put,
    path = "/connectors/{name}/config",
    tag = "connectors",
    summary = "Create or replace a connector's config",
    params(
        ("name" = String, Path, description = "The connector's name"),
    ),
    request_body(content = ConnectorConfig, content_type = "application/json"),
    responses(
        (status = 200, description = "Updated", body = ConnectorInfo),
        (status = 201, description = "Created", body = ConnectorInfo),
        (status = 400, description = "A bad request; the message says what to fix", body = ErrorMessage),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorMessage),
    )
)]
pub async fn put_config(
    State(s): State<RestState>,
    PathParams(name): PathParams<String>,
    body: JsonBody,
) -> Reply {
    let config = config_from_json(&body.object("the connector's config keys")?)?;
    let config = with_name(&name, config)?;
    let (info, was_created) = s
        .blocking(move |h| h.put_connector_config(&name, config))
        .await?;
    if was_created {
        Ok(created(&info))
    } else {
        Ok(Json(ConnectorInfo::from(&info)).into_response())
    }
}

/// `PATCH /connectors/{name}/config` with some keys (KIP-477): a value sets the key,
/// `null` removes it. 200 with the connector; 404 if there is none.
#[utoipa::path(
    patch,
    path = "/connectors/{name}/config",
    tag = "connectors",
    summary = "Change some keys of a connector's config (KIP-477); null removes a key",
    params(
        ("name" = String, Path, description = "The connector's name"),
    ),
    request_body(content = ConfigPatch, content_type = "application/json"),
    responses(
        (status = 200, body = ConnectorInfo),
        (status = 400, description = "A bad request; the message says what to fix", body = ErrorMessage),
        (status = 404, description = "No such connector", body = ErrorMessage),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorMessage),
    )
)]
pub async fn patch_config(
    State(s): State<RestState>,
    PathParams(name): PathParams<String>,
    body: JsonBody,
) -> Reply {
    let map = body.object("the config keys to change, null to remove one")?;
    let mut patch: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (k, v) in map {
        let v = match v {
            JsonValue::Null => None,
            JsonValue::String(s) => Some(s),
            JsonValue::Number(_) | JsonValue::Bool(_) => Some(v.to_string()),
            other => {
                return Err(ApiError::bad_request(format!(
                    "connector {name}: the value of {k} must be a string, number, boolean or null, not {}",
                    json_kind(&other)
                )));
            }
        };
        patch.insert(k, v);
    }
    match patch.get("name") {
        Some(Some(given)) if *given != name => {
            return Err(ApiError::bad_request(format!(
                "Connector name configuration ({given}) doesn't match connector name in the URL ({name})"
            )));
        }
        Some(None) => {
            return Err(ApiError::bad_request(format!(
                "connector {name}: the name cannot be removed from its config"
            )));
        }
        _ => {}
    }
    let info = s
        .blocking(move |h| h.patch_connector_config(&name, &patch))
        .await?;
    Ok(Json(ConnectorInfo::from(&info)).into_response())
}

/// `GET /connectors/{name}/status`
#[utoipa::path(
    get,
    path = "/connectors/{name}/status",
    tag = "connectors",
    summary = "A connector's and its tasks' states",
    params(
        ("name" = String, Path, description = "The connector's name"),
    ),
    responses(
        (status = 200, body = ConnectorStateInfo),
        (status = 404, description = "No such connector", body = ErrorMessage),
    )
)]
pub async fn status(State(s): State<RestState>, PathParams(name): PathParams<String>) -> Reply {
    let status = s.blocking(move |h| h.status(&name)).await?;
    Ok(Json(ConnectorStateInfo::from(&status)).into_response())
}

/// `POST /connectors/{name}/restart`: without `includeTasks` and `onlyFailed` (or both
/// false) the connector instance alone, 204; with either, KIP-745's restart, 202 with
/// the status showing what restarts as `RESTARTING`.
#[utoipa::path(
    post,
    path = "/connectors/{name}/restart",
    tag = "connectors",
    summary = "Restart a connector; with includeTasks/onlyFailed, KIP-745's restart",
    params(
        ("name" = String, Path, description = "The connector's name"),
        ("includeTasks" = Option<bool>, Query, description = "Restart its tasks too"),
        ("onlyFailed" = Option<bool>, Query, description = "Only what failed"),
    ),
    responses(
        (status = 204, description = "The connector instance restarted"),
        (status = 202, description = "What restarts, shown RESTARTING", body = ConnectorStateInfo),
        (status = 400, description = "A bad request; the message says what to fix", body = ErrorMessage),
        (status = 404, description = "No such connector", body = ErrorMessage),
    )
)]
pub async fn restart_connector(
    State(s): State<RestState>,
    PathParams(name): PathParams<String>,
    q: Query,
) -> Reply {
    let include_tasks = q.flag("includeTasks", false)?;
    let only_failed = q.flag("onlyFailed", false)?;
    let plan = s
        .blocking(move |h| h.restart_connector(&name, include_tasks, only_failed))
        .await?;
    if !include_tasks && !only_failed {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok((StatusCode::ACCEPTED, Json(ConnectorStateInfo::from(&plan))).into_response())
}

/// `PUT /connectors/{name}/pause`: 202.
#[utoipa::path(
    put,
    path = "/connectors/{name}/pause",
    tag = "connectors",
    summary = "Pause a connector and its tasks",
    params(
        ("name" = String, Path, description = "The connector's name"),
    ),
    responses(
        (status = 202, description = "Pausing"),
        (status = 404, description = "No such connector", body = ErrorMessage),
    )
)]
pub async fn pause(State(s): State<RestState>, PathParams(name): PathParams<String>) -> Reply {
    s.blocking(move |h| h.pause(&name)).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `PUT /connectors/{name}/resume`: 202 (from PAUSED or STOPPED).
#[utoipa::path(
    put,
    path = "/connectors/{name}/resume",
    tag = "connectors",
    summary = "Resume a paused or stopped connector",
    params(
        ("name" = String, Path, description = "The connector's name"),
    ),
    responses(
        (status = 202, description = "Resuming"),
        (status = 404, description = "No such connector", body = ErrorMessage),
    )
)]
pub async fn resume(State(s): State<RestState>, PathParams(name): PathParams<String>) -> Reply {
    s.blocking(move |h| h.resume(&name)).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `PUT /connectors/{name}/stop` (KIP-875): 204.
#[utoipa::path(
    put,
    path = "/connectors/{name}/stop",
    tag = "connectors",
    summary = "Stop a connector and its tasks, keeping its config (KIP-875)",
    params(
        ("name" = String, Path, description = "The connector's name"),
    ),
    responses(
        (status = 204, description = "Stopped"),
        (status = 404, description = "No such connector", body = ErrorMessage),
    )
)]
pub async fn stop(State(s): State<RestState>, PathParams(name): PathParams<String>) -> Reply {
    s.blocking(move |h| h.stop(&name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /connectors/{name}/tasks`: each task's id and config.
#[utoipa::path(
    get,
    path = "/connectors/{name}/tasks",
    tag = "connectors",
    summary = "A connector's tasks and their configs",
    params(
        ("name" = String, Path, description = "The connector's name"),
    ),
    responses(
        (status = 200, body = Vec<TaskInfo>),
        (status = 404, description = "No such connector", body = ErrorMessage),
    )
)]
pub async fn tasks(State(s): State<RestState>, PathParams(name): PathParams<String>) -> Reply {
    let connector = name.clone();
    let configs = s.blocking(move |h| h.task_configs(&connector)).await?;
    let tasks: Vec<TaskInfo> = configs
        .into_iter()
        .enumerate()
        .map(|(task, config)| TaskInfo {
            id: TaskId {
                connector: name.clone(),
                task,
            },
            config,
        })
        .collect();
    Ok(Json(tasks).into_response())
}

/// `POST /connectors/{name}/tasks` (internal, between workers of a cluster): the worker
/// running a connector sends the task configs it generated; the leader stores them. 204.
#[utoipa::path(
    post,
    path = "/connectors/{name}/tasks",
    tag = "internal",
    summary = "Store a connector's task configs (between workers of a cluster)",
    params(
        ("name" = String, Path, description = "The connector's name"),
    ),
    request_body(content = Vec<BTreeMap<String, String>>, description = "The task configs, in task order"),
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "Not a list of string maps", body = ErrorMessage),
        (status = 404, description = "No such connector", body = ErrorMessage),
        (status = 409, description = "No leader known (a rebalance is under way)", body = ErrorMessage),
    )
)]
pub async fn put_tasks(
    State(s): State<RestState>,
    PathParams(name): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Reply {
    let tasks: Vec<Props> = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be a JSON array of task configs (objects of strings): {e}"
        ))
    })?;
    if s.herder().cluster().is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "this worker is standalone: task configs are written by the worker itself",
        ));
    }
    s.blocking(move |h| h.put_task_configs(&name, tasks))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A task number from the path; anything else is no such task (404, as Kafka's
/// integer path parameter answers).
fn task_number(name: &str, task: &str) -> Result<usize, ApiError> {
    task.parse().map_err(|_| {
        ApiError::not_found(format!(
            "connector {name} has no task {task:?}: tasks are numbered from 0 (GET /connectors/{name}/tasks lists them)"
        ))
    })
}

/// `GET /connectors/{name}/tasks/{task}/status`
#[utoipa::path(
    get,
    path = "/connectors/{name}/tasks/{task}/status",
    tag = "connectors",
    summary = "One task's state",
    params(
        ("name" = String, Path, description = "The connector's name"),
        ("task" = u32, Path, description = "The task number, from 0"),
    ),
    responses(
        (status = 200, body = TaskState),
        (status = 404, description = "No such connector or task", body = ErrorMessage),
    )
)]
pub async fn task_status(
    State(s): State<RestState>,
    PathParams((name, task)): PathParams<(String, String)>,
) -> Reply {
    let task = task_number(&name, &task)?;
    let status = s.blocking(move |h| h.task_status(&name, task)).await?;
    Ok(Json(TaskState::new(task, &status)).into_response())
}

/// `POST /connectors/{name}/tasks/{task}/restart`: 204.
#[utoipa::path(
    post,
    path = "/connectors/{name}/tasks/{task}/restart",
    tag = "connectors",
    summary = "Restart one task",
    params(
        ("name" = String, Path, description = "The connector's name"),
        ("task" = u32, Path, description = "The task number, from 0"),
    ),
    responses(
        (status = 204, description = "Restarted"),
        (status = 404, description = "No such connector or task", body = ErrorMessage),
    )
)]
pub async fn restart_task(
    State(s): State<RestState>,
    PathParams((name, task)): PathParams<(String, String)>,
) -> Reply {
    let task = task_number(&name, &task)?;
    s.blocking(move |h| h.restart_task(&name, task)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /connectors/{name}/offsets` (KIP-875).
#[utoipa::path(
    get,
    path = "/connectors/{name}/offsets",
    tag = "connectors",
    summary = "A connector's offsets (KIP-875)",
    params(
        ("name" = String, Path, description = "The connector's name"),
    ),
    responses(
        (status = 200, body = ConnectorOffsets),
        (status = 404, description = "No such connector", body = ErrorMessage),
    )
)]
pub async fn offsets(State(s): State<RestState>, PathParams(name): PathParams<String>) -> Reply {
    let pairs = s.blocking(move |h| h.offsets(&name)).await?;
    let offsets = pairs
        .into_iter()
        .map(|(partition, offset)| ConnectorOffset { partition, offset })
        .collect();
    Ok(Json(ConnectorOffsets { offsets }).into_response())
}

/// `PATCH /connectors/{name}/offsets` (KIP-875) with `{"offsets": [{"partition":
/// {...}, "offset": {...} | null}]}`, on a STOPPED connector: 200 with a message; 400 if
/// the connector is not stopped or an entry is malformed.
#[utoipa::path(
    patch,
    path = "/connectors/{name}/offsets",
    tag = "connectors",
    summary = "Alter a stopped connector's offsets (KIP-875)",
    params(
        ("name" = String, Path, description = "The connector's name"),
    ),
    request_body(content = AlterOffsetsRequest, content_type = "application/json"),
    responses(
        (status = 200, body = Message),
        (status = 400, description = "The connector is not STOPPED, or an entry is malformed", body = ErrorMessage),
        (status = 404, description = "No such connector", body = ErrorMessage),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorMessage),
    )
)]
pub async fn alter_offsets(
    State(s): State<RestState>,
    PathParams(name): PathParams<String>,
    body: JsonBody,
) -> Reply {
    let request = body.object(r#"{"offsets": [{"partition": {...}, "offset": {...}}]}"#)?;
    let entries = match request.get("offsets") {
        None | Some(JsonValue::Null) => Vec::new(),
        Some(JsonValue::Array(list)) => list
            .iter()
            .map(|entry| offset_entry(&name, entry))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "connector {name}: \"offsets\" must be a list of {{\"partition\", \"offset\"}} objects, not {}",
                json_kind(other)
            )));
        }
    };
    s.blocking(move |h| h.alter_offsets(&name, entries)).await?;
    Ok(Json(Message {
        message: "The offsets for this connector have been altered successfully".to_owned(),
    })
    .into_response())
}

/// One `{"partition": {...}, "offset": {...} | null}` of an alter-offsets request.
fn offset_entry(name: &str, entry: &JsonValue) -> Result<(JsonValue, Option<JsonValue>), ApiError> {
    let Some(obj) = entry.as_object() else {
        return Err(ApiError::bad_request(format!(
            "connector {name}: each entry of \"offsets\" must be an object {{\"partition\": {{...}}, \"offset\": {{...}}}}, not {}",
            json_kind(entry)
        )));
    };
    let partition = match obj.get("partition") {
        Some(p) if !p.is_null() => p.clone(),
        _ => {
            return Err(ApiError::bad_request(format!(
                "connector {name}: an entry of \"offsets\" has no \"partition\"; give the partition whose offset to change"
            )));
        }
    };
    let offset = obj.get("offset").filter(|o| !o.is_null()).cloned();
    Ok((partition, offset))
}

/// `DELETE /connectors/{name}/offsets` (KIP-875), on a STOPPED connector: 200 with a
/// message; 400 if the connector is not stopped.
#[utoipa::path(
    delete,
    path = "/connectors/{name}/offsets",
    tag = "connectors",
    summary = "Reset a stopped connector's offsets (KIP-875)",
    params(
        ("name" = String, Path, description = "The connector's name"),
    ),
    responses(
        (status = 200, body = Message),
        (status = 400, description = "The connector is not STOPPED", body = ErrorMessage),
        (status = 404, description = "No such connector", body = ErrorMessage),
    )
)]
pub async fn reset_offsets(
    State(s): State<RestState>,
    PathParams(name): PathParams<String>,
) -> Reply {
    s.blocking(move |h| h.reset_offsets(&name)).await?;
    Ok(Json(Message {
        message: "The offsets for this connector have been reset successfully".to_owned(),
    })
    .into_response())
}

/// `GET /connectors/{name}/topics` (KIP-558): `{"NAME": {"topics": [...]}}`; 403 with
/// `topic.tracking.enable=false`.
#[utoipa::path(
    get,
    path = "/connectors/{name}/topics",
    tag = "connectors",
    summary = "The topics a connector's tasks used (KIP-558)",
    params(
        ("name" = String, Path, description = "The connector's name"),
    ),
    responses(
        (status = 200, body = ActiveTopicsInfo),
        (status = 403, description = "topic.tracking.enable=false", body = ErrorMessage),
        (status = 404, description = "No such connector", body = ErrorMessage),
    )
)]
pub async fn topics(State(s): State<RestState>, PathParams(name): PathParams<String>) -> Reply {
    let connector = name.clone();
    let topics = s.blocking(move |h| h.active_topics(&connector)).await?;
    let mut out = BTreeMap::new();
    out.insert(name, ActiveTopics { topics });
    Ok(Json(out).into_response())
}

/// `PUT /connectors/{name}/topics/reset`: 202; 403 when tracking or its reset is off.
#[utoipa::path(
    put,
    path = "/connectors/{name}/topics/reset",
    tag = "connectors",
    summary = "Forget a connector's active topics (KIP-558)",
    params(
        ("name" = String, Path, description = "The connector's name"),
    ),
    responses(
        (status = 202, description = "Reset"),
        (status = 403, description = "Topic tracking or its reset is disabled", body = ErrorMessage),
        (status = 404, description = "No such connector", body = ErrorMessage),
    )
)]
pub async fn reset_topics(
    State(s): State<RestState>,
    PathParams(name): PathParams<String>,
) -> Reply {
    s.blocking(move |h| h.reset_active_topics(&name)).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

// ---- connector plugins ---------------------------------------------------------------

/// `GET /connector-plugins`: the installed connectors; with `?connectorsOnly=false`
/// also the built-in converters, header converters, transformations and predicates.
#[utoipa::path(
    get,
    path = "/connector-plugins",
    tag = "plugins",
    summary = "The installed connector plugins; with connectorsOnly=false also converters, transformations and predicates",
    params(
        ("connectorsOnly" = Option<bool>, Query, description = "false lists converters too"),
    ),
    responses(
        (status = 200, body = Vec<PluginInfo>),
        (status = 400, description = "A bad request; the message says what to fix", body = ErrorMessage),
    )
)]
pub async fn list_plugins(State(s): State<RestState>, q: Query) -> Reply {
    let connectors_only = q.flag("connectorsOnly", true)?;
    let registry = s.herder().plugins().snapshot();
    let mut plugins: Vec<PluginInfo> = registry
        .connectors()
        .map(|c| PluginInfo {
            class: c.name().to_owned(),
            kind: super::model::kind_name(Some(c.kind())),
            version: Some(c.version().to_owned()).filter(|v| !v.is_empty() && v != "undefined"),
        })
        .collect();
    if !connectors_only {
        let builtin = |class: &str, kind| PluginInfo {
            class: class.to_owned(),
            kind,
            version: Some(super::VERSION.to_owned()),
        };
        plugins.extend(convert::converter_classes().map(|c| builtin(c, "converter")));
        plugins.extend(convert::header_converter_classes().map(|c| builtin(c, "header_converter")));
        // Built-ins report the worker's version, plugin transforms their own.
        plugins.extend(transform::catalog().into_iter().map(|t| PluginInfo {
            class: t.class.to_owned(),
            kind: t.kind.as_str(),
            version: t.version.or_else(|| Some(super::VERSION.to_owned())),
        }));
    }
    Ok(Json(plugins).into_response())
}

/// `GET /connector-plugins/{plugin}/config`: the plugin's keys, then the worker's
/// connector keys it does not define. 404 for a name that is no connector plugin.
#[utoipa::path(
    get,
    path = "/connector-plugins/{plugin}/config",
    tag = "plugins",
    summary = "A connector plugin's, transformation's or predicate's config keys",
    params(
        ("plugin" = String, Path, description = "Class name or alias"),
    ),
    responses(
        (status = 200, body = Vec<ConfigKeyInfo>),
        (status = 404, description = "No such connector plugin", body = ErrorMessage),
    )
)]
pub async fn plugin_config(
    State(s): State<RestState>,
    PathParams(plugin): PathParams<String>,
) -> Reply {
    let name = plugin.clone();
    let keys = s
        .blocking(move |h| match h.plugin_config_keys(&name) {
            Ok(keys) => Ok(Some(keys)),
            // A transformation or predicate (built-in or a plugin's) describes its own keys.
            Err(WorkerError::Plugin(_)) => Ok(transform::lookup(&name).map(|t| t.config)),
            Err(e) => Err(e),
        })
        .await?;
    let Some(keys) = keys else {
        return Err(ApiError::not_found(format!(
            "Unknown plugin {plugin}: no installed connector plugin, transformation or predicate \
             has that name or alias (GET /connector-plugins?connectorsOnly=false lists them; \
             converters do not describe their keys here)"
        )));
    };
    let keys: Vec<ConfigKeyInfo> = keys.iter().map(ConfigKeyInfo::from).collect();
    Ok(Json(keys).into_response())
}

/// `PUT /connector-plugins/{plugin}/config/validate` with a connector config: 200 with
/// every key's definition, value and errors (errors are in the body, not a 400). 400 if
/// the config has no `connector.class`, one of another plugin, or one not installed
/// (Kafka: 500).
#[utoipa::path(
    put,
    path = "/connector-plugins/{plugin}/config/validate",
    tag = "plugins",
    summary = "Validate a connector config; errors are in the body",
    params(
        ("plugin" = String, Path, description = "Class name or alias"),
    ),
    request_body(content = ConnectorConfig, content_type = "application/json"),
    responses(
        (status = 200, body = ConfigInfos),
        (status = 400, description = "A bad request; the message says what to fix", body = ErrorMessage),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorMessage),
    )
)]
pub async fn validate(
    State(s): State<RestState>,
    PathParams(plugin): PathParams<String>,
    body: JsonBody,
) -> Reply {
    let map = body.object("the connector config to validate")?;
    let config = config_from_json(&map)?;
    let Some(class) = config
        .get("connector.class")
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
    else {
        return Err(ApiError::bad_request(format!(
            "Connector config {} contains no connector type: set connector.class",
            JsonValue::Object(map)
        )));
    };
    if !same_plugin(&class, &plugin) {
        return Err(ApiError::bad_request(format!(
            "Included connector type {class} does not match request type {plugin}"
        )));
    }
    let validation = s.blocking(move |h| h.validate(&config)).await?;
    Ok(Json(ConfigInfos::from(&validation)).into_response())
}

/// Kafka's check that a config's class and the plugin in the path agree: either ends
/// with the other, once a trailing `Connector` is dropped from both.
fn same_plugin(class: &str, plugin: &str) -> bool {
    let norm = |s: &str| s.strip_suffix("Connector").unwrap_or(s).to_owned();
    let (c, p) = (norm(class), norm(plugin));
    c.ends_with(&p) || p.ends_with(&c)
}

// ---- fallbacks -----------------------------------------------------------------------

/// No such path: 404 in Kafka's shape.
pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "HTTP 404 Not Found: no endpoint {method} {}; the API is Kafka Connect's \
         (GET /connectors, GET /connector-plugins, ...)",
        uri.path()
    ))
}

/// A path with no handler for this method: 405 in Kafka's shape.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "HTTP 405 Method Not Allowed: {method} is not allowed on {}",
            uri.path()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_match_as_kafka_compares_them() {
        let full = "org.apache.kafka.connect.file.FileStreamSourceConnector";
        assert!(same_plugin(full, "FileStreamSource"));
        assert!(same_plugin(full, "FileStreamSourceConnector"));
        assert!(same_plugin(full, full));
        assert!(same_plugin("FileStreamSource", full));
        assert!(!same_plugin(full, "FileStreamSink"));
    }

    #[test]
    fn the_name_goes_into_the_config() {
        let config = with_name("c", Props::new()).unwrap();
        assert_eq!(config["name"], "c");
        let mismatch = with_name("c", [("name".to_string(), "d".to_string())].into()).unwrap_err();
        assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
        assert!(mismatch.message.contains("(d)") && mismatch.message.contains("(c)"));
    }

    #[test]
    fn task_numbers() {
        assert_eq!(task_number("c", "2").unwrap(), 2);
        for bad in ["-1", "x", "", "1.0"] {
            assert_eq!(
                task_number("c", bad).unwrap_err().status,
                StatusCode::NOT_FOUND
            );
        }
    }
}
