// Never stop, never lose: what other code, damaged storage and server-imposed waits do to the
// queue, for real (chrome.storage, chrome.alarms, worker stops) against the local server.
import { defineTests, assert, eq, summarize, byName, waitStored, env, trackInWorker, workerStats, settle, log, sleep, statsFromPage, waitFor, APP } from './lib.mjs';

const { tests, test } = defineTests();
export default tests;

const INDEX_KEY = 'inhouse:v1:index';
const SEG_PREFIX = 'inhouse:v1:seg:';
const ALARM = 'inhouse-tracker:wake';
const trackPath = (r) => r.method === 'POST' && r.path.endsWith('/chrome/events/track');

/** Track requests the server logged for events named `name` (any event: `null`). */
async function trackRequests(server, name) {
  const log = await server.requests();
  return (log.requests ?? log).filter((r) => trackPath(r) && (name === null || r.event_name === name));
}
const recentErrors = (browser) => browser.inWorker(() => globalThis.inhouseDemo.recent().filter((r) => r.kind === 'error'));

/**
 * Stops the worker and wakes a fresh one with a message from `page`, running `whileStopped` in
 * between; true if it was fresh.
 */
async function restartWorker(browser, page, whileStopped = async () => {}) {
  const w = await browser.worker();
  await w.evaluate(() => { globalThis.__e2eOld = true; }).catch(() => {});
  await browser.stopWorker(page);
  await whileStopped();
  await statsFromPage(page).catch(() => null);
  const fresh = await browser.worker();
  return fresh.evaluate(() => globalThis.__e2eOld !== true).catch(() => false);
}

test('chrome.storage.local.clear() by the extension with events queued: written again from memory, each delivered once', 60_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  await server.faults({ down: true });
  const r = await trackInWorker(browser, 'e2e_cleared', 30);
  eq(r.filter((x) => x.status === 'queued').length, 30, 'queued');
  await browser.inWorker(() => chrome.storage.local.clear());
  const back = await waitFor(async () => {
    const all = await browser.inWorker(() => chrome.storage.local.get(null));
    return typeof all['inhouse:v1:index'] === 'string' && Object.keys(all).some((k) => k.startsWith('inhouse:v1:seg:')) ? all : null;
  }, { timeoutMs: 10_000, what: 'the queue written again' });
  assert(Object.keys(back).some((k) => k.startsWith(SEG_PREFIX)), 'segments written again');
  const errs = await recentErrors(browser);
  assert(errs.some((e) => e.code === 'STORAGE_ERROR' && /removed by other code/.test(e.message)), `reported through onError: ${JSON.stringify(errs)}`);
  // The worker is stopped before delivery: what was written again is what the next one sends.
  const page = await browser.openExtensionPage('options.html');
  assert(await restartWorker(browser, page), 'a fresh worker');
  await server.faults({ down: false });
  await waitStored(server, byName('e2e_cleared'), 30, 60_000);
  await sleep(1000);
  const s = summarize(await server.events(), byName('e2e_cleared'));
  eq([s.unique, s.storedDuplicates], [30, 0], 'unique, duplicates');
  log(`cleared with 30 queued: written again at once, all 30 delivered once after a worker restart`);
});

test('chrome.alarms.clearAll() during an outage: the SDK sets its alarm again, and the alarm resumes delivery in a later worker', 150_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  await server.faults({ down: true });
  await trackInWorker(browser, 'e2e_alarm', 5);
  const alarmOf = () => browser.inWorker((name) => chrome.alarms.get(name), ALARM);
  await waitFor(alarmOf, { timeoutMs: 15_000, what: "the SDK's alarm" });
  await browser.inWorker(() => chrome.alarms.clearAll());
  eq(await alarmOf(), undefined, 'cleared');
  const clearedAt = Date.now();
  const again = await waitFor(alarmOf, { timeoutMs: 45_000, intervalMs: 500, what: "the SDK's alarm set again" });
  log(`alarm set again ${Date.now() - clearedAt} ms after clearAll(), for ${new Date(again.scheduledTime).toISOString()}`);
  // Only the alarm can wake the next worker: stop it, bring the server up, send nothing.
  const page = await browser.openExtensionPage('options.html');
  await browser.stopWorker(page);
  await page.close();
  await server.faults({ down: false });
  await waitStored(server, byName('e2e_alarm'), 5, 100_000, '5 events, woken by the alarm');
  log(`delivered after the alarm woke a stopped worker, ${Date.now() - clearedAt} ms after clearAll()`);
});

test('429 with Retry-After: 8, then the worker restarts: still no request before the deadline', 60_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  const page = await browser.openExtensionPage('options.html');
  await server.faults({ fail_next: { count: 1, status: 429, retry_after: '8' } });
  // One event: no other request is out alongside the one the 429 answers.
  await trackInWorker(browser, 'e2e_wait', 1);
  const first = await waitFor(async () => (await trackRequests(server, 'e2e_wait')).find((r) => r.status === 429), { timeoutMs: 10_000, what: 'the 429' });
  await sleep(800); // the wait is stored with the index
  assert(await restartWorker(browser, page), 'a fresh worker');
  await waitStored(server, byName('e2e_wait'), 1, 30_000);
  const reqs = await trackRequests(server, 'e2e_wait');
  const early = reqs.filter((r) => r.at_ms > first.at_ms && r.at_ms < first.at_ms + 8000);
  eq(early.length, 0, `requests before Retry-After's deadline (at +${early.map((r) => r.at_ms - first.at_ms).join(', ')} ms)`);
  const next = Math.min(...reqs.filter((r) => r.at_ms > first.at_ms).map((r) => r.at_ms));
  log(`429 at +0 ms, worker restarted, next request at +${next - first.at_ms} ms`);
});

test('401, then the worker restarts: still paused (no request), nothing dropped', 60_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  const page = await browser.openExtensionPage('options.html');
  // The server stops accepting the demo's secret.
  await server.setTokens([{ token_id: 'demo_token_id', token_secret: 'another_secret', app_id: APP }]);
  await trackInWorker(browser, 'e2e_paused', 4);
  // A refused request is answered before its body is read: the log has no event name for it.
  await waitFor(async () => (await trackRequests(server, null)).some((r) => r.status === 401), { timeoutMs: 10_000, what: 'the 401' });
  await waitFor(async () => (await workerStats(browser)).state === 'paused' || null, { timeoutMs: 5_000, what: 'paused' });
  await sleep(800);
  const before = (await trackRequests(server, null)).length;
  assert(await restartWorker(browser, page), 'a fresh worker');
  await sleep(4000);
  const st = await workerStats(browser);
  eq(st.state, 'paused', 'state after the restart');
  eq(st.queued, 4, 'queued');
  eq((await trackRequests(server, null)).length, before, 'requests after the restart');
  log(`paused by a 401, still paused after a worker restart (${before} request(s), none since), 4 queued`);
});

test('an index that is not text: the queue is rebuilt from its segments and every event delivered', 60_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  await server.faults({ down: true });
  const r = await trackInWorker(browser, 'e2e_rebuilt', 25);
  const page = await browser.openExtensionPage('options.html');
  await page.evaluate((key) => chrome.storage.local.set({ [key]: { damaged: true } }), INDEX_KEY);
  assert(await restartWorker(browser, page), 'a fresh worker');
  await server.faults({ down: false });
  await waitStored(server, byName('e2e_rebuilt'), 25, 30_000);
  await sleep(1000);
  const s = summarize(await server.events(), byName('e2e_rebuilt'));
  eq(s.unique, 25, 'unique');
  eq(new Set(s.events.map((e) => e.properties.$event_id)), new Set(r.map((x) => x.id)), 'the events tracked');
  const errs = await recentErrors(browser);
  assert(errs.some((e) => e.code === 'STORAGE_ERROR' && /rebuilt/.test(e.message)), `reported: ${JSON.stringify(errs)}`);
  const idx = await browser.inWorker((key) => chrome.storage.local.get(key), INDEX_KEY);
  eq(typeof idx[INDEX_KEY], 'string', 'a good index stored again');
  log(`index replaced by an object: rebuilt from the segments, 25/25 delivered, reported as STORAGE_ERROR`);
});

test('the index removed while no worker runs: the next start rebuilds the queue from its segments and stores nothing over them', 60_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  await server.faults({ down: true });
  const r = await trackInWorker(browser, 'e2e_unindexed', 25);
  const page = await browser.openExtensionPage('options.html');
  // Removed with no worker running: its storage.onChanged (or the page's next message) wakes a
  // fresh one, which finds the segments but no index.
  const removeIndex = () => page.evaluate((key) => chrome.storage.local.remove(key), INDEX_KEY);
  assert(await restartWorker(browser, page, removeIndex), 'a fresh worker');
  // Tracked at once by the fresh worker: stored in new segments, numbered past the stored ones.
  const after = await trackInWorker(browser, 'e2e_unindexed_after', 5);
  eq(after.filter((x) => x.status === 'queued').length, 5, 'queued after');
  await server.faults({ down: false });
  await waitStored(server, byName('e2e_unindexed'), 25, 30_000);
  await waitStored(server, byName('e2e_unindexed_after'), 5, 30_000);
  await sleep(1000);
  const s = summarize(await server.events(), byName('e2e_unindexed'));
  eq(new Set(s.events.map((e) => e.properties.$event_id)), new Set(r.map((x) => x.id)), 'the events tracked before');
  eq(summarize(await server.events(), byName('e2e_unindexed_after')).unique, 5, 'the events tracked after');
  const errs = await recentErrors(browser);
  assert(errs.some((e) => e.code === 'STORAGE_ERROR' && /index was missing; the queue was rebuilt/.test(e.message)), `reported: ${JSON.stringify(errs)}`);
  log(`index removed while stopped: rebuilt from the segments, 25/25 and the 5 tracked after delivered`);
});

test('one event reset by a proxy on every attempt: every other event is delivered, it waits on its own backoff', 90_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  await server.faults({ reset_event: { event_name: 'e2e_poison', count: null } });
  await trackInWorker(browser, 'e2e_poison', 1);
  const r = await trackInWorker(browser, 'e2e_healthy', 60);
  // More arrive while the poisoned one keeps failing (an extension in use).
  await sleep(1500);
  const r2 = await trackInWorker(browser, 'e2e_healthy', 40);
  await waitStored(server, byName('e2e_healthy'), 100, 45_000, '100 healthy events');
  const s = summarize(await server.events(), byName('e2e_healthy'));
  eq([s.unique, s.storedDuplicates], [100, 0], 'healthy events: unique, duplicates');
  eq(new Set(s.events.map((e) => e.properties.$event_id)).size, new Set([...r, ...r2].map((x) => x.id)).size, 'the healthy events tracked');
  // It is tried again later, on its own schedule, while new events keep flowing.
  await sleep(4000);
  await trackInWorker(browser, 'e2e_healthy', 5);
  await waitStored(server, byName('e2e_healthy'), 105, 20_000, '105 healthy events');
  const attempts = (await trackRequests(server, 'e2e_poison')).length;
  const st = await workerStats(browser);
  eq(st.queued, 1, 'only the poisoned event is left');
  assert(attempts >= 2, `the poisoned event was tried ${attempts} time(s): it must be retried on its own backoff`);
  assert(attempts <= 12, `the poisoned event was tried ${attempts} times in a few seconds: it must back off on its own, not be retried in a loop`);
  log(`100 healthy events delivered once around one event reset on every attempt (${attempts} attempts so far, still queued; state ${st.state})`);
});

test('a redirect from the API: never followed, delivery pauses with REDIRECTED naming the URL, not retried in a loop', 60_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  await server.faults({ redirect_next: { count: 1000, status: 302, location: 'http://127.0.0.1:9/elsewhere' } });
  await trackInWorker(browser, 'e2e_redirected', 5);
  const st = await waitFor(async () => {
    const s = await workerStats(browser);
    return s.state === 'paused' ? s : null;
  }, { timeoutMs: 15_000, what: 'paused' });
  eq(st.lastError?.code, 'REDIRECTED', 'lastError');
  assert(st.lastError.message.includes('/chrome/events/track'), `the message names the URL: ${st.lastError.message}`);
  await sleep(3000);
  const reqs = (await trackRequests(server, null)).filter((r) => r.injected === 'redirect');
  assert(reqs.length <= 6, `${reqs.length} redirected requests: a redirect must pause delivery, not be retried`);
  eq((await workerStats(browser)).queued, 5, 'nothing dropped');
  log(`302 → paused with REDIRECTED after ${reqs.length} request(s); 5 still queued`);
});

test('a 2xx whose body never finishes: the status decides, each event stored once', 60_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  await server.faults({ stall_body_next: 3 });
  await trackInWorker(browser, 'e2e_stall', 10);
  await waitStored(server, byName('e2e_stall'), 10, 20_000);
  const st = await waitFor(async () => {
    const s = await workerStats(browser);
    return s.queued === 0 && s.inFlight === 0 ? s : null;
  }, { timeoutMs: 8_000, what: 'the queue empty well within the 10 s request timeout' });
  await sleep(1000);
  const s = summarize(await server.events(), byName('e2e_stall'));
  eq([s.unique, s.storedDuplicates], [10, 0], 'unique, duplicates');
  eq([st.delivered >= 10, st.retried, st.dropped.retriesExhausted], [true, 0, 0], 'delivered, retried, retries exhausted');
  log(`3 answers whose body never ended: counted delivered at once, 10 stored once, nothing retried`);
});
