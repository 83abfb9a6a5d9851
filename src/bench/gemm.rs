//! `workbench bench-gemm`: the pre-training step's heaviest matrix products (mf-tiny, 32 px,
//! batch 256), timed through the same code the step runs ([`matmul_strided`]: one `gemm`
//! block per thread), on the calling thread and on every thread, on warm operands: set
//! against the step's own per-product rates, it tells the GEMM kernel's share of a slow step
//! from the step's (README, "capped at AVX2 on both sides").

use anyhow::{ensure, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

use crate::kernels::flex::{matmul_strided, Operand, Strided};

/// One product `dst [m, n] = lhs [m, k] · rhs [k, n]` of the step, with the operands'
/// layouts as the step has them (`t`: stored transposed).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub what: &'static str,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub lhs_t: bool,
    pub rhs_t: bool,
}

/// Products that take the most GEMM time in the batch-256 step (timed per call in the step):
/// a dense weight gradient over 4 096 decoder tokens, the decoder's MLP forward (weights
/// stored `[out, in]`) and input gradient, the heat predictor, an encoder 1×1 convolution
/// (16 → 64 channels over 256 × 8 × 8 positions) and a 96 × 96 weight gradient over 1 536 rows.
pub const SHAPES: [Shape; 7] = [
    Shape::new("dense-weight-grad", 256, 128, 4096, true, false),
    Shape::new("decoder-fc1", 4096, 512, 128, false, true),
    Shape::new("decoder-fc2-input-grad", 4096, 128, 512, false, false),
    Shape::new("decoder-fc2", 4096, 128, 512, false, true),
    Shape::new("predictor", 256, 512, 512, false, false),
    Shape::new("encoder-1x1", 64, 16384, 16, false, false),
    Shape::new("weight-grad-1536", 96, 96, 1536, true, false),
];

impl Shape {
    const fn new(
        what: &'static str,
        m: usize,
        n: usize,
        k: usize,
        lhs_t: bool,
        rhs_t: bool,
    ) -> Self {
        Self {
            what,
            m,
            n,
            k,
            lhs_t,
            rhs_t,
        }
    }

    /// Floating-point operations of one product (a multiply-add is two).
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.n * self.k) as f64
    }
}

/// Milliseconds per product on one thread and on every thread, for one shape.
#[derive(Debug, Clone, Copy)]
pub struct GemmTiming {
    pub serial_ms: f64,
    pub parallel_ms: f64,
}

/// Times `reps` products of `shape` (after one warm-up each way) on deterministic operands,
/// and checks that the parallel product gives the serial one's bits (the split only cuts dst
/// into blocks, never a sum).
pub fn time(shape: &Shape, reps: usize) -> Result<GemmTiming> {
    ensure!(reps >= 1, "--reps must be at least 1");
    let Shape { m, n, k, .. } = *shape;
    let lhs = values(m * k, 1);
    let rhs = values(k * n, 2);
    let lhs_op = if shape.lhs_t {
        Operand::transposed(&lhs, m)
    } else {
        Operand::rows(&lhs, k)
    };
    let rhs_op = if shape.rhs_t {
        Operand::transposed(&rhs, k)
    } else {
        Operand::rows(&rhs, n)
    };
    let mut serial = vec![0f32; m * n];
    let mut parallel = vec![0f32; m * n];
    let run = |dst: &mut [f32], parallel: bool| {
        let t = Instant::now();
        for _ in 0..reps {
            matmul_strided(
                Strided::rows(dst, n),
                [m, n, k],
                lhs_op,
                rhs_op,
                false,
                parallel,
            );
        }
        1e3 * t.elapsed().as_secs_f64() / reps as f64
    };
    run(&mut serial[..], false);
    let serial_ms = run(&mut serial[..], false);
    let _hot = crate::threads::HotPool::start();
    run(&mut parallel[..], true);
    let parallel_ms = run(&mut parallel[..], true);
    ensure!(
        serial
            .iter()
            .zip(&parallel)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "{}: the parallel product differs from the serial one",
        shape.what
    );
    Ok(GemmTiming {
        serial_ms,
        parallel_ms,
    })
}

/// `len` values in [-1, 1), the same for every run of one seed.
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The timed product is the product: a small shape against f64 sums.
    #[test]
    fn timed_product_matches_the_definition() {
        let shape = Shape::new("t", 33, 20, 17, true, true);
        time(&shape, 1).unwrap();
        let (m, n, k) = (shape.m, shape.n, shape.k);
        let (lhs, rhs) = (values(m * k, 1), values(k * n, 2));
        let mut dst = vec![0f32; m * n];
        matmul_strided(
            Strided::rows(&mut dst, n),
            [m, n, k],
            Operand::transposed(&lhs, m),
            Operand::transposed(&rhs, k),
            false,
            true,
        );
        for i in 0..m {
            for j in 0..n {
                // lhs stored [k, m] (transposed), rhs stored [n, k]
                let want: f64 = (0..k)
                    .map(|p| lhs[p * m + i] as f64 * rhs[j * k + p] as f64)
                    .sum();
                assert!((dst[i * n + j] as f64 - want).abs() < 1e-4, "{i},{j}");
            }
        }
    }
}
