//! The SIMD level the CPU kernels run at, chosen once at run time: one binary runs on any
//! x86-64 CPU and uses AVX-512 where the CPU has it (a binary built on one node of a cluster
//! runs on the others).
//!
//! `WORKBENCH_SIMD=scalar|avx2|avx512` caps the level (for tests and benchmarks); a level the
//! CPU lacks is an error, not a silent fallback. Kernels written with [`multiversion!`] are
//! compiled once per level and dispatched on [`level`]; their reductions accumulate into
//! [`LANES`] fixed lanes summed in a fixed order ([`dot`], [`sum`]), and no level contracts
//! a multiply and an add into an FMA, so every level gives the same bits.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// Lanes of every reduction: one AVX-512 register of f32, two AVX2 registers.
pub const LANES: usize = 16;

/// A set of instructions the kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Baseline x86-64 (SSE2) or another architecture.
    Scalar,
    /// AVX2 + FMA (x86-64-v3).
    Avx2,
    /// AVX-512 F/BW/DQ/VL + AVX2 + FMA (x86-64-v4).
    Avx512,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Scalar, Level::Avx2, Level::Avx512];

    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// The best level this CPU runs.
    pub fn detected() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            let v3 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            let v4 = v3
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512dq")
                && is_x86_feature_detected!("avx512vl");
            if v4 {
                return Level::Avx512;
            }
            if v3 {
                return Level::Avx2;
            }
        }
        Level::Scalar
    }

    /// The level `WORKBENCH_SIMD` asks for (`None` when unset), checked against the CPU.
    pub fn requested(value: Option<&str>) -> Result<Option<Level>, String> {
        let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let level = Level::ALL
            .into_iter()
            .find(|l| l.name() == v)
            .ok_or_else(|| {
                format!("WORKBENCH_SIMD={v:?}: valid levels are scalar, avx2, avx512")
            })?;
        let best = Level::detected();
        if level > best {
            return Err(format!(
                "WORKBENCH_SIMD={v}: this CPU runs at most {} (flags: {})",
                best.name(),
                cpu_flags()
            ));
        }
        Ok(Some(level))
    }
}

static LEVEL: OnceLock<Level> = OnceLock::new();

/// A level forced for the whole process (0: none), for the tests that compare levels.
static FORCED: AtomicU8 = AtomicU8::new(0);

/// Forces `level` for every kernel call that follows, process-wide, or goes back to the
/// chosen level (`None`). For tests that compare levels in one process: every level gives
/// the same bits, so other work running meanwhile is unaffected. A level above the CPU's is
/// refused.
pub fn force(level: Option<Level>) -> Result<(), String> {
    if let Some(l) = level.filter(|&l| l > Level::detected()) {
        return Err(format!("this CPU cannot run {}", l.name()));
    }
    FORCED.store(level.map_or(0, |l| l as u8 + 1), Ordering::SeqCst);
    Ok(())
}

/// Checks `WORKBENCH_SIMD` once at start-up (the CLI calls it first, so a bad value is a
/// clear error rather than a silent fallback) and fixes the level.
pub fn init() -> Result<Level, String> {
    let requested = from_env()?;
    Ok(*LEVEL.get_or_init(|| requested.unwrap_or_else(Level::detected)))
}

/// The level `WORKBENCH_SIMD` asks for, if any.
fn from_env() -> Result<Option<Level>, String> {
    Level::requested(std::env::var("WORKBENCH_SIMD").ok().as_deref())
}

/// The level the kernels run at: `WORKBENCH_SIMD` when set and valid, else the best the CPU
/// runs.
#[inline]
pub fn level() -> Level {
    match FORCED.load(Ordering::Relaxed) {
        0 => *LEVEL.get_or_init(|| from_env().ok().flatten().unwrap_or_else(Level::detected)),
        k => Level::ALL[(k - 1) as usize],
    }
}

/// The level the `gemm` crate's kernels run at: it chooses for itself at run time (AVX-512
/// when built with the `avx512-gemm` feature and the CPU has avx512f, else AVX2 + FMA),
/// whatever [`level`] says.
pub fn gemm_level() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if cfg!(feature = "avx512-gemm") && is_x86_feature_detected!("avx512f") {
            return Level::Avx512;
        }
        if is_x86_feature_detected!("fma") {
            return Level::Avx2;
        }
    }
    Level::Scalar
}

/// `simd=… gemm_simd=… cpu_flags=…`: the levels a benchmark ran at and the CPU's flags, for
/// the end of every `bench*:` line that times kernels.
pub fn describe() -> String {
    format!(
        "simd={} gemm_simd={} cpu_flags={}",
        level().name(),
        gemm_level().name(),
        cpu_flags()
    )
}

/// The CPU's vector flags that matter here, as `/proc/cpuinfo` names them.
pub fn cpu_flags() -> String {
    let mut flags = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! flag {
            ($f:tt, $name:expr) => {
                if is_x86_feature_detected!($f) {
                    flags.push($name);
                }
            };
        }
        flag!("avx2", "avx2");
        flag!("fma", "fma");
        flag!("avx512f", "avx512f");
        flag!("avx512bw", "avx512bw");
        flag!("avx512vl", "avx512vl");
        flag!("avx512vnni", "avx512_vnni");
        flag!("avx512bf16", "avx512_bf16");
    }
    if flags.is_empty() {
        "none".into()
    } else {
        flags.join(",")
    }
}

/// Defines a function whose body is compiled once per [`Level`] and dispatched on
/// [`level`] at each call. Helpers the body calls must be `#[inline(always)]` to be compiled
/// at the caller's level. Arguments are plain `name: Type` pairs.
#[macro_export]
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
            #[allow(clippy::too_many_arguments)]
            fn v4($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
            #[allow(clippy::too_many_arguments)]
            fn v3($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
            match $crate::simd::level() {
                // SAFETY: level() reports a level only when the CPU has its features
                #[cfg(target_arch = "x86_64")]
                $crate::simd::Level::Avx512 => unsafe { v4($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                $crate::simd::Level::Avx2 => unsafe { v3($($arg),*) },
                _ => body($($arg),*),
            }
        }
    };
}

/// `Σ a[i]·b[i]` over [`LANES`] lanes in a fixed order: the same bits at every level.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    for (l, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[l] += x * y;
    }
    fold(acc)
}

/// `Σ a[i]` over [`LANES`] lanes in a fixed order, in f64.
#[inline(always)]
pub fn sum(a: &[f32]) -> f64 {
    let mut acc = [0f64; LANES];
    add_into(&mut acc, a);
    fold(acc)
}

/// Adds `a` into the lanes `acc` (element i into lane i mod [`LANES`]), so that a sum over
/// several slices (the planes of a channel) folds its lanes once, at the end.
#[inline(always)]
pub fn add_into(acc: &mut [f64; LANES], a: &[f32]) {
    let chunks = a.chunks_exact(LANES);
    let rest = chunks.remainder();
    for x in chunks {
        for l in 0..LANES {
            acc[l] += x[l] as f64;
        }
    }
    for (l, x) in rest.iter().enumerate() {
        acc[l] += *x as f64;
    }
}

/// `Σ (a[i] − mean)²` over [`LANES`] lanes in a fixed order, in f64.
#[inline(always)]
pub fn sum_sq_dev(a: &[f32], mean: f64) -> f64 {
    let mut acc = [0f64; LANES];
    sq_dev_into(&mut acc, a, mean);
    fold(acc)
}

/// Adds `(a[i] − mean)²` into the lanes `acc`, like [`add_into`].
#[inline(always)]
pub fn sq_dev_into(acc: &mut [f64; LANES], a: &[f32], mean: f64) {
    let chunks = a.chunks_exact(LANES);
    let rest = chunks.remainder();
    for x in chunks {
        for l in 0..LANES {
            let d = x[l] as f64 - mean;
            acc[l] += d * d;
        }
    }
    for (l, x) in rest.iter().enumerate() {
        let d = *x as f64 - mean;
        acc[l] += d * d;
    }
}

/// The largest value of `a` (NaN-free), lane-wise over [`LANES`] lanes, then across them in a
/// tree (four dependent steps, not sixteen: the attention's softmax rows are one vector long);
/// exact, so the same at every level. Only whole vectors are read: a caller pads the rest
/// (with −∞).
#[inline(always)]
pub fn max(a: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; LANES];
    for x in a.as_chunks::<LANES>().0 {
        for l in 0..LANES {
            m[l] = m[l].max(x[l]);
        }
    }
    fold_by(m, f32::max)
}

/// The lanes summed pairwise in a fixed tree.
#[inline(always)]
pub fn fold<T: Copy + std::ops::Add<Output = T>>(acc: [T; LANES]) -> T {
    fold_by(acc, |a, b| a + b)
}

/// The lanes combined pairwise by `f` in a fixed tree (lane l with lane l + width, halving
/// the width): four dependent steps for sixteen lanes.
#[inline(always)]
pub fn fold_by<T: Copy>(mut acc: [T; LANES], f: impl Fn(T, T) -> T) -> T {
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            acc[l] = f(acc[l], acc[l + width]);
        }
        width /= 2;
    }
    acc[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::multiversion! {
        fn dot_at_level(a: &[f32], b: &[f32]) -> f32 {
            dot(a, b)
        }
    }

    #[test]
    fn requests_are_checked_against_the_cpu() {
        assert_eq!(Level::requested(None), Ok(None));
        assert_eq!(Level::requested(Some("scalar")), Ok(Some(Level::Scalar)));
        let e = Level::requested(Some("sse9")).unwrap_err();
        assert!(e.contains("scalar, avx2, avx512"), "{e}");
        let best = Level::detected();
        for l in Level::ALL {
            assert_eq!(Level::requested(Some(l.name())).is_ok(), l <= best, "{l:?}");
        }
    }

    /// The lane-wise maximum is the largest value wherever it sits (any lane, any vector),
    /// and reads whole vectors only.
    #[test]
    fn max_finds_the_largest_value_in_any_lane() {
        for n in [16usize, 32, 64] {
            for at in 0..n {
                let mut a: Vec<f32> = (0..n).map(|i| -((i * 7 % 13) as f32) - 1.0).collect();
                a[at] = 0.5;
                assert_eq!(max(&a), 0.5, "n {n} at {at}");
            }
        }
        // a partial vector at the end is not read: callers pad it
        assert_eq!(
            max(&[-1.0; 16].iter().copied().chain([9.0]).collect::<Vec<_>>()),
            -1.0
        );
        assert_eq!(max(&[]), f32::NEG_INFINITY);
    }

    #[test]
    fn reductions_match_f64_sums_and_fold_in_a_fixed_order() {
        for n in [0, 1, 15, 16, 17, 100, 1000] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 37 % 11) as f32 - 5.0) / 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 13 % 7) as f32 - 3.0) / 5.0).collect();
            let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!(
                (dot(&a, &b) as f64 - exact).abs() <= 1e-5 * (1.0 + exact.abs()),
                "{n}"
            );
            let s: f64 = a.iter().map(|&x| x as f64).sum();
            assert!((sum(&a) - s).abs() <= 1e-9 * (1.0 + s.abs()), "{n}");
            // the dispatched copy gives the same bits as the inlined one
            assert_eq!(dot_at_level(&a, &b).to_bits(), dot(&a, &b).to_bits());
        }
        assert_eq!(fold([1.0f32; LANES]), LANES as f32);
    }
}
