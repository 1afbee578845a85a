//! What every bench shares: the reference logits, `scale * N(0, 1)`.

use rand::{Rng, SeedableRng, rngs::StdRng};

/// `n` values of `scale * N(0, 1)` by Box-Muller, deterministic for `seed`.
pub fn normal_logits(n: usize, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let u1: f32 = rng.random_range(f32::EPSILON..1.0);
            let u2: f32 = rng.random();
            scale * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
        })
        .collect()
}
