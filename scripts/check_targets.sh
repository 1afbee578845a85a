#!/usr/bin/env bash
# Compile checks of the library for the wgpu targets this machine cannot
# run (part of the README's test command, scripts/test.sh):
#   aarch64-apple-darwin     Metal
#   x86_64-pc-windows-msvc   DX12 (and Vulkan / GL on Windows)
#   wasm32-unknown-unknown   WebGPU in a browser (run for real by
#                            scripts/test_browser.sh)
# `cargo check` needs no SDK or linker for these; it proves the host code
# and its cfg-gated paths (no blocking calls on wasm32) compile there.
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
for t in "${targets[@]}"; do
    start=$(date +%s)
    cargo check --quiet -p wgsample --lib --target "$t"
    echo "check_targets: cargo check -p wgsample --lib --target $t passed ($(( $(date +%s) - start )) s)"
done
