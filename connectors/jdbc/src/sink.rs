//! `JdbcSink`: records of topics into tables, by insert, upsert or update, with deletes
//! for tombstones, creating and evolving tables from record schemas.
//!
//! Each `put` is written `batch.size` records at a time, each batch in one transaction
//! (all its rows or none). Consecutive records for the same table and columns become one
//! multi-row `INSERT` (or upsert); updates and deletes are one statement per record in the
//! same transaction. Within one upsert statement a key that repeats keeps its last record
//! (PostgreSQL refuses to touch a row twice in one statement; the last record wins anyway).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use tributary_plugin_sdk::{
    Config, ConfigDef, ConnectError, Data, RawConfig, Result, Schema, SchemaType, SinkConnector,
    SinkRecord, SinkTask, SinkTaskContext, Value, logical,
};

use crate::config::{self as cfg};
use crate::db::{Db, Param};
use crate::dialect::ColumnType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertMode {
    Insert,
    Upsert,
    Update,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkMode {
    None,
    Kafka,
    RecordKey,
    RecordValue,
}

/// The sink settings, validated across keys.
#[derive(Debug, Clone)]
pub struct JdbcSinkConfig {
    pub connection: cfg::Connection,
    pub insert_mode: InsertMode,
    pub pk_mode: PkMode,
    pub pk_fields: Vec<String>,
    pub table_name_format: String,
    pub auto_create: bool,
    pub auto_evolve: bool,
    pub delete_enabled: bool,
    pub batch_size: usize,
}

impl JdbcSinkConfig {
    pub fn from_config(c: &Config) -> Result<JdbcSinkConfig> {
        let insert_mode = match c.string(cfg::INSERT_MODE).unwrap_or("insert") {
            "upsert" => InsertMode::Upsert,
            "update" => InsertMode::Update,
            _ => InsertMode::Insert,
        };
        let pk_mode = match c.string(cfg::PK_MODE).unwrap_or("none") {
            "kafka" => PkMode::Kafka,
            "record_key" => PkMode::RecordKey,
            "record_value" => PkMode::RecordValue,
            _ => PkMode::None,
        };
        let delete_enabled = c.boolean(cfg::DELETE_ENABLED).unwrap_or(false);
        if delete_enabled && pk_mode != PkMode::RecordKey {
            return Err(ConnectError::new(
                "`delete.enabled=true` needs `pk.mode=record_key`: a tombstone names its row by its key",
            ));
        }
        if insert_mode != InsertMode::Insert && pk_mode == PkMode::None {
            return Err(ConnectError::new(
                "`insert.mode` upsert and update need a primary key: set `pk.mode` (record_key, record_value or kafka)",
            ));
        }
        let pk_fields = cfg::list(c, cfg::PK_FIELDS);
        if pk_mode == PkMode::Kafka && !pk_fields.is_empty() && pk_fields.len() != 3 {
            return Err(ConnectError::new(
                "`pk.mode=kafka` takes three `pk.fields` (topic, partition, offset columns) or none",
            ));
        }
        Ok(JdbcSinkConfig {
            connection: cfg::Connection::from_config(c)?,
            insert_mode,
            pk_mode,
            pk_fields,
            table_name_format: c
                .string(cfg::TABLE_NAME_FORMAT)
                .unwrap_or("${topic}")
                .to_owned(),
            auto_create: c.boolean(cfg::AUTO_CREATE).unwrap_or(false),
            auto_evolve: c.boolean(cfg::AUTO_EVOLVE).unwrap_or(false),
            delete_enabled,
            batch_size: c.int(cfg::BATCH_SIZE).unwrap_or(3000).max(1) as usize,
        })
    }
}

/// The connector: every task gets the same config.
#[derive(Debug, Default)]
pub struct JdbcSink {
    originals: RawConfig,
}

impl SinkConnector for JdbcSink {
    const NAME: &'static str = "io.confluent.connect.jdbc.JdbcSinkConnector";
    const ALIASES: &'static [&'static str] = &["io.tributary.connect.jdbc.JdbcSinkConnector"];
    type Task = JdbcSinkTask;

    fn config_def() -> ConfigDef {
        cfg::sink_def()
    }

    fn start(&mut self, config: Config) -> Result<()> {
        JdbcSinkConfig::from_config(&config)?;
        self.originals = config.originals().clone();
        Ok(())
    }

    fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<RawConfig>> {
        Ok(vec![self.originals.clone(); max_tasks])
    }

    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

/// What the task knows of a destination table: its columns as the database spells them.
#[derive(Debug, Default)]
struct TableInfo {
    columns: Vec<String>,
}

impl TableInfo {
    /// The table's spelling of a column (exact, else ignoring case).
    fn column(&self, name: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|c| *c == name)
            .or_else(|| self.columns.iter().find(|c| c.eq_ignore_ascii_case(name)))
            .map(String::as_str)
    }
}

/// Writes batches in transactions.
#[derive(Debug, Default)]
pub struct JdbcSinkTask {
    config: Option<JdbcSinkConfig>,
    db: Option<Db>,
    tables: HashMap<String, TableInfo>,
    /// Where records the database refuses are reported (Kafka Connect's errant record
    /// reporter: `errors.tolerance` and the DLQ decide what becomes of them).
    context: Option<SinkTaskContext>,
}

/// One record made into a row: its table, the operation, the columns (pk first) with
/// their schemas, and the values.
#[derive(Debug)]
struct Row {
    table: String,
    delete: bool,
    columns: Vec<(String, ColumnType, bool)>,
    pk: Vec<String>,
    values: Vec<Param>,
    origin: String,
}

impl SinkTask for JdbcSinkTask {
    fn initialize(&mut self, context: SinkTaskContext) {
        self.context = Some(context);
    }

    fn start(&mut self, raw: RawConfig) -> Result<()> {
        let config = JdbcSinkConfig::from_config(&cfg::sink_def().parse(&raw)?)?;
        self.db = Some(Db::connect(&config.connection.target)?);
        self.config = Some(config);
        Ok(())
    }

    fn put(&mut self, records: Vec<SinkRecord>) -> Result<()> {
        let Some(config) = self.config.clone() else {
            return Err(ConnectError::new("put before start"));
        };
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            let mut rows = Vec::with_capacity(config.batch_size.min(4096));
            let mut places = Vec::with_capacity(config.batch_size.min(4096));
            for r in records.by_ref().take(config.batch_size) {
                let place = (r.topic.clone(), r.partition, r.offset);
                match to_row(&config, r) {
                    Ok(Some(row)) => {
                        rows.push(row);
                        places.push(place);
                    }
                    Ok(None) => {}
                    Err(e) => self.report(place, e)?,
                }
            }
            self.write_or_report(&config, &rows, &places)?;
        }
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        if let Some(db) = self.db.take() {
            db.close();
        }
        Ok(())
    }
}

impl JdbcSinkTask {
    fn db(&self) -> Result<&Db> {
        self.db
            .as_ref()
            .ok_or_else(|| ConnectError::new("put before start"))
    }

    /// Create or evolve the table so that it has the row's columns; answers the table's
    /// spelling of each column.
    fn ensure_table(&mut self, config: &JdbcSinkConfig, row: &Row) -> Result<Vec<String>> {
        let db = self.db()?.clone();
        if !self.tables.contains_key(&row.table) {
            let mut columns: Vec<String> = db
                .describe_table(&row.table)?
                .into_iter()
                .map(|c| c.0)
                .collect();
            if columns.is_empty() {
                if !config.auto_create {
                    return Err(ConnectError::new(format!(
                        "table {} does not exist in {} (record {}); create it or set `auto.create=true`",
                        row.table,
                        db.shown(),
                        row.origin
                    )));
                }
                if row.delete {
                    return Err(ConnectError::new(format!(
                        "table {} does not exist and a tombstone ({}) cannot create it",
                        row.table, row.origin
                    )));
                }
                db.execute(
                    &format!("creating table {}", row.table),
                    db.dialect.create_table(&row.table, &row.columns, &row.pk),
                )?;
                columns = row.columns.iter().map(|c| c.0.clone()).collect();
            }
            self.tables.insert(row.table.clone(), TableInfo { columns });
        }
        let info = self
            .tables
            .get_mut(&row.table)
            .ok_or_else(|| ConnectError::new("table vanished"))?;
        let mut spelled = Vec::with_capacity(row.columns.len());
        let used = if row.delete {
            &row.columns[..row.pk.len()]
        } else {
            &row.columns[..]
        };
        for (name, t, nullable) in used {
            if let Some(c) = info.column(name) {
                spelled.push(c.to_owned());
                continue;
            }
            if !config.auto_evolve {
                return Err(ConnectError::new(format!(
                    "table {} has no column {name} (record {}); add it or set `auto.evolve=true`",
                    row.table, row.origin
                )));
            }
            if !nullable {
                return Err(ConnectError::new(format!(
                    "cannot add column {name} to table {}: its field is not optional and has no \
                     default (record {}); make the field optional or add the column by hand",
                    row.table, row.origin
                )));
            }
            db.execute(
                &format!("adding column {name} to table {}", row.table),
                db.dialect.add_column(&row.table, name, *t),
            )?;
            info.columns.push(name.clone());
            spelled.push(name.clone());
        }
        Ok(spelled)
    }

    /// Hand a record the database (or the table) refuses to the worker's error handling;
    /// without a reporter (an old worker) the batch fails with the error.
    fn report(&self, place: (String, i32, i64), error: ConnectError) -> Result<()> {
        let Some(ctx) = &self.context else {
            return Err(error);
        };
        let (topic, partition, offset) = place;
        let record = SinkRecord::new(topic, partition, offset, Data::null());
        ctx.report(&record, &error)
    }

    /// Write `rows` in one transaction; if the database refuses the batch for a reason
    /// other than the connection, write them one at a time and report each row it
    /// refuses (a type mismatch, a missing table or column), so that `errors.tolerance`
    /// and the DLQ apply to that record alone and the others are written.
    fn write_or_report(
        &mut self,
        config: &JdbcSinkConfig,
        rows: &[Row],
        places: &[(String, i32, i64)],
    ) -> Result<()> {
        match self.write(config, rows) {
            Ok(()) => Ok(()),
            Err(e) if e.is_retriable() || self.context.is_none() => Err(e),
            Err(e) if rows.len() == 1 => self.report(places[0].clone(), e),
            Err(_) => {
                for (row, place) in rows.iter().zip(places) {
                    match self.write(config, std::slice::from_ref(row)) {
                        Ok(()) => {}
                        Err(e) if e.is_retriable() => return Err(e),
                        Err(e) => self.report(place.clone(), e)?,
                    }
                }
                Ok(())
            }
        }
    }

    fn write(&mut self, config: &JdbcSinkConfig, rows: &[Row]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let dialect = self.db()?.dialect;
        let mut statements: Vec<(String, Vec<Param>)> = Vec::new();
        let mut tables_touched: Vec<String> = Vec::new();
        let mut rows = rows.iter().peekable();
        while let Some(first) = rows.next() {
            let spelled = self.ensure_table(config, first)?;
            if !tables_touched.contains(&first.table) {
                tables_touched.push(first.table.clone());
            }
            let pk: Vec<String> = spelled[..first.pk.len()].to_vec();
            if first.delete {
                statements.push((
                    dialect.delete(&first.table, &pk),
                    first.values[..first.pk.len()].to_vec(),
                ));
                continue;
            }
            if config.insert_mode == InsertMode::Update {
                let mut values = first.values[first.pk.len()..].to_vec();
                values.extend_from_slice(&first.values[..first.pk.len()]);
                statements.push((dialect.update(&first.table, &spelled, &pk), values));
                continue;
            }
            // A run of rows for the same table and columns: one multi-row statement.
            let per_statement = (dialect.max_params() / spelled.len().max(1)).max(1);
            let mut group = vec![first];
            while let Some(next) = rows.peek() {
                if next.delete
                    || next.table != group[0].table
                    || next.columns.len() != group[0].columns.len()
                    || next
                        .columns
                        .iter()
                        .zip(&group[0].columns)
                        .any(|(a, b)| a.0 != b.0)
                {
                    break;
                }
                group.push(
                    rows.next()
                        .ok_or_else(|| ConnectError::new("row vanished"))?,
                );
            }
            let upsert = config.insert_mode == InsertMode::Upsert;
            if upsert {
                dedup_keys(&mut group);
            }
            let table = group[0].table.clone();
            for chunk in group.chunks(per_statement) {
                let sql = dialect.insert(&table, &spelled, chunk.len(), upsert.then_some(&pk[..]));
                let mut params = Vec::with_capacity(chunk.len() * spelled.len());
                for r in chunk {
                    params.extend(r.values.iter().cloned());
                }
                statements.push((sql, params));
            }
        }
        let what = format!("writing to table {}", tables_touched.join(", "));
        let written = self.db()?.write(&what, statements);
        if let Err(e) = &written
            && !e.is_retriable()
        {
            // A statement that failed for a reason other than the network may come from a
            // table changed behind our back: read its columns again next time.
            self.tables.clear();
        }
        written?;
        Ok(())
    }
}

/// Keep the last row of each key, in the order of the last rows.
fn dedup_keys(group: &mut Vec<&Row>) {
    let n = group[0].pk.len();
    if n == 0 {
        return;
    }
    let mut seen = HashSet::new();
    let mut keep = vec![false; group.len()];
    for (i, r) in group.iter().enumerate().rev() {
        keep[i] = seen.insert(format!("{:?}", &r.values[..n]));
    }
    let mut i = 0;
    group.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}

fn field_type(table: &str, name: &str, s: &Schema) -> Result<ColumnType> {
    ColumnType::of(s).ok_or_else(|| {
        ConnectError::new(format!(
            "field {name} for table {table} has schema type {}, which no column can hold; \
             flatten it (transforms=Flatten) or drop it (ReplaceField)",
            s.kind.json_name()
        ))
    })
}

/// A record as a row, or `None` for a tombstone that is not a delete.
fn to_row(config: &JdbcSinkConfig, r: SinkRecord) -> Result<Option<Row>> {
    let origin = format!("{}-{}@{}", r.topic, r.partition, r.offset);
    let table = table_for(&config.table_name_format, &r.topic);
    let mut columns = Vec::new();
    let mut values = Vec::new();
    let mut pk = Vec::new();
    let tombstone = matches!(r.value.value, Value::Null);
    if tombstone && !config.delete_enabled {
        return Ok(None);
    }
    let push = |columns: &mut Vec<(String, ColumnType, bool)>,
                values: &mut Vec<Param>,
                name: String,
                s: &Schema,
                v: Value|
     -> Result<()> {
        let t = field_type(&table, &name, s)?;
        values.push(
            to_param(t, v)
                .map_err(|e| ConnectError::new(format!("field {name} of record {origin}: {e}")))?,
        );
        columns.push((name, t, s.optional));
        Ok(())
    };
    let (value_schema, value_fields) = match (r.value.schema, r.value.value) {
        (_, Value::Null) => (None, Vec::new()),
        (Some(s), Value::Struct(fields)) if s.kind == SchemaType::Struct => (Some(s), fields),
        (schema, _) => {
            return Err(ConnectError::new(format!(
                "record {origin} for table {table} has a {} value; JdbcSink needs a struct with a \
                 schema (JsonConverter with schemas.enable=true, or Avro)",
                schema.map_or("schemaless".to_owned(), |s| s.kind.json_name().to_owned())
            )));
        }
    };
    match config.pk_mode {
        PkMode::None => {}
        PkMode::Kafka => {
            let names: Vec<String> = if config.pk_fields.len() == 3 {
                config.pk_fields.clone()
            } else {
                vec![
                    "__connect_topic".into(),
                    "__connect_partition".into(),
                    "__connect_offset".into(),
                ]
            };
            columns.push((names[0].clone(), ColumnType::String, false));
            values.push(Param::Text(r.topic.clone()));
            columns.push((names[1].clone(), ColumnType::Int32, false));
            values.push(Param::I32(r.partition));
            columns.push((names[2].clone(), ColumnType::Int64, false));
            values.push(Param::I64(r.offset));
            pk = names;
        }
        PkMode::RecordKey => {
            let Data { schema, value } = r.key;
            match (schema, value) {
                (_, Value::Null) => {
                    return Err(ConnectError::new(format!(
                        "record {origin} for table {table} has no key, but `pk.mode=record_key`"
                    )));
                }
                (Some(s), Value::Struct(fields)) if s.kind == SchemaType::Struct => {
                    for (f, v) in s.fields.iter().zip(fields) {
                        if config.pk_fields.is_empty() || config.pk_fields.contains(&f.name) {
                            pk.push(f.name.clone());
                            push(&mut columns, &mut values, f.name.clone(), &f.schema, v)?;
                        }
                    }
                    for want in &config.pk_fields {
                        if !pk.contains(want) {
                            return Err(ConnectError::new(format!(
                                "the key of record {origin} has no field {want} (named in `pk.fields`)"
                            )));
                        }
                    }
                }
                (Some(s), v) => {
                    let name = match config.pk_fields.as_slice() {
                        [] => "__connect_key".to_owned(),
                        [one] => one.clone(),
                        _ => {
                            return Err(ConnectError::new(format!(
                                "the key of record {origin} is a primitive: `pk.fields` must name one column"
                            )));
                        }
                    };
                    pk.push(name.clone());
                    push(&mut columns, &mut values, name, &s, v)?;
                }
                (None, _) => {
                    return Err(ConnectError::new(format!(
                        "the key of record {origin} has no schema; `pk.mode=record_key` needs one \
                         (key.converter with schemas, or StringConverter)"
                    )));
                }
            }
        }
        PkMode::RecordValue => {}
    }
    if let Some(s) = value_schema {
        if config.pk_mode == PkMode::RecordValue {
            // Key columns first, in pk.fields order (all fields when it is empty).
            let names: Vec<String> = if config.pk_fields.is_empty() {
                s.fields.iter().map(|f| f.name.clone()).collect()
            } else {
                config.pk_fields.clone()
            };
            let mut fields: Vec<Option<Value>> = value_fields.into_iter().map(Some).collect();
            for n in &names {
                let i = s.field_index(n).ok_or_else(|| {
                    ConnectError::new(format!(
                        "the value of record {origin} has no field {n} (named in `pk.fields`)"
                    ))
                })?;
                let v = fields[i].take().unwrap_or(Value::Null);
                push(&mut columns, &mut values, n.clone(), &s.fields[i].schema, v)?;
            }
            pk = names;
            for (f, v) in s.fields.iter().zip(fields) {
                if let Some(v) = v {
                    push(&mut columns, &mut values, f.name.clone(), &f.schema, v)?;
                }
            }
        } else {
            for (f, v) in s.fields.iter().zip(value_fields) {
                if pk.contains(&f.name) {
                    continue;
                }
                push(&mut columns, &mut values, f.name.clone(), &f.schema, v)?;
            }
        }
    }
    if columns.is_empty() {
        return Err(ConnectError::new(format!(
            "record {origin} for table {table} has no fields to write"
        )));
    }
    Ok(Some(Row {
        table,
        delete: tombstone,
        columns,
        pk,
        values,
        origin,
    }))
}

/// A field's value as a bound parameter of its column type.
pub fn to_param(t: ColumnType, v: Value) -> std::result::Result<Param, String> {
    use ColumnType as C;
    let wrong = |v: &Value| format!("a {} value where the schema says {t:?}", v.type_name());
    Ok(match (t, v) {
        (t, Value::Null) => Param::Null(t),
        (C::Boolean, Value::Boolean(b)) => Param::Bool(b),
        (C::Int8, Value::Int8(n)) => Param::I8(n),
        (C::Int16, Value::Int16(n)) => Param::I16(n),
        (C::Int32, Value::Int32(n)) => Param::I32(n),
        (C::Int64, Value::Int64(n)) => Param::I64(n),
        (C::Float32, Value::Float32(n)) => Param::F32(n),
        (C::Float64, Value::Float64(n)) => Param::F64(n),
        (C::String, Value::String(s)) => Param::Text(s),
        (C::Bytes, Value::Bytes(b)) => Param::Bytes(b),
        (C::Decimal(scale), Value::Bytes(b)) => Param::Decimal(
            logical::decimal_unscaled(&b).ok_or("a decimal wider than 128 bits")?,
            scale,
        ),
        (C::Date, Value::Int32(d)) => Param::Date(
            NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|e| e.checked_add_signed(chrono::Duration::days(i64::from(d))))
                .ok_or("a date out of range")?,
        ),
        (C::Time, Value::Int32(ms)) => Param::Time(
            NaiveTime::from_num_seconds_from_midnight_opt(
                (ms / 1000) as u32,
                (ms % 1000) as u32 * 1_000_000,
            )
            .ok_or("a time of day out of range")?,
        ),
        (C::Timestamp, Value::Int64(ms)) => Param::Timestamp(
            DateTime::<Utc>::from_timestamp_millis(ms)
                .ok_or("a timestamp out of range")?
                .naive_utc(),
        ),
        (_, v) => return Err(wrong(&v)),
    })
}

/// The table name a topic goes to (for tests and docs).
pub fn table_for(format: &str, topic: &str) -> String {
    format.replace("${topic}", topic)
}

#[cfg(test)]
mod tests {
    use tributary_plugin_sdk::testing::config;
    use tributary_plugin_sdk::{Field, StructBuilder};

    use super::*;

    fn sink_config(pairs: &[(&str, &str)]) -> JdbcSinkConfig {
        let mut all = vec![("connection.url", "sqlite::memory:")];
        all.extend_from_slice(pairs);
        JdbcSinkConfig::from_config(&cfg::sink_def().parse(&config(&all)).unwrap()).unwrap()
    }

    fn value() -> Data {
        let s = Schema::structure()
            .field("id", Schema::int64())
            .field("name", Schema::string().optional())
            .field("price", logical::decimal_schema(2).optional());
        StructBuilder::new(s)
            .unwrap()
            .put("id", Value::Int64(7))
            .unwrap()
            .put("name", Value::String("x".into()))
            .unwrap()
            .put("price", logical::decimal_value(1234))
            .unwrap()
            .build()
            .unwrap()
    }

    #[test]
    fn rows_per_pk_mode() {
        let r = SinkRecord::new("orders", 1, 42, value());
        let row = to_row(
            &sink_config(&[("pk.mode", "record_value"), ("pk.fields", "id")]),
            r.clone(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(row.pk, ["id"]);
        assert_eq!(
            row.columns.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
            ["id", "name", "price"]
        );
        assert_eq!(row.values[2], Param::Decimal(1234, 2));

        let row = to_row(&sink_config(&[("pk.mode", "kafka")]), r.clone())
            .unwrap()
            .unwrap();
        assert_eq!(
            row.pk,
            ["__connect_topic", "__connect_partition", "__connect_offset"]
        );
        assert_eq!(
            row.values[..3],
            [Param::Text("orders".into()), Param::I32(1), Param::I64(42)]
        );

        let keyed = r
            .clone()
            .with_key(Data::with_schema(Schema::int64(), Value::Int64(7)).unwrap());
        let row = to_row(
            &sink_config(&[("pk.mode", "record_key"), ("pk.fields", "id")]),
            keyed.clone(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(row.pk, ["id"]);
        assert_eq!(row.columns.len(), 3, "the value's id is the key column");

        let mut tomb = keyed;
        tomb.value = Data::null();
        let cfg = sink_config(&[
            ("pk.mode", "record_key"),
            ("pk.fields", "id"),
            ("delete.enabled", "true"),
        ]);
        assert!(to_row(&cfg, tomb.clone()).unwrap().unwrap().delete);
        assert!(
            to_row(
                &sink_config(&[("pk.mode", "record_key"), ("pk.fields", "id")]),
                tomb
            )
            .unwrap()
            .is_none()
        );
    }

    #[test]
    fn bad_records_and_configs_say_what() {
        let r = SinkRecord::new("t", 0, 5, Data::string("plain"));
        let err = to_row(&sink_config(&[]), r).unwrap_err().to_string();
        assert!(err.contains("t-0@5") && err.contains("struct"), "{err}");
        let nested = Schema::structure().field("a", Schema::array(Schema::int32()));
        let _ = Field {
            name: "x".into(),
            schema: Schema::int8(),
        };
        let d = Data::with_schema(nested, Value::Struct(vec![Value::Array(vec![])])).unwrap();
        let err = to_row(&sink_config(&[]), SinkRecord::new("t", 0, 6, d))
            .unwrap_err()
            .to_string();
        assert!(err.contains("field a"), "{err}");
        let bad = cfg::sink_def()
            .parse(&config(&[
                ("connection.url", "sqlite::memory:"),
                ("insert.mode", "upsert"),
            ]))
            .unwrap();
        assert!(
            JdbcSinkConfig::from_config(&bad)
                .unwrap_err()
                .to_string()
                .contains("pk.mode")
        );
        assert_eq!(table_for("kafka_${topic}", "x"), "kafka_x");
    }
}
