"""Anti-corruption layer: CML's JSON parsed into the few models the product uses.

Parsing is lenient where CML may add fields (extra keys are ignored) and strict where the product
depends on a value (required fields, types). The client turns any `ValidationError` into
`CmlBadResponse`; a raw dict never leaves the adapter.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cmlcm.domain import cml as domain
from cmlcm.domain.cml import CmlLab, LabGroup, LicenceDetail, LicenceFeature

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


class ComputeHealth(_Cml, domain.ComputeFlags):
    """One compute host's health as `system_health` reports it."""


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

    def to_domain(self, stats: SystemStats | None) -> domain.SystemHealth:
        """The compute table: each compute's health flags with its capacity from `stats`."""
        computes = []
        for compute_id, health in sorted(self.computes.items()):
            capacity = stats.computes.get(compute_id) if stats is not None else None
            computes.append(
                domain.ComputeHealth(
                    compute_id=compute_id,
                    **health.model_dump(),
                    cpu_count=capacity.stats.cpu.count if capacity else None,
                    cpu_model=capacity.stats.cpu.model if capacity else None,
                    memory_total=capacity.stats.memory.total if capacity and capacity.stats.memory else None,
                    disk_total=capacity.stats.disk.total if capacity and capacity.stats.disk else None,
                )
            )
        controller = self.controller
        return domain.SystemHealth(
            valid=self.valid,
            is_licensed=self.is_licensed,
            is_enterprise=self.is_enterprise,
            controller_valid=controller.valid if controller else None,
            core_connected=controller.core_connected if controller else None,
            nodes_loaded=controller.nodes_loaded if controller else None,
            images_loaded=controller.images_loaded if controller else None,
            computes=computes,
        )


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
    model: str | None = None


class _DomInfo(_Cml):
    total_nodes: int | None = None
    running_nodes: int | None = None
    allocated_cpus: int | None = None
    allocated_memory: int | None = None


class _ComputeStats(_Cml):
    cpu: _Cpu = _Cpu()
    memory: _Amount | None = None
    disk: _Amount | None = None
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


class _LabGroup(_Cml):
    id: str
    permission: str | None = None
    name: str | None = None


class LabSummary(_Cml):
    """One lab as the product shows it (`GET /labs/{id}`, or one tile of `GET /populate_lab_tiles`)."""

    id: str
    title: str = Field(alias="lab_title")
    state: str
    owner: str | None = Field(default=None, alias="owner_username")
    owner_fullname: str | None = None
    node_count: int = 0
    link_count: int = 0
    created: datetime | None = None
    modified: datetime | None = None
    description: str = Field(default="", alias="lab_description")
    notes: str = Field(default="", alias="lab_notes")
    groups: tuple[LabGroup, ...] = ()

    @field_validator("created", "modified")
    @classmethod
    def as_utc(cls, value: datetime | None) -> datetime | None:
        return _aware(value)

    @field_validator("groups", mode="before")
    @classmethod
    def _groups(cls, value: Any) -> Any:
        """CML's `LabGroup`s (extra keys ignored), as the domain's; null means none."""
        if value is None:
            return ()
        if not isinstance(value, list):
            raise ValueError("groups is not a list")
        return tuple(LabGroup(**_LabGroup.model_validate(group).model_dump()) for group in value)

    @property
    def running(self) -> bool:
        return self.state == "STARTED"

    def to_domain(self) -> CmlLab:
        return CmlLab(
            id=self.id,
            title=self.title,
            state=self.state,
            owner=self.owner,
            owner_fullname=self.owner_fullname,
            description=self.description,
            notes=self.notes,
            groups=self.groups,
            node_count=self.node_count,
            link_count=self.link_count,
            created=self.created,
            modified=self.modified,
        )


class _TileHealth(_Cml):
    """The `health` a tile carries (CML's system health, typed as a stub in the document)."""

    is_licensed: bool | None = None


class LabTile(LabSummary):
    """One tile of `GET /populate_lab_tiles`: the lab's fields, plus the controller's system
    information and health (the same on every tile)."""

    #: The map's key is the lab's id; CML repeats it inside (the key is authoritative).
    id: str = ""
    system_information: SystemInformation | None = None
    health: _TileHealth | None = None


class LabTiles(_Cml):
    """`GET /populate_lab_tiles`: every lab the user may see, in one request."""

    lab_tiles: dict[str, LabTile]

    @property
    def labs(self) -> list[LabTile]:
        """The tiles by id, each with its key as its id."""
        return [
            tile if tile.id == key else tile.model_copy(update={"id": key})
            for key, tile in sorted(self.lab_tiles.items())
        ]

    @property
    def system_information(self) -> SystemInformation | None:
        """The controller's, from any tile (None without labs)."""
        return next((tile.system_information for tile in self.lab_tiles.values() if tile.system_information), None)

    @property
    def is_licensed(self) -> bool | None:
        return next((tile.health.is_licensed for tile in self.lab_tiles.values() if tile.health), None)


class ImportResult(_Cml):
    """`POST /import`: the new lab's id and CML's warnings (Markdown), if any."""

    id: str
    warnings: list[str] | None = None


# --- licensing ---


class _Registration(_Cml):
    status: str | None = None
    expires: str | None = None
    smart_account: str | None = None
    virtual_account: str | None = None


class _Udi(_Cml):
    hostname: str | None = None
    product_uuid: str | None = None


class _Feature(_Cml):
    id: str
    name: str | None = None
    description: str | None = None
    version: str | None = None
    status: str | None = None
    in_use: int | None = None
    min: int | None = None
    max: int | None = None


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
    smart_account: str | None = None
    virtual_account: str | None = None
    udi_hostname: str | None = None
    udi_product_uuid: str | None = None
    reservation_mode: bool | None = None
    feature_list: tuple[LicenceFeature, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, body: Any) -> Any:
        """Accept CML's nested document; nested parts are validated by their own models."""
        if not isinstance(body, dict) or "registration_status" in body:
            return body
        registration = _Registration.model_validate(body.get("registration") or {})
        authorization = _Authorization.model_validate(body.get("authorization") or {})
        product = _ProductLicense.model_validate(body.get("product_license") or {})
        udi = _Udi.model_validate(body.get("udi") or {})
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
            "smart_account": registration.smart_account,
            "virtual_account": registration.virtual_account,
            "udi_hostname": udi.hostname,
            "udi_product_uuid": udi.product_uuid,
            "reservation_mode": body.get("reservation_mode"),
            "feature_list": [LicenceFeature(**_Feature.model_validate(f).model_dump()) for f in features],
        }

    def detail(self) -> LicenceDetail:
        """The licence detail the product shows (accounts, UDI, product licence, features)."""
        return LicenceDetail(
            smart_account=self.smart_account,
            virtual_account=self.virtual_account,
            udi_hostname=self.udi_hostname,
            udi_product_uuid=self.udi_product_uuid,
            product_license=self.active,
            is_enterprise=self.is_enterprise,
            reservation_mode=self.reservation_mode,
            registration_expires=self.registration_expires,
            authorization_expires=self.authorization_expires,
            features=list(self.feature_list),
        )

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
    "LabTile",
    "LabTiles",
    "LicensingStatus",
    "StatsSummary",
    "SystemHealth",
    "SystemInformation",
    "SystemStats",
    "TelemetryEvent",
]
