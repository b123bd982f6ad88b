"""EC2 behaviour moto 5.2 lacks and the product relies on: RunInstances idempotency by ClientToken.

On AWS a RunInstances retried with the same ClientToken returns the first call's reservation
instead of launching again; the provisioning saga depends on it (ClientToken = worker id), so the
local mode and the tests must too.
"""

from __future__ import annotations

from typing import Any

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
