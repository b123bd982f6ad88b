"""Starting a job's run outside its schedule: the collection state machine, the reconciler.

The run is started exactly as its schedule starts it, with `{"trigger": "manual", "by": ...}` as
input, under a name chosen before the start, so the caller can take the job's lease for that
run first (the run then finds its own lease and goes on; see `services.jobs.run_job_now`).
"""

from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError

from cmlcm.adapters.aws import client, map_client_error
from cmlcm.domain.errors import ExternalServiceError, NotFound
from cmlcm.domain.jobs import COLLECT_JOB, RECONCILE_JOB


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN Step Functions gives the execution `name` of a standard state machine."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"


class AwsJobStarter:
    """`JobStarter`: StartExecution of the collection state machine (its plan task takes the
    lease with the execution's ARN), asynchronous Invoke of the reconciler (it takes the lease
    with the `run_id` of its payload)."""

    def __init__(self, *, collect_state_machine_arn: str, reconcile_function: str, region: str) -> None:
        self._collect_arn = collect_state_machine_arn
        self._reconcile = reconcile_function
        self._region = region

    def run_id(self, job: str, name: str) -> str:
        if job == COLLECT_JOB:
            return execution_arn(self._collect_arn, name)
        if job == RECONCILE_JOB:
            return name
        raise NotFound(f"no job {job!r}", field="job")

    def start(self, job: str, name: str, *, by: str | None) -> str:
        payload = {"trigger": "manual", "by": by}
        try:
            if job == COLLECT_JOB:
                if not self._collect_arn:
                    raise ExternalServiceError("COLLECT_STATE_MACHINE_ARN is not set: cannot start a collection")
                client("stepfunctions", self._region).start_execution(
                    stateMachineArn=self._collect_arn, name=name, input=json.dumps(payload)
                )
            elif job == RECONCILE_JOB:
                if not self._reconcile:
                    raise ExternalServiceError("RECONCILE_FUNCTION_NAME is not set: cannot run the reconciler")
                client("lambda", self._region).invoke(
                    FunctionName=self._reconcile,
                    InvocationType="Event",
                    Payload=json.dumps({**payload, "run_id": name}).encode(),
                )
            else:
                raise NotFound(f"no job {job!r}", field="job")
        except ClientError as exc:
            raise map_client_error(exc, action="StartExecution" if job == COLLECT_JOB else "Invoke") from exc
        except BotoCoreError as exc:
            raise ExternalServiceError(f"starting {job}: {exc}") from exc
        return self.run_id(job, name)


class InMemoryJobStarter:
    """Twin of `AwsJobStarter`: records the runs it starts (a run id of its own form, named
    before the start as the real one is; unknown jobs are 404s), or fails with `failure` as
    StartExecution/Invoke would."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.started: list[tuple[str, str, str | None]] = []
        self.failure = failure

    def run_id(self, job: str, name: str) -> str:
        if job not in (COLLECT_JOB, RECONCILE_JOB):
            raise NotFound(f"no job {job!r}", field="job")
        return f"{job}:{name}"

    def start(self, job: str, name: str, *, by: str | None) -> str:
        run_id = self.run_id(job, name)
        if self.failure is not None:
            raise self.failure
        self.started.append((job, name, by))
        return run_id
