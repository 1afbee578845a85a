//! Checks of speculative decoding's `verify` (SPEC.md "Speculative
//! decoding", the rules in `wgsample::verify`) written against closures,
//! so that every backend runs the same checks: a backend plugs in its
//! `verify` as a [`VerifyFn`] and, where a check compares with plain
//! decoding, its `sample` as a [`SampleFn`].
//!
//! Each check returns `Err` with a message on the first violation (the
//! caller panics with it) and `Ok` with a one-line summary otherwise.
//! Expected distributions are data handed in by the caller (computed by
//! an oracle, never by the backend under test); everything random is
//! drawn from fixed seeds, so a failure reproduces.
#![allow(dead_code)]

use super::stats::{chi2_merged, chi2_quantile};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgsample::{Drafts, Logits, Result, RowOutput, RowState, SamplingParams, Status, VerifyOutput};

/// A backend's `verify`: `(target [B, k + 1, V], V, drafts, params, states)`.
pub type VerifyFn<'a> = dyn FnMut(
        Logits<'_>,
        usize,
        &Drafts<'_>,
        &[SamplingParams],
        &mut [RowState],
    ) -> Result<Vec<VerifyOutput>>
    + 'a;

/// A backend's `sample`: `(logits [B, V], V, params, states)`.
pub type SampleFn<'a> =
    dyn FnMut(Logits<'_>, usize, &[SamplingParams], &mut [RowState]) -> Result<Vec<RowOutput>> + 'a;

/// Standard normal quantile at `1 - 1e-5`: the chi-square checks reject
/// at p = 1e-5.
pub const Z_1E5: f64 = 4.264_890_8;

/// Checks `observed` against `n * probs` at p = 1e-5; `what` names it.
fn chi2_check(what: &str, observed: &[u64], probs: &[f64]) -> std::result::Result<String, String> {
    let n: u64 = observed.iter().sum();
    let expected: Vec<f64> = probs.iter().map(|p| p * n as f64).collect();
    let (stat, df) = chi2_merged(observed, &expected);
    if df == 0 {
        return if stat.is_finite() {
            Ok(format!("{what}: one bin"))
        } else {
            Err(format!("{what}: observations where p = 0: {observed:?}"))
        };
    }
    let crit = chi2_quantile(df as f64, Z_1E5);
    if stat > crit {
        Err(format!(
            "{what}: chi-square {stat:.1} > {crit:.1} (df {df}, n {n})\n  observed {observed:?}\n  expected {expected:.1?}"
        ))
    } else {
        Ok(format!("{what}: chi2 {stat:.1}/{crit:.1} df {df} n {n}"))
    }
}

/// One draw from a discrete distribution over `0..p.len()`.
pub fn draw(rng: &mut StdRng, p: &[f64]) -> u32 {
    let total: f64 = p.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, &x) in p.iter().enumerate() {
        if u < x {
            return i as u32;
        }
        u -= x;
    }
    p.iter().rposition(|&x| x > 0.0).unwrap() as u32
}

/// `got` within `tol` of `want`, relative to `max(1, |want|)` (`tol = 0`:
/// bit-equal values; NaN is never close).
pub fn logprob_close(got: f32, want: f32, tol: f32) -> bool {
    got == want || (got - want).abs() <= tol * want.abs().max(1.0)
}

/// The state `init` after recording `tokens` (what `verify` must leave).
pub fn advanced(init: &RowState, tokens: &[u32]) -> RowState {
    let mut s = init.clone();
    for &t in tokens {
        s.record(t);
    }
    s
}

/// Row `r` of a `[B, k + 1, V]` target as `k + 1` slices.
fn positions(target: &[f32], r: usize, k: usize, v: usize) -> Vec<&[f32]> {
    (0..=k)
        .map(|j| &target[(r * (k + 1) + j) * v..(r * (k + 1) + j + 1) * v])
        .collect()
}

/// Checks the shape invariants of one row's output and that `state` is
/// `init` with exactly the emitted tokens recorded.
pub fn check_row_shape(
    what: &str,
    o: &VerifyOutput,
    drafts: &[u32],
    init: &RowState,
    state: &RowState,
) -> std::result::Result<(), String> {
    let k = drafts.len();
    let a = o.accepted as usize;
    if a > k || o.tokens.len() < a || o.tokens.len() > a + 1 {
        return Err(format!(
            "{what}: accepted {a} of k {k} with tokens {:?}",
            o.tokens
        ));
    }
    if o.status == Status::Ok && o.tokens.len() != a + 1 {
        return Err(format!(
            "{what}: status Ok must emit accepted + 1 tokens: {o:?}"
        ));
    }
    if o.status != Status::Ok && o.tokens.len() != a {
        return Err(format!(
            "{what}: status {:?} must emit only the accepted drafts: {o:?}",
            o.status
        ));
    }
    if o.tokens[..a] != drafts[..a] {
        return Err(format!(
            "{what}: accepted tokens {:?} are not the drafts {drafts:?}",
            &o.tokens[..a]
        ));
    }
    if o.logprobs.len() != o.tokens.len() {
        return Err(format!(
            "{what}: {} logprobs for {} tokens",
            o.logprobs.len(),
            o.tokens.len()
        ));
    }
    let want = advanced(init, &o.tokens);
    if *state != want {
        return Err(format!(
            "{what}: state after verify {state:?}, want the initial state plus the emitted tokens {want:?}"
        ));
    }
    Ok(())
}

/// One configuration of the rejection-sampling theorem check
/// ([`check_rejection_theorem`]).
pub struct TheoremCase {
    pub name: String,
    pub vocab: usize,
    pub k: usize,
    /// `[k + 1, V]` target logits, the same for every row.
    pub target: Vec<f32>,
    /// The rows' parameters (the seed is set per row). Without penalties,
    /// EOS or min_new_tokens, so that `p_j` does not depend on the drafts.
    pub params: SamplingParams,
    /// The step counter every row starts at.
    pub start_step: u64,
    /// `p_j` for `j = 1..=k + 1`, dense over `V`, from an oracle.
    pub p: Vec<Vec<f64>>,
    /// The distribution each draft `d_j` (`j = 1..=k`) is drawn from,
    /// dense over `V`.
    pub draft_dist: Vec<Vec<f64>>,
    /// Hand `draft_dist` to `verify` as the draft probabilities `q`;
    /// otherwise the drafts are one-hot (`probs: None`).
    pub with_probs: bool,
    /// Rows in all, and rows per `verify` call.
    pub rows: usize,
    pub chunk: usize,
    pub rng_seed: u64,
}

impl TheoremCase {
    /// `P(d_j accepted)`: `sum_i min(p_j(i), q_j(i))` with draft
    /// probabilities, `sum_d r_j(d) p_j(d)` for one-hot drafts drawn from
    /// `r_j`.
    fn beta(&self, j: usize) -> f64 {
        let (p, q) = (&self.p[j], &self.draft_dist[j]);
        if self.with_probs {
            p.iter().zip(q).map(|(a, b)| a.min(*b)).sum()
        } else {
            p.iter().zip(q).map(|(a, b)| a * b).sum()
        }
    }

    /// The exact law of the number of accepted drafts: `P(a) = prod_{j <
    /// a} beta_j (1 - beta_a)`, `P(k) = prod beta_j` (acceptances are
    /// independent: the drafts are, and `p_j` does not depend on them).
    pub fn accepted_law(&self) -> Vec<f64> {
        let mut law = vec![0.0; self.k + 1];
        let mut prefix = 1.0;
        for (a, l) in law.iter_mut().enumerate() {
            if a == self.k {
                *l = prefix;
            } else {
                let b = self.beta(a);
                *l = prefix * (1.0 - b);
                prefix *= b;
            }
        }
        law
    }
}

/// The rejection-sampling theorem: with `d_j ~ q_j`, the token emitted at
/// position `j` (by the rows that reach it) is distributed as `p_j`, and
/// the number of accepted drafts follows its exact law. Also checks every
/// row's shape and state ([`check_row_shape`]), that no emitted token has
/// `p_j = 0`, and, without draft probabilities, that a recovered token is
/// never the rejected draft.
pub fn check_rejection_theorem(
    verify: &mut VerifyFn<'_>,
    c: &TheoremCase,
) -> std::result::Result<String, String> {
    let (v, k) = (c.vocab, c.k);
    let mut rng = StdRng::seed_from_u64(c.rng_seed);
    let mut counts = vec![vec![0u64; v]; k + 1];
    let mut acc_hist = vec![0u64; k + 1];
    let q32: Vec<f32> = c
        .draft_dist
        .iter()
        .flat_map(|q| {
            let s: f64 = q.iter().sum();
            q.iter().map(move |x| (x / s) as f32)
        })
        .collect();
    let mut done = 0;
    while done < c.rows {
        let b = c.chunk.min(c.rows - done);
        let target: Vec<f32> = (0..b).flat_map(|_| c.target.iter().copied()).collect();
        let tokens: Vec<u32> = (0..b * k)
            .map(|i| draw(&mut rng, &c.draft_dist[i % k]))
            .collect();
        let probs: Vec<f32> = if c.with_probs {
            (0..b).flat_map(|_| q32.iter().copied()).collect()
        } else {
            Vec::new()
        };
        let drafts = Drafts {
            k,
            tokens: &tokens,
            probs: c.with_probs.then_some(&probs[..]),
        };
        let params: Vec<SamplingParams> = (0..b)
            .map(|r| SamplingParams {
                seed: (c.rng_seed << 32) ^ (done + r) as u64,
                ..c.params.clone()
            })
            .collect();
        let mut init = RowState::default();
        init.step = c.start_step;
        let mut states = vec![init.clone(); b];
        let out = verify(Logits::F32(&target), v, &drafts, &params, &mut states)
            .map_err(|e| format!("{}: verify failed: {e}", c.name))?;
        if out.len() != b {
            return Err(format!("{}: {} outputs for {b} rows", c.name, out.len()));
        }
        for (r, o) in out.iter().enumerate() {
            let what = format!("{} row {}", c.name, done + r);
            let d = &tokens[r * k..(r + 1) * k];
            if o.status != Status::Ok {
                return Err(format!("{what}: status {:?}", o.status));
            }
            check_row_shape(&what, o, d, &init, &states[r])?;
            let a = o.accepted as usize;
            acc_hist[a] += 1;
            for (j, &t) in o.tokens.iter().enumerate() {
                if c.p[j][t as usize] == 0.0 {
                    return Err(format!(
                        "{what}: emitted token {t} at position {} has p = 0",
                        j + 1
                    ));
                }
                counts[j][t as usize] += 1;
            }
            if a < k && !c.with_probs && o.tokens[a] == d[a] {
                return Err(format!(
                    "{what}: recovered token {} is the rejected draft",
                    d[a]
                ));
            }
        }
        done += b;
    }
    let mut summary = vec![chi2_check(
        &format!("{}: accepted count", c.name),
        &acc_hist,
        &c.accepted_law(),
    )?];
    for (j, cnt) in counts.iter().enumerate() {
        if cnt.iter().sum::<u64>() >= 200 {
            summary.push(chi2_check(
                &format!("{}: position {}", c.name, j + 1),
                cnt,
                &c.p[j],
            )?);
        }
    }
    if counts[0].iter().sum::<u64>() != c.rows as u64 {
        return Err(format!("{}: not every row emitted a first token", c.name));
    }
    Ok(summary.join("; "))
}

/// What a row of greedy rows (temperature 0) must emit: greedy decoding
/// step by step, with `sample` on each position and the drafts recorded
/// as they are accepted. Returns `(tokens, accepted, logprobs, status)`.
pub fn greedy_reference(
    sample: &mut SampleFn<'_>,
    positions: &[&[f32]],
    params: &SamplingParams,
    init: &RowState,
    drafts: &[u32],
) -> std::result::Result<(Vec<u32>, u32, Vec<f32>, Status), String> {
    let v = positions[0].len();
    let mut st = init.clone();
    let (mut tokens, mut lps) = (Vec::new(), Vec::new());
    for (j, z) in positions.iter().enumerate() {
        // Drafts 1..j were accepted to get here.
        let accepted = j as u32;
        let mut s = [st.clone()];
        let o = sample(Logits::F32(z), v, std::slice::from_ref(params), &mut s)
            .map_err(|e| format!("sample failed: {e}"))?[0];
        if o.status != Status::Ok {
            return Ok((tokens, accepted, lps, o.status));
        }
        tokens.push(o.token);
        lps.push(o.logprob);
        st.record(o.token);
        if j == drafts.len() || o.token != drafts[j] {
            return Ok((tokens, accepted, lps, Status::Ok));
        }
    }
    unreachable!("the bonus position always returns")
}

/// One draft of [`check_greedy_matches_decoding`]'s draft sets.
#[derive(Debug, Clone, Copy)]
pub enum Draft {
    /// The step-by-step greedy token at this position.
    Greedy,
    /// A token other than the greedy one: `(greedy + 1 + o % (V - 1)) % V`.
    NotGreedy(u32),
    /// This token.
    Token(u32),
}

/// Greedy verification equals greedy decoding: for each row of `target`
/// (`[B, k + 1, V]`, greedy `params`) and each of its draft sets in
/// `draft_sets` (`[B, k]` each, resolved position by position against
/// greedy decoding of the drafts before), `verify`'s tokens, accepted
/// count, status and state are those of [`greedy_reference`], and its
/// logprobs are `sample`'s within `logprob_tol`. With `with_probs`, every
/// draft also comes with a valid `q` (uniform plus mass on the draft),
/// which must not change a greedy row's result.
#[allow(clippy::too_many_arguments)]
pub fn check_greedy_matches_decoding(
    verify: &mut VerifyFn<'_>,
    sample: &mut SampleFn<'_>,
    target: &[f32],
    vocab: usize,
    k: usize,
    params: &[SamplingParams],
    init: &[RowState],
    draft_sets: &[Vec<Draft>],
    with_probs: bool,
    logprob_tol: f32,
) -> std::result::Result<String, String> {
    let b = params.len();
    let (mut rejected, mut all_accepted, mut ended) = (0, 0, 0);
    for (si, set) in draft_sets.iter().enumerate() {
        let mut tokens = vec![0u32; b * k];
        for r in 0..b {
            let pos = positions(target, r, k, vocab);
            let mut st = init[r].clone();
            for j in 0..k {
                let mut greedy = || -> std::result::Result<u32, String> {
                    let mut s = [st.clone()];
                    let o = sample(Logits::F32(pos[j]), vocab, &params[r..r + 1], &mut s)
                        .map_err(|e| format!("sample failed: {e}"))?[0];
                    Ok(if o.status == Status::Ok { o.token } else { 0 })
                };
                let d = match set[r * k + j] {
                    Draft::Greedy => greedy()?,
                    Draft::NotGreedy(o) => (greedy()? + 1 + o % (vocab as u32 - 1)) % vocab as u32,
                    Draft::Token(t) => t,
                };
                tokens[r * k + j] = d;
                st.record(d);
            }
        }
        let probs: Vec<f32> = (0..b * k)
            .flat_map(|i| {
                let d = tokens[i] as usize;
                (0..vocab).map(move |t| {
                    let u = 0.5 / vocab as f32;
                    if t == d { u + 0.5 } else { u }
                })
            })
            .collect();
        let drafts = Drafts {
            k,
            tokens: &tokens,
            probs: with_probs.then_some(&probs[..]),
        };
        let mut states = init.to_vec();
        let out = verify(Logits::F32(target), vocab, &drafts, params, &mut states)
            .map_err(|e| format!("set {si}: verify failed: {e}"))?;
        for r in 0..b {
            let what = format!("set {si} row {r}");
            let d = &tokens[r * k..(r + 1) * k];
            let pos = positions(target, r, k, vocab);
            let (want, acc, lps, status) = greedy_reference(sample, &pos, &params[r], &init[r], d)?;
            let o = &out[r];
            if o.tokens != want || o.accepted != acc || o.status != status {
                return Err(format!(
                    "{what}: verify gives {:?} (accepted {}, {:?}); greedy decoding gives {want:?} \
                     (accepted {acc}, {status:?}) for drafts {d:?}",
                    o.tokens, o.accepted, o.status
                ));
            }
            for (g, w) in o.logprobs.iter().zip(&lps) {
                if !logprob_close(*g, *w, logprob_tol) {
                    return Err(format!(
                        "{what}: logprobs {:?}, sample's {lps:?}",
                        o.logprobs
                    ));
                }
            }
            check_row_shape(&what, o, d, &init[r], &states[r])?;
            match (status, acc as usize == k) {
                (Status::Ok, true) => all_accepted += 1,
                (Status::Ok, false) => rejected += 1,
                _ => ended += 1,
            }
        }
    }
    Ok(format!(
        "{all_accepted} rows all accepted, {rejected} rejected, {ended} ended by a status"
    ))
}

/// Sampling rows whose `k` drafts are accepted with certainty (the caller
/// makes `p_j(d_j)` round to 1): `verify` emits the drafts and then
/// exactly the token and logprob `sample` gives on position `k + 1` with
/// the state advanced by the drafts. Returns, besides the summary, how
/// many rows would differ had the state not been advanced (or advanced in
/// the step only), so the caller can insist that the data tells them
/// apart.
#[allow(clippy::too_many_arguments)]
pub fn check_bonus_after_accepted_drafts(
    verify: &mut VerifyFn<'_>,
    sample: &mut SampleFn<'_>,
    target: &[f32],
    vocab: usize,
    k: usize,
    tokens: &[u32],
    params: &[SamplingParams],
    init: &[RowState],
    logprob_tol: f32,
) -> std::result::Result<(String, usize, usize), String> {
    let b = params.len();
    let drafts = Drafts {
        k,
        tokens,
        probs: None,
    };
    let mut states = init.to_vec();
    let out = verify(Logits::F32(target), vocab, &drafts, params, &mut states)
        .map_err(|e| format!("verify failed: {e}"))?;
    let (mut unadvanced_differs, mut step_only_differs) = (0, 0);
    for r in 0..b {
        let what = format!("row {r}");
        let d = &tokens[r * k..(r + 1) * k];
        let o = &out[r];
        check_row_shape(&what, o, d, &init[r], &states[r])?;
        if o.accepted as usize != k || o.status != Status::Ok {
            return Err(format!(
                "{what}: the drafts {d:?} should all be accepted: {o:?}"
            ));
        }
        let bonus = &target[(r * (k + 1) + k) * vocab..(r * (k + 1) + k + 1) * vocab];
        let mut run = |st: RowState| -> std::result::Result<RowOutput, String> {
            let mut s = [st];
            Ok(sample(Logits::F32(bonus), vocab, &params[r..r + 1], &mut s)
                .map_err(|e| format!("sample failed: {e}"))?[0])
        };
        let want = run(advanced(&init[r], d))?;
        if want.status != Status::Ok || o.tokens[k] != want.token {
            return Err(format!(
                "{what}: bonus token {} but sample on position k + 1 gives {want:?}",
                o.tokens[k]
            ));
        }
        if !logprob_close(o.logprobs[k], want.logprob, logprob_tol) {
            return Err(format!(
                "{what}: bonus logprob {}, sample's {}",
                o.logprobs[k], want.logprob
            ));
        }
        if run(init[r].clone())?.token != want.token {
            unadvanced_differs += 1;
        }
        let mut step_only = init[r].clone();
        step_only.step += k as u64;
        if run(step_only)?.token != want.token {
            step_only_differs += 1;
        }
    }
    Ok((
        format!("{b} bonus tokens equal sample's"),
        unadvanced_differs,
        step_only_differs,
    ))
}

/// Every output row of one `verify` call: shape and state
/// ([`check_row_shape`]), and, for rows without draft probabilities, a
/// recovered token that is never the rejected draft. Returns (rows
/// rejected, rows all accepted, rows ended by a status).
pub fn check_outputs(
    what: &str,
    out: &[VerifyOutput],
    tokens: &[u32],
    k: usize,
    with_probs: bool,
    init: &[RowState],
    states: &[RowState],
) -> std::result::Result<(usize, usize, usize), String> {
    let (mut rej, mut all, mut ended) = (0, 0, 0);
    if out.len() != init.len() {
        return Err(format!(
            "{what}: {} outputs for {} rows",
            out.len(),
            init.len()
        ));
    }
    for (r, o) in out.iter().enumerate() {
        let d = &tokens[r * k..(r + 1) * k];
        let w = format!("{what} row {r}");
        check_row_shape(&w, o, d, &init[r], &states[r])?;
        let a = o.accepted as usize;
        if o.status != Status::Ok {
            ended += 1;
        } else if a == k {
            all += 1;
        } else {
            rej += 1;
            if !with_probs && o.tokens[a] == d[a] {
                return Err(format!(
                    "{w}: recovered token {} is the rejected draft",
                    d[a]
                ));
            }
        }
    }
    Ok((rej, all, ended))
}

/// Bad inputs are errors that name the problem, and nothing runs: on a
/// valid 2-row, `V = 8`, `k = 2` verification (checked to succeed first),
/// each of k = 0, a drafts length mismatch, a target length mismatch, a
/// draft token `>= V`, a `q` length mismatch, a `q` row summing to 0.99,
/// a draft token at probability 0, NaN and negative `q` entries, and a
/// states length mismatch, is an `Err` whose message holds the given
/// words, and leaves the states as they were.
pub fn check_bad_inputs(verify: &mut VerifyFn<'_>) -> std::result::Result<String, String> {
    let (b, v, k) = (2usize, 8usize, 2usize);
    let target: Vec<f32> = (0..b * (k + 1) * v).map(|i| (i % 7) as f32 * 0.3).collect();
    let tokens = vec![1u32, 2, 3, 4];
    let q: Vec<f32> = vec![1.0 / v as f32; b * k * v];
    let params = vec![SamplingParams::default(); b];
    let init: Vec<RowState> = (0..b)
        .map(|r| {
            let mut s = RowState::with_output(&[1, 2], &[3]);
            s.step = 5 + r as u64;
            s
        })
        .collect();
    let ok = Drafts {
        k,
        tokens: &tokens,
        probs: Some(&q),
    };
    let mut st = init.clone();
    verify(Logits::F32(&target), v, &ok, &params, &mut st)
        .map_err(|e| format!("the valid base case failed: {e}"))?;

    let with_q = |f: &dyn Fn(&mut Vec<f32>)| {
        let mut q = q.clone();
        f(&mut q);
        q
    };
    let q_short = q[..q.len() - 1].to_vec();
    let q_099 = with_q(&|q| {
        for x in &mut q[v..2 * v] {
            *x *= 0.99;
        }
    });
    let q_zero = with_q(&|q| {
        // Row 1, position 1: draft token 3 at probability 0, the rest
        // renormalised.
        for (t, x) in q[2 * v..3 * v].iter_mut().enumerate() {
            *x = if t == 3 { 0.0 } else { 1.0 / (v - 1) as f32 };
        }
    });
    let q_nan = with_q(&|q| q[5] = f32::NAN);
    let q_neg = with_q(&|q| {
        q[v + 1] = -0.5;
        q[v + 2] += 0.5;
    });
    let bad_token = vec![1u32, 2, 3, v as u32];
    let short_tokens = vec![1u32, 2, 3];
    let cases: Vec<(&str, Drafts<'_>, usize, usize, &[&str])> = vec![
        (
            "k = 0",
            Drafts {
                k: 0,
                tokens: &[],
                probs: None,
            },
            b * v,
            b,
            &["k = 0"],
        ),
        (
            "drafts length",
            Drafts {
                k,
                tokens: &short_tokens,
                probs: None,
            },
            target.len(),
            b,
            &["3 draft tokens", "batch 2 x k 2"],
        ),
        ("target length", ok, target.len() - 1, b, &["target", "47"]),
        (
            "draft token >= V",
            Drafts {
                k,
                tokens: &bad_token,
                probs: None,
            },
            target.len(),
            b,
            &["row 1", "draft token 8", "not a token id"],
        ),
        (
            "q length",
            Drafts {
                k,
                tokens: &tokens,
                probs: Some(&q_short),
            },
            target.len(),
            b,
            &[
                "draft probabilities hold 31 values",
                "expected batch 2 x k 2 x vocab 8",
            ],
        ),
        (
            "q sums to 0.99",
            Drafts {
                k,
                tokens: &tokens,
                probs: Some(&q_099),
            },
            target.len(),
            b,
            &["row 0", "position 2", "sum to 0.9"],
        ),
        (
            "draft token at q = 0",
            Drafts {
                k,
                tokens: &tokens,
                probs: Some(&q_zero),
            },
            target.len(),
            b,
            &["row 1", "draft token 3", "position 1", "probability 0"],
        ),
        (
            "NaN in q",
            Drafts {
                k,
                tokens: &tokens,
                probs: Some(&q_nan),
            },
            target.len(),
            b,
            &["row 0", "NaN", "token 5"],
        ),
        (
            "negative q",
            Drafts {
                k,
                tokens: &tokens,
                probs: Some(&q_neg),
            },
            target.len(),
            b,
            &["row 0", "position 2", "-0.5", ">= 0"],
        ),
        ("states length", ok, target.len(), b - 1, &["states"]),
    ];
    let n = cases.len();
    for (name, drafts, len, nstates, words) in cases {
        let mut st = init.clone();
        let res = verify(
            Logits::F32(&target[..len]),
            v,
            &drafts,
            &params,
            &mut st[..nstates],
        );
        match res {
            Ok(_) => return Err(format!("{name}: verify succeeded")),
            Err(e) => {
                let msg = e.to_string();
                if let Some(w) = words.iter().find(|w| !msg.contains(**w)) {
                    return Err(format!("{name}: the error {msg:?} does not say {w:?}"));
                }
            }
        }
        if st != init {
            return Err(format!("{name}: the states changed on an error: {st:?}"));
        }
    }
    Ok(format!("{n} bad inputs rejected"))
}
