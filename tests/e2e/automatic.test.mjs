// The events an extension needs without writing them: install (once, even when the worker is
// stopped at once and the server is down), the daily event by a real alarm, the uninstall page,
// page views, errors (bounded), beforeSend, sampling by install, and consent from any page.
import { defineTests, assert, eq, summarize, byName, waitStored, env, log, sleep, waitFor, settle, trackInWorker, workerStats, uninstallPage } from './lib.mjs';

const { tests, test } = defineTests();
export default tests;

const client = (page, op, ...args) =>
  page.evaluate(async ({ op, args }) => (await import('./vendor/inhouse/client.js'))[op](...args), { op, args });
const named = async (server, name) => summarize(await server.events(), byName(name)).events;

test('install: exactly one $extension_installed, with the worker stopped at once and the server down at install', 90_000, async (t) => {
  const e = await env(t, { beforeLaunch: (server) => server.faults({ down: true }) });
  const { server } = e;
  let { browser } = e;
  // Stopped as soon as it runs: the install must survive it.
  const page = await browser.ctx.newPage();
  await browser.stopWorker(page);
  await sleep(300);
  await browser.stopWorker(page);
  let options = await browser.openExtensionPage('options.html');
  // Wakes a new worker (a message sent while Chrome is still registering it may find no one).
  const answering = () => waitFor(() => client(options, 'stats').then(() => true, () => false), { timeoutMs: 15_000, what: 'a worker answering' });
  const first = answering().then(() => false);
  first.catch(() => {});
  if (await Promise.race([first, sleep(8_000).then(() => true)])) {
    // In about one launch in fifteen (before this round's changes too: 4 of 60 runs of this test
    // at 172fb1b), a worker stopped this early in its first run never starts again in that
    // browser: no message is answered, not even one no listener takes, and no code runs in it.
    // The install must still be counted once: the browser is closed and opened again.
    log('the worker stopped during its first run never restarted: reopening the browser');
    await browser.close();
    browser = await e.reopen();
    options = await browser.openExtensionPage('options.html');
    await answering();
  }
  await browser.stopWorker(options);
  await server.faults({ down: false });
  await client(options, 'flush');
  await waitStored(server, byName('$extension_installed'), 1, 30_000);
  await trackInWorker(browser, 'e2e_after_install', 1);
  await waitStored(server, byName('e2e_after_install'), 1, 20_000);
  eq((await named(server, '$extension_installed')).length, 1, 'exactly one $extension_installed');
  const [installed] = await named(server, '$extension_installed');
  eq([installed.properties.$source, installed.properties.$extension_version], ['background', '0.1.0'], 'from the background, with the version');
  log(`one $extension_installed (${installed.properties.$install_id}) after 3 worker stops with the server down at install`);
});

test('a real daily alarm delivers the next day\'s $daily_active; the uninstall page carries the install id and version', 90_000, async (t) => {
  const e = await env(t, { site: true, config: { options: { uninstallUrl: 'http://127.0.0.1:1/bye?from=e2e' } } });
  const { server, browser } = e;
  await settle(server);
  await waitStored(server, byName('$daily_active'), 1, 15_000);
  // The record says the last $daily_active was yesterday; the SDK's own daily alarm fires in a second.
  const page = await browser.ctx.newPage();
  await browser.inWorker(async () => {
    const key = 'inhouse:v1:lifecycle';
    const stored = (await chrome.storage.local.get(key))[key];
    const yesterday = Math.floor(Date.now() / 86_400_000) - 1;
    await chrome.storage.local.set({ [key]: stored.replace(/^d\d+$/m, `d${yesterday}`) });
    await chrome.alarms.create('inhouse-tracker:daily', { when: Date.now() + 1500, periodInMinutes: 1440 });
  });
  await browser.stopWorker(page);
  await waitStored(server, byName('$daily_active'), 2, 30_000, 'the alarm-driven $daily_active');
  const daily = await named(server, '$daily_active');
  assert(daily[0].properties.$session_id !== undefined && daily[1].properties.$install_id === daily[0].properties.$install_id, 'same install');
  // Uninstall: Chrome opens the uninstall URL, with what the SDK appended.
  const installId = daily[0].properties.$install_id;
  const url = await uninstallPage(browser);
  eq([url.searchParams.get('from'), url.searchParams.get('install_id'), url.searchParams.get('version'), url.searchParams.get('days_installed')], ['e2e', installId, '0.1.0', '0'], `the uninstall URL ${url}`);
  log(`$daily_active ×2 (the second by the daily alarm in a new worker); uninstall opened ${url}`);
});

test('page views from the popup and errors of the worker and the popup: once each, this extension\'s frames only, 1,000 repeats bounded', 90_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  const popup = await browser.openExtensionPage('popup.html');
  await waitStored(server, byName('$pageview'), 1, 15_000, 'the popup $pageview');
  const [view] = await named(server, '$pageview');
  eq([view.properties.$source, view.properties.$path, view.properties.name, view.properties.title], ['popup', '/popup.html', 'popup', 'Inhouse tracker demo'], 'the popup view');
  await browser.inWorker(() => globalThis.inhouseDemo.fail('e2e worker error'));
  await popup.click('#throw');
  await waitStored(server, byName('$exception'), 2, 20_000);
  const errors = await named(server, '$exception');
  const ext = `chrome-extension://${new URL(popup.url()).host}/`;
  for (const [message, source, file] of [['e2e worker error', 'background', 'background.js'], ['demo popup error', 'popup', 'popup.js']]) {
    const found = errors.filter((x) => x.properties.message === message);
    eq(found.length, 1, `${message}: stored once`);
    const p = found[0].properties;
    eq([p.type, p.$source], ['Error', source], `${message}: type and surface`);
    const frames = p.stack.split('\n').filter(Boolean);
    assert(frames.length > 0 && frames.every((f) => f.includes(ext)), `${message}: this extension's frames only: ${p.stack}`);
    assert(frames.some((f) => f.includes(file)), `${message}: the frame of ${file}: ${p.stack}`);
  }
  // A burst of identical errors: stored a bounded number of times, the rest counted.
  await browser.inWorker(() => {
    for (let i = 0; i < 1000; i++) globalThis.inhouseDemo.fail('e2e repeated error');
  });
  await waitStored(server, (x) => x.event_name === '$exception' && x.properties.message === 'e2e repeated error', 1, 20_000);
  await sleep(1500);
  const repeated = (await named(server, '$exception')).filter((x) => x.properties.message === 'e2e repeated error').length;
  const stats = await workerStats(browser);
  eq(repeated, 1, 'a thousand identical errors stored once (within the minute)');
  assert(stats.exceptionsThrottled >= 999, `the rest counted: exceptionsThrottled ${stats.exceptionsThrottled}`);
  log(`popup $pageview ${view.properties.$path}; worker and popup errors once each with own frames; 1,000 repeats → ${repeated} stored, ${stats.exceptionsThrottled} throttled`);
});

test('beforeSend edits and drops; sampleRate 0.5 over 200 installs keeps about half and never splits one', 120_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  const outcome = await browser.inWorker(async () => {
    await globalThis.inhouseDemo.restart({
      beforeSend(event) {
        if (event.eventName === 'e2e_noise') return null;
        if (event.eventName === 'e2e_edit') return { ...event, properties: { ...event.properties, edited: true, secret: undefined } };
        if (event.eventName === 'e2e_throw') throw new Error('hook bug');
        return event;
      },
    });
    const t = globalThis.inhouseDemo.tracker();
    const r = await Promise.all([t.track('e2e_edit', { secret: 's', keep: 1 }), t.track('e2e_noise', { a: 1 }), t.track('e2e_throw', { kept: true })]);
    return { statuses: r.map((x) => x.status), stats: await t.stats(), recent: globalThis.inhouseDemo.recent() };
  });
  eq(outcome.statuses, ['queued', 'filtered', 'queued'], 'beforeSend: edited, dropped, kept when it throws');
  eq(outcome.stats.dropped.filtered, 1, 'dropped.filtered');
  assert(outcome.recent.some((x) => x.kind === 'error' && x.code === 'BEFORE_SEND_FAILED'), `onError got BEFORE_SEND_FAILED: ${JSON.stringify(outcome.recent)}`);
  await waitStored(server, byName('e2e_edit', 'e2e_throw'), 2, 20_000);
  const [edited] = await named(server, 'e2e_edit');
  eq([edited.properties.edited, edited.properties.keep, edited.properties.secret], [true, 1, undefined], 'the stored event is the edited one');
  eq((await named(server, 'e2e_noise')).length, 0, 'the dropped event never reached the server');
  eq((await named(server, 'e2e_throw'))[0]?.properties.kept, true, 'kept unchanged when the hook threw');

  // 200 installs: an opt-out with purge gives a new install id each time.
  const statuses = await browser.inWorker(async () => {
    await globalThis.inhouseDemo.restart({ sampleRate: 0.5 });
    const t = globalThis.inhouseDemo.tracker();
    const out = [];
    for (let i = 0; i < 200; i++) {
      await t.setEnabled(false, { purge: true });
      await t.setEnabled(true);
      const r = await Promise.all([t.track('e2e_sample', { i, n: 1 }), t.track('e2e_sample', { i, n: 2 })]);
      out.push(r.map((x) => x.status).join());
      await t.flush(); // delivered before the next opt-out purges the queue
    }
    return out;
  });
  const kept = statuses.filter((s) => s === 'queued,queued').length;
  eq(statuses.filter((s) => s !== 'queued,queued' && s !== 'sampled,sampled'), [], 'each install all kept or all left out');
  await waitStored(server, byName('e2e_sample'), kept * 2, 60_000);
  const byInstall = new Map();
  for (const x of await named(server, 'e2e_sample')) byInstall.set(x.properties.$install_id, (byInstall.get(x.properties.$install_id) ?? 0) + 1);
  eq([...byInstall.values()].filter((n) => n !== 2), [], 'never one event of an install without the other');
  assert(kept >= 70 && kept <= 130, `about half of 200 installs kept: ${kept}`);
  log(`beforeSend: edited, filtered, kept on throw; sampleRate 0.5: ${kept} of 200 installs kept whole (${byInstall.size} install ids at the server)`);
});

test('consent: enabled:false stores and sends nothing until an options page opts in through /client', 90_000, async (t) => {
  const { server, browser } = await env(t, { config: { options: { enabled: false } } });
  const options = await browser.openExtensionPage('options.html');
  eq(await client(options, 'isEnabled'), false, 'isEnabled() from the options page');
  const r = await client(options, 'track', 'e2e_before_consent', {});
  eq(r.status, 'disabled', 'tracked while opted out');
  await trackInWorker(browser, 'e2e_before_consent', 2);
  await sleep(1500);
  const keys = await browser.inWorker(async () => Object.keys(await chrome.storage.local.get(null)).filter((k) => k.startsWith('inhouse:v1:seg')));
  eq(keys, [], 'no event stored in chrome.storage.local');
  eq(summarize(await server.events(), () => true).events.length, 0, 'nothing reached the server (not even $extension_installed)');
  await client(options, 'setEnabled', true);
  eq(await client(options, 'isEnabled'), true, 'opted in from the options page');
  await client(options, 'track', 'e2e_after_consent', {});
  await waitStored(server, byName('$extension_installed', 'e2e_after_consent'), 2, 20_000);
  await client(options, 'setEnabled', false, { purge: true });
  await client(options, 'track', 'e2e_after_opt_out', {});
  await sleep(1000);
  eq((await named(server, 'e2e_after_opt_out')).length, 0, 'opted out again: nothing sent');
  log(`opted out at init: 0 events stored or sent; opted in from the options page: $extension_installed and events; opted out again: nothing`);
});
