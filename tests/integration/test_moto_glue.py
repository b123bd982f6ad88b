"""The moto glue: each patch does what the product relies on, and the glue refuses a moto it was
not written for (so a moto upgrade fails loudly here instead of silently elsewhere)."""

from __future__ import annotations

import threading

import moto
import pytest
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodbstreams.models import DynamoDBStreamsBackend
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.responses.monitoring import Monitoring

from cmlcm.adapters.aws import client
from cmlcm.adapters.ec2 import Ec2Gateway
from cmlcm.config import get_config
from cmlcm_local import moto_glue
from cmlcm_local.moto_glue import dynamodb, speedups
from cmlcm_local.moto_glue import ec2 as ec2_glue
from cmlcm_local.moto_glue._patch import MARKER, is_patched
from cmlcm_local.seed import cml_ami, launch_instances

REGION = "us-east-1"


def monitoring_of(instance_ids: list[str]) -> dict[str, str | None]:
    return {i: info.monitoring for i, info in Ec2Gateway(REGION).describe(instance_ids).items()}


def test_the_pinned_moto_is_the_one_the_glue_supports():
    moto_glue.install()  # refuses any other


def test_monitor_instances_enables_detailed_monitoring_of_the_given_instances_only(aws):  # noqa: ANN001
    # Given three instances with basic monitoring
    ids = [i["InstanceId"] for i in launch_instances(REGION, 3, ami_id=cml_ami(REGION), instance_type="t3.micro")]
    assert set(monitoring_of(ids).values()) == {"disabled"}
    # When detailed monitoring is enabled on two of them (the adapter's path and the raw call)
    Ec2Gateway(REGION).enable_detailed_monitoring(ids[0])
    answer = client("ec2", REGION).monitor_instances(InstanceIds=[ids[1]])
    # Then EC2 answers as AWS does and reports it on exactly those two
    assert answer["InstanceMonitorings"] == [{"InstanceId": ids[1], "Monitoring": {"State": "enabled"}}]
    assert monitoring_of(ids) == {ids[0]: "enabled", ids[1]: "enabled", ids[2]: "disabled"}
    # And unmonitor turns it off again
    client("ec2", REGION).unmonitor_instances(InstanceIds=[ids[0]])
    assert monitoring_of(ids)[ids[0]] == "disabled"


def test_install_is_idempotent():
    moto_glue.install()
    moto_glue.install()
    assert Monitoring.monitor_instances is ec2_glue.monitor_instances
    assert Monitoring.unmonitor_instances is ec2_glue.unmonitor_instances
    assert InstanceBackend.run_instances is ec2_glue.run_instances
    assert DynamoDBStreamsBackend.get_records is dynamodb.get_records
    for name in dynamodb.WRITES:  # wrapped once, not once per install
        method = getattr(DynamoDBBackend, name)
        assert is_patched(DynamoDBBackend, name) and not hasattr(getattr(method, MARKER), MARKER)
        assert method.__wrapped__ is getattr(method, MARKER)


def test_speedups_are_installed_only_when_asked_for():
    # Given the glue as the tests install it, then moto's scans are moto's own
    moto_glue.install()
    assert not any(is_patched(owner, name) for owner, name, _ in speedups.PATCHES)
    # And asked for (the benchmarks, a large local fleet), they are in place, until removed
    moto_glue.install(speedups=True)
    try:
        assert all(is_patched(owner, name) for owner, name, _ in speedups.PATCHES)
    finally:
        speedups.remove()
    assert not any(is_patched(owner, name) for owner, name, _ in speedups.PATCHES)


def test_a_dynamodb_write_waits_for_the_write_in_progress(aws):  # noqa: ANN001
    # Given a write in progress (the glue's lock held)
    table = client("dynamodb", REGION)
    name = get_config().workers_table
    done = threading.Event()

    def put() -> None:
        table.put_item(TableName=name, Item={"worker_id": {"S": "w-lock"}})
        done.set()

    with dynamodb.write_lock:
        writer = threading.Thread(target=put)
        writer.start()
        # Then another write does not interleave with it
        assert not done.wait(0.3)
    # And it lands once the first one is over
    writer.join(5)
    assert done.is_set()


def test_concurrent_conditional_writes_on_one_version_let_exactly_one_through(aws):  # noqa: ANN001
    # Given many writers that all read version 1 of one item
    table = client("dynamodb", REGION)
    name = get_config().workers_table
    table.put_item(TableName=name, Item={"worker_id": {"S": "w-race"}, "version": {"N": "1"}})
    for round_ in range(20):
        barrier = threading.Barrier(8)
        outcomes: list[str] = []

        def save(i: int, expected: int = round_ + 1) -> None:
            barrier.wait()
            try:
                table.put_item(
                    TableName=name,
                    Item={"worker_id": {"S": "w-race"}, "version": {"N": str(expected + 1)}, "by": {"N": str(i)}},
                    ConditionExpression="version = :v",
                    ExpressionAttributeValues={":v": {"N": str(expected)}},
                )
                outcomes.append("saved")
            except table.exceptions.ConditionalCheckFailedException:
                outcomes.append("conflict")

        threads = [threading.Thread(target=save, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Then exactly one of them saves each round, as on DynamoDB
        assert sorted(outcomes) == ["conflict"] * 7 + ["saved"], f"round {round_}"


def _speedups_in_place() -> list[bool]:
    return [is_patched(owner, name) for owner, name, _ in speedups.PATCHES]


INSTALLERS = {
    "install": lambda: moto_glue.install(),
    "install with speedups": lambda: moto_glue.install(speedups=True),
    "set_retry_interval_scale": lambda: moto_glue.set_retry_interval_scale(0.5),
}


# 5.2.1 and 5.2.2 lack the upstream fix of the Step Functions restart bug (getmoto/moto#10077).
@pytest.mark.parametrize("other", ["5.3.0", "5.1.9", "6.2.1", "5.20.0", "5.2.1", "5.2.2", "garbage"])
@pytest.mark.parametrize("installer", sorted(INSTALLERS))
def test_the_glue_refuses_another_moto_version(monkeypatch, installer, other):  # noqa: ANN001
    # Given a moto whose version is not the pinned minor
    monkeypatch.setattr(moto, "__version__", other)
    before = (Monitoring.monitor_instances, moto_glue.retry_interval_scale(), _speedups_in_place())
    # When the glue is installed, then it refuses, naming both versions
    with pytest.raises(RuntimeError, match=rf"moto {other} is not the pinned 5\.2\.x \(>= 5\.2\.3\)"):
        INSTALLERS[installer]()
    # And nothing was patched on the way
    assert (Monitoring.monitor_instances, moto_glue.retry_interval_scale(), _speedups_in_place()) == before


@pytest.mark.parametrize("patch", ["5.2.3", "5.2.5", "5.2.9"])
def test_any_patch_release_of_the_pinned_minor_from_the_fix_on_is_accepted(monkeypatch, patch):  # noqa: ANN001
    monkeypatch.setattr(moto, "__version__", patch)
    moto_glue.install()
    assert Monitoring.monitor_instances is ec2_glue.monitor_instances


@pytest.fixture
def restore_retry_scale():  # noqa: ANN201
    before = moto_glue.retry_interval_scale()
    yield
    moto_glue.set_retry_interval_scale(before)


def test_retry_sleeps_can_be_scaled_and_restored(restore_retry_scale):  # noqa: ANN001
    moto_glue.set_retry_interval_scale(0.01)
    assert moto_glue.retry_interval_scale() == 0.01
    moto_glue.set_retry_interval_scale(1.0)
    assert moto_glue.retry_interval_scale() == 1.0


def test_a_negative_retry_scale_is_refused(restore_retry_scale):  # noqa: ANN001
    before = moto_glue.retry_interval_scale()
    with pytest.raises(ValueError, match=">= 0"):
        moto_glue.set_retry_interval_scale(-1)
    assert moto_glue.retry_interval_scale() == before


def test_instance_states_read_from_moto_agree_with_describe_instances(aws):  # noqa: ANN001
    """What the local EC2 rule and simulator sync read instead of DescribeInstances (seconds of
    moto CPU with 1000 instances) is what DescribeInstances answers."""
    # Given instances in several states
    ids = [i["InstanceId"] for i in launch_instances(REGION, 4, ami_id=cml_ami(REGION), instance_type="t3.micro")]
    ec2 = client("ec2", REGION)
    ec2.stop_instances(InstanceIds=[ids[1]])
    ec2.terminate_instances(InstanceIds=[ids[2]])
    # When both are read
    described = {
        instance["InstanceId"]: instance["State"]["Name"]
        for page in ec2.get_paginator("describe_instances").paginate()
        for reservation in page["Reservations"]
        for instance in reservation["Instances"]
    }
    # Then they agree, instance by instance and state by state
    assert ec2_glue.instance_states(REGION) == described
    assert {described[i] for i in ids} >= {"running", "terminated"}
