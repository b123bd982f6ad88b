"""Contracts of the in-memory twins that had none: each test runs against the twin and against
the adapter it stands in for (under moto), so a unit test over the twin means what the adapter does.

The @connections twin (`MemoryConnections`) has no contract here: moto records posts but never
answers 410 Gone, so its contract is the local gateway's (tests/e2e/test_live_updates.py).

Twins with their own contract suites: the workers and settings repositories
(test_repository_contract.py), the schedule store (test_schedule_store.py), the job repository
(test_job_leases.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cmlcm.adapters.aws import client
from cmlcm.adapters.event_bus import EventBridgeBus, MemoryEventBus
from cmlcm.adapters.job_runs import AwsJobStarter, InMemoryJobStarter
from cmlcm.adapters.labs_repo import DynamoLabRepository, InMemoryLabRepository
from cmlcm.adapters.licence_tokens import InMemoryTokenStore, SecretsManagerTokenStore
from cmlcm.adapters.operations import DynamoRefreshLimiter, InMemoryRefreshLimiter
from cmlcm.adapters.samples import DynamoSampleRepository, InMemorySampleRepository
from cmlcm.adapters.schedules import EventBridgeSchedules, InMemoryJobSchedules
from cmlcm.adapters.subscriptions import DynamoConnectionStore, MemoryConnectionStore, create_realtime_tables
from cmlcm.config import get_config
from cmlcm.domain.bus import BusEntry
from cmlcm.domain.errors import NotFound, RateLimited
from cmlcm.domain.jobs import COLLECT_JOB, RECONCILE_JOB, MetricSample
from cmlcm.domain.labs import Lab
from cmlcm.services import realtime

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _twin_or_adapter(request: pytest.FixtureRequest, twin: Any, adapter: Any) -> Any:
    if request.param == "memory":
        return twin()
    request.getfixturevalue("aws")
    return adapter(get_config())


@pytest.fixture(params=["memory", "dynamo"])
def limiter(request: pytest.FixtureRequest) -> Any:
    return _twin_or_adapter(
        request, InMemoryRefreshLimiter, lambda c: DynamoRefreshLimiter(c.operations_table, c.aws_region)
    )


@pytest.fixture(params=["memory", "dynamo"])
def labs(request: pytest.FixtureRequest) -> Any:
    return _twin_or_adapter(request, InMemoryLabRepository, lambda c: DynamoLabRepository(c.labs_table, c.aws_region))


@pytest.fixture(params=["memory", "secretsmanager"])
def tokens(request: pytest.FixtureRequest) -> Any:
    return _twin_or_adapter(request, InMemoryTokenStore, lambda c: SecretsManagerTokenStore(c.aws_region))


def _dynamo_connections(config: Any) -> DynamoConnectionStore:
    create_realtime_tables(config.connections_table, config.subscriptions_table, config.aws_region)
    return DynamoConnectionStore(config.connections_table, config.subscriptions_table, config.aws_region)


@pytest.fixture(params=["memory", "dynamo"])
def samples(request: pytest.FixtureRequest) -> Any:
    return _twin_or_adapter(
        request,
        InMemorySampleRepository,
        lambda c: DynamoSampleRepository(c.metrics_table, c.aws_region, ttl=timedelta(hours=1)),
    )


@pytest.fixture(params=["memory", "dynamo"])
def connections(request: pytest.FixtureRequest) -> Any:
    return _twin_or_adapter(request, MemoryConnectionStore, _dynamo_connections)


# --- refresh limiter ---


def test_one_refresh_per_worker_per_interval_with_the_wait_in_whole_seconds(limiter):  # noqa: ANN001
    interval = timedelta(seconds=30)
    limiter.acquire("w-1", now=NOW, min_interval=interval)
    with pytest.raises(RateLimited) as refused:
        limiter.acquire("w-1", now=NOW + timedelta(seconds=10, milliseconds=500), min_interval=interval)
    assert refused.value.retry_after_seconds == 20
    limiter.acquire("w-2", now=NOW, min_interval=interval)  # another worker is not held back
    limiter.acquire("w-1", now=NOW + interval, min_interval=interval)  # the interval is over


# --- labs ---


def _lab(worker_id: str, lab_id: str, state: str = "STOPPED") -> Lab:
    return Lab(worker_id=worker_id, lab_id=lab_id, title=f"lab {lab_id}", state=state, synced_at=NOW)


def test_labs_are_written_listed_by_worker_and_deleted(labs):  # noqa: ANN001
    assert labs.write([_lab("w-1", "l-2"), _lab("w-1", "l-1"), _lab("w-2", "l-1")], []) == 3
    assert [lab.lab_id for lab in labs.list("w-1")] == ["l-1", "l-2"]
    assert labs.get("w-2", "l-1") == _lab("w-2", "l-1") and labs.get("w-2", "l-9") is None
    assert labs.write([_lab("w-1", "l-1", state="STARTED")], [_lab("w-1", "l-2")]) == 2
    assert [(lab.lab_id, lab.state) for lab in labs.list("w-1")] == [("l-1", "STARTED")]
    assert labs.list("w-3") == []


# --- metric samples ---


def test_samples_come_back_per_worker_oldest_first_from_since_at_whole_seconds(samples):  # noqa: ANN001
    at = [NOW + timedelta(minutes=m, milliseconds=250) for m in range(4)]
    written = [MetricSample(worker_id="w-1", at=t, cpu_percent=float(i), labs_running=i) for i, t in enumerate(at)]
    assert samples.put_many([*reversed(written), MetricSample(worker_id="w-2", at=NOW)]) == 5
    recent = samples.recent("w-1", since=at[1] - timedelta(milliseconds=250))
    assert [(s.at, s.cpu_percent, s.labs_running) for s in recent] == [
        (t.replace(microsecond=0), float(i), i) for i, t in list(enumerate(at))[1:]
    ]
    assert len(samples.recent("w-1", since=NOW, limit=2)) == 2 and samples.recent("w-3", since=NOW) == []


# --- licence token secrets ---


def test_a_token_is_kept_under_the_workers_secret_name_and_forgotten_once(tokens):  # noqa: ANN001
    name = tokens.store("w-1", "token-1")
    assert name == tokens.store("w-1", "token-2")  # stored again: the same secret, updated
    assert "token" not in name
    assert tokens.forget("w-1") is True
    assert tokens.forget("w-9") is False


# --- WebSocket connections and subscriptions ---


def test_subscriptions_are_recorded_per_topic_and_leave_with_their_connection(connections):  # noqa: ANN001
    first = realtime.connect(connections, "c-1", user="a@example.com", role="viewer", now=NOW)
    second = realtime.connect(connections, "c-2", user=None, role="admin", now=NOW)
    assert connections.get("c-1") is not None and connections.get("c-9") is None
    assert connections.subscribe(first, ["fleet", "workers/w-1"], limit=10, scope="own") == ["fleet", "workers/w-1"]
    connections.subscribe(second, ["fleet"], limit=10)
    assert sorted(connections.subscribers("fleet")) == ["c-1", "c-2"]
    assert sorted(connections.subscriptions_of("fleet")) == [("c-1", "own"), ("c-2", None)]
    refreshed = connections.get("c-1")
    assert connections.unsubscribe(refreshed, ["workers/w-1"]) == ["workers/w-1"]
    assert connections.subscribers("workers/w-1") == []
    assert connections.remove("c-1") == 1  # the topics it held
    assert connections.get("c-1") is None and connections.subscribers("fleet") == ["c-2"]


# --- job schedules (EventBridge Scheduler) ---

SCHEDULE_NAMES = {COLLECT_JOB: "cmlcm-collect-metrics", RECONCILE_JOB: "cmlcm-reconcile"}


def _deployed_schedules(config: Any) -> EventBridgeSchedules:
    scheduler = client("scheduler", config.aws_region)
    for job, name in SCHEDULE_NAMES.items():
        scheduler.create_schedule(
            Name=name,
            ScheduleExpression="rate(5 minutes)" if job == COLLECT_JOB else "rate(15 minutes)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": f"arn:aws:states:{config.aws_region}:123456789012:stateMachine:x", "RoleArn": ROLE},
        )
    return EventBridgeSchedules(config.aws_region, SCHEDULE_NAMES)


@pytest.fixture(params=["memory", "scheduler"])
def job_schedules(request: pytest.FixtureRequest) -> Any:
    return _twin_or_adapter(
        request,
        lambda: InMemoryJobSchedules(SCHEDULE_NAMES, minutes={COLLECT_JOB: 5, RECONCILE_JOB: 15}),
        _deployed_schedules,
    )


def test_a_schedule_is_paused_and_moved_keeping_the_rest(job_schedules):  # noqa: ANN001
    before = job_schedules.describe(COLLECT_JOB)
    assert (before.name, before.enabled, before.expression) == ("cmlcm-collect-metrics", True, "rate(5 minutes)")
    assert job_schedules.set_enabled(COLLECT_JOB, False) is True
    assert job_schedules.set_interval(COLLECT_JOB, 1) is True
    after = job_schedules.describe(COLLECT_JOB)
    assert (after.enabled, after.expression) == (False, "rate(1 minute)")
    assert job_schedules.describe(RECONCILE_JOB).enabled is True  # the other job's schedule is its own
    assert job_schedules.set_enabled(COLLECT_JOB, True) is True and job_schedules.describe(COLLECT_JOB).enabled


def test_a_job_without_a_schedule_here_is_none_and_false(job_schedules):  # noqa: ANN001
    assert job_schedules.describe("auto_import") is None
    assert job_schedules.set_enabled("auto_import", False) is False
    assert job_schedules.set_interval("auto_import", 5) is False


# --- starting a job's run outside its schedule ---

ROLE = "arn:aws:iam::123456789012:role/cmlcm-test"


def _aws_starter(config: Any) -> AwsJobStarter:
    machine = client("stepfunctions", config.aws_region).create_state_machine(
        name="collect",
        definition='{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}',
        roleArn=ROLE,
    )
    return AwsJobStarter(
        collect_state_machine_arn=machine["stateMachineArn"], reconcile_function="", region=config.aws_region
    )


@pytest.fixture(params=["memory", "stepfunctions"])
def starter(request: pytest.FixtureRequest) -> Any:
    return _twin_or_adapter(request, InMemoryJobStarter, _aws_starter)


def test_a_run_is_started_under_the_id_named_before_the_start(starter):  # noqa: ANN001
    named = starter.run_id(COLLECT_JOB, "manual-1")
    assert starter.start(COLLECT_JOB, "manual-1", by="admin@example.com") == named
    assert starter.run_id(COLLECT_JOB, "manual-2") != named


@pytest.mark.parametrize("job", ["collect", "", "RECONCILE"])
def test_an_unknown_job_is_a_404_naming_the_field(starter, job):  # noqa: ANN001
    for call in (lambda: starter.run_id(job, "n"), lambda: starter.start(job, "n", by=None)):
        with pytest.raises(NotFound) as missing:
            call()
        assert missing.value.field == "job"


# --- the custom event bus ---


def _bus(config: Any) -> EventBridgeBus:
    client("events", config.aws_region).create_event_bus(Name="cmlcm-contract")
    return EventBridgeBus("cmlcm-contract", config.aws_region)


@pytest.fixture(params=["memory", "events"])
def bus(request: pytest.FixtureRequest) -> Any:
    return _twin_or_adapter(request, MemoryEventBus, _bus)


def _entry(number: int) -> BusEntry:
    return BusEntry(event_id=f"e-{number}", detail_type="worker.changed", detail=f'{{"n": {number}}}', time=NOW)


def test_up_to_ten_entries_are_accepted_one_answer_each(bus):  # noqa: ANN001
    assert bus.put([_entry(n) for n in range(10)]) == [None] * 10


def test_more_than_ten_entries_are_refused_whole_as_a_validation_error(bus):  # noqa: ANN001
    answers = bus.put([_entry(n) for n in range(11)])
    assert len(answers) == 11 and {a.code for a in answers} == {"ValidationException"}
