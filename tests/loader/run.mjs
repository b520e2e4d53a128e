// The loader's tests (tests/loader/*.test.mjs, node:test) against the built package in dist/pkg:
// the loader and the wasm in Node through the /testing entry. Each file runs in its own process.
// The last line is `loader: N passed, M failed`; the exit status is non-zero on failure.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const files = fs.readdirSync(HERE).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => path.join(HERE, f));
const run = spawnSync(process.execPath, ['--test', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', '--test-reporter-destination=' + path.join(HERE, '.tap.txt'), ...files], {
  stdio: ['ignore', 'inherit', 'inherit'],
  timeout: 300_000,
});
const tap = fs.existsSync(path.join(HERE, '.tap.txt')) ? fs.readFileSync(path.join(HERE, '.tap.txt'), 'utf8') : '';
fs.rmSync(path.join(HERE, '.tap.txt'), { force: true });
const count = (what) => Number(tap.match(new RegExp(`^# ${what} (\\d+)$`, 'm'))?.[1] ?? NaN);
let [passed, failed] = [count('pass'), count('fail')];
if (!Number.isFinite(passed) || !Number.isFinite(failed)) [passed, failed] = [0, 1]; // it never reported
// A file whose own run failed (an error outside any test) is not in the per-test counts.
if (run.status !== 0 && failed === 0) failed = 1;
console.log(`loader: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
