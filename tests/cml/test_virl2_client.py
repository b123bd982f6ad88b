"""Cisco's own client, `virl2-client` 2.10, scripting the simulator the way a CML user does, over
a real loopback socket (uvicorn in a thread; the client is blocking). Every exchange crosses a
recording ASGI layer and, when the module ends, must conform to the vendored CML 2.9 subset.

Time is real here (virl2-client sleeps while it waits), so the fleet converges in 0.2 s and the
client polls every 0.05 s.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from cml_contract import Exchange, OpenApiSubset
from virl2_client import ClientLibrary
from virl2_client.exceptions import APIError, LabNotFound
from virl2_client.virl2_client import DiagnosticsCategory

from cmlsim import SimulatedFleet, build_app, sample_topology
from cmlsim.process import SimulatorThread

CONTROLLER = "c1"


class RecordingApp:
    """ASGI wrapper keeping every HTTP exchange (both bodies in full) for the conformance check."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request: list[bytes] = []
        response: list[bytes] = []
        start: dict[str, Any] = {}

        async def recv() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                request.append(message.get("body", b""))
            return message

        async def snd(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                response.append(message.get("body", b""))
            await send(message)

        await self.app(scope, recv, snd)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        answer = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
        self.exchanges.append(
            Exchange(
                scope["method"],
                scope["path"],
                headers.get("content-type", ""),
                b"".join(request),
                start.get("status", 0),
                answer.get("content-type", ""),
                b"".join(response),
            )
        )


class Live:
    """The fleet, its recorded server, and a way to make Cisco clients for controller `c1`."""

    def __init__(self, fleet: SimulatedFleet, recorder: RecordingApp, server: SimulatorThread) -> None:
        self.fleet, self.recorder, self.server = fleet, recorder, server
        self.url = f"{server.base}/controllers/{CONTROLLER}/"

    def client(self, **kwargs: Any) -> ClientLibrary:
        client = ClientLibrary(
            self.url,
            "admin",
            kwargs.pop("password", self.fleet.password),
            allow_http=True,
            ssl_verify=True,  # plain HTTP here; said so it does not prompt for the setting
            convergence_wait_time=0.05,
            convergence_wait_max_iter=200,
            **kwargs,
        )
        client.licensing.wait_interval = 0.05
        return client


@pytest.fixture(scope="module")
def live(spec: OpenApiSubset) -> Iterator[Live]:
    fleet = SimulatedFleet(converge_seconds=0.2, licence_seconds=0.2)
    fleet.add(CONTROLLER, labs=2, running_labs=1)
    recorder = RecordingApp(build_app(fleet))
    # virl2-client warns when it talks plain HTTP or to a non-443 port: expected here.
    logging.getLogger("virl2_client").setLevel(logging.ERROR)
    with SimulatorThread(recorder) as server:
        yield Live(fleet, recorder, server)
    problems = [p for e in recorder.exchanges if e.api_path is not None for p in spec.check(e)]
    assert not problems, "simulator broke the CML 2.9 contract:\n" + "\n".join(problems[:20])


@pytest.fixture(scope="module")
def client(live: Live) -> ClientLibrary:
    return live.client()


def test_connects_checks_the_version_and_reads_the_system(client):  # noqa: ANN001
    assert client.system_info()["version"] == "2.9.0"
    health = client.get_system_health()
    assert health["valid"] is True and len(health["computes"]) == 1
    stats = client.get_system_stats()
    assert stats["all"]["cpu"]["count"] > 0 and len(stats["computes"]) == 1


def test_diagnostics_every_category_answers(client):  # noqa: ANN001
    diagnostics = client.get_diagnostics(DiagnosticsCategory.ALL)
    assert set(diagnostics) == {c.value for c in DiagnosticsCategory} - {"all"}
    failed = {name for name, body in diagnostics.items() if isinstance(body, dict) and "error" in body}
    assert not failed
    assert diagnostics["services"] == {"dispatcher": True, "termws": True}


def test_lists_and_joins_labs_and_reads_their_elements(client, live):  # noqa: ANN001
    labs = client.all_labs(show_all=True)
    assert sorted(lab.title for lab in labs) == ["Lab 1", "Lab 2"]
    running = next(lab for lab in labs if lab.state() == "STARTED")
    assert [node.label for node in running.nodes()] == ["r0", "r1", "r2"]
    assert len(running.links()) == 2 and len(running.interfaces()) == 6
    assert running.get_node_by_label("r1").node_definition == "iosv"
    link = running.links()[0]
    assert {link.node_a.label, link.node_b.label} == {"r0", "r1"}
    running.sync_states()
    assert {node.state for node in running.nodes()} == {"BOOTED"}
    assert {link.state for link in running.links()} == {"STARTED"}
    assert client.find_labs_by_title("Lab 2")[0].title == "Lab 2"
    details = running.details()
    assert details["node_count"] == 3 and details["state"] == "STARTED"
    # A second session joins the same lab by id and sees the same thing
    other = live.client().join_existing_lab(running.id)
    assert [n.id for n in other.nodes()] == [n.id for n in running.nodes()]
    with pytest.raises(LabNotFound):
        client.join_existing_lab("00000000-0000-4000-8000-000000000000")


def test_start_stop_wipe_remove_with_states_and_events(client, live):  # noqa: ANN001
    lab = _imported(client, "Scripted", nodes=3)
    assert lab.state() == "DEFINED_ON_CORE" and len(lab.nodes()) == 3
    lab.start(wait=True)
    assert lab.state() == "STARTED" and lab.has_converged()
    lab.sync_states()
    assert all(node.is_booted() for node in lab.nodes())
    assert lab.sync_events() is True
    assert {e["element_type"] for e in lab.events} >= {"LAB", "NODE", "INTERFACE", "LINK"}
    # The refusals CML makes: a running lab cannot be wiped or removed
    with pytest.raises(APIError, match="stopped before it is wiped"):
        lab.wipe(wait=False)
    with pytest.raises(APIError, match="running"):
        live.client().join_existing_lab(lab.id).remove()
    lab.stop(wait=True)
    lab.sync_states()
    assert lab.state() == "STOPPED" and {n.state for n in lab.nodes()} == {"STOPPED"}
    lab.wipe(wait=True)
    lab.sync_states()
    assert lab.state() == "DEFINED_ON_CORE" and {i.state for i in lab.interfaces()} == {"DEFINED_ON_CORE"}
    lab_id = lab.id
    lab.remove()
    assert lab_id not in client.get_lab_list()


def test_a_single_node_starts_and_stops(client):  # noqa: ANN001
    lab = _imported(client, "Nodes", nodes=2)
    first, second = lab.nodes()
    first.start(wait=True)
    assert first.has_converged() and first.is_booted() and lab.state() == "STARTED"
    lab.sync_states()
    assert second.state == "DEFINED_ON_CORE" and lab.links()[0].state == "DEFINED_ON_CORE"
    first.stop(wait=True)
    lab.sync_states()
    assert first.state == "STOPPED"
    lab.wipe(wait=True)
    lab.remove()


def test_download_and_reimport_round_trip(client):  # noqa: ANN001
    original = _imported(client, "Round trip", nodes=4)
    text = original.download()
    assert yaml.safe_load(text)["lab"]["title"] == "Round trip"
    copy = client.import_lab(text, title="Round trip copy")
    assert copy.id != original.id
    assert [n.label for n in copy.nodes()] == [n.label for n in original.nodes()]
    assert sorted((link.node_a.label, link.node_b.label) for link in copy.links()) == sorted(
        (link.node_a.label, link.node_b.label) for link in original.links()
    )
    again = yaml.safe_load(copy.download())
    first = yaml.safe_load(text)
    assert again["lab"]["title"] == "Round trip copy"
    assert (again["nodes"], again["links"]) == (first["nodes"], first["links"])
    for lab in (original, copy):
        lab.remove()


def test_licensing_status_register_and_deregister(client):  # noqa: ANN001
    assert client.licensing.status()["registration"]["status"] == "NOT_REGISTERED"
    assert client.licensing.register_wait("SIMULATED-TOKEN") is True
    status = client.licensing.status()
    assert (status["registration"]["status"], status["authorization"]["status"]) == ("COMPLETED", "IN_COMPLIANCE")
    assert client.licensing.register_renew() is True and client.licensing.renew_authorization() is True
    assert client.licensing.deregister() == 204
    with pytest.raises(APIError):
        client.licensing.deregister()  # already deregistered: CML answers 400


def test_users_and_definitions(client):  # noqa: ANN001
    users = client.user_management.users()
    assert [u["username"] for u in users] == ["admin"]
    admin_id = client.user_management.user_id("admin")
    assert client.user_management.get_user(admin_id)["admin"] is True
    assert "iosv" in {d["id"] for d in client.definitions.node_definitions()}
    assert client.definitions.image_definitions()


def test_logout_then_the_client_logs_in_again(live):  # noqa: ANN001
    client = live.client()
    token = client._session.auth.token
    assert client.logout() is True
    # The old token is gone on the controller; the next call re-authenticates on the 401
    assert client.get_lab_list()
    assert client._session.auth.token != token


def test_bad_credentials_are_refused(live):  # noqa: ANN001
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception, match="403|authenticate"):
            live.client(password="wrong", raise_for_auth_failure=True)


def _imported(client: ClientLibrary, title: str, nodes: int) -> Any:
    """`client.import_lab` of a sample topology; an imported lab does not take the client's
    convergence wait (virl2-client 2.10 leaves it at 5 s), so it is set here."""
    lab = client.import_lab(yaml.safe_dump(sample_topology(title, nodes=nodes)), title=title)
    lab.wait_time = 0.05
    return lab
