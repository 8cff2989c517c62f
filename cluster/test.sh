#!/bin/bash
# make test-cluster: bring Slurm and Grid Engine up once, run the tests marked `cluster`,
# and stop every daemon started here, whatever the outcome.  Needs root and apt.
# Usage: cluster/test.sh PYTHON [PYTEST ARGS...]
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=$1; shift
[ "$(id -u)" -eq 0 ] || { echo "make test-cluster needs root (apt-get, daemons)" >&2; exit 2; }
trap '"$HERE/down.sh"' EXIT INT TERM

"$HERE/down.sh"  # daemons left by an interrupted earlier run of this harness
start=$SECONDS
"$HERE/slurm-up.sh" >/dev/null || { echo "Slurm bring-up failed" >&2; exit 1; }
"$HERE/sge-up.sh" >/dev/null || { echo "Grid Engine bring-up failed" >&2; exit 1; }
echo "clusters up in $((SECONDS - start)) s"

start=$SECONDS
ALCAPCTL_CLUSTERS=slurm,sge "$PYTHON" -m pytest -q -m cluster tests/cluster "$@"
status=$?
echo "cluster tests took $((SECONDS - start)) s"
exit $status
