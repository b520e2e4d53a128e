// Shared by the demo (demo.mjs) and the end-to-end tests (tests/e2e/): the local Inhouse
// server, a tiny static site on 127.0.0.1 for the content script, and Chromium with the demo
// extension loaded through playwright-core.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { EXTENSION_ID } from './build.mjs';
import { CHROMIUM, CHROMIUM_FLAGS, chromium, startServer as startSharedServer, stopServiceWorkers } from '../../scripts/lib/harness.mjs';

export { SERVER_BIN, sleep, waitFor } from '../../scripts/lib/harness.mjs';

/** The local Inhouse server, with the demo's credentials unless told otherwise. */
export function startServer({ tokens = [`demo_token_id:demo_token_secret:${EXTENSION_ID}`], ...rest } = {}) {
  return startSharedServer({ tokens, ...rest });
}

const PAGE = (title) => `<!doctype html>
<html><head><meta charset="utf-8"><title>${title}</title></head>
<body>
  <h1>${title}</h1>
  <p>A page on 127.0.0.1: the demo's content script tracks a page view ($pageview) here, and clicks on
  elements marked <code>data-inhouse-event</code>.</p>
  <button id="cta" data-inhouse-event="cta_click" data-inhouse-prop-placement="hero">Click me</button>
</body></html>`;

/** A static site on 127.0.0.1 (ephemeral port) where the content script runs. */
export async function startStaticSite() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    const title = url.searchParams.get('title') ?? `Demo page ${url.pathname}`;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE(title.replace(/[<>&"]/g, '')));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    stop: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  };
}

/** A fresh temporary directory (profile, extension copy); removed by the caller. */
export function tempDir(prefix, base = os.tmpdir()) {
  fs.mkdirSync(base, { recursive: true });
  return fs.mkdtempSync(path.join(base, prefix));
}

/**
 * Launches Chromium with the extension at extDir on the profile userDataDir. Collects every
 * console message of the extension's service worker and of pages into `consoleLog`.
 */
export async function launchBrowser({ extDir, userDataDir, headless = !process.env.DISPLAY, consoleLog = [] }) {
  const ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless,
    viewport: { width: 1000, height: 700 },
    args: [...CHROMIUM_FLAGS, `--disable-extensions-except=${extDir}`, `--load-extension=${extDir}`],
  });
  const watchWorker = (w) => {
    if (!w.url().startsWith(`chrome-extension://${EXTENSION_ID}/`)) return;
    w.on('console', (m) => consoleLog.push({ where: 'worker', type: m.type(), text: m.text(), at: Date.now() }));
  };
  ctx.on('serviceworker', watchWorker);
  ctx.serviceWorkers().forEach(watchWorker);
  const watchPage = (p) => {
    p.on('console', (m) => consoleLog.push({ where: p.url(), type: m.type(), text: m.text(), at: Date.now() }));
    p.on('pageerror', (e) => consoleLog.push({ where: p.url(), type: 'pageerror', text: String(e), at: Date.now() }));
  };
  ctx.on('page', watchPage);
  ctx.pages().forEach(watchPage);
  const browser = {
    ctx,
    consoleLog,
    extensionUrl: (p) => `chrome-extension://${EXTENSION_ID}/${p}`,
    /** The running background worker, waiting for one to start if needed. */
    async worker(timeoutMs = 15_000) {
      const pick = () => ctx.serviceWorkers().find((w) => w.url() === `chrome-extension://${EXTENSION_ID}/background.js`);
      let w = pick();
      if (w) return w;
      const deadline = Date.now() + timeoutMs;
      while (!w && Date.now() < deadline) {
        await ctx.waitForEvent('serviceworker', { timeout: Math.max(100, Math.min(1000, deadline - Date.now())) }).catch(() => {});
        w = pick();
      }
      if (!w) throw new Error('the extension service worker did not start');
      return w;
    },
    /** Evaluates fn(arg) in the background worker, after its tracker exists. */
    async inWorker(fn, arg) {
      const w = await browser.worker();
      await w.evaluate(() => globalThis.inhouseDemo.ready());
      return w.evaluate(fn, arg);
    },
    /** Opens an extension page (popup.html, options.html). */
    async openExtensionPage(p, { width, height } = {}) {
      const page = await ctx.newPage();
      if (width) await page.setViewportSize({ width, height });
      await page.goto(browser.extensionUrl(p));
      return page;
    },
    /** Stops the extension's service worker the way Chrome does when it is idle. */
    stopWorker: (page) => stopServiceWorkers(ctx, page),
    async close() {
      await ctx.close().catch(() => {});
    },
  };
  return browser;
}

/** Tracker stats asked from an extension page through the package's client (wakes the worker). */
export function statsFromPage(page) {
  return page.evaluate(async () => (await import('./vendor/inhouse/client.js')).stats());
}

/** Console messages that are errors or warnings. */
export const problems = (log) => log.filter((m) => m.type === 'error' || m.type === 'warning' || m.type === 'pageerror');

/** The demo's popup buttons, in the order the demo clicks them, with the events each tracks. */
export const POPUP_CLICKS = [
  ['track-click', 1],
  ['track-purchase', 1],
  ['track-burst', 25],
  ['track-bg', 1],
  ['login', 1], // $identify
];
