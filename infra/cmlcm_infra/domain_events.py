"""Domain events for automation: a custom EventBridge bus the broadcaster puts every live event on.

The same events WebSocket clients get (same ids, `detail-type` = the event type, `source` =
`cmlcm`, see docs/events/) land on this bus; users attach their own rules to it ("notify an SNS
topic when a worker goes FAILED": docs/events/README.md). The stack outputs its name and ARN.

Least privilege: the broadcaster may `events:PutEvents` on this bus only, nobody else may.
"""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cmlcm.domain.bus import EVENT_SOURCE


class DomainEvents(Construct):
    """The custom bus, its publisher's grant and environment."""

    def __init__(self, scope: Construct, construct_id: str, *, publisher: lambda_.Function) -> None:
        super().__init__(scope, construct_id)
        # No fixed name: two stacks in one account and region get two buses (the output names it).
        self.bus = events.EventBus(
            self,
            "Bus",
            description=f"CML Cloud Manager domain events (source {EVENT_SOURCE}); one detail-type per event type",
        )
        self.bus.grant_put_events_to(publisher)
        publisher.add_environment("EVENT_BUS_NAME", self.bus.event_bus_name)
