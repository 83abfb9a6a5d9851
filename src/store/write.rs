//! The write side of the store: registering sweeps, the run lifecycle, metrics, artifacts,
//! spectra and histograms. Every write is one transaction ([`Db::write`]); times are the
//! database's clock (`{now}`), so rows written from every node of a cluster compare.

use anyhow::Result;

use super::claim::{ensure_held, Claim, Owner};
use super::db::{values_list, Db, Dialect, Param};
use super::rows::{Metric, NewRun, ScaleSpectrum, Status};
use super::Store;

/// Rows per multi-row `INSERT` on SQLite (6 parameters each: well under its limit).
const INSERT_CHUNK: usize = 256;

impl Store {
    /// Records a sweep and makes sure every run of it exists (new ones `queued`). Returns how
    /// many runs were new.
    pub fn register_sweep(&mut self, name: &str, file: &str, runs: &[NewRun]) -> Result<usize> {
        self.db.write(|db| {
            db.execute(
                "INSERT INTO sweeps(name, file, created) VALUES (?1, ?2, {now})
                 ON CONFLICT(name) DO UPDATE SET file = excluded.file",
                &[&name, &file],
            )?;
            let mut added = 0;
            for r in runs {
                added += db.execute(
                    "INSERT INTO runs(id, sweep, seed, config, status, created)
                     VALUES (?1, ?2, ?3, ?4, 'queued', {now}) ON CONFLICT DO NOTHING",
                    &[&r.id, &name, &(r.seed as i64), &r.config],
                )?;
                db.execute(
                    "INSERT INTO sweep_runs(sweep, run_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    &[&name, &r.id],
                )?;
                for (k, v) in &r.params {
                    db.execute(
                        "INSERT INTO params(run_id, key, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT DO NOTHING",
                        &[&r.id, k, v],
                    )?;
                }
            }
            Ok(added)
        })
    }

    /// Stores an imported log as the finished, read-only run `id` of the sweep `references`
    /// (created when missing), its source in `provenance` (JSON with a `reference` key), in
    /// one transaction; a run of that id is replaced only with `replace`. Returns whether it
    /// replaced one.
    pub fn import_reference(
        &mut self,
        id: &str,
        provenance: &str,
        rows: &[Metric],
        replace: bool,
    ) -> Result<bool> {
        ensure_finite(id, rows)?;
        self.db.write(|db| {
            let existing: i64 = db
                .query_one("SELECT COUNT(*) FROM runs WHERE id = ?1", &[&id])?
                .get(0)?;
            if existing > 0 {
                anyhow::ensure!(
                    replace,
                    "{id} exists already; pass --replace to import it again"
                );
                for table in ["metrics", "latest_metrics", "sweep_runs", "params"] {
                    db.execute(&format!("DELETE FROM {table} WHERE run_id = ?1"), &[&id])?;
                }
                db.execute("DELETE FROM runs WHERE id = ?1", &[&id])?;
            }
            db.execute(
                "INSERT INTO sweeps(name, file, created) VALUES ('references', '-', {now})
                 ON CONFLICT(name) DO NOTHING",
                &[],
            )?;
            db.execute(
                "INSERT INTO runs(id, sweep, seed, config, status, created, started, ended, provenance)
                 VALUES (?1, 'references', 0, '{}', 'finished', {now}, {now}, {now}, ?2)",
                &[&id, &provenance],
            )?;
            db.execute(
                "INSERT INTO sweep_runs(sweep, run_id) VALUES ('references', ?1)",
                &[&id],
            )?;
            insert_metrics(db, id, rows)?;
            Ok(existing > 0)
        })
    }

    /// Gives run `old` the id `new` everywhere (runs registered under an older id scheme).
    /// Returns false when `new` is taken or `old` does not exist.
    pub fn rename_run(&mut self, old: &str, new: &str) -> Result<bool> {
        self.db.write(|db| {
            let count = |id: &str| -> Result<i64> {
                db.query_one("SELECT COUNT(*) FROM runs WHERE id = ?1", &[&id])?
                    .get(0)
            };
            if count(new)? > 0 || count(old)? == 0 {
                return Ok(false);
            }
            db.batch(match db.dialect() {
                Dialect::Sqlite => "PRAGMA defer_foreign_keys = ON",
                Dialect::Postgres => "SET CONSTRAINTS ALL DEFERRED",
            })?;
            for table in super::RUN_TABLES {
                db.execute(
                    &format!("UPDATE {table} SET run_id = ?2 WHERE run_id = ?1"),
                    &[&old, &new],
                )?;
            }
            db.execute("UPDATE runs SET id = ?2 WHERE id = ?1", &[&old, &new])?;
            Ok(true)
        })
    }

    /// Gives run `id` the probe settings of `run` (same id: only its `[probe]` differs) in one
    /// transaction: its stored config and params become `run`'s; with `stale` (the probe
    /// recipe changed) its probe results and their PCA are dropped; with `requeue` a finished
    /// run goes back in the queue, so the next worker probes what it lacks without
    /// pre-training again. A run that is not finished (or not `queued`, `stopped`, `failed`)
    /// is left alone. Returns whether the run was changed.
    pub fn set_probe_settings(&mut self, run: &NewRun, stale: bool, requeue: bool) -> Result<bool> {
        let id = run.id.as_str();
        self.db.write(|db| {
            let n = db.execute(
                "UPDATE runs SET config = ?2,
                     status = CASE WHEN ?3 AND status = 'finished' THEN 'queued' ELSE status END,
                     attempts = CASE WHEN ?3 AND status = 'finished' THEN 0 ELSE attempts END,
                     ended = CASE WHEN ?3 AND status = 'finished' THEN NULL ELSE ended END
                 WHERE id = ?1 AND status IN ('finished', 'queued', 'stopped', 'failed')",
                &[&id, &run.config, &requeue],
            )?;
            if n == 0 {
                return Ok(false);
            }
            db.execute("DELETE FROM params WHERE run_id = ?1", &[&id])?;
            for (k, v) in &run.params {
                db.execute(
                    "INSERT INTO params(run_id, key, value) VALUES (?1, ?2, ?3)",
                    &[&id, k, v],
                )?;
            }
            if stale {
                for table in ["metrics", "latest_metrics"] {
                    db.execute(
                        &format!("DELETE FROM {table} WHERE run_id = ?1 AND key LIKE 'probe/%'"),
                        &[&id],
                    )?;
                }
                db.execute(
                    "DELETE FROM embeddings WHERE run_id = ?1 AND name = 'pca'",
                    &[&id],
                )?;
            }
            Ok(true)
        })
    }

    /// Notes which `workbench sweep` process drives a sweep (0 = none).
    pub fn set_sweep_runner(&self, sweep: &str, pid: u32) -> Result<()> {
        let pid = (pid != 0).then_some(pid);
        self.db.write(|db| {
            db.execute(
                "UPDATE sweeps SET runner_pid = ?2 WHERE name = ?1",
                &[&sweep, &pid],
            )
        })?;
        Ok(())
    }

    /// Notes the log file of a sweep started detached.
    pub fn set_sweep_log(&self, sweep: &str, log: &str) -> Result<()> {
        self.db.write(|db| {
            db.execute(
                "UPDATE sweeps SET log = ?2 WHERE name = ?1",
                &[&sweep, &log],
            )
        })?;
        Ok(())
    }

    /// Worker bookkeeping at start: who it is (host, pid, SLURM job), backend, device and
    /// binary version.
    pub fn mark_worker(
        &mut self,
        claim: &Claim,
        owner: &Owner,
        backend: &str,
        device: &str,
        out_dir: &str,
    ) -> Result<()> {
        self.db.write(|db| {
            ensure_held(db, claim)?;
            db.execute(
                "UPDATE runs SET pid = ?2, host = ?7, slurm_job = ?8, heartbeat = {now},
                     backend = ?3, device = ?4, git_commit = ?5, out_dir = ?6 WHERE id = ?1",
                &[
                    &claim.run,
                    &owner.pid,
                    &backend,
                    &device,
                    &env!("WORKBENCH_GIT_COMMIT"),
                    &out_dir,
                    &owner.host,
                    &owner.slurm_job,
                ],
            )
        })?;
        Ok(())
    }

    /// Sets a run's status by hand (an operator's or a test's write: not fenced; a worker
    /// ends its run with [`Store::finish`]).
    pub fn set_status(&self, id: &str, status: Status, error: Option<&str>) -> Result<()> {
        let ends = matches!(
            status,
            Status::Finished | Status::Failed | Status::Stopped | Status::Pruned
        );
        self.db.write(|db| {
            db.execute(
                "UPDATE runs SET status = ?2, error = ?3,
                     ended = CASE WHEN ?4 THEN {now} ELSE NULL END, stop_requested = 0,
                     pid = CASE WHEN ?2 = 'running' THEN pid ELSE NULL END
                 WHERE id = ?1",
                &[&id, &status.as_str(), &error, &ends],
            )
        })?;
        Ok(())
    }

    /// Asks the worker of a running run to checkpoint and stop at its next step. Returns
    /// false when the run is not running.
    pub fn request_stop(&self, id: &str) -> Result<bool> {
        let n = self.db.write(|db| {
            db.execute(
                "UPDATE runs SET stop_requested = 1 WHERE id = ?1 AND status = 'running'",
                &[&id],
            )
        })?;
        Ok(n == 1)
    }

    /// Puts a failed or stopped run back in the queue with a fresh attempt budget; the next
    /// `sweep` of its sweep resumes it from its last checkpoint. Returns false for other
    /// statuses.
    pub fn requeue(&self, id: &str) -> Result<bool> {
        let n = self.db.write(|db| {
            db.execute(
                "UPDATE runs SET status = 'queued', error = NULL, attempts = 0, pid = NULL,
                     stop_requested = 0
                 WHERE id = ?1 AND status IN ('failed', 'stopped')",
                &[&id],
            )
        })?;
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
        self.db.write(|db| {
            if let Some(claim) = fence {
                ensure_held(db, claim)?;
            }
            insert_metrics(db, run, rows)
        })
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
        self.db.write(|db| {
            ensure_held(db, claim)?;
            for table in [
                "metrics",
                "latest_metrics",
                "spectra",
                "pictures",
                "embeddings",
            ] {
                db.execute(&format!("DELETE FROM {table} WHERE run_id = ?1"), &[&run])?;
            }
            insert_metrics(db, run, rows)?;
            db.execute(
                "UPDATE runs SET provenance = ?2 WHERE id = ?1",
                &[&run, &provenance],
            )?;
            Ok(())
        })
    }

    /// Drops metrics past `step` (rows logged after the checkpoint a run resumes from). Probe
    /// results are kept: they are written whole once their probes end, count their own
    /// epochs as steps, and a resumed run only probes what they lack.
    pub fn truncate_metrics(&mut self, claim: &Claim, step: i64) -> Result<()> {
        let run = claim.run.as_str();
        self.db.write(|db| {
            ensure_held(db, claim)?;
            db.execute(
                "DELETE FROM metrics WHERE run_id = ?1 AND step > ?2 AND key NOT LIKE 'probe/%'",
                &[&run, &step],
            )?;
            db.execute("DELETE FROM latest_metrics WHERE run_id = ?1", &[&run])?;
            db.execute(
                "INSERT INTO latest_metrics(run_id, key, step, epoch, value, wall)
                 SELECT run_id, key, step, epoch, value, wall FROM metrics m
                 WHERE run_id = ?1
                   AND step = (SELECT MAX(step) FROM metrics WHERE run_id = ?1 AND key = m.key)",
                &[&run],
            )?;
            Ok(())
        })
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
        self.db.write(|db| {
            ensure_held(db, claim)?;
            db.execute(
                "DELETE FROM artifacts WHERE run_id = ?1 AND (kind = ?2 OR path = ?3)",
                &[&run, &kind, &path],
            )?;
            db.execute(
                "INSERT INTO artifacts(run_id, kind, path, epoch, created)
                 VALUES (?1, ?2, ?3, ?4, {now})",
                &[&run, &kind, &path, &epoch],
            )?;
            Ok(())
        })
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
        self.db.write(|db| {
            if let Some(claim) = fence {
                ensure_held(db, claim)?;
            }
            for s in spectra {
                db.execute(
                    "INSERT INTO spectra(run_id, epoch, scale, energy_ratio, commutator, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(run_id, epoch, scale) DO UPDATE SET
                         energy_ratio = excluded.energy_ratio,
                         commutator = excluded.commutator, detail = excluded.detail",
                    &[
                        &run,
                        &epoch,
                        &s.scale,
                        &s.energy_ratio,
                        &s.commutator,
                        &serde_json::to_string(s)?,
                    ],
                )?;
            }
            Ok(())
        })
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
        let counts = serde_json::to_string(counts)?;
        self.db.write(|db| {
            db.execute(
                "INSERT INTO histograms(run_id, name, epoch, lo, hi, counts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(run_id, name, epoch) DO UPDATE SET
                     lo = excluded.lo, hi = excluded.hi, counts = excluded.counts",
                &[&run, &name, &epoch, &lo, &hi, &counts],
            )
        })?;
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

/// Inserts metric rows (a (run, key, step) written again replaces the old row) in multi-row
/// statements of [`INSERT_CHUNK`] rows, keeps the latest table in step, and counts the write
/// as a heartbeat.
fn insert_metrics(db: &Db, run: &str, rows: &[Metric]) -> Result<()> {
    // one row per (key, step), the last written winning: an upsert may not touch a row twice
    let mut last: std::collections::HashMap<(&str, i64), usize> = Default::default();
    for (i, m) in rows.iter().enumerate() {
        last.insert((m.key.as_str(), m.step), i);
    }
    let mut unique: Vec<&Metric> = Vec::with_capacity(last.len());
    for (i, m) in rows.iter().enumerate() {
        if last[&(m.key.as_str(), m.step)] == i {
            unique.push(m);
        }
    }
    let chunk = match db.dialect() {
        Dialect::Sqlite => INSERT_CHUNK,
        Dialect::Postgres => unique.len().max(1),
    };
    for rows in unique.chunks(chunk) {
        upsert_metric_rows(db, "metrics", "(run_id, key, step)", run, rows)?;
    }
    // only the newest row per key touches the latest table
    let mut newest: Vec<&Metric> = Vec::new();
    for m in &unique {
        match newest.iter_mut().find(|x| x.key == m.key) {
            Some(x) if x.step <= m.step => *x = m,
            Some(_) => {}
            None => newest.push(m),
        }
    }
    for rows in newest.chunks(chunk) {
        upsert_metric_rows(db, "latest_metrics", "(run_id, key)", run, rows)?;
    }
    db.execute(
        "UPDATE runs SET heartbeat = GREATEST(COALESCE(heartbeat, 0), {now}) WHERE id = ?1",
        &[&run],
    )?;
    Ok(())
}

/// One upsert of metric rows into `table` (keyed by `key`); into `latest_metrics` a row
/// only replaces an older step. SQLite: a multi-row `VALUES` list; PostgreSQL: the columns
/// as six arrays through `unnest` (one small statement however many rows).
fn upsert_metric_rows(db: &Db, table: &str, key: &str, run: &str, rows: &[&Metric]) -> Result<()> {
    let newer_only = if table == "latest_metrics" {
        " WHERE excluded.step >= latest_metrics.step"
    } else {
        ""
    };
    let update = format!(
        "ON CONFLICT{key} DO UPDATE SET step = excluded.step, epoch = excluded.epoch,
             value = excluded.value, wall = excluded.wall{newer_only}"
    );
    match db.dialect() {
        Dialect::Sqlite => {
            let sql = format!(
                "INSERT INTO {table}(run_id, key, step, epoch, value, wall) VALUES {} {update}",
                values_list(rows.len(), 6, 1)
            );
            let mut params: Vec<&dyn Param> = Vec::with_capacity(rows.len() * 6);
            for m in rows {
                params.extend_from_slice(&[&run, &m.key, &m.step, &m.epoch, &m.value, &m.wall]);
            }
            db.execute(&sql, &params)?;
        }
        Dialect::Postgres => {
            let insert = format!(
                "INSERT INTO {table}(run_id, key, step, epoch, value, wall)
                 SELECT ?1, k, s, e, v, w FROM unnest(CAST(?2 AS TEXT[]), CAST(?3 AS BIGINT[]),
                     CAST(?4 AS BIGINT[]), CAST(?5 AS DOUBLE PRECISION[]),
                     CAST(?6 AS DOUBLE PRECISION[])) AS u(k, s, e, v, w)"
            );
            let keys: Vec<String> = rows.iter().map(|m| m.key.clone()).collect();
            let steps: Vec<i64> = rows.iter().map(|m| m.step).collect();
            let epochs: Vec<i64> = rows.iter().map(|m| m.epoch).collect();
            let values: Vec<f64> = rows.iter().map(|m| m.value).collect();
            let walls: Vec<f64> = rows.iter().map(|m| m.wall).collect();
            let params: [&dyn Param; 6] = [&run, &keys, &steps, &epochs, &values, &walls];
            if table == "metrics" {
                // new steps are the rule (a resumed run first drops what it will log again): a
                // plain insert is a third faster than an upsert; a step written again falls
                // back to the upsert
                db.batch("SAVEPOINT new_rows")?;
                if db.execute(&insert, &params).is_ok() {
                    return db.batch("RELEASE SAVEPOINT new_rows");
                }
                db.batch("ROLLBACK TO SAVEPOINT new_rows")?;
            }
            db.execute(&format!("{insert} {update}"), &params)?;
        }
    }
    Ok(())
}
