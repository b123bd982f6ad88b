"""Posting to WebSocket clients through API Gateway's `@connections` API (apigatewaymanagementapi).

The endpoint is the WebSocket stage's callback URL (`https://<api>.execute-api.<region>.amazonaws.com/<stage>`
on AWS; the local gateway's base URL in local mode, where the same boto3 client posts to it).
A 410 GoneException becomes `ConnectionGone` (the caller deletes the connection's records); any
other fault is an `ExternalServiceError` of that one connection.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cmlcm.domain.errors import ExternalServiceError
from cmlcm.domain.events import ConnectionGone

#: A post is small and its client may be slow or gone: a short deadline and one retry, so one bad
#: connection cannot hold a fan-out (the broadcaster posts to many at once).
POST_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=3, max_pool_connections=64
)


class ApiGatewayConnections:
    """`ConnectionPoster` over the `@connections` API of one WebSocket stage."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self._region = region
        self._client = None
        self._lock = threading.Lock()
        self.calls = 0

    def _api(self) -> Any:  # a boto3 client (untyped)
        with self._lock:
            if self._client is None:
                self._client = boto3.session.Session().client(
                    "apigatewaymanagementapi",
                    region_name=self._region,
                    endpoint_url=self.endpoint_url,
                    config=POST_CONFIG,
                )
            return self._client

    def post(self, connection_id: str, data: bytes) -> None:
        api = self._api()
        self.calls += 1
        try:
            api.post_to_connection(ConnectionId=connection_id, Data=data)
        except api.exceptions.GoneException as exc:  # before ClientError: it is one
            raise ConnectionGone(connection_id) from exc
        except (ClientError, BotoCoreError) as exc:
            raise ExternalServiceError(f"post to connection {connection_id}: {exc}") from exc

    def close(self, connection_id: str) -> None:
        """Close a connection from the server side (the client sees the socket close)."""
        api = self._api()
        try:
            api.delete_connection(ConnectionId=connection_id)
        except api.exceptions.GoneException:
            return
        except (ClientError, BotoCoreError) as exc:
            raise ExternalServiceError(f"close connection {connection_id}: {exc}") from exc


class MemoryConnections:
    """In-memory twin: records what each connection was sent; ids in `gone` answer 410, ids in
    `failing` fail otherwise."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: dict[str, list[bytes]] = {}
        self.gone: set[str] = set()
        self.failing: set[str] = set()
        self.calls = 0

    def post(self, connection_id: str, data: bytes) -> None:
        with self._lock:
            self.calls += 1
            if connection_id in self.gone:
                raise ConnectionGone(connection_id)
            if connection_id in self.failing:
                raise ExternalServiceError(f"post to connection {connection_id}: throttled")
            self.sent.setdefault(connection_id, []).append(data)

    def close(self, connection_id: str) -> None:
        with self._lock:
            self.gone.add(connection_id)
