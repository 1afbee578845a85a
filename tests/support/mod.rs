//! What the test files share (`mod support;` in each): the GPU device and
//! the logits generator.
//!
//! Not every test file uses every item.
#![allow(dead_code)]

pub mod logits;

use std::sync::OnceLock;

use wgsample::gpu::{GpuContext, open_device};

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
