"""Which `CmlError` a CML answer or a transport fault is: one place for the classification every
client call shares (see `errors.py` for the classes and what each means)."""

from __future__ import annotations

import httpx
from pydantic import ValidationError

from cmlcm.adapters.cml.errors import (
    CmlAuthError,
    CmlBadResponse,
    CmlError,
    CmlNotFound,
    CmlNotReady,
    CmlRejected,
)


def error_description(response: httpx.Response) -> str:
    """CML's `description`, or a short prefix of the body: enough to diagnose, never a secret
    (CML's error bodies do not echo requests)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "description" in body:
        return str(body["description"])[:300]
    return response.text[:200].strip() or response.reason_phrase or f"HTTP {response.status_code}"


def classify_status(response: httpx.Response, what: str) -> CmlError:
    """The error for a non-2xx answer."""
    status = response.status_code
    detail = error_description(response)
    if status == 404:
        return CmlNotFound(f"{what}: {detail}")
    if status in (400, 409, 422):
        return CmlRejected(f"{what}: HTTP {status}: {detail}")
    if status == 503:
        return CmlNotReady(f"{what}: {detail}")
    if status in (401, 403):
        return CmlAuthError(f"{what}: HTTP {status}: {detail}")
    return CmlBadResponse(f"{what}: HTTP {status}: {detail}")


#: What a request sent on a connection the server had already closed fails with ("Server
#: disconnected without sending a response", a reset while reading or writing). A refused or
#: timed-out connect is not among them: that controller is down, and asking again only waits.
STALE_CONNECTION = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def safe_to_repeat(method: str, path: str) -> bool:
    """Reads, and the login (a second token is harmless), may be sent twice; a lab start, a
    licence registration or an import must not be."""
    return method in ("GET", "HEAD", "OPTIONS") or (method == "POST" and path == "/authenticate")


def reason(exc: Exception) -> str:
    """A transport fault's message, short enough to store on a worker."""
    return str(exc)[:160] or type(exc).__name__


def unexpected_body(exc: ValidationError, what: str) -> CmlBadResponse:
    """A body of the wrong shape, named by its fields (never by its values)."""
    fields = ", ".join(sorted({".".join(map(str, e["loc"])) or "body" for e in exc.errors()}))[:200]
    return CmlBadResponse(f"{what}: unexpected body ({exc.error_count()} problems: {fields})")


__all__ = ["STALE_CONNECTION", "classify_status", "error_description", "reason", "safe_to_repeat", "unexpected_body"]
