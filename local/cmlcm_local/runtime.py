"""The local mode: the product's handlers and ASL on one machine, with no AWS account.

`LocalRuntime` starts moto (Step Functions executor on, Lambda dispatched in-process), creates
the tables, seeds a CML fleet, and serves the local gateway. `python -m cmlcm_local` runs it;
the end-to-end tests start it in-process on free ports.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cmlcm.config import get_config
from cmlcm.domain.settings import RegionDefaults, Settings
from cmlcm.services.jobs import COLLECT_JOB, RECONCILE_JOB
from cmlcm_local.events import FakeLambdaContext
from cmlcm_local.scheduler import LocalScheduler, seed_cloudwatch
from cmlsim import SimulatedFleet

STATEMACHINES = Path(__file__).resolve().parents[2] / "statemachines"

#: Defaults of the local environment; anything already set in the environment wins.
#: How long the seeded workers have been up when local mode starts (their status change time).
SEEDED_UPTIME = timedelta(hours=2)
#: How long the `idle_workers` controllers have been unused (past the default 60 min timeout).
IDLE_SEEDED_MINUTES = 180.0

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

#: From this many seeded workers on, moto's account-wide scans are sped up (`moto_glue.speedups`):
#: a 1000-worker local fleet would otherwise spend its time in moto. Smaller fleets, and the tests,
#: run moto's own code.
SPEEDUPS_FROM_WORKERS = 100


#: The jobs' schedules in moto's Scheduler (the stack names them `<stack>-collect-metrics`, ...).
LOCAL_SCHEDULE_NAMES = {COLLECT_JOB: "cmlcm-local-collect-metrics", RECONCILE_JOB: "cmlcm-local-reconcile"}


#: The input of a run started by the local tools: manual, like the jobs API's (a paused job runs).
LOCAL_TOOL_RUN = {"trigger": "manual", "by": "local tool"}


def task_functions() -> dict[str, tuple[str, Callable[..., Any], int]]:
    """ASL placeholder → (local function name, handler, timeout s): the same table the CDK stack
    wires (infra/cmlcm_infra/tasks.py COLLECT_TASKS/PROVISION_TASKS; tests/infra checks that the two agree)."""
    from cmlcm.handlers import collect, provision

    return {
        "CollectPlanFunctionArn": ("collect-plan", collect.plan_handler, 60),
        "CollectBatchFunctionArn": ("collect-batch", collect.collect_batch_handler, 300),
        "CollectSummaryFunctionArn": ("collect-summary", collect.summarize_handler, 60),
        "ProvisionFunctionArn": ("provision", provision.handler, 60),
    }


def reconcile_handler() -> Callable[..., Any]:
    from cmlcm.handlers import reconcile

    return reconcile.handler


def local_settings(region: str, ami_id: str) -> Settings:
    """Settings for a lively demo: collect every minute, reconcile every 5, short saga waits."""
    return Settings(
        collect_interval_minutes=1,
        reconcile_interval_minutes=5,
        provision_poll_seconds=2,
        cml_ready_timeout_minutes=2,
        instance_running_timeout_minutes=2,
        region_defaults={region: RegionDefaults(instance_type="c5.metal", ami_id=ami_id)},
    )


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
    #: Running seeded workers whose CML nobody has used for `IDLE_SEEDED_MINUTES` (labs stopped,
    #: history that old), so the idle policy pauses them at the first collection.
    idle_workers: int = 0
    #: How long a new instance's simulated CML takes to boot (seeded ones are up at once).
    cml_boot_seconds: float = 8.0
    region: str = "us-east-1"
    _servers: list[uvicorn.Server] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    scheduler: bool = True
    sim_port: int = 0
    sim_fleet: SimulatedFleet = field(default_factory=SimulatedFleet)
    _mock: Any = None
    _scheduler: Any = None
    _lambdas: Any = None
    _machines: Any = None
    _last_metrics: datetime | None = None
    _pump: Any = None
    _ec2_rule: Any = None
    issuer: Any = None
    websocket_api: Any = None
    event_bus: Any = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalRuntime:
        for key, value in LOCAL_ENV.items():
            os.environ.setdefault(key, value)
        self.sim_port = self.sim_port or self.port + 1
        # The simulated CML fleet answers where real workers' IPs would be.
        os.environ["CML_ENDPOINT_MODE"] = "template"
        os.environ["CML_ENDPOINT_TEMPLATE"] = f"http://{self.host}:{self.sim_port}/controllers/{{instance_id}}/api/v0"
        self._realtime_environment()
        # Imported here: product modules read the environment set just above.
        from moto import mock_aws

        from cmlcm.adapters.aws import client
        from cmlcm.adapters.dynamo import DynamoWorkerRepository
        from cmlcm.adapters.operations import DynamoReservations, DynamoSettingsRepository
        from cmlcm.handlers.api import app as api_app
        from cmlcm_local import moto_glue
        from cmlcm_local.gateway import build_gateway
        from cmlcm_local.seed import cml_ami, fresh_backend, seed_fleet
        from cmlsim import build_app as build_sim_app

        get_config.cache_clear()
        self._mock = mock_aws(config=moto_glue.MOTO_CONFIG)
        self._mock.start()
        moto_glue.install(speedups=self.workers >= SPEEDUPS_FROM_WORKERS)
        self._wire_workflows()
        settings = fresh_backend()
        reservations = DynamoReservations(settings.operations_table, settings.aws_region)
        repo = DynamoWorkerRepository(settings.workers_table, settings.aws_region)
        settings_repo = DynamoSettingsRepository(settings.operations_table, settings.aws_region)
        ami = cml_ami(self.region)
        settings_repo.save(local_settings(self.region, ami))
        client("secretsmanager", self.region).create_secret(
            Name=settings.cml_credentials_secret,
            SecretString=json.dumps({"username": "admin", "password": self.sim_fleet.password}),
        )
        if self.workers:
            seed_fleet(
                repo,
                region=self.region,
                count=self.workers,
                # Seeded as running for a while already, as a fleet you come to is: the idle
                # policy judges them by CML activity, not by the moment local mode started.
                now=datetime.now(UTC) - SEEDED_UPTIME,
                stopped=min(self.stopped_workers, self.workers),
                claim_name=reservations.claim_name,
            )
        self.sync_simulated_fleet(boot_seconds=0)
        self._seed_idle_controllers()
        self._serve(build_sim_app(self.sim_fleet), self.sim_port)
        from cmlcm_local.web import web_routes

        realtime_routes = self._start_realtime(settings)
        # The dashboard's routes come before the API proxy (which answers every other path).
        routes = [*realtime_routes, *web_routes(self.host, self.port), *self._local_routes(repo)]
        self._serve(build_gateway(api_app.handler, extra_routes=routes), self.port)
        if self._pump is not None:
            self._pump.start()
        self._start_ec2_rule()
        if self.scheduler:
            rng = random.Random(7)
            self._scheduler = LocalScheduler(
                settings_repo,
                {
                    COLLECT_JOB: lambda: self._machines.start("collect-metrics", {"trigger": "schedule"}),
                    RECONCILE_JOB: lambda: self._lambdas.handler("reconcile")(
                        {"trigger": "schedule"}, FakeLambdaContext("reconcile")
                    ),
                },
                before_tick=lambda now: self._every_tick(now, rng),
                enabled=self.schedule_enabled,
            )
            self._scheduler.start()
        return self

    def _realtime_environment(self) -> None:
        """The WebSocket functions' environment: the local issuer (JWKS on the gateway), the
        gateway as the @connections endpoint, and the bus in moto for domain events."""
        from cmlcm_local.event_bus import LOCAL_BUS_NAME
        from cmlcm_local.tokens import ISSUER_PATH, LOCAL_CLIENT_ID

        os.environ["COGNITO_ISSUER"] = f"{self.base_url}{ISSUER_PATH}"
        os.environ["COGNITO_CLIENT_ID"] = LOCAL_CLIENT_ID
        os.environ["WEBSOCKET_CALLBACK_URL"] = self.base_url
        os.environ["EVENT_BUS_NAME"] = LOCAL_BUS_NAME

    def _start_realtime(self, settings: Any) -> list[Any]:
        """Connection/subscription tables, streams on the three source tables, the custom bus and
        its local rules in moto's EventBridge, the WebSocket routes on the gateway, and the stream
        pump feeding the broadcaster (started once the gateway serves @connections)."""
        from cmlcm.adapters.subscriptions import create_realtime_tables
        from cmlcm.handlers import broadcaster, ws
        from cmlcm_local.event_bus import LocalEventBus
        from cmlcm_local.streams import StreamPump, enable_streams
        from cmlcm_local.tokens import LocalTokenIssuer
        from cmlcm_local.websocket import LocalWebSocketApi

        create_realtime_tables(settings.connections_table, settings.subscriptions_table, settings.aws_region)
        sources = [settings.workers_table, settings.labs_table, settings.operations_table]
        enable_streams(sources, settings.aws_region)
        self.issuer = LocalTokenIssuer(os.environ["COGNITO_ISSUER"], os.environ["COGNITO_CLIENT_ID"])
        self.websocket_api = LocalWebSocketApi(ws.handler, self.issuer)
        self.event_bus = LocalEventBus(settings.aws_region, settings.event_bus_name).create()
        self._pump = StreamPump(
            broadcaster.handler, sources, operations_table=settings.operations_table, region=settings.aws_region
        )
        return [*self.websocket_api.routes(), *self.event_bus.routes()]

    def _start_ec2_rule(self) -> None:
        """EventBridge's EC2 state-change rule: moto's instance states watched on a short loop,
        each change delivered to the rule's target handler (as the scheduler loop stands in for
        EventBridge Scheduler)."""
        from cmlcm.handlers import ec2_events
        from cmlcm_local.ec2_watch import Ec2StateWatcher

        self._ec2_rule = Ec2StateWatcher(ec2_events.handler, self.region)
        self._ec2_rule.start()

    def _wire_workflows(self) -> None:
        """Register the task Lambdas in-process and create both state machines from the ASL
        files, exactly as the CDK stack wires them (same handlers, same placeholders)."""
        from cmlcm_local.stepfunctions import LocalLambdas, LocalStateMachines

        self._lambdas = LocalLambdas(region=self.region)
        self._machines = LocalStateMachines(region=self.region)
        arns = {
            placeholder: self._lambdas.register(name, handler, timeout_s=timeout)
            for placeholder, (name, handler, timeout) in task_functions().items()
        }
        self._lambdas.register("reconcile", reconcile_handler())
        collect_arn = self._machines.create(
            "collect-metrics",
            STATEMACHINES / "collect_metrics.asl.json",
            {
                **{k: v for k, v in arns.items() if k.startswith("Collect")},
                "CollectRunsBucketName": get_config().collect_runs_bucket,
            },
        )
        provision_arn = self._machines.create(
            "provision-worker",
            STATEMACHINES / "provision_worker.asl.json",
            {"ProvisionFunctionArn": arns["ProvisionFunctionArn"]},
        )
        os.environ["COLLECT_STATE_MACHINE_ARN"] = collect_arn
        os.environ["PROVISION_STATE_MACHINE_ARN"] = provision_arn
        os.environ["RECONCILE_FUNCTION_NAME"] = self._lambdas.arn("reconcile")
        self._create_schedules({COLLECT_JOB: collect_arn, RECONCILE_JOB: self._lambdas.arn("reconcile")})
        get_config.cache_clear()

    def _create_schedules(self, targets: dict[str, str]) -> None:
        """Both jobs' schedules in moto's EventBridge Scheduler, as the CDK stack defines them
        (names the API reads from the environment, the default group, `{"trigger": "schedule"}`):
        the settings move their rates, the jobs API their State, and the scheduler loop fires a
        job only while its schedule is ENABLED. moto never fires them itself."""
        from cmlcm.adapters.aws import client
        from cmlcm.adapters.schedules import rate_expression

        scheduler = client("scheduler", self.region)
        defaults = local_settings(self.region, "ami-00000000")
        minutes = {COLLECT_JOB: defaults.collect_interval_minutes, RECONCILE_JOB: defaults.reconcile_interval_minutes}
        for job, variable in ((COLLECT_JOB, "COLLECT_SCHEDULE_NAME"), (RECONCILE_JOB, "RECONCILE_SCHEDULE_NAME")):
            name = LOCAL_SCHEDULE_NAMES[job]
            scheduler.create_schedule(
                Name=name,
                ScheduleExpression=rate_expression(minutes[job]),
                FlexibleTimeWindow={"Mode": "OFF"},
                Target={
                    "Arn": targets[job],
                    "RoleArn": "arn:aws:iam::123456789012:role/cmlcm-local-scheduler",
                    "Input": json.dumps({"trigger": "schedule"}),
                },
                State="ENABLED",
            )
            os.environ[variable] = name
        os.environ["SCHEDULE_GROUP_NAME"] = "default"

    def schedule_enabled(self, job: str) -> bool:
        """Whether the job's schedule in moto's Scheduler is ENABLED (what the loop obeys)."""
        from cmlcm.adapters.aws import client

        found = client("scheduler", self.region).get_schedule(Name=LOCAL_SCHEDULE_NAMES[job], GroupName="default")
        return bool(found.get("State", "ENABLED") == "ENABLED")

    def run_job(self, job: str, *, timeout_s: float = 120.0) -> Any:
        """Run a scheduled job now, as its schedule would, and wait for it. One run of a job at a
        time: while another run holds the job's lease (the scheduler loop's, say), the schedule's
        run would end at once as skipped; this tool waits for that run to end and runs again."""
        if job not in (COLLECT_JOB, RECONCILE_JOB):
            raise KeyError(job)
        deadline = time.monotonic() + timeout_s
        while True:
            if job == COLLECT_JOB:
                status, output = self._machines.run("collect-metrics", LOCAL_TOOL_RUN, timeout_s=timeout_s)
                result: Any = {"status": status, "output": output}
                skipped = isinstance(output, dict) and output.get("plan", {}).get("skipped") is True
            else:
                result = self._lambdas.handler("reconcile")(LOCAL_TOOL_RUN, FakeLambdaContext("reconcile"))
                skipped = result.get("skipped") is True
            if not skipped or time.monotonic() > deadline:
                return result
            time.sleep(0.5)

    def _local_routes(self, repo: Any) -> list[Route]:
        """Local-only tools, no auth: run a job now; lose a record behind the product's back;
        launch instances by hand."""
        from cmlcm_local.seed import cml_ami, launch_instances

        async def run_job(request: Request) -> Response:
            try:
                result = await run_in_threadpool(self.run_job, request.path_params["job"])
            except KeyError:
                return JSONResponse(
                    {"error": f"no job {request.path_params['job']!r}; jobs: {COLLECT_JOB}, {RECONCILE_JOB}"},
                    status_code=404,
                )
            return JSONResponse(result)

        async def drop_record(request: Request) -> Response:
            worker_id = request.path_params["worker_id"]
            # Straight to DynamoDB, as a lost write or a manual deletion would: no tags change.
            await run_in_threadpool(repo.delete, worker_id)
            return Response(status_code=204)

        async def launch_unmanaged(request: Request) -> Response:
            """Instances started by hand from the CML AMI (the EC2 console way): import material."""
            body = await request.json() if await request.body() else {}
            count = int(body.get("count", 1))
            name = str(body.get("name", "by-hand"))
            launched = await run_in_threadpool(
                launch_instances, self.region, count, ami_id=cml_ami(self.region), tags={"Name": name}
            )
            return JSONResponse({"instance_ids": [i["InstanceId"] for i in launched]}, status_code=201)

        async def simulator(request: Request) -> Response:
            return JSONResponse(
                {"base_url": f"http://{self.host}:{self.sim_port}", "controllers": self.sim_fleet.ids()}
            )

        return [
            Route("/_local/jobs/{job}", run_job, methods=["POST"]),
            Route("/_local/records/{worker_id}", drop_record, methods=["DELETE"]),
            Route("/_local/instances", launch_unmanaged, methods=["POST"]),
            Route("/_local/simulator", simulator, methods=["GET"]),
        ]

    def sync_simulated_fleet(self, *, boot_seconds: float = 8.0) -> None:
        """Give every live instance of the CML AMI a simulated controller (new ones boot for a
        few seconds, as CML does) and drop controllers of terminated instances."""
        from cmlcm_local.moto_glue.ec2 import instance_states

        # Every tick: read moto's state directly (a DescribeInstances of 1000 instances costs
        # seconds of CPU in moto; see moto_glue.ec2.instance_states).
        live = [
            instance_id
            for instance_id, state in instance_states(self.region).items()
            if state in ("pending", "running", "stopping", "stopped")
        ]
        for instance_id in live:
            if self.sim_fleet.get(instance_id) is None:
                self.sim_fleet.add(instance_id, boot_seconds=boot_seconds, labs=2, running_labs=1)
        alive = set(live)
        for controller_id in self.sim_fleet.ids():
            if controller_id not in alive:
                self.sim_fleet.remove(controller_id)

    def _seed_idle_controllers(self) -> None:
        """Quiet the controllers of the first `idle_workers` running instances (in launch order,
        so the lowest worker names) before anything reads them: their first reading is already
        idle, as a worker nobody used since this morning is."""
        from cmlcm_local.moto_glue.ec2 import instance_states

        running = [i for i, state in instance_states(self.region).items() if state == "running"]
        for instance_id in running[: self.idle_workers]:
            self.sim_fleet.quiet(instance_id, IDLE_SEEDED_MINUTES)

    def _every_tick(self, now: datetime, rng: random.Random) -> None:
        self.sync_simulated_fleet(boot_seconds=self.cml_boot_seconds)
        # CloudWatch gets a datapoint per running instance each minute, as EC2 would publish.
        if self._last_metrics is None or (now - self._last_metrics).total_seconds() >= 60:
            seed_cloudwatch(self.region, now=now, rng=rng)
            self._last_metrics = now

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
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None
        if self._pump is not None:
            self._pump.stop()
            self._pump = None
        if self._ec2_rule is not None:
            self._ec2_rule.stop()
            self._ec2_rule = None
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
