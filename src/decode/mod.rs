//! Decoding: stop criteria, a decode loop for engines, and a bigram test
//! model that drives the loop from the command line.
//!
//! Why the module is shaped this way:
//!
//! - `stop` ([`StopCriteria`], [`StopChecker`]) is pure host logic (no wgpu): when a row ends and which text
//!   may be streamed. It is usable on its own by an engine with its own
//!   loop, and it is the one place that knows how `min_new_tokens`, EOS and
//!   stop sequences interact (in agreement with the sampler's device-side
//!   EOS mask).
//! - `run` ([`decode_gpu`], [`decode_cpu`]) is the loop. Its model step is a closure that records GPU work
//!   into the step's encoder and reads the previous tokens from the
//!   sampler's output buffer on the device, so per step the host touches
//!   only the `B` row results (or nothing until the end, see [`Readback`]).
//!   The CPU twin has the same shape with host logits.
//! - `bigram` ([`BigramModel`], [`generate`]) is the smallest model with that data flow (one gather pass,
//!   `shaders/decode/bigram.wgsl`), used by `wgsample generate` and the
//!   tests to compare the two backends token for token.
//! - `speculative` ([`speculative_decode`], [`Verifier`]) runs draft/verify
//!   rounds for one sequence with caller-supplied draft and target models,
//!   on either backend's `verify`; host logic around the sampler, like
//!   `stop`.

mod bigram;
mod run;
mod speculative;
mod stop;

#[cfg(not(target_arch = "wasm32"))]
pub use bigram::generate;
pub use bigram::{Backend, BigramModel, bigram_logits_cpu, check_table, generate_async};
#[cfg(not(target_arch = "wasm32"))]
pub use run::decode_gpu;
pub use run::{
    CpuStepInfo, DecodeEvent, DecodeOutput, DecodeSpec, DecodeStats, Readback, Sequence, StepInfo,
    decode_cpu, decode_gpu_async,
};
pub use speculative::{DRAFT_STEP_OFFSET, SpecConfig, SpecOutput, Verifier, speculative_decode};
pub use stop::{Detokenizer, Pushed, StopChecker, StopCriteria, StopReason};

/// The decode module's compute shaders as `(name, WGSL, entry point)`, for
/// the browser-rules check (add them to [`crate::gpu::shader_sources`]'s
/// list).
pub fn shader_sources() -> Vec<(String, String, &'static str)> {
    vec![(
        "decode:bigram".to_string(),
        bigram::bigram_wgsl(),
        "bigram_gather",
    )]
}
