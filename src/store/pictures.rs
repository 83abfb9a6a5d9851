//! Pictures and embeddings of a run (schema version 6): PNG strips and figures written by the
//! worker and `workbench attention`, 2-D embeddings of probe features; read by the TUI and the
//! report. A store older than [`PICTURES_VERSION`] (which a viewer opens without migrating)
//! simply has none.

use anyhow::{Context, Result};

use super::claim::{ensure_held, Claim};
use super::db::Db;
use super::rows::{Embedding, NewPicture, Picture};
use super::schema::{self, PICTURES_VERSION};
use super::Store;

/// Picture kind of the reconstruction strips (one per image of the fixed validation batch).
pub const RECONSTRUCTION: &str = "reconstruction";

impl Store {
    /// Whether the store has the pictures tables (false for a store from before them).
    pub fn has_pictures(&self) -> Result<bool> {
        Ok(schema::version(&self.db)? >= PICTURES_VERSION)
    }

    /// Stores pictures (replacing earlier ones of the same kind, epoch and item), by the worker
    /// holding `claim` (`None`: an analysis verb on a run nobody trains).
    pub fn log_pictures(
        &mut self,
        run: &str,
        claim: Option<&Claim>,
        pictures: &[NewPicture],
    ) -> Result<()> {
        self.db.write(|db| {
            if let Some(claim) = claim {
                ensure_held(db, claim)?;
            }
            for p in pictures {
                insert_picture(db, run, p)?;
            }
            Ok(())
        })
    }

    /// Stores (replaces) the embedding `e.name` of a run.
    pub fn log_embedding(&mut self, run: &str, claim: Option<&Claim>, e: &Embedding) -> Result<()> {
        let detail = serde_json::to_string(e)?;
        self.db.write(|db| {
            if let Some(claim) = claim {
                ensure_held(db, claim)?;
            }
            db.execute(
                "INSERT INTO embeddings(run_id, name, epoch, detail) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(run_id, name) DO UPDATE SET
                     epoch = excluded.epoch, detail = excluded.detail",
                &[&run, &e.name, &e.epoch, &detail],
            )?;
            Ok(())
        })
    }

    /// The epochs with pictures of `kind` of a run, oldest first.
    pub fn picture_epochs(&self, run: &str, kind: &str) -> Result<Vec<i64>> {
        if !self.has_pictures()? {
            return Ok(Vec::new());
        }
        let rows = self.db.query(
            "SELECT DISTINCT epoch FROM pictures WHERE run_id = ?1 AND kind = ?2 ORDER BY epoch",
            &[&run, &kind],
        )?;
        rows.iter().map(|r| r.get(0)).collect()
    }

    /// The pictures of `kind` of a run, by epoch then item; only `epoch` when given.
    pub fn pictures(&self, run: &str, kind: &str, epoch: Option<i64>) -> Result<Vec<Picture>> {
        if !self.has_pictures()? {
            return Ok(Vec::new());
        }
        let select = "SELECT kind, epoch, item, caption, value, png FROM pictures
                      WHERE run_id = ?1 AND kind = ?2";
        let rows = match epoch {
            Some(e) => self.db.query(
                &format!("{select} AND epoch = ?3 ORDER BY item"),
                &[&run, &kind, &e],
            )?,
            None => self
                .db
                .query(&format!("{select} ORDER BY epoch, item"), &[&run, &kind])?,
        };
        rows.iter()
            .map(|r| {
                Ok(Picture {
                    kind: r.get(0)?,
                    epoch: r.get(1)?,
                    item: r.get(2)?,
                    caption: r.get(3)?,
                    value: r.get(4)?,
                    png: r.get(5)?,
                })
            })
            .collect()
    }

    /// The picture kinds a run has (e.g. `reconstruction`, `attention/m2f`).
    pub fn picture_kinds(&self, run: &str) -> Result<Vec<String>> {
        if !self.has_pictures()? {
            return Ok(Vec::new());
        }
        let rows = self.db.query(
            "SELECT DISTINCT kind FROM pictures WHERE run_id = ?1 ORDER BY kind",
            &[&run],
        )?;
        rows.iter().map(|r| r.get(0)).collect()
    }

    /// The embedding `name` of a run, if stored.
    pub fn embedding(&self, run: &str, name: &str) -> Result<Option<Embedding>> {
        if !self.has_pictures()? {
            return Ok(None);
        }
        let row = self.db.query_opt(
            "SELECT detail FROM embeddings WHERE run_id = ?1 AND name = ?2",
            &[&run, &name],
        )?;
        row.map(|r| {
            let detail: String = r.get(0)?;
            serde_json::from_str(&detail)
                .with_context(|| format!("run {run}: corrupt embedding {name}"))
        })
        .transpose()
    }
}

fn insert_picture(db: &Db, run: &str, p: &NewPicture) -> Result<()> {
    db.execute(
        "INSERT INTO pictures(run_id, kind, epoch, item, caption, value, png)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(run_id, kind, epoch, item) DO UPDATE SET
             caption = excluded.caption, value = excluded.value, png = excluded.png",
        &[
            &run,
            &p.kind,
            &p.epoch,
            &p.item,
            &p.caption,
            &p.value,
            &p.png.as_slice(),
        ],
    )?;
    Ok(())
}
