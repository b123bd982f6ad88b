"""Async CML 2.9 client (httpx). One `CmlSession` per event loop serves a whole fleet through one
connection pool; `CmlClient` is a view of it bound to one controller's base URL.

Tokens come from `POST /authenticate` and are cached per base URL in a `TokenCache` that outlives
sessions (a warm Lambda reuses them); a 401 triggers exactly one re-login and retry. Every fault
becomes a classified `CmlError`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from pydantic import ValidationError

from cmlcm.adapters.cml.credentials import CmlCredentials
from cmlcm.adapters.cml.errors import (
    CmlAuthError,
    CmlBadResponse,
    CmlError,
    CmlNotFound,
    CmlNotReady,
    CmlRejected,
    CmlTimeout,
    CmlUnreachable,
)
from cmlcm.adapters.cml.models import LabSummary, LicensingStatus, SystemHealth, SystemInformation, SystemStats, TelemetryEvent

log = logging.getLogger(__name__)
_warned_insecure = threading.Event()


def tls_verify_from_setting(setting: str) -> bool | str:
    """"true" → system CAs, "false" → no verification (only when said explicitly, and logged
    once), anything else → path of a CA bundle (CML ships a self-signed certificate)."""
    value = setting.strip()
    if value.lower() == "true":
        return True
    if value.lower() == "false":
        if not _warned_insecure.is_set():
            _warned_insecure.set()
            log.warning("CML TLS verification is OFF by configuration (CML_TLS_VERIFY=false)")
        return False
    if not value:
        raise ValueError("CML_TLS_VERIFY is empty: say true, false, or a CA bundle path")
    return value


class TokenCache:
    """JWTs per base URL; thread-safe, independent of event loops."""

    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, base_url: str) -> str | None:
        with self._lock:
            return self._tokens.get(base_url)

    def put(self, base_url: str, token: str) -> None:
        with self._lock:
            self._tokens[base_url] = token

    def drop(self, base_url: str, token: str | None = None) -> None:
        with self._lock:
            if token is None or self._tokens.get(base_url) == token:
                self._tokens.pop(base_url, None)


class CmlSession:
    """Owns the connection pool for many controllers; use as `async with CmlSession(...)`."""

    def __init__(
        self,
        credentials: Callable[[], CmlCredentials],
        *,
        verify: bool | str = True,
        timeout: float = 10.0,
        max_connections: int = 100,
        token_cache: TokenCache | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.credentials = credentials
        self.tokens = token_cache or TokenCache()
        self.timeout = timeout
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self.http = httpx.AsyncClient(verify=verify, timeout=timeout, limits=limits, transport=transport)
        self._login_locks: dict[str, asyncio.Lock] = {}

    def client(self, base_url: str) -> CmlClient:
        return CmlClient(self, base_url.rstrip("/"))

    def login_lock(self, base_url: str) -> asyncio.Lock:
        return self._login_locks.setdefault(base_url, asyncio.Lock())

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> CmlSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _error_description(response: httpx.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict) and "description" in body:
            return str(body["description"])[:300]
    except ValueError:
        pass
    return response.text[:200] or response.reason_phrase


class CmlClient:
    """One controller's API. Methods return models from `models.py` or raise a `CmlError`."""

    def __init__(self, session: CmlSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    # --- transport ---

    async def _send(self, method: str, path: str, *, token: str | None, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            # httpx times each phase; the deadline here bounds the whole call, slow drips included.
            return await asyncio.wait_for(
                self.session.http.request(method, f"{self.base_url}{path}", headers=headers, **kwargs),
                timeout=self.session.timeout,
            )
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise CmlTimeout(f"{method} {path}: no answer within {self.session.timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise CmlUnreachable(f"{method} {path}: {type(exc).__name__}") from exc

    async def _login(self, stale: str | None) -> str:
        async with self.session.login_lock(self.base_url):
            cached = self.session.tokens.get(self.base_url)
            if cached and cached != stale:
                return cached  # another task logged in meanwhile
            creds = self.session.credentials()
            response = await self._send(
                "POST", "/authenticate", token=None, json={"username": creds.username, "password": creds.password}
            )
            if response.status_code in (401, 403):
                raise CmlAuthError(f"login refused: {_error_description(response)}")
            token = self._json(self._checked(response, "POST /authenticate"), "POST /authenticate")
            if not isinstance(token, str) or not token:
                raise CmlBadResponse("POST /authenticate did not return a token string")
            self.session.tokens.put(self.base_url, token)
            return token

    async def _request(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> httpx.Response:
        if not auth:
            return self._checked(await self._send(method, path, token=None, **kwargs), f"{method} {path}")
        token = self.session.tokens.get(self.base_url) or await self._login(None)
        response = await self._send(method, path, token=token, **dict(kwargs))
        if response.status_code == 401:
            self.session.tokens.drop(self.base_url, token)
            token = await self._login(token)
            response = await self._send(method, path, token=token, **kwargs)
            if response.status_code == 401:
                raise CmlAuthError(f"{method} {path}: token refused right after login")
        return self._checked(response, f"{method} {path}")

    @staticmethod
    def _checked(response: httpx.Response, what: str) -> httpx.Response:
        status = response.status_code
        if status < 300:
            return response
        detail = _error_description(response)
        if status == 404:
            raise CmlNotFound(f"{what}: {detail}")
        if status in (400, 409):
            raise CmlRejected(f"{what}: {detail}")
        if status == 503:
            raise CmlNotReady(f"{what}: {detail}")
        if status in (401, 403):
            raise CmlAuthError(f"{what}: {detail}")
        raise CmlBadResponse(f"{what}: HTTP {status}: {detail}")

    @staticmethod
    def _json(response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except (ValueError, json.JSONDecodeError) as exc:
            raise CmlBadResponse(f"{what}: body is not JSON") from exc

    async def _get_json(self, path: str, *, auth: bool = True, **kwargs: Any) -> Any:
        return self._json(await self._request("GET", path, auth=auth, **kwargs), f"GET {path}")

    @staticmethod
    def _model(model: Any, data: Any, what: str) -> Any:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise CmlBadResponse(f"{what}: unexpected body ({exc.error_count()} problems)") from exc

    # --- system ---

    async def system_information(self) -> SystemInformation:
        """Unauthenticated; `ready` false while CML boots."""
        return self._model(SystemInformation, await self._get_json("/system_information", auth=False), "system_information")

    async def system_health(self) -> SystemHealth:
        return self._model(SystemHealth, await self._get_json("/system_health"), "system_health")

    async def system_stats(self) -> SystemStats:
        return self._model(SystemStats, await self._get_json("/system_stats"), "system_stats")

    # --- labs ---

    async def list_lab_ids(self) -> list[str]:
        ids = await self._get_json("/labs", params={"show_all": "true"})
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise CmlBadResponse("GET /labs: expected a list of lab ids")
        return ids

    async def get_lab(self, lab_id: str) -> LabSummary:
        body = await self._get_json(f"/labs/{lab_id}")
        if isinstance(body, dict):
            body = {"id": lab_id, **body}
        return self._model(LabSummary, body, f"labs/{lab_id}")

    async def list_labs(self) -> list[LabSummary]:
        """Ids, then every lab's details concurrently; a lab deleted in between is skipped."""
        ids = await self.list_lab_ids()

        async def one(lab_id: str) -> LabSummary | None:
            try:
                return await self.get_lab(lab_id)
            except CmlNotFound:
                return None

        return [lab for lab in await asyncio.gather(*(one(i) for i in ids)) if lab is not None]

    async def _lab_action(self, lab_id: str, action: str) -> None:
        await self._request("PUT", f"/labs/{lab_id}/{action}")

    async def start_lab(self, lab_id: str) -> None:
        await self._lab_action(lab_id, "start")

    async def stop_lab(self, lab_id: str) -> None:
        await self._lab_action(lab_id, "stop")

    async def wipe_lab(self, lab_id: str) -> None:
        await self._lab_action(lab_id, "wipe")

    async def delete_lab(self, lab_id: str) -> None:
        await self._request("DELETE", f"/labs/{lab_id}")

    async def check_if_converged(self, lab_id: str) -> bool:
        value = await self._get_json(f"/labs/{lab_id}/check_if_converged")
        if not isinstance(value, bool):
            raise CmlBadResponse("check_if_converged: expected a boolean")
        return value

    async def download_lab(self, lab_id: str) -> str:
        """The lab's topology as CML YAML text (sent as a JSON string, or as the raw text)."""
        response = await self._request("GET", f"/labs/{lab_id}/download")
        try:
            body = response.json()
        except ValueError:
            return response.text
        if not isinstance(body, str):
            raise CmlBadResponse("download: expected the lab YAML")
        return body

    async def import_lab(self, yaml_text: str, *, title: str | None = None) -> str:
        """POST /import with the raw YAML; returns the new lab's id."""
        params = {"title": title} if title else None
        response = await self._request(
            "POST", "/import", content=yaml_text.encode(), params=params, headers={"Content-Type": "application/x-yaml"}
        )
        body = self._json(response, "POST /import")
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise CmlBadResponse("POST /import: no lab id in the answer")
        return body["id"]

    # --- licensing ---

    async def licensing_status(self) -> LicensingStatus:
        body = await self._get_json("/licensing")
        if not isinstance(body, dict):
            raise CmlBadResponse("GET /licensing: expected an object")
        return LicensingStatus.parse(body)

    async def register_licence(self, token: str, *, reregister: bool = False) -> None:
        """Starts registration (204); it completes in the background: poll `licensing_status`."""
        await self._request("POST", "/licensing/registration", json={"token": token, "reregister": reregister})

    async def deregister_licence(self) -> str:
        """"completed" (204) or "local_only" (202: done on the controller only); an already
        deregistered controller answers 400 → `CmlRejected`."""
        response = await self._request("DELETE", "/licensing/deregistration")
        return "local_only" if response.status_code == 202 else "completed"

    # --- activity ---

    async def telemetry_events(self, *, since: datetime | None = None, categories: set[str] | None = None) -> list[TelemetryEvent]:
        """CML returns the whole history; filter here by time and category."""
        raw = await self._get_json("/telemetry/events")
        if not isinstance(raw, list):
            raise CmlBadResponse("GET /telemetry/events: expected a list")
        events = [self._model(TelemetryEvent, item, "telemetry event") for item in raw]
        return [
            e for e in events
            if (since is None or e.timestamp >= since) and (categories is None or e.category in categories)
        ]


__all__ = ["CmlClient", "CmlError", "CmlSession", "TokenCache", "tls_verify_from_setting"]
