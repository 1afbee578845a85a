#!/usr/bin/env bash
# Installs Mesa's software Vulkan driver (lavapipe) with apt-get, only when
# no Vulkan loader or driver is present. Shared by scripts/test.sh and .ci/run.
set -euo pipefail

# No `grep -q` or `ls | grep` here: under pipefail, grep -q exiting at the
# first match kills ldconfig with SIGPIPE, and ls fails for the icd.d
# folders that do not exist, so the check failed and the driver was
# reinstalled on every run.
have_vulkan() {
    ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null || return 1
    local f
    for f in /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json \
        /usr/local/share/vulkan/icd.d/*.json; do
        if [ -e "$f" ]; then return 0; fi
    done
    return 1
}

if ! have_vulkan; then
    echo "ensure_vulkan.sh: no Vulkan driver found; installing mesa-vulkan-drivers libvulkan1" >&2
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
