"""Local stand-in for the API Gateway WebSocket API, served by the local gateway on the REST port.

- `ws://<host>:<port>/ws?token=dev-viewer`: the handshake becomes a `$connect` event for the real
  WebSocket handler (the dev token is first swapped for a real RS256 token of that user, minted by
  `LocalTokenIssuer`); a non-200 answer refuses the upgrade with HTTP 401. Each text frame is routed
  as API Gateway does with `$request.body.action` (a known route key, else `$default`); closing
  the socket sends `$disconnect`.
- `POST|GET|DELETE /@connections/{id}`: the management API the product's boto3
  `apigatewaymanagementapi` client calls (endpoint_url = the gateway); a closed or unknown
  connection answers 410 GoneException, as AWS does.
- `GET /_local/cognito/.well-known/jwks.json`: the issuer's keys, read by the product's verifier.
- Local-only tools: `GET /_local/connections` (open connections), `POST
  /_local/connections/{id}/drop` (close the socket without `$disconnect`, as when API Gateway's
  `$disconnect` is lost: the next fan-out meets a 410 and cleans up).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from cmlcm.handlers.ws import MESSAGE_ROUTES
from cmlcm_local.events import FakeLambdaContext
from cmlcm_local.tokens import ISSUER_PATH, LocalTokenIssuer

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def select_route(body: str) -> str:
    """API Gateway's route selection on `$request.body.action`: a known route key, else `$default`."""
    try:
        message = json.loads(body)
    except ValueError:
        return "$default"
    action = message.get("action") if isinstance(message, dict) else None
    return action if isinstance(action, str) and action in MESSAGE_ROUTES else "$default"


def websocket_event(
    route: str,
    connection_id: str,
    *,
    body: str | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    stage: str = "local",
    domain: str = "127.0.0.1",
) -> dict[str, Any]:
    """An API Gateway WebSocket Lambda proxy event for `route`."""
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
    now_ms = int(time.time() * 1000)
    event: dict[str, Any] = {
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "connectionId": connection_id,
            "messageDirection": "IN",
            "extendedRequestId": uuid.uuid4().hex,
            "requestId": uuid.uuid4().hex,
            "requestTimeEpoch": now_ms,
            "connectedAt": now_ms,
            "domainName": domain,
            "stage": stage,
            "apiId": "local",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "isBase64Encoded": False,
    }
    if route == "$connect":
        event["headers"] = headers or {}
        event["queryStringParameters"] = query or None
    if body is not None:
        event["body"] = body
    return event


def _gone(connection_id: str) -> Response:
    return JSONResponse(
        {"__type": "GoneException", "message": f"connection {connection_id} is gone"},
        status_code=410,
        headers={"x-amzn-ErrorType": "GoneException"},
    )


@dataclass
class _Socket:
    websocket: WebSocket
    user_hint: str | None
    connected_at: datetime
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_active_at: datetime | None = None


class LocalWebSocketApi:
    """The WebSocket routes, the @connections API and the local issuer's JWKS, for one gateway."""

    def __init__(self, handler: LambdaHandler, issuer: LocalTokenIssuer) -> None:
        self._handler = handler
        self.issuer = issuer
        self._sockets: dict[str, _Socket] = {}
        #: Connections closed on purpose without `$disconnect` (see `drop`).
        self._lost: set[str] = set()
        self.posts = 0

    def routes(self) -> list[BaseRoute]:
        return [
            WebSocketRoute("/ws", self._serve),
            Route("/@connections/{connection_id}", self._post, methods=["POST"]),
            Route("/@connections/{connection_id}", self._get, methods=["GET"]),
            Route("/@connections/{connection_id}", self._delete, methods=["DELETE"]),
            Route(f"{ISSUER_PATH}/.well-known/jwks.json", self._jwks, methods=["GET"]),
            Route("/_local/connections", self._list, methods=["GET"]),
            Route("/_local/connections/{connection_id}/drop", self._drop, methods=["POST"]),
        ]

    async def _invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return await run_in_threadpool(self._handler, event, FakeLambdaContext("websocket"))

    async def _serve(self, websocket: WebSocket) -> None:
        # API Gateway's ids are opaque, URL-safe and unique per connection.
        connection_id = secrets.token_urlsafe(12)
        raw_token = websocket.query_params.get("token")
        query = dict(websocket.query_params)
        if raw_token is not None:
            query["token"] = self.issuer.token_for_dev(raw_token) or ""
        connect = websocket_event(
            "$connect", connection_id, query=query, headers=dict(websocket.headers), domain=websocket.url.hostname or ""
        )
        result = await self._invoke(connect)
        status = int(result.get("statusCode", 500))
        if status != 200:
            await websocket.send_denial_response(
                Response(json.dumps({"message": "Unauthorized" if status == 401 else "Forbidden"}), status_code=status)
            )
            return
        await websocket.accept()
        self._sockets[connection_id] = _Socket(websocket, raw_token, datetime.now(UTC))
        try:
            while True:
                body = await websocket.receive_text()
                await self._invoke(websocket_event(select_route(body), connection_id, body=body))
        except WebSocketDisconnect:
            pass
        finally:
            self._sockets.pop(connection_id, None)
            if connection_id not in self._lost:
                await self._invoke(websocket_event("$disconnect", connection_id))

    async def _post(self, request: Request) -> Response:
        connection_id = request.path_params["connection_id"]
        socket = self._sockets.get(connection_id)
        if socket is None:
            return _gone(connection_id)
        data = await request.body()
        try:
            async with socket.lock:  # one frame at a time per connection, as API Gateway sends
                await socket.websocket.send_text(data.decode())
        except (RuntimeError, WebSocketDisconnect, OSError):
            return _gone(connection_id)
        except Exception as exc:  # noqa: BLE001 - the websockets library's ConnectionClosed*: the peer left
            if type(exc).__name__.startswith("ConnectionClosed"):
                return _gone(connection_id)
            raise
        self.posts += 1
        socket.last_active_at = datetime.now(UTC)
        return Response(status_code=200)

    async def _get(self, request: Request) -> Response:
        connection_id = request.path_params["connection_id"]
        socket = self._sockets.get(connection_id)
        if socket is None:
            return _gone(connection_id)
        return JSONResponse(
            {
                "connectedAt": socket.connected_at.isoformat(),
                "identity": {"sourceIp": "127.0.0.1", "userAgent": socket.websocket.headers.get("user-agent", "")},
                "lastActiveAt": (socket.last_active_at or socket.connected_at).isoformat(),
            }
        )

    async def _delete(self, request: Request) -> Response:
        connection_id = request.path_params["connection_id"]
        socket = self._sockets.get(connection_id)
        if socket is None:
            return _gone(connection_id)
        await socket.websocket.close(code=1000)  # its serve loop then sends $disconnect
        return Response(status_code=204)

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse(self.issuer.jwks())

    async def _list(self, request: Request) -> Response:
        return JSONResponse(
            {
                "connections": [
                    {"connection_id": cid, "token": s.user_hint if (s.user_hint or "").startswith("dev-") else None}
                    for cid, s in self._sockets.items()
                ]
            }
        )

    async def _drop(self, request: Request) -> Response:
        connection_id = request.path_params["connection_id"]
        socket = self._sockets.get(connection_id)
        if socket is None:
            return _gone(connection_id)
        self._lost.add(connection_id)
        self._sockets.pop(connection_id, None)
        await socket.websocket.close(code=1001)
        return Response(status_code=204)
