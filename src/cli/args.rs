//! Command-line parsing for `wgsample dist` and `wgsample sample`.
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
}

/// Which subcommand is being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    Dist,
    Sample,
}

impl Sub {
    fn name(self) -> &'static str {
        match self {
            Sub::Dist => "dist",
            Sub::Sample => "sample",
        }
    }
}

/// One known flag: its name, whether it may be given more than once, and
/// which subcommands take it.
struct Flag {
    name: &'static str,
    repeatable: bool,
    dist: bool,
    sample: bool,
}

const fn both(name: &'static str) -> Flag {
    Flag {
        name,
        repeatable: false,
        dist: true,
        sample: true,
    }
}

const fn repeat(name: &'static str) -> Flag {
    Flag {
        name,
        repeatable: true,
        dist: true,
        sample: true,
    }
}

/// Every flag the CLI knows (all take a value).
const FLAGS: &[Flag] = &[
    both("--logits"),
    both("--vocab"),
    Flag {
        name: "--row",
        repeatable: false,
        dist: true,
        sample: false,
    },
    Flag {
        name: "--steps",
        repeatable: false,
        dist: false,
        sample: true,
    },
    Flag {
        name: "--backend",
        repeatable: false,
        dist: false,
        sample: true,
    },
    both("--temperature"),
    both("--top-k"),
    both("--top-p"),
    both("--min-p"),
    both("--repetition-penalty"),
    both("--presence-penalty"),
    both("--frequency-penalty"),
    repeat("--logit-bias"),
    repeat("--ban"),
    both("--allow"),
    repeat("--eos"),
    both("--min-new-tokens"),
    both("--seed"),
    both("--prompt-tokens"),
    both("--output-tokens"),
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

/// `T1,T2,...`; an empty string is the empty list.
fn parse_token_list(flag: &str, value: &str) -> Result<Vec<u32>, UsageError> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    value.split(',').map(|t| parse_token(flag, t)).collect()
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
        return fail("no command given (expected `dist` or `sample`; see --help)");
    };
    let sub = match first.as_str() {
        "help" => return Ok(Command::Help),
        "dist" => Sub::Dist,
        "sample" => Sub::Sample,
        other if other.starts_with('-') => {
            return fail(format!(
                "expected a command (`dist` or `sample`) before {}; see --help",
                shown(other)
            ));
        }
        other => {
            return fail(format!(
                "unknown command {} (expected `dist` or `sample`; see --help)",
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
    let mut seen: Vec<&'static str> = Vec::new();

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
        let Some(flag) = find_flag(name) else {
            return fail(format!("unknown option {} (see --help)", shown(name)));
        };
        let allowed_here = match sub {
            Sub::Dist => flag.dist,
            Sub::Sample => flag.sample,
        };
        if !allowed_here {
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
            "--steps" => steps = parse_uint(n, value, u32::MAX)?,
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
            // Every name in FLAGS has an arm above; this one is only reached
            // if the table and the match drift apart.
            other => return fail(format!("option {other} is not handled (a bug in wgsample)")),
        }
    }

    let Some(logits) = logits else {
        return fail(format!("`{}` needs --logits FILE (see --help)", sub.name()));
    };
    let input = Input { logits, vocab };
    Ok(match sub {
        Sub::Dist => Command::Dist(DistArgs {
            input,
            params: p,
            row,
        }),
        Sub::Sample => Command::Sample(SampleArgs {
            input,
            params: p,
            steps,
            backend,
        }),
    })
}

/// True when `word` is a flag this CLI knows (with or without `=VALUE`),
/// so it cannot be the value of the flag before it.
fn is_known_flag(word: &str) -> bool {
    let name = word.split_once('=').map_or(word, |(n, _)| n);
    name.starts_with("--") && find_flag(name).is_some()
}

/// The text `--help` prints.
pub const USAGE: &str = "\
wgsample: next-token sampling from a file of logits (the contract is SPEC.md).

Usage:
  wgsample dist   --logits FILE [--vocab V] [--row R] [PARAMS]
  wgsample sample --logits FILE [--vocab V] [--steps N] [--backend cpu|gpu] [PARAMS]
  wgsample --help

Commands:
  dist    Print the final filtered distribution of one row (SPEC steps 1-9),
          most probable first, as one JSON line:
            {\"status\": \"ok\", \"tokens\": [...], \"probs\": [...]}
          A row with status invalid_logits or no_candidates prints empty lists.
  sample  Sample every row and print one JSON line with one entry per row:
            {\"rows\": [{\"tokens\": [...], \"logprobs\": [...], \"status\": \"ok\"}, ...]}
          logprobs are log-probabilities under the raw logits.

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
                           status is not ok, keeping the tokens it got before
  --backend cpu|gpu        sample: backend to run on (default cpu; gpu falls
                           back to cpu, saying so, when there is no adapter)

Sampling parameters (the same for every row):
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
                           sampling it does not stop `sample --steps`)
  --min-new-tokens N       (default 0)
  --seed S                 seed of every row's random stream (default 0)
  --prompt-tokens T1,...   prompt token ids (for the repetition penalty)
  --output-tokens T1,...   token ids generated so far (for the penalties and
                           --min-new-tokens)

Every option also accepts the form --option=VALUE. Token ids must be < V.

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
            let sub = if f.dist { "dist" } else { "sample" };
            let value = match f.name {
                "--backend" => "cpu",
                "--logit-bias" => "1=2",
                _ => "1",
            };
            let mut a = args(&[sub, f.name, value]);
            if f.name != "--logits" {
                a.extend(args(&["--logits", "x"]));
            }
            assert!(parse(&a).is_ok(), "{}", f.name);
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
