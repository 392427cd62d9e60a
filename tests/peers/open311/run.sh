#!/usr/bin/env bash
# Runs the Open311 GeoReport v2 test server (server.py, Python standard library only) on
# 127.0.0.1:PORT with its state in DIR/open311.sqlite, so a restart on the same DIR keeps the
# service requests, idempotency keys and test log. OPEN311_API_KEY, when set, is the only
# api_key accepted.
#
#   usage: tests/peers/open311/run.sh PORT DIR
#
# The server runs in the foreground (exec) so whoever started this script stops it by its id.
# Exit codes: 2 for bad usage, 3 when Python is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
port="${1:-}"
dir="${2:-}"
if ! [[ "$port" =~ ^[0-9]+$ ]] || [ -z "$dir" ]; then
  echo "usage: $0 PORT DIR" >&2
  exit 2
fi
python="${PYTHON:-python3}"
command -v "$python" >/dev/null || { echo "open311 peer: $python not found" >&2; exit 3; }
mkdir -p "$dir"
# -I: isolated mode (no user site-packages, no PYTHON* variables): the server needs only the
# standard library and must not pick up whatever the calling environment has.
exec "$python" -I "$here/server.py" "$port" "$dir"
