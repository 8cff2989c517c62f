#!/bin/bash
# Bring up a single-host Grid Engine cell (Debian gridengine 8.1.9) as root, without systemd.
set -euo pipefail
. "$(dirname "$0")/common.sh"
ensure_hostname
H=$(hostname)

# The four packages share debconf questions; answer them so the install never asks.
for p in gridengine-common gridengine-client gridengine-master gridengine-exec; do
  printf '%s shared/gridengineconfig boolean true\n' "$p"
  printf '%s shared/gridenginecell string default\n' "$p"
  printf '%s shared/gridenginemaster string %s\n' "$p" "$H"
done | debconf-set-selections
apt_install gridengine-master gridengine-exec gridengine-client
# postinst ran init_cluster: SGE_ROOT=/var/lib/gridengine, cell default, admin user sgeadmin.

COMMON=/var/lib/gridengine/default/common
# $H resolves to 127.0.0.1, which reverse-resolves to "localhost": without the alias
# commlib refuses every client ("client IP resolved to host name localhost").
echo "$H localhost" > $COMMON/host_aliases
echo "$H" > $COMMON/act_qmaster
chown sgeadmin:sgeadmin $COMMON/host_aliases $COMMON/act_qmaster

QMASTER_PID=/var/spool/gridengine/qmaster/qmaster.pid
EXECD_PID=/var/run/gridengine/execd.pid
rm -f "$QMASTER_PID" "$EXECD_PID"
/etc/init.d/gridengine-master start >/dev/null
record_pid sge_qmaster "$QMASTER_PID"
wait_for 60 qstat

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
# Root may run jobs (min_uid/min_gid default to 1000 in Debian); accounting is written
# at once instead of every 15 s, so qacct sees a job soon after it ends.
qconf -sconf | sed -e ':a' -e '/\\$/{N;s/\\\n[[:space:]]*/ /;ba' -e '}' \
  | sed -e 's/^min_uid .*/min_uid 0/' -e 's/^min_gid .*/min_gid 0/' \
    -e 's/^reporting_params .*/reporting_params accounting=true reporting=false flush_time=00:00:01 joblog=false sharelog=00:00:00 accounting_flush_time=00:00:00/' \
  > "$W/global"
qconf -Mconf "$W/global" >/dev/null
# Schedule every second instead of every 15 s.
qconf -ssconf | sed -e 's/^schedule_interval .*/schedule_interval 0:0:1/' \
  -e 's/^flush_submit_sec .*/flush_submit_sec 1/' -e 's/^flush_finish_sec .*/flush_finish_sec 1/' \
  > "$W/sched"
qconf -Msconf "$W/sched" >/dev/null

qconf -as "$H" >/dev/null 2>&1 || true  # submit host (already one on a second run)
/etc/init.d/gridengine-exec start >/dev/null
record_pid sge_execd "$EXECD_PID"
wait_for 60 sh -c "qconf -sel | grep -qx '$H'"

# No queue exists by default; one batch queue on this host, no parallel environments.
if ! qconf -sq all.q >/dev/null 2>&1; then
  cat > "$W/all.q" <<QUEUE
qname                 all.q
hostlist              $H
seq_no                0
load_thresholds       NONE
suspend_thresholds    NONE
nsuspend              1
suspend_interval      00:05:00
priority              0
min_cpu_interval      00:05:00
processors            UNDEFINED
qtype                 BATCH INTERACTIVE
ckpt_list             NONE
pe_list               NONE
rerun                 FALSE
slots                 $(nproc)
tmpdir                /tmp
shell                 /bin/sh
prolog                NONE
epilog                NONE
shell_start_mode      posix_compliant
starter_method        NONE
suspend_method        NONE
resume_method         NONE
terminate_method      NONE
notify                00:00:60
owner_list            NONE
user_lists            NONE
xuser_lists           NONE
subordinate_list      NONE
complex_values        NONE
projects              NONE
xprojects             NONE
calendar              NONE
initial_state         default
s_rt                  INFINITY
h_rt                  INFINITY
s_cpu                 INFINITY
h_cpu                 INFINITY
s_fsize               INFINITY
h_fsize               INFINITY
s_data                INFINITY
h_data                INFINITY
s_stack               INFINITY
h_stack               INFINITY
s_core                INFINITY
h_core                INFINITY
s_rss                 INFINITY
h_rss                 INFINITY
s_vmem                INFINITY
h_vmem                INFINITY
QUEUE
  qconf -Aq "$W/all.q" >/dev/null
fi
wait_for 60 sh -c "qstat -f | grep -q 'all.q@'"
qstat -f
