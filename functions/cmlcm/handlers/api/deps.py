"""What the API routes use: the ports from `cmlcm.wiring`, unless a test overrides them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cmlcm import wiring
from cmlcm.domain.access import EVERYTHING, Scope, scope_for
from cmlcm.handlers.api.auth import caller_of
from cmlcm.ports import JobSchedules, JobStarter, ScheduleRepository
from cmlcm.services.collect import CollectPorts
from cmlcm.services.labs import LabPorts
from cmlcm.services.licences import LicencePorts
from cmlcm.services.policy import PolicyPorts
from cmlcm.services.provisioning import ProvisionPorts
from cmlcm.services.settings import ScheduleRates
from cmlcm.services.workers import WorkerPorts

_workers: WorkerPorts | None = None
_ops: wiring.OpsPorts | None = None
_collect: CollectPorts | None = None
_provision: ProvisionPorts | None = None
_schedules: ScheduleRates | None = None
_clock: Callable[[], datetime] | None = None
_labs: LabPorts | None = None
_licences: LicencePorts | None = None
_policy: PolicyPorts | None = None
_job_schedules: JobSchedules | None = None
_job_starter: JobStarter | None = None


def ports() -> WorkerPorts:
    return _workers or wiring.worker_ports()


def ops() -> wiring.OpsPorts:
    return _ops or wiring.ops_ports()


def collect_ports() -> CollectPorts:
    return _collect or wiring.collect_ports()


def policy_ports() -> PolicyPorts:
    return _policy or wiring.policy_ports()


def schedule_store() -> ScheduleRepository:
    store = policy_ports().schedules
    if store is None:  # the wiring always has one; a test's ports may not
        raise RuntimeError("no schedule store is wired")
    return store


def provision_ports() -> ProvisionPorts:
    return _provision or wiring.provision_ports()


def labs() -> LabPorts:
    return _labs or wiring.lab_ports()


def licences() -> LicencePorts:
    return _licences or wiring.licence_ports()


def schedules() -> ScheduleRates | None:
    return _schedules if _schedules is not None else wiring.schedules()


def scope(event: Any) -> Scope:
    """The workers this request's caller may see (per-user scoping; admins: all, without reading
    the settings)."""
    caller = caller_of(event)
    if caller.role == "admin":
        return EVERYTHING
    settings = ports().settings.get()
    return scope_for(caller, scoping=settings.worker_scoping, team_tag_key=settings.team_tag_key)


def job_schedules() -> JobSchedules | None:
    """The jobs' schedules (None in a deployment without any)."""
    return _job_schedules if _job_schedules is not None else wiring.schedules()


def job_starter() -> JobStarter:
    return _job_starter or wiring.job_starter()


def new_run_name() -> str:
    """The name of a run started by hand (execution name, reconciler run id)."""
    return f"manual-{uuid.uuid4().hex}"


def new_worker_id() -> str:
    """Ids are made at the edge, like time: services take them as arguments."""
    return f"w-{uuid.uuid4().hex[:17]}"


def now() -> datetime:
    """The edge owns the clock: services get `now` as an argument."""
    return _clock() if _clock else datetime.now(UTC)


def override(
    ports_: WorkerPorts | None,
    clock: Callable[[], datetime] | None = None,
    *,
    ops_: wiring.OpsPorts | None = None,
    collect: CollectPorts | None = None,
    provision: ProvisionPorts | None = None,
    schedules_: ScheduleRates | None = None,
) -> None:
    """Swap the adapters (tests); `override(None)` goes back to the real ones."""
    global _workers, _ops, _collect, _provision, _schedules, _clock
    _workers, _ops, _collect, _provision, _schedules, _clock = ports_, ops_, collect, provision, schedules_, clock
    wiring.reset()


def override_policy(policy_: PolicyPorts | None) -> None:
    """Swap the policy ports (tests); `override_policy(None)` goes back to the real ones."""
    global _policy
    _policy = policy_


def override_jobs(schedules_: JobSchedules | None, starter: JobStarter | None = None) -> None:
    """Swap the jobs' schedules and starter (tests); `override_jobs(None)` goes back to the real ones."""
    global _job_schedules, _job_starter
    _job_schedules, _job_starter = schedules_, starter


def override_labs(labs_: LabPorts | None, licences_: LicencePorts | None = None) -> None:
    """Swap the lab and licence ports (tests); `override_labs(None)` goes back to the real ones."""
    global _labs, _licences
    _labs, _licences = labs_, licences_
