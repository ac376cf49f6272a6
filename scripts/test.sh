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

# -- image tests (issue 20): a real registry on 127.0.0.1 needs Debian's docker-registry, and htpasswd
# (apache2-utils) for its Basic-auth mode. Installed once, as root, only when missing.
if ! command -v docker-registry >/dev/null 2>&1 || ! command -v htpasswd >/dev/null 2>&1; then
  as_root=""
  [ "$(id -u)" = 0 ] || as_root="sudo -n"  # CI runners are not root but have password-less sudo
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$as_root" ] || sudo -n true 2>/dev/null; }; then
    echo "== installing docker-registry and apache2-utils (apt-get)" >&2
    $as_root apt-get update -qq >&2
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry apache2-utils >&2
  else
    echo "== docker-registry or htpasswd missing, and no apt-get as root: the image tests will be skipped" >&2
  fi
fi
# -- end of the image tests block

echo "== lint" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check . >&2
.venv/bin/mypy >&2
.venv/bin/mypy --strict examples/provider-template/runvoy_template >&2  # the provider template, as typed

echo "== tests" >&2
# two workers, a test file per worker at a time (its servers are started once): the suite fits the
# 15-minute budget on the 2-core CI machine (decision 1413)
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"
