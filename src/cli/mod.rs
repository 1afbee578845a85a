//! The `wgsample` command-line tool: run the sampler on logits stored in a
//! file and print the result as one line of JSON.
//!
//! Why it is shaped this way: each concern sits in its own small,
//! dependency-free module ([`args`] parses the command line, [`npy`] reads
//! the logits file, [`json`] prints the result), and this module only wires
//! them to the library. Every failure on the way is turned into a
//! [`Failure`] carrying an exit code and one line of text, and [`main`] is
//! the single place that prints and exits, so "exactly one `error: ` line on
//! stderr, exit code 2" holds for every bad input by construction. Range
//! checks of sampling parameters are the library's
//! ([`SamplingParams::validate`], [`RowState::validate`]); the CLI calls
//! them before sampling and prints their messages unchanged.
//!
//! The GPU backend is not wired yet: [`sample_gpu`] is the one marked place
//! that `--backend gpu` reaches, to be replaced when the pipeline lands.

pub mod args;
pub mod json;
pub mod npy;

use args::{Backend, Command, DistArgs, ParamArgs, SampleArgs};
use json::SampledRow;
use npy::LogitBatch;
use std::io::Write as _;
use wgsample::{CpuSampler, RowOutput, RowState, SamplingParams, Status};

/// Exit code for bad input or usage.
pub const EXIT_USAGE: i32 = 2;
/// Exit code when the result could not be written to stdout.
pub const EXIT_OUTPUT: i32 = 1;
/// Exit code of an internal error (a bug), the same as Rust's panic code.
pub const EXIT_INTERNAL: i32 = 101;

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
        Command::Help => Ok(args::USAGE.to_string()),
        Command::Dist(a) => run_dist(&a),
        Command::Sample(a) => run_sample(&a),
    }
}

/// Builds the row's parameters (with the allowed-token bitmask, which needs
/// the vocabulary size) and its state, and validates both with the
/// library's checks; `row` only appears in error messages.
fn row_setup(
    p: &ParamArgs,
    vocab: usize,
    row: usize,
) -> Result<(SamplingParams, RowState), Failure> {
    let mut params = p.params.clone();
    if let Some(allow) = &p.allow {
        params.allowed_tokens = Some(wgsample::allowed_mask(vocab, allow)?);
    }
    params.validate(row, vocab)?;
    let state = RowState::with_output(&p.prompt_tokens, &p.output_tokens);
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
    let (params, state) = row_setup(&a.params, batch.vocab, a.row)?;
    let d = wgsample::filtered_distribution(row, &params, &state)?;
    let line = if d.status == Status::Ok && d.tokens.len() == d.probs.len() {
        json::dist_line(d.status, &d.tokens, &d.probs)
    } else if d.status == Status::Ok {
        return Err(Failure::internal(format!(
            "the distribution has {} tokens but {} probabilities",
            d.tokens.len(),
            d.probs.len()
        )));
    } else {
        json::dist_line(d.status, &[], &[])
    };
    Ok(line + "\n")
}

/// `wgsample sample`: `--steps` rounds of sampling over the whole batch.
fn run_sample(a: &SampleArgs) -> Result<String, Failure> {
    let batch = npy::read_logits(&a.input.logits, a.input.vocab)?;
    let (params, state) = row_setup(&a.params, batch.vocab, 0)?;
    let params = vec![params; batch.batch];
    let states = vec![state; batch.batch];
    let rows = match a.backend {
        Backend::Cpu => sample_cpu(&batch, &params, states, a.steps)?,
        Backend::Gpu => sample_gpu(&batch, &params, states, a.steps)?,
    };
    Ok(json::sample_line(&rows) + "\n")
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
    let mut rows = fresh_rows(batch.batch);
    for _ in 0..steps {
        if rows.iter().all(|r| r.status != Status::Ok) {
            break;
        }
        let outs = sampler.sample(batch.logits(), batch.vocab, params, &mut states)?;
        fold_step(&mut rows, &outs)?;
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------
// GPU PIPELINE PLACEHOLDER: the one place `--backend gpu` reaches.
//
// Replace the body with the wgpu sampler's decode loop when src/gpu provides
// it: same arguments and result as `sample_cpu`, one sampler call per step
// over the whole batch, and `fold_step` for the stop rule, so that the two
// backends print identical JSON for identical input.
// ---------------------------------------------------------------------------
/// Runs `steps` decode-loop steps on the GPU backend (not implemented yet:
/// always a usage failure, exit code 2).
fn sample_gpu(
    _batch: &LogitBatch,
    _params: &[SamplingParams],
    _states: Vec<RowState>,
    _steps: u32,
) -> Result<Vec<SampledRow>, Failure> {
    Err(Failure::usage(
        "--backend gpu: the GPU sampling pipeline is not implemented yet (use --backend cpu)",
    ))
}

/// One empty, still-running (`Ok`) result per row.
fn fresh_rows(batch: usize) -> Vec<SampledRow> {
    vec![
        SampledRow {
            tokens: Vec::new(),
            logprobs: Vec::new(),
            status: Status::Ok,
        };
        batch
    ]
}

/// Adds one step's outputs to the rows still running: an `Ok` output
/// appends its token and logprob; any other status stops the row there and
/// becomes its status. Rows that already stopped ignore later outputs.
fn fold_step(rows: &mut [SampledRow], outs: &[RowOutput]) -> Result<(), Failure> {
    if outs.len() != rows.len() {
        return Err(Failure::internal(format!(
            "the sampler returned {} results for {} rows",
            outs.len(),
            rows.len()
        )));
    }
    for (row, out) in rows.iter_mut().zip(outs) {
        if row.status != Status::Ok {
            continue;
        }
        if out.status == Status::Ok {
            row.tokens.push(out.token);
            row.logprobs.push(out.logprob);
        } else {
            row.status = out.status;
        }
    }
    Ok(())
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
        let mut rows = fresh_rows(2);
        fold_step(&mut rows, &[out(1, Status::Ok), out(5, Status::Ok)]).unwrap();
        fold_step(
            &mut rows,
            &[out(u32::MAX, Status::NoCandidates), out(6, Status::Ok)],
        )
        .unwrap();
        fold_step(&mut rows, &[out(2, Status::Ok), out(7, Status::Ok)]).unwrap();
        assert_eq!(rows[0].tokens, vec![1]);
        assert_eq!(rows[0].status, Status::NoCandidates);
        assert_eq!(rows[1].tokens, vec![5, 6, 7]);
        assert_eq!(rows[1].status, Status::Ok);
        assert!(fold_step(&mut rows, &[out(1, Status::Ok)]).is_err());
    }
}
