"""Roles from Cognito group claims, checked in one place.

API Gateway's Cognito authorizer has already verified the token; this module only reads the
`cognito:groups` claim and compares the caller's highest role with what the route requires.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from cmlcm.domain.access import Caller, teams_of
from cmlcm.domain.errors import Forbidden
from cmlcm.domain.workers import ChangeCause

#: Routes API Gateway serves without the Cognito authorizer (the CDK stack and the local gateway
#: both read this, so they cannot disagree).
PUBLIC_PATHS = ("/health", "/openapi.json")


class Role(IntEnum):
    """Ordered: each role can do everything the roles below it can."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3


def parse_groups(raw: Any) -> set[str]:
    """API Gateway passes groups as "a,b", "[a b]" or a list, depending on the path taken."""
    if raw is None:
        return set()
    if isinstance(raw, list):
        return {str(g).strip() for g in raw if str(g).strip()}
    text = str(raw).strip().strip("[]")
    return {g for g in text.replace(",", " ").split() if g}


def caller_role(claims: dict[str, Any] | None) -> Role | None:
    """The highest role named by the caller's groups, or None for no known group."""
    groups = parse_groups((claims or {}).get("cognito:groups"))
    roles = [Role[g.upper()] for g in groups if g.upper() in Role.__members__]
    return max(roles) if roles else None


def caller_claims(event: Any) -> dict[str, Any]:
    """The Cognito claims API Gateway's authorizer put on the event (empty without a token)."""
    context = event.get("requestContext") or {}
    return (context.get("authorizer") or {}).get("claims") or {}


def authorize(event: Any, minimum: Role) -> None:
    """The one check: `Forbidden` (403) unless the caller's role is at least `minimum`."""
    role = caller_role(caller_claims(event))
    if role is None or role < minimum:
        raise Forbidden(
            f"this action needs the {minimum.name.lower()} role"
            + (f"; you are {role.name.lower()}" if role else "; you have no role")
        )


class RoleRequirement:
    """Route middleware declaring the route's minimum role (`middlewares=[requires(...)]`)."""

    def __init__(self, minimum: Role) -> None:
        self.minimum = minimum
        self.__name__ = f"requires_{minimum.name.lower()}"

    def __call__(self, app: Any, next_middleware: NextMiddleware) -> Response[Any]:
        authorize(app.current_event.raw_event, self.minimum)
        return next_middleware(app)


def requires(minimum: Role) -> RoleRequirement:
    """The middleware that declares a route's minimum role."""
    return RoleRequirement(minimum)


def caller_name(event: Any) -> str | None:
    """Who is calling, for records and logs: the e-mail, else the user name, else the subject."""
    claims = caller_claims(event)
    return claims.get("email") or claims.get("cognito:username") or claims.get("sub")


def user_cause(event: Any) -> ChangeCause:
    """The cause recorded on a worker changed by this request: the calling user."""
    return ChangeCause(kind="user", by=caller_name(event))


def caller_of(event: Any) -> Caller:
    """The caller for per-user scoping: role, every name a worker's owner may hold for them, and
    teams from their `team-<name>` Cognito groups."""
    claims = caller_claims(event)
    role = caller_role(claims)
    names = (claims.get("email"), claims.get("cognito:username"), claims.get("username"), claims.get("sub"))
    return Caller.of(role.name.lower() if role else None, names, teams_of(parse_groups(claims.get("cognito:groups"))))
