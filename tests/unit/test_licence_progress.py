"""The pure rule that moves a pending licence registration on, and the collection cycle using it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cmlcm.domain.cml import CmlReading
from cmlcm.domain.observation import Observation, observe
from cmlcm.domain.workers import Licence, LicenceOperation, Worker, WorkerStatus
from cmlcm.ports import InstanceInfo
from cmlcm.services.licences import progress_licence

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PENDING = Licence(
    registration_status="NOT_REGISTERED",
    operation=LicenceOperation.REGISTERING,
    operation_state="pending",
    operation_started_at=NOW,
    operation_deadline=NOW + timedelta(minutes=10),
    token_secret_ref="cmlcm/licence/w-1",
)


def _progressed(registration_status: str | None, *, now: datetime) -> Licence:
    """PENDING moved on by a reading: a pending registration is never dropped (None)."""
    licence = progress_licence(PENDING, registration_status, now=now)
    assert licence is not None, "a pending registration lost its licence"
    return licence


def _reason(licence: Licence | None) -> str:
    assert licence is not None and licence.operation_reason is not None, f"no operation reason on {licence}"
    return licence.operation_reason


def test_completed_and_failed_end_the_operation():
    done = _progressed("COMPLETED", now=NOW + timedelta(seconds=30))
    assert done.operation_state == "completed" and done.operation_reason is None
    failed = _progressed("FAILED", now=NOW + timedelta(seconds=30))
    assert failed.operation_state == "failed" and "FAILED" in _reason(failed)
    assert done.token_secret_ref == failed.token_secret_ref == PENDING.token_secret_ref


def test_in_progress_stays_pending_until_the_deadline_then_times_out():
    assert progress_licence(PENDING, "IN_PROGRESS", now=NOW + timedelta(minutes=9)) is PENDING
    late = _progressed("IN_PROGRESS", now=NOW + timedelta(minutes=10))
    assert late.operation_state == "failed" and _reason(late).startswith("timed out")
    assert "IN_PROGRESS" in _reason(late) and "10 min" in _reason(late)
    # Without any reading (CML unreachable, worker stopped) the deadline still applies.
    assert _progressed(None, now=NOW + timedelta(minutes=11)).operation_state == "failed"
    assert progress_licence(PENDING, None, now=NOW + timedelta(minutes=1)) is PENDING


def test_a_reading_older_than_the_operation_says_nothing():
    assert progress_licence(PENDING, "FAILED", now=NOW - timedelta(seconds=1)) is PENDING


def test_only_a_pending_registration_moves():
    assert progress_licence(None, "COMPLETED", now=NOW) is None
    finished = PENDING.model_copy(update={"operation_state": "failed", "operation_reason": "x"})
    assert progress_licence(finished, "COMPLETED", now=NOW) is finished
    deregistered = Licence(operation=LicenceOperation.DEREGISTERING, operation_state="completed")
    assert progress_licence(deregistered, "COMPLETED", now=NOW + timedelta(hours=1)) is deregistered


def _worker(licence: Licence | None) -> Worker:
    return Worker(
        worker_id="w-1",
        name="cml-1",
        region="us-east-1",
        instance_id="i-0123456789abcdef0",
        status=WorkerStatus.RUNNING,
        ec2_state="running",
        created_at=NOW,
        updated_at=NOW,
        status_changed_at=NOW,
        licence=licence,
    )


def _observation(registration_status: str | None) -> Observation:
    reading = CmlReading(
        version="2.9.0",
        ready=True,
        registration_status=registration_status,
        authorization_status="IN_COMPLIANCE" if registration_status == "COMPLETED" else None,
    )
    return Observation(instance=InstanceInfo("i-0123456789abcdef0", "running"), reading=reading)


def test_collection_completes_a_pending_registration():
    observed = observe(_worker(PENDING), _observation("COMPLETED"), now=NOW + timedelta(minutes=1))
    assert observed.licence is not None
    assert (observed.licence.operation_state, observed.licence.registration_status) == ("completed", "COMPLETED")


def test_collection_fails_a_registration_past_its_deadline_even_without_a_reading():
    worker = _worker(PENDING)
    unreachable = Observation(instance=InstanceInfo("i-0123456789abcdef0", "running"))
    observed = observe(worker, unreachable, now=NOW + timedelta(minutes=15))
    assert observed.licence is not None and observed.licence.operation_state == "failed"
    assert _reason(observed.licence).startswith("timed out")


def test_collection_leaves_a_settled_licence_alone():
    settled = PENDING.model_copy(
        update={
            "operation_state": "completed",
            "registration_status": "COMPLETED",
            "authorization_status": "IN_COMPLIANCE",
        }
    )
    worker = observe(_worker(settled), _observation("COMPLETED"), now=NOW)
    assert observe(worker, _observation("COMPLETED"), now=NOW + timedelta(minutes=5)) == worker


def test_forgetting_a_deleted_worker_is_best_effort_and_says_what_was_left():
    from datetime import UTC as _UTC

    from cmlcm.adapters.labs_repo import InMemoryLabRepository
    from cmlcm.adapters.licence_tokens import InMemoryTokenStore
    from cmlcm.domain.errors import ExternalServiceError
    from cmlcm.domain.labs import Lab
    from cmlcm.services.workers import forget_deleted_worker

    at = datetime(2026, 11, 30, tzinfo=_UTC)
    labs = InMemoryLabRepository()
    labs.write(
        [
            Lab(
                worker_id=w,
                lab_id=f"lab-{w}",
                title="t",
                state="STOPPED",
                owner=None,
                node_count=1,
                link_count=0,
                created=None,
                modified=None,
                synced_at=at,
            )
            for w in ("w-1", "w-2")
        ],
        [],
    )
    tokens = InMemoryTokenStore()
    tokens.store("w-1", "secret-token")
    # A worker with labs and a token: both go, the neighbour's labs stay
    assert forget_deleted_worker(labs, tokens, "w-1") == []
    assert labs.list("w-1") == [] and len(labs.list("w-2")) == 1 and tokens.secrets == {}

    class Down(InMemoryTokenStore):
        def forget(self, worker_id: str) -> bool:
            raise ExternalServiceError("Secrets Manager is unavailable")

    # A fault forgetting the token still drops the labs, and is reported, not raised
    left = forget_deleted_worker(labs, Down(), "w-2")
    assert labs.list("w-2") == [] and len(left) == 1 and left[0].startswith("licence token secret")
