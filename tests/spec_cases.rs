//! Explicit edge cases of SPEC.md with the expected answers worked out by
//! hand in the comments (exp/ln values from a pocket calculator, not from
//! the code under test), run on both backends through `support::Backend`:
//! the CPU sampler and the GPU sampler (on whatever adapter `open_device`
//! finds; lavapipe here and in CI; without one the tests fail with the
//! install hint, they never skip). Each backend is checked against the
//! hand-worked answer, never against the other backend.
//!
//! Each case is also put to the naive oracle (tests/oracle), so the oracle
//! is checked against the same answers.
//!
//! What each backend is checked on: tokens, logprobs and statuses, the
//! state after the step (SPEC step 12; on the GPU the state the shaders
//! wrote, read back), validation errors, and for the hand-worked filtered
//! distributions the tokens drawn over many seeds: only the surviving
//! tokens, each of them, with frequencies that fit the hand-worked
//! probabilities (chi-square). The distribution itself (exact probabilities
//! within 1e-5) is checked on the CPU only: `filtered_distribution` is a
//! CPU API, the GPU has no such output.

mod oracle;
mod support;

use oracle::{OracleState, chi2_merged, chi2_quantile, oracle_row};
use support::{Backend, both_backends};
use wgsample::{
    Distribution, Logits, NO_TOKEN, RowOutput, RowState, SamplingParams, Status,
    filtered_distribution,
};

const NEG_INF: f32 = f32::NEG_INFINITY;

/// Seeds drawn per filtered distribution (the rarest hand-worked survivor
/// has p = 0.0117: about 12 draws expected).
const DIST_SEEDS: u64 = 1000;
/// Rows per call when drawing over seeds.
const SEED_BATCH: u64 = 500;
/// Standard-normal quantile of the chi-square bound (1 - 1e-4: about twenty
/// distributions are checked, with fixed seeds).
const CHI2_Z: f64 = 3.719016;

type Backends = [Box<dyn Backend>; 2];

fn greedy() -> SamplingParams {
    SamplingParams::greedy()
}

fn ostate(st: &RowState) -> OracleState {
    OracleState::from_row_state(st)
}

/// Samples a batch of rows that share `vocab` on `b`; returns outputs and
/// states.
fn sample(
    b: &mut dyn Backend,
    vocab: usize,
    rows: &[(&[f32], SamplingParams, RowState)],
) -> (Vec<RowOutput>, Vec<RowState>) {
    let flat: Vec<f32> = rows.iter().flat_map(|r| r.0.iter().copied()).collect();
    let params: Vec<SamplingParams> = rows.iter().map(|r| r.1.clone()).collect();
    let mut states: Vec<RowState> = rows.iter().map(|r| r.2.clone()).collect();
    let out = b
        .sample(Logits::F32(&flat), vocab, &params, &mut states)
        .unwrap_or_else(|e| panic!("{}: sample failed: {e}", b.name()));
    assert_eq!(out.len(), rows.len(), "{}", b.name());
    (out, states)
}

fn one(
    b: &mut dyn Backend,
    logits: &[f32],
    p: SamplingParams,
    st: RowState,
) -> (RowOutput, RowState) {
    let (o, s) = sample(b, logits.len(), &[(logits, p, st)]);
    (o[0], s[0].clone())
}

fn dist(logits: &[f32], p: &SamplingParams, st: &RowState) -> Distribution {
    filtered_distribution(Logits::F32(logits), p, st).expect("filtered_distribution failed")
}

fn assert_no_token(b: &str, o: &RowOutput, status: Status) {
    assert_eq!(o.status, status, "{b}: {o:?}");
    assert_eq!(o.token, NO_TOKEN, "{b}: {o:?}");
    assert!(o.logprob.is_nan(), "{b}: {o:?}");
}

fn assert_close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: got {a}, want {b}");
}

/// Checks a token, its logprob and that the state was recorded, on the
/// oracle and on both backends.
fn check_greedy(
    bs: &mut Backends,
    logits: &[f32],
    p: SamplingParams,
    st: RowState,
    token: u32,
    logprob: f64,
) {
    let o = oracle_row(logits, &p, &ostate(&st));
    assert_eq!((o.status, o.token), (Status::Ok, token), "oracle: {o:?}");
    assert_close(o.logprob, logprob, 1e-6, "oracle logprob");

    let mut want = st.clone();
    want.record(token);
    for b in bs.iter_mut() {
        let b = b.as_mut();
        let name = b.name();
        let (out, after) = one(b, logits, p.clone(), st.clone());
        assert_eq!(out.status, Status::Ok, "{name}: {out:?}");
        assert_eq!(out.token, token, "{name}: {out:?}");
        assert_close(
            out.logprob as f64,
            logprob,
            1e-5,
            &format!("{name} logprob"),
        );
        assert_eq!(after, want, "{name}: state not recorded");
    }
}

/// Samples the row from state `st` with seeds 0..n (batches of
/// [`SEED_BATCH`] rows) on `b`, checks every row's status and state update,
/// and returns the tokens.
fn tokens_over_seeds(
    b: &mut dyn Backend,
    logits: &[f32],
    p: &SamplingParams,
    st: &RowState,
    n: u64,
) -> Vec<u32> {
    let name = b.name();
    let mut tokens = Vec::new();
    for first in (0..n).step_by(SEED_BATCH as usize) {
        let rows: Vec<(&[f32], SamplingParams, RowState)> = (first..n.min(first + SEED_BATCH))
            .map(|s| {
                let mut q = p.clone();
                q.seed = s;
                (logits, q, st.clone())
            })
            .collect();
        let (out, after) = sample(b, logits.len(), &rows);
        for (o, a) in out.iter().zip(&after) {
            assert_eq!(o.status, Status::Ok, "{name}: {o:?}");
            let mut want = st.clone();
            want.record(o.token);
            assert_eq!(*a, want, "{name}: state not recorded");
            tokens.push(o.token);
        }
    }
    tokens
}

/// Checks a hand-worked filtered distribution (tokens in order, probs):
/// exactly (within 1e-5) on the oracle and on the CPU's
/// `filtered_distribution`; on both backends through the tokens drawn over
/// [`DIST_SEEDS`] seeds (only `tokens`, every one of them, frequencies that
/// fit `probs`).
fn check_dist(
    bs: &mut Backends,
    logits: &[f32],
    p: &SamplingParams,
    st: &RowState,
    tokens: &[u32],
    probs: &[f64],
) {
    let o = oracle_row(logits, p, &ostate(st));
    assert_eq!(o.dist_tokens, tokens, "oracle dist: {o:?}");
    for (a, b) in o.dist_probs.iter().zip(probs) {
        assert_close(*a, *b, 1e-6, "oracle dist prob");
    }
    // CPU only: the GPU has no filtered-distribution output.
    let d = dist(logits, p, st);
    assert_eq!(d.status, Status::Ok);
    assert_eq!(d.tokens, tokens, "cpu dist: {d:?}");
    assert_eq!(d.probs.len(), probs.len(), "cpu dist: {d:?}");
    for (a, b) in d.probs.iter().zip(probs) {
        assert_close(*a as f64, *b, 1e-5, "cpu dist prob");
    }
    for b in bs.iter_mut() {
        let b = b.as_mut();
        let name = b.name();
        let drawn = tokens_over_seeds(b, logits, p, st, DIST_SEEDS);
        let observed: Vec<u64> = tokens
            .iter()
            .map(|t| drawn.iter().filter(|&d| d == t).count() as u64)
            .collect();
        let mut outside: Vec<u32> = drawn
            .iter()
            .copied()
            .filter(|d| !tokens.contains(d))
            .collect();
        outside.sort_unstable();
        outside.dedup();
        assert!(
            outside.is_empty(),
            "{name}: tokens {outside:?} drawn, outside the surviving {tokens:?}"
        );
        for (t, &c) in tokens.iter().zip(&observed) {
            assert!(c > 0, "{name}: token {t} never drawn in {DIST_SEEDS} seeds");
        }
        let expected: Vec<f64> = probs.iter().map(|q| q * DIST_SEEDS as f64).collect();
        let (stat, df) = chi2_merged(&observed, &expected);
        if df > 0 {
            let q = chi2_quantile(df as f64, CHI2_Z);
            assert!(
                stat < q,
                "{name}: counts {observed:?} for {tokens:?} do not fit {probs:?}: \
                 chi-square {stat:.1} >= {q:.1} (df {df})"
            );
        }
    }
}

// ---------------------------------------------------------------- statuses

#[test]
fn all_masked_rows_have_no_candidates() {
    let mut bs = both_backends();
    let z = [1.0f32, 2.0, 3.0, 4.0];
    let banned_all = SamplingParams {
        banned_tokens: vec![0, 1, 2, 3],
        ..Default::default()
    };
    let mask_none = SamplingParams {
        allowed_tokens: Some(vec![0]), // ceil(4/32) = 1 word, no bit set
        ..Default::default()
    };
    let all_ninf = [NEG_INF; 4];
    // Token 2 is the only finite one and it is an EOS id masked while
    // n = 0 < min_new_tokens = 1.
    let only_eos = [NEG_INF, NEG_INF, 0.5, NEG_INF];
    let eos = SamplingParams {
        eos_token_ids: vec![2],
        min_new_tokens: 1,
        ..greedy()
    };
    // Row 4 is fine: greedy argmax of [1, 2, 3, 4] is token 3,
    // logprob = 4 - ln(e + e^2 + e^3 + e^4) = -0.4401896985.
    let st = RowState::with_output(&[1], &[2, 3]);
    let rows: Vec<(&[f32], SamplingParams, RowState)> = vec![
        (&z, banned_all.clone(), st.clone()),
        (&z, mask_none.clone(), st.clone()),
        (&all_ninf, SamplingParams::default(), st.clone()),
        (&only_eos, eos.clone(), RowState::default()),
        (&z, greedy(), st.clone()),
    ];
    for (r, (l, p, s)) in rows.iter().enumerate() {
        let o = oracle_row(l, p, &ostate(s));
        let want = if r == 4 {
            Status::Ok
        } else {
            Status::NoCandidates
        };
        assert_eq!(o.status, want, "oracle {o:?}");
    }
    // CPU only: the filtered distribution of the empty rows is empty.
    for (l, p, s) in &rows[..4] {
        let d = dist(l, p, s);
        assert_eq!(d.status, Status::NoCandidates);
        assert!(d.tokens.is_empty() && d.probs.is_empty(), "{d:?}");
    }
    let mut want = st.clone();
    want.record(3);
    for b in bs.iter_mut() {
        let b = b.as_mut();
        let name = b.name();
        let (out, states) = sample(b, 4, &rows);
        for r in 0..4 {
            assert_no_token(name, &out[r], Status::NoCandidates);
            assert_eq!(
                states[r], rows[r].2,
                "{name} row {r}: state changed without a token"
            );
        }
        assert_eq!(out[4].status, Status::Ok, "{name}");
        assert_eq!(out[4].token, 3, "{name}");
        let what = format!("{name} row 4 logprob");
        assert_close(out[4].logprob as f64, -0.4401896985, 1e-5, &what);
        assert_eq!(states[4], want, "{name}");
    }
}

#[test]
fn nan_and_inf_rows_are_invalid_others_fine() {
    let mut bs = both_backends();
    let nan_row = [0.0f32, f32::NAN, 1.0];
    let inf_row = [f32::INFINITY, 0.0, 0.0];
    // NaN at a banned position: the input check (step 1) comes before masks.
    let nan_banned = [f32::NAN, 1.0, 2.0];
    let ban0 = SamplingParams {
        banned_tokens: vec![0],
        ..Default::default()
    };
    // Greedy on [0, 5, 1] -> token 1,
    // logprob = 5 - ln(1 + e^5 + e) = 5 - ln(152.1314) = -0.0247448901.
    let good = [0.0f32, 5.0, 1.0];
    let st = RowState::new(&[0]);
    let rows: Vec<(&[f32], SamplingParams, RowState)> = vec![
        (&nan_row, SamplingParams::default(), st.clone()),
        (&inf_row, greedy(), st.clone()),
        (&good, greedy(), st.clone()),
        (&nan_banned, ban0.clone(), st.clone()),
    ];
    for (r, (l, p, s)) in rows.iter().enumerate() {
        let o = oracle_row(l, p, &ostate(s));
        let want = if r == 2 {
            Status::Ok
        } else {
            Status::InvalidLogits
        };
        assert_eq!(o.status, want, "oracle row {r}");
    }
    // CPU only: no filtered distribution for the invalid rows.
    for r in [0, 1, 3] {
        let d = dist(rows[r].0, &rows[r].1, &rows[r].2);
        assert_eq!(d.status, Status::InvalidLogits);
        assert!(d.tokens.is_empty());
    }
    let mut want = st.clone();
    want.record(1);
    // The same with half-precision inputs: f16 has NaN and inf too.
    let h: Vec<half::f16> = [0.0f32, f32::NAN, 1.0, 0.0, 5.0, 1.0]
        .iter()
        .map(|&x| half::f16::from_f32(x))
        .collect();
    for b in bs.iter_mut() {
        let b = b.as_mut();
        let name = b.name();
        let (out, states) = sample(b, 3, &rows);
        for r in [0, 1, 3] {
            assert_no_token(name, &out[r], Status::InvalidLogits);
            assert_eq!(states[r], st, "{name} row {r}: state changed");
        }
        assert_eq!((out[2].status, out[2].token), (Status::Ok, 1), "{name}");
        let what = format!("{name} good row logprob");
        assert_close(out[2].logprob as f64, -0.0247448901, 1e-5, &what);
        assert_eq!(states[2], want, "{name}");

        let mut st2 = vec![RowState::default(), RowState::default()];
        let out = b
            .sample(Logits::F16(&h), 3, &[greedy(), greedy()], &mut st2)
            .unwrap();
        assert_no_token(name, &out[0], Status::InvalidLogits);
        assert_eq!((out[1].status, out[1].token), (Status::Ok, 1), "{name}");
    }
}

#[test]
fn neg_inf_entries_are_legal() {
    let mut bs = both_backends();
    // Greedy on [-inf, 1, -inf, 0.5] -> token 1,
    // logprob = 1 - ln(e + e^0.5) = 1 - ln(4.367003) = -0.4740769842.
    let z = [NEG_INF, 1.0, NEG_INF, 0.5];
    check_greedy(&mut bs, &z, greedy(), RowState::default(), 1, -0.4740769842);
    // Sampling at T = 1: only tokens 1 and 3 survive, with
    // p = e/(e + e^0.5) = 1/(1 + e^-0.5) = 0.6224593312 and 0.3775406688.
    let p = SamplingParams::default();
    check_dist(
        &mut bs,
        &z,
        &p,
        &RowState::default(),
        &[1, 3],
        &[0.6224593312, 0.3775406688],
    );
    for b in bs.iter_mut() {
        let toks = tokens_over_seeds(b.as_mut(), &z, &p, &RowState::default(), 300);
        assert!(toks.iter().all(|&t| t == 1 || t == 3), "{toks:?}");
        assert!(toks.contains(&1) && toks.contains(&3));
    }
}

// ---------------------------------------------------------------- greedy

#[test]
fn greedy_ties_pick_lowest_index() {
    let mut bs = both_backends();
    // [1, 3, 3, 2]: max 3 at tokens 1 and 2 -> token 1;
    // logprob = 3 - ln(e + 2e^3 + e^2) = 3 - ln(50.278412) = -0.9175758.
    check_greedy(
        &mut bs,
        &[1.0, 3.0, 3.0, 2.0],
        greedy(),
        RowState::default(),
        1,
        -0.9175757956,
    );
    // [5, 5, 5] -> token 0, logprob = ln(1/3) = -1.0986122887.
    check_greedy(
        &mut bs,
        &[5.0, 5.0, 5.0],
        greedy(),
        RowState::default(),
        0,
        -1.0986122887,
    );
    // The tie can come from the penalty: [2, 4, 2] with token 1 in the prompt
    // and r = 2 -> [2, 2, 2] -> token 0; logprob under the raw row
    // = 2 - ln(2e^2 + e^4) = 2 - ln(69.376262) = -2.2395448.
    let p = SamplingParams {
        repetition_penalty: 2.0,
        ..greedy()
    };
    check_greedy(
        &mut bs,
        &[2.0, 4.0, 2.0],
        p,
        RowState::new(&[1]),
        0,
        -2.2395448,
    );
}

#[test]
fn logprob_is_under_raw_logits() {
    let mut bs = both_backends();
    // [0, 0] with bias +10 on token 1: greedy picks 1, but the logprob is
    // taken from the raw row: ln(1/2) = -0.6931471806.
    let p = SamplingParams {
        logit_bias: vec![(1, 10.0)],
        ..greedy()
    };
    check_greedy(
        &mut bs,
        &[0.0, 0.0],
        p,
        RowState::default(),
        1,
        -std::f64::consts::LN_2,
    );
}

#[test]
fn tiny_temperature_is_nearly_greedy() {
    let mut bs = both_backends();
    // [0, 1] at T = 0.01 -> z = [0, 100]; Gumbel values lie in about
    // [-2.8, 16.7] for u in [2^-24, 1 - 2^-24], so token 1 always wins.
    let p = SamplingParams {
        temperature: 0.01,
        ..Default::default()
    };
    for b in bs.iter_mut() {
        let name = b.name();
        let toks = tokens_over_seeds(b.as_mut(), &[0.0, 1.0], &p, &RowState::default(), 500);
        assert!(toks.iter().all(|&t| t == 1), "{name}: {toks:?}");
    }
}

// ---------------------------------------------------------------- top-k

#[test]
fn top_k_keeps_ties_at_the_boundary() {
    let mut bs = both_backends();
    // [1, 3, 3, 3, 0], k = 2: the 2nd largest is 3 -> keep z >= 3, i.e. tokens
    // 1, 2, 3 (three tokens for k = 2), each with p = 1/3.
    let z = [1.0f32, 3.0, 3.0, 3.0, 0.0];
    let third = 1.0 / 3.0;
    for k in [1, 2, 3] {
        let p = SamplingParams {
            top_k: k,
            ..Default::default()
        };
        check_dist(
            &mut bs,
            &z,
            &p,
            &RowState::default(),
            &[1, 2, 3],
            &[third; 3],
        );
    }
    let p = SamplingParams {
        top_k: 2,
        ..Default::default()
    };
    for b in bs.iter_mut() {
        let name = b.name();
        let toks = tokens_over_seeds(b.as_mut(), &z, &p, &RowState::default(), 300);
        assert!(
            toks.iter().all(|t| [1, 2, 3].contains(t)),
            "{name}: {toks:?}"
        );
        for t in [1, 2, 3] {
            assert!(toks.contains(&t), "{name}: token {t} never drawn: {toks:?}");
        }
    }
    // k = 4: the 4th largest is 1 -> tokens 1, 2, 3, 0 with e^3, e^3, e^3, e
    // over 3e^3 + e = 62.974893: [0.3189452, 0.3189452, 0.3189452, 0.0431645].
    let p = SamplingParams {
        top_k: 4,
        ..Default::default()
    };
    check_dist(
        &mut bs,
        &z,
        &p,
        &RowState::default(),
        &[1, 2, 3, 0],
        &[0.3189452, 0.3189452, 0.3189452, 0.0431645],
    );
}

#[test]
fn top_k_at_or_above_vocab_is_off() {
    let mut bs = both_backends();
    // softmax([0, 1, 2, 3, 4]): e^i / 85.79097 =
    // [0.0116562, 0.0316849, 0.0861285, 0.2341217, 0.6364086].
    let z = [0.0f32, 1.0, 2.0, 3.0, 4.0];
    let all = [0.6364086, 0.2341217, 0.0861285, 0.0316849, 0.0116562];
    for k in [5, 6, 1000, u32::MAX] {
        let p = SamplingParams {
            top_k: k,
            ..Default::default()
        };
        check_dist(
            &mut bs,
            &z,
            &p,
            &RowState::default(),
            &[4, 3, 2, 1, 0],
            &all,
        );
    }
    // k = 4 drops token 0: e^i / (e + e^2 + e^3 + e^4 = 84.79097) =
    // [0.0320586, 0.0871443, 0.2368828, 0.6439143] for i = 1..4.
    let p = SamplingParams {
        top_k: 4,
        ..Default::default()
    };
    check_dist(
        &mut bs,
        &z,
        &p,
        &RowState::default(),
        &[4, 3, 2, 1],
        &[0.6439143, 0.2368828, 0.0871443, 0.0320586],
    );
}

// ---------------------------------------------------------------- top-p

#[test]
fn top_p_keeps_ties() {
    let mut bs = both_backends();
    // softmax([2, 1, 1, 0]) = [0.5344466, 0.1966119, 0.1966119, 0.0723295].
    // top_p = 0.6: running mass 0.534 < 0.6, then 0.731 >= 0.6 at token 1,
    // t = 0.1966 -> keep p >= t: tokens 0, 1, 2 (the tie with token 2 kept).
    // Renormalised: e^2/(e^2 + 2e) = 0.5761169, e/(e^2 + 2e) = 0.2119416.
    let z = [2.0f32, 1.0, 1.0, 0.0];
    let p = SamplingParams {
        top_p: 0.6,
        ..Default::default()
    };
    check_dist(
        &mut bs,
        &z,
        &p,
        &RowState::default(),
        &[0, 1, 2],
        &[0.5761169, 0.2119416, 0.2119416],
    );
    for b in bs.iter_mut() {
        let name = b.name();
        let toks = tokens_over_seeds(b.as_mut(), &z, &p, &RowState::default(), 300);
        assert!(toks.iter().all(|&t| t != 3), "{name}: {toks:?}");
    }
    // top_p = 0.5: the first token already reaches it -> only token 0.
    let p = SamplingParams {
        top_p: 0.5,
        ..Default::default()
    };
    check_dist(&mut bs, &z, &p, &RowState::default(), &[0], &[1.0]);
    // A tiny top_p keeps the whole top tie: [1, 3, 3] -> tokens 1, 2.
    let p = SamplingParams {
        top_p: 1e-6,
        ..Default::default()
    };
    check_dist(
        &mut bs,
        &[1.0, 3.0, 3.0],
        &p,
        &RowState::default(),
        &[1, 2],
        &[0.5, 0.5],
    );
    // top_p = 0.95 on the first row: masses 0.534, 0.731, 0.928, 1.0 ->
    // reaches 0.95 only at token 3: everything kept.
    let p = SamplingParams {
        top_p: 0.95,
        ..Default::default()
    };
    check_dist(
        &mut bs,
        &z,
        &p,
        &RowState::default(),
        &[0, 1, 2, 3],
        &[0.5344466, 0.1966119, 0.1966119, 0.0723295],
    );
}

// ---------------------------------------------------------------- min-p

#[test]
fn min_p_keeps_relative_mass_after_temperature() {
    let mut bs = both_backends();
    // [2, 1, 0, -1], min_p = 0.3: threshold 2 + ln 0.3 = 0.7960272 -> keep
    // tokens 0 and 1 (p1/p0 = e^-1 = 0.368 >= 0.3, p2/p0 = e^-2 = 0.135 < 0.3).
    // Renormalised: 1/(1 + e^-1) = 0.7310586, 0.2689414.
    let z = [2.0f32, 1.0, 0.0, -1.0];
    let p = SamplingParams {
        min_p: 0.3,
        ..Default::default()
    };
    check_dist(
        &mut bs,
        &z,
        &p,
        &RowState::default(),
        &[0, 1],
        &[0.7310586, 0.2689414],
    );
    // At T = 2: z/T = [1, 0.5, 0, -0.5], threshold 1 + ln 0.3 = -0.2039728 ->
    // keep 0, 1, 2 with e, e^0.5, 1 over 5.367003 =
    // [0.5064804, 0.3071959, 0.1863237].
    let p = SamplingParams {
        min_p: 0.3,
        temperature: 2.0,
        ..Default::default()
    };
    check_dist(
        &mut bs,
        &z,
        &p,
        &RowState::default(),
        &[0, 1, 2],
        &[0.5064804, 0.3071959, 0.1863237],
    );
}

// ---------------------------------------------------------------- penalties

#[test]
fn repetition_penalty_divides_positive_multiplies_negative_once() {
    let mut bs = both_backends();
    // [2, -1, 1, 0.5], prompt {0}, output [1, 1], r = 2:
    // token 0: 2 > 0 -> 2/2 = 1; token 1: -1 <= 0 -> -1*2 = -2 (once, even
    // though it was generated twice); tokens 2, 3 untouched -> [1, -2, 1, 0.5].
    // softmax: e, e^-2, e, e^0.5 over 7.2206 =
    // [0.3764610, 0.0187429, 0.3764610, 0.2283351]; order 0, 2, 3, 1.
    let z = [2.0f32, -1.0, 1.0, 0.5];
    let p = SamplingParams {
        repetition_penalty: 2.0,
        ..Default::default()
    };
    let st = RowState::with_output(&[0], &[1, 1]);
    check_dist(
        &mut bs,
        &z,
        &p,
        &st,
        &[0, 2, 3, 1],
        &[0.3764610, 0.3764610, 0.2283351, 0.0187429],
    );
    // Once per token even when it is in both prompt and output: [3, 2],
    // prompt {0}, output [0, 0], r = 1.4: 3/1.4 = 2.142857 > 2 -> greedy 0
    // (per occurrence it would be 3/1.4^3 = 1.09 -> token 1).
    // logprob = 3 - ln(e^3 + e^2) = -0.3132616875.
    let p = SamplingParams {
        repetition_penalty: 1.4,
        ..greedy()
    };
    check_greedy(
        &mut bs,
        &[3.0, 2.0],
        p,
        RowState::with_output(&[0], &[0, 0]),
        0,
        -0.3132616875,
    );
}

#[test]
fn presence_and_frequency_penalties() {
    let mut bs = both_backends();
    // [1, 1, 1, 0], output [0, 0, 1] (c0 = 2, c1 = 1), prompt {2} (prompt
    // does not count for these), f = 0.5, q = 0.25:
    // z0 = 1 - (0.5*2 + 0.25) = -0.25, z1 = 1 - (0.5 + 0.25) = 0.25,
    // z2 = 1, z3 = 0. softmax: e^-0.25, e^0.25, e, 1 over 5.781108 =
    // [0.1347148, 0.2221071, 0.4702008, 0.1729772]; order 2, 1, 3, 0.
    let z = [1.0f32, 1.0, 1.0, 0.0];
    let st = RowState::with_output(&[2], &[0, 0, 1]);
    let p = SamplingParams {
        frequency_penalty: 0.5,
        presence_penalty: 0.25,
        ..Default::default()
    };
    check_dist(
        &mut bs,
        &z,
        &p,
        &st,
        &[2, 1, 3, 0],
        &[0.4702008, 0.2221071, 0.1729772, 0.1347148],
    );
    // Greedy picks token 2; logprob under the raw row [1, 1, 1, 0]:
    // 1 - ln(3e + 1) = 1 - ln(9.154845) = 1 - 2.2142833 = -1.2142833.
    let p = SamplingParams {
        frequency_penalty: 0.5,
        presence_penalty: 0.25,
        ..greedy()
    };
    check_greedy(&mut bs, &z, p, st.clone(), 2, -1.2142833);
    // A negative presence penalty raises: q = -2 on [0, 1] with output [0]
    // -> z0 = 0 + 2 = 2 > 1 -> greedy 0; logprob = 0 - ln(1 + e) = -1.3132617.
    let p = SamplingParams {
        presence_penalty: -2.0,
        ..greedy()
    };
    check_greedy(
        &mut bs,
        &[0.0, 1.0],
        p,
        RowState::with_output(&[], &[0]),
        0,
        -1.3132617,
    );
}

#[test]
fn bias_comes_before_penalties() {
    let mut bs = both_backends();
    // [1, 0], bias -2 on token 0, prompt {0}, r = 2: bias first gives
    // 1 - 2 = -1, then -1 * 2 = -2 -> softmax([-2, 0]) = [0.1192029, 0.8807971]
    // (penalty first would give 1/2 - 2 = -1.5 -> 0.1824255).
    let p = SamplingParams {
        logit_bias: vec![(0, -2.0)],
        repetition_penalty: 2.0,
        ..Default::default()
    };
    check_dist(
        &mut bs,
        &[1.0, 0.0],
        &p,
        &RowState::new(&[0]),
        &[1, 0],
        &[0.8807971, 0.1192029],
    );
}

#[test]
fn allowed_mask_and_banned() {
    let mut bs = both_backends();
    // 40 tokens with z_i = i/10: the max (39) is not allowed; allowed {3, 33}
    // -> greedy 33. Mask: word 0 = 1 << 3, word 1 = 1 << (33 - 32) = 2.
    let z: Vec<f32> = (0..40).map(|i| i as f32 / 10.0).collect();
    // logprob = 3.3 - ln(sum_i e^(i/10)), sum = (e^4 - 1)/(e^0.1 - 1)
    // = 53.59815/0.1051709 = 509.62900 -> 3.3 - 6.2336830 = -2.9336830.
    let p = SamplingParams {
        allowed_tokens: Some(vec![1 << 3, 2]),
        ..greedy()
    };
    let o = oracle_row(&z, &p, &OracleState::default());
    assert_eq!(o.token, 33);
    // Banning 33 as well leaves token 3.
    let banned = SamplingParams {
        banned_tokens: vec![33],
        ..p.clone()
    };
    // Sampling under the mask never leaves it.
    let sampling = SamplingParams {
        allowed_tokens: Some(vec![1 << 3, 2]),
        ..Default::default()
    };
    for b in bs.iter_mut() {
        let b = b.as_mut();
        let name = b.name();
        let (out, _) = one(b, &z, p.clone(), RowState::default());
        assert_eq!((out.status, out.token), (Status::Ok, 33), "{name}: {out:?}");
        assert_close(
            out.logprob as f64,
            -2.9336830,
            1e-5,
            &format!("{name} logprob"),
        );
        let (out, _) = one(b, &z, banned.clone(), RowState::default());
        assert_eq!(out.token, 3, "{name}: {out:?}");
        let toks = tokens_over_seeds(b, &z, &sampling, &RowState::default(), 300);
        assert!(toks.iter().all(|&t| t == 3 || t == 33), "{name}: {toks:?}");
    }
    // e^3.3/(e^3.3 + e^0.3) = 1/(1 + e^-3) = 0.9525741.
    check_dist(
        &mut bs,
        &z,
        &sampling,
        &RowState::default(),
        &[33, 3],
        &[0.9525741, 0.0474259],
    );
}

#[test]
fn min_new_tokens_masks_eos_until_reached() {
    let mut bs = both_backends();
    // [0, 5, 1], EOS = 1, min_new_tokens = 2, greedy: n = 0 -> EOS masked,
    // argmax of [0, -inf, 1] = 2; n = 1 -> 2 again; n = 2 -> EOS allowed -> 1.
    // logprobs under the raw row: token 2: 1 - ln(1 + e^5 + e) = -4.0247449,
    // token 1: -0.0247449.
    let z = [0.0f32, 5.0, 1.0];
    let p = SamplingParams {
        eos_token_ids: vec![1],
        min_new_tokens: 2,
        ..greedy()
    };
    let want = [(2u32, -4.0247449f64), (2, -4.0247449), (1, -0.0247449)];
    let mut ost = OracleState::default();
    for (n, &(tok, _)) in want.iter().enumerate() {
        let o = oracle_row(&z, &p, &ost);
        assert_eq!(o.token, tok, "oracle at n = {n}");
        ost.record(o.token);
    }
    for b in bs.iter_mut() {
        let b = b.as_mut();
        let name = b.name();
        // The state is carried from step to step (on the GPU: read back
        // from the device and set again).
        let mut states = vec![RowState::new(&[])];
        for (n, &(tok, lp)) in want.iter().enumerate() {
            let out = b
                .sample(Logits::F32(&z), 3, std::slice::from_ref(&p), &mut states)
                .unwrap();
            let at = format!("{name} n = {n}");
            assert_eq!((out[0].status, out[0].token), (Status::Ok, tok), "{at}");
            assert_close(out[0].logprob as f64, lp, 1e-5, &format!("{at} logprob"));
            assert_eq!(states[0].generated_len(), n as u32 + 1, "{at}");
            assert_eq!(states[0].step, n as u64 + 1, "{at}");
            assert_eq!(
                states[0].output_count(tok),
                if tok == 2 { n as u32 + 1 } else { 1 },
                "{at}"
            );
        }
    }
    // A history that already has 2 tokens allows EOS at once.
    check_greedy(
        &mut bs,
        &z,
        p,
        RowState::with_output(&[], &[0, 0]),
        1,
        -0.0247448901,
    );
}

#[test]
fn step_counter_comes_from_state() {
    let mut bs = both_backends();
    // The stream depends on (seed, step) only: the same row with the same
    // seed and step gives the same token, whatever the history.
    let z: Vec<f32> = (0..50).map(|i| ((i * 7) % 13) as f32 * 0.3).collect();
    let p = SamplingParams {
        seed: 42,
        ..Default::default()
    };
    let mut a = RowState::default();
    a.step = 9;
    let mut b = RowState::new(&[]);
    b.step = 9;
    let o = oracle_row(&z, &p, &OracleState::new(&[], &[], 9));
    for be in bs.iter_mut() {
        let be = be.as_mut();
        let name = be.name();
        let (oa, sa) = one(be, &z, p.clone(), a.clone());
        let (ob, _) = one(be, &z, p.clone(), b.clone());
        assert_eq!(oa.token, ob.token, "{name}");
        assert_eq!(sa.step, 10, "{name}");
        if !o.knife() {
            assert_eq!(o.token, oa.token, "{name}: oracle {o:?}");
        }
    }
}

// ---------------------------------------------------------------- errors

fn bad_param_cases() -> Vec<(&'static str, SamplingParams)> {
    let d = SamplingParams::default;
    vec![
        ("top_p", SamplingParams { top_p: 0.0, ..d() }),
        ("top_p", SamplingParams { top_p: 1.5, ..d() }),
        ("top_p", SamplingParams { top_p: -0.5, ..d() }),
        (
            "top_p",
            SamplingParams {
                top_p: f32::NAN,
                ..d()
            },
        ),
        (
            "temperature",
            SamplingParams {
                temperature: -1.0,
                ..d()
            },
        ),
        (
            "temperature",
            SamplingParams {
                temperature: f32::NAN,
                ..d()
            },
        ),
        (
            "temperature",
            SamplingParams {
                temperature: f32::INFINITY,
                ..d()
            },
        ),
        ("min_p", SamplingParams { min_p: 1.0, ..d() }),
        ("min_p", SamplingParams { min_p: -0.1, ..d() }),
        (
            "min_p",
            SamplingParams {
                min_p: f32::NAN,
                ..d()
            },
        ),
        (
            "repetition_penalty",
            SamplingParams {
                repetition_penalty: 0.0,
                ..d()
            },
        ),
        (
            "repetition_penalty",
            SamplingParams {
                repetition_penalty: -1.0,
                ..d()
            },
        ),
        (
            "repetition_penalty",
            SamplingParams {
                repetition_penalty: f32::INFINITY,
                ..d()
            },
        ),
        (
            "repetition_penalty",
            SamplingParams {
                repetition_penalty: f32::NAN,
                ..d()
            },
        ),
        (
            "presence_penalty",
            SamplingParams {
                presence_penalty: f32::NAN,
                ..d()
            },
        ),
        (
            "frequency_penalty",
            SamplingParams {
                frequency_penalty: f32::INFINITY,
                ..d()
            },
        ),
        (
            "logit_bias",
            SamplingParams {
                logit_bias: vec![(1, f32::NAN)],
                ..d()
            },
        ),
        (
            "logit_bias",
            SamplingParams {
                logit_bias: vec![(1, f32::NEG_INFINITY)],
                ..d()
            },
        ),
        (
            "logit_bias",
            SamplingParams {
                logit_bias: vec![(4, 1.0)],
                ..d()
            },
        ),
        (
            "logit_bias",
            SamplingParams {
                logit_bias: vec![(1, 1.0), (2, 0.5), (1, 2.0)],
                ..d()
            },
        ),
        (
            "banned_tokens",
            SamplingParams {
                banned_tokens: vec![0, 4],
                ..d()
            },
        ),
        (
            "banned_tokens",
            SamplingParams {
                banned_tokens: vec![u32::MAX],
                ..d()
            },
        ),
        (
            "eos_token_ids",
            SamplingParams {
                eos_token_ids: vec![7],
                ..d()
            },
        ),
        (
            "allowed_tokens",
            SamplingParams {
                allowed_tokens: Some(vec![]),
                ..d()
            },
        ),
        (
            "allowed_tokens",
            SamplingParams {
                allowed_tokens: Some(vec![15, 0]),
                ..d()
            },
        ),
    ]
}

#[test]
fn bad_params_are_errors_naming_row_and_field() {
    let mut bs = both_backends();
    // V = 4; the bad parameter is on row 2 of 3. Nothing runs: states stay.
    let z = [
        0.0f32, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0,
    ];
    for (field, bad) in bad_param_cases() {
        let params = vec![SamplingParams::default(), greedy(), bad.clone()];
        let states = vec![RowState::new(&[1]); 3];
        for b in bs.iter_mut() {
            let name = b.name();
            let mut after = states.clone();
            let res = b.sample(Logits::F32(&z), 4, &params, &mut after);
            let err = match res {
                Ok(out) => panic!("{name}: {field}: {bad:?} accepted: {out:?}"),
                Err(e) => e.to_string(),
            };
            assert!(
                err.contains("row 2"),
                "{name}: {field}: message {err:?} does not name row 2"
            );
            assert!(
                err.contains(field),
                "{name}: message {err:?} does not name {field}"
            );
            assert_eq!(after, states, "{name}: {field}: states changed on error");
        }
        // CPU only: filtered_distribution validates too.
        let e = filtered_distribution(Logits::F32(&z[..4]), &bad, &RowState::default())
            .expect_err(field)
            .to_string();
        assert!(
            e.contains(field),
            "dist message {e:?} does not name {field}"
        );
    }
}

#[test]
fn edge_values_of_ranges_are_accepted() {
    let mut bs = both_backends();
    // The closed ends of SPEC's ranges: T = 0 and top_p = 1 and min_p = 0 are
    // valid; r may be tiny; biases may be large and finite.
    let z = [0.0f32, 1.0, 2.0, 3.0];
    let ok = vec![
        SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            min_p: 0.0,
            ..Default::default()
        },
        SamplingParams {
            top_p: f32::MIN_POSITIVE,
            ..Default::default()
        },
        SamplingParams {
            min_p: 0.999,
            ..Default::default()
        },
        SamplingParams {
            repetition_penalty: 1e-3,
            ..Default::default()
        },
        SamplingParams {
            logit_bias: vec![(3, -1e30)],
            ..Default::default()
        },
        SamplingParams {
            banned_tokens: vec![3, 3],
            ..Default::default()
        },
    ];
    for b in bs.iter_mut() {
        let b = b.as_mut();
        let name = b.name();
        for p in &ok {
            let (o, _) = one(b, &z, p.clone(), RowState::default());
            assert_eq!(o.status, Status::Ok, "{name}: {p:?}: {o:?}");
        }
    }
}

#[test]
fn tiny_temperature_never_samples_masked_tokens() {
    let mut bs = both_backends();
    // T = 1e-38 is valid (finite, > 0). [5, -10, -20] with token 0 banned:
    // after the mask z = [-inf, -10, -20]; z / T overflows to -inf for the
    // two candidates (-1e39, -2e39 are below -f32::MAX). Token 0 is banned,
    // so it must never be drawn; both the T -> 0 limit (argmax of
    // [-10, -20]) and the f32-literal reading (every candidate key is -inf,
    // lowest index wins) give token 1.
    let banned = SamplingParams {
        temperature: 1e-38,
        banned_tokens: vec![0],
        ..Default::default()
    };
    let z = [5.0f32, -10.0, -20.0];
    let o = oracle_row(&z, &banned, &OracleState::default());
    assert_eq!(o.token, 1, "oracle {o:?}");
    // Same with the allowed mask instead of the ban.
    let allowed = SamplingParams {
        temperature: 1e-38,
        allowed_tokens: Some(vec![0b110]),
        ..Default::default()
    };
    // Overflow upwards: [-inf, 10, 20] / 1e-38 = [-inf, +inf, +inf]; whatever
    // the tie rule, the masked token 0 is never drawn.
    let plain = SamplingParams {
        temperature: 1e-38,
        ..Default::default()
    };
    for b in bs.iter_mut() {
        let b = b.as_mut();
        let name = b.name();
        let (out, _) = one(b, &z, banned.clone(), RowState::default());
        assert_eq!((out.status, out.token), (Status::Ok, 1), "{name}: {out:?}");
        let (out, _) = one(b, &z, allowed.clone(), RowState::default());
        assert_eq!((out.status, out.token), (Status::Ok, 1), "{name}: {out:?}");
        let toks = tokens_over_seeds(b, &[NEG_INF, 10.0, 20.0], &plain, &RowState::default(), 50);
        assert!(toks.iter().all(|&t| t == 1 || t == 2), "{name}: {toks:?}");
    }
}

#[test]
fn signed_zero_logits_tie() {
    let mut bs = both_backends();
    // -0.0 == +0.0: the two tokens have the same probability 1/2 each, so the
    // distribution lists the lower id first: [0, 1].
    let z = [-0.0f32, 0.0];
    let p = SamplingParams::default();
    check_dist(&mut bs, &z, &p, &RowState::default(), &[0, 1], &[0.5, 0.5]);
    // Greedy: a tie, lowest index: token 0, logprob -ln(2 + e^-1) = -0.8619948.
    check_greedy(
        &mut bs,
        &[0.0, -0.0, -1.0],
        greedy(),
        RowState::default(),
        0,
        -0.8619948041,
    );
    check_greedy(
        &mut bs,
        &[-0.0, 0.0, -1.0],
        greedy(),
        RowState::default(),
        0,
        -0.8619948041,
    );
    // top-k = 1 keeps both (tie at the boundary).
    let p = SamplingParams {
        top_k: 1,
        ..Default::default()
    };
    check_dist(
        &mut bs,
        &[-1.0, 0.0, -0.0],
        &p,
        &RowState::default(),
        &[1, 2],
        &[0.5, 0.5],
    );
}

#[test]
fn the_top_random_word_gives_a_finite_gumbel_that_cannot_rescue_a_hopeless_token() {
    let mut bs = both_backends();
    // SPEC's uniform is ((w >> 9) + 0.5) * 2^-23: for the top word it is
    // 1 - 2^-24 exactly, so g = -ln(-ln u) is about 16.6, finite. (The retired
    // form ((w >> 8) + 0.5) * 2^-24 rounded to 1.0 and gave g = +inf, so such a
    // token won whatever its logit.) Find a (seed, lane) with that word at
    // step 0.
    let (seed, i) = (0u64..)
        .find_map(|seed| {
            let w = wgsample::rng::philox4x32_10(
                wgsample::rng::counter_for(0, 0),
                wgsample::rng::key_for_seed(seed),
            );
            (0..4)
                .find(|&l| w[l] >> 9 == 0x007F_FFFF)
                .map(|l| (seed, l))
        })
        .unwrap();
    let g = wgsample::rng::gumbel(seed, 0, i as u32);
    let exact = -(-(1.0f64 - 2f64.powi(-24)).ln()).ln();
    assert!(g.is_finite() && (g as f64 - exact).abs() < 1e-4, "g = {g}");
    // Token i has logit -30 (35 below the others): its key -30 + 16.6 is
    // below any other key (5 + g with g >= -ln(-ln 2^-24) > -2.9).
    let mut z = [5.0f32; 4];
    z[i] = -30.0;
    z[(i + 1) % 4] = -40.0;
    for top_k in [0, 3] {
        let p = SamplingParams {
            seed,
            top_k,
            ..Default::default()
        };
        let o = oracle_row(&z, &p, &OracleState::default());
        assert!(o.token != i as u32 && z[o.token as usize] == 5.0, "{o:?}");
        for b in bs.iter_mut() {
            let name = b.name();
            let (out, _) = one(b.as_mut(), &z, p.clone(), RowState::default());
            assert_eq!(
                (out.status, out.token),
                (Status::Ok, o.token),
                "{name}: {out:?}"
            );
        }
    }
}

#[test]
fn top_k_ties_created_by_the_temperature_division_are_kept() {
    let mut bs = both_backends();
    // SPEC: top-k keeps z/T >= the k-th largest z/T. Two distinct logits can
    // become equal after the f32 division (neighbouring floats near 1.0,
    // divided by 1000, can round to the same value; found here directly), so
    // with k = 1 both survive, even though only one is the largest logit.
    let t = 1000.0f32;
    // The first pair of neighbouring floats below 1.0 that the division merges.
    let (a, b) = (1..100u32)
        .map(|i| {
            let a = f32::from_bits(1.0f32.to_bits() - i);
            (a, f32::from_bits(a.to_bits() - 1))
        })
        .find(|&(a, b)| a / t == b / t)
        .expect("some neighbouring floats merge when divided by 1000");
    assert!(b < a);
    let row = [b, 0.25, a, 0.5];
    let p = SamplingParams {
        temperature: t,
        top_k: 1,
        ..Default::default()
    };
    let o = oracle_row(&row, &p, &OracleState::default());
    assert_eq!(o.dist_tokens, vec![0, 2], "oracle: {o:?}");
    // Both merged values survive with equal z/T, so p = 1/2 each (lower id
    // first).
    check_dist(
        &mut bs,
        &row,
        &p,
        &RowState::default(),
        &[0, 2],
        &[0.5, 0.5],
    );
}
