#!/bin/sh
# alcapctl job alcap-alcapana4-02091-a1, database 0123456789abcdef (generated; edits are lost at the next attempt)
cd /work/alcapana_v4/jobs/alcap-alcapana4-02091-a1 || exit 111
export DAQdir='/opt/daq dir'
export ROOTSYS=/opt/root
finish() { printf '%s\n' "$1" ${2:+"$2"} >exit; exit "$1"; }
trap 'finish 143' TERM INT HUP
[ -d /data/dump/v4 ] || mkdir -p /data/dump/v4 2>>wrapper.log || finish $?
[ -d /data/hist/v4 ] || mkdir -p /data/hist/v4 2>>wrapper.log || finish $?
[ -d /data/log/v4 ] || mkdir -p /data/log/v4 2>>wrapper.log || finish $?
[ -d /data/tree/v4 ] || mkdir -p /data/tree/v4 2>>wrapper.log || finish $?
{
$DAQdir/alcapana -i '/data/raw/it'"'"'s run02091.mid' -T /data/tree/v4/tree02091.root -H /data/hist/v4/hist02091.root -D /data/dump/v4/dump02091.root -r 02091 -v 4
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
