"""CML credentials from Secrets Manager, read once per cold start and never logged.

The secret is JSON `{"username": ..., "password": ...}`. A provider is a zero-argument callable
returning `CmlCredentials`, so tests and local mode can pass `lambda: CmlCredentials(...)`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from cmlcm.adapters.aws import client, map_client_error
from cmlcm.adapters.cml.errors import CmlAuthError

#: What `CmlClient` calls to get credentials (called again only after a login is needed).
CredentialsProvider = Callable[[], "CmlCredentials"]


@dataclass(frozen=True)
class CmlCredentials:
    """A CML username and password; the password never appears in a repr or a log line."""

    username: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"CmlCredentials(username={self.username!r}, password='***')"

    __str__ = __repr__


class SecretsManagerCredentials:
    """Provider of the deployment's CML credentials, fetched on first use and then cached for the
    life of the process (a warm Lambda makes no further Secrets Manager calls)."""

    def __init__(self, secret_id: str, region: str) -> None:
        self._secret_id = secret_id
        self._region = region
        self._cached: CmlCredentials | None = None
        # Workers of one collector may ask at the same moment from several threads.
        self._lock = threading.Lock()

    def __call__(self) -> CmlCredentials:
        """The credentials; the first call reads the secret."""
        with self._lock:
            if self._cached is None:
                self._cached = self._read()
            return self._cached

    def invalidate(self) -> None:
        """Forget the cached value, so a rotated secret is read again on the next call."""
        with self._lock:
            self._cached = None

    def __repr__(self) -> str:
        return f"SecretsManagerCredentials(secret_id={self._secret_id!r}, region={self._region!r})"

    def _read(self) -> CmlCredentials:
        try:
            answer = client("secretsmanager", self._region).get_secret_value(SecretId=self._secret_id)
        except ClientError as exc:
            raise map_client_error(exc, action="GetSecretValue") from exc
        raw = answer.get("SecretString")
        if raw is None:
            raise CmlAuthError(f"secret {self._secret_id} has no SecretString (binary secrets are not supported)")
        try:
            data = json.loads(raw)
            username, password = data["username"], data["password"]
        except (ValueError, KeyError, TypeError):
            # `from None`: the JSON error would quote the secret's text.
            raise CmlAuthError(f"secret {self._secret_id} is not JSON with username and password") from None
        if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
            raise CmlAuthError(f"secret {self._secret_id}: username and password must be non-empty strings")
        return CmlCredentials(username=username, password=password)


__all__ = ["CmlCredentials", "CredentialsProvider", "SecretsManagerCredentials"]
