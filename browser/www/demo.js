// The web page example: loads the wasm module (wasm-bindgen --target web
// output in ./pkg), opens the WebGPU device, and samples synthetic logits
// with each strategy the module offers, showing the tokens and the time of
// every step. Build and serve it with scripts/serve_web.sh.
import init, { demo_open, demo_strategies, demo_run } from './pkg/wgsample_browser.js';

const $ = (id) => document.getElementById(id);
const fmt = (ms) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(1));
const median = (v) => { const s = [...v].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

function table(name, r, batch) {
  const div = document.createElement('div');
  const agree = r.agree
    ? '<span class="good">GPU tokens = CPU tokens</span>'
    : '<span class="bad">GPU and CPU tokens differ</span>';
  const rest = r.gpu_ms.slice(1);
  const steady = rest.length ? `, median of the later steps ${fmt(median(rest))} ms` : '';
  let html = `<h3>${name}</h3><p>${agree}; GPU first step ${fmt(r.gpu_ms[0])} ms${steady}; ` +
    `CPU median ${fmt(median(r.cpu_ms))} ms</p><table><tr><th>step</th>`;
  for (let b = 0; b < batch; b++) html += `<th>row ${b}</th>`;
  html += '<th>GPU ms</th><th>CPU ms</th></tr>';
  r.tokens.forEach((row, s) => {
    html += `<tr><td>${s}</td>`;
    for (const t of row) html += `<td class="t">${t < 0 ? 'none' : t}</td>`;
    html += `<td>${fmt(r.gpu_ms[s])}</td><td>${fmt(r.cpu_ms[s])}</td></tr>`;
  });
  div.innerHTML = html + '</table>';
  return div;
}

async function runAll() {
  const vocab = Number($('vocab').value);
  const batch = Number($('batch').value);
  const steps = Number($('steps').value);
  const seed = Number($('seed').value);
  const out = $('results');
  out.textContent = '';
  $('run').disabled = true;
  try {
    const names = demo_strategies();
    for (let i = 0; i < names.length; i++) {
      const note = document.createElement('p');
      note.textContent = `sampling: ${names[i]}\u2026`;
      out.appendChild(note);
      const r = JSON.parse(await demo_run(i, vocab, batch, steps, seed));
      out.replaceChild(table(names[i], r, batch), note);
      console.log(`wgsample-demo: ${names[i]}: row 0 tokens ${r.tokens.map((t) => t[0]).join(' ')}; ` +
        `GPU ${r.gpu_ms.map(fmt).join(' ')} ms; CPU median ${fmt(median(r.cpu_ms))} ms; agree ${r.agree}`);
    }
  } catch (e) {
    const p = document.createElement('p');
    p.className = 'bad';
    p.textContent = `error: ${e}`;
    out.appendChild(p);
  } finally {
    $('run').disabled = false;
  }
}

async function main() {
  await init();
  if (!navigator.gpu) {
    $('adapter').innerHTML = '<span class="bad">this browser has no WebGPU (navigator.gpu is missing)</span>';
    return;
  }
  const a = await navigator.gpu.requestAdapter();
  const info = a?.info ?? {};
  const js = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ');
  const line = await demo_open();
  $('adapter').textContent = `${js || line}${a?.isFallbackAdapter || info.isFallbackAdapter ? ' (fallback adapter)' : ''}`;
  console.log(`wgsample-demo: adapter ${$('adapter').textContent}`);
  $('run').disabled = false;
  $('run').addEventListener('click', runAll);
  await runAll();
  console.log('wgsample-demo: done');
}

main().catch((e) => {
  $('adapter').innerHTML = `<span class="bad">${e}</span>`;
});
