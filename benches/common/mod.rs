//! What every bench shares: the reference logits, `scale * N(0, 1)`, from
//! the tests' generator (tests/support/logits.rs).

#[path = "../../tests/support/logits.rs"]
mod logits;

use rand::{SeedableRng, rngs::StdRng};

/// `n` values of `scale * N(0, 1)` by Box-Muller, deterministic for `seed`.
pub fn normal_logits(n: usize, scale: f32, seed: u64) -> Vec<f32> {
    logits::normal_logits(&mut StdRng::seed_from_u64(seed), n, scale)
}
