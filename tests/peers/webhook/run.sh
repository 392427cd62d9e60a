#!/usr/bin/env bash
# Runs Debian's `webhook` (adnanh, 2.8) on 127.0.0.1:PORT as the receiver of the dispatch tests:
# hook `notify` (another agency's system, JSON) and hook `cap` (the public alert hub, CAP XML).
# Both accept a POST only when X-Cityops-Signature is "sha256=" + the hex HMAC-SHA256 of the raw
# body with SECRET and Idempotency-Key is present; anything else gets HTTP 400 and is not
# recorded. Accepted deliveries are appended by record.py to DIR/notify.ndjson or DIR/cap.ndjson
# and answered 200 with the reference "notify-000001" (or "cap-...").
#
#   usage: tests/peers/webhook/run.sh PORT DIR SECRET
#
# The server runs in the foreground (exec) so whoever started this script stops it by its id.
# Exit codes: 2 for bad usage, 3 when webhook or Python is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

port="${1:-}"
dir="${2:-}"
secret="${3:-}"
if ! [[ "$port" =~ ^[0-9]+$ ]] || [ -z "$dir" ] || [ -z "$secret" ]; then
  echo "usage: $0 PORT DIR SECRET" >&2
  exit 2
fi
fail() { echo "webhook peer: $*" >&2; exit 3; }
command -v webhook >/dev/null || fail "webhook not found (Debian package webhook; .ci/setup installs it)"
command -v python3 >/dev/null || fail "python3 not found"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
# The interpreter's own path, not a version manager's shim: webhook starts it once per delivery,
# and a shim would add its own start-up to every one.
python="$(python3 -c 'import sys; print(sys.executable)')"

# hooks.json is written by Python so that paths and the secret are escaped as JSON strings.
"$python" - "$dir" "$secret" "$python" "$here/record.py" <<'PY'
import json, sys
folder, secret, python, record = sys.argv[1:5]

def hook(kind, content_type):
    header = lambda name: {"source": "header", "name": name}
    return {
        "id": kind,
        "execute-command": python,
        "command-working-directory": folder,
        # -I: isolated mode, no user site-packages nor PYTHON* variables, and a faster start.
        "pass-arguments-to-command": [
            {"source": "string", "name": "-I"},
            {"source": "string", "name": record},
            {"source": "string", "name": kind},
            {"source": "string", "name": folder},
        ],
        "pass-environment-to-command": [
            {**header("Idempotency-Key"), "envname": "CITYOPS_IDEMPOTENCY_KEY"},
            {**header("X-Cityops-Signature"), "envname": "CITYOPS_SIGNATURE"},
            {**header("Content-Type"), "envname": "CITYOPS_CONTENT_TYPE"},
        ],
        # The raw body goes through a temporary file that webhook deletes afterwards.
        "pass-file-to-command": [
            {"source": "raw-request-body", "envname": "CITYOPS_BODY_FILE"},
        ],
        # The command's output (the reference) is the response body; webhook answers 500
        # when the command fails, so a delivery is never acknowledged without its record.
        "include-command-output-in-response": True,
        "include-command-output-in-response-on-error": True,
        "response-headers": [{"name": "Content-Type", "value": "text/plain; charset=utf-8"}],
        "http-methods": ["POST"],
        # webhook would parse the body to offer it as `payload`; the content type is fixed so
        # that a CAP document is parsed as XML and a notification as JSON whatever was sent.
        "incoming-payload-content-type": content_type,
        "trigger-rule-mismatch-http-response-code": 400,
        # Without this (and the `or` around the signature check), webhook 2.8 treats a wrong
        # signature as an error and answers 500; with it the rule is just not satisfied and the
        # mismatch code above is sent.
        "trigger-signature-soft-failures": True,
        "trigger-rule": {
            "and": [
                # webhook strips an optional "sha256=" itself; the prefix is required here so
                # that the sender's header format is checked too.
                {"match": {"type": "regex", "regex": "^sha256=[0-9a-f]{64}$",
                           "parameter": header("X-Cityops-Signature")}},
                # A signature failure is "soft" (a plain mismatch, not an error) only inside an
                # `or`, and only with trigger-signature-soft-failures below (webhook 2.8).
                {"or": [
                    {"match": {"type": "payload-hmac-sha256", "secret": secret,
                               "parameter": header("X-Cityops-Signature")}},
                ]},
                # A value of one character or more: an empty or missing key fails the rule.
                {"match": {"type": "regex", "regex": "^.+$",
                           "parameter": header("Idempotency-Key")}},
            ]
        },
    }

with open(f"{folder}/hooks.json", "w") as f:
    json.dump([hook("notify", "application/json"), hook("cap", "application/xml")], f, indent=2)
PY

exec webhook -hooks "$dir/hooks.json" -ip 127.0.0.1 -port "$port" -verbose
