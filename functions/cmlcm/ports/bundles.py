"""Port bundles: what each group of use cases takes as its first argument.

The container (`cmlcm.container`) builds every bundle from its own ports BY FIELD NAME: a bundle's
field `workers` is the container's `workers`, and so on (a field the container has no port for
keeps its default). So a new port a service needs is its protocol in this package plus a field
here, and one property in the container; nothing else is wired by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cmlcm.domain.labs import Lab
from cmlcm.domain.licences import REGISTRATION_DEADLINE
from cmlcm.domain.workers import Worker, WorkerSummary
from cmlcm.ports.aws import CloudWatchPort, Ec2Port, WorkflowStarter
from cmlcm.ports.cml import CmlControllers, CmlProbe
from cmlcm.ports.jobs import CollectRuns, JobRepository, JobSchedules
from cmlcm.ports.realtime import ConnectionPoster, ConnectionStore, EventBus
from cmlcm.ports.storage import (
    LabRepository,
    LicenceTokenStore,
    RefreshLimiter,
    Reservations,
    SampleRepository,
    ScheduleRepository,
    SettingsRepository,
    WorkerRepository,
)


@dataclass(frozen=True)
class WorkerPorts:
    """What the worker use cases (`services.workers`) need."""

    workers: WorkerRepository
    settings: SettingsRepository
    ec2_for: Callable[[str], Ec2Port]
    #: Releases a deleted worker's unique name (None where names are not tracked, e.g. unit tests).
    release_name: Callable[[str], None] | None = None
    #: A deleted worker's lab rows and licence token secret are forgotten here (None: not tracked).
    labs: LabRepository | None = None
    tokens: LicenceTokenStore | None = None
    #: The collection's metric samples (`GET /workers/{id}/metrics`).
    samples: SampleRepository | None = None


@dataclass(frozen=True)
class CollectPorts:
    workers: WorkerRepository
    samples: SampleRepository
    ec2_for: Callable[[str], Ec2Port]
    cloudwatch_for: Callable[[str], CloudWatchPort]
    cml: CmlProbe
    #: The fleet settings: the slow facts' cadence, idle detection and the other policies (which
    #: a collection applies unless it is asked not to: `collect(..., policies=False)`).
    settings: SettingsRepository
    #: Most CML probes in flight at once (each probe makes a few requests).
    cml_concurrency: int = 100
    #: Office-hours schedules, applied with the idle policy (`services.policy`).
    schedules: ScheduleRepository | None = None
    #: The labs table, synced from each controller's bulk lab read; None leaves it alone.
    labs: LabRepository | None = None
    #: Where a batch of a collection run stores its outcome (None: a refresh, not part of a run).
    collect_runs: CollectRuns | None = None


@dataclass(frozen=True)
class PolicyPorts:
    workers: WorkerRepository
    settings: SettingsRepository
    ec2_for: Callable[[str], Ec2Port]
    #: None: no schedules in this deployment's wiring (the idle policy still applies).
    schedules: ScheduleRepository | None = None


@dataclass(frozen=True)
class ProvisionPorts:
    workers: WorkerRepository
    settings: SettingsRepository
    ec2_for: Callable[[str], Ec2Port]
    reservations: Reservations
    workflow: WorkflowStarter
    cml: CmlProbe | None = None


@dataclass(frozen=True)
class LabPorts:
    workers: WorkerRepository
    labs: LabRepository
    cml: CmlControllers


@dataclass(frozen=True)
class LicencePorts:
    workers: WorkerRepository
    tokens: LicenceTokenStore
    cml: CmlControllers
    deadline: timedelta = REGISTRATION_DEADLINE


@dataclass(frozen=True)
class OpsPorts:
    """The jobs' heartbeats, leases and pause records, and the refresh limiter."""

    jobs: JobRepository
    refresh_limiter: RefreshLimiter


@dataclass(frozen=True)
class CollectionRunPorts:
    """A collection run's plan and summary steps: its lease and heartbeat, its batches, the
    schedules it puts back."""

    workers: WorkerRepository
    settings: SettingsRepository
    jobs: JobRepository
    job_schedules: JobSchedules
    collect_runs: CollectRuns


#: Posts in flight at once in one fan-out (each is one HTTPS call to @connections).
POST_CONCURRENCY = 32


@dataclass(frozen=True)
class SnapshotPorts:
    """What a snapshot reads, and the REST API's own view mappings (one DTO everywhere)."""

    workers: WorkerRepository
    labs: LabRepository
    jobs: JobRepository
    settings: SettingsRepository
    worker_view: Callable[[Worker], dict[str, Any]]
    #: The `fleet` snapshot's rows: the REST API's WorkerSummaryView (a subset of WorkerView).
    summary_view: Callable[[WorkerSummary], dict[str, Any]]
    lab_view: Callable[[Lab], dict[str, Any]]
    health: Callable[[JobRepository, Any, datetime], dict[str, Any]]


@dataclass(frozen=True)
class RealtimePorts:
    """What live updates need: the WebSocket records, the posts, the snapshots, the bus."""

    connections: ConnectionStore
    poster: ConnectionPoster
    snapshots: SnapshotPorts | None = None
    post_concurrency: int = POST_CONCURRENCY
    #: The custom EventBridge bus (the broadcaster's); None: events reach WebSocket clients only.
    bus: EventBus | None = None
