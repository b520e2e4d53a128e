// Renders the summary as an HTML page of SVG bar charts in Chromium and screenshots it
// (docs/bench.png). CLI: node bench/chart.mjs [bench/results.json] [docs/bench.png]
import { goalCells } from './report.mjs';

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const num = (x) => typeof x === 'number' && Number.isFinite(x);
const fmt = (v) => (!num(v) ? '–' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3));

// rows: [{label, value, ours, note}]; opts: {title, unit, log, goal, max}
function panel(rows, { title, unit, log = false, goal = null, max = null, better = 'lower' }) {
  const W = 560, rowH = 26, top = 48, left = 190, right = 90;
  const H = top + rows.length * rowH + 30;
  const vals = rows.map((r) => r.value).filter((v) => num(v) && v > 0);
  if (num(goal)) vals.push(goal);
  const hi = max ?? Math.max(...vals, 1e-9) * (log ? 1.5 : 1.08);
  const lo = log ? Math.pow(10, Math.floor(Math.log10(Math.min(...vals, hi) || 1))) : 0;
  const span = W - left - right;
  const x = (v) => left + (log ? (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) : v / hi) * span;
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, sans-serif">`;
  s += `<text x="12" y="22" font-size="15" font-weight="bold" fill="#111">${esc(title)}</text>`;
  s += `<text x="12" y="38" font-size="11" fill="#666">${esc(unit)}${log ? ', log scale' : ''} · ${better === 'lower' ? 'lower is better' : 'higher is better'}</text>`;
  if (log) {
    for (let d = lo; d <= hi * 1.0001; d *= 10) {
      s += `<line x1="${x(d)}" y1="${top - 4}" x2="${x(d)}" y2="${top + rows.length * rowH}" stroke="#e5e7eb"/>`;
      s += `<text x="${x(d)}" y="${top + rows.length * rowH + 14}" font-size="10" fill="#888" text-anchor="middle">${fmt(d)}</text>`;
    }
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    s += `<text x="${left - 8}" y="${y + 17}" font-size="12" text-anchor="end" fill="${r.ours ? '#1d4ed8' : '#333'}" font-weight="${r.ours ? 'bold' : 'normal'}">${esc(r.label)}</text>`;
    if (num(r.value)) {
      const w = Math.max(2, x(r.value) - left);
      s += `<rect x="${left}" y="${y + 5}" width="${w}" height="${rowH - 10}" rx="2" fill="${r.ours ? '#2563eb' : r.page ? '#d1d5db' : '#9ca3af'}"${r.incomplete ? ' fill-opacity="0.45"' : ''}/>`;
      s += `<text x="${left + w + 6}" y="${y + 17}" font-size="11" fill="#222">${esc(r.text ?? fmt(r.value))}</text>`;
    } else {
      s += `<text x="${left + 6}" y="${y + 17}" font-size="11" fill="#999">${esc(r.text ?? 'n/a')}</text>`;
    }
  });
  if (num(goal)) {
    s += `<line x1="${x(goal)}" y1="${top - 6}" x2="${x(goal)}" y2="${top + rows.length * rowH}" stroke="#dc2626" stroke-dasharray="4 3"/>`;
    s += `<text x="${x(goal) + 3}" y="${top + rows.length * rowH + 24}" font-size="10" fill="#dc2626">goal ${fmt(goal)}</text>`;
  }
  return s + '</svg>';
}

export function chartHtml(s, meta) {
  const o = s.ours;
  const short = (p) => p.name;
  const peerRow = (p, value, extra = {}) => ({ label: short(p) + (p.works_in_sw ? '' : ' (page*)'), value, page: !p.works_in_sw, ...extra });
  const ours = (value, extra = {}) => ({ label: 'inhouse (ours)', value, ours: true, ...extra });
  const dm = s.dur_modes[0] || 'refuse';
  const goalOf = (k) => s.goals.find((g) => g.key === k)?.goal ?? null;
  const kib = (b) => (num(b) ? b / 1024 : null);
  const panels = [
    panel([ours(kib(o.size_entry_gzip_bytes)), ...s.peers.map((p) => peerRow(p, kib(p.size_gzip_bytes)))],
      { title: 'Package size', unit: 'KiB, import + init + track bundle, min + gzip -9 (ours: + .wasm)', goal: kib(goalOf('size_gzip_bytes')) }),
    panel([ours(o.init_ms), ...s.peers.map((p) => peerRow(p, p.init_ms))],
      { title: 'Init until ready (fresh profile)', unit: 'ms, module evaluation → SDK ready', log: true }),
    panel([ours(o.track_us, { label: 'inhouse, fresh' }), ours(o.track_us_live, { label: 'inhouse, warm' }), ...s.peers.map((p) => peerRow(p, p.track_us))],
      { title: `track() cost, ${s.n.toLocaleString('en')}-event burst`, unit: 'µs per call until it returns (peers: first burst)', log: true, goal: goalOf('track_us') }),
    panel([ours(o.live_drain_s), ...s.peers.map((p) => peerRow(p, p.drain_complete ? p.drain_s : null, p.drain_complete ? {} : { text: p.measured_in === 'none' ? 'did not run' : `incomplete: ${p.drain_arrived ?? 0}/${s.n} within the cap` }))],
      { title: `Drain ${s.n.toLocaleString('en')} events to a local server`, unit: 's, first track() → last event on the server', log: true }),
    panel([ours(o.durability[dm]?.unique, { text: `${o.durability[dm]?.unique ?? '–'}/100` }), ...s.peers.map((p) => peerRow(p, p.durability[dm]?.unique ?? null, { text: `${p.durability[dm]?.unique ?? '–'}/100` }))],
      { title: 'Survives a worker kill', unit: `events of 100 delivered (server ${dm === '503' ? '503' : 'down'}, worker stopped, server up)`, max: 100, better: 'higher' }),
  ];
  // Drain rate by `concurrency`, and the default (6) on the goal's 10,000 backlog beside it.
  const cc = o.conc_curve || [];
  if (cc.length) {
    const concN = (s.conc_n ?? cc[0].n ?? 0).toLocaleString('en');
    panels.push(panel([
      ...cc.map((c) => ours(c.events_per_s, { label: `concurrency ${c.concurrency}`, incomplete: !c.complete, text: c.complete ? null : `${fmt(c.events_per_s)} (${c.unique ?? 0}/${c.n} within the cap)` })),
      ours(o.drain_events_per_s, { label: `default 6, ${s.n.toLocaleString('en')} backlog` }),
    ], { title: 'Drain rate by concurrency', unit: `events/s, ${concN} stored events, wake → last arrival`, goal: goalOf('drain_events_per_s'), better: 'higher' }));
  }
  const goals = s.goals.map((g) => {
    const c = goalCells(g);
    const mark = c.status === 'within' ? '<span style="color:#15803d">within</span>' : c.status === 'over' ? '<span style="color:#dc2626;font-weight:bold">over</span>' : `<span style="color:#999">${esc(c.status)}</span>`;
    return `<tr><td>${esc(g.label)}</td><td class="n o">${esc(c.value)}</td><td class="n">${esc(c.target)}</td><td class="n p">${esc(c.peer)}</td><td class="n">${esc(c.ratio)}</td><td class="s">${mark}</td></tr>`;
  }).join('');
  return `<!doctype html><html><head><meta charset="utf-8"><style>
  body{margin:0;background:#fff;font-family:"DejaVu Sans",sans-serif;color:#111}
  #c{padding:18px 20px;width:1160px}
  h1{font-size:19px;margin:0 0 4px} .sub{font-size:12px;color:#555;margin-bottom:12px}
  .g{display:grid;grid-template-columns:580px 580px;gap:6px 0}
  table{border-collapse:collapse;font-size:12px;margin-top:6px;width:1130px} td,th{padding:3px 6px;border-bottom:1px solid #eee} th{font-weight:bold;text-align:left;color:#444;border-bottom:1px solid #ccc;white-space:nowrap} th.n,td.n{text-align:right} td.n{white-space:nowrap} td.o{color:#1d4ed8;font-weight:bold} td.p{white-space:normal;max-width:300px;color:#444} td.s{white-space:nowrap}
  .h{font-size:15px;font-weight:bold;margin:8px 0 0 12px} .foot{font-size:11px;color:#666;margin-top:8px}
  </style></head><body><div id="c">
  <h1>${esc(o.package)} vs JavaScript analytics SDKs in a Chrome MV3 extension</h1>
  <div class="sub">One run of <code>make bench</code>, ${esc(meta.started.slice(0, 16).replace('T', ' '))} UTC · ${esc(meta.host.chromium.split(' built')[0])} headless · ${meta.host.cpus} CPU cores (load avg ${meta.loadavg_start?.[0] ?? '?'}) · N = ${s.n.toLocaleString('en')} · everything in the extension's service worker, traffic to 127.0.0.1 only</div>
  <div class="g">${panels.map((p) => `<div>${p}</div>`).join('')}</div>
  <div class="h">Our goals (issue 17), the best peer of the same run, ours ÷ best peer (or ÷ target where no peer has the figure)</div>
  <table style="margin-left:12px"><tr><th>goal</th><th class="n">ours</th><th class="n">target</th><th class="n">best peer</th><th class="n">ratio</th><th></th></tr>${goals}</table>
  <div class="foot">* page: the SDK does not work in a service worker (see bench/results.json); it was measured in an extension page instead, and is left out of the best peer's time figures. Ours: 1 POST per event (Inhouse API); peers batch. Time figures vary ±30 % between runs on 2 shared cores.${s.peers_error ? ` Peers: ${esc(s.peers_error)}.` : ''}</div>
  </div></body></html>`;
}

export async function renderChart(summary, meta, file, chromium) {
  const fs = await import('node:fs');
  const path = await import('node:path');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 }, deviceScaleFactor: 1 });
    const html = chartHtml(summary, meta);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const outDir = new URL('./out/', import.meta.url).pathname;
    fs.mkdirSync(outDir, { recursive: true });
    fs.writeFileSync(path.join(outDir, 'bench.html'), html);
    await page.setContent(html);
    await page.locator('#c').screenshot({ path: file });
  } finally {
    await browser.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const fs = await import('node:fs');
  const { createRequire } = await import('node:module');
  const root = new URL('..', import.meta.url).pathname;
  const { chromium } = createRequire(root + 'package.json')('playwright-core');
  const j = JSON.parse(fs.readFileSync(process.argv[2] || new URL('./results.json', import.meta.url), 'utf8'));
  await renderChart(j.summary, j.meta, process.argv[3] || root + 'docs/bench.png', chromium);
}
