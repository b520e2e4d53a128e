// The @wxt-dev/analytics provider (pkg-template/wxt-analytics.js) in plain Node, without the
// built package, a browser or WXT: its event-name mapping (eventNameFor) against the tracker's
// rule, and its track/page/identify calls into a fake tracker, rejections included.
//
//   node --test tests/package/wxt-analytics.test.mjs
//
// WXT_ANALYTICS_MODULE=<file> tests another copy (run.mjs passes the installed tarball's);
// WXT_NAME_SEED=<n> replays the random names of a failed run (the seed is in the failure).
// '@wxt-dev/analytics' is not installed here: a loader hook answers its import with a stub whose
// defineAnalyticsProvider does what the real one does (options → (analytics, config) → provider).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { register } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');

const STUB = 'export const defineAnalyticsProvider = (definition) => (options) => (analytics, config) => definition(analytics, config, options);';
const HOOKS = `export async function resolve(specifier, context, next) {
  if (specifier === '@wxt-dev/analytics') return { url: ${JSON.stringify(`data:text/javascript,${encodeURIComponent(STUB)}`)}, shortCircuit: true };
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(HOOKS)}`);

const modulePath = path.resolve(process.env.WXT_ANALYTICS_MODULE ?? path.join(ROOT, 'pkg-template/wxt-analytics.js'));
const { eventNameFor, inhouse, useInhouseTracker } = await import(pathToFileURL(modulePath).href);

// ---------------------------------------------------------------- the rule, from the Rust source
// src/core/event.rs, normalize_event_name: `name` non-empty, at most MAX_EVENT_NAME_LEN chars,
// `bytes.first().is_some_and(u8::is_ascii_alphabetic)` and every byte
// `c.is_ascii_alphanumeric() || c == b'_'` (so ASCII only, and chars == bytes).
let MAX = 128;
const rust = path.join(ROOT, 'src/core/event.rs');
if (fs.existsSync(rust)) {
  const source = fs.readFileSync(rust, 'utf8');
  MAX = Number(source.match(/pub const MAX_EVENT_NAME_LEN: usize = (\d+);/)?.[1]);
  const check = source.match(/let valid = (.*);/)?.[1] ?? '';
  assert.ok(
    MAX > 0 && check.includes('first().is_some_and(u8::is_ascii_alphabetic)') && check.includes("all(|&c| c.is_ascii_alphanumeric() || c == b'_')"),
    `src/core/event.rs's name rule changed (MAX_EVENT_NAME_LEN ${MAX}, check: ${check}): update this test and eventNameFor in pkg-template/wxt-analytics.js`,
  );
}
const RULE = new RegExp(`^[A-Za-z][A-Za-z0-9_]{0,${MAX - 1}}$`);
const valid = (name) => typeof name === 'string' && RULE.test(name);

// ---------------------------------------------------------------- names
test("the examples of @wxt-dev/analytics's README become valid names", () => {
  assert.equal(eventNameFor('some-event'), 'some_event');
  assert.equal(eventNameFor('Button Clicked'), 'button_clicked');
});

test('a valid name is unchanged (the tracker lowers upper case itself)', () => {
  for (const name of ['click', 'wxt_analytics_event', 'Button_Click', 'buttonClicked', 'a', 'Z9', 'a__b_', 'x'.repeat(MAX), `A${'_'.repeat(MAX - 1)}`]) {
    assert.ok(valid(name), name);
    assert.equal(eventNameFor(name), name);
  }
});

test('edge cases map to valid names', () => {
  const cases = {
    '': 'event',
    '   ': 'event',
    $pageview: 'pageview',
    $: 'event',
    '404': 'event_404',
    '404 page': 'event_404_page',
    '3d-view': 'event_3d_view',
    _private: 'private',
    'Sign-Up  Completed!': 'sign_up_completed',
    'checkout.step.2': 'checkout_step_2',
    'a__b c': 'a_b_c',
    'Café ouvert': 'cafe_ouvert',
    'Ménage à trois': 'menage_a_trois',
    'ﬁle saved': 'file_saved', // NFKD: the ligature is two letters
    'ボタン': 'event',
    'clicked 🎉': 'clicked',
    'bad\uD800name': 'bad_name', // a lone surrogate
    'tab\tand\nnewline': 'tab_and_newline',
  };
  for (const [input, expected] of Object.entries(cases)) assert.equal(eventNameFor(input), expected, JSON.stringify(input));
});

test('long names are cut to the limit, never ending in _', () => {
  assert.equal(eventNameFor('a'.repeat(MAX + 1)), 'a'.repeat(MAX));
  assert.equal(eventNameFor(`${'a'.repeat(MAX - 1)} b`), 'a'.repeat(MAX - 1));
  assert.equal(eventNameFor('9'.repeat(500)), `event_${'9'.repeat(MAX - 6)}`);
  assert.equal(eventNameFor('word '.repeat(100_000)).length <= MAX, true);
});

test('what is not a string maps too', () => {
  assert.equal(eventNameFor(undefined), 'event');
  assert.equal(eventNameFor(null), 'event');
  assert.equal(eventNameFor(42), 'event_42');
  assert.equal(eventNameFor({}), 'object_object');
  assert.equal(eventNameFor(Object.create(null)), 'event');
});

// A small seeded generator (mulberry32): the same seed gives the same strings.
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const PIECES = [
  ...'abcxyzABCXYZ0123456789_-. $/:!?@#%&*()[]{}\'"`\\|,;<>~+=^\t\n\r\0',
  'é', 'ß', 'İ', 'ǅ', '\u0301', 'ﬁ', '①', 'Ω', 'ж', '中', 'ボ', '한', '🎉', '\uD800', '\uDC00', '\u200B', '\uFEFF', 'Button', 'Clicked', 'some-event',
];

test('every output of random strings follows the rule; valid inputs unchanged; mapping twice changes nothing', () => {
  const seed = Number(process.env.WXT_NAME_SEED ?? Date.now() % 1_000_000);
  const next = random(seed);
  const pick = (n) => Math.floor(next() * n);
  for (let i = 0; i < 600; i++) {
    // Mostly short names; some past the limit.
    const length = next() < 0.9 ? pick(40) : MAX - 10 + pick(300);
    let input = '';
    for (let j = 0; j < length; j++) input += PIECES[pick(PIECES.length)];
    const out = eventNameFor(input);
    const where = `seed ${seed}, string ${i}: ${JSON.stringify(input)} → ${JSON.stringify(out)}`;
    assert.ok(valid(out), `not a valid name (${where})`);
    if (valid(input)) assert.equal(out, input, `a valid name was changed (${where})`);
    else assert.equal(out, out.toLowerCase(), `a mapped name is lowercase (${where})`);
    assert.equal(eventNameFor(out), out, `mapping is idempotent (${where})`);
  }
});

// ---------------------------------------------------------------- the provider
/** A fake tracker: records calls; `fail` rejects them as the tracker would. */
function fakeTracker(fail) {
  const calls = [];
  const answer = (call) => {
    calls.push(call);
    if (!fail) return Promise.resolve({ id: 'x', status: 'queued' });
    return Promise.reject(Object.assign(new Error(`${fail}: rejected`), { name: 'InhouseError', code: fail }));
  };
  return {
    calls,
    track: (...args) => answer(['track', ...args]),
    page: (...args) => answer(['page', ...args]),
    identify: (...args) => answer(['identify', ...args]),
  };
}
const provider = inhouse()({}, { providers: [] });
const meta = { sessionId: 1, timestamp: 0, url: 'chrome-extension://x/popup.html', title: 'Popup', language: 'en', screen: undefined, referrer: undefined };
const user = { id: 'u1', properties: { version: '1.0.0', os: 'linux' } };

test('track: a changed name is tracked mapped, with the original as wxt_event_name; a valid one as is', async () => {
  const t = useInhouseTracker(fakeTracker());
  await provider.track({ meta, user, event: { name: 'Button Clicked', properties: { from: 'popup' } } });
  await provider.track({ meta, user, event: { name: 'wxt_analytics_event', properties: { from: 'popup' } } });
  await provider.track({ meta, user, event: { name: `long ${'x'.repeat(5000)}` } });
  const [first, second, third] = t.calls;
  assert.deepEqual(first, ['track', 'button_clicked', {
    wxt_url: meta.url, wxt_title: 'Popup', wxt_language: 'en', version: '1.0.0', os: 'linux', from: 'popup', wxt_event_name: 'Button Clicked',
  }]);
  assert.equal(second[1], 'wxt_analytics_event');
  assert.equal('wxt_event_name' in second[2], false);
  assert.ok(valid(third[1]) && third[1].length === MAX, third[1]);
  assert.equal(third[2].wxt_event_name.length, 1025, 'the original is cut to 1024 + …');
  assert.ok(third[2].wxt_event_name.endsWith('…'));
});

test('rejected track, page and identify calls are reported with console.error, not lost silently', async (t) => {
  const errors = t.mock.method(console, 'error', () => {});
  const tracker = useInhouseTracker(fakeTracker('INVALID_PROPERTIES'));
  await provider.track({ meta, user, event: { name: 'some-event', properties: { $bad: '1' } } });
  await provider.page({ meta, user, page: { url: meta.url, location: '/popup', title: 'Popup' } });
  await provider.identify({ meta, user: { id: '', properties: {} } });
  assert.equal(tracker.calls.length, 3);
  assert.equal(tracker.calls[0][1], 'some_event');
  const logged = errors.mock.calls.map((c) => c.arguments);
  assert.equal(logged.length, 3);
  assert.match(logged[0][0], /analytics\.track\("some-event"\) was not stored \(INVALID_PROPERTIES\)/);
  assert.match(logged[1][0], /analytics\.page\("\/popup"\) was not stored/);
  assert.match(logged[2][0], /analytics\.identify\(""\) was not stored/);
  for (const args of logged) assert.equal(args[1].code, 'INVALID_PROPERTIES', 'the InhouseError itself is logged');
});

test('a tracker that throws synchronously is reported too', async (t) => {
  const errors = t.mock.method(console, 'error', () => {});
  useInhouseTracker({
    track() {
      throw new TypeError('boom');
    },
  });
  await provider.track({ meta, user, event: { name: 'x' } });
  assert.equal(errors.mock.calls.length, 1);
  assert.match(errors.mock.calls[0].arguments[0], /analytics\.track\("x"\) was not stored \(TypeError\)/);
});
