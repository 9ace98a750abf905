#!/usr/bin/env bash
# Run elastic CR-PSGD on this machine with planned resizes, as an elastic Horovod job.
#
#   scripts/elastic_demo.sh                        # 2 workers, 4 after round 15, 2 after round 35
#   scripts/elastic_demo.sh --resize 10:3 --budget 2000
#
# The host discovery script prints a hosts file in the output folder (runs/elastic_demo
# unless ELASTIC_DEMO_DIR is set), and the example rewrites that file after the rounds
# that --resize lists. Other arguments go to examples/torch/elastic_logistic_regression.py.
# Horovod needs --network-interface to start an elastic Gloo job with one host.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python3 "$root/scripts/bootstrap.py"
venv="${CRPSGD_VENV:-$root/.venv}"
export PATH="$venv/bin:$PATH"

directory="$(realpath -m "${ELASTIC_DEMO_DIR:-$root/runs/elastic_demo}")"
mkdir -p "$directory"
printf 'localhost:2\n' > "$directory/hosts"
printf '#!/bin/sh\ncat "%s"\n' "$directory/hosts" > "$directory/discover.sh"
chmod +x "$directory/discover.sh"

cd "$root"
echo "[elastic demo] workers that a resize removes are stopped by Horovod, which prints" \
  "'has been removed from elastic job', 'Aborted' and exit status 134 for them: this is expected"
exec horovodrun -np 2 --min-np 2 --max-np 4 --host-discovery-script "$directory/discover.sh" \
  --network-interface lo \
  python examples/torch/elastic_logistic_regression.py --hosts-file "$directory/hosts" \
  --resize 15:4,35:2 --out-dir "$directory" "$@"
