// @inhouse/chrome-tracker/wxt-analytics: an Inhouse provider for WXT's @wxt-dev/analytics. Its
// track, page and identify calls go into the durable tracker (stored, retried, delivered once)
// instead of a bare fetch. Providers run in the background only; pages and content scripts
// relay to it, as @wxt-dev/analytics does.
//
// This module does not import the tracker: app.config.ts, which names the provider, is bundled
// into every entrypoint, content scripts included. The background hands over its tracker with
// useInhouseTracker(init({...})).
import { defineAnalyticsProvider } from '@wxt-dev/analytics';

let handOver;
const trackerReady = new Promise((resolve) => {
  handOver = resolve;
});

/** In the background: the tracker the provider sends through (`useInhouseTracker(init({...}))`). */
export function useInhouseTracker(tracker) {
  handOver(tracker);
  return tracker;
}

/** WXT's page context, as properties (strings only, as @wxt-dev/analytics gives them). */
function context(meta = {}) {
  const out = {};
  for (const key of ['url', 'title', 'referrer', 'language', 'screen']) {
    if (typeof meta[key] === 'string') out[`wxt_${key}`] = meta[key];
  }
  return out;
}

/** The provider: `defineAppConfig({ analytics: { providers: [inhouse()] } })`. */
export const inhouse = defineAnalyticsProvider(() => ({
  async track(e) {
    const tracker = await trackerReady;
    await tracker.track(e.event.name, { ...context(e.meta), ...e.user?.properties, ...e.event.properties });
  },
  async page(e) {
    const tracker = await trackerReady;
    await tracker.page(e.page?.title || e.page?.location, { ...context(e.meta), ...e.user?.properties, url: e.page?.url });
  },
  async identify(e) {
    const tracker = await trackerReady;
    if (e.user?.id) await tracker.identify(e.user.id, e.user.properties);
  },
}));
