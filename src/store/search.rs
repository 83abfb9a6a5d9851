//! The keys a sweep's `[search]` samples (schema version 8, `sweeps.search`): what tells the
//! report a search's trials (a table sorted by the metric, a parallel-coordinates figure) from
//! a grid's points (main effects).

use anyhow::Result;

use super::decisions::DECISIONS_VERSION;
use super::schema;
use super::Store;

impl Store {
    /// Records the searched keys of sweep `name` (empty: the sweep has no `[search]`).
    pub fn set_sweep_search(&self, name: &str, keys: &[String]) -> Result<()> {
        let json = (!keys.is_empty())
            .then(|| serde_json::to_string(keys))
            .transpose()?;
        self.db.write(|db| {
            db.execute(
                "UPDATE sweeps SET search = ?2 WHERE name = ?1",
                &[&name, &json],
            )
        })?;
        Ok(())
    }

    /// The searched keys of sweep `name` (none for a grid sweep or an older store).
    pub fn sweep_search(&self, name: &str) -> Result<Vec<String>> {
        if schema::version(&self.db)? < DECISIONS_VERSION {
            return Ok(Vec::new());
        }
        let json: Option<String> = self
            .db
            .query_opt("SELECT search FROM sweeps WHERE name = ?1", &[&name])?
            .map(|r| r.get(0))
            .transpose()?
            .flatten();
        Ok(json
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default())
    }
}
