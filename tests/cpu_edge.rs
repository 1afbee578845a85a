//! Explicit edge cases of SPEC.md for the CPU backend, with the expected
//! answers worked out by hand in the comments (exp/ln values from a pocket
//! calculator, not from the code under test). Each case is also put to the
//! naive oracle (tests/oracle), so the oracle is checked against the same
//! hand-worked answers.

mod oracle;

use oracle::{OracleState, oracle_row};
use wgsample::{
    CpuSampler, Distribution, Logits, NO_TOKEN, RowOutput, RowState, SamplingParams, Status,
    filtered_distribution,
};

const NEG_INF: f32 = f32::NEG_INFINITY;

fn greedy() -> SamplingParams {
    SamplingParams::greedy()
}

fn ostate(st: &RowState) -> OracleState {
    OracleState::from_row_state(st)
}

/// Samples a batch of rows that share `vocab`; returns outputs and states.
fn sample(
    vocab: usize,
    rows: &[(&[f32], SamplingParams, RowState)],
) -> (Vec<RowOutput>, Vec<RowState>) {
    let flat: Vec<f32> = rows.iter().flat_map(|r| r.0.iter().copied()).collect();
    let params: Vec<SamplingParams> = rows.iter().map(|r| r.1.clone()).collect();
    let mut states: Vec<RowState> = rows.iter().map(|r| r.2.clone()).collect();
    let out = CpuSampler::new()
        .sample(Logits::F32(&flat), vocab, &params, &mut states)
        .expect("sample failed");
    assert_eq!(out.len(), rows.len());
    (out, states)
}

fn one(logits: &[f32], p: SamplingParams, st: RowState) -> (RowOutput, RowState) {
    let (o, s) = sample(logits.len(), &[(logits, p, st)]);
    (o[0], s[0].clone())
}

fn dist(logits: &[f32], p: &SamplingParams, st: &RowState) -> Distribution {
    filtered_distribution(Logits::F32(logits), p, st).expect("filtered_distribution failed")
}

fn assert_no_token(o: &RowOutput, status: Status) {
    assert_eq!(o.status, status, "{o:?}");
    assert_eq!(o.token, NO_TOKEN, "{o:?}");
    assert!(o.logprob.is_nan(), "{o:?}");
}

fn assert_close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: got {a}, want {b}");
}

/// Checks a token, its logprob and that the state was recorded, on both the
/// backend and the oracle.
fn check_greedy(logits: &[f32], p: SamplingParams, st: RowState, token: u32, logprob: f64) {
    let o = oracle_row(logits, &p, &ostate(&st));
    assert_eq!((o.status, o.token), (Status::Ok, token), "oracle: {o:?}");
    assert_close(o.logprob, logprob, 1e-6, "oracle logprob");

    let (out, after) = one(logits, p, st.clone());
    assert_eq!(out.status, Status::Ok, "{out:?}");
    assert_eq!(out.token, token, "{out:?}");
    assert_close(out.logprob as f64, logprob, 1e-5, "logprob");
    let mut want = st;
    want.record(token);
    assert_eq!(after, want, "state not recorded");
}

/// Checks a filtered distribution (tokens in order, probs within 1e-5) on
/// both the backend and the oracle.
fn check_dist(logits: &[f32], p: &SamplingParams, st: &RowState, tokens: &[u32], probs: &[f64]) {
    let o = oracle_row(logits, p, &ostate(st));
    assert_eq!(o.dist_tokens, tokens, "oracle dist: {o:?}");
    for (a, b) in o.dist_probs.iter().zip(probs) {
        assert_close(*a, *b, 1e-6, "oracle dist prob");
    }
    let d = dist(logits, p, st);
    assert_eq!(d.status, Status::Ok);
    assert_eq!(d.tokens, tokens, "backend dist: {d:?}");
    assert_eq!(d.probs.len(), probs.len(), "backend dist: {d:?}");
    for (a, b) in d.probs.iter().zip(probs) {
        assert_close(*a as f64, *b, 1e-5, "backend dist prob");
    }
}

/// Samples the row with seeds 0..n (one batch) and returns the tokens.
fn tokens_over_seeds(logits: &[f32], p: &SamplingParams, n: u64) -> Vec<u32> {
    let rows: Vec<(&[f32], SamplingParams, RowState)> = (0..n)
        .map(|s| {
            let mut q = p.clone();
            q.seed = s;
            (logits, q, RowState::default())
        })
        .collect();
    let (out, _) = sample(logits.len(), &rows);
    out.iter()
        .map(|o| {
            assert_eq!(o.status, Status::Ok, "{o:?}");
            o.token
        })
        .collect()
}

// ---------------------------------------------------------------- statuses

#[test]
fn all_masked_rows_have_no_candidates() {
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
    let (out, states) = sample(4, &rows);
    for r in 0..4 {
        assert_no_token(&out[r], Status::NoCandidates);
        assert_eq!(
            states[r], rows[r].2,
            "row {r}: state changed without a token"
        );
        let d = dist(rows[r].0, &rows[r].1, &rows[r].2);
        assert_eq!(d.status, Status::NoCandidates);
        assert!(d.tokens.is_empty() && d.probs.is_empty(), "{d:?}");
    }
    assert_eq!(out[4].status, Status::Ok);
    assert_eq!(out[4].token, 3);
    assert_close(out[4].logprob as f64, -0.4401896985, 1e-5, "row 4 logprob");
    let mut want = st.clone();
    want.record(3);
    assert_eq!(states[4], want);
}

#[test]
fn nan_and_inf_rows_are_invalid_others_fine() {
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
    let (out, states) = sample(3, &rows);
    for r in [0, 1, 3] {
        assert_no_token(&out[r], Status::InvalidLogits);
        assert_eq!(states[r], st, "row {r}: state changed");
        let d = dist(rows[r].0, &rows[r].1, &rows[r].2);
        assert_eq!(d.status, Status::InvalidLogits);
        assert!(d.tokens.is_empty());
    }
    assert_eq!((out[2].status, out[2].token), (Status::Ok, 1));
    assert_close(
        out[2].logprob as f64,
        -0.0247448901,
        1e-5,
        "good row logprob",
    );
    let mut want = st.clone();
    want.record(1);
    assert_eq!(states[2], want);

    // The same with half-precision inputs: f16 has NaN and inf too.
    let h: Vec<half::f16> = [0.0f32, f32::NAN, 1.0, 0.0, 5.0, 1.0]
        .iter()
        .map(|&x| half::f16::from_f32(x))
        .collect();
    let mut st2 = vec![RowState::default(), RowState::default()];
    let out = CpuSampler::new()
        .sample(Logits::F16(&h), 3, &[greedy(), greedy()], &mut st2)
        .unwrap();
    assert_no_token(&out[0], Status::InvalidLogits);
    assert_eq!((out[1].status, out[1].token), (Status::Ok, 1));
}

#[test]
fn neg_inf_entries_are_legal() {
    // Greedy on [-inf, 1, -inf, 0.5] -> token 1,
    // logprob = 1 - ln(e + e^0.5) = 1 - ln(4.367003) = -0.4740769842.
    let z = [NEG_INF, 1.0, NEG_INF, 0.5];
    check_greedy(&z, greedy(), RowState::default(), 1, -0.4740769842);
    // Sampling at T = 1: only tokens 1 and 3 survive, with
    // p = e/(e + e^0.5) = 1/(1 + e^-0.5) = 0.6224593312 and 0.3775406688.
    let p = SamplingParams::default();
    check_dist(
        &z,
        &p,
        &RowState::default(),
        &[1, 3],
        &[0.6224593312, 0.3775406688],
    );
    let toks = tokens_over_seeds(&z, &p, 300);
    assert!(toks.iter().all(|&t| t == 1 || t == 3), "{toks:?}");
    assert!(toks.contains(&1) && toks.contains(&3));
}

// ---------------------------------------------------------------- greedy

#[test]
fn greedy_ties_pick_lowest_index() {
    // [1, 3, 3, 2]: max 3 at tokens 1 and 2 -> token 1;
    // logprob = 3 - ln(e + 2e^3 + e^2) = 3 - ln(50.278412) = -0.9175758.
    check_greedy(
        &[1.0, 3.0, 3.0, 2.0],
        greedy(),
        RowState::default(),
        1,
        -0.9175757956,
    );
    // [5, 5, 5] -> token 0, logprob = ln(1/3) = -1.0986122887.
    check_greedy(
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
    check_greedy(&[2.0, 4.0, 2.0], p, RowState::new(&[1]), 0, -2.2395448);
}

#[test]
fn logprob_is_under_raw_logits() {
    // [0, 0] with bias +10 on token 1: greedy picks 1, but the logprob is
    // taken from the raw row: ln(1/2) = -0.6931471806.
    let p = SamplingParams {
        logit_bias: vec![(1, 10.0)],
        ..greedy()
    };
    check_greedy(
        &[0.0, 0.0],
        p,
        RowState::default(),
        1,
        -std::f64::consts::LN_2,
    );
}

#[test]
fn tiny_temperature_is_nearly_greedy() {
    // [0, 1] at T = 0.01 -> z = [0, 100]; Gumbel values lie in about
    // [-2.8, 16.7] for u in [2^-25, 1 - 2^-25), so token 1 always wins.
    let p = SamplingParams {
        temperature: 0.01,
        ..Default::default()
    };
    let toks = tokens_over_seeds(&[0.0, 1.0], &p, 500);
    assert!(toks.iter().all(|&t| t == 1), "{toks:?}");
}

// ---------------------------------------------------------------- top-k

#[test]
fn top_k_keeps_ties_at_the_boundary() {
    // [1, 3, 3, 3, 0], k = 2: the 2nd largest is 3 -> keep z >= 3, i.e. tokens
    // 1, 2, 3 (three tokens for k = 2), each with p = 1/3.
    let z = [1.0f32, 3.0, 3.0, 3.0, 0.0];
    let third = 1.0 / 3.0;
    for k in [1, 2, 3] {
        let p = SamplingParams {
            top_k: k,
            ..Default::default()
        };
        check_dist(&z, &p, &RowState::default(), &[1, 2, 3], &[third; 3]);
    }
    let p = SamplingParams {
        top_k: 2,
        ..Default::default()
    };
    let toks = tokens_over_seeds(&z, &p, 300);
    assert!(toks.iter().all(|t| [1, 2, 3].contains(t)), "{toks:?}");
    for t in [1, 2, 3] {
        assert!(toks.contains(&t), "token {t} never drawn: {toks:?}");
    }
    // k = 4: the 4th largest is 1 -> tokens 1, 2, 3, 0 with e^3, e^3, e^3, e
    // over 3e^3 + e = 62.974893: [0.3189452, 0.3189452, 0.3189452, 0.0431645].
    let p = SamplingParams {
        top_k: 4,
        ..Default::default()
    };
    check_dist(
        &z,
        &p,
        &RowState::default(),
        &[1, 2, 3, 0],
        &[0.3189452, 0.3189452, 0.3189452, 0.0431645],
    );
}

#[test]
fn top_k_at_or_above_vocab_is_off() {
    // softmax([0, 1, 2, 3, 4]): e^i / 85.79097 =
    // [0.0116562, 0.0316849, 0.0861285, 0.2341217, 0.6364086].
    let z = [0.0f32, 1.0, 2.0, 3.0, 4.0];
    let all = [0.6364086, 0.2341217, 0.0861285, 0.0316849, 0.0116562];
    for k in [5, 6, 1000, u32::MAX] {
        let p = SamplingParams {
            top_k: k,
            ..Default::default()
        };
        check_dist(&z, &p, &RowState::default(), &[4, 3, 2, 1, 0], &all);
    }
    // k = 4 drops token 0: e^i / (e + e^2 + e^3 + e^4 = 84.79097) =
    // [0.0320586, 0.0871443, 0.2368828, 0.6439143] for i = 1..4.
    let p = SamplingParams {
        top_k: 4,
        ..Default::default()
    };
    check_dist(
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
        &z,
        &p,
        &RowState::default(),
        &[0, 1, 2],
        &[0.5761169, 0.2119416, 0.2119416],
    );
    let toks = tokens_over_seeds(&z, &p, 300);
    assert!(toks.iter().all(|&t| t != 3), "{toks:?}");
    // top_p = 0.5: the first token already reaches it -> only token 0.
    let p = SamplingParams {
        top_p: 0.5,
        ..Default::default()
    };
    check_dist(&z, &p, &RowState::default(), &[0], &[1.0]);
    // A tiny top_p keeps the whole top tie: [1, 3, 3] -> tokens 1, 2.
    let p = SamplingParams {
        top_p: 1e-6,
        ..Default::default()
    };
    check_dist(
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
    // [2, 1, 0, -1], min_p = 0.3: threshold 2 + ln 0.3 = 0.7960272 -> keep
    // tokens 0 and 1 (p1/p0 = e^-1 = 0.368 >= 0.3, p2/p0 = e^-2 = 0.135 < 0.3).
    // Renormalised: 1/(1 + e^-1) = 0.7310586, 0.2689414.
    let z = [2.0f32, 1.0, 0.0, -1.0];
    let p = SamplingParams {
        min_p: 0.3,
        ..Default::default()
    };
    check_dist(
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
        &[3.0, 2.0],
        p,
        RowState::with_output(&[0], &[0, 0]),
        0,
        -0.3132616875,
    );
}

#[test]
fn presence_and_frequency_penalties() {
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
    check_greedy(&z, p, st.clone(), 2, -1.2142833);
    // A negative presence penalty raises: q = -2 on [0, 1] with output [0]
    // -> z0 = 0 + 2 = 2 > 1 -> greedy 0; logprob = 0 - ln(1 + e) = -1.3132617.
    let p = SamplingParams {
        presence_penalty: -2.0,
        ..greedy()
    };
    check_greedy(
        &[0.0, 1.0],
        p,
        RowState::with_output(&[], &[0]),
        0,
        -1.3132617,
    );
}

#[test]
fn bias_comes_before_penalties() {
    // [1, 0], bias -2 on token 0, prompt {0}, r = 2: bias first gives
    // 1 - 2 = -1, then -1 * 2 = -2 -> softmax([-2, 0]) = [0.1192029, 0.8807971]
    // (penalty first would give 1/2 - 2 = -1.5 -> 0.1824255).
    let p = SamplingParams {
        logit_bias: vec![(0, -2.0)],
        repetition_penalty: 2.0,
        ..Default::default()
    };
    check_dist(
        &[1.0, 0.0],
        &p,
        &RowState::new(&[0]),
        &[1, 0],
        &[0.8807971, 0.1192029],
    );
}

#[test]
fn allowed_mask_and_banned() {
    // 40 tokens with z_i = i/10: the max (39) is not allowed; allowed {3, 33}
    // -> greedy 33. Mask: word 0 = 1 << 3, word 1 = 1 << (33 - 32) = 2.
    let z: Vec<f32> = (0..40).map(|i| i as f32 / 10.0).collect();
    // logprob = 3.3 - ln(sum_i e^(i/10)), sum = (e^4 - 1)/(e^0.1 - 1)
    // = 53.59815/0.1051709 = 509.62900 -> 3.3 - 6.2336830 = -2.9336830.
    let p = SamplingParams {
        allowed_tokens: Some(vec![1 << 3, 2]),
        ..greedy()
    };
    let (out, _) = one(&z, p.clone(), RowState::default());
    assert_eq!((out.status, out.token), (Status::Ok, 33), "{out:?}");
    assert_close(out.logprob as f64, -2.9336830, 1e-5, "logprob");
    let o = oracle_row(&z, &p, &OracleState::default());
    assert_eq!(o.token, 33);
    // Banning 33 as well leaves token 3.
    let p = SamplingParams {
        banned_tokens: vec![33],
        ..p
    };
    let (out, _) = one(&z, p.clone(), RowState::default());
    assert_eq!(out.token, 3, "{out:?}");
    // Sampling under the mask never leaves it.
    let p = SamplingParams {
        allowed_tokens: Some(vec![1 << 3, 2]),
        ..Default::default()
    };
    let toks = tokens_over_seeds(&z, &p, 300);
    assert!(toks.iter().all(|&t| t == 3 || t == 33), "{toks:?}");
    // e^3.3/(e^3.3 + e^0.3) = 1/(1 + e^-3) = 0.9525741.
    check_dist(
        &z,
        &p,
        &RowState::default(),
        &[33, 3],
        &[0.9525741, 0.0474259],
    );
}

#[test]
fn min_new_tokens_masks_eos_until_reached() {
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
    let mut sampler = CpuSampler::new();
    let mut states = vec![RowState::new(&[])];
    let mut ost = OracleState::default();
    let want = [(2u32, -4.0247449f64), (2, -4.0247449), (1, -0.0247449)];
    for (n, &(tok, lp)) in want.iter().enumerate() {
        let o = oracle_row(&z, &p, &ost);
        assert_eq!(o.token, tok, "oracle at n = {n}");
        ost.record(o.token);
        let out = sampler
            .sample(Logits::F32(&z), 3, std::slice::from_ref(&p), &mut states)
            .unwrap();
        assert_eq!((out[0].status, out[0].token), (Status::Ok, tok), "n = {n}");
        assert_close(out[0].logprob as f64, lp, 1e-5, "logprob");
        assert_eq!(states[0].generated_len(), n as u32 + 1);
        assert_eq!(states[0].step, n as u64 + 1);
        assert_eq!(
            states[0].output_count(tok),
            if tok == 2 { n as u32 + 1 } else { 1 }
        );
    }
    // A history that already has 2 tokens allows EOS at once.
    check_greedy(&z, p, RowState::with_output(&[], &[0, 0]), 1, -0.0247448901);
}

#[test]
fn step_counter_comes_from_state() {
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
    let (oa, sa) = one(&z, p.clone(), a);
    let (ob, _) = one(&z, p.clone(), b);
    assert_eq!(oa.token, ob.token);
    assert_eq!(sa.step, 10);
    let o = oracle_row(&z, &p, &OracleState::new(&[], &[], 9));
    if !o.knife() {
        assert_eq!(o.token, oa.token);
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
    // V = 4; the bad parameter is on row 2 of 3. Nothing runs: states stay.
    let z = [
        0.0f32, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0,
    ];
    for (field, bad) in bad_param_cases() {
        let params = vec![SamplingParams::default(), greedy(), bad.clone()];
        let states = vec![RowState::new(&[1]); 3];
        let mut after = states.clone();
        let res = CpuSampler::new().sample(Logits::F32(&z), 4, &params, &mut after);
        let err = match res {
            Ok(out) => panic!("{field}: {bad:?} accepted: {out:?}"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("row 2"),
            "{field}: message {err:?} does not name row 2"
        );
        assert!(err.contains(field), "message {err:?} does not name {field}");
        assert_eq!(after, states, "{field}: states changed on error");
        // filtered_distribution validates too.
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
    for p in ok {
        let (o, _) = one(&z, p.clone(), RowState::default());
        assert_eq!(o.status, Status::Ok, "{p:?}: {o:?}");
    }
}

#[test]
fn shape_errors_never_panic() {
    let z = [0.0f32; 7];
    let p2 = vec![SamplingParams::default(); 2];
    let mut s2 = vec![RowState::default(); 2];
    let mut s = CpuSampler::new();
    // 7 is not a multiple of V = 4.
    assert!(s.sample(Logits::F32(&z), 4, &p2, &mut s2).is_err());
    // 12 values for B*V = 2*4 = 8.
    let z12 = [0.0f32; 12];
    assert!(s.sample(Logits::F32(&z12), 4, &p2, &mut s2).is_err());
    // 8 values, V = 4, but 3 params.
    let z8 = [0.0f32; 8];
    let p3 = vec![SamplingParams::default(); 3];
    assert!(s.sample(Logits::F32(&z8), 4, &p3, &mut s2).is_err());
    // states length 1 for 2 rows, and 3 for 2 rows.
    let mut s1 = vec![RowState::default(); 1];
    assert!(s.sample(Logits::F32(&z8), 4, &p2, &mut s1).is_err());
    let mut s3 = vec![RowState::default(); 3];
    assert!(s.sample(Logits::F32(&z8), 4, &p2, &mut s3).is_err());
    // vocab 0.
    assert!(s.sample(Logits::F32(&[]), 0, &p2, &mut s2).is_err());
    assert!(
        s.sample(Logits::F32(&[]), 0, &p2[..1], &mut s2[..1])
            .is_err()
    );
    // Same for half inputs.
    let h = [half::f16::ZERO; 7];
    assert!(s.sample(Logits::F16(&h), 4, &p2, &mut s2).is_err());
    let hb = [half::bf16::ZERO; 12];
    assert!(s.sample(Logits::Bf16(&hb), 4, &p2, &mut s2).is_err());
    // State token ids must be < V.
    let mut bad_state = vec![RowState::default(), RowState::with_output(&[9], &[])];
    let e = s.sample(Logits::F32(&z8), 4, &p2, &mut bad_state);
    assert!(e.is_err(), "prompt token 9 >= V = 4 accepted: {e:?}");
    let mut bad_state = vec![RowState::default(), RowState::with_output(&[], &[4])];
    assert!(s.sample(Logits::F32(&z8), 4, &p2, &mut bad_state).is_err());
    // Empty row for filtered_distribution.
    assert!(
        filtered_distribution(
            Logits::F32(&[]),
            &SamplingParams::default(),
            &RowState::default()
        )
        .is_err()
    );
    // An empty batch must not panic (Ok(empty) or Err are both fine).
    if let Ok(out) = s.sample(Logits::F32(&[]), 4, &[], &mut []) {
        assert!(out.is_empty());
    }
    // After all these errors the sampler still works: greedy on [0, 2, 1, 0]
    // -> 1.
    let out = s
        .sample(
            Logits::F32(&[0.0, 2.0, 1.0, 0.0]),
            4,
            &[greedy()],
            &mut [RowState::default()],
        )
        .unwrap();
    assert_eq!(out[0].token, 1);
}

#[test]
fn tiny_temperature_never_samples_masked_tokens() {
    // T = 1e-38 is valid (finite, > 0). [5, -10, -20] with token 0 banned:
    // after the mask z = [-inf, -10, -20]; z / T overflows to -inf for the
    // two candidates (-1e39, -2e39 are below -f32::MAX). Token 0 is banned,
    // so it must never be drawn; both the T -> 0 limit (argmax of
    // [-10, -20]) and the f32-literal reading (every candidate key is -inf,
    // lowest index wins) give token 1.
    let p = SamplingParams {
        temperature: 1e-38,
        banned_tokens: vec![0],
        ..Default::default()
    };
    let z = [5.0f32, -10.0, -20.0];
    let o = oracle_row(&z, &p, &OracleState::default());
    assert_eq!(o.token, 1, "oracle {o:?}");
    let (out, _) = one(&z, p.clone(), RowState::default());
    assert_eq!((out.status, out.token), (Status::Ok, 1), "{out:?}");
    // Same with the allowed mask instead of the ban.
    let p = SamplingParams {
        temperature: 1e-38,
        allowed_tokens: Some(vec![0b110]),
        ..Default::default()
    };
    let (out, _) = one(&z, p, RowState::default());
    assert_eq!((out.status, out.token), (Status::Ok, 1), "{out:?}");
    // Overflow upwards: [-inf, 10, 20] / 1e-38 = [-inf, +inf, +inf]; whatever
    // the tie rule, the masked token 0 is never drawn.
    let p = SamplingParams {
        temperature: 1e-38,
        ..Default::default()
    };
    let toks = tokens_over_seeds(&[NEG_INF, 10.0, 20.0], &p, 50);
    assert!(toks.iter().all(|&t| t == 1 || t == 2), "{toks:?}");
}

#[test]
fn signed_zero_logits_tie() {
    // -0.0 == +0.0: the two tokens have the same probability 1/2 each, so the
    // distribution lists the lower id first: [0, 1].
    let z = [-0.0f32, 0.0];
    let p = SamplingParams::default();
    check_dist(&z, &p, &RowState::default(), &[0, 1], &[0.5, 0.5]);
    // Greedy: a tie, lowest index: token 0, logprob -ln(2 + e^-1) = -0.8619948.
    check_greedy(
        &[0.0, -0.0, -1.0],
        greedy(),
        RowState::default(),
        0,
        -0.8619948041,
    );
    check_greedy(
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
        &[-1.0, 0.0, -0.0],
        &p,
        &RowState::default(),
        &[1, 2],
        &[0.5, 0.5],
    );
}

#[test]
fn the_top_random_word_gives_a_finite_gumbel_that_cannot_rescue_a_hopeless_token() {
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
        let (out, _) = one(&z, p, RowState::default());
        assert_eq!((out.status, out.token), (Status::Ok, o.token), "{out:?}");
    }
}

#[test]
fn top_k_ties_created_by_the_temperature_division_are_kept() {
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
    let d = wgsample::filtered_distribution(Logits::F32(&row), &p, &RowState::default()).unwrap();
    assert_eq!(
        d.tokens,
        vec![0, 2],
        "both merged values survive, lower id first: {d:?}"
    );
    let o = oracle_row(&row, &p, &OracleState::default());
    assert_eq!(o.dist_tokens, vec![0, 2], "oracle: {o:?}");
}
