"""WebSocket connection and subscription records (PynamoDB), and their in-memory twin.

Two tables, as the CDK stack defines them:
- connections: one item per connection (`connection_id`): user, role, connected/expiry times and
  the set of topics it holds (so `$disconnect` and a 410 Gone know what to delete, and the topic
  limit is one conditional write);
- subscriptions: one item per (topic, connection) (`topic` partition, `connection_id` sort), so a
  fan-out is one Query per topic, never a Scan.
Both carry `expires_at` (TTL) at API Gateway's 2-hour connection limit: records of connections
whose `$disconnect` never fired expire on their own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.attributes import TTLAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.exceptions import DoesNotExist, PynamoDBException, UpdateError
from pynamodb.expressions.condition import size
from pynamodb.models import Model

from cmlcm.adapters.pynamo import bind
from cmlcm.domain.errors import ExternalServiceError
from cmlcm.domain.events import Connection, TooManyTopics


class ConnectionItem(Model):
    class Meta:
        table_name = "cmlcm-connections"
        billing_mode = "PAY_PER_REQUEST"

    connection_id = UnicodeAttribute(hash_key=True)
    user = UnicodeAttribute(null=True)
    role = UnicodeAttribute(null=True)
    connected_at = UnicodeAttribute()
    expires_at = TTLAttribute()
    topics = UnicodeSetAttribute(null=True)
    teams = UnicodeSetAttribute(null=True)


class SubscriptionItem(Model):
    class Meta:
        table_name = "cmlcm-subscriptions"
        billing_mode = "PAY_PER_REQUEST"

    topic = UnicodeAttribute(hash_key=True)
    connection_id = UnicodeAttribute(range_key=True)
    expires_at = TTLAttribute()
    #: The subscriber's per-user scope when it subscribed (`Scope.encode`); absent: everything.
    scope = UnicodeAttribute(null=True)


@contextmanager
def _dynamodb_faults(action: str) -> Iterator[None]:
    try:
        yield
    except (PynamoDBException, ClientError, BotoCoreError) as exc:
        raise ExternalServiceError(f"{action}: {exc}") from exc


def _to_connection(item: ConnectionItem) -> Connection:
    return Connection(
        connection_id=item.connection_id,
        user=item.user,
        role=item.role,
        connected_at=datetime.fromisoformat(item.connected_at),
        expires_at=item.expires_at,
        topics=frozenset(item.topics or ()),
        teams=frozenset(item.teams or ()),
    )


class DynamoConnectionStore:
    """`ConnectionStore` on the connections and subscriptions tables."""

    def __init__(self, connections_table: str, subscriptions_table: str, region: str) -> None:
        self._connections: type[ConnectionItem] = bind(ConnectionItem, connections_table, region)
        self._subscriptions: type[SubscriptionItem] = bind(SubscriptionItem, subscriptions_table, region)

    def add(self, connection: Connection) -> None:
        item = self._connections(
            connection.connection_id,
            user=connection.user,
            role=connection.role,
            connected_at=connection.connected_at.isoformat(),
            expires_at=connection.expires_at,
            teams=set(connection.teams) or None,
        )
        with _dynamodb_faults("store connection"):
            item.save()

    def get(self, connection_id: str) -> Connection | None:
        with _dynamodb_faults("read connection"):
            try:
                return _to_connection(self._connections.get(connection_id))
            except DoesNotExist:
                return None

    def subscribe(
        self, connection: Connection, topics: Sequence[str], *, limit: int, scope: str | None = None
    ) -> list[str]:
        """Add `topics` to the connection (one conditional update enforces `limit` against
        concurrent subscribes), then write one subscription item per new topic, with the
        subscriber's `scope`. Returns the topics that were new."""
        new = [t for t in topics if t not in connection.topics]
        if not new:
            return []
        item = self._connections(connection.connection_id)
        room = limit - len(new)
        if room < 0:
            raise TooManyTopics(f"at most {limit} topics per connection", field="topics")
        condition = self._connections.connection_id.exists() & (
            self._connections.topics.does_not_exist() | (size(self._connections.topics) <= room)
        )
        try:
            item.update(actions=[self._connections.topics.add(set(new))], condition=condition)
        except UpdateError as exc:
            if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
                raise TooManyTopics(
                    f"at most {limit} topics per connection (it holds {len(connection.topics)})", field="topics"
                ) from exc
            raise ExternalServiceError(f"subscribe: {exc}") from exc
        with _dynamodb_faults("write subscriptions"), self._subscriptions.batch_write() as batch:
            for topic in new:
                batch.save(
                    self._subscriptions(topic, connection.connection_id, expires_at=connection.expires_at, scope=scope)
                )
        return new

    def unsubscribe(self, connection: Connection, topics: Sequence[str]) -> list[str]:
        held = [t for t in topics if t in connection.topics]
        if not held:
            return []
        with _dynamodb_faults("unsubscribe"):
            with self._subscriptions.batch_write() as batch:
                for topic in held:
                    batch.delete(self._subscriptions(topic, connection.connection_id))
            self._connections(connection.connection_id).update(actions=[self._connections.topics.delete(set(held))])
        return held

    def remove(self, connection_id: str) -> int:
        """Delete the connection and every subscription it holds; returns subscriptions deleted."""
        found = self.get(connection_id)
        topics = sorted(found.topics) if found else []
        with _dynamodb_faults("remove connection"):
            with self._subscriptions.batch_write() as batch:
                for topic in topics:
                    batch.delete(self._subscriptions(topic, connection_id))
            self._connections(connection_id).delete()
        return len(topics)

    def subscribers(self, topic: str) -> list[str]:
        """Connection ids subscribed to `topic`: one Query (paginated), keys only."""
        with _dynamodb_faults("query subscribers"):
            return [
                item.connection_id for item in self._subscriptions.query(topic, attributes_to_get=["connection_id"])
            ]

    def subscriptions_of(self, topic: str) -> list[tuple[str, str | None]]:
        """(connection id, scope) of each subscriber of `topic`: one Query (paginated)."""
        with _dynamodb_faults("query subscribers"):
            return [
                (item.connection_id, item.scope)
                for item in self._subscriptions.query(topic, attributes_to_get=["connection_id", "scope"])
            ]


def create_realtime_tables(connections_table: str, subscriptions_table: str, region: str) -> None:
    """Create both tables if missing (local mode and tests; CDK owns them in AWS)."""
    for model, name in ((ConnectionItem, connections_table), (SubscriptionItem, subscriptions_table)):
        bound = bind(model, name, region)
        if not bound.exists():
            bound.create_table(wait=True)


class MemoryConnectionStore:
    """In-memory twin of `DynamoConnectionStore` (same rules), counting its Queries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.connections: dict[str, Connection] = {}
        self.subscriptions: dict[str, dict[str, datetime]] = {}
        #: (topic, connection id) → the subscriber's scope (absent: everything).
        self.scopes: dict[tuple[str, str], str | None] = {}
        self.queries = 0

    def add(self, connection: Connection) -> None:
        with self._lock:
            self.connections[connection.connection_id] = connection

    def get(self, connection_id: str) -> Connection | None:
        return self.connections.get(connection_id)

    def subscribe(
        self, connection: Connection, topics: Sequence[str], *, limit: int, scope: str | None = None
    ) -> list[str]:
        with self._lock:
            current = self.connections.get(connection.connection_id)
            if current is None:
                raise TooManyTopics("connection is gone", field="topics")
            new = [t for t in topics if t not in current.topics]
            if len(current.topics) + len(new) > limit:
                raise TooManyTopics(f"at most {limit} topics per connection", field="topics")
            self.connections[connection.connection_id] = _with_topics(current, current.topics | set(new))
            for topic in new:
                self.subscriptions.setdefault(topic, {})[connection.connection_id] = connection.expires_at
                self.scopes[(topic, connection.connection_id)] = scope
            return new

    def unsubscribe(self, connection: Connection, topics: Sequence[str]) -> list[str]:
        with self._lock:
            current = self.connections.get(connection.connection_id)
            held = [t for t in topics if current is not None and t in current.topics]
            for topic in held:
                self.subscriptions.get(topic, {}).pop(connection.connection_id, None)
            if current is not None:
                self.connections[connection.connection_id] = _with_topics(current, current.topics - set(held))
            return held

    def remove(self, connection_id: str) -> int:
        with self._lock:
            found = self.connections.pop(connection_id, None)
            topics = found.topics if found else frozenset()
            for topic in topics:
                self.subscriptions.get(topic, {}).pop(connection_id, None)
            return len(topics)

    def subscribers(self, topic: str) -> list[str]:
        with self._lock:
            self.queries += 1
            return sorted(self.subscriptions.get(topic, {}))

    def subscriptions_of(self, topic: str) -> list[tuple[str, str | None]]:
        with self._lock:
            self.queries += 1
            return [(c, self.scopes.get((topic, c))) for c in sorted(self.subscriptions.get(topic, {}))]


def _with_topics(connection: Connection, topics: Iterable[str]) -> Connection:
    return Connection(
        connection.connection_id,
        connection.user,
        connection.role,
        connection.connected_at,
        connection.expires_at,
        frozenset(topics),
        connection.teams,
    )
