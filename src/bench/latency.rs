//! A minimal Kafka producer for measuring produce-to-acknowledge latency: blocking TCP
//! sockets, Produce v7 with `acks=-1`, one batch of one record per request, built once
//! with [`BatchBuilder`] and sent again and again (the broker assigns the offsets).
//!
//! Two measurements, on the same connections:
//! - [`peak`]: closed loop, a window of requests in flight on each connection, for the
//!   most requests per second the broker completes.
//! - [`paced`]: open loop at a fixed rate. Request `i` is due at `start + i / rate`
//!   whether or not earlier ones were answered, and its latency runs from that due time
//!   to its response. Timing from the actual send instead would hide every stall behind
//!   the requests it delayed (coordinated omission): a broker that froze for 100 ms
//!   would hold back the sender and be charged for one slow request, not for all the
//!   requests that were due during the freeze.
//!
//! The same-run reference, [`echo_reference`]: the same paced client against a server in
//! this process that answers each request with a fixed, valid Produce response, one
//! blocking thread per connection. It does no work, so its latency is the machine's own
//! floor for a paced request-response over loopback: thread wake-ups, loopback TCP, the
//! client. On a virtual machine that floor has a tail of its own (a vCPU that halted
//! waits for the host to run it again), and the broker cannot be faster than it.
//!
//! What it is not: a Kafka client. No retries, no metadata refresh, no partitioner;
//! any error from the broker fails the measurement.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, DeleteTopicsRequest, DeleteTopicsResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes, encode_request_header_into_buffer};
use serde::Serialize;

use super::disk;
use crate::log::batch::BatchBuilder;
use crate::log::compression::Compression;

/// The Produce version kcat 1.7.1 (librdkafka 2.0.2) sends: the same request shape.
const PRODUCE_VERSION: i16 = 7;
const METADATA_VERSION: i16 = 4;
/// DeleteTopics by name, non-flexible (response header v0).
const DELETE_TOPICS_VERSION: i16 = 3;
const CLIENT_ID: &str = "tributary-bench";
/// Where the correlation id sits in a request frame: after the length prefix (4), the
/// api key (2) and the api version (2).
const CORRELATION_AT: usize = 8;
/// No response may take longer than this; the broker is considered stuck after it.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and what to produce.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub topic: String,
    pub value_size: usize,
}

/// The closed-loop maximum.
#[derive(Clone, Debug, Serialize)]
pub struct Peak {
    pub connections: usize,
    pub window: usize,
    /// Requests answered before the deadline.
    pub requests: u64,
    pub secs: f64,
}

impl Peak {
    pub fn requests_per_s(&self) -> f64 {
        self.requests as f64 / self.secs
    }
}

/// The open-loop measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Paced {
    pub connections: usize,
    pub target_per_s: f64,
    pub requests: u64,
    pub secs: f64,
    /// Due time to response, in microseconds.
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// How late the client itself sent (due time to the `write`), in microseconds: the
    /// part of the latency that is the client's, on a machine whose cores it shares.
    pub send_late_p99_us: f64,
    pub send_late_max_us: f64,
}

impl Paced {
    pub fn requests_per_s(&self) -> f64 {
        self.requests as f64 / self.secs
    }
}

/// Make sure `target.topic` exists (Metadata with auto-creation), then check that a
/// produce request is accepted.
pub fn prepare(target: &Target) -> anyhow::Result<()> {
    let mut conn = Connection::open(target)?;
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
            TopicName(StrBytes::from_string(target.topic.clone())),
        ))]))
        .with_allow_auto_topic_creation(true);
    let meta: MetadataResponse = conn.call(ApiKey::Metadata, METADATA_VERSION, &request)?;
    let error = meta.topics.first().map_or(-1, |t| t.error_code);
    ensure!(
        error == 0,
        "metadata for topic {:?} answered error code {error}",
        target.topic
    );
    conn.send(0)?;
    conn.receive(0)
}

/// Delete `topic` (its segment files, and with them its pages in the page cache).
pub fn delete_topic(addr: SocketAddr, topic: &str) -> anyhow::Result<()> {
    let target = Target {
        addr,
        topic: topic.to_owned(),
        value_size: 1,
    };
    let mut conn = Connection::open(&target)?;
    let request = DeleteTopicsRequest::default()
        .with_topic_names(vec![TopicName(StrBytes::from_string(topic.to_owned()))])
        .with_timeout_ms(30_000);
    let resp: DeleteTopicsResponse =
        conn.call(ApiKey::DeleteTopics, DELETE_TOPICS_VERSION, &request)?;
    let error = resp.responses.first().map_or(-1, |t| t.error_code);
    ensure!(
        error == 0,
        "deleting topic {topic:?} answered error code {error}"
    );
    Ok(())
}

/// The most requests per second `connections` connections with `window` requests in
/// flight each get answered, over `duration`.
pub fn peak(
    target: &Target,
    connections: usize,
    window: usize,
    duration: Duration,
) -> anyhow::Result<Peak> {
    let start = Instant::now();
    let deadline = start + duration;
    let counts = std::thread::scope(|s| {
        let handles: Vec<_> = (0..connections)
            .map(|_| s.spawn(move || closed_loop(target, window, deadline)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<anyhow::Result<Vec<u64>>>()
    })?;
    Ok(Peak {
        connections,
        window,
        requests: counts.iter().sum(),
        secs: duration.as_secs_f64(),
    })
}

fn closed_loop(target: &Target, window: usize, deadline: Instant) -> anyhow::Result<u64> {
    let mut conn = Connection::open(target)?;
    let (mut sent, mut answered, mut in_time) = (0i32, 0i32, 0u64);
    while (sent as usize) < window {
        conn.send(sent)?;
        sent += 1;
    }
    while answered < sent {
        conn.receive(answered)?;
        answered += 1;
        if Instant::now() < deadline {
            in_time += 1;
            conn.send(sent)?;
            sent += 1;
        }
    }
    Ok(in_time)
}

/// `rate` requests per second for `duration`, spread round-robin over `connections`,
/// each timed from when it was due.
///
/// One thread sends for every connection and one thread per connection reads: on a
/// two-core machine shared with the broker, each client thread costs the broker CPU.
pub fn paced(
    target: &Target,
    connections: usize,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Paced> {
    ensure!(rate > 0.0, "the paced rate must be positive");
    let total = (rate * duration.as_secs_f64()).floor() as u64;
    ensure!(
        total >= connections as u64,
        "{rate:.0} requests/s for {duration:?} is fewer requests than connections"
    );
    let mut readers = Vec::with_capacity(connections);
    let mut writers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let conn = Connection::open(target)?;
        writers.push(conn.stream.try_clone().context("cloning the socket")?);
        readers.push(conn);
    }
    let frame = readers[0].frame.clone();
    // Time for every thread to be up before the first request is due.
    let start = Instant::now() + Duration::from_millis(50);
    let schedule = Schedule {
        start,
        rate,
        connections: connections as u64,
        total,
    };
    let (per_conn, late) = std::thread::scope(|s| {
        let handles: Vec<_> = readers
            .into_iter()
            .enumerate()
            .map(|(c, conn)| s.spawn(move || read_paced(conn, c as u64, schedule)))
            .collect();
        let late = send_paced(&mut writers, frame, schedule);
        if late.is_err() {
            // Unblock the readers: their responses will not come.
            for w in &writers {
                let _ = w.shutdown(std::net::Shutdown::Both);
            }
        }
        let per_conn = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<Vec<anyhow::Result<Vec<f64>>>>();
        (per_conn, late)
    });
    let mut late = late?;
    let mut latencies = Vec::with_capacity(total as usize);
    for l in per_conn {
        latencies.extend(l?);
    }
    let secs = start.elapsed().as_secs_f64();
    let requests = latencies.len() as u64;
    let max_us = latencies.iter().copied().fold(0.0, f64::max);
    let send_late_max_us = late.iter().copied().fold(0.0, f64::max);
    Ok(Paced {
        connections,
        target_per_s: rate,
        requests,
        secs,
        p50_us: disk::percentile(&mut latencies, 0.50),
        p99_us: disk::percentile(&mut latencies, 0.99),
        p999_us: disk::percentile(&mut latencies, 0.999),
        max_us,
        send_late_p99_us: disk::percentile(&mut late, 0.99),
        send_late_max_us,
    })
}

/// When each request is due: request `i` (counted over all connections) at
/// `start + i / rate`, on connection `i % connections`, where it is the
/// `i / connections`-th request (its correlation id).
#[derive(Clone, Copy, Debug)]
struct Schedule {
    start: Instant,
    rate: f64,
    connections: u64,
    total: u64,
}

impl Schedule {
    /// The global indexes of connection `c`'s requests, in order.
    fn requests_of(self, c: u64) -> impl Iterator<Item = u64> {
        (c..self.total).step_by(self.connections as usize)
    }

    fn due(self, i: u64) -> Instant {
        self.start + Duration::from_secs_f64(i as f64 / self.rate)
    }
}

/// Send every request when it is due (sleeping until then; a request already due goes
/// at once). Returns how late each send was, in µs.
fn send_paced(
    writers: &mut [TcpStream],
    mut frame: Vec<u8>,
    schedule: Schedule,
) -> anyhow::Result<Vec<f64>> {
    let mut late = Vec::with_capacity(schedule.total as usize);
    for i in 0..schedule.total {
        let due = schedule.due(i);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let correlation_id = (i / schedule.connections) as i32;
        frame[CORRELATION_AT..CORRELATION_AT + 4].copy_from_slice(&correlation_id.to_be_bytes());
        let sent = Instant::now();
        writers[(i % schedule.connections) as usize]
            .write_all(&frame)
            .context("sending a produce request")?;
        late.push(sent.saturating_duration_since(due).as_secs_f64() * 1e6);
    }
    Ok(late)
}

/// Read connection `c`'s responses; returns each request's latency from its due time,
/// in µs.
fn read_paced(mut conn: Connection, c: u64, schedule: Schedule) -> anyhow::Result<Vec<f64>> {
    let mut latencies = Vec::new();
    for (n, i) in schedule.requests_of(c).enumerate() {
        conn.receive(n as i32)?;
        let done = Instant::now();
        latencies.push(
            done.saturating_duration_since(schedule.due(i))
                .as_secs_f64()
                * 1e6,
        );
    }
    Ok(latencies)
}

/// [`paced`] against a loopback server that answers every request at once with a fixed
/// Produce response: the machine's floor for the same schedule. `target` gives the
/// request (its address is not used).
pub fn echo_reference(
    target: &Target,
    connections: usize,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Paced> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the echo reference")?;
    listener.set_nonblocking(true)?;
    let echo_target = Target {
        addr: listener.local_addr()?,
        ..target.clone()
    };
    let response = echo_response_frame(&target.topic)?;
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (listener, response, done) = (&listener, &response, &done);
        s.spawn(move || {
            let mut accepted = 0;
            while accepted < connections && !done.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((socket, _)) => {
                        accepted += 1;
                        s.spawn(move || echo(socket, response));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(_) => break,
                }
            }
        });
        let result = paced(&echo_target, connections, rate, duration);
        done.store(true, Ordering::Relaxed);
        result
    })
}

/// Answer each request frame on `socket` with `response`, its correlation id patched
/// in, until the client closes the connection.
fn echo(socket: TcpStream, response: &[u8]) {
    let _ = socket.set_nonblocking(false);
    let _ = socket.set_nodelay(true);
    let Ok(mut writer) = socket.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(socket);
    let mut response = response.to_vec();
    let mut frame = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if reader.read_exact(&mut len).is_err() {
            return;
        }
        frame.resize(i32::from_be_bytes(len).clamp(0, 1 << 20) as usize, 0);
        if reader.read_exact(&mut frame).is_err() || frame.len() < 8 {
            return;
        }
        // The correlation id follows the api key and version.
        response[4..8].copy_from_slice(&frame[4..8]);
        if writer.write_all(&response).is_err() {
            return;
        }
    }
}

/// A Produce v7 response frame for partition 0 of `topic`, no error, correlation id 0.
fn echo_response_frame(topic: &str) -> anyhow::Result<Vec<u8>> {
    let body = kafka_protocol::messages::ProduceResponse::default().with_responses(vec![
        TopicProduceResponse::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_responses(vec![
                PartitionProduceResponse::default()
                    .with_index(0)
                    .with_base_offset(0),
            ]),
    ]);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0; 4]);
    ResponseHeader::default()
        .with_correlation_id(0)
        .encode(
            &mut buf,
            ApiKey::Produce.response_header_version(PRODUCE_VERSION),
        )
        .map_err(|e| anyhow::anyhow!("encoding a response header: {e:#}"))?;
    body.encode(&mut buf, PRODUCE_VERSION)
        .map_err(|e| anyhow::anyhow!("encoding a produce response: {e:#}"))?;
    let len = i32::try_from(buf.len() - 4)?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.to_vec())
}

/// One socket and the produce request it sends, encoded once.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    frame: Vec<u8>,
}

impl Connection {
    fn open(target: &Target) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(target.addr)
            .with_context(|| format!("connecting to the broker at {}", target.addr))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        let reader = BufReader::with_capacity(64 << 10, stream.try_clone()?);
        Ok(Connection {
            stream,
            reader,
            frame: produce_frame(target)?,
        })
    }

    /// One request other than the produce this connection repeats, and its response
    /// (response header v0: versions whose response is not flexible).
    fn call<R: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: &impl Encodable,
    ) -> anyhow::Result<R> {
        let frame = request_frame(api_key, version, request)?;
        self.stream.write_all(&frame)?;
        let mut body = self.read_response(0)?;
        R::decode(&mut body, version)
            .map_err(|e| anyhow::anyhow!("decoding the {api_key:?} response: {e:#}"))
    }

    fn send(&mut self, correlation_id: i32) -> anyhow::Result<()> {
        self.frame[CORRELATION_AT..CORRELATION_AT + 4]
            .copy_from_slice(&correlation_id.to_be_bytes());
        self.stream
            .write_all(&self.frame)
            .context("sending a produce request")
    }

    /// Read the response to `correlation_id` (the broker answers in order) and check
    /// that its one partition was appended.
    fn receive(&mut self, correlation_id: i32) -> anyhow::Result<()> {
        let mut body = self.read_response(correlation_id)?;
        let resp = ProduceResponse::decode(&mut body, PRODUCE_VERSION)
            .map_err(|e| anyhow::anyhow!("decoding a produce response: {e:#}"))?;
        let part = resp
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .context("a produce response without a partition")?;
        ensure!(
            part.error_code == 0,
            "produce answered error code {}: {:?}",
            part.error_code,
            part.error_message
        );
        Ok(())
    }

    /// One response frame, with its header (v0: the correlation id) checked and removed.
    fn read_response(&mut self, correlation_id: i32) -> anyhow::Result<Bytes> {
        let mut len = [0u8; 4];
        self.reader
            .read_exact(&mut len)
            .context("reading a response (did the broker close the connection?)")?;
        let len = i32::from_be_bytes(len);
        ensure!(
            (4..=64 << 20).contains(&len),
            "response frame length {len} is out of range"
        );
        let mut body = vec![0u8; len as usize];
        self.reader.read_exact(&mut body)?;
        let mut body = Bytes::from(body);
        let got = body.get_i32();
        if got != correlation_id {
            bail!("expected the response to request {correlation_id}, got {got}");
        }
        Ok(body)
    }
}

/// A Produce v7 request frame (length prefix included) with one batch of one record of
/// `value_size` printable bytes, correlation id 0.
fn produce_frame(target: &Target) -> anyhow::Result<Vec<u8>> {
    let mut value = vec![0u8; target.value_size];
    disk::Rng::new(0x1a7e).fill(&mut value);
    for b in &mut value {
        *b = b'a' + *b % 26;
    }
    let mut batch = BatchBuilder::new(Compression::None);
    batch.push(now_ms(), None, Some(&value), &[]);
    let batch = batch.build().context("building the latency batch")?;
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(target.topic.clone())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(Bytes::from(batch))),
                ]),
        ]);
    request_frame(ApiKey::Produce, PRODUCE_VERSION, &request)
}

/// A request frame with its length prefix, correlation id 0.
fn request_frame(api_key: ApiKey, version: i16, body: &impl Encodable) -> anyhow::Result<Vec<u8>> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(0)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0; 4]);
    encode_request_header_into_buffer(&mut buf, &header)
        .map_err(|e| anyhow::anyhow!("encoding a request header: {e:#}"))?;
    body.encode(&mut buf, version)
        .map_err(|e| anyhow::anyhow!("encoding a {api_key:?} request: {e:#}"))?;
    let len = i32::try_from(buf.len() - 4)?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.to_vec())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::broker::server::{BrokerSettings, RunningBroker};

    #[test]
    fn schedule_spreads_requests_round_robin() {
        let s = Schedule {
            start: Instant::now(),
            rate: 1000.0,
            connections: 3,
            total: 8,
        };
        assert_eq!(s.requests_of(0).collect::<Vec<_>>(), vec![0, 3, 6]);
        assert_eq!(s.requests_of(2).collect::<Vec<_>>(), vec![2, 5]);
        assert_eq!(s.due(5) - s.start, Duration::from_millis(5));
    }

    #[test]
    fn the_frame_carries_its_correlation_id_where_it_is_patched() {
        let target = Target {
            addr: SocketAddr::from(([127, 0, 0, 1], 9)),
            topic: "t".into(),
            value_size: 100,
        };
        let frame = produce_frame(&target).unwrap();
        let len = i32::from_be_bytes(frame[..4].try_into().unwrap());
        assert_eq!(len as usize, frame.len() - 4);
        assert_eq!(&frame[4..6], &(ApiKey::Produce as i16).to_be_bytes());
        assert_eq!(&frame[6..8], &PRODUCE_VERSION.to_be_bytes());
        assert_eq!(&frame[CORRELATION_AT..CORRELATION_AT + 4], &[0; 4]);
    }

    #[test]
    fn the_echo_reference_answers_every_request() {
        let target = Target {
            addr: SocketAddr::from(([127, 0, 0, 1], 9)),
            topic: "echo".into(),
            value_size: 100,
        };
        let r = echo_reference(&target, 2, 500.0, Duration::from_millis(100)).unwrap();
        assert_eq!(r.requests, 50);
        assert!(r.p50_us > 0.0 && r.p50_us <= r.max_us);
    }

    #[test]
    fn peak_and_paced_against_a_broker_in_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut settings = BrokerSettings::new(dir.path());
        settings.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let broker = rt.block_on(RunningBroker::start(settings)).unwrap();
        let target = Target {
            addr: broker.addr,
            topic: "latency".into(),
            value_size: 100,
        };
        prepare(&target).unwrap();
        let p = peak(&target, 2, 4, Duration::from_millis(200)).unwrap();
        assert!(p.requests > 0, "{p:?}");
        let paced = paced(&target, 2, 200.0, Duration::from_millis(200)).unwrap();
        assert_eq!(paced.requests, 40);
        assert!(paced.p50_us > 0.0 && paced.p50_us <= paced.p99_us);
        assert!(paced.p99_us <= paced.p999_us && paced.p999_us <= paced.max_us);
        let log = broker.broker.store.partition("latency", 0).unwrap();
        // One from prepare, then every answered request of both phases.
        assert!(log.high_watermark() >= 1 + p.requests as i64 + 40);
        delete_topic(broker.addr, "latency").unwrap();
        assert!(broker.broker.store.partition("latency", 0).is_none());
        assert!(!log.dir().exists(), "the deleted topic's files are gone");
        let again = delete_topic(broker.addr, "latency").unwrap_err();
        assert!(format!("{again:#}").contains("error code 3"), "{again:#}");
        rt.block_on(broker.stop()).unwrap();
    }
}
