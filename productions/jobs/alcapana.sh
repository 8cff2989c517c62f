#!/bin/sh
# alcapana job of one run, as the 2014 batch_alcapana.sge ran it: refuse what cannot work
# (each with its own exit code), give the job a private ODB, load the default ODBs, the
# run's ODB and its corrections into it, save the ODB dump, then run alcapana.
#
# Usage: alcapana.sh RUN RAW HIST TREE DUMP RUN_ODB CORRECTIONS
# Needs $DAQdir (the AlcapDAQ installation; productions pass it with [job] pass_env).
# Exit codes: 1 usage, 2 DAQdir not set, 3 raw file missing, 4 histogram file exists,
# 5 tree file exists, 6 alcapana not executable, 7 run ODB missing, 8 corrections
# missing, 9 odbedit failed; otherwise alcapana's own.

if [ $# -ne 7 ]; then
    echo "usage: alcapana.sh RUN RAW HIST TREE DUMP RUN_ODB CORRECTIONS" >&2
    exit 1
fi
. "$(dirname "$0")/daq-env.sh"
RUN=$(printf %05d "$1")
RAWFILE=$2
HISTFILE=$3
TREEFILE=$4
DUMPFILE=$5
ODBFILE=$6
CORRFILE=$7
ALCAPANA="$DAQdir/analyzer/work/production/alcapana"

[ -f "$RAWFILE" ] || refuse 3 "Raw file does not exist ($RAWFILE)!"
[ ! -f "$HISTFILE" ] || refuse 4 "Histogram file exists ($HISTFILE)! Delete to rerun."
[ ! -f "$TREEFILE" ] || refuse 5 "Tree file exists ($TREEFILE)! Delete to rerun."
[ -x "$ALCAPANA" ] || refuse 6 "alcapana does not seem to be compiled ($ALCAPANA)."
[ -f "$ODBFILE" ] || refuse 7 "ODB file not found ($ODBFILE)."

# A private ODB: a fresh directory per job (not per run, as in 2014), so that two
# attempts of one run never share one either; removed however the job ends.
MIDAS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/alcapana-odb-run$RUN.XXXXXX") ||
    refuse 9 "cannot create a private ODB directory in ${TMPDIR:-/tmp}."
export MIDAS_DIR
trap 'rm -rf "$MIDAS_DIR"' EXIT
# a TERM reaches alcapana with the job's process group; the shell then exits, cleaning up
trap 'exit 143' TERM INT HUP

load() {
    yes n | odbedit -c "load $1" >/dev/null || refuse 9 "odbedit could not load $1."
}
# The defaults in name order, whatever the locale; then the run's ODB and corrections.
for DEFAULT in $(LC_ALL=C ls "$DAQdir/analyzer/odb/" | grep '\.odb$'); do
    load "$DAQdir/analyzer/odb/$DEFAULT"
done
load "$ODBFILE"
[ -f "$CORRFILE" ] || refuse 8 "Cannot find ODB corrections ($CORRFILE)."
load "$CORRFILE"
odbedit -c "save $DUMPFILE" >/dev/null || refuse 9 "odbedit could not save the ODB dump $DUMPFILE."

echo "Command to run:"
echo "$ALCAPANA -i $RAWFILE -o $HISTFILE -T $TREEFILE"
"$ALCAPANA" -i "$RAWFILE" -o "$HISTFILE" -T "$TREEFILE"
