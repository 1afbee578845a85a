#!/usr/bin/env bash
# Installs Mesa's software Vulkan driver (lavapipe) with apt-get, only when
# no Vulkan loader or driver is present. Shared by scripts/test.sh and .ci/run.
set -euo pipefail

have_vulkan() {
    ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' || return 1
    ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json \
        /usr/local/share/vulkan/icd.d/*.json 2>/dev/null | grep -q . || return 1
}

if ! have_vulkan; then
    echo "ensure_vulkan.sh: no Vulkan driver found; installing mesa-vulkan-drivers libvulkan1" >&2
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
