//! One row through SPEC.md steps 1 to 12, written for speed.
//!
//! Every filter of steps 7-9 keeps the tokens whose processed logit `z_i`
//! is at or above some value, so the row is carried as a dense `z` plus one
//! threshold `theta` (and, once it is small, an explicit candidate list).
//! Work is sparse where the operation is sparse (bias, penalties, banned and
//! EOS tokens touch only their tokens), the vocabulary is copied only when
//! something actually changes it, top-k is a single scan with a rising
//! threshold, top-p a bucketed selection on mass, and the Gumbel keys are
//! computed only for survivors; no step sorts the vocabulary.
//!
//! Each SPEC step is one function named after it (`check_input`,
//! `apply_masks`, `apply_bias`, `apply_penalties`, `greedy`,
//! `temperature_overflow`, `scale_temperature`, `min_p`, `top_k`, `top_p`,
//! `gumbel_argmax`, `raw_logprob`); `top_k_fused` is the fast path that
//! runs steps 6-9 together for unprocessed rows with top-k. `filter` only
//! decides which steps a row needs and where its logits live (the input
//! or one scratch copy). The crate docs map each step to its GPU pass.

use super::fastmath;
use crate::twins::min_p_log;
use crate::{
    NO_TOKEN, RowOutput, RowState, SamplingParams, Status, TokenLogprob, TopLogprobs, rng,
};

/// Reusable per-row-worker buffers: nothing vocabulary-sized is allocated
/// per call once these have grown.
#[derive(Debug, Default)]
pub(crate) struct Work {
    /// Processed logits (steps 2-6) when they differ from the input.
    z: Vec<f32>,
    /// Candidate (logit, token) pairs for top-k / top-p / distributions.
    cand: Vec<(f32, u32)>,
    /// `sum exp(raw - raw_max)` when top-p already computed it (unprocessed,
    /// unscaled rows), so the logprob does not sum again.
    raw_total: Option<f64>,
}

/// What steps 1-9 leave of a row.
enum Filtered {
    /// Steps 2-4 left nothing.
    NoCandidates,
    /// Greedy token (step 5).
    Greedy(u32),
    /// Survivors are the tokens with `z_i >= theta` (and finite); `max` is
    /// the largest processed logit; when `listed` is true, `cand` holds
    /// exactly the survivors.
    Kept { theta: f32, max: f32, listed: bool },
}

/// Largest finite f32 below which nothing is a candidate: `-inf` logits
/// never survive a filter.
const FLOOR: f32 = f32::MIN;

/// Runs steps 2-9 (step 1 is the caller's). Returns the filter result and
/// the processed logits to use for step 10 (either `raw` or the scratch
/// copy). Each SPEC step is one named function below, called in SPEC
/// order; this function only decides which of them a row needs and where
/// its logits live.
#[allow(clippy::too_many_arguments)]
fn filter<'a>(
    raw: &'a [f32],
    raw_max: f32,
    raw_argmax: Option<usize>,
    p: &SamplingParams,
    st: &RowState,
    z_buf: &'a mut Vec<f32>,
    cand: &mut Vec<(f32, u32)>,
    raw_total: &mut Option<f64>,
) -> (Filtered, &'a [f32]) {
    *raw_total = None;
    let v = raw.len();
    let eos_active = st.generated_len() < p.min_new_tokens && !p.eos_token_ids.is_empty();
    let pen_active =
        p.penalties_active() && (!st.prompt_tokens().is_empty() || st.generated_len() > 0);
    let modified = p.allowed_tokens.is_some()
        || !p.banned_tokens.is_empty()
        || eos_active
        || !p.logit_bias.is_empty()
        || pen_active;
    let scaled = !p.is_greedy() && p.temperature != 1.0;

    let mut zmax = raw_max;
    if modified {
        // Steps 2-4 write into a copy of the row; the input stays as it is.
        z_buf.clear();
        z_buf.extend_from_slice(raw);
        let z = &mut z_buf[..];
        apply_masks(z, p, eos_active);
        apply_bias(z, p);
        if pen_active {
            apply_penalties(z, p, st);
        }
        zmax = fastmath::max(z);
    }
    if zmax == f32::NEG_INFINITY {
        return (Filtered::NoCandidates, raw);
    }
    let t = if scaled { p.temperature } else { 1.0 };
    let early = {
        let zsrc: &[f32] = if modified { &z_buf[..] } else { raw };
        if p.is_greedy() {
            Some(greedy(zsrc, zmax, raw_argmax, modified))
        } else {
            temperature_overflow(zsrc, zmax, t)
        }
    };
    if let Some(tok) = early {
        let zsrc: &'a [f32] = if modified { &z_buf[..] } else { raw };
        return (Filtered::Greedy(tok), zsrc);
    }
    if scaled
        && !modified
        && p.top_k_active(v)
        && let Some(f) = top_k_fused(raw, zmax, p, cand)
    {
        return (f, raw);
    }
    if scaled {
        zmax = scale_temperature(raw, z_buf, modified, p.temperature, zmax);
    }
    let z: &[f32] = if modified || scaled { &z_buf[..] } else { raw };
    let mut theta = FLOOR;
    if p.min_p > 0.0 {
        theta = min_p(zmax, p.min_p);
    }
    let mut listed = false;
    if p.top_k_active(v) {
        listed = top_k(z, theta, p.top_k as usize, false, cand, &mut theta);
    }
    if p.top_p < 1.0 {
        let total = if listed {
            cand_mass(cand, zmax)
        } else {
            let total = collect_top_p_candidates(z, theta, zmax, p.top_p, cand);
            if !modified && !scaled && theta <= FLOOR {
                *raw_total = Some(total);
            }
            total
        };
        theta = top_p(cand, zmax, p.top_p, total, theta);
        listed = true;
    }
    (
        Filtered::Kept {
            theta,
            max: zmax,
            listed,
        },
        z,
    )
}

/// SPEC step 2, masks: every token outside `allowed_tokens`, every banned
/// token and, while `eos_active` (fewer than `min_new_tokens` generated),
/// every EOS id gets `-inf`.
fn apply_masks(z: &mut [f32], p: &SamplingParams, eos_active: bool) {
    if let Some(mask) = &p.allowed_tokens {
        for (w, chunk) in mask.iter().zip(z.chunks_mut(32)) {
            if *w == u32::MAX {
                continue;
            }
            for (b, x) in chunk.iter_mut().enumerate() {
                if (w >> b) & 1 == 0 {
                    *x = f32::NEG_INFINITY;
                }
            }
        }
    }
    for &t in &p.banned_tokens {
        z[t as usize] = f32::NEG_INFINITY;
    }
    if eos_active {
        for &t in &p.eos_token_ids {
            z[t as usize] = f32::NEG_INFINITY;
        }
    }
}

/// SPEC step 3, logit bias: `z_t += bias_t` for each listed token (after the
/// masks, so a masked token stays at `-inf`).
fn apply_bias(z: &mut [f32], p: &SamplingParams) {
    for &(t, b) in &p.logit_bias {
        z[t as usize] += b;
    }
}

/// SPEC step 4, penalties: the repetition penalty once per token of
/// prompt ∪ output (`z / r` when `z > 0`, else `z * r`), then
/// `z -= frequency * count + presence` for each generated token.
fn apply_penalties(z: &mut [f32], p: &SamplingParams, st: &RowState) {
    let r = p.repetition_penalty;
    if r != 1.0 {
        let rep = |x: f32| if x > 0.0 { x / r } else { x * r };
        let prompt = st.prompt_tokens();
        for &t in prompt {
            z[t as usize] = rep(z[t as usize]);
        }
        for (t, _) in st.output_counts() {
            if prompt.binary_search(&t).is_err() {
                z[t as usize] = rep(z[t as usize]);
            }
        }
    }
    let (f, q) = (p.frequency_penalty, p.presence_penalty);
    if f != 0.0 || q != 0.0 {
        for (t, c) in st.output_counts() {
            if c > 0 {
                z[t as usize] -= f * c as f32 + q;
            }
        }
    }
}

/// SPEC step 5, greedy: the first index of the largest processed logit
/// `zmax` (taken from the input check's pass when the row is unmodified).
fn greedy(z: &[f32], zmax: f32, raw_argmax: Option<usize>, modified: bool) -> u32 {
    match raw_argmax {
        Some(i) if !modified => i as u32,
        _ => fastmath::first_index_of(z, zmax).unwrap_or(0) as u32,
    }
}

/// SPEC step 6's overflow rule: when the largest `z / T` is `+inf` (a tiny
/// temperature, or a bias / penalty that overflowed), the `+inf` tokens are
/// the only candidates and their Gumbel keys all tie at `+inf`, so the
/// lowest such index wins. When it is `-inf` (every finite z overflows
/// downwards), the T → 0 limit: greedy on the unscaled logits. `None` when
/// `zmax / t` is finite and sampling goes on.
fn temperature_overflow(z: &[f32], zmax: f32, t: f32) -> Option<u32> {
    let zmax_t = zmax / t;
    if !zmax_t.is_infinite() {
        return None;
    }
    let tok = if zmax_t > 0.0 {
        z.iter().position(|&x| x / t == f32::INFINITY)
    } else {
        fastmath::first_index_of(z, zmax)
    };
    Some(tok.unwrap_or(0) as u32)
}

/// Steps 6-9 fused for an unprocessed row with top-k, without writing
/// `z / T` for the whole row: select on the raw logits (division by `T > 0`
/// is monotone) with a few ulps of slack, then divide only the candidates
/// and redo min-p and top-k exactly on `z / T`, then top-p on the
/// survivors. `None` when fewer than k tokens survive min-p (top-k is then
/// a no-op), and the general path runs.
fn top_k_fused(
    raw: &[f32],
    zmax: f32,
    p: &SamplingParams,
    cand: &mut Vec<(f32, u32)>,
) -> Option<Filtered> {
    let t = p.temperature;
    let zmax_t = zmax / t;
    let theta_t = if p.min_p > 0.0 {
        min_p(zmax_t, p.min_p)
    } else {
        FLOOR
    };
    // Every x with x / t >= theta_t has x >= lb.
    let lb = if theta_t <= FLOOR {
        FLOOR
    } else {
        let b = theta_t * t;
        b - b.abs() * 5e-7
    };
    let k = p.top_k as usize;
    let mut unused = FLOOR;
    if !top_k(raw, lb, k, true, cand, &mut unused) {
        return None;
    }
    for c in cand.iter_mut() {
        c.0 /= t;
    }
    cand.retain(|&(x, _)| x >= theta_t);
    if cand.len() < k {
        return None;
    }
    cand.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
    let kth = cand[k - 1].0;
    cand.retain(|&(x, _)| x >= kth);
    let mut theta = theta_t.max(kth);
    if p.top_p < 1.0 {
        let total = cand_mass(cand, zmax_t);
        theta = top_p(cand, zmax_t, p.top_p, total, theta);
    }
    Some(Filtered::Kept {
        theta,
        max: zmax_t,
        listed: true,
    })
}

/// SPEC step 6, temperature: `z / T` as one f32 division per token (as the
/// GPU does it), into `z_buf` (in place when steps 2-4 already copied the
/// row, else a fused copy-and-divide of `raw`). Returns the new maximum
/// `zmax / T` (division by `T > 0` is monotone).
fn scale_temperature(raw: &[f32], z_buf: &mut Vec<f32>, modified: bool, t: f32, zmax: f32) -> f32 {
    if modified {
        for x in z_buf.iter_mut() {
            *x /= t;
        }
    } else {
        z_buf.clear();
        z_buf.extend(raw.iter().map(|&x| x / t));
    }
    zmax / t
}

/// SPEC step 7, min-p: the threshold `zmax + ln(min_p)` (never below
/// [`FLOOR`], so `-inf` never survives). Tokens under it are dropped.
fn min_p(zmax: f32, min_p: f32) -> f32 {
    FLOOR.max(zmax + min_p_log(min_p))
}

/// `sum exp(z - zmax)` over the candidates (the top-p normaliser when they
/// are all the survivors).
fn cand_mass(cand: &[(f32, u32)], zmax: f32) -> f64 {
    cand.iter()
        .map(|&(x, _)| fastmath::exp(x - zmax) as f64)
        .sum()
}

/// SPEC step 9, top-p, on `cand` (which holds every survivor ranked
/// before the cut; `total` is the survivors' mass): returns `theta` raised
/// to the cut and keeps in `cand` only the tokens at or above it.
fn top_p(cand: &mut Vec<(f32, u32)>, zmax: f32, top_p: f32, total: f64, theta: f32) -> f32 {
    let theta = top_p_cut(cand, zmax, top_p as f64 * total).max(theta);
    cand.retain(|&(x, _)| x >= theta);
    theta
}

/// SPEC step 8, top-k: finds the k-th largest value among `z_i >= theta` and raises `theta` to
/// it. Leaves in `cand` every token with `z_i >= theta` (new theta) and
/// returns true; when fewer than `k` tokens reach `theta`, top-k is a no-op
/// and it returns false with `cand` unspecified.
fn top_k(
    z: &[f32],
    theta0: f32,
    k: usize,
    slack: bool,
    cand: &mut Vec<(f32, u32)>,
    theta: &mut f32,
) -> bool {
    // With `slack`, also keep values a few ulps below each threshold: the
    // caller divides by T afterwards, and x < kth can round to kth / T.
    let low = |t: f32| {
        if slack && t > FLOOR {
            t - t.abs() * 5e-7
        } else {
            t
        }
    };
    cand.clear();
    let cap = (2 * k).max(k + 512);
    let mut tau = theta0;
    let mut compacted = false;
    let mut base = 0u32;
    for chunk in z.chunks(64) {
        let mut any = false;
        let lo = low(tau);
        for &x in chunk {
            any |= x >= lo;
        }
        if any {
            for (j, &x) in chunk.iter().enumerate() {
                if x >= lo {
                    cand.push((x, base + j as u32));
                }
            }
            if cand.len() >= cap {
                // Keep the k largest (and everything tied with the k-th).
                cand.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
                tau = cand[k - 1].0;
                let lo = low(tau);
                cand.retain(|&(x, _)| x >= lo);
                compacted = true;
            }
        }
        base += chunk.len() as u32;
    }
    if !compacted && cand.len() <= k {
        return false;
    }
    cand.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
    let kth = cand[k - 1].0;
    let lo = low(kth);
    cand.retain(|&(x, _)| x >= lo);
    *theta = theta.max(kth);
    true
}

/// Collects into `cand` a set of tokens with `z_i >= theta` that surely
/// contains the top-p survivors (the tokens above a threshold lowered until
/// their mass reaches `top_p` of the total) and returns the total mass
/// `sum exp(z_i - zmax)` over all tokens with `z_i >= theta`.
fn collect_top_p_candidates(
    z: &[f32],
    theta: f32,
    zmax: f32,
    top_p: f32,
    cand: &mut Vec<(f32, u32)>,
) -> f64 {
    let total: f64 = if theta <= FLOOR {
        fastmath::sum_exp(z, zmax)
    } else {
        let mut s = 0.0f64;
        for c in z.chunks(4096) {
            let mut acc = 0.0f32;
            for &x in c {
                acc += if x >= theta {
                    fastmath::exp(x - zmax)
                } else {
                    0.0
                };
            }
            s += acc as f64;
        }
        s
    };
    let target = top_p as f64 * total;
    let mut delta = 4.0f32;
    loop {
        let lo = (zmax - delta).max(theta);
        collect_at_least(z, lo, cand);
        if lo <= theta {
            return total;
        }
        let m: f64 = cand
            .iter()
            .map(|&(x, _)| fastmath::exp(x - zmax) as f64)
            .sum();
        if m >= target {
            return total;
        }
        delta = if delta < 64.0 {
            delta * 2.0
        } else {
            f32::INFINITY
        };
    }
}

/// Replaces `cand` with every `(z_i, i)` with `z_i >= lo`, in index order.
fn collect_at_least(z: &[f32], lo: f32, cand: &mut Vec<(f32, u32)>) {
    cand.clear();
    let mut base = 0u32;
    for chunk in z.chunks(64) {
        let mut any = false;
        for &x in chunk {
            any |= x >= lo;
        }
        if any {
            for (j, &x) in chunk.iter().enumerate() {
                if x >= lo {
                    cand.push((x, base + j as u32));
                }
            }
        }
        base += chunk.len() as u32;
    }
}

/// Descending logit, then ascending id: the order of SPEC step 9's sort.
fn by_rank(a: &(f32, u32), b: &(f32, u32)) -> std::cmp::Ordering {
    // -0 and +0 are equal logits: order them by id (partial_cmp, no NaN here).
    b.0.partial_cmp(&a.0)
        .unwrap_or(std::cmp::Ordering::Equal)
        .then(a.1.cmp(&b.1))
}

/// The top-p cut: the logit of the first token, in [`by_rank`] order, at
/// which the running mass `sum exp(z - zmax)` reaches `target`; every token
/// with `z >= cut` is kept (ties kept). When the mass never reaches the
/// target (f32/f64 rounding with `top_p` just below 1) the smallest
/// candidate is returned, keeping them all. `cand` must contain every
/// token ranked before the cut; it is permuted.
///
/// Selection, not a sort: 256 buckets by logit, keep only the bucket where
/// the running mass crosses the target, repeat; the last <= 1024 tokens are
/// sorted. Each round shrinks the logit range 256-fold, so this is O(n).
fn top_p_cut(cand: &mut [(f32, u32)], zmax: f32, target: f64) -> f32 {
    let mut above = 0.0f64;
    let mut set: &mut [(f32, u32)] = cand;
    loop {
        if set.is_empty() {
            return FLOOR;
        }
        if set.len() <= 1024 {
            set.sort_unstable_by(by_rank);
            let mut run = above;
            for &(x, _) in set.iter() {
                run += fastmath::exp(x - zmax) as f64;
                if run >= target {
                    return x;
                }
            }
            return set[set.len() - 1].0;
        }
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for &(x, _) in set.iter() {
            lo = lo.min(x);
            hi = hi.max(x);
        }
        if lo == hi {
            return hi;
        }
        let (hi64, scale) = (hi as f64, 256.0 / (hi as f64 - lo as f64));
        let bucket = |x: f32| (((hi64 - x as f64) * scale) as usize).min(255);
        let mut bm = [0.0f64; 256];
        let mut bn = [0u32; 256];
        for &(x, _) in set.iter() {
            let b = bucket(x);
            bm[b] += fastmath::exp(x - zmax) as f64;
            bn[b] += 1;
        }
        let mut sel = 255;
        while bn[sel] == 0 {
            sel -= 1;
        }
        let mut run = above;
        for b in 0..256 {
            if bn[b] > 0 && run + bm[b] >= target {
                sel = b;
                break;
            }
            if b == sel {
                break;
            }
            run += bm[b];
        }
        above = run;
        let mut w = 0;
        for r in 0..set.len() {
            if bucket(set[r].0) == sel {
                set.swap(w, r);
                w += 1;
            }
        }
        set = &mut set[..w];
    }
}

/// SPEC step 10 over the survivors: `argmax_i (z_i + g_i)`, lowest index
/// on ties. With `listed`, the survivors are `cand`; otherwise they are the
/// tokens with `z_i >= theta`, scanned densely: Philox 64 tokens at a time
/// ([`rng::words_64`]) and the logarithms skipped for tokens whose uniform
/// is below the level they would need to win.
///
/// `exclude` is left out of the survivors (speculative decoding's
/// recovered token without draft probabilities: the keys are the same,
/// the rejected draft cannot win); [`NO_TOKEN`] excludes nothing. Returns
/// [`NO_TOKEN`] when no survivor is left.
#[allow(clippy::too_many_arguments)]
fn gumbel_argmax(
    z: &[f32],
    theta: f32,
    zmax: f32,
    listed: bool,
    cand: &[(f32, u32)],
    seed: u64,
    step: u64,
    exclude: u32,
) -> u32 {
    let mut best = (f32::NEG_INFINITY, u32::MAX);
    let better = |key: f32, i: u32, best: (f32, u32)| key > best.0 || (key == best.0 && i < best.1);
    if listed {
        for &(x, i) in cand {
            if i == exclude {
                continue;
            }
            let key = x + rng::gumbel(seed, step, i);
            if better(key, i, best) {
                best = (key, i);
            }
        }
        return best.1;
    }
    // Seed the bound with the most likely token (unless it is excluded:
    // then the first chunk is evaluated exactly until a bound exists).
    if let Some(i) = fastmath::first_index_of(z, zmax)
        && i as u32 != exclude
    {
        best = (zmax + rng::gumbel(seed, step, i as u32), i as u32);
    }
    let key = rng::key_for_seed(seed);
    let mut ut = [0.0f32; 64];
    for (bi, chunk) in z.chunks(64).enumerate() {
        let mut cmax = f32::NEG_INFINITY;
        for &x in chunk {
            cmax = if x > cmax { x } else { cmax };
        }
        if cmax < theta {
            continue;
        }
        let words = rng::words_64((bi * 16) as u32, step, key);
        // A token can only reach the current best key K if its Gumbel value
        // g = -ln(-ln u) reaches y = K - z, i.e. if u >= exp(-exp(-y)). The
        // thresholds are computed for the whole chunk with the vectorised
        // exp, y lowered by a margin of 1e-4 of the magnitudes involved
        // (about 1000 f32 ulps: far above the rounding of K - z, of z + g
        // and of exp), so the exact logarithms run only for the few tokens
        // that can win. Where z/T is huge the margin makes exp(-y) overflow
        // to +inf and the threshold 0: every survivor is then evaluated
        // exactly (slower, never wrong).
        let bound = best.0;
        let babs = bound.abs().max(1.0);
        for (t, &x) in ut.iter_mut().zip(chunk) {
            let y = (bound - x) - 1e-4 * babs.max(x.abs());
            *t = fastmath::exp(-fastmath::exp(-y)) * (1.0 - 1e-5);
        }
        for (j, &x) in chunk.iter().enumerate() {
            if x < theta {
                continue;
            }
            let u = rng::uniform_from_word(words[j]);
            if u < ut[j] {
                continue;
            }
            let i = (bi * 64 + j) as u32;
            let k = x + rng::gumbel_from_uniform(u);
            if better(k, i, best) && i != exclude {
                best = (k, i);
            }
        }
    }
    best.1
}

/// The output of a row that got no token.
fn no_token(status: Status) -> RowOutput {
    RowOutput {
        token: NO_TOKEN,
        logprob: f32::NAN,
        status,
    }
}

/// SPEC step 1, input check: `None` when the row holds NaN or `+inf`, else
/// the raw maximum and, for greedy rows (which take the first index of the
/// maximum from this same pass), its first index.
fn check_input(raw: &[f32], greedy: bool) -> Option<(f32, Option<usize>)> {
    let (raw_max, raw_argmax, bad) = if greedy {
        let (m, i, b) = fastmath::max_argmax_check(raw);
        (m, Some(i), b)
    } else {
        let (m, b) = fastmath::max_and_check(raw);
        (m, None, b)
    };
    (!bad).then_some((raw_max, raw_argmax))
}

/// Samples one row (SPEC steps 1-11). The caller applies step 12.
pub(crate) fn sample_row(
    raw: &[f32],
    p: &SamplingParams,
    st: &RowState,
    w: &mut Work,
    logprobs: bool,
) -> RowOutput {
    let Some((raw_max, raw_argmax)) = check_input(raw, p.is_greedy()) else {
        return no_token(Status::InvalidLogits);
    };
    let (f, z) = filter(
        raw,
        raw_max,
        raw_argmax,
        p,
        st,
        &mut w.z,
        &mut w.cand,
        &mut w.raw_total,
    );
    let token = match f {
        Filtered::NoCandidates => return no_token(Status::NoCandidates),
        Filtered::Greedy(t) => t,
        Filtered::Kept { theta, max, listed } => {
            gumbel_argmax(z, theta, max, listed, &w.cand, p.seed, st.step, NO_TOKEN)
        }
    };
    let logprob = if !logprobs {
        f32::NAN
    } else if let Some(total) = w.raw_total {
        ((raw[token as usize] - raw_max) as f64 - total.ln()) as f32
    } else {
        raw_logprob(raw, raw_max, token)
    };
    RowOutput {
        token,
        logprob,
        status: Status::Ok,
    }
}

/// SPEC step 11, the logprob: `log_softmax(raw)[token]`.
fn raw_logprob(raw: &[f32], raw_max: f32, token: u32) -> f32 {
    let s = fastmath::sum_exp(raw, raw_max);
    ((raw[token as usize] - raw_max) as f64 - s.ln()) as f32
}

/// Steps 1-9 of one row as a distribution: survivors, most probable first
/// (ties: lower id first), with probabilities renormalised over them.
pub(crate) fn distribution_row(
    raw: &[f32],
    p: &SamplingParams,
    st: &RowState,
    w: &mut Work,
) -> super::Distribution {
    let empty = |status| super::Distribution {
        status,
        tokens: Vec::new(),
        probs: Vec::new(),
    };
    let (raw_max, bad) = fastmath::max_and_check(raw);
    if bad {
        return empty(Status::InvalidLogits);
    }
    let (f, z) = filter(
        raw,
        raw_max,
        None,
        p,
        st,
        &mut w.z,
        &mut w.cand,
        &mut w.raw_total,
    );
    match f {
        Filtered::NoCandidates => empty(Status::NoCandidates),
        Filtered::Greedy(t) => super::Distribution {
            status: Status::Ok,
            tokens: vec![t],
            probs: vec![1.0],
        },
        Filtered::Kept { theta, max, listed } => {
            let mut c: Vec<(f32, u32)> = if listed {
                w.cand.clone()
            } else {
                let mut v = Vec::new();
                collect_at_least(z, theta, &mut v);
                v
            };
            c.sort_unstable_by(by_rank);
            let e: Vec<f64> = c
                .iter()
                .map(|&(x, _)| {
                    if max == f32::INFINITY {
                        1.0
                    } else {
                        ((x - max) as f64).exp()
                    }
                })
                .collect();
            let s: f64 = e.iter().sum();
            super::Distribution {
                status: Status::Ok,
                tokens: c.iter().map(|&(_, i)| i).collect(),
                probs: e.iter().map(|&x| (x / s) as f32).collect(),
            }
        }
    }
}

/// SPEC.md "Top log-probabilities" for one row whose sampled token is
/// `token`: the `min(n, V)` largest raw logits, largest first, ties to the
/// lower id (`-inf` least probable, still in id order), each with its
/// logprob computed as [`raw_logprob`] computes it (same sum, same
/// rounding, so the sampled token's entry equals its `RowOutput::logprob`),
/// and the rank `1 + #{i : raw_i > raw_token}`. `raw` must hold no NaN or
/// `+inf` (the row's status is `Ok`).
///
/// One pass keeps a sorted buffer of at most [`crate::MAX_TOP_LOGPROBS`]
/// entries (chunks of 64 logits are skipped when none beats the buffer's
/// last), one pass sums the softmax normaliser and one counts the rank:
/// O(V), no sort of the vocabulary, nothing vocabulary-sized allocated.
pub(crate) fn top_logprobs_row(raw: &[f32], token: u32, n: u32) -> TopLogprobs {
    const CAP: usize = crate::MAX_TOP_LOGPROBS as usize;
    let n = (n as usize).min(raw.len()).min(CAP);
    let mut buf = [(f32::NEG_INFINITY, 0u32); CAP];
    let mut len = 0usize;
    // Inserts (x, i) into buf[..len], sorted by value descending; equal
    // values keep their order (ids arrive ascending, so ties go to the
    // lower id). With the buffer full, the last entry drops out.
    let insert = |buf: &mut [(f32, u32); CAP], len: &mut usize, x: f32, i: u32| {
        let pos = buf[..*len].partition_point(|&(y, _)| y >= x);
        let end = if *len < n { *len + 1 } else { n };
        for q in (pos + 1..end).rev() {
            buf[q] = buf[q - 1];
        }
        buf[pos] = (x, i);
        *len = end;
    };
    let mut base = 0u32;
    for chunk in raw.chunks(64) {
        if len == n {
            let worst = buf[n - 1].0;
            let mut any = false;
            for &x in chunk {
                any |= x > worst;
            }
            if !any {
                base += chunk.len() as u32;
                continue;
            }
        }
        for (j, &x) in chunk.iter().enumerate() {
            // Full: only a strictly larger value displaces the last entry
            // (an equal one has a higher id).
            if len < n || x > buf[n - 1].0 {
                insert(&mut buf, &mut len, x, base + j as u32);
            }
        }
        base += chunk.len() as u32;
    }
    let raw_max = fastmath::max(raw);
    let ln_s = fastmath::sum_exp(raw, raw_max).ln();
    let entries = buf[..len]
        .iter()
        .map(|&(x, i)| TokenLogprob {
            token: i,
            logprob: ((x - raw_max) as f64 - ln_s) as f32,
        })
        .collect();
    let xt = raw[token as usize];
    let above = raw.iter().fold(0usize, |c, &x| c + (x > xt) as usize);
    TopLogprobs {
        rank: (above + 1) as u32,
        entries,
    }
}

/// What verifying one draft position (SPEC.md "Speculative decoding")
/// decided.
pub(crate) enum Verdict {
    /// The position's status is not `Ok`: the row ends before it.
    Ended(Status),
    /// The draft token is accepted; its raw logprob.
    Accepted(f32),
    /// The draft token is rejected; the recovered token and its raw
    /// logprob.
    Rejected(u32, f32),
}

/// Verifies the draft token `draft` at one position (the rules of
/// `crate::verify`'s module docs): steps 1-9 on `raw` with state `st`
/// give `p`; the draft is accepted when `u * q(draft) < p(draft)` in f32
/// (`u` = [`rng::accept_uniform`] at `st.step`, `q(draft)` = 1 without
/// `q`); otherwise the recovered token is drawn at `st.step` (see
/// [`recover`]). The logprob is NaN when `logprobs` is off.
///
/// `p(i) = (exp((z_i/T - m) as f64) / S) as f32`, `S` the f64 sum of the
/// same exponentials over the survivors (`z_i/T` and `z_i/T - m` in f32, as
/// step 10's keys use them), one-hot where steps 5/6 pick a token.
pub(crate) fn verify_position(
    raw: &[f32],
    p: &SamplingParams,
    st: &RowState,
    w: &mut Work,
    draft: u32,
    q: Option<&[f32]>,
    logprobs: bool,
) -> Verdict {
    let Some((raw_max, raw_argmax)) = check_input(raw, p.is_greedy()) else {
        return Verdict::Ended(Status::InvalidLogits);
    };
    let (f, z) = filter(
        raw,
        raw_max,
        raw_argmax,
        p,
        st,
        &mut w.z,
        &mut w.cand,
        &mut w.raw_total,
    );
    let (seed, step) = (p.seed, st.step);
    let u = rng::accept_uniform(seed, step);
    let qd = q.map_or(1.0, |q| q[draft as usize]);
    let logprob = |t: u32| {
        if logprobs {
            raw_logprob(raw, raw_max, t)
        } else {
            f32::NAN
        }
    };
    let recovered = match f {
        Filtered::NoCandidates => return Verdict::Ended(Status::NoCandidates),
        Filtered::Greedy(t) => {
            let pd = if t == draft { 1.0f32 } else { 0.0 };
            if u * qd < pd {
                return Verdict::Accepted(logprob(draft));
            }
            // A one-hot p recovers its own token.
            t
        }
        Filtered::Kept { theta, max, listed } => {
            let kept = Kept {
                z,
                theta,
                max,
                listed,
                cand: &w.cand,
            };
            let total = kept.mass();
            let pd = kept.value(draft).map_or(0.0, |x| kept.prob(x, total));
            if u * qd < pd {
                return Verdict::Accepted(logprob(draft));
            }
            recover(&kept, total, draft, q, seed, step)
        }
    };
    Verdict::Rejected(recovered, logprob(recovered))
}

/// The survivors of steps 7-9 (see [`Filtered::Kept`]) with the logits
/// they are kept on.
struct Kept<'a> {
    z: &'a [f32],
    theta: f32,
    max: f32,
    listed: bool,
    cand: &'a [(f32, u32)],
}

impl Kept<'_> {
    /// Calls `f(z_i/T, i)` for every survivor (in id order when dense, in
    /// `cand`'s order when listed).
    fn for_each(&self, mut f: impl FnMut(f32, u32)) {
        if self.listed {
            for &(x, i) in self.cand {
                f(x, i);
            }
        } else {
            for (i, &x) in self.z.iter().enumerate() {
                if x >= self.theta {
                    f(x, i as u32);
                }
            }
        }
    }

    /// `z_t/T` when token `t` survives. (`top_k_fused` leaves the scaled
    /// values in `cand` only, so a listed row is looked up there.)
    fn value(&self, t: u32) -> Option<f32> {
        if self.listed {
            self.cand.iter().find(|c| c.1 == t).map(|c| c.0)
        } else {
            let x = self.z[t as usize];
            (x >= self.theta).then_some(x)
        }
    }

    /// `exp((x - m) as f64)`, 1 when `m` is `+inf` (as `distribution_row`).
    fn weight(&self, x: f32) -> f64 {
        if self.max == f32::INFINITY {
            1.0
        } else {
            ((x - self.max) as f64).exp()
        }
    }

    /// `S`, the f64 sum of the survivors' weights.
    fn mass(&self) -> f64 {
        let mut s = 0.0f64;
        self.for_each(|x, _| s += self.weight(x));
        s
    }

    /// `p_i` of a survivor with value `x`, as f32.
    fn prob(&self, x: f32, total: f64) -> f32 {
        (self.weight(x) / total) as f32
    }
}

/// The recovered token of a rejected draft at `step`. Without `q`: step
/// 10's Gumbel-max over the survivors other than `draft` (the same keys
/// `z_i/T + g_i` as sampling). With `q`: `argmax ln(p_i - q_i) + g_i` (f32)
/// over the tokens where `p_i - q_i > 0` (f32; only survivors have
/// `p_i > 0`), lowest id on ties, and when there is none the step-10
/// sample of `p`.
fn recover(
    kept: &Kept<'_>,
    total: f64,
    draft: u32,
    q: Option<&[f32]>,
    seed: u64,
    step: u64,
) -> u32 {
    let gumbel = |exclude| {
        gumbel_argmax(
            kept.z,
            kept.theta,
            kept.max,
            kept.listed,
            kept.cand,
            seed,
            step,
            exclude,
        )
    };
    let Some(q) = q else {
        // The draft was rejected, so some other token survives: a lone
        // survivor has p = 1 and u * 1 < 1 accepts it. (The fallback only
        // guards against emitting NO_TOKEN with status Ok.)
        let t = gumbel(draft);
        return if t == NO_TOKEN { draft } else { t };
    };
    let mut best = (f32::NEG_INFINITY, NO_TOKEN);
    kept.for_each(|x, i| {
        let d = kept.prob(x, total) - q[i as usize];
        if d > 0.0 {
            let key = d.ln() + rng::gumbel(seed, step, i);
            if key > best.0 || (key == best.0 && i < best.1) {
                best = (key, i);
            }
        }
    });
    if best.1 == NO_TOKEN {
        gumbel(NO_TOKEN)
    } else {
        best.1
    }
}
