"""Licence rules: how a pending registration moves on from what CML reports (shared by the
API's poll and the collection cycle). Pure: `now` is an argument."""

from __future__ import annotations

from datetime import datetime, timedelta

from cmlcm.domain.workers import Licence, LicenceOperation

#: How long a registration may stay pending before it is recorded as failed ("timed out").
REGISTRATION_DEADLINE = timedelta(minutes=10)


def registration_pending(licence: Licence | None) -> bool:
    return (
        licence is not None
        and licence.operation == LicenceOperation.REGISTERING
        and licence.operation_state == "pending"
    )


def progress_licence(licence: Licence | None, registration_status: str | None, *, now: datetime) -> Licence | None:
    """A pending registration after CML reported `registration_status` at `now` (None: no
    reading): COMPLETED → completed, FAILED → failed, still pending past its deadline → failed
    "timed out". Anything else is returned unchanged (the same object), so callers that compare
    before/after write nothing. A reading older than the operation says nothing about it."""
    if licence is None or not registration_pending(licence):
        return licence
    started = licence.operation_started_at
    if started is not None and now < started:
        return licence
    if registration_status == "COMPLETED":
        return licence.model_copy(update={"operation_state": "completed", "operation_reason": None})
    if registration_status == "FAILED":
        return licence.model_copy(
            update={"operation_state": "failed", "operation_reason": "CML reports the registration FAILED"}
        )
    deadline = licence.operation_deadline
    if deadline is not None and now >= deadline:
        minutes = int((deadline - started).total_seconds() // 60) if started else None
        within = f" within {minutes} min" if minutes else ""
        last = f" (last CML status: {registration_status})" if registration_status else ""
        return licence.model_copy(
            update={
                "operation_state": "failed",
                "operation_reason": f"timed out: registration did not complete{within}{last}",
            }
        )
    return licence


def observed_licence(
    licence: Licence | None,
    *,
    registration_status: str | None,
    authorization_status: str | None,
    expires: str | None,
    now: datetime,
) -> Licence | None:
    """The licence after CML reported its status (`/licensing` here, the collector's reading
    there), a pending registration moved on by `progress_licence`."""
    base = (licence or Licence()).model_copy(
        update={
            "registration_status": registration_status,
            "authorization_status": authorization_status,
            "expires": expires,
        }
    )
    return progress_licence(base, registration_status, now=now)
