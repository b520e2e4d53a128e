// The local server's event viewer (GET / on its control port) in headless Chromium: events sent
// to the API appear with their ids, the filters narrow them, duplicates are highlighted, and
// the fault buttons arm what the next requests suffer. No extension: the events are POSTed
// from here, the way the SDK sends them.
import { startServer } from '../../extension-demo/tools/harness.mjs';
import { openViewer, sendEvent } from '../../scripts/lib/viewer.mjs';
import { defineTests, assert, eq, waitFor, APP, DEMO_SECRET, log } from './lib.mjs';

const { tests, test } = defineTests();
export default tests;

const TOKEN = `demo_token_id:${DEMO_SECRET}:${APP}`;

/** A server (idempotent unless told) and the viewer open on it; both cleaned up on `t`. */
async function viewer(t, args = []) {
  const server = await startServer({ args });
  t.cleanup(() => server.stop());
  t.server = server;
  const v = await openViewer(server, { consoleLog: t.consoleLog });
  t.cleanup(v.close);
  return { server, page: v.page };
}

async function send(server, name, properties = {}, key = undefined, expected = 200) {
  const r = await sendEvent(server, { token: TOKEN, name, properties, key });
  eq(r.status, expected, `POST ${name} (${r.body.slice(0, 200)})`);
  return r;
}

/** The rows the table shows (filters applied), newest first, as the cells read. */
function shownRows(page) {
  return page.$$eval('#events tr.event:not([hidden])', (trs) =>
    trs.map((tr) => {
      const cell = (cls) => tr.querySelector(`td.${cls}`);
      const value = (cls) => cell(cls).dataset.value ?? cell(cls).textContent;
      return {
        seq: Number(tr.dataset.seq),
        event: value('name'),
        install: value('install'),
        session: value('session'),
        user: value('user'),
        source: value('source'),
        dup: tr.classList.contains('dup'),
        badges: [...cell('dups').querySelectorAll('.badge')].map((b) => b.textContent),
        props: cell('props').textContent,
      };
    }),
  );
}

/** Waits until the shown rows satisfy `pred`; answers them. */
function rowsWhere(page, pred, what) {
  return waitFor(async () => {
    const rows = await shownRows(page);
    return pred(rows) ? rows : null;
  }, { timeoutMs: 10_000, intervalMs: 100, what: `the viewer to show ${what}` });
}
const names = (rows) => rows.map((r) => r.event).join(',');

/** Waits until the page's "armed" line reads `expected` ("none"), or includes it. */
function armedShows(page, expected) {
  return waitFor(async () => {
    const text = await page.textContent('#armed');
    return (expected === 'none' ? text === 'none' : text.includes(expected)) ? text : null;
  }, { timeoutMs: 10_000, intervalMs: 100, what: `the viewer's armed faults to show "${expected}"` });
}

async function filter(page, id, value) {
  await page.fill(`#${id}`, value);
}

test('viewer: shows the events sent, with install, session, user, source and properties; filters by name, install and session', 60_000, async (t) => {
  const { server, page } = await viewer(t);
  await send(server, 'viewer_click', { $install_id: 'inst-aaaa-0001', $session_id: 'sess-aaaa-0001', $user_id: 'user_42', $source: 'popup', button: 'buy' });
  await send(server, 'viewer_open', { $install_id: 'inst-bbbb-0002', screen: 'home' });
  await send(server, 'viewer_click', { $install_id: 'inst-aaaa-0001', $session_id: 'sess-aaaa-0003', button: 'cancel' });
  const rows = await rowsWhere(page, (r) => r.length === 3, 'three events');
  eq(names(rows), 'viewer_click,viewer_open,viewer_click', 'rows, newest first');
  const [third, second, first] = rows;
  eq([first.install, first.session, first.user, first.source], ['inst-aaaa-0001', 'sess-aaaa-0001', 'user_42', 'popup'], 'the first event\'s ids');
  eq([second.install, second.session, second.user, second.source], ['inst-bbbb-0002', '–', '–', '–'], 'absent properties show a dash');
  assert(first.props.includes('"button":"buy"') && second.props.includes('"screen":"home"'), `properties: ${first.props} / ${second.props}`);
  assert(!first.dup && !second.dup && !third.dup, 'no duplicate among distinct events');
  // A click on the row opens the whole event, without the secret header.
  await page.click(`#events tr[data-seq="${first.seq}"] td.props`);
  const detail = JSON.parse(await page.textContent(`#events tr[data-seq="${first.seq}"] + tr.detail`));
  eq([detail.id, detail.properties.button, detail.headers['x-inhouse-app']], [`evt_${first.seq}`, 'buy', APP], 'the opened event');
  assert(!('x-inhouse-token-secret' in detail.headers), 'the secret header is not shown');
  const text = await page.innerText('body');
  assert(!text.includes(DEMO_SECRET), 'the page shows the secret');

  await filter(page, 'filter-event', 'viewer_open');
  await rowsWhere(page, (r) => names(r) === 'viewer_open', 'only viewer_open (name filter)');
  await filter(page, 'filter-event', '');
  await filter(page, 'filter-install', 'inst-aaaa-0001');
  await rowsWhere(page, (r) => names(r) === 'viewer_click,viewer_click', 'one install\'s two events');
  await filter(page, 'filter-session', 'sess-aaaa-0003');
  const one = await rowsWhere(page, (r) => r.length === 1, 'one session\'s event');
  eq(one[0].seq, third.seq, 'the session filter');
  await page.click('#filter-clear');
  await rowsWhere(page, (r) => r.length === 3, 'every event again');
  // A click on a session cell filters by it.
  await page.click(`#events tr[data-seq="${first.seq}"] td.session`);
  eq(await page.inputValue('#filter-session'), 'sess-aaaa-0001', 'the session filter set by a click');
  await rowsWhere(page, (r) => r.length === 1 && r[0].seq === first.seq, 'the clicked session\'s event');

  // Live: an event sent now appears without reloading.
  await page.click('#filter-clear');
  await send(server, 'viewer_late', { $install_id: 'inst-cccc-0004' });
  await rowsWhere(page, (r) => r[0]?.event === 'viewer_late', 'an event sent after the page opened, on top');
});

test('viewer: duplicates highlighted: an Idempotency-Key seen twice, and (idempotency off) the same $event_id stored twice', 60_000, async (t) => {
  const { server, page } = await viewer(t);
  const body = { $install_id: 'inst-1', $event_id: 'evt-replayed' };
  await send(server, 'viewer_once', { $install_id: 'inst-1', $event_id: 'evt-single' }, 'key-single');
  await send(server, 'viewer_twice', body, 'key-replayed');
  const replay = await send(server, 'viewer_twice', body, 'key-replayed');
  assert(replay.replayed, 'the second request with the key is an idempotent replay');
  let rows = await rowsWhere(page, (r) => r.length === 2 && r.some((x) => x.dup), 'the replayed key highlighted');
  const byName = (n) => rows.filter((r) => r.event === n);
  eq(byName('viewer_twice').map((r) => [r.dup, r.badges]), [[true, ['key seen 2×']]], 'the replayed event (stored once)');
  eq(byName('viewer_once').map((r) => [r.dup, r.badges]), [[false, []]], 'the single event');

  // The server's non-idempotent mode, switched from the page: every repeat is stored.
  await page.click('#idempotency');
  await page.waitForSelector('#idempotency[data-on="false"]');
  eq((await server.ctl('/settings')).idempotency, false, 'idempotency switched off by the button');
  const copy = { $install_id: 'inst-1', $event_id: 'evt-stored-twice' };
  await send(server, 'viewer_copied', copy, 'key-copied');
  await send(server, 'viewer_copied', copy, 'key-copied');
  rows = await rowsWhere(page, (r) => r.filter((x) => x.event === 'viewer_copied' && x.dup).length === 2, 'both stored copies highlighted');
  for (const r of byName('viewer_copied')) eq(r.badges, ['key seen 2×', '$event_id stored 2×'], 'a stored copy\'s badges');
  // The same $event_id under another key (a resend after a lost answer, say).
  await send(server, 'viewer_once', { $install_id: 'inst-1', $event_id: 'evt-single' }, 'key-other');
  rows = await rowsWhere(page, (r) => r.filter((x) => x.event === 'viewer_once' && x.dup).length === 2, 'the earlier copy highlighted too');
  for (const r of byName('viewer_once')) eq(r.badges, ['$event_id stored 2×'], 'copies by $event_id only');

  await page.check('#filter-dups');
  rows = await rowsWhere(page, (r) => r.every((x) => x.dup) && r.length === 5, 'only duplicates');
  eq(names(rows), 'viewer_once,viewer_copied,viewer_copied,viewer_twice,viewer_once', 'the duplicates-only filter');
  const summary = await page.textContent('#summary');
  assert(summary.includes('1 idempotent replay') && summary.includes('2 extra copies by $event_id'), `summary: ${summary}`);
  log(summary);
});

test('viewer: the fault buttons: "fail 503" makes the next request fail; every button is accepted; "clear events" empties the table', 60_000, async (t) => {
  const { server, page } = await viewer(t);
  await send(server, 'viewer_before', {});
  await rowsWhere(page, (r) => r.length === 1, 'the first event');

  await page.click('button[data-fault="fail_503"]');
  await armedShows(page, 'fail_next 1× 503');
  await send(server, 'viewer_failed', {}, undefined, 503);
  await send(server, 'viewer_after', {});
  let rows = await rowsWhere(page, (r) => r[0]?.event === 'viewer_after', 'the event after the failure');
  eq(names(rows), 'viewer_after,viewer_before', 'the failed request stored nothing');
  await armedShows(page, 'none');

  // Two of them, by the count field.
  await page.fill('#fault-count', '2');
  await page.click('button[data-fault="fail_500"]');
  await armedShows(page, 'fail_next 2× 500');
  await send(server, 'viewer_failed', {}, undefined, 500);
  await send(server, 'viewer_failed', {}, undefined, 500);
  await send(server, 'viewer_after', {});
  await page.fill('#fault-count', '1');

  // API down and up again.
  await page.click('button[data-fault="down"]');
  await armedShows(page, 'API down');
  const refused = await sendEvent(server, { token: TOKEN, name: 'viewer_down' }).then((r) => r.status, (e) => e.cause?.code ?? e.name);
  assert(refused !== 200, `a request while down: ${refused}`);
  await page.click('button[data-fault="up"]');
  await armedShows(page, 'none');
  await send(server, 'viewer_up', {});

  // Every other button is a request the server accepts, and shows as armed; "off" disarms.
  await page.fill('#fault-event', 'viewer_named');
  const click = async (f) => {
    await page.click(`button[data-fault="${f}"]`);
    await page.waitForFunction(() => document.getElementById('message').dataset.kind !== 'pending');
    const [kind, text] = await page.$eval('#message', (m) => [m.dataset.kind, m.textContent]);
    eq(kind, 'ok', `the ${f} button (${text})`);
  };
  const buttons = await page.$$eval('button[data-fault]', (bs) => bs.map((b) => b.dataset.fault));
  for (const f of buttons.filter((b) => !['down', 'up', 'clear'].includes(b) && !b.endsWith('_off'))) await click(f);
  const armedNow = () => page.textContent('#armed');
  const armed = await armedNow();
  for (const s of ['fail_event viewer_named', 'reset_event viewer_named', 'reset_next 1×', 'hang_next 1×', 'store_then_reset_next 1×', 'stall_body_next 1×', 'redirect_next 1× 307', 'latency 2000 ms', 'rate limit 5/60 s']) {
    assert(armed.includes(s), `armed shows ${s}: ${armed}`);
  }
  for (const f of buttons.filter((b) => b.endsWith('_off'))) await click(f);
  const after = await armedNow();
  assert(!after.includes('latency') && !after.includes('rate limit'), `latency and rate limit off: ${after}`);
  await page.click('button[data-fault="clear"]');
  await armedShows(page, 'none');
  eq((await server.faults({})).hang_next, 0, 'faults cleared by the button');

  // Clear events: two clicks (the first only asks).
  await page.click('#reset');
  await page.click('#reset');
  await rowsWhere(page, (r) => r.length === 0, 'an empty table after clear events');
  eq((await server.events()).events.length, 0, 'the server cleared');
  await send(server, 'viewer_fresh', {});
  rows = await rowsWhere(page, (r) => r.length === 1, 'the event after the reset');
  eq([rows[0].event, rows[0].seq], ['viewer_fresh', 1], 'a fresh table');
});
