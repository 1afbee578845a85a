//! Beam search with HF transformers 5.x semantics (SPEC.md, "Beam search"):
//! a per-step candidate selection that runs on the GPU (WGSL) or the CPU,
//! and a host-side manager that keeps the finished hypotheses.
//!
//! # What is computed
//!
//! For `G` groups (prompts) of `b` beams, one step takes the processed
//! logits `z` of the `G * b` running beams (`[G * b, V]` f32, row `g * b + j`
//! = beam `j` of group `g`) and their scores `s` (`[G * b]`, the summed
//! log-probabilities of each beam's tokens so far) and returns, per group,
//! the best `K` of the `b * V` candidates
//!
//! ```text
//! cand[j, t] = s[j] + ((z[j, t] - max_t z[j]) - ln(sum_t exp(z[j, t] - max_t z[j])))
//! ```
//!
//! (f32, in this order of operations on both backends), best first, ties
//! broken by the lower flat index `j * V + t`. [`BeamSearch`] turns the
//! candidates into finished hypotheses and the next running beams
//! (SPEC.md rules 3 to 6) and decides when each group stops.
//!
//! # Why it is shaped so
//!
//! - The only vocabulary-sized work is the step: a log-sum-exp per row and
//!   a top-`K` over `b * V` candidates per group. That is what runs where
//!   the logits are (the GPU step reads each logit twice and reads back
//!   `3 K + 1` words per group: scores, beams, tokens, a status). The
//!   manager's bookkeeping touches `K` candidates per group and branches
//!   on every one of them, which is host work.
//! - `K = max(2, 1 + n_eos) * b` (HF's `beams_to_keep`): at most `n_eos`
//!   candidates per beam end in an EOS id, so `K` always holds at least
//!   `b` candidates that can keep running.
//! - The CPU twin ([`cpu_step`]) follows the same contract with an O(V)
//!   selection per row (a threshold that rises while the rows are
//!   scanned), so the two can be compared and either can drive
//!   [`beam_search`].
//! - The step is separate from the model: [`beam_search`] and
//!   [`beam_search_bigram`] drive a host model; an engine whose logits are
//!   already in a `wgpu::Buffer` calls [`GpuBeamStep::record`] or
//!   [`GpuBeamStep::step`] and feeds the candidates to [`BeamSearch`]
//!   itself.
//!
//! # Choices where SPEC.md and HF leave room
//!
//! - `n_eos` counts distinct EOS ids (duplicates are ignored), and `K` is
//!   capped at `b * V` for vocabularies too small to hold it (HF's
//!   `torch.topk` would fail there).
//! - NaN or `+inf` in a logits row is an [`Error::InvalidArgument`](crate::Error)
//!   naming the row (beam search has no per-row status to carry it). A row
//!   that is entirely `-inf` gives `-inf` for all its candidates.
//! - Hypothesis scores are f32: `sum_logprobs / L^length_penalty` with
//!   `L^length_penalty` computed in f64 and rounded to f32 once.
//! - The finished list of a group is HF's: `b` slots that start as
//!   placeholders scoring `-1e9` ([`DEAD_BEAM_SCORE`]); a finishing
//!   candidate takes a slot only if its score is strictly above the lowest
//!   slot's, and only filled slots count as finished hypotheses in rule 5.
//!   Children of the dead start beams (scored about `-1e9`) thus stay out
//!   at the first step, as in HF; those that later finish with a length
//!   penalty (scoring `-1e9 / L^lp`, above `-1e9`) take a slot and count,
//!   as in HF, but are never returned. The result therefore differs from
//!   HF's only where HF returns a placeholder or such a descendant
//!   (summed log-probability at or below `-1e9`): wgsample returns fewer
//!   hypotheses there (for example one, not three, with 3 beams over a
//!   vocabulary of 1). A hypothesis scoring `-inf` (a masked path) never
//!   beats a placeholder either, so a search whose every path is masked
//!   returns no hypothesis. tests/beam_hf.rs checks all this against HF
//!   itself (scripts/hf_beam_reference.py wrote its cases).
//! - Ties among finished hypotheses keep the older one (and, within a
//!   step, the better-ranked candidate).
//! - "If fewer than `b` hypotheses finished by `max_new_tokens`, add the
//!   running beams" (the pre-5.x `finalize`) is rule 3 itself in the 5.x
//!   code this follows: at the step that reaches `max_new_tokens` every
//!   candidate finishes, and those ranked below `b` become hypotheses. So
//!   each group ends with `b` filled slots, and the result has
//!   `num_return_sequences` hypotheses unless dead-beam descendants held
//!   some of the slots (see above).
//! - A group also stops when every one of its `K` candidates finished
//!   (only possible when every token is an EOS id): nothing can continue.
//!   HF keeps such a group running on masked beams instead.
//! - Rule 5's comparison "not above" stops on equality.

mod cpu;
mod gpu;
mod manager;

pub use cpu::cpu_step;
pub use gpu::{GpuBeamStep, MAX_K, MAX_LISTS, shader_sources};
pub use manager::{BeamSearch, MAX_ROWS};

use std::fmt;
use std::str::FromStr;

use crate::gpu::GpuContext;
use crate::{Error, Result};

/// The score every beam but beam 0 of a group starts with (SPEC.md rule
/// 1: at the first step only beam 0 is live).
pub const DEAD_BEAM_SCORE: f32 = -1.0e9;

/// When a group stops (HF's `early_stopping`), SPEC.md rule 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EarlyStopping {
    /// Stop as soon as `b` hypotheses are finished.
    True,
    /// Stop when `b` hypotheses are finished and the best running beam,
    /// scored at its current length, is not above the worst of them (HF's
    /// default heuristic).
    #[default]
    False,
    /// Like `False`, but with `length_penalty > 0` the best running beam is
    /// scored at `L = max_new_tokens`, the most it could still gain: the
    /// search stops only when no running beam can improve the result.
    Never,
}

impl EarlyStopping {
    /// The CLI spelling: `"true"`, `"false"` or `"never"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EarlyStopping::True => "true",
            EarlyStopping::False => "false",
            EarlyStopping::Never => "never",
        }
    }
}

impl fmt::Display for EarlyStopping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EarlyStopping {
    type Err = Error;

    /// Parses `"true"`, `"false"` or `"never"` (exactly, lower case); any
    /// other text is an [`Error::InvalidParams`] for the field
    /// `early_stopping` that quotes it.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "true" => Ok(EarlyStopping::True),
            "false" => Ok(EarlyStopping::False),
            "never" => Ok(EarlyStopping::Never),
            _ => Err(bad(
                "early_stopping",
                format!("{s:?}"),
                "must be true, false or never",
            )),
        }
    }
}

/// The parameters of a beam search (HF `generate` names). One config
/// applies to every group; errors from [`BeamConfig::validate`] say row 0.
#[derive(Debug, Clone, PartialEq)]
pub struct BeamConfig {
    /// Beams per group, `b >= 1`.
    pub num_beams: u32,
    /// Exponent of the length normalisation: a finished hypothesis scores
    /// `sum_logprobs / L^length_penalty`, `L` its number of generated
    /// tokens. Positive values favour longer hypotheses, negative shorter.
    /// Must be finite.
    pub length_penalty: f32,
    /// When a group stops.
    pub early_stopping: EarlyStopping,
    /// Tokens that end a hypothesis (ids `< V`; duplicates allowed and
    /// ignored). May be empty: then hypotheses end at `max_new_tokens`.
    pub eos_token_ids: Vec<u32>,
    /// Most tokens generated per hypothesis, `>= 1`.
    pub max_new_tokens: u32,
    /// Hypotheses returned per group, `1 <= num_return_sequences <=
    /// num_beams`.
    pub num_return_sequences: u32,
}

impl BeamConfig {
    /// `num_beams` beams with HF's defaults: `length_penalty` 1.0,
    /// `early_stopping` false, no EOS id, 20 new tokens, one returned
    /// sequence.
    pub fn new(num_beams: u32) -> Self {
        BeamConfig {
            num_beams,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::False,
            eos_token_ids: Vec::new(),
            max_new_tokens: 20,
            num_return_sequences: 1,
        }
    }

    /// Checks the config against a vocabulary of `vocab` tokens:
    /// `num_beams >= 1`, `1 <= num_return_sequences <= num_beams`,
    /// `max_new_tokens >= 1`, `length_penalty` finite, every EOS id `<
    /// vocab`, `vocab >= 1` and `num_beams * vocab` within u32 (candidates
    /// are indexed `beam * V + token` in u32). Returns
    /// [`Error::InvalidParams`] naming the field and value (row 0), or
    /// [`Error::InvalidArgument`] for the sizes.
    pub fn validate(&self, vocab: usize) -> Result<()> {
        if vocab == 0 {
            return Err(Error::InvalidArgument("vocab must be at least 1".into()));
        }
        if self.num_beams == 0 {
            return Err(bad("num_beams", 0, "must be at least 1"));
        }
        if self.num_return_sequences == 0 || self.num_return_sequences > self.num_beams {
            return Err(bad(
                "num_return_sequences",
                self.num_return_sequences,
                &format!("must be between 1 and num_beams ({})", self.num_beams),
            ));
        }
        if self.max_new_tokens == 0 {
            return Err(bad("max_new_tokens", 0, "must be at least 1"));
        }
        if !self.length_penalty.is_finite() {
            return Err(bad("length_penalty", self.length_penalty, "must be finite"));
        }
        for &t in &self.eos_token_ids {
            if t as usize >= vocab {
                return Err(bad(
                    "eos_token_ids",
                    t,
                    &format!("is not a token id (vocab size is {vocab})"),
                ));
            }
        }
        if (self.num_beams as u64) * (vocab as u64) > u64::from(u32::MAX) {
            return Err(Error::InvalidArgument(format!(
                "num_beams {} x vocab {vocab} candidates do not fit a u32 index",
                self.num_beams
            )));
        }
        Ok(())
    }

    /// The number of distinct EOS ids.
    pub fn distinct_eos(&self) -> usize {
        let mut e = self.eos_token_ids.clone();
        e.sort_unstable();
        e.dedup();
        e.len()
    }

    /// `K`, the candidates kept per group and step: `max(2, 1 + n_eos) *
    /// num_beams` (`n_eos` = distinct EOS ids), at most `num_beams *
    /// vocab`.
    pub fn candidates_per_group(&self, vocab: usize) -> usize {
        let b = self.num_beams as usize;
        (2.max(1 + self.distinct_eos()) * b).min(b.saturating_mul(vocab))
    }
}

fn bad(field: &'static str, value: impl ToString, expected: &str) -> Error {
    Error::InvalidParams {
        row: 0,
        field,
        value: value.to_string(),
        reason: expected.to_string(),
    }
}

/// A finished hypothesis.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// The generated tokens (the start / prompt tokens excluded), ending
    /// with the EOS id when one ended the hypothesis.
    pub tokens: Vec<u32>,
    /// `sum of the tokens' log-probabilities / tokens.len()^length_penalty`.
    pub score: f32,
}

/// One candidate of a beam step: beam `beam` of its group extended by
/// `token`, with the candidate's summed log-probability `score` (beam
/// score + `log_softmax(z)[token]`, not length-normalised).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Summed log-probability of the extended beam (f32; `-0` is returned
    /// as `+0`).
    pub score: f32,
    /// Beam index within the group (`0..b`).
    pub beam: u32,
    /// The appended token (`0..V`).
    pub token: u32,
}

/// Where [`beam_search`] runs its steps.
#[derive(Debug, Clone, Copy)]
pub enum BeamBackend<'a> {
    /// [`cpu_step`] on the calling thread.
    Cpu,
    /// A [`GpuBeamStep`] on this device (the logits are uploaded each
    /// step).
    Gpu(&'a GpuContext),
}

/// Runs beam search for one start token with a host model.
///
/// Each step, `model` receives the `b` running beams' token sequences
/// (`start_token` followed by the tokens generated so far; at the first
/// step all `b` are `[start_token]`, beams `1..b` being dead) and returns
/// their next-token logits, `b * vocab` f32 row-major (row `j` for
/// sequence `j`). No logit processing is applied: pass processed logits
/// if SPEC.md steps 1 to 4 should apply. The step runs on `backend`, the
/// bookkeeping in a [`BeamSearch`]; the result is the best
/// `num_return_sequences` hypotheses, best first.
///
/// Errors: a bad config or start token, logits of the wrong length or with
/// NaN / `+inf`, an error from `model` (returned as is), or a GPU error.
///
/// Blocks (native only); [`beam_search_async`] is the same search as a
/// future, for the browser.
#[cfg(not(target_arch = "wasm32"))]
pub fn beam_search<F>(
    vocab: usize,
    start_token: u32,
    cfg: &BeamConfig,
    backend: BeamBackend<'_>,
    model: F,
) -> Result<Vec<Hypothesis>>
where
    F: FnMut(&[Vec<u32>]) -> Result<Vec<f32>>,
{
    pollster::block_on(beam_search_async(vocab, start_token, cfg, backend, model))
}

/// The async form of [`beam_search`]: the same search, awaiting each GPU
/// step instead of blocking on it (the model stays a plain closure).
pub async fn beam_search_async<F>(
    vocab: usize,
    start_token: u32,
    cfg: &BeamConfig,
    backend: BeamBackend<'_>,
    mut model: F,
) -> Result<Vec<Hypothesis>>
where
    F: FnMut(&[Vec<u32>]) -> Result<Vec<f32>>,
{
    cfg.validate(vocab)?;
    if start_token as usize >= vocab {
        return Err(Error::InvalidParams {
            row: 0,
            field: "start_token",
            value: start_token.to_string(),
            reason: format!("is not a token id (vocab size is {vocab})"),
        });
    }
    let b = cfg.num_beams as usize;
    let k = cfg.candidates_per_group(vocab);
    let mut search = BeamSearch::new(cfg, vocab, 1)?;
    let mut gpu = match backend {
        BeamBackend::Cpu => None,
        BeamBackend::Gpu(ctx) => Some(GpuBeamStep::new(
            ctx,
            1,
            cfg.num_beams,
            vocab as u32,
            k as u32,
        )?),
    };
    let mut seqs: Vec<Vec<u32>> = vec![vec![start_token]; b];
    while !search.is_done() {
        for (j, s) in seqs.iter_mut().enumerate() {
            s.truncate(1);
            s.extend_from_slice(search.beam_tokens(0, j)?);
        }
        let logits = model(&seqs)?;
        if logits.len() != b * vocab {
            return Err(Error::InvalidArgument(format!(
                "the model returned {} logits for {b} beams x vocab {vocab}",
                logits.len()
            )));
        }
        let cands = match gpu.as_mut() {
            None => cpu_step(&logits, search.beam_scores(), b, vocab, k)?,
            Some(step) => step.step_host_async(&logits, search.beam_scores()).await?,
        };
        search.advance(&cands)?;
    }
    Ok(search.into_results().swap_remove(0))
}

/// Beam search over a bigram model: `bigram` is a `[vocab, vocab]` f32
/// matrix, row-major, whose row `t` holds the next-token logits after token
/// `t` (so a beam's logits depend only on its last token). Starts from
/// `start` and returns the best `num_return_sequences` hypotheses, best
/// first (see [`beam_search`]); this is what `wgsample beam --bigram`
/// prints.
///
/// Errors: `bigram.len() != vocab * vocab`, a bad config or start token,
/// NaN / `+inf` in a row the search reads, or a GPU error. Blocks (native
/// only; [`beam_search_bigram_async`] everywhere).
#[cfg(not(target_arch = "wasm32"))]
pub fn beam_search_bigram(
    bigram: &[f32],
    vocab: usize,
    start: u32,
    cfg: &BeamConfig,
    backend: BeamBackend<'_>,
) -> Result<Vec<Hypothesis>> {
    pollster::block_on(beam_search_bigram_async(bigram, vocab, start, cfg, backend))
}

/// The async form of [`beam_search_bigram`].
pub async fn beam_search_bigram_async(
    bigram: &[f32],
    vocab: usize,
    start: u32,
    cfg: &BeamConfig,
    backend: BeamBackend<'_>,
) -> Result<Vec<Hypothesis>> {
    if vocab.checked_mul(vocab) != Some(bigram.len()) {
        return Err(Error::InvalidArgument(format!(
            "the bigram matrix holds {} values, expected vocab {vocab} x vocab {vocab}",
            bigram.len()
        )));
    }
    let mut buf = Vec::new();
    beam_search_async(vocab, start, cfg, backend, |seqs| {
        buf.clear();
        for s in seqs {
            let last = *s.last().expect("sequences start with the start token") as usize;
            buf.extend_from_slice(&bigram[last * vocab..(last + 1) * vocab]);
        }
        Ok(buf.clone())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_stopping_parses() {
        for m in [
            EarlyStopping::True,
            EarlyStopping::False,
            EarlyStopping::Never,
        ] {
            assert_eq!(m.as_str().parse::<EarlyStopping>().unwrap(), m);
            assert_eq!(m.to_string(), m.as_str());
        }
        let e = "maybe".parse::<EarlyStopping>().unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("early_stopping") && msg.contains("maybe"),
            "{msg}"
        );
        assert!("True".parse::<EarlyStopping>().is_err());
    }

    #[test]
    fn candidates_per_group() {
        let mut c = BeamConfig::new(3);
        assert_eq!(c.candidates_per_group(100), 6);
        c.eos_token_ids = vec![5];
        assert_eq!(c.candidates_per_group(100), 6);
        c.eos_token_ids = vec![5, 6, 5];
        assert_eq!(c.candidates_per_group(100), 9);
        assert_eq!(c.candidates_per_group(2), 6);
        c.eos_token_ids = vec![0, 1];
        assert_eq!(c.candidates_per_group(2), 6);
        assert_eq!(BeamConfig::new(1).candidates_per_group(1), 1);
    }

    #[test]
    fn validate_names_fields() {
        let v = 10;
        assert!(BeamConfig::new(2).validate(v).is_ok());
        let cases: Vec<(BeamConfig, &str)> = vec![
            (BeamConfig::new(0), "num_beams"),
            (
                BeamConfig {
                    num_return_sequences: 3,
                    ..BeamConfig::new(2)
                },
                "num_return_sequences",
            ),
            (
                BeamConfig {
                    num_return_sequences: 0,
                    ..BeamConfig::new(2)
                },
                "num_return_sequences",
            ),
            (
                BeamConfig {
                    max_new_tokens: 0,
                    ..BeamConfig::new(2)
                },
                "max_new_tokens",
            ),
            (
                BeamConfig {
                    length_penalty: f32::NAN,
                    ..BeamConfig::new(2)
                },
                "length_penalty",
            ),
            (
                BeamConfig {
                    eos_token_ids: vec![3, 10],
                    ..BeamConfig::new(2)
                },
                "eos_token_ids",
            ),
        ];
        for (c, field) in cases {
            let msg = c.validate(v).unwrap_err().to_string();
            assert!(msg.contains(field), "{msg}");
        }
        assert!(BeamConfig::new(2).validate(0).is_err());
        assert!(BeamConfig::new(u32::MAX).validate(4).is_err());
    }
}
