// The demo's settings store: the Inhouse server URL and credentials the options page saves.
//
// IndexedDB of the extension's own origin, not chrome.storage.local: it persists across browser
// restarts, only the extension's pages and service worker can open it (content scripts run in the
// web page's origin and cannot), and the token secret must never land in chrome.storage.local,
// which content scripts can read.

const DB_NAME = 'inhouse-demo';
const STORE = 'settings';
const KEY = 'connection';

function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function withStore(mode, fn) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** The saved connection `{baseUrl, tokenId, tokenSecret}`, or null. */
export function loadSaved() {
  return withStore('readonly', (s) => s.get(KEY)).then((v) => v ?? null);
}

/** Saves the connection; the background picks it up on a 'reconfigure' message. */
export function save(connection) {
  const { baseUrl, tokenId, tokenSecret } = connection;
  return withStore('readwrite', (s) => s.put({ baseUrl, tokenId, tokenSecret, savedAt: Date.now() }, KEY));
}

/** Forgets the saved connection (the packaged demo-config.json applies again). */
export function clear() {
  return withStore('readwrite', (s) => s.delete(KEY));
}

/** The packaged defaults written by the demo's build (server URL and development credentials). */
export async function loadDefaults() {
  try {
    const res = await fetch(chrome.runtime.getURL('demo-config.json'));
    return res.ok ? await res.json() : null;
  } catch {
    return null;
  }
}

/** Saved settings, falling back field by field to demo-config.json. */
export async function loadConnection() {
  const [saved, defaults] = await Promise.all([loadSaved().catch(() => null), loadDefaults()]);
  const pick = (k) => (saved && saved[k]) || (defaults && defaults[k]) || '';
  return {
    baseUrl: pick('baseUrl'),
    tokenId: pick('tokenId'),
    tokenSecret: pick('tokenSecret'),
    source: saved ? 'options' : defaults ? 'demo-config.json' : 'none',
    debug: Boolean(defaults && defaults.debug), // the SDK's own delivery log (never the secret)
    // More tracker options from demo-config.json (the tests set a short sessionTimeoutMs).
    options: (defaults && defaults.options) || {},
    // The tracking plan (./plan.js), unless demo-config.json says `"plan": false`.
    plan: !(defaults && defaults.plan === false),
  };
}
