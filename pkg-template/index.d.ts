// @inhouse/chrome-tracker: durable event tracking for Chrome MV3 extensions (Inhouse API).

/** Stable error codes carried by every {@link InhouseError}. */
export type InhouseErrorCode =
  /** An option given to init() is missing or malformed (`field` names it), or init() was called twice or outside the background service worker. */
  | 'INVALID_OPTION'
  /** `appId` differs from the extension's own `chrome.runtime.id`. */
  | 'APP_ID_MISMATCH'
  /** The event name breaks the rule: 1–128 chars, a letter first, then letters, digits, `_`. */
  | 'INVALID_EVENT_NAME'
  /** Properties are not plain JSON, cannot be read (a getter or Proxy trap threw, a revoked Proxy), or break a limit (`field` is the path, e.g. `properties.a[2]`). */
  | 'INVALID_PROPERTIES'
  /** The serialized event exceeds `maxEventBytes`. */
  | 'EVENT_TOO_LARGE'
  /** `beforeSend` threw or returned what cannot be sent; the event was kept unchanged (reported through `onError`). */
  | 'BEFORE_SEND_FAILED'
  /** A track() option such as `dedupKey` is malformed. */
  | 'INVALID_TRACK_OPTION'
  /** identify()'s user id is not a string of 1–256 characters without control characters. */
  | 'INVALID_USER_ID'
  /** chrome.storage.local refused a read or write (quota, missing permission). */
  | 'STORAGE_ERROR'
  /** The tracker was shut down, or no tracker runs in the background. */
  | 'SHUT_DOWN'
  /** The .wasm could not be fetched or instantiated: wrong `wasmUrl`, file not shipped, or the manifest's CSP lacks `'wasm-unsafe-eval'`. */
  | 'WASM_LOAD_FAILED'
  /** Delivery errors, reported through `onError` and `stats().lastError` (never thrown by track()): */
  | 'AUTH_FAILED'
  | 'PERMISSION_DENIED'
  | 'ENDPOINT_NOT_FOUND'
  | 'REDIRECTED'
  | 'RATE_LIMITED'
  | 'SERVER_ERROR'
  | 'NETWORK_ERROR'
  | 'TIMEOUT'
  | 'EVENT_REJECTED'
  /** `planMode: 'reject'`: the event is not in the tracking plan (`field` is `eventName`). */
  | 'UNKNOWN_EVENT'
  /** `planMode: 'reject'`: a property is not in the plan, has the wrong type, or a required one is missing (`field`: `properties.<name>`). */
  | 'INVALID_PROPERTY'
  /** `planMode: 'report'` (through `onError`, never thrown): an event broke the plan and was stored anyway; once per event and field a minute. */
  | 'PLAN_VIOLATION'
  | 'INTERNAL';

/** The one error type of the SDK. */
export declare class InhouseError extends Error {
  readonly name: 'InhouseError';
  readonly code: InhouseErrorCode;
  /** The offending field for input errors: `tokenId`, `eventName`, `properties.user.tags[2]`, ... */
  readonly field?: string;
}

/** A JSON value accepted in event properties. `Date` is sent as an ISO string. */
export type JsonValue = string | number | boolean | null | Date | JsonValue[] | { [key: string]: JsonValue | undefined };

/** Event properties: a plain object of JSON values. Keys starting with `$` are reserved. */
export type Properties = { [key: string]: JsonValue | undefined };

/**
 * The SDK's own properties, added to every stored event (keys starting with `$` are reserved:
 * `track()` refuses them). All are captured when `track()` is called and stored with the event,
 * so every resend is byte-identical.
 */
export interface ReservedProperties {
  /** When `track()` was called, RFC 3339 UTC with milliseconds. Always. */
  $time: string;
  /** The event id: a UUIDv7 (or a hash of name and `dedupKey`); also `Idempotency-Key`. Always. */
  $event_id: string;
  /** `inhouse-chrome/<version>`. Always. */
  $sdk: string;
  /** The extension's version (manifest). Absent outside an extension. */
  $extension_version?: string;
  /** One random UUIDv4 per install, kept in chrome.storage.local across worker and browser restarts and updates; new after an opt-out with purge. Always. */
  $install_id: string;
  /** The session (UUIDv7 of its start): ends after `sessionTimeoutMs` without user activity and when the browser closes. Always. */
  $session_id: string;
  /** The user given to `identify()`; absent before it and after `reset()`. */
  $user_id?: string;
  /** The browser's brand and major version (`navigator.userAgentData`). */
  $browser?: string;
  $browser_version?: string;
  /** `chrome.runtime.getPlatformInfo().os`: `mac`, `win`, `linux`, `cros`, ... */
  $os?: string;
  /** The browser's UI language. */
  $locale?: string;
  /** The surface, from the background itself or Chrome's `sender` of a `/client` message. Always. */
  $source: 'background' | 'popup' | 'options' | 'side_panel' | 'content_script' | 'offscreen' | 'page';
  /** For events relayed from a page or content script, from Chrome's `sender`. */
  $tab_id?: number;
  $frame_id?: number;
  $incognito?: boolean;
  /** An extension page's path; a content script's page path with `pageUrl: 'path'`. */
  $path?: string;
  /** A content script's page origin (the default for content scripts). */
  $origin?: string;
  /** A content script's full page URL, only with `pageUrl: 'full'`. */
  $url?: string;
}

export interface RetryOptions {
  /** First backoff delay; doubles per consecutive failure, with jitter. Default 1000. */
  baseDelayMs?: number;
  /** Backoff cap. Default 300000 (5 min). */
  maxDelayMs?: number;
  /** Server failures (5xx, 429, timeouts) one event may suffer before it is dropped. Network errors never count. Default 25. */
  maxAttempts?: number;
  /** Longest wait a `Retry-After` or rate-limit reset may impose. Default 86400000 (24 h). */
  maxRetryAfterMs?: number;
}

/** An event the SDK dropped, passed to `onDrop`. Every drop is also counted in `stats().dropped`. */
export interface DroppedEvent {
  id: string;
  eventName: string;
  reason: 'rejected' | 'evicted' | 'retries_exhausted' | 'purged' | 'corrupt' | 'undeliverable';
  message: string;
}

export interface TrackerOptions {
  /** Project token id (`x-inhouse-token-id`). Required. */
  tokenId: string;
  /** Project token secret (`x-inhouse-token-secret`). Required. Kept in memory only: never stored, logged, or sent to other contexts. */
  tokenSecret: string;
  /** The extension id registered in Inhouse (`x-inhouse-app`). Defaults to `chrome.runtime.id`; must equal it when given. */
  appId?: string;
  /** API base. Default `https://api.tryinhouse.co/v1/api`. `https` only, except `http` on 127.0.0.1, localhost or [::1]. The legacy `…/api` base works with a warning. */
  baseUrl?: string;
  /** Outside an extension only: accept an `appId` that is not a 32-letter extension id (development). */
  allowAnyAppId?: boolean;
  /** Most events kept queued; beyond it the oldest are evicted (counted, reported). Default 20000. */
  maxQueueEvents?: number;
  /** Most bytes of queued events in chrome.storage.local. Default 4194304 (4 MiB of the 10 MB quota). */
  maxQueueBytes?: number;
  /** Largest serialized event. Default 32768. */
  maxEventBytes?: number;
  /** Per-request timeout, 100–25000 ms (Chrome kills a worker whose fetch exceeds 30 s). Default 10000. */
  requestTimeoutMs?: number;
  /** Requests in flight at once, 1–16. Default 6 (every connection Chrome opens to one HTTP/1.1 host). */
  concurrency?: number;
  /** A session ends after this long without user activity (events from pages and content scripts; the background's own do not count), 1000–86400000 ms. Default 1800000 (30 min). */
  sessionTimeoutMs?: number;
  /** How much of a content script's page URL its events carry: `origin` (default, `$origin`), `path` (`$origin` and `$path`) or `full` (`$url`: browsing history, ask your users). */
  pageUrl?: 'origin' | 'path' | 'full';
  /** The opt-in choice of a new install: `false` starts opted out (nothing stored or sent, not even the automatic events) until `setEnabled(true)`. A stored choice wins. Default true. */
  enabled?: boolean;
  /** The automatic events, each on by default: `$extension_installed` (install), `$extension_updated` and `$browser_updated` (update), `$browser_startup` (startup), `$daily_active` once per UTC day (daily). */
  autoEvents?: { install?: boolean; update?: boolean; startup?: boolean; daily?: boolean };
  /** Uncaught errors and unhandled rejections of the worker and of pages using `/client` become `$exception` events. Default false. */
  captureErrors?: boolean;
  /** The share of installs whose events are kept, 0–1, decided on a hash of the install id (an install is kept or left out whole). Lifecycle events are always kept. Default 1. */
  sampleRate?: number;
  /** Your page (a survey, your server) that Chrome opens when the extension is removed; the SDK appends `install_id`, `version` and `days_installed`. At most 913 characters. */
  uninstallUrl?: string;
  /** Sees each event before it is stored: return it (its `properties` edited if you like), or `null` to drop it (counted in `stats().dropped.filtered`). Synchronous. If it throws, the event is kept unchanged and `onError` gets `BEFORE_SEND_FAILED`. */
  beforeSend?: (event: { eventName: string; properties: Properties }) => { eventName?: string; properties: Properties } | null | undefined;
  retry?: RetryOptions;
  /** Log delivery decisions to the console (never the secret). Default false. */
  debug?: boolean;
  /** Where the .wasm is, when a bundler moved it. Default: next to this module. */
  wasmUrl?: string | URL;
  /** Called with each new delivery problem (not on every retry of the same one). */
  onError?: (error: InhouseError) => void;
  /** Called for every dropped event. */
  onDrop?: (dropped: DroppedEvent) => void;
  /** The tracking plan every `track()` is checked against (in the background, so `/client` calls too). See {@link defineTrackingPlan}. */
  plan?: TrackingPlan;
  /** What an event that breaks the plan does: `report` (default: stored and sent, `onError` hears `PLAN_VIOLATION`, `stats().planViolations` counts it) or `reject` (`track()` rejects with `UNKNOWN_EVENT` or `INVALID_PROPERTY`). */
  planMode?: 'report' | 'reject';
}

// ---------------------------------------------------------------- the tracking plan

/** A property's type in a tracking plan. */
export type PlanType = 'string' | 'number' | 'boolean' | 'array' | 'object';
/** A property of a planned event: a type name (required), `{ type, required }`, or `{ enum: [...strings], required }`. */
export type PlanProperty = PlanType | { readonly type: PlanType; readonly required?: boolean } | { readonly enum: readonly string[]; readonly required?: boolean };
/** An event of the plan: its properties, and whether others are allowed (default false). */
export interface PlanEvent {
  readonly properties?: { readonly [name: string]: PlanProperty };
  readonly additionalProperties?: boolean;
}
/** Event names (as `track()` takes them) to what each carries. */
export type TrackingPlan = { readonly [eventName: string]: PlanEvent };

type PlanValue<T> = T extends 'string' ? string : T extends 'number' ? number : T extends 'boolean' ? boolean : T extends 'array' ? JsonValue[] : T extends 'object' ? { [key: string]: JsonValue | undefined } : never;
type PropertyValue<P> = P extends PlanType ? PlanValue<P> : P extends { readonly enum: readonly (infer E)[] } ? E : P extends { readonly type: infer T } ? PlanValue<T> : never;
type IsOptional<P> = P extends { readonly required: false } ? true : false;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type DeclaredProperties<Ps> = Simplify<
  { -readonly [K in keyof Ps as IsOptional<Ps[K]> extends true ? never : K]: PropertyValue<Ps[K]> } & {
    -readonly [K in keyof Ps as IsOptional<Ps[K]> extends true ? K : never]?: PropertyValue<Ps[K]>;
  }
>;
/** The properties `track(eventName, ...)` takes under the plan `P`. */
export type PlannedProperties<P extends TrackingPlan, E extends keyof P> = P[E] extends { readonly properties: infer Ps }
  ? P[E] extends { readonly additionalProperties: true }
    ? DeclaredProperties<Ps> & Properties
    : DeclaredProperties<Ps>
  : P[E] extends { readonly additionalProperties: true }
    ? Properties
    : Record<string, never>;
type RequiredKeys<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? never : K }[keyof T];
/** `track()`'s arguments after the name: the properties are required when the plan requires one. */
export type PlannedTrackArgs<P extends TrackingPlan, E extends keyof P> = RequiredKeys<PlannedProperties<P, E>> extends never
  ? [properties?: PlannedProperties<P, E>, options?: TrackOptions]
  : [properties: PlannedProperties<P, E>, options?: TrackOptions];

/**
 * Declares a tracking plan, keeping its literal types: `init({ plan })` with it makes `track()`
 * type-check against it (a misspelt event or property, or a wrong type, is a compile error), and
 * the tracker checks every call at run time too (`planMode`). Returns `plan` itself.
 */
export declare function defineTrackingPlan<const P extends TrackingPlan>(plan: P): P;

/** A tracker whose `track()` is typed by the plan `P`. */
export interface PlannedTracker<P extends TrackingPlan> extends Omit<Tracker, 'track'> {
  track<E extends keyof P & string>(eventName: E, ...args: PlannedTrackArgs<P, E>): Promise<TrackResult>;
}

export interface TrackOptions {
  /** While an event with the same (eventName, dedupKey) is queued, tracking it again is answered `deduplicated`; once delivered, it is sent again with the same id (one stored copy only where the server honours Idempotency-Key). */
  dedupKey?: string;
}

export interface TrackResult {
  /** The event id, sent as `Idempotency-Key` and `X-Request-ID`, and as `$event_id`. */
  id: string;
  /** `queued`: stored durably. `deduplicated`: the same (name, dedupKey) is already queued. `disabled`: opted out. `evicted`: the queue overflowed before it was stored. */
  status: 'queued' | 'deduplicated' | 'disabled' | 'evicted' | 'sampled' | 'filtered';
}

export interface FlushResult {
  status: 'empty' | 'blocked';
  /** `storage`: the stored queue could not be read at the start; it is read again, and nothing is written meanwhile. */
  reason?: 'disabled' | 'paused' | 'offline' | 'backoff' | 'storage';
  /** When delivery will try again (ms since epoch). */
  retryAt?: number;
  queued: number;
}

export interface TrackerStats {
  state: 'idle' | 'ready' | 'sending' | 'backoff' | 'offline' | 'paused' | 'disabled';
  enabled: boolean;
  queued: number;
  pendingWrite: number;
  inFlight: number;
  bytesStored: number;
  delivered: number;
  retried: number;
  dropped: { rejected: number; evicted: number; retriesExhausted: number; purged: number; corrupt: number; undeliverable: number; filtered: number; sampled: number };
  storageWrites: number;
  requests: number;
  nextAttemptAt: number | null;
  /** The most recent delivery or storage error, kept after a recovery (`state` tells whether delivery is blocked now). */
  lastError: { code: InhouseErrorCode; message: string; at: number } | null;
  /** Errors captured but not stored as `$exception`: repeats within a minute, or beyond 10 distinct errors a minute. */
  exceptionsThrottled: number;
  /** `track()` calls that broke the tracking plan: rejected (`planMode: 'reject'`) or stored and reported (`'report'`). */
  planViolations: number;
}

/** Who and when, as events carry them (`null` where there is none yet). */
export interface Identity {
  /** `$install_id`: one per install, kept across worker and browser restarts and updates. */
  installId: string | null;
  /** `$session_id` of the current session, `null` when it has ended. */
  sessionId: string | null;
  /** `$user_id` given to identify(), until reset(). */
  userId: string | null;
}

export interface Tracker {
  /** Resolves when the stored queue is loaded; rejects with an InhouseError for bad options (or `WASM_LOAD_FAILED`). */
  readonly ready: Promise<void>;
  /** Resolves once the event is durably queued; rejects only for input that can never be sent. */
  track(eventName: string, properties?: Properties, options?: TrackOptions): Promise<TrackResult>;
  /** Delivers what it can (a wait after network errors ends: one request tries at once); resolves when the queue is empty or delivery is blocked, saying which. */
  flush(): Promise<FlushResult>;
  stats(): Promise<TrackerStats>;
  /** New credentials; a pause caused by a 401/403 ends at once. */
  setCredentials(credentials: { tokenId: string; tokenSecret: string }): Promise<void>;
  /** Opt in or out (persisted). Disabling stops collection; `purge` drops every queued event. */
  setEnabled(enabled: boolean, options?: { purge?: boolean }): Promise<void>;
  isEnabled(): Promise<boolean>;
  /** `$user_id` on every later event (persisted) and one `$identify` event with `traits`; resolves like track(). */
  identify(userId: string, traits?: Properties): Promise<TrackResult>;
  /** Super properties: merged into every later event (the event's own keys win); persisted. Resolves once stored. */
  register(properties: Properties): Promise<void>;
  unregister(key: string): Promise<void>;
  /** Logout: forgets the user id and the super properties and starts a new session; the install id stays. */
  reset(): Promise<void>;
  identity(): Promise<Identity>;
  /** A page or screen view: `$pageview` with `name` and your properties. */
  page(name?: string, properties?: Properties): Promise<TrackResult>;
  /** An error as a `$exception` event: its type, message and this extension's stack frames. Resolves `null` when throttled. */
  captureException(error: unknown, properties?: Properties): Promise<TrackResult | null>;
  /** Stores what is pending, stops timers and the alarm; later calls reject with SHUT_DOWN. */
  shutdown(): Promise<void>;
}

/**
 * Creates the tracker: once, synchronously, at the top level of the background service worker.
 * Throws an `INVALID_OPTION` InhouseError when a tracker already runs, and in an extension page or
 * content script (use `@inhouse/chrome-tracker/client` there). Allowed outside extensions.
 */
export declare function init<const P extends TrackingPlan>(options: TrackerOptions & { plan: P }): PlannedTracker<P>;
export declare function init(options: TrackerOptions): Tracker;

// Only what is marked `export` is the API (the helper types above are not).
export {};
