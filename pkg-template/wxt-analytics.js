// @inhouse/chrome-tracker/wxt-analytics: an Inhouse provider for WXT's @wxt-dev/analytics. Its
// track, page and identify calls go into the durable tracker (stored, retried, delivered once)
// instead of a bare fetch. Providers run in the background only; pages and content scripts
// relay to it, as @wxt-dev/analytics does.
//
// This module does not import the tracker: app.config.ts, which names the provider, is bundled
// into every entrypoint, content scripts included. The background hands over its tracker with
// useInhouseTracker(init({...})).
import { defineAnalyticsProvider } from '@wxt-dev/analytics';

// The tracker's event-name rule (src/core/event.rs, normalize_event_name): 1–128 characters, an
// ASCII letter first, then ASCII letters, digits and `_`. Upper case is allowed (the tracker
// lowers it); a name breaking the rule is rejected with INVALID_EVENT_NAME.
const EVENT_NAME = /^[A-Za-z][A-Za-z0-9_]{0,127}$/;
const MAX_EVENT_NAME = 128;
// The original of a changed name is kept in `wxt_event_name`, cut to this many UTF-16 units (at
// most 3 KiB of UTF-8, well under the tracker's 8 KiB limit on a string).
const MAX_ORIGINAL_NAME = 1024;
// How long calls wait for useInhouseTracker() before a warning says so (index.js waits as long
// for init() before refusing relayed calls).
const HAND_OVER_WARN_MS = 10_000;
const LOG = '[@inhouse/chrome-tracker/wxt-analytics]';

function asText(value) {
  try {
    return String(value ?? '');
  } catch {
    return ''; // an object without toString (Object.create(null))
  }
}

/**
 * The name the provider tracks for a @wxt-dev/analytics event name: one that follows the rule is
 * kept as it is; any other is put in the rule's snake_case: accents removed, lowercase, each run
 * of characters other than ASCII letters and digits one `_` (none at either end), `event_` in
 * front when it does not start with a letter (`event` when nothing is left), at most 128
 * characters. `'Button Clicked'` → `'button_clicked'`, `'some-event'` → `'some_event'`,
 * `'404 page'` → `'event_404_page'`, `''` → `'event'`.
 */
export function eventNameFor(name) {
  const text = asText(name);
  if (EVENT_NAME.test(text)) return text;
  const words = text.normalize('NFKD').toLowerCase().replace(/\p{M}/gu, '').match(/[a-z0-9]+/g) ?? [];
  let out = words.join('_');
  if (!/^[a-z]/.test(out)) out = out ? `event_${out}` : 'event';
  return out.length > MAX_EVENT_NAME ? out.slice(0, MAX_EVENT_NAME).replace(/_+$/, '') : out;
}

/** The original name for `wxt_event_name`: cut (between characters) with `…` when long. */
function originalName(text) {
  if (text.length <= MAX_ORIGINAL_NAME) return text;
  let end = MAX_ORIGINAL_NAME;
  if (/[\uDC00-\uDFFF]/.test(text[end])) end--; // not between the halves of a surrogate pair
  return `${text.slice(0, end)}…`;
}

/** A name or location for a console message: quoted, and cut when long. */
function shown(value) {
  const text = asText(value);
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

// Where a call the tracker rejected is reported. A provider cannot hand an error to anyone:
// @wxt-dev/analytics awaits providers with Promise.allSettled and ignores their rejections, and
// its analytics.track() gives the caller nothing to catch (from a page it is a port message), so
// rethrowing loses the error exactly as before. The tracker's onError cannot be called from here:
// init() passes it into the wasm and the tracker exposes no way to call it (nor could this module
// import index.js: it is bundled into every page and content script). So the provider writes the
// call and the InhouseError itself (code, field, message, which names the fix) with
// console.error, in the background's DevTools console, where a developer looks for a missing
// event. Not reportError(): with captureErrors on, that would also store a $exception event for
// every bad call, which nobody asked @wxt-dev/analytics to do. The provider then resolves.
function report(call, error) {
  console.error(`${LOG} ${call} was not stored (${error?.code ?? error?.name ?? 'error'}):`, error);
}

let current = null;
let handOver;
const handedOver = new Promise((resolve) => {
  handOver = resolve;
});
let waitWarning = null;

/** In the background: the tracker the provider sends through (`useInhouseTracker(init({...}))`). */
export function useInhouseTracker(tracker) {
  current = tracker; // a later call (after shutdown() and a new init()) replaces it
  clearTimeout(waitWarning);
  handOver(tracker);
  return tracker;
}

/** The tracker; calls made before useInhouseTracker() wait for it, and say so after a while. */
function tracker() {
  if (current) return current;
  waitWarning ??= setTimeout(() => {
    if (!current) console.warn(`${LOG} @wxt-dev/analytics calls are waiting for the tracker: call useInhouseTracker(init({...})) in the background (they are kept in memory until then)`);
  }, HAND_OVER_WARN_MS);
  return handedOver;
}

/** WXT's page context, as properties (strings only, as @wxt-dev/analytics gives them). */
function context(meta = {}) {
  const out = {};
  for (const key of ['url', 'title', 'referrer', 'language', 'screen']) {
    if (typeof meta?.[key] === 'string') out[`wxt_${key}`] = meta[key];
  }
  return out;
}

/** The provider: `defineAppConfig({ analytics: { providers: [inhouse()] } })`. */
export const inhouse = defineAnalyticsProvider(() => ({
  async track(e) {
    const t = await tracker();
    const given = e.event?.name;
    const name = eventNameFor(given);
    const properties = { ...context(e.meta), ...e.user?.properties, ...e.event?.properties };
    if (name !== given) properties.wxt_event_name = originalName(asText(given));
    try {
      await t.track(name, properties);
    } catch (error) {
      report(`analytics.track(${shown(given)})`, error);
    }
  },
  async page(e) {
    const t = await tracker();
    try {
      await t.page(e.page?.title || e.page?.location, { ...context(e.meta), ...e.user?.properties, url: e.page?.url });
    } catch (error) {
      report(`analytics.page(${shown(e.page?.location)})`, error);
    }
  },
  async identify(e) {
    const t = await tracker();
    // No user id is the tracker's INVALID_USER_ID, reported like any other rejection.
    try {
      await t.identify(e.user?.id, e.user?.properties);
    } catch (error) {
      report(`analytics.identify(${shown(e.user?.id)})`, error);
    }
  },
}));
