"""The EC2 adapter on moto: batching to API limits, dropping unknown ids, bisecting failures."""
from __future__ import annotations

from collections import Counter

import pytest
from botocore.exceptions import ClientError

from cmlcm.adapters.aws import client, map_client_error
from cmlcm.adapters.ec2 import Ec2Gateway
from cmlcm.domain.errors import AwsAuthError, AwsInvalidParameter, InstanceNotFound, QuotaExceeded, TransientAwsError
from cmlcm_local.seed import cml_ami, launch_instances


def _count_calls(ec2) -> Counter:  # noqa: ANN001
    calls: Counter = Counter()
    ec2.meta.events.register("before-call.ec2.*", lambda model, **kw: calls.update([model.name]))
    return calls


def test_describe_of_1500_ids_takes_two_calls_and_skips_unknown_ids(aws):  # noqa: ANN001
    ami = cml_ami("us-east-1")
    ids = [i["InstanceId"] for i in launch_instances("us-east-1", 1500, ami_id=ami, instance_type="t3.micro")]
    gateway = Ec2Gateway("us-east-1")
    calls = _count_calls(client("ec2", "us-east-1"))
    found = gateway.describe(ids)
    assert len(found) == 1500 and calls["DescribeInstances"] == 2
    found = gateway.describe([*ids[:3], "i-0123456789abcdef0"])
    assert set(found) == set(ids[:3])


def test_a_bad_id_fails_alone(aws):  # noqa: ANN001
    ami = cml_ami("us-east-1")
    ids = [i["InstanceId"] for i in launch_instances("us-east-1", 6, ami_id=ami, instance_type="t3.micro")]
    result = Ec2Gateway("us-east-1").stop([*ids, "i-0123456789abcdef0"])
    assert sorted(result.succeeded) == sorted(ids)
    assert list(result.failed) == ["i-0123456789abcdef0"]
    assert isinstance(result.failed["i-0123456789abcdef0"], InstanceNotFound)


@pytest.mark.parametrize(
    ("code", "kind"),
    [("InvalidInstanceID.NotFound", InstanceNotFound), ("VcpuLimitExceeded", QuotaExceeded),
     ("UnauthorizedOperation", AwsAuthError), ("InvalidParameterValue", AwsInvalidParameter),
     ("RequestLimitExceeded", TransientAwsError)],
)
def test_aws_errors_map_to_domain_errors(code, kind):  # noqa: ANN001
    error = ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "X")
    assert isinstance(map_client_error(error, action="X"), kind)
