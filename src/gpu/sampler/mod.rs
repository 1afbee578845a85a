//! The GPU sampling pipeline: every SPEC.md operation as WGSL compute
//! passes over a `[B, V]` logits buffer that stays on the device, with the
//! per-row decode state kept in GPU buffers.
//!
//! # Shape
//!
//! [`GpuSampler`] is created once for a device, a maximum batch and a
//! vocabulary. Parameters are uploaded only when [`GpuSampler::set_params`]
//! or [`GpuSampler::set_state`] changed something; the state (generated
//! length, step counter, the list of generated tokens with their counts) is
//! updated by the shaders themselves, so a decode loop over a fixed logits
//! buffer uploads nothing per step (the one uniform is rewritten only when
//! the batch, dtype or offset changes). [`GpuSampler::record`] records the passes
//! into the caller's `CommandEncoder` (nothing is submitted behind its
//! back) and writes tokens, logprobs and statuses into
//! [`GpuSampler::output_buffer`], whose first `4 B` bytes are the `B`
//! sampled token ids, ready to feed the model's next step on the GPU.
//!
//! # Passes and reads of the logits
//!
//! A sampling step is at most three dispatches, and only one of them reads
//! whole rows (four and two with top logprobs) ([`Plan`], [`GpuSampler::plan`], `wgsample sample --backend gpu
//! --explain`):
//!
//! | configuration | dispatches | dense passes |
//! |---|---|---|
//! | greedy, plain temperature sampling | scan, finish | 1 |
//! | + min-p / top-k / top-p (any mix) | scan, finish | 1 |
//! | + allowed-token bitmask | (read by scan) | 1 |
//! | + banned, EOS, bias, penalties | overlay first | 1 |
//! | + top logprobs | rank last | 2 |
//! | verification ([`GpuSampler::record_verify`]) | (overlay), scan, finish, accept | 1 |
//! | verification with draft probabilities | (overlay), scan, finish, recover, accept | 2 |
//!
//! - `overlay` (one workgroup a row, only rows that need it) applies SPEC
//!   steps 2-4 to the few tokens the row's lists name, into a small hash
//!   table per row: nothing dense is copied or written.
//! - `scan` runs `(ceil(V / 1024), B)` workgroups of 256 invocations (126
//!   per row at V = 128256) and reads each logit once. Per chunk it writes
//!   the raw softmax statistics (for the logprob), the max of `z` (greedy),
//!   the Gumbel-max of plain rows (random words and logarithms only for
//!   tokens within 20 of the chunk's max of `z / T`, which are the only ones
//!   that can win), and for filtered rows the chunk's 64 largest keys of
//!   `z / T`, sorted in workgroup memory, with the largest key it left out.
//! - `finish` (one workgroup a row) merges the chunk partials in a fixed
//!   order (results never depend on timing or on the other rows), runs
//!   min-p, top-k and top-p as radix selections over the candidates and the
//!   Gumbel-max over the survivors, and writes the token, logprob, status
//!   and state. A threshold strictly above every key a chunk left out was
//!   computed from complete data; where the candidates cannot be proven
//!   complete (a flat row under top-p 0.999 or min-p 0.001, top-k above 64,
//!   ties across a chunk's cut) the same workgroup runs the same selection
//!   over the whole row: the rare case costs time, never a dispatch, and
//!   the token is the same. [`GpuSampler::last_step_paths`] says which rows
//!   took it.
//!
//! - `rank` (dense, only when a row asks for top logprobs) counts the raw
//!   logits above the sampled token's: the rank needs the token, which
//!   only `finish` knows. The top-`N` lists themselves cost no extra read:
//!   `scan` keeps each chunk's `N` largest raw logits, `finish` merges them.
//! - Verification (module `verify`) runs `overlay`, `scan` and `finish`
//!   over one virtual row per target position, then `accept` (one
//!   workgroup a row) walks the positions; with draft probabilities,
//!   `recover` (dense) samples `ln(p - q) + g` in between.
//!
//! Selections count tokens (top-k) or sum probability mass in 64-bit fixed
//! point (top-p), so the result is the same whatever the order of the
//! atomic additions. Everything stays inside WebGPU's default limits (256
//! invocations, at most 12 KiB of workgroup memory, 8 storage buffers) and
//! uses no subgroup operations; barriers sit in uniform control flow
//! (`workgroupUniformLoad` where a row's state decides).
//!
//! # Where each SPEC step runs
//!
//! The crate docs' table "Where each SPEC step lives" maps every step to
//! its CPU function and to the pass and line of `shaders/sampler/` that
//! runs it (a unit test keeps the line numbers true).

mod passes;
mod plan;
mod verify;

pub use plan::{Plan, PlannedDispatch};
pub use verify::MAX_DRAFT_TOKENS;

use super::device::{GpuContext, scoped, scoped_async};
use super::kit::{
    DType, LogitsBinding, LogitsView, Readback, buffer_entry, check_binding_size,
    check_buffer_size, check_word_index, max_binding, read_async, storage_buffer,
};
use crate::{
    Error, Logits, Result, RowOutput, RowState, SamplingParams, Status, TokenLogprob, TopLogprobs,
};
use passes::ALL;

/// How the `finish` pass settled a row's min-p, top-k and top-p
/// ([`GpuSampler::last_step_paths`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowPath {
    /// No threshold search ran: greedy, plain sampling, an invalid row, no
    /// candidates, or a `+inf` overflow (SPEC step 6).
    NoSelection,
    /// The fast path: the thresholds and the Gumbel-max were computed on
    /// the chunks' candidates, proven to hold every survivor.
    Candidates,
    /// The slow path: the candidates could not be proven complete (a flat
    /// row under top-p near 1 or a tiny min-p, top-k above 64, ties across
    /// the candidates' cut), so the row was read again and the same
    /// selection ran on every token. Same token, more time, no extra
    /// dispatch.
    FullRow,
}

impl RowPath {
    /// The code the `finish` pass writes (`PATH_*` in the WGSL).
    pub(crate) fn code(self) -> u32 {
        match self {
            RowPath::NoSelection => 0,
            RowPath::Candidates => 1,
            RowPath::FullRow => 2,
        }
    }

    fn from_code(code: u32) -> Option<RowPath> {
        [RowPath::NoSelection, RowPath::Candidates, RowPath::FullRow]
            .into_iter()
            .find(|p| p.code() == code)
    }
}

/// Sizes fixed when a [`GpuSampler`] is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplerConfig {
    /// Largest batch `B` a call may sample.
    pub max_batch: u32,
    /// Vocabulary size `V` (row length of the logits).
    pub vocab: u32,
    /// Capacity of each row's on-device list of distinct generated tokens
    /// (the counts behind the penalties). A row with penalties may not
    /// generate more tokens than this since its state was last set. Every
    /// row gets a list when `max_batch x max_seen_tokens x 8` bytes fit one
    /// storage binding; otherwise only rows given penalties get one (the
    /// others keep their length and step), so a large batch without
    /// penalties costs no list memory.
    pub max_seen_tokens: u32,
}

impl SamplerConfig {
    /// `max_batch` rows of `vocab` logits, room for 4096 generated tokens
    /// per row.
    pub fn new(max_batch: u32, vocab: u32) -> Self {
        SamplerConfig {
            max_batch,
            vocab,
            max_seen_tokens: 4096,
        }
    }
}

/// Per-row parameters as the shaders read them (`RowParams` in
/// bindings.wgsl).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct RowParamsGpu {
    temperature: f32,
    top_k: u32,
    top_p: f32,
    ln_min_p: f32,
    rep: f32,
    presence: f32,
    freq: f32,
    flags: u32,
    min_new: u32,
    seed_lo: u32,
    seed_hi: u32,
    bias_off: u32,
    bias_len: u32,
    banned_off: u32,
    banned_len: u32,
    eos_off: u32,
    eos_len: u32,
    prompt_off: u32,
    prompt_len: u32,
    top_n: u32,
    allowed_off: u32,
    ov_off: u32,
    ov_cap: u32,
    seen_slot: u32,
}

/// The uniform of every pass (`Dims` in bindings.wgsl).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
struct Dims {
    batch: u32,
    vocab: u32,
    chunks: u32,
    dtype: u32,
    slots: u32,
    cap: u32,
    logits_off: u32,
    max_batch: u32,
    rank_off: u32,
    positions: u32,
    drafts_off: u32,
    vmode: u32,
    q_off: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

/// Bytes of the uniform `Dims`.
const DIMS_BYTES: u64 = std::mem::size_of::<Dims>() as u64;

const FLAG_GREEDY: u32 = 1;
const FLAG_MIN_P: u32 = 4;
const FLAG_TOP_K: u32 = 8;
const FLAG_TOP_P: u32 = 16;
const FLAG_ALLOWED: u32 = 32;
const FLAG_SCALED: u32 = 128;
const FLAG_OVERLAY: u32 = 256;
const FLAG_TOPLP: u32 = 512;
/// Entries per (row, chunk) of the top-logprob candidates, and per row of
/// the output (`TOPN`).
const TOPN: u64 = crate::MAX_TOP_LOGPROBS as u64;
/// Output words per row: token, logprob, status, rank, then `TOPN`
/// (token, logprob) pairs.
const OUT_WORDS: u64 = 4 + 2 * TOPN;
const FILTERS: u32 = FLAG_MIN_P | FLAG_TOP_K | FLAG_TOP_P;

/// Logits per workgroup in the dense pass (`CHUNK` in bindings.wgsl).
const CHUNK: u32 = 1024;
/// Candidates kept per chunk (`CAND`).
const CAND: u64 = 64;
/// Words per row in the scratch buffer (`ROW_WORDS`).
const ROW_WORDS: u64 = 8;
/// Words per (row, chunk) partial (`PART_WORDS`).
const PART_WORDS: u64 = 12;
/// Words per slot of an overlay table (`OV_FIELDS`).
const OV_FIELDS: u64 = 5;

/// The pass flags (`FLAG_*`) of a row with params `p` over `v` tokens.
fn row_flags(p: &SamplingParams, v: usize) -> u32 {
    let mut flags = 0;
    if p.is_greedy() {
        flags |= FLAG_GREEDY;
    } else {
        if p.temperature != 1.0 {
            flags |= FLAG_SCALED;
        }
        if p.min_p > 0.0 {
            flags |= FLAG_MIN_P;
        }
        if p.top_k_active(v) {
            flags |= FLAG_TOP_K;
        }
        if p.top_p < 1.0 {
            flags |= FLAG_TOP_P;
        }
    }
    let eos_possible = !p.eos_token_ids.is_empty() && p.min_new_tokens > 0;
    if p.top_logprobs > 0 {
        flags |= FLAG_TOPLP;
    }
    if !p.banned_tokens.is_empty()
        || eos_possible
        || !p.logit_bias.is_empty()
        || p.penalties_active()
    {
        flags |= FLAG_OVERLAY;
    }
    flags
}

/// The GPU sampler. See the module docs.
#[derive(Debug)]
pub struct GpuSampler {
    ctx: GpuContext,
    cfg: SamplerConfig,
    chunks: u32,
    layout: wgpu::BindGroupLayout,
    pipelines: Vec<wgpu::ComputePipeline>,
    dims_buf: wgpu::Buffer,
    params_buf: wgpu::Buffer,
    lists_buf: wgpu::Buffer,
    state_buf: wgpu::Buffer,
    scratch_buf: wgpu::Buffer,
    out_buf: wgpu::Buffer,
    /// Per-row overlay tables (binding 2), grown when params need more.
    ov_buf: wgpu::Buffer,
    /// Word offset of the rank counters in `ov_buf` (when sampling), and
    /// the words of the rows' overlay tables before them.
    rank_off: u32,
    ov_tables: u64,
    /// Words of the rows' lists in `lists_buf`; a verification's drafts
    /// follow them (the buffer keeps `max_batch` words for them).
    lists_len: u32,
    /// The draft probabilities of [`GpuSampler::verify_host`].
    q_upload: Option<wgpu::Buffer>,
    /// `(rows, positions)` of the last recorded verification, `None` when
    /// the last record sampled.
    last_verify: Option<(u32, u32)>,
    /// Per-chunk candidates (binding 7), created when a row first filters
    /// or asks for top logprobs.
    cand_buf: Option<wgpu::Buffer>,
    /// Bound where the candidates are not needed yet.
    dummy: wgpu::Buffer,
    upload: Option<wgpu::Buffer>,
    params: Vec<SamplingParams>,
    prompts: Vec<Vec<u32>>,
    flags: Vec<u32>,
    steps_bound: Vec<u64>,
    dirty: bool,
    last_batch: u32,
    last_dims: Option<Dims>,
    /// Each row's slot in the state buffer's token-count lists (`u32::MAX`:
    /// the device keeps only the row's length and step). Every row has one
    /// when lists for all rows fit one binding; otherwise rows get one when
    /// they are first given penalties.
    seen_slot: Vec<u32>,
    /// Slots the state buffer holds, and slots handed out.
    slots: u32,
    slots_used: u32,
    /// Rows that may have generated tokens while they had no slot since
    /// their state was last set (their counts are unknown).
    untracked: Vec<bool>,
    /// The counts of each row's last `set_state`, for a slot given later.
    seen_host: Vec<Vec<(u32, u32)>>,
    /// Copies (old state buffer, source offset, destination offset, bytes)
    /// that carry the state into a grown buffer, recorded before the
    /// staged writes.
    pending_copies: Vec<(wgpu::Buffer, u64, u64, u64)>,
    /// The bind group of the last record, reused while the logits binding
    /// (buffer, offset, size) and the sampler's buffers stay the same.
    bind_cache: Option<BindCache>,
    /// Bumped whenever one of the sampler's own buffers is replaced.
    buffers_gen: u64,
    /// The staging buffer of [`GpuSampler::submit_and_read`], reused.
    readback: Readback,
    /// Writes waiting for the next [`GpuSampler::record`], which records
    /// them into the caller's encoder ahead of its passes.
    pending: Vec<(Dst, u64, Vec<u8>)>,
}

/// A bind group and the logits binding it was made for.
#[derive(Debug)]
struct BindCache {
    logits: wgpu::Buffer,
    offset: u64,
    size: u64,
    buffers_gen: u64,
    group: wgpu::BindGroup,
}

/// The sampler buffers the host writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dst {
    State,
    Params,
    Lists,
    Dims,
}

impl GpuSampler {
    /// Creates the pipelines and device buffers for `cfg` on `ctx`.
    ///
    /// Errors: `max_batch` or `vocab` 0, `max_batch` above the device's
    /// workgroup grid limit, or a buffer beyond the device's limits (the
    /// message names the limit).
    pub fn new(ctx: &GpuContext, cfg: SamplerConfig) -> Result<Self> {
        let device = &ctx.device;
        let limits = device.limits();
        if cfg.max_batch == 0 || cfg.vocab == 0 {
            return Err(Error::InvalidArgument(format!(
                "max_batch ({}) and vocab ({}) must be at least 1",
                cfg.max_batch, cfg.vocab
            )));
        }
        if cfg.max_batch > limits.max_compute_workgroups_per_dimension {
            return Err(Error::limit(
                "max_batch (workgroups in a grid column)",
                u64::from(cfg.max_batch),
                "max_compute_workgroups_per_dimension",
                u64::from(limits.max_compute_workgroups_per_dimension),
            ));
        }
        if limits.max_storage_buffers_per_shader_stage < 8 {
            return Err(Error::limit(
                "the sampler (storage buffers bound by one pass)",
                8,
                "max_storage_buffers_per_shader_stage",
                u64::from(limits.max_storage_buffers_per_shader_stage),
            )
            .with_hint("; request WebGPU's default limits"));
        }
        if u64::from(cfg.vocab) + u64::from(CHUNK) > u64::from(u32::MAX) {
            return Err(Error::InvalidArgument(format!(
                "vocab {} is too large",
                cfg.vocab
            )));
        }
        let chunks = cfg.vocab.div_ceil(CHUNK);
        if chunks > limits.max_compute_workgroups_per_dimension {
            return Err(Error::limit(
                format!(
                    "vocab {} (workgroups per row, one per {CHUNK} logits)",
                    cfg.vocab
                ),
                u64::from(chunks),
                "max_compute_workgroups_per_dimension",
                u64::from(limits.max_compute_workgroups_per_dimension),
            ));
        }
        let b = u64::from(cfg.max_batch);
        let cap = u64::from(cfg.max_seen_tokens.max(1));
        // The token counts (what penalties need) are kept for every row when
        // they fit in one binding; a larger batch keeps only n and the step,
        // and refuses penalties with the limit named.
        let state_full = (b * 4 + 2 * b * cap) * 4;
        let counts_all = state_full <= limits.max_storage_buffer_binding_size
            && state_full <= limits.max_buffer_size;
        let sizes = [
            (
                "the per-row state",
                if counts_all { state_full } else { b * 16 },
            ),
            (
                "the scratch buffer",
                (b * ROW_WORDS + b * u64::from(chunks) * PART_WORDS) * 4,
            ),
        ];
        for (what, bytes) in sizes {
            check_binding_size(device, what, bytes)?;
        }
        use wgpu::BufferBindingType as T;
        let ro = T::Storage { read_only: true };
        let rw = T::Storage { read_only: false };
        scoped(device, "creating the GPU sampler", || {
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("wgsample sampler"),
                entries: &[
                    buffer_entry(0, T::Uniform, Some(DIMS_BYTES)),
                    buffer_entry(1, ro, None),
                    buffer_entry(2, rw, None),
                    buffer_entry(3, ro, None),
                    buffer_entry(4, ro, None),
                    buffer_entry(5, rw, None),
                    buffer_entry(6, rw, None),
                    buffer_entry(7, rw, None),
                    buffer_entry(8, rw, None),
                ],
            });
            let pipelines = ALL
                .iter()
                .map(|p| {
                    super::kit::compute_pipeline(
                        device,
                        &format!("wgsample {}", p.name),
                        &passes::full_source(p),
                        "main",
                        &layout,
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            let none = wgpu::BufferUsages::empty();
            let sampler = GpuSampler {
                ctx: ctx.clone(),
                cfg,
                chunks,
                pipelines,
                dims_buf: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("wgsample dims"),
                    size: DIMS_BYTES,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                params_buf: storage_buffer(device, "wgsample params", b * 96, none),
                lists_buf: storage_buffer(device, "wgsample lists", 16, none),
                state_buf: storage_buffer(
                    device,
                    "wgsample state",
                    sizes[0].1,
                    wgpu::BufferUsages::COPY_SRC,
                ),
                scratch_buf: storage_buffer(
                    device,
                    "wgsample scratch",
                    sizes[1].1,
                    wgpu::BufferUsages::COPY_SRC,
                ),
                out_buf: storage_buffer(
                    device,
                    "wgsample out",
                    b * OUT_WORDS * 4,
                    wgpu::BufferUsages::COPY_SRC,
                ),
                ov_buf: storage_buffer(
                    device,
                    "wgsample overlay",
                    16,
                    wgpu::BufferUsages::COPY_SRC,
                ),
                cand_buf: None,
                rank_off: 0,
                ov_tables: 0,
                lists_len: 0,
                q_upload: None,
                last_verify: None,
                dummy: storage_buffer(device, "wgsample candidates (unused)", 16, none),
                upload: None,
                layout,
                params: vec![SamplingParams::default(); cfg.max_batch as usize],
                prompts: vec![Vec::new(); cfg.max_batch as usize],
                flags: vec![0; cfg.max_batch as usize],
                steps_bound: vec![0; cfg.max_batch as usize],
                dirty: true,
                last_batch: 0,
                last_dims: None,
                seen_slot: if counts_all {
                    (0..cfg.max_batch).collect()
                } else {
                    vec![u32::MAX; cfg.max_batch as usize]
                },
                slots: if counts_all { cfg.max_batch } else { 0 },
                slots_used: if counts_all { cfg.max_batch } else { 0 },
                untracked: vec![false; cfg.max_batch as usize],
                seen_host: vec![Vec::new(); cfg.max_batch as usize],
                pending_copies: Vec::new(),
                bind_cache: None,
                buffers_gen: 0,
                readback: Readback::default(),
                pending: Vec::new(),
            };
            Ok(sampler)
        })
    }

    /// The configuration this sampler was created with.
    pub fn config(&self) -> SamplerConfig {
        self.cfg
    }

    /// The device context the sampler runs on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Sets row `row`'s parameters (validated as SPEC.md says; uploaded at
    /// the next [`GpuSampler::record`]).
    pub fn set_params(&mut self, row: usize, params: &SamplingParams) -> Result<()> {
        self.check_row(row)?;
        params.validate(row, self.cfg.vocab as usize)?;
        if params.penalties_active() && self.seen_slot[row] == u32::MAX {
            self.give_slot(row)?;
        }
        if params.penalties_active() && self.steps_bound[row] >= u64::from(self.cfg.max_seen_tokens)
        {
            return Err(self.capacity_error(row));
        }
        self.params[row] = params.clone();
        self.dirty = true;
        Ok(())
    }

    /// Sets row `row`'s decode state (prompt tokens, generated tokens and
    /// their counts, generated length, step), replacing the state on the
    /// device. Use `RowState::new(prompt)` to start a new sequence.
    pub fn set_state(&mut self, row: usize, state: &RowState) -> Result<()> {
        self.check_row(row)?;
        state.validate(row, self.cfg.vocab as usize)?;
        let seen: Vec<(u32, u32)> = state.output_counts().collect();
        let cap = self.cfg.max_seen_tokens as usize;
        if seen.len() > cap {
            return Err(Error::InvalidArgument(format!(
                "row {row}: {} distinct generated tokens, more than max_seen_tokens ({cap})",
                seen.len()
            )));
        }
        let r = row as u64;
        let header = [
            state.generated_len(),
            state.step as u32,
            (state.step >> 32) as u32,
            seen.len() as u32,
        ];
        self.stage(Dst::State, r * 16, bytemuck::cast_slice(&header));
        self.seen_host[row] = seen.clone();
        self.untracked[row] = false;
        if self.seen_slot[row] != u32::MAX {
            self.stage_seen(row);
        }
        self.prompts[row] = state.prompt_tokens().to_vec();
        self.steps_bound[row] = seen.len() as u64;
        self.dirty = true;
        Ok(())
    }

    /// Queues a write of `bytes` at byte `offset` of `dst` for the next
    /// [`GpuSampler::record`].
    fn stage(&mut self, dst: Dst, offset: u64, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.pending.push((dst, offset, bytes.to_vec()));
        }
    }

    /// Records the queued writes into `encoder`, in order, as copies from
    /// one staging buffer: they then take effect exactly where they sit
    /// among the recorded passes, so two `record` calls before one submit
    /// each run with the parameters and state they were recorded with.
    fn encode_pending(&self, encoder: &mut wgpu::CommandEncoder) {
        for (old, from, to, n) in &self.pending_copies {
            encoder.copy_buffer_to_buffer(old, *from, &self.state_buf, *to, *n);
        }
        if self.pending.is_empty() {
            return;
        }
        // Every write is a whole number of u32 words at a word offset.
        let all: Vec<u8> = self
            .pending
            .iter()
            .flat_map(|p| p.2.iter().copied())
            .collect();
        use wgpu::util::DeviceExt as _;
        let staging = self
            .ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("wgsample staged writes"),
                contents: &all,
                usage: wgpu::BufferUsages::COPY_SRC,
            });
        let mut at = 0u64;
        for (dst, offset, bytes) in &self.pending {
            let buf = match dst {
                Dst::State => &self.state_buf,
                Dst::Params => &self.params_buf,
                Dst::Lists => &self.lists_buf,
                Dst::Dims => &self.dims_buf,
            };
            let n = bytes.len() as u64;
            encoder.copy_buffer_to_buffer(&staging, at, buf, *offset, n);
            at += n;
        }
    }

    fn check_row(&self, row: usize) -> Result<()> {
        if row >= self.cfg.max_batch as usize {
            return Err(Error::InvalidArgument(format!(
                "row {row} is out of range (max_batch is {})",
                self.cfg.max_batch
            )));
        }
        Ok(())
    }

    /// `buf` if it holds `bytes`, else a new storage buffer that does
    /// (rounded up to a power of two, within the binding limit; the bind
    /// group is then rebuilt). Errors name `what` and the limit, then
    /// `hint`.
    fn fitted(
        &mut self,
        buf: wgpu::Buffer,
        label: &str,
        what: &str,
        hint: &str,
        bytes: u64,
    ) -> Result<wgpu::Buffer> {
        let limits = self.ctx.device.limits();
        check_word_index(what, bytes)?;
        if bytes > limits.max_storage_buffer_binding_size {
            return Err(Error::limit(
                format!("{what} (bytes)"),
                bytes,
                "max_storage_buffer_binding_size",
                limits.max_storage_buffer_binding_size,
            )
            .with_hint(hint));
        }
        if buf.size() >= bytes {
            return Ok(buf);
        }
        self.buffers_gen += 1;
        let size = bytes
            .next_power_of_two()
            .min(max_binding(&limits))
            .max(bytes);
        Ok(storage_buffer(
            &self.ctx.device,
            label,
            size,
            wgpu::BufferUsages::COPY_SRC,
        ))
    }

    /// Byte offsets of slot `slot`'s token list and count list in a state
    /// buffer of `slots` slots.
    fn seen_offsets(&self, slot: u32, slots: u32) -> (u64, u64) {
        let b = u64::from(self.cfg.max_batch);
        let cap = u64::from(self.cfg.max_seen_tokens);
        let (slot, slots) = (u64::from(slot), u64::from(slots));
        (
            (b * 4 + slot * cap) * 4,
            (b * 4 + slots * cap + slot * cap) * 4,
        )
    }

    /// Stages row `row`'s counts from its last `set_state` into its slot.
    fn stage_seen(&mut self, row: usize) {
        let seen = std::mem::take(&mut self.seen_host[row]);
        if !seen.is_empty() {
            let (to, co) = self.seen_offsets(self.seen_slot[row], self.slots);
            let toks: Vec<u32> = seen.iter().map(|s| s.0).collect();
            let cnts: Vec<u32> = seen.iter().map(|s| s.1).collect();
            self.stage(Dst::State, to, bytemuck::cast_slice(&toks));
            self.stage(Dst::State, co, bytemuck::cast_slice(&cnts));
        }
        self.seen_host[row] = seen;
    }

    /// Gives row `row` a token-count slot (only when not every row has
    /// one), growing the state buffer when all are taken: the old contents
    /// are copied over in the next recorded encoder, ahead of the staged
    /// writes, whose offsets move with the count lists.
    fn give_slot(&mut self, row: usize) -> Result<()> {
        if self.untracked[row] {
            return Err(Error::InvalidArgument(format!(
                "row {row}: penalties need the counts of the tokens this row generated, and \
                 this sampler did not keep them (the row had no penalties, and max_batch x \
                 max_seen_tokens lists for every row do not fit the device's binding limit); \
                 call set_state with the row's output first"
            )));
        }
        if self.slots_used == self.slots {
            let (b, cap) = (
                u64::from(self.cfg.max_batch),
                u64::from(self.cfg.max_seen_tokens),
            );
            let limits = self.ctx.device.limits();
            let max_bytes = limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size);
            let bytes_for = |n: u32| (b * 4 + 2 * u64::from(n) * cap) * 4;
            // Double (at least 4), but never past what one binding holds.
            let mut new_slots = (self.slots * 2).max(4).min(self.cfg.max_batch);
            while new_slots > self.slots + 1 && bytes_for(new_slots) > max_bytes {
                new_slots -= 1;
            }
            let bytes = bytes_for(new_slots);
            check_word_index("the token-count lists", bytes)?;
            if bytes > max_bytes {
                let limit_name = if limits.max_storage_buffer_binding_size <= limits.max_buffer_size
                {
                    "max_storage_buffer_binding_size"
                } else {
                    "max_buffer_size"
                };
                return Err(Error::limit(
                    format!(
                        "row {row}: penalties need a token-count list of max_seen_tokens ({}) \
                         entries; {new_slots} of them (bytes)",
                        self.cfg.max_seen_tokens
                    ),
                    bytes,
                    limit_name,
                    max_bytes,
                )
                .with_hint("; lower max_seen_tokens or the number of rows with penalties"));
            }
            let new = storage_buffer(
                &self.ctx.device,
                "wgsample state",
                bytes,
                wgpu::BufferUsages::COPY_SRC,
            );
            let old = std::mem::replace(&mut self.state_buf, new);
            let (old_slots, header) = (self.slots, b * 16);
            let list = u64::from(old_slots) * cap * 4;
            let (_, old_counts) = self.seen_offsets(0, old_slots);
            let (_, new_counts) = self.seen_offsets(0, new_slots);
            // Header and token lists keep their offsets; the count lists
            // move up by the added token lists. A buffer that grows again
            // before the next record holds nothing yet: the copies still
            // come from the buffer that has the data, into the new layout.
            let shift = new_counts - old_counts;
            if self.pending_copies.is_empty() {
                self.pending_copies.push((old.clone(), 0, 0, header + list));
                if list > 0 {
                    self.pending_copies
                        .push((old, old_counts, new_counts, list));
                }
            } else {
                for (_, _, to, _) in &mut self.pending_copies {
                    if *to >= old_counts && *to > 0 {
                        *to += shift;
                    }
                }
            }
            for (dst, off, _) in &mut self.pending {
                if *dst == Dst::State && *off >= old_counts {
                    *off += shift;
                }
            }
            self.slots = new_slots;
            self.buffers_gen += 1;
            self.last_dims = None;
        }
        self.seen_slot[row] = self.slots_used;
        self.slots_used += 1;
        self.stage_seen(row);
        self.dirty = true;
        Ok(())
    }

    fn capacity_error(&self, row: usize) -> Error {
        Error::InvalidArgument(format!(
            "row {row}: penalties need the counts of every generated token, and this row may \
             have generated {} tokens since its state was set, the capacity of its on-device \
             list (max_seen_tokens = {}); create the sampler with a larger max_seen_tokens",
            self.steps_bound[row], self.cfg.max_seen_tokens
        ))
    }

    /// Builds and uploads the params and lists of every row.
    fn upload_params(&mut self) -> Result<()> {
        let v = self.cfg.vocab as usize;
        let words = v.div_ceil(32);
        let mut lists: Vec<u32> = Vec::new();
        let mut gpu = Vec::with_capacity(self.params.len());
        // Words of overlay tables so far: only rows with banned tokens, EOS
        // ids, a bias or penalties get one, sized for at most half full.
        let mut ov_words: u64 = 0;
        for (r, p) in self.params.iter().enumerate() {
            let mut flags = row_flags(p, v);
            let mut g = RowParamsGpu {
                temperature: p.temperature,
                top_k: p.top_k,
                top_p: p.top_p,
                ln_min_p: if p.min_p > 0.0 {
                    crate::twins::min_p_log(p.min_p)
                } else {
                    0.0
                },
                rep: p.repetition_penalty,
                presence: p.presence_penalty,
                freq: p.frequency_penalty,
                min_new: p.min_new_tokens,
                top_n: p.top_logprobs,
                seed_lo: p.seed as u32,
                seed_hi: (p.seed >> 32) as u32,
                ..Default::default()
            };
            g.bias_off = lists.len() as u32;
            g.bias_len = p.logit_bias.len() as u32;
            lists.extend(p.logit_bias.iter().map(|b| b.0));
            lists.extend(p.logit_bias.iter().map(|b| b.1.to_bits()));
            g.banned_off = lists.len() as u32;
            g.banned_len = p.banned_tokens.len() as u32;
            lists.extend(&p.banned_tokens);
            g.eos_off = lists.len() as u32;
            g.eos_len = p.eos_token_ids.len() as u32;
            lists.extend(&p.eos_token_ids);
            let prompt = &self.prompts[r];
            g.prompt_off = lists.len() as u32;
            if p.repetition_penalty != 1.0 && !prompt.is_empty() {
                g.prompt_len = prompt.len() as u32;
                lists.extend(prompt);
            }
            if let Some(mask) = &p.allowed_tokens {
                g.allowed_off = lists.len() as u32;
                debug_assert_eq!(mask.len(), words);
                lists.extend(mask);
                flags |= FLAG_ALLOWED;
            }
            if flags & FLAG_OVERLAY != 0 {
                let mut entries = p.banned_tokens.len() + p.logit_bias.len();
                if p.min_new_tokens > 0 {
                    entries += p.eos_token_ids.len();
                }
                if p.repetition_penalty != 1.0 {
                    entries += prompt.len();
                }
                if p.penalties_active() {
                    entries += self.cfg.max_seen_tokens as usize;
                }
                let cap = (2 * entries).next_power_of_two().max(2);
                g.ov_off = u32::try_from(ov_words)
                    .map_err(|_| Error::Gpu("the rows' overlay tables exceed 2^32 words".into()))?;
                g.ov_cap = cap as u32;
                ov_words += OV_FIELDS * cap as u64;
            }
            g.seen_slot = self.seen_slot[r];
            g.flags = flags;
            self.flags[r] = flags;
            gpu.push(g);
        }
        // Then the rank counters of the top-logprob rows (one word a row,
        // copied into the output after the rank pass).
        self.rank_off = u32::try_from(ov_words)
            .map_err(|_| Error::Gpu("the rows' overlay tables exceed 2^32 words".into()))?;
        self.ov_tables = ov_words;
        ov_words += u64::from(self.cfg.max_batch);
        // After the lists, room for a verification's [B, k] drafts.
        self.lists_len = lists.len() as u32;
        let bytes = ((lists.len() as u64 + u64::from(self.cfg.max_batch)) * 4).max(16);
        let ov_bytes = (ov_words * 4).max(16);
        self.lists_buf = self.fitted(
            self.lists_buf.clone(),
            "wgsample lists",
            "the rows' masks and lists",
            "",
            bytes,
        )?;
        self.ov_buf = self.fitted(
            self.ov_buf.clone(),
            "wgsample overlay",
            "the rows' bias, banned, EOS and penalty tables",
            "; lower max_seen_tokens or the number of rows with penalties",
            ov_bytes,
        )?;
        self.stage(Dst::Params, 0, bytemuck::cast_slice(&gpu));
        self.stage(Dst::Lists, 0, bytemuck::cast_slice(&lists));
        self.dirty = false;
        Ok(())
    }

    /// Records the sampling passes for rows `0..batch` of the `[batch, V]`
    /// logits that `logits` views (f32, f16 or bf16, at any offset that is
    /// a multiple of 4) into `encoder`, in this order: validate, stage the
    /// uploads, plan ([`GpuSampler::plan`]), encode. When the caller
    /// submits the encoder, [`GpuSampler::output_buffer`] receives the
    /// tokens and the state on the device advances (SPEC step 12).
    ///
    /// Parameter and state changes made since the last call are recorded
    /// into `encoder` first (copies from a staging buffer created only
    /// when something changed), so several `record` calls before one
    /// submission each sample with the parameters and state set before
    /// them; the output buffer is shared, so copy it out between them.
    ///
    /// Errors (nothing is recorded): batch 0 or above `max_batch`, one of
    /// the sampler's own buffers as `logits`, an offset not a multiple of
    /// 4 (or one whose end overflows u64), a buffer too small or without
    /// `STORAGE` usage, a binding beyond `max_storage_buffer_binding_size`, a row
    /// with penalties at its `max_seen_tokens` capacity, or a buffer wgpu
    /// refuses to bind (destroyed, say: [`Error::Wgpu`]). After an error the
    /// sampler is as before the call: its parameter and state changes are
    /// still queued for the next record, and no step was counted against a
    /// row's capacity; the encoder holds nothing of the call.
    pub fn record(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        logits: LogitsView<'_>,
        batch: u32,
    ) -> Result<()> {
        self.record_stamped(encoder, logits, batch, None)
            .map(|_| ())
    }

    /// The steps of `record`, with optional timestamps: validate, stage the
    /// uploads, plan, encode. Returns the plan encoded.
    fn record_stamped(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        logits: LogitsView<'_>,
        batch: u32,
        stamps: Option<(&wgpu::QuerySet, u32)>,
    ) -> Result<Plan> {
        let bind = self.validate(logits, batch, (batch as usize, 1))?;
        self.stage_uploads(logits, &bind, batch)?;
        let plan = Plan::for_rows(&self.flags[..batch as usize], self.chunks, batch);
        self.last_verify = None;
        self.encode(encoder, logits.buffer, &bind, &plan, stamps, None)?;
        Ok(plan)
    }

    /// [`GpuSampler::record`], plus a GPU timestamp written into `queries`
    /// before each dispatch of the plan and one after the last, at indices
    /// `first ..= first + plan.dispatches()`: the time of each pass, for
    /// profilers and `cargo bench --bench matrix`. Returns the plan, whose
    /// labels name the intervals.
    ///
    /// Errors: those of `record`, and a device without
    /// `Features::TIMESTAMP_QUERY_INSIDE_PASSES` (or a query set too small,
    /// reported by wgpu as [`Error::Gpu`]).
    pub fn record_timed(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        logits: LogitsView<'_>,
        batch: u32,
        queries: &wgpu::QuerySet,
        first: u32,
    ) -> Result<Plan> {
        let need = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
        if !self.ctx.device.features().contains(need) {
            return Err(Error::Gpu(
                "per-pass timestamps need a device with TIMESTAMP_QUERY and \
                 TIMESTAMP_QUERY_INSIDE_PASSES"
                    .into(),
            ));
        }
        self.record_stamped(encoder, logits, batch, Some((queries, first)))
    }

    /// The checks of [`GpuSampler::record`], before anything is staged.
    /// `emitting` is `(rows, tokens)`: rows `0..rows` may each emit up to
    /// `tokens` tokens in this step (1 when sampling, `k + 1` when
    /// verifying; the logits then hold more rows than that).
    fn validate(
        &self,
        logits: LogitsView<'_>,
        batch: u32,
        emitting: (usize, u64),
    ) -> Result<LogitsBinding> {
        if batch == 0 || batch > self.cfg.max_batch {
            return Err(Error::InvalidArgument(format!(
                "batch {batch} must be between 1 and the sampler's max_batch ({})",
                self.cfg.max_batch
            )));
        }
        // One of the sampler's own buffers as the logits would be bound
        // twice in one pass (read-only and read-write), which wgpu reports
        // as a validation panic on the device: refuse it here.
        let own = [
            &self.dims_buf,
            &self.params_buf,
            &self.lists_buf,
            &self.state_buf,
            &self.scratch_buf,
            &self.out_buf,
            &self.ov_buf,
            &self.dummy,
        ];
        if own
            .into_iter()
            .chain(self.cand_buf.as_ref())
            .any(|b| b == logits.buffer)
        {
            return Err(Error::InvalidArgument(
                "the logits buffer is one of the sampler's own buffers (for example its \
                 output_buffer()); copy the values to a buffer of your own first"
                    .into(),
            ));
        }
        let bind = logits.plan_binding(&self.ctx.device.limits(), batch, self.cfg.vocab)?;
        self.check_capacity(emitting.0, emitting.1)?;
        Ok(bind)
    }

    /// Refuses a step that could emit `tokens` tokens on rows `0..rows`
    /// when a row with penalties could then outgrow its on-device list.
    fn check_capacity(&self, rows: usize, tokens: u64) -> Result<()> {
        for r in 0..rows {
            if self.params[r].penalties_active()
                && self.steps_bound[r] + tokens > u64::from(self.cfg.max_seen_tokens)
            {
                return Err(self.capacity_error(r));
            }
        }
        Ok(())
    }

    /// Builds what the step needs (params and lists when they changed, the
    /// candidate buffer on first use, the uniform when the batch, dtype or
    /// offset changed) and queues the uploads.
    fn stage_uploads(
        &mut self,
        logits: LogitsView<'_>,
        bind: &LogitsBinding,
        batch: u32,
    ) -> Result<()> {
        let rows = batch as usize;
        self.prepare_rows(rows, FILTERS | FLAG_TOPLP)?;
        self.ensure_bind_group(logits.buffer, bind)?;
        let dims = Dims {
            batch,
            vocab: self.cfg.vocab,
            chunks: self.chunks,
            dtype: logits.dtype.code(),
            slots: self.slots,
            cap: self.cfg.max_seen_tokens,
            logits_off: bind.base,
            max_batch: self.cfg.max_batch,
            rank_off: self.rank_off,
            positions: 1,
            ..Default::default()
        };
        self.commit_rows(rows, dims, 1);
        Ok(())
    }

    /// The first half of a record's uploads, shared by sampling and
    /// verification: the parameter tables when they changed, and the
    /// candidate buffer when one of the first `rows` rows has a flag in
    /// `needs_candidates`.
    fn prepare_rows(&mut self, rows: usize, needs_candidates: u32) -> Result<()> {
        if self.dirty {
            self.upload_params()?;
        }
        if self.flags[..rows]
            .iter()
            .any(|&x| x & needs_candidates != 0)
        {
            self.ensure_candidates()?;
        }
        Ok(())
    }

    /// The second half: stages `dims` (the uniform changes only with the
    /// batch, dtype, offset or verify shape, so a decode loop over a fixed
    /// buffer uploads nothing per step), advances the host's bound on each
    /// of the first `rows` rows' step by the `tokens` it may emit, marks
    /// rows without a seen-token slot as untracked, and remembers the
    /// dispatched batch (`dims.batch`, virtual rows for a verification).
    fn commit_rows(&mut self, rows: usize, dims: Dims, tokens: u64) {
        if self.last_dims != Some(dims) {
            self.stage(Dst::Dims, 0, bytemuck::bytes_of(&dims));
            self.last_dims = Some(dims);
        }
        for r in 0..rows {
            self.steps_bound[r] += tokens;
            if self.seen_slot[r] == u32::MAX {
                self.untracked[r] = true;
            }
        }
        self.last_batch = dims.batch;
    }

    /// Creates the candidate buffer (each chunk's `CAND` candidates and
    /// `TOPN` top-logprob entries for every row) on first use.
    fn ensure_candidates(&mut self) -> Result<()> {
        if self.cand_buf.is_some() {
            return Ok(());
        }
        let limits = self.ctx.device.limits();
        let bytes = u64::from(self.cfg.max_batch) * u64::from(self.chunks) * (CAND + TOPN) * 8;
        check_word_index("the candidate buffer", bytes)?;
        if bytes > limits.max_storage_buffer_binding_size {
            return Err(Error::limit(
                format!(
                    "the candidate buffer ({CAND} + {TOPN} per {CHUNK} logits of [max_batch, V], bytes)"
                ),
                bytes,
                "max_storage_buffer_binding_size",
                limits.max_storage_buffer_binding_size,
            )
            .with_hint("; lower max_batch"));
        }
        self.cand_buf = Some(storage_buffer(
            &self.ctx.device,
            "wgsample candidates",
            bytes,
            wgpu::BufferUsages::empty(),
        ));
        self.buffers_gen += 1;
        Ok(())
    }

    /// Makes (or finds in the cache) the bind group of `logits` at `bind`
    /// over the sampler's current buffers. The one step of a record that
    /// wgpu can refuse after the checks (a destroyed or foreign buffer), so
    /// the record paths call it before they change any state: a failed
    /// record leaves the queued uploads and the step bounds as they were.
    fn ensure_bind_group(&mut self, logits: &wgpu::Buffer, bind: &LogitsBinding) -> Result<()> {
        let cached = self.bind_cache.as_ref().is_some_and(|c| {
            c.logits == *logits
                && c.offset == bind.offset
                && c.size == bind.size
                && c.buffers_gen == self.buffers_gen
        });
        if !cached {
            let device = self.ctx.device.clone();
            let group = scoped(&device, "creating the sampler's bind group", || {
                Ok(self.bind_group(logits, bind.offset, bind.size))
            })?;
            self.bind_cache = Some(BindCache {
                logits: logits.clone(),
                offset: bind.offset,
                size: bind.size,
                buffers_gen: self.buffers_gen,
                group,
            });
        }
        Ok(())
    }

    /// Records the queued uploads, then the plan's dispatches (each in a
    /// debug group named by its label) into `encoder`.
    fn encode(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        logits: &wgpu::Buffer,
        bind: &LogitsBinding,
        plan: &Plan,
        stamps: Option<(&wgpu::QuerySet, u32)>,
        q_group: Option<&wgpu::BindGroup>,
    ) -> Result<()> {
        let device = self.ctx.device.clone();
        // A cache hit: the callers bind before they commit the step.
        self.ensure_bind_group(logits, bind)?;
        self.encode_pending(encoder);
        self.pending.clear();
        self.pending_copies.clear();
        let bg = &self.bind_cache.as_ref().expect("set above").group;
        scoped(&device, "recording the sampling passes", || {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("wgsample sample"),
                timestamp_writes: None,
            });
            for (i, d) in plan.passes.iter().enumerate() {
                if let Some((q, first)) = stamps {
                    pass.write_timestamp(q, first + i as u32);
                }
                pass.push_debug_group(&d.label);
                pass.set_pipeline(&self.pipelines[d.pass]);
                let group = match q_group {
                    Some(q) if d.pass == passes::idx::RECOVER || d.pass == passes::idx::ACCEPT => q,
                    _ => bg,
                };
                pass.set_bind_group(0, group, &[]);
                pass.dispatch_workgroups(d.grid[0], d.grid[1], d.grid[2]);
                pass.pop_debug_group();
            }
            if let Some((q, first)) = stamps {
                pass.write_timestamp(q, first + plan.passes.len() as u32);
            }
            drop(pass);
            // The rank pass counts into the overlay buffer (the one
            // binding with atomics); its counters join the output here.
            if plan.passes.iter().any(|d| d.pass == passes::idx::RANK) {
                let b = u64::from(self.last_batch);
                encoder.copy_buffer_to_buffer(
                    &self.ov_buf,
                    u64::from(self.rank_off) * 4,
                    &self.out_buf,
                    3 * b * 4,
                    b * 4,
                );
            }
            Ok(())
        })
    }

    /// The bind group of every pass, with rows of `logits` bound at
    /// `offset` for `size` bytes.
    fn bind_group(&self, logits: &wgpu::Buffer, offset: u64, size: u64) -> wgpu::BindGroup {
        let cands = self.cand_buf.as_ref().unwrap_or(&self.dummy);
        self.bind_group_with(logits, offset, size, cands.as_entire_binding())
    }

    /// [`GpuSampler::bind_group`] with `seventh` at binding 7 (the
    /// candidates, or a verification's draft probabilities).
    fn bind_group_with(
        &self,
        logits: &wgpu::Buffer,
        offset: u64,
        size: u64,
        seventh: wgpu::BindingResource<'_>,
    ) -> wgpu::BindGroup {
        crate::gpu::kit::bind_group(
            &self.ctx.device,
            "wgsample sampler",
            &self.layout,
            &[
                wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &self.dims_buf,
                    offset: 0,
                    size: wgpu::BufferSize::new(DIMS_BYTES),
                }),
                wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: logits,
                    offset,
                    size: wgpu::BufferSize::new(size),
                }),
                self.ov_buf.as_entire_binding(),
                self.params_buf.as_entire_binding(),
                self.lists_buf.as_entire_binding(),
                self.state_buf.as_entire_binding(),
                self.scratch_buf.as_entire_binding(),
                seventh,
                self.out_buf.as_entire_binding(),
            ],
        )
    }

    /// The dispatches [`GpuSampler::record`] would record now for rows
    /// `0..batch` with their current parameters: labels, grids, and which
    /// ones read whole rows (see [`Plan`]).
    ///
    /// Errors: batch 0 or above `max_batch`.
    pub fn plan(&self, batch: u32) -> Result<Plan> {
        if batch == 0 || batch > self.cfg.max_batch {
            return Err(Error::InvalidArgument(format!(
                "batch {batch} must be between 1 and the sampler's max_batch ({})",
                self.cfg.max_batch
            )));
        }
        let v = self.cfg.vocab as usize;
        let flags: Vec<u32> = self.params[..batch as usize]
            .iter()
            .map(|p| row_flags(p, v))
            .collect();
        Ok(Plan::for_rows(&flags, self.chunks, batch))
    }

    /// How each of rows `0..batch` of the last recorded step was finished
    /// once the step has run: from the chunks' candidates, or by the slow
    /// path that reads the whole row again because the candidates could
    /// not be proven complete (see [`RowPath`]). Blocks (reads 16 bytes a
    /// row back); for tests and diagnostics, not for the decode loop.
    ///
    /// Errors: `batch` 0 or above the last recorded batch.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn last_step_paths(&self, batch: u32) -> Result<Vec<RowPath>> {
        pollster::block_on(self.last_step_paths_async(batch))
    }

    /// The async form of [`GpuSampler::last_step_paths`].
    pub async fn last_step_paths_async(&self, batch: u32) -> Result<Vec<RowPath>> {
        if batch == 0 || batch > self.last_batch {
            return Err(Error::InvalidArgument(format!(
                "batch {batch} must be between 1 and the last recorded batch ({})",
                self.last_batch
            )));
        }
        let device = &self.ctx.device;
        let size = u64::from(batch) * ROW_WORDS * 4;
        let enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        let bytes = read_async(
            &self.ctx,
            enc,
            &self.scratch_buf,
            size,
            "reading the row paths",
        )
        .await?;
        let w: &[u32] = bytemuck::cast_slice(&bytes);
        (0..batch as usize)
            .map(|r| {
                let c = w[r * ROW_WORDS as usize];
                RowPath::from_code(c)
                    .ok_or_else(|| Error::Gpu(format!("row {r}: unknown path code {c}")))
            })
            .collect()
    }

    /// The buffer the passes write their results to: `B` token ids (u32,
    /// `NO_TOKEN` for rows without a token), then `B` logprobs (f32), then
    /// `B` status codes (u32, see [`Status::code`]), `B` being the batch of
    /// the last [`GpuSampler::record`]. The first `4 B` bytes can feed the
    /// model's next step directly. Then, for rows that asked for top
    /// logprobs ([`SamplingParams::top_logprobs`] `N > 0`) and got a
    /// token: `B` ranks (u32), then per row `MAX_TOP_LOGPROBS` (token u32,
    /// logprob f32) pairs of which the first `min(N, V)` are set (words
    /// `4 B + 40 r ..`); other rows' words there are unspecified.
    pub fn output_buffer(&self) -> &wgpu::Buffer {
        &self.out_buf
    }

    /// Submits `encoder` (which must hold this sampler's recorded passes),
    /// then reads back only the `B` row results (12 bytes a row). Blocks
    /// (native only; [`GpuSampler::submit_and_read_async`] everywhere).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn submit_and_read(&self, encoder: wgpu::CommandEncoder) -> Result<Vec<RowOutput>> {
        pollster::block_on(self.submit_and_read_async(encoder))
    }

    /// The async form of [`GpuSampler::submit_and_read`]. In a browser it
    /// yields to the event loop until the results are mapped; on native
    /// backends it waits for the GPU inside (see the crate's "Async and
    /// the browser" notes in [`crate::gpu`]). wgpu errors of the submission
    /// arrive as [`Error::Wgpu`].
    pub async fn submit_and_read_async(
        &self,
        encoder: wgpu::CommandEncoder,
    ) -> Result<Vec<RowOutput>> {
        let b = self.last_batch;
        let bytes = self
            .readback
            .read_async(
                &self.ctx,
                encoder,
                &self.out_buf,
                u64::from(b) * 12,
                "reading the sampled tokens",
            )
            .await?;
        decode_outputs(&bytes, b as usize, self.cfg.vocab)
    }

    /// [`GpuSampler::submit_and_read`], also reading back the ranks and
    /// top logprobs of the rows that asked for them (see
    /// [`GpuSampler::output_buffer`]): `16 + 160` bytes a row. Rows with
    /// `top_logprobs == 0` or without a token get `TopLogprobs::default()`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn submit_and_read_with_top_logprobs(
        &self,
        encoder: wgpu::CommandEncoder,
    ) -> Result<(Vec<RowOutput>, Vec<TopLogprobs>)> {
        pollster::block_on(self.submit_and_read_with_top_logprobs_async(encoder))
    }

    /// The async form of [`GpuSampler::submit_and_read_with_top_logprobs`].
    pub async fn submit_and_read_with_top_logprobs_async(
        &self,
        encoder: wgpu::CommandEncoder,
    ) -> Result<(Vec<RowOutput>, Vec<TopLogprobs>)> {
        let b = self.last_batch;
        let bytes = self
            .readback
            .read_async(
                &self.ctx,
                encoder,
                &self.out_buf,
                u64::from(b) * OUT_WORDS * 4,
                "reading the sampled tokens and top logprobs",
            )
            .await?;
        let rows = decode_outputs(&bytes, b as usize, self.cfg.vocab)?;
        let w: &[u32] = bytemuck::cast_slice(&bytes);
        let b = b as usize;
        let top = rows
            .iter()
            .enumerate()
            .map(|(r, o)| {
                let n = self.params[r].top_logprobs.min(self.cfg.vocab) as usize;
                if n == 0 || o.status != Status::Ok {
                    return Ok(TopLogprobs::default());
                }
                let entries = (0..n)
                    .map(|j| {
                        let at = 4 * b + (r * TOPN as usize + j) * 2;
                        let token = w[at];
                        if token >= self.cfg.vocab {
                            return Err(Error::Gpu(format!(
                                "row {r}: top-logprob token {token} is out of range"
                            )));
                        }
                        Ok(TokenLogprob {
                            token,
                            logprob: f32::from_bits(w[at + 1]),
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(TopLogprobs {
                    rank: w[3 * b + r],
                    entries,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((rows, top))
    }

    /// [`GpuSampler::sample_host`] with the ranks and top logprobs of the
    /// rows that asked for them (see
    /// [`GpuSampler::submit_and_read_with_top_logprobs`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn sample_host_with_top_logprobs(
        &mut self,
        logits: Logits<'_>,
        batch: u32,
    ) -> Result<(Vec<RowOutput>, Vec<TopLogprobs>)> {
        pollster::block_on(self.sample_host_with_top_logprobs_async(logits, batch))
    }

    /// The async form of [`GpuSampler::sample_host_with_top_logprobs`].
    pub async fn sample_host_with_top_logprobs_async(
        &mut self,
        logits: Logits<'_>,
        batch: u32,
    ) -> Result<(Vec<RowOutput>, Vec<TopLogprobs>)> {
        let up = self.upload_host(logits, batch)?;
        let device = self.ctx.device.clone();
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("wgsample step"),
        });
        let view = LogitsView {
            buffer: &up.0,
            offset: 0,
            dtype: up.1,
        };
        scoped_async(&device, "recording the sampling passes", || {
            self.record(&mut encoder, view, batch)
        })
        .await?;
        self.submit_and_read_with_top_logprobs_async(encoder).await
    }

    /// Copies host logits (`batch * V` values) into the sampler's upload
    /// buffer (grown when needed); returns it and the dtype.
    fn upload_host(&mut self, logits: Logits<'_>, batch: u32) -> Result<(wgpu::Buffer, DType)> {
        let v = self.cfg.vocab as usize;
        if Some(logits.len()) != (batch as usize).checked_mul(v) {
            return Err(Error::InvalidArgument(format!(
                "{} logits do not form a [{batch}, {v}] batch",
                logits.len()
            )));
        }
        let (bytes, dtype) = logits_bytes(logits);
        let size = bytes.len() as u64;
        check_buffer_size(&self.ctx.device, "the logits upload", size)?;
        if self.upload.as_ref().is_none_or(|b| b.size() < size) {
            self.upload = Some(storage_buffer(
                &self.ctx.device,
                "wgsample logits upload",
                size,
                wgpu::BufferUsages::empty(),
            ));
        }
        let up = self.upload.clone().expect("created above");
        self.ctx.queue.write_buffer(&up, 0, &bytes);
        Ok((up, dtype))
    }

    /// Records, submits and reads back one sampling step over rows
    /// `0..batch` of `logits` (see [`GpuSampler::record`]). Blocks (native
    /// only; [`GpuSampler::sample_async`] everywhere).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn sample(&mut self, logits: LogitsView<'_>, batch: u32) -> Result<Vec<RowOutput>> {
        pollster::block_on(self.sample_async(logits, batch))
    }

    /// The async form of [`GpuSampler::sample`]: records, submits, and
    /// resolves when the row results are mapped. The recording and the
    /// submission run inside error scopes that are awaited, so a wgpu
    /// error is an `Err` in a browser too.
    pub async fn sample_async(
        &mut self,
        logits: LogitsView<'_>,
        batch: u32,
    ) -> Result<Vec<RowOutput>> {
        let device = self.ctx.device.clone();
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("wgsample step"),
        });
        scoped_async(&device, "recording the sampling passes", || {
            self.record(&mut encoder, logits, batch)
        })
        .await?;
        self.submit_and_read_async(encoder).await
    }

    /// Uploads host logits (`Logits` of `batch * V` values) and samples
    /// them: a convenience for tools and tests; engines keep their logits
    /// on the GPU and call [`GpuSampler::sample`] or [`GpuSampler::record`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn sample_host(&mut self, logits: Logits<'_>, batch: u32) -> Result<Vec<RowOutput>> {
        pollster::block_on(self.sample_host_async(logits, batch))
    }

    /// The async form of [`GpuSampler::sample_host`].
    pub async fn sample_host_async(
        &mut self,
        logits: Logits<'_>,
        batch: u32,
    ) -> Result<Vec<RowOutput>> {
        let (up, dtype) = self.upload_host(logits, batch)?;
        self.sample_async(
            LogitsView {
                buffer: &up,
                offset: 0,
                dtype,
            },
            batch,
        )
        .await
    }

    /// Reads row `row`'s decode state back from the device (prompt from
    /// the host copy; counts, generated length and step from the GPU).
    ///
    /// Errors: `row` out of range, or a row whose token counts the device
    /// does not keep: when lists of `max_seen_tokens` counts for every row
    /// (`max_batch x max_seen_tokens x 8` bytes) exceed the device's
    /// `max_storage_buffer_binding_size`, only rows that have had penalties
    /// get one, and the others keep only their length and step.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_state(&self, row: usize) -> Result<RowState> {
        pollster::block_on(self.read_state_async(row))
    }

    /// The async form of [`GpuSampler::read_state`].
    pub async fn read_state_async(&self, row: usize) -> Result<RowState> {
        self.check_row(row)?;
        let slot = self.seen_slot[row];
        if slot == u32::MAX {
            return Err(Error::InvalidArgument(format!(
                "row {row}: its token counts are not kept on the device (it has had no \
                 penalties, and max_batch {} x max_seen_tokens {} lists for every row do \
                 not fit the device's max_storage_buffer_binding_size), so its state \
                 cannot be read back",
                self.cfg.max_batch, self.cfg.max_seen_tokens
            )));
        }
        let device = &self.ctx.device;
        let size = self.state_buf.size();
        let mut enc =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        // State set since the last record is still queued: apply it first
        // (the next record applies the same bytes again).
        self.encode_pending(&mut enc);
        let bytes = read_async(
            &self.ctx,
            enc,
            &self.state_buf,
            size,
            "reading the row state",
        )
        .await?;
        let w: &[u32] = bytemuck::cast_slice(&bytes);
        let cap = self.cfg.max_seen_tokens as usize;
        let h = &w[row * 4..row * 4 + 4];
        let len = (h[3] as usize).min(cap);
        let (to, co) = self.seen_offsets(slot, self.slots);
        let toks = &w[to as usize / 4..][..len];
        let cnts = &w[co as usize / 4..][..len];
        let mut out = Vec::new();
        for (&t, &c) in toks.iter().zip(cnts) {
            out.extend(std::iter::repeat_n(t, c as usize));
        }
        // A list that filled up (more distinct tokens than max_seen_tokens,
        // possible for a row without penalties) no longer counts them all:
        // say so rather than return a shorter history.
        if out.len() as u64 != u64::from(h[0]) {
            return Err(Error::InvalidArgument(format!(
                "row {row}: it generated {} tokens, but its count list (max_seen_tokens = {cap}) \
                 holds only {} of them; create the sampler with a larger max_seen_tokens to \
                 read its state back",
                h[0],
                out.len()
            )));
        }
        // The generated length is the sum of the counts (the device's `n`
        // equals it as long as the list has not overflowed `max_seen_tokens`).
        let mut st = RowState::with_output(&self.prompts[row], &out);
        st.step = u64::from(h[1]) | (u64::from(h[2]) << 32);
        Ok(st)
    }
}

/// Host logits as the bytes a GPU buffer holds (little-endian, padded with
/// zeros to a multiple of 4, at least 4) and their [`DType`]: what
/// [`GpuSampler::record`] reads, for callers that upload host logits.
pub fn logits_bytes(logits: Logits<'_>) -> (Vec<u8>, DType) {
    let (mut bytes, dtype): (Vec<u8>, DType) = match logits {
        Logits::F32(x) => (bytemuck::cast_slice(x).to_vec(), DType::F32),
        Logits::F16(x) => (
            x.iter().flat_map(|h| h.to_bits().to_le_bytes()).collect(),
            DType::F16,
        ),
        Logits::Bf16(x) => (
            x.iter().flat_map(|h| h.to_bits().to_le_bytes()).collect(),
            DType::Bf16,
        ),
    };
    bytes.resize(bytes.len().next_multiple_of(4).max(4), 0);
    (bytes, dtype)
}

/// Every pass of the sampler as `(name, full WGSL, entry point)`.
pub(crate) fn shader_sources() -> Vec<(String, String, &'static str)> {
    ALL.iter()
        .map(|p| {
            (
                format!("sampler:{}", p.name),
                passes::full_source(p),
                "main",
            )
        })
        .collect()
}

/// Decodes `batch` row results from the output layout (planar: tokens,
/// logprob bits, statuses), each through [`super::kit::row_result`].
fn decode_outputs(bytes: &[u8], batch: usize, vocab: u32) -> Result<Vec<RowOutput>> {
    let w: &[u32] = bytemuck::try_cast_slice(bytes)
        .map_err(|e| Error::Gpu(format!("read-back of {} bytes: {e}", bytes.len())))?;
    if w.len() < batch * 3 {
        return Err(Error::Gpu(format!(
            "read back {} words, expected {}",
            w.len(),
            batch * 3
        )));
    }
    (0..batch)
        .map(|r| {
            super::kit::row_result(w[r], w[batch + r], w[2 * batch + r], vocab)
                .map_err(|e| Error::Gpu(format!("row {r}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod layout_tests {
    use super::*;
    use std::mem::{offset_of, size_of};
    use wgpu::naga;

    /// The members (name, byte offset) of WGSL struct `name` in `source`
    /// and its size, as naga lays it out for the GPU.
    fn wgsl_layout(source: &str, name: &str) -> (Vec<(String, usize)>, usize) {
        let module = naga::front::wgsl::parse_str(source).expect("the sampler's WGSL parses");
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).expect("layout");
        for (_, ty) in module.types.iter() {
            if ty.name.as_deref() == Some(name)
                && let naga::TypeInner::Struct { members, span } = &ty.inner
            {
                let m = members
                    .iter()
                    .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
                    .collect();
                return (m, *span as usize);
            }
        }
        panic!("no struct {name} in the WGSL");
    }

    macro_rules! rust_layout {
        ($ty:ty; $($f:ident),*) => {
            (vec![$((stringify!($f).to_string(), offset_of!($ty, $f))),*], size_of::<$ty>())
        };
    }

    #[test]
    fn wgsl_structs_match_the_repr_c_structs() {
        // Every pass sees the same structs (one bindings.wgsl); check them
        // in each pass's full source.
        for pass in &passes::ALL {
            let src = passes::full_source(pass);
            assert_eq!(
                wgsl_layout(&src, "RowParams"),
                rust_layout!(RowParamsGpu; temperature, top_k, top_p, ln_min_p, rep, presence,
                    freq, flags, min_new, seed_lo, seed_hi, bias_off, bias_len, banned_off,
                    banned_len, eos_off, eos_len, prompt_off, prompt_len, top_n,
                    allowed_off, ov_off, ov_cap, seen_slot),
                "RowParams in {}",
                pass.name
            );
            assert_eq!(
                wgsl_layout(&src, "Dims"),
                rust_layout!(Dims; batch, vocab, chunks, dtype, slots, cap, logits_off,
                    max_batch, rank_off, positions, drafts_off, vmode, q_off, pad0, pad1, pad2),
                "Dims in {}",
                pass.name
            );
        }
    }

    #[test]
    fn shared_constants_are_generated_once() {
        // The WGSL sources must not define what the generated prelude does:
        // a second definition would be a WGSL error, a missing one too.
        let prelude = passes::wgsl_constants();
        for pass in &passes::ALL {
            let own = format!(
                "{}\n{}",
                include_str!("../../../shaders/sampler/bindings.wgsl"),
                pass.source
            );
            for line in prelude.lines().filter(|l| l.starts_with("const ")) {
                let name = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap()
                    .trim_end_matches(':');
                assert!(
                    !own.contains(&format!("const {name}:")),
                    "{name} is defined by hand in {}",
                    pass.name
                );
            }
            crate::gpu::validate_wgsl(&passes::full_source(pass))
                .unwrap_or_else(|e| panic!("{}: {e}", pass.name));
        }
        assert!(prelude.contains(&format!("const CHUNK: u32 = {CHUNK}u;")));
        assert!(prelude.contains("const ST_NONE: u32 = 2u;"));
    }
}
