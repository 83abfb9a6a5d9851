//! Process-wide liveness: the last moment this process's work made progress.
//!
//! Long loops (training steps, validation and probe batches, feature extraction, data
//! loading) call [`tick`]. A sweep worker's heartbeat thread publishes [`last_tick`] to the
//! store, so a worker whose main thread hangs stops looking alive even though the process
//! still exists, while a worker busy in a long probe keeps looking alive.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch of the last [`tick`] (0 = never).
static LAST_TICK_MS: AtomicU64 = AtomicU64::new(0);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Records progress now.
pub fn tick() {
    LAST_TICK_MS.fetch_max(now_ms(), Ordering::Relaxed);
}

/// Seconds since the Unix epoch of the last progress, `None` before the first [`tick`].
pub fn last_tick() -> Option<f64> {
    let ms = LAST_TICK_MS.load(Ordering::Relaxed);
    (ms > 0).then(|| ms as f64 / 1e3)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ticks_move_forward() {
        super::tick();
        let a = super::last_tick().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        super::tick();
        assert!(super::last_tick().unwrap() > a);
    }
}
