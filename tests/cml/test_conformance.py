"""The real CML client against the simulator, every operation the product uses, success and
error paths. The `sim` fixture validates every exchange against the CML 2.9 OpenAPI subset at
teardown; these tests also assert that the walk covered what it claims to cover."""

from __future__ import annotations

import asyncio
import json

import pytest
import yaml
from cml_contract import Exchange

from cmlcm.adapters.cml.errors import CmlAuthError, CmlNotFound, CmlRejected
from cmlsim import sample_topology


def _covered(sim) -> set[tuple[str, str, int]]:  # noqa: ANN001
    return {(e.method, e.api_path, e.status) for e in sim.recorder.exchanges if e.api_path}


def test_full_client_walk_conforms_and_reads_back_what_it_did(sim):  # noqa: ANN001
    # Given a controller with two labs, one running
    sim.fleet.add("c1", labs=2, running_labs=1)

    async def walk() -> None:
        async with sim.session() as session:
            cml = session.client(sim.url("c1"))
            # When the client reads the system
            info = await cml.ensure_ready()
            assert (info.version, info.ready, info.supported) == ("2.9.0", True, True)
            health = await cml.system_health()
            assert health.valid is True and health.healthy_computes == 1 and health.is_licensed is False
            summary = (await cml.system_stats()).summary
            assert (summary.running_nodes, summary.total_nodes, summary.computes) == (3, 6, 1)
            assert 0 < summary.cpu_percent < 100 and 0 < summary.memory_used < summary.memory_total
            assert await cml.authok() is True
            # ... manages labs
            labs = await cml.list_labs()
            assert sorted(lab.state for lab in labs) == ["DEFINED_ON_CORE", "STARTED"]
            assert all(lab.owner == "admin" and lab.created and lab.created.tzinfo for lab in labs)
            new_id = await cml.import_lab(yaml.safe_dump(sample_topology("Imported", nodes=4)), title="From API")
            lab = await cml.get_lab(new_id)
            assert (lab.id, lab.title, lab.node_count, lab.link_count, lab.state) == (
                new_id,
                "From API",
                4,
                3,
                "DEFINED_ON_CORE",
            )
            await cml.start_lab(new_id)
            assert await cml.check_if_converged(new_id) is False
            sim.clock.advance(6)
            assert await cml.check_if_converged(new_id) is True
            assert (await cml.system_stats()).summary.running_nodes == 7
            with pytest.raises(CmlRejected, match="running"):
                await cml.delete_lab(new_id)
            await cml.stop_lab(new_id)
            await cml.wipe_lab(new_id)
            text = await cml.download_lab(new_id)
            assert yaml.safe_load(text)["lab"]["title"] == "From API"  # the lab as it is now
            await cml.delete_lab(new_id)
            with pytest.raises(CmlNotFound, match=f"Lab not found: {new_id}"):
                await cml.get_lab(new_id)
            with pytest.raises(CmlRejected, match="invalid YAML"):
                await cml.import_lab("lab: [unclosed")
            # ... and the licence, through its background registration
            licence = await cml.licensing_status()
            assert licence.registration_status == "NOT_REGISTERED" and not licence.licensed
            await cml.register_licence("VALIDTOKEN123")
            assert (await cml.licensing_status()).registration_status == "IN_PROGRESS"
            sim.clock.advance(11)
            licence = await cml.licensing_status()
            assert licence.licensed and licence.registration_expires is not None
            with pytest.raises(CmlRejected, match="409"):
                await cml.register_licence("VALIDTOKEN123")
            await cml.register_licence("VALIDTOKEN123", reregister=True)
            assert await cml.deregister_licence() == "completed"
            assert await cml.deregister_licence() == "already_deregistered"
            events = await cml.telemetry_events(categories={"start_lab", "import_lab"})
            assert {e.category for e in events} == {"start_lab", "import_lab"}
            await cml.logout()

    asyncio.run(walk())
    # Then the walk produced every kind of answer the product meets (all validated at teardown)
    covered = _covered(sim)
    assert {status for _, _, status in covered} >= {200, 204, 400, 404, 409}
    assert ("DELETE", "/licensing/deregistration", 400) in covered
    assert ("POST", "/import", 400) in covered and ("DELETE", "/logout", 200) in covered


def test_error_bodies_conform_bad_login_and_missing_token(sim, spec):  # noqa: ANN001
    sim.fleet.add("c1")

    async def walk() -> None:
        async with sim.session(password="wrong") as session:
            # A request without a token is refused with a documented error body
            response = await session.http.get(f"{sim.url('c1')}/labs")
            assert response.status_code == 401 and response.json()["code"] == 401
            response = await session.http.get(f"{sim.url('c1')}/authok")
            assert response.status_code == 401
            # Bad credentials are an auth fault whose message carries no password
            with pytest.raises(CmlAuthError, match="login refused") as caught:
                await session.client(sim.url("c1")).list_lab_ids()
            assert "wrong" not in str(caught.value)

    asyncio.run(walk())
    covered = _covered(sim)
    assert {("POST", "/authenticate", 403), ("GET", "/labs", 401), ("GET", "/authok", 401)} <= covered


def test_unknown_controller_answers_a_documented_404(sim):  # noqa: ANN001
    async def walk() -> None:
        async with sim.session() as session:
            with pytest.raises(CmlNotFound, match="No controller nope"):
                await session.client(sim.url("nope")).system_information()

    asyncio.run(walk())
    assert _covered(sim) == {("GET", "/system_information", 404)}


def test_a_body_with_an_invented_field_fails_conformance(spec):  # noqa: ANN001
    """The strict checker is not vacuous: an extra key, a missing key and a bad date all fail."""
    info = {"version": "2.9.0", "ready": True, "allow_ssh_pubkey_auth": False, "oui": None}
    assert spec.validate(spec.schema("SystemInformation"), info) == []
    assert spec.validate(spec.schema("SystemInformation"), {**info, "uptime": 5})
    assert spec.validate(spec.schema("Error"), {"code": 404, "description": "x", "extra": 1})  # closed by the helper
    assert spec.validate(spec.schema("Error"), {"description": "x"})
    event = {"category": "start_lab", "timestamp": "yesterday", "data": {}}
    assert spec.validate(spec.schema("TelemetryEventResponse"), event)


def test_exchange_checker_catches_wrong_bodies_and_statuses(spec):  # noqa: ANN001
    def exchange(method: str, path: str, status: int, body: bytes, request: bytes = b"") -> Exchange:
        return Exchange(
            method, f"/controllers/c1/api/v0{path}", "application/json", request, status, "application/json", body
        )

    assert spec.check(exchange("GET", "/authok", 200, b'"OK"')) == []
    assert spec.check(exchange("GET", "/authok", 200, b"true"))  # the spec says string
    assert spec.check(exchange("PUT", "/labs/x/start", 204, b"{}"))  # a 204 has no body
    # An invalid request body the server accepted breaks the contract; one it refused is a
    # correct refusal (the walks send some on purpose)
    assert spec.check(exchange("POST", "/authenticate", 200, b'"aaa.bbb.ccc"', b'{"username": "a"}'))
    refused = exchange("POST", "/authenticate", 422, b'{"code": 422, "description": "no"}', b'{"username": "a"}')
    assert spec.check(refused) == []
    with pytest.raises(AssertionError, match="does not declare"):
        spec.check(exchange("GET", "/labs", 201, b"[]"))
    assert "not in the OpenAPI subset" in spec.check(exchange("GET", "/sessions", 200, b"[]"))[0]
    # An unknown path conforms only as CML's refusal: 404/405 with its JSON error body
    assert spec.check(exchange("GET", "/sessions", 404, b'{"code": 404, "description": "Not found"}')) == []
    plain = Exchange("GET", "/controllers/c1/api/v0/sessions", "", b"", 404, "text/plain", b"Not Found")
    assert "not CML's JSON error body" in spec.check(plain)[0]
    # The download is the YAML file, and it must be a CML topology
    yaml_body = yaml.safe_dump(sample_topology("Lab", nodes=2)).encode()
    download = Exchange("GET", "/controllers/c1/api/v0/labs/x/download", "", b"", 200, "application/x-yaml", yaml_body)
    assert spec.check(download) == []
    broken = Exchange("GET", download.path, "", b"", 200, "application/x-yaml", b"lab: {}\nnodes: 3\n")
    assert spec.check(broken)


def test_seeded_topology_is_a_valid_cml_topology(spec):  # noqa: ANN001
    """What the simulator imports and downloads is the spec's Topology, so real YAML fits too."""
    topology = json.loads(json.dumps(sample_topology("Lab", nodes=3)))
    assert spec.validate(spec.schema("Topology"), topology) == []
