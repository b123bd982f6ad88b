"""Classified CML faults. Each is recorded on its worker (kind + message), never raised past it."""
from __future__ import annotations

from cmlcm.domain.errors import ExternalServiceError


class CmlError(ExternalServiceError):
    """Base of every CML fault; `kind` is the short class the dashboards and metrics use."""

    code = "CmlError"
    kind = "error"
    http_status = 502


class CmlUnreachable(CmlError):
    code, kind = "CmlUnreachable", "unreachable"


class CmlTimeout(CmlError):
    code, kind, http_status = "CmlTimeout", "timeout", 504


class CmlAuthError(CmlError):
    code, kind = "CmlAuthError", "auth"


class CmlNotReady(CmlError):
    code, kind, http_status = "CmlNotReady", "not_ready", 503


class CmlBadResponse(CmlError):
    code, kind = "CmlBadResponse", "bad_response"


class CmlNotFound(CmlError):
    code, kind, http_status = "CmlNotFound", "not_found", 404


class CmlRejected(CmlError):
    """CML refused the request (400/409), e.g. a bad lab YAML or an already deregistered licence."""

    code, kind, http_status = "CmlRejected", "rejected", 422
