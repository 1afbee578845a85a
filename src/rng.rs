//! Philox4x32-10, the counter-based generator of SPEC.md, on the CPU.
//!
//! This is the twin of `shaders/common.wgsl`: both must give bit-identical
//! words, so that a row's token depends only on its own logits, params, seed
//! and step, never on the backend or the batch. A counter-based generator is
//! used (rather than a stateful one) because every token index can draw its
//! own number in parallel without any state to carry between threads.

/// Philox multiplier for lane 0.
const M0: u32 = 0xD251_1F53;
/// Philox multiplier for lane 2.
const M1: u32 = 0xCD9E_8D57;
/// Weyl key increment for key word 0.
const W0: u32 = 0x9E37_79B9;
/// Weyl key increment for key word 1.
const W1: u32 = 0xBB67_AE85;

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = (a as u64) * (b as u64);
    ((p >> 32) as u32, p as u32)
}

/// Philox4x32 with 10 rounds: returns the four output words for `counter`
/// under `key` (Random123's `philox4x32_R(10, ctr, key)`).
#[inline]
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// The Philox key for a row seed: `(seed low 32 bits, seed high 32 bits)`.
#[inline]
pub fn key_for_seed(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// The Philox counter for the block holding token `i` at step `s`:
/// `(i >> 2, s low 32 bits, s high 32 bits, 0)`.
#[inline]
pub fn counter_for(i: u32, step: u64) -> [u32; 4] {
    [i >> 2, step as u32, (step >> 32) as u32, 0]
}

/// The random word for token `i` at `step` under `seed`: lane `i & 3` of
/// the Philox block of [`counter_for`].
#[inline]
pub fn word(seed: u64, step: u64, i: u32) -> u32 {
    philox4x32_10(counter_for(i, step), key_for_seed(seed))[(i & 3) as usize]
}

/// `u = ((word >> 9) as f32 + 0.5) * 2^-23`, computed in f32 as SPEC.md
/// writes it: the 23-bit integer plus one half needs 24 bits, so every step
/// is exact and `u` lies strictly inside (0, 1) (smallest `2^-24`, largest
/// `1 - 2^-24`); `g` is therefore always finite.
#[inline]
pub fn uniform_from_word(word: u32) -> f32 {
    ((word >> 9) as f32 + 0.5) * (1.0 / 8_388_608.0)
}

/// `g = -ln(-ln(u))` in f32: the Gumbel(0, 1) value of a uniform.
#[inline]
pub fn gumbel_from_uniform(u: f32) -> f32 {
    -(-u.ln()).ln()
}

/// The acceptance uniform of speculative decoding (SPEC.md "Speculative
/// decoding") for the draft token verified at `step`: lane 0 of the Philox
/// block with key (seed) and counter `(0, step low, step high, 1)`, made a
/// uniform by [`uniform_from_word`]. The counter's last word (1) keeps it
/// apart from every Gumbel word (whose last word is 0).
#[inline]
pub fn accept_uniform(seed: u64, step: u64) -> f32 {
    let c = [0, step as u32, (step >> 32) as u32, 1];
    uniform_from_word(philox4x32_10(c, key_for_seed(seed))[0])
}

/// The Gumbel value `g_i` for token `i` at `step` under `seed`.
#[inline]
pub fn gumbel(seed: u64, step: u64, i: u32) -> f32 {
    gumbel_from_uniform(uniform_from_word(word(seed, step, i)))
}

/// The random words of 64 consecutive tokens `64 b .. 64 b + 64` at
/// `step` (Philox blocks `16 b .. 16 b + 16`), computed 16 blocks side by
/// side so the compiler vectorises the rounds. Equal to [`word`] for each
/// token.
#[inline]
pub fn words_64(first_block: u32, step: u64, key: [u32; 2]) -> [u32; 64] {
    const N: usize = 16;
    let mut c0 = [0u32; N];
    let mut c1 = [step as u32; N];
    let mut c2 = [(step >> 32) as u32; N];
    let mut c3 = [0u32; N];
    for (j, c) in c0.iter_mut().enumerate() {
        *c = first_block.wrapping_add(j as u32);
    }
    let (mut k0, mut k1) = (key[0], key[1]);
    for round in 0..10 {
        if round > 0 {
            k0 = k0.wrapping_add(W0);
            k1 = k1.wrapping_add(W1);
        }
        for j in 0..N {
            let p0 = (M0 as u64) * (c0[j] as u64);
            let p1 = (M1 as u64) * (c2[j] as u64);
            let n0 = ((p1 >> 32) as u32) ^ c1[j] ^ k0;
            let n2 = ((p0 >> 32) as u32) ^ c3[j] ^ k1;
            c1[j] = p1 as u32;
            c3[j] = p0 as u32;
            c0[j] = n0;
            c2[j] = n2;
        }
    }
    let mut out = [0u32; 64];
    for j in 0..N {
        out[4 * j] = c0[j];
        out[4 * j + 1] = c1[j];
        out[4 * j + 2] = c2[j];
        out[4 * j + 3] = c3[j];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(
            philox4x32_10([0, 0, 0, 0], [0, 0]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn uniform_range() {
        assert_eq!(uniform_from_word(0), 0.5 / 8_388_608.0);
        assert!(uniform_from_word(0x7fff_ffff) < 1.0);
        // The top word gives 1 - 2^-24 exactly, never 1.0 (SPEC.md).
        assert_eq!(uniform_from_word(u32::MAX), 1.0 - 1.0 / 16_777_216.0);
        assert!(gumbel_from_uniform(uniform_from_word(u32::MAX)).is_finite());
        assert!(gumbel_from_uniform(uniform_from_word(0)).is_finite());
        // Exact: the f32 result equals the f64 formula for every shift.
        for w in [0u32, 1 << 9, 12345 << 9, u32::MAX - (1 << 9), u32::MAX] {
            let exact = ((w >> 9) as f64 + 0.5) / 8_388_608.0;
            assert_eq!(uniform_from_word(w) as f64, exact);
        }
        let g = gumbel_from_uniform(0.5);
        assert!((g - 0.366_512_9).abs() < 1e-6, "{g}");
    }

    #[test]
    fn words_64_equal_scalar_words() {
        for (seed, step, b) in [
            (0u64, 0u64, 0u32),
            (u64::MAX, u64::MAX, 7),
            (0x1234_5678_9abc, 1 << 33, 1000),
        ] {
            let w = words_64(b * 16, step, key_for_seed(seed));
            for t in 0..64u32 {
                assert_eq!(w[t as usize], word(seed, step, b * 64 + t), "token {t}");
            }
        }
    }

    #[test]
    fn counter_layout() {
        let seed = 0x1234_5678_9abc_def0u64;
        let w = philox4x32_10([5, 7, 0, 0], [0x9abc_def0, 0x1234_5678]);
        for lane in 0..4 {
            assert_eq!(word(seed, 7, 20 + lane), w[lane as usize]);
        }
    }
}
