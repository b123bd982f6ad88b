"""CML credentials from Secrets Manager, read once per cold start and never logged."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from cmlcm.adapters.aws import client, map_client_error
from cmlcm.adapters.cml.errors import CmlAuthError


@dataclass(frozen=True)
class CmlCredentials:
    username: str
    password: str = field(repr=False)

    def __repr__(self) -> str:  # the password never reaches a log line
        return f"CmlCredentials(username={self.username!r}, password='***')"


class SecretsManagerCredentials:
    """Provider of the deployment's CML credentials (JSON `{"username", "password"}`)."""

    def __init__(self, secret_id: str, region: str) -> None:
        self._secret_id = secret_id
        self._region = region
        self._cached: CmlCredentials | None = None
        self._lock = threading.Lock()

    def __call__(self) -> CmlCredentials:
        with self._lock:
            if self._cached is None:
                self._cached = self._read()
            return self._cached

    def _read(self) -> CmlCredentials:
        try:
            raw = client("secretsmanager", self._region).get_secret_value(SecretId=self._secret_id)["SecretString"]
        except ClientError as exc:
            raise map_client_error(exc, action="GetSecretValue") from exc
        try:
            data = json.loads(raw)
            return CmlCredentials(username=data["username"], password=data["password"])
        except (ValueError, KeyError, TypeError):
            # Say what is wrong without echoing the secret.
            raise CmlAuthError(f"secret {self._secret_id} is not JSON with username and password") from None
