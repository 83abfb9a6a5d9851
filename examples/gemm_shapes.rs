//! GEMM throughput of the `gemm` crate (what the fused kernels and burn-flex call) on this
//! model's product shapes, on one core and on all cores: the README's comparison with
//! PyTorch's `a @ b` on the same shapes (`torch.set_num_threads(1 | 2)`, 20 timed products
//! after 3 warm-ups) showed the GEMMs are not what keeps the step behind.
//!
//!   cargo run --release --example gemm_shapes

use std::time::Instant;

fn main() {
    // (m, n, k): decoder qkv, fc1, fc2, the heat predictor, an encoder 1×1 convolution
    let shapes = [
        (4096usize, 384usize, 128usize),
        (4096, 512, 128),
        (4096, 128, 512),
        (256, 512, 512),
        (128, 16384, 64),
    ];
    for parallel in [false, true] {
        for &(m, n, k) in &shapes {
            let a = vec![0.5f32; m * k];
            let b = vec![0.25f32; k * n];
            let mut c = vec![0f32; m * n];
            let reps = 20;
            let t = Instant::now();
            for _ in 0..reps {
                // SAFETY: row-major m×k, k×n and m×n buffers of exactly those sizes.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        c.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        1,
                        k as isize,
                        b.as_ptr(),
                        1,
                        n as isize,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        if parallel {
                            gemm::Parallelism::Rayon(0)
                        } else {
                            gemm::Parallelism::None
                        },
                    );
                }
            }
            let s = t.elapsed().as_secs_f64() / reps as f64;
            println!(
                "gemm parallel={parallel} {m}x{n}x{k}: {:.2} ms {:.1} GFLOP/s",
                s * 1e3,
                2.0 * (m * n * k) as f64 / s / 1e9
            );
        }
    }
}
