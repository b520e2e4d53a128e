// Shared by every e2e test file (*.test.mjs): the fixtures (a local server, a copy of the demo
// extension pointed at it, Chromium on a fresh profile), what the server stored, and the
// assertions. Every assertion is on what the SERVER stored or logged.
import fs from 'node:fs';
import path from 'node:path';
import { cloneWithConfig, ROOT, EXTENSION_ID, DEMO_TOKEN } from '../../extension-demo/tools/build.mjs';
import { startServer, launchBrowser, startStaticSite, tempDir, waitFor } from '../../extension-demo/tools/harness.mjs';

export { sleep, waitFor, statsFromPage, problems } from '../../extension-demo/tools/harness.mjs';

export const TMP = path.join(ROOT, 'tests/e2e/.tmp');
export const BASE_EXT = path.join(TMP, 'extension-base');
export const APP = EXTENSION_ID;
export const DEMO_SECRET = DEMO_TOKEN.tokenSecret;
export const log = (s) => console.log(`  ${s}`);

/**
 * A test file's list: `const { tests, test } = defineTests(); export default tests;` then
 * `test(name, timeoutMs, async (t) => {...})`. Names are unique across files.
 */
export function defineTests() {
  const tests = [];
  return { tests, test: (name, timeoutMs, fn) => tests.push({ name, timeoutMs, fn }) };
}

// ---------------------------------------------------------------- assertions
export class AssertionError extends Error {}
export function assert(cond, msg) {
  if (!cond) throw new AssertionError(msg);
}
/** JSON with object keys sorted (sets as sorted arrays): key order is not significant. */
export function canon(v) {
  if (v instanceof Set) return canon([...v].sort());
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}
export function eq(actual, expected, msg) {
  if (canon(actual) !== canon(expected)) {
    throw new AssertionError(`${msg}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

// ---------------------------------------------------------------- what the server stored
export function summarize(all, filter = () => true) {
  const events = all.events.filter(filter);
  const ids = events.map((e) => e.properties.$event_id);
  const unique = new Set(ids);
  return { events, stored: events.length, unique: unique.size, storedDuplicates: ids.length - unique.size };
}
export const byName = (...names) => (e) => names.includes(e.event_name);
/** An event's own properties: all but the SDK's reserved `$` context. */
export const userProps = (properties) => Object.fromEntries(Object.entries(properties).filter(([k]) => !k.startsWith('$')));

export async function waitStored(server, filter, n, timeoutMs = 30_000, what = `${n} events`) {
  return waitFor(async () => {
    const s = summarize(await server.events(), filter);
    return s.unique >= n ? s : null;
  }, { timeoutMs, intervalMs: 200, what: `${what} at the server` });
}

// ---------------------------------------------------------------- fixtures
/**
 * A server, a copy of the extension pointed at it, and Chromium on a fresh profile.
 * Everything is registered for cleanup on `t`.
 */
// By default the server stores every POST (`--no-idempotency`): a test that says "once" sees any
// resend as a stored duplicate. `serverArgs: []` gives the idempotent server.
// `beforeLaunch(server)` runs before Chromium starts (the extension installs as it launches).
// `background(config)`: the source of a background.js of the test's own, instead of the demo's
// (top-level calls at each worker start); `config` is what the demo reads from demo-config.json.
export async function env(t, { tokens, serverArgs = ['--no-idempotency'], config = {}, site = false, beforeLaunch, background } = {}) {
  const server = await startServer({ tokens, args: serverArgs });
  t.cleanup(() => server.stop());
  t.server = server;
  if (beforeLaunch) await beforeLaunch(server);
  const dir = tempDir(`${t.slug}-`, TMP);
  t.cleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Without the demo's tracking plan: the tests track events of their own.
  const extDir = cloneWithConfig(BASE_EXT, path.join(dir, 'extension'), { baseUrl: server.baseUrl, plan: false, ...config });
  if (background) {
    const demoConfig = JSON.parse(fs.readFileSync(path.join(extDir, 'demo-config.json'), 'utf8'));
    fs.writeFileSync(path.join(extDir, 'background.js'), background(demoConfig));
  }
  const userDataDir = path.join(dir, 'profile');
  const consoleLog = t.consoleLog;
  const open = async () => {
    const b = await launchBrowser({ extDir, userDataDir, consoleLog });
    t.cleanup(() => b.close());
    await b.worker();
    return b;
  };
  const browser = await open();
  const out = { server, browser, extDir, userDataDir, reopen: open };
  if (site) {
    out.site = await startStaticSite();
    t.cleanup(() => out.site.stop());
  }
  return out;
}

/** The tracker in the background worker: track n events, resolved when all are durably queued. */
export function trackInWorker(browser, name, n, props = {}) {
  return browser.inWorker(
    async ({ name, n, props }) => {
      const t = globalThis.inhouseDemo.tracker();
      const r = await Promise.all(Array.from({ length: n }, (_, i) => t.track(name, { ...props, i })));
      return r;
    },
    { name, n, props },
  );
}
export const workerStats = (browser) => browser.inWorker(() => globalThis.inhouseDemo.tracker().stats());
export const settle = (server) => waitStored(server, byName('$extension_installed'), 1, 15_000, '$extension_installed');

/** Uninstalls the extension from one of its pages and returns the uninstall URL Chrome opened. */
export async function uninstallPage(browser, marker = '/bye') {
  const options = await browser.openExtensionPage('options.html');
  const requested = [];
  browser.ctx.on('request', (r) => r.url().includes(marker) && requested.push(r.url()));
  await options.evaluate(() => chrome.management.uninstallSelf({ showConfirmDialog: false })).catch(() => {});
  await waitFor(async () => requested.length > 0, { timeoutMs: 15_000, what: 'the uninstall page to be requested' });
  return new URL(requested[0]);
}
