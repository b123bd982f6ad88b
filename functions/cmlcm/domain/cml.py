"""What the product reads from a worker's CML controller, in domain terms (no HTTP, no raw JSON),
and the pure rules that decide how much of it one collection cycle reads.

Every cycle reads a running worker's fast-changing figures: usage and nodes (`GET /system_stats`)
and every lab with its details (`GET /populate_lab_tiles`, whose tiles also carry the version and
readiness). The slow-changing facts take turns, at most one a cycle, so an unchanged cycle costs
at most three requests: the licence (`GET /licensing`), the system health with the compute table
(`GET /system_health`), the system information (`GET /system_information`: readiness of a
controller without labs) and, for a worker without a running node, the activity history
(`GET /telemetry/events`). Each is read once every `cml_facts_every_cycles` cycles, the fleet's
turns spread evenly over the cycles by worker id, and all of them at once whenever the worker's
state says they may have moved (never read, CML not seen available, a licence operation pending,
or the fast read shows another version or licence flag).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Fact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- slow-changing facts: system health with the compute table, licence detail ---


class ComputeFlags(BaseModel):
    """A compute host's health flags as `GET /system_health` names them: the shape of a read
    compute (`adapters.cml.models.ComputeHealth`) and of a row of the compute table."""

    hostname: str | None = None
    is_controller: bool | None = None
    admission_state: str | None = None
    valid: bool | None = None
    kvm_vmx_enabled: bool | None = None
    enough_cpus: bool | None = None
    lld_connected: bool | None = None
    lld_synced: bool | None = None
    libvirt: bool | None = None
    fabric: bool | None = None
    device_mux: bool | None = None
    refplat_images_available: bool | None = None
    docker_shim: bool | None = None


class ComputeHealth(_Fact, ComputeFlags):
    """One row of the compute table: a compute host's health flags (`GET /system_health`) and
    its capacity (`GET /system_stats`), as read on the slow cadence."""

    compute_id: str
    cpu_count: int | None = None
    cpu_model: str | None = None
    memory_total: float | None = Field(default=None, description="Bytes")
    disk_total: float | None = Field(default=None, description="Bytes")


class SystemHealth(_Fact):
    """`GET /system_health`: overall validity, the controller's services, the compute table."""

    valid: bool | None = None
    is_licensed: bool | None = None
    is_enterprise: bool | None = None
    controller_valid: bool | None = None
    core_connected: bool | None = None
    nodes_loaded: bool | None = None
    images_loaded: bool | None = None
    computes: list[ComputeHealth] = Field(default_factory=list)


class LicenceFeature(_Fact):
    """One licensed feature (`GET /licensing` `features[]`)."""

    id: str
    name: str | None = None
    description: str | None = None
    version: str | None = None
    status: str | None = None
    in_use: int | None = None
    min: int | None = None
    max: int | None = None


class LicenceDetail(_Fact):
    """`GET /licensing` beyond the registration state: accounts, UDI, product licence, features."""

    smart_account: str | None = None
    virtual_account: str | None = None
    udi_hostname: str | None = None
    udi_product_uuid: str | None = None
    product_license: str | None = None
    is_enterprise: bool | None = None
    reservation_mode: bool | None = None
    registration_expires: str | None = None
    authorization_expires: str | None = None
    features: list[LicenceFeature] = Field(default_factory=list)


class CmlSystem(_Fact):
    """The slow-changing facts of a worker's controller, kept on the worker between reads."""

    health: SystemHealth | None = None
    licence_detail: LicenceDetail | None = None


# --- labs, as the bulk lab read gives them ---


class LabGroup(_Fact):
    """A group a lab is shared with (CML's `LabGroup`)."""

    id: str
    permission: str | None = None
    name: str | None = None


class LabDetails(BaseModel):
    """What CML says about one lab: the shape of a read lab (`CmlLab`) and of a stored one
    (`cmlcm.domain.labs.Lab`)."""

    title: str
    #: CML's state: DEFINED_ON_CORE, STOPPED or STARTED (kept as text: CML may add states).
    state: str
    owner: str | None = None
    owner_fullname: str | None = None
    description: str = ""
    notes: str = ""
    groups: tuple[LabGroup, ...] = ()
    node_count: int = 0
    link_count: int = 0
    created: datetime | None = None
    modified: datetime | None = None


class CmlLab(_Fact, LabDetails):
    """One lab as CML reports it (one tile of `GET /populate_lab_tiles`)."""

    id: str


def labs_digest(labs: Sequence[CmlLab]) -> str:
    """A fingerprint of a controller's labs: equal digests mean the labs table needs no write
    (so an unchanged cycle neither reads nor writes the labs table)."""
    rows = sorted((lab.model_dump(mode="json") for lab in labs), key=lambda row: row["id"])
    return hashlib.blake2b(json.dumps(rows, sort_keys=True).encode(), digest_size=12).hexdigest()


# --- one reading ---


class CmlReading(BaseModel):
    """One probe of a CML controller: version, readiness, usage, labs, licence, activity.

    A fact not read this time is None (or `licence_read` False for the licence fields): the
    worker keeps what it had, because nothing was said, not because CML said "none". `labs` is
    None when the labs were not read."""

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
    #: Whether `GET /licensing` was read this time (the licence fields above mean something).
    licence_read: bool = True
    health: SystemHealth | None = None
    licence_detail: LicenceDetail | None = None
    labs: tuple[CmlLab, ...] | None = None
    #: Requests this reading made (logins included): what the collection's figures count.
    requests: int = 0


Fact = Literal["licence", "health", "information", "activity"]
#: The slow facts in the order of their turns.
FACTS: tuple[Fact, ...] = ("licence", "health", "information", "activity")


def _always(reading: CmlReading) -> bool:
    return True


@dataclass(frozen=True)
class ReadPlan:
    """What one read of a controller fetches besides the fast figures.

    `facts`: the slow facts to read now. `known_version` / `known_licensed` (the system health's
    licence flag): what the worker recorded; a fast read showing otherwise reads the licence and
    health at once. `activity(reading)`: given the fast reading of a controller with no running
    node, whether an idle decision needs the telemetry history now (a recent login is the one
    thing that could change it); a busy controller never needs it."""

    facts: frozenset[Fact] = frozenset(FACTS)
    known_version: str | None = None
    known_licensed: bool | None = None
    activity: Callable[[CmlReading], bool] = _always


#: Everything, as the saga, an on-demand refresh and a worker's first cycle read it.
FULL_READ = ReadPlan()


def facts_turn(worker_id: str, *, now: datetime, every: int, interval_minutes: int) -> frozenset[Fact]:
    """The slow facts whose turn it is for this worker this cycle: each once every `every`
    cycles (all of them every cycle with 1); cycles are numbered by `now` over the collection
    interval, and each worker's turns are offset by a hash of its id, so a fleet's slow reads are
    spread evenly over the cycles. With `every` >= 4, at most one fact a cycle."""
    position = turn_position(worker_id, now=now, every=every, interval_minutes=interval_minutes)
    return frozenset(fact for index, fact in enumerate(FACTS) if index % max(1, every) == position)


def turn_position(worker_id: str, *, now: datetime, every: int, interval_minutes: int) -> int:
    """Where this cycle falls in the worker's round of `every` cycles (0 to `every` - 1): cycles
    are numbered by `now` over the collection interval and offset by a hash of the worker's id,
    so over any `every` consecutive cycles each worker takes each position exactly once and a
    fleet's workers are spread evenly over the positions."""
    every = max(1, every)
    cycle = int(now.timestamp() // (interval_minutes * 60))
    return (cycle + zlib.crc32(worker_id.encode())) % every


__all__ = [
    "FACTS",
    "FULL_READ",
    "CmlLab",
    "CmlReading",
    "CmlSystem",
    "Fact",
    "ComputeHealth",
    "LabGroup",
    "LicenceDetail",
    "LicenceFeature",
    "ReadPlan",
    "SystemHealth",
    "facts_turn",
    "labs_digest",
    "turn_position",
]
