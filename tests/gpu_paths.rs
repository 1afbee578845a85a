//! The two ways the GPU's `finish` pass settles min-p, top-k and top-p:
//! from the chunks' candidates (the fast path), or by reading the row again
//! when the candidates cannot be proven complete (the slow path). Each test
//! builds rows that must take a given path, asserts through
//! `GpuSampler::last_step_paths` that it was taken, and checks every token
//! against the CPU backend (SPEC.md: same token, knife edges only).

mod oracle;
mod support;

use rand::{SeedableRng, rngs::StdRng};
use support::logits::normal_logits as normal;
use support::{gpu_ctx, gpu_ctx_with_limits};
use wgsample::gpu::{GpuSampler, RowPath, SamplerConfig};
use wgsample::{CpuSampler, Logits, RowState, SamplingParams, Status};

/// Samples the `[B, v]` rows `x` with `params` for `steps` steps on both
/// backends (state carried over on each), checks every token, and returns
/// the GPU's paths of the last step.
fn run(
    v: usize,
    x: &[f32],
    params: &[SamplingParams],
    states: &[RowState],
    steps: usize,
    what: &str,
) -> Vec<RowPath> {
    let b = params.len();
    let mut s = GpuSampler::new(gpu_ctx(), SamplerConfig::new(b as u32, v as u32)).unwrap();
    let mut cpu = CpuSampler::new();
    let mut cstates = states.to_vec();
    for r in 0..b {
        s.set_params(r, &params[r]).unwrap();
        s.set_state(r, &states[r]).unwrap();
    }
    let mut paths = Vec::new();
    for step in 0..steps {
        let before = cstates.clone();
        let g = s.sample_host(Logits::F32(x), b as u32).unwrap();
        let c = cpu.sample(Logits::F32(x), v, params, &mut cstates).unwrap();
        paths = s.last_step_paths(b as u32).unwrap();
        for r in 0..b {
            if g[r].token == c[r].token && g[r].status == c[r].status {
                continue;
            }
            let row = &x[r * v..(r + 1) * v];
            let want = oracle::oracle_row(
                row,
                &params[r],
                &oracle::OracleState::from_row_state(&before[r]),
            );
            assert!(
                g[r].status == c[r].status && want.knife(),
                "{what} step {step} row {r} ({:?} path): gpu {:?} cpu {:?} oracle {} params {:?}",
                paths[r],
                g[r],
                c[r],
                want.token,
                params[r]
            );
        }
    }
    paths
}

fn p(seed: u64) -> SamplingParams {
    SamplingParams {
        seed,
        ..Default::default()
    }
}

#[test]
fn typical_rows_take_the_candidate_path() {
    let mut rng = StdRng::seed_from_u64(1);
    let v = 128_256;
    let x = normal(&mut rng, 3 * v, 3.0);
    let params = [
        SamplingParams {
            top_k: 50,
            top_p: 0.9,
            temperature: 0.8,
            ..p(1)
        },
        SamplingParams {
            min_p: 0.05,
            ..p(2)
        },
        SamplingParams { top_k: 64, ..p(3) },
    ];
    let states = vec![RowState::default(); 3];
    let paths = run(v, &x, &params, &states, 3, "typical");
    assert_eq!(paths, [RowPath::Candidates; 3]);
}

#[test]
fn flat_rows_and_wide_filters_take_the_full_row_path() {
    let mut rng = StdRng::seed_from_u64(2);
    let v = 20_000; // not a multiple of the 1024-logit chunk
    let mut x = vec![0.0f32; 5 * v];
    // Row 0: flat (tiny noise), top-p 0.999. Row 1: flat, min-p 0.001.
    // Row 2: random, top-k 5000 (above the 64 candidates per chunk).
    // Row 3: all equal, top-k 10 (ties across every chunk's cut).
    // Row 4: flat, min-p 0.01 + top-p 0.95 (top-p's normaliser needs the
    // min-p survivors, not all among the candidates).
    for (i, y) in normal(&mut rng, v, 1e-3).into_iter().enumerate() {
        x[i] = y;
        x[v + i] = -y;
        x[4 * v + i] = 2.0 * y;
    }
    x[2 * v..3 * v].copy_from_slice(&normal(&mut rng, v, 2.0));
    x[3 * v..4 * v].fill(1.5);
    let params = [
        SamplingParams {
            top_p: 0.999,
            ..p(4)
        },
        SamplingParams {
            min_p: 0.001,
            ..p(5)
        },
        SamplingParams {
            top_k: 5000,
            ..p(6)
        },
        SamplingParams { top_k: 10, ..p(7) },
        SamplingParams {
            min_p: 0.01,
            top_p: 0.95,
            ..p(8)
        },
    ];
    let states = vec![RowState::default(); 5];
    let paths = run(v, &x, &params, &states, 2, "flat");
    assert_eq!(paths, [RowPath::FullRow; 5]);
}

#[test]
fn ties_across_chunk_boundaries_and_candidate_capacity() {
    let mut rng = StdRng::seed_from_u64(3);
    let v = 4096 + 77;
    let mut rows = Vec::new();
    let mut params = Vec::new();
    let mut want = Vec::new();
    // A run of 12 equal maxima straddling the boundary of chunks 0 and 1:
    // top-k 5 keeps all 12 (ties kept), every one a candidate of its chunk.
    let mut a = normal(&mut rng, v, 1.0);
    a[1018..1030].fill(9.0);
    rows.push(a);
    params.push(SamplingParams { top_k: 5, ..p(9) });
    want.push(RowPath::Candidates);
    // Chunk 0 holds exactly 64 finite logits (one per invocation of the
    // dense pass), the row's largest: nothing is left out of chunk 0, and
    // top-k 64 is settled on candidates.
    let mut b = vec![f32::NEG_INFINITY; v];
    for (i, y) in normal(&mut rng, 64, 1.0).into_iter().enumerate() {
        b[i] = 20.0 + y;
    }
    for (i, y) in normal(&mut rng, v - 1024, 1.0).into_iter().enumerate() {
        b[1024 + i] = y;
    }
    rows.push(b.clone());
    params.push(SamplingParams { top_k: 64, ..p(10) });
    want.push(RowPath::Candidates);
    // The same with a 65th finite logit in chunk 0, tied with its 64th:
    // the tie crosses the candidates' cut, top-k 64 needs the row.
    let mut c = b.clone();
    let mut kept: Vec<(f32, usize)> = (0..64).map(|i| (c[i], i)).collect();
    kept.sort_by(|x, y| x.0.total_cmp(&y.0));
    c[1001] = kept[0].0;
    rows.push(c);
    params.push(SamplingParams { top_k: 64, ..p(11) });
    want.push(RowPath::FullRow);
    // One invocation of the dense pass (tokens 5, 261, 517, 773 of a
    // chunk) holds the three largest logits: it keeps two, so the third is
    // left out and top-k 3 needs the row.
    let mut e = normal(&mut rng, v, 1.0);
    e[1024 + 5] = 12.0;
    e[1024 + 261] = 11.0;
    e[1024 + 517] = 10.0;
    rows.push(e);
    params.push(SamplingParams { top_k: 3, ..p(19) });
    want.push(RowPath::FullRow);
    // Ties at the top-p cut straddling a chunk boundary.
    let mut d = normal(&mut rng, v, 0.5);
    d[2040..2056].fill(4.0);
    rows.push(d);
    params.push(SamplingParams {
        top_p: 0.1,
        ..p(12)
    });
    want.push(RowPath::Candidates);
    let x: Vec<f32> = rows.concat();
    let states = vec![RowState::default(); params.len()];
    let paths = run(v, &x, &params, &states, 4, "ties");
    assert_eq!(paths, want);
}

#[test]
fn penalties_and_bias_on_tokens_at_chunk_edges() {
    let mut rng = StdRng::seed_from_u64(4);
    let v = 3 * 1024 + 5;
    let edges = [0u32, 1023, 1024, 2047, 2048, 3071, 3072, v as u32 - 1];
    let mut x = normal(&mut rng, 2 * v, 1.0);
    for &t in &edges {
        x[t as usize] = 6.0;
        x[v + t as usize] = 6.0;
    }
    let base = SamplingParams {
        repetition_penalty: 1.7,
        frequency_penalty: 0.4,
        presence_penalty: 0.3,
        logit_bias: vec![(1023, 2.0), (3072, -1.0), (v as u32 - 1, 3.0)],
        banned_tokens: vec![1024],
        eos_token_ids: vec![2047],
        min_new_tokens: 3,
        ..p(13)
    };
    let params = [
        SamplingParams {
            top_k: 4,
            ..base.clone()
        },
        SamplingParams {
            temperature: 0.0,
            ..base
        },
    ];
    let st = RowState::with_output(&[0, 2048], &[3071, 3071, 0]);
    let paths = run(v, &x, &params, &[st.clone(), st], 12, "edges");
    assert_eq!(paths[0], RowPath::Candidates);
    assert_eq!(paths[1], RowPath::NoSelection);
}

#[test]
fn vocabulary_of_one_and_of_two_to_the_eighteen() {
    // V = 1: every configuration gives token 0 (or its status).
    let one = [0.5f32, f32::NEG_INFINITY, 3.0];
    let params = [
        SamplingParams { top_k: 1, ..p(14) },
        SamplingParams {
            top_p: 0.5,
            ..p(15)
        },
        SamplingParams {
            min_p: 0.9,
            temperature: 0.0,
            ..p(16)
        },
    ];
    run(1, &one, &params, &vec![RowState::default(); 3], 3, "V=1");
    let mut s = GpuSampler::new(gpu_ctx(), SamplerConfig::new(3, 1)).unwrap();
    for (r, q) in params.iter().enumerate() {
        s.set_params(r, q).unwrap();
    }
    let out = s.sample_host(Logits::F32(&one), 3).unwrap();
    assert_eq!(out[0].token, 0);
    assert_eq!(out[1].status, Status::NoCandidates);
    assert_eq!(out[2].token, 0);

    let mut rng = StdRng::seed_from_u64(5);
    let v = 1 << 18;
    let x = normal(&mut rng, 2 * v, 2.0);
    let params = [
        SamplingParams {
            top_k: 40,
            top_p: 0.8,
            ..p(17)
        },
        SamplingParams {
            top_k: 20_000,
            ..p(18)
        },
    ];
    let paths = run(v, &x, &params, &vec![RowState::default(); 2], 2, "V=2^18");
    assert_eq!(paths, [RowPath::Candidates, RowPath::FullRow]);
}

#[test]
fn a_large_batch_keeps_token_counts_only_for_rows_with_penalties() {
    // WebGPU's default limits: a 128 MiB storage binding. Token counts for
    // 4096 rows x 4096 tokens (134 MB) do not fit, so this sampler gives a
    // count list only to rows that get penalties; the others keep their
    // length and step. Both kinds sample as the CPU does.
    let ctx = &gpu_ctx_with_limits(wgpu::Limits::default());
    assert_eq!(
        ctx.device.limits().max_storage_buffer_binding_size,
        128 << 20
    );
    let (b, v) = (4096usize, 64usize);
    let mut s = GpuSampler::new(ctx, SamplerConfig::new(b as u32, v as u32)).unwrap();
    let mut rng = StdRng::seed_from_u64(6);
    let x = normal(&mut rng, b * v, 2.0);
    // Rows 0, 5, 9 (and later 20, 1, 2, 3, 4, 6) with penalties: more
    // than the first allocation of 4 count lists, so the state buffer
    // grows (twice before one record) while rows already hold counts.
    let pen = |r: usize| SamplingParams {
        frequency_penalty: 0.7,
        repetition_penalty: 1.4,
        ..p(r as u64)
    };
    let mut params: Vec<SamplingParams> = (0..b)
        .map(|r| match r {
            0 | 5 | 9 => pen(r),
            _ => SamplingParams {
                top_k: [0, 5][r % 2],
                ..p(r as u64)
            },
        })
        .collect();
    let mut states: Vec<RowState> = (0..b).map(|r| RowState::new(&[r as u32 % 64])).collect();
    for r in 0..b {
        s.set_params(r, &params[r]).unwrap();
        s.set_state(r, &states[r]).unwrap();
    }
    let mut cpu = CpuSampler::new();
    let mut step = |s: &mut GpuSampler, params: &[SamplingParams], states: &mut Vec<RowState>| {
        let g = s.sample_host(Logits::F32(&x), b as u32).unwrap();
        let c = cpu.sample(Logits::F32(&x), v, params, states).unwrap();
        let bad: Vec<(usize, u32, u32)> = (0..b)
            .filter(|&r| g[r].token != c[r].token)
            .map(|r| (r, g[r].token, c[r].token))
            .take(8)
            .collect();
        assert!(bad.is_empty(), "(row, gpu, cpu): {bad:?}");
    };
    for _ in 0..3 {
        step(&mut s, &params, &mut states);
    }
    // Row 20 generated tokens without a count list: penalties now need its
    // output first (an error, not wrong counts in silence).
    let e = s.set_params(20, &pen(20)).unwrap_err().to_string();
    assert!(e.contains("set_state"), "{e}");
    assert!(s.read_state(20).is_err());
    s.set_state(20, &states[20]).unwrap();
    s.set_params(20, &pen(20)).unwrap();
    params[20] = pen(20);
    for r in [1, 2, 3, 4, 6] {
        s.set_state(r, &states[r]).unwrap();
        s.set_params(r, &pen(r)).unwrap();
        params[r] = pen(r);
    }
    for _ in 0..3 {
        step(&mut s, &params, &mut states);
    }
    for r in [0, 5, 9, 20, 1, 6] {
        let dev = s.read_state(r).unwrap();
        let want: Vec<(u32, u32)> = states[r].output_counts().collect();
        let got: Vec<(u32, u32)> = dev.output_counts().collect();
        assert_eq!(got, want, "row {r}");
        assert_eq!(dev.step, states[r].step, "row {r}");
    }
}

#[test]
fn the_cached_bind_group_follows_the_logits_buffer_offset_and_params() {
    // record reuses its bind group while the logits binding and the
    // sampler's buffers stay the same: switching buffers, offsets and
    // parameters (which may grow the sampler's buffers) must each take
    // effect on the very next record.
    use wgpu::util::DeviceExt as _;
    let ctx = gpu_ctx();
    let v = 3000usize;
    let mut rng = StdRng::seed_from_u64(7);
    let a = normal(&mut rng, 2 * v, 2.0);
    let b = normal(&mut rng, 2 * v, 2.0);
    let buf = |x: &[f32]| {
        ctx.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytemuck::cast_slice(x),
                usage: wgpu::BufferUsages::STORAGE,
            })
    };
    let (ba, bb) = (buf(&a), buf(&b));
    let mut s = GpuSampler::new(ctx, SamplerConfig::new(1, v as u32)).unwrap();
    let mut cpu = CpuSampler::new();
    let greedy = SamplingParams::greedy();
    let banned = SamplingParams {
        banned_tokens: (0..400).collect(),
        logit_bias: (400..700).map(|t| (t, 0.5)).collect(),
        top_k: 3,
        ..p(3)
    };
    let plan = [
        (&ba, &a, 0usize, &greedy),
        (&bb, &b, 0, &greedy),
        (&bb, &b, 1, &greedy),
        (&ba, &a, 1, &banned),
        (&ba, &a, 0, &banned),
        (&bb, &b, 0, &greedy),
    ];
    let mut st = RowState::default();
    for (i, (gbuf, host, row, q)) in plan.into_iter().enumerate() {
        s.set_params(0, q).unwrap();
        let g = s
            .sample(
                wgsample::gpu::LogitsView {
                    buffer: gbuf,
                    offset: (row * v * 4) as u64,
                    dtype: wgsample::gpu::DType::F32,
                },
                1,
            )
            .unwrap();
        let c = cpu
            .sample(
                Logits::F32(&host[row * v..(row + 1) * v]),
                v,
                std::slice::from_ref(q),
                std::slice::from_mut(&mut st),
            )
            .unwrap();
        assert_eq!(g[0].token, c[0].token, "record {i}");
    }
}

#[test]
fn sample_async_agrees_with_the_cpu_step_after_step() {
    // The async form (polled here by pollster) and the blocking form share
    // the sampler's state and read-back buffer: alternate them.
    use wgpu::util::DeviceExt as _;
    let ctx = gpu_ctx();
    let (b, v) = (3usize, 5000usize);
    let mut rng = StdRng::seed_from_u64(8);
    let x = normal(&mut rng, b * v, 2.0);
    let buf = ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&x),
            usage: wgpu::BufferUsages::STORAGE,
        });
    let view = wgsample::gpu::LogitsView::f32(&buf);
    let params = [
        SamplingParams { top_k: 20, ..p(20) },
        SamplingParams {
            repetition_penalty: 1.5,
            ..p(21)
        },
        SamplingParams::greedy(),
    ];
    let mut s = GpuSampler::new(ctx, SamplerConfig::new(b as u32, v as u32)).unwrap();
    for (r, q) in params.iter().enumerate() {
        s.set_params(r, q).unwrap();
    }
    let mut cpu = CpuSampler::new();
    let mut states = vec![RowState::default(); b];
    for step in 0..6 {
        let g = if step % 2 == 0 {
            pollster::block_on(s.sample_async(view, b as u32)).unwrap()
        } else {
            s.sample(view, b as u32).unwrap()
        };
        let c = cpu
            .sample(Logits::F32(&x), v, &params, &mut states)
            .unwrap();
        let tg: Vec<u32> = g.iter().map(|o| o.token).collect();
        let tc: Vec<u32> = c.iter().map(|o| o.token).collect();
        assert_eq!(tg, tc, "step {step}");
    }
}

#[test]
fn record_timed_needs_the_inside_passes_timestamp_feature() {
    // open_device asks for no optional feature: per-pass timestamps are an
    // error that names the feature, and nothing is recorded.
    let ctx = gpu_ctx();
    let v = 100usize;
    let buf = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (v * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let mut s = GpuSampler::new(ctx, SamplerConfig::new(1, v as u32)).unwrap();
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    if ctx
        .device
        .features()
        .contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES)
    {
        let q = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: None,
            ty: wgpu::QueryType::Timestamp,
            count: 4,
        });
        let plan = s
            .record_timed(&mut enc, wgsample::gpu::LogitsView::f32(&buf), 1, &q, 0)
            .unwrap();
        assert_eq!(plan.dispatches(), 2);
        return;
    }
    // Without the feature the refusal comes before the query set is used:
    // an occlusion set (no feature needed) stands in for it.
    let q = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
        label: None,
        ty: wgpu::QueryType::Occlusion,
        count: 4,
    });
    let e = s
        .record_timed(&mut enc, wgsample::gpu::LogitsView::f32(&buf), 1, &q, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("TIMESTAMP_QUERY_INSIDE_PASSES"), "{e}");
    // Nothing was recorded or staged wrongly: the sampler still samples
    // (greedy over the zeroed buffer: the lowest index).
    s.set_params(0, &SamplingParams::greedy()).unwrap();
    let out = s.sample(wgsample::gpu::LogitsView::f32(&buf), 1).unwrap();
    assert_eq!(out[0].token, 0);
}

#[test]
fn read_state_refuses_a_count_list_that_filled_up() {
    // A row without penalties may generate more distinct tokens than its
    // count list holds: reading its state back is then an error, not a
    // shorter history.
    let ctx = gpu_ctx();
    let v = 50usize;
    let mut cfg = SamplerConfig::new(1, v as u32);
    cfg.max_seen_tokens = 3;
    let mut s = GpuSampler::new(ctx, cfg).unwrap();
    s.set_params(0, &p(30)).unwrap();
    let flat = vec![0.0f32; v];
    let mut st = RowState::default();
    let mut cpu = CpuSampler::new();
    let mut distinct = std::collections::BTreeSet::new();
    for step in 0..12 {
        let g = s.sample_host(Logits::F32(&flat), 1).unwrap();
        let c = cpu
            .sample(
                Logits::F32(&flat),
                v,
                &[p(30)],
                std::slice::from_mut(&mut st),
            )
            .unwrap();
        assert_eq!(g[0].token, c[0].token, "step {step}");
        distinct.insert(g[0].token);
        let read = s.read_state(0);
        if distinct.len() <= 3 {
            let got: Vec<(u32, u32)> = read.unwrap().output_counts().collect();
            let want: Vec<(u32, u32)> = st.output_counts().collect();
            assert_eq!(got, want, "step {step}");
        } else {
            let e = read.unwrap_err().to_string();
            assert!(e.contains("max_seen_tokens"), "{e}");
        }
    }
    assert!(
        distinct.len() > 3,
        "the flat row should give more than 3 distinct tokens"
    );
}
