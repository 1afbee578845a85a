//! GPU foundation: the WGSL Philox / Gumbel / ln / sortable-key helpers
//! against their CPU twins, and the argmax pass against a plain CPU argmax.
//!
//! These tests never skip: without a wgpu adapter they fail, saying how to
//! install a Vulkan driver (lavapipe runs them on any machine).

mod support;

use rand::{Rng, SeedableRng, rngs::StdRng};
use support::gpu_ctx;
use wgsample::gpu::GpuContext;
use wgsample::testing::{self, ArgmaxPipeline, ROW_OUTPUT_BYTES};
use wgsample::{Error, NO_TOKEN, RowOutput, Status, rng};

// ------------------------------------------------------------------ Philox

#[test]
fn philox_known_answers_on_gpu() {
    let inputs = [
        ([0u32; 4], [0u32; 2]),
        ([u32::MAX; 4], [u32::MAX; 2]),
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
        ),
    ];
    let expected = [
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ];
    let got = testing::philox_words_gpu(gpu_ctx(), &inputs).unwrap();
    for (i, (g, e)) in got.iter().zip(expected.iter()).enumerate() {
        assert_eq!(
            g, e,
            "known answer {i}: got {g:08x?}, SPEC.md says {e:08x?}"
        );
    }
}

#[test]
fn philox_matches_cpu_on_random_and_edge_inputs() {
    let edges = [
        0u32,
        1,
        2,
        0xFFFF,
        0x1_0000,
        0x1_0001,
        0x7FFF_FFFF,
        0x8000_0000,
        0xFFFF_0000,
        0x0000_FFFF,
        0xFFFF_FFFE,
        u32::MAX,
        0xD251_1F53,
        0xCD9E_8D57,
    ];
    let mut r = StdRng::seed_from_u64(7);
    let mut inputs = Vec::new();
    for _ in 0..4000 {
        let mut pick = || {
            if r.random_range(0..3) == 0 {
                edges[r.random_range(0..edges.len())]
            } else {
                r.random::<u32>()
            }
        };
        inputs.push(([pick(), pick(), pick(), pick()], [pick(), pick()]));
    }
    for &a in &edges {
        inputs.push(([a; 4], [a; 2]));
        inputs.push(([a, 0, a, 0], [0, a]));
    }
    let got = testing::philox_words_gpu(gpu_ctx(), &inputs).unwrap();
    assert_eq!(got.len(), inputs.len());
    for ((c, k), g) in inputs.iter().zip(&got) {
        assert_eq!(
            *g,
            rng::philox4x32_10(*c, *k),
            "counter {c:08x?} key {k:08x?}"
        );
    }
}

// ------------------------------------------------------------------ Gumbel

fn ulp(x: f32) -> f32 {
    let x = x.abs();
    f32::from_bits(x.to_bits() + 1) - x
}

#[test]
fn gumbel_matches_cpu() {
    let cases: [(u64, u64, u32); 5] = [
        (0, 0, 100_000),
        (42, 7, 20_000),
        (u64::MAX, u64::MAX, 20_000),
        (0x1234_5678_9abc_def0, 1 << 32, 20_000),
        (3, (1 << 32) - 1, 20_000),
    ];
    let mut exact = 0usize;
    let mut twin = 0usize;
    let mut total = 0usize;
    let mut worst = 0.0f32;
    for (seed, step, n) in cases {
        let got = testing::gumbel_gpu(gpu_ctx(), seed, step, n).unwrap();
        assert_eq!(got.len(), n as usize);
        for (i, &g) in got.iter().enumerate() {
            let want = rng::gumbel(seed, step, i as u32);
            let u = rng::uniform_from_word(rng::word(seed, step, i as u32));
            if g.to_bits() == (-wgsample::testing::ln_f32(-wgsample::testing::ln_f32(u))).to_bits()
            {
                twin += 1;
            }
            total += 1;
            if g.to_bits() == want.to_bits() {
                exact += 1;
                continue;
            }
            assert!(
                want.is_finite() && g.is_finite(),
                "seed {seed} step {step} i {i}: gpu {g} cpu {want}"
            );
            // A few ulp of g, or of 1 near g = 0 where -ln(t) cancels.
            let tol = 4.0 * ulp(want.abs().max(1.0));
            let diff = (g - want).abs();
            worst = worst.max(diff / ulp(want.abs().max(1.0)));
            assert!(
                diff <= tol,
                "seed {seed} step {step} i {i}: gpu {g} cpu {want} (diff {diff})"
            );
        }
    }
    eprintln!(
        "gumbel: {exact}/{total} bit-equal to rng::gumbel, worst {worst:.1} ulp \
         (of max(|g|, 1)); {twin}/{total} bit-equal with the CPU ln_f32 twin"
    );
}

#[test]
fn ln_f32_is_within_one_ulp() {
    let mut xs: Vec<f32> = vec![
        1.0,
        2.0,
        0.5,
        f32::MIN_POSITIVE,
        1.0e-45,
        1.0e-40,
        f32::MAX,
        1.0 - f32::EPSILON / 2.0,
        1.0 + f32::EPSILON,
        std::f32::consts::E,
        5.960_464_5e-8,
    ];
    let mut r = StdRng::seed_from_u64(11);
    for _ in 0..50_000 {
        // Positive finite floats, uniform over the bit patterns.
        let bits = r.random::<u32>() & 0x7FFF_FFFF;
        if bits < 0x7F80_0000 && bits != 0 {
            xs.push(f32::from_bits(bits));
        }
    }
    for _ in 0..50_000 {
        xs.push(r.random_range(0.25..4.0));
        xs.push(1.0 - r.random_range(0.0..1.0e-3));
    }
    // Every uniform the Gumbel chain can see near 1.
    for k in 0..4096u32 {
        xs.push(rng::uniform_from_word((0x007F_FFFF - k) << 9));
    }
    let got = testing::ln_gpu(gpu_ctx(), &xs).unwrap();
    let mut off = 0usize;
    let mut twin = 0usize;
    for (&x, &g) in xs.iter().zip(&got) {
        if g.to_bits() == wgsample::testing::ln_f32(x).to_bits() {
            twin += 1;
        }
        let exact = (x as f64).ln();
        let err = (g as f64 - exact).abs() / ulp(exact as f32) as f64;
        if g.to_bits() != (exact as f32).to_bits() {
            off += 1;
        }
        assert!(
            err < 1.0,
            "ln({x:e}) = {g:e} on the GPU, exact {exact:e} ({err} ulp)"
        );
    }
    eprintln!(
        "ln_f32: {off}/{} not correctly rounded (all < 1 ulp); {twin} bit-equal to the CPU twin",
        xs.len()
    );

    let specials = [
        0.0f32,
        -0.0,
        -1.0,
        f32::INFINITY,
        f32::NAN,
        f32::NEG_INFINITY,
    ];
    let got = testing::ln_gpu(gpu_ctx(), &specials).unwrap();
    assert_eq!(got[0], f32::NEG_INFINITY);
    assert_eq!(got[1], f32::NEG_INFINITY);
    assert!(got[2].is_nan());
    assert_eq!(got[3], f32::INFINITY);
    assert!(got[4].is_nan());
    assert!(got[5].is_nan());
}

#[test]
fn sortable_keys_match_cpu() {
    let mut xs = vec![
        0.0f32,
        -0.0,
        1.0,
        -1.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        1.0e-45,
        -1.0e-45,
        f32::MAX,
        f32::MIN,
    ];
    let mut r = StdRng::seed_from_u64(5);
    for _ in 0..10_000 {
        let x = f32::from_bits(r.random::<u32>());
        if !x.is_nan() {
            xs.push(x);
        }
    }
    let got = testing::sortable_keys_gpu(gpu_ctx(), &xs).unwrap();
    for (&x, &(key, back)) in xs.iter().zip(&got) {
        assert_eq!(
            key,
            wgsample::testing::f32_to_sortable_key(x),
            "key of {x:e}"
        );
        assert_eq!(back.to_bits(), x.to_bits(), "round trip of {x:e}");
    }
    let mut sorted = xs.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    for w in sorted.windows(2) {
        if w[0].to_bits() != w[1].to_bits() {
            assert!(
                wgsample::testing::f32_to_sortable_key(w[0])
                    < wgsample::testing::f32_to_sortable_key(w[1])
            );
        }
    }
}

// ------------------------------------------------------------------ argmax

/// Plain CPU reference: lowest index on ties, f64 log-softmax.
fn reference_row(row: &[f32]) -> (u32, f64, Status) {
    if row.iter().any(|x| x.is_nan() || *x == f32::INFINITY) {
        return (NO_TOKEN, f64::NAN, Status::InvalidLogits);
    }
    let mut best: Option<usize> = None;
    for (i, &x) in row.iter().enumerate() {
        if x == f32::NEG_INFINITY {
            continue;
        }
        if best.is_none_or(|b| x > row[b]) {
            best = Some(i);
        }
    }
    let Some(b) = best else {
        return (NO_TOKEN, f64::NAN, Status::NoCandidates);
    };
    let m = row[b] as f64;
    let sum: f64 = row
        .iter()
        .filter(|x| x.is_finite())
        .map(|&x| (x as f64 - m).exp())
        .sum();
    (b as u32, -sum.ln(), Status::Ok)
}

fn check_rows(logits: &[f32], vocab: usize, got: &[RowOutput], what: &str) {
    let batch = logits.len() / vocab;
    assert_eq!(got.len(), batch, "{what}: row count");
    for (r, (row, out)) in logits.chunks(vocab).zip(got).enumerate() {
        let (tok, lp, status) = reference_row(row);
        assert_eq!(out.status, status, "{what}: row {r} status");
        assert_eq!(out.token, tok, "{what}: row {r} token");
        if status == Status::Ok {
            assert!(
                (out.logprob as f64 - lp).abs() <= 1e-5,
                "{what}: row {r} logprob {} vs {lp}",
                out.logprob
            );
        } else {
            assert!(
                out.logprob.is_nan(),
                "{what}: row {r} logprob should be NaN"
            );
        }
    }
}

/// A random row with deliberate ties at the maximum.
fn fill_row(r: &mut StdRng, row: &mut [f32], kind: usize) {
    let v = row.len();
    let scale = [1.0f32, 10.0, 0.01, 30.0][kind % 4];
    for x in row.iter_mut() {
        *x = r.random_range(-scale..scale);
    }
    match kind % 5 {
        // Ties: copies of the max at random places, and in the same and
        // different invocation strides (256 apart).
        0 | 1 => {
            let top = scale * 1.5;
            let first = r.random_range(0..v);
            row[first] = top;
            for _ in 0..1 + r.random_range(0..4) {
                row[r.random_range(0..v)] = top;
            }
            if first + 256 < v {
                row[first + 256] = top;
            }
            row[v - 1] = top;
        }
        // A constant row: token 0.
        2 => row.fill(0.25),
        // Some masked (-inf) values.
        3 => {
            for _ in 0..v.div_ceil(3) {
                row[r.random_range(0..v)] = f32::NEG_INFINITY;
            }
        }
        _ => {}
    }
}

#[test]
fn argmax_matches_cpu_reference() {
    let ctx = gpu_ctx();
    let pipe = ArgmaxPipeline::new(&ctx.device).unwrap();
    let mut r = StdRng::seed_from_u64(1234);
    let vocabs = [1usize, 2, 7, 1000, 32000, 128_256];
    for &vocab in &vocabs {
        let batches: Vec<usize> = if vocab <= 1000 {
            (1..=64).collect()
        } else {
            vec![1, 3, 64]
        };
        for &batch in &batches {
            let mut logits = vec![0.0f32; batch * vocab];
            for (i, row) in logits.chunks_mut(vocab).enumerate() {
                fill_row(&mut r, row, i + batch);
            }
            let got = pipe.run_host(ctx, &logits, batch, vocab).unwrap();
            check_rows(&logits, vocab, &got, &format!("B={batch} V={vocab}"));
        }
    }
}

#[test]
fn argmax_host_convenience_and_extremes() {
    let v = 5;
    let logits = [
        // Overflowing differences: exp(-inf) paths.
        -3.0e38,
        3.0e38,
        1.0,
        -3.0e38,
        3.0e38, //
        // Single finite value among -inf.
        f32::NEG_INFINITY,
        f32::NEG_INFINITY,
        -7.0,
        f32::NEG_INFINITY,
        f32::NEG_INFINITY, //
        // Tiny values and signed zeros.
        -0.0,
        0.0,
        -1e-45,
        1e-45,
        0.0,
    ];
    let got = testing::argmax_host(gpu_ctx(), &logits, 3, v).unwrap();
    check_rows(&logits, v, &got, "extremes");
    assert_eq!(got[0].token, 1);
    assert_eq!(got[1].token, 2);
    assert_eq!(got[1].logprob, 0.0);
    assert_eq!(got[2].token, 3);
}

#[test]
fn argmax_invalid_and_empty_rows() {
    let v = 600;
    let nan_bits = [
        0x7FC0_0000u32,
        0xFFC0_0000,
        0x7F80_0001,
        0xFFFF_FFFF,
        0x7FBF_FFFF,
    ];
    let mut r = StdRng::seed_from_u64(99);
    let mut logits = Vec::new();
    let mut kinds = Vec::new();
    for row in 0..24 {
        let mut x: Vec<f32> = (0..v).map(|_| r.random_range(-5.0..5.0)).collect();
        let kind = row % 6;
        let at = r.random_range(0..v);
        match kind {
            0 => {}
            1 => x[at] = f32::from_bits(nan_bits[row % nan_bits.len()]),
            2 => x[at] = f32::INFINITY,
            3 => x.fill(f32::NEG_INFINITY),
            4 => {
                x.fill(f32::NEG_INFINITY);
                x[at] = f32::INFINITY;
            }
            _ => {
                x.fill(f32::NEG_INFINITY);
                x[at] = f32::from_bits(nan_bits[0]);
            }
        }
        kinds.push(kind);
        logits.extend(x);
    }
    let got = testing::argmax_host(gpu_ctx(), &logits, 24, v).unwrap();
    check_rows(&logits, v, &got, "invalid rows");
    for (out, kind) in got.iter().zip(&kinds) {
        let want = match kind {
            0 => Status::Ok,
            3 => Status::NoCandidates,
            _ => Status::InvalidLogits,
        };
        assert_eq!(out.status, want);
        if want != Status::Ok {
            assert_eq!(out.token, NO_TOKEN);
            assert!(out.logprob.is_nan());
        }
    }
}

#[test]
fn argmax_large_batch_uses_2d_grid() {
    let ctx = gpu_ctx();
    let max = ctx.device.limits().max_compute_workgroups_per_dimension as usize;
    let batch = max + 3;
    let v = 2;
    let logits: Vec<f32> = (0..batch * v)
        .map(|i| if (i / v) % 2 == i % 2 { 1.0 } else { 0.0 })
        .collect();
    let got = testing::argmax_host(ctx, &logits, batch, v).unwrap();
    for (row, out) in got.iter().enumerate() {
        assert_eq!(out.token as usize, row % 2, "row {row}");
    }
}

fn storage_buffer(ctx: &GpuContext, data: &[u8], usage: wgpu::BufferUsages) -> wgpu::Buffer {
    use wgpu::util::DeviceExt;
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("test"),
            contents: data,
            usage,
        })
}

fn read_outputs(
    ctx: &GpuContext,
    encoder: wgpu::CommandEncoder,
    out: &wgpu::Buffer,
    batch: usize,
    vocab: u32,
) -> Vec<RowOutput> {
    let size = batch as u64 * ROW_OUTPUT_BYTES;
    let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("test staging"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = encoder;
    encoder.copy_buffer_to_buffer(out, 0, &staging, 0, size);
    ctx.queue.submit([encoder.finish()]);
    staging.map_async(wgpu::MapMode::Read, .., |r| r.unwrap());
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .unwrap();
    let bytes = staging.get_mapped_range(..).unwrap().to_vec();
    testing::decode_row_outputs(&bytes, batch, vocab).unwrap()
}

#[test]
fn record_into_caller_encoder_at_unaligned_offset() {
    let ctx = gpu_ctx();
    let pipe = ArgmaxPipeline::new(&ctx.device).unwrap();
    let (batch, vocab) = (5usize, 333usize);
    let mut r = StdRng::seed_from_u64(3);
    let mut logits = vec![0.0f32; batch * vocab];
    for (i, row) in logits.chunks_mut(vocab).enumerate() {
        fill_row(&mut r, row, i);
    }
    // Junk (NaN) before and after the block: it must not be read.
    for lead in [0usize, 1, 37, 64, 100] {
        let mut data = vec![f32::NAN; lead];
        data.extend_from_slice(&logits);
        data.extend_from_slice(&[f32::NAN; 7]);
        let buf = storage_buffer(
            ctx,
            bytemuck::cast_slice(&data),
            wgpu::BufferUsages::STORAGE,
        );
        let out = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("out"),
            size: batch as u64 * ROW_OUTPUT_BYTES + 64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        pipe.record(
            &ctx.device,
            &mut encoder,
            view(&buf, lead as u64 * 4),
            batch as u32,
            vocab as u32,
            &out,
        )
        .unwrap();
        let got = read_outputs(ctx, encoder, &out, batch, vocab as u32);
        check_rows(&logits, vocab, &got, &format!("lead {lead}"));
    }
}

#[test]
fn bad_shapes_and_buffers_are_errors_not_panics() {
    let ctx = gpu_ctx();
    let dev = &ctx.device;
    let pipe = ArgmaxPipeline::new(dev).unwrap();
    let data = vec![1.0f32; 64];
    let logits = storage_buffer(
        ctx,
        bytemuck::cast_slice(&data),
        wgpu::BufferUsages::STORAGE,
    );
    let no_storage = storage_buffer(
        ctx,
        bytemuck::cast_slice(&data),
        wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
    );
    let out = dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some("out"),
        size: 8 * ROW_OUTPUT_BYTES,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let small_out = dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some("small out"),
        size: 16,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let out_no_storage = dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some("out, no storage"),
        size: 8 * ROW_OUTPUT_BYTES,
        usage: wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());

    let shape = |r: wgsample::Result<()>| matches!(r, Err(Error::InvalidArgument(_)));
    let any_err = |r: wgsample::Result<()>| r.is_err();
    assert!(
        shape(pipe.record(dev, &mut enc, view(&logits, 0), 0, 8, &out)),
        "batch 0"
    );
    assert!(
        shape(pipe.record(dev, &mut enc, view(&logits, 0), 8, 0, &out)),
        "vocab 0"
    );
    assert!(
        shape(pipe.record(dev, &mut enc, view(&logits, 0), 8, 9, &out)),
        "too small"
    );
    assert!(
        shape(pipe.record(dev, &mut enc, view(&logits, 4), 8, 8, &out)),
        "offset past end"
    );
    assert!(
        shape(pipe.record(dev, &mut enc, view(&logits, 2), 1, 8, &out)),
        "offset % 4"
    );
    assert!(
        any_err(pipe.record(dev, &mut enc, view(&no_storage, 0), 8, 8, &out)),
        "no STORAGE"
    );
    assert!(
        shape(pipe.record(dev, &mut enc, view(&logits, 0), 8, 8, &small_out)),
        "small out"
    );
    assert!(
        any_err(pipe.record(dev, &mut enc, view(&logits, 0), 8, 8, &out_no_storage)),
        "out usage"
    );
    assert!(
        shape(pipe.record(dev, &mut enc, view(&logits, 0), 1, 8, &logits)),
        "same buffer"
    );
    assert!(
        any_err(pipe.record(dev, &mut enc, view(&logits, 0), u32::MAX, u32::MAX, &out)),
        "huge shape"
    );

    // Nothing was recorded: the encoder is still good for a valid pass.
    pipe.record(dev, &mut enc, view(&logits, 0), 8, 8, &out)
        .unwrap();
    let got = read_outputs(ctx, enc, &out, 8, 8);
    assert!(got.iter().all(|o| o.token == 0 && o.status == Status::Ok));

    // Host convenience: inconsistent shapes.
    assert!(matches!(
        testing::argmax_host(ctx, &data, 0, 64),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        testing::argmax_host(ctx, &data, 64, 0),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        testing::argmax_host(ctx, &data, 7, 9),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        testing::argmax_host(ctx, &[], 1, 1),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn describe_names_adapter_and_backend() {
    let c = gpu_ctx();
    let d = c.describe();
    assert!(d.contains(&c.adapter_info.name), "{d}");
    assert!(d.contains(c.adapter_info.backend.to_str()), "{d}");
}

/// f32 logits at byte `offset` of `buffer`.
fn view(buffer: &wgpu::Buffer, offset: u64) -> wgsample::gpu::LogitsView<'_> {
    wgsample::gpu::LogitsView {
        buffer,
        offset,
        dtype: wgsample::gpu::DType::F32,
    }
}
