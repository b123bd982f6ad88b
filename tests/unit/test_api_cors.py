"""CORS for the dashboard's origin: with DASHBOARD_ORIGIN set (the stack sets the CloudFront
origin), a browser preflight (OPTIONS, no token) is answered for that origin only, and answers
carry the origin; without it (local mode, same origin) no CORS header is sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "https://d111111abcdef8.cloudfront.net"

# Run in a fresh interpreter: the API module reads its environment once, at import (cold start).
SCRIPT = """
import json, sys
from cmlcm_local.events import rest_event
from cmlcm_local.events import FakeLambdaContext
from cmlcm.handlers.api import app
out = []
for method, path, origin in json.loads(sys.argv[1]):
    event = rest_event(method, path, headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    result = app.handler(event, FakeLambdaContext("api"))
    headers = {**(result.get("headers") or {}), **{k: ",".join(v) for k, v in (result.get("multiValueHeaders") or {}).items()}}
    out.append([result["statusCode"], headers.get("Access-Control-Allow-Origin"), headers.get("Access-Control-Allow-Headers", "")])
print(json.dumps(out))
"""


def _run(environment: dict[str, str], calls: list[list[str]]) -> list[list]:
    env = {
        **os.environ,
        **environment,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT / "local")]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(calls)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.spawns
def test_preflights_are_answered_for_the_dashboard_origin_only():
    (ours, theirs, document) = _run(
        {"DASHBOARD_ORIGIN": ORIGIN},
        [
            ["OPTIONS", "/workers/w-1/stop", ORIGIN],
            ["OPTIONS", "/workers/w-1/stop", "https://evil.example"],
            ["GET", "/openapi.json", ORIGIN],
        ],
    )
    assert ours[0] in (200, 204) and ours[1] == ORIGIN and "Idempotency-Key" in ours[2]
    assert theirs[1] is None
    assert document[0] == 200 and document[1] == ORIGIN


@pytest.mark.spawns
def test_no_cors_headers_without_a_dashboard_origin():
    ((status, allowed, _),) = _run({"DASHBOARD_ORIGIN": ""}, [["GET", "/openapi.json", ORIGIN]])
    assert status == 200 and allowed is None
