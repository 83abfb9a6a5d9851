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
