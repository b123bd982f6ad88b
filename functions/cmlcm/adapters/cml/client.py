"""Async client of one CML 2.9 controller.

`CmlClient(base_url, credentials_provider, verify=..., timeout=...)` talks to one controller on
its own connection pool (closed by `aclose()` / `async with`); `CmlFleetSession` (`session.py`)
hands out clients for a whole fleet. Requests go over real sockets through the lean HTTP/1.1
pool of `http11.py`, or through httpx when an in-process transport is injected (tests, the
in-process simulator; `httpx_sender.py`).

Tokens come from `POST /authenticate` and are kept per base URL in a `TokenCache` that outlives
clients and sessions (by default one per process, so a warm Lambda logs in once per controller);
a 401 triggers exactly one re-login and retry. Every fault becomes a classified `CmlError`
(`classify.py`), and every body is parsed into a model from `models.py`.

A client belongs to one event loop (its connections do); the token cache is the only state
shared across loops.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar
from urllib.parse import quote, urlencode

from pydantic import BaseModel, ValidationError

from cmlcm.adapters.cml.classify import (
    classify_fault,
    classify_status,
    error_description,
    safe_to_repeat,
    unexpected_body,
)
from cmlcm.adapters.cml.credentials import CredentialsProvider
from cmlcm.adapters.cml.errors import (
    CmlAuthError,
    CmlBadResponse,
    CmlNotFound,
    CmlNotReady,
    CmlTimeout,
)
from cmlcm.adapters.cml.http11 import Answer, Http11Pool, HttpFault, ServerDisconnected
from cmlcm.adapters.cml.models import (
    ImportResult,
    LabSummary,
    LabTiles,
    LicensingStatus,
    SystemHealth,
    SystemInformation,
    SystemStats,
    TelemetryEvent,
)
from cmlcm.adapters.cml.tls import Verify, client_ssl_context
from cmlcm.adapters.cml.tokens import DEFAULT_TOKEN_CACHE, TokenCache

if TYPE_CHECKING:
    import httpx

Model = TypeVar("Model", bound=BaseModel)
#: What `deregister_licence` reports; an already deregistered controller is an outcome, not a
#: fault, because releasing a licence must be safe to repeat (terminate retries, sagas).
DeregistrationOutcome = Literal["completed", "local_only", "already_deregistered"]

DEFAULT_TIMEOUT_SECONDS = 10.0
#: Lab detail requests one client keeps in flight during `list_labs`: a controller with 300 labs
#: must not take the whole shared pool (and eat its neighbours' deadlines while they wait).
DEFAULT_LAB_CONCURRENCY = 8
#: Sockets a stand-alone client (not a fleet session's) keeps to its controller at most.
DEFAULT_MAX_CONNECTIONS = 16
#: Idle pooled connections are dropped after this long: under the usual web servers' idle timeouts
#: (uvicorn's 5 s, nginx's 75 s), so the client closes an idle connection before the server does
#: instead of racing it. A read's requests follow each other within milliseconds, so nothing a
#: read needs is lost.
KEEPALIVE_EXPIRY_SECONDS = 4.0
#: Characters left as they are in a request path (RFC 3986 path characters); any other is escaped.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


class Sender(Protocol):
    """What sends a client's requests: `http11.Http11Pool` (sockets) or `HttpxSender`."""

    @property
    def is_closed(self) -> bool: ...

    async def exchange(
        self, method: str, url: str, headers: Iterable[tuple[str, str]] = (), body: bytes | None = None
    ) -> Answer: ...

    async def aclose(self) -> None: ...


def _httpx_sender(client: httpx.AsyncClient | None = None, transport: httpx.AsyncBaseTransport | None = None) -> Sender:
    """httpx only where an in-process transport needs it (imported on use: a collector over
    sockets never loads it)."""
    from cmlcm.adapters.cml.httpx_sender import HttpxSender

    if client is not None:
        return HttpxSender(client, owns=False)
    assert transport is not None
    return HttpxSender.over(transport)


class CmlClient:
    """One controller's API (`base_url` ends with `/api/v0`). Methods return models from
    `models.py` or raise a `CmlError`; `timeout` bounds each HTTP call, login included."""

    def __init__(
        self,
        base_url: str,
        credentials_provider: CredentialsProvider,
        *,
        verify: Verify = True,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
        token_cache: TokenCache | None = None,
        http: Sender | httpx.AsyncClient | None = None,
        lab_concurrency: int = DEFAULT_LAB_CONCURRENCY,
    ) -> None:
        """`http`: a shared sender (a fleet session's pool of this controller) or httpx client;
        then `verify`/`transport` are the owner's business and `aclose()` leaves it open.
        `transport`: an in-process httpx transport. Neither: a pool of its own over sockets."""
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.lab_concurrency = max(1, lab_concurrency)
        self._credentials = credentials_provider
        self._tokens = token_cache if token_cache is not None else DEFAULT_TOKEN_CACHE
        self._owns_http = http is None
        self._http = self._sender(http, transport, verify)
        # Concurrent calls that all see a 401 log in once, not once each.
        self._login_lock = asyncio.Lock()
        #: HTTP requests sent (logins and retries included): what a reading reports it cost.
        self.requests = 0
        #: Logins sent: a read that had to log in may be talking to a restarted controller.
        self.logins = 0

    def _sender(
        self, http: Sender | httpx.AsyncClient | None, transport: httpx.AsyncBaseTransport | None, verify: Verify
    ) -> Sender:
        if http is not None:
            return http if hasattr(http, "exchange") else _httpx_sender(client=http)
        context = client_ssl_context(verify)  # checked here: a missing CA bundle fails at construction
        if transport is not None:
            return _httpx_sender(transport=transport)
        return Http11Pool(
            self.base_url,
            ssl_context=context if self.base_url.startswith("https:") else None,
            max_connections=DEFAULT_MAX_CONNECTIONS,
            keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
        )

    def with_timeout(self, timeout: float) -> CmlClient:
        """The same client (pool, tokens, login lock) with another per-call deadline, e.g. for a
        large `import_lab`."""
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        clone = copy.copy(self)
        clone.timeout = timeout
        clone._owns_http = False  # the original closes the pool
        return clone

    async def aclose(self) -> None:
        """Close the connection pool if this client owns it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> CmlClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"CmlClient({self.base_url!r})"

    # --- transport ---

    async def _send(
        self,
        method: str,
        path: str,
        *,
        token: str | None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
    ) -> Answer:
        url = self.base_url + quote(path, safe=_PATH_SAFE)
        if params:
            url += "?" + urlencode(params)
        all_headers = list((headers or {}).items())
        if token:
            all_headers.append(("Authorization", f"Bearer {token}"))
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode()
            all_headers.append(("Content-Type", "application/json"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        retried = False
        while True:
            # One deadline bounds the whole call (waiting for a connection, connecting, a retry), so
            # a controller that drips bytes cannot hold a worker past `timeout`.
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                self.requests += 1
                # asyncio.timeout, not wait_for: no task per request (wait_for wraps one).
                async with asyncio.timeout(remaining):
                    return await self._http.exchange(method, url, all_headers, content)
            except TimeoutError as exc:
                raise CmlTimeout(f"{method} {path}: no answer within {self.timeout:g} s") from exc
            except ServerDisconnected as exc:
                if not retried and safe_to_repeat(method, path):
                    # A pooled keep-alive connection the server had closed (CML's web server closes
                    # idle ones too): the request never got an answer, so send it once more; the
                    # pool dropped the dead connection and opens a fresh one.
                    retried = True
                    continue
                raise classify_fault(exc, f"{method} {path}") from exc
            except HttpFault as exc:
                raise classify_fault(exc, f"{method} {path}") from exc

    async def _login(self, stale: str | None) -> str:
        async with self._login_lock:
            cached = self._tokens.get(self.base_url)
            if cached and cached != stale:
                return cached  # another task logged in while this one waited
            credentials = self._credentials()
            self.logins += 1
            response = await self._send(
                "POST",
                "/authenticate",
                token=None,
                json_body={"username": credentials.username, "password": credentials.password},
            )
            if response.status in (401, 403):
                raise CmlAuthError(f"login refused (HTTP {response.status}): {error_description(response)}")
            if response.status >= 300:
                raise classify_status(response, "POST /authenticate")
            token = self._json(response, "POST /authenticate")
            if not isinstance(token, str) or not token:
                raise CmlBadResponse("POST /authenticate did not return a token string")
            self._tokens.put(self.base_url, token)
            return token

    async def _request(
        self, method: str, path: str, *, auth: bool = True, accept: Collection[int] = (), **kwargs: Any
    ) -> Answer:
        """Send, logging in first if needed and once more on a 401; non-2xx answers not in
        `accept` become classified errors."""
        what = f"{method} {path}"
        if auth:
            token = self._tokens.get(self.base_url) or await self._login(None)
            response = await self._send(method, path, token=token, **kwargs)
            if response.status == 401:
                self._tokens.drop(self.base_url, token)
                token = await self._login(token)
                response = await self._send(method, path, token=token, **kwargs)
                if response.status == 401:
                    raise CmlAuthError(f"{what}: token refused right after a fresh login")
        else:
            response = await self._send(method, path, token=None, **kwargs)
        if response.status >= 300 and response.status not in accept:
            raise classify_status(response, what)
        return response

    @staticmethod
    def _json(response: Answer, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are
            raise CmlBadResponse(f"{what}: body is not JSON") from exc

    async def _get_json(self, path: str, *, auth: bool = True, **kwargs: Any) -> Any:
        return self._json(await self._request("GET", path, auth=auth, **kwargs), f"GET {path}")

    @staticmethod
    def _model(model: type[Model], data: Any, what: str) -> Model:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise unexpected_body(exc, what) from None

    async def _get_model(self, model: type[Model], path: str, *, auth: bool = True, **kwargs: Any) -> Model:
        """GET `path` and parse its body straight into `model` with pydantic's own JSON parser:
        no intermediate dicts for the fields the model ignores (a lab tile carries the node
        definitions, which the product never reads)."""
        what = f"GET {path}"
        response = await self._request("GET", path, auth=auth, **kwargs)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                raise CmlBadResponse(f"{what}: body is not JSON") from None
            raise unexpected_body(exc, what) from None

    # --- authentication ---

    async def authok(self) -> bool:
        """True when the cached (or a fresh) token is accepted."""
        await self._request("GET", "/authok")
        return True

    async def logout(self) -> None:
        """Invalidate this controller's token on the controller and in the cache."""
        token = self._tokens.get(self.base_url)
        if token is None:
            return
        await self._request("DELETE", "/logout")
        self._tokens.drop(self.base_url, token)

    # --- system ---

    async def system_information(self) -> SystemInformation:
        """Unauthenticated; `ready` is false while CML boots."""
        return await self._get_model(SystemInformation, "/system_information", auth=False)

    async def ensure_ready(self) -> SystemInformation:
        """`system_information`, raising `CmlNotReady` while booting and `CmlBadResponse` for a
        CML release the product does not support (3.x, 2.7 and older)."""
        info = await self.system_information()
        if not info.supported:
            raise CmlBadResponse(f"CML {info.version} is not supported (2.8 or a later 2.x is required)")
        if not info.ready:
            raise CmlNotReady(f"CML {info.version} is booting (ready=false)")
        return info

    async def system_health(self) -> SystemHealth:
        return await self._get_model(SystemHealth, "/system_health")

    async def system_stats(self) -> SystemStats:
        """Capacity; `.summary` has the figures the product stores."""
        return await self._get_model(SystemStats, "/system_stats")

    # --- labs ---

    async def list_lab_ids(self) -> list[str]:
        """Every lab id (admins see all users' labs with `show_all`)."""
        ids = await self._get_json("/labs", params={"show_all": "true"})
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise CmlBadResponse("GET /labs: expected a list of lab ids")
        return ids

    async def get_lab(self, lab_id: str) -> LabSummary:
        body = await self._get_json(f"/labs/{lab_id}")
        if isinstance(body, dict):
            body = {"id": lab_id, **body}
        return self._model(LabSummary, body, f"GET /labs/{lab_id}")

    async def list_labs(self) -> list[LabSummary]:
        """Ids, then every lab's details concurrently (at most `lab_concurrency` at once); a lab
        deleted in between is skipped, any other fault fails the whole listing."""
        ids = await self.list_lab_ids()
        gate = asyncio.Semaphore(self.lab_concurrency)

        async def one(lab_id: str) -> LabSummary | None:
            async with gate:
                try:
                    return await self.get_lab(lab_id)
                except CmlNotFound:
                    return None

        return [lab for lab in await asyncio.gather(*(one(i) for i in ids)) if lab is not None]

    async def lab_tiles(self) -> LabTiles:
        """Every lab with its details in ONE request (`GET /populate_lab_tiles`, what CML's own
        dashboard and virl2-client's `find_labs_by_title` read), plus the controller's system
        information and health on each tile. The collector's bulk lab read."""
        return await self._get_model(LabTiles, "/populate_lab_tiles")

    async def start_lab(self, lab_id: str) -> None:
        """Asynchronous in CML: poll `check_if_converged`."""
        await self._request("PUT", f"/labs/{lab_id}/start")

    async def stop_lab(self, lab_id: str) -> None:
        await self._request("PUT", f"/labs/{lab_id}/stop")

    async def wipe_lab(self, lab_id: str) -> None:
        await self._request("PUT", f"/labs/{lab_id}/wipe")

    async def delete_lab(self, lab_id: str) -> None:
        """CML refuses (CmlRejected) a lab that is not stopped and wiped."""
        await self._request("DELETE", f"/labs/{lab_id}")

    async def check_if_converged(self, lab_id: str) -> bool:
        value = await self._get_json(f"/labs/{lab_id}/check_if_converged")
        if not isinstance(value, bool):
            raise CmlBadResponse("check_if_converged: expected a boolean")
        return value

    async def download_lab(self, lab_id: str) -> str:
        """The lab's topology as CML YAML text. CML 2.9 sends the YAML file itself (what its own
        clients read: virl2-client's `Lab.download` returns the body's text); its OpenAPI
        document declares a JSON string, so a JSON-typed answer holding a string is unwrapped."""
        response = await self._request("GET", f"/labs/{lab_id}/download")
        if not response.headers.get("content-type", "").startswith("application/json"):
            return response.text
        body = self._json(response, f"GET /labs/{lab_id}/download")
        if not isinstance(body, str):
            raise CmlBadResponse("download: expected the lab YAML (or a JSON string holding it)")
        return body

    async def import_lab(self, yaml_text: str, title: str | None = None) -> str:
        """POST /import with the raw YAML (CML accepts it whatever the Content-Type); returns
        the new lab's id. Invalid YAML or topology → `CmlRejected` with CML's reason."""
        params = {"title": title} if title else None
        response = await self._request(
            "POST", "/import", content=yaml_text.encode(), params=params, headers={"Content-Type": "application/x-yaml"}
        )
        return self._model(ImportResult, self._json(response, "POST /import"), "POST /import").id

    # --- licensing ---

    async def licensing_status(self) -> LicensingStatus:
        return await self._get_model(LicensingStatus, "/licensing")

    async def register_licence(self, token: str, reregister: bool = False) -> None:
        """Start registration (204); it completes in the background: poll `licensing_status`
        until COMPLETED or FAILED. Already registered without `reregister` → `CmlRejected`."""
        await self._request("POST", "/licensing/registration", json_body={"token": token, "reregister": reregister})

    async def deregister_licence(self) -> DeregistrationOutcome:
        """ "completed" (204), "local_only" (202: released on the controller, Cisco's side not
        told), or "already_deregistered" (400: nothing to release; safe to repeat)."""
        response = await self._request("DELETE", "/licensing/deregistration", accept={400})
        if response.status == 400:
            return "already_deregistered"
        return "local_only" if response.status == 202 else "completed"

    # --- activity ---

    async def telemetry_events(
        self, since: datetime | None = None, categories: Collection[str] | None = None
    ) -> list[TelemetryEvent]:
        """CML returns the whole history with no filter: filter here, by `timestamp >= since`
        (a naive `since` is UTC) and by category."""
        raw = await self._get_json("/telemetry/events")
        if not isinstance(raw, list):
            raise CmlBadResponse("GET /telemetry/events: expected a list")
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        wanted = set(categories) if categories is not None else None
        events = [self._model(TelemetryEvent, item, "GET /telemetry/events") for item in raw]
        return [
            e for e in events if (since is None or e.timestamp >= since) and (wanted is None or e.category in wanted)
        ]


__all__ = [
    "DEFAULT_LAB_CONCURRENCY",
    "DEFAULT_TIMEOUT_SECONDS",
    "KEEPALIVE_EXPIRY_SECONDS",
    "CmlClient",
    "DeregistrationOutcome",
    "Sender",
]
