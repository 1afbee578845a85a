// common.wgsl: helpers shared by every wgsample pass.
//
// Prepended (string concatenation on the Rust side) to each pass's shader, so
// it holds only functions and constants: no bindings, no entry points.
//
// - Philox4x32-10, the twin of src/rng.rs (SPEC.md "Random numbers").
//   WGSL has no 64-bit integers, so the high half of the 32x32-bit product is
//   built from 16-bit halves.
// - word -> uniform -> Gumbel, exactly SPEC.md's formulas, computed in f32.
//   The natural log used there is `ln_f32` below, a port of FreeBSD's
//   `logf` (error < 1 ulp everywhere), not the `log` builtin: WGSL only
//   promises the builtin an *absolute* error of 2^-21 on [0.5, 2], and real
//   GPUs use that latitude (NVIDIA's lg2.approx). For u close to 1, -ln(u)
//   is tiny, so an absolute error there becomes a large relative error of
//   g = -ln(-ln(u)), which is exactly where the Gumbel maximum lives. With
//   `ln_f32` the GPU agrees with the CPU's `f32::ln` to an ulp or two on
//   every vendor, which is what keeps sampled tokens backend-independent.
// - Bit-level float classification (NaN, +inf, -inf) that does not depend on
//   float compares, which some GPU compilers fold under fast-math
//   assumptions.
// - An order-preserving f32 -> u32 key (for radix selection).

// ---------------------------------------------------------------- Philox

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// Full 32x32 -> 64-bit product of a and b: (high word, low word).
fn mulhilo32(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xFFFFu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xFFFFu;
    let b_hi = b >> 16u;
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let hh = a_hi * b_hi;
    // Bits 16..47 of the product, split: this sum is < 3 * 2^16, no wrap.
    let mid = (ll >> 16u) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
    let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    let lo = a * b; // u32 multiplication wraps (mod 2^32) in WGSL
    return vec2<u32>(hi, lo);
}

// Philox4x32 with 10 rounds (Random123's philox4x32_R(10, ctr, key)).
fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        if (round > 0u) {
            k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
        }
        let p0 = mulhilo32(PHILOX_M0, c.x);
        let p1 = mulhilo32(PHILOX_M1, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    }
    return c;
}

// The Philox key for a seed given as (low 32 bits, high 32 bits): the seed
// words themselves.
fn philox_key(seed_lo: u32, seed_hi: u32) -> vec2<u32> {
    return vec2<u32>(seed_lo, seed_hi);
}

// The counter of the block holding token i at step s = (step_lo, step_hi):
// (i >> 2, s low, s high, 0).
fn philox_counter(i: u32, step_lo: u32, step_hi: u32) -> vec4<u32> {
    return vec4<u32>(i >> 2u, step_lo, step_hi, 0u);
}

// The random word of token i: lane i & 3 of its block.
fn philox_word(key: vec2<u32>, i: u32, step_lo: u32, step_hi: u32) -> u32 {
    let block = philox4x32_10(philox_counter(i, step_lo, step_hi), key);
    return block[i & 3u];
}

// ---------------------------------------------------------------- floats

const F32_POS_INF_BITS: u32 = 0x7F800000u;
const F32_NEG_INF_BITS: u32 = 0xFF800000u;

// True when the bits encode a NaN (any sign, any payload).
fn bits_is_nan(bits: u32) -> bool {
    return (bits & 0x7FFFFFFFu) > F32_POS_INF_BITS;
}

// True for NaN or +inf: the values that make a row invalid (SPEC.md step 1).
fn bits_is_invalid_logit(bits: u32) -> bool {
    return bits_is_nan(bits) || bits == F32_POS_INF_BITS;
}

// True for -inf, the legal "masked" value.
fn bits_is_neg_inf(bits: u32) -> bool {
    return bits == F32_NEG_INF_BITS;
}

// The f32 with the given bits. A user function call is never a WGSL
// const-expression, so this can make NaN and infinities: WGSL makes a
// const-expression that evaluates to one (`bitcast<f32>(0x7FC00000u)`) a
// shader-creation error, which Tint (browsers) enforces and naga does not.
fn f32_from_bits(bits: u32) -> f32 {
    return bitcast<f32>(bits);
}

// A quiet NaN.
fn f32_nan() -> f32 {
    return f32_from_bits(0x7FC00000u);
}

fn f32_pos_inf() -> f32 {
    return f32_from_bits(F32_POS_INF_BITS);
}

fn f32_neg_inf() -> f32 {
    return f32_from_bits(F32_NEG_INF_BITS);
}

// Order-preserving map f32 -> u32: a < b (as floats, -0 < +0) exactly when
// key(a) < key(b). Negative floats get every bit flipped, non-negative ones
// only the sign bit. NaNs land beyond +-inf (callers filter them first).
fn f32_to_sortable_key(x: f32) -> u32 {
    let bits = bitcast<u32>(x);
    let mask = select(0x80000000u, 0xFFFFFFFFu, (bits >> 31u) == 1u);
    return bits ^ mask;
}

// Inverse of f32_to_sortable_key.
fn sortable_key_to_f32(key: u32) -> f32 {
    let mask = select(0xFFFFFFFFu, 0x80000000u, (key >> 31u) == 1u);
    return bitcast<f32>(key ^ mask);
}

// ---------------------------------------------------------------- ln

// Natural log in f32 with < 1 ulp error: FreeBSD's e_logf.c (from fdlibm),
// integer steps kept bit for bit. ln(+-0) = -inf, ln(x < 0) = NaN,
// ln(+inf) = +inf, ln(NaN) = NaN.
fn ln_f32(x_in: f32) -> f32 {
    let ln2_hi = 0.6931381225585938;     // 0x3f317180
    let ln2_lo = 9.05800061445916e-06;   // 0x3717f7d1
    let lg1 = 0.6666666269302368;        // 0x3f2aaaaa
    let lg2 = 0.40000972151756287;       // 0x3eccce13
    let lg3 = 0.2849878668785095;        // 0x3e91e9ee
    let lg4 = 0.24279078841209412;       // 0x3e789e26

    var x = x_in;
    var ix = bitcast<i32>(x);
    var k = 0i;
    if (ix < 0x00800000i) {
        if ((ix & 0x7FFFFFFFi) == 0i) {
            return f32_neg_inf();
        }
        if (ix < 0i) {
            return f32_nan();
        }
        // Subnormal: scale up by 2^25.
        k = -25i;
        x = x * 33554432.0;
        ix = bitcast<i32>(x);
    }
    if (ix >= 0x7F800000i) {
        return x + x; // +inf or NaN
    }
    k += (ix >> 23u) - 127i;
    ix = ix & 0x007FFFFFi;
    var i = (ix + 0x4AFB20i) & 0x800000i;
    x = bitcast<f32>(ix | (i ^ 0x3F800000i)); // normalise x or x/2
    k += i >> 23u;
    let f = x - 1.0;
    let dk = f32(k);
    if ((0x007FFFFFi & (0x8000i + ix)) < 0xC000i) {
        // -2^-9 <= f < 2^-9
        if (f == 0.0) {
            if (k == 0i) {
                return 0.0;
            }
            return dk * ln2_hi + dk * ln2_lo;
        }
        let r = f * f * (0.5 - 0.3333333432674408 * f);
        if (k == 0i) {
            return f - r;
        }
        return dk * ln2_hi - ((r - dk * ln2_lo) - f);
    }
    let s = f / (2.0 + f);
    let z = s * s;
    i = ix - 0x30A3D0i;
    let w = z * z;
    let j = 0x35C288i - ix;
    let t1 = w * (lg2 + w * lg4);
    let t2 = z * (lg1 + w * lg3);
    i = i | j;
    let r = t2 + t1;
    if (i > 0i) {
        let hfsq = 0.5 * f * f;
        if (k == 0i) {
            return f - (hfsq - s * (hfsq + r));
        }
        return dk * ln2_hi - ((hfsq - (s * (hfsq + r) + dk * ln2_lo)) - f);
    }
    if (k == 0i) {
        return f - s * (f - r);
    }
    return dk * ln2_hi - ((s * (f - r) - dk * ln2_lo) - f);
}

// ---------------------------------------------------------------- Gumbel

// u = (f32(word >> 9) + 0.5) * 2^-23, in f32, as SPEC.md writes it: exact,
// strictly inside (0, 1) (as on the CPU; see src/rng.rs).
fn uniform_from_word(word: u32) -> f32 {
    return (f32(word >> 9u) + 0.5) * 1.1920928955078125e-7;
}

// g = -ln(-ln(u)) in f32 (Gumbel(0, 1)), always finite.
fn gumbel_from_uniform(u: f32) -> f32 {
    return -ln_f32(-ln_f32(u));
}

// The Gumbel value of token i at step (step_lo, step_hi) under `key`.
fn gumbel_for(key: vec2<u32>, i: u32, step_lo: u32, step_hi: u32) -> f32 {
    return gumbel_from_uniform(uniform_from_word(philox_word(key, i, step_lo, step_hi)));
}
