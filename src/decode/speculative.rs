//! Speculative decoding of one sequence: a loop of draft/verify rounds
//! with a caller-supplied draft model and target model (SPEC.md
//! "Speculative decoding: verifying draft tokens").
//!
//! Each round, the draft model proposes `k` tokens one at a time, sampled
//! on the host by a [`CpuSampler`] under [`SpecConfig::draft_params`];
//! the target model scores the context and the `k` drafts in one call
//! (`k + 1` positions); a [`Verifier`] (either backend) accepts a prefix
//! of the drafts and adds a recovered or bonus token. Every emitted token
//! is distributed exactly as the target's filtered distribution at its
//! position, whatever the draft model: the draft only changes how many
//! tokens a round emits. That holds with the draft model's probabilities
//! sent ([`SpecConfig::send_draft_probs`]; accept `d` with probability
//! `min(1, p(d) / q(d))`) and without them (one-hot `q`: accept with
//! probability `p(d)`, else draw from `p` without `d`, whose law is again
//! `p`); sending them raises the acceptance of a sampling drafter.
//!
//! # Random streams
//!
//! The target side uses [`SpecConfig::target_params`]'s seed with the step
//! counter of a normal decode (step `n` for the `n`-th generated token,
//! counted from 0), so the verifier's acceptance uniforms and recovery
//! Gumbel values at step `n` are those SPEC.md names. The draft sampler
//! steps the same way, one step per position of the sequence, but from
//! [`DRAFT_STEP_OFFSET`]: its Philox counters never meet the target's,
//! so the draft tokens are independent of the verifier's random numbers
//! even when both seeds are equal (which the rejection-sampling theorem
//! needs). A draft position beyond a rejection is drafted again in the
//! next round at the same step; nothing emitted depended on the first
//! draw.

use super::StopReason;
use crate::{
    CpuSampler, Drafts, Error, Logits, Result, RowState, SamplingParams, Status, VerifyOutput,
};

/// The step counter the draft sampler starts from (`2^63`): draft position
/// `n` of the sequence uses step `DRAFT_STEP_OFFSET + n` of the draft seed,
/// so the draft stream never shares a Philox counter with the target's
/// (steps below `2^63`).
pub const DRAFT_STEP_OFFSET: u64 = 1 << 63;

/// A backend that verifies draft tokens (SPEC.md "Speculative decoding"):
/// `target` is `[B, k+1, V]` (row-major, `B = params.len()`,
/// `k = drafts.k`, `V = vocab`), `states[r]` row `r`'s state before the
/// drafts; on return it has advanced once per emitted token.
pub trait Verifier {
    /// Verifies each row's drafts and returns what it emits; see
    /// [`crate::verify`] for the rules and [`CpuSampler::verify`] for the
    /// errors.
    fn verify(
        &mut self,
        target: Logits<'_>,
        vocab: usize,
        drafts: &Drafts<'_>,
        params: &[SamplingParams],
        states: &mut [RowState],
    ) -> Result<Vec<VerifyOutput>>;
}

impl Verifier for CpuSampler {
    /// [`CpuSampler::verify`].
    fn verify(
        &mut self,
        target: Logits<'_>,
        vocab: usize,
        drafts: &Drafts<'_>,
        params: &[SamplingParams],
        states: &mut [RowState],
    ) -> Result<Vec<VerifyOutput>> {
        CpuSampler::verify(self, target, vocab, drafts, params, states)
    }
}

/// The GPU backend as a [`Verifier`] for a caller that keeps its rows'
/// states on the host: each call sets row `r`'s parameters and state on
/// the device from `params[r]` and `states[r]`
/// ([`crate::gpu::GpuSampler::set_params`],
/// [`crate::gpu::GpuSampler::set_state`]), verifies with
/// [`crate::gpu::GpuSampler::verify_host`] (which advances the device
/// state), then records the emitted tokens into `states`, so host and
/// device agree afterwards. The sampler needs `max_batch >= B * (k + 1)`,
/// `vocab` equal to its configured vocabulary, and `k <= 32`.
#[cfg(not(target_arch = "wasm32"))]
impl Verifier for crate::gpu::GpuSampler {
    fn verify(
        &mut self,
        target: Logits<'_>,
        vocab: usize,
        drafts: &Drafts<'_>,
        params: &[SamplingParams],
        states: &mut [RowState],
    ) -> Result<Vec<VerifyOutput>> {
        let cfg = self.config();
        if vocab != cfg.vocab as usize {
            return Err(Error::InvalidArgument(format!(
                "vocab {vocab} given to a GPU sampler created for vocab {}",
                cfg.vocab
            )));
        }
        if states.len() != params.len() {
            return Err(Error::InvalidArgument(format!(
                "{} states for {} rows of params",
                states.len(),
                params.len()
            )));
        }
        let batch = u32::try_from(params.len()).map_err(|_| {
            Error::InvalidArgument(format!("batch {} does not fit in u32", params.len()))
        })?;
        for (r, (p, s)) in params.iter().zip(states.iter()).enumerate() {
            self.set_params(r, p)?;
            self.set_state(r, s)?;
        }
        let out = self.verify_host(target, batch, drafts)?;
        for (s, o) in states.iter_mut().zip(&out) {
            for &t in &o.tokens {
                s.record(t);
            }
        }
        Ok(out)
    }
}

/// What [`speculative_decode`] needs besides the models.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecConfig {
    /// Vocabulary size `V` of both models.
    pub vocab: usize,
    /// Draft tokens per round (`>= 1`); the last round drafts at most as
    /// many as there are tokens left to generate.
    pub k: usize,
    /// Stop after this many generated tokens (a round that emits more is
    /// truncated).
    pub max_new_tokens: usize,
    /// The target's sampling parameters: they define the distribution of
    /// the output. Its `eos_token_ids` end the sequence (the EOS is kept
    /// as the last token) once `min_new_tokens` tokens are out.
    pub target_params: SamplingParams,
    /// The draft sampler's parameters (the draft model's own temperature,
    /// filters and seed; see the module's notes on random streams).
    pub draft_params: SamplingParams,
    /// Send the draft model's filtered distribution (SPEC steps 1-9 under
    /// `draft_params`, as [`crate::filtered_distribution`] computes it) to
    /// the verifier, as a dense `[k, V]` `q`. Without it each draft counts
    /// as one-hot: the output keeps the target's law, but a sampling
    /// drafter's drafts are accepted less often (with probability `p(d)`
    /// instead of `min(1, p(d) / q(d))`). For a greedy drafter the two are
    /// the same.
    pub send_draft_probs: bool,
}

/// The result of [`speculative_decode`].
#[derive(Debug, Clone, PartialEq)]
pub struct SpecOutput {
    /// The generated tokens (the prompt not included), at most
    /// `max_new_tokens`, ending with the EOS that stopped it if any.
    pub tokens: Vec<u32>,
    /// Why the sequence ended: `Eos`, `MaxNewTokens`, or `NoToken(status)`
    /// when the verifier (or the first draft of a round) gave no token.
    pub stop_reason: StopReason,
    /// Draft/verify rounds run.
    pub rounds: usize,
    /// Draft tokens proposed over all rounds.
    pub drafted: usize,
    /// Draft tokens the verifier accepted over all rounds (counted as the
    /// verifier reports them, also in a truncated last round);
    /// `accepted / drafted` is the acceptance rate.
    pub accepted: usize,
}

/// Decodes one sequence after `prompt` with draft/verify rounds, until
/// `max_new_tokens` tokens or an EOS of `target_params`.
///
/// Each round drafts `k' = min(k, tokens left)` tokens: `draft(context)`
/// returns the draft model's next-token logits (`[V]`) after `context`
/// (the prompt, the tokens generated so far and the round's earlier
/// drafts); each draft token is sampled on the host with a [`CpuSampler`]
/// under `draft_params`, and with `send_draft_probs` its position's
/// filtered draft distribution is kept as a dense `[V]` row of `q`. Then
/// `target(context, drafts)` returns the target's logits `[k'+1, V]` for
/// the positions after `context`, `context + d_1`, ..., `context + d_1..d_k'`,
/// and `verifier` verifies the drafts under `target_params` with the
/// sequence's state (prompt, generated tokens, step). The emitted tokens
/// are appended (up to `max_new_tokens`, and up to and including an EOS).
/// A round whose first draft position gets no token from the draft
/// sampler (its logits hold NaN or +inf, or `draft_params` masks every
/// token) ends the sequence with that status; a later such position ends
/// the round's drafting early.
///
/// Errors: `vocab` or `k` of 0, parameters or prompt tokens out of range,
/// a model returning the wrong number of logits, and the verifier's
/// errors.
// The closure types are spelled out so that the signature says what each
// model is called with.
#[allow(clippy::type_complexity)]
pub fn speculative_decode(
    verifier: &mut dyn Verifier,
    draft: &mut dyn FnMut(&[u32]) -> Vec<f32>,
    target: &mut dyn FnMut(&[u32], &[u32]) -> Vec<f32>,
    prompt: &[u32],
    cfg: &SpecConfig,
) -> Result<SpecOutput> {
    let v = cfg.vocab;
    if v == 0 {
        return Err(Error::InvalidArgument("vocab must be at least 1".into()));
    }
    if cfg.k == 0 {
        return Err(Error::InvalidArgument(
            "speculative decoding needs k >= 1 draft tokens per round".into(),
        ));
    }
    cfg.target_params.validate(0, v)?;
    cfg.draft_params.validate(0, v)?;
    let mut target_state = RowState::new(prompt);
    target_state.validate(0, v)?;
    let mut draft_state = RowState::new(prompt);
    draft_state.step = DRAFT_STEP_OFFSET;
    let mut sampler = CpuSampler::with_threads(1);
    let mut context = prompt.to_vec();
    let mut out = SpecOutput {
        tokens: Vec::new(),
        stop_reason: StopReason::MaxNewTokens,
        rounds: 0,
        drafted: 0,
        accepted: 0,
    };
    let mut drafts = Vec::with_capacity(cfg.k);
    let mut q = Vec::new();
    while out.tokens.len() < cfg.max_new_tokens {
        let left = cfg.max_new_tokens - out.tokens.len();
        let k = cfg.k.min(left);
        drafts.clear();
        q.clear();
        let mut state = draft_state.clone();
        let mut draft_context = context.clone();
        for j in 0..k {
            let logits = draft(&draft_context);
            if logits.len() != v {
                return Err(Error::InvalidArgument(format!(
                    "the draft model returned {} logits, expected vocab {v}",
                    logits.len()
                )));
            }
            let dist = if cfg.send_draft_probs {
                Some(crate::filtered_distribution(
                    Logits::F32(&logits),
                    &cfg.draft_params,
                    &state,
                )?)
            } else {
                None
            };
            let o = sampler.sample(
                Logits::F32(&logits),
                v,
                std::slice::from_ref(&cfg.draft_params),
                std::slice::from_mut(&mut state),
            )?[0];
            if o.status != Status::Ok {
                if j == 0 {
                    out.stop_reason = StopReason::NoToken(o.status);
                    return Ok(out);
                }
                break;
            }
            if let Some(dist) = dist {
                let at = q.len();
                q.resize(at + v, 0.0f32);
                for (&t, &p) in dist.tokens.iter().zip(&dist.probs) {
                    q[at + t as usize] = p;
                }
            }
            drafts.push(o.token);
            draft_context.push(o.token);
        }
        let k = drafts.len();
        let logits = target(&context, &drafts);
        if logits.len() != (k + 1) * v {
            return Err(Error::InvalidArgument(format!(
                "the target model returned {} logits for {k} drafts, expected (k+1) x vocab = {}",
                logits.len(),
                (k + 1) * v
            )));
        }
        let d = Drafts {
            k,
            tokens: &drafts,
            probs: cfg.send_draft_probs.then_some(&q[..]),
        };
        let verified = verifier.verify(
            Logits::F32(&logits),
            v,
            &d,
            std::slice::from_ref(&cfg.target_params),
            std::slice::from_mut(&mut target_state),
        )?;
        let Some(row) = verified.first() else {
            return Err(Error::InvalidArgument(
                "the verifier returned no result for the row".into(),
            ));
        };
        out.rounds += 1;
        out.drafted += k;
        out.accepted += row.accepted as usize;
        for &t in &row.tokens {
            if out.tokens.len() == cfg.max_new_tokens {
                return Ok(out);
            }
            out.tokens.push(t);
            context.push(t);
            draft_state.record(t);
            if cfg.target_params.eos_token_ids.contains(&t) {
                out.stop_reason = StopReason::Eos;
                return Ok(out);
            }
        }
        if row.status != Status::Ok {
            out.stop_reason = StopReason::NoToken(row.status);
            return Ok(out);
        }
    }
    Ok(out)
}
