# Sourced by the AlCap job scripts: refuse a job without $DAQdir (exit 2, as in 2014),
# then set up its environment: the site's module system (as on Merlin), ROOT and MIDAS.

# refuse CODE MESSAGE: the job's error (the run's recorded error) and its exit code
refuse() {
    echo "ERROR: $2" >&2
    exit "$1"
}

[ -n "${DAQdir:-}" ] || refuse 2 "DAQdir not set!"
if [ -r /usr/share/Modules/init/sh ]; then
    . /usr/share/Modules/init/sh
fi
. "$DAQdir/thisdaq.sh"
