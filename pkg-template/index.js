// @inhouse/chrome-tracker: the loader. The tracker itself is Rust compiled to WebAssembly
// (inhouse_tracker_bg.wasm); this file only does what JavaScript must:
//  - register the extension listeners synchronously, at the service worker's top level, where
//    Chrome requires them (an alarm or a message that wakes the worker resumes delivery);
//  - load the wasm from the extension's own files (never remote code), and queue the calls
//    made before it is ready;
//  - answer track() calls relayed from content scripts, popups and options pages (./client.js),
//    only from this extension, so the token secret never leaves the background.
import { initSync, Tracker as WasmTracker, useErrorClass } from './inhouse_tracker.js';

const MESSAGE_TAG = '__inhouse_tracker__';
const ALARM_PREFIX = 'inhouse-tracker:';
const INDEX_KEY = 'inhouse:v1:index';
const INIT_WAIT_MS = 10_000;
const RELAYED_FLUSH = Symbol();
const RELAYED_TRACK = Symbol();

const chromeApi = globalThis.chrome;
const inServiceWorker =
  typeof ServiceWorkerGlobalScope !== 'undefined' && globalThis instanceof ServiceWorkerGlobalScope;

let current = null;
let initWaiters = [];

/** An error with a stable `code` (see index.d.ts) and, for bad input, the offending `field`. */
export class InhouseError extends Error {
  constructor(code, message, field) {
    super(message);
    this.name = 'InhouseError';
    this.code = code;
    if (field !== undefined) this.field = field;
  }
}

function asInhouseError(e) {
  if (e instanceof InhouseError) return e;
  if (e && typeof e.code === 'string') return new InhouseError(e.code, e.message, e.field);
  return new InhouseError('INTERNAL', e && e.message ? e.message : String(e));
}
function rethrow(e) {
  throw asInhouseError(e);
}

// The start's phases as User Timing marks (DevTools' performance panel; the benchmark).
const mark = (name) => globalThis.performance?.mark?.(name);

let wasmLoading = null;
function loadWasm(wasmUrl) {
  // Bundlers that understand `new URL(<literal>, import.meta.url)` (Vite, webpack 5) emit the
  // .wasm as an asset and rewrite this URL: keep it literal. esbuild does not: the .wasm must sit
  // next to the bundle, or be named by init({wasmUrl}) (always in a classic-script bundle, where
  // import.meta.url is empty and this throws).
  wasmLoading ??= (async () => {
    const url = wasmUrl ?? new URL('./inhouse_tracker_bg.wasm', import.meta.url);
    // Compiled while it downloads, then instantiated at once (a module this small instantiates
    // in a tenth of a millisecond): the glue's own loader is not needed. Without the wasm MIME
    // type (some dev servers), compiled from the bytes instead.
    let module;
    try {
      module = await WebAssembly.compileStreaming(fetch(url));
    } catch {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      module = await WebAssembly.compile(await response.arrayBuffer());
    }
    mark('inhouse:wasm-compiled');
    initSync({ module });
    mark('inhouse:wasm-instantiated');
    useErrorClass(InhouseError); // the wasm's errors are InhouseErrors from the start
  })().catch((e) => {
    wasmLoading = null; // a later init() with a corrected wasmUrl tries again
    throw new InhouseError('WASM_LOAD_FAILED', `cannot load the tracker's wasm from ${wasmUrl ?? 'next to index.js'} (${e.message}): ship inhouse_tracker_bg.wasm, pass init({wasmUrl}), allow 'wasm-unsafe-eval' in the manifest's CSP`, 'wasmUrl');
  });
  return wasmLoading;
}

// track() calls of one turn of the event loop go into the wasm together, as text: one crossing
// per turn, not one per call and more per property read (src/core/handover.rs has the format
// and the measurement). Only what JSON.stringify writes exactly as the wasm would: a string
// name; options absent or {dedupKey: string}; properties absent or a plain object of strings,
// finite numbers, booleans and null (undefined members left out). Anything else goes to the
// wasm's own track(), which names what is wrong. The text is taken at the call, so properties
// changed after track() returns are not what is stored. Returns null to go the other way.
function handOverLine(eventName, properties, options) {
  if (typeof eventName !== 'string') return null;
  try {
    let dedup = '';
    if (options !== undefined && options !== null) {
      if (typeof options !== 'object') return null;
      const key = options.dedupKey;
      if (key !== undefined) {
        if (typeof key !== 'string') return null;
        dedup = JSON.stringify(key);
      }
    }
    let props = '{}';
    if (properties !== undefined && properties !== null) {
      if (typeof properties !== 'object') return null;
      const proto = Object.getPrototypeOf(properties);
      if ((proto !== Object.prototype && proto !== null) || typeof properties.toJSON === 'function') return null;
      for (const key in properties) {
        const v = properties[key];
        const type = typeof v;
        if (type === 'number' ? !Number.isFinite(v) : type !== 'string' && type !== 'boolean' && type !== 'undefined' && v !== null) return null;
      }
      props = JSON.stringify(properties);
    }
    return `${Date.now()}\t${JSON.stringify(eventName)}\t${dedup}\t${props}`;
  } catch {
    return null; // a getter or a Proxy trap threw: the wasm's track() says where
  }
}

class Tracker {
  #wasm = null;
  #loading;
  #started = false;
  #lines = [];
  #settlers = [];

  constructor(options) {
    const { wasmUrl, ...rest } = options ?? {};
    this.#loading = loadWasm(wasmUrl).then(() => {
      try {
        this.#wasm = new WasmTracker(rest);
        mark('inhouse:tracker-created');
      } catch (e) {
        rethrow(e);
      }
      return this.#wasm;
    });
    /** Resolves when the stored queue is loaded; rejects with an InhouseError for bad options. */
    this.ready = this.#loading.then((t) => t.ready()).then(() => {
      this.#started = true;
    });
  }

  // Answers that describe the stored queue wait until it has been read.
  #afterReady(fn) {
    return this.#started ? this.#call(fn) : this.ready.then(() => fn(this.#wasm)).catch(rethrow);
  }

  // The track() calls waiting for the end of this turn go in first: calls keep their order.
  #handOver = () => {
    if (this.#lines.length === 0) return;
    const lines = this.#lines.join('\n');
    const settlers = this.#settlers;
    this.#lines = [];
    this.#settlers = [];
    try {
      this.#wasm.trackBatch(lines, settlers);
    } catch (e) {
      const error = asInhouseError(e); // a trap: the wasm itself failed
      for (let i = 1; i < settlers.length; i += 2) settlers[i](error);
    }
  };

  #call(fn) {
    if (this.#wasm) {
      this.#handOver();
      try {
        return Promise.resolve(fn(this.#wasm)).catch(rethrow);
      } catch (e) {
        return Promise.reject(e).catch(rethrow);
      }
    }
    return this.#loading.then(fn).catch(rethrow);
  }

  track(eventName, properties, options) {
    if (this.#wasm) {
      const line = handOverLine(eventName, properties, options);
      if (line !== null) {
        const { promise, resolve, reject } = Promise.withResolvers();
        if (this.#lines.push(line) === 1) queueMicrotask(this.#handOver);
        this.#settlers.push(resolve, reject);
        return promise;
      }
      this.#handOver();
      // The wasm's own promise, unwrapped (its errors are InhouseErrors already).
      try {
        return this.#wasm.track(eventName, properties, options);
      } catch (e) {
        return Promise.reject(asInhouseError(e)); // a trap: the wasm itself failed
      }
    }
    return this.#call((t) => t.track(eventName, properties, options));
  }
  flush() {
    return this.#call((t) => t.flush(true)); // ends a wait after network errors: the network may be back
  }
  /** @internal track() from a page or content script: `sender` (Chrome's, not the message's) says where it came from. */
  [RELAYED_TRACK](eventName, properties, options, sender) {
    return this.#call((t) => t.trackFrom(eventName, properties, options, sender));
  }
  identify(userId, traits, sender) {
    return this.#call((t) => t.identify(userId, traits, sender));
  }
  register(properties) {
    return this.#call((t) => t.register(properties));
  }
  unregister(key) {
    return this.#call((t) => t.unregister(key));
  }
  reset() {
    return this.#call((t) => t.reset());
  }
  page(name, properties, title, sender) {
    return this.#call((t) => t.page(name, title, properties, sender));
  }
  captureException(error, properties, sender) {
    return this.#call((t) => t.captureException(error, properties, sender));
  }
  /** @internal whether captureErrors is on (a page's client asks). */
  capturesErrors() {
    return this.#call((t) => t.capturesErrors());
  }
  identity() {
    return this.#afterReady((t) => t.identity());
  }
  /** @internal flush() from another context: never ends a backoff, so callers cannot cause a request each. */
  [RELAYED_FLUSH]() {
    return this.#call((t) => t.flush(false));
  }
  stats() {
    return this.#afterReady((t) => t.stats());
  }
  setCredentials(credentials) {
    return this.#call((t) => t.setCredentials(credentials));
  }
  setEnabled(enabled, options) {
    return this.#call((t) => t.setEnabled(!!enabled, !!(options && options.purge)));
  }
  isEnabled() {
    return this.#afterReady((t) => t.isEnabled());
  }
  /** @internal resumes delivery (alarm, browser start). */
  wake() {
    if (this.#wasm) this.#wasm.wake();
  }
  /** @internal for benchmarks: `{ackBatch}`, done-marks per storage write (default 5). */
  _tune(settings) {
    return this.#call((t) => t.setAckBatch(settings.ackBatch));
  }
  /** @internal other code removed the SDK's data from chrome.storage.local: write the queue again. */
  storageLost() {
    if (this.#wasm) this.#wasm.storageLost();
  }
  shutdown() {
    if (current === this) current = null;
    return this.#call((t) => t.shutdown());
  }
}

/**
 * Creates the tracker. Call it once, synchronously, at the top level of the background service
 * worker. Returns at once; calls made before the wasm is ready are queued, not lost.
 */
export function init(options) {
  // In a popup, options page or content script, a second tracker would share the background's
  // storage and lose events.
  if (chromeApi?.runtime?.id && !inServiceWorker) {
    throw new InhouseError('INVALID_OPTION', "init() belongs in the background service worker: pages and content scripts use '@inhouse/chrome-tracker/client'");
  }
  if (current) {
    throw new InhouseError('INVALID_OPTION', 'init() was already called in this context; call shutdown() on the first tracker before creating another');
  }
  const tracker = new Tracker(options);
  current = tracker;
  if (options?.captureErrors === true) captureWorkerErrors(tracker);
  for (const resolve of initWaiters) resolve(tracker);
  initWaiters = [];
  return tracker;
}

/** captureErrors: the worker's uncaught errors and unhandled rejections become $exception events. */
function captureWorkerErrors(tracker) {
  const capture = (error) => {
    if (current === tracker) tracker.captureException(error).catch(() => {});
  };
  globalThis.addEventListener?.('error', (e) => capture(e.error ?? e.message));
  globalThis.addEventListener?.('unhandledrejection', (e) => capture(e.reason));
}

function trackerForMessage() {
  if (current) return Promise.resolve(current);
  if (!inServiceWorker) return null;
  // The background may call init() after an await (reading its settings): wait for it a while.
  return new Promise((resolve, reject) => {
    initWaiters.push(resolve);
    setTimeout(() => reject(new InhouseError('SHUT_DOWN', 'no tracker: the background never called init()')), INIT_WAIT_MS);
  });
}

// Async: whatever it throws becomes a rejection, answered as an error reply.
// What the page claims about itself is never read: the background takes it from `sender`.
async function handleMessage(tracker, msg, sender) {
  switch (msg.op) {
    case 'track':
      return tracker[RELAYED_TRACK](msg.eventName, msg.properties, msg.options, sender);
    case 'identify':
      return tracker.identify(msg.userId, msg.traits, sender);
    case 'register':
      return tracker.register(msg.properties);
    case 'unregister':
      return tracker.unregister(msg.key);
    case 'reset':
      return tracker.reset();
    case 'identity':
      return tracker.identity();
    case 'page':
      return tracker.page(msg.name, msg.properties, msg.title, sender);
    case 'captureException':
      return tracker.captureException(msg.error, msg.properties, sender);
    case 'setEnabled':
      return tracker.setEnabled(msg.enabled === true, { purge: msg.purge === true });
    case 'isEnabled':
      return tracker.isEnabled();
    case 'settings':
      return { captureErrors: await tracker.capturesErrors() };
    case 'flush':
      return tracker[RELAYED_FLUSH]();
    case 'stats':
      return tracker.stats();
    default:
      throw new InhouseError('INTERNAL', `unknown operation ${JSON.stringify(msg.op)}`);
  }
}

// ---- listeners, registered during the worker's first turn ----
if (chromeApi?.runtime?.onMessage) {
  chromeApi.runtime.onMessage.addListener((msg, sender, sendResponse) => {
    if (!msg || msg[MESSAGE_TAG] !== 1) return false;
    // onMessage only carries this extension's own contexts; check anyway.
    if (sender.id !== chromeApi.runtime.id) return false;
    const pending = trackerForMessage();
    if (!pending) return false;
    pending
      .then((tracker) => handleMessage(tracker, msg, sender))
      .then(
        (result) => sendResponse({ ok: true, result }),
        (e) => {
          e = asInhouseError(e);
          sendResponse({ ok: false, error: { code: e.code, message: e.message, field: e.field } });
        },
      );
    return true;
  });
}
if (chromeApi?.alarms?.onAlarm) {
  chromeApi.alarms.onAlarm.addListener((alarm) => {
    // The delivery backstop, and the daily alarm ($daily_active).
    if (alarm.name.startsWith(ALARM_PREFIX) && current) current.wake();
  });
}
// Install, update and browser start are decided from stored state when the tracker starts (so
// a worker stopped right after onInstalled loses nothing); these only make sure it runs.
if (chromeApi?.runtime?.onInstalled) {
  chromeApi.runtime.onInstalled.addListener(() => current?.wake());
}
if (chromeApi?.runtime?.onStartup) {
  chromeApi.runtime.onStartup.addListener(() => current?.wake());
}
// The SDK never removes its index: its removal (chrome.storage.local.clear(), or a remove() by
// the extension's own code) means the queued events must be written again from memory.
if (chromeApi?.storage?.onChanged) {
  chromeApi.storage.onChanged.addListener((changes, area) => {
    const index = changes[INDEX_KEY];
    if (area === 'local' && index && index.newValue === undefined) current?.storageLost();
  });
}
