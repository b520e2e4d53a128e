// @inhouse/chrome-tracker/client: for content scripts, popups and options pages.
import type { Properties, TrackOptions, TrackResult, FlushResult, TrackerStats, InhouseErrorCode } from './index.js';
export type { Properties, TrackOptions, TrackResult, FlushResult, TrackerStats, InhouseErrorCode };

export declare class InhouseError extends Error {
  readonly name: 'InhouseError';
  readonly code: InhouseErrorCode;
  readonly field?: string;
}

/** Tracks through the background tracker; resolves once the event is durably queued there. */
export declare function track(eventName: string, properties?: Properties, options?: TrackOptions): Promise<TrackResult>;
export declare function stats(): Promise<TrackerStats>;
export declare function flush(): Promise<FlushResult>;
