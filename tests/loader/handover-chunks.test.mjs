// A turn of more track() calls than one crossing takes is handed to the wasm in chunks as it
// goes (index.js, HANDOVER_CHUNK_CALLS = 20,000), so the wasm's linear memory holds one chunk's
// text at a time: every call still answered with its own result, each stored as it was at its
// call (issue 26). `make bench` (memory step) measures the memory itself.
import assert from 'node:assert/strict';
import { test, afterEach } from 'node:test';

import { createTestTracker, reset, named, drained } from './lib.mjs';

afterEach(() => reset());

test('45,000 calls of one turn (three crossings): each answered with its own id, the kept ones stored as they were at their call', async () => {
  const N = 45_000;
  const t = createTestTracker({ maxQueueEvents: 50_000, maxQueueBytes: 9_000_000 });
  await t.ready;
  const p = { i: -1 };
  const calls = [];
  for (let i = 0; i < N; i++) {
    p.i = i;
    calls.push(t.track('chunked', p));
  }
  p.i = 'changed after the turn';
  const results = await Promise.all(calls);
  const statuses = new Set(results.map((r) => r.status));
  assert.ok([...statuses].every((s) => s === 'queued' || s === 'evicted'), [...statuses].join());
  assert.equal(new Set(results.map((r) => r.id)).size, N);
  const queued = results.map((r, i) => [r, i]).filter(([r]) => r.status === 'queued');
  assert.ok(queued.length > 20_000, `${queued.length} queued`);
  // The newest are kept (the queue evicts the oldest); the last call is among them.
  assert.equal(results[N - 1].status, 'queued');
  await drained(t);
  const byId = new Map(named(t, 'chunked').map((e) => [e.properties.$event_id, e.properties.i]));
  assert.deepEqual(queued.map(([r]) => byId.get(r.id)), queued.map(([, i]) => i));
});
