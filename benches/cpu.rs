//! CPU backend speed, one row at the reference size: V = 128256,
//! logits 3·N(0,1); greedy, top-k 50 at T 0.8, top-p 0.9 at T 0.8, plain
//! temperature, and a batch of 64 rows on all cores.
mod common;
use common::normal_logits;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use wgsample::{CpuSampler, Logits, RowState, SamplingParams};

fn bench(c: &mut Criterion) {
    const V: usize = 128_256;
    let logits = normal_logits(V, 3.0, 1);
    let cases: Vec<(&str, SamplingParams)> = vec![
        ("greedy", SamplingParams::greedy()),
        (
            "top_k50_t0.8",
            SamplingParams {
                temperature: 0.8,
                top_k: 50,
                ..Default::default()
            },
        ),
        (
            "top_p0.9_t0.8",
            SamplingParams {
                temperature: 0.8,
                top_p: 0.9,
                ..Default::default()
            },
        ),
        ("temperature_1.0", SamplingParams::default()),
    ];
    let mut group = c.benchmark_group("cpu_b1_v128256");
    for ((name, p), logprobs) in cases.iter().flat_map(|c| [(c, true), (c, false)]) {
        let mut sampler = CpuSampler::with_threads(1).with_logprobs(logprobs);
        let params = vec![p.clone()];
        let mut states = vec![RowState::default()];
        let label = if logprobs {
            name.to_string()
        } else {
            format!("{name}_no_logprobs")
        };
        group.bench_function(&label, |b| {
            b.iter(|| {
                states[0].step = 0;
                black_box(
                    sampler
                        .sample(Logits::F32(&logits), V, &params, &mut states)
                        .unwrap(),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
