"""EC2 behaviour moto 5.2 lacks and the product relies on: RunInstances idempotency by ClientToken.

On AWS a RunInstances retried with the same ClientToken returns the first call's reservation
instead of launching again; the provisioning saga depends on it (ClientToken = worker id), so the
local mode and the tests must too.

Also `instance_states`: what the local stand-ins for AWS-internal machinery (the EC2 state-change
rule, the simulated CML fleet's sync) read instead of DescribeInstances. moto 5.2 serializes a
DescribeInstances answer through its generic XML serializer at about 6 ms of CPU per instance: with
1000 instances, one call took 6-7 s of CPU, and the two loops that polled it every 0.5 s and 1 s
kept the local process saturated (every API answer waited its turn for the GIL). EventBridge and
the simulator are not API callers of EC2 on AWS either; the product's own EC2 calls still go
through the API.
"""

from __future__ import annotations

from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from moto.ec2.models.instances import InstanceBackend

#: moto's own default when the request has no ClientToken.
_MOTO_DEFAULT_TOKEN = "ABCDE"
_original_run_instances = InstanceBackend.run_instances


def _run_instances(
    self: Any, image_id: str, count: int, user_data: Any, security_group_names: list[str], **kwargs: Any
) -> Any:
    token = kwargs.get("client_token")
    if token and token != _MOTO_DEFAULT_TOKEN:
        for reservation in self.reservations.values():
            if any(getattr(i, "client_token", None) == token for i in reservation.instances):
                return reservation
    return _original_run_instances(self, image_id, count, user_data, security_group_names, **kwargs)


def install() -> None:
    """Make RunInstances idempotent by ClientToken (safe to call more than once)."""
    InstanceBackend.run_instances = _run_instances  # type: ignore[method-assign]  # monkeypatch of moto


def instance_states(region: str, account_id: str = DEFAULT_ACCOUNT_ID) -> dict[str, str]:
    """Instance id -> state name (pending, running, ...) of every instance moto holds in `region`,
    read from moto's backend (what DescribeInstances would list, without serializing it)."""
    backend = ec2_backends[account_id][region]
    return {instance.id: instance.state for instance in backend.all_instances()}
