#!/usr/bin/env bash
# Rebuilds bins/web/static/app.css (committed, so building the Rust code needs no Node).
# Run after changing classes in templates/ or src/. Needs Node.js 20+ and npm.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
npm run build
echo "wrote $(cd .. && pwd)/static/app.css ($(wc -c < ../static/app.css) bytes)"
