//! One TCP connection to one broker: framing with a cap on response sizes, requests
//! pipelined and matched to answers by correlation id, per-request timeouts, and the
//! ApiVersions handshake (with KIP-511's fallback) that fixes which version of each api
//! the connection speaks.
//!
//! Not here: which broker to talk to, retries, or what a response means
//! ([`super::cluster`] does that). A connection that fails in any way (a write error, a
//! frame it cannot read, an answer nobody asked for, a request timeout) is closed and
//! every request waiting on it fails; the cluster opens a new one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::error::RemoteError;

/// The versions of each api this client speaks: low enough for Kafka 2.1+ and
/// Tributary's broker, and no higher than the last version without topic ids (Produce 9,
/// Fetch 12, Metadata 12) or the batched group forms (FindCoordinator 4, OffsetFetch 8),
/// which this client does not build.
pub const CLIENT_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::FindCoordinator, 1, 3),
    (ApiKey::JoinGroup, 0, 7),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 4),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 5),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
];

/// What a connection is set up with.
#[derive(Clone, Debug)]
pub struct ConnConfig {
    pub client_id: String,
    /// `socket.connection.setup.timeout.ms`: TCP connect plus the ApiVersions handshake.
    pub connect_timeout: Duration,
    /// The largest response frame read; a larger length prefix closes the connection
    /// before a byte of it is buffered.
    pub max_response_bytes: usize,
}

/// A frame for the writer, and whom to tell once it is on the socket.
type Outgoing = (Bytes, Option<oneshot::Sender<()>>);

/// Why a connection closed, handed to every request that was waiting on it.
type Waiter = oneshot::Sender<Result<Bytes, String>>;

#[derive(Debug, Default)]
struct Pending {
    waiters: HashMap<i32, Waiter>,
    closed: Option<String>,
}

#[derive(Debug)]
struct Shared {
    pending: Mutex<Pending>,
    /// Stops the reader (any close).
    stop: CancellationToken,
    /// Stops the writer at once (a close on error); a clean close lets it write what
    /// is queued (an acks=0 produce just handed over) and end when the queue does.
    abort: CancellationToken,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Close once: fail every waiter with `reason`, stop reading, and stop writing too
    /// unless `drain`.
    fn close_with(&self, reason: String, drain: bool) {
        let waiters = {
            let mut p = self.lock();
            if p.closed.is_none() {
                p.closed = Some(reason.clone());
            }
            std::mem::take(&mut p.waiters)
        };
        for (_, w) in waiters {
            let _ = w.send(Err(reason.clone()));
        }
        self.stop.cancel();
        if !drain {
            self.abort.cancel();
        }
    }

    fn close(&self, reason: String) {
        self.close_with(reason, false);
    }
}

/// An open, negotiated connection. Cheap to share; dropping the last handle closes it.
#[derive(Debug)]
pub struct Conn {
    pub addr: String,
    /// The broker's (min, max) per api key.
    broker_versions: HashMap<i16, (i16, i16)>,
    tx: mpsc::Sender<Outgoing>,
    shared: Arc<Shared>,
    next_id: AtomicI32,
    client_id: StrBytes,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.shared
            .close_with("the client closed the connection".into(), true);
    }
}

impl Conn {
    /// Connect to `addr` and negotiate api versions, within `config.connect_timeout`.
    pub async fn open(addr: &str, config: &ConnConfig) -> Result<Conn, RemoteError> {
        let connect_error = |reason: String| RemoteError::Connect {
            broker: addr.to_owned(),
            reason,
        };
        let deadline = tokio::time::Instant::now() + config.connect_timeout;
        let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(connect_error(format!(
                    "no TCP connection within {:?} (socket.connection.setup.timeout.ms)",
                    config.connect_timeout
                )));
            }
            Ok(Err(e)) => return Err(connect_error(e.to_string())),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            stop: CancellationToken::new(),
            abort: CancellationToken::new(),
        });
        // Bounded: a caller waits for room rather than queueing without limit.
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(write_loop(write, rx, shared.clone()));
        tokio::spawn(read_loop(read, shared.clone(), config.max_response_bytes));
        let mut conn = Conn {
            addr: addr.to_owned(),
            broker_versions: HashMap::new(),
            tx,
            shared,
            next_id: AtomicI32::new(0),
            client_id: StrBytes::from_string(config.client_id.clone()),
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        conn.broker_versions = conn.negotiate(left).await.map_err(|e| match e {
            RemoteError::Timeout { .. } | RemoteError::Disconnected { .. } => {
                connect_error(format!("ApiVersions handshake failed: {e}"))
            }
            other => other,
        })?;
        Ok(conn)
    }

    /// Whether the connection is still usable.
    pub fn is_open(&self) -> bool {
        self.shared.lock().closed.is_none()
    }

    /// Close it now (every waiting request fails with `reason`).
    pub fn close(&self, reason: String) {
        self.shared.close(reason);
    }

    /// The highest version of `api` both sides speak.
    pub fn version(&self, api: ApiKey) -> Result<i16, RemoteError> {
        let (client_min, client_max) = CLIENT_VERSIONS
            .iter()
            .find(|(k, _, _)| *k == api)
            .map_or((0, -1), |&(_, lo, hi)| (lo, hi));
        let broker = self.broker_versions.get(&(api as i16)).copied();
        match broker {
            Some((lo, hi)) if lo.max(client_min) <= hi.min(client_max) => Ok(hi.min(client_max)),
            _ => Err(RemoteError::UnsupportedVersion {
                broker: self.addr.clone(),
                api: api_name(api),
                broker_versions: broker.map_or("none".into(), |(lo, hi)| format!("{lo}..={hi}")),
                client_min,
                client_max,
            }),
        }
    }

    /// Send `req` at `version` and wait (at most `timeout`) for its answer.
    pub async fn call<R>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, RemoteError>
    where
        R: Request,
    {
        let api = api_key(R::KEY);
        let frame = self.call_raw(R::KEY, version, req, timeout).await?;
        let mut buf = frame;
        let malformed = |reason: String| RemoteError::Malformed {
            broker: self.addr.clone(),
            api: api_name(api),
            version,
            reason,
        };
        ResponseHeader::decode(&mut buf, api.response_header_version(version))
            .map_err(|e| malformed(format!("response header: {e:#}")))?;
        let body =
            R::Response::decode(&mut buf, version).map_err(|e| malformed(format!("{e:#}")))?;
        Ok(body)
    }

    /// Send a request that gets no answer (Produce with acks=0).
    pub async fn send_only<R: Request>(&self, req: &R, version: i16) -> Result<(), RemoteError> {
        let id = self.next_correlation_id();
        let frame = self.encode(R::KEY, version, id, req)?;
        self.check_open(api_key(R::KEY))?;
        // Returns once the frame is written: nothing else says it left.
        let (tx, rx) = oneshot::channel();
        self.push(R::KEY, (frame, Some(tx))).await?;
        rx.await.map_err(|_| RemoteError::Disconnected {
            broker: self.addr.clone(),
            api: api_name(api_key(R::KEY)),
            reason: "the connection closed before the request was written".into(),
        })
    }

    fn next_correlation_id(&self) -> i32 {
        self.next_id.fetch_add(1, Ordering::Relaxed) & i32::MAX
    }

    fn check_open(&self, api: ApiKey) -> Result<(), RemoteError> {
        match &self.shared.lock().closed {
            Some(reason) => Err(RemoteError::Disconnected {
                broker: self.addr.clone(),
                api: api_name(api),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// The response frame (correlation id first) of one request.
    async fn call_raw<R: Encodable>(
        &self,
        key: i16,
        version: i16,
        req: &R,
        timeout: Duration,
    ) -> Result<Bytes, RemoteError> {
        let api = api_key(key);
        let id = self.next_correlation_id();
        let frame = self.encode(key, version, id, req)?;
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.shared.lock();
            if let Some(reason) = &p.closed {
                return Err(RemoteError::Disconnected {
                    broker: self.addr.clone(),
                    api: api_name(api),
                    reason: reason.clone(),
                });
            }
            p.waiters.insert(id, tx);
        }
        // A caller that gives up (its future dropped) takes its entry with it.
        let _forget = Forget {
            shared: &self.shared,
            id,
        };
        self.push(key, (frame, None)).await?;
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => {
                self.shared.lock().waiters.remove(&id);
                // A late answer would arrive out of order for nobody: close, as Kafka does.
                self.close(format!(
                    "{} request timed out after {timeout:?}",
                    api_name(api)
                ));
                Err(RemoteError::Timeout {
                    broker: self.addr.clone(),
                    api: api_name(api),
                    timeout,
                })
            }
            Ok(Err(_)) => Err(RemoteError::Disconnected {
                broker: self.addr.clone(),
                api: api_name(api),
                reason: "the connection closed".into(),
            }),
            Ok(Ok(Err(reason))) => Err(RemoteError::Disconnected {
                broker: self.addr.clone(),
                api: api_name(api),
                reason,
            }),
            Ok(Ok(Ok(frame))) => Ok(frame),
        }
    }

    async fn push(&self, key: i16, frame: Outgoing) -> Result<(), RemoteError> {
        self.tx
            .send(frame)
            .await
            .map_err(|_| RemoteError::Disconnected {
                broker: self.addr.clone(),
                api: api_name(api_key(key)),
                reason: "the connection closed".into(),
            })
    }

    /// Length prefix, request header, body.
    fn encode<R: Encodable>(
        &self,
        key: i16,
        version: i16,
        correlation_id: i32,
        req: &R,
    ) -> Result<Bytes, RemoteError> {
        let api = api_key(key);
        let header = RequestHeader::default()
            .with_request_api_key(key)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let mut buf = BytesMut::with_capacity(128);
        buf.put_i32(0);
        let encoded = header
            .encode(&mut buf, api.request_header_version(version))
            .and_then(|()| req.encode(&mut buf, version));
        if let Err(e) = encoded {
            // A field set that the negotiated version lacks: a bug in this client.
            return Err(RemoteError::Malformed {
                broker: self.addr.clone(),
                api: api_name(api),
                version,
                reason: format!("cannot encode the request: {e:#}"),
            });
        }
        let len = i32::try_from(buf.len() - 4).map_err(|_| RemoteError::Malformed {
            broker: self.addr.clone(),
            api: api_name(api),
            version,
            reason: format!("a request of {} bytes does not fit a frame", buf.len()),
        })?;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        Ok(buf.freeze())
    }

    /// ApiVersions at the highest version this client speaks; on UNSUPPORTED_VERSION the
    /// broker answers with a v0 body listing its versions (KIP-511): retry at the highest
    /// ApiVersions version both speak.
    async fn negotiate(&self, timeout: Duration) -> Result<HashMap<i16, (i16, i16)>, RemoteError> {
        let mut version: i16 = 3;
        for _ in 0..3 {
            let mut req = ApiVersionsRequest::default();
            if version >= 3 {
                req = req
                    .with_client_software_name(StrBytes::from_static_str("tributary"))
                    .with_client_software_version(StrBytes::from_static_str(env!(
                        "CARGO_PKG_VERSION"
                    )));
            }
            let frame = self
                .call_raw(ApiKey::ApiVersions as i16, version, &req, timeout)
                .await?;
            // ApiVersions answers always carry response header v0: the correlation id.
            let body = frame.slice(4.min(frame.len())..);
            let malformed = |reason: String| RemoteError::Malformed {
                broker: self.addr.clone(),
                api: "ApiVersions",
                version,
                reason,
            };
            let error = (body.len() >= 2).then(|| i16::from_be_bytes([body[0], body[1]]));
            if error == Some(35) {
                let resp = ApiVersionsResponse::decode(&mut body.clone(), 0)
                    .map_err(|e| malformed(format!("{e:#}")))?;
                let theirs = resp
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                    .map_or(0, |k| k.max_version);
                let next = theirs.min(3);
                if next >= version {
                    return Err(malformed(format!(
                        "UNSUPPORTED_VERSION for ApiVersions v{version}, yet it lists v{theirs}"
                    )));
                }
                version = next.max(0);
                continue;
            }
            // Kafka's clients fall back to v0 when the body does not parse at the version
            // asked for (a broker answering the KIP-511 way without the error code).
            let resp = ApiVersionsResponse::decode(&mut body.clone(), version)
                .or_else(|e| ApiVersionsResponse::decode(&mut body.clone(), 0).map_err(|_| e))
                .map_err(|e| malformed(format!("{e:#}")))?;
            if resp.error_code != 0 {
                return Err(RemoteError::Request {
                    api: "ApiVersions",
                    broker: self.addr.clone(),
                    what: "the connection handshake".into(),
                    code: resp.error_code,
                    name: super::error::code_name(resp.error_code),
                    message: String::new(),
                });
            }
            return Ok(resp
                .api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect());
        }
        Err(RemoteError::Malformed {
            broker: self.addr.clone(),
            api: "ApiVersions",
            version,
            reason: "the broker refused every ApiVersions version".into(),
        })
    }
}

/// Removes a request's waiter when the call ends, however it ends (a no-op once the
/// answer took it).
struct Forget<'a> {
    shared: &'a Shared,
    id: i32,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.shared.lock().waiters.remove(&self.id);
    }
}

fn api_key(key: i16) -> ApiKey {
    ApiKey::try_from(key).unwrap_or(ApiKey::ApiVersions)
}

/// The api's name as Kafka spells it, for messages.
pub fn api_name(api: ApiKey) -> &'static str {
    match api {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::DeleteGroups => "DeleteGroups",
        _ => "request",
    }
}

async fn write_loop(
    mut write: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
) {
    loop {
        let (frame, written) = tokio::select! {
            _ = shared.abort.cancelled() => break,
            f = rx.recv() => match f {
                Some(f) => f,
                None => break,
            },
        };
        if let Err(e) = write.write_all(&frame).await {
            shared.close(format!("write failed: {e}"));
            break;
        }
        if let Some(w) = written {
            let _ = w.send(());
        }
    }
    let _ = write.shutdown().await;
}

async fn read_loop(mut read: OwnedReadHalf, shared: Arc<Shared>, max: usize) {
    let reason = loop {
        let frame = tokio::select! {
            _ = shared.stop.cancelled() => return,
            f = read_frame(&mut read, max) => f,
        };
        let frame = match frame {
            Ok(f) => f,
            Err(reason) => break reason,
        };
        if frame.len() < 4 {
            break format!("a response of {} bytes has no correlation id", frame.len());
        }
        let id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let waiter = shared.lock().waiters.remove(&id);
        match waiter {
            Some(w) => {
                let _ = w.send(Ok(frame));
            }
            None => {
                break format!("an answer with correlation id {id} that no request is waiting for");
            }
        }
    };
    shared.close(reason);
}

/// One response frame (without its length prefix). The buffer grows with the bytes that
/// arrive, so a length prefix alone never makes it allocate.
async fn read_frame(read: &mut OwnedReadHalf, max: usize) -> Result<Bytes, String> {
    let mut prefix = [0u8; 4];
    match read.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err("the broker closed the connection".into());
        }
        Err(e) => return Err(format!("read failed: {e}")),
    }
    let len = i32::from_be_bytes(prefix);
    let Ok(len) = usize::try_from(len) else {
        return Err(format!(
            "response length {len} is negative: the peer does not speak the Kafka protocol"
        ));
    };
    if len > max {
        return Err(format!(
            "a response of {len} bytes exceeds the limit of {max} (receive.message.max.bytes)"
        ));
    }
    const STEP: usize = 1 << 20;
    let mut buf = BytesMut::with_capacity(len.min(STEP));
    while buf.len() < len {
        if buf.capacity() == buf.len() {
            buf.reserve((len - buf.len()).min(buf.len().max(STEP)));
        }
        let room = buf.capacity() - buf.len();
        let want = (len - buf.len()).min(room);
        let mut limited = (&mut *read).take(want as u64);
        match limited.read_buf(&mut buf).await {
            Ok(0) => return Err("the broker closed the connection mid-response".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
    Ok(buf.freeze())
}
