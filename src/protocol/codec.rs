//! One frame at a time: the length prefix, request decoding, response encoding, and the version
//! table the broker advertises.
//!
//! Not here: reading or writing sockets (the listener does that with [`frame_length`] in
//! between), and deciding what a request means.
//!
//! The decode order is fixed by what a caller must be able to answer: the api key and version
//! come first (4 bytes), then the correlation id (the next 4), and only a version that is both
//! advertised and known to the crate is handed to the generated decoders. So an unsupported
//! version is reported with its correlation id, and the generated code never sees a version it
//! was not written for.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::error::ProtocolError;

/// What one connection may make the protocol layer do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `socket.request.max.bytes`: the largest request accepted, not counting the 4-byte length
    /// prefix. Kafka's default is 100 MiB.
    pub max_frame_bytes: usize,
}

impl Limits {
    /// Kafka's default `socket.request.max.bytes`.
    pub const DEFAULT_MAX_FRAME_BYTES: usize = 104_857_600;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: Self::DEFAULT_MAX_FRAME_BYTES,
        }
    }
}

/// The length of the frame that follows a 4-byte big-endian length prefix.
///
/// A negative or over-limit length is an error after which the caller closes the connection:
/// the stream cannot be resynchronized, and buffering the claimed length is the attack.
pub fn frame_length(prefix: [u8; 4], limits: &Limits) -> Result<usize, ProtocolError> {
    let len = i32::from_be_bytes(prefix);
    let Ok(size) = usize::try_from(len) else {
        return Err(ProtocolError::NegativeFrameLength { len });
    };
    if size > limits.max_frame_bytes {
        return Err(ProtocolError::FrameTooLarge {
            len: size,
            max: limits.max_frame_bytes,
        });
    }
    Ok(size)
}

/// A request whose header and body decoded at an advertised version.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRequest {
    /// The raw api key; always a valid [`ApiKey`], and the variant of `body` matches it.
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    /// The full header, including tagged fields of flexible versions.
    pub header: RequestHeader,
    pub body: RequestKind,
}

/// Decodes one request frame (without its length prefix).
///
/// `supported` says which versions of an api the broker serves (`None`: not served at all);
/// [`supported_versions`] answers from [`SUPPORTED`]. Versions outside what the crate knows are
/// refused whatever `supported` says.
///
/// Never panics, and allocates no more than the frame's own bytes justify: every length read
/// from the wire is checked against the bytes that remain (see `vendor/kafka-protocol/PATCHES.md`).
pub fn decode_request(
    frame: Bytes,
    supported: &dyn Fn(ApiKey) -> Option<(i16, i16)>,
) -> Result<DecodedRequest, ProtocolError> {
    if frame.len() < 4 {
        return Err(ProtocolError::Truncated { len: frame.len() });
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key = ApiKey::try_from(raw_key).map_err(|()| ProtocolError::UnknownApiKey(raw_key))?;
    let correlation_id =
        (frame.len() >= 8).then(|| i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]));
    let malformed = |reason: String| ProtocolError::Malformed {
        api_key,
        version,
        correlation_id,
        reason,
    };

    if !is_served(api_key, version, supported) {
        return Err(match correlation_id {
            Some(correlation_id) => ProtocolError::UnsupportedVersion {
                api_key,
                version,
                correlation_id,
            },
            None => malformed("the frame ends before the correlation id".into()),
        });
    }

    let mut buf = frame;
    let header = RequestHeader::decode(&mut buf, api_key.request_header_version(version))
        .map_err(|err| malformed(format!("request header: {err:#}")))?;
    let body = RequestKind::decode(api_key, &mut buf, version)
        .map_err(|err| malformed(format!("{err:#}")))?;
    if buf.has_remaining() {
        return Err(malformed(format!(
            "{} bytes left over after the body",
            buf.remaining()
        )));
    }
    Ok(DecodedRequest {
        api_key: raw_key,
        api_version: version,
        correlation_id: header.correlation_id,
        client_id: header.client_id.as_ref().map(|id| id.to_string()),
        header,
        body,
    })
}

fn is_served(
    api_key: ApiKey,
    version: i16,
    supported: &dyn Fn(ApiKey) -> Option<(i16, i16)>,
) -> bool {
    let known = api_key.valid_versions();
    let advertised = supported(api_key).is_some_and(|(min, max)| (min..=max).contains(&version));
    advertised && (known.min..=known.max).contains(&version)
}

/// Encodes a response as a complete frame: length prefix, response header of the version the
/// api and version call for (v0 for every `ApiVersions` response, flexible v1 for flexible
/// versions of everything else), then the body.
///
/// `api_key` and `api_version` must be the request's, and `body` the matching variant.
pub fn encode_response(
    correlation_id: i32,
    api_key: ApiKey,
    api_version: i16,
    body: &ResponseKind,
) -> Result<Bytes, ProtocolError> {
    let encode_error = |reason: String| ProtocolError::Encode {
        api_key,
        version: api_version,
        reason,
    };
    // Sized up front where the body is large (a fetch's records): growing by doubling
    // would copy the records again at every step.
    let capacity = match body {
        ResponseKind::Fetch(fetch) => fetch.compute_size(api_version).unwrap_or(0) + 64,
        _ => 256,
    };
    let mut buf = BytesMut::with_capacity(capacity);
    buf.put_i32(0); // the length, filled in below
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, api_key.response_header_version(api_version))
        .map_err(|err| encode_error(format!("response header: {err:#}")))?;
    body.encode(&mut buf, api_version)
        .map_err(|err| encode_error(format!("{err:#}")))?;
    let len = i32::try_from(buf.len() - 4)
        .map_err(|_| encode_error(format!("{} bytes do not fit in a frame", buf.len() - 4)))?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// The KIP-511 answer to an `ApiVersions` request of a version the broker does not serve: a v0
/// body (which every client can read) with error 35 UNSUPPORTED_VERSION and the versions of
/// `table`, so the client retries with the highest `ApiVersions` version listed.
pub fn api_versions_unsupported_response(
    correlation_id: i32,
    table: &[(ApiKey, i16, i16)],
) -> Result<Bytes, ProtocolError> {
    let body = ApiVersionsResponse::default()
        .with_error_code(kafka_protocol::ResponseError::UnsupportedVersion.code())
        .with_api_keys(advertised_versions(table));
    encode_response(
        correlation_id,
        ApiKey::ApiVersions,
        0,
        &ResponseKind::ApiVersions(body),
    )
}

/// `table` as the `api_keys` of an `ApiVersionsResponse`.
pub fn advertised_versions(table: &[(ApiKey, i16, i16)]) -> Vec<ApiVersion> {
    table
        .iter()
        .map(|&(api_key, min, max)| {
            ApiVersion::default()
                .with_api_key(api_key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect()
}

/// The versions the broker advertises, by api.
///
/// Ceilings: Produce 9, Fetch 12 and Metadata 12 are the last versions without topic IDs
/// (clients stay on name-based versions until the broker has topic UUIDs); OffsetCommit 8,
/// OffsetFetch 8, JoinGroup 7, LeaveGroup 4, ListGroups 4, FindCoordinator 4 and
/// InitProducerId 4 stop before the KIP-848/KIP-890/KIP-932 versions (new group protocol,
/// transactions v2, share groups). Every ceiling is within what the crate knows.
///
/// Floors: as low as the crate goes (Kafka 4 removed the older versions). librdkafka enables
/// its balanced consumer only if FindCoordinator 0, OffsetCommit within 1..2, OffsetFetch 1,
/// JoinGroup 0, SyncGroup 0, Heartbeat 0 and LeaveGroup 0 are advertised, and idempotence only
/// with InitProducerId 0. Every api keeps its non-flexible versions, since kafkajs 2.2.4 speaks
/// no flexible version at all.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 7),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 4),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 5),
    (ApiKey::DeleteTopics, 1, 5),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
];

/// The `(min, max)` versions of `api_key` in [`SUPPORTED`]: the usual `supported` argument of
/// [`decode_request`].
pub fn supported_versions(api_key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(key, _, _)| *key == api_key)
        .map(|&(_, min, max)| (min, max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
    use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
    use kafka_protocol::messages::produce_request::{
        PartitionProduceData, ProduceRequest, TopicProduceData,
    };
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{StrBytes, encode_request_header_into_buffer};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    use proptest::prelude::*;

    const CLIENT_ID: &str = "tributary-test";

    /// A request frame (without length prefix) as a client library encodes it.
    fn request_frame(
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
        body: &RequestKind,
    ) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut buf = BytesMut::new();
        encode_request_header_into_buffer(&mut buf, &header).expect("encode header");
        body.encode(&mut buf, version).expect("encode body");
        buf.freeze()
    }

    fn decode(frame: &[u8]) -> Result<DecodedRequest, ProtocolError> {
        decode_request(Bytes::copy_from_slice(frame), &supported_versions)
    }

    /// Every version the crate knows, for reaching every generated decoder.
    fn crate_versions(api_key: ApiKey) -> Option<(i16, i16)> {
        let range = api_key.valid_versions();
        Some((range.min, range.max))
    }

    fn topic(name: &'static str) -> TopicName {
        TopicName(StrBytes::from_static_str(name))
    }

    fn record_batch() -> Bytes {
        let records: Vec<Record> = (0..3)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                // One batch: the encoder splits whenever offset - sequence changes.
                sequence: i as i32,
                timestamp: 1_700_000_000_000 + i,
                key: Some(Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(format!("value-{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode batch");
        buf.freeze()
    }

    fn api_versions_v3() -> RequestKind {
        RequestKind::ApiVersions(
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("librdkafka"))
                .with_client_software_version(StrBytes::from_static_str("2.0.2")),
        )
    }

    fn metadata_v4() -> RequestKind {
        RequestKind::Metadata(
            MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(topic("orders"))),
                ]))
                .with_allow_auto_topic_creation(true),
        )
    }

    fn produce(records: Bytes) -> RequestKind {
        RequestKind::Produce(
            ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(30_000)
                .with_topic_data(vec![
                    TopicProduceData::default()
                        .with_name(topic("orders"))
                        .with_partition_data(vec![
                            PartitionProduceData::default()
                                .with_index(0)
                                .with_records(Some(records)),
                        ]),
                ]),
        )
    }

    /// Valid frames of the kinds real clients send, flexible and not.
    fn valid_frames() -> Vec<Bytes> {
        vec![
            request_frame(ApiKey::ApiVersions, 3, 1, &api_versions_v3()),
            request_frame(
                ApiKey::ApiVersions,
                0,
                2,
                &RequestKind::ApiVersions(Default::default()),
            ),
            request_frame(ApiKey::Metadata, 4, 3, &metadata_v4()),
            request_frame(ApiKey::Metadata, 12, 4, &metadata_v4()),
            request_frame(ApiKey::Produce, 7, 5, &produce(record_batch())),
            request_frame(ApiKey::Produce, 9, 6, &produce(record_batch())),
        ]
    }

    /// The header of a request, as bytes: api key, version, correlation id 7, null client id;
    /// flexible headers (v2) end with an empty tagged-field section.
    fn header_bytes(api_key: ApiKey, version: i16) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(api_key as i16).to_be_bytes());
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&7i32.to_be_bytes());
        out.extend_from_slice(&(-1i16).to_be_bytes());
        if api_key.request_header_version(version) >= 2 {
            out.push(0);
        }
        out
    }

    fn frame_of(api_key: ApiKey, version: i16, body: &[u8]) -> Vec<u8> {
        let mut out = header_bytes(api_key, version);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn api_versions_v3_round_trips() {
        let body = api_versions_v3();
        let decoded = decode(&request_frame(ApiKey::ApiVersions, 3, 41, &body)).expect("decodes");
        assert_eq!(decoded.api_key, ApiKey::ApiVersions as i16);
        assert_eq!(decoded.api_version, 3);
        assert_eq!(decoded.correlation_id, 41);
        assert_eq!(decoded.client_id.as_deref(), Some(CLIENT_ID));
        assert_eq!(decoded.header.request_api_version, 3);
        assert_eq!(decoded.body, body);
    }

    #[test]
    fn metadata_v4_round_trips() {
        let body = metadata_v4();
        let decoded = decode(&request_frame(ApiKey::Metadata, 4, 42, &body)).expect("decodes");
        assert_eq!(
            (decoded.api_key, decoded.api_version, decoded.correlation_id),
            (3, 4, 42)
        );
        assert_eq!(decoded.body, body);
    }

    #[test]
    fn produce_v7_round_trips_with_records_verbatim() {
        let batch = record_batch();
        let body = produce(batch.clone());
        let decoded = decode(&request_frame(ApiKey::Produce, 7, 43, &body)).expect("decodes");
        assert_eq!(decoded.body, body);
        let RequestKind::Produce(request) = decoded.body else {
            panic!("expected a produce request, got {:?}", decoded.body);
        };
        assert_eq!(request.topic_data[0].partition_data[0].records, Some(batch));
    }

    #[test]
    fn flexible_versions_round_trip() {
        for (api_key, version, body) in [
            (ApiKey::Metadata, 12, metadata_v4()),
            (ApiKey::Produce, 9, produce(record_batch())),
            (ApiKey::ApiVersions, 4, api_versions_v3()),
        ] {
            let decoded = decode(&request_frame(api_key, version, 9, &body)).expect("decodes");
            assert_eq!(decoded.body, body, "{api_key:?} v{version}");
            assert_eq!(decoded.client_id.as_deref(), Some(CLIENT_ID));
        }
    }

    #[test]
    fn supported_table_is_within_the_crate_and_keeps_non_flexible_versions() {
        for &(api_key, min, max) in SUPPORTED {
            let known = api_key.valid_versions();
            assert!(
                known.min <= min && min <= max && max <= known.max,
                "{api_key:?} {min}..={max} outside the crate's {known}"
            );
            // kafkajs sends only non-flexible versions (request header v1).
            assert_eq!(
                api_key.request_header_version(min),
                1,
                "{api_key:?} v{min} is flexible"
            );
        }
        let mut keys: Vec<i16> = SUPPORTED.iter().map(|&(key, _, _)| key as i16).collect();
        keys.dedup();
        assert_eq!(keys.len(), SUPPORTED.len(), "an api is listed twice");
    }

    #[test]
    fn supported_table_serves_the_clients_in_the_field_notes() {
        let served = |api_key: ApiKey, version: i16| {
            supported_versions(api_key).is_some_and(|(min, max)| (min..=max).contains(&version))
        };
        // librdkafka 2.0.2 feature gating: the balanced consumer, idempotence, ZSTD.
        for (api_key, version) in [
            (ApiKey::FindCoordinator, 0),
            (ApiKey::OffsetFetch, 1),
            (ApiKey::JoinGroup, 0),
            (ApiKey::SyncGroup, 0),
            (ApiKey::Heartbeat, 0),
            (ApiKey::LeaveGroup, 0),
            (ApiKey::InitProducerId, 0),
            (ApiKey::Produce, 7),
            (ApiKey::Fetch, 10),
        ] {
            assert!(served(api_key, version), "{api_key:?} v{version}");
        }
        assert!(served(ApiKey::OffsetCommit, 1) || served(ApiKey::OffsetCommit, 2));
        // What kcat, kafka-python and kafkajs were seen to send.
        for (api_key, version) in [
            (ApiKey::ApiVersions, 3),
            (ApiKey::ApiVersions, 4),
            (ApiKey::ApiVersions, 2),
            (ApiKey::Metadata, 4),
            (ApiKey::Metadata, 6),
            (ApiKey::Metadata, 12),
            (ApiKey::Produce, 9),
            (ApiKey::Fetch, 11),
            (ApiKey::JoinGroup, 5),
            (ApiKey::SyncGroup, 3),
            (ApiKey::OffsetCommit, 7),
        ] {
            assert!(served(api_key, version), "{api_key:?} v{version}");
        }
        // No topic-ID versions until topics have UUIDs.
        assert_eq!(supported_versions(ApiKey::Produce).map(|r| r.1), Some(9));
        assert_eq!(supported_versions(ApiKey::Fetch).map(|r| r.1), Some(12));
        assert_eq!(supported_versions(ApiKey::Metadata).map(|r| r.1), Some(12));
    }

    #[test]
    fn every_advertised_version_decodes_an_empty_request() {
        // A default body of every advertised api at every advertised version, as a client
        // encodes it, decodes: the header version table and the body decoders agree.
        for &(api_key, min, max) in SUPPORTED {
            for version in min..=max {
                let body = default_request(api_key);
                let frame = request_frame(api_key, version, i32::from(version), &body);
                let decoded = decode(&frame).unwrap_or_else(|err| panic!("{err}"));
                assert_eq!(decoded.body, body, "{api_key:?} v{version}");
            }
        }
    }

    fn default_request(api_key: ApiKey) -> RequestKind {
        match api_key {
            ApiKey::Produce => RequestKind::Produce(Default::default()),
            ApiKey::Fetch => RequestKind::Fetch(Default::default()),
            ApiKey::ListOffsets => RequestKind::ListOffsets(Default::default()),
            ApiKey::Metadata => RequestKind::Metadata(Default::default()),
            ApiKey::OffsetCommit => RequestKind::OffsetCommit(Default::default()),
            ApiKey::OffsetFetch => RequestKind::OffsetFetch(Default::default()),
            ApiKey::FindCoordinator => RequestKind::FindCoordinator(Default::default()),
            ApiKey::JoinGroup => RequestKind::JoinGroup(Default::default()),
            ApiKey::Heartbeat => RequestKind::Heartbeat(Default::default()),
            ApiKey::LeaveGroup => RequestKind::LeaveGroup(Default::default()),
            ApiKey::SyncGroup => RequestKind::SyncGroup(Default::default()),
            ApiKey::DescribeGroups => RequestKind::DescribeGroups(Default::default()),
            ApiKey::ListGroups => RequestKind::ListGroups(Default::default()),
            ApiKey::ApiVersions => RequestKind::ApiVersions(Default::default()),
            ApiKey::CreateTopics => RequestKind::CreateTopics(Default::default()),
            ApiKey::DeleteTopics => RequestKind::DeleteTopics(Default::default()),
            ApiKey::InitProducerId => RequestKind::InitProducerId(Default::default()),
            ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(Default::default()),
            ApiKey::AlterConfigs => RequestKind::AlterConfigs(Default::default()),
            ApiKey::CreatePartitions => RequestKind::CreatePartitions(Default::default()),
            ApiKey::DeleteGroups => RequestKind::DeleteGroups(Default::default()),
            ApiKey::IncrementalAlterConfigs => {
                RequestKind::IncrementalAlterConfigs(Default::default())
            }
            other => panic!("add {other:?} to default_request"),
        }
    }

    #[test]
    fn frame_length_rejects_negative_and_oversized_lengths() {
        let limits = Limits::default();
        assert_eq!(limits.max_frame_bytes, 104_857_600);
        assert_eq!(frame_length(0i32.to_be_bytes(), &limits).ok(), Some(0));
        assert_eq!(
            frame_length(104_857_600i32.to_be_bytes(), &limits).ok(),
            Some(104_857_600)
        );
        assert!(matches!(
            frame_length(104_857_601i32.to_be_bytes(), &limits),
            Err(ProtocolError::FrameTooLarge {
                len: 104_857_601,
                max: 104_857_600
            })
        ));
        assert!(matches!(
            frame_length((-1i32).to_be_bytes(), &limits),
            Err(ProtocolError::NegativeFrameLength { len: -1 })
        ));
        // An HTTP client on the Kafka port: "GET " is 1.2 GB.
        assert!(matches!(
            frame_length(*b"GET ", &limits),
            Err(ProtocolError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn responses_carry_the_length_and_the_right_header_version() {
        // ApiVersions v3 is flexible, yet its response header is v0: length, correlation id,
        // then the body (error code first).
        let body = ResponseKind::ApiVersions(
            ApiVersionsResponse::default().with_api_keys(advertised_versions(SUPPORTED)),
        );
        let frame = encode_response(77, ApiKey::ApiVersions, 3, &body).expect("encodes");
        let len = i32::from_be_bytes(frame[..4].try_into().expect("4 bytes"));
        assert_eq!(len as usize, frame.len() - 4);
        assert_eq!(&frame[4..8], &77i32.to_be_bytes());
        assert_eq!(
            &frame[8..10],
            &0i16.to_be_bytes(),
            "no tagged fields before the body"
        );
        let mut rest = frame.slice(8..);
        let decoded = ApiVersionsResponse::decode(&mut rest, 3).expect("decodes");
        assert_eq!(decoded.api_keys.len(), SUPPORTED.len());

        // Metadata v12 is flexible: response header v1 has an (empty) tagged-field section.
        let body = ResponseKind::Metadata(MetadataResponse::default());
        let frame = encode_response(78, ApiKey::Metadata, 12, &body).expect("encodes");
        assert_eq!(&frame[4..8], &78i32.to_be_bytes());
        assert_eq!(frame[8], 0, "empty tagged fields of header v1");
        let mut rest = frame.slice(9..);
        assert_eq!(
            MetadataResponse::decode(&mut rest, 12).expect("decodes"),
            MetadataResponse::default()
        );
        assert!(!rest.has_remaining());

        // A version the crate does not know is an encode error naming the api.
        let err = encode_response(1, ApiKey::Metadata, 99, &body).expect_err("v99");
        assert!(
            err.to_string()
                .starts_with("cannot encode Metadata v99 response"),
            "{err}"
        );
    }

    #[test]
    fn api_versions_fallback_is_a_v0_body_with_error_35_and_the_key_list() {
        // A client from the future sends ApiVersions v9 (KIP-511): the header is still readable.
        let err = decode(&frame_of(ApiKey::ApiVersions, 9, &[0, 0, 0])).expect_err("v9");
        let ProtocolError::UnsupportedVersion {
            api_key: ApiKey::ApiVersions,
            version: 9,
            correlation_id,
        } = err
        else {
            panic!("expected UnsupportedVersion, got {err:?}");
        };
        let frame = api_versions_unsupported_response(correlation_id, SUPPORTED).expect("encodes");
        assert_eq!(&frame[4..8], &7i32.to_be_bytes());
        let mut rest = frame.slice(8..);
        let body = ApiVersionsResponse::decode(&mut rest, 0).expect("a v0 body");
        assert!(!rest.has_remaining());
        assert_eq!(body.error_code, 35);
        assert_eq!(
            body.api_keys
                .iter()
                .map(|k| (k.api_key, k.min_version, k.max_version))
                .collect::<Vec<_>>(),
            SUPPORTED
                .iter()
                .map(|&(key, min, max)| (key as i16, min, max))
                .collect::<Vec<_>>()
        );
    }

    /// The regression test for the remote crash of kafka-protocol 0.18.0: a 4-byte body claiming
    /// i32::MAX array elements made the decoder reserve ~150 GB and abort the process. Run it
    /// under `ulimit -v` to see that nothing large is allocated.
    #[test]
    fn hostile_array_length_is_an_error_not_an_allocation() {
        let started = std::time::Instant::now();
        // Metadata v4: topics is a nullable array with an i32 length.
        let err = decode(&frame_of(ApiKey::Metadata, 4, &i32::MAX.to_be_bytes())).expect_err("");
        assert!(
            matches!(&err, ProtocolError::Malformed { api_key: ApiKey::Metadata, version: 4, correlation_id: Some(7), reason }
                if reason.contains("2147483647 elements cannot fit")),
            "{err}"
        );
        // The same through the crate directly, for the non-nullable arrays of Produce.
        // transactional id null, acks 1, timeout 0, then i32::MAX topics.
        let mut body = Bytes::from_static(&[0xff, 0xff, 0, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff]);
        let err = ProduceRequest::decode(&mut body, 7).expect_err("i32::MAX topics");
        assert!(format!("{err:#}").contains("cannot fit"), "{err:#}");
        // Flexible versions: a compact array claiming u32::MAX - 1 elements.
        let err = decode(&frame_of(
            ApiKey::Metadata,
            12,
            &[0xff, 0xff, 0xff, 0xff, 0x0f],
        ))
        .expect_err("compact");
        assert!(err.to_string().contains("cannot fit"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    /// Frames that must be errors (and never panics), with what each must be.
    #[test]
    fn malformed_frames_are_errors() {
        type Expect = fn(&ProtocolError) -> bool;
        let unsupported: Expect = |e| {
            matches!(
                e,
                ProtocolError::UnsupportedVersion {
                    correlation_id: 7,
                    ..
                }
            )
        };
        let malformed: Expect = |e| {
            matches!(
                e,
                ProtocolError::Malformed {
                    correlation_id: Some(7),
                    ..
                }
            )
        };
        let unknown: Expect = |e| matches!(e, ProtocolError::UnknownApiKey(_));
        let truncated: Expect = |e| matches!(e, ProtocolError::Truncated { .. });

        let mut cases: Vec<(&str, Vec<u8>, Expect)> = vec![
            ("empty", vec![], truncated),
            ("3 bytes", vec![0, 3, 0], truncated),
            ("unknown api key -1", frame_of_raw(-1, 0), unknown),
            ("unknown api key 93", frame_of_raw(93, 0), unknown),
            (
                "unknown api key i16::MAX",
                frame_of_raw(i16::MAX, 0),
                unknown,
            ),
            (
                "produce below the crate's range",
                frame_of(ApiKey::Produce, 2, &[]),
                unsupported,
            ),
            (
                "produce v13 (topic ids)",
                frame_of(ApiKey::Produce, 13, &[]),
                unsupported,
            ),
            (
                "fetch v13 (topic ids)",
                frame_of(ApiKey::Fetch, 13, &[]),
                unsupported,
            ),
            (
                "negative version",
                frame_of(ApiKey::Metadata, -1, &[]),
                unsupported,
            ),
            (
                "api not served",
                frame_of(ApiKey::SaslHandshake, 1, &[]),
                unsupported,
            ),
            (
                "unsupported version without a correlation id",
                vec![0, 18, 0, 9, 0, 0],
                |e| {
                    matches!(
                        e,
                        ProtocolError::Malformed {
                            correlation_id: None,
                            ..
                        }
                    )
                },
            ),
            (
                "array length -2",
                frame_of(ApiKey::Metadata, 4, &(-2i32).to_be_bytes()),
                malformed,
            ),
            (
                "non-nullable array is null",
                frame_of(
                    ApiKey::Produce,
                    7,
                    &[0xff, 0xff, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
                ),
                malformed,
            ),
            (
                "array longer than the frame",
                frame_of(ApiKey::Metadata, 4, &[0, 0, 0, 2, 0, 1, b'a']),
                malformed,
            ),
            (
                "client id longer than the frame",
                header_with_client_id_len(i16::MAX),
                malformed,
            ),
            (
                "client id length -2",
                header_with_client_id_len(-2),
                malformed,
            ),
            (
                "string length i16::MAX",
                frame_of(ApiKey::Metadata, 4, &[0, 0, 0, 1, 0x7f, 0xff, b'a']),
                malformed,
            ),
            (
                "string length -5",
                frame_of(ApiKey::Metadata, 4, &[0, 0, 0, 1, 0xff, 0xfb]),
                malformed,
            ),
            (
                "compact string length u32::MAX",
                frame_of(
                    ApiKey::Metadata,
                    12,
                    &[[2].as_slice(), &[0; 16], &[0xff, 0xff, 0xff, 0xff, 0x0f]].concat(),
                ),
                malformed,
            ),
            (
                "records length i32::MAX",
                produce_with_records_len(i32::MAX),
                malformed,
            ),
            ("records length -2", produce_with_records_len(-2), malformed),
            (
                "tagged field count u32::MAX",
                frame_of(
                    ApiKey::Metadata,
                    12,
                    &[1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f],
                ),
                malformed,
            ),
            (
                "tagged field size u32::MAX",
                frame_of(
                    ApiKey::Metadata,
                    12,
                    &[1, 0, 0, 1, 9, 0xff, 0xff, 0xff, 0xff, 0x0f],
                ),
                malformed,
            ),
            (
                "varint longer than 5 bytes",
                frame_of(
                    ApiKey::Metadata,
                    12,
                    &[0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 0, 0, 0, 0],
                ),
                malformed,
            ),
            (
                "header tagged fields cut off",
                header_bytes(ApiKey::Metadata, 12)[..10].to_vec(),
                malformed,
            ),
            (
                "invalid utf-8 client id",
                header_with_client_id(&[0xff, 0xfe]),
                malformed,
            ),
        ];
        // Garbage after a valid body, and every truncation of every valid frame.
        let valid = valid_frames();
        for frame in &valid {
            let mut long = frame.to_vec();
            long.push(0);
            cases.push(("garbage after the body", long, |e| {
                matches!(e, ProtocolError::Malformed { reason, .. } if reason.contains("left over"))
            }));
        }
        for (name, frame, expect) in &cases {
            match decode(frame) {
                Ok(decoded) => panic!("{name}: decoded {decoded:?}"),
                Err(err) => assert!(expect(&err), "{name}: unexpected {err:?}"),
            }
        }
        for frame in &valid {
            for cut in 0..frame.len() {
                assert!(
                    decode(&frame[..cut]).is_err(),
                    "a prefix of {cut} bytes decoded"
                );
            }
            assert!(decode(frame).is_ok());
        }
    }

    /// Inputs the fuzzer (`fuzz/`) found, each with what was wrong and whether it decodes
    /// now. None may panic, and whatever decodes must survive a re-encode unchanged.
    const FUZZ_FINDINGS: &[(&str, bool, &[u8])] = &[
        (
            // DeleteGroups v2 with an unknown tagged field whose tag is above i32::MAX: the crate
            // counted it but never wrote it back, so the re-encoded body was corrupt.
            // Since then the 6-byte varint it also holds is refused (patch 6 in PATCHES.md).
            "tag above i32::MAX",
            false,
            &[
                0, 42, 0, 2, 0, 7, 122, 37, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 4, 0, 59,
                10, 10, 10, 14, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
                10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
                10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
                10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 255, 255, 255, 255,
                255, 10, 10, 10, 10, 10, 10, 10, 10, 42, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
                10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 106, 106, 106, 106, 10, 10, 102, 107, 1, 4,
            ],
        ),
        (
            // AlterClientQuotas v0 with a float64 that is NaN: NaN != NaN, so a round trip
            // compared with `==` failed although the bytes came back the same. Round trips are
            // compared as encoded bytes (the fuzz target does the same).
            "NaN float round trip",
            true,
            &[
                0, 49, 0, 0, 0, 97, 102, 107, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0,
                0, 255, 0, 2, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 254, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        ),
    ];

    fn encoded(request: &DecodedRequest) -> Bytes {
        let mut buf = BytesMut::new();
        encode_request_header_into_buffer(&mut buf, &request.header).expect("header");
        request
            .body
            .encode(&mut buf, request.api_version)
            .expect("body");
        buf.freeze()
    }

    #[test]
    fn fuzz_findings_stay_fixed() {
        for &(name, decodes, input) in FUZZ_FINDINGS {
            let decoded = decode_request(Bytes::from_static(input), &crate_versions);
            assert_eq!(decoded.is_ok(), decodes, "{name}: {decoded:?}");
            let Ok(decoded) = decoded else {
                continue;
            };
            let bytes = encoded(&decoded);
            let again = decode_request(bytes.clone(), &crate_versions)
                .unwrap_or_else(|err| panic!("{name}: re-encoded frame does not decode: {err}"));
            assert_eq!(encoded(&again), bytes, "{name}");
        }
    }

    fn frame_of_raw(api_key: i16, version: i16) -> Vec<u8> {
        [api_key.to_be_bytes(), version.to_be_bytes(), [0, 0], [0, 7]].concat()
    }

    fn header_with_client_id_len(len: i16) -> Vec<u8> {
        let mut out = frame_of_raw(ApiKey::Metadata as i16, 4);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(b"abc");
        out
    }

    fn header_with_client_id(id: &[u8]) -> Vec<u8> {
        let mut out = header_with_client_id_len(id.len() as i16);
        out.truncate(10);
        out.extend_from_slice(id);
        out.extend_from_slice(&[0, 0, 0, 0]); // an empty topic list
        out
    }

    fn produce_with_records_len(len: i32) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(-1i16).to_be_bytes()); // transactional id
        body.extend_from_slice(&(-1i16).to_be_bytes()); // acks
        body.extend_from_slice(&30_000i32.to_be_bytes()); // timeout
        body.extend_from_slice(&1i32.to_be_bytes()); // one topic
        body.extend_from_slice(&[0, 1, b't']);
        body.extend_from_slice(&1i32.to_be_bytes()); // one partition
        body.extend_from_slice(&0i32.to_be_bytes());
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(&[0; 16]);
        frame_of(ApiKey::Produce, 7, &body)
    }

    /// A mutation of a valid frame.
    #[derive(Debug, Clone)]
    enum Mutation {
        Set(usize, u8),
        Insert(usize, u8),
        Remove(usize),
        Truncate(usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
            (
                any::<usize>(),
                prop_oneof![Just(0xffu8), Just(0x7f), Just(0x80), any::<u8>()]
            )
                .prop_map(|(i, b)| Mutation::Set(i, b)),
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
            any::<usize>().prop_map(Mutation::Remove),
            any::<usize>().prop_map(Mutation::Truncate),
        ]
    }

    fn apply(frame: &mut Vec<u8>, mutation: &Mutation) {
        let len = frame.len().max(1);
        match *mutation {
            Mutation::Set(i, b) if !frame.is_empty() => frame[i % len] = b,
            Mutation::Insert(i, b) => frame.insert(i % (frame.len() + 1), b),
            Mutation::Remove(i) if !frame.is_empty() => {
                frame.remove(i % len);
            }
            Mutation::Truncate(i) => frame.truncate(i % len),
            _ => {}
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_request(Bytes::from(bytes), &crate_versions);
        }

        #[test]
        fn random_bodies_of_known_apis_never_panic(
            key in 0i16..93,
            version in 0i16..20,
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let mut frame = frame_of_raw(key, version);
            frame.extend_from_slice(&[0, 0]);
            frame.extend_from_slice(&body);
            let _ = decode_request(Bytes::from(frame), &crate_versions);
        }

        #[test]
        fn mutated_valid_frames_never_panic(
            which in 0usize..6,
            mutations in proptest::collection::vec(mutation(), 1..8),
        ) {
            let mut frame = valid_frames()[which].to_vec();
            for m in &mutations {
                apply(&mut frame, m);
            }
            // Whatever it decodes to, it decodes the same way through both tables.
            let narrow = decode_request(Bytes::from(frame.clone()), &supported_versions);
            let wide = decode_request(Bytes::from(frame), &crate_versions);
            if let Ok(decoded) = narrow {
                prop_assert_eq!(Some(decoded), wide.ok());
            }
        }
    }
}
