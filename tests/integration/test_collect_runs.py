"""A collection run's batches and outcomes: the S3 store on moto, and the rules that sum them
(a batch that stored no outcome failed, all its workers with it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

from cmlcm.adapters.collect_runs import S3CollectRuns, result_key
from cmlcm.config import get_config
from cmlcm.domain.collection import partition, run_name, summarize
from cmlcm.services import collect_runs

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def runs(aws):  # noqa: ANN001, ANN201
    s = get_config()
    return S3CollectRuns(s.collect_runs_bucket, s.aws_region)


def test_partition_keeps_order_and_bounds_each_batch():
    ids = [f"w-{i}" for i in range(7)]
    assert partition(ids, 3) == [ids[0:3], ids[3:6], ids[6:7]]
    assert partition([], 3) == []
    assert partition(ids, 0) == [[i] for i in ids]  # a size below 1 still makes progress


def test_run_name_is_the_execution_name():
    arn = "arn:aws:states:us-east-1:123456789012:execution:collect:run-42"
    assert run_name(arn) == "run-42"


def test_plan_then_outcomes_round_trip_and_a_missing_outcome_is_a_failed_batch(runs):
    # Given a run of 5 workers in batches of 2, where batch 1 stored no outcome
    key, count = collect_runs.plan_run(runs, "run-1", [f"w-{i}" for i in range(5)], batch_size=2)
    assert (key, count) == ("runs/run-1/batches.json", 3)
    runs.put_result("run-1", 0, {"workers": 2, "changed": 1, "written": 1, "errors": {"timeout": 1}})
    runs.put_result("run-1", 2, {"workers": 1, "failed": 1, "errors": {"timeout": 1, "bad_response": 2}})
    # When the summary reads them
    outcomes = collect_runs.outcomes(runs, "run-1")
    summary = summarize(outcomes, started_at=NOW, now=NOW + timedelta(seconds=3))
    # Then the missing batch counts as failed, with its two workers
    assert [o.batch_failed for o in outcomes] == [False, True, False]
    assert (summary.workers, summary.failed, summary.changed, summary.batches, summary.batches_failed) == (
        5,
        3,
        1,
        3,
        1,
    )
    assert summary.errors == {"timeout": 2, "bad_response": 2} and summary.duration_ms == 3000
    assert summary.succeeded is False and "errors" not in summary.as_summary()


def test_a_retried_batch_overwrites_its_own_outcome(runs):
    collect_runs.plan_run(runs, "run-2", ["w-1"], batch_size=10)
    runs.put_result("run-2", 0, {"workers": 1, "failed": 1})
    runs.put_result("run-2", 0, {"workers": 1, "changed": 1})
    assert summarize(collect_runs.outcomes(runs, "run-2"), started_at=NOW, now=NOW).failed == 0


def test_outcomes_are_read_past_one_listing_page(runs):
    # S3 lists 1000 keys a page: a run of 1001 batches needs two
    collect_runs.plan_run(runs, "run-3", [f"w-{i}" for i in range(1001)], batch_size=1)
    # The first batch's outcome is stored by the adapter; the other 1000 batches stored the same
    # bytes, put by moto's S3 backend itself (1000 PutObjects through the API cost seconds of CPU
    # and test nothing here: what is tested is reading them back past the first listing page)
    runs.put_result("run-3", 0, {"workers": 1})
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    stored = backend.get_object(runs.bucket, result_key("run-3", 0))
    assert stored is not None
    for index in range(1, 1001):
        backend.put_object(runs.bucket, result_key("run-3", index), stored.value)
    summary = summarize(collect_runs.outcomes(runs, "run-3"), started_at=NOW, now=NOW)
    assert (summary.workers, summary.batches_failed) == (1001, 0)


def test_a_missing_bucket_is_an_external_service_error(aws):  # noqa: ANN001
    from cmlcm.domain.errors import ExternalServiceError

    with pytest.raises(ExternalServiceError):
        S3CollectRuns("no-such-bucket", get_config().aws_region).batches("run-x")
