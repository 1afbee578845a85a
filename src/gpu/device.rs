//! Opening a wgpu device for sampling, and the error scopes every pass
//! runs in (the rest of the shared plumbing is in `kit.rs`).
//!
//! An engine that already holds a `wgpu::Device` does not need this module's
//! [`open_device`]: it builds a [`GpuContext`] from its own device and queue
//! (the fields are public) or calls the pipelines' `record` functions
//! directly. [`open_device`] exists for the convenience paths, the CLI, the
//! tests and the benches, and it is shaped by three facts:
//!
//! - The interesting machines have a hardware GPU, but CI and laptops without
//!   one still have a software Vulkan driver (Mesa's lavapipe); so a hardware
//!   adapter is preferred and a software one accepted, and with none at all
//!   the error says which package to install instead of panicking.
//! - wgpu's own helpers (`util::initialize_adapter_from_env`) panic when
//!   `WGPU_ADAPTER_NAME` matches nothing; this module implements the same
//!   environment contract (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`,
//!   `WGPU_POWER_PREF`) with errors.
//! - wgpu reports validation errors asynchronously and, by default, panics
//!   on the ones nobody captured. Every operation of this crate runs inside
//!   error scopes (`scoped`) so that such an error becomes [`Error::Gpu`];
//!   the device opened here also gets an uncaptured-error handler that
//!   prints instead of panicking.

use std::sync::Arc;

use crate::{Error, Result};

/// The text every "no adapter" error carries: how to get a Vulkan driver.
pub const INSTALL_HINT: &str = "install a Vulkan driver, e.g. `apt-get install mesa-vulkan-drivers libvulkan1` \
     (Mesa's lavapipe is a software Vulkan driver that needs no GPU), \
     or the GPU vendor's driver";

/// A wgpu device and queue ready for sampling, with the adapter's
/// description.
///
/// Build one with [`open_device`], or from an engine's own device and queue
/// (all fields are public; `adapter_info` can come from
/// `wgpu::Device::adapter_info`).
#[derive(Debug, Clone)]
pub struct GpuContext {
    /// The logical device all buffers and pipelines are created on.
    pub device: wgpu::Device,
    /// The queue work is submitted to.
    pub queue: wgpu::Queue,
    /// Name, backend and type of the adapter behind `device`.
    pub adapter_info: wgpu::AdapterInfo,
}

impl GpuContext {
    /// Wraps an existing device and queue (for engines that opened their
    /// own); the adapter description is read from the device.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> GpuContext {
        let adapter_info = device.adapter_info();
        GpuContext {
            device,
            queue,
            adapter_info,
        }
    }

    /// One line describing the adapter: `"name (backend, device type)"`,
    /// e.g. `"llvmpipe (LLVM 15.0.6, 256 bits) (vulkan, cpu)"`.
    pub fn describe(&self) -> String {
        let info = &self.adapter_info;
        format!(
            "{} ({}, {})",
            info.name,
            info.backend.to_str(),
            device_type_name(info.device_type)
        )
    }

    /// True when the adapter is a software rasteriser (lavapipe, llvmpipe,
    /// WARP): correct, but not representative for timings.
    pub fn is_software(&self) -> bool {
        self.adapter_info.device_type == wgpu::DeviceType::Cpu
    }
}

fn device_type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete GPU",
        wgpu::DeviceType::IntegratedGpu => "integrated GPU",
        wgpu::DeviceType::VirtualGpu => "virtual GPU",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    }
}

/// Opens a device: blocking wrapper around [`open_device_async`] (native
/// only; in a browser, await [`open_device_async`]).
#[cfg(not(target_arch = "wasm32"))]
pub fn open_device() -> Result<GpuContext> {
    pollster::block_on(open_device_async())
}

/// Which wgpu features the device that wgsample opens asks for. The
/// sampler itself needs none; an engine that shares the device with
/// wgsample (its model's kernels on the same `wgpu::Device`) may need some.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceFeatures {
    /// No optional features (what [`open_device`] asks for).
    #[default]
    None,
    /// Every feature the chosen adapter offers (for an engine, such as
    /// burn's wgpu backend, whose kernels use whatever the adapter has).
    AdapterAll,
    /// Exactly these; an adapter that lacks any of them is an
    /// [`Error::InvalidArgument`] naming the missing ones.
    Exactly(wgpu::Features),
}

/// [`open_device_async`] with the features an engine needs: blocking form
/// (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn open_device_with(features: DeviceFeatures) -> Result<GpuContext> {
    pollster::block_on(open_device_with_async(features))
}

/// Opens a device on the best adapter wgpu can find.
///
/// Adapter choice: the backends in `WGPU_BACKEND` (comma list, e.g.
/// `vulkan`); without it Vulkan, Metal and DX12, and GL only when those
/// give no usable adapter. If `WGPU_ADAPTER_NAME` is set, an adapter whose
/// name contains it (case-insensitive), else an error. Otherwise a discrete
/// GPU, then integrated, virtual, other, and a software (CPU) adapter last
/// (`WGPU_POWER_PREF=low` puts integrated first). Only adapters that can
/// run 256-invocation compute workgroups count. If enumeration finds
/// nothing, wgpu's fallback adapter is requested. The device gets the
/// adapter's own limits, so buffers as large as the adapter allows work.
///
/// Errors: [`Error::NoAdapter`] (with [`INSTALL_HINT`]) when there is no
/// usable adapter, [`Error::Gpu`] when the device request fails.
pub async fn open_device_async() -> Result<GpuContext> {
    open_device_with_async(DeviceFeatures::None).await
}

/// Opens a device like [`open_device_async`] (same adapter choice, the
/// adapter's own limits) with the optional features `features` names, so
/// that an engine can run its own kernels on the device wgsample opened.
///
/// Errors: as [`open_device_async`], and [`Error::InvalidArgument`] when
/// [`DeviceFeatures::Exactly`] names features the adapter lacks.
pub async fn open_device_with_async(features: DeviceFeatures) -> Result<GpuContext> {
    let adapter = choose_adapter().await?;

    let adapter_info = adapter.get_info();
    let required_features = match features {
        DeviceFeatures::None => wgpu::Features::empty(),
        DeviceFeatures::AdapterAll => adapter.features(),
        DeviceFeatures::Exactly(f) => {
            let missing = f - adapter.features();
            if !missing.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "the adapter {} lacks the requested features {missing:?}",
                    adapter_line(&adapter_info)
                )));
            }
            f
        }
    };
    let (device, queue) = adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("wgsample"),
            required_features,
            required_limits: adapter.limits(),
            ..Default::default()
        })
        .await
        .map_err(|e| {
            Error::Gpu(format!(
                "device request on {} failed: {e}",
                adapter_line(&adapter_info)
            ))
        })?;
    // Errors outside the crate's scopes (an engine's own calls on this
    // device) are reported, never a panic: on stderr natively, through the
    // `log` facade in a browser (where stderr goes nowhere; route it to the
    // console with e.g. `console_log`).
    device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
        #[cfg(not(target_arch = "wasm32"))]
        eprintln!("wgsample: wgpu error outside any error scope: {e}");
        #[cfg(target_arch = "wasm32")]
        log::error!("wgsample: wgpu error outside any error scope: {e}");
    }));
    Ok(GpuContext {
        device,
        queue,
        adapter_info,
    })
}

/// Environment variable set in the process that
/// [`rerun_with_runtime_dir`] starts, so that it never starts another.
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) const RERUN_MARKER: &str = "WGSAMPLE_RUNTIME_DIR_RERUN";

/// For programs (the `wgsample` CLI, the examples), called at the start of
/// `main` before any GPU work: when `XDG_RUNTIME_DIR` is unset (or not an
/// absolute path), runs this same program again as a child process with
/// `XDG_RUNTIME_DIR` set to a fresh private directory (mode 0700, under the
/// system temp dir, removed when the child ends), waits for it and returns
/// `Some(its exit code)` (128 + the signal number if a signal ended it);
/// the caller exits with that code. Returns `None` when nothing is needed
/// (the variable is set, or this process is already the child, marked by
/// the `WGSAMPLE_RUNTIME_DIR_RERUN` environment variable), on non-Unix systems, or when the child cannot be
/// started (the caller then simply goes on).
///
/// Why: Mesa's Vulkan device-selection layer connects to the Wayland
/// display while wgpu enumerates adapters, and libwayland prints
/// `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` on
/// stderr when the variable is unset (as in containers, CI and `sudo`),
/// a line that looks like this program's own error. Setting the variable
/// for this process would need `std::env::set_var`, which is `unsafe` (the
/// crate uses no `unsafe`), and the layer reads it during instance
/// creation, so it must be in the environment the process starts with.
/// The child inherits stdin, stdout and stderr, and gets the same
/// arguments.
pub fn rerun_with_runtime_dir() -> Option<i32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        use std::os::unix::process::ExitStatusExt as _;
        let usable = std::env::var_os("XDG_RUNTIME_DIR")
            .is_some_and(|d| std::path::Path::new(&d).is_absolute());
        if usable || std::env::var_os(RERUN_MARKER).is_some() {
            return None;
        }
        let exe = std::env::current_exe().ok()?;
        let base = std::env::temp_dir();
        let pid = std::process::id();
        let dir = (0..16).find_map(|n| {
            let d = base.join(format!("wgsample-runtime-{pid}-{n}"));
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&d)
                .ok()
                .map(|()| d)
        })?;
        let status = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("XDG_RUNTIME_DIR", &dir)
            .env(RERUN_MARKER, "1")
            .status();
        let _ = std::fs::remove_dir_all(&dir);
        let status = status.ok()?;
        Some(
            status
                .code()
                .or_else(|| status.signal().map(|s| 128 + s))
                .unwrap_or(1),
        )
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The adapter selection of [`open_device_async`].
async fn choose_adapter() -> Result<wgpu::Adapter> {
    // Without WGPU_BACKEND, the first-tier backends (Vulkan, Metal, DX12)
    // are tried before GL: initialising GL probes EGL, X11 and Wayland,
    // which is slow and noisy on a headless machine, and it is only needed
    // where nothing better exists.
    let tiers = match wgpu::Backends::from_env() {
        Some(b) if b.is_empty() => {
            return Err(Error::NoAdapter(format!(
                "WGPU_BACKEND={:?} names no known backend (use e.g. `vulkan`, `metal`, `dx12`, `gl`)",
                std::env::var("WGPU_BACKEND").unwrap_or_default()
            )));
        }
        Some(b) => vec![b],
        None => vec![wgpu::Backends::PRIMARY, wgpu::Backends::SECONDARY],
    };
    let name_filter = std::env::var("WGPU_ADAPTER_NAME")
        .ok()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty());
    let low_power = matches!(
        wgpu::PowerPreference::from_env(),
        Some(wgpu::PowerPreference::LowPower)
    );

    let mut seen: Vec<String> = Vec::new();
    let mut instances = Vec::new();
    for backends in tiers {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let all = instance.enumerate_adapters(backends).await;
        seen.extend(all.iter().map(|a| adapter_line(&a.get_info())));
        let mut usable: Vec<wgpu::Adapter> = all
            .into_iter()
            .filter(can_run_compute)
            .filter(|a| {
                name_filter
                    .as_ref()
                    .is_none_or(|n| a.get_info().name.to_lowercase().contains(n))
            })
            .collect();
        usable.sort_by_key(|a| rank(&a.get_info(), low_power));
        if let Some(a) = usable.into_iter().next() {
            return Ok(a);
        }
        instances.push(instance);
    }
    if let Some(name) = name_filter {
        return Err(Error::NoAdapter(format!(
            "WGPU_ADAPTER_NAME={name:?} matches no usable adapter; found: [{}]",
            seen.join("; ")
        )));
    }
    // Enumeration found nothing usable: ask for wgpu's fallback adapter.
    for instance in &instances {
        let fallback = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                force_fallback_adapter: true,
                ..Default::default()
            })
            .await;
        if let Ok(a) = fallback
            && can_run_compute(&a)
        {
            return Ok(a);
        }
    }
    let found = if seen.is_empty() {
        "wgpu found no adapter".to_string()
    } else {
        format!(
            "no adapter can run compute shaders; found: [{}]",
            seen.join("; ")
        )
    };
    Err(Error::NoAdapter(format!("{found}; {INSTALL_HINT}")))
}

fn adapter_line(info: &wgpu::AdapterInfo) -> String {
    format!(
        "{} ({}, {})",
        info.name,
        info.backend.to_str(),
        device_type_name(info.device_type)
    )
}

/// Whether an adapter can run this crate's kernels at all.
fn can_run_compute(a: &wgpu::Adapter) -> bool {
    let caps = a.get_downlevel_capabilities();
    let limits = a.limits();
    caps.flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        && limits.max_compute_invocations_per_workgroup >= 256
        && limits.max_compute_workgroup_size_x >= 256
        && limits.max_compute_workgroup_storage_size >= 16 * 1024
        && limits.max_storage_buffers_per_shader_stage >= 4
}

/// Sort key: lower is better.
fn rank(info: &wgpu::AdapterInfo, low_power: bool) -> (u8, u8) {
    let t = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => u8::from(low_power),
        wgpu::DeviceType::IntegratedGpu => u8::from(!low_power),
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let b = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        wgpu::Backend::Gl | wgpu::Backend::BrowserWebGpu => 1,
        wgpu::Backend::Noop => 2,
    };
    (t, b)
}

/// Runs `f` inside validation, out-of-memory and internal error scopes on
/// `device`; a wgpu error raised meanwhile becomes [`Error::Wgpu`] (naming
/// `what`) and takes precedence over `f`'s own result.
///
/// Native only: it waits for the scopes with `pollster`, which is instant
/// on native backends (their scopes resolve at once). On wasm32 it runs
/// `f` without scopes of its own, since waiting for a browser's promise
/// would block forever; every `_async` entry point wraps its whole body in
/// [`scoped_async`], which catches the same errors there.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn scoped<T>(
    device: &wgpu::Device,
    what: &str,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    pollster::block_on(scoped_async(device, what, f))
}

/// See the native [`scoped`]: on wasm32 the enclosing [`scoped_async`]
/// catches the errors.
#[cfg(target_arch = "wasm32")]
pub(crate) fn scoped<T>(
    _device: &wgpu::Device,
    _what: &str,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    f()
}

/// The async form of [`scoped`]: pushes the three error scopes, runs `f`,
/// then awaits the scopes (a promise in a browser, ready at once on
/// native backends). A wgpu error becomes [`Error::Wgpu`] naming `what`.
pub(crate) async fn scoped_async<T>(
    device: &wgpu::Device,
    what: &str,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let result = f();
    let errors = [
        validation.pop().await,
        internal.pop().await,
        oom.pop().await,
    ];
    match errors.into_iter().flatten().next() {
        Some(source) => Err(Error::Wgpu {
            context: what.to_string(),
            source,
        }),
        None => result,
    }
}
