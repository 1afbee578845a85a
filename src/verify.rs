//! Speculative decoding: verifying a row's draft tokens against the target
//! model's logits (SPEC.md "Speculative decoding: verifying draft tokens").
//!
//! This module holds what both backends share: the inputs ([`Drafts`]), the
//! result ([`VerifyOutput`]) and the host-side checks ([`check_drafts`]),
//! so that a bad draft is the same [`Error`] whichever backend runs it.
//! The backends implement `verify` (`CpuSampler::verify`,
//! `gpu::GpuSampler::verify`) to the rules below, bit for bit where f32
//! rounding allows (SPEC.md "Where backends may differ").
//!
//! # What is computed, per row
//!
//! Position `j = 1..k` (and the bonus position `k + 1`) is SPEC steps 1-9
//! on the target logits `z_j` with the row's parameters and with the state
//! advanced by `d_1..d_{j-1}` as if they had been generated (their counts
//! feed the penalties; `n` grows by one per position for
//! `min_new_tokens`; the step is `s_j = s + j - 1`). That gives the
//! filtered distribution `p_j`:
//! - a sampling row: `p_j(i) = exp(z_i/T - m) / sum_l exp(z_l/T - m)` over
//!   the survivors of steps 7-9 (`m` the largest `z/T`), 0 elsewhere;
//! - a greedy row (and the `T -> 0` limits of step 6): one-hot at the
//!   token step 5 (or 6) picks.
//!
//! Then, for `j = 1..k`, with `u_j` = [`crate::rng::accept_uniform`]`(seed,
//! s_j)` and `q_j(d_j)` = 1 when no draft probabilities are given:
//! - **accept** `d_j` when `u_j * q_j(d_j) < p_j(d_j)` (in f32);
//! - **on rejection** emit a recovered token and stop. Without draft
//!   probabilities it is the Gumbel-max of step 10 at step `s_j` over the
//!   survivors other than `d_j` (exactly the keys sampling uses: `p_j - q_j`
//!   is `p_j` off `d_j`); with them, `argmax_i ln(p_j(i) - q_j(i)) + g_i`
//!   over the tokens where `p_j(i) - q_j(i) > 0`, with the step-10 Gumbel
//!   values `g_i` at step `s_j`; where that set is empty, the step-10 sample
//!   of `p_j` at step `s_j`. A one-hot `p_j` recovers its own token.
//! - If all `k` are accepted, the **bonus** token is the normal sample of
//!   position `k + 1` at step `s + k`.
//!
//! Each emitted token's logprob is its raw `log_softmax` under its own
//! position's logits (as [`crate::RowOutput::logprob`]). Positions are
//! taken in order; a position whose status is not `Ok` (its logits hold
//! NaN or +inf, or its masks leave no token) ends the row there: the tokens
//! accepted before it are emitted and the row reports that status. The
//! row's state advances once per emitted token.

use crate::{Error, Result, Status};

/// How far a row of draft probabilities may sum from 1.
pub const DRAFT_PROB_TOLERANCE: f64 = 1e-3;

/// The draft side of a verification over `B` rows: `k` draft tokens per
/// row, and optionally the draft model's probabilities of each position.
#[derive(Debug, Clone, Copy)]
pub struct Drafts<'a> {
    /// Draft tokens per row (`k >= 1`).
    pub k: usize,
    /// `[B, k]` draft tokens, row-major: row `r`'s `d_1..d_k` at
    /// `r * k .. (r + 1) * k`.
    pub tokens: &'a [u32],
    /// `[B, k, V]` draft probabilities `q`, row-major, each `[V]` row
    /// summing to 1 (within [`DRAFT_PROB_TOLERANCE`]) with its draft token
    /// at probability above 0. `None` means one-hot drafts (n-gram or
    /// greedy drafters): every `q_j` is 1 at `d_j`.
    pub probs: Option<&'a [f32]>,
}

/// The result of verifying one row.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyOutput {
    /// The emitted tokens, in order: the accepted drafts, then the
    /// recovered or bonus token (1 to `k + 1` of them when `status` is
    /// `Ok`; fewer, possibly none, when a position's status ended the row).
    pub tokens: Vec<u32>,
    /// How many draft tokens were accepted (`0..=k`).
    pub accepted: u32,
    /// The raw `log_softmax` of each emitted token under its own position's
    /// target logits.
    pub logprobs: Vec<f32>,
    /// `Ok`, or the status of the position that ended the row.
    pub status: Status,
}

/// Checks the drafts of a `batch`-row verification over a vocabulary of
/// `vocab` before anything runs: `k >= 1`, `tokens.len() == batch * k`,
/// every draft token `< vocab`, and, when given, `probs.len() == batch * k
/// * vocab` with every `q` row finite, non-negative, summing to 1 within
/// [`DRAFT_PROB_TOLERANCE`] and giving its draft token a probability above
/// 0. Errors name the row and position.
pub fn check_drafts(batch: usize, vocab: usize, drafts: &Drafts<'_>) -> Result<()> {
    let k = drafts.k;
    if k == 0 {
        return Err(Error::InvalidArgument(
            "verify needs at least one draft token per row (k = 0)".into(),
        ));
    }
    if Some(drafts.tokens.len()) != batch.checked_mul(k) {
        return Err(Error::InvalidArgument(format!(
            "{} draft tokens given, expected batch {batch} x k {k}",
            drafts.tokens.len()
        )));
    }
    for (i, &d) in drafts.tokens.iter().enumerate() {
        if d as usize >= vocab {
            return Err(Error::InvalidArgument(format!(
                "row {}: draft token {} (position {}) is not a token id (vocab size is {vocab})",
                i / k,
                d,
                i % k + 1
            )));
        }
    }
    let Some(q) = drafts.probs else {
        return Ok(());
    };
    if Some(q.len()) != batch.checked_mul(k).and_then(|n| n.checked_mul(vocab)) {
        return Err(Error::InvalidArgument(format!(
            "draft probabilities hold {} values, expected batch {batch} x k {k} x vocab {vocab}",
            q.len()
        )));
    }
    for (i, row) in q.chunks_exact(vocab).enumerate() {
        let (r, j) = (i / k, i % k + 1);
        if let Some((t, x)) = row
            .iter()
            .enumerate()
            .find(|(_, x)| !(x.is_finite() && **x >= 0.0))
        {
            return Err(Error::InvalidArgument(format!(
                "row {r}: draft probabilities of position {j} hold {x} at token {t} \
                 (each must be finite and >= 0)"
            )));
        }
        let sum: f64 = row.iter().map(|&x| x as f64).sum();
        if (sum - 1.0).abs() > DRAFT_PROB_TOLERANCE {
            return Err(Error::InvalidArgument(format!(
                "row {r}: draft probabilities of position {j} sum to {sum}, not 1 \
                 (within {DRAFT_PROB_TOLERANCE})"
            )));
        }
        let d = drafts.tokens[i];
        if row[d as usize] <= 0.0 {
            return Err(Error::InvalidArgument(format!(
                "row {r}: draft token {d} (position {j}) has draft probability 0; \
                 a draft model cannot have drawn it"
            )));
        }
    }
    Ok(())
}
