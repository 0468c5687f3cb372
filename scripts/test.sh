#!/usr/bin/env bash
# Install what the tests need into a virtual environment, start PostgreSQL, an S3-compatible
# server and Redis on loopback, and run the whole test suite against them. Extra arguments go to pytest
# (e.g. -k ingest).
#
# Tests run in parallel (pytest-xdist). Most of a test's time is spent waiting on the processes
# and servers it starts, so more workers than cores pay; -n 0 runs them one at a time.
#
#   MODELLOOP_VENV=DIR        the virtual environment to use (default: .venv, reused between runs)
#   MODELLOOP_FRESH_VENV=1    delete and recreate it first (CI does, to prove a clean install)
#   MODELLOOP_TEST_WORKERS=N  parallel pytest workers (default: 2 per core)
#   MODELLOOP_SMCLARIFY_VENV=DIR  smclarify's own venv for the bias equality test (default: .venv-smclarify)
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
# uv resolves the dev extra in seconds; pip's resolver can backtrack for a long time between
# moto's unbounded boto3 and aiobotocore's exact botocore pin (a new boto3 appears almost daily).
python -m pip install -q --disable-pip-version-check --upgrade pip uv
# --compile-bytecode: the suite starts hundreds of Python processes; without .pyc files (uv writes
# none by default, and PYTHONDONTWRITEBYTECODE may be set) each one recompiles pandas, sklearn…
uv pip install -q --compile-bytecode --python "$venv/bin/python" -e '.[dev]'
uv pip check --python "$venv/bin/python" >&2
python -m compileall -q src tests >/dev/null  # modelloop's own .pyc (an editable install has none)
# smclarify (the bias metrics' anchor) fails with pandas 3: a venv of its own, .venv-smclarify
# (MODELLOOP_SMCLARIFY_VENV), made once; tests/explain/test_smclarify_equality.py runs it
python scripts/smclarify_anchor.py --ensure >&2 || echo "no smclarify venv (no package index?): its equality test will skip" >&2
source scripts/services.sh
start_postgres
start_s3
start_redis
ensure_chromium
# pytest caches the test modules it rewrote for assertions next to them (__pycache__), unless
# PYTHONDONTWRITEBYTECODE is set: then every xdist worker, and every later run, rewrites all of
# them again (some 10 s of a core each)
unset PYTHONDONTWRITEBYTECODE
set +e
workers=${MODELLOOP_TEST_WORKERS:-$(( 2 * $(nproc) ))}
python -m pytest -n "$workers" --durations=15 "$@"
status=$?
set -e
exit $status
