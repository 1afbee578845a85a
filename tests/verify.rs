//! `verify` on both backends (speculative decoding, SPEC.md "Speculative
//! decoding" and the rules in `wgsample::verify`).
//!
//! The backend-independent checks live in `tests/support/verify.rs`; this
//! file plugs `CpuSampler::verify` and `GpuSampler::verify_host` into them
//! ([`for_each_backend`]), computes the expected filtered distributions
//! with the SPEC oracle (`tests/oracle`), and adds a row-by-row comparison
//! of the CPU with a literal implementation of the verify rules on top of
//! that oracle (tests/gpu_verify.rs compares the GPU with the CPU).

mod oracle;
mod support;

use oracle::{GUMBEL_KNIFE, OracleState, oracle_row, raw_logprob};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::logits::normal_logits;
use support::verify::{
    Draft, SampleFn, TheoremCase, VerifyFn, advanced, check_bad_inputs,
    check_bonus_after_accepted_drafts, check_greedy_matches_decoding, check_outputs,
    check_rejection_theorem, draw,
};
use wgsample::rng::{accept_uniform, gumbel};
use wgsample::{CpuSampler, Drafts, Logits, RowState, SamplingParams, Status};

/// Runs `f` with the CPU sampler's `verify` and `sample` as the closures
/// of `support::verify`.
fn with_cpu<R>(f: impl FnOnce(&mut VerifyFn<'_>, &mut SampleFn<'_>) -> R) -> R {
    let mut a = CpuSampler::with_threads(1);
    let mut b = CpuSampler::with_threads(1);
    let verify: &mut VerifyFn<'_> = &mut |t, v, d, p, s| a.verify(t, v, d, p, s);
    let sample: &mut SampleFn<'_> = &mut |l, v, p, s| b.sample(l, v, p, s);
    f(verify, sample)
}

/// Runs `f` with the GPU sampler's `verify_host` and `sample_host` as the
/// closures of `support::verify`: each call sets the rows' params and
/// states on a sampler (made anew when the vocabulary or the batch needs
/// it), verifies or samples, and returns the states the device holds
/// afterwards (read back for up to 256 rows; above that, for the
/// statistical checks, the host records the emitted tokens).
fn with_gpu<R>(f: impl FnOnce(&mut VerifyFn<'_>, &mut SampleFn<'_>) -> R) -> R {
    use wgsample::gpu::{GpuSampler, SamplerConfig};
    let ctx = support::gpu_ctx();
    // One sampler per vocabulary, replaced when a call needs more rows.
    let fit = |pool: &mut Vec<GpuSampler>, rows: usize, v: usize| -> wgsample::Result<usize> {
        let at = pool.iter().position(|g| g.config().vocab as usize == v);
        if let Some(i) = at
            && pool[i].config().max_batch as usize >= rows
        {
            return Ok(i);
        }
        let g = GpuSampler::new(
            ctx,
            SamplerConfig {
                max_batch: rows.max(64) as u32,
                vocab: v as u32,
                max_seen_tokens: 64,
            },
        )?;
        Ok(match at {
            Some(i) => {
                pool[i] = g;
                i
            }
            None => {
                pool.push(g);
                pool.len() - 1
            }
        })
    };
    let set = |g: &mut GpuSampler, p: &[SamplingParams], s: &[RowState]| -> wgsample::Result<()> {
        for (r, (p, s)) in p.iter().zip(s).enumerate() {
            g.set_params(r, p)?;
            g.set_state(r, s)?;
        }
        Ok(())
    };
    let mut vs: Vec<GpuSampler> = Vec::new();
    let mut ss: Vec<GpuSampler> = Vec::new();
    let verify: &mut VerifyFn<'_> = &mut |t, v, d, p, s| {
        if s.len() != p.len() {
            // (The GPU keeps the states itself: only the harness can pass
            // a wrong number.)
            return Err(wgsample::Error::InvalidArgument(format!(
                "{} states for {} rows of params",
                s.len(),
                p.len()
            )));
        }
        let i = fit(&mut vs, (p.len() * (d.k + 1)).max(1), v.max(1))?;
        let g = &mut vs[i];
        set(g, p, s)?;
        let out = g.verify_host(t, p.len() as u32, d)?;
        for (r, (st, o)) in s.iter_mut().zip(&out).enumerate() {
            *st = if p.len() <= 256 {
                g.read_state(r)?
            } else {
                advanced(st, &o.tokens)
            };
        }
        Ok(out)
    };
    let sample: &mut SampleFn<'_> = &mut |l, v, p, s| {
        let i = fit(&mut ss, p.len(), v)?;
        let g = &mut ss[i];
        set(g, p, s)?;
        let out = g.sample_host(l, p.len() as u32)?;
        for (r, st) in s.iter_mut().enumerate() {
            *st = g.read_state(r)?;
        }
        Ok(out)
    };
    f(verify, sample)
}

/// Runs `f` on the CPU backend, then on the GPU backend (saying which on
/// stderr first, so a failure names its backend).
fn for_each_backend(mut f: impl FnMut(&mut VerifyFn<'_>, &mut SampleFn<'_>)) {
    eprintln!("backend: cpu");
    with_cpu(&mut f);
    eprintln!("backend: gpu");
    with_gpu(&mut f);
}

/// The oracle's filtered distribution of one position, dense over `V`.
fn dense_p(z: &[f32], p: &SamplingParams, step: u64) -> Vec<f64> {
    let o = oracle_row(z, p, &OracleState::new(&[], &[], step));
    assert_eq!(o.status, Status::Ok);
    assert!(
        o.filter_knife.is_none(),
        "test data on a knife edge: {:?}",
        o.filter_knife
    );
    let mut d = vec![0.0; z.len()];
    for (&t, &q) in o.dist_tokens.iter().zip(&o.dist_probs) {
        d[t as usize] = q;
    }
    d
}

fn softmax(x: &[f64]) -> Vec<f64> {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// A theorem case over `V = 12`, `k = 3`: fixed target logits per
/// position and a draft distribution that differs from `p_j` (half the
/// target's preferences plus a bias of its own, with mass on tokens the
/// filters remove).
fn theorem_case(name: &str, params: SamplingParams, with_probs: bool, seed: u64) -> TheoremCase {
    let (v, k) = (12usize, 3usize);
    let target: Vec<f32> = (0..=k)
        .flat_map(|j| {
            (0..v).map(move |i| {
                let x = i as f32;
                3.0 * (x * 1.7 + j as f32).sin() + 0.8 * (x * 0.37 * (j + 1) as f32).cos()
            })
        })
        .collect();
    let p: Vec<Vec<f64>> = (0..=k)
        .map(|j| dense_p(&target[j * v..(j + 1) * v], &params, 0))
        .collect();
    let draft_dist: Vec<Vec<f64>> = (0..k)
        .map(|j| {
            let z: Vec<f64> = (0..v)
                .map(|i| 0.7 * target[j * v + i] as f64 + 1.2 * ((i * 7 + j) % 5) as f64)
                .collect();
            softmax(&z)
        })
        .collect();
    TheoremCase {
        name: name.into(),
        vocab: v,
        k,
        target,
        params,
        start_step: 1000 + seed,
        p,
        draft_dist,
        with_probs,
        rows: 20_000,
        chunk: 4096,
        rng_seed: seed,
    }
}

#[test]
fn rejection_sampling_theorem_chi_square() {
    let filters = SamplingParams {
        temperature: 0.8,
        top_k: 7,
        top_p: 0.9,
        min_p: 0.02,
        ..Default::default()
    };
    let cases = [
        theorem_case("plain, q given", SamplingParams::default(), true, 1),
        theorem_case("plain, one-hot drafts", SamplingParams::default(), false, 2),
        theorem_case("filters, q given", filters.clone(), true, 3),
        theorem_case("filters, one-hot drafts", filters, false, 4),
    ];
    // The filters must actually remove tokens, and q must differ from p
    // (else the acceptance test is trivial).
    assert!(cases[2].p[0].iter().filter(|&&x| x == 0.0).count() >= 3);
    for c in &cases {
        let tv: f64 = c.p[0]
            .iter()
            .zip(&c.draft_dist[0])
            .map(|(a, b)| (a - b).abs())
            .sum();
        assert!(tv > 0.4, "{}: q too close to p ({tv})", c.name);
        let law = c.accepted_law();
        eprintln!("{}: TV(p_1, q_1) {tv:.2}, accepted law {law:.3?}", c.name);
        assert!(
            law.iter().all(|&x| x * c.rows as f64 >= 100.0),
            "{}: {law:?}",
            c.name
        );
    }
    with_cpu(|verify, _| {
        for c in &cases {
            let s = check_rejection_theorem(verify, c).unwrap_or_else(|e| panic!("{e}"));
            eprintln!("cpu: {s}");
        }
    });
    // The GPU with 8192 rows a case (two calls of 4096 rows): on lavapipe
    // each verified position is three workgroups run by the CPU, and
    // 8192 rows still give every bin of the accepted-count law an
    // expected count above 40.
    with_gpu(|verify, _| {
        for c in &cases {
            let c = TheoremCase {
                rows: 8192,
                name: format!("gpu {}", c.name),
                p: c.p.clone(),
                draft_dist: c.draft_dist.clone(),
                target: c.target.clone(),
                params: c.params.clone(),
                ..*c
            };
            assert!(c.accepted_law().iter().all(|&x| x * c.rows as f64 >= 40.0));
            let s = check_rejection_theorem(verify, &c).unwrap_or_else(|e| panic!("{e}"));
            eprintln!("{s}");
        }
    });
}

/// `[B, k + 1, V]` target rows for greedy decoding with penalties: normal
/// logits plus a few strong tokens that repeat across positions, so the
/// penalties on the drafts change later argmaxes, and a strong EOS (id 0)
/// that `min_new_tokens` masks at the first positions.
fn penalty_targets(rng: &mut StdRng, b: usize, k: usize, v: usize) -> Vec<f32> {
    let mut t = Vec::with_capacity(b * (k + 1) * v);
    for _ in 0..b * (k + 1) {
        let mut z = normal_logits(rng, v, 1.0);
        for &(i, s) in &[(3usize, 3.0f32), (4, 2.8), (5, 2.7), (6, 2.6)] {
            z[i] = s + 0.2 * z[i];
        }
        z[0] = 3.2 + 0.3 * z[0];
        t.extend(z);
    }
    t
}

fn greedy_penalty_params(b: usize) -> (Vec<SamplingParams>, Vec<RowState>) {
    let params = (0..b)
        .map(|r| SamplingParams {
            temperature: 0.0,
            repetition_penalty: [1.0, 1.5, 1.2][r % 3],
            frequency_penalty: [0.8, 0.0, 0.4][r % 3],
            presence_penalty: [0.0, 0.0, 0.5][r % 3],
            eos_token_ids: vec![0],
            min_new_tokens: 3,
            seed: r as u64,
            ..Default::default()
        })
        .collect();
    let states = (0..b)
        .map(|r| {
            let mut s = RowState::with_output(&[5, 9], &[r as u32 % 7 + 3]);
            s.step = 40 + r as u64;
            s
        })
        .collect();
    (params, states)
}

#[test]
fn greedy_verification_equals_greedy_decoding() {
    let (b, k, v) = (24usize, 4usize, 32usize);
    let mut rng = StdRng::seed_from_u64(77);
    let mut target = penalty_targets(&mut rng, b, k, v);
    // A few positions whose logits are NaN (the row ends there).
    target[(3 * (k + 1) + 2) * v + 7] = f32::NAN;
    target[(10 * (k + 1) + k) * v + 1] = f32::NAN;
    let (params, init) = greedy_penalty_params(b);
    let mut sets = vec![vec![Draft::Greedy; b * k]];
    for s in 0..6 {
        sets.push(
            (0..b * k)
                .map(|i| {
                    // Wrong at one position per row (which one varies).
                    if i % k == (i / k + s) % k {
                        Draft::NotGreedy(rng.random())
                    } else if rng.random_bool(0.1) {
                        Draft::Token(rng.random_range(0..v as u32))
                    } else {
                        Draft::Greedy
                    }
                })
                .collect(),
        );
    }
    for_each_backend(|verify, sample| {
        // The penalties and min_new_tokens matter on this data: greedy
        // decoding without them differs on some rows.
        let plain = SamplingParams {
            temperature: 0.0,
            ..Default::default()
        };
        let mut differ = 0;
        for r in 0..b {
            let pos: Vec<&[f32]> = (0..=k)
                .map(|j| &target[(r * (k + 1) + j) * v..(r * (k + 1) + j + 1) * v])
                .collect();
            // Decode k + 1 tokens with and without them.
            let mut s1 = init[r].clone();
            let mut s2 = init[r].clone();
            for z in &pos {
                let a = sample(
                    Logits::F32(z),
                    v,
                    &params[r..r + 1],
                    std::slice::from_mut(&mut s1),
                )
                .unwrap()[0];
                let c = sample(
                    Logits::F32(z),
                    v,
                    std::slice::from_ref(&plain),
                    std::slice::from_mut(&mut s2),
                )
                .unwrap()[0];
                if a.token != c.token {
                    differ += 1;
                    break;
                }
            }
        }
        assert!(
            differ >= b / 3,
            "penalties change only {differ} of {b} rows"
        );
        for with_probs in [false, true] {
            let s = check_greedy_matches_decoding(
                verify, sample, &target, v, k, &params, &init, &sets, with_probs, 0.0,
            )
            .unwrap_or_else(|e| panic!("with_probs {with_probs}: {e}"));
            eprintln!("greedy, with_probs {with_probs}: {s}");
            assert!(!s.starts_with("0 rows all accepted"), "{s}");
        }
    });
}

#[test]
fn bonus_token_uses_the_state_advanced_by_the_drafts() {
    let (b, k, v) = (64usize, 3usize, 40usize);
    let mut rng = StdRng::seed_from_u64(9);
    let mut target = Vec::new();
    let mut tokens = Vec::new();
    for _ in 0..b {
        let d: Vec<u32> = (0..k).map(|_| rng.random_range(1..8u32)).collect();
        for &dj in &d {
            // The draft dominates its position: p(d) rounds to 1, and
            // u * 1 < 1 accepts it whatever u is.
            let mut z = normal_logits(&mut rng, v, 1.0);
            z[dj as usize] = 60.0;
            target.extend(z);
        }
        // The bonus position prefers the drafted tokens and EOS (id 0), so
        // their penalties and min_new_tokens move it.
        let mut z = normal_logits(&mut rng, v, 0.5);
        for x in &mut z[..8] {
            *x = 2.5 + 0.1 * *x;
        }
        target.extend(z);
        tokens.extend(d);
    }
    let params: Vec<SamplingParams> = (0..b)
        .map(|r| SamplingParams {
            temperature: [1.0, 0.7][r % 2],
            top_p: [1.0, 0.95][r / 2 % 2],
            repetition_penalty: 1.2,
            frequency_penalty: 1.5,
            presence_penalty: 0.5,
            eos_token_ids: vec![0],
            min_new_tokens: k as u32,
            seed: 1000 + r as u64,
            ..Default::default()
        })
        .collect();
    let init: Vec<RowState> = (0..b)
        .map(|r| {
            let mut s = RowState::new(&[8, 9]);
            s.step = r as u64 * 3;
            s
        })
        .collect();
    for_each_backend(|verify, sample| {
        let (s, unadvanced, step_only) = check_bonus_after_accepted_drafts(
            verify, sample, &target, v, k, &tokens, &params, &init, 0.0,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        eprintln!("{s}; {unadvanced} differ without the drafts, {step_only} with the step only");
        assert!(
            unadvanced >= b / 4 && step_only >= b / 4,
            "{unadvanced} {step_only}"
        );
    });
}

/// Random sampling rows with penalties and random drafts (one-hot, or
/// with a `q`), plus rows that hit NaN or an all-masked position.
#[allow(clippy::type_complexity)]
fn random_batch(
    rng: &mut StdRng,
    b: usize,
    k: usize,
    v: usize,
    with_probs: bool,
) -> (
    Vec<f32>,
    Vec<u32>,
    Vec<f32>,
    Vec<SamplingParams>,
    Vec<RowState>,
) {
    let mut target = Vec::new();
    let mut tokens = Vec::new();
    let mut probs = Vec::new();
    let mut params = Vec::new();
    let mut init = Vec::new();
    for _ in 0..b {
        let p = SamplingParams {
            temperature: [0.0, 0.6, 1.0, 1.5][rng.random_range(0..4)],
            top_k: [0, 0, 5][rng.random_range(0..3)],
            top_p: [1.0, 1.0, 0.8][rng.random_range(0..3)],
            min_p: [0.0, 0.0, 0.05][rng.random_range(0..3)],
            repetition_penalty: [1.0, 1.3][rng.random_range(0..2)],
            frequency_penalty: [0.0, 0.7][rng.random_range(0..2)],
            presence_penalty: [0.0, 0.4][rng.random_range(0..2)],
            banned_tokens: if rng.random_bool(0.2) {
                vec![1]
            } else {
                vec![]
            },
            eos_token_ids: vec![0],
            min_new_tokens: rng.random_range(0..4),
            seed: rng.random(),
            ..Default::default()
        };
        let mut st = RowState::with_output(&[2, 3], &[rng.random_range(0..v as u32)]);
        st.step = rng.random_range(0..1000);
        let mut os = OracleState::from_row_state(&st);
        for j in 0..=k {
            let mut z = normal_logits(rng, v, 1.5);
            match rng.random_range(0..40) {
                0 => z[rng.random_range(0..v)] = f32::NAN,
                1 => {
                    // Only EOS left: NoCandidates while n < min_new_tokens.
                    z.iter_mut().for_each(|x| *x = f32::NEG_INFINITY);
                    z[0] = 1.0;
                }
                _ => {}
            }
            if j < k {
                // Draft from the oracle's p_j (mostly) or uniformly.
                let o = oracle_row(&z, &p, &os);
                let mut pj = vec![0.0; v];
                for (&t, &q) in o.dist_tokens.iter().zip(&o.dist_probs) {
                    pj[t as usize] = q;
                }
                let d = if o.status == Status::Ok && rng.random_bool(0.7) {
                    draw(rng, &pj)
                } else {
                    rng.random_range(0..v as u32)
                };
                if with_probs {
                    let mut q: Vec<f64> = (0..v)
                        .map(|i| 0.6 * pj[i] + 0.4 * rng.random::<f64>() / v as f64)
                        .collect();
                    q[d as usize] += 0.05;
                    let s: f64 = q.iter().sum();
                    probs.extend(q.iter().map(|x| (x / s) as f32));
                }
                tokens.push(d);
                os.record(d);
            }
            target.extend(z);
        }
        params.push(p);
        init.push(st);
    }
    (target, tokens, probs, params, init)
}

#[test]
fn recovered_token_is_never_the_rejected_draft_and_states_advance() {
    let mut rng = StdRng::seed_from_u64(31);
    let mut totals = [0usize; 3];
    for_each_backend(|verify, _| {
        for call in 0..60 {
            let with_probs = call % 2 == 1;
            let (b, k, v) = (16, 1 + call % 4, [8, 33, 200][call % 3]);
            let (target, tokens, probs, params, init) = random_batch(&mut rng, b, k, v, with_probs);
            let drafts = Drafts {
                k,
                tokens: &tokens,
                probs: with_probs.then_some(&probs[..]),
            };
            let mut states = init.clone();
            let out = verify(Logits::F32(&target), v, &drafts, &params, &mut states).unwrap();
            let (rej, all, ended) = check_outputs(
                &format!("call {call}"),
                &out,
                &tokens,
                k,
                with_probs,
                &init,
                &states,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            totals[0] += rej;
            totals[1] += all;
            totals[2] += ended;
        }
    });
    eprintln!(
        "rejected {}, all accepted {}, ended {}",
        totals[0], totals[1], totals[2]
    );
    assert!(totals.iter().all(|&n| n >= 20), "{totals:?}");
}

#[test]
fn bad_inputs_are_errors_and_change_nothing() {
    for_each_backend(|verify, _| {
        let s = check_bad_inputs(verify).unwrap_or_else(|e| panic!("{e}"));
        eprintln!("{s}");
    });
    // Parameter validation also runs first: a bad param in the last row.
    let (v, k) = (8, 1);
    let target = vec![0.0f32; 2 * (k + 1) * v];
    let mut params = vec![SamplingParams::default(); 2];
    params[1].top_p = 0.0;
    let mut st = vec![RowState::default(); 2];
    let drafts = Drafts {
        k,
        tokens: &[1, 2],
        probs: None,
    };
    let e = CpuSampler::new()
        .verify(Logits::F32(&target), v, &drafts, &params, &mut st)
        .unwrap_err();
    assert!(e.to_string().contains("top_p"), "{e}");
    assert_eq!(st, vec![RowState::default(); 2]);
    let e = CpuSampler::new()
        .verify(Logits::F32(&[]), 0, &drafts, &params[..1], &mut st[..1])
        .unwrap_err();
    assert!(e.to_string().contains("vocab"), "{e}");
}

#[test]
fn a_bad_position_ends_the_row_after_the_accepted_drafts() {
    let (k, v) = (3usize, 10usize);
    // Positions 1..k: draft j + 1 dominates (accepted with certainty).
    let row = |bad: Option<(usize, f32)>| -> Vec<f32> {
        let mut t = Vec::new();
        for j in 0..=k {
            let mut z: Vec<f32> = (0..v).map(|i| (i as f32 * 0.37).sin()).collect();
            if j < k {
                z[j + 1] = 60.0;
            }
            if let Some((at, x)) = bad
                && at == j
            {
                if x.is_nan() {
                    z[4] = x;
                } else {
                    z.iter_mut().for_each(|y| *y = f32::NEG_INFINITY);
                    z[0] = 1.0; // only EOS, masked by min_new_tokens
                }
            }
            t.extend(z);
        }
        t
    };
    let cases = [
        (None, Status::Ok, 3),
        (Some((0, f32::NAN)), Status::InvalidLogits, 0),
        (Some((1, f32::NAN)), Status::InvalidLogits, 1),
        (Some((2, 0.0)), Status::NoCandidates, 2),
        (Some((3, f32::NAN)), Status::InvalidLogits, 3),
        (Some((3, 0.0)), Status::NoCandidates, 3),
    ];
    let target: Vec<f32> = cases.iter().flat_map(|c| row(c.0)).collect();
    let b = cases.len();
    let params: Vec<SamplingParams> = (0..b)
        .map(|r| SamplingParams {
            eos_token_ids: vec![0],
            min_new_tokens: 10,
            seed: r as u64,
            ..Default::default()
        })
        .collect();
    let tokens: Vec<u32> = (0..b).flat_map(|_| [1u32, 2, 3]).collect();
    let init = vec![RowState::new(&[7]); b];
    let mut states = init.clone();
    let out = CpuSampler::new()
        .verify(
            Logits::F32(&target),
            v,
            &Drafts {
                k,
                tokens: &tokens,
                probs: None,
            },
            &params,
            &mut states,
        )
        .unwrap();
    for (r, (c, o)) in cases.iter().zip(&out).enumerate() {
        assert_eq!(o.status, c.1, "row {r}: {o:?}");
        assert_eq!(o.accepted, c.2, "row {r}: {o:?}");
        let emitted = if c.1 == Status::Ok { 4 } else { c.2 as usize };
        assert_eq!(o.tokens.len(), emitted, "row {r}: {o:?}");
        assert_eq!(
            o.tokens[..c.2 as usize],
            [1, 2, 3][..c.2 as usize],
            "row {r}"
        );
        assert_eq!(states[r], advanced(&init[r], &o.tokens), "row {r}");
    }
    // A NaN after a rejection is never reached: the row is Ok.
    let mut t = row(Some((2, f32::NAN)));
    t[v + 2] = 0.0; // position 2 no longer prefers draft 2 ...
    t[v + 5] = 60.0; // ... but token 5
    let mut st = vec![RowState::default()];
    let o = CpuSampler::new()
        .verify(
            Logits::F32(&t),
            v,
            &Drafts {
                k,
                tokens: &[1, 2, 3],
                probs: None,
            },
            &params[..1],
            &mut st,
        )
        .unwrap();
    assert_eq!(o[0].status, Status::Ok);
    assert_eq!(o[0].tokens, vec![1, 5]);
    assert_eq!(o[0].accepted, 1);
}

#[test]
fn f16_and_bf16_targets_verify_like_their_widened_f32() {
    let mut rng = StdRng::seed_from_u64(4);
    let (b, k, v) = (12, 2, 50);
    let (target, tokens, probs, params, init) = random_batch(&mut rng, b, k, v, true);
    let drafts = Drafts {
        k,
        tokens: &tokens,
        probs: Some(&probs),
    };
    let mut sampler = CpuSampler::with_threads(1);
    let h: Vec<half::f16> = target.iter().map(|&x| half::f16::from_f32(x)).collect();
    let hw: Vec<f32> = h.iter().map(|x| x.to_f32()).collect();
    let bf: Vec<half::bf16> = target.iter().map(|&x| half::bf16::from_f32(x)).collect();
    let bw: Vec<f32> = bf.iter().map(|x| x.to_f32()).collect();
    for (name, l, w) in [
        ("f16", Logits::F16(&h), &hw),
        ("bf16", Logits::Bf16(&bf), &bw),
    ] {
        let mut s1 = init.clone();
        let got = sampler.verify(l, v, &drafts, &params, &mut s1).unwrap();
        let mut s2 = init.clone();
        let want = sampler
            .verify(Logits::F32(w), v, &drafts, &params, &mut s2)
            .unwrap();
        assert_eq!(got, want, "{name}");
        assert_eq!(s1, s2, "{name}");
    }
}

/// What the verify rules give for one row, computed literally on top of
/// the SPEC oracle (`p_j` in f64 from `oracle_row`, rounded to f32 where
/// the rules compare in f32), and why the answer could flip under f32
/// rounding, if it could.
struct Expected {
    tokens: Vec<u32>,
    accepted: u32,
    logprobs: Vec<f64>,
    status: Status,
    knife: Option<String>,
}

fn expected_row(
    pos: &[&[f32]],
    p: &SamplingParams,
    init: &RowState,
    d: &[u32],
    q: Option<&[f32]>,
) -> Expected {
    let (k, v) = (d.len(), pos[0].len());
    let mut e = Expected {
        tokens: vec![],
        accepted: 0,
        logprobs: vec![],
        status: Status::Ok,
        knife: None,
    };
    let mut st = OracleState::from_row_state(init);
    for (j, z) in pos.iter().enumerate() {
        let o = oracle_row(z, p, &st);
        if o.status != Status::Ok {
            e.status = o.status;
            return e;
        }
        if let Some(f) = &o.filter_knife {
            e.knife = Some(f.clone());
        }
        let emit = |e: &mut Expected, t: u32| {
            e.tokens.push(t);
            e.logprobs.push(raw_logprob(z, t as usize));
        };
        if j == k {
            if let Some(s) = &o.sample_knife {
                e.knife = Some(s.clone());
            }
            emit(&mut e, o.token);
            return e;
        }
        let prob = |t: u32| {
            o.dist_tokens
                .iter()
                .position(|&x| x == t)
                .map_or(0.0, |i| o.dist_probs[i])
        };
        let u = accept_uniform(p.seed, st.step);
        let qj = q.map(|q| &q[j * v..(j + 1) * v]);
        let qd = qj.map_or(1.0, |q| q[d[j] as usize]);
        let pd = prob(d[j]);
        let lhs = u * qd;
        if (lhs as f64 - pd).abs() < 1e-5 {
            e.knife = Some(format!("accept: u q = {lhs} vs p = {pd}"));
        }
        if lhs < pd as f32 {
            emit(&mut e, d[j]);
            e.accepted += 1;
            st.record(d[j]);
            continue;
        }
        // Rejected: keys over the residual's support.
        let mut keys: Vec<(f32, u32)> = Vec::new();
        if o.dist_tokens.len() == 1 {
            keys.push((0.0, o.dist_tokens[0]));
        } else if let Some(q) = qj {
            for (idx, &t) in o.dist_tokens.iter().enumerate() {
                let diff = o.dist_probs[idx] as f32 - q[t as usize];
                if diff.abs() < 1e-5 {
                    e.knife = Some(format!("residual sign at token {t}: {diff}"));
                }
                if diff > 0.0 {
                    keys.push((diff.ln() + gumbel(p.seed, st.step, t), t));
                }
            }
            if keys.is_empty() {
                keys.push((0.0, o.token));
                if let Some(s) = &o.sample_knife {
                    e.knife = Some(s.clone());
                }
            }
        } else {
            for (idx, &t) in o.dist_tokens.iter().enumerate() {
                if t != d[j] {
                    keys.push((o.dist_z[idx] + gumbel(p.seed, st.step, t), t));
                }
            }
        }
        keys.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
        if keys.len() > 1 {
            let (a, b) = (keys[0].0 as f64, keys[1].0 as f64);
            let tol = if qj.is_some() { 1e-4 } else { GUMBEL_KNIFE };
            if (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0) {
                e.knife = Some(format!("recovery keys {a} and {b}"));
            }
        }
        emit(&mut e, keys[0].1);
        return e;
    }
    unreachable!()
}

#[test]
fn verify_matches_the_rules_on_the_oracle() {
    let mut rng = StdRng::seed_from_u64(2024);
    let mut sampler = CpuSampler::with_threads(1);
    let (mut checked, mut skipped, mut rejections) = (0usize, 0usize, 0usize);
    for call in 0..120 {
        let with_probs = call % 3 == 2;
        let (b, k, v) = (8, [1, 2, 3, 5][call % 4], [6, 17, 64, 300][call / 4 % 4]);
        let (target, tokens, probs, params, init) = random_batch(&mut rng, b, k, v, with_probs);
        let drafts = Drafts {
            k,
            tokens: &tokens,
            probs: with_probs.then_some(&probs[..]),
        };
        let mut states = init.clone();
        let out = sampler
            .verify(Logits::F32(&target), v, &drafts, &params, &mut states)
            .unwrap();
        for r in 0..b {
            let pos: Vec<&[f32]> = (0..=k)
                .map(|j| &target[(r * (k + 1) + j) * v..(r * (k + 1) + j + 1) * v])
                .collect();
            let q = with_probs.then(|| &probs[r * k * v..(r + 1) * k * v]);
            let d = &tokens[r * k..(r + 1) * k];
            let want = expected_row(&pos, &params[r], &init[r], d, q);
            if want.knife.is_some() {
                skipped += 1;
                continue;
            }
            let o = &out[r];
            let what = format!(
                "call {call} row {r} (k {k}, V {v}, q {with_probs}, {:?})",
                params[r]
            );
            assert_eq!(
                (&o.tokens, o.accepted, o.status),
                (&want.tokens, want.accepted, want.status),
                "{what}: drafts {d:?}"
            );
            for (g, w) in o.logprobs.iter().zip(&want.logprobs) {
                assert!(
                    (*g as f64 - w).abs() <= 1e-5 * w.abs().max(1.0),
                    "{what}: logprobs {:?}, oracle {:?}",
                    o.logprobs,
                    want.logprobs
                );
            }
            assert_eq!(states[r], advanced(&init[r], &o.tokens), "{what}");
            checked += 1;
            if o.status == Status::Ok && (o.accepted as usize) < k {
                rejections += 1;
            }
        }
    }
    eprintln!(
        "{checked} rows checked ({rejections} with a rejection), {skipped} knife edges skipped"
    );
    assert!(skipped * 50 <= checked, "{skipped} skipped of {checked}");
    assert!(rejections >= 100, "{rejections}");
}

/// `CpuSampler::verify` splits rows across threads when `B (k + 1) V`
/// reaches `PARALLEL_MIN_ELEMENTS`; the outputs and states must not depend
/// on the thread count (1, 3 and 8 threads, with and without q, batches
/// that do not divide evenly).
#[test]
fn cpu_verify_threads_do_not_change_results() {
    let mut rng = StdRng::seed_from_u64(77);
    for (b, k, v, with_probs) in [
        (13, 3, 5101, false),
        (13, 2, 7001, true),
        (3, 4, 20000, true),
    ] {
        assert!(b * (k + 1) * v >= CpuSampler::PARALLEL_MIN_ELEMENTS);
        let (target, tokens, probs, params, init) = random_batch(&mut rng, b, k, v, with_probs);
        let drafts = Drafts {
            k,
            tokens: &tokens,
            probs: with_probs.then_some(&probs[..]),
        };
        let run = |threads: usize| {
            let mut states = init.clone();
            let out = CpuSampler::with_threads(threads)
                .verify(Logits::F32(&target), v, &drafts, &params, &mut states)
                .unwrap();
            (out, states)
        };
        let (one, one_states) = run(1);
        let emitted: usize = one.iter().map(|o| o.tokens.len()).sum();
        assert!(emitted > b, "b {b} k {k}: only {emitted} tokens emitted");
        for threads in [3, 8] {
            let (many, many_states) = run(threads);
            assert_eq!(many.len(), b);
            for (r, (x, y)) in one.iter().zip(&many).enumerate() {
                assert_eq!(x.tokens, y.tokens, "b {b} k {k} threads {threads} row {r}");
                assert_eq!(x.accepted, y.accepted, "row {r}");
                assert_eq!(x.status, y.status, "row {r}");
                let same_lp = x
                    .logprobs
                    .iter()
                    .zip(&y.logprobs)
                    .all(|(a, c)| a.to_bits() == c.to_bits());
                assert!(same_lp, "row {r}: {:?} vs {:?}", x.logprobs, y.logprobs);
            }
            assert_eq!(one_states, many_states, "b {b} k {k} threads {threads}");
        }
    }
}
