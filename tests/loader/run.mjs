// The loader's tests (tests/loader/*.test.mjs, node:test) against the built package in dist/pkg:
// the loader and the wasm in Node through the /testing entry. Each file runs in its own process.
// The last line is `loader: N passed, M failed`; the exit status is non-zero on failure.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNodeTests } from '../../scripts/lib/node-tests.mjs';

runNodeTests(path.dirname(fileURLToPath(import.meta.url)), 'loader');
