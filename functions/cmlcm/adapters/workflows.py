"""Starting Step Functions executions (the provisioning saga, the collection run)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from cmlcm.adapters.aws import client, map_client_error


class StepFunctionsStarter:
    """`WorkflowStarter` for one state machine. The execution name makes a start idempotent:
    starting the same name with the same input again returns the same execution."""

    def __init__(self, state_machine_arn: str, region: str) -> None:
        self._arn = state_machine_arn
        self._sfn = client("stepfunctions", region)

    def start(self, *, name: str, payload: dict[str, Any]) -> str:
        try:
            started = self._sfn.start_execution(stateMachineArn=self._arn, name=name, input=json.dumps(payload))
            return str(started["executionArn"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                prefix = self._arn.replace(":stateMachine:", ":execution:")
                return f"{prefix}:{name}"
            raise map_client_error(exc, action="StartExecution") from exc
