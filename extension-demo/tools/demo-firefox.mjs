// `make demo BROWSER=firefox`: the same demo in headless Firefox, whose background is an event
// page. Builds the demo extension with Firefox's manifest, starts the local Inhouse server with a
// token for the add-on's gecko id, installs the add-on, clicks through the popup (opened in a tab),
// lets the content script fire on a local page, and prints what the server received.
import fs from 'node:fs';
import path from 'node:path';
import { buildDemo, cloneWithConfig, DEMO_TOKEN, ROOT } from './build.mjs';
import { startStaticSite, tempDir, POPUP_CLICKS } from './harness.mjs';
import { GECKO_ID, launchFirefox, makeFirefoxExtension } from '../../scripts/lib/firefox.mjs';
import { startServer, waitFor, sleep } from '../../scripts/lib/harness.mjs';

const OUT = path.join(ROOT, 'dist/extension-demo-firefox');

/** Runs the demo; `say` prints a line, `cleanups` collects what to stop. Returns whether it passed. */
export async function firefoxDemo(say, cleanups) {
  const { version } = buildDemo({ outDir: OUT });
  // Usage events are technical and interaction data, which Firefox only allows as optional: the
  // tracker stays opted out until the user shares them (the options page's checkbox).
  makeFirefoxExtension(OUT, GECKO_ID, { required: ['none'], optional: ['technicalAndInteraction'] });
  say(`built dist/extension-demo-firefox/ from @inhouse/chrome-tracker@${version} (gecko id ${GECKO_ID})`);
  const server = await startServer({ tokens: [`${DEMO_TOKEN.tokenId}:${DEMO_TOKEN.tokenSecret}:${GECKO_ID}`] });
  cleanups.push(() => server.stop());
  say(`inhouse-server: api ${server.api}, control ${server.control}`);
  const site = await startStaticSite();
  cleanups.push(() => site.stop());
  const work = tempDir('inhouse-demo-firefox-');
  cleanups.push(() => fs.rmSync(work, { recursive: true, force: true }));
  const extDir = cloneWithConfig(OUT, path.join(work, 'extension'), { baseUrl: server.baseUrl });
  // Firefox asks nothing more than the click for an optional permission (the prompt is off).
  const firefox = await launchFirefox({ extDir, prefs: { 'extensions.webextOptionalPermissionPrompts': false } });
  cleanups.push(() => firefox.close());
  say(`Firefox headless (${await firefox.browser.version()}), add-on installed; its background is an event page`);

  // Nothing is sent before the user shares usage data (Firefox's data consent).
  const options = await firefox.page('options.html');
  await sleep(1000);
  const before = (await server.events()).events.length;
  await options.click('#share');
  await waitFor(() => options.evaluate(() => document.querySelector('#status').textContent.includes('Usage data')), { what: 'the answer to the consent' });
  say(`options page: ${before} events before "Share usage data" was ticked; then: ${await options.evaluate(() => document.querySelector('#status').textContent)}`);
  if (before !== 0) return false;

  // The automatic events at install ($extension_installed, $daily_active), then the popup's.
  let tracked = 2;
  const popup = await firefox.page('popup.html');
  tracked += 1; // the popup reports its own view: $pageview
  const click = async (id, n) => {
    await popup.click(`#${id}`);
    await waitFor(async () => (await popup.evaluate(() => document.querySelector('#feedback').textContent)) !== '', { what: `#${id}` });
    say(`popup: ${id} → ${await popup.evaluate(() => document.querySelector('#feedback').textContent)}`);
    await popup.evaluate(() => (document.querySelector('#feedback').textContent = ''));
    tracked += n;
  };
  for (const [id, n] of POPUP_CLICKS) await click(id, n);

  const page = await firefox.browser.newPage();
  await page.goto(`${site.origin}/pricing?title=Pricing`);
  await sleep(500);
  await page.click('#cta');
  tracked += 2; // $pageview and cta_click from the content script
  say(`content script: $pageview and cta_click on ${site.origin}/pricing`);

  await waitFor(async () => (await server.events()).events.length >= tracked, { timeoutMs: 30_000, what: `${tracked} events at the server` });
  await sleep(500);
  const all = await server.events();
  console.log('\n--- what the server stored from Firefox (GET /events?format=text) ---');
  console.log(String(await server.eventsText()).trimEnd());
  console.log('---');
  const ids = all.events.map((e) => e.properties.$event_id);
  const duplicates = ids.length - new Set(ids).size;
  const browsers = [...new Set(all.events.map((e) => `${e.properties.$browser} ${e.properties.$browser_version}`))];
  say(`${tracked} tracked, ${all.events.length} stored, ${duplicates} duplicates; $browser: ${browsers.join(', ')}; x-inhouse-app: ${GECKO_ID}`);
  const { planViolations } = await popup.evaluate(async () => (await import('./vendor/inhouse/client.js')).stats());
  say(`tracking plan (extension-demo/src/plan.js, planMode 'reject'): ${planViolations} violations`);
  return all.events.length === tracked && duplicates === 0 && planViolations === 0;
}
