"""A collection run's arithmetic: what a batch counts, how a run's batches are cut and summed,
and the metrics a run publishes. Pure: the stores and the clock are the services'."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from cmlcm.domain.jobs import JobOutcome, Metric
from cmlcm.domain.settings import Settings


@dataclass(frozen=True)
class Cadence:
    """How a cycle plans its reads: the settings' cadence (`every` cycles of `interval_minutes`:
    the slow CML facts' turns and DescribeInstances' turns), the idle policy's settings (None: no
    idle policy runs, so no decision needs the telemetry history), `full` for a read of
    everything (an on-demand refresh)."""

    every: int
    interval_minutes: int
    idle: Settings | None = None
    full: bool = False


@dataclass
class BatchCounts:
    """What one batch collector counted: stored per batch (`as_dict`), summed by the run's summary."""

    workers: int = 0
    changed: int = 0
    failed: int = 0
    written: int = 0
    samples: int = 0
    paused: int = 0
    schedule_stopped: int = 0
    schedule_started: int = 0
    #: Lab rows put or deleted (labs that changed, appeared or disappeared on their controller).
    labs_written: int = 0
    #: CML requests made by the readings that succeeded (logins included).
    cml_requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    duration_ms: int = 0
    #: Not stored: the summary's mark of a batch that stored no outcome (it failed after its
    #: retries, or the Map itself failed), all its workers counted as failed.
    batch_failed: bool = False

    def as_dict(self) -> dict[str, object]:
        """The stored outcome (and the batch step's answer): the counts only."""
        return {f.name: _copy(getattr(self, f.name)) for f in fields(BatchCounts) if f.name != "batch_failed"}

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> BatchCounts:
        known = {f.name for f in fields(BatchCounts)}
        return BatchCounts(**{name: value for name, value in stored.items() if name in known})


def _copy(value: object) -> object:
    return dict(value) if isinstance(value, dict) else value


#: The counts a run sums over its batches (its heartbeat's summary).
SUMMED = ("workers", "changed", "failed", "written", "samples", "paused", "schedule_stopped", "schedule_started")


class RunSummary(BaseModel):
    """A run's totals, as recorded on the heartbeat and published as metrics."""

    model_config = ConfigDict(frozen=True)

    workers: int
    changed: int
    failed: int
    written: int
    samples: int
    paused: int
    schedule_stopped: int = 0
    schedule_started: int = 0
    batches: int
    batches_failed: int
    duration_ms: int
    errors: dict[str, int]

    @property
    def succeeded(self) -> bool:
        return self.batches_failed == 0

    def as_summary(self) -> dict[str, int | float | str]:
        """The heartbeat's `last_summary` (numbers only; error classes are metrics)."""
        return self.model_dump(exclude={"errors"})

    def outcome(self) -> JobOutcome:
        """The run's outcome: its heartbeat and its metrics (the alarms and the dashboard read them)."""
        metrics = [
            Metric("CollectDuration", self.duration_ms, "Milliseconds"),
            Metric("WorkersCollected", self.workers),
            Metric("WorkersChanged", self.changed),
            Metric("WorkersFailed", self.failed),
            Metric("BatchesFailed", self.batches_failed),
            Metric("WorkersPausedIdle", self.paused),
            Metric("WorkersStoppedBySchedule", self.schedule_stopped),
            Metric("WorkersStartedBySchedule", self.schedule_started),
            # 0 or 1 per run: the CollectionFailed alarm stays red until a run succeeds.
            Metric("CollectRunFailed", 0 if self.succeeded else 1),
        ]
        # One metric per error class (AWS or CML code): the dashboard's SEARCH graphs them all.
        metrics += [Metric(f"CollectErrors_{kind}", count) for kind, count in sorted(self.errors.items())]
        return JobOutcome(succeeded=self.succeeded, summary=self.as_summary(), metrics=tuple(metrics))


def run_name(execution: str) -> str:
    """The run's key segment: the execution's name (the last part of its ARN), unique per state machine."""
    return execution.rsplit(":", 1)[-1]


def partition(worker_ids: Sequence[str], batch_size: int) -> list[list[str]]:
    """Consecutive batches of at most `batch_size` ids, in order."""
    size = max(1, batch_size)
    return [list(worker_ids[i : i + size]) for i in range(0, len(worker_ids), size)]


def summarize(results: Sequence[BatchCounts], *, started_at: datetime, now: datetime) -> RunSummary:
    """Sum a run's batch outcomes."""
    errors: Counter[str] = Counter()
    for result in results:
        errors.update(result.errors)
    return RunSummary(
        **{name: sum(getattr(r, name) for r in results) for name in SUMMED},
        batches=len(results),
        batches_failed=sum(1 for r in results if r.batch_failed),
        duration_ms=int((now - started_at).total_seconds() * 1000),
        errors=dict(errors),
    )
