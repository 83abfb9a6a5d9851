//! The run store: one SQLite file (WAL, busy timeout, versioned schema) holding sweeps, runs,
//! their parameters, metrics, artifacts, spectra and histograms.
//!
//! Every SQL statement of the program lives in this module. The write side
//! ([`write`]) is used by sweeps, workers and analyses; the read side ([`read`]) is one typed
//! API shared by the CLI views, the TUI and the report. [`Store::open_read_only`] opens
//! without migrating (and works on a read-only file system).

pub mod claim;
pub mod read;
pub mod rows;
pub mod schema;
pub mod write;

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use claim::{Claim, LostClaim};
pub use read::SeriesPoint;
pub use rows::{
    Artifact, Histogram, MatrixSpectrum, Metric, NewRun, RunRow, ScaleSpectrum, SpectrumRow,
    Status, SweepProgress, SweepRow,
};

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The default database path: `$WORKBENCH_DB`, else `./workbench.db`.
pub fn default_path() -> PathBuf {
    std::env::var_os("WORKBENCH_DB")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("workbench.db"))
}

/// A connection to the store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
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
    /// Opens (creating if needed) and migrates the database at `path`, for writing.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)
            .with_context(|| format!("{}: cannot open database", path.display()))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        // a foreign or damaged file is refused before anything (even the journal mode) is
        // written to it
        if schema::version(&conn).is_ok() {
            schema::usable_version(&conn).with_context(|| path.display().to_string())?;
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .with_context(|| format!("{}: cannot open database for writing", path.display()))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            read_only: false,
        };
        schema::migrate(&mut store.conn)
            .with_context(|| format!("{}: cannot migrate database", path.display()))?;
        Ok(store)
    }

    /// Opens an existing database for writing (fails when the file is missing).
    pub fn open_existing(path: &Path) -> Result<Store> {
        Self::ensure_exists(path)?;
        Store::open(path)
    }

    fn ensure_exists(path: &Path) -> Result<()> {
        anyhow::ensure!(
            path.is_file(),
            "{}: no such database (run a sweep first, or pass --db)",
            path.display()
        );
        Ok(())
    }

    /// Opens an existing database for reading only: nothing is migrated or written. A store
    /// of a newer schema is refused with both versions; an older one is upgraded first when
    /// the file is writable. On a read-only file system (where SQLite cannot create the WAL
    /// index) the file is opened as immutable.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        Self::ensure_exists(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let plain = Connection::open_with_flags(path, flags)
            .and_then(|c| schema::version(&c).map(|v| (c, v)));
        let (conn, version) = match plain {
            Ok(ok) => ok,
            Err(_) => {
                let c = Connection::open_with_flags(file_uri(path, "immutable=1"), flags)
                    .with_context(|| format!("{}: cannot open database", path.display()))?;
                let v = schema::version(&c)
                    .with_context(|| format!("{}: not a workbench database", path.display()))?;
                (c, v)
            }
        };
        schema::usable_version(&conn).with_context(|| path.display().to_string())?;
        if version < schema::VERSION {
            drop(conn);
            Store::open(path).with_context(|| {
                format!(
                    "schema version {version} is older than this workbench's {}; \
                     it must be upgraded once by a writable open",
                    schema::VERSION
                )
            })?;
            return Store::open_read_only(path);
        }
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            read_only: true,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// How long a statement waits for a writer's lock before failing (the TUI keeps this
    /// short so a busy database shows stale data instead of hanging).
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<()> {
        Ok(self.conn.busy_timeout(timeout)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let dir = tempfile::tempdir().unwrap();
        let path = fixture(dir.path());
        let s = Store::open_read_only(&path).unwrap();
        assert_eq!(s.runs(None, None).unwrap().len(), 1);
        let id = s.runs(None, None).unwrap()[0].id.clone();
        assert!(s.set_status(&id, Status::Failed, Some("x")).is_err());
    }

    #[test]
    fn immutable_fallback_reads_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = fixture(dir.path());
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
        let c = Connection::open_with_flags(file_uri(&path, "immutable=1"), flags).unwrap();
        assert_eq!(schema::version(&c).unwrap(), schema::VERSION);
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
