#!/usr/bin/env bash
# Every test, serially (2 cores): host `cargo test` (the SDK core and the local server),
# `wasm-pack test --headless --chrome` (the browser edge), the package build and its size budget, the
# end-to-end suite (the demo extension in headless Chromium against the local server), and the
# package suite (the packed tarball built into extensions with no bundler, esbuild, Vite, webpack).
# Ends with one line: `N passed, N failed[, N skipped]`; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh || { echo "0 passed, 1 failed"; exit 1; }
export PATH="$HOME/.cargo/bin:$PATH" CHROMEDRIVER=/usr/bin/chromedriver

passed=0 failed=0 skipped=0
log=$(mktemp -d)
# Adds up libtest's `test result:` lines (cargo and wasm-bindgen-test print the same).
count_libtest() {
  local f=$1 p f_ i
  f_=$(grep -E '^test result:' "$f" | grep -Eo '[0-9]+ failed' | awk '{s+=$1} END{print s+0}')
  i=$(grep -E '^test result:' "$f" | grep -Eo '[0-9]+ ignored' | awk '{s+=$1} END{print s+0}')
  p=$(grep -E '^test result:' "$f" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END{print s+0}')
  echo "$p $f_ $i"
}
# Reads a runner's closing line `<name>: N passed, N failed[, N skipped]` as "p f s".
count_summary() {
  local f=$1 name=$2
  grep -E "^$name: [0-9]+ passed, [0-9]+ failed" "$f" | tail -n 1 |
    sed -E "s/^$name: ([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?.*/\1 \2 \4/" |
    awk '{print ($1+0), ($2+0), ($3+0)}'
}
suite() { # name, log file, status, counts "p f s"
  local name=$1 file=$2 status=$3 p f s
  read -r p f s <<<"$4"
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "[test] $name exited with status $status"; tail -n 30 "$file"; fi
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  echo "[test] $name: $p passed, $f failed, $s skipped"
}

echo "[test] host: cargo test --workspace --no-fail-fast"
cargo test --workspace --no-fail-fast 2>&1 | tee "$log/host.txt" | grep -E '^(test result|failures:|---- )' ; st=${PIPESTATUS[0]}
suite host "$log/host.txt" "$st" "$(count_libtest "$log/host.txt")"

echo "[test] browser: wasm-pack test --headless --chrome (against the local Inhouse server)"
# The browser tests reach a real server on 127.0.0.1; its URLs are compiled into them.
server_log="$log/server.txt"
cargo build --quiet --release -p inhouse-server
target/release/inhouse-server --quiet --token web_token:web_secret_value:abcdefghijklmnopabcdefghijklmnop >"$server_log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null' EXIT
for _ in $(seq 1 600); do grep -q listening "$server_log" 2>/dev/null && break; sleep 0.2; done
export INHOUSE_TEST_API=$(grep -o 'api=[^ ]*' "$server_log" | cut -d= -f2)
export INHOUSE_TEST_CONTROL=$(grep -o 'control=[^ ]*' "$server_log" | cut -d= -f2)
wasm-pack --log-level warn test --headless --chrome 2>&1 | tee "$log/wasm.txt" | grep -E '^(test result|failures:|---- )|panicked' ; st=${PIPESTATUS[0]}
suite browser "$log/wasm.txt" "$st" "$(count_libtest "$log/wasm.txt")"
kill $server_pid 2>/dev/null

echo "[test] package: build, then the size budget (scripts/check-size.sh)"
./scripts/build-pkg.sh >"$log/build.txt" 2>&1; st=$?
cat "$log/build.txt"
suite build "$log/build.txt" "$st" "$([ $st -eq 0 ] && echo '1 0 0' || echo '0 1 0')"
if [ "$st" -eq 0 ]; then
  ./scripts/check-size.sh >"$log/size.txt" 2>&1; st=$?
  cat "$log/size.txt"
  suite size "$log/size.txt" "$st" "$([ $st -eq 0 ] && echo '1 0 0' || echo '0 1 0')"
fi

echo "[test] end-to-end: node tests/e2e/run.mjs"
node tests/e2e/run.mjs 2>&1 | tee "$log/e2e.txt"; st=${PIPESTATUS[0]}
suite e2e "$log/e2e.txt" "$st" "$(count_summary "$log/e2e.txt" e2e)"

echo "[test] package: node tests/package/run.mjs (the tarball in no-bundler, esbuild, Vite and webpack extensions; types)"
node tests/package/run.mjs 2>&1 | tee "$log/package.txt"; st=${PIPESTATUS[0]}
suite package "$log/package.txt" "$st" "$(count_summary "$log/package.txt" package)"

rm -rf "$log"
if [ "$skipped" -gt 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"; else echo "$passed passed, $failed failed"; fi
[ "$failed" -eq 0 ]
