//! Connections and statements: one sqlx pool type per dialect (the `any` driver cannot
//! carry timestamps, numerics, UUIDs or JSON), the plugin's own small tokio runtime, the
//! decoding of result columns into the Kafka Connect data model, and the binding of
//! values. What is not here: which SQL to run (see `dialect`), or what a task does.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use futures_util::TryStreamExt;
use rust_decimal::Decimal;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{AssertSqlSafe, Column, Row, TypeInfo, ValueRef};
use tributary_plugin_sdk::{ConnectError, Result, Schema, Value, logical};

use crate::dialect::{ColumnType, Dialect, Target};

/// The runtime every task of this plugin shares: one worker thread (the callers block on
/// it from the worker's blocking threads, which drive the futures themselves).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tributary-jdbc")
            .enable_all()
            .build()
            .expect("building the JDBC plugin's runtime")
    })
}

/// How long to wait for a connection before calling the server unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
enum Pool {
    Pg(PgPool),
    My(MySqlPool),
    Lite(SqlitePool),
}

/// A pool of connections to one database.
#[derive(Debug, Clone)]
pub struct Db {
    pub dialect: Dialect,
    pool: Pool,
    /// The URL without its password, for messages.
    shown: String,
}

/// Whether an error of the database or the network may go away by retrying (the server
/// restarting, a dropped connection, a deadlock), as opposed to a wrong statement, a
/// missing table or bad credentials.
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            // PostgreSQL: connection exceptions (08...), shutdown (57P..), serialization
            // failure and deadlock. MySQL: deadlock, lock wait timeout, gone away, lost.
            code.starts_with("08")
                || code.starts_with("57P")
                || code == "40001"
                || code == "40P01"
                || code == "1213"
                || code == "1205"
                || code == "2006"
                || code == "2013"
        }
        _ => false,
    }
}

/// An sqlx error as the connector's error: retriable when [`is_transient`], with `what`
/// (the statement's purpose, naming the table) in front.
pub fn error(what: &str, e: sqlx::Error) -> ConnectError {
    let msg = format!("{what}: {}", describe(&e));
    if is_transient(&e) {
        ConnectError::retriable(msg)
    } else {
        ConnectError::new(msg)
    }
}

fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => match d.code() {
            Some(code) => format!("{} (SQL state {code})", d.message()),
            None => d.message().to_owned(),
        },
        other => other.to_string(),
    }
}

fn hide_password(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((creds, host)) = rest.rsplit_once('@')
    {
        let user = creds.split(':').next().unwrap_or_default();
        return format!("{scheme}://{user}:****@{host}");
    }
    url.to_owned()
}

impl Db {
    /// Connect (and check the connection with one round trip), naming the URL and the
    /// settings to fix on failure.
    pub fn connect(target: &Target) -> Result<Db> {
        let shown = hide_password(&target.url);
        let url = target.url.as_str();
        let pool = runtime().block_on(async {
            match target.dialect {
                Dialect::Postgres => PgPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect(url)
                    .await
                    .map(Pool::Pg),
                Dialect::MySql => MySqlPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect(url)
                    .await
                    .map(Pool::My),
                Dialect::Sqlite => SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect(url)
                    .await
                    .map(Pool::Lite),
            }
        });
        let pool = pool.map_err(|e| {
            let hint = match &e {
                sqlx::Error::Database(d)
                    if matches!(d.code().as_deref(), Some("28P01" | "28000" | "1045")) =>
                {
                    "check `connection.user` and `connection.password`"
                }
                sqlx::Error::Database(d)
                    if matches!(d.code().as_deref(), Some("3D000" | "1049")) =>
                {
                    "the database in `connection.url` does not exist"
                }
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => {
                    "is the server running and `connection.url` right?"
                }
                _ => "check `connection.url`, `connection.user` and `connection.password`",
            };
            let msg = format!("cannot connect to {shown}: {}; {hint}", describe(&e));
            if is_transient(&e) {
                ConnectError::retriable(msg)
            } else {
                ConnectError::new(msg)
            }
        })?;
        Ok(Db {
            dialect: target.dialect,
            pool,
            shown,
        })
    }

    /// The URL, password hidden.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub fn close(&self) {
        runtime().block_on(async {
            match &self.pool {
                Pool::Pg(p) => p.close().await,
                Pool::My(p) => p.close().await,
                Pool::Lite(p) => p.close().await,
            }
        })
    }

    /// The tables of the connection's schema (PostgreSQL), database (MySQL) or file.
    pub fn list_tables(&self) -> Result<Vec<String>> {
        let sql = self.dialect.list_tables();
        let what = format!("listing the tables of {}", self.shown);
        runtime()
            .block_on(async {
                match &self.pool {
                    Pool::Pg(p) => sqlx::query_scalar::<_, String>(sql).fetch_all(p).await,
                    Pool::My(p) => sqlx::query_scalar::<_, String>(sql).fetch_all(p).await,
                    Pool::Lite(p) => sqlx::query_scalar::<_, String>(sql).fetch_all(p).await,
                }
            })
            .map_err(|e| error(&what, e))
    }

    /// A table's columns and their declared scales (empty when the table is missing).
    pub fn describe_table(&self, table: &str) -> Result<Vec<(String, Option<i32>)>> {
        let sql = self.dialect.describe_table();
        let bare = table.rsplit('.').next().unwrap_or(table).to_owned();
        let what = format!("reading the columns of table {table}");
        runtime()
            .block_on(async {
                match &self.pool {
                    Pool::Pg(p) => {
                        sqlx::query_as::<_, (String, Option<i32>)>(sql)
                            .bind(bare)
                            .fetch_all(p)
                            .await
                    }
                    Pool::My(p) => sqlx::query_as::<_, (String, Option<i64>)>(sql)
                        .bind(bare)
                        .fetch_all(p)
                        .await
                        .map(|v| {
                            v.into_iter()
                                .map(|(c, s)| (c, s.map(|s| s as i32)))
                                .collect()
                        }),
                    Pool::Lite(p) => sqlx::query_as::<_, (String, Option<i64>)>(sql)
                        .bind(bare)
                        .fetch_all(p)
                        .await
                        .map(|v| {
                            v.into_iter()
                                .map(|(c, s)| (c, s.map(|s| s as i32)))
                                .collect()
                        }),
                }
            })
            .map_err(|e| error(&what, e))
    }

    /// Run a query and decode every row. `what` names the table (or query) for errors;
    /// `scales` gives the declared scale of decimal columns by name; `ts_columns` names
    /// the columns whose first non-null value (full precision) is returned beside each
    /// row, for timestamp offsets.
    pub fn select(
        &self,
        what: &str,
        sql: &str,
        params: &[Param],
        scales: &(dyn Fn(&str) -> Option<i32> + Sync),
        ts_columns: &[String],
    ) -> Result<Selected> {
        runtime().block_on(select(
            &self.pool,
            what,
            sql.to_owned(),
            params,
            scales,
            ts_columns,
        ))
    }

    /// [`Db::select`] started now on the plugin's runtime thread, to be awaited later with
    /// [`Prefetch::wait`]: a source reads its next batch while the worker converts and
    /// writes the one before, on the other core.
    pub fn prefetch(
        &self,
        what: String,
        sql: String,
        params: Vec<Param>,
        scales: Vec<(String, i32)>,
        ts_columns: Vec<String>,
    ) -> Prefetch {
        let pool = self.pool.clone();
        Prefetch(runtime().spawn(async move {
            let scale_of = |c: &str| scales.iter().find(|(n, _)| n == c).map(|(_, s)| *s);
            select(&pool, &what, sql, &params, &scale_of, &ts_columns).await
        }))
    }

    /// Run statements in one transaction: all or none. Answers the rows each affected.
    pub fn write(&self, what: &str, statements: Vec<(String, Vec<Param>)>) -> Result<Vec<u64>> {
        let fut = async {
            let mut counts = Vec::with_capacity(statements.len());
            macro_rules! run {
                ($pool:expr, $bind:ident) => {{
                    let mut tx = $pool.begin().await.map_err(|e| error(what, e))?;
                    for (sql, params) in statements {
                        let q = $bind(sqlx::query(AssertSqlSafe(sql)), params)?;
                        let r = q.execute(&mut *tx).await.map_err(|e| error(what, e))?;
                        counts.push(r.rows_affected());
                    }
                    tx.commit().await.map_err(|e| error(what, e))?;
                }};
            }
            match &self.pool {
                Pool::Pg(p) => run!(p, bind_pg),
                Pool::My(p) => run!(p, bind_my),
                Pool::Lite(p) => run!(p, bind_lite),
            }
            Ok::<_, ConnectError>(counts)
        };
        runtime().block_on(fut)
    }

    /// Every row of a query, decoded (for tools and tests: decimals at their declared
    /// scale are not known here, so they come at scale 0 unless `scales` says).
    pub fn rows(
        &self,
        sql: &str,
        scales: &(dyn Fn(&str) -> Option<i32> + Sync),
    ) -> Result<Vec<Vec<Value>>> {
        Ok(self
            .select(sql, sql, &[], scales, &[])?
            .rows
            .into_iter()
            .map(|r| r.0)
            .collect())
    }

    /// Run one statement outside a batch (DDL).
    pub fn execute(&self, what: &str, sql: String) -> Result<()> {
        self.write(what, vec![(sql, Vec::new())]).map(drop)
    }
}

/// Run a query and decode every row (see [`Db::select`]).
async fn select(
    pool: &Pool,
    what: &str,
    sql: String,
    params: &[Param],
    scales: &(dyn Fn(&str) -> Option<i32> + Sync),
    ts_columns: &[String],
) -> Result<Selected> {
    let mut out = Selected::default();
    let mut ts_idx: Vec<usize> = Vec::new();
    macro_rules! run {
        ($pool:expr, $bind:ident, $kind:ident, $decode:ident, $ts:ident) => {{
            let q = $bind(sqlx::query(AssertSqlSafe(sql)), params.iter().cloned())?;
            let mut rows = q.fetch($pool);
            while let Some(row) = rows.try_next().await.map_err(|e| error(what, e))? {
                if out.columns.is_empty() {
                    for (i, c) in row.columns().iter().enumerate() {
                        let name = c.name().to_owned();
                        let ty = c.type_info().name().to_owned();
                        let kind = $kind(&row, i, &ty).ok_or_else(|| {
                            ConnectError::new(format!(
                                "{what}: column {name} has type {ty}, which has no \
                                 Kafka Connect type; leave it out with `query` or a view"
                            ))
                        })?;
                        let scale = match kind {
                            Kind::Decimal => Some(scales(&name).unwrap_or(0)),
                            _ => None,
                        };
                        out.columns.push(SelectedColumn { name, kind, scale });
                    }
                    for t in ts_columns {
                        let i = out.columns.iter().position(|c| &c.name == t).ok_or_else(|| {
                            ConnectError::new(format!(
                                "{what} has no column {t} (named in `timestamp.column.name`)"
                            ))
                        })?;
                        if !matches!(out.columns[i].kind, Kind::Timestamp | Kind::TimestampTz | Kind::Date) {
                            return Err(ConnectError::new(format!(
                                "{what}: column {t} (named in `timestamp.column.name`) is not a timestamp"
                            )));
                        }
                        ts_idx.push(i);
                    }
                }
                let mut values = Vec::with_capacity(out.columns.len());
                for (i, c) in out.columns.iter().enumerate() {
                    values.push($decode(&row, i, c).map_err(|e| {
                        ConnectError::new(format!(
                            "{what}: reading column {}: {e}",
                            c.name
                        ))
                    })?);
                }
                let mut ts = None;
                for &i in &ts_idx {
                    let t = $ts(&row, i, out.columns[i].kind)
                        .map_err(|e| error(what, e))?;
                    if t.is_some() {
                        ts = t;
                        break;
                    }
                }
                out.rows.push((values, ts));
            }
        }};
    }
    match pool {
        Pool::Pg(p) => run!(p, bind_pg, pg_kind, pg_decode, pg_ts),
        Pool::My(p) => run!(p, bind_my, my_kind, my_decode, my_ts),
        Pool::Lite(p) => run!(p, bind_lite, lite_kind, lite_decode, lite_ts),
    }
    Ok::<_, ConnectError>(out)
}

/// A query running ahead on the plugin's runtime ([`Db::prefetch`]); dropping it stops it.
#[derive(Debug)]
pub struct Prefetch(tokio::task::JoinHandle<Result<Selected>>);

impl Prefetch {
    /// The rows, once the query is done.
    pub fn wait(mut self) -> Result<Selected> {
        match runtime().block_on(&mut self.0) {
            Ok(result) => result,
            Err(e) => Err(ConnectError::new(format!(
                "a prefetched query did not finish: {e}"
            ))),
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The rows of a query: columns, then each row's values and its timestamp offset.
#[derive(Debug, Default)]
pub struct Selected {
    pub columns: Vec<SelectedColumn>,
    pub rows: Vec<(Vec<Value>, Option<NaiveDateTime>)>,
}

#[derive(Debug, Clone)]
pub struct SelectedColumn {
    pub name: String,
    pub kind: Kind,
    pub scale: Option<i32>,
}

impl SelectedColumn {
    /// The field's schema: optional, as a column may hold NULL.
    pub fn schema(&self) -> Schema {
        let s = match self.kind {
            Kind::Bool => Schema::boolean(),
            Kind::I8 => Schema::int8(),
            Kind::I16 | Kind::U8 => Schema::int16(),
            Kind::I32 | Kind::U16 => Schema::int32(),
            Kind::I64 | Kind::U32 | Kind::U64 => Schema::int64(),
            Kind::F32 => Schema::float32(),
            Kind::F64 => Schema::float64(),
            Kind::Decimal => logical::decimal_schema(self.scale.unwrap_or(0)),
            Kind::Text | Kind::Json | Kind::Uuid => Schema::string(),
            Kind::Bytes => Schema::bytes(),
            Kind::Date => logical::date_schema(),
            Kind::Time => logical::time_schema(),
            Kind::Timestamp | Kind::TimestampTz => logical::timestamp_schema(),
        };
        s.optional()
    }
}

/// How a result column is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
    Decimal,
    Text,
    Json,
    Uuid,
    Bytes,
    Date,
    Time,
    Timestamp,
    TimestampTz,
}

/// A value to bind: typed even when null (PostgreSQL checks a parameter's type).
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null(ColumnType),
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Text(String),
    Bytes(Vec<u8>),
    /// Unscaled value and scale.
    Decimal(i128, i32),
    Date(NaiveDate),
    Time(NaiveTime),
    Timestamp(NaiveDateTime),
}

/// Decimal values bind as `rust_decimal` (up to 28 digits of scale, 96 bits).
fn to_decimal(unscaled: i128, scale: i32) -> Result<Decimal> {
    let (mut u, mut s) = (unscaled, scale);
    while s < 0 {
        u = u.checked_mul(10).ok_or_else(|| {
            ConnectError::new("a decimal value is too large for the database driver")
        })?;
        s += 1;
    }
    Decimal::try_from_i128_with_scale(u, s as u32)
        .map_err(|e| ConnectError::new(format!("decimal {unscaled} at scale {scale}: {e}")))
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;
type MyQuery<'q> = sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments>;
type LiteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

fn bind_pg<'q>(mut q: PgQuery<'q>, params: impl IntoIterator<Item = Param>) -> Result<PgQuery<'q>> {
    use ColumnType as C;
    for p in params {
        q = match p {
            Param::Null(t) => match t {
                C::Boolean => q.bind(None::<bool>),
                C::Int8 | C::Int16 => q.bind(None::<i16>),
                C::Int32 => q.bind(None::<i32>),
                C::Int64 => q.bind(None::<i64>),
                C::Float32 => q.bind(None::<f32>),
                C::Float64 => q.bind(None::<f64>),
                C::String => q.bind(None::<String>),
                C::Bytes => q.bind(None::<Vec<u8>>),
                C::Decimal(_) => q.bind(None::<Decimal>),
                C::Date => q.bind(None::<NaiveDate>),
                C::Time => q.bind(None::<NaiveTime>),
                C::Timestamp => q.bind(None::<NaiveDateTime>),
            },
            Param::Bool(v) => q.bind(v),
            Param::I8(v) => q.bind(i16::from(v)),
            Param::I16(v) => q.bind(v),
            Param::I32(v) => q.bind(v),
            Param::I64(v) => q.bind(v),
            Param::F32(v) => q.bind(v),
            Param::F64(v) => q.bind(v),
            Param::Text(v) => q.bind(v),
            Param::Bytes(v) => q.bind(v),
            Param::Decimal(u, s) => q.bind(to_decimal(u, s)?),
            Param::Date(v) => q.bind(v),
            Param::Time(v) => q.bind(v),
            Param::Timestamp(v) => q.bind(v),
        };
    }
    Ok(q)
}

fn bind_my<'q>(mut q: MyQuery<'q>, params: impl IntoIterator<Item = Param>) -> Result<MyQuery<'q>> {
    use ColumnType as C;
    for p in params {
        q = match p {
            Param::Null(t) => match t {
                C::Boolean => q.bind(None::<bool>),
                C::Int8 => q.bind(None::<i8>),
                C::Int16 => q.bind(None::<i16>),
                C::Int32 => q.bind(None::<i32>),
                C::Int64 => q.bind(None::<i64>),
                C::Float32 => q.bind(None::<f32>),
                C::Float64 => q.bind(None::<f64>),
                C::String => q.bind(None::<String>),
                C::Bytes => q.bind(None::<Vec<u8>>),
                C::Decimal(_) => q.bind(None::<Decimal>),
                C::Date => q.bind(None::<NaiveDate>),
                C::Time => q.bind(None::<NaiveTime>),
                C::Timestamp => q.bind(None::<NaiveDateTime>),
            },
            Param::Bool(v) => q.bind(v),
            Param::I8(v) => q.bind(v),
            Param::I16(v) => q.bind(v),
            Param::I32(v) => q.bind(v),
            Param::I64(v) => q.bind(v),
            Param::F32(v) => q.bind(v),
            Param::F64(v) => q.bind(v),
            Param::Text(v) => q.bind(v),
            Param::Bytes(v) => q.bind(v),
            Param::Decimal(u, s) => q.bind(to_decimal(u, s)?),
            Param::Date(v) => q.bind(v),
            Param::Time(v) => q.bind(v),
            Param::Timestamp(v) => q.bind(v),
        };
    }
    Ok(q)
}

fn bind_lite<'q>(
    mut q: LiteQuery<'q>,
    params: impl IntoIterator<Item = Param>,
) -> Result<LiteQuery<'q>> {
    use ColumnType as C;
    for p in params {
        q = match p {
            Param::Null(t) => match t {
                C::Boolean => q.bind(None::<bool>),
                C::Int8 | C::Int16 | C::Int32 | C::Int64 => q.bind(None::<i64>),
                C::Float32 | C::Float64 => q.bind(None::<f64>),
                C::Bytes => q.bind(None::<Vec<u8>>),
                _ => q.bind(None::<String>),
            },
            Param::Bool(v) => q.bind(v),
            Param::I8(v) => q.bind(i64::from(v)),
            Param::I16(v) => q.bind(i64::from(v)),
            Param::I32(v) => q.bind(i64::from(v)),
            Param::I64(v) => q.bind(v),
            Param::F32(v) => q.bind(f64::from(v)),
            Param::F64(v) => q.bind(v),
            Param::Text(v) => q.bind(v),
            Param::Bytes(v) => q.bind(v),
            // SQLite has no decimal type: the exact text, stored with NUMERIC affinity.
            Param::Decimal(u, s) => q.bind(logical::decimal_to_string(u, s)),
            Param::Date(v) => q.bind(v),
            Param::Time(v) => q.bind(v),
            Param::Timestamp(v) => q.bind(v),
        };
    }
    Ok(q)
}

fn pg_kind(_row: &PgRow, _i: usize, ty: &str) -> Option<Kind> {
    Some(match ty {
        "BOOL" => Kind::Bool,
        "INT2" => Kind::I16,
        "INT4" => Kind::I32,
        "INT8" => Kind::I64,
        "OID" => Kind::U32,
        "FLOAT4" => Kind::F32,
        "FLOAT8" => Kind::F64,
        "NUMERIC" => Kind::Decimal,
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "\"CHAR\"" | "CHAR" | "CITEXT" => Kind::Text,
        "BYTEA" => Kind::Bytes,
        "DATE" => Kind::Date,
        "TIME" => Kind::Time,
        "TIMESTAMP" => Kind::Timestamp,
        "TIMESTAMPTZ" => Kind::TimestampTz,
        "JSON" | "JSONB" => Kind::Json,
        "UUID" => Kind::Uuid,
        _ => return None,
    })
}

fn my_kind(_row: &MySqlRow, _i: usize, ty: &str) -> Option<Kind> {
    Some(match ty {
        "BOOLEAN" => Kind::Bool,
        "TINYINT" => Kind::I8,
        "SMALLINT" => Kind::I16,
        "MEDIUMINT" | "INT" => Kind::I32,
        "BIGINT" => Kind::I64,
        "TINYINT UNSIGNED" => Kind::U8,
        "SMALLINT UNSIGNED" => Kind::U16,
        "MEDIUMINT UNSIGNED" | "INT UNSIGNED" => Kind::U32,
        "BIGINT UNSIGNED" => Kind::U64,
        "FLOAT" => Kind::F32,
        "DOUBLE" => Kind::F64,
        "DECIMAL" => Kind::Decimal,
        "CHAR" | "VARCHAR" | "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" | "SET" => {
            Kind::Text
        }
        "JSON" => Kind::Json,
        "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" => Kind::Bytes,
        "DATE" => Kind::Date,
        "TIME" => Kind::Time,
        "DATETIME" => Kind::Timestamp,
        "TIMESTAMP" => Kind::TimestampTz,
        _ => return None,
    })
}

fn lite_kind(row: &SqliteRow, i: usize, ty: &str) -> Option<Kind> {
    let ty = if ty == "NULL" {
        // No declared type (an expression): the first row's value says.
        row.try_get_raw(i).ok()?.type_info().name().to_owned()
    } else {
        ty.to_owned()
    };
    Some(match ty.as_str() {
        "BOOLEAN" => Kind::Bool,
        "INTEGER" => Kind::I64,
        "REAL" | "NUMERIC" => Kind::F64,
        "TEXT" | "NULL" => Kind::Text,
        "BLOB" => Kind::Bytes,
        "DATE" => Kind::Date,
        "TIME" => Kind::Time,
        "DATETIME" => Kind::Timestamp,
        _ => return None,
    })
}

fn days(d: NaiveDate) -> Value {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    Value::Int32((d - epoch).num_days() as i32)
}

fn millis_of_day(t: NaiveTime) -> Value {
    Value::Int32((t.num_seconds_from_midnight() * 1000 + t.nanosecond() / 1_000_000 % 1000) as i32)
}

fn millis(t: NaiveDateTime) -> Value {
    Value::Int64(t.and_utc().timestamp_millis())
}

fn decimal(d: Decimal, scale: i32) -> Value {
    let mut d = d;
    d.rescale(scale.max(0) as u32);
    let mut unscaled = d.mantissa();
    for _ in scale..0 {
        unscaled /= 10;
    }
    logical::decimal_value(unscaled)
}

/// A timestamp column's value at full precision (records carry milliseconds; offsets
/// must not lose the rest, or a row would be read twice).
macro_rules! ts_full {
    ($row:expr, $i:expr, $kind:expr) => {
        match $kind {
            Kind::Timestamp => $row.try_get::<Option<NaiveDateTime>, _>($i)?,
            Kind::TimestampTz => $row
                .try_get::<Option<DateTime<Utc>>, _>($i)?
                .map(|t| t.naive_utc()),
            Kind::Date => $row
                .try_get::<Option<NaiveDate>, _>($i)?
                .map(|d| d.and_time(NaiveTime::MIN)),
            _ => None,
        }
    };
}

fn pg_ts(
    row: &PgRow,
    i: usize,
    kind: Kind,
) -> std::result::Result<Option<NaiveDateTime>, sqlx::Error> {
    Ok(ts_full!(row, i, kind))
}

fn my_ts(
    row: &MySqlRow,
    i: usize,
    kind: Kind,
) -> std::result::Result<Option<NaiveDateTime>, sqlx::Error> {
    Ok(ts_full!(row, i, kind))
}

fn lite_ts(
    row: &SqliteRow,
    i: usize,
    kind: Kind,
) -> std::result::Result<Option<NaiveDateTime>, sqlx::Error> {
    Ok(ts_full!(row, i, kind))
}

type DecodeResult = std::result::Result<Value, sqlx::Error>;

macro_rules! opt {
    ($row:expr, $i:expr, $t:ty, $f:expr) => {
        match $row.try_get::<Option<$t>, _>($i)? {
            None => Value::Null,
            Some(v) => $f(v),
        }
    };
}

macro_rules! opt_unchecked {
    ($row:expr, $i:expr, $t:ty, $f:expr) => {
        match $row.try_get_unchecked::<Option<$t>, _>($i)? {
            None => Value::Null,
            Some(v) => $f(v),
        }
    };
}

fn pg_decode(row: &PgRow, i: usize, c: &SelectedColumn) -> DecodeResult {
    Ok(match c.kind {
        Kind::Bool => opt!(row, i, bool, Value::Boolean),
        Kind::I16 => opt!(row, i, i16, Value::Int16),
        Kind::I32 => opt!(row, i, i32, Value::Int32),
        Kind::I64 => opt!(row, i, i64, Value::Int64),
        Kind::U32 => opt!(
            row,
            i,
            sqlx::postgres::types::Oid,
            |o: sqlx::postgres::types::Oid| Value::Int64(i64::from(o.0))
        ),
        Kind::F32 => opt!(row, i, f32, Value::Float32),
        Kind::F64 => opt!(row, i, f64, Value::Float64),
        Kind::Decimal => opt!(row, i, Decimal, |d| decimal(d, c.scale.unwrap_or(0))),
        Kind::Text => opt!(row, i, String, Value::String),
        Kind::Json => opt!(row, i, serde_json::Value, |j: serde_json::Value| {
            Value::String(j.to_string())
        }),
        Kind::Uuid => opt!(row, i, uuid::Uuid, |u: uuid::Uuid| Value::String(
            u.to_string()
        )),
        Kind::Bytes => opt!(row, i, Vec<u8>, Value::Bytes),
        Kind::Date => opt!(row, i, NaiveDate, days),
        Kind::Time => opt!(row, i, NaiveTime, millis_of_day),
        Kind::Timestamp => opt!(row, i, NaiveDateTime, millis),
        Kind::TimestampTz => opt!(row, i, DateTime<Utc>, |t: DateTime<Utc>| millis(
            t.naive_utc()
        )),
        Kind::I8 | Kind::U8 | Kind::U16 | Kind::U64 => Value::Null,
    })
}

fn my_decode(row: &MySqlRow, i: usize, c: &SelectedColumn) -> DecodeResult {
    Ok(match c.kind {
        Kind::Bool => opt!(row, i, bool, Value::Boolean),
        Kind::I8 => opt!(row, i, i8, Value::Int8),
        Kind::I16 => opt!(row, i, i16, Value::Int16),
        Kind::I32 => opt!(row, i, i32, Value::Int32),
        Kind::I64 => opt!(row, i, i64, Value::Int64),
        Kind::U8 => opt!(row, i, u8, |v: u8| Value::Int16(i16::from(v))),
        Kind::U16 => opt!(row, i, u16, |v: u16| Value::Int32(i32::from(v))),
        Kind::U32 => opt!(row, i, u32, |v: u32| Value::Int64(i64::from(v))),
        Kind::U64 => match row.try_get::<Option<u64>, _>(i)? {
            None => Value::Null,
            Some(v) => Value::Int64(i64::try_from(v).map_err(|_| {
                sqlx::Error::Decode(
                    format!("BIGINT UNSIGNED value {v} does not fit in an INT64").into(),
                )
            })?),
        },
        Kind::F32 => opt!(row, i, f32, Value::Float32),
        Kind::F64 => opt!(row, i, f64, Value::Float64),
        Kind::Decimal => opt!(row, i, Decimal, |d| decimal(d, c.scale.unwrap_or(0))),
        Kind::Text | Kind::Json | Kind::Uuid => opt_unchecked!(row, i, String, Value::String),
        Kind::Bytes => opt!(row, i, Vec<u8>, Value::Bytes),
        Kind::Date => opt!(row, i, NaiveDate, days),
        Kind::Time => opt!(row, i, NaiveTime, millis_of_day),
        Kind::Timestamp => opt!(row, i, NaiveDateTime, millis),
        Kind::TimestampTz => opt!(row, i, DateTime<Utc>, |t: DateTime<Utc>| millis(
            t.naive_utc()
        )),
    })
}

fn lite_decode(row: &SqliteRow, i: usize, c: &SelectedColumn) -> DecodeResult {
    Ok(match c.kind {
        Kind::Bool => opt!(row, i, bool, Value::Boolean),
        Kind::I64 => opt_unchecked!(row, i, i64, Value::Int64),
        Kind::F64 => opt_unchecked!(row, i, f64, Value::Float64),
        Kind::Bytes => opt_unchecked!(row, i, Vec<u8>, Value::Bytes),
        Kind::Date => opt!(row, i, NaiveDate, days),
        Kind::Time => opt!(row, i, NaiveTime, millis_of_day),
        Kind::Timestamp => opt!(row, i, NaiveDateTime, millis),
        _ => opt_unchecked!(row, i, String, Value::String),
    })
}
