// A stand-in for the extension APIs inside a plain `wasm-pack test` page or worker, where
// `chrome` does not exist. It behaves like chrome.storage.local where it matters (values are
// copied through JSON, one set() applies all its keys, a write can be made to fail with the
// quota message). The same behaviour is covered for real by tests/e2e in Chromium.
export function installFakeChrome(runtimeId) {
  const data = new Map();
  const calls = { get: 0, set: 0, remove: 0 };
  const clone = (v) => JSON.parse(JSON.stringify(v));
  const local = {
    failNextSets: 0,
    async get(keys) {
      calls.get++;
      const list = keys == null ? [...data.keys()] : [].concat(keys);
      const out = {};
      for (const k of list) if (data.has(k)) out[k] = clone(data.get(k));
      return out;
    },
    async set(items) {
      calls.set++;
      if (local.failNextSets > 0) {
        local.failNextSets--;
        throw new Error('QUOTA_BYTES quota exceeded');
      }
      for (const [k, v] of Object.entries(items)) data.set(k, clone(v));
    },
    async remove(keys) {
      calls.remove++;
      for (const k of [].concat(keys)) data.delete(k);
    },
    async getKeys() {
      return [...data.keys()];
    },
  };
  const alarms = {
    created: [],
    async create(name, info) {
      alarms.created.push({ name, when: info.when });
    },
    async clear() {
      return true;
    },
  };
  const runtime = runtimeId ? { id: runtimeId, getManifest: () => ({ version: '9.9.9' }) } : undefined;
  globalThis.chrome = { storage: { local }, alarms, runtime };
  return { data, calls, local, alarms };
}

export function removeFakeChrome() {
  delete globalThis.chrome;
}

export function storedKeys(fake) {
  return [...fake.data.keys()].sort();
}

export function storedText(fake) {
  return JSON.stringify([...fake.data.entries()]);
}

export function setCalls(fake) {
  return fake.calls.set;
}

export function failNextSets(fake, n) {
  fake.local.failNextSets = n;
}

export function alarmCount(fake) {
  return fake.alarms.created.length;
}

// Local Inhouse server control (CORS-enabled), used by the transport and API tests.
export async function control(base, path, body) {
  const init = body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
  const res = await fetch(base + path, init);
  return res.json();
}

// Drives the exported class the way JavaScript does (camelCase methods, promises).
export async function driveTracker(t) {
  const bad = await t.track('bad name!', {}).then(() => null, (e) => e);
  const nan = await t.track('ok_name', { a: { b: [1, NaN] } }).then(() => null, (e) => e);
  const results = await Promise.all([...Array(50).keys()].map((i) => t.track('js_event', { i })));
  const stats = t.stats();
  return {
    badCode: bad && bad.code,
    badField: bad && bad.field,
    badName: bad && bad.name,
    nanCode: nan && nan.code,
    nanField: nan && nan.field,
    statuses: [...new Set(results.map((r) => r.status))],
    ids: results.map((r) => r.id),
    queued: stats.queued,
  };
}

export function hasWindow() {
  return typeof globalThis.window !== 'undefined';
}

// chrome.storage.local as Chrome 119–129 has it: no getKeys().
export function removeGetKeys(fake) {
  delete fake.local.getKeys;
}

// Stores `value` under `key` directly (damaged or foreign data).
export function storeRaw(fake, key, value) {
  fake.data.set(key, value);
}
