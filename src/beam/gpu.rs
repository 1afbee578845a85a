//! The GPU beam step: three WGSL passes (`shaders/beam/*.wgsl`) over a
//! `[G * b, V]` f32 logits buffer that stays on the device.
//!
//! 1. `lse` (`(chunks, rows)` workgroups of 256, 4096 logits each): per
//!    chunk of a row, the online max and sum of `exp(x - max)` and whether
//!    any logit is NaN or `+inf`.
//! 2. `chunk_topk` (`(chunks, rows)`): merges the row's partials in chunk
//!    order (every workgroup of a row gets the same log-sum-exp), scores
//!    its 4096 candidates as order-preserving u32 keys, and emits the
//!    chunk's best `K` through a winner tree over the 256 invocations'
//!    heads (one barrier per emitted candidate).
//! 3. `merge_topk` (`(1, G)`): merges the `b * chunks` sorted lists of a
//!    group with the same winner tree, writes its best `K` as (score,
//!    beam, token) and the group's status.
//!
//! A candidate in its group's best `K` is in its chunk's best `K`, so the
//! lists lose nothing. Everything stays inside WebGPU's default limits
//! (256 invocations, about 3 KiB of workgroup memory, 5 storage buffers),
//! uses no subgroups, and keeps barriers in uniform control flow (the
//! winning lane is read with `workgroupUniformLoad`). The limits of this
//! design: `K <=` [`MAX_K`] and `b * ceil(V / 4096) <=` [`MAX_LISTS`]
//! (each of the merge's 256 invocations follows at most 16 lists).

use super::Candidate;
use super::cpu::check_step;
use crate::gpu::GpuContext;
use crate::gpu::device::{scoped, scoped_async};
use crate::gpu::kit::{
    LogitsView, buffer_entry, check_binding_size, check_buffer_size, compute_pipeline, read_async,
    storage_buffer,
};
use crate::{Error, Result};

/// The largest `K` (candidates per group) the GPU step accepts.
pub const MAX_K: u32 = 1024;
/// The most sorted lists a group's merge follows: `b * ceil(V / 4096)`
/// (256 invocations x 16 lists each).
pub const MAX_LISTS: u32 = 4096;

/// Logits per workgroup and row (`CHUNK` in bindings.wgsl).
const CHUNK: u32 = 4096;

const COMMON: &str = include_str!("../../shaders/common.wgsl");
const BINDINGS: &str = include_str!("../../shaders/beam/bindings.wgsl");
const TOURNAMENT: &str = include_str!("../../shaders/beam/tournament.wgsl");
const LSE: &str = include_str!("../../shaders/beam/lse.wgsl");
const CHUNK_TOPK: &str = include_str!("../../shaders/beam/chunk_topk.wgsl");
const MERGE_TOPK: &str = include_str!("../../shaders/beam/merge_topk.wgsl");

/// The passes as (name, full source): shared helpers, the constants
/// generated from Rust, the bindings, the pass.
fn sources() -> [(&'static str, String); 3] {
    let consts =
        crate::gpu::kit::wgsl_consts(&[("CHUNK", CHUNK.into()), ("LPT", (MAX_LISTS / 256).into())]);
    let pre = format!("{COMMON}\n{consts}\n{BINDINGS}");
    [
        ("lse", format!("{pre}\n{LSE}")),
        ("chunk_topk", format!("{pre}\n{TOURNAMENT}\n{CHUNK_TOPK}")),
        ("merge_topk", format!("{pre}\n{TOURNAMENT}\n{MERGE_TOPK}")),
    ]
}

/// Every beam-step shader as `(name, full WGSL source, entry point)`,
/// exactly as handed to `create_shader_module` (for the browser-rules
/// check that `wgsample::gpu::shader_sources` feeds).
pub fn shader_sources() -> Vec<(String, String, &'static str)> {
    sources()
        .into_iter()
        .map(|(n, s)| (format!("beam:{n}"), s, "main"))
        .collect()
}

/// The uniform of every pass (`BeamDims` in bindings.wgsl).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Dims {
    rows: u32,
    vocab: u32,
    chunks: u32,
    beams: u32,
    groups: u32,
    k: u32,
    logits_off: u32,
    lists: u32,
}

/// The beam step on the GPU for up to `max_groups` groups of `b` beams
/// over a vocabulary of `V`, keeping `K` candidates per group. See the
/// module docs of [`crate::beam`] for what is computed; the results equal
/// [`cpu_step`](super::cpu_step)'s up to f32 rounding of the log-sum-exp.
///
/// Created once (pipelines and buffers); each step records three passes
/// ([`GpuBeamStep::record`]) whose results land in
/// [`GpuBeamStep::output_buffer`] and are read back as `G * K` candidates
/// ([`GpuBeamStep::submit_and_read`]): `12 K + 4` bytes per group.
#[derive(Debug)]
pub struct GpuBeamStep {
    ctx: GpuContext,
    max_groups: u32,
    beams: u32,
    vocab: u32,
    k: u32,
    chunks: u32,
    layout: wgpu::BindGroupLayout,
    pipelines: Vec<wgpu::ComputePipeline>,
    dims_buf: wgpu::Buffer,
    scores_buf: wgpu::Buffer,
    lse_buf: wgpu::Buffer,
    cand_buf: wgpu::Buffer,
    out_buf: wgpu::Buffer,
    upload: Option<wgpu::Buffer>,
    last_groups: u32,
}

impl GpuBeamStep {
    /// Creates the pipelines and buffers for steps of at most `max_groups`
    /// groups of `beams` beams over `vocab` tokens, keeping `k` candidates
    /// per group.
    ///
    /// Errors (nothing is created): a size of 0, `k > beams * vocab`,
    /// `beams * vocab` beyond u32, `k >` [`MAX_K`], `beams * ceil(vocab /
    /// 4096) >` [`MAX_LISTS`], or a dispatch or buffer beyond the
    /// device's limits (the message names the limit).
    pub fn new(ctx: &GpuContext, max_groups: u32, beams: u32, vocab: u32, k: u32) -> Result<Self> {
        let device = &ctx.device;
        let limits = device.limits();
        if max_groups == 0 || beams == 0 || vocab == 0 || k == 0 {
            return Err(Error::InvalidArgument(format!(
                "groups ({max_groups}), beams ({beams}), vocab ({vocab}) and k ({k}) must be at least 1"
            )));
        }
        let cands = u64::from(beams) * u64::from(vocab);
        if cands > u64::from(u32::MAX) - u64::from(CHUNK) {
            return Err(Error::InvalidArgument(format!(
                "{beams} beams x vocab {vocab} candidates do not fit a u32 index"
            )));
        }
        if u64::from(k) > cands {
            return Err(Error::InvalidArgument(format!(
                "k = {k} candidates per group is more than beams x vocab ({cands})"
            )));
        }
        if k > MAX_K {
            return Err(Error::InvalidArgument(format!(
                "k = {k} candidates per group is above the GPU beam step's limit MAX_K = {MAX_K}"
            )));
        }
        let chunks = vocab.div_ceil(CHUNK);
        let lists = u64::from(beams) * u64::from(chunks);
        if lists > u64::from(MAX_LISTS) {
            return Err(Error::InvalidArgument(format!(
                "{beams} beams x {chunks} chunks of 4096 logits = {lists} lists per group, above \
                 the GPU beam step's limit MAX_LISTS = {MAX_LISTS}"
            )));
        }
        let rows = u64::from(max_groups) * u64::from(beams);
        let max_dim = u64::from(limits.max_compute_workgroups_per_dimension);
        if rows > max_dim || u64::from(chunks) > max_dim {
            return Err(Error::limit(
                format!("the beam step's grid of {rows} rows x {chunks} chunks (workgroups)"),
                rows.max(u64::from(chunks)),
                "max_compute_workgroups_per_dimension",
                max_dim,
            ));
        }
        if limits.max_storage_buffers_per_shader_stage < 5 {
            return Err(Error::limit(
                "the beam step (storage buffers bound)",
                5,
                "max_storage_buffers_per_shader_stage",
                u64::from(limits.max_storage_buffers_per_shader_stage),
            ));
        }
        let gk = u64::from(max_groups) * u64::from(k);
        let sizes = [
            ("the beam scores", rows * 4),
            ("the log-sum-exp partials", rows * u64::from(chunks) * 16),
            (
                "the per-chunk candidate lists",
                rows * u64::from(chunks) * u64::from(k) * 8,
            ),
            ("the beam step output", (3 * gk + u64::from(max_groups)) * 4),
        ];
        for (what, bytes) in sizes {
            check_binding_size(device, what, bytes)?;
        }
        use wgpu::BufferBindingType as T;
        let ro = T::Storage { read_only: true };
        let rw = T::Storage { read_only: false };
        scoped(device, "creating the GPU beam step", || {
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("wgsample beam"),
                entries: &[
                    buffer_entry(0, T::Uniform, Some(32)),
                    buffer_entry(1, ro, None),
                    buffer_entry(2, ro, None),
                    buffer_entry(3, rw, None),
                    buffer_entry(4, rw, None),
                    buffer_entry(5, rw, None),
                ],
            });
            let pipelines = sources()
                .iter()
                .map(|(name, src)| {
                    compute_pipeline(
                        device,
                        &format!("wgsample beam {name}"),
                        src,
                        "main",
                        &layout,
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            let none = wgpu::BufferUsages::empty();
            Ok(GpuBeamStep {
                ctx: ctx.clone(),
                max_groups,
                beams,
                vocab,
                k,
                chunks,
                layout,
                pipelines,
                dims_buf: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("wgsample beam dims"),
                    size: 32,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                scores_buf: storage_buffer(device, "wgsample beam scores", sizes[0].1, none),
                lse_buf: storage_buffer(device, "wgsample beam lse", sizes[1].1, none),
                cand_buf: storage_buffer(device, "wgsample beam lists", sizes[2].1, none),
                out_buf: storage_buffer(
                    device,
                    "wgsample beam out",
                    sizes[3].1,
                    wgpu::BufferUsages::COPY_SRC,
                ),
                upload: None,
                last_groups: 0,
            })
        })
    }

    /// `K`, the candidates kept per group.
    pub fn k(&self) -> u32 {
        self.k
    }

    /// Records the step for `G = beam_scores.len() / b` groups into
    /// `encoder`: the logits are the `[G * b, V]` f32 block `logits` views
    /// (any offset that is a multiple of 4; the buffer needs `STORAGE`
    /// usage), `beam_scores` the running scores (uploaded through the
    /// queue, so they land before the encoder's submission). When the
    /// encoder is submitted, [`GpuBeamStep::output_buffer`] receives the
    /// candidates.
    ///
    /// Errors (nothing is recorded): `G` is 0, not whole, or above
    /// `max_groups`; a beam score is NaN or `+inf`; the logits block does
    /// not fit the buffer or the device's binding limits; logits other
    /// than f32.
    pub fn record(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        logits: LogitsView<'_>,
        beam_scores: &[f32],
    ) -> Result<()> {
        logits.require_f32("the beam step")?;
        let (b, v) = (self.beams as usize, self.vocab as usize);
        let groups = check_step(None, beam_scores, b, v, self.k as usize)?;
        if groups > self.max_groups as usize {
            return Err(Error::InvalidArgument(format!(
                "{groups} groups, more than this step's max_groups ({})",
                self.max_groups
            )));
        }
        let groups = groups as u32;
        let rows = groups * self.beams;
        let device = self.ctx.device.clone();
        let limits = device.limits();
        let bind = logits.plan_binding(&limits, rows, self.vocab)?;
        let dims = Dims {
            rows,
            vocab: self.vocab,
            chunks: self.chunks,
            beams: self.beams,
            groups,
            k: self.k,
            logits_off: bind.base,
            lists: self.beams * self.chunks,
        };
        let q = &self.ctx.queue;
        q.write_buffer(&self.dims_buf, 0, bytemuck::bytes_of(&dims));
        q.write_buffer(&self.scores_buf, 0, bytemuck::cast_slice(beam_scores));
        self.last_groups = groups;
        scoped(&device, "recording the beam step", || {
            let bg = crate::gpu::kit::bind_group(
                &device,
                "wgsample beam",
                &self.layout,
                &[
                    self.dims_buf.as_entire_binding(),
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: logits.buffer,
                        offset: bind.offset,
                        size: wgpu::BufferSize::new(bind.size),
                    }),
                    self.scores_buf.as_entire_binding(),
                    self.lse_buf.as_entire_binding(),
                    self.cand_buf.as_entire_binding(),
                    self.out_buf.as_entire_binding(),
                ],
            );
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("wgsample beam step"),
                timestamp_writes: None,
            });
            pass.set_bind_group(0, &bg, &[]);
            for (p, (x, y)) in [
                (0, (self.chunks, rows)),
                (1, (self.chunks, rows)),
                (2, (1, groups)),
            ] {
                pass.set_pipeline(&self.pipelines[p]);
                pass.dispatch_workgroups(x, y, 1);
            }
            Ok(())
        })
    }

    /// The buffer the step writes: `G * K` scores (f32), then `G * K` beam
    /// indices (u32), `G * K` tokens (u32), then `G` statuses (u32: 0 ok,
    /// `1 + j` when beam `j`'s logits hold NaN or `+inf`), `G` being the
    /// group count of the last [`GpuBeamStep::record`].
    pub fn output_buffer(&self) -> &wgpu::Buffer {
        &self.out_buf
    }

    /// Submits `encoder` (holding this step's recorded passes), reads back
    /// the `G * K` candidates (group by group, best first) and checks the
    /// statuses. Blocks (native only; the `_async` form everywhere).
    ///
    /// Errors: a row with NaN or `+inf` ([`Error::InvalidArgument`] naming the row,
    /// group and beam), or a GPU error.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn submit_and_read(&self, encoder: wgpu::CommandEncoder) -> Result<Vec<Candidate>> {
        pollster::block_on(self.submit_and_read_async(encoder))
    }

    /// The async form of [`GpuBeamStep::submit_and_read`].
    pub async fn submit_and_read_async(
        &self,
        encoder: wgpu::CommandEncoder,
    ) -> Result<Vec<Candidate>> {
        let g = self.last_groups as usize;
        let gk = g * self.k as usize;
        let bytes = read_async(
            &self.ctx,
            encoder,
            &self.out_buf,
            ((3 * gk + g) * 4) as u64,
            "reading the beam candidates",
        )
        .await?;
        let w: &[u32] = bytemuck::try_cast_slice(&bytes)
            .map_err(|e| Error::Gpu(format!("read-back of {} bytes: {e}", bytes.len())))?;
        let b = self.beams as usize;
        for (grp, &s) in w[3 * gk..3 * gk + g].iter().enumerate() {
            if s != 0 {
                let j = s as usize - 1;
                return Err(Error::InvalidArgument(format!(
                    "logits row {} (group {grp}, beam {j}) holds NaN or +inf",
                    grp * b + j
                )));
            }
        }
        let (v, bmax) = (self.vocab, self.beams);
        (0..gk)
            .map(|i| {
                let c = Candidate {
                    score: f32::from_bits(w[i]),
                    beam: w[gk + i],
                    token: w[2 * gk + i],
                };
                if c.beam >= bmax || c.token >= v || c.score.is_nan() {
                    return Err(Error::Gpu(format!(
                        "the beam step returned an invalid candidate {c:?} at {i}"
                    )));
                }
                Ok(c)
            })
            .collect()
    }

    /// Records, submits and reads back one step over the logits `logits`
    /// views (see [`GpuBeamStep::record`]): the entry for an engine whose
    /// logits are already on the device. Blocks (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn step(&mut self, logits: LogitsView<'_>, beam_scores: &[f32]) -> Result<Vec<Candidate>> {
        pollster::block_on(self.step_async(logits, beam_scores))
    }

    /// The async form of [`GpuBeamStep::step`].
    pub async fn step_async(
        &mut self,
        logits: LogitsView<'_>,
        beam_scores: &[f32],
    ) -> Result<Vec<Candidate>> {
        let device = self.ctx.device.clone();
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("wgsample beam step"),
        });
        scoped_async(&device, "recording the beam step", || {
            self.record(&mut encoder, logits, beam_scores)
        })
        .await?;
        self.submit_and_read_async(encoder).await
    }

    /// Uploads host logits (`[G * b, V]` f32) and runs one step on them.
    /// Blocks (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn step_host(&mut self, logits: &[f32], beam_scores: &[f32]) -> Result<Vec<Candidate>> {
        pollster::block_on(self.step_host_async(logits, beam_scores))
    }

    /// The async form of [`GpuBeamStep::step_host`].
    pub async fn step_host_async(
        &mut self,
        logits: &[f32],
        beam_scores: &[f32],
    ) -> Result<Vec<Candidate>> {
        check_step(
            Some(logits.len()),
            beam_scores,
            self.beams as usize,
            self.vocab as usize,
            self.k as usize,
        )?;
        let size = (logits.len() as u64 * 4).max(4);
        check_buffer_size(&self.ctx.device, "the logits upload", size)?;
        if self.upload.as_ref().is_none_or(|u| u.size() < size) {
            self.upload = Some(storage_buffer(
                &self.ctx.device,
                "wgsample beam logits upload",
                size,
                wgpu::BufferUsages::empty(),
            ));
        }
        let up = self.upload.clone().expect("created above");
        self.ctx
            .queue
            .write_buffer(&up, 0, bytemuck::cast_slice(logits));
        self.step_async(LogitsView::f32(&up), beam_scores).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shaders_pass_naga() {
        for (name, src, _) in super::shader_sources() {
            if let Err(e) = crate::gpu::validate_wgsl(&src) {
                panic!("{name}: {e}");
            }
        }
    }
}
