// Who sent it: one install id, created once and kept in chrome.storage.local, on every event:
// across worker stops and a browser restart.
import { defineTests, assert, eq, summarize, byName, waitStored, env, trackInWorker, settle, log, statsFromPage } from './lib.mjs';

const { tests, test } = defineTests();
export default tests;

test('one install id on every event, across 5 worker stops and a browser restart', 120_000, async (t) => {
  const e = await env(t);
  const { server } = e;
  await settle(server);
  let browser = e.browser;
  let page = await browser.openExtensionPage('options.html');
  for (let i = 0; i < 5; i++) {
    await trackInWorker(browser, 'e2e_identity', 3, { life: i });
    await browser.stopWorker(page);
    await statsFromPage(page).catch(() => null);
  }
  await waitStored(server, byName('e2e_identity'), 15, 30_000);
  await browser.close();
  browser = await e.reopen();
  await trackInWorker(browser, 'e2e_identity', 3, { life: 'after restart' });
  await waitStored(server, byName('e2e_identity'), 18, 30_000);
  const all = summarize(await server.events(), () => true);
  const names = {};
  for (const x of all.events) names[x.event_name] = (names[x.event_name] ?? 0) + 1;
  const ids = new Set(all.events.map((x) => x.properties.$install_id));
  eq(ids.size, 1, `install ids on the ${all.events.length} stored events (${[...ids].join(', ')})`);
  const [id] = ids;
  assert(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id ?? ''), `a random UUID: ${id}`);
  const stored = await browser.inWorker(() => chrome.storage.local.get('inhouse:v1:install'));
  eq(stored['inhouse:v1:install'], id, 'the id in chrome.storage.local');
  log(`${all.events.length} events ${JSON.stringify(names)}, ${all.storedDuplicates} stored twice, over 6 workers and 2 browser runs: one install id ${id}`);
});
