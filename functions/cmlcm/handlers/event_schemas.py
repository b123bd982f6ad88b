"""JSON Schemas of the domain events on the custom EventBridge bus, one per `detail-type`, built
from the same views the REST API answers with (as the OpenAPI document is), so the published
schemas cannot drift from what the broadcaster puts on the bus.

Each schema describes the whole EventBridge event a rule's target receives: the envelope
(`source` = `cmlcm`, `detail-type` = the event type) and `detail` = the WebSocket message without
its topic (`id`, `type`, `time`, `data`, and `detail` for the types that say more than the new
state). The files live in docs/events/; a test regenerates them and compares.

    python -m cmlcm.handlers.event_schemas docs/events     # rewrite the files
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from cmlcm.domain.bus import EVENT_SOURCE
from cmlcm.domain.events import EVENT_TYPES
from cmlcm.domain.jobs import JobHeartbeat
from cmlcm.domain.workers import CauseKind, WorkerStatus
from cmlcm.handlers.api.models import WorkerView
from cmlcm.handlers.api.routes_labs import LabView

_NULLABLE_STRING = {"type": ["string", "null"]}
_CHANGED = {
    "type": "object",
    "required": ["changed"],
    "additionalProperties": False,
    "properties": {
        "changed": {"type": "array", "items": {"type": "string"}, "minItems": 1, "description": "View fields"}
    },
}
_STATUS = {"enum": [status.value for status in WorkerStatus]}
_PAUSE_FIELDS: dict[str, Any] = {
    "reason": _NULLABLE_STRING,
    "by": {**_NULLABLE_STRING, "description": "Who paused/resumed it (a user's e-mail), if a user did"},
    "auto": {"type": "boolean", "description": "True when a policy (idle, schedule), not a user, did it"},
}
_PAUSE = {
    "type": "object",
    "required": ["reason", "by", "auto"],
    "additionalProperties": False,
    "properties": _PAUSE_FIELDS,
}
_RESUME = {
    "type": "object",
    "required": ["reason", "by", "auto", "was_auto_paused"],
    "additionalProperties": False,
    "properties": {
        **_PAUSE_FIELDS,
        "was_auto_paused": {"type": ["boolean", "null"], "description": "Whether the pause it ends was a policy's"},
    },
}

#: event type → (what it means, the `data` view, the schema of `detail` or None when it has none).
CATALOG: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "worker.created": ("A worker was recorded (its saga starts at pending).", "WorkerView", None),
    "worker.changed": (
        "A worker changed without a status, pause, provisioning or licence event (tags, metrics...).",
        "WorkerView",
        _CHANGED,
    ),
    "worker.deleted": ("A worker's record was deleted; `data` is its last view.", "WorkerView", None),
    "worker.status_changed": (
        "A worker's status changed (old → new), with who or what caused it.",
        "WorkerView",
        {
            "type": "object",
            "required": ["old", "new", "cause"],
            "additionalProperties": False,
            "properties": {
                "old": _STATUS,
                "new": _STATUS,
                "cause": {
                    "type": "object",
                    "required": ["kind", "by"],
                    "additionalProperties": False,
                    "properties": {
                        "kind": {"enum": [*get_args(CauseKind), "unknown"]},
                        "by": _NULLABLE_STRING,
                    },
                },
            },
        },
    ),
    "worker.paused": (
        "A worker was paused (stopped to save cost), by a user or the idle policy.",
        "WorkerView",
        _PAUSE,
    ),
    "worker.resumed": ("A paused worker was started again.", "WorkerView", _RESUME),
    "worker.provisioning_step": (
        "A step of a worker's provisioning saga wrote its outcome (watch a create live).",
        "WorkerView",
        {
            "type": "object",
            "required": ["step", "state"],
            "additionalProperties": False,
            "properties": {"step": {"type": "string"}, "state": {"enum": ["completed", "failed"]}},
        },
    ),
    "licence.progress": (
        "A licence registration or deregistration of a worker progressed or ended.",
        "WorkerView",
        {
            "type": "object",
            "required": ["operation", "state", "reason"],
            "additionalProperties": False,
            "properties": {
                "operation": {"enum": ["none", "registering", "deregistering"]},
                "state": {"enum": ["pending", "completed", "failed", "local_only"]},
                "reason": _NULLABLE_STRING,
            },
        },
    ),
    "lab.created": ("A lab appeared on a worker's CML controller.", "LabView", None),
    "lab.changed": ("A lab of a worker changed (state, nodes...).", "LabView", _CHANGED),
    "lab.deleted": ("A lab disappeared from a worker's CML controller; `data` is its last view.", "LabView", None),
    "job.finished": ("A scheduled job run (collection, reconciler) finished.", "JobHealth", None),
}


def _model_defs(model: type[BaseModel], name: str) -> dict[str, Any]:
    """`$defs` holding `model`'s serialization schema under `name`, with the models it uses."""
    schema = model.model_json_schema(mode="serialization")
    defs: dict[str, Any] = schema.pop("$defs", {})
    defs[name] = schema
    return defs


def _job_health_defs() -> dict[str, Any]:
    """A job's GET /health entry: its heartbeat plus three computed flags (`paused`: an admin
    paused its schedule, jobs API)."""
    defs = _model_defs(JobHeartbeat, "JobHeartbeat")
    heartbeat = defs.pop("JobHeartbeat")
    defs["JobHealth"] = {
        **heartbeat,
        "title": "JobHealth",
        "required": [*heartbeat.get("required", []), "overdue", "never_ran", "paused"],
        "properties": {
            **heartbeat["properties"],
            "overdue": {"type": "boolean"},
            "never_ran": {"type": "boolean"},
            "paused": {"type": "boolean"},
        },
        "additionalProperties": False,
    }
    return defs


def schema_of(event_type: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of the EventBridge events of `event_type`."""
    description, view, detail_schema = CATALOG[event_type]
    defs = {
        "WorkerView": lambda: _model_defs(WorkerView, "WorkerView"),
        "LabView": lambda: _model_defs(LabView, "LabView"),
        "JobHealth": _job_health_defs,
    }[view]()
    detail_properties: dict[str, Any] = {
        "id": {"type": "string", "description": "The event's id (the WebSocket message has the same)"},
        "type": {"const": event_type},
        "time": {"type": "string", "format": "date-time"},
        "data": {"$ref": f"#/$defs/{view}"},
    }
    required = ["id", "type", "time", "data"]
    if detail_schema is not None:
        detail_properties["detail"] = detail_schema
        required.append("detail")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://github.com/cmlcm/events/{event_type}.schema.json",
        "title": f"{EVENT_SOURCE} {event_type}",
        "description": description,
        "type": "object",
        "required": ["version", "id", "detail-type", "source", "time", "region", "resources", "detail"],
        "properties": {
            "version": {"type": "string"},
            "id": {"type": "string", "description": "EventBridge's id of the event"},
            "detail-type": {"const": event_type},
            "source": {"const": EVENT_SOURCE},
            "account": {"type": "string"},
            "time": {"type": "string"},
            "region": {"type": "string"},
            "resources": {"type": "array", "items": {"type": "string"}},
            "detail": {
                "type": "object",
                "required": required,
                "additionalProperties": False,
                "properties": detail_properties,
            },
        },
        "$defs": defs,
    }


def render(event_type: str) -> str:
    return json.dumps(schema_of(event_type), indent=2, sort_keys=True) + "\n"


def write_all(directory: Path) -> list[Path]:
    """Write `<type>.schema.json` for every event type into `directory`."""
    if set(CATALOG) != set(EVENT_TYPES):
        raise RuntimeError(f"catalog and EVENT_TYPES differ: {sorted(set(CATALOG) ^ set(EVENT_TYPES))}")
    written = []
    for event_type in EVENT_TYPES:
        path = directory / f"{event_type}.schema.json"
        path.write_text(render(event_type))
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - a developer's command
    for path in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/events")):
        print(path)
