//! Kafka Connect's group protocol payloads (`ConnectProtocol` and
//! `IncrementalCooperativeConnectProtocol`): the member metadata a worker sends in
//! JoinGroup and the assignment the leader hands out in SyncGroup, in Kafka's own
//! `Struct` encoding (big-endian integers, int16-length strings, int32-length nullable
//! bytes, int32-count arrays), so the bytes are those Kafka Connect workers exchange.
//!
//! - metadata v0 (`default`, eager): version, url, config offset;
//! - metadata v1/v2 (`compatible`, `sessioned`): the same and the member's current
//!   allocation (its last assignment, encoded as an assignment) as nullable bytes;
//! - assignment v0: version, error, leader, leader url, config offset, and per
//!   connector the task ids it assigns (`-1` is the connector instance itself);
//! - assignment v1/v2: the same, then the revoked work in the same shape and the
//!   scheduled rebalance delay in milliseconds.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The protocol names JoinGroup offers, most capable first (Kafka's
/// `ConnectProtocolCompatibility`).
pub const SESSIONED: &str = "sessioned";
pub const COMPATIBLE: &str = "compatible";
pub const EAGER: &str = "default";

/// The task id that stands for the connector instance (Kafka's `CONNECTOR_TASK`).
pub const CONNECTOR_TASK: i32 = -1;

/// The leader's assignment error codes.
pub const NO_ERROR: i16 = 0;
pub const CONFIG_MISMATCH: i16 = 1;

/// Work as the protocol lists it: connector → task ids (`-1` for the instance).
pub type Work = BTreeMap<String, Vec<i32>>;

/// What a member tells the leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub version: i16,
    /// The member's REST URL, for forwarding.
    pub url: String,
    /// How far the member has read the config topic.
    pub config_offset: i64,
    /// v1+: what the member runs now (its last assignment), for stickiness.
    pub allocation: Option<Assignment>,
}

/// What the leader tells a member.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Assignment {
    pub version: i16,
    pub error: i16,
    /// The leader's member id and REST URL.
    pub leader: String,
    pub leader_url: String,
    /// The config topic offset the assignment was computed at.
    pub config_offset: i64,
    /// Everything the member runs after this rebalance.
    pub assigned: Work,
    /// v1+: what the member must stop now (it rejoins right after).
    pub revoked: Work,
    /// v1+: milliseconds until the leader reassigns departed workers' work.
    pub delay_ms: i32,
}

/// A payload that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Connect protocol {what}: {reason}")]
pub struct ProtocolError {
    pub what: &'static str,
    pub reason: String,
}

impl Metadata {
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(self.version);
        put_string(&mut b, &self.url);
        b.put_i64(self.config_offset);
        if self.version >= 1 {
            match &self.allocation {
                None => b.put_i32(-1),
                Some(a) => {
                    let bytes = a.encode();
                    b.put_i32(bytes.len() as i32);
                    b.put_slice(&bytes);
                }
            }
        }
        b.freeze()
    }

    pub fn decode(mut b: &[u8]) -> Result<Metadata, ProtocolError> {
        let r = &mut b;
        let err = |reason: &str| ProtocolError {
            what: "member metadata",
            reason: reason.to_owned(),
        };
        let version = get_i16(r).ok_or_else(|| err("no version"))?;
        if version < 0 {
            return Err(err(&format!("version {version}")));
        }
        let url = get_string(r).ok_or_else(|| err("bad url"))?;
        let config_offset = get_i64(r).ok_or_else(|| err("no config offset"))?;
        let allocation = if version >= 1 {
            match get_nullable_bytes(r).ok_or_else(|| err("bad allocation"))? {
                None => None,
                Some(bytes) => Some(Assignment::decode(bytes)?),
            }
        } else {
            None
        };
        Ok(Metadata {
            version,
            url,
            config_offset,
            allocation,
        })
    }
}

impl Assignment {
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(self.version);
        b.put_i16(self.error);
        put_string(&mut b, &self.leader);
        put_string(&mut b, &self.leader_url);
        b.put_i64(self.config_offset);
        put_work(&mut b, &self.assigned);
        if self.version >= 1 {
            put_work(&mut b, &self.revoked);
            b.put_i32(self.delay_ms);
        }
        b.freeze()
    }

    pub fn decode(mut b: &[u8]) -> Result<Assignment, ProtocolError> {
        let r = &mut b;
        let err = |reason: &str| ProtocolError {
            what: "assignment",
            reason: reason.to_owned(),
        };
        let version = get_i16(r).ok_or_else(|| err("no version"))?;
        if version < 0 {
            return Err(err(&format!("version {version}")));
        }
        let error = get_i16(r).ok_or_else(|| err("no error code"))?;
        let leader = get_string(r).ok_or_else(|| err("bad leader"))?;
        let leader_url = get_string(r).ok_or_else(|| err("bad leader url"))?;
        let config_offset = get_i64(r).ok_or_else(|| err("no config offset"))?;
        let assigned = get_work(r).ok_or_else(|| err("bad assigned work"))?;
        let (revoked, delay_ms) = if version >= 1 {
            (
                get_work(r).ok_or_else(|| err("bad revoked work"))?,
                get_i32(r).ok_or_else(|| err("no delay"))?,
            )
        } else {
            (Work::new(), 0)
        };
        Ok(Assignment {
            version,
            error,
            leader,
            leader_url,
            config_offset,
            assigned,
            revoked,
            delay_ms,
        })
    }
}

fn put_string(b: &mut BytesMut, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    b.put_i16(len as i16);
    b.put_slice(&s.as_bytes()[..len]);
}

fn put_work(b: &mut BytesMut, work: &Work) {
    b.put_i32(work.len() as i32);
    for (connector, tasks) in work {
        put_string(b, connector);
        b.put_i32(tasks.len() as i32);
        for t in tasks {
            b.put_i32(*t);
        }
    }
}

fn get_i16(b: &mut &[u8]) -> Option<i16> {
    (b.remaining() >= 2).then(|| b.get_i16())
}

fn get_i32(b: &mut &[u8]) -> Option<i32> {
    (b.remaining() >= 4).then(|| b.get_i32())
}

fn get_i64(b: &mut &[u8]) -> Option<i64> {
    (b.remaining() >= 8).then(|| b.get_i64())
}

fn get_string(b: &mut &[u8]) -> Option<String> {
    let len = get_i16(b)?;
    let len = usize::try_from(len).ok()?;
    if b.remaining() < len {
        return None;
    }
    let s = std::str::from_utf8(&b[..len]).ok()?.to_owned();
    b.advance(len);
    Some(s)
}

fn get_nullable_bytes<'a>(b: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
    let len = get_i32(b)?;
    if len < 0 {
        return Some(None);
    }
    let len = len as usize;
    if b.remaining() < len {
        return None;
    }
    let (head, tail) = b.split_at(len);
    *b = tail;
    Some(Some(head))
}

/// An array of (connector, [task]); a null array (-1) is empty. Counts are checked
/// against the bytes left before anything is allocated.
fn get_work(b: &mut &[u8]) -> Option<Work> {
    let n = get_i32(b)?;
    let mut work = Work::new();
    if n < 0 {
        return Some(work);
    }
    if n as usize > b.remaining() / 6 {
        return None;
    }
    for _ in 0..n {
        let connector = get_string(b)?;
        let count = get_i32(b)?;
        let count = usize::try_from(count).unwrap_or(0);
        if count > b.remaining() / 4 {
            return None;
        }
        let tasks = (0..count).map(|_| b.get_i32()).collect();
        work.insert(connector, tasks);
    }
    Some(work)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(items: &[(&str, &[i32])]) -> Work {
        items
            .iter()
            .map(|(c, t)| (c.to_string(), t.to_vec()))
            .collect()
    }

    #[test]
    fn metadata_round_trips_every_version() {
        for version in [0, 1, 2] {
            let m = Metadata {
                version,
                url: "http://127.0.0.1:8083/".into(),
                config_offset: 42,
                allocation: (version > 0).then(|| Assignment {
                    version,
                    leader: "m-1".into(),
                    leader_url: "http://127.0.0.1:8084/".into(),
                    config_offset: 40,
                    assigned: work(&[("a", &[-1, 0, 1])]),
                    ..Assignment::default()
                }),
            };
            assert_eq!(Metadata::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn metadata_v0_is_kafkas_bytes() {
        let m = Metadata {
            version: 0,
            url: "u".into(),
            config_offset: 7,
            allocation: None,
        };
        assert_eq!(
            &m.encode()[..],
            &[0, 0, 0, 1, b'u', 0, 0, 0, 0, 0, 0, 0, 7][..]
        );
    }

    #[test]
    fn assignment_round_trips() {
        let a = Assignment {
            version: 1,
            error: CONFIG_MISMATCH,
            leader: "leader".into(),
            leader_url: "http://h:1/".into(),
            config_offset: 9,
            assigned: work(&[("a", &[-1]), ("b", &[0, 2])]),
            revoked: work(&[("c", &[1])]),
            delay_ms: 3000,
        };
        assert_eq!(Assignment::decode(&a.encode()).unwrap(), a);
        let v0 = Assignment {
            version: 0,
            revoked: Work::new(),
            delay_ms: 0,
            ..a
        };
        assert_eq!(Assignment::decode(&v0.encode()).unwrap(), v0);
    }

    #[test]
    fn hostile_payloads_are_errors() {
        assert!(Metadata::decode(&[]).is_err());
        assert!(Metadata::decode(&[0, 1, 0, 9, b'x']).is_err());
        // A billion connectors announced in a few bytes: refused, nothing allocated.
        let mut b = BytesMut::new();
        b.put_i16(0);
        b.put_i16(0);
        put_string(&mut b, "l");
        put_string(&mut b, "u");
        b.put_i64(0);
        b.put_i32(1_000_000_000);
        assert!(Assignment::decode(&b).is_err());
        for len in 0..20 {
            let a = Assignment {
                version: 1,
                assigned: work(&[("a", &[1, 2, 3])]),
                ..Assignment::default()
            }
            .encode();
            let cut = &a[..len.min(a.len())];
            let _ = Assignment::decode(cut);
        }
    }
}
