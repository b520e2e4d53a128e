// Evaluated first (sw.js imports it before the SDK): the "worker script start" mark of the
// cold-start figure, and counters around chrome.storage.local (counts only; calls pass through).
import CONFIG from './config.js';

globalThis.__t0 = performance.now();
globalThis.__t0_wall = Date.now();

// CONFIG.busyProbe: how long the worker's thread is busy during a start, seen from outside the
// SDK. A MessageChannel ping-pong runs from t0: an idle thread answers a ping in about 10 µs, so
// a gap of BUSY_SLICE_MS or more between two answers is a task (with its microtasks) that held
// the thread: the SDK's module evaluation, the wasm's instantiation, the constructor, the
// start's continuations, a garbage collection. Shorter gaps are the probe's own jitter (thousands
// of them, about 0.1 ms each) and are left out. Summed over the slices that begin before `ready`,
// and before `ready` + BUSY_AFTER_MS (what the start does next: the stored queue's load, the
// automatic events, the first send), with the longest. The probe keeps the thread spinning, so
// the timed figures come from starts without it.
const BUSY_SLICE_MS = 0.2;
const BUSY_AFTER_MS = 300;
if (CONFIG.busyProbe) {
  const P = (globalThis.__busy = { to_ready_ms: 0, longest_to_ready_ms: 0, slices_to_ready: 0, to_settled_ms: 0, longest_ms: 0, done: false });
  const channel = new MessageChannel();
  let last = performance.now();
  channel.port1.onmessage = () => {
    const now = performance.now();
    const gap = now - last;
    const began = last;
    last = now;
    const readyAt = globalThis.__bench?.ready_at;
    if (gap >= BUSY_SLICE_MS) {
      if (readyAt === undefined || began < readyAt) {
        P.to_ready_ms += gap;
        P.slices_to_ready++;
        P.longest_to_ready_ms = Math.max(P.longest_to_ready_ms, gap);
      }
      if (readyAt === undefined || began < readyAt + BUSY_AFTER_MS) {
        P.to_settled_ms += gap;
        P.longest_ms = Math.max(P.longest_ms, gap);
      }
    }
    if (readyAt !== undefined && now > readyAt + BUSY_AFTER_MS) {
      P.done = true;
      channel.port1.close();
      return;
    }
    channel.port2.postMessage(0);
  };
  channel.port2.postMessage(0);
}
const S = (globalThis.__storageCounts = { set: 0, remove: 0, get: 0, getKeys: 0, setBytes: 0 });
const T = (globalThis.__storageTimes = []);
try {
  const area = chrome.storage.local;
  // getKeys: the start's listing of the stored segments when no index is stored (a first start).
  for (const m of ['set', 'remove', 'get', 'getKeys']) {
    const f = area[m];
    if (typeof f !== 'function') continue;
    area[m] = function (arg, ...rest) {
      S[m]++;
      if (m === 'set') {
        try { for (const k in arg) S.setBytes += k.length + (typeof arg[k] === 'string' ? arg[k].length : JSON.stringify(arg[k]).length); } catch { /* ignore */ }
      }
      const r = f.call(this, arg, ...rest);
      // When each of the first calls started and settled (ms from t0): the cold-start breakdown.
      if (T.length < 8 && r && typeof r.then === 'function') {
        const rec = { m, start: performance.now() - globalThis.__t0 };
        T.push(rec);
        r.then(() => { rec.end = performance.now() - globalThis.__t0; }, () => {});
      }
      return r;
    };
  }
} catch (e) {
  globalThis.__instrumentError = String(e);
}

// The loading of the wasm (its fetch and compile), for the same breakdown.
const L = (globalThis.__loadTimes = []);
const since = () => performance.now() - globalThis.__t0;
const timed = (m, r) => {
  const rec = { m, start: since() };
  L.push(rec);
  r.then(() => { rec.end = since(); }, () => {});
  return r;
};
const realFetch = globalThis.fetch;
globalThis.fetch = function (input, ...rest) {
  const r = realFetch.call(this, input, ...rest);
  return L.length < 4 && String(input).endsWith('.wasm') ? timed('fetch wasm', r) : r;
};
const realCompile = WebAssembly.compile;
WebAssembly.compile = function (...args) {
  return timed('compile', realCompile.apply(this, args));
};
const realCompileStreaming = WebAssembly.compileStreaming;
WebAssembly.compileStreaming = function (...args) {
  return timed('compileStreaming', realCompileStreaming.apply(this, args));
};
const RealInstance = WebAssembly.Instance;
WebAssembly.Instance = function (...args) {
  const rec = { m: 'instantiate', start: since() };
  L.push(rec);
  const inst = new RealInstance(...args);
  rec.end = since();
  return inst;
};
WebAssembly.Instance.prototype = RealInstance.prototype;
try {
  const realManifest = chrome.runtime.getManifest;
  chrome.runtime.getManifest = function () {
    const rec = { m: 'getManifest', start: since() };
    if (L.length < 8) L.push(rec);
    const r = realManifest.call(this);
    rec.end = since();
    return r;
  };
} catch { /* not an extension context */ }

// The other extension APIs a start may wait on (the session area, the platform, the daily
// alarm): when each of the first calls started and settled, for the same breakdown.
const A = (globalThis.__apiTimes = []);
const wrapAsync = (obj, m, label) => {
  const f = obj?.[m];
  if (typeof f !== 'function') return;
  obj[m] = function (...args) {
    const start = since();
    const r = f.apply(this, args);
    if (A.length < 8 && r && typeof r.then === 'function') {
      const rec = { m: label, start };
      A.push(rec);
      r.then(() => { rec.end = since(); }, () => { rec.end = since(); });
    }
    return r;
  };
};
try {
  wrapAsync(chrome.storage.session, 'get', 'storage.session.get');
  wrapAsync(chrome.storage.session, 'set', 'storage.session.set');
  wrapAsync(chrome.runtime, 'getPlatformInfo', 'runtime.getPlatformInfo');
  wrapAsync(chrome.alarms, 'get', 'alarms.get');
} catch (e) {
  globalThis.__instrumentError ??= String(e);
}
