// Builds the demo extension the way a customer would use the package: installs the packed
// tarball (dist/inhouse-chrome-tracker-<v>.tgz) into a scratch npm project, then copies the
// extension's sources and the package's runtime files into dist/extension-demo/, with a generated
// demo-config.json (server URL and development credentials). The sources stay clean.
//
//   node extension-demo/tools/build.mjs [--out DIR] [--base-url URL] [--token-id ID] [--token-secret S]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SRC = path.join(ROOT, 'extension-demo/src');
export const DEFAULT_OUT = path.join(ROOT, 'dist/extension-demo');
export const EXTENSION_ID = 'plegabhjiddkllfafkfabfigjeelipcj';
export const DEMO_TOKEN = { tokenId: 'demo_token_id', tokenSecret: 'demo_token_secret' };
/** The package's files an extension needs at run time. */
const RUNTIME_FILES = ['index.js', 'inhouse_tracker.js', 'inhouse_tracker_bg.wasm', 'client.js', 'package.json'];
const PACKAGE = '@inhouse/chrome-tracker';

export function findTarball() {
  const dist = path.join(ROOT, 'dist');
  const found = fs.existsSync(dist) ? fs.readdirSync(dist).filter((f) => /^inhouse-chrome-tracker-.*\.tgz$/.test(f)) : [];
  if (found.length !== 1) {
    throw new Error(`expected exactly one dist/inhouse-chrome-tracker-*.tgz, found ${found.length}: run ./scripts/build-pkg.sh`);
  }
  return path.join(dist, found[0]);
}

/** Installs the tarball into dist/.demo-npm and returns the installed package's directory. */
export function installPackage(tarball = findTarball()) {
  const scratch = path.join(ROOT, 'dist/.demo-npm');
  fs.rmSync(scratch, { recursive: true, force: true });
  fs.mkdirSync(scratch, { recursive: true });
  fs.writeFileSync(path.join(scratch, 'package.json'), JSON.stringify({ name: 'inhouse-demo-scratch', private: true, version: '0.0.0' }, null, 2));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--prefer-offline', tarball], { cwd: scratch, stdio: ['ignore', 'ignore', 'inherit'] });
  const dir = path.join(scratch, 'node_modules', PACKAGE);
  for (const f of RUNTIME_FILES) {
    if (!fs.existsSync(path.join(dir, f))) throw new Error(`the installed package lacks ${f}`);
  }
  return dir;
}

/** Writes the generated demo-config.json of a built extension. */
export function writeConfig(outDir, { baseUrl, tokenId = DEMO_TOKEN.tokenId, tokenSecret = DEMO_TOKEN.tokenSecret, debug = false, options = null, plan = true }) {
  // `options`: more tracker options (the tests set a short sessionTimeoutMs). `plan: false`: the
  // demo's tracking plan off (the end-to-end tests track events of their own).
  const config = { baseUrl, tokenId, tokenSecret, ...(debug ? { debug: true } : {}), ...(options ? { options } : {}), ...(plan ? {} : { plan: false }) };
  fs.writeFileSync(path.join(outDir, 'demo-config.json'), JSON.stringify(config, null, 2) + '\n');
}

/** Builds the extension into outDir from the sources and the installed package. */
export function buildDemo({ outDir = DEFAULT_OUT, config = null, packageDir = null } = {}) {
  const pkg = packageDir ?? installPackage();
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.cpSync(SRC, outDir, { recursive: true });
  const vendor = path.join(outDir, 'vendor/inhouse');
  fs.mkdirSync(vendor, { recursive: true });
  for (const f of RUNTIME_FILES) fs.copyFileSync(path.join(pkg, f), path.join(vendor, f));
  writeConfig(outDir, config ?? { baseUrl: 'http://127.0.0.1:8787/v1/api' });
  const version = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'))).version;
  return { outDir, version };
}

/** A copy of a built extension with its own demo-config.json (tests: one server per test). */
export function cloneWithConfig(builtDir, outDir, config) {
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.cpSync(builtDir, outDir, { recursive: true });
  writeConfig(outDir, config);
  return outDir;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : dflt;
  };
  const { outDir, version } = buildDemo({
    outDir: path.resolve(opt('--out', DEFAULT_OUT)),
    config: {
      baseUrl: opt('--base-url', 'http://127.0.0.1:8787/v1/api'),
      tokenId: opt('--token-id', DEMO_TOKEN.tokenId),
      tokenSecret: opt('--token-secret', DEMO_TOKEN.tokenSecret),
    },
  });
  console.log(`built ${path.relative(ROOT, outDir)}/ with ${PACKAGE}@${version} (extension id ${EXTENSION_ID})`);
}
