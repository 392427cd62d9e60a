"""Checks server.py with an independent Open311 client: PyPI `georeport` 0.3.1, a GeoReport v2
wrapper written against real city endpoints (Boston, Chicago, ...), not against this server.

    usage: check_client.py BASE_URL API_KEY     (prints "open311 client check: ok")

georeport reads services, service definitions and requests but cannot create a request (its
README: "does not currently support the creation of new 311 service requests"), and the other
PyPI clients (`open311` 1.1, `three` 0.8.0) are Python 2 only. The one POST is therefore sent
with `requests`, georeport's own HTTP library, exactly as the specification describes it (a form
with api_key, service_code, lat, long, description, attribute[...]); everything read back goes
through georeport.
"""

import sys

import requests
from georeport import GeoReport


def main() -> int:
    base, api_key = sys.argv[1], sys.argv[2]
    client = GeoReport(base, api_key=api_key)

    services = client.get_service_list()
    codes = {s["service_code"]: s for s in services}
    for code in ("utility-crew", "signal-repair", "public-works"):
        assert code in codes, f"{code} missing from {sorted(codes)}"
        for field in ("service_name", "description", "metadata", "type", "keywords", "group"):
            assert field in codes[code], f"{code} has no {field}"
    assert codes["signal-repair"]["service_name"] == "Traffic signal repair"

    definition = client.get_service_definition("utility-crew")
    assert definition["service_code"] == "utility-crew"
    assert isinstance(definition["attributes"], list)
    priority = next(a for a in definition["attributes"] if a["code"] == "priority")
    keys = [v["key"] for v in priority["values"]]

    form = {
        "api_key": api_key,
        "service_code": "signal-repair",
        "lat": "60.1699",
        "long": "24.9384",
        "description": "Signal dark at Mannerheimintie / Kaivokatu",
        f"attribute[{priority['code']}]": keys[-1],
        "email": "dispatch@example.org",
        "first_name": "Control",
        "last_name": "Room",
    }
    posted = requests.post(f"{base}/requests.json", data=form, timeout=10)
    assert posted.status_code in (200, 201), posted.text
    created = posted.json()
    assert isinstance(created, list) and len(created) == 1, created
    request_id = created[0]["service_request_id"]
    assert request_id, created

    one = client.get_service_request(request_id)
    expected = {
        "service_request_id": request_id,
        "status": "open",
        "service_code": "signal-repair",
        "service_name": "Traffic signal repair",
        "description": form["description"],
        "lat": 60.1699,
        "long": 24.9384,
    }
    for field, value in expected.items():
        assert one[field] == value, f"{field}: {one[field]!r} != {value!r}"
    for field in ("status_notes", "agency_responsible", "service_notice", "requested_datetime",
                  "updated_datetime", "expected_datetime", "address", "address_id", "zipcode",
                  "media_url"):
        assert field in one, f"request has no {field}"

    listed = client.get_service_requests(service_request_id=request_id)
    assert [r["service_request_id"] for r in listed] == [request_id], listed
    open_signals = client.get_service_requests(service_code="signal-repair", status="open")
    assert request_id in [r["service_request_id"] for r in open_signals]
    closed = client.get_service_requests(status="closed")
    assert request_id not in [r["service_request_id"] for r in closed]

    # An unknown request is a 404 with a GeoReport error array, which georeport raises.
    try:
        client.get_service_request("SR-999999")
        raise AssertionError("an unknown request did not fail")
    except requests.HTTPError as e:
        assert e.response.status_code == 404
        error = e.response.json()
        assert error[0]["code"] == 404 and error[0]["description"], error

    print(f"open311 client check: ok ({request_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
