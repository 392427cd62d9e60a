#!/usr/bin/env bash
# Runs taky, a real TAK server (PyPI, pinned), on 127.0.0.1:PORT with its state in DIR, for
# the Cursor-on-Target tests. The virtual environment is created once and reused.
#   usage: run.sh PORT DIR
set -euo pipefail
port=$1
dir=$2
here=$(cd "$(dirname "$0")" && pwd)
venv=${CITYOPS_PEERS_CACHE:-$here/../../../target/peers}/taky-venv
if [ ! -x "$venv/bin/taky" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check taky==0.10
fi
mkdir -p "$dir"
cat > "$dir/taky.conf" <<CONF
[taky]
hostname = localhost
node_id = CITYOPS-TEST
bind_ip = 127.0.0.1
root_dir = $dir

[cot_server]
port = $port

[dp_server]
upload_path = $dir/dp-user

[ssl]
enabled = false
CONF
exec "$venv/bin/taky" -c "$dir/taky.conf" -l info
