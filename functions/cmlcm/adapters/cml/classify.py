"""Which `CmlError` a CML answer or a transport fault is: one place for the classification every
client call shares (see `errors.py` for the classes and what each means)."""

from __future__ import annotations

from pydantic import ValidationError

from cmlcm.adapters.cml.errors import (
    CmlAuthError,
    CmlBadResponse,
    CmlError,
    CmlNotFound,
    CmlNotReady,
    CmlRejected,
    CmlUnreachable,
)
from cmlcm.adapters.cml.http11 import Answer, HttpFault, MalformedAnswer


def error_description(response: Answer) -> str:
    """CML's `description`, or a short prefix of the body: enough to diagnose, never a secret
    (CML's error bodies do not echo requests)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "description" in body:
        return str(body["description"])[:300]
    return response.text[:200].strip() or response.reason or f"HTTP {response.status}"


def classify_status(response: Answer, what: str) -> CmlError:
    """The error for a non-2xx answer."""
    status = response.status
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


def classify_fault(exc: HttpFault, what: str) -> CmlError:
    """The error for a transport fault: an answer that is not HTTP is a bad answer; no connection,
    or one that ended before the answer, is an unreachable controller."""
    if isinstance(exc, MalformedAnswer):
        return CmlBadResponse(f"{what}: not a usable HTTP answer: {reason(exc)}")
    return CmlUnreachable(f"{what}: {type(exc).__name__}: {reason(exc)}")


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


__all__ = ["classify_fault", "classify_status", "error_description", "reason", "safe_to_repeat", "unexpected_body"]
