//! `DataGen` (also `io.confluent.kafka.connect.datagen.DatagenConnector`): synthetic
//! records for demos, tests and benchmarks.
//!
//! Two generators, chosen by `quickstart` as in Confluent's datagen:
//!
//! - `bytes` (the default): string values of exactly `datagen.record.bytes` printable
//!   bytes, a zero-padded sequence number followed by filler, so the output can be checked
//!   by count and hash.
//! - `pageviews`: struct records with the fields of Confluent's `pageviews` quickstart
//!   (`viewtime` int64, `userid` string, `pageid` string; schema `ksql.pageviews`), sized
//!   for benchmarks of structured data: as compact JSON (`JsonConverter` with
//!   `schemas.enable=false`) a value is 87 to 108 bytes, 100.0 on average (see
//!   [`Pageviews`]). `viewtime` is also the record's timestamp, so timestamp-based
//!   transforms (`TimestampRouter`) work on the source side. No key (Confluent keys
//!   pageviews by `viewtime`).
//!
//! Every value is a function of `random.seed` and the record's sequence number only, so
//! the output is reproducible and a restarted task continues the same sequence.
//! `iterations` bounds the records per task (-1: unbounded); `max.interval` is the most
//! milliseconds between polls (0: as fast as the worker takes them);
//! `datagen.records.per.poll` sizes each batch. Each task has its own sequence (`task` is
//! its source partition, `seq` its offset), so a restart resumes after the last committed
//! record.
//!
//! More quickstarts, and a schema of your own ([`schema`]): `users`, `orders` and
//! `clickstream` (Confluent's quickstarts of those names, keyed as Confluent keys them), or
//! `schema.string` / `schema.filename` with an Avro record schema whose fields carry
//! Confluent's `arg.properties` generators (sequence, random range, choice from a list,
//! timestamps, UUIDs), keyed by `schema.keyfield`. These records have schemas: with
//! `JsonConverter` and `schemas.enable=true` they are JSON with schemas.
//!
//! `records.per.second` (Tributary's, 0 for no limit) paces a task to that rate: each poll
//! answers the records due since the task started, at most `datagen.records.per.poll`.

use tributary_plugin_sdk::{
    Config, ConfigDef, ConfigKey, ConnectError, Data, DataRef, Importance, OffsetMap, Plain,
    RawConfig, Result, Schema, SourceBatch, SourceConnector, SourceTask, SourceTaskContext,
    Validator, Value,
};

const TOPIC: &str = "kafka.topic";
const ITERATIONS: &str = "iterations";
const MAX_INTERVAL: &str = "max.interval";
const RECORD_BYTES: &str = "datagen.record.bytes";
const PER_POLL: &str = "datagen.records.per.poll";
const SEED: &str = "random.seed";
const TASK_ID: &str = "datagen.task.id";
const QUICKSTART: &str = "quickstart";
const START_MS: &str = "datagen.start.timestamp.ms";
const SCHEMA_STRING: &str = "schema.string";
const SCHEMA_FILENAME: &str = "schema.filename";
const SCHEMA_KEYFIELD: &str = "schema.keyfield";
const RATE: &str = "records.per.second";

pub mod schema;
use schema::SchemaGen;

/// 2026-01-01T00:00:00Z: the default `viewtime` of record 0 of `pageviews`.
pub const DEFAULT_START_MS: i64 = 1_767_225_600_000;

fn config_def() -> ConfigDef {
    ConfigDef::new()
        .define(
            ConfigKey::string(TOPIC)
                .importance(Importance::High)
                .validator(Validator::non_empty())
                .doc("Topic to write to"),
        )
        .define(
            ConfigKey::long(ITERATIONS)
                .default("-1")
                .doc("Records to generate per task; -1 for no end"),
        )
        .define(
            ConfigKey::long(MAX_INTERVAL)
                .default("500")
                .validator(Validator::at_least(0))
                .doc("Most milliseconds between polls (0: no wait)"),
        )
        .define(
            ConfigKey::int(RECORD_BYTES)
                .default("100")
                .validator(Validator::between(16, 1 << 20))
                .doc("Bytes in each value (the `bytes` generator)"),
        )
        .define(
            ConfigKey::int(PER_POLL)
                .default("1000")
                .validator(Validator::at_least(1))
                .doc("Records per poll"),
        )
        .define(
            ConfigKey::long(SEED)
                .default("42")
                .doc("Seed of the filler, for reproducible output"),
        )
        .define(
            ConfigKey::string(QUICKSTART)
                .default("bytes")
                .validator(Validator::new("[bytes, pageviews, users, orders, clickstream]", |v| match v {
                    tributary_plugin_sdk::ConfigValue::String(s)
                        if Quickstart::parse(s).is_some() =>
                    {
                        Ok(())
                    }
                    _ => Err(
                        "String must be one of: bytes, pageviews, users, orders, clickstream (or set schema.string)"
                            .to_owned(),
                    ),
                }))
                .doc("The generator: `bytes` (fixed-size strings), or one of Confluent's quickstarts `pageviews`, `users`, `orders`, `clickstream` (struct records with a schema); `schema.string` or `schema.filename` override it"),
        )
        .define(
            ConfigKey::long(START_MS)
                .default(DEFAULT_START_MS.to_string())
                .validator(Validator::at_least(0))
                .doc("`pageviews`: the viewtime and timestamp of record 0, in ms since the epoch; each next record is 10 ms later (plus 0-9 ms of jitter)"),
        )
        .define(
            ConfigKey::string(SCHEMA_STRING)
                .default("")
                .doc("An Avro record schema with `arg.properties` generators (Confluent datagen's format), as JSON text"),
        )
        .define(
            ConfigKey::string(SCHEMA_FILENAME)
                .default("")
                .doc("A file holding such a schema"),
        )
        .define(
            ConfigKey::string(SCHEMA_KEYFIELD)
                .default("")
                .doc("The schema's top-level field that is also the record key (empty: no key; the quickstarts have their own)"),
        )
        .define(
            ConfigKey::double(RATE)
                .default("0")
                .doc("Records per second per task (0: as `max.interval` and `datagen.records.per.poll` allow)"),
        )
        .define(
            ConfigKey::int(TASK_ID)
                .default("0")
                .doc("Set by the connector"),
        )
}

/// The connector: `tasks.max` tasks, each with its own sequence.
#[derive(Debug, Default)]
pub struct DataGen {
    originals: RawConfig,
}

impl SourceConnector for DataGen {
    const NAME: &'static str = "io.tributary.connect.datagen.DataGenConnector";
    const ALIASES: &'static [&'static str] = &[
        "io.confluent.kafka.connect.datagen.DatagenConnector",
        "DataGen",
        "datagen",
    ];
    type Task = DataGenTask;

    fn config_def() -> ConfigDef {
        config_def()
    }

    fn start(&mut self, config: Config) -> Result<()> {
        self.originals = config.originals().clone();
        Ok(())
    }

    fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<RawConfig>> {
        Ok((0..max_tasks)
            .map(|i| {
                let mut c = self.originals.clone();
                c.insert(TASK_ID.to_owned(), i.to_string());
                c
            })
            .collect())
    }

    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Which generator a task runs (`quickstart`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Quickstart {
    /// Fixed-size printable strings ([`value_of`]).
    #[default]
    Bytes,
    /// Confluent's `pageviews` quickstart ([`Pageviews`]).
    Pageviews,
    /// Confluent's `users` quickstart ([`schema::USERS`]).
    Users,
    /// Confluent's `orders` quickstart ([`schema::ORDERS`]).
    Orders,
    /// Confluent's `clickstream` quickstart ([`schema::CLICKSTREAM`]).
    Clickstream,
}

impl Quickstart {
    /// The generator of a `quickstart` value; case does not matter, as in Confluent's.
    pub fn parse(s: &str) -> Option<Quickstart> {
        [
            ("bytes", Quickstart::Bytes),
            ("pageviews", Quickstart::Pageviews),
            ("users", Quickstart::Users),
            ("orders", Quickstart::Orders),
            ("clickstream", Quickstart::Clickstream),
        ]
        .into_iter()
        .find(|(name, _)| s.eq_ignore_ascii_case(name))
        .map(|(_, q)| q)
    }

    /// The schema and key field of a schema-driven quickstart.
    fn schema(self) -> Option<(&'static str, &'static str)> {
        match self {
            Quickstart::Users => Some((schema::USERS, "userid")),
            Quickstart::Orders => Some((schema::ORDERS, "orderid")),
            Quickstart::Clickstream => Some((schema::CLICKSTREAM, "ip")),
            Quickstart::Bytes | Quickstart::Pageviews => None,
        }
    }
}

/// One sequence of generated records.
#[derive(Debug, Default)]
pub struct DataGenTask {
    context: Option<SourceTaskContext>,
    topic: String,
    iterations: i64,
    interval: std::time::Duration,
    record_bytes: usize,
    per_poll: usize,
    seed: u64,
    pageviews: Option<Pageviews>,
    schema: Option<SchemaGen>,
    /// `records.per.second`, with the time and sequence number the pacing counts from.
    rate: Option<(f64, std::time::Instant, i64)>,
    next: i64,
    partition: OffsetMap,
    last_poll: Option<std::time::Instant>,
}

/// The value of record `seq`: exactly `len` printable bytes.
pub fn value_of(seed: u64, seq: i64, len: usize) -> String {
    let mut s = Vec::with_capacity(len.max(13));
    write_value(seed, seq, len, &mut s);
    // Digits, a space, '-' and lowercase letters only.
    String::from_utf8(s).unwrap_or_default()
}

/// Append [`value_of`]`(seed, seq, len)` to `out`: this runs once per record of the
/// benchmarks, so it writes in place, with no allocation of its own, and must cost little
/// next to what the worker does with the record.
pub fn write_value(seed: u64, seq: i64, len: usize, out: &mut Vec<u8>) {
    let start = out.len();
    if seq >= 0 {
        let (mut digits, mut at, mut n) = ([b'0'; 20], 20, seq as u64);
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&digits[at.min(20 - 12)..]);
    } else {
        out.extend_from_slice(format!("{seq:012}").as_bytes());
    }
    out.push(b' ');
    let filled = out.len();
    out.resize(filled.max(start + len), 0);
    let mut x = seed ^ (seq as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d;
    // Two passes: the random bytes (xorshift64*: cheap and reproducible, but each step
    // waits for the last), then letters from them in a loop the compiler vectorises.
    let mut next = || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes()
    };
    let mut chunks = out[filled..].chunks_exact_mut(8);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&next());
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        rest.copy_from_slice(&next()[..rest.len()]);
    }
    for b in &mut out[filled..] {
        *b = b'a' + *b % 26;
    }
    out.truncate(start + len);
}

/// The categories of `pageviews`' page paths (mean length 12.125: with it a value is 100
/// bytes of JSON on average).
const CATEGORIES: [&str; 16] = [
    "electronics",
    "books",
    "garden-and-outdoor",
    "home-and-kitchen",
    "toys-and-games",
    "sports-and-fitness",
    "clothing",
    "beauty",
    "automotive",
    "grocery",
    "office-products",
    "pet-supplies",
    "health-and-household",
    "musical-instruments",
    "baby",
    "video-games",
];

/// The `pageviews` generator: the fields of Confluent's quickstart of that name, with
/// values long enough for a 100-byte JSON record. Record `seq`:
///
/// - `viewtime`: `start + 10 * seq` plus 0-9 ms of jitter, so strictly increasing and
///   `seq = (viewtime - start) / 10` (Confluent's counts 1, 11, 21, ...; ours is a real
///   time, which `TimestampRouter` and `TimestampConverter` can use);
/// - `userid`: `User_1` to `User_999999` (Confluent's: `User_1` to `User_9`);
/// - `pageid`: `/products/<category>/item-NNNNNN.html`, one of 16 categories and a
///   zero-padded item number 1 to 999999 (Confluent's: `Page_1` to `Page_99`).
///
/// As compact JSON, `{"viewtime":…,"userid":"…","pageid":"…"}` is 50 bytes plus the two
/// strings: 87 to 108 bytes, 100.01 on average (6 + 5.89 for the user id, 27 + 12.125
/// for the page). Per record it allocates the two strings, the struct's value vector and
/// a clone of the schema (the data model carries a schema per record); nothing else.
#[derive(Debug, Clone)]
pub struct Pageviews {
    schema: Schema,
    seed: u64,
    start_ms: i64,
}

impl Pageviews {
    pub fn new(seed: u64, start_ms: i64) -> Pageviews {
        Pageviews {
            schema: Pageviews::schema(),
            seed,
            start_ms,
        }
    }

    /// `ksql.pageviews`, as Confluent's Avro schema converts to Kafka Connect's.
    pub fn schema() -> Schema {
        Schema::structure()
            .named("ksql.pageviews")
            .field("viewtime", Schema::int64())
            .field("userid", Schema::string())
            .field("pageid", Schema::string())
    }

    /// Record `seq`'s fields: viewtime, userid, pageid.
    pub fn fields(&self, seq: i64) -> (i64, String, String) {
        let base = self.seed ^ (seq as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let r1 = splitmix64(base);
        let r2 = splitmix64(base ^ 0xd1b5_4a32_d192_ed03);
        let viewtime = self.start_ms + 10 * seq + (r1 % 10) as i64;
        let mut userid = String::with_capacity(11);
        userid.push_str("User_");
        push_decimal(&mut userid, 1 + (r1 >> 8) % 999_999, 1);
        let category = CATEGORIES[(r2 & 15) as usize];
        let mut pageid = String::with_capacity(27 + category.len());
        pageid.push_str("/products/");
        pageid.push_str(category);
        pageid.push_str("/item-");
        push_decimal(&mut pageid, 1 + (r2 >> 8) % 999_999, 6);
        pageid.push_str(".html");
        (viewtime, userid, pageid)
    }

    /// Record `seq`'s value, with its schema.
    pub fn value(&self, seq: i64) -> (i64, Data) {
        let (viewtime, userid, pageid) = self.fields(seq);
        let data = Data {
            schema: Some(self.schema.clone()),
            value: Value::Struct(vec![
                Value::Int64(viewtime),
                Value::String(userid),
                Value::String(pageid),
            ]),
        };
        (viewtime, data)
    }
}

/// SplitMix64's output function: a well-mixed u64 of any input.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Append `n` in decimal, zero-padded to `width` digits (no formatting machinery: this
/// runs twice per record).
fn push_decimal(out: &mut String, mut n: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for _ in (digits.len() - i)..width {
        out.push('0');
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

impl SourceTask for DataGenTask {
    fn initialize(&mut self, context: SourceTaskContext) {
        self.context = Some(context);
    }

    fn start(&mut self, raw: RawConfig) -> Result<()> {
        let c = config_def().parse(&raw)?;
        self.topic = c.string(TOPIC).unwrap_or_default().to_owned();
        self.iterations = c.long(ITERATIONS).unwrap_or(-1);
        self.interval =
            std::time::Duration::from_millis(c.long(MAX_INTERVAL).unwrap_or(500).max(0) as u64);
        self.record_bytes = c.int(RECORD_BYTES).unwrap_or(100) as usize;
        self.per_poll = c.int(PER_POLL).unwrap_or(1000) as usize;
        self.seed = c.long(SEED).unwrap_or(42) as u64;
        let quickstart = c
            .string(QUICKSTART)
            .and_then(Quickstart::parse)
            .unwrap_or_default();
        let start_ms = c.long(START_MS).unwrap_or(DEFAULT_START_MS);
        self.pageviews =
            (quickstart == Quickstart::Pageviews).then(|| Pageviews::new(self.seed, start_ms));
        let text = |k: &str| c.string(k).unwrap_or_default().trim().to_owned();
        let own = match (text(SCHEMA_STRING), text(SCHEMA_FILENAME)) {
            (s, f) if !s.is_empty() && !f.is_empty() => {
                return Err(ConnectError::new(format!(
                    "{SCHEMA_STRING} and {SCHEMA_FILENAME} are both set; set one"
                )));
            }
            (s, _) if !s.is_empty() => Some(s),
            (_, f) if !f.is_empty() => Some(std::fs::read_to_string(&f).map_err(|e| {
                ConnectError::new(format!("cannot read {SCHEMA_FILENAME} {f}: {e}"))
            })?),
            _ => None,
        };
        self.schema = match (own, quickstart.schema()) {
            (Some(text), _) => Some(SchemaGen::parse(
                &text,
                c.string(SCHEMA_KEYFIELD).unwrap_or_default(),
                self.seed,
                start_ms,
            )?),
            (None, Some((text, key))) => Some(SchemaGen::parse(text, key, self.seed, start_ms)?),
            (None, None) => None,
        };
        if self.schema.is_some() {
            self.pageviews = None;
        }
        let rate = c.double(RATE).unwrap_or(0.0);
        if !(rate >= 0.0 && rate.is_finite()) {
            return Err(ConnectError::new(format!(
                "{RATE} must be 0 (no limit) or more; got {rate}"
            )));
        }
        let task = c.int(TASK_ID).unwrap_or(0);
        self.partition = [("task".to_owned(), Value::Int32(task))].into();
        if let Some(ctx) = &self.context
            && let Some(offset) = ctx.offset(&self.partition)?
        {
            self.next = match offset.get("seq") {
                Some(Value::Int64(n)) => *n + 1,
                Some(Value::Int32(n)) => i64::from(*n) + 1,
                other => {
                    return Err(ConnectError::new(format!(
                        "stored offset {other:?} is not a sequence number; reset the connector's offsets"
                    )));
                }
            };
        }
        self.rate = (rate > 0.0).then(|| (rate, std::time::Instant::now(), self.next));
        Ok(())
    }

    fn poll_batch(&mut self, batch: &mut SourceBatch) -> Result<()> {
        if let Some(last) = self.last_poll {
            let since = last.elapsed();
            if since < self.interval {
                std::thread::sleep(self.interval - since);
            }
        }
        self.last_poll = Some(std::time::Instant::now());
        let mut n = self.per_poll as i64;
        if self.iterations >= 0 {
            n = n.min(self.iterations - self.next);
        }
        if n <= 0 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            return Ok(());
        }
        if let Some((rate, since, first)) = self.rate {
            // The records due by now, or wait (under half a second) for the next one.
            let due = |at: std::time::Instant| first + ((at - since).as_secs_f64() * rate) as i64;
            let mut now = std::time::Instant::now();
            if due(now) <= self.next {
                let wait = std::time::Duration::from_secs_f64(
                    ((self.next + 1 - first) as f64 / rate - (now - since).as_secs_f64()).max(0.0),
                );
                std::thread::sleep(wait.min(std::time::Duration::from_millis(500)));
                now = std::time::Instant::now();
            }
            n = n.min(due(now) - self.next);
            if n <= 0 {
                return Ok(());
            }
        }
        // Written into the batch, not built as owned records: DataGen is the source of
        // the pipeline benchmark, so it should cost little next to the worker.
        for seq in self.next..self.next + n {
            match (&self.schema, &self.pageviews) {
                (Some(g), _) => {
                    let (key, value) = g.record(seq);
                    batch
                        .add(&self.topic)
                        .key(DataRef::of(&key))
                        .value(DataRef::of(&value));
                }
                (None, None) => {
                    let (seed, len) = (self.seed, self.record_bytes);
                    batch
                        .add(&self.topic)
                        .value_with(true, Plain::Required, |out| {
                            write_value(seed, seq, len, out)
                        });
                }
                (None, Some(g)) => {
                    let (viewtime, value) = g.value(seq);
                    batch
                        .add(&self.topic)
                        .value(DataRef::of(&value))
                        .timestamp(viewtime);
                }
            }
        }
        let mut offset = OffsetMap::new();
        offset.insert("seq".to_owned(), Value::Int64(self.next + n - 1));
        batch.set_offset(&self.partition, offset);
        self.next += n;
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

tributary_plugin_sdk::export_plugin! {
    sources: [DataGen]
}

#[cfg(test)]
mod tests {
    use tributary_plugin_sdk::testing::{SourceHarness, config};

    use super::*;

    /// The values are what the first version (built with `format!` and `char` pushes) made,
    /// so a seed gives the same data across versions.
    #[test]
    fn values_are_stable_across_versions() {
        fn first_version(seed: u64, seq: i64, len: usize) -> String {
            let mut s = format!("{seq:012} ");
            let mut x =
                seed ^ (seq as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d;
            while s.len() < len {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
                for b in r.to_le_bytes() {
                    if s.len() == len {
                        break;
                    }
                    s.push(char::from(b'a' + b % 26));
                }
            }
            s.truncate(len);
            s
        }
        for seq in [
            0,
            1,
            9,
            10,
            12345,
            999_999_999_999,
            1_000_000_000_000,
            i64::MAX,
            -1,
            -42,
        ] {
            for len in [0, 5, 13, 14, 20, 100, 1000] {
                for seed in [42, 7] {
                    assert_eq!(
                        value_of(seed, seq, len),
                        first_version(seed, seq, len),
                        "{seed} {seq} {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn deterministic_bounded_and_resumable() {
        let cfg = config(&[
            ("kafka.topic", "t"),
            ("iterations", "25"),
            ("max.interval", "0"),
            ("datagen.records.per.poll", "10"),
            ("datagen.record.bytes", "40"),
        ]);
        let mut h = SourceHarness::<DataGen>::start(cfg.clone(), 2).unwrap();
        assert_eq!(h.task_count(), 2);
        let first = h.poll(0).unwrap();
        assert_eq!(first.len(), 10);
        let v = |r: &tributary_plugin_sdk::SourceRecord| match &r.value.value {
            Value::String(s) => s.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(v(&first[3]).len(), 40);
        assert!(v(&first[3]).starts_with("000000000003 "));
        assert_eq!(v(&first[3]), value_of(42, 3, 40));
        assert_ne!(value_of(42, 3, 40), value_of(7, 3, 40));
        h.commit(0).unwrap();
        let partition: OffsetMap = [("task".to_owned(), Value::Int32(0))].into();
        let committed = h.committed_offset(&partition).unwrap();
        h.stop().unwrap();
        let mut h =
            SourceHarness::<DataGen>::start_with_offsets(cfg, 1, [(partition, committed)]).unwrap();
        let rest = h.poll_records(0, 15, 5).unwrap();
        assert_eq!(rest.len(), 15);
        assert!(v(&rest[0]).starts_with("000000000010 "));
        assert!(
            h.poll(0).unwrap().is_empty(),
            "iterations bound the sequence"
        );
        h.stop().unwrap();
    }

    fn pageviews_config(seed: &str) -> RawConfig {
        config(&[
            ("kafka.topic", "pageviews"),
            ("quickstart", "pageviews"),
            ("iterations", "30"),
            ("max.interval", "0"),
            ("datagen.records.per.poll", "20"),
            ("random.seed", seed),
        ])
    }

    /// A pageviews value as compact JSON, as Kafka's `JsonConverter` writes it with
    /// `schemas.enable=false` (the strings never need escaping: checked).
    fn json_len(viewtime: i64, userid: &str, pageid: &str) -> usize {
        for s in [userid, pageid] {
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'),
                "{s:?} would need escaping"
            );
        }
        format!(r#"{{"viewtime":{viewtime},"userid":"{userid}","pageid":"{pageid}"}}"#).len()
    }

    #[test]
    fn pageviews_records_have_the_schema_and_timestamps() {
        let mut h = SourceHarness::<DataGen>::start(pageviews_config("42"), 1).unwrap();
        let records = h.poll_records(0, 30, 5).unwrap();
        assert_eq!(records.len(), 30);
        let g = Pageviews::new(42, DEFAULT_START_MS);
        let mut last = i64::MIN;
        for (seq, r) in records.iter().enumerate() {
            assert_eq!(r.topic, "pageviews");
            assert_eq!(r.key, Data::null());
            assert_eq!(r.value.schema.as_ref(), Some(&Pageviews::schema()));
            r.value.validate().unwrap();
            let Some(Value::Int64(viewtime)) = r.value.field("viewtime") else {
                panic!("viewtime: {:?}", r.value)
            };
            let (Some(Value::String(userid)), Some(Value::String(pageid))) =
                (r.value.field("userid"), r.value.field("pageid"))
            else {
                panic!("userid, pageid: {:?}", r.value)
            };
            assert_eq!(
                r.timestamp,
                Some(*viewtime),
                "the timestamp is the viewtime"
            );
            assert!(*viewtime > last, "viewtime increases");
            last = *viewtime;
            assert_eq!((viewtime - DEFAULT_START_MS) / 10, seq as i64);
            assert!(userid.starts_with("User_"), "{userid}");
            let n: u32 = userid["User_".len()..].parse().unwrap();
            assert!((1..=999_999).contains(&n), "{userid}");
            let rest = pageid.strip_prefix("/products/").unwrap();
            let (category, item) = rest.split_once("/item-").unwrap();
            assert!(CATEGORIES.contains(&category), "{pageid}");
            assert_eq!(item.len(), "NNNNNN.html".len(), "{pageid}");
            assert!(item.ends_with(".html"), "{pageid}");
            assert_eq!(r.value, g.value(seq as i64).1);
        }
        // Positions are per batch: the offset stored is the last record's sequence number.
        h.commit(0).unwrap();
        let partition: OffsetMap = [("task".to_owned(), Value::Int32(0))].into();
        assert_eq!(
            h.committed_offset(&partition),
            Some([("seq".to_owned(), Value::Int64(records.len() as i64 - 1))].into())
        );
        assert!(
            h.poll(0).unwrap().is_empty(),
            "iterations bound the sequence"
        );
        h.stop().unwrap();
    }

    #[test]
    fn pageviews_are_reproducible_by_seed_and_resume_after_a_restart() {
        let values = |cfg: RawConfig| {
            let mut h = SourceHarness::<DataGen>::start(cfg, 1).unwrap();
            let v: Vec<Data> = h
                .poll_records(0, 30, 5)
                .unwrap()
                .into_iter()
                .map(|r| r.value)
                .collect();
            h.stop().unwrap();
            v
        };
        let a = values(pageviews_config("42"));
        assert_eq!(a, values(pageviews_config("42")), "same seed, same records");
        let b = values(pageviews_config("7"));
        assert_ne!(a, b, "another seed, other records");
        let differing = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        assert!(differing >= 25, "only {differing} of 30 records differ");

        // Stop after the first poll and restart from the committed offset: the same
        // sequence continues.
        let mut h = SourceHarness::<DataGen>::start(pageviews_config("42"), 1).unwrap();
        assert_eq!(h.poll(0).unwrap().len(), 20);
        h.commit(0).unwrap();
        let partition: OffsetMap = [("task".to_owned(), Value::Int32(0))].into();
        let committed = h.committed_offset(&partition).unwrap();
        h.stop().unwrap();
        let mut h = SourceHarness::<DataGen>::start_with_offsets(
            pageviews_config("42"),
            1,
            [(partition, committed)],
        )
        .unwrap();
        let rest: Vec<Data> = h
            .poll_records(0, 10, 5)
            .unwrap()
            .into_iter()
            .map(|r| r.value)
            .collect();
        assert_eq!(rest, a[20..]);
        h.stop().unwrap();
    }

    #[test]
    fn pageviews_json_is_100_bytes_on_average() {
        let g = Pageviews::new(42, DEFAULT_START_MS);
        let n = 200_000;
        let (mut total, mut min, mut max) = (0usize, usize::MAX, 0usize);
        let mut categories = [0u32; CATEGORIES.len()];
        for seq in 0..n {
            let (viewtime, userid, pageid) = g.fields(seq);
            let len = json_len(viewtime, &userid, &pageid);
            total += len;
            min = min.min(len);
            max = max.max(len);
            let c = CATEGORIES
                .iter()
                .position(|c| pageid.contains(&format!("/{c}/")))
                .unwrap();
            categories[c] += 1;
        }
        let mean = total as f64 / n as f64;
        assert!((99.9..=100.1).contains(&mean), "mean {mean}");
        assert!(min >= 87 && max <= 108, "sizes {min}..={max}");
        // The categories are drawn evenly (each about 1/16).
        for (c, k) in CATEGORIES.iter().zip(categories) {
            let share = f64::from(k) / n as f64;
            assert!((0.055..0.07).contains(&share), "{c}: {share}");
        }
        // The formula of the doc comment.
        let mean_category =
            CATEGORIES.iter().map(|c| c.len()).sum::<usize>() as f64 / CATEGORIES.len() as f64;
        assert_eq!(mean_category, 12.125);
    }

    #[test]
    fn records_per_second_paces_the_task() {
        let mut h = SourceHarness::<DataGen>::start(
            config(&[
                ("kafka.topic", "t"),
                ("max.interval", "0"),
                ("records.per.second", "200"),
            ]),
            1,
        )
        .unwrap();
        let started = std::time::Instant::now();
        let mut n = 0usize;
        let mut before_last = started;
        while started.elapsed() < std::time::Duration::from_millis(1500) {
            before_last = std::time::Instant::now();
            n += h.poll(0).unwrap().len();
        }
        let (lo, hi) = (
            (before_last - started).as_secs_f64() * 200.0 - 2.0,
            started.elapsed().as_secs_f64() * 200.0 + 2.0,
        );
        assert!(
            (lo..=hi).contains(&(n as f64)),
            "{n} records, expected {lo:.0}..={hi:.0}"
        );
        h.stop().unwrap();
    }

    #[test]
    fn a_schema_of_ones_own_with_a_key_bounded_and_reproducible() {
        let schema = r#"{"type": "record", "name": "sensor", "namespace": "demo", "fields": [
            {"name": "id", "type": "long", "arg.properties": {"iteration": {"start": 1}}},
            {"name": "room", "type": "string", "arg.properties": {"options": ["hall", "attic"]}},
            {"name": "celsius", "type": "double", "arg.properties": {"range": {"min": 15, "max": 25}}}
        ]}"#;
        let run = |seed: &str| {
            let mut h = SourceHarness::<DataGen>::start(
                config(&[
                    ("kafka.topic", "sensors"),
                    ("schema.string", schema),
                    ("schema.keyfield", "room"),
                    ("iterations", "12"),
                    ("max.interval", "0"),
                    ("datagen.records.per.poll", "5"),
                    ("random.seed", seed),
                ]),
                1,
            )
            .unwrap();
            let records = h.poll_records(0, 12, 5).unwrap();
            assert!(
                h.poll(0).unwrap().is_empty(),
                "iterations bound the sequence"
            );
            h.stop().unwrap();
            records
        };
        let a = run("1");
        assert_eq!(a.len(), 12);
        for (i, r) in a.iter().enumerate() {
            assert_eq!(
                r.value.schema.as_ref().unwrap().name.as_deref(),
                Some("demo.sensor")
            );
            assert_eq!(r.value.field("id"), Some(&Value::Int64(i as i64 + 1)));
            assert_eq!(
                r.key.value,
                *r.value.field("room").unwrap(),
                "keyed by room"
            );
        }
        let same: Vec<_> = run("1").into_iter().map(|r| (r.key, r.value)).collect();
        let other: Vec<_> = run("2").into_iter().map(|r| (r.key, r.value)).collect();
        let a: Vec<_> = a.into_iter().map(|r| (r.key, r.value)).collect();
        assert_eq!(a, same, "same seed, same records");
        assert_ne!(a, other);

        // The quickstarts come keyed.
        let mut h = SourceHarness::<DataGen>::start(
            config(&[
                ("kafka.topic", "u"),
                ("quickstart", "users"),
                ("max.interval", "0"),
            ]),
            1,
        )
        .unwrap();
        let r = h.poll(0).unwrap();
        assert_eq!(r.len(), 1000);
        assert_eq!(
            r[0].value.schema.as_ref().unwrap().name.as_deref(),
            Some("ksql.users")
        );
        assert_eq!(r[0].key.value, *r[0].value.field("userid").unwrap());
        h.stop().unwrap();

        // Both schema keys: refused, naming them.
        let e = SourceHarness::<DataGen>::start(
            config(&[
                ("kafka.topic", "u"),
                ("schema.string", schema),
                ("schema.filename", "/x.avsc"),
            ]),
            1,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("both set"), "{e}");
    }

    #[test]
    fn decimal_digits() {
        let check = |n: u64, width: usize, expected: &str| {
            let mut s = String::from("x");
            push_decimal(&mut s, n, width);
            assert_eq!(s, format!("x{expected}"), "{n} width {width}");
        };
        check(0, 1, "0");
        check(7, 1, "7");
        check(42, 6, "000042");
        check(999_999, 6, "999999");
        check(1_234_567, 6, "1234567");
        check(u64::MAX, 1, &u64::MAX.to_string());
    }

    #[test]
    fn quickstart_selects_the_generator() {
        let errors = |q: &str| {
            let infos = SourceHarness::<DataGen>::validate(&config(&[
                ("kafka.topic", "t"),
                ("quickstart", q),
            ]))
            .unwrap();
            infos
                .into_iter()
                .find(|i| i.name == "quickstart")
                .unwrap()
                .errors
        };
        assert!(errors("pageviews").is_empty());
        assert!(errors("PageViews").is_empty(), "case does not matter");
        assert!(errors("bytes").is_empty());
        assert!(errors("users").is_empty());
        assert!(errors("Orders").is_empty());
        assert!(errors("clickstream").is_empty());
        let e = errors("stocks");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("bytes, pageviews, users, orders, clickstream"),
            "{e:?}"
        );

        // The default stays the bytes generator.
        let mut h = SourceHarness::<DataGen>::start(
            config(&[
                ("kafka.topic", "t"),
                ("iterations", "1"),
                ("max.interval", "0"),
            ]),
            1,
        )
        .unwrap();
        let r = h.poll(0).unwrap();
        assert_eq!(r[0].value, Data::string(value_of(42, 0, 100)));
        assert_eq!(r[0].timestamp, None);
        h.stop().unwrap();
    }
}
