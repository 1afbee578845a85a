#!/usr/bin/env node
// Validates every compute shader wgsample dispatches against a browser's
// WebGPU rules, with Dawn's Tint compiler (npm package `webgpu`, null
// backend: no GPU needed, WebGPU's default limits).
//
//   node scripts/check_shaders.mjs DIR        check DIR/list.tsv (written by
//                                             `cargo run --example dump_shaders -- DIR`)
//   node scripts/check_shaders.mjs --self-test  feed deliberately bad shaders;
//                                             exits 0 only if each is rejected
//
// For each shader: createShaderModule + getCompilationInfo (errors and
// warnings, with line numbers), then createComputePipelineAsync with
// layout 'auto', all inside a 'validation' error scope. Prints `ok  NAME` or
// `FAIL NAME: message` per shader; exits 1 if any failed.
//
// naga (wgpu 30) accepts some WGSL that Tint / WebGPU reject: barriers in
// non-uniform control flow, more than maxComputeWorkgroupStorageSize bytes
// of workgroup memory, more than maxComputeInvocationsPerWorkgroup
// invocations, etc. This is what catches them.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create, globals } from 'webgpu';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = dirname(HERE);
const SHADER_ROOT = join(REPO, 'shaders');

// ---------------------------------------------------------------- device

// dawn.node's GPU instance must outlive every object made from it: if it is
// garbage-collected while the device is in use, Dawn's threads crash
// (segfaults, futex / mutex aborts). Keep it in a module-level binding.
let gpu = null;

async function makeDevice() {
  Object.assign(globalThis, globals);
  gpu = create(['backend=null']);
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('no WebGPU adapter from Dawn (backend=null)');
  // No requiredLimits: the device gets WebGPU's default limits, which is
  // what a page may count on in any browser.
  const device = await adapter.requestDevice();
  const uncaptured = [];
  device.addEventListener('uncapturederror', (e) => uncaptured.push(e.error.message));
  device.lost.then((info) => {
    if (info.reason !== 'destroyed') {
      console.error(`device lost: ${info.reason}: ${info.message}`);
    }
  });
  return { adapter, device, uncaptured };
}

const LIMITS = [
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxUniformBuffersPerShaderStage',
  'maxBindingsPerBindGroup',
  'maxDynamicUniformBuffersPerPipelineLayout',
];

function printLimits(adapter, device) {
  const info = adapter.info ?? {};
  const what = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ');
  console.log(`Dawn/Tint via npm webgpu, backend=null${what ? ` (${what})` : ''}; validating against limits:`);
  for (const k of LIMITS) {
    const d = device.limits[k];
    const a = adapter.limits[k];
    console.log(`  ${k} = ${d}${a !== d ? ` (adapter would allow ${a})` : ''}`);
  }
}

// ---------------------------------------------------------------- source mapping

// The dumped shaders are verbatim concatenations of files under shaders/
// (common.wgsl, sampler/bindings.wgsl, then the pass). Find where each
// source file sits inside a dump, to map a dump line back to file:line.
let sources = null;
function sourceFiles() {
  if (sources) return sources;
  sources = [];
  const walk = (d) => {
    let names = [];
    try { names = readdirSync(d); } catch { return; }
    for (const n of names.sort()) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (n.endsWith('.wgsl')) sources.push({ path: relative(REPO, p), text: readFileSync(p, 'utf8') });
    }
  };
  walk(SHADER_ROOT);
  return sources;
}

// Returns a function (dump line number, 1-based) -> 'shaders/x.wgsl:N' or ''.
function lineMapper(code) {
  const segs = [];
  for (const f of sourceFiles()) {
    if (!f.text.trim()) continue;
    const at = code.indexOf(f.text);
    if (at < 0) continue;
    const first = code.slice(0, at).split('\n').length; // 1-based line of f's line 1
    segs.push({ path: f.path, first, last: first + f.text.split('\n').length - 1 });
  }
  return (line) => {
    const s = segs.find((g) => line >= g.first && line <= g.last);
    return s ? `${s.path}:${line - s.first + 1}` : '';
  };
}

// ---------------------------------------------------------------- checking

// Returns { errors: [string], warnings: [string] }.
async function checkShader(device, uncaptured, file, code, entryPoint, mapLines = true) {
  const errors = [];
  const warnings = [];
  const lines = code.split('\n');
  const origin = mapLines ? lineMapper(code) : () => '';
  uncaptured.length = 0;

  device.pushErrorScope('validation');
  device.pushErrorScope('internal');
  device.pushErrorScope('out-of-memory');

  const module = device.createShaderModule({ code, label: file });
  const info = await module.getCompilationInfo();
  for (const m of info.messages) {
    let where = file;
    let text = '';
    if (m.lineNum > 0) {
      where += `:${m.lineNum}:${m.linePos}`;
      const src = lines[m.lineNum - 1] ?? '';
      const o = origin(m.lineNum);
      if (o) where += ` (${o})`;
      text = `\n      | ${src.trim()}`;
    }
    const msg = `${m.type} ${where}: ${m.message}${text}`;
    if (m.type === 'error') errors.push(msg);
    else warnings.push(msg);
  }

  try {
    await device.createComputePipelineAsync({
      label: `${file}:${entryPoint}`,
      layout: 'auto',
      compute: { module, entryPoint },
    });
  } catch (e) {
    errors.push(`pipeline: ${e.message ?? e}`);
  }

  for (const kind of ['out-of-memory', 'internal', 'validation']) {
    const err = await device.popErrorScope();
    if (err) errors.push(`${kind} error: ${err.message}`);
  }
  for (const m of uncaptured) errors.push(`uncaptured error: ${m}`);

  // A shader-module error shows up again in the scope (as the formatted
  // Tint diagnostic) and in the pipeline ("invalid due to a previous
  // error"): keep the compilation messages, which carry line numbers.
  const compileErrors = errors.some((e) => e.startsWith('error '));
  const rest = errors.filter((e) => !(compileErrors && (
    /Error while parsing WGSL/.test(e) || /is invalid due to a previous error/.test(e))));
  return { errors: dedupe(rest), warnings };
}

function dedupe(msgs) {
  const seen = new Set();
  const out = [];
  for (const m of msgs) {
    const body = m.replace(/^(pipeline: |validation error: |internal error: |uncaptured error: )/, '').trim();
    // Dawn repeats the Tint diagnostic inside its pipeline / scope messages.
    if ([...seen].some((s) => s.includes(body) || body.includes(s))) continue;
    seen.add(body);
    out.push(m);
  }
  return out;
}

function oneLine(s) {
  return s.split('\n').map((l) => l.trim()).filter(Boolean).join(' / ');
}

function report(name, { errors, warnings }) {
  if (errors.length === 0) {
    console.log(`ok  ${name}`);
  } else {
    console.log(`FAIL ${name}: ${oneLine(errors[0])}`);
    for (const e of errors) console.log(`    ${e.replace(/\n/g, '\n    ')}`);
  }
  for (const w of warnings) console.log(`    ${w.replace(/\n/g, '\n    ')}`);
  return errors.length === 0;
}

// ---------------------------------------------------------------- self-test

const BAD = [
  {
    name: 'barrier in non-uniform control flow',
    expect: /uniform control flow/,
    entry: 'main',
    code: `
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
var<workgroup> tile: array<u32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32) {
    tile[lid] = lid;
    if (lid == 0u) {
        workgroupBarrier();
    }
    out[lid] = tile[63u - lid];
}
`,
  },
  {
    name: 'workgroup array of 5000 u32 (20000 bytes > 16 KiB)',
    expect: /workgroup storage/,
    entry: 'main',
    code: `
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
var<workgroup> big: array<u32, 5000>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32) {
    for (var i = lid; i < 5000u; i += 64u) {
        big[i] = i;
    }
    workgroupBarrier();
    out[lid] = big[4999u - lid];
}
`,
  },
  {
    name: '@workgroup_size(512) (> 256 invocations)',
    expect: /workgroup_size|invocations/,
    entry: 'main',
    code: `
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(512)
fn main(@builtin(local_invocation_index) lid: u32) {
    out[lid] = lid;
}
`,
  },
];

// A control that must pass, so "rejected" cannot mean "everything fails".
const GOOD = {
  name: 'control: same shapes within the limits',
  entry: 'main',
  code: `
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
var<workgroup> tile: array<u32, 4096>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    for (var i = lid; i < 4096u; i += 256u) {
        tile[i] = i;
    }
    workgroupBarrier();
    if (lid == 0u) {
        out[0] = tile[4095u];
    }
    workgroupBarrier();
    out[lid] = tile[4095u - lid];
}
`,
};

async function selfTest(device, uncaptured) {
  let good = true;
  console.log('self-test: each of these must be rejected');
  for (const b of BAD) {
    const r = await checkShader(device, uncaptured, 'self-test.wgsl', b.code, b.entry, false);
    if (r.errors.length > 0 && r.errors.some((e) => b.expect.test(e))) {
      console.log(`ok  rejected: ${b.name}`);
      console.log(`    ${oneLine(r.errors[0])}`);
    } else if (r.errors.length > 0) {
      console.log(`FAIL ${b.name}: rejected, but not for the expected reason (${b.expect}): ${oneLine(r.errors[0])}`);
      good = false;
    } else {
      console.log(`FAIL ${b.name}: accepted, but WebGPU must reject it`);
      good = false;
    }
  }
  console.log('self-test: this one must be accepted');
  const r = await checkShader(device, uncaptured, 'self-test.wgsl', GOOD.code, GOOD.entry, false);
  if (!report(GOOD.name, r)) good = false;
  console.log(good ? 'self-test passed: the check can fail' : 'self-test FAILED');
  return good;
}

// ---------------------------------------------------------------- main

async function checkDir(device, uncaptured, dir) {
  let list;
  try {
    list = readFileSync(join(dir, 'list.tsv'), 'utf8');
  } catch (e) {
    console.log(`FAIL cannot read ${join(dir, 'list.tsv')}: ${e.message}`);
    return false;
  }
  const rows = list.split('\n').filter((l) => l.trim()).map((l) => l.split('\t'));
  if (rows.length === 0) {
    console.log(`FAIL ${join(dir, 'list.tsv')} lists no shaders`);
    return false;
  }
  let failed = 0;
  for (const row of rows) {
    const [file, entry, name = `${file}:${entry}`] = row;
    if (!file || !entry) {
      console.log(`FAIL bad list.tsv line: ${row.join('\\t')}`);
      failed++;
      continue;
    }
    let code;
    try {
      code = readFileSync(join(dir, file), 'utf8');
    } catch (e) {
      console.log(`FAIL ${name}: ${e.message}`);
      failed++;
      continue;
    }
    const r = await checkShader(device, uncaptured, file, code, entry);
    if (!report(`${name} (${file}, entry ${entry})`, r)) failed++;
  }
  console.log(failed === 0
    ? `all ${rows.length} shaders pass WebGPU validation`
    : `${failed} of ${rows.length} shaders FAIL WebGPU validation`);
  return failed === 0;
}

async function main() {
  const args = process.argv.slice(2);
  const self = args.includes('--self-test');
  const dirs = args.filter((a) => a !== '--self-test');
  if (!self && dirs.length !== 1) {
    console.error('usage: node scripts/check_shaders.mjs DIR | --self-test');
    return 2;
  }
  const { adapter, device, uncaptured } = await makeDevice();
  printLimits(adapter, device);
  let ok = true;
  if (self) ok = (await selfTest(device, uncaptured)) && ok;
  for (const d of dirs) ok = (await checkDir(device, uncaptured, d)) && ok;
  device.destroy();
  gpu = null;
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`check_shaders: ${e.stack ?? e}`);
    process.exit(1);
  },
);
