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
. "$(dirname "$0")/daq-env.sh"
TREEFILE=$1
OUTFILE=$2
MODFILE=$3
shift 3
ROOTANA="$DAQdir/analyzer/rootana/rootana"
case "${ROOTANA_CALIB:-no}" in
    yes) set -- "$@" -c ;;
    no) ;;
    *) refuse 1 "ROOTANA_CALIB must be yes or no (got $ROOTANA_CALIB)." ;;
esac

[ -f "$TREEFILE" ] || refuse 3 "Tree file ($TREEFILE) does not exist!"
[ ! -f "$OUTFILE" ] || refuse 4 "Out file exists ($OUTFILE)! Delete to rerun."
[ -f "$MODFILE" ] || refuse 5 "Modules file ($MODFILE) does not exist!"
[ -x "$ROOTANA" ] || refuse 6 "rootana does not seem to be compiled ($ROOTANA)."

echo "Command to run:"
echo "$ROOTANA -i $TREEFILE -o $OUTFILE -m $MODFILE $*"
exec "$ROOTANA" -i "$TREEFILE" -o "$OUTFILE" -m "$MODFILE" "$@"
