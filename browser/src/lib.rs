//! wgsample in a browser: the crate's GPU sampler on the runtime's WebGPU
//! implementation, checked token for token against its CPU sampler
//! compiled into the same wasm module, plus the web page example.
//!
//! # Why it is shaped this way
//!
//! - **One module, both backends.** The reference is [`CpuSampler`]
//!   running *in the same wasm module* as [`GpuSampler`]: same inputs,
//!   same build of the contract, no expected values shipped from a native
//!   run. A disagreement can only come from the GPU path on this runtime
//!   (its WGSL compiler, its limits, its async mapping), which is exactly
//!   what a browser check is for.
//! - **The logic is plain async Rust** ([`checks`], [`demo`], [`data`]),
//!   with nothing browser-specific in it, so it also compiles and runs
//!   natively (`tests/native.rs`, on whatever adapter wgpu finds). Only the thin `web` module (wasm32 only)
//!   knows about `wasm-bindgen`: it opens the device with
//!   `open_device_async`, writes each result line to `console.log`, and
//!   exports its functions to JavaScript. Every GPU call goes
//!   through the library's `_async` entry points: in a browser nothing may
//!   block (a blocked future never sees its `mapAsync` resolve).
//! - **Two runtimes, one artefact.** `scripts/test_browser.sh` builds the
//!   module once (`wasm-bindgen --target web`) and runs
//!   `web::run_checks` in headless Chromium (`www/check.html`, console
//!   lines read from Chromium's stderr) and in node with Dawn
//!   (`scripts/browser/run_dawn.mjs`). Both are SwiftShader on a machine
//!   without a GPU; the adapter line of each run says what ran.
//! - **The harness can fail.** `run_checks(true)` flips one expected
//!   token; the script's `--corrupt` shows that the failure is named and
//!   the script exits non-zero.
//! - **No `rand`.** Its `getrandom` needs a JS backend feature on wasm32;
//!   [`data`] is a small SplitMix64 stream, identical on every platform.
//!
//! The web page example (`www/index.html`, `www/demo.js`) loads the same
//! module and calls `web::demo_open`, `web::demo_strategies` and
//! `web::demo_run`; `scripts/serve_web.sh` builds and serves it.
//!
//! [`CpuSampler`]: wgsample::CpuSampler
//! [`GpuSampler`]: wgsample::gpu::GpuSampler

pub mod checks;
pub mod data;
pub mod demo;
#[cfg(target_arch = "wasm32")]
pub mod web;

/// Milliseconds since some fixed point: `performance.now()` on wasm32
/// (browsers and node), `Instant` natively.
#[cfg(target_arch = "wasm32")]
pub fn now_ms() -> f64 {
    web::performance_now()
}

/// Milliseconds since some fixed point: `performance.now()` on wasm32
/// (browsers and node), `Instant` natively.
#[cfg(not(target_arch = "wasm32"))]
pub fn now_ms() -> f64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static T0: OnceLock<Instant> = OnceLock::new();
    T0.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e3
}
