# Shared by the cluster harness scripts: state directory and PID bookkeeping.
# Every daemon we start is recorded in $CLUSTER_STATE/pids (one "name pid" per line) so
# that down.sh stops exactly those processes, by PID, whatever happened in between.
CLUSTER_STATE=${CLUSTER_STATE:-/var/tmp/alcapctl-cluster}
mkdir -p "$CLUSTER_STATE"
export DEBIAN_FRONTEND=noninteractive

record_pid() {  # record_pid NAME PIDFILE: wait for a daemon's pid file, then record it
  local name=$1 pidfile=$2 i
  for i in $(seq 50); do [ -s "$pidfile" ] && break; sleep 0.2; done
  [ -s "$pidfile" ] || { echo "$name: no pid file $pidfile" >&2; return 1; }
  echo "$name $(cat "$pidfile")" >> "$CLUSTER_STATE/pids"
}

wait_for() {  # wait_for SECONDS CMD...: retry a probe once a second
  local n=$1 i; shift
  for i in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "timed out waiting for: $*" >&2; return 1
}

apt_install() {  # install Debian packages only when some are missing
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_hostname() {  # the short host name must resolve (Debian images often lack it)
  local h; h=$(hostname -s)
  getent hosts "$h" >/dev/null || echo "127.0.0.1 $h" >> /etc/hosts
}
