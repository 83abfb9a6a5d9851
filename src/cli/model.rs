//! `workbench model`: an encoder preset's parameters and multiply-adds.

use anyhow::Result;

use qbheat_workbench::backend::Cpu;
use qbheat_workbench::config::RunConfig;
use qbheat_workbench::masking::check_image_size;
use qbheat_workbench::model::init::Init;
use qbheat_workbench::model::mobile_former::MobileFormer;
use qbheat_workbench::model::qbheat::QbHeat;
use qbheat_workbench::spec::Preset;

pub fn run(preset: Preset, image: Option<usize>) -> Result<()> {
    let spec = preset.spec();
    let size = image.unwrap_or(spec.canonical_size);
    anyhow::ensure!(
        (spec.stride..=4096).contains(&size),
        "--image must lie in {}..=4096",
        spec.stride
    );
    let dev = Default::default();
    let enc = MobileFormer::<Cpu>::new(&spec, 3, &mut Init::new(0), &dev);
    let params = qbheat_workbench::model::trainable_params(&enc);
    let (wide, pooled) = enc.widths();
    println!("preset        {}", spec.name);
    println!("input         3x{size}x{size}");
    println!(
        "feature map   {wide}x{}x{} (stride {})",
        size.div_ceil(spec.stride),
        size.div_ceil(spec.stride),
        spec.stride
    );
    println!("tokens        {}x{}", spec.tokens, spec.token_dim);
    println!(
        "classifier    {pooled} features ({wide} pooled + {} token 0)",
        spec.token_dim
    );
    let macs = enc.macs(1, size, size) as f64 / 1e6;
    let vs = |ours: f64, paper: f64, unit: &str| {
        format!(
            "  (paper: {paper} {unit}, {:+.1} %)",
            100.0 * (ours / paper - 1.0)
        )
    };
    let paper = spec.paper;
    println!(
        "parameters    {:.2} M (encoder, trained; BatchNorm statistics excluded){}",
        params as f64 / 1e6,
        paper.map_or(String::new(), |p| vs(params as f64 / 1e6, p.params_m, "M"))
    );
    println!(
        "multiply-adds {macs:.1} M (encoder, one image){}",
        paper
            .filter(|_| size == 224)
            .map_or(String::new(), |p| vs(macs, p.macs_m, "M at 224 px"))
    );
    if paper.is_some() {
        println!(
            "unstated     Former FFN {}x token width, dynamic-ReLU MLP token width / {} (chosen to match the paper's totals)",
            spec.ffn_ratio, spec.dyrelu_reduction
        );
    }
    if check_image_size(size, spec.stride).is_ok() {
        let mut cfg = RunConfig::default();
        cfg.model.preset = preset;
        cfg.data.image_size = size;
        let full = QbHeat::<Cpu>::new(&cfg, 3, &dev);
        println!(
            "pre-training  {:.2} M parameters with predictor D={} and decoder {}x{}; {:.1} M multiply-adds per image",
            full.num_params() as f64 / 1e6,
            cfg.predictor.dim,
            cfg.decoder.depth,
            cfg.decoder.dim,
            full.macs(&cfg, 1) as f64 / 1e6
        );
    }
    Ok(())
}
