//! What the test files share (`mod support;` in each): the GPU device, the
//! logits generator, [`Backend`], one way to drive either sampler so a
//! SPEC case can run on both, and [`verify`], the speculative-decoding
//! checks written against a backend's `verify` closure.
//!
//! Not every test file uses every item.
#![allow(dead_code)]

pub mod logits;
pub mod stats;
pub mod verify;

use std::sync::OnceLock;

use wgsample::gpu::{GpuContext, GpuSampler, SamplerConfig, open_device};
use wgsample::{CpuSampler, Error, Logits, Result, RowOutput, RowState, SamplingParams};

/// The test binary's one GPU device, opened by `open_device` on first use.
///
/// One device per test binary, shared by its tests (wgpu devices are
/// `Send + Sync`, and the crate's error scopes are thread-local, so tests
/// running in parallel do not see each other's errors). No test needs a
/// fresh default device: none destroys or loses it, and the tests that need
/// other limits or features open their own (see [`gpu_ctx_with_limits`]).
///
/// Without an adapter it panics, saying how to install a driver: the GPU
/// tests never skip.
pub fn gpu_ctx() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(|| {
        let ctx = open_device().unwrap_or_else(|e| no_adapter(&e));
        eprintln!("GPU tests run on {}", ctx.describe());
        ctx
    })
}

/// A fresh device on the default adapter with exactly `limits` (for the
/// tests of what a sampler does under WebGPU's default or smaller limits).
/// Panics like [`gpu_ctx`] without an adapter.
pub fn gpu_ctx_with_limits(limits: wgpu::Limits) -> GpuContext {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .unwrap_or_else(|e| no_adapter(&e));
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: limits,
        ..Default::default()
    }))
    .unwrap_or_else(|e| panic!("device request with custom limits failed: {e}"));
    GpuContext::from_device(device, queue)
}

fn no_adapter(e: &dyn std::fmt::Display) -> ! {
    panic!(
        "the GPU tests need a wgpu adapter and found none: {e}\n\
         They never skip. Install a Vulkan driver, e.g. \
         `apt-get install -y mesa-vulkan-drivers libvulkan1` (Mesa's lavapipe, \
         a software driver that needs no GPU; scripts/ensure_vulkan.sh does it), \
         or the GPU vendor's driver."
    )
}

/// A sampler the SPEC cases can run on: one step over a `[B, vocab]` batch,
/// `B = params.len()`, with `states[r]` as row `r`'s state before the step
/// and after it (SPEC step 12: updated for `Ok` rows, unchanged for the
/// others). Errors are the sampler's own (bad params, bad shapes).
pub trait Backend {
    /// `"cpu"` or `"gpu"`, for messages.
    fn name(&self) -> &'static str;

    /// Samples one token per row.
    fn sample(
        &mut self,
        logits: Logits<'_>,
        vocab: usize,
        params: &[SamplingParams],
        states: &mut [RowState],
    ) -> Result<Vec<RowOutput>>;
}

impl Backend for CpuSampler {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn sample(
        &mut self,
        logits: Logits<'_>,
        vocab: usize,
        params: &[SamplingParams],
        states: &mut [RowState],
    ) -> Result<Vec<RowOutput>> {
        CpuSampler::sample(self, logits, vocab, params, states)
    }
}

/// The sampler's own shape: `vocab` must be its `config().vocab` and the
/// batch at most its `max_batch`. Params and states go up with `set_params`
/// / `set_state` (as tests/gpu_sampler.rs drives it), the logits with
/// `sample_host`, and the states the shaders updated come back with
/// `read_state`, so the device's step 12 is what the caller sees.
impl Backend for GpuSampler {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn sample(
        &mut self,
        logits: Logits<'_>,
        vocab: usize,
        params: &[SamplingParams],
        states: &mut [RowState],
    ) -> Result<Vec<RowOutput>> {
        let cfg = self.config();
        if vocab != cfg.vocab as usize {
            return Err(Error::InvalidArgument(format!(
                "vocab {vocab}, but this sampler was made for {}",
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
        let batch = u32::try_from(params.len())
            .map_err(|_| Error::InvalidArgument(format!("batch {} too large", params.len())))?;
        for (r, (p, st)) in params.iter().zip(states.iter()).enumerate() {
            self.set_params(r, p)?;
            self.set_state(r, st)?;
        }
        let out = self.sample_host(logits, batch)?;
        for (r, st) in states.iter_mut().enumerate() {
            *st = self.read_state(r)?;
        }
        Ok(out)
    }
}

/// The GPU backend of any shape: a [`GpuSampler`] on [`gpu_ctx`] per
/// vocabulary, made when first needed and remade when a batch outgrows it.
/// Each has room in its token-count lists for every token of its vocabulary
/// (up to 4096), so any valid state can be set and read back.
#[derive(Default)]
pub struct GpuBackend {
    samplers: Vec<GpuSampler>,
}

impl GpuBackend {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Backend for GpuBackend {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn sample(
        &mut self,
        logits: Logits<'_>,
        vocab: usize,
        params: &[SamplingParams],
        states: &mut [RowState],
    ) -> Result<Vec<RowOutput>> {
        let v =
            u32::try_from(vocab).map_err(|_| Error::InvalidArgument(format!("vocab {vocab}")))?;
        let b = u32::try_from(params.len())
            .map_err(|_| Error::InvalidArgument(format!("batch {}", params.len())))?;
        let at = self.samplers.iter().position(|s| s.config().vocab == v);
        let fits = at.is_some_and(|i| self.samplers[i].config().max_batch >= b);
        let i = if fits {
            at.expect("checked")
        } else {
            let mut cfg = SamplerConfig::new(b.max(64), v);
            cfg.max_seen_tokens = v.saturating_add(1).min(4096);
            let s = GpuSampler::new(gpu_ctx(), cfg)?;
            match at {
                Some(i) => {
                    self.samplers[i] = s;
                    i
                }
                None => {
                    self.samplers.push(s);
                    self.samplers.len() - 1
                }
            }
        };
        Backend::sample(&mut self.samplers[i], logits, vocab, params, states)
    }
}

/// The CPU and the GPU backend, in that order.
pub fn both_backends() -> [Box<dyn Backend>; 2] {
    [Box::new(CpuSampler::new()), Box::new(GpuBackend::new())]
}
