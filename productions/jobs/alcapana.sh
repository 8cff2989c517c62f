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
if [ -z "${DAQdir:-}" ]; then
    echo "ERROR: DAQdir not set!" >&2
    exit 2
fi
RUN=$(printf %05d "$1")
RAWFILE=$2
HISTFILE=$3
TREEFILE=$4
DUMPFILE=$5
ODBFILE=$6
CORRFILE=$7
ALCAPANA="$DAQdir/analyzer/work/production/alcapana"

# The site's module system (as on Merlin), then ROOT and MIDAS.
if [ -r /usr/share/Modules/init/sh ]; then
    . /usr/share/Modules/init/sh
fi
. "$DAQdir/thisdaq.sh"

if [ ! -f "$RAWFILE" ]; then
    echo "ERROR: Raw file does not exist ($RAWFILE)!" >&2
    exit 3
elif [ -f "$HISTFILE" ]; then
    echo "ERROR: Histogram file exists ($HISTFILE)! Delete to rerun." >&2
    exit 4
elif [ -f "$TREEFILE" ]; then
    echo "ERROR: Tree file exists ($TREEFILE)! Delete to rerun." >&2
    exit 5
elif [ ! -x "$ALCAPANA" ]; then
    echo "ERROR: alcapana does not seem to be compiled ($ALCAPANA)." >&2
    exit 6
elif [ ! -f "$ODBFILE" ]; then
    echo "ERROR: ODB file not found ($ODBFILE)." >&2
    exit 7
fi

# A private ODB: a fresh directory per job (not per run, as in 2014), so that two
# attempts of one run never share one either; removed however the job ends.
MIDAS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/alcapana-odb-run$RUN.XXXXXX") || exit 9
export MIDAS_DIR
trap 'rm -rf "$MIDAS_DIR"' EXIT
trap 'exit 143' TERM INT HUP

load() {
    yes n | odbedit -c "load $1" >/dev/null || {
        echo "ERROR: odbedit could not load $1." >&2
        exit 9
    }
}
# The defaults in name order, whatever the locale; then the run's ODB and corrections.
for DEFAULT in $(LC_ALL=C ls "$DAQdir/analyzer/odb/" | grep '\.odb$'); do
    load "$DAQdir/analyzer/odb/$DEFAULT"
done
load "$ODBFILE"
if [ ! -f "$CORRFILE" ]; then
    echo "ERROR: Cannot find ODB corrections ($CORRFILE)." >&2
    exit 8
fi
load "$CORRFILE"
odbedit -c "save $DUMPFILE" >/dev/null || {
    echo "ERROR: odbedit could not save the ODB dump $DUMPFILE." >&2
    exit 9
}

echo "Command to run:"
echo "$ALCAPANA -i $RAWFILE -o $HISTFILE -T $TREEFILE"
# In the background, so that a TERM from the scheduler reaches it and the trap above.
"$ALCAPANA" -i "$RAWFILE" -o "$HISTFILE" -T "$TREEFILE" &
PAYLOAD=$!
trap 'kill -TERM $PAYLOAD 2>/dev/null' TERM INT HUP
wait $PAYLOAD
STATUS=$?
while kill -0 $PAYLOAD 2>/dev/null; do wait $PAYLOAD; STATUS=$?; done
exit $STATUS
