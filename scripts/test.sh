#!/usr/bin/env bash
# Install what the tests need, start PostgreSQL and an S3-compatible server on loopback, and run
# the whole test suite against them. Extra arguments go to pytest (e.g. -k ingest).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --disable-pip-version-check -e '.[dev]'
source scripts/services.sh
start_postgres
start_s3
set +e
python -m pytest "$@"
status=$?
set -e
exit $status
