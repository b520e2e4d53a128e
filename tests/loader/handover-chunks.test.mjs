// A long turn of track() calls is handed to the wasm in chunks as it goes (index.js,
// HANDOVER_CHUNK_CALLS), so the wasm's linear memory holds one chunk's text at a time: every call
// still answered, each as it was at its call (issue 26). `make bench` (memory step)
// measures the memory itself.
import assert from 'node:assert/strict';
import { test, afterEach } from 'node:test';

import { createTestTracker, reset, named, drained } from './lib.mjs';

afterEach(() => reset());

test('2,500 calls of one turn: handed over in chunks, all queued, each stored as it was at its call', async () => {
  const t = createTestTracker();
  await t.ready;
  const p = { i: -1 };
  const calls = [];
  for (let i = 0; i < 2500; i++) {
    p.i = i;
    calls.push(t.track('chunked', p));
  }
  p.i = 'changed after the turn';
  const results = await Promise.all(calls);
  assert.ok(results.every((r) => r.status === 'queued'));
  assert.equal(new Set(results.map((r) => r.id)).size, 2500);
  await drained(t);
  // Each call's event carries what the properties said at that call (sends may finish out of order).
  const byId = new Map(named(t, 'chunked').map((e) => [e.properties.$event_id, e.properties.i]));
  assert.equal(byId.size, 2500);
  assert.deepEqual(results.map((r) => byId.get(r.id)), Array.from({ length: 2500 }, (_, i) => i));
});
