//! The pre-training optimiser: AdamW with decoupled weight decay on the weights only.
//!
//! AdamW (Loshchilov & Hutter): θ ← θ·(1 − lr·λ) − lr·m̂/(√v̂ + ε). MAE (and, assumed, QB-Heat)
//! exempts biases, normalisation parameters and learned tokens from the decay. burn's AdamW
//! has one decay for all parameters, so the decay factor (1 − lr·λ) is applied here to the
//! decayed group and AdamW ([`super::adamw::FusedAdamW`], burn's arithmetic) runs with
//! λ = 0: per element the same operations as burn's own decayed update, in the same order.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use std::collections::HashSet;

/// Which parameters take weight decay.
#[derive(Debug, Clone, Default)]
pub struct DecayGroups {
    pub decayed: HashSet<ParamId>,
    /// Dotted module paths of the decayed parameters (for inspection and tests).
    pub decayed_names: Vec<String>,
    /// Dotted module paths of the exempt parameters.
    pub exempt_names: Vec<String>,
}

/// Is a parameter exempt from decay: one-dimensional (biases, norm scales and shifts) or the
/// Mobile-Former's learned tokens.
fn exempt(path: &[String], ndim: usize) -> bool {
    ndim <= 1 || path.last().is_some_and(|n| n == "tokens")
}

struct Collect {
    path: Vec<String>,
    decay_all: bool,
    groups: DecayGroups,
}

impl<B: Backend> ModuleVisitor<B> for Collect {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        // BatchNorm's running statistics are visited like parameters but are not trained;
        // neither are MoCo-v2's momentum encoder and head, nor its queue
        if self.path.last().is_some_and(|n| n.starts_with("running_"))
            || self
                .path
                .first()
                .is_some_and(|n| n.starts_with("momentum_") || n == "queue")
        {
            return;
        }
        let name = self.path.join(".");
        if self.decay_all || !exempt(&self.path, D) {
            self.groups.decayed.insert(param.id);
            self.groups.decayed_names.push(name);
        } else {
            self.groups.exempt_names.push(name);
        }
    }
}

/// The decay groups of `model` (every parameter decayed when `decay_all`).
pub fn decay_groups<B: Backend, M: Module<B>>(model: &M, decay_all: bool) -> DecayGroups {
    let mut c = Collect {
        path: Vec::new(),
        decay_all,
        groups: DecayGroups::default(),
    };
    model.visit(&mut c);
    c.groups
}

struct Decay<'a> {
    decayed: &'a HashSet<ParamId>,
    factor: f64,
}

impl<B: AutodiffBackend> ModuleMapper<B> for Decay<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        if !self.decayed.contains(&param.id) {
            return param;
        }
        let (id, tensor, mapper) = param.consume();
        let require_grad = tensor.is_require_grad();
        let mut t = Tensor::from_inner(tensor.inner().mul_scalar(self.factor));
        if require_grad {
            t = t.require_grad();
        }
        Param::from_mapped_value(id, t, mapper)
    }
}

/// The decoupled decay step θ ← θ·(1 − lr·λ) on the decayed group (before the AdamW step
/// with λ = 0).
pub fn apply_weight_decay<B: AutodiffBackend, M: Module<B>>(
    model: M,
    groups: &DecayGroups,
    lr: f64,
    weight_decay: f64,
) -> M {
    let rate = lr * weight_decay;
    if rate == 0.0 {
        return model;
    }
    model.map(&mut Decay {
        decayed: &groups.decayed,
        factor: 1.0 - rate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuTrain;
    use crate::config::RunConfig;
    use crate::model::qbheat::QbHeat;
    use burn::optim::{AdamWConfig, GradientsParams, Optimizer};

    /// Collects every float tensor of a module.
    struct Flat<'a>(&'a mut Vec<f32>);
    impl<B: Backend> ModuleVisitor<B> for Flat<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.extend(param.val().into_data().iter::<f32>());
        }
    }

    /// Every parameter and running statistic of `m`, in visiting order.
    fn flat(m: &QbHeat<CpuTrain>) -> Vec<f32> {
        let mut all = Vec::new();
        m.visit(&mut Flat(&mut all));
        all
    }

    fn model() -> QbHeat<CpuTrain> {
        let mut cfg = RunConfig::default();
        cfg.predictor.dim = 8;
        cfg.decoder.dim = 8;
        cfg.decoder.depth = 1;
        cfg.decoder.heads = 2;
        QbHeat::new(&cfg, 3, &Default::default())
    }

    #[test]
    fn biases_norms_and_tokens_are_exempt() {
        let m = model();
        let g = decay_groups::<CpuTrain, _>(&m, false);
        let has = |names: &[String], s: &str| names.iter().any(|n| n == s);
        for exempt in [
            "encoder.tokens",
            "encoder.stem.bn.gamma",
            "encoder.stem.bn.beta",
            "decoder.embed.bias",
            "decoder.norm.gamma",
            "decoder.blocks.0.norm1.beta",
            "decoder.blocks.0.attn.qkv.bias",
        ] {
            assert!(
                has(&g.exempt_names, exempt),
                "{exempt}: {:?}",
                g.exempt_names
            );
            assert!(!has(&g.decayed_names, exempt));
        }
        for decayed in [
            "encoder.stem.weight",
            "projector.weight",
            "predictor.scales.0.mats.0",
            "decoder.embed.weight",
            "decoder.blocks.0.attn.qkv.weight",
        ] {
            assert!(
                has(&g.decayed_names, decayed),
                "{decayed}: {:?}",
                g.decayed_names
            );
        }
        assert_eq!(g.decayed.len(), g.decayed_names.len());
        assert!(
            g.decayed_names
                .iter()
                .chain(&g.exempt_names)
                .all(|n| !n.contains("running_")),
            "running statistics are not parameters"
        );
        let all = decay_groups::<CpuTrain, _>(&m, true);
        assert!(all.exempt_names.is_empty());
        assert_eq!(all.decayed.len(), g.decayed.len() + g.exempt_names.len());
    }

    #[test]
    fn manual_decay_equals_burns_adamw_decay() {
        // decay_all: our (1 − lr·λ) step + AdamW(λ = 0) must give burn's AdamW(λ) exactly
        let dev = Default::default();
        let set = crate::data::procedural::generate(4, 32, 3, 1);
        let mut cfg = RunConfig::default();
        cfg.predictor.dim = 8;
        cfg.decoder.dim = 8;
        cfg.decoder.depth = 1;
        cfg.decoder.heads = 2;
        let maker = crate::data::batch::BatchMaker::for_config(&cfg, &set);
        let batch = maker.make(&set, &[0, 1, 2, 3], 5);
        let (lr, wd) = (1e-2, 0.1);
        let a = model();
        let b = model();
        let grads_a = GradientsParams::from_grads(a.loss(&batch, &dev).backward(), &a);
        let grads_b = GradientsParams::from_grads(b.loss(&batch, &dev).backward(), &b);
        let mut theirs = AdamWConfig::new()
            .with_weight_decay(wd as f32)
            .init::<CpuTrain, QbHeat<CpuTrain>>();
        let a = theirs.step(lr, a, grads_a);
        let mut ours = AdamWConfig::new()
            .with_weight_decay(0.0)
            .init::<CpuTrain, QbHeat<CpuTrain>>();
        let groups = decay_groups::<CpuTrain, _>(&b, true);
        let b = ours.step(lr, apply_weight_decay(b, &groups, lr, wd), grads_b);
        assert_eq!(flat(&a), flat(&b), "every parameter and running statistic");
    }

    /// Four steps of burn's AdamW and of ours from the same model and batches, with and
    /// without decay: the same bits in every parameter after every step. Then our record,
    /// encoded as a checkpoint, loads into burn's AdamW and one more step of each still gives
    /// the same bits (the moments and step count match and the checkpoints are compatible).
    #[test]
    fn fused_adamw_gives_burns_adamw_bits() {
        use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
        let dev = Default::default();
        let mut cfg = RunConfig::default();
        cfg.predictor.dim = 8;
        cfg.decoder.dim = 8;
        cfg.decoder.depth = 1;
        cfg.decoder.heads = 2;
        let set = crate::data::procedural::generate(8, 32, 3, 1);
        let maker = crate::data::batch::BatchMaker::for_config(&cfg, &set);
        let burns = |wd| {
            AdamWConfig::new()
                .with_beta_2(0.95)
                .with_epsilon(1e-8)
                .with_weight_decay(wd)
                .init::<CpuTrain, QbHeat<CpuTrain>>()
        };
        for wd in [0.0f32, 0.05] {
            let mut theirs = burns(wd);
            let mut ours = crate::train::adamw::FusedAdamW::default()
                .with_beta_2(0.95)
                .with_epsilon(1e-8)
                .with_weight_decay(wd)
                .init::<CpuTrain, QbHeat<CpuTrain>>();
            let mut a = QbHeat::<CpuTrain>::new(&cfg, 3, &dev);
            let mut b = a.clone();
            for step in 0..5 {
                let lr = 1e-2 / (step + 1) as f64;
                let batch = maker.make(&set, &[step, step + 1, step + 2, step + 3], step as u64);
                let ga = GradientsParams::from_grads(a.loss(&batch, &dev).backward(), &a);
                let gb = GradientsParams::from_grads(b.loss(&batch, &dev).backward(), &b);
                if step == 4 {
                    let recorder = BinBytesRecorder::<FullPrecisionSettings>::new();
                    let bytes = recorder.record(ours.to_record(), ()).expect("encode");
                    theirs = burns(wd).load_record(recorder.load(bytes, &dev).expect("decode"));
                }
                a = theirs.step(lr, a, ga);
                b = ours.step(lr, b, gb);
                let (fa, fb) = (flat(&a), flat(&b));
                assert!(fa.iter().all(|x| x.is_finite()));
                assert_ne!(fa, flat(&QbHeat::<CpuTrain>::new(&cfg, 3, &dev)));
                assert_eq!(fa, fb, "wd {wd}, step {step}");
            }
        }
    }
}
