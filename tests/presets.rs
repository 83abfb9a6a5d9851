//! Every preset runs forward at its canonical size with the expected shapes.

use burn::tensor::{Tensor, TensorData};
use qbheat_workbench::backend::Cpu;
use qbheat_workbench::config::RunConfig;
use qbheat_workbench::data::batch::BatchMaker;
use qbheat_workbench::data::procedural::generate;
use qbheat_workbench::model::init::Init;
use qbheat_workbench::model::mobile_former::MobileFormer;
use qbheat_workbench::model::qbheat::QbHeat;
use qbheat_workbench::spec::Position;
use qbheat_workbench::spec::Preset;

#[test]
fn encoders_run_at_canonical_size() {
    let dev = Default::default();
    for preset in Preset::ALL {
        let spec = preset.spec();
        let s = spec.canonical_size;
        let enc = MobileFormer::<Cpu>::new(&spec, 3, &mut Init::new(0), &dev);
        let x = Tensor::<Cpu, 4>::from_data(
            TensorData::new(vec![0.1f32; 2 * 3 * s * s], [2, 3, s, s]),
            &dev,
        );
        let out = enc.forward(x);
        let side = s / spec.stride;
        assert_eq!(
            out.features.dims(),
            [2, spec.wide, side, side],
            "{}",
            spec.name
        );
        assert_eq!(
            out.tokens.dims(),
            [2, spec.tokens, spec.token_dim],
            "{}",
            spec.name
        );
        assert_eq!(
            out.pooled().dims(),
            [2, spec.wide + spec.token_dim],
            "{}",
            spec.name
        );
        let v: Vec<f32> = out.pooled().into_data().to_vec().unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{}", spec.name);
    }
    assert_eq!(
        Preset::Mf285m.spec().wide + Preset::Mf285m.spec().token_dim,
        912
    );
}

#[test]
fn pretraining_model_reconstructs_every_cell() {
    let dev = Default::default();
    for (preset, size) in [
        (Preset::MfMicro, 32),
        (Preset::MfTiny, 64),
        (Preset::Mf285m, 64),
    ] {
        for position in [Position::Corner, Position::Center, Position::CornerCenter] {
            let mut cfg = RunConfig::default();
            cfg.model.preset = preset;
            cfg.data.image_size = size;
            cfg.masking.position = position;
            cfg.predictor.dim = 32;
            cfg.validate().unwrap();
            let set = generate(4, size, 3, 1);
            let stride = preset.spec().stride;
            let maker = BatchMaker::new(position, stride, true, &cfg.train, &set);
            let batch = maker.make(&set, &[0, 1, 2, 3], 5);
            let model = QbHeat::<Cpu>::new(&cfg, 3, &dev);
            let pred = model.reconstruct(&batch, &dev);
            let cells = (size / stride) * (size / stride);
            assert_eq!(pred.dims(), [4, cells, stride * stride * 3]);
            let loss: f32 = model.loss(&batch, &dev).into_scalar();
            assert!(loss.is_finite() && loss > 0.0);
        }
    }
}

/// One paper preset against its Tab. 8 column: stage resolutions and widths at 224 px, the
/// classifier features, a forward pass on one image, and parameters / multiply-adds within
/// 10 % of the paper's figures.
fn check_tab8(preset: Preset, outs: [usize; 11], wide: usize, features: usize) {
    let dev = Default::default();
    let spec = preset.spec();
    assert_eq!(spec.canonical_size, 224);
    assert_eq!(spec.tokens, 6);
    let enc = MobileFormer::<Cpu>::new(&spec, 3, &mut Init::new(0), &dev);
    let shapes = enc.stage_shapes(224, 224);
    assert_eq!(shapes[0][1], 112, "stem at 112²");
    assert_eq!(shapes[1], [spec.lite_out, 112, 112], "bneck-lite");
    let res = [56, 56, 28, 28, 28, 14, 14, 14, 14, 14, 14];
    for (i, (&out, &r)) in outs.iter().zip(&res).enumerate() {
        assert_eq!(shapes[2 + i], [out, r, r], "{} block {i}", spec.name);
    }
    assert_eq!(shapes[13], [wide, 14, 14], "final 1x1 conv");
    let (w, pooled) = enc.widths();
    assert_eq!((w, pooled), (wide, features), "pool + token 0");
    let x = Tensor::<Cpu, 4>::from_data(
        TensorData::new(vec![0.1f32; 3 * 224 * 224], [1, 3, 224, 224]),
        &dev,
    );
    let out = enc.forward(x);
    assert_eq!(out.features.dims(), [1, wide, 14, 14]);
    assert_eq!(out.pooled().dims(), [1, features]);
    let paper = spec.paper.unwrap();
    let params = qbheat_workbench::model::trainable_params(&enc) as f64 / 1e6;
    let macs = enc.macs(1, 224, 224) as f64 / 1e6;
    assert!(
        (params / paper.params_m - 1.0).abs() <= 0.10,
        "{}: {params:.2} M parameters vs the paper's {}",
        spec.name,
        paper.params_m
    );
    assert!(
        (macs / paper.macs_m - 1.0).abs() <= 0.10,
        "{}: {macs:.0} M multiply-adds vs the paper's {}",
        spec.name,
        paper.macs_m
    );
}

/// One Tab. 8 column: stem, bneck-lite expansion / output, token width, and the eleven
/// M-F blocks' expansion and output widths, the final conv and the classifier features.
struct Tab8Column {
    stem_lite_tokens: (usize, usize, usize, usize),
    expand: [usize; 11],
    outs: [usize; 11],
    wide: usize,
    features: usize,
}

fn check_column(preset: Preset, col: Tab8Column) {
    check_tab8(preset, col.outs, col.wide, col.features);
    let s = preset.spec();
    assert_eq!(
        (s.stem, s.lite_expand, s.lite_out, s.token_dim),
        col.stem_lite_tokens
    );
    let exp: Vec<usize> = s.blocks.iter().map(|b| b.expand).collect();
    assert_eq!(exp, col.expand);
}

#[test]
fn mf_285m_is_tab8() {
    check_column(
        Preset::Mf285m,
        Tab8Column {
            stem_lite_tokens: (16, 32, 16, 192),
            expand: [96, 84, 168, 144, 144, 240, 320, 480, 528, 720, 720],
            outs: [28, 28, 48, 48, 48, 80, 88, 88, 120, 120, 120],
            wide: 720,
            features: 912,
        },
    );
}

#[test]
fn mf_1g_is_tab8() {
    check_column(
        Preset::Mf1g,
        Tab8Column {
            stem_lite_tokens: (32, 64, 32, 256),
            expand: [192, 168, 336, 288, 288, 288, 704, 704, 1056, 1440, 1440],
            outs: [56, 56, 96, 96, 96, 96, 176, 176, 240, 240, 240],
            wide: 1440,
            features: 1696,
        },
    );
}

#[test]
fn mf_3g_is_tab8() {
    check_column(
        Preset::Mf3g,
        Tab8Column {
            stem_lite_tokens: (64, 128, 64, 256),
            expand: [384, 336, 672, 576, 576, 1152, 1408, 1408, 2112, 2880, 2880],
            outs: [112, 112, 192, 192, 192, 352, 352, 352, 480, 480, 480],
            wide: 2880,
            features: 3136,
        },
    );
}

#[test]
fn the_speed_benchmark_model_is_unchanged() {
    // mf-tiny with the bench settings: the PyTorch twin mirrors exactly this many trained
    // parameters (`torch_mftiny.py params`)
    let mut cfg = RunConfig::default();
    cfg.model.preset = Preset::MfTiny;
    let model = QbHeat::<Cpu>::new(&cfg, 3, &Default::default());
    assert_eq!(model.num_params(), 1_570_120);
}
