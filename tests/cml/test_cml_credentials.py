"""CML credentials from Secrets Manager (moto): read once per process, never shown."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from cmlcm.adapters.aws import reset_clients
from cmlcm.adapters.cml.credentials import CmlCredentials, SecretsManagerCredentials
from cmlcm.adapters.cml.errors import CmlAuthError
from cmlcm.domain.errors import ExternalServiceError

REGION = "us-east-1"


@pytest.fixture
def secrets() -> Iterator[object]:
    with mock_aws():
        reset_clients()  # boto3 clients are cached per region; start from moto's
        yield boto3.client("secretsmanager", region_name=REGION)
    reset_clients()


def test_credentials_are_read_once_and_cached(secrets):  # noqa: ANN001
    secrets.create_secret(Name="cml", SecretString=json.dumps({"username": "admin", "password": "s3cret!"}))
    provider = SecretsManagerCredentials("cml", REGION)
    creds = provider()
    assert (creds.username, creds.password) == ("admin", "s3cret!")
    secrets.update_secret(SecretId="cml", SecretString=json.dumps({"username": "other", "password": "x"}))
    assert provider() is creds  # cached for the cold start: no second read
    provider.invalidate()
    assert provider().username == "other"  # a rotation is picked up once asked to


def test_password_never_shows_in_repr_or_str(secrets):  # noqa: ANN001
    secrets.create_secret(Name="cml", SecretString=json.dumps({"username": "admin", "password": "s3cret!"}))
    provider = SecretsManagerCredentials("cml", REGION)
    creds = provider()
    for text in (repr(creds), str(creds), repr(provider), f"{creds}"):
        assert "s3cret" not in text
    assert "admin" in repr(creds)


@pytest.mark.parametrize(
    "secret",
    [
        'not json {"password": "leaky"}',
        json.dumps({"username": "admin"}),
        json.dumps({"username": "", "password": "leaky"}),
    ],
    ids=["not-json", "no-password", "empty-username"],
)
def test_malformed_secret_is_an_auth_error_that_quotes_nothing(secrets, secret):  # noqa: ANN001
    secrets.create_secret(Name="broken", SecretString=secret)
    with pytest.raises(CmlAuthError, match="broken") as caught:
        SecretsManagerCredentials("broken", REGION)()
    assert "leaky" not in str(caught.value) and caught.value.__cause__ is None


def test_missing_secret_is_an_external_service_error(secrets):  # noqa: ANN001
    with pytest.raises(ExternalServiceError, match="GetSecretValue"):
        SecretsManagerCredentials("absent", REGION)()


def test_static_credentials_hide_the_password():
    assert "pw" not in repr(CmlCredentials("u", "pw"))
