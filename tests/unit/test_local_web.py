"""The local gateway serves the dashboard before its API proxy, and one API call at a time."""

from __future__ import annotations

import threading
import time

from starlette.testclient import TestClient

from cmlcm_local.gateway import build_gateway
from cmlcm_local.web import WEB_ROOT, local_config, web_routes


def _api(event, context):  # noqa: ANN001, ANN202
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"api": true}'}


def test_index_assets_and_config_are_served_before_the_api_proxy():
    client = TestClient(build_gateway(_api, extra_routes=web_routes("127.0.0.1", 8700)))
    index = client.get("/?user=dev-viewer")
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    assert "/assets/js/main.js" in index.text
    csp = index.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self' ws://127.0.0.1:8700" in csp
    script = client.get("/assets/js/main.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    config = client.get("/config.json").json()
    assert config == local_config("127.0.0.1", 8700)
    assert config["mode"] == "local" and config["devUsers"] == ["dev-viewer", "dev-operator", "dev-admin"]
    assert config["wsUrl"] == "ws://127.0.0.1:8700/ws"
    # Everything else still reaches the API (the "authorizer" answers 401 without a token).
    assert client.get("/workers").status_code == 401
    assert client.get("/workers", headers={"Authorization": "Bearer dev-viewer"}).json() == {"api": True}


def test_assets_never_leave_the_web_folder():
    client = TestClient(build_gateway(_api, extra_routes=web_routes("127.0.0.1", 8700)))
    assert (WEB_ROOT / "index.html").exists()
    for path in ("/assets/..%2f..%2fpyproject.toml", "/assets/%2e%2e/%2e%2e/Makefile"):
        assert client.get(path).status_code == 404, path
    missing = client.get("/assets/vendor/nothing.js")
    assert missing.status_code == 404 and "make web" in missing.text


def test_api_calls_run_one_at_a_time_as_in_a_lambda_instance():
    """The Powertools resolver keeps the current request in module state: two at once mix up."""
    inside = 0
    overlapped = []
    guard = threading.Lock()

    def slow_api(event, context):  # noqa: ANN001, ANN202
        nonlocal inside
        with guard:
            inside += 1
            overlapped.append(inside > 1)
        time.sleep(0.05)
        with guard:
            inside -= 1
        return _api(event, context)

    client = TestClient(build_gateway(slow_api))
    threads = [
        threading.Thread(
            target=client.get, args=("/workers",), kwargs={"headers": {"Authorization": "Bearer dev-viewer"}}
        )
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(overlapped) == 6 and not any(overlapped)


def test_each_api_answer_says_how_long_the_function_took_and_waited():
    """`Server-Timing` (local mode only) is what the dashboard benchmark reads per request."""

    def busy_api(event, context):  # noqa: ANN001, ANN202
        deadline = time.thread_time() + 0.03
        while time.thread_time() < deadline:  # 30 ms of this thread's CPU
            pass
        return _api(event, context)

    client = TestClient(build_gateway(busy_api))
    answer = client.get("/workers", headers={"Authorization": "Bearer dev-viewer"})
    timings = {
        name: float(duration.removeprefix("dur="))
        for name, duration in (part.strip().split(";") for part in answer.headers["server-timing"].split(","))
    }
    assert set(timings) == {"queue", "handler", "cpu"}
    assert timings["cpu"] >= 29 and timings["handler"] >= timings["cpu"] - 1 and timings["queue"] >= 0
    # The authorizer's refusal never reached the function: nothing to time.
    assert "server-timing" not in client.get("/workers").headers


def test_answers_over_a_kibibyte_are_gzipped_for_clients_that_accept_it_as_on_aws():
    big = '{"items": [' + ",".join(['{"name": "cml-0001", "status": "running"}'] * 100) + "]}"

    def api(event, context):  # noqa: ANN001, ANN202
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": big}

    client = TestClient(build_gateway(api))
    viewer = {"Authorization": "Bearer dev-viewer"}
    zipped = client.get("/workers", headers={**viewer, "Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.text == big
    assert int(zipped.headers["content-length"]) < len(big) / 5
    plain = client.get("/workers", headers={**viewer, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.text == big
