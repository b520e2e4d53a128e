// `npx @inhouse/chrome-tracker check <extension dir or .zip>`: what a store review or the first
// run would find wrong with a built extension that uses this package, found before uploading it.
// Reads the manifest and every file (a directory, or a .zip/.xpi as uploaded); no network, no
// browser. Each finding names the file and gives a one-line fix. Node >= 18, no dependencies.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

/** The API the tracker sends to unless `baseUrl` says otherwise. */
export const DEFAULT_API = 'https://api.tryinhouse.co';

// What marks the package's files in any build (strings a minifier keeps).
const LOADER_MARK = "cannot load the tracker's wasm from"; // index.js: the tracker itself

// Script loaders of analytics and error SDKs (and public CDNs): remote code in an extension.
const REMOTE_LOADERS = [
  'cdn.segment.com', 'cdn.segment.io', 'cdn.amplitude.com', 'cdn.mxpnl.com', 'cdn.mixpanel.com',
  'i.posthog.com/static', 'cdn.rudderlabs.com', 'googletagmanager.com/gtag/js', 'google-analytics.com/analytics.js',
  'browser.sentry-cdn.com', 'js.sentry-cdn.com', 'cdn.jsdelivr.net', 'unpkg.com', 'cdnjs.cloudflare.com',
];

// ---------------------------------------------------------------- reading the extension

/** The entries of a zip archive (stored or deflated), by path. */
export function readZip(buffer) {
  const files = new Map();
  // The end-of-central-directory record: its signature, searched from the end (a comment may follow).
  let end = -1;
  for (let i = buffer.length - 22; i >= Math.max(0, buffer.length - 22 - 65535); i--) {
    if (buffer.readUInt32LE(i) === 0x06054b50) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new Error('not a zip archive (no end of central directory)');
  const count = buffer.readUInt16LE(end + 10);
  let at = buffer.readUInt32LE(end + 16);
  for (let n = 0; n < count; n++) {
    if (buffer.readUInt32LE(at) !== 0x02014b50) throw new Error('a damaged zip archive (central directory)');
    const method = buffer.readUInt16LE(at + 10);
    const size = buffer.readUInt32LE(at + 20);
    const nameLength = buffer.readUInt16LE(at + 28);
    const extraLength = buffer.readUInt16LE(at + 30);
    const commentLength = buffer.readUInt16LE(at + 32);
    const local = buffer.readUInt32LE(at + 42);
    const name = buffer.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extraLength + commentLength;
    if (name.endsWith('/')) continue;
    const dataAt = local + 30 + buffer.readUInt16LE(local + 26) + buffer.readUInt16LE(local + 28);
    const raw = buffer.subarray(dataAt, dataAt + size);
    if (method === 0) files.set(name, raw);
    else if (method === 8) files.set(name, zlib.inflateRawSync(raw));
    else throw new Error(`${name}: compression method ${method} is not supported`);
  }
  return files;
}

/** The files of an unpacked extension directory, by path relative to it (with `/`). */
function readDirectory(dir) {
  const files = new Map();
  const walk = (sub) => {
    for (const d of fs.readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${d.name}` : d.name;
      if (d.isDirectory()) {
        if (d.name !== 'node_modules' && d.name !== '.git') walk(rel);
      } else if (d.isFile()) files.set(rel, fs.readFileSync(path.join(dir, rel)));
    }
  };
  walk('');
  return files;
}

/** The extension at `location` (a directory, or a .zip/.xpi file), as `Map<path, Buffer>`. */
export function readExtension(location) {
  const stat = fs.statSync(location);
  return stat.isDirectory() ? readDirectory(location) : readZip(fs.readFileSync(location));
}

// ---------------------------------------------------------------- helpers

const isScript = (f) => /\.(m?js|cjs)$/i.test(f);
const isPage = (f) => /\.html?$/i.test(f);
const norm = (p) => path.posix.normalize(p.replace(/^\/+/, '')).replace(/^\.\//, '');

/** A Chrome match pattern as a RegExp over URLs (or over another pattern's text). */
function matchPattern(pattern) {
  if (pattern === '<all_urls>') return /^(https?|wss?|ftp|file):\/\/.*$/;
  const m = /^(\*|https?|wss?|file|ftp):\/\/([^/]*)(\/.*)$/.exec(pattern);
  if (!m) return null;
  const [, scheme, host, p] = m;
  const esc = (s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  const schemeRe = scheme === '*' ? '(https?|wss?)' : esc(scheme);
  const hostRe = host === '*' ? '[^/:]*' : host.startsWith('*.') ? `([^/:]*\\.)?${esc(host.slice(2))}` : esc(host);
  return new RegExp(`^${schemeRe}://${hostRe}(:\\d+|:\\*)?${esc(p).replace(/\*/g, '.*')}$`);
}

/** Whether the match pattern `pattern` covers `url` (a URL or another pattern). */
const covers = (pattern, url) => matchPattern(pattern)?.test(url) ?? false;

/** The script files the manifest runs as the background, and whether as a module. */
function background(manifest) {
  const bg = manifest.background ?? {};
  const scripts = [...(bg.service_worker ? [bg.service_worker] : []), ...(Array.isArray(bg.scripts) ? bg.scripts : [])];
  return { scripts: scripts.map(norm), module: bg.type === 'module', page: bg.page ? norm(bg.page) : null };
}

/** The files a script imports statically (`import … from './x.js'`), relative to it. */
function staticImports(source, from) {
  const out = [];
  for (const m of source.matchAll(/(?:^|[;\s])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|(?:^|[;\s])import\s*['"]([^'"]+)['"]/g)) {
    const spec = m[1] ?? m[2];
    if (spec.startsWith('.') || spec.startsWith('/')) out.push(norm(spec.startsWith('/') ? spec : path.posix.join(path.posix.dirname(from), spec)));
  }
  return out;
}

/** Whether a script uses module syntax (it fails to load as a classic script). */
const usesModuleSyntax = (source) =>
  /(?:^|[;\n}])\s*(?:import\s*(?:[\w*{$][^'"`;]*from\s*)?['"][^'"]+['"]|export\s*[{*]|export\s+(?:default|const|let|var|function|class|async)\b)/.test(source) || /\bimport\.meta\b/.test(source);

/** The `.wasm` paths a script names (string literals), as written. */
const wasmReferences = (source) => [...new Set([...source.matchAll(/['"`]([^'"`\s]*?[\w-]+\.wasm)(?:\?[^'"`]*)?['"`]/g)].map((m) => m[1]))];

// ---------------------------------------------------------------- the checks

/**
 * The findings for the extension whose files are `files` (`Map<path, Buffer>`): `{id, severity
 * ('error' | 'warning'), file, message, fix}`. `options.api`: the API origin (default: the
 * `baseUrl` found in the code, else Inhouse's); `options.plan`: a tracking plan (event names as
 * keys) to check the names of `track('…')` calls against.
 */
export function checkExtension(files, options = {}) {
  const findings = [];
  const add = (severity, id, file, message, fix) => findings.push({ id, severity, file, message, fix });
  const manifestText = files.get('manifest.json')?.toString('utf8');
  if (manifestText === undefined) {
    add('error', 'manifest-missing', 'manifest.json', 'no manifest.json at the top of the extension', 'check the path: give the built extension directory (or its .zip), not the project');
    return { findings, target: null, usesTracker: false };
  }
  let manifest;
  try {
    manifest = JSON.parse(manifestText.replace(/^\uFEFF/, ''));
  } catch (e) {
    add('error', 'manifest-invalid', 'manifest.json', `manifest.json is not JSON: ${e.message}`, 'fix the syntax (browsers refuse the extension)');
    return { findings, target: null, usesTracker: false };
  }
  const scripts = [...files.keys()].filter(isScript);
  // Every script and page decoded once, for every check that reads them.
  const texts = new Map([...files].filter(([f]) => isScript(f) || isPage(f)).map(([f, data]) => [f, data.toString('utf8')]));
  const text = (f) => texts.get(f) ?? '';
  const trackerFiles = scripts.filter((f) => text(f).includes(LOADER_MARK));
  const usesTracker = trackerFiles.length > 0;
  const bg = background(manifest);
  const gecko = manifest.browser_specific_settings?.gecko;
  const firefox = Boolean(gecko) || (bg.scripts.length > 0 && !manifest.background?.service_worker);
  const target = firefox ? 'firefox' : 'chrome';
  const mv3 = manifest.manifest_version === 3;
  const permissions = new Set([...(manifest.permissions ?? [])]);

  // -- the manifest the tracker needs
  if (usesTracker) {
    for (const [permission, why] of [['storage', 'the tracker keeps its queue in storage.local'], ['alarms', 'the tracker resumes delivery and counts daily activity with an alarm']]) {
      if (!permissions.has(permission)) add('error', `permission-${permission}`, 'manifest.json', `no "${permission}" permission: ${why}`, `add "${permission}" to "permissions"`);
    }
    const csp = mv3 ? manifest.content_security_policy?.extension_pages : typeof manifest.content_security_policy === 'string' ? manifest.content_security_policy : undefined;
    if (!csp || !/'wasm-unsafe-eval'/.test(csp)) {
      add('error', 'csp-wasm', 'manifest.json', csp ? `the extension pages' CSP lacks 'wasm-unsafe-eval': the tracker's wasm cannot compile` : `no CSP for extension pages: the default one forbids compiling the tracker's wasm`,
        mv3 ? `set "content_security_policy": { "extension_pages": "script-src 'self' 'wasm-unsafe-eval'; object-src 'self'" }` : `add 'wasm-unsafe-eval' to script-src in "content_security_policy"`);
    }
    const api = apiOrigin(text, scripts, options.api);
    const hosts = mv3 ? manifest.host_permissions ?? [] : [...permissions];
    if (!hosts.some((p) => covers(p, `${api}/`))) {
      add('warning', 'host-permission', 'manifest.json', `no host permission covers the API (${api}): every POST pays a CORS preflight${firefox ? ', and Firefox may block it' : ''}`, `add "${api}/*" to "host_permissions"`);
    }
    // -- the wasm the loader will fetch
    const wasmFiles = [...files.keys()].filter((f) => f.endsWith('.wasm'));
    if (wasmFiles.length === 0) {
      add('error', 'wasm-missing', trackerFiles[0], 'the tracker is bundled but no .wasm file is in the extension: init() rejects with WASM_LOAD_FAILED', "copy node_modules/@inhouse/chrome-tracker/inhouse_tracker_bg.wasm next to the bundle, or pass init({ wasmUrl })");
    } else {
      const wanted = [];
      let found = false;
      for (const f of scripts) {
        for (const ref of wasmReferences(text(f))) {
          if (/^(https?:)?\/\//.test(ref)) continue; // a remote .wasm is remote code: reported below
          const candidates = ref.startsWith('/') ? [norm(ref)] : [norm(path.posix.join(path.posix.dirname(f), ref)), norm(ref)];
          if (candidates.some((c) => files.has(c))) found = true;
          else wanted.push(`${ref} (from ${f})`);
        }
      }
      if (!found) {
        add('error', 'wasm-not-found', trackerFiles[0], `the loader will fetch ${wanted.length ? wanted.join(', ') : 'a .wasm the bundle does not name'}, which is not in the extension (it has ${wasmFiles.join(', ')})`,
          "put the .wasm where the bundle expects it, or pass init({ wasmUrl: chrome.runtime.getURL('<its path>') })");
      }
    }
  }

  // -- the background
  for (const f of bg.scripts) {
    if (!files.has(f)) {
      add('error', 'background-missing', 'manifest.json', `the background script ${f} is not in the extension`, 'fix "background" in the manifest or the build output');
      continue;
    }
    if (!bg.module && usesModuleSyntax(text(f))) {
      add('error', 'background-not-module', f, `${f} uses import/export but the background is not a module: it fails to load`, `set "background": { ..., "type": "module" } (or bundle it as a classic script)`);
    }
  }
  if (usesTracker && bg.scripts.length === 0 && !bg.page) {
    add('error', 'no-background', 'manifest.json', 'no background: the tracker runs there (init() is refused in pages and content scripts)', `add "background": { "service_worker": "background.js", "type": "module" }`);
  }

  // -- content scripts that load the client by URL
  const war = manifest.web_accessible_resources ?? [];
  for (const cs of manifest.content_scripts ?? []) {
    for (const f of (cs.js ?? []).map(norm)) {
      const source = text(f);
      for (const m of source.matchAll(/getURL\(\s*['"`]([^'"`]*client[^'"`]*\.js)['"`]\s*\)/g)) {
        const res = norm(m[1]);
        const ok = (cs.matches ?? []).every((site) =>
          war.some((entry) => (typeof entry === 'string' ? resourceMatches(entry, res) : (entry.resources ?? []).some((r) => resourceMatches(r, res)) && (entry.matches ?? []).some((p) => p === site || covers(p, site.replace(/\*/g, 'x'))))));
        if (!files.has(res)) add('error', 'client-missing', f, `${f} loads ${res}, which is not in the extension`, 'copy @inhouse/chrome-tracker/client.js there, or bundle the client into the content script');
        else if (!ok) add('error', 'client-not-web-accessible', f, `${f} imports ${res}, which is not web-accessible to the pages it runs on (${(cs.matches ?? []).join(', ')}): the import fails`, `add { "resources": ["${res}"], "matches": ${JSON.stringify(cs.matches ?? [])} } to "web_accessible_resources"`);
      }
    }
  }

  // -- remote code
  for (const [f, source] of texts) {
    const lineOf = (i) => source.slice(0, i).split('\n').length;
    const remote = (i, what) => add('error', 'remote-code', `${f}:${lineOf(i)}`, `${what}: the stores reject remotely hosted code, and MV3 does not run it`, 'bundle the code into the extension instead of loading it');
    if (isPage(f)) for (const m of source.matchAll(/<script[^>]*\ssrc\s*=\s*["']?((?:https?:)?\/\/[^"'\s>]+)/gi)) remote(m.index, `a remote <script src="${m[1]}">`);
    if (!isScript(f)) continue;
    for (const m of source.matchAll(/importScripts\s*\(\s*['"`]((?:https?:)?\/\/[^'"`]+)/g)) remote(m.index, `importScripts("${m[1]}")`);
    for (const m of source.matchAll(/\bimport\s*\(\s*['"`]((?:https?:)?\/\/[^'"`]+)/g)) remote(m.index, `import("${m[1]}")`);
    for (const m of source.matchAll(/\bfrom\s*['"]((?:https?:)?\/\/[^'"]+)['"]/g)) remote(m.index, `an import from ${m[1]}`);
    for (const host of REMOTE_LOADERS) {
      const i = source.indexOf(host);
      if (i >= 0 && !/^\s*(\/\/|\*)/.test(source.slice(source.lastIndexOf('\n', i) + 1, i))) remote(i, `a script loader's URL (${host})`);
    }
    for (const m of source.matchAll(/(?<![\w$.])(?:eval\s*\(|new\s+Function\s*\(|(?<![\w$])Function\s*\(\s*['"`])/g)) {
      const after = source.slice(m.index, m.index + 40);
      // Reading the global object (`Function('return this')()`) is not code from data.
      if (/Function\s*\(\s*['"`]return this['"`]\s*\)/.test(after)) continue;
      add('error', 'eval', `${f}:${lineOf(m.index)}`, `${after.split('\n')[0].trim()}…: code built from strings is refused by MV3's CSP and by store review`, 'remove it (a bundler setting such as devtool: "eval" for webpack, or a dependency, may bring it)');
    }
  }

  // -- Firefox
  if (firefox) {
    if (!gecko?.id) add('error', 'gecko-id', 'manifest.json', 'a Firefox build without browser_specific_settings.gecko.id: Firefox Add-ons requires it for Manifest V3 (and x-inhouse-app is runtime.id)', 'add "browser_specific_settings": { "gecko": { "id": "name@example.com" } }');
    const dcp = gecko?.data_collection_permissions;
    if (!dcp) {
      add('error', 'data-collection', 'manifest.json', 'no browser_specific_settings.gecko.data_collection_permissions: required of new add-ons on Firefox Add-ons since November 2025', 'add "data_collection_permissions": { "required": ["none"], "optional": ["technicalAndInteraction"] }');
    } else if (usesTracker && ![...(dcp.required ?? []), ...(dcp.optional ?? [])].includes('technicalAndInteraction')) {
      add('warning', 'data-collection', 'manifest.json', 'the add-on sends usage events but its data_collection_permissions do not list technicalAndInteraction', 'add "technicalAndInteraction" to "optional" (the tracker stays opted out until the user grants it)');
    }
  }

  // -- the tracking plan
  if (options.plan) {
    const known = new Set(Object.keys(options.plan).map((k) => k.toLowerCase()));
    for (const f of scripts) {
      const source = text(f);
      if (source.includes(LOADER_MARK)) continue; // the package's own code
      for (const m of source.matchAll(/\btrack\s*\(\s*(['"`])([A-Za-z][\w]*)\1/g)) {
        if (!known.has(m[2].toLowerCase())) {
          add('error', 'plan-unknown-event', `${f}:${source.slice(0, m.index).split('\n').length}`, `track('${m[2]}'): the event is not in the tracking plan`, `add ${m[2]} to the plan, or fix the name`);
        }
      }
    }
  }
  return { findings, target, usesTracker };
}

/** Whether a web_accessible_resources entry (a path, possibly with `*`) names `res`. */
const resourceMatches = (entry, res) => new RegExp(`^${norm(entry).replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(res);

/** The API's origin: `--api`, else a `baseUrl: 'https://…'` in the code, else Inhouse's. */
function apiOrigin(text, scripts, given) {
  if (given) return new URL(given).origin;
  for (const f of scripts) {
    const m = /baseUrl\s*:\s*['"`](https?:\/\/[^'"`]+)['"`]/.exec(text(f));
    if (m && !text(f).includes(LOADER_MARK)) return new URL(m[1]).origin;
  }
  return DEFAULT_API;
}
