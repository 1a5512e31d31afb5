//! Errors as the REST API answers them: Kafka Connect's `{"error_code": N, "message":
//! "..."}` with the HTTP status in both places. [`ApiError::from`] a [`WorkerError`] is
//! the one place where the worker's errors become statuses.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::model::ErrorMessage;
use crate::plugin::PluginError;
use crate::worker::WorkerError;

/// A refused or failed request.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

/// Kafka Connect's mapping (`ConnectExceptionMapper`): not found → 404, already exists →
/// 409, a bad config → 400, anything else → 500. One deviation: a `connector.class` that
/// names no installed plugin is a bad config here (400), where Kafka answers 500.
impl From<WorkerError> for ApiError {
    fn from(e: WorkerError) -> ApiError {
        let status = match &e {
            WorkerError::UnknownConnector(_) | WorkerError::UnknownTask(..) => {
                StatusCode::NOT_FOUND
            }
            WorkerError::ConnectorExists(_) => StatusCode::CONFLICT,
            WorkerError::Refused(_) => StatusCode::BAD_REQUEST,
            WorkerError::Forbidden(_) => StatusCode::FORBIDDEN,
            WorkerError::ConnectorConfig { .. }
            | WorkerError::Plugin(
                PluginError::UnknownConnector { .. } | PluginError::AmbiguousConnector { .. },
            ) => StatusCode::BAD_REQUEST,
            WorkerError::Config { .. }
            | WorkerError::InternalTopic { .. }
            | WorkerError::Io { .. }
            | WorkerError::Client(_)
            | WorkerError::Plugin(_)
            | WorkerError::Broker(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), error = %self.message, "REST request failed");
        }
        let body = ErrorMessage {
            error_code: self.status.as_u16(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_errors_map_to_kafka_statuses() {
        let status = |e: WorkerError| ApiError::from(e).status;
        assert_eq!(
            status(WorkerError::UnknownConnector("c".into())),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(WorkerError::UnknownTask("c".into(), 3)),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(WorkerError::ConnectorExists("c".into())),
            StatusCode::CONFLICT
        );
        assert_eq!(
            status(WorkerError::ConnectorConfig {
                connector: "c".into(),
                key: "tasks.max".into(),
                reason: "bad".into()
            }),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(WorkerError::Plugin(PluginError::UnknownConnector {
                name: "Nope".into()
            })),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(WorkerError::InternalTopic {
                topic: "connect-configs".into(),
                reason: "x".into()
            }),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
