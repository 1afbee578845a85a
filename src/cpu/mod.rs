//! The CPU backend (STUB: being implemented).
use crate::{Logits, Result, RowOutput, RowState, SamplingParams, Status};

/// A row's final filtered distribution (SPEC steps 1 to 9): surviving token
/// ids and their renormalised probabilities, most probable first (ties:
/// lower id first). Empty when `status != Ok`.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    /// Status of the row (`Ok`, `InvalidLogits`, `NoCandidates`).
    pub status: Status,
    /// Surviving token ids, most probable first.
    pub tokens: Vec<u32>,
    /// Their probabilities (sum to 1 up to rounding).
    pub probs: Vec<f32>,
}

/// CPU sampler with reusable scratch; rows run in parallel for large batches.
#[derive(Debug, Default)]
pub struct CpuSampler {}

impl CpuSampler {
    /// A sampler using all available cores for large batches.
    pub fn new() -> Self {
        CpuSampler {}
    }
    /// A sampler using at most `threads` threads (1 = single-threaded).
    pub fn with_threads(_threads: usize) -> Self {
        CpuSampler {}
    }
    /// Samples one token per row of a `[B, V]` batch, `B = params.len()`,
    /// and updates `states` (step 12) for rows whose status is `Ok`.
    pub fn sample(
        &mut self,
        _logits: Logits<'_>,
        _vocab: usize,
        _params: &[SamplingParams],
        _states: &mut [RowState],
    ) -> Result<Vec<RowOutput>> {
        unimplemented!()
    }
}

/// The final filtered distribution of one row of `vocab` logits.
pub fn filtered_distribution(
    _row: Logits<'_>,
    _params: &SamplingParams,
    _state: &RowState,
) -> Result<Distribution> {
    unimplemented!()
}
