#!/usr/bin/env node
// Runs the browser check (the wasm module's run_checks) in node with Dawn,
// the WebGPU implementation of the npm package `webgpu` (scripts/package.json).
//
//   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json \
//     node scripts/browser/run_dawn.mjs PKG_DIR [--corrupt]
//
// PKG_DIR holds wasm-bindgen's `--target web` output (wgsample_browser.js and
// wgsample_browser_bg.wasm). Output lines are those of the Chromium page:
// `wgsample-browser: ...`, ending with `wgsample-browser: END pass|fail|error`.
// Exits 0 only on `pass`.
//
// A `--target web` module expects a browser: wgpu finds `navigator.gpu`
// through a global `Window` constructor, so both are defined here, and the
// module is instantiated synchronously from the bytes (no fetch).

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { create, globals } from 'webgpu';

const args = process.argv.slice(2);
const pkg = args.find((a) => !a.startsWith('--'));
const corrupt = args.includes('--corrupt');
if (!pkg) {
  console.error('usage: node scripts/browser/run_dawn.mjs PKG_DIR [--corrupt]');
  process.exit(2);
}

const say = (line) => console.log(`wgsample-browser: ${line}`);

// Dawn's GPU object must outlive every device made from it (if it is
// collected, Dawn's threads crash): keep it in a module-level binding.
let gpu = null;

async function main() {
  Object.assign(globalThis, globals);
  globalThis.Window ??= function Window() {};
  gpu = create([]);
  Object.defineProperty(globalThis, 'navigator', {
    value: { gpu, userAgent: `node ${process.version}` },
    configurable: true,
    writable: true,
  });
  say(`runtime: node ${process.version}, Dawn (npm webgpu)`);
  const a = await gpu.requestAdapter();
  if (!a) throw new Error('Dawn gave no adapter (is VK_ICD_FILENAMES set to a Vulkan ICD?)');
  const i = a.info ?? {};
  say(`adapter (js): vendor=${i.vendor || '?'} architecture=${i.architecture || '?'} ` +
    `device=${i.device || '?'} description=${i.description || '?'} ` +
    `fallback=${a.isFallbackAdapter ?? i.isFallbackAdapter ?? '?'}`);

  const t0 = performance.now();
  const mod = await import(pathToFileURL(resolve(pkg, 'wgsample_browser.js')).href);
  mod.initSync({ module: readFileSync(join(pkg, 'wgsample_browser_bg.wasm')) });
  say(`wasm loaded in ${(performance.now() - t0).toFixed(0)} ms`);
  const r = await mod.run_checks(corrupt);
  const [p, t] = r.split('/');
  return p === t;
}

let ok = false;
try {
  ok = await main();
  say(`END ${ok ? 'pass' : 'fail'}`);
} catch (e) {
  say(`error: ${e && e.stack ? e.stack : e}`);
  say('END error');
}
// Dawn keeps the event loop alive; leave explicitly.
process.exit(ok ? 0 : 1);
