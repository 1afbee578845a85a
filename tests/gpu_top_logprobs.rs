//! Top log-probabilities on the GPU (SPEC.md "Top log-probabilities"):
//! against an f64 oracle written here from the SPEC's words (raw
//! `log_softmax`, most probable first, ties to the lower id, rank = 1 +
//! the number of strictly larger raw logits), and against the CPU backend.
//! Rows hold -inf, ties across the 1024-logit chunk boundaries the GPU
//! merges, huge magnitudes, and vocabularies from 1 to 2^17 + 5.

mod support;

use rand::{Rng, SeedableRng, rngs::StdRng};
use support::gpu_ctx;
use wgsample::gpu::{GpuSampler, SamplerConfig};
use wgsample::{Logits, RowOutput, RowState, SamplingParams, Status, TopLogprobs};

/// The oracle: (top ids with f64 logprobs, rank of `token`).
fn oracle(row: &[f32], n: usize, token: u32) -> (Vec<(u32, f64)>, u32) {
    let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
    let lse = max + sum.ln();
    let mut ids: Vec<u32> = (0..row.len() as u32).collect();
    ids.sort_by(|&a, &b| {
        row[b as usize]
            .partial_cmp(&row[a as usize])
            .unwrap()
            .then(a.cmp(&b))
    });
    let top = ids
        .iter()
        .take(n)
        .map(|&i| (i, row[i as usize] as f64 - lse))
        .collect();
    let x = row[token as usize];
    let rank = 1 + row.iter().filter(|&&y| y > x).count() as u32;
    (top, rank)
}

fn check_row(what: &str, row: &[f32], n: usize, out: &RowOutput, top: &TopLogprobs) {
    assert_eq!(out.status, Status::Ok, "{what}");
    let (want, rank) = oracle(row, n, out.token);
    assert_eq!(top.rank, rank, "{what}: rank of token {}", out.token);
    let ids: Vec<u32> = top.entries.iter().map(|e| e.token).collect();
    let want_ids: Vec<u32> = want.iter().map(|e| e.0).collect();
    assert_eq!(ids, want_ids, "{what}: top ids");
    for (e, w) in top.entries.iter().zip(&want) {
        let tol = 1e-5 * (1.0 + w.1.abs());
        assert!(
            (e.logprob as f64 - w.1).abs() <= tol || (w.1.is_infinite() && e.logprob as f64 == w.1),
            "{what}: logprob of {} is {}, oracle {}",
            e.token,
            e.logprob,
            w.1
        );
        if e.token == out.token {
            assert_eq!(
                e.logprob.to_bits(),
                out.logprob.to_bits(),
                "{what}: same as logprob"
            );
        }
    }
}

fn run(
    vocab: usize,
    rows: &[Vec<f32>],
    params: &[SamplingParams],
) -> (Vec<RowOutput>, Vec<TopLogprobs>) {
    let ctx = gpu_ctx();
    let b = rows.len() as u32;
    let mut s = GpuSampler::new(ctx, SamplerConfig::new(b, vocab as u32)).unwrap();
    for (r, p) in params.iter().enumerate() {
        s.set_params(r, p).unwrap();
        s.set_state(r, &RowState::new(&[])).unwrap();
    }
    let flat: Vec<f32> = rows.concat();
    s.sample_host_with_top_logprobs(Logits::F32(&flat), b)
        .unwrap()
}

fn params(n: u32, seed: u64, kind: u32) -> SamplingParams {
    let mut p = SamplingParams {
        top_logprobs: n,
        seed,
        ..Default::default()
    };
    match kind % 4 {
        0 => {}
        1 => p.temperature = 0.0,
        2 => {
            p.top_k = 5;
            p.top_p = 0.9;
        }
        _ => {
            // Processing changes z, never the raw logits the list ranks.
            p.repetition_penalty = 1.3;
            p.logit_bias = vec![(0, 3.0)];
        }
    }
    p
}

#[test]
fn gpu_top_logprobs_match_the_oracle() {
    let mut rng = StdRng::seed_from_u64(11);
    for &vocab in &[1usize, 2, 7, 1023, 1024, 1025, 3000, (1 << 17) + 5] {
        let mut rows = Vec::new();
        let mut ps = Vec::new();
        for r in 0..6u32 {
            let scale = [1.0f32, 8.0, 1e4, 1e30][r as usize % 4];
            let mut row: Vec<f32> = (0..vocab)
                .map(|_| support::logits::normal_logit(&mut rng, scale.min(1e4)))
                .collect();
            if r % 4 == 3 {
                // Huge values: the ordering is what counts.
                for x in row.iter_mut() {
                    *x *= 1e26;
                }
            }
            match r {
                1 => {
                    // -inf holes, some of them in the top range.
                    for x in row.iter_mut() {
                        if rng.random_bool(0.3) {
                            *x = f32::NEG_INFINITY;
                        }
                    }
                    if vocab > 1 {
                        row[0] = 1.0;
                    }
                }
                2 => {
                    // Ties across chunk boundaries: equal maxima at both
                    // sides of each 1024 edge and in many chunks.
                    for i in
                        (0..vocab).filter(|i| i % 1024 == 1023 || i % 1024 == 0 || i % 997 == 5)
                    {
                        row[i] = 9.5;
                    }
                }
                4 => {
                    // A flat row: every tie goes to the lower id.
                    row.iter_mut().for_each(|x| *x = 0.25);
                }
                _ => {}
            }
            rows.push(row);
            let n = [1u32, 5, 20, 20, 3, 20][r as usize];
            ps.push(params(n, 1000 + r as u64, r));
        }
        let (outs, tops) = run(vocab, &rows, &ps);
        for r in 0..rows.len() {
            let n = (ps[r].top_logprobs as usize).min(vocab);
            check_row(
                &format!("V={vocab} row {r}"),
                &rows[r],
                n,
                &outs[r],
                &tops[r],
            );
            assert_eq!(tops[r].entries.len(), n);
        }
    }
}

#[test]
fn gpu_top_logprobs_equal_the_cpu() {
    let mut rng = StdRng::seed_from_u64(12);
    let vocab = 5000;
    let b = 16;
    let mut rows = Vec::new();
    let mut ps = Vec::new();
    for r in 0..b {
        let mut row = support::logits::normal_logits(&mut rng, vocab, 3.0);
        if r % 3 == 0 {
            for i in (0..vocab).step_by(1024) {
                row[i] = 12.0;
            }
        }
        rows.push(row);
        ps.push(params([0u32, 1, 7, 20][r % 4], 77 + r as u64, r as u32 / 4));
    }
    let (g_out, g_top) = run(vocab, &rows, &ps);
    let flat: Vec<f32> = rows.concat();
    let mut states = vec![RowState::new(&[]); b];
    let (c_out, c_top) = wgsample::CpuSampler::new()
        .sample_with_top_logprobs(Logits::F32(&flat), vocab, &ps, &mut states)
        .unwrap();
    for r in 0..b {
        assert_eq!(g_out[r].token, c_out[r].token, "row {r}: token");
        assert_eq!(g_top[r].rank, c_top[r].rank, "row {r}: rank");
        let gi: Vec<u32> = g_top[r].entries.iter().map(|e| e.token).collect();
        let ci: Vec<u32> = c_top[r].entries.iter().map(|e| e.token).collect();
        assert_eq!(gi, ci, "row {r}: top ids");
        for (g, c) in g_top[r].entries.iter().zip(&c_top[r].entries) {
            assert!(
                (g.logprob - c.logprob).abs() <= 1e-5 * (1.0 + c.logprob.abs()),
                "row {r}"
            );
        }
    }
}

#[test]
fn rows_without_a_token_or_without_top_logprobs_get_none() {
    let vocab = 64;
    let mut rows = vec![vec![0.5f32; vocab]; 3];
    rows[1][3] = f32::NAN;
    let ps = vec![params(0, 1, 0), params(5, 2, 0), params(5, 3, 0)];
    let (outs, tops) = run(vocab, &rows, &ps);
    assert_eq!(tops[0], TopLogprobs::default());
    assert_eq!(outs[1].status, Status::InvalidLogits);
    assert_eq!(tops[1], TopLogprobs::default());
    assert_eq!(tops[2].entries.len(), 5);
    assert_eq!(tops[2].rank, 1, "a flat row: nothing is above the token");
}
