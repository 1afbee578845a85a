//! A bigram test model: a `[V, V]` matrix whose row `t` holds the
//! next-token logits after token `t`. It is the smallest model that makes
//! the decode loop real: on the GPU its step is one gather pass
//! (`shaders/decode/bigram.wgsl`, `logits[r, :] = table[prev[r], :]`) that
//! reads `prev` straight from the sampler's output buffer, exactly the
//! data flow an engine's model step has; on the CPU it is a row copy.
//!
//! [`generate`] drives a whole decode with it on either backend; the
//! `wgsample generate` command and the tests use it to compare the two
//! token for token.

use super::run::{
    CpuStepInfo, DecodeEvent, DecodeOutput, DecodeSpec, StepInfo, decode_cpu, decode_gpu_async,
};
use crate::gpu::device::scoped;
use crate::gpu::kit::{buffer_entry, check_buffer_size, compute_pipeline};
use crate::gpu::{GpuContext, GpuSampler, LogitsView, SamplerConfig};
use crate::{CpuSampler, Error, Result, RowState};

/// The gather pass's WGSL source (entry point `bigram_gather`).
const BIGRAM_PASS: &str = include_str!("../../shaders/decode/bigram.wgsl");

/// The gather pass's full WGSL: `CHUNK` generated from the Rust constant,
/// then `shaders/decode/bigram.wgsl`.
pub fn bigram_wgsl() -> String {
    format!(
        "{}\n{BIGRAM_PASS}",
        crate::gpu::kit::wgsl_consts(&[("CHUNK", CHUNK.into())])
    )
}

/// Logits per workgroup along a row (`CHUNK` in the shader).
const CHUNK: u32 = 4096;

/// Checks that `table` is a `[vocab, vocab]` matrix and that the GPU
/// gather can index it with u32.
pub fn check_table(table: &[f32], vocab: usize) -> Result<()> {
    if vocab == 0 {
        return Err(Error::InvalidArgument(
            "the bigram vocab must be at least 1".into(),
        ));
    }
    let elems = vocab.checked_mul(vocab);
    if elems != Some(table.len()) {
        return Err(Error::InvalidArgument(format!(
            "a bigram table for vocab {vocab} needs {vocab} x {vocab} values, it has {}",
            table.len()
        )));
    }
    Ok(())
}

/// The CPU twin of the gather: `out[r, :] = table[tokens[r], :]`, a row of
/// zeros for a token `>= vocab` (a row that got no token).
///
/// Errors: `vocab` 0, a `table` that is not `[vocab, vocab]`
/// ([`check_table`]), or an `out` that does not hold exactly one row of
/// `vocab` values per token.
pub fn bigram_logits_cpu(
    table: &[f32],
    vocab: usize,
    tokens: &[u32],
    out: &mut [f32],
) -> Result<()> {
    check_table(table, vocab)?;
    if tokens.len().checked_mul(vocab) != Some(out.len()) {
        return Err(Error::InvalidArgument(format!(
            "the output holds {} values, {} tokens of vocab {vocab} need {} x {vocab}",
            out.len(),
            tokens.len(),
            tokens.len()
        )));
    }
    for (row, &t) in out.chunks_exact_mut(vocab).zip(tokens) {
        let t = t as usize;
        // The table has `vocab * vocab` values (checked above), so row
        // `t < vocab` is in range; `get` keeps that a checked fact.
        let src = if t < vocab {
            table.get(t * vocab..(t + 1) * vocab)
        } else {
            None
        };
        match src {
            Some(src) => row.copy_from_slice(src),
            None => row.fill(0.0),
        }
    }
    Ok(())
}

/// The uniform of the gather pass (`Dims` in the shader).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Dims {
    vocab: u32,
    batch: u32,
    pad: [u32; 2],
}

/// The bigram model on the GPU: the table, a `[max_batch, V]` f32 logits
/// buffer, the start tokens and the gather pipeline.
#[derive(Debug)]
pub struct BigramModel {
    ctx: GpuContext,
    vocab: u32,
    max_batch: u32,
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    dims: wgpu::Buffer,
    table: wgpu::Buffer,
    logits: wgpu::Buffer,
    start: wgpu::Buffer,
}

impl BigramModel {
    /// Uploads `table` (`[vocab, vocab]`, row `t` = logits after token `t`)
    /// and creates the buffers for up to `max_batch` rows.
    ///
    /// Errors: a table of the wrong size, `max_batch` 0 or above the
    /// device's workgroup grid, or buffers beyond the device's limits.
    pub fn new(ctx: &GpuContext, table: &[f32], vocab: u32, max_batch: u32) -> Result<Self> {
        check_table(table, vocab as usize)?;
        let device = &ctx.device;
        let limits = device.limits();
        if max_batch == 0 {
            return Err(Error::InvalidArgument(
                "max_batch must be at least 1".into(),
            ));
        }
        if max_batch > limits.max_compute_workgroups_per_dimension {
            return Err(Error::limit(
                "max_batch (workgroups in a grid column)",
                u64::from(max_batch),
                "max_compute_workgroups_per_dimension",
                u64::from(limits.max_compute_workgroups_per_dimension),
            ));
        }
        let v = u64::from(vocab);
        if v * v + u64::from(CHUNK) > u64::from(u32::MAX)
            || v * u64::from(max_batch) + u64::from(CHUNK) > u64::from(u32::MAX)
        {
            return Err(Error::InvalidArgument(format!(
                "a bigram of vocab {vocab} (batch {max_batch}) has more elements than a u32 index can address"
            )));
        }
        for (what, bytes) in [
            ("the bigram table", v * v * 4),
            ("the bigram logits", v * u64::from(max_batch) * 4),
        ] {
            check_buffer_size(device, what, bytes)?;
            if bytes > limits.max_storage_buffer_binding_size {
                return Err(Error::limit(
                    format!("{what} (bytes)"),
                    bytes,
                    "max_storage_buffer_binding_size",
                    limits.max_storage_buffer_binding_size,
                ));
            }
        }
        use wgpu::BufferBindingType as T;
        let layout = scoped(device, "bigram bind group layout", || {
            Ok(
                device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some("wgsample bigram"),
                    entries: &[
                        buffer_entry(0, T::Uniform, Some(16)),
                        buffer_entry(1, T::Storage { read_only: true }, Some(4)),
                        buffer_entry(2, T::Storage { read_only: true }, Some(4)),
                        buffer_entry(3, T::Storage { read_only: false }, Some(4)),
                    ],
                }),
            )
        })?;
        let pipeline = compute_pipeline(
            device,
            "wgsample bigram gather",
            &bigram_wgsl(),
            "bigram_gather",
            &layout,
        )?;
        scoped(device, "creating the bigram buffers", || {
            use wgpu::util::DeviceExt as _;
            let dims = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("wgsample bigram dims"),
                contents: bytemuck::bytes_of(&Dims {
                    vocab,
                    batch: max_batch,
                    pad: [0; 2],
                }),
                usage: wgpu::BufferUsages::UNIFORM,
            });
            let table = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("wgsample bigram table"),
                contents: bytemuck::cast_slice(table),
                usage: wgpu::BufferUsages::STORAGE,
            });
            let logits = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgsample bigram logits"),
                size: v * u64::from(max_batch) * 4,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            });
            let start = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgsample bigram start tokens"),
                size: u64::from(max_batch).max(4) * 4,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            Ok(BigramModel {
                ctx: ctx.clone(),
                vocab,
                max_batch,
                layout,
                pipeline,
                dims,
                table,
                logits,
                start,
            })
        })
    }

    /// The vocabulary size `V`.
    pub fn vocab(&self) -> u32 {
        self.vocab
    }

    /// The largest batch a step may have.
    pub fn max_batch(&self) -> u32 {
        self.max_batch
    }

    /// Where the model writes its logits: `[max_batch, V]` f32 from byte 0
    /// (rows `0..B` of a step).
    pub fn logits(&self) -> LogitsView<'_> {
        LogitsView::f32(&self.logits)
    }

    /// Writes the start tokens (one per row, each `< V`), which step 0
    /// reads. Lands before the next submission.
    pub fn set_start(&self, start: &[u32]) -> Result<()> {
        if start.is_empty() || start.len() > self.max_batch as usize {
            return Err(Error::InvalidArgument(format!(
                "{} start tokens for a model of max_batch {}",
                start.len(),
                self.max_batch
            )));
        }
        if let Some((r, t)) = start.iter().enumerate().find(|(_, t)| **t >= self.vocab) {
            return Err(Error::InvalidArgument(format!(
                "row {r}: start token {t} is not a token id (vocab size is {})",
                self.vocab
            )));
        }
        self.ctx
            .queue
            .write_buffer(&self.start, 0, bytemuck::cast_slice(start));
        Ok(())
    }

    /// Records the gather `logits[r, :] = table[tokens[r], :]` for rows
    /// `0..batch`, reading the ids from the first `4 * batch` bytes of
    /// `tokens` on the device (a sampler's output buffer, or any STORAGE
    /// buffer of u32 ids). An id `>= V` gives a row of zeros.
    pub fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        tokens: &wgpu::Buffer,
        batch: u32,
    ) -> Result<()> {
        if batch == 0 || batch > self.max_batch {
            return Err(Error::InvalidArgument(format!(
                "batch {batch} must be between 1 and the model's max_batch ({})",
                self.max_batch
            )));
        }
        if !tokens.usage().contains(wgpu::BufferUsages::STORAGE) {
            return Err(Error::InvalidArgument(format!(
                "the tokens buffer needs STORAGE usage (it has {:?})",
                tokens.usage()
            )));
        }
        if tokens.size() < u64::from(batch) * 4 {
            return Err(Error::InvalidArgument(format!(
                "the tokens buffer has {} bytes, {batch} ids need {}",
                tokens.size(),
                u64::from(batch) * 4
            )));
        }
        let device = &self.ctx.device;
        scoped(device, "recording the bigram gather", || {
            let bg = crate::gpu::kit::bind_group(
                device,
                "wgsample bigram",
                &self.layout,
                &[
                    self.dims.as_entire_binding(),
                    self.table.as_entire_binding(),
                    tokens.as_entire_binding(),
                    self.logits.as_entire_binding(),
                ],
            );
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("wgsample bigram gather"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(self.vocab.div_ceil(CHUNK), batch, 1);
            Ok(())
        })
    }

    /// The model step for [`decode_gpu`](crate::decode::decode_gpu): at step 0 it gathers from the
    /// start tokens ([`BigramModel::set_start`]), later from the sampler's
    /// output ([`StepInfo::tokens`]).
    pub fn record_step(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        info: &StepInfo<'_>,
    ) -> Result<()> {
        let tokens = if info.step == 0 {
            &self.start
        } else {
            info.tokens
        };
        self.record(encoder, tokens, info.batch)
    }
}

/// Where [`generate`] runs.
#[derive(Debug, Clone, Copy)]
pub enum Backend<'a> {
    /// [`CpuSampler`] and host logits.
    Cpu,
    /// [`GpuSampler`] and the [`BigramModel`] gather, on this device.
    Gpu(&'a GpuContext),
}

/// Decodes with the bigram model: row `r` starts from `starts[r]` (also its
/// prompt for the repetition penalty, unless `spec.states` gives states)
/// and is sampled with `spec.params[r]` until `spec.criteria` stops it.
/// `on_event` streams every token as [`decode_gpu`](crate::decode::decode_gpu) / [`decode_cpu`] do.
///
/// The two backends give the same tokens (SPEC.md: a row's token depends
/// only on its own logits, parameters, seed and step). Blocks (native
/// only; [`generate_async`] everywhere).
#[cfg(not(target_arch = "wasm32"))]
pub fn generate(
    table: &[f32],
    vocab: usize,
    starts: &[u32],
    spec: &DecodeSpec<'_>,
    backend: Backend<'_>,
    on_event: impl FnMut(&DecodeEvent<'_>),
) -> Result<DecodeOutput> {
    pollster::block_on(generate_async(
        table, vocab, starts, spec, backend, on_event,
    ))
}

/// The async form of [`generate`].
pub async fn generate_async(
    table: &[f32],
    vocab: usize,
    starts: &[u32],
    spec: &DecodeSpec<'_>,
    backend: Backend<'_>,
    on_event: impl FnMut(&DecodeEvent<'_>),
) -> Result<DecodeOutput> {
    check_table(table, vocab)?;
    let b = spec.params.len();
    if starts.len() != b {
        return Err(Error::InvalidArgument(format!(
            "{} start tokens for {b} rows of params",
            starts.len()
        )));
    }
    if let Some((r, t)) = starts
        .iter()
        .enumerate()
        .find(|(_, t)| **t as usize >= vocab)
    {
        return Err(Error::InvalidArgument(format!(
            "row {r}: start token {t} is not a token id (vocab size is {vocab})"
        )));
    }
    let prompts: Vec<RowState>;
    let mut spec = *spec;
    if spec.states.is_none() {
        prompts = starts.iter().map(|&t| RowState::new(&[t])).collect();
        spec.states = Some(&prompts);
    }
    match backend {
        Backend::Cpu => decode_cpu(
            &mut CpuSampler::new(),
            vocab,
            &spec,
            |info: &CpuStepInfo<'_>, logits: &mut [f32]| {
                let prev = if info.step == 0 { starts } else { info.tokens };
                bigram_logits_cpu(table, vocab, prev, logits)
            },
            on_event,
        ),
        Backend::Gpu(ctx) => {
            let v = u32::try_from(vocab)
                .map_err(|_| Error::InvalidArgument(format!("vocab {vocab} is too large")))?;
            let batch = u32::try_from(b)
                .map_err(|_| Error::InvalidArgument(format!("batch {b} is too large")))?;
            if batch == 0 {
                return Err(Error::InvalidArgument(
                    "a decode needs at least one row".into(),
                ));
            }
            let model = BigramModel::new(ctx, table, v, batch)?;
            model.set_start(starts)?;
            let seen = spec
                .states
                .into_iter()
                .flatten()
                .map(|s| s.output_counts().count() as u32)
                .max()
                .unwrap_or(0);
            let mut cfg = SamplerConfig::new(batch, v);
            // Token counts matter only to rows with penalties.
            if spec.params.iter().any(|p| p.penalties_active()) {
                cfg.max_seen_tokens = cfg.max_seen_tokens.max(
                    spec.criteria
                        .max_new_tokens
                        .saturating_add(seen)
                        .saturating_add(1),
                );
            }
            let mut sampler = GpuSampler::new(ctx, cfg)?;
            decode_gpu_async(
                &mut sampler,
                model.logits(),
                &spec,
                |enc, info| model.record_step(enc, info),
                on_event,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gather_shader_validates() {
        crate::gpu::validate_wgsl(&bigram_wgsl()).unwrap();
    }

    #[test]
    fn cpu_gather_copies_rows_and_zeroes_missing_tokens() {
        let table: Vec<f32> = (0..9).map(|x| x as f32).collect();
        let mut out = vec![7.0; 9];
        bigram_logits_cpu(&table, 3, &[2, crate::NO_TOKEN, 0], &mut out).unwrap();
        assert_eq!(out, [6.0, 7.0, 8.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0]);
        assert!(check_table(&table, 3).is_ok());
        assert!(check_table(&table, 2).is_err());
        assert!(check_table(&[], 0).is_err());
    }
}
