"""`python -m cmlcm_local`: run CML Cloud Manager locally (see README, "Run it locally")."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence


def _at_least_zero(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse type: a number of `kind`, 0 or more (a negative count would slice the fleet
    from its end)."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
        return value

    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="CML Cloud Manager, local mode (moto + simulated CML)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700, help="REST API port")
    parser.add_argument("--workers", type=_at_least_zero(int), default=5, help="simulated workers to seed")
    parser.add_argument("--sim-port", type=int, default=0, help="CML simulator port (default: the REST port + 1)")
    parser.add_argument(
        "--no-scheduler",
        action="store_true",
        help="no scheduled jobs (collections, reconciles): run them with POST /_local/jobs/{job}",
    )
    parser.add_argument(
        "--idle-workers",
        type=_at_least_zero(int),
        default=0,
        help="running seeded workers whose CML nobody used for 3 hours: the first collection auto-pauses them",
    )
    parser.add_argument(
        "--cml-boot-seconds",
        type=_at_least_zero(float),
        default=8.0,
        help="how long a new instance's simulated CML takes to boot (default 8 s)",
    )
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    # Imported once the arguments are read: the runtime brings moto and the product with it
    # (`--help` and a refused argument answer at once, and the unit tests read the parser alone).
    from cmlcm_local.runtime import LocalRuntime

    runtime = LocalRuntime(
        host=args.host,
        port=args.port,
        workers=args.workers,
        sim_port=args.sim_port,
        scheduler=not args.no_scheduler,
        idle_workers=args.idle_workers,
        cml_boot_seconds=args.cml_boot_seconds,
    ).start()
    print(f"CML Cloud Manager (local) on {runtime.base_url}")
    print("  tokens: Authorization: Bearer dev-admin | dev-operator | dev-viewer")
    print(f"  try:    curl -H 'Authorization: Bearer dev-viewer' {runtime.base_url}/workers")
    print(f"  dashboard: {runtime.base_url}/ (sign in as a dev user, e.g. {runtime.base_url}/?user=dev-admin)")
    print(f"  live:   {runtime.base_url.replace('http://', 'ws://')}/ws?token=dev-viewer")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    runtime.stop()
    # Everything lives in memory: nothing is lost by not waiting for the threads still running
    # inside moto (a Step Functions execution in flight, its retries), which otherwise kept the
    # process alive for 10 s or more after SIGTERM (each browser test run waited for it).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
