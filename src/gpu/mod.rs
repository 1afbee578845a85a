//! The wgpu backend: sampling where the logits already are.
//!
//! Layout: one Rust module per WGSL pass, so the shader and the code that
//! binds it read side by side (`argmax.rs` with `shaders/argmax.wgsl`,
//! `philox.rs` with `shaders/philox_test.wgsl`, the sampler's passes in
//! `sampler/`), `device.rs` for opening a device and error scopes, and
//! `kit.rs` for what every pass shares: [`DType`] and [`LogitsView`] with the
//! validation of a `[B, V]` logits block against the device's limits,
//! buffer, layout and bind-group helpers, constants generated into WGSL, and
//! the read-back.
//! `shaders/common.wgsl` (Philox, Gumbel, float classification, sortable
//! keys) is prepended to each pass's source by `concat!`, since WGSL has no
//! includes.
//!
//! Every pass is split into a `record` step, which validates its inputs and
//! records compute passes into the caller's `wgpu::CommandEncoder` without
//! submitting anything (an engine batches it with its own work and reads
//! back only the per-row outputs), and host conveniences that upload,
//! submit and read back. Bad input is an [`Error`](crate::Error) before
//! anything reaches wgpu; whatever wgpu still reports is caught in error
//! scopes and returned as [`Error::Gpu`](crate::Error::Gpu), never a panic.
//!
//! All kernels stay inside WebGPU's default limits (256 invocations and
//! 16 KiB of workgroup memory per workgroup, no subgroups, barriers in
//! uniform control flow), so the same shaders also run in a browser.

#[cfg(any(test, feature = "testing"))]
pub(crate) mod argmax;
pub(crate) mod device;
pub(crate) mod kit;
#[cfg(any(test, feature = "testing"))]
pub(crate) mod philox;
mod sampler;

pub use device::{
    DeviceFeatures, GpuContext, INSTALL_HINT, open_device_async, open_device_with_async,
    rerun_with_runtime_dir,
};
#[cfg(not(target_arch = "wasm32"))]
pub use device::{open_device, open_device_with};
pub use kit::{DType, LogitsView};
pub use sampler::{
    GpuSampler, MAX_DRAFT_TOKENS, Plan, PlannedDispatch, RowPath, SamplerConfig, logits_bytes,
};

/// Parses and validates a WGSL source with naga (what wgpu runs before any
/// driver sees it), so shader errors show up in `cargo test` without a GPU.
#[cfg(test)]
pub(crate) fn validate_wgsl(source: &str) -> std::result::Result<(), String> {
    use wgpu::naga;
    let module = naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string(source))?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    )
    .validate(&module)
    .map_err(|e| e.emit_to_string(source))?;
    Ok(())
}

/// Every compute shader the crate dispatches, as `(name, full WGSL source,
/// entry point)`, exactly as it is handed to `create_shader_module` (shared
/// helpers included, no specialisation constants). Used by the portability
/// check that compiles them with a browser's WebGPU implementation.
pub fn shader_sources() -> Vec<(String, String, &'static str)> {
    #[allow(unused_mut)]
    let mut v = sampler::shader_sources();
    #[cfg(any(test, feature = "testing"))]
    v.push((
        "argmax".to_string(),
        argmax::ARGMAX_WGSL.to_string(),
        "argmax_rows",
    ));
    #[cfg(any(test, feature = "testing"))]
    for entry in [
        "philox_words",
        "gumbel_values",
        "sortable_keys",
        "ln_values",
    ] {
        v.push((
            format!("philox_test:{entry}"),
            philox::PHILOX_TEST_WGSL.to_string(),
            entry,
        ));
    }
    v
}
