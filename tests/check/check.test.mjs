// `chrome-tracker check` (pkg-template/check.js and cli.js, as built into dist/pkg): a clean
// extension has no finding; each fixture breaks one thing and must give exactly that finding (so
// each check is seen failing on what it guards); a .zip reads as its directory does; the demo
// extension (Chrome and Firefox builds) comes out clean with its tracking plan (issue 25).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, after } from 'node:test';
import { fileURLToPath } from 'node:url';

import { zipDirectory } from '../../scripts/lib/zip.mjs';
import { firefoxManifest } from '../../scripts/lib/firefox.mjs';
import { buildDemo } from '../../extension-demo/tools/build.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PKG = process.env.INHOUSE_PKG_DIR ?? path.join(ROOT, 'dist/pkg');
const { checkExtension, readExtension } = await import(path.join(PKG, 'check.js'));
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'inhouse-check-'));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));

// ---------------------------------------------------------------- a clean extension, then one fault each

const MANIFEST = {
  manifest_version: 3,
  name: 'check fixture',
  version: '1.0.0',
  background: { service_worker: 'background.js', type: 'module' },
  action: { default_popup: 'popup.html' },
  permissions: ['storage', 'alarms'],
  host_permissions: ['https://api.tryinhouse.co/*'],
  content_security_policy: { extension_pages: "script-src 'self' 'wasm-unsafe-eval'; object-src 'self'" },
  content_scripts: [{ matches: ['https://*.example.com/*'], js: ['content.js'] }],
  web_accessible_resources: [{ resources: ['vendor/inhouse/client.js'], matches: ['https://*.example.com/*'] }],
};

const SOURCES = {
  'background.js': "import { init } from './vendor/inhouse/index.js';\nconst tracker = init({ tokenId: 't', tokenSecret: 's' });\ntracker.track('app_opened');\n",
  'content.js': "(async () => {\n  const { track } = await import(chrome.runtime.getURL('vendor/inhouse/client.js'));\n  track('page_seen', { path: location.pathname });\n})();\n",
  'popup.html': '<!doctype html><meta charset="utf-8"><script type="module" src="popup.js"></script>',
  'popup.js': "import { track } from './vendor/inhouse/client.js';\ntrack('popup_opened');\n",
};

/** Writes a fixture extension: the clean one, changed by `edit(manifest, files)`. */
function fixture(name, edit = () => {}) {
  const dir = path.join(TMP, name);
  const manifest = structuredClone(MANIFEST);
  const files = { ...SOURCES };
  for (const f of ['index.js', 'inhouse_tracker.js', 'inhouse_tracker_bg.wasm', 'client.js']) files[`vendor/inhouse/${f}`] = fs.readFileSync(path.join(PKG, f));
  edit(manifest, files);
  if (!('manifest.json' in files)) files['manifest.json'] = JSON.stringify(manifest, null, 2);
  for (const [f, data] of Object.entries(files)) {
    if (data === undefined) continue;
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), data);
  }
  return dir;
}

const check = (dir, options) => checkExtension(readExtension(dir), options);
const ids = (r) => r.findings.map((f) => `${f.severity} ${f.id}`);

test('a clean extension has no finding, read from its directory, a stored zip or a deflated one', () => {
  const dir = fixture('clean');
  const r = check(dir, { plan: { app_opened: {}, page_seen: {}, popup_opened: {} } });
  assert.deepEqual(r.findings, []);
  assert.equal(r.usesTracker, true);
  assert.equal(r.target, 'chrome');
  for (const deflate of [false, true]) {
    const zip = path.join(TMP, `clean-${deflate}.zip`);
    zipDirectory(dir, zip, { deflate });
    const z = check(zip, { plan: { app_opened: {}, page_seen: {}, popup_opened: {} } });
    assert.deepEqual(z.findings, [], `zip (deflate ${deflate})`);
    assert.equal(readExtension(zip).size, readExtension(dir).size);
  }
});

// Each fault, the finding it must give (and no other), and where.
const FAULTS = [
  ['no storage permission', (m) => (m.permissions = ['alarms']), 'error permission-storage', 'manifest.json'],
  ['no alarms permission', (m) => (m.permissions = ['storage']), 'error permission-alarms', 'manifest.json'],
  ['no CSP (the default forbids wasm)', (m) => delete m.content_security_policy, 'error csp-wasm', 'manifest.json'],
  ["a CSP without 'wasm-unsafe-eval'", (m) => (m.content_security_policy.extension_pages = "script-src 'self'; object-src 'self'"), 'error csp-wasm', 'manifest.json'],
  ['no host permission for the API', (m) => (m.host_permissions = ['https://example.com/*']), 'warning host-permission', 'manifest.json'],
  ['no .wasm at all', (m, f) => (f['vendor/inhouse/inhouse_tracker_bg.wasm'] = undefined), 'error wasm-missing', 'vendor/inhouse/index.js'],
  ['the .wasm moved where the loader does not look', (m, f) => {
    f['assets/tracker.wasm'] = f['vendor/inhouse/inhouse_tracker_bg.wasm'];
    f['vendor/inhouse/inhouse_tracker_bg.wasm'] = undefined;
  }, 'error wasm-not-found', 'vendor/inhouse/index.js'],
  ['a module background declared classic', (m) => delete m.background.type, 'error background-not-module', 'background.js'],
  ['a minified module background declared classic', (m, f) => {
    delete m.background.type;
    f['background.js'] = 'var t=1;export{t as tracker};\n';
  }, 'error background-not-module', 'background.js'],
  ['the background script missing', (m, f) => (f['background.js'] = undefined), 'error background-missing', 'manifest.json'],
  ['no background at all', (m) => delete m.background, 'error no-background', 'manifest.json'],
  ['the client not web-accessible to the content script', (m) => (m.web_accessible_resources = []), 'error client-not-web-accessible', 'content.js'],
  ['the client web-accessible to other sites only', (m) => (m.web_accessible_resources[0].matches = ['https://other.org/*']), 'error client-not-web-accessible', 'content.js'],
  ['the client missing', (m, f) => (f['vendor/inhouse/client.js'] = undefined), 'error client-missing', 'content.js'],
  ['a remote <script src>', (m, f) => (f['popup.html'] += '<script src="https://cdn.example.com/sdk.js"></script>'), 'error remote-code', 'popup.html:1'],
  ['importScripts of a remote URL', (m, f) => (f['background.js'] += "importScripts('https://example.com/a.js');\n"), 'error remote-code', 'background.js:4'],
  ['import() of a remote URL', (m, f) => (f['popup.js'] += "import('https://example.com/m.js');\n"), 'error remote-code', 'popup.js:3'],
  ["a known SDK's CDN loader", (m, f) => (f['popup.js'] += "const s = document.createElement('script'); s.src = 'https://cdn.segment.com/analytics.js/v1/KEY/analytics.min.js';\n"), 'error remote-code', 'popup.js:3'],
  ['eval', (m, f) => (f['popup.js'] += "eval('1 + 1');\n"), 'error eval', 'popup.js:3'],
  ['new Function', (m, f) => (f['background.js'] += "const f = new Function('a', 'return a');\n"), 'error eval', 'background.js:4'],
  ['a Firefox build without a gecko id', (m) => {
    Object.assign(m, firefoxManifest(m, 'a@example.com', { required: ['none'], optional: ['technicalAndInteraction'] }));
    delete m.browser_specific_settings.gecko.id;
  }, 'error gecko-id', 'manifest.json'],
  ['a Firefox build without data_collection_permissions', (m) => {
    Object.assign(m, firefoxManifest(m));
    delete m.browser_specific_settings.gecko.data_collection_permissions;
  }, 'error data-collection', 'manifest.json'],
  ['a Firefox build that declares no data collection', (m) => Object.assign(m, firefoxManifest(m, 'a@example.com', { required: ['none'] })), 'warning data-collection', 'manifest.json'],
  ['no manifest', (m, f) => (f['manifest.json'] = undefined), 'error manifest-missing', 'manifest.json', null],
  ['a manifest that is not JSON', () => {}, 'error manifest-invalid', 'manifest.json', '{ "manifest_version": 3, }'],
];

for (const [what, edit, expected, file, manifestText] of FAULTS) {
  test(`finds ${what}: ${expected}, in ${file}`, () => {
    const dir = fixture(what.replace(/\W+/g, '-'), (m, f) => {
      edit(m, f);
      if (manifestText !== undefined) f['manifest.json'] = manifestText ?? undefined;
    });
    const r = check(dir);
    assert.deepEqual(ids(r), [expected], JSON.stringify(r.findings, null, 1));
    const [finding] = r.findings;
    assert.equal(finding.file, file);
    assert.ok(finding.message.length > 20 && finding.fix.length > 10, JSON.stringify(finding));
  });
}

test('with a tracking plan: a track() name the plan does not know is an error at its line; the package\'s own code is not read', () => {
  const dir = fixture('plan');
  const r = check(dir, { plan: { App_Opened: {}, popup_opened: {} } });
  assert.deepEqual(r.findings.map((f) => [f.id, f.file, f.message]), [['plan-unknown-event', 'content.js:3', "track('page_seen'): the event is not in the tracking plan"]]);
});

test("the API's origin: --api, else a baseUrl in the code, else Inhouse's", () => {
  const dir = fixture('api', (m, f) => {
    f['background.js'] = f['background.js'].replace("init({ tokenId: 't', tokenSecret: 's' })", "init({ tokenId: 't', tokenSecret: 's', baseUrl: 'https://events.example.net/v1/api' })");
  });
  assert.deepEqual(check(dir).findings.map((f) => f.message), ['no host permission covers the API (https://events.example.net): every POST pays a CORS preflight']);
  assert.deepEqual(check(dir, { api: 'https://api.tryinhouse.co' }).findings, []);
});

test('reading the global object (Function("return this")) is not flagged; an extension without the tracker is not held to its needs', () => {
  const global = fixture('global', (m, f) => (f['popup.js'] += 'var g = Function("return this")();\n'));
  assert.deepEqual(check(global).findings, []);
  const plain = fixture('no-tracker', (m, f) => {
    for (const k of Object.keys(f)) if (k.startsWith('vendor/')) f[k] = undefined;
    f['background.js'] = "chrome.runtime.onInstalled.addListener(() => {});\n";
    f['content.js'] = 'console.log(1);\n';
    f['popup.js'] = 'console.log(2);\n';
    m.permissions = [];
    delete m.content_security_policy;
  });
  const r = check(plain);
  assert.equal(r.usesTracker, false);
  assert.deepEqual(r.findings, []);
});

// ---------------------------------------------------------------- the command line, and the demo

const cli = (...args) => spawnSync(process.execPath, [path.join(PKG, 'cli.js'), ...args], { encoding: 'utf8' });

test('the command: exit 0 when clean, 1 on an error (with the fix), 2 when it cannot run; --json for CI', () => {
  const clean = cli('check', fixture('cli-clean'), '--json');
  assert.equal(clean.status, 0, clean.stderr);
  assert.deepEqual(JSON.parse(clean.stdout), { ok: true, extension: path.join(TMP, 'cli-clean'), browser: 'chrome', usesTracker: true, errors: 0, warnings: 0, findings: [] });
  const broken = cli('check', fixture('cli-broken', (m) => (m.permissions = [])));
  assert.equal(broken.status, 1);
  assert.match(broken.stdout, /error {3}manifest\.json: no "storage" permission: the tracker keeps its queue in storage\.local\n {8}fix: add "storage" to "permissions"/);
  assert.match(broken.stdout, /2 errors, 0 warnings$/m);
  const missing = cli('check', path.join(TMP, 'nowhere'));
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /cannot read .*nowhere/);
  assert.equal(cli('check').status, 2);
  assert.equal(cli('check', TMP, '--bogus').status, 2);
});

test("the demo extension, Chrome's and Firefox's builds, comes out clean with its tracking plan", () => {
  const chromeDir = path.join(TMP, 'demo');
  buildDemo({ outDir: chromeDir, packageDir: PKG });
  const plan = path.join(chromeDir, 'plan.js');
  const chrome = cli('check', chromeDir, '--plan', plan, '--json');
  assert.equal(chrome.status, 0, chrome.stdout + chrome.stderr);
  assert.deepEqual(JSON.parse(chrome.stdout).findings, []);
  const firefoxDir = path.join(TMP, 'demo-firefox');
  fs.cpSync(chromeDir, firefoxDir, { recursive: true });
  const manifest = JSON.parse(fs.readFileSync(path.join(firefoxDir, 'manifest.json'), 'utf8'));
  fs.writeFileSync(path.join(firefoxDir, 'manifest.json'), JSON.stringify(firefoxManifest(manifest, 'inhouse-demo@example.com', { required: ['none'], optional: ['technicalAndInteraction'] })));
  const firefox = cli('check', firefoxDir, '--plan', plan, '--json');
  assert.equal(firefox.status, 0, firefox.stdout + firefox.stderr);
  assert.deepEqual(JSON.parse(firefox.stdout), { ...JSON.parse(firefox.stdout), browser: 'firefox', findings: [] });
});
