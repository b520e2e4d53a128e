// Who, when and where: one install id kept in chrome.storage.local across worker stops, a browser
// restart and an extension update; sessions in chrome.storage.session (a timeout, a browser
// restart, background events that do not extend them); identify/reset and super properties from a
// popup; and the surface, tab and origin of a content script's events as Chrome reports them.
import fs from 'node:fs';
import path from 'node:path';
import { defineTests, assert, eq, summarize, byName, waitStored, env, trackInWorker, settle, log, statsFromPage, sleep } from './lib.mjs';

const { tests, test } = defineTests();
export default tests;

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Tracks from an extension page through the package's client (user activity). */
const trackFromPage = (page, name, props = {}) =>
  page.evaluate(async ({ name, props }) => (await import('./vendor/inhouse/client.js')).track(name, props), { name, props });
const client = (page, op, ...args) =>
  page.evaluate(async ({ op, args }) => (await import('./vendor/inhouse/client.js'))[op](...args), { op, args });

/** The stored events named `name`, in the order tracked. */
async function stored(server, name) {
  const all = summarize(await server.events(), byName(name)).events;
  return all.sort((a, b) => a.properties.$time.localeCompare(b.properties.$time));
}

test('one install id across 20 worker stops, a browser restart and an extension update', 180_000, async (t) => {
  const e = await env(t);
  const { server } = e;
  await settle(server);
  let browser = e.browser;
  let page = await browser.openExtensionPage('options.html');
  for (let i = 0; i < 20; i++) {
    await trackInWorker(browser, 'e2e_identity', 1, { life: i });
    await browser.stopWorker(page);
    await statsFromPage(page).catch(() => null);
  }
  await waitStored(server, byName('e2e_identity'), 20, 30_000);
  await browser.close();
  browser = await e.reopen();
  await trackInWorker(browser, 'e2e_identity', 1, { life: 'after restart' });
  // An update: the unpacked extension reloaded from disk with a bumped version.
  const manifestPath = path.join(e.extDir, 'manifest.json');
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  const before = manifest.version;
  manifest.version = '0.2.0';
  fs.writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
  // Chrome reads the unpacked extension again when it starts, with the new version. (It reports
  // a command-line-loaded extension as installed anew at every launch: onInstalled's reason is
  // "install" each time, which is exactly what must not mint a new id. chrome.runtime.reload()
  // leaves such an extension disabled in this Chromium.)
  await browser.close();
  browser = await e.reopen();
  page = await browser.openExtensionPage('options.html');
  const after = await trackFromPage(page, 'e2e_identity', { life: 'after update' });
  eq(after.status, 'queued', 'tracked after the update');
  await waitStored(server, byName('e2e_identity'), 22, 30_000);
  const all = summarize(await server.events(), () => true);
  const ids = new Set(all.events.map((x) => x.properties.$install_id));
  eq(ids.size, 1, `install ids on the ${all.events.length} stored events (${[...ids].join(', ')})`);
  const [id] = ids;
  assert(UUID_V4.test(id ?? ''), `a random UUID: ${id}`);
  const versions = new Set((await stored(server, 'e2e_identity')).map((x) => x.properties.$extension_version));
  eq([...versions].sort(), [before, '0.2.0'], '$extension_version before and after the update');
  const installs = await stored(server, '$extension_installed');
  eq(installs.length, 1, 'one $extension_installed over 22 worker lives and 3 browser runs (Chrome fired onInstalled "install" at each launch)');
  const daily = await stored(server, '$daily_active');
  eq(daily.length, 1, 'one $daily_active: all of this ran on one day');
  const updates = await stored(server, '$extension_updated');
  eq(updates.map((x) => [x.properties.previous_version, x.properties.$extension_version]), [[before, '0.2.0']], 'one $extension_updated, with the previous version');
  const kept = await browser.inWorker(() => chrome.storage.local.get('inhouse:v1:install'));
  eq(kept['inhouse:v1:install'], id, 'the id in chrome.storage.local');
  log(`${all.events.length} events over 22 worker lives, 3 browser runs and an update ${before} → 0.2.0 : one install id ${id}`);
});

test('sessions: kept across a worker restart, new after the timeout and after a browser restart; background events do not extend them', 120_000, async (t) => {
  const timeout = 4000;
  const e = await env(t, { config: { options: { sessionTimeoutMs: timeout } } });
  const { server } = e;
  await settle(server);
  let browser = e.browser;
  let page = await browser.openExtensionPage('options.html');
  const session = async (name, n) => {
    await waitStored(server, byName(name), n, 20_000);
    return (await stored(server, name)).map((x) => x.properties.$session_id);
  };
  await trackFromPage(page, 'e2e_s_user', { step: 1 });
  await browser.stopWorker(page);
  await trackFromPage(page, 'e2e_s_user', { step: 2 });
  const [s1, s1again] = await session('e2e_s_user', 2);
  assert(s1 && s1 === s1again, `one session across a worker restart: ${s1} / ${s1again}`);
  const kept = await browser.inWorker(() => chrome.storage.session.get('inhouse:v1:session'));
  assert(kept['inhouse:v1:session']?.startsWith(s1), `kept in chrome.storage.session: ${JSON.stringify(kept)}`);

  // The background alone: it joins the user's session, but does not keep it alive.
  await sleep(timeout * 0.6);
  await trackInWorker(browser, 'e2e_s_bg', 1, { at: '0.6 timeout' });
  await sleep(timeout * 0.6);
  await trackInWorker(browser, 'e2e_s_bg', 1, { at: '1.2 timeouts' });
  const [bg1, bg2] = await session('e2e_s_bg', 2);
  eq(bg1, s1, 'a background event within the timeout joins the session');
  assert(bg2 && bg2 !== s1, `1.2 timeouts after the last user activity, a new session (background events do not extend): ${bg2}`);

  // User activity extends: events every 0.6 timeouts keep one session for 1.8 timeouts.
  for (let i = 0; i < 4; i++) {
    await trackFromPage(page, 'e2e_s_active', { i });
    if (i < 3) await sleep(timeout * 0.6);
  }
  const active = await session('e2e_s_active', 4);
  eq(new Set(active).size, 1, `one session while the user is active: ${active.join(', ')}`);
  // Idle past the timeout: a new session.
  await sleep(timeout + 500);
  await trackFromPage(page, 'e2e_s_after_idle');
  const [idle] = await session('e2e_s_after_idle', 1);
  assert(idle && idle !== active[0], `a new session after ${timeout} ms idle: ${idle}`);

  // A browser restart ends it at once (chrome.storage.session is gone).
  await browser.close();
  browser = await e.reopen();
  page = await browser.openExtensionPage('options.html');
  await trackFromPage(page, 'e2e_s_restart');
  const [restarted] = await session('e2e_s_restart', 1);
  assert(restarted && restarted !== idle, `a new session after a browser restart: ${restarted}`);
  log(`sessions ${[s1, bg2, active[0], idle, restarted].map((s) => s.slice(0, 13)).join(' → ')} (timeout ${timeout} ms)`);
});

test('identify from a popup persists across a worker restart; reset clears it; super properties merge, the event wins', 90_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  const popup = await browser.openExtensionPage('popup.html');
  const r = await client(popup, 'identify', 'user_42', { plan: 'pro', email: 'a@example.com' });
  eq(r.status, 'queued', 'identify resolves like track');
  await client(popup, 'register', { team: 'growth', tier: 'gold' });
  await browser.stopWorker(popup);
  await trackInWorker(browser, 'e2e_who', 1, { tier: 'own' });
  await waitStored(server, byName('$identify', 'e2e_who'), 2, 20_000);
  const [identify] = await stored(server, '$identify');
  eq([identify.properties.$user_id, identify.properties.plan, identify.properties.email], ['user_42', 'pro', 'a@example.com'], '$identify carries the user and the traits');
  eq(identify.properties.$source, 'popup', 'identify from the popup');
  const [who] = await stored(server, 'e2e_who');
  eq(who.properties.$user_id, 'user_42', 'the user, after a worker restart');
  eq([who.properties.team, who.properties.tier], ['growth', 'own'], 'super properties merged; the event\'s own key wins');
  const seen = await client(popup, 'identity');
  eq(seen.userId, 'user_42', 'identity() in the popup');
  assert(UUID_V4.test(seen.installId), `identity().installId ${seen.installId}`);

  await client(popup, 'unregister', 'tier');
  await client(popup, 'reset');
  await trackInWorker(browser, 'e2e_after_reset', 1);
  await waitStored(server, byName('e2e_after_reset'), 1, 20_000);
  const [after] = await stored(server, 'e2e_after_reset');
  assert(after.properties.$user_id === undefined, `no $user_id after reset: ${after.properties.$user_id}`);
  assert(after.properties.team === undefined, 'no super properties after reset');
  eq(after.properties.$install_id, who.properties.$install_id, 'the install id stays');
  assert(after.properties.$session_id !== who.properties.$session_id, 'reset starts a new session');
  const profile = await browser.inWorker(() => chrome.storage.local.get('inhouse:v1:profile'));
  eq(profile['inhouse:v1:profile'], '', 'the stored profile is empty');
  // The popup shows who is tracking.
  await popup.reload();
  await popup.waitForFunction(() => document.getElementById('s-install').textContent.length === 36);
  const shown = await popup.evaluate(() => ['s-install', 's-session', 's-user'].map((id) => document.getElementById(id).textContent));
  eq(shown[0], who.properties.$install_id, 'the popup shows the install id');
  log(`$identify ${identify.properties.$user_id} (${identify.properties.$source}); after reset: no user, session ${after.properties.$session_id.slice(0, 13)}; popup shows ${shown.join(' | ')}`);
});

test('a content script\'s events carry the surface, tab and origin Chrome reports, and it cannot forge them', 90_000, async (t) => {
  const { server, browser, site } = await env(t, { site: true });
  await settle(server);
  // What Chrome's sender says of the content script, seen by a listener of our own.
  await browser.inWorker(() => {
    globalThis.seenSenders = [];
    chrome.runtime.onMessage.addListener((msg, sender) => {
      if (msg?.__inhouse_tracker__) globalThis.seenSenders.push({ op: msg.op, tabId: sender.tab?.id, frameId: sender.frameId, origin: sender.origin });
    });
  });
  const tab = await browser.ctx.newPage();
  await tab.goto(`${site.origin}/shop/cart?secret=1`);
  await waitStored(server, byName('$pageview'), 1, 20_000);
  const out = await tab.evaluate(() => new Promise((resolve) => {
    addEventListener('message', (e) => { if (e.data?.type === 'inhouse-demo:forge-result') resolve(e.data.out); });
    postMessage({ type: 'inhouse-demo:forge' }, location.origin);
  }));
  eq(out.propsError?.code, 'INVALID_PROPERTIES', `$ keys from a content script are refused: ${JSON.stringify(out)}`);
  assert(/reserved/.test(out.propsError?.message ?? ''), `a clear message: ${out.propsError?.message}`);
  eq(out.message?.ok, true, `the hand-made message is tracked: ${JSON.stringify(out.message)}`);
  await waitStored(server, byName('forged_message'), 1, 20_000);
  const senders = await browser.inWorker(() => globalThis.seenSenders);
  const real = senders.find((s) => s.op === 'track');
  assert(real && Number.isInteger(real.tabId), `Chrome reported the sender: ${JSON.stringify(senders)}`);
  for (const name of ['$pageview', 'forged_message']) {
    const [ev] = await stored(server, name);
    const p = ev.properties;
    eq([p.$source, p.$tab_id, p.$frame_id, p.$origin], ['content_script', real.tabId, real.frameId, site.origin], `${name}: what Chrome reports`);
    assert(p.$url === undefined && p.$path === undefined, `${name}: the origin only by default, no path or query`);
    // The page's title says as much as its path: kept only with the same opt-in (issue 22).
    eq(p.title, undefined, `${name}: no page title by default`);
    eq(p.$incognito, false, `${name}: $incognito`);
  }
  eq(summarize(await server.events(), byName('forged_props')).events.length, 0, 'the event with forged $ properties was not stored');
  const [pv] = await stored(server, '$pageview');
  for (const key of ['$install_id', '$session_id', '$browser', '$browser_version', '$os', '$locale', '$extension_version']) {
    assert(typeof pv.properties[key] === 'string' && pv.properties[key].length > 0, `${key} on a content script event: ${pv.properties[key]}`);
  }
  log(`content script tab ${real.tabId} frame ${real.frameId} ${site.origin}: $source content_script; context ${['$browser', '$browser_version', '$os', '$locale'].map((k) => `${k}=${pv.properties[k]}`).join(' ')}`);
});
