"""DynamoDB stream records as the broadcaster receives them, for tests that feed it by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cmlcm.config import get_config


def lab_insert_record(*, synced_at: datetime, event_id: str = "1", sequence: str = "100") -> dict[str, Any]:
    """A started lab `l-1` of worker `w-1` inserted into this config's labs table."""
    labs_table = get_config().labs_table
    return {
        "eventID": event_id,
        "eventName": "INSERT",
        "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{labs_table}/stream/x",
        "dynamodb": {
            "SequenceNumber": sequence,
            "Keys": {"worker_id": {"S": "w-1"}, "lab_id": {"S": "l-1"}},
            "NewImage": {
                "worker_id": {"S": "w-1"},
                "lab_id": {"S": "l-1"},
                "title": {"S": "demo"},
                "state": {"S": "STARTED"},
                "node_count": {"N": "3"},
                "link_count": {"N": "2"},
                "synced_at": {"S": synced_at.isoformat()},
            },
        },
    }
