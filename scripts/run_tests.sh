#!/usr/bin/env bash
# Set up the environment if needed, then run the test suite.
# Extra arguments go to pytest, e.g. scripts/run_tests.sh tests/test_schedules.py -x
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python3 "$root/scripts/bootstrap.py"
venv="${CRPSGD_VENV:-$root/.venv}"
cd "$root"
exec "$venv/bin/python" -m pytest "$@"
