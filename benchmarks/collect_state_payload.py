"""Benchmark: how much a collection run puts into the Step Functions state, by fleet size.

Runs the real `statemachines/collect_metrics.asl.json` under moto (the local mode's executor,
Distributed Map with its S3 ItemReader), with the real plan and summary handlers and a batch
collector that only records its outcome (the collectors' own cost is `collect_fleet.py`'s
subject). Prints, per fleet size: batches (child executions), the largest input or output of any
state of the parent execution, what the inline design (worker ids through the state) would have
put into one state, S3 requests of the run, and the wall time of the run under moto.

    .venv/bin/python benchmarks/collect_state_payload.py [--sizes 1000 10000 50000] [--batch-size 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "functions"), str(ROOT / "local")]
os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "bench",
        "LOG_LEVEL": "ERROR",
    }
)

import botocore.client  # noqa: E402
from moto import mock_aws  # noqa: E402

from cmlcm import container  # noqa: E402
from cmlcm.container import current  # noqa: E402
from cmlcm.domain.settings import Settings  # noqa: E402
from cmlcm.handlers import collect as collect_handlers  # noqa: E402
from cmlcm_local import moto_glue  # noqa: E402
from cmlcm_local.seed import fresh_backend  # noqa: E402
from cmlcm_local.stepfunctions import MOTO_CONFIG, LocalLambdas, LocalStateMachines  # noqa: E402

ASL = ROOT / "statemachines" / "collect_metrics.asl.json"
STATE_LIMIT = 256 * 1024


class Fleet:
    def __init__(self, count: int) -> None:
        self.ids = [f"w-{i:017x}" for i in range(count)]

    def active_ids(self) -> list[str]:
        return self.ids


def record_only(event: dict[str, Any], context: Any) -> dict[str, Any]:
    outcome = {"workers": len(event["worker_ids"]), "changed": 0, "failed": 0, "written": 0, "samples": 0,
               "paused": 0, "errors": {}}  # fmt: skip
    current().collect_runs.put_result(event["run"], event["batch"], outcome)
    return outcome


def run(size: int, batch_size: int) -> dict[str, Any]:
    with mock_aws(config=MOTO_CONFIG):
        settings = fresh_backend()
        current().settings.save(Settings(collect_batch_size=batch_size, collect_max_concurrency=10))
        fleet = Fleet(size)
        container.use(current().with_ports(workers=fleet))  # the plan lists this fleet
        lambdas, machines = LocalLambdas(), LocalStateMachines()
        machines.create(
            "collect",
            ASL,
            {
                "CollectPlanFunctionArn": lambdas.register("collect-plan", collect_handlers.plan_handler),
                "CollectBatchFunctionArn": lambdas.register("collect-batch", record_only),
                "CollectSummaryFunctionArn": lambdas.register("collect-summary", collect_handlers.summarize_handler),
                "CollectRunsBucketName": settings.collect_runs_bucket,
            },
        )
        s3_calls: Counter[str] = Counter()
        original = botocore.client.BaseClient._make_api_call

        def counting(self: Any, operation: str, params: Any) -> Any:
            if self.meta.service_model.service_name == "s3":
                s3_calls[operation] += 1
            return original(self, operation, params)

        botocore.client.BaseClient._make_api_call = counting
        try:
            started = time.perf_counter()
            arn = machines.start("collect", {})
            status, output = machines.wait(arn, timeout_s=600)
            wall = time.perf_counter() - started
        finally:
            botocore.client.BaseClient._make_api_call = original
            container.use(None)
            lambdas.close()
        assert status == "SUCCEEDED" and output["workers"] == size, output
        sizes = [
            len(details.get(field) or "")
            for event in machines.history(arn)
            for key, details in event.items()
            if key.endswith("EventDetails") and isinstance(details, dict)
            for field in ("input", "output")
        ]
        inline_plan = len(json.dumps({"worker_ids": fleet.ids}))
        return {
            "workers": size,
            "batches": output["batches"],
            "largest_state_bytes": max(sizes),
            "inline_design_bytes": inline_plan,
            "s3_requests": dict(s3_calls),
            "wall_s": round(wall, 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 50_000])
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    moto_glue.install(speedups=True)  # a benchmark measures the product, not moto's scans
    print(
        "| workers | batches (child executions) | largest state input/output, bytes "
        "| ids through the state (the inline design), bytes | S3 requests | wall s (moto) |"
    )
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        with contextlib.redirect_stdout(io.StringIO()):  # the summary's EMF lines
            r = run(size, args.batch_size)
        inline = r["inline_design_bytes"]
        verdict = "over the 256 KB limit" if inline > STATE_LIMIT else f"{100 * inline // STATE_LIMIT}% of 256 KB"
        s3 = ", ".join(f"{k} {v}" for k, v in sorted(r["s3_requests"].items()))
        print(
            f"| {r['workers']} | {r['batches']} | {r['largest_state_bytes']} | {inline} ({verdict}) | {s3} "
            f"| {r['wall_s']} |"
        )


if __name__ == "__main__":
    main()
