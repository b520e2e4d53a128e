// Gives the wasm's imports short names, in the module and in wasm-bindgen's glue together:
// wasm-bindgen names each import `__wbg_<name>_<16 hex digits>` from the module
// `./inhouse_tracker_bg.js`, and both the wasm's import section and the glue's import object
// carry every name. The hashes do not compress: for 107 imports, measured 3.3 KB of the gzipped
// package (1.9 KB in the wasm, 1.4 KB in the JS). The names become `a`, `b`, ... `ba`, ... from
// module `w`.
// Usage: node scripts/lib/short-imports.mjs <out dir> <name> (rewrites <name>_bg.wasm and <name>.js)
import fs from 'node:fs';
import path from 'node:path';
import { imports, sections, writeLeb as leb, writeName as str } from './wasm-binary.mjs';

const GLUE_MODULE = (name) => `./${name}_bg.js`;

/** The n-th short name: a, b, ..., z, ba, bb, ... (object keys, where a keyword is a name too). */
function shortName(n) {
  let s = '';
  do {
    s = String.fromCharCode(97 + (n % 26)) + s;
    n = Math.floor(n / 26);
  } while (n);
  return s;
}

/** `wasm` and its `glue` with the imports of `moduleName` renamed in both; throws when the glue
 * does not name each of them exactly once as a key of its import object. */
export function shortenImports(wasm, glue, moduleName) {
  const renames = new Map();
  const parts = [wasm.subarray(0, 8)];
  for (const sec of sections(wasm)) {
    if (sec.id !== 2) {
      parts.push(wasm.subarray(sec.at, sec.end));
      continue;
    }
    const entries = imports(wasm, sec).map(({ module, name, desc }) => {
      if (module !== moduleName) return Buffer.concat([str(module), str(name), desc]);
      if (!renames.has(name)) renames.set(name, shortName(renames.size));
      return Buffer.concat([str('w'), str(renames.get(name)), desc]);
    });
    const body = Buffer.concat([leb(entries.length), ...entries]);
    parts.push(Buffer.from([2]), leb(body.length), body);
  }
  // The glue's import object: each key once, as `<name>: function`, and the module's key.
  let out = glue;
  for (const [old, short] of renames) {
    const key = new RegExp(`(\\n\\s+)${old}(: function)`, 'g');
    const found = out.match(key)?.length ?? 0;
    if (found !== 1) throw new Error(`the glue names the import ${old} ${found} times as a key, not once`);
    out = out.replace(key, `$1${short}$2`);
  }
  const moduleKey = `"${moduleName}": import0`;
  if (out.split(moduleKey).length !== 2) throw new Error(`the glue's import object has no single ${moduleKey}`);
  out = out.replace(moduleKey, 'w: import0');
  return { wasm: Buffer.concat(parts), glue: out, renamed: renames.size };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [dir, name] = process.argv.slice(2);
  const wasmFile = path.join(dir, `${name}_bg.wasm`);
  const glueFile = path.join(dir, `${name}.js`);
  const r = shortenImports(fs.readFileSync(wasmFile), fs.readFileSync(glueFile, 'utf8'), GLUE_MODULE(name));
  fs.writeFileSync(wasmFile, r.wasm);
  fs.writeFileSync(glueFile, r.glue);
}
