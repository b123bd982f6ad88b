"""Where a worker's CML API is: the one place that builds base URLs (no hosts or ports elsewhere)."""
from __future__ import annotations

from typing import Literal

from cmlcm.adapters.cml.errors import CmlUnreachable


def resolve_cml_base_url(
    *,
    instance_id: str | None,
    public_ip: str | None,
    private_ip: str | None,
    mode: Literal["public", "private", "template"],
    template: str = "",
) -> str:
    """The `.../api/v0` base URL of a worker's controller by deployment setting: its public or
    private IP, or a template (local mode: the simulator, `{instance_id}` filled in)."""
    if mode == "template":
        if not template or not instance_id:
            raise CmlUnreachable("CML endpoint template or instance id missing")
        return template.format(instance_id=instance_id).rstrip("/")
    address = public_ip if mode == "public" else private_ip
    if not address:
        raise CmlUnreachable(f"worker has no {mode} IP address (instance {instance_id} not running?)")
    return f"https://{address}/api/v0"
