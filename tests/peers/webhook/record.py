"""Appends one delivery that Debian's `webhook` accepted to DIR/KIND.ndjson, then prints the
reference the sender stores (webhook returns this script's output as the response body).

    usage: record.py KIND DIR      (run by webhook, see run.sh; stdlib only)

webhook hands over the request through the environment: CITYOPS_BODY_FILE names a temporary
file holding the raw request body (the `raw-request-body` source, so the bytes are exactly what
was sent, not webhook's re-encoding of a parsed payload), and CITYOPS_IDEMPOTENCY_KEY,
CITYOPS_SIGNATURE and CITYOPS_CONTENT_TYPE carry the headers. A file is used for the body
because one command-line argument or environment variable is capped at 128 KiB by Linux, and
real CAP alerts are larger.

Each line is {"seq", "idempotency_key", "signature", "content_type", "body"}. The reference
printed is "KIND-<seq>", seq being the line's number in the file. An exclusive lock around
count-and-append keeps lines whole and numbers unique when webhook runs commands in parallel.
Duplicate idempotency keys are appended again on purpose: the tests assert each key appears once,
so a duplicate delivery by the sender must stay visible.
"""

import fcntl
import json
import os
import sys


def main() -> int:
    kind, folder = sys.argv[1], sys.argv[2]
    with open(os.environ["CITYOPS_BODY_FILE"], "rb") as f:
        raw = f.read()
    # The body is stored as a JSON string. Undecodable bytes would not survive that, so they
    # are refused loudly (webhook answers 500 with this message) rather than altered.
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        print(f"body is not UTF-8: {e}")
        return 1
    record = {
        "idempotency_key": os.environ.get("CITYOPS_IDEMPOTENCY_KEY", ""),
        "signature": os.environ.get("CITYOPS_SIGNATURE", ""),
        "content_type": os.environ.get("CITYOPS_CONTENT_TYPE", ""),
        "body": body,
    }
    path = os.path.join(folder, f"{kind}.ndjson")
    with open(path, "a+b") as out:
        fcntl.flock(out, fcntl.LOCK_EX)
        out.seek(0)
        seq = sum(1 for _ in out) + 1
        line = json.dumps({"seq": seq, **record}, ensure_ascii=False) + "\n"
        out.write(line.encode("utf-8"))
        out.flush()
        os.fsync(out.fileno())
    sys.stdout.write(f"{kind}-{seq:06}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
