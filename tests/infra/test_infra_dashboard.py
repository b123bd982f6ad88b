"""The operations dashboard: one per stack, every section the operator needs, and only metrics the
functions really publish."""

from __future__ import annotations

import json

import pytest
from _published import published
from _template import of_type

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def widgets(resources) -> list[dict]:
    (dashboard,) = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == "CmlCloudManager-operations"
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    # Tokens (ARNs, names) become a placeholder; the rest is the dashboard's JSON.
    return json.loads("".join(p if isinstance(p, str) else "TOKEN" for p in parts))["widgets"]


def _titles(widgets: list[dict]) -> list[str]:
    return [w["properties"].get("title", "") for w in widgets]


def test_the_dashboard_shows_every_section(widgets):
    titles = " | ".join(_titles(widgets))
    for expected in (
        "Alarms",
        "Workers by status",
        "Worker-hours saved",
        "Idle pauses",
        "Saved by the policies",
        "Kept stopped by a policy",
        "Policy actions",
        "Collection run duration",
        "Workers per run",
        "error classes",
        "Requests and errors",
        "Latency",
        "Saga outcomes",
        "Reconciler findings",
        "Lambda duration",
        "Lambda concurrency",
        "Dead letters",
        "DynamoDB",
    ):
        assert expected in titles, expected


def test_the_alarm_widget_lists_every_alarm(resources, widgets):
    (alarm_widget,) = [w for w in widgets if w["type"] == "alarm"]
    assert len(alarm_widget["properties"]["alarms"]) == len(of_type(resources, "AWS::CloudWatch::Alarm"))


def test_fleet_statuses_are_the_worker_statuses():
    from cmlcm.domain.workers import WorkerStatus
    from cmlcm_infra.dashboard import WORKER_STATUSES

    assert set(WORKER_STATUSES) == {s.value for s in WorkerStatus}


def test_every_job_metric_on_the_dashboard_is_published_by_a_handler(widgets):
    names = {
        (metric[1], metric[3])
        for w in widgets
        if w["type"] == "metric"
        for metric in w["properties"]["metrics"]
        if len(metric) > 3 and metric[0] == "CmlCloudManager"
    }
    assert len(names) >= 15
    for name, service in names:
        assert published(name, service, kind_spelled=name.startswith("Reconcile_")), name
