"""`python -m cmlsim --port 8701 --controllers 5`: serve a simulated fleet over HTTP, or over
HTTPS with a self-signed certificate made at start (`--tls`; `--tls-dir` says where to write it)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from cmlsim import SimulatedFleet, serve


def main() -> None:
    """Parse the command line, create the controllers `sim-0001`..., and serve until Ctrl-C."""
    parser = argparse.ArgumentParser(description="CML 2.9 simulator (many virtual controllers)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8701)
    parser.add_argument("--controllers", type=int, default=3, help="controllers sim-0001... to create")
    parser.add_argument("--labs", type=int, default=2, help="labs per controller (the first one running)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every API answer")
    parser.add_argument("--converge-seconds", type=float, default=1.0, help="delay before a lab action converges")
    parser.add_argument("--licence-seconds", type=float, default=2.0, help="delay before a registration completes")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a self-signed certificate made now")
    parser.add_argument("--tls-dir", type=Path, help="where to write the certificate and key (default: a temp dir)")
    args = parser.parse_args()
    fleet = SimulatedFleet(converge_seconds=args.converge_seconds, licence_seconds=args.licence_seconds)
    for index in range(args.controllers):
        controller_id = f"sim-{index + 1:04d}"
        fleet.add(controller_id, labs=args.labs, running_labs=min(1, args.labs))
        if args.latency:
            fleet.set_faults(controller_id, latency=args.latency)
    certfile = keyfile = None
    if args.tls:
        from cmlsim.tls import self_signed

        pair = self_signed(args.tls_dir or Path(tempfile.mkdtemp(prefix="cmlsim-tls-")))
        certfile, keyfile = str(pair.certfile), str(pair.keyfile)
        print(f"self-signed certificate (trust it as the CA bundle): {certfile}", flush=True)
    scheme = "https" if args.tls else "http"
    print(
        f"CML simulator on {scheme}://{args.host}:{args.port}/controllers/<id>/api/v0 (password {fleet.password!r})",
        flush=True,
    )
    serve(args.host, args.port, fleet, certfile=certfile, keyfile=keyfile)


if __name__ == "__main__":
    main()
