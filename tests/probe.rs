//! Probes: the linear and tran-1 heads learn what is learnable, layer-wise lr decay freezes
//! what it should, and the evaluation pipeline stores its results.

use qbheat_workbench::backend::{Cpu, CpuTrain};
use qbheat_workbench::config::RunConfig;
use qbheat_workbench::data::procedural::generate;
use qbheat_workbench::model::features::{extract, Features};
use qbheat_workbench::model::init::Init;
use qbheat_workbench::model::mobile_former::MobileFormer;
use qbheat_workbench::probe::{finetune, linear, tran1, ProbeConfig, Recipe};
use qbheat_workbench::spec::Preset;
use std::sync::atomic::AtomicBool;

/// Two classes whose pooled features are Gaussian clusters around ±μ (linearly separable).
fn clusters(n: usize, dim: usize, seed: u64) -> Features {
    let mut init = Init::new(seed);
    let noise = init.normal_vec(n * dim, 1.0);
    let labels: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    let pooled = noise
        .iter()
        .enumerate()
        .map(|(k, z)| {
            z + if labels[k / dim] == 1 { 1.5 } else { -1.5 } * (k % dim == 0) as u8 as f32 * 2.0
        })
        .collect();
    Features {
        pooled,
        dim,
        tokens: None,
        wide: 0,
        grid: (0, 0),
        labels,
        img_per_s: 0.0,
    }
}

#[test]
fn a_raised_stop_flag_ends_a_probe_before_its_first_step() {
    let cfg = ProbeConfig {
        lin_epochs: 10_000,
        batch_size: 64,
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let r = linear::run::<CpuTrain>(
        &clusters(512, 8, 1),
        &clusters(256, 8, 2),
        2,
        &cfg,
        0,
        &Default::default(),
        &AtomicBool::new(true),
    );
    assert!(r.top1_per_epoch.is_empty(), "{:?}", r.top1_per_epoch);
    assert!(t.elapsed().as_secs() < 10);
}

#[test]
fn linear_probe_separates_separable_features() {
    let cfg = ProbeConfig {
        lin_epochs: 10,
        batch_size: 64,
        ..Default::default()
    };
    let r = linear::run::<CpuTrain>(
        &clusters(512, 8, 1),
        &clusters(256, 8, 2),
        2,
        &cfg,
        0,
        &Default::default(),
        &AtomicBool::new(false),
    );
    assert_eq!(r.top1_per_epoch.len(), 10);
    assert!(r.top1() > 0.95, "{:?}", r.top1_per_epoch);
    assert!(r.train_loss_per_epoch.last() < r.train_loss_per_epoch.first());
}

/// Feature-map tokens whose channel 0 carries the class (±) at every position, plus noise.
fn token_clusters(n: usize, seed: u64) -> Features {
    let (hw, wide) = (4, 8);
    let mut f = clusters(n, 4, seed);
    let noise = Init::new(seed ^ 5).normal_vec(n * hw * wide, 1.0);
    f.tokens = Some(
        noise
            .iter()
            .enumerate()
            .map(|(k, z)| {
                let label = f.labels[k / (hw * wide)];
                z + if k % wide == 0 {
                    if label == 1 {
                        2.0
                    } else {
                        -2.0
                    }
                } else {
                    0.0
                }
            })
            .collect(),
    );
    f.wide = wide;
    f.grid = (2, 2);
    f
}

#[test]
fn tran1_probe_separates_separable_tokens() {
    let cfg = ProbeConfig {
        tran_epochs: 10,
        tran_width: Some(32),
        batch_size: 32,
        tran_base_lr: 4e-3,
        ..Default::default()
    };
    let recipe = Recipe::new(&cfg, Preset::MfMicro);
    let (r, _) = tran1::run::<CpuTrain>(
        &token_clusters(256, 1),
        &token_clusters(128, 2),
        2,
        &recipe,
        0,
        &Default::default(),
        &AtomicBool::new(false),
    );
    assert!(r.top1() > 0.95, "{:?}", r.top1_per_epoch);
}

#[test]
fn frozen_features_have_the_documented_layout() {
    let dev = Default::default();
    let spec = Preset::MfMicro.spec();
    let enc = MobileFormer::<Cpu>::new(&spec, 3, &mut Init::new(0), &dev);
    let set = generate(20, 32, 3, 1);
    let f = extract(&enc, &set, &set.channel_stats(), true, &dev);
    assert_eq!(f.dim, spec.wide + spec.token_dim);
    assert_eq!(f.pooled.len(), 20 * f.dim);
    assert_eq!(f.grid, (8, 8));
    assert_eq!(f.tokens.as_ref().unwrap().len(), 20 * 64 * spec.wide);
    assert_eq!(f.labels, set.labels);
}

#[test]
fn zero_layer_decay_freezes_all_but_the_last_group() {
    let dev = Default::default();
    let spec = Preset::MfMicro.spec();
    let enc = MobileFormer::<CpuTrain>::new(&spec, 3, &mut Init::new(0), &dev);
    let stem_before: Vec<f32> = enc.stem.weight.val().into_data().to_vec().unwrap();
    let head_before: Vec<f32> = enc.head.conv.weight.val().into_data().to_vec().unwrap();
    let train = generate(64, 32, 3, 1);
    let val = generate(32, 32, 3, 2);
    let cfg = ProbeConfig {
        finetune_epochs: 1,
        batch_size: 32,
        tran_width: Some(32),
        ..Default::default()
    };
    let stats = train.channel_stats();
    let data = finetune::Data {
        train: &train,
        val: &val,
        stats: &stats,
        stop: &AtomicBool::new(false),
    };
    let recipe = Recipe::new(&cfg, Preset::MfMicro);
    let (r, tuned) = finetune::run::<CpuTrain>(enc, None, &data, &recipe, 0.0, 0, &dev);
    assert_eq!(r.top1_per_epoch.len(), 1);
    let stem_after: Vec<f32> = tuned
        .encoder
        .stem
        .weight
        .val()
        .into_data()
        .to_vec()
        .unwrap();
    let head_after: Vec<f32> = tuned
        .encoder
        .head
        .conv
        .weight
        .val()
        .into_data()
        .to_vec()
        .unwrap();
    assert_eq!(stem_after, stem_before, "decay 0 gives the stem lr 0");
    assert_ne!(
        head_after, head_before,
        "the last group trains at the full lr"
    );
}

#[test]
fn sweep_pipeline_stores_probe_metrics_for_every_method() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(
        &file,
        r#"
name = "probe"
[base.data]
image_size = 32
train_size = 128
val_size = 64
[base.model]
preset = "mf-micro"
[base.predictor]
dim = 32
[base.decoder]
dim = 32
depth = 1
heads = 2
[base.train]
epochs = 1
batch_size = 32
[base.probe]
kinds = ["lin", "tran-1", "finetune"]
batch_size = 32
lin_epochs = 2
tran_epochs = 1
tran_width = 32
finetune_epochs = 1
[grid]
method = ["qbheat", "random-init", "supervised"]
"#,
    )
    .unwrap();
    let db = dir.path().join("p.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_workbench"))
        .arg("sweep")
        .arg(&file)
        .arg("--db")
        .arg(&db)
        .arg("--runs-dir")
        .arg(dir.path().join("runs"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = qbheat_workbench::store::Store::open(&db).unwrap();
    for run in store.runs(None, None).unwrap() {
        let cfg: RunConfig = serde_json::from_str(&run.config).unwrap();
        let latest = store.latest_metrics(&run.id).unwrap();
        let keys: Vec<&str> = match cfg.method {
            qbheat_workbench::spec::Method::Supervised => vec!["probe/supervised/top1"],
            _ => vec!["probe/lin/top1", "probe/tran-1/top1", "probe/finetune/top1"],
        };
        for k in keys {
            let m = latest
                .iter()
                .find(|m| m.key == k)
                .unwrap_or_else(|| panic!("{k} missing for {}", run.id));
            assert!((0.0..=1.0).contains(&m.value));
        }
        assert_eq!(run.status, qbheat_workbench::store::Status::Finished);
    }
}

/// Every image holds the same pattern token at one of the 4×4 positions, on noise; the label
/// is the quadrant the pattern sits in. Mean-pooled features are the same for every label
/// (the pattern is in every image once), so only a head that sees positions can solve it.
fn pattern_position(n: usize, seed: u64) -> Features {
    let (side, wide) = (4usize, 8usize);
    let mut init = Init::new(seed);
    let noise = init.normal_vec(n * side * side * wide, 0.3);
    let mut tokens = noise;
    let mut labels = Vec::with_capacity(n);
    let mut pooled = vec![0f32; n * wide];
    for i in 0..n {
        // every position equally often (the probes shuffle)
        let at = (i * 7 + seed as usize) % (side * side);
        let (y, x) = (at / side, at % side);
        labels.push((2 * (y / 2) + x / 2) as u32);
        let t = &mut tokens[(i * side * side + at) * wide..][..wide];
        t[0] += 3.0;
        t[1] -= 3.0;
        for pos in 0..side * side {
            for c in 0..wide {
                pooled[i * wide + c] +=
                    tokens[(i * side * side + pos) * wide + c] / (side * side) as f32;
            }
        }
    }
    Features {
        pooled,
        dim: wide,
        tokens: Some(tokens),
        wide,
        grid: (side, side),
        labels,
        img_per_s: 0.0,
    }
}

#[test]
fn tran1_reads_where_a_pattern_sits_and_lin_cannot() {
    let (train, val) = (pattern_position(2000, 5), pattern_position(500, 6));
    let cfg = ProbeConfig {
        lin_epochs: 20,
        tran_epochs: 20,
        tran_width: Some(32),
        tran_dropout: Some(0.0),
        batch_size: 50,
        tran_base_lr: 4e-3,
        ..Default::default()
    };
    let dev = Default::default();
    let lin = linear::run::<CpuTrain>(&train, &val, 4, &cfg, 0, &dev, &AtomicBool::new(false));
    let recipe = Recipe::new(&cfg, Preset::MfMicro);
    let (tran, _) =
        tran1::run::<CpuTrain>(&train, &val, 4, &recipe, 0, &dev, &AtomicBool::new(false));
    eprintln!("lin {:.3}, tran-1 {:.3}", lin.top1(), tran.top1());
    assert!(lin.top1() < 0.4, "lin read the position: {}", lin.top1());
    assert!(
        tran.top1() > 0.9,
        "tran-1 missed the position: {}",
        tran.top1()
    );
}
