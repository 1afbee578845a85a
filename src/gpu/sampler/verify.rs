//! Speculative-decoding verification on the GPU (SPEC.md "Speculative
//! decoding", rules in [`crate::verify`]).
//!
//! A verification of `B` rows with `k` drafts runs the sampling passes over
//! `B * (k + 1)` virtual rows, one per target position, each with its row's
//! parameters, its own overlay table (the drafts before it count as
//! generated), and its row's step and length advanced by its position; the
//! target logits `[B, k + 1, V]` are exactly those rows. `finish` also
//! records each position's filtered distribution and the draft's
//! probability under it, and (without draft probabilities) samples the
//! recovered token with the draft left out; with draft probabilities a
//! second dense pass, `recover`, samples `ln(p - q) + g`. `accept` (one
//! workgroup a row) then walks the positions in order, writes the emitted
//! tokens, and advances the row's state. So a sampler of `max_batch` rows
//! verifies up to `max_batch / (k + 1)` rows at once.

use super::passes::idx;
use super::{
    Dims, Dst, FILTERS, GpuSampler, OUT_WORDS, Plan, scoped, scoped_async, storage_buffer,
};
use crate::gpu::kit::{DType, LogitsView};
use crate::verify::{Drafts, VerifyOutput, check_drafts};
use crate::{Error, Logits, NO_TOKEN, Result, Status};

/// The largest `k` (draft tokens per row) a GPU verification takes.
pub const MAX_DRAFT_TOKENS: u32 = 32;

/// Where a recorded verification's draft tokens come from.
enum DraftSource<'a> {
    /// Checked on the host and staged with the other uploads.
    Host(&'a [u32]),
    /// A device buffer and byte offset, copied in the encoder; checked in
    /// accept.wgsl.
    Device(&'a wgpu::Buffer, u64),
}

impl GpuSampler {
    /// Records a verification of rows `0..batch` into `encoder`: `target`
    /// views the `[batch, k + 1, V]` target logits (f32, f16 or bf16, any
    /// 4-byte-aligned offset), `tokens` the `[batch, k]` draft tokens,
    /// `probs` optionally the `[batch, k, V]` f32 draft probabilities on
    /// the device (checked there: a bad row gives
    /// [`Status::InvalidDraft`]). Each row uses its parameters and its
    /// device state, which advances once per emitted token. Read the
    /// results with [`GpuSampler::submit_and_read_verify`]; the layout in
    /// [`GpuSampler::output_buffer`] is described there.
    ///
    /// Errors (nothing is recorded): `k` (= `tokens.len() / batch`) not in
    /// `1..=32`, `batch * (k + 1)` above `max_batch`, a draft token `>= V`,
    /// `probs` not f32 or in the target's buffer, and the binding errors of
    /// [`GpuSampler::record`].
    pub fn record_verify(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        target: LogitsView<'_>,
        batch: u32,
        tokens: &[u32],
        probs: Option<LogitsView<'_>>,
    ) -> Result<()> {
        if batch == 0 || !tokens.len().is_multiple_of(batch as usize) {
            return Err(Error::InvalidArgument(format!(
                "{} draft tokens do not split into {batch} rows",
                tokens.len()
            )));
        }
        let k = (tokens.len() / batch as usize) as u32;
        if let Some(d) = tokens.iter().find(|&&d| d >= self.cfg.vocab) {
            return Err(Error::InvalidArgument(format!(
                "draft token {d} is not a token id (vocab size is {})",
                self.cfg.vocab
            )));
        }
        self.record_verify_from(encoder, target, batch, k, DraftSource::Host(tokens), probs)
    }

    /// [`GpuSampler::record_verify`] with the `[batch, k]` draft tokens
    /// (u32, row-major) read from a device buffer at byte `offset`, for
    /// example a draft model's sampled tokens, so that no draft goes
    /// through the host. The `batch * k * 4` bytes are copied into the
    /// sampler's own buffer at the start of the recorded work
    /// (`copy_buffer_to_buffer`), so `drafts` needs
    /// [`wgpu::BufferUsages::COPY_SRC`] and must hold its values when the
    /// encoder runs. A draft token `>= V` cannot be refused here: its row
    /// gets [`Status::InvalidDraft`] on the device, emits nothing and does
    /// not advance; the other rows are unaffected.
    ///
    /// Errors (nothing is recorded): those of [`GpuSampler::record_verify`]
    /// other than the host-side token check, an `offset` not a multiple of
    /// 4, `drafts` too small for `batch * k` tokens at `offset`, without
    /// `COPY_SRC`, or the sampler's own lists buffer.
    #[allow(clippy::too_many_arguments)]
    pub fn record_verify_device(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        target: LogitsView<'_>,
        batch: u32,
        k: u32,
        drafts: &wgpu::Buffer,
        offset: u64,
        probs: Option<LogitsView<'_>>,
    ) -> Result<()> {
        let bytes = u64::from(batch) * u64::from(k) * 4;
        if !offset.is_multiple_of(4) {
            return Err(Error::InvalidArgument(format!(
                "the draft tokens' offset {offset} is not a multiple of 4"
            )));
        }
        if offset
            .checked_add(bytes)
            .is_none_or(|end| end > drafts.size())
        {
            return Err(Error::InvalidArgument(format!(
                "the draft-token buffer holds {} bytes; {batch} rows of {k} u32 drafts at offset \
                 {offset} need {}",
                drafts.size(),
                offset.saturating_add(bytes)
            )));
        }
        if !drafts.usage().contains(wgpu::BufferUsages::COPY_SRC) {
            return Err(Error::InvalidArgument(
                "the draft-token buffer needs BufferUsages::COPY_SRC (it is copied into the \
                 sampler's lists)"
                    .into(),
            ));
        }
        if *drafts == self.lists_buf {
            return Err(Error::InvalidArgument(
                "the draft tokens are in the sampler's own lists buffer; copy them to a buffer \
                 of your own first"
                    .into(),
            ));
        }
        self.record_verify_from(
            encoder,
            target,
            batch,
            k,
            DraftSource::Device(drafts, offset),
            probs,
        )
    }

    /// The body of both `record_verify` forms, once the drafts' shape is
    /// known: `batch` rows of `k` drafts from `source`.
    fn record_verify_from(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        target: LogitsView<'_>,
        batch: u32,
        k: u32,
        source: DraftSource<'_>,
        probs: Option<LogitsView<'_>>,
    ) -> Result<()> {
        if batch == 0 {
            return Err(Error::InvalidArgument(
                "batch must be at least 1 (no rows to verify)".into(),
            ));
        }
        if k == 0 || k > MAX_DRAFT_TOKENS {
            return Err(Error::InvalidArgument(format!(
                "verify takes 1 to {MAX_DRAFT_TOKENS} draft tokens per row on the GPU, got k = {k}"
            )));
        }
        let positions = k + 1;
        let virt = u64::from(batch) * u64::from(positions);
        if virt > u64::from(self.cfg.max_batch) {
            return Err(Error::InvalidArgument(format!(
                "verifying {batch} rows of {k} drafts takes batch x (k + 1) = {virt} rows of the \
                 sampler, above its max_batch ({}); create it with max_batch >= {virt}",
                self.cfg.max_batch
            )));
        }
        // Only the real rows emit tokens (the virtual ones are positions).
        let bind = self.validate(target, virt as u32, (batch as usize, u64::from(positions)))?;
        let limits = self.ctx.device.limits();
        let qbind = match probs {
            None => None,
            Some(q) => {
                if q.dtype != DType::F32 {
                    return Err(Error::InvalidArgument(
                        "draft probabilities must be f32".into(),
                    ));
                }
                if q.buffer == target.buffer {
                    return Err(Error::InvalidArgument(
                        "the draft probabilities must be in another buffer than the target logits"
                            .into(),
                    ));
                }
                Some(q.plan_binding(&limits, batch * k, self.cfg.vocab)?)
            }
        };
        // The uploads of sampling (stage_uploads), for the virtual rows.
        let rows = batch as usize;
        self.prepare_rows(rows, FILTERS)?;
        let ov_words = self.ov_tables * u64::from(positions) + u64::from(self.cfg.max_batch);
        self.ov_buf = self.fitted(
            self.ov_buf.clone(),
            "wgsample overlay",
            "the rows' bias, banned, EOS and penalty tables (one per verified position)",
            "; lower max_seen_tokens, k or the number of rows with penalties",
            ov_words * 4,
        )?;
        let rank_off = u32::try_from(self.ov_tables * u64::from(positions))
            .map_err(|_| Error::Gpu("the rows' overlay tables exceed 2^32 words".into()))?;
        let dims = Dims {
            batch: virt as u32,
            vocab: self.cfg.vocab,
            chunks: self.chunks,
            dtype: target.dtype.code(),
            slots: self.slots,
            cap: self.cfg.max_seen_tokens,
            logits_off: bind.base,
            max_batch: self.cfg.max_batch,
            rank_off,
            positions,
            drafts_off: self.lists_len,
            vmode: if qbind.is_some() { 2 } else { 1 },
            q_off: qbind.map_or(0, |q| q.base),
            ..Default::default()
        };
        let plan = Plan::for_verify(
            &self.flags[..rows],
            self.chunks,
            batch,
            positions,
            qbind.is_some(),
        );
        // The bind groups before the step is committed: wgpu may refuse
        // them (a destroyed buffer), and a failed record changes nothing.
        let device = self.ctx.device.clone();
        let q_group = match (probs, qbind) {
            (Some(q), Some(qb)) => Some(scoped(&device, "creating the verify bind group", || {
                Ok(self.bind_group_with(
                    target.buffer,
                    bind.offset,
                    bind.size,
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: q.buffer,
                        offset: qb.offset,
                        size: wgpu::BufferSize::new(qb.size),
                    }),
                ))
            })?),
            _ => None,
        };
        self.ensure_bind_group(target.buffer, &bind)?;
        self.commit_rows(rows, dims, u64::from(positions));
        self.last_verify = Some((batch, positions));
        let at = u64::from(self.lists_len) * 4;
        match source {
            DraftSource::Host(tokens) => self.stage(Dst::Lists, at, bytemuck::cast_slice(tokens)),
            // Before encode's staged writes, which touch only the lists
            // before `at` (prepare_rows above has sized lists_buf).
            DraftSource::Device(buf, offset) => encoder.copy_buffer_to_buffer(
                buf,
                offset,
                &self.lists_buf,
                at,
                u64::from(batch) * u64::from(k) * 4,
            ),
        }
        debug_assert!(plan.passes.iter().any(|d| d.pass == idx::ACCEPT));
        self.encode(encoder, target.buffer, &bind, &plan, None, q_group.as_ref())
    }

    /// Submits `encoder` (holding this sampler's [`GpuSampler::record_verify`])
    /// and reads back each row's result. The output buffer holds, after
    /// the `B (k + 1)` positions' own 4 words each (token, logprob, status,
    /// unused), per row the number of tokens emitted `[B]`, the drafts
    /// accepted `[B]`, the status `[B]`, then the emitted tokens
    /// `[B, k + 1]` (`NO_TOKEN` past the count) and their logprobs
    /// `[B, k + 1]`. Blocks (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn submit_and_read_verify(
        &self,
        encoder: wgpu::CommandEncoder,
    ) -> Result<Vec<VerifyOutput>> {
        pollster::block_on(self.submit_and_read_verify_async(encoder))
    }

    /// The async form of [`GpuSampler::submit_and_read_verify`].
    pub async fn submit_and_read_verify_async(
        &self,
        encoder: wgpu::CommandEncoder,
    ) -> Result<Vec<VerifyOutput>> {
        let Some((rows, positions)) = self.last_verify else {
            return Err(Error::InvalidArgument(
                "the last record was not a verification (call record_verify first)".into(),
            ));
        };
        let (b, p) = (rows as usize, positions as usize);
        let base = 4 * b * p;
        let words = base + 3 * b + 2 * b * p;
        debug_assert!(words as u64 <= u64::from(self.cfg.max_batch) * OUT_WORDS);
        let bytes = self
            .readback
            .read_async(
                &self.ctx,
                encoder,
                &self.out_buf,
                words as u64 * 4,
                "reading the verification",
            )
            .await?;
        let w: &[u32] = bytemuck::cast_slice(&bytes);
        (0..b)
            .map(|r| {
                let m = w[base + r] as usize;
                let accepted = w[base + b + r];
                let code = w[base + 2 * b + r];
                let status = Status::from_code(code).ok_or_else(|| {
                    Error::Gpu(format!("row {r}: unknown status code {code} in GPU output"))
                })?;
                if m > p || accepted as usize > m.min(p - 1) {
                    return Err(Error::Gpu(format!(
                        "row {r}: GPU verification emitted {m} tokens with {accepted} accepted"
                    )));
                }
                let toks = &w[base + 3 * b + r * p..][..m];
                let lps = &w[base + 3 * b + b * p + r * p..][..m];
                if let Some(t) = toks.iter().find(|&&t| t >= self.cfg.vocab || t == NO_TOKEN) {
                    return Err(Error::Gpu(format!(
                        "row {r}: GPU verification emitted token {t}, out of range"
                    )));
                }
                Ok(VerifyOutput {
                    tokens: toks.to_vec(),
                    accepted,
                    logprobs: lps.iter().map(|&x| f32::from_bits(x)).collect(),
                    status,
                })
            })
            .collect()
    }

    /// Uploads host target logits (`[batch, k + 1, V]`) and drafts, checks
    /// them as the CPU backend does ([`check_drafts`]: an [`Error`] before
    /// anything runs), and verifies rows `0..batch` with their parameters
    /// and device state (see [`GpuSampler::record_verify`]). Blocks
    /// (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn verify_host(
        &mut self,
        target: Logits<'_>,
        batch: u32,
        drafts: &Drafts<'_>,
    ) -> Result<Vec<VerifyOutput>> {
        pollster::block_on(self.verify_host_async(target, batch, drafts))
    }

    /// The async form of [`GpuSampler::verify_host`].
    pub async fn verify_host_async(
        &mut self,
        target: Logits<'_>,
        batch: u32,
        drafts: &Drafts<'_>,
    ) -> Result<Vec<VerifyOutput>> {
        let v = self.cfg.vocab as usize;
        check_drafts(batch as usize, v, drafts)?;
        let virt = batch as usize * (drafts.k + 1);
        if virt > self.cfg.max_batch as usize {
            return Err(Error::InvalidArgument(format!(
                "verifying {batch} rows of {} drafts takes batch x (k + 1) = {virt} rows of the \
                 sampler, above its max_batch ({}); create it with max_batch >= {virt}",
                drafts.k, self.cfg.max_batch
            )));
        }
        if target.len() != virt * v {
            return Err(Error::InvalidArgument(format!(
                "target logits hold {} values, expected batch {batch} x (k + 1) {} x vocab {v}",
                target.len(),
                drafts.k + 1
            )));
        }
        let (up, dtype) = self.upload_host(target, virt as u32)?;
        let q_buf = match drafts.probs {
            None => None,
            Some(q) => {
                let bytes: &[u8] = bytemuck::cast_slice(q);
                if self
                    .q_upload
                    .as_ref()
                    .is_none_or(|b| b.size() < bytes.len() as u64)
                {
                    self.q_upload = Some(storage_buffer(
                        &self.ctx.device,
                        "wgsample draft probabilities upload",
                        bytes.len() as u64,
                        wgpu::BufferUsages::empty(),
                    ));
                }
                let buf = self.q_upload.clone().expect("created above");
                self.ctx.queue.write_buffer(&buf, 0, bytes);
                Some(buf)
            }
        };
        let device = self.ctx.device.clone();
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("wgsample verify"),
        });
        let view = LogitsView {
            buffer: &up,
            offset: 0,
            dtype,
        };
        let qview = q_buf.as_ref().map(LogitsView::f32);
        scoped_async(&device, "recording the verification", || {
            self.record_verify(&mut encoder, view, batch, drafts.tokens, qview)
        })
        .await?;
        self.submit_and_read_verify_async(encoder).await
    }
}
