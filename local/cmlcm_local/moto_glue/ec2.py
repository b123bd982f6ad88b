"""EC2 behaviour moto 5.2 lacks and the product relies on.

- MonitorInstances / UnmonitorInstances: moto raises NotImplementedError; here they set the
  instances' monitoring state and answer as EC2 does (the API's POST /workers/{id}/monitoring).
- RunInstances idempotency by ClientToken: on AWS a RunInstances retried with the same token
  returns the first call's reservation instead of launching again; the provisioning saga depends
  on it (ClientToken = worker id).

Also `instance_states` (a read, not a patch): what the local stand-ins for AWS-internal machinery
(the EC2 state-change rule, the simulated CML fleet's sync, the CloudWatch seeding) read instead
of DescribeInstances. moto 5.2 serializes a DescribeInstances answer through its generic XML
serializer at about 6 ms of CPU per instance: with 1000 instances, one call took 6-7 s of CPU, and
the loops that polled it every 0.5 s and 1 s kept the local process saturated (every API answer
waited its turn for the GIL). EventBridge and the simulator are not API callers of EC2 on AWS
either; the product's own EC2 calls still go through the API.
"""

from __future__ import annotations

from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.responses.monitoring import Monitoring

from cmlcm_local.moto_glue._patch import original, patch

#: moto's own default when the request has no ClientToken.
_MOTO_DEFAULT_TOKEN = "ABCDE"


def _set_monitoring(response: Any, state: str) -> ActionResult:
    ids = response._get_param("InstanceIds", [])
    instances = response.ec2_backend.get_multi_instances_by_id(ids)
    for instance in instances:
        instance.monitoring_state = state
    return ActionResult(
        {"InstanceMonitorings": [{"InstanceId": i.id, "Monitoring": {"State": state}} for i in instances]}
    )


def monitor_instances(self: Monitoring) -> ActionResult:
    self.error_on_dryrun()
    return _set_monitoring(self, "enabled")


def unmonitor_instances(self: Monitoring) -> ActionResult:
    self.error_on_dryrun()
    return _set_monitoring(self, "disabled")


def run_instances(
    self: Any, image_id: str, count: int, user_data: Any, security_group_names: list[str], **kwargs: Any
) -> Any:
    token = kwargs.get("client_token")
    if token and token != _MOTO_DEFAULT_TOKEN:
        for reservation in self.reservations.values():
            if any(getattr(i, "client_token", None) == token for i in reservation.instances):
                return reservation
    launch = original(InstanceBackend, "run_instances")
    return launch(self, image_id, count, user_data, security_group_names, **kwargs)


def install() -> None:
    patch(Monitoring, "monitor_instances", monitor_instances)
    patch(Monitoring, "unmonitor_instances", unmonitor_instances)
    patch(InstanceBackend, "run_instances", run_instances)


def instance_states(region: str, account_id: str = DEFAULT_ACCOUNT_ID) -> dict[str, str]:
    """Instance id -> state name (pending, running, ...) of every instance moto holds in `region`,
    read from moto's backend (what DescribeInstances would list, without serializing it)."""
    backend = ec2_backends[account_id][region]
    return {instance.id: instance.state for instance in backend.all_instances()}
