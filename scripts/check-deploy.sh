#!/usr/bin/env bash
# Static checks of the Docker deployment (there is no Docker engine on our machines):
# the compose files against the Compose specification's JSON schema, the Dockerfile with
# dockerfile-utils' linter, and structure a schema cannot express (scripts/check_deploy.py).
# Tools come from PyPI and npm and are kept under target/deploy-lint.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=target/deploy-lint
mkdir -p "$tools"

if [ ! -x "$tools/venv/bin/check-jsonschema" ]; then
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install -q check-jsonschema==0.39.0 pyyaml==6.0.2
fi
if [ ! -f "$tools/compose_spec.json" ]; then
  # The Compose specification's schema, as shipped in docker-compose's last Python release.
  "$tools/venv/bin/pip" download -q --no-deps docker-compose==1.29.2 -d "$tools/dl"
  "$tools/venv/bin/python" -c "import zipfile,sys; sys.stdout.buffer.write(zipfile.ZipFile('$tools/dl/docker_compose-1.29.2-py2.py3-none-any.whl').read('compose/config/compose_spec.json'))" > "$tools/compose_spec.json"
fi
"$tools/venv/bin/check-jsonschema" --schemafile "$tools/compose_spec.json" docker-compose.yml docker-compose.demo.yml

if [ ! -x "$tools/node_modules/.bin/dockerfile-utils" ]; then
  npm install --prefix "$tools" --no-audit --no-fund --silent dockerfile-utils@0.16.3 >/dev/null
fi
lint="$("$tools/node_modules/.bin/dockerfile-utils" lint Dockerfile || true)"
if [ -n "$lint" ]; then
  echo "$lint"
  echo "check-deploy: the Dockerfile linter found problems" >&2
  exit 1
fi

"$tools/venv/bin/python" scripts/check_deploy.py
echo "check-deploy: docker-compose.yml, docker-compose.demo.yml and Dockerfile pass"
