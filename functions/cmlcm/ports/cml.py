"""CML ports: reading workers' controllers in bulk (collection) and driving one controller
(labs, licences). `cmlcm.adapters.cml` implements them."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from cmlcm.domain.cml import CmlReading, LabGroup, ReadPlan
from cmlcm.domain.workers import Worker


class CmlReader(Protocol):
    """Reads workers' CML controllers within one session; raises a `CmlError` (an
    ExternalServiceError) on a fault of that worker."""

    async def read(self, worker: Worker, plan: ReadPlan = ...) -> CmlReading:
        """What `plan` asks for (by default everything: `FULL_READ`)."""

    async def ready(self, worker: Worker) -> bool:
        """Whether CML reports `ready` (unauthenticated system_information)."""


class CmlProbe(Protocol):
    def session(self) -> AbstractAsyncContextManager[CmlReader]:
        """One connection pool for many workers, closed on exit (one per event loop)."""


class CmlLabDetails(Protocol):
    """One lab as CML reports it (the CML adapter's `LabSummary` has this shape)."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def owner_fullname(self) -> str | None: ...
    @property
    def description(self) -> str: ...
    @property
    def notes(self) -> str: ...
    @property
    def groups(self) -> Sequence[LabGroup]: ...
    @property
    def node_count(self) -> int: ...
    @property
    def link_count(self) -> int: ...
    @property
    def created(self) -> datetime | None: ...
    @property
    def modified(self) -> datetime | None: ...


class CmlLicensingDetails(Protocol):
    """`GET /licensing` as the CML adapter flattens it."""

    @property
    def registration_status(self) -> str | None: ...
    @property
    def registration_expires(self) -> str | None: ...
    @property
    def authorization_status(self) -> str | None: ...


class CmlController(Protocol):
    """One worker's CML controller (the adapter's `CmlClient`); faults raise a `CmlError`."""

    async def list_labs(self) -> Sequence[CmlLabDetails]: ...
    async def get_lab(self, lab_id: str) -> CmlLabDetails: ...
    async def start_lab(self, lab_id: str) -> None: ...
    async def stop_lab(self, lab_id: str) -> None: ...
    async def wipe_lab(self, lab_id: str) -> None: ...
    async def delete_lab(self, lab_id: str) -> None: ...
    async def download_lab(self, lab_id: str) -> str: ...
    async def import_lab(self, yaml_text: str, title: str | None = None) -> str: ...
    async def licensing_status(self) -> CmlLicensingDetails: ...
    async def register_licence(self, token: str, reregister: bool = False) -> None: ...

    async def deregister_licence(self) -> str:
        """ "completed", "local_only" or "already_deregistered"."""


class CmlControllerSession(Protocol):
    def client_for(self, worker: Worker) -> CmlController: ...


class CmlControllers(Protocol):
    """The fleet probe seen as a way to reach single controllers (`FleetProbe` fits)."""

    def session(self) -> AbstractAsyncContextManager[CmlControllerSession]: ...
