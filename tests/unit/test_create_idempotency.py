"""Create with an Idempotency-Key while the first request with that key is still in flight: the
key is claimed before the worker is written, so a replay in between must wait, not answer 404."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from cmlcm.adapters.dynamo import InMemoryWorkerRepository
from cmlcm.adapters.operations import InMemorySettingsRepository
from cmlcm.domain.errors import Conflict
from cmlcm.domain.workers import Worker, WorkerStatus
from cmlcm.ports import ImageInfo, ProvisionPorts
from cmlcm.services.provisioning import CreateWorker, create_worker
from tests.support.fakes import Ec2Unexpected

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
KEY = "key-exam-7-0001"
REQUEST = CreateWorker(name="exam-7", region="us-east-1", ami_id="ami-0123456789abcdef0")


class Reservations:
    """Key → (worker id, request hash), as the first request left it."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[str, str]] = {}
        self.names: dict[str, str] = {}

    def claim_idempotency(
        self, key: str, *, request_hash: str, worker_id: str, now: datetime
    ) -> tuple[str, str] | None:
        if key in self.keys:
            return self.keys[key]
        self.keys[key] = (worker_id, request_hash)
        return None

    def release_idempotency(self, key: str) -> None:
        self.keys.pop(key, None)

    def claim_name(self, name: str, worker_id: str) -> None:
        if name in self.names:
            raise Conflict("name taken", field="name")
        self.names[name] = worker_id

    def release_name(self, name: str) -> None:
        self.names.pop(name, None)

    def name_owner(self, name: str) -> str | None:
        return self.names.get(name)


class Workflow:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, *, name: str, payload: dict[str, Any]) -> str:
        self.started.append(name)
        return f"arn:aws:states:us-east-1:123456789012:execution:provision:{name}"


class NoImages(Ec2Unexpected):
    """EC2 as a create sees it before launching: it looks the AMI's details up (none known here)."""

    def images(self, image_ids: Iterable[str]) -> dict[str, ImageInfo]:
        return {}


@pytest.fixture
def ports() -> ProvisionPorts:
    return ProvisionPorts(
        workers=InMemoryWorkerRepository(),
        settings=InMemorySettingsRepository(),
        ec2_for=lambda region: NoImages(),  # a create looks its AMI up, then reserves and starts the saga
        reservations=Reservations(),
        workflow=Workflow(),
    )


def first_request_in_flight(ports: ProvisionPorts) -> None:
    """The first request claimed the key and has not written its worker yet."""
    ports.reservations.claim_idempotency(KEY, request_hash=REQUEST.fingerprint(), worker_id="w-first", now=NOW)


def first_worker() -> Worker:
    return Worker(
        worker_id="w-first",
        name="exam-7",
        region="us-east-1",
        status=WorkerStatus.PENDING,
        created_at=NOW,
        updated_at=NOW,
        status_changed_at=NOW,
    )


def test_a_replay_waits_for_the_first_request_to_record_its_worker(ports):  # noqa: ANN001
    # Given the first request with the key still in flight
    first_request_in_flight(ports)
    polls: list[int] = []

    def wait() -> Iterator[None]:
        for n in range(5):
            polls.append(n)
            if n == 1:
                ports.workers.add(first_worker())  # the first request records its worker meanwhile
            yield

    # When the same request arrives again with the key
    created = create_worker(ports, REQUEST, worker_id="w-second", idempotency_key=KEY, now=NOW, replay_wait=wait)
    # Then it answers with the first request's worker once that is recorded, and starts nothing
    assert created.replayed and created.worker.worker_id == "w-first"
    assert polls == [0, 1]
    assert ports.workflow.started == []
    assert [w.worker_id for w in ports.workers.iter_active()] == ["w-first"]


def test_a_replay_whose_first_request_never_records_is_a_409_to_retry(ports):  # noqa: ANN001
    first_request_in_flight(ports)
    with pytest.raises(Conflict, match="still in progress") as caught:
        create_worker(
            ports, REQUEST, worker_id="w-second", idempotency_key=KEY, now=NOW, replay_wait=lambda: iter([None] * 3)
        )
    assert caught.value.field == "Idempotency-Key"
    assert ports.workflow.started == []


def test_a_replay_of_a_recorded_worker_does_not_wait(ports):  # noqa: ANN001
    first_request_in_flight(ports)
    ports.workers.add(first_worker())

    def never() -> Iterator[None]:
        raise AssertionError("waited although the worker was recorded")
        yield

    created = create_worker(ports, REQUEST, worker_id="w-second", idempotency_key=KEY, now=NOW, replay_wait=never)
    assert created.replayed and created.worker.worker_id == "w-first"


def test_the_same_key_with_another_request_is_a_409(ports):  # noqa: ANN001
    first_request_in_flight(ports)
    other = CreateWorker(name="exam-8", region="us-east-1", ami_id="ami-0123456789abcdef0")
    with pytest.raises(Conflict, match="different request"):
        create_worker(ports, other, worker_id="w-second", idempotency_key=KEY, now=NOW)


def test_a_saga_that_cannot_start_fails_the_worker_and_reports_the_fault(ports):  # noqa: ANN001
    # Given Step Functions refusing the start (nothing is launched)
    from dataclasses import replace

    from cmlcm.domain.errors import ExternalServiceError

    class Refusing:
        def start(self, *, name: str, payload: dict[str, Any]) -> str:
            raise ExternalServiceError("StartExecution: ThrottlingException: Rate exceeded")

    refused = replace(ports, workflow=Refusing())
    # When a worker is created, then the fault reaches the caller (502), not a NameError (500)
    with pytest.raises(ExternalServiceError, match="Rate exceeded"):
        create_worker(refused, REQUEST, worker_id="w-1", idempotency_key=None, now=NOW)
    # And the worker is FAILED with the step and the fault recorded, not left PENDING
    failed = ports.workers.get("w-1")
    assert failed.status == WorkerStatus.FAILED
    assert failed.last_error is not None and "Rate exceeded" in failed.last_error.message
