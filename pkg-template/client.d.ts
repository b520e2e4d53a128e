// @inhouse/chrome-tracker/client: for content scripts, popups and options pages.
import type { Properties, TrackOptions, TrackResult, FlushResult, TrackerStats, InhouseErrorCode, Identity, TrackingPlan, PlanEvent, PlanProperty, PlanType, PlannedProperties, PlannedTrackArgs } from './index.js';
export type { Properties, TrackOptions, TrackResult, FlushResult, TrackerStats, InhouseErrorCode, Identity, TrackingPlan, PlanEvent, PlanProperty, PlanType, PlannedProperties, PlannedTrackArgs };

/** The same class as the main entry's (one class for the package: `instanceof` holds across entries). */
export { InhouseError } from './index.js';

/**
 * Tracks through the background tracker; resolves once the event is durably queued there.
 * Rejects only with an {@link InhouseError}: properties are checked here first (`INVALID_PROPERTIES`
 * naming the path, also for getters or Proxy traps that throw and revoked Proxies), then again in
 * the background.
 */
export declare function track(eventName: string, properties?: Properties, options?: TrackOptions): Promise<TrackResult>;
export declare function stats(): Promise<TrackerStats>;
/** Identifies the user through the background: `$user_id` on every later event (persisted) and one `$identify` event with `traits`. */
export declare function identify(userId: string, traits?: Properties): Promise<TrackResult>;
/** Super properties: merged into every later event (the event's own keys win); persisted. */
export declare function register(properties: Properties): Promise<void>;
export declare function unregister(key: string): Promise<void>;
/** Logout: forgets the user id and the super properties and starts a new session; the install id stays. */
export declare function reset(): Promise<void>;
export declare function identity(): Promise<Identity>;
/** `$pageview` with `name`, the page's title and your properties; the surface and page come from Chrome's sender. */
export declare function page(name?: string, properties?: Properties): Promise<TrackResult>;
/** An error as a `$exception` event. Resolves `null` when throttled or (in a content script) when no frame is this extension's. */
export declare function captureException(error: unknown, properties?: Properties): Promise<TrackResult | null>;
/** Opt in or out from any page (an options-page toggle); persisted by the background. */
export declare function setEnabled(enabled: boolean, options?: { purge?: boolean }): Promise<void>;
export declare function isEnabled(): Promise<boolean>;
/** Asks the background to deliver now. Unlike the background's own `tracker.flush()`, it does not end a wait after network errors. */
export declare function flush(): Promise<FlushResult>;

/** The tracking plan itself, its literal types kept (the same as the main entry's). */
export declare function defineTrackingPlan<const P extends TrackingPlan>(plan: P): P;
/**
 * This entry's functions with `track()` typed by the plan `P` (a misspelt event or property is a
 * compile error). The run-time check is the background's, against the plan given to `init()`.
 */
export declare function withPlan<const P extends TrackingPlan>(plan?: P): Omit<typeof import('./client.js'), 'InhouseError' | 'track' | 'withPlan' | 'defineTrackingPlan'> & {
  track<E extends keyof P & string>(eventName: E, ...args: PlannedTrackArgs<P, E>): Promise<TrackResult>;
};
