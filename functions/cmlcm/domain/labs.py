"""A worker's CML labs as the product keeps them, and the pure rules that sync them from CML.

Pure domain code: no AWS, HTTP or DynamoDB. `synced_at` is when the row was last written; it
is not part of a lab's content, so a lab CML reports unchanged is never rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from cmlcm.domain.cml import LabDetails
from cmlcm.domain.errors import PayloadTooLarge, ValidationFailed

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")

#: Largest lab YAML the API accepts for import (CML topologies are kilobytes; this is generous).
MAX_LAB_YAML_BYTES = 1024 * 1024


class LabYamlTooLarge(PayloadTooLarge):
    """An imported lab YAML above `MAX_LAB_YAML_BYTES`."""


#: State changes kept per lab (the oldest are dropped first).
STATE_HISTORY_LIMIT = 20


class LabStateChange(BaseModel):
    """A lab state the product saw, and when it first saw it (the collection's or a sync's time,
    so within one collection interval of CML's own change)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: str
    seen_at: datetime


class Lab(LabDetails):
    """One lab on one worker's CML controller (key: worker_id + lab_id), as last synced."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    worker_id: str
    lab_id: str
    #: The states seen, oldest first, the current one last (at most `STATE_HISTORY_LIMIT`).
    state_history: tuple[LabStateChange, ...] = ()
    synced_at: datetime

    def same_content(self, other: Lab | None) -> bool:
        """True when only `synced_at` differs (then the stored row needs no write)."""
        if other is None:
            return False
        return self.model_dump(exclude={"synced_at"}) == other.model_dump(exclude={"synced_at"})

    def following(self, before: Lab | None) -> Lab:
        """This observation with the state history carried on from the stored row: a new state
        (or a lab seen for the first time) is appended at `synced_at`; an unchanged lab is equal
        to its row (so it is not rewritten)."""
        history = before.state_history if before is not None else ()
        if history and history[-1].state == self.state:
            return self.model_copy(update={"state_history": history})
        if before is not None and not history and before.state == self.state:
            return self  # a row stored before histories were kept: nothing seen to record yet
        added = (*history, LabStateChange(state=self.state, seen_at=self.synced_at))
        return self.model_copy(update={"state_history": added[-STATE_HISTORY_LIMIT:]})


@dataclass(frozen=True)
class LabSyncPlan:
    """What one sync writes: rows to put (new or changed), keys to delete (orphans)."""

    added: list[Lab] = field(default_factory=list)
    changed: list[Lab] = field(default_factory=list)
    unchanged: list[Lab] = field(default_factory=list)
    orphans: list[Lab] = field(default_factory=list)

    @property
    def puts(self) -> list[Lab]:
        return [*self.added, *self.changed]

    @property
    def current(self) -> list[Lab]:
        """The worker's labs after the plan is applied, by title then id."""
        return sorted([*self.puts, *self.unchanged], key=lambda lab: (lab.title.lower(), lab.lab_id))


def plan_lab_sync(stored: Sequence[Lab], observed: Sequence[Lab]) -> LabSyncPlan:
    """Compare the table's rows with what CML reports now (both for one worker): new and changed
    labs are put, unchanged labs keep their row (and their old `synced_at`), labs CML no longer
    has are orphans to delete."""
    by_id = {lab.lab_id: lab for lab in stored}
    plan = LabSyncPlan()
    seen: set[str] = set()
    for observation in observed:
        seen.add(observation.lab_id)
        before = by_id.get(observation.lab_id)
        lab = observation.following(before)
        if before is None:
            plan.added.append(lab)
        elif lab.same_content(before):
            plan.unchanged.append(before)
        else:
            plan.changed.append(lab)
    plan.orphans.extend(lab for lab in stored if lab.lab_id not in seen)
    return plan


def check_lab_yaml(text: str) -> dict[str, Any]:
    """The parsed topology of an uploaded lab, or a 422 naming `body` that says what is wrong
    (checked before CML is called: a bad upload never reaches the controller). Size first, so a
    huge body is never parsed."""
    size = len(text.encode("utf-8"))
    if size > MAX_LAB_YAML_BYTES:
        raise LabYamlTooLarge(
            f"body is {size} bytes; a lab YAML may be at most {MAX_LAB_YAML_BYTES} bytes (1 MiB)", field="body"
        )
    if not text.strip():
        raise ValidationFailed("body is empty: send the lab's YAML as the request body", field="body")
    try:
        topology = yaml.safe_load(text)
    except RecursionError:
        raise ValidationFailed("body is not a CML lab topology: nested too deeply", field="body") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        # PyYAML quotes pieces of the document in its problems ("found undefined alias 'x'"):
        # the body may hold a credential, so the quoted piece is left out (line and column stay).
        problem = _QUOTED.sub("'…'", getattr(exc, "problem", None) or type(exc).__name__)
        raise ValidationFailed(f"body is not valid YAML: {problem}{where}", field="body") from None
    if not isinstance(topology, dict) or not ({"lab", "nodes"} & set(topology)):
        raise ValidationFailed(
            "body is YAML but not a CML lab topology: expected a mapping with 'lab', 'nodes' and 'links'",
            field="body",
        )
    for section in ("nodes", "links"):
        if topology.get(section) is not None and not isinstance(topology[section], list):
            raise ValidationFailed(f"body is not a CML lab topology: '{section}' must be a list", field="body")
    return topology


__all__ = [
    "MAX_LAB_YAML_BYTES",
    "STATE_HISTORY_LIMIT",
    "Lab",
    "LabStateChange",
    "LabSyncPlan",
    "LabYamlTooLarge",
    "check_lab_yaml",
    "plan_lab_sync",
]
