"""Whether an EMF metric the dashboard or an alarm reads is published by the product's code."""

from __future__ import annotations

import re
from functools import cache

from _app import REPO_ROOT

FUNCTIONS = REPO_ROOT / "functions" / "cmlcm"


@cache
def _code() -> str:
    return "\n".join(path.read_text() for path in FUNCTIONS.rglob("*.py"))


def published(name: str, service: str, *, kind_spelled: bool) -> bool:
    """The `service` handler publishes metrics, and `name` is spelled in the code: whole, or as
    `f"<prefix>_{...}"` (Fleet_{status}, Reconcile_{kind}), with `kind_spelled` its kind too. The
    handlers publish what their services' outcomes carry (`domain.jobs.Metric`), so the name may
    be in the handler or in the service or domain code under it."""
    handler = (FUNCTIONS / "handlers" / f"{service}.py").read_text()
    if "add_metric(" not in handler and "publish(metrics" not in handler:
        return False
    code = _code()
    if f'"{name}"' in code:
        return True
    prefix, _, kind = name.partition("_")
    return bool(re.search(rf'f"{prefix}_\{{', code)) and (not kind_spelled or f'"{kind}"' in code)
