"""Hostile input, by hand: what a fuzzer seldom builds. Every answer is a 4xx in the one error
shape `{error, message, field}`, never a 5xx, over HTTP against the local mode (the gateway and
the function, as a client meets them)."""

from __future__ import annotations

import json

import pytest

from tests.support.local_mode import auth

UUID = "0b9d6c2e-5f1a-4c3b-9e8d-7a6f5e4d3c2b"
#: Every route taking a JSON body, with a body it would accept.
JSON_ROUTES = [
    ("POST", "/workers", {"name": "hostile-1", "region": "us-east-1"}),
    ("POST", "/workers/import", {"region": "us-east-1", "instance_id": "i-0123456789abcdef0"}),
    ("POST", "/workers/{w}/pause", {"reason": "lunch"}),
    ("PUT", "/workers/{w}/tags", {"tags": {"a": "b"}}),
    ("PUT", "/workers/{w}/idle-detection", {"enabled": True}),
    ("POST", "/workers/{w}/licence", {"token": "abc"}),
    ("PUT", "/settings", {}),
    ("PATCH", "/settings", {"version": 0}),
]


def _shape(response, status: int, field: str | None = "any") -> dict:  # noqa: ANN001
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error", "message", "field"} and body["error"] and body["message"], body
    if field != "any":
        assert body["field"] == field, body
    return body


@pytest.fixture(scope="module")
def worker_id(local_api) -> str:  # noqa: ANN001
    items = local_api.client.get("/workers", headers=auth("viewer")).json()["items"]
    return next(w["worker_id"] for w in items if w["status"] == "running")


def _path(path: str, worker_id: str) -> str:
    return path.replace("{w}", worker_id)


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("multipart/form-data", 415),  # no boundary: a 500 before the guard
        ("multipart/form-data; boundary=x", 415),
        ("application/x-www-form-urlencoded", 415),
        ("text/plain", 415),
        ("application/json; charset=latin-1", 415),
        ("application/xml", 415),
    ],
)
def test_a_body_in_another_media_type_is_415_naming_content_type(local_api, worker_id, content_type, status):  # noqa: ANN001
    for method, path, body in JSON_ROUTES:
        response = local_api.client.request(
            method,
            _path(path, worker_id),
            headers={**auth("admin"), "Content-Type": content_type},
            content="token=abc&x=1" if "form" in content_type else json.dumps(body),
        )
        _shape(response, status, "Content-Type")


@pytest.mark.parametrize(
    ("content", "status", "field"),
    [
        (b"\xff\xfe\x00{", 400, "body"),  # not UTF-8
        (b'{"reason": "\xc3\x28"}', 400, "body"),  # invalid UTF-8 inside a string
        (b"{not json", 400, "body"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "body"),  # past Python's recursion limit
        (
            json.dumps(
                {"tags": {"a": {"b": {"c": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}}}
            ).encode(),
            400,
            "body",
        ),
        (b'{"tags": {"a": "\\ud800"}, "reason": "\\udfff"}', 400, "body"),  # lone surrogates
        (b"[null, null]", 422, "body"),
        (b'"a string"', 422, "body"),
        (b"12", 422, "body"),
    ],
)
def test_an_unreadable_json_body_is_a_4xx_naming_body(local_api, worker_id, content, status, field):  # noqa: ANN001
    for method, path, _ in JSON_ROUTES:
        response = local_api.client.request(
            method,
            _path(path, worker_id),
            headers={**auth("admin"), "Content-Type": "application/json"},
            content=content,
        )
        _shape(response, status, field)


def test_bodies_at_api_gateways_limits_are_413(local_api, worker_id):  # noqa: ANN001
    # API Gateway passes up to 10 MB; a JSON route refuses past 256 KiB before parsing it
    huge = json.dumps({"reason": "x" * (10 * 1024 * 1024 - 100)})
    for method, path, _ in JSON_ROUTES:
        _shape(
            local_api.client.request(method, _path(path, worker_id), headers=auth("admin"), content=huge), 413, "body"
        )
    # and a lab import past 1 MiB is 413 before YAML or CML
    over = "nodes: []\nlab: {title: x}\n" + "#" * (1024 * 1024)
    response = local_api.client.post(f"/workers/{worker_id}/labs/import", headers=auth("operator"), content=over)
    _shape(response, 413, "body")


def test_hostile_yaml_is_422_naming_body(local_api, worker_id):  # noqa: ANN001
    for text in ("[" * 50_000, "a: &x [*x]\nb: *y\n", "\t- tab", "- !!python/object:os.system ls"):
        response = local_api.client.post(f"/workers/{worker_id}/labs/import", headers=auth("operator"), content=text)
        assert response.status_code in (413, 422), response.text
        _shape(response, response.status_code, "body")


@pytest.mark.parametrize(
    "worker",
    [
        "%00",
        "..%2F..%2Fetc%2Fpasswd",
        "%F0%9F%92%A5" * 50,
        "x" * 2000,
        "w-1%0Aset-cookie:%20a=b",
        "i-zzzz",
        "%C3%28",  # invalid UTF-8, percent-encoded
        "'%20OR%201=1--",
    ],
)
def test_weird_worker_ids_are_404(local_api, worker):  # noqa: ANN001
    for method, suffix in (("GET", ""), ("POST", "/stop"), ("GET", "/labs"), ("GET", "/metrics"), ("DELETE", "")):
        role = "admin"
        response = local_api.client.request(method, f"/workers/{worker}{suffix}", headers=auth(role))
        assert response.status_code in (404, 405), (method, suffix, response.text)
        _shape(response, response.status_code)


def test_lab_ids_must_be_uuids_before_cml(local_api, worker_id):  # noqa: ANN001
    for lab in ("not-a-lab", "1", "0b9d6c2e5f1a4c3b9e8d7a6f5e4d3c2", "é"):
        response = local_api.client.put(f"/workers/{worker_id}/labs/{lab}/start", headers=auth("operator"))
        _shape(response, 422, "lab_id")


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer dev-root", "Basic ZGV2LWFkbWluOg==", "Bearer " + "A" * 10_000, "Bearer dev-admin2"],
)
def test_token_garbage_is_401_in_the_error_shape(local_api, authorization):  # noqa: ANN001
    response = local_api.client.get("/workers", headers={"Authorization": authorization})
    body = _shape(response, 401, None)
    assert body["error"] == "Unauthorized"


def test_query_garbage_is_422_naming_the_parameter(local_api):  # noqa: ANN001
    client, viewer = local_api.client, auth("viewer")
    _shape(client.get("/workers?limit=abc", headers=viewer), 422, "limit")
    _shape(client.get("/workers?limit=1&limit=abc", headers=viewer), 422, "limit")
    _shape(client.get("/workers?limit=0", headers=viewer), 422, "limit")
    _shape(client.get("/workers?status=nope", headers=viewer), 422, "status")
    _shape(client.get("/workers?include_terminated=1", headers=viewer), 422, "include_terminated")
    _shape(client.get("/workers?include_terminated=yes", headers=viewer), 422, "include_terminated")
    _shape(client.get("/workers?next_token=%00%01garbage", headers=viewer), 422, "next_token")
    # a scalar given twice is ambiguous, not guessed
    _shape(
        client.get("/workers?include_terminated=true&include_terminated=true", headers=viewer),
        422,
        "include_terminated",
    )


def test_booleans_are_strict(local_api, worker_id):  # noqa: ANN001
    admin = auth("admin")
    for value in (0, 1, "true", "yes", None):
        response = local_api.client.put(f"/workers/{worker_id}/idle-detection", headers=admin, json={"enabled": value})
        _shape(response, 422, "enabled")
    response = local_api.client.post(
        f"/workers/{worker_id}/licence", headers=admin, json={"token": "abc", "reregister": 1}
    )
    _shape(response, 422, "reregister")
    _shape(
        local_api.client.delete(f"/workers/{worker_id}?terminate_instance=0", headers=admin), 422, "terminate_instance"
    )


def test_metrics_beyond_the_retention_are_422_naming_hours(local_api, worker_id):  # noqa: ANN001
    viewer = auth("viewer")
    assert local_api.client.get(f"/workers/{worker_id}/metrics?hours=24", headers=viewer).status_code == 200
    _shape(local_api.client.get(f"/workers/{worker_id}/metrics?hours=25", headers=viewer), 422, "hours")


def test_unknown_routes_are_404_and_other_methods_405_with_allow(local_api, worker_id):  # noqa: ANN001
    client, admin = local_api.client, auth("admin")
    _shape(client.get("/nope", headers=admin), 404, None)
    _shape(client.get(f"/workers/{worker_id}/nope", headers=admin), 404, None)
    for method, path, allow in [
        ("PUT", "/health", "GET"),
        ("DELETE", "/settings", "GET, PATCH, PUT"),
        ("PUT", "/workers", "GET, POST"),
        ("GET", "/workers/import", "POST"),
        ("DELETE", f"/workers/{worker_id}/labs/refresh", "POST"),
        ("OPTIONS", f"/workers/{worker_id}", "DELETE, GET"),
    ]:
        response = client.request(method, path, headers=admin)
        _shape(response, 405, None)
        assert response.headers["allow"] == allow, (method, path)
    # without a token, a protected path is the gateway's 401 (as API Gateway answers) in the same shape
    _shape(client.get("/nope"), 401, None)
