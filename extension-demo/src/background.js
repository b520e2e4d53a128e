// The demo's background service worker: it owns the tracker, as the package requires.
// Everything else (popup, options page, content script) tracks through ./vendor/inhouse/client.js,
// which relays to this worker by message; the token secret never leaves it.
import { init } from './vendor/inhouse/index.js';
import { loadConnection } from './settings.js';
import { DEMO_PLAN } from './plan.js';

const EXTENSION_ORIGIN = new URL(chrome.runtime.getURL('')).origin;

let tracker = null;
let connection = null; // {baseUrl, tokenId, source}: what the tracker runs with (secret kept out)
const recent = []; // last hook calls, for the popup and for tests (never the secret)

function remember(kind, detail) {
  recent.push({ kind, at: Date.now(), ...detail });
  if (recent.length > 50) recent.shift();
}

function start(conn, overrides = {}) {
  connection = { baseUrl: conn.baseUrl, tokenId: conn.tokenId, source: conn.source };
  tracker = init({
    tokenId: conn.tokenId,
    tokenSecret: conn.tokenSecret,
    ...(conn.baseUrl ? { baseUrl: conn.baseUrl } : {}),
    ...(conn.debug ? { debug: true } : {}),
    // The demo shows error capture: its own uncaught errors become $exception events.
    captureErrors: true,
    // Every track() is checked against the demo's tracking plan (./plan.js). The end-to-end
    // tests, which track events of their own, run the demo without it (demo-config.json).
    ...(conn.plan ? { plan: DEMO_PLAN, planMode: 'reject' } : {}),
    // beforeSend sees every event before it is stored; the demo notes the SDK's automatic ones
    // ($extension_installed, $daily_active, ...) for its popup, and keeps every event unchanged.
    beforeSend(event) {
      if (event.eventName.startsWith('$')) remember('auto', { eventName: event.eventName });
      return event;
    },
    ...conn.options,
    ...overrides,
    // Hooks receive InhouseErrors and drop reports: codes and messages, never the secret.
    onError(e) {
      remember('error', { code: e.code, message: e.message });
      console.warn(`[inhouse demo] delivery problem ${e.code}: ${e.message}`);
    },
    onDrop(d) {
      remember('drop', { id: d.id, eventName: d.eventName, reason: d.reason, message: d.message });
      console.warn(`[inhouse demo] dropped ${d.eventName} (${d.id}): ${d.reason}: ${d.message}`);
    },
  });
  tracker.ready.catch((e) => {
    remember('init-failed', { code: e.code, message: e.message });
    console.warn(`[inhouse demo] tracker not started ${e.code}: ${e.message}`);
  });
  return tracker;
}

// Settings live in IndexedDB (async), so init() runs a moment after the first turn; the package
// holds relayed calls until it does. Operations that replace the tracker are serialized here.
let chain = loadConnection().then((conn) => void start(conn));

function serialize(fn) {
  const run = chain.then(fn);
  chain = run.catch(() => {});
  return run;
}

/** The options page saved new settings: new credentials, or a new tracker for a new server. */
function reconfigure() {
  return serialize(async () => {
    const conn = await loadConnection();
    if (conn.baseUrl !== connection.baseUrl) {
      await tracker.shutdown();
      await start(conn).ready;
      return { restarted: true };
    }
    await tracker.setCredentials({ tokenId: conn.tokenId, tokenSecret: conn.tokenSecret });
    connection = { baseUrl: conn.baseUrl, tokenId: conn.tokenId, source: conn.source };
    return { restarted: false };
  });
}

// Listeners are registered synchronously, during the worker's first turn.
chrome.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  if (!msg || typeof msg.demo !== 'string') return false;
  // Only the extension's own pages, never a content script (which runs inside a web page).
  if (sender.id !== chrome.runtime.id || sender.origin !== EXTENSION_ORIGIN) {
    sendResponse({ ok: false, error: 'not allowed from this context' });
    return false;
  }
  let work;
  switch (msg.demo) {
    case 'reconfigure':
      work = reconfigure();
      break;
    case 'info':
      work = chain.then(() => ({ ...connection, recent: recent.slice() }));
      break;
    case 'track-from-background':
      work = chain.then(() => tracker.track('background_action', { trigger: 'popup', at: new Date() }));
      break;
    default:
      return false;
  }
  work.then(
    (result) => sendResponse({ ok: true, result }),
    (e) => sendResponse({ ok: false, error: `${e.code ?? 'ERROR'}: ${e.message ?? e}` }),
  );
  return true;
});

// Install, update, browser start and daily activity are tracked by the SDK itself
// ($extension_installed, $extension_updated, $browser_startup, $daily_active).

// A small handle for debugging from the worker's DevTools console (and for the e2e tests):
// it exposes the tracker and the hook log, never the secret.
globalThis.inhouseDemo = {
  ready: () => chain,
  tracker: () => tracker,
  connection: () => ({ ...connection }),
  recent: () => recent.slice(),
  /** Throws an uncaught error from the demo's own code (a $exception with its frames). */
  fail: (message) => setTimeout(() => {
    throw new Error(message);
  }),
  /** Replaces the tracker with one built from the current settings plus `overrides`. */
  restart: (overrides) =>
    serialize(async () => {
      await tracker.shutdown();
      const t = start(await loadConnection(), overrides);
      return { ready: t.ready.then(() => 'ready', (e) => ({ code: e.code, message: e.message })) };
    }).then((r) => r.ready),
};
