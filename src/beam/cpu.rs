//! The CPU beam step: the twin of the GPU passes (see the module docs of
//! [`crate::beam`] for the formula and the tie rule).
//!
//! Per row one vectorised pass finds the max (and rejects NaN / `+inf`),
//! a second sums `exp(z - max)` ([`fastmath::sum_exp`], f64 across
//! blocks); then one more pass scores every candidate and keeps it only
//! if it beats the `K`-th best seen so far. Kept candidates go into a
//! small buffer (`4 K + 256` entries); when it fills, a linear-time
//! selection cuts it back to the best `K` and raises the threshold. So a
//! group costs O(b V) plus O(K log K) for the final sort, with no
//! vocabulary-sized allocation.

use super::Candidate;
use crate::cpu::fastmath;
use crate::twins::{f32_to_sortable_key, sortable_key_to_f32};
use crate::{Error, Result};

/// The order-preserving u32 key of a candidate score with `-0` mapped to
/// `+0` (so the two tie, as on the GPU).
#[inline(always)]
pub(crate) fn okey(x: f32) -> u32 {
    f32_to_sortable_key(if x == 0.0 { 0.0 } else { x })
}

/// Validates a step's shapes; returns the number of groups.
pub(crate) fn check_step(
    logits_len: Option<usize>,
    beam_scores: &[f32],
    beams: usize,
    vocab: usize,
    k: usize,
) -> Result<usize> {
    if beams == 0 || vocab == 0 {
        return Err(Error::InvalidArgument(format!(
            "beams ({beams}) and vocab ({vocab}) must be at least 1"
        )));
    }
    let cands = beams
        .checked_mul(vocab)
        .filter(|&c| c as u64 <= u64::from(u32::MAX))
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{beams} beams x vocab {vocab} candidates do not fit a u32 index"
            ))
        })?;
    if beam_scores.is_empty() || !beam_scores.len().is_multiple_of(beams) {
        return Err(Error::InvalidArgument(format!(
            "{} beam scores do not form whole groups of {beams} beams",
            beam_scores.len()
        )));
    }
    let groups = beam_scores.len() / beams;
    if k == 0 || k > cands {
        return Err(Error::InvalidArgument(format!(
            "k = {k} candidates per group must be between 1 and beams x vocab ({cands})"
        )));
    }
    if let Some(len) = logits_len
        && Some(len) != beam_scores.len().checked_mul(vocab)
    {
        return Err(Error::InvalidArgument(format!(
            "{len} logits do not form [{} rows, vocab {vocab}]",
            beam_scores.len()
        )));
    }
    if let Some((r, s)) = beam_scores
        .iter()
        .enumerate()
        .find(|(_, s)| s.is_nan() || **s == f32::INFINITY)
    {
        return Err(Error::InvalidArgument(format!(
            "beam score of row {r} (group {}, beam {}) is {s}: it must be finite or -inf",
            r / beams,
            r % beams
        )));
    }
    Ok(groups)
}

/// The beam step on the CPU.
///
/// `logits` are `[G * beams, vocab]` processed logits (row `g * beams + j`
/// = beam `j` of group `g`), `beam_scores` the `G * beams` running scores.
/// Returns `G * k` candidates, group by group, each group's best first:
/// the best `k` of its `beams * vocab` candidates
/// `beam_score + log_softmax(z)` (ties: lower `beam * vocab + token`
/// first). A row that is all `-inf` gives `-inf` candidates.
///
/// Errors: shapes that do not fit, `k` outside `1..=beams * vocab`, a beam
/// score that is NaN or `+inf`, or a logits row holding NaN or `+inf`
/// ([`Error::InvalidArgument`] naming the row, its group and beam).
pub fn cpu_step(
    logits: &[f32],
    beam_scores: &[f32],
    beams: usize,
    vocab: usize,
    k: usize,
) -> Result<Vec<Candidate>> {
    let groups = check_step(Some(logits.len()), beam_scores, beams, vocab, k)?;
    let cap = 4 * k + 256;
    let mut buf: Vec<(u32, u32)> = Vec::with_capacity(cap);
    let mut out = Vec::with_capacity(groups * k);
    let better = |a: &(u32, u32), b: &(u32, u32)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
    for g in 0..groups {
        buf.clear();
        // Keys at or below `thr` cannot enter the top k: once set, it is
        // the key of the k-th best so far, and later candidates have
        // larger flat indices, so an equal key loses the tie.
        let mut thr: Option<u32> = None;
        for j in 0..beams {
            let r = g * beams + j;
            let row = &logits[r * vocab..(r + 1) * vocab];
            let (m, bad) = fastmath::max_and_check(row);
            if bad {
                return Err(Error::InvalidArgument(format!(
                    "logits row {r} (group {g}, beam {j}) holds NaN or +inf"
                )));
            }
            let bs = beam_scores[r];
            let flat0 = (j * vocab) as u32;
            if m == f32::NEG_INFINITY {
                // Every candidate is -inf: all tie, so the lowest indices
                // come first and at most k of them can matter.
                let key = okey(f32::NEG_INFINITY);
                if thr.is_some_and(|t| key <= t) {
                    continue;
                }
                for t in 0..vocab.min(k) {
                    buf.push((key, flat0 + t as u32));
                }
                prune(&mut buf, k, &mut thr, &better);
                continue;
            }
            let ln_s = fastmath::sum_exp(row, m).ln() as f32;
            let mut zlim = z_limit(thr, bs, m, ln_s);
            for (t, &z) in row.iter().enumerate() {
                // Cheap pre-test: most logits cannot reach the threshold.
                if z < zlim {
                    continue;
                }
                let key = okey(bs + ((z - m) - ln_s));
                if let Some(tk) = thr
                    && key <= tk
                {
                    continue;
                }
                buf.push((key, flat0 + t as u32));
                if buf.len() >= cap {
                    prune(&mut buf, k, &mut thr, &better);
                    zlim = z_limit(thr, bs, m, ln_s);
                }
            }
        }
        buf.sort_unstable_by(better);
        buf.truncate(k);
        out.extend(buf.iter().map(|&(key, flat)| Candidate {
            score: sortable_key_to_f32(key),
            beam: flat / vocab as u32,
            token: flat % vocab as u32,
        }));
    }
    Ok(out)
}

/// A logit `z < z_limit(..)` of a row with beam score `bs`, max `m` and
/// `ln_s = ln(sum exp(z - m))` scores at or below the threshold `thr`, so
/// it can be skipped without computing its score: the exact bound
/// `thr - bs + m + ln_s` (in f64) lowered by 8 f32 ulps of the magnitudes
/// involved, more than the three roundings of `bs + ((z - m) - ln_s)` can
/// move a score near the bound. `-inf` (nothing skipped) without a finite
/// threshold and beam score.
fn z_limit(thr: Option<u32>, bs: f32, m: f32, ln_s: f32) -> f32 {
    let Some(tk) = thr else {
        return f32::NEG_INFINITY;
    };
    let ts = sortable_key_to_f32(tk);
    if !ts.is_finite() || !bs.is_finite() {
        return f32::NEG_INFINITY;
    }
    let (ts, bs, m, ln_s) = (f64::from(ts), f64::from(bs), f64::from(m), f64::from(ln_s));
    let mag = ts.abs() + bs.abs() + m.abs() + ln_s.abs() + 1.0;
    (ts - bs + m + ln_s - 8.0 * f64::from(f32::EPSILON) * mag) as f32
}

/// Cuts `buf` to its best `k` entries (linear-time selection) and, once it
/// holds `k`, sets `thr` to the key of the `k`-th best.
fn prune(
    buf: &mut Vec<(u32, u32)>,
    k: usize,
    thr: &mut Option<u32>,
    better: &impl Fn(&(u32, u32), &(u32, u32)) -> std::cmp::Ordering,
) {
    if buf.len() > k {
        buf.select_nth_unstable_by(k - 1, better);
        buf.truncate(k);
    }
    if buf.len() == k {
        *thr = buf.iter().map(|e| e.0).min();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(logits: &[f32], scores: &[f32], b: usize, v: usize, k: usize) -> Vec<Candidate> {
        let mut out = Vec::new();
        for g in 0..scores.len() / b {
            let mut all: Vec<(f32, u32)> = Vec::new();
            for j in 0..b {
                let r = g * b + j;
                let row = &logits[r * v..(r + 1) * v];
                let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let s: f64 = row.iter().map(|&z| ((z - m) as f64).exp()).sum();
                for (t, &z) in row.iter().enumerate() {
                    let c = if m == f32::NEG_INFINITY {
                        f32::NEG_INFINITY
                    } else {
                        scores[r] + ((z - m) - s.ln() as f32)
                    };
                    all.push((c, (j * v + t) as u32));
                }
            }
            all.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
            out.extend(all[..k].iter().map(|&(s, f)| Candidate {
                score: s,
                beam: f / v as u32,
                token: f % v as u32,
            }));
        }
        out
    }

    #[test]
    fn matches_naive_sort_with_ties_and_pruning() {
        // Values on a coarse grid: many exact ties, in and across rows.
        let mut x = 12345u32;
        let mut next = || {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) % 7
        };
        for &(b, v, k) in &[(1, 1, 1), (2, 3, 4), (3, 700, 6), (4, 300, 1200)] {
            let g = 2;
            let logits: Vec<f32> = (0..g * b * v)
                .map(|_| match next() {
                    0 => f32::NEG_INFINITY,
                    n => n as f32 * 0.5,
                })
                .collect();
            let scores: Vec<f32> = (0..g * b).map(|i| [0.0, -1.0, 0.0, -1e9][i % 4]).collect();
            let got = cpu_step(&logits, &scores, b, v, k).unwrap();
            let want = naive(&logits, &scores, b, v, k);
            assert_eq!(got.len(), want.len());
            for (a, w) in got.iter().zip(&want) {
                assert_eq!((a.beam, a.token), (w.beam, w.token), "b {b} v {v} k {k}");
                assert!(
                    a.score == w.score
                        || (a.score - w.score).abs() <= 1e-5 * w.score.abs().max(1.0),
                    "{a:?} vs {w:?}"
                );
            }
        }
    }

    #[test]
    fn all_neg_inf_row_and_errors() {
        let l = [f32::NEG_INFINITY; 6];
        let c = cpu_step(&l, &[0.0, 0.0], 2, 3, 6).unwrap();
        assert!(c.iter().all(|c| c.score == f32::NEG_INFINITY));
        let order: Vec<(u32, u32)> = c.iter().map(|c| (c.beam, c.token)).collect();
        assert_eq!(order, [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]);
        let mut l = [0.0f32; 6];
        l[4] = f32::NAN;
        let e = cpu_step(&l, &[0.0, 0.0], 2, 3, 2).unwrap_err().to_string();
        assert!(e.contains("row 1"), "{e}");
        assert!(cpu_step(&[0.0; 6], &[0.0, 0.0], 2, 3, 7).is_err());
        assert!(cpu_step(&[0.0; 6], &[0.0, f32::NAN], 2, 3, 2).is_err());
        assert!(cpu_step(&[0.0; 5], &[0.0, 0.0], 2, 3, 2).is_err());
        assert!(cpu_step(&[0.0; 6], &[0.0, 0.0, 0.0], 2, 3, 2).is_err());
    }
}
