// Takes docs/viewer.png: the server's event viewer in headless Chromium with a few events such
// as the demo extension sends, one Idempotency-Key replayed, one event stored twice (idempotency
// off) and a fault armed. Needs target/release/inhouse-server (cargo build --release -p
// inhouse-server).
//
//   node server/tools/viewer-screenshot.mjs [OUT.png]
import path from 'node:path';
import { ROOT, startServer } from '../../scripts/lib/harness.mjs';
import { openViewer, sendEvent } from '../../scripts/lib/viewer.mjs';

const OUT = path.resolve(process.argv[2] ?? path.join(ROOT, 'docs/viewer.png'));
const TOKEN = 'demo_token_id:demo_token_secret:plegabhjiddkllfafkfabfigjeelipcj';
const INSTALL = '0197a3e2-6c1b-7f3a-9d41-5be0c2a1f7e3';
const OTHER_INSTALL = '0197a3f0-11d2-7a08-8e5c-03f4b7d9a2c6';
const SESSION = '0197b801-2f4e-7c91-a3d7-6e2b95c0d148';
const OTHER_SESSION = '0197b80f-8a13-72b4-b6e0-f15d3c7a9e21';
const BASE = Date.parse('2026-05-01T09:30:00Z');

let n = 0;
/** An event as the SDK builds it: its own properties, then the automatic `$` ones. */
function event(name, props, { install = INSTALL, session = SESSION, user, source = 'background' } = {}) {
  n += 1;
  const id = `0197b8${String(n).padStart(2, '0')}-4c2d-7e1f-9a3b-${(0x5c0e7d2a1b30 + n * 7919).toString(16)}`;
  const properties = {
    ...props,
    $install_id: install,
    $session_id: session,
    ...(user ? { $user_id: user } : {}),
    $source: source,
    $time: new Date(BASE + n * 1700).toISOString(),
    $event_id: id,
    $sdk: 'inhouse-chrome/0.1.0',
    $extension_version: '1.4.2',
  };
  return { name, properties, key: id };
}

const server = await startServer({ tokens: [TOKEN] });
let viewer;
try {
  const send = async (e, expected = 200) => {
    const r = await sendEvent(server, { token: TOKEN, ...e });
    if (r.status !== expected) throw new Error(`${e.name}: ${r.status} ${r.body}`);
  };
  await send(event('$extension_installed', { reason: 'install' }));
  await send(event('$pageview', { path: '/pricing', title: 'Pricing' }, { source: 'content_script' }));
  await send(event('button_click', { button: 'upgrade', plan: 'pro' }, { source: 'popup' }));
  await send(event('$identify', {}, { user: 'user_8121', source: 'popup' }));
  // Sent twice with its key: the second is an idempotent replay, nothing stored.
  const checkout = event('checkout_started', { plan: 'pro', price_cents: 1200 }, { user: 'user_8121', source: 'popup' });
  await send(checkout);
  await send(checkout);
  await send(event('$pageview', { path: '/docs', title: 'Docs' }, { install: OTHER_INSTALL, session: OTHER_SESSION, source: 'content_script' }));
  // Idempotency off (--no-idempotency): a resend after a lost answer is stored again.
  await server.ctl('/settings', { idempotency: false });
  const saved = event('settings_saved', { theme: 'dark', notifications: false }, { user: 'user_8121', source: 'options' });
  await send(saved);
  await send(saved);
  await send(event('button_click', { button: 'share', plan: 'pro' }, { user: 'user_8121', source: 'popup' }));
  // A fault armed from the page's buttons, one request already failed by it.
  await server.faults({ fail_next: { count: 2, status: 503 } });
  await send(event('sync_failed', { attempt: 1 }), 503);

  viewer = await openViewer(server, { width: 1360, height: 520 });
  const { page } = viewer;
  await page.waitForFunction(() => document.querySelectorAll('#events tr.dup').length === 3 && document.getElementById('armed').textContent.includes('fail_next'));
  await page.screenshot({ path: OUT });
  console.log(`viewer screenshot: ${path.relative(process.cwd(), OUT)}`);
} finally {
  await viewer?.close();
  await server.stop();
}
