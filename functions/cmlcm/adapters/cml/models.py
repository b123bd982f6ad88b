"""Anti-corruption layer: CML's JSON parsed into the few models the product uses.

Parsing is lenient where CML may add fields (extra keys are ignored) and strict where the product
depends on a value (required fields, types). The client turns any `ValidationError` into
`CmlBadResponse`; a raw dict never leaves the adapter.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: CML releases the product speaks to: real clients refuse 3.x and 2.7 or older.
MIN_SUPPORTED_VERSION = (2, 8)
MAX_SUPPORTED_MAJOR = 2


class _Cml(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


def _aware(value: datetime | None) -> datetime | None:
    """CML writes UTC; a timestamp without an offset is read as UTC so comparisons never mix."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


# --- system ---


class SystemInformation(_Cml):
    """`GET /system_information` (unauthenticated): version and readiness."""

    version: str
    ready: bool
    allow_ssh_pubkey_auth: bool | None = None
    oui: str | None = None

    @property
    def version_tuple(self) -> tuple[int, ...]:
        """`"2.9.0"` → (2, 9, 0); non-numeric parts (e.g. `+build`) end the tuple."""
        parts: list[int] = []
        for piece in self.version.split("+")[0].split("-")[0].split("."):
            if not piece.isdigit():
                break
            parts.append(int(piece))
        return tuple(parts)

    @property
    def supported(self) -> bool:
        """True for 2.8 and later 2.x releases."""
        version = self.version_tuple
        return len(version) >= 2 and version[0] <= MAX_SUPPORTED_MAJOR and version[:2] >= MIN_SUPPORTED_VERSION


class ComputeHealth(_Cml):
    """One compute host's health as `system_health` reports it."""

    valid: bool | None = None
    hostname: str | None = None
    admission_state: str | None = None
    is_controller: bool | None = None


class ControllerHealth(_Cml):
    valid: bool
    core_connected: bool | None = None
    nodes_loaded: bool | None = None
    images_loaded: bool | None = None


class SystemHealth(_Cml):
    """`GET /system_health`: overall validity, licence flags, per-compute health."""

    valid: bool | None
    is_licensed: bool | None = None
    is_enterprise: bool = False
    computes: dict[str, ComputeHealth]
    controller: ControllerHealth | None = None

    @property
    def healthy_computes(self) -> int:
        return sum(1 for compute in self.computes.values() if compute.valid)


class _Amount(_Cml):
    used: float
    total: float
    free: float | None = None

    @property
    def percent(self) -> float | None:
        return round(100.0 * self.used / self.total, 1) if self.total else None


class _Cpu(_Cml):
    count: int | None = None
    percent: float | None = None


class _DomInfo(_Cml):
    total_nodes: int | None = None
    running_nodes: int | None = None
    allocated_cpus: int | None = None
    allocated_memory: int | None = None


class _ComputeStats(_Cml):
    cpu: _Cpu = _Cpu()
    dominfo: _DomInfo = _DomInfo()


class _Compute(_Cml):
    hostname: str | None = None
    is_controller: bool | None = None
    stats: _ComputeStats


class _Totals(_Cml):
    cpu: _Cpu
    memory: _Amount
    disk: _Amount


class StatsSummary(_Cml):
    """The capacity figures the product stores, computed once from `system_stats`."""

    cpu_percent: float | None
    cpu_count: int | None
    memory_used: float
    memory_total: float
    memory_percent: float | None
    disk_used: float
    disk_total: float
    disk_percent: float | None
    total_nodes: int
    running_nodes: int
    computes: int


class SystemStats(_Cml):
    """`GET /system_stats`: totals over all computes plus each compute's node counts."""

    all: _Totals
    computes: dict[str, _Compute] = {}

    @property
    def cpu_percent(self) -> float | None:
        return self.all.cpu.percent

    @property
    def memory_percent(self) -> float | None:
        return self.all.memory.percent

    @property
    def disk_percent(self) -> float | None:
        return self.all.disk.percent

    @property
    def total_nodes(self) -> int:
        """Nodes defined on all computes (CML reports them per compute only)."""
        return sum(c.stats.dominfo.total_nodes or 0 for c in self.computes.values())

    @property
    def running_nodes(self) -> int:
        """Nodes running on all computes: the strongest 'someone is using it' signal."""
        return sum(c.stats.dominfo.running_nodes or 0 for c in self.computes.values())

    @property
    def summary(self) -> StatsSummary:
        return StatsSummary(
            cpu_percent=self.cpu_percent,
            cpu_count=self.all.cpu.count,
            memory_used=self.all.memory.used,
            memory_total=self.all.memory.total,
            memory_percent=self.memory_percent,
            disk_used=self.all.disk.used,
            disk_total=self.all.disk.total,
            disk_percent=self.disk_percent,
            total_nodes=self.total_nodes,
            running_nodes=self.running_nodes,
            computes=len(self.computes),
        )


# --- labs ---


class LabSummary(_Cml):
    """One lab as the product shows it (`GET /labs/{id}`)."""

    id: str
    title: str = Field(alias="lab_title")
    state: str
    owner: str | None = Field(default=None, alias="owner_username")
    node_count: int = 0
    link_count: int = 0
    created: datetime | None = None
    modified: datetime | None = None
    description: str = Field(default="", alias="lab_description")

    @field_validator("created", "modified")
    @classmethod
    def as_utc(cls, value: datetime | None) -> datetime | None:
        return _aware(value)

    @property
    def running(self) -> bool:
        return self.state == "STARTED"


class ImportResult(_Cml):
    """`POST /import`: the new lab's id and CML's warnings (Markdown), if any."""

    id: str
    warnings: list[str] | None = None


# --- licensing ---


class _Registration(_Cml):
    status: str | None = None
    expires: str | None = None


class _Authorization(_Cml):
    status: str | None = None
    expires: str | None = None


class _ProductLicense(_Cml):
    active: str | None = None
    is_enterprise: bool | None = None


class LicensingStatus(_Cml):
    """`GET /licensing`, flattened to what the product shows and decides on."""

    registration_status: str | None = None
    registration_expires: str | None = None
    authorization_status: str | None = None
    authorization_expires: str | None = None
    is_enterprise: bool | None = None
    active: str | None = None
    features: int = 0

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, body: Any) -> Any:
        """Accept CML's nested document; nested parts are validated by their own models."""
        if not isinstance(body, dict) or "registration_status" in body:
            return body
        registration = _Registration.model_validate(body.get("registration") or {})
        authorization = _Authorization.model_validate(body.get("authorization") or {})
        product = _ProductLicense.model_validate(body.get("product_license") or {})
        features = body.get("features") or []
        if not isinstance(features, list):
            raise ValueError("features is not a list")
        return {
            "registration_status": registration.status,
            "registration_expires": registration.expires,
            "authorization_status": authorization.status,
            "authorization_expires": authorization.expires,
            "is_enterprise": product.is_enterprise,
            "active": product.active,
            "features": len(features),
        }

    @classmethod
    def parse(cls, body: dict[str, Any]) -> LicensingStatus:
        """Kept for callers that parse the raw document explicitly."""
        return cls.model_validate(body)

    @property
    def licensed(self) -> bool:
        return self.registration_status == "COMPLETED" and self.authorization_status in ("IN_COMPLIANCE", "AUTHORIZED")


# --- activity ---


class TelemetryEvent(_Cml):
    """One `GET /telemetry/events` entry (category is kept as text: CML adds categories)."""

    category: str
    timestamp: datetime
    data: dict[str, Any] = {}

    @field_validator("timestamp")
    @classmethod
    def as_utc(cls, value: datetime) -> datetime:
        return _aware(value) or value


__all__ = [
    "ComputeHealth",
    "ControllerHealth",
    "ImportResult",
    "LabSummary",
    "LicensingStatus",
    "StatsSummary",
    "SystemHealth",
    "SystemInformation",
    "SystemStats",
    "TelemetryEvent",
]
