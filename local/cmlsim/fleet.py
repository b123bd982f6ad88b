"""State of the simulated CML fleet: many virtual controllers, each with labs, a licence,
telemetry, a boot phase and injectable faults. Time comes from an injectable clock, so tests move
it by hand; only the injected latency and hang use real (asyncio) time.

In-process API (tests, local mode, benchmarks)::

    fleet = SimulatedFleet(clock=my_clock, converge_seconds=5, licence_seconds=10)
    fleet.add("i-0abc", labs=2, running_labs=1, boot_seconds=30)
    fleet.add_lab("i-0abc", "Extra lab", nodes=4, state="STARTED")
    fleet.set_faults("i-0abc", latency=0.2, error_rate=0.1)   # see `Faults`
    fleet.boot("i-0abc", seconds=20)                           # ready=false for 20 s, tokens lost
"""

from __future__ import annotations

import random
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from cmlsim.labs import Lab, SimNode, build_lab

CML_VERSION = "2.9.0"
LAB_STATES = {"DEFINED_ON_CORE", "STOPPED", "STARTED"}
USERNAME = "admin"
OWNER_ID = "90f84e38-a71c-4d57-8d90-00fa8a197385"


@dataclass
class Faults:
    """What one controller does wrong. Request faults apply to every API call of that controller
    (the admin API and other controllers are unaffected)."""

    latency: float = 0.0  # seconds added to every answer (asyncio.sleep: thousands overlap)
    error_rate: float = 0.0  # probability of an `error_status` answer with an error body; 1.0 = always
    error_status: int = 500  # 503 makes the client see "not ready", any other 5xx "bad response"
    timeout: bool = False  # hang `hang_seconds` before answering (longer than any client timeout)
    hang_seconds: float = 30.0
    garbage: bool = False  # 200 with a body that is not JSON
    expire_tokens: bool = False  # forget issued tokens once: the next authenticated call gets 401
    registration_fails: bool = False  # licence registrations end FAILED (as "INVALID..." tokens do)
    deregister_local_only: bool = False  # deregistration answers 202 (Cisco's side unreachable)

    def update(self, **changes: Any) -> None:
        """Set faults by name, all or none. Values must have the field's type (ints pass for
        floats), so a JSON "false" string cannot turn a fault on by truthiness."""
        accepted: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in self.__dataclass_fields__:
                raise ValueError(f"unknown fault {key!r}")
            current = getattr(self, key)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"fault {key!r} takes true or false")
            elif isinstance(current, float):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"fault {key!r} takes a number")
                value = float(value)
            elif isinstance(current, int) and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"fault {key!r} takes an integer")
            accepted[key] = value
        candidate = replace(self, **accepted)
        if not 0.0 <= candidate.error_rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")
        if not 400 <= candidate.error_status <= 599:
            raise ValueError("error_status must be an HTTP error status")
        if candidate.latency < 0 or candidate.hang_seconds < 0:
            raise ValueError("latency and hang_seconds cannot be negative")
        for key, value in accepted.items():
            setattr(self, key, value)


def sample_topology(title: str, nodes: int = 3) -> dict[str, Any]:
    """A small valid CML topology (the spec's `Topology`): routers in a chain, each link joining
    interface 1 of one router to interface 0 of the next. What /import accepts and /download returns."""
    node_list = [
        {
            "id": f"n{i}",
            "label": f"r{i}",
            "node_definition": "iosv",
            "x": i * 100,
            "y": 0,
            "interfaces": [
                {"id": f"i{2 * i + slot}", "label": f"GigabitEthernet0/{slot}", "slot": slot, "type": "physical"}
                for slot in (0, 1)
            ],
        }
        for i in range(nodes)
    ]
    links = [
        {"id": f"l{i}", "n1": f"n{i}", "i1": f"i{2 * i + 1}", "n2": f"n{i + 1}", "i2": f"i{2 * (i + 1)}"}
        for i in range(nodes - 1)
    ]
    return {
        "lab": {"title": title, "description": "simulated", "notes": "", "version": "0.2.2"},
        "nodes": node_list,
        "links": links,
    }


@dataclass
class Licence:
    status: str = "NOT_REGISTERED"
    authorization: str = "NOT_AUTHORIZED"
    completes_at: datetime | None = None
    will_fail: bool = False
    expires: datetime | None = None
    product_license: str = "CML_Enterprise"


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
    maintenance_mode: bool = False
    web_session_timeout: int = 14400  # seconds, CML's default
    telemetry_opt_in: bool | None = None
    #: API requests this controller answered (what the collection's per-worker figures count).
    requests: int = 0


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
                lab.set_state("STARTED", now, None)
        return controller

    def remove(self, controller_id: str) -> None:
        """Forget a controller (its URL answers 404 from now on); unknown ids are ignored."""
        with self._lock:
            self._controllers.pop(controller_id, None)

    def get(self, controller_id: str) -> Controller | None:
        """The controller, or None when no such id is registered."""
        with self._lock:
            return self._controllers.get(controller_id)

    def boot(self, controller_id: str, seconds: float) -> None:
        """(Re)boot: `ready` is false for `seconds` from now, and issued tokens are gone."""
        controller = self._require(controller_id)
        with self._lock:
            controller.booted_at = self.clock() + timedelta(seconds=seconds)
            controller.tokens.clear()

    def add_lab(self, controller_id: str, title: str, *, nodes: int = 3, state: str = "DEFINED_ON_CORE") -> str:
        """Seed one lab (already converged) and return its id."""
        if state not in LAB_STATES:
            raise ValueError(f"state must be one of {sorted(LAB_STATES)}")
        lab = self.import_lab(self._require(controller_id), sample_topology(title, nodes), None)
        with self._lock:
            lab.set_state(state, self.clock(), None)
        return lab.id

    def record_event(
        self, controller_id: str, category: str, data: dict[str, Any] | None = None, *, at: datetime | None = None
    ) -> None:
        """Seed a telemetry event (e.g. an old `start_lab`, to exercise idle detection)."""
        controller = self._require(controller_id)
        with self._lock:
            controller.events.append(
                {"category": category, "timestamp": (at or self.clock()).isoformat(), "data": data or {}}
            )
            controller.events.sort(key=lambda event: event["timestamp"])

    def quiet(self, controller_id: str, minutes: float) -> None:
        """As if nobody had used the controller for `minutes`: every lab stopped, and its whole
        history (labs' created/modified times, telemetry events, logins included) moved back by
        `minutes` (what the idle policy's tests and demos need without waiting for it)."""
        controller = self._require(controller_id)
        shift = timedelta(minutes=minutes)
        with self._lock:
            now = self.clock()
            for lab in controller.labs.values():
                if lab.bare_state == "STARTED":
                    lab.set_state("STOPPED", now, None)
                lab.created -= shift
                lab.modified -= shift
            for event in controller.events:
                event["timestamp"] = (datetime.fromisoformat(event["timestamp"]) - shift).isoformat()

    def ids(self) -> list[str]:
        """Registered controller ids, sorted."""
        with self._lock:
            return sorted(self._controllers)

    def set_faults(self, controller_id: str, **faults: Any) -> Faults:
        """Change some faults of one controller (KeyError: unknown id, ValueError: bad fault)."""
        controller = self._require(controller_id)
        with self._lock:
            controller.faults.update(**faults)
        return controller.faults

    def clear_faults(self, controller_id: str) -> None:
        """Back to a well-behaved controller."""
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
        """False during the boot phase (`system_information.ready`)."""
        return self.clock() >= controller.booted_at

    def login(self, controller: Controller, username: str, password: str) -> str | None:
        """A new JWT-shaped token, or None for bad credentials; logins are telemetry events."""
        if username != USERNAME or password != controller.password:
            return None
        token = ".".join(secrets.token_urlsafe(12) for _ in range(3))
        with self._lock:
            controller.tokens.add(token)
            self._event(controller, "user_activity", {"action": "login", "user": username})
        return token

    def logout(self, controller: Controller, token: str, *, everywhere: bool = False) -> None:
        """Invalidate `token` (every token of the controller with `everywhere`)."""
        with self._lock:
            if everywhere:
                controller.tokens.clear()
            controller.tokens.discard(token)

    def set_maintenance(self, controller: Controller, on: bool) -> None:
        """`PATCH /system/maintenance_mode`: a `maintenance_state_change` telemetry event."""
        with self._lock:
            if controller.maintenance_mode != on:
                controller.maintenance_mode = on
                self._event(controller, "maintenance_state_change", {"maintenance_mode": on})

    def set_product_license(self, controller: Controller, name: str) -> None:
        """`PUT /licensing/product_license`: the licence's product, kept across re-registration."""
        with self._lock:
            controller.licence.product_license = name

    def authorized(self, controller: Controller, token: str | None) -> bool:
        """Whether `token` is valid; an armed `expire_tokens` fault first forgets every token."""
        with self._lock:
            if controller.faults.expire_tokens:
                controller.tokens.clear()
                controller.faults.expire_tokens = False
            return token is not None and token in controller.tokens

    def _event(self, controller: Controller, category: str, data: dict[str, Any]) -> None:
        controller.events.append({"category": category, "timestamp": self.clock().isoformat(), "data": data})

    def import_lab(self, controller: Controller, topology: dict[str, Any], title: str | None) -> Lab:
        """Create a lab from a parsed topology (`title` overrides the topology's own); ValueError
        when the topology does not hold together."""
        now = self.clock()
        lab_title = (title or (topology.get("lab") or {}).get("title") or "Imported lab")[:64]
        try:
            lab = build_lab(str(uuid.uuid4()), topology, str(lab_title), now)
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"invalid topology: {exc}") from None
        with self._lock:
            controller.labs[lab.id] = lab
            self._event(controller, "import_lab", {"lab_id": lab.id})
        return lab

    def lab_action(self, controller: Controller, lab: Lab, action: str) -> str | None:
        """Apply start/stop/wipe; returns an error description when the state forbids it.
        Start and stop converge `converge_seconds` later; a wipe is immediate."""
        now = self.clock()
        with self._lock:
            if action == "start":
                lab.set_state("STARTED", now, now + self.converge)
                self._event(controller, "start_lab", {"lab_id": lab.id})
            elif action == "stop":
                if lab.state == "STARTED":
                    lab.set_state("STOPPED", now, now + self.converge)
                    self._event(controller, "stop_lab", {"lab_id": lab.id})
            elif action == "wipe":
                if lab.state == "STARTED":
                    return f"Lab {lab.id} must be stopped before it is wiped"
                for node in lab.nodes.values():
                    if node.state != "DEFINED_ON_CORE":
                        self._event(controller, "wipe_node", {"lab_id": lab.id, "node_id": node.id})
                lab.set_state("DEFINED_ON_CORE", now, None)
        return None

    def node_action(self, controller: Controller, lab: Lab, node: SimNode, action: str) -> None:
        """Start or stop one node of `lab` (it converges like a lab action)."""
        now = self.clock()
        with self._lock:
            lab.set_node_state(node, "STARTED" if action == "start" else "STOPPED", now, now + self.converge)
            self._event(controller, f"{action}_node", {"lab_id": lab.id, "node_id": node.id})

    def exported(self, controller: Controller, lab: Lab) -> None:
        """A download is an `export_lab` telemetry event."""
        with self._lock:
            self._event(controller, "export_lab", {"lab_id": lab.id})

    def delete_lab(self, controller: Controller, lab: Lab) -> str | None:
        """Remove a lab; refused (description returned) while it runs, as CML does."""
        with self._lock:
            if lab.state == "STARTED":
                return f"Lab {lab.id} is running: stop and wipe it first"
            controller.labs.pop(lab.id, None)
        return None

    def converged(self, lab: Lab) -> bool:
        """`check_if_converged`: true once every element reached the state last asked of it."""
        return lab.converged(self.clock())

    def running_nodes(self, controller: Controller) -> int:
        """Nodes started, in every lab (drives `system_stats`)."""
        return sum(1 for lab in controller.labs.values() for node in lab.nodes.values() if node.state == "STARTED")

    def register(self, controller: Controller, token: str) -> None:
        """Start a registration that completes (or fails) `licence_seconds` later."""
        will_fail = token.upper().startswith("INVALID") or controller.faults.registration_fails
        with self._lock:
            controller.licence = Licence(
                status="IN_PROGRESS",
                authorization="NOT_AUTHORIZED",
                completes_at=self.clock() + self.licence_delay,
                will_fail=will_fail,
                product_license=controller.licence.product_license,
            )
            self._event(controller, "license_info", {"action": "register"})

    def licence(self, controller: Controller) -> Licence:
        """The licence, moved on if its background registration is due."""
        with self._lock:
            licence = controller.licence
            if licence.status == "IN_PROGRESS" and licence.completes_at and self.clock() >= licence.completes_at:
                product = licence.product_license
                if licence.will_fail:
                    controller.licence = Licence(
                        status="FAILED", authorization="NOT_AUTHORIZED", product_license=product
                    )
                else:
                    controller.licence = Licence(
                        status="COMPLETED",
                        authorization="IN_COMPLIANCE",
                        expires=self.clock() + timedelta(days=365),
                        product_license=product,
                    )
            return controller.licence

    def deregister(self, controller: Controller) -> int:
        """204 done, 202 done locally only, 400 when there was nothing to deregister."""
        with self._lock:
            if self.licence(controller).status not in ("COMPLETED", "IN_PROGRESS"):
                return 400
            controller.licence = Licence(product_license=controller.licence.product_license)
            self._event(controller, "license_info", {"action": "deregister"})
            return 202 if controller.faults.deregister_local_only else 204


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
