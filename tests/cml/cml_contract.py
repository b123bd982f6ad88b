"""The CML 2.9 contract for tests: a recording transport, the OpenAPI subset checker, a hand clock.

The client runs against the simulator in-process (`httpx.ASGITransport`) through a recording
transport. When a test using `sim` ends, every recorded exchange is checked against the CML 2.9
OpenAPI subset: the operation must exist, the status must be declared (or fall under `default`),
the body must validate (Draft 2020-12, formats checked, objects closed where the spec leaves
`additionalProperties` open), a 204 must be empty, and JSON request bodies must validate too.
Controllers a test deliberately breaks (garbage bodies) are exempted by name.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from jsonschema import Draft202012Validator

from cmlsim import OPENAPI_SUBSET

#: The subset vendored in the repository (local/cmlsim/openapi/), never a copy beside the checkout.
SPEC_PATH = OPENAPI_SUBSET
BASE = "http://sim/controllers/{cid}/api/v0"
_CONTROLLER = re.compile(r"^/controllers/([^/]+)/api/v0(/.*)$")


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
    """One request/response pair as it crossed the wire."""

    method: str
    path: str
    request_content_type: str
    request_body: bytes
    status: int
    content_type: str
    body: bytes

    @property
    def controller_id(self) -> str | None:
        match = _CONTROLLER.match(self.path)
        return match.group(1) if match else None

    @property
    def api_path(self) -> str | None:
        match = _CONTROLLER.match(self.path)
        return match.group(2) if match else None


@dataclass
class Recorder(httpx.AsyncBaseTransport):
    """Transport wrapper that keeps every exchange (bodies read in full) for later validation."""

    inner: httpx.AsyncBaseTransport
    exchanges: list[Exchange] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request_body = await request.aread()
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.exchanges.append(
            Exchange(
                request.method,
                request.url.path,
                request.headers.get("content-type", ""),
                request_body,
                response.status_code,
                response.headers.get("content-type", ""),
                body,
            )
        )
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)

    def count(self, api_path: str, status: int | None = None) -> int:
        return sum(1 for e in self.exchanges if e.api_path == api_path and (status is None or e.status == status))


#: Schemas left open: `Stub` is the document's placeholder for an opaque object, and a `LabUi`
#: tile carries the lab's `LabResponse` fields besides the ones the document lists (virl2-client's
#: `find_labs_by_title` reads `lab_title` from each tile of `GET /populate_lab_tiles`).
OPEN_SCHEMAS = {"Stub", "LabUi"}


def _close_objects(node: Any) -> None:
    """Make every object schema that lists `properties` but says nothing about extra keys
    reject them, so a simulator body with an invented field fails conformance."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node and "patternProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_objects(value)


#: Operations whose 200 is the YAML file itself: the document declares a JSON string, but CML's
#: own clients (virl2-client's `Lab.download`, the UI) take the body as the YAML text (see
#: local/cmlsim/openapi/README.md). The body must then be a YAML `Topology`.
RAW_YAML = {("GET", "/labs/{lab_id}/download")}


class OpenApiSubset:
    """Looks up operations by concrete path + method and validates bodies (Draft 2020-12)."""

    def __init__(self, path: Path = SPEC_PATH) -> None:
        self.spec = json.loads(path.read_text())
        self.components = copy.deepcopy(self.spec["components"])
        for name, schema in self.components["schemas"].items():
            if name not in OPEN_SCHEMAS:
                _close_objects(schema)
        # Literal templates first, so /labs/{lab_id} never shadows a fixed path of the same shape.
        templates = sorted(self.spec["paths"], key=lambda p: p.count("{"))
        self._templates = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"), p) for p in templates]

    def find(self, method: str, api_path: str) -> tuple[str, dict[str, Any]] | None:
        """(path template, operation) of a concrete request, or None when the subset has none."""
        for pattern, template in self._templates:
            if pattern.match(api_path) and method.lower() in self.spec["paths"][template]:
                return template, self.spec["paths"][template][method.lower()]
        return None

    def operation(self, method: str, api_path: str) -> tuple[str, dict[str, Any]]:
        found = self.find(method, api_path)
        if found is None:
            raise AssertionError(f"{method} {api_path} is not in the OpenAPI subset")
        return found

    def operations(self) -> set[tuple[str, str]]:
        """Every (METHOD, path template) of the subset."""
        return {(m.upper(), p) for p, item in self.spec["paths"].items() for m in item if m != "parameters"}

    def response(self, method: str, api_path: str, status: int) -> dict[str, Any]:
        _, operation = self.operation(method, api_path)
        responses = operation["responses"]
        found = responses.get(str(status))
        if found is None and status >= 400:
            found = responses.get("default")  # the spec's catch-all error body
        assert found is not None, f"{method} {api_path} answered {status}, which the spec does not declare"
        return found

    def schema(self, name: str) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{name}"}

    def validate(self, schema: dict[str, Any], instance: Any) -> list[str]:
        # $refs point at #/components/...: resolve them inside a document that carries components.
        document = {**schema, "components": self.components}
        validator = Draft202012Validator(document, format_checker=Draft202012Validator.FORMAT_CHECKER)
        return [f"/{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(instance)]

    def check(self, exchange: Exchange) -> list[str]:
        """Every way `exchange` breaks the contract (empty when it conforms)."""
        api_path = exchange.api_path
        assert api_path is not None
        where = f"{exchange.method} {api_path} {exchange.status}"
        problems: list[str] = []
        found = self.find(exchange.method, api_path)
        if found is None:
            # Not an operation of the subset: only CML's refusal of it conforms (404/405, Error body).
            if exchange.status not in (404, 405):
                return [f"{where}: not in the OpenAPI subset, yet answered {exchange.status}"]
            return self._error_body(where, exchange)
        template, operation = found
        request_schema = (
            (operation.get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema")
        )
        # A request the server refused (4xx) may be invalid on purpose: only accepted ones must conform.
        accepted = exchange.status < 400
        if request_schema and accepted and exchange.request_content_type.startswith("application/json"):
            problems += [
                f"{where} request {p}" for p in self.validate(request_schema, json.loads(exchange.request_body))
            ]
        content = self.response(exchange.method, api_path, exchange.status).get("content") or {}
        if not content:
            if exchange.body:
                problems.append(f"{where}: the spec declares no body, got {exchange.body[:80]!r}")
            return problems
        if (exchange.method, template) in RAW_YAML and exchange.status == 200:
            return problems + self._yaml_body(where, exchange)
        if not exchange.content_type.startswith("application/json"):
            return problems + [f"{where}: content-type {exchange.content_type!r}"]
        try:
            body = json.loads(exchange.body)
        except ValueError:
            return problems + [f"{where}: body is not JSON"]
        return problems + [f"{where} {p}" for p in self.validate(content["application/json"]["schema"], body)]

    def _error_body(self, where: str, exchange: Exchange) -> list[str]:
        if not exchange.content_type.startswith("application/json"):
            return [f"{where}: content-type {exchange.content_type!r}, not CML's JSON error body"]
        try:
            body = json.loads(exchange.body)
        except ValueError:
            return [f"{where}: error body is not JSON"]
        return [f"{where} {p}" for p in self.validate(self.schema("Error"), body)]

    def _yaml_body(self, where: str, exchange: Exchange) -> list[str]:
        if not exchange.content_type.startswith(("application/x-yaml", "text/plain")):
            return [f"{where}: content-type {exchange.content_type!r}, expected the YAML file"]
        try:
            topology = yaml.safe_load(exchange.body)
        except yaml.YAMLError:
            return [f"{where}: body is not YAML"]
        return [f"{where} {p}" for p in self.validate(self.schema("Topology"), topology)]
