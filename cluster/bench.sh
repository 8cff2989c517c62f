#!/bin/bash
# make bench-cluster: bring Slurm up, run benchmarks/bench_cluster.py, stop every daemon
# started here, whatever the outcome.  Needs root and apt; run it under the cluster lock.
# Usage: cluster/bench.sh PYTHON [BENCH ARGS...]
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=$1; shift
[ "$(id -u)" -eq 0 ] || { echo "make bench-cluster needs root (apt-get, daemons)" >&2; exit 2; }
trap '"$HERE/down.sh"' EXIT INT TERM

"$HERE/down.sh"  # daemons left by an interrupted earlier run
"$HERE/slurm-up.sh" >/dev/null || { echo "Slurm bring-up failed" >&2; exit 1; }
"$PYTHON" "$HERE/../benchmarks/bench_cluster.py" "$@"
