//! The web page example: synthetic logits sampled with one strategy for a
//! few steps on the GPU (and, for comparison, on the CPU in the same
//! module), with the tokens and the time of every step.

use wgsample::gpu::{GpuContext, GpuSampler, SamplerConfig};
use wgsample::{CpuSampler, Logits, RowState, SamplingParams};

use crate::data;
use crate::now_ms;

/// The strategies the page offers, by name, with their parameters.
pub fn strategies() -> Vec<(&'static str, SamplingParams)> {
    let p = SamplingParams::default;
    vec![
        ("greedy", SamplingParams::greedy()),
        (
            "temperature 0.7",
            SamplingParams {
                temperature: 0.7,
                ..p()
            },
        ),
        ("top-k 40", SamplingParams { top_k: 40, ..p() }),
        ("top-p 0.9", SamplingParams { top_p: 0.9, ..p() }),
        ("min-p 0.1", SamplingParams { min_p: 0.1, ..p() }),
        (
            "penalties: repetition 1.3, presence 0.5, frequency 0.5",
            SamplingParams {
                repetition_penalty: 1.3,
                presence_penalty: 0.5,
                frequency_penalty: 0.5,
                ..p()
            },
        ),
        (
            "top-k 50 + top-p 0.9 + min-p 0.05, temperature 0.8",
            SamplingParams {
                top_k: 50,
                top_p: 0.9,
                min_p: 0.05,
                temperature: 0.8,
                ..p()
            },
        ),
    ]
}

/// What one demo run did.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoRun {
    /// `tokens[step][row]` (`u32::MAX`: no token).
    pub tokens: Vec<Vec<u32>>,
    /// Milliseconds of each GPU step (upload, passes, read-back of the
    /// row results; the first includes pipeline compilation).
    pub gpu_ms: Vec<f64>,
    /// Milliseconds of each CPU step (one thread in a browser).
    pub cpu_ms: Vec<f64>,
    /// Whether every GPU token equals the CPU's.
    pub agree: bool,
}

/// Samples `steps` steps of the same `[batch, vocab]` synthetic logits
/// (row `r` seeded with `seed + r`) with strategy `index`, on the GPU and
/// on the CPU. The state (penalties, step counter) carries from step to
/// step, so the tokens change even though the logits do not. `sampler`
/// is reused when its vocabulary and batch fit.
pub async fn run(
    ctx: &GpuContext,
    sampler: &mut Option<GpuSampler>,
    index: usize,
    vocab: u32,
    batch: u32,
    steps: u32,
    seed: u32,
) -> Result<DemoRun, String> {
    let all = strategies();
    let (_, base) = all
        .get(index)
        .ok_or_else(|| format!("no strategy {index} (there are {})", all.len()))?;
    if vocab == 0 || batch == 0 || steps == 0 {
        return Err("vocab, batch and steps must be at least 1".into());
    }
    let v = vocab as usize;
    let b = batch as usize;
    let fits = sampler
        .as_ref()
        .is_some_and(|s| s.config().vocab == vocab && s.config().max_batch >= batch);
    if !fits {
        *sampler = None;
        *sampler = Some(
            GpuSampler::new(ctx, SamplerConfig::new(batch, vocab)).map_err(|e| e.to_string())?,
        );
    }
    let gpu = sampler.as_mut().expect("set above");
    let params: Vec<SamplingParams> = (0..b)
        .map(|r| SamplingParams {
            seed: u64::from(seed) + r as u64,
            ..base.clone()
        })
        .collect();
    let x = data::logits(u64::from(seed), b, v, 2.0, 8);
    // Each row's prompt: its three strongest tokens (for the penalties).
    let mut states: Vec<RowState> = x
        .chunks_exact(v)
        .map(|row| {
            let mut ids: Vec<u32> = (0..vocab).collect();
            ids.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]));
            RowState::new(&ids[..3.min(v)])
        })
        .collect();
    for (r, (q, s)) in params.iter().zip(&states).enumerate() {
        gpu.set_params(r, q).map_err(|e| e.to_string())?;
        gpu.set_state(r, s).map_err(|e| e.to_string())?;
    }
    let mut cpu = CpuSampler::new();
    let mut run = DemoRun {
        tokens: Vec::new(),
        gpu_ms: Vec::new(),
        cpu_ms: Vec::new(),
        agree: true,
    };
    for _ in 0..steps {
        let t0 = now_ms();
        let g = gpu
            .sample_host_async(Logits::F32(&x), batch)
            .await
            .map_err(|e| e.to_string())?;
        let t1 = now_ms();
        let c = cpu
            .sample(Logits::F32(&x), v, &params, &mut states)
            .map_err(|e| e.to_string())?;
        let t2 = now_ms();
        run.gpu_ms.push(t1 - t0);
        run.cpu_ms.push(t2 - t1);
        run.agree &= g.iter().zip(&c).all(|(g, c)| g.token == c.token);
        run.tokens.push(g.iter().map(|o| o.token).collect());
    }
    Ok(run)
}
