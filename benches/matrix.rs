//! The benchmark matrix: GPU path vs CPU path over batch x vocab x strategy,
//! every figure a criterion median, and a plain table at the end that a
//! script can read (BENCHMARKS.md, `scripts/gpu_bench.sh`).
//!
//! Paths (columns of the table), each one full sampling step of `B` rows:
//!
//! - `gpu_ts`: GPU time of the sampler's passes from timestamp queries
//!   (`Features::TIMESTAMP_QUERY`): `CommandEncoder::write_timestamp` right
//!   before and after [`GpuSampler::record`] when the adapter also has
//!   `TIMESTAMP_QUERY_INSIDE_ENCODERS`, else the end of an empty compute pass
//!   before and the beginning of an empty one after (the sampler records its
//!   own pass, so its pass descriptor cannot carry the writes). `-` when the
//!   adapter has no timestamps.
//!   Where the adapter also has `TIMESTAMP_QUERY_INSIDE_PASSES`, a second
//!   table gives each pass's own GPU time (`GpuSampler::record_timed`,
//!   median of 21 steps).
//! - `gpu_wall`: wall time of [`GpuSampler::sample`]: record, submit, wait,
//!   read back the `B` row results (12 bytes a row). The logits stay in a GPU
//!   buffer, as in an engine.
//! - `cpu_1t`, `cpu_all`: [`CpuSampler`] on the same logits in host memory,
//!   one thread and all cores (`available_parallelism`).
//!
//! Strategies: `greedy`; `temp0.8` (plain sampling at T 0.8); `topk50`,
//! `topp0.9`, `topk50+topp0.9` (all at T 0.8); `pen+topp0.9` (repetition
//! 1.1, presence 0.5, frequency 0.5 over a 64-token prompt and the tokens
//! generated so far, then top-p 0.9 at T 0.8); `toplp20` (plain sampling at
//! T 0.8 with the top 20 logprobs and the rank read back: on the GPU the
//! `submit_and_read_with_top_logprobs` read, 176 bytes a row; on the CPU
//! `sample_with_top_logprobs`). Logits are `3·N(0,1)`,
//! deterministic. The per-row state advances every step as in a decode loop
//! (it is reset, untimed, every 256 steps so penalty lists stay bounded).
//!
//! Selection (environment): `WGSAMPLE_BENCH_BATCHES` (default `1,8,64,256`
//! on a hardware adapter, `1,8` on a software one such as lavapipe, where
//! one step at batch 64 takes seconds), `WGSAMPLE_BENCH_VOCABS`
//! (`32000,128256,262144`; software: `32000,128256`),
//! `WGSAMPLE_BENCH_STRATEGIES` (all), `WGSAMPLE_BENCH_PATHS` (all),
//! `WGSAMPLE_BENCH_WARMUP_MS` (300), `WGSAMPLE_BENCH_MEASURE_MS` (1000),
//! `WGSAMPLE_BENCH_TABLE` (also write the table to this file). Criterion's
//! own arguments work too (`cargo bench --bench matrix -- topk50`).
//!
//! On lavapipe (Mesa's software Vulkan) the "GPU" is the CPU: its figures
//! show the work the shaders do and that they run, not GPU speed.
mod common;
use common::normal_logits;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use wgpu::util::DeviceExt;
use wgsample::gpu::{GpuContext, GpuSampler, LogitsView, SamplerConfig};
use wgsample::{CpuSampler, Logits, RowState, SamplingParams};

const PATHS: [&str; 4] = ["gpu_ts", "gpu_wall", "cpu_1t", "cpu_all"];
const STRATEGIES: [&str; 7] = [
    "greedy",
    "temp0.8",
    "topk50",
    "topp0.9",
    "topk50+topp0.9",
    "pen+topp0.9",
    "toplp20",
];
/// Steps between (untimed) resets of the per-row state.
const RESET_EVERY: u64 = 256;

fn params(strategy: &str, row: usize) -> SamplingParams {
    let sampled = SamplingParams {
        temperature: 0.8,
        seed: 1000 + row as u64,
        ..Default::default()
    };
    match strategy {
        "greedy" => SamplingParams::greedy(),
        "temp0.8" => sampled,
        "topk50" => SamplingParams {
            top_k: 50,
            ..sampled
        },
        "topp0.9" => SamplingParams {
            top_p: 0.9,
            ..sampled
        },
        "topk50+topp0.9" => SamplingParams {
            top_k: 50,
            top_p: 0.9,
            ..sampled
        },
        "pen+topp0.9" => SamplingParams {
            top_p: 0.9,
            repetition_penalty: 1.1,
            presence_penalty: 0.5,
            frequency_penalty: 0.5,
            ..sampled
        },
        "toplp20" => SamplingParams {
            top_logprobs: 20,
            ..sampled
        },
        other => panic!("unknown strategy {other:?}; known: {STRATEGIES:?}"),
    }
}

/// The state a row starts from: a 64-token prompt for the penalty
/// strategy (spread over the vocabulary), empty otherwise.
fn fresh_state(strategy: &str, row: usize, vocab: usize) -> RowState {
    if strategy.starts_with("pen") {
        let prompt: Vec<u32> = (0..64)
            .map(|i| ((i * 7919 + row * 131) % vocab) as u32)
            .collect();
        RowState::new(&prompt)
    } else {
        RowState::default()
    }
}

fn env_list<T: std::str::FromStr + Clone>(name: &str, default: &[T]) -> Vec<T> {
    match std::env::var(name) {
        Ok(s) if !s.trim().is_empty() => s
            .split(',')
            .map(|x| {
                x.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: cannot parse {x:?}"))
            })
            .collect(),
        _ => default.to_vec(),
    }
}

fn env_ms(name: &str, default: u64) -> Duration {
    Duration::from_millis(
        std::env::var(name)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(default),
    )
}

/// How GPU timestamps are taken on this device.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stamps {
    None,
    InsideEncoders,
    PassBoundaries,
}

impl Stamps {
    fn describe(self) -> &'static str {
        match self {
            Stamps::None => "none (adapter has no TIMESTAMP_QUERY)",
            Stamps::InsideEncoders => {
                "timestamp queries, CommandEncoder::write_timestamp around the passes"
            }
            Stamps::PassBoundaries => {
                "timestamp queries, empty compute passes' timestamp_writes around the passes"
            }
        }
    }
}

/// Opens a device like `wgsample::gpu::open_device` (hardware adapter
/// first, `WGPU_BACKEND` / `WGPU_ADAPTER_NAME` honoured) but also asks for
/// the timestamp features the adapter has.
fn open_timed_device() -> Option<(GpuContext, Stamps)> {
    pollster::block_on(async {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let name = std::env::var("WGPU_ADAPTER_NAME")
            .ok()
            .map(|s| s.to_lowercase());
        let mut adapters: Vec<wgpu::Adapter> = instance
            .enumerate_adapters(backends)
            .await
            .into_iter()
            .filter(|a| {
                a.get_downlevel_capabilities()
                    .flags
                    .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
                    && a.limits().max_compute_invocations_per_workgroup >= 256
                    && name
                        .as_ref()
                        .is_none_or(|n| a.get_info().name.to_lowercase().contains(n))
            })
            .collect();
        adapters.sort_by_key(|a| match a.get_info().device_type {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Other => 3,
            wgpu::DeviceType::Cpu => 4,
        });
        let adapter = adapters.into_iter().next()?;
        let want =
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
        // Inside passes too, where the adapter has it: per-pass times.
        let features = adapter.features() & (want | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgsample matrix bench"),
                required_features: features,
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .ok()?;
        device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
            eprintln!("matrix bench: wgpu error: {e}");
        }));
        let stamps = if features.contains(want) {
            Stamps::InsideEncoders
        } else if features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            Stamps::PassBoundaries
        } else {
            Stamps::None
        };
        Some((GpuContext::from_device(device, queue), stamps))
    })
}

/// Query set and buffers for one timestamped step.
struct Timer {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
    period_ns: f64,
    mode: Stamps,
}

impl Timer {
    fn new(ctx: &GpuContext, mode: Stamps) -> Timer {
        let d = &ctx.device;
        Timer {
            set: d.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("matrix timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolve: d.create_buffer(&wgpu::BufferDescriptor {
                label: Some("matrix resolve"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            read: d.create_buffer(&wgpu::BufferDescriptor {
                label: Some("matrix timestamps read"),
                size: 16,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            period_ns: f64::from(ctx.queue.get_timestamp_period()),
            mode,
        }
    }

    fn stamp(&self, enc: &mut wgpu::CommandEncoder, index: u32) {
        match self.mode {
            Stamps::InsideEncoders => enc.write_timestamp(&self.set, index),
            Stamps::PassBoundaries => {
                let (begin, end) = if index == 0 {
                    (None, Some(0))
                } else {
                    (Some(1), None)
                };
                drop(enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("matrix timestamp"),
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &self.set,
                        beginning_of_pass_write_index: begin,
                        end_of_pass_write_index: end,
                    }),
                }));
            }
            Stamps::None => unreachable!(),
        }
    }

    /// One sampling step with timestamps around the sampler's passes; the
    /// GPU time between them.
    fn step(
        &self,
        ctx: &GpuContext,
        gpu: &mut GpuSampler,
        logits: &wgpu::Buffer,
        b: u32,
    ) -> Duration {
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        self.stamp(&mut enc, 0);
        gpu.record(&mut enc, LogitsView::f32(logits), b)
            .expect("record");
        self.stamp(&mut enc, 1);
        enc.resolve_query_set(&self.set, 0..2, &self.resolve, 0);
        enc.copy_buffer_to_buffer(&self.resolve, 0, &self.read, 0, 16);
        ctx.queue.submit([enc.finish()]);
        self.read
            .slice(..)
            .map_async(wgpu::MapMode::Read, |r| r.expect("map"));
        ctx.device
            .poll(wgpu::PollType::wait_indefinitely())
            .expect("poll");
        let t: [u64; 2] = {
            let view = self
                .read
                .slice(..)
                .get_mapped_range()
                .expect("mapped range");
            *bytemuck::from_bytes(&view[..16])
        };
        self.read.unmap();
        Duration::from_nanos((t[1].saturating_sub(t[0]) as f64 * self.period_ns) as u64)
    }
}

/// Per-pass GPU times from `GpuSampler::record_timed` (devices with
/// `TIMESTAMP_QUERY_INSIDE_PASSES`): the median over `STEPS` steps of each
/// pass of the plan, in µs, labelled.
fn per_pass_us(
    ctx: &GpuContext,
    gpu: &mut GpuSampler,
    logits: &wgpu::Buffer,
    b: u32,
) -> Option<Vec<(String, f64)>> {
    const STEPS: usize = 21;
    let d = &ctx.device;
    let set = d.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("matrix per-pass timestamps"),
        ty: wgpu::QueryType::Timestamp,
        count: 8,
    });
    let resolve = d.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 64,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let read = d.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let period = f64::from(ctx.queue.get_timestamp_period());
    let mut per: Vec<Vec<f64>> = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..STEPS {
        let mut enc = d.create_command_encoder(&Default::default());
        let view = LogitsView::f32(logits);
        let plan = match gpu.record_timed(&mut enc, view, b, &set, 0) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("matrix bench: no per-pass times: {e}");
                return None;
            }
        };
        let n = plan.passes.len() as u32 + 1;
        enc.resolve_query_set(&set, 0..n, &resolve, 0);
        enc.copy_buffer_to_buffer(&resolve, 0, &read, 0, 64);
        ctx.queue.submit([enc.finish()]);
        read.slice(..)
            .map_async(wgpu::MapMode::Read, |r| r.expect("map"));
        d.poll(wgpu::PollType::wait_indefinitely()).expect("poll");
        let t: [u64; 8] =
            *bytemuck::from_bytes(&read.slice(..).get_mapped_range().expect("map")[..64]);
        read.unmap();
        labels = plan.passes.iter().map(|p| p.label.clone()).collect();
        per.resize(labels.len(), Vec::new());
        for i in 0..labels.len() {
            per[i].push(t[i + 1].saturating_sub(t[i]) as f64 * period / 1000.0);
        }
    }
    Some(
        labels
            .into_iter()
            .zip(per)
            .map(|(l, mut v)| {
                v.sort_by(f64::total_cmp);
                (l, v[v.len() / 2])
            })
            .collect(),
    )
}

/// Median (µs) from criterion's `estimates.json` of a bench run in this
/// process (older files are ignored).
fn criterion_median_us(
    dir: &Path,
    group: &str,
    func: &str,
    value: &str,
    since: SystemTime,
) -> Option<f64> {
    let file = dir
        .join(group)
        .join(func)
        .join(value)
        .join("new/estimates.json");
    let meta = std::fs::metadata(&file).ok()?;
    if meta.modified().ok()? < since {
        return None;
    }
    let text = std::fs::read_to_string(&file).ok()?;
    let at = text.find("\"median\"")?;
    let rest = &text[at..];
    let p = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    let num: String = rest[p..]
        .chars()
        .skip_while(|c| c.is_whitespace())
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        .collect();
    num.parse::<f64>().ok().map(|ns| ns / 1000.0)
}

/// Where criterion writes: `CRITERION_HOME`, else `CARGO_TARGET_DIR`'s
/// `criterion`, else this workspace's `target/criterion` when it exists
/// (built here), else `target/criterion` under the working directory (a
/// binary copied to another machine).
fn criterion_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(h);
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t).join("criterion");
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    if here.is_dir() {
        return here.join("criterion");
    }
    PathBuf::from("target/criterion")
}

fn fmt_us(x: Option<f64>) -> String {
    match x {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
        None => "-".into(),
    }
}

/// The plain table: one line per (batch, vocab, strategy), median µs per
/// path from this run's criterion estimates.
struct Table {
    adapter: String,
    stamps: &'static str,
    threads: usize,
    strategies: Vec<String>,
    dir: PathBuf,
    since: SystemTime,
}

impl Table {
    fn render(
        &self,
        cells: &[(usize, usize)],
        agree: &BTreeMap<(usize, usize, String), String>,
        plans: &BTreeMap<(usize, usize, String), (usize, usize)>,
    ) -> String {
        let mut out = String::new();
        out.push_str("== wgsample matrix: median µs per step (criterion, one run) ==\n");
        out.push_str(&format!("# adapter: {}\n", self.adapter));
        out.push_str(&format!("# gpu_ts: {}\n", self.stamps));
        out.push_str(&format!(
            "# cpu_all: {} threads; gpu_wall: record+submit+read back B rows; \
             match: rows whose GPU token equals the CPU token; dispatches / dense: the GPU \
             plan of the step (dispatches recorded, of which read whole rows)\n",
            self.threads
        ));
        out.push_str(&format!(
            "{:<6} {:<7} {:<15} {:>10} {:>10} {:>10} {:>10} {:>7} {:>10} {:>5}\n",
            "batch",
            "vocab",
            "strategy",
            "gpu_ts",
            "gpu_wall",
            "cpu_1t",
            "cpu_all",
            "match",
            "dispatches",
            "dense"
        ));
        for &(b, v) in cells {
            for strat in &self.strategies {
                let g = format!("matrix_b{b}_v{v}");
                let m = |p: &str| criterion_median_us(&self.dir, &g, p, strat, self.since);
                let plan = plans.get(&(b, v, strat.clone()));
                out.push_str(&format!(
                    "{:<6} {:<7} {:<15} {:>10} {:>10} {:>10} {:>10} {:>7} {:>10} {:>5}\n",
                    b,
                    v,
                    strat,
                    fmt_us(m("gpu_ts")),
                    fmt_us(m("gpu_wall")),
                    fmt_us(m("cpu_1t")),
                    fmt_us(m("cpu_all")),
                    agree
                        .get(&(b, v, strat.clone()))
                        .map_or("-", |s| s.as_str()),
                    plan.map_or("-".into(), |p| p.0.to_string()),
                    plan.map_or("-".into(), |p| p.1.to_string()),
                ));
            }
        }
        out.push_str("== end ==\n");
        out
    }

    /// Writes the table to `WGSAMPLE_BENCH_TABLE` when that is set.
    fn save(&self, text: &str) {
        if let Ok(path) = std::env::var("WGSAMPLE_BENCH_TABLE") {
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {path}: {e}"));
        }
    }
}

fn main() {
    let since = SystemTime::now();
    let dir = criterion_dir();
    let gpu = open_timed_device();
    let software = gpu.as_ref().is_none_or(|(c, _)| c.is_software());
    let (def_b, def_v): (&[usize], &[usize]) = if software {
        (&[1, 8], &[32000, 128256])
    } else {
        (&[1, 8, 64, 256], &[32000, 128256, 262144])
    };
    let batches: Vec<usize> = env_list("WGSAMPLE_BENCH_BATCHES", def_b);
    let vocabs: Vec<usize> = env_list("WGSAMPLE_BENCH_VOCABS", def_v);
    let strategies: Vec<String> =
        env_list("WGSAMPLE_BENCH_STRATEGIES", &STRATEGIES.map(String::from));
    let paths: Vec<String> = env_list("WGSAMPLE_BENCH_PATHS", &PATHS.map(String::from));
    for s in &strategies {
        let _ = params(s, 0);
    }
    for p in &paths {
        assert!(
            PATHS.contains(&p.as_str()),
            "unknown path {p:?}; known: {PATHS:?}"
        );
    }
    let warm = env_ms("WGSAMPLE_BENCH_WARMUP_MS", 300);
    let measure = env_ms("WGSAMPLE_BENCH_MEASURE_MS", 1000);
    let adapter = match &gpu {
        Some((c, _)) => c.describe(),
        None => "none (GPU paths skipped)".into(),
    };
    let stamps = gpu.as_ref().map_or(Stamps::None, |g| g.1);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "matrix bench: adapter {adapter}; gpu_ts: {}",
        stamps.describe()
    );
    eprintln!(
        "matrix bench: batches {batches:?} x vocabs {vocabs:?} x strategies {strategies:?}; \
         paths {paths:?}; warm-up {warm:?}, measurement {measure:?}; criterion dir {}",
        dir.display()
    );

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(warm)
        .measurement_time(measure)
        .nresamples(10_000)
        .without_plots()
        .output_directory(&dir)
        .configure_from_args();

    // (batch, vocab, strategy) -> path -> agreement "n/B" of GPU vs CPU tokens.
    let mut agree: BTreeMap<(usize, usize, String), String> = BTreeMap::new();
    let mut plans: BTreeMap<(usize, usize, String), (usize, usize)> = BTreeMap::new();
    let mut passes: BTreeMap<(usize, usize, String), Vec<(String, f64)>> = BTreeMap::new();
    let per_pass = gpu.as_ref().is_some_and(|(c, _)| {
        c.device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES)
    });
    let table = Table {
        adapter: adapter.clone(),
        stamps: stamps.describe(),
        threads,
        strategies: strategies.clone(),
        dir: dir.clone(),
        since,
    };
    let mut done: Vec<(usize, usize)> = Vec::new();
    let has = |p: &str| paths.iter().any(|x| x == p);
    for &b in &batches {
        for &v in &vocabs {
            let x = normal_logits(b * v, 3.0, (b * 1_000_003 + v) as u64);
            let group_name = format!("matrix_b{b}_v{v}");
            let gpu_paths = has("gpu_ts") || has("gpu_wall");
            let mut sampler = gpu.as_ref().filter(|_| gpu_paths).and_then(|(ctx, _)| {
                let buf = ctx
                    .device
                    .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some("bench logits"),
                        contents: bytemuck::cast_slice(&x),
                        usage: wgpu::BufferUsages::STORAGE,
                    });
                match GpuSampler::new(ctx, SamplerConfig::new(b as u32, v as u32)) {
                    Ok(s) => Some((s, buf)),
                    Err(e) => {
                        eprintln!("matrix bench: no GPU sampler for b{b} v{v}: {e}");
                        None
                    }
                }
            });
            let timer = gpu
                .as_ref()
                .filter(|(_, s)| *s != Stamps::None)
                .map(|(ctx, s)| Timer::new(ctx, *s));
            let mut cpu1 = CpuSampler::with_threads(1);
            let mut cpun = CpuSampler::with_threads(threads);
            let mut group = c.benchmark_group(&group_name);
            group.sample_size(10).sampling_mode(SamplingMode::Flat);
            for strat in &strategies {
                let ps: Vec<SamplingParams> = (0..b).map(|r| params(strat, r)).collect();
                let top = ps[0].top_logprobs > 0;
                let fresh: Vec<RowState> = (0..b).map(|r| fresh_state(strat, r, v)).collect();
                let mut states = fresh.clone();
                // GPU rows start from the same params and state as the CPU's.
                if let Some((s, buf)) = sampler.as_mut() {
                    let reset = |s: &mut GpuSampler| {
                        for r in 0..b {
                            s.set_params(r, &ps[r]).unwrap();
                            s.set_state(r, &fresh[r]).unwrap();
                        }
                    };
                    reset(s);
                    if let Ok(p) = s.plan(b as u32) {
                        plans.insert((b, v, strat.clone()), (p.dispatches(), p.dense_passes()));
                    }
                    let got = s.sample(LogitsView::f32(buf), b as u32);
                    let want = cpu1.sample(Logits::F32(&x), v, &ps, &mut states).unwrap();
                    states.clone_from(&fresh);
                    let gpu_ok = got.is_ok();
                    let a = match got {
                        Ok(g) => {
                            let n = g
                                .iter()
                                .zip(&want)
                                .filter(|(g, w)| g.token == w.token)
                                .count();
                            format!("{n}/{b}")
                        }
                        Err(e) => {
                            eprintln!("matrix bench: GPU sample failed b{b} v{v} {strat}: {e}");
                            "err".into()
                        }
                    };
                    agree.insert((b, v, strat.clone()), a);
                    reset(s);
                    let mut since_reset = 0u64;
                    let mut maybe_reset = |s: &mut GpuSampler| {
                        since_reset += 1;
                        if since_reset >= RESET_EVERY {
                            since_reset = 0;
                            for (r, f) in fresh.iter().enumerate() {
                                s.set_state(r, f).unwrap();
                            }
                        }
                    };
                    if gpu_ok
                        && has("gpu_ts")
                        && let Some(t) = timer.as_ref()
                    {
                        let ctx = &gpu.as_ref().unwrap().0;
                        group.bench_function(BenchmarkId::new("gpu_ts", strat), |bch| {
                            bch.iter_custom(|iters| {
                                let mut total = Duration::ZERO;
                                for _ in 0..iters {
                                    total += t.step(ctx, s, buf, b as u32);
                                    maybe_reset(s);
                                }
                                total
                            })
                        });
                    }
                    if gpu_ok && per_pass && has("gpu_ts") {
                        let ctx = &gpu.as_ref().unwrap().0;
                        if let Some(t) = per_pass_us(ctx, s, buf, b as u32) {
                            passes.insert((b, v, strat.clone()), t);
                        }
                        reset(s);
                    }
                    if gpu_ok && has("gpu_wall") {
                        group.bench_function(BenchmarkId::new("gpu_wall", strat), |bch| {
                            bch.iter_custom(|iters| {
                                let mut total = Duration::ZERO;
                                for _ in 0..iters {
                                    let t0 = Instant::now();
                                    if top {
                                        let mut enc = s
                                            .context()
                                            .device
                                            .create_command_encoder(&Default::default());
                                        s.record(&mut enc, LogitsView::f32(buf), b as u32).unwrap();
                                        black_box(
                                            s.submit_and_read_with_top_logprobs(enc).unwrap(),
                                        );
                                    } else {
                                        black_box(
                                            s.sample(LogitsView::f32(buf), b as u32).unwrap(),
                                        );
                                    }
                                    total += t0.elapsed();
                                    maybe_reset(s);
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
                    states.clone_from(&fresh);
                    let mut since_reset = 0u64;
                    group.bench_function(BenchmarkId::new(path, strat), |bch| {
                        bch.iter_custom(|iters| {
                            let mut total = Duration::ZERO;
                            for _ in 0..iters {
                                let t0 = Instant::now();
                                if top {
                                    black_box(
                                        cpu.sample_with_top_logprobs(
                                            Logits::F32(&x),
                                            v,
                                            &ps,
                                            &mut states,
                                        )
                                        .unwrap(),
                                    );
                                } else {
                                    black_box(
                                        cpu.sample(Logits::F32(&x), v, &ps, &mut states).unwrap(),
                                    );
                                }
                                total += t0.elapsed();
                                since_reset += 1;
                                if since_reset >= RESET_EVERY {
                                    since_reset = 0;
                                    states.clone_from(&fresh);
                                }
                            }
                            total
                        })
                    });
                }
            }
            group.finish();
            // The rows so far, so a run cut short still leaves its table.
            done.push((b, v));
            let partial = table.render(&done, &agree, &plans);
            table.save(&partial);
            for line in partial
                .lines()
                .filter(|l| l.starts_with(&format!("{b:<6} {v:<7} ")))
            {
                eprintln!("matrix row: {line}");
            }
        }
    }
    c.final_summary();
    let all: Vec<(usize, usize)> = batches
        .iter()
        .flat_map(|&b| vocabs.iter().map(move |&v| (b, v)))
        .collect();
    let mut out = table.render(&all, &agree, &plans);
    if !passes.is_empty() {
        // Per-pass GPU time (record_timed: a timestamp before each dispatch
        // and after the last), median of 21 steps, µs.
        out.push_str("== wgsample per-pass GPU time: median µs of 21 steps ==\n");
        for ((b, v, strat), t) in &passes {
            let cells: Vec<String> = t.iter().map(|(l, us)| format!("{l}={us:.1}")).collect();
            out.push_str(&format!("{b:<6} {v:<7} {strat:<18} {}\n", cells.join(" ")));
        }
        out.push_str("== end ==\n");
    }
    print!("{out}");
    table.save(&out);
}
