// The benchmark driver (`make bench` → scripts/bench.sh → node bench/run.mjs). Assumes the package
// was built (dist/*.tgz) and the server binary exists (target/release/inhouse-server).
//
//  1. installs the packed tarball with npm into bench/out/install (as a customer would) and builds
//     the bench extension bench/out/ext from bench/ext/ + the package files it installed;
//  2. size: the check-size.sh figure, and the peers' way (minimal entry bundle + the .wasm);
//  3. runs our SDK in the MV3 service worker of headless Chromium against the local Inhouse server:
//     init, track() burst, durability of the burst (read back from chrome.storage.local), wasm
//     memory, drain of a backlog after a worker restart, drain of a live burst, cold start with a
//     stored queue (and where its time goes: the SDK's `inhouse:*` marks), duplicates per worker
//     stop by done-mark batch, drain rate by `concurrency`, survival of a worker kill (the
//     peer-bench procedure);
//  4. runs the peer SDKs with bench/peers (same machine, same Chromium, same N), unless PEERS=0;
//  5. prints the table, writes bench/out/results.json (everything), bench/results.json (summary),
//     bench/out/results.md, and renders docs/bench.png (bench/chart.mjs).
//
// Env knobs [default]: N [10000] events per burst; REPS [1] runs of the burst/drain phase (ours)
// and of each peer's perf run; DUR_REPS [1]; DUR_MODES [refuse] (add 503: refuse,503);
// COLD_N [1000] queued events for the cold start; COLD_REPS [10] worker restarts;
// DRAIN_CAP_S [60]; DUR_WAIT_S [60]; PEERS [1] (0 skips the peers); ONLY (peer list, e.g.
// rudderstack,amplitude); PROBE_WAIT_S [30] (peers' service-worker probe); NO_CONTROL;
// STEPS [perf,cold,dup,conc,dur,firefox,plan,memory] (our steps to run); MEMORY_N [200000] calls in
// one turn for the memory step; PLAN_N [2000] calls per burst and
// PLAN_EVENTS [50] events of the plan (track() with a tracking plan beside without); CONC_CURVE [1,2,4,8,16] and CONC_N [2000]
// (drain rate by `concurrency`); ACK_CURVE, DUP_N, DUP_STOPS, DUP_GAP_MS, DUP_LATENCY_MS.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { renderChart } from './chart.mjs';
import { startServer as startLocalServer } from '../scripts/lib/harness.mjs';
import { median, renderSummaryMarkdown, startPhases, summarize } from './report.mjs';
import { FIREFOX_APP_ID, firefoxExtension, firefoxRun } from './firefox.mjs';

const BENCH = path.dirname(new URL(import.meta.url).pathname);
const ROOT = path.dirname(BENCH);
const OUT = path.join(BENCH, 'out');
const require = createRequire(path.join(ROOT, 'package.json'));
const { chromium } = require('playwright-core');
const esbuild = require('esbuild');

const env = process.env;
const STEP_NAMES = ['perf', 'cold', 'dup', 'conc', 'dur', 'firefox', 'plan', 'memory'];
const OPT = {
  n: Number(env.N || 10000),
  reps: Number(env.REPS || 1),
  durReps: Number(env.DUR_REPS || 1),
  durModes: (env.DUR_MODES || 'refuse').split(',').filter(Boolean),
  coldN: Number(env.COLD_N || 1000),
  coldReps: Number(env.COLD_REPS || 10),
  drainCapS: Number(env.DRAIN_CAP_S || 60),
  durWaitS: Number(env.DUR_WAIT_S || 60),
  durN: 100,
  // Duplicates per worker stop: the done-mark batches to compare (5 is the SDK's default).
  ackCurve: (env.ACK_CURVE || '1,2,5,10,25').split(',').map(Number).filter((n) => n > 0),
  dupN: Number(env.DUP_N || 1000),
  dupStops: Number(env.DUP_STOPS || 10),
  dupGapMs: Number(env.DUP_GAP_MS || 300),
  dupLatencyMs: Number(env.DUP_LATENCY_MS || 25),
  // Drain rate by `concurrency` (the SDK's default is 6, its range 1..16).
  concCurve: (env.CONC_CURVE || '1,2,4,8,16').split(',').map(Number).filter((n) => n > 0),
  concN: Number(env.CONC_N || 2000),
  planN: Number(env.PLAN_N || 2000),
  memoryN: Number(env.MEMORY_N || 200000),
  planEvents: Number(env.PLAN_EVENTS || 50),
  // Our steps to run (a subset is a quick check: STEPS=cold); the size is always measured.
  steps: (env.STEPS || STEP_NAMES.join(',')).split(',').map((x) => x.trim()).filter(Boolean),
  peers: env.PEERS !== '0',
  control: !env.NO_CONTROL,
};
for (const st of OPT.steps) if (!STEP_NAMES.includes(st)) throw new Error(`STEPS: unknown step ${st} (known: ${STEP_NAMES.join(', ')})`);
const T_START = Date.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.log(`[bench ${((Date.now() - T_START) / 1000).toFixed(0).padStart(4)}s]`, ...a);
function withTimeout(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timeout ${ms} ms: ${what}`)), ms); })])
    .finally(() => clearTimeout(t));
}
const gzip9 = (file) => {
  try { return execFileSync('gzip', ['-9', '-n', '-c', file], { maxBuffer: 1 << 28 }).length; } catch { return zlib.gzipSync(fs.readFileSync(file), { level: 9 }).length; }
};

// ---------------- 1. install the tarball, build the extension ----------------
const TOKEN = { id: 'bench_token_id', secret: 'bench_token_secret' };
// Firefox's add-on is its own app (its gecko id), with its own token.
const FIREFOX_TOKEN = { id: 'bench_firefox_token_id', secret: 'bench_firefox_token_secret' };

function installPackage() {
  const tgz = fs.readdirSync(path.join(ROOT, 'dist')).filter((f) => f.endsWith('.tgz')).map((f) => path.join(ROOT, 'dist', f))[0];
  if (!tgz) throw new Error('no dist/*.tgz: run scripts/build-pkg.sh');
  const dir = path.join(OUT, 'install');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'bench-customer', private: true, type: 'module' }, null, 2));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', tgz], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  const pkgDir = path.join(dir, 'node_modules', '@inhouse', 'chrome-tracker');
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  return { tgz, dir, pkgDir, version: pkg.version };
}

function buildExtension(inst, baseUrl, extra = {}) {
  const ext = path.join(OUT, 'ext');
  fs.rmSync(ext, { recursive: true, force: true });
  fs.mkdirSync(path.join(ext, 'vendor', 'chrome-tracker'), { recursive: true });
  for (const f of fs.readdirSync(path.join(BENCH, 'ext'))) fs.copyFileSync(path.join(BENCH, 'ext', f), path.join(ext, f));
  // What a customer copies into the extension: the loader, the glue and the wasm.
  for (const f of ['index.js', 'inhouse_tracker.js', 'inhouse_tracker_bg.wasm', 'client.js']) {
    fs.copyFileSync(path.join(inst.pkgDir, f), path.join(ext, 'vendor', 'chrome-tracker', f));
  }
  fs.writeFileSync(path.join(ext, 'config.js'),
    `export default ${JSON.stringify({ baseUrl, tokenId: TOKEN.id, tokenSecret: TOKEN.secret, ...extra })};\n`);
  return ext;
}

// ---------------- 2. size ----------------
async function measureSize(inst) {
  const res = {};
  // What the wasm's bytes are, by crate and by function (scripts/size-report.mjs, on the copy
  // with names that SIZE_REPORT=1 ./scripts/build-pkg.sh writes; scripts/bench.sh does).
  const names = path.join(ROOT, 'target/pkg/names/inhouse_tracker_bg.wasm');
  if (fs.existsSync(names)) {
    const { analyze, report } = await import('../scripts/size-report.mjs');
    const a = analyze(names);
    res.breakdown = { total: a.total, code: a.code, data: a.data, top: a.functions.sort((x, y) => y.size - x.size).slice(0, 40) };
    res.breakdown.by_crate = Object.entries(a.functions.reduce((m, f) => ((m[f.crate] = (m[f.crate] ?? 0) + f.size), m), {})).sort((x, y) => y[1] - x[1]);
    log(`size of the wasm (scripts/size-report.mjs):\n${report(a, 20).map((l) => `    ${l}`).join('\n')}`);
  }
  try {
    const line = execFileSync(path.join(ROOT, 'scripts', 'check-size.sh'), ['--report'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const m = line.match(/(\d+) B raw, (\d+) B gzipped; JS (\d+) B minified\+gzipped; total (\d+) B \(budget (\d+) B\)/);
    res.check_size = m ? { line, wasm_raw: +m[1], wasm_gzip: +m[2], js_gzip: +m[3], total_gzip: +m[4], budget: +m[5] } : { line };
  } catch (e) {
    res.check_size = { error: String(e.message || e) };
  }
  // The peers' method: minimal entry (import + init + one track) bundled with esbuild
  // (--bundle --minify --format=esm --platform=browser), gzip -9; plus the .wasm, gzip -9,
  // which the loader fetches next to itself.
  const dir = path.join(OUT, 'size');
  fs.mkdirSync(dir, { recursive: true });
  const entry = path.join(inst.dir, 'size-entry.js');
  fs.writeFileSync(entry, [
    "import { init } from '@inhouse/chrome-tracker';",
    "const t = init({ tokenId: 'k', tokenSecret: 's', baseUrl: 'http://127.0.0.1:47123/v1/api' });",
    "t.track('bench_event', { plan: 'pro', n: 1, ok: true });", '',
  ].join('\n'));
  const outfile = path.join(dir, 'entry.min.js');
  await esbuild.build({ entryPoints: [entry], outfile, bundle: true, minify: true, format: 'esm', platform: 'browser', logLevel: 'error', legalComments: 'none' });
  const wasm = path.join(inst.pkgDir, 'inhouse_tracker_bg.wasm');
  res.entry = {
    js_min_bytes: fs.statSync(outfile).size, js_gzip9_bytes: gzip9(outfile),
    wasm_bytes: fs.statSync(wasm).size, wasm_gzip9_bytes: gzip9(wasm),
  };
  res.entry.gzip9_bytes = res.entry.js_gzip9_bytes + res.entry.wasm_gzip9_bytes;
  res.tarball_bytes = fs.statSync(inst.tgz).size;
  return res;
}

// ---------------- 3a. the local Inhouse server ----------------
async function startServer() {
  const srv = await startLocalServer();
  const { ctl } = srv;
  return {
    ...srv,
    // What the server stored for a run: unique bench_seq, events stored twice (same seq under
    // different keys), idempotent replays it suppressed, arrival times (server clock, ms).
    async run(run) {
      const j = await ctl('/events');
      const evs = j.events.filter((e) => e.properties && e.properties.bench_run === run);
      const seqs = new Map();
      let first = Infinity, last = 0;
      for (const e of evs) {
        seqs.set(e.properties.bench_seq, (seqs.get(e.properties.bench_seq) || 0) + 1);
        first = Math.min(first, e.received_at_ms); last = Math.max(last, e.received_at_ms);
      }
      const ids = new Set(evs.map((e) => e.id));
      return {
        unique: seqs.size, stored: evs.length, duplicates: evs.length - seqs.size,
        replays: j.duplicates.filter((d) => ids.has(d.event_id)).length,
        first: evs.length ? first : null, last: evs.length ? last : null,
        requests_total: j.requests_total, status_counts: j.counts,
        // every request but the CORS preflights (answered 204), as the peers' collector counts
        posts: j.requests_total - (j.counts['204'] || 0), preflights: j.counts['204'] || 0,
      };
    },
  };
}

// ---------------- 3b. Chromium ----------------
const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
];

async function launch(ext) {
  process.env.PLAYWRIGHT_DISABLE_SERVICE_WORKER_NETWORK = '1'; // as the peers' perf runs
  const udd = fs.mkdtempSync(path.join(os.tmpdir(), 'inhouse-bench-'));
  const ctx = await chromium.launchPersistentContext(udd, {
    executablePath: '/usr/bin/chromium', headless: true,
    args: [...FLAGS, `--disable-extensions-except=${ext}`, `--load-extension=${ext}`],
  });
  let sw = ctx.serviceWorkers()[0];
  if (!sw) sw = await ctx.waitForEvent('serviceworker', { timeout: 15000 });
  const id = new URL(sw.url()).host;
  const helper = await ctx.newPage();
  await helper.goto(`chrome-extension://${id}/bench.html`);
  const cdp = await ctx.newCDPSession(helper);
  await cdp.send('ServiceWorker.enable');
  const b = {
    ctx, id, helper, cdp,
    async msg(op, arg, ms = 60000) {
      const r = await withTimeout(helper.evaluate((m) => chrome.runtime.sendMessage(m), { type: 'bench', op, arg }), ms, `message ${op}`);
      if (!r || !r.ok) throw new Error(`bench op ${op} failed: ${r && r.error}`);
      return { ...r.result, _instance: r.instance };
    },
    // Stops the worker the way Chrome does when idle (CDP), confirmed by runningStatus.
    async kill() {
      const stopped = new Promise((resolve) => {
        const on = (e) => {
          if (e.versions.some((v) => v.scriptURL.includes(id) && v.runningStatus === 'stopped')) { cdp.off('ServiceWorker.workerVersionUpdated', on); resolve(true); }
        };
        cdp.on('ServiceWorker.workerVersionUpdated', on);
      });
      await cdp.send('ServiceWorker.stopAllWorkers');
      return withTimeout(stopped, 10000, 'sw stopped').catch(() => false);
    },
    async close() {
      await withTimeout(ctx.close(), 20000, 'ctx.close').catch(() => {});
      fs.rmSync(udd, { recursive: true, force: true });
    },
  };
  return b;
}

// What a worker start reports (the `info` op): t0 → ready, and where the time went (the bench's
// load/storage/API timings from t0.js and the SDK's own `inhouse:*` marks), ms from t0.
const startInfo = (i) => ({
  ready_from_t0_ms: i.ready_from_t0_ms, ready_from_worker_origin_ms: i.ready_from_worker_origin_ms,
  t0_ms: i.t0_ms, phases: i.phases, marks: i.marks ?? [],
});
// A moment after a start's `info`, its timings again (same worker instance): the marks and calls
// that settle after `ready` (the stored queue's load) are in by then.
async function settledStart(b, i, ms = 300) {
  await sleep(ms);
  const t = await b.msg('timings').catch(() => null);
  return startInfo(t && t._instance === i._instance ? t : i);
}
const runId = (k) => `${k}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
async function waitFor(fn, capMs, interval = 200) {
  const deadline = Date.now() + capMs;
  let v = await fn();
  while (!v.done && Date.now() < deadline) { await sleep(interval); v = await fn(); }
  return v;
}
// Polls the worker until its queue is empty and nothing is in flight (cheap), then the server
// is asked once; the figures come from the server's arrival times.
const drained = (b, capMs) => waitFor(async () => {
  const s = await b.msg('stats').catch((e) => ({ error: String(e.message) }));
  const st = s.stats || {};
  return { done: !s.error && st.queued === 0 && st.pendingWrite === 0 && st.inFlight === 0, s };
}, capMs, 250);

// ---------------- 3c. our phases ----------------
// Runs `measure(b)` in a fresh launch of `ext`, into `res`: an error is kept in `res.error` and
// logged; the server's faults are cleared and the browser closed whatever happens.
async function measured(ext, srv, res, measure) {
  const b = await launch(ext);
  try {
    await measure(b);
  } catch (e) {
    res.error = String(e.stack || e);
    log('  ERROR', res.error);
  } finally {
    await srv.ctl('/faults', { clear: true, down: false }).catch(() => {});
    await b.close();
  }
  return res;
}

async function perfRun(ext, srv, rep) {
  const res = { rep };
  return measured(ext, srv, res, async (b) => {
    await srv.ctl('/reset', {});
    // (a) first start of a fresh profile, empty queue: comparable to the peers' "init".
    const i0 = await b.msg('info');
    res.first_start = await settledStart(b, i0);
    res.wasm_memory_idle_bytes = i0.wasm_memory_bytes;

    // (b) burst of N with the server down: track() cost, durability read back from storage, memory.
    await srv.ctl('/faults', { down: true });
    const run = runId('burst');
    const loop = await b.msg('burst', { run, n: OPT.n }, 120000);
    const st = await waitFor(async () => {
      const s = await b.msg('burstStatus');
      return { done: s.resolved && s.durable_ms != null, s };
    }, 60000, 100);
    if (st.s.durable_ms == null) log(`  burst: durability not confirmed from storage changes (${st.s.seen_in_storage_changes}/${OPT.n} seen)`);
    const v = await b.msg('verifyStorage');
    const i1 = await b.msg('info');
    await b.msg('stopWatching');
    res.burst = {
      server: 'down', us_per_call: loop.us_per_call, loop_ms: loop.loop_ms,
      all_track_promises_resolved_ms: st.s.all_resolved_ms, statuses: st.s.statuses,
      durable_ms: st.s.durable_ms, seen_in_storage_changes: st.s.seen_in_storage_changes,
      storage_readback: v, stats: i1.stats, storage_calls: i1.storage_calls,
    };
    res.memory = {
      wasm_memory_idle_bytes: i0.wasm_memory_bytes, wasm_memory_bytes: i1.wasm_memory_bytes,
      queued: i1.stats.queued, serialized_bytes: v.segment_bytes, stats_bytes_stored: i1.stats.bytesStored,
    };
    res.memory.ratio = res.memory.wasm_memory_bytes / res.memory.serialized_bytes;
    res.memory.growth_ratio = (res.memory.wasm_memory_bytes - res.memory.wasm_memory_idle_bytes) / res.memory.serialized_bytes;
    log(`  burst (server down): track ${loop.us_per_call.toFixed(2)} µs/call, durable ${st.s.durable_ms?.toFixed(0)} ms (read back ${v.of_burst}/${OPT.n}), wasm memory ${(i1.wasm_memory_bytes / 1048576).toFixed(2)} MiB for ${(v.segment_bytes / 1048576).toFixed(2)} MiB stored`);

    // (c) backlog drain: kill the worker, server up, wake it; the new worker loads the N queued
    // events and delivers them.
    res.backlog_kill_confirmed = await b.kill();
    await srv.ctl('/faults', { down: false });
    const tWake = Date.now();
    const w = await b.msg('info');
    res.cold_start_with_backlog = { queued: w.stats.queued, ...(await settledStart(b, w)) };
    const d = await drained(b, OPT.drainCapS * 1000);
    const sv = await srv.run(run);
    res.backlog_drain = {
      complete: sv.unique >= OPT.n, arrived: sv.unique, duplicates: sv.duplicates, replays: sv.replays,
      drain_s: sv.last ? (sv.last - tWake) / 1000 : null,
      first_arrival_s: sv.first ? (sv.first - tWake) / 1000 : null,
      http_requests: sv.posts, preflights: sv.preflights, status_counts: sv.status_counts,
      storage_writes: d.s.stats?.storageWrites, delivered: d.s.stats?.delivered,
      storage_calls: d.s.storage_calls,
    };
    const bd = res.backlog_drain;
    bd.events_per_s = bd.drain_s ? sv.unique / bd.drain_s : null;
    bd.writes_per_delivered = bd.storage_calls ? (bd.storage_calls.set + bd.storage_calls.remove) / Math.max(sv.unique, 1) : null;
    log(`  backlog drain: ${sv.unique}/${OPT.n} in ${bd.drain_s?.toFixed(2)} s (${bd.events_per_s?.toFixed(0)} ev/s), ${bd.storage_calls?.set} set + ${bd.storage_calls?.remove} remove calls, dups ${sv.duplicates}`);

    // (d) live burst with the server up, timed like the peers' drain (first track → last arrival).
    await srv.ctl('/reset', {});
    const s0 = await b.msg('stats');
    const run2 = runId('live');
    const loop2 = await b.msg('burst', { run: run2, n: OPT.n }, 120000);
    const d2 = await drained(b, OPT.drainCapS * 1000);
    const st2 = await b.msg('burstStatus');
    await b.msg('stopWatching');
    const sv2 = await srv.run(run2);
    const calls = (c) => (c ? c.set + c.remove : 0);
    res.live = {
      server: 'up', us_per_call: loop2.us_per_call, all_track_promises_resolved_ms: st2.all_resolved_ms, durable_ms: st2.durable_ms,
      complete: sv2.unique >= OPT.n, arrived: sv2.unique, duplicates: sv2.duplicates, replays: sv2.replays,
      drain_s: sv2.last ? (sv2.last - loop2.wall_start) / 1000 : null, http_requests: sv2.posts, preflights: sv2.preflights,
      storage_writes: (d2.s.stats?.storageWrites ?? 0) - (s0.stats?.storageWrites ?? 0),
      storage_calls_set: (d2.s.storage_calls?.set ?? 0) - (s0.storage_calls?.set ?? 0),
      storage_calls_remove: (d2.s.storage_calls?.remove ?? 0) - (s0.storage_calls?.remove ?? 0),
    };
    res.live.events_per_s = res.live.drain_s ? sv2.unique / res.live.drain_s : null;
    res.live.writes_per_delivered = (calls(d2.s.storage_calls) - calls(s0.storage_calls)) / Math.max(sv2.unique, 1);
    log(`  live burst (server up): track ${loop2.us_per_call.toFixed(2)} µs/call, ${sv2.unique}/${OPT.n} in ${res.live.drain_s?.toFixed(2)} s, ${res.live.storage_calls_set}+${res.live.storage_calls_remove} storage calls`);
    res.errors = (await b.msg('info')).errors;
  });
}

// Linear memory under a burst in one turn, the server down (everything stays queued): the peak
// (memory never shrinks) against the bytes of the queue the tracker kept. Goal: ≤ 4×.
async function memoryRun(ext, srv) {
  const b = await launch(ext);
  try {
    await b.msg('info');
    await srv.ctl('/faults', { down: true });
    const r = await b.msg('memoryBurst', { n: OPT.memoryN, bigString: 9_000_000 }, 300000);
    r.peak_ratio = r.after / Math.max(r.bytes_stored, 1);
    r.big_string_growth = r.after_big_string - r.after;
    const mb = (x) => `${(x / 1048576).toFixed(1)} MB`;
    log(`  ${r.n.toLocaleString('en')} calls (${JSON.stringify(r.statuses)}): linear memory ${mb(r.before)} → ${mb(r.after)} for a queue of ${mb(r.bytes_stored)} (${r.queued} events): ${r.peak_ratio.toFixed(1)}× (goal ≤ 4×); a ${mb(r.big_string)} string ${r.big_string_outcome}, memory +${mb(r.big_string_growth)}`);
    return r;
  } catch (e) {
    log('  ERROR', String(e.stack || e));
    return { error: String(e.message || e) };
  } finally {
    await srv.ctl('/faults', { clear: true, down: false }).catch(() => {});
    await b.close();
  }
}

// track() with a tracking plan beside without: the same worker, a new tracker per burst,
// alternating, the server up.
async function planRun(ext, srv) {
  const b = await launch(ext);
  try {
    await b.msg('info');
    const r = await b.msg('planBurst', { n: OPT.planN, events: OPT.planEvents, rounds: 5 }, 180000);
    const med = (runs, k) => median(runs.map((x) => x[k]));
    const res = {
      n: OPT.planN, events: OPT.planEvents, runs: r,
      without_us: med(r.without, 'us_per_call'), with_us: med(r.with, 'us_per_call'),
      without_settled_us: med(r.without, 'settled_us_per_call'), with_settled_us: med(r.with, 'settled_us_per_call'),
      statuses_with: r.with[0]?.statuses, violations: r.with.reduce((a, x) => a + x.plan_violations, 0),
    };
    res.settled_overhead_us = res.with_settled_us - res.without_settled_us;
    // The check on its own, natively (examples/plan_check.rs): what the browser's noise hides.
    try {
      const out = execFileSync('cargo', ['run', '--quiet', '--release', '--example', 'plan_check'], { cwd: ROOT, encoding: 'utf8', timeout: 300000 });
      res.native = [...out.matchAll(/plan_check: (.+): (\d+) ns per check/g)].map((m) => ({ case: m[1], ns: Number(m[2]) }));
      log(`  the check alone, native: ${res.native.map((x) => `${x.case} ${x.ns} ns`).join(', ')}`);
    } catch (e) {
      res.native_error = String(e.message || e).slice(0, 300);
    }
    log(`  track() until it returns: ${res.without_us.toFixed(2)} µs without, ${res.with_us.toFixed(2)} µs with the plan; until every promise settled: ${res.without_settled_us.toFixed(2)} vs ${res.with_settled_us.toFixed(2)} µs/call (the plan's cost ${res.settled_overhead_us.toFixed(2)} µs/call); violations ${res.violations}`);
    return res;
  } catch (e) {
    log('  ERROR', String(e.stack || e));
    return { error: String(e.message || e) };
  } finally {
    await b.close();
  }
}

// COLD_N events tracked with the server down, once all are stored: the queue a wake finds.
async function storeWhileDown(b, srv, label) {
  await srv.ctl('/faults', { down: true });
  await b.msg('burst', { run: runId(label), n: OPT.coldN });
  await waitFor(async () => { const s = await b.msg('burstStatus'); return { done: s.resolved && s.durable_ms != null, s }; }, 60000, 100);
  await b.msg('stopWatching');
}

async function coldStartRun(ext, srv) {
  const res = { runs: [] };
  return measured(ext, srv, res, async (b) => {
    await srv.ctl('/reset', {});
    const i0 = await b.msg('info');
    res.first_start = await settledStart(b, i0);
    await storeWhileDown(b, srv, 'cold'); // the queue stays stored across the restarts
    for (let i = 0; i < OPT.coldReps; i++) {
      const killed = await b.kill();
      await sleep(300);
      const w = await b.msg('info');
      res.runs.push({ killed, instance: w.instance, queued: w.stats.queued, ...(await settledStart(b, w)) });
    }
    // Where the time goes (medians, ms from t0): the SDK's marks, the wasm's load, the first
    // storage and API calls (the report's cold-start phases table).
    res.phases_median = startPhases(res.runs).map((p) => ({ phase: p.label, start: p.start, end: p.end }));
    log(`  cold start phases (ms from t0): ${res.phases_median.map((p) => `${p.phase} ${p.start?.toFixed(1)}${p.end != null ? `–${p.end.toFixed(1)}` : ''}`).join(', ')}`);
    res.queued = median(res.runs.map((r) => r.queued));
    res.all_queued_loaded = res.runs.every((r) => r.queued >= OPT.coldN); // (+ automatic events)
    res.restarts_confirmed = res.runs.filter((r) => r.killed).length;
    res.ready_from_t0_ms_median = median(res.runs.map((r) => r.ready_from_t0_ms));
    res.ready_from_worker_origin_ms_median = median(res.runs.map((r) => r.ready_from_worker_origin_ms));
    res.ready_from_t0_ms_min = Math.min(...res.runs.map((r) => r.ready_from_t0_ms));
    res.ready_from_t0_ms_max = Math.max(...res.runs.map((r) => r.ready_from_t0_ms));
    log(`  cold start (${OPT.coldN} queued, ${OPT.coldReps} restarts): median ${res.ready_from_t0_ms_median.toFixed(2)} ms script start → ready (${res.ready_from_worker_origin_ms_median.toFixed(1)} ms from the worker's time origin)`);
  });
}

// The worker's thread busy during a start (t0.js's ping probe, CONFIG.busyProbe): a first start
// on a fresh profile, then BUSY_WAKES wakes with COLD_N stored. Its own extension build and
// launches: the probe keeps the thread spinning, so no timed figure comes from these starts.
const BUSY_WAKES = 5;
async function busyRun(inst, srv) {
  const ext = buildExtension(inst, `${srv.api}/v1/api`, { busyProbe: true });
  const res = { wakes: [] };
  await measured(ext, srv, res, async (b) => {
    const probe = async (i) => {
      const t = await waitFor(async () => {
        const x = await b.msg('timings');
        return { done: x.instance === i.instance && x.busy?.done, x };
      }, 5000, 100);
      return t.x.busy;
    };
    await srv.ctl('/reset', {});
    const i0 = await b.msg('info');
    res.first_start = await probe(i0);
    await storeWhileDown(b, srv, 'busy');
    for (let i = 0; i < BUSY_WAKES; i++) {
      await b.kill();
      await sleep(300);
      res.wakes.push(await probe(await b.msg('info')));
    }
    const f = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–');
    res.wake_to_ready_ms = median(res.wakes.map((w) => w?.to_ready_ms));
    res.wake_to_settled_ms = median(res.wakes.map((w) => w?.to_settled_ms));
    res.wake_longest_ms = median(res.wakes.map((w) => w?.longest_ms));
    const s = res.first_start ?? {};
    log(`  thread busy (ping probe, slices ≥ 0.2 ms): first start ${f(s.to_ready_ms)} ms until ready (${s.slices_to_ready} slices, longest ${f(s.longest_to_ready_ms)}), ${f(s.to_settled_ms)} ms until ready + 300 ms; wake with ${OPT.coldN} stored ${f(res.wake_to_ready_ms)} ms until ready, ${f(res.wake_to_settled_ms)} ms until ready + 300 ms, longest ${f(res.wake_longest_ms)} (medians of ${BUSY_WAKES})`);
  });
  buildExtension(inst, `${srv.api}/v1/api`);
  return res;
}

// Duplicates per worker stop, against a server that stores every POST (`--no-idempotency` mode,
// switched on through /settings): DUP_N events queued while the server is down, then delivered
// to a server answering after DUP_LATENCY_MS while the worker is stopped DUP_STOPS times
// DUP_GAP_MS apart; duplicates = stored copies − unique events. The same extension then drains
// DUP_N events with no stop and no latency: events/s and storage writes per delivered event.
// `ackBatch` (done-marks per index write) is the policy under test; the curve runs one per value.
async function dupRun(inst, srv, ackBatch) {
  const ext = buildExtension(inst, `${srv.api}/v1/api`, { ackBatch });
  const res = { ack_batch: ackBatch };
  const b = await launch(ext);
  try {
    await srv.ctl('/reset', {});
    await srv.ctl('/settings', { idempotency: false });
    // (a) stops during the drain
    await srv.ctl('/faults', { down: true });
    const run = runId(`dup${ackBatch}`);
    await b.msg('track', { run, n: OPT.dupN });
    await waitFor(async () => { const s = await b.msg('stats'); return { done: s.stats.queued >= OPT.dupN && s.stats.pendingWrite === 0 }; }, 30000, 100);
    res.stopped_before = await b.kill();
    await srv.ctl('/faults', { down: false, latency_ms: OPT.dupLatencyMs });
    await b.msg('stats'); // wakes the worker: the drain starts
    let stops = 0;
    for (let i = 0; i < OPT.dupStops; i++) {
      await sleep(OPT.dupGapMs);
      if ((await srv.run(run)).unique >= OPT.dupN) break;
      if (await b.kill()) stops++;
      await b.msg('stats');
    }
    await drained(b, OPT.drainCapS * 1000);
    await sleep(1000);
    const sv = await srv.run(run);
    Object.assign(res, { stops, unique: sv.unique, stored: sv.stored, duplicates: sv.duplicates, duplicates_per_stop: stops ? sv.duplicates / stops : null });
    // (b) no stop, no latency: the drain's rate and storage writes
    await srv.ctl('/faults', { clear: true });
    await srv.ctl('/faults', { down: true });
    const run2 = runId(`dupdrain${ackBatch}`);
    await b.msg('track', { run: run2, n: OPT.dupN });
    await waitFor(async () => { const s = await b.msg('stats'); return { done: s.stats.queued >= OPT.dupN && s.stats.pendingWrite === 0 }; }, 30000, 100);
    await b.kill();
    await srv.ctl('/faults', { down: false });
    const tWake = Date.now();
    await b.msg('stats');
    await drained(b, OPT.drainCapS * 1000);
    const i = await b.msg('info');
    const sv2 = await srv.run(run2);
    const drainS = sv2.last ? (sv2.last - tWake) / 1000 : null;
    const writes = (i.storage_calls?.set ?? 0) + (i.storage_calls?.remove ?? 0);
    Object.assign(res, { drain_unique: sv2.unique, drain_duplicates: sv2.duplicates, events_per_s: drainS ? sv2.unique / drainS : null, storage_writes: writes, writes_per_event: sv2.unique ? writes / sv2.unique : null });
    log(`  ackBatch ${ackBatch}: ${sv.duplicates} duplicates over ${stops} stops = ${res.duplicates_per_stop?.toFixed(1)} per stop (${sv.unique}/${OPT.dupN} unique); no-stop drain ${res.events_per_s?.toFixed(0)} ev/s, ${writes} storage writes = ${(res.writes_per_event ?? 0).toFixed(3)} per event`);
  } catch (e) {
    res.error = String(e.stack || e);
    log(`  ackBatch ${ackBatch}: ERROR ${res.error}`);
  } finally {
    await b.close();
    await srv.ctl('/faults', { clear: true }).catch(() => {});
    await srv.ctl('/settings', { idempotency: true }).catch(() => {});
  }
  return res;
}

// Drain rate by `concurrency` (init's option, the requests out at once): the extension built with
// `concurrency: c`; CONC_N events queued with the server down, the worker stopped, the server up,
// the worker woken; events/s = unique events the server stored ÷ (last arrival − wake), capped at
// DRAIN_CAP_S. The server honours Idempotency-Key (as in the backlog drain).
async function concRun(inst, srv, c) {
  const ext = buildExtension(inst, `${srv.api}/v1/api`, { concurrency: c });
  const res = { concurrency: c, n: OPT.concN };
  const b = await launch(ext);
  try {
    await srv.ctl('/reset', {});
    await srv.ctl('/faults', { down: true });
    const run = runId(`conc${c}`);
    await b.msg('track', { run, n: OPT.concN });
    const q = await waitFor(async () => { const s = await b.msg('stats'); return { done: s.stats.queued >= OPT.concN && s.stats.pendingWrite === 0, s }; }, 30000, 100);
    res.queued = q.s.stats.queued;
    res.stopped_before = await b.kill();
    await srv.ctl('/reset', {}); // server up, request counts from zero
    const tWake = Date.now();
    const w = await b.msg('stats'); // wakes the worker: the drain starts
    res.restarted = w._instance !== q.s._instance;
    const d = await drained(b, OPT.drainCapS * 1000);
    await sleep(300);
    const sv = await srv.run(run);
    const drainS = sv.last ? (sv.last - tWake) / 1000 : null;
    Object.assign(res, {
      complete: sv.unique >= OPT.concN, unique: sv.unique, duplicates: sv.duplicates, replays: sv.replays,
      drain_s: drainS, events_per_s: drainS ? sv.unique / drainS : null,
      first_arrival_s: sv.first ? (sv.first - tWake) / 1000 : null,
      http_requests: sv.posts, preflights: sv.preflights, status_counts: sv.status_counts,
      delivered: d.s.stats?.delivered ?? null, storage_writes: d.s.stats?.storageWrites ?? null,
    });
    log(`  concurrency ${c}: ${sv.unique}/${OPT.concN} in ${drainS?.toFixed(2)} s = ${res.events_per_s?.toFixed(0)} events/s, ${sv.posts} POSTs, ${sv.duplicates} duplicates${res.complete ? '' : ` (INCOMPLETE within ${OPT.drainCapS} s)`}`);
  } catch (e) {
    res.error = String(e.stack || e);
    log(`  concurrency ${c}: ERROR ${res.error}`);
  } finally {
    await b.close();
    await srv.ctl('/faults', { clear: true, down: false }).catch(() => {});
  }
  return res;
}

// The peer-bench procedure: server failing, 100 track(), 2 s, kill the worker (or not: control),
// server back, wake the worker with a message, wait up to DUR_WAIT_S (stop once all arrived and
// 5 s passed without more); count on the server.
async function durRun(ext, srv, mode, rep, { kill = true } = {}) {
  const res = { mode, rep, kill };
  const b = await launch(ext);
  try {
    await srv.ctl('/reset', {});
    const i0 = await b.msg('info');
    res.instance_before = i0.instance;
    res.first_start = await settledStart(b, i0);
    const run = runId(`dur${mode}`);
    await srv.ctl('/faults', mode === 'refuse' ? { down: true } : { fail_next: { count: 1000000, status: 503 } });
    await b.msg('track', { run, n: OPT.durN });
    await sleep(2000);
    res.arrived_before_kill = (await srv.run(run)).unique;
    if (kill) res.sw_stopped = await b.kill();
    await srv.ctl('/faults', { clear: true, down: false });
    const tUp = Date.now();
    if (kill) {
      const w = await b.msg('info', undefined, 15000).catch((e) => ({ error: String(e.message) }));
      res.instance_after = w.instance;
      res.restarted = !!w.instance && w.instance !== res.instance_before;
    }
    let lastCount = -1, lastChange = Date.now();
    const st = await waitFor(async () => {
      const s = await srv.run(run);
      if (s.unique !== lastCount) { lastCount = s.unique; lastChange = Date.now(); }
      return { done: s.unique >= OPT.durN && Date.now() - lastChange > 5000, s };
    }, OPT.durWaitS * 1000, 500);
    Object.assign(res, { unique: st.s.unique, duplicates: st.s.duplicates, replays: st.s.replays, first_after_up_s: st.s.first ? (st.s.first - tUp) / 1000 : null });
  } catch (e) {
    res.error = String(e.stack || e);
  } finally {
    await srv.ctl('/faults', { clear: true, down: false }).catch(() => {});
    await b.close();
  }
  return res;
}

// ---------------- 4. peers ----------------
function runPeers() {
  const dir = path.join(BENCH, 'peers');
  const penv = {
    ...env,
    REPS: env.REPS || '1', DUR_REPS: env.DUR_REPS || '1', DUR_MODES: OPT.durModes.join(','),
    N: String(OPT.n), DRAIN_CAP_S: String(OPT.drainCapS), DUR_WAIT_S: String(OPT.durWaitS),
    PROBE_WAIT_S: env.PROBE_WAIT_S || '30', NO_EXTRAS: env.NO_EXTRAS ?? '1', OUT: '../out/peers',
  };
  if (!OPT.control) penv.NO_CONTROL = '1';
  const run = (args) => new Promise((resolve) => {
    const c = spawn(process.execPath, args, { cwd: dir, env: penv, stdio: ['ignore', 'pipe', 'inherit'] });
    c.stdout.on('data', (d) => process.stdout.write(String(d).split('\n').filter((l) => l && !l.startsWith('|') && !l.startsWith('#') && !l.startsWith('  -') && !l.startsWith('- ')).map((l) => `[peers] ${l}\n`).join('')));
    c.on('exit', (code) => resolve(code));
  });
  return (async () => {
    if (await run(['build.mjs']) !== 0) return { error: 'peers build.mjs failed' };
    const code = await run(['bench.mjs']);
    const f = path.join(OUT, 'peers.json');
    if (!fs.existsSync(f)) return { error: `peers bench.mjs exited ${code} without results` };
    return JSON.parse(fs.readFileSync(f, 'utf8'));
  })();
}

// ---------------- main ----------------
function chromiumVersion() {
  try { return execFileSync('/usr/bin/chromium', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return 'unknown'; }
}

// Which source the package was built from (others may be editing src/ while the bench runs).
function gitState() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'pkg-template', 'Cargo.toml', 'Cargo.lock'], { cwd: ROOT, encoding: 'utf8' })
      .split('\n').filter(Boolean).map((l) => l.slice(3));
    return { commit, uncommitted_changes: dirty };
  } catch {
    return {};
  }
}

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  const inst = installPackage();
  log(`installed ${path.basename(inst.tgz)} (@inhouse/chrome-tracker@${inst.version}) into bench/out/install`);
  const size = await measureSize(inst);
  log(`size: ${size.check_size.line || size.check_size.error}; peers' method: ${size.entry.gzip9_bytes} B (entry JS ${size.entry.js_gzip9_bytes} + wasm ${size.entry.wasm_gzip9_bytes})`);
  const srv = await startServer();
  process.on('exit', () => srv.stop());
  const ext = buildExtension(inst, `${srv.api}/v1/api`);
  const out = {
    meta: {
      started: new Date(T_START).toISOString(),
      loadavg_start: os.loadavg().map((x) => Math.round(x * 100) / 100),
      host: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, chromium: chromiumVersion(), playwright: require('playwright-core/package.json').version },
      options: OPT, package: { version: inst.version, tarball: path.basename(inst.tgz), ...gitState() },
    },
    ours: { size },
  };
  try {
    // The extension id follows from its path; register the token for it.
    {
      const b = await launch(ext);
      out.meta.extension_id = b.id;
      await b.close();
      await srv.ctl('/tokens', [
        { token_id: TOKEN.id, token_secret: TOKEN.secret, app_id: out.meta.extension_id },
        { token_id: FIREFOX_TOKEN.id, token_secret: FIREFOX_TOKEN.secret, app_id: FIREFOX_APP_ID },
      ]);
    }
    const O = out.ours;
    const step = (k) => OPT.steps.includes(k);
    log(`== ours (@inhouse/chrome-tracker@${inst.version}) in the MV3 service worker, N=${OPT.n}; steps ${OPT.steps.join(', ')}`);
    if (step('perf')) {
      O.perf_runs = [];
      for (let i = 0; i < OPT.reps; i++) O.perf_runs.push(await perfRun(ext, srv, i));
    }
    if (step('cold')) {
      O.cold = await coldStartRun(ext, srv);
      O.busy = await busyRun(inst, srv);
    }
    // The curves rebuild bench/out/ext with their option (same path, so the same extension id
    // and token); the default build is restored after each, before anything else uses it.
    if (step('dup')) {
      log(`== duplicates per worker stop (a server that stores every POST), done-mark batch ${OPT.ackCurve.join(', ')}`);
      O.dup_curve = [];
      for (const k of OPT.ackCurve) O.dup_curve.push(await dupRun(inst, srv, k));
      buildExtension(inst, `${srv.api}/v1/api`);
    }
    if (step('conc')) {
      log(`== drain rate by concurrency ${OPT.concCurve.join(', ')} (${OPT.concN} stored events, worker woken with the server up)`);
      O.conc_curve = [];
      for (const c of OPT.concCurve) O.conc_curve.push(await concRun(inst, srv, c));
      buildExtension(inst, `${srv.api}/v1/api`);
    }
    if (step('memory')) {
      log(`== linear memory under a burst of ${OPT.memoryN.toLocaleString('en')} track() calls in one turn, and a rejected 9 MB string`);
      O.memory_burst = await memoryRun(ext, srv);
    }
    if (step('plan')) {
      log(`== track() with a ${OPT.planEvents}-event tracking plan beside without (${OPT.planN} calls a burst, alternating 5 times)`);
      O.plan = await planRun(ext, srv);
    }
    if (step('firefox')) {
      log(`== ours in Firefox (firefox-esr, the background an event page): first start, track() burst of ${OPT.n}, wake with ${OPT.coldN} stored`);
      const ffExt = firefoxExtension(ext, path.join(OUT, 'ext-firefox'), { baseUrl: `${srv.api}/v1/api`, tokenId: FIREFOX_TOKEN.id, tokenSecret: FIREFOX_TOKEN.secret });
      O.firefox = await firefoxRun(ffExt, srv, OPT, log).catch((e) => {
        log('  Firefox ERROR', String(e.stack || e));
        return { error: String(e.message || e) };
      });
    }
    O.durability = {};
    for (const mode of step('dur') ? OPT.durModes : []) {
      const runs = [];
      for (let i = 0; i < OPT.durReps; i++) {
        const d = await durRun(ext, srv, mode, i);
        runs.push(d);
        log(`  durability[${mode}] ${i}: unique=${d.unique}/${OPT.durN} dups=${d.duplicates} replays=${d.replays} restarted=${d.restarted}${d.sw_stopped === false ? ' (SW stop NOT confirmed)' : ''}${d.error ? ' ERROR ' + d.error : ''}`);
      }
      O.durability[mode] = { runs, unique_median: median(runs.map((d) => d.unique)), duplicates_median: median(runs.map((d) => d.duplicates)) };
    }
    if (OPT.control && step('dur')) {
      O.durability_control = await durRun(ext, srv, 'refuse', 0, { kill: false });
      log(`  control (no kill, refuse): unique=${O.durability_control.unique}/${OPT.durN} dups=${O.durability_control.duplicates}`);
    }
  } finally {
    srv.stop();
  }
  out.meta.ours_s = Math.round((Date.now() - T_START) / 1000);
  fs.writeFileSync(path.join(OUT, 'results.json'), JSON.stringify(out, null, 2));

  if (OPT.peers) {
    log('== peers (bench/peers: the peer-bench harness, same Chromium, same N)');
    const t = Date.now();
    out.peers = await runPeers();
    out.meta.peers_s = Math.round((Date.now() - t) / 1000);
  }
  out.meta.finished = new Date().toISOString();
  out.meta.loadavg_end = os.loadavg().map((x) => Math.round(x * 100) / 100);
  out.meta.total_s = Math.round((Date.now() - T_START) / 1000);
  out.summary = summarize(out);
  fs.writeFileSync(path.join(OUT, 'results.json'), JSON.stringify(out, null, 2));
  // The committed copies (bench/results.json, docs/bench.png) only come from a complete run
  // (every peer measured, every step of ours); partial runs (PEERS=0, ONLY=..., STEPS=...) stay
  // in bench/out/.
  const complete = OPT.peers && !env.ONLY && out.peers && !out.peers.error && STEP_NAMES.every((k) => OPT.steps.includes(k));
  const publish = env.PUBLISH === '1' || (env.PUBLISH !== '0' && complete);
  const summaryJson = JSON.stringify({ meta: out.meta, summary: out.summary }, null, 2) + '\n';
  fs.writeFileSync(path.join(OUT, 'summary.json'), summaryJson);
  if (publish) fs.writeFileSync(path.join(BENCH, 'results.json'), summaryJson);
  const md = renderSummaryMarkdown(out.summary, out.meta);
  fs.writeFileSync(path.join(OUT, 'results.md'), md);
  console.log('\n' + md);
  const png = publish ? path.join(ROOT, 'docs', 'bench.png') : path.join(OUT, 'bench.png');
  try {
    await renderChart(out.summary, out.meta, png, chromium);
    log(`chart: ${path.relative(ROOT, png)}`);
  } catch (e) {
    log('chart failed: ' + (e.stack || e));
  }
  if (!publish) log('partial run: bench/results.json and docs/bench.png left as they were (PUBLISH=1 to overwrite them)');
  log(`done in ${out.meta.total_s} s; bench/out/results.json, bench/out/results.md${publish ? ', bench/results.json' : ''}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
