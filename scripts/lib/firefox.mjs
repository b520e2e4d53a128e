// Firefox for the tests and the demo: Debian's firefox-esr driven by puppeteer-core over WebDriver
// BiDi (Playwright cannot drive a stock Firefox). The extension is installed as a temporary add-on
// with a fixed uuid, so its moz-extension:// origin is known; its background is an event page.
import fs from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { zipDirectory } from './zip.mjs';

export const FIREFOX = process.env.FIREFOX ?? '/usr/bin/firefox-esr';
export const GECKO_ID = 'inhouse-demo@example.com';
/** The uuid of the demo's install (a per-install random one in a real Firefox). */
export const EXTENSION_UUID = '3c2d8a7e-1b4f-4e6a-9c5d-0f1e2a3b4c5d';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The Chrome manifest made into Firefox's: the background as an event page (`scripts`, a module),
 * the gecko id and Firefox's data-collection declaration, host access to the local API (Firefox
 * sends extension requests without a host permission through CORS), no Chrome-only keys.
 */
export function firefoxManifest(manifest, geckoId = GECKO_ID, dataCollection = { required: ['none'] }) {
  const m = structuredClone(manifest);
  delete m.key;
  delete m.minimum_chrome_version;
  const bg = m.background ?? {};
  m.background = { scripts: [bg.service_worker ?? 'background.js'], ...(bg.type ? { type: bg.type } : {}) };
  m.browser_specific_settings = { gecko: { id: geckoId, strict_min_version: '140.0', data_collection_permissions: dataCollection } };
  m.host_permissions = [...new Set([...(m.host_permissions ?? []), 'http://127.0.0.1/*'])];
  return m;
}

/** Rewrites `dir/manifest.json` for Firefox (`dataCollection`: its data_collection_permissions). */
export function makeFirefoxExtension(dir, geckoId = GECKO_ID, dataCollection = undefined) {
  const file = path.join(dir, 'manifest.json');
  fs.writeFileSync(file, JSON.stringify(firefoxManifest(JSON.parse(fs.readFileSync(file, 'utf8')), geckoId, dataCollection), null, 2) + '\n');
}

/**
 * Launches headless Firefox with the extension at extDir installed.
 * `idleTimeoutMs`: how long the event page may idle before Firefox suspends it (default Firefox's).
 * `profileDir`: a profile kept across launches; the add-on is then installed permanently (an
 * unsigned .xpi, which only ESR, Developer Edition and Nightly accept), so it is still there when
 * the browser is opened again on that profile (`reopen: true`: do not install again).
 * Without it: a fresh profile and a temporary add-on.
 */
export async function launchFirefox({ extDir, geckoId = GECKO_ID, uuid = EXTENSION_UUID, idleTimeoutMs, prefs = {}, profileDir, reopen = false } = {}) {
  if (!fs.existsSync(FIREFOX)) throw new Error(`${FIREFOX} is missing: ./scripts/bootstrap.sh installs Debian's firefox-esr`);
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    args: ['--remote-allow-system-access'],
    ...(profileDir ? { userDataDir: profileDir } : {}),
    extraPrefsFirefox: {
      'extensions.webextensions.uuids': JSON.stringify({ [geckoId]: uuid }),
      ...(idleTimeoutMs ? { 'extensions.background.idle.timeout': idleTimeoutMs } : {}),
      ...(profileDir ? { 'xpinstall.signatures.required': false } : {}),
      ...prefs,
    },
  });
  try {
    if (profileDir && !reopen) {
      const xpi = `${profileDir.replace(/\/$/, '')}.xpi`;
      zipDirectory(extDir, xpi);
      await browser.connection.send('webExtension.install', { extensionData: { type: 'archivePath', path: xpi }, 'moz:permanent': true });
    } else if (!profileDir) {
      await browser.installExtension(extDir);
    }
  } catch (e) {
    await browser.close().catch(() => {});
    throw e;
  }
  const origin = `moz-extension://${uuid}`;
  /** Evaluates `expression` in the browser's privileged (chrome) context; its value, or throws. */
  const privileged = async (expression) => {
    const tree = await browser.connection.send('browsingContext.getTree', { 'moz:scope': 'chrome' });
    const context = tree.contexts?.[0]?.context ?? tree.result?.contexts?.[0]?.context;
    const r = await browser.connection.send('script.evaluate', { expression, target: { context }, awaitPromise: true, resultOwnership: 'none' });
    const out = r.result ?? r;
    if (out.type === 'exception') throw new Error(`privileged: ${out.exceptionDetails?.text}`);
    return out.result?.value;
  };
  return {
    browser,
    origin,
    privileged,
    /**
     * Opens one of the extension's pages in a new tab. Its load event never reaches the driver on
     * extension pages: the navigation is started, then the document polled until it is loaded.
     */
    async page(file) {
      const page = await browser.newPage();
      await page.goto(`${origin}/${file}`, { timeout: 1500 }).catch(() => {});
      for (let i = 0; i < 100; i++) {
        const ready = await page.evaluate(() => document.readyState === 'complete' && location.protocol === 'moz-extension:').catch(() => false);
        if (ready) return page;
        await sleep(100);
      }
      throw new Error(`${file} did not load`);
    },
    /**
     * Stops the event page at once, as Firefox does when it suspends an idle one, whatever it is
     * doing (sends in flight included). The next event wakes a new instance.
     */
    stopBackground() {
      return privileged(`(async () => {
        const { ExtensionParent } = ChromeUtils.importESModule('resource://gre/modules/ExtensionParent.sys.mjs');
        await ExtensionParent.DebugUtils.terminateBackgroundScript(${JSON.stringify(geckoId)});
        return true;
      })()`);
    },
    async close() {
      await browser.close().catch(() => {});
    },
  };
}

/**
 * Runs `fn(background, arg)` with the background page's window (woken if it was suspended), from
 * an extension page `page`: Firefox gives extension pages the event page's window.
 */
export function inBackground(page, fn, arg = null) {
  // An expression the driver evaluates (not the page's own eval, which its CSP forbids).
  return page.evaluate(`(async () => {
    const background = await browser.runtime.getBackgroundPage();
    return (${fn.toString()})(background, ${JSON.stringify(arg)});
  })()`);
}
