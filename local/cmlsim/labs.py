"""A simulated CML lab: nodes, interfaces and links with their own states, converging over
(injected) time, and the lab events CML appends as they change.

Element ids are UUID4s, as on a controller; the YAML ids of the imported topology (`n0`, `i0`,
`l0`) are kept so a download gives back the file that was imported. States follow CML 2.9:

- a node is DEFINED_ON_CORE (wiped), STOPPED, or started: STARTED while it boots (`converge`
  seconds after the start, its check_if_converged is false), then BOOTED;
- an interface is STARTED when its node runs, else its node's state; a link is the lower of its
  two interfaces' states (DEFINED_ON_CORE < STOPPED < STARTED);
- the lab is STARTED when any node runs, STOPPED when none runs and any is stopped, else
  DEFINED_ON_CORE; it has converged when every node has.

Lab-level refusals (the ones CML makes): a started lab cannot be wiped or deleted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Topology keys of a node that the simulator keeps as given (and gives back on download).
_NODE_EXTRAS = (
    "parameters",
    "image_definition",
    "ram",
    "cpu_limit",
    "data_volume",
    "boot_disk_size",
    "hide_links",
    "tags",
    "cpus",
    "configuration",
)
_ORDER = {"DEFINED_ON_CORE": 0, "STOPPED": 1, "STARTED": 2}
RUNNING = "STARTED"


@dataclass
class SimInterface:
    id: str
    node: str
    label: str
    slot: int | None
    type: str
    yaml_id: str
    mac_address: str | None = None


@dataclass
class SimNode:
    id: str
    label: str
    node_definition: str
    x: int
    y: int
    yaml_id: str
    extras: dict[str, Any]
    interfaces: list[str] = field(default_factory=list)
    #: DEFINED_ON_CORE, STOPPED or STARTED (what was asked); `state_at` refines STARTED → BOOTED.
    state: str = "DEFINED_ON_CORE"
    converged_at: datetime | None = None
    started_at: datetime | None = None

    def state_at(self, now: datetime) -> str:
        """The observed state: a started node boots until it converges."""
        if self.state == RUNNING:
            return "BOOTED" if self.converged(now) else "STARTED"
        return self.state

    def converged(self, now: datetime) -> bool:
        return self.converged_at is None or now >= self.converged_at


@dataclass
class SimLink:
    id: str
    interface_a: str
    interface_b: str
    node_a: str
    node_b: str
    label: str
    yaml_id: str
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class Lab:
    id: str
    title: str
    created: datetime
    modified: datetime
    description: str = ""
    notes: str = ""
    version: str = "0.2.2"
    nodes: dict[str, SimNode] = field(default_factory=dict)
    interfaces: dict[str, SimInterface] = field(default_factory=dict)
    links: dict[str, SimLink] = field(default_factory=dict)
    #: LabEventResponse bodies, oldest first.
    events: list[dict[str, Any]] = field(default_factory=list)
    #: The state of a lab without nodes (a lab with nodes derives its state from them).
    bare_state: str = "DEFINED_ON_CORE"
    converged_at: datetime | None = None

    # --- reading ---

    @property
    def node_count(self) -> int:
        return len(self.nodes)

    @property
    def link_count(self) -> int:
        return len(self.links)

    @property
    def state(self) -> str:
        """DEFINED_ON_CORE / STOPPED / STARTED, from the nodes' states."""
        if not self.nodes:
            return self.bare_state
        states = {node.state for node in self.nodes.values()}
        if RUNNING in states:
            return RUNNING
        return "STOPPED" if "STOPPED" in states else "DEFINED_ON_CORE"

    def converged(self, now: datetime) -> bool:
        """check_if_converged: every node reached the state last asked of it."""
        lab_done = self.converged_at is None or now >= self.converged_at
        return lab_done and all(node.converged(now) for node in self.nodes.values())

    def interface_state(self, interface: SimInterface) -> str:
        node_state = self.nodes[interface.node].state
        return RUNNING if node_state == RUNNING else node_state

    def link_state(self, link: SimLink) -> str:
        a = self.interface_state(self.interfaces[link.interface_a])
        b = self.interface_state(self.interfaces[link.interface_b])
        return a if _ORDER[a] <= _ORDER[b] else b

    def element_states(self, now: datetime) -> dict[str, dict[str, str]]:
        """lab_element_state: every node, interface and link by id."""
        return {
            "nodes": {node.id: node.state_at(now) for node in self.nodes.values()},
            "interfaces": {i.id: self.interface_state(i) for i in self.interfaces.values()},
            "links": {link.id: self.link_state(link) for link in self.links.values()},
        }

    # --- changing ---

    def set_state(self, target: str, now: datetime, until: datetime | None) -> None:
        """Move every node (and so every interface and link) to `target`; `until` is when the
        move has converged (None: at once). Appends a STATE_CHANGED event per element changed."""
        for node in self.nodes.values():
            self._move_node(node, target, now, until)
        previous = self.bare_state
        self.bare_state, self.converged_at = target, until
        if previous != target:
            self.event("STATE_CHANGED", "LAB", self.id, {"state": target}, {"state": previous}, now)
        self.modified = now

    def set_node_state(self, node: SimNode, target: str, now: datetime, until: datetime | None) -> None:
        """Start or stop one node (its interfaces and links follow)."""
        self._move_node(node, target, now, until)
        self.modified = now

    def _move_node(self, node: SimNode, target: str, now: datetime, until: datetime | None) -> None:
        if node.state == target:
            return
        before_interfaces = {i: self.interface_state(self.interfaces[i]) for i in node.interfaces}
        touching = [link for link in self.links.values() if node.id in (link.node_a, link.node_b)]
        before_links = {link.id: self.link_state(link) for link in touching}
        previous, node.state, node.converged_at = node.state, target, until
        node.started_at = now if target == RUNNING else node.started_at
        self.event("STATE_CHANGED", "NODE", node.id, {"state": target}, {"state": previous}, now)
        for interface_id, before in before_interfaces.items():
            after = self.interface_state(self.interfaces[interface_id])
            if after != before:
                self.event("STATE_CHANGED", "INTERFACE", interface_id, {"state": after}, {"state": before}, now)
        for link in touching:
            after = self.link_state(link)
            if after != before_links[link.id]:
                self.event("STATE_CHANGED", "LINK", link.id, {"state": after}, {"state": before_links[link.id]}, now)

    def event(
        self,
        kind: str,
        element_type: str,
        element_id: str,
        data: dict[str, Any],
        previous: dict[str, Any],
        at: datetime,
    ) -> None:
        """Append one LabEventResponse."""
        self.events.append(
            {
                "lab_id": self.id,
                "event": kind,
                "element_type": element_type,
                "element_id": element_id,
                "data": data,
                "previous": previous,
                "timestamp": at.isoformat(),
            }
        )

    # --- topology in and out ---

    def to_topology(self) -> dict[str, Any]:
        """The CML YAML topology (the spec's `Topology`), with the ids of the imported file."""
        yaml_of = {i.id: i.yaml_id for i in self.interfaces.values()} | {n.id: n.yaml_id for n in self.nodes.values()}
        nodes = []
        for node in self.nodes.values():
            body: dict[str, Any] = {
                "id": node.yaml_id,
                "label": node.label,
                "node_definition": node.node_definition,
                "x": node.x,
                "y": node.y,
                **node.extras,
                "interfaces": [
                    {
                        "id": i.yaml_id,
                        "label": i.label,
                        **({"slot": i.slot} if i.slot is not None else {}),
                        "type": i.type,
                        **({"mac_address": i.mac_address} if i.mac_address else {}),
                    }
                    for i in (self.interfaces[iid] for iid in node.interfaces)
                ],
            }
            nodes.append(body)
        links = [
            {
                "id": link.yaml_id,
                "n1": yaml_of[link.node_a],
                "n2": yaml_of[link.node_b],
                "i1": yaml_of[link.interface_a],
                "i2": yaml_of[link.interface_b],
                **({"label": link.label} if link.label else {}),
                **link.extras,
            }
            for link in self.links.values()
        ]
        lab = {"title": self.title, "description": self.description, "notes": self.notes, "version": self.version}
        return {"lab": lab, "nodes": nodes, "links": links}


def build_lab(lab_id: str, topology: dict[str, Any], title: str, now: datetime) -> Lab:
    """A lab from a parsed CML topology; ValueError (a 400's description) when it does not hold
    together (a link naming a node or interface the file does not define, a node without its
    required fields)."""
    header = topology.get("lab") or {}
    if not isinstance(header, dict):
        raise ValueError("invalid topology: 'lab' must be a mapping")
    lab = Lab(
        id=lab_id,
        title=title,
        created=now,
        modified=now,
        description=str(header.get("description") or "")[:4096],
        notes=str(header.get("notes") or "")[:32768],
        version=str(header.get("version") or "0.2.2"),
    )
    by_yaml_node: dict[str, SimNode] = {}
    by_yaml_interface: dict[tuple[str, str], SimInterface] = {}
    for index, raw in enumerate(topology.get("nodes") or []):
        if not isinstance(raw, dict) or "node_definition" not in raw:
            raise ValueError(f"invalid topology: node {index} needs at least 'node_definition'")
        yaml_id = str(raw.get("id", f"n{index}"))
        node = SimNode(
            id=str(uuid.uuid4()),
            label=str(raw.get("label") or yaml_id)[:128],
            node_definition=str(raw["node_definition"]),
            x=int(raw.get("x", 0)),
            y=int(raw.get("y", 0)),
            yaml_id=yaml_id,
            extras={key: raw[key] for key in _NODE_EXTRAS if key in raw},
        )
        for slot_index, rawi in enumerate(raw.get("interfaces") or []):
            if not isinstance(rawi, dict) or "id" not in rawi:
                raise ValueError(f"invalid topology: interface {slot_index} of node {yaml_id} needs an 'id'")
            interface = SimInterface(
                id=str(uuid.uuid4()),
                node=node.id,
                label=str(rawi.get("label") or rawi["id"])[:128],
                slot=rawi.get("slot"),
                type=str(rawi.get("type", "physical")),
                yaml_id=str(rawi["id"]),
                mac_address=rawi.get("mac_address"),
            )
            node.interfaces.append(interface.id)
            lab.interfaces[interface.id] = interface
            by_yaml_interface[(yaml_id, interface.yaml_id)] = interface
        lab.nodes[node.id] = node
        by_yaml_node[yaml_id] = node
    for index, raw in enumerate(topology.get("links") or []):
        try:
            n1, n2 = by_yaml_node[str(raw["n1"])], by_yaml_node[str(raw["n2"])]
            i1 = by_yaml_interface[(n1.yaml_id, str(raw["i1"]))]
            i2 = by_yaml_interface[(n2.yaml_id, str(raw["i2"]))]
        except (KeyError, TypeError):
            raise ValueError(
                f"invalid topology: link {index} names a node or interface the file does not define"
            ) from None
        link = SimLink(
            id=str(uuid.uuid4()),
            interface_a=i1.id,
            interface_b=i2.id,
            node_a=n1.id,
            node_b=n2.id,
            label=str(raw.get("label") or f"{n1.label}-{i1.label}<->{n2.label}-{i2.label}")[:128],
            yaml_id=str(raw.get("id", f"l{index}")),
            extras={key: raw[key] for key in ("conditioning",) if key in raw},
        )
        lab.links[link.id] = link
    lab.event("ADD", "LAB", lab.id, {"title": lab.title}, {}, now)
    return lab


__all__ = ["Lab", "SimInterface", "SimLink", "SimNode", "build_lab"]
