// The extension checker's tests (tests/check/*.test.mjs, node:test): `chrome-tracker check` of
// the built package (dist/pkg) on fixtures, one per finding, and on the demo extension.
// The last line is `check: N passed, M failed`; the exit status is non-zero on failure.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNodeTests } from '../../scripts/lib/node-tests.mjs';

runNodeTests(path.dirname(fileURLToPath(import.meta.url)), 'check');
