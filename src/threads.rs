//! The compute threads: rayon's global pool, with the training thread as one of its workers,
//! and [`HotPool`], which keeps the other workers polling for work while training runs.
//!
//! Every parallel loop of a step (our kernels, burn-flex's, the `gemm` crate's) runs in rayon's
//! global pool. A step issues hundreds of them with short serial stretches between (autodiff
//! bookkeeping, burn's serial element-wise ops), so how a loop reaches an idle core matters as
//! much as the loop itself.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Makes the calling thread (the process's main thread, which runs training) worker 0 of
/// rayon's global pool, so the pool spawns one thread fewer than there are cores. A parallel
/// loop issued by the training thread then starts on that thread at once, its other part
/// stolen by the remaining workers, instead of being injected into a pool of sleeping threads
/// that must be woken while the issuing thread blocks: on 2 cores that hand-off happens
/// thousands of times per step. Call it first thing in `main`, before anything uses rayon;
/// a second call (or a pool already built) is a no-op.
pub fn train_on_main_thread() {
    let _ = rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global();
}

/// `WORKBENCH_HOT_POOL=0` turns [`HotPool`] off (the workers then sleep between loops, as
/// rayon does by default): for A/B benchmarks.
pub const HOT_POOL_ENV: &str = "WORKBENCH_HOT_POOL";

/// Whether [`HotPool`] polls (not turned off by `WORKBENCH_HOT_POOL=0`).
pub fn hot_pool_enabled() -> bool {
    std::env::var(HOT_POOL_ENV).as_deref() != Ok("0")
}

/// Keeps rayon's other workers looking for work while it lives, instead of letting them fall
/// asleep between parallel loops.
///
/// Rayon parks an idle worker after ~32 rounds of `sched_yield` (tens of microseconds); the
/// next loop must wake it with a futex call, which in a VM is an inter-processor interrupt to a
/// halted vCPU: tens of microseconds on the issuing thread, more before the worker starts, and
/// far more when the host is busy. On the 2-core Xeon VM that was ~5 % of the training
/// thread's samples in `futex_wake` and ~1 500 futex calls per batch-256 step. While a
/// `HotPool` lives, each worker other than the caller runs a job that executes whatever work
/// it can steal (`rayon::yield_now`) and otherwise spins briefly and gives its core away with
/// `sched_yield` — what OpenMP runtimes do by default — so another runnable thread still gets
/// the core. Dropping it ends those jobs; the workers then sleep as before. Results do not
/// change: which thread runs a task never changes what it computes.
pub struct HotPool {
    stop: Arc<AtomicBool>,
    /// Workers inside the polling job right now.
    polling: Arc<AtomicUsize>,
}

/// Spin-loop hints between two `sched_yield`s of an idle worker.
const SPINS_PER_YIELD: usize = 64;

impl HotPool {
    /// Starts polling on every worker of the current pool but the calling thread's; a no-op
    /// when the caller is not a worker of a pool (see [`train_on_main_thread`]) or
    /// `WORKBENCH_HOT_POOL=0`.
    pub fn start() -> Self {
        let idle = Self {
            stop: Arc::new(AtomicBool::new(false)),
            polling: Arc::new(AtomicUsize::new(0)),
        };
        if !hot_pool_enabled() {
            return idle;
        }
        // only a pool worker may start it: from outside the pool every worker would poll,
        // the main thread of `train_on_main_thread` too, which may have other work to do
        let Some(caller) = rayon::current_thread_index() else {
            return idle;
        };
        let (stop, polling) = (idle.stop.clone(), idle.polling.clone());
        rayon::spawn_broadcast(move |ctx| {
            // the caller's own copy returns at once: the caller has training to do
            if ctx.index() == caller {
                return;
            }
            polling.fetch_add(1, Ordering::SeqCst);
            while !stop.load(Ordering::Relaxed) {
                if rayon::yield_now() != Some(rayon::Yield::Executed) {
                    for _ in 0..SPINS_PER_YIELD {
                        std::hint::spin_loop();
                    }
                    std::thread::yield_now();
                }
            }
            polling.fetch_sub(1, Ordering::SeqCst);
        });
        idle
    }

    /// How many workers are polling right now (they join shortly after [`HotPool::start`]).
    pub fn polling(&self) -> usize {
        self.polling.load(Ordering::SeqCst)
    }
}

impl Drop for HotPool {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;
    use std::time::{Duration, Instant};

    /// Waits up to 30 s for `pool.polling()` to become `want`.
    fn settles(pool: &HotPool, want: usize) -> bool {
        let t = Instant::now();
        while pool.polling() != want {
            if t.elapsed() > Duration::from_secs(30) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Inside a 3-thread pool, the two workers other than the caller poll, parallel loops give
    /// their results meanwhile, and the polling ends when the guard drops.
    #[test]
    fn hot_pool_polls_on_the_other_workers_until_dropped() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let got = pool.install(|| {
                let hot = HotPool::start();
                let joined = settles(&hot, 2);
                let sums: Vec<u64> = [1u64, 100, 10_000]
                    .iter()
                    .map(|&n| (0..n).into_par_iter().map(|x| x * x).sum())
                    .collect();
                let polling = hot.polling.clone();
                drop(hot);
                let t = Instant::now();
                while polling.load(Ordering::SeqCst) != 0 && t.elapsed() < Duration::from_secs(30) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                (joined, sums, polling.load(Ordering::SeqCst))
            });
            tx.send(got).unwrap();
        });
        let (joined, sums, left) = rx
            .recv_timeout(Duration::from_secs(90))
            .expect("pool stuck");
        assert!(joined, "the two other workers did not start polling");
        let want: Vec<u64> = [1u64, 100, 10_000]
            .iter()
            .map(|&n| (0..n).map(|x| x * x).sum())
            .collect();
        assert_eq!(sums, want);
        assert_eq!(left, 0, "workers still polling after the drop");
    }

    /// Outside a pool it starts nothing (every worker would poll, including a main thread
    /// that is worker 0).
    #[test]
    fn hot_pool_outside_a_pool_is_a_no_op() {
        assert_eq!(rayon::current_thread_index(), None);
        let hot = HotPool::start();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(hot.polling(), 0);
    }
}
