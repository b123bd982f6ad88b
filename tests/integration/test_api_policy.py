"""The fleet policy through the real API handler over moto (DynamoDB schedule store, workers
table): schedules CRUD with roles and version guards, a worker's policy status, savings, the new
settings fields, and a worker item of the single-counter era read without losing its counts.
Every answer is checked against the OpenAPI document (the `api` fixture)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cmlcm.adapters.aws import client
from cmlcm.config import get_config
from cmlcm_local.seed import seed_fleet
from tests.support.api import NOW  # sunday 2026-11-22 12:00 UTC (13:00 in Paris)

OFFICE = {
    "name": "office",
    "timezone": "Europe/Paris",
    "periods": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}],
    "holidays": ["2026-12-25"],
    "tags": {"team": "emea"},
}


@pytest.fixture
def fleet(api, dynamo_ports):
    return seed_fleet(dynamo_ports.workers, region="us-east-1", count=2, now=NOW - timedelta(hours=3), stopped=0)


def test_schedule_lifecycle_admin_writes_everyone_reads(api, fleet):
    status, created = api.call("POST", "/schedules", body=OFFICE)
    assert status == 201 and created["version"] == 1
    # on a sunday it wants the workers stopped, until monday 08:00 Paris (07:00 UTC)
    assert created["state"]["desired"] == "stopped"
    assert created["state"]["next_change_at"].startswith("2026-11-23T07:00:00")
    assert api.call("POST", "/schedules", body=OFFICE, role="operator")[0] == 403
    assert api.call("POST", "/schedules", body=OFFICE)[0] == 409
    status, listed = api.call("GET", "/schedules", role="viewer")
    assert status == 200 and [s["name"] for s in listed["items"]] == ["office"]
    # replace: version-guarded
    changed = {k: v for k, v in OFFICE.items() if k != "name"} | {"mode": "stop_only", "version": 1}
    status, saved = api.call("PUT", "/schedules/office", body=changed)
    assert status == 200 and (saved["version"], saved["mode"]) == (2, "stop_only")
    status, stale = api.call("PUT", "/schedules/office", body=changed)
    assert status == 409 and stale["field"] == "version"
    # keep running until 20:00 today (Paris)
    status, overridden = api.call("POST", "/schedules/office/overrides", body={"state": "running", "until": "20:00"})
    assert status == 200 and overridden["state"]["desired"] == "running"
    assert overridden["overrides"][0]["until"].startswith("2026-11-22T19:00:00")
    status, passed = api.call("POST", "/schedules/office/overrides", body={"state": "running", "until": "09:00"})
    assert status == 422 and passed["field"] == "until"
    # delete
    assert api.call("DELETE", "/schedules/office")[0] == 204
    assert api.call("GET", "/schedules/office", role="viewer")[0] == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**OFFICE, "timezone": "Europe/Atlantis"}, "timezone"),
        ({**OFFICE, "name": "Office Hours"}, "name"),
        ({**OFFICE, "periods": [{"days": ["mon"], "start": "18:00", "end": "18:00"}]}, "periods.0"),
        ({**OFFICE, "periods": [{"days": ["mon"], "start": "25:00", "end": "18:00"}]}, "periods.0.start"),
        ({**OFFICE, "enforced": "yes"}, "enforced"),
        ({**OFFICE, "worker_ids": ["../etc"]}, "worker_ids.0"),
    ],
)
def test_a_bad_schedule_is_a_422_naming_the_field(api, body, field):
    status, answer = api.call("POST", "/schedules", body=body)
    assert status == 422 and answer["field"] == field, answer


def test_unknown_or_impossible_schedule_names_are_404(api):
    assert api.call("GET", "/schedules/nope", role="viewer")[0] == 404
    assert api.call("GET", "/schedules/Not_A_Name", role="viewer")[0] == 404
    assert api.call("POST", "/schedules/nope/overrides", body={"state": "running", "until": "20:00"})[0] == 404


def test_worker_policy_explains_idle_and_schedule(api, fleet):
    worker = fleet[0]
    api.call("PUT", f"/workers/{worker.worker_id}/tags", body={"tags": {"team": "emea"}})
    api.call("POST", "/schedules", body=OFFICE)
    status, policy = api.call("GET", f"/workers/{worker.worker_id}/policy", role="viewer")
    assert status == 200
    # seeded workers have no CML reading yet
    assert (policy["idle"]["reason"], policy["idle"]["eligible"]) == ("waiting_for_cml", False)
    assert (policy["schedule"]["name"], policy["schedule"]["desired"], policy["schedule"]["action"]) == (
        "office",
        "stopped",
        "stop",
    )
    assert policy["next_stop_by"] == "schedule:office"
    assert policy["savings"]["hours"] == 0 and policy["savings"]["usd_per_hour"] == 4.08
    assert api.call("GET", "/workers/w-nope/policy", role="viewer")[0] == 404


def test_savings_and_manual_counters_through_the_api(api, fleet):
    worker = fleet[0]
    status, paused = api.call("POST", f"/workers/{worker.worker_id}/pause", role="operator", body={"reason": "lunch"})
    assert status == 200
    assert (paused["manual_pause_count"], paused["auto_pause_count"], paused["last_paused_by"]) == (
        1,
        0,
        "operator@example.com",
    )
    status, savings = api.call("GET", "/savings", role="viewer")
    assert status == 200 and savings["fleet"]["workers"] == 2 and savings["fleet"]["hours"] == 0  # a user's pause


def test_settings_patch_edits_the_price_table_and_the_snooze(api):
    status, current = api.call("GET", "/settings", role="viewer")
    assert status == 200 and current["on_demand_prices"]["m5zn.metal"] == {"*": 3.9641}
    assert current["snooze_after_resume_minutes"] == 60
    patch = {
        "version": current["version"],
        "snooze_after_resume_minutes": 30,
        "on_demand_prices": {"c5.metal": None, "m5zn.metal": {"eu-west-1": 4.4}},
    }
    status, saved = api.call("PATCH", "/settings", body=patch)
    assert status == 200 and saved["snooze_after_resume_minutes"] == 30
    assert "c5.metal" not in saved["on_demand_prices"]
    assert saved["on_demand_prices"]["m5zn.metal"] == {"*": 3.9641, "eu-west-1": 4.4}
    status, bad = api.call(
        "PATCH", "/settings", body={"version": saved["version"], "on_demand_prices": {"huge": {"*": 1}}}
    )
    assert status == 422 and bad["field"].startswith("on_demand_prices")
    status, bad = api.call(
        "PATCH", "/settings", body={"version": saved["version"], "on_demand_prices": {"c5.metal": {"*": -1}}}
    )
    assert status == 422


def test_a_worker_stored_before_auto_and_manual_were_told_apart_keeps_its_counts(api, fleet):
    # Given a worker item as the single-counter era wrote it: pause_count 5, resume_count 4, nothing else
    worker = fleet[0]
    table = client("dynamodb", "us-east-1")
    name = get_config().workers_table
    item = table.get_item(TableName=name, Key={"worker_id": {"S": worker.worker_id}})["Item"]
    for added in ("auto_pause_count", "manual_pause_count", "auto_resume_count", "manual_resume_count",
                  "idle_stopped_hours", "schedule_stopped_hours", "last_paused_by", "was_auto_paused"):  # fmt: skip
        item.pop(added, None)
    item["pause_count"] = {"N": "5"}
    item["resume_count"] = {"N": "4"}
    table.put_item(TableName=name, Item=item)
    # When it is read, then the totals are kept and nothing is attributed by guess
    status, body = api.call("GET", f"/workers/{worker.worker_id}", role="viewer")
    assert status == 200
    assert (body["pause_count"], body["resume_count"], body["auto_pause_count"], body["manual_pause_count"]) == (
        5,
        4,
        0,
        0,
    )
    # And the next pause counts on top of them
    status, paused = api.call("POST", f"/workers/{worker.worker_id}/pause", role="operator")
    assert (paused["pause_count"], paused["manual_pause_count"]) == (6, 1)
