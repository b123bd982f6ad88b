"""The fleet policy in local mode, over HTTP only: a worker outside its schedule is stopped within
one collection run, an idle worker is auto-paused and counted as auto, a manual resume snoozes it.
Its own local-mode process (the policy stops workers other e2e tests expect running), with one
worker idle from the start and no scheduled runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.local_mode import auth, local_mode
from tests.support.waiting import wait_for

VIEWER = auth("viewer")
OPERATOR = auth("operator")
ADMIN = auth("admin")


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    # No scheduler: the tests' own collections are the only ones, so each sees what it caused.
    args = ["--idle-workers", "1", "--no-scheduler"]
    with local_mode(tmp_path_factory.mktemp("local"), workers=3, args=args) as running:
        yield running.client


def _collect(local: httpx.Client) -> dict[str, Any]:
    """One collection run, now (after any run in progress), as the schedule would start it."""
    result = local.post("/_local/jobs/collect_metrics", timeout=120).json()
    assert result["status"] == "SUCCEEDED", result
    return result["output"]


def _worker(local: httpx.Client, worker_id: str) -> dict[str, Any]:
    response = local.get(f"/workers/{worker_id}", headers=VIEWER)
    assert response.status_code == 200
    return response.json()


def _running(local: httpx.Client) -> list[dict[str, Any]]:
    items = local.get("/workers", headers=VIEWER).json()["items"]
    return sorted((w for w in items if w["status"] == "running"), key=lambda w: w["worker_id"])


def test_an_idle_worker_is_auto_paused_and_a_manual_resume_snoozes_it(local):  # noqa: ANN001
    # Given two running workers, one whose CML nobody used for three hours (`--idle-workers 1`:
    # labs stopped, history that old, before anything read it) and one in use (a lab running)
    before = _running(local)
    assert len(before) == 2 and all(w["auto_pause_count"] == 0 for w in before)
    # When a collection runs
    output = _collect(local)
    # Then the idle policy paused that one only, counted as automatic
    assert output["paused"] == 1
    target, busy = sorted(before, key=lambda w: _worker(local, w["worker_id"])["auto_pause_count"], reverse=True)
    assert _worker(local, busy["worker_id"])["status"] == "running"
    paused = _worker(local, target["worker_id"])
    assert paused["status"] in ("stopping", "stopped")
    assert (paused["auto_pause_count"], paused["manual_pause_count"], paused["last_paused_by"]) == (1, 0, "idle policy")
    assert paused["last_pause_reason"].startswith("idle: no running nodes") and paused["policy_stopped_by"] == "idle"
    assert wait_for(lambda: _worker(local, target["worker_id"])["status"] == "stopped")
    # When an operator resumes it
    resumed = local.post(f"/workers/{target['worker_id']}/resume", headers=OPERATOR, json={"reason": "class"})
    assert resumed.status_code == 200, resumed.text
    body = resumed.json()
    # Then the resume is manual, knows the pause was automatic, and snoozes the policies
    assert (body["manual_resume_count"], body["was_auto_paused"], body["last_resume_reason"]) == (1, True, "class")
    snoozed_until = datetime.fromisoformat(body["snoozed_until"])
    assert timedelta(minutes=59) < snoozed_until - datetime.now(UTC) <= timedelta(minutes=60)
    assert wait_for(lambda: _worker(local, target["worker_id"])["status"] == "running")
    # And the next collection leaves it running, saying why
    assert _collect(local)["paused"] == 0
    assert _worker(local, target["worker_id"])["status"] == "running"
    policy = local.get(f"/workers/{target['worker_id']}/policy", headers=VIEWER).json()
    assert policy["idle"]["reason"] == "snoozed" and policy["idle"]["snoozed_until"] == body["snoozed_until"]
    # And the hours it stayed stopped count as saved by the idle policy
    assert policy["savings"]["idle_hours"] > 0 and policy["savings"]["stopped_by_policy_now"] is None
    savings = local.get("/savings", headers=VIEWER).json()
    assert savings["fleet"]["idle_hours"] > 0


def test_a_worker_outside_its_schedule_is_stopped_within_one_run(local):  # noqa: ANN001
    # Given a running worker (not the one a user just resumed: its snooze holds the schedule
    # off too) that follows a schedule whose only period is hours away
    _collect(local)
    target = next(w for w in _running(local) if not w["snoozed_until"])
    start = datetime.now(UTC) + timedelta(hours=3)
    schedule = {
        "name": "e2e-closed",
        "timezone": "UTC",
        "periods": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": start.strftime("%H:%M"),
                     "end": (start + timedelta(hours=1)).strftime("%H:%M")}],
        "worker_ids": [target["worker_id"]],
    }  # fmt: skip
    created = local.post("/schedules", headers=ADMIN, json=schedule)
    assert created.status_code == 201, created.text
    assert created.json()["state"]["desired"] == "stopped" and created.json()["followers"] == [target["worker_id"]]
    # When one collection runs
    output = _collect(local)
    # Then it stopped that worker, as the schedule, counted as an automatic pause
    assert output["schedule_stopped"] == 1
    stopped = _worker(local, target["worker_id"])
    assert stopped["status"] in ("stopping", "stopped")
    assert stopped["last_pause_reason"].startswith("schedule:e2e-closed")
    assert (stopped["last_paused_by"], stopped["auto_pause_count"], stopped["manual_pause_count"]) == (
        "schedule:e2e-closed",
        1,
        0,
    )
    # (last_change may already be the EC2 state-change event that says "stopped")
    assert stopped["policy_stopped_by"] == "schedule" and stopped["schedule_mark"]["desired"] == "stopped"
    # And a second run does not act again
    assert _collect(local)["schedule_stopped"] == 0
