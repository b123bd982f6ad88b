"""Licence use cases: register (token → secret, progress recorded on the worker), poll, and
deregister. How a pending registration moves on is a domain rule (`cmlcm.domain.licences`),
shared by the API's poll and the collection cycle.

The token is written to its secret and sent to CML, nothing else: the worker keeps the secret's
name, and no message, log line or error built here contains the token.
"""

from __future__ import annotations

from datetime import datetime

from cmlcm.domain.errors import Conflict, ExternalServiceError
from cmlcm.domain.licences import REGISTRATION_DEADLINE, observed_licence, progress_licence, registration_pending
from cmlcm.domain.workers import Licence, LicenceOperation, Worker, WorkerError, WorkerStatus
from cmlcm.ports import (
    CmlController,
    CmlLicensingDetails,
    LicencePorts,
)
from cmlcm.services.labs import on_controller, require_running
from cmlcm.services.workers import get_worker, mutate


def _observed(licence: Licence | None, status: CmlLicensingDetails, now: datetime) -> Licence | None:
    return observed_licence(
        licence,
        registration_status=status.registration_status,
        authorization_status=status.authorization_status,
        expires=status.registration_expires,
        now=now,
    )


def _with_licence(worker: Worker, licence: Licence | None, now: datetime) -> Worker:
    return worker if licence == worker.licence else worker.touch(now, licence=licence)


def _cml_error(exc: ExternalServiceError, now: datetime) -> WorkerError:
    return WorkerError(source="licence", kind=getattr(exc, "kind", exc.code), message=exc.message, at=now)


def poll_licence(ports: LicencePorts, worker: Worker, *, now: datetime) -> Worker:
    """Move a pending registration on from CML's `/licensing` (only a running worker is asked;
    a CML fault is recorded on the worker, and the deadline applies either way)."""
    if not registration_pending(worker.licence):
        return worker
    status: CmlLicensingDetails | None = None
    error: WorkerError | None = None
    if worker.status == WorkerStatus.RUNNING:
        try:
            status = on_controller(ports.cml, worker, lambda cml: cml.licensing_status())
        except ExternalServiceError as exc:
            error = _cml_error(exc, now)

    def change(current: Worker) -> Worker:
        if status is not None:
            updated = _with_licence(current, _observed(current.licence, status, now), now)
        else:
            updated = _with_licence(current, progress_licence(current.licence, None, now=now), now)
        return updated if error is None else updated.note_error(error)  # no rewrite per poll

    return mutate(ports.workers, worker.worker_id, change)


def get_licence(ports: LicencePorts, key: str, *, now: datetime) -> Worker:
    """The worker with its licence as known now (a pending registration is polled first)."""
    return poll_licence(ports, get_worker(ports.workers, key), now=now)


def register_licence(ports: LicencePorts, key: str, token: str, *, reregister: bool, now: datetime) -> Worker:
    """Store the token as the worker's secret, record the registration as pending (deadline
    `ports.deadline`), and ask CML to register; CML completes it in the background. A CML
    refusal is recorded as failed with its reason and raised."""
    worker = get_worker(ports.workers, key)
    require_running(worker)
    worker = poll_licence(ports, worker, now=now)  # a finished registration must not block a new one
    if registration_pending(worker.licence):
        raise Conflict(
            f"a licence registration of worker {worker.worker_id} is already in progress "
            f"(times out at {worker.licence.operation_deadline.isoformat() if worker.licence.operation_deadline else '?'})",  # type: ignore[union-attr]  # licence is set while an operation runs
            field="licence",
        )
    secret_ref = ports.tokens.store(worker.worker_id, token)

    def pending(current: Worker) -> Worker:
        licence = (current.licence or Licence()).model_copy(
            update={
                "operation": LicenceOperation.REGISTERING,
                "operation_state": "pending",
                "operation_reason": None,
                "operation_started_at": now,
                "operation_deadline": now + ports.deadline,
                "token_secret_ref": secret_ref,
            }
        )
        return current.touch(now, licence=licence)

    worker = mutate(ports.workers, worker.worker_id, pending)

    async def send(cml: CmlController) -> None:
        await cml.register_licence(token, reregister)

    try:
        on_controller(ports.cml, worker, send)
    except ExternalServiceError as exc:
        reason = f"CML refused the registration: {exc.message}"[:500]
        fault = _cml_error(exc, now)

        def failed(current: Worker) -> Worker:
            licence = (current.licence or Licence()).model_copy(
                update={"operation_state": "failed", "operation_reason": reason}
            )
            return current.touch(now, licence=licence).record_error(fault)

        mutate(ports.workers, worker.worker_id, failed)
        raise
    return worker


_DEREGISTERED = {
    "completed": ("completed", None),
    "local_only": (
        "local_only",
        "released on the controller only: Cisco Smart Software Manager was not told (CML answered 202)",
    ),
}


def deregister_licence(ports: LicencePorts, key: str, *, now: datetime) -> Worker:
    """Release the worker's licence on CML: 204 → completed, 202 → local_only (released on the
    controller only), both recorded on the worker; already deregistered → 409."""
    worker = get_worker(ports.workers, key)
    require_running(worker)

    async def run(cml: CmlController) -> tuple[str, CmlLicensingDetails | None]:
        outcome = await cml.deregister_licence()
        if outcome == "already_deregistered":
            return outcome, None
        try:
            return outcome, await cml.licensing_status()
        except ExternalServiceError:
            return outcome, None  # released either way; collection reads the status later

    outcome, status = on_controller(ports.cml, worker, run)
    if outcome == "already_deregistered":
        raise Conflict(
            f"the licence of worker {worker.worker_id} is already deregistered: there is nothing to release",
            field="licence",
        )
    state, reason = _DEREGISTERED[outcome]

    def released(current: Worker) -> Worker:
        licence = (current.licence or Licence()).model_copy(
            update={
                "registration_status": status.registration_status if status else None,
                "authorization_status": status.authorization_status if status else None,
                "expires": status.registration_expires if status else None,
                "operation": LicenceOperation.DEREGISTERING,
                "operation_state": state,
                "operation_reason": reason,
                "operation_started_at": now,
                "operation_deadline": None,
            }
        )
        return current.touch(now, licence=licence)

    return mutate(ports.workers, worker.worker_id, released)


__all__ = [
    "REGISTRATION_DEADLINE",
    "LicencePorts",
    "deregister_licence",
    "get_licence",
    "observed_licence",
    "poll_licence",
    "progress_licence",
    "register_licence",
    "registration_pending",
]
