"""The local mode: the product's handlers and ASL on one machine, with no AWS account.

`LocalRuntime` starts moto (Step Functions executor on, Lambda dispatched in-process), creates
the tables, seeds a CML fleet, and serves the local gateway. `python -m cmlcm_local` runs it;
the end-to-end tests start it in-process on free ports.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn

#: Defaults of the local environment; anything already set in the environment wins.
LOCAL_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_SERVICE_NAME": "cmlcm-local",
    "POWERTOOLS_METRICS_NAMESPACE": "CmlCloudManager",
    "LOG_LEVEL": "INFO",
    "SUPPORTED_REGIONS": "us-east-1,us-west-2",
}

MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalRuntime:
    """Everything the local mode runs, started and stopped as one."""

    host: str = "127.0.0.1"
    port: int = 8700
    workers: int = 5
    stopped_workers: int = 1
    region: str = "us-east-1"
    _servers: list[uvicorn.Server] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _mock: Any = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalRuntime:
        for key, value in LOCAL_ENV.items():
            os.environ.setdefault(key, value)
        # Imported here: product modules read the environment set just above.
        from moto import mock_aws

        from cmlcm.adapters.aws import reset_clients
        from cmlcm.adapters.dynamo import DynamoWorkerRepository, create_tables
        from cmlcm.config import get_settings
        from cmlcm.handlers.api import app as api_app
        from cmlcm_local import moto_ec2_glue, moto_glue
        from cmlcm_local.gateway import build_gateway
        from cmlcm_local.seed import seed_fleet

        get_settings.cache_clear()
        self._mock = mock_aws(config=MOTO_CONFIG)
        self._mock.start()
        moto_glue.install()
        moto_ec2_glue.install()
        reset_clients()
        settings = get_settings()
        create_tables(settings.workers_table, settings.operations_table, settings.aws_region)
        repo = DynamoWorkerRepository(settings.workers_table, settings.aws_region)
        if self.workers:
            seed_fleet(repo, region=self.region, count=self.workers, now=datetime.now(UTC),
                       stopped=min(self.stopped_workers, self.workers))
        self._serve(build_gateway(api_app.handler), self.port)
        return self

    def _serve(self, asgi_app: Any, port: int) -> None:
        config = uvicorn.Config(asgi_app, host=self.host, port=port, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError(f"local server on {self.host}:{port} did not start")
            time.sleep(0.02)
        self._servers.append(server)
        self._threads.append(thread)

    def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
