"""The simulator in its own process on loopback (`python -m cmlsim`), as CML runs on its own
hosts: for benchmarks and tests that need real sockets between the client and the controllers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

LOCAL_DIR = Path(__file__).resolve().parents[1]


class SimulatorProcess:
    """`with SimulatorProcess() as sim:` starts the simulator with no controllers and waits until
    it answers; `sim.base` is its URL. Leaving kills it (injected hangs would keep uvicorn's
    graceful shutdown waiting)."""

    def __init__(self, *, startup_seconds: float = 20.0) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cmlsim", "--port", str(self.port), "--controllers", "0"],
            env={**os.environ, "PYTHONPATH": str(LOCAL_DIR)},
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + startup_seconds
        while True:
            try:
                httpx.get(f"{self.base}/_sim/stats", timeout=1)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.close()
                    raise RuntimeError(f"the CML simulator did not answer on {self.base}") from None
                time.sleep(0.1)

    def add(self, ids: list[str], *, latency: float = 0.0, labs: int = 2, running_labs: int = 1) -> None:
        """Controllers for `ids`, each with `labs` labs (`running_labs` started) and `latency`."""
        body = {"ids": ids, "labs": labs, "running_labs": running_labs, "faults": {"latency": latency}}
        httpx.post(f"{self.base}/_sim/bulk", json=body, timeout=60).raise_for_status()

    def controller_url(self, controller_id: str) -> str:
        return f"{self.base}/controllers/{controller_id}/api/v0"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
