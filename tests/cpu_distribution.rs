//! Chi-square goodness-of-fit tests: the CPU backend's samples against the
//! oracle's filtered distribution.
//!
//! For each configuration a 20-50 token row is sampled N = 20000 times,
//! varying the seed (or the step), in one batch. Bins expecting fewer than 5
//! draws are merged; the statistic must stay below the 0.999 quantile of the
//! chi-square law (Wilson–Hilferty). Tokens outside the filtered set must
//! never appear. Everything is deterministic (fixed seeds), so a pass or a
//! failure reproduces.
//!
//! The oracle's distributions for plain temperature sampling are checked
//! against a direct softmax, and the oracle's own Gumbel-max sampler goes
//! through the same chi-square test, so the reference itself is checked.

mod oracle;

use oracle::{OracleState, chi2_merged, chi2_quantile, oracle_row};
use wgsample::{CpuSampler, Logits, RowState, SamplingParams, Status};

const N: usize = 20_000;
/// Standard normal quantile at 0.999.
const Z999: f64 = 3.090232306;

#[derive(Clone, Copy, Debug)]
enum Vary {
    Seed,
    Step,
}

struct Config {
    name: &'static str,
    logits: Vec<f32>,
    params: SamplingParams,
    state: RowState,
    vary: Vary,
}

/// A smooth, tie-free row of `v` logits in about [-2.5, 2.5].
fn smooth(v: usize) -> Vec<f32> {
    (0..v)
        .map(|i| {
            let x = i as f32;
            1.6 * (x * 2.399_963).sin() + 0.7 * (x * 0.731).cos() + 0.02 * x
        })
        .collect()
}

fn configs() -> Vec<Config> {
    let d = SamplingParams::default;
    let plain = |name, t: f32, vary| Config {
        name,
        logits: smooth(40),
        params: SamplingParams {
            temperature: t,
            seed: 11,
            ..d()
        },
        state: RowState::default(),
        vary,
    };
    let mut ties = smooth(30);
    for (i, z) in ties.iter_mut().enumerate() {
        *z = (*z * 1.5).round() * 0.5 + if i % 7 == 0 { 0.0 } else { -0.25 };
    }
    let mut with_ninf = smooth(48);
    for i in (0..48).step_by(5) {
        with_ninf[i] = f32::NEG_INFINITY;
    }
    vec![
        plain("T=0.7", 0.7, Vary::Seed),
        plain("T=1.0", 1.0, Vary::Seed),
        plain("T=1.5", 1.5, Vary::Seed),
        plain("T=1.0 step varies", 1.0, Vary::Step),
        Config {
            name: "top_k=7",
            logits: smooth(40),
            params: SamplingParams { top_k: 7, ..d() },
            state: RowState::default(),
            vary: Vary::Seed,
        },
        Config {
            name: "top_p=0.8 T=1.2",
            logits: smooth(40),
            params: SamplingParams {
                top_p: 0.8,
                temperature: 1.2,
                ..d()
            },
            state: RowState::default(),
            vary: Vary::Seed,
        },
        Config {
            name: "min_p=0.08",
            logits: smooth(50),
            params: SamplingParams { min_p: 0.08, ..d() },
            state: RowState::default(),
            vary: Vary::Step,
        },
        Config {
            name: "combined T=0.8 k=20 p=0.9 min_p=0.02",
            logits: smooth(50),
            params: SamplingParams {
                temperature: 0.8,
                top_k: 20,
                top_p: 0.9,
                min_p: 0.02,
                seed: 7,
                ..d()
            },
            state: RowState::default(),
            vary: Vary::Seed,
        },
        Config {
            name: "penalties + bias + ban + mask",
            logits: smooth(40),
            params: SamplingParams {
                temperature: 1.1,
                repetition_penalty: 1.3,
                presence_penalty: 0.4,
                frequency_penalty: 0.3,
                logit_bias: vec![(5, 1.5), (17, -0.7), (33, 2.0)],
                banned_tokens: vec![2, 9],
                allowed_tokens: Some(oracle::mask_from_flags(
                    &(0..40).map(|i| i % 6 != 4).collect::<Vec<_>>(),
                )),
                eos_token_ids: vec![12],
                min_new_tokens: 10,
                ..d()
            },
            state: RowState::with_output(&[0, 1, 3, 5, 8, 13], &[3, 3, 7, 21, 21, 21, 30]),
            vary: Vary::Seed,
        },
        Config {
            name: "penalties + top_k=10, step varies",
            logits: smooth(40),
            params: SamplingParams {
                top_k: 10,
                repetition_penalty: 0.8,
                frequency_penalty: -0.2,
                seed: 99,
                ..d()
            },
            state: RowState::with_output(&[4, 6], &[6, 6, 11]),
            vary: Vary::Step,
        },
        Config {
            name: "ties + top_k=4",
            logits: ties.clone(),
            params: SamplingParams { top_k: 4, ..d() },
            state: RowState::default(),
            vary: Vary::Seed,
        },
        Config {
            name: "ties + top_p=0.7",
            logits: ties,
            params: SamplingParams {
                top_p: 0.7,
                temperature: 0.9,
                ..d()
            },
            state: RowState::default(),
            vary: Vary::Seed,
        },
        Config {
            name: "-inf entries T=1.3",
            logits: with_ninf,
            params: SamplingParams {
                temperature: 1.3,
                ..d()
            },
            state: RowState::default(),
            vary: Vary::Seed,
        },
    ]
}

/// The batch for a configuration: N copies of the row, row `i` with seed
/// `params.seed + i` (or step `state.step + i`).
fn batch(c: &Config) -> (Vec<f32>, Vec<SamplingParams>, Vec<RowState>) {
    let logits: Vec<f32> = (0..N).flat_map(|_| c.logits.iter().copied()).collect();
    let mut params = Vec::with_capacity(N);
    let mut states = Vec::with_capacity(N);
    for i in 0..N as u64 {
        let mut p = c.params.clone();
        let mut s = c.state.clone();
        match c.vary {
            Vary::Seed => p.seed = p.seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            Vary::Step => s.step += i,
        }
        params.push(p);
        states.push(s);
    }
    (logits, params, states)
}

/// Checks counts against the oracle's filtered distribution.
fn check_fit(name: &str, v: usize, tokens: &[u32], dist_tokens: &[u32], dist_probs: &[f64]) {
    let mut counts = vec![0u64; v];
    for &t in tokens {
        counts[t as usize] += 1;
    }
    let mut observed = Vec::new();
    let mut expected = Vec::new();
    for (&t, &p) in dist_tokens.iter().zip(dist_probs) {
        observed.push(counts[t as usize]);
        expected.push(p * tokens.len() as f64);
    }
    let inside: u64 = observed.iter().sum();
    assert_eq!(
        inside as usize,
        tokens.len(),
        "{name}: {} draws outside the filtered set {dist_tokens:?}: counts {counts:?}",
        tokens.len() as u64 - inside
    );
    let (stat, df) = chi2_merged(&observed, &expected);
    if df == 0 {
        println!("{name}: one bin, all {} draws in it", tokens.len());
        return;
    }
    let limit = chi2_quantile(df as f64, Z999);
    println!("{name}: chi2 = {stat:.2}, df = {df}, limit(0.999) = {limit:.2}");
    assert!(
        stat < limit,
        "{name}: chi2 = {stat:.2} >= {limit:.2} (df {df}); observed {observed:?}, expected {expected:?}"
    );
}

#[test]
fn backend_samples_fit_oracle_distribution() {
    let mut sampler = CpuSampler::new();
    for c in configs() {
        let v = c.logits.len();
        let want = oracle_row(&c.logits, &c.params, &OracleState::from_row_state(&c.state));
        assert_eq!(want.status, Status::Ok, "{}", c.name);
        assert!(
            want.filter_knife.is_none(),
            "{}: config sits on a knife edge",
            c.name
        );
        assert!(want.dist_tokens.len() > 1, "{}: degenerate config", c.name);
        let (logits, params, mut states) = batch(&c);
        let out = sampler
            .sample(Logits::F32(&logits), v, &params, &mut states)
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let tokens: Vec<u32> = out
            .iter()
            .map(|o| {
                assert_eq!(o.status, Status::Ok, "{}: {o:?}", c.name);
                o.token
            })
            .collect();
        check_fit(c.name, v, &tokens, &want.dist_tokens, &want.dist_probs);

        // The backend's own filtered distribution agrees with the oracle's.
        let d = wgsample::filtered_distribution(Logits::F32(&c.logits), &c.params, &c.state)
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        oracle::check_distribution(&d, &want).unwrap_or_else(|e| panic!("{}: {e}", c.name));
    }
}

#[test]
fn oracle_samples_fit_its_distribution() {
    // The oracle's Gumbel-max sampler over the same configurations (checks
    // the reference and the Philox stream, independently of the backend).
    for c in configs() {
        let v = c.logits.len();
        let ost = OracleState::from_row_state(&c.state);
        let want = oracle_row(&c.logits, &c.params, &ost);
        let (_, params, states) = batch(&c);
        let tokens: Vec<u32> = (0..N)
            .map(|i| {
                let o = oracle_row(
                    &c.logits,
                    &params[i],
                    &OracleState::from_row_state(&states[i]),
                );
                o.token
            })
            .collect();
        check_fit(c.name, v, &tokens, &want.dist_tokens, &want.dist_probs);
    }
}

#[test]
fn oracle_plain_distribution_is_softmax() {
    // With only a temperature, the filtered distribution is softmax(z / T).
    for t in [0.7f64, 1.0, 1.5] {
        let z = smooth(40);
        let p = SamplingParams {
            temperature: t as f32,
            ..Default::default()
        };
        let o = oracle_row(&z, &p, &OracleState::default());
        let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
        let s: f64 = z.iter().map(|&x| ((x as f64 - m) / t).exp()).sum();
        assert_eq!(o.dist_tokens.len(), 40);
        for (&tok, &pr) in o.dist_tokens.iter().zip(&o.dist_probs) {
            let want = ((z[tok as usize] as f64 - m) / t).exp() / s;
            assert!(
                (pr - want).abs() < 1e-6,
                "T={t} token {tok}: {pr} vs {want}"
            );
        }
        assert!(o.dist_probs.windows(2).all(|w| w[0] >= w[1]));
    }
}

#[test]
fn chi2_helpers() {
    // Wilson–Hilferty against table values of the 0.999 quantile:
    // df 1: 10.828, df 10: 29.588, df 30: 59.703, df 49: 85.351.
    for (df, q) in [
        (1.0, 10.828),
        (10.0, 29.588),
        (30.0, 59.703),
        (49.0, 85.351),
    ] {
        let a = chi2_quantile(df, Z999);
        // Wilson–Hilferty is within about 0.6% of the table from df 10 up,
        // and 3% at df 1 (11.16 vs 10.83).
        let tol = if df < 2.0 { 0.035 * q } else { 0.007 * q };
        assert!((a - q).abs() < tol, "df {df}: {a} vs {q}");
    }
    // Merging: expected [1, 2, 3, 10, 20] -> bins {1,2,3} = 6, {10}, {20}.
    let (stat, df) = chi2_merged(&[1, 2, 3, 10, 20], &[1.0, 2.0, 3.0, 10.0, 20.0]);
    assert_eq!(df, 2);
    assert!(stat.abs() < 1e-12);
    // Observed 0 and 12 against 6 and 6: (36 + 36) / 6 = 12.
    let (stat, df) = chi2_merged(&[0, 12], &[6.0, 6.0]);
    assert_eq!(df, 1);
    assert!((stat - 12.0).abs() < 1e-12);
}
