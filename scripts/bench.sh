#!/usr/bin/env bash
# The benchmark (`make bench`; not part of `make test`: time figures are never pass/fail).
# Builds the package, installs the packed tarball into a bench extension like a customer would,
# starts the local Inhouse server, measures our SDK in the MV3 service worker of headless Chromium,
# then the peer SDKs with the same Chromium, N and machine (bench/peers), and prints one table.
# Writes bench/out/results.json (everything), bench/results.json (summary, committed),
# bench/out/results.md and docs/bench.png. About 15 minutes on 2 cores; knobs in bench/README.md
# (e.g. PEERS=0 for ours only, ~2 min). Stops every process it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
started=$(date +%s)

./scripts/bootstrap.sh
# src/ may be mid-change: retry the package build a few times before giving up.
for attempt in 1 2 3; do
  if SIZE_REPORT=1 ./scripts/build-pkg.sh; then break; fi
  [ "$attempt" = 3 ] && { echo "bench: the package build failed 3 times" >&2; exit 1; }
  echo "bench: package build failed (attempt $attempt); retrying in 20 s" >&2
  sleep 20
done
cargo build --quiet --release -p inhouse-server

if [ "${PEERS:-1}" != 0 ]; then
  # The peer SDKs, pinned by bench/peers/package-lock.json (npm registry only); once per lock.
  stamp=bench/peers/node_modules/.lock-hash
  want=$(sha256sum bench/peers/package-lock.json | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    (cd bench/peers && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
fi

mkdir -p bench/out
node bench/run.mjs 2>&1 | tee bench/out/bench.log
echo "bench: total wall time $(( $(date +%s) - started )) s"
