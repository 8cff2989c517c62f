#!/bin/bash
# Stop every daemon the harness started, by the PIDs it recorded, even after failures.
# Safe to run twice, and when nothing was started.
. "$(dirname "$0")/common.sh"
PIDS="$CLUSTER_STATE/pids"
[ -f "$PIDS" ] || exit 0
# Stop in reverse order of start: execution daemons before masters, munged last.
tac "$PIDS" | while read -r name pid; do
  kill -0 "$pid" 2>/dev/null || continue
  # only a process still running the recorded program (the PID may have been reused)
  grep -q "$name" "/proc/$pid/comm" 2>/dev/null || continue
  kill "$pid"
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  echo "stopped $name ($pid)"
done
rm -f "$PIDS"
