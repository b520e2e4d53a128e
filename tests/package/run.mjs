// Package tests: the packed npm tarball (dist/inhouse-chrome-tracker-<v>.tgz) used the way
// customers use it. Each test installs the tarball into a scratch project under
// tests/package/.tmp/, builds an MV3 extension from it (no bundler, esbuild, Vite, webpack 5),
// scans the build for remote code, loads it in headless Chromium and asserts on what the local
// inhouse-server stored. The `types` test checks index.d.ts/client.d.ts with tsc against
// usage.ts and against the names the JS really exports.
//
//   node tests/package/run.mjs          PKG_ONLY=<substring>[|<substring>...] runs the tests whose name contains one;
//                                       PKG_TARBALL=<file> tests another tarball; PKG_KEEP=1 keeps .tmp.
// Serial, each test bounded in time. The last line is `package: N passed, M failed, K skipped`;
// the exit status is non-zero on failure.
import fs from 'node:fs';
import zlib from 'node:zlib';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import {
  ROOT, HERE, TMP, FIXTURES, PACKAGE, SERVER_BIN, BIN, assert, eq, waitFor, run, findTarball, scratchProject,
  extensionKey, manifest, startServer, launchExtension, listFiles, AssertionError,
} from './lib.mjs';
import { GECKO_ID, launchFirefox } from '../../scripts/lib/firefox.mjs';

const log = (s) => console.log(`  ${s}`);
const TOKEN = { tokenId: 'pkg_token_id', tokenSecret: 'pkg_token_secret_value' };
const INHOUSE_DEFAULT_API = 'https://api.tryinhouse.co';

// Every TrackerOptions key with a valid value (the defaults the README documents); the `types`
// test checks these keys against index.d.ts, the `no bundler` test passes them all to the wasm,
// which rejects unknown option names: the three cannot drift apart unnoticed.
const FULL_OPTION_VALUES = {
  allowAnyAppId: false,
  maxQueueEvents: 20000,
  maxQueueBytes: 4194304,
  maxEventBytes: 32768,
  requestTimeoutMs: 10000,
  concurrency: 4,
  sessionTimeoutMs: 1800000,
  pageUrl: 'origin',
  enabled: true,
  autoEvents: { install: true, update: true, startup: true, daily: true },
  captureErrors: false,
  sampleRate: 1,
  uninstallUrl: 'https://example.com/uninstalled',
  retry: { baseDelayMs: 1000, maxDelayMs: 300000, maxAttempts: 25, maxRetryAfterMs: 86400000 },
  // The no-bundler test's event must match it.
  plan: { pkg_full_options: { properties: { variant: { enum: ['plain'] } } } },
  planMode: 'reject',
  debug: false,
};
const FULL_OPTION_KEYS = [...Object.keys(FULL_OPTION_VALUES), 'tokenId', 'tokenSecret', 'appId', 'baseUrl', 'wasmUrl', 'onError', 'onDrop', 'beforeSend'];

// ---------------------------------------------------------------- the extension sources
/** Copies fixtures/src into dir/src and writes its config.js. */
function writeSources(dir, config, { specifiers } = {}) {
  const src = path.join(dir, 'src');
  fs.cpSync(path.join(FIXTURES, 'src'), src, { recursive: true });
  fs.writeFileSync(path.join(src, 'config.js'), `export const config = ${JSON.stringify(config, null, 2)};\n`);
  if (specifiers) {
    for (const f of ['start.js', 'popup.js']) {
      let text = fs.readFileSync(path.join(src, f), 'utf8');
      for (const [from, to] of Object.entries(specifiers)) text = text.replaceAll(`'${from}'`, `'${to}'`);
      fs.writeFileSync(path.join(src, f), text);
    }
  }
  return src;
}

// ---------------------------------------------------------------- no remote code
const CODE_EXT = /\.(m?js|html)$/;
/**
 * Scans a built extension for what the Chrome Web Store rejects: dynamic import(), importScripts(),
 * and any http(s) URL other than the configured server and the SDK's default API endpoint; and
 * checks that the one .wasm is among the extension's own files.
 */
function scanForRemoteCode(outDir, allowedOrigins) {
  const files = listFiles(outDir);
  const findings = [];
  for (const f of files) {
    const full = path.join(outDir, f);
    if (CODE_EXT.test(f)) {
      const text = fs.readFileSync(full, 'utf8');
      for (const m of text.matchAll(/(?<![\w$.])import\s*\(/g)) findings.push(`${f}: dynamic import() at ${m.index}: ${text.slice(m.index, m.index + 60)}`);
      for (const m of text.matchAll(/importScripts\s*\(/g)) findings.push(`${f}: importScripts() at ${m.index}`);
      for (const m of text.matchAll(/\b(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}(?::\d+)?[^\s'"`)]*|\bhttps?:\/\/[^\s'"`)]+/gi)) {
        const url = m[0];
        if (!/^https?:/i.test(url)) continue; // protocol-relative matches are comments like `// foo.bar`
        if (allowedOrigins.some((o) => url.startsWith(o))) continue;
        // A URL in a comment (`// https://developer.mozilla.org/...` in wasm-bindgen's glue) is not code.
        const lineStart = text.lastIndexOf('\n', m.index) + 1;
        if (/^\s*(\/\/|\/?\*)/.test(text.slice(lineStart, m.index))) continue;
        findings.push(`${f}: URL ${url}`);
      }
      if (/<script[^>]+src=["']?(https?:)?\/\//i.test(text)) findings.push(`${f}: remote <script src>`);
    } else if (f.endsWith('.wasm')) {
      const text = fs.readFileSync(full).toString('latin1');
      for (const m of text.matchAll(/https?:\/\/[\x21-\x7e]+/g)) {
        if (!allowedOrigins.some((o) => m[0].startsWith(o))) findings.push(`${f}: URL ${m[0].slice(0, 80)}`);
      }
    }
  }
  const wasm = files.filter((f) => f.endsWith('.wasm'));
  if (wasm.length !== 1) findings.push(`expected exactly one .wasm in the extension, found ${JSON.stringify(wasm)}`);
  return { files, wasm, findings };
}

/**
 * The package's own checker on the built extension, as a customer runs it in CI
 * (`npx chrome-tracker check dist --api <their API> --json`, the bin installed from the tarball):
 * it must find nothing.
 */
async function checkBuilt(projectDir, outDir, server) {
  const bin = path.join(projectDir, 'node_modules/.bin/chrome-tracker');
  const r = await run(bin, ['check', outDir, '--api', server.api, '--json'], { cwd: projectDir, timeoutMs: 30_000 }).catch((e) => ({ out: String(e.message) }));
  const report = JSON.parse(r.out.slice(r.out.indexOf('{')));
  eq(report.findings, [], `chrome-tracker check on the built extension (${report.browser} build)`);
  assert(report.ok && report.usesTracker, `the checker found the tracker: ${JSON.stringify(report)}`);
  return `chrome-tracker check: ${report.browser} build, no findings`;
}

// ---------------------------------------------------------------- an extension, end to end
/**
 * The common part of every bundler test: builds with `build(project, src, outDir)`, writes the
 * manifest, scans the output, loads it, and checks that events from the worker (tracked before
 * the wasm was ready), from the popup through the client entry, and from the popup after Chrome
 * stopped the worker all reach the server with x-inhouse-app = the extension id.
 */
async function extensionTest(t, { name, specifiers, config: extraConfig = {}, moduleWorker = true, background = 'background.js', otherOrigins = [], build, after }) {
  const { key, id } = extensionKey();
  const server = await startServer({ tokens: [`${TOKEN.tokenId}:${TOKEN.tokenSecret}:${id}`] });
  t.cleanup(() => server.stop());
  const { dir, pkgDir } = await scratchProject(t.slug, t.tarball);
  const config = { ...TOKEN, baseUrl: server.baseUrl, variant: name, ...extraConfig };
  const src = writeSources(dir, config, { specifiers });
  const outDir = path.join(dir, 'dist');
  const began = Date.now();
  const buildInfo = (await build({ dir, src, outDir, pkgDir, config })) ?? {};
  const buildMs = Date.now() - began;
  fs.writeFileSync(path.join(outDir, 'manifest.json'), JSON.stringify(manifest({ key, name, moduleWorker, background }), null, 2) + '\n');
  for (const f of [background, 'popup.html']) assert(fs.existsSync(path.join(outDir, f)), `the build produced ${f}`);

  const scan = scanForRemoteCode(outDir, [server.api, INHOUSE_DEFAULT_API, ...otherOrigins]);
  eq(scan.findings, [], 'remote code / remote URLs in the built extension');
  const checked = await checkBuilt(dir, outDir, server);

  const browser = await launchExtension({ extDir: outDir, userDataDir: path.join(dir, 'profile'), extensionId: id, worker: background });
  t.cleanup(() => browser.close());
  const w = await browser.worker();
  await waitFor(() => w.evaluate(() => !!globalThis.pkgTest), { timeoutMs: 10_000, what: 'the background to run' });
  const early = await w.evaluate(() => globalThis.pkgTest.early.catch((e) => ({ error: e.code, message: e.message })));
  eq(early.status, 'queued', `track() before the wasm was ready (${JSON.stringify(early)})`);

  const stored = async (eventName) => {
    const e = await waitFor(async () => (await server.events()).events.find((x) => x.event_name === eventName), { timeoutMs: 20_000, what: `${eventName} at the server` });
    eq(e.headers['x-inhouse-app'], id, `${eventName}: x-inhouse-app`);
    eq(e.headers['x-inhouse-token-id'], TOKEN.tokenId, `${eventName}: x-inhouse-token-id`);
    eq(e.properties.variant, name, `${eventName}: properties.variant`);
    return e;
  };
  const first = await stored('pkg_early');
  eq(first.properties.$event_id, early.id, 'pkg_early stored under the id track() returned');

  // What the worker fetched: the wasm from the extension itself, the rest only to the server.
  const resources = await w.evaluate(() => [...new Set([...globalThis.pkgFetched, ...performance.getEntriesByType('resource').map((e) => e.name)])]);
  const wasmFetched = resources.filter((r) => /\.wasm(\?|$)/.test(r));
  eq(wasmFetched.length, 1, `one .wasm fetched by the worker (${JSON.stringify(resources)})`);
  eq(wasmFetched[0], `${browser.origin}${scan.wasm[0]}`, 'the wasm fetched is the extension file');
  const foreign = resources.filter((r) => !r.startsWith(browser.origin) && !r.startsWith(server.api));
  eq(foreign, [], 'worker fetches outside the extension and the configured server');

  // The client entry from an extension page.
  const page = await browser.page('popup.html');
  await page.waitForSelector('body[data-ready="1"]', { timeout: 10_000 });
  const viaClient = await page.evaluate((variant) => globalThis.pkgClient.track('pkg_popup', { variant }), name);
  eq(viaClient.status, 'queued', 'client track() from the popup');
  await stored('pkg_popup');

  // Chrome stops idle workers; a message must wake it, reach the top-level listener, and the
  // tracker must come back (fresh globals, wasm loaded again) and deliver. Idle: the write that
  // stores pkg_popup's done-mark is committed first (flush answers once it is), or the stop would
  // fail it ("No SW", reported through onError).
  eq((await page.evaluate(() => globalThis.pkgClient.flush())).status, 'empty', 'flush() before the stop');
  await browser.stopWorkers(page);
  const afterStop = await page.evaluate((variant) => globalThis.pkgClient.track('pkg_after_stop', { variant }), name);
  eq(afterStop.status, 'queued', 'client track() after the worker was stopped');
  await stored('pkg_after_stop');
  log(`${name}: ${checked}`);

  if (after) await after({ browser, server, id, page, outDir });

  const problems = browser.consoleLog.filter((m) => ['error', 'warning', 'pageerror'].includes(m.type));
  eq(problems, [], 'console errors/warnings of the extension');
  const wasmBytes = fs.statSync(path.join(outDir, scan.wasm[0])).size;
  log(`${name}: built in ${buildMs} ms${buildInfo.note ? ` (${buildInfo.note})` : ''}; wasm at ${scan.wasm[0]} (${wasmBytes} B); ` +
    `${scan.files.length} files scanned, no remote code; 3 events stored with x-inhouse-app=${id}`);
}

// ---------------------------------------------------------------- tests
const tests = [];
const test = (name, timeoutMs, fn) => tests.push({ name, timeoutMs, fn });

test('types: tsc checks usage.ts; .d.ts exports == JS exports; package.json and tarball contents', 90_000, async (t) => {
  const { dir, pkgDir } = await scratchProject(t.slug, t.tarball);
  const pkgJson = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));

  // package.json: version in step with Cargo.toml, exports with `types` first, files present.
  const cargoVersion = fs.readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8').match(/^version = "([^"]+)"/m)[1];
  eq(pkgJson.version, cargoVersion, 'package.json version == Cargo.toml version');
  eq(pkgJson.name, PACKAGE, 'package name');
  for (const [sub, target] of Object.entries(pkgJson.exports)) {
    if (typeof target === 'object') eq(Object.keys(target)[0], 'types', `exports["${sub}"]: the types condition comes first`);
    const files = typeof target === 'string' ? [target] : Object.values(target).flatMap((v) => (typeof v === 'string' ? [v] : Object.values(v)));
    for (const f of files) assert(fs.existsSync(path.join(pkgDir, f)), `exports["${sub}"] → ${f} exists in the installed package`);
  }
  for (const f of ['sideEffects', 'license', 'repository', 'keywords', 'module', 'files']) assert(pkgJson[f] !== undefined, `package.json has ${f}`);
  const tarList = (await run('tar', ['tzf', t.tarball])).out.trim().split('\n').map((f) => f.replace(/^package\//, '')).sort();
  const expectedFiles = ['README.md', 'check.js', 'cli.js', 'client.d.ts', 'client.js', 'index.d.ts', 'index.js', 'inhouse_tracker.js', 'inhouse_tracker_bg.wasm', 'package.json', 'testing.d.ts', 'testing.js', 'wxt-analytics.d.ts', 'wxt-analytics.js'];
  eq(tarList, expectedFiles, 'files in the tarball');
  const readme = fs.readFileSync(path.join(pkgDir, 'README.md'), 'utf8');
  assert(readme.length > 4000 && readme.includes('wasm-unsafe-eval'), 'the README is written (not the placeholder)');

  // tsc: usage.ts against the installed package, with the resolutions customers use.
  fs.copyFileSync(path.join(HERE, 'usage.ts'), path.join(dir, 'usage.ts'));
  const tsVersion = (await run(BIN('tsc'), ['--version'])).out.trim();
  for (const [resolution, module] of [['bundler', 'esnext'], ['nodenext', 'nodenext']]) {
    const tsconfig = {
      compilerOptions: {
        target: 'es2022', module, moduleResolution: resolution, lib: ['es2022', 'dom'], strict: true, noEmit: true,
        skipLibCheck: false, noUnusedLocals: false, types: [], exactOptionalPropertyTypes: true,
      },
      files: ['usage.ts'],
    };
    fs.writeFileSync(path.join(dir, `tsconfig.${resolution}.json`), JSON.stringify(tsconfig, null, 2));
    await run(BIN('tsc'), ['-p', `tsconfig.${resolution}.json`], { cwd: dir, timeoutMs: 60_000 });
  }
  // The tracking plan's types refuse what they must: an error on each line marked `// error`,
  // none elsewhere.
  fs.copyFileSync(path.join(FIXTURES, 'plan/must-fail.ts'), path.join(dir, 'must-fail.ts'));
  const planConfig = JSON.parse(fs.readFileSync(path.join(dir, 'tsconfig.bundler.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'tsconfig.plan.json'), JSON.stringify({ ...planConfig, files: ['must-fail.ts'] }, null, 2));
  const planTsc = await run(BIN('tsc'), ['-p', 'tsconfig.plan.json'], { cwd: dir, timeoutMs: 60_000 }).then((r) => r.out, (e) => String(e.message));
  const failing = [...new Set([...planTsc.matchAll(/must-fail\.ts\((\d+),\d+\): error/g)].map((m) => Number(m[1])))].sort((a, b) => a - b);
  const marked = fs.readFileSync(path.join(dir, 'must-fail.ts'), 'utf8').split('\n').flatMap((line, i) => (/;\s*\/\/ error:/.test(line) ? [i + 1] : []));
  assert(marked.length >= 9, `must-fail.ts marks ${marked.length} lines`);
  eq(failing, marked, `lines of must-fail.ts tsc refuses (got) vs the lines marked // error (expected); tsc said: ${planTsc.slice(0, 1500)}`);

  // The .d.ts files and the JS modules declare/export the same values; usage.ts names them all.
  const require = createRequire(path.join(ROOT, 'package.json'));
  const ts = require('typescript');
  const entries = ['index', 'client', 'testing'];
  const program = ts.createProgram(entries.map((e) => path.join(pkgDir, `${e}.d.ts`)), { strict: true, noEmit: true, lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'], types: [] });
  const checker = program.getTypeChecker();
  const usage = fs.readFileSync(path.join(HERE, 'usage.ts'), 'utf8');
  const declared = {};
  for (const entry of entries) {
    const sf = program.getSourceFile(path.join(pkgDir, `${entry}.d.ts`));
    const exports = checker.getExportsOfModule(checker.getSymbolAtLocation(sf));
    // A re-export (`export { InhouseError } from './index.js'`) is the value it names.
    const valueOf = (s) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
    const values = exports.filter((s) => valueOf(s).flags & ts.SymbolFlags.Value).map((s) => s.name).sort();
    const all = exports.map((s) => s.name).sort();
    const runtime = Object.keys(await import(pathToFileURL(path.join(pkgDir, `${entry}.js`)).href)).sort();
    eq(values, runtime, `values declared by ${entry}.d.ts (got) vs exported by ${entry}.js (expected)`);
    declared[entry] = all;
    const unused = all.filter((n) => !new RegExp(`\\b${n}\\b`).test(usage));
    eq(unused, [], `exports of ${entry}.d.ts that usage.ts never uses`);
    if (entry === 'index') {
      const optionsSym = exports.find((s) => s.name === 'TrackerOptions');
      const optionKeys = checker.getDeclaredTypeOfSymbol(optionsSym).getProperties().map((p) => p.name).sort();
      eq(optionKeys, [...FULL_OPTION_KEYS].sort(), 'TrackerOptions keys vs the options the no-bundler test passes to the wasm');
      const retryKeys = checker.getDeclaredTypeOfSymbol(exports.find((s) => s.name === 'RetryOptions')).getProperties().map((p) => p.name).sort();
      eq(retryKeys, Object.keys(FULL_OPTION_VALUES.retry).sort(), 'RetryOptions keys');
    }
  }
  // The README documents every option and every error code.
  const codes = checker.getDeclaredTypeOfSymbol(checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(path.join(pkgDir, 'index.d.ts')))).find((s) => s.name === 'InhouseErrorCode')).types.map((x) => x.value);
  const undocumented = [...FULL_OPTION_KEYS, ...Object.keys(FULL_OPTION_VALUES.retry), ...codes].filter((n) => !readme.includes(`\`${n}\``) && !readme.includes(`retry.${n}`));
  eq(undocumented, [], 'options and error codes missing from the README');
  log(`${tsVersion}: the plan's types refuse the ${marked.length} wrong calls of must-fail.ts and no other; usage.ts compiles with moduleResolution bundler and nodenext; index exports ${declared.index.length} names, client ${declared.client.length}, testing ${declared.testing.length}; ${codes.length} error codes and ${FULL_OPTION_KEYS.length} options documented`);
});

test('testing entry: the real tracker in a customer\'s unit tests, under node:test and Vitest', 180_000, async (t) => {
  const { dir } = await scratchProject(t.slug, t.tarball);
  const specs = path.join(FIXTURES, 'testing');
  for (const f of fs.readdirSync(specs)) fs.copyFileSync(path.join(specs, f), path.join(dir, f));
  const cases = Object.keys((await import(pathToFileURL(path.join(dir, 'cases.mjs')).href)).cases).length;
  const node = await run(process.execPath, ['--test', '--test-reporter=tap', 'node.test.mjs'], { cwd: dir, timeoutMs: 120_000 });
  const passed = (re) => Number((node.out.match(re) ?? [])[1]);
  eq([passed(/^# pass (\d+)/m), passed(/^# fail (\d+)/m)], [cases, 0], `node:test (${node.out.slice(-300)})`);
  const vitest = await run(BIN('vitest'), ['run', 'vitest.test.mjs', '--root', dir, '--reporter=json', '--outputFile=vitest.json'], { cwd: dir, timeoutMs: 120_000 });
  const report = JSON.parse(fs.readFileSync(path.join(dir, 'vitest.json'), 'utf8'));
  eq([report.numPassedTests, report.numFailedTests], [cases, 0], `Vitest (${vitest.out.slice(-300)})`);
  log(`${cases} cases with @inhouse/chrome-tracker/testing (the same wasm, storage in memory, a fake server): node:test ${cases}/${cases}, Vitest ${report.numPassedTests}/${cases}`);
});

test('loader: a wasm that cannot load rejects with WASM_LOAD_FAILED naming the fix; init() can retry', 30_000, async (t) => {
  // In Node, outside an extension: only the loader's own behaviour is checked here.
  const { pkgDir } = await scratchProject(t.slug, t.tarball);
  const { init, InhouseError } = await import(pathToFileURL(path.join(pkgDir, 'index.js')).href);
  const missing = 'file:///nonexistent/inhouse_tracker_bg.wasm';
  const bad = init({ ...TOKEN, wasmUrl: missing });
  const early = bad.track('queued_before_ready'); // queued, then rejected with the same error
  const err = await bad.ready.then(() => null, (e) => e);
  assert(err instanceof InhouseError, `ready rejects with an InhouseError (${err})`);
  eq([err.code, err.field], ['WASM_LOAD_FAILED', 'wasmUrl'], 'code and field');
  assert(err.message.includes(missing) && err.message.includes('wasmUrl'), `the message names the URL and the option: ${err.message}`);
  eq((await early.then(() => null, (e) => e.code)), 'WASM_LOAD_FAILED', 'a call queued before ready');
  await bad.shutdown().catch(() => {});
  // A second init() with a wasm that loads gets past the loading (the options then fail in Node,
  // which has no chrome.runtime: anything but WASM_LOAD_FAILED proves the retry).
  const bytes = fs.readFileSync(path.join(pkgDir, 'inhouse_tracker_bg.wasm')).toString('base64');
  const good = init({ ...TOKEN, wasmUrl: `data:application/wasm;base64,${bytes}` });
  const second = await good.ready.then(() => 'ready', (e) => e.code);
  assert(second !== 'WASM_LOAD_FAILED', `a corrected wasmUrl loads (got ${second})`);
  log(`WASM_LOAD_FAILED: ${err.message.slice(0, 160)}...; retry → ${second}`);
});

test('no bundler: files copied from node_modules, module service worker', 90_000, async (t) => {
  await extensionTest(t, {
    name: 'plain',
    specifiers: { [PACKAGE]: './vendor/inhouse/index.js', [`${PACKAGE}/client`]: './vendor/inhouse/client.js' },
    build: ({ src, outDir, pkgDir }) => {
      fs.cpSync(src, outDir, { recursive: true });
      const vendor = path.join(outDir, 'vendor/inhouse');
      fs.mkdirSync(vendor, { recursive: true });
      for (const f of ['index.js', 'inhouse_tracker.js', 'inhouse_tracker_bg.wasm', 'client.js']) fs.copyFileSync(path.join(pkgDir, f), path.join(vendor, f));
      return { note: 'cp index.js inhouse_tracker.js inhouse_tracker_bg.wasm client.js → vendor/inhouse/' };
    },
    // Every documented option reaches the wasm, which rejects unknown names.
    after: async ({ browser, server, id }) => {
      const w = await browser.worker();
      const r = await w.evaluate(async ({ values, id, token, baseUrl }) => {
        const { init, tracker: old } = globalThis.pkgTest ?? {};
        if (!init) return { error: 'no pkgTest' };
        await old.shutdown();
        const t = init({
          ...token, ...values, appId: id, baseUrl,
          wasmUrl: chrome.runtime.getURL('vendor/inhouse/inhouse_tracker_bg.wasm'),
          onError() {}, onDrop() {},
        });
        try {
          await t.ready;
          return await t.track('pkg_full_options', { variant: 'plain' });
        } catch (e) {
          return { error: e.code, message: e.message };
        }
      }, { values: FULL_OPTION_VALUES, id, token: TOKEN, baseUrl: server.baseUrl });
      eq(r.status, 'queued', `init() with every documented option (${JSON.stringify(r)})`);
      await waitFor(async () => (await server.events()).events.find((e) => e.event_name === 'pkg_full_options'), { what: 'pkg_full_options at the server' });
    },
  });
});

test('esbuild: ESM bundle, .wasm copied next to it (default URL)', 90_000, async (t) => {
  await extensionTest(t, {
    name: 'esbuild',
    build: async ({ dir, outDir, pkgDir }) => {
      await run(BIN('esbuild'), ['src/background.js', '--bundle', '--format=esm', '--minify', '--outfile=dist/background.js', '--log-level=warning'], { cwd: dir });
      await run(BIN('esbuild'), ['src/popup.js', '--bundle', '--format=iife', '--minify', '--outfile=dist/popup.js', '--log-level=warning'], { cwd: dir });
      fs.copyFileSync(path.join(dir, 'src/popup.html'), path.join(outDir, 'popup.html'));
      fs.copyFileSync(path.join(pkgDir, 'inhouse_tracker_bg.wasm'), path.join(outDir, 'inhouse_tracker_bg.wasm'));
      return { note: 'esbuild --bundle --format=esm + cp inhouse_tracker_bg.wasm dist/' };
    },
  });
});

test('esbuild: classic (IIFE) service worker, wasm elsewhere via wasmUrl', 90_000, async (t) => {
  await extensionTest(t, {
    name: 'esbuild-iife',
    moduleWorker: false,
    config: { wasmPath: 'assets/tracker.wasm' },
    build: async ({ dir, outDir, pkgDir }) => {
      // import.meta is empty in an IIFE; with wasmUrl the loader never reads it.
      await run(BIN('esbuild'), ['src/background.js', '--bundle', '--format=iife', '--outfile=dist/background.js', '--log-override:empty-import-meta=silent', '--log-level=warning'], { cwd: dir });
      await run(BIN('esbuild'), ['src/popup.js', '--bundle', '--format=iife', '--outfile=dist/popup.js', '--log-level=warning'], { cwd: dir });
      fs.copyFileSync(path.join(dir, 'src/popup.html'), path.join(outDir, 'popup.html'));
      fs.mkdirSync(path.join(outDir, 'assets'), { recursive: true });
      fs.copyFileSync(path.join(pkgDir, 'inhouse_tracker_bg.wasm'), path.join(outDir, 'assets/tracker.wasm'));
      return { note: "esbuild --format=iife, wasmUrl: chrome.runtime.getURL('assets/tracker.wasm')" };
    },
  });
});

test('vite: build with background + popup inputs (wasm emitted as an asset)', 120_000, async (t) => {
  await extensionTest(t, {
    name: 'vite',
    build: async ({ dir }) => {
      fs.writeFileSync(path.join(dir, 'vite.config.js'), `import { defineConfig } from 'vite';
import { resolve } from 'node:path';

export default defineConfig({
  root: 'src',
  build: {
    outDir: '../dist',
    emptyOutDir: true,
    rollupOptions: {
      input: { background: resolve(import.meta.dirname, 'src/background.js'), popup: resolve(import.meta.dirname, 'src/popup.html') },
      output: { entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js', assetFileNames: 'assets/[name]-[hash][extname]' },
    },
  },
});
`);
      const r = await run(BIN('vite'), ['build', '--logLevel', 'warn'], { cwd: dir, timeoutMs: 90_000 });
      if (r.out.trim()) log(`vite says: ${r.out.trim().split('\n').slice(0, 5).join(' | ')}`);
      return { note: 'vite build, no plugin, no wasmUrl' };
    },
  });
});

test('webpack 5: production build (wasm emitted as asset/resource)', 120_000, async (t) => {
  await extensionTest(t, {
    name: 'webpack',
    moduleWorker: false,
    build: async ({ dir, outDir }) => {
      fs.writeFileSync(path.join(dir, 'webpack.config.js'), `import path from 'node:path';

export default {
  mode: 'production',
  devtool: false, // never 'eval*': MV3's CSP forbids eval
  entry: { background: './src/background.js', popup: './src/popup.js' },
  output: { path: path.resolve(import.meta.dirname, 'dist'), filename: '[name].js', clean: true },
};
`);
      const r = await run(BIN('webpack'), ['--config', 'webpack.config.js', '--no-stats'], { cwd: dir, timeoutMs: 90_000 });
      if (/warning|error/i.test(r.out)) log(`webpack says: ${r.out.trim().split('\n').slice(0, 8).join(' | ')}`);
      fs.copyFileSync(path.join(dir, 'src/popup.html'), path.join(outDir, 'popup.html'));
      return { note: 'webpack, no loader, no wasmUrl' };
    },
  });
});

// The framework versions the recipes are tested with (installed from the npm registry into the
// scratch project, as a customer's project would).
const WXT_VERSION = '0.21.4';

// A WXT fixture copied into `dir`, its packages installed, built with `wxt build`, and the
// extension copied to `outDir`; the build's output.
async function wxtBuild({ dir, outDir }, fixture, packages, { args = [], output = 'chrome-mv3', env: extraEnv = {} } = {}) {
  fs.cpSync(path.join(FIXTURES, fixture), dir, { recursive: true });
  const env = { WXT_TELEMETRY: 'false', ...extraEnv };
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', `wxt@${WXT_VERSION}`, ...packages], { cwd: dir, timeoutMs: 150_000, env });
  const r = await run(path.join(dir, 'node_modules/.bin/wxt'), ['build', ...args], { cwd: dir, timeoutMs: 120_000, env });
  fs.cpSync(path.join(dir, `.output/${output}`), outDir, { recursive: true });
  return r;
}

test('WXT: a module background, the recipe of the README, built with wxt build', 180_000, async (t) => {
  await extensionTest(t, {
    name: 'wxt',
    build: async ({ dir, outDir }) => {
      const r = await wxtBuild({ dir, outDir }, 'wxt', []);
      const built = JSON.parse(fs.readFileSync(path.join(outDir, 'manifest.json'), 'utf8'));
      eq(built.background, { type: 'module', service_worker: 'background.js' }, 'WXT made a module background');
      eq(built.permissions, ['storage', 'alarms'], 'the permissions of the recipe');
      assert(/'wasm-unsafe-eval'/.test(built.content_security_policy?.extension_pages ?? ''), 'the CSP of the recipe');
      const took = (r.out.match(/Built extension in ([\d.]+ \w+)/) ?? [])[1] ?? '?';
      return { note: `wxt@${WXT_VERSION} build (${took}), type: 'module' background, no wasmUrl` };
    },
  });
});

test('WXT for Firefox: the same recipe built with wxt build -b firefox --mv3 runs in Firefox\'s event page, the gecko id as x-inhouse-app', 240_000, async (t) => {
  const server = await startServer({ tokens: [`${TOKEN.tokenId}:${TOKEN.tokenSecret}:${GECKO_ID}`] });
  t.cleanup(() => server.stop());
  const { dir } = await scratchProject(t.slug, t.tarball);
  writeSources(dir, { ...TOKEN, baseUrl: server.baseUrl, variant: 'wxt-firefox' });
  const outDir = path.join(dir, 'dist');
  const r = await wxtBuild({ dir, outDir }, 'wxt', [], {
    args: ['-b', 'firefox', '--mv3'],
    output: 'firefox-mv3',
    env: { INHOUSE_API_ORIGIN: new URL(server.baseUrl).origin, INHOUSE_GECKO_ID: GECKO_ID },
  });
  const built = JSON.parse(fs.readFileSync(path.join(outDir, 'manifest.json'), 'utf8'));
  eq(built.manifest_version, 3, 'an MV3 build');
  eq(built.background, { type: 'module', scripts: ['background.js'] }, 'WXT made a module event page');
  eq(built.browser_specific_settings?.gecko?.id, GECKO_ID, 'the gecko id of the recipe');
  const scan = scanForRemoteCode(outDir, [server.api, INHOUSE_DEFAULT_API]);
  eq(scan.findings, [], 'remote code / remote URLs in the built extension');
  const checked = await checkBuilt(dir, outDir, server);
  // Optional permissions granted without Firefox's prompt (the click is still needed).
  const firefox = await launchFirefox({ extDir: outDir, prefs: { 'extensions.webextOptionalPermissionPrompts': false } });
  t.cleanup(() => firefox.close());
  const stored = async (eventName) => {
    const e = await waitFor(async () => (await server.events()).events.find((x) => x.event_name === eventName), { timeoutMs: 20_000, what: `${eventName} at the server` });
    eq(e.headers['x-inhouse-app'], GECKO_ID, `${eventName}: x-inhouse-app`);
    eq(e.properties.$browser, 'Firefox', `${eventName}: $browser`);
    return e;
  };
  const popup = await firefox.page('popup.html');
  await popup.waitForSelector('body[data-ready="1"]', { timeout: 10_000 });
  // Until the user shares technical and interaction data, the tracker is opted out.
  const early = await popup.evaluate(async () => (await browser.runtime.getBackgroundPage()).pkgTest.early);
  eq(early.status, 'disabled', 'track() before the consent');
  await popup.click('#share-usage-data');
  eq(await popup.evaluate(() => globalThis.consent), true, 'permissions.request granted');
  await waitFor(() => popup.evaluate(async () => (await browser.runtime.getBackgroundPage()).pkgTest.tracker.isEnabled()), { timeoutMs: 10_000, what: 'the tracker opted in' });
  eq((await stored('$extension_installed')).properties.$source, 'background', '$extension_installed from the event page after the grant');
  const viaClient = await popup.evaluate(() => globalThis.pkgClient.track('pkg_popup', { variant: 'wxt-firefox' }));
  eq(viaClient.status, 'queued', 'client track() from the popup');
  eq((await stored('pkg_popup')).properties.$source, 'popup', 'pkg_popup from the popup');
  const took = (r.out.match(/Built extension in ([\d.]+ \w+)/) ?? [])[1] ?? '?';
  log(`wxt@${WXT_VERSION} build -b firefox --mv3 (${took}): event page, gecko id ${GECKO_ID}; opted out until the popup's grant, then install and popup events stored; ${checked}`);
});

const WXT_ANALYTICS_VERSION = '0.5.4';

test('WXT with @wxt-dev/analytics: the Inhouse provider routes analytics.track() into the tracker', 180_000, async (t) => {
  await extensionTest(t, {
    name: 'wxt-analytics',
    build: async ({ dir, outDir }) => {
      await wxtBuild({ dir, outDir }, 'wxt-analytics', [`@wxt-dev/analytics@${WXT_ANALYTICS_VERSION}`]);
      const popupJs = fs.readdirSync(path.join(outDir, 'chunks')).filter((f) => f.startsWith('popup')).map((f) => fs.statSync(path.join(outDir, 'chunks', f)).size);
      assert(popupJs.every((n) => n < 60_000), `the popup does not carry the tracker (chunks: ${popupJs})`);
      return { note: `wxt@${WXT_VERSION} with @wxt-dev/analytics@${WXT_ANALYTICS_VERSION} and the Inhouse provider` };
    },
    after: async ({ server, page }) => {
      const from = async (name, where) =>
        waitFor(async () => (await server.events()).events.find((x) => x.event_name === name && x.properties.from === where), { timeoutMs: 20_000, what: `${name} from the ${where}` });
      await from('wxt_analytics_event', 'background');
      // From the popup: @wxt-dev/analytics relays it to the background's provider, over a port
      // that died with the worker the test stopped (it does not reconnect): a fresh page.
      await page.reload();
      await page.waitForSelector('body[data-ready="1"]', { timeout: 10_000 });
      await page.evaluate(() => globalThis.pkgClient.analytics.track('wxt_analytics_event', { from: 'popup' }));
      const relayed = await from('wxt_analytics_event', 'popup');
      assert(typeof relayed.properties.$install_id === 'string', 'stored with the tracker\'s context');
      eq(relayed.properties.wxt_event_name, undefined, 'a valid name is sent as it is, without wxt_event_name');
      // Names of @wxt-dev/analytics's README, which the rule refuses: mapped, the original kept.
      await page.evaluate(() => globalThis.pkgClient.analytics.track('some-event', { from: 'popup' }));
      eq((await from('some_event', 'popup')).properties.wxt_event_name, 'some-event', "'some-event' stored as some_event");
      eq((await from('button_clicked', 'background')).properties.wxt_event_name, 'Button Clicked', "'Button Clicked' stored as button_clicked");
      log('wxt-analytics: analytics.track() from the background and the popup stored through the Inhouse provider; README names mapped (some-event → some_event, Button Clicked → button_clicked)');
    },
  });
});

test('WXT provider in node: event names mapped to the rule, rejections reported (tests/package/wxt-analytics.test.mjs)', 60_000, async (t) => {
  // The provider module as installed from the tarball, with @wxt-dev/analytics stubbed.
  const { pkgDir } = await scratchProject(t.slug, t.tarball);
  const r = await run(process.execPath, ['--test', '--test-reporter=tap', path.join(HERE, 'wxt-analytics.test.mjs')], {
    cwd: ROOT, timeoutMs: 50_000, env: { WXT_ANALYTICS_MODULE: path.join(pkgDir, 'wxt-analytics.js') },
  });
  const count = (re) => Number((r.out.match(re) ?? [])[1]);
  const [pass, fail] = [count(/^# pass (\d+)/m), count(/^# fail (\d+)/m)];
  assert(pass > 0 && fail === 0, `node --test wxt-analytics.test.mjs: ${pass} passed, ${fail} failed (${r.out.slice(-300)})`);
  log(`wxt-analytics.test.mjs against the installed wxt-analytics.js: ${pass}/${pass}`);
});

const PLASMO_VERSION = '0.90.5';

/** A solid-colour PNG (Plasmo requires assets/icon.png and resizes it). */
function png(size) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'ascii');
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(Buffer.concat([head.subarray(4), data])), 0);
    return Buffer.concat([head, data, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(size * 3, 0x4f)]);
  const pixels = zlib.deflateSync(Buffer.concat(Array.from({ length: size }, () => row)));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', pixels), chunk('IEND', Buffer.alloc(0))]);
}

test('Plasmo: background.ts and a React popup, built with plasmo build', 240_000, async (t) => {
  await extensionTest(t, {
    name: 'plasmo',
    moduleWorker: false,
    background: 'static/background/index.js',
    // React's bundle names XML namespaces and its error-decoder page: text, never fetched.
    otherOrigins: ['http://www.w3.org', 'https://reactjs.org'],
    build: async ({ dir, outDir }) => {
      const fixture = path.join(FIXTURES, 'plasmo');
      // Plasmo builds from src/ when it exists: the shared fixture's plain pages give way to its own.
      for (const f of ['background.js', 'popup.js', 'popup.html']) fs.rmSync(path.join(dir, 'src', f));
      for (const f of ['background.ts', 'popup.tsx']) fs.copyFileSync(path.join(fixture, f), path.join(dir, 'src', f));
      fs.copyFileSync(path.join(fixture, 'tsconfig.json'), path.join(dir, 'tsconfig.json'));
      fs.mkdirSync(path.join(dir, 'assets'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'assets/icon.png'), png(128));
      // Plasmo takes the manifest's extra keys from package.json.
      const pkgPath = path.join(dir, 'package.json');
      const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8'));
      Object.assign(pkg, { displayName: 'package test (Plasmo)', version: '0.1.0', manifest: JSON.parse(fs.readFileSync(path.join(fixture, 'manifest.json'), 'utf8')) });
      fs.writeFileSync(pkgPath, JSON.stringify(pkg, null, 2));
      await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', `plasmo@${PLASMO_VERSION}`, 'react@18.2.0', 'react-dom@18.2.0'], { cwd: dir, timeoutMs: 200_000 });
      const began = Date.now();
      await run(path.join(dir, 'node_modules/.bin/plasmo'), ['build'], { cwd: dir, timeoutMs: 150_000, env: { NODE_ENV: 'production' } });
      const took = Date.now() - began;
      fs.cpSync(path.join(dir, 'build/chrome-mv3-prod'), outDir, { recursive: true });
      const built = JSON.parse(fs.readFileSync(path.join(outDir, 'manifest.json'), 'utf8'));
      eq(built.permissions, ['storage', 'alarms'], 'the permissions of the recipe');
      assert(/'wasm-unsafe-eval'/.test(built.content_security_policy?.extension_pages ?? ''), 'the CSP of the recipe');
      return { note: `plasmo@${PLASMO_VERSION} build (${took} ms), classic background, no wasmUrl` };
    },
  });
});

// ---------------------------------------------------------------- runner
const only = process.env.PKG_ONLY;
let passed = 0;
let failed = 0;
let skipped = 0;
const started = Date.now();
fs.mkdirSync(TMP, { recursive: true });

let tarball = findTarball();
if (!tarball) {
  console.log('[package] no dist/inhouse-chrome-tracker-*.tgz: running ./scripts/build-pkg.sh');
  try {
    await run(path.join(ROOT, 'scripts/build-pkg.sh'), [], { cwd: ROOT, timeoutMs: 600_000 });
  } catch (e) {
    console.log(e.message);
  }
  tarball = findTarball();
}
const missing = !tarball ? 'no package tarball (build-pkg.sh failed)' : !fs.existsSync(SERVER_BIN) ? `${path.relative(ROOT, SERVER_BIN)} is missing (cargo build --release -p inhouse-server)` : null;
if (tarball) console.log(`[package] testing ${path.relative(ROOT, tarball)}`);

for (const [i, tc] of tests.entries()) {
  if (only && !only.split('|').some((part) => tc.name.includes(part))) {
    skipped++;
    continue;
  }
  if (missing) {
    console.log(`FAIL ${tc.name}: ${missing}`);
    failed++;
    continue;
  }
  const t = {
    slug: `${i + 1}-${tc.name.split(':')[0].replace(/[^a-z0-9]+/gi, '-').replace(/-+$/, '').toLowerCase()}`,
    tarball,
    cleanups: [],
    cleanup(fn) {
      this.cleanups.push(fn);
    },
  };
  const t0 = Date.now();
  let timer;
  try {
    await Promise.race([
      tc.fn(t),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${tc.timeoutMs} ms`)), tc.timeoutMs))),
    ]);
    passed++;
    console.log(`ok   ${tc.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${tc.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n     ${e instanceof AssertionError ? e.message : e.stack ?? e}`);
  } finally {
    clearTimeout(timer);
    for (const fn of t.cleanups.reverse()) await Promise.resolve().then(fn).catch(() => {});
    if (!process.env.PKG_KEEP) fs.rmSync(path.join(TMP, t.slug), { recursive: true, force: true });
  }
}
console.log(`[package] ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`package: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
