//! Crash-safe checkpoints: `OUT/checkpoints/step-NNNNNNNN/{model,optim}.bin + state.json`.
//!
//! A save writes a new folder under a temporary name, fsyncs it, renames it into place,
//! then replaces `latest.json` (write, fsync, rename, fsync the folder), and only then prunes
//! older folders. A process that dies at any point leaves `latest.json` pointing at a complete
//! checkpoint: the previous one until the pointer is replaced, the new one after. Folders are
//! named by optimiser step, so a new checkpoint never overwrites the one the pointer names.
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// Per-epoch summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub lr: f64,
    pub img_per_s: f64,
    pub seconds: f64,
}

impl EpochStats {
    /// The statistics under the metric keys a run stores them as.
    pub fn metrics(&self) -> [(&'static str, f64); 5] {
        [
            ("epoch/train_loss", self.train_loss),
            ("epoch/val_loss", self.val_loss),
            ("epoch/lr", self.lr),
            ("epoch/img_per_s", self.img_per_s),
            ("epoch/seconds", self.seconds),
        ]
    }
}

/// Training progress saved with each checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Optimiser steps completed.
    pub step: usize,
    /// Loss of every optimiser step so far.
    pub step_losses: Vec<f32>,
    /// Sum of the step losses of the epoch in progress (non-zero only mid-epoch).
    pub epoch_loss_sum: f64,
    pub epochs: Vec<EpochStats>,
    /// Optimiser steps of one epoch (0 in checkpoints written before it was recorded).
    #[serde(default)]
    pub steps_per_epoch: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct Latest {
    dir: String,
}

pub fn checkpoints_dir(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

/// The step of a save before which it is interrupted, for the crash tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    /// After the files are written, before the folder is renamed into place.
    Rename,
    /// After the rename, before `latest.json` names the new folder.
    Pointer,
    /// After the pointer moved, before older folders are pruned.
    Prune,
}

/// The folder `latest.json` names, if any.
fn pointer_target(root: &Path) -> Result<Option<String>> {
    let pointer = root.join("latest.json");
    if !pointer.exists() {
        return Ok(None);
    }
    let bytes =
        fs::read(&pointer).with_context(|| format!("{}: cannot read", pointer.display()))?;
    let latest: Latest = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: corrupt checkpoint pointer", pointer.display()))?;
    Ok(Some(latest.dir))
}

fn fsync(path: &Path) -> Result<()> {
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("{}: cannot sync to disk", path.display()))
}

/// fsyncs every file of a folder, then the folder.
fn fsync_tree(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))? {
        let path = entry?.path();
        if path.is_file() {
            fsync(&path)?;
        }
    }
    fsync(dir)
}

/// Writes a checkpoint: `write_files` fills a temporary folder, which is synced and renamed
/// to `step-NNNNNNNN`; `latest.json` is replaced next; then every checkpoint folder but the
/// new one and the previous one is removed. Returns the new folder.
pub fn save(
    out: &Path,
    state: &TrainState,
    write_files: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    save_until(out, state, write_files, None)
}

fn save_until(
    out: &Path,
    state: &TrainState,
    write_files: impl FnOnce(&Path) -> Result<()>,
    crash: Option<Crash>,
) -> Result<PathBuf> {
    let root = checkpoints_dir(out);
    fs::create_dir_all(&root).with_context(|| format!("{}: cannot create", root.display()))?;
    let previous = pointer_target(&root).ok().flatten();
    // a unique name: the step, and a suffix in the (impossible in practice) case that the
    // pointer already names a folder of this step
    let mut name = format!("step-{:08}", state.step);
    let mut k = 1;
    while previous.as_deref() == Some(name.as_str()) {
        name = format!("step-{:08}-{k}", state.step);
        k += 1;
    }
    let final_dir = root.join(&name);
    let tmp = root.join(format!(".tmp-{name}"));
    let written = (|| -> Result<()> {
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&tmp)?;
        write_files(&tmp)?;
        let state_bytes = serde_json::to_vec_pretty(state)?;
        fs::write(tmp.join("state.json"), state_bytes)
            .with_context(|| format!("{}: cannot write", tmp.join("state.json").display()))?;
        fsync_tree(&tmp)
    })();
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e.context(format!("cannot write checkpoint {}", final_dir.display())));
    }
    if crash == Some(Crash::Rename) {
        anyhow::bail!("simulated crash before the rename");
    }
    // a folder of this name can only be a leftover of a save that died before its pointer
    // moved: nothing refers to it
    if final_dir.exists() {
        fs::remove_dir_all(&final_dir)?;
    }
    fs::rename(&tmp, &final_dir)
        .with_context(|| format!("{}: cannot rename into place", final_dir.display()))?;
    fsync(&root)?;
    if crash == Some(Crash::Pointer) {
        anyhow::bail!("simulated crash before the pointer moved");
    }
    write_atomic(
        &root.join("latest.json"),
        &serde_json::to_vec(&Latest { dir: name.clone() })?,
    )?;
    if crash == Some(Crash::Prune) {
        anyhow::bail!("simulated crash before pruning");
    }
    prune(&root, &[name.as_str(), previous.as_deref().unwrap_or("")])?;
    Ok(final_dir)
}

/// The newest complete checkpoint and its state, if any.
pub fn latest(out: &Path) -> Result<Option<(PathBuf, TrainState)>> {
    let root = checkpoints_dir(out);
    let Some(name) = pointer_target(&root)? else {
        return Ok(None);
    };
    let dir = root.join(name);
    let state_path = dir.join("state.json");
    let state: TrainState = serde_json::from_slice(
        &fs::read(&state_path).with_context(|| format!("{}: cannot read", state_path.display()))?,
    )
    .with_context(|| format!("{}: corrupt training state", state_path.display()))?;
    Ok(Some((dir, state)))
}

/// Writes `bytes` to `path` through a synced temporary file, a rename and a sync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).with_context(|| format!("{}: cannot write", tmp.display()))?;
    fsync(&tmp)?;
    fs::rename(&tmp, path).with_context(|| format!("{}: cannot replace", path.display()))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fsync(parent)?;
    }
    Ok(())
}

/// Removes every checkpoint folder (`step-*`, the older `epoch-*`, and leftover `.tmp-*`)
/// except those named in `keep`.
fn prune(root: &Path, keep: &[&str]) -> Result<()> {
    for entry in fs::read_dir(root)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let ours = ["step-", "epoch-", ".tmp-"]
            .iter()
            .any(|p| name.starts_with(p));
        if path.is_dir() && ours && !keep.contains(&name.as_str()) {
            fs::remove_dir_all(&path)
                .with_context(|| format!("{}: cannot remove", path.display()))?;
        }
    }
    Ok(())
}

/// Loads the weights of a checkpoint folder into `model` (built from the run's config).
fn load_into<B: burn::tensor::backend::Backend, M: burn::module::Module<B>>(
    model: M,
    dir: &Path,
    device: &B::Device,
) -> Result<M> {
    use burn::record::{BinFileRecorder, FullPrecisionSettings};
    model
        .load_file(
            dir.join("model"),
            &BinFileRecorder::<FullPrecisionSettings>::new(),
            device,
        )
        .with_context(|| format!("{}: cannot load model checkpoint", dir.display()))
}

/// Loads the model weights of a checkpoint folder into a model built from `cfg`.
pub fn load_model<B: crate::kernels::Kernels>(
    cfg: &crate::config::RunConfig,
    dir: &Path,
    channels: usize,
    device: &B::Device,
) -> Result<crate::model::qbheat::QbHeat<B>> {
    let model = crate::model::qbheat::QbHeat::<B>::new(cfg, channels, device);
    load_into(model, dir, device)
}

/// Loads the MoCo-v2 model of a checkpoint folder into a model built from `cfg`.
pub fn load_moco<B: crate::kernels::Kernels>(
    cfg: &crate::config::RunConfig,
    dir: &Path,
    channels: usize,
    device: &B::Device,
) -> Result<crate::model::moco::MoCo<B>> {
    let model = crate::model::moco::MoCo::<B>::new(cfg, channels, device);
    Ok(load_into(model, dir, device)?.frozen_keys())
}

/// The encoder a checkpoint folder holds, whichever method pre-trained it (QB-Heat's encoder,
/// MoCo-v2's query encoder).
pub fn load_encoder<B: crate::kernels::Kernels>(
    cfg: &crate::config::RunConfig,
    dir: &Path,
    channels: usize,
    device: &B::Device,
) -> Result<crate::model::mobile_former::MobileFormer<B>> {
    Ok(match cfg.method {
        crate::spec::Method::MocoV2 => load_moco::<B>(cfg, dir, channels, device)?.encoder,
        _ => load_model::<B>(cfg, dir, channels, device)?.encoder,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_roundtrips_bit_exactly() {
        // without serde_json's float_roundtrip this value comes back one ulp off, and a resumed
        // run's epoch loss would differ from an uninterrupted one
        let state = TrainState {
            epoch_loss_sum: 1.6301485896110537 * 4.0,
            step_losses: vec![0.1, 1.0 / 3.0],
            ..Default::default()
        };
        let back: TrainState =
            serde_json::from_slice(&serde_json::to_vec(&state).unwrap()).unwrap();
        assert_eq!(back, state);
        for x in [
            1.6301485896110537f64,
            0.1 + 0.2,
            std::f64::consts::PI * 1e-7,
        ] {
            let y: f64 = serde_json::from_str(&serde_json::to_string(&x).unwrap()).unwrap();
            assert_eq!(x.to_bits(), y.to_bits());
        }
    }

    fn state(step: usize) -> TrainState {
        TrainState {
            step,
            epochs_done: step / 4,
            ..Default::default()
        }
    }

    fn write_marker(step: usize) -> impl FnOnce(&Path) -> Result<()> {
        move |dir: &Path| Ok(fs::write(dir.join("model.bin"), step.to_le_bytes())?)
    }

    fn marker(dir: &Path) -> usize {
        usize::from_le_bytes(fs::read(dir.join("model.bin")).unwrap().try_into().unwrap())
    }

    #[test]
    fn a_crash_at_any_point_of_the_swap_leaves_a_complete_checkpoint() {
        for crash in [Crash::Rename, Crash::Pointer, Crash::Prune] {
            let dir = tempfile::tempdir().unwrap();
            save(dir.path(), &state(4), write_marker(4)).unwrap();
            save(dir.path(), &state(8), write_marker(8)).unwrap();
            assert!(save_until(dir.path(), &state(12), write_marker(12), Some(crash)).is_err());
            let (ckpt, st) = latest(dir.path()).unwrap().unwrap();
            let expect = if crash == Crash::Prune { 12 } else { 8 };
            assert_eq!((st.step, marker(&ckpt)), (expect, expect), "{crash:?}");
            // the resumed run continues from there (re-saving step 12 after the early crashes,
            // over the leftover folder) and everything is consistent
            save(dir.path(), &state(expect + 4), write_marker(expect + 4)).unwrap();
            let last = expect + 8;
            save(dir.path(), &state(last), write_marker(last)).unwrap();
            let (ckpt, st) = latest(dir.path()).unwrap().unwrap();
            assert_eq!((st.step, marker(&ckpt)), (last, last));
            let left: Vec<String> = fs::read_dir(checkpoints_dir(dir.path()))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect();
            let mut dirs: Vec<&String> = left.iter().filter(|n| !n.ends_with(".json")).collect();
            dirs.sort();
            let keep = [format!("step-{:08}", expect + 4), format!("step-{last:08}")];
            assert_eq!(dirs, [&keep[0], &keep[1]], "{crash:?}: {left:?}");
        }
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_folder() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &state(4), write_marker(4)).unwrap();
        let e = save(dir.path(), &state(8), |_| {
            anyhow::bail!("No space left on device")
        })
        .unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("No space left") && !msg.contains('\n'),
            "{msg}"
        );
        let names: Vec<String> = fs::read_dir(checkpoints_dir(dir.path()))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");
        assert_eq!(latest(dir.path()).unwrap().unwrap().1.step, 4);
    }
}
