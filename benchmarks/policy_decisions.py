"""Benchmark: the fleet policy's decisions (schedules + idle) for a large fleet, then the same
policy carried out on in-memory twins (EC2 calls and writes counted).

    .venv/bin/python benchmarks/policy_decisions.py [--workers 10000] [--repeat 5]

A fleet of `--workers` workers in three regions: 70 % running (a third of them idle for hours,
the rest with labs running or recent activity), 30 % stopped; 60 % follow one of six schedules
(four time zones, one crossing midnight, a holiday, a per-worker override) by tag, a few by id.
Prints process CPU time and wall time of `decide_policies` (the pure decision: what runs in the
collector for each batch), the actions it decided, then `apply_policies` on the twins: EC2 calls
by region and verb, instances per call, worker writes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functions"))

from cmlcm.adapters.dynamo import InMemoryWorkerRepository  # noqa: E402
from cmlcm.adapters.operations import InMemorySettingsRepository  # noqa: E402
from cmlcm.adapters.schedule_store import InMemoryScheduleRepository  # noqa: E402
from cmlcm.domain.policy import decide_policies  # noqa: E402
from cmlcm.domain.schedules import Override, Period, Schedule, Weekday  # noqa: E402
from cmlcm.domain.settings import Settings  # noqa: E402
from cmlcm.domain.workers import ServiceStatus, Worker, WorkerMetrics, WorkerStatus  # noqa: E402
from cmlcm.ports import (  # noqa: E402
    BulkResult,
    Ec2Port,
    PolicyPorts,  # noqa: E402
)
from cmlcm.services.policy import apply_policies  # noqa: E402

NOW = datetime(2026, 12, 1, 19, 30, tzinfo=UTC)  # tuesday evening in Europe, afternoon in America
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")


def schedules() -> list[Schedule]:
    return [
        Schedule(name="paris", timezone="Europe/Paris", tags={"Schedule": "paris"},
                 periods=(Period(days=WEEKDAYS, start="08:00", end="18:00"),), holidays=(date(2026, 12, 25),)),
        Schedule(name="new-york", timezone="America/New_York", tags={"Schedule": "new-york"},
                 periods=(Period(days=WEEKDAYS, start="08:00", end="18:00"),)),
        Schedule(name="tokyo", timezone="Asia/Tokyo", tags={"Schedule": "tokyo"}, mode="stop_only",
                 periods=(Period(days=WEEKDAYS, start="09:00", end="19:00"),)),
        Schedule(name="night-lab", timezone="Europe/London", tags={"Schedule": "night-lab"},
                 periods=(Period(days=("tue", "wed"), start="20:00", end="02:00"),)),
        Schedule(name="sydney", timezone="Australia/Sydney", tags={"Schedule": "sydney"},
                 periods=(Period(days=WEEKDAYS, start="07:30", end="17:30"),)),
        Schedule(name="exam-week", timezone="Europe/Berlin", worker_ids=tuple(f"w-{i:06d}" for i in range(0, 200, 7)),
                 periods=(Period(days=("mon", "tue", "wed", "thu", "fri", "sat", "sun"), start="00:00", end="24:00"),),
                 overrides=(Override(state="stopped", until=NOW + timedelta(hours=2),
                                     worker_ids=tuple(f"w-{i:06d}" for i in range(0, 50, 7))),)),
    ]  # fmt: skip


def fleet(n: int) -> list[Worker]:
    names = ("paris", "new-york", "tokyo", "night-lab", "sydney")
    workers = []
    for i in range(n):
        running = i % 10 < 7
        idle = i % 3 == 0
        tags = {"Schedule": names[i % 5]} if i % 5 != 0 or i % 2 else {}
        if i % 10 >= 6:
            tags = {}
        changed = NOW - timedelta(hours=5)
        workers.append(
            Worker(
                worker_id=f"w-{i:06d}",
                name=f"cml-{i}",
                region=REGIONS[i % 3],
                instance_id=f"i-{i:017x}",
                instance_type="m5zn.metal" if i % 2 else "c5.metal",
                tags=tags,
                status=WorkerStatus.RUNNING if running else WorkerStatus.STOPPED,
                service_status=ServiceStatus.AVAILABLE if running else ServiceStatus.UNKNOWN,
                metrics=WorkerMetrics(
                    collected_at=NOW,
                    nodes_running=0 if idle else (4 if i % 2 else 0),
                    labs_running=0 if idle else 1,
                    last_activity_at=NOW - (timedelta(hours=3) if idle else timedelta(minutes=10)),
                )
                if running
                else None,
                created_at=changed,
                updated_at=changed,
                status_changed_at=changed,
            )
        )
    return workers


class CountingEc2:
    """An EC2 twin per region that records each batched call."""

    def __init__(self, calls: list[tuple[str, str, int]], region: str) -> None:
        self._calls, self._region = calls, region

    def stop(self, ids: Sequence[str]) -> BulkResult:
        self._calls.append((self._region, "StopInstances", len(ids)))
        return BulkResult(list(ids), {})

    def start(self, ids: Sequence[str]) -> BulkResult:
        self._calls.append((self._region, "StartInstances", len(ids)))
        return BulkResult(list(ids), {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    workers = fleet(args.workers)
    plans = schedules()
    settings = Settings(idle_timeout_minutes=60)
    print(f"fleet: {len(workers)} workers, {len(plans)} schedules, load average {os.getloadavg()[0]:.2f} (shared host)")

    decide_policies(workers[:100], plans, settings, now=NOW)  # warm the zone cache and imports
    cpu_s, wall_s = [], []
    actions = []
    for _ in range(args.repeat):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        actions = decide_policies(workers, plans, settings, now=NOW)
        cpu_s.append(time.process_time() - cpu0)
        wall_s.append(time.perf_counter() - wall0)
    by_kind = Counter(f"{a.source}:{a.action}" for a in actions)
    print(f"decide_policies x{args.repeat}: CPU s per run min {min(cpu_s):.3f} median {statistics.median(cpu_s):.3f} "
          f"max {max(cpu_s):.3f}; wall s min {min(wall_s):.3f} median {statistics.median(wall_s):.3f} "
          f"max {max(wall_s):.3f}")  # fmt: skip
    print(f"actions decided: {len(actions)} {dict(sorted(by_kind.items()))}")

    repo = InMemoryWorkerRepository()
    for worker in workers:
        repo.add(worker)
    calls: list[tuple[str, str, int]] = []
    ports = PolicyPorts(
        workers=repo,
        settings=InMemorySettingsRepository(settings),
        # Only stop/start are reached: the rest of the port is not needed by the policy.
        ec2_for=lambda region: cast(Ec2Port, CountingEc2(calls, region)),
        schedules=InMemoryScheduleRepository(plans),
    )
    writes_before = repo.writes
    cpu0, wall0 = time.process_time(), time.perf_counter()
    outcome = apply_policies(ports, list(repo.iter_active()), now=NOW)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"apply_policies (in-memory twins): CPU {cpu:.3f} s, wall {wall:.3f} s")
    print(f"  EC2 calls: {len(calls)}: " + ", ".join(f"{r} {verb} ({n} instances)" for r, verb, n in sorted(calls)))
    print(f"  worker writes: {repo.writes - writes_before} (stops/starts {outcome.paused_idle + outcome.schedule_stopped + outcome.schedule_started}, "
          f"schedule marks {outcome.marked}); idle pauses {outcome.paused_idle}, schedule stops {outcome.schedule_stopped}, "
          f"schedule starts {outcome.schedule_started}, failed {outcome.failed}")  # fmt: skip
    print(
        f"  stopped by policy after: {outcome.stopped_by_policy} workers, ${outcome.usd_per_hour:.2f} per hour avoided"
    )


if __name__ == "__main__":
    main()
