//! Normal logits, `scale * N(0, 1)` by Box-Muller: the one generator of the
//! tests (`support::logits`) and of the benches (benches/common includes
//! this file with `#[path]`). It depends on `rand` only.
#![allow(dead_code)]

use rand::Rng;

/// Lower end of the first uniform, so that `ln(u1)` stays finite.
pub const U1_MIN: f32 = 1e-7;

/// `scale * sqrt(-2 ln u1) * cos(2 pi u2)`: one `scale * N(0, 1)` value
/// from two uniforms, `u1` in `(0, 1]`, `u2` in `[0, 1)`.
pub fn box_muller(scale: f32, u1: f32, u2: f32) -> f32 {
    scale * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// One `scale * N(0, 1)` value drawn from `rng`.
pub fn normal_logit<R: Rng + ?Sized>(rng: &mut R, scale: f32) -> f32 {
    let u1: f32 = rng.random_range(U1_MIN..1.0);
    let u2: f32 = rng.random();
    box_muller(scale, u1, u2)
}

/// `n` values of `scale * N(0, 1)`.
pub fn normal_logits<R: Rng + ?Sized>(rng: &mut R, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| normal_logit(rng, scale)).collect()
}

/// `n` values of `scale * N(0, 1)`, each replaced by `-inf` with
/// probability 0.02 when `holes` (masked tokens).
pub fn normal_logits_with_holes<R: Rng + ?Sized>(
    rng: &mut R,
    n: usize,
    scale: f32,
    holes: bool,
) -> Vec<f32> {
    (0..n)
        .map(|_| {
            if holes && rng.random_bool(0.02) {
                f32::NEG_INFINITY
            } else {
                normal_logit(rng, scale)
            }
        })
        .collect()
}
