"""Licence registration tokens kept in Secrets Manager, one secret per worker.

The token goes into the secret and nowhere else: the worker record keeps the secret's name, and
no message built here quotes the token (AWS error messages do not echo SecretString).
"""

from __future__ import annotations

import threading

from botocore.exceptions import ClientError

from cmlcm.adapters.aws import client, map_client_error
from cmlcm.domain.workers import MANAGED_BY_TAG, MANAGED_BY_VALUE, WORKER_ID_TAG

#: Secret names are `cmlcm/licence/<worker id>`; the API Lambda's grant is scoped to this prefix.
LICENCE_SECRET_PREFIX = "cmlcm/licence/"
#: A forgotten token can still be restored for this long (Secrets Manager's recovery window).
RECOVERY_WINDOW_DAYS = 7


def licence_secret_name(worker_id: str) -> str:
    return f"{LICENCE_SECRET_PREFIX}{worker_id}"


class SecretsManagerTokenStore:
    """`LicenceTokenStore` on Secrets Manager: CreateSecret, or PutSecretValue when it exists."""

    def __init__(self, region: str) -> None:
        self._region = region

    def store(self, worker_id: str, token: str) -> str:
        name = licence_secret_name(worker_id)
        secrets = client("secretsmanager", self._region)
        try:
            secrets.create_secret(
                Name=name,
                SecretString=token,
                Description=f"CML licence registration token of worker {worker_id}",
                Tags=[{"Key": MANAGED_BY_TAG, "Value": MANAGED_BY_VALUE}, {"Key": WORKER_ID_TAG, "Value": worker_id}],
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceExistsException":
                raise map_client_error(exc, action="CreateSecret") from None
            try:
                secrets.put_secret_value(SecretId=name, SecretString=token)
            except ClientError as put_exc:
                raise map_client_error(put_exc, action="PutSecretValue") from None
        return name

    def forget(self, worker_id: str) -> bool:
        try:
            client("secretsmanager", self._region).delete_secret(
                SecretId=licence_secret_name(worker_id), RecoveryWindowInDays=RECOVERY_WINDOW_DAYS
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return False
            # Already scheduled for deletion: as good as forgotten.
            if exc.response.get("Error", {}).get("Code") == "InvalidRequestException" and "deletion" in str(exc):
                return True
            raise map_client_error(exc, action="DeleteSecret") from None
        return True


class InMemoryTokenStore:
    """Twin for unit tests: remembers tokens by secret name."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self._lock = threading.Lock()

    def store(self, worker_id: str, token: str) -> str:
        name = licence_secret_name(worker_id)
        with self._lock:
            self.secrets[name] = token
        return name

    def forget(self, worker_id: str) -> bool:
        with self._lock:
            return self.secrets.pop(licence_secret_name(worker_id), None) is not None


__all__ = ["LICENCE_SECRET_PREFIX", "InMemoryTokenStore", "SecretsManagerTokenStore", "licence_secret_name"]
