#!/usr/bin/env bash
# Installs Microsoft's Graph SDK for Python (msgraph-sdk, from PyPI) into a virtualenv in the
# user's cache (shared by clones), for sentinel-sim/tests/official_sdk.rs. Idempotent: does
# nothing when that version is there. Prints the virtualenv's python.
set -euo pipefail
version="1.65.0"
venv="${SENTINEL_SDK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sentinel/graph-sdk-$version}"
# msgraph-core 1.5.2 imports `deprecated` (for $batch) without declaring it: installed beside.
if ! "$venv/bin/python" -c "import deprecated, importlib.metadata as m, sys; sys.exit(0 if m.version('msgraph-sdk') == '$version' else 1)" 2>/dev/null; then
  echo "scripts/install-graph-sdk.sh: installing msgraph-sdk $version into $venv" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "msgraph-sdk==$version" "Deprecated==1.2.18" >&2 \
    || { echo "scripts/install-graph-sdk.sh: pip could not install msgraph-sdk==$version (is PyPI reachable?)" >&2; exit 1; }
fi
echo "$venv/bin/python"
