#!/usr/bin/env bash
# One idempotent set-up step for a fresh machine: installs every tool the build, the demo, the
# tests and the benchmarks need, and returns in seconds when all of it is already there.
# It checks versions; it never reinstalls what is already right.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_PACK_VERSION=0.15.1
# wasm-bindgen-cli must equal the wasm-bindgen crate in Cargo.lock, exactly.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print; exit}' Cargo.lock)
started=$(date +%s)
say() { printf '[bootstrap] %s\n' "$*"; }
export PATH="$HOME/.cargo/bin:$PATH"

# The toolchain rust-toolchain.toml pins. Machines of this kind carry it as an alias of the
# installed stable (same release); otherwise rustup installs it.
PINNED=$(awk -F'"' '/^channel/{print $2; exit}' rust-toolchain.toml)
HOST=$(RUSTUP_TOOLCHAIN=stable rustc -vV | awk '/^host:/{print $2}')
if ! rustup toolchain list | grep -q "^$PINNED-$HOST"; then
  if [ "$(RUSTUP_TOOLCHAIN=stable rustc --version | awk '{print $2}')" = "$PINNED" ]; then
    say "the pinned Rust $PINNED is the installed stable: aliasing it"
    ln -s "stable-$HOST" "${RUSTUP_HOME:-$HOME/.rustup}/toolchains/$PINNED-$HOST"
  else
    say "installing Rust $PINNED (rust-toolchain.toml)"
    rustup toolchain install "$PINNED" --profile minimal --component rustfmt,clippy
  fi
fi
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(wasm-pack --version 2>/dev/null | awk '{print $2}')" != "$WASM_PACK_VERSION" ]; then
  say "installing wasm-pack $WASM_PACK_VERSION (a few minutes, once)"
  cargo install wasm-pack --locked --version "$WASM_PACK_VERSION" ||
    cargo install wasm-pack --version "$WASM_PACK_VERSION"
fi

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
  # --locked first; the registry mirror here can lag behind the CLI's own lock file (it lacked
  # the webpki-roots it pins), and then the newest compatible versions it does have are used.
  cargo install wasm-bindgen-cli --locked --version "$WASM_BINDGEN_VERSION" ||
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  say "installing Debian's chromium and chromium-driver"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# Firefox for the Firefox suite (an event page instead of a service worker), driven by puppeteer-core
# over WebDriver BiDi: Debian's ESR (153 here; the SDK needs 140 or later).
if [ ! -x /usr/bin/firefox-esr ]; then
  say "installing Debian's firefox-esr"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq firefox-esr >/dev/null
fi

# Node tooling (playwright-core, puppeteer-core, binaryen's working wasm-opt, esbuild, typescript, ...) exactly as
# locked. The stamp holds the lock file's hash, so an unchanged lock costs nothing.
stamp=node_modules/.bootstrap-lock-hash
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

say "ready in $(( $(date +%s) - started ))s: $(rustc --version | cut -d' ' -f1-2), wasm-pack $WASM_PACK_VERSION, wasm-bindgen $WASM_BINDGEN_VERSION, $(/usr/bin/chromium --version 2>/dev/null | head -1), node $(node --version)"
