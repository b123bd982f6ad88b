"""The jobs API's use cases on twins: list (last/next run, interval, overdue, paused), pause and
resume (record first, then the schedule's State), run now (lease first: never beside another run),
and how scheduled runs obey a pause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cmlcm.adapters.job_runs import InMemoryJobStarter
from cmlcm.adapters.operations import InMemoryJobRepository
from cmlcm.adapters.schedules import InMemoryJobSchedules
from cmlcm.domain.errors import Conflict, ExternalServiceError, NotFound
from cmlcm.domain.jobs import COLLECT_JOB, RECONCILE_JOB, JobHeartbeat, next_run_at
from cmlcm.domain.settings import Settings
from cmlcm.services import jobs as svc

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SETTINGS = Settings(collect_interval_minutes=5, reconcile_interval_minutes=15)


@pytest.fixture
def repo() -> InMemoryJobRepository:
    return InMemoryJobRepository()


@pytest.fixture
def schedules() -> InMemoryJobSchedules:
    return InMemoryJobSchedules({COLLECT_JOB: "s-collect", RECONCILE_JOB: "s-reconcile"}, minutes={COLLECT_JOB: 5})


def test_list_names_both_jobs_with_their_intervals_and_schedules(repo, schedules):
    statuses = svc.list_jobs(repo, schedules, SETTINGS, now=NOW)
    assert [(s.heartbeat.job, s.heartbeat.interval_seconds) for s in statuses] == [
        (COLLECT_JOB, 300),
        (RECONCILE_JOB, 900),
    ]
    collect = statuses[0]
    assert (
        collect.schedule is not None and collect.schedule.enabled and collect.schedule.expression == "rate(5 minutes)"
    )
    # Never ran: overdue, and no scheduled start to count the next one from.
    assert collect.overdue and collect.next_run_at is None and not collect.control.paused


def test_a_scheduled_run_sets_the_base_of_the_next_run_a_manual_one_does_not(repo, schedules):
    svc.begin_run(repo, COLLECT_JOB, "r1", interval_seconds=300, now=NOW)
    svc.end_run(repo, COLLECT_JOB, "r1")
    svc.begin_run(
        repo, COLLECT_JOB, "r2", interval_seconds=300, now=NOW + timedelta(minutes=2), trigger="manual", by="a@x"
    )
    status = svc.job_status(repo, schedules, SETTINGS, COLLECT_JOB, now=NOW + timedelta(minutes=3))
    assert status.heartbeat.last_trigger == "manual" and status.heartbeat.last_triggered_by == "a@x"
    assert status.next_run_at == NOW + timedelta(minutes=5)
    # Long after: the next whole interval not before now.
    later = svc.job_status(repo, schedules, SETTINGS, COLLECT_JOB, now=NOW + timedelta(minutes=12))
    assert later.next_run_at == NOW + timedelta(minutes=15)


@pytest.mark.parametrize(
    ("minutes_after", "expected"),
    [(0, 5), (4, 5), (5, 5), (6, 10), (10, 10), (11, 15)],
)
def test_next_run_is_the_first_whole_interval_not_before_now(minutes_after, expected):
    beat = JobHeartbeat(job=COLLECT_JOB, interval_seconds=300, last_scheduled_at=NOW)
    assert next_run_at(beat, paused=False, now=NOW + timedelta(minutes=minutes_after)) == NOW + timedelta(
        minutes=expected
    )
    assert next_run_at(beat, paused=True, now=NOW) is None


def test_pause_records_then_disables_the_schedule_and_resume_enables_it(repo, schedules):
    paused = svc.set_paused(repo, schedules, SETTINGS, RECONCILE_JOB, paused=True, by="admin@x", now=NOW)
    assert paused.control.paused and paused.control.changed_by == "admin@x"
    assert schedules.enabled[RECONCILE_JOB] is False and schedules.enabled[COLLECT_JOB] is True
    assert paused.next_run_at is None
    # Paused: not overdue, and /health does not degrade for it.
    assert not paused.overdue
    entry = next(j for j in svc.health_report(repo, SETTINGS, now=NOW)["jobs"] if j["job"] == RECONCILE_JOB)
    assert entry["paused"] is True and entry["overdue"] is False
    resumed = svc.set_paused(repo, schedules, SETTINGS, RECONCILE_JOB, paused=False, by="admin@x", now=NOW)
    assert not resumed.control.paused and schedules.enabled[RECONCILE_JOB] is True


def test_a_scheduled_run_of_a_paused_job_ends_at_once_a_manual_one_runs(repo, schedules):
    svc.set_paused(repo, schedules, SETTINGS, COLLECT_JOB, paused=True, by="admin@x", now=NOW)
    assert svc.begin_run(repo, COLLECT_JOB, "scheduled", interval_seconds=300, now=NOW) is None
    beat = repo.get(COLLECT_JOB)
    assert beat is not None and beat.skipped_runs == 1 and beat.last_skip_reason == "paused"
    assert svc.begin_run(repo, COLLECT_JOB, "manual", interval_seconds=300, now=NOW, trigger="manual") is not None


def test_heal_puts_the_schedule_state_back_on_the_records(repo, schedules):
    svc.set_paused(repo, schedules, SETTINGS, COLLECT_JOB, paused=True, by="a", now=NOW)
    schedules.enabled[COLLECT_JOB] = True  # a deployment put the template's State back
    assert svc.heal_schedule_states(schedules, repo) == {COLLECT_JOB: "ok", RECONCILE_JOB: "ok"}
    assert schedules.enabled == {COLLECT_JOB: False, RECONCILE_JOB: True}
    without = InMemoryJobSchedules({})
    assert svc.heal_schedule_states(without, repo) == {COLLECT_JOB: "none", RECONCILE_JOB: "none"}


def test_run_now_takes_the_lease_with_the_runs_id_before_starting(repo):
    starter = InMemoryJobStarter()
    run = svc.run_job_now(repo, starter, RECONCILE_JOB, name="manual-1", by="admin@x", now=NOW)
    assert run.run_id == "reconcile:manual-1" and starter.started == [(RECONCILE_JOB, "manual-1", "admin@x")]
    # The run itself finds its own lease and goes on; a scheduled run meanwhile is skipped.
    assert svc.begin_run(repo, RECONCILE_JOB, run.run_id, interval_seconds=900, now=NOW, trigger="manual") is not None
    assert svc.begin_run(repo, RECONCILE_JOB, "scheduled", interval_seconds=900, now=NOW) is None
    assert repo.get(RECONCILE_JOB).last_skip_reason == "lease_held"


def test_run_now_is_a_409_while_another_run_holds_the_lease_and_starts_nothing(repo):
    starter = InMemoryJobStarter()
    assert svc.begin_run(repo, COLLECT_JOB, "scheduled", interval_seconds=300, now=NOW) is not None
    with pytest.raises(Conflict) as refused:
        svc.run_job_now(repo, starter, COLLECT_JOB, name="manual-1", by="a", now=NOW + timedelta(seconds=5))
    assert refused.value.field == "job" and "scheduled" in refused.value.message
    assert starter.started == []
    # Once the run ends, it may start.
    svc.end_run(repo, COLLECT_JOB, "scheduled")
    svc.run_job_now(repo, starter, COLLECT_JOB, name="manual-2", by="a", now=NOW + timedelta(seconds=6))
    assert len(starter.started) == 1


def test_a_failed_start_gives_the_lease_back(repo):
    starter = InMemoryJobStarter(failure=ExternalServiceError("Invoke: throttled"))
    with pytest.raises(ExternalServiceError):
        svc.run_job_now(repo, starter, RECONCILE_JOB, name="manual-1", by="a", now=NOW)
    assert repo.claim_lease(RECONCILE_JOB, "next", now=NOW, until=NOW + timedelta(minutes=1)) is None


@pytest.mark.parametrize("job", ["collect", "", "../reconcile", "RECONCILE"])
def test_unknown_jobs_are_404_naming_the_field(repo, schedules, job):
    with pytest.raises(NotFound) as missing:
        svc.set_paused(repo, schedules, SETTINGS, job, paused=True, by=None, now=NOW)
    assert missing.value.field == "job"
    with pytest.raises(NotFound):
        svc.run_job_now(repo, InMemoryJobStarter(), job, name="n", by=None, now=NOW)
    assert repo.get_control(job) is None


def test_trigger_of_reads_only_an_explicit_manual():
    assert svc.trigger_of({"trigger": "manual", "by": "a@x"}) == ("manual", "a@x")
    assert svc.trigger_of({"trigger": "schedule"}) == ("schedule", None)
    assert svc.trigger_of({}) == ("schedule", None)
    assert svc.trigger_of(None) == ("schedule", None)
