//! The QB-Heat model: Mobile-Former encoder, quarter masking, heat-equation predictor, decoder.

pub mod batch_norm;
pub mod decoder;
pub mod export;
pub mod features;
pub mod init;
pub mod layer_norm;
pub mod layers;
pub mod mobile_former;
pub mod moco;
pub mod predictor;
pub mod qbheat;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, Tensor};

/// Counts trained parameters: every float tensor but BatchNorm's running statistics (burn's
/// `num_params` counts those too; PyTorch and the paper do not).
struct Trainable {
    path: Vec<String>,
    count: usize,
}

impl<B: Backend> ModuleVisitor<B> for Trainable {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if !self.path.last().is_some_and(|n| n.starts_with("running_")) {
            self.count += param.shape().num_elements();
        }
    }
}

/// Trained parameters of a module (running statistics excluded).
pub fn trainable_params<B: Backend, M: Module<B>>(module: &M) -> usize {
    let mut t = Trainable {
        path: Vec::new(),
        count: 0,
    };
    module.visit(&mut t);
    t.count
}
