#!/usr/bin/env bash
# Set up the environment if needed, then run the main job: the logistic-regression
# experiment of the CR-PSGD paper under horovodrun, CR-PSGD against classical PSGD.
#
#   scripts/run_main.sh            # 4 processes, scaled-down default (one to three minutes on 2 cores)
#   scripts/run_main.sh --paper    # the paper's configuration: 10 processes, T = 10^4
#
# Other arguments go to examples/torch/logistic_regression.py (see its --help).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python3 "$root/scripts/bootstrap.py"
venv="${CRPSGD_VENV:-$root/.venv}"
export PATH="$venv/bin:$PATH"

np=4
for arg in "$@"; do
  if [[ "$arg" == "--paper" ]]; then np=10; fi
done
cd "$root"
exec horovodrun -np "$np" -H "localhost:$np" --gloo \
  python examples/torch/logistic_regression.py "$@"
