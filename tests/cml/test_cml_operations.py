"""Every operation of the vendored CML 2.9 OpenAPI subset, driven raw (httpx through the
recording transport) against the simulator: success and error answers, each validated against
the subset at teardown by the `sim` fixture, plus the behaviour behind them (the lab state
machine, element states converging, lab events appended). The last test proves the walks
together exercise every operation the subset declares, so a new operation needs a walk."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import yaml

from cmlsim import sample_topology

Walk = Callable[[httpx.AsyncClient, Any], Awaitable[None]]


def _run(sim: Any, walk: Walk, *, labs: int = 2, running_labs: int = 1) -> None:
    """A controller `c1` with `labs` labs, and a logged-in raw client on it (recorded)."""
    sim.fleet.add("c1", labs=labs, running_labs=running_labs)

    async def go() -> None:
        async with httpx.AsyncClient(transport=sim.recorder, base_url=sim.url("c1") + "/") as http:
            token = (await http.post("authenticate", json={"username": "admin", "password": sim.fleet.password})).json()
            http.headers["Authorization"] = f"Bearer {token}"
            await walk(http, sim)

    asyncio.run(go())


def _templates(sim: Any, spec: Any) -> set[tuple[str, str]]:
    found = set()
    for exchange in sim.recorder.exchanges:
        if exchange.api_path is not None:
            hit = spec.find(exchange.method, exchange.api_path)
            if hit is not None:
                found.add((exchange.method, hit[0]))
    return found


# --- authentication and sessions ---


async def walk_auth(http: httpx.AsyncClient, sim: Any) -> None:
    extended = await http.post("auth_extended", json={"username": "admin", "password": sim.fleet.password})
    assert extended.status_code == 200 and extended.json()["username"] == "admin" and extended.json()["admin"]
    refused = await http.post("auth_extended", json={"username": "admin", "password": "nope"})
    assert refused.status_code == 403 and refused.json()["code"] == 403
    assert (await http.get("authok")).json() == "OK"
    assert (await http.get("web_session_timeout")).json() == 14400
    assert (await http.patch("web_session_timeout/3600")).status_code == 200
    assert (await http.get("web_session_timeout")).json() == 3600
    assert (await http.patch("web_session_timeout/5")).status_code == 422  # below CML's 300 s floor
    # Logging out everywhere invalidates the other session's token too
    other = extended.json()["token"]
    assert (await http.delete("logout", params={"clear_all_sessions": "true"})).json() is True
    assert (await http.get("authok", headers={"Authorization": f"Bearer {other}"})).status_code == 401
    assert (await http.get("authok")).status_code == 401


def test_authentication_sessions_and_logout(sim):  # noqa: ANN001
    _run(sim, walk_auth)


# --- system ---


async def walk_system(http: httpx.AsyncClient, sim: Any) -> None:
    info = (await http.get("system_information")).json()
    assert info["version"] == "2.9.0" and info["ready"] is True
    assert (await http.get("system_health")).json()["valid"] is True
    stats = (await http.get("system_stats")).json()
    compute_id = next(iter(stats["computes"]))
    hosts = (await http.get("system/compute_hosts")).json()
    assert [h["id"] for h in hosts] == [compute_id] and hosts[0]["node_counts"]["running_nodes"] == 3
    assert len(hosts[0]["nodes"]) == 3
    assert (await http.get("system/maintenance_mode")).json()["maintenance_mode"] is False
    on = await http.patch("system/maintenance_mode", json={"maintenance_mode": True})
    assert on.json()["maintenance_mode"] is True
    assert (await http.patch("system/maintenance_mode", json={"maintenance_mode": "yes"})).status_code == 422
    for category in ("computes", "labs", "lab_events", "node_launch_queue", "services"):
        assert (await http.get(f"diagnostics/{category}")).status_code == 200, category
    for category in ("node_definitions", "user_list", "licensing", "startup_scheduler"):
        assert (await http.get(f"diagnostics/{category}")).status_code == 200, category
    labs = (await http.get("diagnostics/labs")).json()
    assert len(labs) == 2 and all(lab["created"] for lab in labs.values())
    assert (await http.get("diagnostics/licensing")).json()["started"] == 3
    assert (await http.get("diagnostics/bogus")).status_code == 422
    assert (await http.get("telemetry")).json() == {"opt_in": None, "show_modal": True}
    events = (await http.get("telemetry/events")).json()
    assert {"import_lab", "user_activity", "maintenance_state_change"} <= {e["category"] for e in events}


def test_system_operations(sim):  # noqa: ANN001
    _run(sim, walk_system)


# --- labs: the state machine ---


async def walk_labs(http: httpx.AsyncClient, sim: Any) -> None:
    ids = (await http.get("labs", params={"show_all": "true"})).json()
    assert len(ids) == 2
    created = await http.post("labs", json={"title": "Empty lab", "description": "made by POST"})
    assert created.status_code == 200 and created.json()["node_count"] == 0
    assert (await http.post("labs", json={"title": ""})).status_code == 422
    imported = await http.post(
        "import", params={"title": "Walk"}, content=yaml.safe_dump(sample_topology("T", nodes=3)).encode()
    )
    lab_id = imported.json()["id"]
    assert (await http.post("import", content=b"lab: [unclosed")).status_code == 400
    dangling = {
        "lab": {"version": "0.2.2"},
        "nodes": [],
        "links": [{"id": "l0", "n1": "n0", "n2": "n1", "i1": "a", "i2": "b"}],
    }
    assert (await http.post("import", content=yaml.safe_dump(dangling).encode())).status_code == 400
    lab = (await http.get(f"labs/{lab_id}")).json()
    assert (lab["lab_title"], lab["state"], lab["node_count"], lab["link_count"]) == ("Walk", "DEFINED_ON_CORE", 3, 2)
    assert (await http.get(f"labs/{lab_id}/state")).json() == "DEFINED_ON_CORE"

    # Start: the lab is STARTED at once, its nodes boot (STARTED) until they converge (BOOTED)
    assert (await http.put(f"labs/{lab_id}/start")).status_code == 204
    assert (await http.get(f"labs/{lab_id}/state")).json() == "STARTED"
    assert (await http.get(f"labs/{lab_id}/check_if_converged")).json() is False
    states = (await http.get(f"labs/{lab_id}/lab_element_state")).json()
    assert set(states["nodes"].values()) == {"STARTED"} and set(states["links"].values()) == {"STARTED"}
    # CML refuses to wipe or delete a running lab
    wipe = await http.put(f"labs/{lab_id}/wipe")
    assert wipe.status_code == 400 and "stopped" in wipe.json()["description"]
    assert (await http.delete(f"labs/{lab_id}")).status_code == 400
    sim.clock.advance(6)
    assert (await http.get(f"labs/{lab_id}/check_if_converged")).json() is True
    states = (await http.get(f"labs/{lab_id}/lab_element_state")).json()
    assert set(states["nodes"].values()) == {"BOOTED"} and set(states["interfaces"].values()) == {"STARTED"}

    # Stop, then wipe: every element follows; each change is a lab event
    assert (await http.put(f"labs/{lab_id}/stop")).status_code == 204
    assert (await http.get(f"labs/{lab_id}/state")).json() == "STOPPED"
    assert set((await http.get(f"labs/{lab_id}/lab_element_state")).json()["links"].values()) == {"STOPPED"}
    assert (await http.put(f"labs/{lab_id}/wipe")).status_code == 204
    assert (await http.get(f"labs/{lab_id}/state")).json() == "DEFINED_ON_CORE"
    events = (await http.get(f"labs/{lab_id}/events")).json()
    node_moves = [e["data"]["state"] for e in events if e["element_type"] == "NODE"]
    assert node_moves == ["STARTED"] * 3 + ["STOPPED"] * 3 + ["DEFINED_ON_CORE"] * 3
    assert [e["data"]["state"] for e in events if e["element_type"] == "LAB" and e["event"] == "STATE_CHANGED"] == [
        "STARTED",
        "STOPPED",
        "DEFINED_ON_CORE",
    ]

    # Topology (UUID ids, interfaces under their nodes) and the YAML download (the file's ids)
    topology = (await http.get(f"labs/{lab_id}/topology", params={"exclude_configurations": "true"})).json()
    assert {n["id"] for n in topology["nodes"]} == set(states["nodes"]) and topology["lab"]["title"] == "Walk"
    download = await http.get(f"labs/{lab_id}/download")
    assert download.headers["content-type"].startswith("application/x-yaml")
    text = yaml.safe_load(download.text)
    assert [n["id"] for n in text["nodes"]] == ["n0", "n1", "n2"] and text["lab"]["title"] == "Walk"

    # Delete: gone, and every lab path answers CML's 404 for it
    assert (await http.delete(f"labs/{lab_id}")).status_code == 204
    for path in ("", "/state", "/topology", "/download", "/events", "/lab_element_state", "/check_if_converged"):
        missing = await http.get(f"labs/{lab_id}{path}")
        assert missing.status_code == 404 and missing.json()["description"] == f"Lab not found: {lab_id}", path
    for action in ("start", "stop", "wipe"):
        assert (await http.put(f"labs/{lab_id}/{action}")).status_code == 404
    assert (await http.delete(f"labs/{lab_id}")).status_code == 404


def test_lab_lifecycle_state_machine_and_events(sim):  # noqa: ANN001
    _run(sim, walk_labs)


# --- nodes, links, interfaces ---


async def walk_elements(http: httpx.AsyncClient, sim: Any) -> None:
    lab_id = (await http.post("import", content=yaml.safe_dump(sample_topology("E", nodes=2)).encode())).json()["id"]
    node_ids = (await http.get(f"labs/{lab_id}/nodes")).json()
    nodes = (await http.get(f"labs/{lab_id}/nodes", params={"data": "true", "exclude_configurations": "true"})).json()
    assert [n["id"] for n in nodes] == node_ids and [n["label"] for n in nodes] == ["r0", "r1"]
    first = node_ids[0]
    node = (await http.get(f"labs/{lab_id}/nodes/{first}")).json()
    assert (node["state"], node["boot_progress"]) == ("DEFINED_ON_CORE", "Not running")
    interface_ids = (await http.get(f"labs/{lab_id}/nodes/{first}/interfaces")).json()
    interfaces = (await http.get(f"labs/{lab_id}/nodes/{first}/interfaces", params={"data": "true"})).json()
    assert [i["id"] for i in interfaces] == interface_ids and [i["is_connected"] for i in interfaces] == [False, True]
    interface = (await http.get(f"labs/{lab_id}/interfaces/{interface_ids[1]}")).json()
    assert interface["node"] == first and interface["state"] == "DEFINED_ON_CORE"
    link_ids = (await http.get(f"labs/{lab_id}/links")).json()
    links = (await http.get(f"labs/{lab_id}/links", params={"data": "true"})).json()
    assert [link["id"] for link in links] == link_ids and links[0]["interface_a"] == interface_ids[1]
    assert (await http.get(f"labs/{lab_id}/links/{link_ids[0]}")).json()["node_a"] == first

    # One node started: it boots, its interfaces run, the link waits for the other end
    assert (await http.put(f"labs/{lab_id}/nodes/{first}/state/start")).status_code == 204
    assert (await http.get(f"labs/{lab_id}/nodes/{first}/state")).json() == {"state": "STARTED", "progress": "Booting"}
    assert (await http.get(f"labs/{lab_id}/nodes/{first}/check_if_converged")).json() is False
    assert (await http.get(f"labs/{lab_id}/state")).json() == "STARTED"
    assert (await http.get(f"labs/{lab_id}/interfaces/{interface_ids[1]}")).json()["state"] == "STARTED"
    assert (await http.get(f"labs/{lab_id}/links/{link_ids[0]}")).json()["state"] == "DEFINED_ON_CORE"
    addresses = (await http.get(f"labs/{lab_id}/layer3_addresses")).json()
    assert list(addresses) == [first] and set(addresses[first]["interfaces"]) == set(interface_ids)
    sim.clock.advance(6)
    assert (await http.get(f"labs/{lab_id}/nodes/{first}/check_if_converged")).json() is True
    assert (await http.get(f"labs/{lab_id}/nodes/{first}/state")).json()["state"] == "BOOTED"
    stats = (await http.get(f"labs/{lab_id}/simulation_stats")).json()
    assert {n["id"]: n["state"] for n in stats["nodes"]} == {first: "BOOTED", node_ids[1]: "DEFINED_ON_CORE"}
    assert (await http.put(f"labs/{lab_id}/nodes/{first}/state/stop")).status_code == 204
    assert (await http.get(f"labs/{lab_id}/state")).json() == "STOPPED"
    assert (await http.get(f"labs/{lab_id}/resource_pools")).json() == []

    # Unknown elements answer CML's 404
    ghost = "00000000-0000-4000-8000-000000000000"
    for path in (f"nodes/{ghost}", f"nodes/{ghost}/state", f"nodes/{ghost}/interfaces", f"links/{ghost}"):
        assert (await http.get(f"labs/{lab_id}/{path}")).status_code == 404, path
    assert (await http.get(f"labs/{lab_id}/interfaces/{ghost}")).status_code == 404
    assert (await http.get(f"labs/{lab_id}/nodes/{ghost}/check_if_converged")).status_code == 404
    assert (await http.put(f"labs/{lab_id}/nodes/{ghost}/state/start")).status_code == 404
    assert (await http.put(f"labs/{lab_id}/nodes/{ghost}/state/stop")).status_code == 404


def test_nodes_links_and_interfaces_have_their_own_states(sim):  # noqa: ANN001
    _run(sim, walk_elements, labs=0)


# --- catalogue, tiles, users ---


async def walk_catalogue(http: httpx.AsyncClient, sim: Any) -> None:
    ids = (await http.get("labs")).json()
    titles = {lab_id: (await http.get(f"labs/{lab_id}")).json()["lab_title"] for lab_id in ids}
    tiles = (await http.get("populate_lab_tiles")).json()["lab_tiles"]
    assert {lab_id: tile["lab_title"] for lab_id, tile in tiles.items()} == titles
    definitions = {d["id"] for d in (await http.get("node_definitions")).json()}
    assert "iosv" in definitions
    images = (await http.get("image_definitions")).json()
    assert {i["node_definition_id"] for i in images} <= definitions
    users = (await http.get("users")).json()
    assert [u["username"] for u in users] == ["admin"] and sorted(users[0]["labs"]) == sorted(ids)
    admin_id = (await http.get("users/admin/id")).json()
    assert (await http.get(f"users/{admin_id}")).json()["username"] == "admin"
    assert (await http.get("users/nobody/id")).status_code == 404
    assert (await http.get("users/00000000-0000-4000-8000-000000000000")).status_code == 404


def test_catalogue_tiles_and_users(sim):  # noqa: ANN001
    _run(sim, walk_catalogue)


# --- licensing ---


async def walk_licensing(http: httpx.AsyncClient, sim: Any) -> None:
    assert (await http.get("licensing")).json()["registration"]["status"] == "NOT_REGISTERED"
    assert (await http.put("licensing/registration/renew")).status_code == 400  # nothing to renew yet
    assert (await http.put("licensing/authorization/renew")).status_code == 400
    assert (await http.put("licensing/product_license", json="CML_Personal")).status_code == 204
    assert (await http.put("licensing/product_license", json="not a licence!")).status_code == 400
    assert (await http.post("licensing/registration", json={"token": "VALID", "reregister": False})).status_code == 204
    assert (await http.post("licensing/registration", json={"nope": 1})).status_code == 400
    sim.clock.advance(11)
    licence = (await http.get("licensing")).json()
    assert licence["registration"]["status"] == "COMPLETED"
    assert licence["product_license"] == {"active": "CML_Personal", "is_enterprise": False}
    assert (await http.post("licensing/registration", json={"token": "VALID"})).status_code == 409
    assert (await http.put("licensing/registration/renew")).status_code == 204
    assert (await http.put("licensing/authorization/renew")).status_code == 204
    assert (await http.delete("licensing/deregistration")).status_code == 204
    assert (await http.delete("licensing/deregistration")).status_code == 400


def test_licensing_operations(sim):  # noqa: ANN001
    _run(sim, walk_licensing)


# --- unknown paths and methods ---


async def walk_unknown(http: httpx.AsyncClient, sim: Any) -> None:
    for method, path in (("GET", "sessions"), ("GET", "labs/x/y/z"), ("POST", "system_stats"), ("PATCH", "labs")):
        answer = await http.request(method, path)
        assert answer.status_code in (404, 405) and answer.headers["content-type"] == "application/json", path
        assert answer.json()["code"] == answer.status_code and answer.json()["description"]


def test_unknown_paths_and_methods_answer_cml_error_bodies(sim):  # noqa: ANN001
    _run(sim, walk_unknown)


def test_every_operation_of_the_subset_is_exercised(sim, spec):  # noqa: ANN001
    """The walks above, run together, call every (method, path) the subset declares."""

    async def everything(http: httpx.AsyncClient, sim: Any) -> None:
        for walk in (walk_system, walk_labs, walk_elements, walk_catalogue, walk_licensing, walk_auth):
            await walk(http, sim)
            # walk_auth logs out: log in again for the next walk
            token = (await http.post("authenticate", json={"username": "admin", "password": sim.fleet.password})).json()
            http.headers["Authorization"] = f"Bearer {token}"

    _run(sim, everything)
    missing = spec.operations() - _templates(sim, spec)
    assert not missing, f"operations without a conformance walk: {sorted(missing)}"


def test_a_handler_that_raises_answers_cml_error_body(monkeypatch):  # noqa: ANN001
    from cmlsim import SimulatedFleet, build_app

    fleet = SimulatedFleet()
    fleet.add("c1")

    def broken(controller: Any) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(fleet, "running_nodes", broken)

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(fleet), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim/controllers/c1/api/v0/") as http:
            token = (await http.post("authenticate", json={"username": "admin", "password": fleet.password})).json()
            return await http.get("system_stats", headers={"Authorization": f"Bearer {token}"})

    answer = asyncio.run(go())
    assert answer.status_code == 500 and answer.json() == {"code": 500, "description": "Internal Server Error"}
