#!/usr/bin/env bash
# The GPU benchmark on a lent GPU machine (shared/DEVICE.md), in two halves.
#
#   bash scripts/gpu_bench.sh            # here: build, stage into .gpu/, print the run call
#   bash scripts/gpu_bench.sh remote     # there (what the printed call runs)
#
# Here: fetches the libvulkan1 .deb into .gl/ (the GPU machine has the NVIDIA
# driver's Vulkan ICD but no loader), builds the bench binaries in release
# mode (`cargo bench --no-run --message-format=json` names the executables),
# copies them, stripped, into .gpu/ (ignored by git) with the PyTorch peer,
# and prints the device tool call: command `bash scripts/gpu_bench.sh remote`,
# carry [".gl", ".gpu"].
#
# There (no Rust toolchain, no network, PyTorch installed): unpacks the
# loader, points Vulkan at the NVIDIA ICD, then in one command runs
#   1. benches/matrix.rs  (GPU timestamps + wall time vs CPU 1 thread / all
#      cores, batch {1,8,64,256} x vocab {32000,128256,262144} x 6 strategies),
#   2. peers/benches/peers.rs (candle on the CPU; the engine path: read the
#      logits back and sample on the CPU vs sample on the device, B 1 and 64),
#   3. scripts/torch_peer.py (PyTorch sort-based top-k/top-p + multinomial,
#      CUDA events, same shapes and table format),
# writes every log under $OUT and prints the tables and RATIO lines.
# Knobs (both halves pass them through): WGSAMPLE_BENCH_BATCHES,
# WGSAMPLE_BENCH_VOCABS, WGSAMPLE_BENCH_STRATEGIES, WGSAMPLE_BENCH_WARMUP_MS,
# WGSAMPLE_BENCH_MEASURE_MS.
set -euo pipefail
cd "$(dirname "$0")/.."

remote() {
    OUT="${OUT:-/tmp/wgsample-bench-out}"
    mkdir -p "$OUT"
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    export VK_DRIVER_FILES="${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}"
    export CRITERION_HOME="$OUT/criterion"
    export WGSAMPLE_BENCH_TABLE="$OUT/matrix_table.txt"
    export WGSAMPLE_BENCH_WARMUP_MS="${WGSAMPLE_BENCH_WARMUP_MS:-100}"
    export WGSAMPLE_BENCH_MEASURE_MS="${WGSAMPLE_BENCH_MEASURE_MS:-300}"
    export WGSAMPLE_PEERS_WARMUP_MS="${WGSAMPLE_PEERS_WARMUP_MS:-300}"
    export WGSAMPLE_PEERS_MEASURE_MS="${WGSAMPLE_PEERS_MEASURE_MS:-1000}"
    {
        date -u
        nvidia-smi -L || true
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
        lscpu | grep -E 'Model name|^CPU\(s\)' || true
    } >"$OUT/device.txt" 2>&1
    cat "$OUT/device.txt"
    # 1. our matrix (stderr: criterion's progress)
    timeout 330 .gpu/matrix --bench >"$OUT/matrix.log" 2>"$OUT/matrix.err" || echo "matrix exit $?" | tee -a "$OUT/matrix.log"
    # 2. peers: candle and the engine path
    timeout 90 .gpu/peers --bench >"$OUT/peers.log" 2>"$OUT/peers.err" || echo "peers exit $?" | tee -a "$OUT/peers.log"
    # 3. PyTorch on the same GPU
    timeout 120 python3 .gpu/torch_peer.py >"$OUT/torch.log" 2>"$OUT/torch.err" || echo "torch exit $?" | tee -a "$OUT/torch.log"
    echo "---- matrix (wgsample) ----"
    # the full table, or (run cut short) the rows written so far
    sed -n '/^== wgsample matrix/,/^== end/p' "$OUT/matrix.log" | grep -q . ||
        cat "$OUT/matrix_table.txt" 2>/dev/null || true
    sed -n '/^== wgsample matrix/,/^== end/p' "$OUT/matrix.log"
    tail -n 5 "$OUT/matrix.err"
    echo "---- peers ----"
    sed -n '/^== wgsample peers/,$p' "$OUT/peers.log"
    tail -n 3 "$OUT/peers.err"
    echo "---- torch ----"
    cat "$OUT/torch.log"
    tail -n 5 "$OUT/torch.err"
}

if [ "${1:-}" = remote ]; then
    remote
    exit 0
fi

# ---- here: prepare ----
grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo /.gl/ >>.git/info/exclude
if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
    mkdir -p .gl /tmp/amd64/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    # shellcheck disable=SC2086
    apt-get $o update -qq
    # shellcheck disable=SC2086
    (cd .gl && apt-get $o download libvulkan1)
fi

# Prints the executable of bench target $2 of package $1.
bench_exe() {
    cargo bench -p "$1" --bench "$2" --no-run --message-format=json 2>/dev/null |
        python3 -c '
import json, sys
name = sys.argv[1]
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == name:
        print(m["executable"])
' "$2"
}

echo "gpu_bench: building the bench binaries (release)..." >&2
cargo bench -p wgsample --bench matrix --no-run
cargo bench -p wgsample-peers --bench peers --no-run
matrix=$(bench_exe wgsample matrix)
peers=$(bench_exe wgsample-peers peers)
[ -x "$matrix" ] && [ -x "$peers" ] || { echo "gpu_bench: bench executables not found" >&2; exit 1; }
mkdir -p .gpu
strip -o .gpu/matrix "$matrix"
strip -o .gpu/peers "$peers"
cp scripts/torch_peer.py .gpu/torch_peer.py
du -ch .gl .gpu | tail -n 1 >&2
total=$(du -cb .gl .gpu | tail -n 1 | cut -f1)
if [ "$total" -gt $((64 * 1024 * 1024)) ]; then
    echo "gpu_bench: .gl + .gpu hold $total bytes, over the 64 MiB a run may carry" >&2
    exit 1
fi
cat <<'EOF'
gpu_bench: ready. On a task lent a GPU (device tool `status`: can_start_another true), call:

  run(command: "bash scripts/gpu_bench.sh remote", carry: [".gl", ".gpu"], timeout_s: 560)

which is, spelled out (DEVICE.md):

  for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig;
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json;
  .gpu/matrix --bench > $OUT/matrix.log; .gpu/peers --bench > $OUT/peers.log;
  python3 .gpu/torch_peer.py > $OUT/torch.log

The logs come back under the reply's files_at; give the device back (give_back)
unless you rerun at once. Then plot them with both tables:

  cargo run -p wgsample-peers --release --bin bench_plot -- --out docs/bench_vocab_gpu.svg \
      <files_at>/matrix.log <files_at>/torch.log
EOF
