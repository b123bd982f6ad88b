"""CML client ↔ simulator fixtures: `spec` (the OpenAPI subset checker) and `sim` (a fresh
simulated fleet whose every recorded exchange must conform to the spec when the test ends)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cml_contract import BASE, Clock, OpenApiSubset, Recorder

from cmlcm.adapters.cml.credentials import CmlCredentials
from cmlcm.adapters.cml.session import CmlFleetSession
from cmlcm.adapters.cml.tokens import TokenCache
from cmlsim import SimulatedFleet, build_app


@pytest.fixture(scope="session")
def spec() -> OpenApiSubset:
    return OpenApiSubset()


@dataclass
class SimEnv:
    """A simulated fleet, its clock, and the recorder every client of this test goes through."""

    fleet: SimulatedFleet
    clock: Clock
    recorder: Recorder
    #: Controllers whose answers are broken on purpose (not validated).
    exempt: set[str] = field(default_factory=set)
    tokens: TokenCache = field(default_factory=TokenCache)

    def session(self, *, timeout: float = 2.0, password: str | None = None, **kwargs: Any) -> CmlFleetSession:
        credentials = CmlCredentials("admin", password or self.fleet.password)
        kwargs.setdefault("token_cache", self.tokens)
        return CmlFleetSession(lambda: credentials, timeout=timeout, transport=self.recorder, **kwargs)

    def admin(self) -> httpx.AsyncClient:
        """A raw client for the `/_sim` admin API (not recorded)."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(self.fleet)), base_url="http://sim")

    @staticmethod
    def url(controller_id: str) -> str:
        return BASE.format(cid=controller_id)


@pytest.fixture
def sim(spec: OpenApiSubset) -> Iterator[SimEnv]:
    """A fresh simulator; at teardown every recorded exchange must conform to the spec."""
    clock = Clock()
    fleet = SimulatedFleet(clock=clock, converge_seconds=5, licence_seconds=10)
    env = SimEnv(fleet, clock, Recorder(httpx.ASGITransport(app=build_app(fleet))))
    yield env
    problems = [
        problem
        for exchange in env.recorder.exchanges
        if exchange.api_path is not None and exchange.controller_id not in env.exempt
        for problem in spec.check(exchange)
    ]
    assert not problems, "simulator broke the CML 2.9 contract:\n" + "\n".join(problems[:20])
