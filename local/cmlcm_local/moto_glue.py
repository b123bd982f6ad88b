"""The few places where moto (pinned 5.2.x) needs help to stand in for AWS in local mode/tests.

Each patch is small, idempotent, and covered by tests/integration/test_moto_glue.py, so a moto
upgrade that changes the patched method fails loudly instead of silently.
"""
from __future__ import annotations

from typing import Any

import moto
from moto.core.responses import ActionResult
from moto.ec2.responses.monitoring import Monitoring

SUPPORTED_MOTO = "5.2."


def _set_monitoring(response: Any, state: str) -> ActionResult:
    ids = response._get_param("InstanceIds", [])
    instances = response.ec2_backend.get_multi_instances_by_id(ids)
    for instance in instances:
        instance.monitoring_state = state
    return ActionResult(
        {"InstanceMonitorings": [{"InstanceId": i.id, "Monitoring": {"State": state}} for i in instances]}
    )


def _monitor_instances(self: Monitoring) -> ActionResult:
    self.error_on_dryrun()
    return _set_monitoring(self, "enabled")


def _unmonitor_instances(self: Monitoring) -> ActionResult:
    self.error_on_dryrun()
    return _set_monitoring(self, "disabled")


def install() -> None:
    """Apply the patches (safe to call more than once)."""
    if not moto.__version__.startswith(SUPPORTED_MOTO):
        raise RuntimeError(f"moto {moto.__version__} is not the pinned {SUPPORTED_MOTO}x this glue was written for")
    Monitoring.monitor_instances = _monitor_instances  # type: ignore[method-assign]
    Monitoring.unmonitor_instances = _unmonitor_instances  # type: ignore[method-assign]
