#!/usr/bin/env bash
# End-to-end engine checks, kept out of the default `cargo test` (their
# dependency trees are large): for now burn 0.22 (integrations/burn,
# package wgsample-burn). Builds and runs `cargo run --release -p
# wgsample-burn`, which decodes with a small burn transformer on a wgpu
# device it shares with wgsample, in both directions, sampling each step
# from the logits tensor's own buffer. Its last line is one JSON object;
# this script checks that `tokens` equals `cpu_tokens` (CpuSampler on the
# same logits read back) and that `logits_bytes_copied` is 0.
# The first (cold) build takes about 15 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f scripts/ensure_vulkan.sh ]; then
    bash scripts/ensure_vulkan.sh
fi
cargo build --release -p wgsample-burn
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
status=0
cargo run --release -q -p wgsample-burn | tee "$out" || status=$?
tail -n 1 "$out" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
assert r["steps"] > 0, "no decode steps"
assert r["tokens"] == r["cpu_tokens"], "GPU and CPU tokens differ"
assert len(r["tokens"]) > 0, "no tokens"
assert r["logits_bytes_copied"] == 0, "logits were copied"
print("test_engines.sh: burn: %d steps, %d tokens, GPU == CPU, 0 logits bytes copied"
      % (r["steps"], len(r["tokens"])))
'
if [ "$status" != 0 ]; then
    echo "test_engines.sh: wgsample-burn exited with $status" >&2
    exit "$status"
fi
