"""A CML 2.9 controller simulator: one process, many virtual controllers, fault injection.

`SimulatedFleet` is the in-process registry (add controllers, seed labs, inject faults, move
time); `build_app(fleet)` is the Starlette ASGI app serving every controller under
`/controllers/{id}/api/v0` plus the `/_sim` admin API; `serve(host, port, fleet)` runs it with
uvicorn (`python -m cmlsim --port 8701 --controllers 5` does the same from a shell).
`OPENAPI_SUBSET` is the vendored CML 2.9 OpenAPI subset the simulator's bodies follow.
"""

from pathlib import Path

from cmlsim.app import build_app, serve
from cmlsim.fleet import Faults, SimulatedFleet, sample_topology

#: The CML 2.9 OpenAPI subset, vendored next to the simulator (provenance in openapi/README.md).
OPENAPI_SUBSET = Path(__file__).resolve().parent / "openapi" / "cml-2.9-openapi-subset.json"

__all__ = ["OPENAPI_SUBSET", "Faults", "SimulatedFleet", "build_app", "sample_topology", "serve"]
