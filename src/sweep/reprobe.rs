//! Probe settings changed on runs that exist already: a run's id leaves out its `[probe]`
//! table (see [`crate::config::identity`]), so a sweep that adds a probe width, a depth or a
//! kind to a finished run finds that run and probes it again without pre-training again.
//!
//! What is stale: when the probe recipe itself changed (epochs, learning rates, …: everything
//! but which probes run), the run's probe results no longer describe its config and are
//! dropped; when only `kinds`, `tran_widths` or `tran_depth` changed, the results stored
//! already stay and only the missing ones run.

use anyhow::Result;
use std::collections::HashSet;

use crate::config::RunConfig;
use crate::probe::ProbeVariant;
use crate::store::{NewRun, Status, Store};

/// What a planned config asks of a stored run with other probe settings: whether the stored
/// probe results are stale (the recipe changed), and the probes to run (given whether a
/// metric key is stored). `None` when the probe settings are the same.
pub fn plan(
    stored: &RunConfig,
    planned: &RunConfig,
    has: impl Fn(&str) -> bool,
) -> Option<(bool, Vec<ProbeVariant>)> {
    if stored.probe == planned.probe {
        return None;
    }
    let stale = stored.probe.recipe_part() != planned.probe.recipe_part();
    let pending = crate::probe::pending(planned, |k| !(stale && k.starts_with("probe/")) && has(k));
    Some((stale, pending))
}

/// What a planned run would write, and how the store holds it with other probe settings.
struct Stored {
    new: NewRun,
    status: Status,
    /// The stored probe results no longer describe the planned recipe.
    stale: bool,
    /// The probes the planned config still needs.
    pending: Vec<ProbeVariant>,
}

/// A planned run as the store holds it with other probe settings; `None` for a run that is
/// not stored or has the same probe settings.
fn compare(store: &Store, cfg: &RunConfig) -> Result<Option<Stored>> {
    let new = NewRun::from_config(cfg);
    let Ok(row) = store.run(&new.id) else {
        return Ok(None);
    };
    if row.config == new.config {
        return Ok(None);
    }
    let Ok(stored) = serde_json::from_str::<RunConfig>(&row.config) else {
        return Ok(None);
    };
    let keys: HashSet<String> = store
        .latest_metrics(&row.id)?
        .into_iter()
        .map(|m| m.key)
        .collect();
    Ok(
        plan(&stored, cfg, |k| keys.contains(k)).map(|(stale, pending)| Stored {
            new,
            status: row.status,
            stale,
            pending,
        }),
    )
}

/// The planned runs a sweep would probe again: stored finished runs whose planned probes are
/// not all stored (for `sweep --dry-run`).
pub fn to_probe_again(store: &Store, planned: &[&RunConfig]) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    for cfg in planned {
        if let Some(s) = compare(store, cfg)? {
            if s.status == Status::Finished && !s.pending.is_empty() {
                out.insert(s.new.id);
            }
        }
    }
    Ok(out)
}

/// Gives each planned run that exists with other probe settings the planned ones, and puts
/// a finished one whose probe results are now incomplete back in the queue. Returns a line
/// per changed run.
pub fn sync_probe_settings(store: &mut Store, planned: &[&RunConfig]) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for cfg in planned {
        let Some(Stored {
            new,
            status,
            stale,
            pending,
        }) = compare(store, cfg)?
        else {
            continue;
        };
        let requeue = status == Status::Finished && !pending.is_empty();
        if !store.set_probe_settings(&new, stale, requeue)? {
            continue;
        }
        let names: Vec<String> = pending.iter().map(|v| v.name()).collect();
        lines.push(if requeue {
            format!(
                "reprobe  {} {} (pre-training kept{})",
                new.id,
                names.join(" "),
                if stale {
                    "; the probe recipe changed, its old probe results are dropped"
                } else {
                    ""
                }
            )
        } else {
            format!("probe settings of {} updated", new.id)
        });
    }
    Ok(lines)
}
