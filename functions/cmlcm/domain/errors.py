"""Typed domain errors. Each maps to one HTTP status in the API's single exception handler,
and to one named error that Step Functions `Catch` clauses can match."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the services raise on purpose."""

    http_status = 400
    #: Name seen by Step Functions (`errorType`) and in API error bodies.
    code = "DomainError"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(DomainError):
    """Input that parses but breaks a rule (names the field)."""

    http_status = 422
    code = "ValidationFailed"


class BadRequest(DomainError):
    """A request that cannot be read at all (not JSON, not UTF-8, nested past reason)."""

    http_status = 400
    code = "BadRequest"


class UnsupportedMediaType(DomainError):
    """A body in a Content-Type the route does not take (names `Content-Type`)."""

    http_status = 415
    code = "UnsupportedMediaType"


class PayloadTooLarge(DomainError):
    """A body above what the route accepts."""

    http_status = 413
    code = "PayloadTooLarge"


class NotFound(DomainError):
    http_status = 404
    code = "NotFound"


class Conflict(DomainError):
    """The request collides with the current state (duplicate name, idempotency clash, ...)."""

    http_status = 409
    code = "Conflict"


class IllegalTransition(Conflict):
    """A worker cannot move from its current status to the requested one."""

    code = "IllegalTransition"


class ConcurrentModification(Conflict):
    """Optimistic locking lost every retry: someone else keeps writing the same item."""

    code = "ConcurrentModification"


class Forbidden(DomainError):
    http_status = 403
    code = "Forbidden"


class RateLimited(DomainError):
    http_status = 429
    code = "RateLimited"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class NotImplementedYet(DomainError):
    http_status = 501
    code = "NotImplemented"


# --- faults in the outside world (AWS, CML), recorded per worker, never raised past one worker ---


class ExternalServiceError(DomainError):
    """A call to AWS or CML failed; the message is safe to store and show (no secrets)."""

    http_status = 502
    code = "ExternalServiceError"


class InstanceNotFound(ExternalServiceError):
    http_status = 404
    code = "InstanceNotFound"


class QuotaExceeded(ExternalServiceError):
    http_status = 429
    code = "QuotaExceeded"


class AwsAuthError(ExternalServiceError):
    http_status = 502
    code = "AwsAuthError"


class AwsInvalidParameter(ExternalServiceError):
    http_status = 422
    code = "AwsInvalidParameter"


class TransientAwsError(ExternalServiceError):
    """Throttling or a 5xx that survived the shared retry config; Step Functions retries it."""

    http_status = 503
    code = "TransientAwsError"
