// The browser check (scripts/test_browser.sh opens this page in headless
// Chromium): runs the wasm module's run_checks and writes every line to
// the console, where the script reads it from Chromium's stderr. The last
// line is always `wgsample-browser: END pass|fail|error`.
import init, { run_checks } from './pkg/wgsample_browser.js';

const out = document.getElementById('out');
const say = (line) => {
  console.log(`wgsample-browser: ${line}`);
  out.textContent += `${line}\n`;
};

// The wasm module logs its own lines with console.log; mirror them on the page.
const log = console.log.bind(console);
console.log = (...args) => {
  log(...args);
  const s = args.join(' ');
  if (s.startsWith('wgsample-browser: ') && !s.includes(' END ')) {
    out.textContent += `${s.slice('wgsample-browser: '.length)}\n`;
  }
};

async function adapterLine() {
  if (!navigator.gpu) return 'navigator.gpu is missing (WebGPU off?)';
  const a = await navigator.gpu.requestAdapter();
  if (!a) return 'requestAdapter() returned null';
  const i = a.info ?? {};
  return `vendor=${i.vendor || '?'} architecture=${i.architecture || '?'} ` +
    `device=${i.device || '?'} description=${i.description || '?'} ` +
    `fallback=${a.isFallbackAdapter ?? i.isFallbackAdapter ?? '?'}`;
}

async function main() {
  const corrupt = new URLSearchParams(location.search).get('corrupt') === '1';
  console.log(`wgsample-browser: runtime: ${navigator.userAgent}`);
  console.log(`wgsample-browser: adapter (js): ${await adapterLine()}`);
  const t0 = performance.now();
  await init();
  console.log(`wgsample-browser: wasm loaded in ${(performance.now() - t0).toFixed(0)} ms`);
  const r = await run_checks(corrupt);
  const [p, t] = r.split('/');
  console.log(`wgsample-browser: END ${p === t ? 'pass' : 'fail'}`);
}

main().catch((e) => {
  console.log(`wgsample-browser: error: ${e && e.stack ? e.stack : e}`);
  console.log('wgsample-browser: END error');
});
