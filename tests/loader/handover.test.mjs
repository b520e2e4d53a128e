// The hand-over lines the loader writes (index.js handOverLine) against the vectors file that
// the Rust side reads back too (tests/vectors/handover.json, tests/core_handover.rs): one
// format, specified once, tested from both ends.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';

const pkg = process.env.INHOUSE_PKG_DIR ?? new URL('../../dist/pkg/', import.meta.url).pathname;
const { init } = await import(`${pkg}/index.js`);
const { handOverLine } = init[Symbol.for('@inhouse/chrome-tracker/testing')];
const vectors = JSON.parse(fs.readFileSync(new URL('../vectors/handover.json', import.meta.url), 'utf8'));
const MAX = 1024 * 1024;

/** The line for `call` at time `at` (the loader stamps Date.now()). */
function lineAt(at, { eventName, properties, options }) {
  const now = Date.now;
  Date.now = () => at;
  try {
    return handOverLine(eventName, properties, options, MAX);
  } finally {
    Date.now = now;
  }
}

test('valid calls are written exactly as the vectors say', () => {
  for (const v of vectors.valid) {
    const at = Number(v.line.split('\t')[0]);
    assert.equal(lineAt(at, v.call), v.line, JSON.stringify(v.call));
  }
});

test('strings are escaped as the vectors say, and a lone surrogate stays escaped', () => {
  for (const v of vectors.escaped) {
    const s = JSON.parse(v.json);
    assert.equal(lineAt(1, { eventName: s, properties: { k: s } }), `1\t${v.json}\t\t{"k":${v.json}}`, v.json);
  }
});

test('calls the wasm must judge are not handed over', () => {
  const cases = vectors.goesTheOtherWay.map((v) => [v.why, v.call ?? JSON.parse(v.json)]);
  // What a JSON file cannot hold.
  cases.push(['NaN', { eventName: 'n', properties: { a: NaN } }], ['a function', { eventName: 'n', properties: { f() {} } }]);
  cases.push(['a Date', { eventName: 'n', properties: { d: new Date(0) } }], ['a class instance', { eventName: 'n', properties: new (class A {})() }]);
  cases.push(['toJSON', { eventName: 'n', properties: { toJSON: () => ({}) } }], ['a BigInt', { eventName: 'n', properties: { b: 1n } }]);
  for (const [why, call] of cases) assert.equal(lineAt(1, call), null, why);
});

test('a line longer than maxEventBytes is not handed over', () => {
  assert.equal(handOverLine('n', { s: 'x'.repeat(200) }, undefined, 100), null);
});
