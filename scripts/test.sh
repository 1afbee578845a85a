#!/usr/bin/env bash
# The project's test command (README: "The two commands").
# 1. Makes sure a Vulkan driver is present: the GPU tests run for real on
#    the Mesa software driver (lavapipe) when the machine has no GPU; they
#    never skip. The driver is installed with apt-get only when missing.
# 2. Runs the whole test suite (`cargo test`).
# 3. Compiles every shader the crate dispatches with Dawn, a browser's
#    WebGPU implementation (npm package `webgpu`), which enforces the rules
#    naga/wgpu let through: uniform control flow for barriers, 16 KiB of
#    workgroup memory, 256 invocations (scripts/check_shaders.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

have_vulkan() {
    ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' || return 1
    ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json \
        /usr/local/share/vulkan/icd.d/*.json 2>/dev/null | grep -q . || return 1
}

if ! have_vulkan; then
    echo "test.sh: no Vulkan driver found; installing mesa-vulkan-drivers libvulkan1" >&2
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

cargo test "$@"
bash scripts/check_shaders.sh
