//! The `wgsample` command-line tool: run the sampler on logits stored in a
//! file and print the result as one line of JSON.
//!
//! Why it is shaped this way: each concern sits in its own module, on a
//! library made for it ([`args`] declares the command line with clap,
//! [`npy`] reads the logits file with npyz, [`json`] prints the result with
//! serde_json), and this module only wires them to the `wgsample` library.
//! Every failure on the way is turned into a [`Failure`] carrying an exit
//! code and one line of text, and [`main`] is the single place that prints
//! and exits, so "exactly one `error: ` line on stderr, exit code 2" holds
//! for every bad input by construction (clap's own errors included: see
//! [`args::one_line`]). Range checks of sampling parameters are the
//! library's ([`SamplingParams::validate`], [`RowState::validate`]); the
//! CLI calls them before sampling and prints their messages unchanged.
//!
//! The tool is a library and a one-line binary so that the fuzz checks
//! (`fuzz/checks/cli.rs`) can call the parser and the reader directly.
//!
//! `--backend gpu` runs the same decode loop on the wgpu sampler, with the
//! state on the device (and the CPU backend, with a note on stderr, when
//! the machine has no GPU adapter at all).
//!
//! `generate` and `beam` drive the library's decoders
//! ([`wgsample::decode::generate`], [`wgsample::beam::beam_search_bigram`])
//! with a bigram table read by [`npy::read_bigram`]; the GPU fallback is
//! the same as `sample`'s.
//!
//! `verify` checks a batch of draft tokens against target logits
//! (speculative decoding, [`wgsample::verify`]) with the backends'
//! `verify`; the shapes of its files and of `--draft-tokens` are checked
//! against each other here, the drafts themselves by the library's
//! [`wgsample::check_drafts`].

pub mod args;
pub mod json;
pub mod npy;

use args::{
    Backend, BeamArgs, Command, DistArgs, EarlyStoppingArg, GenerateArgs, HistoryArgs, SampleArgs,
    SamplingArgs, VerifyArgs,
};
use json::SampledRow;
use npy::LogitBatch;
use std::io::Write as _;
use wgsample::{
    CpuSampler, Drafts, RowOutput, RowState, SamplingParams, Status, TopLogprobs, VerifyOutput,
};

/// Exit code for bad input or usage.
pub const EXIT_USAGE: i32 = 2;
/// Exit code when the result could not be written to stdout.
pub const EXIT_OUTPUT: i32 = 1;
/// Exit code of an internal error (a bug), the same as Rust's panic code.
pub const EXIT_INTERNAL: i32 = 101;

/// `generate`'s `--batch` times the bigram's vocabulary is at most this
/// (2^28 f32 logits, 1 GiB, a step).
pub const MAX_STEP_LOGITS: u64 = 1 << 28;

/// Why the command did not produce its output: the exit code and one line
/// of text for stderr (printed after `error: `).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Process exit code.
    pub code: i32,
    /// One line naming the problem.
    pub message: String,
}

impl Failure {
    /// A bad-input / usage failure (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    /// An internal error: the library broke its own contract (exit code
    /// 101, like a panic).
    pub fn internal(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_INTERNAL,
            message: format!("internal error (a bug in wgsample): {}", message.into()),
        }
    }
}

impl From<args::UsageError> for Failure {
    fn from(e: args::UsageError) -> Self {
        Failure::usage(e.0)
    }
}

impl From<npy::InputError> for Failure {
    fn from(e: npy::InputError) -> Self {
        Failure::usage(e.0)
    }
}

impl From<wgsample::Error> for Failure {
    fn from(e: wgsample::Error) -> Self {
        Failure::usage(e.to_string())
    }
}

/// Runs the CLI on the process's arguments, prints the result (stdout) or
/// the error (stderr), and returns the exit code.
pub fn main() -> i32 {
    install_panic_hook();
    let mut argv = Vec::new();
    for (i, a) in std::env::args_os().skip(1).enumerate() {
        match a.into_string() {
            Ok(s) => argv.push(s),
            Err(raw) => {
                return report(&Failure::usage(format!(
                    "argument {} ({}) is not valid UTF-8",
                    i + 1,
                    raw.to_string_lossy()
                )));
            }
        }
    }
    // A GPU run re-runs itself once with XDG_RUNTIME_DIR set when it is
    // unset, so that Mesa's Vulkan layer prints no "error: XDG_RUNTIME_DIR"
    // line beside ours (see `rerun_with_runtime_dir`). CPU runs never do.
    if args::parse(&argv).is_ok_and(|c| uses_gpu(&c))
        && let Some(code) = wgsample::gpu::rerun_with_runtime_dir()
    {
        return code;
    }
    match run(&argv) {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => 0,
                Err(e) => report(&Failure {
                    code: EXIT_OUTPUT,
                    message: format!("cannot write the output: {e}"),
                }),
            }
        }
        Err(f) => report(&f),
    }
}

/// True when the command runs on the GPU backend (`--backend gpu`).
fn uses_gpu(c: &Command) -> bool {
    let backend = match c {
        Command::Help | Command::Dist(_) => return false,
        Command::Sample(a) => a.backend,
        Command::Generate(a) => a.backend,
        Command::Beam(a) => a.backend,
        Command::Verify(a) => a.backend,
    };
    backend == Backend::Gpu
}

/// Prints `error: <message>` as one line on stderr and returns the code.
fn report(f: &Failure) -> i32 {
    let one_line = f.message.replace(['\n', '\r'], " ");
    // If stderr itself is gone there is nobody left to tell.
    let _ = writeln!(std::io::stderr().lock(), "error: {one_line}");
    f.code
}

/// Makes a panic (always a bug: bad input is handled without panicking)
/// print one `error: ` line instead of the default multi-line report and
/// backtrace hint. The process still exits with Rust's panic code, 101.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_string());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let _ = writeln!(
            std::io::stderr().lock(),
            "error: internal error{place} (a bug in wgsample): {}",
            msg.replace(['\n', '\r'], " ")
        );
    }));
}

/// Runs the command given by `argv` (without the program name) and returns
/// what goes to stdout, newline included.
pub fn run(argv: &[String]) -> Result<String, Failure> {
    match args::parse(argv)? {
        Command::Help => Ok(args::help_text()),
        Command::Dist(a) => run_dist(&a),
        Command::Sample(a) => run_sample(&a),
        Command::Generate(a) => run_generate(&a),
        Command::Beam(a) => run_beam(&a),
        Command::Verify(a) => run_verify(&a),
    }
}

/// Opens a GPU device, or says on stderr why there is none and returns
/// `None` (the caller then runs the CPU backend: same contract, same
/// output).
fn gpu_or_fallback() -> Option<wgsample::gpu::GpuContext> {
    match wgsample::gpu::open_device() {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            eprintln!("wgsample: {e}; falling back to the CPU backend");
            None
        }
    }
}

/// Reads `--bigram` and checks `--start` against its vocabulary.
fn bigram_setup(path: &std::path::Path, start: u32) -> Result<(Vec<f32>, usize), Failure> {
    let (table, vocab) = npy::read_bigram(path)?;
    if start as usize >= vocab {
        return Err(Failure::usage(format!(
            "--start {start} is not a token id (the bigram's vocab size is {vocab})"
        )));
    }
    Ok((table, vocab))
}

/// `wgsample generate`: decode `--batch` rows with the bigram model.
fn run_generate(a: &GenerateArgs) -> Result<String, Failure> {
    use wgsample::decode::{Backend as GenBackend, DecodeSpec, StopCriteria};
    let (table, vocab) = bigram_setup(&a.bigram, a.start)?;
    // Each step holds `[batch, V]` f32 logits (on the host or the device).
    let logits = u64::from(a.batch) * vocab as u64;
    if logits > MAX_STEP_LOGITS {
        return Err(Failure::usage(format!(
            "--batch {} x the bigram's vocab {vocab} = {logits} logits a step is above the \
             limit of {MAX_STEP_LOGITS}",
            a.batch
        )));
    }
    let mut base = a.sampling.params();
    if let Some(allow) = &a.sampling.allow {
        base.allowed_tokens = Some(wgsample::allowed_mask(vocab, &allow.0)?);
    }
    let params: Vec<SamplingParams> = (0..a.batch)
        .map(|r| SamplingParams {
            seed: base.seed.wrapping_add(u64::from(r)),
            ..base.clone()
        })
        .collect();
    for (r, p) in params.iter().enumerate() {
        p.validate(r, vocab)?;
    }
    let stop_tokens: Vec<Vec<u32>> = a.stop_tokens.iter().map(|s| s.0.clone()).collect();
    for seq in &stop_tokens {
        if let Some(t) = seq.iter().find(|&&t| t as usize >= vocab) {
            return Err(Failure::usage(format!(
                "--stop-tokens: {t} is not a token id (the bigram's vocab size is {vocab})"
            )));
        }
    }
    let criteria = StopCriteria {
        max_new_tokens: a.max_new_tokens,
        min_new_tokens: base.min_new_tokens,
        eos_token_ids: base.eos_token_ids.clone(),
        stop_token_sequences: stop_tokens,
        stop_strings: Vec::new(),
    };
    let spec = DecodeSpec::new(&params, &criteria);
    let starts = vec![a.start; params.len()];
    let ctx = match a.backend {
        Backend::Cpu => None,
        Backend::Gpu => gpu_or_fallback(),
    };
    let backend = match &ctx {
        Some(ctx) => GenBackend::Gpu(ctx),
        None => GenBackend::Cpu,
    };
    let out = wgsample::decode::generate(&table, vocab, &starts, &spec, backend, |_| {})?;
    let sequences = out
        .sequences
        .iter()
        .map(|s| json::Generated {
            tokens: &s.tokens,
            stop_reason: s.stop_reason.as_str(),
        })
        .collect();
    Ok(json::line(&json::Sequences { sequences }) + "\n")
}

/// `wgsample beam`: beam search over the bigram model.
fn run_beam(a: &BeamArgs) -> Result<String, Failure> {
    use wgsample::beam::{BeamBackend, BeamConfig, EarlyStopping};
    let (table, vocab) = bigram_setup(&a.bigram, a.start)?;
    let cfg = BeamConfig {
        num_beams: a.beams,
        length_penalty: a.length_penalty,
        early_stopping: match a.early_stopping {
            EarlyStoppingArg::True => EarlyStopping::True,
            EarlyStoppingArg::False => EarlyStopping::False,
            EarlyStoppingArg::Never => EarlyStopping::Never,
        },
        eos_token_ids: a.eos.clone(),
        max_new_tokens: a.max_new_tokens,
        num_return_sequences: a.num_return_sequences,
    };
    let ctx = match a.backend {
        Backend::Cpu => None,
        Backend::Gpu => gpu_or_fallback(),
    };
    let backend = match &ctx {
        Some(ctx) => BeamBackend::Gpu(ctx),
        None => BeamBackend::Cpu,
    };
    let hyps = wgsample::beam::beam_search_bigram(&table, vocab, a.start, &cfg, backend)?;
    let sequences = hyps
        .iter()
        .map(|h| json::Hypothesis {
            tokens: &h.tokens,
            score: h.score,
        })
        .collect();
    Ok(json::line(&json::Sequences { sequences }) + "\n")
}

/// Builds the row's parameters (with the allowed-token bitmask, which needs
/// the vocabulary size) and its state, and validates both with the
/// library's checks; `row` only appears in error messages.
fn row_setup(
    p: &SamplingArgs,
    h: &HistoryArgs,
    vocab: usize,
    row: usize,
) -> Result<(SamplingParams, RowState), Failure> {
    let mut params = p.params();
    if let Some(allow) = &p.allow {
        params.allowed_tokens = Some(wgsample::allowed_mask(vocab, &allow.0)?);
    }
    params.validate(row, vocab)?;
    let state = RowState::with_output(h.prompt(), h.output());
    state.validate(row, vocab)?;
    Ok((params, state))
}

/// `wgsample dist`: the filtered distribution of one row.
fn run_dist(a: &DistArgs) -> Result<String, Failure> {
    let batch = npy::read_logits(&a.input.logits, a.input.vocab)?;
    let Some(row) = batch.row(a.row) else {
        return Err(Failure::usage(format!(
            "--row {} is out of range ({} has {} row{})",
            a.row,
            a.input.logits.display(),
            batch.batch,
            if batch.batch == 1 { "" } else { "s" }
        )));
    };
    let (params, state) = row_setup(&a.sampling, &a.history, batch.vocab, a.row)?;
    let d = wgsample::filtered_distribution(row, &params, &state)?;
    let line = if d.status == Status::Ok && d.tokens.len() == d.probs.len() {
        json::Dist {
            status: d.status,
            tokens: &d.tokens,
            probs: &d.probs,
        }
    } else if d.status == Status::Ok {
        return Err(Failure::internal(format!(
            "the distribution has {} tokens but {} probabilities",
            d.tokens.len(),
            d.probs.len()
        )));
    } else {
        json::Dist {
            status: d.status,
            tokens: &[],
            probs: &[],
        }
    };
    Ok(json::line(&line) + "\n")
}

/// `wgsample sample`: `--steps` rounds of sampling over the whole batch.
fn run_sample(a: &SampleArgs) -> Result<String, Failure> {
    let batch = npy::read_logits(&a.input.logits, a.input.vocab)?;
    let total = u64::from(a.steps) * batch.batch as u64;
    if total > args::MAX_OUTPUT_TOKENS {
        return Err(Failure::usage(format!(
            "--steps {} x {} rows = {total} tokens is above the limit of {} tokens per run \
             (the result is printed at the end)",
            a.steps,
            batch.batch,
            args::MAX_OUTPUT_TOKENS
        )));
    }
    let (mut params, state) = row_setup(&a.sampling, &a.history, batch.vocab, 0)?;
    params.top_logprobs = a.top_logprobs;
    let params = vec![params; batch.batch];
    let states = vec![state; batch.batch];
    let (rows, plan) = match a.backend {
        Backend::Cpu => (sample_cpu(&batch, &params, states, a.steps)?, None),
        Backend::Gpu => sample_gpu(&batch, &params, states, a.steps)?,
    };
    let line = json::Sample {
        rows: &rows,
        // The plan of the last step (null when no GPU adapter was found
        // and the CPU backend ran instead).
        plan: a.explain.then(|| plan.as_ref().map(json::Plan::from)),
    };
    Ok(json::line(&line) + "\n")
}

/// Runs `steps` decode-loop steps on the CPU backend. The same `states`
/// vector is passed to every call, so the library's state update (counts,
/// generated length, step counter) carries over from step to step.
fn sample_cpu(
    batch: &LogitBatch,
    params: &[SamplingParams],
    mut states: Vec<RowState>,
    steps: u32,
) -> Result<Vec<SampledRow>, Failure> {
    let mut sampler = CpuSampler::new();
    let top = wants_top_logprobs(params);
    let mut rows = fresh_rows(batch.batch, top);
    for _ in 0..steps {
        if rows.iter().all(|r| r.status != Status::Ok) {
            break;
        }
        if top {
            let (outs, tops) = sampler.sample_with_top_logprobs(
                batch.logits(),
                batch.vocab,
                params,
                &mut states,
            )?;
            fold_step(&mut rows, &outs, Some(&tops))?;
        } else {
            let outs = sampler.sample(batch.logits(), batch.vocab, params, &mut states)?;
            fold_step(&mut rows, &outs, None)?;
        }
    }
    Ok(rows)
}

/// Runs `steps` decode-loop steps on the GPU backend: the logits are
/// uploaded once, the per-row state stays on the device between steps, and
/// each step reads back only the `B` row results. With no GPU adapter at all
/// it says so on stderr and runs the CPU backend instead (same contract,
/// same output).
fn sample_gpu(
    batch: &LogitBatch,
    params: &[SamplingParams],
    states: Vec<RowState>,
    steps: u32,
) -> Result<(Vec<SampledRow>, Option<wgsample::gpu::Plan>), Failure> {
    use wgpu::util::DeviceExt as _;
    use wgsample::gpu::{GpuSampler, SamplerConfig};
    let Some(ctx) = gpu_or_fallback() else {
        return Ok((sample_cpu(batch, params, states, steps)?, None));
    };
    let b = u32::try_from(batch.batch)
        .map_err(|_| Failure::usage(format!("batch {} is too large", batch.batch)))?;
    let v = u32::try_from(batch.vocab)
        .map_err(|_| Failure::usage(format!("vocab {} is too large", batch.vocab)))?;
    let mut cfg = SamplerConfig::new(b, v);
    // Token counts are needed only by rows with penalties: size the lists
    // from --steps only then, so a large batch without penalties fits.
    if params.iter().any(|p| p.penalties_active()) {
        cfg.max_seen_tokens = cfg.max_seen_tokens.max(
            steps.saturating_add(
                states
                    .iter()
                    .map(|s| s.output_counts().count() as u32)
                    .max()
                    .unwrap_or(0),
            ),
        );
    }
    let mut sampler = GpuSampler::new(&ctx, cfg)?;
    for (r, (p, s)) in params.iter().zip(&states).enumerate() {
        sampler.set_params(r, p)?;
        sampler.set_state(r, s)?;
    }
    let (padded, dtype) = wgsample::gpu::logits_bytes(batch.logits());
    let max = ctx.device.limits().max_buffer_size;
    if padded.len() as u64 > max {
        return Err(Failure::usage(format!(
            "the logits ({} bytes) exceed this device's max_buffer_size ({max})",
            padded.len()
        )));
    }
    let buffer = ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("wgsample cli logits"),
            contents: &padded,
            usage: wgpu::BufferUsages::STORAGE,
        });
    let top = wants_top_logprobs(params);
    let mut rows = fresh_rows(batch.batch, top);
    let mut plan = None;
    for _ in 0..steps {
        if rows.iter().all(|r| r.status != Status::Ok) {
            break;
        }
        plan = Some(sampler.plan(b)?);
        let view = wgsample::gpu::LogitsView {
            buffer: &buffer,
            offset: 0,
            dtype,
        };
        if top {
            let mut encoder = ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("wgsample cli step"),
                });
            sampler.record(&mut encoder, view, b)?;
            let (outs, tops) = sampler.submit_and_read_with_top_logprobs(encoder)?;
            fold_step(&mut rows, &outs, Some(&tops))?;
        } else {
            let outs = sampler.sample(view, b)?;
            fold_step(&mut rows, &outs, None)?;
        }
    }
    Ok((rows, plan))
}

/// True when the rows ask for top logprobs (`--top-logprobs N > 0`; every
/// row of `sample` has the same parameters).
fn wants_top_logprobs(params: &[SamplingParams]) -> bool {
    params.iter().any(|p| p.top_logprobs > 0)
}

/// One empty, still-running (`Ok`) result per row, with empty
/// `top_logprobs` and `ranks` lists when `top`.
fn fresh_rows(batch: usize, top: bool) -> Vec<SampledRow> {
    vec![
        SampledRow {
            tokens: Vec::new(),
            logprobs: Vec::new(),
            top_logprobs: top.then(Vec::new),
            ranks: top.then(Vec::new),
            status: Status::Ok,
        };
        batch
    ]
}

/// Adds one step's outputs to the rows still running: an `Ok` output
/// appends its token and logprob (and, with `tops`, its top-logprob list
/// and rank); any other status stops the row there and becomes its status.
/// Rows that already stopped ignore later outputs.
fn fold_step(
    rows: &mut [SampledRow],
    outs: &[RowOutput],
    tops: Option<&[TopLogprobs]>,
) -> Result<(), Failure> {
    if outs.len() != rows.len() || tops.is_some_and(|t| t.len() != rows.len()) {
        return Err(Failure::internal(format!(
            "the sampler returned {} results ({} top-logprob lists) for {} rows",
            outs.len(),
            tops.map_or(0, <[TopLogprobs]>::len),
            rows.len()
        )));
    }
    for (r, (row, out)) in rows.iter_mut().zip(outs).enumerate() {
        if row.status != Status::Ok {
            continue;
        }
        if out.status != Status::Ok {
            row.status = out.status;
            continue;
        }
        row.tokens.push(out.token);
        row.logprobs.push(out.logprob);
        if let (Some(list), Some(ranks), Some(tops)) = (&mut row.top_logprobs, &mut row.ranks, tops)
        {
            let top = &tops[r];
            list.push(
                top.entries
                    .iter()
                    .map(|e| json::TopEntry {
                        token: e.token,
                        logprob: e.logprob,
                    })
                    .collect(),
            );
            ranks.push(top.rank);
        }
    }
    Ok(())
}

/// The batch, positions and vocabulary of a `--target` shape: `[k+1, V]`
/// is one row, `[B, k+1, V]` is `B`.
fn target_dims(shape: &[usize]) -> Option<(usize, usize, usize)> {
    match *shape {
        [p, v] => Some((1, p, v)),
        [b, p, v] => Some((b, p, v)),
        _ => None,
    }
}

/// `wgsample verify`: checks every row's draft tokens against the target
/// logits (speculative decoding).
fn run_verify(a: &VerifyArgs) -> Result<String, Failure> {
    let (k, b) = (a.draft_tokens.k, a.draft_tokens.rows());
    let target = npy::read_array(&a.target, "--target", |shape| match target_dims(shape) {
        Some(_) => Ok(()),
        None => Err(npy::InputError(format!(
            "shape {} is neither [k+1, V] nor [B, k+1, V]",
            npy::show_shape(shape)
        ))),
    })?;
    let shown = a.target.display();
    let Some((tb, positions, vocab)) = target_dims(&target.shape) else {
        return Err(Failure::internal(
            "the --target shape check let a shape through",
        ));
    };
    if tb != b {
        return Err(Failure::usage(format!(
            "--target {shown} has shape {}: {tb} row{} of target logits, but --draft-tokens \
             gives {b} row{}",
            npy::show_shape(&target.shape),
            plural(tb),
            plural(b)
        )));
    }
    if positions != k + 1 {
        return Err(Failure::usage(format!(
            "--target {shown} has shape {}: {positions} positions per row, but --draft-tokens \
             gives k = {k} draft token{} per row, which need k+1 = {} positions",
            npy::show_shape(&target.shape),
            plural(k),
            k + 1
        )));
    }
    let probs = match &a.draft_probs {
        None => None,
        Some(path) => Some(read_draft_probs(path, b, k, vocab)?),
    };
    let mut base = a.sampling.params();
    if let Some(allow) = &a.sampling.allow {
        base.allowed_tokens = Some(wgsample::allowed_mask(vocab, &allow.0)?);
    }
    let params: Vec<SamplingParams> = (0..b)
        .map(|r| SamplingParams {
            seed: base.seed.wrapping_add(r as u64),
            ..base.clone()
        })
        .collect();
    for (r, p) in params.iter().enumerate() {
        p.validate(r, vocab)?;
    }
    let state = RowState::with_output(a.history.prompt(), a.history.output());
    state.validate(0, vocab)?;
    let mut states = vec![state; b];
    let drafts = Drafts {
        k,
        tokens: &a.draft_tokens.tokens,
        probs: probs.as_deref(),
    };
    wgsample::check_drafts(b, vocab, &drafts)?;
    let ctx = match a.backend {
        Backend::Cpu => None,
        Backend::Gpu => gpu_or_fallback(),
    };
    let outs = match &ctx {
        Some(ctx) => verify_gpu(ctx, &target, vocab, &drafts, &params, &states)?,
        None => CpuSampler::new().verify(target.logits(), vocab, &drafts, &params, &mut states)?,
    };
    if outs.len() != b {
        return Err(Failure::internal(format!(
            "verify returned {} results for {b} rows",
            outs.len()
        )));
    }
    let rows = outs
        .into_iter()
        .map(|o: VerifyOutput| json::VerifiedRow {
            tokens: o.tokens,
            accepted: o.accepted,
            logprobs: o.logprobs,
            status: o.status,
        })
        .collect();
    Ok(json::line(&json::Verify { rows }) + "\n")
}

/// Runs `verify` on the GPU backend: a sampler sized for the `B x (k+1)`
/// positions, the rows' parameters and states set on it, the target
/// logits uploaded from the host.
fn verify_gpu(
    ctx: &wgsample::gpu::GpuContext,
    target: &npy::Array,
    vocab: usize,
    drafts: &Drafts<'_>,
    params: &[SamplingParams],
    states: &[RowState],
) -> Result<Vec<VerifyOutput>, Failure> {
    use wgsample::gpu::{GpuSampler, SamplerConfig};
    let b = params.len();
    let too_large = |what: &str, n: usize| Failure::usage(format!("{what} {n} is too large"));
    let positions = b
        .checked_mul(drafts.k + 1)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| too_large("the number of target positions", b * (drafts.k + 1)))?;
    let batch = u32::try_from(b).map_err(|_| too_large("batch", b))?;
    let v = u32::try_from(vocab).map_err(|_| too_large("vocab", vocab))?;
    let mut cfg = SamplerConfig::new(positions, v);
    // Room in the token-count lists for the history and the k+1 tokens a
    // row may emit, when penalties need them.
    if params.iter().any(SamplingParams::penalties_active) {
        let history = states
            .iter()
            .map(|s| s.output_counts().count())
            .max()
            .unwrap_or(0);
        let need = u32::try_from(history + drafts.k + 1).unwrap_or(u32::MAX);
        cfg.max_seen_tokens = cfg.max_seen_tokens.max(need);
    }
    let mut sampler = GpuSampler::new(ctx, cfg)?;
    for (r, (p, s)) in params.iter().zip(states).enumerate() {
        sampler.set_params(r, p)?;
        sampler.set_state(r, s)?;
    }
    Ok(sampler.verify_host(target.logits(), batch, drafts)?)
}

/// `"s"` unless `n` is 1.
fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Reads `--draft-probs`: float32, shape `[k, V]` (one row) or `[B, k, V]`,
/// matching the drafts and the target's vocabulary. Returns the
/// `B * k * V` values; their sums and the draft tokens' probabilities are
/// checked by the library ([`wgsample::check_drafts`]).
fn read_draft_probs(
    path: &std::path::Path,
    b: usize,
    k: usize,
    vocab: usize,
) -> Result<Vec<f32>, Failure> {
    let dims = |shape: &[usize]| match *shape {
        [j, v] => Some((1, j, v)),
        [qb, j, v] => Some((qb, j, v)),
        _ => None,
    };
    let q = npy::read_array(path, "--draft-probs", |shape| match dims(shape) {
        Some(_) => Ok(()),
        None => Err(npy::InputError(format!(
            "shape {} is neither [k, V] nor [B, k, V]",
            npy::show_shape(shape)
        ))),
    })?;
    let shown = path.display();
    let shape = npy::show_shape(&q.shape);
    let Some((qb, qk, qv)) = dims(&q.shape) else {
        return Err(Failure::internal(
            "the --draft-probs shape check let a shape through",
        ));
    };
    if qb != b {
        return Err(Failure::usage(format!(
            "--draft-probs {shown} has shape {shape}: {qb} row{}, but --draft-tokens gives {b} \
             row{}",
            plural(qb),
            plural(b)
        )));
    }
    if qk != k {
        return Err(Failure::usage(format!(
            "--draft-probs {shown} has shape {shape}: {qk} position{} per row, but \
             --draft-tokens gives k = {k} draft token{} per row",
            plural(qk),
            plural(k)
        )));
    }
    if qv != vocab {
        return Err(Failure::usage(format!(
            "--draft-probs {shown} has shape {shape}: rows of {qv} probabilities, but the \
             --target vocabulary is V = {vocab}"
        )));
    }
    match q.data {
        npy::LogitData::F32(v) => Ok(v),
        npy::LogitData::F16(_) => Err(Failure::usage(format!(
            "--draft-probs {shown} is float16; save the draft probabilities as float32 '<f4'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(token: u32, status: Status) -> RowOutput {
        RowOutput {
            token,
            logprob: if status == Status::Ok { -1.0 } else { f32::NAN },
            status,
        }
    }

    #[test]
    fn a_row_stops_at_its_first_non_ok_step() {
        let mut rows = fresh_rows(2, false);
        fold_step(&mut rows, &[out(1, Status::Ok), out(5, Status::Ok)], None).unwrap();
        fold_step(
            &mut rows,
            &[out(u32::MAX, Status::NoCandidates), out(6, Status::Ok)],
            None,
        )
        .unwrap();
        fold_step(&mut rows, &[out(2, Status::Ok), out(7, Status::Ok)], None).unwrap();
        assert_eq!(rows[0].tokens, vec![1]);
        assert_eq!(rows[0].status, Status::NoCandidates);
        assert_eq!(rows[1].tokens, vec![5, 6, 7]);
        assert_eq!(rows[1].status, Status::Ok);
        assert_eq!(rows[1].top_logprobs, None);
        assert!(fold_step(&mut rows, &[out(1, Status::Ok)], None).is_err());
    }

    #[test]
    fn top_logprobs_are_kept_per_step_of_the_rows_still_running() {
        let top = |token: u32, rank: u32| TopLogprobs {
            rank,
            entries: vec![wgsample::TokenLogprob {
                token,
                logprob: -0.5,
            }],
        };
        let mut rows = fresh_rows(2, true);
        fold_step(
            &mut rows,
            &[out(1, Status::Ok), out(u32::MAX, Status::InvalidLogits)],
            Some(&[top(1, 1), TopLogprobs::default()]),
        )
        .unwrap();
        fold_step(
            &mut rows,
            &[out(2, Status::Ok), out(3, Status::Ok)],
            Some(&[top(0, 2), top(3, 1)]),
        )
        .unwrap();
        assert_eq!(rows[0].ranks, Some(vec![1, 2]));
        let tokens: Vec<Vec<u32>> = rows[0]
            .top_logprobs
            .as_ref()
            .unwrap()
            .iter()
            .map(|l| l.iter().map(|e| e.token).collect())
            .collect();
        assert_eq!(tokens, [[1], [0]]);
        assert_eq!(rows[1].ranks, Some(vec![]));
        assert_eq!(rows[1].status, Status::InvalidLogits);
        assert!(fold_step(&mut rows, &[out(1, Status::Ok); 2], Some(&[top(1, 1)])).is_err());
    }
}
