#!/usr/bin/env bash
# Runs the compose stack for real, with the demo overlay (the simulated tenant), and checks what
# an operator relies on:
#   - the three services and the simulator come up healthy; only the web publishes a port
#     (and the demo's simulator, which browsers sign in at);
#   - a user signs in through the (simulated) Entra page and sees /analytics after the first scan;
#   - `docker-compose restart worker` in the middle of a scan: the run is failed honestly (never
#     left running, never a success), and the next scan matches the tenant's ground truth;
#   - `docker-compose down` then `up` keeps the data.
#
# No registry is reachable here, so the images are built locally: a Debian base image from
# Debian's packages (debootstrap, then `docker import`), a Postgres stand-in (docker/postgres),
# and the Dockerfile's own runtime stages over the binaries cargo built on this machine (the full
# multi-stage build needs the rust image from a registry). Needs root (it starts dockerd when no
# engine answers) and ports 8080 and 8089 free. Usage: scripts/compose-smoke.sh
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=${SMOKE_WORK:-/tmp/sentinel-compose-smoke}
BASE_IMAGE=sentinel-local/debian:bookworm
PG_IMAGE=sentinel-local/postgres:15
WEB=http://localhost:8080
SIM=http://127.0.0.1:8089
mkdir -p "$WORK"

say() { echo "compose-smoke: $*"; }
fail() { echo "compose-smoke: FAILED: $*" >&2; exit 1; }

# --- the engine -----------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v debootstrap >/dev/null || need+=(debootstrap)
if ((${#need[@]})); then
    say "installing ${need[*]}"
    [ "$(id -u)" = 0 ] || fail "run as root, or install ${need[*]} first (apt-get install ${need[*]})"
    install() { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"; }
    { install || { apt-get update && install; }; } >"$WORK/apt.log" 2>&1 \
        || fail "apt-get install ${need[*]} (see $WORK/apt.log)"
fi
STARTED_DOCKERD=""
if ! docker info >/dev/null 2>&1; then
    export DOCKER_HOST=unix://$WORK/docker.sock
    if ! docker info >/dev/null 2>&1; then
        [ "$(id -u)" = 0 ] || fail "no Docker engine answers and only root can start one: run as root, or start dockerd"
        say "starting dockerd"
        mkdir -p "$WORK/exec"
        dockerd --data-root /var/lib/sentinel-docker --exec-root "$WORK/exec" -H "$DOCKER_HOST" \
            --pidfile "$WORK/docker.pid" >"$WORK/dockerd.log" 2>&1 &
        STARTED_DOCKERD=$!
        for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
        docker info >/dev/null 2>&1 || fail "dockerd did not start (see $WORK/dockerd.log)"
    fi
fi

COMPOSE=(docker-compose -p sentinel-smoke --env-file .env.demo -f docker-compose.yml -f docker-compose.demo.yml)
export POSTGRES_IMAGE=$PG_IMAGE
cleanup() {
    "${COMPOSE[@]}" logs --no-color >"$WORK/compose.log" 2>&1 || true
    "${COMPOSE[@]}" down -v >/dev/null 2>&1 || true
    if [ -n "$STARTED_DOCKERD" ]; then kill "$STARTED_DOCKERD" 2>/dev/null || true; wait "$STARTED_DOCKERD" 2>/dev/null || true; fi
}
trap cleanup EXIT

# --- the images -----------------------------------------------------------------------------
t0=$(date +%s)
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    say "building $BASE_IMAGE from Debian's packages"
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase bookworm "$WORK/rootfs" >"$WORK/debootstrap.log" 2>&1 \
        || fail "debootstrap (see $WORK/debootstrap.log)"
    tar -C "$WORK/rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
    rm -rf "$WORK/rootfs"
fi
say "building $PG_IMAGE"
docker build -q -t "$PG_IMAGE" --build-arg BASE_IMAGE="$BASE_IMAGE" docker/postgres >"$WORK/build.log" 2>&1 \
    || fail "building docker/postgres (see $WORK/build.log)"

say "building the web, worker and sim images from the Dockerfile's runtime stages"
# The binaries as the test build made them: `cargo build -p ...` resolves features without the
# dev-dependencies and so rebuilds every shared crate (2 min 48 s measured); `cargo test --no-run`
# after the tests only copies them out (under a second).
cargo test -q --locked --workspace --no-run
ctx="$WORK/context"
rm -rf "$ctx" && mkdir -p "$ctx"
cp target/debug/sentinel-web target/debug/sentinel-worker target/debug/sentinel-sim "$ctx/"
{
    echo "ARG RUNTIME_IMAGE"
    echo "FROM \${RUNTIME_IMAGE} AS builder"
    echo "COPY sentinel-web sentinel-worker sentinel-sim /usr/local/bin/"
    sed -n '/^FROM .* AS runtime$/,$p' Dockerfile
} >"$ctx/Dockerfile"
grep -q "AS runtime" "$ctx/Dockerfile" || fail "the Dockerfile has no runtime stage"
for target in web worker sim; do
    docker build -q --target "$target" -t "princeton-sentinel/$target:latest" \
        --build-arg RUNTIME_IMAGE="$BASE_IMAGE" "$ctx" >>"$WORK/build.log" 2>&1 \
        || fail "building target $target (see $WORK/build.log)"
done
say "images ready in $(($(date +%s) - t0)) s"

# --- helpers --------------------------------------------------------------------------------
sql() { "${COMPOSE[@]}" exec -T postgres psql -U sentinel -d sentinel -Atc "$1"; }
cid() { "${COMPOSE[@]}" ps -q "$1"; }
wait_healthy() {
    local deadline=$(($(date +%s) + 240))
    for svc in postgres sim worker web; do
        until [ "$(docker inspect -f '{{.State.Health.Status}}' "$(cid "$svc")" 2>/dev/null)" = healthy ]; do
            [ "$(date +%s)" -lt "$deadline" ] || fail "$svc is not healthy: $(docker inspect -f '{{json .State.Health}}' "$(cid "$svc")")"
            sleep 2
        done
    done
}
successes() { sql "SELECT count(*) FROM job_runs r JOIN jobs j USING (job_id) WHERE j.job_type = 'graph_ingest' AND r.status = 'success'"; }
wait_for_successes() {
    local want=$1 deadline=$(($(date +%s) + 600))
    until [ "$(successes)" -ge "$want" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "no successful scan number $want: $(sql "SELECT status, error FROM job_runs ORDER BY started_at")"
        sleep 3
    done
}
# The store against the simulator's ground truth, object kind by kind.
check_exact() {
    local manifest
    manifest=$(curl -fsS "$SIM/_sim/manifest")
    for pair in users:msgraph_users groups:msgraph_groups sites:msgraph_sites drives:msgraph_drives items:msgraph_drive_items; do
        local key=${pair%%:*} table=${pair#*:} want got
        want=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['$key'])" "$manifest")
        got=$(sql "SELECT count(*) FROM $table WHERE deleted_at IS NULL")
        [ "$want" = "$got" ] || fail "$1: the store holds $got live $key, the tenant $want"
    done
    say "$1: users, groups, sites, drives and items match the tenant"
}

# --- up -------------------------------------------------------------------------------------
"${COMPOSE[@]}" down -v >/dev/null 2>&1 || true
t0=$(date +%s)
"${COMPOSE[@]}" up -d --no-build >"$WORK/up.log" 2>&1 || fail "docker-compose up (see $WORK/up.log)"
wait_healthy
say "postgres, sim, worker and web healthy in $(($(date +%s) - t0)) s"
for svc in postgres worker; do
    [ -z "$(docker port "$(cid "$svc")")" ] || fail "$svc publishes a port: $(docker port "$(cid "$svc")")"
done
docker port "$(cid web)" | grep -q 8080 || fail "the web does not publish 8080"

wait_for_successes 1
say "first scan finished in $(($(date +%s) - t0)) s after up"
check_exact "after the first scan"

# --- sign-in, as a browser does it -----------------------------------------------------------
jar="$WORK/cookies"
rm -f "$jar"
browser() { curl -sS -b "$jar" -c "$jar" --resolve sim.localhost:8089:127.0.0.1 "$@"; }
authorize=$(browser -o /dev/null -w '%{redirect_url}' "$WEB/auth/login")
case "$authorize" in http://sim.localhost:8089/*/oauth2/v2.0/authorize\?*) ;; *) fail "sign-in went to '$authorize'" ;; esac
callback=$(browser -o /dev/null -w '%{redirect_url}' "$authorize&login_hint_user=0")
case "$callback" in "$WEB/auth/callback?"*) ;; *) fail "the account picker returned to '$callback'" ;; esac
landed=$(browser -o /dev/null -w '%{redirect_url}' "$callback")
[ "$landed" = "$WEB/analytics" ] || fail "after sign-in at '$landed'"
page=$(browser -fsS "$WEB/analytics") || fail "/analytics after sign-in"
grep -q 'id="role"' <<<"$page" || fail "/analytics does not show the signed-in user"
items=$(browser -fsS "$WEB/api/analytics" | python3 -c "import json,sys; print(json.load(sys.stdin)['posture']['inventory']['items'])")
[ "$items" -gt 0 ] || fail "/api/analytics shows no items after the first scan"
say "signed in through the simulated Entra; /analytics shows $items items"

# --- restart the worker in the middle of a scan ---------------------------------------------
curl -fsS -X POST "$SIM/_sim/mutate" -H 'content-type: application/json' -d '{"count": 200}' >/dev/null
# Expired delta tokens: the next scan starts from scratch, long enough to be interrupted.
curl -fsS -X POST "$SIM/_sim/expire-tokens" >/dev/null
csrf=$(grep -o 'name="csrf_token" value="[0-9a-f]*"' <<<"$page" | head -1 | sed 's/.*value="//; s/"$//')
job=$(sql "SELECT job_id FROM jobs WHERE job_type = 'graph_ingest' LIMIT 1")
before=$(successes)
browser -fsS -o /dev/null -X POST -H "x-csrf-token: $csrf" "$WEB/api/admin/jobs/$job/run-now" \
    || fail "run-now through the web"
deadline=$(($(date +%s) + 120))
until [ "$(sql "SELECT count(*) FROM job_runs WHERE job_id = '$job' AND status = 'running'")" -ge 1 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "the requested scan never started"
    sleep 0.5
done
sleep 2
interrupted=$(sql "SELECT run_id FROM job_runs WHERE job_id = '$job' AND status = 'running' LIMIT 1")
"${COMPOSE[@]}" restart worker >/dev/null 2>&1 || fail "docker-compose restart worker"
say "worker restarted during run $interrupted"
wait_healthy
deadline=$(($(date +%s) + 300))
until [ "$(sql "SELECT status FROM job_runs WHERE run_id = '$interrupted'")" != running ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "the interrupted run is still 'running'"
    sleep 2
done
status=$(sql "SELECT status FROM job_runs WHERE run_id = '$interrupted'")
[ "$status" = failed ] || fail "the interrupted run ended '$status', not failed"
say "the interrupted run was marked failed: $(sql "SELECT error FROM job_runs WHERE run_id = '$interrupted'")"
browser -fsS -o /dev/null -X POST -H "x-csrf-token: $csrf" "$WEB/api/admin/jobs/$job/run-now" \
    || fail "run-now after the restart"
wait_for_successes $((before + 1))
check_exact "after the restart"

# --- down and up again ------------------------------------------------------------------------
kept=$(sql "SELECT count(*) FROM msgraph_drive_items")
"${COMPOSE[@]}" down >/dev/null 2>&1 || fail "docker-compose down"
"${COMPOSE[@]}" up -d --no-build >>"$WORK/up.log" 2>&1 || fail "docker-compose up again"
wait_healthy
[ "$(sql "SELECT count(*) FROM msgraph_drive_items")" = "$kept" ] || fail "down and up lost data"
say "down and up kept all $kept items"
say "ok"
