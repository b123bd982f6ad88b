"""Where a worker's CML API is: the one place that builds base URLs (no hosts or ports elsewhere)."""

from __future__ import annotations

from typing import Literal

from cmlcm.adapters.cml.errors import CmlUnreachable

EndpointMode = Literal["public", "private", "template"]


def resolve_cml_base_url(
    *,
    instance_id: str | None,
    public_ip: str | None,
    private_ip: str | None,
    mode: EndpointMode,
    template: str = "",
) -> str:
    """The `.../api/v0` base URL of a worker's controller, by deployment setting: its public or
    private IP over HTTPS, or `template` with `{instance_id}` filled in (local mode: the
    simulator). A worker without the address its mode needs is `CmlUnreachable`."""
    if mode == "template":
        if not template:
            raise CmlUnreachable("CML endpoint mode is 'template' but CML_ENDPOINT_TEMPLATE is empty")
        if not instance_id:
            raise CmlUnreachable("worker has no instance id to fill the CML endpoint template")
        try:
            url = template.format(instance_id=instance_id)
        except (KeyError, IndexError, ValueError) as exc:
            # A placeholder other than {instance_id} is a deployment mistake; say which one.
            raise CmlUnreachable(f"CML_ENDPOINT_TEMPLATE is invalid ({type(exc).__name__}: {exc})") from None
        return url.rstrip("/")
    if mode not in ("public", "private"):
        raise CmlUnreachable(f"unknown CML endpoint mode {mode!r}")
    address = public_ip if mode == "public" else private_ip
    if not address:
        raise CmlUnreachable(f"worker has no {mode} IP address (instance {instance_id or '?'} not running?)")
    host = f"[{address}]" if ":" in address else address  # IPv6 literals need brackets in a URL
    return f"https://{host}/api/v0"


__all__ = ["EndpointMode", "resolve_cml_base_url"]
