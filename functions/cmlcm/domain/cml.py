"""What the product reads from a worker's CML controller, in domain terms (no HTTP, no raw JSON)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class CmlReading(BaseModel):
    """One probe of a CML controller: version, readiness, usage, labs, licence, activity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str | None = None
    ready: bool = False
    cpu_percent: float | None = None
    memory_percent: float | None = None
    disk_percent: float | None = None
    nodes_total: int | None = None
    nodes_running: int | None = None
    labs_total: int | None = None
    labs_running: int | None = None
    licensed: bool | None = None
    registration_status: str | None = None
    authorization_status: str | None = None
    licence_expires: str | None = None
    last_activity_at: datetime | None = None
