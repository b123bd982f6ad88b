"""The local mode as its own process, for the suites that speak to it over HTTP as a user would
(`python -m cmlcm_local`, the README's first command): the e2e, contract and browser tests.

`LocalMode.start` launches it on two free ports with its output in a log file (never a pipe: a
pipe nobody reads fills up and blocks the server mid-test), waits for `/health`, and fails the
test with the log's tail if it does not come up. `SharedLocalMode` is one local mode for the tests
of one folder: started by the first test that asks for it, stopped after the folder's last test
(by the folder's `pytest_runtest_teardown`), so it does not poll in the background while the
rest of the session runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from cmlcm_local.runtime import LocalRuntime, free_port

ROOT = Path(__file__).resolve().parents[2]
#: The development users' bearer tokens (the local gateway maps them to Cognito-style claims).
TOKENS = {"admin": "dev-admin", "operator": "dev-operator", "viewer": "dev-viewer"}
#: How long a local mode may take to answer `/health` (a loaded 2-core machine takes ~20 s).
STARTUP_SECONDS = 120.0


def auth(role: str | None) -> dict[str, str]:
    """The Authorization header of a dev user (none for `None`)."""
    return {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}


@dataclass
class LocalMode:
    """A running `python -m cmlcm_local`: its base URL, a client on it, and its log file."""

    base_url: str
    client: httpx.Client
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        """Everything the process has written so far."""
        return self.log_path.read_text(errors="replace")

    @classmethod
    def start(
        cls,
        log_dir: Path,
        *,
        workers: int = 4,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        client_timeout: float = 60.0,
    ) -> LocalMode:
        """Start it with `workers` seeded workers, `args` on its command line and `env` over
        this process's environment;
        return once `/health` answers 200 (or fail the test with the log's tail). Both ports come
        from the OS: "the REST port + 1" may be some client's ephemeral port."""
        local = cls.launch(log_dir, workers=workers, env=env, args=args, client_timeout=client_timeout)
        local.wait_healthy()
        return local

    @classmethod
    def launch(
        cls,
        log_dir: Path,
        *,
        workers: int = 4,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        client_timeout: float = 60.0,
    ) -> LocalMode:
        """`start` without the wait: the process boots while the caller does something else
        (then `wait_healthy`)."""
        port, log_path = free_port(), log_dir / "local.log"
        environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT / "local")]),
            **(env or {}),
        }
        command = [sys.executable, "-m", "cmlcm_local", "--port", str(port), "--sim-port", str(free_port())]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*command, "--workers", str(workers), *args],
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base_url = f"http://127.0.0.1:{port}"
        return cls(base_url, httpx.Client(base_url=base_url, timeout=client_timeout), log_path, process)

    def wait_healthy(self) -> None:
        """Return once `/health` answers 200; fail the test with the log's tail if it never does."""
        deadline = time.monotonic() + STARTUP_SECONDS
        delay = 0.05
        while True:
            try:
                if self.client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"local mode did not start:\n{self.log()[-5000:]}", pytrace=False)
            time.sleep(delay)
            delay = min(delay * 2, 0.3)

    def stop(self) -> None:
        """Close the client and end the process (SIGTERM, then SIGKILL after 15 s)."""
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


@contextmanager
def local_mode(
    log_dir: Path, *, workers: int = 4, env: Mapping[str, str] | None = None, args: Sequence[str] = ()
) -> Iterator[LocalMode]:
    """A local mode for the length of a `with` block (see `LocalMode.start`)."""
    local = LocalMode.start(log_dir, workers=workers, env=env, args=args)
    try:
        yield local
    finally:
        local.stop()


@dataclass
class SharedLocalMode:
    """One local mode for the tests under `folder`, started on first use and stopped by
    `release_after` once the next test is outside the folder (or there is none)."""

    folder: Path
    workers: int = 4
    env: Mapping[str, str] = field(default_factory=dict)
    #: On its command line (e.g. `--cml-boot-seconds 2`).
    args: Sequence[str] = ()
    #: Run once after each start (seeding what the folder's tests expect, e.g. a collection).
    prepare: Callable[[LocalMode], None] | None = None
    _running: LocalMode | None = None
    _ready: threading.Thread | None = None
    _failure: BaseException | None = None

    def launch(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        """Start it now without waiting: it boots, and is prepared, on a thread of its own while
        tests that do not need it run (`get` waits for that)."""
        if self._running is not None and self._running.process.poll() is None:
            return
        local = LocalMode.launch(tmp_path_factory.mktemp("local"), workers=self.workers, env=self.env, args=self.args)
        self._running, self._failure = local, None

        def ready() -> None:
            try:
                local.wait_healthy()
                if self.prepare is not None:
                    self.prepare(local)
            except BaseException as exc:  # noqa: BLE001 - pytest's Failed too: re-raised by get()
                self._failure = exc

        self._ready = threading.Thread(target=ready, name="local-mode-ready", daemon=True)
        self._ready.start()

    def get(self, tmp_path_factory: pytest.TempPathFactory) -> LocalMode:
        """The running local mode, started now if it is not running, healthy and prepared."""
        self.launch(tmp_path_factory)
        assert self._running is not None and self._ready is not None
        self._ready.join()
        if self._failure is not None:
            raise self._failure
        return self._running

    def release_after(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        """Stop the local mode if the test after `item` is not one of the folder's."""
        if nextitem is None or not nextitem.path.is_relative_to(self.folder):
            self.stop()

    def stop(self) -> None:
        """Stop the local mode if it runs (also at the session's end, whatever happened)."""
        if self._running is not None:
            self._running.stop()
            self._running = None


def _reset_process_caches() -> None:
    """Forget the config, the container's adapters and the boto3 clients built in this process."""
    from cmlcm import container
    from cmlcm.adapters.aws import reset_clients

    container.use(None)
    reset_clients()


@contextmanager
def in_process_runtime(*, workers: int, stopped_workers: int) -> Iterator[LocalRuntime]:
    """Local mode in this process (tests that look at its records), scheduler loop off; the
    environment and every cached adapter are put back afterwards, so the next runtime starts clean."""
    saved = dict(os.environ)
    _reset_process_caches()
    runtime = LocalRuntime(
        port=free_port(), sim_port=free_port(), workers=workers, stopped_workers=stopped_workers, scheduler=False
    )
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop()
        os.environ.clear()
        os.environ.update(saved)
        _reset_process_caches()
