"""The example rule in CDK (Python), for your own stack: notify an SNS topic when a CML Cloud
Manager worker goes FAILED. Same pattern as worker-failed.json (tests/infra synthesizes this file
and compares)."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sns as sns
from constructs import Construct


def worker_failed_rule(scope: Construct, *, event_bus_name: str, topic: sns.ITopic) -> events.Rule:
    """A rule on the product's bus (`event_bus_name` = the stack output EventBusName)."""
    bus = events.EventBus.from_event_bus_name(scope, "CmlcmBus", event_bus_name)
    name = events.EventField.from_path("$.detail.data.name")
    reason = events.EventField.from_path("$.detail.data.status_reason")
    return events.Rule(
        scope,
        "CmlcmWorkerFailed",
        event_bus=bus,
        description="CML Cloud Manager: a worker went FAILED",
        event_pattern=events.EventPattern(
            source=["cmlcm"],
            detail_type=["worker.status_changed"],
            detail={"detail": {"new": ["failed"]}},
        ),
        # SnsTopic also adds the topic policy that lets EventBridge publish.
        targets=[
            targets.SnsTopic(topic, message=events.RuleTargetInput.from_text(f"CML worker {name} FAILED: {reason}"))
        ],
    )
