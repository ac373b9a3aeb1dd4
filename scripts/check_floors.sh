#!/usr/bin/env bash
# Check the lower bounds pyproject.toml declares, outside the test suite and CI.
#
# A fresh install takes the newest release of every dependency, so the suite never runs on the oldest
# versions our bounds admit, while a machine that already has one of those keeps it (pip leaves a
# satisfied requirement alone). This installs this checkout with each direct dependency at the lowest
# version its bound allows (uv's `--resolution lowest-direct`) into a throwaway virtualenv, with a
# throwaway HOME, and runs the fast loop there. A bound that admits a version the code cannot run on
# fails here.
#
#     scripts/check_floors.sh                  # the fast loop: -m "not slow" -n 2 (~5 min with the install)
#     scripts/check_floors.sh -n 2             # the whole suite (~10 min)
#     scripts/check_floors.sh tests/test_x.py  # other pytest arguments
#
# Needs python3 (with venv) and the package index; uv is installed into the throwaway environment.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/wire-floors.XXXXXX")
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/tools"
"$work/tools/bin/pip" install -q --disable-pip-version-check uv
uv="$work/tools/bin/uv"
"$uv" venv -q -p "$(command -v python3)" "$work/venv"
VIRTUAL_ENV="$work/venv" "$uv" pip install -q --resolution lowest-direct -e "$here[test]"
echo "== the lowest versions the bounds allow:"
VIRTUAL_ENV="$work/venv" "$uv" pip freeze | grep -viE "^(-e|beadwire)" | tr '\n' ' '
echo

cd "$here"
[ $# -gt 0 ] || set -- -m "not slow" -n 2
mkdir -p "$work/home"
HOME="$work/home" "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
