//! The JSON bodies of the REST API: Kafka Connect's entities (`rest/entities/*.java`),
//! field for field. These types are the wire contract, kept apart from the herder's
//! (`crate::worker::herder`): a field renamed here breaks every client, so each is
//! built from the herder's types by a conversion in this file and nowhere else.
//!
//! Tributary adds two fields to a connector's or task's state, and only when there is
//! something to say, so Kafka's shape is unchanged for clients that do not know them:
//! `restarts` (automatic restarts since the task last ran cleanly, when more than zero)
//! and `next_restart_ms` (when the next one is due, ms since the epoch).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value as Json;
use tributary_plugin_abi::config::ConfigKeyInfo as KeyDef;
use utoipa::ToSchema;

use crate::plugin::ConnectorType;
use crate::worker::herder::{self, Validation};
use crate::worker::task::StatusView;

/// `GET /` (Kafka's `ServerInfo`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ServerInfo {
    pub version: String,
    pub commit: String,
    pub kafka_cluster_id: String,
}

/// `GET /health` (Kafka's `WorkerStatus`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WorkerStatus {
    pub status: &'static str,
    pub message: String,
}

/// Every error (Kafka's `ErrorMessage`); `error_code` is the HTTP status.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorMessage {
    pub error_code: u16,
    pub message: String,
}

/// A connector (Kafka's `ConnectorInfo`): `GET /connectors/{name}`, create and update
/// answers, `?expand=info`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConnectorInfo {
    pub name: String,
    pub config: BTreeMap<String, String>,
    pub tasks: Vec<TaskId>,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// A task's identity (Kafka's `ConnectorTaskId`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TaskId {
    pub connector: String,
    pub task: usize,
}

/// One connector of `GET /connectors?expand=...`: the parts asked for.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct ExpandedConnector {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ConnectorStateInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<ConnectorInfo>,
}

/// A connector's status (Kafka's `ConnectorStateInfo`): `GET .../status`,
/// `?expand=status`, and the 202 answer of a restart with `includeTasks`/`onlyFailed`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConnectorStateInfo {
    pub name: String,
    pub connector: ConnectorState,
    pub tasks: Vec<TaskState>,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConnectorState {
    pub state: &'static str,
    pub worker_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    #[serde(flatten)]
    pub restarts: Restarts,
}

/// A task's status (Kafka's `TaskState`): in a connector's status and
/// `GET .../tasks/{id}/status`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TaskState {
    pub id: usize,
    pub state: &'static str,
    pub worker_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    #[serde(flatten)]
    pub restarts: Restarts,
}

/// Tributary's automatic restarts, present only when non-empty (see the module doc).
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct Restarts {
    #[serde(skip_serializing_if = "is_zero")]
    pub restarts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_restart_ms: Option<i64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One of `GET /connectors/{name}/tasks` (Kafka's `TaskInfo`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TaskInfo {
    pub id: TaskId,
    pub config: BTreeMap<String, String>,
}

/// One of `GET /connector-plugins` (Kafka's `PluginInfo`); no `version` when unknown.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PluginInfo {
    pub class: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A config key's definition (Kafka's `ConfigKeyInfo`; the order in its group is
/// serialized as `order`, as Kafka does).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConfigKeyInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub required: bool,
    pub default_value: Option<String>,
    pub importance: &'static str,
    pub documentation: String,
    pub group: Option<String>,
    pub order: i32,
    pub width: &'static str,
    pub display_name: String,
    pub dependents: Vec<String>,
}

/// `PUT /connector-plugins/{plugin}/config/validate` (Kafka's `ConfigInfos`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConfigInfos {
    pub name: String,
    pub error_count: usize,
    pub groups: Vec<String>,
    pub configs: Vec<ConfigInfo>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConfigInfo {
    pub definition: Option<ConfigKeyInfo>,
    pub value: ConfigValueInfo,
}

/// A key's validated value (Kafka's `ConfigValueInfo`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConfigValueInfo {
    pub name: String,
    pub value: Option<String>,
    pub recommended_values: Vec<String>,
    pub errors: Vec<String>,
    pub visible: bool,
}

/// `GET /connectors/{name}/offsets` (KIP-875's `ConnectorOffsets`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConnectorOffsets {
    pub offsets: Vec<ConnectorOffset>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConnectorOffset {
    /// A source's own partition map (e.g. `{"filename": "in.txt"}`), or a sink's
    /// `{"kafka_topic": "t", "kafka_partition": 0}`.
    #[schema(value_type = Object)]
    pub partition: Json,
    /// A source's own offset map (e.g. `{"position": 30}`), or a sink's
    /// `{"kafka_offset": 5}`; in a `PATCH`, `null` removes the partition's offset.
    #[schema(value_type = Option<Object>)]
    pub offset: Json,
}

/// A connector's active topics (KIP-558's `ActiveTopicsInfo`), under its name:
/// `{"NAME": {"topics": [...]}}`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ActiveTopics {
    pub topics: Vec<String>,
}

/// A plain answer (Kafka's `Message`), e.g. after altering offsets.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Message {
    pub message: String,
}

/// `source`, `sink`, or `unknown` when the plugin is not installed.
pub fn kind_name(kind: Option<ConnectorType>) -> &'static str {
    match kind {
        Some(ConnectorType::Source) => "source",
        Some(ConnectorType::Sink) => "sink",
        None => "unknown",
    }
}

impl From<&herder::ConnectorInfo> for ConnectorInfo {
    fn from(info: &herder::ConnectorInfo) -> ConnectorInfo {
        ConnectorInfo {
            name: info.name.clone(),
            config: info.config.clone(),
            tasks: (0..info.tasks)
                .map(|task| TaskId {
                    connector: info.name.clone(),
                    task,
                })
                .collect(),
            kind: kind_name(info.kind),
        }
    }
}

impl From<&StatusView> for Restarts {
    fn from(s: &StatusView) -> Restarts {
        Restarts {
            restarts: s.restarts,
            next_restart_ms: s.next_restart_ms,
        }
    }
}

/// Kafka omits an empty trace (`@JsonInclude(NON_EMPTY)`).
fn trace(s: &StatusView) -> Option<String> {
    s.trace.clone().filter(|t| !t.is_empty())
}

impl TaskState {
    pub fn new(id: usize, s: &StatusView) -> TaskState {
        TaskState {
            id,
            state: s.state.as_str(),
            worker_id: s.worker_id.clone(),
            trace: trace(s),
            restarts: s.into(),
        }
    }
}

impl From<&herder::ConnectorStatus> for ConnectorStateInfo {
    fn from(s: &herder::ConnectorStatus) -> ConnectorStateInfo {
        ConnectorStateInfo {
            name: s.name.clone(),
            connector: ConnectorState {
                state: s.connector.state.as_str(),
                worker_id: s.connector.worker_id.clone(),
                trace: trace(&s.connector),
                restarts: (&s.connector).into(),
            },
            tasks: s
                .tasks
                .iter()
                .map(|(id, t)| TaskState::new(*id, t))
                .collect(),
            kind: kind_name(s.kind),
        }
    }
}

impl From<&KeyDef> for ConfigKeyInfo {
    fn from(d: &KeyDef) -> ConfigKeyInfo {
        ConfigKeyInfo {
            name: d.name.clone(),
            kind: d.kind.name(),
            required: d.required(),
            default_value: d.default.clone(),
            importance: d.importance.name(),
            documentation: d.documentation.clone(),
            group: d.group.clone(),
            order: d.order_in_group,
            width: d.width.name(),
            // Kafka shows the key's name when no display name was given.
            display_name: if d.display_name.is_empty() {
                d.name.clone()
            } else {
                d.display_name.clone()
            },
            dependents: Vec::new(),
        }
    }
}

impl From<&Validation> for ConfigInfos {
    fn from(v: &Validation) -> ConfigInfos {
        ConfigInfos {
            name: v.class.clone(),
            error_count: v.error_count(),
            groups: v.groups.clone(),
            configs: v
                .keys
                .iter()
                .map(|k| ConfigInfo {
                    definition: k.definition.as_ref().map(ConfigKeyInfo::from),
                    value: ConfigValueInfo {
                        name: k.value.name.clone(),
                        value: k.value.value.clone(),
                        recommended_values: Vec::new(),
                        errors: k.value.errors.clone(),
                        visible: true,
                    },
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::store::State;
    use serde_json::json;

    fn view(state: State, trace: Option<&str>, restarts: u32, next: Option<i64>) -> StatusView {
        StatusView {
            state,
            trace: trace.map(str::to_owned),
            worker_id: "127.0.0.1:8083".into(),
            restarts,
            next_restart_ms: next,
        }
    }

    /// Kafka's shape exactly when nothing failed; the trace and Tributary's restart
    /// fields only when there is something in them.
    #[test]
    fn status_shape() {
        let status = herder::ConnectorStatus {
            name: "c".into(),
            connector: view(State::Running, Some(""), 0, None),
            tasks: vec![
                (0, view(State::Running, None, 0, None)),
                (
                    1,
                    view(State::Failed, Some("boom"), 2, Some(1_700_000_000_000)),
                ),
            ],
            kind: Some(ConnectorType::Sink),
        };
        let json = serde_json::to_value(ConnectorStateInfo::from(&status)).unwrap();
        assert_eq!(
            json,
            json!({
                "name": "c",
                "connector": {"state": "RUNNING", "worker_id": "127.0.0.1:8083"},
                "tasks": [
                    {"id": 0, "state": "RUNNING", "worker_id": "127.0.0.1:8083"},
                    {"id": 1, "state": "FAILED", "worker_id": "127.0.0.1:8083",
                     "trace": "boom", "restarts": 2, "next_restart_ms": 1_700_000_000_000_i64}
                ],
                "type": "sink"
            })
        );
    }

    #[test]
    fn connector_info_shape() {
        let info = herder::ConnectorInfo {
            name: "c".into(),
            config: [("connector.class".to_string(), "X".to_string())].into(),
            tasks: 2,
            kind: None,
        };
        assert_eq!(
            serde_json::to_value(ConnectorInfo::from(&info)).unwrap(),
            json!({
                "name": "c",
                "config": {"connector.class": "X"},
                "tasks": [{"connector": "c", "task": 0}, {"connector": "c", "task": 1}],
                "type": "unknown"
            })
        );
    }

    #[test]
    fn config_key_shape() {
        let key = herder::connector_keys(ConnectorType::Source)
            .into_iter()
            .find(|k| k.info.name == "tasks.max")
            .unwrap();
        let json = serde_json::to_value(ConfigKeyInfo::from(&key.info)).unwrap();
        let fields: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = vec![
            "name",
            "type",
            "required",
            "default_value",
            "importance",
            "documentation",
            "group",
            "order",
            "width",
            "display_name",
            "dependents",
        ];
        expected.sort_unstable();
        let mut fields = fields;
        fields.sort_unstable();
        assert_eq!(fields, expected);
        assert_eq!(json["type"], "INT");
        assert_eq!(json["default_value"], "1");
        assert_eq!(json["required"], false);
        assert_eq!(json["group"], "Common");
    }
}

// ---- request bodies (the handlers read them as JSON and check them by hand, so that
// every refusal names the field; these types describe them in the OpenAPI document) ----

/// `POST /connectors` (Kafka's `CreateConnectorRequest`).
#[derive(Clone, Debug, ToSchema)]
pub struct CreateConnectorRequest {
    pub name: String,
    pub config: ConnectorConfig,
    /// `RUNNING` (the default), `PAUSED` or `STOPPED`, in any case (KIP-980).
    #[schema(example = "RUNNING")]
    pub initial_state: Option<String>,
}

/// A connector's config: key → value (numbers and booleans are taken as their text).
#[derive(Clone, Debug, ToSchema)]
pub struct ConnectorConfig(pub BTreeMap<String, String>);

/// `PATCH /connectors/{name}/config` (KIP-477): key → new value, `null` removes the key.
#[derive(Clone, Debug, ToSchema)]
pub struct ConfigPatch(pub BTreeMap<String, Option<String>>);

/// `PATCH /connectors/{name}/offsets` (KIP-875).
#[derive(Clone, Debug, ToSchema)]
pub struct AlterOffsetsRequest {
    pub offsets: Vec<ConnectorOffset>,
}

/// `PUT /admin/loggers/{logger}`.
#[derive(Clone, Debug, ToSchema)]
pub struct LoggerLevelRequest {
    /// TRACE, DEBUG, INFO, WARN, ERROR, FATAL or OFF, in any case.
    #[schema(example = "DEBUG")]
    pub level: String,
}

/// `GET /connectors?expand=...`: connector name → the parts asked for.
#[derive(Clone, Debug, ToSchema)]
pub struct ExpandedConnectors(pub BTreeMap<String, ExpandedConnector>);

/// `GET /connectors/{name}/topics`: the connector's name → its active topics.
#[derive(Clone, Debug, ToSchema)]
pub struct ActiveTopicsInfo(pub BTreeMap<String, ActiveTopics>);
