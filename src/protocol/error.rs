//! Errors of the wire protocol layer: what went wrong with one frame, and which api and version
//! it claimed to be.
//!
//! Whether the connection can continue is part of the error: only
//! [`ProtocolError::UnsupportedVersion`] and [`ProtocolError::Malformed`] with a correlation id
//! leave the stream in sync (the whole frame was read), and only for those can the caller answer.
//! Everything else means "close the connection", as Kafka's `SocketServer` does.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::ApiKey;

/// A frame that cannot be decoded, or a response that cannot be encoded.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The 4-byte length prefix is negative: the peer does not speak the Kafka protocol.
    #[error("request length {len} is negative: the peer does not speak the Kafka protocol")]
    NegativeFrameLength { len: i32 },

    /// The length prefix exceeds `socket.request.max.bytes` (an HTTP or TLS client connected to
    /// the Kafka port looks like this too).
    #[error(
        "request of {len} bytes exceeds socket.request.max.bytes ({max}): raise the limit or fix the client"
    )]
    FrameTooLarge { len: usize, max: usize },

    /// The frame is too short to hold the api key and version.
    #[error("request of {len} bytes is too short for a request header")]
    Truncated { len: usize },

    /// The api key is not one Kafka defines.
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),

    /// The api is known but this version is not served (or the api is not served at all).
    ///
    /// For `ApiVersions` the caller answers with the KIP-511 fallback
    /// ([`super::codec::api_versions_unsupported_response`]); a client that negotiated never
    /// sends an unsupported version of anything else, and Kafka closes the connection then.
    #[error("{api_key:?} v{version} is not supported (correlation id {correlation_id})")]
    UnsupportedVersion {
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
    },

    /// The header or body does not decode, or bytes are left over after the body.
    #[error("malformed {api_key:?} v{version} request: {reason}")]
    Malformed {
        api_key: ApiKey,
        version: i16,
        /// `None` when the frame ends before the correlation id.
        correlation_id: Option<i32>,
        reason: String,
    },

    /// A response body cannot be encoded at this version (a broker bug, not the client's).
    #[error("cannot encode {api_key:?} v{version} response: {reason}")]
    Encode {
        api_key: ApiKey,
        version: i16,
        reason: String,
    },
}

impl ProtocolError {
    /// The correlation id of the request, when the frame held one.
    pub fn correlation_id(&self) -> Option<i32> {
        match self {
            Self::UnsupportedVersion { correlation_id, .. } => Some(*correlation_id),
            Self::Malformed { correlation_id, .. } => *correlation_id,
            _ => None,
        }
    }

    /// The Kafka error code an answer would carry: UNSUPPORTED_VERSION (35) or
    /// INVALID_REQUEST (42); `None` for errors that allow no answer.
    pub fn error_code(&self) -> Option<i16> {
        match self {
            Self::UnsupportedVersion { .. } => Some(ResponseError::UnsupportedVersion.code()),
            Self::Malformed { .. } => Some(ResponseError::InvalidRequest.code()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_api_and_version() {
        let err = ProtocolError::Malformed {
            api_key: ApiKey::Produce,
            version: 7,
            correlation_id: Some(3),
            reason: "3 bytes left over after the body".into(),
        };
        assert_eq!(
            err.to_string(),
            "malformed Produce v7 request: 3 bytes left over after the body"
        );
        assert_eq!(err.error_code(), Some(42));
        assert_eq!(err.correlation_id(), Some(3));

        let err = ProtocolError::UnsupportedVersion {
            api_key: ApiKey::ApiVersions,
            version: 9,
            correlation_id: 1,
        };
        assert_eq!(
            err.to_string(),
            "ApiVersions v9 is not supported (correlation id 1)"
        );
        assert_eq!(err.error_code(), Some(35));

        assert_eq!(ProtocolError::UnknownApiKey(-5).error_code(), None);
        assert_eq!(ProtocolError::Truncated { len: 2 }.correlation_id(), None);
    }
}
