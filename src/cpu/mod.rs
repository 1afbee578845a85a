//! The CPU backend: the same contract as the GPU path (SPEC.md), written to
//! be fast so that "GPU vs CPU" races a CPU path worth choosing.
//!
//! Shape: `row` holds the per-row pipeline (steps 1-11, no vocabulary
//! sort, no per-call vocabulary-sized allocation), [`fastmath`] the
//! vectorisable kernels it leans on, and this module the batch driver:
//! shape and parameter validation up front (nothing runs on bad input),
//! f16/bf16 widening into reusable buffers, rows split across scoped
//! threads when the batch is large, and the state update of step 12.
//! The optional outputs ride on the same pass: the top log-probabilities
//! of a row that asks for them (`row::top_logprobs_row`, on the raw row
//! the sampler already widened). Speculative decoding's `verify` runs its
//! rows position by position through `row::verify_position` (steps 1-9,
//! then the acceptance test and the recovered token) and `sample_row` for
//! the bonus token.

pub mod fastmath;
mod row;

use crate::verify::{Drafts, VerifyOutput, check_drafts};
use crate::{Error, Logits, Result, RowOutput, RowState, SamplingParams, Status, TopLogprobs};
use row::{Verdict, Work};

/// A row's final filtered distribution (SPEC steps 1 to 9): surviving token
/// ids and their probabilities renormalised over the survivors, most
/// probable first (ties: lower id first). Empty when `status != Ok`. For a
/// greedy row (temperature 0) it is the argmax with probability 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    /// Status of the row (`Ok`, `InvalidLogits`, `NoCandidates`).
    pub status: Status,
    /// Surviving token ids, most probable first.
    pub tokens: Vec<u32>,
    /// Their probabilities (sum to 1 up to rounding).
    pub probs: Vec<f32>,
}

/// Buffers of one worker thread.
#[derive(Debug, Default)]
struct Worker {
    widened: Vec<f32>,
    work: Work,
}

/// The CPU sampler. Holds reusable scratch (one set per worker thread);
/// rows are spread over up to `threads` scoped threads when the batch holds
/// at least [`CpuSampler::PARALLEL_MIN_ELEMENTS`] logits.
#[derive(Debug)]
pub struct CpuSampler {
    threads: usize,
    logprobs: bool,
    workers: Vec<Worker>,
}

impl Default for CpuSampler {
    fn default() -> Self {
        Self::new()
    }
}

/// Validates shapes, params and states of a batch before anything runs.
fn validate_batch(
    len: usize,
    vocab: usize,
    params: &[SamplingParams],
    states: &[RowState],
) -> Result<()> {
    if vocab == 0 {
        return Err(Error::InvalidArgument("vocab must be at least 1".into()));
    }
    if vocab > u32::MAX as usize {
        return Err(Error::InvalidArgument(format!(
            "vocab {vocab} does not fit in u32"
        )));
    }
    let batch = params.len();
    if batch == 0 {
        return Err(Error::InvalidArgument(
            "batch must be at least 1 (no params given)".into(),
        ));
    }
    if states.len() != batch {
        return Err(Error::InvalidArgument(format!(
            "{} states for {batch} rows of params",
            states.len()
        )));
    }
    if Some(len) != batch.checked_mul(vocab) {
        return Err(Error::InvalidArgument(format!(
            "logits hold {len} values, expected batch {batch} x vocab {vocab}"
        )));
    }
    for (r, (p, s)) in params.iter().zip(states).enumerate() {
        p.validate(r, vocab)?;
        s.validate(r, vocab)?;
    }
    Ok(())
}

/// The f32 view of row `r`, widening f16/bf16 into `buf`.
fn row_f32<'a>(logits: &Logits<'a>, r: usize, vocab: usize, buf: &'a mut Vec<f32>) -> &'a [f32] {
    let range = r * vocab..(r + 1) * vocab;
    match logits {
        Logits::F32(x) => &x[range],
        Logits::F16(x) => {
            buf.clear();
            buf.extend(x[range].iter().map(|h| h.to_f32()));
            buf
        }
        Logits::Bf16(x) => {
            buf.clear();
            buf.extend(x[range].iter().map(|h| h.to_f32()));
            buf
        }
    }
}

impl CpuSampler {
    /// Batches with at least this many logits in all are split across
    /// threads; smaller ones run on the calling thread.
    pub const PARALLEL_MIN_ELEMENTS: usize = 1 << 18;

    /// A sampler that may use every available core for large batches.
    pub fn new() -> Self {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_threads(n)
    }

    /// A sampler that uses at most `threads` threads (`1` = always on the
    /// calling thread; `0` is treated as `1`).
    pub fn with_threads(threads: usize) -> Self {
        CpuSampler {
            threads: threads.max(1),
            logprobs: true,
            workers: Vec::new(),
        }
    }

    /// Turns the logprob output on (the default) or off. Off, every
    /// `RowOutput::logprob` is NaN and rows skip the `sum exp` over the raw
    /// logits that the logprob needs (for greedy rows, most of the work);
    /// tokens and statuses are unchanged.
    pub fn with_logprobs(mut self, on: bool) -> Self {
        self.logprobs = on;
        self
    }

    /// Samples one token per row of a row-major `[B, V]` batch, where
    /// `B = params.len()` and `V = vocab`, following SPEC.md steps 1-12.
    /// `states[r]` is row `r`'s state; it is updated (step 12) for rows
    /// whose status is `Ok` and left as is for the others.
    ///
    /// Errors (nothing is sampled): `vocab == 0`, a logits length other
    /// than `B * V`, `states.len() != B`, or a parameter / state token out
    /// of range (the error names the row and field).
    pub fn sample(
        &mut self,
        logits: Logits<'_>,
        vocab: usize,
        params: &[SamplingParams],
        states: &mut [RowState],
    ) -> Result<Vec<RowOutput>> {
        let mut out = vec![
            RowOutput {
                token: crate::NO_TOKEN,
                logprob: f32::NAN,
                status: Status::Ok,
            };
            params.len()
        ];
        self.sample_into(logits, vocab, params, states, &mut out)?;
        Ok(out)
    }

    /// Like [`CpuSampler::sample`], writing into `out` (length `B`) so a
    /// decode loop allocates nothing per step.
    pub fn sample_into(
        &mut self,
        logits: Logits<'_>,
        vocab: usize,
        params: &[SamplingParams],
        states: &mut [RowState],
        out: &mut [RowOutput],
    ) -> Result<()> {
        self.run_batch(logits, vocab, params, states, out, None)
    }

    /// Exactly [`CpuSampler::sample`] (same tokens, logprobs, statuses and
    /// state updates), plus each row's top log-probabilities (SPEC.md "Top
    /// log-probabilities"): for a row with [`SamplingParams::top_logprobs`]
    /// `N > 0` and status `Ok`, the `min(N, V)` tokens with the largest raw
    /// logits (f16/bf16 widened), largest first, ties to the lower id, each
    /// with `log_softmax(raw)` computed exactly as [`RowOutput::logprob`]
    /// is, and the sampled token's rank (1 + the number of tokens whose raw
    /// logit is strictly greater). Other rows get [`TopLogprobs::default`].
    /// They are computed even on a sampler built `with_logprobs(false)`.
    ///
    /// Errors: those of [`CpuSampler::sample`] (a `top_logprobs` above
    /// [`crate::MAX_TOP_LOGPROBS`] is an [`Error::InvalidParams`]).
    pub fn sample_with_top_logprobs(
        &mut self,
        logits: Logits<'_>,
        vocab: usize,
        params: &[SamplingParams],
        states: &mut [RowState],
    ) -> Result<(Vec<RowOutput>, Vec<TopLogprobs>)> {
        let mut out = vec![
            RowOutput {
                token: crate::NO_TOKEN,
                logprob: f32::NAN,
                status: Status::Ok,
            };
            params.len()
        ];
        let mut top = vec![TopLogprobs::default(); params.len()];
        self.run_batch(logits, vocab, params, states, &mut out, Some(&mut top))?;
        Ok((out, top))
    }

    /// The batch driver of `sample_into` and `sample_with_top_logprobs`:
    /// validation, then rows (split across threads for large batches)
    /// through `row::sample_row`, the top logprobs where `top` is given and
    /// a row asks for them, and step 12.
    fn run_batch(
        &mut self,
        logits: Logits<'_>,
        vocab: usize,
        params: &[SamplingParams],
        states: &mut [RowState],
        out: &mut [RowOutput],
        top: Option<&mut [TopLogprobs]>,
    ) -> Result<()> {
        validate_batch(logits.len(), vocab, params, states)?;
        let batch = params.len();
        if out.len() != batch {
            return Err(Error::InvalidArgument(format!(
                "output slice holds {} rows, expected {batch}",
                out.len()
            )));
        }
        if top.as_ref().is_some_and(|t| t.len() != batch) {
            return Err(Error::InvalidArgument(format!(
                "top-logprobs slice holds {} rows, expected {batch}",
                top.as_ref().map_or(0, |t| t.len())
            )));
        }
        let threads = if batch * vocab >= Self::PARALLEL_MIN_ELEMENTS {
            self.threads.min(batch)
        } else {
            1
        };
        if self.workers.len() < threads {
            self.workers.resize_with(threads, Worker::default);
        }
        let logprobs = self.logprobs;
        let run = |worker: &mut Worker,
                   first: usize,
                   params: &[SamplingParams],
                   states: &mut [RowState],
                   out: &mut [RowOutput],
                   mut top: Option<&mut [TopLogprobs]>| {
            for (j, ((p, s), o)) in params.iter().zip(states.iter_mut()).zip(out).enumerate() {
                let raw = row_f32(&logits, first + j, vocab, &mut worker.widened);
                *o = row::sample_row(raw, p, s, &mut worker.work, logprobs);
                if let Some(top) = top.as_deref_mut() {
                    top[j] = if p.top_logprobs > 0 && o.status == Status::Ok {
                        row::top_logprobs_row(raw, o.token, p.top_logprobs)
                    } else {
                        TopLogprobs::default()
                    };
                }
                if o.status == Status::Ok {
                    s.record(o.token);
                }
            }
        };
        if threads == 1 {
            run(&mut self.workers[0], 0, params, states, out, top);
            return Ok(());
        }
        let per = batch.div_ceil(threads);
        let mut top_chunks = top.map(|t| t.chunks_mut(per));
        std::thread::scope(|scope| {
            for (t, (((worker, p), s), o)) in self
                .workers
                .iter_mut()
                .zip(params.chunks(per))
                .zip(states.chunks_mut(per))
                .zip(out.chunks_mut(per))
                .enumerate()
            {
                let run = &run;
                let top = top_chunks.as_mut().and_then(|c| c.next());
                scope.spawn(move || run(worker, t * per, p, s, o, top));
            }
        });
        Ok(())
    }

    /// Verifies draft tokens against the target model's logits
    /// (speculative decoding; SPEC.md "Speculative decoding" and the rules
    /// in [`crate::verify`]). `target` is `[B, k + 1, V]` row-major,
    /// `B = params.len()`, `V = vocab`, `k = drafts.k`: row `r`'s position
    /// `j` (1-based) at `(r * (k + 1) + j - 1) * V`.
    ///
    /// Per row, position `j` runs SPEC steps 1-9 with the row's state
    /// advanced by `d_1..d_{j-1}` (step `s + j - 1`), giving `p_j`; `d_j` is
    /// accepted when `u_j * q_j(d_j) < p_j(d_j)` (f32), else a recovered
    /// token is emitted and the row stops; when all `k` are accepted the
    /// bonus token is what [`CpuSampler::sample`] returns for position
    /// `k + 1` at step `s + k`. A position whose status is not `Ok` ends
    /// the row (the drafts accepted before it are emitted). Each emitted
    /// token's logprob is its raw `log_softmax` under its own position's
    /// logits (NaN on a sampler built `with_logprobs(false)`), and
    /// `states[r]` records every emitted token. Rows are split across
    /// threads like [`CpuSampler::sample`]'s when `B (k + 1) V` is large;
    /// the result does not depend on the thread count.
    ///
    /// Errors (nothing runs, no state changes): `vocab == 0`, no rows,
    /// `states.len() != B`, bad drafts ([`crate::check_drafts`]), a target
    /// length other than `B * (k + 1) * V`, or a parameter / state token
    /// out of range.
    pub fn verify(
        &mut self,
        target: Logits<'_>,
        vocab: usize,
        drafts: &Drafts<'_>,
        params: &[SamplingParams],
        states: &mut [RowState],
    ) -> Result<Vec<VerifyOutput>> {
        let batch = params.len();
        let k = drafts.k;
        let positions = k.checked_add(1);
        // The shape checks of `sample`, on a batch of B * (k + 1) rows.
        if vocab == 0 {
            return Err(Error::InvalidArgument("vocab must be at least 1".into()));
        }
        if batch == 0 {
            return Err(Error::InvalidArgument(
                "batch must be at least 1 (no params given)".into(),
            ));
        }
        if states.len() != batch {
            return Err(Error::InvalidArgument(format!(
                "{} states for {batch} rows of params",
                states.len()
            )));
        }
        check_drafts(batch, vocab, drafts)?;
        let expected = positions
            .and_then(|n| n.checked_mul(batch))
            .and_then(|n| n.checked_mul(vocab));
        if Some(target.len()) != expected {
            return Err(Error::InvalidArgument(format!(
                "target logits hold {} values, expected batch {batch} x (k {k} + 1) x vocab {vocab}",
                target.len()
            )));
        }
        validate_batch(batch * vocab, vocab, params, states)?;

        let elements = batch * (k + 1) * vocab;
        let threads = if elements >= Self::PARALLEL_MIN_ELEMENTS {
            self.threads.min(batch)
        } else {
            1
        };
        if self.workers.len() < threads {
            self.workers.resize_with(threads, Worker::default);
        }
        let logprobs = self.logprobs;
        let target = &target;
        let run =
            |w: &mut Worker, first: usize, params: &[SamplingParams], states: &mut [RowState]| {
                params
                    .iter()
                    .zip(states.iter_mut())
                    .enumerate()
                    .map(|(j, (p, state))| {
                        verify_row(w, target, vocab, drafts, first + j, p, state, logprobs)
                    })
                    .collect::<Vec<_>>()
            };
        if threads == 1 {
            return Ok(run(&mut self.workers[0], 0, params, states));
        }
        let per = batch.div_ceil(threads);
        let parts = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .workers
                .iter_mut()
                .zip(params.chunks(per))
                .zip(states.chunks_mut(per))
                .enumerate()
                .map(|(t, ((w, p), s))| {
                    let run = &run;
                    scope.spawn(move || run(w, t * per, p, s))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a verify worker panicked"))
                .collect::<Vec<_>>()
        });
        Ok(parts.into_iter().flatten().collect())
    }

    /// The final filtered distribution of row `row` of a `[B, V]` batch
    /// (see [`Distribution`]), reusing this sampler's scratch.
    pub fn distribution(
        &mut self,
        logits: Logits<'_>,
        vocab: usize,
        row: usize,
        params: &SamplingParams,
        state: &RowState,
    ) -> Result<Distribution> {
        if vocab == 0 || !logits.len().is_multiple_of(vocab) {
            return Err(Error::InvalidArgument(format!(
                "logits hold {} values, not a multiple of vocab {vocab}",
                logits.len()
            )));
        }
        let rows = logits.len() / vocab;
        if row >= rows {
            return Err(Error::InvalidArgument(format!(
                "row {row} is out of range (the batch has {rows} rows)"
            )));
        }
        params.validate(row, vocab)?;
        state.validate(row, vocab)?;
        if self.workers.is_empty() {
            self.workers.push(Worker::default());
        }
        let w = &mut self.workers[0];
        let raw = row_f32(&logits, row, vocab, &mut w.widened);
        Ok(row::distribution_row(raw, params, state, &mut w.work))
    }
}

/// The final filtered distribution (SPEC steps 1-9) of one row of `V`
/// logits, `V = row.len()`: surviving ids and renormalised probabilities,
/// most probable first. See [`Distribution`].
pub fn filtered_distribution(
    row: Logits<'_>,
    params: &SamplingParams,
    state: &RowState,
) -> Result<Distribution> {
    CpuSampler::with_threads(1).distribution(row, row.len(), 0, params, state)
}

/// One row of [`CpuSampler::verify`] (row `r` of the batch): positions
/// `1..=k` accepted or rejected in order, then the bonus token when every
/// draft was accepted. `state` advances by the emitted tokens.
#[allow(clippy::too_many_arguments)]
fn verify_row(
    w: &mut Worker,
    target: &Logits<'_>,
    vocab: usize,
    drafts: &Drafts<'_>,
    r: usize,
    p: &SamplingParams,
    state: &mut RowState,
    logprobs: bool,
) -> VerifyOutput {
    let k = drafts.k;
    let mut st = state.clone();
    let mut o = VerifyOutput {
        tokens: Vec::with_capacity(k + 1),
        accepted: 0,
        logprobs: Vec::with_capacity(k + 1),
        status: Status::Ok,
    };
    let base = r * (k + 1);
    let mut all_accepted = true;
    for j in 0..k {
        let raw = row_f32(target, base + j, vocab, &mut w.widened);
        let d = drafts.tokens[r * k + j];
        let q = drafts
            .probs
            .map(|q| &q[(r * k + j) * vocab..(r * k + j + 1) * vocab]);
        match row::verify_position(raw, p, &st, &mut w.work, d, q, logprobs) {
            Verdict::Ended(status) => {
                o.status = status;
                all_accepted = false;
                break;
            }
            Verdict::Accepted(lp) => {
                o.tokens.push(d);
                o.logprobs.push(lp);
                o.accepted += 1;
                st.record(d);
            }
            Verdict::Rejected(t, lp) => {
                o.tokens.push(t);
                o.logprobs.push(lp);
                st.record(t);
                all_accepted = false;
                break;
            }
        }
    }
    if all_accepted {
        let raw = row_f32(target, base + k, vocab, &mut w.widened);
        let b = row::sample_row(raw, p, &st, &mut w.work, logprobs);
        if b.status == Status::Ok {
            o.tokens.push(b.token);
            o.logprobs.push(b.logprob);
            st.record(b.token);
        } else {
            o.status = b.status;
        }
    }
    *state = st;
    o
}
