//! `JdbcSource`: rows of tables (or of one query) into topics, in Confluent's four modes.
//!
//! The connector lists the tables (whitelist, blacklist), spreads them over at most
//! `tasks.max` tasks, and watches for new or dropped tables every
//! `table.poll.interval.ms`, asking for a task reconfiguration when the set changes. Each
//! task queries its tables in turn, at most `batch.max.rows` rows a query:
//!
//! - `bulk`: the whole table every `poll.interval.ms`, no offsets;
//! - `incrementing`: `WHERE inc > last ORDER BY inc LIMIT n`;
//! - `timestamp`: `WHERE ts > last AND ts < now - delay ORDER BY ts LIMIT n`; a batch cut
//!   in the middle of one timestamp is completed with every row of that timestamp, and a
//!   row's offset moves to its timestamp only at the last row of it, so a restart never
//!   skips a row (it may repeat the rows of one timestamp, as Confluent's does);
//! - `timestamp+incrementing`: keyset order on (ts, inc): neither skips nor repeats.
//!
//! The source partition is `{"protocol": "1", "table": NAME}` (`{"query": QUERY}` in
//! query mode) and the offset `{"incrementing": N, "timestamp": MS, "timestamp_nanos": NS}`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use tributary_plugin_sdk::{
    Config, ConfigDef, ConnectError, ConnectorContext, Data, Field, OffsetMap, RawConfig, Result,
    Schema, SourceConnector, SourceRecord, SourceTask, SourceTaskContext, Value,
};

use crate::config::{self as cfg, Connection};
use crate::db::{Db, Param, Prefetch, Selected};
use crate::dialect::Dialect;

/// How long one `poll` may wait for a table to become due before returning empty.
const MAX_IDLE: Duration = Duration::from_millis(200);

/// The query mode and its columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Bulk,
    Incrementing(String),
    Timestamp(Vec<String>),
    TimestampIncrementing(Vec<String>, String),
}

impl Mode {
    fn from_config(c: &Config) -> Result<Mode> {
        let inc = c
            .string(cfg::INCREMENTING_COLUMN)
            .unwrap_or_default()
            .trim()
            .to_owned();
        let ts = cfg::list(c, cfg::TIMESTAMP_COLUMN);
        let need = |what: &str, key: &str| {
            ConnectError::new(format!(
                "mode={what} needs `{key}`: set the column to track"
            ))
        };
        Ok(match c.string(cfg::MODE).unwrap_or_default() {
            "bulk" => Mode::Bulk,
            "incrementing" if inc.is_empty() => {
                return Err(need("incrementing", cfg::INCREMENTING_COLUMN));
            }
            "incrementing" => Mode::Incrementing(inc),
            "timestamp" if ts.is_empty() => return Err(need("timestamp", cfg::TIMESTAMP_COLUMN)),
            "timestamp" => Mode::Timestamp(ts),
            "timestamp+incrementing" if ts.is_empty() => {
                return Err(need("timestamp+incrementing", cfg::TIMESTAMP_COLUMN));
            }
            "timestamp+incrementing" if inc.is_empty() => {
                return Err(need("timestamp+incrementing", cfg::INCREMENTING_COLUMN));
            }
            "timestamp+incrementing" => Mode::TimestampIncrementing(ts, inc),
            other => {
                return Err(ConnectError::new(format!(
                    "`mode` {other:?} is not one of bulk, incrementing, timestamp, timestamp+incrementing"
                )));
            }
        })
    }
}

/// The source settings every task and the connector share.
#[derive(Debug, Clone)]
struct Settings {
    connection: Connection,
    mode: Mode,
    query: Option<String>,
    whitelist: Vec<String>,
    blacklist: Vec<String>,
    topic_prefix: String,
    poll_interval: Duration,
    batch_max_rows: usize,
    table_poll_interval: Duration,
    delay: chrono::Duration,
}

impl Settings {
    fn from_config(c: &Config) -> Result<Settings> {
        let whitelist = cfg::list(c, cfg::TABLE_WHITELIST);
        let blacklist = cfg::list(c, cfg::TABLE_BLACKLIST);
        let query = c
            .string(cfg::QUERY)
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned);
        if !whitelist.is_empty() && !blacklist.is_empty() {
            return Err(ConnectError::new(
                "`table.whitelist` and `table.blacklist` are both set; set at most one",
            ));
        }
        if query.is_some() && !(whitelist.is_empty() && blacklist.is_empty()) {
            return Err(ConnectError::new(
                "`query` is set with `table.whitelist` or `table.blacklist`; a query source copies \
                 no tables: unset one of them",
            ));
        }
        Ok(Settings {
            connection: Connection::from_config(c)?,
            mode: Mode::from_config(c)?,
            query,
            whitelist,
            blacklist,
            topic_prefix: c.string(cfg::TOPIC_PREFIX).unwrap_or_default().to_owned(),
            poll_interval: Duration::from_millis(
                c.int(cfg::POLL_INTERVAL_MS).unwrap_or(5000).max(1) as u64,
            ),
            batch_max_rows: c.int(cfg::BATCH_MAX_ROWS).unwrap_or(100).max(1) as usize,
            table_poll_interval: Duration::from_millis(
                c.long(cfg::TABLE_POLL_INTERVAL_MS).unwrap_or(60_000).max(1) as u64,
            ),
            delay: chrono::Duration::milliseconds(
                c.long(cfg::TIMESTAMP_DELAY_MS).unwrap_or(0).max(0),
            ),
        })
    }

    /// The tables to copy among those the database has.
    fn select_tables(&self, existing: &[String]) -> Result<Vec<String>> {
        if !self.whitelist.is_empty() {
            let missing: Vec<&String> = self
                .whitelist
                .iter()
                .filter(|t| !existing.contains(t) && !t.contains('.'))
                .collect();
            if !missing.is_empty() {
                return Err(ConnectError::new(format!(
                    "table {} in `table.whitelist` does not exist; create it or fix the list",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            return Ok(self.whitelist.clone());
        }
        Ok(existing
            .iter()
            .filter(|t| !self.blacklist.contains(t))
            .cloned()
            .collect())
    }
}

/// Tables spread over at most `max_tasks` groups, round robin.
pub fn spread(tables: &[String], max_tasks: usize) -> Vec<Vec<String>> {
    let n = tables.len().min(max_tasks);
    let mut groups = vec![Vec::new(); n];
    for (i, t) in tables.iter().enumerate() {
        groups[i % n].push(t.clone());
    }
    groups
}

/// The connector: lists tables, splits them, watches for new ones.
#[derive(Debug, Default)]
pub struct JdbcSource {
    context: Option<ConnectorContext>,
    originals: RawConfig,
    settings: Option<Settings>,
    /// The tables to copy, updated by the table monitor.
    tables: Arc<Mutex<Vec<String>>>,
    watcher: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl SourceConnector for JdbcSource {
    const NAME: &'static str = "io.confluent.connect.jdbc.JdbcSourceConnector";
    const ALIASES: &'static [&'static str] = &["io.tributary.connect.jdbc.JdbcSourceConnector"];
    type Task = JdbcSourceTask;

    fn config_def() -> ConfigDef {
        cfg::source_def()
    }

    fn initialize(&mut self, context: ConnectorContext) {
        self.context = Some(context);
    }

    fn start(&mut self, config: Config) -> Result<()> {
        let settings = Settings::from_config(&config)?;
        self.originals = config.originals().clone();
        if settings.query.is_none() {
            let db = Db::connect(&settings.connection.target)?;
            let existing = db.list_tables();
            db.close();
            *lock(&self.tables) = settings.select_tables(&existing?)?;
            self.watch(settings.clone());
        }
        self.settings = Some(settings);
        Ok(())
    }

    fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<RawConfig>> {
        let Some(settings) = &self.settings else {
            return Err(ConnectError::new("task_configs before start"));
        };
        if max_tasks == 0 {
            return Ok(Vec::new());
        }
        if settings.query.is_some() {
            return Ok(vec![self.originals.clone()]);
        }
        Ok(spread(&lock(&self.tables), max_tasks)
            .into_iter()
            .map(|group| {
                let mut c = self.originals.clone();
                c.insert(cfg::TASK_TABLES.to_owned(), group.join(","));
                c
            })
            .collect())
    }

    fn stop(&mut self) -> Result<()> {
        if let Some((stop, handle)) = self.watcher.take() {
            drop(stop);
            let _ = handle.join();
        }
        Ok(())
    }
}

impl JdbcSource {
    /// A thread that lists the tables every `table.poll.interval.ms` and asks for new
    /// task configs when the set changed. Ends when the sender is dropped (in `stop`).
    fn watch(&mut self, settings: Settings) {
        let Some(context) = self.context.clone() else {
            return;
        };
        let (tx, rx) = mpsc::channel::<()>();
        let tables = self.tables.clone();
        let known: BTreeSet<String> = lock(&tables).iter().cloned().collect();
        let handle = std::thread::Builder::new()
            .name("jdbc-table-monitor".into())
            .spawn(move || {
                let mut known = known;
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    rx.recv_timeout(settings.table_poll_interval)
                {
                    let Ok(db) = Db::connect(&settings.connection.target) else {
                        continue;
                    };
                    let listed = db.list_tables();
                    db.close();
                    let Ok(now) = listed.and_then(|l| settings.select_tables(&l)) else {
                        continue;
                    };
                    let now: BTreeSet<String> = now.into_iter().collect();
                    if now != known {
                        *lock(&tables) = now.iter().cloned().collect();
                        known = now;
                        let _ = context.request_task_reconfiguration();
                    }
                }
            });
        if let Ok(handle) = handle {
            self.watcher = Some((tx, handle));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One table (or the query) a task reads, and where it is.
#[derive(Debug)]
struct Table {
    /// The table name, or `None` in query mode.
    name: Option<String>,
    topic: String,
    partition: OffsetMap,
    last_inc: i64,
    last_ts: NaiveDateTime,
    due: Instant,
    scales: Vec<(String, i32)>,
    /// Bulk mode: rows of the current pass not yet handed out.
    pending: Option<(Schema, std::vec::IntoIter<Vec<Value>>)>,
    /// After a full batch: the query for the next one, already running, and the position
    /// it starts from (used only if the table is still there).
    prefetched: Option<((i64, NaiveDateTime), Prefetch)>,
}

/// Reads its tables in turn.
#[derive(Debug, Default)]
pub struct JdbcSourceTask {
    context: Option<SourceTaskContext>,
    settings: Option<Settings>,
    db: Option<Db>,
    tables: Vec<Table>,
    next: usize,
    failures: u32,
    retry_at: Option<Instant>,
}

fn epoch() -> NaiveDateTime {
    DateTime::<Utc>::UNIX_EPOCH.naive_utc()
}

impl SourceTask for JdbcSourceTask {
    fn initialize(&mut self, context: SourceTaskContext) {
        self.context = Some(context);
    }

    fn start(&mut self, raw: RawConfig) -> Result<()> {
        let config = cfg::source_def().parse(&raw)?;
        let settings = Settings::from_config(&config)?;
        let db = Db::connect(&settings.connection.target)?;
        let mut tables = Vec::new();
        if let Some(q) = &settings.query {
            tables.push(Table::new(
                None,
                settings.topic_prefix.clone(),
                [("query".to_owned(), Value::String(q.clone()))].into(),
            ));
        } else {
            for name in cfg::list(&config, cfg::TASK_TABLES) {
                let columns = db.describe_table(&name)?;
                if columns.is_empty() {
                    return Err(ConnectError::new(format!(
                        "table {name} does not exist in {}; create it or remove it from `table.whitelist`",
                        db.shown()
                    )));
                }
                let partition: OffsetMap = [
                    ("protocol".to_owned(), Value::String("1".into())),
                    ("table".to_owned(), Value::String(name.clone())),
                ]
                .into();
                let mut t = Table::new(
                    Some(name.clone()),
                    format!("{}{name}", settings.topic_prefix),
                    partition,
                );
                t.scales = columns
                    .into_iter()
                    .filter_map(|(c, s)| Some((c, s?)))
                    .collect();
                tables.push(t);
            }
        }
        if let Some(context) = &self.context {
            let partitions: Vec<OffsetMap> = tables.iter().map(|t| t.partition.clone()).collect();
            let stored = context.offsets(&partitions)?;
            for (partition, offset) in stored {
                let Some(offset) = offset else { continue };
                let Some(t) = tables.iter_mut().find(|t| t.partition == partition) else {
                    continue;
                };
                if let Some(v) = offset.get("incrementing") {
                    t.last_inc = as_i64(v).ok_or_else(|| bad_offset(t, "incrementing", v))?;
                }
                if let Some(v) = offset.get("timestamp") {
                    let ms = as_i64(v).ok_or_else(|| bad_offset(t, "timestamp", v))?;
                    let nanos = offset.get("timestamp_nanos").and_then(as_i64).unwrap_or(0);
                    let secs = ms.div_euclid(1000);
                    t.last_ts =
                        DateTime::<Utc>::from_timestamp(secs, nanos.clamp(0, 999_999_999) as u32)
                            .map(|d| d.naive_utc())
                            .ok_or_else(|| bad_offset(t, "timestamp", v))?;
                }
            }
        }
        self.tables = tables;
        self.db = Some(db);
        self.settings = Some(settings);
        Ok(())
    }

    fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        if self.tables.is_empty() {
            std::thread::sleep(MAX_IDLE);
            return Ok(Vec::new());
        }
        if let Some(at) = self.retry_at {
            let now = Instant::now();
            if at > now {
                std::thread::sleep((at - now).min(MAX_IDLE));
                return Ok(Vec::new());
            }
            self.retry_at = None;
        }
        let now = Instant::now();
        let Some(i) = (0..self.tables.len())
            .map(|k| (self.next + k) % self.tables.len())
            .find(|&k| self.tables[k].due <= now || self.tables[k].pending.is_some())
        else {
            let soonest = self.tables.iter().map(|t| t.due).min().unwrap_or(now);
            std::thread::sleep((soonest - now).min(MAX_IDLE));
            return Ok(Vec::new());
        };
        self.next = (i + 1) % self.tables.len();
        match self.poll_table(i) {
            Ok(records) => {
                self.failures = 0;
                Ok(records)
            }
            Err(e) if e.is_retriable() => {
                self.failures += 1;
                let settings = self
                    .settings
                    .as_ref()
                    .map(|s| (s.connection.attempts, s.connection.backoff));
                let (attempts, backoff) = settings.unwrap_or((3, Duration::from_secs(10)));
                if self.failures >= attempts {
                    return Err(ConnectError::new(format!(
                        "{e} ({} attempts in a row failed; raise `connection.attempts` or \
                         `connection.backoff.ms` to wait longer)",
                        self.failures
                    )));
                }
                // Nothing was handed out: the next attempt reads from the same position.
                self.retry_at = Some(Instant::now() + backoff);
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    fn stop(&mut self) -> Result<()> {
        for t in &mut self.tables {
            t.prefetched = None;
        }
        if let Some(db) = self.db.take() {
            db.close();
        }
        Ok(())
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Int8(n) => Some(i64::from(*n)),
        Value::Int16(n) => Some(i64::from(*n)),
        Value::Int32(n) => Some(i64::from(*n)),
        Value::Int64(n) => Some(*n),
        _ => None,
    }
}

fn bad_offset(t: &Table, key: &str, v: &Value) -> ConnectError {
    ConnectError::new(format!(
        "the stored offset of {} has {key} {v:?}, not a number; reset the connector's offsets",
        t.name.as_deref().unwrap_or("the query")
    ))
}

impl Table {
    fn new(name: Option<String>, topic: String, partition: OffsetMap) -> Table {
        Table {
            name,
            topic,
            partition,
            last_inc: -1,
            last_ts: epoch(),
            due: Instant::now(),
            scales: Vec::new(),
            pending: None,
            prefetched: None,
        }
    }
}

/// Where a query starts (after `last_inc` / `last_ts`) and ends (before `upper`).
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub last_inc: i64,
    pub last_ts: NaiveDateTime,
    pub upper: NaiveDateTime,
}

/// The SQL for one query of a table in a mode: the statement and its parameters.
pub fn build_query(
    dialect: Dialect,
    from: Option<&str>,
    query: Option<&str>,
    mode: &Mode,
    bounds: Bounds,
    limit: usize,
) -> (String, Vec<Param>) {
    let Bounds {
        last_inc,
        last_ts,
        upper,
    } = bounds;
    let mut sql = match (query, from) {
        (Some(q), _) => q.to_owned(),
        (None, Some(t)) => format!("SELECT * FROM {}", dialect.quote(t)),
        (None, None) => String::new(),
    };
    let mut params = Vec::new();
    let mut n = 0;
    let mut ph = |sql: &mut String| {
        n += 1;
        dialect.placeholder(n, sql);
    };
    let coalesce = |cols: &[String]| {
        let quoted: Vec<String> = cols.iter().map(|c| dialect.quote_column(c)).collect();
        if quoted.len() == 1 {
            quoted[0].clone()
        } else {
            format!("COALESCE({})", quoted.join(", "))
        }
    };
    match mode {
        Mode::Bulk => return (sql, params),
        Mode::Incrementing(inc) => {
            let c = dialect.quote_column(inc);
            sql.push_str(&format!(" WHERE {c} > "));
            ph(&mut sql);
            params.push(Param::I64(last_inc));
            sql.push_str(&format!(" ORDER BY {c} ASC"));
        }
        Mode::Timestamp(ts) => {
            let c = coalesce(ts);
            sql.push_str(&format!(" WHERE {c} > "));
            ph(&mut sql);
            sql.push_str(&format!(" AND {c} < "));
            ph(&mut sql);
            params.push(Param::Timestamp(last_ts));
            params.push(Param::Timestamp(upper));
            sql.push_str(&format!(" ORDER BY {c} ASC"));
        }
        Mode::TimestampIncrementing(ts, inc) => {
            let c = coalesce(ts);
            let i = dialect.quote_column(inc);
            sql.push_str(&format!(" WHERE (({c} = "));
            ph(&mut sql);
            sql.push_str(&format!(" AND {i} > "));
            ph(&mut sql);
            sql.push_str(&format!(") OR {c} > "));
            ph(&mut sql);
            sql.push_str(&format!(") AND {c} < "));
            ph(&mut sql);
            params.extend([
                Param::Timestamp(last_ts),
                Param::I64(last_inc),
                Param::Timestamp(last_ts),
                Param::Timestamp(upper),
            ]);
            sql.push_str(&format!(" ORDER BY {c} ASC, {i} ASC"));
        }
    }
    sql.push_str(&format!(" LIMIT {limit}"));
    (sql, params)
}

/// Every row at exactly one timestamp (completing a batch cut inside it).
fn same_timestamp_query(
    dialect: Dialect,
    from: Option<&str>,
    query: Option<&str>,
    ts: &[String],
    at: NaiveDateTime,
) -> (String, Vec<Param>) {
    let mut sql = match (query, from) {
        (Some(q), _) => q.to_owned(),
        (None, Some(t)) => format!("SELECT * FROM {}", dialect.quote(t)),
        (None, None) => String::new(),
    };
    let quoted: Vec<String> = ts.iter().map(|c| dialect.quote_column(c)).collect();
    let c = if quoted.len() == 1 {
        quoted[0].clone()
    } else {
        format!("COALESCE({})", quoted.join(", "))
    };
    sql.push_str(&format!(" WHERE {c} = "));
    dialect.placeholder(1, &mut sql);
    (sql, vec![Param::Timestamp(at)])
}

fn value_schema(name: Option<&str>, selected: &Selected) -> Schema {
    let mut s = Schema::structure();
    if let Some(n) = name {
        s = s.named(n);
    }
    s.fields = selected
        .columns
        .iter()
        .map(|c| Field {
            name: c.name.clone(),
            schema: c.schema(),
        })
        .collect();
    s
}

impl JdbcSourceTask {
    fn poll_table(&mut self, i: usize) -> Result<Vec<SourceRecord>> {
        let (Some(settings), Some(db)) = (self.settings.as_ref(), self.db.as_ref()) else {
            return Err(ConnectError::new("poll before start"));
        };
        let limit = settings.batch_max_rows;
        let t = &mut self.tables[i];
        if let Some((schema, rows)) = &mut t.pending {
            let out: Vec<SourceRecord> = rows
                .by_ref()
                .take(limit)
                .map(|values| {
                    let mut r = SourceRecord::new(
                        t.topic.clone(),
                        Data {
                            schema: Some(schema.clone()),
                            value: Value::Struct(values),
                        },
                    );
                    r.source_partition = t.partition.clone();
                    r
                })
                .collect();
            if out.len() < limit {
                t.pending = None;
                t.due = Instant::now() + settings.poll_interval;
            }
            return Ok(out);
        }
        let what = match &t.name {
            Some(n) => format!("reading table {n}"),
            None => "running `query`".to_owned(),
        };
        let upper = Utc::now().naive_utc() - settings.delay;
        let (sql, params) = build_query(
            db.dialect,
            t.name.as_deref(),
            settings.query.as_deref(),
            &settings.mode,
            Bounds {
                last_inc: t.last_inc,
                last_ts: t.last_ts,
                upper,
            },
            limit,
        );
        let ts_cols: &[String] = match &settings.mode {
            Mode::Timestamp(ts) | Mode::TimestampIncrementing(ts, _) => ts,
            _ => &[],
        };
        let scales = t.scales.clone();
        let scale_of = |c: &str| scales.iter().find(|(n, _)| n == c).map(|(_, s)| *s);
        // The rows the last full batch asked for ahead of time, when they are there; an
        // empty answer is not trusted (rows may have arrived since) and an error is
        // reported by asking again.
        let ahead = match t.prefetched.take() {
            Some((from, p)) if from == (t.last_inc, t.last_ts) => {
                p.wait().ok().filter(|s| !s.rows.is_empty())
            }
            _ => None,
        };
        let mut selected = match ahead {
            Some(s) => s,
            None => db.select(&what, &sql, &params, &scale_of, ts_cols)?,
        };
        let full = selected.rows.len() >= limit;
        if let (Mode::Timestamp(ts), true) = (&settings.mode, full) {
            // Cut inside one timestamp: drop that timestamp's rows and read them all.
            let last = selected.rows.last().and_then(|r| r.1);
            if let Some(last) = last {
                selected.rows.retain(|r| r.1 != Some(last));
                let (sql, params) = same_timestamp_query(
                    db.dialect,
                    t.name.as_deref(),
                    settings.query.as_deref(),
                    ts,
                    last,
                );
                let rest = db.select(&what, &sql, &params, &scale_of, ts_cols)?;
                selected.rows.extend(rest.rows);
                if selected.columns.is_empty() {
                    selected.columns = rest.columns;
                }
            }
        }
        if !full && !matches!(settings.mode, Mode::Bulk) {
            t.due = Instant::now() + settings.poll_interval;
        }
        if selected.rows.is_empty() {
            t.due = Instant::now() + settings.poll_interval;
            return Ok(Vec::new());
        }
        let schema = value_schema(t.name.as_deref(), &selected);
        let inc_idx = match &settings.mode {
            Mode::Incrementing(c) | Mode::TimestampIncrementing(_, c) => Some(
                selected
                    .columns
                    .iter()
                    .position(|x| &x.name == c)
                    .ok_or_else(|| {
                        ConnectError::new(format!(
                            "{what}: there is no column {c} (named in `incrementing.column.name`)"
                        ))
                    })?,
            ),
            _ => None,
        };
        if let Mode::Bulk = settings.mode {
            let rows: Vec<Vec<Value>> = selected.rows.into_iter().map(|r| r.0).collect();
            t.pending = Some((schema, rows.into_iter()));
            return self.poll_table(i);
        }
        let n = selected.rows.len();
        let mut out = Vec::with_capacity(n);
        let timestamps: Vec<Option<NaiveDateTime>> = selected.rows.iter().map(|r| r.1).collect();
        for (k, (values, ts)) in selected.rows.into_iter().enumerate() {
            if let Some(idx) = inc_idx {
                t.last_inc = as_i64(&values[idx]).ok_or_else(|| {
                    ConnectError::new(format!(
                        "{what}: the incrementing column {} holds {}, not an integer",
                        selected.columns[idx].name,
                        values[idx].type_name()
                    ))
                })?;
            }
            let mut offset = OffsetMap::new();
            match &settings.mode {
                Mode::Incrementing(_) => {
                    offset.insert("incrementing".into(), Value::Int64(t.last_inc));
                }
                Mode::Timestamp(_) => {
                    // Move to this timestamp only at its last row (see the module docs).
                    let last_of_group = timestamps.get(k + 1).is_none_or(|next| *next != ts);
                    if last_of_group && let Some(ts) = ts {
                        t.last_ts = ts;
                    }
                    put_ts(&mut offset, t.last_ts);
                }
                Mode::TimestampIncrementing(..) => {
                    if let Some(ts) = ts {
                        t.last_ts = ts;
                    }
                    put_ts(&mut offset, t.last_ts);
                    offset.insert("incrementing".into(), Value::Int64(t.last_inc));
                }
                Mode::Bulk => {}
            }
            let mut r = SourceRecord::new(
                t.topic.clone(),
                Data {
                    schema: Some(schema.clone()),
                    value: Value::Struct(values),
                },
            );
            r.source_partition = t.partition.clone();
            r.source_offset = offset;
            out.push(r);
        }
        if full {
            // More rows are likely: read the next batch while the worker writes this one.
            let upper = Utc::now().naive_utc() - settings.delay;
            let bounds = Bounds {
                last_inc: t.last_inc,
                last_ts: t.last_ts,
                upper,
            };
            let (sql, params) = build_query(
                db.dialect,
                t.name.as_deref(),
                settings.query.as_deref(),
                &settings.mode,
                bounds,
                limit,
            );
            let p = db.prefetch(what, sql, params, t.scales.clone(), ts_cols.to_vec());
            t.prefetched = Some(((t.last_inc, t.last_ts), p));
        }
        Ok(out)
    }
}

fn put_ts(offset: &mut OffsetMap, ts: NaiveDateTime) {
    let utc = ts.and_utc();
    offset.insert("timestamp".into(), Value::Int64(utc.timestamp_millis()));
    offset.insert(
        "timestamp_nanos".into(),
        Value::Int32(utc.nanosecond() as i32),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_spread_round_robin() {
        let t: Vec<String> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(spread(&t, 2), vec![vec!["a", "c", "e"], vec!["b", "d"]]);
        assert_eq!(spread(&t, 9).len(), 5);
        assert!(spread(&[], 3).is_empty());
    }

    #[test]
    fn queries_per_mode() {
        let e = epoch();
        let check = |d: Dialect, mode: Mode, expected: &str, nparams: usize| {
            let (sql, params) = build_query(
                d,
                Some("my \"t\""),
                None,
                &mode,
                Bounds {
                    last_inc: 5,
                    last_ts: e,
                    upper: e,
                },
                10,
            );
            assert_eq!(sql, expected);
            assert_eq!(params.len(), nparams);
        };
        check(
            Dialect::Postgres,
            Mode::Bulk,
            "SELECT * FROM \"my \"\"t\"\"\"",
            0,
        );
        check(
            Dialect::Postgres,
            Mode::Incrementing("id".into()),
            "SELECT * FROM \"my \"\"t\"\"\" WHERE \"id\" > $1 ORDER BY \"id\" ASC LIMIT 10",
            1,
        );
        check(
            Dialect::MySql,
            Mode::Timestamp(vec!["a".into(), "b".into()]),
            "SELECT * FROM `my \"t\"` WHERE COALESCE(`a`, `b`) > ? AND COALESCE(`a`, `b`) < ? ORDER BY COALESCE(`a`, `b`) ASC LIMIT 10",
            2,
        );
        check(
            Dialect::Sqlite,
            Mode::TimestampIncrementing(vec!["ts".into()], "id".into()),
            "SELECT * FROM \"my \"\"t\"\"\" WHERE ((\"ts\" = ? AND \"id\" > ?) OR \"ts\" > ?) AND \"ts\" < ? ORDER BY \"ts\" ASC, \"id\" ASC LIMIT 10",
            4,
        );
    }
}
