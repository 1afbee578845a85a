//! Beam search (SPEC.md "Beam search", HF transformers 5.x semantics):
//! the manager against a naive step-by-step oracle and an exhaustive
//! search on tiny vocabularies, answers worked out by hand, the CPU step
//! against a full sort, the GPU step and the GPU search against the CPU,
//! and bad input (errors, never panics).
//!
//! GPU tests run on whatever adapter `open_device` finds (lavapipe here
//! and in CI); without one they fail and say how to install a driver.

mod support;

use rand::{Rng, SeedableRng, rngs::StdRng};
use support::gpu_ctx;
use wgsample::Error;
use wgsample::beam::{
    BeamBackend, BeamConfig, BeamSearch, Candidate, DEAD_BEAM_SCORE, EarlyStopping, GpuBeamStep,
    Hypothesis, MAX_K, beam_search, beam_search_bigram, cpu_step,
};

const NEG: f32 = f32::NEG_INFINITY;
const MODES: [EarlyStopping; 3] = [
    EarlyStopping::True,
    EarlyStopping::False,
    EarlyStopping::Never,
];

fn cfg(b: u32, lp: f32, mode: EarlyStopping, eos: &[u32], max_new: u32, nrs: u32) -> BeamConfig {
    BeamConfig {
        num_beams: b,
        length_penalty: lp,
        early_stopping: mode,
        eos_token_ids: eos.to_vec(),
        max_new_tokens: max_new,
        num_return_sequences: nrs,
    }
}

/// A `[v, v]` bigram of logits uniform in [-3, 3]; with `holes`, some
/// entries -inf (rarely a whole row); with `grid`, some rows on a 0.5 grid
/// (exact ties inside the row).
fn random_bigram(rng: &mut StdRng, v: usize, holes: bool, grid: bool) -> Vec<f32> {
    let mut m = Vec::with_capacity(v * v);
    for _ in 0..v {
        let dead_row = holes && rng.random_bool(0.05);
        let on_grid = grid && rng.random_bool(0.3);
        for _ in 0..v {
            let x: f32 = rng.random_range(-3.0..3.0);
            m.push(if dead_row || (holes && rng.random_bool(0.15)) {
                NEG
            } else if on_grid {
                (x * 2.0).round() / 2.0
            } else {
                x
            });
        }
    }
    m
}

/// log_softmax of one row as the implementation computes it: a
/// single-beam CPU step at beam score 0 with k = V returns every
/// `0 + log_softmax(z)[t]` (checked against f64 in `cpu_step_matches_full_sort`).
/// Using it keeps the oracle's candidate scores bit-identical to the
/// implementation's, so the comparison below can be exact.
fn log_softmax_row(row: &[f32]) -> Vec<f32> {
    let v = row.len();
    let mut lp = vec![0.0; v];
    for c in cpu_step(row, &[0.0], 1, v, v).unwrap() {
        lp[c.token as usize] = c.score;
    }
    lp
}

/// SPEC.md's beam rules applied naively: every candidate scored and fully
/// sorted each step, the `b` finished slots (placeholders at -1e9 first,
/// the oldest entries) re-sorted each step. Returns the best
/// `num_return_sequences` real hypotheses (neither placeholders nor
/// descendants of the dead start beams) as (tokens, score).
fn naive_beam(bigram: &[f32], v: usize, start: u32, c: &BeamConfig) -> Vec<(Vec<u32>, f32)> {
    let b = c.num_beams as usize;
    let mut eos = c.eos_token_ids.clone();
    eos.sort();
    eos.dedup();
    let k = (2.max(1 + eos.len()) * b).min(b * v);
    let pen = |l: u32| (l as f64).powf(c.length_penalty as f64) as f32;
    // (score, tokens, dead) of the running beams; beam 0 live, the others
    // dead.
    let mut beams: Vec<(f32, Vec<u32>, bool)> = (0..b)
        .map(|j| (if j == 0 { 0.0 } else { -1e9 }, vec![], j != 0))
        .collect();
    // Slots: (score, arrival serial, Some((tokens, dead)) or None for a
    // placeholder); older wins ties, and placeholders are the oldest.
    type Slot = (f32, usize, Option<(Vec<u32>, bool)>);
    let mut fin: Vec<Slot> = (0..b).map(|i| (-1e9, i, None)).collect();
    let mut serial = b;
    for len in 1..=c.max_new_tokens {
        let mut all: Vec<(f32, usize)> = Vec::new();
        for (j, (s, toks, _)) in beams.iter().enumerate() {
            let last = toks.last().copied().unwrap_or(start) as usize;
            let lp = log_softmax_row(&bigram[last * v..(last + 1) * v]);
            for (t, l) in lp.iter().enumerate() {
                all.push((*s + *l, j * v + t));
            }
        }
        all.sort_by(|x, y| y.0.partial_cmp(&x.0).unwrap().then(x.1.cmp(&y.1)));
        all.truncate(k);
        let mut running: Vec<(f32, Vec<u32>, bool)> = Vec::new();
        for (rank, &(s, flat)) in all.iter().enumerate() {
            let (j, t) = (flat / v, (flat % v) as u32);
            let mut toks = beams[j].1.clone();
            toks.push(t);
            if eos.contains(&t) || len == c.max_new_tokens {
                if rank < b {
                    let score = s / pen(len);
                    let score = if score.is_nan() { NEG } else { score };
                    fin.push((score, serial, Some((toks, beams[j].2))));
                    serial += 1;
                }
            } else if running.len() < b {
                running.push((s, toks, beams[j].2));
            }
        }
        fin.sort_by(|x, y| y.0.partial_cmp(&x.0).unwrap().then(x.1.cmp(&y.1)));
        fin.truncate(b);
        if len == c.max_new_tokens || running.is_empty() {
            break;
        }
        if fin.iter().all(|f| f.2.is_some()) {
            if c.early_stopping == EarlyStopping::True {
                break;
            }
            let l = if c.early_stopping == EarlyStopping::Never && c.length_penalty > 0.0 {
                c.max_new_tokens
            } else {
                len
            };
            if running[0].0 / pen(l) <= fin[b - 1].0 {
                break;
            }
        }
        while running.len() < b {
            running.push((NEG, running[0].1.clone(), running[0].2));
        }
        beams = running;
    }
    fin.into_iter()
        .filter_map(|(s, _, h)| h.filter(|h| !h.1).map(|h| (h.0, s)))
        .take(c.num_return_sequences as usize)
        .collect()
}

/// Every sequence the bigram can generate from `start` (ending at an EOS
/// id or at `max_new` tokens), scored in f64 as `sum_logprobs /
/// len^lp`, best first.
fn exhaustive(
    bigram: &[f32],
    v: usize,
    start: u32,
    eos: &[u32],
    max_new: u32,
    lp: f32,
) -> Vec<(Vec<u32>, f64)> {
    struct Ex<'a> {
        bigram: &'a [f32],
        v: usize,
        eos: &'a [u32],
        max_new: usize,
        lp: f64,
        out: Vec<(Vec<u32>, f64)>,
    }
    impl Ex<'_> {
        fn rec(&mut self, seq: &mut Vec<u32>, last: usize, sum: f64) {
            let row = &self.bigram[last * self.v..(last + 1) * self.v];
            let m = row.iter().fold(f64::NEG_INFINITY, |a, &x| a.max(x as f64));
            let lse = m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
            for (t, &z) in row.iter().enumerate() {
                let s = sum + z as f64 - lse;
                seq.push(t as u32);
                if self.eos.contains(&(t as u32)) || seq.len() == self.max_new {
                    let score = s / (seq.len() as f64).powf(self.lp);
                    self.out.push((seq.clone(), score));
                } else {
                    self.rec(seq, t, s);
                }
                seq.pop();
            }
        }
    }
    let mut ex = Ex {
        bigram,
        v,
        eos,
        max_new: max_new as usize,
        lp: lp as f64,
        out: Vec::new(),
    };
    ex.rec(&mut Vec::new(), start as usize, 0.0);
    let mut out = ex.out;
    out.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap());
    out
}

fn assert_same(got: &[Hypothesis], want: &[(Vec<u32>, f32)], what: &str) {
    let g: Vec<(Vec<u32>, f32)> = got.iter().map(|h| (h.tokens.clone(), h.score)).collect();
    assert_eq!(g, want, "{what}");
}

/// The manager (driven by the CPU step) against the naive oracle, exactly,
/// over V 2..=5, max_new_tokens 1..=4, b 1..=3, length_penalty 0, 1, 2,
/// -1, every early-stopping mode, no / one / two / duplicated EOS ids,
/// every num_return_sequences, random bigrams with -inf entries and ties.
/// Also checks that the modes really differ somewhere.
#[test]
fn manager_matches_naive_oracle() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut runs = 0;
    let (mut true_vs_false, mut false_vs_never, mut short) = (0, 0, 0);
    for v in 2..=5usize {
        let mut eos_sets: Vec<Vec<u32>> = vec![vec![], vec![v as u32 - 1], vec![0]];
        if v >= 3 {
            eos_sets.push(vec![1, v as u32 - 1]);
            eos_sets.push(vec![1, 1]);
        }
        for seed in 0..3 {
            let bigram = random_bigram(&mut rng, v, seed > 0, seed == 2);
            let start = rng.random_range(0..v as u32);
            for max_new in 1..=4 {
                for b in 1..=3 {
                    for lp in [0.0, 1.0, 2.0, -1.0] {
                        for eos in &eos_sets {
                            let mut per_mode = Vec::new();
                            for mode in MODES {
                                let nrs = rng.random_range(1..=b);
                                let c = cfg(b, lp, mode, eos, max_new, nrs);
                                let got =
                                    beam_search_bigram(&bigram, v, start, &c, BeamBackend::Cpu)
                                        .unwrap();
                                let want = naive_beam(&bigram, v, start, &c);
                                assert_same(&got, &want, &format!("{c:?} v {v} start {start}"));
                                // Fewer only when dead-beam descendants or
                                // placeholders (over masked rows) hold slots.
                                assert!(got.len() <= nrs as usize);
                                short += usize::from(got.len() < nrs as usize);
                                per_mode.push(got.first().cloned());
                                runs += 1;
                            }
                            true_vs_false += usize::from(per_mode[0] != per_mode[1]);
                            false_vs_never += usize::from(per_mode[1] != per_mode[2]);
                        }
                    }
                }
            }
        }
    }
    assert!(runs > 3000, "{runs}");
    assert!(
        true_vs_false > 0 && false_vs_never > 0,
        "{true_vs_false} {false_vs_never}"
    );
    eprintln!("{runs} runs; {short} returned fewer than num_return_sequences");
    assert!(short < runs / 10, "{short} of {runs}");
}

/// With `b = V^max_new_tokens` beams nothing is ever pruned, so beam
/// search must return the best sequences of an exhaustive search whenever
/// its stopping rule is exact: `never` (any length_penalty; with
/// `length_penalty > 0` the bound uses `L = max_new_tokens`) and `false`
/// with `length_penalty <= 0` (scores can only fall as sequences grow).
#[test]
fn exhaustive_search_agrees_without_pruning() {
    let mut rng = StdRng::seed_from_u64(11);
    for v in 2..=5usize {
        for max_new in 1..=4u32 {
            let b = (v as u32).pow(max_new);
            if b > 256 {
                continue;
            }
            for eos in [vec![], vec![v as u32 - 1], vec![0, 1]] {
                let bigram = random_bigram(&mut rng, v, false, false);
                let start = rng.random_range(0..v as u32);
                for lp in [0.0f32, 1.0, 2.0, -1.0] {
                    let all = exhaustive(&bigram, v, start, &eos, max_new, lp);
                    let nrs = all.len().min(3) as u32;
                    for mode in [EarlyStopping::Never, EarlyStopping::False] {
                        if mode == EarlyStopping::False && lp > 0.0 {
                            continue;
                        }
                        let c = cfg(b, lp, mode, &eos, max_new, nrs);
                        let got =
                            beam_search_bigram(&bigram, v, start, &c, BeamBackend::Cpu).unwrap();
                        // Rank by rank: the same score, and a sequence
                        // that scores that (paths using the same
                        // transitions in another order tie exactly).
                        assert_eq!(got.len(), nrs as usize);
                        for (i, (h, (_, s))) in got.iter().zip(&all).enumerate() {
                            let own = all.iter().find(|e| e.0 == h.tokens).map(|e| e.1);
                            let tol = 1e-5 * s.abs().max(1.0);
                            assert!(
                                (h.score as f64 - s).abs() <= tol
                                    && own.is_some_and(|o| (o - s).abs() <= tol)
                                    && got[..i].iter().all(|p| p.tokens != h.tokens),
                                "{c:?} v {v} rank {i}: {got:?} vs {all:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// With one beam and early_stopping true or false, beam search is greedy
/// decoding: the first hypothesis arrives when the argmax is EOS, and the
/// running beam (ranked below it at the same length) cannot beat it.
#[test]
fn one_beam_is_greedy() {
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..200 {
        let v = rng.random_range(2..40usize);
        let bigram = random_bigram(&mut rng, v, false, true);
        let start = rng.random_range(0..v as u32);
        let eos = rng.random_range(0..v as u32);
        let max_new = rng.random_range(1..12);
        // Greedy: argmax (lowest index on ties) until EOS or max_new.
        let (mut last, mut toks, mut sum) = (start as usize, vec![], 0.0f32);
        loop {
            let row = &bigram[last * v..(last + 1) * v];
            let lp = log_softmax_row(row);
            let t = (0..v).fold(0, |a, t| if row[t] > row[a] { t } else { a });
            toks.push(t as u32);
            sum += lp[t];
            last = t;
            if t as u32 == eos || toks.len() == max_new as usize {
                break;
            }
        }
        for mode in [EarlyStopping::True, EarlyStopping::False] {
            let c = cfg(1, 1.0, mode, &[eos], max_new, 1);
            let got = beam_search_bigram(&bigram, v, start, &c, BeamBackend::Cpu).unwrap();
            assert_eq!(got[0].tokens, toks);
            assert!((got[0].score - sum / toks.len() as f32).abs() < 1e-5);
        }
    }
}

/// Logits `ln p` of a row of probabilities (0 gives -inf).
fn ln_row(p: &[f64]) -> Vec<f32> {
    p.iter()
        .map(|&x| if x == 0.0 { NEG } else { x.ln() as f32 })
        .collect()
}

fn close(got: &Hypothesis, tokens: &[u32], score: f64) {
    assert_eq!(got.tokens, tokens, "{got:?}");
    assert!(
        (got.score as f64 - score).abs() < 1e-5,
        "{got:?}: expected score {score}"
    );
}

/// Greedy is suboptimal, beam search with b = 2 finds the better sequence.
///
/// Tokens: 0 = S (start), 1 = A, 2 = B, 3 = EOS; max_new_tokens 2,
/// length_penalty 1, EOS 3.
/// After S: A 0.5, B 0.4, EOS 0.1. After A: A 0.3, B 0.3, EOS 0.4. After
/// B: A 0.05, B 0.05, EOS 0.9.
///
/// - b = 1 (greedy): step 1 keeps A (0.5); step 2 reaches max_new_tokens,
///   the best candidate [A, EOS] (0.5 * 0.4 = 0.2) finishes: score
///   ln(0.2) / 2 = -0.8047.
/// - b = 2: step 1 ranks A (0.5), B (0.4), EOS (0.1, rank 2 >= b: not a
///   hypothesis), so A and B run. Step 2 ranks [B, EOS] (0.36), [A, EOS]
///   (0.2), [A, A], [A, B] (0.15); all finish (max_new_tokens), ranks 0
///   and 1 become hypotheses: [B, EOS] ln(0.36) / 2 = -0.5108, then
///   [A, EOS] -0.8047.
#[test]
fn hand_greedy_is_suboptimal() {
    let rows = [
        ln_row(&[0.0, 0.5, 0.4, 0.1]),
        ln_row(&[0.0, 0.3, 0.3, 0.4]),
        ln_row(&[0.0, 0.05, 0.05, 0.9]),
        ln_row(&[0.0, 0.3, 0.3, 0.4]),
    ];
    let bigram: Vec<f32> = rows.concat();
    for backend in [BeamBackend::Cpu, BeamBackend::Gpu(gpu_ctx())] {
        for mode in MODES {
            let greedy =
                beam_search_bigram(&bigram, 4, 0, &cfg(1, 1.0, mode, &[3], 2, 1), backend).unwrap();
            assert_eq!(greedy.len(), 1);
            close(&greedy[0], &[1, 3], 0.2f64.ln() / 2.0);
            let beam =
                beam_search_bigram(&bigram, 4, 0, &cfg(2, 1.0, mode, &[3], 2, 2), backend).unwrap();
            assert_eq!(beam.len(), 2);
            close(&beam[0], &[2, 3], 0.36f64.ln() / 2.0);
            close(&beam[1], &[1, 3], 0.2f64.ln() / 2.0);
        }
    }
}

/// Length penalty and early stopping change the answer.
///
/// Tokens: 0 = S, 1 = X, 2 = EOS; b = 2, max_new_tokens 3. After S: X 0.55,
/// EOS 0.45. After X: X 0.4, EOS 0.6. Sums of logprobs: [EOS] ln 0.45 =
/// -0.7985, [X, EOS] ln 0.33 = -1.1087, [X, X] ln 0.22 = -1.5141,
/// [X, X, EOS] ln 0.132 = -2.0250, [X, X, X] ln 0.088 = -2.4304.
///
/// Step 1: ranks X, EOS, then dead-beam candidates: [EOS] is a hypothesis
/// (rank 1 < b). Step 2: [X, EOS] (rank 0) is the second; b = 2 are
/// finished, so the stopping rule decides, with the best running beam
/// [X, X] at -1.5141:
/// - lp 0: -1.5141 <= worst -1.1087: stop (every mode). Result [EOS],
///   [X, EOS].
/// - lp -1: scores are sum * L: [X, EOS] -2.2175; running -3.0282 <= it:
///   stop. Result [EOS], [X, EOS].
/// - lp 1: true stops: [X, EOS] -0.5544, [EOS] -0.7985. false: -1.5141 / 2
///   = -0.7571 > -0.7985: go on (never too: -1.5141 / 3 = -0.5047). Step 3
///   (max_new_tokens) adds [X, X, EOS] -0.6750 and [X, X, X] -0.8101:
///   result [X, EOS] -0.5544, [X, X, EOS] -0.6750.
/// - lp 2: true: [X, EOS] -1.1087 / 4 = -0.2772, [EOS] -0.7985. false and
///   never go on: [X, X, EOS] -2.0250 / 9 = -0.2250, [X, X, X] -0.2700.
#[test]
fn hand_length_penalty_and_early_stopping() {
    let rows = [
        ln_row(&[0.0, 0.55, 0.45]),
        ln_row(&[0.0, 0.4, 0.6]),
        ln_row(&[0.0, 0.5, 0.5]),
    ];
    let bigram: Vec<f32> = rows.concat();
    let l = |p: f64| p.ln();
    let (e, xe, xxe, xxx) = (
        l(0.45),
        l(0.55 * 0.6),
        l(0.55 * 0.4 * 0.6),
        l(0.55 * 0.4 * 0.4),
    );
    for backend in [BeamBackend::Cpu, BeamBackend::Gpu(gpu_ctx())] {
        for mode in MODES {
            let run = |lp: f32| {
                beam_search_bigram(&bigram, 3, 0, &cfg(2, lp, mode, &[2], 3, 2), backend).unwrap()
            };
            let r = run(0.0);
            close(&r[0], &[2], e);
            close(&r[1], &[1, 2], xe);
            let r = run(-1.0);
            close(&r[0], &[2], e);
            close(&r[1], &[1, 2], xe * 2.0);
            let r = run(1.0);
            close(&r[0], &[1, 2], xe / 2.0);
            if mode == EarlyStopping::True {
                close(&r[1], &[2], e);
            } else {
                close(&r[1], &[1, 1, 2], xxe / 3.0);
            }
            let r = run(2.0);
            if mode == EarlyStopping::True {
                close(&r[0], &[1, 2], xe / 4.0);
                close(&r[1], &[2], e);
            } else {
                close(&r[0], &[1, 1, 2], xxe / 9.0);
                close(&r[1], &[1, 1, 1], xxx / 9.0);
            }
        }
    }
}

/// `never` against `false` (b = 1, length_penalty 2, max_new_tokens 3).
///
/// Tokens 0 = S, 1 = X, 2 = EOS. After S: EOS 0.6, X 0.4; after X: EOS
/// 0.9, X 0.1. Step 1: [EOS] (rank 0) finishes with ln 0.6 = -0.5108; the
/// running [X] has -0.9163. false scores it at L = 1: -0.9163 <= -0.5108,
/// stop: [EOS]. never scores it at L = max_new_tokens = 3: -0.9163 / 9 =
/// -0.1018 > -0.5108, go on. Step 2: [X, EOS] = ln 0.36 / 4 = -0.2554
/// replaces [EOS]; running [X, X] ln 0.04 / 9 = -0.3577 <= -0.2554: stop.
#[test]
fn hand_never_against_false() {
    let rows = [
        ln_row(&[0.0, 0.4, 0.6]),
        ln_row(&[0.0, 0.1, 0.9]),
        ln_row(&[0.0, 0.5, 0.5]),
    ];
    let bigram: Vec<f32> = rows.concat();
    for backend in [BeamBackend::Cpu, BeamBackend::Gpu(gpu_ctx())] {
        let run = |mode| {
            beam_search_bigram(&bigram, 3, 0, &cfg(1, 2.0, mode, &[2], 3, 1), backend).unwrap()
        };
        close(&run(EarlyStopping::False)[0], &[2], 0.6f64.ln());
        close(&run(EarlyStopping::True)[0], &[2], 0.6f64.ln());
        close(&run(EarlyStopping::Never)[0], &[1, 2], 0.36f64.ln() / 4.0);
    }
}

/// Two EOS ids: K = 3 b, and either id ends a hypothesis.
///
/// Tokens 0 = S, 1 = X, 2 = E1, 3 = E2; b = 2, length_penalty 0. After S:
/// X 0.2, E1 0.5, E2 0.3. Step 1 ranks E1, E2 (both < b: hypotheses), X,
/// then dead-beam candidates; the running beam X (ln 0.2 = -1.609) is not
/// above the worst hypothesis (ln 0.3 = -1.204): stop with [E1], [E2].
/// Without EOS ids the same model runs to max_new_tokens = 2.
#[test]
fn hand_multiple_eos() {
    let rows = [
        ln_row(&[0.0, 0.2, 0.5, 0.3]),
        ln_row(&[0.0, 0.1, 0.1, 0.8]),
        ln_row(&[0.25; 4]),
        ln_row(&[0.25; 4]),
    ];
    let bigram: Vec<f32> = rows.concat();
    for backend in [BeamBackend::Cpu, BeamBackend::Gpu(gpu_ctx())] {
        let r = beam_search_bigram(
            &bigram,
            4,
            0,
            &cfg(2, 0.0, EarlyStopping::False, &[2, 3], 5, 2),
            backend,
        )
        .unwrap();
        close(&r[0], &[2], 0.5f64.ln());
        close(&r[1], &[3], 0.3f64.ln());
        // No EOS: candidates end only at max_new_tokens; after S the best
        // two-token sequences are [E1, *] (0.5 * 0.25) with the lowest
        // index first on the tie: [E1, S] and [E1, X].
        let r = beam_search_bigram(
            &bigram,
            4,
            0,
            &cfg(2, 0.0, EarlyStopping::False, &[], 2, 2),
            backend,
        )
        .unwrap();
        close(&r[0], &[2, 0], 0.125f64.ln());
        close(&r[1], &[2, 1], 0.125f64.ln());
    }
}

/// Random `[rows, v]` logits: normal-ish values, exact ties (values on a
/// grid, duplicated rows), -inf holes, and one all -inf row when `dead`.
fn step_logits(rng: &mut StdRng, rows: usize, v: usize, dead: bool) -> Vec<f32> {
    let mut l: Vec<f32> = Vec::with_capacity(rows * v);
    for r in 0..rows {
        if r > 0 && rng.random_bool(0.2) {
            let prev = l[(r - 1) * v..r * v].to_vec();
            l.extend(prev);
            continue;
        }
        let grid = rng.random_bool(0.3);
        for _ in 0..v {
            let x: f32 = rng.random_range(-4.0..4.0);
            l.push(if rng.random_bool(0.03) {
                NEG
            } else if grid {
                (x * 4.0).round() / 4.0
            } else {
                x
            });
        }
    }
    if dead && rows > 1 {
        let r = rng.random_range(0..rows);
        l[r * v..(r + 1) * v].fill(NEG);
    }
    l
}

fn step_scores(rng: &mut StdRng, rows: usize, b: usize) -> Vec<f32> {
    (0..rows)
        .map(|r| match rng.random_range(0..6) {
            0 => 0.0,
            1 if r % b != 0 => DEAD_BEAM_SCORE,
            2 if r % b != 0 => NEG,
            3 => -1.5,
            _ => rng.random_range(-20.0..0.0),
        })
        .collect()
}

fn same_candidates(got: &[Candidate], want: &[Candidate], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (a, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            (a.beam, a.token),
            (w.beam, w.token),
            "{what}: candidate {i}"
        );
        assert!(
            a.score == w.score || (a.score - w.score).abs() <= 1e-5 * w.score.abs().max(1.0),
            "{what}: candidate {i}: {a:?} vs {w:?}"
        );
    }
}

/// The CPU step against a full sort of every candidate scored in f64
/// (scores within 1e-5, candidates identical, ties by flat index).
#[test]
fn cpu_step_matches_full_sort() {
    let mut rng = StdRng::seed_from_u64(5);
    for &(g, b, v, k) in &[
        (1, 1, 1, 1),
        (3, 2, 7, 4),
        (2, 3, 5, 15),
        (2, 4, 1000, 8),
        (1, 2, 3000, 1500),
        (4, 3, 20000, 12),
    ] {
        let rows = g * b;
        let logits = step_logits(&mut rng, rows, v, true);
        let scores = step_scores(&mut rng, rows, b);
        let got = cpu_step(&logits, &scores, b, v, k).unwrap();
        let mut want = Vec::new();
        for gi in 0..g {
            let mut all: Vec<(f64, f32, usize)> = Vec::new();
            for j in 0..b {
                let r = gi * b + j;
                let row = &logits[r * v..(r + 1) * v];
                let m = row.iter().fold(f64::NEG_INFINITY, |a, &x| a.max(x as f64));
                let lse = m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
                for (t, &z) in row.iter().enumerate() {
                    let s = if m == f64::NEG_INFINITY {
                        f64::NEG_INFINITY
                    } else {
                        scores[r] as f64 + (z as f64 - lse)
                    };
                    // Rank by the f32 the implementation must produce
                    // (rounded once), report the f64 value.
                    all.push((s, s as f32, j * v + t));
                }
            }
            all.sort_by(|x, y| y.1.partial_cmp(&x.1).unwrap().then(x.2.cmp(&y.2)));
            want.extend(all[..k].iter().map(|&(s, _, f)| Candidate {
                score: s as f32,
                beam: (f / v) as u32,
                token: (f % v) as u32,
            }));
        }
        same_candidates(&got, &want, &format!("g {g} b {b} v {v} k {k}"));
    }
}

/// The GPU step equals the CPU step: same candidates in the same order,
/// scores within 1e-5, over several groups, ties (grid values, duplicated
/// rows, equal beam scores), -inf logits, an all -inf row, dead (-1e9) and
/// -inf beam scores, vocabularies up to 32000 (and not multiples of the
/// 4096-logit chunk), K from 1 to MAX_K.
#[test]
fn gpu_step_matches_cpu() {
    let mut rng = StdRng::seed_from_u64(9);
    for &(g, b, v, k) in &[
        (1, 1, 1, 1),
        (3, 3, 5, 15),
        (5, 2, 7, 4),
        (2, 4, 32000, 8),
        (3, 3, 5000, 12),
        (1, 8, 4097, 16),
        (2, 1, 9000, 2),
        (1, 2, 5000, MAX_K as usize),
    ] {
        let rows = g * b;
        let mut step = GpuBeamStep::new(gpu_ctx(), g as u32, b as u32, v as u32, k as u32).unwrap();
        for rep in 0..2 {
            let logits = step_logits(&mut rng, rows, v, rep == 1);
            let scores = step_scores(&mut rng, rows, b);
            let want = cpu_step(&logits, &scores, b, v, k).unwrap();
            let got = step.step_host(&logits, &scores).unwrap();
            same_candidates(&got, &want, &format!("g {g} b {b} v {v} k {k} rep {rep}"));
        }
        // Fewer groups than the step was created for.
        if g > 1 {
            let logits = step_logits(&mut rng, b, v, false);
            let scores = step_scores(&mut rng, b, b);
            let want = cpu_step(&logits, &scores, b, v, k).unwrap();
            let got = step.step_host(&logits, &scores).unwrap();
            same_candidates(&got, &want, &format!("1 of {g} groups, b {b} v {v}"));
        }
    }
}

/// The engine entry: logits already in a `wgpu::Buffer`, at a byte offset
/// that is a multiple of 4 but not of the storage alignment.
#[test]
fn gpu_step_reads_logits_in_place() {
    let ctx = gpu_ctx();
    let mut rng = StdRng::seed_from_u64(13);
    let (g, b, v, k) = (2usize, 3usize, 6000usize, 6usize);
    let logits = step_logits(&mut rng, g * b, v, false);
    let scores = step_scores(&mut rng, g * b, b);
    let pad = 7usize;
    let mut data = vec![f32::NAN; pad];
    data.extend(&logits);
    data.extend([f32::NAN; 3]);
    let buf = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("engine logits"),
        size: (data.len() * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.queue.write_buffer(&buf, 0, bytemuck::cast_slice(&data));
    let mut step = GpuBeamStep::new(ctx, g as u32, b as u32, v as u32, k as u32).unwrap();
    let got = step.step(view(&buf, (pad * 4) as u64), &scores).unwrap();
    let want = cpu_step(&logits, &scores, b, v, k).unwrap();
    same_candidates(&got, &want, "logits at byte offset 28");
    // Recording into the caller's encoder, then reading back.
    let mut enc = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    step.record(&mut enc, view(&buf, (pad * 4) as u64), &scores)
        .unwrap();
    same_candidates(&step.submit_and_read(enc).unwrap(), &want, "record");
    // Errors: no STORAGE usage, a block past the end, an odd offset.
    let plain = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (data.len() * 4) as u64,
        usage: wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    assert!(step.step(view(&plain, 0), &scores).is_err());
    assert!(
        step.step(view(&buf, ((pad + 4) * 4) as u64), &scores)
            .is_err()
    );
    assert!(step.step(view(&buf, 2), &scores).is_err());
    // Still usable afterwards.
    same_candidates(
        &step.step(view(&buf, (pad * 4) as u64), &scores).unwrap(),
        &want,
        "after errors",
    );
}

/// `beam_search_bigram` on the GPU equals the CPU: same hypotheses, scores
/// within 1e-5 (relative beyond 1).
#[test]
fn gpu_search_matches_cpu() {
    let mut rng = StdRng::seed_from_u64(21);
    let mut runs = 0;
    for &(v, b) in &[(6usize, 3u32), (40, 1), (40, 4), (300, 5), (1000, 4)] {
        let bigram = random_bigram(&mut rng, v, v < 300, true);
        for (i, mode) in MODES.into_iter().enumerate() {
            let eos: Vec<u32> = match i {
                0 => vec![],
                1 => vec![rng.random_range(0..v as u32)],
                _ => vec![0, v as u32 - 1],
            };
            let lp = [0.0, 1.0, -1.0, 2.0][rng.random_range(0..4)];
            let c = cfg(b, lp, mode, &eos, rng.random_range(3..10), b.min(3));
            let start = rng.random_range(0..v as u32);
            let want = beam_search_bigram(&bigram, v, start, &c, BeamBackend::Cpu).unwrap();
            let got =
                beam_search_bigram(&bigram, v, start, &c, BeamBackend::Gpu(gpu_ctx())).unwrap();
            assert_eq!(got.len(), want.len());
            for (x, y) in got.iter().zip(&want) {
                assert_eq!(x.tokens, y.tokens, "{c:?} v {v}");
                assert!(
                    x.score == y.score
                        || (x.score - y.score).abs() <= 1e-5 * y.score.abs().max(1.0),
                    "{c:?} v {v}: {x:?} vs {y:?}"
                );
            }
            runs += 1;
        }
    }
    assert_eq!(runs, 15);
}

/// Several groups at once: a `BeamSearch` of three groups driven by one
/// `GpuBeamStep` equals three single-group CPU searches.
#[test]
fn several_groups_on_the_gpu() {
    let mut rng = StdRng::seed_from_u64(17);
    let v = 200usize;
    let bigram = random_bigram(&mut rng, v, false, false);
    let starts = [3u32, 77, 150];
    for mode in MODES {
        let c = cfg(3, 1.0, mode, &[5, 9], 8, 2);
        let mut search = BeamSearch::new(&c, v, starts.len()).unwrap();
        let mut step = GpuBeamStep::new(
            gpu_ctx(),
            starts.len() as u32,
            3,
            v as u32,
            search.k() as u32,
        )
        .unwrap();
        let mut steps = 0;
        while !search.is_done() {
            let mut logits = Vec::new();
            for (g, &s) in starts.iter().enumerate() {
                for j in 0..3 {
                    let last = *search.beam_tokens(g, j).unwrap().last().unwrap_or(&s) as usize;
                    logits.extend_from_slice(&bigram[last * v..(last + 1) * v]);
                }
            }
            let cands = step.step_host(&logits, search.beam_scores()).unwrap();
            search.advance(&cands).unwrap();
            steps += 1;
            assert!(steps <= 8);
        }
        assert!(search.advance(&[]).is_err());
        let res = search.into_results();
        for (g, &s) in starts.iter().enumerate() {
            let want = beam_search_bigram(&bigram, v, s, &c, BeamBackend::Cpu).unwrap();
            assert_eq!(res[g].len(), want.len());
            for (x, y) in res[g].iter().zip(&want) {
                assert_eq!(x.tokens, y.tokens, "group {g} {mode}");
                assert!((x.score - y.score).abs() <= 1e-5 * y.score.abs().max(1.0));
            }
        }
    }
}

/// Bad configs and bad input are errors naming what is wrong, on both
/// backends; nothing panics.
#[test]
fn bad_input_is_an_error() {
    let v = 5;
    let bigram = vec![0.0f32; v * v];
    let good = cfg(2, 1.0, EarlyStopping::False, &[4], 3, 1);
    for backend in [BeamBackend::Cpu, BeamBackend::Gpu(gpu_ctx())] {
        let bad_cfgs: Vec<(BeamConfig, &str)> = vec![
            (
                BeamConfig {
                    num_beams: 0,
                    num_return_sequences: 0,
                    ..good.clone()
                },
                "num_beams",
            ),
            (
                BeamConfig {
                    num_return_sequences: 3,
                    ..good.clone()
                },
                "num_return_sequences",
            ),
            (
                BeamConfig {
                    num_return_sequences: 0,
                    ..good.clone()
                },
                "num_return_sequences",
            ),
            (
                BeamConfig {
                    max_new_tokens: 0,
                    ..good.clone()
                },
                "max_new_tokens",
            ),
            (
                BeamConfig {
                    length_penalty: f32::INFINITY,
                    ..good.clone()
                },
                "length_penalty",
            ),
            (
                BeamConfig {
                    length_penalty: f32::NAN,
                    ..good.clone()
                },
                "length_penalty",
            ),
            (
                BeamConfig {
                    eos_token_ids: vec![5],
                    ..good.clone()
                },
                "eos_token_ids",
            ),
        ];
        for (c, field) in bad_cfgs {
            let e = beam_search_bigram(&bigram, v, 0, &c, backend).unwrap_err();
            assert!(matches!(e, Error::InvalidParams { .. }), "{e:?}");
            assert!(e.to_string().contains(field), "{e}");
        }
        // Start token, matrix shape, vocab 0.
        let e = beam_search_bigram(&bigram, v, 5, &good, backend).unwrap_err();
        assert!(e.to_string().contains("start_token"), "{e}");
        assert!(matches!(
            beam_search_bigram(&bigram[1..], v, 0, &good, backend),
            Err(Error::InvalidArgument(_))
        ));
        assert!(beam_search_bigram(&[], 0, 0, &good, backend).is_err());
        // NaN / +inf in a row the search reads: an error naming the row.
        for bad in [f32::NAN, f32::INFINITY] {
            let mut m = bigram.clone();
            m[2] = bad;
            let e = beam_search_bigram(&m, v, 0, &good, backend).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
            assert!(e.to_string().contains("row 0"), "{e}");
        }
        // A row that is never read may hold anything.
        let mut m = bigram.clone();
        m[3 * v] = f32::NAN;
        let mut only0 = good.clone();
        only0.eos_token_ids = vec![];
        let mut rows0 = m.clone();
        rows0[..v].copy_from_slice(&[5.0, -9.0, -9.0, -9.0, -9.0]);
        assert!(beam_search_bigram(&rows0, v, 0, &only0, backend).is_ok());
        // Model errors and wrong lengths.
        let e = beam_search(v, 0, &good, backend, |_| {
            Err(Error::InvalidArgument("model broke".into()))
        })
        .unwrap_err();
        assert!(
            matches!(&e, Error::InvalidArgument(m) if m == "model broke"),
            "{e:?}"
        );
        let e = beam_search(v, 0, &good, backend, |s| Ok(vec![0.0; s.len() * v + 1])).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    }
    // "early_stopping" from text.
    let e = "sometimes".parse::<EarlyStopping>().unwrap_err();
    assert!(e.to_string().contains("early_stopping") && e.to_string().contains("sometimes"));
    // Step-level errors.
    assert!(cpu_step(&[0.0; 10], &[0.0, 0.0], 2, 5, 11).is_err());
    assert!(cpu_step(&[0.0; 10], &[0.0, 0.0], 2, 5, 0).is_err());
    assert!(cpu_step(&[0.0; 10], &[0.0, f32::INFINITY], 2, 5, 2).is_err());
    assert!(cpu_step(&[0.0; 9], &[0.0, 0.0], 2, 5, 2).is_err());
    let c = gpu_ctx();
    assert!(GpuBeamStep::new(c, 1, 2, 5, 11).is_err());
    assert!(GpuBeamStep::new(c, 0, 2, 5, 2).is_err());
    let e = GpuBeamStep::new(c, 1, 2, 5000, MAX_K + 1).unwrap_err();
    assert!(e.to_string().contains("MAX_K"), "{e}");
    let e = GpuBeamStep::new(c, 1, 4097, 4096, 2).unwrap_err();
    assert!(e.to_string().contains("MAX_LISTS"), "{e}");
    let mut step = GpuBeamStep::new(c, 1, 2, 5, 2).unwrap();
    assert!(step.step_host(&[0.0; 20], &[0.0; 4]).is_err()); // 2 groups > max 1
    assert!(step.step_host(&[0.0; 10], &[0.0, f32::NAN]).is_err());
    let mut nan = [0.0f32; 10];
    nan[7] = f32::NAN;
    let e = step.step_host(&nan, &[0.0, 0.0]).unwrap_err();
    assert!(e.to_string().contains("row 1"), "{e}");
    assert!(step.step_host(&[0.0; 10], &[0.0, 0.0]).is_ok());
    // The manager rejects malformed candidates.
    let mut s = BeamSearch::new(&good, v, 1).unwrap();
    assert!(BeamSearch::new(&good, v, 0).is_err());
    let k = s.k();
    let mut cands = vec![
        Candidate {
            score: -1.0,
            beam: 0,
            token: 0
        };
        k
    ];
    assert!(s.advance(&cands[1..]).is_err());
    assert!(s.advance(&cands).is_err()); // not strictly best-first
    for (i, c) in cands.iter_mut().enumerate() {
        c.token = i as u32;
    }
    cands[1].beam = 9;
    assert!(s.advance(&cands).is_err());
    cands[1].beam = 0;
    assert!(s.advance(&cands).is_ok());
}

#[test]
fn huge_beam_counts_and_out_of_range_groups_are_errors() {
    // num_beams = u32::MAX with V = 1 fits the u32 candidate index, but
    // would allocate billions of beams: an error naming the limit.
    let c = cfg(u32::MAX, 1.0, EarlyStopping::False, &[], 3, 1);
    for backend in [BeamBackend::Cpu, BeamBackend::Gpu(gpu_ctx())] {
        let e = beam_search_bigram(&[0.0], 1, 0, &c, backend).unwrap_err();
        assert!(
            e.to_string()
                .contains(&wgsample::beam::MAX_ROWS.to_string()),
            "{e}"
        );
    }
    let e = BeamSearch::new(
        &cfg(1_000_000_000, 1.0, EarlyStopping::True, &[], 3, 1),
        4,
        1,
    )
    .unwrap_err();
    assert!(e.to_string().contains("limit"), "{e}");
    let e =
        BeamSearch::new(&cfg(4, 1.0, EarlyStopping::True, &[], 3, 1), 4, usize::MAX).unwrap_err();
    assert!(e.to_string().contains("limit"), "{e}");
    // Accessors of a one-group search: errors for group 5, not panics.
    let s = BeamSearch::new(&cfg(2, 1.0, EarlyStopping::True, &[], 3, 1), 4, 1).unwrap();
    assert!(s.group_done(5).is_err());
    assert!(s.finished(5).is_err());
    assert!(s.filled_slots(5).is_err());
    assert!(s.beam_tokens(5, 0).is_err() && s.beam_tokens(0, 2).is_err());
    assert!(!s.group_done(0).unwrap());
    assert!(s.finished(0).unwrap().is_empty());
}

/// f32 logits at byte `offset` of `buffer`.
fn view(buffer: &wgpu::Buffer, offset: u64) -> wgsample::gpu::LogitsView<'_> {
    wgsample::gpu::LogitsView {
        buffer,
        offset,
        dtype: wgsample::gpu::DType::F32,
    }
}
