//! Claims: which worker holds a run, as compare-and-swap writes on the run's row.
//!
//! A sweep claims a run by moving it to `running` and counting one more attempt, in one
//! `UPDATE … WHERE status IN (…)`; the attempt number it gets back is the fence of every write
//! the worker makes for that run ([`Claim`]): a write whose (run, attempt) no longer matches a
//! `running` row is refused with [`LostClaim`] and changes nothing. Requeueing a run whose
//! worker died is a compare-and-swap on the (status, attempt) the sweep observed, so a run
//! that finished meanwhile, or was claimed again, is left alone.

use anyhow::Result;

use super::db::Db;
use super::rows::Status;
use super::Store;

/// A worker's hold on one run: the claim number its claim started (`attempts + preemptions`
/// of the row, which grows by one with every claim). Every write a worker makes for the run
/// is fenced by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub run: String,
    pub attempt: i64,
}

/// The fence of every worker write: the row is `running` under the claim number `?2`.
const HELD: &str = "id = ?1 AND status = 'running' AND attempts + preemptions = ?2";

/// Who holds a run: the process, on which host, in which SLURM job (when it runs in one).
/// A pid means something only on its own host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub host: String,
    pub pid: u32,
    pub slurm_job: Option<String>,
}

impl Owner {
    /// Process `pid` on this host, outside SLURM.
    pub fn local(pid: u32) -> Owner {
        Owner {
            host: hostname(),
            pid,
            slurm_job: None,
        }
    }

    /// This process.
    pub fn this_process() -> Owner {
        Owner {
            host: hostname(),
            pid: std::process::id(),
            slurm_job: slurm_job_id(),
        }
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`, `$HOSTNAME`, else `localhost`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The SLURM job this process runs in: `<array job>_<task>` in an array, else the job id.
pub fn slurm_job_id() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(job), Some(task)) => Some(format!("{job}_{task}")),
        _ => var("SLURM_JOB_ID"),
    }
}

/// A fenced write found that the run is no longer held by the claim that made it (it was
/// requeued, claimed again, finished or removed meanwhile). Nothing was written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "run {run} is no longer held by this worker (attempt {attempt}); the store says {now}: \
     nothing written"
)]
pub struct LostClaim {
    pub run: String,
    pub attempt: i64,
    /// The row's status and attempt now, in words.
    pub now: String,
}

/// Checks that `claim` still holds its run (inside a write transaction, so that the write
/// that follows is fenced by it).
pub(super) fn ensure_held(db: &Db, claim: &Claim) -> Result<()> {
    let row = db.query_opt(
        "SELECT status, attempts + preemptions FROM runs WHERE id = ?1",
        &[&claim.run],
    )?;
    let row: Option<(String, i64)> = match row {
        Some(r) => Some((r.get(0)?, r.get(1)?)),
        None => None,
    };
    match row {
        Some((status, attempts)) if status == "running" && attempts == claim.attempt => Ok(()),
        other => Err(LostClaim {
            run: claim.run.clone(),
            attempt: claim.attempt,
            now: other.map_or("no such run".into(), |(s, a)| format!("{s}, attempt {a}")),
        }
        .into()),
    }
}

impl Store {
    /// Atomically moves a run from `queued` (or `stopped`, or `failed` when retrying) to
    /// `running`, counts the attempt and records `owner`. Returns the claim, or `None` when
    /// the run was not claimable (someone else got it first, or it finished).
    pub fn claim(&mut self, id: &str, owner: &Owner, retry_failed: bool) -> Result<Option<Claim>> {
        let row = self.db.write(|db| {
            db.query_opt(
                "UPDATE runs SET status = 'running', pid = ?2, host = ?3, slurm_job = ?4,
                     heartbeat = {now}, attempts = attempts + 1, error = NULL,
                     started = COALESCE(started, {now}), ended = NULL, stop_requested = 0
                 WHERE id = ?1 AND (status IN ('queued', 'stopped') OR (?5 AND status = 'failed'))
                 RETURNING attempts + preemptions",
                &[
                    &id,
                    &owner.pid,
                    &owner.host,
                    &owner.slurm_job,
                    &retry_failed,
                ],
            )
        })?;
        Ok(match row {
            Some(r) => Some(Claim {
                run: id.to_string(),
                attempt: r.get(0)?,
            }),
            None => None,
        })
    }

    /// Fails unless `claim` still holds its run (a worker checks this before it trains).
    pub fn verify_claim(&self, claim: &Claim) -> Result<()> {
        ensure_held(&self.db, claim)
    }

    /// Records that the worker holding `claim` made progress `age` seconds ago (stamped by
    /// the database's clock, so every node's heartbeats compare). Returns false, writing
    /// nothing, when the claim was lost.
    pub fn heartbeat(&self, claim: &Claim, age: f64) -> Result<bool> {
        let age = age.max(0.0);
        let n = self.db.write(|db| {
            db.execute(
                &format!(
                    "UPDATE runs SET heartbeat = GREATEST(COALESCE(heartbeat, 0), {{now}} - ?3)
                     WHERE {HELD}"
                ),
                &[&claim.run, &claim.attempt, &age],
            )
        })?;
        Ok(n == 1)
    }

    /// The final (or stopping) status the worker holding `claim` gives its run; refused with
    /// [`LostClaim`] when the claim was lost.
    pub fn finish(&self, claim: &Claim, status: Status, error: Option<&str>) -> Result<()> {
        let n = self.db.write(|db| {
            db.execute(
                &format!(
                    "UPDATE runs SET status = ?3, error = ?4, ended = {{now}}, stop_requested = 0,
                         pid = NULL
                     WHERE {HELD}"
                ),
                &[&claim.run, &claim.attempt, &status.as_str(), &error],
            )
        })?;
        if n == 1 {
            return Ok(());
        }
        ensure_held(&self.db, claim)?;
        anyhow::bail!("run {}: status not written", claim.run)
    }

    /// The worker holding `claim` was preempted (or reached its time limit) and checkpointed:
    /// the run goes back to the queue, one more preemption and not a crash attempt (its
    /// `attempts` are what they were before this claim; the claim number still grows with
    /// the next claim). Refused with [`LostClaim`] when the claim was lost.
    pub fn preempted(&self, claim: &Claim) -> Result<()> {
        let n = self.db.write(|db| {
            db.execute(
                &format!(
                    "UPDATE runs SET status = 'queued', attempts = attempts - 1,
                         preemptions = preemptions + 1, stop_requested = 0, pid = NULL
                     WHERE {HELD}"
                ),
                &[&claim.run, &claim.attempt],
            )
        })?;
        if n == 1 {
            return Ok(());
        }
        ensure_held(&self.db, claim)?;
        anyhow::bail!("run {}: preemption not written", claim.run)
    }

    /// Puts a `running` run whose worker died back in the queue (or fails it with `error`),
    /// if it is still in the state the caller observed: running under claim number `claim`
    /// (its `attempts + preemptions`).
    /// Returns false, writing nothing, when it finished, stopped or was claimed again
    /// meanwhile.
    pub fn requeue_dead(&self, id: &str, claim: i64, fail_with: Option<&str>) -> Result<bool> {
        let status = match fail_with {
            Some(_) => Status::Failed,
            None => Status::Queued,
        };
        let n = self.db.write(|db| {
            db.execute(
                &format!(
                    "UPDATE runs SET status = ?3, error = ?4,
                         ended = CASE WHEN ?3 = 'failed' THEN {{now}} ELSE NULL END, pid = NULL,
                         stop_requested = 0
                     WHERE {HELD}"
                ),
                &[&id, &claim, &status.as_str(), &fail_with],
            )
        })?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::scratch::every_backend;
    use crate::store::{Locator, Metric, NewRun};

    fn store_with_runs(at: &Locator, n: u64) -> Vec<String> {
        let mut s = Store::open(at).unwrap();
        let runs: Vec<NewRun> = (0..n)
            .map(|seed| {
                NewRun::from_config(&crate::config::RunConfig {
                    seed,
                    ..Default::default()
                })
            })
            .collect();
        s.register_sweep("sw", "sw.toml", &runs).unwrap();
        runs.into_iter().map(|r| r.id).collect()
    }

    fn loss(step: i64) -> Metric {
        Metric {
            key: "train/loss".into(),
            step,
            epoch: 1,
            value: 1.0,
            wall: 0.0,
        }
    }

    #[test]
    fn racing_connections_claim_each_run_once() {
        for backend in every_backend().unwrap() {
            let at = &backend.locator;
            let ids = store_with_runs(at, 3);
            for round in 0..8 {
                let racers = 4;
                let barrier = std::sync::Arc::new(std::sync::Barrier::new(racers));
                let handles: Vec<_> = (0..racers)
                    .map(|k| {
                        let (at, ids, barrier) = (at.clone(), ids.clone(), barrier.clone());
                        std::thread::spawn(move || {
                            let mut s = Store::open(&at).unwrap();
                            barrier.wait();
                            // every racer tries every run, in a different order
                            (0..ids.len())
                                .filter_map(|j| {
                                    let id = &ids[(j + k) % ids.len()];
                                    s.claim(id, &Owner::local(100 + k as u32), false).unwrap()
                                })
                                .collect::<Vec<Claim>>()
                        })
                    })
                    .collect();
                let mut won: Vec<Claim> = handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap())
                    .collect();
                won.sort_by(|a, b| a.run.cmp(&b.run));
                let mut expect = ids.clone();
                expect.sort();
                let runs: Vec<String> = won.iter().map(|c| c.run.clone()).collect();
                assert_eq!(runs, expect, "{} round {round}", backend.name());
                let s = Store::open(at).unwrap();
                for c in &won {
                    assert_eq!(c.attempt, round + 1, "{}", backend.name());
                    assert!(s.requeue_dead(&c.run, c.attempt, None).unwrap());
                }
            }
        }
    }

    #[test]
    fn the_owner_and_heartbeats_are_recorded_by_the_databases_clock() {
        for backend in every_backend().unwrap() {
            let at = &backend.locator;
            let id = store_with_runs(at, 1).remove(0);
            let mut s = Store::open(at).unwrap();
            let owner = Owner {
                host: "node7".into(),
                pid: 4242,
                slurm_job: Some("17_3".into()),
            };
            let claim = s.claim(&id, &owner, false).unwrap().unwrap();
            let row = s.run(&id).unwrap();
            assert_eq!(
                (row.host.as_deref(), row.pid, row.slurm_job.as_deref()),
                (Some("node7"), Some(4242), Some("17_3")),
                "{}",
                backend.name()
            );
            let t0 = s.db_now().unwrap();
            assert!((t0 - crate::store::now()).abs() < 60.0, "{t0}");
            // progress 30 s ago: older than the claim's own stamp, which is kept
            assert!(s.heartbeat(&claim, 30.0).unwrap());
            let h = s.run(&id).unwrap().heartbeat.unwrap();
            assert!(h <= t0 + 1.0 && h > t0 - 5.0, "{h} vs {t0}");
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(s.heartbeat(&claim, 0.0).unwrap());
            let h2 = s.run(&id).unwrap().heartbeat.unwrap();
            assert!(h2 > h, "{h2} after {h}");
        }
    }

    #[test]
    fn a_requeue_never_undoes_a_run_that_finished_meanwhile() {
        for backend in every_backend().unwrap() {
            let at = &backend.locator;
            let id = store_with_runs(at, 1).remove(0);
            let mut worker = Store::open(at).unwrap();
            let runner = Store::open(at).unwrap();
            let claim = worker.claim(&id, &Owner::local(1), false).unwrap().unwrap();
            // the runner looked at the row (running, attempt 1) and decided the worker was
            // dead; the worker finishes before the runner's write lands
            let observed = runner.run(&id).unwrap();
            worker.finish(&claim, Status::Finished, None).unwrap();
            assert!(!runner.requeue_dead(&id, observed.attempts, None).unwrap());
            assert!(!runner
                .requeue_dead(&id, observed.attempts, Some("died 3 times"))
                .unwrap());
            let row = runner.run(&id).unwrap();
            assert_eq!(
                (row.status, row.attempts, row.error),
                (Status::Finished, 1, None),
                "{}",
                backend.name()
            );
        }
    }

    #[test]
    fn a_worker_whose_run_was_requeued_writes_nothing_more() {
        for backend in every_backend().unwrap() {
            let at = &backend.locator;
            let id = store_with_runs(at, 1).remove(0);
            let mut old = Store::open(at).unwrap();
            let first = old.claim(&id, &Owner::local(1), false).unwrap().unwrap();
            old.log_metrics_held(&first, &[loss(1)]).unwrap();
            // the runner requeues it (the worker looked dead), another worker claims it
            let mut new = Store::open(at).unwrap();
            assert!(new.requeue_dead(&id, first.attempt, None).unwrap());
            let e = old.log_metrics_held(&first, &[loss(2)]).unwrap_err();
            let lost = e.downcast_ref::<LostClaim>().expect("a LostClaim");
            assert_eq!(lost.now, "queued, attempt 1");
            let second = new.claim(&id, &Owner::local(2), false).unwrap().unwrap();
            assert_eq!(second.attempt, 2);
            // every write of the first attempt is refused and changes nothing
            let before = new.run(&id).unwrap().heartbeat;
            assert!(old.log_metrics_held(&first, &[loss(2)]).is_err());
            assert!(old.verify_claim(&first).is_err());
            assert!(!old.heartbeat(&first, -1e9).unwrap());
            assert!(old.truncate_metrics(&first, 0).is_err());
            assert!(old
                .set_artifact(&first, "checkpoint", "x", Some(1))
                .is_err());
            assert!(old
                .mark_worker(&first, &Owner::local(1), "flex", "cpu", "out")
                .is_err());
            assert!(old.log_spectra_held(&first, 1, &[]).is_err());
            assert!(old.replace_history(&first, &[loss(9)], "{}").is_err());
            assert!(old.finish(&first, Status::Finished, None).is_err());
            let row = new.run(&id).unwrap();
            assert_eq!((row.status, row.attempts), (Status::Running, 2));
            assert_eq!(row.heartbeat, before, "{}", backend.name());
            assert!(new.artifacts(&id).unwrap().is_empty());
            let steps: Vec<i64> = new.metrics(&id).unwrap().iter().map(|m| m.step).collect();
            assert_eq!(
                steps,
                [1],
                "only the first attempt's write before it lost the claim"
            );
            // the second attempt's writes go through
            new.log_metrics_held(&second, &[loss(2)]).unwrap();
            assert!(new.heartbeat(&second, 0.0).unwrap());
            new.finish(&second, Status::Finished, None).unwrap();
            assert_eq!(new.run(&id).unwrap().status, Status::Finished);
        }
    }
}
