#!/usr/bin/env bash
# Builds the npm package into dist/pkg and packs it into dist/inhouse-chrome-tracker-<v>.tgz:
# release wasm (plain stable Rust, the toolchain rust-toolchain.toml pins) → wasm-bindgen
# (--target web) → short import names → binaryen's wasm-opt from npm (Debian's breaks modules) →
# the files of pkg-template/ → npm pack. Prints the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
out=dist/pkg
version=$(awk -F'"' '/^version = /{print $2; exit}' Cargo.toml)

# Its own target directory, so that the release build never invalidates the test builds. (The
# stack size comes from .cargo/config.toml.)
cargo build --quiet --release --lib --target wasm32-unknown-unknown -p inhouse-tracker --target-dir target/pkg
rm -rf "$out" && mkdir -p "$out"
wasm-bindgen --target web --no-typescript --experimental-reset-state-function --out-dir "$out" --out-name inhouse_tracker \
  target/pkg/wasm32-unknown-unknown/release/inhouse_tracker.wasm
# The imports' names made short in the wasm and the glue together (scripts/lib/short-imports.mjs).
node scripts/lib/short-imports.mjs "$out" inhouse_tracker
# --low-memory-unused lets it fold constants into addresses: the low 1 KiB is the far end of the
# 128 KiB stack, which the SDK's bounded recursion never reaches. Functions with one caller are
# inlined only when tiny: a few hundred more raw bytes, but what is measured is the gzipped size,
# and the calls that stay compress better than the inlined copies (0.7 KB less).
opt=(--one-caller-inline-max-function-size=20 -Oz --converge --low-memory-unused
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals
  --enable-reference-types --enable-multivalue)
# SIZE_REPORT=1 (make bench): the same optimisation of a copy that keeps the function names, for
# scripts/size-report.mjs (what the bytes of the shipped wasm are, by crate and by function).
if [ "${SIZE_REPORT:-0}" = 1 ]; then
  names=target/pkg/names && rm -rf "$names" && mkdir -p "$names"
  wasm-bindgen --target web --no-typescript --experimental-reset-state-function --keep-debug --out-dir "$names" --out-name inhouse_tracker \
    target/pkg/wasm32-unknown-unknown/release/inhouse_tracker.wasm
  node scripts/lib/short-imports.mjs "$names" inhouse_tracker
  node_modules/.bin/wasm-opt "${opt[@]}" -g --strip-dwarf --strip-producers "$names/inhouse_tracker_bg.wasm" -o "$names/inhouse_tracker_bg.wasm"
fi
node_modules/.bin/wasm-opt "${opt[@]}" --strip-debug --strip-producers --strip-target-features \
  "$out/inhouse_tracker_bg.wasm" -o "$out/inhouse_tracker_bg.wasm"

cp pkg-template/index.js pkg-template/client.js pkg-template/testing.js pkg-template/wxt-analytics.js pkg-template/cli.js pkg-template/check.js pkg-template/index.d.ts pkg-template/client.d.ts pkg-template/testing.d.ts pkg-template/wxt-analytics.d.ts pkg-template/README.md "$out/"
cp pkg-template/package.json "$out/package.json"
node -e '
  const fs = require("fs"); const f = process.argv[1];
  const p = JSON.parse(fs.readFileSync(f)); p.version = process.argv[2];
  fs.writeFileSync(f, JSON.stringify(p, null, 2) + "\n");
' "$out/package.json" "$version"
rm -f dist/*.tgz
(cd "$out" && npm pack --silent --pack-destination .. >/dev/null)

echo "built $(ls dist/*.tgz)"
./scripts/check-size.sh --report
