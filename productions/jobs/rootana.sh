#!/bin/sh
# rootana job of one run, as the 2014 batch_rootana.sge ran it: refuse what cannot work
# (each with its own exit code), then run rootana on the run's alcapana tree.
#
# Usage: rootana.sh TREE OUT MODULES_FILE [ROOTANA OPTIONS...]
# Needs $DAQdir (passed with [job] pass_env).  ROOTANA_CALIB=yes (a [job.env] switch)
# adds -c: a calibration pass, which may miss tables in the calibration database.
# Exit codes: 1 usage, 2 DAQdir not set, 3 tree missing, 4 output exists, 5 modules file
# missing, 6 rootana not executable; otherwise rootana's own.

if [ $# -lt 3 ]; then
    echo "usage: rootana.sh TREE OUT MODULES_FILE [ROOTANA OPTIONS...]" >&2
    exit 1
fi
if [ -z "${DAQdir:-}" ]; then
    echo "ERROR: DAQdir not set!" >&2
    exit 2
fi
TREEFILE=$1
OUTFILE=$2
MODFILE=$3
shift 3
ROOTANA="$DAQdir/analyzer/rootana/rootana"
case "${ROOTANA_CALIB:-no}" in
    yes) set -- "$@" -c ;;
    no) ;;
    *) echo "ERROR: ROOTANA_CALIB must be yes or no (got $ROOTANA_CALIB)." >&2; exit 1 ;;
esac

if [ -r /usr/share/Modules/init/sh ]; then
    . /usr/share/Modules/init/sh
fi
. "$DAQdir/thisdaq.sh"

if [ ! -f "$TREEFILE" ]; then
    echo "ERROR: Tree file ($TREEFILE) does not exist!" >&2
    exit 3
elif [ -f "$OUTFILE" ]; then
    echo "ERROR: Out file exists ($OUTFILE)! Delete to rerun." >&2
    exit 4
elif [ ! -f "$MODFILE" ]; then
    echo "ERROR: Modules file ($MODFILE) does not exist!" >&2
    exit 5
elif [ ! -x "$ROOTANA" ]; then
    echo "ERROR: rootana does not seem to be compiled ($ROOTANA)." >&2
    exit 6
fi

echo "Command to run:"
echo "$ROOTANA -i $TREEFILE -o $OUTFILE -m $MODFILE $*"
exec "$ROOTANA" -i "$TREEFILE" -o "$OUTFILE" -m "$MODFILE" "$@"
