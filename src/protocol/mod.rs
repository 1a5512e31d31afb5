//! The Kafka wire protocol: bytes on a connection to typed requests, typed responses to bytes.
//!
//! What it owns:
//!
//! - **Framing**: the 4-byte big-endian length prefix and its cap
//!   (`socket.request.max.bytes`, [`codec::Limits`]), checked before a byte of the body is
//!   buffered ([`codec::frame_length`]).
//! - **Header and body decode/encode** ([`codec::decode_request`],
//!   [`codec::encode_response`]): the request header version follows from the api key and
//!   version, the response header version likewise (`ApiVersions` always answers with header
//!   v0). Generated message types come from the `kafka-protocol` crate, vendored under
//!   `vendor/kafka-protocol` with its remote-crash bugs fixed (see `PATCHES.md` there).
//! - **Version negotiation tables**: [`codec::SUPPORTED`] is what the broker advertises, and the
//!   KIP-511 fallback for an `ApiVersions` request of a version it does not know
//!   ([`codec::api_versions_unsupported_response`]).
//! - **Limits** on what a hostile frame can make it do: no decode path panics, and no
//!   allocation is larger than the bytes that justify it.
//!
//! What it must not know: logs, partitions, groups, producers, or where topics are stored. It
//! hands a [`codec::DecodedRequest`] up and takes a `ResponseKind` back; what the request
//! means is the broker's business. It does no IO either: the listener reads the frame.

pub mod codec;
pub mod error;

pub use codec::{
    DecodedRequest, Limits, SUPPORTED, advertised_versions, api_versions_unsupported_response,
    decode_request, encode_response, frame_length, supported_versions,
};
pub use error::ProtocolError;
