// @inhouse/chrome-tracker: the loader. The tracker itself is Rust compiled to WebAssembly
// (inhouse_tracker_bg.wasm); this file only does what JavaScript must:
//  - register the extension listeners synchronously, at the service worker's top level, where
//    Chrome requires them (an alarm or a message that wakes the worker resumes delivery);
//  - load the wasm from the extension's own files (never remote code), and queue the calls
//    made before it is ready;
//  - answer track() calls relayed from content scripts, popups and options pages (./client.js),
//    only from this extension, so the token secret never leaves the background.
import { initSync, Tracker as WasmTracker, useErrorClass, onTrap, __wbg_reset_state as resetWasm } from './inhouse_tracker.js';

const MESSAGE_TAG = '__inhouse_tracker__';
const ALARM_PREFIX = 'inhouse-tracker:';
const INDEX_KEY = 'inhouse:v1:index';
const STARTED_KEY = 'inhouse:v1:started';
// After a trap, the tracker is rebuilt from storage at most this often; more traps in a row
// than that mean the rebuilt tracker traps too, and calls fail with INTERNAL instead.
const REBUILD_MIN_INTERVAL_MS = 10_000;
// The last track() calls handed over (by batch), remembered so that a trap can reject those
// whose write never committed (a settled promise ignores it). Twice the largest queue: a call
// older than that was stored or refused long ago.
const RECENT_CALLS = 200_000;
/**
 * The most track() calls of one turn handed to the wasm in one crossing: a longer turn is handed
 * over in chunks as it goes, so the wasm's linear memory (which never shrinks) holds at most one
 * chunk's text. Above any burst the queue keeps (maxQueueEvents' default), so an ordinary turn
 * is still handed over once, after it: a chunk's work runs inside the call that fills it (with
 * 1,000, track() of a 10,000-call burst measured 7.8 µs/call until it returns, against 1.4).
 * Measured (make bench, memory step, 200,000 calls in one turn): 111 MB of linear memory
 * without chunks, 92 MB with chunks of 1,000.
 */
const HANDOVER_CHUNK_CALLS = 20_000;
const INIT_WAIT_MS = 10_000;
const RELAYED_FLUSH = Symbol();
const RELAYED_TRACK = Symbol();

const chromeApi = globalThis.chrome;
/**
 * Whether this context is the extension's background, recognised by what it is: Chrome's and
 * Edge's service worker, or Firefox's event page (a window that is its own background page).
 */
function isBackground() {
  if (typeof ServiceWorkerGlobalScope !== 'undefined' && globalThis instanceof ServiceWorkerGlobalScope) return true;
  try {
    return typeof window !== 'undefined' && chromeApi?.extension?.getBackgroundPage?.() === globalThis;
  } catch {
    return false;
  }
}
const inBackground = isBackground();

// Firefox's data consent (Firefox 140+): an add-on whose manifest lists `technicalAndInteraction`
// among its optional data-collection permissions collects only while the user grants it. The
// tracker then starts opted out, follows what `permissions.getAll()` says once it is ready, and
// follows each grant (`permissions.onAdded`: opted in) and revocation (`onRemoved`: opted out with
// purge, as `setEnabled(false, {purge: true})`).
const CONSENT = 'technicalAndInteraction';
function consentIsOptional() {
  try {
    const declared = chromeApi?.runtime?.getManifest?.()?.browser_specific_settings?.gecko?.data_collection_permissions;
    const listed = (list) => Array.isArray(list) && list.includes(CONSENT);
    return listed(declared?.optional) && !listed(declared?.required) && Boolean(chromeApi?.permissions?.getAll);
  } catch {
    return false;
  }
}
const consentOptional = inBackground && consentIsOptional();
const grants = (permissions) => Array.isArray(permissions?.data_collection) && permissions.data_collection.includes(CONSENT);

/** Makes the tracker's opt-in follow Firefox's data consent (see CONSENT). */
async function followConsent(tracker) {
  await tracker.ready;
  const granted = grants(await chromeApi.permissions.getAll());
  if (current === tracker && granted !== (await tracker.isEnabled())) await tracker.setEnabled(granted, { purge: !granted });
}

let current = null;
let initWaiters = [];

/**
 * An error with a stable `code` (see index.d.ts) and, for bad input, the offending `field`. One
 * class for the whole package: the main entry and /client each stand alone (a content script
 * loads client.js by itself), so the first of them to load in a context registers the class and
 * the other takes it, and `instanceof InhouseError` holds whichever entry made the error.
 */
const ERROR_CLASS = Symbol.for('@inhouse/chrome-tracker/InhouseError');
if (typeof globalThis[ERROR_CLASS] !== 'function') {
  Object.defineProperty(globalThis, ERROR_CLASS, {
    value: class InhouseError extends Error {
      constructor(code, message, field) {
        super(message);
        this.name = 'InhouseError';
        this.code = code;
        if (field !== undefined) this.field = field;
      }
    },
  });
}
export const InhouseError = globalThis[ERROR_CLASS];

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

/** The trackers that would hear of a trap (one per context; the testing entry's, one at a time). */
let trapListener = null;

/** The instance's exports (its memory), for `wasmMemoryBytes`. */
let wasmExports = null;

/** Instantiates the compiled module and hands it what it needs from the loader. */
function startWasm(module) {
  wasmExports = initSync({ module });
  mark('inhouse:wasm-instantiated');
  useErrorClass(InhouseError); // the wasm's errors are InhouseErrors from the start
  onTrap(() => trapListener?.());
}

/** A fresh instance of the wasm after a trap: the old one's memory is not trusted again. */
function restartWasm() {
  resetWasm();
  wasmExports = initSync({ module: undefined }); // the glue answers with the current instance
  useErrorClass(InhouseError);
  onTrap(() => trapListener?.());
}

let wasmLoading = null;
/** The wasm's linear memory in bytes (it never shrinks): for tests and benchmarks. */
function wasmMemoryBytes() {
  return wasmExports?.memory?.buffer?.byteLength ?? 0;
}

/** The testing entry's way in: the wasm compiled in Node. */
function useCompiledWasm(module) {
  wasmLoading ??= Promise.resolve().then(() => startWasm(module));
  return wasmLoading;
}
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
    startWasm(module);
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
// finite numbers, booleans and null (undefined members left out). Each value is read once (a
// getter that answers differently at a second read cannot make the text disagree with the
// check), and the text is taken at the call, so properties changed after track() returns are not
// what is stored. Anything else goes to the wasm's own track(), which names what is wrong; so
// does text longer than `maxLength` (it could not be stored: it never crosses into the wasm).
// Returns null to go the other way.
function handOverLine(eventName, properties, options, maxLength) {
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
      // A plain object, not Object.create(null) (dictionary mode, which JSON.stringify walks
      // three times slower); so `__proto__` as an own key goes the other way.
      const copy = {};
      for (const key in properties) {
        if (key === '__proto__' || !Object.hasOwn(properties, key)) return null;
        const v = properties[key];
        const type = typeof v;
        if (type === 'number' ? !Number.isFinite(v) : type !== 'string' && type !== 'boolean' && type !== 'undefined' && v !== null) return null;
        if (v !== undefined) copy[key] = v;
      }
      props = JSON.stringify(copy);
    }
    const line = `${Date.now()}\t${JSON.stringify(eventName)}\t${dedup}\t${props}`;
    return line.length > maxLength ? null : line;
  } catch {
    return null; // a getter or a Proxy trap threw: the wasm's track() says where
  }
}

/**
 * A copy of a call's argument taken at the call, for a call held while the wasm loads: what is
 * stored is what the call said, not what the object holds later. Structured cloning copies what
 * the wasm accepts; what it cannot clone (a function, a Proxy, ...) the wasm refuses anyway, and
 * is passed on as it is, for the wasm to say what is wrong with it.
 */
function snapshot(value) {
  if (value === null || typeof value !== 'object') return value;
  try {
    return structuredClone(value);
  } catch {
    return value;
  }
}

/** `{dedupKey}` read at the call; options the wasm must judge (not an object, a throwing getter) as they are. */
function snapshotOptions(options) {
  if (options === null || typeof options !== 'object') return options;
  try {
    return { dedupKey: options.dedupKey };
  } catch {
    return options;
  }
}

const isTrap = (e) => e instanceof WebAssembly.RuntimeError;

class Tracker {
  #wasm = null;
  #loading;
  #started = false;
  #lines = [];
  #settlers = [];
  #options;
  #onError;
  #maxLine = 0;
  // Trap recovery: the settlers of the last batches handed over, the promise every other call's
  // answer races against, and when the tracker was last rebuilt.
  #recent = [];
  #recentCalls = 0;
  #lost = null;
  #rebuiltAt = -Infinity;
  #broken = false;
  #closed = false;

  #hooks;
  #planError = null;

  constructor(options, loading, hooks = {}) {
    this.#hooks = hooks;
    const { wasmUrl, ...rest } = options ?? {};
    this.#options = rest;
    // The plan crosses as a plain copy: its getters run here, in JavaScript, and what is not
    // JSON (a cycle, a BigInt) is refused as a bad option by the wasm's constructor.
    if (rest.plan !== undefined && rest.plan !== null && typeof rest.plan === 'object') {
      try {
        this.#options = { ...rest, plan: JSON.parse(JSON.stringify(rest.plan)) };
      } catch (e) {
        this.#planError = new InhouseError('INVALID_OPTION', `plan must be plain JSON: ${e?.message ?? e}`, 'plan');
      }
    }
    this.#onError = typeof rest.onError === 'function' ? rest.onError : null;
    this.#loading = loading.then(() => this.#create());
    /** Resolves when the stored queue is loaded; rejects with an InhouseError for bad options. */
    this.ready = this.#whenReady();
  }

  /**
   * Resolves once the tracker has read the stored queue: the current instance's, or, if the wasm
   * traps before that, the rebuilt one's (a trap's rebuild is a start again).
   */
  async #whenReady() {
    for (;;) {
      const t = await this.#loading;
      try {
        await this.#guard(t.ready());
        if (t === this.#wasm) {
          this.#started = true;
          return;
        }
      } catch (e) {
        if (t === this.#wasm && !this.#broken) throw e;
      }
      await null; // the rebuild runs in a microtask: let it
    }
  }

  #create() {
    if (this.#planError) throw this.#planError;
    try {
      this.#wasm = new WasmTracker(this.#options);
      mark('inhouse:tracker-created');
    } catch (e) {
      rethrow(e);
    }
    this.#maxLine = this.#wasm.maxEventBytes();
    this.#lost = Promise.withResolvers();
    this.#lost.promise.catch(() => {});
    trapListener = () => this.#trapped();
    return this.#wasm;
  }

  // ---- a trap: report it once, fail what it took with it, rebuild from storage ----
  /** The wasm trapped (its panic hook, or a RuntimeError from a call): rebuilt in a microtask. */
  #trapped() {
    if (this.#broken) return;
    this.#broken = true;
    try {
      this.#hooks.onTrap?.();
    } catch {}
    queueMicrotask(() => this.#rebuild());
  }

  #rebuild() {
    const error = new InhouseError('INTERNAL', 'the tracker failed (a bug: the wasm trapped) and was rebuilt from storage; calls in progress failed with this error, queued events are kept');
    for (const settlers of this.#recent) {
      for (let i = 1; i < settlers.length; i += 2) settlers[i](error);
    }
    this.#recent = [];
    this.#recentCalls = 0;
    this.#lost?.reject(error);
    try {
      this.#onError?.(error);
    } catch {}
    if (this.#closed) return this.#stop(new InhouseError('SHUT_DOWN', 'the tracker was shut down'));
    const now = Date.now();
    if (now - this.#rebuiltAt < REBUILD_MIN_INTERVAL_MS) {
      // The rebuilt tracker trapped again at once: stop here rather than loop.
      return this.#stop(new InhouseError('INTERNAL', 'the tracker failed again right after it was rebuilt; it is stopped until the worker restarts'));
    }
    this.#rebuiltAt = now;
    try {
      restartWasm();
      this.#create();
      this.#broken = false;
      this.#started = false;
      this.#loading = Promise.resolve(this.#wasm);
      this.#handOver(); // what waited for this turn's end goes to the new tracker
    } catch (e) {
      this.#stop(asInhouseError(e));
    }
  }

  /** No tracker from now on: every call, and those waiting for this turn's end, fail with `error`. */
  #stop(error) {
    this.#wasm = null;
    this.#loading = Promise.reject(error);
    this.#loading.catch(() => {});
    const settlers = this.#settlers;
    this.#lines = [];
    this.#settlers = [];
    for (let i = 1; i < settlers.length; i += 2) settlers[i](error);
  }

  /** A call's failure: a trap is recovered from (and fails the call with INTERNAL). */
  #failed(e) {
    if (isTrap(e)) {
      this.#trapped();
      return new InhouseError('INTERNAL', `the tracker failed (a bug: ${e.message}) and is being rebuilt from storage`);
    }
    return asInhouseError(e);
  }

  /** A wasm promise that also fails if the wasm traps before it settles. */
  #guard(promise) {
    const lost = this.#lost;
    return lost ? Promise.race([promise, lost.promise]) : promise;
  }

  // Answers that describe the stored queue wait until it has been read.
  #afterReady(fn) {
    if (this.#started && this.#wasm && !this.#broken) return this.#call(fn);
    return this.#whenReady().then(() => this.#call(fn), rethrow);
  }

  // The track() calls waiting for the end of this turn go in first: calls keep their order.
  #handOver = () => {
    if (this.#lines.length === 0 || !this.#wasm || this.#broken) return;
    const lines = this.#lines.join('\n');
    const settlers = this.#settlers;
    this.#lines = [];
    this.#settlers = [];
    this.#recent.push(settlers);
    this.#recentCalls += settlers.length / 2;
    while (this.#recentCalls > RECENT_CALLS && this.#recent.length > 1) this.#recentCalls -= this.#recent.shift().length / 2;
    try {
      this.#wasm.trackBatch(lines, settlers);
    } catch (e) {
      const error = this.#failed(e);
      for (let i = 1; i < settlers.length; i += 2) settlers[i](error);
    }
  };

  /** Calls `fn(wasm)` now, or once the wasm is ready (in call order); its answer is guarded. */
  #call(fn) {
    if (this.#wasm && !this.#broken) {
      this.#handOver();
      try {
        return this.#guard(Promise.resolve(fn(this.#wasm))).catch((e) => {
          throw this.#failed(e);
        });
      } catch (e) {
        return Promise.reject(this.#failed(e));
      }
    }
    // Not ready, or being rebuilt (in a microtask queued before this one): once it is.
    return this.#loading.then(() => (this.#wasm && !this.#broken ? this.#call(fn) : Promise.reject(new InhouseError('INTERNAL', 'the tracker is not available'))), rethrow);
  }

  track(eventName, properties, options) {
    if (this.#wasm && !this.#broken) {
      const line = handOverLine(eventName, properties, options, this.#maxLine);
      if (line !== null) {
        const { promise, resolve, reject } = Promise.withResolvers();
        const waiting = this.#lines.push(line);
        this.#settlers.push(resolve, reject);
        if (waiting === 1) queueMicrotask(this.#handOver);
        // A long turn is handed over in chunks as it goes: the wasm's linear memory (which never
        // shrinks) holds one chunk's text at a time, not the whole turn's.
        else if (waiting >= HANDOVER_CHUNK_CALLS) this.#handOver();
        return promise;
      }
      this.#handOver();
      // The wasm's own promise (its errors are InhouseErrors already).
      try {
        return this.#guard(this.#wasm.track(eventName, properties, options));
      } catch (e) {
        return Promise.reject(this.#failed(e));
      }
    }
    // Held until the wasm is ready: what the call says is taken now (and when).
    const at = Date.now();
    const line = handOverLine(eventName, properties, options, Infinity);
    if (line !== null) {
      return this.#call((t) => {
        if (line.length > this.#maxLine) return t.trackAt(eventName, properties, options, at);
        const { promise, resolve, reject } = Promise.withResolvers();
        this.#lines.push(line);
        this.#settlers.push(resolve, reject);
        this.#handOver();
        return promise;
      });
    }
    const [props, opts] = [snapshot(properties), snapshotOptions(options)];
    return this.#call((t) => t.trackAt(eventName, props, opts, at));
  }
  flush() {
    return this.#call((t) => t.flush(true)); // ends a wait after network errors: the network may be back
  }
  /** @internal track() from a page or content script: `sender` (Chrome's, not the message's) says where it came from. */
  [RELAYED_TRACK](eventName, properties, options, sender) {
    return this.#call((t) => t.trackFrom(eventName, properties, options, sender));
  }
  identify(userId, traits, sender) {
    const copy = this.#wasm ? traits : snapshot(traits);
    return this.#call((t) => t.identify(userId, copy, sender));
  }
  register(properties) {
    const copy = this.#wasm ? properties : snapshot(properties);
    return this.#call((t) => t.register(copy));
  }
  unregister(key) {
    return this.#call((t) => t.unregister(key));
  }
  reset() {
    return this.#call((t) => t.reset());
  }
  page(name, properties, title, sender) {
    const copy = this.#wasm ? properties : snapshot(properties);
    return this.#call((t) => t.page(name, title, copy, sender));
  }
  captureException(error, properties, sender) {
    const copy = this.#wasm ? properties : snapshot(properties);
    return this.#call((t) => t.captureException(error, copy, sender));
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
    this.#poke((t) => t.wake());
  }
  /** @internal for benchmarks: `{ackBatch}`, done-marks per storage write (default 5). */
  _tune(settings) {
    return this.#call((t) => t.setAckBatch(settings.ackBatch));
  }
  /** @internal for the loader's tests: makes the wasm trap, as a bug would. */
  _trapForTests() {
    return this.#call((t) => t._trapForTests());
  }
  /** @internal other code removed the SDK's data from chrome.storage.local: write the queue again. */
  storageLost() {
    this.#poke((t) => t.storageLost());
  }
  /** @internal other code removed the SDK's keys from chrome.storage.session: write them again. */
  sessionStorageLost() {
    this.#poke((t) => t.sessionStorageLost());
  }
  /** A notice from a listener: nobody waits for it, and it never throws. */
  #poke(fn) {
    if (!this.#wasm || this.#broken) return;
    try {
      fn(this.#wasm);
    } catch (e) {
      this.#failed(e);
    }
  }
  shutdown() {
    if (current === this) current = null;
    this.#closed = true;
    return this.#call((t) => t.shutdown());
  }
}

/** The tracking plan itself (its literal types are what index.d.ts keeps). */
export const defineTrackingPlan = (plan) => plan;

/**
 * Creates the tracker. Call it once, synchronously, at the top level of the background service
 * worker. Returns at once; calls made before the wasm is ready are queued, not lost.
 */
export function init(options) {
  // In a popup, options page or content script, a second tracker would share the background's
  // storage and lose events.
  if (chromeApi?.runtime?.id && !inBackground) {
    throw new InhouseError('INVALID_OPTION', "init() belongs in the extension's background service worker (in Firefox, its event page): pages and content scripts use '@inhouse/chrome-tracker/client'");
  }
  if (current) {
    throw new InhouseError('INVALID_OPTION', 'init() was already called in this context; call shutdown() on the first tracker before creating another');
  }
  // Under Firefox's optional data consent, nothing is stored or sent until it is granted.
  const optedOut = consentOptional && options !== null && typeof options === 'object' ? { ...options, enabled: false } : options;
  const tracker = new Tracker(optedOut, loadWasm(options?.wasmUrl));
  current = tracker;
  if (consentOptional) followConsent(tracker).catch(() => {});
  if (options?.captureErrors === true) captureWorkerErrors(tracker);
  for (const resolve of initWaiters) resolve(tracker);
  initWaiters = [];
  return tracker;
}

/**
 * The testing entry's tracker: the same class and path as `init()`'s, over the wasm it
 * compiled (`useCompiledWasm`), outside any service worker. `hooks.onTrap()` hears of a trap as
 * it happens, before the rebuild.
 */
function createTracker(options, hooks) {
  if (current) throw new InhouseError('INVALID_OPTION', 'a tracker already runs: call shutdown() on it first');
  const tracker = new Tracker(options, wasmLoading ?? Promise.reject(new InhouseError('WASM_LOAD_FAILED', 'useCompiledWasm() first')), hooks);
  current = tracker;
  return tracker;
}

/** captureErrors: the worker's uncaught errors and unhandled rejections become $exception events. */
function captureWorkerErrors(tracker) {
  const capture = (error) => {
    // A trap of the tracker itself is recovered from, not tracked (nor its old instance's timers).
    if (isTrap(error) || (error instanceof Error && error.message === 'Cannot invoke closure from previous WASM instance')) return;
    if (current === tracker) tracker.captureException(error).catch(() => {});
  };
  globalThis.addEventListener?.('error', (e) => capture(e.error ?? e.message));
  globalThis.addEventListener?.('unhandledrejection', (e) => capture(e.reason));
}

function trackerForMessage() {
  if (current) return Promise.resolve(current);
  if (!inBackground) return null;
  // The background may call init() after an await (reading its settings): wait for it a while.
  return new Promise((resolve, reject) => {
    initWaiters.push(resolve);
    setTimeout(() => reject(new InhouseError('SHUT_DOWN', 'no tracker: the background never called init()')), INIT_WAIT_MS);
  });
}

/** The testing entry's `/client`: a relayed message, answered as the background answers it. */
function relayForTesting(tracker, msg, sender) {
  return handleMessage(tracker, msg, sender);
}

// Async: whatever it throws becomes a rejection, answered as an error reply.
// What the page claims about itself is never read: the background takes it from `sender`.
async function handleMessage(tracker, msg, sender) {
  switch (msg.op) {
    case 'track': {
      // The client sends a call again, with the same id, when a worker stop cut it off: the call
      // id is the event's dedup key (unless the caller gave one), so the repeat is stored once.
      const implicit = typeof msg.callId === 'string' && /^[0-9a-f]{32}$/.test(msg.callId) && (msg.options?.dedupKey === undefined);
      const options = implicit ? { ...msg.options, dedupKey: `relay:${msg.callId}` } : msg.options;
      const result = await tracker[RELAYED_TRACK](msg.eventName, msg.properties, options, sender);
      // Deduplicated against its own first attempt: to the caller, which asked for no dedup, queued.
      return implicit && result?.status === 'deduplicated' ? { ...result, status: 'queued' } : result;
    }
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
if (consentOptional && chromeApi.permissions.onAdded && chromeApi.permissions.onRemoved) {
  chromeApi.permissions.onAdded.addListener((p) => grants(p) && current?.setEnabled(true).catch(() => {}));
  chromeApi.permissions.onRemoved.addListener((p) => grants(p) && current?.setEnabled(false, { purge: true }).catch(() => {}));
}
// The SDK never removes its index: its removal (chrome.storage.local.clear(), or a remove() by
// the extension's own code) means the queued events must be written again from memory.
if (chromeApi?.storage?.onChanged) {
  chromeApi.storage.onChanged.addListener((changes, area) => {
    const index = changes[INDEX_KEY];
    if (area === 'local' && index && index.newValue === undefined) current?.storageLost();
    // Chrome empties chrome.storage.session when the browser starts; other code doing it (while
    // the worker runs, or waking it) is not a browser start.
    const started = changes[STARTED_KEY];
    if (area === 'session' && started && started.newValue === undefined) current?.sessionStorageLost();
  });
}

// What the /testing entry (testing.js) needs of the loader, out of the public exports and types:
// the same tracker class and path as init()'s, over a wasm compiled in Node.
Object.defineProperty(init, Symbol.for('@inhouse/chrome-tracker/testing'), {
  value: Object.freeze({ useCompiledWasm, createTracker, relayForTesting, wasmMemoryBytes, handOverLine }),
});
