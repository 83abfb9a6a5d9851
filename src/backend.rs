//! Compute backends: burn-flex on the CPU always, burn-cuda behind the `cuda` feature.

/// The CPU backend (burn-flex: pure Rust, SIMD, rayon).
pub type Cpu = burn::backend::Flex;
/// The CPU backend with reverse-mode autodiff, for training.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;

/// The CUDA backend (burn-cuda with autotune and fusion).
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda;
/// The CUDA backend with autodiff.
#[cfg(feature = "cuda")]
pub type GpuTrain = burn::backend::Autodiff<Gpu>;

/// Error text for `--backend cuda` on a build without the feature.
pub const NO_CUDA: &str = "this workbench was built without CUDA support; rebuild with \
`cargo build --release --features cuda` on a machine with the CUDA toolkit, or use --backend cpu";
