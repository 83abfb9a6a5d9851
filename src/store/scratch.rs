//! Scratch stores, removed when dropped: for tests on every backend this machine can run (a
//! SQLite file always, and a fresh PostgreSQL database when `WORKBENCH_TEST_PG` names a server
//! (`postgresql://postgres@127.0.0.1:55432/postgres`; `scripts/postgres.sh start` prints one);
//! with `CI=true` a missing server fails the test instead of skipping PostgreSQL), and for the
//! benchmarks, which fill a database of their own on the server they are given.

use anyhow::{Context, Result};
use std::sync::atomic::{AtomicU64, Ordering};

use super::locator::Locator;

/// The server tests create their databases on, if any. Panics when `CI=true` and none is set:
/// CI must test both backends.
pub fn postgres_server() -> Option<String> {
    let url = std::env::var("WORKBENCH_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but WORKBENCH_TEST_PG is not set: the PostgreSQL store tests cannot run");
    }
    url
}

/// A store location that is removed when dropped (the temporary folder, or the database).
pub struct ScratchStore {
    pub locator: Locator,
    _dir: Option<tempfile::TempDir>,
    server: Option<(String, String)>,
}

impl ScratchStore {
    /// A fresh SQLite file in a temporary folder.
    pub fn sqlite() -> Result<ScratchStore> {
        let dir = tempfile::tempdir().context("cannot create a temporary folder")?;
        Ok(ScratchStore {
            locator: Locator::Sqlite(dir.path().join("test.db")),
            _dir: Some(dir),
            server: None,
        })
    }

    /// A store at `locator` that is kept (not removed when dropped).
    pub fn kept(locator: Locator) -> ScratchStore {
        ScratchStore {
            locator,
            _dir: None,
            server: None,
        }
    }

    /// A fresh, empty database on the PostgreSQL server at `server`.
    pub fn postgres(server: &str) -> Result<ScratchStore> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "wb_scratch_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        admin(server, &format!("CREATE DATABASE {name}"))?;
        Ok(ScratchStore {
            locator: Locator::Postgres(with_database(server, &name)),
            _dir: None,
            server: Some((server.to_string(), name)),
        })
    }

    pub fn name(&self) -> &'static str {
        if self.locator.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        }
    }
}

impl Drop for ScratchStore {
    fn drop(&mut self) {
        if let Some((server, name)) = &self.server {
            let _ = admin(
                server,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

/// One fresh store per backend: SQLite, and PostgreSQL when a server is configured.
pub fn every_backend() -> Result<Vec<ScratchStore>> {
    let mut out = vec![ScratchStore::sqlite()?];
    if let Some(server) = postgres_server() {
        out.push(
            ScratchStore::postgres(&server)
                .context("cannot create a test database on WORKBENCH_TEST_PG")?,
        );
    }
    Ok(out)
}

/// `server` with its database replaced by `name`.
pub fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (server, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

#[cfg(feature = "postgres")]
fn admin(server: &str, sql: &str) -> Result<()> {
    let mut c = postgres::Client::connect(server, postgres::NoTls)
        .with_context(|| format!("cannot connect to {server}"))?;
    c.batch_execute(sql).with_context(|| sql.to_string())?;
    Ok(())
}

#[cfg(not(feature = "postgres"))]
fn admin(_server: &str, _sql: &str) -> Result<()> {
    anyhow::bail!("built without the `postgres` feature")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn a_database_replaces_the_servers() {
        assert_eq!(
            with_database("postgresql://u@h:1/postgres", "x"),
            "postgresql://u@h:1/x"
        );
        assert_eq!(
            with_database("postgresql://u@h:1", "x"),
            "postgresql://u@h:1/x"
        );
        assert_eq!(
            with_database("postgresql://u@h/p?sslmode=disable", "x"),
            "postgresql://u@h/x?sslmode=disable"
        );
    }
}
