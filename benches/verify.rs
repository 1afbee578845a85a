//! Speculative-decoding verification, GPU path vs CPU path: one
//! verification of `B` rows with `k = 4` draft tokens over `V = 128256`
//! (`WGSAMPLE_BENCH_BATCHES`, default `1,64`; `WGSAMPLE_BENCH_VOCABS`,
//! default `128256`), each a criterion median, and a plain table at the
//! end.
//!
//! Paths:
//! - `gpu_wall`: `GpuSampler::record_verify` on target logits (and draft
//!   probabilities) already in GPU buffers, submit, wait, read back the
//!   rows' results (`submit_and_read_verify`): what an engine pays.
//! - `cpu_1t`, `cpu_all`: `CpuSampler::verify` on the same values in host
//!   memory, one thread and all cores.
//!
//! Cases: `onehot` (no draft probabilities, as for n-gram drafters) and
//! `q` (dense `[B, k, V]` draft probabilities), both sampling at T 0.8
//! with top-p 0.9. The target is f32, or bf16 where `B (k + 1) V` f32
//! values exceed the device's `max_storage_buffer_binding_size` (batch 64
//! at V = 128256 on lavapipe's 128 MiB); the `q` case is skipped, saying
//! so, where q (always f32) exceeds it. Target logits are `3·N(0,1)`; the drafts are the
//! target's argmax at odd positions and a fixed token elsewhere, so rows
//! accept a mix of lengths. The row state is reset before every call so
//! every step verifies the same thing. `match` counts rows whose GPU
//! tokens equal the CPU tokens in a check call before timing.
//!
//! `WGSAMPLE_BENCH_PATHS` (default all) picks paths; the table also gives
//! the wall time of the one untimed check call of each path (`once`), the
//! only GPU figure where the criterion run is left out (batch 64 on
//! lavapipe, about a minute a call).
//!
//! On lavapipe (Mesa's software Vulkan) the "GPU" is the CPU: the figures
//! show that the path runs and agrees, not GPU speed.
mod common;
use common::normal_logits;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use wgpu::util::DeviceExt;
use wgsample::gpu::{DType, GpuSampler, LogitsView, SamplerConfig, open_device};
use wgsample::{CpuSampler, Drafts, Logits, RowState, SamplingParams};

const K: usize = 4;

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(s) if !s.trim().is_empty() => s
            .split(',')
            .map(|x| x.trim().parse().expect("a number"))
            .collect(),
        _ => default.to_vec(),
    }
}

/// `[B, k, V]` draft probabilities: a softmax of `N(0,1)` rows.
fn draft_probs(b: usize, v: usize, seed: u64) -> Vec<f32> {
    let z = normal_logits(b * K * v, 1.0, seed);
    let mut q = Vec::with_capacity(z.len());
    for row in z.chunks(v) {
        let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f64> = row.iter().map(|&x| ((x - m) as f64).exp()).collect();
        let s: f64 = e.iter().sum();
        q.extend(e.iter().map(|&x| (x / s) as f32));
    }
    q
}

fn main() {
    let batches = env_list("WGSAMPLE_BENCH_BATCHES", &[1, 64]);
    let vocabs = env_list("WGSAMPLE_BENCH_VOCABS", &[128256]);
    let ctx = open_device().ok();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let adapter = ctx
        .as_ref()
        .map_or("none (GPU path skipped)".into(), |c| c.describe());
    eprintln!("verify bench: adapter {adapter}; batches {batches:?}, vocabs {vocabs:?}, k {K}");
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1000))
        .without_plots()
        .configure_from_args();
    let paths: Vec<String> = match std::env::var("WGSAMPLE_BENCH_PATHS") {
        Ok(s) if !s.trim().is_empty() => s.split(',').map(|x| x.trim().to_string()).collect(),
        _ => vec!["gpu_wall".into(), "cpu_1t".into(), "cpu_all".into()],
    };
    let has = |p: &str| paths.iter().any(|x| x == p);
    let max_binding = ctx.as_ref().map_or(128 << 20, |c| {
        c.device.limits().max_storage_buffer_binding_size
    });
    let mut table = Vec::new();
    for &b in &batches {
        for &v in &vocabs {
            let mut x = normal_logits(b * (K + 1) * v, 3.0, (b * 7 + v) as u64);
            let bf16 = (x.len() * 4) as u64 > max_binding;
            let x16: Vec<half::bf16> = if bf16 {
                x.iter().map(|&y| half::bf16::from_f32(y)).collect()
            } else {
                Vec::new()
            };
            if bf16 {
                // The CPU path sees exactly the values the GPU reads.
                x = x16.iter().map(|y| y.to_f32()).collect();
            }
            let logits = || {
                if bf16 {
                    Logits::Bf16(&x16)
                } else {
                    Logits::F32(&x)
                }
            };
            let dtype = if bf16 { "bf16" } else { "f32" };
            let bits16: Vec<u16> = x16.iter().map(|y| y.to_bits()).collect();
            let q_fits = ((b * K * v * 4) as u64) <= max_binding;
            let q = draft_probs(b, v, 99);
            let mut tokens = Vec::with_capacity(b * K);
            for r in 0..b {
                for j in 0..K {
                    let row = &x[(r * (K + 1) + j) * v..][..v];
                    let arg = (0..v).max_by(|&i, &l| row[i].total_cmp(&row[l])).unwrap();
                    tokens.push(if j % 2 == 0 { arg as u32 } else { 7 });
                }
            }
            let ps: Vec<SamplingParams> = (0..b)
                .map(|r| SamplingParams {
                    temperature: 0.8,
                    top_p: 0.9,
                    seed: 500 + r as u64,
                    ..Default::default()
                })
                .collect();
            let fresh = vec![RowState::default(); b];
            let mut group = c.benchmark_group(format!("verify_b{b}_v{v}"));
            group.sample_size(10).sampling_mode(SamplingMode::Flat);
            for case in ["onehot", "q"] {
                if case == "q" && !q_fits {
                    eprintln!(
                        "verify bench: b{b} v{v}: q ({} MiB of f32) exceeds the device's \
                         max_storage_buffer_binding_size; q case skipped",
                        (b * K * v * 4) >> 20
                    );
                    table.push((
                        b,
                        v,
                        case,
                        dtype,
                        "skipped (q > binding limit)".to_string(),
                        0,
                        None,
                        Duration::ZERO,
                    ));
                    continue;
                }
                let drafts = Drafts {
                    k: K,
                    tokens: &tokens,
                    probs: (case == "q").then_some(&q[..]),
                };
                let mut cpu1 = CpuSampler::with_threads(1);
                let mut cpun = CpuSampler::with_threads(threads);
                let mut states = fresh.clone();
                let t0 = Instant::now();
                let want = cpu1.verify(logits(), v, &drafts, &ps, &mut states).unwrap();
                let cpu_once = t0.elapsed();
                let mut gpu_once = None;
                let mut matched = "-".to_string();
                if let Some(ctx) = ctx.as_ref() {
                    let tbuf = ctx
                        .device
                        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                            label: Some("bench target"),
                            contents: if bf16 {
                                bytemuck::cast_slice(&bits16)
                            } else {
                                bytemuck::cast_slice(&x)
                            },
                            usage: wgpu::BufferUsages::STORAGE,
                        });
                    let tview = LogitsView {
                        buffer: &tbuf,
                        offset: 0,
                        dtype: if bf16 { DType::Bf16 } else { DType::F32 },
                    };
                    let qbuf = ctx
                        .device
                        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                            label: Some("bench q"),
                            contents: bytemuck::cast_slice(&q),
                            usage: wgpu::BufferUsages::STORAGE,
                        });
                    let cfg = SamplerConfig::new((b * (K + 1)) as u32, v as u32);
                    let mut s = GpuSampler::new(ctx, cfg).unwrap();
                    for (r, p) in ps.iter().enumerate() {
                        s.set_params(r, p).unwrap();
                    }
                    let step = |s: &mut GpuSampler| {
                        for (r, f) in fresh.iter().enumerate() {
                            s.set_state(r, f).unwrap();
                        }
                        let mut enc = ctx.device.create_command_encoder(&Default::default());
                        let qv = (case == "q").then(|| LogitsView::f32(&qbuf));
                        s.record_verify(&mut enc, tview, b as u32, &tokens, qv)
                            .unwrap();
                        s.submit_and_read_verify(enc).unwrap()
                    };
                    let t0 = Instant::now();
                    let got = step(&mut s);
                    gpu_once = Some(t0.elapsed());
                    let n = got
                        .iter()
                        .zip(&want)
                        .filter(|(g, w)| g.tokens == w.tokens)
                        .count();
                    matched = format!("{n}/{b}");
                    if has("gpu_wall") {
                        group.bench_function(BenchmarkId::new("gpu_wall", case), |bch| {
                            bch.iter_custom(|iters| {
                                let mut total = Duration::ZERO;
                                for _ in 0..iters {
                                    let t0 = Instant::now();
                                    black_box(step(&mut s));
                                    total += t0.elapsed();
                                }
                                total
                            })
                        });
                    }
                }
                for (path, cpu) in [("cpu_1t", &mut cpu1), ("cpu_all", &mut cpun)] {
                    if !has(path) {
                        continue;
                    }
                    group.bench_function(BenchmarkId::new(path, case), |bch| {
                        bch.iter_custom(|iters| {
                            let mut total = Duration::ZERO;
                            for _ in 0..iters {
                                let mut st = fresh.clone();
                                let t0 = Instant::now();
                                black_box(cpu.verify(logits(), v, &drafts, &ps, &mut st).unwrap());
                                total += t0.elapsed();
                            }
                            total
                        })
                    });
                }
                let accepted: u32 = want.iter().map(|o| o.accepted).sum();
                table.push((b, v, case, dtype, matched, accepted, gpu_once, cpu_once));
            }
            group.finish();
        }
    }
    c.final_summary();
    println!(
        "== wgsample verify (k = {K}): rows whose GPU tokens equal the CPU's; drafts accepted =="
    );
    println!(
        "# adapter: {adapter}; cpu_all: {threads} threads; medians: target/criterion/verify_b*_v*/<path>/<case>"
    );
    for (b, v, case, dtype, matched, acc, g, c1) in table {
        let g = g.map_or("-".to_string(), |d| {
            format!("{:.1} ms", d.as_secs_f64() * 1e3)
        });
        println!(
            "{b:<6} {v:<7} {case:<7} {dtype:<5} match {matched:<7} accepted {acc}/{}  once: gpu {g}, cpu_1t {:.2} ms",
            b * K,
            c1.as_secs_f64() * 1e3
        );
    }
    println!("== end ==");
}
