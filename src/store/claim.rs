//! Claims: which worker holds a run, as compare-and-swap writes on the run's row.
//!
//! A sweep claims a run by moving it to `running` and counting one more attempt, in one
//! `UPDATE … WHERE status IN (…)`; the attempt number it gets back is the fence of every write
//! the worker makes for that run ([`Claim`]): a write whose (run, attempt) no longer matches a
//! `running` row is refused with [`LostClaim`] and changes nothing. Requeueing a run whose
//! worker died is a compare-and-swap on the (status, attempt) the sweep observed, so a run
//! that finished meanwhile, or was claimed again, is left alone.

use anyhow::Result;
use rusqlite::{params, Connection, OptionalExtension};

use super::rows::Status;
use super::{now, Store};

/// A worker's hold on one run: the attempt its claim started. Every write a worker makes
/// for the run is fenced by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub run: String,
    pub attempt: i64,
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
pub(super) fn ensure_held(conn: &Connection, claim: &Claim) -> Result<()> {
    let row: Option<(String, i64)> = conn
        .query_row(
            "SELECT status, attempts FROM runs WHERE id = ?1",
            params![claim.run],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
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
    /// `running` and counts the attempt. Returns the claim, or `None` when the run was not
    /// claimable (someone else got it first, or it finished).
    pub fn claim(&mut self, id: &str, pid: u32, retry_failed: bool) -> Result<Option<Claim>> {
        let attempt: Option<i64> = self
            .conn
            .query_row(
                "UPDATE runs SET status = 'running', pid = ?2, heartbeat = ?3,
                     attempts = attempts + 1, error = NULL, started = COALESCE(started, ?3),
                     ended = NULL, stop_requested = 0
                 WHERE id = ?1 AND (status IN ('queued', 'stopped') OR (?4 AND status = 'failed'))
                 RETURNING attempts",
                params![id, pid as i64, now(), retry_failed],
                |r| r.get(0),
            )
            .optional()?;
        Ok(attempt.map(|attempt| Claim {
            run: id.to_string(),
            attempt,
        }))
    }

    /// Fails unless `claim` still holds its run (a worker checks this before it trains).
    pub fn verify_claim(&self, claim: &Claim) -> Result<()> {
        ensure_held(&self.conn, claim)
    }

    /// Records that the worker holding `claim` was alive (made progress) at time `at`.
    /// Returns false, writing nothing, when the claim was lost.
    pub fn heartbeat(&self, claim: &Claim, at: f64) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE runs SET heartbeat = MAX(COALESCE(heartbeat, 0), ?3)
             WHERE id = ?1 AND status = 'running' AND attempts = ?2",
            params![claim.run, claim.attempt, at],
        )?;
        Ok(n == 1)
    }

    /// The final (or stopping) status the worker holding `claim` gives its run; refused with
    /// [`LostClaim`] when the claim was lost.
    pub fn finish(&self, claim: &Claim, status: Status, error: Option<&str>) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE runs SET status = ?3, error = ?4, ended = ?5, stop_requested = 0, pid = NULL
             WHERE id = ?1 AND status = 'running' AND attempts = ?2",
            params![claim.run, claim.attempt, status.as_str(), error, now()],
        )?;
        if n == 1 {
            return Ok(());
        }
        ensure_held(&self.conn, claim)?;
        anyhow::bail!("run {}: status not written", claim.run)
    }

    /// Puts a `running` run whose worker died back in the queue (or fails it with `error`),
    /// if it is still in the state the caller observed: running, at attempt `attempt`.
    /// Returns false, writing nothing, when it finished, stopped or was claimed again
    /// meanwhile.
    pub fn requeue_dead(&self, id: &str, attempt: i64, fail_with: Option<&str>) -> Result<bool> {
        let (status, ended) = match fail_with {
            Some(_) => (Status::Failed, Some(now())),
            None => (Status::Queued, None),
        };
        let n = self.conn.execute(
            "UPDATE runs SET status = ?3, error = ?4, ended = ?5, pid = NULL, stop_requested = 0
             WHERE id = ?1 AND status = 'running' AND attempts = ?2",
            params![id, attempt, status.as_str(), fail_with, ended],
        )?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Metric, NewRun};
    use std::path::Path;

    fn store_with_one_run(dir: &Path) -> (std::path::PathBuf, String) {
        let path = dir.join("c.db");
        let mut s = Store::open(&path).unwrap();
        let run = NewRun::from_config(&crate::config::RunConfig::default());
        s.register_sweep("sw", "sw.toml", std::slice::from_ref(&run))
            .unwrap();
        (path, run.id)
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
    fn two_runners_racing_for_a_run_claim_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let (path, id) = store_with_one_run(dir.path());
        for round in 0..20 {
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
            let racers: Vec<_> = (0..2)
                .map(|k| {
                    let (path, id, barrier) = (path.clone(), id.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let mut s = Store::open(&path).unwrap();
                        barrier.wait();
                        s.claim(&id, 100 + k, false).unwrap()
                    })
                })
                .collect();
            let won: Vec<Claim> = racers
                .into_iter()
                .filter_map(|r| r.join().unwrap())
                .collect();
            assert_eq!(won.len(), 1, "round {round}");
            assert_eq!(won[0].attempt, round + 1);
            let s = Store::open(&path).unwrap();
            assert!(s.requeue_dead(&id, won[0].attempt, None).unwrap());
        }
    }

    #[test]
    fn a_requeue_never_undoes_a_run_that_finished_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let (path, id) = store_with_one_run(dir.path());
        let mut worker = Store::open(&path).unwrap();
        let runner = Store::open(&path).unwrap();
        let claim = worker.claim(&id, 1, false).unwrap().unwrap();
        // the runner looked at the row (running, attempt 1) and decided the worker was dead;
        // the worker finishes before the runner's write lands
        let observed = runner.run(&id).unwrap();
        worker.finish(&claim, Status::Finished, None).unwrap();
        assert!(!runner.requeue_dead(&id, observed.attempts, None).unwrap());
        assert!(!runner
            .requeue_dead(&id, observed.attempts, Some("died 3 times"))
            .unwrap());
        let row = runner.run(&id).unwrap();
        assert_eq!(
            (row.status, row.attempts, row.error),
            (Status::Finished, 1, None)
        );
    }

    #[test]
    fn a_worker_whose_run_was_requeued_writes_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let (path, id) = store_with_one_run(dir.path());
        let mut old = Store::open(&path).unwrap();
        let first = old.claim(&id, 1, false).unwrap().unwrap();
        old.log_metrics_held(&first, &[loss(1)]).unwrap();
        // the runner requeues it (the worker looked dead), another worker claims it
        let mut new = Store::open(&path).unwrap();
        assert!(new.requeue_dead(&id, first.attempt, None).unwrap());
        let e = old.log_metrics_held(&first, &[loss(2)]).unwrap_err();
        let lost = e.downcast_ref::<LostClaim>().expect("a LostClaim");
        assert_eq!(lost.now, "queued, attempt 1");
        let second = new.claim(&id, 2, false).unwrap().unwrap();
        assert_eq!(second.attempt, 2);
        // every write of the first attempt is refused and changes nothing
        assert!(old.log_metrics_held(&first, &[loss(2)]).is_err());
        assert!(old.verify_claim(&first).is_err());
        assert!(!old.heartbeat(&first, 1e12).unwrap());
        assert!(old.truncate_metrics(&first, 0).is_err());
        assert!(old
            .set_artifact(&first, "checkpoint", "x", Some(1))
            .is_err());
        assert!(old.mark_worker(&first, 1, "flex", "cpu", "out").is_err());
        assert!(old.log_spectra_held(&first, 1, &[]).is_err());
        assert!(old.replace_history(&first, &[loss(9)], "{}").is_err());
        assert!(old.finish(&first, Status::Finished, None).is_err());
        let row = new.run(&id).unwrap();
        assert_eq!((row.status, row.attempts), (Status::Running, 2));
        assert!(row.heartbeat.unwrap() < 1e12);
        assert!(new.artifacts(&id).unwrap().is_empty());
        let steps: Vec<i64> = new.metrics(&id).unwrap().iter().map(|m| m.step).collect();
        assert_eq!(
            steps,
            [1],
            "only the first attempt's write before it lost the claim"
        );
        // the second attempt's writes go through
        new.log_metrics_held(&second, &[loss(2)]).unwrap();
        assert!(new.heartbeat(&second, 5.0).unwrap());
        new.finish(&second, Status::Finished, None).unwrap();
        assert_eq!(new.run(&id).unwrap().status, Status::Finished);
    }
}
