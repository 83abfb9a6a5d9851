//! What the TUI shows, read from the store through its read API only.
//!
//! [`Snapshot::refresh`] first asks `PRAGMA data_version` on its one long-lived read-only
//! connection; when nothing was committed since the last look it reads nothing else. When
//! something was, it re-reads the run list and latest values (cheap) and only the *new* rows
//! of the series on screen (a cursor per series).

use anyhow::Result;
use std::collections::HashMap;

use crate::analysis::ablation::Params;
use crate::analysis::progress::{run_progress, RunProgress};
use crate::config::RunConfig;
use crate::store::pictures::RECONSTRUCTION;
use crate::store::tags::Target;
use crate::store::{
    now, Locator, Metric, Picture, RunRow, SpectrumRow, Store, SweepProgress, SweepRow,
};

/// A metric series of one run (cached, extended by cursor).
pub type SeriesKey = (String, String);

/// Everything the views draw.
pub struct Snapshot {
    store: Store,
    /// `data_version` at the last refresh (`None` before the first).
    version: Option<i64>,
    pub runs: Vec<RunRow>,
    pub configs: HashMap<String, RunConfig>,
    pub params: HashMap<String, Params>,
    pub latest: HashMap<String, Vec<Metric>>,
    pub progress: HashMap<String, RunProgress>,
    pub sweeps: Vec<(SweepRow, SweepProgress)>,
    pub series: HashMap<SeriesKey, Vec<Metric>>,
    /// Spectra of one run (the selected one), loaded on demand.
    pub spectra: Option<(String, Vec<SpectrumRow>)>,
    /// Store queries made so far (the live test checks that an idle refresh makes one).
    pub queries: u64,
    /// Why the last refresh failed (a busy or vanished database): the views keep the data
    /// they had.
    pub stale: Option<String>,
    pub refreshed_at: f64,
    /// SLURM's state of each task of the SLURM sweeps (`<array job>_<task>` → state), asked
    /// of `squeue` when runs are re-read, at most every [`SLURM_EVERY_S`].
    pub slurm: HashMap<String, String>,
    slurm_at: f64,
    /// The array task each run of a SLURM sweep is frozen to, by (sweep, run id).
    pub tasks: HashMap<(String, String), i64>,
    /// The reference runs (imported logs), in run order, at most
    /// [`crate::tui::view::chart::MAX_REFERENCES`].
    pub references: Vec<String>,
    /// Tags and note texts of every run.
    pub tags: HashMap<String, Vec<String>>,
    pub notes: HashMap<String, Vec<String>>,
    /// Reconstruction pictures of the runs on screen, by run, oldest epoch first (new epochs
    /// are read as they are stored).
    pub pictures: HashMap<String, Vec<Picture>>,
    /// `data_version` at the last pictures refresh.
    pictures_version: Option<i64>,
    /// Why a run's features look collapsed (`analysis::collapse`), for the runs that do.
    pub collapse: HashMap<String, String>,
    /// The step of the newest `monitor/erank` row each run's collapse check has seen.
    collapse_steps: HashMap<String, i64>,
}

/// Smallest interval between two `squeue` calls of the TUI.
pub const SLURM_EVERY_S: f64 = 2.0;

impl Snapshot {
    /// Opens the store read-only (a short busy timeout: a busy database shows stale data).
    pub fn open(db: impl Into<Locator>) -> Result<Snapshot> {
        let store = Store::open_read_only(db)?;
        store.set_busy_timeout(std::time::Duration::from_millis(100))?;
        Ok(Snapshot {
            store,
            version: None,
            runs: Vec::new(),
            configs: HashMap::new(),
            params: HashMap::new(),
            latest: HashMap::new(),
            progress: HashMap::new(),
            sweeps: Vec::new(),
            series: HashMap::new(),
            spectra: None,
            queries: 0,
            stale: None,
            refreshed_at: 0.0,
            slurm: HashMap::new(),
            slurm_at: f64::NEG_INFINITY,
            tasks: HashMap::new(),
            pictures: HashMap::new(),
            pictures_version: None,
            tags: HashMap::new(),
            notes: HashMap::new(),
            references: Vec::new(),
            collapse: HashMap::new(),
            collapse_steps: HashMap::new(),
        })
    }

    pub fn db(&self) -> Locator {
        self.store.locator().clone()
    }

    /// The store the snapshot reads (for one-off reads such as a sweep's dry run).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Brings the snapshot up to date: the run list when anything changed, the series in
    /// `wanted` and the spectra of `spectrum_run`. Returns whether anything was re-read.
    pub fn refresh(&mut self, wanted: &[SeriesKey], spectrum_run: Option<&str>) -> bool {
        match self.try_refresh(wanted, spectrum_run) {
            Ok(changed) => {
                self.stale = None;
                changed
            }
            Err(e) => {
                self.stale = Some(format!("{e:#}"));
                false
            }
        }
    }

    fn try_refresh(&mut self, wanted: &[SeriesKey], spectrum_run: Option<&str>) -> Result<bool> {
        self.queries += 1;
        let version = self.store.data_version()?;
        let changed = self.version != Some(version);
        let missing_series = wanted.iter().any(|k| !self.series.contains_key(k));
        let missing_spectra =
            spectrum_run.is_some_and(|r| self.spectra.as_ref().is_none_or(|(id, _)| id != r));
        if !changed && !missing_series && !missing_spectra {
            return Ok(false);
        }
        let t = now();
        if changed {
            self.reload_runs(t)?;
        }
        self.series.retain(|k, _| wanted.contains(k));
        for key in wanted {
            let cached = self.series.get(key).map(|v| v.len());
            if cached.is_some() && !changed {
                continue;
            }
            let after = self
                .series
                .get(key)
                .and_then(|v| v.last())
                .map_or(i64::MIN, |m| m.step);
            self.queries += 1;
            let new = self.store.series_after(&key.0, &key.1, after)?;
            self.series.entry(key.clone()).or_default().extend(new);
        }
        if let Some(run) = spectrum_run {
            if changed || missing_spectra {
                self.queries += 1;
                self.spectra = Some((run.to_string(), self.store.spectra(run)?));
            }
        }
        self.version = Some(version);
        self.refreshed_at = t;
        Ok(true)
    }

    fn reload_runs(&mut self, t: f64) -> Result<()> {
        self.queries += 4;
        self.runs = self.store.runs(None, None)?;
        if self.runs.iter().any(|r| !self.params.contains_key(&r.id)) {
            self.params = self
                .store
                .all_params()?
                .into_iter()
                .map(|(id, p)| (id, p.into_iter().collect()))
                .collect();
        }
        for r in &self.runs {
            if !self.configs.contains_key(&r.id) {
                if let Ok(c) = serde_json::from_str::<RunConfig>(&r.config) {
                    self.configs.insert(r.id.clone(), c);
                }
            }
        }
        self.latest = self.store.latest_with_prefix("")?;
        self.references = self
            .runs
            .iter()
            .filter(|r| r.reference().is_some())
            .take(crate::tui::view::chart::MAX_REFERENCES)
            .map(|r| r.id.clone())
            .collect();
        self.queries += 2;
        self.tags = self.store.all_tags(Target::Run)?;
        self.notes = self
            .store
            .all_notes(Target::Run)?
            .into_iter()
            .map(|(id, n)| (id, n.into_iter().map(|n| n.text).collect()))
            .collect();
        let empty = Vec::new();
        self.progress = self
            .runs
            .iter()
            .map(|r| {
                let m = self.latest.get(&r.id).unwrap_or(&empty);
                (r.id.clone(), run_progress(r, self.configs.get(&r.id), m, t))
            })
            .collect();
        let sweeps = self.store.sweeps()?;
        self.sweeps = sweeps
            .into_iter()
            .map(|s| {
                let p = self.store.sweep_progress(&s.name)?;
                Ok((s, p))
            })
            .collect::<Result<_>>()?;
        self.tasks.clear();
        for (s, _) in self
            .sweeps
            .iter()
            .filter(|(s, _)| s.executor.as_deref() == Some("slurm"))
        {
            for (task, run) in self.store.tasks(&s.name)? {
                self.tasks.insert((s.name.clone(), run), task);
            }
        }
        self.reload_slurm(t);
        self.reload_collapse()?;
        // runs whose rows were truncated on resume: drop their cached series
        let known: std::collections::HashSet<&str> =
            self.runs.iter().map(|r| r.id.as_str()).collect();
        self.series
            .retain(|(run, _), _| known.contains(run.as_str()));
        for ((run, key), rows) in self.series.iter_mut() {
            let last = self
                .latest
                .get(run)
                .and_then(|m| m.iter().find(|m| &m.key == key))
                .map(|m| m.step);
            if rows.last().map(|m| m.step) > last {
                rows.clear();
            }
        }
        Ok(())
    }

    /// Checks again the collapse health of the runs with a new monitor row since the last look
    /// (two series reads per such run).
    fn reload_collapse(&mut self) -> Result<()> {
        for r in &self.runs {
            let newest = self
                .latest
                .get(&r.id)
                .and_then(|m| m.iter().find(|m| m.key == "monitor/erank"))
                .map(|m| m.step);
            let Some(step) = newest else {
                self.collapse.remove(&r.id);
                continue;
            };
            if self.collapse_steps.get(&r.id) == Some(&step) {
                continue;
            }
            self.queries += 2;
            let by_epoch = |rows: Vec<Metric>| -> Vec<(i64, f64)> {
                rows.into_iter().map(|m| (m.epoch, m.value)).collect()
            };
            let erank = by_epoch(self.store.series(&r.id, "monitor/erank", None)?);
            let std = by_epoch(self.store.series(&r.id, "monitor/feature_std", None)?);
            match crate::analysis::collapse::collapse_reason(&erank, &std) {
                Some(why) => self.collapse.insert(r.id.clone(), why),
                None => self.collapse.remove(&r.id),
            };
            self.collapse_steps.insert(r.id.clone(), step);
        }
        Ok(())
    }

    /// Task states of the SLURM sweeps' jobs (kept as they were when `squeue` fails).
    fn reload_slurm(&mut self, t: f64) {
        if t - self.slurm_at < SLURM_EVERY_S {
            return;
        }
        let jobs: Vec<String> = self
            .sweeps
            .iter()
            .filter(|(s, _)| s.executor.as_deref() == Some("slurm"))
            .flat_map(|(s, _)| {
                s.slurm_jobs
                    .clone()
                    .unwrap_or_default()
                    .split(',')
                    .filter(|j| !j.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        if jobs.is_empty() {
            return;
        }
        self.slurm_at = t;
        if let Ok(states) = crate::sweep::slurm::task_states(&jobs) {
            self.slurm = states;
        }
    }

    /// Brings the reconstruction pictures of `runs` up to date: nothing is read when no
    /// commit happened and every run is cached; otherwise only the epochs not cached yet.
    /// Returns whether anything new was read.
    pub fn refresh_pictures(&mut self, runs: &[String]) -> bool {
        match self.try_refresh_pictures(runs) {
            Ok(changed) => changed,
            Err(e) => {
                self.stale = Some(format!("{e:#}"));
                false
            }
        }
    }

    fn try_refresh_pictures(&mut self, runs: &[String]) -> Result<bool> {
        self.pictures.retain(|id, _| runs.contains(id));
        if runs.is_empty() {
            return Ok(false);
        }
        let version = self.store.data_version()?;
        let cached = runs.iter().all(|r| self.pictures.contains_key(r));
        if cached && self.pictures_version == Some(version) {
            return Ok(false);
        }
        self.pictures_version = Some(version);
        let mut changed = false;
        for run in runs {
            self.queries += 1;
            let epochs = self.store.picture_epochs(run, RECONSTRUCTION)?;
            let have = self.pictures.entry(run.clone()).or_default();
            // a replayed epoch (a resumed run) or a truncated history: read it all again
            if have.last().is_some_and(|p| !epochs.contains(&p.epoch)) {
                have.clear();
            }
            let newest = have.last().map_or(i64::MIN, |p| p.epoch);
            for e in epochs.into_iter().filter(|e| *e > newest) {
                self.queries += 1;
                have.extend(self.store.pictures(run, RECONSTRUCTION, Some(e))?);
                changed = true;
            }
        }
        Ok(changed)
    }

    /// The newest value of `key` of a run.
    pub fn value(&self, run: &str, key: &str) -> Option<f64> {
        self.latest
            .get(run)?
            .iter()
            .find(|m| m.key == key)
            .map(|m| m.value)
    }

    pub fn run(&self, id: &str) -> Option<&RunRow> {
        self.runs.iter().find(|r| r.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewRun;

    #[test]
    fn commits_from_another_connection_are_seen_and_idle_refreshes_read_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("live.db");
        let mut writer = Store::open(&db).unwrap();
        writer
            .register_sweep("s", "s.toml", &[NewRun::from_config(&RunConfig::default())])
            .unwrap();
        let id = writer.runs(None, None).unwrap()[0].id.clone();
        let metric = |step: i64| Metric {
            key: "train/loss".into(),
            step,
            epoch: 1,
            value: 1.0 / step as f64,
            wall: step as f64,
        };
        writer.log_metrics(&id, &[metric(1), metric(2)]).unwrap();
        let mut snap = Snapshot::open(&db).unwrap();
        let wanted = vec![(id.clone(), "train/loss".to_string())];
        assert!(snap.refresh(&wanted, None));
        assert_eq!(snap.series[&wanted[0]].len(), 2);
        // nothing committed: one query (data_version), nothing re-read
        let q = snap.queries;
        assert!(!snap.refresh(&wanted, None));
        assert_eq!(snap.queries, q + 1);
        // a commit on another connection: seen, and only the new row is fetched
        writer.log_metrics(&id, &[metric(3)]).unwrap();
        assert!(snap.refresh(&wanted, None));
        let steps: Vec<i64> = snap.series[&wanted[0]].iter().map(|m| m.step).collect();
        assert_eq!(steps, [1, 2, 3]);
        assert_eq!(snap.value(&id, "train/loss"), Some(1.0 / 3.0));
    }
}
