"""Many CML controllers at once: one small connection pool per controller, one TLS context and
one token cache for the whole fleet (what a collection reads through)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from cmlcm.adapters.cml.client import (
    DEFAULT_LAB_CONCURRENCY,
    DEFAULT_TIMEOUT_SECONDS,
    KEEPALIVE_EXPIRY_SECONDS,
    CmlClient,
    Sender,
)
from cmlcm.adapters.cml.credentials import CredentialsProvider
from cmlcm.adapters.cml.http11 import Http11Pool
from cmlcm.adapters.cml.tls import Verify, client_ssl_context
from cmlcm.adapters.cml.tokens import DEFAULT_TOKEN_CACHE, TokenCache

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)


class CmlFleetSession:
    """Many controllers at once: `async with CmlFleetSession(...) as fleet`, then
    `fleet.client(base_url)` per worker; clients are cached per URL so concurrent workers on the
    same controller share one login.

    Each controller gets its own small connection pool (`http11.Http11Pool`,
    `connections_per_controller` sockets), all sharing one TLS context: a controller's requests
    queue only behind its own, and its sockets close with its pool. The caller bounds how many
    controllers are read at once, so sockets stay at most (controllers in flight) ×
    `connections_per_controller`.

    With an injected `transport` (tests, the in-process simulator) there is no socket pool: one
    shared httpx client over that transport serves every controller (`http`)."""

    def __init__(
        self,
        credentials: CredentialsProvider,
        *,
        verify: Verify = True,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        connections_per_controller: int = DEFAULT_LAB_CONCURRENCY,
        token_cache: TokenCache | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        lab_concurrency: int = DEFAULT_LAB_CONCURRENCY,
    ) -> None:
        """`connections_per_controller`: size it to the requests one worker's read keeps in
        flight (a call waiting for a free connection spends its own deadline)."""
        if connections_per_controller < 1:
            raise ValueError("connections_per_controller must be at least 1")
        self.credentials = credentials
        self.tokens = token_cache if token_cache is not None else DEFAULT_TOKEN_CACHE
        self.timeout = timeout
        self.lab_concurrency = lab_concurrency
        self._context = client_ssl_context(verify)  # a missing CA bundle fails here
        self._connections = connections_per_controller
        #: The httpx client over an injected transport (raw requests in tests); None when each
        #: controller has its own pool.
        self.http: httpx.AsyncClient | None = None
        self._shared: Sender | None = None
        if transport is not None:
            from cmlcm.adapters.cml.httpx_sender import HttpxSender  # httpx only for in-process transports

            sender = HttpxSender.over(transport)
            self.http, self._shared = sender.client, sender
        self._pools: dict[str, Http11Pool] = {}
        self._clients: dict[str, CmlClient] = {}
        #: Holders of each controller's `controller()` lease; the pool closes when the last leaves.
        self._holders: dict[str, int] = {}
        #: Controllers handed out by `client()`: their pools stay open until the session closes.
        self._pinned: set[str] = set()

    def _http_for(self, base_url: str) -> Sender:
        if self._shared is not None:
            return self._shared
        # Keyed by controller URL, not host: simulated controllers share one host and port.
        pool = self._pools.get(base_url)
        if pool is None:
            pool = self._pools[base_url] = Http11Pool(
                base_url,
                ssl_context=self._context if base_url.startswith("https:") else None,
                max_connections=self._connections,
                keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
            )
        return pool

    def client(self, base_url: str) -> CmlClient:
        """The client of one controller, on its controller's pool and this session's token cache,
        open until the session closes (a `controller()` lease never closes a pool handed out here)."""
        key = base_url.rstrip("/")
        self._pinned.add(key)
        return self._client(key)

    def _client(self, key: str) -> CmlClient:
        found = self._clients.get(key)
        if found is None:
            found = self._clients[key] = CmlClient(
                key,
                self.credentials,
                timeout=self.timeout,
                token_cache=self.tokens,
                http=self._http_for(key),
                lab_concurrency=self.lab_concurrency,
            )
        return found

    @asynccontextmanager
    async def controller(self, base_url: str) -> AsyncIterator[CmlClient]:
        """The client of one controller for one piece of work: when the last holder of that
        controller is done, its pool closes (a read of 1000 workers must not keep 1000
        controllers' sockets open until the end: Lambda allows 1024 open files). Its token stays
        in the token cache."""
        key = base_url.rstrip("/")
        self._holders[key] = self._holders.get(key, 0) + 1
        try:
            yield self._client(key)
        finally:
            self._holders[key] -= 1
            if not self._holders[key]:
                del self._holders[key]
                if key not in self._pinned:
                    self._clients.pop(key, None)
                    pool = self._pools.pop(key, None)
                    if pool is not None:
                        try:
                            await pool.aclose()
                        except Exception:  # noqa: BLE001 - the read's own outcome stands; logged
                            log.warning("closing the connection pool of %s failed", key, exc_info=True)

    @property
    def pools(self) -> int:
        """Connection pools open now (one per controller in use; 0 over an injected transport)."""
        return len(self._pools)

    async def aclose(self) -> None:
        clients: list[Sender] = [*self._pools.values(), *([self._shared] if self._shared is not None else [])]
        self._pools.clear()
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)

    async def __aenter__(self) -> CmlFleetSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


__all__ = ["CmlFleetSession"]
