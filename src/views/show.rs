//! `workbench show RUN`: config, status, latest metrics, artifacts.

use anyhow::Result;
use std::fmt::Write;

use crate::store::tags::Target;
use crate::store::{now, Store};

pub fn show(store: &Store, id: &str) -> Result<String> {
    let r = store.run(id)?;
    let mut out = String::new();
    let _ = writeln!(out, "run        {}", r.id);
    let _ = writeln!(out, "sweep      {}", r.sweep);
    let _ = writeln!(out, "status     {}", r.status);
    if let Some(e) = &r.error {
        let _ = writeln!(out, "error      {e}");
    }
    if r.preemptions > 0 {
        let _ = writeln!(
            out,
            "attempts   {} (and {} preemptions, resumed from checkpoints)",
            r.attempts, r.preemptions
        );
    } else {
        let _ = writeln!(out, "attempts   {}", r.attempts);
    }
    if let Some(host) = &r.host {
        let slurm = r
            .slurm_job
            .as_deref()
            .map(|j| format!(", SLURM job {j}"))
            .unwrap_or_default();
        let pid = r.pid.map(|p| format!(" pid {p}")).unwrap_or_default();
        let _ = writeln!(out, "worker     {host}{pid}{slurm}");
    }
    let _ = writeln!(
        out,
        "backend    {} ({})",
        r.backend.as_deref().unwrap_or("-"),
        r.device.as_deref().unwrap_or("-")
    );
    let _ = writeln!(out, "binary     {}", r.git_commit.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "folder     {}", r.out_dir.as_deref().unwrap_or("-"));
    if let Some(file) = r.reference() {
        let _ = writeln!(out, "reference  imported from {file} (metrics only)");
    } else if let Some(p) = &r.provenance {
        let _ = writeln!(out, "adopted    {}", adopted(p));
    }
    if let Some(d) = r.elapsed(now()) {
        let _ = writeln!(out, "duration   {d:.1}s");
    }
    if let Some(tags) = store.all_tags(Target::Run)?.get(&r.id) {
        let _ = writeln!(out, "tags       {}", tags.join(", "));
    }
    for n in store
        .all_notes(Target::Run)?
        .remove(&r.id)
        .unwrap_or_default()
    {
        let _ = writeln!(
            out,
            "note       {}  {}",
            crate::analysis::progress::format_date(n.created),
            n.text
        );
    }
    // the settings the run's method uses (QB-Heat's decoder means nothing to MoCo-v2)
    let method = serde_json::from_str::<crate::config::RunConfig>(&r.config)
        .map(|c| c.method)
        .ok();
    let _ = writeln!(out, "\nconfig");
    for (k, v) in store.params(&r.id)? {
        if method.is_none_or(|m| m.uses(&k)) {
            let _ = writeln!(out, "  {k} = {v}");
        }
    }
    let _ = writeln!(out, "\nlatest metrics");
    for m in store.latest_metrics(&r.id)? {
        let _ = writeln!(
            out,
            "  {:<24} {:>12.6}  (epoch {}, step {})",
            m.key, m.value, m.epoch, m.step
        );
    }
    let _ = writeln!(out, "\nartifacts");
    for a in store.artifacts(&r.id)? {
        let _ = writeln!(
            out,
            "  {:<12} {} (epoch {})",
            a.kind,
            a.path,
            a.epoch.map_or("-".into(), |e| e.to_string())
        );
    }
    Ok(out)
}

/// One line for a run's provenance JSON: which store watched it, what is missing.
fn adopted(provenance: &str) -> String {
    let Ok(p) = serde_json::from_str::<serde_json::Value>(provenance) else {
        return provenance.to_string();
    };
    let list = |key: &str| -> String {
        p[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    };
    format!(
        "from store {} at checkpoint step {}; recovered: {}; missing: {}",
        p["adopted_from_store"].as_str().unwrap_or("unknown"),
        p["checkpoint_step"],
        list("recovered"),
        list("missing")
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn config_status_metrics_and_artifacts() {
        let dir = tempfile::tempdir().unwrap();
        let (s, ids) = crate::views::fixture::store(dir.path());
        let out = super::show(&s, &ids[0][..6]).unwrap();
        assert!(out.starts_with(&format!(
            "run        {}\nsweep      fx\nstatus     finished\n",
            ids[0]
        )));
        assert!(out.contains("  masking.position = corner\n"), "{out}");
        assert!(
            out.contains("  epoch/val_loss               0.500000  (epoch 3, step 3)"),
            "{out}"
        );
        assert!(
            out.contains("  checkpoint   runs/fx/x/checkpoints/step-00000003 (epoch 3)"),
            "{out}"
        );
        let failed = super::show(&s, &ids[2]).unwrap();
        assert!(
            failed.contains("error      loss became NaN at epoch 2 step 5"),
            "{failed}"
        );
    }
}
