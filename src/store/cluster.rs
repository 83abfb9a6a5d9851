//! What a sweep on a cluster keeps in the store: how it executes (`local` or `slurm`), its
//! runs folder and batch script, the array jobs submitted for it, and the array task each of
//! its runs is frozen to (task `i` of every array job of the sweep is always the same run).

use anyhow::Result;

use super::claim::{Claim, Owner};
use super::Store;

impl Store {
    /// Records how `sweep` executes, where its runs folder is and which batch script it
    /// submits.
    pub fn set_sweep_executor(
        &self,
        sweep: &str,
        executor: &str,
        runs_root: &str,
        script: Option<&str>,
    ) -> Result<()> {
        self.db.write(|db| {
            db.execute(
                "UPDATE sweeps SET executor = ?2, runs_root = ?3, script = ?4 WHERE name = ?1",
                &[&sweep, &executor, &runs_root, &script],
            )
        })?;
        Ok(())
    }

    /// Appends a submitted SLURM array job to the sweep's list.
    pub fn add_slurm_job(&self, sweep: &str, job: &str) -> Result<()> {
        self.db.write(|db| {
            db.execute(
                "UPDATE sweeps SET slurm_jobs =
                     CASE WHEN slurm_jobs IS NULL OR slurm_jobs = '' THEN ?2
                          ELSE slurm_jobs || ',' || ?2 END
                 WHERE name = ?1",
                &[&sweep, &job],
            )
        })?;
        Ok(())
    }

    /// Gives every run of `sweep` in `ids` that has no array task yet the next free one, in
    /// the order given; tasks given before never change. Returns (task, run id) of every run
    /// of the sweep, by task.
    pub fn assign_tasks(&self, sweep: &str, ids: &[String]) -> Result<Vec<(i64, String)>> {
        self.db.write(|db| {
            let next: i64 = db
                .query_one(
                    "SELECT COALESCE(MAX(task), -1) + 1 FROM sweep_runs WHERE sweep = ?1",
                    &[&sweep],
                )?
                .get(0)?;
            let mut next = next;
            for id in ids {
                next += db.execute(
                    "UPDATE sweep_runs SET task = ?3 WHERE sweep = ?1 AND run_id = ?2 AND task IS NULL",
                    &[&sweep, id, &next],
                )? as i64;
            }
            Ok(())
        })?;
        self.tasks(sweep)
    }

    /// (task, run id) of every run of `sweep` that has a task, by task.
    pub fn tasks(&self, sweep: &str) -> Result<Vec<(i64, String)>> {
        let rows = self.db.query(
            "SELECT task, run_id FROM sweep_runs WHERE sweep = ?1 AND task IS NOT NULL ORDER BY task",
            &[&sweep],
        )?;
        rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?))).collect()
    }

    /// The run of `sweep` frozen to array task `task`.
    pub fn run_of_task(&self, sweep: &str, task: i64) -> Result<String> {
        let row = self.db.query_opt(
            "SELECT run_id FROM sweep_runs WHERE sweep = ?1 AND task = ?2",
            &[&sweep, &task],
        )?;
        match row {
            Some(r) => r.get(0),
            None => anyhow::bail!("sweep {sweep:?} has no run at array task {task}"),
        }
    }

    /// Claims the next claimable run of `sweep` (queued or stopped, lowest task first) for
    /// `owner`: one compare-and-swap under the store's write lock, so agents racing for runs
    /// each get a different one. `None` when none is left.
    pub fn claim_next(&mut self, sweep: &str, owner: &Owner) -> Result<Option<Claim>> {
        loop {
            let next = self.db.query_opt(
                "SELECT r.id FROM runs r JOIN sweep_runs s ON s.run_id = r.id
                 WHERE s.sweep = ?1 AND r.status IN ('queued', 'stopped')
                 ORDER BY s.task, r.created LIMIT 1",
                &[&sweep],
            )?;
            let Some(next) = next else {
                return Ok(None);
            };
            let id: String = next.get(0)?;
            // someone else may take it between the look and the claim: then look again
            if let Some(claim) = self.claim(&id, owner, false)? {
                return Ok(Some(claim));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::scratch::every_backend;
    use crate::store::NewRun;

    #[test]
    fn tasks_are_frozen_and_agents_take_each_run_once() {
        for backend in every_backend().unwrap() {
            let mut s = Store::open(&backend.locator).unwrap();
            let runs: Vec<NewRun> = (0..5)
                .map(|seed| {
                    NewRun::from_config(&crate::config::RunConfig {
                        seed,
                        ..Default::default()
                    })
                })
                .collect();
            let ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
            s.register_sweep("sw", "sw.toml", &runs[..3]).unwrap();
            let first = s.assign_tasks("sw", &ids[..3]).unwrap();
            assert_eq!(first.len(), 3);
            // the sweep grows: old runs keep their tasks, new ones get the next
            s.register_sweep("sw", "sw.toml", &runs).unwrap();
            let all = s.assign_tasks("sw", &ids).unwrap();
            assert_eq!(&all[..3], &first[..], "{}", backend.name());
            let tasks: Vec<i64> = all.iter().map(|t| t.0).collect();
            assert_eq!(tasks, [0, 1, 2, 3, 4]);
            assert_eq!(s.run_of_task("sw", 4).unwrap(), ids[4]);
            assert!(s.run_of_task("sw", 5).is_err());

            let handles: Vec<_> = (0..3)
                .map(|k| {
                    let at = backend.locator.clone();
                    std::thread::spawn(move || {
                        let mut s = Store::open(&at).unwrap();
                        let mut got = Vec::new();
                        while let Some(c) = s.claim_next("sw", &Owner::local(k)).unwrap() {
                            got.push(c.run);
                        }
                        got
                    })
                })
                .collect();
            let mut taken: Vec<String> = handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect();
            taken.sort();
            let mut expect = ids.clone();
            expect.sort();
            assert_eq!(taken, expect, "{}", backend.name());

            s.add_slurm_job("sw", "17").unwrap();
            s.add_slurm_job("sw", "18").unwrap();
            s.set_sweep_executor(
                "sw",
                "slurm",
                "/shared/runs",
                Some("/shared/runs/sw.sbatch"),
            )
            .unwrap();
            let row = s.sweep("sw").unwrap();
            assert_eq!(row.slurm_jobs.as_deref(), Some("17,18"));
            assert_eq!(row.executor.as_deref(), Some("slurm"));
        }
    }
}
