//! Early-stopping decisions (schema version 8): at each rung of a sweep's `[early_stop]`, one
//! row per setting (a run config without its seed) saying whether it goes on or is pruned, and
//! what it was judged on. The key (sweep, setting, rung) is written once: the first worker to
//! decide wins, every later one (another seed, a resumed run) reads that row, so a decision is
//! never made twice nor undone, with any number of workers and across kills and resumes.

use anyhow::Result;
use std::collections::HashMap;

use super::claim::{ensure_held, Claim};
use super::db::Row;
use super::schema;
use super::Store;

/// The first schema version with decisions and the `pruned` status.
pub const DECISIONS_VERSION: i64 = 8;

/// One decision about a setting at a rung.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Decision {
    pub sweep: String,
    /// The setting's id: the run id of its config with seed 0.
    pub setting: String,
    /// The epoch it was judged after.
    pub rung: i64,
    pub metric: String,
    /// The setting's value: the mean over its seeds that had reached the rung.
    pub value: f64,
    /// How many of its seeds that mean is over.
    pub seeds: i64,
    /// Its rank among the settings at the rung (1 = best).
    pub rank: i64,
    /// Settings that had reached the rung, itself included.
    pub peers: i64,
    /// How many of them go on (⌈peers / keep⌉).
    pub keep_top: i64,
    pub prune: bool,
    /// The run whose arrival at the rung made the decision.
    pub run: String,
    pub created: f64,
}

impl Decision {
    /// What a pruned run's status line says: the rung, the value and the ranking.
    pub fn reason(&self) -> String {
        format!(
            "pruned at epoch {}: {} = {:.4} (mean of {} seed{}), rank {} of {} settings (the top {} go on)",
            self.rung,
            self.metric,
            self.value,
            self.seeds,
            if self.seeds == 1 { "" } else { "s" },
            self.rank,
            self.peers,
            self.keep_top
        )
    }
}

const COLUMNS: &str =
    "sweep, setting, rung, metric, value, seeds, rank, peers, keep_top, prune, run_id, created";

fn decision_from_row(r: &Row) -> Result<Decision> {
    Ok(Decision {
        sweep: r.get(0)?,
        setting: r.get(1)?,
        rung: r.get(2)?,
        metric: r.get(3)?,
        value: r.get(4)?,
        seeds: r.get(5)?,
        rank: r.get(6)?,
        peers: r.get(7)?,
        keep_top: r.get(8)?,
        prune: r.get::<i64>(9)? != 0,
        run: r.get(10)?,
        created: r.get(11)?,
    })
}

impl Store {
    fn has_decisions(&self) -> Result<bool> {
        Ok(schema::version(&self.db)? >= DECISIONS_VERSION)
    }

    /// Records `d` for its (sweep, setting, rung) unless that is decided already, by the
    /// worker holding `claim`; returns the decision that holds (the earlier one if there was).
    pub fn decide(&self, claim: &Claim, d: &Decision) -> Result<Decision> {
        self.db.write(|db| {
            ensure_held(db, claim)?;
            db.execute(
                &format!(
                    "INSERT INTO decisions({COLUMNS}) VALUES
                         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, {{now}})
                     ON CONFLICT(sweep, setting, rung) DO NOTHING"
                ),
                &[
                    &d.sweep,
                    &d.setting,
                    &d.rung,
                    &d.metric,
                    &d.value,
                    &d.seeds,
                    &d.rank,
                    &d.peers,
                    &d.keep_top,
                    &i64::from(d.prune),
                    &d.run,
                ],
            )?;
            let row = db.query_one(
                &format!(
                    "SELECT {COLUMNS} FROM decisions WHERE sweep = ?1 AND setting = ?2 AND rung = ?3"
                ),
                &[&d.sweep, &d.setting, &d.rung],
            )?;
            decision_from_row(&row)
        })
    }

    /// The decisions of a sweep (every sweep's with `None`), by rung then time.
    pub fn decisions(&self, sweep: Option<&str>) -> Result<Vec<Decision>> {
        if !self.has_decisions()? {
            return Ok(Vec::new());
        }
        let rows = self.db.query(
            &format!(
                "SELECT {COLUMNS} FROM decisions WHERE CAST(?1 AS TEXT) IS NULL OR sweep = ?1
                 ORDER BY sweep, rung, created, setting"
            ),
            &[&sweep],
        )?;
        rows.iter().map(decision_from_row).collect()
    }

    /// The value of metric `key` at epoch `epoch` of every run that logged it there (the last
    /// row of that epoch), keyed by run id.
    pub fn values_at_epoch(&self, key: &str, epoch: i64) -> Result<HashMap<String, f64>> {
        let rows = self.db.query(
            "SELECT run_id, value FROM metrics WHERE key = ?1 AND epoch = ?2 ORDER BY run_id, step",
            &[&key, &epoch],
        )?;
        rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?))).collect()
    }
}
