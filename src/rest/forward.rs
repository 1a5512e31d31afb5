//! Distributed mode: requests that must run on another worker are forwarded there, as
//! Kafka Connect's `HerderRequestHandler` does, so a call to any worker has the same
//! effect.
//!
//! - Writes that the leader makes (create, config PUT/PATCH, delete, stop, connector
//!   restart, offsets PATCH/DELETE, and the internal `POST /connectors/NAME/tasks`) go to
//!   the leader's URL from the last assignment.
//! - A task restart goes to the worker running the task (its status's `worker_id`).
//! - Everything else (reads, pause, resume, topics reset) is answered here.
//!
//! Kafka's hop rule: a user request (no `forward` parameter) is sent on with
//! `forward=true`; one arriving with `forward=true` may be sent on once more with
//! `forward=false`; one arriving with `forward=false` that would need another hop is
//! answered 409, as is a write while no leader is known (a rebalance is under way). Only
//! the `Authorization` header is carried over; the answer (status, body, `Location`) comes
//! back unchanged; a worker that cannot be reached is a 500 naming it.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, LOCATION};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use super::RestState;
use super::error::ApiError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a request must run.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Here,
    Leader,
    /// The worker running this task.
    TaskOwner(String, usize),
}

fn classify(method: &Method, path: &str) -> Target {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["connectors"]) => Target::Leader,
        ("PUT" | "PATCH", ["connectors", _, "config"]) => Target::Leader,
        ("DELETE", ["connectors", _]) => Target::Leader,
        ("PUT", ["connectors", _, "stop"]) => Target::Leader,
        ("POST", ["connectors", _, "restart"]) => Target::Leader,
        ("PATCH" | "DELETE", ["connectors", _, "offsets"]) => Target::Leader,
        ("POST", ["connectors", _, "tasks"]) => Target::Leader,
        ("POST", ["connectors", name, "tasks", task, "restart"]) => match task.parse() {
            Ok(t) => Target::TaskOwner(super::extract::percent_decode_segment(name), t),
            Err(_) => Target::Here,
        },
        _ => Target::Here,
    }
}

/// A path segment as a URL carries it.
pub fn encode_segment(s: &str) -> String {
    super::extract::percent_encode_segment(s)
}

fn conflict(message: &str) -> Response {
    ApiError::new(StatusCode::CONFLICT, message).into_response()
}

/// The middleware: run here, or forward.
pub async fn forward(State(s): State<RestState>, req: Request, next: Next) -> Response {
    let Some(view) = s.herder().cluster().cloned() else {
        return next.run(req).await;
    };
    let target = match classify(req.method(), req.uri().path()) {
        Target::Here => return next.run(req).await,
        Target::Leader => {
            if view.is_leader() {
                return next.run(req).await;
            }
            match view.leader_url() {
                Some(url) if url != view.url => url,
                _ => {
                    return conflict(
                        "Cannot complete request momentarily due to no known leader URL, likely because a rebalance was underway.",
                    );
                }
            }
        }
        Target::TaskOwner(name, task) => {
            if view.owns(&name, Some(task)) {
                return next.run(req).await;
            }
            let owner = s
                .blocking(move |h| h.task_status(&name, task))
                .await
                .ok()
                .map(|st| format!("http://{}", st.worker_id));
            match owner {
                Some(url) if url != view.url => url,
                // Not running anywhere known: answered here (404 or a local restart).
                _ => return next.run(req).await,
            }
        }
    };
    // Kafka's hop rule, from the `forward` query parameter.
    let query = req.uri().query().unwrap_or("");
    let mut hop = None;
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("forward", v)) => hop = Some(v.to_owned()),
            _ => kept.push(pair),
        }
    }
    let next_hop = match hop.as_deref() {
        None => "true",
        Some("true") => "false",
        _ => {
            return conflict(
                "Cannot complete request because of a conflicting operation (e.g. worker rebalance)",
            );
        }
    };
    kept.push(if next_hop == "true" {
        "forward=true"
    } else {
        "forward=false"
    });
    let path_and_query = format!("{}?{}", req.uri().path(), kept.join("&"));
    let method = req.method().clone();
    let auth = req.headers().get(AUTHORIZATION).cloned();
    let content_type = req.headers().get(CONTENT_TYPE).cloned();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return ApiError::bad_request(format!("reading the request body: {e}")).into_response();
        }
    };
    let answer = send(
        &target,
        method.as_str(),
        &path_and_query,
        (!body.is_empty()).then_some(body),
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        auth.as_ref().and_then(|v| v.to_str().ok()),
    )
    .await;
    match answer {
        Ok(reply) => {
            let mut response = Response::builder().status(reply.status);
            if let Some(ct) = reply.content_type {
                response = response.header(CONTENT_TYPE, ct);
            }
            if let Some(loc) = reply.location {
                response = response.header(LOCATION, loc);
            }
            response
                .body(Body::from(reply.body))
                .unwrap_or_else(|e| ApiError::internal(e.to_string()).into_response())
        }
        Err(e) => ApiError::internal(format!(
            "IO Error trying to forward REST request to {target}: {e}"
        ))
        .into_response(),
    }
}

/// An answer from another worker.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
    pub content_type: Option<String>,
    pub location: Option<String>,
}

/// One HTTP/1.1 request to `base` (`http://host:port`); answers (status, body).
pub async fn request(
    base: &str,
    method: &str,
    path_and_query: &str,
    body: Option<Bytes>,
) -> Result<(u16, Bytes), String> {
    let ct = body.as_ref().map(|_| "application/json");
    send(base, method, path_and_query, body, ct, None)
        .await
        .map(|r| (r.status, r.body))
}

async fn send(
    base: &str,
    method: &str,
    path_and_query: &str,
    body: Option<Bytes>,
    content_type: Option<&str>,
    authorization: Option<&str>,
) -> Result<Reply, String> {
    let authority = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("{base} is not an http:// URL"))?
        .trim_end_matches('/');
    let connect = tokio::net::TcpStream::connect(authority);
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("cannot connect to {base}: {e}")),
        Err(_) => return Err(format!("no connection to {base} within 5 s")),
    };
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("{base}: {e}"))?;
    let connection = tokio::spawn(connection);
    let mut request = axum::http::Request::builder()
        .method(method)
        .uri(path_and_query)
        .header(HOST, authority);
    if let Some(ct) = content_type {
        request = request.header(CONTENT_TYPE, ct);
    }
    if let Some(a) = authorization {
        request = request.header(AUTHORIZATION, a);
    }
    let request = request
        .body(Full::new(body.unwrap_or_default()))
        .map_err(|e| e.to_string())?;
    let call = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("{base}: {e}"))?;
        let status = response.status().as_u16();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(CONTENT_TYPE);
        let location = header(LOCATION);
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the answer of {base}: {e}"))?
            .to_bytes();
        Ok::<_, String>(Reply {
            status,
            body,
            content_type,
            location,
        })
    };
    let reply = tokio::time::timeout(super::REQUEST_TIMEOUT, call)
        .await
        .map_err(|_| format!("{base} did not answer within 90 s"))?;
    connection.abort();
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_go_to_the_leader_and_task_restarts_to_the_owner() {
        let c = |m: Method, p: &str| classify(&m, p);
        assert_eq!(c(Method::POST, "/connectors"), Target::Leader);
        assert_eq!(c(Method::PUT, "/connectors/a/config"), Target::Leader);
        assert_eq!(c(Method::DELETE, "/connectors/a"), Target::Leader);
        assert_eq!(c(Method::POST, "/connectors/a/restart"), Target::Leader);
        assert_eq!(c(Method::PUT, "/connectors/a/stop"), Target::Leader);
        assert_eq!(
            c(Method::POST, "/connectors/a%2Fb/tasks/3/restart"),
            Target::TaskOwner("a/b".into(), 3)
        );
        assert_eq!(c(Method::PUT, "/connectors/a/pause"), Target::Here);
        assert_eq!(c(Method::GET, "/connectors/a/status"), Target::Here);
        assert_eq!(c(Method::GET, "/connectors"), Target::Here);
    }
}
