#!/usr/bin/env bash
# The demo (`make demo`): builds the package and the demo extension from the packed tarball,
# starts the local Inhouse server, loads the extension in Chromium (headless, or headed when
# $DISPLAY is set), clicks through the popup, lets the content script fire on a local page,
# prints what the server received, and saves a screenshot of the popup to docs/popup.png.
# BROWSER=firefox (`make demo BROWSER=firefox`): the same in headless Firefox, its background an
# event page.
# Idempotent; stops every process it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

./scripts/bootstrap.sh
./scripts/build-pkg.sh
cargo build --quiet --release -p inhouse-server
exec node extension-demo/tools/demo.mjs
