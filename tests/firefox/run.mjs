// The demo extension in a real Firefox (Debian's firefox-esr, headless, over WebDriver BiDi),
// whose background is an event page, against the local server, which stores every POST. The last
// line is `firefox: N passed, M failed`; the exit status is non-zero on failure. Each test has its
// own server, extension copy and Firefox profile, and a time limit.
import fs from 'node:fs';
import path from 'node:path';
import { buildDemo, cloneWithConfig, installPackage, ROOT } from '../../extension-demo/tools/build.mjs';
import { GECKO_ID, EXTENSION_UUID, inBackground, launchFirefox, makeFirefoxExtension } from '../../scripts/lib/firefox.mjs';
import { startServer } from '../../scripts/lib/harness.mjs';

const TMP = path.join(ROOT, 'tests/firefox/.tmp');
const ONLY = process.env.FIREFOX_ONLY ? new RegExp(process.env.FIREFOX_ONLY) : null;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TOKEN = { id: 'demo_token_id', secret: 'demo_token_secret' };

class Failure extends Error {}
const assert = (cond, msg) => {
  if (!cond) throw new Failure(msg);
};
const log = (s) => console.log(`  ${s}`);

async function waitFor(what, fn, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Failure(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** A server, a Firefox copy of the demo pointed at it, and Firefox with it installed. */
async function setUp(t, { idleTimeoutMs, dataCollection, prefs } = {}) {
  const server = await startServer({ tokens: [`${TOKEN.id}:${TOKEN.secret}:${GECKO_ID}`], args: ['--no-idempotency'] });
  t.cleanup.push(() => server.stop());
  const dir = fs.mkdtempSync(path.join(TMP, 'ext-'));
  t.cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const extDir = cloneWithConfig(BASE, path.join(dir, 'extension'), { baseUrl: server.baseUrl, tokenId: TOKEN.id, tokenSecret: TOKEN.secret });
  if (dataCollection) makeFirefoxExtension(extDir, GECKO_ID, dataCollection);
  const firefox = await launchFirefox({ extDir, idleTimeoutMs, prefs });
  t.cleanup.push(() => firefox.close());
  const named = async (...names) => (await server.events()).events.filter((e) => names.includes(e.event_name));
  return { server, firefox, named };
}

const tests = [];
const test = (name, timeoutMs, fn) => tests.push({ name, timeoutMs, fn });

test('the event page tracks: the gecko id as x-inhouse-app, $browser Firefox, no install uuid in any event', 60_000, async (t) => {
  const { server, named } = await setUp(t);
  const [installed] = await waitFor('$extension_installed', () => named('$extension_installed').then((e) => e.length && e));
  const p = installed.properties;
  assert(p.$browser === 'Firefox' && /^\d+$/.test(p.$browser_version), `$browser ${p.$browser} ${p.$browser_version}`);
  assert(p.$source === 'background', `$source ${p.$source}`);
  const stored = (await server.events()).events;
  for (const e of stored) {
    assert(e.headers['x-inhouse-app'] === GECKO_ID, `x-inhouse-app ${e.headers['x-inhouse-app']}`);
    assert(e.headers['x-inhouse-token-id'] === TOKEN.id, `x-inhouse-token-id ${e.headers['x-inhouse-token-id']}`);
    assert(e.headers['x-inhouse-token-secret'] === '<redacted>', 'x-inhouse-token-secret present (redacted by the server)');
  }
  // (The requests' Origin header names it: that is the browser's, not an event's.)
  const all = JSON.stringify(stored.map((e) => e.properties));
  assert(!all.includes(EXTENSION_UUID), "the install's moz-extension uuid reached an event");
  log(`${stored.length} events with x-inhouse-app=${GECKO_ID}; $browser ${p.$browser} ${p.$browser_version}`);
});

test("/client from the options page: its surface and path from Firefox's sender, errors with this extension's frames", 60_000, async (t) => {
  const { firefox, named } = await setUp(t);
  const options = await firefox.page('options.html');
  const r = await options.evaluate(async () => {
    const client = await import('./vendor/inhouse/client.js');
    const tracked = await client.track('ff_options_click', { n: 1 });
    // An error made in the extension's own file (client.js refuses a name that is not a string).
    const error = await client.track(7).catch((e) => e);
    const err = await client.captureException(error);
    return { tracked, err, stack: String(error.stack) };
  });
  assert(r.tracked.status === 'queued', JSON.stringify(r));
  const [e] = await waitFor('ff_options_click', () => named('ff_options_click').then((e) => e.length && e));
  assert(e.properties.$source === 'options' && e.properties.$path === '/options.html', JSON.stringify(e.properties));
  const [x] = await waitFor('$exception', () => named('$exception').then((e) => e.length && e));
  const stack = x.properties.stack ?? '';
  assert(r.stack.includes(`moz-extension://${EXTENSION_UUID}/`), `the error's own stack: ${r.stack}`);
  assert(stack.includes(`moz-extension://${GECKO_ID}/vendor/inhouse/client.js`) && !stack.includes(EXTENSION_UUID), `stack: ${stack}`);
  log(`$source ${e.properties.$source}, $path ${e.properties.$path}; $exception frames: ${stack.split('\n').length}`);
});

test('the event page suspended while 30 events wait (server down): each delivered once after it wakes, by the same install', 90_000, async (t) => {
  const { server, firefox, named } = await setUp(t, { idleTimeoutMs: 1000 });
  await waitFor('$extension_installed', () => named('$extension_installed').then((e) => e.length));
  await server.faults({ down: true });
  const options = await firefox.page('options.html');
  await waitFor('the tracker in the event page', () => inBackground(options, (bg) => Boolean(bg.inhouseDemo?.tracker?.())));
  const queued = await inBackground(options, async (bg) => {
    bg.__testMarker = 'first instance';
    const t = bg.inhouseDemo.tracker();
    const r = await Promise.all(Array.from({ length: 30 }, (_, i) => t.track('ff_waiting', { i })));
    return r.filter((x) => x.status === 'queued').length;
  });
  assert(queued === 30, `${queued} of 30 queued`);
  // Nothing touches the background meanwhile: Firefox suspends the idle event page.
  await sleep(4000);
  await server.faults({ down: false });
  // A message wakes it: the relayed flush.
  await options.evaluate(async () => (await import('./vendor/inhouse/client.js')).flush());
  const got = await waitFor('30 ff_waiting events', () => named('ff_waiting').then((e) => e.length >= 30 && e), 45_000);
  const marker = await inBackground(options, (bg) => bg.__testMarker ?? 'a new instance');
  assert(marker === 'a new instance', `the event page was not suspended (${marker})`);
  const ids = got.map((e) => e.properties.$event_id);
  assert(new Set(ids).size === 30 && ids.length === 30, `${ids.length} stored, ${new Set(ids).size} unique`);
  // Who sent them is the same install across the suspension (the id is kept in storage.local).
  const installs = new Set((await server.events()).events.map((e) => e.properties.$install_id));
  assert(installs.size === 1, `install ids across the suspension: ${[...installs]}`);
  log(`30 of 30 delivered once by ${marker} of the event page; one install id across it`);
});

test("Firefox's data consent, optional and not granted: nothing stored or sent; a grant opts in, a revocation opts out with purge", 90_000, async (t) => {
  const CONSENT = 'technicalAndInteraction';
  const { server, firefox, named } = await setUp(t, {
    dataCollection: { required: ['none'], optional: [CONSENT] },
    // Optional permissions are granted without Firefox's prompt (the click is still needed).
    prefs: { 'extensions.webextOptionalPermissionPrompts': false },
  });
  const options = await firefox.page('options.html');
  await waitFor('the tracker in the event page', () => inBackground(options, (bg) => Boolean(bg.inhouseDemo?.tracker?.())));
  const before = await inBackground(options, async (bg) => {
    const t = bg.inhouseDemo.tracker();
    await t.ready;
    const tracked = await t.track('ff_before_consent');
    return { enabled: await t.isEnabled(), tracked: tracked.status };
  });
  await sleep(1500);
  const early = (await server.events()).events;
  assert(before.enabled === false && before.tracked === 'disabled' && early.length === 0, `before consent: ${JSON.stringify(before)}, ${early.length} events at the server`);
  // The user grants it from the options page (a click: permissions.request needs one).
  await options.evaluate((consent) => {
    const button = document.createElement('button');
    button.id = 'grant-consent';
    button.textContent = 'Share usage data';
    button.addEventListener('click', () => {
      window.granted = browser.permissions.request({ data_collection: [consent] });
    });
    document.body.append(button);
  }, CONSENT);
  await options.click('#grant-consent');
  assert(await options.evaluate(() => window.granted), 'permissions.request was refused');
  const [installed] = await waitFor('$extension_installed after the grant', () => named('$extension_installed').then((e) => e.length && e));
  await inBackground(options, (bg) => bg.inhouseDemo.tracker().track('ff_after_consent'));
  await waitFor('ff_after_consent', () => named('ff_after_consent').then((e) => e.length));
  // Revoked: opted out with purge; later calls store nothing.
  await options.evaluate((consent) => browser.permissions.remove({ data_collection: [consent] }), CONSENT);
  await waitFor('the opt-out', () => inBackground(options, async (bg) => (await bg.inhouseDemo.tracker().isEnabled()) === false));
  const after = await inBackground(options, async (bg) => (await bg.inhouseDemo.tracker().track('ff_after_revoke')).status);
  assert(after === 'disabled', `after the revocation: ${after}`);
  await sleep(1000);
  assert((await named('ff_after_revoke', 'ff_before_consent')).length === 0, 'an event tracked without consent reached the server');
  log(`before: ${before.tracked}; grant → ${installed.event_name} and ff_after_consent delivered; revoke → ${after}`);
});

// ---------------------------------------------------------------------------- runner
fs.mkdirSync(TMP, { recursive: true });
const BASE = path.join(TMP, 'extension-base');
buildDemo({ outDir: BASE, packageDir: installPackage() });
makeFirefoxExtension(BASE);

let passed = 0;
let failed = 0;
let skipped = 0;
for (const { name, timeoutMs, fn } of tests) {
  if (ONLY && !ONLY.test(name)) {
    skipped++;
    continue;
  }
  const t = { cleanup: [] };
  const started = Date.now();
  let timer;
  try {
    await Promise.race([fn(t), new Promise((_, reject) => (timer = setTimeout(() => reject(new Failure(`over ${timeoutMs} ms`)), timeoutMs)))]);
    passed++;
    console.log(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)\n     ${e instanceof Failure ? e.message : e.stack}`);
  } finally {
    clearTimeout(timer);
    for (const c of t.cleanup.reverse()) await Promise.resolve().then(c).catch(() => {});
  }
}
fs.rmSync(TMP, { recursive: true, force: true });
console.log(`firefox: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed === 0 ? 0 : 1);
