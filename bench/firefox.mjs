// The same figures in Firefox (issue 24): the bench extension made into a Firefox add-on (its
// background an event page), in Debian's firefox-esr, headless, driven over WebDriver BiDi. The
// driver talks to the background with the same `bench` messages as in Chromium, from the helper
// page; a "wake" is Firefox's own stop of the event page (DebugUtils.terminateBackgroundScript)
// followed by a message. Figures: the first start on a fresh profile, track() in a burst, and the
// wake with COLD_N events stored (median of COLD_REPS), each beside Chrome's of the same run.
import fs from 'node:fs';
import path from 'node:path';
import { GECKO_ID, launchFirefox, makeFirefoxExtension } from '../scripts/lib/firefox.mjs';
import { median } from './report.mjs';

/** The add-on's id: `x-inhouse-app` of its requests. */
export const FIREFOX_APP_ID = GECKO_ID;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The Chrome bench extension `ext` copied to `dir` as a Firefox add-on, sending with `token`. */
export function firefoxExtension(ext, dir, config) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.cpSync(ext, dir, { recursive: true });
  makeFirefoxExtension(dir, GECKO_ID);
  fs.writeFileSync(path.join(dir, 'config.js'), `export default ${JSON.stringify(config)};\n`);
  return dir;
}

async function open(extDir) {
  const firefox = await launchFirefox({ extDir });
  const helper = await firefox.page('bench.html');
  const msg = async (op, arg) => {
    const r = await helper.evaluate((m) => chrome.runtime.sendMessage(m), { type: 'bench', op, arg });
    if (!r?.ok) throw new Error(`bench op ${op} failed in Firefox: ${r?.error}`);
    return { ...r.result, _instance: r.instance };
  };
  // The first message can come before the event page registered its listener: asked again.
  const info = async () => {
    for (let i = 0; ; i++) {
      try {
        return await msg('info');
      } catch (e) {
        if (i >= 50) throw e;
        await sleep(100);
      }
    }
  };
  return { firefox, msg, info };
}

/** Runs the Firefox figures; `srv` is the bench's server, `opt` its options. */
export async function firefoxRun(extDir, srv, opt, log) {
  const res = { version: null };
  // (a) first start on a fresh profile, then track() in a burst of N with the server down.
  {
    const b = await open(extDir);
    try {
      res.version = await b.firefox.browser.version();
      await srv.ctl('/reset', {});
      const i0 = await b.info();
      res.first_start = { ready_from_t0_ms: i0.ready_from_t0_ms, ready_from_worker_origin_ms: i0.ready_from_worker_origin_ms, marks: i0.marks };
      await srv.ctl('/faults', { down: true });
      const loop = await b.msg('burst', { run: `ff-burst-${Date.now().toString(36)}`, n: opt.n });
      res.burst = { n: opt.n, us_per_call: loop.us_per_call, loop_ms: loop.loop_ms };
      log(`  Firefox ${res.version}: first start ${i0.ready_from_t0_ms.toFixed(1)} ms (t0 → ready), track ${loop.us_per_call.toFixed(2)} µs/call in a burst of ${opt.n}`);
    } finally {
      await srv.ctl('/faults', { clear: true, down: false }).catch(() => {});
      await b.firefox.close();
    }
  }
  // (b) the wake with COLD_N stored: the event page stopped COLD_REPS times, woken by a message.
  {
    const b = await open(extDir);
    try {
      await b.info();
      await srv.ctl('/faults', { down: true });
      await b.msg('burst', { run: `ff-cold-${Date.now().toString(36)}`, n: opt.coldN });
      for (let i = 0; i < 100; i++) {
        const s = await b.msg('burstStatus');
        if (s.resolved) break;
        await sleep(100);
      }
      await sleep(500); // the burst's writes committed
      const runs = [];
      for (let i = 0; i < opt.coldReps; i++) {
        const before = (await b.msg('timings'))._instance;
        await b.firefox.stopBackground();
        await sleep(300);
        const w = await b.info();
        runs.push({ restarted: w._instance !== before, queued: w.stats.queued, ready_from_t0_ms: w.ready_from_t0_ms, ready_from_worker_origin_ms: w.ready_from_worker_origin_ms });
      }
      res.wake = {
        stored: opt.coldN,
        restarts_confirmed: runs.filter((r) => r.restarted).length,
        queued_median: median(runs.map((r) => r.queued)),
        ready_from_t0_ms_median: median(runs.map((r) => r.ready_from_t0_ms)),
        ready_from_worker_origin_ms_median: median(runs.map((r) => r.ready_from_worker_origin_ms)),
        runs,
      };
      log(`  Firefox wake with ${opt.coldN} stored (${res.wake.restarts_confirmed}/${opt.coldReps} stops confirmed): median ${res.wake.ready_from_t0_ms_median?.toFixed(2)} ms t0 → ready`);
    } finally {
      await srv.ctl('/faults', { clear: true, down: false }).catch(() => {});
      await b.firefox.close();
    }
  }
  return res;
}
