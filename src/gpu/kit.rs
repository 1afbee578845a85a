//! The kit every GPU pass is built from: the element types and the view of
//! an engine's logits ([`DType`], [`LogitsView`]) with the one check that
//! plans their binding against the device's limits, buffer and layout
//! helpers, pipeline creation inside error scopes, and the read-back path.
//!
//! It sits below the passes (`sampler`, `argmax`, `philox`, the beam step
//! and the bigram gather) so they validate and bind their inputs the same
//! way: a bad offset, a short buffer or a binding beyond the device's limits
//! is the same [`Error`] whichever pass receives it, and nothing invalid
//! reaches wgpu.

use super::device::{GpuContext, scoped, scoped_async};
use crate::{Error, NO_TOKEN, Result, RowOutput, Status};

/// Element type of the logits buffer. f16 and bf16 are read as packed u32
/// words (two values per word, the lower address in the low half), so no
/// optional device feature is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// 32-bit IEEE floats.
    F32,
    /// 16-bit IEEE floats.
    F16,
    /// bfloat16.
    Bf16,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::Bf16 => 2,
        }
    }
    pub(crate) fn code(self) -> u32 {
        match self {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::Bf16 => 2,
        }
    }
}

/// One row's result as a shader wrote it (token, logprob bits, status
/// code), checked and turned into a [`RowOutput`]: the one decoding rule
/// for every pass that emits row results (the sampler's planar output and
/// argmax's interleaved one). An unknown status or an `Ok` token outside
/// the vocabulary is an [`Error::Gpu`]; rows without a token get
/// [`NO_TOKEN`] and a NaN logprob whatever the buffer held.
pub(crate) fn row_result(
    token: u32,
    logprob_bits: u32,
    status: u32,
    vocab: u32,
) -> Result<RowOutput> {
    let status = Status::from_code(status)
        .ok_or_else(|| Error::Gpu(format!("unknown status code {status} in GPU output")))?;
    match status {
        Status::Ok if token < vocab => Ok(RowOutput {
            token,
            logprob: f32::from_bits(logprob_bits),
            status,
        }),
        Status::Ok => Err(Error::Gpu(format!(
            "GPU output token {token} is out of range for vocab {vocab}"
        ))),
        _ => Ok(RowOutput {
            token: NO_TOKEN,
            logprob: f32::NAN,
            status,
        }),
    }
}

/// A bind group for `layout` whose binding `i` is `resources[i]`: every
/// pass of the crate binds its buffers at 0, 1, 2, ... in layout order.
pub(crate) fn bind_group(
    device: &wgpu::Device,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    resources: &[wgpu::BindingResource<'_>],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry<'_>> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: r.clone(),
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &entries,
    })
}

/// WGSL `const` declarations (`u32`) for constants whose value lives in
/// Rust: prepended to a pass's source so Rust and WGSL share one
/// definition (WGSL has no includes and no build-time defines).
pub(crate) fn wgsl_consts(consts: &[(&str, u64)]) -> String {
    let mut s = String::from("// Generated from the Rust constants.\n");
    for (name, value) in consts {
        s.push_str(&format!("const {name}: u32 = {value}u;\n"));
    }
    s
}

/// A `[batch, vocab]` block of logits inside a wgpu buffer: the buffer
/// (which needs `STORAGE` usage), the byte offset of row 0 (a multiple of
/// 4; any such offset works: the binding starts at the aligned offset below
/// it and the shaders skip the difference) and the
/// element type. Every `record` of the crate takes one.
#[derive(Debug, Clone, Copy)]
pub struct LogitsView<'a> {
    /// The buffer holding the logits.
    pub buffer: &'a wgpu::Buffer,
    /// Byte offset of row 0.
    pub offset: u64,
    /// Element type.
    pub dtype: DType,
}

impl<'a> LogitsView<'a> {
    /// f32 logits from byte 0 of `buffer`.
    pub fn f32(buffer: &'a wgpu::Buffer) -> Self {
        LogitsView {
            buffer,
            offset: 0,
            dtype: DType::F32,
        }
    }

    /// Validates `batch` rows of `vocab` logits of this view against the
    /// buffer and `limits`, and plans their binding. Pure: nothing touches
    /// the device, so bad input never reaches wgpu.
    pub(crate) fn plan_binding(
        &self,
        limits: &wgpu::Limits,
        batch: u32,
        vocab: u32,
    ) -> Result<LogitsBinding> {
        plan_logits_binding(
            self.buffer.size(),
            self.buffer.usage(),
            limits,
            self.offset,
            batch,
            vocab,
            self.dtype,
        )
    }

    /// Fails unless the view holds f32 logits (for the passes that read
    /// only f32: argmax and the beam step).
    pub(crate) fn require_f32(&self, what: &str) -> Result<()> {
        if self.dtype != DType::F32 {
            return Err(Error::InvalidArgument(format!(
                "{what} reads f32 logits; this view holds {:?}",
                self.dtype
            )));
        }
        Ok(())
    }
}

/// Checks a byte size against the device's buffer limit before anything
/// is created (wgpu reports oversize buffers as errors that can poison
/// later calls).
pub(crate) fn check_buffer_size(device: &wgpu::Device, what: &str, size: u64) -> Result<()> {
    let max = device.limits().max_buffer_size;
    if size > max {
        return Err(Error::limit(
            format!("{what} (bytes)"),
            size,
            "max_buffer_size",
            max,
        ));
    }
    Ok(())
}

/// Checks a byte size against both `max_buffer_size` and
/// `max_storage_buffer_binding_size` (for buffers bound whole as storage),
/// naming `what` and the limit in the error.
pub(crate) fn check_binding_size(device: &wgpu::Device, what: &str, size: u64) -> Result<()> {
    check_buffer_size(device, what, size)?;
    let max = device.limits().max_storage_buffer_binding_size;
    if size > max {
        return Err(Error::limit(
            format!("{what} (bytes)"),
            size,
            "max_storage_buffer_binding_size",
            max,
        ));
    }
    check_word_index(what, size)
}

/// The shaders index storage buffers with u32 words: a binding of more than
/// 2^32 - 2^16 words (some Metal devices allow such bindings) would wrap.
pub(crate) fn check_word_index(what: &str, bytes: u64) -> Result<()> {
    if bytes / 4 > u64::from(u32::MAX) - (1 << 16) {
        return Err(Error::InvalidArgument(format!(
            "{what} needs {bytes} bytes, more words than a shader's u32 index reaches"
        )));
    }
    Ok(())
}

/// The largest storage binding this device allows, in whole u32 words.
pub(crate) fn max_binding(limits: &wgpu::Limits) -> u64 {
    limits.max_storage_buffer_binding_size & !3
}

/// A storage buffer (also `COPY_DST`, plus `extra` usages) of at least
/// `bytes` bytes, rounded up to 4 and never below 16 (no zero-size
/// bindings).
pub(crate) fn storage_buffer(
    device: &wgpu::Device,
    label: &str,
    bytes: u64,
    extra: wgpu::BufferUsages,
) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(16).next_multiple_of(4),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | extra,
        mapped_at_creation: false,
    })
}

/// Copies `size` bytes from the start of `src` (which needs `COPY_SRC`)
/// into a staging buffer at the end of `encoder`, submits the encoder, waits
/// and returns the bytes. Native only (see [`read_async`]).
#[cfg(all(not(target_arch = "wasm32"), any(test, feature = "testing")))]
pub(crate) fn submit_and_read(
    ctx: &GpuContext,
    encoder: wgpu::CommandEncoder,
    src: &wgpu::Buffer,
    size: u64,
) -> Result<Vec<u8>> {
    pollster::block_on(read_async(ctx, encoder, src, size, "a read-back"))
}

/// The async form of [`submit_and_read`] with a one-off staging buffer.
pub(crate) async fn read_async(
    ctx: &GpuContext,
    encoder: wgpu::CommandEncoder,
    src: &wgpu::Buffer,
    size: u64,
    what: &str,
) -> Result<Vec<u8>> {
    Readback::default()
        .read_async(ctx, encoder, src, size, what)
        .await
}

/// A `MAP_READ` staging buffer kept between read-backs (created on the
/// first, grown when a read needs more), so a decode loop that reads its
/// tokens every step allocates nothing per step. A read takes the buffer
/// out for its duration and puts it back when it succeeds, so two reads
/// through one instance at once simply use two buffers.
#[derive(Debug, Default)]
pub(crate) struct Readback {
    buf: std::sync::Mutex<Option<wgpu::Buffer>>,
}

impl Readback {
    /// Takes the staging buffer out (creating or growing it to hold
    /// `size` bytes); [`Readback::put`] returns it.
    fn take(&self, device: &wgpu::Device, size: u64) -> wgpu::Buffer {
        let mut slot = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        match slot.take() {
            Some(b) if b.size() >= size => b,
            _ => device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgsample readback"),
                size: size.max(16).next_power_of_two(),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        }
    }

    /// Returns a buffer from [`Readback::take`] (unmapped) for the next
    /// read-back.
    fn put(&self, buf: wgpu::Buffer) {
        *self.buf.lock().unwrap_or_else(|e| e.into_inner()) = Some(buf);
    }

    /// Copies the first `size` bytes of `src` into the staging buffer at
    /// the end of `encoder`, submits it (inside error scopes: a wgpu error
    /// becomes [`Error::Wgpu`] naming `what`), waits for the mapping and
    /// returns the bytes.
    ///
    /// In a browser the wait yields to the event loop: the future is woken
    /// by the `map_async` callback itself. On native backends that callback
    /// only runs inside `Device::poll`, so the future first waits for the
    /// submitted work with a blocking poll (the one way wgpu offers); it
    /// then resolves at once.
    pub(crate) async fn read_async(
        &self,
        ctx: &GpuContext,
        mut encoder: wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        size: u64,
        what: &str,
    ) -> Result<Vec<u8>> {
        let staging = self.take(&ctx.device, size);
        encoder.copy_buffer_to_buffer(src, 0, &staging, 0, size);
        scoped_async(&ctx.device, what, || {
            ctx.queue.submit([encoder.finish()]);
            Ok(())
        })
        .await?;
        let bytes = map_read(&ctx.device, &staging, size).await?;
        // Only a buffer that was mapped and unmapped cleanly is reused.
        self.put(staging);
        Ok(bytes)
    }
}

/// What a `map_async` callback shares with the [`MapFuture`] waiting for
/// it: the answer, and the waker to call when it arrives.
#[derive(Default)]
struct MapState {
    result: Option<std::result::Result<(), wgpu::BufferAsyncError>>,
    waker: Option<std::task::Waker>,
}

/// Resolves when the `map_async` request it was made for has answered.
/// It never wakes itself: the callback wakes it (a future that re-queues
/// itself on every poll starves a browser's event loop, which is what
/// resolves `mapAsync`).
struct MapFuture(std::sync::Arc<std::sync::Mutex<MapState>>);

impl std::future::Future for MapFuture {
    type Output = std::result::Result<(), wgpu::BufferAsyncError>;
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let mut st = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match st.result.take() {
            Some(r) => std::task::Poll::Ready(r),
            None => {
                st.waker = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        }
    }
}

/// Maps the first `size` bytes of `staging` (whose copy is already
/// submitted), returns them and unmaps it. In a browser the wait yields to
/// the event loop; on native backends it is a blocking `Device::poll`
/// first (see [`Readback::read_async`]).
pub(crate) async fn map_read(
    device: &wgpu::Device,
    staging: &wgpu::Buffer,
    size: u64,
) -> Result<Vec<u8>> {
    let state = std::sync::Arc::new(std::sync::Mutex::new(MapState::default()));
    let answer = state.clone();
    staging.map_async(wgpu::MapMode::Read, 0..size, move |r| {
        let mut st = answer.lock().unwrap_or_else(|e| e.into_inner());
        st.result = Some(r);
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    });
    #[cfg(not(target_arch = "wasm32"))]
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))?;
    #[cfg(target_arch = "wasm32")]
    let _ = device;
    MapFuture(state).await.map_err(|source| Error::Map {
        context: "mapping the read-back buffer".into(),
        source,
    })?;
    let bytes = {
        let view = staging
            .get_mapped_range(0..size)
            .map_err(|e| Error::Gpu(format!("reading the mapped buffer: {e}")))?;
        view.to_vec()
    };
    staging.unmap();
    Ok(bytes)
}

/// Creates a compute pipeline from `common.wgsl` + `source` (already
/// concatenated) with an explicit bind group layout, inside error scopes.
pub(crate) fn compute_pipeline(
    device: &wgpu::Device,
    label: &str,
    source: &str,
    entry_point: &str,
    layout: &wgpu::BindGroupLayout,
) -> Result<wgpu::ComputePipeline> {
    scoped(device, label, || {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(layout)],
            immediate_size: 0,
        });
        Ok(
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry_point),
                compilation_options: Default::default(),
                cache: None,
            }),
        )
    })
}

/// A bind group layout entry for a compute-stage buffer binding.
pub(crate) fn buffer_entry(
    binding: u32,
    ty: wgpu::BufferBindingType,
    min_size: Option<u64>,
) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: min_size.and_then(wgpu::BufferSize::new),
        },
        count: None,
    }
}

/// Where a `[batch, vocab]` block of f32 logits sits inside a buffer, as a
/// kernel binds it.
///
/// Storage bindings must start at a multiple of the device's
/// `min_storage_buffer_offset_alignment` (often 256 bytes), but an engine's
/// logits can start anywhere (say, the last position of a `[seq, vocab]`
/// output). So the binding starts at the aligned offset at or below the
/// caller's, and the kernel skips `base` elements: any 4-byte-aligned
/// offset works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogitsBinding {
    /// Byte offset of the binding (aligned).
    pub offset: u64,
    /// Byte size of the binding.
    pub size: u64,
    /// Elements between the binding start and row 0.
    pub base: u32,
}

/// Validates a `[batch, vocab]` block of `dtype` at byte `offset` of a buffer of
/// `buffer_size` bytes and usages `usage`, against `limits`, and plans its
/// binding. Pure: nothing touches the device, so bad input never reaches
/// wgpu.
pub(crate) fn plan_logits_binding(
    buffer_size: u64,
    usage: wgpu::BufferUsages,
    limits: &wgpu::Limits,
    offset: u64,
    batch: u32,
    vocab: u32,
    dtype: DType,
) -> Result<LogitsBinding> {
    if batch == 0 {
        return Err(Error::InvalidArgument("batch must be at least 1".into()));
    }
    if vocab == 0 {
        return Err(Error::InvalidArgument("vocab must be at least 1".into()));
    }
    if !usage.contains(wgpu::BufferUsages::STORAGE) {
        return Err(Error::InvalidArgument(format!(
            "the logits buffer needs STORAGE usage (it has {usage:?})"
        )));
    }
    if !offset.is_multiple_of(4) {
        return Err(Error::InvalidArgument(format!(
            "logits offset {offset} is not a multiple of 4 bytes"
        )));
    }
    let elems = u64::from(batch) * u64::from(vocab);
    let end = elems
        .checked_mul(dtype.size())
        .and_then(|bytes| offset.checked_add(bytes))
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "logits [{batch}, {vocab}] {dtype:?} at byte offset {offset} overflow a u64 size"
            ))
        })?;
    if end > buffer_size {
        return Err(Error::InvalidArgument(format!(
            "logits [{batch}, {vocab}] {dtype:?} at byte offset {offset} need {end} bytes, \
             the buffer has {buffer_size}"
        )));
    }
    let align = u64::from(limits.min_storage_buffer_offset_alignment.max(4));
    let bind_offset = offset - offset % align;
    let base = (offset - bind_offset) / dtype.size();
    // Bindings cover whole u32 words (f16 and bf16 are read in pairs).
    let size = (end - bind_offset).next_multiple_of(4);
    if bind_offset + size > buffer_size {
        return Err(Error::InvalidArgument(format!(
            "logits of {dtype:?} must end on a 4-byte boundary of the buffer ({} bytes \
             needed, {buffer_size} present)",
            bind_offset + size
        )));
    }
    if size > limits.max_storage_buffer_binding_size {
        return Err(Error::limit(
            format!("the binding of logits [{batch}, {vocab}] {dtype:?} (bytes)"),
            size,
            "max_storage_buffer_binding_size",
            limits.max_storage_buffer_binding_size,
        )
        .with_hint("; sample the batch in smaller parts"));
    }
    // Element indices are u32 in WGSL; keep room for a workgroup's stride.
    if base + elems + 256 > u64::from(u32::MAX) {
        return Err(Error::InvalidArgument(format!(
            "logits [{batch}, {vocab}] have more elements than a u32 index can address"
        )));
    }
    Ok(LogitsBinding {
        offset: bind_offset,
        size,
        base: base as u32,
    })
}

#[cfg(any(test, feature = "testing"))]
/// Validates an output buffer that receives `bytes` bytes from offset 0
/// through a read-write storage binding.
pub(crate) fn check_output_buffer(
    out_size: u64,
    usage: wgpu::BufferUsages,
    limits: &wgpu::Limits,
    bytes: u64,
) -> Result<()> {
    if !usage.contains(wgpu::BufferUsages::STORAGE) {
        return Err(Error::InvalidArgument(format!(
            "the output buffer needs STORAGE usage (it has {usage:?})"
        )));
    }
    if out_size < bytes {
        return Err(Error::InvalidArgument(format!(
            "the output buffer has {out_size} bytes, {bytes} are needed"
        )));
    }
    if bytes > limits.max_storage_buffer_binding_size {
        return Err(Error::limit(
            "the output binding (bytes)",
            bytes,
            "max_storage_buffer_binding_size",
            limits.max_storage_buffer_binding_size,
        ));
    }
    Ok(())
}

#[cfg(any(test, feature = "testing"))]
/// Splits `groups` workgroups into a 2-D grid `(x, y)` within
/// `max_compute_workgroups_per_dimension`; kernels recover the linear id as
/// `x + y * grid_x` and skip ids past the end.
pub(crate) fn grid_2d(limits: &wgpu::Limits, groups: u32) -> Result<(u32, u32)> {
    let max = limits.max_compute_workgroups_per_dimension.max(1);
    let x = groups.clamp(1, max);
    let y = groups.div_ceil(x).max(1);
    if y > max {
        return Err(Error::limit(
            format!("{groups} workgroups (rows of a {max}-wide grid)"),
            u64::from(y),
            "max_compute_workgroups_per_dimension",
            u64::from(max),
        ));
    }
    Ok((x, y))
}
