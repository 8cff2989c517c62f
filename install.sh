#!/bin/sh
# Install alcapctl for this user, onto PATH, in one command (make install runs it):
# with pipx when there is one, else into a virtual environment of its own under
# PREFIX/share/alcapctl, linked as PREFIX/bin/alcapctl.  PREFIX defaults to ~/.local;
# EXTRAS=postgres,report adds those extras.
set -eu
prefix=${1:-$HOME/.local}
python=${PYTHON:-python3}
src=$(cd "$(dirname "$0")" && pwd)${EXTRAS:+[$EXTRAS]}
mkdir -p "$prefix/bin"
prefix=$(cd "$prefix" && pwd)
if command -v pipx >/dev/null 2>&1; then
	PIPX_HOME="$prefix/share/pipx" PIPX_BIN_DIR="$prefix/bin" pipx install --force "$src"
else
	venv="$prefix/share/alcapctl"
	"$python" -m venv --clear "$venv"
	"$venv/bin/python" -m pip install -q --disable-pip-version-check "$src"
	ln -sfn "$venv/bin/alcapctl" "$prefix/bin/alcapctl"
fi
"$prefix/bin/alcapctl" --version
echo "Installed $prefix/bin/alcapctl: use this absolute path in cron lines."
