// Content script (a classic script, in the page's isolated world). It loads the package's client
// entry, a web-accessible file of this extension, and tracks through the background: it never
// sees the credentials.
//  - a page view ($pageview) on load;
//  - a click on any element with data-inhouse-event="name" tracks that event, with the element's
//    data-inhouse-prop-* attributes as properties (declarative click tracking);
//  - a diagnostic: a page may ask (window.postMessage({type: 'inhouse-demo:probe'})) what this
//    content script can see of the extension's storage, to show the secret is out of its reach.
(() => {
  const client = import(chrome.runtime.getURL('vendor/inhouse/client.js'));
  const report = (e) => console.info(`[inhouse demo] not tracked: ${e.code ?? 'error'}: ${e.message}`);

  client.then(({ page }) => page().catch(report));

  document.addEventListener('click', (ev) => {
    const el = ev.target instanceof Element ? ev.target.closest('[data-inhouse-event]') : null;
    if (!el) return;
    const properties = { path: location.pathname };
    for (const [k, v] of Object.entries(el.dataset)) {
      if (k.startsWith('inhouseProp') && k.length > 11) properties[k[11].toLowerCase() + k.slice(12)] = v;
    }
    client.then(({ track }) => track(el.dataset.inhouseEvent, properties)).catch(report);
  }, true);

  // A second diagnostic: a page may ask (window.postMessage({type: 'inhouse-demo:forge'})) this
  // content script to claim another surface, to show the background does not believe it: `$`
  // properties are refused, and a hand-made message's claims are ignored for Chrome's `sender`.
  window.addEventListener('message', async (ev) => {
    if (ev.source !== window || ev.data?.type !== 'inhouse-demo:forge') return;
    const out = {};
    try {
      out.props = await (await client).track('forged_props', { $source: 'background', $install_id: 'forged' });
    } catch (e) {
      out.propsError = { code: e.code, message: e.message, field: e.field };
    }
    const forged = { __inhouse_tracker__: 1, op: 'track', eventName: 'forged_message', properties: { a: 1 }, sender: { url: chrome.runtime.getURL('popup.html') }, source: 'background', tab: { id: 1 } };
    try { out.message = await chrome.runtime.sendMessage(forged); } catch (e) { out.messageError = String(e.message ?? e); }
    window.postMessage({ type: 'inhouse-demo:forge-result', out: JSON.parse(JSON.stringify(out)) }, location.origin);
  });

  // A third diagnostic: a page may ask (window.postMessage({type: 'inhouse-demo:burst', name, ctx,
  // n})) this content script to track `n` events, 20 at a time, to show that a worker stopped
  // meanwhile does not show through the client. It answers with what the promises said.
  window.addEventListener('message', async (ev) => {
    if (ev.source !== window || ev.data?.type !== 'inhouse-demo:burst') return;
    const { name, ctx, n } = ev.data;
    const { track } = await client;
    const out = { statuses: {}, errors: {}, failed: [] };
    for (let k = 0; k < n; k += 20) {
      const calls = Array.from({ length: Math.min(20, n - k) }, (_, j) => track(name, { ctx, i: k + j }));
      (await Promise.allSettled(calls)).forEach((r, j) => {
        if (r.status === 'fulfilled') out.statuses[r.value.status] = (out.statuses[r.value.status] ?? 0) + 1;
        else {
          out.errors[r.reason.code] = (out.errors[r.reason.code] ?? 0) + 1;
          out.messages = [...new Set([...(out.messages ?? []), r.reason.message])].slice(0, 5);
          out.failed.push(k + j);
        }
      });
    }
    window.postMessage({ type: 'inhouse-demo:burst-result', ctx, out }, location.origin);
  });

  window.addEventListener('message', async (ev) => {
    if (ev.source !== window || ev.data?.type !== 'inhouse-demo:probe') return;
    const seen = {};
    try { seen.storageLocal = await chrome.storage.local.get(null); } catch (e) { seen.storageLocalError = String(e.message ?? e); }
    try { seen.storageSession = await chrome.storage.session.get(null); } catch (e) { seen.storageSessionError = String(e.message ?? e); }
    try { seen.statsReply = await (await client).stats(); } catch (e) { seen.statsError = String(e.message ?? e); }
    for (const demo of ['info', 'reconfigure']) {
      try { seen[`${demo}Reply`] = await chrome.runtime.sendMessage({ demo }); } catch (e) { seen[`${demo}Error`] = String(e.message ?? e); }
    }
    window.postMessage({ type: 'inhouse-demo:probe-result', seen: JSON.parse(JSON.stringify(seen)) }, location.origin);
  });
})();
