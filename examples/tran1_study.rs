//! Why tran-1 scored below lin (issue 13): the same frozen encoder's cached features, probed
//! by lin and by tran-1 variants (epochs, width, token standardisation).
//!
//!   cargo run --release --example tran1_study -- CONFIG.toml [CHECKPOINT_DIR]
//!
//! CONFIG is a run config naming the data (e.g. Fashion-MNIST); without a checkpoint the
//! encoder is the config's random initialisation.

use qbheat_workbench::backend::CpuTrain;
use qbheat_workbench::config::RunConfig;
use qbheat_workbench::model::qbheat::QbHeat;
use qbheat_workbench::probe::features::{extract, Features};
use qbheat_workbench::probe::{linear, tran1, Recipe};
use qbheat_workbench::train::checkpoint;

/// Per-channel standardisation of the tokens with the training set's statistics (what a
/// BatchNorm without affine in front of the block converges to).
fn standardise(train: &mut Features, val: &mut Features) {
    let wide = train.wide;
    let t = train.tokens.as_ref().unwrap();
    let n = (t.len() / wide) as f64;
    let mut stats = vec![(0f64, 0f64); wide];
    for row in t.chunks(wide) {
        for (c, v) in row.iter().enumerate() {
            stats[c].0 += *v as f64;
            stats[c].1 += (*v as f64).powi(2);
        }
    }
    let stats: Vec<(f32, f32)> = stats
        .iter()
        .map(|(s, s2)| {
            let m = s / n;
            (m as f32, ((s2 / n - m * m).max(0.0) + 1e-6).sqrt() as f32)
        })
        .collect();
    for f in [train, val] {
        for row in f.tokens.as_mut().unwrap().chunks_mut(wide) {
            for (c, v) in row.iter_mut().enumerate() {
                *v = (*v - stats[c].0) / stats[c].1;
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let cfg = RunConfig::load(std::path::Path::new(&args[1]))?;
    let dev = Default::default();
    let model = match args.get(2) {
        Some(out) => {
            let (dir, _) = checkpoint::latest(std::path::Path::new(out))?.expect("a checkpoint");
            checkpoint::load_model::<CpuTrain>(&cfg, &dir, cfg.data.channels, &dev)?
        }
        None => QbHeat::<CpuTrain>::new(&cfg, cfg.data.channels, &dev),
    };
    let (train, val) = qbheat_workbench::data::load(&cfg)?;
    let stats = train.channel_stats();
    use burn::module::AutodiffModule;
    let enc = model.encoder.valid();
    let mut ft = extract(&enc, &train, &stats, true, &dev);
    let mut fv = extract(&enc, &val, &stats, true, &dev);
    println!(
        "features: {} train, {} val, {} pooled dims, {}x{} tokens of {}",
        ft.labels.len(),
        fv.labels.len(),
        ft.dim,
        ft.grid.0,
        ft.grid.1,
        ft.wide
    );
    let p = &cfg.probe;
    let lin = linear::run::<CpuTrain>(&ft, &fv, train.classes, p, cfg.seed, &dev);
    println!("lin  {} epochs: top1 {:.4}", p.lin_epochs, lin.top1());
    let epochs: usize = std::env::var("STUDY_EPOCHS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let variants: Vec<(&str, usize, usize, bool)> = vec![
        ("raw tokens", 128, epochs, false),
        ("standardised tokens", 128, epochs, true),
    ];
    let mut standardised = false;
    for (name, width, epochs, std) in variants {
        if std && !standardised {
            standardise(&mut ft, &mut fv);
            standardised = true;
        }
        let mut pc = p.clone();
        pc.tran_width = Some(width);
        pc.tran_epochs = epochs;
        let recipe = Recipe::new(&pc, cfg.model.preset);
        let t = std::time::Instant::now();
        let (r, _) = tran1::run::<CpuTrain>(&ft, &fv, train.classes, &recipe, cfg.seed, &dev);
        println!(
            "tran-1 width {width}, {epochs} epochs, {name}: top1 {:.4} per epoch {:?} ({:.0}s)",
            r.top1(),
            r.top1_per_epoch
                .iter()
                .map(|v| (v * 1000.0).round() / 1000.0)
                .collect::<Vec<_>>(),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
