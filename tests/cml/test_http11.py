"""The lean HTTP/1.1 client the CML client uses over real sockets (`http11.Http11Pool`), against
scripted servers on loopback: framing (content-length, chunked, until close, 1xx, gzip),
keep-alive reuse and a connection the server closed, deadlines, TLS verification on and off, and
answers that are not HTTP, each ending in the `CmlError` class the product records."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import zlib
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from cmlcm import aio
from cmlcm.adapters.cml.client import CmlClient
from cmlcm.adapters.cml.credentials import CmlCredentials
from cmlcm.adapters.cml.errors import CmlBadResponse, CmlTimeout, CmlUnreachable
from cmlcm.adapters.cml.http11 import Http11Pool, MalformedAnswer, ServerDisconnected
from cmlcm.adapters.cml.tokens import TokenCache
from cmlsim.tls import self_signed

INFO = b'{"version": "2.9.0", "ready": true}'
T = TypeVar("T")

#: What a scripted server does with one request: the bytes to send back (written in pieces of
#: `piece` bytes when set), None to close without answering, or a coroutine to run instead.
Script = Callable[[int, str], bytes | None | Callable[[asyncio.StreamWriter], Awaitable[None]]]


def ok(body: bytes = INFO, *, headers: str = "content-type: application/json\r\n") -> bytes:
    return b"HTTP/1.1 200 OK\r\n" + f"{headers}content-length: {len(body)}\r\n\r\n".encode() + body


class ScriptedServer:
    """HTTP/1.1 on a loopback socket: reads each request (head and content-length body) and
    answers with `script(request_number, request_line)`; records requests and connections."""

    def __init__(self, script: Script, *, piece: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.piece = piece
        self.tls = tls
        self.requests: list[str] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> ScriptedServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{port}/api/v0"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                length = next(
                    (int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length")), 0
                )
                if length:
                    await reader.readexactly(length)
                line = lines[0].decode()
                self.requests.append(line)
                answer = self.script(len(self.requests), line)
                if answer is None:
                    break
                if callable(answer):
                    await answer(writer)
                    continue
                step = self.piece or len(answer)
                for start in range(0, len(answer), step):
                    writer.write(answer[start : start + step])
                    await writer.drain()
                    if self.piece:
                        await asyncio.sleep(0.001)  # separate reads on the client's side
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


#: The event loop each test runs on: asyncio's own and uvloop's (the collector's, `cmlcm.aio`).
_LOOP: dict[str, Callable[[], asyncio.AbstractEventLoop] | None] = {"factory": None}


@pytest.fixture(autouse=True, params=["asyncio", "uvloop"])
def event_loop_kind(request: pytest.FixtureRequest) -> Any:
    _LOOP["factory"] = aio.loop_factory() if request.param == "uvloop" else None
    assert request.param == "asyncio" or _LOOP["factory"] is not None, "uvloop is a runtime dependency"
    yield request.param
    _LOOP["factory"] = None


def run(coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=_LOOP["factory"]) as runner:
        return runner.run(coro)


def client(base_url: str, **kwargs: object) -> CmlClient:
    return CmlClient(base_url, lambda: CmlCredentials("admin", "pw"), token_cache=TokenCache(), **kwargs)  # type: ignore[arg-type]


async def get(server: ScriptedServer, pool: Http11Pool, path: str = "/system_information") -> tuple[int, bytes]:
    answer = await pool.exchange("GET", server.base_url + path)
    return answer.status, answer.content


def test_content_length_body_in_pieces_and_the_connection_is_reused():
    async def go() -> tuple[list[tuple[int, bytes]], int, int]:
        async with ScriptedServer(lambda n, line: ok(), piece=7) as server:
            pool = Http11Pool(server.base_url, max_connections=4)
            answers = [await get(server, pool) for _ in range(3)]
            await pool.aclose()
            return answers, server.connections, pool.connections_opened

    answers, connections, opened = run(go())
    assert answers == [(200, INFO)] * 3
    assert connections == opened == 1  # one keep-alive connection carried all three


def test_chunked_body_with_extensions_and_trailers():
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\n"
        b"5;name=value\r\n" + INFO[:5] + b"\r\n" + f"{len(INFO) - 5:x}".encode() + b"\r\n" + INFO[5:] + b"\r\n"
        b"0\r\nx-trailer: yes\r\n\r\n"
    )

    async def go() -> tuple[list[tuple[int, bytes]], int]:
        async with ScriptedServer(lambda n, line: chunked, piece=3) as server:
            pool = Http11Pool(server.base_url)
            answers = [await get(server, pool) for _ in range(2)]
            await pool.aclose()
            return answers, server.connections

    answers, connections = run(go())
    assert answers == [(200, INFO)] * 2 and connections == 1


@pytest.mark.parametrize(
    ("coding", "encode"),
    [("gzip", gzip.compress), ("deflate", zlib.compress)],
)
def test_a_compressed_body_is_decoded(coding, encode):  # noqa: ANN001
    answer = ok(encode(INFO), headers=f"content-type: application/json\r\ncontent-encoding: {coding}\r\n")

    async def go() -> str:
        async with ScriptedServer(lambda n, line: answer) as server:
            async with client(server.base_url) as cml:
                return (await cml.system_information()).version

    assert run(go()) == "2.9.0"


def test_a_body_that_ends_with_the_connection_and_interim_answers():
    # HTTP/1.0 style: no length, the body ends when the server closes; a 100 Continue first.
    def script(n: int, line: str) -> object:
        async def answer(writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n")
            writer.write(INFO)
            await writer.drain()
            writer.close()

        return answer

    async def go() -> tuple[list[tuple[int, bytes]], int]:
        async with ScriptedServer(script) as server:  # type: ignore[arg-type]
            pool = Http11Pool(server.base_url)
            answers = [await get(server, pool) for _ in range(2)]
            await pool.aclose()
            return answers, server.connections

    answers, connections = run(go())
    assert answers == [(200, INFO)] * 2 and connections == 2  # such a connection is never reused


def test_an_idle_connection_the_server_closed_is_not_reused():
    # The server answers, then closes the idle connection (its idle timeout): the pool sees the
    # close before sending and opens a fresh connection, with no fault and no retry.
    def script(n: int, line: str) -> object:
        async def answer_then_close(writer: asyncio.StreamWriter) -> None:
            writer.write(ok())
            await writer.drain()
            writer.close()

        return answer_then_close

    async def go() -> tuple[list[tuple[int, bytes]], int, int]:
        async with ScriptedServer(script) as server:  # type: ignore[arg-type]
            pool = Http11Pool(server.base_url)
            first = await get(server, pool)
            await asyncio.sleep(0.05)  # the server's close arrives while the connection is idle
            second = await get(server, pool)
            await pool.aclose()
            return [first, second], server.connections, len(server.requests)

    answers, connections, requests = run(go())
    assert answers == [(200, INFO)] * 2 and connections == 2 and requests == 2


def test_a_request_the_server_read_and_dropped_is_a_server_disconnect_then_a_retried_get():
    # Each connection answers its first request and drops the second unanswered (the race of a
    # server's idle timeout with the client's reuse).
    async def pool_level() -> Exception | None:
        async with ScriptedServer(lambda n, line: ok() if n == 1 else None) as server:
            pool = Http11Pool(server.base_url)
            await get(server, pool)
            try:
                await get(server, pool)
            except ServerDisconnected as exc:
                return exc
            finally:
                await pool.aclose()
            return None

    failure = run(pool_level())
    assert isinstance(failure, ServerDisconnected) and "without sending a response" in str(failure)

    async def client_level() -> tuple[str, int]:
        answered: dict[int, int] = {}

        def script(n: int, line: str) -> bytes | None:
            connection = server.connections
            answered[connection] = answered.get(connection, 0) + 1
            return ok() if answered[connection] == 1 else None

        async with ScriptedServer(script) as server:
            async with client(server.base_url) as cml:
                await cml.system_information()
                version = (await cml.system_information()).version  # dropped, sent again, answered
            return version, server.connections

    version, connections = run(client_level())
    assert version == "2.9.0" and connections == 2


def test_a_deadline_closes_the_connection_so_a_late_answer_is_never_read_as_the_next_one():
    def script(n: int, line: str) -> object:
        if n == 1:

            async def late(writer: asyncio.StreamWriter) -> None:
                await asyncio.sleep(0.5)
                writer.write(ok(b'{"version": "9.9.9", "ready": true}'))
                await writer.drain()

            return late
        return ok()

    async def go() -> tuple[Exception | None, str, int]:
        async with ScriptedServer(script) as server:  # type: ignore[arg-type]
            async with client(server.base_url, timeout=0.2) as cml:
                try:
                    await cml.system_information()
                    failure = None
                except CmlTimeout as exc:
                    failure = exc
                version = (await cml.system_information()).version
            return failure, version, server.connections

    failure, version, connections = run(go())
    assert isinstance(failure, CmlTimeout) and failure.kind == "timeout" and "0.2 s" in str(failure)
    assert version == "2.9.0" and connections == 2


def test_the_pool_never_opens_more_than_its_connections():
    def script(n: int, line: str) -> object:
        async def slow(writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(0.05)
            writer.write(ok())
            await writer.drain()

        return slow

    async def go() -> tuple[list[tuple[int, bytes]], int]:
        async with ScriptedServer(script) as server:  # type: ignore[arg-type]
            pool = Http11Pool(server.base_url, max_connections=2)
            answers = await asyncio.gather(*(get(server, pool) for _ in range(6)))
            await pool.aclose()
            return list(answers), server.connections

    answers, connections = run(go())
    assert answers == [(200, INFO)] * 6 and connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"HTTP/1.1 2OO OK\r\ncontent-length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\ncontent-length: lots\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: 4\r\n\r\nnope",
        b"HTTP/1.1 200 OK\r\n bad header\r\ncontent-length: 2\r\n\r\n{}",
    ],
    ids=["not-http", "bad-status", "bad-length", "two-lengths", "bad-chunk", "bad-gzip", "bad-header"],
)
def test_an_answer_that_is_not_http_is_a_bad_response_and_not_repeated(answer):  # noqa: ANN001
    async def go() -> tuple[Exception | None, int]:
        async with ScriptedServer(lambda n, line: answer) as server:
            async with client(server.base_url) as cml:
                try:
                    await cml.system_information()
                except CmlBadResponse as exc:
                    return exc, len(server.requests)
            return None, len(server.requests)

    failure, requests = run(go())
    assert isinstance(failure, CmlBadResponse) and failure.kind == "bad_response"
    assert "GET /system_information" in str(failure) and requests == 1
    assert isinstance(failure.__cause__, MalformedAnswer)


def test_a_refused_connection_is_unreachable():
    async def go() -> Exception | None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        async with client(f"http://127.0.0.1:{port}/api/v0") as cml:
            try:
                await cml.system_information()
            except CmlUnreachable as exc:
                return exc
        return None

    failure = run(go())
    assert isinstance(failure, CmlUnreachable) and "ConnectError" in str(failure)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    pair = self_signed(tmp_path_factory.mktemp("tls"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pair.certfile, pair.keyfile)
    return pair.certfile, context


@pytest.mark.parametrize(
    ("verify", "trusted"),
    [("bundle", True), (True, False), (False, True)],
    ids=["ca-bundle", "system-cas", "verification-off"],
)
def test_tls_verifies_with_the_setting(certificate, verify, trusted):  # noqa: ANN001
    certfile, server_context = certificate
    setting = str(certfile) if verify == "bundle" else verify

    async def go() -> object:
        async with ScriptedServer(lambda n, line: ok(), tls=server_context) as server:
            async with client(server.base_url, verify=setting) as cml:
                try:
                    return (await cml.system_information()).version
                except CmlUnreachable as exc:
                    return exc

    outcome = run(go())
    if trusted:
        assert outcome == "2.9.0"
    else:
        assert isinstance(outcome, CmlUnreachable) and "CERTIFICATE_VERIFY_FAILED" in str(outcome)
