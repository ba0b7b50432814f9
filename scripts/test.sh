#!/usr/bin/env bash
# Every check CI runs: formatting, lints, and the whole test suite (unit, integration
# against the simulated tenant over real HTTP, property tests).
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres) for the store and scheduler tests.
if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  if command -v pg_ctlcluster >/dev/null; then
    echo "scripts/test.sh: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi
if ! command -v pg_isready >/dev/null || ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "scripts/test.sh: no PostgreSQL on 127.0.0.1:5432: install it (apt-get install postgresql) and start it, or set DATABASE_URL" >&2
  [ -n "${DATABASE_URL:-}" ] || exit 1
fi
# Each database test creates (and drops) a fresh database through this server.
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

# Headless Chromium and ChromeDriver (Debian's packages) for the dashboard's browser tests.
if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
  echo "scripts/test.sh: installing chromium and chromium-driver for the browser tests"
  if [ "$(id -u)" = 0 ]; then apt_get="apt-get"; else apt_get="sudo apt-get"; fi
  $apt_get install -y --no-install-recommends chromium chromium-driver >/dev/null \
    || { $apt_get update >/dev/null && $apt_get install -y --no-install-recommends chromium chromium-driver >/dev/null; } \
    || { echo "scripts/test.sh: could not install chromium and chromium-driver: install them (apt-get install chromium chromium-driver)" >&2; exit 1; }
fi

# Microsoft's Graph SDK for Python (PyPI), which walks the simulator in sentinel-sim's tests.
./scripts/install-graph-sdk.sh >/dev/null

# Each step says how long it took, so a slow CI run shows where its time went.
timed() {
  local started=$SECONDS
  "$@"
  echo "scripts/test.sh: $* ($((SECONDS - started)) s)" >&2
}

timed cargo fmt --all -- --check
timed cargo clippy --workspace --all-targets --locked -- -D warnings
# Every crate packages (publish dry run: metadata, README, files); the full build of each
# package was checked by hand with `cargo package --workspace` (it takes 25 minutes).
# (sentinel-benches is a harness that depends on the unpublished test kit: never packaged.)
timed cargo package --workspace --exclude sentinel-benches --locked --no-verify --allow-dirty --quiet
RUSTDOCFLAGS="-D warnings" timed cargo doc --workspace --no-deps --locked --quiet
# Compose files and Dockerfile, statically first (fast), then for real after the tests.
timed ./scripts/check-deploy.sh
# cargo-nextest (on this kind of machine) runs every test of every binary in one pool, so a test
# that mostly waits (the fleet test waits out two cron minutes) overlaps the busy ones: 291 s
# against 392 s for `cargo test` on one machine. It skips doctests, which run on their own.
if cargo nextest --version >/dev/null 2>&1; then
  timed cargo nextest run --workspace --locked --no-fail-fast
  timed cargo test --workspace --locked --doc
else
  timed cargo test --workspace --locked
fi
# The compose stack with the demo overlay, on a Docker engine this script starts if needed.
timed ./scripts/compose-smoke.sh
