#!/usr/bin/env bash
# Builds the wgsample web page example (browser/www: the wgsample-browser
# crate compiled to wasm32, wasm-bindgen --target web) and serves it on
# http://127.0.0.1:PORT/ (default 8000). Open it in a browser with WebGPU
# (Chrome or Edge 113+, Safari 26, Firefox 141+ on Windows). The same
# directory holds check.html, the agreement check of scripts/test_browser.sh.
#
# Usage: scripts/serve_web.sh [PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${1:-8000}
bash scripts/test_browser.sh --build-only
DIR=${CARGO_TARGET_DIR:-$PWD/target/browser}/www
echo "serving $DIR on http://127.0.0.1:$PORT/ (Ctrl-C stops)"
exec python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$DIR"
