//! Command-line parsing for `wgsample dist`, `sample`, `generate` and
//! `beam`.
//!
//! Why it is shaped this way: the crate takes no argument-parsing
//! dependency, and the grammar is small (a subcommand, then `--flag VALUE`
//! or `--flag=VALUE` pairs), so it is parsed by hand in one pass over a
//! table of known flags ([`FLAGS`]). The table says which subcommands take a
//! flag and whether it may repeat, so an unknown, misplaced or duplicated
//! flag is caught in one place. Values are parsed into plain Rust types
//! here, but range checks are left to the library
//! ([`wgsample::SamplingParams::validate`], [`wgsample::RowState::validate`]),
//! which needs the vocabulary size from the file and already words its
//! errors for users; the CLI never keeps a second copy of those rules.
//!
//! A value may start with `-` (`--presence-penalty -0.5`), so the word
//! after a flag is always its value, unless that word is itself a known
//! flag: then the value is reported missing, which is what a user who wrote
//! `--top-k --seed 3` most likely meant.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use wgsample::SamplingParams;

/// A usage error; `Display` is one line naming the problem (the CLI
/// prefixes it with `error: `).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail<T>(msg: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(msg.into()))
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `-h`, `--help` or `help`: print the usage text.
    Help,
    /// `wgsample dist ...`.
    Dist(DistArgs),
    /// `wgsample sample ...`.
    Sample(SampleArgs),
    /// `wgsample generate ...`.
    Generate(GenerateArgs),
    /// `wgsample beam ...`.
    Beam(BeamArgs),
}

/// Where the logits come from.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The `.npy` or raw f32 file.
    pub logits: PathBuf,
    /// `--vocab V`: the row length of a raw f32 file.
    pub vocab: Option<usize>,
}

/// The sampling flags, applied to every row. `params.allowed_tokens` is
/// left `None` here: the bitmask needs the vocabulary size, so the CLI
/// builds it from [`ParamArgs::allow`] once the file is read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParamArgs {
    /// Everything but the allowed-token mask.
    pub params: SamplingParams,
    /// `--allow T1,T2,...`: the only tokens that may be chosen.
    pub allow: Option<Vec<u32>>,
    /// `--prompt-tokens`: the prompt, for the repetition penalty.
    pub prompt_tokens: Vec<u32>,
    /// `--output-tokens`: tokens generated so far.
    pub output_tokens: Vec<u32>,
}

/// Arguments of `wgsample dist`.
#[derive(Debug, Clone, PartialEq)]
pub struct DistArgs {
    /// The logits file.
    pub input: Input,
    /// The sampling flags.
    pub params: ParamArgs,
    /// `--row R` (default 0).
    pub row: usize,
}

/// Which backend `wgsample sample` runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The CPU backend (default).
    Cpu,
    /// The wgpu backend.
    Gpu,
}

/// Arguments of `wgsample sample`.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleArgs {
    /// The logits file.
    pub input: Input,
    /// The sampling flags.
    pub params: ParamArgs,
    /// `--steps N` (default 1).
    pub steps: u32,
    /// `--backend cpu|gpu` (default cpu).
    pub backend: Backend,
    /// `--explain` (no value; needs `--backend gpu`): add the GPU plan of
    /// the last step to the output.
    pub explain: bool,
}

/// Arguments of `wgsample generate`.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateArgs {
    /// `--bigram FILE`: the `[V, V]` `.npy` table.
    pub bigram: PathBuf,
    /// `--start T`: the token every row starts from.
    pub start: u32,
    /// The sampling flags (`--eos` and `--min-new-tokens` included; the
    /// seed is row 0's, row `r` gets `seed + r`).
    pub params: ParamArgs,
    /// `--max-new-tokens N` (default 16).
    pub max_new_tokens: u32,
    /// `--stop-tokens T1,T2` (repeatable): stop token sequences.
    pub stop_tokens: Vec<Vec<u32>>,
    /// `--batch B` (default 1).
    pub batch: u32,
    /// `--backend cpu|gpu` (default cpu).
    pub backend: Backend,
}

/// `--early-stopping true|false|never` of `wgsample beam` (HF semantics,
/// SPEC.md "Beam search").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlyStoppingArg {
    /// Stop a group as soon as `beams` hypotheses are finished.
    True,
    /// Stop when no running beam can beat the worst finished one (the
    /// default, as in HF).
    False,
    /// Like `false`, with the bound taken at `max_new_tokens`.
    Never,
}

/// Arguments of `wgsample beam`.
#[derive(Debug, Clone, PartialEq)]
pub struct BeamArgs {
    /// `--bigram FILE`: the `[V, V]` `.npy` table.
    pub bigram: PathBuf,
    /// `--start T`: the token the search starts from.
    pub start: u32,
    /// `--beams B`.
    pub beams: u32,
    /// `--length-penalty X` (default 1).
    pub length_penalty: f32,
    /// `--early-stopping` (default false).
    pub early_stopping: EarlyStoppingArg,
    /// `--eos T` (repeatable).
    pub eos: Vec<u32>,
    /// `--max-new-tokens N` (default 16).
    pub max_new_tokens: u32,
    /// `--num-return-sequences K` (default 1).
    pub num_return_sequences: u32,
    /// `--backend cpu|gpu` (default cpu).
    pub backend: Backend,
}

/// Which subcommand is being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    Dist,
    Sample,
    Generate,
    Beam,
}

impl Sub {
    fn name(self) -> &'static str {
        match self {
            Sub::Dist => "dist",
            Sub::Sample => "sample",
            Sub::Generate => "generate",
            Sub::Beam => "beam",
        }
    }
}

/// The commands, as listed in messages.
const COMMANDS: &str = "`dist`, `sample`, `generate` or `beam`";

/// One known flag: its name, whether it may be given more than once, and
/// which subcommands take it.
struct Flag {
    name: &'static str,
    repeatable: bool,
    subs: &'static [Sub],
}

const FILE_INPUT: &[Sub] = &[Sub::Dist, Sub::Sample];
const SAMPLING: &[Sub] = &[Sub::Dist, Sub::Sample, Sub::Generate];
const BIGRAM: &[Sub] = &[Sub::Generate, Sub::Beam];
const RUNS: &[Sub] = &[Sub::Sample, Sub::Generate, Sub::Beam];

const fn once(name: &'static str, subs: &'static [Sub]) -> Flag {
    Flag {
        name,
        repeatable: false,
        subs,
    }
}

const fn repeat(name: &'static str, subs: &'static [Sub]) -> Flag {
    Flag {
        name,
        repeatable: true,
        subs,
    }
}

/// Every flag the CLI knows (all take a value).
const FLAGS: &[Flag] = &[
    once("--logits", FILE_INPUT),
    once("--vocab", FILE_INPUT),
    once("--row", &[Sub::Dist]),
    once("--steps", &[Sub::Sample]),
    once("--backend", RUNS),
    once("--temperature", SAMPLING),
    once("--top-k", SAMPLING),
    once("--top-p", SAMPLING),
    once("--min-p", SAMPLING),
    once("--repetition-penalty", SAMPLING),
    once("--presence-penalty", SAMPLING),
    once("--frequency-penalty", SAMPLING),
    repeat("--logit-bias", SAMPLING),
    repeat("--ban", SAMPLING),
    once("--allow", SAMPLING),
    repeat("--eos", &[Sub::Dist, Sub::Sample, Sub::Generate, Sub::Beam]),
    once("--min-new-tokens", SAMPLING),
    once("--seed", SAMPLING),
    once("--prompt-tokens", FILE_INPUT),
    once("--output-tokens", FILE_INPUT),
    once("--bigram", BIGRAM),
    once("--start", BIGRAM),
    once("--max-new-tokens", BIGRAM),
    repeat("--stop-tokens", &[Sub::Generate]),
    once("--batch", &[Sub::Generate]),
    once("--beams", &[Sub::Beam]),
    once("--length-penalty", &[Sub::Beam]),
    once("--early-stopping", &[Sub::Beam]),
    once("--num-return-sequences", &[Sub::Beam]),
];

fn find_flag(name: &str) -> Option<&'static Flag> {
    FLAGS.iter().find(|f| f.name == name)
}

/// Shows a user-supplied value in a message, quoted and shortened so that
/// the message stays one readable line.
fn shown(value: &str) -> String {
    let mut s: String = value.chars().take(40).collect();
    if value.chars().count() > 40 {
        s.push_str("...");
    }
    format!("'{}'", s.escape_debug())
}

fn parse_f32(flag: &str, value: &str) -> Result<f32, UsageError> {
    match value.trim().parse::<f32>() {
        Ok(x) => Ok(x),
        Err(_) => fail(format!("{flag}: {} is not a number", shown(value))),
    }
}

fn parse_uint<T: FromStr + fmt::Display>(flag: &str, value: &str, max: T) -> Result<T, UsageError> {
    let v = value.trim();
    // `FromStr` for integers accepts a leading `+`; keep that, but give a
    // negative number the same message as any other non-integer.
    match v.parse::<T>() {
        Ok(x) => Ok(x),
        Err(_) => fail(format!(
            "{flag}: {} is not a non-negative integer (at most {max})",
            shown(value)
        )),
    }
}

fn parse_token(flag: &str, value: &str) -> Result<u32, UsageError> {
    match value.trim().parse::<u32>() {
        Ok(t) => Ok(t),
        Err(_) => fail(format!("{flag}: {} is not a token id", shown(value))),
    }
}

/// `T1,T2,...`: at least one token id. Every list flag (`--allow`,
/// `--prompt-tokens`, `--output-tokens`, `--stop-tokens`) refuses the empty
/// list the same way: an empty `--allow` would mask every token and an
/// empty stop sequence would match everywhere, so an empty value is far
/// more likely a mistake (an unset shell variable) than a request; leave
/// the flag out instead.
fn parse_token_list(flag: &str, value: &str) -> Result<Vec<u32>, UsageError> {
    if value.trim().is_empty() {
        return fail(format!(
            "{flag} needs at least one token id (leave the flag out for none)"
        ));
    }
    value.split(',').map(|t| parse_token(flag, t)).collect()
}

/// `--steps` is at most this (a decode loop of a million steps).
pub const MAX_STEPS: u32 = 1_000_000;
/// `--max-new-tokens` is at most this.
pub const MAX_NEW_TOKENS: u32 = 1_000_000;
/// `--batch` is at most this (rows of one `generate`).
pub const MAX_BATCH: u32 = 65_536;
/// The most tokens one command may print: `sample`'s `--steps` times the
/// file's rows, `generate`'s `--batch` times `--max-new-tokens`. The whole
/// result is held in memory and printed as one JSON line (about 20 bytes a
/// token with its logprob), so this bounds the memory a run can take.
pub const MAX_OUTPUT_TOKENS: u64 = 10_000_000;

/// Parses a count flag and refuses values above `cap`, naming the cap (a
/// count sizes allocations, so an absurd value is an error up front rather
/// than an allocation failure later).
fn parse_count(flag: &str, value: &str, cap: u32) -> Result<u32, UsageError> {
    let n: u64 = parse_uint(flag, value, u64::from(cap))?;
    match u32::try_from(n) {
        Ok(n) if n <= cap => Ok(n),
        _ => fail(format!("{flag} {n} is above the limit of {cap}")),
    }
}

/// `TOKEN=BIAS`.
fn parse_bias(flag: &str, value: &str) -> Result<(u32, f32), UsageError> {
    let Some((tok, bias)) = value.split_once('=') else {
        return fail(format!("{flag}: expected TOKEN=BIAS, got {}", shown(value)));
    };
    Ok((parse_token(flag, tok)?, parse_f32(flag, bias)?))
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(Command::Help);
    }
    let Some(first) = args.first() else {
        return fail(format!(
            "no command given (expected {COMMANDS}; see --help)"
        ));
    };
    let sub = match first.as_str() {
        "help" => return Ok(Command::Help),
        "dist" => Sub::Dist,
        "sample" => Sub::Sample,
        "generate" => Sub::Generate,
        "beam" => Sub::Beam,
        other if other.starts_with('-') => {
            return fail(format!(
                "expected a command ({COMMANDS}) before {}; see --help",
                shown(other)
            ));
        }
        other => {
            return fail(format!(
                "unknown command {} (expected {COMMANDS}; see --help)",
                shown(other)
            ));
        }
    };

    let mut logits: Option<PathBuf> = None;
    let mut vocab = None;
    let mut row = 0usize;
    let mut steps = 1u32;
    let mut backend = Backend::Cpu;
    let mut p = ParamArgs::default();
    let mut bigram: Option<PathBuf> = None;
    let mut start: Option<u32> = None;
    let mut max_new_tokens = 16u32;
    let mut stop_tokens: Vec<Vec<u32>> = Vec::new();
    let mut batch = 1u32;
    let mut beams: Option<u32> = None;
    let mut length_penalty = 1.0f32;
    let mut early_stopping = EarlyStoppingArg::False;
    let mut num_return_sequences = 1u32;
    let mut seen: Vec<&'static str> = Vec::new();
    let mut explain = false;

    let mut i = 1;
    while let Some(arg) = args.get(i) {
        i += 1;
        if !arg.starts_with("--") {
            if arg.starts_with('-') && arg.len() > 1 {
                return fail(format!("unknown option {} (see --help)", shown(arg)));
            }
            return fail(format!("unexpected argument {} (see --help)", shown(arg)));
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg.as_str(), None),
        };
        if name == "--explain" {
            // The one switch without a value.
            if sub != Sub::Sample {
                return fail(format!(
                    "--explain is not an option of `{}` (see --help)",
                    sub.name()
                ));
            }
            if inline.is_some() {
                return fail("--explain takes no value");
            }
            if explain {
                return fail("--explain is given more than once");
            }
            explain = true;
            continue;
        }
        let Some(flag) = find_flag(name) else {
            return fail(format!("unknown option {} (see --help)", shown(name)));
        };
        if !flag.subs.contains(&sub) {
            return fail(format!(
                "{} is not an option of `{}` (see --help)",
                flag.name,
                sub.name()
            ));
        }
        let value: &str = match inline {
            Some(v) => v,
            None => match args.get(i) {
                Some(next) if !is_known_flag(next) => {
                    i += 1;
                    next
                }
                _ => return fail(format!("{} needs a value (see --help)", flag.name)),
            },
        };
        if !flag.repeatable {
            if seen.contains(&flag.name) {
                return fail(format!("{} is given more than once", flag.name));
            }
            seen.push(flag.name);
        }
        let n = flag.name;
        let sp = &mut p.params;
        match n {
            "--logits" => {
                if value.is_empty() {
                    return fail("--logits needs a file name");
                }
                logits = Some(PathBuf::from(value));
            }
            "--vocab" => vocab = Some(parse_uint(n, value, usize::MAX)?),
            "--row" => row = parse_uint(n, value, usize::MAX)?,
            "--steps" => steps = parse_count(n, value, MAX_STEPS)?,
            "--backend" => {
                backend = match value.trim() {
                    "cpu" => Backend::Cpu,
                    "gpu" => Backend::Gpu,
                    _ => {
                        return fail(format!(
                            "--backend: unknown backend {} (expected cpu or gpu)",
                            shown(value)
                        ));
                    }
                }
            }
            "--temperature" => sp.temperature = parse_f32(n, value)?,
            "--top-k" => sp.top_k = parse_uint(n, value, u32::MAX)?,
            "--top-p" => sp.top_p = parse_f32(n, value)?,
            "--min-p" => sp.min_p = parse_f32(n, value)?,
            "--repetition-penalty" => sp.repetition_penalty = parse_f32(n, value)?,
            "--presence-penalty" => sp.presence_penalty = parse_f32(n, value)?,
            "--frequency-penalty" => sp.frequency_penalty = parse_f32(n, value)?,
            "--logit-bias" => sp.logit_bias.push(parse_bias(n, value)?),
            "--ban" => sp.banned_tokens.push(parse_token(n, value)?),
            "--allow" => p.allow = Some(parse_token_list(n, value)?),
            "--eos" => sp.eos_token_ids.push(parse_token(n, value)?),
            "--min-new-tokens" => sp.min_new_tokens = parse_uint(n, value, u32::MAX)?,
            "--seed" => sp.seed = parse_uint(n, value, u64::MAX)?,
            "--prompt-tokens" => p.prompt_tokens = parse_token_list(n, value)?,
            "--output-tokens" => p.output_tokens = parse_token_list(n, value)?,
            "--bigram" => {
                if value.is_empty() {
                    return fail("--bigram needs a file name");
                }
                bigram = Some(PathBuf::from(value));
            }
            "--start" => start = Some(parse_token(n, value)?),
            "--max-new-tokens" => max_new_tokens = parse_count(n, value, MAX_NEW_TOKENS)?,
            "--stop-tokens" => stop_tokens.push(parse_token_list(n, value)?),
            "--batch" => {
                batch = parse_count(n, value, MAX_BATCH)?;
                if batch == 0 {
                    return fail("--batch must be at least 1");
                }
            }
            "--beams" => {
                let b = parse_uint(n, value, u32::MAX)?;
                if b == 0 {
                    return fail("--beams must be at least 1");
                }
                beams = Some(b);
            }
            "--length-penalty" => {
                length_penalty = parse_f32(n, value)?;
                if !length_penalty.is_finite() {
                    return fail(format!("--length-penalty: {} is not finite", shown(value)));
                }
            }
            "--early-stopping" => {
                early_stopping = match value.trim() {
                    "true" => EarlyStoppingArg::True,
                    "false" => EarlyStoppingArg::False,
                    "never" => EarlyStoppingArg::Never,
                    _ => {
                        return fail(format!(
                            "--early-stopping: {} is not one of true, false, never",
                            shown(value)
                        ));
                    }
                }
            }
            "--num-return-sequences" => {
                num_return_sequences = parse_uint(n, value, u32::MAX)?;
                if num_return_sequences == 0 {
                    return fail("--num-return-sequences must be at least 1");
                }
            }
            // Every name in FLAGS has an arm above; this one is only reached
            // if the table and the match drift apart.
            other => return fail(format!("option {other} is not handled (a bug in wgsample)")),
        }
    }

    if matches!(sub, Sub::Generate | Sub::Beam) {
        let Some(bigram) = bigram else {
            return fail(format!("`{}` needs --bigram FILE (see --help)", sub.name()));
        };
        let Some(start) = start else {
            return fail(format!("`{}` needs --start T (see --help)", sub.name()));
        };
        if sub == Sub::Generate {
            let total = u64::from(batch) * u64::from(max_new_tokens);
            if total > MAX_OUTPUT_TOKENS {
                return fail(format!(
                    "--batch {batch} x --max-new-tokens {max_new_tokens} = {total} tokens is above \
                     the limit of {MAX_OUTPUT_TOKENS} tokens per run"
                ));
            }
            return Ok(Command::Generate(GenerateArgs {
                bigram,
                start,
                params: p,
                max_new_tokens,
                stop_tokens,
                batch,
                backend,
            }));
        }
        let Some(beams) = beams else {
            return fail("`beam` needs --beams B (see --help)");
        };
        if num_return_sequences > beams {
            return fail(format!(
                "--num-return-sequences {num_return_sequences} is more than --beams {beams}"
            ));
        }
        return Ok(Command::Beam(BeamArgs {
            bigram,
            start,
            beams,
            length_penalty,
            early_stopping,
            eos: p.params.eos_token_ids,
            max_new_tokens,
            num_return_sequences,
            backend,
        }));
    }
    let Some(logits) = logits else {
        return fail(format!("`{}` needs --logits FILE (see --help)", sub.name()));
    };
    let input = Input { logits, vocab };
    // `generate` and `beam` returned above.
    Ok(if sub == Sub::Dist {
        Command::Dist(DistArgs {
            input,
            params: p,
            row,
        })
    } else {
        if explain && backend != Backend::Gpu {
            return fail("--explain shows the GPU plan: it needs --backend gpu");
        }
        Command::Sample(SampleArgs {
            input,
            params: p,
            steps,
            backend,
            explain,
        })
    })
}

/// True when `word` is a flag this CLI knows (with or without `=VALUE`),
/// so it cannot be the value of the flag before it.
fn is_known_flag(word: &str) -> bool {
    let name = word.split_once('=').map_or(word, |(n, _)| n);
    name.starts_with("--") && (name == "--explain" || find_flag(name).is_some())
}

/// The text `--help` prints.
pub const USAGE: &str = "\
wgsample: next-token sampling from a file of logits (the contract is SPEC.md).

Usage:
  wgsample dist     --logits FILE [--vocab V] [--row R] [PARAMS]
  wgsample sample   --logits FILE [--vocab V] [--steps N] [--backend cpu|gpu] [--explain]
                    [PARAMS]
  wgsample generate --bigram FILE --start T [--max-new-tokens N] [--stop-tokens T1,T2]
                    [--batch B] [--backend cpu|gpu] [PARAMS]
  wgsample beam     --bigram FILE --start T --beams B [--length-penalty X]
                    [--early-stopping true|false|never] [--eos T] [--max-new-tokens N]
                    [--num-return-sequences K] [--backend cpu|gpu]
  wgsample --help

Commands:
  dist    Print the final filtered distribution of one row (SPEC steps 1-9),
          most probable first, as one JSON line:
            {\"status\": \"ok\", \"tokens\": [...], \"probs\": [...]}
          A row with status invalid_logits or no_candidates prints empty lists.
  sample  Sample every row and print one JSON line with one entry per row:
            {\"rows\": [{\"tokens\": [...], \"logprobs\": [...], \"status\": \"ok\"}, ...]}
          logprobs are log-probabilities under the raw logits. With
          --backend gpu --explain the line also holds the GPU plan of the
          last step: \"plan\": {\"dispatches\": N, \"dense_passes\": D,
          \"passes\": [{\"label\": ..., \"grid\": [x, y, z], \"dense\": ...}, ...]}
          (dense: the dispatch reads whole rows of the logits).
  generate  Decode with a bigram model (row t of the [V, V] table holds the
          next-token logits after token t), one sequence per batch row, all
          starting from --start, and print one JSON line:
            {\"sequences\": [{\"tokens\": [...], \"stop_reason\": \"eos\"}, ...]}
          tokens include the EOS id or stop sequence that ended the row;
          stop_reason is eos, stop_sequence or max_new_tokens (or
          invalid_logits / no_candidates when the sampler gave no token).
          On the GPU the model step is a gather pass reading the previous
          tokens from the sampler's output on the device.
  beam    Beam search (HF semantics, SPEC.md) over the bigram model, from
          --start, and print the best sequences, best first:
            {\"sequences\": [{\"tokens\": [...], \"score\": X}, ...]}

Input:
  --logits FILE            .npy file (float32 '<f4' or float16 '<f2', shape [V]
                           or [B, V], C order, format version 1.0, 2.0 or 3.0),
                           or raw little-endian float32 rows if FILE does not
                           start with the .npy magic (then --vocab is needed)
  --vocab V                row length of a raw float32 file (checked against a
                           .npy file's shape if given with one)
  --row R                  dist: the row to show (default 0)
  --steps N                sample: sample the same logits N times (default 1)
                           like a decode loop: token counts and the random
                           step carry over; a row stops at the first step whose
                           status is not ok, keeping the tokens it got before.
                           The result is printed at the end, so N is at most
                           1000000 and N x (rows in FILE) at most 10000000
  --backend cpu|gpu        sample, generate, beam: backend to run on (default
                           cpu; gpu falls back to cpu, saying so, when there
                           is no adapter)

Bigram model (generate, beam):
  --bigram FILE            .npy file of shape [V, V] (float32 or float16):
                           row t = next-token logits after token t
  --start T                the token every sequence starts from (its prompt)
  --max-new-tokens N       stop after N generated tokens (default 16; at most
                           1000000)
  --stop-tokens T1,T2,...  generate: stop when the tokens end with this
                           sequence (repeatable; counts once --min-new-tokens
                           tokens are generated)
  --batch B                generate: rows to decode (default 1, at most 65536;
                           B x --max-new-tokens at most 10000000 and B x V at
                           most 268435456); with --seed S row r gets seed S + r
  --beams B                beam: beams per search (required)
  --length-penalty X       beam: score = sum of logprobs / length^X (default 1)
  --early-stopping E       beam: true, false (default) or never
  --num-return-sequences K beam: sequences to print, K <= B (default 1)

Sampling parameters (dist, sample, generate; the same for every row):
  --temperature F          0 = greedy argmax (default 1)
  --top-k N                keep the N most likely, ties kept (default 0 = off)
  --top-p F                nucleus mass in (0, 1] (default 1 = off)
  --min-p F                keep p >= F * p_max, F in [0, 1) (default 0 = off)
  --repetition-penalty F   > 0, over prompt and output tokens (default 1 = off)
  --presence-penalty F     subtracted once per generated token (default 0)
  --frequency-penalty F    times the count of each generated token (default 0)
  --logit-bias TOKEN=BIAS  add BIAS to TOKEN's logit (repeatable)
  --ban TOKEN              never choose TOKEN (repeatable)
  --allow T1,T2,...        choose only among these tokens
  --eos TOKEN              end-of-sequence id, masked while fewer than
                           --min-new-tokens tokens are generated (repeatable;
                           sampling it does not stop `sample --steps`; it ends
                           a `generate` row, and a `beam` hypothesis)
  --min-new-tokens N       (default 0)
  --seed S                 seed of every row's random stream (default 0)
  --prompt-tokens T1,...   dist, sample: prompt token ids (for the repetition
                           penalty)
  --output-tokens T1,...   dist, sample: token ids generated so far (for the
                           penalties and --min-new-tokens)

Every option also accepts the form --option=VALUE. Token ids must be < V.
A token list (--allow, --stop-tokens, --prompt-tokens, --output-tokens) needs
at least one id: an empty value is an error (leave the flag out instead).

Exit status: 0 on success (JSON on stdout); 2 on bad input or usage, with one
line on stderr starting with \"error: \"; 1 if the output could not be written;
101 on an internal error (a bug in wgsample).
";

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn every_flag_has_an_arm() {
        for f in FLAGS {
            for &sub in f.subs {
                let value = match f.name {
                    "--backend" => "cpu",
                    "--logit-bias" => "1=2",
                    "--early-stopping" => "never",
                    _ => "1",
                };
                let mut a = args(&[sub.name(), f.name, value]);
                let needs: &[&str] = match sub {
                    Sub::Dist | Sub::Sample => &["--logits"],
                    Sub::Generate => &["--bigram", "--start"],
                    Sub::Beam => &["--bigram", "--start", "--beams"],
                };
                for n in needs {
                    if *n != f.name {
                        a.extend(args(&[n, "1"]));
                    }
                }
                assert!(
                    parse(&a).is_ok(),
                    "{} {}: {:?}",
                    sub.name(),
                    f.name,
                    parse(&a)
                );
            }
        }
    }

    #[test]
    fn generate_and_beam() {
        let Command::Generate(g) = parse(&args(&[
            "generate",
            "--bigram",
            "b.npy",
            "--start=3",
            "--stop-tokens",
            "1,2",
            "--stop-tokens=4",
            "--eos",
            "5",
            "--batch",
            "2",
            "--seed",
            "9",
        ]))
        .unwrap() else {
            panic!()
        };
        assert_eq!(g.start, 3);
        assert_eq!(g.stop_tokens, vec![vec![1, 2], vec![4]]);
        assert_eq!(g.params.params.eos_token_ids, vec![5]);
        assert_eq!(
            (g.batch, g.max_new_tokens, g.params.params.seed),
            (2, 16, 9)
        );
        let Command::Beam(b) = parse(&args(&[
            "beam",
            "--bigram",
            "b.npy",
            "--start",
            "0",
            "--beams",
            "3",
            "--early-stopping",
            "true",
            "--num-return-sequences",
            "2",
        ]))
        .unwrap() else {
            panic!()
        };
        assert_eq!((b.beams, b.num_return_sequences), (3, 2));
        assert_eq!(b.early_stopping, EarlyStoppingArg::True);
        for bad in [
            &["generate", "--bigram", "b"][..],
            &["generate", "--start", "1"],
            &["generate", "--bigram", "b", "--start", "1", "--batch", "0"],
            &[
                "generate",
                "--bigram",
                "b",
                "--start",
                "1",
                "--stop-tokens",
                "",
            ],
            &["generate", "--bigram", "b", "--start", "1", "--beams", "2"],
            &["generate", "--bigram", "b", "--start", "1", "--logits", "x"],
            &["beam", "--bigram", "b", "--start", "1"],
            &[
                "beam", "--bigram", "b", "--start", "1", "--beams", "2", "--top-k", "3",
            ],
            &[
                "beam",
                "--bigram",
                "b",
                "--start",
                "1",
                "--beams",
                "2",
                "--early-stopping",
                "maybe",
            ],
            &[
                "beam",
                "--bigram",
                "b",
                "--start",
                "1",
                "--beams",
                "2",
                "--num-return-sequences",
                "3",
            ],
            &["beam", "--bigram", "b", "--start", "1", "--beams", "0"],
            &["sample", "--logits", "x", "--bigram", "b"],
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn equals_form_and_negative_values() {
        let Command::Sample(s) = parse(&args(&[
            "sample",
            "--logits=f.npy",
            "--presence-penalty",
            "-0.5",
            "--logit-bias=3=-2",
            "--steps=4",
        ]))
        .unwrap() else {
            panic!()
        };
        assert_eq!(s.params.params.presence_penalty, -0.5);
        assert_eq!(s.params.params.logit_bias, vec![(3, -2.0)]);
        assert_eq!(s.steps, 4);
    }

    #[test]
    fn errors() {
        for bad in [
            &["dist"][..],
            &["dist", "--logits"],
            &["dist", "--logits", "f", "--top-k", "--seed", "1"],
            &["dist", "--logits", "f", "--top-k", "-1"],
            &["dist", "--logits", "f", "--steps", "2"],
            &["dist", "--logits", "f", "--seed", "1", "--seed", "2"],
            &["dist", "--logits", "f", "--bogus", "1"],
            &["dist", "--logits", "f", "extra"],
            &["frob"],
            &[],
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
