//! The `_async` entry points, driven natively under `pollster`: they are
//! what a browser awaits, and the blocking forms are thin `block_on`
//! wrappers around them, so they must agree with the CPU backend token for
//! token, and return wgpu's errors as `Err` (awaited error scopes) rather
//! than panicking. The browser itself is tested by `scripts/test_browser.sh`.

mod support;

use pollster::block_on;
use rand::{SeedableRng, rngs::StdRng};
use support::{gpu_ctx, logits::normal_logits};
use wgsample::beam::{BeamBackend, BeamConfig, beam_search_bigram_async};
use wgsample::decode::{Backend, DecodeSpec, StopCriteria, generate, generate_async};
use wgsample::gpu::{GpuSampler, LogitsView, SamplerConfig, open_device_async};
use wgsample::{CpuSampler, Error, Logits, RowState, SamplingParams};

fn params() -> Vec<SamplingParams> {
    vec![
        SamplingParams {
            temperature: 0.0,
            ..Default::default()
        },
        SamplingParams {
            temperature: 0.7,
            top_k: 40,
            top_p: 0.9,
            seed: 11,
            ..Default::default()
        },
        SamplingParams {
            temperature: 1.3,
            min_p: 0.05,
            repetition_penalty: 1.2,
            frequency_penalty: 0.3,
            seed: 12,
            ..Default::default()
        },
    ]
}

#[test]
fn open_device_async_opens_a_device() {
    let ctx = block_on(open_device_async()).expect("an adapter (see INSTALL_HINT)");
    assert!(ctx.device.limits().max_compute_workgroups_per_dimension > 0);
}

#[test]
fn async_sampling_and_state_equal_the_cpu_backend() {
    let ctx = gpu_ctx();
    let (b, v) = (3usize, 5000usize);
    let ps = params();
    let mut gpu = GpuSampler::new(ctx, SamplerConfig::new(b as u32, v as u32)).unwrap();
    let mut cpu = CpuSampler::new();
    let mut states: Vec<RowState> = (0..b).map(|r| RowState::new(&[r as u32, 7, 9])).collect();
    for (r, (p, s)) in ps.iter().zip(&states).enumerate() {
        gpu.set_state(r, s).unwrap();
        gpu.set_params(r, p).unwrap();
    }
    let mut rng = StdRng::seed_from_u64(5);
    let upload = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (b * v * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    for step in 0..6 {
        let logits = normal_logits(&mut rng, b * v, 3.0);
        // Three async paths in turn: host logits, a device buffer, and
        // record + submit_and_read_async.
        let got = match step % 3 {
            0 => block_on(gpu.sample_host_async(Logits::F32(&logits), b as u32)).unwrap(),
            1 => {
                ctx.queue
                    .write_buffer(&upload, 0, bytemuck::cast_slice(&logits));
                block_on(gpu.sample_async(LogitsView::f32(&upload), b as u32)).unwrap()
            }
            _ => {
                ctx.queue
                    .write_buffer(&upload, 0, bytemuck::cast_slice(&logits));
                let mut enc = ctx
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
                gpu.record(&mut enc, LogitsView::f32(&upload), b as u32)
                    .unwrap();
                block_on(gpu.submit_and_read_async(enc)).unwrap()
            }
        };
        let want = cpu
            .sample(Logits::F32(&logits), v, &ps, &mut states)
            .unwrap();
        for r in 0..b {
            assert_eq!(got[r].token, want[r].token, "step {step} row {r}");
            assert_eq!(got[r].status, want[r].status, "step {step} row {r}");
        }
    }
    for (r, want) in states.iter().enumerate() {
        let st = block_on(gpu.read_state_async(r)).unwrap();
        assert_eq!(&st, want, "row {r}'s state on the device");
    }
}

#[test]
fn a_wgpu_error_in_an_async_step_is_an_err_not_a_panic() {
    let ctx = gpu_ctx();
    let mut gpu = GpuSampler::new(ctx, SamplerConfig::new(1, 1000)).unwrap();
    let buf = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 4000,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    // Destroyed after the host checks can see it: only wgpu knows, and it
    // reports it in the error scopes the async step awaits.
    buf.destroy();
    let e = block_on(gpu.sample_async(LogitsView::f32(&buf), 1)).unwrap_err();
    assert!(matches!(e, Error::Wgpu { .. }), "{e:?}");
    assert!(
        std::error::Error::source(&e).is_some(),
        "wgpu's error is kept as the source: {e}"
    );
    // The sampler still works afterwards, with its parameters (the failed
    // step's uploads stay queued: before they were lost with it, the
    // device kept zeroed parameters, T = 0, and this row went greedy) and
    // at step 0 (the failed step did not count).
    let zeros = [0.0f32; 1000];
    let ok = block_on(gpu.sample_host_async(Logits::F32(&zeros), 1)).unwrap();
    let mut states = vec![RowState::default()];
    let want = CpuSampler::new()
        .sample(
            Logits::F32(&zeros),
            1000,
            &[SamplingParams::default()],
            &mut states,
        )
        .unwrap();
    assert_eq!(ok[0].token, want[0].token, "the step after the error");
    assert_eq!(block_on(gpu.read_state_async(0)).unwrap(), states[0]);
}

#[test]
fn async_decode_loop_and_beam_search_equal_the_cpu() {
    let ctx = gpu_ctx();
    let v = 300usize;
    let mut rng = StdRng::seed_from_u64(9);
    let table = normal_logits(&mut rng, v * v, 2.0);
    let ps = params();
    let criteria = StopCriteria::new(50);
    let spec = DecodeSpec::new(&ps, &criteria);
    let starts = [1u32, 2, 3];
    let gpu = block_on(generate_async(
        &table,
        v,
        &starts,
        &spec,
        Backend::Gpu(ctx),
        |_| {},
    ))
    .unwrap();
    let cpu = generate(&table, v, &starts, &spec, Backend::Cpu, |_| {}).unwrap();
    for (r, (g, c)) in gpu.sequences.iter().zip(&cpu.sequences).enumerate() {
        assert_eq!(g.tokens.len(), 50, "row {r}");
        assert_eq!(g.tokens, c.tokens, "row {r}");
    }

    let cfg = BeamConfig {
        num_beams: 4,
        max_new_tokens: 8,
        num_return_sequences: 2,
        eos_token_ids: vec![5],
        ..BeamConfig::new(4)
    };
    let g = block_on(beam_search_bigram_async(
        &table,
        v,
        0,
        &cfg,
        BeamBackend::Gpu(ctx),
    ))
    .unwrap();
    let c = block_on(beam_search_bigram_async(
        &table,
        v,
        0,
        &cfg,
        BeamBackend::Cpu,
    ))
    .unwrap();
    assert_eq!(g.len(), 2);
    assert_eq!(g.len(), c.len());
    for (a, b) in g.iter().zip(&c) {
        assert_eq!(a.tokens, b.tokens);
        // The GPU step sums log-probabilities in another order: the
        // scores agree to f32 rounding, as in tests/beam.rs.
        assert!(
            (a.score - b.score).abs() <= 1e-5 * b.score.abs().max(1.0),
            "{a:?} vs {b:?}"
        );
    }
}
