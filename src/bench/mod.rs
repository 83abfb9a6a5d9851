//! Benchmarks behind the `workbench bench*` verbs. Each prints one `name: key=value ...` line.
//!
//! * [`gemm`]: the step's heaviest matrix products, on one thread and on every thread.
//! * [`step`]: pre-training steps (forward + backward + AdamW) after warm-up, and the time
//!   per phase of a step.
//! * [`store`]: metric ingest and the `runs` listing on a generated store.
//! * [`spectrum`]: the generator spectrum analysis.
//! * [`tui`]: TUI frame time and commit-to-screen latency.
//! * [`report`]: report generation on a large store.

pub mod gemm;
pub mod report;
pub mod spectrum;
pub mod step;
pub mod store;
pub mod tui;

/// Peak resident set size of this process in MiB (VmHWM), 0 where /proc is missing.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU seconds (user, system) and minor page faults of this process so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub user: f64,
    pub system: f64,
    pub page_faults: u64,
}

impl Usage {
    pub fn now() -> Usage {
        // SAFETY: getrusage fills the zero-initialised struct it is given.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
            return Usage::default();
        }
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
        Usage {
            user: secs(ru.ru_utime),
            system: secs(ru.ru_stime),
            page_faults: (ru.ru_minflt + ru.ru_majflt) as u64,
        }
    }

    /// The usage between `earlier` and `self`.
    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
            page_faults: self.page_faults.saturating_sub(earlier.page_faults),
        }
    }
}
