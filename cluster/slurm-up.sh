#!/bin/bash
# Bring up a single-node Slurm cluster (Debian slurm-wlm + munge) as root, without systemd.
# Accounting: no slurmdbd; finished jobs go to a jobcomp/filetxt file read with `sacct -c`.
set -euo pipefail
. "$(dirname "$0")/common.sh"
apt_install slurm-wlm munge
ensure_hostname

# munged must run as the munge user; without systemd nobody creates /run/munge.
install -d -o munge -g munge -m 755 /run/munge
[ -s /etc/munge/munge.key ] || runuser -u munge -- /usr/sbin/mungekey --create
rm -f /run/munge/munged.pid
runuser -u munge -- /usr/sbin/munged
record_pid munged /run/munge/munged.pid
munge -n | unmunge >/dev/null

H=$(hostname -s)
mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
NODELINE=$(slurmd -C | head -1)  # NodeName=<host> CPUs=.. RealMemory=..
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=alcapci
SlurmctldHost=$H
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
# Keep finished jobs visible to squeue -t all (default 300 s); sacct -c covers the rest.
MinJobAge=3600
# Time limits are enforced on the minute; OverTimeLimit=0 and KillWait keep it short.
KillWait=2
OverTimeLimit=0
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
$NODELINE State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

rm -f /run/slurmctld.pid /run/slurmd.pid
# -c: a clean start; job ids restart at 1, so the old jobcomp records must go too.
: > /var/log/slurm/jobcomp.log
slurmctld -c
record_pid slurmctld /run/slurmctld.pid
slurmd
record_pid slurmd /run/slurmd.pid
wait_for 60 sh -c "sinfo -h -o '%t' | grep -qx idle"
sinfo
