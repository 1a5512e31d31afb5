//! The broker against bad input on the wire: malformed and oversized frames, unknown
//! apis and versions, hostile lengths, corrupt batches and bad topic names. Each gets the
//! protocol's error or a closed connection, and the broker keeps serving.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, RequestHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes, encode_request_header_into_buffer};
use tributary::broker::server::{BrokerSettings, RunningBroker};
use tributary::log::batch::BatchBuilder;
use tributary::log::compression::Compression;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn start(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> RunningBroker {
    let mut settings = BrokerSettings::new(dir);
    settings.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    settings.max_request_bytes = 1 << 20;
    rt.block_on(RunningBroker::start(settings))
        .expect("broker starts")
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// Read one response frame; `None` if the broker closed the connection.
fn read_frame(s: &mut TcpStream) -> Option<Bytes> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    Some(Bytes::from(body))
}

fn send_raw(s: &mut TcpStream, frame: &[u8]) {
    let _ = s.write_all(&(frame.len() as i32).to_be_bytes());
    let _ = s.write_all(frame);
}

fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

fn request(api_key: ApiKey, version: i16, correlation_id: i32, body: &impl Encodable) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("hostile-test")));
    encode_request_header_into_buffer(&mut buf, &header).expect("header");
    body.encode(&mut buf, version).expect("body");
    buf.to_vec()
}

/// An ApiVersions v3 round trip: proof the broker still serves.
fn still_serves(addr: SocketAddr) {
    let mut s = connect(addr);
    let body = kafka_protocol::messages::ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("t"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    send_raw(&mut s, &request(ApiKey::ApiVersions, 3, 7, &body));
    let mut resp = read_frame(&mut s).expect("ApiVersions answered");
    assert_eq!(&resp[..4], &7i32.to_be_bytes(), "correlation id");
    let _ = bytes::Buf::get_i32(&mut resp);
    let body =
        kafka_protocol::messages::ApiVersionsResponse::decode(&mut resp, 3).expect("decodes");
    assert_eq!(body.error_code, 0);
    assert!(
        body.api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::Produce as i16)
    );
}

fn produce(addr: SocketAddr, topic: &str, records: Bytes) -> ProduceResponse {
    let mut s = connect(addr);
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ]),
        ]);
    send_raw(&mut s, &request(ApiKey::Produce, 7, 11, &req));
    let mut resp = read_frame(&mut s).expect("produce answered");
    let _ = bytes::Buf::get_i32(&mut resp);
    ProduceResponse::decode(&mut resp, 7).expect("decodes")
}

fn error_of(resp: &ProduceResponse) -> i16 {
    resp.responses[0].partition_responses[0].error_code
}

#[test]
fn bad_frames_close_the_connection_and_the_broker_carries_on() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(&rt, dir.path());
    let addr = broker.addr;

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("negative length", (-5i32).to_be_bytes().to_vec()),
        (
            "over socket.request.max.bytes",
            (2i32 << 20).to_be_bytes().to_vec(),
        ),
        ("unknown api key", {
            let mut f = BytesMut::new();
            f.put_i32(8);
            f.put_i16(9999);
            f.put_i16(0);
            f.put_i32(1);
            f.to_vec()
        }),
        ("truncated header", {
            let mut f = BytesMut::new();
            f.put_i32(3);
            f.put_slice(&[0, 3, 0]);
            f.to_vec()
        }),
        ("metadata claiming i32::MAX topics", {
            let mut body = BytesMut::new();
            body.put_i16(ApiKey::Metadata as i16);
            body.put_i16(4);
            body.put_i32(1);
            body.put_i16(-1); // null client id
            body.put_i32(i32::MAX);
            let mut f = BytesMut::new();
            f.put_i32(body.len() as i32);
            f.put_slice(&body);
            f.to_vec()
        }),
        ("garbage after a valid body", {
            let mut r = request(
                ApiKey::Metadata,
                4,
                1,
                &kafka_protocol::messages::MetadataRequest::default(),
            );
            r.extend_from_slice(&[1, 2, 3]);
            let mut f = (r.len() as i32).to_be_bytes().to_vec();
            f.extend(r);
            f
        }),
    ];
    for (name, bytes) in cases {
        let mut s = connect(addr);
        let _ = s.write_all(&bytes);
        assert!(closed(&mut s), "{name}: the connection should be closed");
        still_serves(addr);
    }

    // An ApiVersions version the broker does not serve: error 35 in a v0 body (KIP-511).
    let mut s = connect(addr);
    let mut f = BytesMut::new();
    f.put_i16(ApiKey::ApiVersions as i16);
    f.put_i16(99);
    f.put_i32(42);
    f.put_i16(-1);
    send_raw(&mut s, &f);
    let mut resp = read_frame(&mut s).expect("answered");
    assert_eq!(bytes::Buf::get_i32(&mut resp), 42);
    let body =
        kafka_protocol::messages::ApiVersionsResponse::decode(&mut resp, 0).expect("v0 body");
    assert_eq!(body.error_code, 35);
    assert!(!body.api_keys.is_empty());
    rt.block_on(broker.stop()).expect("clean stop");
}

#[test]
fn bad_batches_and_topic_names_get_error_codes() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(&rt, dir.path());
    let addr = broker.addr;
    let good = {
        let mut b = BatchBuilder::new(Compression::None);
        b.push(1, Some(b"k"), Some(b"v"), &[]);
        b.build().expect("batch")
    };
    // Auto-create the topic through the first good produce's Metadata-less path: create it.
    broker
        .broker
        .store
        .create_topic("t", Some(1), Default::default())
        .expect("create");
    assert_eq!(error_of(&produce(addr, "t", Bytes::from(good.clone()))), 0);

    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    assert_eq!(
        error_of(&produce(addr, "t", Bytes::from(bad_crc))),
        2,
        "CORRUPT_MESSAGE"
    );

    let mut short = good.clone();
    short.truncate(good.len() - 3);
    assert_ne!(error_of(&produce(addr, "t", Bytes::from(short))), 0);

    let big = {
        let mut b = BatchBuilder::new(Compression::None);
        b.push(1, None, Some(&vec![7u8; 1_100_000]), &[]);
        b.build().expect("batch")
    };
    // Over the 1 MiB frame limit of this broker: the connection closes.
    let mut s = connect(addr);
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(Bytes::from(big))),
                ]),
        ]);
    send_raw(&mut s, &request(ApiKey::Produce, 7, 1, &req));
    assert!(closed(&mut s));

    assert_eq!(
        error_of(&produce(addr, "no such topic", Bytes::from(good.clone()))),
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(error_of(&produce(addr, "missing", Bytes::from(good))), 3);
    // Nothing bad was written: the log holds exactly the one good record.
    let log = broker.broker.store.partition("t", 0).expect("partition");
    assert_eq!(log.log_end_offset(), 1);
    still_serves(addr);
    rt.block_on(broker.stop()).expect("clean stop");
}

#[test]
fn transactional_producers_are_refused_at_once() {
    use kafka_protocol::messages::{
        FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest,
        InitProducerIdResponse, TransactionalId,
    };
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(&rt, dir.path());
    let mut s = connect(broker.addr);
    let find = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_key(StrBytes::from_static_str("tx-1"));
    send_raw(&mut s, &request(ApiKey::FindCoordinator, 3, 1, &find));
    let mut resp = read_frame(&mut s).expect("answered");
    let _ = bytes::Buf::get_i32(&mut resp);
    let _ = bytes::Buf::get_i8(&mut resp); // flexible response header: no tagged fields
    let found = FindCoordinatorResponse::decode(&mut resp, 3).expect("decodes");
    assert_eq!(
        found.error_code, 0,
        "the transaction coordinator is this node"
    );
    assert_eq!(found.port, i32::from(broker.addr.port()));

    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx-1"))))
        .with_transaction_timeout_ms(60_000);
    send_raw(&mut s, &request(ApiKey::InitProducerId, 1, 2, &init));
    let mut resp = read_frame(&mut s).expect("answered");
    let _ = bytes::Buf::get_i32(&mut resp);
    let init = InitProducerIdResponse::decode(&mut resp, 1).expect("decodes");
    assert_eq!(
        init.error_code, 53,
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED: fatal for clients"
    );
    rt.block_on(broker.stop()).expect("clean stop");
}
