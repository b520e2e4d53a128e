// The loader (pkg-template/index.js) and the wasm behind it, in Node through the /testing entry,
// which takes the same path as init() in a worker: customer hooks that call back, calls made
// before the wasm is ready, what beforeSend may return, one input with one answer on every path,
// consent and the secret (issue 22). Run by tests/loader/run.mjs against dist/pkg.
import assert from 'node:assert/strict';
import { test, afterEach } from 'node:test';

import { createTestTracker, reset, InhouseError, sleep, named, drained, own } from './lib.mjs';

afterEach(() => reset());

test('every method works from beforeSend, or rejects with an InhouseError', async () => {
  const seen = [];
  let t;
  const note = (what, p) => p.then((v) => seen.push([what, 'ok', v]), (e) => seen.push([what, e instanceof InhouseError ? e.code : `not an InhouseError: ${e}`]));
  t = createTestTracker({
    beforeSend(event) {
      if (event.eventName !== 'main') return event;
      note('flush', t.flush());
      note('track', t.track('companion', { of: 'main' }));
      note('register', t.register({ plan: 'pro' }));
      note('unregister', t.unregister('nothing'));
      note('stats', t.stats());
      note('identity', t.identity());
      note('isEnabled', t.isEnabled());
      note('setEnabled', t.setEnabled(true));
      note('captureException', t.captureException(new Error('from a hook')));
      note('page', t.page('hooked'));
      note('identify', t.identify('user_7'));
      return event;
    },
  });
  await t.ready;
  const r = await t.track('main', { a: 1 });
  assert.equal(r.status, 'queued');
  await drained(t);
  await sleep(20);
  const failed = seen.filter(([, outcome]) => outcome !== 'ok');
  assert.deepEqual(failed, [], 'no method failed from beforeSend');
  assert.equal(seen.length, 11);
  // Made inside the hook before register(): without the super property.
  assert.deepEqual(own(named(t, 'companion')[0].properties), { of: 'main' });
  assert.equal(named(t, 'main').length, 1);
  // Calls made inside beforeSend do not go through it again: a hook that tracks cannot loop.
  assert.equal(named(t, 'companion').length, 1);
});

test('every method works from onError and onDrop', async () => {
  const seen = [];
  let t;
  const calls = () => [t.stats(), t.identity(), t.isEnabled(), t.track('from_hook'), t.flush(), t.register({ x: 1 })];
  let once = false;
  const fromHook = () => {
    if (once) return;
    once = true;
    calls().forEach((p) => p.then(() => seen.push('ok'), (e) => seen.push(e.code ?? String(e))));
  };
  t = createTestTracker({
    beforeSend: (e) => (e.eventName === 'main' ? 'not an event' : e), // BEFORE_SEND_FAILED through onError
    onError: fromHook,
    onDrop: fromHook,
  });
  await t.ready;
  await t.track('main');
  await drained(t);
  await sleep(20);
  assert.ok(seen.length >= 6);
  assert.deepEqual([...new Set(seen)], ['ok']);
});

test('calls made before the wasm is ready store what they said when they were made', async () => {
  const t = createTestTracker({ retry: { baseDelayMs: 100 } });
  t.respondWith(503); // kept queued, so that the dedupKey can be checked
  // Not awaited: the wasm is not ready yet. One object reused and changed after each call.
  const props = { i: 0, nested: { v: 'first' } };
  const reused = { i: 0 };
  const opts = { dedupKey: 'k-1' };
  const calledAt = Date.now();
  const pending = [t.track('snap', props, opts)];
  props.i = 99;
  props.nested.v = 'changed';
  opts.dedupKey = 'k-changed';
  for (let i = 0; i < 5; i++) {
    reused.i = i;
    pending.push(t.track('reused', reused));
  }
  const traits = { plan: 'pro' };
  pending.push(t.identify('user_1', traits));
  traits.plan = 'changed';
  const supers = { tier: 'gold' };
  pending.push(t.register(supers));
  supers.tier = 'changed';
  await Promise.all(pending);
  const again = await t.track('snap', { i: 0, nested: { v: 'first' } }, { dedupKey: 'k-1' });
  assert.equal(again.status, 'deduplicated', 'the dedupKey used is the one given at the call');
  t.respondWith(200);
  await drained(t);
  const [snap] = named(t, 'snap').filter((e) => e.status === 200);
  assert.deepEqual(own(snap.properties), { i: 0, nested: { v: 'first' } });
  assert.ok(Date.parse(snap.properties.$time) - calledAt < 5, `$time taken at the call (${snap.properties.$time})`);
  assert.deepEqual(named(t, 'reused').filter((e) => e.status === 200).map((e) => e.properties.i).sort(), [0, 1, 2, 3, 4]);
  assert.equal(named(t, '$identify').at(-1).properties.plan, 'pro');
});

test('identity is the one at the call: track then reset in the same turn right after the start', async () => {
  const t = createTestTracker();
  await t.ready;
  await t.identify('user_a');
  await drained(t);
  const first = t.track('before_reset', {}, { dedupKey: 'once' });
  const neighbour = t.track('neighbour');
  const resetDone = t.reset();
  const after = t.track('after_reset');
  await Promise.all([first, neighbour, resetDone, after]);
  await drained(t);
  const [a] = named(t, 'before_reset');
  const [b] = named(t, 'neighbour');
  const [c] = named(t, 'after_reset');
  assert.equal(a.properties.$user_id, 'user_a');
  assert.equal(b.properties.$user_id, 'user_a');
  assert.equal(a.properties.$session_id, b.properties.$session_id);
  assert.equal(c.properties.$user_id, undefined);
  assert.notEqual(c.properties.$session_id, a.properties.$session_id);
});

test('a rejected identify changes nothing', async () => {
  const t = createTestTracker();
  await t.ready;
  await assert.rejects(t.identify('big', { blob: 'x'.repeat(8000), more: 'y'.repeat(8000), again: 'z'.repeat(8000), last: 'w'.repeat(8000), end: 'v'.repeat(4000) }), (e) => e.code === 'EVENT_TOO_LARGE');
  assert.equal((await t.identity()).userId, null);
  await t.track('next');
  await drained(t);
  assert.equal(named(t, 'next')[0].properties.$user_id, undefined);
});

test('beforeSend returning what cannot be sent keeps the event unchanged and says why', async () => {
  const errors = [];
  const proxy = new Proxy({}, { get: () => undefined });
  const throwing = {
    get properties() {
      throw new Error('boom');
    },
  };
  const returns = { a_string: () => 'x', a_boolean: () => true, a_number: () => 7, throwing_getter: () => throwing, a_proxy: () => proxy, dollar_rename: () => ({ eventName: '$x', properties: {} }), bad_rename: () => ({ eventName: 'Bad Name!', properties: {} }) };
  const t = createTestTracker({
    onError: (e) => errors.push([e.code, e.message]),
    beforeSend: (event) => (returns[event.eventName] ? returns[event.eventName]() : event.eventName === 'renamed' ? { eventName: 'New_Name', properties: { r: 1 } } : event),
  });
  await t.ready;
  for (const name of Object.keys(returns)) await t.track(name, { kept: name });
  await t.track('renamed', { r: 0 });
  await drained(t);
  for (const name of Object.keys(returns)) {
    const got = named(t, name);
    assert.equal(got.length, 1, `${name} stored under its own name`);
    assert.deepEqual(own(got[0].properties), { kept: name }, `${name} stored unchanged`);
  }
  assert.equal(errors.filter(([c]) => c === 'BEFORE_SEND_FAILED').length, Object.keys(returns).length, JSON.stringify(errors));
  // A valid rename is stored under the new name, normalised like track()'s.
  assert.deepEqual(own(named(t, 'new_name')[0].properties), { r: 1 });
  assert.equal(named(t, 'renamed').length, 0);
});

test('one input, one answer: a getter read twice, a throwing dedupKey getter', async () => {
  const t = createTestTracker();
  await t.ready;
  let reads = 0;
  const flaky = {
    get v() {
      reads++;
      return reads === 1 ? 1 : { nested: true };
    },
  };
  const r = await t.track('flaky', flaky);
  assert.equal(r.status, 'queued');
  const throwingKey = {
    get dedupKey() {
      throw new Error('no key');
    },
  };
  await assert.rejects(t.track('keyed', {}, throwingKey), (e) => e.code === 'INVALID_TRACK_OPTION' && e.field === 'dedupKey');
  await assert.rejects(t.client.track('keyed', {}, throwingKey), (e) => e.code === 'INVALID_TRACK_OPTION');
  await drained(t);
  assert.deepEqual(own(named(t, 'flaky')[0].properties), { v: 1 });
});

test('the testing entry has setCredentials, as its types say', async () => {
  const t = createTestTracker();
  await t.ready;
  await t.setCredentials({ tokenId: 'other_token', tokenSecret: 'other_secret' });
  await t.track('with_new_credentials');
  await drained(t);
  assert.equal(named(t, 'with_new_credentials')[0].headers['x-inhouse-token-id'], 'other_token');
});

test('opted out, identify and register store nothing', async () => {
  const t = createTestTracker({ enabled: false });
  await t.ready;
  await t.identify('user_secret_id', { plan: 'pro' });
  await t.register({ tier: 'gold' });
  const stored = JSON.stringify(t.stored());
  assert.ok(!stored.includes('user_secret_id') && !stored.includes('gold'), stored);
  await t.setEnabled(true);
  assert.ok(JSON.stringify(t.stored()).includes('user_secret_id'), 'stored once opted in');
});

test('the token secret is replaced in captured errors', async () => {
  const t = createTestTracker();
  await t.ready;
  await t.captureException(new Error('request failed with secret test_secret in its headers'));
  await drained(t);
  const [e] = named(t, '$exception');
  assert.equal(e.properties.message, 'request failed with secret [redacted] in its headers');
  assert.ok(!JSON.stringify(t.sent().map((s) => s.properties)).includes('test_secret'));
});

test('a rejected 9 MB string never crosses into the wasm: its memory does not grow', async () => {
  const t = createTestTracker();
  await t.ready;
  await t.track('warm_up', { s: 'x'.repeat(4000) });
  const before = t._wasmMemoryBytes();
  assert.ok(before > 0);
  const big = 'x'.repeat(9 * 1024 * 1024);
  for (const call of [() => t.track('big', { s: big }), () => t.track('big', { nested: { s: big } }), () => t.track('big', { list: [big] }), () => t.client.track('big', { s: big })]) {
    await assert.rejects(call(), (e) => e instanceof InhouseError && e.code === 'INVALID_PROPERTIES');
  }
  const grown = t._wasmMemoryBytes() - before;
  assert.ok(grown < 1024 * 1024, `the wasm's memory grew by ${grown} bytes`);
});

test('setEnabled takes its turn behind calls that wait: a call made opted out is not stored by a later opt-in', async () => {
  const t = createTestTracker({ enabled: false, beforeSend: (e) => e });
  await t.ready;
  const before = t.track('made_opted_out');
  const optIn = t.setEnabled(true);
  const after = t.track('made_opted_in');
  const [a, , c] = await Promise.all([before, optIn, after]);
  eqStatus(a, 'disabled');
  eqStatus(c, 'queued');
  await drained(t);
  assert.equal(named(t, 'made_opted_out').length, 0);
  assert.equal(named(t, 'made_opted_in').length, 1);
});

test('beforeSend that shuts the tracker down: the call it saw settles (stored by the shutdown, or refused), never left waiting', async () => {
  let t;
  t = createTestTracker({
    beforeSend(e) {
      if (e.eventName === 'last_one') t.dispose();
      return e;
    },
  });
  await t.ready;
  const outcome = await Promise.race([t.track('last_one').then((r) => r.status, (e) => e.code), sleep(2000).then(() => 'left waiting')]);
  assert.ok(['queued', 'SHUT_DOWN'].includes(outcome), outcome);
});

test('a rejected identify changes nothing, also when beforeSend made its event too large', async () => {
  const t = createTestTracker({ beforeSend: (e) => (e.eventName === '$identify' ? { ...e, properties: Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`k${i}`, 'x'.repeat(8000)])) } : e) });
  await t.ready;
  await assert.rejects(t.identify('big_user'), (e) => e.code === 'EVENT_TOO_LARGE');
  assert.equal((await t.identity()).userId, null);
});

function eqStatus(r, status) {
  assert.equal(r.status, status, JSON.stringify(r));
}
