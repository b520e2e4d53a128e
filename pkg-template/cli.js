#!/usr/bin/env node
// npx @inhouse/chrome-tracker check <extension dir or .zip> [--plan plan.json|plan.js] [--api URL] [--json]
// Checks a built extension before store review (./check.js): exit status 1 when it finds an
// error, 0 otherwise (warnings included), 2 when it cannot run.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import fs from 'node:fs';
import { checkExtension, readExtension } from './check.js';

const USAGE = `usage: npx @inhouse/chrome-tracker check <extension dir or .zip> [--plan plan.json|plan.js] [--api https://api.example.com] [--json]

Checks a built extension that uses @inhouse/chrome-tracker: its permissions, CSP and host access,
the background, the .wasm the loader fetches, the client's web access from content scripts, remote
code, Firefox's id and data consent, and (with --plan) that every track('…') name is in the plan.`;

function fail(message) {
  console.error(`chrome-tracker check: ${message}\n\n${USAGE}`);
  process.exit(2);
}

/** A tracking plan from a .json file, or the default (or `plan`) export of a JavaScript module. */
async function loadPlan(file) {
  const full = path.resolve(file);
  if (!fs.existsSync(full)) fail(`--plan ${file}: no such file`);
  if (/\.json$/i.test(full)) return JSON.parse(fs.readFileSync(full, 'utf8'));
  const mod = await import(pathToFileURL(full).href);
  const plan = mod.default ?? mod.plan ?? Object.values(mod).find((v) => v && typeof v === 'object');
  if (!plan || typeof plan !== 'object') fail(`--plan ${file}: no plan object exported (export default, or export const plan)`);
  return plan;
}

async function main(argv) {
  const args = [...argv];
  if (args[0] === 'check') args.shift();
  else if (args[0] === '--help' || args[0] === '-h' || args.length === 0) {
    console.log(USAGE);
    process.exit(args.length === 0 ? 2 : 0);
  } else fail(`unknown command ${JSON.stringify(args[0])}`);
  const options = { json: false };
  let target = null;
  while (args.length) {
    const a = args.shift();
    if (a === '--json') options.json = true;
    else if (a === '--plan') options.plan = args.shift() ?? fail('--plan needs a file');
    else if (a === '--api') options.api = args.shift() ?? fail('--api needs a URL');
    else if (a.startsWith('--')) fail(`unknown option ${a}`);
    else if (target) fail(`one extension at a time (got ${target} and ${a})`);
    else target = a;
  }
  if (!target) fail('which extension? give its built directory or its .zip');
  let files;
  try {
    files = readExtension(path.resolve(target));
  } catch (e) {
    fail(`cannot read ${target}: ${e.message}`);
  }
  let api;
  try {
    api = options.api && new URL(options.api).origin;
  } catch {
    fail(`--api ${options.api}: not a URL`);
  }
  const plan = options.plan ? await loadPlan(options.plan) : undefined;
  const { findings, target: browser, usesTracker } = checkExtension(files, { api, plan });
  const errors = findings.filter((f) => f.severity === 'error').length;
  const warnings = findings.length - errors;
  if (options.json) {
    console.log(JSON.stringify({ ok: errors === 0, extension: target, browser, usesTracker, errors, warnings, findings }, null, 2));
  } else {
    console.log(`chrome-tracker check: ${target} (${browser} build, ${files.size} files${usesTracker ? ', the tracker in it' : ', no tracker found in it'})`);
    for (const f of findings) console.log(`${f.severity.padEnd(7)} ${f.file}: ${f.message}\n        fix: ${f.fix}`);
    console.log(findings.length ? `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}` : 'no problems found');
  }
  process.exit(errors ? 1 : 0);
}

main(process.argv.slice(2)).catch((e) => {
  console.error(`chrome-tracker check: ${e.stack ?? e}`);
  process.exit(2);
});
