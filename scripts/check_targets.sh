#!/usr/bin/env bash
# Compile checks of the library for the wgpu targets this machine cannot
# run (part of the README's test command, scripts/test.sh):
#   aarch64-apple-darwin     Metal
#   x86_64-pc-windows-msvc   DX12 (and Vulkan / GL on Windows)
#   wasm32-unknown-unknown   WebGPU in a browser (run for real by
#                            scripts/test_browser.sh)
# `cargo check` needs no SDK or linker for these; it proves the host code
# and its cfg-gated paths (no blocking calls on wasm32) compile there.
# For Metal and DX12 it also checks examples/hal_buffers.rs, whose
# cfg-gated paths wrap an MTLBuffer / an ID3D12Resource with
# create_buffer_from_hal. An example builds every dev-dependency, and the
# benches' criterion pulls in `alloca`, which compiles C for the target
# (no cross C compiler or SDK here); `--cfg wgsample_target_check` leaves
# criterion out (Cargo.toml), for both checks of those targets so that they
# share one build.
# Adds the rustup targets when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(aarch64-apple-darwin x86_64-pc-windows-msvc wasm32-unknown-unknown)
installed=$(rustup target list --installed)
for t in "${targets[@]}"; do
    if ! grep -qx "$t" <<<"$installed"; then
        echo "check_targets: adding the rustup target $t"
        rustup target add "$t"
    fi
done
check() {
    local start
    start=$(date +%s)
    cargo check --quiet -p wgsample "$@"
    echo "check_targets: cargo check -p wgsample $* passed ($(( $(date +%s) - start )) s)"
}
for t in "${targets[@]}"; do
    case "$t" in
    aarch64-apple-darwin | x86_64-pc-windows-msvc)
        (
            export RUSTFLAGS="${RUSTFLAGS:-} --cfg wgsample_target_check"
            check --lib --target "$t"
            check --example hal_buffers --target "$t"
        )
        ;;
    *) check --lib --target "$t" ;;
    esac
done
