"""An Open311 GeoReport v2 server for the dispatch tests, written from the specification
(http://wiki.open311.org/GeoReport_v2), Python 3 standard library only.

    usage: python3 server.py PORT DIR

It serves one jurisdiction in the JSON format (paths ending in `.json`) on 127.0.0.1:PORT and
keeps every service request, idempotency key and test-log entry in DIR/open311.sqlite, so a
restart keeps them. Environment: OPEN311_API_KEY, when set, is the only api_key accepted
(otherwise any non-empty key is).

Besides the specification it honours an `Idempotency-Key` request header on
`POST /requests.json`: a repeated key gets the original response again (with the header
`Idempotent-Replayed: true`) and creates nothing; the same key with a different body gets 422.

Endpoints under /_test/ are NOT part of Open311; they let a test observe and disturb the server:
  GET  /_test/log          every POST /requests.json received, in order (see README.md)
  POST /_test/close/{id}   closes a request (form or JSON `status_notes`)
  POST /_test/fault        JSON {"mode": ..., "count": N, "seconds": S}: a fault for the next N
                           POST /requests.json; {"mode": "none"} clears it
"""

import hashlib
import json
import os
import socket
import sqlite3
import struct
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

SPEC = "http://wiki.open311.org/GeoReport_v2"

# The services a control room dispatches crews through. No attribute is required, so a request
# needs only a service code and a location; `priority` shows how attributes are declared.
PRIORITY = {
    "variable": True,
    "code": "priority",
    "datatype": "singlevaluelist",
    "required": False,
    "datatype_description": None,
    "order": 1,
    "description": "How urgently the crew is needed",
    "values": [{"key": "normal", "name": "Normal"}, {"key": "urgent", "name": "Urgent"}],
}
SERVICES = {
    "utility-crew": {
        "service_name": "Utility field crew",
        "description": "Send a field crew of the electricity, water or district heating utility.",
        "group": "Utilities",
        "keywords": "power,water,heating,outage,leak",
        "agency": "Utility operations",
        "attributes": [PRIORITY],
    },
    "signal-repair": {
        "service_name": "Traffic signal repair",
        "description": "A traffic signal is dark, flashing or stuck.",
        "group": "Streets",
        "keywords": "traffic,signal,light,intersection",
        "agency": "Traffic signal maintenance",
        "attributes": [PRIORITY],
    },
    "public-works": {
        "service_name": "Public works crew",
        "description": "Fallen trees, flooding, debris or damaged street furniture.",
        "group": "Streets",
        "keywords": "tree,flood,debris,road,damage",
        "agency": "Public works",
        "attributes": [],
    },
}
NOTICE = "The request has been received and will be dispatched to a crew."
FAULT_MODES = ("status500", "retry_after", "hang", "reset", "slow")


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def w3c(t: datetime) -> str:
    """A W3C (ISO 8601) datetime with a numeric offset, as in the specification's examples."""
    return t.isoformat()


def parse_w3c(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


class Store:
    """Every read and write goes through one connection under one lock: the server handles
    requests on threads, and the lock also makes "check the idempotency key, then create"
    atomic."""

    def __init__(self, path: str):
        self.lock = threading.Lock()
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS requests (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT UNIQUE,
                service_code TEXT NOT NULL,
                description TEXT,
                status TEXT NOT NULL,
                status_notes TEXT,
                lat REAL, long REAL,
                address TEXT, address_id TEXT, zipcode TEXT,
                email TEXT, device_id TEXT, account_id TEXT,
                first_name TEXT, last_name TEXT, phone TEXT,
                media_url TEXT,
                attributes TEXT NOT NULL,
                requested_datetime TEXT NOT NULL,
                updated_datetime TEXT NOT NULL,
                expected_datetime TEXT
            );
            CREATE TABLE IF NOT EXISTS idempotency (
                key TEXT PRIMARY KEY,
                body_sha256 TEXT NOT NULL,
                status INTEGER NOT NULL,
                response TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS log (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                entry TEXT NOT NULL
            );
            """
        )


class Fault:
    """The fault armed by POST /_test/fault; it lives in memory, so a restart clears it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.mode, self.count, self.seconds = "none", 0, 0.0

    def set(self, mode: str, count: int, seconds: float):
        with self.lock:
            self.mode, self.count, self.seconds = mode, count, seconds

    def take(self):
        """The fault for this request, if one is armed, counting it down."""
        with self.lock:
            if self.mode == "none" or self.count <= 0:
                return None
            self.count -= 1
            return self.mode, self.seconds


class ApiError(Exception):
    def __init__(self, status: int, description: str):
        super().__init__(description)
        self.status, self.description = status, description


def row_to_request(r: sqlite3.Row) -> dict:
    service = SERVICES[r["service_code"]]
    return {
        "service_request_id": r["id"],
        "status": r["status"],
        "status_notes": r["status_notes"],
        "service_name": service["service_name"],
        "service_code": r["service_code"],
        "description": r["description"],
        "agency_responsible": service["agency"],
        "service_notice": NOTICE,
        "requested_datetime": r["requested_datetime"],
        "updated_datetime": r["updated_datetime"],
        "expected_datetime": r["expected_datetime"],
        "address": r["address"],
        "address_id": r["address_id"],
        "zipcode": r["zipcode"],
        "lat": r["lat"],
        "long": r["long"],
        "media_url": r["media_url"],
    }


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 with Content-Length on every answer, so clients can keep connections alive.
    protocol_version = "HTTP/1.1"
    server_version = "cityops-open311-test/1"
    store: Store
    fault: Fault
    api_key: str

    def log_message(self, fmt, *args):
        sys.stderr.write("open311: %s %s\n" % (self.address_string(), fmt % args))

    # ---- plumbing -------------------------------------------------------------------------
    def send_json(self, status: int, value, extra_headers=()):
        body = json.dumps(value).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, val in extra_headers:
            self.send_header(name, val)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (it timed out during a `slow` fault): nothing else to do.
            self.close_connection = True

    def send_error_array(self, status: int, description: str, extra_headers=()):
        self.send_json(status, [{"code": status, "description": description}], extra_headers)

    def read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding"):
                raise ApiError(411, "send a Content-Length (chunked bodies are not accepted)")
            return b""
        try:
            n = int(length)
        except ValueError:
            raise ApiError(400, "Content-Length is not a number") from None
        return self.rfile.read(n)

    def path_parts(self):
        split = urlsplit(self.path)
        return split.path, parse_qs(split.query, keep_blank_values=True)

    def dispatch(self, routes):
        path, query = self.path_parts()
        try:
            for prefix, suffix, fn in routes:
                if path.startswith(prefix) and path.endswith(suffix) and len(path) >= len(prefix) + len(suffix):
                    middle = unquote(path[len(prefix): len(path) - len(suffix)])
                    return fn(middle, query)
            if path.endswith(".xml"):
                raise ApiError(400, "this server answers in JSON only; use the .json paths")
            raise ApiError(404, f"no such resource: {path}")
        except ApiError as e:
            self.send_error_array(e.status, e.description)

    # ---- routes ---------------------------------------------------------------------------
    def do_GET(self):
        self.dispatch([
            ("/discovery.json", "", self.discovery),
            ("/services.json", "", self.services),
            ("/services/", ".json", self.service_definition),
            ("/requests.json", "", self.list_requests),
            ("/requests/", ".json", self.get_request),
            ("/_test/log", "", self.test_log),
        ])

    def do_POST(self):
        self.dispatch([
            ("/requests.json", "", self.post_request),
            ("/_test/close/", "", self.test_close),
            ("/_test/fault", "", self.test_fault),
        ])

    def discovery(self, rest, _query):
        if rest:
            raise ApiError(404, "no such resource")
        host = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.send_json(200, {
            "changeset": "2026-01-01T00:00:00+00:00",
            "contact": "cityops test peer (tests/peers/open311)",
            "key_service": "Any non-empty api_key, or the value of OPEN311_API_KEY when set.",
            "endpoints": [{
                "specification": SPEC,
                "url": host,
                "changeset": "2026-01-01T00:00:00+00:00",
                "type": "test",
                "formats": ["application/json"],
            }],
        })

    def services(self, rest, _query):
        if rest:
            raise ApiError(404, "no such resource")
        self.send_json(200, [
            {
                "service_code": code,
                "service_name": s["service_name"],
                "description": s["description"],
                "metadata": bool(s["attributes"]),
                "type": "realtime",
                "keywords": s["keywords"],
                "group": s["group"],
            }
            for code, s in SERVICES.items()
        ])

    def service_definition(self, code, _query):
        if code not in SERVICES:
            raise ApiError(404, f"service_code {code} not found")
        self.send_json(200, {"service_code": code, "attributes": SERVICES[code]["attributes"]})

    def get_request(self, request_id, _query):
        with self.store.lock:
            self.store.db.row_factory = sqlite3.Row
            row = self.store.db.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()
        if row is None:
            raise ApiError(404, f"service_request_id {request_id} not found")
        self.send_json(200, [row_to_request(row)])

    def list_requests(self, rest, query):
        if rest:
            raise ApiError(404, "no such resource")

        def values(name):
            return [v for item in query.get(name, []) for v in item.split(",") if v]

        ids = values("service_request_id")
        with self.store.lock:
            self.store.db.row_factory = sqlite3.Row
            rows = self.store.db.execute("SELECT * FROM requests ORDER BY seq").fetchall()
        if ids:
            # The specification: service_request_id overrides every other parameter.
            wanted = set(ids)
            rows = [r for r in rows if r["id"] in wanted]
        else:
            codes, statuses = set(values("service_code")), set(values("status"))
            if statuses - {"open", "closed"}:
                raise ApiError(400, "status must be open or closed")
            try:
                end = parse_w3c(query["end_date"][0]) if "end_date" in query else now()
                start = parse_w3c(query["start_date"][0]) if "start_date" in query else end - timedelta(days=90)
            except ValueError:
                raise ApiError(400, "start_date and end_date must be W3C datetimes") from None
            if end - start > timedelta(days=90):
                raise ApiError(400, "start_date and end_date may not span more than 90 days")
            rows = [
                r for r in rows
                if (not codes or r["service_code"] in codes)
                and (not statuses or r["status"] in statuses)
                and start <= parse_w3c(r["requested_datetime"]) <= end
            ]
        # The specification caps the answer at 1000 requests, most recent last here.
        self.send_json(200, [row_to_request(r) for r in rows[-1000:]])

    def post_request(self, rest, _query):
        if rest:
            raise ApiError(404, "no such resource")
        raw = self.read_body()
        key = self.headers.get("Idempotency-Key")
        entry = {
            "idempotency_key": key,
            "headers": {k: v for k, v in self.headers.items()},
            "body": raw.decode("utf-8", errors="replace"),
            "created": None,
            "status": None,
        }
        fault = self.fault.take()
        mode, seconds = fault if fault else ("none", 0.0)
        entry["fault"] = None if mode == "none" else mode
        if mode in ("status500", "retry_after", "hang", "reset"):
            # These faults happen before anything is created: the request is lost.
            entry["status"] = {"status500": 500, "retry_after": 503}.get(mode)
            self.append_log(entry)
            if mode == "status500":
                self.send_error_array(500, "injected fault: internal server error")
            elif mode == "retry_after":
                self.send_error_array(503, "injected fault: try again later",
                                      [("Retry-After", str(int(seconds)))])
            elif mode == "hang":
                # Hold the connection without a word, then close it (FIN, no answer).
                time.sleep(seconds)
                self.close_connection = True
            else:
                self.reset_connection()
            return

        status, body, headers = self.create(raw, key, entry)
        if mode == "slow":
            # Created and committed, but the answer comes late: if the client times out, it
            # does not know the request exists ("delivered, acknowledgement lost").
            time.sleep(seconds)
        self.send_json(status, body, headers)

    def create(self, raw: bytes, key, entry: dict):
        """Validates and creates the request; returns (status, body, headers) and logs."""
        body_sha = hashlib.sha256(raw).hexdigest()
        with self.store.lock:
            db = self.store.db
            db.row_factory = None
            try:
                if key is not None:
                    if key == "":
                        raise ApiError(400, "Idempotency-Key must not be empty")
                    seen = db.execute("SELECT body_sha256, status, response FROM idempotency WHERE key = ?",
                                      (key,)).fetchone()
                    if seen is not None:
                        if seen[0] != body_sha:
                            raise ApiError(422, "Idempotency-Key was already used with a different body")
                        response = json.loads(seen[2])
                        entry["status"] = seen[1]
                        entry["created"] = None
                        self.append_log_locked(entry)
                        return seen[1], response, [("Idempotent-Replayed", "true")]
                form = self.parse_form(raw)
                record = self.validate(form)
                t = w3c(now())
                db.execute("BEGIN IMMEDIATE")
                cur = db.execute(
                    "INSERT INTO requests (service_code, description, status, status_notes, lat, long,"
                    " address, address_id, zipcode, email, device_id, account_id, first_name, last_name,"
                    " phone, media_url, attributes, requested_datetime, updated_datetime, expected_datetime)"
                    " VALUES (?, ?, 'open', NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                    (record["service_code"], record["description"], record["lat"], record["long"],
                     record["address_string"], record["address_id"], record["zipcode"], record["email"],
                     record["device_id"], record["account_id"], record["first_name"], record["last_name"],
                     record["phone"], record["media_url"], json.dumps(record["attributes"]), t, t),
                )
                request_id = "SR-%06d" % cur.lastrowid
                db.execute("UPDATE requests SET id = ? WHERE seq = ?", (request_id, cur.lastrowid))
                response = [{"service_request_id": request_id, "service_notice": NOTICE, "account_id": None}]
                if key is not None:
                    db.execute("INSERT INTO idempotency (key, body_sha256, status, response) VALUES (?, ?, 201, ?)",
                               (key, body_sha, json.dumps(response)))
                entry["status"], entry["created"] = 201, request_id
                self.append_log_locked(entry)
                db.execute("COMMIT")
                return 201, response, []
            except ApiError as e:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                entry["status"] = e.status
                self.append_log_locked(entry)
                return e.status, [{"code": e.status, "description": e.description}], []

    def parse_form(self, raw: bytes) -> dict:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise ApiError(400, "the body must be application/x-www-form-urlencoded")
        try:
            return parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "the form body cannot be parsed") from None

    def validate(self, form: dict) -> dict:
        def one(name):
            v = form.get(name)
            return v[-1] if v else None

        api_key = one("api_key")
        if not api_key or (self.api_key and api_key != self.api_key):
            raise ApiError(403, "invalid api_key")
        code = one("service_code")
        if not code:
            raise ApiError(400, "service_code is required")
        if code not in SERVICES:
            raise ApiError(404, f"service_code {code} not found")
        lat, lon = one("lat"), one("long")
        if (lat is None) != (lon is None):
            raise ApiError(400, "lat and long go together")
        if lat is not None:
            try:
                lat, lon = float(lat), float(lon)
            except ValueError:
                raise ApiError(400, "lat and long must be numbers") from None
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise ApiError(400, "lat or long out of range")
        address, address_id = one("address_string"), one("address_id")
        if lat is None and not address and not address_id:
            raise ApiError(400, "a location is required: lat and long, address_string or address_id")
        attributes = {}
        for name, vals in form.items():
            if name.startswith("attribute[") and name.endswith("]"):
                attributes[name[len("attribute["):-1]] = vals if len(vals) > 1 else vals[0]
        for attr in SERVICES[code]["attributes"]:
            value = attributes.get(attr["code"])
            if attr["required"] and value is None:
                raise ApiError(400, f"attribute[{attr['code']}] is required")
            if value is not None and attr["datatype"] == "singlevaluelist":
                if value not in [v["key"] for v in attr["values"]]:
                    raise ApiError(400, f"attribute[{attr['code']}] must be one of its listed keys")
        return {
            "service_code": code, "description": one("description"), "lat": lat, "long": lon,
            "address_string": address, "address_id": address_id, "zipcode": one("zipcode"),
            "email": one("email"), "device_id": one("device_id"), "account_id": one("account_id"),
            "first_name": one("first_name"), "last_name": one("last_name"), "phone": one("phone"),
            "media_url": one("media_url"), "attributes": attributes,
        }

    def append_log(self, entry: dict):
        with self.store.lock:
            self.append_log_locked(entry)

    def append_log_locked(self, entry: dict):
        self.store.db.execute("INSERT INTO log (entry) VALUES (?)", (json.dumps(entry),))

    def reset_connection(self):
        """Closes the connection with a TCP RST and no answer: SO_LINGER with a zero timeout
        makes close() abort the connection. The read side (a makefile reference) is closed
        first so that close() really closes the socket now."""
        sock = self.connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        sock.close()
        self.close_connection = True

    # ---- test control (not Open311) -------------------------------------------------------
    def test_log(self, rest, _query):
        if rest:
            raise ApiError(404, "no such resource")
        with self.store.lock:
            self.store.db.row_factory = None
            rows = self.store.db.execute("SELECT entry FROM log ORDER BY seq").fetchall()
        self.send_json(200, [json.loads(r[0]) for r in rows])

    def test_close(self, request_id, _query):
        raw = self.read_body()
        request_id = request_id.removesuffix(".json")
        notes = None
        if raw:
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            try:
                if ctype == "application/json":
                    notes = json.loads(raw).get("status_notes")
                else:
                    notes = (parse_qs(raw.decode("utf-8")).get("status_notes") or [None])[-1]
            except (ValueError, AttributeError):
                raise ApiError(400, "status_notes: send a form or a JSON object") from None
        with self.store.lock:
            cur = self.store.db.execute(
                "UPDATE requests SET status = 'closed', status_notes = ?, updated_datetime = ? WHERE id = ?",
                (notes, w3c(now()), request_id))
        if cur.rowcount == 0:
            raise ApiError(404, f"service_request_id {request_id} not found")
        self.send_json(200, {"service_request_id": request_id, "status": "closed"})

    def test_fault(self, rest, _query):
        if rest:
            raise ApiError(404, "no such resource")
        try:
            spec = json.loads(self.read_body() or b"{}")
            mode = spec.get("mode", "none")
            count = int(spec.get("count", 1))
            seconds = float(spec.get("seconds", 0))
        except (ValueError, AttributeError, TypeError):
            raise ApiError(400, "send a JSON object {mode, count, seconds}") from None
        if mode not in FAULT_MODES + ("none",):
            raise ApiError(400, f"mode must be one of {', '.join(FAULT_MODES)} or none")
        self.fault.set(mode, count if mode != "none" else 0, seconds)
        self.send_json(200, {"mode": mode, "count": count if mode != "none" else 0, "seconds": seconds})


def main():
    if len(sys.argv) != 3 or not sys.argv[1].isdigit():
        sys.stderr.write("usage: server.py PORT DIR\n")
        sys.exit(2)
    port, folder = int(sys.argv[1]), sys.argv[2]
    os.makedirs(folder, exist_ok=True)
    Handler.store = Store(os.path.join(folder, "open311.sqlite"))
    Handler.fault = Fault()
    Handler.api_key = os.environ.get("OPEN311_API_KEY", "")
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    # Handler threads (a `hang` or `slow` fault holds one) must not keep the process alive.
    server.daemon_threads = True
    sys.stderr.write(f"open311: serving on http://127.0.0.1:{port} with state in {folder}\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
