//! What can go wrong talking to a broker over the network, with the broker, api, topic
//! and partition it concerns, and whether retrying can help.
//!
//! The errors the worker already knows from the in-process client (an unknown topic or
//! partition, an offset out of range, a group error code) stay [`ClientError`] variants,
//! so callers handle them the same way whichever broker answered; this enum holds what
//! only a network client meets, wrapped as [`ClientError::Remote`].

use std::time::Duration;

use kafka_protocol::ResponseError;

use crate::client::ClientError;

/// A network client's failure.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// `bootstrap.servers` is empty or an entry is not `host:port`.
    #[error(
        "bootstrap.servers entry {entry:?} is not host:port; list brokers as host1:9092,host2:9092"
    )]
    BadBootstrap { entry: String },

    /// No bootstrap broker answered before the deadline.
    #[error(
        "no broker in bootstrap.servers={servers} answered within {timeout:?} (last error: {last}); \
         check the addresses and that a broker is running there"
    )]
    Bootstrap {
        servers: String,
        timeout: Duration,
        last: String,
    },

    /// A TCP connection (and its ApiVersions handshake) could not be set up.
    #[error("cannot connect to broker {broker}: {reason}; check that it is running and reachable")]
    Connect { broker: String, reason: String },

    /// The connection broke before the answer arrived: the request may or may not have
    /// been applied (produce retries are deduplicated by idempotence).
    #[error("connection to broker {broker} lost during {api}: {reason}")]
    Disconnected {
        broker: String,
        api: &'static str,
        reason: String,
    },

    /// No answer within `request.timeout.ms` (the connection is closed, as Kafka's
    /// clients do, since a late answer would be out of order).
    #[error(
        "{api} request to broker {broker} got no answer within {timeout:?}; raise request.timeout.ms or check the broker's health"
    )]
    Timeout {
        broker: String,
        api: &'static str,
        timeout: Duration,
    },

    /// The answer could not be decoded (or a response frame was refused as too large).
    #[error(
        "broker {broker} sent a malformed {api} v{version} response: {reason}; check that {broker} is a Kafka broker"
    )]
    Malformed {
        broker: String,
        api: &'static str,
        version: i16,
        reason: String,
    },

    /// The broker serves no version of an api that this client speaks.
    #[error(
        "broker {broker} serves {api} versions {broker_versions}, this client speaks {client_min}..={client_max}; \
         use a broker that supports Kafka 2.1's protocol or later"
    )]
    UnsupportedVersion {
        broker: String,
        api: &'static str,
        broker_versions: String,
        client_min: i16,
        client_max: i16,
    },

    /// A Kafka error code about one partition of one topic.
    #[error(
        "{api} on {topic}-{partition} at broker {broker} failed with Kafka error {code} ({name}){message}"
    )]
    Partition {
        api: &'static str,
        broker: String,
        topic: String,
        partition: i32,
        code: i16,
        name: String,
        message: String,
    },

    /// A Kafka error code about a whole topic, a group or a request.
    #[error("{api} for {what} at broker {broker} failed with Kafka error {code} ({name}){message}")]
    Request {
        api: &'static str,
        broker: String,
        what: String,
        code: i16,
        name: String,
        message: String,
    },

    /// A partition has no leader (an election is under way, or its broker is down).
    #[error("{topic}-{partition} has no leader broker right now; retry later or check the cluster")]
    NoLeader { topic: String, partition: i32 },

    /// A call that blocks was made on an async runtime's worker thread.
    #[error(
        "the remote client's blocking {call} was called on an async worker thread; call it from spawn_blocking or a thread of its own"
    )]
    BlockingInAsync { call: &'static str },

    /// A setting has a value the client cannot use.
    #[error("{key}={value:?}: {reason}")]
    Config {
        key: String,
        value: String,
        reason: String,
    },

    /// The client's own runtime could not start.
    #[error("starting the remote client's runtime: {0}")]
    Runtime(String),
}

impl RemoteError {
    /// Whether the same call may succeed later (Kafka's retriable errors, lost
    /// connections, timeouts, elections).
    pub fn is_retriable(&self) -> bool {
        match self {
            RemoteError::Connect { .. }
            | RemoteError::Disconnected { .. }
            | RemoteError::Timeout { .. }
            | RemoteError::NoLeader { .. }
            | RemoteError::Bootstrap { .. } => true,
            RemoteError::Partition { code, .. } | RemoteError::Request { code, .. } => {
                code_is_retriable(*code)
            }
            _ => false,
        }
    }

    /// Whether cached metadata (leaders, coordinators) may be what is wrong.
    pub(crate) fn stale_metadata(&self) -> bool {
        match self {
            RemoteError::Connect { .. }
            | RemoteError::Disconnected { .. }
            | RemoteError::Timeout { .. }
            | RemoteError::NoLeader { .. } => true,
            RemoteError::Partition { code, .. } | RemoteError::Request { code, .. } => {
                matches!(*code, 3 | 5 | 6 | 15 | 16 | 41 | 74 | 75)
            }
            _ => false,
        }
    }

    /// The Kafka error code this error carries, if any.
    pub fn code(&self) -> Option<i16> {
        match self {
            RemoteError::Partition { code, .. } | RemoteError::Request { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Kafka's classification (`Errors.java`), as the protocol crate records it.
pub fn code_is_retriable(code: i16) -> bool {
    ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable())
}

/// Kafka's name of an error code, for messages.
pub fn code_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_owned(),
        Some(ResponseError::Unknown(c)) => format!("unknown code {c}"),
        // The crate names variants in CamelCase; Kafka's own names are UPPER_SNAKE.
        Some(e) => {
            let mut out = String::new();
            for (i, c) in e.to_string().chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_uppercase());
            }
            out
        }
    }
}

/// `": message"` when the broker sent one, else nothing.
pub(crate) fn with_message(message: Option<&str>) -> String {
    match message {
        Some(m) if !m.is_empty() => format!(": {m}"),
        _ => String::new(),
    }
}

/// Whether a client error is worth retrying within the operation's deadline.
pub(crate) fn retriable(e: &ClientError) -> bool {
    match e {
        ClientError::Remote(r) => r.is_retriable(),
        _ => false,
    }
}

/// Whether a client error suggests refreshing metadata before the retry.
pub(crate) fn stale(e: &ClientError) -> bool {
    match e {
        ClientError::Remote(r) => r.stale_metadata(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_have_kafkas_names() {
        assert_eq!(super::code_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(super::code_name(0), "NONE");
        assert_eq!(super::code_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(super::code_name(9999), "unknown code 9999");
        assert!(super::code_is_retriable(6));
        assert!(!super::code_is_retriable(87));
    }
}
