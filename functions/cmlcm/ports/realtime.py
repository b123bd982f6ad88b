"""Realtime ports: WebSocket connections and their subscriptions, posts to @connections, the
custom EventBridge bus, and the verifier of `$connect` tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from cmlcm.domain.bus import BusEntry, EntryError
from cmlcm.domain.events import Connection


class ConnectionStore(Protocol):
    def add(self, connection: Connection) -> None: ...
    def get(self, connection_id: str) -> Connection | None: ...
    def subscribe(
        self, connection: Connection, topics: Sequence[str], *, limit: int, scope: str | None = None
    ) -> list[str]: ...
    def unsubscribe(self, connection: Connection, topics: Sequence[str]) -> list[str]: ...
    def remove(self, connection_id: str) -> int: ...
    def subscribers(self, topic: str) -> list[str]: ...
    def subscriptions_of(self, topic: str) -> list[tuple[str, str | None]]:
        """(connection id, the scope it subscribed with) per subscriber of `topic`."""


class ConnectionPoster(Protocol):
    def post(self, connection_id: str, data: bytes) -> None:
        """Send one message; `ConnectionGone` when the connection no longer exists."""


class EventBus(Protocol):
    def put(self, entries: Sequence[BusEntry]) -> list[EntryError | None]:
        """One PutEvents call (at most 10 entries): per entry, None when accepted, else why not.
        A failure of the whole call is every entry's error, not an exception."""


class TokenVerifier(Protocol):
    def verify(self, token: str | None) -> dict[str, Any]:
        """The token's claims, or `InvalidToken` (a missing, expired or foreign token)."""
