// One InhouseError class for the package: the main entry, /client and /testing give the same
// class, and `instanceof` holds for an error whichever entry (or the wasm) made it.
import assert from 'node:assert/strict';
import { test, afterEach } from 'node:test';

import { createTestTracker, reset } from './lib.mjs';

const pkg = process.env.INHOUSE_PKG_DIR ?? new URL('../../dist/pkg/', import.meta.url).pathname;
const main = await import(`${pkg}/index.js`);
const client = await import(`${pkg}/client.js`);
const testing = await import(`${pkg}/testing.js`);

afterEach(() => reset());

test('every entry exports the same InhouseError', () => {
  assert.equal(client.InhouseError, main.InhouseError);
  assert.equal(testing.InhouseError, main.InhouseError);
});

test("an error /client makes is an instance of the main entry's class, and the wasm's too", async () => {
  const fromClient = await client.track(7).catch((e) => e);
  assert.ok(fromClient instanceof main.InhouseError, String(fromClient));
  assert.equal(fromClient.code, 'INVALID_EVENT_NAME');
  const t = createTestTracker();
  await t.ready;
  const fromWasm = await t.track('Not a name!').catch((e) => e);
  assert.ok(fromWasm instanceof client.InhouseError, String(fromWasm));
  assert.equal(fromWasm.code, 'INVALID_EVENT_NAME');
});
