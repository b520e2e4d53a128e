// @inhouse/chrome-tracker/client: track from content scripts, popups and options pages.
// No wasm and no credentials here: events go to the background's tracker by message, and the
// promise settles when the background has stored them durably.

const MESSAGE_TAG = '__inhouse_tracker__';
// The core's limits (src/core/event.rs): objects and arrays nest at most 10 levels, the
// properties object itself being level 1; strings and keys are at most 8 KiB of UTF-8.
const MAX_DEPTH = 10;
const MAX_STRING_BYTES = 8192;
// The largest `maxEventBytes` the background accepts (1 MiB): properties that surely serialize
// to more can never be sent, whatever the background's setting.
const MAX_EVENT_BYTES = 1024 * 1024;

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

/** The message of whatever was thrown; reading it must not throw in turn. */
function describe(e) {
  try {
    if (e !== null && typeof e === 'object' && typeof e.message === 'string') return e.message;
    return String(e);
  } catch {
    return 'a value that cannot be printed';
  }
}

const invalid = (path, message) => new InhouseError('INVALID_PROPERTIES', message, path);

/** Reads `obj[key]`: a getter or a Proxy trap that throws becomes an error naming `path`. */
function read(obj, key, path) {
  try {
    return obj[key];
  } catch (e) {
    throw invalid(path, `reading ${path} threw: ${describe(e)}`);
  }
}

/** What `value` (an object) is: 'array', 'object' (plain), 'date', or a description. */
function kindOf(value, path) {
  try {
    if (Array.isArray(value)) return 'array'; // throws for a revoked Proxy
    const proto = Object.getPrototypeOf(value); // a Proxy's getPrototypeOf trap may throw
    if (proto === null || Object.getPrototypeOf(proto) === null) return 'object';
    if (value instanceof Date) return 'date';
  } catch (e) {
    throw invalid(path, `inspecting ${path} threw: ${describe(e)}`);
  }
  let name = '';
  try {
    name = value.constructor.name;
  } catch {}
  return typeof name === 'string' && name ? `an instance of ${name}` : 'an object with a prototype';
}

/** Counts `n` more bytes of the serialized properties (a lower bound); throws past the largest limit. */
function spend(budget, n) {
  budget.bytes += n;
  if (budget.bytes > MAX_EVENT_BYTES) {
    throw new InhouseError('EVENT_TOO_LARGE', 'properties are larger than 1 MiB serialized, more than any tracker accepts (maxEventBytes)', 'properties');
  }
}

/**
 * Checks `value` at `path` (`level`: the nesting level it would open, the properties object
 * being 1) and returns a plain JSON copy of it. The message carries the copy, so the background
 * gets exactly what was checked: every getter and Proxy trap ran once, here, and nothing is left
 * for the message's serialization to trip on. Extension messaging serializes as JSON, which
 * silently drops functions and turns NaN into null: refused here, naming the spot. The
 * background validates everything again.
 */
function toJson(value, path, level, seen, budget) {
  const t = typeof value;
  if (t === 'string') {
    // UTF-8 takes at least one byte per UTF-16 unit: longer than the limit in units is longer
    // in bytes. Shorter strings of many-byte characters are measured by the background.
    if (value.length > MAX_STRING_BYTES) throw invalid(path, `${path}: string longer than 8192 bytes`);
    spend(budget, value.length + 3);
    return value;
  }
  if (t === 'number') {
    if (!Number.isFinite(value)) throw invalid(path, `${path} is ${value}, which JSON cannot represent`);
    spend(budget, 2);
    return value;
  }
  if (t === 'boolean' || value === null) {
    spend(budget, 5);
    return value;
  }
  if (t === 'bigint') {
    throw invalid(path, `${path} is a BigInt, which JSON cannot represent; convert it to a string or a number`);
  }
  if (t !== 'object') throw invalid(path, `${path} is a ${t}, which is not JSON`); // function, symbol, undefined
  if (seen.includes(value)) throw invalid(path, `${path} is a circular reference`);
  const kind = kindOf(value, path);
  if (kind === 'date') {
    let time;
    try {
      time = Date.prototype.getTime.call(value);
    } catch (e) {
      throw invalid(path, `inspecting ${path} threw: ${describe(e)}`);
    }
    if (Number.isNaN(time)) throw invalid(path, `${path} is an invalid Date`);
    spend(budget, 27);
    return new Date(time).toISOString(); // what the tracker sends for a Date
  }
  if (kind !== 'array' && kind !== 'object') {
    throw invalid(path, `${path} is ${kind}, not a plain object, array or JSON value`);
  }
  if (level > MAX_DEPTH) throw invalid(path, `${path}: properties may nest at most 10 levels deep`);
  seen.push(value);
  let copy;
  if (kind === 'array') {
    copy = [];
    let length;
    try {
      length = value.length; // a Proxy's get trap may throw
    } catch (e) {
      throw invalid(path, `reading ${path}.length threw: ${describe(e)}`);
    }
    const n = typeof length === 'number' ? length >>> 0 : 0; // as the background reads it
    for (let i = 0; i < n; i++) {
      const here = `${path}[${i}]`;
      const item = read(value, i, here);
      if (item === undefined) throw invalid(here, `${here} is undefined; use null in arrays`);
      copy.push(toJson(item, here, level + 1, seen, budget));
    }
  } else {
    let keys;
    try {
      keys = Object.keys(value); // a Proxy's ownKeys or getOwnPropertyDescriptor trap may throw
    } catch (e) {
      throw invalid(path, `listing the keys of ${path} threw: ${describe(e)}`);
    }
    copy = Object.create(null); // a `__proto__` key stays a key
    for (const key of keys) {
      const here = `${path}.${key}`;
      const item = read(value, key, here);
      if (item === undefined) continue;
      if (key.length > MAX_STRING_BYTES) throw invalid(here, `${here}: key longer than 8192 bytes`);
      spend(budget, key.length + 3);
      copy[key] = toJson(item, here, level + 1, seen, budget);
    }
  }
  seen.pop();
  spend(budget, 2);
  return copy;
}

/** The track() arguments as plain data, checked; throws an InhouseError. */
function trackMessage(eventName, properties, options) {
  if (typeof eventName !== 'string') {
    throw new InhouseError('INVALID_EVENT_NAME', `event name must be a string, got ${typeof eventName}`, 'eventName');
  }
  let dedupKey;
  if (options !== undefined && options !== null) {
    if (typeof options !== 'object') {
      throw new InhouseError('INVALID_TRACK_OPTION', 'track options must be an object such as {dedupKey: "..."}', 'options');
    }
    try {
      dedupKey = options.dedupKey;
    } catch (e) {
      throw new InhouseError('INVALID_TRACK_OPTION', `reading options.dedupKey threw: ${describe(e)}`, 'dedupKey');
    }
    if (dedupKey !== undefined && typeof dedupKey !== 'string') {
      throw new InhouseError('INVALID_TRACK_OPTION', 'dedupKey must be a string', 'dedupKey');
    }
  }
  const message = { op: 'track', eventName };
  if (properties !== undefined && properties !== null) {
    message.properties = toJson(properties, 'properties', 1, [], { bytes: 0 });
  }
  if (dedupKey !== undefined) message.options = { dedupKey };
  return message;
}

// A worker Chrome stops (idle, or by DevTools) while it answers, or before it starts again, makes
// sendMessage fail with one of these: the call is sent again, with the same call id, until a
// worker answers. The background recognises the repeat (a track() is stored once, see the loader's
// handleMessage), so a stop is invisible to the caller, and SHUT_DOWN means no tracker answers.
const WORKER_GONE = /message (port|channel) closed|receiving end does not exist|could not establish connection/i;
const RETRY_DELAYS_MS = [20, 50, 100, 200, 400, 800, 1600, 3200];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A random id for one call, the same for each of its attempts (128 bits as hex). */
function newCallId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function send(message) {
  const msg = { [MESSAGE_TAG]: 1, ...message, callId: newCallId() };
  for (let attempt = 0; ; attempt++) {
    let pending;
    try {
      pending = chrome.runtime.sendMessage(msg);
    } catch (e) {
      // Thrown at once: the message could not be serialized (too large, not cloneable), or there
      // is no extension to send it to (reloaded or uninstalled: "Extension context invalidated").
      const why = describe(e);
      let name = '';
      try {
        name = String(e.name);
      } catch {}
      if (message.op === 'track' && /length exceeded|too large/i.test(why)) {
        throw new InhouseError('EVENT_TOO_LARGE', `the event could not be sent to the background: ${why}`, 'properties');
      }
      if (message.op === 'track' && (name === 'DataCloneError' || /serializ|clone/i.test(why))) {
        throw new InhouseError('INVALID_PROPERTIES', `the properties could not be sent to the background: ${why}`, 'properties');
      }
      throw new InhouseError('SHUT_DOWN', `the background service worker cannot be reached: ${why}`);
    }
    let reply;
    try {
      reply = await pending;
    } catch (e) {
      const why = describe(e);
      if (WORKER_GONE.test(why) && attempt < RETRY_DELAYS_MS.length) {
        await sleep(RETRY_DELAYS_MS[attempt]);
        continue;
      }
      throw new InhouseError('SHUT_DOWN', `the background service worker did not answer: ${why}`);
    }
    if (!reply) {
      // No listener answered: a worker stopped while the message reached it (or none imports the
      // package's loader). Sent again like a cut-off call.
      if (attempt < RETRY_DELAYS_MS.length) {
        await sleep(RETRY_DELAYS_MS[attempt]);
        continue;
      }
      throw new InhouseError('SHUT_DOWN', 'no tracker in the background: call init() in the service worker');
    }
    if (!reply.ok) {
      const error = reply.error ?? {};
      throw new InhouseError(typeof error.code === 'string' ? error.code : 'INTERNAL', String(error.message ?? 'the background failed'), error.field ?? undefined);
    }
    return reply.result;
  }
}

/** The tracking plan itself (index.d.ts types `withPlan`'s functions by it). */
export const defineTrackingPlan = (plan) => plan;
/**
 * This entry's functions, typed by a tracking plan (`withPlan(plan).track(...)`): the check
 * itself runs in the background, against the plan given to `init()`.
 */
export function withPlan(_plan) {
  return { track, page, identify, register, unregister, reset, identity, captureException, setEnabled, isEnabled, stats, flush };
}

/**
 * Tracks an event through the background. Resolves with {id, status} once it is stored; rejects
 * with an InhouseError (never anything else) for input that can never be sent.
 */
export function track(eventName, properties, options) {
  let message;
  try {
    message = trackMessage(eventName, properties, options);
  } catch (e) {
    return Promise.reject(e instanceof InhouseError ? e : new InhouseError('INVALID_PROPERTIES', describe(e), 'properties'));
  }
  return send(message);
}

/**
 * Identifies the user (after a login): `$user_id` on every later event, kept across restarts,
 * and one `$identify` event carrying `traits`. Resolves like track().
 */
export function identify(userId, traits) {
  if (typeof userId !== 'string') {
    return Promise.reject(new InhouseError('INVALID_USER_ID', `userId must be a string, got ${typeof userId}`, 'userId'));
  }
  let message;
  try {
    message = { op: 'identify', userId };
    if (traits !== undefined && traits !== null) message.traits = toJson(traits, 'properties', 1, [], { bytes: 0 });
  } catch (e) {
    return Promise.reject(e instanceof InhouseError ? e : new InhouseError('INVALID_PROPERTIES', describe(e), 'properties'));
  }
  return send(message);
}

/** Adds properties to every later event (the event's own keys win); kept across restarts. */
export function register(properties) {
  let message;
  try {
    message = { op: 'register', properties: toJson(properties, 'properties', 1, [], { bytes: 0 }) };
  } catch (e) {
    return Promise.reject(e instanceof InhouseError ? e : new InhouseError('INVALID_PROPERTIES', describe(e), 'properties'));
  }
  return send(message);
}

/** Stops adding one registered property. */
export function unregister(key) {
  if (typeof key !== 'string') {
    return Promise.reject(new InhouseError('INVALID_PROPERTIES', `key must be a string, got ${typeof key}`, 'key'));
  }
  return send({ op: 'unregister', key });
}

/** Logout: forgets the user id and the registered properties, starts a new session. */
export function reset() {
  return send({ op: 'reset' });
}

/** `{installId, sessionId, userId}` of the background tracker. */
export function identity() {
  return send({ op: 'identity' });
}

/** A page or screen view ($pageview): `name` (optional), the page's title, your properties. */
export function page(name, properties) {
  let message;
  try {
    message = { op: 'page' };
    if (name !== undefined && name !== null) {
      if (typeof name !== 'string') throw new InhouseError('INVALID_PROPERTIES', `page name must be a string, got ${typeof name}`, 'name');
      message.name = name;
    }
    if (typeof document !== 'undefined' && typeof document.title === 'string') message.title = document.title;
    if (properties !== undefined && properties !== null) message.properties = toJson(properties, 'properties', 1, [], { bytes: 0 });
  } catch (e) {
    return Promise.reject(e instanceof InhouseError ? e : new InhouseError('INVALID_PROPERTIES', describe(e), 'properties'));
  }
  return send(message);
}

/** An error as a $exception event (its type, message and this extension's stack frames). */
export function captureException(error, properties) {
  let message;
  try {
    message = { op: 'captureException', error: errorData(error) };
    if (properties !== undefined && properties !== null) message.properties = toJson(properties, 'properties', 1, [], { bytes: 0 });
  } catch (e) {
    return Promise.reject(e instanceof InhouseError ? e : new InhouseError('INVALID_PROPERTIES', describe(e), 'properties'));
  }
  return send(message);
}

/** What is sent of an error: plain strings, read without letting a getter throw. */
function errorData(error) {
  const text = (read) => {
    try {
      const v = read();
      return typeof v === 'string' ? v : undefined;
    } catch {
      return undefined;
    }
  };
  if (error !== null && typeof error === 'object') {
    return { type: text(() => error.name) ?? 'Error', message: text(() => error.message) ?? describe(error), stack: text(() => error.stack) };
  }
  return { type: 'Error', message: describe(error) };
}

/** Opt in or out from any page (an options-page toggle); persisted by the background. */
export function setEnabled(enabled, options) {
  return send({ op: 'setEnabled', enabled: enabled === true, purge: options?.purge === true });
}

export function isEnabled() {
  return send({ op: 'isEnabled' });
}

// With the background's captureErrors on, this page's uncaught errors and unhandled rejections
// become $exception events too. (In a content script the background keeps only errors with a
// frame of this extension: the host page's own errors are not ours.)
if (typeof window !== 'undefined' && typeof chrome !== 'undefined' && chrome.runtime?.id) {
  send({ op: 'settings' }).then(
    (settings) => {
      if (!settings?.captureErrors) return;
      window.addEventListener('error', (e) => captureException(e.error ?? e.message).catch(() => {}));
      window.addEventListener('unhandledrejection', (e) => captureException(e.reason).catch(() => {}));
    },
    () => {},
  );
}

/** The background tracker's stats. */
export function stats() {
  return send({ op: 'stats' });
}

/**
 * Asks the background tracker to deliver now; resolves like Tracker.flush(). A wait after
 * network errors is not cut short from here (only the background's own tracker.flush() does
 * that), so many flush() calls during an outage do not each cost a request.
 */
export function flush() {
  return send({ op: 'flush' });
}
