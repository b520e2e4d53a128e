// Never wedge, never leak (issue 22), in real Chromium against a server that stores every POST:
// calls made at the worker's top level before the wasm is ready (what they said at the call, the
// identity at the call, a dedupKey across five starts), a damaged stored id, an explicit flush
// after a redirect, a trap of the wasm, storage.session cleared by the extension, and an opted-out
// install's uninstall page and storage.
import { defineTests, assert, eq, summarize, byName, waitStored, env, trackInWorker, settle, log, statsFromPage, sleep, waitFor, uninstallPage } from './lib.mjs';

const { tests, test } = defineTests();
export default tests;

const named = async (server, name) => summarize(await server.events(), byName(name)).events;

/**
 * A background of the test's own: init() and `scenario` at the worker's top level, in the first
 * turn, before the wasm is ready (as a customer's worker does). The hooks log what they hear.
 */
function topLevelBackground(scenario) {
  return (config) => `import { init } from './vendor/inhouse/index.js';
const heard = [];
const tracker = init({
  tokenId: ${JSON.stringify(config.tokenId)},
  tokenSecret: ${JSON.stringify(config.tokenSecret)},
  baseUrl: ${JSON.stringify(config.baseUrl)},
  ...${JSON.stringify(config.options ?? {})},
  onError: (e) => heard.push({ kind: 'error', code: e.code, message: e.message }),
  onDrop: (d) => heard.push({ kind: 'drop', id: d.id, eventName: d.eventName, reason: d.reason }),
});
globalThis.inhouseDemo = { ready: () => tracker.ready, tracker: () => tracker, recent: () => heard.slice() };
${scenario}
`;
}

test('top-level calls at five worker starts: each stores what it said at the call, with the identity at the call; one dedupKey stored once', 150_000, async (t) => {
  const background = topLevelBackground(`
const life = Date.now();
const results = [];
tracker.identify('user_a');
const reused = { i: 0 };
for (let i = 0; i < 5; i++) {
  reused.i = i;
  results.push(tracker.track('e2e_reused', reused, undefined));
  reused.life = life;
}
const snap = { v: 'at-call', calledAt: Date.now() };
results.push(tracker.track('e2e_snap', snap));
snap.v = 'changed';
const opts = { dedupKey: 'top-level-key' };
results.push(tracker.track('e2e_keyed', { life }, opts));
opts.dedupKey = 'changed-key';
results.push(tracker.track('e2e_keyed_life', { life }, { dedupKey: 'life-' + life }));
results.push(tracker.track('e2e_neighbour', { life }));
tracker.reset();
results.push(tracker.track('e2e_after_reset', { life }));
globalThis.topLevel = Promise.allSettled(results).then((rs) => rs.map((r) => (r.status === 'fulfilled' ? r.value.status : r.reason.code)));
`);
  const e = await env(t, { background, beforeLaunch: (server) => server.faults({ down: true }) });
  const { server, browser } = e;
  const lives = [];
  let w = await browser.worker();
  lives.push(await w.evaluate(() => globalThis.topLevel));
  const page = await browser.openExtensionPage('options.html');
  for (let k = 1; k < 5; k++) {
    await w.evaluate(() => { globalThis.__e2eStopped = true; }).catch(() => {});
    await browser.stopWorker(page);
    await statsFromPage(page).catch(() => null); // wakes a new worker, which runs the top level again
    w = await browser.worker();
    assert(await w.evaluate(() => globalThis.__e2eStopped !== true), 'a new worker');
    lives.push(await w.evaluate(() => globalThis.topLevel));
  }
  // Order of each life's results: reused ×5, snap, keyed, keyed_life, neighbour, after_reset.
  eq(lives.map((r) => r[6]), ['queued', 'deduplicated', 'deduplicated', 'deduplicated', 'deduplicated'], 'the same dedupKey while its first copy is queued (stored segments not yet read at each wake)');
  assert(lives.every((r) => r.filter((s, i) => i !== 6).every((s) => s === 'queued')), `the other calls queued: ${JSON.stringify(lives)}`);
  await server.faults({ down: false });
  await w.evaluate(() => globalThis.inhouseDemo.tracker().flush());
  await waitStored(server, byName('e2e_after_reset'), 5, 60_000);
  await waitStored(server, byName('e2e_reused'), 25, 30_000);
  await sleep(1500);
  const keyed = await named(server, 'e2e_keyed');
  eq(keyed.length, 1, 'one top-level dedupKey over five starts: stored once by a server that stores every POST');
  const neighbours = new Map((await named(server, 'e2e_neighbour')).map((x) => [x.properties.life, x.properties]));
  const afterReset = new Map((await named(server, 'e2e_after_reset')).map((x) => [x.properties.life, x.properties]));
  for (const ev of [...keyed, ...(await named(server, 'e2e_keyed_life'))]) {
    const p = ev.properties;
    const n = neighbours.get(p.life);
    eq([ev.event_name, p.$user_id, p.$session_id], [ev.event_name, 'user_a', n.$session_id], `${ev.event_name} of life ${p.life}: the identity and session at the call, as its neighbour's`);
    const a = afterReset.get(p.life);
    assert(a.$user_id === undefined && a.$session_id !== p.$session_id, `after reset(): no user, a new session (${JSON.stringify([a.$user_id, a.$session_id, p.$session_id])})`);
  }
  eq((await named(server, 'e2e_keyed_life')).length, 5, 'one per life');
  const reused = await named(server, 'e2e_reused');
  const byLife = new Map();
  for (const x of reused) {
    // `life` was set on the object after the first call: only the later calls carry it.
    const key = x.properties.$session_id;
    byLife.set(key, [...(byLife.get(key) ?? []), x.properties.i]);
  }
  for (const [, is] of byLife) eq(is.sort(), [0, 1, 2, 3, 4], 'one object reused by five calls: each stored as it was at its call');
  for (const x of await named(server, 'e2e_snap')) {
    eq(x.properties.v, 'at-call', 'changed after the call: stored as it was');
    const late = Date.parse(x.properties.$time) - x.properties.calledAt;
    assert(late >= 0 && late <= 5, `$time taken at the call: ${late} ms after it`);
  }
  log(`5 starts: statuses ${JSON.stringify(lives.map((r) => r[6]))}; e2e_keyed stored ${keyed.length}×; identities and sessions as at the call`);
});

test('a stored id the browser refuses as a header value: that event dropped as corrupt (reported), every other delivered', 120_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  await server.faults({ down: true });
  const old = (await trackInWorker(browser, 'e2e_damaged', 10)).map((r) => r.id);
  const page = await browser.openExtensionPage('options.html');
  await browser.stopWorker(page);
  // Damaged storage: the first character of one stored id replaced by one beyond Latin-1.
  const damagedId = await page.evaluate(async (victim) => {
    const all = await chrome.storage.local.get(null);
    for (const [key, text] of Object.entries(all)) {
      if (key.startsWith('inhouse:v1:seg:') && typeof text === 'string' && text.includes(victim)) {
        const damaged = 'Ā' + victim.slice(1);
        await chrome.storage.local.set({ [key]: text.replace(victim, damaged) });
        return damaged;
      }
    }
    return null;
  }, old[4]);
  assert(damagedId, 'the stored segment was found and damaged');
  await server.faults({ down: false });
  await statsFromPage(page).catch(() => null); // wakes the worker
  const fresh = (await trackInWorker(browser, 'e2e_damaged', 10)).map((r) => r.id);
  await browser.inWorker(() => globalThis.inhouseDemo.tracker().flush());
  await waitStored(server, byName('e2e_damaged'), 19, 45_000);
  await sleep(1000);
  const s = summarize(await server.events(), byName('e2e_damaged'));
  const ids = new Set(s.events.map((x) => x.properties.$event_id));
  eq([...old, ...fresh].filter((id) => !ids.has(id)), [old[4]], 'every event but the damaged one delivered');
  eq(s.storedDuplicates, 0, 'duplicates');
  const st = await browser.inWorker(() => globalThis.inhouseDemo.tracker().stats());
  eq([st.inFlight, st.dropped.corrupt, st.queued], [0, 1, 0], 'nothing stuck in flight; one corrupt');
  const drops = (await browser.inWorker(() => globalThis.inhouseDemo.recent())).filter((r) => r.kind === 'drop');
  eq(drops.map((d) => [d.id, d.reason]), [[damagedId, 'corrupt']], 'onDrop heard of it');
  log(`10 old + 10 new: 19 delivered, ${damagedId.slice(0, 9)}… dropped as corrupt`);
});

test('after the API stops redirecting, the background\'s explicit flush() delivers at once', 90_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  await server.faults({ redirect_next: { count: 1000, status: 307 } });
  await trackInWorker(browser, 'e2e_after_redirect', 3);
  await waitFor(async () => {
    const st = await browser.inWorker(() => globalThis.inhouseDemo.tracker().stats());
    return st.state === 'paused' && st.lastError?.code === 'REDIRECTED' ? st : null;
  }, { timeoutMs: 15_000, what: 'the redirect to pause delivery' });
  // The API stops redirecting; delivery stays paused (for ten minutes) until something says so.
  await server.faults({ redirect_next: { count: 0, status: 307 } });
  await sleep(1500);
  eq(summarize(await server.events(), byName('e2e_after_redirect')).unique, 0, 'paused');
  const t0 = Date.now();
  await browser.inWorker(() => globalThis.inhouseDemo.tracker().flush());
  await waitStored(server, byName('e2e_after_redirect'), 3, 10_000, 'the 3 events after flush()');
  log(`paused by a 307; flush() delivered all 3 in ${Date.now() - t0} ms`);
});

test('a trap of the wasm is reported once as INTERNAL; the tracker is rebuilt from storage and delivery goes on', 90_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  await server.faults({ down: true });
  const before = (await trackInWorker(browser, 'e2e_before_trap', 5)).map((r) => r.id);
  const trapped = await browser.inWorker(() => globalThis.inhouseDemo.tracker()._trapForTests().then(() => 'resolved', (e) => `${e.name}:${e.code}`));
  eq(trapped, 'InhouseError:INTERNAL', 'the call that trapped');
  await server.faults({ down: false });
  const after = (await trackInWorker(browser, 'e2e_after_trap', 5)).map((r) => r.status);
  eq(after, Array(5).fill('queued'), 'track() after the trap');
  await browser.inWorker(() => globalThis.inhouseDemo.tracker().flush());
  await waitStored(server, byName('e2e_before_trap', 'e2e_after_trap'), 10, 30_000);
  const s = summarize(await server.events(), byName('e2e_before_trap'));
  eq(before.filter((id) => !s.events.some((x) => x.properties.$event_id === id)), [], 'the events stored before the trap, delivered by the rebuilt tracker');
  const errors = (await browser.inWorker(() => globalThis.inhouseDemo.recent())).filter((r) => r.kind === 'error' && r.code === 'INTERNAL');
  eq(errors.length, 1, 'INTERNAL reported once through onError');
  const st = await browser.inWorker(() => globalThis.inhouseDemo.tracker().stats());
  eq(st.queued, 0, 'queued');
  log(`trap → ${trapped}; 5 stored before it and 5 after delivered; onError: ${errors[0].message.slice(0, 60)}…`);
});

test('storage.session cleared by the extension (its worker, its page) is not a browser start', 90_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  const page = await browser.openExtensionPage('options.html');
  await browser.inWorker(() => chrome.storage.session.clear());
  await sleep(300);
  await browser.stopWorker(page);
  await statsFromPage(page);
  await page.evaluate(() => chrome.storage.session.clear());
  await sleep(300);
  await browser.stopWorker(page);
  await statsFromPage(page);
  await browser.inWorker(() => globalThis.inhouseDemo.tracker().flush());
  await sleep(1500);
  eq((await named(server, '$browser_startup')).length, 0, '$browser_startup after two clears and two worker stops');
  const sessions = new Set(summarize(await server.events()).events.map((x) => x.properties.$session_id));
  log(`no $browser_startup; ${sessions.size} session(s)`);
});

test('opted out: identify and register store nothing, and the uninstall page carries no install id', 90_000, async (t) => {
  const e = await env(t, { config: { options: { enabled: false, uninstallUrl: 'http://127.0.0.1:1/bye?from=e2e' } } });
  const { browser } = e;
  await browser.inWorker(async () => {
    const tr = globalThis.inhouseDemo.tracker();
    await tr.identify('user_secret_42', { plan: 'pro' });
    await tr.register({ tier: 'gold' });
  });
  const stored = JSON.stringify(await browser.inWorker(() => chrome.storage.local.get(null)));
  assert(!stored.includes('user_secret_42') && !stored.includes('gold'), `nothing about the user stored: ${stored.slice(0, 300)}`);
  const url = await uninstallPage(browser);
  eq([url.searchParams.get('from'), url.searchParams.get('install_id')], ['e2e', null], `the uninstall URL ${url}`);
  log(`opted out: storage holds no user; uninstall opened ${url}`);
});

test('a start whose read of the stored queue fails writes nothing over it: read again, every event of every life delivered', 120_000, async (t) => {
  // Every worker start's first chrome.storage.local.get fails (a storage hiccup at start).
  const background = (config) => `const realGet = chrome.storage.local.get.bind(chrome.storage.local);
let failed = false;
chrome.storage.local.get = (...args) => {
  if (!failed) {
    failed = true;
    return Promise.reject(new Error('e2e: storage unavailable at start'));
  }
  return realGet(...args);
};
${topLevelBackground(`
const life = Date.now();
globalThis.topLevel = Promise.all(Array.from({ length: 10 }, (_, i) => tracker.track('e2e_unread_start', { life, i }))).then((rs) => rs.map((r) => r.status));
`)(config)}`;
  const e = await env(t, { background, beforeLaunch: (server) => server.faults({ down: true }) });
  const { server, browser } = e;
  let w = await browser.worker();
  eq(await w.evaluate(() => globalThis.topLevel), Array(10).fill('queued'), 'life 1: queued once the stored queue was read again');
  const page = await browser.openExtensionPage('options.html');
  await browser.stopWorker(page);
  await statsFromPage(page).catch(() => null);
  w = await browser.worker();
  eq(await w.evaluate(() => globalThis.topLevel), Array(10).fill('queued'), 'life 2: queued');
  const errors = (await w.evaluate(() => globalThis.inhouseDemo.recent())).filter((r) => r.kind === 'error');
  assert(errors.some((r) => r.code === 'STORAGE_ERROR' && /read again/.test(r.message)), `onError heard of it: ${JSON.stringify(errors)}`);
  await server.faults({ down: false });
  await w.evaluate(() => globalThis.inhouseDemo.tracker().flush());
  await waitStored(server, byName('e2e_unread_start'), 20, 30_000);
  await sleep(1000);
  const s = summarize(await server.events(), byName('e2e_unread_start'));
  eq([s.unique, s.storedDuplicates], [20, 0], 'both lives\' events, once each');
  log(`two starts with a failed first read: 20 events delivered once; onError: ${errors[0].message.slice(0, 80)}…`);
});
