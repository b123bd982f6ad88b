"""Anti-corruption layer: CML's JSON parsed into the few models the product uses.

Parsing is lenient where CML may add fields and strict where the product depends on a value;
anything unusable becomes `CmlBadResponse` in the client, never a raw dict in the domain.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Cml(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SystemInformation(_Cml):
    version: str
    ready: bool


class SystemHealth(_Cml):
    valid: bool | None = None
    is_licensed: bool | None = None
    is_enterprise: bool = False


class _Amount(_Cml):
    used: float = 0
    total: float = 0

    @property
    def percent(self) -> float | None:
        return round(100.0 * self.used / self.total, 1) if self.total else None


class _Cpu(_Cml):
    count: int | None = None
    percent: float | None = None


class _DomInfo(_Cml):
    total_nodes: int | None = None
    running_nodes: int | None = None


class _ComputeStats(_Cml):
    dominfo: _DomInfo = _DomInfo()


class _Compute(_Cml):
    stats: _ComputeStats = _ComputeStats()


class _Totals(_Cml):
    cpu: _Cpu = _Cpu()
    memory: _Amount = _Amount()
    disk: _Amount = _Amount()


class SystemStats(_Cml):
    all: _Totals = _Totals()
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
        return sum(c.stats.dominfo.total_nodes or 0 for c in self.computes.values())

    @property
    def running_nodes(self) -> int:
        return sum(c.stats.dominfo.running_nodes or 0 for c in self.computes.values())


class LabSummary(_Cml):
    """One lab as the product shows it."""

    id: str
    title: str = Field(alias="lab_title")
    state: str
    owner: str | None = Field(default=None, alias="owner_username")
    node_count: int = 0
    link_count: int = 0
    created: datetime | None = None
    modified: datetime | None = None
    description: str = Field(default="", alias="lab_description")

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class LicensingStatus(_Cml):
    registration_status: str | None = None
    registration_expires: str | None = None
    authorization_status: str | None = None
    authorization_expires: str | None = None
    is_enterprise: bool | None = None
    active: str | None = None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> LicensingStatus:
        registration = body.get("registration") or {}
        authorization = body.get("authorization") or {}
        product = body.get("product_license") or {}
        return cls(
            registration_status=registration.get("status"),
            registration_expires=registration.get("expires"),
            authorization_status=authorization.get("status"),
            authorization_expires=authorization.get("expires"),
            is_enterprise=product.get("is_enterprise"),
            active=product.get("active"),
        )

    @property
    def licensed(self) -> bool:
        return self.registration_status == "COMPLETED" and self.authorization_status in ("IN_COMPLIANCE", "AUTHORIZED")


class TelemetryEvent(_Cml):
    category: str
    timestamp: datetime
    data: dict[str, Any] = {}
