#!/usr/bin/env bash
# CI check: every compute shader wgsample dispatches must pass a browser's
# WebGPU validation (Dawn's Tint via the npm package `webgpu`, null backend,
# WebGPU default limits; no GPU needed). naga / wgpu accept some WGSL that
# browsers reject (barriers in non-uniform control flow, > 16 KiB of
# workgroup memory, > 256 invocations per workgroup, ...).
#
# Usage: scripts/check_shaders.sh    (from anywhere; needs cargo, node >= 18, npm)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d scripts/node_modules/webgpu ]; then
    npm ci --prefix scripts --no-audit --no-fund
fi

rm -rf target/shaders
cargo run --quiet --example dump_shaders -- target/shaders

node scripts/check_shaders.mjs --self-test
node scripts/check_shaders.mjs target/shaders
