// @inhouse/chrome-tracker/testing: the real tracker for your unit tests in Node (Vitest, Jest,
// node:test). The same wasm as in Chrome, so a bad event name or property fails here exactly as
// it would there; chrome.storage is in memory and nothing goes to the network: what would have
// been sent is recorded, and the server's answers are yours to choose.
import { readFileSync } from 'node:fs';
import { initSync, Tracker as WasmTracker, useErrorClass } from './inhouse_tracker.js';
import { InhouseError } from './index.js';

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
  initSync({ module: readFileSync(new URL('./inhouse_tracker_bg.wasm', import.meta.url)) });
  useErrorClass(InhouseError);
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
  const saved = { chrome: globalThis.chrome, fetch: globalThis.fetch };
  const requests = [];
  let answer = { status: 200, retryAfter: undefined };
  globalThis.chrome = chrome;
  globalThis.fetch = async (request) => {
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
  let wasm;
  try {
    wasm = new WasmTracker({ tokenId: 'test_token', tokenSecret: 'test_secret', baseUrl: BASE_URL, ...trackerOptions });
  } catch (e) {
    Object.assign(globalThis, saved);
    throw e;
  }
  const sender = (path) => ({ id: TEST_EXTENSION_ID, url: `chrome-extension://${TEST_EXTENSION_ID}/${path}`, origin: `chrome-extension://${TEST_EXTENSION_ID}` });
  const popup = sender('popup.html');
  const tracker = {
    ready: wasm.ready(),
    track: (name, properties, opts) => wasm.track(name, properties, opts),
    identify: (userId, traits) => wasm.identify(userId, traits, undefined),
    register: (properties) => wasm.register(properties),
    unregister: (key) => wasm.unregister(key),
    reset: () => wasm.reset(),
    page: (name, properties) => wasm.page(name, undefined, properties, undefined),
    captureException: (error, properties) => wasm.captureException(error, properties, undefined),
    setEnabled: (enabled, opts) => wasm.setEnabled(!!enabled, !!opts?.purge),
    isEnabled: async () => wasm.isEnabled(),
    identity: async () => wasm.identity(),
    stats: async () => wasm.stats(),
    flush: () => wasm.flush(true),
    /** The `/client` entry, as your popup uses it (Chrome's sender: the popup). */
    client: {
      track: (name, properties, opts) => wasm.trackFrom(name, properties, opts, popup),
      page: (name, properties) => wasm.page(name, undefined, properties, popup),
      captureException: (error, properties) => wasm.captureException(error, properties, popup),
      identify: (userId, traits) => wasm.identify(userId, traits, popup),
      register: (properties) => wasm.register(properties),
      unregister: (key) => wasm.unregister(key),
      reset: () => wasm.reset(),
      identity: async () => wasm.identity(),
      setEnabled: (enabled, opts) => wasm.setEnabled(!!enabled, !!opts?.purge),
      isEnabled: async () => wasm.isEnabled(),
      stats: async () => wasm.stats(),
      // A page's flush() never ends a wait after network errors (as in /client).
      flush: () => wasm.flush(false),
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
      await wasm.shutdown().catch(() => {});
      Object.assign(globalThis, saved);
    },
  };
  current = tracker;
  return tracker;
}
