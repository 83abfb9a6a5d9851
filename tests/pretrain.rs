//! End-to-end pre-training behaviour on the built-in data (small mf-micro runs on CPU).

use qbheat_workbench::backend::CpuTrain;
use qbheat_workbench::config::RunConfig;
use qbheat_workbench::train::pretrain::{pretrain, Observer, Outcome, PretrainOptions, Quiet};

fn small_config(extra: &str) -> RunConfig {
    let src = format!(
        r#"
seed = 3
[data]
image_size = 32
train_size = 256
val_size = 64
[model]
preset = "mf-micro"
[predictor]
dim = 64
[decoder]
dim = 64
depth = 1
heads = 4
[train]
epochs = 3
batch_size = 32
base_lr = 2e-3
warmup_epochs = 0.5
{extra}
"#
    );
    RunConfig::parse("test.toml", &src).unwrap()
}

fn run(
    cfg: &RunConfig,
    out: &std::path::Path,
    resume: bool,
    observer: &mut dyn Observer,
) -> anyhow::Result<Outcome> {
    let opts = PretrainOptions {
        out: out.to_path_buf(),
        resume,
        progress: false,
    };
    pretrain::<CpuTrain>(cfg, &opts, &Default::default(), observer)
}

#[test]
fn training_reduces_the_loss() {
    let cfg = small_config("");
    let mut cfg = cfg;
    cfg.train.epochs = 25; // 8 steps per epoch → 200 steps
    let dir = tempfile::tempdir().unwrap();
    let out = run(&cfg, dir.path(), false, &mut Quiet).unwrap();
    assert!(out.finished);
    let l = &out.state.step_losses;
    assert_eq!(l.len(), 200);
    let start: f32 = l[..5].iter().sum::<f32>() / 5.0;
    let end: f32 = l[l.len() - 10..].iter().sum::<f32>() / 10.0;
    assert!(end < 0.7 * start, "loss {start} -> {end}");
    let first_val = out.state.epochs[0].val_loss;
    let last_val = out.state.epochs.last().unwrap().val_loss;
    assert!(last_val < first_val, "val loss {first_val} -> {last_val}");
}

#[test]
fn same_seed_same_losses_and_other_seed_differs() {
    let cfg = small_config("max_steps_per_epoch = 3");
    let a = run(&cfg, tempfile::tempdir().unwrap().path(), false, &mut Quiet).unwrap();
    let b = run(&cfg, tempfile::tempdir().unwrap().path(), false, &mut Quiet).unwrap();
    assert_eq!(a.state.step_losses, b.state.step_losses);
    let mut other = cfg.clone();
    other.seed = 4;
    let c = run(
        &other,
        tempfile::tempdir().unwrap().path(),
        false,
        &mut Quiet,
    )
    .unwrap();
    assert_ne!(a.state.step_losses, c.state.step_losses);
}

/// Stops after `after` optimiser steps.
struct StopAfter(usize);
impl Observer for StopAfter {
    fn on_step(&mut self, _: usize, step: usize, _: f64, _: f64) -> bool {
        step < self.0
    }
}

#[test]
fn resume_matches_an_uninterrupted_run() {
    // QB-Heat at one and two scales, and MoCo-v2 (its momentum encoder and queue live in the
    // checkpoint; the queue's ring slot follows from the step)
    for position in ["corner", "corner+center", "moco-v2"] {
        let mut cfg = small_config(&format!(
            "max_steps_per_epoch = 4\n[masking]\nposition = \"{}\"",
            position.replace("moco-v2", "corner")
        ));
        if position == "moco-v2" {
            cfg.method = qbheat_workbench::spec::Method::MocoV2;
            cfg.moco.queue = 64;
        }
        let full = run(&cfg, tempfile::tempdir().unwrap().path(), false, &mut Quiet).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // stop mid-epoch (step 6 of 12), then at an epoch boundary (step 8), then finish
        let part = run(&cfg, dir.path(), false, &mut StopAfter(6)).unwrap();
        assert!(!part.finished);
        assert_eq!(part.state.step, 6);
        let part = run(&cfg, dir.path(), true, &mut StopAfter(8)).unwrap();
        assert_eq!(part.state.step, 8);
        let rest = run(&cfg, dir.path(), true, &mut Quiet).unwrap();
        assert!(rest.finished);
        assert_eq!(rest.state.step_losses, full.state.step_losses, "{position}");
        assert_eq!(rest.state.epochs.len(), 3);
        for (a, b) in rest.state.epochs.iter().zip(&full.state.epochs) {
            assert_eq!(a.train_loss, b.train_loss);
            assert_eq!(a.val_loss, b.val_loss);
        }
    }
}

#[test]
fn existing_checkpoints_need_resume_and_the_same_config() {
    let mut cfg = small_config("max_steps_per_epoch = 1");
    cfg.train.epochs = 1;
    let dir = tempfile::tempdir().unwrap();
    run(&cfg, dir.path(), false, &mut Quiet).unwrap();
    let e = run(&cfg, dir.path(), false, &mut Quiet).unwrap_err();
    assert!(e.to_string().contains("--resume"), "{e}");
    let mut other = cfg.clone();
    other.seed = 99;
    let e = run(&other, dir.path(), true, &mut Quiet).unwrap_err();
    assert!(e.to_string().contains("different config"), "{e}");
}

#[test]
fn diverging_loss_stops_with_a_clear_error() {
    let mut cfg = small_config("max_steps_per_epoch = 4");
    cfg.train.base_lr = 1e30;
    cfg.train.warmup_epochs = 0.0;
    let e = run(&cfg, tempfile::tempdir().unwrap().path(), false, &mut Quiet).unwrap_err();
    assert!(e.to_string().contains("loss became"), "{e}");
}

#[test]
fn weights_that_diverge_on_an_epochs_last_step_fail_the_run() {
    // one step per epoch: its loss is computed before the update that breaks the weights
    let mut cfg = small_config("max_steps_per_epoch = 1");
    cfg.train.base_lr = 1e30;
    cfg.train.warmup_epochs = 0.0;
    cfg.train.epochs = 1;
    let dir = tempfile::tempdir().unwrap();
    let e = run(&cfg, dir.path(), false, &mut Quiet).unwrap_err();
    assert!(e.to_string().contains("validation loss became"), "{e}");
    assert!(
        qbheat_workbench::train::checkpoint::latest(dir.path())
            .unwrap()
            .is_none(),
        "no checkpoint of diverged weights"
    );
}

/// A checkpoint holds plain little-endian f32 tensors, no backend in it: the weights a
/// training backend wrote load into the inference backend (what a GPU-trained run does when
/// it is probed on a CPU), and encoding them again from there gives the same bytes.
#[test]
fn checkpoints_do_not_depend_on_the_backend() {
    use burn::module::Module;
    use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
    use qbheat_workbench::backend::Cpu;
    use qbheat_workbench::train::checkpoint;

    let cfg = small_config("max_steps_per_epoch = 2");
    let dir = tempfile::tempdir().unwrap();
    let mut one_epoch = cfg.clone();
    one_epoch.train.epochs = 1;
    run(&one_epoch, dir.path(), false, &mut Quiet).unwrap();
    let (ckpt, _) = checkpoint::latest(dir.path()).unwrap().unwrap();
    let on_disk = std::fs::read(ckpt.join("model.bin")).unwrap();
    fn bytes<M: Module<B>, B: burn::tensor::backend::Backend>(model: M) -> Vec<u8> {
        BinBytesRecorder::<FullPrecisionSettings>::new()
            .record(model.into_record(), ())
            .unwrap()
    }
    let dev = Default::default();
    let trained = checkpoint::load_model::<CpuTrain>(&one_epoch, &ckpt, 3, &dev).unwrap();
    let inference = checkpoint::load_model::<Cpu>(&one_epoch, &ckpt, 3, &dev).unwrap();
    assert_eq!(bytes(trained), on_disk);
    assert_eq!(bytes(inference), on_disk);
    // and the weights are the trained ones, not a fresh initialisation
    let fresh = qbheat_workbench::model::qbheat::QbHeat::<Cpu>::new(&one_epoch, 3, &dev);
    assert_ne!(bytes(fresh), on_disk);
}
