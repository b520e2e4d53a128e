// A trap (a bug that aborts the wasm) in Node through the /testing entry, which takes the same
// path as init() in a worker: the loader reports INTERNAL once through onError, rebuilds the
// tracker from storage on a fresh instance of the wasm, and delivery goes on. The discarded
// instance's pending callbacks (timers, storage and fetch answers) never fire: node:test fails a
// test that leaves an error behind ("Cannot invoke closure from previous WASM instance").
import assert from 'node:assert/strict';
import { test, afterEach } from 'node:test';

import { createTestTracker, reset, InhouseError, sleep, named, drained } from './lib.mjs';

afterEach(() => reset());

test('a trap is reported once as INTERNAL and the tracker is rebuilt from storage', async () => {
  const errors = [];
  const t = createTestTracker({ retry: { baseDelayMs: 100 }, onError: (e) => errors.push(e.code) });
  await t.ready;
  await drained(t);
  t.respondWith(503);
  await t.track('stored_before_the_trap');
  for (let i = 0; i < 100 && named(t, 'stored_before_the_trap').length === 0; i++) await sleep(10);
  assert.equal(named(t, 'stored_before_the_trap')[0]?.status, 503, 'answered 503: it stays queued');
  const trapped = await t._trapForTests().then(() => null, (e) => e);
  assert.ok(trapped instanceof InhouseError && trapped.code === 'INTERNAL', `${trapped}`);
  // Every later call works on the rebuilt tracker, which read the queue back from storage.
  t.respondWith(200);
  const r = await t.track('after_the_trap', { n: 1 });
  assert.equal(r.status, 'queued');
  assert.ok((await t.stats()).queued >= 2, 'the event stored before the trap is still queued');
  await drained(t);
  assert.equal(named(t, 'stored_before_the_trap').filter((e) => e.status === 200).length, 1);
  assert.equal(named(t, 'after_the_trap').length, 1);
  assert.deepEqual(errors.filter((c) => c === 'INTERNAL'), ['INTERNAL'], 'reported once');
  // The old instance's answers land nowhere: a 2xx whose done-mark it never wrote is sent again
  // by the rebuilt tracker (at least once), never lost.
});


test('a trap before the tracker is ready: ready resolves once the rebuilt tracker has read the queue', async () => {
  const errors = [];
  const t = createTestTracker({ onError: (e) => errors.push(e.code) });
  const trapped = await t._trapForTests().then(() => null, (e) => e);
  assert.equal(trapped?.code, 'INTERNAL');
  await t.ready;
  assert.equal(typeof (await t.stats()).queued, 'number');
  assert.equal((await t.track('after_an_early_trap')).status, 'queued');
  assert.deepEqual(errors, ['INTERNAL']);
});

test('a trap after shutdown: later calls fail at once instead of spinning', { timeout: 10_000 }, async () => {
  const t = createTestTracker();
  await t.ready;
  await t.dispose();
  await t._trapForTests().catch(() => {});
  const outcome = await Promise.race([t.stats().then(() => 'resolved', (e) => `rejected ${e.code}`), sleep(1000).then(() => 'hung')]);
  assert.match(outcome, /^(resolved|rejected)/);
});
