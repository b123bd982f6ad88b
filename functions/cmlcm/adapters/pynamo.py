"""Shared PynamoDB helpers of the DynamoDB adapters: models bound to a table, opaque page tokens,
raw maps as plain values, conditional-write failures."""

from __future__ import annotations

import base64
import binascii
import json
from functools import cache
from typing import Any, TypeVar, cast

from pynamodb.attributes import MapAttribute
from pynamodb.models import Model

from cmlcm.domain.errors import ValidationFailed


def encode_token(key: dict[str, Any] | None) -> str | None:
    """Opaque pagination token for a DynamoDB LastEvaluatedKey."""
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode().rstrip("=")


def decode_token(token: str | None) -> dict[str, Any] | None:
    """Inverse of `encode_token`; a token that was not made by it is a 422 naming `next_token`."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("next_token is not a token this API issued", field="next_token") from exc
    if not isinstance(key, dict):
        raise ValidationFailed("next_token is not a token this API issued", field="next_token")
    return key


def is_condition_failure(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


ModelT = TypeVar("ModelT", bound=Model)


def bind(model: type[ModelT], table_name: str, region: str) -> type[ModelT]:
    """A subclass of `model` pointing at `table_name` in `region` (PynamoDB keeps these on Meta)."""
    # _bind builds a subclass of `model`, so the cast states what it returns.
    return cast("type[ModelT]", _bind(model, table_name, region))


@cache
def _bind(model: type[Model], table_name: str, region: str) -> type[Model]:
    """`bind`, cached: one subclass per (model, table, region)."""
    # `Model.Meta` is typed as a protocol; at run time it is the model's own class.
    meta = type("Meta", (cast(type, model.Meta),), {"table_name": table_name, "region": region})
    return type(model.__name__, (model,), {"Meta": meta})


def plain(value: Any) -> Any:
    """PynamoDB raw maps come back as MapAttribute objects; turn them into plain dicts."""
    if isinstance(value, MapAttribute):
        return {k: plain(v) for k, v in value.as_dict().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


__all__ = ["bind", "decode_token", "encode_token", "is_condition_failure", "plain"]
