//! Sampling parameters and per-row state: the one place that knows the
//! defaults and the valid ranges of SPEC.md.
//!
//! Both backends take the same [`SamplingParams`] and [`RowState`] and call
//! [`SamplingParams::validate`] before touching any data, so a bad value is
//! always an [`Error`] that names the row and field, never a panic or a
//! silently wrong token.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// Per-row sampling parameters (SPEC.md "Inputs"). Defaults turn every
/// operation off except plain sampling at temperature 1.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Temperature `T`; logits are divided by it. `0` means greedy (argmax).
    /// Must be finite and `>= 0`. Default `1.0`.
    pub temperature: f32,
    /// Keep the `k` largest logits (ties at the boundary kept). `0` or `>= V`
    /// is off. Default `0`.
    pub top_k: u32,
    /// Nucleus: keep the smallest most-probable set whose mass reaches
    /// `top_p` (ties kept). Must be in `(0, 1]`; `1` is off. Default `1.0`.
    pub top_p: f32,
    /// Keep tokens with `p_i >= min_p * p_max`. Must be in `[0, 1)`; `0` is
    /// off. Default `0.0`.
    pub min_p: f32,
    /// Repetition penalty `r` over prompt and output tokens (HF/vLLM): a
    /// positive logit is divided by `r`, a negative one multiplied. Must be
    /// finite and `> 0`; `1` is off. Default `1.0`.
    pub repetition_penalty: f32,
    /// Presence penalty `q`: subtracted once from every token generated so
    /// far. Must be finite. Default `0.0`.
    pub presence_penalty: f32,
    /// Frequency penalty `f`: `f * count` subtracted from every token
    /// generated so far. Must be finite. Default `0.0`.
    pub frequency_penalty: f32,
    /// Additive logit bias `(token, bias)`; each token at most once, biases
    /// finite. Default empty.
    pub logit_bias: Vec<(u32, f32)>,
    /// Tokens forced to `-inf`. Default empty.
    pub banned_tokens: Vec<u32>,
    /// Allowed-token bitmask: `ceil(V/32)` words, bit `i % 32` of word
    /// `i / 32` set means token `i` is allowed (XGrammar's layout). `None`
    /// allows every token.
    pub allowed_tokens: Option<Vec<u32>>,
    /// End-of-sequence ids, masked to `-inf` while the generated length is
    /// below `min_new_tokens`. Default empty.
    pub eos_token_ids: Vec<u32>,
    /// Minimum number of generated tokens before an EOS id may be sampled.
    /// Default `0`.
    pub min_new_tokens: u32,
    /// Seed of the row's Philox stream (key = low, high 32 bits).
    /// Default `0`.
    pub seed: u64,
    /// How many of the most probable tokens (under the raw `log_softmax`,
    /// like `logprob`) to return with their logprobs, and the sampled
    /// token's rank (SPEC.md "Top log-probabilities"). `0` to
    /// [`crate::MAX_TOP_LOGPROBS`]; `0` is off. Default `0`.
    pub top_logprobs: u32,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            logit_bias: Vec::new(),
            banned_tokens: Vec::new(),
            allowed_tokens: None,
            eos_token_ids: Vec::new(),
            min_new_tokens: 0,
            seed: 0,
            top_logprobs: 0,
        }
    }
}

fn bad(row: usize, field: &'static str, value: impl ToString, expected: &str) -> Error {
    Error::InvalidParams {
        row,
        field,
        value: value.to_string(),
        reason: expected.to_string(),
    }
}

fn check_token(row: usize, field: &'static str, t: u32, vocab: usize) -> Result<()> {
    if (t as usize) < vocab {
        Ok(())
    } else {
        Err(bad(
            row,
            field,
            t,
            &format!("is not a token id (vocab size is {vocab})"),
        ))
    }
}

impl SamplingParams {
    /// Greedy decoding: temperature 0, everything else default.
    pub fn greedy() -> Self {
        SamplingParams {
            temperature: 0.0,
            ..Default::default()
        }
    }

    /// True when this row is decoded greedily (`temperature == 0`).
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// True when top-k is active for a vocabulary of `vocab` tokens.
    pub fn top_k_active(&self, vocab: usize) -> bool {
        self.top_k > 0 && (self.top_k as usize) < vocab
    }

    /// True when any penalty (repetition, presence, frequency) is active.
    pub fn penalties_active(&self) -> bool {
        self.repetition_penalty != 1.0
            || self.presence_penalty != 0.0
            || self.frequency_penalty != 0.0
    }

    /// Checks every field against SPEC.md's ranges for a vocabulary of
    /// `vocab` tokens; `row` is only used in the error message.
    pub fn validate(&self, row: usize, vocab: usize) -> Result<()> {
        let t = self.temperature;
        if !(t.is_finite() && t >= 0.0) {
            return Err(bad(row, "temperature", t, "must be finite and >= 0"));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(bad(row, "top_p", self.top_p, "must be in (0, 1]"));
        }
        if !(self.min_p >= 0.0 && self.min_p < 1.0) {
            return Err(bad(row, "min_p", self.min_p, "must be in [0, 1)"));
        }
        let r = self.repetition_penalty;
        if !(r.is_finite() && r > 0.0) {
            return Err(bad(row, "repetition_penalty", r, "must be finite and > 0"));
        }
        if !self.presence_penalty.is_finite() {
            return Err(bad(
                row,
                "presence_penalty",
                self.presence_penalty,
                "must be finite",
            ));
        }
        if !self.frequency_penalty.is_finite() {
            return Err(bad(
                row,
                "frequency_penalty",
                self.frequency_penalty,
                "must be finite",
            ));
        }
        if self.top_logprobs > crate::MAX_TOP_LOGPROBS {
            return Err(bad(
                row,
                "top_logprobs",
                self.top_logprobs,
                &format!("must be in 0..={}", crate::MAX_TOP_LOGPROBS),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for &(tok, b) in &self.logit_bias {
            check_token(row, "logit_bias", tok, vocab)?;
            if !b.is_finite() {
                return Err(bad(
                    row,
                    "logit_bias",
                    format!("{tok}={b}"),
                    "must be finite",
                ));
            }
            if !seen.insert(tok) {
                return Err(bad(
                    row,
                    "logit_bias",
                    tok,
                    "appears more than once (give each token one bias)",
                ));
            }
        }
        for &tok in &self.banned_tokens {
            check_token(row, "banned_tokens", tok, vocab)?;
        }
        for &tok in &self.eos_token_ids {
            check_token(row, "eos_token_ids", tok, vocab)?;
        }
        if let Some(mask) = &self.allowed_tokens {
            let words = vocab.div_ceil(32);
            if mask.len() != words {
                return Err(bad(
                    row,
                    "allowed_tokens",
                    format!("{} words", mask.len()),
                    &format!("must have ceil(V/32) = {words} words for V = {vocab}"),
                ));
            }
        }
        Ok(())
    }
}

/// Builds an allowed-token bitmask (`ceil(vocab/32)` words) from a list of
/// allowed token ids. Ids `>= vocab` are an error.
pub fn allowed_mask(vocab: usize, allowed: &[u32]) -> Result<Vec<u32>> {
    let mut mask = vec![0u32; vocab.div_ceil(32)];
    for &t in allowed {
        check_token(0, "allowed_tokens", t, vocab)?;
        mask[(t / 32) as usize] |= 1 << (t % 32);
    }
    Ok(mask)
}

/// Per-row decoding state (SPEC.md "Per-row state"): the set of prompt
/// tokens, the count of each generated token, the generated length `n` and
/// the step counter `s` of the random stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowState {
    prompt: Vec<u32>,
    output_counts: BTreeMap<u32, u32>,
    generated_len: u32,
    /// Step counter `s` of the Philox stream; `+1` after every sampled token.
    pub step: u64,
}

impl RowState {
    /// A fresh state for a sequence with this prompt (duplicates are fine:
    /// the prompt is kept as a set).
    pub fn new(prompt_tokens: &[u32]) -> Self {
        let mut prompt = prompt_tokens.to_vec();
        prompt.sort_unstable();
        prompt.dedup();
        RowState {
            prompt,
            ..Default::default()
        }
    }

    /// A state whose output so far is `output_tokens`: their counts drive
    /// the penalties and their number is the generated length. The step
    /// counter stays 0.
    pub fn with_output(prompt_tokens: &[u32], output_tokens: &[u32]) -> Self {
        let mut s = Self::new(prompt_tokens);
        for &t in output_tokens {
            *s.output_counts.entry(t).or_insert(0) += 1;
        }
        s.generated_len = output_tokens.len() as u32;
        s
    }

    /// Records a sampled token (SPEC step 12): `c_token += 1`, `n += 1`,
    /// `s += 1`.
    ///
    /// The additions wrap, exactly as the GPU path's state update does
    /// (it keeps `s` as two u32 words with a carry, and `n` and the counts
    /// as u32): `s = u64::MAX` is followed by `s = 0` on both backends, so
    /// any step counter a caller sets is valid and never panics.
    pub fn record(&mut self, token: u32) {
        let c = self.output_counts.entry(token).or_insert(0);
        *c = c.wrapping_add(1);
        self.generated_len = self.generated_len.wrapping_add(1);
        self.step = self.step.wrapping_add(1);
    }

    /// The prompt tokens, sorted and deduplicated.
    pub fn prompt_tokens(&self) -> &[u32] {
        &self.prompt
    }

    /// How often `token` occurs in the generated output.
    pub fn output_count(&self, token: u32) -> u32 {
        self.output_counts.get(&token).copied().unwrap_or(0)
    }

    /// Every generated token with its count, in token order.
    pub fn output_counts(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.output_counts.iter().map(|(&t, &c)| (t, c))
    }

    /// The generated length `n`.
    pub fn generated_len(&self) -> u32 {
        self.generated_len
    }

    /// Checks that every token id in the state is `< vocab`.
    pub fn validate(&self, row: usize, vocab: usize) -> Result<()> {
        for &t in &self.prompt {
            check_token(row, "prompt_tokens", t, vocab)?;
        }
        for &t in self.output_counts.keys() {
            check_token(row, "output_tokens", t, vocab)?;
        }
        Ok(())
    }
}
