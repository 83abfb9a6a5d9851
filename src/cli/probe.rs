//! `workbench probe RUN`: probes a stored run's encoder; results become run metrics.

use anyhow::Result;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use qbheat_workbench::analysis::stored::{checkpoint_of, config_of};
use qbheat_workbench::backend::{dispatch, OnBackend, TrainBackend};
use qbheat_workbench::config::RunConfig;
use qbheat_workbench::probe::{pipeline, ProbeVariant};
use qbheat_workbench::spec::ProbeKind;
use qbheat_workbench::store::{RunRow, Status, Store};
use qbheat_workbench::sweep::runner::STALE_AFTER_S;
use qbheat_workbench::sweep::worker::{pca_embedding, probe_metrics};

use super::DbArg;

/// A run whose worker is alive (status running, heartbeat within [`STALE_AFTER_S`] of the
/// database's clock `now`) is not probed: its checkpoint changes under the probe, its own
/// probes are stored when it finishes, and the probe's metric writes would count as its
/// heartbeat. A running run whose heartbeat went stale (its worker died) may be probed.
fn refuse_live(row: &RunRow, now: f64) -> Result<()> {
    let live = row.status == Status::Running && !row.heartbeat_stale(now, STALE_AFTER_S);
    anyhow::ensure!(
        !live,
        "run {} is running (last heartbeat {:.0} s ago): probe it when it has finished or \
         stopped (TUI `S` stops it at a checkpoint); its own probes are stored when it finishes",
        row.id,
        now - row.heartbeat.unwrap_or(now)
    );
    Ok(())
}

/// Probes run `run` with `kinds` (at `widths` and `depth` of the tran head when given).
pub fn run(
    db: &DbArg,
    run: &str,
    kinds: Vec<ProbeKind>,
    widths: &[u32],
    depth: Option<u32>,
) -> Result<()> {
    let path = db.locator();
    let store = Store::open_read_only(&path)?;
    let row = store.run(run)?;
    refuse_live(&row, store.db_now()?)?;
    drop(store);
    let cfg = config_of(&row)?;
    let kinds = if !kinds.is_empty() {
        kinds
    } else if !cfg.probe.kinds.is_empty() {
        cfg.probe.kinds.clone()
    } else {
        vec![ProbeKind::Lin, ProbeKind::Tran1]
    };
    if cfg.method.pretrains() && checkpoint_of(&row)?.is_none() {
        anyhow::bail!(
            "run {} ({}) has no checkpoint to probe yet{}",
            row.id,
            row.status,
            match &row.out_dir {
                None => " (it never started)".to_string(),
                Some(o) => format!(" in {o}"),
            }
        );
    }
    let mut recipe = cfg.probe.clone();
    if let Some((first, rest)) = widths.split_first() {
        recipe.tran_width = Some(*first as usize);
        recipe.tran_widths = rest.iter().map(|&w| w as usize).collect();
    }
    if let Some(d) = depth {
        recipe.tran_depth = d as usize;
    }
    // results keep the plain `tran-1` key only at the config's own width
    let default_width = cfg.probe.tran_width_for(cfg.model.preset);
    let variants: Vec<ProbeVariant> = recipe
        .variants(&kinds, cfg.model.preset)
        .into_iter()
        .map(|v| ProbeVariant { default_width, ..v })
        .collect();
    let out = PathBuf::from(row.out_dir.clone().unwrap_or_default());
    let job = Evaluate {
        cfg: &cfg,
        out: &out,
        variants: &variants,
        stop: super::signal::stop_flag()?,
    };
    let eval = dispatch(cfg.backend, cfg.device, job)?;
    let results = eval.results;
    let mut store = Store::open_existing(&path)?;
    store.log_metrics(&row.id, &probe_metrics(&results))?;
    if let Some(pca) = &eval.embedding {
        let epoch = checkpoint_of(&row)?.map_or(0, |(_, e)| e as i64);
        store.log_embedding(&row.id, None, &pca_embedding(pca, epoch))?;
    }
    for (name, r) in &results {
        println!(
            "probe {name:<10} top1 {:.4}  ({} epochs, train {:.0} img/s, extract {:.0} img/s, {:.1}s)",
            r.top1(),
            r.top1_per_epoch.len(),
            r.train_img_per_s,
            r.extract_img_per_s,
            r.seconds
        );
    }
    Ok(())
}

/// The probes of a run on its backend.
struct Evaluate<'a> {
    cfg: &'a RunConfig,
    out: &'a Path,
    variants: &'a [ProbeVariant],
    stop: Arc<AtomicBool>,
}

impl OnBackend for Evaluate<'_> {
    type Output = pipeline::Evaluation;
    fn run<B: TrainBackend>(self, device: B::Device) -> Result<Self::Output> {
        pipeline::evaluate::<B>(
            self.cfg,
            self.out,
            self.variants,
            &device,
            &self.stop,
            &mut |_, _| Ok(()),
        )
    }
}
