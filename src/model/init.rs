//! Deterministic parameter initialisation.
//!
//! burn's own random ops draw from a global generator that is consumed once per op, so two
//! runs with the same seed would not start from the same weights. Every parameter here is
//! drawn from a ChaCha stream derived from the run seed instead.

use burn::module::Param;
use burn::tensor::{backend::Backend, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded source of initial weights.
pub struct Init {
    rng: ChaCha8Rng,
}

impl Init {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_1417_0000_0001),
        }
    }

    /// One standard-normal draw (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1: f64 = self.rng.random::<f64>().max(1e-12);
        let u2: f64 = self.rng.random::<f64>();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }

    /// `n` draws from N(0, std²).
    pub fn normal_vec(&mut self, n: usize, std: f64) -> Vec<f32> {
        (0..n).map(|_| self.normal() * std as f32).collect()
    }

    /// `n` draws from U(−a, a).
    pub fn uniform_vec(&mut self, n: usize, a: f64) -> Vec<f32> {
        (0..n)
            .map(|_| ((self.rng.random::<f64>() * 2.0 - 1.0) * a) as f32)
            .collect()
    }

    /// Xavier-uniform matrix `[fan_in, fan_out]` (the MAE decoder's linear init).
    pub fn xavier<B: Backend>(
        &mut self,
        fan_in: usize,
        fan_out: usize,
        device: &B::Device,
    ) -> Param<Tensor<B, 2>> {
        let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
        param(
            self.uniform_vec(fan_in * fan_out, a),
            [fan_in, fan_out],
            device,
        )
    }

    /// Kaiming-normal (fan-out) tensor, MobileNet's conv init.
    pub fn kaiming<B: Backend, const D: usize>(
        &mut self,
        shape: [usize; D],
        fan_out: usize,
        device: &B::Device,
    ) -> Param<Tensor<B, D>> {
        let n = shape.iter().product();
        let std = (2.0 / fan_out.max(1) as f64).sqrt();
        param(self.normal_vec(n, std), shape, device)
    }
}

/// A parameter tensor from host values.
pub fn param<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
}

/// A constant-filled parameter (zeros for biases, ones for norm scales).
pub fn filled<B: Backend, const D: usize>(
    value: f32,
    shape: [usize; D],
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    Param::from_tensor(Tensor::full(shape, value, device))
}
