// Harness of the package tests (tests/package/run.mjs): the packed tarball, scratch npm projects
// that install it like a customer would, extension keys/ids, the local inhouse-server, and
// Chromium with an unpacked extension. The server and Chromium pieces come from scripts/lib/harness.mjs,
// shared with the demo and the e2e tests.
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { ROOT, CHROMIUM, CHROMIUM_FLAGS, chromium, stopServiceWorkers, waitFor as sharedWaitFor } from '../../scripts/lib/harness.mjs';

export { ROOT };
export const HERE = path.join(ROOT, 'tests/package');
export const TMP = path.join(HERE, '.tmp');
export const FIXTURES = path.join(HERE, 'fixtures');
export const PACKAGE = '@inhouse/chrome-tracker';
export const BIN = (name) => path.join(ROOT, 'node_modules/.bin', name);
export { SERVER_BIN, startServer } from '../../scripts/lib/harness.mjs';

export class AssertionError extends Error {}
export function assert(cond, msg) {
  if (!cond) throw new AssertionError(msg);
}
export function eq(actual, expected, msg) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new AssertionError(`${msg}: expected ${e}, got ${a}`);
}

/** The shared waitFor, failing as an assertion (the runner prints those without a stack). */
export const waitFor = (fn, opts) => sharedWaitFor(fn, { intervalMs: 200, ...opts }).catch((e) => {
  throw new AssertionError(e.message);
});

/** Runs a command (no shell) with a time bound; rejects with its output on failure. */
export function run(cmd, args, { cwd, timeoutMs = 120_000, env } = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    execFile(cmd, args, { cwd, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 20 * 1024 * 1024, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const out = `${stdout}${stderr}`;
      if (err) {
        const why = err.killed ? `timed out after ${timeoutMs} ms` : `exit ${err.code}`;
        reject(new Error(`${path.basename(cmd)} ${args.join(' ')} (in ${path.relative(ROOT, cwd ?? ROOT) || '.'}): ${why}\n${out.slice(-4000)}`));
      } else resolve({ out, ms: Date.now() - started });
    });
  });
}

/** The tarball under test: $PKG_TARBALL, else the one dist/inhouse-chrome-tracker-*.tgz. */
export function findTarball() {
  if (process.env.PKG_TARBALL) return path.resolve(process.env.PKG_TARBALL);
  const dist = path.join(ROOT, 'dist');
  const found = fs.existsSync(dist) ? fs.readdirSync(dist).filter((f) => /^inhouse-chrome-tracker-.*\.tgz$/.test(f)) : [];
  if (found.length !== 1) return null;
  return path.join(dist, found[0]);
}

/**
 * A scratch extension project under .tmp/<name>: a package.json, and the tarball installed with
 * npm exactly as a customer would (`npm install <tarball>`; no registry access is needed).
 */
export async function scratchProject(name, tarball) {
  const dir = path.join(TMP, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: `scratch-${name}`, private: true, version: '1.0.0', type: 'module' }, null, 2) + '\n',
  );
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--offline', tarball], { cwd: dir, timeoutMs: 60_000 });
  const pkgDir = path.join(dir, 'node_modules', PACKAGE);
  assert(fs.existsSync(path.join(pkgDir, 'package.json')), `${PACKAGE} is installed in ${dir}`);
  return { dir, pkgDir };
}

/**
 * A fresh extension key: the manifest `key` (base64 SPKI) and the extension id Chrome derives
 * from it (the first 128 bits of its SHA-256, in the letters a–p).
 */
export function extensionKey() {
  const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const hex = crypto.createHash('sha256').update(der).digest('hex').slice(0, 32);
  const id = [...hex].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join('');
  return { key: der.toString('base64'), id };
}

/** The manifest every scratch extension gets (what the README tells customers to write). */
export function manifest({ key, name, background = 'background.js', moduleWorker = true }) {
  return {
    manifest_version: 3,
    name: `inhouse package test: ${name}`,
    version: '1.2.3',
    key,
    minimum_chrome_version: '119',
    background: moduleWorker ? { service_worker: background, type: 'module' } : { service_worker: background },
    action: { default_popup: 'popup.html' },
    permissions: ['storage', 'alarms'],
    // The Inhouse API, and the tests' local server.
    host_permissions: ['https://api.tryinhouse.co/*', 'http://127.0.0.1/*'],
    content_security_policy: { extension_pages: "script-src 'self' 'wasm-unsafe-eval'; object-src 'self'" },
  };
}

/**
 * Chromium with the unpacked extension at extDir loaded, on a fresh profile. Collects console
 * messages of the extension's worker and pages.
 */
export async function launchExtension({ extDir, userDataDir, extensionId, worker = 'background.js' }) {
  const consoleLog = [];
  const ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_FLAGS, `--disable-extensions-except=${extDir}`, `--load-extension=${extDir}`],
  });
  const origin = `chrome-extension://${extensionId}/`;
  const watch = (w) => {
    if (w.url().startsWith(origin)) w.on('console', (m) => consoleLog.push({ where: 'worker', type: m.type(), text: m.text() }));
  };
  ctx.on('serviceworker', watch);
  ctx.serviceWorkers().forEach(watch);
  const watchPage = (p) => {
    p.on('console', (m) => consoleLog.push({ where: p.url(), type: m.type(), text: m.text() }));
    p.on('pageerror', (e) => consoleLog.push({ where: p.url(), type: 'pageerror', text: String(e) }));
  };
  ctx.on('page', watchPage);
  return {
    ctx,
    consoleLog,
    origin,
    async worker(timeoutMs = 15_000) {
      const pick = () => ctx.serviceWorkers().find((w) => w.url() === origin + worker);
      const deadline = Date.now() + timeoutMs;
      let w = pick();
      while (!w && Date.now() < deadline) {
        await ctx.waitForEvent('serviceworker', { timeout: Math.max(100, Math.min(1000, deadline - Date.now())) }).catch(() => {});
        w = pick();
      }
      if (!w) {
        const seen = ctx.serviceWorkers().map((x) => x.url());
        throw new AssertionError(`the extension service worker ${origin + worker} did not start (workers: ${JSON.stringify(seen)}; console: ${JSON.stringify(consoleLog)})`);
      }
      return w;
    },
    async page(p) {
      const page = await ctx.newPage();
      await page.goto(origin + p);
      return page;
    },
    /** Stops the extension's service worker the way Chrome does when it is idle. */
    stopWorkers: (page) => stopServiceWorkers(ctx, page),
    close: () => ctx.close().catch(() => {}),
  };
}

/** Every file under dir (relative paths). */
export function listFiles(dir, base = dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    return d.isDirectory() ? listFiles(p, base) : [path.relative(base, p)];
  });
}
