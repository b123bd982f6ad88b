"""The CML client's requests through httpx, for in-process transports: tests script answers with
`httpx.MockTransport`, and the in-process simulator is an `httpx.ASGITransport`. Real sockets go
through the lean `http11.Http11Pool` instead; both raise the same faults (`http11.HttpFault`), so
the client classifies them in one place."""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from cmlcm.adapters.cml.http11 import Answer, ConnectError, MalformedAnswer, ServerDisconnected

#: What a request sent on a connection the server had already closed fails with ("Server
#: disconnected without sending a response", a reset while reading or writing). A refused or
#: timed-out connect is not among them: that controller is down, and asking again only waits.
_STALE_CONNECTION = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class HttpxSender:
    """`exchange()` over an `httpx.AsyncClient` (closed by `aclose()` only if `owns`)."""

    def __init__(self, client: httpx.AsyncClient, *, owns: bool) -> None:
        self.client = client
        self._owns = owns

    @classmethod
    def over(cls, transport: httpx.AsyncBaseTransport) -> HttpxSender:
        """A sender of its own over `transport`."""
        return cls(httpx.AsyncClient(transport=transport), owns=True)

    @property
    def is_closed(self) -> bool:
        return self.client.is_closed

    async def exchange(
        self, method: str, url: str, headers: Iterable[tuple[str, str]] = (), body: bytes | None = None
    ) -> Answer:
        """Send and read the whole answer; the deadline is the caller's (httpx's own phase
        timeouts are off, so only that deadline applies)."""
        try:
            response = await self.client.request(method, url, headers=list(headers), content=body, timeout=None)
        except httpx.TimeoutException as exc:
            raise TimeoutError(str(exc)) from exc
        except _STALE_CONNECTION as exc:
            raise ServerDisconnected(f"{type(exc).__name__}: {exc}") from exc
        except httpx.DecodingError as exc:
            raise MalformedAnswer(f"{type(exc).__name__}: {exc}") from exc
        except httpx.TransportError as exc:
            raise ConnectError(f"{type(exc).__name__}: {exc}") from exc
        headers_out: dict[str, str] = {}
        for name, value in response.headers.multi_items():
            key = name.lower()
            headers_out[key] = f"{headers_out[key]}, {value}" if key in headers_out else value
        return Answer(response.status_code, response.reason_phrase, headers_out, response.content)

    async def aclose(self) -> None:
        if self._owns:
            await self.client.aclose()


__all__ = ["HttpxSender"]
