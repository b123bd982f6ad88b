"""The tests' shared botocore loader (tests/support/botocore_loader.py): every session of the test
process reads botocore's data through one loader, so a test's fresh clients cost no JSON parsing,
and the clients still answer with botocore's own models."""

from __future__ import annotations

import boto3
import botocore.loaders

from tests.support import botocore_loader


def test_sessions_share_one_loader_and_get_botocore_s_own_models():
    # Given the root conftest installed the shared loader
    assert botocore_loader.installed()
    # When two clients are made in two sessions, as the product makes them
    first = boto3.session.Session().client("ec2", region_name="us-east-1")
    second = boto3.session.Session().client("ec2", region_name="eu-west-1")
    # Then both sessions read through the same loader, and the model is the one botocore ships
    one = boto3.session.Session()._session.get_component("data_loader")
    two = boto3.session.Session()._session.get_component("data_loader")
    assert one is two
    own = botocore.loaders.create_loader().load_service_model("ec2", "service-2")
    assert first.meta.service_model.operation_names == sorted(own["operations"])
    assert second.meta.service_model.api_version == own["metadata"]["apiVersion"]
