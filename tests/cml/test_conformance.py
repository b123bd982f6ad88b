"""The CML client against the simulator; every simulator body is validated against the CML 2.9
OpenAPI subset (success and error bodies), so client and simulator keep to the same contract."""
from __future__ import annotations

import asyncio
import json

import pytest

from cmlcm.adapters.cml.errors import CmlAuthError, CmlNotFound, CmlRejected
from cmlcm.adapters.cml.credentials import CmlCredentials
from cmlsim import sample_topology

import yaml

API_PREFIX = "/api/v0"


def _api_path(path: str) -> str:
    return path.split(API_PREFIX, 1)[1]


def _validate_all(sim, spec) -> set[tuple[str, str, int]]:  # noqa: ANN001
    """Validate every recorded exchange; returns the (method, template, status) seen."""
    seen = set()
    problems = []
    for exchange in sim.recorder.exchanges:
        path = _api_path(exchange.path)
        template, _ = spec.operation(exchange.method, path)
        seen.add((exchange.method, template, exchange.status))
        schema = spec.schema_for(exchange.method, path, exchange.status)
        if exchange.status == 204 or schema is None:
            assert exchange.body == b"", f"{exchange.method} {path} {exchange.status} should have no body"
            continue
        assert exchange.content_type.startswith("application/json"), (exchange.method, path)
        body = json.loads(exchange.body)
        errors = spec.validate(schema, body)
        if errors:
            problems.append(f"{exchange.method} {path} {exchange.status}: {errors[:3]}")
    assert not problems, "\n".join(problems)
    return seen


def test_full_client_walk_validates_against_the_spec(sim, spec):  # noqa: ANN001
    sim.fleet.add("c1", labs=2, running_labs=1)

    async def walk() -> None:
        async with sim.session() as session:
            cml = session.client(sim.url("c1"))
            info = await cml.system_information()
            assert info.version == "2.9.0" and info.ready
            health = await cml.system_health()
            assert health.valid is True
            stats = await cml.system_stats()
            assert stats.running_nodes == 3 and stats.total_nodes == 6 and 0 < stats.cpu_percent < 100
            labs = await cml.list_labs()
            assert sorted(lab.state for lab in labs) == ["DEFINED_ON_CORE", "STARTED"]
            new_id = await cml.import_lab(yaml.safe_dump(sample_topology("Imported", nodes=4)), title="From API")
            lab = await cml.get_lab(new_id)
            assert (lab.title, lab.node_count, lab.link_count) == ("From API", 4, 3)
            await cml.start_lab(new_id)
            assert await cml.check_if_converged(new_id) is False
            sim.clock.advance(6)
            assert await cml.check_if_converged(new_id) is True
            await cml.stop_lab(new_id)
            await cml.wipe_lab(new_id)
            text = await cml.download_lab(new_id)
            assert yaml.safe_load(text)["lab"]["title"] == "Imported"
            await cml.delete_lab(new_id)
            with pytest.raises(CmlNotFound, match="Lab not found"):
                await cml.get_lab(new_id)
            with pytest.raises(CmlRejected, match="invalid YAML"):
                await cml.import_lab("lab: [unclosed")
            licence = await cml.licensing_status()
            assert licence.registration_status == "NOT_REGISTERED" and not licence.licensed
            await cml.register_licence("VALIDTOKEN123")
            assert (await cml.licensing_status()).registration_status == "IN_PROGRESS"
            sim.clock.advance(11)
            assert (await cml.licensing_status()).licensed
            assert await cml.deregister_licence() == "completed"
            with pytest.raises(CmlRejected):
                await cml.deregister_licence()
            events = await cml.telemetry_events(categories={"start_lab", "import_lab"})
            assert {e.category for e in events} == {"start_lab", "import_lab"}

    asyncio.run(walk())
    seen = _validate_all(sim, spec)
    # Error bodies were produced and validated too.
    assert {s for _, _, s in seen} >= {200, 204, 400, 404}


def test_error_bodies_validate_bad_login_and_missing_token(sim, spec):  # noqa: ANN001
    sim.fleet.add("c1")

    async def walk() -> None:
        async with sim.session() as session:
            raw = session.http
            base = sim.url("c1")
            response = await raw.get(f"{base}/labs")
            assert response.status_code == 401
            bad = session.client(base)
            session.credentials = lambda: CmlCredentials("admin", "wrong")
            with pytest.raises(CmlAuthError, match="login refused"):
                await bad.list_lab_ids()
            response = await raw.get(f"{base}/labs/00000000-0000-4000-8000-000000000000")
            assert response.status_code == 401

    asyncio.run(walk())
    seen = _validate_all(sim, spec)
    assert ("POST", "/authenticate", 403) in seen and ("GET", "/labs", 401) in seen


def test_unknown_controller_is_a_not_found(sim):  # noqa: ANN001
    async def walk() -> None:
        async with sim.session() as session:
            with pytest.raises(CmlNotFound):
                await session.client(sim.url("nope")).system_information()

    asyncio.run(walk())
