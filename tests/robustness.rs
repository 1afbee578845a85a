//! Robustness at the edges of the integer types and of the sizes a caller
//! can pass: every case is an `Err` (or a defined result) in debug and test
//! builds, where integer overflow checks are on, never a panic.
//!
//! The GPU cases run on whatever adapter `open_device` finds (lavapipe here
//! and in CI); without one they fail with the install hint, they never skip.

mod support;

use support::gpu_ctx;
use wgsample::decode::{self, DecodeSpec, StopCriteria, bigram_logits_cpu};
use wgsample::gpu::{DType, GpuContext, GpuSampler, LogitsView, SamplerConfig};
use wgsample::{CpuSampler, Logits, RowState, SamplingParams, Status};

/// A storage buffer holding `logits` as f32.
fn logits_buffer(ctx: &GpuContext, logits: &[f32]) -> wgpu::Buffer {
    use wgpu::util::DeviceExt as _;
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("robustness logits"),
            contents: bytemuck::cast_slice(logits),
            usage: wgpu::BufferUsages::STORAGE,
        })
}

#[test]
fn record_with_an_offset_near_u64_max_is_an_error() {
    let ctx = gpu_ctx();
    let v = 64u32;
    let logits: Vec<f32> = (0..v).map(|i| (i % 7) as f32).collect();
    let buf = logits_buffer(ctx, &logits);
    let mut sampler = GpuSampler::new(ctx, SamplerConfig::new(1, v)).unwrap();
    for offset in [u64::MAX - 3, u64::MAX - 255, u64::MAX / 4 * 4, 1 << 63] {
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        let e = sampler
            .record(
                &mut enc,
                LogitsView {
                    buffer: &buf,
                    offset,
                    dtype: DType::F32,
                },
                1,
            )
            .unwrap_err();
        assert!(e.to_string().contains("offset"), "{e}");
    }
    // The sampler is still usable afterwards.
    let out = sampler.sample(LogitsView::f32(&buf), 1).unwrap();
    assert_eq!(out[0].status, Status::Ok);
}

#[test]
fn a_step_counter_at_u64_max_wraps_to_zero_on_both_backends() {
    // SPEC: the counter is (s low 32 bits, s high 32 bits); the device keeps
    // it as two u32 words and carries, so s = 2^64 - 1 is followed by 0.
    // The CPU backend does the same (no overflow panic).
    let v = 300usize;
    let logits: Vec<f32> = (0..v).map(|i| ((i * 37) % 101) as f32 * 0.05).collect();
    let params = [SamplingParams {
        seed: 11,
        ..Default::default()
    }];
    let mut state = RowState::new(&[1, 2]);
    state.step = u64::MAX;
    let mut cpu_states = vec![state.clone()];
    let mut cpu = CpuSampler::new();
    let c = cpu
        .sample(Logits::F32(&logits), v, &params, &mut cpu_states)
        .unwrap();
    assert_eq!(c[0].status, Status::Ok);
    assert_eq!(cpu_states[0].step, 0);
    assert_eq!(cpu_states[0].generated_len(), 1);
    // The next step (s = 0) works too.
    let c1 = cpu
        .sample(Logits::F32(&logits), v, &params, &mut cpu_states)
        .unwrap();
    assert_eq!(cpu_states[0].step, 1);

    let ctx = gpu_ctx();
    let buf = logits_buffer(ctx, &logits);
    let mut sampler = GpuSampler::new(ctx, SamplerConfig::new(1, v as u32)).unwrap();
    sampler.set_params(0, &params[0]).unwrap();
    sampler.set_state(0, &state).unwrap();
    let g = sampler.sample(LogitsView::f32(&buf), 1).unwrap();
    assert_eq!(g[0].token, c[0].token, "step u64::MAX");
    assert_eq!(sampler.read_state(0).unwrap().step, 0);
    let g1 = sampler.sample(LogitsView::f32(&buf), 1).unwrap();
    assert_eq!(g1[0].token, c1[0].token, "step 0 after the wrap");
}

#[test]
fn row_state_record_wraps_instead_of_overflowing() {
    let mut s = RowState::default();
    s.step = u64::MAX;
    s.record(3);
    assert_eq!(s.step, 0);
    assert_eq!(s.output_count(3), 1);
}

#[test]
fn bigram_logits_cpu_rejects_bad_shapes() {
    let table: Vec<f32> = (0..9).map(|x| x as f32).collect();
    let mut out = vec![0.0; 3];
    // vocab 0: no table.
    assert!(bigram_logits_cpu(&table, 0, &[0], &mut out).is_err());
    assert!(bigram_logits_cpu(&[], 0, &[], &mut []).is_err());
    // A table too short for the vocab (row 2 would be past its end).
    assert!(bigram_logits_cpu(&table[..7], 3, &[2], &mut out).is_err());
    assert!(bigram_logits_cpu(&table, 4, &[2], &mut [0.0; 4]).is_err());
    // An output that does not hold one row per token.
    assert!(bigram_logits_cpu(&table, 3, &[2, 1], &mut out).is_err());
    // The good case still copies the row.
    bigram_logits_cpu(&table, 3, &[2], &mut out).unwrap();
    assert_eq!(out, [6.0, 7.0, 8.0]);
}

#[test]
fn decode_gpu_checks_max_seen_tokens_before_the_first_step() {
    let ctx = gpu_ctx();
    let v = 16u32;
    let table: Vec<f32> = (0..v * v).map(|i| ((i * 13) % 17) as f32 * 0.1).collect();
    let model = decode::BigramModel::new(ctx, &table, v, 1).unwrap();
    model.set_start(&[0]).unwrap();
    let mut cfg = SamplerConfig::new(1, v);
    cfg.max_seen_tokens = 8;
    let mut sampler = GpuSampler::new(ctx, cfg).unwrap();
    let params = [SamplingParams {
        frequency_penalty: 0.5,
        ..Default::default()
    }];
    let crit = StopCriteria::new(9);
    let spec = DecodeSpec::new(&params, &crit);
    let mut steps = 0;
    let e = decode::decode_gpu(
        &mut sampler,
        model.logits(),
        &spec,
        |enc, info| {
            steps += 1;
            model.record_step(enc, info)
        },
        |_| {},
    )
    .unwrap_err();
    assert_eq!(steps, 0, "nothing may run before the error");
    let msg = e.to_string();
    assert!(
        msg.contains("max_new_tokens") && msg.contains('9') && msg.contains('8'),
        "{msg}"
    );
    assert!(msg.contains("max_seen_tokens"), "{msg}");

    // Distinct tokens already in the state count against the capacity.
    let states = [RowState::with_output(&[0], &[1, 2, 3])];
    let crit = StopCriteria::new(6);
    let mut spec = DecodeSpec::new(&params, &crit);
    spec.states = Some(&states);
    let e = decode::decode_gpu(
        &mut sampler,
        model.logits(),
        &spec,
        |enc, info| model.record_step(enc, info),
        |_| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("max_seen_tokens"), "{e}");

    // Exactly at the capacity runs, and so does a row without penalties.
    let crit = StopCriteria::new(8);
    let spec = DecodeSpec::new(&params, &crit);
    let out = decode::decode_gpu(
        &mut sampler,
        model.logits(),
        &spec,
        |enc, info| model.record_step(enc, info),
        |_| {},
    )
    .unwrap();
    assert_eq!(out.sequences[0].tokens.len(), 8);
    let plain = [SamplingParams::default()];
    let crit = StopCriteria::new(20);
    let spec = DecodeSpec::new(&plain, &crit);
    let out = decode::decode_gpu(
        &mut sampler,
        model.logits(),
        &spec,
        |enc, info| model.record_step(enc, info),
        |_| {},
    )
    .unwrap();
    assert_eq!(out.sequences[0].tokens.len(), 20);
}

#[test]
fn the_samplers_own_output_as_logits_is_an_error() {
    // Binding the output buffer both as the logits (read-only) and as the
    // output (read-write) is a wgpu validation panic on the device; record
    // refuses it first, and the sampler stays usable.
    let ctx = gpu_ctx();
    // V = 2 so that the 48-byte output (4 rows x 12 bytes) is large
    // enough to pass the size check.
    let v = 2u32;
    let logits = [0.5f32, 1.5];
    let buf = logits_buffer(ctx, &logits);
    let mut sampler = GpuSampler::new(ctx, SamplerConfig::new(4, v)).unwrap();
    sampler.set_params(0, &SamplingParams::greedy()).unwrap();
    let own = sampler.output_buffer().clone();
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    let e = sampler
        .record(&mut enc, LogitsView::f32(&own), 1)
        .unwrap_err();
    assert!(e.to_string().contains("own buffers"), "{e}");
    let out = sampler.sample(LogitsView::f32(&buf), 1).unwrap();
    assert_eq!((out[0].status, out[0].token), (Status::Ok, 1));
}

/// A buffer of `logits` as f32, then destroyed: binding it fails inside
/// `record` after every check `validate` makes.
fn destroyed_buffer(ctx: &GpuContext, logits: &[f32]) -> wgpu::Buffer {
    let b = logits_buffer(ctx, logits);
    b.destroy();
    b
}

/// Records one step of row 0 from `gone` (a destroyed buffer) and checks
/// that wgpu's refusal comes back as an error; the encoder is dropped.
fn record_refused(ctx: &GpuContext, sampler: &mut GpuSampler, gone: &wgpu::Buffer) {
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    let e = sampler
        .record(&mut enc, LogitsView::f32(gone), 1)
        .expect_err("a destroyed logits buffer cannot be bound");
    assert!(
        matches!(e, wgsample::Error::Wgpu { .. } | wgsample::Error::Gpu(_)),
        "{e}"
    );
}

/// Records a verification of row 0's draft `[4]` against `target` with
/// `qgone` (destroyed) as the draft probabilities, and checks that it is an
/// error; the encoder is dropped.
fn verify_refused(
    ctx: &GpuContext,
    sampler: &mut GpuSampler,
    target: &wgpu::Buffer,
    qgone: &wgpu::Buffer,
) {
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    sampler
        .record_verify(
            &mut enc,
            LogitsView::f32(target),
            1,
            &[4],
            Some(LogitsView::f32(qgone)),
        )
        .expect_err("destroyed draft probabilities cannot be bound");
}

#[test]
fn a_record_that_fails_to_bind_changes_nothing() {
    // The parameters set before a record whose bind group cannot be made
    // (a destroyed logits buffer) must still reach the device on the next
    // record: the failed call records nothing and keeps its uploads queued.
    let ctx = gpu_ctx();
    let v = 64usize;
    let mut logits = vec![0.0f32; v];
    logits[3] = 50.0;
    let buf = logits_buffer(ctx, &logits);
    let gone = destroyed_buffer(ctx, &logits);
    let mut sampler = GpuSampler::new(ctx, SamplerConfig::new(2, v as u32)).unwrap();
    let first = sampler.sample(LogitsView::f32(&buf), 1).unwrap();
    assert_eq!(first[0].token, 3, "default params pick the peak");
    // Greedy with a bias that moves the argmax to token 9.
    let params = SamplingParams {
        temperature: 0.0,
        logit_bias: vec![(9, 100.0)],
        ..Default::default()
    };
    sampler.set_params(0, &params).unwrap();
    record_refused(ctx, &mut sampler, &gone);
    let before = sampler.read_state(0).unwrap();
    assert_eq!(before.step, 1, "the failed record advanced nothing");
    let out = sampler.sample(LogitsView::f32(&buf), 1).unwrap();
    assert_eq!(
        (out[0].status, out[0].token),
        (Status::Ok, 9),
        "the new params reached the device"
    );

    // The same for a verification whose draft probabilities cannot be bound.
    let k = 1usize;
    let target: Vec<f32> = (0..(k + 1) * v)
        .map(|i| ((i * 13) % 29) as f32 * 0.1)
        .collect();
    let tbuf = logits_buffer(ctx, &target);
    let q: Vec<f32> = vec![1.0 / v as f32; k * v];
    let qgone = destroyed_buffer(ctx, &q);
    let qbuf = logits_buffer(ctx, &q);
    let sparams = SamplingParams {
        seed: 5,
        top_k: 7,
        ..Default::default()
    };
    sampler.set_params(0, &sparams).unwrap();
    let state = sampler.read_state(0).unwrap();
    verify_refused(ctx, &mut sampler, &tbuf, &qgone);
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    sampler
        .record_verify(
            &mut enc,
            LogitsView::f32(&tbuf),
            1,
            &[4],
            Some(LogitsView::f32(&qbuf)),
        )
        .unwrap();
    let g = sampler.submit_and_read_verify(enc).unwrap();
    let mut cpu = CpuSampler::new();
    let mut states = vec![state];
    let c = cpu
        .verify(
            Logits::F32(&target),
            v,
            &wgsample::Drafts {
                k,
                tokens: &[4],
                probs: Some(&q),
            },
            &[sparams],
            &mut states,
        )
        .unwrap();
    assert_eq!(
        g[0].tokens, c[0].tokens,
        "the verification after the failed one"
    );
    assert_eq!(g[0].accepted, c[0].accepted);
}

#[test]
fn a_failed_record_does_not_use_up_a_rows_capacity() {
    // A row with penalties may emit max_seen_tokens tokens; a record or a
    // verification that wgpu refused emitted none, so the steps that fit
    // before it still fit after it.
    let ctx = gpu_ctx();
    let v = 32usize;
    let logits: Vec<f32> = (0..2 * v).map(|i| ((i * 7) % 11) as f32 * 0.3).collect();
    let buf = logits_buffer(ctx, &logits);
    let gone = destroyed_buffer(ctx, &logits);
    let q = vec![1.0 / v as f32; v];
    let qbuf = logits_buffer(ctx, &q);
    let qgone = destroyed_buffer(ctx, &q);
    let params = SamplingParams {
        seed: 3,
        repetition_penalty: 1.3,
        ..Default::default()
    };
    let mut cfg = SamplerConfig::new(2, v as u32);
    cfg.max_seen_tokens = 2;

    // Sampling: room for two steps.
    let mut sampler = GpuSampler::new(ctx, cfg).unwrap();
    sampler.set_params(0, &params).unwrap();
    record_refused(ctx, &mut sampler, &gone);
    for step in 0..2 {
        let out = sampler.sample(LogitsView::f32(&buf), 1);
        assert!(out.is_ok(), "step {step}: {:?}", out.err());
    }
    assert!(
        sampler.sample(LogitsView::f32(&buf), 1).is_err(),
        "a third step is over capacity"
    );

    // Verification of one draft: room for exactly one (2 tokens).
    let mut sampler = GpuSampler::new(ctx, cfg).unwrap();
    sampler.set_params(0, &params).unwrap();
    verify_refused(ctx, &mut sampler, &buf, &qgone);
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    let r = sampler.record_verify(
        &mut enc,
        LogitsView::f32(&buf),
        1,
        &[4],
        Some(LogitsView::f32(&qbuf)),
    );
    assert!(r.is_ok(), "the verification that fits: {:?}", r.err());
    let out = sampler.submit_and_read_verify(enc).unwrap();
    assert_eq!(out[0].status, Status::Ok);
}
