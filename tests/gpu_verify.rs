//! Speculative-decoding verification on the GPU: hand-checkable greedy
//! cases, the state's advance, bad input, and (in `verify_equals_cpu*`)
//! token-for-token agreement with the CPU backend on random
//! configurations.

mod support;

use support::gpu_ctx;
use wgsample::gpu::{GpuSampler, SamplerConfig};
use wgsample::{Drafts, Logits, RowState, SamplingParams, Status};

fn sampler(max_batch: u32, vocab: u32) -> GpuSampler {
    GpuSampler::new(gpu_ctx(), SamplerConfig::new(max_batch, vocab)).unwrap()
}

/// `[k + 1, V]` target rows whose argmax at position j is `argmax[j]`.
fn peaked(vocab: usize, argmax: &[u32]) -> Vec<f32> {
    let mut t = Vec::new();
    for (j, &a) in argmax.iter().enumerate() {
        let mut row: Vec<f32> = (0..vocab)
            .map(|i| ((i * 7 + j * 3) % 11) as f32 * 0.1)
            .collect();
        row[a as usize] = 5.0;
        t.extend(row);
    }
    t
}

#[test]
fn greedy_verification_accepts_the_argmax_and_stops_at_the_first_miss() {
    let vocab = 3000;
    let mut s = sampler(8, vocab as u32);
    s.set_params(0, &SamplingParams::greedy()).unwrap();
    s.set_state(0, &RowState::new(&[1, 2])).unwrap();
    let argmax = [10u32, 2000, 7, 1500];
    let target = peaked(vocab, &argmax);
    // All three drafts right: 3 accepted + the bonus.
    let out = s
        .verify_host(
            Logits::F32(&target),
            1,
            &Drafts {
                k: 3,
                tokens: &argmax[..3],
                probs: None,
            },
        )
        .unwrap();
    assert_eq!(out[0].status, Status::Ok);
    assert_eq!(out[0].tokens, argmax.to_vec());
    assert_eq!(out[0].accepted, 3);
    let st = s.read_state(0).unwrap();
    assert_eq!((st.step, st.generated_len()), (4, 4));
    // The second draft wrong: d_1, then the argmax of position 2.
    let out = s
        .verify_host(
            Logits::F32(&target),
            1,
            &Drafts {
                k: 3,
                tokens: &[10, 5, 7],
                probs: None,
            },
        )
        .unwrap();
    assert_eq!(out[0].tokens, vec![10, 2000]);
    assert_eq!(out[0].accepted, 1);
    let st = s.read_state(0).unwrap();
    assert_eq!((st.step, st.generated_len()), (6, 6));
    assert_eq!(st.output_count(10), 2);
    assert_eq!(st.output_count(2000), 2);
}

/// A random verification: `b` rows, `k` drafts, V = `vocab`, row kinds
/// mixing greedy, plain sampling, filters and penalties; drafts are the
/// position's argmax, a likely token or a random one.
#[derive(Clone)]
struct Case {
    vocab: usize,
    k: usize,
    target: Vec<f32>,
    tokens: Vec<u32>,
    probs: Option<Vec<f32>>,
    params: Vec<SamplingParams>,
    states: Vec<RowState>,
}

fn random_case(seed: u64, b: usize, k: usize, vocab: usize, with_q: bool) -> Case {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let scale = [1.0f32, 3.0, 8.0][seed as usize % 3];
    let target = support::logits::normal_logits(&mut rng, b * (k + 1) * vocab, scale);
    let mut tokens = Vec::new();
    for r in 0..b {
        for j in 0..k {
            let row = &target[(r * (k + 1) + j) * vocab..][..vocab];
            let arg = (0..vocab)
                .max_by(|&x, &y| row[x].total_cmp(&row[y]).then(y.cmp(&x)))
                .unwrap();
            tokens.push(match rng.random_range(0..3) {
                0 => arg as u32,
                1 => rng.random_range(0..vocab as u32),
                _ => (arg as u32 + 1) % vocab as u32,
            });
        }
    }
    let probs = with_q.then(|| {
        // A draft model close to the target (a noisy softmax of the
        // position's logits, 10% uniform), so p(d) / q(d) spans (0, 1)
        // and the random acceptance matters.
        let mut q = Vec::new();
        for (i, _) in tokens.iter().enumerate() {
            let (r, j) = (i / k, i % k);
            let row = &target[(r * (k + 1) + j) * vocab..][..vocab];
            let noisy: Vec<f64> = row
                .iter()
                .map(|&x| x as f64 + support::logits::normal_logit(&mut rng, 0.7) as f64)
                .collect();
            let m = noisy.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = noisy.iter().map(|x| (x - m).exp()).collect();
            let s: f64 = e.iter().sum();
            q.extend(e.iter().map(|x| (0.9 * x / s + 0.1 / vocab as f64) as f32));
        }
        q
    });
    let params = (0..b)
        .map(|r| {
            let mut p = SamplingParams {
                seed: seed * 100 + r as u64,
                ..Default::default()
            };
            match (r + seed as usize) % 6 {
                0 => p.temperature = 0.0,
                1 => p.temperature = 0.7,
                2 => {
                    p.top_k = 20;
                    p.top_p = 0.9;
                    p.temperature = 1.3;
                }
                3 => {
                    p.min_p = 0.05;
                    p.repetition_penalty = 1.4;
                    p.frequency_penalty = 0.7;
                    p.presence_penalty = 0.3;
                }
                4 => {
                    p.temperature = 0.0;
                    p.repetition_penalty = 2.0;
                    p.presence_penalty = 1.5;
                }
                _ => {
                    p.top_p = 0.5;
                    p.logit_bias = vec![(3, 2.0)];
                    p.eos_token_ids = vec![1];
                    p.min_new_tokens = 3;
                }
            }
            p
        })
        .collect();
    let states = (0..b)
        .map(|r| RowState::with_output(&[r as u32, 5, 9], &[2, 2, (r as u32 * 13) % vocab as u32]))
        .collect();
    Case {
        vocab,
        k,
        target,
        tokens,
        probs,
        params,
        states,
    }
}

type Both = (
    Vec<wgsample::VerifyOutput>,
    Vec<wgsample::VerifyOutput>,
    Vec<RowState>,
    Vec<RowState>,
);

/// GPU outputs, CPU outputs, GPU states after, CPU states after.
fn run_both(c: &Case) -> Both {
    let b = c.params.len();
    let drafts = Drafts {
        k: c.k,
        tokens: &c.tokens,
        probs: c.probs.as_deref(),
    };
    let mut cpu_states = c.states.clone();
    let want = wgsample::CpuSampler::new()
        .verify(
            Logits::F32(&c.target),
            c.vocab,
            &drafts,
            &c.params,
            &mut cpu_states,
        )
        .unwrap();
    let mut s = sampler((b * (c.k + 1)) as u32, c.vocab as u32);
    for r in 0..b {
        s.set_params(r, &c.params[r]).unwrap();
        s.set_state(r, &c.states[r]).unwrap();
    }
    let got = s
        .verify_host(Logits::F32(&c.target), b as u32, &drafts)
        .unwrap();
    let gpu_states = (0..b).map(|r| s.read_state(r).unwrap()).collect();
    (got, want, gpu_states, cpu_states)
}

fn check_equal(what: &str, c: &Case) -> u32 {
    let (got, want, gpu_states, cpu_states) = run_both(c);
    let mut rejected = 0;
    for r in 0..got.len() {
        let (g, w) = (&got[r], &want[r]);
        assert_eq!(
            g.tokens, w.tokens,
            "{what} row {r}: tokens ({:?})",
            c.params[r]
        );
        assert_eq!(g.accepted, w.accepted, "{what} row {r}: accepted");
        assert_eq!(g.status, w.status, "{what} row {r}: status");
        for (a, e) in g.logprobs.iter().zip(&w.logprobs) {
            assert!(
                (a - e).abs() <= 1e-4 * (1.0 + e.abs()),
                "{what} row {r}: logprob {a} vs {e}"
            );
        }
        assert_eq!(
            gpu_states[r].step, cpu_states[r].step,
            "{what} row {r}: step"
        );
        assert_eq!(
            gpu_states[r].generated_len(),
            cpu_states[r].generated_len(),
            "{what} row {r}: n"
        );
        for t in &g.tokens {
            assert_eq!(
                gpu_states[r].output_count(*t),
                cpu_states[r].output_count(*t),
                "{what} row {r}: count of {t}"
            );
        }
        if (g.accepted as usize) < c.k {
            rejected += 1;
        }
    }
    rejected
}

#[test]
fn verify_equals_cpu_without_draft_probabilities() {
    let mut rejected = 0;
    for seed in 0..6u64 {
        let vocab = [50usize, 1500, 4099][seed as usize % 3];
        let c = random_case(seed, 6, [1usize, 3, 4][seed as usize % 3], vocab, false);
        rejected += check_equal(&format!("seed {seed} V {vocab}"), &c);
    }
    assert!(
        rejected > 5,
        "the cases must exercise rejections ({rejected})"
    );
}

#[test]
fn verify_equals_cpu_with_draft_probabilities() {
    let mut rejected = 0;
    for seed in 10..16u64 {
        let vocab = [50usize, 1500, 4099][seed as usize % 3];
        let c = random_case(seed, 6, [2usize, 4, 1][seed as usize % 3], vocab, true);
        rejected += check_equal(&format!("seed {seed} V {vocab} with q"), &c);
    }
    assert!(
        rejected > 5,
        "the cases must exercise rejections ({rejected})"
    );
}

#[test]
fn bad_drafts_are_errors_and_change_nothing() {
    let vocab = 40;
    let c = random_case(3, 2, 2, vocab, true);
    let mut s = sampler(6, vocab as u32);
    for r in 0..2 {
        s.set_params(r, &c.params[r]).unwrap();
        s.set_state(r, &c.states[r]).unwrap();
    }
    let q = c.probs.clone().unwrap();
    let mut bad_sum = q.clone();
    bad_sum[0] += 0.5;
    let mut zero_d = q.clone();
    let d0 = c.tokens[0] as usize;
    let moved = zero_d[d0];
    zero_d[d0] = 0.0;
    zero_d[(d0 + 1) % vocab] += moved;
    let big = vec![vocab as u32, 0, 1, 2];
    let cases: Vec<(&str, Drafts<'_>, &[f32])> = vec![
        (
            "k = 0",
            Drafts {
                k: 0,
                tokens: &[],
                probs: None,
            },
            &c.target,
        ),
        (
            "token >= V",
            Drafts {
                k: 2,
                tokens: &big,
                probs: None,
            },
            &c.target,
        ),
        (
            "length",
            Drafts {
                k: 2,
                tokens: &c.tokens[..3],
                probs: None,
            },
            &c.target,
        ),
        (
            "q sum",
            Drafts {
                k: 2,
                tokens: &c.tokens,
                probs: Some(&bad_sum),
            },
            &c.target,
        ),
        (
            "q(d) = 0",
            Drafts {
                k: 2,
                tokens: &c.tokens,
                probs: Some(&zero_d),
            },
            &c.target,
        ),
        (
            "target shape",
            Drafts {
                k: 2,
                tokens: &c.tokens,
                probs: None,
            },
            &c.target[..vocab * 5],
        ),
        (
            "rows",
            Drafts {
                k: 3,
                tokens: &[1, 2, 3, 4, 5, 6],
                probs: None,
            },
            &c.target,
        ),
    ];
    for (what, d, t) in cases {
        let e = s.verify_host(Logits::F32(t), 2, &d).expect_err(what);
        assert!(
            matches!(e, wgsample::Error::InvalidArgument(_)),
            "{what}: {e}"
        );
    }
    for r in 0..2 {
        assert_eq!(
            s.read_state(r).unwrap().step,
            c.states[r].step,
            "row {r} untouched"
        );
    }
}

#[test]
fn device_buffers_bf16_target_at_an_offset_and_a_bad_q_row_on_the_device() {
    use wgpu::util::DeviceExt;
    let vocab = 1500;
    let mut c = random_case(21, 3, 3, vocab, true);
    // The CPU sees the values the bf16 buffer holds.
    let half: Vec<half::bf16> = c.target.iter().map(|&x| half::bf16::from_f32(x)).collect();
    c.target = half.iter().map(|x| x.to_f32()).collect();
    let (_, want, _, _) = run_both(&c);
    let ctx = gpu_ctx();
    // 6 bf16 values (12 bytes) of padding before row 0.
    let mut padded = vec![0u16; 6];
    padded.extend(half.iter().map(|x| x.to_bits()));
    let tbuf = ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&padded),
            usage: wgpu::BufferUsages::STORAGE,
        });
    // Row 2's first q row sums to 2 on the device: that row is refused
    // there (InvalidDraft), the others verify as on the CPU.
    let mut q = c.probs.clone().unwrap();
    let at = 2 * 3 * vocab;
    for x in &mut q[at..at + vocab] {
        *x *= 2.0;
    }
    let qbuf = ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&q),
            usage: wgpu::BufferUsages::STORAGE,
        });
    let mut s = sampler(12, vocab as u32);
    for r in 0..3 {
        s.set_params(r, &c.params[r]).unwrap();
        s.set_state(r, &c.states[r]).unwrap();
    }
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    let view = wgsample::gpu::LogitsView {
        buffer: &tbuf,
        offset: 12,
        dtype: wgsample::gpu::DType::Bf16,
    };
    s.record_verify(
        &mut enc,
        view,
        3,
        &c.tokens,
        Some(wgsample::gpu::LogitsView::f32(&qbuf)),
    )
    .unwrap();
    let got = s.submit_and_read_verify(enc).unwrap();
    for r in 0..2 {
        assert_eq!(
            (&got[r].tokens, got[r].accepted, got[r].status),
            (&want[r].tokens, want[r].accepted, want[r].status),
            "row {r}"
        );
        for (a, e) in got[r].logprobs.iter().zip(&want[r].logprobs) {
            assert!(
                (a - e).abs() <= 1e-4 * (1.0 + e.abs()),
                "row {r}: {a} vs {e}"
            );
        }
    }
    assert_eq!(got[2].status, Status::InvalidDraft);
    assert!(got[2].tokens.is_empty());
    assert_eq!(
        s.read_state(2).unwrap().step,
        c.states[2].step,
        "row 2 does not advance"
    );
}

#[test]
fn verify_equals_cpu_at_the_extremes() {
    // |logits| up to 1e4 with -inf holes, T = 1e-3 and 1e-2, subnormal
    // temperatures' overflow to the T -> 0 limit, and V = 1.
    for (seed, with_q) in [(40u64, false), (41, true)] {
        let mut c = random_case(seed, 6, 3, 300, with_q);
        for (i, x) in c.target.iter_mut().enumerate() {
            *x *= 1.2e3;
            if i % 7 == 3 {
                *x = f32::NEG_INFINITY;
            }
        }
        for (r, p) in c.params.iter_mut().enumerate() {
            if r % 3 == 1 {
                p.temperature = [1e-3, 1e-2][r % 2];
            }
        }
        check_equal(&format!("extremes seed {seed}"), &c);
    }
    let mut c = random_case(42, 3, 2, 1, false);
    c.tokens = vec![0; 6];
    c.states = vec![RowState::default(); 3];
    c.params = vec![
        SamplingParams::greedy(),
        SamplingParams {
            temperature: 1e-3,
            seed: 1,
            ..Default::default()
        },
        SamplingParams {
            top_p: 0.5,
            repetition_penalty: 1.5,
            seed: 2,
            ..Default::default()
        },
    ];
    check_equal("V = 1", &c);
}

/// Records `c` with `record_verify_device`, the drafts read from `words`
/// (placed in a device buffer at byte offset `4 * pad`), and returns the
/// outputs and the device states after.
fn run_device_drafts(
    c: &Case,
    words: &[u32],
    pad: usize,
) -> (Vec<wgsample::VerifyOutput>, Vec<RowState>) {
    use wgpu::util::DeviceExt;
    let ctx = gpu_ctx();
    let b = c.params.len();
    let mut contents = vec![0xDEAD_BEEFu32; pad];
    contents.extend_from_slice(words);
    contents.push(0xDEAD_BEEF);
    let dbuf = ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("drafts"),
            contents: bytemuck::cast_slice(&contents),
            usage: wgpu::BufferUsages::COPY_SRC,
        });
    let tbuf = ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("target"),
            contents: bytemuck::cast_slice(&c.target),
            usage: wgpu::BufferUsages::STORAGE,
        });
    let qbuf = c.probs.as_ref().map(|q| {
        ctx.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("q"),
                contents: bytemuck::cast_slice(q),
                usage: wgpu::BufferUsages::STORAGE,
            })
    });
    let mut s = sampler((b * (c.k + 1)) as u32, c.vocab as u32);
    for r in 0..b {
        s.set_params(r, &c.params[r]).unwrap();
        s.set_state(r, &c.states[r]).unwrap();
    }
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    s.record_verify_device(
        &mut enc,
        wgsample::gpu::LogitsView::f32(&tbuf),
        b as u32,
        c.k as u32,
        &dbuf,
        4 * pad as u64,
        qbuf.as_ref().map(wgsample::gpu::LogitsView::f32),
    )
    .unwrap();
    let got = s.submit_and_read_verify(enc).unwrap();
    let states = (0..b).map(|r| s.read_state(r).unwrap()).collect();
    (got, states)
}

/// Drafts read from a device buffer (`record_verify_device`) verify as
/// the same drafts from the host do on the CPU, with and without q, at a
/// nonzero offset; a draft `>= V` there (V itself, u32::MAX) makes only
/// its row `InvalidDraft`, with nothing emitted and no state change.
#[test]
fn drafts_from_a_device_buffer_verify_like_host_drafts() {
    for (seed, b, k, vocab, with_q) in [
        (40u64, 6, 3, 1500, false),
        (41, 5, 4, 50, true),
        (42, 4, 2, 4099, true),
    ] {
        let c = random_case(seed, b, k, vocab, with_q);
        let (_, want, _, cpu_states) = run_both(&c);
        let (got, states) = run_device_drafts(&c, &c.tokens, 3);
        for r in 0..b {
            let what = format!("seed {seed} row {r}");
            assert_eq!(
                (&got[r].tokens, got[r].accepted, got[r].status),
                (&want[r].tokens, want[r].accepted, want[r].status),
                "{what}"
            );
            for (a, e) in got[r].logprobs.iter().zip(&want[r].logprobs) {
                assert!(
                    (a - e).abs() <= 1e-4 * (1.0 + e.abs()),
                    "{what}: {a} vs {e}"
                );
            }
            assert_eq!(states[r].step, cpu_states[r].step, "{what}: step");
            assert_eq!(
                states[r].generated_len(),
                cpu_states[r].generated_len(),
                "{what}: n"
            );
        }
        // Out-of-range drafts in rows 1 (V, last position) and 2 (u32::MAX, first).
        let mut bad = c.tokens.clone();
        bad[k + k - 1] = vocab as u32;
        bad[2 * k] = u32::MAX;
        let (got, states) = run_device_drafts(&c, &bad, 1);
        for r in 0..b {
            let what = format!("seed {seed} bad drafts, row {r}");
            if r == 1 || r == 2 {
                assert_eq!(got[r].status, Status::InvalidDraft, "{what}");
                assert!(
                    got[r].tokens.is_empty() && got[r].accepted == 0,
                    "{what}: {:?}",
                    got[r]
                );
                assert_eq!(states[r].step, c.states[r].step, "{what}: no advance");
                assert_eq!(
                    states[r].generated_len(),
                    c.states[r].generated_len(),
                    "{what}: n"
                );
            } else {
                assert_eq!(
                    (&got[r].tokens, got[r].accepted, got[r].status),
                    (&want[r].tokens, want[r].accepted, want[r].status),
                    "{what}"
                );
            }
        }
    }
}

/// The engine's flow: a draft sampler's tokens go from its output buffer
/// (the first `B` words, `[B, 1]` drafts) straight into the target's
/// verification, never through the host, and give what the host path
/// gives with the same tokens read back.
#[test]
fn a_draft_samplers_output_buffer_feeds_record_verify_device() {
    let (b, vocab) = (5usize, 700usize);
    let c = random_case(50, b, 1, vocab, false);
    let ctx = gpu_ctx();
    let mut draft = sampler(b as u32, vocab as u32);
    for r in 0..b {
        draft
            .set_params(
                r,
                &SamplingParams {
                    temperature: 1.0,
                    seed: 9 + r as u64,
                    ..Default::default()
                },
            )
            .unwrap();
    }
    // The draft model's logits: the target's first positions, noised.
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
    let mut dlogits = Vec::new();
    for r in 0..b {
        let row = &c.target[r * 2 * vocab..][..vocab];
        dlogits.extend(
            row.iter()
                .map(|&x| x + support::logits::normal_logit(&mut rng, 1.0)),
        );
    }
    let drafted: Vec<u32> = draft
        .sample_host(Logits::F32(&dlogits), b as u32)
        .unwrap()
        .iter()
        .map(|o| o.token)
        .collect();
    let mut host = c.clone();
    host.tokens = drafted.clone();
    let (_, want, _, _) = run_both(&host);
    // Sample the same step again on the device (same seeds and step, so the
    // same tokens) and verify straight from the output buffer.
    for r in 0..b {
        draft.set_state(r, &RowState::default()).unwrap();
    }
    use wgpu::util::DeviceExt;
    let dl = ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&dlogits),
            usage: wgpu::BufferUsages::STORAGE,
        });
    let tbuf = ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&c.target),
            usage: wgpu::BufferUsages::STORAGE,
        });
    let mut target = sampler((2 * b) as u32, vocab as u32);
    for r in 0..b {
        target.set_params(r, &c.params[r]).unwrap();
        target.set_state(r, &c.states[r]).unwrap();
    }
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    draft
        .record(&mut enc, wgsample::gpu::LogitsView::f32(&dl), b as u32)
        .unwrap();
    target
        .record_verify_device(
            &mut enc,
            wgsample::gpu::LogitsView::f32(&tbuf),
            b as u32,
            1,
            draft.output_buffer(),
            0,
            None,
        )
        .unwrap();
    let got = target.submit_and_read_verify(enc).unwrap();
    for r in 0..b {
        assert_eq!(
            (&got[r].tokens, got[r].accepted, got[r].status),
            (&want[r].tokens, want[r].accepted, want[r].status),
            "row {r} (draft {})",
            drafted[r]
        );
    }
}

/// Bad device-draft arguments are errors before anything is recorded.
#[test]
fn device_draft_arguments_are_checked() {
    use wgpu::util::DeviceExt;
    let ctx = gpu_ctx();
    let vocab = 64usize;
    let target = vec![0.5f32; 2 * 3 * vocab];
    let tbuf = ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&target),
            usage: wgpu::BufferUsages::STORAGE,
        });
    let mk = |words: usize, usage| {
        ctx.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytemuck::cast_slice(&vec![1u32; words]),
                usage,
            })
    };
    let good = mk(8, wgpu::BufferUsages::COPY_SRC);
    let small = mk(3, wgpu::BufferUsages::COPY_SRC);
    let no_copy = mk(8, wgpu::BufferUsages::STORAGE);
    let mut s = sampler(8, vocab as u32);
    let view = wgsample::gpu::LogitsView::f32(&tbuf);
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    let cases: [(&wgpu::Buffer, u64, u32, &str); 5] = [
        (&good, 2, 2, "multiple of 4"),
        (&small, 0, 2, "holds 12 bytes"),
        (&good, 20, 2, "holds 32 bytes"),
        (&no_copy, 0, 2, "COPY_SRC"),
        (&good, 0, 0, "1 to 32"),
    ];
    for (buf, off, k, msg) in cases {
        let e = s
            .record_verify_device(&mut enc, view, 2, k, buf, off, None)
            .unwrap_err();
        assert!(e.to_string().contains(msg), "offset {off} k {k}: {e}");
    }
    // And a good one still works on the same encoder.
    s.record_verify_device(&mut enc, view, 2, 2, &good, 0, None)
        .unwrap();
    let out = s.submit_and_read_verify(enc).unwrap();
    assert_eq!(out.len(), 2);
    assert!(
        out.iter()
            .all(|o| o.status == Status::Ok && !o.tokens.is_empty()),
        "{out:?}"
    );
}
