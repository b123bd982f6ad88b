"""What the API routes derive from a request besides its body: the caller's scope."""

from __future__ import annotations

from typing import Any

from cmlcm.container import current
from cmlcm.domain.access import EVERYTHING, Scope, scope_for
from cmlcm.handlers.api.auth import caller_of


def scope(event: Any) -> Scope:
    """The workers this request's caller may see (per-user scoping; admins: all, without reading
    the settings)."""
    caller = caller_of(event)
    if caller.role == "admin":
        return EVERYTHING
    settings = current().settings.get()
    return scope_for(caller, scoping=settings.worker_scoping, team_tag_key=settings.team_tag_key)
