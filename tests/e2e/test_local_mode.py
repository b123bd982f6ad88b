"""The local mode as a new user meets it: `python -m cmlcm_local` in its own process, driven over
HTTP only (curl's view). Slowest tests here; they prove the README's first command works."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.local_mode import auth, local_mode
from tests.support.waiting import wait_for

VIEWER = auth("viewer")
OPERATOR = auth("operator")
ADMIN = auth("admin")


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with local_mode(tmp_path_factory.mktemp("local"), workers=4) as running:
        yield running.client


def _workers(local: httpx.Client) -> list[dict]:
    response = local.get("/workers", headers=VIEWER)
    assert response.status_code == 200
    return response.json()["items"]


def test_curl_lists_the_seeded_fleet_and_auth_is_enforced(local):  # noqa: ANN001
    workers = _workers(local)
    assert len(workers) == 4 and {w["status"] for w in workers} == {"running", "stopped"}
    assert local.get("/workers").status_code == 401  # no token: the "authorizer" refuses
    assert local.get("/openapi.json").json()["openapi"].startswith("3.1")


def test_stop_and_start_with_the_right_errors(local):  # noqa: ANN001
    running = next(w for w in _workers(local) if w["status"] == "running")
    stopped = next(w for w in _workers(local) if w["status"] == "stopped")
    assert local.post(f"/workers/{running['worker_id']}/stop", headers=VIEWER).status_code == 403
    assert local.post("/workers/w-unknown/stop", headers=OPERATOR).status_code == 404
    conflict = local.post(f"/workers/{stopped['worker_id']}/stop", headers=OPERATOR)
    assert conflict.status_code == 409 and conflict.json()["error"] == "IllegalTransition"
    bad = local.put(f"/workers/{running['worker_id']}/tags", headers=ADMIN, json={"tags": {"a": "b"}, "mode": "upsert"})
    assert bad.status_code == 422 and bad.json()["field"] == "mode"
    assert local.post(f"/workers/{running['worker_id']}/stop", headers=OPERATOR).json()["status"] == "stopping"
    assert local.post(f"/workers/{stopped['worker_id']}/start", headers=OPERATOR).json()["status"] == "starting"


def test_scheduled_collection_fills_metrics_and_health(local):  # noqa: ANN001
    result = local.post("/_local/jobs/collect_metrics").json()
    assert result["status"] == "SUCCEEDED" and result["output"]["workers"] == 4
    collected = [w for w in _workers(local) if w["metrics"] and w["metrics"]["cml_version"] == "2.9.0"]
    assert collected and all(w["service_status"] == "available" for w in collected)
    # The scheduler loop may start its own run right after ours: its status is "running" until it ends.
    deadline = time.monotonic() + 90
    while True:
        health = local.get("/health").json()
        status = next(j for j in health["jobs"] if j["job"] == "collect_metrics")["last_status"]
        if status != "running" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert status == "succeeded"
    worker = collected[0]
    series = local.get(f"/workers/{worker['worker_id']}/metrics", headers=VIEWER).json()
    assert series["samples"] and series["samples"][-1]["cpu_percent"] is not None
    first = local.post(f"/workers/{worker['worker_id']}/refresh", headers=OPERATOR)
    assert first.status_code == 200
    again = local.post(f"/workers/{worker['worker_id']}/refresh", headers=OPERATOR)
    assert again.status_code == 429 and int(again.headers["Retry-After"]) >= 1


def test_create_a_worker_and_watch_it_reach_running(local):  # noqa: ANN001
    created = local.post(
        "/workers",
        headers={**ADMIN, "Idempotency-Key": "e2e-create-0001"},
        json={"name": "e2e-lab", "region": "us-east-1"},
    )
    assert created.status_code == 202, created.text
    worker_id = created.json()["worker"]["worker_id"]
    replay = local.post(
        "/workers",
        headers={**ADMIN, "Idempotency-Key": "e2e-create-0001"},
        json={"name": "e2e-lab", "region": "us-east-1"},
    )
    assert replay.status_code == 200 and replay.json()["worker"]["worker_id"] == worker_id

    def running() -> bool:
        return local.get(f"/workers/{worker_id}", headers=VIEWER).json()["status"] == "running"

    assert wait_for(running, timeout=90), local.get(f"/workers/{worker_id}", headers=VIEWER).json()


def test_import_all_instances_of_an_ami_name(local):  # noqa: ANN001
    by_hand = local.post("/_local/instances", json={"count": 2, "name": "console-lab"}).json()["instance_ids"]
    response = local.post("/workers/import", headers=ADMIN, json={"region": "us-east-1", "ami_name_pattern": "cml2-*"})
    assert response.status_code == 200
    body = response.json()
    assert sorted(w["instance_id"] for w in body["imported"]) == sorted(by_hand)
    assert {w["name"] for w in body["imported"]} == {"console-lab", f"console-lab-{sorted(by_hand)[1]}"}
    # The fleet the product already manages is reported as skipped, each with its reason.
    assert body["skipped"] and all("already managed" in s["reason"] for s in body["skipped"])
    again = local.post(
        "/workers/import", headers=ADMIN, json={"region": "us-east-1", "ami_name_pattern": "cml2-*"}
    ).json()
    assert again["imported"] == []


def test_a_record_lost_behind_the_reconcilers_back_is_found(local):  # noqa: ANN001
    victim = _workers(local)[0]
    assert local.delete(f"/_local/records/{victim['worker_id']}").status_code == 204
    result = local.post("/_local/jobs/reconcile").json()
    findings = [f for f in result["findings"] if f["instance_id"] == victim["instance_id"]]
    assert findings and findings[0]["kind"] == "unrecorded_instance" and findings[0]["action"] == "marked"
    reconcile = next(j for j in local.get("/health").json()["jobs"] if j["job"] == "reconcile")
    assert reconcile["last_summary"]["unrecorded_instance"] >= 1


def test_labs_and_licence_as_a_new_user(local):  # noqa: ANN001
    # A worker whose CML answers (workers imported a moment ago may still be booting CML: 503)
    assert local.post("/_local/jobs/collect_metrics").json()["status"] == "SUCCEEDED"
    worker_id = next(w for w in _workers(local) if w["status"] == "running" and w["service_status"] == "available")[
        "worker_id"
    ]
    # List a worker's labs (synced from its controller), start one and watch it converge
    refreshed = local.post(f"/workers/{worker_id}/labs/refresh", headers=OPERATOR)
    assert refreshed.status_code == 200, (refreshed.text, local.get(f"/workers/{worker_id}", headers=VIEWER).text)
    labs = refreshed.json()["items"]
    assert len(labs) == 2 and local.get(f"/workers/{worker_id}/labs", headers=VIEWER).json()["items"] == labs
    stopped = next(lab for lab in labs if lab["state"] != "STARTED")
    started = local.put(f"/workers/{worker_id}/labs/{stopped['lab_id']}/start", headers=OPERATOR)
    assert started.status_code == 200, started.text

    def lab_started() -> bool:
        items = local.post(f"/workers/{worker_id}/labs/refresh", headers=OPERATOR).json()["items"]
        return next(lab for lab in items if lab["lab_id"] == stopped["lab_id"])["state"] == "STARTED"

    assert wait_for(lab_started, timeout=30)
    # Download it as YAML, import that YAML back as a new lab
    download = local.get(f"/workers/{worker_id}/labs/{stopped['lab_id']}/download", headers=VIEWER)
    assert download.status_code == 200 and download.headers["content-type"].startswith("application/x-yaml")
    assert "nodes:" in download.text
    imported = local.post(
        f"/workers/{worker_id}/labs/import",
        params={"title": "e2e copy"},
        headers={**OPERATOR, "Content-Type": "application/x-yaml"},
        content=download.text,
    )
    assert imported.status_code in (200, 201), imported.text
    assert imported.json()["title"] == "e2e copy"
    assert len(local.get(f"/workers/{worker_id}/labs", headers=VIEWER).json()["items"]) == 3
    # A bad YAML gets 422 naming the body; a lab on an unknown worker 404; a viewer cannot start labs
    bad = local.post(f"/workers/{worker_id}/labs/import", headers=OPERATOR, content="nodes: [unclosed")
    assert bad.status_code == 422 and bad.json()["field"] == "body"
    assert local.get("/workers/w-unknown/labs", headers=VIEWER).status_code == 404
    assert local.put(f"/workers/{worker_id}/labs/{stopped['lab_id']}/stop", headers=VIEWER).status_code == 403
    # Register a licence and watch it complete; the token never comes back
    token = "e2e-smart-licence-token-0123456789"
    registered = local.post(f"/workers/{worker_id}/licence", headers=ADMIN, json={"token": token})
    assert registered.status_code == 202, registered.text
    assert registered.json()["licence"]["operation_state"] == "pending" and token not in registered.text

    def completed() -> dict | None:
        licence = local.get(f"/workers/{worker_id}/licence", headers=VIEWER)
        assert token not in licence.text
        body = licence.json()
        return body if body["operation_state"] == "completed" else None

    licence = wait_for(completed, timeout=30)
    assert licence and licence["registration_status"] == "COMPLETED", licence
