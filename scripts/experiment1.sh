#!/usr/bin/env bash
# The CR-PSGD paper's Experiment 1 at its own scale: N = 10 processes, d = 500,
# M_i = 10^4, mu = 10^-3, T = 10^4, B1 = 2, rho = 1.1, gamma = 0.1, with PSGD and
# local SGD at batch 2. Local SGD's H is the largest of SWEEP_INTERVALS whose final
# objective is within 1% of PSGD's. Writes docs/experiment1/{objective.png,
# results.json, sweep.json, results.md, run.log}.
#
#   scripts/experiment1.sh                         # set up .venv if needed, then run
#   CRPSGD_SKIP_BOOTSTRAP=1 CRPSGD_VENV=/path/to/venv scripts/experiment1.sh
#
# Ten processes share the machine's cores; expect tens of minutes on two cores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ "${CRPSGD_SKIP_BOOTSTRAP:-0}" != "1" ]]; then
  python3 "$root/scripts/bootstrap.py"
fi
venv="${CRPSGD_VENV:-$root/.venv}"
export PATH="$venv/bin:$PATH"
# This checkout's package, whatever copy the virtualenv has installed.
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=1
sweep_intervals="${SWEEP_INTERVALS:-8,16,32,64,128}"
out="$root/docs/experiment1"
mkdir -p "$out"

cd "$root"
horovodrun -np 10 -H localhost:10 --gloo \
  python examples/torch/logistic_regression.py --paper --sweep-intervals "$sweep_intervals" \
  --sweep-rtol 0.01 --out-dir "$out" --no-progress "$@" 2>&1 | tee "$out/run.log"
python scripts/experiment1_table.py "$out" \
  --command "SWEEP_INTERVALS=$sweep_intervals scripts/experiment1.sh${*:+ $*}" > "$out/results.md"
echo "wrote $out/results.md"
