//! GPU path vs CPU path, one full sampling step each, over batch {1, 64} x
//! vocab {32000, 128256} x {temperature 1, top-k 50 at T 0.8, top-p 0.9 at
//! T 0.8}, logits 3·N(0,1).
//!
//! GPU time is the wall time of a whole step: record the passes, submit,
//! read back the B row results (the logits stay in a GPU buffer, as in an
//! engine). CPU time is `CpuSampler::sample` on the same logits in host
//! memory, all cores. On lavapipe (Mesa's software Vulkan) the "GPU" runs on
//! the CPU: those figures show the work done, not GPU speed.
mod common;
use common::normal_logits;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use wgpu::util::DeviceExt;
use wgsample::gpu::{GpuSampler, LogitsView, SamplerConfig, open_device};
use wgsample::{CpuSampler, Logits, RowState, SamplingParams};

fn strategies() -> Vec<(&'static str, SamplingParams)> {
    vec![
        ("temperature", SamplingParams::default()),
        (
            "top_k50",
            SamplingParams {
                temperature: 0.8,
                top_k: 50,
                ..Default::default()
            },
        ),
        (
            "top_p0.9",
            SamplingParams {
                temperature: 0.8,
                top_p: 0.9,
                ..Default::default()
            },
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let ctx = open_device().expect("the GPU bench needs a wgpu adapter");
    eprintln!("GPU adapter: {}", ctx.describe());
    for &b in &[1usize, 64] {
        for &v in &[32000usize, 128256] {
            let x = normal_logits(b * v, 3.0, 42);
            let buf = ctx
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("bench logits"),
                    contents: bytemuck::cast_slice(&x),
                    usage: wgpu::BufferUsages::STORAGE,
                });
            let mut gpu = GpuSampler::new(&ctx, SamplerConfig::new(b as u32, v as u32)).unwrap();
            let mut cpu = CpuSampler::new();
            let mut group = c.benchmark_group(format!("step_b{b}_v{v}"));
            group.sample_size(10);
            for (name, p) in strategies() {
                for r in 0..b {
                    gpu.set_params(r, &p).unwrap();
                }
                let params = vec![p.clone(); b];
                let mut states = vec![RowState::default(); b];
                group.bench_function(BenchmarkId::new("gpu", name), |bch| {
                    bch.iter(|| black_box(gpu.sample(LogitsView::f32(&buf), b as u32).unwrap()))
                });
                group.bench_function(BenchmarkId::new("cpu", name), |bch| {
                    bch.iter(|| {
                        black_box(
                            cpu.sample(Logits::F32(&x), v, &params, &mut states)
                                .unwrap(),
                        )
                    })
                });
            }
            group.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
