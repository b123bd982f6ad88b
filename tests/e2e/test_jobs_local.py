"""The jobs API end to end in local mode: the real API handler, moto's EventBridge Scheduler
holding both schedules, the real collection ASL and reconciler started by "run now", and the
scheduler loop obeying a paused schedule as EventBridge would."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cmlcm.container import current
from cmlcm.domain.jobs import COLLECT_JOB, RECONCILE_JOB
from cmlcm_local.runtime import LocalRuntime
from cmlcm_local.scheduler import LocalScheduler
from tests.support.local_mode import in_process_runtime
from tests.support.waiting import wait_for

ADMIN = {"Authorization": "Bearer dev-admin"}
OPERATOR = {"Authorization": "Bearer dev-operator"}


@pytest.fixture(scope="module")
def local() -> Iterator[LocalRuntime]:
    with in_process_runtime(workers=2, stopped_workers=0) as runtime:
        yield runtime


@pytest.fixture
def http(local: LocalRuntime) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local.base_url, timeout=60) as client:
        yield client


def _wait(predicate, timeout: float = 60.0):  # noqa: ANN001, ANN202
    value = wait_for(predicate, timeout=timeout, interval=0.3)
    assert value, "condition not met in time"
    return value


def _job(http: httpx.Client, job: str) -> dict[str, Any]:
    response = http.get(f"/jobs/{job}", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def test_jobs_are_listed_for_admins_only_with_their_schedules(http):
    assert http.get("/jobs", headers=OPERATOR).status_code == 403
    response = http.get("/jobs", headers=ADMIN)
    assert response.status_code == 200
    jobs = {j["job"]: j for j in response.json()["items"]}
    assert set(jobs) == {COLLECT_JOB, RECONCILE_JOB}
    assert jobs[COLLECT_JOB]["schedule_state"] == "ENABLED"
    assert jobs[COLLECT_JOB]["schedule_expression"] == "rate(1 minute)"
    assert jobs[RECONCILE_JOB]["interval_seconds"] == 300
    assert http.get("/jobs/nope", headers=ADMIN).json()["field"] == "job"


def test_pause_disables_the_schedule_scheduled_runs_skip_and_run_now_still_runs(local, http):
    paused = http.post(f"/jobs/{COLLECT_JOB}/pause", headers=ADMIN)
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True and paused.json()["schedule_state"] == "DISABLED"
    assert paused.json()["paused_by"] == "admin@example.com" and paused.json()["next_run_at"] is None
    assert local.schedule_enabled(COLLECT_JOB) is False
    # A scheduled run that still fires (as after a deployment re-enabled the schedule) ends at once.
    status, output = local._machines.run("collect-metrics", {"trigger": "schedule"}, timeout_s=60)
    assert status == "SUCCEEDED" and output["plan"]["skipped"] is True
    assert _job(http, COLLECT_JOB)["last_skip_reason"] == "paused"
    # ... and it put the schedule's State back on the record on its way out.
    assert local.schedule_enabled(COLLECT_JOB) is False
    # Run now: the paused job runs, marked manual, by the caller.
    started = http.post(f"/jobs/{COLLECT_JOB}/run", headers=ADMIN)
    assert started.status_code == 202, started.text
    assert ":execution:" in started.json()["run_id"]
    done = _wait(
        lambda: (j := _job(http, COLLECT_JOB))["last_trigger"] == "manual" and j["last_status"] == "succeeded" and j
    )
    assert done["last_triggered_by"] == "admin@example.com" and done["last_summary"]["workers"] == 2
    resumed = http.post(f"/jobs/{COLLECT_JOB}/resume", headers=ADMIN).json()
    assert resumed["paused"] is False and resumed["schedule_state"] == "ENABLED"
    assert local.schedule_enabled(COLLECT_JOB) is True


def test_run_now_never_overlaps_a_run_that_holds_the_lease(http):
    jobs = current().jobs
    now = datetime.now(UTC)
    assert jobs.claim_lease(RECONCILE_JOB, "a-scheduled-run", now=now, until=now + timedelta(minutes=5)) is None
    refused = http.post(f"/jobs/{RECONCILE_JOB}/run", headers=ADMIN)
    assert refused.status_code == 409 and refused.json()["field"] == "job"
    assert "a-scheduled-run" in refused.json()["message"]
    jobs.release_lease(RECONCILE_JOB, "a-scheduled-run")
    started = http.post(f"/jobs/{RECONCILE_JOB}/run", headers=ADMIN)
    assert started.status_code == 202, started.text
    done = _wait(lambda: (j := _job(http, RECONCILE_JOB))["last_status"] == "succeeded" and j)
    assert done["last_trigger"] == "manual" and done["last_triggered_by"] == "admin@example.com"


def test_the_scheduler_loop_fires_only_enabled_schedules(local, http):
    fired: list[str] = []
    loop = LocalScheduler(
        current().settings,
        {COLLECT_JOB: lambda: fired.append(COLLECT_JOB), RECONCILE_JOB: lambda: fired.append(RECONCILE_JOB)},
        tick_seconds=0.05,
        enabled=local.schedule_enabled,
    )
    assert http.post(f"/jobs/{RECONCILE_JOB}/pause", headers=ADMIN).status_code == 200
    loop.start()
    try:
        _wait(lambda: loop.runs[COLLECT_JOB] >= 1 and loop.paused_ticks[RECONCILE_JOB] >= 1, timeout=10)
    finally:
        loop.stop()
        http.post(f"/jobs/{RECONCILE_JOB}/resume", headers=ADMIN)
    assert fired == [COLLECT_JOB] and loop.runs[RECONCILE_JOB] == 0
