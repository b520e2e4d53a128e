#!/usr/bin/env bash
# Every test, serially (2 cores): rustfmt and clippy, host `cargo test` (the SDK core and the local server),
# `wasm-pack test --headless --chrome` (the browser edge), the package build and its size budget, the
# end-to-end suite (the demo extension in headless Chromium against the local server), the Firefox
# suite (the same extension in headless Firefox, whose background is an event page), and the
# package suite (the packed tarball built into extensions with no bundler, esbuild, Vite, webpack).
# Ends with one line: `N passed, N failed[, N skipped]`; exits non-zero on any failure.
#
# Nothing can pass by not finishing: a suite whose closing line is missing (libtest's
# `test result:` for each test binary cargo started; `<name>: N passed, N failed` for the node
# runners) counts as failed, whatever its exit status. Each suite line gives its wall time.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh || { echo "0 passed, 1 failed"; exit 1; }
export PATH="$HOME/.cargo/bin:$PATH" CHROMEDRIVER=/usr/bin/chromedriver

passed=0 failed=0 skipped=0
log=$(mktemp -d)
# The counts of the suite being read, and why it counts as failed beyond its own report.
p=0 f=0 s=0 note=

# libtest's `test result:` lines (cargo and wasm-bindgen-test print the same). Every test binary
# cargo starts (`Running …`, `Doc-tests …`), and at least $2 of them (default 1), must end with
# one (or wasm-bindgen-test-runner's `no tests to run!`); one that crashed or hung before it
# counts as a failure.
libtest_counts() {
  local file=$1 expected=${2:-1} started ended missing
  sum() { grep -E '^test result:' "$file" | grep -Eo "[0-9]+ $1" | awk '{s+=$1} END{print s+0}'; }
  p=$(sum passed) f=$(sum failed) s=$(sum ignored) note=
  started=$(grep -cE '^[[:space:]]+(Running|Doc-tests) ' "$file")
  ended=$(grep -cE '^(test result: |no tests to run!)' "$file")
  [ "$started" -gt "$expected" ] || started=$expected
  missing=$((started - ended))
  if [ "$missing" -gt 0 ]; then
    f=$((f + missing)) note="$missing of $started test binaries ended without a 'test result:' line (crashed, hung or never built)"
  fi
}
# A node runner's closing line `<name>: N passed, N failed[, N skipped]` (the last one).
summary_counts() {
  local file=$1 name=$2 line
  line=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed" "$file" | tail -n 1)
  note=
  if [ -z "$line" ]; then
    p=0 f=1 s=0 note="no closing line '$name: N passed, N failed': it stopped before reporting"
    return
  fi
  read -r p f s <<<"$(sed -E "s/^$name: ([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?.*/\1 \2 \4/" <<<"$line" | awk '{print ($1+0), ($2+0), ($3+0)}')"
}
# A step that is one test: its exit status.
status_counts() {
  note=
  if [ "$1" -eq 0 ]; then p=1 f=0 s=0; else p=0 f=1 s=0; fi
}
# Adds the counts read last (p f s note) for suite $1 (log $2, exit status $3, started at $4).
suite() {
  local name=$1 file=$2 status=$3 start=$4 unexplained=$note
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1 unexplained="exited with status $status"
  fi
  if [ -n "$unexplained" ]; then
    echo "[test] $name: $unexplained"
    if [ -n "$file" ] && [ -s "$file" ]; then tail -n 30 "$file"; fi
  fi
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  echo "[test] $name: $p passed, $f failed, $s skipped ($((SECONDS - start)) s)"
}
# A suite that could not run counts as one failure.
not_run() {
  p=0 f=1 s=0 note="not run: $2"
  suite "$1" "" 0 "$SECONDS"
}

echo "[test] lint: rustfmt, and clippy with warnings as errors (host, and the wasm32 target)"
start=$SECONDS
{
  cargo fmt --all --check &&
    cargo clippy --quiet --workspace --all-targets -- -D warnings &&
    cargo clippy --quiet -p inhouse-tracker --all-targets --target wasm32-unknown-unknown -- -D warnings
} >"$log/lint.txt" 2>&1; st=$?
status_counts "$st"
suite lint "$log/lint.txt" "$st" "$start"

echo "[test] host: cargo test --workspace --no-fail-fast"
start=$SECONDS
cargo test --workspace --no-fail-fast 2>&1 | tee "$log/host.txt" | grep -E '^(test result|failures:|---- )' ; st=${PIPESTATUS[0]}
libtest_counts "$log/host.txt"
suite host "$log/host.txt" "$st" "$start"

echo "[test] browser: wasm-pack test --headless --chrome, one run per tests/web_*.rs (against the local Inhouse server)"
# One wasm-pack run per test binary, so that a failing binary cannot stop the others. Not
# `wasm-pack test … -- --no-fail-fast`: wasm-pack (0.15) passes the same extra arguments to its
# `cargo build --tests` step, which refuses --no-fail-fast; `--test=NAME` suits both commands.
start=$SECONDS
# The browser tests reach a real server on 127.0.0.1; its URLs are compiled into them.
server_log="$log/server.txt"
server_pid=
if cargo build --quiet --release -p inhouse-server; then
  target/release/inhouse-server --quiet --token web_token:web_secret_value:abcdefghijklmnopabcdefghijklmnop >"$server_log" 2>&1 &
  server_pid=$!
  trap 'kill $server_pid 2>/dev/null' EXIT
  for _ in $(seq 1 600); do grep -q listening "$server_log" 2>/dev/null && break; sleep 0.2; done
fi
if ! grep -q listening "$server_log" 2>/dev/null; then
  cat "$server_log" 2>/dev/null
  not_run browser 'the local inhouse-server did not start'
else
  export INHOUSE_TEST_API=$(grep -o 'api=[^ ]*' "$server_log" | cut -d= -f2)
  export INHOUSE_TEST_CONTROL=$(grep -o 'control=[^ ]*' "$server_log" | cut -d= -f2)
  : >"$log/wasm.txt"
  st=0 runs=0
  for file in tests/web_*.rs; do
    name=$(basename "$file" .rs)
    runs=$((runs + 1))
    wasm-pack --log-level warn test --headless --chrome -- "--test=$name" >"$log/wasm-$name.txt" 2>&1; one=$?
    grep -E '^(test result|failures:|---- )|panicked' "$log/wasm-$name.txt" | sed "s/^/$name: /"
    cat "$log/wasm-$name.txt" >>"$log/wasm.txt"
    if [ "$one" -ne 0 ]; then
      st=$one
      echo "[test] browser: $name exited with status $one; the last lines of its output:"
      tail -n 30 "$log/wasm-$name.txt"
    fi
  done
  # Each run starts one test binary: each must report.
  libtest_counts "$log/wasm.txt" "$runs"
  suite browser "" "$st" "$start"
fi
[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null

echo "[test] package: build, then the size budget (scripts/check-size.sh)"
# The later suites test whatever tarball is in dist/: never an older one than these sources.
start=$SECONDS
rm -rf dist
./scripts/build-pkg.sh >"$log/build.txt" 2>&1; build_st=$?
cat "$log/build.txt"
status_counts "$build_st"
suite build "$log/build.txt" "$build_st" "$start"
if [ "$build_st" -eq 0 ]; then
  start=$SECONDS
  ./scripts/check-size.sh >"$log/size.txt" 2>&1; st=$?
  cat "$log/size.txt"
  status_counts "$st"
  suite size "$log/size.txt" "$st" "$start"
else
  not_run size 'the package build failed'
fi

# A node runner that needs the package's tarball: name, script.
node_suite() {
  local name=$1 script=$2
  if [ "$build_st" -ne 0 ]; then
    not_run "$name" 'the package build failed (no tarball of these sources)'
    return
  fi
  start=$SECONDS
  node "$script" 2>&1 | tee "$log/$name.txt"; st=${PIPESTATUS[0]}
  summary_counts "$log/$name.txt" "$name"
  suite "$name" "$log/$name.txt" "$st" "$start"
}

echo "[test] loader: node tests/loader/run.mjs (the loader and the wasm in Node, through the /testing entry)"
node_suite loader tests/loader/run.mjs

echo "[test] check: node tests/check/run.mjs (chrome-tracker check on one fixture per finding and on the demo)"
node_suite check tests/check/run.mjs

echo "[test] end-to-end: node tests/e2e/run.mjs"
node_suite e2e tests/e2e/run.mjs

echo "[test] firefox: node tests/firefox/run.mjs (the demo extension in Firefox, its background an event page)"
node_suite firefox tests/firefox/run.mjs

echo "[test] package: node tests/package/run.mjs (the tarball in no-bundler, esbuild, Vite and webpack extensions; types)"
node_suite package tests/package/run.mjs

rm -rf "$log"
if [ "$skipped" -gt 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"; else echo "$passed passed, $failed failed"; fi
[ "$failed" -eq 0 ]
