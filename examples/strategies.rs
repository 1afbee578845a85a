//! Every strategy on synthetic logits: sample the next token of a batch of rows with
//! each strategy, on the GPU when there is an adapter (on the CPU backend
//! otherwise, saying so), and check the GPU's tokens against the CPU
//! backend's.
//!
//! `cargo run --release --example strategies [-- --batch B --vocab V --steps N]`
//!
//! The logits are synthetic (3·N(0,1), a fixed seed): the point is the
//! sampling, which is what wgsample does. Each strategy runs a short decode
//! loop with the state (token counts, step counter) kept on the device.
use std::time::Instant;
use wgpu::util::DeviceExt;
use wgsample::gpu::{GpuSampler, LogitsView, SamplerConfig, open_device};
use wgsample::{CpuSampler, Logits, RowState, SamplingParams};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse().unwrap_or_else(|_| {
                eprintln!("error: {name} expects a positive integer, got {v}");
                std::process::exit(2)
            })
        })
        .unwrap_or(default)
}

fn logits(n: usize) -> Vec<f32> {
    // xorshift + Box-Muller: deterministic, no extra dependency.
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 40) as f32 + 0.5) / (1u64 << 24) as f32
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (next(), next());
            3.0 * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
        })
        .collect()
}

fn main() {
    // Without XDG_RUNTIME_DIR, re-run once with a private one so that
    // Mesa's Vulkan layer prints no "error: XDG_RUNTIME_DIR" line.
    if let Some(code) = wgsample::gpu::rerun_with_runtime_dir() {
        std::process::exit(code);
    }
    let (b, v, steps) = (arg("--batch", 8), arg("--vocab", 32000), arg("--steps", 8));
    if b == 0 || v == 0 || steps == 0 {
        eprintln!("error: --batch, --vocab and --steps must be at least 1");
        std::process::exit(2);
    }
    let x = logits(b * v);
    let strategies: Vec<(&str, SamplingParams)> = vec![
        ("greedy", SamplingParams::greedy()),
        (
            "temperature 0.2",
            SamplingParams {
                temperature: 0.2,
                ..Default::default()
            },
        ),
        ("temperature 1.0", SamplingParams::default()),
        (
            "temperature 1.5",
            SamplingParams {
                temperature: 1.5,
                ..Default::default()
            },
        ),
        (
            "top-k 40",
            SamplingParams {
                top_k: 40,
                ..Default::default()
            },
        ),
        (
            "top-p 0.9",
            SamplingParams {
                top_p: 0.9,
                ..Default::default()
            },
        ),
        (
            "min-p 0.1",
            SamplingParams {
                min_p: 0.1,
                ..Default::default()
            },
        ),
        (
            "top-k 50 + top-p 0.9, T 0.8, penalties",
            SamplingParams {
                temperature: 0.8,
                top_k: 50,
                top_p: 0.9,
                repetition_penalty: 1.2,
                frequency_penalty: 0.3,
                ..Default::default()
            },
        ),
    ];
    let mut cpu = CpuSampler::new();
    let gpu = match open_device() {
        Ok(ctx) => {
            println!("GPU: {}", ctx.describe());
            if ctx.is_software() {
                println!("(a software adapter: GPU times below are CPU emulation, not GPU speed)");
            }
            Some(ctx)
        }
        Err(e) => {
            println!("no GPU adapter ({e}); running the CPU backend only");
            None
        }
    };
    println!("batch {b}, vocab {v}, {steps} steps per strategy, logits 3*N(0,1)\n");
    let buffer = gpu.as_ref().map(|ctx| {
        ctx.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("demo logits"),
                contents: bytemuck::cast_slice(&x),
                usage: wgpu::BufferUsages::STORAGE,
            })
    });
    let mut sampler = gpu.as_ref().map(|ctx| {
        GpuSampler::new(ctx, SamplerConfig::new(b as u32, v as u32)).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(2)
        })
    });
    let mut all_agree = true;
    for (name, p) in &strategies {
        let params: Vec<SamplingParams> = (0..b)
            .map(|r| SamplingParams {
                seed: r as u64,
                ..p.clone()
            })
            .collect();
        let mut states = vec![RowState::default(); b];
        let t = Instant::now();
        let mut cpu_tokens = vec![Vec::new(); b];
        for _ in 0..steps {
            let out = cpu
                .sample(Logits::F32(&x), v, &params, &mut states)
                .expect("valid input");
            for (r, o) in out.iter().enumerate() {
                cpu_tokens[r].push(o.token);
            }
        }
        let cpu_us = t.elapsed().as_secs_f64() * 1e6 / steps as f64;
        print!("{name:<40} cpu {cpu_us:>9.1} us/step");
        if let (Some(s), Some(buf)) = (sampler.as_mut(), buffer.as_ref()) {
            for (r, pr) in params.iter().enumerate() {
                s.set_params(r, pr).expect("valid params");
                s.set_state(r, &RowState::default()).expect("valid state");
            }
            let t = Instant::now();
            let mut gpu_tokens = vec![Vec::new(); b];
            for _ in 0..steps {
                let out = s
                    .sample(LogitsView::f32(buf), b as u32)
                    .unwrap_or_else(|e| {
                        eprintln!("error: {e}");
                        std::process::exit(1)
                    });
                for (r, o) in out.iter().enumerate() {
                    gpu_tokens[r].push(o.token);
                }
            }
            let gpu_us = t.elapsed().as_secs_f64() * 1e6 / steps as f64;
            let same = gpu_tokens == cpu_tokens;
            all_agree &= same;
            print!("   gpu {gpu_us:>9.1} us/step   gpu == cpu: {same}");
        }
        println!("\n    row 0 tokens: {:?}", cpu_tokens[0]);
    }
    if gpu.is_some() {
        println!("\nGPU and CPU backends agree on every token: {all_agree}");
    }
}
