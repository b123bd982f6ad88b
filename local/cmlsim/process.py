"""The simulator in its own process on loopback (`python -m cmlsim`), as CML runs on its own
hosts: for benchmarks and tests that need real sockets between the client and the controllers."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

LOCAL_DIR = Path(__file__).resolve().parents[1]


class SimulatorProcess:
    """`with SimulatorProcess() as sim:` starts the simulator with no controllers and waits until
    it answers; `sim.base` is its URL. Leaving kills it (injected hangs would keep uvicorn's
    graceful shutdown waiting)."""

    def __init__(self, *, startup_seconds: float = 20.0, tls: bool = False, extra_args: tuple[str, ...] = ()) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "cmlsim", "--port", str(self.port), "--controllers", "0", *extra_args]
        #: With `tls`, the self-signed certificate the process made (a client's CA bundle).
        self.certfile: Path | None = None
        self._tls_dir: tempfile.TemporaryDirectory[str] | None = None
        if tls:
            self._tls_dir = tempfile.TemporaryDirectory(prefix="cmlsim-tls-")
            command += ["--tls", "--tls-dir", self._tls_dir.name]
            self.certfile = Path(self._tls_dir.name) / "cmlsim-cert.pem"
        self.process = subprocess.Popen(
            command, env={**os.environ, "PYTHONPATH": str(LOCAL_DIR)}, stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + startup_seconds
        while True:
            try:
                # The admin API is reached without verification: only the client under test verifies.
                httpx.get(f"{self.base}/_sim/stats", timeout=1, verify=False)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.close()
                    raise RuntimeError(f"the CML simulator did not answer on {self.base}") from None
                time.sleep(0.1)

    def add(self, ids: list[str], *, latency: float = 0.0, labs: int = 2, running_labs: int = 1) -> None:
        """Controllers for `ids`, each with `labs` labs (`running_labs` started) and `latency`."""
        body = {"ids": ids, "labs": labs, "running_labs": running_labs, "faults": {"latency": latency}}
        httpx.post(f"{self.base}/_sim/bulk", json=body, timeout=60, verify=False).raise_for_status()

    def controller_url(self, controller_id: str) -> str:
        return f"{self.base}/controllers/{controller_id}/api/v0"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        if self._tls_dir is not None:
            self._tls_dir.cleanup()

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SimulatorThread:
    """`with SimulatorThread(app) as server:` serves an ASGI app (the simulator's, possibly wrapped
    by a test) with uvicorn on a loopback socket in a background thread, so a test can drive it
    with a blocking client (virl2-client) while it keeps the fleet in hand. `server.base` is the
    URL; `certfile`/`keyfile` make it HTTPS."""

    def __init__(self, app: Any, *, certfile: str | None = None, keyfile: str | None = None) -> None:
        import uvicorn  # a dev dependency, as for `serve`

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.base = f"{'https' if certfile else 'http'}://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, ssl_certfile=certfile, ssl_keyfile=keyfile, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._sock])), daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the simulator thread did not start on {self.base}")
            time.sleep(0.02)

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> SimulatorThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
