//! Schema versions, applied in order. SQLite records the newest applied in `PRAGMA
//! user_version` and runs [`MIGRATIONS`] one by one; a PostgreSQL store (always created by a
//! binary that knows this schema) is created at [`PG_BASE_VERSION`] in one step and records
//! its version in `schema_version`; both migrate under a lock, so two processes opening a
//! fresh store migrate it once.

use anyhow::{Context, Result};

use super::db::{Db, Dialect};

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
    // 5: a run's owner beyond one machine (host next to pid, the SLURM job), preemptions
    //    counted apart from crash attempts, the SLURM array task a sweep's run is frozen to;
    //    how a sweep executes (executor, its runs folder, batch script and submitted jobs)
    "ALTER TABLE runs ADD COLUMN host TEXT;
    ALTER TABLE runs ADD COLUMN slurm_job TEXT;
    ALTER TABLE runs ADD COLUMN preemptions BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE sweep_runs ADD COLUMN task BIGINT;
    ALTER TABLE sweeps ADD COLUMN executor TEXT;
    ALTER TABLE sweeps ADD COLUMN runs_root TEXT;
    ALTER TABLE sweeps ADD COLUMN script TEXT;
    ALTER TABLE sweeps ADD COLUMN slurm_jobs TEXT;",
    // 6: pictures (reconstruction strips per epoch, cross-attention figures) as PNG bytes,
    //    and 2-D embeddings of a run's probe features (JSON points)
    "CREATE TABLE pictures (
        run_id  TEXT NOT NULL REFERENCES runs(id) {deferrable},
        kind    TEXT NOT NULL,
        epoch   BIGINT NOT NULL,
        item    BIGINT NOT NULL,
        caption TEXT NOT NULL,
        value   DOUBLE PRECISION,
        png     {blob} NOT NULL,
        PRIMARY KEY (run_id, kind, epoch, item)
    );
    CREATE TABLE embeddings (
        run_id TEXT NOT NULL REFERENCES runs(id) {deferrable},
        name   TEXT NOT NULL,
        epoch  BIGINT NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (run_id, name)
    );",
    // 7: tags and notes of runs and sweeps (a user's labels; kept when a run is renamed or
    //    adopts another store's history)
    "CREATE TABLE run_tags (
        run_id  TEXT NOT NULL REFERENCES runs(id) {deferrable},
        tag     TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (run_id, tag)
    );
    CREATE TABLE run_notes (
        run_id  TEXT NOT NULL REFERENCES runs(id) {deferrable},
        created DOUBLE PRECISION NOT NULL,
        text    TEXT NOT NULL
    );
    CREATE INDEX run_notes_run ON run_notes(run_id);
    CREATE TABLE sweep_tags (
        sweep   TEXT NOT NULL REFERENCES sweeps(name),
        tag     TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (sweep, tag)
    );
    CREATE TABLE sweep_notes (
        sweep   TEXT NOT NULL REFERENCES sweeps(name),
        created DOUBLE PRECISION NOT NULL,
        text    TEXT NOT NULL
    );",
    // 8: early stopping and search: the `pruned` status, one decision per setting and rung,
    //    the keys a sweep's [search] samples
    "{runs_status_pruned}
    ALTER TABLE sweeps ADD COLUMN search TEXT;
    CREATE TABLE decisions (
        sweep    TEXT NOT NULL,
        setting  TEXT NOT NULL,
        rung     BIGINT NOT NULL,
        metric   TEXT NOT NULL,
        value    DOUBLE PRECISION NOT NULL,
        seeds    BIGINT NOT NULL,
        rank     BIGINT NOT NULL,
        peers    BIGINT NOT NULL,
        keep_top BIGINT NOT NULL,
        prune    BIGINT NOT NULL,
        run_id   TEXT NOT NULL,
        created  DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (sweep, setting, rung)
    );",
];

/// Where migration 8 widens the runs' status check to `pruned`: PostgreSQL swaps the
/// constraint; SQLite, which cannot alter a check, rebuilds the table ([`rebuild_runs_sqlite`]).
const RUNS_STATUS_PRUNED: &str = "{runs_status_pruned}";

/// The statuses before and after migration 8, as the runs table's check spells them.
const STATUSES_BEFORE_PRUNED: &str = "'queued','running','finished','failed','stopped'";
const STATUSES_WITH_PRUNED: &str = "'queued','running','finished','failed','stopped','pruned'";

/// The first schema version with the `pictures` and `embeddings` tables (a viewer of an older
/// store, which it may not migrate, reads none).
pub const PICTURES_VERSION: i64 = 6;

/// A shared migration in `dialect`'s spelling: `{blob}` is SQLite's `BLOB` or PostgreSQL's
/// `BYTEA`; `{deferrable}` marks PostgreSQL's foreign keys deferrable (a run is renamed in one
/// transaction), nothing on SQLite.
fn ddl(sql: &str, dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => sql.replace("{blob}", "BLOB").replace("{deferrable}", ""),
        Dialect::Postgres => sql
            .replace("{blob}", "BYTEA")
            .replace("{deferrable}", "DEFERRABLE")
            .replace(
                RUNS_STATUS_PRUNED,
                &format!(
                    "ALTER TABLE runs DROP CONSTRAINT IF EXISTS runs_status_check;
                     ALTER TABLE runs ADD CONSTRAINT runs_status_check
                         CHECK (status IN ({STATUSES_WITH_PRUNED}));"
                ),
            ),
    }
}

/// SQLite's way to change a check constraint (its "other kinds of table schema changes"):
/// a copy of `runs` under the new check, every row copied in insertion order, the old table
/// dropped and the copy renamed. Runs inside the migration's transaction with foreign keys off
/// (the caller's job), then checks that every reference still holds.
fn rebuild_runs_sqlite(db: &Db) -> Result<()> {
    let create: String = db
        .query_one(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'runs'",
            &[],
        )?
        .get(0)?;
    if create.contains(STATUSES_WITH_PRUNED) {
        // already widened (a store whose version was set back by hand): nothing to do
        return Ok(());
    }
    anyhow::ensure!(
        create.contains(STATUSES_BEFORE_PRUNED),
        "the runs table's status check is not the one this migration knows: {create}"
    );
    // the columns as SQLite keeps them (`CREATE TABLE runs (` or, after a rename,
    // `CREATE TABLE "runs" (`), under the new name
    let columns = create
        .find('(')
        .map(|i| &create[i..])
        .context("the runs table's definition has no column list")?;
    let widened = format!("CREATE TABLE runs_new {columns}")
        .replace(STATUSES_BEFORE_PRUNED, STATUSES_WITH_PRUNED);
    anyhow::ensure!(
        widened.contains(STATUSES_WITH_PRUNED),
        "cannot widen the runs table's status check: {create}"
    );
    db.batch(&widened)?;
    db.batch(
        "INSERT INTO runs_new SELECT * FROM runs ORDER BY rowid;
         DROP TABLE runs;
         ALTER TABLE runs_new RENAME TO runs;
         CREATE INDEX runs_status ON runs(status);",
    )?;
    let broken = db.query("PRAGMA foreign_key_check", &[])?;
    anyhow::ensure!(
        broken.is_empty(),
        "{} rows lost their run while the runs table was rebuilt",
        broken.len()
    );
    Ok(())
}

/// The version [`PG_BASE`] creates.
pub const PG_BASE_VERSION: i64 = 5;

/// The whole schema at [`PG_BASE_VERSION`] in PostgreSQL's types (`DOUBLE PRECISION`,
/// `BIGINT`), with `seq` for insertion order (no rowid), foreign keys deferrable (a run is
/// renamed in one transaction) and `store_changes`, the counter each write transaction bumps.
/// Migrations after it are shared with SQLite ([`MIGRATIONS`] from index
/// [`PG_BASE_VERSION`] on).
const PG_BASE: &str = "
    CREATE TABLE store_meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    INSERT INTO store_meta(key, value)
        VALUES ('store_id', md5(random()::text || clock_timestamp()::text));
    CREATE TABLE store_changes (
        id      INT PRIMARY KEY CHECK (id = 1),
        counter BIGINT NOT NULL
    );
    INSERT INTO store_changes(id, counter) VALUES (1, 0);
    CREATE TABLE sweeps (
        name       TEXT PRIMARY KEY,
        file       TEXT NOT NULL,
        created    DOUBLE PRECISION NOT NULL,
        log        TEXT,
        runner_pid BIGINT,
        executor   TEXT,
        runs_root  TEXT,
        script     TEXT,
        slurm_jobs TEXT
    );
    CREATE TABLE runs (
        seq            BIGINT GENERATED ALWAYS AS IDENTITY,
        id             TEXT PRIMARY KEY,
        sweep          TEXT NOT NULL,
        seed           BIGINT NOT NULL,
        config         TEXT NOT NULL,
        status         TEXT NOT NULL CHECK (status IN ('queued','running','finished','failed','stopped')),
        error          TEXT,
        pid            BIGINT,
        heartbeat      DOUBLE PRECISION,
        attempts       BIGINT NOT NULL DEFAULT 0,
        started        DOUBLE PRECISION,
        ended          DOUBLE PRECISION,
        backend        TEXT,
        device         TEXT,
        git_commit     TEXT,
        out_dir        TEXT,
        created        DOUBLE PRECISION NOT NULL,
        stop_requested BIGINT NOT NULL DEFAULT 0,
        provenance     TEXT,
        host           TEXT,
        slurm_job      TEXT,
        preemptions    BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX runs_status ON runs(status);
    CREATE INDEX runs_order ON runs(created, seq);
    CREATE TABLE sweep_runs (
        sweep  TEXT NOT NULL REFERENCES sweeps(name),
        run_id TEXT NOT NULL REFERENCES runs(id) DEFERRABLE,
        task   BIGINT,
        PRIMARY KEY (sweep, run_id)
    );
    CREATE INDEX sweep_runs_run ON sweep_runs(run_id);
    CREATE TABLE params (
        run_id TEXT NOT NULL REFERENCES runs(id) DEFERRABLE,
        key    TEXT NOT NULL,
        value  TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    );
    CREATE TABLE metrics (
        run_id TEXT NOT NULL,
        key    TEXT NOT NULL,
        step   BIGINT NOT NULL,
        epoch  BIGINT NOT NULL,
        value  DOUBLE PRECISION NOT NULL,
        wall   DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (run_id, key, step)
    );
    CREATE TABLE latest_metrics (
        run_id TEXT NOT NULL,
        key    TEXT NOT NULL,
        step   BIGINT NOT NULL,
        epoch  BIGINT NOT NULL,
        value  DOUBLE PRECISION NOT NULL,
        wall   DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (run_id, key)
    );
    CREATE INDEX latest_by_key ON latest_metrics(key);
    CREATE TABLE artifacts (
        run_id  TEXT NOT NULL REFERENCES runs(id) DEFERRABLE,
        kind    TEXT NOT NULL,
        path    TEXT NOT NULL,
        epoch   BIGINT,
        created DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (run_id, path)
    );
    CREATE TABLE spectra (
        run_id       TEXT NOT NULL REFERENCES runs(id) DEFERRABLE,
        epoch        BIGINT NOT NULL,
        scale        TEXT NOT NULL,
        energy_ratio DOUBLE PRECISION NOT NULL,
        commutator   DOUBLE PRECISION NOT NULL,
        detail       TEXT NOT NULL,
        PRIMARY KEY (run_id, epoch, scale)
    );
    CREATE TABLE histograms (
        run_id TEXT NOT NULL REFERENCES runs(id) DEFERRABLE,
        name   TEXT NOT NULL,
        epoch  BIGINT NOT NULL,
        lo     DOUBLE PRECISION NOT NULL,
        hi     DOUBLE PRECISION NOT NULL,
        counts TEXT NOT NULL,
        PRIMARY KEY (run_id, name, epoch)
    );
    CREATE TABLE schema_version (version BIGINT NOT NULL);
";

/// Key of the advisory lock PostgreSQL migrations run under.
const PG_MIGRATION_LOCK: i64 = 0x7162_6865_6174;

/// The schema version this binary writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// The schema version of an open database (0: a fresh one).
pub fn version(db: &Db) -> Result<i64> {
    match db.dialect() {
        Dialect::Sqlite => db.query_one("PRAGMA user_version", &[])?.get(0),
        Dialect::Postgres => {
            let exists: bool = db
                .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])?
                .get(0)?;
            if !exists {
                return Ok(0);
            }
            Ok(db
                .query_opt("SELECT version FROM schema_version", &[])?
                .map(|r| r.get(0))
                .transpose()?
                .unwrap_or(0))
        }
    }
}

/// Refuses a version this binary does not know: one written by a newer workbench (naming
/// both versions), or a negative one (a foreign or damaged file; nothing is migrated).
pub fn check_known(current: i64) -> Result<()> {
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

/// Tables and indexes of a database that has no workbench schema (another program's).
fn foreign_objects(db: &Db) -> Result<i64> {
    let sql = match db.dialect() {
        Dialect::Sqlite => "SELECT COUNT(*) FROM sqlite_master",
        Dialect::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()"
        }
    };
    db.query_one(sql, &[])?.get(0)
}

/// The schema version of a database this binary may open: [`check_known`], and a database
/// at version 0 must be empty (a fresh store); a version-0 database with tables is another
/// program's, which is refused rather than migrated into.
pub fn usable_version(db: &Db) -> Result<i64> {
    let current = version(db)?;
    check_known(current)?;
    if current == 0 {
        let tables = foreign_objects(db)?;
        anyhow::ensure!(
            tables == 0,
            "not a workbench database (it holds {tables} tables or indexes of another program)"
        );
    }
    Ok(current)
}

/// Applies every migration the database lacks. A database from a newer binary is refused
/// rather than touched.
pub fn migrate(db: &Db) -> Result<()> {
    match db.dialect() {
        Dialect::Sqlite => migrate_sqlite(db),
        Dialect::Postgres => migrate_postgres(db),
    }
}

/// Each SQLite migration in its own `BEGIN IMMEDIATE` transaction; foreign keys are off
/// while migrations run (a table rebuild drops a table others refer to) and on again after.
fn migrate_sqlite(db: &Db) -> Result<()> {
    let current = usable_version(db)?;
    if current >= VERSION {
        return Ok(());
    }
    db.batch("PRAGMA foreign_keys = OFF")?;
    let migrated = (|| {
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            db.transaction("BEGIN IMMEDIATE", |db| {
                // another process may have migrated while we waited for the lock
                if version(db)? > i as i64 {
                    return Ok(());
                }
                if sql.contains(RUNS_STATUS_PRUNED) {
                    rebuild_runs_sqlite(db)?;
                }
                db.batch(&ddl(&sql.replace(RUNS_STATUS_PRUNED, ""), Dialect::Sqlite))?;
                db.batch(&format!("PRAGMA user_version = {}", i + 1))
            })?;
        }
        Ok(())
    })();
    db.batch("PRAGMA foreign_keys = ON")?;
    migrated
}

/// PostgreSQL: one transaction under an advisory lock: the base schema on a fresh database,
/// then the shared migrations after it.
fn migrate_postgres(db: &Db) -> Result<()> {
    if usable_version(db)? == VERSION {
        return Ok(());
    }
    db.transaction("BEGIN", |db| {
        db.batch(&format!(
            "SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})"
        ))?;
        let mut current = usable_version(db)?;
        if current == 0 {
            db.batch(PG_BASE)?;
            db.execute(
                "INSERT INTO schema_version(version) VALUES (?1)",
                &[&PG_BASE_VERSION],
            )?;
            current = PG_BASE_VERSION;
        }
        anyhow::ensure!(
            current >= PG_BASE_VERSION,
            "PostgreSQL store at schema version {current}, older than any this workbench creates"
        );
        for sql in &MIGRATIONS[current as usize..] {
            db.batch(&ddl(sql, Dialect::Postgres))?;
        }
        db.execute("UPDATE schema_version SET version = ?1", &[&VERSION])?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Status, Store};
    use rusqlite::Connection;

    /// A store written by a binary of schema version 7 (runs, a sweep, params, a tag and a
    /// metric), then opened by this one: migration 8 rebuilds the runs table under the wider
    /// status check and loses nothing.
    #[test]
    fn a_version_7_store_gains_the_pruned_status_and_keeps_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let db = Db::sqlite(Connection::open(&path).unwrap());
            for (i, sql) in MIGRATIONS[..7].iter().enumerate() {
                db.batch(&ddl(sql, Dialect::Sqlite)).unwrap();
                db.batch(&format!("PRAGMA user_version = {}", i + 1))
                    .unwrap();
            }
            db.batch(
                "INSERT INTO sweeps(name, file, created) VALUES ('s', 's.toml', 1);
                 INSERT INTO runs(id, sweep, seed, config, status, created)
                     VALUES ('b', 's', 0, '{}', 'finished', 5), ('a', 's', 1, '{}', 'stopped', 5);
                 INSERT INTO sweep_runs(sweep, run_id) VALUES ('s', 'b'), ('s', 'a');
                 INSERT INTO params(run_id, key, value) VALUES ('a', 'seed', '1');
                 INSERT INTO run_tags(run_id, tag, created) VALUES ('b', 'keep', 2);
                 INSERT INTO metrics(run_id, key, step, epoch, value, wall)
                     VALUES ('a', 'train/loss', 1, 1, 0.5, 3);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(version(&store.db).unwrap(), VERSION);
        // the same runs in the same (insertion) order, with their rows
        let runs = store.runs(None, None).unwrap();
        let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(runs[1].status, Status::Stopped);
        assert_eq!(store.params("a").unwrap().len(), 1);
        assert_eq!(store.metrics("a").unwrap().len(), 1);
        assert_eq!(
            store.all_tags(crate::store::tags::Target::Run).unwrap()["b"],
            ["keep"]
        );
        // the new status is accepted, a made-up one still is not
        store.set_status("a", Status::Pruned, Some("why")).unwrap();
        assert_eq!(store.run("a").unwrap().status, Status::Pruned);
        assert!(store
            .db
            .batch("UPDATE runs SET status = 'paused' WHERE id = 'a'")
            .is_err());
        // foreign keys hold and are enforced again
        assert!(store
            .db
            .query("PRAGMA foreign_key_check", &[])
            .unwrap()
            .is_empty());
        assert!(store
            .db
            .batch("INSERT INTO sweep_runs(sweep, run_id) VALUES ('s', 'nope')")
            .is_err());
        assert!(store.decisions(None).unwrap().is_empty());
        assert!(store.sweep_search("s").unwrap().is_empty());
    }
}
