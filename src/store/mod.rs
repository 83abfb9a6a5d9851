//! The run store: sweeps, runs, their parameters, metrics, artifacts, spectra and histograms,
//! in one SQLite file (WAL, busy timeout, versioned schema; one machine) or one PostgreSQL
//! database (a cluster's nodes all write to it), chosen by the [`Locator`] (`--db`).
//!
//! Every SQL statement of the program lives in this module. The write side
//! ([`write`]) is used by sweeps, workers and analyses; the read side ([`read`]) is one typed
//! API shared by the CLI views, the TUI and the report. [`Store::open_read_only`] opens
//! without migrating (and works on a read-only file system).

pub mod claim;
pub mod cluster;
pub mod db;
pub mod decisions;
pub mod locator;
pub mod pictures;
#[cfg(feature = "postgres")]
mod postgres;
pub mod read;
pub mod rows;
pub mod schema;
pub mod scratch;
pub mod search;
pub mod tags;
pub mod write;

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use db::Db;

pub use claim::{Claim, LostClaim, Owner};
pub use decisions::Decision;
pub use locator::Locator;
pub use read::SeriesPoint;
pub use rows::{
    Artifact, Embedding, Histogram, MatrixSpectrum, Metric, NewPicture, NewRun, Picture, RunRow,
    ScaleSpectrum, SpectrumRow, Status, SweepProgress, SweepRow,
};

/// The tables whose rows belong to a run (`run_id`).
const RUN_TABLES: [&str; 11] = [
    "sweep_runs",
    "params",
    "metrics",
    "latest_metrics",
    "artifacts",
    "spectra",
    "histograms",
    "pictures",
    "embeddings",
    "run_tags",
    "run_notes",
];

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The default store: `$WORKBENCH_DB` (a path or a `postgresql://` URL), else
/// `./workbench.db`.
pub fn default_locator() -> Locator {
    Locator::from_env()
}

/// A connection to the store.
pub struct Store {
    db: Db,
    locator: Locator,
    read_only: bool,
}

/// `file:` URI of a path (for SQLite's `immutable` open), with the characters URIs reserve
/// escaped.
fn file_uri(path: &Path, query: &str) -> String {
    let mut out = String::from("file:");
    for b in path.to_string_lossy().bytes() {
        match b {
            b'?' | b'#' | b'%' => out.push_str(&format!("%{b:02X}")),
            _ => out.push(b as char),
        }
    }
    out.push('?');
    out.push_str(query);
    out
}

impl Store {
    /// Opens (creating if needed) and migrates the store at `at`, for writing.
    pub fn open(at: impl Into<Locator>) -> Result<Store> {
        Self::open_for_writing(at.into(), false)
    }

    /// Opens an existing store for writing (fails when the file is missing, or the server's
    /// database holds no store).
    pub fn open_existing(at: impl Into<Locator>) -> Result<Store> {
        Self::open_for_writing(at.into(), true)
    }

    /// One connection: a server's store is checked for existence on the connection that then
    /// migrates and writes.
    fn open_for_writing(locator: Locator, must_exist: bool) -> Result<Store> {
        let db = match &locator {
            Locator::Sqlite(path) => {
                if must_exist && !path.is_file() {
                    return Err(missing(&locator));
                }
                Self::open_sqlite(path)?
            }
            Locator::Postgres(url) => {
                let db = connect_postgres(url, false)?;
                if must_exist && schema::version(&db)? == 0 {
                    return Err(missing(&locator));
                }
                db
            }
        };
        schema::migrate(&db).with_context(|| format!("{locator}: cannot migrate database"))?;
        Ok(Store {
            db,
            locator,
            read_only: false,
        })
    }

    fn open_sqlite(path: &Path) -> Result<Db> {
        let conn = Connection::open(path)
            .with_context(|| format!("{}: cannot open database", path.display()))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        let db = Db::sqlite(conn);
        // a foreign or damaged file is refused before anything (even the journal mode) is
        // written to it
        if schema::version(&db).is_ok() {
            schema::usable_version(&db).with_context(|| path.display().to_string())?;
        }
        let conn = db
            .sqlite_connection()
            .context("a SQLite store on a server connection")?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .with_context(|| format!("{}: cannot open database for writing", path.display()))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(db)
    }

    /// Whether a store exists at `at` (a file there, or a workbench schema in the server's
    /// database); nothing is created.
    pub fn exists(at: &Locator) -> Result<bool> {
        match at {
            Locator::Sqlite(path) => Ok(path.is_file()),
            Locator::Postgres(url) => Ok(schema::version(&connect_postgres(url, true)?)? > 0),
        }
    }

    /// Opens an existing store for reading only: nothing is migrated or written. A store
    /// of a newer schema is refused with both versions; an older one is upgraded first when
    /// it is writable. On a read-only file system (where SQLite cannot create the WAL
    /// index) the file is opened as immutable; a PostgreSQL session is made read-only.
    pub fn open_read_only(at: impl Into<Locator>) -> Result<Store> {
        let locator = at.into();
        let (db, version) = match &locator {
            Locator::Sqlite(path) => {
                if !path.is_file() {
                    return Err(missing(&locator));
                }
                Self::open_sqlite_read_only(path)?
            }
            Locator::Postgres(url) => {
                let db = connect_postgres(url, true)?;
                let v = schema::version(&db)?;
                if v == 0 {
                    return Err(missing(&locator));
                }
                (db, v)
            }
        };
        schema::usable_version(&db).with_context(|| locator.to_string())?;
        if version < schema::VERSION {
            drop(db);
            Store::open(&locator).with_context(|| {
                format!(
                    "schema version {version} is older than this workbench's {}; \
                     it must be upgraded once by a writable open",
                    schema::VERSION
                )
            })?;
            return Store::open_read_only(locator);
        }
        let store = Store {
            db,
            locator,
            read_only: true,
        };
        store.set_busy_timeout(Duration::from_secs(5))?;
        Ok(store)
    }

    fn open_sqlite_read_only(path: &Path) -> Result<(Db, i64)> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let plain = Connection::open_with_flags(path, flags)
            .map_err(anyhow::Error::from)
            .map(Db::sqlite)
            .and_then(|db| schema::version(&db).map(|v| (db, v)));
        match plain {
            Ok(ok) => Ok(ok),
            Err(_) => {
                let c = Connection::open_with_flags(file_uri(path, "immutable=1"), flags)
                    .with_context(|| format!("{}: cannot open database", path.display()))?;
                let db = Db::sqlite(c);
                let v = schema::version(&db)
                    .with_context(|| format!("{}: not a workbench database", path.display()))?;
                Ok((db, v))
            }
        }
    }

    /// Where this store lives.
    pub fn locator(&self) -> &Locator {
        &self.locator
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// How long a statement waits for a writer's lock before failing (the TUI keeps this
    /// short so a busy database shows stale data instead of hanging).
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<()> {
        match &self.db.conn {
            db::Conn::Sqlite(c) => Ok(c.busy_timeout(timeout)?),
            #[cfg(feature = "postgres")]
            db::Conn::Postgres(_) => self
                .db
                .batch(&format!("SET lock_timeout = {}", timeout.as_millis())),
        }
    }
}

/// The error for a store that does not exist (yet) at `locator`.
fn missing(locator: &Locator) -> anyhow::Error {
    match locator {
        Locator::Sqlite(path) => anyhow::anyhow!(
            "{}: no such database (run a sweep first, or pass --db)",
            path.display()
        ),
        Locator::Postgres(_) => anyhow::anyhow!(
            "{locator}: no workbench store in this database (run a sweep first, or pass --db)"
        ),
    }
}

/// A connection to the PostgreSQL store at `url`.
#[cfg(feature = "postgres")]
fn connect_postgres(url: &str, read_only: bool) -> Result<Db> {
    Ok(Db::postgres(postgres::Pg::connect(url, read_only)?))
}

#[cfg(not(feature = "postgres"))]
fn connect_postgres(url: &str, _read_only: bool) -> Result<Db> {
    anyhow::bail!(
        "{}: this workbench was built without PostgreSQL support (cargo feature `postgres`)",
        locator::redact(url)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(dir: &Path) -> PathBuf {
        let path = dir.join("s.db");
        let mut s = Store::open(&path).unwrap();
        let cfg = crate::config::RunConfig::default();
        s.register_sweep("sw", "sw.toml", &[NewRun::from_config(&cfg)])
            .unwrap();
        path
    }

    #[test]
    fn read_only_refuses_a_newer_schema_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = fixture(dir.path());
        {
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "user_version", schema::VERSION + 4)
                .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let e = format!("{:#}", Store::open_read_only(&path).err().unwrap());
        assert!(
            e.contains(&format!("version {}", schema::VERSION + 4))
                && e.contains(&format!("workbench's {}", schema::VERSION)),
            "{e}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn read_only_cannot_write() {
        for backend in scratch::every_backend().unwrap() {
            let mut w = Store::open(&backend.locator).unwrap();
            let cfg = crate::config::RunConfig::default();
            w.register_sweep("sw", "sw.toml", &[NewRun::from_config(&cfg)])
                .unwrap();
            let s = Store::open_read_only(&backend.locator).unwrap();
            assert_eq!(s.runs(None, None).unwrap().len(), 1);
            let id = s.runs(None, None).unwrap()[0].id.clone();
            assert!(
                s.set_status(&id, Status::Failed, Some("x")).is_err(),
                "{}",
                backend.name()
            );
            assert_eq!(s.run(&id).unwrap().status, Status::Queued);
        }
    }

    #[test]
    fn a_store_on_a_server_that_is_not_there_names_host_and_port() {
        let e = Store::open(Locator::parse("postgresql://u@127.0.0.1:1/none"))
            .err()
            .unwrap();
        let e = format!("{e:#}");
        assert!(e.contains("127.0.0.1:1"), "{e}");
    }

    #[test]
    fn another_programs_postgres_database_is_refused() {
        let Some(server) = scratch::postgres_server() else {
            return;
        };
        let db = scratch::ScratchStore::postgres(&server).unwrap();
        let url = match &db.locator {
            Locator::Postgres(u) => u.clone(),
            Locator::Sqlite(_) => unreachable!(),
        };
        let mut c = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
        c.batch_execute("CREATE TABLE theirs (x INT)").unwrap();
        let e = format!("{:#}", Store::open(&db.locator).err().unwrap());
        assert!(e.contains("not a workbench database"), "{e}");
        let tables: i64 = c
            .query_one(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(tables, 1, "nothing was created");
    }

    #[test]
    fn immutable_fallback_reads_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = fixture(dir.path());
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
        let c = Connection::open_with_flags(file_uri(&path, "immutable=1"), flags).unwrap();
        assert_eq!(schema::version(&Db::sqlite(c)).unwrap(), schema::VERSION);
        assert_eq!(
            file_uri(Path::new("/a?b#c%d"), "immutable=1"),
            "file:/a%3Fb%23c%25d?immutable=1"
        );
    }

    #[test]
    fn a_missing_database_is_an_error_not_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.db");
        let e = Store::open_read_only(&path).err().unwrap().to_string();
        assert!(e.contains("no such database"), "{e}");
        assert!(!path.exists());
    }
}
