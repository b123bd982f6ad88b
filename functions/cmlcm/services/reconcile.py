"""The reconciler: finds what the saga or a person left inconsistent, reports it, fixes it by policy.

Three findings, per region:
- `unrecorded_instance`: a live instance tagged ManagedBy=CmlCloudManager that no worker record
  owns → policy `reconcile_policy_unrecorded`: terminate, adopt (import it) or mark (report only).
- `failed_with_live_instance`: a FAILED (or TERMINATED) worker whose instance still lives →
  policy `reconcile_policy_failed_live`: terminate or mark.
- `vanished_instance`: an active record whose instance EC2 no longer knows → always marked
  TERMINATED (there is nothing left to stop or pay for).
- `image_details`: an active worker whose AMI's name, description and creation date are not
  recorded yet (created or imported before they were) → filled from DescribeImages (one call
  per region for all of them).
- `auto_imported`: with the setting `auto_import_enabled` (off by default), every live instance
  of an AMI matching the region's `ami_name_pattern` that no worker records is imported, as
  `POST /workers/import` would (idempotent: known instances are skipped, and an instance's
  worker id is derived from its id, so this and a concurrent API import cannot both add it).

Auto-import is part of the reconciler rather than a job of its own: it runs under the
reconciler's lease, so it never races the `adopt` policy (both import instances) or another
reconciler run; it reuses the run's per-region EC2 listing pass and its heartbeat, findings
log and metrics; and the jobs API's run now / pause / resume of `reconcile` cover it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial
from typing import Literal

from cmlcm.domain.errors import ExternalServiceError
from cmlcm.domain.jobs import RECONCILE_JOB, JobOutcome, Metric, RunRequest
from cmlcm.domain.reconciliation import plan_region, vanished
from cmlcm.domain.workers import MANAGED_BY_TAG, MANAGED_BY_VALUE, ChangeCause, Worker
from cmlcm.ports import JobRepository, ProvisionPorts, WorkerQuery, WorkerRepository
from cmlcm.services import provisioning
from cmlcm.services.jobs import job_intervals, run_job
from cmlcm.services.workers import mutate

RECONCILER = ChangeCause(kind="reconciler", by="reconciler")

FindingKind = Literal[
    "unrecorded_instance", "failed_with_live_instance", "vanished_instance", "image_details", "auto_imported"
]
#: Import skips that are the normal case of an idempotent auto-import, not findings.
_ROUTINE_SKIPS = ("already managed", "instance is")


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    region: str
    instance_id: str | None
    worker_id: str | None
    action: Literal["terminated", "adopted", "marked", "failed", "filled", "imported", "skipped"]
    detail: str = ""

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


@dataclass(frozen=True)
class ReconcileOutcome(JobOutcome):
    """A reconciliation's outcome (its heartbeat and metrics) and its findings."""

    findings: tuple[Finding, ...] = ()


#: The finding kinds counted as metrics every run (`Reconcile_<kind>`, 0 included: the alarms read them).
COUNTED_KINDS: tuple[FindingKind, ...] = (
    "unrecorded_instance",
    "failed_with_live_instance",
    "vanished_instance",
    "auto_imported",
)


def outcome_of(findings: Sequence[Finding]) -> ReconcileOutcome:
    """The run succeeded unless an action failed; counts by kind, and how many workers were auto-imported."""
    counts = Counter(f.kind for f in findings)
    summary: dict[str, int | float | str] = {kind: n for kind, n in counts.items()}
    summary["findings"] = len(findings)
    summary["auto_imported_workers"] = sum(1 for f in findings if f.kind == "auto_imported" and f.action == "imported")
    return ReconcileOutcome(
        succeeded=not any(f.action == "failed" for f in findings),
        summary=summary,
        metrics=tuple(Metric(f"Reconcile_{kind}", counts.get(kind, 0)) for kind in COUNTED_KINDS),
        findings=tuple(findings),
    )


def reconcile_run(
    ports: ProvisionPorts,
    jobs: JobRepository,
    regions: tuple[str, ...],
    run: RunRequest,
    *,
    clock: Callable[[], datetime],
) -> ReconcileOutcome | None:
    """One reconciliation as a run of the `reconcile` job (lease, heartbeat); None when it may not
    run (another run holds the lease, or the schedule started it while the job is paused)."""
    interval = job_intervals(ports.settings.get())[RECONCILE_JOB]
    now = clock()
    work = partial(_reconciled, ports, regions, now)
    return run_job(jobs, RECONCILE_JOB, run, work, interval_seconds=interval, clock=clock)


def _reconciled(ports: ProvisionPorts, regions: tuple[str, ...], now: datetime) -> ReconcileOutcome:
    return outcome_of(reconcile(ports, regions=regions, now=now))


def all_workers(repo: WorkerRepository) -> list[Worker]:
    """Every record, terminated ones included (a paged scan: the reconciler runs rarely)."""
    found: list[Worker] = []
    token: str | None = None
    while True:
        page = repo.list(WorkerQuery(include_terminated=True, limit=500, next_token=token))
        found.extend(page.items)
        token = page.next_token
        if not token:
            return found


def reconcile(
    ports: ProvisionPorts,
    *,
    regions: tuple[str, ...],
    now: datetime,
) -> list[Finding]:
    """Each region's plan (`cmlcm.domain.reconciliation`), acted on by the settings' policies."""
    settings = ports.settings.get()
    workers = all_workers(ports.workers)
    findings: list[Finding] = []
    for region in regions:
        ec2 = ports.ec2_for(region)
        try:
            managed = ec2.find_by_tag(MANAGED_BY_TAG, MANAGED_BY_VALUE)
        except ExternalServiceError as exc:
            findings.append(
                Finding("unrecorded_instance", region, None, None, "failed", f"listing failed: {exc.message}")
            )
            continue
        plan = plan_region(region, managed, workers)
        for instance_id in plan.unrecorded:
            findings.append(_unrecorded(ports, settings.reconcile_policy_unrecorded, region, instance_id, now))
        for owner, instance_id in plan.failed_live:
            findings.append(_failed_live(ports, settings.reconcile_policy_failed_live, owner, instance_id))
        findings.extend(_fill_image_details(ports, region, list(plan.active), now))
        if settings.auto_import_enabled:
            findings.extend(_auto_import(ports, region, settings.defaults_for(region).ami_name_pattern, now))
        try:
            known = ec2.describe([w.instance_id for w in plan.active])  # type: ignore[misc]  # these workers all have an instance id
        except ExternalServiceError:
            continue
        for worker in vanished(plan.active, known):
            mutate(ports.workers, worker.worker_id, lambda w: w.instance_vanished(now=now), RECONCILER)
            findings.append(
                Finding(
                    "vanished_instance",
                    region,
                    worker.instance_id,
                    worker.worker_id,
                    "marked",
                    "record marked terminated",
                )
            )
    return findings


def _fill_image_details(ports: ProvisionPorts, region: str, workers: list[Worker], now: datetime) -> list[Finding]:
    """Record the AMI details of workers that lack them (one DescribeImages for the region)."""
    missing = [w for w in workers if w.ami_id and w.ami_created_at is None]
    if not missing:
        return []
    try:
        images = ports.ec2_for(region).images({w.ami_id for w in missing if w.ami_id})
    except ExternalServiceError as exc:
        return [Finding("image_details", region, None, None, "failed", f"DescribeImages failed: {exc.message}")]
    findings: list[Finding] = []
    for worker in missing:
        image = images.get(worker.ami_id or "")
        if image is None:
            continue  # deregistered or not shared with this account: nothing to learn
        mutate(
            ports.workers,
            worker.worker_id,
            lambda w, i=image: w.touch(  # type: ignore[misc]  # default binds this worker's image
                now, ami_name=i.name, ami_description=i.description, ami_created_at=i.created_at
            ),
            RECONCILER,
        )
        findings.append(
            Finding("image_details", region, worker.instance_id, worker.worker_id, "filled", image.image_id)
        )
    return findings


def _auto_import(ports: ProvisionPorts, region: str, pattern: str, now: datetime) -> list[Finding]:
    """Import the region's unrecorded instances of matching AMIs; each import (and each skip
    that is not routine) is a finding."""
    try:
        report = provisioning.import_instances(
            ports, region=region, instance_id=None, ami_name_pattern=pattern, now=now, reason="auto-imported"
        )
    except ExternalServiceError as exc:
        return [Finding("auto_imported", region, None, None, "failed", f"import failed: {exc.message}")]
    findings = [
        Finding("auto_imported", region, w.instance_id, w.worker_id, "imported", w.name) for w in report.imported
    ]
    findings += [
        Finding("auto_imported", region, skip["instance_id"], None, "skipped", skip["reason"])
        for skip in report.skipped
        if not skip["reason"].startswith(_ROUTINE_SKIPS)
    ]
    return findings


def _unrecorded(
    ports: ProvisionPorts,
    policy: str,
    region: str,
    instance_id: str,
    now: datetime,
) -> Finding:
    ec2 = ports.ec2_for(region)
    try:
        if policy == "terminate":
            result = ec2.terminate([instance_id])
            if instance_id in result.failed:
                raise result.failed[instance_id]
            return Finding("unrecorded_instance", region, instance_id, None, "terminated")
        if policy == "adopt":
            report = provisioning.import_instances(
                ports, region=region, instance_id=instance_id, ami_name_pattern=None, now=now
            )
            if report.imported:
                return Finding("unrecorded_instance", region, instance_id, report.imported[0].worker_id, "adopted")
            return Finding("unrecorded_instance", region, instance_id, None, "failed", report.skipped[0]["reason"])
    except ExternalServiceError as exc:
        return Finding("unrecorded_instance", region, instance_id, None, "failed", exc.message)
    return Finding("unrecorded_instance", region, instance_id, None, "marked", "policy is mark: left running")


def _failed_live(ports: ProvisionPorts, policy: str, worker: Worker, instance_id: str) -> Finding:
    if policy == "terminate":
        result = ports.ec2_for(worker.region).terminate([instance_id])
        if instance_id in result.failed:
            return Finding(
                "failed_with_live_instance",
                worker.region,
                instance_id,
                worker.worker_id,
                "failed",
                result.failed[instance_id].message,
            )
        return Finding("failed_with_live_instance", worker.region, instance_id, worker.worker_id, "terminated")
    return Finding(
        "failed_with_live_instance",
        worker.region,
        instance_id,
        worker.worker_id,
        "marked",
        "policy is mark: left running",
    )
