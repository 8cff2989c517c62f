#!/bin/sh
# alcapctl job alcap-alcapana4-02091-a1, database 0123456789abcdef (generated; edits are lost at the next attempt)
cd /work/alcapana_v4/jobs/alcap-alcapana4-02091-a1 || exit 111
export DAQdir='/opt/daq dir'
export ROOTSYS=/opt/root
export ALCAPCTL_RUN=2091
export ALCAPCTL_INPUT='/data/raw/it'"'"'s run02091.mid'
export ALCAPCTL_VERSION=4
export ALCAPCTL_TREE=/data/tree/v4/tree02091.root
export ALCAPCTL_HIST=/data/hist/v4/hist02091.root
export ALCAPCTL_ODB=/data/dump/v4/dump02091.root
export ALCAPCTL_OLOG=/data/log/v4/alcapana.run02091.out
export ALCAPCTL_ELOG=/data/log/v4/alcapana.run02091.err
export ALCAPCTL_RUN_1=02091
finish() { printf '%s\n' "$1" ${2:+"$2"} >exit; exit "$1"; }
trap 'finish 143' TERM INT HUP
[ -d /data/dump/v4 ] || mkdir -p /data/dump/v4 2>>wrapper.log || finish $?
[ -d /data/hist/v4 ] || mkdir -p /data/hist/v4 2>>wrapper.log || finish $?
[ -d /data/log/v4 ] || mkdir -p /data/log/v4 2>>wrapper.log || finish $?
[ -d /data/tree/v4 ] || mkdir -p /data/tree/v4 2>>wrapper.log || finish $?
{
$DAQdir/alcapana -i "$ALCAPCTL_INPUT" -T "$ALCAPCTL_TREE" -H "$ALCAPCTL_HIST" -D "$ALCAPCTL_ODB" -r "$ALCAPCTL_RUN_1" -v "$ALCAPCTL_VERSION"
} </dev/null >/data/log/v4/alcapana.run02091.out 2>/data/log/v4/alcapana.run02091.err &
job=$!
trap 'kill -TERM $job 2>/dev/null' TERM INT HUP
wait $job
status=$?
# a trapped signal interrupts wait: wait again for the payload's own status
while kill -0 $job 2>/dev/null; do wait $job; status=$?; done
why=
[ $status -eq 0 ] || [ "$(df -Pk /data/log/v4 2>/dev/null | awk 'NR == 2 {print $4}')" != 0 ] || why="ENOSPC: no space left on the file system of the elog"
finish $status "$why"
