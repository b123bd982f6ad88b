"""Stands in for the custom EventBridge bus in local mode: the bus is created in moto's
EventBridge, so the broadcaster's real boto3 `PutEvents` lands there and moto matches it against
the rules on the bus, as EventBridge would. Two rules are made, each delivering to a CloudWatch
log group in moto (a target moto supports; reading it does not consume it):

- `local-all-events`: every event of the product (`source` = `cmlcm`), a log of what automation
  would see (`GET /_local/events` on the gateway);
- `worker-failed`: the documented example rule, its pattern read from
  docs/events/rules/worker-failed.json (`GET /_local/events/worker-failed`). On AWS its target
  would be an SNS topic; moto's EventBridge cannot deliver to SNS, so here its target is a log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cmlcm.adapters.aws import client
from cmlcm.domain.bus import EVENT_SOURCE

#: The bus's name in local mode (CDK names it on AWS; the stack outputs the name).
LOCAL_BUS_NAME = "cmlcm-local-events"
ALL_EVENTS_RULE = "local-all-events"
#: The documented example rules, by rule name (docs/events/rules/<name>.json holds the pattern).
RULES_DIR = Path(__file__).resolve().parents[2] / "docs" / "events" / "rules"
EXAMPLE_RULES = ("worker-failed",)


def log_group_of(rule: str) -> str:
    return f"/cmlcm/local/events/{rule}"


def example_pattern(rule: str) -> dict[str, Any]:
    """The documented event pattern of an example rule (CDK-free JSON)."""
    pattern: dict[str, Any] = json.loads((RULES_DIR / f"{rule}.json").read_text())
    return pattern


class LocalEventBus:
    """The bus in moto, its rules and their log-group targets."""

    def __init__(self, region: str, bus_name: str = LOCAL_BUS_NAME) -> None:
        self.region = region
        self.bus_name = bus_name
        self.rules: dict[str, dict[str, Any]] = {ALL_EVENTS_RULE: {"source": [EVENT_SOURCE]}}
        self.rules.update({rule: example_pattern(rule) for rule in EXAMPLE_RULES})

    def create(self) -> LocalEventBus:
        """Create the bus, and each rule with its log group as target (idempotent)."""
        events = client("events", self.region)
        logs = client("logs", self.region)
        if not events.list_event_buses(NamePrefix=self.bus_name)["EventBuses"]:
            events.create_event_bus(Name=self.bus_name)
        account = client("sts", self.region).get_caller_identity()["Account"]
        for rule, pattern in self.rules.items():
            group = log_group_of(rule)
            if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
                logs.create_log_group(logGroupName=group)
            events.put_rule(Name=rule, EventBusName=self.bus_name, EventPattern=json.dumps(pattern))
            events.put_targets(
                Rule=rule,
                EventBusName=self.bus_name,
                Targets=[{"Id": "log", "Arn": f"arn:aws:logs:{self.region}:{account}:log-group:{group}"}],
            )
        return self

    def events(self, rule: str = ALL_EVENTS_RULE) -> list[dict[str, Any]]:
        """The events `rule` delivered so far, oldest first (as its target received them)."""
        if rule not in self.rules:
            raise KeyError(rule)
        logs = client("logs", self.region)
        found: list[tuple[int, dict[str, Any]]] = []
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=log_group_of(rule)):
            found.extend((item["timestamp"], json.loads(item["message"])) for item in page["events"])
        return [event for _, event in sorted(found, key=lambda pair: pair[0])]

    def routes(self) -> list[Route]:
        """Local-only, no auth: `GET /_local/events[/<rule>]` → `{"rule", "events": [...]}`."""

        async def matched(request: Request) -> Response:
            rule = request.path_params.get("rule", ALL_EVENTS_RULE)
            if rule not in self.rules:
                return JSONResponse({"error": f"no rule {rule!r}; rules: {', '.join(self.rules)}"}, status_code=404)
            return JSONResponse({"rule": rule, "events": await run_in_threadpool(self.events, rule)})

        return [
            Route("/_local/events", matched, methods=["GET"]),
            Route("/_local/events/{rule}", matched, methods=["GET"]),
        ]
