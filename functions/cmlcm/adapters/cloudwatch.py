"""CloudWatch adapter: CPU (AWS/EC2) and memory (CWAgent) for many instances in few calls.

GetMetricData takes at most 500 queries per call; each instance needs two (CPU, memory), so one
call covers 250 instances and 1000 workers cost 4 calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from cmlcm.adapters.aws import client, map_client_error
from cmlcm.ports import InstanceUsage

#: GetMetricData's limit of MetricDataQueries per request.
QUERIES_PER_CALL = 500
#: Look back far enough to find the latest 5-minute datapoint even when the agent is late.
LOOKBACK = timedelta(minutes=20)
CPU_METRIC = ("AWS/EC2", "CPUUtilization")
#: The CloudWatch agent's default memory metric; absent when the agent is not installed.
MEMORY_METRIC = ("CWAgent", "mem_used_percent")


def _queries(instance_ids: Sequence[str], period: int) -> list[dict[str, Any]]:
    queries = []
    for index, instance_id in enumerate(instance_ids):
        for prefix, (namespace, name) in (("cpu", CPU_METRIC), ("mem", MEMORY_METRIC)):
            queries.append(
                {
                    "Id": f"{prefix}{index}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": namespace,
                            "MetricName": name,
                            "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
                        },
                        "Period": period,
                        "Stat": "Average",
                    },
                    "ReturnData": True,
                }
            )
    return queries


class CloudWatchGateway:
    """Batched reads of instance usage in one region."""

    def __init__(self, region: str, cloudwatch_client: Any | None = None) -> None:
        self._cw = cloudwatch_client or client("cloudwatch", region)

    def instance_usage(
        self, instance_ids: Iterable[str], *, now: datetime, period: int = 300
    ) -> dict[str, InstanceUsage]:
        ids = list(dict.fromkeys(instance_ids))
        latest: dict[str, tuple[datetime, float]] = {}
        queries = _queries(ids, period)
        for start in range(0, len(queries), QUERIES_PER_CALL):
            self._fetch(queries[start : start + QUERIES_PER_CALL], now, latest)
        usage: dict[str, InstanceUsage] = {}
        for index, instance_id in enumerate(ids):
            cpu = latest.get(f"cpu{index}")
            mem = latest.get(f"mem{index}")
            usage[instance_id] = InstanceUsage(
                cpu_percent=round(cpu[1], 2) if cpu else None,
                memory_percent=round(mem[1], 2) if mem else None,
            )
        return usage

    def _fetch(self, queries: list[dict[str, Any]], now: datetime, latest: dict[str, tuple[datetime, float]]) -> None:
        kwargs: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": now - LOOKBACK,
            "EndTime": now,
            "ScanBy": "TimestampDescending",
        }
        while True:
            try:
                page = self._cw.get_metric_data(**kwargs)
            except ClientError as exc:
                raise map_client_error(exc, action="GetMetricData") from exc
            for result in page.get("MetricDataResults", []):
                for stamp, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                    known = latest.get(result["Id"])
                    if known is None or stamp > known[0]:
                        latest[result["Id"]] = (stamp, value)
            token = page.get("NextToken")
            if not token:
                return
            kwargs["NextToken"] = token
