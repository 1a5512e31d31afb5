//! The three SQL dialects: reading `connection.url`, quoting identifiers, and the SQL text
//! each statement needs. Pure functions, no connection: everything a config or a record
//! names (tables, columns) goes through [`Dialect::quote`]; every value is a bound
//! parameter, never text in the statement.

use tributary_plugin_sdk::{Schema, SchemaType, logical};

/// A database family, chosen from the URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

/// A `connection.url` read into the dialect and the sqlx URL that reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub dialect: Dialect,
    pub url: String,
}

/// Reads JDBC URLs (`jdbc:postgresql://h:5432/db`, `jdbc:mysql://...`,
/// `jdbc:mariadb://...`, `jdbc:sqlite:path`) and sqlx URLs (`postgres://`, `postgresql://`,
/// `mysql://`, `mariadb://`, `sqlite://`, `sqlite:`). `user` and `password`, when given, are
/// put in the URL (replacing any there), percent-encoded.
pub fn parse_url(raw: &str, user: Option<&str>, password: Option<&str>) -> Result<Target, String> {
    let raw = raw.trim();
    let rest = raw.strip_prefix("jdbc:").unwrap_or(raw);
    let (dialect, body) = if let Some(b) = strip_any(rest, &["postgresql://", "postgres://"]) {
        (Dialect::Postgres, b)
    } else if let Some(b) = strip_any(rest, &["mysql://", "mariadb://"]) {
        (Dialect::MySql, b)
    } else if let Some(b) = strip_any(rest, &["sqlite://", "sqlite:"]) {
        let mut url = format!("sqlite://{b}");
        if !b.contains('?') && !b.contains(":memory:") {
            url.push_str("?mode=rwc");
        }
        return Ok(Target {
            dialect: Dialect::Sqlite,
            url,
        });
    } else {
        return Err(format!(
            "`connection.url` {raw:?} is neither a JDBC URL (jdbc:postgresql://, jdbc:mysql://, \
             jdbc:mariadb://, jdbc:sqlite:) nor an sqlx URL (postgres://, mysql://, sqlite://)"
        ));
    };
    // JDBC carries credentials as query parameters (?user=..&password=..); sqlx wants
    // them before the host. Other parameters pass through.
    let (mut hostpart, query) = match body.split_once('?') {
        Some((h, q)) => (h.to_owned(), Some(q)),
        None => (body.to_owned(), None),
    };
    let mut url_user = None;
    let mut url_password = None;
    let mut params = Vec::new();
    for p in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
    {
        match p.split_once('=') {
            Some(("user", v)) => url_user = Some(v.to_owned()),
            Some(("password", v)) => url_password = Some(v.to_owned()),
            _ => params.push(p.to_owned()),
        }
    }
    if let Some((creds, host)) = hostpart.clone().rsplit_once('@') {
        hostpart = host.to_owned();
        match creds.split_once(':') {
            Some((u, p)) => {
                url_user.get_or_insert(u.to_owned());
                url_password.get_or_insert(p.to_owned());
            }
            None => {
                url_user.get_or_insert(creds.to_owned());
            }
        }
    }
    if hostpart.is_empty() || hostpart.starts_with('/') {
        return Err(format!("`connection.url` {raw:?} names no host"));
    }
    let user = user.map(encode).or(url_user);
    let password = password.map(encode).or(url_password);
    let scheme = match dialect {
        Dialect::Postgres => "postgres",
        _ => "mysql",
    };
    let mut url = format!("{scheme}://");
    if let Some(u) = user {
        url.push_str(&u);
        if let Some(p) = password {
            url.push(':');
            url.push_str(&p);
        }
        url.push('@');
    }
    url.push_str(&hostpart);
    if !params.is_empty() {
        url.push('?');
        url.push_str(&params.join("&"));
    }
    Ok(Target { dialect, url })
}

fn strip_any<'a>(s: &'a str, prefixes: &[&str]) -> Option<&'a str> {
    prefixes.iter().find_map(|p| s.strip_prefix(p))
}

/// Percent-encode a URL user-info part.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What an auto-created column holds, from a field's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    String,
    Bytes,
    Decimal(i32),
    Date,
    Time,
    Timestamp,
}

impl ColumnType {
    /// The column type for a field, or `None` for a schema a column cannot hold
    /// (arrays, maps, structs).
    pub fn of(schema: &Schema) -> Option<ColumnType> {
        match schema.name.as_deref() {
            Some(logical::DECIMAL) => {
                return Some(ColumnType::Decimal(
                    logical::decimal_scale(schema).unwrap_or(0),
                ));
            }
            Some(logical::DATE) => return Some(ColumnType::Date),
            Some(logical::TIME) => return Some(ColumnType::Time),
            Some(logical::TIMESTAMP) => return Some(ColumnType::Timestamp),
            _ => {}
        }
        Some(match schema.kind {
            SchemaType::Boolean => ColumnType::Boolean,
            SchemaType::Int8 => ColumnType::Int8,
            SchemaType::Int16 => ColumnType::Int16,
            SchemaType::Int32 => ColumnType::Int32,
            SchemaType::Int64 => ColumnType::Int64,
            SchemaType::Float32 => ColumnType::Float32,
            SchemaType::Float64 => ColumnType::Float64,
            SchemaType::String => ColumnType::String,
            SchemaType::Bytes => ColumnType::Bytes,
            SchemaType::Array | SchemaType::Map | SchemaType::Struct => return None,
        })
    }
}

impl Dialect {
    /// An identifier quoted for this dialect, embedded quotes doubled. A dotted name
    /// (`schema.table`) is quoted part by part.
    pub fn quote(self, name: &str) -> String {
        let q = match self {
            Dialect::MySql => '`',
            Dialect::Postgres | Dialect::Sqlite => '"',
        };
        let mut out = String::with_capacity(name.len() + 2);
        for (i, part) in name.split('.').enumerate() {
            if i > 0 {
                out.push('.');
            }
            out.push(q);
            for c in part.chars() {
                if c == q {
                    out.push(q);
                }
                out.push(c);
            }
            out.push(q);
        }
        out
    }

    /// A quoted column name (never split at dots: a column is one identifier).
    pub fn quote_column(self, name: &str) -> String {
        let q = match self {
            Dialect::MySql => '`',
            Dialect::Postgres | Dialect::Sqlite => '"',
        };
        let mut out = String::with_capacity(name.len() + 2);
        out.push(q);
        for c in name.chars() {
            if c == q {
                out.push(q);
            }
            out.push(c);
        }
        out.push(q);
        out
    }

    /// The `n`th (1-based) bind placeholder.
    pub fn placeholder(self, n: usize, out: &mut String) {
        match self {
            Dialect::Postgres => {
                out.push('$');
                out.push_str(&n.to_string());
            }
            Dialect::MySql | Dialect::Sqlite => out.push('?'),
        }
    }

    /// The most bind parameters one statement may carry.
    pub fn max_params(self) -> usize {
        match self {
            Dialect::Postgres | Dialect::MySql => 65_535,
            Dialect::Sqlite => 32_766,
        }
    }

    /// The SQL type of an auto-created column; key columns of MySQL need a bounded length.
    pub fn sql_type(self, t: ColumnType, key: bool) -> String {
        use ColumnType as C;
        match (self, t) {
            (Dialect::Postgres, C::Boolean) => "BOOLEAN".into(),
            (Dialect::Postgres, C::Int8 | C::Int16) => "SMALLINT".into(),
            (Dialect::Postgres, C::Int32) => "INTEGER".into(),
            (Dialect::Postgres, C::Int64) => "BIGINT".into(),
            (Dialect::Postgres, C::Float32) => "REAL".into(),
            (Dialect::Postgres, C::Float64) => "DOUBLE PRECISION".into(),
            (Dialect::Postgres, C::String) => "TEXT".into(),
            (Dialect::Postgres, C::Bytes) => "BYTEA".into(),
            (Dialect::Postgres, C::Decimal(_)) => "NUMERIC".into(),
            (Dialect::Postgres, C::Date) => "DATE".into(),
            (Dialect::Postgres, C::Time) => "TIME".into(),
            (Dialect::Postgres, C::Timestamp) => "TIMESTAMP".into(),
            (Dialect::MySql, C::Boolean) => "TINYINT(1)".into(),
            (Dialect::MySql, C::Int8) => "TINYINT".into(),
            (Dialect::MySql, C::Int16) => "SMALLINT".into(),
            (Dialect::MySql, C::Int32) => "INT".into(),
            (Dialect::MySql, C::Int64) => "BIGINT".into(),
            (Dialect::MySql, C::Float32) => "FLOAT".into(),
            (Dialect::MySql, C::Float64) => "DOUBLE".into(),
            (Dialect::MySql, C::String) if key => "VARCHAR(256)".into(),
            (Dialect::MySql, C::String) => "TEXT".into(),
            (Dialect::MySql, C::Bytes) if key => "VARBINARY(1024)".into(),
            (Dialect::MySql, C::Bytes) => "BLOB".into(),
            (Dialect::MySql, C::Decimal(s)) => format!("DECIMAL(65,{})", s.clamp(0, 30)),
            (Dialect::MySql, C::Date) => "DATE".into(),
            (Dialect::MySql, C::Time) => "TIME(3)".into(),
            (Dialect::MySql, C::Timestamp) => "DATETIME(3)".into(),
            (Dialect::Sqlite, C::Boolean) => "BOOLEAN".into(),
            (Dialect::Sqlite, C::Int8 | C::Int16 | C::Int32 | C::Int64) => "INTEGER".into(),
            (Dialect::Sqlite, C::Float32 | C::Float64) => "REAL".into(),
            (Dialect::Sqlite, C::String) => "TEXT".into(),
            (Dialect::Sqlite, C::Bytes) => "BLOB".into(),
            (Dialect::Sqlite, C::Decimal(_)) => "NUMERIC".into(),
            (Dialect::Sqlite, C::Date) => "DATE".into(),
            (Dialect::Sqlite, C::Time) => "TIME".into(),
            (Dialect::Sqlite, C::Timestamp) => "DATETIME".into(),
        }
    }

    /// `CREATE TABLE` for the given columns (name, type, nullable) and primary key.
    pub fn create_table(
        self,
        table: &str,
        columns: &[(String, ColumnType, bool)],
        pk: &[String],
    ) -> String {
        let mut sql = format!("CREATE TABLE {} (", self.quote(table));
        for (i, (name, t, nullable)) in columns.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            let key = pk.contains(name);
            sql.push_str(&self.quote_column(name));
            sql.push(' ');
            sql.push_str(&self.sql_type(*t, key));
            if !nullable || key {
                sql.push_str(" NOT NULL");
            }
        }
        if !pk.is_empty() {
            sql.push_str(", PRIMARY KEY (");
            sql.push_str(&self.column_list(pk));
            sql.push(')');
        }
        sql.push(')');
        sql
    }

    /// `ALTER TABLE ... ADD` of one nullable column.
    pub fn add_column(self, table: &str, column: &str, t: ColumnType) -> String {
        format!(
            "ALTER TABLE {} ADD {} {} NULL",
            self.quote(table),
            self.quote_column(column),
            self.sql_type(t, false)
        )
    }

    fn column_list(self, columns: &[String]) -> String {
        columns
            .iter()
            .map(|c| self.quote_column(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A multi-row `INSERT` (or upsert when `pk` is given with `upsert`) of `rows` rows
    /// of `columns`, placeholders numbered from 1 row by row.
    pub fn insert(
        self,
        table: &str,
        columns: &[String],
        rows: usize,
        upsert: Option<&[String]>,
    ) -> String {
        let mut sql = String::with_capacity(64 + rows * columns.len() * 5);
        let verb = match (self, upsert) {
            // MySQL's upsert of a row whose only columns are its key: nothing to update,
            // so the duplicate is ignored.
            (Dialect::MySql, Some(pk)) if pk.len() == columns.len() => "INSERT IGNORE",
            _ => "INSERT",
        };
        sql.push_str(verb);
        sql.push_str(" INTO ");
        sql.push_str(&self.quote(table));
        sql.push_str(" (");
        sql.push_str(&self.column_list(columns));
        sql.push_str(") VALUES ");
        let mut n = 1;
        for r in 0..rows {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..columns.len() {
                if c > 0 {
                    sql.push_str(", ");
                }
                self.placeholder(n, &mut sql);
                n += 1;
            }
            sql.push(')');
        }
        if let Some(pk) = upsert {
            let rest: Vec<&String> = columns.iter().filter(|c| !pk.contains(c)).collect();
            match self {
                Dialect::Postgres | Dialect::Sqlite => {
                    sql.push_str(" ON CONFLICT (");
                    sql.push_str(&self.column_list(pk));
                    sql.push(')');
                    if rest.is_empty() {
                        sql.push_str(" DO NOTHING");
                    } else {
                        sql.push_str(" DO UPDATE SET ");
                        for (i, c) in rest.iter().enumerate() {
                            if i > 0 {
                                sql.push_str(", ");
                            }
                            let q = self.quote_column(c);
                            sql.push_str(&format!("{q} = EXCLUDED.{q}"));
                        }
                    }
                }
                Dialect::MySql => {
                    if !rest.is_empty() {
                        sql.push_str(" ON DUPLICATE KEY UPDATE ");
                        for (i, c) in rest.iter().enumerate() {
                            if i > 0 {
                                sql.push_str(", ");
                            }
                            let q = self.quote_column(c);
                            sql.push_str(&format!("{q} = VALUES({q})"));
                        }
                    }
                }
            }
        }
        sql
    }

    /// `UPDATE table SET non-key columns WHERE key columns`, placeholders in that order.
    pub fn update(self, table: &str, columns: &[String], pk: &[String]) -> String {
        let mut sql = format!("UPDATE {} SET ", self.quote(table));
        let mut n = 1;
        let rest: Vec<&String> = columns.iter().filter(|c| !pk.contains(c)).collect();
        for (i, c) in rest.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&self.quote_column(c));
            sql.push_str(" = ");
            self.placeholder(n, &mut sql);
            n += 1;
        }
        self.where_key(pk, &mut n, &mut sql);
        sql
    }

    /// `DELETE FROM table WHERE key columns`.
    pub fn delete(self, table: &str, pk: &[String]) -> String {
        let mut sql = format!("DELETE FROM {}", self.quote(table));
        self.where_key(pk, &mut 1, &mut sql);
        sql
    }

    fn where_key(self, pk: &[String], n: &mut usize, sql: &mut String) {
        sql.push_str(" WHERE ");
        for (i, c) in pk.iter().enumerate() {
            if i > 0 {
                sql.push_str(" AND ");
            }
            sql.push_str(&self.quote_column(c));
            sql.push_str(" = ");
            self.placeholder(*n, sql);
            *n += 1;
        }
    }

    /// The SQL listing the tables of the connection's current schema or database.
    pub fn list_tables(self) -> &'static str {
        match self {
            Dialect::Postgres => {
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1"
            }
            Dialect::MySql => {
                "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY 1"
            }
            Dialect::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' ORDER BY 1"
            }
        }
    }

    /// The SQL listing a table's columns (name, declared numeric scale), the table name
    /// bound as the one parameter (SQLite: its `pragma_table_info`).
    pub fn describe_table(self) -> &'static str {
        match self {
            Dialect::Postgres => {
                "SELECT column_name::text, numeric_scale::int4 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
            }
            Dialect::MySql => {
                "SELECT CAST(column_name AS CHAR), CAST(numeric_scale AS SIGNED) \
                 FROM information_schema.columns WHERE table_schema = DATABASE() \
                 AND table_name = ? ORDER BY ordinal_position"
            }
            Dialect::Sqlite => "SELECT name, NULL FROM pragma_table_info(?)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_url(raw: &str, user: Option<&str>, pw: Option<&str>, dialect: Dialect, url: &str) {
        let t = parse_url(raw, user, pw).unwrap();
        assert_eq!((t.dialect, t.url.as_str()), (dialect, url), "{raw}");
    }

    #[test]
    fn urls_jdbc_and_sqlx() {
        use Dialect::*;
        check_url(
            "jdbc:postgresql://h:5432/db",
            Some("u"),
            Some("p w"),
            Postgres,
            "postgres://u:p%20w@h:5432/db",
        );
        check_url(
            "postgres://a:b@h/db",
            None,
            None,
            Postgres,
            "postgres://a:b@h/db",
        );
        check_url(
            "postgres://a:b@h/db",
            Some("c"),
            None,
            Postgres,
            "postgres://c:b@h/db",
        );
        check_url(
            "jdbc:mysql://h:3306/db?user=x&password=y&useSSL=false",
            None,
            None,
            MySql,
            "mysql://x:y@h:3306/db?useSSL=false",
        );
        check_url(
            "jdbc:mariadb://h/db",
            Some("u"),
            Some("p"),
            MySql,
            "mysql://u:p@h/db",
        );
        check_url("mysql://h/db", None, None, MySql, "mysql://h/db");
        check_url(
            "jdbc:sqlite:/tmp/x.db",
            None,
            None,
            Sqlite,
            "sqlite:///tmp/x.db?mode=rwc",
        );
        check_url(
            "sqlite://rel.db",
            None,
            None,
            Sqlite,
            "sqlite://rel.db?mode=rwc",
        );
        check_url("sqlite::memory:", None, None, Sqlite, "sqlite://:memory:");
        assert!(
            parse_url("jdbc:oracle:thin:@h:1521:x", None, None)
                .unwrap_err()
                .contains("connection.url")
        );
        assert!(parse_url("postgres:///db", None, None).is_err());
    }

    #[test]
    fn quoting_doubles_quotes_and_splits_schemas() {
        assert_eq!(Dialect::Postgres.quote("a\"b"), "\"a\"\"b\"");
        assert_eq!(Dialect::Postgres.quote("s.t"), "\"s\".\"t\"");
        assert_eq!(
            Dialect::MySql.quote("x`; DROP TABLE y; --"),
            "`x``; DROP TABLE y; --`"
        );
        assert_eq!(Dialect::Sqlite.quote_column("a.b"), "\"a.b\"");
    }

    #[test]
    fn upserts_per_dialect() {
        let cols = ["id".to_owned(), "name".to_owned()];
        let pk = ["id".to_owned()];
        assert_eq!(
            Dialect::Postgres.insert("t", &cols, 2, Some(&pk)),
            "INSERT INTO \"t\" (\"id\", \"name\") VALUES ($1, $2), ($3, $4) ON CONFLICT (\"id\") DO UPDATE SET \"name\" = EXCLUDED.\"name\""
        );
        assert_eq!(
            Dialect::MySql.insert("t", &cols, 1, Some(&pk)),
            "INSERT INTO `t` (`id`, `name`) VALUES (?, ?) ON DUPLICATE KEY UPDATE `name` = VALUES(`name`)"
        );
        assert_eq!(
            Dialect::Sqlite.insert("t", &pk, 1, Some(&pk)),
            "INSERT INTO \"t\" (\"id\") VALUES (?) ON CONFLICT (\"id\") DO NOTHING"
        );
        assert_eq!(
            Dialect::MySql.insert("t", &pk, 1, Some(&pk)),
            "INSERT IGNORE INTO `t` (`id`) VALUES (?)"
        );
        assert_eq!(
            Dialect::Postgres.insert("t", &cols, 1, None),
            "INSERT INTO \"t\" (\"id\", \"name\") VALUES ($1, $2)"
        );
    }

    #[test]
    fn update_delete_create_alter() {
        let cols = ["id".to_owned(), "name".to_owned(), "n".to_owned()];
        let pk = ["id".to_owned()];
        assert_eq!(
            Dialect::Postgres.update("t", &cols, &pk),
            "UPDATE \"t\" SET \"name\" = $1, \"n\" = $2 WHERE \"id\" = $3"
        );
        assert_eq!(
            Dialect::MySql.delete("t", &pk),
            "DELETE FROM `t` WHERE `id` = ?"
        );
        let columns = vec![
            ("id".to_owned(), ColumnType::String, false),
            ("v".to_owned(), ColumnType::Decimal(2), true),
        ];
        assert_eq!(
            Dialect::MySql.create_table("t", &columns, &pk),
            "CREATE TABLE `t` (`id` VARCHAR(256) NOT NULL, `v` DECIMAL(65,2), PRIMARY KEY (`id`))"
        );
        assert_eq!(
            Dialect::Postgres.add_column("t", "new", ColumnType::Timestamp),
            "ALTER TABLE \"t\" ADD \"new\" TIMESTAMP NULL"
        );
    }

    #[test]
    fn column_types_from_schemas() {
        assert_eq!(
            ColumnType::of(&logical::decimal_schema(3)),
            Some(ColumnType::Decimal(3))
        );
        assert_eq!(
            ColumnType::of(&logical::timestamp_schema()),
            Some(ColumnType::Timestamp)
        );
        assert_eq!(ColumnType::of(&Schema::int16()), Some(ColumnType::Int16));
        assert_eq!(ColumnType::of(&Schema::array(Schema::int8())), None);
    }
}
