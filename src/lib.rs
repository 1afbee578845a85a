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
//! The crate is shaped around that contract: [`params`] owns the defaults
//! and ranges, [`rng`] the random stream, [`cpu`] the fast host backend (and
//! the reference the GPU is tested against), [`gpu`] the wgpu backend.
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

pub mod beam;
pub mod cpu;
pub mod decode;
#[doc(hidden)]
pub use cpu::fastmath as probe;
pub mod error;
pub mod gpu;
pub mod params;
pub mod rng;
pub mod twins;

pub use cpu::{CpuSampler, Distribution, filtered_distribution};
pub use error::{Error, Result};
pub use params::{RowState, SamplingParams, allowed_mask};

/// Every compute shader the crate dispatches, as `(name, full WGSL source,
/// entry point)`, exactly as handed to `create_shader_module`: the GPU
/// backend's passes, then the decode loop's and beam search's. Used by the
/// portability check that compiles them with a browser's WebGPU
/// implementation (`scripts/check_shaders.sh`).
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
}

impl Status {
    /// The snake_case name used in the CLI's JSON (`ok`, `invalid_logits`,
    /// `no_candidates`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::InvalidLogits => "invalid_logits",
            Status::NoCandidates => "no_candidates",
        }
    }

    /// The numeric code the GPU writes (0 ok, 1 invalid logits, 2 no
    /// candidates); `None` for any other value.
    pub fn from_code(code: u32) -> Option<Status> {
        match code {
            0 => Some(Status::Ok),
            1 => Some(Status::InvalidLogits),
            2 => Some(Status::NoCandidates),
            _ => None,
        }
    }

    /// The numeric code of this status (see [`Status::from_code`]).
    pub fn code(self) -> u32 {
        match self {
            Status::Ok => 0,
            Status::InvalidLogits => 1,
            Status::NoCandidates => 2,
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
