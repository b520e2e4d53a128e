// A usage example of @inhouse/chrome-tracker that names every export of both entries and every
// option. tests/package/run.mjs type-checks it with tsc (strict, exactOptionalPropertyTypes,
// moduleResolution bundler and nodenext) against the installed tarball: a change to the .d.ts
// files that breaks customers' code, or an export/option added without a use here, fails.
// Never run; only compiled.
import { init, InhouseError, defineTrackingPlan } from '@inhouse/chrome-tracker';
import type {
  TrackingPlan,
  PlanEvent,
  PlanProperty,
  PlanType,
  PlannedProperties,
  PlannedTrackArgs,
  PlannedTracker,
  Tracker,
  TrackerOptions,
  RetryOptions,
  TrackOptions,
  TrackResult,
  FlushResult,
  TrackerStats,
  DroppedEvent,
  InhouseErrorCode,
  JsonValue,
  Properties,
  Identity,
  ReservedProperties,
} from '@inhouse/chrome-tracker';
import * as client from '@inhouse/chrome-tracker/client';
import { createTestTracker, reset as resetTestTracker, TEST_EXTENSION_ID, InhouseError as TestingInhouseError } from '@inhouse/chrome-tracker/testing';
import type { TestTracker, SentEvent } from '@inhouse/chrome-tracker/testing';
import type {
  Properties as ClientProperties,
  TrackOptions as ClientTrackOptions,
  TrackResult as ClientTrackResult,
  FlushResult as ClientFlushResult,
  TrackerStats as ClientTrackerStats,
  InhouseErrorCode as ClientInhouseErrorCode,
  Identity as ClientIdentity,
  TrackingPlan as ClientTrackingPlan,
  PlanEvent as ClientPlanEvent,
  PlanProperty as ClientPlanProperty,
  PlanType as ClientPlanType,
  PlannedProperties as ClientPlannedProperties,
  PlannedTrackArgs as ClientPlannedTrackArgs,
} from '@inhouse/chrome-tracker/client';

declare const chrome: { runtime: { getURL(path: string): string } };

const retry: Required<RetryOptions> = { baseDelayMs: 1000, maxDelayMs: 300_000, maxAttempts: 25, maxRetryAfterMs: 86_400_000 };

// Every option, each with its type: `Required<>` makes a new option in TrackerOptions fail here.
const everyOption: Required<TrackerOptions> = {
  tokenId: 'tok_123',
  tokenSecret: 'secret',
  appId: 'abcdefghijklmnopabcdefghijklmnop',
  baseUrl: 'https://api.tryinhouse.co/v1/api',
  allowAnyAppId: false,
  maxQueueEvents: 20_000,
  maxQueueBytes: 4 * 1024 * 1024,
  maxEventBytes: 32_768,
  requestTimeoutMs: 10_000,
  concurrency: 4,
  sessionTimeoutMs: 30 * 60_000,
  pageUrl: 'origin',
  enabled: true,
  autoEvents: { install: true, update: true, startup: true, daily: false },
  captureErrors: false,
  sampleRate: 1,
  uninstallUrl: 'https://example.com/uninstalled',
  plan: { app_opened: {} },
  planMode: 'report',
  beforeSend(event) {
    return event.eventName === 'noise' ? null : { ...event, properties: { ...event.properties, edited: true } };
  },
  retry,
  debug: false,
  wasmUrl: chrome.runtime.getURL('inhouse_tracker_bg.wasm'),
  onError(error: InhouseError) {
    const code: InhouseErrorCode = error.code;
    const field: string | undefined = error.field;
    const name: 'InhouseError' = error.name;
    console.warn(code, field, name, error.message);
  },
  onDrop(dropped: DroppedEvent) {
    const reason: 'rejected' | 'evicted' | 'retries_exhausted' | 'purged' | 'corrupt' | 'undeliverable' = dropped.reason;
    console.warn(dropped.id, dropped.eventName, reason, dropped.message);
  },
};
// wasmUrl also takes a URL object; the minimal options are the two credentials.
const withUrl: TrackerOptions = { tokenId: 't', tokenSecret: 's', wasmUrl: new URL('chrome-extension://x/a.wasm') };
const tracker: Tracker = init({ tokenId: 'tok_123', tokenSecret: 'secret' });
void everyOption;
void withUrl;

// What a stored event's reserved properties look like (for code that reads events back).
const context: Pick<ReservedProperties, '$source' | '$install_id'> = { $source: 'content_script', $install_id: 'id' };
void context;
const nested: JsonValue = { a: [1, 'two', true, null, new Date(), { b: 2 }] };
const props: Properties = { plan: 'pro', seats: 3, nested, missing: undefined };
const trackOptions: TrackOptions = { dedupKey: 'signup-42' };

async function background(): Promise<void> {
  await tracker.ready;
  const r: TrackResult = await tracker.track('signup_completed', props, trackOptions);
  const status: 'queued' | 'deduplicated' | 'disabled' | 'evicted' | 'sampled' | 'filtered' = r.status;
  const id: string = r.id;
  await tracker.track('no_properties');
  const f: FlushResult = await tracker.flush();
  if (f.status === 'blocked') console.log(f.reason, f.retryAt, f.queued);
  const s: TrackerStats = await tracker.stats();
  const lastCode: InhouseErrorCode | undefined = s.lastError?.code;
  console.log(status, id, s.state, s.queued, s.delivered, s.dropped.evicted, s.nextAttemptAt, lastCode);
  await tracker.setCredentials({ tokenId: 'tok_new', tokenSecret: 'secret_new' });
  await tracker.setEnabled(false, { purge: true });
  await tracker.setEnabled(true);
  const enabled: boolean = await tracker.isEnabled();
  console.log(enabled);
  const identified: TrackResult = await tracker.identify('user_42', { plan: 'pro' });
  await tracker.register({ team: 'growth' });
  await tracker.unregister('team');
  await tracker.reset();
  const who: Identity = await tracker.identity();
  const installId: string | null = who.installId;
  console.log(identified.status, installId, who.sessionId, who.userId);
  const viewed: TrackResult = await tracker.page('settings', { tab: 'general' });
  const captured: TrackResult | null = await tracker.captureException(new Error('boom'));
  console.log(viewed.status, captured?.id, s.exceptionsThrottled, s.dropped.filtered, s.dropped.sampled);
  try {
    await tracker.track('Bad Name!');
  } catch (e) {
    if (e instanceof InhouseError && e.code === 'INVALID_EVENT_NAME') console.log(e.field);
  }
  await tracker.shutdown();

  // @ts-expect-error: properties must be an object of JSON values
  await tracker.track('x', 'not an object');
  // @ts-expect-error: tokenSecret is required
  init({ tokenId: 'only' });
  // @ts-expect-error: no such error code
  const wrong: InhouseErrorCode = 'NOPE';
  void wrong;
}

// The client entry: content scripts, popups, options pages.
async function page(): Promise<void> {
  const p: ClientProperties = { button: 'cta' };
  const o: ClientTrackOptions = { dedupKey: 'cta-1' };
  const r: ClientTrackResult = await client.track('cta_clicked', p, o);
  const f: ClientFlushResult = await client.flush();
  const s: ClientTrackerStats = await client.stats();
  console.log(r.id, f.queued, s.enabled);
  await client.identify('user_42');
  await client.register({ plan: 'pro' });
  await client.unregister('plan');
  await client.reset();
  const who: ClientIdentity = await client.identity();
  console.log(who.userId);
  await client.page('popup');
  await client.captureException(new Error('boom'), { where: 'popup' });
  await client.setEnabled(false, { purge: true });
  const on: boolean = await client.isEnabled();
  console.log(on);
  try {
    await client.track('x');
  } catch (e) {
    if (e instanceof client.InhouseError) {
      const code: ClientInhouseErrorCode = e.code;
      console.log(code, e.field);
    }
  }
  // @ts-expect-error: the client has no init()
  client.init;
}

// The testing entry, in a customer's unit test.
async function unitTest(): Promise<void> {
  const t: TestTracker = createTestTracker({ version: '1.2.3', sessionTimeoutMs: 60_000 });
  await t.ready;
  await t.track('signup', { plan: 'pro' });
  await t.client.track('popup_opened');
  t.respondWith(503, { retryAfter: 1 });
  const sent: SentEvent[] = t.sent();
  console.log(sent[0]?.properties.$install_id, sent[0]?.headers['x-inhouse-app'] === TEST_EXTENSION_ID, t.stored());
  try {
    await t.track('Bad Name!');
  } catch (e) {
    if (e instanceof TestingInhouseError) console.log(e.code);
  }
  await resetTestTracker();
}

// The tracking plan: track() typed by it (tests/package/fixtures/plan/ holds what must not compile).
const seatsType: PlanType = 'number';
const seats: PlanProperty = seatsType;
const signup: PlanEvent = { properties: { plan: { enum: ['free', 'pro'] }, seats } };
const loose: TrackingPlan = { signup };
const plan = defineTrackingPlan({
  signup: { properties: { plan: { enum: ['free', 'pro'] }, seats: 'number', ref: { type: 'string', required: false } } },
  app_opened: {},
});
async function planned(): Promise<void> {
  const t: PlannedTracker<typeof plan> = init({ tokenId: 'tok', tokenSecret: 'secret', plan, planMode: 'reject' });
  const props: PlannedProperties<typeof plan, 'signup'> = { plan: 'pro', seats: 3 };
  const args: PlannedTrackArgs<typeof plan, 'app_opened'> = [];
  await t.track('signup', props);
  await t.track('app_opened', ...args);
  const fromPopup = client.withPlan(plan);
  await fromPopup.track('signup', { plan: 'free', seats: 1, ref: 'newsletter' });
  const same: ClientTrackingPlan = client.defineTrackingPlan({ app_opened: {} } satisfies Record<string, ClientPlanEvent>);
  const kind: ClientPlanType = 'string';
  const prop: ClientPlanProperty = { type: kind, required: false };
  const clientProps: ClientPlannedProperties<typeof plan, 'signup'> = { plan: 'free', seats: 2 };
  const clientArgs: ClientPlannedTrackArgs<typeof plan, 'signup'> = [clientProps];
  await fromPopup.track('signup', ...clientArgs);
  console.log(loose, same, prop);
  // @ts-expect-error: not in the plan
  await t.track('sign_up', props);
}

void planned;
void unitTest;
void background;
void page;
