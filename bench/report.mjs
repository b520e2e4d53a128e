// Turns bench/out/results.json into the summary (bench/results.json) and its markdown tables.
// CLI: node bench/report.mjs [bench/out/results.json]  → prints the markdown again.
/** The median of the finite numbers of `xs` (`null` when there is none). */
export const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const num = (x) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
const ratio = (a, b) => (num(a) !== null && num(b) ? a / b : null);

// The goals (issue 26's, where it sets one; issue 17's rows kept with their targets). In labels,
// {n}, {coldN}, {dupN}, {dupStops} and {memoryN} are the run's options. `peer`: the peers' figure
// measuring the same thing (the best of the same run is shown beside ours, and the ratio is ours ÷
// it); `peerGoal`: the target is that best peer's figure times `peerFactor` (1: ours must be
// below it); `swOnly`: only peers that run in the service worker count (a page is another
// context: its timings are not comparable); `oursVsPeer`: our figure measured the peers' way, for
// the ratio.
export const GOALS = {
  cold_start_ms: { goal: 8, better: 'lower', label: 'wake with {coldN} stored → ready (t0.js → tracker.ready, median)', unit: 'ms', digits: 2 },
  cold_start_with_backlog_ms: { goal: 10, better: 'lower', label: 'wake with {n} stored → ready', unit: 'ms', digits: 1 },
  init_ms: { goal: null, peerGoal: true, peerFactor: 2, better: 'lower', label: 'first start, fresh profile (t0.js → tracker.ready, median of the launches)', unit: 'ms', digits: 1, peer: 'init_ms', swOnly: true },
  busy_first_start_ms: { goal: 10, better: 'lower', label: "the worker's thread busy during a first start, t0.js → ready (ping probe, slices ≥ 0.2 ms)", unit: 'ms', digits: 1 },
  track_us: { goal: 3, better: 'lower', label: 'track() until it returns, fresh worker (first {n}-call burst)', unit: 'µs/call', digits: 2, peer: 'track_us', swOnly: true },
  track_us_live: { goal: 1.5, better: 'lower', label: 'track() until it returns, warm worker (second {n}-call burst)', unit: 'µs/call', digits: 2 },
  drain_events_per_s: { goal: 1000, better: 'higher', label: 'drain a backlog of {n} after a worker restart (default concurrency)', unit: 'events/s', digits: 0, peer: 'events_per_s', swOnly: true, peerNote: 'a live burst', oursVsPeer: 'live_events_per_s' },
  memory_ratio: { goal: 2, better: 'lower', label: 'wasm linear memory ÷ serialized queue, {n} queued', unit: '×', digits: 2 },
  memory_burst_ratio: { goal: 4, better: 'lower', label: 'peak linear memory ÷ the queue kept, {memoryN} track() calls in one turn', unit: '×', digits: 1 },
  size_gzip_bytes: { goal: 73728, better: 'lower', label: 'size, wasm + loader (min+gzip -9, scripts/check-size.sh)', unit: 'B', digits: 0, peer: 'size_gzip_bytes', oursVsPeer: 'size_entry_gzip_bytes' },
  size_wasm_raw_bytes: { goal: 150000, better: 'lower', label: 'size, raw wasm (what a worker fetches and compiles at every wake)', unit: 'B', digits: 0 },
  durable_ms: { goal: 1000, better: 'lower', label: 'whole {n} burst durable in chrome.storage.local', unit: 'ms', digits: 0 },
  writes_per_delivered: { goal: 1 / 5, better: 'lower', label: 'storage writes per delivered event (backlog drain)', unit: 'writes/event', digits: 4 },
  duplicates_per_stop: { goal: 8, better: 'lower', label: 'duplicates per worker stop, {dupN}-event drain, a server storing every POST ({dupStops} stops)', unit: 'per stop', digits: 1 },
};

// ---------------- cold-start phases ----------------
const LOAD_LABELS = {
  'fetch wasm': 'wasm fetch (fetch → response)',
  compile: 'wasm compile (WebAssembly.compile)',
  compileStreaming: 'wasm compile (WebAssembly.compileStreaming)',
  instantiate: 'wasm instantiate (new WebAssembly.Instance)',
  getManifest: 'manifest read (chrome.runtime.getManifest)',
};

// One start's timings (the `info`/`timings` ops' t0-relative figures) as [key, label, start, end]
// entries; repeated names get `#2`, `#3`... A start ends at `ready` or at the SDK's last mark,
// whichever is later (the stored queue may load after `ready`): calls that begin after it (the
// drain's writes) are not the start's.
function startEntries(s) {
  const E = [['t0', 't0.js evaluated (t0)', 0, null]];
  const ph = s.phases || {};
  if (num(ph.body_start_ms) !== null) E.push(['body', 'SDK modules evaluated (sw.js body starts)', ph.body_start_ms, null]);
  const seen = new Map();
  const nth = (k) => { const i = (seen.get(k) || 0) + 1; seen.set(k, i); return i; };
  for (const l of ph.load || []) {
    if (!l?.m) continue;
    const i = nth('load:' + l.m);
    E.push([`load:${l.m}#${i}`, (LOAD_LABELS[l.m] || l.m) + (i > 1 ? ` #${i}` : ''), l.start, l.end ?? null]);
  }
  for (const c of ph.storage || []) {
    if (!c?.m) continue;
    const i = nth('storage:' + c.m);
    E.push([`storage:${c.m}#${i}`, `chrome.storage.local.${c.m} #${i}`, c.start, c.end ?? null]);
  }
  for (const c of ph.api || []) {
    if (!c?.m) continue;
    const i = nth('api:' + c.m);
    E.push([`api:${c.m}#${i}`, `chrome.${c.m}${i > 1 ? ` #${i}` : ''}`, c.start, c.end ?? null]);
  }
  for (const m of s.marks || []) {
    const i = nth('mark:' + m.name);
    if (i <= 3) E.push([`mark:${m.name}#${i}`, `mark ${m.name}${i > 1 ? ` #${i}` : ''}`, m.at, null]);
  }
  if (num(s.ready_from_t0_ms) !== null) E.push(['ready', '**tracker.ready resolved**', s.ready_from_t0_ms, null]);
  const end = Math.max(s.ready_from_t0_ms ?? 0, ...(s.marks || []).map((m) => m.at));
  return E.filter(([, , start]) => num(start) !== null && start <= end + 0.05);
}

// The medians over several starts, one row per phase, in time order (ms from t0).
export function startPhases(samples) {
  const rows = new Map();
  for (const s of (samples || []).filter(Boolean)) {
    for (const [key, label, start, end] of startEntries(s)) {
      if (!rows.has(key)) rows.set(key, { key, label, starts: [], ends: [] });
      const r = rows.get(key);
      r.starts.push(start);
      if (end != null) r.ends.push(end);
    }
  }
  const n = (samples || []).filter(Boolean).length;
  return [...rows.values()]
    .map((r, i) => ({ key: r.key, label: r.label, start: median(r.starts), end: median(r.ends), samples: r.starts.length, of: n, i }))
    .sort((a, b) => (a.start ?? Infinity) - (b.start ?? Infinity) || a.i - b.i)
    .map(({ i, ...r }) => r);
}

// The phases of the three kinds of start side by side. Rows in time order: each phase's time as a
// fraction of its column's t0 → ready (so that columns of different lengths interleave), taken
// from the 1,000-stored wake (the goal's start) where it has the phase, else the 10,000-stored
// wake, else the first start.
function phaseTable(cols) {
  const per = cols.map((c) => ({ ...c, rows: startPhases(c.samples) }));
  const keys = new Map();
  const order = [1, 2, 0].filter((i) => i < per.length);
  for (const ci of order) {
    const ready = per[ci].rows.find((r) => r.key === 'ready')?.start;
    for (const r of per[ci].rows) {
      if (!keys.has(r.key)) keys.set(r.key, { key: r.key, label: r.label, at: ready ? r.start / ready : r.start });
    }
  }
  const rows = [...keys.values()].sort((a, b) => (a.at ?? Infinity) - (b.at ?? Infinity) || (a.key === 'ready') - (b.key === 'ready'));
  return {
    columns: per.map((c) => ({
      key: c.key, label: c.label, starts: c.samples.length,
      t0_from_worker_origin_ms: median(c.samples.map((s) => s.t0_ms)),
    })),
    rows: rows.map((r) => ({
      key: r.key, label: r.label,
      cells: per.map((c) => { const x = c.rows.find((y) => y.key === r.key); return x ? { start: x.start, end: x.end, samples: x.samples } : null; }),
    })),
  };
}

// ---------------- summary ----------------
export function summarize(out) {
  const O = out.ours || {};
  const opt = out.meta.options;
  const P = (O.perf_runs || []).filter((r) => !r.error || r.burst);
  const pick = (f) => median(P.map(f));
  const cs = O.size?.check_size || {};
  // Every launch starts from a fresh profile: its first worker start is an init sample.
  const launches = [...P, O.cold, ...Object.values(O.durability || {}).flatMap((d) => d.runs), O.durability_control].filter((r) => r && r.first_start);
  const ours = {
    package: `@inhouse/chrome-tracker@${out.meta.package.version}`,
    size_gzip_bytes: cs.total_gzip ?? null,
    size_wasm_gzip_bytes: cs.wasm_gzip ?? null,
    size_wasm_raw_bytes: cs.wasm_raw ?? null,
    size_js_gzip_bytes: cs.js_gzip ?? null,
    size_entry_gzip_bytes: O.size?.entry?.gzip9_bytes ?? null,
    init_ms: median(launches.map((r) => r.first_start.ready_from_t0_ms)),
    init_from_worker_origin_ms: median(launches.map((r) => r.first_start.ready_from_worker_origin_ms)),
    init_samples: launches.map((r) => Math.round(r.first_start.ready_from_t0_ms * 10) / 10),
    cold_start_ms: O.cold?.ready_from_t0_ms_median ?? null,
    cold_start_from_worker_origin_ms: O.cold?.ready_from_worker_origin_ms_median ?? null,
    cold_start_queued: O.cold?.queued ?? null,
    cold_start_restarts: O.cold?.runs?.length ?? 0,
    cold_start_with_backlog_ms: pick((r) => r.cold_start_with_backlog?.ready_from_t0_ms),
    busy_first_start_ms: num(O.busy?.first_start?.to_ready_ms),
    busy_first_start_settled_ms: num(O.busy?.first_start?.to_settled_ms),
    busy_first_start_longest_ms: num(O.busy?.first_start?.longest_to_ready_ms),
    busy_wake_ms: num(O.busy?.wake_to_ready_ms),
    busy_wake_settled_ms: num(O.busy?.wake_to_settled_ms),
    memory_burst_ratio: num(O.memory_burst?.peak_ratio),
    track_us: pick((r) => r.burst?.us_per_call),
    track_us_live: pick((r) => r.live?.us_per_call),
    durable_ms: pick((r) => r.burst?.durable_ms),
    track_promises_resolved_ms: pick((r) => r.burst?.all_track_promises_resolved_ms),
    durable_readback: P[0]?.burst?.storage_readback?.of_burst ?? null,
    burst_storage_calls: P[0]?.burst?.storage_calls ?? null,
    drain_s: pick((r) => r.backlog_drain?.drain_s),
    drain_events_per_s: pick((r) => r.backlog_drain?.events_per_s),
    drain_arrived: pick((r) => r.backlog_drain?.arrived),
    drain_duplicates: pick((r) => r.backlog_drain?.duplicates),
    writes_per_delivered: pick((r) => r.backlog_drain?.writes_per_delivered),
    drain_storage_calls: P[0]?.backlog_drain?.storage_calls ?? null,
    drain_storage_writes_stats: pick((r) => r.backlog_drain?.storage_writes),
    drain_http_requests: pick((r) => r.backlog_drain?.http_requests),
    live_drain_s: pick((r) => r.live?.drain_s),
    live_events_per_s: pick((r) => r.live?.events_per_s),
    live_arrived: pick((r) => r.live?.arrived),
    live_writes_per_delivered: pick((r) => r.live?.writes_per_delivered),
    live_http_requests: pick((r) => r.live?.http_requests),
    live_preflights: pick((r) => r.live?.preflights),
    memory_bytes: pick((r) => r.memory?.wasm_memory_bytes),
    memory_idle_bytes: pick((r) => r.memory?.wasm_memory_idle_bytes),
    serialized_bytes: pick((r) => r.memory?.serialized_bytes),
    memory_ratio: pick((r) => r.memory?.ratio),
    memory_growth_ratio: pick((r) => r.memory?.growth_ratio),
    durability: Object.fromEntries(Object.entries(O.durability || {}).map(([m, d]) => [m, {
      unique: d.unique_median, duplicates: d.duplicates_median,
      replays: median(d.runs.map((r) => r.replays)), runs: d.runs.map((r) => (r.error ? 'err' : r.unique)),
      restarted: d.runs.every((r) => r.restarted), stop_confirmed: d.runs.every((r) => r.sw_stopped),
    }])),
    control: O.durability_control ? { unique: O.durability_control.unique, duplicates: O.durability_control.duplicates } : null,
    errors: (O.perf_runs || []).map((r) => r.error).concat([O.cold?.error], (O.conc_curve || []).map((c) => c.error)).filter(Boolean),
    // The done-mark curve; the SDK's default batch (5) gives the goal figure.
    dup_curve: (O.dup_curve || []).map((c) => ({
      ack_batch: c.ack_batch, stops: c.stops ?? null, duplicates: c.duplicates ?? null, duplicates_per_stop: c.duplicates_per_stop ?? null,
      unique: c.unique ?? null, events_per_s: c.events_per_s ?? null, writes_per_event: c.writes_per_event ?? null, error: c.error ?? null,
    })),
    // Drain rate by `concurrency` (CONC_N stored events, worker woken with the server up).
    conc_curve: (O.conc_curve || []).map((c) => ({
      concurrency: c.concurrency, n: c.n, unique: c.unique ?? null, complete: c.complete ?? false,
      drain_s: c.drain_s ?? null, events_per_s: c.events_per_s ?? null, first_arrival_s: c.first_arrival_s ?? null,
      http_requests: c.http_requests ?? null, preflights: c.preflights ?? null, duplicates: c.duplicates ?? null,
      replays: c.replays ?? null, error: c.error ? String(c.error).split('\n')[0] : null,
    })),
    // Where a start's time goes, ms from t0 (medians): a fresh profile's first start, a wake
    // with COLD_N stored, a wake with N stored.
    phases: phaseTable([
      { key: 'first_start', label: 'first start, fresh profile', samples: launches.map((r) => r.first_start) },
      { key: 'wake', label: `wake, ${opt.coldN.toLocaleString('en')} stored`, samples: O.cold?.runs || [] },
      { key: 'wake_backlog', label: `wake, ${opt.n.toLocaleString('en')} stored`, samples: P.map((r) => r.cold_start_with_backlog).filter((r) => r && r.ready_from_t0_ms != null) },
    ]),
  };
  ours.duplicates_per_stop = ours.dup_curve.find((c) => c.ack_batch === 5)?.duplicates_per_stop ?? null;

  const peers = [];
  const PR = out.peers && out.peers.sdks ? out.peers : null;
  for (const [name, r] of Object.entries(PR ? PR.sdks : {})) {
    peers.push({
      name, package: `${r.package}@${r.version}`, size_gzip_bytes: r.size?.gzip9_bytes ?? null,
      works_in_sw: !!r.works_in_sw, measured_in: r.context || 'none', sw_error: r.sw_error || null,
      init_ms: r.init_ms ?? null, track_us: r.track_us ?? null,
      drain_s: r.drain_s ?? null, drain_arrived: r.drain_arrived ?? null, drain_complete: r.drain_s != null,
      events_per_s: r.drain_s ? PR.meta.options.n / r.drain_s : null, http_requests: r.http_requests ?? null,
      durability: Object.fromEntries(Object.entries(r.durability || {}).map(([m, d]) => [m, { unique: d.unique_median, duplicates: d.duplicates_median }])),
      control: r.durability_control ? { unique: r.durability_control.unique, duplicates: r.durability_control.duplicates } : null,
    });
  }
  // Why a peer column is empty: the peers were not run, or failed.
  const peersState = !opt.peers ? 'not run' : out.peers?.error ? 'failed' : !PR ? 'not run' : null;

  const fill = (t) => t.replaceAll('{n}', opt.n.toLocaleString('en')).replaceAll('{coldN}', opt.coldN.toLocaleString('en'))
    .replaceAll('{dupN}', (opt.dupN ?? 1000).toLocaleString('en')).replaceAll('{dupStops}', String(opt.dupStops ?? 10))
    .replaceAll('{memoryN}', (opt.memoryN ?? 200000).toLocaleString('en'));
  const goals = Object.entries(GOALS).map(([k, g]) => {
    const value = num(ours[k]);
    const row = { key: k, label: fill(g.label), unit: g.unit, better: g.better, digits: g.digits, goal: g.goal, value, peer: null, peer_state: g.peer ? peersState : 'none' };
    if (g.peer && !peersState) {
      const cands = peers.filter((p) => num(p[g.peer]) !== null && (!g.swOnly || p.measured_in === 'sw'));
      const best = cands.sort((a, b) => (g.better === 'lower' ? a[g.peer] - b[g.peer] : b[g.peer] - a[g.peer]))[0];
      if (best) row.peer = { name: best.name, value: best[g.peer], measured_in: best.measured_in, note: g.peerNote ?? null };
      else row.peer_state = peers.some((p) => num(p[g.peer]) !== null) ? 'only peers in a page' : 'no figure';
    }
    if (g.peerGoal) {
      const k = g.peerFactor ?? 1;
      row.goal = row.peer ? row.peer.value * k : null;
      const whose = row.peer ? `${row.peer.name}'s ${fmtNum(row.peer.value, g.digits)} ${g.unit}` : `the fastest peer's (${peersState ?? 'no figure'})`;
      row.goal_text = k === 1 ? `< ${whose}` : row.peer ? `≤ ${k}× ${whose} = ${fmtNum(row.goal, g.digits)} ${g.unit}` : `≤ ${k}× ${whose}`;
      row.label += k === 1 ? `, faster than the fastest peer${row.peer ? ` (${row.peer.name})` : ''}` : `, at most ${k}× the fastest peer's`;
    }
    // ours ÷ the best peer (the same measurement: ours the peers' way where it differs), else ÷ target.
    const mine = g.oursVsPeer ? num(ours[g.oursVsPeer]) : value;
    if (row.peer) {
      row.ours_vs_peer_value = mine;
      row.ratio = ratio(mine, row.peer.value);
      row.ratio_vs = 'peer';
    } else if (!g.peerGoal) {
      row.ratio = ratio(value, g.goal);
      row.ratio_vs = 'target';
    } else {
      row.ratio = null;
      row.ratio_vs = null;
    }
    row.within = value === null || num(row.goal) === null ? null
      : g.peerGoal && (g.peerFactor ?? 1) === 1 ? value < row.goal : g.better === 'lower' ? value <= row.goal : value >= row.goal;
    return row;
  });
  // ours ÷ peer: below 1 means ours is smaller / faster.
  const ratios = peers.map((p) => ({
    peer: p.name, measured_in: p.measured_in,
    size: ratio(ours.size_entry_gzip_bytes, p.size_gzip_bytes),
    init: ratio(ours.init_ms, p.init_ms),
    track_us: ratio(ours.track_us, p.track_us),
    drain: p.drain_complete ? ratio(ours.live_drain_s, p.drain_s) : null,
    durability: Object.fromEntries(Object.keys(ours.durability).map((m) => [m, { ours: ours.durability[m]?.unique ?? null, peer: p.durability[m]?.unique ?? null }])),
  }));
  return {
    n: opt.n, dur_n: opt.durN, dur_modes: opt.durModes, cold_n: opt.coldN, conc_n: opt.concN ?? null, steps: opt.steps ?? null,
    ours, goals, peers, ratios,
    plan: O.plan && !O.plan.error ? { ...O.plan, runs: undefined } : O.plan ?? null,
    memory_burst: O.memory_burst ?? null,
    // Firefox's figures (bench/firefox.mjs), beside ours in Chrome in the table.
    firefox: O.firefox ? { version: O.firefox.version, first_start: O.firefox.first_start, burst: O.firefox.burst, wake: O.firefox.wake && { ...O.firefox.wake, runs: undefined }, error: O.firefox.error } : null,
    peers_error: out.peers && out.peers.error ? out.peers.error : opt.peers ? null : 'skipped (PEERS=0)',
  };
}

// ---------------- markdown ----------------
/** The Markdown table of Firefox's figures beside Chrome's (`chrome`: the same figures). */
/** The Markdown of the linear memory under a burst in one turn (bench step `memory`). */
function memoryLines(m) {
  if (!m) return [];
  if (m.error) return ['', `Linear memory under a burst: not measured (${m.error})`];
  const mb = (x) => `${(x / 1048576).toFixed(1)} MB`;
  return [
    '',
    `Linear memory under a burst of ${m.n.toLocaleString('en')} \`track()\` calls in one turn (server down; ${m.queued.toLocaleString('en')} kept, the rest evicted): ${mb(m.before)} → ${mb(m.after)} for a queue of ${mb(m.bytes_stored)}, ${m.peak_ratio.toFixed(1)}× (goal ≤ 4×); a rejected ${mb(m.big_string)} string property (${m.big_string_outcome}): +${mb(m.big_string_growth)}.`,
  ];
}

/** The Markdown of track() with a tracking plan beside without (bench step `plan`). */
function planTable(p) {
  if (!p || p.error) return p?.error ? ['', `Tracking plan: not measured (${p.error})`] : [];
  const us = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');
  const native = (p.native ?? []).map((x) => `${x.case} ${x.ns} ns`).join(', ');
  return [
    '',
    `\`track()\` with a ${p.events}-event tracking plan (\`planMode: 'reject'\`) beside without, the same worker, ${p.n} calls a burst, medians of 5 alternating bursts:`,
    '',
    '| µs per call | without a plan | with the plan | with ÷ without |',
    '|---|---:|---:|---:|',
    `| until \`track()\` returns | ${us(p.without_us)} | ${us(p.with_us)} | ${p.without_us ? (p.with_us / p.without_us).toFixed(2) : '–'}× |`,
    `| until every promise settled (stored) | ${us(p.without_settled_us)} | ${us(p.with_settled_us)} | ${p.without_settled_us ? (p.with_settled_us / p.without_settled_us).toFixed(2) : '–'}× |`,
    '',
    `The check alone, natively (\`examples/plan_check.rs\`): ${native || 'not measured'}.`,
  ];
}

function firefoxTable(ff, chrome) {
  if (!ff) return [];
  const row = (label, c, f, d = 2) => {
    const cell = (x) => (Number.isFinite(x) ? x.toFixed(d) : '–');
    const ratio = Number.isFinite(c) && Number.isFinite(f) && c > 0 ? `${(f / c).toFixed(2)}×` : '–';
    return `| ${label} | ${cell(c)} | ${cell(f)} | ${ratio} |`;
  };
  return [
    '',
    `Firefox (${ff.version ?? '?'}, event page) beside Chrome (service worker), same run; ratio = Firefox ÷ Chrome:`,
    '',
    '| figure | Chrome | Firefox | ratio |',
    '|---|---:|---:|---:|',
    row('first start, fresh profile: t0 → ready, ms', chrome.first_start, ff.first_start?.ready_from_t0_ms, 1),
    row(`wake with ${ff.wake?.stored ?? '?'} stored: t0 → ready, ms (median)`, chrome.wake, ff.wake?.ready_from_t0_ms_median),
    row(`track() in a burst of ${ff.burst?.n ?? '?'}, µs/call`, chrome.track_us, ff.burst?.us_per_call),
  ];
}

const f = (x, d = 1) => (num(x) === null ? '–' : x.toFixed(d));
const kb = (b) => (num(b) === null ? '–' : `${(b / 1024).toFixed(1)} KiB`);
function fmtNum(x, d) {
  if (num(x) === null) return '–';
  return x.toLocaleString('en', { minimumFractionDigits: d, maximumFractionDigits: d });
}
const rx = (x) => (num(x) === null ? '–' : x >= 10 ? `${x.toFixed(0)}×` : x >= 0.01 ? `${x.toFixed(2)}×` : `${x.toPrecision(1)}×`);

// Shared with chart.mjs: one goal row's cells.
export function goalCells(g) {
  const val = (v) => (num(v) === null ? '–'
    : g.key.startsWith('size_') ? `${fmtNum(v, 0)} B`
      : g.key === 'writes_per_delivered' ? `${fmtNum(v, 4)} (1 per ${fmtNum(1 / v, 0)})`
        : `${fmtNum(v, g.digits ?? 1)}${g.unit === '×' ? '' : ' '}${g.unit}`);
  const target = g.goal_text ?? (g.key === 'size_gzip_bytes' ? `≤ ${fmtNum(g.goal, 0)} B (${fmtNum(g.goal / 1024, 0)} KiB)`
    : g.key === 'size_wasm_raw_bytes' ? `≤ ${fmtNum(g.goal, 0)} B (${fmtNum(g.goal / 1000, 0)} KB)`
    : g.key === 'writes_per_delivered' ? '≤ 1 per 5'
      : g.key === 'duplicates_per_stop' ? '≤ concurrency + 2 = 8'
        : `${g.better === 'lower' ? '≤' : '≥'} ${fmtNum(g.goal, g.goal % 1 ? 1 : 0)}${g.unit === '×' ? '' : ' '}${g.unit}`);
  const peer = g.peer
    ? `${val(g.peer.value)} (${g.peer.name}${g.peer.note ? `, ${g.peer.note}` : ''}${g.ours_vs_peer_value != null && g.ours_vs_peer_value !== g.value ? `; ours the same way: ${val(g.ours_vs_peer_value)}` : ''})`
    : g.peer_state === 'none' || g.peer_state == null ? '–' : g.peer_state;
  const r = num(g.ratio) === null ? '–' : g.ratio_vs === 'target' ? `${rx(g.ratio)} target` : rx(g.ratio);
  const status = g.within === null ? (g.value === null ? 'not measured' : 'not judged') : g.within ? 'within' : 'over';
  return { value: val(g.value), target, peer, ratio: r, status };
}

const cell = (c) => (!c ? '–' : c.end != null ? `${f(c.start, 1)} → ${f(c.end, 1)}` : f(c.start, 1));

export function renderSummaryMarkdown(s, meta) {
  const o = s.ours;
  const L = [];
  const dm = s.dur_modes || [];
  const durCell = (d) => (d ? `${d.unique ?? '–'}/${s.dur_n}${d.duplicates ? ` (${d.duplicates} dup)` : ''}` : '–');
  const src = meta.package.commit ? ` (built from ${meta.package.commit}${meta.package.uncommitted_changes?.length ? ` + uncommitted ${meta.package.uncommitted_changes.join(', ')}` : ''})` : '';
  const steps = s.steps && s.steps.length < 5 ? `; steps ${s.steps.join(', ')} only` : '';
  L.push(`Benchmark of ${o.package}${src}, ${meta.started}: ${meta.host.chromium} headless, ${meta.host.cpus} cores, Node ${meta.host.node}; N = ${s.n} events; one run (\`make bench\`, ${meta.total_s ?? '?'} s; load average ${meta.loadavg_start?.[0] ?? '?'} at the start, ${meta.loadavg_end?.[0] ?? '?'} at the end${steps}).`);
  L.push('');
  L.push('| goal | ours | target | best peer, same run | ours ÷ best peer (or ÷ target) | |');
  L.push('|---|---:|---:|---:|---:|---|');
  for (const g of s.goals) {
    const c = goalCells(g);
    L.push(`| ${g.label} | ${c.value} | ${c.target} | ${c.peer} | ${c.ratio} | ${c.status === 'over' ? '**over**' : c.status} |`);
  }
  L.push('');
  L.push('Best peer: the lowest (highest for events/s) of the peers measured in the service worker (a peer that only works in a page is left out of time figures; any peer for size). Below 1× is better for ms, µs, B and ×; above 1× is better for events/s. Ours ÷ target where no peer has the figure (no peer keeps a stored queue).');

  const ph = o.phases;
  if (ph?.rows?.length) {
    L.push('');
    L.push('Cold-start phases, ms from t0 (`t0.js`, evaluated before the SDK\'s modules), medians; `a → b`: a call\'s start and its settling; `mark inhouse:*`: the SDK\'s own `performance.mark()`:');
    L.push('');
    L.push(`| phase | ${ph.columns.map((c) => `${c.label} (${c.starts ? `${c.starts} start${c.starts === 1 ? '' : 's'}` : 'not run'})`).join(' | ')} |`);
    L.push(`|---|${ph.columns.map(() => '---:').join('|')}|`);
    for (const r of ph.rows) L.push(`| ${r.label} | ${r.cells.map(cell).join(' | ')} |`);
    L.push(`| (t0.js starts after the worker's time origin: script fetch + compile) | ${ph.columns.map((c) => f(c.t0_from_worker_origin_ms, 1)).join(' | ')} |`);
  }
  if (o.conc_curve?.length) {
    L.push('');
    L.push(`Drain rate by \`concurrency\` (the SDK's default is 6): ${(s.conc_n ?? 0).toLocaleString('en')} stored events, worker stopped, server up, worker woken; events/s = unique events on the server ÷ (last arrival − wake):`);
    L.push('');
    L.push('| concurrency | events/s | drain (s) | unique / stored | first arrival (s after wake) | HTTP requests (POSTs) | duplicates |');
    L.push('|---:|---:|---:|---:|---:|---:|---:|');
    for (const c of o.conc_curve) {
      L.push(`| ${c.concurrency} | ${f(c.events_per_s, 0)} | ${f(c.drain_s, 2)} | ${c.unique ?? '–'}/${c.n}${c.complete ? '' : ' (incomplete)'} | ${f(c.first_arrival_s, 2)} | ${c.http_requests ?? '–'} | ${c.duplicates ?? '–'} |${c.error ? ` error: ${c.error}` : ''}`);
    }
  }
  if (o.dup_curve?.length) {
    L.push('');
    L.push('Done-marks per index write (`ackBatch`) against duplicates per worker stop, drain rate and storage writes, same run (default 5):');
    L.push('');
    L.push('| done-marks per write | stops | duplicates | per stop | drain events/s (no stop) | storage writes per event |');
    L.push('|---:|---:|---:|---:|---:|---:|');
    for (const c of o.dup_curve) L.push(`| ${c.ack_batch} | ${c.stops ?? '–'} | ${c.duplicates ?? '–'} | ${f(c.duplicates_per_stop, 1)} | ${f(c.events_per_s, 0)} | ${f(c.writes_per_event, 3)} |${c.error ? ' error' : ''}`);
  }
  L.push('');
  const durCols = dm.map((m) => `kill, server ${m === '503' ? '503' : 'down'}: unique/${s.dur_n}`);
  const head = ['SDK', 'size min+gzip (B)', 'runs in MV3 SW', 'init ms', 'track() µs/call', `drain ${s.n} (s)`, 'events/s', 'HTTP requests', ...durCols, 'no kill (control)'];
  L.push(`| ${head.join(' | ')} |`);
  L.push(`|---|---:|---|---:|---:|---:|---:|---:|${dm.map(() => '---|').join('')}---|`);
  L.push(`| ${[`**${o.package}**`, o.size_entry_gzip_bytes ?? '–', 'yes', f(o.init_ms), f(o.track_us, 2), f(o.live_drain_s, 2), f(o.live_events_per_s, 0), o.live_http_requests ?? '–', ...dm.map((m) => durCell(o.durability[m])), durCell(o.control)].join(' | ')} |`);
  for (const p of s.peers) {
    const drain = p.drain_complete ? f(p.drain_s, 2) : p.measured_in === 'none' ? '–' : `> cap (${p.drain_arrived ?? 0} arrived)`;
    L.push(`| ${[p.package, p.size_gzip_bytes ?? '–', p.works_in_sw ? 'yes' : '**no** (page)', f(p.init_ms), f(p.track_us, 2), drain, f(p.events_per_s, 0), p.http_requests ?? '–', ...dm.map((m) => durCell(p.durability[m])), durCell(p.control)].join(' | ')} |`);
  }
  if (s.ratios.length) {
    L.push('');
    L.push('Ours ÷ peer, same run (below 1× = ours smaller / faster):');
    L.push('');
    L.push(`| ${['vs', 'size', 'init', 'track() µs', 'drain time', ...dm.map((m) => `survives kill (${m === '503' ? '503' : 'down'}): ours vs peer`)].join(' | ')} |`);
    L.push(`|---|---:|---:|---:|---:|${dm.map(() => '---|').join('')}`);
    for (const r of s.ratios) {
      L.push(`| ${[`${r.peer}${r.measured_in === 'page' ? ' (peer in a page)' : ''}`, rx(r.size), rx(r.init), rx(r.track_us), r.drain === null ? 'peer incomplete' : rx(r.drain), ...dm.map((m) => `${r.durability[m]?.ours ?? '–'} vs ${r.durability[m]?.peer ?? '–'}`)].join(' | ')} |`);
    }
  }
  if (s.peers_error) L.push('', `Peers: ${s.peers_error}`);
  L.push('');
  // The details of what ran (a STEPS subset leaves the rest out).
  const D = [`size ${kb(o.size_gzip_bytes)} by scripts/check-size.sh (wasm ${o.size_wasm_gzip_bytes ?? '–'} B + JS ${o.size_js_gzip_bytes ?? '–'} B gzipped), ${o.size_entry_gzip_bytes ?? '–'} B by the peers' method (minimal entry bundle + wasm)`];
  if (o.init_samples.length) D.push(`init (fresh profile, empty queue) ${f(o.init_ms, 1)} ms, median of ${o.init_samples.length} launch${o.init_samples.length === 1 ? '' : 'es'} (${o.init_samples.join(', ')} ms; ${f(o.init_from_worker_origin_ms, 1)} ms from the worker's time origin)`);
  if (o.busy_first_start_ms != null) D.push(`the worker's thread busy (ping probe, slices ≥ 0.2 ms): first start ${f(o.busy_first_start_ms, 1)} ms until ready (longest slice ${f(o.busy_first_start_longest_ms, 1)} ms), ${f(o.busy_first_start_settled_ms, 1)} ms until ready + 300 ms; wake with ${o.cold_start_queued ?? '–'} stored ${f(o.busy_wake_ms, 1)} ms until ready, ${f(o.busy_wake_settled_ms, 1)} ms until ready + 300 ms`);
  if (o.cold_start_restarts) D.push(`cold start with ${o.cold_start_queued ?? '–'} stored events ${f(o.cold_start_ms, 2)} ms median of ${o.cold_start_restarts} restarts (${f(o.cold_start_from_worker_origin_ms, 1)} ms from the worker's time origin)`);
  if (num(o.track_us) !== null) {
    D.push(`wake with the burst's ${s.n} stored ${f(o.cold_start_with_backlog_ms, 1)} ms`);
    D.push(`burst with the server down: track() ${f(o.track_us, 2)} µs/call, all track() promises resolved after ${f(o.track_promises_resolved_ms, 0)} ms, the whole burst seen committed in storage after ${f(o.durable_ms, 0)} ms (read back: ${o.durable_readback ?? '–'}/${s.n})`);
    D.push(`backlog drain after a worker restart ${o.drain_arrived ?? '–'}/${s.n} in ${f(o.drain_s, 2)} s = ${f(o.drain_events_per_s, 0)} events/s, ${o.drain_storage_calls ? `${o.drain_storage_calls.set} set + ${o.drain_storage_calls.remove} remove calls` : '–'} (${f(o.writes_per_delivered, 4)} per event; the SDK's stats().storageWrites: ${o.drain_storage_writes_stats ?? '–'})`);
    D.push(`live burst with the server up (second burst, warm worker): track() ${f(o.track_us_live, 2)} µs/call, ${o.live_arrived ?? '–'}/${s.n} on the server ${f(o.live_drain_s, 2)} s after the first track(), ${o.live_http_requests ?? '–'} POSTs + ${o.live_preflights ?? '–'} CORS preflights, ${f(o.live_writes_per_delivered, 4)} storage calls per event including the enqueue writes`);
    D.push(`wasm memory ${kb(o.memory_bytes)} with ${s.n} queued (idle ${kb(o.memory_idle_bytes)}) vs ${kb(o.serialized_bytes)} serialized in storage: ${f(o.memory_ratio, 2)}× (growth ${f(o.memory_growth_ratio, 2)}×)`);
  }
  L.push(`Details (ours): ${D.join('; ')}.`);
  if (o.errors.length) L.push('', 'Errors: ' + o.errors.map((e) => e.split('\n')[0]).join('; '));
  L.push('');
  L.push(...memoryLines(s.memory_burst));
  L.push(...planTable(s.plan));
  L.push(...firefoxTable(s.firefox, { first_start: o.init_ms, wake: o.cold_start_ms, track_us: o.track_us }));
  return L.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const fs = await import('node:fs');
  const out = JSON.parse(fs.readFileSync(process.argv[2] || new URL('./out/results.json', import.meta.url), 'utf8'));
  console.log(renderSummaryMarkdown(summarize(out), out.meta));
}
