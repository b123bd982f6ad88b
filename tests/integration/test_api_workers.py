"""REST API over moto: what a new user does with curl, through the real handler."""

from __future__ import annotations

import threading

import pytest

from cmlcm.adapters.aws import client
from cmlcm_local.seed import seed_fleet
from tests.support.api import NOW


@pytest.fixture
def fleet(api, dynamo_ports):
    return seed_fleet(dynamo_ports.workers, region="us-east-1", count=3, now=NOW, stopped=1)


def _ec2_state(instance_id: str) -> str:
    reservations = client("ec2", "us-east-1").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def test_list_workers_returns_the_fleet(api, fleet):
    status, body = api.call("GET", "/workers", role="viewer")
    assert status == 200
    assert sorted(w["worker_id"] for w in body["items"]) == sorted(w.worker_id for w in fleet)
    assert body["next_token"] is None


def test_list_filters_by_status_and_paginates(api, fleet):
    status, body = api.call("GET", "/workers", role="viewer", query={"status": "stopped"})
    assert status == 200 and [w["status"] for w in body["items"]] == ["stopped"]

    seen, token = [], None
    while True:
        query = {"limit": "1", **({"next_token": token} if token else {})}
        status, page = api.call("GET", "/workers", role="viewer", query=query)
        assert status == 200
        seen += [w["worker_id"] for w in page["items"]]
        token = page["next_token"]
        if not token:
            break
    assert sorted(seen) == sorted(w.worker_id for w in fleet)


def test_get_by_id_or_instance_id(api, fleet):
    worker = fleet[0]
    assert api.call("GET", f"/workers/{worker.worker_id}", role="viewer")[1]["name"] == worker.name
    assert api.call("GET", f"/workers/{worker.instance_id}", role="viewer")[1]["worker_id"] == worker.worker_id


def test_stop_then_start_changes_ec2_and_record(api, fleet):
    worker = fleet[0]
    status, body = api.call("POST", f"/workers/{worker.worker_id}/stop", role="operator")
    assert status == 200 and body["status"] == "stopping"
    assert _ec2_state(worker.instance_id) in ("stopping", "stopped")

    stopped = fleet[-1]
    status, body = api.call("POST", f"/workers/{stopped.worker_id}/start", role="operator")
    assert status == 200 and body["status"] == "starting"
    assert _ec2_state(stopped.instance_id) in ("pending", "running")


def test_viewer_cannot_stop_and_nothing_changes(api, fleet, dynamo_ports):
    worker = fleet[0]
    status, body = api.call("POST", f"/workers/{worker.worker_id}/stop", role="viewer")
    assert status == 403 and body["error"] == "Forbidden"
    assert dynamo_ports.workers.get(worker.worker_id) == worker
    assert _ec2_state(worker.instance_id) == "running"


def test_no_claims_is_forbidden(api, fleet):
    assert api.call("GET", "/workers", role=None)[0] == 403


def test_unknown_worker_is_404(api, fleet):
    status, body = api.call("GET", "/workers/w-nope", role="viewer")
    assert status == 404 and body["field"] == "worker_id"
    assert api.call("POST", "/workers/i-0123456789abcdef0/stop", role="operator")[0] == 404


def test_stopping_a_stopped_worker_is_409_and_changes_nothing(api, fleet, dynamo_ports):
    stopped = fleet[-1]
    before = dynamo_ports.workers.get(stopped.worker_id)
    status, body = api.call("POST", f"/workers/{stopped.worker_id}/stop", role="operator")
    assert status == 409 and body["error"] == "IllegalTransition"
    assert "stopped" in body["message"]
    assert dynamo_ports.workers.get(stopped.worker_id) == before


def test_bad_body_is_422_naming_the_field(api, fleet, dynamo_ports):
    worker = fleet[0]
    before = dynamo_ports.workers.get(worker.worker_id)
    status, body = api.call("PUT", f"/workers/{worker.worker_id}/tags", body={"tags": {"a": "b"}, "mode": "upsert"})
    assert status == 422 and body["field"] == "mode"
    status, body = api.call("PUT", f"/workers/{worker.worker_id}/idle-detection", body={"enabled": "maybe"})
    assert status == 422 and body["field"] == "enabled"
    status, body = api.call("PUT", f"/workers/{worker.worker_id}/idle-detection", body="{not json")
    assert status == 400 and body["field"] == "body"
    assert dynamo_ports.workers.get(worker.worker_id) == before


def test_bad_query_is_422_naming_the_field(api, fleet):
    status, body = api.call("GET", "/workers", role="viewer", query={"status": "sleeping"})
    assert status == 422 and body["field"] == "status"
    status, body = api.call("GET", "/workers", role="viewer", query={"next_token": "garbage!"})
    assert status == 422 and body["field"] == "next_token"
    status, body = api.call("GET", "/workers", role="viewer", query={"region": "mars-1"})
    assert status == 422 and body["field"] == "region"


def test_tags_merge_and_replace_reach_ec2(api, fleet):
    worker = fleet[0]
    status, body = api.call("PUT", f"/workers/{worker.worker_id}/tags", body={"tags": {"Course": "ccna", "Name": None}})
    assert status == 200
    assert body["tags"]["Course"] == "ccna" and "Name" not in body["tags"] and body["tags"]["ManagedBy"]
    status, body = api.call("PUT", f"/workers/{worker.worker_id}/tags", body={"tags": {"Team": "a"}, "mode": "replace"})
    assert set(body["tags"]) == {"Team", "ManagedBy", "WorkerId"}
    ec2_tags = client("ec2", "us-east-1").describe_tags(
        Filters=[{"Name": "resource-id", "Values": [worker.instance_id]}]
    )["Tags"]
    assert {t["Key"] for t in ec2_tags} == {"Team", "ManagedBy", "WorkerId"}
    status, body = api.call("PUT", f"/workers/{worker.worker_id}/tags", body={"tags": {"ManagedBy": "me"}})
    assert status == 422 and body["field"] == "tags.ManagedBy"


def test_delete_with_and_without_terminating(api, fleet, dynamo_ports):
    gone, released = fleet[0], fleet[1]
    assert api.call("DELETE", f"/workers/{gone.worker_id}")[0] == 200
    assert _ec2_state(gone.instance_id) in ("shutting-down", "terminated")
    assert api.call("DELETE", f"/workers/{released.worker_id}", query={"terminate_instance": "false"})[0] == 200
    assert _ec2_state(released.instance_id) == "running"
    tags = client("ec2", "us-east-1").describe_tags(
        Filters=[{"Name": "resource-id", "Values": [released.instance_id]}]
    )["Tags"]
    assert "ManagedBy" not in {t["Key"] for t in tags}
    assert api.call("GET", f"/workers/{gone.worker_id}", role="viewer")[0] == 404
    assert api.call("DELETE", f"/workers/{gone.worker_id}")[0] == 404


def test_terminate_then_listing_hides_it_unless_asked(api, fleet):
    worker = fleet[0]
    status, body = api.call("POST", f"/workers/{worker.worker_id}/terminate")
    assert status == 200 and body["status"] == "terminating"
    assert api.call("POST", f"/workers/{worker.worker_id}/terminate")[0] == 409


def test_pause_and_resume_are_counted_with_reason(api, fleet):
    worker = fleet[0]
    status, body = api.call("POST", f"/workers/{worker.worker_id}/pause", role="operator", body={"reason": "lunch"})
    assert status == 200 and body["pause_count"] == 1 and body["last_pause_reason"] == "lunch"
    assert api.call("POST", f"/workers/{worker.worker_id}/resume", role="operator")[0] == 409  # still stopping
    running = fleet[1]
    assert api.call("POST", f"/workers/{running.worker_id}/resume", role="operator")[0] == 409  # never paused


def test_idle_toggle_and_monitoring(api, fleet):
    worker = fleet[0]
    status, body = api.call("PUT", f"/workers/{worker.worker_id}/idle-detection", body={"enabled": False})
    assert status == 200 and body["idle_detection_enabled"] is False
    status, body = api.call("POST", f"/workers/{worker.worker_id}/monitoring")
    assert status == 200 and body["detailed_monitoring"] is True


def test_create_and_import_validate_their_bodies(api):
    status, body = api.call("POST", "/workers", body={"name": "bad name!", "region": "us-east-1"})
    assert status == 422 and body["field"] == "name"
    status, body = api.call("POST", "/workers/import", body={"region": "us-east-1"})
    assert status == 422
    status, body = api.call("POST", "/workers", body={"name": "ok", "region": "us-east-1", "instance_type": "big"})
    assert status == 422 and body["field"] == "instance_type"
    status, body = api.call("POST", "/workers", body={"name": "ok", "region": "us-east-1", "tags": {"aws:x": "y"}})
    assert status == 422 and body["field"] == "tags"


def test_settings_roundtrip_and_validation(api):
    status, settings = api.call("GET", "/settings", role="viewer")
    assert status == 200 and settings["idle_timeout_minutes"] == 60
    settings["idle_timeout_minutes"] = 90
    settings["region_defaults"] = {"us-east-1": {"instance_type": "m5zn.metal", "ami_id": "ami-0123456789abcdef0"}}
    status, saved = api.call("PUT", "/settings", body=settings)
    assert status == 200 and saved["version"] == settings["version"] + 1
    status, body = api.call("PUT", "/settings", body=settings)  # stale version
    assert status == 409
    status, body = api.call("PUT", "/settings", body={**saved, "idle_timeout_minutes": 1})
    assert status == 422 and body["field"] == "idle_timeout_minutes"
    status, body = api.call(
        "PUT", "/settings", body={**saved, "region_defaults": {"us-east-1": {"instance_type": "huge"}}}
    )
    assert status == 422 and body["field"].startswith("region_defaults")
    assert api.call("PUT", "/settings", role="operator", body=saved)[0] == 403
    assert api.call("GET", "/settings", role="viewer")[1]["idle_timeout_minutes"] == 90


def test_two_concurrent_updates_both_land(api, fleet, dynamo_ports):
    """Optimistic locking: concurrent tag edits on one worker retry and neither is lost."""
    worker = fleet[0]
    barrier = threading.Barrier(8)
    results = []

    def edit(i: int) -> None:
        barrier.wait()
        results.append(api.call("PUT", f"/workers/{worker.worker_id}/tags", body={"tags": {f"k{i}": str(i)}}))

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = [s for s, _ in results]
    assert all(s in (200, 409) for s in statuses)
    stored = dynamo_ports.workers.get(worker.worker_id)
    landed = {k for k in stored.tags if k.startswith("k")}
    assert landed == {f"k{i}" for i, (s, _) in enumerate(results) if s == 200} or len(landed) == statuses.count(200)
    assert statuses.count(200) >= 2
    assert stored.version == worker.version + statuses.count(200)


def test_health_and_openapi_are_public(api):
    assert api.call("GET", "/health", role=None)[0] == 200
    status, doc = api.call("GET", "/openapi.json", role=None)
    assert status == 200 and doc["openapi"].startswith("3.1") and "/workers/{worker_id}/stop" in doc["paths"]
