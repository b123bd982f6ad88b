"""A CML 2.9 controller simulator: one process, many virtual controllers, fault injection.

`SimulatedFleet` is the in-process registry (add controllers, seed labs, inject faults, move
time); `build_app(fleet)` is the Starlette ASGI app serving every controller under
`/controllers/{id}/api/v0` plus the `/_sim` admin API; `serve(host, port, fleet)` runs it with
uvicorn (`python -m cmlsim --port 8701 --controllers 5` does the same from a shell).
"""

from cmlsim.app import build_app, serve
from cmlsim.fleet import Faults, SimulatedFleet, sample_topology

__all__ = ["Faults", "SimulatedFleet", "build_app", "sample_topology", "serve"]
