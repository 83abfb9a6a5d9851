//! Compute backends: burn-flex on the CPU always, burn-cuda behind the `cuda` feature, and the
//! one place that turns a [`BackendKind`] into a concrete backend type ([`dispatch`]).

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;

use crate::kernels::Kernels;
use crate::spec::BackendKind;

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

/// The chosen backend or device cannot run here (no CUDA build, no driver, no such GPU): a
/// usage error, reported in one line before burn starts (the CLI exits with 2).
#[derive(Debug, Clone, PartialEq)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unavailable {}

/// A backend to train on: autodiff over a backend with the fused kernels, both sides
/// implementing [`Kernels`] (the inner one runs evaluation and validation).
pub trait TrainBackend: AutodiffBackend<InnerBackend: Kernels> + Kernels {}

impl<B: AutodiffBackend<InnerBackend: Kernels> + Kernels> TrainBackend for B {}

/// A computation written once for any training backend; [`dispatch`] runs it on the one a
/// run chose.
pub trait OnBackend {
    type Output;
    fn run<B: TrainBackend>(self, device: B::Device) -> Result<Self::Output>;
}

/// Runs `job` on backend `kind` (GPU `device` for cuda), or explains why it cannot.
pub fn dispatch<T: OnBackend>(kind: BackendKind, device: usize, job: T) -> Result<T::Output> {
    match kind {
        BackendKind::Cpu => job.run::<CpuTrain>(Default::default()),
        BackendKind::Cuda => on_cuda(device, job),
    }
}

/// A name for the device a run uses ("cpu x2", "cuda:0").
pub fn device_name(kind: BackendKind, device: usize) -> String {
    match kind {
        BackendKind::Cpu => format!(
            "cpu x{}",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
        BackendKind::Cuda => format!("cuda:{device}"),
    }
}

/// NVIDIA GPUs the kernel driver exposes (`/dev/nvidiaN`), checked before burn loads CUDA:
/// burn panics from a background thread when there is no driver.
pub fn nvidia_devices() -> usize {
    std::fs::read_dir("/dev")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().to_string();
                    n.strip_prefix("nvidia").is_some_and(|rest| {
                        !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit())
                    })
                })
                .count()
        })
        .unwrap_or(0)
}

/// Checks that GPU `device` exists before any CUDA call.
pub fn check_gpu(device: usize) -> Result<()> {
    check_gpus(&[device])
}

/// [`check_gpu`] for every index of `devices`.
pub fn check_gpus(devices: &[usize]) -> Result<()> {
    let n = nvidia_devices();
    if n == 0 {
        return Err(Unavailable(
            "backend cuda: no NVIDIA driver or GPU on this machine (/dev/nvidia0 is missing); use --backend cpu".into(),
        )
        .into());
    }
    if let Some(d) = devices.iter().find(|&&d| d >= n) {
        return Err(Unavailable(format!(
            "backend cuda: GPU {d} does not exist; this machine has {n} (0..{})",
            n - 1
        ))
        .into());
    }
    Ok(())
}

#[cfg(feature = "cuda")]
fn on_cuda<T: OnBackend>(device: usize, job: T) -> Result<T::Output> {
    check_gpu(device)?;
    job.run::<GpuTrain>(burn::backend::cuda::CudaDevice::new(device))
}

#[cfg(not(feature = "cuda"))]
fn on_cuda<T: OnBackend>(_: usize, _: T) -> Result<T::Output> {
    Err(Unavailable(NO_CUDA.into()).into())
}

/// Keeps freed memory in the process for reuse: the allocator serves blocks up to 32 MiB from
/// its heap instead of fresh `mmap`s and never trims it back. A training step frees and
/// re-allocates the same large activation buffers every step; with glibc's defaults each of
/// them is a new mapping whose pages fault in again (a tenth of the step's time at batch 256).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tunables; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
