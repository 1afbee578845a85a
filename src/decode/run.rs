//! The decode loop: model step, sampling, stop checks and streaming, on the
//! GPU ([`decode_gpu`]) or the CPU ([`decode_cpu`]).
//!
//! Shape, and why:
//!
//! - The model is a closure, not a trait object with a fixed signature for
//!   every engine: on the GPU it records, into the step's
//!   `wgpu::CommandEncoder`, whatever passes write the next `[B, V]` logits,
//!   reading the previous tokens from [`StepInfo::tokens`] (the sampler's
//!   output buffer, whose first `4 B` bytes are the last sampled ids) on the
//!   device. The loop records the sampler after it in the same encoder, so a
//!   step is one submission and the tokens never visit the host to reach
//!   the model.
//! - What the host reads is decided by [`Readback`]: with
//!   [`Readback::EveryStep`] it maps the `B` row results of each step
//!   (token, logprob, status: 12 bytes a row) to check stops, stream and
//!   stop early; with [`Readback::AtEnd`] each step's results are copied
//!   into a `[max_new_tokens, 3 B]`-word history buffer on the device and
//!   mapped once after the last step (the stop checks then run over the
//!   history; since rows never influence each other the tokens are the
//!   same, only the early exit and live streaming are lost).
//!   [`Readback::Auto`] picks `AtEnd` when only `max_new_tokens` can stop a
//!   row. [`DecodeStats::bytes_mapped`] counts every byte the loop maps, so
//!   a test can show that no logits are read back.
//! - Rows that stopped keep being sampled (their results are ignored): a
//!   batch keeps its shape, and a row's tokens depend only on its own
//!   logits, parameters, seed and step (SPEC.md), so this changes nothing
//!   for the others.
//! - The CPU twin runs the same steps with [`CpuSampler`] and host logits,
//!   so the two paths can be compared token for token.

use super::stop::{Detokenizer, StopChecker, StopCriteria, StopReason};
use crate::gpu::device::scoped_async;
use crate::gpu::kit::{check_buffer_size, map_read};
use crate::gpu::{GpuSampler, LogitsView};
use crate::{CpuSampler, Error, NO_TOKEN, Result, RowOutput, RowState, SamplingParams, Status};

/// When the GPU loop reads the sampled tokens back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Readback {
    /// `EveryStep` when a stop criterion other than `max_new_tokens` is
    /// set, else `AtEnd`.
    #[default]
    Auto,
    /// Map the `B` row results (12 bytes a row) after every step: live
    /// streaming, early exit once every row stopped.
    EveryStep,
    /// Map nothing until the end, then the whole `[steps, B]` history once;
    /// events are delivered after the last step.
    AtEnd,
}

/// What a decode runs: one row per entry of `params`.
#[derive(Clone, Copy)]
pub struct DecodeSpec<'a> {
    /// Sampling parameters, one per row (`B = params.len()`). Their EOS ids
    /// and `min_new_tokens` are replaced by the criteria's
    /// ([`StopCriteria::apply_to`]).
    pub params: &'a [SamplingParams],
    /// Starting state of each row (its prompt, for the repetition penalty);
    /// `None` starts every row from `RowState::default()`.
    pub states: Option<&'a [RowState]>,
    /// When rows stop (shared by all rows).
    pub criteria: &'a StopCriteria,
    /// Token id -> text, for stop strings and the streamed text.
    pub detokenizer: Option<&'a dyn Detokenizer>,
    /// When the GPU loop reads tokens back (ignored on the CPU).
    pub readback: Readback,
}

impl std::fmt::Debug for DecodeSpec<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeSpec")
            .field("params", &self.params)
            .field("states", &self.states)
            .field("criteria", &self.criteria)
            .field("detokenizer", &self.detokenizer.map(|_| ".."))
            .field("readback", &self.readback)
            .finish()
    }
}

impl<'a> DecodeSpec<'a> {
    /// Rows with these parameters and fresh states, stopped by `criteria`,
    /// no detokenizer, [`Readback::Auto`].
    pub fn new(params: &'a [SamplingParams], criteria: &'a StopCriteria) -> Self {
        DecodeSpec {
            params,
            states: None,
            criteria,
            detokenizer: None,
            readback: Readback::Auto,
        }
    }
}

/// One token of one row, as the loop streams it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeEvent<'a> {
    /// Row of the batch.
    pub row: usize,
    /// Step (0-based) that sampled the token.
    pub step: u32,
    /// The token ([`NO_TOKEN`] when the row got none and stops).
    pub token: u32,
    /// Its log-probability under the raw logits (NaN without a token).
    pub logprob: f32,
    /// Text that became final with this token (see
    /// [`Pushed::text`](super::stop::Pushed::text)).
    pub text: &'a str,
    /// `Some` when the row stops here.
    pub stop: Option<StopReason>,
}

/// The result of one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    /// Generated tokens, including the EOS id or stop sequence that ended
    /// the row.
    pub tokens: Vec<u32>,
    /// Their log-probabilities under the raw logits.
    pub logprobs: Vec<f32>,
    /// The output text without the stop text (empty without a
    /// detokenizer).
    pub text: String,
    /// Why the row stopped.
    pub stop_reason: StopReason,
}

/// What the loop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecodeStats {
    /// Steps run (model step + sampling each).
    pub steps: u32,
    /// Bytes of GPU memory mapped for reading (0 on the CPU).
    pub bytes_mapped: u64,
    /// Number of buffer mappings (0 on the CPU).
    pub maps: u32,
}

/// All rows' results and the loop's statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeOutput {
    /// One sequence per row, in row order.
    pub sequences: Vec<Sequence>,
    /// What the loop did.
    pub stats: DecodeStats,
}

/// What the GPU model step is told.
#[derive(Debug, Clone, Copy)]
pub struct StepInfo<'a> {
    /// Step number: 0 for the first token after the prompt.
    pub step: u32,
    /// Rows in the batch.
    pub batch: u32,
    /// The sampler's output buffer: `B` token ids (u32) of the previous
    /// step, then logprobs and statuses. At step 0 it holds no tokens of
    /// this decode; a row without a token holds [`NO_TOKEN`].
    pub tokens: &'a wgpu::Buffer,
}

/// What the CPU model step is told.
#[derive(Debug, Clone, Copy)]
pub struct CpuStepInfo<'a> {
    /// Step number: 0 for the first token after the prompt.
    pub step: u32,
    /// Rows in the batch.
    pub batch: u32,
    /// The previous step's tokens, one per row ([`NO_TOKEN`] for a row
    /// without one); empty at step 0.
    pub tokens: &'a [u32],
}

/// The per-row checkers and results being built.
struct Rows<'a> {
    checkers: Vec<StopChecker<'a>>,
    logprobs: Vec<Vec<f32>>,
}

impl<'a> Rows<'a> {
    fn new(spec: &DecodeSpec<'a>) -> Result<Self> {
        let b = spec.params.len();
        let checkers = (0..b)
            .map(|_| StopChecker::new(spec.criteria, spec.detokenizer))
            .collect::<Result<Vec<_>>>()?;
        Ok(Rows {
            checkers,
            logprobs: vec![Vec::new(); b],
        })
    }

    fn all_stopped(&self) -> bool {
        self.checkers.iter().all(StopChecker::is_stopped)
    }

    /// Feeds one step's results to the rows still running.
    fn step(&mut self, step: u32, outs: &[RowOutput], on_event: &mut dyn FnMut(&DecodeEvent<'_>)) {
        for (row, (ck, o)) in self.checkers.iter_mut().zip(outs).enumerate() {
            if ck.is_stopped() {
                continue;
            }
            let pushed = if o.status == Status::Ok {
                self.logprobs[row].push(o.logprob);
                ck.push(o.token)
            } else {
                ck.push_no_token(o.status)
            };
            on_event(&DecodeEvent {
                row,
                step,
                token: if o.status == Status::Ok {
                    o.token
                } else {
                    NO_TOKEN
                },
                logprob: if o.status == Status::Ok {
                    o.logprob
                } else {
                    f32::NAN
                },
                text: pushed.text,
                stop: pushed.stop,
            });
        }
    }

    fn finish(self, stats: DecodeStats) -> Result<DecodeOutput> {
        let sequences = self
            .checkers
            .into_iter()
            .zip(self.logprobs)
            .map(|(ck, logprobs)| {
                let stop_reason = ck.stop_reason().ok_or_else(|| {
                    Error::Gpu("internal: a row ran past max_new_tokens without stopping".into())
                })?;
                Ok(Sequence {
                    tokens: ck.tokens().to_vec(),
                    logprobs,
                    text: ck.text().to_string(),
                    stop_reason,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DecodeOutput { sequences, stats })
    }
}

/// Validates the spec against a vocabulary and returns each row's params
/// (with the criteria's EOS ids and `min_new_tokens`) and state.
fn prepare(spec: &DecodeSpec<'_>, vocab: usize) -> Result<(Vec<SamplingParams>, Vec<RowState>)> {
    let b = spec.params.len();
    if b == 0 {
        return Err(Error::InvalidArgument(
            "a decode needs at least one row".into(),
        ));
    }
    spec.criteria.validate(vocab)?;
    let states = match spec.states {
        Some(s) if s.len() != b => {
            return Err(Error::InvalidArgument(format!(
                "{} states for {b} rows of params",
                s.len()
            )));
        }
        Some(s) => s.to_vec(),
        None => vec![RowState::default(); b],
    };
    let params = spec
        .params
        .iter()
        .enumerate()
        .map(|(r, p)| {
            let mut p = p.clone();
            spec.criteria.apply_to(&mut p);
            p.validate(r, vocab)?;
            states[r].validate(r, vocab)?;
            Ok(p)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((params, states))
}

/// Decodes the sampler output layout (`[B tokens][B logprobs][B status]`).
fn decode_outputs(words: &[u32], batch: usize) -> Result<Vec<RowOutput>> {
    if words.len() < 3 * batch {
        return Err(Error::Gpu(format!(
            "read back {} words, expected {}",
            words.len(),
            3 * batch
        )));
    }
    (0..batch)
        .map(|r| {
            let code = words[2 * batch + r];
            let status = Status::from_code(code)
                .ok_or_else(|| Error::Gpu(format!("row {r}: unknown status code {code}")))?;
            Ok(if status == Status::Ok {
                RowOutput {
                    token: words[r],
                    logprob: f32::from_bits(words[batch + r]),
                    status,
                }
            } else {
                RowOutput {
                    token: NO_TOKEN,
                    logprob: f32::NAN,
                    status,
                }
            })
        })
        .collect()
}

/// Maps `staging` (already filled by a submitted copy), returns its first
/// `size` bytes as words and unmaps it; counts the bytes in `stats`.
async fn map_words(
    device: &wgpu::Device,
    staging: &wgpu::Buffer,
    size: u64,
    stats: &mut DecodeStats,
) -> Result<Vec<u32>> {
    let bytes = map_read(device, staging, size).await?;
    stats.bytes_mapped += size;
    stats.maps += 1;
    Ok(bytemuck::cast_slice::<u8, u32>(&bytes).to_vec())
}

/// Runs a decode on the GPU: each step records `model_step` (which writes
/// the `[B, V]` logits at `logits`, reading the previous tokens from
/// [`StepInfo::tokens`] on the device), then the sampler, into one encoder
/// and submits it. Stops are checked on the host from the `B` row results
/// (see [`Readback`]); `on_event` gets every token of every running row, in
/// step order, then row order.
///
/// The sampler's params and states of rows `0..B` are replaced. Its
/// `max_seen_tokens` must cover `max_new_tokens` (plus the distinct tokens
/// already in a row's state) for rows with penalties; this is checked
/// before the first step.
///
/// Errors: an empty batch, a batch above the sampler's `max_batch`, bad
/// params / states / criteria (nothing runs), a model step error, or a
/// wgpu error.
///
/// Blocks (native only); [`decode_gpu_async`] is the same loop as a
/// future, for the browser.
#[cfg(not(target_arch = "wasm32"))]
pub fn decode_gpu<M, E>(
    sampler: &mut GpuSampler,
    logits: LogitsView<'_>,
    spec: &DecodeSpec<'_>,
    model_step: M,
    on_event: E,
) -> Result<DecodeOutput>
where
    M: FnMut(&mut wgpu::CommandEncoder, &StepInfo<'_>) -> Result<()>,
    E: FnMut(&DecodeEvent<'_>),
{
    pollster::block_on(decode_gpu_async(
        sampler, logits, spec, model_step, on_event,
    ))
}

/// The async form of [`decode_gpu`]: the same loop, awaiting each step's
/// read-back (and the error scopes) instead of blocking on them. The
/// model step stays a plain closure that records into the step's encoder.
pub async fn decode_gpu_async<M, E>(
    sampler: &mut GpuSampler,
    logits: LogitsView<'_>,
    spec: &DecodeSpec<'_>,
    mut model_step: M,
    mut on_event: E,
) -> Result<DecodeOutput>
where
    M: FnMut(&mut wgpu::CommandEncoder, &StepInfo<'_>) -> Result<()>,
    E: FnMut(&DecodeEvent<'_>),
{
    let vocab = sampler.config().vocab as usize;
    let (params, states) = prepare(spec, vocab)?;
    let b = params.len();
    let batch = u32::try_from(b)
        .ok()
        .filter(|&x| x <= sampler.config().max_batch)
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "batch {b} is above the sampler's max_batch ({})",
                sampler.config().max_batch
            ))
        })?;
    // A row with penalties keeps the counts of its generated tokens in an
    // on-device list of `max_seen_tokens` entries, which must hold every
    // token the decode may generate: refuse before the first step rather
    // than fail at step `max_seen_tokens` and lose the tokens.
    let cap = sampler.config().max_seen_tokens;
    let max_new = spec.criteria.max_new_tokens;
    for (r, (p, s)) in params.iter().zip(&states).enumerate() {
        let seen = s.output_counts().count() as u64;
        if p.penalties_active() && seen + u64::from(max_new) > u64::from(cap) {
            let already = if seen > 0 {
                format!(" plus the {seen} distinct tokens already in its state")
            } else {
                String::new()
            };
            return Err(Error::InvalidArgument(format!(
                "row {r}: max_new_tokens ({max_new}){already} exceeds the sampler's \
                 max_seen_tokens ({cap}), which rows with penalties need to hold every \
                 generated token; create the sampler with max_seen_tokens >= {}",
                seen + u64::from(max_new)
            )));
        }
    }
    for (r, (p, s)) in params.iter().zip(&states).enumerate() {
        // State first: it resets the row's count of tokens generated since
        // its state was set, which `set_params` checks for penalties.
        sampler.set_state(r, s)?;
        sampler.set_params(r, p)?;
    }
    let mut rows = Rows::new(spec)?;
    let every_step = match spec.readback {
        Readback::EveryStep => true,
        Readback::AtEnd => false,
        Readback::Auto => spec.criteria.can_stop_early(),
    };
    let ctx = sampler.context().clone();
    let device = &ctx.device;
    let step_bytes = u64::from(batch) * 12;
    let history_bytes = u64::from(max_new) * step_bytes;
    let mut stats = DecodeStats::default();
    if max_new == 0 {
        return rows.finish(stats);
    }
    let (history, staging) = scoped_async(device, "creating the decode buffers", || {
        let history = if every_step {
            None
        } else {
            check_buffer_size(device, "the decode's token history", history_bytes)?;
            Some(device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgsample decode history"),
                size: history_bytes,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }))
        };
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgsample decode readback"),
            size: if every_step {
                step_bytes
            } else {
                history_bytes
            },
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok((history, staging))
    })
    .await?;

    for step in 0..max_new {
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("wgsample decode step"),
        });
        scoped_async(device, "the model step and the sampler", || {
            model_step(
                &mut encoder,
                &StepInfo {
                    step,
                    batch,
                    tokens: sampler.output_buffer(),
                },
            )?;
            sampler.record(&mut encoder, logits, batch)
        })
        .await?;
        stats.steps += 1;
        let out = sampler.output_buffer();
        if let Some(h) = &history {
            scoped_async(device, "submitting a decode step", || {
                encoder.copy_buffer_to_buffer(out, 0, h, u64::from(step) * step_bytes, step_bytes);
                ctx.queue.submit([encoder.finish()]);
                Ok(())
            })
            .await?;
            // Let wgpu retire finished steps without waiting for them.
            let _ = device.poll(wgpu::PollType::Poll);
            continue;
        }
        scoped_async(device, "submitting a decode step", || {
            encoder.copy_buffer_to_buffer(out, 0, &staging, 0, step_bytes);
            ctx.queue.submit([encoder.finish()]);
            Ok(())
        })
        .await?;
        let words = map_words(device, &staging, step_bytes, &mut stats).await?;
        rows.step(step, &decode_outputs(&words, b)?, &mut on_event);
        if rows.all_stopped() {
            break;
        }
    }
    if let Some(h) = &history {
        let size = u64::from(stats.steps) * step_bytes;
        scoped_async(device, "reading the token history", || {
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("wgsample decode history readback"),
            });
            encoder.copy_buffer_to_buffer(h, 0, &staging, 0, size);
            ctx.queue.submit([encoder.finish()]);
            Ok(())
        })
        .await?;
        let words = map_words(device, &staging, size, &mut stats).await?;
        let per_step = 3 * b;
        for (step, chunk) in words.chunks_exact(per_step).enumerate() {
            rows.step(step as u32, &decode_outputs(chunk, b)?, &mut on_event);
            if rows.all_stopped() {
                break;
            }
        }
    }
    rows.finish(stats)
}

/// Runs a decode on the CPU: each step calls `model_step` to fill the
/// `[B, V]` host logits from the previous tokens, samples them with
/// `sampler`, checks stops and streams through `on_event`, like
/// [`decode_gpu`]; it stops as soon as every row stopped.
/// [`DecodeStats::bytes_mapped`] stays 0.
pub fn decode_cpu<M, E>(
    sampler: &mut CpuSampler,
    vocab: usize,
    spec: &DecodeSpec<'_>,
    mut model_step: M,
    mut on_event: E,
) -> Result<DecodeOutput>
where
    M: FnMut(&CpuStepInfo<'_>, &mut [f32]) -> Result<()>,
    E: FnMut(&DecodeEvent<'_>),
{
    if vocab == 0 {
        return Err(Error::InvalidArgument("vocab must be at least 1".into()));
    }
    let (params, mut states) = prepare(spec, vocab)?;
    let b = params.len();
    let batch =
        u32::try_from(b).map_err(|_| Error::InvalidArgument(format!("batch {b} is too large")))?;
    let len = b.checked_mul(vocab).ok_or_else(|| {
        Error::InvalidArgument(format!("[{b}, {vocab}] logits do not fit in memory"))
    })?;
    let mut rows = Rows::new(spec)?;
    let mut stats = DecodeStats::default();
    let mut logits = vec![0.0f32; len];
    let mut outs = vec![
        RowOutput {
            token: NO_TOKEN,
            logprob: f32::NAN,
            status: Status::Ok,
        };
        b
    ];
    let mut prev: Vec<u32> = Vec::new();
    for step in 0..spec.criteria.max_new_tokens {
        if rows.all_stopped() {
            break;
        }
        model_step(
            &CpuStepInfo {
                step,
                batch,
                tokens: &prev,
            },
            &mut logits,
        )?;
        sampler.sample_into(
            crate::Logits::F32(&logits),
            vocab,
            &params,
            &mut states,
            &mut outs,
        )?;
        stats.steps += 1;
        rows.step(step, &outs, &mut on_event);
        prev.clear();
        prev.extend(outs.iter().map(|o| o.token));
    }
    rows.finish(stats)
}
