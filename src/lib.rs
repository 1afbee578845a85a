//! wgsample: next-token sampling for language models, on the GPU where the
//! logits already are (wgpu/WGSL), with a CPU backend that follows the same
//! contract.
//!
//! The contract is SPEC.md (shipped in the README's semantics section):
//! input check, masks, logit bias, penalties, greedy, temperature, min-p,
//! top-k, top-p, Gumbel-max sampling with a Philox4x32-10 stream keyed by
//! the row's seed and step. Both backends implement it identically, so a
//! row's token depends only on its own logits, parameters, seed and step.
//!
//! The crate is shaped around that contract: [`SamplingParams`] and
//! [`RowState`] own the defaults and ranges, [`rng`] the random stream,
//! [`CpuSampler`] is the fast host backend (and the reference the GPU is
//! tested against), [`gpu`] the wgpu backend, [`decode`] and [`beam`] the
//! decoders built on both. Test harnesses (the GPU Philox and `ln`
//! helpers, the argmax pass, the CPU's vector kernels, the host twins of
//! the WGSL helpers) sit behind the `testing` cargo feature in
//! `wgsample::testing`; the crate's own tests turn it on.
//!
//! # Architecture
//!
//! ```text
//! (cli/)                   the wgsample tool: package wgsample-cli, public API only
//! beam, decode             features built on both backends
//! cpu, gpu                 the two backends; neither imports the other
//! params, rng, twins, error  the contract's pieces and the WGSL helpers' host twins
//! ```
//!
//! Each layer imports only from the layers below it. [`shader_sources`]
//! (every shader, for the browser check) is gathered here, at the top.
//!
//! # Where each SPEC step lives
//!
//! The CPU column names the function in `src/cpu/row.rs` (private; one per
//! step, called in SPEC order by `filter` and `sample_row`). The GPU column
//! names the pass and the line that starts the step in `shaders/sampler/`
//! (a unit test checks that each of those lines says `Step N`). The GPU's
//! passes are `overlay` (one workgroup a row, only for rows with a ban,
//! EOS, bias or penalty), `scan` (the one pass that reads the whole row)
//! and `finish` (one workgroup a row).
//!
//! | SPEC step | CPU (`src/cpu/row.rs`) | GPU pass | GPU location |
//! |---|---|---|---|
//! | 1 input check | `check_input` | scan | `scan.wgsl:77` |
//! | 2 masks | `apply_masks` | scan (allowed bitmask), overlay (bans, EOS) | `bindings.wgsl:320`, `overlay.wgsl:109` |
//! | 3 logit bias | `apply_bias` | overlay | `overlay.wgsl:113` |
//! | 4 penalties | `apply_penalties` | overlay | `overlay.wgsl:117` |
//! | 5 greedy | `greedy` | finish | `finish.wgsl:445` |
//! | 6 temperature | `scale_temperature`, `temperature_overflow` | scan, finish | `bindings.wgsl:365`, `finish.wgsl:450` |
//! | 6-9 fused, unprocessed rows with top-k | `top_k_fused` | (scan keeps 64 candidates a chunk) | |
//! | 7 min-p | `min_p` | finish | `finish.wgsl:486` |
//! | 8 top-k | `top_k` | finish | `finish.wgsl:503` |
//! | 9 top-p | `top_p` (`top_p_cut`) | finish | `finish.wgsl:527` |
//! | 10 Gumbel-max | `gumbel_argmax` | scan (rows without filters), finish | `scan.wgsl:128`, `finish.wgsl:223` |
//! | 11 status and logprob | `sample_row`, `raw_logprob` | finish | `finish.wgsl:258` |
//! | 12 state update | [`RowState::record`] | finish | `finish.wgsl:258` |

pub mod beam;
mod cpu;
pub mod decode;
mod error;
pub mod gpu;
mod params;
pub mod rng;
#[cfg(feature = "testing")]
pub mod testing;
mod twins;
pub mod verify;

pub use cpu::{CpuSampler, Distribution, filtered_distribution};
pub use error::{Error, Result};
pub use params::{RowState, SamplingParams, allowed_mask};
pub use verify::{Drafts, VerifyOutput, check_drafts};

/// Every compute shader the crate dispatches, as `(name, full WGSL source,
/// entry point)`, exactly as handed to `create_shader_module`: the GPU
/// backend's passes, then the decode loop's and beam search's (and, with
/// the `testing` feature, the test harnesses'). Used by the portability
/// check that compiles them with a browser's WebGPU implementation
/// (`scripts/check_shaders.sh`); an engine can run the same check on its
/// own targets.
pub fn shader_sources() -> Vec<(String, String, &'static str)> {
    let mut v = gpu::shader_sources();
    v.extend(decode::shader_sources());
    v.extend(beam::shader_sources());
    v
}

/// The token value given to rows that got no token (status not `Ok`).
pub const NO_TOKEN: u32 = u32::MAX;

/// Outcome of sampling one row (SPEC.md step 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// A token was sampled.
    Ok,
    /// The row held NaN or +inf: no token (`NO_TOKEN`).
    InvalidLogits,
    /// Masks, bias and penalties left every token at -inf: no token.
    NoCandidates,
    /// Speculative-decoding verification only, on the GPU with draft
    /// probabilities or draft tokens in a device buffer: a draft row of `q`
    /// did not sum to 1 within 1e-3, held a negative or non-finite value,
    /// or gave its draft token probability 0, or a draft token read by
    /// `GpuSampler::record_verify_device` was `>= V`. The row emits nothing
    /// and its state does not advance. (Host slices are checked before
    /// anything runs and give an [`Error`] instead.)
    InvalidDraft,
}

impl Status {
    /// The snake_case name used in the CLI's JSON (`ok`, `invalid_logits`,
    /// `no_candidates`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::InvalidLogits => "invalid_logits",
            Status::NoCandidates => "no_candidates",
            Status::InvalidDraft => "invalid_draft",
        }
    }

    /// The numeric code the GPU writes (0 ok, 1 invalid logits, 2 no
    /// candidates); `None` for any other value.
    pub fn from_code(code: u32) -> Option<Status> {
        match code {
            0 => Some(Status::Ok),
            1 => Some(Status::InvalidLogits),
            2 => Some(Status::NoCandidates),
            3 => Some(Status::InvalidDraft),
            _ => None,
        }
    }

    /// The numeric code of this status (see [`Status::from_code`]).
    pub fn code(self) -> u32 {
        match self {
            Status::Ok => 0,
            Status::InvalidLogits => 1,
            Status::NoCandidates => 2,
            Status::InvalidDraft => 3,
        }
    }
}

/// The result for one row: the token, its log-probability under the raw
/// input logits (`log_softmax` of the unprocessed row), and the status.
/// When `status != Ok`, `token == NO_TOKEN` and `logprob` is NaN (the
/// logprob is also NaN from a `CpuSampler` with logprobs turned off).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowOutput {
    /// Sampled token id, or [`NO_TOKEN`].
    pub token: u32,
    /// `log_softmax(raw logits)[token]`, NaN when there is no token.
    pub logprob: f32,
    /// What happened to the row.
    pub status: Status,
}

/// The largest [`SamplingParams::top_logprobs`]: 20, as in the OpenAI API.
pub const MAX_TOP_LOGPROBS: u32 = 20;

/// One entry of a top-logprobs list: a token and its logprob under the raw
/// input logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenLogprob {
    /// Token id.
    pub token: u32,
    /// `log_softmax(raw logits)[token]`, computed like
    /// [`RowOutput::logprob`].
    pub logprob: f32,
}

/// A row's top log-probabilities (SPEC.md "Top log-probabilities"), when
/// its [`SamplingParams::top_logprobs`] `N` is above 0 and its status is
/// `Ok`: the `N` most probable tokens under the raw `log_softmax`
/// (`min(N, V)` of them; a raw logit of -inf counts as least probable),
/// most probable first, ties to the lower id, and the sampled token's
/// rank. Otherwise `rank == 0` and `entries` is empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TopLogprobs {
    /// 1 + the number of tokens whose raw logit is strictly greater than
    /// the sampled token's (vLLM's rank); 0 when the row returned none.
    pub rank: u32,
    /// The `N` most probable tokens, most probable first.
    pub entries: Vec<TokenLogprob>,
}

/// A borrowed `[B, V]` batch of logits, row-major, in one of the supported
/// element types. f16 and bf16 are widened exactly to f32.
#[derive(Debug, Clone, Copy)]
pub enum Logits<'a> {
    /// 32-bit floats.
    F32(&'a [f32]),
    /// IEEE half precision.
    F16(&'a [half::f16]),
    /// bfloat16.
    Bf16(&'a [half::bf16]),
}

impl Logits<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Logits::F32(x) => x.len(),
            Logits::F16(x) => x.len(),
            Logits::Bf16(x) => x.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a> From<&'a [f32]> for Logits<'a> {
    fn from(x: &'a [f32]) -> Self {
        Logits::F32(x)
    }
}
impl<'a> From<&'a Vec<f32>> for Logits<'a> {
    fn from(x: &'a Vec<f32>) -> Self {
        Logits::F32(x)
    }
}
impl<'a> From<&'a [half::f16]> for Logits<'a> {
    fn from(x: &'a [half::f16]) -> Self {
        Logits::F16(x)
    }
}
impl<'a> From<&'a [half::bf16]> for Logits<'a> {
    fn from(x: &'a [half::bf16]) -> Self {
        Logits::Bf16(x)
    }
}

#[cfg(test)]
mod step_table_tests {
    /// Every `file.wgsl:N` in the crate docs' step table points at a line
    /// of that shader that names the row's SPEC step (`Step N`), so the
    /// table cannot drift from the shaders unnoticed.
    #[test]
    fn step_table_points_at_its_shader_lines() {
        let doc = include_str!("lib.rs");
        let mut checked = 0;
        for line in doc
            .lines()
            .filter(|l| l.starts_with("//! | ") && l.contains(".wgsl:"))
        {
            let step: String = line[6..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            assert!(!step.is_empty(), "no step number in {line}");
            for cell in line.split('`').filter(|c| c.contains(".wgsl:")) {
                let (file, n) = cell.split_once(':').unwrap();
                let n: usize = n.parse().unwrap();
                let src = match file {
                    "scan.wgsl" => include_str!("../shaders/sampler/scan.wgsl"),
                    "finish.wgsl" => include_str!("../shaders/sampler/finish.wgsl"),
                    "overlay.wgsl" => include_str!("../shaders/sampler/overlay.wgsl"),
                    "bindings.wgsl" => include_str!("../shaders/sampler/bindings.wgsl"),
                    _ => panic!("unknown shader {file}"),
                };
                let at = src.lines().nth(n - 1).unwrap_or("");
                assert!(
                    at.contains(&format!("Step {step}")),
                    "{file}:{n} should start SPEC step {step}, but says: {at:?}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 14, "only {checked} references checked");
    }
}
