"""State of the simulated CML fleet: many virtual controllers, each with labs, a licence,
telemetry, a boot phase and injectable faults. Time comes from an injectable clock."""
from __future__ import annotations

import random
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

CML_VERSION = "2.9.0"
USERNAME = "admin"
OWNER_ID = "90f84e38-a71c-4d57-8d90-00fa8a197385"


@dataclass
class Faults:
    """What a controller does wrong, per request."""

    latency: float = 0.0  # seconds added to every answer
    error_rate: float = 0.0  # probability of a 500 with an error body
    timeout: bool = False  # hang `hang_seconds` before answering (longer than any client timeout)
    hang_seconds: float = 30.0
    garbage: bool = False  # 200 with a body that is not JSON
    expire_tokens: bool = False  # forget issued tokens once: the next authenticated call gets 401

    def update(self, **changes: Any) -> None:
        for key, value in changes.items():
            if not hasattr(self, key):
                raise ValueError(f"unknown fault {key!r}")
            setattr(self, key, type(getattr(self, key))(value))


@dataclass
class Lab:
    id: str
    title: str
    topology: dict[str, Any]
    created: datetime
    modified: datetime
    state: str = "DEFINED_ON_CORE"
    converged_at: datetime | None = None

    @property
    def node_count(self) -> int:
        return len(self.topology.get("nodes") or [])

    @property
    def link_count(self) -> int:
        return len(self.topology.get("links") or [])


def sample_topology(title: str, nodes: int = 3) -> dict[str, Any]:
    """A small valid CML topology (what /import accepts and /download returns)."""
    node_list = [
        {"id": f"n{i}", "label": f"r{i}", "node_definition": "iosv", "x": i * 100, "y": 0, "interfaces": []}
        for i in range(nodes)
    ]
    links = [{"id": f"l{i}", "n1": f"n{i}", "n2": f"n{i + 1}"} for i in range(nodes - 1)]
    return {"lab": {"title": title, "description": "simulated", "notes": "", "version": "0.2.2"},
            "nodes": node_list, "links": links}


@dataclass
class Licence:
    status: str = "NOT_REGISTERED"
    authorization: str = "NOT_AUTHORIZED"
    completes_at: datetime | None = None
    will_fail: bool = False
    expires: datetime | None = None


@dataclass
class Controller:
    id: str
    password: str
    booted_at: datetime
    faults: Faults = field(default_factory=Faults)
    labs: dict[str, Lab] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    licence: Licence = field(default_factory=Licence)
    events: list[dict[str, Any]] = field(default_factory=list)
    compute_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    deregister_local_only: bool = False


class SimulatedFleet:
    """Thread-safe registry of virtual controllers (the ASGI app and tests share it)."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        password: str = "cml-sim-password",
        converge_seconds: float = 1.0,
        licence_seconds: float = 2.0,
        seed: int = 42,
    ) -> None:
        self.clock = clock
        self.password = password
        self.converge = timedelta(seconds=converge_seconds)
        self.licence_delay = timedelta(seconds=licence_seconds)
        self.random = random.Random(seed)
        self._controllers: dict[str, Controller] = {}
        self._lock = threading.RLock()
        #: API requests answered (admin API excluded), for benchmarks.
        self.requests = 0

    # --- registry ---

    def add(self, controller_id: str, *, boot_seconds: float = 0.0, labs: int = 0, running_labs: int = 0) -> Controller:
        """Add (or return) a controller; `boot_seconds` > 0 starts it in its booting phase."""
        with self._lock:
            if controller_id in self._controllers:
                return self._controllers[controller_id]
            now = self.clock()
            controller = Controller(controller_id, self.password, booted_at=now + timedelta(seconds=boot_seconds))
            self._controllers[controller_id] = controller
        for index in range(labs):
            lab = self.import_lab(controller, sample_topology(f"Lab {index + 1}"), None)
            if index < running_labs:
                lab.state, lab.converged_at = "STARTED", now
        return controller

    def remove(self, controller_id: str) -> None:
        with self._lock:
            self._controllers.pop(controller_id, None)

    def get(self, controller_id: str) -> Controller | None:
        with self._lock:
            return self._controllers.get(controller_id)

    def ids(self) -> list[str]:
        with self._lock:
            return sorted(self._controllers)

    def set_faults(self, controller_id: str, **faults: Any) -> Faults:
        controller = self._require(controller_id)
        with self._lock:
            controller.faults.update(**faults)
        return controller.faults

    def clear_faults(self, controller_id: str) -> None:
        controller = self._require(controller_id)
        with self._lock:
            controller.faults = Faults()

    def _require(self, controller_id: str) -> Controller:
        controller = self.get(controller_id)
        if controller is None:
            raise KeyError(controller_id)
        return controller

    # --- behaviour ---

    def ready(self, controller: Controller) -> bool:
        return self.clock() >= controller.booted_at

    def login(self, controller: Controller, username: str, password: str) -> str | None:
        if username != USERNAME or password != controller.password:
            return None
        token = ".".join(secrets.token_urlsafe(12) for _ in range(3))
        with self._lock:
            controller.tokens.add(token)
            self._event(controller, "user_activity", {"action": "login", "user": username})
        return token

    def authorized(self, controller: Controller, token: str | None) -> bool:
        with self._lock:
            if controller.faults.expire_tokens:
                controller.tokens.clear()
                controller.faults.expire_tokens = False
            return token is not None and token in controller.tokens

    def _event(self, controller: Controller, category: str, data: dict[str, Any]) -> None:
        controller.events.append({"category": category, "timestamp": self.clock().isoformat(), "data": data})

    def import_lab(self, controller: Controller, topology: dict[str, Any], title: str | None) -> Lab:
        now = self.clock()
        lab_title = (title or (topology.get("lab") or {}).get("title") or "Imported lab")[:64]
        lab = Lab(id=str(uuid.uuid4()), title=lab_title, topology=topology, created=now, modified=now)
        with self._lock:
            controller.labs[lab.id] = lab
            self._event(controller, "import_lab", {"lab_id": lab.id})
        return lab

    def lab_action(self, controller: Controller, lab: Lab, action: str) -> str | None:
        """Apply start/stop/wipe; returns an error description when the state forbids it."""
        now = self.clock()
        with self._lock:
            if action == "start":
                lab.state, lab.converged_at = "STARTED", now + self.converge
                self._event(controller, "start_lab", {"lab_id": lab.id})
            elif action == "stop":
                lab.state, lab.converged_at = "STOPPED", now + self.converge
                self._event(controller, "stop_lab", {"lab_id": lab.id})
            elif action == "wipe":
                if lab.state == "STARTED":
                    return f"Lab {lab.id} must be stopped before it is wiped"
                lab.state, lab.converged_at = "DEFINED_ON_CORE", now
            lab.modified = now
        return None

    def converged(self, lab: Lab) -> bool:
        return lab.converged_at is None or self.clock() >= lab.converged_at

    def running_nodes(self, controller: Controller) -> int:
        return sum(lab.node_count for lab in controller.labs.values() if lab.state == "STARTED")

    def register(self, controller: Controller, token: str) -> None:
        with self._lock:
            controller.licence = Licence(
                status="IN_PROGRESS", authorization="NOT_AUTHORIZED",
                completes_at=self.clock() + self.licence_delay, will_fail=token.upper().startswith("INVALID"),
            )
            self._event(controller, "license_info", {"action": "register"})

    def licence(self, controller: Controller) -> Licence:
        """The licence, moved on if its background registration is due."""
        with self._lock:
            licence = controller.licence
            if licence.status == "IN_PROGRESS" and licence.completes_at and self.clock() >= licence.completes_at:
                if licence.will_fail:
                    controller.licence = Licence(status="FAILED", authorization="NOT_AUTHORIZED")
                else:
                    controller.licence = Licence(
                        status="COMPLETED", authorization="IN_COMPLIANCE", expires=self.clock() + timedelta(days=365)
                    )
            return controller.licence

    def deregister(self, controller: Controller) -> int:
        """204 done, 202 done locally only, 400 when there was nothing to deregister."""
        with self._lock:
            if self.licence(controller).status not in ("COMPLETED", "IN_PROGRESS"):
                return 400
            controller.licence = Licence()
            return 202 if controller.deregister_local_only else 204


def parse_topology(text: str) -> dict[str, Any]:
    """The YAML of a lab, or ValueError with a message fit for a 400 body."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"invalid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("nodes", []), list):
        raise ValueError("invalid topology: expected a mapping with 'lab', 'nodes' and 'links'")
    if "lab" not in data and "nodes" not in data:
        raise ValueError("invalid topology: no 'lab' or 'nodes' section")
    return data
