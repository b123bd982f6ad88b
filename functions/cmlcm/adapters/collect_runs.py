"""A collection run's batches and the batch outcomes, kept in S3 instead of in the state.

Step Functions caps a state's payload at 256 KB: a plan that carried every worker id through the
state would break near 11,000 workers, and a Map that returned every batch's outcome would grow
with the fleet too. So the plan writes `runs/<run>/batches.json` (a JSON array of
`{"worker_ids": [...]}`, what the Distributed Map's ItemReader reads), each batch collector writes
`runs/<run>/results/<index>.json`, and the summary reads them back. What travels through the
state is a key and a few numbers, whatever the fleet's size. The bucket's lifecycle rule expires
the objects after a day.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cmlcm.adapters.aws import client, map_client_error
from cmlcm.domain.errors import ExternalServiceError

RUNS_PREFIX = "runs"


def batches_key(run: str) -> str:
    return f"{RUNS_PREFIX}/{run}/batches.json"


def result_key(run: str, index: int) -> str:
    return f"{RUNS_PREFIX}/{run}/results/{index:06d}.json"


class S3CollectRuns:
    """`CollectRuns` on an S3 bucket (the stack's collect-runs bucket)."""

    def __init__(self, bucket: str, region: str) -> None:
        self.bucket = bucket
        self._s3 = client("s3", region)

    def _call(self, action: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._s3, action)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            raise map_client_error(exc, action=f"s3:{action}") from exc
        except BotoCoreError as exc:
            raise ExternalServiceError(f"s3:{action}: {exc}") from exc

    def put_batches(self, run: str, batches: Sequence[Sequence[str]]) -> str:
        key = batches_key(run)
        body = json.dumps([{"worker_ids": list(batch)} for batch in batches], separators=(",", ":"))
        self._call("put_object", Key=key, Body=body.encode(), ContentType="application/json")
        return key

    def batches(self, run: str) -> list[list[str]]:
        body = self._call("get_object", Key=batches_key(run))["Body"].read()
        return [list(item["worker_ids"]) for item in json.loads(body)]

    def put_result(self, run: str, index: int, outcome: dict[str, Any]) -> None:
        body = json.dumps(outcome, separators=(",", ":")).encode()
        self._call("put_object", Key=result_key(run, index), Body=body, ContentType="application/json")

    def results(self, run: str) -> dict[int, dict[str, Any]]:
        prefix = f"{RUNS_PREFIX}/{run}/results/"
        found: dict[int, dict[str, Any]] = {}
        token: str | None = None
        while True:
            page = self._call("list_objects_v2", Prefix=prefix, **({"ContinuationToken": token} if token else {}))
            for item in page.get("Contents", []):
                index = int(item["Key"].rsplit("/", 1)[-1].removesuffix(".json"))
                found[index] = json.loads(self._call("get_object", Key=item["Key"])["Body"].read())
            token = page.get("NextContinuationToken")
            if not token:
                return found
