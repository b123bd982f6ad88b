"""Stands in for EventBridge in local mode: starts the same state machine and Lambda on the
intervals the live settings say (moto never fires schedules), only while the job's schedule
(created in moto's Scheduler, with the names the API reads) is ENABLED, so the jobs API's pause
and resume act here as on AWS; and keeps CloudWatch seeded."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cmlcm.adapters.aws import client
from cmlcm.ports import SettingsRepository
from cmlcm.services.jobs import COLLECT_JOB, RECONCILE_JOB
from cmlcm_local.moto_glue.ec2 import instance_states

log = logging.getLogger("cmlcm.local.scheduler")


def seed_cloudwatch(region: str, *, now: datetime, rng: random.Random) -> int:
    """Put one CPU (AWS/EC2) and memory (CWAgent) datapoint per running instance, as EC2 and the
    CloudWatch agent would; moto has no metrics of its own."""
    cloudwatch = client("cloudwatch", region)
    # EC2 publishes from the inside: moto's state, not a DescribeInstances (seconds of CPU in moto
    # with 1000 instances; see moto_glue.ec2.instance_states).
    instances = [iid for iid, state in instance_states(region).items() if state == "running"]
    for start in range(0, len(instances), 500):
        batch = instances[start : start + 500]
        for namespace, name, low, high in (
            ("AWS/EC2", "CPUUtilization", 2, 60),
            ("CWAgent", "mem_used_percent", 20, 80),
        ):
            data = [
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "InstanceId", "Value": iid}],
                    "Timestamp": now,
                    "Value": round(rng.uniform(low, high), 1),
                    "Unit": "Percent",
                }
                for iid in batch
            ]
            for chunk in range(0, len(data), 1000):
                cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[chunk : chunk + 1000])
    return len(instances)


class LocalScheduler:
    """A daemon thread: each tick it checks which jobs are due by the settings' intervals."""

    def __init__(
        self,
        settings: SettingsRepository,
        jobs: dict[str, Callable[[], Any]],
        *,
        tick_seconds: float = 1.0,
        before_tick: Callable[[datetime], None] | None = None,
        enabled: Callable[[str], bool] | None = None,
    ) -> None:
        self._settings = settings
        self._jobs = jobs
        self._enabled = enabled or (lambda job: True)
        self._tick = tick_seconds
        self._before_tick = before_tick
        self._next_due: dict[str, float] = {job: 0.0 for job in jobs}  # all due at start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="local-scheduler", daemon=True)
        self.runs: dict[str, int] = {job: 0 for job in jobs}
        #: Times a job was due while its schedule was disabled (and so did not run).
        self.paused_ticks: dict[str, int] = {job: 0 for job in jobs}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def run_now(self, job: str) -> Any:
        self.runs[job] += 1
        return self._jobs[job]()

    def _intervals(self) -> dict[str, float]:
        settings = self._settings.get()
        return {
            COLLECT_JOB: settings.collect_interval_minutes * 60.0,
            RECONCILE_JOB: settings.reconcile_interval_minutes * 60.0,
        }

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self._before_tick is not None:
                    self._before_tick(datetime.now(UTC))
                intervals = self._intervals()
                for job in self._jobs:
                    if time.monotonic() >= self._next_due[job]:
                        self._next_due[job] = time.monotonic() + intervals.get(job, 60.0)
                        # A DISABLED schedule fires nothing (EventBridge Scheduler's State).
                        if self._enabled(job):
                            self.run_now(job)
                        else:
                            self.paused_ticks[job] += 1
            except Exception:  # noqa: BLE001 - a failed tick is logged and the loop goes on, like a schedule
                log.exception("local scheduler tick failed")
            self._stop.wait(self._tick)
