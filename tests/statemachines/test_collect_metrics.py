"""The collection ASL under moto: plan → Map of batch collectors → summary, with the real handlers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cmlcm import container
from cmlcm.adapters.dynamo import DynamoWorkerRepository
from cmlcm.adapters.operations import DynamoJobRepository, DynamoSettingsRepository
from cmlcm.container import Container, current
from cmlcm.domain.cml import CmlReading
from cmlcm.domain.settings import Settings
from cmlcm.handlers import collect as collect_handlers
from cmlcm.services.jobs import COLLECT_JOB, health_report
from cmlcm_local.seed import fresh_backend, seed_fleet

ASL = Path(__file__).resolve().parents[2] / "statemachines" / "collect_metrics.asl.json"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class Probe:
    @contextlib.asynccontextmanager
    async def session(self):  # noqa: ANN201 - a fake reader that is its own session
        yield self

    async def read(self, worker, plan=None) -> CmlReading:  # noqa: ANN001
        return CmlReading(version="2.9.0", ready=True, labs_total=1, labs_running=1, nodes_running=3)

    async def ready(self, worker) -> bool:  # noqa: ANN001
        return True


class PoisonedRepo:
    """Fails any batch read that includes the poisoned worker (a batch-level fault)."""

    def __init__(self, real: DynamoWorkerRepository, poisoned: set[str]) -> None:
        self.real, self.poisoned = real, poisoned

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def get_many(self, ids):  # noqa: ANN001, ANN201
        if self.poisoned & set(ids):
            raise RuntimeError("batch read failed")
        return self.real.get_many(ids)


@dataclass
class Env:
    sfn: Any
    repo: DynamoWorkerRepository
    settings: DynamoSettingsRepository
    jobs: DynamoJobRepository
    workers: list


@pytest.fixture
def env(sfn) -> Iterator[Env]:  # noqa: ANN001
    s = fresh_backend()
    repo = DynamoWorkerRepository(s.workers_table, s.aws_region)
    settings = DynamoSettingsRepository(s.operations_table, s.aws_region)
    settings.save(Settings(collect_batch_size=2, collect_max_concurrency=2))
    workers = seed_fleet(repo, region="us-east-1", count=5, now=NOW, stopped=1)
    # The collection Lambdas' container: the real one on moto, with a CML probe that answers
    container.use(Container(s).with_ports(workers=repo, cml=Probe()))
    subs = {
        "CollectPlanFunctionArn": sfn.lambdas.register("collect-plan", collect_handlers.plan_handler),
        "CollectBatchFunctionArn": sfn.lambdas.register("collect-batch", collect_handlers.collect_batch_handler),
        "CollectSummaryFunctionArn": sfn.lambdas.register("collect-summary", collect_handlers.summarize_handler),
        "CollectRunsBucketName": s.collect_runs_bucket,
    }
    sfn.machines.create("collect", ASL, subs)
    yield Env(sfn, repo, settings, DynamoJobRepository(s.operations_table, s.aws_region), workers)
    container.use(None)


def test_collection_runs_every_batch_and_records_the_heartbeat(env):
    status, output = env.sfn.machines.run("collect", {}, timeout_s=60)
    assert status == "SUCCEEDED", output
    assert output["workers"] == 5 and output["batches"] == 3 and output["batches_failed"] == 0
    assert output["succeeded"] is True
    running = [w for w in env.workers if w.status.value == "running"]
    for worker in running:
        assert env.repo.get(worker.worker_id).metrics.cml_version == "2.9.0"
    beat = env.jobs.get(COLLECT_JOB)
    assert beat.last_status == "succeeded" and beat.last_summary["workers"] == 5
    report = health_report(env.jobs, env.settings.get(), now=datetime.now(UTC))
    collect_job = next(j for j in report["jobs"] if j["job"] == COLLECT_JOB)
    assert collect_job["overdue"] is False


def test_a_second_run_with_nothing_changed_writes_no_worker(env):
    assert env.sfn.machines.run("collect", {}, timeout_s=60)[0] == "SUCCEEDED"
    status, output = env.sfn.machines.run("collect", {}, timeout_s=60)
    assert status == "SUCCEEDED" and output["changed"] == 0 and output["written"] == 0


def test_a_failing_batch_is_recorded_and_the_others_complete(env, monkeypatch):
    poisoned = env.workers[0].worker_id
    container.use(current().with_ports(workers=PoisonedRepo(env.repo, {poisoned})))
    status, output = env.sfn.machines.run("collect", {}, timeout_s=60)
    assert status == "SUCCEEDED", output
    assert output["batches_failed"] == 1 and output["succeeded"] is False
    # The plan batches the active-index order (by worker id) in twos.
    ordered = sorted(w.worker_id for w in env.workers)
    batch = next(ordered[i : i + 2] for i in range(0, len(ordered), 2) if poisoned in ordered[i : i + 2])
    assert output["failed"] == len(batch)  # every worker of the poisoned batch
    others = [w for w in env.workers if w.worker_id not in batch and w.status.value == "running"]
    assert others and all(env.repo.get(w.worker_id).metrics is not None for w in others)
    assert all(env.repo.get(w).metrics is None for w in batch)
    assert env.jobs.get(COLLECT_JOB).last_status == "failed"


def test_health_shows_an_overdue_job(env):
    report = health_report(env.jobs, env.settings.get(), now=NOW)
    assert report["status"] == "degraded"
    assert all(j["overdue"] and j["never_ran"] for j in report["jobs"])


def test_a_run_that_finds_another_run_holding_the_lease_ends_at_once_as_skipped(env):
    # Given a run of the collection still in progress (it holds the job's lease)
    assert (
        env.jobs.claim_lease(
            COLLECT_JOB, "arn:running", now=datetime.now(UTC), until=datetime.now(UTC) + timedelta(minutes=15)
        )
        is None
    )
    # When the schedule starts another one
    status, output = env.sfn.machines.run("collect", {}, timeout_s=60)
    # Then it succeeds without collecting anything, and the skip is on the heartbeat
    assert status == "SUCCEEDED", output
    assert output["plan"]["skipped"] is True and "results" not in output
    assert all(env.repo.get(w.worker_id).metrics is None for w in env.workers)
    assert env.jobs.get(COLLECT_JOB).skipped_runs == 1
    # And once the first run gives the lease back, the next run collects
    env.jobs.release_lease(COLLECT_JOB, "arn:running")
    status, output = env.sfn.machines.run("collect", {}, timeout_s=60)
    assert status == "SUCCEEDED" and output["workers"] == 5


def test_each_run_gives_its_lease_back_so_runs_in_a_row_all_collect(env):
    for _ in range(2):
        status, output = env.sfn.machines.run("collect", {}, timeout_s=60)
        assert status == "SUCCEEDED" and output["workers"] == 5
    assert env.jobs.get(COLLECT_JOB).skipped_runs == 0


def test_the_lease_lasts_as_long_as_the_state_machine_may_run():
    import json

    from cmlcm.services.jobs import RUN_LEASE_SECONDS

    assert json.loads(ASL.read_text())["TimeoutSeconds"] == RUN_LEASE_SECONDS[COLLECT_JOB]


class ManyWorkers:
    """A workers port that lists a very large fleet (the plan reads ids only)."""

    def __init__(self, count: int) -> None:
        self.ids = [f"w-{i:017x}" for i in range(count)]

    def active_ids(self) -> list[str]:
        return self.ids


def test_a_50000_worker_plan_keeps_the_state_payload_small_and_every_batch_runs(env, monkeypatch):
    # Given a fleet of 50,000 active workers in batches of 1000 (the default), and collectors that
    # only record what they were given

    fleet = ManyWorkers(50_000)
    container.use(current().with_ports(workers=fleet))
    env.settings.save(env.settings.get().model_copy(update={"collect_batch_size": 1000, "collect_max_concurrency": 10}))
    seen: list[str] = []

    def record_only(event, context):  # noqa: ANN001, ANN202
        seen.extend(event["worker_ids"])
        outcome = {"workers": len(event["worker_ids"]), "changed": 0, "failed": 0, "written": 0, "samples": 0,
                   "paused": 0, "errors": {}}  # fmt: skip
        current().collect_runs.put_result(event["run"], event["batch"], outcome)
        return outcome

    env.sfn.lambdas.register("collect-batch", record_only)
    # When the collection runs
    arn = env.sfn.machines.start("collect", {})
    status, output = env.sfn.machines.wait(arn, timeout_s=120)
    # Then every worker went to exactly one batch collector, and the summary counted them all
    assert status == "SUCCEEDED", output
    assert sorted(seen) == fleet.ids
    assert (output["workers"], output["batches"], output["batches_failed"]) == (50_000, 50, 0)
    # And no state's input or output ever carried more than a few hundred bytes
    sizes = [
        len(details.get(field) or "")
        for event in env.sfn.machines.history(arn)
        for key, details in event.items()
        if key.endswith("EventDetails") and isinstance(details, dict)
        for field in ("input", "output")
    ]
    assert sizes and max(sizes) < 1024, max(sizes)
