"""A keep-alive connection the server closed behind the client's back (real CML's web server closes
idle ones) must not turn a healthy controller into an `unreachable` worker: an idempotent request
is sent once more on a fresh connection; a request that is not safe to repeat is not."""

from __future__ import annotations

import asyncio

import pytest

from cmlcm.adapters.cml.client import CmlClient
from cmlcm.adapters.cml.credentials import CmlCredentials
from cmlcm.adapters.cml.errors import CmlUnreachable
from cmlcm.adapters.cml.session import CmlFleetSession
from cmlcm.adapters.cml.tokens import TokenCache

SYSTEM_INFORMATION = b'{"version": "2.9.0", "ready": true}'


class ClosingServer:
    """HTTP/1.1 over a raw socket: answers each connection's first request with a keep-alive
    response; a second request on the same connection is read and the connection closed without
    an answer ("Server disconnected without sending a response"), as when a server's idle timeout
    fires the moment the client reuses the connection. Records every request it read."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[str] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> ClosingServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/api/v0"

    async def _read_request(self, reader: asyncio.StreamReader) -> str:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next((int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length")), 0)
        if length:
            await reader.readexactly(length)
        request_line = lines[0].decode()
        self.requests.append(request_line)
        return request_line

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            request_line = await self._read_request(reader)
            body = b'"a-token"' if "/authenticate" in request_line else SYSTEM_INFORMATION
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            await self._read_request(reader)  # the reuse: read it, answer nothing
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection first
        writer.close()


def credentials() -> CmlCredentials:
    return CmlCredentials("admin", "secret")


@pytest.mark.parametrize("pooled", [False, True], ids=["client", "fleet-session"])
def test_a_read_on_a_connection_the_server_closed_is_sent_again_and_succeeds(pooled):
    async def scenario() -> tuple[ClosingServer, list[str]]:
        async with ClosingServer() as server:
            if pooled:
                session = CmlFleetSession(credentials, token_cache=TokenCache())
                cml = session.client(server.base_url)
            else:
                cml = CmlClient(server.base_url, credentials, token_cache=TokenCache())
            versions = []
            for _ in range(3):
                versions.append((await cml.system_information()).version)
            await (session.aclose() if pooled else cml.aclose())
            return server, versions

    server, versions = asyncio.run(scenario())
    assert versions == ["2.9.0"] * 3
    # Each read after the first met a closing connection and went out again on a new one.
    reads = [r for r in server.requests if "/system_information" in r]
    assert len(reads) == 5 and server.connections == 3


def test_a_request_not_safe_to_repeat_is_not_sent_twice():
    async def scenario() -> tuple[ClosingServer, Exception | None]:
        async with ClosingServer() as server:
            cml = CmlClient(server.base_url, credentials, token_cache=TokenCache())
            await cml.system_information()  # logs in; both connections answered once
            try:
                await cml.start_lab("4f3c1d7e-0000-4000-8000-000000000001")
                failure = None
            except CmlUnreachable as exc:
                failure = exc
            await cml.aclose()
            return server, failure

    server, failure = asyncio.run(scenario())
    # The server read the start and closed without an answer: it may have started the lab, so the
    # client reports the fault instead of starting it a second time.
    assert [r for r in server.requests if "/start" in r] == [
        "PUT /api/v0/labs/4f3c1d7e-0000-4000-8000-000000000001/start HTTP/1.1"
    ]
    assert isinstance(failure, CmlUnreachable) and "disconnected" in str(failure).lower()
