"""A lean asyncio HTTP/1.1 client: what the CML client sends over real sockets.

Why not httpx here: a collection makes a few thousand small requests to as many controllers, and
profiling showed httpx, httpcore and anyio taking ~90% of the collector's CPU (about 4 ms of CPU
per request on the shared 2-core host: URL models, header normalisation, h11's event machine,
anyio's cancel scopes). This module does only what a CML client needs, on an `asyncio.Protocol`
(one future per request, no task, no stream objects):

* one pool per controller (`Http11Pool`): at most `max_connections` sockets, idle ones kept alive
  for `keepalive_expiry` seconds (under the server's own idle timeout) and checked before reuse;
* TLS with the caller's `SSLContext` (the same verification options the CML setting gives);
* answers framed by `Content-Length`, chunked transfer coding, or the end of the connection;
  gzip and deflate bodies decoded; 1xx interim answers skipped;
* faults as three classes the client classifies: `ConnectError` (no connection),
  `ServerDisconnected` (the connection ended before a whole answer: for a request safe to repeat,
  the client sends it once more), `MalformedAnswer` (bytes that are not an HTTP/1.1 answer).

Deadlines are the caller's (`asyncio.timeout` around `request`): a request cancelled half-way
closes its connection, so a late answer is never read as the next request's. httpx stays for
in-process transports (tests, the in-process simulator): see `httpx_sender.py`.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

#: An answer's head (status line and headers) larger than this is not a CML answer.
MAX_HEAD_BYTES = 64 * 1024
#: Nor is a body larger than this (a lab export of a few thousand nodes is a few MB).
MAX_BODY_BYTES = 256 * 1024 * 1024
USER_AGENT = "cmlcm"

_LENGTH, _CHUNKED, _UNTIL_CLOSE = 0, 1, 2
_NO_BODY_STATUSES = frozenset({204, 304})


class HttpFault(Exception):
    """A transport fault (not an HTTP status): the CML client turns each into a `CmlError`."""


class ConnectError(HttpFault):
    """No connection: refused, no route, DNS, TLS handshake or certificate refused."""


class ServerDisconnected(HttpFault):
    """The connection closed or reset before a whole answer arrived (a keep-alive connection the
    server had closed, or a server that went away): the request may have been read."""


class MalformedAnswer(HttpFault):
    """Bytes that are not an HTTP/1.1 answer: a bad status line or header, bad framing, an
    undecodable gzip body, or an answer over the size limits."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer, read in full: header names lower-cased (repeated ones joined by ", "),
    the body decoded from its content coding."""

    status: int
    reason: str
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        """The body as text, in the charset the content type names (UTF-8 if none)."""
        charset = "utf-8"
        for part in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:  # an unknown charset name
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (`ValueError` if it is not)."""
        return json.loads(self.content)


def _decode(content: bytes, coding: str) -> bytes:
    """The body without its content coding; unknown codings are passed on as they are (as httpx
    does), an undecodable body is a `MalformedAnswer`."""
    for name in reversed([c.strip().lower() for c in coding.split(",") if c.strip()]):
        try:
            if name in ("gzip", "x-gzip"):
                content = zlib.decompress(content, 16 + zlib.MAX_WBITS)
            elif name == "deflate":
                try:
                    content = zlib.decompress(content)
                except zlib.error:  # raw deflate, as some servers send it
                    content = zlib.decompress(content, -zlib.MAX_WBITS)
        except zlib.error as exc:
            raise MalformedAnswer(f"body does not decode as {name}: {exc}") from None
    return content


class _Connection(asyncio.Protocol):
    """One socket: sends a request and parses its answer as bytes arrive."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Answer] | None = None
        self._buffer = bytearray()
        self._closed = False
        #: The server sent bytes nobody asked for, or closed its side: never reuse.
        self._spoiled = False
        #: When the connection went back to the pool (the loop's clock).
        self.idle_since = 0.0
        #: Whether the last answer left the connection fit for another request.
        self.reusable = False
        self._reset()

    def _reset(self) -> None:
        self._method = ""
        self._status = 0
        self._reason = ""
        self._version = b""
        self._headers: dict[str, str] | None = None
        self._framing = _LENGTH
        self._length = 0
        self._chunks: list[bytes] = []
        self._chunk_size: int | None = None  # size of the chunk being read; -1: in the trailers
        self._body_bytes = 0

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, whatever loop made it (uvloop's are not asyncio.Transport subclasses).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self._spoiled = True  # not an answer to anything this connection sent
            return
        self._buffer += data
        try:
            self._parse()
        except MalformedAnswer as exc:
            self._fail(exc)
        except ValueError as exc:  # an int() of a length or chunk size
            self._fail(MalformedAnswer(f"bad framing: {exc}"))

    def eof_received(self) -> bool:
        self._spoiled = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if self._headers is not None and self._framing == _UNTIL_CLOSE:
                self._finish(bytes(self._buffer), reusable=False)
            else:
                self._fail(ServerDisconnected(self._disconnected()))
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if self._headers is not None and self._framing == _UNTIL_CLOSE and exc is None:
                self._finish(bytes(self._buffer), reusable=False)
            else:
                message = self._disconnected() + (f" ({type(exc).__name__}: {exc})" if exc else "")
                self._fail(ServerDisconnected(message))

    # --- requests ---

    @property
    def alive(self) -> bool:
        """Fit to send a request on: open, and nothing arrived or closed while it was idle."""
        transport = self.transport
        return not (self._closed or self._spoiled or transport is None or transport.is_closing())

    async def send(self, method: str, data: bytes) -> Answer:
        """Send one request's bytes and wait for its whole answer."""
        assert self.transport is not None
        self.reusable = False
        self._reset()
        self._buffer.clear()
        self._method = method
        waiter: asyncio.Future[Answer] = self._loop.create_future()
        self._waiter = waiter
        self.transport.write(data)
        try:
            return await waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.close()
        self._closed = True

    def abort(self) -> None:
        """Close at once, without flushing (a request cancelled half-way)."""
        if self.transport is not None and not self._closed:
            self.transport.abort()
        self._closed = True

    # --- parsing ---

    def _disconnected(self) -> str:
        if self._headers is None and not self._buffer:
            return "Server disconnected without sending a response"
        return "Server disconnected before the whole answer arrived"

    def _fail(self, exc: HttpFault) -> None:
        self._spoiled = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def _parse(self) -> None:
        buffer = self._buffer
        while self._headers is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    raise MalformedAnswer(f"answer head over {MAX_HEAD_BYTES} bytes")
                return
            head = bytes(buffer[:end])
            del buffer[: end + 4]
            self._parse_head(head)
        if self._framing == _LENGTH:
            if len(buffer) >= self._length:
                body = bytes(buffer[: self._length])
                reusable = len(buffer) == self._length  # anything more was never asked for
                del buffer[: self._length]
                self._finish(body, reusable=reusable)
        elif self._framing == _CHUNKED:
            self._parse_chunks()
        elif len(buffer) > MAX_BODY_BYTES:
            raise MalformedAnswer(f"answer body over {MAX_BODY_BYTES} bytes")

    def _parse_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        code, _, reason = rest.partition(b" ")
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
            raise MalformedAnswer(f"not an HTTP/1.1 status line: {lines[0][:60]!r}")
        status = int(code)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise MalformedAnswer(f"bad header line: {line[:60]!r}")
            key = name.decode("latin-1").lower()
            text = value.strip().decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        if 100 <= status < 200 and status != 101:
            return  # an interim answer (100 Continue, 103 Early Hints): the real one follows
        self._version, self._status, self._reason = version, status, reason.decode("latin-1")
        if self._method == "HEAD" or status in _NO_BODY_STATUSES or status == 101:
            self._framing, self._length = _LENGTH, 0
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._framing = _CHUNKED
        elif "content-length" in headers:
            lengths = {v.strip() for v in headers["content-length"].split(",")}
            if len(lengths) != 1 or not (length := lengths.pop()).isdigit():
                raise MalformedAnswer(f"bad content-length: {headers['content-length'][:40]!r}")
            self._framing, self._length = _LENGTH, int(length)
            if self._length > MAX_BODY_BYTES:
                raise MalformedAnswer(f"answer body over {MAX_BODY_BYTES} bytes")
        else:
            self._framing = _UNTIL_CLOSE
        self._headers = headers

    def _parse_chunks(self) -> None:
        buffer = self._buffer
        while True:
            if self._chunk_size is None:  # a chunk-size line (with extensions, ignored)
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > 1024:
                        raise MalformedAnswer("chunk size line too long")
                    return
                size = int(bytes(buffer[:end]).split(b";", 1)[0].strip(), 16)
                del buffer[: end + 2]
                if size < 0:
                    raise MalformedAnswer("negative chunk size")
                self._chunk_size = size if size else -1
                self._body_bytes += size
                if self._body_bytes > MAX_BODY_BYTES:
                    raise MalformedAnswer(f"answer body over {MAX_BODY_BYTES} bytes")
            if self._chunk_size == -1:  # trailer fields, up to an empty line
                end = buffer.find(b"\r\n")
                if end < 0:
                    return
                trailer = bytes(buffer[:end])
                del buffer[: end + 2]
                if not trailer:
                    self._finish(b"".join(self._chunks), reusable=not buffer)
                    return
                continue
            needed = self._chunk_size + 2
            if len(buffer) < needed:
                return
            if buffer[self._chunk_size : needed] != b"\r\n":
                raise MalformedAnswer("chunk not followed by CRLF")
            self._chunks.append(bytes(buffer[: self._chunk_size]))
            del buffer[:needed]
            self._chunk_size = None

    def _finish(self, body: bytes, *, reusable: bool) -> None:
        headers = self._headers
        assert headers is not None and self._waiter is not None
        coding = headers.get("content-encoding")
        if coding:
            try:
                body = _decode(body, coding)
            except MalformedAnswer as exc:
                self._fail(exc)
                return
        connection = headers.get("connection", "").lower()
        if self._version == b"HTTP/1.1":
            keep_alive = "close" not in connection
        else:
            keep_alive = "keep-alive" in connection
        self.reusable = reusable and keep_alive and self._status != 101 and not self._spoiled
        self._waiter.set_result(Answer(self._status, self._reason, headers, body))
        self._headers = None


class Http11Pool:
    """Connections to one origin (`scheme://host:port` of `base_url`): at most `max_connections`
    at once, a request queueing for a free one (its wait spends the caller's deadline)."""

    def __init__(
        self,
        base_url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 8,
        keepalive_expiry: float = 4.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._host = parts.hostname
        default_port = 443 if parts.scheme == "https" else 80
        self._port = parts.port or default_port
        self._origin = f"{parts.scheme}://{parts.netloc}"
        host = f"[{self._host}]" if ":" in self._host else self._host
        host_header = host if self._port == default_port else f"{host}:{self._port}"
        #: Headers every request carries (no per-request formatting).
        self._fixed = (
            f"Host: {host_header}\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
            f"Connection: keep-alive\r\nUser-Agent: {USER_AGENT}\r\n"
        )
        if parts.scheme == "https":
            if ssl_context is None:
                raise ValueError("an https URL needs an SSL context")
            self._ssl: ssl.SSLContext | None = ssl_context
        else:
            self._ssl = None
        self._max = max_connections
        self._expiry = keepalive_expiry
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        #: Connections opened so far (each a TCP, and TLS, handshake).
        self.connections_opened = 0

    @property
    def is_closed(self) -> bool:
        return self._closed

    def encode(self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes | None) -> bytes:
        """The request's bytes: request line, headers, body."""
        parts = [f"{method} {target} HTTP/1.1\r\n", self._fixed]
        for name, value in headers:
            if "\r" in value or "\n" in value:
                raise ValueError(f"header {name} holds a line break")
            parts.append(f"{name}: {value}\r\n")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            parts.append(f"Content-Length: {len(body) if body else 0}\r\n")
        parts.append("\r\n")
        data = "".join(parts).encode("latin-1")
        return data + body if body else data

    async def exchange(
        self, method: str, url: str, headers: Iterable[tuple[str, str]] = (), body: bytes | None = None
    ) -> Answer:
        """Send `method url` (`url` under this pool's origin) and read its whole answer."""
        if not url.startswith(self._origin):
            raise ValueError(f"{url!r} is not under {self._origin}")
        target = url[len(self._origin) :] or "/"
        data = self.encode(method, target, headers, body)
        connection = await self._acquire()
        answered = False
        try:
            answer = await connection.send(method, data)
            answered = True
            return answer
        finally:
            self._release(connection, answered=answered)

    async def _acquire(self) -> _Connection:
        loop = asyncio.get_running_loop()
        while True:
            if self._closed:
                raise RuntimeError("the connection pool is closed")
            now = loop.time()
            while self._idle:
                connection = self._idle.pop()  # the most recent: the least likely to be closed
                if connection.alive and now - connection.idle_since < self._expiry:
                    return connection
                self._discard(connection)
            if len(self._open) < self._max:
                return await self._connect(loop)
            turn: asyncio.Future[None] = loop.create_future()
            self._waiters.append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._wake()  # this turn was given but not taken: pass it on
                else:
                    self._waiters.remove(turn)
                raise

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        placeholder = _Connection(loop)  # holds the slot while connecting
        self._open.add(placeholder)
        try:
            _, connection = await loop.create_connection(
                lambda: _Connection(loop),
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl is not None else None,
            )
        except BaseException as exc:
            self._open.discard(placeholder)
            self._wake()  # the slot is free again
            if isinstance(exc, OSError):  # refused, unreachable, DNS (gaierror), TLS (SSLError)
                raise ConnectError(f"{type(exc).__name__}: {exc}") from exc
            raise
        self._open.discard(placeholder)
        if self._closed:
            connection.close()
            raise RuntimeError("the connection pool is closed")
        self._open.add(connection)
        self.connections_opened += 1
        return connection

    def _release(self, connection: _Connection, *, answered: bool) -> None:
        if answered and connection.reusable and not self._closed and connection.alive:
            connection.idle_since = asyncio.get_running_loop().time()
            self._idle.append(connection)
        else:
            if answered:
                connection.close()  # the answer said so (Connection: close), or it ended the stream
            else:
                # Not answered in full (a fault, or a deadline that cancelled the wait): the answer
                # may still come, so the connection can never carry another request.
                connection.abort()
            self._open.discard(connection)
        self._wake()

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._open.discard(connection)

    def _wake(self) -> None:
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                return

    async def aclose(self) -> None:
        """Close every connection; a request still in flight fails."""
        self._closed = True
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)  # its acquire sees the pool closed


__all__ = ["Answer", "ConnectError", "Http11Pool", "HttpFault", "MalformedAnswer", "ServerDisconnected"]
