"""The schedules' rates follow the settings: `PUT /settings` moves them, and every collection run
puts them back after a deployment reset them to the template's (EventBridge Scheduler on moto)."""

from __future__ import annotations

from typing import Any

import pytest

from cmlcm import container
from cmlcm.adapters.aws import client
from cmlcm.adapters.operations import DynamoSettingsRepository
from cmlcm.adapters.schedules import EventBridgeSchedules
from cmlcm.config import get_config
from cmlcm.domain.settings import Settings
from cmlcm.services.jobs import COLLECT_JOB, RECONCILE_JOB
from cmlcm.services.settings import heal_schedule_rates
from cmlcm_local.events import FakeLambdaContext

REGION = "us-east-1"
NAMES = {COLLECT_JOB: "cmlcm-collect-metrics", RECONCILE_JOB: "cmlcm-reconcile"}
TARGET = {
    "Arn": "arn:aws:states:us-east-1:123456789012:stateMachine:collect",
    "RoleArn": "arn:aws:iam::123456789012:role/collect-schedule",
    "Input": '{"trigger": "schedule"}',
    "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 300},
}


def deploy(rates: dict[str, str]) -> Any:
    """The schedules as a deployment leaves them: the template's rates."""
    scheduler = client("scheduler", REGION)
    for job, name in NAMES.items():
        try:
            scheduler.delete_schedule(Name=name, GroupName="default")
        except scheduler.exceptions.ResourceNotFoundException:
            pass
        scheduler.create_schedule(
            Name=name,
            GroupName="default",
            ScheduleExpression=rates[job],
            FlexibleTimeWindow={"Mode": "OFF"},
            Target=TARGET,
            Description=f"{job} job",
        )
    return scheduler


def rate_of(job: str) -> str:
    return client("scheduler", REGION).get_schedule(Name=NAMES[job], GroupName="default")["ScheduleExpression"]


@pytest.fixture
def scheduled(aws: None) -> Any:  # noqa: ARG001
    return deploy({COLLECT_JOB: "rate(5 minutes)", RECONCILE_JOB: "rate(15 minutes)"})


def test_a_rate_moves_and_the_rest_of_the_schedule_stays(scheduled):  # noqa: ANN001
    schedules = EventBridgeSchedules(REGION, NAMES)
    assert schedules.set_interval(COLLECT_JOB, 1) is True
    moved = scheduled.get_schedule(Name=NAMES[COLLECT_JOB], GroupName="default")
    assert moved["ScheduleExpression"] == "rate(1 minute)"
    assert (moved["Target"]["Arn"], moved["Target"]["Input"], moved["Description"]) == (
        TARGET["Arn"],
        TARGET["Input"],
        f"{COLLECT_JOB} job",
    )
    # A job this deployment has no schedule for is skipped
    assert (
        EventBridgeSchedules(REGION, {COLLECT_JOB: NAMES[COLLECT_JOB], RECONCILE_JOB: ""}).set_interval(
            RECONCILE_JOB, 30
        )
        is False
    )


def test_healing_puts_both_rates_back_on_the_settings(scheduled):  # noqa: ANN001
    # Given settings of 10 and 60 minutes, and a deployment that put the template's rates back
    settings = Settings(collect_interval_minutes=10, reconcile_interval_minutes=60)
    # When a collection run heals them
    outcome = heal_schedule_rates(EventBridgeSchedules(REGION, NAMES), settings)
    # Then both follow the settings again
    assert outcome == {COLLECT_JOB: "ok", RECONCILE_JOB: "ok"}
    assert (rate_of(COLLECT_JOB), rate_of(RECONCILE_JOB)) == ("rate(10 minutes)", "rate(60 minutes)")


def test_healing_reports_a_fault_per_schedule_and_never_raises(scheduled):  # noqa: ANN001
    # Given the reconciler's schedule gone (deleted by hand, say)
    scheduled.delete_schedule(Name=NAMES[RECONCILE_JOB], GroupName="default")
    outcome = heal_schedule_rates(EventBridgeSchedules(REGION, NAMES), Settings(collect_interval_minutes=10))
    # Then the collection schedule still moved, and the other fault is reported, not raised
    assert outcome[COLLECT_JOB] == "ok" and outcome[RECONCILE_JOB] not in ("ok", "none")
    assert rate_of(COLLECT_JOB) == "rate(10 minutes)"


def test_a_collection_run_restores_the_rates_a_deployment_reset(scheduled, monkeypatch):  # noqa: ANN001
    # Given this deployment's schedule names, and settings saved with other intervals
    monkeypatch.setenv("COLLECT_SCHEDULE_NAME", NAMES[COLLECT_JOB])
    monkeypatch.setenv("RECONCILE_SCHEDULE_NAME", NAMES[RECONCILE_JOB])
    container.use(None)  # and the config: the schedule names come from the environment
    settings = get_config()
    repo = DynamoSettingsRepository(settings.operations_table, settings.aws_region)
    repo.save(Settings(collect_interval_minutes=2, reconcile_interval_minutes=45))
    # And a deployment that put the template's rates back
    deploy({COLLECT_JOB: "rate(5 minutes)", RECONCILE_JOB: "rate(15 minutes)"})
    from cmlcm.handlers import collect as collect_handlers

    # When the collection state machine's plan step runs
    planned = collect_handlers.plan_handler({}, FakeLambdaContext("collect-plan"))
    # Then the schedules follow the settings again, and the plan is as usual
    assert (rate_of(COLLECT_JOB), rate_of(RECONCILE_JOB)) == ("rate(2 minutes)", "rate(45 minutes)")
    assert (planned["skipped"], planned["workers"], planned["batches"]) == (False, 0, 0)
    container.use(None)  # and the config: the schedule names come from the environment


def test_healing_survives_a_scheduler_that_does_not_answer(aws):  # noqa: ANN001, ARG001
    from botocore.exceptions import EndpointConnectionError

    class Unreachable:
        def get_schedule(self, **_: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="https://scheduler.us-east-1.amazonaws.com")

    outcome = heal_schedule_rates(EventBridgeSchedules(REGION, NAMES, scheduler=Unreachable()), Settings())
    assert outcome == {COLLECT_JOB: "ExternalServiceError", RECONCILE_JOB: "ExternalServiceError"}
