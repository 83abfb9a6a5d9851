//! Seeds of a run's random choices: every draw of a step (sample order, crops, flips, kept
//! corners, views) comes from a generator seeded by (seed, epoch, step), so a resumed run
//! replays the same batches as an uninterrupted one.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A seed for step `step` of `epoch`, mixed so neighbouring steps are unrelated.
pub fn step_seed(seed: u64, epoch: usize, step: usize) -> u64 {
    let mut x = seed ^ ((epoch as u64) << 32) ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

/// Sample order of one epoch.
pub fn epoch_order(seed: u64, epoch: usize, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(step_seed(
        seed,
        epoch,
        usize::MAX,
    )));
    order
}
