"""DynamoDB conditional writes made atomic, and DynamoDB Streams iterators that expire.

- moto evaluates a ConditionExpression and then writes, with no lock between the two: two
  threads saving the same worker at version N can both pass `version = N` and one update is
  silently lost (seen in CI as a lost tag under eight concurrent PUT /tags). DynamoDB applies
  each conditional write atomically, and optimistic locking depends on it, so every item write
  of moto's DynamoDB backend runs under one lock here.
- moto keeps every shard iterator it hands out, forever; AWS expires them after 15 minutes. A
  stream pump polling a few times a second would grow memory without end: an iterator is
  forgotten once GetRecords used it (a reader always continues from NextShardIterator).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodbstreams.models import DynamoDBStreamsBackend

from cmlcm_local.moto_glue._patch import original, patch

WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
#: Held by every item write of moto's DynamoDB backend.
write_lock = threading.RLock()


def _serialized(method: Any) -> Any:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with write_lock:
            return method(*args, **kwargs)

    return locked


def get_records(self: DynamoDBStreamsBackend, iterator_arn: str, limit: int) -> dict[str, Any]:
    result: dict[str, Any] = original(DynamoDBStreamsBackend, "get_records")(self, iterator_arn, limit)
    self.shard_iterators.pop(iterator_arn, None)
    return result


def install() -> None:
    for name in WRITES:
        patch(DynamoDBBackend, name, _serialized(getattr(DynamoDBBackend, name)))
    patch(DynamoDBStreamsBackend, "get_records", get_records)
