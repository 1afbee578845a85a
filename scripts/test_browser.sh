#!/usr/bin/env bash
# The browser check: wgsample's GPU sampler on WebGPU, compared token for
# token with its CPU sampler compiled into the same wasm module (the
# `wgsample-browser` workspace member, browser/). Runs the module twice:
#
#   - in headless Chromium (browser/www/check.html, served on 127.0.0.1;
#     console lines read from Chromium's stderr), and
#   - in node with Dawn, the npm package `webgpu` (scripts/browser/run_dawn.mjs).
#
# Prints `browser: N/N configurations agree (chromium)` and the same for
# `(dawn)`, and exits non-zero, loudly, when a tool is missing, a run times
# out or crashes, or any configuration disagrees.
#
# Usage: scripts/test_browser.sh [--corrupt] [--only chromium|dawn] [--build-only]
#   --corrupt     flip one expected token: both runs must then FAIL (shows
#                 that the harness can fail; the script exits 1)
#   --only R      run only runtime R
#   --build-only  build the page into $OUT_DIR and stop (scripts/serve_web.sh)
#
# Environment: CARGO_TARGET_DIR (default target/browser: a target directory
# of its own, so this build neither waits for nor blocks the native builds'
# lock on target/), WGSAMPLE_BROWSER_TIMEOUT (seconds per runtime, default
# 300), CHROMIUM (default chromium), VK_ICD_FILENAMES (Dawn's Vulkan driver;
# default SwiftShader's, shipped with Chromium: Dawn refuses Debian 12's
# lavapipe).
#
# What it installs when missing: the wasm32-unknown-unknown target (rustup),
# wasm-bindgen-cli at the exact wasm-bindgen version of Cargo.lock (cargo
# install, about 7 min), chromium (apt-get, only if there is no chromium at
# all), the npm packages of scripts/package.json (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CORRUPT=0
ONLY=""
BUILD_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --corrupt) CORRUPT=1 ;;
        --only) ONLY="${2:?--only needs chromium or dawn}"; shift ;;
        --build-only) BUILD_ONLY=1 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "test_browser.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
case "$ONLY" in ""|chromium|dawn) ;; *) echo "--only takes chromium or dawn" >&2; exit 2 ;; esac

TIMEOUT=${WGSAMPLE_BROWSER_TIMEOUT:-300}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/browser}
OUT_DIR=$CARGO_TARGET_DIR/www
CHROMIUM=${CHROMIUM:-chromium}
SWIFTSHADER_ICD=/usr/lib/chromium/vk_swiftshader_icd.json

die() {
    echo >&2
    echo "test_browser.sh: FAILED: $*" >&2
    echo >&2
    exit 1
}

T_START=$EPOCHREALTIME
T_PHASE=$T_START
phase() { # phase NAME: prints the seconds since the previous phase mark
    local now=$EPOCHREALTIME
    awk -v n="$1" -v a="$now" -v b="$T_PHASE" 'BEGIN { printf "time: %-22s %6.1f s\n", n, a - b }'
    T_PHASE=$now
}

# Private temp space, cleaned (with every process started here) on exit.
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] || continue
        # Each child was started with setsid: end its whole process group
        # (Chromium's renderer and GPU processes included).
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 0.2
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill -KILL -- "-$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Mesa / the Vulkan loader print "XDG_RUNTIME_DIR is invalid" without it.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "${XDG_RUNTIME_DIR}" ]; then
    export XDG_RUNTIME_DIR=$WORK/xdg
    mkdir -m 700 "$XDG_RUNTIME_DIR"
fi

# ------------------------------------------------------------ prerequisites
command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    echo "installing the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown || die "rustup target add wasm32-unknown-unknown"
fi

WB_VERSION=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[ -n "$WB_VERSION" ] || die "no wasm-bindgen in Cargo.lock (run cargo generate-lockfile?)"
HAVE_WB=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$HAVE_WB" != "$WB_VERSION" ]; then
    echo "installing wasm-bindgen-cli $WB_VERSION (found: ${HAVE_WB:-none}); about 7 min"
    # Not --locked: a locked dependency of the CLI was missing from the
    # registry when this was written.
    cargo install wasm-bindgen-cli --version "$WB_VERSION" \
        || die "cargo install wasm-bindgen-cli --version $WB_VERSION"
    HAVE_WB=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
    [ "$HAVE_WB" = "$WB_VERSION" ] \
        || die "wasm-bindgen on PATH is ${HAVE_WB:-missing}, Cargo.lock needs $WB_VERSION (is ~/.cargo/bin on PATH?)"
fi

if [ "$BUILD_ONLY" = 0 ] && [ "$ONLY" != dawn ] && ! command -v "$CHROMIUM" >/dev/null; then
    if [ "$CHROMIUM" = chromium ] && [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
        echo "installing chromium (apt-get)"
        SUDO=""
        [ "$(id -u)" = 0 ] || SUDO=sudo
        $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium \
            || die "apt-get install chromium"
    fi
    command -v "$CHROMIUM" >/dev/null \
        || die "no Chromium ($CHROMIUM); install it or set CHROMIUM=/path/to/chrome"
fi

if [ "$BUILD_ONLY" = 0 ] && [ "$ONLY" != chromium ]; then
    command -v node >/dev/null || die "node is not installed (node >= 18 is needed for the Dawn run)"
    if [ ! -d scripts/node_modules/webgpu ]; then
        echo "installing the npm packages of scripts/package.json"
        npm ci --prefix scripts --no-audit --no-fund || die "npm ci --prefix scripts"
    fi
fi
phase "prerequisites"

# ------------------------------------------------------------ build
cargo build -p wgsample-browser --target wasm32-unknown-unknown --release \
    || die "cargo build -p wgsample-browser --target wasm32-unknown-unknown --release"
phase "cargo build (release)"

WASM=$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/wgsample_browser.wasm
rm -rf "$OUT_DIR"
mkdir -p "$OUT_DIR"
wasm-bindgen --target web --no-typescript --out-dir "$OUT_DIR/pkg" "$WASM" \
    || die "wasm-bindgen --target web $WASM"
cp browser/www/* "$OUT_DIR/"
phase "wasm-bindgen"
echo "built $OUT_DIR ($(du -k "$OUT_DIR/pkg/wgsample_browser_bg.wasm" | cut -f1) KiB of wasm)"

if [ "$BUILD_ONLY" = 1 ]; then
    exit 0
fi

# ------------------------------------------------------------ runs
# Each run leaves its console lines (prefix `wgsample-browser: ` stripped)
# in $WORK/RUNTIME.lines; `END pass|fail|error` is the last.
RESULTS=()
FAILED=0

# report RUNTIME: prints the run's lines and its summary line, records failure.
report() {
    local rt=$1 lines=$WORK/$1.lines
    sed 's/^/  /' "$lines"
    local adapter summary end
    adapter=$(grep -m1 '^adapter (js): ' "$lines" | sed 's/^adapter (js): //' || true)
    summary=$(grep -m1 '^summary: ' "$lines" | sed -E 's/^summary: ([0-9]+\/[0-9]+) .*/\1/' || true)
    end=$(grep -m1 '^END ' "$lines" | sed 's/^END //' || true)
    echo "$rt adapter: ${adapter:-unknown}"
    if [ -n "$summary" ]; then
        RESULTS+=("browser: $summary configurations agree ($rt)")
    else
        RESULTS+=("browser: no result ($rt)")
    fi
    if [ "$end" != pass ]; then
        FAILED=1
        echo "$rt: FAILED (${end:-no END line: timed out or crashed})" >&2
        grep '^FAIL ' "$lines" | sed "s/^/$rt: /" >&2 || true
    fi
}

run_chromium() {
    local port url log=$WORK/chromium.stderr lines=$WORK/chromium.lines
    : >"$lines"
    : >"$log"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    setsid python3 -m http.server "$port" --bind 127.0.0.1 --directory "$OUT_DIR" \
        >"$WORK/http.log" 2>&1 &
    PIDS+=($!)
    local i
    for i in $(seq 1 50); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/check.html" && break
        sleep 0.1
    done
    url="http://127.0.0.1:$port/check.html"
    [ "$CORRUPT" = 1 ] && url="$url?corrupt=1"
    echo "chromium: $url"
    setsid "$CHROMIUM" --headless=new --no-sandbox --enable-unsafe-webgpu \
        --user-data-dir="$WORK/chromium-profile" --enable-logging=stderr --v=0 \
        --no-first-run --disable-extensions "$url" >"$WORK/chromium.stdout" 2>"$log" &
    local cpid=$!
    PIDS+=($cpid)
    local deadline=$((SECONDS + TIMEOUT))
    while :; do
        # Console lines: [...:INFO:CONSOLE...] "TEXT", source: URL (LINE)
        sed -n 's/^.*:CONSOLE[^]]*\] "wgsample-browser: \(.*\)", source: .*$/\1/p' "$log" >"$lines" || true
        grep -q '^END ' "$lines" && break
        if ! kill -0 "$cpid" 2>/dev/null; then
            echo "chromium exited before the page finished; last lines of its stderr:" >&2
            grep -v "dbus\|CONSOLE" "$log" | tail -20 >&2 || true
            break
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "chromium: timed out after ${TIMEOUT} s; last lines of its stderr:" >&2
            grep -v "dbus\|CONSOLE" "$log" | tail -20 >&2 || true
            break
        fi
        sleep 0.5
    done
    kill -TERM -- "-$cpid" 2>/dev/null || true
    report chromium
}

run_dawn() {
    local lines=$WORK/dawn.lines
    local icd=${VK_ICD_FILENAMES:-}
    if [ -z "$icd" ]; then
        [ -f "$SWIFTSHADER_ICD" ] || die "no $SWIFTSHADER_ICD (install chromium, or set VK_ICD_FILENAMES to a Vulkan ICD Dawn accepts)"
        icd=$SWIFTSHADER_ICD
    fi
    echo "dawn: node scripts/browser/run_dawn.mjs (VK_ICD_FILENAMES=$icd)"
    local args=("$OUT_DIR/pkg")
    [ "$CORRUPT" = 1 ] && args+=(--corrupt)
    set +e
    VK_ICD_FILENAMES=$icd timeout --kill-after=10 "$TIMEOUT" \
        node scripts/browser/run_dawn.mjs "${args[@]}" >"$WORK/dawn.out" 2>"$WORK/dawn.err"
    local rc=$?
    set -e
    sed -n 's/^wgsample-browser: //p' "$WORK/dawn.out" >"$lines"
    if [ $rc = 124 ] || [ $rc = 137 ]; then
        echo "dawn: timed out after ${TIMEOUT} s" >&2
    fi
    if ! grep -q '^END pass' "$lines"; then
        echo "dawn: exit code $rc; stderr:" >&2
        grep -v 'XDG_RUNTIME_DIR' "$WORK/dawn.err" | tail -20 >&2 || true
    fi
    report dawn
}

if [ "$ONLY" != dawn ]; then
    run_chromium
    phase "chromium run"
fi
if [ "$ONLY" != chromium ]; then
    run_dawn
    phase "dawn run"
fi

T_PHASE=$T_START
phase "total"
echo
for r in "${RESULTS[@]}"; do
    echo "$r"
done
if [ "$FAILED" != 0 ]; then
    if [ "$CORRUPT" = 1 ]; then
        die "configurations disagree (expected: --corrupt flips one token)"
    fi
    die "the GPU sampler disagrees with the CPU sampler, or a run did not finish (see above)"
fi
