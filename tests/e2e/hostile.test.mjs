// Hostile input and hostile callers ("never stop, never lose"): properties built to break a
// validator (throwing getters and index getters, revoked Proxies and Proxies whose traps throw,
// nesting far past the limit, cycles, values JSON cannot carry, events too large), tracked in
// the background worker and through `/client` from an extension page; init() called where it
// does not belong; flush() called 200 times from a page during an outage.
//
// The hostile values are made inside the browser (Proxies and getters cannot cross
// page.evaluate), by `lab` below, which each evaluated function receives: withLab() embeds its
// source. The PRNG is seeded (E2E_SEED overrides the default) so a failure can be replayed.
import {
  defineTests, assert, eq, canon, summarize, byName, waitStored, env, trackInWorker, workerStats, settle, log,
  sleep, waitFor, problems, userProps } from './lib.mjs';

const { tests, test } = defineTests();
export default tests;

const SEED = Number(process.env.E2E_SEED ?? 20261122) >>> 0;
// What a wasm that trapped, or a Rust panic, says: never acceptable in an error a caller sees.
const TRAP = /memory access out of bounds|^unreachable|unreachable (code|executed)|RuntimeError|already (mutably )?borrowed|recursive use of an object|null pointer|panicked|Maximum call stack/i;

/**
 * Runs in the browser. `lab(seed)` → { rand, int, pick, valid(), boundary(kind), hostile(kind),
 * HOSTILE, BOUNDARY }. A case is { kind, props, field, codes, says } (hostile) or
 * { kind, props, expected } (valid; `expected` is the JSON the server must store).
 */
function lab(seed) {
  let state = seed >>> 0;
  const rand = () => {
    state = (state + 0x6d2b79f5) >>> 0; // mulberry32
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(rand() * n);
  const pick = (xs) => xs[int(xs.length)];

  // ---- valid values (each event stays far below the default 32 KiB maxEventBytes)
  const KEYS = ['a', 'plan', 'seats', 'ü', 'with space', 'with.dot', 'x_1', 'emoji😀', 'quote"', 'back\\slash', ''];
  const STRINGS = ['', 'pro', 'ü✓', 'line\nbreak', 'tab\t', 'quote " and \\ backslash', '😀 emoji', '\u0001 control', 'x'.repeat(100)];
  const scalar = () => {
    switch (int(7)) {
      case 0: return int(2 ** 31) - 2 ** 30;
      case 1: return Math.round(rand() * 1e6) / 1000;
      case 2: return rand() < 0.5;
      case 3: return null;
      case 4: return new Date(Date.UTC(2000 + int(60), int(12), 1 + int(28), int(24), int(60), int(60), int(1000)));
      case 5: return pick([0, -0, 1e21, 1.5e-7, -1, 2 ** 53 - 1]);
      default: return pick(STRINGS);
    }
  };
  let nodes = 0;
  // `level`: the nesting level a container made here opens (the properties object is 1).
  const value = (level) => {
    const r = rand();
    if (level <= 10 && nodes < 60 && r < 0.2) {
      nodes++;
      return Array.from({ length: int(4) }, () => value(level + 1));
    }
    if (level <= 10 && nodes < 60 && r < 0.4) {
      nodes++;
      return object(level, int(4));
    }
    return scalar();
  };
  const object = (level, n) => {
    const o = {};
    for (let i = 0; i < n; i++) o[pick(KEYS)] = rand() < 0.05 ? undefined : value(level + 1);
    return o;
  };
  const chain = (count, arrays, key = 'd') => {
    let inner = arrays ? [] : {};
    for (let k = 1; k < count; k++) inner = arrays ? [inner] : { [key]: inner };
    return inner;
  };
  const validCase = (kind, props) => ({ kind, valid: true, props, expected: props === undefined ? '{}' : JSON.stringify(props) });
  // Valid at the very limits: a broken limit check refuses these.
  const BOUNDARY = {
    depth10: () => ({ case: 'depth10', d: chain(9, false) }), // root + 9 = 10 levels
    depth10Arrays: () => ({ case: 'depth10Arrays', d: chain(9, true) }),
    depth10Mixed: () => ({ case: 'depth10Mixed', d: [{ e: [{ f: [{ g: [{ h: [] }] }] }] }] }), // levels 2..10
    string8192: () => ({ case: 'string8192', s: 'x'.repeat(8192) }),
    utf8String8192: () => ({ case: 'utf8String8192', s: 'é'.repeat(4096) }), // 2 bytes each
    emojiString8192: () => ({ case: 'emojiString8192', s: '😀'.repeat(2048) }), // 4 bytes each
    key8192: () => ({ case: 'key8192', ['k'.repeat(8192)]: 1 }),
    none: () => undefined,
    empty: () => ({}),
  };
  const valid = () => {
    nodes = 0;
    return validCase('random', { case: 'random', ...object(1, 1 + int(5)) });
  };
  const boundary = (kind) => validCase(kind, BOUNDARY[kind]());

  // ---- hostile values: make(path, level, top) → { value, field, codes?, says? }, where `path`
  // and `level` say where the value sits; `field` is the spot the error must name (a list:
  // any of them), null when the error names none (EVENT_TOO_LARGE).
  const revoked = (target) => {
    const r = Proxy.revocable(target ?? {}, {});
    r.revoke();
    return r.proxy;
  };
  const throwing = (thrown) => {
    const o = { before: 1 };
    Object.defineProperty(o, 'bad', { enumerable: true, get() { throw thrown(); } });
    return o;
  };
  const s8000 = 's'.repeat(8000);
  const H = {
    getter: { make: (p) => ({ value: throwing(() => new Error('getter threw')), field: `${p}.bad`, says: 'threw' }) },
    getterThrowsSymbol: { make: (p) => ({ value: throwing(() => Symbol('thrown')), field: `${p}.bad` }) },
    getterThrowsNull: { make: (p) => ({ value: throwing(() => null), field: `${p}.bad` }) },
    getterThrowsRevokedProxy: { make: (p) => ({ value: throwing(() => revoked()), field: `${p}.bad` }) },
    getterThrowsHostileError: {
      make: (p) => ({
        value: throwing(() => ({ get message() { throw new Error('message getter threw'); }, toString() { throw new Error('toString threw'); } })),
        field: `${p}.bad`,
      }),
    },
    getterReturnsRevokedProxy: {
      make: (p) => {
        const o = {};
        Object.defineProperty(o, 'r', { enumerable: true, get: () => revoked() });
        return { value: o, field: `${p}.r` };
      },
    },
    arrayIndexGetter: {
      make: (p) => {
        const tags = ['a', 'b', 'c'];
        Object.defineProperty(tags, 2, { get() { throw new RangeError('index getter threw'); } });
        return { value: { tags }, field: `${p}.tags[2]`, says: 'threw' };
      },
    },
    revokedProxy: { make: (p) => ({ value: revoked(), field: p }) },
    revokedArrayProxy: { make: (p) => ({ value: revoked([]), field: p }) },
    revokedProxyInArray: { nestedOnly: true, make: (p) => ({ value: [1, revoked()], field: `${p}[1]` }) },
    ownKeysThrows: { make: (p) => ({ value: new Proxy({ a: 1 }, { ownKeys() { throw new TypeError('ownKeys trap threw'); } }), field: p }) },
    ownKeysInvalid: { make: (p) => ({ value: new Proxy({}, { ownKeys: () => ['a', 'a'] }), field: p }) },
    getOwnPropertyDescriptorThrows: {
      make: (p) => ({ value: new Proxy({ a: 1 }, { getOwnPropertyDescriptor() { throw new Error('getOwnPropertyDescriptor trap threw'); } }), field: p }),
    },
    getPrototypeOfThrows: { make: (p) => ({ value: new Proxy({ a: 1 }, { getPrototypeOf() { throw new Error('getPrototypeOf trap threw'); } }), field: p }) },
    getTrapThrows: { make: (p) => ({ value: new Proxy({ a: 1 }, { get() { throw new Error('get trap threw'); } }), field: `${p}.a` }) },
    lengthTrapThrows: {
      make: (p) => ({
        value: new Proxy([], { get(t, k, r) { if (k === 'length') throw new Error('length trap threw'); return Reflect.get(t, k, r); } }),
        field: [p, `${p}.length`],
      }),
    },
    deep: {
      make: (p, level, top) => {
        const levels = 11 + int(4990); // counted from the properties object
        const arrays = !top && rand() < 0.5;
        return { value: chain(levels - level + 1, arrays), field: p + (arrays ? '[0]' : '.d').repeat(11 - level), says: '10 levels', levels };
      },
    },
    longString: { make: (p) => ({ value: 'x'.repeat(8193 + int(20000)), field: p, codes: ['INVALID_PROPERTIES', 'EVENT_TOO_LARGE'] }) },
    utf8LongString: { make: (p) => ({ value: 'é'.repeat(4097), field: p }) }, // 8194 bytes in 4097 units
    longKey: {
      make: (p) => {
        const k = 'k'.repeat(8193);
        return { value: { [k]: 1 }, field: `${p}.${k}` };
      },
    },
    symbol: { make: (p) => ({ value: Symbol('s'), field: p }) },
    func: { make: (p) => ({ value: function handler() {}, field: p }) },
    bigint: { make: (p) => ({ value: BigInt(int(1000)), field: p }) },
    nan: { make: (p) => ({ value: NaN, field: p }) },
    infinity: { make: (p) => ({ value: pick([Infinity, -Infinity]), field: p }) },
    cycle: {
      make: (p) => {
        const o = { a: 1 };
        o.self = o;
        return { value: o, field: `${p}.self`, says: 'circular' };
      },
    },
    cycleInArray: {
      nestedOnly: true,
      make: (p) => {
        const a = [1];
        a.push(a);
        return { value: a, field: `${p}[1]`, says: 'circular' };
      },
    },
    cycleDeep: {
      make: (p) => {
        const x = { y: { z: {} } };
        x.y.z.back = x;
        return { value: x, field: `${p}.y.z.back`, says: 'circular' };
      },
    },
    classInstance: {
      make: (p) => {
        const value = pick([
          () => new Map([[1, 2]]),
          () => new Set([1]),
          () => new (class Point { constructor() { this.x = 1; } })(),
          () => new Uint8Array(4),
          () => new Error('an error'),
          () => /regex/,
          () => new String('boxed'),
          () => Promise.resolve(1),
          () => new ArrayBuffer(8),
        ])();
        return { value, field: p };
      },
    },
    undefinedInArray: { nestedOnly: true, make: (p) => ({ value: [1, undefined, 3], field: `${p}[1]` }) },
    // eslint-disable-next-line no-sparse-arrays
    sparseArray: { nestedOnly: true, make: (p) => ({ value: [1, , 3], field: `${p}[1]` }) },
    invalidDate: { make: (p) => ({ value: new Date(NaN), field: p }) },
    toJSONThrows: { make: (p) => ({ value: { toJSON() { throw new Error('toJSON threw'); } }, field: `${p}.toJSON` }) },
    tooLarge: { make: () => ({ value: { a: s8000, b: s8000, c: s8000, d: s8000, e: s8000 }, field: null, codes: ['EVENT_TOO_LARGE'] }) },
    manyNumbers: { nestedOnly: true, make: () => ({ value: new Array(20000).fill(7), field: null, codes: ['EVENT_TOO_LARGE'] }) },
    reservedKey: { topOnly: true, make: () => ({ value: { a: 1, $event_id: 'forged' }, field: 'properties.$event_id' }) },
    notAnObject: { topOnly: true, make: () => ({ value: pick(['a string', 42, true, [1, 2]]), field: 'properties' }) },
  };
  const hostile = (kind, where) => {
    const h = H[kind];
    const top = h.topOnly || (!h.nestedOnly && (where === 'top' || (where !== 'nested' && rand() < 0.25)));
    if (top) {
      const c = h.make('properties', 1, true);
      return { kind, valid: false, top: true, props: c.value, field: c.field, codes: c.codes ?? ['INVALID_PROPERTIES'], says: c.says ?? null };
    }
    // Inside 1 to 4 wrapping objects, after a valid sibling.
    const keys = Array.from({ length: 1 + int(4) }, () => pick(['w', 'user', 'ctx']));
    const c = h.make(`properties.${keys.join('.')}`, keys.length + 1, false);
    let v = c.value;
    for (let d = keys.length - 1; d >= 1; d--) v = { [keys[d]]: v };
    return { kind, valid: false, top: false, props: { before: 'ok', [keys[0]]: v }, field: c.field, codes: c.codes ?? ['INVALID_PROPERTIES'], says: c.says ?? null };
  };

  /** How a call ended, as plain data (whatever was thrown, reading it must not throw here). */
  const outcome = async (call) => {
    let p;
    try {
      p = call();
    } catch (e) {
      return { outcome: 'threw synchronously', ...describe(e) };
    }
    if (!p || typeof p.then !== 'function') return { outcome: 'returned a non-promise' };
    const timeout = new Promise((r) => setTimeout(() => r('pending'), 30_000));
    return Promise.race([
      p.then((r) => ({ outcome: 'resolved', status: r?.status, id: r?.id, result: JSON.stringify(r) }), (e) => ({ outcome: 'rejected', ...describe(e) })),
      timeout.then(() => ({ outcome: 'never settled (30 s)' })),
    ]);
  };
  const describe = (e) => {
    const d = {};
    try {
      d.isError = e instanceof Error;
      d.name = String(e?.name);
      d.ctor = String(e?.constructor?.name);
      d.code = e?.code === undefined ? null : String(e.code);
      d.field = e?.field === undefined ? null : String(e.field);
      d.message = String(e?.message ?? e);
    } catch (x) {
      d.message = `(could not describe the error: ${x})`;
    }
    return d;
  };

  return { rand, int, pick, valid, boundary, hostile, outcome, describe, HOSTILE: Object.keys(H), BOUNDARY: Object.keys(BOUNDARY) };
}

/** fn(arg, lab), evaluated in the browser with `lab` defined there. */
function withLab(fn) {
  // A function made here from source text: Playwright sends its source to the browser, where
  // no eval is needed (the extension's CSP forbids it).
  // eslint-disable-next-line no-new-func
  return new Function('arg', `const lab = ${lab.toString()};\nreturn (${fn.toString()})(arg, lab);`);
}

/** Problems with one hostile case's outcome (empty when it was refused as it must be). */
function hostileProblems(r, { client = false } = {}) {
  const out = [];
  const where = `#${r.i} ${r.kind}${r.top ? ' (top level)' : ''}`;
  if (r.outcome !== 'rejected') {
    out.push(`${where}: ${r.outcome}${r.outcome === 'resolved' ? ` with ${r.result}` : ''}${r.message ? `: ${r.name}: ${r.message}` : ''}`);
    return out;
  }
  const text = `${r.ctor}/${r.code}: ${String(r.message).slice(0, 200)}`;
  if (!r.isError || r.name !== 'InhouseError' || r.ctor !== 'InhouseError' || (client && !r.isClientClass)) out.push(`${where}: not an InhouseError: ${text}`);
  if (r.code === 'INTERNAL') out.push(`${where}: INTERNAL: ${text}`);
  if (!r.codes.includes(r.code)) out.push(`${where}: code ${r.code}, expected ${r.codes.join(' or ')}: ${text}`);
  if (TRAP.test(String(r.message))) out.push(`${where}: a trap or panic surfaced: ${text}`);
  if (r.code === 'INVALID_PROPERTIES' && r.field !== null) {
    const fields = [].concat(r.expectField ?? []);
    if (fields.length && !fields.includes(r.field)) out.push(`${where}: field ${JSON.stringify(r.field?.slice(0, 120))}, expected ${fields.map((f) => JSON.stringify(f.slice(0, 120))).join(' or ')}`);
  } else if (r.code === 'INVALID_PROPERTIES' && r.expectField) {
    out.push(`${where}: no field; expected ${JSON.stringify([].concat(r.expectField)[0].slice(0, 120))}`);
  }
  if (r.says && !String(r.message).includes(r.says)) out.push(`${where}: the message does not say "${r.says}": ${text}`);
  if (!r.message) out.push(`${where}: an empty message`);
  return out;
}

const list = (xs, n = 12) => (xs.length > n ? [...xs.slice(0, n), `… ${xs.length - n} more`] : xs).join('\n    ');

test('hostile properties in the background: valid events delivered once, hostile ones refused, the tracker keeps working', 180_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  const N = 300;
  log(`seed ${SEED} (E2E_SEED replays it)`);
  const run = await browser.inWorker(
    withLab(async ({ seed, n }, lab) => {
      const L = lab(seed);
      const tracker = globalThis.inhouseDemo.tracker();
      const records = [];
      const settling = [];
      let i = 0;
      while (i < n) {
        // Calls of one turn share one storage write: batches of 1 to 30, sometimes awaited,
        // sometimes a timer apart, valid and hostile interleaved.
        const batch = 1 + L.int(30);
        const pending = [];
        for (let j = 0; j < batch && i < n; j++, i++) {
          const r = L.rand();
          const c = r < 0.4 ? L.valid() : r < 0.5 ? L.boundary(L.pick(L.BOUNDARY)) : L.hostile(L.pick(L.HOSTILE));
          const rec = { i, kind: c.kind, valid: c.valid, top: !!c.top, expected: c.expected ?? null, expectField: c.field ?? null, codes: c.codes ?? null, says: c.says ?? null };
          records.push(rec);
          const name = c.valid ? 'e2e_fuzz_ok' : 'e2e_fuzz_bad';
          pending.push(L.outcome(() => tracker.track(name, c.props)).then((o) => Object.assign(rec, o)));
        }
        settling.push(...pending);
        const pause = L.rand();
        if (pause < 0.4) await Promise.all(pending);
        else if (pause < 0.7) await new Promise((r) => setTimeout(r, 0));
      }
      await Promise.all(settling);
      // Afterwards: the same tracker still answers and delivers.
      const after = {};
      after.sameTracker = globalThis.inhouseDemo.tracker() === tracker;
      after.stats = await L.outcome(async () => ({ status: 'stats', id: JSON.stringify(await tracker.stats()) }));
      after.track = await L.outcome(() => tracker.track('e2e_fuzz_after', { ok: true }));
      after.flush = await L.outcome(() => tracker.flush());
      return { records, after };
    }),
    { seed: SEED, n: N },
  );
  const { records, after } = run;
  eq(records.length, N, 'track() calls made');
  const valid = records.filter((r) => r.valid);
  const hostile = records.filter((r) => !r.valid);
  assert(valid.length > 50 && hostile.length > 50, `a mix of valid (${valid.length}) and hostile (${hostile.length}) calls`);
  // Every valid one resolved `queued`.
  const badValid = valid.filter((r) => r.outcome !== 'resolved' || r.status !== 'queued' || typeof r.id !== 'string')
    .map((r) => `#${r.i} ${r.kind}: ${r.outcome} ${r.status ?? ''} ${r.code ?? ''} ${r.field ?? ''} ${String(r.message ?? '').slice(0, 160)}`);
  assert(badValid.length === 0, `valid events not queued (${badValid.length} of ${valid.length}):\n    ${list(badValid)}`);
  // Every hostile one rejected with an InhouseError naming the spot.
  const badHostile = hostile.flatMap((r) => hostileProblems(r));
  assert(badHostile.length === 0, `hostile events not refused as they must be (${badHostile.length} problems):\n    ${list(badHostile)}`);
  // The tracker still works.
  assert(after.sameTracker, 'the demo still runs the same tracker');
  eq(after.stats.outcome, 'resolved', `stats() afterwards (${after.stats.message ?? ''})`);
  eq([after.track.outcome, after.track.status], ['resolved', 'queued'], `track() afterwards (${after.track.message ?? ''})`);
  eq(after.flush.outcome, 'resolved', `flush() afterwards (${after.flush.message ?? ''})`);
  assert(['empty', 'blocked'].includes(after.flush.status), `flush() afterwards resolves empty or blocked: ${after.flush.result}`);
  // At the server: each valid event exactly once, byte for byte what was tracked; no hostile one.
  await waitStored(server, byName('e2e_fuzz_ok'), valid.length, 60_000, `${valid.length} valid events`);
  await waitStored(server, byName('e2e_fuzz_after'), 1, 30_000, 'the event tracked afterwards');
  await sleep(1500);
  const all = await server.events();
  const ok = summarize(all, byName('e2e_fuzz_ok'));
  eq(ok.unique, valid.length, 'valid events stored (unique $event_id)');
  eq(ok.storedDuplicates, 0, 'valid events stored twice');
  eq(summarize(all, byName('e2e_fuzz_bad')).stored, 0, 'hostile events stored');
  const byId = new Map(ok.events.map((e) => [e.properties.$event_id, e]));
  const mismatched = [];
  for (const r of valid) {
    const e = byId.get(r.id);
    if (!e) {
      mismatched.push(`#${r.i} ${r.kind} (${r.id}): not stored`);
      continue;
    }
    const user = userProps(e.properties);
    if (canon(user) !== canon(JSON.parse(r.expected))) mismatched.push(`#${r.i} ${r.kind}: stored ${canon(user).slice(0, 200)}, tracked ${canon(JSON.parse(r.expected)).slice(0, 200)}`);
  }
  assert(mismatched.length === 0, `valid events stored differently from what was tracked:\n    ${list(mismatched)}`);
  const st = await workerStats(browser);
  eq(st.dropped, { rejected: 0, evicted: 0, retriesExhausted: 0, purged: 0, corrupt: 0, undeliverable: 0, filtered: 0, sampled: 0 }, 'stats().dropped');
  const traps = t.consoleLog.filter((m) => TRAP.test(m.text));
  eq(traps.map((m) => `${m.where}: ${m.text.slice(0, 200)}`), [], 'traps or panics in the console');
  const kinds = [...new Set(hostile.map((r) => r.kind))];
  log(`${N} calls: ${valid.length} valid (all stored once, as tracked), ${hostile.length} hostile of ${kinds.length} kinds (all refused: ${[...new Set(hostile.map((r) => r.code))].join(', ')}); ${problems(t.consoleLog).length} console warnings/errors`);
});

test('hostile properties through /client from an extension page: InhouseErrors naming the spot, never a raw error', 120_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  const page = await browser.openExtensionPage('options.html');
  const run = await page.evaluate(
    withLab(async ({ seed }, lab) => {
      const L = lab(seed);
      const client = await import('./vendor/inhouse/client.js');
      const records = [];
      let i = 0;
      const record = async (c, call, extra = {}) => {
        const rec = { i: i++, kind: c.kind, valid: !!c.valid, top: !!c.top, expected: c.expected ?? null, expectField: c.field ?? null, codes: c.codes ?? null, says: c.says ?? null, ...extra };
        records.push(rec);
        let thrown;
        Object.assign(rec, await L.outcome(() => {
          const p = call();
          p?.catch?.((e) => { thrown = e; });
          return p;
        }));
        try {
          rec.isClientClass = thrown instanceof client.InhouseError;
        } catch {
          rec.isClientClass = false; // a revoked Proxy thrown as it is
        }
        return rec;
      };
      // Every hostile kind nested and at the top level where it can be, then the boundary
      // cases that must pass, then the 100,000-level object that overflowed the old check.
      for (const kind of L.HOSTILE) {
        for (const where of ['nested', 'top']) {
          const c = L.hostile(kind, where);
          if (where === 'top' && !c.top) continue;
          if (where === 'nested' && c.top) continue;
          await record(c, () => client.track('e2e_client_bad', c.props));
        }
      }
      let deepest = {};
      for (let k = 1; k < 100_000; k++) deepest = { d: deepest };
      await record({ kind: 'deep100000', field: `properties${'.d'.repeat(10)}`, codes: ['INVALID_PROPERTIES'], says: '10 levels' }, () => client.track('e2e_client_bad', deepest));
      let deepArray = [];
      for (let k = 1; k < 100_000; k++) deepArray = [deepArray];
      await record({ kind: 'deepArray100000', field: `properties.a${'[0]'.repeat(9)}`, codes: ['INVALID_PROPERTIES'], says: '10 levels' }, () => client.track('e2e_client_bad', { a: deepArray }));
      // The name and the options, hostile too.
      const { proxy, revoke } = Proxy.revocable({}, {});
      revoke();
      await record({ kind: 'revokedEventName', field: 'eventName', codes: ['INVALID_EVENT_NAME'] }, () => client.track(proxy, {}));
      await record({ kind: 'throwingDedupKey', field: null, codes: ['INVALID_TRACK_OPTION'] }, () => client.track('e2e_client_bad', {}, { get dedupKey() { throw new Error('dedupKey getter threw'); } }));
      await record({ kind: 'revokedOptions', field: null, codes: ['INVALID_TRACK_OPTION'] }, () => client.track('e2e_client_bad', {}, proxy));
      // A message the browser cannot serialize (simulated: sendMessage throwing DataCloneError).
      const runtime = chrome.runtime;
      const original = runtime.sendMessage;
      let patched = false;
      try {
        runtime.sendMessage = function () { throw new DOMException('#<Object> could not be cloned.', 'DataCloneError'); };
        patched = runtime.sendMessage !== original;
      } catch {}
      if (patched) {
        try {
          await record({ kind: 'dataCloneError', field: 'properties', codes: ['INVALID_PROPERTIES'] }, () => client.track('e2e_client_bad', { a: 1 }));
        } finally {
          runtime.sendMessage = original;
        }
      }
      // Valid at the limits: must be queued.
      for (const kind of L.BOUNDARY) {
        const c = L.boundary(kind);
        await record(c, () => client.track('e2e_client_ok', c.props));
      }
      const after = await L.outcome(() => client.track('e2e_client_after', { ok: true }));
      const stats = await L.outcome(async () => ({ status: 'stats', id: JSON.stringify(await client.stats()) }));
      return { records, after, stats, patched };
    }),
    { seed: SEED },
  );
  const { records, after, stats, patched } = run;
  const hostile = records.filter((r) => !r.valid);
  const valid = records.filter((r) => r.valid);
  const badHostile = hostile.flatMap((r) => hostileProblems(r, { client: true }));
  assert(badHostile.length === 0, `hostile calls through /client not refused as they must be (${badHostile.length} problems):\n    ${list(badHostile, 20)}`);
  const badValid = valid.filter((r) => r.outcome !== 'resolved' || r.status !== 'queued')
    .map((r) => `${r.kind}: ${r.outcome} ${r.code ?? ''} ${r.field ?? ''} ${String(r.message ?? '').slice(0, 160)}`);
  assert(badValid.length === 0, `valid events at the limits not queued through /client:\n    ${list(badValid)}`);
  eq([after.outcome, after.status], ['resolved', 'queued'], `a track() through /client afterwards (${after.message ?? ''})`);
  eq(stats.outcome, 'resolved', `stats() through /client afterwards (${stats.message ?? ''})`);
  await waitStored(server, byName('e2e_client_ok', 'e2e_client_after'), valid.length + 1, 30_000);
  await sleep(1000);
  const all = await server.events();
  const ok = summarize(all, byName('e2e_client_ok'));
  eq(ok.unique, valid.length, 'valid events stored');
  eq(ok.storedDuplicates, 0, 'valid events stored twice');
  eq(new Set(ok.events.map((e) => e.properties.$event_id)), new Set(valid.map((r) => r.id)), 'the valid events stored are the ones tracked');
  for (const r of valid) {
    const e = ok.events.find((x) => x.properties.$event_id === r.id);
    const user = userProps(e.properties);
    eq(user, JSON.parse(r.expected), `${r.kind}: stored as tracked`);
  }
  eq(summarize(all, byName('e2e_client_bad')).stored, 0, 'hostile events stored');
  const st = await workerStats(browser);
  eq(st.dropped, { rejected: 0, evicted: 0, retriesExhausted: 0, purged: 0, corrupt: 0, undeliverable: 0, filtered: 0, sampled: 0 }, 'stats().dropped');
  const pageErrors = t.consoleLog.filter((m) => m.type === 'pageerror' || TRAP.test(m.text));
  eq(pageErrors.map((m) => `${m.where}: ${m.text.slice(0, 200)}`), [], 'uncaught errors, traps or panics');
  log(`${hostile.length} hostile calls refused (${[...new Set(hostile.map((r) => r.code))].join(', ')}), ${valid.length} at the limits queued and stored as tracked; DataCloneError ${patched ? 'simulated' : 'not simulated (chrome.runtime.sendMessage not replaceable)'}`);
});

test('init() in an extension page is refused with INVALID_OPTION; the background tracker delivers everything', 90_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  const options = await browser.openExtensionPage('options.html');
  const refused = await options.evaluate(async () => {
    const mod = await import('./vendor/inhouse/index.js');
    const config = await (await fetch(chrome.runtime.getURL('demo-config.json'))).json();
    const attempt = () => {
      try {
        const tracker = mod.init({ tokenId: config.tokenId, tokenSecret: config.tokenSecret, baseUrl: config.baseUrl });
        tracker.shutdown().catch(() => {}); // a second tracker must not keep running
        return { returned: true };
      } catch (e) {
        return { isInhouse: e instanceof mod.InhouseError, name: e?.name, code: e?.code, message: String(e?.message) };
      }
    };
    return [attempt(), attempt()];
  });
  for (const [k, r] of refused.entries()) {
    assert(!r.returned, `init() #${k + 1} in the options page returned a tracker`);
    assert(r.isInhouse && r.name === 'InhouseError', `init() #${k + 1} throws an InhouseError: ${JSON.stringify(r)}`);
    eq(r.code, 'INVALID_OPTION', `init() #${k + 1}: code`);
    assert(/background service worker/.test(r.message) && r.message.includes('@inhouse/chrome-tracker/client'), `the message names the service worker and the /client entry: ${r.message}`);
  }
  // The page keeps the loader imported (its message listener registered) while the background
  // and a popup track: every event reaches the server once.
  const N = 40;
  const popup = await browser.openExtensionPage('popup.html', { width: 340, height: 420 });
  const [fromWorker, fromPopup] = await Promise.all([
    trackInWorker(browser, 'e2e_two_bg', N),
    popup.evaluate(async (n) => {
      const { track } = await import('./vendor/inhouse/client.js');
      return Promise.all(Array.from({ length: n }, (_, i) => track('e2e_two_client', { i })));
    }, N),
  ]);
  eq(fromWorker.filter((r) => r.status === 'queued').length, N, 'queued in the background');
  eq(fromPopup.filter((r) => r.status === 'queued').length, N, 'queued through /client');
  await waitStored(server, byName('e2e_two_bg', 'e2e_two_client'), 2 * N, 30_000);
  await sleep(1500);
  const all = await server.events();
  for (const [name, results] of [['e2e_two_bg', fromWorker], ['e2e_two_client', fromPopup]]) {
    const s = summarize(all, byName(name));
    eq(s.unique, N, `${name}: unique stored`);
    eq(s.storedDuplicates, 0, `${name}: stored twice`);
    eq(new Set(s.events.map((e) => e.properties.$event_id)), new Set(results.map((r) => r.id)), `${name}: the events tracked`);
  }
  const st = await workerStats(browser);
  eq(st.queued, 0, 'queued in the background afterwards');
  eq(st.dropped, { rejected: 0, evicted: 0, retriesExhausted: 0, purged: 0, corrupt: 0, undeliverable: 0, filtered: 0, sampled: 0 }, 'stats().dropped');
  log(`refused: ${refused[0].message}; ${2 * N} events stored once`);
});

test('200 flush() calls through /client during an outage do not each cause a request; the background\'s own flush() still does', 120_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  await server.faults({ down: true });
  const N = 30;
  const r = await trackInWorker(browser, 'e2e_storm', N);
  eq(r.filter((x) => x.status === 'queued').length, N, 'queued while down');
  // Settled into a network backoff (a first round and a probe failed), then a few seconds more:
  // the SDK's own probes, one at a time, are seconds apart by the time the storm starts.
  await waitFor(async () => {
    const s = await workerStats(browser);
    return s.requests >= 2 && ['backoff', 'offline'].includes(s.state) ? s : null;
  }, { timeoutMs: 30_000, intervalMs: 250, what: 'a network backoff after 2 failed requests' });
  await sleep(3000);
  const backoff = await workerStats(browser);
  const page = await browser.openExtensionPage('options.html');
  // stats().requests counts since the worker started: the worker must not restart meanwhile.
  const sameWorker = () => browser.inWorker(() => globalThis.__e2eStormMark === true);
  await browser.inWorker(() => { globalThis.__e2eStormMark = true; });
  const before = await workerStats(browser);
  const storm = await page.evaluate(async (n) => {
    const { flush } = await import('./vendor/inhouse/client.js');
    const started = Date.now();
    const statuses = {};
    const errors = [];
    for (let i = 0; i < n; i++) {
      try {
        const r = await flush();
        const k = `${r?.status}/${r?.reason}`;
        statuses[k] = (statuses[k] ?? 0) + 1;
      } catch (e) {
        errors.push(`${e?.code}: ${e?.message}`);
      }
    }
    return { statuses, errors, ms: Date.now() - started };
  }, 200);
  const afterStorm = await workerStats(browser);
  assert(await sameWorker(), 'the service worker restarted during the flush() calls: its request count does not cover them');
  const stormRequests = afterStorm.requests - before.requests;
  eq(storm.errors, [], 'flush() calls that rejected');
  const blocked = Object.entries(storm.statuses).filter(([k]) => k.startsWith('blocked/')).reduce((a, [, v]) => a + v, 0);
  eq(blocked, 200, `flush() calls resolved blocked (${JSON.stringify(storm.statuses)})`);
  // The SDK's own probes (seconds apart by now) may fall in the window; one per flush may not.
  assert(stormRequests <= 5, `the 200 relayed flush() calls caused ${stormRequests} requests in ${storm.ms} ms (at most 5 allowed: the backoff's own probes); each relayed flush ended the backoff`);
  eq(summarize(await server.events(), byName('e2e_storm')).stored, 0, 'stored while down');
  // The background's own tracker.flush() still ends a network backoff: a request at once.
  let direct = null;
  for (let attempt = 0; attempt < 3 && !(direct && direct.after > direct.before); attempt++) {
    if (attempt) await sleep(300); // a probe of its own may have been in flight
    direct = await browser.inWorker(async () => {
      const tracker = globalThis.inhouseDemo.tracker();
      const before = (await tracker.stats()).requests;
      const result = await tracker.flush();
      return { before, after: (await tracker.stats()).requests, result };
    });
  }
  assert(direct.after > direct.before, `the background's own flush() during the backoff sent no request (${JSON.stringify(direct)})`);
  // Up again: everything delivered once.
  await server.faults({ down: false });
  await browser.inWorker(() => { globalThis.inhouseDemo.tracker().flush(); }); // no need to wait out the backoff
  await waitStored(server, byName('e2e_storm'), N, 75_000);
  await sleep(1500);
  const fin = summarize(await server.events(), byName('e2e_storm'));
  eq(fin.unique, N, 'unique stored');
  eq(fin.storedDuplicates, 0, 'stored twice');
  const st = await workerStats(browser);
  eq(st.dropped, { rejected: 0, evicted: 0, retriesExhausted: 0, purged: 0, corrupt: 0, undeliverable: 0, filtered: 0, sampled: 0 }, 'stats().dropped');
  log(`backoff reached after ${backoff.requests} requests; 200 relayed flushes in ${storm.ms} ms caused ${stormRequests} request(s) (${JSON.stringify(storm.statuses)}); the background's flush() sent ${direct.after - direct.before}; all ${N} delivered once`);
});
