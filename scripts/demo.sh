#!/usr/bin/env bash
# The demo in one command: a simulated tenant, the worker (which scans it at once) and the
# dashboard, on this machine, without Docker. Ctrl-C stops everything.
#
# Needs a Rust toolchain and PostgreSQL: DATABASE_URL if set, else a server on 127.0.0.1:5432
# (database sentinel_demo, created if missing), else a throwaway cluster made with the machine's
# PostgreSQL binaries. Settings: DEMO_PORT (web, 8080), DEMO_SIM_PORT (8089), DEMO_WORKER_PORT
# (8081), DEMO_PROFILE (tiny|small|medium|large, small), DEMO_SEED (7), DEMO_BUILD (release|debug),
# DEMO_BIN_DIR (use binaries already built there instead of building).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "demo: $*"; }
die() { echo "demo: $*" >&2; exit 1; }

WEB_PORT="${DEMO_PORT:-8080}"
SIM_PORT="${DEMO_SIM_PORT:-8089}"
WORKER_PORT="${DEMO_WORKER_PORT:-8081}"
PROFILE="${DEMO_PROFILE:-small}"
SEED="${DEMO_SEED:-7}"
BUILD="${DEMO_BUILD:-release}"

command -v cargo >/dev/null || die "no Rust toolchain: install it from https://rustup.rs and run this again"
command -v curl >/dev/null || die "curl is needed: apt-get install curl"
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$WEB_PORT" "$SIM_PORT" "$WORKER_PORT"; do
  port_free "$p" || die "port $p is in use: stop what uses it or set DEMO_PORT / DEMO_SIM_PORT / DEMO_WORKER_PORT"
done

PIDS=()
PGDATA_TMP=""
PG_CTL=""
cleanup() {
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$PGDATA_TMP" ]; then
    as_pg "$PG_CTL" -D "$PGDATA_TMP/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PGDATA_TMP"
  fi
  say "stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# PostgreSQL cluster binaries refuse to run as root: run them as the postgres user then.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ -n "${DATABASE_URL:-}" ]; then
  say "using DATABASE_URL"
elif command -v pg_isready >/dev/null && pg_isready -h 127.0.0.1 -p 5432 -q; then
  command -v psql >/dev/null || die "PostgreSQL runs on 127.0.0.1:5432 but psql is missing: apt-get install postgresql-client"
  admin="postgres://postgres@127.0.0.1:5432/postgres"
  psql "$admin" -tAc "SELECT 1" >/dev/null 2>&1 || die "cannot connect to $admin: set DATABASE_URL to a database you may use"
  if ! psql "$admin" -tAc "SELECT 1 FROM pg_database WHERE datname = 'sentinel_demo'" | grep -q 1; then
    psql "$admin" -qc "CREATE DATABASE sentinel_demo" >/dev/null
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/sentinel_demo"
  say "using PostgreSQL on 127.0.0.1:5432, database sentinel_demo"
else
  INITDB="$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n1 || true)"
  [ -z "$INITDB" ] && INITDB="$(command -v initdb || true)"
  [ -n "$INITDB" ] || die "no PostgreSQL found: set DATABASE_URL, start one on 127.0.0.1:5432, or install it (apt-get install postgresql)"
  PG_CTL="$(dirname "$INITDB")/pg_ctl"
  PGDATA_TMP="$(mktemp -d /tmp/sentinel-demo-pg.XXXXXX)"
  [ "$(id -u)" = 0 ] && chown postgres "$PGDATA_TMP"
  PG_PORT=55432
  while ! port_free "$PG_PORT"; do PG_PORT=$((PG_PORT + 1)); done
  say "starting a throwaway PostgreSQL cluster on port $PG_PORT"
  as_pg "$INITDB" -D "$PGDATA_TMP/data" -U postgres -A trust >/dev/null
  as_pg "$PG_CTL" -D "$PGDATA_TMP/data" -l "$PGDATA_TMP/log" -w \
    -o "-p $PG_PORT -k $PGDATA_TMP -c listen_addresses=127.0.0.1" start >/dev/null
  export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
fi

if [ -n "${DEMO_BIN_DIR:-}" ]; then
  BIN="$DEMO_BIN_DIR"
  for b in sentinel-sim sentinel-worker sentinel-web; do
    [ -x "$BIN/$b" ] || die "$BIN/$b is missing: build it (cargo build -p $b) or unset DEMO_BIN_DIR"
  done
elif [ "$BUILD" = release ]; then
  say "building (release; the first build takes a few minutes)"
  cargo build --release --locked -q -p sentinel-sim -p sentinel-worker -p sentinel-web
  BIN=target/release
else
  cargo build --locked -q -p sentinel-sim -p sentinel-worker -p sentinel-web
  BIN=target/debug
fi

wait_up() {
  for _ in $(seq 1 600); do
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "$2 did not start (no answer from $1)"
}

SIM="http://127.0.0.1:$SIM_PORT"
"$BIN/sentinel-sim" --profile "$PROFILE" --seed "$SEED" --addr "127.0.0.1:$SIM_PORT" --ru-per-minute 60000 >/dev/null &
PIDS+=($!)
wait_up "$SIM/_sim/health" "the simulated tenant"
TENANT="$(curl -fsS "$SIM/_sim/manifest" | sed -n 's/.*"tenant_id":"\([^"]*\)".*/\1/p')"

export ENTRA_TENANT_ID="$TENANT" ENTRA_CLIENT_ID=5e1f5a3c-0f6b-4c1e-9d3a-7a51e0c1d2b4 \
  ENTRA_CLIENT_SECRET=sentinel-sim-secret ENTRA_AUTHORITY="$SIM" GRAPH_BASE_URL="$SIM/v1.0" \
  GRAPH_RU_PER_MINUTE=60000 RUST_LOG="${RUST_LOG:-warn}"

WORKER_API_ADDR="127.0.0.1:$WORKER_PORT" SCHEDULER_POLL_SECONDS=2 WORKER_ID=demo-worker \
  WORKER_FIRST_SCAN=true "$BIN/sentinel-worker" serve &
PIDS+=($!)
wait_up "http://127.0.0.1:$WORKER_PORT/health" "the worker"

WEB_ADDR="127.0.0.1:$WEB_PORT" WEB_PUBLIC_URL="http://127.0.0.1:$WEB_PORT" \
  WORKER_API_URL="http://127.0.0.1:$WORKER_PORT" "$BIN/sentinel-web" &
PIDS+=($!)
wait_up "http://127.0.0.1:$WEB_PORT/health" "the dashboard"

# sed reads the whole dump: a `head` here closed the pipe early, curl failed writing ("(23)"),
# and with pipefail the demo stopped itself whenever the dump outgrew the pipe's buffer.
users="$(curl -fsS "$SIM/_sim/dump/users" | sed -n '1,2s/.*"userPrincipalName":"\([^"]*\)".*/\1/p')"
cat <<MSG

  Princeton Sentinel is running against a simulated tenant ($PROFILE profile, seed $SEED).

  Dashboard:  http://127.0.0.1:$WEB_PORT
  Sign in as: $(echo "$users" | sed -n 1p)  (Sentinel.Admin: may change jobs)
              $(echo "$users" | sed -n 2p)  (Sentinel.Reader: sees the dashboards)

  The worker is scanning the tenant now; /runs shows the run, /analytics its result.
  Ctrl-C stops everything.

MSG

# Runs until Ctrl-C, or until one of the processes stops on its own.
set +e
wait -n "${PIDS[@]}"
status=$?
say "a process stopped (exit $status): stopping the rest"
exit "$status"
