// @inhouse/chrome-tracker/wxt-analytics: an Inhouse provider for WXT's @wxt-dev/analytics.
import type { AnalyticsProvider } from '@wxt-dev/analytics';
import type { Tracker } from './index.js';

/** In the background: hands the tracker from `init()` to the provider, and returns it. */
export declare function useInhouseTracker(tracker: Tracker): Tracker;
/** The provider for `defineAppConfig({ analytics: { providers: [inhouse()] } })`. */
export declare const inhouse: (options?: void) => AnalyticsProvider;
