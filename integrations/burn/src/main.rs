//! wgsample end to end with burn 0.22 (see README.md next to this file).
//!
//! A small byte-level decoder-only transformer, built from burn's `nn`
//! modules with fixed seeded weights, runs on burn's wgpu backend. Each
//! decode step, wgsample's `GpuSampler` reads the logits tensor's own wgpu
//! buffer in place (the buffer, offset and dtype come from the tensor,
//! through cubecl's `get_resource`), and the sampled ids are copied on the
//! device into a burn `Int` tensor that feeds the next step. The same model
//! runs twice: on burn's device handed to wgsample, and on wgsample's device
//! handed to burn. After sampling, the logits are read back for one check
//! only: `CpuSampler` must pick the same tokens. The last line printed is
//! one JSON object; the exit code is 1 when the two lists differ.

use burn::backend::Wgpu;
use burn::backend::wgpu::{AutoCompiler, CubeTensor, WgpuSetup};
use burn::module::Param;
use burn::nn::attention::generate_autoregressive_mask;
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{
    Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
    PositionalEncoding, PositionalEncodingConfig,
};
use burn::prelude::*;
use burn::tensor::DType as BurnDType;
use cubecl_wgpu::WgpuServer;
use wgsample::gpu::{
    DType, DeviceFeatures, GpuContext, GpuSampler, LogitsView, SamplerConfig, open_device_with,
};
use wgsample::{CpuSampler, Logits, RowState, SamplingParams};

/// The text the prompts come from and whose byte frequencies set the
/// output bias.
const README: &[u8] = include_bytes!("../../../README.md");
/// Byte-level vocabulary.
const VOCAB: usize = 256;
const D_MODEL: usize = 64;
const N_HEADS: usize = 4;
const N_LAYERS: usize = 2;
const D_FF: usize = 128;
/// The model sees a sliding window of this many bytes (constant shapes:
/// each kernel compiles, and each matmul is autotuned, once).
const WINDOW: usize = 32;
/// Rows per step (two prompts).
const BATCH: usize = 2;
/// Tokens generated per row and strategy.
const NEW_TOKENS: usize = 32;
const SEED: u64 = 20_260_412;

/// The server type behind a burn wgpu device, for `get_resource`.
type Server = WgpuServer<AutoCompiler>;

type Res<T> = Result<T, String>;

fn err<E: std::fmt::Debug>(what: &'static str) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e:?}")
}

#[derive(Module, Debug)]
struct ByteLm {
    embed: Embedding,
    pos: PositionalEncoding,
    blocks: TransformerEncoder,
    norm: LayerNorm,
    head: Linear,
}

impl ByteLm {
    /// Fixed weights: burn's initializers after `device.seed(SEED)`, and an
    /// output bias set to the log byte frequencies of the README, so that
    /// the untrained model writes README-like bytes rather than noise.
    fn new(device: &Device) -> ByteLm {
        device.seed(SEED);
        let mut head = LinearConfig::new(D_MODEL, VOCAB)
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: 0.15,
            })
            .init(device);
        let mut counts = [1.0f32; VOCAB];
        for &b in README {
            counts[b as usize] += 1.0;
        }
        let total: f32 = counts.iter().sum();
        let bias: Vec<f32> = counts.iter().map(|c| (c / total).ln()).collect();
        head.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(bias, [VOCAB]),
            device,
        )));
        ByteLm {
            embed: EmbeddingConfig::new(VOCAB, D_MODEL).init(device),
            pos: PositionalEncodingConfig::new(D_MODEL)
                .with_max_sequence_size(WINDOW)
                .init(device),
            blocks: TransformerEncoderConfig::new(D_MODEL, D_FF, N_HEADS, N_LAYERS)
                .with_dropout(0.0)
                .with_norm_first(true)
                .init(device),
            norm: LayerNormConfig::new(D_MODEL).init(device),
            head,
        }
    }

    /// `[B, T]` byte ids to the `[B, 256]` f32 logits of the last position.
    fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<2> {
        let [b, t] = tokens.dims();
        let device = tokens.device();
        let x = self.pos.forward(self.embed.forward(tokens));
        let mask = generate_autoregressive_mask(b, t, &device);
        let h = self
            .blocks
            .forward(TransformerEncoderInput::new(x).mask_attn(mask));
        let last = h.narrow(1, t - 1, 1).reshape([b, D_MODEL]);
        self.head.forward(self.norm.forward(last))
    }
}

struct Strategy {
    name: &'static str,
    params: fn(row: usize) -> SamplingParams,
}

const STRATEGIES: [Strategy; 3] = [
    Strategy {
        name: "greedy",
        params: |_| SamplingParams::greedy(),
    },
    Strategy {
        name: "T=0.8 top-p 0.9",
        params: |row| SamplingParams {
            temperature: 0.8,
            top_p: 0.9,
            seed: 1000 + row as u64,
            ..Default::default()
        },
    },
    Strategy {
        name: "top-k 40",
        params: |row| SamplingParams {
            top_k: 40,
            seed: 2000 + row as u64,
            ..Default::default()
        },
    },
];

/// What one run (one device setup) produced.
#[derive(Default)]
struct Tally {
    steps: usize,
    tokens: Vec<u32>,
    cpu_tokens: Vec<u32>,
    logits_bytes_copied: u64,
    /// Rows whose device-fed window disagreed with the host's tokens.
    feed_mismatches: usize,
}

/// The prompts: two `WINDOW`-byte slices of the README.
fn prompts() -> [Vec<u32>; BATCH] {
    let second = README
        .windows(5)
        .position(|w| w == b"\n\nThe")
        .map_or(WINDOW, |p| p + 2);
    [0, second].map(|start| {
        README[start..start + WINDOW]
            .iter()
            .map(|&b| u32::from(b))
            .collect()
    })
}

fn show(bytes: &[u32]) -> String {
    let raw: Vec<u8> = bytes.iter().map(|&t| t as u8).collect();
    String::from_utf8_lossy(&raw).escape_debug().to_string()
}

/// Decodes with every strategy on `device` (a burn device) and `ctx` (the
/// same `wgpu::Device` and queue, as wgsample sees them).
fn run(label: &str, device: &Device, ctx: &GpuContext, tally: &mut Tally) -> Res<()> {
    println!("== {label}: {}", ctx.describe());
    let model = ByteLm::new(device);
    let mut sampler = GpuSampler::new(ctx, SamplerConfig::new(BATCH as u32, VOCAB as u32))
        .map_err(err("sampler"))?;
    let mut cpu = CpuSampler::new();
    let prompts = prompts();

    for strategy in &STRATEGIES {
        let params: Vec<SamplingParams> = (0..BATCH).map(strategy.params).collect();
        let mut cpu_states: Vec<RowState> = prompts.iter().map(|p| RowState::new(p)).collect();
        for (row, (p, state)) in params.iter().zip(&cpu_states).enumerate() {
            sampler.set_params(row, p).map_err(err("set_params"))?;
            sampler.set_state(row, state).map_err(err("set_state"))?;
        }
        let flat: Vec<i32> = prompts.iter().flatten().map(|&t| t as i32).collect();
        let mut window = Tensor::<2, Int>::from_data(
            TensorData::new(flat, [BATCH, WINDOW]),
            (device, BurnDType::I32),
        );
        let mut generated: [Vec<u32>; BATCH] = Default::default();

        for _ in 0..NEW_TOKENS {
            let logits = model.forward(window.clone());
            // The tensor the sampled ids land in: [B, 1] i32, written by a
            // copy on the device from the sampler's output buffer.
            let next = Tensor::<2, Int>::zeros([BATCH, 1], (device, BurnDType::I32));

            let cube: CubeTensor = logits
                .clone()
                .try_into_primitive::<Wgpu>()
                .map_err(err("logits primitive"))?;
            if cube.dtype != BurnDType::F32
                || cube.meta.shape().as_slice() != [BATCH, VOCAB]
                || !cube.is_contiguous()
                || cube.meta.is_tiled()
            {
                // The Linear output is a fresh dense [B, V] f32 tensor; any
                // other layout would need a copy, which this demo counts
                // and refuses.
                tally.logits_bytes_copied += (BATCH * VOCAB * 4) as u64;
                return Err(format!(
                    "logits are not a dense [{BATCH}, {VOCAB}] f32 tensor: {:?} {:?}",
                    cube.dtype,
                    cube.meta.shape()
                ));
            }
            let next_cube: CubeTensor = next
                .clone()
                .try_into_primitive::<Wgpu>()
                .map_err(err("next primitive"))?;
            // Burn's queued kernels onto the shared queue first.
            device.flush().map_err(err("burn flush"))?;
            let logits_res = cube
                .client
                .get_resource::<Server>(cube.handle.clone())
                .map_err(err("logits get_resource"))?;
            let next_res = next_cube
                .client
                .get_resource::<Server>(next_cube.handle.clone())
                .map_err(err("next get_resource"))?;
            cube.client.flush().map_err(err("client flush"))?;
            let r = logits_res.resource();
            let n = next_res.resource();

            let mut enc = ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("wgsample-burn step"),
                });
            sampler
                .record(
                    &mut enc,
                    LogitsView {
                        buffer: &r.buffer,
                        offset: r.offset,
                        dtype: DType::F32,
                    },
                    BATCH as u32,
                )
                .map_err(err("record"))?;
            // The first 4 B bytes of the output buffer are the B token ids
            // (u32; ids < 256 are the same bits as i32).
            enc.copy_buffer_to_buffer(
                sampler.output_buffer(),
                0,
                &n.buffer,
                n.offset,
                Some((BATCH * 4) as u64),
            );
            let out = sampler.submit_and_read(enc).map_err(err("submit"))?;
            // Only now may burn's pool hand these allocations out again.
            drop(logits_res);
            drop(next_res);
            drop(cube);
            drop(next_cube);
            tally.steps += 1;

            // The check: CpuSampler on the same logits, read back after
            // wgsample sampled.
            let host: Vec<f32> = logits
                .into_data()
                .try_to_vec::<f32>()
                .map_err(err("logits readback"))?;
            let cpu_out = cpu
                .sample(Logits::F32(&host), VOCAB, &params, &mut cpu_states)
                .map_err(err("cpu sample"))?;
            for ((gpu, cpu), row) in out.iter().zip(&cpu_out).zip(&mut generated) {
                tally.tokens.push(gpu.token);
                tally.cpu_tokens.push(cpu.token);
                row.push(gpu.token);
            }

            // The next step's input, without the host: the window slides by
            // one and ends with the ids the sampler wrote.
            window = Tensor::cat(vec![window, next], 1).narrow(1, 1, WINDOW);
        }

        // The window built on the device must end with the host's tokens.
        let fed: Vec<i32> = window
            .into_data()
            .try_to_vec::<i32>()
            .map_err(err("window readback"))?;
        for (row, gen_row) in generated.iter().enumerate() {
            let tail = &gen_row[NEW_TOKENS.saturating_sub(WINDOW)..];
            let got = &fed[(row + 1) * WINDOW - tail.len()..(row + 1) * WINDOW];
            if !tail.iter().zip(got).all(|(&a, &b)| a as i32 == b) {
                tally.feed_mismatches += 1;
            }
        }

        println!("-- {}", strategy.name);
        for (row, (prompt, gen_row)) in prompts.iter().zip(&generated).enumerate() {
            println!("  [{row}] \"{}\" -> \"{}\"", show(prompt), show(gen_row));
        }
    }
    Ok(())
}

/// Burn creates the device; wgsample gets its `wgpu::Device` and queue.
fn burn_to_wgsample(tally: &mut Tally) -> Res<()> {
    let (device, setup) = Device::wgpu_options()
        .init_with_setup()
        .map_err(err("burn wgpu init"))?;
    let ctx = GpuContext::from_device(setup.device.clone(), setup.queue.clone());
    run("burn's device, handed to wgsample", &device, &ctx, tally)
}

/// wgsample opens the device (every adapter feature, which burn's kernels
/// need); burn registers it as an existing setup.
fn wgsample_to_burn(tally: &mut Tally) -> Res<()> {
    let ctx = open_device_with(DeviceFeatures::AdapterAll).map_err(err("open_device_with"))?;
    // `WgpuSetup` also wants the instance and adapter, which `GpuContext`
    // does not keep: enumerate again and take the adapter with the same
    // description (burn reads its features, limits and info only; the
    // device and queue are wgsample's).
    let backend = ctx.adapter_info.backend;
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backend.into();
    let instance = wgpu::Instance::new(desc);
    let adapter = pollster::block_on(instance.enumerate_adapters(backend.into()))
        .into_iter()
        .find(|a| a.get_info() == ctx.adapter_info)
        .ok_or("the adapter of wgsample's device was not found again")?;
    if !ctx.device.features().contains(adapter.features()) {
        return Err("wgsample's device lacks some of the adapter's features".into());
    }
    let device = Device::wgpu_options()
        .setup(WgpuSetup {
            instance,
            adapter,
            device: ctx.device.clone(),
            queue: ctx.queue.clone(),
            backend,
        })
        .init()
        .map_err(err("burn setup init"))?;
    run("wgsample's device, handed to burn", &device, &ctx, tally)
}

fn main() {
    if let Some(code) = wgsample::gpu::rerun_with_runtime_dir() {
        std::process::exit(code);
    }
    let started = std::time::Instant::now();
    let mut tally = Tally::default();
    let result = burn_to_wgsample(&mut tally).and_then(|()| wgsample_to_burn(&mut tally));
    if let Err(e) = &result {
        eprintln!("wgsample-burn: {e}");
    }
    eprintln!(
        "wgsample-burn: {} steps in {:.1} s; device-fed windows that disagreed with the host: {}",
        tally.steps,
        started.elapsed().as_secs_f64(),
        tally.feed_mismatches
    );
    let list = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    println!(
        "{{\"steps\": {}, \"tokens\": [{}], \"cpu_tokens\": [{}], \"logits_bytes_copied\": {}}}",
        tally.steps,
        list(&tally.tokens),
        list(&tally.cpu_tokens),
        tally.logits_bytes_copied
    );
    let ok = result.is_ok()
        && tally.tokens == tally.cpu_tokens
        && tally.logits_bytes_copied == 0
        && tally.feed_mismatches == 0;
    if !ok {
        std::process::exit(1);
    }
}
