// Turns bench/out/results.json into the summary (bench/results.json) and its markdown table.
// CLI: node bench/report.mjs [bench/out/results.json]  → prints the markdown again.
const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const num = (x) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
const ratio = (a, b) => (num(a) !== null && num(b) ? a / b : null);

export const GOALS = {
  size_gzip_bytes: { goal: 20480, better: 'lower', label: 'package size (wasm + glue + loader, min+gzip -9)', unit: 'B' },
  cold_start_ms: { goal: 10, better: 'lower', label: 'cold start, script start → ready, 1,000 queued (median)', unit: 'ms' },
  track_us: { goal: 5, better: 'lower', label: 'track() until it returns, 10,000 burst', unit: 'µs/call' },
  durable_ms: { goal: 1000, better: 'lower', label: 'whole 10,000 burst durable in chrome.storage.local', unit: 'ms' },
  drain_events_per_s: { goal: 1000, better: 'higher', label: 'drain to the local server (backlog of 10,000)', unit: 'events/s' },
  writes_per_delivered: { goal: 1 / 5, better: 'lower', label: 'storage writes per delivered event (drain)', unit: 'writes/event' },
  duplicates_per_stop: { goal: 8, better: 'lower', label: 'duplicates per worker stop, 1,000-event drain, a server storing every POST (mean of 10 stops)', unit: 'per stop' },
  memory_ratio: { goal: 2, better: 'lower', label: 'wasm linear memory ÷ serialized size, 10,000 queued', unit: '×' },
};

export function summarize(out) {
  const O = out.ours || {};
  const P = (O.perf_runs || []).filter((r) => !r.error || r.burst);
  const pick = (f) => median(P.map(f));
  const cs = O.size?.check_size || {};
  // Every launch starts from a fresh profile: its first worker start is an init sample.
  const launches = [...P, O.cold, ...Object.values(O.durability || {}).flatMap((d) => d.runs), O.durability_control].filter((r) => r && r.first_start);
  const ours = {
    package: `@inhouse/chrome-tracker@${out.meta.package.version}`,
    size_gzip_bytes: cs.total_gzip ?? null,
    size_wasm_gzip_bytes: cs.wasm_gzip ?? null,
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
    errors: (O.perf_runs || []).map((r) => r.error).concat([O.cold?.error]).filter(Boolean),
    // The done-mark curve; the SDK's default batch (5) gives the goal figure.
    dup_curve: (O.dup_curve || []).map((c) => ({
      ack_batch: c.ack_batch, stops: c.stops ?? null, duplicates: c.duplicates ?? null, duplicates_per_stop: c.duplicates_per_stop ?? null,
      unique: c.unique ?? null, events_per_s: c.events_per_s ?? null, writes_per_event: c.writes_per_event ?? null, error: c.error ?? null,
    })),
  };
  ours.duplicates_per_stop = ours.dup_curve.find((c) => c.ack_batch === 5)?.duplicates_per_stop ?? null;
  const n = out.meta.options.n.toLocaleString('en');
  const coldN = out.meta.options.coldN.toLocaleString('en');
  const goals = Object.entries(GOALS).map(([k, g]) => {
    const v = ours[k];
    const label = g.label.replace('10,000', n).replace('1,000', coldN);
    return { key: k, ...g, label, value: v, within: num(v) === null ? null : g.better === 'lower' ? v <= g.goal : v >= g.goal };
  });
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
    n: out.meta.options.n, dur_n: out.meta.options.durN, dur_modes: out.meta.options.durModes,
    ours, goals, peers, ratios,
    peers_error: out.peers && out.peers.error ? out.peers.error : out.meta.options.peers ? null : 'skipped (PEERS=0)',
  };
}

const f = (x, d = 1) => (num(x) === null ? '–' : x.toFixed(d));
const kb = (b) => (num(b) === null ? '–' : `${(b / 1024).toFixed(1)} KiB`);
const rx = (x) => (num(x) === null ? '–' : x >= 10 ? `${x.toFixed(0)}×` : x >= 1 ? `${x.toFixed(1)}×` : `${x.toFixed(2)}×`);
const goalValue = (g) => (g.key === 'size_gzip_bytes' ? kb(g.value) : g.key === 'writes_per_delivered' ? (num(g.value) === null ? '–' : `${f(g.value, 4)} (1 per ${f(1 / g.value, 0)})`) : `${f(g.value, g.key === 'track_us' || g.key === 'memory_ratio' || g.key === 'cold_start_ms' ? 2 : g.key === 'duplicates_per_stop' ? 1 : 0)} ${g.unit}`);
const goalGoal = (g) => (g.key === 'size_gzip_bytes' ? '≤ 20 KiB' : g.key === 'writes_per_delivered' ? '≤ 1 per 5' : g.key === 'duplicates_per_stop' ? '≤ concurrency + 2 = 8' : `${g.better === 'lower' ? '≤' : '≥'} ${g.goal} ${g.unit}`);

export function renderSummaryMarkdown(s, meta) {
  const o = s.ours;
  const L = [];
  const dm = s.dur_modes;
  const durCell = (d) => (d ? `${d.unique ?? '–'}/${s.dur_n}${d.duplicates ? ` (${d.duplicates} dup)` : ''}` : '–');
  const src = meta.package.commit ? ` (built from ${meta.package.commit}${meta.package.uncommitted_changes?.length ? ` + uncommitted ${meta.package.uncommitted_changes.join(', ')}` : ''})` : '';
  L.push(`Benchmark of ${o.package}${src}, ${meta.started}: ${meta.host.chromium} headless, ${meta.host.cpus} cores, Node ${meta.host.node}; N = ${s.n} events; one run (\`make bench\`, ${meta.total_s ?? '?'} s; load average ${meta.loadavg_start?.[0] ?? '?'} at the start, ${meta.loadavg_end?.[0] ?? '?'} at the end).`);
  L.push('');
  L.push('| goal | measured | target | |');
  L.push('|---|---:|---:|---|');
  for (const g of s.goals) L.push(`| ${g.label} | ${goalValue(g)} | ${goalGoal(g)} | ${g.within === null ? 'not measured' : g.within ? 'within' : '**over**'} |`);
  if (o.dup_curve?.length) {
    L.push('');
    L.push('Done-marks per index write (`ackBatch`) against duplicates per worker stop, drain rate and storage writes, same run (default 5):');
    L.push('');
    L.push('| done-marks per write | stops | duplicates | per stop | drain events/s (no stop) | storage writes per event |');
    L.push('|---:|---:|---:|---:|---:|---:|');
    for (const c of o.dup_curve) L.push(`| ${c.ack_batch} | ${c.stops ?? '–'} | ${c.duplicates ?? '–'} | ${f(c.duplicates_per_stop, 1)} | ${f(c.events_per_s, 0)} | ${f(c.writes_per_event, 3)} |${c.error ? ' error' : ''}`);
  }
  L.push('');
  L.push(`| SDK | size min+gzip (B) | runs in MV3 SW | init ms | track() µs/call | drain ${s.n} (s) | events/s | HTTP requests | ${dm.map((m) => `kill, server ${m === '503' ? '503' : 'down'}: unique/${s.dur_n}`).join(' | ')} | no kill (control) |`);
  L.push(`|---|---:|---|---:|---:|---:|---:|---:|${dm.map(() => '---').join('|')}|---|`);
  L.push(`| **${o.package}** | ${o.size_entry_gzip_bytes ?? '–'} | yes | ${f(o.init_ms)} | ${f(o.track_us, 2)} | ${f(o.live_drain_s, 2)} | ${f(o.live_events_per_s, 0)} | ${o.live_http_requests ?? '–'} | ${dm.map((m) => durCell(o.durability[m])).join(' | ')} | ${durCell(o.control)} |`);
  for (const p of s.peers) {
    const drain = p.drain_complete ? f(p.drain_s, 2) : p.measured_in === 'none' ? '–' : `> cap (${p.drain_arrived ?? 0} arrived)`;
    L.push(`| ${p.package} | ${p.size_gzip_bytes ?? '–'} | ${p.works_in_sw ? 'yes' : '**no** (page)'} | ${f(p.init_ms)} | ${f(p.track_us, 2)} | ${drain} | ${f(p.events_per_s, 0)} | ${p.http_requests ?? '–'} | ${dm.map((m) => durCell(p.durability[m])).join(' | ')} | ${durCell(p.control)} |`);
  }
  if (s.ratios.length) {
    L.push('');
    L.push('Ours ÷ peer, same run (below 1× = ours smaller / faster):');
    L.push('');
    L.push(`| vs | size | init | track() µs | drain time | ${dm.map((m) => `survives kill (${m === '503' ? '503' : 'down'}): ours vs peer`).join(' | ')} |`);
    L.push(`|---|---:|---:|---:|---:|${dm.map(() => '---').join('|')}|`);
    for (const r of s.ratios) {
      L.push(`| ${r.peer}${r.measured_in === 'page' ? ' (peer in a page)' : ''} | ${rx(r.size)} | ${rx(r.init)} | ${rx(r.track_us)} | ${r.drain === null ? 'peer incomplete' : rx(r.drain)} | ${dm.map((m) => `${r.durability[m]?.ours ?? '–'} vs ${r.durability[m]?.peer ?? '–'}`).join(' | ')} |`);
    }
  }
  if (s.peers_error) L.push('', `Peers: ${s.peers_error}`);
  L.push('');
  L.push(`Details (ours): size ${kb(o.size_gzip_bytes)} by scripts/check-size.sh (wasm ${o.size_wasm_gzip_bytes} B + JS ${o.size_js_gzip_bytes} B gzipped), ${o.size_entry_gzip_bytes} B by the peers' method (minimal entry bundle + wasm); ` +
    `init (fresh profile, empty queue) ${f(o.init_ms, 1)} ms, median of ${o.init_samples.length} launches (${o.init_samples.join(', ')} ms; ${f(o.init_from_worker_origin_ms, 1)} ms from the worker's time origin); cold start with ${o.cold_start_queued} stored events ${f(o.cold_start_ms, 2)} ms median of ${o.cold_start_restarts} restarts (${f(o.cold_start_from_worker_origin_ms, 1)} ms from the worker's time origin), with ${s.n} stored ${f(o.cold_start_with_backlog_ms, 1)} ms; ` +
    `burst with the server down: track() ${f(o.track_us, 2)} µs/call, all track() promises resolved after ${f(o.track_promises_resolved_ms, 0)} ms, the whole burst seen committed in storage after ${f(o.durable_ms, 0)} ms (read back: ${o.durable_readback}/${s.n}); ` +
    `backlog drain after a worker restart ${o.drain_arrived}/${s.n} in ${f(o.drain_s, 2)} s = ${f(o.drain_events_per_s, 0)} events/s, ${o.drain_storage_calls ? `${o.drain_storage_calls.set} set + ${o.drain_storage_calls.remove} remove calls` : '–'} (${f(o.writes_per_delivered, 4)} per event; the SDK's stats().storageWrites: ${o.drain_storage_writes_stats ?? '–'}); ` +
    `live burst with the server up (second burst, warm worker): track() ${f(o.track_us_live, 2)} µs/call, ${o.live_arrived}/${s.n} on the server ${f(o.live_drain_s, 2)} s after the first track(), ${o.live_http_requests} POSTs + ${o.live_preflights} CORS preflights, ${f(o.live_writes_per_delivered, 4)} storage calls per event including the enqueue writes; ` +
    `wasm memory ${kb(o.memory_bytes)} with ${s.n} queued (idle ${kb(o.memory_idle_bytes)}) vs ${kb(o.serialized_bytes)} serialized in storage: ${f(o.memory_ratio, 2)}× (growth ${f(o.memory_growth_ratio, 2)}×).`);
  if (o.errors.length) L.push('', 'Errors: ' + o.errors.map((e) => e.split('\n')[0]).join('; '));
  L.push('');
  return L.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const fs = await import('node:fs');
  const out = JSON.parse(fs.readFileSync(process.argv[2] || new URL('./out/results.json', import.meta.url), 'utf8'));
  console.log(renderSummaryMarkdown(summarize(out), out.meta));
}
