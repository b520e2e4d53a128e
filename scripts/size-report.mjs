// What the bytes of the shipped wasm are: the code of each function, grouped by crate, from a copy
// of the package's wasm optimised exactly as the shipped one but keeping its function names
// (`SIZE_REPORT=1 ./scripts/build-pkg.sh` writes it to target/pkg/names/). Reads the module's
// code and name sections itself (no twiggy needed on the machine), demangles Rust's names, and
// prints the totals by crate and the largest functions. `make bench` prints it; `--json` writes
// the figures instead. Usage: node scripts/size-report.mjs [wasm] [--top N] [--json]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { imports, readLeb as leb, sections } from './lib/wasm-binary.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Rust's legacy mangling (`_ZN4core3fmt5write17h…E`) as a path (`core::fmt::write`). */
export function demangle(name) {
  const m = /^_?_ZN(.*)E(\.\d+)?$/.exec(name);
  // Names already demangled (as rustc writes them in the name section) keep only their hash.
  if (!m) return name.replace(/::h[0-9a-f]{16}$/, '');
  const parts = [];
  let rest = m[1];
  while (rest.length) {
    const n = /^(\d+)/.exec(rest);
    if (!n) return name;
    const len = Number(n[1]);
    parts.push(rest.slice(n[1].length, n[1].length + len));
    rest = rest.slice(n[1].length + len);
  }
  if (/^h[0-9a-f]{16}$/.test(parts.at(-1) ?? '')) parts.pop();
  const unescape = (p) => p
    .replace(/^_\$/, '$')
    .replace(/\$(SP|BP|RF|LT|GT|LP|RP|C|u[0-9a-f]+)\$/g, (_, c) => ({ SP: '@', BP: '*', RF: '&', LT: '<', GT: '>', LP: '(', RP: ')', C: ',' })[c] ?? String.fromCodePoint(parseInt(c.slice(1), 16)))
    .replace(/\.\./g, '::');
  return parts.map(unescape).join('::');
}

/** The crate a (demangled) function belongs to: the first path segment of its type or path. */
export function crateOf(name) {
  if (/^(__wbindgen|__wbg_|__externref|__wbg|wasm-bindgen)/.test(name)) return 'wasm-bindgen glue';
  const m = /^[<&\s]*(?:mut\s+|dyn\s+|impl\s+)*([A-Za-z_][\w]*)(?:\[[0-9a-f]+\])?::/.exec(name);
  if (!m) return /^(dlmalloc|memcpy|memset|memmove|memcmp|rust_)/.test(name) ? 'std (runtime)' : '(other)';
  return m[1];
}

/** The sizes of `wasmPath`'s functions: `{total, code, data, functions: [{name, crate, size}]}`. */
export function analyze(wasmPath) {
  const buf = fs.readFileSync(wasmPath);
  const secs = sections(buf);
  const importSec = secs.find((s) => s.id === 2);
  const imported = importSec ? imports(buf, importSec).filter((i) => i.kind === 0).length : 0;
  const names = new Map();
  const nameSec = secs.find((s) => s.id === 0 && s.name === 'name');
  if (nameSec) {
    let at = nameSec.start;
    while (at < nameSec.end) {
      const sub = buf[at];
      const [size, start] = leb(buf, at + 1);
      if (sub === 1) {
        let [count, p] = leb(buf, start);
        for (let i = 0; i < count; i++) {
          const [index, q] = leb(buf, p);
          const [len, r] = leb(buf, q);
          names.set(index, demangle(buf.toString('utf8', r, r + len)));
          p = r + len;
        }
      }
      at = start + size;
    }
  }
  const functions = [];
  const codeSec = secs.find((s) => s.id === 10);
  let [count, at] = leb(buf, codeSec.start);
  for (let i = 0; i < count; i++) {
    const [size, body] = leb(buf, at);
    const name = names.get(imported + i) ?? `function[${imported + i}]`;
    functions.push({ name, crate: crateOf(name), size: body + size - at });
    at = body + size;
  }
  const data = secs.filter((s) => s.id === 11).reduce((a, s) => a + s.size, 0);
  const named = secs.filter((s) => s.id === 0 && s.name === 'name').reduce((a, s) => a + s.size, 0);
  return { total: buf.length - named, code: codeSec.size, data, functions };
}

/** The report's lines. */
export function report(a, top = 25) {
  const byCrate = new Map();
  for (const f of a.functions) byCrate.set(f.crate, (byCrate.get(f.crate) ?? 0) + f.size);
  const pct = (n) => `${((100 * n) / a.total).toFixed(1)}%`;
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`.padStart(9);
  const lines = [`wasm ${a.total.toLocaleString('en')} B (without the name section): code ${a.code.toLocaleString('en')} B in ${a.functions.length} functions, data ${a.data.toLocaleString('en')} B`, '', 'by crate:'];
  for (const [crate, size] of [...byCrate].sort((x, y) => y[1] - x[1])) lines.push(`${kb(size)} ${pct(size).padStart(6)}  ${crate}`);
  // This crate by module (`core::engine`, `web::shell`, ...): where our own code's bytes are.
  const byModule = new Map();
  for (const f of a.functions.filter((x) => x.crate === 'inhouse_tracker')) {
    const m = /inhouse_tracker::((?:core|web)::\w+|\w+)/.exec(f.name);
    const key = m ? m[1] : '(other)';
    byModule.set(key, (byModule.get(key) ?? 0) + f.size);
  }
  lines.push('', 'inhouse_tracker by module:');
  for (const [module, size] of [...byModule].sort((x, y) => y[1] - x[1])) lines.push(`${kb(size)} ${pct(size).padStart(6)}  ${module}`);
  lines.push('', `the ${top} largest functions:`);
  for (const f of [...a.functions].sort((x, y) => y.size - x.size).slice(0, top)) lines.push(`${kb(f.size)} ${pct(f.size).padStart(6)}  ${f.name.length > 140 ? `${f.name.slice(0, 137)}...` : f.name}`);
  return lines;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const topAt = args.indexOf('--top');
  const top = topAt >= 0 ? Number(args[topAt + 1]) : 25;
  const wasm = args.find((x, i) => !x.startsWith('--') && args[i - 1] !== '--top') ?? path.join(ROOT, 'target/pkg/names/inhouse_tracker_bg.wasm');
  if (!fs.existsSync(wasm)) {
    console.error(`size-report: ${wasm} is missing: SIZE_REPORT=1 ./scripts/build-pkg.sh writes it`);
    process.exit(2);
  }
  const a = analyze(wasm);
  if (json) console.log(JSON.stringify({ total: a.total, code: a.code, data: a.data, functions: a.functions.sort((x, y) => y.size - x.size) }, null, 2));
  else console.log(report(a, top).join('\n'));
}
