//! Command-line parsing for `wgsample dist`, `sample`, `generate`, `beam`
//! and `verify`, declared with clap's derive API.
//!
//! Why it is shaped this way: every flag is declared once, on the struct
//! field it fills, with its value name, default and help text, so clap
//! checks which subcommand takes which flag, catches unknown and repeated
//! flags, and writes `--help` from the same declarations (defaults
//! included). What clap does not decide is kept to three places:
//!
//! - Values: every value goes through a [`FlagValue`] parser that knows its
//!   flag's name, so a bad value is one line that names the flag and shows
//!   the user's text shortened (`--top-k: '1.5' is not a non-negative
//!   integer ...`), and counts that size allocations are refused above
//!   their limits up front. A value may start with `-` (`--presence-penalty
//!   -0.5`, `--frequency-penalty -inf`), so every value flag accepts
//!   hyphenated values ([`command`]); a value that is itself one of the
//!   CLI's flags is reported missing instead, which is what a user who
//!   wrote `--top-k --seed 3` most likely meant.
//! - Errors: clap's own errors (unknown or misplaced flag, a flag given
//!   twice, a missing flag or command) are reworded into one line by
//!   [`one_line`], so the CLI's "exactly one `error: ` line" holds for them
//!   too; clap's suggestion ("a similar argument exists") is kept on that
//!   line.
//! - Rules between flags (`--explain` needs `--backend gpu`,
//!   `--num-return-sequences` at most `--beams`, `--batch` times
//!   `--max-new-tokens` bounded) are checked in [`parse`] after clap.
//!
//! Range checks of sampling parameters are left to the library
//! ([`wgsample::SamplingParams::validate`], [`wgsample::RowState::validate`]),
//! which needs the vocabulary size from the file and already words its
//! errors for users; the CLI never keeps a second copy of those rules.
//!
//! Help is one page for every command ([`help_text`]): `-h` or `--help`
//! anywhere, or `help` first, prints the whole reference, as the tool did
//! before clap.

use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::ffi::OsStr;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::OnceLock;
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

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `-h`, `--help` or `help`: print the usage text ([`help_text`]).
    Help,
    /// `wgsample dist ...`.
    Dist(DistArgs),
    /// `wgsample sample ...`.
    Sample(SampleArgs),
    /// `wgsample generate ...`.
    Generate(GenerateArgs),
    /// `wgsample beam ...`.
    Beam(BeamArgs),
    /// `wgsample verify ...`.
    Verify(VerifyArgs),
}

/// The whole command line as clap sees it.
#[derive(Parser, Debug)]
#[command(
    name = "wgsample",
    about = "wgsample: next-token sampling from a file of logits (the contract is SPEC.md).",
    subcommand_required = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Sub,
}

/// The commands.
#[derive(Subcommand, Debug)]
enum Sub {
    Dist(DistArgs),
    Sample(SampleArgs),
    Generate(GenerateArgs),
    Beam(BeamArgs),
    Verify(VerifyArgs),
}

/// The commands, as listed in messages.
const COMMANDS: &str = "`dist`, `sample`, `generate`, `beam` or `verify`";

/// The commands' names, in the order `--help` shows them.
const COMMAND_NAMES: [&str; 5] = ["dist", "sample", "generate", "beam", "verify"];

/// Where the logits come from.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct Input {
    /// .npy file (float32 '<f4' or float16 '<f2', shape (V,) or (B, V), C
    /// order, format version 1.0, 2.0 or 3.0), or raw little-endian float32
    /// rows if FILE does not start with the .npy magic (then --vocab is
    /// needed)
    #[arg(long, value_name = "FILE", value_parser = FlagValue::new(path))]
    pub logits: PathBuf,
    /// Row length of a raw float32 file (checked against a .npy file's
    /// shape if given with one)
    #[arg(long, value_name = "V", value_parser = FlagValue::new(uint::<usize>))]
    pub vocab: Option<usize>,
}

/// A list of token ids, `T1,T2,...` (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenList(pub Vec<u32>);

/// The sampling flags, applied to every row (`dist`, `sample`,
/// `generate`). The allowed-token bitmask needs the vocabulary size, so
/// [`SamplingArgs::params`] leaves it `None` and the CLI builds it from
/// [`SamplingArgs::allow`] once the file is read.
#[derive(Args, Debug, Clone, PartialEq)]
#[command(next_help_heading = "Sampling parameters (the same for every row)")]
pub struct SamplingArgs {
    /// 0 = greedy argmax
    #[arg(long, value_name = "F", default_value = "1", value_parser = FlagValue::new(float))]
    pub temperature: f32,
    /// Keep the N most likely, ties kept (0 = off)
    #[arg(long, value_name = "N", default_value = "0", value_parser = FlagValue::new(uint::<u32>))]
    pub top_k: u32,
    /// Nucleus mass in (0, 1] (1 = off)
    #[arg(long, value_name = "F", default_value = "1", value_parser = FlagValue::new(float))]
    pub top_p: f32,
    /// Keep p >= F * p_max, F in [0, 1) (0 = off)
    #[arg(long, value_name = "F", default_value = "0", value_parser = FlagValue::new(float))]
    pub min_p: f32,
    /// > 0, over prompt and output tokens (1 = off)
    #[arg(long, value_name = "F", default_value = "1", value_parser = FlagValue::new(float))]
    pub repetition_penalty: f32,
    /// Subtracted once per generated token
    #[arg(long, value_name = "F", default_value = "0", value_parser = FlagValue::new(float))]
    pub presence_penalty: f32,
    /// Times the count of each generated token
    #[arg(long, value_name = "F", default_value = "0", value_parser = FlagValue::new(float))]
    pub frequency_penalty: f32,
    /// Add BIAS to TOKEN's logit (repeatable)
    #[arg(long, value_name = "TOKEN=BIAS", value_parser = FlagValue::new(bias))]
    pub logit_bias: Vec<(u32, f32)>,
    /// Never choose TOKEN (repeatable)
    #[arg(long, value_name = "TOKEN", value_parser = FlagValue::new(token))]
    pub ban: Vec<u32>,
    /// Choose only among these tokens
    #[arg(long, value_name = "T1,T2,...", value_parser = FlagValue::new(token_list))]
    pub allow: Option<TokenList>,
    /// End-of-sequence id, masked while fewer than --min-new-tokens tokens
    /// are generated (repeatable; sampling it does not stop `sample
    /// --steps`; it ends a `generate` row)
    #[arg(long, value_name = "TOKEN", value_parser = FlagValue::new(token))]
    pub eos: Vec<u32>,
    /// Tokens to generate before EOS and stop sequences count
    #[arg(long, value_name = "N", default_value = "0", value_parser = FlagValue::new(uint::<u32>))]
    pub min_new_tokens: u32,
    /// Seed of every row's random stream
    #[arg(long, value_name = "S", default_value = "0", value_parser = FlagValue::new(uint::<u64>))]
    pub seed: u64,
}

impl SamplingArgs {
    /// The library's parameters, without the allowed-token mask.
    pub fn params(&self) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repetition_penalty: self.repetition_penalty,
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            logit_bias: self.logit_bias.clone(),
            banned_tokens: self.ban.clone(),
            allowed_tokens: None,
            eos_token_ids: self.eos.clone(),
            min_new_tokens: self.min_new_tokens,
            seed: self.seed,
            top_logprobs: 0,
        }
    }
}

/// The token history of a `dist` / `sample` row.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct HistoryArgs {
    /// Prompt token ids (for the repetition penalty)
    #[arg(long, value_name = "T1,...", value_parser = FlagValue::new(token_list))]
    pub prompt_tokens: Option<TokenList>,
    /// Token ids generated so far (for the penalties and --min-new-tokens)
    #[arg(long, value_name = "T1,...", value_parser = FlagValue::new(token_list))]
    pub output_tokens: Option<TokenList>,
}

impl HistoryArgs {
    /// `--prompt-tokens` (empty when not given).
    pub fn prompt(&self) -> &[u32] {
        self.prompt_tokens.as_ref().map_or(&[], |t| &t.0)
    }

    /// `--output-tokens` (empty when not given).
    pub fn output(&self) -> &[u32] {
        self.output_tokens.as_ref().map_or(&[], |t| &t.0)
    }
}

/// Arguments of `wgsample dist`.
#[derive(Args, Debug, Clone, PartialEq)]
#[command(
    about = "Print the final filtered distribution of one row (SPEC steps 1-9)",
    long_about = "Print the final filtered distribution of one row (SPEC steps 1-9),\n\
                  most probable first, as one JSON line:\n  \
                  {\"status\": \"ok\", \"tokens\": [...], \"probs\": [...]}\n\
                  A row with status invalid_logits or no_candidates prints empty lists."
)]
pub struct DistArgs {
    /// The logits file.
    #[command(flatten)]
    pub input: Input,
    /// The row to show
    #[arg(long, value_name = "R", default_value = "0", value_parser = FlagValue::new(uint::<usize>))]
    pub row: usize,
    /// The sampling flags.
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// The row's token history.
    #[command(flatten)]
    pub history: HistoryArgs,
}

/// Which backend a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The CPU backend (default).
    Cpu,
    /// The wgpu backend.
    Gpu,
}

/// Arguments of `wgsample sample`.
#[derive(Args, Debug, Clone, PartialEq)]
#[command(
    about = "Sample every row and print one JSON line with one entry per row",
    long_about = "Sample every row and print one JSON line with one entry per row:\n  \
                  {\"rows\": [{\"tokens\": [...], \"logprobs\": [...], \"status\": \"ok\"}, ...]}\n\
                  logprobs are log-probabilities under the raw logits. With --top-logprobs\n\
                  N each row also holds, after \"logprobs\", one list per step of the N\n\
                  most probable tokens under the raw logits, most probable first, and\n\
                  the rank of each sampled token (1 + the tokens with a larger logit):\n  \
                  \"top_logprobs\": [[{\"token\": T, \"logprob\": X}, ...], ...], \"ranks\": [...]\n\
                  With --backend gpu --explain the line also holds the GPU plan of the\n\
                  last step:\n  \
                  \"plan\": {\"dispatches\": N, \"dense_passes\": D,\n  \
                  \"passes\": [{\"label\": ..., \"grid\": [x, y, z], \"dense\": ...}, ...]}\n\
                  (dense: the dispatch reads whole rows of the logits)."
)]
pub struct SampleArgs {
    /// The logits file.
    #[command(flatten)]
    pub input: Input,
    /// Sample the same logits N times like a decode loop: token counts and
    /// the random step carry over; a row stops at the first step whose
    /// status is not ok, keeping the tokens it got before. The result is
    /// printed at the end, so N is at most 1000000 and N x (rows in FILE)
    /// at most 10000000
    #[arg(long, value_name = "N", default_value = "1", value_parser = FlagValue::new(count::<MAX_STEPS>))]
    pub steps: u32,
    /// Backend to run on (gpu falls back to cpu, saying so, when there is
    /// no adapter)
    #[arg(long, value_name = "cpu|gpu", default_value = "cpu", value_parser = FlagValue::with_choices(backend, &["cpu", "gpu"]))]
    pub backend: Backend,
    /// Add the GPU plan of the last step to the output (needs --backend
    /// gpu)
    #[arg(long)]
    pub explain: bool,
    /// Also print the N most probable tokens of each step with their
    /// logprobs, and the sampled tokens' ranks (0 to 20; 0 = off)
    #[arg(long, value_name = "N", default_value = "0", value_parser = FlagValue::new(count::<{ wgsample::MAX_TOP_LOGPROBS }>))]
    pub top_logprobs: u32,
    /// The sampling flags.
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// The rows' token history.
    #[command(flatten)]
    pub history: HistoryArgs,
}

/// Arguments of `wgsample generate`.
#[derive(Args, Debug, Clone, PartialEq)]
#[command(
    about = "Decode with a bigram model, one sequence per batch row",
    long_about = "Decode with a bigram model (row t of the [V, V] table holds the\n\
                  next-token logits after token t), one sequence per batch row, all\n\
                  starting from --start, and print one JSON line:\n  \
                  {\"sequences\": [{\"tokens\": [...], \"stop_reason\": \"eos\"}, ...]}\n\
                  tokens include the EOS id or stop sequence that ended the row;\n\
                  stop_reason is eos, stop_sequence or max_new_tokens (or\n\
                  invalid_logits / no_candidates when the sampler gave no token).\n\
                  On the GPU the model step is a gather pass reading the previous\n\
                  tokens from the sampler's output on the device."
)]
pub struct GenerateArgs {
    /// .npy file of shape [V, V] (float32 or float16): row t = next-token
    /// logits after token t
    #[arg(long, value_name = "FILE", value_parser = FlagValue::new(path))]
    pub bigram: PathBuf,
    /// The token every sequence starts from (its prompt)
    #[arg(long, value_name = "T", value_parser = FlagValue::new(token))]
    pub start: u32,
    /// Stop after N generated tokens (at most 1000000)
    #[arg(long, value_name = "N", default_value = "16", value_parser = FlagValue::new(count::<MAX_NEW_TOKENS>))]
    pub max_new_tokens: u32,
    /// Stop when the tokens end with this sequence (repeatable; counts once
    /// --min-new-tokens tokens are generated)
    #[arg(long, value_name = "T1,T2,...", value_parser = FlagValue::new(token_list))]
    pub stop_tokens: Vec<TokenList>,
    /// Rows to decode (at most 65536; B x --max-new-tokens at most 10000000
    /// and B x V at most 268435456); with --seed S row r gets seed S + r
    #[arg(long, value_name = "B", default_value = "1", value_parser = FlagValue::new(batch))]
    pub batch: u32,
    /// Backend to run on (gpu falls back to cpu, saying so, when there is
    /// no adapter)
    #[arg(long, value_name = "cpu|gpu", default_value = "cpu", value_parser = FlagValue::with_choices(backend, &["cpu", "gpu"]))]
    pub backend: Backend,
    /// The sampling flags (`--eos` and `--min-new-tokens` included; the
    /// seed is row 0's, row `r` gets `seed + r`).
    #[command(flatten)]
    pub sampling: SamplingArgs,
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
#[derive(Args, Debug, Clone, PartialEq)]
#[command(
    about = "Beam search over the bigram model; prints the best sequences",
    long_about = "Beam search (HF semantics, SPEC.md) over the bigram model, from\n\
                  --start, and print the best sequences, best first:\n  \
                  {\"sequences\": [{\"tokens\": [...], \"score\": X}, ...]}"
)]
pub struct BeamArgs {
    /// .npy file of shape [V, V] (float32 or float16): row t = next-token
    /// logits after token t
    #[arg(long, value_name = "FILE", value_parser = FlagValue::new(path))]
    pub bigram: PathBuf,
    /// The token the search starts from (its prompt)
    #[arg(long, value_name = "T", value_parser = FlagValue::new(token))]
    pub start: u32,
    /// Beams per search
    #[arg(long, value_name = "B", value_parser = FlagValue::new(at_least_one))]
    pub beams: u32,
    /// Score = sum of logprobs / length^X
    #[arg(long, value_name = "X", default_value = "1", value_parser = FlagValue::new(finite_float))]
    pub length_penalty: f32,
    /// When a search stops (HF semantics)
    #[arg(
        long,
        value_name = "E",
        default_value = "false",
        value_parser = FlagValue::with_choices(early_stopping, &["true", "false", "never"])
    )]
    pub early_stopping: EarlyStoppingArg,
    /// End-of-sequence id: it ends a hypothesis (repeatable)
    #[arg(long, value_name = "TOKEN", value_parser = FlagValue::new(token))]
    pub eos: Vec<u32>,
    /// Stop after N generated tokens (at most 1000000)
    #[arg(long, value_name = "N", default_value = "16", value_parser = FlagValue::new(count::<MAX_NEW_TOKENS>))]
    pub max_new_tokens: u32,
    /// Sequences to print, K <= B
    #[arg(long, value_name = "K", default_value = "1", value_parser = FlagValue::new(at_least_one))]
    pub num_return_sequences: u32,
    /// Backend to run on (gpu falls back to cpu, saying so, when there is
    /// no adapter)
    #[arg(long, value_name = "cpu|gpu", default_value = "cpu", value_parser = FlagValue::with_choices(backend, &["cpu", "gpu"]))]
    pub backend: Backend,
}

/// The draft tokens of `wgsample verify`: `B` rows of `k >= 1` token ids
/// each (`--draft-tokens "3,5,7;1,2,2"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftRows {
    /// Draft tokens per row.
    pub k: usize,
    /// The `B * k` tokens, row-major.
    pub tokens: Vec<u32>,
}

impl DraftRows {
    /// The number of rows `B`.
    pub fn rows(&self) -> usize {
        self.tokens.len() / self.k
    }
}

/// Arguments of `wgsample verify`.
#[derive(Args, Debug, Clone, PartialEq)]
#[command(
    about = "Verify draft tokens against target logits (speculative decoding)",
    long_about = "Verify draft tokens against the target model's logits (speculative\n\
                  decoding, SPEC.md): each row accepts a prefix of its k drafts and\n\
                  adds a recovered token (at the first rejection) or a bonus token (when\n\
                  all k are accepted); prints one JSON line with one entry per row:\n  \
                  {\"rows\": [{\"tokens\": [...], \"accepted\": n, \"logprobs\": [...],\n  \
                  \"status\": \"ok\"}, ...]}\n\
                  tokens are the 1 to k+1 emitted tokens; logprobs are theirs under the\n\
                  raw target logits of their positions. The sampling flags apply to\n\
                  every row, as for sample; with --seed S row r gets seed S + r."
)]
pub struct VerifyArgs {
    /// .npy file (float32 '<f4' or float16 '<f2') of the target logits at
    /// the k+1 positions: shape [k+1, V] (one row) or [B, k+1, V]
    #[arg(long, value_name = "FILE", value_parser = FlagValue::new(path))]
    pub target: PathBuf,
    /// The draft tokens: B rows of k >= 1 ids, rows separated by ';',
    /// tokens by ',' (e.g. "3,5,7;1,2,2"); k is at most 32 with --backend
    /// gpu
    #[arg(long, value_name = "T1,..;T1,..", value_parser = FlagValue::new(draft_rows))]
    pub draft_tokens: DraftRows,
    /// .npy file (float32 '<f4') of the draft model's probabilities, shape
    /// [k, V] (one row) or [B, k, V], each row of V values summing to 1
    /// (within 1e-3) and giving its draft token a probability above 0;
    /// without it the drafts count as one-hot (greedy or n-gram drafters)
    #[arg(long, value_name = "FILE", value_parser = FlagValue::new(path))]
    pub draft_probs: Option<PathBuf>,
    /// Backend to run on (gpu falls back to cpu, saying so, when there is
    /// no adapter)
    #[arg(long, value_name = "cpu|gpu", default_value = "cpu", value_parser = FlagValue::with_choices(backend, &["cpu", "gpu"]))]
    pub backend: Backend,
    /// The sampling flags (the seed is row 0's, row `r` gets `seed + r`).
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// The rows' token history before the drafts.
    #[command(flatten)]
    pub history: HistoryArgs,
}

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

/// A clap value parser that knows its flag's name: `parse(flag, value)`
/// returns the value or the whole one-line message. A value that is itself
/// one of the CLI's flags is reported as a missing value (every value flag
/// accepts hyphenated values, see [`command`]).
#[derive(Clone)]
pub struct FlagValue<T> {
    parse: fn(&str, &str) -> Result<T, String>,
    choices: &'static [&'static str],
}

impl<T> FlagValue<T> {
    /// A parser for any text `parse` accepts.
    pub fn new(parse: fn(&str, &str) -> Result<T, String>) -> Self {
        FlagValue {
            parse,
            choices: &[],
        }
    }

    /// A parser for one of `choices` (listed in `--help`).
    pub fn with_choices(
        parse: fn(&str, &str) -> Result<T, String>,
        choices: &'static [&'static str],
    ) -> Self {
        FlagValue { parse, choices }
    }
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for FlagValue<T> {
    type Value = T;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let flag = arg
            .and_then(clap::Arg::get_long)
            .map_or_else(|| "a value".to_string(), |l| format!("--{l}"));
        let fail = |msg: String| clap::Error::raw(ErrorKind::ValueValidation, msg);
        // The process's arguments are checked for UTF-8 before parsing.
        let Some(text) = value.to_str() else {
            return Err(fail(format!("{flag}: the value is not valid UTF-8")));
        };
        if is_known_flag(text) {
            return Err(fail(format!("{flag} needs a value (see --help)")));
        }
        (self.parse)(&flag, text).map_err(fail)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        if self.choices.is_empty() {
            return None;
        }
        Some(Box::new(self.choices.iter().map(PossibleValue::new)))
    }
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

fn float(flag: &str, value: &str) -> Result<f32, String> {
    value
        .trim()
        .parse::<f32>()
        .map_err(|_| format!("{flag}: {} is not a number", shown(value)))
}

fn finite_float(flag: &str, value: &str) -> Result<f32, String> {
    let x = float(flag, value)?;
    if !x.is_finite() {
        return Err(format!("{flag}: {} is not finite", shown(value)));
    }
    Ok(x)
}

/// A non-negative integer of type `T` (`FromStr` for integers accepts a
/// leading `+`; a negative number gets the same message as any other
/// non-integer).
fn uint<T: FromStr + Bounded>(flag: &str, value: &str) -> Result<T, String> {
    value.trim().parse::<T>().map_err(|_| {
        format!(
            "{flag}: {} is not a non-negative integer (at most {})",
            shown(value),
            T::MAX_TEXT
        )
    })
}

/// The unsigned integer types of the flags, with their maximum for
/// messages.
trait Bounded {
    const MAX_TEXT: &'static str;
}

impl Bounded for u32 {
    const MAX_TEXT: &'static str = "4294967295";
}

impl Bounded for u64 {
    const MAX_TEXT: &'static str = "18446744073709551615";
}

impl Bounded for usize {
    #[cfg(target_pointer_width = "64")]
    const MAX_TEXT: &'static str = "18446744073709551615";
    #[cfg(not(target_pointer_width = "64"))]
    const MAX_TEXT: &'static str = "4294967295";
}

/// A count that sizes allocations, refused above `CAP` with a message that
/// names the cap (an error up front rather than an allocation failure
/// later).
fn count<const CAP: u32>(flag: &str, value: &str) -> Result<u32, String> {
    let n = value.trim().parse::<u64>().map_err(|_| {
        format!(
            "{flag}: {} is not a non-negative integer (at most {CAP})",
            shown(value)
        )
    })?;
    match u32::try_from(n) {
        Ok(n) if n <= CAP => Ok(n),
        _ => Err(format!("{flag} {n} is above the limit of {CAP}")),
    }
}

/// `--batch`: a count of at least 1.
fn batch(flag: &str, value: &str) -> Result<u32, String> {
    match count::<MAX_BATCH>(flag, value)? {
        0 => Err(format!("{flag} must be at least 1")),
        n => Ok(n),
    }
}

/// `--beams`, `--num-return-sequences`: at least 1.
fn at_least_one(flag: &str, value: &str) -> Result<u32, String> {
    match uint::<u32>(flag, value)? {
        0 => Err(format!("{flag} must be at least 1")),
        n => Ok(n),
    }
}

fn token(flag: &str, value: &str) -> Result<u32, String> {
    value
        .trim()
        .parse::<u32>()
        .map_err(|_| format!("{flag}: {} is not a token id", shown(value)))
}

/// `T1,T2,...`: at least one token id. Every list flag (`--allow`,
/// `--prompt-tokens`, `--output-tokens`, `--stop-tokens`) refuses the empty
/// list the same way: an empty `--allow` would mask every token and an
/// empty stop sequence would match everywhere, so an empty value is far
/// more likely a mistake (an unset shell variable) than a request; leave
/// the flag out instead.
fn token_list(flag: &str, value: &str) -> Result<TokenList, String> {
    if value.trim().is_empty() {
        return Err(format!(
            "{flag} needs at least one token id (leave the flag out for none)"
        ));
    }
    value
        .split(',')
        .map(|t| token(flag, t))
        .collect::<Result<_, _>>()
        .map(TokenList)
}

/// `--draft-tokens`: rows separated by `;`, token ids by `,`; every row
/// holds the same number `k >= 1` of ids.
fn draft_rows(flag: &str, value: &str) -> Result<DraftRows, String> {
    let mut k = None;
    let mut tokens = Vec::new();
    for (r, row) in value.split(';').enumerate() {
        if row.trim().is_empty() {
            return Err(format!(
                "{flag}: row {r} has no draft tokens (verify needs k >= 1 per row; \
                 rows are separated by ';', tokens by ',')"
            ));
        }
        let before = tokens.len();
        for t in row.split(',') {
            tokens.push(token(flag, t)?);
        }
        let n = tokens.len() - before;
        match k {
            None => k = Some(n),
            Some(k) if k != n => {
                return Err(format!(
                    "{flag}: row {r} has {n} draft token{} but row 0 has {k} (every row needs \
                     the same number k)",
                    if n == 1 { "" } else { "s" }
                ));
            }
            Some(_) => {}
        }
    }
    // `split` yields at least one row, and every row holds at least one id.
    let k = k.unwrap_or(1);
    Ok(DraftRows { k, tokens })
}

/// `TOKEN=BIAS`.
fn bias(flag: &str, value: &str) -> Result<(u32, f32), String> {
    let Some((tok, b)) = value.split_once('=') else {
        return Err(format!("{flag}: expected TOKEN=BIAS, got {}", shown(value)));
    };
    Ok((token(flag, tok)?, float(flag, b)?))
}

fn path(flag: &str, value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err(format!("{flag} needs a file name"));
    }
    Ok(PathBuf::from(value))
}

fn backend(flag: &str, value: &str) -> Result<Backend, String> {
    match value.trim() {
        "cpu" => Ok(Backend::Cpu),
        "gpu" => Ok(Backend::Gpu),
        _ => Err(format!(
            "{flag}: unknown backend {} (expected cpu or gpu)",
            shown(value)
        )),
    }
}

fn early_stopping(flag: &str, value: &str) -> Result<EarlyStoppingArg, String> {
    match value.trim() {
        "true" => Ok(EarlyStoppingArg::True),
        "false" => Ok(EarlyStoppingArg::False),
        "never" => Ok(EarlyStoppingArg::Never),
        _ => Err(format!(
            "{flag}: {} is not one of true, false, never",
            shown(value)
        )),
    }
}

// ---------------------------------------------------------------------------
// The command, parsing and errors
// ---------------------------------------------------------------------------

/// The clap command: the derived one, with hyphenated values allowed for
/// every flag that takes a value (so `--presence-penalty -0.5` and
/// `--temperature -inf` reach [`FlagValue`], which reports a known flag in
/// a value's place as a missing value), and a hidden catch-all positional
/// in each command (`STRAY`). The positional is there for the order of
/// errors: clap reports a word it cannot place before it parses the value
/// of the flag before it, so without it `--top-k --seed 1` would be
/// "unexpected argument '1'" rather than "--top-k needs a value"; [`parse`]
/// reports a stray word itself once the flags parsed.
pub fn command() -> clap::Command {
    let hyphens = |a: clap::Arg| {
        if a.get_action().takes_values() {
            a.allow_hyphen_values(true)
        } else {
            a
        }
    };
    let stray = clap::Arg::new(STRAY)
        .hide(true)
        .num_args(1..)
        .action(clap::ArgAction::Append);
    let mut cmd = Cli::command().mut_subcommands(move |s| s.mut_args(hyphens).arg(stray.clone()));
    // Gives every subcommand its full name (`wgsample dist`) in usage lines.
    cmd.build();
    cmd
}

/// The id of the hidden positional that collects stray words ([`command`]).
const STRAY: &str = "stray words";

/// Every long flag of every command, `--` included (computed once).
pub fn flag_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: Vec<String> = Cli::command()
            .get_subcommands()
            .flat_map(|s| s.get_arguments().filter_map(|a| a.get_long()))
            .filter(|l| *l != "help")
            .map(|l| format!("--{l}"))
            .collect();
        names.sort();
        names.dedup();
        names
    })
}

/// True when `word` is a flag this CLI knows (with or without `=VALUE`),
/// so it cannot be the value of the flag before it.
fn is_known_flag(word: &str) -> bool {
    let name = word.split_once('=').map_or(word, |(n, _)| n);
    name.starts_with("--") && flag_names().iter().any(|f| f == name)
}

/// The subcommands that take `flag` (`--top-k`), by name.
fn commands_taking(flag: &str) -> Vec<&'static str> {
    let long = flag.trim_start_matches('-');
    COMMAND_NAMES
        .into_iter()
        .filter(|s| {
            Cli::command()
                .find_subcommand(s)
                .is_some_and(|c| c.get_arguments().any(|a| a.get_long() == Some(long)))
        })
        .collect()
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    if args.iter().any(|a| a == "-h" || a == "--help") || args.first().is_some_and(|a| a == "help")
    {
        return Ok(Command::Help);
    }
    let argv = std::iter::once("wgsample").chain(args.iter().map(String::as_str));
    let clap_error = |e: clap::Error| UsageError(one_line(&e, args));
    let matches = command().try_get_matches_from(argv).map_err(clap_error)?;
    if let Some((_, sub)) = matches.subcommand()
        && let Some(word) = sub.get_many::<String>(STRAY).and_then(|mut w| w.next())
    {
        return Err(UsageError(format!(
            "unexpected argument {} (see --help)",
            shown(word)
        )));
    }
    let cli = Cli::from_arg_matches(&matches).map_err(clap_error)?;
    match cli.command {
        Sub::Dist(a) => Ok(Command::Dist(a)),
        Sub::Sample(a) => {
            if a.explain && a.backend != Backend::Gpu {
                return Err(UsageError(
                    "--explain shows the GPU plan: it needs --backend gpu".into(),
                ));
            }
            Ok(Command::Sample(a))
        }
        Sub::Generate(a) => {
            let total = u64::from(a.batch) * u64::from(a.max_new_tokens);
            if total > MAX_OUTPUT_TOKENS {
                return Err(UsageError(format!(
                    "--batch {} x --max-new-tokens {} = {total} tokens is above the limit of \
                     {MAX_OUTPUT_TOKENS} tokens per run",
                    a.batch, a.max_new_tokens
                )));
            }
            Ok(Command::Generate(a))
        }
        Sub::Verify(a) => Ok(Command::Verify(a)),
        Sub::Beam(a) => {
            if a.num_return_sequences > a.beams {
                return Err(UsageError(format!(
                    "--num-return-sequences {} is more than --beams {}",
                    a.num_return_sequences, a.beams
                )));
            }
            Ok(Command::Beam(a))
        }
    }
}

/// The text of a string or strings context of a clap error.
fn context(e: &clap::Error, kind: ContextKind) -> Vec<String> {
    match e.get(kind) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(v)) => v.clone(),
        Some(ContextValue::StyledStr(s)) => vec![s.to_string()],
        Some(ContextValue::StyledStrs(v)) => v.iter().map(|s| s.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// The flag of an argument as clap shows it (`--top-k <N>` -> `--top-k`).
fn flag_of(shown_arg: &str) -> &str {
    shown_arg.split([' ', '=']).next().unwrap_or(shown_arg)
}

/// Rewords a clap error as one line: the CLI's own wording for the errors
/// users meet (a flag of another command, an unknown flag or command, a
/// flag given twice or without a value, a missing flag or command), with
/// clap's suggestion for a mistyped flag or command kept on that line;
/// anything else is the first line of clap's message.
pub fn one_line(e: &clap::Error, args: &[String]) -> String {
    let sub = args
        .first()
        .map(String::as_str)
        .filter(|a| COMMAND_NAMES.contains(a));
    let invalid = context(e, ContextKind::InvalidArg);
    let first_invalid = invalid.first().map(String::as_str).unwrap_or("");
    let suggestion = context(e, ContextKind::SuggestedArg)
        .into_iter()
        .chain(context(e, ContextKind::SuggestedSubcommand))
        .next();
    let tip = suggestion.map_or(String::new(), |s| format!("; a similar one exists: '{s}'"));
    match e.kind() {
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            format!("no command given (expected {COMMANDS}; see --help)")
        }
        ErrorKind::InvalidSubcommand => {
            let word = context(e, ContextKind::InvalidSubcommand)
                .into_iter()
                .next()
                .unwrap_or_default();
            format!(
                "unknown command {} (expected {COMMANDS}{tip}; see --help)",
                shown(&word)
            )
        }
        ErrorKind::UnknownArgument => {
            let word = flag_of(first_invalid);
            let Some(sub) = sub else {
                return format!(
                    "expected a command ({COMMANDS}) before {}; see --help",
                    shown(first_invalid)
                );
            };
            let takers = commands_taking(word);
            if word.starts_with("--") && !takers.is_empty() {
                format!(
                    "{word} is not an option of `{sub}` (it is an option of `{}`; see --help)",
                    takers.join("`, `")
                )
            } else if word.starts_with('-') && word.len() > 1 {
                format!("unknown option {}{tip} (see --help)", shown(first_invalid))
            } else {
                format!("unexpected argument {} (see --help)", shown(first_invalid))
            }
        }
        ErrorKind::ArgumentConflict => {
            let prior = context(e, ContextKind::PriorArg);
            if prior.iter().any(|p| p == first_invalid) {
                format!("{} is given more than once", flag_of(first_invalid))
            } else {
                first_line(e)
            }
        }
        ErrorKind::MissingRequiredArgument => {
            let mut missing: Vec<String> =
                invalid.iter().map(|a| a.replace(['<', '>'], "")).collect();
            let last = missing.pop().unwrap_or_default();
            let list = if missing.is_empty() {
                last
            } else {
                format!("{} and {last}", missing.join(", "))
            };
            format!("`{}` needs {list} (see --help)", sub.unwrap_or("wgsample"))
        }
        ErrorKind::InvalidValue
            if context(e, ContextKind::InvalidValue)
                .iter()
                .all(|v| v.is_empty()) =>
        {
            format!("{} needs a value (see --help)", flag_of(first_invalid))
        }
        ErrorKind::TooManyValues if !first_invalid.is_empty() => {
            format!("{} takes no value", flag_of(first_invalid))
        }
        _ => first_line(e),
    }
}

/// The first line of clap's rendered message, without its `error: `.
fn first_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let line = text.lines().next().unwrap_or("");
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

/// The text `--help` prints: clap's help of the tool, then of each command
/// (each flag on one line, with its default), headed by what the command
/// prints, then the rules that hold for all of them.
pub fn help_text() -> String {
    let mut cmd = command();
    let mut out = cmd.render_help().to_string();
    for name in COMMAND_NAMES {
        if let Some(sub) = cmd.find_subcommand(name) {
            // The short help, headed by the long description (the output's
            // shape) instead of the one-line summary.
            let mut sub = match sub.get_long_about() {
                Some(about) => sub.clone().about(about.clone()),
                None => sub.clone(),
            };
            out.push('\n');
            out.push_str(&sub.render_help().to_string());
        }
    }
    out.push('\n');
    out.push_str(NOTES);
    out
}

/// What holds for every command, at the end of `--help`.
const NOTES: &str = "\
Every option also accepts the form --option=VALUE. Token ids must be < V.
A token list (--allow, --stop-tokens, --prompt-tokens, --output-tokens) needs
at least one id: an empty value is an error (leave the flag out instead);
so does every row of --draft-tokens.

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
    fn the_command_is_well_formed() {
        command().debug_assert();
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
        assert_eq!(
            g.stop_tokens,
            vec![TokenList(vec![1, 2]), TokenList(vec![4])]
        );
        assert_eq!(g.sampling.params().eos_token_ids, vec![5]);
        assert_eq!((g.batch, g.max_new_tokens, g.sampling.seed), (2, 16, 9));
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
    fn verify_and_its_draft_rows() {
        let Command::Verify(v) = parse(&args(&[
            "verify",
            "--target",
            "t.npy",
            "--draft-tokens",
            "3,5,7; 1,2,2",
            "--draft-probs=q.npy",
            "--seed",
            "4",
            "--top-k",
            "5",
            "--backend",
            "gpu",
        ]))
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            v.draft_tokens,
            DraftRows {
                k: 3,
                tokens: vec![3, 5, 7, 1, 2, 2]
            }
        );
        assert_eq!(v.draft_tokens.rows(), 2);
        assert_eq!(v.draft_probs, Some(PathBuf::from("q.npy")));
        assert_eq!((v.sampling.seed, v.sampling.top_k), (4, 5));
        assert_eq!(v.backend, Backend::Gpu);
        for (bad, needle) in [
            ("", "row 0 has no draft tokens"),
            ("1,2;", "row 1 has no draft tokens"),
            ("1;2,3", "row 1 has 2 draft tokens but row 0 has 1"),
            ("1,-2", "'-2' is not a token id"),
        ] {
            let e = parse(&args(&["verify", "--target", "t", "--draft-tokens", bad])).unwrap_err();
            assert!(e.0.contains(needle), "{bad:?}: {e}");
        }
        assert!(
            parse(&args(&[
                "verify",
                "--target",
                "t",
                "--draft-tokens",
                "1",
                "--steps",
                "2"
            ]))
            .unwrap_err()
            .0
            .contains("--steps is not an option of `verify`")
        );
    }

    #[test]
    fn equals_form_and_negative_values() {
        let Command::Sample(s) = parse(&args(&[
            "sample",
            "--logits=f.npy",
            "--presence-penalty",
            "-0.5",
            "--frequency-penalty",
            "-inf",
            "--logit-bias=3=-2",
            "--steps=4",
        ]))
        .unwrap() else {
            panic!()
        };
        assert_eq!(s.sampling.presence_penalty, -0.5);
        assert_eq!(s.sampling.frequency_penalty, f32::NEG_INFINITY);
        assert_eq!(s.sampling.logit_bias, vec![(3, -2.0)]);
        assert_eq!(s.steps, 4);
    }

    #[test]
    fn errors_are_one_line_and_name_the_flag() {
        for (bad, needle) in [
            (&["dist"][..], "`dist` needs --logits FILE"),
            (&["dist", "--logits"], "--logits needs a value"),
            (
                &["dist", "--logits", "f", "--top-k", "--seed", "1"],
                "--top-k needs a value",
            ),
            (&["dist", "--logits", "f", "--top-k", "-1"], "--top-k: '-1'"),
            (
                &["dist", "--logits", "f", "--steps", "2"],
                "--steps is not an option of `dist`",
            ),
            (
                &["dist", "--logits", "f", "--seed", "1", "--seed", "2"],
                "--seed is given more than once",
            ),
            (
                &["dist", "--logits", "f", "--bogus", "1"],
                "unknown option '--bogus'",
            ),
            (
                &["dist", "--logits", "f", "extra"],
                "unexpected argument 'extra'",
            ),
            (
                &["sample", "--logits", "f", "--explain"],
                "needs --backend gpu",
            ),
            (
                &["sample", "--logits", "f", "--explain=1"],
                "--explain takes no value",
            ),
            (&["frob"], "unknown command 'frob'"),
            (&["--seed", "1"], "expected a command"),
            (&[], "no command given"),
        ] {
            let e = parse(&args(bad)).unwrap_err();
            assert!(e.0.contains(needle), "{bad:?}: {e}");
            assert!(!e.0.contains('\n'), "{bad:?}: {e}");
        }
    }

    #[test]
    fn help_anywhere_and_every_flag_in_it() {
        for a in [
            &["-h"][..],
            &["help"],
            &["dist", "--logits", "--help"],
            &["beam", "-h"],
        ] {
            assert_eq!(parse(&args(a)), Ok(Command::Help), "{a:?}");
        }
        let help = help_text();
        for flag in flag_names() {
            assert!(help.contains(flag.as_str()), "--help lacks {flag}");
        }
    }
}
