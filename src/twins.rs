//! The host twins of the WGSL helpers that both backends must compute bit
//! for bit: the order-preserving f32 -> u32 key (radix selection, beam
//! ranking), the fdlibm `ln` behind every Gumbel value, and the f32
//! `ln(min_p)` the host hands the GPU. They sit at the bottom of the crate,
//! beside `params` and `rng`, so the CPU backend, the GPU passes and beam
//! search all depend on them and none on another's module.

/// Order-preserving map from f32 to u32: for non-NaN `a`, `b` (with
/// `-0.0 < +0.0`), `a < b` exactly when `key(a) < key(b)`. Negative floats
/// get every bit flipped, the others only the sign bit. NaNs map above
/// +inf (positive sign) or below -inf (negative sign).
pub fn f32_to_sortable_key(x: f32) -> u32 {
    let bits = x.to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// Inverse of [`f32_to_sortable_key`] (bit-exact, NaN payloads included).
pub fn sortable_key_to_f32(key: u32) -> f32 {
    if key >> 31 == 1 {
        f32::from_bits(key & 0x7FFF_FFFF)
    } else {
        f32::from_bits(!key)
    }
}

#[cfg(any(test, feature = "testing"))]
/// CPU twin of `shaders/common.wgsl`'s `ln_f32`: the natural log by
/// FreeBSD's `logf` algorithm (fdlibm), error < 1 ulp, same operations in
/// the same order as the WGSL. [`f32::ln`] (the platform libm) is usually
/// correctly rounded and so differs from this in the last bit for a few
/// percent of inputs; with this twin the CPU can reproduce the GPU's bits
/// (up to a GPU compiler's FMA contraction or approximate division).
pub fn ln_f32(x: f32) -> f32 {
    const LN2_HI: f32 = f32::from_bits(0x3f31_7180);
    const LN2_LO: f32 = f32::from_bits(0x3717_f7d1);
    const LG1: f32 = f32::from_bits(0x3f2a_aaaa);
    const LG2: f32 = f32::from_bits(0x3ecc_ce13);
    const LG3: f32 = f32::from_bits(0x3e91_e9ee);
    const LG4: f32 = f32::from_bits(0x3e78_9e26);
    let mut x = x;
    let mut ix = x.to_bits() as i32;
    let mut k = 0i32;
    if ix < 0x0080_0000 {
        if ix & 0x7FFF_FFFF == 0 {
            return f32::NEG_INFINITY;
        }
        if ix < 0 {
            return f32::NAN;
        }
        k = -25;
        x *= 33_554_432.0;
        ix = x.to_bits() as i32;
    }
    if ix >= 0x7F80_0000 {
        return x + x;
    }
    k += (ix >> 23) - 127;
    ix &= 0x007F_FFFF;
    let mut i = (ix + 0x4A_FB20) & 0x80_0000;
    x = f32::from_bits((ix | (i ^ 0x3F80_0000)) as u32);
    k += i >> 23;
    let f = x - 1.0;
    let dk = k as f32;
    if (0x007F_FFFF & (0x8000 + ix)) < 0xC000 {
        if f == 0.0 {
            if k == 0 {
                return 0.0;
            }
            return dk * LN2_HI + dk * LN2_LO;
        }
        let r = f * f * (0.5 - (1.0 / 3.0) * f);
        if k == 0 {
            return f - r;
        }
        return dk * LN2_HI - ((r - dk * LN2_LO) - f);
    }
    let s = f / (2.0 + f);
    let z = s * s;
    i = ix - 0x30_A3D0;
    let w = z * z;
    let j = 0x35_C288 - ix;
    let t1 = w * (LG2 + w * LG4);
    let t2 = z * (LG1 + w * LG3);
    i |= j;
    let r = t2 + t1;
    if i > 0 {
        let hfsq = 0.5 * f * f;
        if k == 0 {
            return f - (hfsq - s * (hfsq + r));
        }
        return dk * LN2_HI - ((hfsq - (s * (hfsq + r) + dk * LN2_LO)) - f);
    }
    if k == 0 {
        return f - s * (f - r);
    }
    dk * LN2_HI - ((s * (f - r) - dk * LN2_LO) - f)
}

/// `ln(min_p)` in f32: the host computes it once and the GPU receives the
/// same value, so both backends compare against the same threshold.
pub fn min_p_log(min_p: f32) -> f32 {
    min_p.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_key_orders_floats() {
        let xs = [
            f32::NEG_INFINITY,
            -3.0e38,
            -1.0,
            -f32::MIN_POSITIVE,
            -1.0e-45,
            -0.0,
            0.0,
            1.0e-45,
            f32::MIN_POSITIVE,
            1.0,
            3.0e38,
            f32::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(
                f32_to_sortable_key(w[0]) < f32_to_sortable_key(w[1]),
                "{} vs {}",
                w[0],
                w[1]
            );
        }
        for &x in &xs {
            assert_eq!(
                sortable_key_to_f32(f32_to_sortable_key(x)).to_bits(),
                x.to_bits()
            );
        }
        assert_eq!(f32_to_sortable_key(0.0), 0x8000_0000);
        assert_eq!(f32_to_sortable_key(-0.0), 0x7FFF_FFFF);
    }

    #[test]
    fn ln_twin_is_within_one_ulp() {
        let mut bits = 1u32;
        while bits < 0x7F80_0000 {
            let x = f32::from_bits(bits);
            let exact = (x as f64).ln();
            let got = ln_f32(x) as f64;
            let e32 = exact as f32;
            let ulp = (f32::from_bits(e32.abs().to_bits() + 1) - e32.abs()) as f64;
            assert!((got - exact).abs() < ulp, "ln({x:e}): {got:e} vs {exact:e}");
            bits += 997;
        }
        assert_eq!(ln_f32(1.0), 0.0);
        assert_eq!(ln_f32(0.0), f32::NEG_INFINITY);
        assert_eq!(ln_f32(-0.0), f32::NEG_INFINITY);
        assert!(ln_f32(-1.0).is_nan());
        assert_eq!(ln_f32(f32::INFINITY), f32::INFINITY);
    }
}
