//! Why tran-1 scored below lin (issue 13): the same frozen encoder's cached features, probed
//! by lin and by one tran-1 variant (epochs, width, lr, batch, token standardisation).
//!
//!   STUDY_LR=2e-3 STUDY_BATCH=64 cargo run --release --example tran1_study -- CONFIG.toml [RUN_DIR]
//!
//! CONFIG is a run config naming the data (e.g. Fashion-MNIST); without a checkpoint the
//! encoder is the config's random initialisation.

use qbheat_workbench::backend::CpuTrain;
use qbheat_workbench::config::RunConfig;
use qbheat_workbench::model::features::extract;
use qbheat_workbench::model::qbheat::QbHeat;
use qbheat_workbench::probe::{linear, tran1, Recipe};
use qbheat_workbench::train::checkpoint;

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
    let ft = extract(&enc, &train, &stats, true, &dev);
    let fv = extract(&enc, &val, &stats, true, &dev);
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
    let never = std::sync::atomic::AtomicBool::new(false);
    let lin = linear::run::<CpuTrain>(&ft, &fv, train.classes, p, cfg.seed, &dev, &never);
    println!("lin  {} epochs: top1 {:.4}", p.lin_epochs, lin.top1());
    // the tran-1 variant: STUDY_{EPOCHS,WIDTH,LR,BATCH,STANDARDISE} override the config's probe
    let var = |k: &str| std::env::var(k).ok();
    let mut pc = p.clone();
    if let Some(v) = var("STUDY_EPOCHS") {
        pc.tran_epochs = v.parse()?;
    }
    if let Some(v) = var("STUDY_WIDTH") {
        pc.tran_width = Some(v.parse()?);
    }
    if let Some(v) = var("STUDY_LR") {
        pc.tran_base_lr = v.parse()?;
    }
    if let Some(v) = var("STUDY_BATCH") {
        pc.batch_size = v.parse()?;
    }
    if let Some(v) = var("STUDY_STANDARDISE") {
        pc.tran_standardise = v.parse()?;
    }
    let recipe = Recipe::new(&pc, cfg.model.preset);
    let t = std::time::Instant::now();
    let (r, _) = tran1::run::<CpuTrain>(&ft, &fv, train.classes, &recipe, cfg.seed, &dev, &never);
    println!(
        "tran-1 width {} epochs {} lr {} batch {} standardise {}: top1 {:.4} per epoch {:?} loss {:?} ({:.0}s)",
        recipe.tran_width,
        pc.tran_epochs,
        pc.tran_base_lr,
        pc.batch_size,
        pc.tran_standardise,
        r.top1(),
        r.top1_per_epoch
            .iter()
            .map(|v| (v * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>(),
        r.train_loss_per_epoch
            .iter()
            .map(|v| (v * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
