//! The archive's storage layer: the few operations the merge rules and the queries need, over
//! either back-end. SQL is written once, in the dialect both understand (`?N` placeholders,
//! `ON CONFLICT … DO …`, `excluded.`), and rewritten to `$N` for PostgreSQL. Values cross the
//! boundary as [`Val`] (NULL, 64-bit integer, text, bytes), the types both stores share.
//!
//! - Embedded: the archive's own SQLCipher database (`archive.db`).
//! - PostgreSQL: the `postgres` crate (synchronous; it runs a small tokio runtime inside, none
//!   of which is exposed). Connections use `NoTls`: the server is expected on loopback or on a
//!   network the coordinator trusts (or behind an SSH tunnel).

use std::cell::RefMut;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use bytes::BytesMut;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
use testimony_core::Error as CoreError;

use crate::error::{Error, Result};

/// A parameter or a column value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(v.to_string())
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Self {
        Val::Text(v.clone())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(v)
    }
}
impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Self {
        v.map_or(Val::Null, Val::from)
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        v.map_or(Val::Null, Val::Text)
    }
}
impl From<Vec<u8>> for Val {
    fn from(v: Vec<u8>) -> Self {
        Val::Blob(v)
    }
}

/// `vals![a, b, c]`: a parameter list.
macro_rules! vals {
    ($($v:expr),* $(,)?) => { &[$($crate::store::Val::from($v)),*][..] };
}
pub(crate) use vals;

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Val::Null => ToSqlOutput::Owned(SqlValue::Null),
            Val::Int(i) => ToSqlOutput::Owned(SqlValue::Integer(*i)),
            Val::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Val::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

impl ToSql for Val {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Val::Null => Ok(IsNull::Yes),
            Val::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                _ => Err(format!("an integer cannot be sent as {ty}").into()),
            },
            Val::Text(s) => s.as_str().to_sql(ty, out),
            Val::Blob(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in `to_sql`, which knows which variant it holds.
        true
    }

    to_sql_checked!();
}

/// One result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row(pub Vec<Val>);

fn column_type(i: usize) -> Error {
    Error::Core(CoreError::Corrupt(format!(
        "unexpected value type in result column {i}"
    )))
}

impl Row {
    pub fn text(&self, i: usize) -> Result<String> {
        match self.0.get(i) {
            Some(Val::Text(s)) => Ok(s.clone()),
            _ => Err(column_type(i)),
        }
    }
    pub fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.0.get(i) {
            Some(Val::Null) => Ok(None),
            _ => self.text(i).map(Some),
        }
    }
    pub fn int(&self, i: usize) -> Result<i64> {
        match self.0.get(i) {
            Some(Val::Int(v)) => Ok(*v),
            _ => Err(column_type(i)),
        }
    }
    pub fn blob(&self, i: usize) -> Result<Vec<u8>> {
        match self.0.get(i) {
            Some(Val::Blob(b)) => Ok(b.clone()),
            _ => Err(column_type(i)),
        }
    }
}

/// A PostgreSQL error as the user may see it: the server's message and SQLSTATE, never its
/// DETAIL (which can quote a whole row).
pub(crate) fn pg_err(e: postgres::Error) -> Error {
    Error::Server(pg_message(&e))
}

fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => {
            // "error connecting to server: Connection refused (os error 111)"
            let mut m = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                m.push_str(&format!(": {s}"));
                source = s.source();
            }
            m
        }
    }
}

/// Rewrites `?N` placeholders to PostgreSQL's `$N`, leaving string literals alone.
pub(crate) fn to_dollar(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut in_str = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_str = !in_str;
                out.push(c);
            }
            '?' if !in_str && chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

/// Parses a libpq connection string (`host=… port=… user=… dbname=…` or
/// `postgresql://user@host:port/dbname`).
pub(crate) fn pg_config(url: &str) -> Result<postgres::Config> {
    // The parser's message never repeats the string (which may hold a password).
    let mut config = postgres::Config::from_str(url).map_err(|e| {
        Error::Core(CoreError::invalid(format!(
            "the PostgreSQL connection string cannot be read: {e}"
        )))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(15));
    }
    if config.get_application_name().is_none() {
        config.application_name("testimony-archive");
    }
    Ok(config)
}

/// Where a PostgreSQL archive lives, without the password: kept in the archive's local
/// database and used in messages.
pub(crate) fn describe(config: &postgres::Config) -> String {
    let mut parts = Vec::new();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            postgres::config::Host::Tcp(s) => s.clone(),
            #[cfg(unix)]
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .collect();
    if !hosts.is_empty() {
        parts.push(format!("host={}", hosts.join(",")));
    }
    if !config.get_ports().is_empty() {
        parts.push(format!(
            "port={}",
            config
                .get_ports()
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    if let Some(u) = config.get_user() {
        parts.push(format!("user={u}"));
    }
    parts.push(format!(
        "dbname={}",
        config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres")
    ));
    parts.join(" ")
}

/// An open PostgreSQL connection with its prepared statements.
pub(crate) struct PgStore {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
    /// Non-secret description (`host=… port=… user=… dbname=…`).
    pub target: String,
}

/// The key of the session-level advisory lock an open archive holds on its database, so that
/// two copies of an archive directory cannot write to one database at the same time.
const ADVISORY_LOCK: i64 = 0x7465_7374_696d_6f6e; // "testimon"

impl PgStore {
    pub fn connect(url: &str) -> Result<PgStore> {
        let config = pg_config(url)?;
        let target = describe(&config);
        let client = config.connect(postgres::NoTls).map_err(|e| {
            Error::Server(format!(
                "cannot connect to PostgreSQL ({target}): {}",
                pg_message(&e)
            ))
        })?;
        Ok(PgStore {
            client,
            statements: HashMap::new(),
            target,
        })
    }

    /// Takes the archive's advisory lock; `false` when another session holds it.
    pub fn try_lock(&mut self) -> Result<bool> {
        let row = self
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&ADVISORY_LOCK])
            .map_err(pg_err)?;
        Ok(row.get::<_, bool>(0))
    }

    pub fn batch(&mut self, sql: &str) -> Result<()> {
        self.client.batch_execute(sql).map_err(pg_err)
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(&to_dollar(sql)).map_err(pg_err)?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    pub fn execute(&mut self, sql: &str, params: &[Val]) -> Result<u64> {
        let st = self.statement(sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        self.client.execute(&st, &refs).map_err(pg_err)
    }

    pub fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>> {
        let st = self.statement(sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        let rows = self.client.query(&st, &refs).map_err(pg_err)?;
        rows.iter().map(pg_row).collect()
    }
}

fn pg_row(r: &postgres::Row) -> Result<Row> {
    let mut out = Vec::with_capacity(r.len());
    for (i, c) in r.columns().iter().enumerate() {
        let bad = |_| column_type(i);
        let v = match *c.type_() {
            Type::INT8 => r.try_get::<_, Option<i64>>(i).map_err(bad)?.map(Val::Int),
            Type::INT4 => r
                .try_get::<_, Option<i32>>(i)
                .map_err(bad)?
                .map(|v| Val::Int(v.into())),
            Type::INT2 => r
                .try_get::<_, Option<i16>>(i)
                .map_err(bad)?
                .map(|v| Val::Int(v.into())),
            Type::BOOL => r
                .try_get::<_, Option<bool>>(i)
                .map_err(bad)?
                .map(|v| Val::Int(v.into())),
            Type::BYTEA => r
                .try_get::<_, Option<Vec<u8>>>(i)
                .map_err(bad)?
                .map(Val::Blob),
            _ => r
                .try_get::<_, Option<String>>(i)
                .map_err(bad)?
                .map(Val::Text),
        };
        out.push(v.unwrap_or(Val::Null));
    }
    Ok(Row(out))
}

fn sqlite_row(r: &rusqlite::Row, n: usize) -> rusqlite::Result<Row> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(match r.get_ref(i)? {
            ValueRef::Null => Val::Null,
            ValueRef::Integer(v) => Val::Int(v),
            ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Val::Blob(b.to_vec()),
            ValueRef::Real(_) => {
                return Err(rusqlite::Error::InvalidColumnType(
                    i,
                    String::new(),
                    rusqlite::types::Type::Real,
                ));
            }
        });
    }
    Ok(Row(out))
}

/// The store the archive's records live in, borrowed for a while.
pub(crate) enum Db<'a> {
    Embedded(&'a Connection),
    Postgres(RefMut<'a, PgStore>),
}

impl Db<'_> {
    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    pub fn execute(&mut self, sql: &str, params: &[Val]) -> Result<u64> {
        match self {
            Db::Embedded(c) => {
                Ok(c.prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(params.iter()))? as u64)
            }
            Db::Postgres(p) => p.execute(sql, params),
        }
    }

    pub fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>> {
        match self {
            Db::Embedded(c) => {
                let mut st = c.prepare_cached(sql)?;
                let n = st.column_count();
                let rows = st.query_map(rusqlite::params_from_iter(params.iter()), |r| {
                    sqlite_row(r, n)
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            }
            Db::Postgres(p) => p.query(sql, params),
        }
    }

    /// The first row, if any.
    pub fn query_opt(&mut self, sql: &str, params: &[Val]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first column of the first row, as text, if there is a row.
    pub fn text_opt(&mut self, sql: &str, params: &[Val]) -> Result<Option<String>> {
        self.query_opt(sql, params)?.map(|r| r.text(0)).transpose()
    }

    /// Starts the one transaction an import or a resolution runs in. SQLite takes the write
    /// lock at once (IMMEDIATE); PostgreSQL runs it at the default isolation level, the
    /// advisory lock keeping other archive processes out.
    pub fn begin(&mut self) -> Result<()> {
        match self {
            Db::Embedded(c) => Ok(c.execute_batch("BEGIN IMMEDIATE")?),
            Db::Postgres(p) => p.batch("BEGIN"),
        }
    }

    pub fn commit(&mut self) -> Result<()> {
        match self {
            Db::Embedded(c) => Ok(c.execute_batch("COMMIT")?),
            Db::Postgres(p) => p.batch("COMMIT"),
        }
    }

    /// Best effort: an error here leaves nothing committed either way.
    pub fn rollback(&mut self) {
        let _ = match self {
            Db::Embedded(c) => c.execute_batch("ROLLBACK").map_err(Error::from),
            Db::Postgres(p) => p.batch("ROLLBACK"),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten_outside_strings_only() {
        assert_eq!(
            to_dollar("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND d = $12"
        );
        assert_eq!(
            to_dollar("x LIKE ?1 ESCAPE '\\' AND y = ?2"),
            "x LIKE $1 ESCAPE '\\' AND y = $2"
        );
        assert_eq!(to_dollar("a = '' AND b = ?3"), "a = '' AND b = $3");
    }

    #[test]
    fn the_description_never_holds_the_password() {
        for url in [
            "host=db.example port=5433 user=arch password=hunter2 dbname=testimony",
            "postgresql://arch:hunter2@db.example:5433/testimony",
        ] {
            let d = describe(&pg_config(url).unwrap());
            assert_eq!(d, "host=db.example port=5433 user=arch dbname=testimony");
            assert!(!d.contains("hunter2"));
        }
    }
}
