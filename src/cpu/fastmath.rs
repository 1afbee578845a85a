//! Branch-free f32 kernels that the compiler vectorises: `exp` for the
//! softmax sums, and the max / first-index scans.
//!
//! The standard library's `exp` is a scalar libm call; summing `exp` over a
//! 128k vocabulary with it costs about a millisecond, which would dominate
//! every row. The kernel here is accurate to a few ulps (below 1e-6 relative
//! for every result of at least 2^-125), far inside the 1e-5 logprob
//! tolerance of SPEC.md. It feeds sums (softmax normalisers and top-p
//! masses) and the Gumbel skip threshold, which carries a margin far above
//! its error; never a comparison between individual logits, so it cannot
//! move a token choice except at the knife edges the contract allows.

const LANES: usize = 8;

/// `e^x` in f32 over the whole f32 range, branch-free so loops over it
/// vectorise: relative error below 1e-6 wherever the result is at least
/// `2^-125` (a few ulps), the correctly signed limit `+inf` from `x >
/// 88.73` (where `e^x` overflows f32), absolute error below `2^-125` where
/// `e^x` is smaller (`x < -86.64`: `+0` is returned; the crate only sums
/// such values into totals of at least 1), and NaN for NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: rounds to nearest integer
    // Clamp to [-86.98, 88.8] (NaN stays NaN), so n = round(x / ln 2) lies
    // in [-125, 128] and 2^(n - 1) is a normal f32: e^x = (2 e^r) 2^(n-1)
    // overflows to +inf exactly when it should, with no special case.
    let xc = x.clamp(-86.98, 88.8);
    // r = x - n ln 2 in two parts (Cody-Waite), so r carries no rounding
    // of x * log2(e) (half an ulp of 127 in the exponent: about 3e-6
    // relative at |x| = 88).
    let tm = xc * LOG2E + MAGIC; // low mantissa bits now hold n as an integer
    let n = tm - MAGIC;
    const LN2_HI: f32 = 0.693_359_4; // exact in 9 bits: n * LN2_HI is exact
    const LN2_LO: f32 = -2.121_944_4e-4;
    let r = (xc - n * LN2_HI) - n * LN2_LO; // in [-0.35, 0.35]
    // 2 e^r: Cephes' expf minimax polynomial (about 1 ulp) with every
    // coefficient doubled (exact).
    const C2: f32 = 1.0; // 2 x Cephes' 5.0000001201e-1, rounded to f32
    const C3: f32 = 0.333_333_3;
    const C4: f32 = 0.083_331_59;
    const C5: f32 = 0.016_666_904;
    const C6: f32 = 0.002_796_4;
    const C7: f32 = 0.000_397_513_8;
    let p = 2.0 + 2.0 * r + r * r * (C2 + r * (C3 + r * (C4 + r * (C5 + r * (C6 + r * C7)))));
    // 2^(n - 1) from the integer in tm's mantissa: integer ops only, so the
    // loop vectorises (a float-to-int cast would not on baseline x86-64).
    let scale = f32::from_bits((tm.to_bits().wrapping_sub(0x4B40_0000).wrapping_add(126)) << 23);
    if x < -86.98 { 0.0 } else { p * scale }
}

/// `sum_i e^(x_i - m)` over a slice: exponentials into a block buffer (a
/// loop the compiler vectorises), summed in 8 f32 lanes per block and in
/// f64 across blocks.
pub fn sum_exp(xs: &[f32], m: f32) -> f64 {
    const BLOCK: usize = 1024;
    let mut buf = [0.0f32; BLOCK];
    let mut total = 0.0f64;
    for block in xs.chunks(BLOCK) {
        let e = &mut buf[..block.len()];
        for (o, &x) in e.iter_mut().zip(block) {
            *o = exp(x - m);
        }
        total += lane_sum(e) as f64;
    }
    total
}

/// Sum of a slice in 8 independent f32 lanes (vectorisable).
pub fn lane_sum(xs: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut it = xs.chunks_exact(LANES);
    for c in &mut it {
        for j in 0..LANES {
            acc[j] += c[j];
        }
    }
    let mut s: f32 = it.remainder().iter().sum();
    for a in acc {
        s += a;
    }
    s
}

/// One pass over a row: returns `(max, bad)` where `max` ignores nothing
/// (it is `-inf` for an all `-inf` row) and `bad` is true when any value is
/// NaN or `+inf` (SPEC step 1).
// `!(x < inf)` is true exactly for NaN and +inf in one compare that
// vectorises; clippy's preferred `partial_cmp` form does not.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
pub fn max_and_check(xs: &[f32]) -> (f32, bool) {
    let mut m = [f32::NEG_INFINITY; LANES];
    let mut bad = [false; LANES];
    let mut it = xs.chunks_exact(LANES);
    for c in &mut it {
        for j in 0..LANES {
            let x = c[j];
            bad[j] |= !(x < f32::INFINITY);
            m[j] = if x > m[j] { x } else { m[j] };
        }
    }
    let mut mm = f32::NEG_INFINITY;
    let mut b = false;
    for &x in it.remainder() {
        b |= !(x < f32::INFINITY);
        mm = if x > mm { x } else { mm };
    }
    for j in 0..LANES {
        b |= bad[j];
        mm = if m[j] > mm { m[j] } else { mm };
    }
    (mm, b)
}

/// One pass for greedy rows: `(max, index of its first occurrence, bad)`,
/// `bad` as in [`max_and_check`]. Per-lane maxima and first indices, merged
/// at the end (lowest index among equal maxima; -0 and +0 are equal).
#[allow(clippy::neg_cmp_op_on_partial_ord)]
pub fn max_argmax_check(xs: &[f32]) -> (f32, usize, bool) {
    let mut m = [f32::NEG_INFINITY; LANES];
    let mut idx = [u32::MAX; LANES];
    let mut bad = [false; LANES];
    let mut it = xs.chunks_exact(LANES);
    let mut base = 0u32;
    for c in &mut it {
        for j in 0..LANES {
            let x = c[j];
            bad[j] |= !(x < f32::INFINITY);
            let take = x > m[j];
            m[j] = if take { x } else { m[j] };
            idx[j] = if take { base + j as u32 } else { idx[j] };
        }
        base += LANES as u32;
    }
    let (mut mm, mut mi, mut b) = (f32::NEG_INFINITY, u32::MAX, false);
    for j in 0..LANES {
        b |= bad[j];
        if m[j] > mm || (m[j] == mm && idx[j] < mi) {
            mm = m[j];
            mi = idx[j];
        }
    }
    for (k, &x) in it.remainder().iter().enumerate() {
        b |= !(x < f32::INFINITY);
        if x > mm {
            mm = x;
            mi = base + k as u32;
        }
    }
    if mi == u32::MAX {
        // All -inf (or empty): the first element, as first_index_of gives.
        mi = 0;
    }
    (mm, mi as usize, b)
}

/// Maximum of a slice without NaN (`-inf` when empty).
pub fn max(xs: &[f32]) -> f32 {
    max_and_check(xs).0
}

/// Index of the first element equal to `m` (the lowest-index argmax when
/// `m` is the maximum).
pub fn first_index_of(xs: &[f32], m: f32) -> Option<usize> {
    let mut base = 0;
    for c in xs.chunks(64) {
        let mut hit = false;
        for &x in c {
            hit |= x == m;
        }
        if hit {
            return c.iter().position(|&x| x == m).map(|p| base + p);
        }
        base += c.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks one argument against f64's exp: relative error under 1e-6
    /// for results of at least 2^-125, absolute error under 2^-125 below
    /// them, +inf where f32 overflows.
    fn check_exp(x: f32) -> f64 {
        let got = exp(x);
        let want = (x as f64).exp();
        if (want as f32).is_infinite() {
            assert_eq!(got, f32::INFINITY, "exp({x})");
            return 0.0;
        }
        let err = (got as f64 - want).abs();
        let tiny = 2f64.powi(-125);
        if want >= tiny {
            assert!(err / want < 1e-6, "exp({x}) = {got}, want {want}");
            err / want
        } else {
            assert!(got >= 0.0 && err < tiny, "exp({x}) = {got}, want {want}");
            0.0
        }
    }

    #[test]
    fn exp_accuracy_over_the_whole_f32_range() {
        let mut worst = 0.0f64;
        // Dense over the interesting range, including the overflow edge
        // (88.72) and the results below 2^-125 (x < -86.64).
        let mut x = -110.0f32;
        while x <= 95.0 {
            worst = worst.max(check_exp(x));
            x += 0.000_737;
        }
        // Every exponent of both signs, and neighbours of the edges.
        for bits in (0..0x7F80_0000u32).step_by(4099) {
            let v = f32::from_bits(bits);
            worst = worst.max(check_exp(v));
            worst = worst.max(check_exp(-v));
        }
        for edge in [
            88.722_83f32,
            88.722_84,
            88.73,
            -87.336_54,
            -103.972_08,
            -103.972_09,
            -104.0,
        ] {
            for d in -3i32..=3 {
                let v = f32::from_bits((edge.to_bits() as i32 + d) as u32);
                worst = worst.max(check_exp(v));
            }
        }
        assert!(worst < 1e-6, "worst relative error {worst}");
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(f32::MAX), f32::INFINITY);
        assert_eq!(exp(f32::MIN), 0.0);
        assert_eq!(
            exp(400.0),
            f32::INFINITY,
            "the value that broke sampling at z/T = 400"
        );
        assert!(exp(f32::NAN).is_nan());
        assert!((exp(0.0) - 1.0).abs() < 1e-7);
        // exp(-exp(-y)) (the Gumbel skip threshold) for y far below zero is 0,
        // never garbage.
        assert_eq!(exp(-exp(160.0)), 0.0);
        assert_eq!(exp(-exp(-160.0)), 1.0);
    }

    #[test]
    fn scans() {
        let xs = [1.0, 3.0, -2.0, 3.0, f32::NEG_INFINITY, 0.5, 2.0, 3.0, 1.0];
        assert_eq!(max_and_check(&xs), (3.0, false));
        assert_eq!(first_index_of(&xs, 3.0), Some(1));
        let mut v = vec![0.0f32; 100];
        v[77] = f32::NAN;
        assert!(max_and_check(&v).1);
        v[77] = f32::INFINITY;
        assert!(max_and_check(&v).1);
        assert_eq!(max_argmax_check(&xs), (3.0, 1, false));
        let mut w: Vec<f32> = (0..37).map(|i| (i % 5) as f32).collect();
        w[33] = 9.0;
        w[21] = 9.0;
        assert_eq!(max_argmax_check(&w), (9.0, 21, false));
        w[30] = f32::NAN;
        assert!(max_argmax_check(&w).2);
        let z = [-0.0f32, 0.0, -1.0];
        assert_eq!(max_argmax_check(&z).1, 0);
        let s = sum_exp(&[0.0, 0.0, f32::NEG_INFINITY], 0.0);
        assert!((s - 2.0).abs() < 1e-6);
    }
}
