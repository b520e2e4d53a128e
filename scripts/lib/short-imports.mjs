// Gives the wasm's imports short names, in the module and in wasm-bindgen's glue together:
// wasm-bindgen names each import `__wbg_<name>_<16 hex digits>` from the module
// `./inhouse_tracker_bg.js`, and both the wasm's import section and the glue's import object
// carry every name. The hashes do not compress: 107 imports, measured 1.7 KB of the gzipped
// package (wasm and glue together). The names become `a`, `b`, ... `ba`, ... from module `w`.
// Usage: node scripts/lib/short-imports.mjs <out dir> <name> (rewrites <name>_bg.wasm and <name>.js)
import fs from 'node:fs';
import path from 'node:path';

const GLUE_MODULE = (name) => `./${name}_bg.js`;

/** An unsigned LEB128 at `at`: [value, next offset]. */
function readLeb(buf, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const b = buf[at++];
    value += (b & 0x7f) * 2 ** shift;
    if (!(b & 0x80)) return [value, at];
    shift += 7;
  }
}

function leb(value) {
  const out = [];
  do {
    let b = value & 0x7f;
    value = Math.floor(value / 128);
    if (value) b |= 0x80;
    out.push(b);
  } while (value);
  return Buffer.from(out);
}

const str = (s) => Buffer.concat([leb(Buffer.byteLength(s)), Buffer.from(s)]);

/** The bytes of an import's description after its kind byte, from `at`: the offset past it. */
function skipDesc(buf, kind, at) {
  const limits = (p) => {
    const flags = buf[p];
    let [, q] = readLeb(buf, p + 1);
    if (flags & 1) [, q] = readLeb(buf, q);
    return q;
  };
  switch (kind) {
    case 0: return readLeb(buf, at)[1]; // function: type index
    case 1: return limits(at + 1); // table: reference type, limits
    case 2: return limits(at); // memory: limits
    case 3: return at + 2; // global: value type, mutability
    case 4: return readLeb(buf, at + 1)[1]; // tag: attribute, type index
    default: throw new Error(`import kind ${kind} unknown`);
  }
}

/** The n-th short name: a, b, ..., z, ba, bb, ... (object keys, where a keyword is a name too). */
function shortName(n) {
  let s = '';
  do {
    s = String.fromCharCode(97 + (n % 26)) + s;
    n = Math.floor(n / 26);
  } while (n);
  return s;
}

export function shortenImports(wasm, glue, moduleName) {
  if (wasm.readUInt32LE(0) !== 0x6d736100) throw new Error('not a wasm module');
  const renames = new Map();
  const parts = [wasm.subarray(0, 8)];
  let at = 8;
  while (at < wasm.length) {
    const id = wasm[at];
    const [size, start] = readLeb(wasm, at + 1);
    const end = start + size;
    if (id !== 2) {
      parts.push(wasm.subarray(at, end));
      at = end;
      continue;
    }
    let [count, p] = readLeb(wasm, start);
    const entries = [];
    for (let i = 0; i < count; i++) {
      let len;
      [len, p] = readLeb(wasm, p);
      const module = wasm.toString('utf8', p, p + len);
      p += len;
      [len, p] = readLeb(wasm, p);
      const name = wasm.toString('utf8', p, p + len);
      p += len;
      const kind = wasm[p];
      const descEnd = skipDesc(wasm, kind, p + 1);
      const desc = wasm.subarray(p, descEnd);
      p = descEnd;
      if (module === moduleName) {
        if (!renames.has(name)) renames.set(name, shortName(renames.size));
        entries.push(Buffer.concat([str('w'), str(renames.get(name)), desc]));
      } else {
        entries.push(Buffer.concat([str(module), str(name), desc]));
      }
    }
    if (p !== end) throw new Error('the import section was not read to its end');
    const body = Buffer.concat([leb(count), ...entries]);
    parts.push(Buffer.from([2]), leb(body.length), body);
    at = end;
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
