#!/bin/sh
# Demo payload: "analyse" a raw file into tree, hist and ODB dump.
# Run 2095 crashes on its first attempt, to show a failed attempt and its retry.
set -eu
run=$1 input=$2 tree=$3 hist=$4 odb=$5
marker="$(dirname "$0")/failed-once-$run"
if [ "$run" = 2095 ] && [ ! -e "$marker" ]; then
    : > "$marker"
    echo "alcapana: segmentation violation in run $run (simulated)" >&2
    exit 139
fi
echo "alcapana run $run: $(wc -c < "$input") bytes"
{ echo "tree of run $run"; cat "$input"; } > "$tree"
echo "hist of run $run" > "$hist"
echo "odb of run $run" > "$odb"
