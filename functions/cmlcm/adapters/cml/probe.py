"""`CmlProbe` over the CML client: what collection and the saga read from each worker's CML."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from cmlcm.adapters.cml.client import (
    CmlClient,
    CmlFleetSession,
    TokenCache,
    tls_verify_from_setting,
)
from cmlcm.adapters.cml.credentials import CmlCredentials, SecretsManagerCredentials
from cmlcm.adapters.cml.endpoints import resolve_cml_base_url
from cmlcm.adapters.cml.errors import CmlNotReady
from cmlcm.adapters.cml.models import LicensingStatus, SystemInformation
from cmlcm.config import FunctionSettings
from cmlcm.domain.cml import CmlReading
from cmlcm.domain.workers import Worker

#: Telemetry categories that mean a person used the worker (idle detection's activity signal).
ACTIVITY_CATEGORIES = {"start_lab", "stop_lab", "start_node", "stop_node", "import_lab", "export_lab", "user_activity"}
#: Sockets one controller's read may hold: a read keeps three requests in flight (readiness then
#: licence, stats, lab ids then details; more labs queue for a socket inside their deadline).
#: Lambda allows 1024 open files: `CML_CONCURRENCY` (at most 250 controllers read at once) x 3 =
#: 750 sockets at most, since each controller's sockets close when its read is done
#: (`CmlFleetSession.controller`).
CONNECTIONS_PER_CONTROLLER = 3
#: How far back activity is looked for (CML returns the whole history; older is irrelevant).
ACTIVITY_WINDOW = timedelta(days=7)


def _is_login_of(data: dict[str, Any], username: str) -> bool:
    return data.get("action") == "login" and data.get("user") == username


class FleetReader:
    """Reads many workers through one session (one connection pool, one event loop)."""

    def __init__(self, probe: FleetProbe, session: CmlFleetSession) -> None:
        self._probe = probe
        self._session = session

    def client_for(self, worker: Worker) -> CmlClient:
        return self._session.client(self._probe.base_url(worker))

    async def ready(self, worker: Worker) -> bool:
        """Ready and a supported release (the saga's last gate before RUNNING)."""
        async with self._session.controller(self._probe.base_url(worker)) as cml:
            try:
                await cml.ensure_ready()
            except CmlNotReady:
                return False
            return True

    async def read(self, worker: Worker) -> CmlReading:
        """Everything one cycle needs, in two round trips after login (see `_read`). A booting
        controller is reported as not ready, whatever its other answers were. The controller's
        sockets close when its read is done, so a fleet read holds at most (controllers read at
        once) x `CONNECTIONS_PER_CONTROLLER` sockets."""
        async with self._session.controller(self._probe.base_url(worker)) as cml:
            return await self._read(cml)

    async def _read(self, cml: CmlClient) -> CmlReading:
        # Three chains at once, each two round trips at most: readiness then licence, stats, lab
        # ids then details. So a read keeps three requests in flight (with up to two labs), one
        # per socket of its controller's pool, and still takes two round trips after login.
        async def ready_then_licence() -> tuple[SystemInformation, LicensingStatus | Exception]:
            info = await cml.ensure_ready()
            try:
                return info, await cml.licensing_status()
            except Exception as exc:  # noqa: BLE001 - reported below, after stats' and labs' faults
                return info, exc

        first, stats, labs = await asyncio.gather(
            ready_then_licence(), cml.system_stats(), cml.list_labs(), return_exceptions=True
        )
        if isinstance(first, BaseException):
            raise first  # booting (CmlNotReady) or an unsupported release, whatever else answered
        info, licence = first
        # One check per outcome (not a loop) so the type checker narrows each of them.
        if isinstance(stats, BaseException):
            raise stats
        if isinstance(labs, BaseException):
            raise labs
        if isinstance(licence, BaseException):
            raise licence
        activity = [lab.modified for lab in labs if lab.modified]
        if stats.running_nodes == 0:
            # Running nodes are activity enough; only an idle-looking worker needs the (whole)
            # telemetry history read to find its last login or lab action.
            since = datetime.now(UTC) - ACTIVITY_WINDOW
            events = await cml.telemetry_events(since=since, categories=ACTIVITY_CATEGORIES)
            # The manager's own logins are no one's use of the worker: a collector's login (each
            # cold start, each token expiry) would otherwise keep every worker "active" forever.
            manager = self._probe.credentials().username
            activity += [e.timestamp for e in events if not _is_login_of(e.data, manager)]
        return CmlReading(
            version=info.version,
            ready=info.ready,
            cpu_percent=stats.cpu_percent,
            memory_percent=stats.memory_percent,
            disk_percent=stats.disk_percent,
            nodes_total=stats.total_nodes,
            nodes_running=stats.running_nodes,
            labs_total=len(labs),
            labs_running=sum(1 for lab in labs if lab.state == "STARTED"),
            licensed=licence.licensed,
            registration_status=licence.registration_status,
            authorization_status=licence.authorization_status,
            licence_expires=licence.registration_expires,
            last_activity_at=max(activity) if activity else None,
        )


class FleetProbe:
    """Builds sessions for the deployment's endpoint mode, TLS setting and credentials."""

    def __init__(
        self,
        settings: FunctionSettings,
        credentials: SecretsManagerCredentials | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._credentials = credentials or SecretsManagerCredentials(
            settings.cml_credentials_secret, settings.aws_region
        )
        self._verify = tls_verify_from_setting(settings.cml_tls_verify)
        self._tokens = TokenCache()  # lives as long as the cold start: tokens survive invocations
        self._transport = transport

    def base_url(self, worker: Worker) -> str:
        return resolve_cml_base_url(
            instance_id=worker.instance_id,
            public_ip=worker.public_ip,
            private_ip=worker.private_ip,
            mode=self._settings.cml_endpoint_mode,
            template=self._settings.cml_endpoint_template,
        )

    def credentials(self) -> CmlCredentials:
        return self._credentials()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[FleetReader]:
        async with CmlFleetSession(
            self._credentials,
            verify=self._verify,
            timeout=self._settings.cml_timeout_seconds,
            connections_per_controller=CONNECTIONS_PER_CONTROLLER,
            # Lab details queue here rather than for a socket (a socket wait spends the call's deadline).
            lab_concurrency=CONNECTIONS_PER_CONTROLLER,
            token_cache=self._tokens,
            transport=self._transport,
        ) as session:
            yield FleetReader(self, session)


def fleet_probe(settings: FunctionSettings) -> FleetProbe:
    return FleetProbe(settings)
