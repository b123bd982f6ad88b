"""One structured log line per request: route, method, user, role, status, latency, correlation
id; never a body, a query value or a header."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from cmlcm.handlers.api import app as api_app
from cmlcm_local.seed import seed_fleet
from tests.support.api import NOW


class Lines(logging.Handler):
    """Collects what the API logger emits, formatted by its own (Powertools JSON) formatter."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(formatter)
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def log_lines() -> Iterator[list[dict]]:
    std = api_app.logger._logger
    handler = Lines(api_app.logger.registered_formatter)
    level = std.level
    std.addHandler(handler)
    std.setLevel(logging.DEBUG)
    yield handler.lines
    std.removeHandler(handler)
    std.setLevel(level)


def test_each_request_logs_one_line_saying_who_did_what(api, dynamo_ports, log_lines):  # noqa: ANN001
    worker = seed_fleet(dynamo_ports.workers, region="us-east-1", count=1, now=NOW)[0]
    # When an operator stops a worker, with a body and a query that hold values
    status, _ = api.call(
        "POST",
        f"/workers/{worker.worker_id}/stop",
        role="operator",
        body={"note": "body-value-0001"},
        query={"q": "query-value-0001"},
        headers={"X-Thing": "header-value-0001"},
    )
    assert status == 200
    # Then one line says who did it, on which route, with what result and how fast
    requests = [line for line in log_lines if line["message"] == "request"]
    assert len(requests) == 1
    line = requests[0]
    assert line["route"] == "/workers/<worker_id>/stop" and line["method"] == "POST"
    assert line["user"] == "operator@example.com" and line["role"] == "operator" and line["status"] == 200
    assert isinstance(line["latency_ms"], float) and line["latency_ms"] >= 0
    assert line["correlation_id"] and line["correlation_id"] == line["request_id"]
    # And no line holds the body, the query value, the header value or the worker id
    text = json.dumps(log_lines)
    for value in ("body-value-0001", "query-value-0001", "header-value-0001"):
        assert value not in text


def test_refused_unknown_and_unauthenticated_requests_are_logged_too(api, log_lines):  # noqa: ANN001
    api.call("POST", "/settings", role="viewer")  # 405: PATCH, PUT and GET only
    api.call("PUT", "/settings", role="viewer", body={})  # 403
    api.call("GET", "/nowhere", role=None)  # 404
    # (Powertools leaves out keys whose value is None: no role without a token)
    lines = [(line["route"], line["status"], line.get("role")) for line in log_lines if line["message"] == "request"]
    assert lines == [("-", 405, "viewer"), ("/settings", 403, "viewer"), ("-", 404, None)]
