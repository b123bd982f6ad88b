"""`CmlProbe` over the CML client: what collection and the saga read from each worker's CML."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from cmlcm.adapters.cml.client import CmlClient
from cmlcm.adapters.cml.credentials import CmlCredentials, SecretsManagerCredentials
from cmlcm.adapters.cml.endpoints import resolve_cml_base_url
from cmlcm.adapters.cml.errors import CmlBadResponse, CmlNotReady
from cmlcm.adapters.cml.models import LabTiles, SystemInformation
from cmlcm.adapters.cml.session import CmlFleetSession
from cmlcm.adapters.cml.tls import tls_verify_from_setting
from cmlcm.adapters.cml.tokens import TokenCache
from cmlcm.config import FunctionConfig
from cmlcm.domain.cml import FULL_READ, CmlReading, ReadPlan
from cmlcm.domain.workers import Worker

if TYPE_CHECKING:
    import httpx  # an in-process transport only (tests, the in-process simulator)

T = TypeVar("T")

#: Telemetry categories that mean a person used the worker (idle detection's activity signal).
ACTIVITY_CATEGORIES = {"start_lab", "stop_lab", "start_node", "stop_node", "import_lab", "export_lab", "user_activity"}
#: Sockets one controller's read may hold: an unchanged cycle keeps at most three requests in
#: flight (stats, lab tiles, the slow fact whose turn it is); a full read's five queue briefly.
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

    async def read(self, worker: Worker, plan: ReadPlan = FULL_READ) -> CmlReading:
        """What `plan` asks for (see `_read`). A booting controller is reported as not ready,
        whatever its other answers were. The controller's sockets close when its read is done,
        so a fleet read holds at most (controllers read at once) x `CONNECTIONS_PER_CONTROLLER`
        sockets."""
        async with self._session.controller(self._probe.base_url(worker)) as cml:
            return await _read(cml, plan, manager=self._probe.credentials().username)


async def _read(cml: CmlClient, plan: ReadPlan, *, manager: str) -> CmlReading:
    """One controller's reading, in one round trip after login (a second only for the activity
    history, or when the first shows a fact must be read at once):

    * every time: `GET /system_stats` (usage, nodes) and `GET /populate_lab_tiles` (every lab
      with its details in one request, and the controller's version and readiness on each tile);
    * the slow facts `plan.facts` names: `GET /licensing`, `GET /system_health`,
      `GET /system_information`, and `GET /telemetry/events` for a controller without a running
      node (also when `plan.activity` says an idle decision needs it);
    * the licence and health at once when the tiles show another version or licence flag than
      the worker recorded; the system information when no tile carries it and the read had to
      log in (a restarted controller: is it ready?) or met a fault (booting?).
    """
    requests, logins = cml.requests, cml.logins
    want = plan.facts
    stats, tiles, information, licensing, health = await asyncio.gather(
        _attempt(cml.system_stats()),
        _attempt(cml.lab_tiles()),
        _attempt(cml.system_information()) if "information" in want else _skipped(),
        _attempt(cml.licensing_status()) if "licence" in want else _skipped(),
        _attempt(cml.system_health()) if "health" in want else _skipped(),
    )
    if information is None and isinstance(tiles, LabTiles):
        information = tiles.system_information
    if information is None and (
        cml.logins != logins
        or plan.known_version is None
        or isinstance(stats, Exception)
        or isinstance(tiles, Exception)
    ):
        # No tile carried it: ask when the answer may differ from what the worker recorded; a
        # booting controller says so here, and that outranks whatever the other requests met.
        information = await _attempt(cml.system_information())
    if information is None:
        # A controller without labs, answering as before on the session it had: still the
        # release and readiness recorded (checked again on its information turn).
        information = SystemInformation(version=plan.known_version or "", ready=True)
    # Readiness first: a booting controller (CmlNotReady) or an unsupported release, whatever
    # else answered. One check per outcome (not a loop) so the type checker narrows each.
    if isinstance(information, Exception):
        raise information
    _check_release(information)
    if isinstance(stats, Exception):
        raise stats
    if isinstance(tiles, Exception):
        raise tiles
    moved = information.version != plan.known_version or (
        tiles.is_licensed is not None and tiles.is_licensed != plan.known_licensed
    )
    if moved and (licensing is None or health is None):
        # Another release, or the licence flag flipped: the licence and health now, not on their turn.
        licensing, health = await asyncio.gather(
            _attempt(cml.licensing_status()) if licensing is None else _done(licensing),
            _attempt(cml.system_health()) if health is None else _done(health),
        )
    if isinstance(licensing, Exception):
        raise licensing
    if isinstance(health, Exception):
        raise health
    labs = tiles.labs
    reading = CmlReading(
        version=information.version,
        ready=information.ready,
        cpu_percent=stats.cpu_percent,
        memory_percent=stats.memory_percent,
        disk_percent=stats.disk_percent,
        nodes_total=stats.total_nodes,
        nodes_running=stats.running_nodes,
        labs_total=len(labs),
        labs_running=sum(1 for lab in labs if lab.running),
        licensed=licensing.licensed if licensing else None,
        registration_status=licensing.registration_status if licensing else None,
        authorization_status=licensing.authorization_status if licensing else None,
        licence_expires=licensing.registration_expires if licensing else None,
        last_activity_at=max((lab.modified for lab in labs if lab.modified), default=None),
        licence_read=licensing is not None,
        health=health.to_domain(stats) if health else None,
        licence_detail=licensing.detail() if licensing else None,
        labs=tuple(lab.to_domain() for lab in labs),
    )
    if stats.running_nodes == 0 and ("activity" in want or plan.activity(reading)):
        # Running nodes are activity enough; only an idle-looking worker needs the (whole)
        # telemetry history read to find its last login or lab action.
        since = datetime.now(UTC) - ACTIVITY_WINDOW
        events = await cml.telemetry_events(since=since, categories=ACTIVITY_CATEGORIES)
        # The manager's own logins are no one's use of the worker: a collector's login (each
        # cold start, each token expiry) would otherwise keep every worker "active" forever.
        latest = max((e.timestamp for e in events if not _is_login_of(e.data, manager)), default=None)
        if latest is not None and (reading.last_activity_at is None or latest > reading.last_activity_at):
            reading = reading.model_copy(update={"last_activity_at": latest})
    return reading.model_copy(update={"requests": cml.requests - requests})


async def _attempt(call: Awaitable[T]) -> T | Exception:
    """The call's answer or its fault, so every outcome of a read is weighed before one is raised."""
    try:
        return await call
    except Exception as exc:  # noqa: BLE001 - returned like gather's outcomes, raised by the caller
        return exc


def _skipped() -> asyncio.Future[None]:
    """A request not made, as an answer already there: `gather` wraps no task around it (a
    read's unchanged cycle skips two or three of its five; a task each cost CPU for nothing)."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


async def _done(value: T) -> T:
    return value


def _check_release(information: SystemInformation) -> None:
    """`CmlBadResponse` for a release the product does not support; `CmlNotReady` while booting."""
    if not information.supported:
        raise CmlBadResponse(f"CML {information.version} is not supported (2.8 or a later 2.x is required)")
    if not information.ready:
        raise CmlNotReady(f"CML {information.version} is booting (ready=false)")


class FleetProbe:
    """Builds sessions for the deployment's endpoint mode, TLS setting and credentials."""

    def __init__(
        self,
        config: FunctionConfig,
        credentials: SecretsManagerCredentials | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config
        self._credentials = credentials or SecretsManagerCredentials(config.cml_credentials_secret, config.aws_region)
        self._verify = tls_verify_from_setting(config.cml_tls_verify)
        self._tokens = TokenCache()  # lives as long as the cold start: tokens survive invocations
        self._transport = transport

    def base_url(self, worker: Worker) -> str:
        return resolve_cml_base_url(
            instance_id=worker.instance_id,
            public_ip=worker.public_ip,
            private_ip=worker.private_ip,
            mode=self._config.cml_endpoint_mode,
            template=self._config.cml_endpoint_template,
        )

    def credentials(self) -> CmlCredentials:
        return self._credentials()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[FleetReader]:
        async with CmlFleetSession(
            self._credentials,
            verify=self._verify,
            timeout=self._config.cml_timeout_seconds,
            connections_per_controller=CONNECTIONS_PER_CONTROLLER,
            # Lab details queue here rather than for a socket (a socket wait spends the call's deadline).
            lab_concurrency=CONNECTIONS_PER_CONTROLLER,
            token_cache=self._tokens,
            transport=self._transport,
        ) as session:
            yield FleetReader(self, session)


def fleet_probe(config: FunctionConfig) -> FleetProbe:
    return FleetProbe(config)
