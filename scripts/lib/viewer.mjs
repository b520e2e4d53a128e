// The server's event viewer (GET / on the control port) in headless Chromium, and events sent
// to the server's API the way the SDK sends them. Shared by tests/e2e/viewer.test.mjs and
// server/tools/viewer-screenshot.mjs.
import { CHROMIUM, CHROMIUM_FLAGS, chromium } from './harness.mjs';

/**
 * Chromium (no extension) with the viewer page of `server` (a startServer() result) open and
 * live. Console messages and page errors go to `consoleLog`. Close it with `close()`.
 */
export async function openViewer(server, { width = 1280, height = 720, consoleLog = [], headless = true } = {}) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless, args: CHROMIUM_FLAGS });
  try {
    const page = await browser.newPage({ viewport: { width, height } });
    page.on('console', (m) => consoleLog.push({ where: 'viewer', type: m.type(), text: m.text(), at: Date.now() }));
    page.on('pageerror', (e) => consoleLog.push({ where: 'viewer', type: 'pageerror', text: String(e), at: Date.now() }));
    await page.goto(`${server.control}/`);
    await page.waitForSelector('#live[data-state="live"]', { timeout: 10_000 });
    return { browser, page, close: () => browser.close().catch(() => {}) };
  } catch (e) {
    await browser.close().catch(() => {});
    throw e;
  }
}

/**
 * POSTs one event to the server's track endpoint with the credentials `token`
 * ("id:secret:app") and, if given, an Idempotency-Key. Answers {status, replayed, body}.
 */
export async function sendEvent(server, { token, name, properties = {}, key }) {
  const [tokenId, secret, app] = token.split(':');
  const headers = {
    'content-type': 'application/json',
    'x-inhouse-token-id': tokenId,
    'x-inhouse-token-secret': secret,
    'x-inhouse-app': app,
  };
  if (key) headers['idempotency-key'] = key;
  const res = await fetch(`${server.baseUrl}/chrome/events/track`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ event_name: name, properties }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, replayed: res.headers.get('idempotent-replayed') === 'true', body: await res.text() };
}
