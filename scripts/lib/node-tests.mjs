// Runs the node:test files (*.test.mjs) of one directory, each file in its own process, and
// prints `<label>: N passed, M failed` last; exits non-zero on failure (a file whose run failed
// outside any test counts too). The loader's and the checker's suites use it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export function runNodeTests(dir, label, { timeoutMs = 300_000 } = {}) {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => path.join(dir, f));
  const tapFile = path.join(dir, '.tap.txt');
  const run = spawnSync(process.execPath, ['--test', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tapFile}`, ...files], {
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: timeoutMs,
  });
  const tap = fs.existsSync(tapFile) ? fs.readFileSync(tapFile, 'utf8') : '';
  fs.rmSync(tapFile, { force: true });
  const count = (what) => Number(tap.match(new RegExp(`^# ${what} (\\d+)$`, 'm'))?.[1] ?? NaN);
  let [passed, failed] = [count('pass'), count('fail')];
  if (!Number.isFinite(passed) || !Number.isFinite(failed)) [passed, failed] = [0, 1]; // it never reported
  if (run.status !== 0 && failed === 0) failed = 1;
  console.log(`${label}: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}
