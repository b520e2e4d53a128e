// @inhouse/chrome-tracker/client: track from content scripts, popups and options pages.
// No wasm and no credentials here: events go to the background's tracker by message, and the
// promise settles when the background has stored them durably.

const MESSAGE_TAG = '__inhouse_tracker__';

/** Same class as the main entry's InhouseError (code, message, field). */
export class InhouseError extends Error {
  constructor(code, message, field) {
    super(message);
    this.name = 'InhouseError';
    this.code = code;
    if (field !== undefined) this.field = field;
  }
}

// Extension messaging serializes as JSON, which silently drops functions and turns NaN into
// null. Refuse those here, naming the spot; the background validates everything else.
function checkJson(value, path, seen) {
  const t = typeof value;
  if (t === 'function' || t === 'symbol' || t === 'bigint') {
    throw new InhouseError('INVALID_PROPERTIES', `${path} is a ${t}, which is not JSON`, path);
  }
  if (t === 'number' && !Number.isFinite(value)) {
    throw new InhouseError('INVALID_PROPERTIES', `${path} is ${value}, which JSON cannot represent`, path);
  }
  if (value === null || t !== 'object' || value instanceof Date) return;
  if (seen.includes(value)) throw new InhouseError('INVALID_PROPERTIES', `${path} is a circular reference`, path);
  seen.push(value);
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      if (v === undefined) throw new InhouseError('INVALID_PROPERTIES', `${path}[${i}] is undefined; use null in arrays`, `${path}[${i}]`);
      checkJson(v, `${path}[${i}]`, seen);
    });
  } else {
    const proto = Object.getPrototypeOf(value);
    if (proto !== null && Object.getPrototypeOf(proto) !== null) {
      const name = value.constructor?.name || 'object';
      throw new InhouseError('INVALID_PROPERTIES', `${path} is an instance of ${name}, not a plain object`, path);
    }
    for (const k of Object.keys(value)) checkJson(value[k], `${path}.${k}`, seen);
  }
  seen.pop();
}

async function send(message) {
  let reply;
  try {
    reply = await chrome.runtime.sendMessage({ [MESSAGE_TAG]: 1, ...message });
  } catch (e) {
    throw new InhouseError('SHUT_DOWN', `the background service worker did not answer: ${e.message}`);
  }
  if (!reply) throw new InhouseError('SHUT_DOWN', 'no tracker in the background: call init() in the service worker');
  if (!reply.ok) throw new InhouseError(reply.error.code, reply.error.message, reply.error.field);
  return reply.result;
}

/** Tracks an event through the background. Resolves with {id, status} once it is stored. */
export function track(eventName, properties, options) {
  try {
    if (properties !== undefined && properties !== null) checkJson(properties, 'properties', []);
  } catch (e) {
    return Promise.reject(e);
  }
  return send({ op: 'track', eventName, properties, options });
}

/** The background tracker's stats. */
export function stats() {
  return send({ op: 'stats' });
}

/** Asks the background tracker to deliver now; resolves like Tracker.flush(). */
export function flush() {
  return send({ op: 'flush' });
}
