// @inhouse/chrome-tracker/testing: the real tracker (the same wasm) for unit tests in Node.
import type { TrackerOptions, Tracker, Properties } from './index.js';

/** The main entry's error class (one class for the package). */
export { InhouseError } from './index.js';

/** The extension id the test tracker runs as. */
export declare const TEST_EXTENSION_ID: string;

/** An event the fake server received. */
export interface SentEvent {
  eventName: string;
  /** Your properties and the SDK's `$` context, exactly as they would reach the Inhouse API. */
  properties: Properties & Record<`$${string}`, unknown>;
  /** The request's headers (`x-inhouse-*`, `idempotency-key`, ...). */
  headers: Record<string, string>;
  /** What the fake server answered. */
  status: number;
}

export interface TestTracker extends Omit<Tracker, 'ready' | 'shutdown'> {
  readonly ready: Promise<void>;
  /** The `/client` entry as a popup uses it (Chrome's sender: the popup). */
  readonly client: Omit<typeof import('./client.js'), 'InhouseError'>;
  /** Every event the fake server received, in order. */
  sent(): SentEvent[];
  /** How the fake server answers from now on (200 by default). */
  respondWith(status: number, options?: { retryAfter?: number | string }): void;
  /** What the tracker keeps in `chrome.storage.local`. */
  stored(): Record<string, unknown>;
  /** Stops the tracker and restores `globalThis.chrome` and `fetch` (what `reset()` does). */
  dispose(): Promise<void>;
}

/**
 * A tracker for one test, with the same API and validation as the real one, `chrome.storage` in
 * memory and a fake server instead of the network. `tokenId`/`tokenSecret` are optional here;
 * `version` is the extension version it reports. One at a time: `await reset()` after each test.
 */
export declare function createTestTracker(options?: Partial<TrackerOptions> & { version?: string }): TestTracker;
/** Ends the current test tracker and restores the globals. Call it after each test. */
export declare function reset(): Promise<void>;
