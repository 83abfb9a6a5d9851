//! The typed rows the store reads and writes. Nothing here knows about SQL.

use serde::{Deserialize, Serialize};

/// Lifecycle of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Queued,
    Running,
    Finished,
    Failed,
    Stopped,
    /// Stopped for good by early stopping (`[early_stop]`): its setting was not in the top
    /// 1/keep at a rung. Everything it wrote is kept; no sweep resumes it.
    Pruned,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Queued,
        Status::Running,
        Status::Finished,
        Status::Failed,
        Status::Stopped,
        Status::Pruned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Finished => "finished",
            Status::Failed => "failed",
            Status::Stopped => "stopped",
            Status::Pruned => "pruned",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
            id: crate::config::identity::run_id(cfg),
            seed: cfg.seed,
            config: serde_json::to_string(cfg).unwrap_or_default(),
            params: crate::config::identity::flatten(cfg),
        }
    }
}

/// A row of the runs table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    pub id: String,
    pub sweep: String,
    pub seed: i64,
    pub status: Status,
    pub error: Option<String>,
    pub pid: Option<i64>,
    pub heartbeat: Option<f64>,
    pub attempts: i64,
    pub created: f64,
    pub started: Option<f64>,
    pub ended: Option<f64>,
    pub backend: Option<String>,
    pub device: Option<String>,
    pub git_commit: Option<String>,
    pub out_dir: Option<String>,
    /// A stop was asked for (TUI `S`); the worker checkpoints and stops at its next step.
    pub stop_requested: bool,
    /// The resolved run config as JSON.
    pub config: String,
    /// Where the run's history came from when it was adopted from a checkpoint another store
    /// watched (JSON: the other store's id, what was recovered, what is missing).
    pub provenance: Option<String>,
    /// Host of the process holding (or that last held) the run; its `pid` is checked only
    /// there.
    pub host: Option<String>,
    /// SLURM job (`<array job>_<task>`) the run's worker runs in.
    pub slurm_job: Option<String>,
    /// Times the run was preempted or hit a time limit and checkpointed (not counted in
    /// `attempts`, which count crashes).
    pub preemptions: i64,
}

impl RunRow {
    /// Whether the run's last heartbeat (none counts as stale) is more than `after` seconds
    /// before `now` (the database's clock): its worker is hung or gone.
    pub fn heartbeat_stale(&self, now: f64, after: f64) -> bool {
        self.heartbeat.is_none_or(|h| now - h > after)
    }

    /// The source of a reference run (an imported log: `workbench import`), `None` for a run
    /// the workbench trained.
    pub fn reference(&self) -> Option<String> {
        let p: serde_json::Value = serde_json::from_str(self.provenance.as_deref()?).ok()?;
        let r = p.get("reference")?;
        Some(
            r.get("file")
                .and_then(|f| f.as_str())
                .unwrap_or("?")
                .to_string(),
        )
    }

    /// A run row for tests: started at 100 s, one attempt, empty config.
    #[cfg(test)]
    pub fn example(id: &str, status: Status) -> RunRow {
        RunRow {
            id: id.into(),
            sweep: "s".into(),
            seed: 0,
            status,
            error: None,
            pid: None,
            heartbeat: None,
            attempts: 1,
            created: 0.0,
            started: Some(100.0),
            ended: None,
            backend: None,
            device: None,
            git_commit: None,
            out_dir: None,
            stop_requested: false,
            config: "{}".into(),
            provenance: None,
            host: None,
            slurm_job: None,
            preemptions: 0,
        }
    }

    /// The number of the claim that holds (or last held) the run: every claim adds one, and
    /// every write of its worker is fenced by it (see [`super::Claim`]).
    pub fn claim_number(&self) -> i64 {
        self.attempts + self.preemptions
    }

    /// Seconds of compute so far (started → ended, or → `now` while it runs).
    pub fn elapsed(&self, now: f64) -> Option<f64> {
        self.started
            .map(|s| (self.ended.unwrap_or(now) - s).max(0.0))
    }
}

/// A file a run produced (its checkpoint folder).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Artifact {
    pub kind: String,
    pub path: String,
    pub epoch: Option<i64>,
}

/// A sweep as registered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    pub name: String,
    pub file: String,
    pub created: f64,
    /// Log file of a sweep started detached (the TUI's launcher).
    pub log: Option<String>,
    /// Process id of the `workbench sweep` that last drove it.
    pub runner_pid: Option<i64>,
    /// `local` or `slurm` (how it was last run; `None` before any run).
    pub executor: Option<String>,
    /// The sweep's runs folder (absolute for a SLURM sweep: every node reads it).
    pub runs_root: Option<String>,
    /// The batch script a SLURM sweep submitted.
    pub script: Option<String>,
    /// The SLURM array jobs submitted for it, oldest first (comma-separated).
    pub slurm_jobs: Option<String>,
}

/// Runs of a sweep by status, and its timing.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SweepProgress {
    pub queued: usize,
    pub running: usize,
    pub finished: usize,
    pub failed: usize,
    pub stopped: usize,
    pub pruned: usize,
    /// Earliest start and latest end (or heartbeat) among the runs.
    pub first_start: Option<f64>,
    pub last_activity: Option<f64>,
    /// Seconds of compute summed over runs.
    pub compute_seconds: f64,
}

impl SweepProgress {
    pub fn total(&self) -> usize {
        self.queued + self.running + self.finished + self.failed + self.stopped + self.pruned
    }

    pub fn count(&self, s: Status) -> usize {
        match s {
            Status::Queued => self.queued,
            Status::Running => self.running,
            Status::Finished => self.finished,
            Status::Failed => self.failed,
            Status::Stopped => self.stopped,
            Status::Pruned => self.pruned,
        }
    }

    pub(crate) fn add(&mut self, s: Status) {
        match s {
            Status::Queued => self.queued += 1,
            Status::Running => self.running += 1,
            Status::Finished => self.finished += 1,
            Status::Failed => self.failed += 1,
            Status::Stopped => self.stopped += 1,
            Status::Pruned => self.pruned += 1,
        }
    }
}

/// Eigen-summary of one learned generator, as stored per epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixSpectrum {
    /// Matrix name: A, B, A2, B2 or M(sx,sy).
    pub name: String,
    /// Eigenvalues of the *unscaled* generator (Ā/Δ), sorted by decreasing magnitude.
    pub eig_re: Vec<f64>,
    pub eig_im: Vec<f64>,
    /// E = Σ|λ|.
    pub energy: f64,
    /// Numerical rank (singular values above n·ε·σ_max).
    pub rank: usize,
    /// σ_max / σ_min (∞ when singular).
    pub condition: f64,
    /// Fraction of eigenvalues with a non-zero imaginary part.
    pub complex_fraction: f64,
}

impl MatrixSpectrum {
    /// |λ_k| / Σ|λ|, sorted decreasing (Fig. 7, right column).
    pub fn normalised_magnitudes(&self) -> Vec<f64> {
        let mags = self.magnitudes();
        let total: f64 = mags.iter().sum();
        mags.iter()
            .map(|m| m / total.max(f64::MIN_POSITIVE))
            .collect()
    }

    /// |λ_k|, in the stored (decreasing) order.
    pub fn magnitudes(&self) -> Vec<f64> {
        self.eig_re
            .iter()
            .zip(&self.eig_im)
            .map(|(r, i)| r.hypot(*i))
            .collect()
    }
}

/// Everything measured for one scale at one epoch (paper Tab. 3, Fig. 7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleSpectrum {
    /// "corner" (Δ = ½) or "center" (Δ = ¼).
    pub scale: String,
    pub delta: f64,
    pub matrices: Vec<MatrixSpectrum>,
    /// E(A)/E(B).
    pub energy_ratio: f64,
    /// ‖AB − BA‖_F / (‖A‖_F ‖B‖_F).
    pub commutator: f64,
}

impl ScaleSpectrum {
    /// The matrix called `name` ("A", "B", …).
    pub fn matrix(&self, name: &str) -> Option<&MatrixSpectrum> {
        self.matrices.iter().find(|m| m.name == name)
    }
}

/// The spectra of one epoch of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpectrumRow {
    pub epoch: i64,
    pub spectrum: ScaleSpectrum,
}

/// A stored histogram over `[lo, hi]` in equal bins.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    pub name: String,
    pub epoch: i64,
    pub lo: f64,
    pub hi: f64,
    pub counts: Vec<u64>,
}

/// A picture to store: a PNG of `kind` (`reconstruction`, `attention/m2f`, …) at `epoch`,
/// `item` its index (the image of the fixed batch, the block), `value` a number it shows (the
/// masked error of a reconstruction).
#[derive(Debug, Clone, PartialEq)]
pub struct NewPicture {
    pub kind: String,
    pub epoch: i64,
    pub item: i64,
    pub caption: String,
    pub value: Option<f64>,
    pub png: Vec<u8>,
}

/// A stored picture (the same fields as [`NewPicture`]).
pub type Picture = NewPicture;

/// A 2-D embedding of a run's features: points `(x, y, label)`, the share of the variance
/// each axis holds, and the epoch of the encoder it embeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    pub name: String,
    pub epoch: i64,
    pub points: Vec<(f32, f32, u32)>,
    pub variance_share: [f64; 2],
    /// Points computed before subsampling to `points.len()`.
    pub total: usize,
    pub classes: usize,
}
