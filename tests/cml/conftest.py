"""CML client ↔ simulator fixtures: the client runs against the simulator in-process, and every
response body is recorded so the conformance tests can validate it against the OpenAPI subset."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from cmlcm.adapters.cml.client import CmlSession
from cmlcm.adapters.cml.credentials import CmlCredentials
from cmlsim import SimulatedFleet, build_app

SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "cml" / "cml-2.9-openapi-subset.json"
BASE = "http://sim/controllers/{cid}/api/v0"


class Clock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    content_type: str
    body: bytes


@dataclass
class Recorder(httpx.AsyncBaseTransport):
    inner: httpx.AsyncBaseTransport
    exchanges: list[Exchange] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.exchanges.append(
            Exchange(request.method, request.url.path, response.status_code, response.headers.get("content-type", ""), body)
        )
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)


class OpenApiSubset:
    """Looks up the response schema of an operation and validates bodies (Draft 2020-12)."""

    def __init__(self) -> None:
        self.spec = json.loads(SPEC_PATH.read_text())
        self._templates = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"), p) for p in self.spec["paths"]
        ]

    def operation(self, method: str, api_path: str) -> tuple[str, dict[str, Any]]:
        for pattern, template in self._templates:
            if pattern.match(api_path) and method.lower() in self.spec["paths"][template]:
                return template, self.spec["paths"][template][method.lower()]
        raise AssertionError(f"{method} {api_path} is not in the OpenAPI subset")

    def schema_for(self, method: str, api_path: str, status: int) -> dict[str, Any] | None:
        _, operation = self.operation(method, api_path)
        responses = operation["responses"]
        response = responses.get(str(status)) or responses.get("default")
        assert response is not None, f"{method} {api_path} has no response {status} in the spec"
        content = response.get("content") or {}
        if not content:
            return None
        return content.get("application/json", {}).get("schema")

    def validate(self, schema: dict[str, Any], instance: Any) -> list[str]:
        wrapped = {**schema, "components": self.spec["components"]}
        # $refs point at #/components/...: resolve them inside a document that carries components.
        validator = Draft202012Validator(wrapped, format_checker=Draft202012Validator.FORMAT_CHECKER)
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


@pytest.fixture(scope="session")
def spec() -> OpenApiSubset:
    return OpenApiSubset()


@dataclass
class SimEnv:
    fleet: SimulatedFleet
    clock: Clock
    recorder: Recorder

    def session(self, *, timeout: float = 2.0, **kwargs: Any) -> CmlSession:
        return CmlSession(
            lambda: CmlCredentials("admin", self.fleet.password), timeout=timeout, transport=self.recorder, **kwargs
        )

    @staticmethod
    def url(controller_id: str) -> str:
        return BASE.format(cid=controller_id)


@pytest.fixture
def sim() -> SimEnv:
    clock = Clock()
    fleet = SimulatedFleet(clock=clock, converge_seconds=5, licence_seconds=10)
    return SimEnv(fleet, clock, Recorder(httpx.ASGITransport(app=build_app(fleet))))
