#!/bin/sh
# Install modelux-server into a fresh virtual environment.
#
#   deploy/install.sh PREFIX [SOURCE_DIR]
#
# PREFIX      where the venv goes (the image uses /opt/modelux); it must not exist yet
# SOURCE_DIR  the project checkout (default: the directory above this script)
#
# This is the image's whole install step: the Dockerfile's build stage runs exactly this
# script, and tests/deploy/test_install_script.py runs it on the CI machine, so what the
# image installs is what CI has exercised. Only the runtime dependencies are installed (no
# `[dev]` extra); their versions are the exact pins in pyproject.toml. PYTHON selects the
# interpreter (default python3, which must be 3.11 or newer).
set -eu

if [ "$#" -lt 1 ] || [ "$#" -gt 2 ]; then
    echo "usage: $0 PREFIX [SOURCE_DIR]" >&2
    exit 64
fi
prefix=$1
source_dir=${2:-$(dirname "$0")/..}
python=${PYTHON:-python3}

if [ -e "$prefix" ]; then
    # reusing a venv could keep packages an earlier install left behind
    echo "install.sh: $prefix already exists; give a new path" >&2
    exit 1
fi
if [ ! -f "$source_dir/pyproject.toml" ]; then
    echo "install.sh: no pyproject.toml in $source_dir" >&2
    exit 1
fi

"$python" -m venv "$prefix"
# a regular (non-editable) install: the venv must not depend on the source tree afterwards
"$prefix/bin/python" -m pip install --no-input --disable-pip-version-check "$source_dir"
# compile every module now, so a read-only root filesystem never makes Python try to write
# .pyc files at start-up; -q prints only failures
"$prefix/bin/python" -m compileall -q -j 0 "$prefix/lib"
"$prefix/bin/modelux" --help >/dev/null
echo "install.sh: modelux-server installed in $prefix"
