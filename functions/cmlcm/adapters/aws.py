"""One place for boto3 clients: the shared retry/timeout config and per-region client cache.

Every AWS call in the product goes through a client made here, so retries behave the same
everywhere and tests can count calls by wrapping `client()`.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from cmlcm.domain.errors import (
    AwsAuthError,
    AwsInvalidParameter,
    ExternalServiceError,
    InstanceNotFound,
    QuotaExceeded,
    TransientAwsError,
)

#: Standard mode retries throttling and 5xx with jittered back-off; adaptive would add client-side
#: rate limiting, which concurrent Map branches would each do on their own anyway.
RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=50,
)

#: For small calls made on the way of something else (moving a schedule's rate during a
#: collection run or a settings save): at most ~10 s a call, so they cannot eat a 29 s API
#: request or a 60 s task.
QUICK_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=3)

_clients: dict[tuple[str, str, bool], Any] = {}
_lock = threading.Lock()


def client(service: str, region: str, *, quick: bool = False) -> Any:
    """A cached boto3 client for `service` in `region`, with the shared retry config (or
    `QUICK_CONFIG` with `quick=True`)."""
    key = (service, region, quick)
    with _lock:
        if key not in _clients:
            config = QUICK_CONFIG if quick else RETRY_CONFIG
            _clients[key] = boto3.session.Session().client(service, region_name=region, config=config)
        return _clients[key]


def reset_clients() -> None:
    """Forget cached clients (tests that start a fresh moto backend)."""
    with _lock:
        _clients.clear()


_NOT_FOUND = {"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed", "InvalidAMIID.NotFound"}
_QUOTA = {"InstanceLimitExceeded", "VcpuLimitExceeded", "InsufficientInstanceCapacity", "MaxSpotInstanceCountExceeded"}
_AUTH = {"UnauthorizedOperation", "AuthFailure", "AccessDenied", "AccessDeniedException", "OptInRequired"}
_INVALID = {
    "InvalidParameterValue",
    "InvalidParameterCombination",
    "InvalidParameter",
    "MissingParameter",
    "IncorrectInstanceState",
    "InvalidAMIID.Malformed",
    "InvalidSubnetID.NotFound",
    "InvalidGroup.NotFound",
    "ValidationException",
}
_TRANSIENT = {
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "InternalError",
    "ServiceUnavailable",
    "Unavailable",
}


def map_client_error(exc: ClientError, *, action: str) -> ExternalServiceError:
    """Turn an AWS error into the domain error a service can record or the API can map."""
    code = exc.response.get("Error", {}).get("Code", "Unknown")
    message = f"{action}: {code}: {exc.response.get('Error', {}).get('Message', '')}".strip()
    if code in _NOT_FOUND:
        return InstanceNotFound(message)
    if code in _QUOTA:
        return QuotaExceeded(message)
    if code in _AUTH:
        return AwsAuthError(message)
    if code in _INVALID:
        return AwsInvalidParameter(message)
    if code in _TRANSIENT or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
        return TransientAwsError(message)
    return ExternalServiceError(message)
