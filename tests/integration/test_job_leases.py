"""One run of a job at a time: the run lease, on the in-memory twin and on DynamoDB (moto) alike,
and the job service that skips a run while another holds the lease."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cmlcm.adapters.operations import DynamoJobRepository, InMemoryJobRepository
from cmlcm.config import get_config
from cmlcm.domain.jobs import JobOutcome
from cmlcm.services import jobs

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture(params=["memory", "dynamo"])
def repo(request):  # noqa: ANN001, ANN201
    if request.param == "memory":
        return InMemoryJobRepository()
    request.getfixturevalue("aws")
    s = get_config()
    return DynamoJobRepository(s.operations_table, s.aws_region)


def test_a_free_lease_is_granted_and_a_second_run_is_told_who_holds_it(repo):
    assert repo.claim_lease("collect_metrics", "run-1", now=NOW, until=NOW + HOUR) is None
    assert repo.claim_lease("collect_metrics", "run-2", now=NOW, until=NOW + HOUR) == "run-1"


def test_the_holder_may_claim_again_a_retried_task(repo):
    repo.claim_lease("collect_metrics", "run-1", now=NOW, until=NOW + HOUR)
    assert repo.claim_lease("collect_metrics", "run-1", now=NOW + timedelta(seconds=5), until=NOW + HOUR) is None


def test_an_expired_lease_goes_to_the_next_run(repo):
    repo.claim_lease("collect_metrics", "run-1", now=NOW, until=NOW + HOUR)
    assert repo.claim_lease("collect_metrics", "run-2", now=NOW + HOUR - timedelta(seconds=1), until=NOW) == "run-1"
    assert repo.claim_lease("collect_metrics", "run-2", now=NOW + HOUR, until=NOW + 2 * HOUR) is None


def test_release_frees_the_lease_only_for_its_holder(repo):
    repo.claim_lease("collect_metrics", "run-1", now=NOW, until=NOW + HOUR)
    repo.release_lease("collect_metrics", "run-2")  # not the holder: nothing happens
    assert repo.claim_lease("collect_metrics", "run-3", now=NOW, until=NOW + HOUR) == "run-1"
    repo.release_lease("collect_metrics", "run-1")
    assert repo.claim_lease("collect_metrics", "run-3", now=NOW, until=NOW + HOUR) is None
    repo.release_lease("collect_metrics", "run-1")  # released twice, or by a late run: harmless
    assert repo.claim_lease("collect_metrics", "run-4", now=NOW, until=NOW + HOUR) == "run-3"


def test_leases_of_two_jobs_are_apart_and_leave_the_heartbeat_alone(repo):
    jobs.record_start(repo, "collect_metrics", interval_seconds=60, now=NOW)
    assert repo.claim_lease("collect_metrics", "run-1", now=NOW, until=NOW + HOUR) is None
    assert repo.claim_lease("reconcile", "run-9", now=NOW, until=NOW + HOUR) is None
    jobs.record_finish(
        repo, "collect_metrics", interval_seconds=60, now=NOW, outcome=JobOutcome(succeeded=True, summary={})
    )
    assert repo.claim_lease("collect_metrics", "run-2", now=NOW, until=NOW + HOUR) == "run-1"
    assert repo.get("collect_metrics").last_status == "succeeded"


def test_begin_run_skips_while_another_run_holds_the_lease_and_counts_it(repo):
    # Given a run that began and has not ended
    assert jobs.begin_run(repo, "collect_metrics", "run-1", interval_seconds=60, now=NOW) is not None
    # When a second run begins
    skipped = jobs.begin_run(repo, "collect_metrics", "run-2", interval_seconds=60, now=NOW + timedelta(seconds=30))
    # Then it is refused, and the heartbeat still shows the first run as running, with the skip counted
    assert skipped is None
    beat = repo.get("collect_metrics")
    assert (beat.last_status, beat.last_started_at, beat.skipped_runs) == ("running", NOW, 1)
    assert beat.last_skipped_at == NOW + timedelta(seconds=30)
    # And once the first run ends, the next one runs
    jobs.end_run(repo, "collect_metrics", "run-1")
    assert jobs.begin_run(repo, "collect_metrics", "run-3", interval_seconds=60, now=NOW + HOUR) is not None


def test_a_run_that_died_holding_the_lease_blocks_for_at_most_the_lease_time(repo):
    jobs.begin_run(repo, "reconcile", "dead-run", interval_seconds=300, now=NOW)
    lease = timedelta(seconds=jobs.RUN_LEASE_SECONDS["reconcile"])
    assert (
        jobs.begin_run(repo, "reconcile", "next", interval_seconds=300, now=NOW + lease - timedelta(seconds=1)) is None
    )
    assert jobs.begin_run(repo, "reconcile", "next", interval_seconds=300, now=NOW + lease) is not None
