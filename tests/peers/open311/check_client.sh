#!/usr/bin/env bash
# Runs check_client.py (PyPI georeport, pinned in requirements-client.txt) against an Open311
# server at BASE_URL. The virtual environment is created once under target/peers (or
# CITYOPS_PEERS_CACHE) and reused while the pins are unchanged.
#
#   usage: tests/peers/open311/check_client.sh BASE_URL API_KEY
# Exit codes: 0 when every check passed, 1 when one failed, 2 for bad usage, 3 when the
# environment cannot be set up.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
if [ $# -ne 2 ]; then
  echo "usage: $0 BASE_URL API_KEY" >&2
  exit 2
fi
python="${PYTHON:-python3}"
fail() { echo "open311 client check: $*" >&2; exit 3; }
venv="${CITYOPS_PEERS_CACHE:-$root/target/peers}/open311-client-venv"
stamp="$venv/.cityops-pins"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements-client.txt" "$stamp"; then
  rm -rf "$venv"
  "$python" -m venv "$venv" || fail "python -m venv failed (Debian: apt-get install python3-venv)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$here/requirements-client.txt" \
    || fail "pip install of $here/requirements-client.txt failed"
  cp "$here/requirements-client.txt" "$stamp"
fi
exec "$venv/bin/python" -I "$here/check_client.py" "$1" "$2"
