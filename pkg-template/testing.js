// @inhouse/chrome-tracker/testing: the real tracker for your unit tests in Node (Vitest, Jest,
// node:test). The same wasm as in Chrome, so a bad event name or property fails here exactly as
// it would there; chrome.storage is in memory and nothing goes to the network: what would have
// been sent is recorded, and the server's answers are yours to choose.
import { readFileSync } from 'node:fs';
import { InhouseError, init } from './index.js';

const { useCompiledWasm, createTracker, relayForTesting, wasmMemoryBytes } = init[Symbol.for('@inhouse/chrome-tracker/testing')];

export { InhouseError };

/** The extension id the test tracker runs as (32 letters a–p, like Chrome's). */
export const TEST_EXTENSION_ID = 'abcdefghijklmnopabcdefghijklmnop';
const BASE_URL = 'https://api.tryinhouse.co/v1/api';

let loaded = false;
function loadWasm() {
  if (loaded) return;
  // Node before 22 has no Promise.withResolvers, which the tracker uses (Chrome has it since 119).
  Promise.withResolvers ??= function withResolvers() {
    let resolve;
    let reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
  // The loader's own path (index.js), over the wasm compiled here rather than fetched.
  useCompiledWasm(new WebAssembly.Module(readFileSync(new URL('./inhouse_tracker_bg.wasm', import.meta.url))));
  loaded = true;
}

/** chrome.storage's promise API over a Map: what the tracker stores, in memory. */
function memoryArea() {
  const data = new Map();
  const pick = (keys) => {
    if (keys === null || keys === undefined) return Object.fromEntries(data);
    const list = Array.isArray(keys) ? keys : [keys];
    return Object.fromEntries(list.filter((k) => data.has(k)).map((k) => [k, data.get(k)]));
  };
  return {
    data,
    get: async (keys) => pick(keys),
    getKeys: async () => [...data.keys()],
    set: async (values) => {
      for (const [k, v] of Object.entries(values)) data.set(k, v);
    },
    remove: async (keys) => {
      for (const k of Array.isArray(keys) ? keys : [keys]) data.delete(k);
    },
    clear: async () => data.clear(),
  };
}

/** The pieces of `chrome` the tracker uses, for one test tracker. */
function fakeChrome(version) {
  const alarms = new Map();
  return {
    runtime: {
      id: TEST_EXTENSION_ID,
      getManifest: () => ({ manifest_version: 3, name: 'test', version, action: { default_popup: 'popup.html' }, options_ui: { page: 'options.html' } }),
      getPlatformInfo: async () => ({ os: 'test', arch: 'x86-64' }),
      setUninstallURL: async () => {},
    },
    storage: { local: memoryArea(), session: memoryArea() },
    alarms: {
      create: async (name, info) => void alarms.set(name, { name, ...info }),
      get: async (name) => alarms.get(name),
      clear: async (name) => alarms.delete(name),
    },
    i18n: { getUILanguage: () => 'en-US' },
  };
}

let current = null;
/**
 * Bumped at each trap: the wasm instance every callback, timer and storage or fetch answer
 * created before it belongs to is gone (a disposed test tracker's too).
 */
let generation = 0;

/**
 * Ends the current test tracker (call it after each test): stops it, forgets what it stored and
 * sent, and restores `globalThis.chrome` and `fetch`.
 */
export async function reset() {
  const t = current;
  current = null;
  if (t) await t.dispose();
}

/**
 * Creates the test tracker (one at a time: `await reset()` after each test): `track`, `identify`,
 * ... as in the background, `client` as in a popup (`client.track(...)`), `sent()` (every event
 * that reached the fake server, with its `$` properties), `respondWith(status, {retryAfter})`,
 * and `stored()` (chrome.storage.local).
 */
export function createTestTracker(options = {}) {
  loadWasm();
  if (current) {
    // Both would share the globals the tracker reads (chrome, fetch).
    throw new InhouseError('INVALID_OPTION', 'a test tracker already runs: await reset() (after each test) before creating another');
  }
  const { version = '1.0.0', ...trackerOptions } = options;
  const chrome = fakeChrome(version);
  const saved = { chrome: globalThis.chrome, fetch: globalThis.fetch, setTimeout: globalThis.setTimeout, queueMicrotask: globalThis.queueMicrotask };
  // After a trap (an SDK bug), the loader rebuilds the tracker on a fresh instance of the wasm;
  // the discarded instance's timers, microtasks and pending storage and fetch answers must not
  // call into it (they would throw "Cannot invoke closure from previous WASM instance", an
  // uncaught error in Node). Each is tied to the instance that asked for it, and dropped after.
  // A callback queued by the discarded instance in the moment between its trap and the rebuild
  // (an answer already on its way) carries the new generation: the glue refuses to run it, and
  // that refusal is dropped too.
  const current_ = () => generation;
  const runIfCurrent = (gen, fn, args) => {
    if (gen !== current_()) return;
    try {
      fn(...args);
    } catch (e) {
      if (!/previous WASM instance/.test(e?.message)) throw e;
    }
  };
  globalThis.setTimeout = (fn, ms, ...args) => {
    const gen = current_();
    return saved.setTimeout(() => runIfCurrent(gen, fn, args), ms);
  };
  globalThis.queueMicrotask = (fn) => {
    const gen = current_();
    saved.queueMicrotask(() => runIfCurrent(gen, fn, []));
  };
  const ours = (promise) => {
    const gen = current_();
    return promise.then((v) => (gen === current_() ? v : new Promise(() => {})), (e) => (gen === current_() ? Promise.reject(e) : new Promise(() => {})));
  };
  for (const area of [chrome.storage.local, chrome.storage.session]) {
    for (const op of ['get', 'getKeys', 'set', 'remove', 'clear']) {
      const real = area[op];
      area[op] = (...args) => ours(real(...args));
    }
  }
  for (const [api, ops] of [[chrome.alarms, ['create', 'get', 'clear']], [chrome.runtime, ['getPlatformInfo', 'setUninstallURL']]]) {
    for (const op of ops) {
      const real = api[op];
      api[op] = (...args) => ours(real(...args));
    }
  }
  const requests = [];
  let answer = { status: 200, retryAfter: undefined };
  globalThis.chrome = chrome;
  globalThis.fetch = (request) => ours(answerRequest(request));
  const answerRequest = async (request) => {
    const body = await request.text();
    const headers = Object.fromEntries(request.headers.entries());
    let parsed;
    try {
      parsed = JSON.parse(body);
    } catch {
      parsed = null;
    }
    const { status, retryAfter } = answer;
    requests.push({ url: request.url, headers, body: parsed, status });
    const responseHeaders = retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) };
    return new Response(status === 204 ? null : JSON.stringify(status < 300 ? { status: 'ok' } : { error: 'test', message: `answered ${status} by respondWith()` }), { status, headers: responseHeaders });
  };
  let tracker;
  try {
    tracker = createTracker({ tokenId: 'test_token', tokenSecret: 'test_secret', baseUrl: BASE_URL, ...trackerOptions }, { onTrap: () => generation++ });
  } catch (e) {
    Object.assign(globalThis, saved);
    throw e;
  }
  const sender = (path) => ({ id: TEST_EXTENSION_ID, url: `chrome-extension://${TEST_EXTENSION_ID}/${path}`, origin: `chrome-extension://${TEST_EXTENSION_ID}` });
  const popup = sender('popup.html');
  // What /client sends, answered the way the background answers it (its errors as InhouseErrors).
  const relay = (msg) => relayForTesting(tracker, msg, popup);
  const test = {
    ready: tracker.ready,
    track: (name, properties, opts) => tracker.track(name, properties, opts),
    identify: (userId, traits) => tracker.identify(userId, traits),
    register: (properties) => tracker.register(properties),
    unregister: (key) => tracker.unregister(key),
    reset: () => tracker.reset(),
    page: (name, properties) => tracker.page(name, properties),
    captureException: (error, properties) => tracker.captureException(error, properties),
    setEnabled: (enabled, opts) => tracker.setEnabled(enabled, opts),
    setCredentials: (credentials) => tracker.setCredentials(credentials),
    isEnabled: () => tracker.isEnabled(),
    identity: () => tracker.identity(),
    stats: () => tracker.stats(),
    flush: () => tracker.flush(),
    /** The `/client` entry, as your popup uses it (Chrome's sender: the popup). */
    client: {
      track: (eventName, properties, options) => relay({ op: 'track', eventName, properties, options }),
      page: (name, properties) => relay({ op: 'page', name, properties }),
      captureException: (error, properties) => relay({ op: 'captureException', error, properties }),
      identify: (userId, traits) => relay({ op: 'identify', userId, traits }),
      register: (properties) => relay({ op: 'register', properties }),
      unregister: (key) => relay({ op: 'unregister', key }),
      reset: () => relay({ op: 'reset' }),
      identity: () => relay({ op: 'identity' }),
      setEnabled: (enabled, opts) => relay({ op: 'setEnabled', enabled, purge: opts?.purge }),
      isEnabled: () => relay({ op: 'isEnabled' }),
      stats: () => relay({ op: 'stats' }),
      // A page's flush() never ends a wait after network errors (as in /client).
      flush: () => relay({ op: 'flush' }),
    },
    /** Every event the fake server received: `{eventName, properties, headers, status}`. */
    sent: () => requests.map((r) => ({ eventName: r.body?.event_name, properties: r.body?.properties, headers: r.headers, status: r.status })),
    /** How the fake server answers from now on (200 by default): `respondWith(503, {retryAfter: 1})`. */
    respondWith(status, { retryAfter } = {}) {
      answer = { status, retryAfter };
    },
    /** What the tracker keeps in chrome.storage.local. */
    stored: () => Object.fromEntries(chrome.storage.local.data),
    /** Stops the tracker and restores `globalThis.chrome` and `fetch`. */
    async dispose() {
      await tracker.shutdown().catch(() => {});
      Object.assign(globalThis, saved);
    },
    /** @internal for the loader's tests: makes the wasm trap, as a bug would. */
    _trapForTests: () => tracker._trapForTests(),
    /** @internal the wasm's linear memory in bytes. */
    _wasmMemoryBytes: () => wasmMemoryBytes(),
  };
  current = test;
  return test;
}
