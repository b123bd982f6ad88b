"""Fleet metrics collection: ONE service for the scheduled cycle and the on-demand refresh.

For a batch of workers it makes one DescribeInstanceStatus per 100 instances (every instance's
state and checks, every cycle), one DescribeAddresses a region (the Elastic IPs), DescribeInstances
only for the instances whose state moved, that are missing, never collected, recorded unreachable
or with an EC2 fault, or whose public address an Elastic IP moved (`needs_description`; without the
Elastic IPs, each on its turn once every `cml_facts_every_cycles` cycles; the others keep their
recorded addresses), one GetMetricData per 250 instances (500 queries), probes the CML controllers of
running workers concurrently (bounded), computes each worker's new state with the pure
`observe()` (`cmlcm.domain.observation`), and writes only the workers that changed. A fault is
recorded on its worker only.

What each controller read fetches is planned per worker (`read_plan`): usage and labs every
cycle, the slow-changing facts on their own cadence or at once when the worker's state says they
may have moved, the telemetry history only when an idle decision needs it. The labs the read
returns are synced into the labs table in the same batch, and only for workers whose labs'
fingerprint changed (an unchanged cycle neither reads nor writes that table).
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Literal, TypeAlias

from cmlcm import aio
from cmlcm.domain.cml import FACTS, FULL_READ, CmlReading, Fact, ReadPlan, facts_turn, labs_digest
from cmlcm.domain.collection import BatchCounts, Cadence
from cmlcm.domain.ec2 import ElasticIps, InstanceStatus
from cmlcm.domain.errors import ConcurrentModification, ExternalServiceError
from cmlcm.domain.idle import decide_idle
from cmlcm.domain.jobs import Metric, MetricSample
from cmlcm.domain.labs import Lab, plan_lab_sync
from cmlcm.domain.observation import Observation, instance_from_status, needs_description, observe
from cmlcm.domain.workers import (
    ChangeCause,
    ServiceStatus,
    Worker,
    WorkerError,
    WorkerStatus,
)
from cmlcm.ports import (
    CmlReader,
    CollectPorts,
    InstanceInfo,
    InstanceUsage,
    PolicyPorts,
    RefreshLimiter,
)
from cmlcm.services.labs import lab_from_cml
from cmlcm.services.policy import IDLE_POLICY, apply_policies
from cmlcm.services.workers import get_worker, mutate

#: Causes recorded on what the collector writes (live events say who changed a worker).
COLLECTOR = ChangeCause(kind="collector")


@dataclass
class CollectResult(BatchCounts):
    """What one collection did: the counts a run sums (stored per batch), and what stays with the batch."""

    #: Wall time of each step (records, ec2_status, ec2_describe, cloudwatch, cml, cml_late, write,
    #: pause, samples); ec2_describe, cloudwatch and cml overlap. Logged per batch, not summed by the Map.
    phases_ms: dict[str, int] = field(default_factory=dict)
    #: Instances described (DescribeInstances) this cycle, by why (`needs_description`'s reasons,
    #: `statuses_failed` for all of a region whose statuses could not be read). Not summed by the Map.
    described: Counter[str] = field(default_factory=Counter)
    updated: list[Worker] = field(default_factory=list)
    #: The batch's workers by status after this cycle, plus `paused` (stopped by a pause and not
    #: resumed since): EMF metrics for the dashboard's fleet and hours-saved graphs; not summed by the Map.
    fleet: dict[str, int] = field(default_factory=dict)
    #: On-demand USD per hour of the batch's workers a policy keeps stopped (EMF: money saved).
    policy_savings_usd_per_hour: float = 0.0

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases_ms[name] = self.phases_ms.get(name, 0) + int((time.perf_counter() - started) * 1000)

    def metrics(self) -> list[Metric]:
        """The batch's workers by status (and paused): summed over a run's batches by CloudWatch,
        they are the dashboard's fleet by status and hours saved; and what the workers a policy
        keeps stopped would cost running (integrated over time: the money saved). None for an
        empty batch."""
        if not self.fleet:
            return []
        by_status = [Metric(f"Fleet_{status}", count) for status, count in sorted(self.fleet.items())]
        return [*by_status, Metric("PolicySavingsUsdPerHour", self.policy_savings_usd_per_hour)]


def _reobserve(worker: Worker, *, observation: Observation, now: datetime) -> Worker:
    """`observe` with keyword arguments, for `mutate` on a fresh copy."""
    return observe(worker, observation, now=now)


def _operation_pending(worker: Worker) -> bool:
    licence = worker.licence
    return licence is not None and licence.operation_state == "pending"


def facts_due(worker: Worker, cadence: Cadence, *, now: datetime) -> frozenset[Fact]:
    """The slow facts this cycle reads for the worker: the one whose turn it is on the cadence,
    or all of them when its state says they may have moved (a full read, never read, CML not seen
    available, a licence operation pending)."""
    metrics = worker.metrics
    if (
        cadence.full
        or metrics is None
        or metrics.cml_version is None
        or worker.cml_system is None
        or worker.service_status != ServiceStatus.AVAILABLE
        or _operation_pending(worker)
    ):
        return frozenset(FACTS)
    return facts_turn(worker.worker_id, now=now, every=cadence.every, interval_minutes=cadence.interval_minutes)


def read_plan(worker: Worker, instance: InstanceInfo | None, cadence: Cadence, *, now: datetime) -> ReadPlan:
    """What this cycle reads from the worker's controller (pure). Beyond the activity history's
    own turn, it is read whenever the idle policy would pause the worker on what is known without
    it: the one decision a recent login could change."""
    if cadence.full:
        return FULL_READ
    facts = facts_due(worker, cadence, now=now)
    metrics = worker.metrics
    idle = cadence.idle

    def activity(reading: CmlReading) -> bool:
        if idle is None:
            return False
        candidate = observe(worker, Observation(instance=instance, reading=reading), now=now)
        return bool(decide_idle([candidate], idle, now=now))

    health = worker.cml_system.health if worker.cml_system is not None else None
    return ReadPlan(
        facts=facts,
        known_version=metrics.cml_version if metrics else None,
        # The health's flag, as the lab tiles repeat it (the same source, so no false alarms).
        known_licensed=health.is_licensed if health is not None else None,
        activity=activity,
    )


class _CmlReads:
    """One region's controller reads, on one session. A read starts as soon as its worker is
    known to run: from its record, before this cycle's statuses are in (their wait, and EC2's,
    overlaps the controllers' answers), or when the statuses or descriptions show it running. A
    read started on the record is cancelled when they show the worker not running (a stopped
    instance's address would only hold a slot until the deadline). `limit` is the whole
    collection's (every region's), so the controllers read at once, and the sockets they hold,
    stay within `cml_concurrency` however the batch spans regions."""

    def __init__(self, ports: CollectPorts, limit: asyncio.Semaphore) -> None:
        self._ports = ports
        self._limit = limit
        self._session: AsyncExitStack | None = None
        self._reader: CmlReader | None = None
        self._tasks: dict[str, asyncio.Task[CmlReading | ExternalServiceError]] = {}
        self._cancelled: list[asyncio.Task[CmlReading | ExternalServiceError]] = []
        self.started_at: float | None = None

    def __contains__(self, worker_id: str) -> bool:
        return worker_id in self._tasks

    async def start(self, workers: Sequence[Worker], plans: dict[str, ReadPlan]) -> None:
        if not workers:
            return
        if self._reader is None:
            self._session = AsyncExitStack()
            self._reader = await self._session.enter_async_context(self._ports.cml.session())
            self.started_at = time.perf_counter()
        for worker in workers:
            self._tasks[worker.worker_id] = asyncio.create_task(self._read(worker, plans[worker.worker_id]))

    async def _read(self, worker: Worker, plan: ReadPlan) -> CmlReading | ExternalServiceError:
        assert self._reader is not None  # (started above)
        async with self._limit:
            try:
                return await self._reader.read(worker, plan)
            except ExternalServiceError as exc:  # recorded on this worker, never raised past it
                return exc

    def keep_only(self, worker_ids: set[str]) -> None:
        """Cancel the reads of workers not in `worker_ids`."""
        for worker_id in [w for w in self._tasks if w not in worker_ids]:
            task = self._tasks.pop(worker_id)
            task.cancel()
            self._cancelled.append(task)

    async def results(self, worker_ids: Iterable[str]) -> dict[str, CmlReading | ExternalServiceError]:
        tasks = {w: self._tasks[w] for w in worker_ids if w in self._tasks}
        return dict(zip(tasks, await asyncio.gather(*tasks.values()), strict=True))

    async def aclose(self) -> None:
        """Cancel what is left (a region EC2 could not read), let every read end, close the session."""
        self.keep_only(set())
        if self._cancelled:
            await asyncio.gather(*self._cancelled, return_exceptions=True)
        if self._session is not None:
            await self._session.aclose()


#: A region's descriptions (or the fault that stopped them), and the CML reads they led to.
_Described: TypeAlias = tuple[
    dict[str, InstanceInfo] | ExternalServiceError, dict[str, CmlReading | ExternalServiceError]
]


async def _observe_region(
    ports: CollectPorts,
    region: str,
    workers: Sequence[Worker],
    now: datetime,
    result: CollectResult,
    cml_limit: asyncio.Semaphore,
    cadence: Cadence,
) -> dict[str, Observation]:
    """One region's observations. DescribeInstanceStatus first, for every instance (state and
    checks); DescribeInstances then only for the instances `needs_description` picks, at the same
    time as CloudWatch. The CML reads of the workers recorded running start before the statuses
    (a controller is addressed by its record, not by this cycle's EC2 reads); those the statuses
    show stopped are cancelled, those they show newly running are read then. The others'
    addresses are the record's. If the statuses cannot be read, every instance is described first,
    as before."""
    reads = _CmlReads(ports, cml_limit)
    try:
        return await _observe_region_reading(ports, region, workers, now, result, reads, cadence)
    finally:
        await reads.aclose()
        if reads.started_at is not None:
            took = int((time.perf_counter() - reads.started_at) * 1000)
            result.phases_ms["cml"] = result.phases_ms.get("cml", 0) + took


def _recorded_running(worker: Worker) -> InstanceInfo | None:
    """The instance as the worker's record has it, if the record says it runs."""
    if worker.instance_id is None or worker.metrics is None or worker.metrics.ec2_state != "running":
        return None
    return instance_from_status(worker, InstanceStatus(worker.instance_id, "running", None, None))


async def _observe_region_reading(
    ports: CollectPorts,
    region: str,
    workers: Sequence[Worker],
    now: datetime,
    result: CollectResult,
    reads: _CmlReads,
    cadence: Cadence,
) -> dict[str, Observation]:
    with_instance = [w for w in workers if w.instance_id]
    recorded = {w.worker_id: info for w in with_instance if (info := _recorded_running(w)) is not None}
    early = [w for w in with_instance if w.worker_id in recorded]
    await reads.start(early, {w.worker_id: read_plan(w, recorded[w.worker_id], cadence, now=now) for w in early})
    ids = [w.instance_id for w in with_instance if w.instance_id]  # (filtered above; narrows the type)
    ec2 = ports.ec2_for(region)
    #: What is known of each instance before the CML reads: its status with the record's addresses,
    #: or (statuses failed) its description.
    known: dict[str, InstanceInfo] = {}
    checks: dict[str, tuple[str | None, str | None]] | ExternalServiceError
    to_describe: list[Worker] = []
    described: dict[str, InstanceInfo] | ExternalServiceError = {}

    async def elastic_ips() -> ElasticIps | None:
        """The region's Elastic IPs, beside the statuses; None when they need not or cannot be
        read (a full read describes everything; without them each worker is described on its turn)."""
        if cadence.full or not ids:
            return None
        try:
            return await asyncio.to_thread(ec2.elastic_ips)
        except ExternalServiceError:
            # Named in the batch's log line with the reasons instances were described.
            result.described["elastic_ips_unread"] += 1
            return None

    eips = asyncio.ensure_future(elastic_ips())
    try:
        with result.phase("ec2_status"):
            statuses = await asyncio.to_thread(ec2.statuses, ids)
    except ExternalServiceError as exc:
        await eips
        # Without states nothing can be left undescribed: describe every instance first (the
        # checks' fault is recorded on each worker), as the collector did before it read statuses.
        checks = exc
        try:
            with result.phase("ec2_describe"):
                described = await asyncio.to_thread(ec2.describe, ids)
        except ExternalServiceError as fault:
            unread = WorkerError(source="ec2", kind=fault.code, message=fault.message, at=now)
            return {w.worker_id: Observation(instance=None, error=unread) for w in with_instance}
        known = dict(described)
        asked = set(ids)
        result.described["statuses_failed"] += len(asked)
    else:
        checks = {iid: (s.system_status, s.instance_status) for iid, s in statuses.items()}
        region_eips = await eips
        for worker in with_instance:
            status = statuses.get(worker.instance_id or "")
            if status is not None:
                known[status.instance_id] = instance_from_status(worker, status)
            reason = needs_description(worker, status, cadence, now=now, elastic_ips=region_eips)
            if reason is not None:
                to_describe.append(worker)
                result.described[reason] += 1
        asked = {w.instance_id for w in to_describe if w.instance_id}
    running = [w for w in with_instance if _state(known, w.instance_id) == "running"]
    running_ids = [w.instance_id for w in running if w.instance_id]
    probed = {w.worker_id for w in running}
    # The reads started on the record go on for the workers found running and for those whose
    # state is known only once described (left out of the statuses); the others are cancelled.
    undecided = {w.worker_id for w in to_describe if (w.instance_id or "") not in known}
    reads.keep_only(probed | undecided)
    newly_running = [w for w in running if w.worker_id not in reads]
    await reads.start(
        newly_running,
        {w.worker_id: read_plan(w, known.get(w.instance_id or ""), cadence, now=now) for w in newly_running},
    )

    async def usage() -> dict[str, InstanceUsage] | ExternalServiceError:
        if not running_ids:
            return {}
        try:
            with result.phase("cloudwatch"):
                return await asyncio.to_thread(ports.cloudwatch_for(region).instance_usage, running_ids, now=now)
        except ExternalServiceError as exc:
            return exc

    async def probes() -> dict[str, CmlReading | ExternalServiceError]:
        return await reads.results(probed)

    async def describe() -> _Described:
        """The picked instances' descriptions, and the CML reads of those found running that the
        statuses did not show running (an instance too new for them, say)."""
        if not to_describe:
            return {}, {}
        try:
            with result.phase("ec2_describe"):
                found = await asyncio.to_thread(ec2.describe, sorted(asked))
        except ExternalServiceError as exc:
            reads.keep_only(probed)
            return exc, {}
        late = [w for w in to_describe if w.worker_id not in probed and _state(found, w.instance_id) == "running"]
        reads.keep_only(probed | {w.worker_id for w in late})
        if not late:
            return found, {}
        unread = [w for w in late if w.worker_id not in reads]
        late_plans = {w.worker_id: read_plan(w, found.get(w.instance_id or ""), cadence, now=now) for w in unread}
        with result.phase("cml_late"):
            await reads.start(unread, late_plans)
            return found, await reads.results(w.worker_id for w in late)

    usage_map, readings, (moved, late_readings) = await asyncio.gather(usage(), probes(), describe())
    if to_describe:
        described = moved
    readings |= late_readings
    observations: dict[str, Observation] = {}
    for worker in with_instance:
        instance_id = worker.instance_id or ""
        instance = known.get(instance_id)
        describe_fault: ExternalServiceError | None = None
        if instance_id in asked:
            if isinstance(described, ExternalServiceError):
                # Never drop the state the statuses gave: keep it with the record's addresses.
                describe_fault = described
            else:
                instance = described.get(instance_id)
        reading = readings.get(worker.worker_id)
        error: WorkerError | None = None
        if isinstance(reading, ExternalServiceError):
            kind = getattr(reading, "kind", reading.code)
            error = WorkerError(source="cml", kind=kind, message=reading.message, at=now)
            reading = None
        faults: tuple[tuple[Literal["ec2", "cloudwatch"], object], ...] = (
            ("ec2", checks),
            ("ec2", describe_fault),
            ("cloudwatch", usage_map),
        )
        for source, value in faults:
            if isinstance(value, ExternalServiceError) and error is None:
                error = WorkerError(source=source, kind=value.code, message=value.message, at=now)
        observations[worker.worker_id] = Observation(
            instance=instance,
            # Only a description that left the instance out says it is gone.
            instance_missing=instance is None and describe_fault is None,
            checks=checks.get(instance_id, (None, None)) if isinstance(checks, dict) else (None, None),
            usage=usage_map.get(instance_id, InstanceUsage()) if isinstance(usage_map, dict) else InstanceUsage(),
            reading=reading,
            error=error,
        )
    return observations


def _sample(worker: Worker, now: datetime) -> MetricSample | None:
    metrics = worker.metrics
    if metrics is None or metrics.ec2_state != "running":
        return None
    return MetricSample(
        worker_id=worker.worker_id,
        at=now,
        cpu_percent=metrics.cpu_percent if metrics.cpu_percent is not None else metrics.cml_cpu_percent,
        memory_percent=metrics.memory_percent if metrics.memory_percent is not None else metrics.cml_memory_percent,
        labs_running=metrics.labs_running,
        nodes_running=metrics.nodes_running,
    )


async def _cadence(ports: CollectPorts, *, full: bool, policies: bool) -> Cadence:
    """The cycle's read cadence from the settings; the idle policy's settings when it runs."""
    settings = await asyncio.to_thread(ports.settings.get)
    return Cadence(
        every=settings.cml_facts_every_cycles,
        interval_minutes=settings.collect_interval_minutes,
        idle=settings if policies else None,
        full=full,
    )


async def _sync_labs(
    ports: CollectPorts, workers: Sequence[Worker], observations: dict[str, Observation], now: datetime
) -> tuple[dict[str, Observation], int]:
    """Make the labs table match each controller's bulk lab read, for the workers whose labs'
    fingerprint differs from the one recorded (a worker's rows are read only then): new and
    changed labs put, vanished ones deleted, all in BatchWriteItem requests. Returns the
    observations carrying the new fingerprints and the rows written; on a fault nothing is
    recorded, so the next cycle tries again."""
    repo = ports.labs
    if repo is None:
        return observations, 0
    changed: dict[str, tuple[Worker, str, tuple[Lab, ...]]] = {}
    for worker in workers:
        observation = observations.get(worker.worker_id)
        reading = observation.reading if observation is not None else None
        if reading is None or reading.labs is None:
            continue
        digest = labs_digest(reading.labs)
        if worker.metrics is not None and worker.metrics.labs_digest == digest:
            continue
        labs = tuple(lab_from_cml(worker.worker_id, lab, now) for lab in reading.labs)
        changed[worker.worker_id] = (worker, digest, labs)
    if not changed:
        return observations, 0
    stored = await asyncio.gather(*(asyncio.to_thread(repo.list, worker_id) for worker_id in changed))
    puts: list[Lab] = []
    deletes: list[Lab] = []
    for (_, _, observed), rows in zip(changed.values(), stored, strict=True):
        plan = plan_lab_sync(rows, observed)
        puts += plan.puts
        deletes += plan.orphans
    written = await asyncio.to_thread(repo.write, puts, deletes)
    synced = {wid: replace(observations[wid], labs_digest=digest) for wid, (_, digest, _) in changed.items()}
    return observations | synced, written


#: Net new container objects between two young garbage collections while a collection runs
#: (CPython's default: 700). A cycle keeps thousands of objects alive per worker until its end
#: (readings, observations, connections), so at 700 the collector re-traversed and promoted them
#: over and over: about a fifth of its CPU in a 1000-worker cycle (measured; benchmarks/collect_fleet.py).
COLLECT_GC_THRESHOLD = 50_000


class _RelaxedGc:
    """How many collections run now in this process, and the thresholds to restore after them
    (under `lock`: in local mode a refresh on an API thread may run beside the scheduled one)."""

    lock = threading.Lock()
    depth = 0
    saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def relaxed_gc() -> Iterator[None]:
    """Young collections every `COLLECT_GC_THRESHOLD` new objects while any collection runs in
    this process (several batches may share one event loop); the previous thresholds after the
    last one ends. Garbage is still collected, only in fewer, larger passes."""
    with _RelaxedGc.lock:
        if _RelaxedGc.depth == 0:
            _RelaxedGc.saved = gc.get_threshold()
            first, second, third = _RelaxedGc.saved
            gc.set_threshold(max(COLLECT_GC_THRESHOLD, first), second, third)
        _RelaxedGc.depth += 1
    try:
        yield
    finally:
        with _RelaxedGc.lock:
            _RelaxedGc.depth -= 1
            if _RelaxedGc.depth == 0:
                gc.set_threshold(*_RelaxedGc.saved)


async def collect(
    ports: CollectPorts, worker_ids: Sequence[str], *, now: datetime, full: bool = False, policies: bool = True
) -> CollectResult:
    """Collect and store the state of the given workers; see the module docstring. `full` reads
    everything from every controller (an on-demand refresh), whatever the cadence; `policies`
    applies the idle policy and the schedules afterwards (the scheduled collection does; a
    refresh does not)."""
    with relaxed_gc():
        return await _collect(ports, worker_ids, now=now, full=full, policies=policies)


async def _collect(
    ports: CollectPorts, worker_ids: Sequence[str], *, now: datetime, full: bool, policies: bool
) -> CollectResult:
    started = time.perf_counter()
    result = CollectResult()
    with result.phase("records"):
        workers = await asyncio.to_thread(ports.workers.get_many, worker_ids)
        cadence = await _cadence(ports, full=full, policies=policies)
    result.workers = len(workers)
    by_region: dict[str, list[Worker]] = defaultdict(list)
    for worker in workers:
        by_region[worker.region].append(worker)
    cml_limit = asyncio.Semaphore(ports.cml_concurrency)
    per_region = await asyncio.gather(
        *(_observe_region(ports, r, ws, now, result, cml_limit, cadence) for r, ws in by_region.items())
    )
    observations = {k: v for part in per_region for k, v in part.items()}
    result.cml_requests = sum(o.reading.requests for o in observations.values() if o.reading is not None)
    with result.phase("labs"):
        try:
            observations, result.labs_written = await _sync_labs(ports, workers, observations, now)
        except ExternalServiceError as exc:
            # The labs table is a view of CML: a fault there costs no worker its reading.
            result.errors = dict(Counter(result.errors) + Counter({f"labs_{exc.code}": 1}))

    changed: list[Worker] = []
    for worker in workers:
        observation = observations.get(worker.worker_id)
        if observation is None:
            continue
        if observation.error is not None:
            result.failed += 1
            result.errors = dict(Counter(result.errors) + Counter({observation.error.kind: 1}))
        new = observe(worker, observation, now=now)
        if new != worker:
            changed.append(new.model_copy(update={"last_change": COLLECTOR}))
    result.changed = len(changed)
    with result.phase("write"):
        saved, conflicts = await asyncio.to_thread(ports.workers.save_many, changed)
        result.updated.extend(saved)
        for stale, _ in conflicts:
            # Someone wrote this worker meanwhile (a user's stop, say): re-apply onto the fresh copy.
            observation = observations[stale.worker_id]
            try:
                fresh = await asyncio.to_thread(
                    mutate,
                    ports.workers,
                    stale.worker_id,
                    partial(_reobserve, observation=observation, now=now),
                    COLLECTOR,
                )
            except ConcurrentModification:
                result.failed += 1
                continue
            result.updated.append(fresh)
    result.written = len(result.updated)
    latest = {w.worker_id: w for w in workers} | {w.worker_id: w for w in result.updated}
    if policies:
        with result.phase("pause"):
            policy = PolicyPorts(ports.workers, ports.settings, ports.ec2_for, ports.schedules)
            outcome = await asyncio.to_thread(apply_policies, policy, list(latest.values()), now=now)
        result.paused = outcome.paused_idle
        result.schedule_stopped, result.schedule_started = outcome.schedule_stopped, outcome.schedule_started
        latest |= {w.worker_id: w for w in outcome.updated}
        result.fleet["policy_stopped"] = outcome.stopped_by_policy
        result.policy_savings_usd_per_hour = outcome.usd_per_hour
    result.fleet |= dict(Counter(w.status.value for w in latest.values()))
    result.fleet["paused"] = sum(1 for w in latest.values() if _paused(w))
    samples = [s for s in (_sample(w, now) for w in latest.values()) if s is not None]
    if samples:
        with result.phase("samples"):
            result.samples = await asyncio.to_thread(ports.samples.put_many, samples)
    result.duration_ms = int((time.perf_counter() - started) * 1000)
    return result


def _paused(worker: Worker) -> bool:
    """Stopped (or stopping) by a pause that no resume has undone yet."""
    return (
        worker.status in (WorkerStatus.STOPPED, WorkerStatus.STOPPING)
        and worker.last_paused_at is not None
        and (worker.last_resumed_at is None or worker.last_resumed_at < worker.last_paused_at)
    )


def _state(instances: dict[str, InstanceInfo], instance_id: str | None) -> str | None:
    """The EC2 state of `instance_id` if EC2 described it."""
    info = instances.get(instance_id) if instance_id else None
    return info.state if info is not None else None


def collect_batch(
    ports: CollectPorts, worker_ids: Sequence[str], *, run: str | None, batch: int | None, now: datetime
) -> CollectResult:
    """Collect one batch of a collection run (the Map iteration) and store its outcome where the
    run's summary reads it. Runs its own event loop (`cmlcm.aio`: uvloop's): the Lambda handler is sync."""
    result = aio.run(collect(ports, worker_ids, now=now))
    if ports.collect_runs is not None and run is not None and batch is not None:
        ports.collect_runs.put_result(run, batch, result.as_dict())
    return result


def refresh_worker(ports: CollectPorts, limiter: RefreshLimiter, key: str, *, now: datetime) -> Worker:
    """On-demand refresh of one worker (by id or instance id) through the same `collect`, at most
    once per the settings' `refresh_min_interval_seconds` per worker (429 with Retry-After
    otherwise). Runs its own event loop: the API is sync."""
    worker = get_worker(ports.workers, key)
    settings = ports.settings.get()
    limiter.acquire(worker.worker_id, now=now, min_interval=timedelta(seconds=settings.refresh_min_interval_seconds))
    # Looking at a worker must not pause it: the idle policy runs on the schedule only. A refresh
    # reads everything (the user asked for fresh figures, not the cadence's).
    result = aio.run(collect(ports, [worker.worker_id], now=now, full=True, policies=False))
    return result.updated[0] if result.updated else ports.workers.get(worker.worker_id)


__all__ = [
    "COLLECTOR",
    "IDLE_POLICY",
    "CollectPorts",
    "CollectResult",
    "collect",
    "collect_batch",
    "refresh_worker",
]
