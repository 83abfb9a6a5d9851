//! One connection to a store's database, SQLite or PostgreSQL, behind one small API: every
//! statement of the store is written once, in the SQL both engines run (`ON CONFLICT`,
//! `?N` placeholders, `GREATEST`, `DOUBLE PRECISION`), and [`dialect`] rewrites the few
//! spellings that differ.
//!
//! Every write goes through [`Db::write`]: one transaction that takes the store's write lock
//! first (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: the change counter's row, bumped so that
//! viewers notice the commit), so writers are serialised the same way on both engines.

use anyhow::{Context, Result};
use std::cell::Cell;

#[cfg(feature = "postgres")]
use super::postgres::Pg;

/// A parameter or column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    /// Bytes (a PNG): SQLite `BLOB`, PostgreSQL `BYTEA`.
    Blob(Vec<u8>),
    /// Arrays, bound only on PostgreSQL (`unnest($1::text[], …)` bulk writes).
    Texts(Vec<String>),
    Ints(Vec<i64>),
    Reals(Vec<f64>),
}

/// Something bound as a statement parameter.
pub trait Param {
    fn value(&self) -> Value;
}

impl Param for i64 {
    fn value(&self) -> Value {
        Value::Int(*self)
    }
}

impl Param for u32 {
    fn value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl Param for bool {
    fn value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl Param for f64 {
    fn value(&self) -> Value {
        Value::Real(*self)
    }
}

impl Param for str {
    fn value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl Param for String {
    fn value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl Param for [u8] {
    fn value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl Param for Vec<String> {
    fn value(&self) -> Value {
        Value::Texts(self.clone())
    }
}

impl Param for Vec<i64> {
    fn value(&self) -> Value {
        Value::Ints(self.clone())
    }
}

impl Param for Vec<f64> {
    fn value(&self) -> Value {
        Value::Reals(self.clone())
    }
}

impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> Value {
        (**self).value()
    }
}

impl<T: Param> Param for Option<T> {
    fn value(&self) -> Value {
        self.as_ref().map_or(Value::Null, Param::value)
    }
}

/// A column value read back as a Rust type.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Result<Self>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Result<i64> {
        match v {
            Value::Int(i) => Ok(*i),
            other => anyhow::bail!("expected an integer, found {other:?}"),
        }
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Result<f64> {
        match v {
            Value::Real(x) => Ok(*x),
            Value::Int(i) => Ok(*i as f64),
            other => anyhow::bail!("expected a number, found {other:?}"),
        }
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Result<String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            other => anyhow::bail!("expected text, found {other:?}"),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Result<Vec<u8>> {
        match v {
            Value::Blob(b) => Ok(b.clone()),
            other => anyhow::bail!("expected bytes, found {other:?}"),
        }
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Result<bool> {
        Ok(i64::from_value(v)? != 0)
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Result<Option<T>> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One result row.
#[derive(Debug, Clone)]
pub struct Row(pub(super) Vec<Value>);

impl Row {
    /// Column `i` as `T`.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T> {
        let v = self
            .0
            .get(i)
            .with_context(|| format!("no column {i} in a row of {}", self.0.len()))?;
        T::from_value(v).with_context(|| format!("column {i}"))
    }
}

/// Which SQL spelling a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Rewrites the store's SQL for `dialect`: `{now}` is the database's clock in seconds since
/// the Unix epoch (so heartbeats from every node are stamped by one clock), `{seq}` a run's
/// insertion order; on SQLite `GREATEST(` is its two-argument `MAX(`; on PostgreSQL `?N`
/// placeholders become `$N`. Quoted text is left alone.
pub fn dialect(sql: &str, d: Dialect) -> String {
    let sql = match d {
        Dialect::Sqlite => sql
            .replace("{now}", "((julianday('now') - 2440587.5) * 86400.0)")
            .replace("{seq}", "rowid")
            .replace("GREATEST(", "MAX("),
        Dialect::Postgres => sql
            .replace(
                "{now}",
                "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)",
            )
            .replace("{seq}", "seq"),
    };
    if d == Dialect::Sqlite {
        return sql;
    }
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => out.push('$'),
            c => out.push(c),
        }
    }
    out
}

/// `(?a, ?a+1, …), (…)`: the VALUES list of a multi-row insert of `rows` rows of `cols`
/// columns, placeholders numbered from `first`.
pub fn values_list(rows: usize, cols: usize, first: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push_str(&format!("?{}", first + r * cols + c));
        }
        s.push(')');
    }
    s
}

/// A connection.
pub enum Conn {
    Sqlite(rusqlite::Connection),
    #[cfg(feature = "postgres")]
    Postgres(Box<Pg>),
}

/// A connection and whether a write transaction is open on it.
pub struct Db {
    pub(super) conn: Conn,
    in_write: Cell<bool>,
}

struct SqliteValue<'a>(&'a Value);

impl rusqlite::ToSql for SqliteValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Real(x) => ValueRef::Real(*x),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
            Value::Texts(_) | Value::Ints(_) | Value::Reals(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "SQLite has no array parameters".into(),
                ))
            }
        }))
    }
}

fn sqlite_row(r: &rusqlite::Row, n: usize) -> rusqlite::Result<Row> {
    use rusqlite::types::ValueRef;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(match r.get_ref(i)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Int(i),
            ValueRef::Real(x) => Value::Real(x),
            ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        });
    }
    Ok(Row(out))
}

fn values(params: &[&dyn Param]) -> Vec<Value> {
    params.iter().map(|p| p.value()).collect()
}

impl Db {
    pub fn sqlite(conn: rusqlite::Connection) -> Db {
        Db {
            conn: Conn::Sqlite(conn),
            in_write: Cell::new(false),
        }
    }

    #[cfg(feature = "postgres")]
    pub fn postgres(pg: Pg) -> Db {
        Db {
            conn: Conn::Postgres(Box::new(pg)),
            in_write: Cell::new(false),
        }
    }

    /// The SQLite connection (`None` on PostgreSQL), for its pragmas.
    pub fn sqlite_connection(&self) -> Option<&rusqlite::Connection> {
        match &self.conn {
            Conn::Sqlite(c) => Some(c),
            #[cfg(feature = "postgres")]
            Conn::Postgres(_) => None,
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self.conn {
            Conn::Sqlite(_) => Dialect::Sqlite,
            #[cfg(feature = "postgres")]
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs one statement; returns the number of rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<usize> {
        let sql = dialect(sql, self.dialect());
        let vals = values(params);
        match &self.conn {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(&sql)?;
                Ok(st.execute(rusqlite::params_from_iter(vals.iter().map(SqliteValue)))?)
            }
            #[cfg(feature = "postgres")]
            Conn::Postgres(pg) => pg.execute(&sql, &vals),
        }
    }

    /// Runs one query; returns every row.
    pub fn query(&self, sql: &str, params: &[&dyn Param]) -> Result<Vec<Row>> {
        let sql = dialect(sql, self.dialect());
        let vals = values(params);
        match &self.conn {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(&sql)?;
                let n = st.column_count();
                let rows = st.query_map(
                    rusqlite::params_from_iter(vals.iter().map(SqliteValue)),
                    |r| sqlite_row(r, n),
                )?;
                Ok(rows.collect::<rusqlite::Result<Vec<Row>>>()?)
            }
            #[cfg(feature = "postgres")]
            Conn::Postgres(pg) => pg.query(&sql, &vals),
        }
    }

    /// The first row of a query, if any.
    pub fn query_opt(&self, sql: &str, params: &[&dyn Param]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The one row a query must return.
    pub fn query_one(&self, sql: &str, params: &[&dyn Param]) -> Result<Row> {
        self.query_opt(sql, params)?
            .context("the query returned no row")
    }

    /// Runs statements without parameters (DDL, `BEGIN`, …), verbatim.
    pub fn batch(&self, sql: &str) -> Result<()> {
        match &self.conn {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            #[cfg(feature = "postgres")]
            Conn::Postgres(pg) => pg.batch(sql),
        }
    }

    /// Runs `f` in one write transaction (committed when `f` succeeds, rolled back when it
    /// fails). The transaction first takes the store's write lock; a `write` inside another
    /// joins the outer transaction.
    pub fn write<T>(&self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        if self.in_write.get() {
            return f(self);
        }
        match self.dialect() {
            Dialect::Sqlite => self.transaction("BEGIN IMMEDIATE", f),
            Dialect::Postgres => self.transaction("BEGIN", |db| {
                db.execute(
                    "UPDATE store_changes SET counter = counter + 1 WHERE id = 1",
                    &[],
                )?;
                f(db)
            }),
        }
    }

    /// Runs `f` between `begin` and `COMMIT`, or `ROLLBACK` when it fails.
    pub fn transaction<T>(&self, begin: &str, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        self.batch(begin)?;
        self.in_write.set(true);
        let out = f(self).and_then(|v| self.batch("COMMIT").map(|()| v));
        self.in_write.set(false);
        if out.is_err() {
            let _ = self.batch("ROLLBACK");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_tokens_per_dialect() {
        let sql = "UPDATE t SET h = GREATEST(h, {now}) WHERE a = ?1 AND b = '?2' AND c = ?12 \
                   ORDER BY {seq}";
        assert_eq!(
            dialect(sql, Dialect::Postgres),
            "UPDATE t SET h = GREATEST(h, CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE \
             PRECISION)) WHERE a = $1 AND b = '?2' AND c = $12 ORDER BY seq"
        );
        assert_eq!(
            dialect(sql, Dialect::Sqlite),
            "UPDATE t SET h = MAX(h, ((julianday('now') - 2440587.5) * 86400.0)) WHERE a = ?1 \
             AND b = '?2' AND c = ?12 ORDER BY rowid"
        );
        assert_eq!(values_list(2, 3, 2), "(?2, ?3, ?4), (?5, ?6, ?7)");
    }

    #[test]
    fn sqlite_round_trips_every_value_kind() {
        let db = Db::sqlite(rusqlite::Connection::open_in_memory().unwrap());
        db.batch("CREATE TABLE t (i BIGINT, x DOUBLE PRECISION, s TEXT, n TEXT)")
            .unwrap();
        let none: Option<String> = None;
        db.write(|db| {
            db.execute(
                "INSERT INTO t VALUES (?1, ?2, ?3, ?4)",
                &[&-7i64, &0.25, &"é", &none],
            )
        })
        .unwrap();
        let r = db
            .query_one("SELECT i, x, s, n, {now} FROM t", &[])
            .unwrap();
        assert_eq!(r.get::<i64>(0).unwrap(), -7);
        assert_eq!(r.get::<f64>(1).unwrap(), 0.25);
        assert_eq!(r.get::<String>(2).unwrap(), "é");
        assert_eq!(r.get::<Option<String>>(3).unwrap(), None);
        let clock = r.get::<f64>(4).unwrap();
        assert!((clock - super::super::now()).abs() < 5.0, "{clock}");
        assert!(r.get::<String>(0).is_err());
        // a failing write leaves nothing behind
        let e: anyhow::Result<()> = db.write(|db| {
            db.execute("INSERT INTO t(i) VALUES (?1)", &[&1i64])?;
            anyhow::bail!("no")
        });
        assert!(e.is_err());
        let n: i64 = db
            .query_one("SELECT COUNT(*) FROM t", &[])
            .unwrap()
            .get(0)
            .unwrap();
        assert_eq!(n, 1);
    }
}
