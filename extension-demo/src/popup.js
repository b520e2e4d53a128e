// The popup tracks through the package's client entry: no wasm, no credentials here; events
// are relayed to the background's tracker and the promise settles once they are stored.
import { track, stats, flush, identify, reset, identity, page } from './vendor/inhouse/client.js';

const $ = (id) => document.getElementById(id);
page('popup').catch(() => {}); // $pageview, with the surface and the page taken from Chrome's sender
let clicks = 0;

function say(text) {
  $('feedback').textContent = text;
}

async function run(button, fn) {
  button.disabled = true;
  try {
    say(await fn());
  } catch (e) {
    say(`${e.code ?? 'error'}: ${e.message}`);
  } finally {
    button.disabled = false;
    refresh();
  }
}

$('track-click').addEventListener('click', (ev) =>
  run(ev.currentTarget, async () => {
    const r = await track('button_click', { button: 'track-click', screen: 'popup', count: ++clicks });
    return `button_click ${r.status} (${r.id})`;
  }),
);
$('track-purchase').addEventListener('click', (ev) =>
  run(ev.currentTarget, async () => {
    const r = await track('demo_purchase', { sku: 'sku_42', price: 9.99, currency: 'EUR', screen: 'popup' });
    return `demo_purchase ${r.status} (${r.id})`;
  }),
);
$('track-burst').addEventListener('click', (ev) =>
  run(ev.currentTarget, async () => {
    const results = await Promise.all(
      Array.from({ length: 25 }, (_, i) => track('burst_event', { index: i, screen: 'popup' })),
    );
    return `${results.filter((r) => r.status === 'queued').length} of 25 burst_event queued`;
  }),
);
$('track-bg').addEventListener('click', (ev) =>
  run(ev.currentTarget, async () => {
    const reply = await chrome.runtime.sendMessage({ demo: 'track-from-background' });
    if (!reply?.ok) throw new Error(reply?.error ?? 'no answer');
    return `background_action ${reply.result.status} (${reply.result.id})`;
  }),
);
$('flush').addEventListener('click', (ev) =>
  run(ev.currentTarget, async () => {
    const r = await flush();
    return r.status === 'empty' ? 'queue empty: everything delivered' : `blocked (${r.reason}), ${r.queued} queued`;
  }),
);

$('login').addEventListener('click', (ev) =>
  run(ev.currentTarget, async () => {
    const r = await identify('demo_user', { plan: 'free', signed_up_in: 'popup' });
    return `identified as demo_user ($identify ${r.status})`;
  }),
);
// An uncaught error of the popup's own code: the SDK reports it as a $exception.
$('throw').addEventListener('click', () => {
  say('threw "demo popup error" (uncaught: reported as $exception)');
  setTimeout(() => {
    throw new Error('demo popup error');
  });
});
$('logout').addEventListener('click', (ev) =>
  run(ev.currentTarget, async () => {
    await reset();
    return 'logged out: user forgotten, new session';
  }),
);

const STATE_CLASS = { idle: 'ok', ready: 'ok', sending: 'busy', backoff: 'warn', offline: 'warn', paused: 'warn', disabled: 'warn' };

async function refresh() {
  try {
    const s = await stats();
    const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
    $('state').textContent = s.state;
    $('state').className = `pill ${STATE_CLASS[s.state] ?? ''}`;
    $('s-queued').textContent = s.queued + s.pendingWrite;
    $('s-inflight').textContent = s.inFlight;
    $('s-delivered').textContent = s.delivered;
    $('s-retried').textContent = s.retried;
    $('s-dropped').textContent = dropped
      ? `${dropped} (${Object.entries(s.dropped).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`).join(', ')})`
      : '0';
    $('s-next').textContent = s.nextAttemptAt ? `in ${Math.max(0, Math.round((s.nextAttemptAt - Date.now()) / 1000))} s` : '–';
    $('s-error').textContent = s.lastError ? `${s.lastError.code}: ${s.lastError.message}` : 'none';
    const who = await identity();
    $('s-install').textContent = who.installId ?? '–';
    $('s-session').textContent = who.sessionId ?? 'none (starts with the next event)';
    $('s-user').textContent = who.userId ?? 'not identified';
  } catch (e) {
    $('state').textContent = 'unavailable';
    $('s-error').textContent = `${e.code ?? 'error'}: ${e.message}`;
  }
}

async function showServer() {
  const reply = await chrome.runtime.sendMessage({ demo: 'info' }).catch(() => null);
  if (!reply?.ok) return;
  $('server').textContent = `${reply.result.baseUrl || 'default API'} · ${reply.result.tokenId}`;
  // The last automatic events the SDK tracked (noted by the demo's beforeSend).
  const auto = reply.result.recent.filter((r) => r.kind === 'auto').slice(-4).map((r) => r.eventName);
  $('s-auto').textContent = auto.length ? auto.join(', ') : 'none yet';
}

refresh();
showServer();
setInterval(refresh, 500);
setInterval(showServer, 1000);
