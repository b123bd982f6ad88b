"""The local mode in its own process, shared by the contract suites: the fuzzer and the
hostile-input and secret tests speak HTTP to it as a client would, and read its log."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cmlcm_local.runtime import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {"admin": "dev-admin", "operator": "dev-operator", "viewer": "dev-viewer"}


def auth(role: str | None) -> dict[str, str]:
    """The Authorization header of a dev user (none for `None`)."""
    return {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}


@dataclass
class LocalApi:
    """A running local mode: its base URL, an HTTP client, and its log file."""

    base_url: str
    client: httpx.Client
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def local_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("local") / "local.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT / "local")]),
        # Everything the product logs is read by the secret tests, per-request lines included.
        "LOG_LEVEL": "DEBUG",
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cmlcm_local",
                "--port",
                str(port),
                "--sim-port",
                str(free_port()),
                "--workers",
                "4",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    deadline = time.monotonic() + 120
    while True:
        try:
            if client.get("/health").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"local mode did not start:\n{log_path.read_text()[-5000:]}")
        time.sleep(0.3)
    yield LocalApi(f"http://127.0.0.1:{port}", client, log_path)
    client.close()
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
