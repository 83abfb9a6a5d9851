//! The run store: one SQLite file (WAL, busy timeout, versioned schema) holding sweeps, runs,
//! their parameters, metrics and artifacts. The TUI and the reports read only this.

pub mod schema;

use anyhow::{Context, Result};
use rusqlite::{params, Connection, TransactionBehavior};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Lifecycle of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    Queued,
    Running,
    Finished,
    Failed,
    Stopped,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Queued,
        Status::Running,
        Status::Finished,
        Status::Failed,
        Status::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Finished => "finished",
            Status::Failed => "failed",
            Status::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

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

/// One metric sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub key: String,
    pub step: i64,
    pub epoch: i64,
    pub value: f64,
    pub wall: f64,
}

/// A run to register: id, seed, resolved config as JSON, flattened `key = value` params.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub id: String,
    pub seed: u64,
    pub config: String,
    pub params: Vec<(String, String)>,
}

impl NewRun {
    /// The registration of a resolved config.
    pub fn from_config(cfg: &crate::config::RunConfig) -> Self {
        NewRun {
            id: crate::sweep::spec::run_id(cfg),
            seed: cfg.seed,
            config: serde_json::to_string(cfg).expect("config serialises"),
            params: crate::sweep::spec::flatten(cfg),
        }
    }
}

impl Metric {
    /// From a `SELECT key, step, epoch, value, wall` row.
    pub fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Metric> {
        Ok(Metric {
            key: r.get(0)?,
            step: r.get(1)?,
            epoch: r.get(2)?,
            value: r.get(3)?,
            wall: r.get(4)?,
        })
    }
}

/// A row of the runs table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    pub id: String,
    pub sweep: String,
    pub seed: i64,
    pub status: String,
    pub error: Option<String>,
    pub pid: Option<i64>,
    pub heartbeat: Option<f64>,
    pub attempts: i64,
    pub started: Option<f64>,
    pub ended: Option<f64>,
    pub backend: Option<String>,
    pub device: Option<String>,
    pub git_commit: Option<String>,
    pub out_dir: Option<String>,
    /// The resolved run config as JSON.
    pub config: String,
}

/// A connection to the store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)
            .with_context(|| format!("{}: cannot open database", path.display()))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        schema::migrate(&mut store.conn)
            .with_context(|| format!("{}: cannot migrate database", path.display()))?;
        Ok(store)
    }

    /// Opens an existing database read-only-ish (fails when the file is missing).
    pub fn open_existing(path: &Path) -> Result<Store> {
        anyhow::ensure!(
            path.exists(),
            "{}: no such database (run a sweep first, or pass --db)",
            path.display()
        );
        Store::open(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Records a sweep and makes sure every run of it exists (new ones `queued`).
    pub fn register_sweep(&mut self, name: &str, file: &str, runs: &[NewRun]) -> Result<usize> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO sweeps(name, file, created) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET file = excluded.file",
            params![name, file, now()],
        )?;
        let mut added = 0;
        for NewRun {
            id,
            seed,
            config,
            params: flat,
        } in runs
        {
            added += tx.execute(
                "INSERT OR IGNORE INTO runs(id, sweep, seed, config, status, created)
                 VALUES (?1, ?2, ?3, ?4, 'queued', ?5)",
                params![id, name, *seed as i64, config, now()],
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO sweep_runs(sweep, run_id) VALUES (?1, ?2)",
                params![name, id],
            )?;
            for (k, v) in flat {
                tx.execute(
                    "INSERT OR IGNORE INTO params(run_id, key, value) VALUES (?1, ?2, ?3)",
                    params![id, k, v],
                )?;
            }
        }
        tx.commit()?;
        Ok(added)
    }

    /// Atomically moves a run from `queued` (or `stopped`, or `failed` when retrying) to
    /// `running`. Returns false when someone else got it first.
    pub fn claim(&mut self, id: &str, pid: u32, retry_failed: bool) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE runs SET status = 'running', pid = ?2, heartbeat = ?3, attempts = attempts + 1,
                 error = NULL, started = COALESCE(started, ?3), ended = NULL
             WHERE id = ?1 AND (status IN ('queued', 'stopped') OR (?4 AND status = 'failed'))",
            params![id, pid as i64, now(), retry_failed],
        )?;
        Ok(n == 1)
    }

    /// Worker bookkeeping at start: its pid, backend, device and binary version.
    pub fn mark_worker(
        &self,
        id: &str,
        pid: u32,
        backend: &str,
        device: &str,
        out_dir: &str,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET pid = ?2, heartbeat = ?3, backend = ?4, device = ?5, git_commit = ?6,
                 out_dir = ?7 WHERE id = ?1",
            params![
                id,
                pid as i64,
                now(),
                backend,
                device,
                env!("WORKBENCH_GIT_COMMIT"),
                out_dir
            ],
        )?;
        Ok(())
    }

    pub fn heartbeat(&self, id: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET heartbeat = ?2 WHERE id = ?1",
            params![id, now()],
        )?;
        Ok(())
    }

    /// Final (or stopping) status of a run.
    pub fn set_status(&self, id: &str, status: Status, error: Option<&str>) -> Result<()> {
        let ended = matches!(status, Status::Finished | Status::Failed | Status::Stopped).then(now);
        self.conn.execute(
            "UPDATE runs SET status = ?2, error = ?3, ended = ?4, pid = CASE WHEN ?2 = 'running' THEN pid ELSE NULL END
             WHERE id = ?1",
            params![id, status.as_str(), error, ended],
        )?;
        Ok(())
    }

    /// Writes metric rows in one transaction; a (run, key, step) written again replaces the
    /// old row, so a resumed run never duplicates its metrics.
    pub fn log_metrics(&mut self, run: &str, rows: &[Metric]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT OR REPLACE INTO metrics(run_id, key, step, epoch, value, wall)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut latest = tx.prepare_cached(
                "INSERT INTO latest_metrics(run_id, key, step, epoch, value, wall)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(run_id, key) DO UPDATE SET step = excluded.step, epoch = excluded.epoch,
                     value = excluded.value, wall = excluded.wall
                 WHERE excluded.step >= latest_metrics.step",
            )?;
            for m in rows {
                ins.execute(params![run, m.key, m.step, m.epoch, m.value, m.wall])?;
            }
            // only the newest row per key touches the latest table
            let mut newest: Vec<&Metric> = Vec::new();
            for m in rows {
                match newest.iter_mut().find(|x| x.key == m.key) {
                    Some(x) if x.step <= m.step => *x = m,
                    Some(_) => {}
                    None => newest.push(m),
                }
            }
            for m in newest {
                latest.execute(params![run, m.key, m.step, m.epoch, m.value, m.wall])?;
            }
        }
        tx.execute(
            "UPDATE runs SET heartbeat = ?2 WHERE id = ?1",
            params![run, now()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Drops metrics past `step` (rows logged after the checkpoint a run resumes from).
    pub fn truncate_metrics(&mut self, run: &str, step: i64) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM metrics WHERE run_id = ?1 AND step > ?2",
            params![run, step],
        )?;
        tx.execute("DELETE FROM latest_metrics WHERE run_id = ?1", params![run])?;
        tx.execute(
            "INSERT INTO latest_metrics(run_id, key, step, epoch, value, wall)
             SELECT run_id, key, step, epoch, value, wall FROM metrics m
             WHERE run_id = ?1 AND step = (SELECT MAX(step) FROM metrics WHERE run_id = ?1 AND key = m.key)",
            params![run],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn add_artifact(
        &self,
        run: &str,
        kind: &str,
        path: &str,
        epoch: Option<i64>,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO artifacts(run_id, kind, path, epoch, created) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![run, kind, path, epoch, now()],
        )?;
        Ok(())
    }

    pub fn remove_artifacts_like(&self, run: &str, kind: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM artifacts WHERE run_id = ?1 AND kind = ?2",
            params![run, kind],
        )?;
        Ok(())
    }

    fn run_from_row(r: &rusqlite::Row) -> rusqlite::Result<RunRow> {
        Ok(RunRow {
            id: r.get(0)?,
            sweep: r.get(1)?,
            seed: r.get(2)?,
            status: r.get(3)?,
            error: r.get(4)?,
            pid: r.get(5)?,
            heartbeat: r.get(6)?,
            attempts: r.get(7)?,
            started: r.get(8)?,
            ended: r.get(9)?,
            backend: r.get(10)?,
            device: r.get(11)?,
            git_commit: r.get(12)?,
            out_dir: r.get(13)?,
            config: r.get(14)?,
        })
    }

    const RUN_COLUMNS: &'static str =
        "r.id, r.sweep, r.seed, r.status, r.error, r.pid, r.heartbeat, r.attempts, \
        r.started, r.ended, r.backend, r.device, r.git_commit, r.out_dir, r.config";

    /// Runs, optionally of one sweep and/or one status, oldest first.
    pub fn runs(&self, sweep: Option<&str>, status: Option<Status>) -> Result<Vec<RunRow>> {
        let sql = format!(
            "SELECT {} FROM runs r
             WHERE (?1 IS NULL OR r.id IN (SELECT run_id FROM sweep_runs WHERE sweep = ?1))
               AND (?2 IS NULL OR r.status = ?2)
             ORDER BY r.created, r.id",
            Self::RUN_COLUMNS
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map(
            params![sweep, status.map(|s| s.as_str())],
            Self::run_from_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// One run by id or unique id prefix.
    pub fn run(&self, id: &str) -> Result<RunRow> {
        let sql = format!(
            "SELECT {} FROM runs r WHERE r.id LIKE ?1 || '%' LIMIT 2",
            Self::RUN_COLUMNS
        );
        let mut st = self.conn.prepare(&sql)?;
        let rows: Vec<RunRow> = st
            .query_map(params![id], Self::run_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        match rows.len() {
            0 => anyhow::bail!("no run with id {id:?} in {}", self.path.display()),
            1 => Ok(rows.into_iter().next().unwrap()),
            _ => anyhow::bail!("run id prefix {id:?} is ambiguous; give more characters"),
        }
    }

    /// Newest value of every metric of a run.
    pub fn latest_metrics(&self, run: &str) -> Result<Vec<Metric>> {
        let mut st = self.conn.prepare_cached(
            "SELECT key, step, epoch, value, wall FROM latest_metrics WHERE run_id = ?1 ORDER BY key",
        )?;
        let rows = st.query_map(params![run], Metric::from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Newest value of each of `keys` for every run (for run tables), keyed by run id.
    pub fn latest_values(&self, key: &str) -> Result<std::collections::HashMap<String, f64>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT run_id, value FROM latest_metrics WHERE key = ?1")?;
        let rows = st.query_map(params![key], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The whole series of one metric of a run, by step.
    pub fn series(&self, run: &str, key: &str) -> Result<Vec<Metric>> {
        let mut st = self.conn.prepare_cached(
            "SELECT key, step, epoch, value, wall FROM metrics WHERE run_id = ?1 AND key = ?2 ORDER BY step",
        )?;
        let rows = st.query_map(params![run, key], Metric::from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn params(&self, run: &str) -> Result<Vec<(String, String)>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT key, value FROM params WHERE run_id = ?1 ORDER BY key")?;
        let rows = st.query_map(params![run], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn artifacts(&self, run: &str) -> Result<Vec<(String, String, Option<i64>)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT kind, path, epoch FROM artifacts WHERE run_id = ?1 ORDER BY created, path",
        )?;
        let rows = st.query_map(params![run], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Stores the spectra of one epoch (replacing an earlier write of the same epoch).
    pub fn log_spectra(
        &mut self,
        run: &str,
        epoch: i64,
        spectra: &[crate::analysis::spectrum::ScaleSpectrum],
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for s in spectra {
            tx.execute(
                "INSERT OR REPLACE INTO spectra(run_id, epoch, scale, energy_ratio, commutator, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![run, epoch, s.scale, s.energy_ratio, s.commutator, serde_json::to_string(s)?],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every stored spectrum of a run: (epoch, spectrum), by epoch then scale.
    pub fn spectra(
        &self,
        run: &str,
    ) -> Result<Vec<(i64, crate::analysis::spectrum::ScaleSpectrum)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT epoch, detail FROM spectra WHERE run_id = ?1 ORDER BY epoch, scale",
        )?;
        let rows = st.query_map(params![run], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (epoch, detail) = row?;
            out.push((
                epoch,
                serde_json::from_str(&detail).context("corrupt spectrum row")?,
            ));
        }
        Ok(out)
    }

    /// Stores a histogram over [lo, hi].
    pub fn log_histogram(
        &self,
        run: &str,
        name: &str,
        epoch: i64,
        lo: f64,
        hi: f64,
        counts: &[u64],
    ) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO histograms(run_id, name, epoch, lo, hi, counts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![run, name, epoch, lo, hi, serde_json::to_string(counts)?],
        )?;
        Ok(())
    }

    /// `PRAGMA integrity_check` result ("ok" when healthy).
    pub fn integrity_check(&self) -> Result<String> {
        Ok(self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}
