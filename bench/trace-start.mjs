// Where a start's thread time goes, by V8's sampling profiler: Chromium's startup trace
// (`--trace-startup` with `disabled-by-default-v8.cpu_profiler`) records every service worker
// thread from its first instruction, so a first start and the wakes after it are profiled whole,
// which a DevTools session attached after the worker starts cannot do. Uses the bench extension
// as `make bench` last built it (bench/out/ext), with the wasm that keeps its function names
// (target/pkg/names, from `SIZE_REPORT=1 ./scripts/build-pkg.sh`) when it is there. Prints, for
// the first start and for the wakes (mean per wake), the thread's time by kind in 2 ms bins from
// the worker thread's start, and the functions of the SDK (wasm, glue, loader) and V8's wrappers
// between JS and wasm.
// Not part of `make bench`: a tool for finding what to cut. Usage: node bench/trace-start.mjs [wakes]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_FLAGS } from '../scripts/lib/harness.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WAKES = Number(process.argv[2] ?? 5);
const TRACE_S = 12; // the trace's length: the first start and the wakes fit in it

const built = path.join(ROOT, 'bench/out/ext');
if (!fs.existsSync(path.join(built, 'manifest.json'))) throw new Error('bench/out/ext is missing: run `make bench` (or `PEERS=0 STEPS=cold node bench/run.mjs`) first');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'inhouse-trace-'));
const ext = path.join(work, 'ext');
fs.cpSync(built, ext, { recursive: true });
const names = path.join(ROOT, 'target/pkg/names');
if (fs.existsSync(path.join(names, 'inhouse_tracker_bg.wasm'))) {
  for (const f of ['inhouse_tracker.js', 'inhouse_tracker_bg.wasm']) fs.copyFileSync(path.join(names, f), path.join(ext, 'vendor/chrome-tracker', f));
}
const traceFile = path.join(work, 'trace.json');

const ctx = await chromium.launchPersistentContext(path.join(work, 'profile'), {
  executablePath: CHROMIUM, headless: true,
  args: [...CHROMIUM_FLAGS, '--trace-startup=v8,disabled-by-default-v8.cpu_profiler', `--trace-startup-file=${traceFile}`,
    `--trace-startup-duration=${TRACE_S}`, '--trace-startup-format=json', `--disable-extensions-except=${ext}`, `--load-extension=${ext}`],
});
try {
  const sw = ctx.serviceWorkers()[0] ?? (await ctx.waitForEvent('serviceworker'));
  const page = await ctx.newPage();
  await page.goto(`chrome-extension://${new URL(sw.url()).host}/bench.html`);
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('ServiceWorker.enable');
  const info = async () => (await page.evaluate((m) => chrome.runtime.sendMessage(m), { type: 'bench', op: 'info' })).result;
  const readies = [(await info()).ready_from_t0_ms];
  for (let i = 0; i < WAKES; i++) {
    await cdp.send('ServiceWorker.stopAllWorkers');
    await new Promise((r) => setTimeout(r, 400));
    readies.push((await info()).ready_from_t0_ms);
  }
  for (let i = 0; i < TRACE_S * 4 && !fs.existsSync(traceFile); i++) await new Promise((r) => setTimeout(r, 500));
  await new Promise((r) => setTimeout(r, 1000)); // the file is written in one go, once the trace ends
  console.log(`t0 → ready: first start ${readies[0].toFixed(1)} ms; wakes ${readies.slice(1).map((x) => x.toFixed(1)).join(', ')} ms (the profiler slows them)`);
} finally {
  await ctx.close();
}

// ---- the trace's profiles of the service worker threads, oldest first ----
const events = JSON.parse(fs.readFileSync(traceFile, 'utf8')).traceEvents;
fs.rmSync(work, { recursive: true, force: true });
const threadNames = new Map(events.filter((e) => e.name === 'thread_name').map((e) => [`${e.pid}:${e.tid}`, e.args.name]));
const profiles = new Map();
for (const e of events) {
  if (e.name === 'Profile' && threadNames.get(`${e.pid}:${e.tid}`)?.startsWith('ServiceWorker')) {
    profiles.set(e.id, { start: e.args.data.startTime, nodes: new Map(), samples: [], deltas: [] });
  }
}
for (const e of events) {
  const p = e.name === 'ProfileChunk' && profiles.get(e.id);
  if (!p) continue;
  for (const n of e.args.data.cpuProfile?.nodes ?? []) p.nodes.set(n.id, n);
  p.samples.push(...(e.args.data.cpuProfile?.samples ?? []));
  p.deltas.push(...(e.args.data.timeDeltas ?? []));
}
// The SDK's starts only: other service workers (the browser's own) have profiles too.
const ours = (p) => [...p.nodes.values()].some((n) => (n.callFrame.url ?? '').endsWith('inhouse_tracker.js'));
const starts = [...profiles.values()].filter(ours).sort((a, b) => a.start - b.start);
const wakes = starts.slice(1);
if (!wakes.length) throw new Error('the trace holds no wake of the worker');

/** What a sample was running: V8's own work, a wrapper between JS and wasm, or whose code. */
function kind(node) {
  const { functionName: fn = '', url = '' } = node.callFrame;
  if (['(program)', '(idle)', '(garbage collector)', '(root)'].includes(fn)) return fn.slice(1, -1);
  if (fn === 'js-to-wasm' || fn === 'wasm-to-js') return 'wrappers';
  if (url.endsWith('inhouse_tracker.js')) return 'glue';
  if (url.endsWith('/index.js')) return 'loader';
  if (url.endsWith('t0.js') || url.endsWith('sw.js') || url.endsWith('config.js')) return 'bench';
  if (url.includes('wasm')) return 'wasm';
  return 'browser';
}
/** Each sample of `p` until `untilMs`: [ms from the profile's start, duration ms, node]. */
function* samples(p, untilMs) {
  let t = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.deltas[i] / 1000;
    t += dt;
    if (t > untilMs) return;
    yield [t, dt, p.nodes.get(p.samples[i])];
  }
}
const fmt = (counter) => [...counter].sort((a, b) => b[1] - a[1]).filter(([, v]) => v >= 0.05).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');

/** The thread's time by kind in 2 ms bins, and the SDK's functions, mean per profile of `runs`. */
function report(runs, untilMs, label) {
  const bins = new Map();
  const fns = new Map();
  for (const p of runs) {
    for (const [t, dt, node] of samples(p, untilMs)) {
      const bin = Math.floor(t / 2) * 2;
      const k = kind(node);
      if (!bins.has(bin)) bins.set(bin, new Map());
      bins.get(bin).set(k, (bins.get(bin).get(k) ?? 0) + dt / runs.length);
      if (['wasm', 'glue', 'loader', 'wrappers'].includes(k)) {
        const name = `${k} ${(node.callFrame.functionName ?? '').replace(/::h[0-9a-f]{16}$/, '') || '(top level)'}`;
        fns.set(name, (fns.get(name) ?? 0) + dt / runs.length);
      }
    }
  }
  console.log(`\n${label}'s thread, ms per 2 ms from the worker thread's start (mean of ${runs.length}):`);
  for (const [bin, c] of [...bins].sort((a, b) => a[0] - b[0])) console.log(`${String(bin).padStart(3)} ms: ${fmt(c)}`);
  const total = new Map();
  for (const c of bins.values()) for (const [k, v] of c) total.set(k, (total.get(k) ?? 0) + v);
  console.log(`in the first ${untilMs} ms: ${fmt(total)}`);
  console.log(`\nThe SDK's functions and the wrappers, ms per ${label.toLowerCase()} (first ${untilMs} ms):`);
  for (const [k, v] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`  ${v.toFixed(2).padStart(5)} ${k}`);
}
report(starts.slice(0, 1), 120, 'The first start');
report(wakes, 40, 'A wake');
