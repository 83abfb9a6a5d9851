//! The read side of the store: one typed API for the CLI views, the TUI and the report.

use anyhow::{Context, Result};
use std::collections::HashMap;

use super::db::{Dialect, FromValue, Row, Value};
use super::rows::{
    Artifact, Histogram, Metric, RunRow, SpectrumRow, Status, SweepProgress, SweepRow,
};
use super::schema;
use super::Store;

impl FromValue for Status {
    fn from_value(v: &Value) -> Result<Status> {
        let s = String::from_value(v)?;
        Status::parse(&s).with_context(|| format!("unknown status {s:?}"))
    }
}

/// A point of a downsampled metric series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesPoint {
    pub step: i64,
    pub epoch: i64,
    pub value: f64,
    pub wall: f64,
}

impl Metric {
    /// From a `SELECT key, step, epoch, value, wall` row.
    fn from_row(r: &Row) -> Result<Metric> {
        Ok(Metric {
            key: r.get(0)?,
            step: r.get(1)?,
            epoch: r.get(2)?,
            value: r.get(3)?,
            wall: r.get(4)?,
        })
    }
}

const RUN_COLUMNS: &str = "r.id, r.sweep, r.seed, r.status, r.error, r.pid, r.heartbeat, r.attempts, \
    r.created, r.started, r.ended, r.backend, r.device, r.git_commit, r.out_dir, r.stop_requested, r.config, r.provenance, \
    r.host, r.slurm_job, r.preemptions";

fn run_from_row(r: &Row) -> Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        sweep: r.get(1)?,
        seed: r.get(2)?,
        status: r.get(3)?,
        error: r.get(4)?,
        pid: r.get(5)?,
        heartbeat: r.get(6)?,
        attempts: r.get(7)?,
        created: r.get(8)?,
        started: r.get(9)?,
        ended: r.get(10)?,
        backend: r.get(11)?,
        device: r.get(12)?,
        git_commit: r.get(13)?,
        out_dir: r.get(14)?,
        stop_requested: r.get(15)?,
        config: r.get(16)?,
        provenance: r.get(17)?,
        host: r.get(18)?,
        slurm_job: r.get(19)?,
        preemptions: r.get(20)?,
    })
}

/// Every row through `f`.
fn collect<T>(rows: Vec<Row>, f: impl Fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(f).collect()
}

impl Store {
    /// The id this store was given when it was created: run folders record it (`run.json`)
    /// so that a checkpoint is only resumed by the store that watched it train.
    pub fn store_id(&self) -> Result<String> {
        self.db
            .query_one("SELECT value FROM store_meta WHERE key = 'store_id'", &[])?
            .get(0)
    }

    /// The database's clock, seconds since the Unix epoch: what heartbeats are stamped with,
    /// so the staleness of a worker on any node is measured against it.
    pub fn db_now(&self) -> Result<f64> {
        self.db.query_one("SELECT {now}", &[])?.get(0)
    }

    /// Runs, optionally of one sweep and/or one status, oldest first.
    pub fn runs(&self, sweep: Option<&str>, status: Option<Status>) -> Result<Vec<RunRow>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs r
             WHERE (CAST(?1 AS TEXT) IS NULL
                    OR r.id IN (SELECT run_id FROM sweep_runs WHERE sweep = ?1))
               AND (CAST(?2 AS TEXT) IS NULL OR r.status = ?2)
             ORDER BY r.created, r.{{seq}}"
        );
        let rows = self
            .db
            .query(&sql, &[&sweep, &status.map(|s| s.as_str())])?;
        collect(rows, run_from_row)
    }

    /// One run by id or unique id prefix (the prefix is matched literally: `%` and `_` are
    /// ordinary characters).
    pub fn run(&self, id: &str) -> Result<RunRow> {
        anyhow::ensure!(!id.is_empty(), "empty run id");
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs r
             WHERE substr(r.id, 1, length(CAST(?1 AS TEXT))) = ?1 LIMIT 2"
        );
        let mut rows = collect(self.db.query(&sql, &[&id])?, run_from_row)?;
        match rows.len() {
            0 => anyhow::bail!("no run with id {id:?} in {}", self.locator),
            1 => Ok(rows.remove(0)),
            _ => anyhow::bail!("run id prefix {id:?} is ambiguous; give more characters"),
        }
    }

    /// Newest value of every metric of a run, by key.
    pub fn latest_metrics(&self, run: &str) -> Result<Vec<Metric>> {
        let rows = self.db.query(
            "SELECT key, step, epoch, value, wall FROM latest_metrics WHERE run_id = ?1 ORDER BY key",
            &[&run],
        )?;
        collect(rows, Metric::from_row)
    }

    /// Newest value of metric `key` for every run that has it, keyed by run id.
    pub fn latest_values(&self, key: &str) -> Result<HashMap<String, f64>> {
        let rows = self.db.query(
            "SELECT run_id, value FROM latest_metrics WHERE key = ?1",
            &[&key],
        )?;
        rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?))).collect()
    }

    /// Newest row of every metric of every run whose key starts with `prefix` (e.g. `probe/`),
    /// keyed by run id.
    pub fn latest_with_prefix(&self, prefix: &str) -> Result<HashMap<String, Vec<Metric>>> {
        let rows = self.db.query(
            "SELECT run_id, key, step, epoch, value, wall FROM latest_metrics
             WHERE substr(key, 1, length(CAST(?1 AS TEXT))) = ?1 ORDER BY run_id, key",
            &[&prefix],
        )?;
        let mut out: HashMap<String, Vec<Metric>> = HashMap::new();
        for r in &rows {
            let m = Metric {
                key: r.get(1)?,
                step: r.get(2)?,
                epoch: r.get(3)?,
                value: r.get(4)?,
                wall: r.get(5)?,
            };
            out.entry(r.get(0)?).or_default().push(m);
        }
        Ok(out)
    }

    /// The series of one metric of a run by step; with `max_points`, downsampled to at most
    /// that many points keeping each bucket's minimum and maximum (spikes stay visible).
    pub fn series(&self, run: &str, key: &str, max_points: Option<usize>) -> Result<Vec<Metric>> {
        let all = self.series_after(run, key, i64::MIN)?;
        let Some(max) = max_points.filter(|&m| all.len() > m) else {
            return Ok(all);
        };
        let pts: Vec<(f64, f64)> = all.iter().map(|m| (m.step as f64, m.value)).collect();
        let by_step: HashMap<i64, &Metric> = all.iter().map(|m| (m.step, m)).collect();
        Ok(crate::curve::minmax_downsample(&pts, (max / 2).max(1))
            .into_iter()
            .filter_map(|(x, _)| by_step.get(&(x as i64)).map(|m| (*m).clone()))
            .collect())
    }

    /// Rows of one metric of a run with a step after `after` (a cursor for live updates).
    pub fn series_after(&self, run: &str, key: &str, after: i64) -> Result<Vec<Metric>> {
        let rows = self.db.query(
            "SELECT key, step, epoch, value, wall FROM metrics
             WHERE run_id = ?1 AND key = ?2 AND step > ?3 ORDER BY step",
            &[&run, &key, &after],
        )?;
        collect(rows, Metric::from_row)
    }

    /// Every metric row of a run, by key then step.
    pub fn metrics(&self, run: &str) -> Result<Vec<Metric>> {
        let rows = self.db.query(
            "SELECT key, step, epoch, value, wall FROM metrics WHERE run_id = ?1 ORDER BY key, step",
            &[&run],
        )?;
        collect(rows, Metric::from_row)
    }

    /// The flattened config of a run, by key.
    pub fn params(&self, run: &str) -> Result<Vec<(String, String)>> {
        let rows = self.db.query(
            "SELECT key, value FROM params WHERE run_id = ?1 ORDER BY key",
            &[&run],
        )?;
        collect(rows, |r| Ok((r.get(0)?, r.get(1)?)))
    }

    /// Params of every run (one query), keyed by run id.
    pub fn all_params(&self) -> Result<HashMap<String, Vec<(String, String)>>> {
        let rows = self.db.query(
            "SELECT run_id, key, value FROM params ORDER BY run_id, key",
            &[],
        )?;
        let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for r in &rows {
            out.entry(r.get(0)?)
                .or_default()
                .push((r.get(1)?, r.get(2)?));
        }
        Ok(out)
    }

    pub fn artifacts(&self, run: &str) -> Result<Vec<Artifact>> {
        let rows = self.db.query(
            "SELECT kind, path, epoch FROM artifacts WHERE run_id = ?1 ORDER BY created, path",
            &[&run],
        )?;
        collect(rows, |r| {
            Ok(Artifact {
                kind: r.get(0)?,
                path: r.get(1)?,
                epoch: r.get(2)?,
            })
        })
    }

    /// Every stored spectrum of a run, by epoch then scale.
    pub fn spectra(&self, run: &str) -> Result<Vec<SpectrumRow>> {
        let rows = self.db.query(
            "SELECT epoch, detail FROM spectra WHERE run_id = ?1 ORDER BY epoch, scale",
            &[&run],
        )?;
        collect(rows, |r| {
            let epoch: i64 = r.get(0)?;
            let detail: String = r.get(1)?;
            let spectrum = serde_json::from_str(&detail)
                .with_context(|| format!("run {run}: corrupt spectrum row of epoch {epoch}"))?;
            Ok(SpectrumRow { epoch, spectrum })
        })
    }

    /// (epoch, scale, E(A)/E(B), commutator) of every stored spectrum of a run, without the
    /// eigenvalues (cheap: for tables and curves over epochs).
    pub fn spectrum_ratios(&self, run: &str) -> Result<Vec<(i64, String, f64, f64)>> {
        let rows = self.db.query(
            "SELECT epoch, scale, energy_ratio, commutator FROM spectra WHERE run_id = ?1
             ORDER BY epoch, scale",
            &[&run],
        )?;
        collect(rows, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
    }

    /// Every stored histogram of a run, by name then epoch.
    pub fn histograms(&self, run: &str) -> Result<Vec<Histogram>> {
        let rows = self.db.query(
            "SELECT name, epoch, lo, hi, counts FROM histograms WHERE run_id = ?1 ORDER BY name, epoch",
            &[&run],
        )?;
        collect(rows, |r| {
            let name: String = r.get(0)?;
            let counts: String = r.get(4)?;
            let counts = serde_json::from_str(&counts)
                .with_context(|| format!("run {run}: corrupt histogram {name}"))?;
            Ok(Histogram {
                name,
                epoch: r.get(1)?,
                lo: r.get(2)?,
                hi: r.get(3)?,
                counts,
            })
        })
    }

    /// Every sweep, oldest first.
    pub fn sweeps(&self) -> Result<Vec<SweepRow>> {
        let rows = self.db.query(
            "SELECT name, file, created, log, runner_pid, executor, runs_root, script, slurm_jobs
             FROM sweeps ORDER BY created, name",
            &[],
        )?;
        collect(rows, |r| {
            Ok(SweepRow {
                name: r.get(0)?,
                file: r.get(1)?,
                created: r.get(2)?,
                log: r.get(3)?,
                runner_pid: r.get(4)?,
                executor: r.get(5)?,
                runs_root: r.get(6)?,
                script: r.get(7)?,
                slurm_jobs: r.get(8)?,
            })
        })
    }

    /// One sweep by name, or an error listing the sweeps there are.
    pub fn sweep(&self, name: &str) -> Result<SweepRow> {
        let all = self.sweeps()?;
        let names: Vec<String> = all.iter().map(|s| s.name.clone()).collect();
        all.into_iter().find(|s| s.name == name).ok_or_else(|| {
            anyhow::anyhow!(
                "no sweep named {name:?} in {}; sweeps: {}",
                self.locator,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )
        })
    }

    /// Runs of a sweep by status, its first start, last activity and summed compute time.
    pub fn sweep_progress(&self, name: &str) -> Result<SweepProgress> {
        let rows = self.db.query(
            "SELECT r.status, r.started, r.ended, r.heartbeat, {now} FROM runs r
             JOIN sweep_runs s ON s.run_id = r.id WHERE s.sweep = ?1",
            &[&name],
        )?;
        let mut p = SweepProgress::default();
        for r in &rows {
            let status: Status = r.get(0)?;
            let started: Option<f64> = r.get(1)?;
            let ended: Option<f64> = r.get(2)?;
            let heartbeat: Option<f64> = r.get(3)?;
            let now: f64 = r.get(4)?;
            p.add(status);
            if let Some(s) = started {
                p.first_start = Some(p.first_start.map_or(s, |f: f64| f.min(s)));
                let end = ended.or(heartbeat).unwrap_or(now);
                let end = if status == Status::Running { now } else { end };
                p.compute_seconds += (end - s).max(0.0);
                p.last_activity = Some(p.last_activity.map_or(end, |l: f64| l.max(end)));
            }
        }
        Ok(p)
    }

    /// Changes whenever another connection commits: the cheap question a live view asks
    /// before re-reading anything (SQLite's `PRAGMA data_version`; on PostgreSQL the counter
    /// every write transaction bumps).
    pub fn data_version(&self) -> Result<i64> {
        let sql = match self.db.dialect() {
            Dialect::Sqlite => "PRAGMA data_version",
            Dialect::Postgres => "SELECT counter FROM store_changes WHERE id = 1",
        };
        self.db.query_one(sql, &[])?.get(0)
    }

    /// "ok" when the store is sound, else what is wrong: SQLite's `PRAGMA integrity_check`
    /// (pages, indexes), and on both engines rows that belong to no run.
    pub fn integrity_check(&self) -> Result<String> {
        if self.db.dialect() == Dialect::Sqlite {
            let pages: String = self.db.query_one("PRAGMA integrity_check", &[])?.get(0)?;
            if pages != "ok" {
                return Ok(pages);
            }
        }
        let mut problems = Vec::new();
        let has_pictures = self.has_pictures()?;
        for table in super::RUN_TABLES {
            if !has_pictures && ["pictures", "embeddings"].contains(&table) {
                continue;
            }
            if schema::version(&self.db)? < super::tags::TAGS_VERSION
                && ["run_tags", "run_notes"].contains(&table)
            {
                continue;
            }
            let orphans: i64 = self
                .db
                .query_one(
                    &format!(
                        "SELECT COUNT(*) FROM {table} t
                         WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = t.run_id)"
                    ),
                    &[],
                )?
                .get(0)?;
            if orphans > 0 {
                problems.push(format!("{orphans} rows of {table} belong to no run"));
            }
        }
        Ok(if problems.is_empty() {
            "ok".into()
        } else {
            problems.join("; ")
        })
    }

    /// Number of (run, key, step) metric rows stored more than once (0 in a sound store).
    pub fn duplicate_metric_rows(&self) -> Result<i64> {
        self.db
            .query_one(
                "SELECT COUNT(*) FROM (SELECT run_id, key, step FROM metrics
                 GROUP BY 1, 2, 3 HAVING COUNT(*) > 1) d",
                &[],
            )?
            .get(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::scratch::{every_backend, ScratchStore};
    use crate::store::NewRun;

    /// A store on each backend holding one sweep of runs `ids`.
    fn stores_with(ids: &[&str]) -> Vec<(ScratchStore, Store)> {
        every_backend()
            .unwrap()
            .into_iter()
            .map(|b| {
                let s = store_at(&b, ids);
                (b, s)
            })
            .collect()
    }

    fn store_at(at: &ScratchStore, ids: &[&str]) -> Store {
        let mut s = Store::open(&at.locator).unwrap();
        let runs: Vec<NewRun> = ids
            .iter()
            .map(|id| NewRun {
                id: id.to_string(),
                seed: 0,
                config: "{}".into(),
                params: vec![("a".into(), "1".into())],
            })
            .collect();
        s.register_sweep("sw", "sw.toml", &runs).unwrap();
        s
    }

    #[test]
    fn prefixes_are_literal() {
        for (_b, s) in stores_with(&["abc123", "abd456", "a_x999"]) {
            assert_eq!(s.run("abc").unwrap().id, "abc123");
            assert!(s.run("ab").unwrap_err().to_string().contains("ambiguous"));
            // `_` and `%` are not wildcards
            assert_eq!(s.run("a_").unwrap().id, "a_x999");
            assert!(s.run("a%").is_err());
            assert!(s.run("%").unwrap_err().to_string().contains("no run"));
            assert!(s.run("").is_err());
        }
    }

    #[test]
    fn series_downsampling_and_cursor() {
        for (_b, mut s) in stores_with(&["r1"]) {
            let rows: Vec<Metric> = (1..=1000)
                .map(|i| Metric {
                    key: "train/loss".into(),
                    step: i,
                    epoch: 1,
                    value: if i == 500 { 9.0 } else { 1.0 / i as f64 },
                    wall: i as f64,
                })
                .collect();
            s.log_metrics("r1", &rows).unwrap();
            assert_eq!(s.series("r1", "train/loss", None).unwrap().len(), 1000);
            let d = s.series("r1", "train/loss", Some(100)).unwrap();
            assert!(d.len() <= 100, "{}", d.len());
            assert!(d.iter().any(|m| m.step == 500 && m.value == 9.0));
            assert!(d.iter().any(|m| m.step == 1));
            assert_eq!(s.series_after("r1", "train/loss", 990).unwrap().len(), 10);
            let e = s
                .log_metrics(
                    "r1",
                    &[Metric {
                        key: "x".into(),
                        step: 1,
                        epoch: 1,
                        value: f64::NAN,
                        wall: 0.0,
                    }],
                )
                .unwrap_err();
            assert!(e.to_string().contains("non-finite"), "{e}");
        }
    }

    #[test]
    fn a_step_written_again_replaces_its_row_on_every_backend() {
        for (b, mut s) in stores_with(&["r1"]) {
            let m = |step: i64, value: f64| Metric {
                key: "train/loss".into(),
                step,
                epoch: 1,
                value,
                wall: 0.0,
            };
            s.log_metrics("r1", &[m(1, 1.0), m(2, 2.0)]).unwrap();
            // a batch that rewrites step 2 and adds step 3, and one that repeats a step
            s.log_metrics("r1", &[m(2, 20.0), m(3, 3.0)]).unwrap();
            s.log_metrics("r1", &[m(4, 4.0), m(4, 40.0)]).unwrap();
            let got: Vec<(i64, f64)> = s
                .metrics("r1")
                .unwrap()
                .iter()
                .map(|m| (m.step, m.value))
                .collect();
            assert_eq!(
                got,
                [(1, 1.0), (2, 20.0), (3, 3.0), (4, 40.0)],
                "{}",
                b.name()
            );
            assert_eq!(s.latest_metrics("r1").unwrap()[0].value, 40.0);
            assert_eq!(s.duplicate_metric_rows().unwrap(), 0);
        }
    }

    #[test]
    fn progress_counts_and_data_version() {
        for (_b, s) in stores_with(&["r1", "r2", "r3"]) {
            let reader = Store::open_read_only(s.locator()).unwrap();
            let v0 = reader.data_version().unwrap();
            assert_eq!(reader.data_version().unwrap(), v0, "nothing changed");
            s.set_status("r2", Status::Failed, Some("boom")).unwrap();
            assert_ne!(reader.data_version().unwrap(), v0);
            let p = reader.sweep_progress("sw").unwrap();
            assert_eq!((p.queued, p.failed, p.total()), (2, 1, 3));
            assert!(reader
                .sweep("nope")
                .unwrap_err()
                .to_string()
                .contains("sweeps: sw"));
            assert_eq!(reader.runs(None, Some(Status::Failed)).unwrap()[0].id, "r2");
        }
    }

    #[test]
    fn rename_moves_every_row() {
        for (_b, mut s) in stores_with(&["old"]) {
            s.log_metrics(
                "old",
                &[Metric {
                    key: "k".into(),
                    step: 1,
                    epoch: 1,
                    value: 1.0,
                    wall: 0.0,
                }],
            )
            .unwrap();
            assert!(s.rename_run("old", "new").unwrap());
            assert!(s.run("old").is_err());
            assert_eq!(s.latest_metrics("new").unwrap().len(), 1);
            assert_eq!(s.params("new").unwrap().len(), 1);
            assert_eq!(s.runs(Some("sw"), None).unwrap()[0].id, "new");
            assert!(!s.rename_run("missing", "x").unwrap());
            assert_eq!(s.integrity_check().unwrap(), "ok");
        }
    }
}
