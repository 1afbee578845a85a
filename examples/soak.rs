//! Soak test (not part of `cargo test`): a long decode loop on the GPU
//! sampler, checked at every step against the CPU backend, with the memory
//! (RSS) printed as it goes.
//!
//! ```text
//! cargo run --release --example soak -- --steps 100000
//! cargo run --release --example soak -- --steps 20000 --vocab 4096 --batch 8
//! ```
//!
//! The model is a random bigram table (`--vocab V`, row `t` = the logits
//! after token `t`); on the GPU its step is the gather pass
//! (`wgsample::decode::BigramModel`) reading the previous tokens from the
//! sampler's output buffer, on the CPU `bigram_logits_cpu`. Every row
//! samples with repetition, presence and frequency penalties (and a
//! different truncation strategy per row), and is stopped by the crate's
//! stop machinery (`StopCriteria` / `StopChecker`: EOS after
//! `min_new_tokens`, a stop string through a detokenizer, a stop token
//! sequence, `max_new_tokens`). A row that stops is restarted at once (new
//! state on the device, new seed, its last token as the prompt), so the
//! loop keeps every row busy for `--steps` steps.
//!
//! At every step the `B` GPU tokens are compared with the CPU backend's
//! tokens for the same logits, parameters and state. A difference at one of
//! SPEC.md's knife edges (judged by the test oracle, `tests/oracle`) is
//! counted; any other difference is reported as a mismatch. Either way the
//! CPU state is then resynchronised from the device's state and the GPU
//! token is taken, so one difference does not cascade. RSS (`VmRSS` of
//! `/proc/self/status`) is printed at the start, every 10 000 steps and at
//! the end. Exit status: 0 when there was no mismatch and the RSS stayed
//! flat after warm-up (grew by at most 8 MiB from the first checkpoint),
//! 1 otherwise, 2 on bad flags.

// The test oracle (SPEC.md written out naively), for judging knife edges.
#[path = "../tests/oracle/mod.rs"]
mod oracle;

use rand::{Rng, SeedableRng, rngs::StdRng};
use std::time::Instant;
use wgsample::decode::{
    BigramModel, Detokenizer, StepInfo, StopChecker, StopCriteria, StopReason, bigram_logits_cpu,
};
use wgsample::gpu::{DType, GpuSampler, LogitsView, SamplerConfig, open_device};
use wgsample::{CpuSampler, Logits, RowOutput, RowState, SamplingParams, Status};

struct Options {
    steps: u64,
    vocab: u32,
    batch: u32,
    seed: u64,
    max_new_tokens: u32,
    every: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: soak [--steps N (100000)] [--vocab V (2048)] [--batch B (4)] [--seed S (1)] \
         [--max-new-tokens N (256)] [--every N (10000)]"
    );
    std::process::exit(2)
}

fn parse() -> Options {
    let mut o = Options {
        steps: 100_000,
        vocab: 2048,
        batch: 4,
        seed: 1,
        max_new_tokens: 256,
        every: 10_000,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    fn num<T: std::str::FromStr>(flag: &str, v: Option<&String>) -> T {
        match v.and_then(|s| s.parse().ok()) {
            Some(x) => x,
            None => {
                eprintln!("error: {flag} needs a non-negative integer");
                std::process::exit(2)
            }
        }
    }
    while i < args.len() {
        let v = args.get(i + 1);
        match args[i].as_str() {
            "--steps" => o.steps = num("--steps", v),
            "--vocab" => o.vocab = num("--vocab", v),
            "--batch" => o.batch = num("--batch", v),
            "--seed" => o.seed = num("--seed", v),
            "--max-new-tokens" => o.max_new_tokens = num("--max-new-tokens", v),
            "--every" => o.every = num("--every", v),
            "-h" | "--help" => usage(),
            other => {
                eprintln!("error: unknown flag {other}");
                usage()
            }
        }
        i += 2;
    }
    if o.vocab < 64 || o.batch == 0 || o.max_new_tokens == 0 || o.every == 0 {
        eprintln!(
            "error: --vocab must be at least 64; --batch, --max-new-tokens, --every at least 1"
        );
        std::process::exit(2)
    }
    o
}

/// Resident set size in KiB (`VmRSS` of `/proc/self/status`), if readable.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn show_rss(kib: Option<u64>) -> String {
    match kib {
        Some(k) => format!("{:.1} MiB", k as f64 / 1024.0),
        None => "unknown".to_string(),
    }
}

/// A `[V, V]` table: every row has a few strong successors (so text has
/// structure and penalties matter) over a noisy floor.
fn table(v: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut t = vec![0.0f32; v * v];
    for row in t.chunks_exact_mut(v) {
        for x in row.iter_mut() {
            *x = rng.random_range(0..4096) as f32 / 4096.0 * 4.0 - 2.0;
        }
        for _ in 0..8 {
            let j = rng.random_range(0..v);
            row[j] += 4.0 + rng.random_range(0..1024) as f32 / 512.0;
        }
    }
    t
}

/// Token id -> text: a newline for ids divisible by 29 (so the stop string
/// "\n\n" occurs now and then), a letter otherwise.
fn piece(t: u32) -> String {
    if t.is_multiple_of(29) {
        "\n".to_string()
    } else {
        char::from(b'a' + (t % 26) as u8).to_string()
    }
}

/// Row `r`'s parameters (all with penalties), seeded by its restart count.
fn row_params(r: usize, seed: u64, criteria: &StopCriteria) -> SamplingParams {
    let mut p = match r % 5 {
        0 => SamplingParams {
            temperature: 0.8,
            top_p: 0.9,
            repetition_penalty: 1.2,
            presence_penalty: 0.3,
            frequency_penalty: 0.2,
            ..Default::default()
        },
        1 => SamplingParams {
            top_k: 40,
            repetition_penalty: 1.1,
            frequency_penalty: 0.5,
            ..Default::default()
        },
        2 => SamplingParams {
            temperature: 0.0,
            repetition_penalty: 1.3,
            presence_penalty: 0.5,
            ..Default::default()
        },
        3 => SamplingParams {
            temperature: 1.2,
            min_p: 0.05,
            repetition_penalty: 0.9,
            presence_penalty: 0.2,
            frequency_penalty: 0.1,
            ..Default::default()
        },
        _ => SamplingParams {
            temperature: 0.7,
            top_k: 100,
            top_p: 0.8,
            repetition_penalty: 1.05,
            presence_penalty: -0.2,
            frequency_penalty: 0.3,
            ..Default::default()
        },
    };
    p.seed = seed;
    criteria.apply_to(&mut p);
    p
}

#[derive(Default)]
struct Counts {
    tokens: u64,
    restarts: u64,
    eos: u64,
    stop_string: u64,
    stop_tokens: u64,
    max_new: u64,
    no_token: u64,
    knife_edges: u64,
    mismatches: u64,
    logprob_diffs: u64,
}

fn main() {
    let o = parse();
    // Without XDG_RUNTIME_DIR, re-run once with a private one so that
    // Mesa's Vulkan layer prints no "error: XDG_RUNTIME_DIR" line.
    if let Some(code) = wgsample::gpu::rerun_with_runtime_dir() {
        std::process::exit(code);
    }
    if let Err(e) = run(&o) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(o: &Options) -> Result<(), String> {
    let rss_start = rss_kib();
    println!("soak: RSS at start {}", show_rss(rss_start));
    let ctx = open_device().map_err(|e| e.to_string())?;
    println!("GPU: {}", ctx.describe());
    let (v, b) = (o.vocab as usize, o.batch as usize);
    println!(
        "steps {}, batch {b}, vocab {v}, max_new_tokens {}, every row with penalties",
        o.steps, o.max_new_tokens
    );
    let table = table(v, o.seed);
    let detok = |t: u32| piece(t);
    let detok: &dyn Detokenizer = &detok;
    let criteria = StopCriteria::new(o.max_new_tokens)
        .with_min_new_tokens(4)
        .with_eos([1])
        .with_stop_string("\n\n")
        .with_stop_tokens([2, 3]);
    criteria.validate(v).map_err(|e| e.to_string())?;

    let mut cfg = SamplerConfig::new(o.batch, o.vocab);
    cfg.max_seen_tokens = o.max_new_tokens + 1;
    let mut sampler = GpuSampler::new(&ctx, cfg).map_err(|e| e.to_string())?;
    let model = BigramModel::new(&ctx, &table, o.vocab, o.batch).map_err(|e| e.to_string())?;
    let mut prev: Vec<u32> = (0..o.batch).map(|r| (r * 7 + 5) % o.vocab).collect();
    model.set_start(&prev).map_err(|e| e.to_string())?;

    let mut restarts = vec![0u64; b];
    let seed_of = |r: usize, n: u64| o.seed.wrapping_mul(1_000_003) ^ (n << 16) ^ r as u64;
    let mut params: Vec<SamplingParams> = (0..b)
        .map(|r| row_params(r, seed_of(r, 0), &criteria))
        .collect();
    let mut cpu_states: Vec<RowState> = prev.iter().map(|&t| RowState::new(&[t])).collect();
    let mut checkers: Vec<StopChecker<'_>> = Vec::with_capacity(b);
    // Puts row r's state and params on the device (start and restarts).
    let load = |sampler: &mut GpuSampler, r: usize, st: &RowState, p: &SamplingParams| {
        sampler.set_state(r, st).map_err(|e| e.to_string())?;
        sampler.set_params(r, p).map_err(|e| e.to_string())
    };
    for r in 0..b {
        load(&mut sampler, r, &cpu_states[r], &params[r])?;
        checkers.push(StopChecker::new(&criteria, Some(detok)).map_err(|e| e.to_string())?);
    }

    let mut cpu = CpuSampler::new();
    let mut host_logits = vec![0.0f32; b * v];
    let mut cpu_outs = vec![
        RowOutput {
            token: 0,
            logprob: 0.0,
            status: Status::Ok,
        };
        b
    ];
    let mut before: Vec<RowState> = cpu_states.clone();
    let mut c = Counts::default();
    let mut rss_first_checkpoint = None;
    let t0 = Instant::now();
    let mut t_last = Instant::now();

    for step in 0..o.steps {
        // GPU: the model's gather (from the start tokens at step 0, then
        // from the sampler's output on the device) and the sampler, one
        // submission; only the B row results come back.
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        let info = StepInfo {
            step: u32::from(step != 0),
            batch: o.batch,
            tokens: sampler.output_buffer(),
        };
        model
            .record_step(&mut enc, &info)
            .map_err(|e| e.to_string())?;
        let logits = model.logits();
        sampler
            .record(
                &mut enc,
                LogitsView {
                    buffer: logits.buffer,
                    offset: logits.offset,
                    dtype: DType::F32,
                },
                o.batch,
            )
            .map_err(|e| e.to_string())?;
        let gpu = sampler.submit_and_read(enc).map_err(|e| e.to_string())?;

        // CPU: the same step from the host's copy of the previous tokens.
        bigram_logits_cpu(&table, v, &prev, &mut host_logits).map_err(|e| e.to_string())?;
        before.clone_from(&cpu_states);
        cpu.sample_into(
            Logits::F32(&host_logits),
            v,
            &params,
            &mut cpu_states,
            &mut cpu_outs,
        )
        .map_err(|e| e.to_string())?;

        for r in 0..b {
            let (g, cp) = (gpu[r], cpu_outs[r]);
            if g.token != cp.token || g.status != cp.status {
                let row = &host_logits[r * v..(r + 1) * v];
                let want = oracle::oracle_row(
                    row,
                    &params[r],
                    &oracle::OracleState::from_row_state(&before[r]),
                );
                if g.status == cp.status && want.knife() {
                    c.knife_edges += 1;
                } else {
                    c.mismatches += 1;
                    println!(
                        "MISMATCH step {step} row {r}: gpu {g:?} cpu {cp:?} oracle token {} \
                         (knife {:?}/{:?}) params {:?}",
                        want.token, want.filter_knife, want.sample_knife, params[r]
                    );
                }
                // Resynchronise: the device's state and token are kept.
                cpu_states[r] = sampler.read_state(r).map_err(|e| e.to_string())?;
            } else if g.status == Status::Ok
                && (g.logprob - cp.logprob).abs() > 1e-5 * cp.logprob.abs().max(1.0)
            {
                c.logprob_diffs += 1;
            }
            prev[r] = g.token;
            c.tokens += u64::from(g.status == Status::Ok);
            let stop = if g.status == Status::Ok {
                checkers[r].push(g.token).stop
            } else {
                checkers[r].push_no_token(g.status).stop
            };
            let Some(reason) = stop else { continue };
            match reason {
                StopReason::Eos => c.eos += 1,
                StopReason::StopString(_) => c.stop_string += 1,
                StopReason::StopTokens(_) => c.stop_tokens += 1,
                StopReason::MaxNewTokens => c.max_new += 1,
                StopReason::NoToken(_) => c.no_token += 1,
            }
            // Restart the row: a new sequence whose prompt is its last
            // token (which the model step reads next, on both backends),
            // with a new seed.
            c.restarts += 1;
            restarts[r] += 1;
            params[r] = row_params(r, seed_of(r, restarts[r]), &criteria);
            let prompt: &[u32] = if g.status == Status::Ok {
                &[g.token]
            } else {
                &[]
            };
            cpu_states[r] = RowState::new(prompt);
            load(&mut sampler, r, &cpu_states[r], &params[r])?;
            checkers[r] = StopChecker::new(&criteria, Some(detok)).map_err(|e| e.to_string())?;
        }

        let done = step + 1;
        if done % o.every == 0 || done == o.steps {
            let rss = rss_kib();
            if rss_first_checkpoint.is_none() {
                rss_first_checkpoint = rss;
            }
            let dt = t_last.elapsed().as_secs_f64();
            t_last = Instant::now();
            let in_chunk = if done % o.every == 0 {
                o.every
            } else {
                done % o.every
            };
            println!(
                "step {done:>8}: RSS {}, {:.0} steps/s, {} tokens, {} restarts \
                 (eos {}, stop string {}, stop tokens {}, max_new_tokens {}, no token {}), \
                 knife edges {}, mismatches {}",
                show_rss(rss),
                in_chunk as f64 / dt.max(1e-9),
                c.tokens,
                c.restarts,
                c.eos,
                c.stop_string,
                c.stop_tokens,
                c.max_new,
                c.no_token,
                c.knife_edges,
                c.mismatches
            );
        }
    }

    let rss_end = rss_kib();
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "done: {} steps x {b} rows in {secs:.1} s ({:.0} steps/s); RSS start {}, first \
         checkpoint {}, end {}; {} knife edges, {} mismatches, {} logprob differences > 1e-5",
        o.steps,
        o.steps as f64 / secs.max(1e-9),
        show_rss(rss_start),
        show_rss(rss_first_checkpoint),
        show_rss(rss_end),
        c.knife_edges,
        c.mismatches,
        c.logprob_diffs
    );
    let grew = match (rss_first_checkpoint, rss_end) {
        (Some(a), Some(z)) => z.saturating_sub(a),
        _ => 0,
    };
    let mut ok = true;
    if grew > 8 * 1024 {
        println!(
            "FAIL: RSS grew by {:.1} MiB after the first checkpoint",
            grew as f64 / 1024.0
        );
        ok = false;
    }
    if c.mismatches > 0 {
        println!(
            "FAIL: {} mismatches outside SPEC's knife edges",
            c.mismatches
        );
        ok = false;
    }
    if ok {
        println!(
            "OK: memory flat (+{:.1} MiB after the first checkpoint), GPU = CPU at every step",
            grew as f64 / 1024.0
        );
        Ok(())
    } else {
        std::process::exit(1)
    }
}
