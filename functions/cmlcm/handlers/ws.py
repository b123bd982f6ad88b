"""The WebSocket API's Lambda: `$connect`, `$disconnect`, `subscribe`, `unsubscribe`, `$default`.

`$connect` verifies the Cognito token given as `?token=` (browsers cannot set headers on a
WebSocket) and stores the connection with the role from `cognito:groups`; 401 refuses the
connection. Every message route goes to one service call that answers on the same connection
(snapshot, pong or an `error` message: a bad message never closes the connection).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from cmlcm.adapters.tokens import InvalidToken
from cmlcm.config import get_config
from cmlcm.container import current
from cmlcm.domain.access import teams_of
from cmlcm.domain.errors import ExternalServiceError
from cmlcm.handlers.api.auth import caller_role, parse_groups
from cmlcm.handlers.api.models import summary_view_of, view_of
from cmlcm.ports import RealtimePorts, SnapshotPorts
from cmlcm.services import realtime
from cmlcm.services.jobs import health_report

#: Route keys of the WebSocket API besides $connect/$disconnect/$default (the CDK stack and the local
#: gateway both read these; selection is on `$request.body.action`).
MESSAGE_ROUTES = ("subscribe", "unsubscribe")
ROUTE_SELECTION_EXPRESSION = "$request.body.action"

logger = Logger()
tracer = Tracer()

get_config()  # fail fast on a broken environment, at cold start


def new_id() -> str:
    return uuid.uuid4().hex


def _lab_view(lab: Any) -> dict[str, Any]:
    from cmlcm.handlers.api.routes_labs import LabView

    return LabView.of(lab).model_dump(mode="json")


def ports() -> RealtimePorts:
    """The container's ports, with the REST API's views for the snapshots (one DTO everywhere)."""
    container = current()
    snapshots = container.ports(
        SnapshotPorts,
        worker_view=view_of,
        summary_view=summary_view_of,
        lab_view=_lab_view,
        health=lambda jobs, settings, now: health_report(jobs, settings, now=now),
    )
    return container.ports(RealtimePorts, snapshots=snapshots)


def _on_connect(event: dict[str, Any], connection_id: str, now: datetime) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get("token")
    try:
        claims = current().token_verifier.verify(token)
    except InvalidToken as exc:
        logger.info("connection refused", extra={"reason": exc.message})
        return {"statusCode": 401, "body": "Unauthorized"}
    role = caller_role(claims)
    user = claims.get("email") or claims.get("cognito:username") or claims.get("username") or claims.get("sub")
    realtime.connect(
        current().connections,
        connection_id,
        user=user,
        role=role.name.lower() if role else None,
        now=now,
        teams=teams_of(parse_groups(claims.get("cognito:groups"))),
    )
    return {"statusCode": 200}


def _on_disconnect(event: dict[str, Any], connection_id: str, now: datetime) -> dict[str, Any]:
    realtime.disconnect(current().connections, connection_id)
    return {"statusCode": 200}


def _on_message(event: dict[str, Any], connection_id: str, now: datetime) -> dict[str, Any]:
    """`subscribe`, `unsubscribe`, `$default`: answered on the connection itself."""
    realtime.receive(ports(), connection_id, event.get("body"), now=now, new_id=new_id)
    return {"statusCode": 200}


ROUTES = {"$connect": _on_connect, "$disconnect": _on_disconnect}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    context_ = event.get("requestContext") or {}
    route, connection_id = context_.get("routeKey", "$default"), context_["connectionId"]
    logger.append_keys(route=route, connection_id=connection_id)
    try:
        return ROUTES.get(route, _on_message)(event, connection_id, current().now())
    except ExternalServiceError as exc:
        # DynamoDB or @connections unavailable: API Gateway answers the client with an error.
        logger.warning("websocket route failed", extra={"error": exc.message})
        return {"statusCode": 503}
