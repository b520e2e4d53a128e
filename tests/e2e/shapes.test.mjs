// The answers that cross to JavaScript have the shapes index.d.ts declares: a field added,
// renamed or dropped on either side fails here (stats(), flush(), track()'s result).
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { defineTests, assert, env, settle, trackInWorker, log } from './lib.mjs';
import { ROOT } from '../../extension-demo/tools/build.mjs';

const { tests, test } = defineTests();
export default tests;

/** The declared shape of interface `name`: {key: {optional, shape}} (shape for nested object types). */
function declared(name) {
  const file = path.join(ROOT, 'pkg-template/index.d.ts');
  const src = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const literal = (members) => {
    const out = {};
    for (const m of members) {
      if (!ts.isPropertySignature(m)) continue;
      let type = m.type;
      // `{...} | null`: the object part
      if (type && ts.isUnionTypeNode(type)) type = type.types.find((t) => ts.isTypeLiteralNode(t)) ?? type;
      out[m.name.getText(src)] = { optional: !!m.questionToken, shape: type && ts.isTypeLiteralNode(type) ? literal(type.members) : null };
    }
    return out;
  };
  let found = null;
  src.forEachChild((n) => {
    if (ts.isInterfaceDeclaration(n) && n.name.text === name) found = literal(n.members);
  });
  if (!found) throw new Error(`interface ${name} not in index.d.ts`);
  return found;
}

/** Differences between a value and a declared shape, as readable paths. */
function drift(value, shape, at) {
  const out = [];
  for (const [k, d] of Object.entries(shape)) {
    if (!(k in value)) {
      if (!d.optional) out.push(`${at}.${k} declared but missing`);
      continue;
    }
    if (d.shape && value[k] !== null && typeof value[k] === 'object') out.push(...drift(value[k], d.shape, `${at}.${k}`));
  }
  for (const k of Object.keys(value)) if (!(k in shape)) out.push(`${at}.${k} present but not declared`);
  return out;
}

test('stats(), flush() and track() answer with the shapes index.d.ts declares', 60_000, async (t) => {
  const { server, browser } = await env(t);
  await settle(server);
  const [tracked] = await trackInWorker(browser, 'e2e_shape', 1);
  // An error on record, so that lastError's shape is checked too.
  await server.faults({ fail_next: { count: 1, status: 503 } });
  await trackInWorker(browser, 'e2e_shape', 1);
  const { stats, flushed } = await browser.inWorker(async () => {
    const t = globalThis.inhouseDemo.tracker();
    const flushed = await t.flush();
    return { stats: await t.stats(), flushed };
  });
  assert(stats.lastError, 'an error on record');
  const problems = [
    ...drift(stats, declared('TrackerStats'), 'stats()'),
    ...drift(flushed, declared('FlushResult'), 'flush()'),
    ...drift(tracked, declared('TrackResult'), 'track()'),
  ];
  assert(problems.length === 0, `answers and index.d.ts disagree: ${problems.join('; ')}`);
  log(`stats(): ${Object.keys(stats).length} fields, flush(): ${Object.keys(flushed).join(', ')}, track(): ${Object.keys(tracked).join(', ')}: as declared`);
});
