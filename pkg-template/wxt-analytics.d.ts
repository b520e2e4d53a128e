// @inhouse/chrome-tracker/wxt-analytics: an Inhouse provider for WXT's @wxt-dev/analytics.
import type { AnalyticsProvider } from '@wxt-dev/analytics';
import type { Tracker } from './index.js';

/** In the background: hands the tracker from `init()` to the provider, and returns it. */
export declare function useInhouseTracker(tracker: Tracker): Tracker;
/** The provider for `defineAppConfig({ analytics: { providers: [inhouse()] } })`. */
export declare const inhouse: (options?: void) => AnalyticsProvider;
/**
 * The event name the provider tracks for `name`: unchanged when it already follows the tracker's
 * rule (a letter, then letters, digits and `_`, at most 128), else its snake_case form
 * (`'Button Clicked'` → `button_clicked`); the original is kept as `wxt_event_name`.
 */
export declare function eventNameFor(name: string): string;
