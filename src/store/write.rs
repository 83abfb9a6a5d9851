//! The write side of the store: registering sweeps, the run lifecycle, metrics, artifacts,
//! spectra and histograms. Every multi-row write is one transaction.

use anyhow::Result;
use rusqlite::{params, Transaction, TransactionBehavior};

use super::claim::{ensure_held, Claim};
use super::rows::{Metric, NewRun, ScaleSpectrum, Status};
use super::{now, Store};

impl Store {
    /// Records a sweep and makes sure every run of it exists (new ones `queued`). Returns how
    /// many runs were new.
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
        {
            let mut run = tx.prepare_cached(
                "INSERT OR IGNORE INTO runs(id, sweep, seed, config, status, created)
                 VALUES (?1, ?2, ?3, ?4, 'queued', ?5)",
            )?;
            let mut member = tx.prepare_cached(
                "INSERT OR IGNORE INTO sweep_runs(sweep, run_id) VALUES (?1, ?2)",
            )?;
            let mut param = tx.prepare_cached(
                "INSERT OR IGNORE INTO params(run_id, key, value) VALUES (?1, ?2, ?3)",
            )?;
            for r in runs {
                added += run.execute(params![r.id, name, r.seed as i64, r.config, now()])?;
                member.execute(params![name, r.id])?;
                for (k, v) in &r.params {
                    param.execute(params![r.id, k, v])?;
                }
            }
        }
        tx.commit()?;
        Ok(added)
    }

    /// Gives run `old` the id `new` everywhere (runs registered under an older id scheme).
    /// Returns false when `new` is taken or `old` does not exist.
    pub fn rename_run(&mut self, old: &str, new: &str) -> Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let taken: i64 = tx.query_row(
            "SELECT COUNT(*) FROM runs WHERE id = ?1",
            params![new],
            |r| r.get(0),
        )?;
        let exists: i64 = tx.query_row(
            "SELECT COUNT(*) FROM runs WHERE id = ?1",
            params![old],
            |r| r.get(0),
        )?;
        if taken > 0 || exists == 0 {
            return Ok(false);
        }
        tx.execute_batch("PRAGMA defer_foreign_keys = ON")?;
        for table in [
            "sweep_runs",
            "params",
            "metrics",
            "latest_metrics",
            "artifacts",
            "spectra",
            "histograms",
        ] {
            tx.execute(
                &format!("UPDATE {table} SET run_id = ?2 WHERE run_id = ?1"),
                params![old, new],
            )?;
        }
        tx.execute("UPDATE runs SET id = ?2 WHERE id = ?1", params![old, new])?;
        tx.commit()?;
        Ok(true)
    }

    /// Notes which `workbench sweep` process drives a sweep (0 = none).
    pub fn set_sweep_runner(&self, sweep: &str, pid: u32) -> Result<()> {
        let pid = (pid != 0).then_some(pid as i64);
        self.conn.execute(
            "UPDATE sweeps SET runner_pid = ?2 WHERE name = ?1",
            params![sweep, pid],
        )?;
        Ok(())
    }

    /// Notes the log file of a sweep started detached.
    pub fn set_sweep_log(&self, sweep: &str, log: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE sweeps SET log = ?2 WHERE name = ?1",
            params![sweep, log],
        )?;
        Ok(())
    }

    /// Worker bookkeeping at start: its pid, backend, device and binary version.
    pub fn mark_worker(
        &mut self,
        claim: &Claim,
        pid: u32,
        backend: &str,
        device: &str,
        out_dir: &str,
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        ensure_held(&tx, claim)?;
        tx.execute(
            "UPDATE runs SET pid = ?2, heartbeat = ?3, backend = ?4, device = ?5, git_commit = ?6,
                 out_dir = ?7 WHERE id = ?1",
            params![
                claim.run,
                pid as i64,
                now(),
                backend,
                device,
                env!("WORKBENCH_GIT_COMMIT"),
                out_dir
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Sets a run's status by hand (an operator's or a test's write: not fenced; a worker
    /// ends its run with [`Store::finish`]).
    pub fn set_status(&self, id: &str, status: Status, error: Option<&str>) -> Result<()> {
        let ended = matches!(status, Status::Finished | Status::Failed | Status::Stopped).then(now);
        self.conn.execute(
            "UPDATE runs SET status = ?2, error = ?3, ended = ?4, stop_requested = 0,
                 pid = CASE WHEN ?2 = 'running' THEN pid ELSE NULL END
             WHERE id = ?1",
            params![id, status.as_str(), error, ended],
        )?;
        Ok(())
    }

    /// Asks the worker of a running run to checkpoint and stop at its next step. Returns
    /// false when the run is not running.
    pub fn request_stop(&self, id: &str) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE runs SET stop_requested = 1 WHERE id = ?1 AND status = 'running'",
            params![id],
        )?;
        Ok(n == 1)
    }

    /// Puts a failed or stopped run back in the queue with a fresh attempt budget; the next
    /// `sweep` of its sweep resumes it from its last checkpoint. Returns false for other
    /// statuses.
    pub fn requeue(&self, id: &str) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE runs SET status = 'queued', error = NULL, attempts = 0, pid = NULL,
                 stop_requested = 0
             WHERE id = ?1 AND status IN ('failed', 'stopped')",
            params![id],
        )?;
        Ok(n == 1)
    }

    /// Writes metric rows in one transaction; a (run, key, step) written again replaces the
    /// old row, so a resumed run never duplicates its metrics. A non-finite value is refused
    /// (SQLite would store NaN as NULL) and nothing of the batch is written.
    pub fn log_metrics(&mut self, run: &str, rows: &[Metric]) -> Result<()> {
        self.write_metrics(run, None, rows)
    }

    /// [`Store::log_metrics`] by the worker holding `claim`: refused with
    /// [`super::LostClaim`] (nothing written) when the claim was lost.
    pub fn log_metrics_held(&mut self, claim: &Claim, rows: &[Metric]) -> Result<()> {
        self.write_metrics(&claim.run, Some(claim), rows)
    }

    fn write_metrics(&mut self, run: &str, fence: Option<&Claim>, rows: &[Metric]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        ensure_finite(run, rows)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(claim) = fence {
            ensure_held(&tx, claim)?;
        }
        insert_metrics(&tx, run, rows)?;
        tx.commit()?;
        Ok(())
    }

    /// Replaces the whole history of the run `claim` holds (metrics and spectra) by `rows`
    /// and records where they came from (`provenance`, JSON), in one transaction: a run
    /// adopted from a checkpoint another store watched gets what that checkpoint holds.
    pub fn replace_history(
        &mut self,
        claim: &Claim,
        rows: &[Metric],
        provenance: &str,
    ) -> Result<()> {
        let run = claim.run.as_str();
        ensure_finite(run, rows)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        ensure_held(&tx, claim)?;
        for table in ["metrics", "latest_metrics", "spectra"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE run_id = ?1"),
                params![run],
            )?;
        }
        insert_metrics(&tx, run, rows)?;
        tx.execute(
            "UPDATE runs SET provenance = ?2 WHERE id = ?1",
            params![run, provenance],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Drops metrics past `step` (rows logged after the checkpoint a run resumes from).
    pub fn truncate_metrics(&mut self, claim: &Claim, step: i64) -> Result<()> {
        let run = claim.run.as_str();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        ensure_held(&tx, claim)?;
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

    /// Replaces the artifacts of `kind` of a run by one (the worker holding `claim`).
    pub fn set_artifact(
        &mut self,
        claim: &Claim,
        kind: &str,
        path: &str,
        epoch: Option<i64>,
    ) -> Result<()> {
        let run = claim.run.as_str();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        ensure_held(&tx, claim)?;
        tx.execute(
            "DELETE FROM artifacts WHERE run_id = ?1 AND kind = ?2",
            params![run, kind],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO artifacts(run_id, kind, path, epoch, created) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![run, kind, path, epoch, now()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Stores the spectra of one epoch (replacing an earlier write of the same epoch).
    pub fn log_spectra(&mut self, run: &str, epoch: i64, spectra: &[ScaleSpectrum]) -> Result<()> {
        self.write_spectra(run, None, epoch, spectra)
    }

    /// [`Store::log_spectra`] by the worker holding `claim`.
    pub fn log_spectra_held(
        &mut self,
        claim: &Claim,
        epoch: i64,
        spectra: &[ScaleSpectrum],
    ) -> Result<()> {
        self.write_spectra(&claim.run, Some(claim), epoch, spectra)
    }

    fn write_spectra(
        &mut self,
        run: &str,
        fence: Option<&Claim>,
        epoch: i64,
        spectra: &[ScaleSpectrum],
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(claim) = fence {
            ensure_held(&tx, claim)?;
        }
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
}

/// Refuses non-finite values (SQLite would store NaN as NULL), naming the first.
fn ensure_finite(run: &str, rows: &[Metric]) -> Result<()> {
    if let Some(bad) = rows.iter().find(|m| !m.value.is_finite()) {
        anyhow::bail!(
            "metric {} of run {run} at step {} is {}; non-finite values are not stored",
            bad.key,
            bad.step,
            bad.value
        );
    }
    Ok(())
}

/// Inserts metric rows (a (run, key, step) written again replaces the old row), keeps the
/// latest table in step, and counts the write as a heartbeat.
fn insert_metrics(tx: &Transaction, run: &str, rows: &[Metric]) -> Result<()> {
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
    tx.execute(
        "UPDATE runs SET heartbeat = MAX(COALESCE(heartbeat, 0), ?2) WHERE id = ?1",
        params![run, now()],
    )?;
    Ok(())
}
