"""Stands in for EventBridge's EC2 state-change rule in local mode: a short loop reads moto's
instance states (DescribeInstances) and, for each instance whose state changed since the last
look, invokes the rule's target handler with the event EventBridge would deliver
(`EC2 Instance State-change Notification`). Stops, starts and console-style actions on moto's
instances thus reach the worker records within about a second, as on AWS."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cmlcm_local.events import FakeLambdaContext
from cmlcm_local.moto_glue.ec2 import instance_states

log = logging.getLogger("cmlcm.local.ec2_watch")

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def state_change_event(instance_id: str, state: str, *, region: str, now: datetime) -> dict[str, Any]:
    """The EventBridge event of one EC2 instance state change."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:ec2:{region}:123456789012:instance/{instance_id}"],
        "detail": {"instance-id": instance_id, "state": state},
    }


class Ec2StateWatcher:
    """A daemon thread turning moto's instance state changes into rule invocations."""

    def __init__(self, handler: LambdaHandler, region: str, *, poll_seconds: float = 0.5) -> None:
        self._handler = handler
        self._region = region
        self._poll = poll_seconds
        self._states: dict[str, str] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="local-ec2-rule", daemon=True)
        self.delivered = 0

    def start(self) -> None:
        self._states = self._read()  # what exists at start is no change
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _read(self) -> dict[str, str]:
        # moto's state, not a DescribeInstances call: EventBridge sees EC2 from the inside, and the
        # call costs seconds of CPU with a 1000-instance fleet (see moto_glue.ec2.instance_states).
        return instance_states(self._region)

    def poll_once(self) -> int:
        """Deliver one event per changed instance; returns how many."""
        states = self._read()
        previous = self._states or {}
        changed = [(iid, state) for iid, state in states.items() if previous.get(iid) != state]
        self._states = states
        for instance_id, state in changed:
            event = state_change_event(instance_id, state, region=self._region, now=datetime.now(UTC))
            try:
                self._handler(event, FakeLambdaContext("ec2-state-change"))
                self.delivered += 1
            except Exception:  # noqa: BLE001 - on AWS the rule retries, then dead-letters; locally it is logged
                log.exception("ec2 state-change target failed for %s", instance_id)
        return len(changed)

    def _loop(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - a failed poll is logged and the loop goes on
                log.exception("ec2 state watch failed")
