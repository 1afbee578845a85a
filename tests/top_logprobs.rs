//! `CpuSampler::sample_with_top_logprobs` (SPEC.md "Top log-probabilities")
//! against an oracle written here: f64 `log_softmax` over the raw row, the
//! tokens sorted by (raw logit descending, id ascending), the rank counted
//! directly. The sampled tokens, logprobs, statuses and states must be
//! exactly those of `sample`.

mod support;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::logits::normal_logits;
use wgsample::{
    CpuSampler, Error, Logits, MAX_TOP_LOGPROBS, RowOutput, RowState, SamplingParams, Status,
    TopLogprobs,
};

/// The oracle's top list: `(token, logprob)` of the `min(n, V)` largest raw
/// logits, largest first, ties to the lower id, logprobs in f64.
fn oracle_top(raw: &[f32], n: usize) -> Vec<(u32, f64)> {
    let m = raw
        .iter()
        .filter(|x| x.is_finite())
        .fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
    let s: f64 = raw.iter().map(|&x| (x as f64 - m).exp()).sum();
    let mut ids: Vec<usize> = (0..raw.len()).collect();
    ids.sort_by(|&a, &b| raw[b].partial_cmp(&raw[a]).unwrap().then(a.cmp(&b)));
    ids.truncate(n);
    ids.iter()
        .map(|&i| (i as u32, raw[i] as f64 - m - s.ln()))
        .collect()
}

/// 1 + the number of tokens whose raw logit is strictly above the token's.
fn oracle_rank(raw: &[f32], token: u32) -> u32 {
    let x = raw[token as usize];
    1 + raw.iter().filter(|&&y| y > x).count() as u32
}

fn close(got: f32, want: f64) -> bool {
    if want == f64::NEG_INFINITY {
        return got == f32::NEG_INFINITY;
    }
    (got as f64 - want).abs() <= 1e-5 * want.abs().max(1.0)
}

/// Checks one row's top list against the oracle (`raw` is the widened row).
fn check_row(
    what: &str,
    raw: &[f32],
    p: &SamplingParams,
    out: &RowOutput,
    top: &TopLogprobs,
) -> Result<(), String> {
    if p.top_logprobs == 0 || out.status != Status::Ok {
        if *top != TopLogprobs::default() {
            return Err(format!(
                "{what}: N = {} status {:?} should return the default, got {top:?}",
                p.top_logprobs, out.status
            ));
        }
        return Ok(());
    }
    let n = (p.top_logprobs as usize).min(raw.len());
    let want = oracle_top(raw, n);
    if top.entries.len() != want.len() {
        return Err(format!(
            "{what}: {} entries, want {} (N = {}, V = {})",
            top.entries.len(),
            want.len(),
            p.top_logprobs,
            raw.len()
        ));
    }
    for (e, &(t, lp)) in top.entries.iter().zip(&want) {
        if e.token != t {
            return Err(format!(
                "{what}: tokens {:?}, want {:?}",
                top.entries.iter().map(|e| e.token).collect::<Vec<_>>(),
                want.iter().map(|w| w.0).collect::<Vec<_>>()
            ));
        }
        if !close(e.logprob, lp) {
            return Err(format!(
                "{what}: token {t}: logprob {}, oracle {lp}",
                e.logprob
            ));
        }
        if t == out.token && !out.logprob.is_nan() && e.logprob.to_bits() != out.logprob.to_bits() {
            return Err(format!(
                "{what}: sampled token {t}'s entry {} differs from RowOutput::logprob {}",
                e.logprob, out.logprob
            ));
        }
    }
    let rank = oracle_rank(raw, out.token);
    if top.rank != rank {
        return Err(format!(
            "{what}: rank {} of token {}, want {rank}",
            top.rank, out.token
        ));
    }
    Ok(())
}

/// Runs one batch through `sample_with_top_logprobs` and `sample` (on
/// clones of the states) and checks every row; `rows` are the widened rows.
fn run_batch(
    what: &str,
    sampler: &mut CpuSampler,
    logits: Logits<'_>,
    rows: &[Vec<f32>],
    params: &[SamplingParams],
    states: &[RowState],
) -> usize {
    let v = rows[0].len();
    let mut st_top = states.to_vec();
    let (out, top) = sampler
        .sample_with_top_logprobs(logits, v, params, &mut st_top)
        .unwrap();
    let mut st_plain = states.to_vec();
    let plain = sampler.sample(logits, v, params, &mut st_plain).unwrap();
    assert_eq!(top.len(), params.len(), "{what}");
    assert_eq!(st_top, st_plain, "{what}: states differ from sample's");
    let mut listed = 0;
    for r in 0..params.len() {
        let (a, b) = (out[r], plain[r]);
        assert!(
            a.token == b.token
                && a.status == b.status
                && a.logprob.to_bits() == b.logprob.to_bits(),
            "{what} row {r}: {a:?} but sample gives {b:?}"
        );
        check_row(
            &format!("{what} row {r}"),
            &rows[r],
            &params[r],
            &a,
            &top[r],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        listed += top[r].entries.len();
    }
    listed
}

fn params(n: u32, seed: u64) -> SamplingParams {
    SamplingParams {
        top_logprobs: n,
        seed,
        ..Default::default()
    }
}

/// A row: normal logits (scale `scale`), some `-inf`, and when `ties` the
/// values rounded to a few levels so that many tokens share a logit.
fn row(rng: &mut StdRng, v: usize, scale: f32, holes: f64, ties: bool) -> Vec<f32> {
    let mut x = normal_logits(rng, v, scale);
    for xi in x.iter_mut() {
        if ties {
            *xi = (*xi / scale).round() * scale;
        }
        if rng.random_bool(holes) {
            *xi = f32::NEG_INFINITY;
        }
    }
    x
}

#[test]
fn random_rows_against_the_oracle() {
    let mut rng = StdRng::seed_from_u64(13);
    let mut sampler = CpuSampler::with_threads(1);
    let mut listed = 0;
    for (case, &(v, scale, holes, ties)) in [
        (50usize, 1.0f32, 0.0, false),
        (50, 2.0, 0.2, false),
        (200, 1.0, 0.0, true),
        (200, 3.0, 0.5, true),
        (3000, 1.5, 0.05, false),
        (3000, 1.0, 0.0, true),
        (64, 1.0, 0.95, false),
        (7, 1.0, 0.3, true),
        (2, 1.0, 0.0, false),
        (1, 1.0, 0.0, false),
        (100, 1e4, 0.1, false),
        (100, 1e30, 0.1, false),
        (100, 1e30, 0.0, true),
    ]
    .iter()
    .enumerate()
    {
        let b = 24;
        let rows: Vec<Vec<f32>> = (0..b)
            .map(|_| row(&mut rng, v, scale, holes, ties))
            .collect();
        let flat: Vec<f32> = rows.concat();
        let ns = [0u32, 1, 5, 20, 3, 20];
        let ps: Vec<SamplingParams> = (0..b)
            .map(|r| SamplingParams {
                temperature: [1.0, 0.0, 0.7][r % 3],
                top_k: if r % 4 == 3 { 3 } else { 0 },
                ..params(ns[r % ns.len()], r as u64 * 7 + case as u64)
            })
            .collect();
        let states = vec![RowState::default(); b];
        let what = format!("case {case} (V {v}, scale {scale}, holes {holes}, ties {ties})");
        listed += run_batch(&what, &mut sampler, Logits::F32(&flat), &rows, &ps, &states);
    }
    assert!(listed > 1000, "only {listed} entries checked");
}

#[test]
fn ties_go_to_the_lower_id_and_neg_inf_is_last_in_id_order() {
    // Every logit equal: the list is 0..N, rank 1 for whatever is sampled.
    let v = 100;
    let flat = vec![0.5f32; v];
    let mut st = vec![RowState::default()];
    let (out, top) = CpuSampler::with_threads(1)
        .sample_with_top_logprobs(Logits::F32(&flat), v, &[params(20, 3)], &mut st)
        .unwrap();
    let ids: Vec<u32> = top[0].entries.iter().map(|e| e.token).collect();
    assert_eq!(ids, (0..20).collect::<Vec<u32>>());
    assert_eq!(top[0].rank, 1);
    let lp = -(v as f64).ln();
    assert!(top[0].entries.iter().all(|e| close(e.logprob, lp)));
    assert_eq!(out[0].status, Status::Ok);

    // Three finite logits, the rest -inf: the finite ones first, then the
    // lowest -inf ids.
    let mut x = vec![f32::NEG_INFINITY; 10];
    x[7] = 1.0;
    x[2] = 3.0;
    x[9] = 1.0;
    let mut st = vec![RowState::default()];
    let (out, top) = CpuSampler::with_threads(1)
        .sample_with_top_logprobs(Logits::F32(&x), 10, &[params(6, 1)], &mut st)
        .unwrap();
    let ids: Vec<u32> = top[0].entries.iter().map(|e| e.token).collect();
    assert_eq!(ids, vec![2, 7, 9, 0, 1, 3]);
    assert!(
        top[0].entries[3..]
            .iter()
            .all(|e| e.logprob == f32::NEG_INFINITY)
    );
    check_row("finite+inf", &x, &params(6, 1), &out[0], &top[0]).unwrap();
}

#[test]
fn n_above_vocab_lists_every_token() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut sampler = CpuSampler::with_threads(1);
    for v in [1usize, 2, 7] {
        for n in [1u32, 5, 20] {
            let rows: Vec<Vec<f32>> = (0..6).map(|_| row(&mut rng, v, 1.0, 0.2, false)).collect();
            let flat = rows.concat();
            let ps: Vec<SamplingParams> = (0..6).map(|r| params(n, r)).collect();
            let states = vec![RowState::default(); 6];
            run_batch(
                &format!("V {v} N {n}"),
                &mut sampler,
                Logits::F32(&flat),
                &rows,
                &ps,
                &states,
            );
        }
    }
}

#[test]
fn f16_and_bf16_rows_use_the_widened_values() {
    let mut rng = StdRng::seed_from_u64(8);
    let mut sampler = CpuSampler::with_threads(1);
    let (b, v) = (12, 500);
    // Rounded to f16/bf16, many values tie: the order is on widened values.
    let src: Vec<f32> = (0..b)
        .flat_map(|_| row(&mut rng, v, 2.0, 0.05, false))
        .collect();
    let ps: Vec<SamplingParams> = (0..b)
        .map(|r| params([1, 5, 20][r % 3], r as u64))
        .collect();
    let states = vec![RowState::default(); b];
    let h: Vec<half::f16> = src.iter().map(|&x| half::f16::from_f32(x)).collect();
    let rows: Vec<Vec<f32>> = h
        .chunks(v)
        .map(|c| c.iter().map(|x| x.to_f32()).collect())
        .collect();
    run_batch("f16", &mut sampler, Logits::F16(&h), &rows, &ps, &states);
    let bf: Vec<half::bf16> = src.iter().map(|&x| half::bf16::from_f32(x)).collect();
    let rows: Vec<Vec<f32>> = bf
        .chunks(v)
        .map(|c| c.iter().map(|x| x.to_f32()).collect())
        .collect();
    run_batch("bf16", &mut sampler, Logits::Bf16(&bf), &rows, &ps, &states);
}

#[test]
fn threaded_batches_and_processed_rows() {
    // Large enough to be split across threads; rows with penalties, masks
    // and filters: the top list stays on the raw logits.
    let mut rng = StdRng::seed_from_u64(21);
    let (b, v) = (8, 40_000);
    let rows: Vec<Vec<f32>> = (0..b).map(|_| row(&mut rng, v, 1.0, 0.01, false)).collect();
    let flat = rows.concat();
    let ps: Vec<SamplingParams> = (0..b)
        .map(|r| SamplingParams {
            temperature: 0.8,
            top_p: 0.9,
            min_p: 0.01,
            repetition_penalty: 1.3,
            frequency_penalty: 0.5,
            banned_tokens: vec![1, 2, 3],
            logit_bias: vec![(10, 5.0)],
            ..params([0, 20, 7, 1][r % 4], r as u64)
        })
        .collect();
    let states: Vec<RowState> = (0..b)
        .map(|r| RowState::with_output(&[5, 6, 7], &[r as u32, 9, 9]))
        .collect();
    let mut sampler = CpuSampler::with_threads(2);
    assert!(b * v >= CpuSampler::PARALLEL_MIN_ELEMENTS);
    run_batch(
        "threaded",
        &mut sampler,
        Logits::F32(&flat),
        &rows,
        &ps,
        &states,
    );
}

#[test]
fn computed_without_logprobs_too() {
    let mut rng = StdRng::seed_from_u64(2);
    let (b, v) = (6, 300);
    let rows: Vec<Vec<f32>> = (0..b).map(|_| row(&mut rng, v, 1.0, 0.0, false)).collect();
    let flat = rows.concat();
    let ps: Vec<SamplingParams> = (0..b).map(|r| params(10, r as u64)).collect();
    let mut st_off = vec![RowState::default(); b];
    let (out_off, top_off) = CpuSampler::with_threads(1)
        .with_logprobs(false)
        .sample_with_top_logprobs(Logits::F32(&flat), v, &ps, &mut st_off)
        .unwrap();
    let mut st_on = vec![RowState::default(); b];
    let (out_on, top_on) = CpuSampler::with_threads(1)
        .sample_with_top_logprobs(Logits::F32(&flat), v, &ps, &mut st_on)
        .unwrap();
    assert_eq!(top_off, top_on);
    for r in 0..b {
        assert!(out_off[r].logprob.is_nan());
        assert_eq!(out_off[r].token, out_on[r].token);
        check_row("logprobs off", &rows[r], &ps[r], &out_off[r], &top_off[r]).unwrap();
        assert!(!top_off[r].entries.is_empty());
    }
}

#[test]
fn rows_without_a_token_return_the_default() {
    let v = 8;
    let mut flat = vec![0.25f32; 4 * v];
    flat[3] = f32::NAN; // row 0: invalid logits
    flat[v + 5] = f32::INFINITY; // row 1: invalid logits
    let ps = vec![
        params(5, 0),
        params(5, 0),
        SamplingParams {
            banned_tokens: (0..v as u32).collect(), // row 2: no candidates
            ..params(5, 0)
        },
        params(0, 0), // row 3: N = 0
    ];
    let mut st = vec![RowState::default(); 4];
    let (out, top) = CpuSampler::with_threads(1)
        .sample_with_top_logprobs(Logits::F32(&flat), v, &ps, &mut st)
        .unwrap();
    assert_eq!(out[0].status, Status::InvalidLogits);
    assert_eq!(out[1].status, Status::InvalidLogits);
    assert_eq!(out[2].status, Status::NoCandidates);
    assert_eq!(out[3].status, Status::Ok);
    for (r, t) in top.iter().enumerate() {
        assert_eq!(*t, TopLogprobs::default(), "row {r}");
    }
}

#[test]
fn top_logprobs_above_20_is_invalid() {
    let v = 30;
    let flat = vec![0.0f32; 2 * v];
    let mut st = vec![RowState::default(); 2];
    let ps = [params(MAX_TOP_LOGPROBS, 0), params(MAX_TOP_LOGPROBS + 1, 0)];
    let before = st.clone();
    for res in [
        CpuSampler::new()
            .sample_with_top_logprobs(Logits::F32(&flat), v, &ps, &mut st)
            .map(|_| ()),
        CpuSampler::new()
            .sample(Logits::F32(&flat), v, &ps, &mut st)
            .map(|_| ()),
    ] {
        match res {
            Err(Error::InvalidParams { row, field, .. }) => {
                assert_eq!((row, field), (1, "top_logprobs"));
            }
            other => panic!("expected InvalidParams for top_logprobs, got {other:?}"),
        }
    }
    assert_eq!(st, before, "nothing may run on invalid params");
    let ok = [params(MAX_TOP_LOGPROBS, 0)];
    let (_, top) = CpuSampler::new()
        .sample_with_top_logprobs(Logits::F32(&flat[..v]), v, &ok, &mut st[..1])
        .unwrap();
    assert_eq!(top[0].entries.len(), 20);
}
