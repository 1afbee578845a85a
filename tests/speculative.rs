//! `decode::speculative_decode`: draft/verify rounds with two bigram
//! models (a target and a flatter draft, built from a seeded rng).
//!
//! - greedy: the output equals plain greedy decoding of the target,
//!   step by step with `CpuSampler::sample`, on both verifiers;
//! - sampling: over 3000 seeds the first two generated tokens follow the
//!   target's filtered distribution (chi-square at p = 1e-4), with and
//!   without the draft probabilities; a verifier that accepts every draft
//!   fails the same check;
//! - acceptance: a draft equal to the target is accepted more often than a
//!   flat one.

mod support;

use support::stats::{chi2_merged, chi2_quantile};

use rand::{Rng, SeedableRng};
use wgsample::decode::{
    SpecConfig, SpecOutput, StopReason, Verifier, bigram_logits_cpu, speculative_decode,
};
use wgsample::gpu::{GpuSampler, SamplerConfig};
use wgsample::{
    CpuSampler, Drafts, Logits, Result, RowState, SamplingParams, VerifyOutput,
    filtered_distribution,
};

const V: usize = 12;

/// The target table (logits uniform in [-2.5, 2.5)) and a flatter draft
/// table (0.35 x the target plus noise).
fn tables() -> (Vec<f32>, Vec<f32>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2024);
    let target: Vec<f32> = (0..V * V).map(|_| rng.random_range(-2.5f32..2.5)).collect();
    let draft = target
        .iter()
        .map(|&x| 0.35 * x + rng.random_range(-0.4f32..0.4))
        .collect();
    (target, draft)
}

/// The bigram row after `token`.
fn row(table: &[f32], token: u32) -> Vec<f32> {
    let mut out = vec![0.0; V];
    bigram_logits_cpu(table, V, &[token], &mut out).unwrap();
    out
}

/// Runs `speculative_decode` with `draft_table` as the draft model and
/// `target_table` as the target.
fn run(
    verifier: &mut dyn Verifier,
    draft_table: &[f32],
    target_table: &[f32],
    prompt: &[u32],
    cfg: &SpecConfig,
) -> SpecOutput {
    let mut draft = |ctx: &[u32]| row(draft_table, *ctx.last().unwrap());
    let mut target = |ctx: &[u32], drafts: &[u32]| {
        // Positions after ctx, ctx + d_1, ..., ctx + d_1..d_k.
        let mut prev = vec![*ctx.last().unwrap()];
        prev.extend_from_slice(drafts);
        let mut out = vec![0.0; prev.len() * V];
        bigram_logits_cpu(target_table, V, &prev, &mut out).unwrap();
        out
    };
    let out = speculative_decode(verifier, &mut draft, &mut target, prompt, cfg).unwrap();
    assert!(out.accepted <= out.drafted, "{out:?}");
    assert!(out.tokens.len() <= out.accepted + out.rounds, "{out:?}");
    out
}

/// Plain decoding of the target bigram, one `CpuSampler::sample` a step.
fn plain_decode(table: &[f32], prompt: &[u32], params: &SamplingParams, n: usize) -> Vec<u32> {
    let mut sampler = CpuSampler::new();
    let mut state = [RowState::new(prompt)];
    let mut tokens = Vec::new();
    let mut last = *prompt.last().unwrap();
    for _ in 0..n {
        let o = sampler
            .sample(
                Logits::F32(&row(table, last)),
                V,
                std::slice::from_ref(params),
                &mut state,
            )
            .unwrap()[0];
        tokens.push(o.token);
        last = o.token;
        if params.eos_token_ids.contains(&o.token) {
            break;
        }
    }
    tokens
}

fn config(k: usize, max_new_tokens: usize, target: SamplingParams, send: bool) -> SpecConfig {
    SpecConfig {
        vocab: V,
        k,
        max_new_tokens,
        target_params: target,
        draft_params: SamplingParams::greedy(),
        send_draft_probs: send,
    }
}

fn gpu_sampler(max_batch: u32) -> GpuSampler {
    GpuSampler::new(support::gpu_ctx(), SamplerConfig::new(max_batch, V as u32)).unwrap()
}

#[test]
fn greedy_speculative_decoding_equals_plain_greedy_decoding() {
    let (target, draft) = tables();
    let prompt = [3u32, 7];
    let penalised = SamplingParams {
        frequency_penalty: 0.7,
        repetition_penalty: 1.2,
        ..SamplingParams::greedy()
    };
    let mut gpu = gpu_sampler(5);
    let mut rejected = 0;
    for params in [SamplingParams::greedy(), penalised] {
        let want = plain_decode(&target, &prompt, &params, 37);
        for k in [1, 2, 4] {
            for send in [false, true] {
                let cfg = config(k, 37, params.clone(), send);
                let cpu = run(&mut CpuSampler::new(), &draft, &target, &prompt, &cfg);
                assert_eq!(cpu.tokens, want, "k {k}, q {send}, {params:?}");
                assert_eq!(cpu.stop_reason, StopReason::MaxNewTokens);
                rejected += cpu.drafted - cpu.accepted;
                let g = run(&mut gpu, &draft, &target, &prompt, &cfg);
                assert_eq!(g, cpu, "gpu, k {k}, q {send}");
                // The draft equal to the target (model and parameters)
                // is always accepted.
                let same_cfg = SpecConfig {
                    draft_params: params.clone(),
                    ..cfg.clone()
                };
                let same = run(&mut CpuSampler::new(), &target, &target, &prompt, &same_cfg);
                assert_eq!(same.tokens, want);
                assert_eq!(same.accepted, same.drafted, "k {k}");
            }
        }
        // An EOS ends the sequence at its first occurrence, EOS included.
        let eos = want[10];
        let first = want.iter().position(|&t| t == eos).unwrap();
        let with_eos = SamplingParams {
            eos_token_ids: vec![eos],
            ..params.clone()
        };
        let out = run(
            &mut CpuSampler::new(),
            &draft,
            &target,
            &prompt,
            &config(3, 37, with_eos, true),
        );
        assert_eq!(out.tokens, want[..=first]);
        assert_eq!(out.stop_reason, StopReason::Eos);
    }
    // The flat draft is wrong often enough that recovery is exercised.
    assert!(rejected > 20, "only {rejected} rejected drafts");
}

/// Standard normal quantile at `1 - 1e-4`: these checks reject at
/// p = 1e-4.
const Z_1E4: f64 = 3.719_016;

/// The filtered target distribution after `state` at the bigram row of
/// `last`, dense over `V`.
fn dense(table: &[f32], last: u32, params: &SamplingParams, state: &RowState) -> Vec<f64> {
    let d = filtered_distribution(Logits::F32(&row(table, last)), params, state).unwrap();
    let mut p = vec![0.0; V];
    for (&t, &x) in d.tokens.iter().zip(&d.probs) {
        p[t as usize] = f64::from(x);
    }
    p
}

/// A verifier that accepts every draft and adds the target's normal
/// sample at position k+1: wrong whenever the draft differs from the
/// target, which the chi-square check must catch.
struct AcceptAll(CpuSampler);

impl Verifier for AcceptAll {
    fn verify(
        &mut self,
        target: Logits<'_>,
        vocab: usize,
        drafts: &Drafts<'_>,
        params: &[SamplingParams],
        states: &mut [RowState],
    ) -> Result<Vec<VerifyOutput>> {
        let Logits::F32(t) = target else {
            panic!("f32 only")
        };
        for &d in drafts.tokens {
            states[0].record(d);
        }
        let bonus = self
            .0
            .sample(Logits::F32(&t[drafts.k * vocab..]), vocab, params, states)?[0];
        let mut tokens = drafts.tokens.to_vec();
        tokens.push(bonus.token);
        Ok(vec![VerifyOutput {
            logprobs: vec![0.0; tokens.len()],
            tokens,
            accepted: drafts.k as u32,
            status: bonus.status,
        }])
    }
}

/// Over `trials` seeds, the counts of the first and second generated
/// token.
fn first_two_counts(
    verifier: &mut dyn Verifier,
    draft: &[f32],
    target: &[f32],
    prompt: &[u32],
    params: &SamplingParams,
    send: bool,
    trials: u64,
) -> [Vec<u64>; 2] {
    let mut counts = [vec![0u64; V], vec![0u64; V]];
    for seed in 0..trials {
        let cfg = SpecConfig {
            vocab: V,
            k: 3,
            max_new_tokens: 2,
            // The same seed on both sides: the draft stream starts at
            // DRAFT_STEP_OFFSET, so it stays independent of the target's.
            target_params: SamplingParams {
                seed,
                ..params.clone()
            },
            draft_params: SamplingParams {
                seed,
                ..SamplingParams::default()
            },
            send_draft_probs: send,
        };
        let out = run(verifier, draft, target, prompt, &cfg);
        assert_eq!(out.tokens.len(), 2);
        counts[0][out.tokens[0] as usize] += 1;
        counts[1][out.tokens[1] as usize] += 1;
    }
    counts
}

#[test]
fn sampled_tokens_follow_the_target_distribution() {
    let (target, draft) = tables();
    let prompt = [5u32];
    let params = SamplingParams {
        temperature: 0.8,
        top_k: 7,
        ..SamplingParams::default()
    };
    // p1: the first token's law; p2: the second's, summed over the first.
    let start = RowState::new(&prompt);
    let p1 = dense(&target, 5, &params, &start);
    let mut p2 = vec![0.0; V];
    for (x, &px) in p1.iter().enumerate() {
        if px > 0.0 {
            let mut st = start.clone();
            st.record(x as u32);
            for (y, py) in dense(&target, x as u32, &params, &st).iter().enumerate() {
                p2[y] += px * py;
            }
        }
    }
    let trials = 3000;
    let check = |name: &str, counts: &[Vec<u64>; 2]| -> bool {
        let mut ok = true;
        for (i, (c, p)) in counts.iter().zip([&p1, &p2]).enumerate() {
            let n: u64 = c.iter().sum();
            let expected: Vec<f64> = p.iter().map(|&pi| pi * n as f64).collect();
            let (stat, df) = chi2_merged(c, &expected);
            let limit = chi2_quantile(df.max(1) as f64, Z_1E4);
            eprintln!(
                "{name}: token {}: chi-square {stat:.1} (df {df}, limit {limit:.1})",
                i + 1
            );
            ok &= stat <= limit;
        }
        ok
    };
    for send in [true, false] {
        let counts = first_two_counts(
            &mut CpuSampler::new(),
            &draft,
            &target,
            &prompt,
            &params,
            send,
            trials,
        );
        assert!(check(&format!("cpu, q sent {send}"), &counts));
    }
    let counts = first_two_counts(
        &mut gpu_sampler(4),
        &draft,
        &target,
        &prompt,
        &params,
        true,
        1000,
    );
    assert!(check("gpu, q sent, 1000 seeds", &counts));
    // The check has the power to fail: accepting every draft gives the
    // draft's distribution, which it rejects.
    let counts = first_two_counts(
        &mut AcceptAll(CpuSampler::new()),
        &draft,
        &target,
        &prompt,
        &params,
        true,
        trials,
    );
    assert!(!check("accept-all verifier", &counts));
}

#[test]
fn a_draft_equal_to_the_target_is_accepted_more_often_than_a_flat_one() {
    let (target, _) = tables();
    let flat = vec![0.0f32; V * V];
    let params = SamplingParams {
        temperature: 0.9,
        top_p: 0.95,
        ..SamplingParams::default()
    };
    let rate = |draft_table: &[f32], draft_params: &SamplingParams| {
        let (mut drafted, mut accepted) = (0, 0);
        for seed in 0..150 {
            let cfg = SpecConfig {
                vocab: V,
                k: 4,
                max_new_tokens: 24,
                target_params: SamplingParams {
                    seed,
                    ..params.clone()
                },
                draft_params: SamplingParams {
                    seed: seed + 1000,
                    ..draft_params.clone()
                },
                send_draft_probs: true,
            };
            let out = run(&mut CpuSampler::new(), draft_table, &target, &[0], &cfg);
            assert_eq!(out.tokens.len(), 24);
            drafted += out.drafted;
            accepted += out.accepted;
        }
        accepted as f64 / drafted as f64
    };
    let same = rate(&target, &params);
    let flat = rate(&flat, &SamplingParams::default());
    eprintln!("acceptance: draft = target {same:.3}, flat draft {flat:.3}");
    assert!(same > 0.99, "{same}");
    assert!(same > flat + 0.2, "same {same}, flat {flat}");
}
