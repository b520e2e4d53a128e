// Shared by the loader's tests: the /testing entry of the built package (dist/pkg, or
// INHOUSE_PKG_DIR) and the helpers every file uses.
const pkg = process.env.INHOUSE_PKG_DIR ?? new URL('../../dist/pkg/', import.meta.url).pathname;
export const { createTestTracker, reset, InhouseError } = await import(`${pkg}/testing.js`);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** What the fake server received under `name`. */
export const named = (t, name) => t.sent().filter((e) => e.eventName === name);
/** An event's own properties: all but the SDK's `$` context. */
export const own = (props) => Object.fromEntries(Object.entries(props).filter(([k]) => !k.startsWith('$')));

/** Flushes until the queue is empty, at most 5 s. */
export async function drained(t) {
  for (let i = 0; i < 100; i++) {
    if ((await t.flush()).status === 'empty') return;
    await sleep(50);
  }
  throw new Error('the queue did not drain');
}
