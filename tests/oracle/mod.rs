//! The naive oracle of SPEC.md, shared by the CPU tests (`mod oracle;`).
//!
//! Written for obviousness, not speed: it follows SPEC.md's steps 1 to 12
//! literally, on a clone of one row, with full sorts and f64 sums. The only
//! crate code it uses is `wgsample::rng::gumbel` (the Philox stream, which
//! has its own known-answer tests) and the public types.
//!
//! Besides the answer it reports *knife edges*: decisions that f32 rounding
//! could flip (SPEC.md "Where backends may differ"). Tests skip such rows and
//! count them; they never loosen the comparison elsewhere.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use wgsample::rng::gumbel;
use wgsample::{Distribution, NO_TOKEN, RowOutput, RowState, SamplingParams, Status};

/// Distance (relative, floor 1) under which a top-p running mass counts as
/// a knife edge.
pub const KNIFE: f64 = 1e-5;
/// Relative distance (floor 1) under which two distinct processed logits
/// count as a near tie (greedy argmax, top-k / top-p boundary, order).
pub const NEAR_TIE: f64 = 1e-6;
/// Relative distance (floor 1) under which the two best Gumbel keys count
/// as a knife edge: the GPU's `ln` may differ from the CPU's by an ulp of
/// `g`, which moves a key by far less.
pub const GUMBEL_KNIFE: f64 = 1e-6;

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1.0)
}

/// Relative closeness without a floor: for comparisons between f32 values
/// that both backends compute with the same operations (logits, min-p's
/// threshold), which rounding can only move by ulps of their own size, so
/// tiny and subnormal values are no closer to a tie than large ones.
fn close_rel(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs())
}

/// Per-row state as SPEC.md describes it: prompt set, output counts,
/// generated length `n`, step `s`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OracleState {
    pub prompt: BTreeSet<u32>,
    pub counts: BTreeMap<u32, u32>,
    pub n: u32,
    pub step: u64,
}

impl OracleState {
    pub fn new(prompt: &[u32], output: &[u32], step: u64) -> Self {
        let mut s = OracleState {
            prompt: prompt.iter().copied().collect(),
            step,
            ..Default::default()
        };
        for &t in output {
            *s.counts.entry(t).or_insert(0) += 1;
        }
        s.n = output.len() as u32;
        s
    }

    /// Reads a backend `RowState` through its public accessors.
    pub fn from_row_state(st: &RowState) -> Self {
        OracleState {
            prompt: st.prompt_tokens().iter().copied().collect(),
            counts: st.output_counts().collect(),
            n: st.generated_len(),
            step: st.step,
        }
    }

    /// The backend `RowState` that holds the same history.
    pub fn to_row_state(&self) -> RowState {
        let prompt: Vec<u32> = self.prompt.iter().copied().collect();
        let mut output = Vec::new();
        for (&t, &c) in &self.counts {
            output.extend(std::iter::repeat_n(t, c as usize));
        }
        // The output order does not matter: only counts and length do.
        let mut st = RowState::with_output(&prompt, &output);
        assert_eq!(
            st.generated_len(),
            self.n,
            "oracle state with n != sum of counts"
        );
        st.step = self.step;
        st
    }

    /// SPEC step 12: `c_token += 1`, `n += 1`, `s += 1`.
    pub fn record(&mut self, token: u32) {
        *self.counts.entry(token).or_insert(0) += 1;
        self.n += 1;
        self.step += 1;
    }

    /// Compares a backend state with this one (prompt, counts, n, step).
    pub fn check(&self, st: &RowState) -> Result<(), String> {
        let other = OracleState::from_row_state(st);
        if &other == self {
            Ok(())
        } else {
            Err(format!("state: backend {other:?}, oracle {self:?}"))
        }
    }
}

/// The oracle's answer for one row.
#[derive(Debug, Clone)]
pub struct OracleOut {
    pub status: Status,
    /// `NO_TOKEN` when `status != Ok`.
    pub token: u32,
    /// `log_softmax` of the raw row at `token`, in f64; NaN when no token.
    pub logprob: f64,
    /// Filtered distribution: survivors, most probable first, ties lower id
    /// first (a point mass on the argmax for greedy rows).
    pub dist_tokens: Vec<u32>,
    pub dist_probs: Vec<f64>,
    /// The processed logit (after temperature) of each entry of
    /// `dist_tokens`, for order checks.
    pub dist_z: Vec<f32>,
    /// Why the filtered set could flip under f32 rounding, if it could.
    pub filter_knife: Option<String>,
    /// Why the sampled token could flip under f32 rounding, if it could.
    pub sample_knife: Option<String>,
}

impl OracleOut {
    pub fn knife(&self) -> bool {
        self.filter_knife.is_some() || self.sample_knife.is_some()
    }

    /// A row whose filtered distribution is the single token `tok` (with
    /// processed logit `z`): greedy, and SPEC step 6's overflow limit.
    fn one_hot(row: &[f32], tok: usize, z: f32) -> OracleOut {
        OracleOut {
            status: Status::Ok,
            token: tok as u32,
            logprob: raw_logprob(row, tok),
            dist_tokens: vec![tok as u32],
            dist_probs: vec![1.0],
            dist_z: vec![z],
            filter_knife: None,
            sample_knife: None,
        }
    }

    fn no_token(status: Status) -> Self {
        OracleOut {
            status,
            token: NO_TOKEN,
            logprob: f64::NAN,
            dist_tokens: vec![],
            dist_probs: vec![],
            dist_z: vec![],
            filter_knife: None,
            sample_knife: None,
        }
    }
}

/// Widens any supported element type to f32 (exact).
pub fn widen_f16(x: &[half::f16]) -> Vec<f32> {
    x.iter().map(|v| v.to_f32()).collect()
}
pub fn widen_bf16(x: &[half::bf16]) -> Vec<f32> {
    x.iter().map(|v| v.to_f32()).collect()
}

/// Builds an allowed-token bitmask (SPEC layout: bit `i % 32` of word
/// `i / 32`) from one flag per token.
pub fn mask_from_flags(flags: &[bool]) -> Vec<u32> {
    let mut m = vec![0u32; flags.len().div_ceil(32)];
    for (i, &f) in flags.iter().enumerate() {
        if f {
            m[i / 32] |= 1u32 << (i % 32);
        }
    }
    m
}

/// Sorts `(token, z)` pairs by `z` descending, lower id first on ties.
fn sort_desc(items: &mut [(usize, f32)]) {
    items.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
}

/// `log_softmax(raw)[token]` in f64 (SPEC step 11).
pub fn raw_logprob(raw: &[f32], token: usize) -> f64 {
    let m = raw
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold(f64::NEG_INFINITY, |a, b| a.max(b as f64));
    let s: f64 = raw.iter().map(|&x| ((x as f64) - m).exp()).sum();
    raw[token] as f64 - m - s.ln()
}

/// The processed logits after SPEC steps 2 to 4 (masks, bias, penalties), in
/// f32, exactly as written. Assumes valid params and a row without NaN/+inf.
pub fn processed_logits(row: &[f32], p: &SamplingParams, st: &OracleState) -> Vec<f32> {
    let v = row.len();
    let mut z = row.to_vec();
    // 2. Masks.
    if let Some(mask) = &p.allowed_tokens {
        for (i, zi) in z.iter_mut().enumerate() {
            if (mask[i / 32] >> (i % 32)) & 1 == 0 {
                *zi = f32::NEG_INFINITY;
            }
        }
    }
    for &t in &p.banned_tokens {
        z[t as usize] = f32::NEG_INFINITY;
    }
    if st.n < p.min_new_tokens {
        for &e in &p.eos_token_ids {
            z[e as usize] = f32::NEG_INFINITY;
        }
    }
    // 3. Logit bias.
    for &(t, b) in &p.logit_bias {
        z[t as usize] += b;
    }
    // 4. Penalties: repetition once per token of prompt ∪ output...
    let r = p.repetition_penalty;
    let seen: BTreeSet<u32> = st.prompt.iter().chain(st.counts.keys()).copied().collect();
    for &t in &seen {
        let x = z[t as usize];
        z[t as usize] = if x > 0.0 { x / r } else { x * r };
    }
    // ... then frequency and presence over the output only.
    for (&t, &c) in &st.counts {
        let present = if c > 0 { 1.0f32 } else { 0.0 };
        z[t as usize] -= p.frequency_penalty * c as f32 + p.presence_penalty * present;
    }
    debug_assert_eq!(z.len(), v);
    z
}

/// SPEC steps 1 to 11 for one row of `row.len()` logits. `params` must be
/// valid (the tests check validation separately).
pub fn oracle_row(row: &[f32], p: &SamplingParams, st: &OracleState) -> OracleOut {
    let v = row.len();
    // 1. Input check.
    if row.iter().any(|x| x.is_nan() || *x == f32::INFINITY) {
        return OracleOut::no_token(Status::InvalidLogits);
    }
    // 2-4.
    let mut z = processed_logits(row, p, st);
    // A bias or penalty can overflow a logit to +inf: it stays a candidate
    // (and then the only kind that can win, see step 6).
    let candidates: Vec<usize> = (0..v).filter(|&i| z[i] != f32::NEG_INFINITY).collect();
    if candidates.is_empty() {
        return OracleOut::no_token(Status::NoCandidates);
    }
    assert!(
        z.iter().all(|x| !x.is_nan()),
        "test data made a NaN during steps 2-4: {z:?}"
    );

    // 5. Greedy.
    if p.temperature == 0.0 {
        let mut items: Vec<(usize, f32)> = candidates.iter().map(|&i| (i, z[i])).collect();
        sort_desc(&mut items);
        let (tok, best) = items[0];
        let mut sample_knife = None;
        if let Some(&(j, second)) = items.iter().find(|it| it.1 != best)
            && close_rel(best as f64, second as f64, NEAR_TIE)
        {
            sample_knife = Some(format!("greedy near tie: z[{tok}]={best} z[{j}]={second}"));
        }
        return OracleOut {
            sample_knife,
            ..OracleOut::one_hot(row, tok, best)
        };
    }

    // 6. Temperature (f32 division).
    let unscaled = z.clone();
    for zi in z.iter_mut() {
        *zi /= p.temperature;
    }
    let mut filter_knife: Option<String> = None;
    let mut survivors: Vec<usize> = candidates.clone();
    // SPEC step 6: when the division overflows (or a logit was already
    // +inf), the +inf tokens are the only candidates; their Gumbel keys are
    // all +inf, so the lowest index wins. When every candidate overflows to
    // -inf instead, take the T -> 0 limit: the argmax of the unscaled z.
    let overflow = if let Some(&i) = survivors.iter().find(|&&i| z[i] == f32::INFINITY) {
        Some(i)
    } else if survivors.iter().all(|&i| z[i] == f32::NEG_INFINITY) {
        let mut items: Vec<(usize, f32)> = survivors.iter().map(|&i| (i, unscaled[i])).collect();
        sort_desc(&mut items);
        Some(items[0].0)
    } else {
        None
    };
    // Tokens that overflow to -inf are masked (SPEC step 6).
    survivors.retain(|&i| z[i] != f32::NEG_INFINITY);
    if let Some(tok) = overflow {
        return OracleOut::one_hot(row, tok, z[tok]);
    }

    // 7. min-p: keep z >= max + ln(min_p), in f32.
    if p.min_p > 0.0 {
        let m = survivors
            .iter()
            .map(|&i| z[i])
            .fold(f32::NEG_INFINITY, f32::max);
        let thr = m + p.min_p.ln(); // min_p is an f32: ln in f32
        for &i in &survivors {
            if z[i] != thr && close_rel(z[i] as f64, thr as f64, NEAR_TIE) {
                filter_knife = Some(format!("min-p: z[{i}]={} near threshold {thr}", z[i]));
            }
        }
        survivors.retain(|&i| z[i] >= thr);
    }

    // 8. top-k via a full sort: keep z >= the k-th largest value.
    if p.top_k > 0 && (p.top_k as usize) < v {
        let k = p.top_k as usize;
        let mut items: Vec<(usize, f32)> = survivors.iter().map(|&i| (i, z[i])).collect();
        sort_desc(&mut items);
        if items.len() > k {
            let kth = items[k - 1].1;
            if let Some(&(j, below)) = items.iter().find(|it| it.1 < kth)
                && close_rel(kth as f64, below as f64, NEAR_TIE)
            {
                filter_knife = Some(format!("top-k near tie: kth={kth}, z[{j}]={below}"));
            }
            survivors.retain(|&i| z[i] >= kth);
        }
    }

    // 9. top-p over the survivors' softmax (f64 sums).
    if p.top_p < 1.0 {
        let top_p = p.top_p as f64;
        let mut items: Vec<(usize, f32)> = survivors.iter().map(|&i| (i, z[i])).collect();
        sort_desc(&mut items);
        let m = items[0].1 as f64;
        let e: Vec<f64> = items.iter().map(|&(_, zi)| (zi as f64 - m).exp()).collect();
        let s: f64 = e.iter().sum();
        let mut cum = 0.0f64;
        let mut cut: Option<f32> = None;
        for (idx, &(i, zi)) in items.iter().enumerate() {
            let before = cum;
            cum += e[idx] / s;
            if (idx > 0 && close(before, top_p, KNIFE)) || close(cum, top_p, KNIFE) {
                filter_knife = Some(format!(
                    "top-p: running mass {before} -> {cum} at token {i} near top_p {top_p}"
                ));
            }
            if cum >= top_p {
                cut = Some(zi);
                break;
            }
        }
        if let Some(t) = cut {
            if let Some(&(j, below)) = items.iter().find(|it| it.1 < t)
                && close_rel(t as f64, below as f64, NEAR_TIE)
            {
                filter_knife = Some(format!("top-p near tie: cut z={t}, z[{j}]={below}"));
            }
            survivors.retain(|&i| z[i] >= t);
        }
        // The running mass never reached top_p: keep all.
    }
    assert!(!survivors.is_empty(), "oracle lost every survivor");

    // 10. Gumbel-max over the survivors, lowest index wins ties.
    let mut best: Option<(usize, f32)> = None;
    let mut keys: Vec<f32> = Vec::with_capacity(survivors.len());
    for &i in &survivors {
        let key = z[i] + gumbel(p.seed, st.step, i as u32);
        keys.push(key);
        match best {
            Some((_, b)) if key <= b => {} // keys are never NaN
            _ => best = Some((i, key)),
        }
    }
    let (tok, best_key) = best.unwrap();
    let mut sample_knife = None;
    if survivors.len() > 1 {
        let mut sorted = keys.clone();
        sorted.sort_by(|a, b| b.partial_cmp(a).unwrap());
        let second = sorted[1];
        if best_key.is_finite() && close(best_key as f64, second as f64, GUMBEL_KNIFE) {
            sample_knife = Some(format!("gumbel keys {best_key} and {second}"));
        }
    }

    // Filtered distribution: softmax over survivors (f64), prob desc, id asc.
    let mut items: Vec<(usize, f32)> = survivors.iter().map(|&i| (i, z[i])).collect();
    sort_desc(&mut items);
    let m = items[0].1 as f64;
    let e: Vec<f64> = items.iter().map(|&(_, zi)| (zi as f64 - m).exp()).collect();
    let s: f64 = e.iter().sum();

    OracleOut {
        status: Status::Ok,
        token: tok as u32,
        logprob: raw_logprob(row, tok),
        dist_tokens: items.iter().map(|&(i, _)| i as u32).collect(),
        dist_probs: e.iter().map(|x| x / s).collect(),
        dist_z: items.iter().map(|&(_, zi)| zi).collect(),
        filter_knife,
        sample_knife,
    }
}

/// Compares a backend row output with the oracle: token and status exactly,
/// logprob within 1e-5 (relative to `max(1, |logprob|)`, since an f32
/// logprob of magnitude 60 carries ~4e-6 of rounding by itself).
pub fn check_output(got: &RowOutput, want: &OracleOut) -> Result<(), String> {
    if got.status != want.status {
        return Err(format!(
            "status: backend {:?}, oracle {:?}",
            got.status, want.status
        ));
    }
    if got.token != want.token {
        return Err(format!(
            "token: backend {}, oracle {}",
            got.token, want.token
        ));
    }
    if want.status == Status::Ok && (want.logprob as f32).is_infinite() {
        // Beyond f32's range (a token ~1e38 below the max): the backend's
        // f32 logprob is -inf.
        if got.logprob != want.logprob as f32 {
            return Err(format!(
                "logprob: backend {}, oracle {} (beyond f32)",
                got.logprob, want.logprob
            ));
        }
    } else if want.status == Status::Ok {
        let lp = got.logprob as f64;
        let err = (lp - want.logprob).abs();
        if err.is_nan() || err > 1e-5 * want.logprob.abs().max(1.0) {
            return Err(format!("logprob: backend {lp}, oracle {}", want.logprob));
        }
    } else if !got.logprob.is_nan() {
        return Err(format!(
            "logprob: backend {}, want NaN (no token)",
            got.logprob
        ));
    }
    Ok(())
}

/// The first few entries of a list, for messages.
fn head<T: std::fmt::Debug>(x: &[T]) -> String {
    if x.len() <= 12 {
        format!("{x:?}")
    } else {
        format!("{:?} ... ({} in all)", &x[..12], x.len())
    }
}

/// Compares a backend filtered distribution with the oracle's: status, the
/// token set exactly, each probability within 1e-5, the backend's list
/// sorted by its own probabilities (desc, ties lower id first), and the
/// order equal to the oracle's except among near-tied logits.
pub fn check_distribution(got: &Distribution, want: &OracleOut) -> Result<(), String> {
    if got.status != want.status {
        return Err(format!(
            "dist status: backend {:?}, oracle {:?}",
            got.status, want.status
        ));
    }
    if got.tokens.len() != got.probs.len() {
        return Err(format!(
            "dist: {} tokens but {} probs",
            got.tokens.len(),
            got.probs.len()
        ));
    }
    let mut a = got.tokens.clone();
    let mut b = want.dist_tokens.clone();
    a.sort_unstable();
    b.sort_unstable();
    if a != b {
        let only_got: Vec<u32> = a.iter().filter(|t| !b.contains(t)).copied().collect();
        let only_want: Vec<u32> = b.iter().filter(|t| !a.contains(t)).copied().collect();
        return Err(format!(
            "dist tokens: {} from the backend, {} from the oracle; only backend: {:?}, only oracle: {:?}",
            a.len(),
            b.len(),
            head(&only_got),
            head(&only_want)
        ));
    }
    let idx: BTreeMap<u32, usize> = want
        .dist_tokens
        .iter()
        .enumerate()
        .map(|(k, &t)| (t, k))
        .collect();
    for (k, (&t, &pr)) in got.tokens.iter().zip(&got.probs).enumerate() {
        let w = want.dist_probs[idx[&t]];
        let err = (pr as f64 - w).abs();
        if err.is_nan() || err > 1e-5 {
            return Err(format!("dist prob of token {t}: backend {pr}, oracle {w}"));
        }
        if k > 0 {
            let (pt, pp) = (got.tokens[k - 1], got.probs[k - 1]);
            // Non-increasing probabilities. Equal f32 probabilities may still
            // come from distinct logits, so the tie rule (lower id first) is
            // checked against the logits below, not against the rounded probs.
            if pp < pr {
                return Err(format!(
                    "dist order: token {pt} (p={pp}) before token {t} (p={pr}): {:?}",
                    head(&got.tokens)
                ));
            }
            let (zp, zt) = (want.dist_z[idx[&pt]], want.dist_z[idx[&t]]);
            // Exact ties (IEEE equality, so -0 and +0 tie) must put the lower
            // id first; distinct but near-tied logits may come in either order.
            let ok = if zp == zt {
                pt < t
            } else {
                zp > zt || close_rel(zp as f64, zt as f64, NEAR_TIE)
            };
            if !ok {
                return Err(format!(
                    "dist order: token {pt} (z={zp}) before token {t} (z={zt}); backend {:?}, oracle {:?}",
                    head(&got.tokens),
                    head(&want.dist_tokens)
                ));
            }
        }
    }
    Ok(())
}

// The one chi-square implementation (tests/support/stats.rs), by path: some
// test binaries have `oracle` without `support`. Where a binary has both,
// the file is compiled twice, which is what clippy's lint points out.
#[allow(clippy::duplicate_mod)]
#[path = "../support/stats.rs"]
mod stats;
#[allow(unused_imports)] // not every binary that includes the oracle tests distributions
pub use stats::{chi2_merged, chi2_quantile};
