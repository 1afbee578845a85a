use wgsample::gpu::*;
use wgsample::*;
fn main() {
    // Without XDG_RUNTIME_DIR, re-run once with a private one so that
    // Mesa's Vulkan layer prints no "error: XDG_RUNTIME_DIR" line.
    if let Some(code) = wgsample::gpu::device::rerun_with_runtime_dir() {
        std::process::exit(code);
    }
    let ctx = open_device().expect("device");
    println!("{}", ctx.describe());
    let v = 5000u32;
    let b = 3u32;
    let mut s = GpuSampler::new(&ctx, SamplerConfig::new(8, v)).unwrap();
    let logits: Vec<f32> = (0..(b * v))
        .map(|i| (((i as u64 * 2654435761) % 1000) as f32) * 0.01)
        .collect();
    let ps = [
        SamplingParams::greedy(),
        SamplingParams {
            seed: 7,
            ..Default::default()
        },
        SamplingParams {
            seed: 9,
            top_k: 20,
            top_p: 0.8,
            temperature: 0.7,
            ..Default::default()
        },
    ];
    for (r, p) in ps.iter().enumerate() {
        s.set_params(r, p).unwrap();
    }
    let mut cpu = CpuSampler::new();
    let mut st = vec![RowState::default(); 3];
    for step in 0..3 {
        let g = s.sample_host(Logits::F32(&logits), b).unwrap();
        let c = cpu
            .sample(Logits::F32(&logits), v as usize, &ps, &mut st)
            .unwrap();
        println!("step {step}\n gpu {g:?}\n cpu {c:?}");
    }
}
