//! The PostgreSQL connection of a store on a server (`--db postgresql://user@host:port/db`):
//! connecting with a clear error, prepared statements cached per connection, and values
//! converted to and from the column types the server reports.

use anyhow::{Context, Result};
use bytes::BytesMut;
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::{Client, Config, NoTls, Statement};
use std::cell::RefCell;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use super::db::{Row, Value};
use super::locator::redact;

/// A client and its prepared statements.
pub struct Pg {
    client: RefCell<Client>,
    statements: RefCell<HashMap<String, Statement>>,
}

/// `host:port` of a connection string, for messages.
fn endpoint(config: &Config) -> String {
    use postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

impl Pg {
    /// Connects (10 s timeout unless the URL sets one). `read_only` makes every transaction
    /// of the session read-only, so a viewer cannot write by mistake.
    pub fn connect(url: &str, read_only: bool) -> Result<Pg> {
        let mut config = Config::from_str(url)
            .with_context(|| format!("{}: not a PostgreSQL URL", redact(url)))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("workbench");
        }
        let client = config.connect(NoTls).map_err(|e| {
            anyhow::anyhow!(
                "cannot connect to PostgreSQL at {} ({}): {}",
                endpoint(&config),
                redact(url),
                error_text(&e)
            )
        })?;
        let pg = Pg {
            client: RefCell::new(client),
            statements: RefCell::new(HashMap::new()),
        };
        pg.batch("SET client_min_messages = warning")?;
        if read_only {
            pg.batch("SET default_transaction_read_only = on")?;
        }
        Ok(pg)
    }

    fn statement(&self, sql: &str) -> Result<Statement> {
        if let Some(st) = self.statements.borrow().get(sql) {
            return Ok(st.clone());
        }
        let st = self
            .client
            .borrow_mut()
            .prepare(sql)
            .map_err(|e| anyhow::anyhow!("{}\n  in: {sql}", error_text(&e)))?;
        self.statements
            .borrow_mut()
            .insert(sql.to_string(), st.clone());
        Ok(st)
    }

    /// Runs `f` on the client with the prepared statement of `sql` and `vals` as parameters.
    fn with_statement<T>(
        &self,
        sql: &str,
        vals: &[Value],
        f: impl FnOnce(&mut Client, &Statement, &[&(dyn ToSql + Sync)]) -> Result<T, postgres::Error>,
    ) -> Result<T> {
        let st = self.statement(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = vals.iter().map(|v| v as _).collect();
        f(&mut self.client.borrow_mut(), &st, &params)
            .map_err(|e| anyhow::anyhow!("{}", error_text(&e)))
    }

    pub fn execute(&self, sql: &str, vals: &[Value]) -> Result<usize> {
        let n = self.with_statement(sql, vals, |c, st, p| c.execute(st, p))?;
        Ok(n as usize)
    }

    pub fn query(&self, sql: &str, vals: &[Value]) -> Result<Vec<Row>> {
        let rows = self.with_statement(sql, vals, |c, st, p| c.query(st, p))?;
        rows.iter().map(row).collect()
    }

    pub fn batch(&self, sql: &str) -> Result<()> {
        self.client
            .borrow_mut()
            .batch_execute(sql)
            .map_err(|e| anyhow::anyhow!("{}", error_text(&e)))
    }
}

/// The server's message (with its detail) rather than the client's "db error".
fn error_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{}: {d}", db.message()),
            None => db.message().to_string(),
        },
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s = format!("{s}: {inner}");
                src = inner.source();
            }
            s
        }
    }
}

/// A result row as [`Value`]s, by the column types the server reports.
fn row(r: &postgres::Row) -> Result<Row> {
    let mut out = Vec::with_capacity(r.len());
    for (i, col) in r.columns().iter().enumerate() {
        let ty = col.type_();
        let v = if *ty == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)?.map(Value::Int)
        } else if *ty == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)?
                .map(|x| Value::Int(i64::from(x)))
        } else if *ty == Type::INT2 {
            r.try_get::<_, Option<i16>>(i)?
                .map(|x| Value::Int(i64::from(x)))
        } else if *ty == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)?
                .map(|x| Value::Int(i64::from(x)))
        } else if *ty == Type::FLOAT8 {
            r.try_get::<_, Option<f64>>(i)?.map(Value::Real)
        } else if *ty == Type::FLOAT4 {
            r.try_get::<_, Option<f32>>(i)?
                .map(|x| Value::Real(f64::from(x)))
        } else if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(ty) {
            r.try_get::<_, Option<String>>(i)?.map(Value::Text)
        } else if *ty == Type::BYTEA {
            r.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob)
        } else {
            anyhow::bail!(
                "column {} has type {ty}, which the store does not read",
                col.name()
            );
        };
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(out))
}

/// Values are bound as the type the server inferred for the parameter (an integer bound to
/// a boolean parameter is `<> 0`, a number to a float4 column is narrowed).
impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::FLOAT4 => (*i as f32).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            Value::Real(x) => match *ty {
                Type::FLOAT4 => (*x as f32).to_sql(ty, out),
                _ => x.to_sql(ty, out),
            },
            Value::Text(s) => s.to_sql(ty, out),
            Value::Blob(b) => b.as_slice().to_sql(ty, out),
            Value::Texts(v) => v.to_sql(ty, out),
            Value::Ints(v) => v.to_sql(ty, out),
            Value::Reals(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}
