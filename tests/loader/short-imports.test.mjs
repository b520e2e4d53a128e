// The build step that shortens the imports' names (scripts/lib/short-imports.mjs): the wasm's
// import section and the glue's import object are renamed together, other modules' imports are
// left alone, and a glue that does not name an import exactly once as a key stops the build.
// (The shipped package goes through it: every other test of the package links through the short
// names.)
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { shortenImports } from '../../scripts/lib/short-imports.mjs';
import { writeLeb, writeName } from '../../scripts/lib/wasm-binary.mjs';

const MODULE = './pkg_bg.js';
const leb = (n) => [...writeLeb(n)];
const str = (s) => [...writeName(s)];
const section = (id, body) => [id, ...leb(body.length), ...body];

/** A module importing each [module, name] as a function `() -> ()`, and a memory from `env`. */
function wasmImporting(imports) {
  const type = section(1, [1, 0x60, 0, 0]);
  const entries = imports.flatMap(([m, n]) => [...str(m), ...str(n), 0x00, 0x00]);
  const memory = [...str('env'), ...str('memory'), 0x02, 0x00, 0x01];
  const imp = section(2, [...leb(imports.length + 1), ...entries, ...memory]);
  return Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...type, ...imp]);
}
const glueFor = (names) => `function __wbg_get_imports() {
    const import0 = {
        __proto__: null,
${names.map((n) => `        ${n}: function() {\n            return 1;\n        },`).join('\n')}
    };
    return {
        __proto__: null,
        "${MODULE}": import0,
    };
}`;

test('the names are short in the wasm and in the glue, and they link', () => {
  const names = ['__wbg_get_0123456789abcdef', '__wbg_set_fedcba9876543210', '__wbindgen_init_externref_table'];
  const wasm = wasmImporting([...names.map((n) => [MODULE, n]), ['env', 'kept']]);
  const r = shortenImports(wasm, glueFor(names), MODULE);
  assert.equal(r.renamed, 3);
  const mod = new WebAssembly.Module(r.wasm);
  assert.deepEqual(WebAssembly.Module.imports(mod).map((i) => `${i.module}.${i.name}`), ['w.a', 'w.b', 'w.c', 'env.kept', 'env.memory']);
  for (const n of names) assert.ok(!r.glue.includes(n), `${n} is gone from the glue`);
  const imports = new Function(`${r.glue}\nreturn __wbg_get_imports();`)();
  assert.deepEqual(Object.keys(imports.w), ['a', 'b', 'c']);
  // The renamed module instantiates against the renamed glue's object.
  new WebAssembly.Instance(mod, { ...imports, env: { kept() {}, memory: new WebAssembly.Memory({ initial: 1 }) } });
  assert.ok(r.wasm.length < wasm.length);
});

test('a glue that does not name an import once as a key stops the build', () => {
  const names = ['__wbg_get_0123456789abcdef', '__wbg_set_fedcba9876543210'];
  const wasm = wasmImporting(names.map((n) => [MODULE, n]));
  assert.throws(() => shortenImports(wasm, glueFor(names.slice(0, 1)), MODULE), /__wbg_set_fedcba9876543210 0 times/);
  assert.throws(() => shortenImports(wasm, glueFor([names[0], ...names]), MODULE), /__wbg_get_0123456789abcdef 2 times/);
  assert.throws(() => shortenImports(wasm, glueFor(names).replace(`"${MODULE}": import0`, 'other: import0'), MODULE), /no single/);
});
