#!/usr/bin/env bash
# The project's test command (README: "The two commands"):
# 1. makes sure a Vulkan driver is present (scripts/ensure_vulkan.sh: the GPU
#    tests run for real on lavapipe when the machine has no GPU; they never
#    skip);
# 2. runs the whole test suite: `cargo test`;
# 3. compiles every shader the crate dispatches with Dawn, a browser's WebGPU
#    implementation (scripts/check_shaders.sh), which enforces the rules
#    naga/wgpu let through: uniform control flow for barriers, 16 KiB of
#    workgroup memory, 256 invocations;
# 4. compile-checks the library for Metal (aarch64-apple-darwin), DX12
#    (x86_64-pc-windows-msvc) and the browser (wasm32-unknown-unknown):
#    scripts/check_targets.sh;
# 5. runs the GPU sampler in a browser: the wasm32 build of browser/ on
#    WebGPU in headless Chromium and in node + Dawn, every token compared
#    with the CPU backend in the same module (scripts/test_browser.sh;
#    installs chromium and wasm-bindgen-cli when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_vulkan.sh
cargo test "$@"
bash scripts/check_shaders.sh
bash scripts/check_targets.sh
bash scripts/test_browser.sh
