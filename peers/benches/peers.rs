//! wgsample against its peers, side by side in one run, on the same logits
//! (V = 128256, `3·N(0,1)`, deterministic; T = 0.8 where a temperature
//! applies):
//!
//! 1. **CPU, one row**: candle 0.11's `LogitsProcessor`
//!    (`candle_transformers::generation`: `ArgMax`, `TopK { k: 50 }`,
//!    `TopP { p: 0.9 }`, `TopKThenTopP { k: 50, p: 0.9 }`) against
//!    wgsample's `CpuSampler` on one thread with the same strategy, twice:
//!    returning the token only, as candle does (`with_logprobs(false)`), and
//!    with the token's log-probability too (the default; cases `+logprob`).
//!    The candle logits are a CPU `Tensor` built once, as an engine holds
//!    them.
//! 2. **The engine path** at batch 1 and 64, top-k 50 then top-p 0.9: what
//!    engines built on wgpu do today, copy the `[B, V]` logits buffer to the
//!    host and sample there, against sampling on the device and reading back
//!    `B` results. Host side: `readback+cpu` maps the copied buffer and runs
//!    wgsample's `CpuSampler` (all cores) straight on the mapped bytes (the
//!    most favourable host path: no extra copy); `readback+candle` builds a
//!    tensor per row from the mapped bytes and runs one candle
//!    `LogitsProcessor` per row, as a candle engine does. Device side:
//!    `wgsample` is `GpuSampler::sample` (record, submit, read back 12 bytes a
//!    row). On lavapipe (Mesa's software Vulkan, the CPU playing GPU) this
//!    measures the plumbing, not a GPU: run it on a real one
//!    (`scripts/gpu_bench.sh`).
//!
//! After criterion finishes it prints a table of the medians and one line
//! per comparison, `RATIO <case> <peer>/wgsample = X.XX`, both from this
//! run's criterion estimates. `WGSAMPLE_PEERS_MEASURE_MS` /
//! `WGSAMPLE_PEERS_WARMUP_MS` set the measurement and warm-up time of each
//! benchmark (default 3000 / 1000 ms), `WGSAMPLE_PEERS_ENGINE=0` skips the
//! engine path.
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use criterion::{BenchmarkId, Criterion};
use wgpu::util::DeviceExt;
use wgsample::gpu::{GpuSampler, LogitsView, SamplerConfig, open_device};
use wgsample::{CpuSampler, Logits, RowState, SamplingParams};
use wgsample_peers::{criterion_dir, criterion_median_us, normal_logits};

const V: usize = 128_256;
const T: f32 = 0.8;
/// Steps between untimed resets of the wgsample row states.
const RESET_EVERY: u64 = 256;

fn cases() -> Vec<(&'static str, Sampling, SamplingParams)> {
    let t = f64::from(T);
    let sampled = SamplingParams {
        temperature: T,
        seed: 7,
        ..Default::default()
    };
    vec![
        ("argmax", Sampling::ArgMax, SamplingParams::greedy()),
        (
            "topk50",
            Sampling::TopK {
                k: 50,
                temperature: t,
            },
            SamplingParams {
                top_k: 50,
                ..sampled.clone()
            },
        ),
        (
            "topp0.9",
            Sampling::TopP {
                p: 0.9,
                temperature: t,
            },
            SamplingParams {
                top_p: 0.9,
                ..sampled.clone()
            },
        ),
        (
            "topk50+topp0.9",
            Sampling::TopKThenTopP {
                k: 50,
                p: 0.9,
                temperature: t,
            },
            SamplingParams {
                top_k: 50,
                top_p: 0.9,
                ..sampled
            },
        ),
    ]
}

fn env_ms(name: &str, default: u64) -> Duration {
    Duration::from_millis(
        std::env::var(name)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(default),
    )
}

/// Times `iters` calls of `step`, resetting `states` (untimed) every
/// [`RESET_EVERY`] steps.
fn timed(iters: u64, states: &mut [RowState], mut step: impl FnMut(&mut [RowState])) -> Duration {
    let mut total = Duration::ZERO;
    for i in 0..iters {
        if i % RESET_EVERY == 0 {
            states.iter_mut().for_each(|s| *s = RowState::default());
        }
        let t0 = Instant::now();
        step(states);
        total += t0.elapsed();
    }
    total
}

fn main() {
    let since = SystemTime::now();
    let dir = criterion_dir();
    let mut c = Criterion::default()
        .warm_up_time(env_ms("WGSAMPLE_PEERS_WARMUP_MS", 1000))
        .measurement_time(env_ms("WGSAMPLE_PEERS_MEASURE_MS", 3000))
        .sample_size(30)
        .nresamples(10_000)
        .without_plots()
        .output_directory(&dir)
        .configure_from_args();
    let engine = std::env::var("WGSAMPLE_PEERS_ENGINE").map_or(true, |v| v != "0");

    // 1. CPU, one row: candle's LogitsProcessor vs CpuSampler on one thread.
    let logits = normal_logits(V, 3.0, 1);
    let tensor = Tensor::from_slice(&logits, V, &Device::Cpu).expect("tensor");
    let cpu_group = format!("peers_cpu_v{V}");
    {
        let mut g = c.benchmark_group(&cpu_group);
        for (name, sampling, p) in cases() {
            let mut lp = LogitsProcessor::from_sampling(42, sampling);
            g.bench_function(BenchmarkId::new("candle", name), |b| {
                b.iter(|| black_box(lp.sample(&tensor).expect("candle sample")))
            });
            let params = vec![p.clone()];
            let mut states = vec![RowState::default()];
            // `wgsample`: the token only, what candle returns; `wgsample+logprob`:
            // also the token's log-probability (a log-sum-exp pass over the row).
            for (id, logprobs) in [("wgsample", false), ("wgsample+logprob", true)] {
                let mut cpu = CpuSampler::with_threads(1).with_logprobs(logprobs);
                g.bench_function(BenchmarkId::new(id, name), |b| {
                    b.iter_custom(|iters| {
                        timed(iters, &mut states, |s| {
                            black_box(cpu.sample(Logits::F32(&logits), V, &params, s).unwrap());
                        })
                    })
                });
            }
        }
        g.finish();
    }

    // 1b. Where a greedy row's time goes (the argmax comparison): the
    //     kernels of wgsample's greedy path one by one, beside candle's bare
    //     `argmax` on the same tensor.
    let parts_group = format!("peers_greedy_parts_v{V}");
    let argmax_at = {
        let (m, _) = wgsample::probe::max_and_check(&logits);
        (m, wgsample::probe::first_index_of(&logits, m).unwrap_or(0))
    };
    {
        let mut g = c.benchmark_group(&parts_group);
        g.bench_function("max_and_check", |b| {
            b.iter(|| black_box(wgsample::probe::max_and_check(black_box(&logits))))
        });
        g.bench_function("first_index_of", |b| {
            b.iter(|| {
                black_box(wgsample::probe::first_index_of(
                    black_box(&logits),
                    argmax_at.0,
                ))
            })
        });
        g.bench_function("sum_exp", |b| {
            b.iter(|| black_box(wgsample::probe::sum_exp(black_box(&logits), argmax_at.0)))
        });
        g.bench_function("candle_argmax", |b| {
            b.iter(|| {
                black_box(
                    tensor
                        .argmax(candle_core::D::Minus1)
                        .and_then(|t| t.to_scalar::<u32>())
                        .expect("argmax"),
                )
            })
        });
        g.finish();
    }

    // 2. The engine path: read the logits back and sample on the host, or
    //    sample on the device and read back B results.
    let ctx = if engine {
        match open_device() {
            Ok(ctx) => Some(ctx),
            Err(e) => {
                eprintln!("peers bench: no GPU adapter, engine path skipped: {e}");
                None
            }
        }
    } else {
        None
    };
    let engine_batches = [1usize, 64];
    let strat = "topk50+topp0.9";
    if let Some(ctx) = &ctx {
        eprintln!("peers bench: adapter {}", ctx.describe());
        let (_, sampling, p) = cases().pop().expect("top-k then top-p case");
        for &b in &engine_batches {
            let x = normal_logits(b * V, 3.0, 2);
            let bytes = (b * V * 4) as u64;
            let logits_buf = ctx
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("peers logits"),
                    contents: bytemuck::cast_slice(&x),
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                });
            let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("peers readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            // Copies the logits to the host and runs `f` on the mapped f32s.
            let readback = |f: &mut dyn FnMut(&[f32])| {
                let mut enc = ctx.device.create_command_encoder(&Default::default());
                enc.copy_buffer_to_buffer(&logits_buf, 0, &staging, 0, bytes);
                ctx.queue.submit([enc.finish()]);
                staging
                    .slice(..)
                    .map_async(wgpu::MapMode::Read, |r| r.expect("map"));
                ctx.device
                    .poll(wgpu::PollType::wait_indefinitely())
                    .expect("poll");
                {
                    let view = staging.slice(..).get_mapped_range().expect("mapped range");
                    f(bytemuck::cast_slice(&view));
                }
                staging.unmap();
            };
            let params = vec![p.clone(); b];
            let mut g = c.benchmark_group(format!("peers_engine_b{b}_v{V}"));
            g.sample_size(if b > 1 { 10 } else { 30 });

            let mut cpu = CpuSampler::new();
            let mut states = vec![RowState::default(); b];
            g.bench_function(BenchmarkId::new("readback+cpu", strat), |bch| {
                bch.iter_custom(|iters| {
                    timed(iters, &mut states, |s| {
                        readback(&mut |host| {
                            black_box(cpu.sample(Logits::F32(host), V, &params, s).unwrap());
                        })
                    })
                })
            });

            let mut lps: Vec<LogitsProcessor> = (0..b)
                .map(|r| LogitsProcessor::from_sampling(42 + r as u64, sampling.clone()))
                .collect();
            g.bench_function(BenchmarkId::new("readback+candle", strat), |bch| {
                bch.iter(|| {
                    readback(&mut |host| {
                        for (r, lp) in lps.iter_mut().enumerate() {
                            let row =
                                Tensor::from_slice(&host[r * V..(r + 1) * V], V, &Device::Cpu)
                                    .expect("tensor");
                            black_box(lp.sample(&row).expect("candle sample"));
                        }
                    })
                })
            });

            let mut gpu =
                GpuSampler::new(ctx, SamplerConfig::new(b as u32, V as u32)).expect("GPU sampler");
            for r in 0..b {
                gpu.set_params(r, &p).unwrap();
            }
            g.bench_function(BenchmarkId::new("wgsample", strat), |bch| {
                bch.iter(|| {
                    black_box(
                        gpu.sample(LogitsView::f32(&logits_buf), b as u32)
                            .expect("GPU sample"),
                    )
                })
            });
            g.finish();
        }
    }
    c.final_summary();

    // Medians and ratios from this run's estimates.
    let med = |group: &str, func: &str, value: &str| {
        criterion_median_us(&dir, group, func, Some(value), since)
    };
    let fmt = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1}"));
    let mut ratios = Vec::new();
    println!("== wgsample peers: median µs per call (criterion, one run) ==");
    println!("# cpu: one row, V = {V}, candle LogitsProcessor vs wgsample CpuSampler (1 thread)");
    println!(
        "# `+logprob` cases: wgsample also returns the token's log-probability (candle does not)"
    );
    println!(
        "{:<40} {:<16} {:>12} {:>12}",
        "case", "peer", "peer_us", "wgsample_us"
    );
    for (name, _, _) in cases() {
        let peer = med(&cpu_group, "candle", name);
        for (id, suffix) in [("wgsample", ""), ("wgsample+logprob", "+logprob")] {
            let ours = med(&cpu_group, id, name);
            let case = format!("cpu_v{V}_{name}{suffix}");
            println!(
                "{case:<40} {:<16} {:>12} {:>12}",
                "candle",
                fmt(peer),
                fmt(ours)
            );
            ratios.push((case, "candle", peer, ours));
        }
    }
    println!(
        "# greedy anatomy, one row (argmax at index {}): wgsample greedy = max_and_check + \
         first_index_of (+ sum_exp for the logprob)",
        argmax_at.1
    );
    for part in [
        "max_and_check",
        "first_index_of",
        "sum_exp",
        "candle_argmax",
    ] {
        let t = criterion_median_us(&dir, &parts_group, part, None, since);
        println!("{:<40} {:<16} {:>12}", format!("part_{part}"), "-", fmt(t));
    }
    if let Some(ctx) = &ctx {
        println!(
            "# engine: adapter {}; B rows of V = {V}, {strat} at T {T}; host side all {} cores",
            ctx.describe(),
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        for &b in &engine_batches {
            let group = format!("peers_engine_b{b}_v{V}");
            let ours = med(&group, "wgsample", strat);
            for peer in ["readback+cpu", "readback+candle"] {
                let theirs = med(&group, peer, strat);
                let case = format!("engine_b{b}_v{V}_{strat}");
                println!(
                    "{case:<40} {peer:<16} {:>12} {:>12}",
                    fmt(theirs),
                    fmt(ours)
                );
                ratios.push((case, peer, theirs, ours));
            }
        }
    }
    println!("== end ==");
    for (case, peer, theirs, ours) in ratios {
        match (theirs, ours) {
            (Some(t), Some(o)) if o > 0.0 => {
                println!("RATIO {case} {peer}/wgsample = {:.2}", t / o)
            }
            _ => println!("RATIO {case} {peer}/wgsample = n/a"),
        }
    }
}
