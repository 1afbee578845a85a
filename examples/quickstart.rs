//! The README's quick-start code, verbatim, compiled and run: each README
//! ```rust block is the body of one function below (between `// README
//! block N` and `// end`), with the engine's pieces it names (`model`,
//! `prompt_tokens`, `logits_buf`, `detok`, ...) passed in as arguments.
//! `tests/readme_examples.rs` fails when a README block is not found here
//! word for word, so the README cannot drift from the API. Run it with
//! `cargo run --release --example quickstart`.
// The blocks import what they use, as in the README, beside this file's own
// imports, and name results the README only shows.
#![allow(unused_variables, unused_imports)]

use wgsample::decode::DecodeOutput;
use wgsample::gpu::{GpuContext, GpuSampler, LogitsView, SamplerConfig};
use wgsample::{Result, RowState, SamplingParams};

/// Stands for an engine whose forward pass already wrote the logits.
struct Model;

impl Model {
    fn record_step(&self, _encoder: &mut wgpu::CommandEncoder) {}

    /// A `[batch, 1000]` logits buffer on `ctx`'s device (row peaks at 7).
    fn forward(&self, ctx: &GpuContext, batch: u32) -> wgpu::Buffer {
        logits_buffer(ctx, 1000 * batch as usize).1
    }
}

/// The decode loop's model: reads the previous tokens on the device.
struct LoopModel;

impl LoopModel {
    fn record_step(
        &self,
        _encoder: &mut wgpu::CommandEncoder,
        _tokens: &wgpu::Buffer,
    ) -> Result<()> {
        Ok(())
    }
}

#[rustfmt::skip]
fn block1(device: &wgpu::Device, queue: &wgpu::Queue, model: &Model, prompt_tokens: Vec<u32>, logits_buf: wgpu::Buffer, batch: u32) -> Result<Vec<wgsample::RowOutput>> {
// README block 1
use wgsample::gpu::{DType, GpuContext, GpuSampler, LogitsView, SamplerConfig};
use wgsample::{RowState, SamplingParams};

let ctx = GpuContext::from_device(device.clone(), queue.clone()); // your engine's device (or open_device()?)
let mut sampler = GpuSampler::new(&ctx, SamplerConfig::new(64, 128_256))?;
sampler.set_params(0, &SamplingParams { temperature: 0.8, top_k: 50, top_p: 0.9, seed: 42, ..Default::default() })?;
sampler.set_state(0, &RowState::new(&prompt_tokens))?;

// Each decode step: your model wrote `[batch, vocab]` logits into `logits_buf` (STORAGE usage).
let mut encoder = ctx.device.create_command_encoder(&Default::default());
model.record_step(&mut encoder);                                  // your passes
sampler.record(&mut encoder, LogitsView { buffer: &logits_buf, offset: 0, dtype: DType::F32 }, batch)?;
// sampler.output_buffer(): `batch` u32 token ids (then logprobs, then statuses), on the GPU,
// ready for the next step's embedding lookup; or read back just those 12 bytes a row:
let rows = sampler.submit_and_read(encoder)?;   // Vec<RowOutput { token, logprob, status }>
// end
Ok(rows)
}

#[rustfmt::skip]
fn block2(mut sampler: GpuSampler, model: &LoopModel, params: Vec<SamplingParams>, logits_buf: wgpu::Buffer, eos_id: u32) -> Result<DecodeOutput> {
use wgsample::gpu::DType;
let detok = |t: u32| format!("<{t}>");
// README block 2
use wgsample::decode::{decode_gpu, DecodeSpec, StopCriteria};
let criteria = StopCriteria::new(256).with_eos([eos_id]).with_stop_string("\n\n");
let mut spec = DecodeSpec::new(&params, &criteria);       // one SamplingParams per row
spec.detokenizer = Some(&detok);                           // Fn(u32) -> String, for stop strings
let out = decode_gpu(&mut sampler, LogitsView { buffer: &logits_buf, offset: 0, dtype: DType::F32 }, &spec,
    |encoder, step| model.record_step(encoder, step.tokens),  // previous tokens, on the GPU
    |event| print!("{}", event.text))?;                        // streamed text, stop text held back
// end
println!();
Ok(out)
}

#[rustfmt::skip]
fn block3(logits: Vec<f32>, vocab: usize, params: Vec<SamplingParams>, mut states: Vec<RowState>, row: Vec<f32>) -> Result<()> {
// README block 3
use wgsample::{CpuSampler, Logits, RowState, SamplingParams};
let mut cpu = CpuSampler::new();
let out = cpu.sample(Logits::F32(&logits), vocab, &params /* one per row */, &mut states)?;
let dist = wgsample::filtered_distribution(Logits::F32(&row), &params[0], &states[0])?; // steps 1-9
// end
println!("CPU: token {} ({} survivors of steps 1-9)", out[0].token, dist.tokens.len());
Ok(())
}

#[rustfmt::skip]
async fn block4(model: &Model, vocab: u32, batch: u32) -> Result<Vec<wgsample::RowOutput>> {
// README block 4
let ctx = wgsample::gpu::open_device_async().await?;
let mut sampler = GpuSampler::new(&ctx, SamplerConfig::new(8, vocab))?;
sampler.set_params(0, &SamplingParams { temperature: 0.7, top_p: 0.9, ..Default::default() })?;
let logits_buf = model.forward(&ctx, batch);    // your model's [batch, vocab] logits, on ctx.device
let rows = sampler.sample_async(LogitsView::f32(&logits_buf), batch).await?;
// end
Ok(rows)
}

#[rustfmt::skip]
fn block5(ctx: &GpuContext, mut sampler: GpuSampler, logits_buf: wgpu::Buffer, target_buf: wgpu::Buffer, draft_tokens: Vec<u32>) -> Result<(Vec<wgsample::TopLogprobs>, Vec<wgsample::VerifyOutput>)> {
// README block 5
use wgsample::gpu::LogitsView;
use wgsample::SamplingParams;

// Top log-probabilities: the 5 most probable tokens of row 0 and the sampled token's rank.
sampler.set_params(0, &SamplingParams { top_logprobs: 5, seed: 1, ..Default::default() })?;
let mut encoder = ctx.device.create_command_encoder(&Default::default());
sampler.record(&mut encoder, LogitsView::f32(&logits_buf), 1)?;
let (rows, top) = sampler.submit_and_read_with_top_logprobs(encoder)?; // top[0].entries, top[0].rank

// Speculative decoding: check k draft tokens against the target model's [1, k + 1, V] logits.
let mut encoder = ctx.device.create_command_encoder(&Default::default());
sampler.record_verify(&mut encoder, LogitsView::f32(&target_buf), 1, &draft_tokens, None)?;
let out = sampler.submit_and_read_verify(encoder)?; // out[0].tokens: accepted drafts, then one more
// end
Ok((top, out))
}

/// A `[1, v]` row of logits that peaks at token 7, in a new STORAGE buffer.
fn logits_buffer(ctx: &GpuContext, v: usize) -> (Vec<f32>, wgpu::Buffer) {
    let row: Vec<f32> = (0..v)
        .map(|i| ((i * 37 % 101) as f32) * 0.05 + if i == 7 { 6.0 } else { 0.0 })
        .collect();
    let buf = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("quickstart logits"),
        size: (v * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.queue.write_buffer(&buf, 0, bytemuck::cast_slice(&row));
    (row, buf)
}

fn main() -> Result<()> {
    if let Some(code) = wgsample::gpu::rerun_with_runtime_dir() {
        std::process::exit(code);
    }
    let ctx = match wgsample::gpu::open_device() {
        Ok(c) => c,
        Err(e) => {
            println!("no GPU adapter ({e}): only the CPU block runs");
            let row: Vec<f32> = (0..1000).map(|i| (i % 13) as f32 * 0.1).collect();
            return block3(
                row.clone(),
                1000,
                vec![SamplingParams::default()],
                vec![RowState::default()],
                row,
            );
        }
    };
    println!("device: {}", ctx.describe());
    let (_, big) = logits_buffer(&ctx, 128_256);
    let rows = block1(&ctx.device, &ctx.queue, &Model, vec![1, 2, 3], big, 1)?;
    println!("block 1: token {} ({:?})", rows[0].token, rows[0].status);

    let v = 1000usize;
    let (row, small) = logits_buffer(&ctx, v);
    let sampler = GpuSampler::new(&ctx, SamplerConfig::new(1, v as u32))?;
    let params = vec![SamplingParams {
        temperature: 0.9,
        top_k: 20,
        seed: 5,
        ..Default::default()
    }];
    let out = block2(sampler, &LoopModel, params.clone(), small, 3)?;
    println!(
        "block 2: {} tokens, stopped by {:?}",
        out.sequences[0].tokens.len(),
        out.sequences[0].stop_reason
    );

    block3(row.clone(), v, params, vec![RowState::default()], row)?;

    let rows = pollster::block_on(block4(&Model, v as u32, 1))?;
    println!("block 4: token {} ({:?})", rows[0].token, rows[0].status);

    // Three target positions that all peak at token 7 (p about 0.2 at
    // T = 1): drafts [7, 7] are accepted or not at random.
    let sampler = GpuSampler::new(&ctx, SamplerConfig::new(3, v as u32))?;
    let (_, logits) = logits_buffer(&ctx, v);
    let (_, target) = logits_buffer(&ctx, 3 * v);
    let (top, out) = block5(&ctx, sampler, logits, target, vec![7, 7])?;
    println!(
        "block 5: top-5 {:?} (rank {}); verify emitted {:?}, accepted {}",
        top[0].entries.iter().map(|e| e.token).collect::<Vec<_>>(),
        top[0].rank,
        out[0].tokens,
        out[0].accepted
    );
    Ok(())
}
