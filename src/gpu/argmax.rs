//! Greedy decoding on the GPU: per-row argmax with the raw log-probability,
//! the binding side of `shaders/argmax.wgsl`.
//!
//! Shape of the module, and why:
//!
//! - [`ArgmaxPipeline::record`] records one compute pass into the caller's
//!   `wgpu::CommandEncoder` and submits nothing: an engine batches it with
//!   its own work and reads back only the `B` small outputs it needs. The
//!   convenience [`ArgmaxPipeline::run_host`] / [`argmax_host`] upload,
//!   submit and read back for callers that hold the logits on the host.
//! - Everything is validated before anything is recorded (shapes, sizes,
//!   usages, limits), so bad input is an [`Error`], never a wgpu panic or a
//!   poisoned encoder.
//! - The output format ([`GpuRowOutput`], 12 bytes a row: token, logprob,
//!   status code) is the one every sampling pass writes, so the full
//!   sampling pipeline can share the read-back and decoding.
//! - One 256-invocation workgroup per row with a tree reduction: a row of
//!   128k logits is 500 coalesced reads per invocation and 8 barrier steps,
//!   and the kernel stays inside WebGPU's default limits (4 KiB of
//!   workgroup memory, no subgroups), so it also runs in a browser.

use wgpu::util::DeviceExt;

use super::device::{GpuContext, scoped};
use super::kit::{
    DType, LogitsView, buffer_entry, check_buffer_size, check_output_buffer, compute_pipeline,
    grid_2d, plan_logits_binding, submit_and_read,
};
use crate::{Error, Result, RowOutput};

/// WGSL source of the argmax pass: `common.wgsl` followed by `argmax.wgsl`.
pub const ARGMAX_WGSL: &str = concat!(
    include_str!("../../shaders/common.wgsl"),
    "\n",
    include_str!("../../shaders/argmax.wgsl")
);

/// Bytes one row's [`GpuRowOutput`] takes in an output buffer.
pub const ROW_OUTPUT_BYTES: u64 = 12;

/// One row's result as the GPU writes it: `token` (`u32::MAX` when there is
/// none), `logprob` (bits of an f32: `log_softmax(raw row)[token]`, NaN when
/// there is no token) and `status` (0 ok, 1 invalid logits, 2 no
/// candidates; see [`Status::from_code`](crate::Status::from_code)).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GpuRowOutput {
    /// Token id, or [`NO_TOKEN`](crate::NO_TOKEN).
    pub token: u32,
    /// Log-probability of `token` under the raw logits.
    pub logprob: f32,
    /// Status code.
    pub status: u32,
}

impl GpuRowOutput {
    /// Converts to the crate's [`RowOutput`], checking the status code and
    /// that an `Ok` row's token is below `vocab` (anything else means the
    /// buffer did not hold this kernel's output: `Error::Gpu`). Rows without
    /// a token get `NO_TOKEN` and a NaN logprob whatever the buffer held.
    pub fn to_row_output(self, vocab: u32) -> Result<RowOutput> {
        super::kit::row_result(self.token, self.logprob.to_bits(), self.status, vocab)
    }
}

/// Decodes `batch` rows of [`GpuRowOutput`] from read-back bytes.
pub fn decode_row_outputs(bytes: &[u8], batch: usize, vocab: u32) -> Result<Vec<RowOutput>> {
    let need = batch * ROW_OUTPUT_BYTES as usize;
    if bytes.len() < need {
        return Err(Error::InvalidArgument(format!(
            "{} bytes of GPU output, {need} needed for {batch} rows",
            bytes.len()
        )));
    }
    bytes[..need]
        .chunks_exact(ROW_OUTPUT_BYTES as usize)
        .map(|c| bytemuck::pod_read_unaligned::<GpuRowOutput>(c).to_row_output(vocab))
        .collect()
}

/// Uniform block of `argmax.wgsl` (`ArgmaxParams`).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ArgmaxParams {
    batch: u32,
    vocab: u32,
    base: u32,
    grid_x: u32,
}

/// The compiled argmax pass: computes, for each row of a `[B, V]` f32
/// logits block, the argmax token (lowest index on ties), its
/// `log_softmax` under the raw row, and the row status (NaN or +inf
/// anywhere: invalid; every value -inf: no candidates).
#[derive(Debug)]
pub struct ArgmaxPipeline {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl ArgmaxPipeline {
    /// Compiles the pass on `device`. Errors (`Error::Gpu`) only if the
    /// device rejects the shader or pipeline.
    pub fn new(device: &wgpu::Device) -> Result<ArgmaxPipeline> {
        let layout = scoped(device, "argmax bind group layout", || {
            Ok(
                device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some("wgsample argmax"),
                    entries: &[
                        buffer_entry(
                            0,
                            wgpu::BufferBindingType::Storage { read_only: true },
                            Some(4),
                        ),
                        buffer_entry(
                            1,
                            wgpu::BufferBindingType::Storage { read_only: false },
                            Some(ROW_OUTPUT_BYTES),
                        ),
                        buffer_entry(
                            2,
                            wgpu::BufferBindingType::Uniform,
                            Some(std::mem::size_of::<ArgmaxParams>() as u64),
                        ),
                    ],
                }),
            )
        })?;
        let pipeline = compute_pipeline(
            device,
            "wgsample argmax",
            ARGMAX_WGSL,
            "argmax_rows",
            &layout,
        )?;
        Ok(ArgmaxPipeline { layout, pipeline })
    }

    /// Records the argmax of `batch` rows of `vocab` f32 logits, stored
    /// row-major in `logits` from byte `offset`, into `encoder`; row `r`'s
    /// [`GpuRowOutput`] goes to bytes `12 r .. 12 r + 12` of `out`. The
    /// caller submits the encoder (and copies `out` wherever it wants).
    ///
    /// `offset` only needs to be a multiple of 4 (the binding is aligned
    /// down internally). `logits` and `out` need `STORAGE` usage and must be
    /// different buffers of `device`.
    ///
    /// Errors, checked before anything is recorded: `Error::InvalidArgument` for a
    /// zero batch or vocab, an offset not a multiple of 4, a logits buffer
    /// shorter than `offset + 4 B V`, an output shorter than `12 B`, the
    /// same buffer for both; `Error::Gpu` for a missing `STORAGE` usage or a
    /// binding or grid beyond the device's limits.
    pub fn record(
        &self,
        device: &wgpu::Device,
        encoder: &mut wgpu::CommandEncoder,
        logits: LogitsView<'_>,
        batch: u32,
        vocab: u32,
        out: &wgpu::Buffer,
    ) -> Result<()> {
        logits.require_f32("argmax")?;
        let limits = device.limits();
        let binding = logits.plan_binding(&limits, batch, vocab)?;
        let logits = logits.buffer;
        let out_bytes = u64::from(batch) * ROW_OUTPUT_BYTES;
        check_output_buffer(out.size(), out.usage(), &limits, out_bytes)?;
        if logits == out {
            return Err(Error::InvalidArgument(
                "logits and output must be different buffers".into(),
            ));
        }
        let (grid_x, grid_y) = grid_2d(&limits, batch)?;
        let params = ArgmaxParams {
            batch,
            vocab,
            base: binding.base,
            grid_x,
        };
        scoped(device, "recording argmax", || {
            let params_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("wgsample argmax params"),
                contents: bytemuck::bytes_of(&params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
            let bind_group = crate::gpu::kit::bind_group(
                device,
                "wgsample argmax",
                &self.layout,
                &[
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: logits,
                        offset: binding.offset,
                        size: wgpu::BufferSize::new(binding.size),
                    }),
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: out,
                        offset: 0,
                        size: wgpu::BufferSize::new(out_bytes),
                    }),
                    params_buf.as_entire_binding(),
                ],
            );
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("wgsample argmax"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(grid_x, grid_y, 1);
            Ok(())
        })
    }

    /// Uploads `logits` (`batch * vocab` values, row-major), runs the pass,
    /// and reads back the `batch` row outputs (12 bytes a row, not the
    /// logits). Blocks until the GPU is done.
    pub fn run_host(
        &self,
        ctx: &GpuContext,
        logits: &[f32],
        batch: usize,
        vocab: usize,
    ) -> Result<Vec<RowOutput>> {
        let (b, v) = host_shape(logits.len(), batch, vocab)?;
        let device = &ctx.device;
        let in_bytes = std::mem::size_of_val(logits) as u64;
        let out_bytes = u64::from(b) * ROW_OUTPUT_BYTES;
        check_buffer_size(device, "the logits upload", in_bytes)?;
        check_buffer_size(device, "the output", out_bytes)?;
        // Validate against the limits before creating anything.
        plan_logits_binding(
            in_bytes,
            wgpu::BufferUsages::STORAGE,
            &device.limits(),
            0,
            b,
            v,
            DType::F32,
        )?;
        let bytes = scoped(device, "argmax", || {
            let input = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("wgsample logits"),
                contents: bytemuck::cast_slice(logits),
                usage: wgpu::BufferUsages::STORAGE,
            });
            let out = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgsample argmax out"),
                size: out_bytes,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("wgsample argmax"),
            });
            self.record(device, &mut encoder, LogitsView::f32(&input), b, v, &out)?;
            submit_and_read(ctx, encoder, &out, out_bytes)
        })?;
        decode_row_outputs(&bytes, batch, v)
    }
}

/// Checks a host-side `[batch, vocab]` shape against the slice length and
/// the u32 range the kernels use.
pub(crate) fn host_shape(len: usize, batch: usize, vocab: usize) -> Result<(u32, u32)> {
    if batch == 0 || vocab == 0 {
        return Err(Error::InvalidArgument(format!(
            "batch ({batch}) and vocab ({vocab}) must both be at least 1"
        )));
    }
    if batch.checked_mul(vocab) != Some(len) {
        return Err(Error::InvalidArgument(format!(
            "{len} logits do not form a [{batch}, {vocab}] batch"
        )));
    }
    let b = u32::try_from(batch)
        .map_err(|_| Error::InvalidArgument(format!("batch {batch} does not fit in u32")))?;
    let v = u32::try_from(vocab)
        .map_err(|_| Error::InvalidArgument(format!("vocab {vocab} does not fit in u32")))?;
    Ok((b, v))
}

/// Greedy argmax of host logits on the GPU: compiles an [`ArgmaxPipeline`]
/// on `ctx`, uploads `logits` (`batch * vocab` f32, row-major), and returns
/// one [`RowOutput`] per row (token = argmax, lowest index on ties; logprob
/// = `log_softmax(row)[token]`; status). Keep an `ArgmaxPipeline` and call
/// [`ArgmaxPipeline::run_host`] to avoid recompiling per call.
pub fn argmax_host(
    ctx: &GpuContext,
    logits: &[f32],
    batch: usize,
    vocab: usize,
) -> Result<Vec<RowOutput>> {
    host_shape(logits.len(), batch, vocab)?;
    ArgmaxPipeline::new(&ctx.device)?.run_host(ctx, logits, batch, vocab)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::kit::{DType, grid_2d, plan_logits_binding};
    use crate::{NO_TOKEN, Status};

    const F: DType = DType::F32;

    fn limits() -> wgpu::Limits {
        wgpu::Limits::default()
    }

    #[test]
    fn binding_plan_aligns_down() {
        let l = limits(); // min_storage_buffer_offset_alignment = 256
        let p = plan_logits_binding(4096, wgpu::BufferUsages::STORAGE, &l, 300, 2, 7, F).unwrap();
        assert_eq!(p.offset, 256);
        assert_eq!(p.base, 11);
        assert_eq!(p.size, 300 - 256 + 2 * 7 * 4);
        let p = plan_logits_binding(56, wgpu::BufferUsages::STORAGE, &l, 0, 2, 7, F).unwrap();
        assert_eq!((p.offset, p.base, p.size), (0, 0, 56));
        // Half-precision rows are read as u32 pairs: the binding covers
        // whole words, and the base counts elements.
        let h = DType::F16;
        let p = plan_logits_binding(4096, wgpu::BufferUsages::STORAGE, &l, 260, 1, 3, h).unwrap();
        assert_eq!((p.offset, p.base, p.size), (256, 2, 12));
        assert!(plan_logits_binding(6, wgpu::BufferUsages::STORAGE, &l, 0, 1, 3, h).is_err());
        let p = plan_logits_binding(8, wgpu::BufferUsages::STORAGE, &l, 0, 1, 3, h).unwrap();
        assert_eq!((p.offset, p.base, p.size), (0, 0, 8));
    }

    #[test]
    fn binding_plan_rejects_bad_input() {
        let l = limits();
        let s = wgpu::BufferUsages::STORAGE;
        let shape = |r: Result<_>| matches!(r, Err(Error::InvalidArgument(_)));
        assert!(shape(plan_logits_binding(4096, s, &l, 0, 0, 7, F)));
        assert!(shape(plan_logits_binding(4096, s, &l, 0, 2, 0, F)));
        assert!(shape(plan_logits_binding(4096, s, &l, 2, 2, 7, F)));
        assert!(shape(plan_logits_binding(55, s, &l, 0, 2, 7, F)));
        assert!(shape(plan_logits_binding(56, s, &l, 4, 2, 7, F)));
        assert!(matches!(
            plan_logits_binding(4096, wgpu::BufferUsages::COPY_DST, &l, 0, 2, 7, F),
            Err(Error::InvalidArgument(_))
        ));
        let big = u64::MAX;
        assert!(matches!(
            plan_logits_binding(big, s, &l, 0, 1 << 16, 1 << 16, F),
            Err(Error::Limit {
                limit_name: "max_storage_buffer_binding_size",
                ..
            })
        ));
    }

    #[test]
    fn grid_splits_large_batches() {
        let l = limits();
        assert_eq!(grid_2d(&l, 1).unwrap(), (1, 1));
        assert_eq!(grid_2d(&l, 65535).unwrap(), (65535, 1));
        assert_eq!(grid_2d(&l, 65536).unwrap(), (65535, 2));
    }

    #[test]
    fn host_shape_checks() {
        assert_eq!(host_shape(14, 2, 7).unwrap(), (2, 7));
        assert!(host_shape(13, 2, 7).is_err());
        assert!(host_shape(0, 0, 7).is_err());
        assert!(host_shape(0, 2, 0).is_err());
        assert!(host_shape(usize::MAX, usize::MAX, 2).is_err());
    }

    #[test]
    fn row_output_decoding() {
        let rows = [
            GpuRowOutput {
                token: 3,
                logprob: -0.5,
                status: 0,
            },
            GpuRowOutput {
                token: NO_TOKEN,
                logprob: f32::NAN,
                status: 1,
            },
            GpuRowOutput {
                token: NO_TOKEN,
                logprob: f32::NAN,
                status: 2,
            },
        ];
        let out = decode_row_outputs(bytemuck::cast_slice(&rows), 3, 7).unwrap();
        assert_eq!(out[0].token, 3);
        assert_eq!(out[0].status, Status::Ok);
        assert_eq!(out[1].status, Status::InvalidLogits);
        assert_eq!(out[2].status, Status::NoCandidates);
        assert!(out[2].logprob.is_nan());
        let bad = GpuRowOutput {
            token: 9,
            logprob: 0.0,
            status: 0,
        };
        assert!(bad.to_row_output(7).is_err());
        let bad = GpuRowOutput {
            token: 0,
            logprob: 0.0,
            status: 5,
        };
        assert!(bad.to_row_output(7).is_err());
    }

    #[test]
    fn shader_validates_with_naga() {
        crate::gpu::validate_wgsl(ARGMAX_WGSL).unwrap();
    }
}
