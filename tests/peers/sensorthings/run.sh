#!/usr/bin/env bash
# Runs the OGC SensorThings v1.1 test peer (PyPI django-ogc-sensorthings) on 127.0.0.1:PORT.
#
#   tests/peers/sensorthings/run.sh PORT [CACHE_DIR]
#
# The virtual environment lives in CACHE_DIR (default: target/peers/sensorthings next to the
# workspace) and is reused while its pins are unchanged; the database is a fresh SQLite file in
# a scratch folder each run, migrated before the server starts. The server runs in the
# foreground (exec) so that whoever started this script can stop it by its process id.
# Exit codes: 2 for bad usage, 3 when the environment cannot be set up (the reason is printed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"

port="${1:-}"
if ! [[ "$port" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 PORT [CACHE_DIR]" >&2
  exit 2
fi
cache="${2:-$root/target/peers/sensorthings}"
python="${PYTHON:-python3}"

fail() { echo "sensorthings peer: $*" >&2; exit 3; }

command -v "$python" >/dev/null || fail "$python not found (install Python 3.10 or newer)"
mkdir -p "$cache" || fail "cannot create $cache"
venv="$cache/venv"
stamp="$venv/.cityops-pins"
# Reinstall only when the pins changed, so repeated test runs start in about a second.
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$stamp"; then
  rm -rf "$venv"
  "$python" -m venv "$venv" || fail "python -m venv failed (Debian: apt-get install python3-venv)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$here/requirements.txt" \
    || fail "pip install of $here/requirements.txt failed"
  cp "$here/requirements.txt" "$stamp"
fi

data="$(mktemp -d "${TMPDIR:-/tmp}/cityops-sta.XXXXXX")"
export STA_PORT="$port" STA_DATA_DIR="$data" DJANGO_SETTINGS_MODULE=cityops_sta.settings
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1
"$venv/bin/python" -m django migrate --noinput -v 0 || fail "django migrate failed"
exec "$venv/bin/python" -m django runserver "127.0.0.1:$port" --noreload --nothreading
