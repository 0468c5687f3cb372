#!/usr/bin/env bash
# Install what the tests need into a virtual environment, start PostgreSQL and an S3-compatible
# server on loopback, and run the whole test suite against them. Extra arguments go to pytest
# (e.g. -k ingest).
#
#   MODELLOOP_VENV=DIR        the virtual environment to use (default: .venv, reused between runs)
#   MODELLOOP_FRESH_VENV=1    delete and recreate it first (CI does, to prove a clean install)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${MODELLOOP_VENV:-.venv}
case "$venv" in /*) ;; *) venv="$PWD/$venv" ;; esac
if [ "${MODELLOOP_FRESH_VENV:-0}" = 1 ]; then rm -rf "$venv"; fi
if [ ! -x "$venv/bin/python" ]; then
    echo "creating the virtual environment $venv…" >&2
    python3 -m venv "$venv"
fi
export PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv"
echo "installing modelloop with its test extras into $venv…" >&2
python -m pip install -q --disable-pip-version-check --upgrade pip
python -m pip install -q --disable-pip-version-check -e '.[dev]'
python -m pip check >&2 || echo "warning: pip check found inconsistencies (see above)" >&2
source scripts/services.sh
start_postgres
start_s3
set +e
python -m pytest --durations=15 "$@"
status=$?
set -e
exit $status
