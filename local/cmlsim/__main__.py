"""`python -m cmlsim --port 8701 --controllers 5`: serve a simulated fleet over HTTP."""
from __future__ import annotations

import argparse

import uvicorn

from cmlsim import SimulatedFleet, build_app


def main() -> None:
    parser = argparse.ArgumentParser(description="CML 2.9 simulator (many virtual controllers)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8701)
    parser.add_argument("--controllers", type=int, default=3, help="controllers sim-0001... to create")
    parser.add_argument("--labs", type=int, default=2)
    args = parser.parse_args()
    fleet = SimulatedFleet()
    for index in range(args.controllers):
        fleet.add(f"sim-{index + 1:04d}", labs=args.labs, running_labs=1)
    print(f"CML simulator on http://{args.host}:{args.port}/controllers/<id>/api/v0 (password {fleet.password!r})")
    uvicorn.run(build_app(fleet), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
