//! Schema versions, applied in order; `PRAGMA user_version` records the newest applied.

use rusqlite::{Connection, TransactionBehavior};

/// Forward migrations: index i brings the schema from version i to i + 1.
const MIGRATIONS: &[&str] = &[
    // 1: sweeps, runs, params, metrics, latest metrics, artifacts
    "CREATE TABLE sweeps (
        name    TEXT PRIMARY KEY,
        file    TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE TABLE runs (
        id         TEXT PRIMARY KEY,
        sweep      TEXT NOT NULL,
        seed       INTEGER NOT NULL,
        config     TEXT NOT NULL,
        status     TEXT NOT NULL CHECK (status IN ('queued','running','finished','failed','stopped')),
        error      TEXT,
        pid        INTEGER,
        heartbeat  REAL,
        attempts   INTEGER NOT NULL DEFAULT 0,
        started    REAL,
        ended      REAL,
        backend    TEXT,
        device     TEXT,
        git_commit TEXT,
        out_dir    TEXT,
        created    REAL NOT NULL
    );
    CREATE INDEX runs_status ON runs(status);
    CREATE TABLE sweep_runs (
        sweep  TEXT NOT NULL REFERENCES sweeps(name),
        run_id TEXT NOT NULL REFERENCES runs(id),
        PRIMARY KEY (sweep, run_id)
    ) WITHOUT ROWID;
    CREATE TABLE params (
        run_id TEXT NOT NULL REFERENCES runs(id),
        key    TEXT NOT NULL,
        value  TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE metrics (
        run_id TEXT NOT NULL,
        key    TEXT NOT NULL,
        step   INTEGER NOT NULL,
        epoch  INTEGER NOT NULL,
        value  REAL NOT NULL,
        wall   REAL NOT NULL,
        PRIMARY KEY (run_id, key, step)
    ) WITHOUT ROWID;
    CREATE TABLE latest_metrics (
        run_id TEXT NOT NULL,
        key    TEXT NOT NULL,
        step   INTEGER NOT NULL,
        epoch  INTEGER NOT NULL,
        value  REAL NOT NULL,
        wall   REAL NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX latest_by_key ON latest_metrics(key);
    CREATE TABLE artifacts (
        run_id  TEXT NOT NULL REFERENCES runs(id),
        kind    TEXT NOT NULL,
        path    TEXT NOT NULL,
        epoch   INTEGER,
        created REAL NOT NULL,
        PRIMARY KEY (run_id, path)
    );",
    // 2: generator spectra per epoch and scale, histograms (spatial correlation)
    "CREATE TABLE spectra (
        run_id       TEXT NOT NULL REFERENCES runs(id),
        epoch        INTEGER NOT NULL,
        scale        TEXT NOT NULL,
        energy_ratio REAL NOT NULL,
        commutator   REAL NOT NULL,
        -- ScaleSpectrum as JSON: per matrix eig_re/eig_im arrays, energy, rank, condition
        detail       TEXT NOT NULL,
        PRIMARY KEY (run_id, epoch, scale)
    ) WITHOUT ROWID;
    CREATE TABLE histograms (
        run_id TEXT NOT NULL REFERENCES runs(id),
        name   TEXT NOT NULL,
        epoch  INTEGER NOT NULL,
        lo     REAL NOT NULL,
        hi     REAL NOT NULL,
        counts TEXT NOT NULL,
        PRIMARY KEY (run_id, name, epoch)
    ) WITHOUT ROWID;",
    // 3: stop requests (TUI), the detached sweep's log and the pid of the sweep driving it
    "ALTER TABLE runs ADD COLUMN stop_requested INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sweeps ADD COLUMN log TEXT;
    ALTER TABLE sweeps ADD COLUMN runner_pid INTEGER;",
    // 4: the store's own id (a runs folder is bound to the store that watched it train), and
    //    where a run's history came from when it was adopted from another store's checkpoint
    "CREATE TABLE store_meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    INSERT INTO store_meta(key, value) VALUES ('store_id', lower(hex(randomblob(16))));
    ALTER TABLE runs ADD COLUMN provenance TEXT;",
];

/// The schema version this binary writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// The schema version of an open database.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Refuses a version this binary does not know: one written by a newer workbench (naming
/// both versions), or a negative one (a foreign or damaged file; nothing is migrated).
pub fn check_known(current: i64) -> anyhow::Result<()> {
    anyhow::ensure!(
        current >= 0,
        "not a workbench database (unknown schema version {current})"
    );
    anyhow::ensure!(
        current <= VERSION,
        "database schema version {current} is newer than this workbench's {VERSION}; upgrade the workbench"
    );
    Ok(())
}

/// The schema version of a database this binary may open: [`check_known`], and a file at
/// version 0 must be empty (a fresh store); a version-0 file with tables is another
/// program's database, which is refused rather than migrated into.
pub fn usable_version(conn: &Connection) -> anyhow::Result<i64> {
    let current = version(conn)?;
    check_known(current)?;
    if current == 0 {
        let tables: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))?;
        anyhow::ensure!(
            tables == 0,
            "not a workbench database (it holds {tables} tables or indexes of another program)"
        );
    }
    Ok(current)
}

/// Applies every migration newer than the database's `user_version`, each in its own
/// transaction. A database from a newer binary is refused rather than touched.
pub fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let current = usable_version(conn)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // another process may have migrated while we waited for the lock
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now > i as i64 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
