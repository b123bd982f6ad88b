"""The EC2 adapter on moto: batching to API limits, unknown ids, bisection of bulk mutations,
statuses (state and status checks), tags, and the one mapping from AWS error codes to domain errors."""

from __future__ import annotations

from collections import Counter

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends

from cmlcm.adapters.aws import client, map_client_error
from cmlcm.adapters.ec2 import DESCRIBE_BATCH, Ec2Gateway
from cmlcm.domain.ec2 import InstanceStatus
from cmlcm.domain.errors import (
    AwsAuthError,
    AwsInvalidParameter,
    ExternalServiceError,
    InstanceNotFound,
    QuotaExceeded,
    TransientAwsError,
)
from cmlcm_local.seed import cml_ami, launch_instances

REGION = "us-east-1"
UNKNOWN = "i-0123456789abcdef0"  # well formed, never launched
MALFORMED = "nonsense"


def count_calls() -> Counter:
    """Counts API operations made through the shared client (which the gateway uses)."""
    calls: Counter = Counter()
    client("ec2", REGION).meta.events.register("before-call.ec2.*", lambda model, **_: calls.update([model.name]))
    return calls


def launch(count: int) -> list[str]:
    ami = cml_ami(REGION)
    return [i["InstanceId"] for i in launch_instances(REGION, count, ami_id=ami, instance_type="t3.micro")]


def launch_in_moto(count: int) -> list[str]:
    """`count` instances of the CML image, run by moto's EC2 backend itself: what RunInstances
    would make, without moto serializing and botocore parsing each instance of the answer. For the
    tests about describing many (1500 instances took 19 s of CPU through the API, 1 s here).

    moto also looks each new instance's image up by filtering every AMI of the region (its public
    catalogue, over a thousand), 6 ms an instance: for the launch the catalogue holds only the CML
    image, and it is put back whole afterwards."""
    backend = ec2_backends[DEFAULT_ACCOUNT_ID][REGION]
    ami = cml_ami(REGION)
    catalogue = backend.amis
    backend.amis = {ami: catalogue[ami]}
    try:
        reservation = backend.run_instances(
            ami, count, None, [], instance_type="t3.micro", is_instance_type_default=False, region_name=REGION
        )
    finally:
        backend.amis = catalogue
    return [instance.id for instance in reservation.instances]


def states(ids: list[str]) -> dict[str, str]:
    found = Ec2Gateway(REGION).describe(ids)
    return {i: found[i].state for i in ids}


def tags_of(instance_id: str) -> dict[str, str]:
    described = client("ec2", REGION).describe_tags(Filters=[{"Name": "resource-id", "Values": [instance_id]}])
    return {t["Key"]: t["Value"] for t in described["Tags"]}


# --- describe --------------------------------------------------------------------------------


def test_describe_of_1500_ids_takes_exactly_two_calls(aws):  # noqa: ANN001
    # Given 1500 instances (more than one DescribeInstances batch of 1000)
    ids = launch_in_moto(1500)
    calls = count_calls()
    # When they are described, duplicates included
    found = Ec2Gateway(REGION).describe([*ids, *ids[:10]])
    # Then every one is described in exactly ceil(1500 / 1000) calls
    assert DESCRIBE_BATCH == 1000
    assert calls["DescribeInstances"] == 2 and set(found) == set(ids)
    assert {info.state for info in found.values()} == {"running"}


def test_describe_drops_unknown_ids_and_describes_the_rest(aws):  # noqa: ANN001
    ids = launch(4)
    found = Ec2Gateway(REGION).describe([*ids, UNKNOWN, "i-0123456789abcdef1"])
    assert set(found) == set(ids)


def test_describe_of_only_unknown_ids_or_none_is_empty(aws):  # noqa: ANN001
    calls = count_calls()
    assert Ec2Gateway(REGION).describe([UNKNOWN]) == {}
    assert Ec2Gateway(REGION).describe([]) == {} and calls["DescribeInstances"] == 1


def test_describe_maps_the_instance(aws):  # noqa: ANN001
    ami = cml_ami(REGION)
    [raw] = launch_instances(REGION, 1, ami_id=ami, instance_type="c5.metal", tags={"Name": "cml-1", "WorkerId": "w-1"})
    info = Ec2Gateway(REGION).describe([raw["InstanceId"]])[raw["InstanceId"]]
    assert (info.state, info.instance_type, info.image_id, info.private_ip) == (
        "running",
        "c5.metal",
        ami,
        raw["PrivateIpAddress"],
    )
    assert info.tags == {"Name": "cml-1", "WorkerId": "w-1"} and info.monitoring == "disabled"
    assert info.launch_time is not None


# --- bulk mutations --------------------------------------------------------------------------

MUTATIONS = [
    ("stop", "running", ("stopping", "stopped")),
    ("start", "stopped", ("pending", "running")),
    ("terminate", "running", ("shutting-down", "terminated")),
]


@pytest.mark.parametrize("bad", [UNKNOWN, MALFORMED], ids=["unknown id", "malformed id"])
@pytest.mark.parametrize(("action", "from_state", "to_states"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_one_bad_id_fails_alone_and_the_others_succeed(aws, action, from_state, to_states, bad):  # noqa: ANN001
    # Given six instances in a state the action applies to
    ids = launch(6)
    if from_state == "stopped":
        client("ec2", REGION).stop_instances(InstanceIds=ids)
    # When the action runs on them and one bad id in the middle
    result = getattr(Ec2Gateway(REGION), action)([*ids[:3], bad, *ids[3:]])
    # Then the bad id alone failed, as InstanceNotFound naming the action
    assert sorted(result.succeeded) == sorted(ids) and list(result.failed) == [bad]
    error = result.failed[bad]
    assert type(error) is InstanceNotFound and error.message.startswith(
        {"stop": "StopInstances", "start": "StartInstances", "terminate": "TerminateInstances"}[action]
    )
    # And every other instance really changed
    assert all(state in to_states for state in states(ids).values())


def test_bisection_isolates_a_bad_id_in_logarithmic_calls(aws):  # noqa: ANN001
    # Given 15 good ids and one bad one (16 = 2^4)
    ids = launch(15)
    calls = count_calls()
    # When they are stopped
    result = Ec2Gateway(REGION).stop([UNKNOWN, *ids])
    # Then the failing batch was halved until the bad id stood alone: 1 + 2 calls per level
    assert calls["StopInstances"] == 1 + 2 * 4
    assert sorted(result.succeeded) == sorted(ids) and list(result.failed) == [UNKNOWN]


def test_a_clean_batch_is_one_call_and_duplicates_are_sent_once(aws):  # noqa: ANN001
    ids = launch(5)
    calls = count_calls()
    result = Ec2Gateway(REGION).stop([*ids, *ids])
    assert calls["StopInstances"] == 1 and result.succeeded == ids and result.failed == {}


def test_every_id_bad_fails_every_id(aws):  # noqa: ANN001
    result = Ec2Gateway(REGION).terminate([UNKNOWN, "i-0123456789abcdef1"])
    assert result.succeeded == [] and set(result.failed) == {UNKNOWN, "i-0123456789abcdef1"}


# --- statuses (state and status checks) -----------------------------------------------------


def test_statuses_give_the_state_and_checks_of_running_and_stopped_instances(aws):  # noqa: ANN001
    # Given three instances, one of them stopped
    ids = launch(3)
    client("ec2", REGION).stop_instances(InstanceIds=ids[:1])
    # When their statuses are read (one id twice)
    statuses = Ec2Gateway(REGION).statuses([*ids, ids[1]])
    # Then each instance has its state (the stopped one too) and its two checks, once
    assert statuses == {
        ids[0]: InstanceStatus(ids[0], "stopped", "not-applicable", "not-applicable"),
        ids[1]: InstanceStatus(ids[1], "running", "ok", "ok"),
        ids[2]: InstanceStatus(ids[2], "running", "ok", "ok"),
    }
    assert Ec2Gateway(REGION).statuses([]) == {}


def test_statuses_agree_with_describe_on_every_state(aws):  # noqa: ANN001
    # Given instances running, stopped and terminated
    ids = launch(3)
    ec2 = client("ec2", REGION)
    ec2.stop_instances(InstanceIds=ids[:1])
    ec2.terminate_instances(InstanceIds=ids[1:2])
    gateway = Ec2Gateway(REGION)
    # Then the statuses' state of each instance they list is the one describe gives
    statuses = gateway.statuses(ids)
    described = gateway.describe(ids)
    assert statuses and {i: s.state for i, s in statuses.items()} == {i: described[i].state for i in statuses}
    assert {statuses[ids[0]].state, statuses[ids[2]].state} == {"stopped", "running"}


def test_statuses_skip_unknown_ids_like_describe(aws):  # noqa: ANN001
    # Given a region where one recorded instance no longer exists in EC2
    ids = launch(3)
    calls = count_calls()
    # When statuses are read for all of them
    statuses = Ec2Gateway(REGION).statuses([*ids, UNKNOWN])
    # Then the known instances still get theirs (as describe does, the unknown id is absent),
    # after one retry without the id EC2 named
    assert statuses == {i: InstanceStatus(i, "running", "ok", "ok") for i in ids}
    assert calls["DescribeInstanceStatus"] == 2


def test_statuses_ask_for_at_most_100_ids_a_call(aws):  # noqa: ANN001
    # Given 250 instances (DescribeInstanceStatus takes at most 100 explicitly specified ids)
    ids = launch_in_moto(250)
    asked: list[int] = []
    client("ec2", REGION).meta.events.register(
        "provide-client-params.ec2.DescribeInstanceStatus", lambda params, **_: asked.append(len(params["InstanceIds"]))
    )
    # When their statuses are read, then each call asked for at most 100 and every one answered
    statuses = Ec2Gateway(REGION).statuses(ids)
    assert sorted(asked) == [50, 100, 100] and set(statuses) == set(ids)
    assert {s.state for s in statuses.values()} == {"running"}


def test_elastic_ips_name_each_address_and_its_instance(aws):  # noqa: ANN001
    # Given two instances, an Elastic IP on one, another allocated but unassociated
    ids = launch(2)
    ec2 = client("ec2", REGION)
    on = ec2.allocate_address(Domain="vpc")
    spare = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=on["AllocationId"], InstanceId=ids[0])
    calls = count_calls()
    # When read, then one DescribeAddresses names both addresses and the association
    eips = Ec2Gateway(REGION).elastic_ips()
    assert calls["DescribeAddresses"] == 1
    assert eips.by_instance == {ids[0]: on["PublicIp"]}
    assert eips.addresses == {on["PublicIp"], spare["PublicIp"]}
    # And describe agrees on the instance's public address
    assert Ec2Gateway(REGION).describe([ids[0]])[ids[0]].public_ip == on["PublicIp"]
    assert not eips.moved(ids[0], on["PublicIp"]) and eips.moved(ids[1], spare["PublicIp"])


# --- tags ------------------------------------------------------------------------------------


def test_set_tags_adds_overwrites_and_removes(aws):  # noqa: ANN001
    ami = cml_ami(REGION)
    [raw] = launch_instances(REGION, 1, ami_id=ami, tags={"ManagedBy": "CmlCloudManager", "Course": "ccna", "Old": "x"})
    iid = raw["InstanceId"]
    gateway = Ec2Gateway(REGION)
    gateway.set_tags(iid, add={"Course": "ccnp", "Team": "a"}, remove=[])
    assert tags_of(iid) == {"ManagedBy": "CmlCloudManager", "Course": "ccnp", "Team": "a", "Old": "x"}
    gateway.set_tags(iid, add={"New": "1"}, remove=iter(["Old", "ManagedBy"]))
    assert tags_of(iid) == {"Course": "ccnp", "Team": "a", "New": "1"}


def test_set_tags_with_nothing_to_do_makes_no_call(aws):  # noqa: ANN001
    [iid] = launch(1)
    calls = count_calls()
    Ec2Gateway(REGION).set_tags(iid, add={}, remove=[])
    assert calls["CreateTags"] == calls["DeleteTags"] == 0


def test_a_tagging_error_is_mapped_and_names_the_call():
    # moto accepts tags on any resource id, so EC2's refusal is stubbed here
    ec2 = boto3.client("ec2", region_name=REGION)
    with Stubber(ec2) as stub:
        stub.add_client_error("create_tags", service_error_code="InvalidInstanceID.NotFound", service_message="gone")
        with pytest.raises(InstanceNotFound, match="CreateTags/DeleteTags: InvalidInstanceID.NotFound: gone"):
            Ec2Gateway(REGION, ec2_client=ec2).set_tags(UNKNOWN, add={"a": "b"}, remove=["c"])
        stub.assert_no_pending_responses()


# --- AWS error codes → domain errors ---------------------------------------------------------

ERROR_TABLE = [
    *[
        (code, InstanceNotFound)
        for code in ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed", "InvalidAMIID.NotFound")
    ],
    *[
        (code, QuotaExceeded)
        for code in (
            "InstanceLimitExceeded",
            "VcpuLimitExceeded",
            "InsufficientInstanceCapacity",
            "MaxSpotInstanceCountExceeded",
        )
    ],
    *[
        (code, AwsAuthError)
        for code in ("UnauthorizedOperation", "AuthFailure", "AccessDenied", "AccessDeniedException", "OptInRequired")
    ],
    *[
        (code, AwsInvalidParameter)
        for code in (
            "InvalidParameterValue",
            "InvalidParameterCombination",
            "InvalidParameter",
            "MissingParameter",
            "IncorrectInstanceState",
            "InvalidAMIID.Malformed",
            "InvalidSubnetID.NotFound",
            "InvalidGroup.NotFound",
            "ValidationException",
        )
    ],
    *[
        (code, TransientAwsError)
        for code in (
            "RequestLimitExceeded",
            "Throttling",
            "ThrottlingException",
            "InternalError",
            "ServiceUnavailable",
            "Unavailable",
        )
    ],
    ("SomethingNew", ExternalServiceError),
]


def _client_error(code: str | None, status: int = 400, message: str = "details") -> ClientError:
    error = {"Message": message} if code is None else {"Code": code, "Message": message}
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}, "AnyOperation")


@pytest.mark.parametrize(("code", "kind"), ERROR_TABLE, ids=[c for c, _ in ERROR_TABLE])
def test_each_aws_error_code_maps_to_one_domain_error(code, kind):  # noqa: ANN001
    mapped = map_client_error(_client_error(code), action="StopInstances")
    assert type(mapped) is kind
    assert mapped.message == f"StopInstances: {code}: details"


@pytest.mark.parametrize(
    ("status", "kind"), [(500, TransientAwsError), (503, TransientAwsError), (400, ExternalServiceError)]
)
def test_an_unknown_code_is_transient_only_on_a_server_error(status, kind):  # noqa: ANN001
    assert type(map_client_error(_client_error("SomethingNew", status), action="X")) is kind


def test_a_known_code_wins_over_the_http_status():
    assert type(map_client_error(_client_error("UnauthorizedOperation", 500), action="X")) is AwsAuthError


def test_an_error_without_a_code_is_a_generic_external_error():
    mapped = map_client_error(_client_error(None), action="DescribeInstances")
    assert type(mapped) is ExternalServiceError and mapped.message == "DescribeInstances: Unknown: details"


@pytest.mark.parametrize(
    ("kind", "http_status", "code"),
    [
        (InstanceNotFound, 404, "InstanceNotFound"),
        (QuotaExceeded, 429, "QuotaExceeded"),
        (AwsAuthError, 502, "AwsAuthError"),
        (AwsInvalidParameter, 422, "AwsInvalidParameter"),
        (TransientAwsError, 503, "TransientAwsError"),
        (ExternalServiceError, 502, "ExternalServiceError"),
    ],
)
def test_each_domain_error_has_its_http_status_and_name(kind, http_status, code):  # noqa: ANN001
    assert (kind.http_status, kind.code) == (http_status, code)
