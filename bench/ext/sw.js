// The bench extension's background service worker. It uses the package exactly as a customer
// does (vendor/chrome-tracker/ is copied from an npm install of the packed tarball), and answers
// the driver's requests (bench/run.mjs) sent as runtime messages from the helper page, so the
// same protocol works for every worker instance, including one just woken after a kill.
import './t0.js'; // first: the start mark and the storage counters
import { init } from './vendor/chrome-tracker/index.js';
import initGlue from './vendor/chrome-tracker/inhouse_tracker.js';
import CONFIG from './config.js';

const SEG_PREFIX = 'inhouse:v1:seg:';
// The ids of the events a stored segment holds. Two layouts have existed: a JSON array of
// {i, n, p}, and one line per event, `id<TAB>name<TAB>properties`.
function segmentIds(text) {
  if (text.startsWith('[')) return JSON.parse(text).map((ev) => ev.i);
  return text.split('\n').filter(Boolean).map((line) => {
    const tab = line.indexOf('\t');
    if (tab < 1) throw new Error('unknown segment layout');
    return line.slice(0, tab);
  });
}
const B = (globalThis.__bench = {
  body_start: performance.now() - globalThis.__t0, // the SDK's modules are evaluated by now
  instance: Math.random().toString(36).slice(2, 10),
  t0: globalThis.__t0,
  t0_wall: globalThis.__t0_wall,
  errors: [],
  burst: null,
  firstSeen: new Map(), // event id -> performance.now() when a committed storage change held it
  watching: false,
});
addEventListener('error', (e) => B.errors.length < 20 && B.errors.push('error: ' + e.message));
addEventListener('unhandledrejection', (e) => B.errors.length < 20 && B.errors.push('unhandledrejection: ' + String(e.reason?.message ?? e.reason)));

const options = (extra = {}) => ({
  tokenId: CONFIG.tokenId,
  tokenSecret: CONFIG.tokenSecret,
  baseUrl: CONFIG.baseUrl,
  // 10,000 events with their context ($install_id, $session_id, $browser, ...) are about 4.8 MB
  // stored, past the default 4 MiB: the bench measures speed, not eviction.
  maxQueueBytes: 8 * 1024 * 1024,
  // The drain-rate-by-concurrency curve (bench/run.mjs) sets it; the SDK's default otherwise.
  ...(CONFIG.concurrency ? { concurrency: CONFIG.concurrency } : {}),
  onError: (e) => B.errors.length < 20 && B.errors.push(`onError ${e.code}`),
  ...extra,
});
let tracker = init(options());
// The done-mark policy under test (bench/run.mjs's duplicates curve); the SDK's default otherwise.
if (CONFIG.ackBatch) tracker._tune({ ackBatch: CONFIG.ackBatch });
B.readyP = tracker.ready.then(
  () => { B.ready_at = performance.now(); },
  (e) => { B.ready_at = performance.now(); B.errors.push(`ready failed: ${e.code} ${e.message}`); },
);

// chrome.storage.onChanged fires after Chrome committed a write: the independent witness of
// durability (segment values are JSON arrays of {i: id, n: name, p: properties}).
chrome.storage.onChanged.addListener((changes, area) => {
  if (area !== 'local' || !B.watching) return;
  const now = performance.now();
  for (const [k, c] of Object.entries(changes)) {
    if (!k.startsWith(SEG_PREFIX) || typeof c.newValue !== 'string') continue;
    try {
      for (const id of segmentIds(c.newValue)) if (!B.firstSeen.has(id)) B.firstSeen.set(id, now);
    } catch (e) {
      B.errors.push('unparsable segment ' + k);
    }
  }
});

async function wasmMemoryBytes() {
  // The glue's default export returns the instance's exports once initialised (the same module
  // instance the SDK loaded); exports.memory is the linear memory.
  const w = await initGlue();
  return w.memory.buffer.byteLength;
}

// The SDK's own User Timing marks of its start (`inhouse:<phase>`, performance.mark()), in time
// order, ms from t0 (the names are the SDK's; the bench takes whatever it finds).
function inhouseMarks() {
  return performance.getEntriesByType('mark')
    .filter((e) => e.name.startsWith('inhouse:'))
    .map((e) => ({ name: e.name, at: e.startTime - B.t0 }))
    .sort((a, b) => a.at - b.at);
}

// This worker's start: t0 → ready, and where the time went (ms from t0). The driver asks again
// (`timings`) a moment after `info`, for what settles after `ready` (the stored queue's load).
function timings() {
  return {
    instance: B.instance,
    t0_ms: B.t0,
    ready_from_t0_ms: B.ready_at - B.t0,
    ready_from_worker_origin_ms: B.ready_at,
    phases: {
      body_start_ms: B.body_start, load: globalThis.__loadTimes.slice(0, 6),
      storage: globalThis.__storageTimes.slice(0, 8), api: (globalThis.__apiTimes ?? []).slice(0, 8),
    },
    marks: inhouseMarks(),
    busy: globalThis.__busy ?? null,
  };
}

async function info() {
  await B.readyP;
  const stats = await tracker.stats().catch((e) => ({ error: String(e.message) }));
  const wasmMemory = await wasmMemoryBytes().catch((e) => 'error: ' + e.message);
  return {
    ...timings(),
    stats,
    storage_calls: { ...globalThis.__storageCounts },
    wasm_memory_bytes: wasmMemory,
    instrument_error: globalThis.__instrumentError ?? null,
    errors: B.errors.slice(0, 10),
  };
}

function burst(run, n) {
  B.firstSeen.clear();
  B.watching = true;
  const promises = new Array(n);
  const wall = Date.now();
  const t = performance.now();
  for (let i = 0; i < n; i++) {
    promises[i] = tracker.track('bench_event', { bench_run: run, bench_seq: i, plan: 'pro', n: i % 7, ok: true });
  }
  const loopMs = performance.now() - t;
  const b = (B.burst = { run, n, wall_start: wall, t_start: t, loop_ms: loopMs, us_per_call: (loopMs * 1000) / n, resolved: false });
  Promise.allSettled(promises).then((rs) => {
    b.all_resolved_ms = performance.now() - t;
    b.ids = rs.map((r) => (r.status === 'fulfilled' ? r.value.id : null));
    b.statuses = {};
    for (const r of rs) {
      const k = r.status === 'fulfilled' ? r.value.status : 'rejected:' + (r.reason?.code ?? r.reason);
      b.statuses[k] = (b.statuses[k] || 0) + 1;
    }
    b.resolved = true;
  });
  return { wall_start: wall, loop_ms: loopMs, us_per_call: b.us_per_call };
}

function burstStatus() {
  const b = B.burst;
  if (!b) return null;
  const out = { run: b.run, n: b.n, loop_ms: b.loop_ms, us_per_call: b.us_per_call, resolved: b.resolved, all_resolved_ms: b.all_resolved_ms ?? null, statuses: b.statuses ?? null };
  if (b.resolved) {
    let seen = 0;
    let last = 0;
    for (const id of b.ids) {
      const at = id && B.firstSeen.get(id);
      if (at !== undefined && at !== null && at !== false) { seen++; if (at > last) last = at; }
    }
    out.seen_in_storage_changes = seen;
    out.durable_ms = seen === b.n ? last - b.t_start : null;
  }
  return out;
}

// Reads chrome.storage.local itself and counts what the queue holds there.
async function verifyStorage() {
  const all = await chrome.storage.local.get(null);
  const enc = new TextEncoder();
  let segments = 0, events = 0, segBytes = 0, otherBytes = 0, ofBurst = 0;
  const ids = new Set(B.burst?.ids ?? []);
  for (const [k, v] of Object.entries(all)) {
    const bytes = enc.encode(k).length + enc.encode(typeof v === 'string' ? v : JSON.stringify(v)).length;
    if (k.startsWith(SEG_PREFIX)) {
      segments++; segBytes += bytes;
      for (const id of segmentIds(v)) { events++; if (ids.has(id)) ofBurst++; }
    } else otherBytes += bytes;
  }
  return { keys: Object.keys(all).length, segments, events, of_burst: ofBurst, segment_bytes: segBytes, other_bytes: otherBytes };
}

// A tracking plan of `events` events shaped like the bench's event (bench_event is one of them).
function benchPlan(events) {
  const properties = { bench_run: 'string', bench_seq: 'number', plan: { enum: ['free', 'pro'] }, n: 'number', ok: 'boolean' };
  const plan = { bench_event: { properties } };
  for (let i = 1; i < events; i++) plan[`bench_event_${i}`] = { properties };
  return plan;
}

// track() with a plan of `events` events beside without, in this worker, alternating `rounds`
// times (a new tracker each time, the same storage): µs per call until track() returns, and until
// every call's promise settled.
async function planBurst({ n, events, rounds }) {
  const plan = benchPlan(events);
  const out = { n, events, without: [], with: [] };
  for (let r = 0; r < rounds * 2; r++) {
    const planned = r % 2 === 1;
    await tracker.shutdown();
    tracker = init(options(planned ? { plan, planMode: 'reject' } : {}));
    await tracker.ready;
    const promises = new Array(n);
    const t = performance.now();
    for (let i = 0; i < n; i++) promises[i] = tracker.track('bench_event', { bench_run: 'plan', bench_seq: i, plan: 'pro', n: i % 7, ok: true });
    const us = ((performance.now() - t) * 1000) / n;
    // The calls of one turn are handed to the wasm together after it: the plan is checked there,
    // so the whole cost shows in the time until every promise settled (once stored).
    const settled = await Promise.allSettled(promises);
    const settledUs = ((performance.now() - t) * 1000) / n;
    const statuses = {};
    for (const p of settled) {
      const k = p.status === 'fulfilled' ? p.value.status : `rejected:${p.reason?.code}`;
      statuses[k] = (statuses[k] ?? 0) + 1;
    }
    (planned ? out.with : out.without).push({ us_per_call: us, settled_us_per_call: settledUs, statuses, plan_violations: (await tracker.stats()).planViolations });
  }
  return out;
}

// Linear memory under a burst of `n` track() calls in one turn (issue 26): the wasm's memory
// before, after every promise settled (linear memory never shrinks: the peak), the queue's bytes
// it kept; then a rejected `bigString`-character string property, which must not be copied in.
async function memoryBurst({ n, bigString }) {
  const before = await wasmMemoryBytes();
  const promises = new Array(n);
  for (let i = 0; i < n; i++) promises[i] = tracker.track('bench_event', { bench_run: 'memory', bench_seq: i, plan: 'pro', n: i % 7, ok: true });
  const statuses = {};
  for (const p of await Promise.allSettled(promises)) {
    const k = p.status === 'fulfilled' ? p.value.status : `rejected:${p.reason?.code}`;
    statuses[k] = (statuses[k] ?? 0) + 1;
  }
  const after = await wasmMemoryBytes();
  const stats = await tracker.stats();
  const big = 'x'.repeat(bigString);
  const rejected = await tracker.track('bench_event', { big }).then((r) => r.status, (e) => e.code);
  const afterBig = await wasmMemoryBytes();
  return { n, before, after, statuses, queued: stats.queued, bytes_stored: stats.bytesStored, big_string: bigString, big_string_outcome: rejected, after_big_string: afterBig };
}

const OPS = {
  memoryBurst,
  planBurst,
  info,
  timings,
  burst: ({ run, n }) => burst(run, n),
  burstStatus,
  verifyStorage,
  track: ({ run, n }) => { // untimed small loop (durability runs)
    for (let i = 0; i < n; i++) tracker.track('bench_event', { bench_run: run, bench_seq: i, plan: 'pro', n: i % 7, ok: true }).catch((e) => B.errors.push('track: ' + e.code));
    return { ok: true };
  },
  stopWatching: () => { B.watching = false; B.firstSeen.clear(); return true; },
  stats: async () => ({ instance: B.instance, stats: await tracker.stats(), storage_calls: { ...globalThis.__storageCounts } }),
};

chrome.runtime.onMessage.addListener((msg, _sender, sendResponse) => {
  if (!msg || msg.type !== 'bench') return false;
  B.readyP
    .then(() => OPS[msg.op](msg.arg ?? {}))
    .then((result) => sendResponse({ ok: true, instance: B.instance, result }), (e) => sendResponse({ ok: false, instance: B.instance, error: String(e?.stack ?? e) }));
  return true;
});
