//! The chi-square goodness-of-fit test every statistical test file uses:
//! one implementation, compiled into both `support` and `oracle` (the
//! latter includes this file by path, since some test binaries have only
//! one of the two modules).
#![allow(dead_code)]

/// Wilson–Hilferty approximation of the chi-square quantile with `df`
/// degrees of freedom at the standard-normal quantile `z`
/// (z = 3.090232 for 0.999, 3.719016 for 1 - 1e-4, 4.264891 for 1 - 1e-5).
pub fn chi2_quantile(df: f64, z: f64) -> f64 {
    let a = 2.0 / (9.0 * df);
    df * (1.0 - a + z * a.sqrt()).powi(3)
}

/// Chi-square goodness of fit of `observed` counts against `expected`
/// counts, merging the smallest bins until each merged bin expects >= 5.
/// Returns (statistic, degrees of freedom). Bins that expect 0 are left
/// out, and an observation in one makes the statistic infinite.
pub fn chi2_merged(observed: &[u64], expected: &[f64]) -> (f64, usize) {
    if observed
        .iter()
        .zip(expected)
        .any(|(&o, &e)| e == 0.0 && o > 0)
    {
        return (f64::INFINITY, 1);
    }
    let mut bins: Vec<(f64, f64)> = expected
        .iter()
        .zip(observed)
        .filter(|(e, _)| **e > 0.0)
        .map(|(&e, &o)| (e, o as f64))
        .collect();
    bins.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    let mut merged: Vec<(f64, f64)> = Vec::new();
    let mut cur = (0.0, 0.0);
    for (e, o) in bins {
        cur.0 += e;
        cur.1 += o;
        if cur.0 >= 5.0 {
            merged.push(cur);
            cur = (0.0, 0.0);
        }
    }
    if cur.0 > 0.0 || cur.1 > 0.0 {
        match merged.last_mut() {
            Some(last) => {
                last.0 += cur.0;
                last.1 += cur.1;
            }
            None => merged.push(cur),
        }
    }
    let stat = merged.iter().map(|&(e, o)| (o - e) * (o - e) / e).sum();
    (stat, merged.len().saturating_sub(1))
}
