#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what it needs (uv, the locked Python environment with
# every provider, Azurite for the Azure tests), then pytest. The tests start their own servers on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -m uv --version >/dev/null 2>&1; then
  echo "== installing uv" >&2
  python3 -m pip install --quiet --disable-pip-version-check uv
fi
echo "== python environment (uv.lock)" >&2
python3 -m uv sync --locked --all-extras --all-packages --quiet

if command -v npm >/dev/null 2>&1 && [ -f tools/azurite/package-lock.json ]; then
  if [ ! -x tools/azurite/node_modules/.bin/azurite-table ]; then
    echo "== installing Azurite (npm ci)" >&2
    npm ci --prefix tools/azurite --no-audit --no-fund --loglevel=error >&2
  fi
else
  echo "== npm or tools/azurite missing: the Azure storage tests will be skipped" >&2
fi

echo "== lint" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check . >&2
.venv/bin/mypy >&2

echo "== tests" >&2
exec .venv/bin/python -m pytest "$@"
