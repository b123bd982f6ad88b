"""No secret comes back: a licence token or a CML password sent in any request shape, to any
route, valid or not, never appears in a response (success or error) nor in a line of the log
(read at DEBUG), nor in the worker's record that events are made from, nor in any event put on
the custom EventBridge bus (what users' rules and their targets receive)."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.local_mode import auth

#: Looks like a real Smart Licensing token (CML's pattern), so it gets as far as the real path.
MARKER = "SecretMarker7QzX9wLicenceT0ken"
PASSWORD_MARKER = "CmlPassw0rdMarker4Kv"


def _requests(path: str, method: str) -> list[dict]:
    """Every shape a secret can be sent in to one operation."""
    secret_body = {"token": MARKER, "password": PASSWORD_MARKER, "reason": "x", "tags": {"a": "b"}}
    return [
        {"json": secret_body},
        {"json": {"token": MARKER + "!", "password": [PASSWORD_MARKER]}},  # invalid: 422 paths
        {"json": {"token": [MARKER], "reregister": PASSWORD_MARKER}},
        {"json": {"token": {"nested": MARKER}, "x": PASSWORD_MARKER}},
        {"json": {"token": MARKER * 20}},  # too long
        {"json": [MARKER, PASSWORD_MARKER]},
        # a secret pasted into the wrong field of an otherwise valid body: messages name rules, not values
        {"json": {"name": "secret-test", "region": MARKER}},
        {"json": {"region": MARKER, "instance_id": "i-0123456789abcdef0"}},
        {"json": {"tags": {MARKER + "!": "x"}}},
        {"json": {"tags": {"k": MARKER * 20}}},
        {"params": {"region": MARKER, "status": PASSWORD_MARKER}},
        {
            "content": f"token={MARKER}&password={PASSWORD_MARKER}",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        {
            "content": f'--b\r\nContent-Disposition: form-data; name="token"\r\n\r\n{MARKER}\r\n--b--\r\n',
            "headers": {"Content-Type": "multipart/form-data; boundary=b"},
        },
        {"content": f"token={MARKER}", "headers": {"Content-Type": "multipart/form-data"}},
        {"content": f'{{"token": "{MARKER}", "bad": }}'},  # not JSON
        {"content": f"lab: {{title: x}}\nnodes: *{MARKER}\n", "headers": {"Content-Type": "application/x-yaml"}},
        {"params": {"token": MARKER, "password": PASSWORD_MARKER}},
        {"headers": {"X-Licence-Token": MARKER, "X-Cml-Password": PASSWORD_MARKER, "Idempotency-Key": MARKER}},
    ]


@pytest.fixture(scope="module")
def operations(local_api) -> list[tuple[str, str]]:  # noqa: ANN001
    document = local_api.client.get("/openapi.json").json()
    items = local_api.client.get("/workers", headers=auth("viewer")).json()["items"]
    running = next(w for w in items if w["status"] == "running")["worker_id"]
    lab = "0b9d6c2e-5f1a-4c3b-9e8d-7a6f5e4d3c2b"
    # plus an unknown worker (404) and a method the path does not take (405)
    return [("POST", "/workers/w-unknown/licence"), ("GET", "/workers/w-unknown/licence"), ("PUT", "/health")] + [
        (method.upper(), path.replace("{worker_id}", running).replace("{lab_id}", lab))
        for path, methods in document["paths"].items()
        for method in methods
        # a real delete would remove the worker the other operations need; it is sent last below
        if not (method == "delete" and path == "/workers/{worker_id}")
    ]


def _no_secret(text: str, where: str) -> None:
    assert MARKER not in text and PASSWORD_MARKER not in text, f"a secret came back in {where}: {text[:800]}"


def test_no_route_echoes_a_secret_whatever_the_request(local_api, operations):  # noqa: ANN001
    client = local_api.client
    seen: set[int] = set()
    for method, path in operations:
        for role in ("admin", None):
            for shape in _requests(path, method):
                headers = {**auth(role), **shape.pop("headers", {})}
                response = client.request(method, path, headers=headers, **shape)
                seen.add(response.status_code)
                _no_secret(response.text, f"{method} {path} as {role}: {response.status_code}")
                _no_secret(json.dumps(dict(response.headers)), f"headers of {method} {path}")
    # the error paths were reached, not just one answer
    assert {400, 401, 404, 405, 415, 422} <= seen and any(s < 300 for s in seen), seen


def test_a_registered_token_is_in_no_record_and_no_log_line(local_api, operations):  # noqa: ANN001
    client = local_api.client
    items = client.get("/workers", headers=auth("viewer")).json()["items"]
    running = next(w for w in items if w["status"] == "running")["worker_id"]
    registered = client.post(f"/workers/{running}/licence", headers=auth("admin"), json={"token": MARKER})
    assert registered.status_code in (202, 409), registered.text
    _no_secret(registered.text, "the registration's answer")
    _no_secret(client.get(f"/workers/{running}", headers=auth("viewer")).text, "the worker record")
    _no_secret(client.get(f"/workers/{running}/licence", headers=auth("viewer")).text, "the licence view")
    _no_secret(client.get("/workers", headers=auth("viewer")).text, "the fleet list")
    deleted = client.delete(
        f"/workers/{running}", headers={**auth("admin"), "X-Token": MARKER}, params={"password": PASSWORD_MARKER}
    )
    assert deleted.status_code == 200, deleted.text
    _no_secret(deleted.text, "the deletion's answer")
    # the whole log of the run so far (DEBUG), per-request lines and errors included
    log = local_api.log()
    assert '"message":"request"' in log, "the per-request lines are in the log"
    _no_secret(log, "the log")


def test_no_event_on_the_bus_carries_a_secret(local_api):  # noqa: ANN001
    # Given a registration with a token, then a deletion, which the stream broadcaster turns into
    # events on the bus (the local mode's catch-all rule keeps what a target would receive)
    client = local_api.client
    items = client.get("/workers", headers=auth("viewer")).json()["items"]
    worker = next(w for w in items if w["status"] == "running")["worker_id"]

    def arrived(expected: set[str]) -> list[dict]:
        """The bus's events once `expected` types for the worker are in (or after 60 s)."""
        deadline = time.monotonic() + 60
        while True:
            events: list[dict] = client.get("/_local/events").json()["events"]
            mine = {e["detail-type"] for e in events if e["detail"]["data"].get("worker_id") == worker}
            if expected <= mine or time.monotonic() > deadline:
                assert expected <= mine, mine
                return events
            time.sleep(0.5)

    registered = client.post(f"/workers/{worker}/licence", headers=auth("admin"), json={"token": MARKER})
    assert registered.status_code in (202, 409), registered.text
    # The registration's progress is waited for before the deletion: written in one stream batch,
    # the deletion would be all a batch says about the licence operation.
    if registered.status_code == 202:
        arrived({"licence.progress"})
    deleted = client.delete(f"/workers/{worker}", headers={**auth("admin"), "X-Token": MARKER})
    assert deleted.status_code == 200, deleted.text
    # When the deletion's event arrived / Then none of the events holds a secret
    events = arrived({"worker.deleted"})
    _no_secret(json.dumps(events), "the events on the bus")
    _no_secret(client.get("/_local/events/worker-failed").text, "the example rule's target")
