"""Licence routes over moto and the CML simulator in-process: register (202, pending, then
completed / failed / timed out), deregister, and the token never showing anywhere but its secret."""

from __future__ import annotations

import logging
import os
from datetime import timedelta

from test_api_labs import CmlWorld, cml  # noqa: F401 - `cml` is the shared fixture

from cmlcm.adapters.aws import client
from cmlcm.config import get_config
from cmlcm.container import current
from cmlcm.domain.workers import Licence, Worker

TOKEN = "ODk5NzQ3ZTQtN2ZmYy00Y2Q0LWE5ZjYtZTg4NmVkMzI2NzY5LTE3MzAzMzYw%0AMDAwNDN8dGVzdA=="
SECRET = "cmlcm/licence/{worker_id}"


def stored_licence(worker: Worker) -> Licence:
    """The licence on the worker's stored record (the tests below have just registered one)."""
    licence = current().workers.get(worker.worker_id).licence
    assert licence is not None, f"{worker.worker_id} has no licence on record"
    return licence


def licence_path(world: CmlWorld, worker=None) -> str:  # noqa: ANN001
    return f"/workers/{(worker or world.running).worker_id}/licence"


def register(api, world: CmlWorld, token: str = TOKEN, **extra):  # noqa: ANN001, ANN201
    return api.call("POST", licence_path(world), body={"token": token, **extra})


def test_register_is_202_pending_then_completes(api, cml):
    worker = cml.running
    status, body = register(api, cml)
    assert status == 202
    assert body["worker_id"] == worker.worker_id
    licence = body["licence"]
    assert (licence["operation"], licence["operation_state"]) == ("registering", "pending")
    assert licence["operation_started_at"].startswith(cml.clock.now.isoformat()[:19])
    assert "token_secret_ref" not in licence and "operation_deadline" not in licence

    # Stored only as the secret, referenced by name on the worker.
    stored = stored_licence(worker)
    assert stored.token_secret_ref == SECRET.format(worker_id=worker.worker_id)
    assert stored.operation_deadline == cml.clock.now + timedelta(minutes=10)
    secret = client("secretsmanager", "us-east-1").get_secret_value(SecretId=stored.token_secret_ref)
    assert secret["SecretString"] == TOKEN

    status, view = api.call("GET", licence_path(cml), role="viewer")
    assert status == 200 and view["operation_state"] == "pending" and view["registration_status"] == "IN_PROGRESS"

    cml.clock.advance(10)  # the simulator completes registrations after 10 s
    status, view = api.call("GET", licence_path(cml), role="viewer")
    assert status == 200
    assert (view["operation_state"], view["registration_status"], view["authorization_status"]) == (
        "completed",
        "COMPLETED",
        "IN_COMPLIANCE",
    )
    assert stored_licence(worker).operation_state == "completed"


def test_an_invalid_token_ends_failed_with_the_reason(api, cml):
    assert register(api, cml, token="INVALIDtoken123")[0] == 202
    cml.clock.advance(10)
    status, view = api.call("GET", licence_path(cml), role="viewer")
    assert status == 200 and view["operation_state"] == "failed" and view["registration_status"] == "FAILED"
    assert "FAILED" in view["operation_reason"]


def test_a_registration_past_its_deadline_fails_as_timed_out(api, cml):
    cml.fleet.licence_delay = timedelta(hours=2)  # CML never finishes within the deadline
    assert register(api, cml)[0] == 202
    cml.clock.advance(9 * 60)
    assert api.call("GET", licence_path(cml), role="viewer")[1]["operation_state"] == "pending"
    cml.clock.advance(61)
    status, view = api.call("GET", licence_path(cml), role="viewer")
    assert status == 200 and view["operation_state"] == "failed"
    assert view["operation_reason"].startswith("timed out") and "10 min" in view["operation_reason"]


def test_a_second_registration_while_one_is_pending_is_409(api, cml):
    assert register(api, cml)[0] == 202
    status, body = register(api, cml)
    assert status == 409 and body["field"] == "licence" and "in progress" in body["message"]
    cml.clock.advance(10)
    # Once the first one finished, a re-registration may start.
    assert register(api, cml, reregister=True)[0] == 202


def test_cml_refusing_the_registration_is_recorded_as_failed(api, cml):
    assert register(api, cml)[0] == 202
    cml.clock.advance(10)
    api.call("GET", licence_path(cml), role="viewer")  # completed
    status, body = register(api, cml)  # already registered, reregister not asked
    assert status == 422 and body["error"] == "CmlRejected"
    licence = stored_licence(cml.running)
    assert licence.operation_state == "failed"
    assert licence.operation_reason is not None and "Already registered" in licence.operation_reason


def test_the_collection_cycle_moves_a_pending_registration_on(api, cml, dynamo_ports):
    # (the `cml` fixture's container: the refresh collects through the same simulated controllers)
    assert register(api, cml)[0] == 202
    cml.clock.advance(10)
    status, body = api.call("POST", f"/workers/{cml.running.worker_id}/refresh", role="operator")
    assert status == 200
    assert body["licence"]["operation_state"] == "completed" and body["licence"]["registration_status"] == "COMPLETED"


def test_deregister_records_the_outcome_and_twice_is_409(api, cml):
    assert register(api, cml)[0] == 202
    cml.clock.advance(10)
    status, body = api.call("DELETE", licence_path(cml))
    assert status == 200
    licence = body["licence"]
    assert (licence["operation"], licence["operation_state"]) == ("deregistering", "completed")
    assert licence["registration_status"] == "NOT_REGISTERED"

    status, body = api.call("DELETE", licence_path(cml))
    assert status == 409 and body["field"] == "licence" and "already deregistered" in body["message"]


def test_deregistration_done_only_on_the_controller_is_local_only(api, cml):
    assert register(api, cml)[0] == 202
    cml.clock.advance(10)
    cml.fleet.set_faults(cml.running.instance_id, deregister_local_only=True)
    status, body = api.call("DELETE", licence_path(cml))
    assert status == 200 and body["licence"]["operation_state"] == "local_only"
    assert "only" in body["licence"]["operation_reason"]


def test_roles_body_and_worker_state_are_checked(api, cml):
    assert api.call("POST", licence_path(cml), role="operator", body={"token": TOKEN})[0] == 403
    assert api.call("DELETE", licence_path(cml), role="operator")[0] == 403
    assert api.call("GET", licence_path(cml), role="viewer")[0] == 200
    status, body = api.call("POST", licence_path(cml), body={"token": "has spaces!"})
    assert status == 422 and body["field"] == "token" and "has spaces" not in body["message"]
    status, body = api.call("POST", licence_path(cml), body={"token": TOKEN, "extra": 1})
    assert status == 422
    status, body = api.call("POST", licence_path(cml, cml.stopped), body={"token": TOKEN})
    assert status == 409 and body["field"] == "status" and "stopped" in body["message"]
    assert api.call("POST", "/workers/w-nope/licence", body={"token": TOKEN})[0] == 404
    assert api.call("GET", "/workers/w-nope/licence", role="viewer")[0] == 404


def test_an_unregistered_worker_shows_an_empty_licence(api, cml):
    status, view = api.call("GET", licence_path(cml, cml.workers[1]), role="viewer")
    assert status == 200 and view["operation"] == "none" and view["operation_state"] is None


def test_the_token_never_leaks(api, cml, caplog, capsys):
    """Searches every API answer, the stored worker item and the captured logs for the token."""
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="cmlcm")
    # Powertools loggers (the API's) do not propagate: listen to the service's logger directly.
    service = logging.getLogger(os.environ["POWERTOOLS_SERVICE_NAME"])
    level = service.level
    service.setLevel(logging.DEBUG)
    service.addHandler(caplog.handler)
    try:
        _exercise_and_check(api, cml, caplog, capsys)
    finally:
        service.removeHandler(caplog.handler)
        service.setLevel(level)


def _exercise_and_check(api, cml, caplog, capsys):  # noqa: ANN001, ANN202
    worker = cml.running
    answers = []

    def call(method, path, role="admin", body=None):  # noqa: ANN001, ANN202
        answers.append(api.call(method, path, role=role, body=body))
        return answers[-1]

    call("POST", licence_path(cml), body={"token": TOKEN})
    call("POST", licence_path(cml), body={"token": TOKEN})  # 409 while pending
    call("GET", licence_path(cml), role="viewer")
    call("GET", f"/workers/{worker.worker_id}", role="viewer")
    call("GET", "/workers", role="viewer")
    cml.clock.advance(10)
    call("GET", licence_path(cml), role="viewer")
    call("POST", licence_path(cml), body={"token": TOKEN})  # 422: already registered
    call("POST", licence_path(cml), body={"token": TOKEN + " bad"})  # 422: pattern
    call("DELETE", licence_path(cml))
    call("DELETE", licence_path(cml))  # 409
    assert [status for status, _ in answers] == [202, 409, 200, 200, 200, 200, 422, 422, 200, 409]

    for status, body in answers:
        assert TOKEN not in str(body), status
        assert "cmlcm/licence/" not in str(body), status  # nor its secret's name
    raw = client("dynamodb", "us-east-1").get_item(
        TableName=get_config().workers_table, Key={"worker_id": {"S": worker.worker_id}}
    )["Item"]
    assert TOKEN not in str(raw)
    assert raw["licence"]["M"]["token_secret_ref"]["S"] == f"cmlcm/licence/{worker.worker_id}"
    captured = capsys.readouterr()
    assert TOKEN not in caplog.text and TOKEN not in captured.out and TOKEN not in captured.err
    assert TOKEN[:20] not in caplog.text + captured.out + captured.err


def test_polling_an_unreachable_controller_records_the_fault_and_still_times_out(api, cml):
    assert register(api, cml)[0] == 202
    cml.fleet.set_faults(cml.running.instance_id, error_rate=1.0, error_status=500)
    status, view = api.call("GET", licence_path(cml), role="viewer")
    assert status == 200 and view["operation_state"] == "pending"
    error = api.call("GET", f"/workers/{cml.running.worker_id}", role="viewer")[1]["last_error"]
    assert error["source"] == "licence" and error["kind"] == "bad_response"
    cml.clock.advance(11 * 60)
    status, view = api.call("GET", licence_path(cml), role="viewer")
    assert status == 200 and view["operation_state"] == "failed" and view["operation_reason"].startswith("timed out")


def test_deleting_a_worker_drops_its_lab_rows_and_schedules_its_token_secret_for_deletion(api, cml):
    # Given a worker with synced labs and a registered licence, and another worker with labs
    worker, other = cml.running, cml.workers[1]
    assert register(api, cml)[0] == 202
    assert api.call("POST", f"/workers/{worker.worker_id}/labs/refresh", role="operator")[0] == 200
    assert api.call("POST", f"/workers/{other.worker_id}/labs/refresh", role="operator")[0] == 200
    assert len(cml.labs.list(worker.worker_id)) == 2
    # When the worker is deleted
    assert api.call("DELETE", f"/workers/{worker.worker_id}")[0] == 200
    # Then its lab rows are gone, the other worker's stay
    assert cml.labs.list(worker.worker_id) == [] and len(cml.labs.list(other.worker_id)) == 2
    # And its token secret is scheduled for deletion (restorable for the recovery window)
    described = client("secretsmanager", "us-east-1").describe_secret(
        SecretId=SECRET.format(worker_id=worker.worker_id)
    )
    assert "DeletedDate" in described
    # And deleting a worker that never had a licence leaves nothing behind either
    assert api.call("DELETE", f"/workers/{other.worker_id}")[0] == 200
    assert cml.labs.list(other.worker_id) == []
