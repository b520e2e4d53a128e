// What every driver of a real browser in this repo shares (the demo, the e2e tests, the package
// tests): the local Inhouse server on ephemeral ports, Chromium's flags for this machine, waiting
// for a condition, and stopping an extension's service worker the way Chrome does when idle.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SERVER_BIN = path.join(ROOT, 'target/release/inhouse-server');
const require = createRequire(path.join(ROOT, 'package.json'));
export const { chromium } = require('playwright-core');

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
// --no-sandbox: Chromium as root. The background-networking flags: this closed network refuses
// Chromium's calls home, noisily (see ../shared/TOOLCHAIN.md).
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--no-default-browser-check',
];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn() until it returns a truthy value; throws naming `what` after timeoutMs. */
export async function waitFor(fn, { timeoutMs = 20_000, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await sleep(intervalMs);
  }
}

// Every server this process started dies with it, whatever way it exits (a crash, a watchdog).
const children = new Set();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && !c.signalCode) c.kill('SIGKILL');
});

/**
 * Starts target/release/inhouse-server on ephemeral ports. tokens: ["id:secret:app", ...].
 * Returns its URLs and helpers for its control port.
 */
export async function startServer({ tokens = [], args = [], quiet = true } = {}) {
  if (!fs.existsSync(SERVER_BIN)) throw new Error(`${SERVER_BIN} is missing: cargo build --release -p inhouse-server`);
  const argv = ['--port', '0', '--control-port', '0', ...tokens.flatMap((t) => ['--token', t]), ...args, ...(quiet ? ['--quiet'] : [])];
  const child = spawn(SERVER_BIN, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
  });
  const line = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`inhouse-server did not start: ${stderr}`)), 10_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/inhouse-server listening api=(\S+) control=(\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.on('exit', (code) => reject(new Error(`inhouse-server exited (${code}): ${stderr}`)));
  }).catch((e) => {
    child.kill('SIGKILL');
    throw e;
  });
  child.stdout.resume();
  let exit = null;
  child.on('exit', (code, signal) => {
    exit = { code, signal };
  });
  const [, api, control] = line;
  const ctl = async (p, body, method) => {
    const res = await fetch(control + p, {
      method: method ?? (body === undefined ? 'GET' : 'POST'),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`control ${p}: ${res.status} ${text}`);
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  };
  return {
    api,
    control,
    baseUrl: `${api}/v1/api`,
    ctl,
    events: () => ctl('/events'),
    eventsText: () => ctl('/events?format=text'),
    requests: () => ctl('/requests'),
    faults: (f) => ctl('/faults', f),
    reset: () => ctl('/reset', {}),
    /** Replaces the server's credential registry: [{token_id, token_secret, app_id}]. */
    setTokens: (list) => ctl('/tokens', list),
    stderr: () => stderr,
    /** null while it runs, else {code, signal}. */
    exitStatus: () => exit,
    async stop() {
      if (child.exitCode !== null || child.signalCode) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await Promise.race([gone, sleep(5000)]);
      clearTimeout(t);
    },
  };
}

/** Stops every service worker of the browser context, the way Chrome does when they are idle. */
export async function stopServiceWorkers(ctx, page) {
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('ServiceWorker.enable');
  await cdp.send('ServiceWorker.stopAllWorkers');
  await cdp.detach().catch(() => {});
}

/** How many events were stored once, twice, ...: `{1: n, 2: n, ...}` by `$event_id`. */
export function copiesPerEvent(events) {
  const copies = new Map();
  for (const e of events) copies.set(e.properties.$event_id, (copies.get(e.properties.$event_id) ?? 0) + 1);
  const dist = {};
  for (const c of copies.values()) dist[c] = (dist[c] ?? 0) + 1;
  return dist;
}
