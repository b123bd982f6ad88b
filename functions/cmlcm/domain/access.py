"""Per-user scoping of workers: who may see and act on which worker.

A worker may carry an `owner` (set on create and import to the caller, editable by admins) and a
team tag (the settings' `team_tag_key`, `Team` by default). With the settings' `worker_scoping`
on, a scoped caller sees and acts on only the workers they own or that carry one of their teams;
any other worker is, for them, a worker that does not exist (404, never 403: no existence leak).
Admins always see everything.

Teams come from Cognito groups named `team-<name>` (the convention: groups are in both the id and
the access token, so REST and WebSocket callers carry the same teams; a group `team-ccna` makes
its members part of team `ccna`, matching workers tagged `Team=ccna`). Names and teams compare
case-insensitively (e-mail addresses, and tags typed by hand).

Pure domain code: the caller comes in already read from the token's claims.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

#: Cognito groups whose name starts with this name a team: `team-ccna` → team `ccna`.
TEAM_GROUP_PREFIX = "team-"

WorkerScoping = Literal["off", "operators", "operators_and_viewers"]


def teams_of(groups: Iterable[str]) -> frozenset[str]:
    """The teams named by a caller's Cognito groups (`team-<name>`), case-folded."""
    return frozenset(
        g[len(TEAM_GROUP_PREFIX) :].casefold()
        for g in groups
        if g.casefold().startswith(TEAM_GROUP_PREFIX) and len(g) > len(TEAM_GROUP_PREFIX)
    )


@dataclass(frozen=True)
class Caller:
    """Who is asking: their highest role, every name a worker's `owner` may hold for them (e-mail,
    user name, subject), and their teams."""

    role: Literal["viewer", "operator", "admin"] | None
    names: frozenset[str] = field(default_factory=frozenset)
    teams: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, role: str | None, names: Iterable[str | None], teams: Iterable[str] = ()) -> Caller:
        known = role if role in ("viewer", "operator", "admin") else None
        return cls(
            role=known,  # type: ignore[arg-type]  # checked just above
            names=frozenset(n.casefold() for n in names if n),
            teams=frozenset(t.casefold() for t in teams if t),
        )


@dataclass(frozen=True)
class Scope:
    """The workers one caller may see: all of them, or those they own or their teams carry."""

    everything: bool = True
    names: frozenset[str] = field(default_factory=frozenset)
    teams: frozenset[str] = field(default_factory=frozenset)
    team_tag_key: str = "Team"

    def allows(self, owner: str | None, tags: Mapping[str, str] | None) -> bool:
        """Whether a worker with this `owner` and `tags` is in scope."""
        if self.everything:
            return True
        if owner and owner.casefold() in self.names:
            return True
        team = (tags or {}).get(self.team_tag_key)
        return bool(team) and team.casefold() in self.teams  # type: ignore[union-attr]  # bool(team) checked

    def allows_view(self, view: Mapping[str, Any]) -> bool:
        """`allows` for a WorkerView as JSON (live events carry that)."""
        tags = view.get("tags")
        return self.allows(view.get("owner"), tags if isinstance(tags, Mapping) else None)

    def encode(self) -> str | None:
        """Compact JSON to store beside a subscription (None: everything)."""
        if self.everything:
            return None
        return json.dumps(
            {"names": sorted(self.names), "teams": sorted(self.teams), "tag": self.team_tag_key}, separators=(",", ":")
        )

    @classmethod
    def decode(cls, raw: str | None) -> Scope:
        """The inverse of `encode`; an unreadable value scopes to nothing (fail closed)."""
        if raw is None:
            return EVERYTHING
        try:
            data = json.loads(raw)
            return cls(
                everything=False,
                names=frozenset(str(n) for n in data.get("names", [])),
                teams=frozenset(str(t) for t in data.get("teams", [])),
                team_tag_key=str(data.get("tag", "Team")),
            )
        except (ValueError, TypeError, AttributeError):
            return NOTHING


EVERYTHING = Scope()
NOTHING = Scope(everything=False)


def scope_for(caller: Caller, *, scoping: WorkerScoping, team_tag_key: str) -> Scope:
    """The rule: admins see everything; with scoping `operators`, operators are scoped (viewers
    still read the whole fleet); with `operators_and_viewers`, both are; `off` scopes nobody."""
    scoped_roles = {"off": (), "operators": ("operator",), "operators_and_viewers": ("operator", "viewer")}[scoping]
    # A caller with no known role is scoped whenever scoping is on (fail closed).
    unscoped = (
        caller.role == "admin" or scoping == "off" or (caller.role is not None and caller.role not in scoped_roles)
    )
    if unscoped:
        return EVERYTHING
    return Scope(everything=False, names=caller.names, teams=caller.teams, team_tag_key=team_tag_key)
