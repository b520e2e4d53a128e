// The tracking plan through the loader and the wasm (the /testing entry takes init()'s path):
// checked at the call, the same for the background's track(), the hand-over of a turn's calls and
// /client's relayed calls; 'reject' fails the call, 'report' stores it and tells onError once per
// event and field a minute; stats().planViolations counts both (issue 25).
import assert from 'node:assert/strict';
import { test, afterEach } from 'node:test';

import { createTestTracker, reset, InhouseError, named, drained, sleep } from './lib.mjs';

afterEach(() => reset());

const plan = {
  signup: { properties: { plan: { enum: ['free', 'pro'] }, seats: 'number', ref: { type: 'string', required: false } } },
  button_clicked: { properties: { id: 'string' }, additionalProperties: true },
  app_opened: {},
};

/** `{code, field, message}` of a rejection (or the value, if it resolved). */
const outcome = (p) => p.then((v) => v, (e) => (e instanceof InhouseError ? { code: e.code, field: e.field, message: e.message } : e));

test("planMode 'reject': events that break the plan reject naming the field; valid ones are stored, from the background and /client alike", async () => {
  const t = createTestTracker({ plan, planMode: 'reject' });
  await t.ready;
  // Calls of one turn are handed over together: each checked on its own.
  const results = await Promise.all([
    outcome(t.track('signup', { plan: 'pro', seats: 3 })),
    outcome(t.track('sign_up', { plan: 'pro', seats: 3 })),
    outcome(t.track('signup', { plan: 'gold', seats: 3 })),
    outcome(t.track('signup', { plan: 'pro' })),
    outcome(t.track('app_opened', { x: 1 })),
    outcome(t.track('Button_Clicked', { id: 'cta', anything: [1] })),
    outcome(t.client.track('signup', { plan: 'free', seats: '2' })),
    outcome(t.client.track('app_opened')),
  ]);
  assert.equal(results[0].status, 'queued');
  assert.deepEqual(results.slice(1, 5).map((r) => [r.code, r.field]), [
    ['UNKNOWN_EVENT', 'eventName'],
    ['INVALID_PROPERTY', 'properties.plan'],
    ['INVALID_PROPERTY', 'properties.seats'],
    ['INVALID_PROPERTY', 'properties.x'],
  ]);
  assert.match(results[1].message, /"sign_up" is not in the tracking plan \(did you mean "signup"\?\)/);
  assert.match(results[2].message, /must be one of "free", "pro" by the tracking plan, got the string "gold"/);
  assert.equal(results[5].status, 'queued');
  assert.deepEqual([results[6].code, results[6].field], ['INVALID_PROPERTY', 'properties.seats'], 'the relayed call is checked in the background');
  assert.equal(results[7].status, 'queued');
  await drained(t);
  assert.deepEqual(t.sent().filter((e) => !e.eventName.startsWith('$')).map((e) => e.eventName).sort(), ['app_opened', 'button_clicked', 'signup']);
  assert.equal((await t.stats()).planViolations, 5);
  // The SDK's own events are not the plan's business.
  assert.ok(named(t, '$extension_installed').length === 1);
  assert.equal((await t.page('popup')).status, 'queued');
});

test("planMode 'report' (the default): stored and sent as they are, onError hears PLAN_VIOLATION once per event and field a minute", async () => {
  const errors = [];
  const t = createTestTracker({ plan, onError: (e) => errors.push(e) });
  await t.ready;
  for (let i = 0; i < 50; i++) assert.equal((await t.track('signup', { plan: 'gold', seats: i })).status, 'queued');
  await t.track('signup', { plan: 'pro', seats: 'many' });
  await t.track('checkout', { total: 3 });
  await t.client.track('checkout', { total: 4 });
  await drained(t);
  await sleep(20);
  assert.equal(named(t, 'signup').length, 51);
  assert.equal(named(t, 'checkout').length, 2);
  const reported = errors.filter((e) => e.code === 'PLAN_VIOLATION').map((e) => [e.field, e.message]);
  assert.deepEqual(reported.map(([field]) => field), ['properties.plan', 'properties.seats', 'eventName'], JSON.stringify(reported));
  assert.match(reported[0][1], /^stored, but it breaks the tracking plan: "signup": properties\.plan must be one of "free", "pro"/);
  assert.ok(errors.every((e) => e instanceof InhouseError));
  assert.equal((await t.stats()).planViolations, 53);
});

test('a bad plan rejects ready and every call with INVALID_OPTION naming the spot; a plan that is not JSON too', async () => {
  let t = createTestTracker({ plan: { signup: { properties: { seats: 'int' } } } });
  let e = await outcome(t.ready);
  assert.deepEqual([e.code, e.field], ['INVALID_OPTION', 'plan.signup.properties.seats']);
  assert.match(e.message, /unknown type "int" \(known: string, number, boolean, array, object, or \{ enum: \[\.\.\.\] \}\)/);
  assert.equal((await outcome(t.track('signup'))).code, 'INVALID_OPTION');
  await reset();
  const cyclic = { signup: {} };
  cyclic.signup.self = cyclic;
  t = createTestTracker({ plan: cyclic });
  e = await outcome(t.ready);
  assert.deepEqual([e.code, e.field], ['INVALID_OPTION', 'plan']);
  assert.match(e.message, /plan must be plain JSON: .*circular/i);
  await reset();
  t = createTestTracker({ planMode: 'reject' });
  e = await outcome(t.ready);
  assert.deepEqual([e.code, e.field], ['INVALID_OPTION', 'planMode']);
});

test('the plan is read once, as it was at init(): changing the object later changes nothing', async () => {
  const mine = structuredClone(plan);
  const t = createTestTracker({ plan: mine, planMode: 'reject' });
  mine.late_event = {};
  delete mine.signup;
  await t.ready;
  assert.equal((await t.track('signup', { plan: 'pro', seats: 1 })).status, 'queued');
  assert.equal((await outcome(t.track('late_event'))).code, 'UNKNOWN_EVENT');
});
