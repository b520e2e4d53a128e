// End-to-end tests: the demo extension (built from dist/inhouse-chrome-tracker-*.tgz exactly as
// the demo builds it) in headless Chromium, against the local inhouse-server on 127.0.0.1.
// Every assertion is on what the SERVER stored or logged. Tests run serially, each with its own
// browser profile, its own server (ephemeral ports) and a hard time bound.
//
// The tests live in tests/e2e/*.test.mjs (each default-exports its list, see lib.mjs), loaded in
// file-name order; the fixtures and assertions they share are in lib.mjs.
//
//   node tests/e2e/run.mjs            E2E_ONLY=<substring>[|<substring>...] runs the tests whose name contains one.
// The last line is `e2e: N passed, M failed, K skipped`; the exit status is non-zero on failure.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildDemo, findTarball } from '../../extension-demo/tools/build.mjs';
import { SERVER_BIN } from '../../extension-demo/tools/harness.mjs';
import { AssertionError, BASE_EXT, TMP, sleep } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/**
 * Every test of every *.test.mjs, files in sorted order, each file's tests in its own order. A
 * file that cannot be loaded, or a name used twice, is a failed pseudo-test of its own (run
 * whatever E2E_ONLY says): the other files still run.
 */
async function loadTests() {
  const tests = [];
  const files = fs.readdirSync(HERE).filter((f) => f.endsWith('.test.mjs')).sort();
  const names = new Set();
  for (const file of files) {
    let list;
    try {
      const mod = await import(pathToFileURL(path.join(HERE, file)).href);
      list = typeof mod.default === 'function' ? collect(mod.default) : mod.default;
      if (!Array.isArray(list)) throw new Error('its default export is neither a list of tests nor a function registering them');
    } catch (e) {
      const error = e;
      tests.push({ name: `${file}: cannot load`, always: true, timeoutMs: 1000, fn: async () => { throw error; } });
      continue;
    }
    for (const tc of list) {
      if (names.has(tc.name)) {
        tests.push({ name: `${file}: ${tc.name} (duplicate name)`, always: true, timeoutMs: 1000, fn: async () => { throw new AssertionError(`the test name "${tc.name}" is used twice`); } });
        continue;
      }
      names.add(tc.name);
      tests.push(tc);
    }
  }
  return tests;
}
function collect(register) {
  const list = [];
  register((name, timeoutMs, fn) => list.push({ name, timeoutMs, fn }));
  return list;
}

// ---------------------------------------------------------------- runner
async function runOne(tc) {
  const cleanups = [];
  const t = {
    slug: tc.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 30),
    consoleLog: [],
    cleanup: (fn) => cleanups.push(fn),
  };
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${tc.timeoutMs / 1000} s`)), tc.timeoutMs);
  });
  const started = Date.now();
  let error = null;
  try {
    await Promise.race([tc.fn(t), timeout]);
  } catch (e) {
    error = e;
  }
  clearTimeout(timer);
  const serverExit = t.server?.exitStatus?.();
  const cleanupDone = (async () => {
    while (cleanups.length) {
      const fn = cleanups.pop();
      await Promise.resolve().then(fn).catch(() => {});
    }
  })();
  await Promise.race([cleanupDone, sleep(20_000)]);
  if (error && serverExit) console.log(`  inhouse-server had exited ${JSON.stringify(serverExit)}: ${t.server.stderr().slice(-1000)}`);
  if (error && t.consoleLog.length) {
    console.log('  console (last 15):');
    for (const m of t.consoleLog.slice(-15)) console.log(`    [${m.type}] ${m.where.slice(0, 60)}: ${m.text.slice(0, 300)}`);
  }
  return { error, ms: Date.now() - started };
}

async function main() {
  const tests = await loadTests();
  const only = process.env.E2E_ONLY;
  // `a|b`: the tests whose name contains any of the parts.
  const selected = tests.filter((tc) => tc.always || !only || only.split('|').some((part) => tc.name.includes(part)));
  let passed = 0;
  let failed = 0;
  const skipped = tests.length - selected.length;
  fs.mkdirSync(TMP, { recursive: true });
  try {
    if (!fs.existsSync(SERVER_BIN)) throw new Error(`${SERVER_BIN} missing: cargo build --release -p inhouse-server`);
    const tarball = findTarball();
    const { version } = buildDemo({ outDir: BASE_EXT });
    console.log(`e2e: demo extension built from ${path.basename(tarball)} (@inhouse/chrome-tracker@${version}); ${selected.length} test(s)`);
  } catch (e) {
    console.log(`e2e: cannot start: ${e.message}`);
    console.log(`e2e: 0 passed, ${selected.length} failed, ${skipped} skipped`);
    process.exit(1);
  }
  for (const [i, tc] of selected.entries()) {
    console.log(`[${i + 1}/${selected.length}] ${tc.name}`);
    const { error, ms } = await runOne(tc);
    if (error) {
      failed++;
      console.log(`FAIL ${tc.name} (${(ms / 1000).toFixed(1)} s)\n  ${error instanceof AssertionError ? error.message : (error?.stack ?? String(error))}`);
    } else {
      passed++;
      console.log(`ok   ${tc.name} (${(ms / 1000).toFixed(1)} s)`);
    }
  }
  console.log(`e2e: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  process.exit(failed ? 1 : 0);
}

await main();
