"""Classified CML faults. Each is recorded on its worker (`kind` + message), never raised past it.

Messages are safe to store and show: they name the call and CML's own error description, never
a password, a token or a request body.
"""

from __future__ import annotations

from cmlcm.domain.errors import ExternalServiceError


class CmlError(ExternalServiceError):
    """Base of every CML fault; `kind` is the short class the dashboards and metrics use."""

    code = "CmlError"
    kind = "error"
    http_status = 502


class CmlUnreachable(CmlError):
    """No connection (refused, DNS, TLS handshake, reset) or no address to connect to."""

    code, kind = "CmlUnreachable", "unreachable"


class CmlTimeout(CmlError):
    """The controller did not answer one call within its deadline."""

    code, kind, http_status = "CmlTimeout", "timeout", 504


class CmlAuthError(CmlError):
    """Login refused (403), or a fresh token refused again (401 after the one re-login)."""

    code, kind = "CmlAuthError", "auth"


class CmlNotReady(CmlError):
    """CML is up but not serving yet: `system_information.ready` is false, or it answered 503."""

    code, kind, http_status = "CmlNotReady", "not_ready", 503


class CmlBadResponse(CmlError):
    """An answer the adapter cannot use: not JSON, not the documented shape, an unexpected
    status (5xx other than 503), or a CML version this product does not support."""

    code, kind = "CmlBadResponse", "bad_response"


class CmlNotFound(CmlError):
    """404: the lab (`Lab not found: <id>`) or, behind a proxy, the controller does not exist."""

    code, kind, http_status = "CmlNotFound", "not_found", 404


class CmlRejected(CmlError):
    """CML refused a well-formed call (400/409): a bad lab YAML, a lab in the wrong state, a
    licence already registered. The request, not the controller, is at fault."""

    code, kind, http_status = "CmlRejected", "rejected", 422


__all__ = [
    "CmlAuthError",
    "CmlBadResponse",
    "CmlError",
    "CmlNotFound",
    "CmlNotReady",
    "CmlRejected",
    "CmlTimeout",
    "CmlUnreachable",
]
