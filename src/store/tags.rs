//! Tags and notes (schema version 7): a user's labels on runs and sweeps (`workbench tag`,
//! `untag`, `note`), shown by `show`, `runs`, the TUI and the report. Rows are keyed by the run
//! id, so they follow a renamed run; an adopted history leaves them alone.

use anyhow::Result;
use std::collections::HashMap;

use super::schema;
use super::Store;

/// The first schema version with tags and notes.
pub const TAGS_VERSION: i64 = 7;

/// One note: when it was written (seconds since the Unix epoch) and its text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Note {
    pub created: f64,
    pub text: String,
}

/// What a tag or note is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Run,
    Sweep,
}

impl Target {
    fn tables(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Target::Run => ("run_tags", "run_notes", "run_id"),
            Target::Sweep => ("sweep_tags", "sweep_notes", "sweep"),
        }
    }
}

/// A tag: a word of letters, digits and `-_.:/` (so `tag:NAME` filters stay unambiguous).
pub fn check_tag(tag: &str) -> Result<()> {
    anyhow::ensure!(
        !tag.is_empty()
            && tag.len() <= 64
            && tag
                .chars()
                .all(|c| c.is_alphanumeric() || "-_.:/".contains(c)),
        "tag {tag:?}: use 1 to 64 letters, digits or - _ . : /"
    );
    Ok(())
}

impl Store {
    fn has_tags(&self) -> Result<bool> {
        Ok(schema::version(&self.db)? >= TAGS_VERSION)
    }

    /// Tags `ids` (runs or sweeps, which must exist) with `tag`; returns how many were new.
    pub fn tag(&self, target: Target, ids: &[String], tag: &str) -> Result<usize> {
        check_tag(tag)?;
        let (tags, _, col) = target.tables();
        self.db.write(|db| {
            let mut added = 0;
            for id in ids {
                added += db.execute(
                    &format!(
                        "INSERT INTO {tags}({col}, tag, created) VALUES (?1, ?2, {{now}})
                         ON CONFLICT({col}, tag) DO NOTHING"
                    ),
                    &[id, &tag],
                )?;
            }
            Ok(added)
        })
    }

    /// Removes `tag` from `ids`; returns how many had it.
    pub fn untag(&self, target: Target, ids: &[String], tag: &str) -> Result<usize> {
        let (tags, _, col) = target.tables();
        self.db.write(|db| {
            let mut removed = 0;
            for id in ids {
                removed += db.execute(
                    &format!("DELETE FROM {tags} WHERE {col} = ?1 AND tag = ?2"),
                    &[id, &tag],
                )?;
            }
            Ok(removed)
        })
    }

    /// Adds a note to a run or sweep.
    pub fn add_note(&self, target: Target, id: &str, text: &str) -> Result<()> {
        anyhow::ensure!(!text.trim().is_empty(), "a note needs some text");
        let (_, notes, col) = target.tables();
        self.db.write(|db| {
            db.execute(
                &format!("INSERT INTO {notes}({col}, created, text) VALUES (?1, {{now}}, ?2)"),
                &[&id, &text],
            )?;
            Ok(())
        })
    }

    /// Every tag of every run or sweep, sorted.
    pub fn all_tags(&self, target: Target) -> Result<HashMap<String, Vec<String>>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        if !self.has_tags()? {
            return Ok(out);
        }
        let (tags, _, col) = target.tables();
        for r in self.db.query(
            &format!("SELECT {col}, tag FROM {tags} ORDER BY {col}, tag"),
            &[],
        )? {
            out.entry(r.get(0)?).or_default().push(r.get(1)?);
        }
        Ok(out)
    }

    /// Every note of every run or sweep, oldest first.
    pub fn all_notes(&self, target: Target) -> Result<HashMap<String, Vec<Note>>> {
        let mut out: HashMap<String, Vec<Note>> = HashMap::new();
        if !self.has_tags()? {
            return Ok(out);
        }
        let (_, notes, col) = target.tables();
        for r in self.db.query(
            &format!("SELECT {col}, created, text FROM {notes} ORDER BY {col}, created"),
            &[],
        )? {
            out.entry(r.get(0)?).or_default().push(Note {
                created: r.get(1)?,
                text: r.get(2)?,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RunConfig;
    use crate::store::NewRun;

    #[test]
    fn tags_and_notes_follow_a_renamed_run_and_leave_the_store_sound() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path().join("t.db").as_path()).unwrap();
        let runs: Vec<NewRun> = (0..2u64)
            .map(|seed| {
                NewRun::from_config(&RunConfig {
                    seed,
                    ..Default::default()
                })
            })
            .collect();
        s.register_sweep("sw", "sw.toml", &runs).unwrap();
        let ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
        assert_eq!(s.tag(Target::Run, &ids, "baseline").unwrap(), 2);
        assert_eq!(
            s.tag(Target::Run, &ids[..1], "baseline").unwrap(),
            0,
            "once per run"
        );
        s.tag(Target::Run, &ids[..1], "paper:tab2").unwrap();
        s.add_note(Target::Run, &ids[0], "lr too high?").unwrap();
        s.tag(Target::Sweep, &["sw".to_string()], "ablation")
            .unwrap();
        s.add_note(Target::Sweep, "sw", "rerun with 3 seeds")
            .unwrap();
        assert!(s.add_note(Target::Run, &ids[0], "  ").is_err());
        assert!(s.tag(Target::Run, &ids, "two words").is_err());
        assert!(
            s.tag(Target::Run, &["nosuch".to_string()], "x").is_err(),
            "a run must exist"
        );
        // a renamed run keeps its tags and notes
        assert!(s.rename_run(&ids[0], "renamed00001").unwrap());
        let tags = s.all_tags(Target::Run).unwrap();
        assert_eq!(tags["renamed00001"], ["baseline", "paper:tab2"]);
        assert!(!tags.contains_key(&ids[0]));
        assert_eq!(
            s.all_notes(Target::Run).unwrap()["renamed00001"][0].text,
            "lr too high?"
        );
        assert_eq!(s.all_tags(Target::Sweep).unwrap()["sw"], ["ablation"]);
        assert_eq!(
            s.all_notes(Target::Sweep).unwrap()["sw"][0].text,
            "rerun with 3 seeds"
        );
        assert_eq!(
            s.untag(Target::Run, &["renamed00001".to_string()], "baseline")
                .unwrap(),
            1
        );
        assert_eq!(
            s.all_tags(Target::Run).unwrap()["renamed00001"],
            ["paper:tab2"]
        );
        assert_eq!(s.integrity_check().unwrap(), "ok");
    }
}
