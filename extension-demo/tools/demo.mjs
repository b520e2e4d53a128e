// The demo run (scripts/demo.sh calls it once the package and the server are built): builds the
// demo extension from the packed tarball, starts the local Inhouse server and a static page,
// loads the extension in Chromium (BROWSER=firefox: in Firefox, demo-firefox.mjs), clicks through
// the popup, lets the content script fire,
// waits for delivery, prints what the server stored, screenshots the popup into docs/popup.png,
// and stops everything it started.
import fs from 'node:fs';
import path from 'node:path';
import { buildDemo, cloneWithConfig, ROOT, EXTENSION_ID, DEFAULT_OUT } from './build.mjs';
import { startServer, startStaticSite, launchBrowser, tempDir, waitFor, sleep, problems, POPUP_CLICKS } from './harness.mjs';

const LIMIT_MS = 110_000;
const say = (s) => console.log(`[demo] ${s}`);
const cleanups = [];
let failed = false;
let serverRef = null;

const watchdog = setTimeout(() => {
  console.error(`[demo] gave up after ${LIMIT_MS / 1000} s`);
  failed = true;
  cleanup().finally(() => process.exit(1));
}, LIMIT_MS);

async function cleanup() {
  while (cleanups.length) {
    try {
      await cleanups.pop()();
    } catch (e) {
      console.error(`[demo] cleanup: ${e.message}`);
    }
  }
}

async function main() {
  const { version } = buildDemo({ outDir: DEFAULT_OUT });
  say(`built dist/extension-demo/ from @inhouse/chrome-tracker@${version} (extension id ${EXTENSION_ID})`);

  const server = await startServer({ quiet: true });
  serverRef = server;
  cleanups.push(() => server.stop());
  say(`inhouse-server: api ${server.api}, control ${server.control}`);
  const site = await startStaticSite();
  cleanups.push(() => site.stop());

  // The run uses a copy of the built extension pointed at this server's ephemeral port.
  const work = tempDir('inhouse-demo-');
  cleanups.push(() => fs.rmSync(work, { recursive: true, force: true }));
  const extDir = cloneWithConfig(DEFAULT_OUT, path.join(work, 'extension'), { baseUrl: server.baseUrl });
  const consoleLog = [];
  const headless = !process.env.DISPLAY;
  const browser = await launchBrowser({ extDir, userDataDir: path.join(work, 'profile'), headless, consoleLog });
  cleanups.push(() => browser.close());
  await browser.worker();
  say(`Chromium ${headless ? 'headless' : 'headed'}, extension loaded`);

  // The SDK's automatic events at install: $extension_installed and the day's $daily_active.
  let tracked = 2;
  const popup = await browser.openExtensionPage('popup.html', { width: 340, height: 420 });
  tracked += 1; // the popup reports its own view: $pageview
  const click = async (id, n) => {
    await popup.click(`#${id}`);
    await waitFor(async () => !(await popup.isDisabled(`#${id}`)) && (await popup.textContent('#feedback')), { what: `#${id}` });
    say(`popup: ${id} → ${await popup.textContent('#feedback')}`);
    tracked += n;
  };
  for (const [id, n] of POPUP_CLICKS) await click(id, n);

  const page = await browser.ctx.newPage();
  await page.goto(`${site.origin}/pricing?title=Pricing`);
  tracked += 1; // $pageview from the content script
  await page.click('#cta');
  tracked += 1; // cta_click
  say(`content script: $pageview and cta_click on ${site.origin}/pricing`);

  const stored = await waitFor(
    async () => {
      const { events } = await server.events();
      return events.length >= tracked ? events : null;
    },
    { timeoutMs: 30_000, what: `${tracked} events at the server` },
  );
  await popup.bringToFront();
  await popup.click('#flush');
  await waitFor(async () => (await popup.textContent('#s-delivered')) === String(tracked) && (await popup.textContent('#feedback')).startsWith('queue empty'), { what: 'the popup to show every event delivered' });
  await sleep(600);
  fs.mkdirSync(path.join(ROOT, 'docs'), { recursive: true });
  await popup.screenshot({ path: path.join(ROOT, 'docs/popup.png'), fullPage: true });

  const all = await server.events();
  console.log('\n--- what the server stored (GET /events?format=text) ---');
  console.log(String(await server.eventsText()).trimEnd());
  console.log('---');
  const ids = all.events.map((e) => e.properties.$event_id);
  const dupStored = ids.length - new Set(ids).size;
  const { planViolations } = await popup.evaluate(async () => (await import('./vendor/inhouse/client.js')).stats());
  say(`tracking plan (extension-demo/src/plan.js, planMode 'reject'): ${planViolations} violations`);
  const issues = problems(consoleLog);
  for (const m of issues) console.log(`[demo] console ${m.type} in ${m.where}: ${m.text}`);
  say(`screenshot of the popup: docs/popup.png`);
  say(`${tracked} tracked, ${stored.length >= tracked ? all.events.length : stored.length} stored, ${dupStored} duplicates (${all.duplicates.length} retries answered idempotently), console: ${issues.length} errors/warnings`);
  if (all.events.length !== tracked || dupStored !== 0 || issues.length || planViolations !== 0) failed = true;
}

try {
  if (process.env.BROWSER === 'firefox') {
    const { firefoxDemo } = await import('./demo-firefox.mjs');
    failed = !(await firefoxDemo(say, cleanups));
  } else {
    await main();
  }
} catch (e) {
  failed = true;
  console.error(`[demo] failed: ${e.stack ?? e}`);
  if (serverRef?.exitStatus()) console.error(`[demo] inhouse-server exited ${JSON.stringify(serverRef.exitStatus())}: ${serverRef.stderr().slice(-2000)}`);
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
process.exit(failed ? 1 : 0);
